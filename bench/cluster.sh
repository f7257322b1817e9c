#!/usr/bin/env bash
# Refresh rotations through a cluster: NODES Valet nodes on one PostgreSQL
# database behind nginx (round robin over keep-alive connections), one Valet
# node on PostgreSQL behind the same nginx, and node oidc-provider (one
# process, called directly: no nginx hop), in interleaved rounds, with one table
# of every ratio.
#
#   bench/cluster.sh [BINARY] [NODES=3] [ROUNDS=3] [DURATION=8] [CONCURRENCY=16]
#
# The nodes share VALET_MASTER_KEY and the issuer (nginx's URL), as
# docs/deployment.md sets a cluster up. Each request may reach another node
# than the one before, so a refresh token issued by one node is rotated by the
# next. Each round signs one user per worker in (not measured), then every
# worker rotates its own refresh token in a loop for DURATION seconds (the flow
# load generator of bench/lib.sh, --mode refresh). Server CPU per rotation is
# the Valet processes' (or oidc-provider's); PostgreSQL's and nginx's are not
# counted. On a host with fewer cores than nodes, the nodes share the CPU with
# each other, PostgreSQL, nginx and the load generator: the figures say what a
# cluster costs there, not what NODES machines would do. BINARY defaults to a
# release build, made if missing. Records: bench/results/cluster.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

VALET="$(realpath "$(valet_binary "${1:-}")")"
NODES="${2:-3}"
ROUNDS="${3:-3}"
DURATION="${4:-8}"
CONCURRENCY="${5:-16}"
PORT="${VALET_BENCH_PORT:-18600}"
RESULTS="$RESULTS_DIR/cluster.jsonl"
API=https://api.example.test
REDIRECT=https://app.example.test/callback
PASSWORD='correct horse battery staple'

need nginx nginx-light
ensure_postgres
ensure_oidc_provider

WORK="$(mktemp -d)"
PIDS=()
stop_all() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
trap 'stop_all; rm -rf "$WORK"' EXIT
: >"$RESULTS"
USERS="$(seq -s, -f 'bench%g' 1 "$CONCURRENCY")"
MASTER_KEY="$(head -c32 /dev/urandom | basenc --base64url)"

# nginx on PORT, round robin over the given ports.
start_nginx() { # start_nginx PORT...
  local upstreams="" port
  for port in "$@"; do upstreams+="server 127.0.0.1:$port; "; done
  mkdir -p "$WORK/nginx"
  cat >"$WORK/nginx/nginx.conf" <<NGINX
worker_processes auto;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  upstream valet { $upstreams keepalive 64; }
  server {
    listen 127.0.0.1:$PORT;
    location / {
      proxy_pass http://valet;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
    }
  }
}
NGINX
  nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
  PIDS+=("$!")
}

rotate() { # rotate LABEL ROUND CLIENT_ID SECRET AUTHORIZE_PATH PASSWORD SERVER_PID...
  local label="$1" round="$2" id="$3" secret="$4" path="$5" password="$6" pid pid_args=()
  shift 6
  for pid in "$@"; do pid_args+=(--server-pid "$pid"); done
  run_flows --base "http://127.0.0.1:$PORT" --client-id="$id" --client-secret="$secret" \
    --users "$USERS" --authorize-path "$path" --password "$password" --mode refresh \
    --duration "$DURATION" --concurrency "$CONCURRENCY" "${pid_args[@]}" --label "$label" \
    --json-out "$WORK/flow.json" >&2
  record "$RESULTS" "$label" "round_$round" "$(cat "$WORK/flow.json")"
  stop_all
}

valet_nodes() { # valet_nodes LABEL COUNT ROUND
  local label="$1" count="$2" round="$3" schema="valet_bench_cluster_$1_$3" url web i node_pids=() ports=()
  echo "round $round: $label ($count node(s) on PostgreSQL behind nginx)" >&2
  url="$(pg_schema "$schema")"
  export VALET_DATABASE_URL="$url" VALET_MASTER_KEY="$MASTER_KEY" VALET_ISSUER="http://127.0.0.1:$PORT"
  "$VALET" --data-dir "$WORK/$label-$round-init" init >/dev/null
  for i in $(seq 1 "$count"); do
    "$VALET" --data-dir "$WORK/$label-$round-$i" serve --bind "127.0.0.1:$((PORT + i))" \
      >"$WORK/$label-$round-$i.log" 2>&1 &
    node_pids+=("$!")
    PIDS+=("$!")
    ports+=("$((PORT + i))")
  done
  for i in $(seq 1 "$count"); do wait_ready "http://127.0.0.1:$((PORT + i))/readyz"; done
  start_nginx "${ports[@]}"
  wait_ready "http://127.0.0.1:$PORT/readyz"
  web="$("$VALET" --data-dir "$WORK/$label-$round-init" client create --name "Bench App" \
    --redirect-uri "$REDIRECT" --scope read --audience "$API" --id-token-alg ES256 --json)"
  for i in $(seq 1 "$CONCURRENCY"); do
    printf '%s' "$PASSWORD" | "$VALET" --data-dir "$WORK/$label-$round-init" user create \
      --username "bench$i" --email "bench$i@example.test" --password-stdin >/dev/null
  done
  unset VALET_DATABASE_URL VALET_MASTER_KEY VALET_ISSUER
  rotate "$label" "$round" "$(json_field "$web" client_id)" "$(json_field "$web" client_secret)" \
    /authorize "$PASSWORD" "${node_pids[@]}"
  pg_drop_schema "$schema"
}

oidc_provider() { # oidc_provider ROUND
  echo "round $1: oidc-provider" >&2
  PORT="$PORT" WORKERS=1 node bench/oidc-provider/server.mjs >"$WORK/oidc-$1.log" 2>&1 &
  PIDS+=("$!")
  wait_ready "http://127.0.0.1:$PORT/.well-known/openid-configuration"
  rotate oidc-provider "$1" bench-web bench-web-secret-0123456789abcdef /auth any-password "${PIDS[0]}"
}

for round in $(seq 1 "$ROUNDS"); do
  # Rotate the order, so that no server always runs on a warmer machine.
  case $((round % 3)) in
    1) valet_nodes cluster "$NODES" "$round"; valet_nodes single 1 "$round"; oidc_provider "$round" ;;
    2) oidc_provider "$round"; valet_nodes single 1 "$round"; valet_nodes cluster "$NODES" "$round" ;;
    0) valet_nodes single 1 "$round"; oidc_provider "$round"; valet_nodes cluster "$NODES" "$round" ;;
  esac
done

python3 - "$RESULTS" "$ROUNDS" "$CONCURRENCY" "$NODES" "$(nproc)" <<'PY'
import json, statistics, sys
path, rounds, concurrency, nodes, cores = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
runs = [json.loads(line) for line in open(path)]
def median(server, field):
    values = [r[field] if field != "p99_ms" else r["steps"]["refresh"]["p99_ms"]
              for r in runs if r["server"] == server]
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")
errors = sum(r["errors"] for r in runs)
print(f"refresh rotations (Valet through nginx), median of {rounds} interleaved rounds, {concurrency} workers, "
      f"{cores} cores; Valet on PostgreSQL, {nodes} nodes in the cluster; errors {errors}")
print("| server | rotations/s | server CPU per rotation | p99 |")
print("|---|---:|---:|---:|")
for s in ("cluster", "single", "oidc-provider"):
    print(f"| {s} | {median(s, 'flows_per_s'):,.0f} | {median(s, 'server_cpu_per_flow_ms'):.3f} ms | {median(s, 'p99_ms'):.1f} ms |")
print()
print("| ratio | rotations/s | CPU per rotation |")
print("|---|---:|---:|")
for a, b in (("cluster", "oidc-provider"), ("single", "oidc-provider"), ("cluster", "single")):
    rate = median(a, "flows_per_s") / median(b, "flows_per_s")
    cpu = median(a, "server_cpu_per_flow_ms") / median(b, "server_cpu_per_flow_ms")
    print(f"| {a} / {b} | {rate:.2f}× | {cpu:.2f}× |")
if errors:
    sys.exit("errors during the run")
PY

#!/usr/bin/env bash
# Refresh rotations alone: two builds of Valet on SQLite and node oidc-provider (one
# process), in interleaved rounds, with one table of every ratio. For changes to
# the durable write path (group commit), where compare_builds.sh's four browsers
# are too few to queue writes.
#
#   bench/refresh.sh BEFORE_BINARY AFTER_BINARY [ROUNDS=3] [DURATION=8] [CONCURRENCY=16]
#
# Each round starts each server fresh, signs one user per worker in once (not
# measured), then every worker rotates its own refresh token in a loop for
# DURATION seconds (the flow load generator of bench/lib.sh, --mode refresh). Valet answers each rotation
# only once it is committed (WAL, synchronous = FULL); oidc-provider keeps its
# tokens in memory. Prints medians per server and the ratios; the records go to
# bench/results/refresh.jsonl. VALET_BENCH_BACKEND=postgres runs Valet on a fresh
# schema of VALET_BENCH_PG per run instead of SQLite.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

[ $# -ge 2 ] || { sed -n '2,16p' "$0" >&2; exit 2; }
BEFORE="$(realpath "$1")"
AFTER="$(realpath "$2")"
ROUNDS="${3:-3}"
DURATION="${4:-8}"
CONCURRENCY="${5:-16}"
BACKEND="${VALET_BENCH_BACKEND:-sqlite}"
PORT="${VALET_BENCH_PORT:-18500}"
RESULTS="$RESULTS_DIR/refresh.jsonl"
API=https://api.example.test
REDIRECT=https://app.example.test/callback
PASSWORD='correct horse battery staple'

[ "$BACKEND" = postgres ] && ensure_postgres
ensure_oidc_provider
for binary in "$BEFORE" "$AFTER"; do
  [ -x "$binary" ] || { echo "not an executable: $binary" >&2; exit 2; }
done

WORK="$(mktemp -d)"
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
: >"$RESULTS"
USERS="$(seq -s, -f 'bench%g' 1 "$CONCURRENCY")"

rotate() { # rotate LABEL ROUND CLIENT_ID SECRET AUTHORIZE_PATH PASSWORD
  run_flows --base "http://127.0.0.1:$PORT" --client-id="$3" --client-secret="$4" \
    --users "$USERS" --authorize-path "$5" --password "$6" --mode refresh \
    --duration "$DURATION" --concurrency "$CONCURRENCY" --server-pid "$PID" --label "$1" \
    --json-out "$WORK/flow.json" >&2
  record "$RESULTS" "$1" "round_$2" "$(cat "$WORK/flow.json")"
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
}

valet() { # valet LABEL BINARY ROUND
  local args=(--data-dir "$WORK/$1-$3") schema="valet_bench_refresh_$1_$3" web i
  echo "round $3: $1 ($BACKEND)" >&2
  [ "$BACKEND" = postgres ] && args+=(--database-url "$(pg_schema "$schema")")
  "$2" "${args[@]}" serve --bind "127.0.0.1:$PORT" >"$WORK/$1-$3.log" 2>&1 &
  PID=$!
  wait_ready "http://127.0.0.1:$PORT/readyz"
  web="$("$2" "${args[@]}" client create --name "Bench App" --redirect-uri "$REDIRECT" \
    --scope read --audience "$API" --id-token-alg ES256 --json)"
  for i in $(seq 1 "$CONCURRENCY"); do
    printf '%s' "$PASSWORD" | "$2" "${args[@]}" user create --username "bench$i" \
      --email "bench$i@example.test" --password-stdin >/dev/null
  done
  rotate "$1" "$3" "$(json_field "$web" client_id)" "$(json_field "$web" client_secret)" /authorize "$PASSWORD"
  [ "$BACKEND" = postgres ] && pg_drop_schema "$schema"
  return 0
}

oidc_provider() { # oidc_provider ROUND
  echo "round $1: oidc-provider" >&2
  PORT="$PORT" WORKERS=1 node bench/oidc-provider/server.mjs >"$WORK/oidc-$1.log" 2>&1 &
  PID=$!
  wait_ready "http://127.0.0.1:$PORT/.well-known/openid-configuration"
  rotate oidc-provider "$1" bench-web bench-web-secret-0123456789abcdef /auth any-password
}

for round in $(seq 1 "$ROUNDS"); do
  # Rotate the order, so that no server always runs on a warmer machine.
  case $((round % 3)) in
    1) valet before "$BEFORE" "$round"; valet after "$AFTER" "$round"; oidc_provider "$round" ;;
    2) oidc_provider "$round"; valet after "$AFTER" "$round"; valet before "$BEFORE" "$round" ;;
    0) valet after "$AFTER" "$round"; oidc_provider "$round"; valet before "$BEFORE" "$round" ;;
  esac
done

python3 - "$RESULTS" "$ROUNDS" "$CONCURRENCY" "$BACKEND" <<'PY'
import json, statistics, sys
path, rounds, concurrency, backend = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
runs = [json.loads(line) for line in open(path)]
def median(server, field):
    values = [r[field] if field != "p99_ms" else r["steps"]["refresh"]["p99_ms"]
              for r in runs if r["server"] == server]
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")
servers = ("before", "after", "oidc-provider")
print(f"refresh rotations, median of {rounds} interleaved rounds, {concurrency} workers (Valet on {backend}, this host)")
print("| server | rotations/s | server CPU per rotation | p99 |")
print("|---|---:|---:|---:|")
for s in servers:
    print(f"| {s} | {median(s, 'flows_per_s'):,.0f} | {median(s, 'server_cpu_per_flow_ms'):.3f} ms | {median(s, 'p99_ms'):.1f} ms |")
print()
print("| ratio | rotations/s | CPU per rotation |")
print("|---|---:|---:|")
for a, b in (("after", "before"), ("after", "oidc-provider"), ("before", "oidc-provider")):
    rate = median(a, "flows_per_s") / median(b, "flows_per_s")
    cpu = median(a, "server_cpu_per_flow_ms") / median(b, "server_cpu_per_flow_ms")
    print(f"| {a} / {b} | {rate:.2f}× | {cpu:.2f}× |")
PY

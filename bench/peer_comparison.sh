#!/usr/bin/env bash
# Valet on SQLite and on PostgreSQL side by side with node oidc-provider (the
# certified reference OP, configured with ES256 JWT access tokens), on this machine,
# in one run.
#
#   bench/peer_comparison.sh [DURATION_SECONDS] [CONNECTIONS]
#
# Installs what is missing (wrk, node/npm, psql from Debian; oidc-provider from npm
# into bench/oidc-provider/node_modules, pinned by its package-lock.json), builds
# Valet (release), then measures:
#   1. raw ES256 signature cost (cargo bench -p valet-jose --bench sign; again after
#      Valet's runs, and the two averaged) and guard verification cost (cargo bench
#      -p valet-guard --bench verify);
#   2. Valet's start-up time to /readyz 200 and idle RSS (first start on an empty
#      store, then 5 restarts: median), on SQLite and on PostgreSQL;
#   3. for each server: client_credentials tokens/s with p50/p99 latency (wrk, 1
#      thread, CONNECTIONS connections), CPU time per token from /proc, peak RSS;
#      introspection/s, JWKS/s, and the CPU of an empty request (GET /healthz);
#      the Authorization Code + PKCE flow as flows/s (the flow_load driver, see
#      bench/lib.sh: with a login per flow, VALET_BENCH_FLOW_CONCURRENCY browsers;
#      with a remembered session, and refresh rotations alone,
#      VALET_BENCH_SESSION_CONCURRENCY browsers). Valet on SQLite also signs
#      client_credentials tokens with EdDSA (VALET_ACCESS_TOKEN_ALG), once.
#   4. with VALET_BENCH_CHEAP_HASH=1 (the default; 0 skips it): Valet restarted in
#      benchmark mode (`serve --insecure-benchmark-password-hash`: new password
#      hashes are argon2id m=8 KiB, t=1, p=1) with users created in that mode, and
#      the login flow measured again, labelled "cheap hash (benchmark mode)": the
#      protocol without the password hash (oidc-provider's devInteractions check no
#      password at all).
# Smoke tests of this script (not measurements): VALET_BENCH_VALET_BIN=PATH runs that
# binary instead of building a release one, VALET_BENCH_SKIP_MICRO=1 skips the cargo
# benches; either marks the run "smoke" in the results and the summaries.
# Results: bench/results/peer_comparison.jsonl (one JSON record per measurement) and
# the markdown tables printed at the end (also bench/results/peer_comparison.md); a
# copy of each run's records goes to bench/results/peer_runs/, from which
# bench/summary.py takes medians over the latest runs.
# PostgreSQL: VALET_BENCH_PG (default postgres://postgres@127.0.0.1:5432/test); each
# Valet run gets a fresh schema, dropped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

DURATION="${1:-15}"
CONNECTIONS="${2:-32}"
AUX_DURATION="${VALET_BENCH_AUX_SECONDS:-8}"    # introspection, JWKS
FLOW_DURATION="${VALET_BENCH_FLOW_SECONDS:-10}" # each flow mode
FLOW_CONCURRENCY="${VALET_BENCH_FLOW_CONCURRENCY:-4}"
# Without a password hash per flow, 4 browsers leave the servers idle between round
# trips: the session and refresh modes run with more.
SESSION_CONCURRENCY="${VALET_BENCH_SESSION_CONCURRENCY:-16}"
CHEAP_HASH="${VALET_BENCH_CHEAP_HASH:-1}"
SMOKE=false
[ -n "${VALET_BENCH_VALET_BIN:-}" ] || [ "${VALET_BENCH_SKIP_MICRO:-0}" = 1 ] && SMOKE=true
PORT="${VALET_BENCH_PORT:-18400}"
RESULTS="$RESULTS_DIR/peer_comparison.jsonl"
API=https://api.example.test
REDIRECT=https://app.example.test/callback
PASSWORD='correct horse battery staple'

need wrk wrk
need curl curl
need node nodejs
need npm npm
need psql postgresql-client
ensure_postgres
ensure_oidc_provider

if [ -n "${VALET_BENCH_VALET_BIN:-}" ]; then
  VALET="$(realpath "$VALET_BENCH_VALET_BIN")"
else
  echo "building (release)" >&2
  cargo build --release -q -p valet
  VALET="$RELEASE_DIR/valet"
fi
if [ "${VALET_BENCH_SKIP_MICRO:-0}" != 1 ]; then
  cargo bench --no-run -q -p valet-jose --bench sign -p valet-guard --bench verify 2>/dev/null
fi

WORK="$(mktemp -d)"
PIDS=()
SCHEMAS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for schema in "${SCHEMAS[@]}"; do pg_drop_schema "$schema"; done
  rm -rf "$WORK"
}
trap cleanup EXIT
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

: >"$RESULTS"
record "$RESULTS" machine meta "$(PGURL="$PG_BASE_URL" SMOKE="$SMOKE" python3 - <<'PY'
import json, os, subprocess
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
print(json.dumps({
    "nproc": os.cpu_count(), "cpu": model, "mem_gib": round(mem / 1024 / 1024, 1),
    "load_before": open("/proc/loadavg").read().split()[:3],
    "valet_rev": sh("git rev-parse --short HEAD"), "node": sh("node --version"),
    "oidc_provider": sh("node -p \"require('./bench/oidc-provider/node_modules/oidc-provider/package.json').version\""),
    "postgres": sh("psql -tA \"$PGURL\" -c 'show server_version'"),
    "wrk": sh("wrk -v 2>&1 | head -1"),
    "smoke": os.environ.get("SMOKE") == "true",
}))
PY
)"

# --- 1. micro-benchmarks ------------------------------------------------------------
bench_lines() { awk 'NF == 2 && $2 ~ /^[0-9.]+$/ {printf "%s\"%s\": %s", sep, $1, $2; sep=", "} END {print ""}'; }
if [ "${VALET_BENCH_SKIP_MICRO:-0}" != 1 ]; then
  echo "micro-benchmarks" >&2
  record "$RESULTS" micro sign "{$(cargo bench -q -p valet-jose --bench sign 2>/dev/null | bench_lines)}"
  record "$RESULTS" micro guard "{$(cargo bench -q -p valet-guard --bench verify 2>/dev/null | bench_lines)}"
fi

# --- 2. start-up time and idle RSS -------------------------------------------------
echo "start-up" >&2
startup() { # startup LABEL DATA_DIR DATABASE_URL|''
  local args=(--data-dir "$2")
  [ -n "$3" ] && args+=(--database-url "$3")
  local ready="http://127.0.0.1:$PORT/readyz"
  record "$RESULTS" "$1" startup_first "$(python3 bench/startup.py --runs 1 --ready "$ready" -- "$VALET" "${args[@]}" serve --bind "127.0.0.1:$PORT")"
  record "$RESULTS" "$1" startup "$(python3 bench/startup.py --runs 5 --ready "$ready" -- "$VALET" "${args[@]}" serve --bind "127.0.0.1:$PORT")"
}
startup valet-sqlite "$WORK/startup-sqlite" ""
SCHEMAS+=(valet_bench_startup)
startup valet-postgres "$WORK/startup-pg" "$(pg_schema valet_bench_startup)"
# The same without TLS to the local server (sqlx's default is sslmode=prefer): how much
# of the PostgreSQL start-up is TLS handshakes on the pool's connections.
startup valet-postgres-no-tls "$WORK/startup-pg" "$(pg_schema valet_bench_startup)&sslmode=disable"

# --- 3. load --------------------------------------------------------------------------
flows() { # flows SERVER PID BASE CLIENT_ID SECRET USERS AUTHORIZE_PATH PASSWORD
  local mode concurrency
  for mode in full sso refresh; do
    concurrency="$SESSION_CONCURRENCY"
    [ "$mode" = full ] && concurrency="$FLOW_CONCURRENCY"
    run_flows --base "$3" --client-id="$4" --client-secret="$5" --users "$6" \
      --authorize-path "$7" --password "$8" --mode "$mode" --duration "$FLOW_DURATION" \
      --concurrency "$concurrency" --server-pid "$2" --label "$1" \
      --json-out "$WORK/flow.json" >&2
    record "$RESULTS" "$1" "flow_$mode" "$(cat "$WORK/flow.json")"
  done
}

run_valet() { # run_valet SERVER DATABASE_URL|''
  local server="$1" dir="$WORK/$1" base="http://127.0.0.1:$PORT"
  local args=(--data-dir "$dir")
  [ -n "$2" ] && args+=(--database-url "$2")
  echo "$server" >&2
  "$VALET" "${args[@]}" serve --bind "127.0.0.1:$PORT" >"$WORK/$server.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  wait_ready "$base/readyz"

  local creds id secret auth
  creds="$("$VALET" "${args[@]}" client create --name bench --audience "$API" --scope read --json)"
  id="$(json_field "$creds" client_id)"; secret="$(json_field "$creds" client_secret)"
  auth="$(printf '%s:%s' "$id" "$secret" | base64 -w0)"

  wrk_script "$WORK/cc.lua" "grant_type=client_credentials&scope=read" "$auth"
  curl -fs -u "$id:$secret" -d grant_type=client_credentials -d scope=read "$base/token" >/dev/null
  record "$RESULTS" "$server" client_credentials "$(measure_wrk "$WORK/cc.lua" "$base/token" "$DURATION" "$CONNECTIONS" "$pid")"
  record "$RESULTS" "$server" rss_after_client_credentials "$(rss_json "$pid")"

  local token
  token="$(json_field "$(curl -fs -u "$id:$secret" -d grant_type=client_credentials -d scope=read "$base/token")" access_token)"
  wrk_script "$WORK/introspect.lua" "token=$token" "$auth"
  record "$RESULTS" "$server" introspection "$(measure_wrk "$WORK/introspect.lua" "$base/introspect" "$AUX_DURATION" "$CONNECTIONS" "$pid")"
  wrk_script "$WORK/get.lua" ""
  record "$RESULTS" "$server" jwks "$(measure_wrk "$WORK/get.lua" "$base/jwks.json" "$AUX_DURATION" "$CONNECTIONS" "$pid")"
  # The cost of any request at all (loopback TCP, HTTP, routing, middleware): the
  # part of a token's CPU that is neither the signature nor token work.
  record "$RESULTS" "$server" empty_request "$(measure_wrk "$WORK/get.lua" "$base/healthz" "$AUX_DURATION" "$CONNECTIONS" "$pid")"

  local web users=() i
  web="$("$VALET" "${args[@]}" client create --name "Bench App" --redirect-uri "$REDIRECT" --scope read \
    --audience "$API" --id-token-alg ES256 --json)"
  for i in $(seq 1 "$FLOW_CONCURRENCY"); do
    printf '%s' "$PASSWORD" | "$VALET" "${args[@]}" user create --username "bench$i" \
      --email "bench$i@example.test" --password-stdin >/dev/null
    users+=("bench$i")
  done
  flows "$server" "$pid" "$base" "$(json_field "$web" client_id)" "$(json_field "$web" client_secret)" \
    "$(IFS=,; echo "${users[*]}")" /authorize "$PASSWORD"
  record "$RESULTS" "$server" rss_end "$(rss_json "$pid")"
  stop "$pid"
  [ -z "$2" ] && eddsa_client_credentials "$server" "$auth" "$id" "$secret" "${args[@]}"
  [ "$CHEAP_HASH" = 1 ] && cheap_hash_flow "$server" "$(json_field "$web" client_id)" \
    "$(json_field "$web" client_secret)" "${args[@]}"
  return 0
}

# client_credentials again on the same store, Valet restarted with EdDSA (Ed25519)
# access tokens: the same request with the cheaper signature.
eddsa_client_credentials() { # eddsa_client_credentials SERVER AUTH ID SECRET VALET_ARGS...
  local server="$1" auth="$2" id="$3" secret="$4" base="http://127.0.0.1:$PORT"
  shift 4
  echo "$server: EdDSA access tokens" >&2
  VALET_ACCESS_TOKEN_ALG=EdDSA "$VALET" "$@" serve --bind "127.0.0.1:$PORT" >"$WORK/$server-eddsa.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  wait_ready "$base/readyz"
  local token
  token="$(json_field "$(curl -fs -u "$id:$secret" -d grant_type=client_credentials -d scope=read "$base/token")" access_token)"
  python3 -c 'import base64, json, sys; h = sys.argv[1].split(".")[0]; h += "=" * (-len(h) % 4)
assert json.loads(base64.urlsafe_b64decode(h))["alg"] == "EdDSA", "not an EdDSA token"' "$token" ||
    { echo "$server: the access token is not signed with EdDSA" >&2; exit 1; }
  record "$RESULTS" "$server" client_credentials_eddsa "$(measure_wrk "$WORK/cc.lua" "$base/token" "$DURATION" "$CONNECTIONS" "$pid")"
  stop "$pid"
}

# The login flow again on the same store, Valet restarted in benchmark mode and
# signing in users whose hashes were made in it (argon2id m=8 KiB, t=1, p=1): the
# protocol's cost without the password hash's. Refuses to measure unless /readyz
# confirms the mode, so a figure labelled cheap-hash is one.
cheap_hash_flow() { # cheap_hash_flow SERVER CLIENT_ID SECRET VALET_ARGS...
  local server="$1" id="$2" secret="$3" base="http://127.0.0.1:$PORT" users=() i
  shift 3
  echo "$server: cheap hash (benchmark mode)" >&2
  "$VALET" "$@" serve --bind "127.0.0.1:$PORT" --insecure-benchmark-password-hash >"$WORK/$server-cheap.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  wait_ready "$base/readyz"
  curl -fs "$base/readyz" | grep -q '^valet_insecure_benchmark_mode 1$' ||
    { echo "$server: /readyz does not confirm benchmark mode" >&2; exit 1; }
  for i in $(seq 1 "$FLOW_CONCURRENCY"); do
    printf '%s' "$PASSWORD" | VALET_INSECURE_BENCHMARK_PASSWORD_HASH=true "$VALET" "$@" user create \
      --username "cheap$i" --email "cheap$i@example.test" --password-stdin >/dev/null
    users+=("cheap$i")
  done
  run_flows --base "$base" --client-id="$id" --client-secret="$secret" \
    --users "$(IFS=,; echo "${users[*]}")" --authorize-path /authorize --password "$PASSWORD" \
    --mode full --duration "$FLOW_DURATION" --concurrency "$FLOW_CONCURRENCY" --server-pid "$pid" \
    --label "$server cheap hash (benchmark mode)" --json-out "$WORK/flow.json" >&2
  record "$RESULTS" "$server" flow_full_cheap_hash "$(cat "$WORK/flow.json")"
  stop "$pid"
}

run_oidc_provider() { # run_oidc_provider SERVER WORKERS
  local server="$1" base="http://127.0.0.1:$PORT"
  echo "$server" >&2
  PORT="$PORT" WORKERS="$2" node bench/oidc-provider/server.mjs >"$WORK/$server.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  wait_ready "$base/.well-known/openid-configuration"
  sleep 0.5
  local pids
  read -r -a pids <<<"$(pids_of "$pid")"
  local id=bench-service secret=bench-service-secret-0123456789abcdef
  wrk_script "$WORK/cc.lua" "grant_type=client_credentials&scope=read" "$(printf '%s:%s' "$id" "$secret" | base64 -w0)"
  curl -fs -u "$id:$secret" -d grant_type=client_credentials -d scope=read "$base/token" >/dev/null
  record "$RESULTS" "$server" client_credentials "$(measure_wrk "$WORK/cc.lua" "$base/token" "$DURATION" "$CONNECTIONS" "${pids[@]}")"
  record "$RESULTS" "$server" rss_after_client_credentials "$(rss_json "${pids[@]}")"
  wrk_script "$WORK/get.lua" ""
  record "$RESULTS" "$server" jwks "$(measure_wrk "$WORK/get.lua" "$base/jwks" "$AUX_DURATION" "$CONNECTIONS" "${pids[@]}")"
  if [ "$2" = 1 ]; then
    # Sessions, interactions and codes live in the in-memory adapter of one process:
    # the browser flow runs against the single-process server only.
    flows "$server" "$pid" "$base" bench-web bench-web-secret-0123456789abcdef \
      "$(seq -s, -f 'bench%g' 1 "$SESSION_CONCURRENCY")" /auth any-password
  fi
  record "$RESULTS" "$server" rss_end "$(rss_json "${pids[@]}")"
  stop "$pid"
}

run_valet valet-sqlite ""
SCHEMAS+=(valet_bench_peer)
run_valet valet-postgres "$(pg_schema valet_bench_peer)"
# The signature again, right after Valet's runs: this machine's speed drifts by up
# to a quarter from one process to the next, and the ratio divides by this figure.
[ "${VALET_BENCH_SKIP_MICRO:-0}" = 1 ] ||
  record "$RESULTS" micro sign_after "{$(cargo bench -q -p valet-jose --bench sign 2>/dev/null | bench_lines)}"
run_oidc_provider oidc-provider 1
run_oidc_provider oidc-provider-2-workers 2

record "$RESULTS" machine meta_end "{\"load_after\": $(python3 -c 'import json; print(json.dumps(open("/proc/loadavg").read().split()[:3]))')}"
mkdir -p "$RESULTS_DIR/peer_runs"
cp "$RESULTS" "$RESULTS_DIR/peer_runs/$(date -u +%Y%m%dT%H%M%SZ).jsonl"
python3 bench/summarize.py peer "$RESULTS" | tee "$RESULTS_DIR/peer_comparison.md"

#!/usr/bin/env bash
# Load test of the client_credentials grant on the SQLite default.
#
#   bench/client_credentials.sh [DURATION_SECONDS] [CONNECTIONS]
#
# Builds Valet (release), starts it on a fresh data dir, registers a client, and
# drives POST /token with wrk from a second process. Prints tokens/s, p50/p99
# latency, peak RSS, and Valet's CPU time per token (from /proc) next to the cost
# of one raw ES256 signature measured in the same run (cargo bench -p valet-jose).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

DURATION="${1:-20}"
CONNECTIONS="${2:-32}"
PORT="${VALET_BENCH_PORT:-18080}"

need wrk wrk
need curl curl
cargo build --release -q -p valet
VALET="$RELEASE_DIR/valet"
WORK="$(mktemp -d)"
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT

"$VALET" --data-dir "$WORK/data" serve --bind "127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
PID=$!
wait_ready "http://127.0.0.1:$PORT/readyz"

CREDS="$("$VALET" --data-dir "$WORK/data" client create --name bench \
  --audience https://api.example.test --scope read --json)"
ID="$(json_field "$CREDS" client_id)"
SECRET="$(json_field "$CREDS" client_secret)"
wrk_script "$WORK/token.lua" "grant_type=client_credentials&scope=read" \
  "$(printf '%s:%s' "$ID" "$SECRET" | base64 -w0)"

# Sanity: one real token before the load.
curl -fs -u "$ID:$SECRET" -d grant_type=client_credentials "http://127.0.0.1:$PORT/token" >/dev/null

RESULT="$(measure_wrk "$WORK/token.lua" "http://127.0.0.1:$PORT/token" "$DURATION" "$CONNECTIONS" "$PID")"
RSS_PEAK_KB="$(kib_field VmHWM "$PID")"
SIGN_US="$(cargo bench -q -p valet-jose --bench sign 2>/dev/null | awk '/^es256_sign_us/ {print $2}')"

python3 - "$RESULT" "$RSS_PEAK_KB" "${SIGN_US:-nan}" <<'PY'
import json, sys
run, rss_kb, sign_us = json.loads(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
cpu_us = run["cpu_per_req_us"] or float("nan")
print("client_credentials on SQLite (wrk, 1 thread, %d connections, loopback)" % run["connections"])
print("| metric | value |")
print("|---|---|")
print("| tokens/s | %.0f |" % run["per_s"])
print("| p50 latency | %.2f ms |" % run["p50_ms"])
print("| p99 latency | %.2f ms |" % run["p99_ms"])
print("| errors / non-2xx | %d / %d |" % (run["errors"], run["non2xx"]))
print("| peak RSS | %.1f MiB |" % (rss_kb / 1024))
print("| Valet CPU per token | %.1f us |" % cpu_us)
print("| one raw ES256 signature (aws-lc-rs) | %.1f us |" % sign_us)
print("| CPU per token / signature | %.2f |" % (cpu_us / sign_us))
if run["non2xx"] or run["errors"]:
    sys.exit("errors during the run")
PY

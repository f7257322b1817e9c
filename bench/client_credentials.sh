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

DURATION="${1:-20}"
CONNECTIONS="${2:-32}"
PORT="${VALET_BENCH_PORT:-18080}"

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)" >&2
  apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null
fi

cargo build --release -q -p valet
VALET=target/release/valet
WORK="$(mktemp -d)"
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

"$VALET" --data-dir "$WORK/data" serve --bind "127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

CREDS="$("$VALET" --data-dir "$WORK/data" client create --name bench \
  --audience https://api.example.test --scope read --json)"
ID="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["client_id"])' "$CREDS")"
SECRET="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["client_secret"])' "$CREDS")"
AUTH="$(printf '%s:%s' "$ID" "$SECRET" | base64 -w0)"

cat >"$WORK/token.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=read"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $AUTH"
done = function(summary, latency, requests)
  io.write(string.format("BENCH requests=%d errors=%d non2xx=%d duration_us=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, summary.duration, latency:percentile(50), latency:percentile(99)))
end
LUA

# Sanity: one real token before the load.
curl -fs -u "$ID:$SECRET" -d grant_type=client_credentials "http://127.0.0.1:$PORT/token" >/dev/null

cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
TICKS_PER_SEC="$(getconf CLK_TCK)"

# Warm-up, then the measured run.
wrk -t1 -c"$CONNECTIONS" -d3s -s "$WORK/token.lua" "http://127.0.0.1:$PORT/token" >/dev/null
CPU_BEFORE="$(cpu_ticks)"
wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -s "$WORK/token.lua" "http://127.0.0.1:$PORT/token" >"$WORK/wrk.out"
CPU_AFTER="$(cpu_ticks)"
RSS_PEAK_KB="$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")"

LINE="$(grep '^BENCH' "$WORK/wrk.out")"
val() { sed -E "s/.*$1=([0-9]+).*/\1/" <<<"$LINE"; }
REQUESTS="$(val requests)"; ERRORS="$(val errors)"; NON2XX="$(val non2xx)"
DURATION_US="$(val duration_us)"; P50="$(val p50_us)"; P99="$(val p99_us)"

SIGN_US="$(cargo bench -q -p valet-jose --bench sign 2>/dev/null | awk '/^es256_sign_us/ {print $2}')"

python3 - "$REQUESTS" "$ERRORS" "$NON2XX" "$DURATION_US" "$P50" "$P99" "$RSS_PEAK_KB" \
  "$CPU_BEFORE" "$CPU_AFTER" "$TICKS_PER_SEC" "$SIGN_US" "$CONNECTIONS" <<'PY'
import sys
req, err, non2xx, dur_us, p50, p99, rss_kb, cpu0, cpu1, hz, sign_us, conns = sys.argv[1:]
req, err, non2xx, dur_us = int(req), int(err), int(non2xx), int(dur_us)
cpu_s = (int(cpu1) - int(cpu0)) / int(hz)
ok = req - non2xx
cpu_per_token_us = cpu_s / ok * 1e6 if ok else float("nan")
sign_us = float(sign_us) if sign_us else float("nan")
print("client_credentials on SQLite (wrk, 1 thread, %s connections, loopback)" % conns)
print("| metric | value |")
print("|---|---|")
print("| tokens/s | %.0f |" % (ok / (dur_us / 1e6)))
print("| p50 latency | %.2f ms |" % (int(p50) / 1000))
print("| p99 latency | %.2f ms |" % (int(p99) / 1000))
print("| errors / non-2xx | %d / %d |" % (err, non2xx))
print("| peak RSS | %.1f MiB |" % (int(rss_kb) / 1024))
print("| Valet CPU per token | %.1f us |" % cpu_per_token_us)
print("| one raw ES256 signature (aws-lc-rs) | %.1f us |" % sign_us)
print("| CPU per token / signature | %.2f |" % (cpu_per_token_us / sign_us))
if non2xx or err:
    sys.exit("errors during the run")
PY

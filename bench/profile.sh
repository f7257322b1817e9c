#!/usr/bin/env bash
# Where Valet's CPU goes under load: perf profile of the release binary (SQLite).
#
#   bench/profile.sh [client_credentials|refresh_token] [DURATION_SECONDS] [CONNECTIONS]
#
# Starts Valet on a fresh SQLite store (for refresh_token: with 100,000 seeded
# families), drives the grant with wrk, records `perf record -g` (cpu-clock, so it
# also works in a VM without hardware counters) on the server for the run, and prints
# the hottest symbols by self time, grouped by shared object, plus user vs system
# time. Output: bench/results/profile-GRANT.txt; perf.data stays in bench/results/.
# Needs perf (Debian: linux-perf); installed if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

GRANT="${1:-client_credentials}"
DURATION="${2:-15}"
CONNECTIONS="${3:-32}"
PORT="${VALET_BENCH_PORT:-18600}"
OUT="$RESULTS_DIR/profile-$GRANT.txt"
DATA="$RESULTS_DIR/perf-$GRANT.data"

need wrk wrk
need perf linux-perf
cargo build --release -q -p valet
[ "$GRANT" = refresh_token ] && cargo build --release -q -p valet --example seed
VALET="$RELEASE_DIR/valet"

WORK="$(mktemp -d)"
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT

"$VALET" --data-dir "$WORK/data" init >&2   # only serve and init create a store
CREDS="$("$VALET" --data-dir "$WORK/data" client create --name profile --redirect-uri https://app.example.test/callback \
  --grant-type authorization_code --grant-type refresh_token --grant-type client_credentials \
  --scope read --audience https://api.example.test --json)"
ID="$(json_field "$CREDS" client_id)"; SECRET="$(json_field "$CREDS" client_secret)"
BASIC="$(printf '%s:%s' "$ID" "$SECRET" | base64 -w0)"
if [ "$GRANT" = refresh_token ]; then
  "$RELEASE_DIR/examples/seed" --database-url "sqlite://$WORK/data/valet.db" --client-id="$ID" \
    --families 100000 --users 10000 --token-seed profile >&2
  token_chunks profile 100000 100000 "$WORK/tokens" 2
  refresh_lua "$WORK/warm.lua" "$WORK/tokens.0" "$BASIC"
  refresh_lua "$WORK/load.lua" "$WORK/tokens.1" "$BASIC"
else
  wrk_script "$WORK/warm.lua" "grant_type=client_credentials&scope=read" "$BASIC"
  cp "$WORK/warm.lua" "$WORK/load.lua"
fi

"$VALET" --data-dir "$WORK/data" serve --bind "127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
PID=$!
wait_ready "http://127.0.0.1:$PORT/readyz"
wrk -t1 -c"$CONNECTIONS" -d3s -s "$WORK/warm.lua" "http://127.0.0.1:$PORT/token" >/dev/null

read -r U0 S0 < <(awk '{print $14, $15}' "/proc/$PID/stat")
perf record -q -F 999 -e cpu-clock -g -p "$PID" -o "$DATA" -- sleep "$DURATION" 2>/dev/null &
PERF=$!
LINE="$(wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -s "$WORK/load.lua" "http://127.0.0.1:$PORT/token" | grep '^BENCH')"
wait "$PERF" || true
read -r U1 S1 < <(awk '{print $14, $15}' "/proc/$PID/stat")

{
  echo "# perf profile: $GRANT on SQLite, $CONNECTIONS connections, ${DURATION} s"
  echo "wrk: $LINE"
  REQ="$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$LINE")"
  python3 -c "
u, s, hz, n = $((U1 - U0)), $((S1 - S0)), $TICKS_PER_SEC, $REQ
print(f'server CPU: user {u / hz:.2f} s, system {s / hz:.2f} s; per request: user {u / hz / n * 1e6:.1f} us, system {s / hz / n * 1e6:.1f} us')"
  echo
  echo "## self time by category (bench/profile_categories.py)"
  perf report -i "$DATA" --no-children --sort dso,symbol --stdio -g none --percent-limit 0 2>/dev/null \
    | python3 bench/profile_categories.py
} | tee "$OUT"

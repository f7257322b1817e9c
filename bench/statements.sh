#!/usr/bin/env bash
# SQL statements per full code flow (authorize, login form, consent form, code
# exchange, refresh), by kind: what a change to the flow's reads and writes
# does, counted exactly rather than timed.
#
#   bench/statements.sh [BINARY] [DURATION=3]
#
# Starts Valet (SQLite, fresh store) with every statement logged
# (`VALET_LOG=info,sqlx::query=trace`), runs bench/flows.py --mode full with one
# browser for DURATION seconds, and prints statements per flow, then each kind
# (the statement's first words) per flow. The status list feed's periodic read
# is left out (it runs whether or not anyone signs in). BINARY defaults to a
# release build, made if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

VALET="$(valet_binary "${1:-}")"
DURATION="${2:-3}"
PORT="${VALET_BENCH_PORT:-18771}"
PASSWORD='statements bench password'
WORK="$(mktemp -d)"
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT

"$VALET" --data-dir "$WORK/data" init >/dev/null 2>&1
creds="$("$VALET" --data-dir "$WORK/data" client create --name "Bench App" \
  --redirect-uri https://app.example.test/callback --scope read \
  --audience https://api.example.test --id-token-alg ES256 --json)"
printf '%s' "$PASSWORD" | "$VALET" --data-dir "$WORK/data" user create --username bench1 \
  --email bench1@example.test --password-stdin >/dev/null
VALET_LOG=info,sqlx::query=trace "$VALET" --data-dir "$WORK/data" serve \
  --bind "127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
PID=$!
wait_ready "http://127.0.0.1:$PORT/readyz"
before="$(wc -l <"$WORK/serve.log")"
python3 bench/flows.py --base "http://127.0.0.1:$PORT" --client-id "$(json_field "$creds" client_id)" \
  --client-secret "$(json_field "$creds" client_secret)" --users bench1 --password "$PASSWORD" \
  --mode full --duration "$DURATION" --concurrency 1 --json-out "$WORK/flows.json" >/dev/null
sleep 1
kill "$PID"
PID=""
tail -n +"$((before + 1))" "$WORK/serve.log" >"$WORK/run.log"
python3 - "$WORK/run.log" "$WORK/flows.json" <<'PY'
import collections, json, re, sys
log, flows_file = sys.argv[1:]
flows = json.load(open(flows_file))["flows"]
kinds = collections.Counter()
for line in open(log):
    match = re.search(r'summary="([^"]*)"', line)
    if match and "status_revocations" not in line:
        kinds[match.group(1)] += 1
if not flows:
    sys.exit("no flow completed")
print(f"{sum(kinds.values()) / flows:.2f} statements per full flow ({flows} flows)")
for kind, count in kinds.most_common():
    print(f"  {count / flows:5.2f}  {kind}")
PY

#!/usr/bin/env bash
# Queries per full code flow (authorize, login form, consent form, code
# exchange, refresh), by kind, and the SQL statements in them: what a change to
# the flow's reads and writes does, counted exactly rather than timed. A query
# is one round trip to the store (on SQLite, a hand-off to the connection's
# thread and back); on SQLite one query may carry several statements.
#
#   bench/statements.sh [BINARY] [DURATION=3]
#
# Starts Valet (SQLite, fresh store) with every statement logged
# (`VALET_LOG=info,sqlx::query=trace`), runs bench/flows.py --mode full with one
# browser for DURATION seconds, and prints queries and statements per flow, then each kind
# of query (its first words) per flow. The status list feed's periodic read
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
statements = 0
for line in open(log):
    match = re.search(r'summary="([^"]*)"', line)
    if match and "status_revocations" not in line:
        kinds[match.group(1)] += 1
        sql = re.search(r'db\.statement="((?:[^"\\]|\\.)*)"', line)
        # The logged SQL keeps its line breaks escaped (\n): not a statement.
        parts = (sql.group(1) if sql else "").replace("\\n", " ").split(";")
        statements += max(1, sum(1 for part in parts if part.strip()))
if not flows:
    sys.exit("no flow completed")
queries = sum(kinds.values())
print(f"{queries / flows:.2f} queries per full flow ({flows} flows), "
      f"{statements / flows:.2f} SQL statements in them")
for kind, count in kinds.most_common():
    print(f"  {count / flows:5.2f}  {kind}")
PY

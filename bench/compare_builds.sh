#!/usr/bin/env bash
# Two builds of Valet side by side on this machine, in one run: the figures that a
# change must not make worse, measured in interleaved rounds so that drift of the
# host's speed falls on both builds alike.
#
#   bench/compare_builds.sh BEFORE_BINARY AFTER_BINARY [ROUNDS] [DURATION_SECONDS]
#
# e.g. (the older build in a second worktree):
#   git worktree add /tmp/valet-before main~5 && (cd /tmp/valet-before && cargo build --release -p valet)
#   cargo build --release -p valet
#   bench/compare_builds.sh /tmp/valet-before/target/release/valet target/release/valet
#
# Each round starts each build on a fresh SQLite data dir and measures, one build
# after the other: client_credentials tokens/s and CPU per token (wrk, 1 thread,
# 32 connections), introspection/s, and the Authorization Code + PKCE flow as
# flows/s with a remembered session (sso), refresh rotations alone (refresh) and
# with a sign-in per flow (full). Prints the median of the rounds per build and
# the ratio after/before; the records go to bench/results/compare_builds.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

[ $# -ge 2 ] || { sed -n '2,18p' "$0" >&2; exit 2; }
BEFORE="$(realpath "$1")"
AFTER="$(realpath "$2")"
ROUNDS="${3:-3}"
DURATION="${4:-10}"
FLOW_DURATION="${VALET_BENCH_FLOW_SECONDS:-8}"
FLOW_CONCURRENCY="${VALET_BENCH_FLOW_CONCURRENCY:-4}"
PORT="${VALET_BENCH_PORT:-18500}"
RESULTS="$RESULTS_DIR/compare_builds.jsonl"
API=https://api.example.test
REDIRECT=https://app.example.test/callback
PASSWORD='correct horse battery staple'

need wrk wrk
need curl curl
for binary in "$BEFORE" "$AFTER"; do
  [ -x "$binary" ] || { echo "not an executable: $binary" >&2; exit 2; }
done

WORK="$(mktemp -d)"
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
: >"$RESULTS"

measure() { # measure LABEL BINARY ROUND
  local label="$1" valet="$2" round="$3" dir="$WORK/$1-$3" base="http://127.0.0.1:$PORT"
  local args=(--data-dir "$dir")
  echo "round $round: $label" >&2
  "$valet" "${args[@]}" serve --bind "127.0.0.1:$PORT" >"$WORK/$label-$round.log" 2>&1 &
  PID=$!
  wait_ready "$base/readyz"

  local creds id secret auth token
  creds="$("$valet" "${args[@]}" client create --name bench --audience "$API" --scope read --json)"
  id="$(json_field "$creds" client_id)"; secret="$(json_field "$creds" client_secret)"
  auth="$(printf '%s:%s' "$id" "$secret" | base64 -w0)"
  wrk_script "$WORK/cc.lua" "grant_type=client_credentials&scope=read" "$auth"
  record "$RESULTS" "$label" client_credentials "$(measure_wrk "$WORK/cc.lua" "$base/token" "$DURATION" 32 "$PID")"

  token="$(json_field "$(curl -fs -u "$id:$secret" -d grant_type=client_credentials -d scope=read "$base/token")" access_token)"
  wrk_script "$WORK/introspect.lua" "token=$token" "$auth"
  record "$RESULTS" "$label" introspection "$(measure_wrk "$WORK/introspect.lua" "$base/introspect" "$DURATION" 32 "$PID")"

  local web users=() i mode
  web="$("$valet" "${args[@]}" client create --name "Bench App" --redirect-uri "$REDIRECT" --scope read \
    --audience "$API" --id-token-alg ES256 --json)"
  for i in $(seq 1 "$FLOW_CONCURRENCY"); do
    printf '%s' "$PASSWORD" | "$valet" "${args[@]}" user create --username "bench$i" \
      --email "bench$i@example.test" --password-stdin >/dev/null
    users+=("bench$i")
  done
  for mode in sso refresh full; do
    run_flows --base "$base" --client-id="$(json_field "$web" client_id)" \
      --client-secret="$(json_field "$web" client_secret)" --users "$(IFS=,; echo "${users[*]}")" \
      --password "$PASSWORD" --mode "$mode" --duration "$FLOW_DURATION" \
      --concurrency "$FLOW_CONCURRENCY" --server-pid "$PID" --label "$label" \
      --json-out "$WORK/flow.json" >/dev/null
    record "$RESULTS" "$label" "flow_$mode" "$(cat "$WORK/flow.json")"
  done
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
}

for round in $(seq 1 "$ROUNDS"); do
  # Alternate which build goes first, so neither always runs on a warmer machine.
  if [ $((round % 2)) = 1 ]; then
    measure before "$BEFORE" "$round"; measure after "$AFTER" "$round"
  else
    measure after "$AFTER" "$round"; measure before "$BEFORE" "$round"
  fi
done

python3 - "$RESULTS" "$ROUNDS" <<'PY'
import json, statistics, sys
path, rounds = sys.argv[1], int(sys.argv[2])
runs = [json.loads(line) for line in open(path)]
def median(label, test, field):
    values = [r[field] for r in runs if r["server"] == label and r["test"] == test and r.get(field) is not None]
    return statistics.median(values) if values else float("nan")
rows = [
    ("client_credentials tokens/s", "client_credentials", "per_s"),
    ("client_credentials CPU µs/token", "client_credentials", "cpu_per_req_us"),
    ("client_credentials p99 ms", "client_credentials", "p99_ms"),
    ("introspections/s", "introspection", "per_s"),
    ("code flow, remembered session, flows/s", "flow_sso", "flows_per_s"),
    ("refresh rotations/s", "flow_refresh", "flows_per_s"),
    ("code flow with sign-in, flows/s", "flow_full", "flows_per_s"),
]
print(f"median of {rounds} interleaved rounds (SQLite, this host)")
print("| measure | before | after | after / before |")
print("|---|---:|---:|---:|")
for name, test, field in rows:
    b, a = median("before", test, field), median("after", test, field)
    print(f"| {name} | {b:,.1f} | {a:,.1f} | {a / b:.2f} |")
PY

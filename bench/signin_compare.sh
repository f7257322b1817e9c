#!/usr/bin/env bash
# Two builds side by side on the code flow with a sign-in and a consent per flow,
# password hash excluded (benchmark mode, clearly labelled by /readyz): what a
# change to the sign-in path's writes does, in interleaved rounds.
#
#   bench/signin_compare.sh BEFORE_BINARY AFTER_BINARY [ROUNDS=3] [DURATION=10] [BROWSERS=16]
#
# Each round starts each build (the order alternating) on a fresh store, registers
# a client and BROWSERS users with the cheap hash, and runs flow_load --mode full
# (authorize, login form, consent form, code exchange, refresh). Prints flows/s and
# Valet's CPU per flow for every run, then the medians. VALET_BENCH_BACKEND=postgres
# runs on a fresh PostgreSQL schema per run (VALET_BENCH_PG).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

[ $# -ge 2 ] || { sed -n '2,14p' "$0" >&2; exit 2; }
ROUNDS="${3:-3}"
DURATION="${4:-10}"
BROWSERS="${5:-16}"
BACKEND="${VALET_BENCH_BACKEND:-sqlite}"
PORT="${VALET_BENCH_PORT:-18700}"
PASSWORD='correct horse battery staple'
[ "$BACKEND" = postgres ] && ensure_postgres
WORK="$(mktemp -d)"
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT

: >"$WORK/runs"
for round in $(seq 1 "$ROUNDS"); do
  builds=(before "$1" after "$2")
  [ $((round % 2)) = 0 ] && builds=(after "$2" before "$1")
  for i in 0 2; do
    label="${builds[$i]}" valet="${builds[$((i + 1))]}" base="http://127.0.0.1:$PORT"
    args=(--data-dir "$WORK/$label-$round")
    [ "$BACKEND" = postgres ] && args+=(--database-url "$(pg_schema "signin_${label}_$round")")
    "$valet" "${args[@]}" serve --bind "127.0.0.1:$PORT" --insecure-benchmark-password-hash \
      >"$WORK/$label-$round.log" 2>&1 &
    PID=$!
    wait_ready "$base/readyz"
    curl -fs "$base/readyz" | grep -q '^valet_insecure_benchmark_mode 1$' ||
      { echo "$label: /readyz does not confirm benchmark mode" >&2; exit 1; }
    web="$("$valet" "${args[@]}" client create --name "Bench App" --redirect-uri https://app.example.test/callback \
      --scope read --audience https://api.example.test --id-token-alg ES256 --json)"
    users=()
    for n in $(seq 1 "$BROWSERS"); do
      printf '%s' "$PASSWORD" | VALET_INSECURE_BENCHMARK_PASSWORD_HASH=true "$valet" "${args[@]}" user create \
        --username "user$n" --email "user$n@example.test" --password-stdin >/dev/null
      users+=("user$n")
    done
    run_flows --base "$base" --client-id="$(json_field "$web" client_id)" \
      --client-secret="$(json_field "$web" client_secret)" --users "$(IFS=,; echo "${users[*]}")" \
      --password "$PASSWORD" --mode full --duration "$DURATION" --concurrency "$BROWSERS" \
      --server-pid "$PID" --label "$label" --json-out "$WORK/flow.json" >/dev/null
    python3 - "$WORK/flow.json" "$label" "$round" >>"$WORK/runs" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(json.dumps({"label": sys.argv[2], "round": int(sys.argv[3]), "flows_per_s": d["flows_per_s"],
                  "cpu_ms": d.get("server_cpu_per_flow_ms"), "errors": d["errors"]}))
PY
    tail -n1 "$WORK/runs"
    kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
    [ "$BACKEND" = postgres ] && pg_drop_schema "signin_${label}_$round"
  done
done

python3 - "$WORK/runs" "$BACKEND" "$BROWSERS" <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
med = {}
for label in ("before", "after"):
    rows = [r for r in runs if r["label"] == label]
    med[label] = statistics.median(r["flows_per_s"] for r in rows)
    cpu = statistics.median(r["cpu_ms"] for r in rows)
    print(f"{label}: {med[label]:.1f} flows/s (" + ", ".join(f"{r['flows_per_s']:.1f}" for r in rows)
          + f"), Valet CPU {cpu:.2f} ms per flow, errors {sum(r['errors'] for r in rows)}")
print(f"after / before: {med['after'] / med['before']:.2f} ({sys.argv[2]}, {sys.argv[3]} browsers, cheap hash)")
PY

#!/usr/bin/env bash
# Token-endpoint latency with a large store: p99 with 1,000 refresh-token families
# seeded vs 1,000,000 (and 100,000 users), on SQLite and on PostgreSQL.
#
#   bench/scale.sh [FAMILIES] [USERS] [DURATION_SECONDS] [CONNECTIONS]
#
# For each backend, two fresh stores: 1,000 families with 1,000 users, and FAMILIES
# with USERS (defaults 1,000,000 and 100,000). Each gets a client (authorization_code,
# refresh_token and client_credentials grants) registered with the CLI, the families
# bulk-loaded by the seeding example (crates/valet/examples/seed.rs), and its own
# Valet (release). Then, VALET_BENCH_ROUNDS times (default 3), alternating between the
# two servers, wrk drives each for DURATION seconds (default 10):
#   - refresh_token grants with real seeded tokens: of up to 120,000 families picked
#     at random, each warm-up and each measured run gets its own share; each
#     response's new refresh token is queued and used again later, so no token is
#     ever presented twice;
#   - client_credentials grants.
# Prints requests/s, p50/p99, CPU per request per run, and the ratio of the median
# p99 at FAMILIES to the median p99 at 1,000 (target ≤ 1.5).
# Results: bench/results/scale.jsonl and bench/results/scale.md.
# PostgreSQL: VALET_BENCH_PG (default postgres://postgres@127.0.0.1:5432/test), in a
# fresh schema per size, dropped at the end (VALET_BENCH_KEEP=1 keeps the data).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

FAMILIES="${1:-1000000}"
USERS="${2:-100000}"
DURATION="${3:-10}"
CONNECTIONS="${4:-32}"
SMALL=1000
PORT="${VALET_BENCH_PORT:-18500}"
RESULTS="$RESULTS_DIR/scale.jsonl"
TOKEN_SEED="valet-bench-$(date +%s)"
BACKENDS="${VALET_BENCH_BACKENDS:-sqlite postgres}"
ROUNDS="${VALET_BENCH_ROUNDS:-3}"

need wrk wrk
need curl curl
need psql postgresql-client
case " $BACKENDS " in *" postgres "*) ensure_postgres ;; esac

echo "building (release)" >&2
# Two invocations: the example needs the dev-dependencies, which must not change the
# features (and so the build) of the server binary being measured.
cargo build --release -q -p valet
cargo build --release -q -p valet --example seed
VALET="$RELEASE_DIR/valet"
SEED="$RELEASE_DIR/examples/seed"

WORK="$(mktemp -d)"
PIDS=()
SCHEMAS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -z "${VALET_BENCH_KEEP:-}" ]; then
    for schema in "${SCHEMAS[@]}"; do pg_drop_schema "$schema"; done
    rm -rf "$WORK"
  else
    echo "kept $WORK and schemas ${SCHEMAS[*]}" >&2
  fi
}
trap cleanup EXIT

: >"$RESULTS"
record "$RESULTS" machine meta "$(python3 -c '
import json, os
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
print(json.dumps({"nproc": os.cpu_count(), "cpu": model, "mem_gib": round(mem / 1048576, 1),
                  "load_before": open("/proc/loadavg").read().split()[:3]}))')"

db_size_mib() { # db_size_mib BACKEND DIR SCHEMA
  if [ "$1" = sqlite ]; then
    du -sm "$2" | awk '{print $1}'
  else
    psql -tA "$PG_BASE_URL" -c "SELECT sum(pg_total_relation_size(c.oid)) / 1048576 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '$3' AND c.relkind = 'r'"
  fi
}

with_families() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["families"]=int(sys.argv[2]); d["round"]=int(sys.argv[3]); print(json.dumps(d))' "$@"; }

# Seeds a fresh store with FAMILIES families and starts Valet on it at PORT; sets
# SERVER_PID and BASIC, and writes the token chunks $WORK/tokens-FAMILIES.N.
prepare() { # prepare BACKEND FAMILIES USERS PORT
  local backend="$1" families="$2" users="$3" port="$4" server="valet-$1"
  local dir="$WORK/$backend-$families" schema="valet_bench_scale_$families" url=""
  local args=(--data-dir "$dir")
  if [ "$backend" = postgres ]; then
    SCHEMAS+=("$schema")
    url="$(pg_schema "$schema")"
    args+=(--database-url "$url")
  else
    url="sqlite://$dir/valet.db"
  fi
  echo "$server with $families families, $users users" >&2
  local creds id secret
  "$VALET" "${args[@]}" init >&2   # only serve and init create a store
  creds="$("$VALET" "${args[@]}" client create --name scale --redirect-uri https://app.example.test/callback \
    --grant-type authorization_code --grant-type refresh_token --grant-type client_credentials \
    --scope read --audience https://api.example.test --json)"
  id="$(json_field "$creds" client_id)"; secret="$(json_field "$creds" client_secret)"
  BASIC="$(printf '%s:%s' "$id" "$secret" | base64 -w0)"

  local t0 t1
  t0="$(date +%s.%N)"
  "$SEED" --database-url "$url" --client-id="$id" --families "$families" --users "$users" --token-seed "$TOKEN_SEED" >&2
  t1="$(date +%s.%N)"
  record "$RESULTS" "$server" seed "{\"families\": $families, \"users\": $users, \"seconds\": $(awk "BEGIN {print $t1 - $t0}"), \"size_mib\": $(db_size_mib "$backend" "$dir" "$schema")}"
  token_chunks "$TOKEN_SEED" "$families" 120000 "$WORK/tokens-$families" $((2 * ROUNDS))

  "$VALET" "${args[@]}" serve --bind "127.0.0.1:$port" >"$WORK/$server-$families.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  wait_ready "http://127.0.0.1:$port/readyz"
}

measure() { # measure BACKEND FAMILIES PORT PID BASIC ROUND
  local server="valet-$1" families="$2" url="http://127.0.0.1:$3/token" pid="$4" basic="$5" round="$6"
  refresh_lua "$WORK/warm.lua" "$WORK/tokens-$families.$((2 * round))" "$basic"
  refresh_lua "$WORK/refresh.lua" "$WORK/tokens-$families.$((2 * round + 1))" "$basic"
  wrk -t1 -c"$CONNECTIONS" -d3s -s "$WORK/warm.lua" "$url" >/dev/null
  record "$RESULTS" "$server" refresh_token "$(with_families "$(WARMUP=0 measure_wrk "$WORK/refresh.lua" "$url" "$DURATION" "$CONNECTIONS" "$pid")" "$families" "$round")"
  wrk_script "$WORK/cc.lua" "grant_type=client_credentials&scope=read" "$basic"
  record "$RESULTS" "$server" client_credentials "$(with_families "$(measure_wrk "$WORK/cc.lua" "$url" "$DURATION" "$CONNECTIONS" "$pid")" "$families" "$round")"
}

# Both sizes are up at once (the idle one costs nothing) and measured in alternation,
# ROUNDS times, so that drift in the machine's load hits both alike; the summary
# compares medians over the rounds.
for backend in $BACKENDS; do
  prepare "$backend" "$SMALL" "$SMALL" "$PORT"
  SMALL_PID="$SERVER_PID"; SMALL_BASIC="$BASIC"
  prepare "$backend" "$FAMILIES" "$USERS" $((PORT + 1))
  BIG_PID="$SERVER_PID"; BIG_BASIC="$BASIC"
  for round in $(seq 0 $((ROUNDS - 1))); do
    echo "round $((round + 1)) of $ROUNDS" >&2
    measure "$backend" "$SMALL" "$PORT" "$SMALL_PID" "$SMALL_BASIC" "$round"
    measure "$backend" "$FAMILIES" $((PORT + 1)) "$BIG_PID" "$BIG_BASIC" "$round"
  done
  for pid in "$SMALL_PID" "$BIG_PID"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
  if [ -z "${VALET_BENCH_KEEP:-}" ]; then
    if [ "$backend" = postgres ]; then
      pg_drop_schema "valet_bench_scale_$SMALL"
      pg_drop_schema "valet_bench_scale_$FAMILIES"
    fi
    rm -rf "$WORK/$backend-$SMALL" "$WORK/$backend-$FAMILIES"
  fi
done

python3 bench/summarize.py scale "$RESULTS" | tee "$RESULTS_DIR/scale.md"

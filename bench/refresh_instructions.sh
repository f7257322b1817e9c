#!/usr/bin/env bash
# Instructions per refresh rotation, exactly: Valet (SQLite, durable, group
# commit) under valgrind callgrind while a driver rotates seeded refresh tokens.
#
#   bench/refresh_instructions.sh BINARY... [-- COUNT=300 CONCURRENCY=1]
#
# For each binary: a fresh store with one confidential client and COUNT + 50
# seeded families (crates/valet/examples/seed.rs, scope `read`: one ES256
# access token per rotation, no ID token), the server under callgrind, 50
# rotations to warm up, counters zeroed, COUNT rotations (each of a different
# family, CONCURRENCY keep-alive connections at once), counters dumped. Prints
# one line per binary: instructions per rotation of the whole server process
# (every thread: Tokio workers, sqlx's SQLite workers, the committer). Callgrind
# counts are exact whatever else the host is doing, unlike wall-clock figures.
# VALET_BENCH_CALLGRIND_DIR keeps the dumps (for callgrind_annotate).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

BINARIES=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do BINARIES+=("$(realpath "$1")"); shift; done
[ "${1:-}" = -- ] && shift
COUNT="${1:-300}"
CONCURRENCY="${2:-1}"
WARM=50
PORT="${VALET_BENCH_PORT:-18700}"
[ ${#BINARIES[@]} -ge 1 ] || { sed -n '2,15p' "$0" >&2; exit 2; }
need valgrind valgrind
# The seed only writes rows: a debug build does (and needs no release build).
cargo build -q -p valet --example seed
SEED="${CARGO_TARGET_DIR:-target}/debug/examples/seed"

WORK="$(mktemp -d)"
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT

cat >"$WORK/rotate.py" <<'PY'
import http.client, sys, threading
port, basic, tokens_file, first, count, concurrency = sys.argv[1:7]
first, count, concurrency = int(first), int(count), int(concurrency)
tokens = open(tokens_file).read().split()[first:first + count]
assert len(tokens) == count, "not enough seeded tokens"
failures = []
def worker(mine):
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=600)
    for token in mine:
        conn.request("POST", "/token", body=f"grant_type=refresh_token&refresh_token={token}",
                     headers={"Authorization": f"Basic {basic}",
                              "Content-Type": "application/x-www-form-urlencoded"})
        reply = conn.getresponse()
        body = reply.read()
        if reply.status != 200 or b'"refresh_token"' not in body:
            failures.append((reply.status, body[:200]))
threads = [threading.Thread(target=worker, args=(tokens[i::concurrency],)) for i in range(concurrency)]
for t in threads: t.start()
for t in threads: t.join()
if failures:
    sys.exit(f"{len(failures)} rotations failed, first: {failures[0]}")
PY

for binary in "${BINARIES[@]}"; do
  data="$WORK/data-$PORT"
  "$binary" --data-dir "$data" init >/dev/null 2>&1
  creds="$("$binary" --data-dir "$data" client create --name callgrind \
    --redirect-uri https://app.example.test/callback --grant-type authorization_code \
    --grant-type refresh_token --scope read --audience https://api.example.test --json)"
  id="$(json_field "$creds" client_id)"; secret="$(json_field "$creds" client_secret)"
  basic="$(printf '%s:%s' "$id" "$secret" | base64 -w0)"
  families=$((COUNT + WARM))
  "$SEED" --database-url "sqlite://$data/valet.db" --client-id="$id" --families "$families" \
    --users 100 --token-seed callgrind >/dev/null 2>&1
  # Family i's token, in order (the same derivation as seed.rs).
  python3 - "$families" >"$WORK/tokens" <<'PY'
import base64, hashlib, sys
for i in range(int(sys.argv[1])):
    digest = hashlib.sha256(f"callgrind:{i}".encode()).digest()
    print("vrt_" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode())
PY
  valgrind --tool=callgrind --dump-line=no --compress-strings=no \
    --callgrind-out-file="$WORK/callgrind-$PORT.out" \
    "$binary" --data-dir "$data" serve --bind "127.0.0.1:$PORT" >"$WORK/serve-$PORT.log" 2>&1 &
  PID=$!
  wait_ready "http://127.0.0.1:$PORT/readyz" 1200
  python3 "$WORK/rotate.py" "$PORT" "$basic" "$WORK/tokens" 0 "$WARM" "$CONCURRENCY"
  callgrind_control -z "$PID" >/dev/null
  python3 "$WORK/rotate.py" "$PORT" "$basic" "$WORK/tokens" "$WARM" "$COUNT" "$CONCURRENCY"
  callgrind_control -d "$PID" >/dev/null
  dump="$(ls -t "$WORK/callgrind-$PORT.out".* | head -n1)"
  per="$(awk -v n="$COUNT" '$1 == "totals:" {t += $2} END {printf "%.0f", t / n}' "$dump")"
  echo "$binary: $per instructions per rotation ($COUNT rotations, $CONCURRENCY connections)"
  if [ -n "${VALET_BENCH_CALLGRIND_DIR:-}" ]; then
    mkdir -p "$VALET_BENCH_CALLGRIND_DIR"
    cp "$dump" "$VALET_BENCH_CALLGRIND_DIR/callgrind.$PORT.out"
  fi
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
  PORT=$((PORT + 1))
done

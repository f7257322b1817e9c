#!/usr/bin/env bash
# What `valet gateway` adds to an API call: wrk through the gateway (session
# cookie in, access token injected) to an API behind `valet guard`, against wrk
# straight to the guard with a token of the same client and user.
#
#   bench/gateway_proxy.sh [DURATION_SECONDS] [CONNECTIONS] [ROUNDS]
#
# Starts Valet (SQLite), the guard in front of Valet's own /healthz (a fast
# upstream, so the proxies dominate), and the gateway with an in-memory session
# store; signs a user in through the gateway and, for the direct run, through
# the code flow at Valet. VALET_BENCH_BIN picks the binary (default: a release
# build, made if missing). With VALET_BENCH_BEFORE_BIN (e.g. a build of main), a
# second gateway from that binary is measured in the same rounds, in front of
# the same guard and Valet.
#
# In one run, each measured in ROUNDS interleaved rounds (the order rotating)
# and reported as the median:
# - saturated throughput (wrk, CONNECTIONS connections) and its ratio
#   gateway/direct, with the CPU per request of each process;
# - latency at one connection: the p50 the gateway adds;
# - instructions per request (valgrind callgrind, so exact and independent of
#   the host's load) of the gateway process and of the guard process, each run
#   under callgrind in a copy of its own while the others run natively.
# Appends every measurement to bench/results/gateway_proxy.jsonl;
# VALET_BENCH_CALLGRIND_DIR keeps the callgrind dumps (for callgrind_annotate).
# VALET_BENCH_ONLY_COUNT=1 skips the wrk runs (instructions only).
# VALET_BENCH_NGINX=1 adds a reference hop to the same rounds: nginx (Debian's
# package, installed if missing; as many worker processes as cores) proxying
# /api/ to the same guard over a keep-alive pool and adding the same token's
# Authorization header: what the leanest usual reverse proxy adds in this
# topology, with no session to look up.
# VALET_BENCH_STRACE=1 also counts each proxy's system calls per request
# (strace -c on all its threads during a wrk run at CONNECTIONS; the counts, not
# the rate, are what it is for: strace slows the process it watches).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

DURATION="${1:-10}"
CONNS="${2:-16}"
ROUNDS="${3:-3}"
[ "${VALET_BENCH_ONLY_COUNT:-0}" = 1 ] && ROUNDS=0
LATENCY_DURATION="${VALET_BENCH_LATENCY_SECONDS:-5}"
COUNTED="${VALET_BENCH_COUNTED_REQUESTS:-2000}"
VALET_PORT="${VALET_BENCH_PORT:-18190}"
GUARD_PORT=$((VALET_PORT + 1))
GATEWAY_PORT=$((VALET_PORT + 2))
BEFORE_PORT=$((VALET_PORT + 3))
COUNTED_GATEWAY_PORT=$((VALET_PORT + 4))
COUNTED_BEFORE_PORT=$((VALET_PORT + 5))
COUNTED_GUARD_PORT=$((VALET_PORT + 6))
NGINX_PORT=$((VALET_PORT + 7))
AUDIENCE=https://api.example.test
PASSWORD="bench gateway password"

VALET="$(valet_binary "${VALET_BENCH_BIN:-}")"
BEFORE="${VALET_BENCH_BEFORE_BIN:-}"
need wrk wrk
need valgrind valgrind
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

"$VALET" --data-dir "$WORK/data" serve --bind "127.0.0.1:$VALET_PORT" >"$WORK/valet.log" 2>&1 &
VALET_PID=$!
PIDS+=("$VALET_PID")
wait_ready "http://127.0.0.1:$VALET_PORT/readyz"
REDIRECTS=()
for port in "$GATEWAY_PORT" "$BEFORE_PORT" "$COUNTED_GATEWAY_PORT" "$COUNTED_BEFORE_PORT"; do
  REDIRECTS+=(--redirect-uri "http://127.0.0.1:$port/bff/callback")
done
CREDS="$("$VALET" --data-dir "$WORK/data" client create --name gateway "${REDIRECTS[@]}" \
  --audience "$AUDIENCE" --skip-consent --access-token-ttl 3600 --json)"
CLIENT_ID="$(json_field "$CREDS" client_id)"
CLIENT_SECRET="$(json_field "$CREDS" client_secret)"
printf '%s' "$PASSWORD" | "$VALET" --data-dir "$WORK/data" user create --username bench \
  --email bench@example.test --email-verified --password-stdin --json >/dev/null

# Under callgrind, a process counts every instruction it runs (CALLGRIND=1).
CALLGRIND=(valgrind --tool=callgrind --dump-line=no --compress-strings=no)
start_guard() { # start_guard PORT [CALLGRIND] -> STARTED_PID
  local wrap=()
  [ -n "${2:-}" ] && wrap=("${CALLGRIND[@]}" "--callgrind-out-file=$WORK/callgrind-$1.out")
  "${wrap[@]}" "$VALET" guard --issuer "http://127.0.0.1:$VALET_PORT" --audience "$AUDIENCE" \
    --upstream "http://127.0.0.1:$VALET_PORT" --bind "127.0.0.1:$1" >"$WORK/guard-$1.log" 2>&1 &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
  wait_ready "http://127.0.0.1:$1/.well-known/valet-guard/ready" 2400
}
start_gateway() { # start_gateway BINARY PORT [CALLGRIND] -> STARTED_PID
  local wrap=()
  [ -n "${3:-}" ] && wrap=("${CALLGRIND[@]}" "--callgrind-out-file=$WORK/callgrind-$2.out")
  VALET_GATEWAY_CLIENT_SECRET="$CLIENT_SECRET" "${wrap[@]}" "$1" gateway \
    --issuer "http://127.0.0.1:$VALET_PORT" --client-id "$CLIENT_ID" \
    --bind "127.0.0.1:$2" --api "/api=http://127.0.0.1:$GUARD_PORT" >"$WORK/gateway-$2.log" 2>&1 &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
  wait_ready "http://127.0.0.1:$2/bff/health" 2400
}

# Signs in as a browser would: `gateway PORT` prints the gateway's session
# cookie; `token` prints an access token of the same client and user, got
# through the code flow at Valet directly.
cat >"$WORK/signin.py" <<'PY'
import base64, hashlib, html, http.client, re, secrets, sys, urllib.parse

valet_port, client_id, client_secret, password, mode = sys.argv[1:6]
jar = {}

def send(port, method, target, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn.request(method, target, body=body, headers=headers)
    reply = conn.getresponse()
    for name, value in reply.getheaders():
        if name.lower() == "set-cookie":
            key, _, val = value.split(";")[0].partition("=")
            jar[key.strip()] = val.strip()
    return reply.status, reply.getheader("Location"), reply.read().decode()

def local(url):
    parsed = urllib.parse.urlsplit(url)
    return parsed.port, parsed.path + ("?" + parsed.query if parsed.query else "")

def through_login(location):
    port, target = local(location)
    status, location, page = send(port, "GET", target)
    if status == 200:  # the login form
        field = lambda name: html.unescape(re.search(rf'name="{name}" value="([^"]*)"', page).group(1))
        form = urllib.parse.urlencode({"interaction": field("interaction"), "csrf": field("csrf"),
                                       "username": "bench", "password": password})
        status, location, page = send(port, "POST", "/login", form)
    assert status == 303, (status, page)
    return location

if mode == "gateway":
    gateway_port = sys.argv[6]
    _, location, _ = send(gateway_port, "GET", "/bff/login")
    port, target = local(through_login(location))
    status, _, body = send(port, "GET", target)
    assert status == 303, (status, body)
    print(jar["__Host-valet-gateway"])
    sys.exit(0)

verifier = secrets.token_urlsafe(32)
challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
redirect_uri = f"http://127.0.0.1:{sys.argv[6]}/bff/callback"
query = urllib.parse.urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
                                "scope": "openid", "state": "s", "nonce": "n", "code_challenge": challenge,
                                "code_challenge_method": "S256"})
callback = through_login(f"http://127.0.0.1:{valet_port}/authorize?{query}")
code = urllib.parse.parse_qs(urllib.parse.urlsplit(callback).query)["code"][0]
conn = http.client.HTTPConnection("127.0.0.1", int(valet_port), timeout=30)
basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
conn.request("POST", "/token", body=urllib.parse.urlencode({"grant_type": "authorization_code", "code": code,
             "code_verifier": verifier, "redirect_uri": redirect_uri}),
             headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"})
import json
token = json.loads(conn.getresponse().read())["access_token"]
print(token)
PY
signin() { python3 "$WORK/signin.py" "$VALET_PORT" "$CLIENT_ID" "$CLIENT_SECRET" "$PASSWORD" "$@"; }
lua() { # lua FILE HEADER VALUE
  { echo "wrk.headers[\"$2\"] = \"$3\""; wrk_done_hook; } >"$1"
}

start_guard "$GUARD_PORT"
GUARD_PID=$STARTED_PID
start_gateway "$VALET" "$GATEWAY_PORT"
GATEWAY_PID=$STARTED_PID
TOKEN="$(signin token "$GATEWAY_PORT")"
lua "$WORK/direct.lua" Authorization "Bearer $TOKEN"
SESSION="$(signin gateway "$GATEWAY_PORT")"
lua "$WORK/gateway.lua" Cookie "__Host-valet-gateway=$SESSION"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$GUARD_PORT/healthz")" = 200 ]
[ "$(curl -s -o /dev/null -w '%{http_code}' -b "__Host-valet-gateway=$SESSION" "http://127.0.0.1:$GATEWAY_PORT/api/healthz")" = 200 ]
# name URL LUA PIDS (the first is the proxy measured; all of them are in the path;
# a process of several, such as nginx's workers, is its PIDs joined by commas)
TARGETS=("direct|http://127.0.0.1:$GUARD_PORT/healthz|$WORK/direct.lua|$GUARD_PID $VALET_PID"
         "gateway|http://127.0.0.1:$GATEWAY_PORT/api/healthz|$WORK/gateway.lua|$GATEWAY_PID $GUARD_PID $VALET_PID")
if [ -n "$BEFORE" ]; then
  start_gateway "$BEFORE" "$BEFORE_PORT"
  BEFORE_PID=$STARTED_PID
  lua "$WORK/before.lua" Cookie "__Host-valet-gateway=$(signin gateway "$BEFORE_PORT")"
  TARGETS+=("gateway_before|http://127.0.0.1:$BEFORE_PORT/api/healthz|$WORK/before.lua|$BEFORE_PID $GUARD_PID $VALET_PID")
fi
if [ "${VALET_BENCH_NGINX:-0}" = 1 ]; then
  need nginx nginx-light
  mkdir -p "$WORK/nginx"
  cat >"$WORK/nginx/nginx.conf" <<NGINX
worker_processes auto;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  upstream guard { server 127.0.0.1:$GUARD_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location /api/ {
      proxy_pass http://guard/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer $TOKEN";
    }
  }
}
NGINX
  nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
  wait_ready "http://127.0.0.1:$NGINX_PORT/api/healthz"
  # The workers do the proxying; the master only watches them.
  NGINX_WORKERS="$(pgrep -P "$NGINX_PID" | paste -sd,)"
  lua "$WORK/nginx.lua" Accept '*/*'
  TARGETS+=("nginx|http://127.0.0.1:$NGINX_PORT/api/healthz|$WORK/nginx.lua|$NGINX_WORKERS $GUARD_PID $VALET_PID")
fi

RESULTS="$RESULTS_DIR/gateway_proxy.jsonl"
RUN="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
# One wrk run; the JSON gets the CPU per request of each process in the path.
measure() { # measure NAME URL LUA "PIDS" DURATION CONNECTIONS KIND ROUND
  local name="$1" url="$2" lua="$3" pids="$4" duration="$5" conns="$6" kind="$7" round="$8" before after out
  wrk -t1 -c"$conns" -d2s -s "$lua" "$url" >/dev/null
  before="$(for pid in $pids; do cpu_split ${pid//,/ }; done | tr '\n' ' ')"
  out="$(WARMUP=0 measure_wrk "$lua" "$url" "$duration" "$conns" ${pids//,/ })"
  after="$(for pid in $pids; do cpu_split ${pid//,/ }; done | tr '\n' ' ')"
  out="$(python3 - "$out" "$before" "$after" "$TICKS_PER_SEC" "$kind" "$round" "$RUN" <<'PY'
import json, sys
out, before, after, hz, kind, round_, run = sys.argv[1:]
data = json.loads(out)
b, a = [int(x) for x in before.split()], [int(x) for x in after.split()]
ok = data["requests"] - data["non2xx"]
def per_request(ticks):
    return ticks / int(hz) / ok * 1e6 if ok else None
per_process = [per_request((a[i] + a[i + 1]) - (b[i] + b[i + 1])) for i in range(0, len(a), 2)]
system = [per_request(a[i + 1] - b[i + 1]) for i in range(0, len(a), 2)]
data.update({"kind": kind, "round": int(round_), "run": run, "cpu_us_per_process": per_process,
             "system_cpu_us_per_process": system})
print(json.dumps(data))
PY
)"
  record "$RESULTS" valet "$name" "$out"
  echo "$out"
}

: >"$WORK/runs.jsonl"
for round in $(seq 1 "$ROUNDS"); do
  # Rotate the order, so no target always runs first on a cooler host.
  ordered=("${TARGETS[@]:$(( (round - 1) % ${#TARGETS[@]} ))}" "${TARGETS[@]:0:$(( (round - 1) % ${#TARGETS[@]} ))}")
  for kind in saturated latency; do
    for target in "${ordered[@]}"; do
      IFS='|' read -r name url lua pids <<<"$target"
      echo "round $round: $kind, $name" >&2
      if [ "$kind" = saturated ]; then
        out="$(measure "$name" "$url" "$lua" "$pids" "$DURATION" "$CONNS" "$kind" "$round")"
      else
        out="$(measure "$name" "$url" "$lua" "$pids" "$LATENCY_DURATION" 1 "$kind" "$round")"
      fi
      python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["name"]=sys.argv[2]; print(json.dumps(d))' \
        "$out" "$name" >>"$WORK/runs.jsonl"
    done
  done
done

if [ "${VALET_BENCH_STRACE:-0}" = 1 ]; then
  need strace strace
  echo "system calls per request (strace -c, wrk -c$CONNS, 5 s)"
  for target in "${TARGETS[@]}"; do
    IFS='|' read -r name url lua pids <<<"$target"
    [ "$name" = direct ] && continue
    traced=()
    for pid in ${pids%% *}; do traced+=(-p "$pid"); done
    # shellcheck disable=SC2086
    strace -c -f -o "$WORK/strace-$name.txt" ${traced[@]//,/ -p } &
    STRACE_PID=$!
    sleep 1
    requests="$(wrk -t1 -c"$CONNS" -d5s -s "$lua" "$url" | sed -n 's/^BENCH.* requests=\([0-9]*\).*/\1/p')"
    kill -INT "$STRACE_PID"
    wait "$STRACE_PID" 2>/dev/null || true
    python3 - "$WORK/strace-$name.txt" "$requests" "$name" <<'PY'
import sys
path, requests, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
calls = {}
for line in open(path):
    fields = line.split()
    if len(fields) >= 5 and fields[0][0].isdigit() and fields[-1] != "total":
        calls[fields[-1]] = int(fields[3])
total = sum(calls.values())
top = ", ".join(f"{n} {c / requests:.2f}" for n, c in sorted(calls.items(), key=lambda kv: -kv[1])[:6])
print(f"  {name}: {total / requests:.2f} per request ({top})")
PY
  done
fi

# Instructions per request: a copy of the process under callgrind, counters
# zeroed after a warm-up, COUNTED requests on one keep-alive connection, dumped.
cat >"$WORK/loop.py" <<'PY'
import http.client, sys
port, path, header, value, count = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=120)
for _ in range(count):
    conn.request("GET", path, headers={header: value})
    reply = conn.getresponse()
    reply.read()
    assert reply.status == 200, reply.status
PY
count_instructions() { # count_instructions PID PORT PATH HEADER VALUE NAME -> instructions per request
  local pid="$1" port="$2"
  python3 "$WORK/loop.py" "$port" "$3" "$4" "$5" 200
  callgrind_control -z "$pid" >/dev/null
  python3 "$WORK/loop.py" "$port" "$3" "$4" "$5" "$COUNTED"
  callgrind_control -d "$pid" >/dev/null
  local dump
  dump="$(ls -t "$WORK/callgrind-$port.out".* | head -n1)"
  awk -v n="$COUNTED" '$1 == "totals:" {printf "%.0f\n", $2 / n}' "$dump"
  [ -n "${VALET_BENCH_CALLGRIND_DIR:-}" ] && mkdir -p "$VALET_BENCH_CALLGRIND_DIR" \
    && cp "$dump" "$VALET_BENCH_CALLGRIND_DIR/callgrind.$6.out"
  kill "$pid"
}
echo "instructions per request (callgrind, $COUNTED requests each)" >&2
start_guard "$COUNTED_GUARD_PORT" callgrind
GUARD_IR="$(count_instructions "$STARTED_PID" "$COUNTED_GUARD_PORT" /healthz Authorization "Bearer $TOKEN" guard)"
start_gateway "$VALET" "$COUNTED_GATEWAY_PORT" callgrind
GATEWAY_IR="$(count_instructions "$STARTED_PID" "$COUNTED_GATEWAY_PORT" /api/healthz Cookie \
  "__Host-valet-gateway=$(signin gateway "$COUNTED_GATEWAY_PORT")" gateway)"
BEFORE_IR=null
if [ -n "$BEFORE" ]; then
  start_gateway "$BEFORE" "$COUNTED_BEFORE_PORT" callgrind
  BEFORE_IR="$(count_instructions "$STARTED_PID" "$COUNTED_BEFORE_PORT" /api/healthz Cookie \
    "__Host-valet-gateway=$(signin gateway "$COUNTED_BEFORE_PORT")" gateway_before)"
fi
record "$RESULTS" valet instructions_per_request \
  "{\"run\": \"$RUN\", \"guard\": $GUARD_IR, \"gateway\": $GATEWAY_IR, \"gateway_before\": $BEFORE_IR}"

python3 - "$WORK/runs.jsonl" "$ROUNDS" "$DURATION" "$CONNS" "$LATENCY_DURATION" "$GUARD_IR" "$GATEWAY_IR" "$BEFORE_IR" <<'PY'
import json, statistics, sys
path, rounds, duration, conns, latency_duration = sys.argv[1:6]
guard_ir, gateway_ir, before_ir = (None if x == "null" else int(x) for x in sys.argv[6:9])
runs = [json.loads(line) for line in open(path)]
names = [n for n in ("direct", "gateway", "gateway_before", "nginx") if any(r["name"] == n for r in runs)]
label = {"direct": "direct to the guard", "gateway": "through the gateway",
         "gateway_before": "through the gateway (before build)",
         "nginx": "through nginx (reference hop)"}
def pick(name, kind):
    return sorted((r for r in runs if r["name"] == name and r["kind"] == kind), key=lambda r: r["round"])
pids = {"direct": ["guard", "valet"], "gateway": ["gateway", "guard", "valet"],
        "gateway_before": ["gateway", "guard", "valet"], "nginx": ["nginx", "guard", "valet"]}
def med(rows, f):
    return statistics.median(f(r) for r in rows)
if not runs:
    names = []
else:
    print(f"saturated: wrk -c{conns}, {duration} s, median of {rounds} interleaved rounds")
    for name in names:
        rows = pick(name, "saturated")
        per_s = ", ".join(f"{r['per_s']:.0f}" for r in rows)
        cpu = " + ".join(f"{statistics.median(r['cpu_us_per_process'][i] for r in rows):.1f}"
                         f" ({statistics.median(r['system_cpu_us_per_process'][i] for r in rows):.1f} kernel)"
                         for i in range(len(rows[0]["cpu_us_per_process"])))
        print(f"  {label[name]}: {med(rows, lambda r: r['per_s']):.0f}/s ({per_s}), "
              f"p50 {med(rows, lambda r: r['p50_ms']):.2f} ms, CPU µs/request of {'+'.join(pids[name])}: {cpu}, "
              f"non-2xx {sum(r['non2xx'] for r in rows)}")
    direct = pick("direct", "saturated")
    for name in names[1:]:
        ratios = [t["per_s"] / d["per_s"] for t, d in zip(pick(name, "saturated"), direct)]
        print(f"  throughput ratio {name}/direct per round: " + ", ".join(f"{x:.2f}" for x in ratios)
              + f"; median {statistics.median(ratios):.2f}")
    print(f"one connection: wrk -c1, {latency_duration} s, median of {rounds} rounds")
    direct = pick("direct", "latency")
    for name in names:
        rows = pick(name, "latency")
        print(f"  {label[name]}: p50 {med(rows, lambda r: r['p50_ms']) * 1000:.0f} µs, "
              f"p99 {med(rows, lambda r: r['p99_ms']) * 1000:.0f} µs, {med(rows, lambda r: r['per_s']):.0f}/s")
    for name in names[1:]:
        added = [(t["p50_ms"] - d["p50_ms"]) * 1000 for t, d in zip(pick(name, "latency"), direct)]
        print(f"  p50 added by {name} per round: " + ", ".join(f"{x:.0f}" for x in added)
              + f" µs; median {statistics.median(added):.0f} µs")
print("instructions per request (callgrind, the process alone):")
print(f"  guard {guard_ir:,}, gateway {gateway_ir:,} ({gateway_ir / guard_ir:.2f}× the guard)")
if before_ir is not None:
    print(f"  gateway before build {before_ir:,} ({before_ir / guard_ir:.2f}× the guard); "
          f"after/before {gateway_ir / before_ir:.2f}")
PY

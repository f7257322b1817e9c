#!/usr/bin/env bash
# What `valet gateway` adds to an API call: wrk through the gateway (session
# cookie in, access token injected) to an API behind `valet guard`, against wrk
# straight to the guard with a token of the same client and user.
#
#   bench/gateway_proxy.sh [DURATION_SECONDS] [CONNECTIONS]
#
# Starts Valet (SQLite), the guard in front of Valet's own /healthz (a fast
# upstream, so the proxies dominate), and the gateway with an in-memory session
# store; signs a user in through the gateway and, for the direct run, through
# the code flow at Valet. VALET_BENCH_BIN picks the binary (default: a release
# build, made if missing). Prints both runs and the ratio, and appends them to
# bench/results/gateway_proxy.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

DURATION="${1:-10}"
CONNS="${2:-16}"
VALET_PORT="${VALET_BENCH_PORT:-18190}"
GUARD_PORT=$((VALET_PORT + 1))
GATEWAY_PORT=$((VALET_PORT + 2))
AUDIENCE=https://api.example.test
PASSWORD="bench gateway password"

VALET="${VALET_BENCH_BIN:-}"
if [ -z "$VALET" ]; then
  VALET="${CARGO_TARGET_DIR:-target}/release/valet"
  [ -x "$VALET" ] || cargo build --release -q -p valet
fi
need wrk wrk
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

"$VALET" --data-dir "$WORK/data" serve --bind "127.0.0.1:$VALET_PORT" >"$WORK/valet.log" 2>&1 &
PIDS+=($!)
wait_ready "http://127.0.0.1:$VALET_PORT/readyz"
CREDS="$("$VALET" --data-dir "$WORK/data" client create --name gateway \
  --redirect-uri "http://127.0.0.1:$GATEWAY_PORT/bff/callback" --audience "$AUDIENCE" \
  --skip-consent --access-token-ttl 3600 --json)"
CLIENT_ID="$(json_field "$CREDS" client_id)"
CLIENT_SECRET="$(json_field "$CREDS" client_secret)"
printf '%s' "$PASSWORD" | "$VALET" --data-dir "$WORK/data" user create --username bench \
  --email bench@example.test --email-verified --password-stdin --json >/dev/null

"$VALET" guard --issuer "http://127.0.0.1:$VALET_PORT" --audience "$AUDIENCE" \
  --upstream "http://127.0.0.1:$VALET_PORT" --bind "127.0.0.1:$GUARD_PORT" >"$WORK/guard.log" 2>&1 &
GUARD_PID=$!
PIDS+=("$GUARD_PID")
wait_ready "http://127.0.0.1:$GUARD_PORT/.well-known/valet-guard/ready"
VALET_GATEWAY_CLIENT_SECRET="$CLIENT_SECRET" "$VALET" gateway \
  --issuer "http://127.0.0.1:$VALET_PORT" --client-id "$CLIENT_ID" \
  --bind "127.0.0.1:$GATEWAY_PORT" --api "/api=http://127.0.0.1:$GUARD_PORT" >"$WORK/gateway.log" 2>&1 &
GATEWAY_PID=$!
PIDS+=("$GATEWAY_PID")
wait_ready "http://127.0.0.1:$GATEWAY_PORT/bff/health"

# Signs in twice as a browser would: through the gateway (its session cookie),
# and as the same client at Valet directly (an access token for the guard).
read -r SESSION TOKEN < <(python3 - "$VALET_PORT" "$GATEWAY_PORT" "$CLIENT_ID" "$CLIENT_SECRET" "$PASSWORD" <<'PY'
import base64, hashlib, html, http.client, re, secrets, sys, urllib.parse

valet_port, gateway_port, client_id, client_secret, password = sys.argv[1:]
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

_, location, _ = send(gateway_port, "GET", "/bff/login")
port, target = local(through_login(location))
status, _, body = send(port, "GET", target)
assert status == 303, (status, body)
session = jar["__Host-valet-gateway"]

verifier = secrets.token_urlsafe(32)
challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
redirect_uri = f"http://127.0.0.1:{gateway_port}/bff/callback"
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
print(session, token)
PY
)

{
  echo "wrk.headers[\"Authorization\"] = \"Bearer $TOKEN\""
  wrk_done_hook
} >"$WORK/direct.lua"
{
  echo "wrk.headers[\"Cookie\"] = \"__Host-valet-gateway=$SESSION\""
  wrk_done_hook
} >"$WORK/gateway.lua"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$GUARD_PORT/healthz")" = 200 ]
[ "$(curl -s -o /dev/null -w '%{http_code}' -b "__Host-valet-gateway=$SESSION" "http://127.0.0.1:$GATEWAY_PORT/api/healthz")" = 200 ]

VALET_PID="${PIDS[0]}"
DIRECT="$(measure_wrk "$WORK/direct.lua" "http://127.0.0.1:$GUARD_PORT/healthz" "$DURATION" "$CONNS" "$GUARD_PID" "$VALET_PID")"
THROUGH="$(measure_wrk "$WORK/gateway.lua" "http://127.0.0.1:$GATEWAY_PORT/api/healthz" "$DURATION" "$CONNS" "$GATEWAY_PID" "$GUARD_PID" "$VALET_PID")"
RESULTS="$RESULTS_DIR/gateway_proxy.jsonl"
record "$RESULTS" valet guard_direct "$DIRECT"
record "$RESULTS" valet through_gateway "$THROUGH"
python3 - "$DIRECT" "$THROUGH" <<'PY'
import json, sys
direct, through = (json.loads(x) for x in sys.argv[1:])
print(f"direct to the guard: {direct['per_s']:.0f}/s, p50 {direct['p50_ms']:.2f} ms, p99 {direct['p99_ms']:.2f} ms, non-2xx {direct['non2xx']}")
print(f"through the gateway: {through['per_s']:.0f}/s, p50 {through['p50_ms']:.2f} ms, p99 {through['p99_ms']:.2f} ms, non-2xx {through['non2xx']}")
print(f"throughput ratio gateway/direct: {through['per_s'] / direct['per_s']:.2f}; "
      f"p50 latency added: {through['p50_ms'] - direct['p50_ms']:.2f} ms")
PY

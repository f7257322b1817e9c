#!/usr/bin/env bash
# The container smoke test: builds the image, starts packaging/compose.yaml
# (PostgreSQL and two Valet nodes), and checks that
#   1. both nodes answer /readyz (and their image's health check passes),
#   2. a client_credentials token issued by node A verifies against node B's
#      JWKS (signature with python3's jwcrypto, then iss/aud/exp),
#   3. node B's introspection says the token is active,
#   4. /metrics is on the metrics port only.
# Then it removes what it started (the database volume included).
#
# Needs Docker with the compose plugin and network access for the base images,
# python3 with jwcrypto (pip install jwcrypto). Not part of .ci/run (CI has no
# Docker daemon). Run from anywhere:
#
#   packaging/smoke.sh
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "smoke: FAILED: $*" >&2; exit 1; }

if ! command -v docker >/dev/null 2>&1; then
  echo "smoke: Docker is not installed here: this test needs Docker with the compose plugin; nothing was tested" >&2
  exit 2
fi
if ! docker info >/dev/null 2>&1; then
  echo "smoke: no Docker daemon answers (docker info failed): start one; nothing was tested" >&2
  exit 2
fi
if ! docker compose version >/dev/null 2>&1; then
  echo "smoke: the docker compose plugin is missing; nothing was tested" >&2
  exit 2
fi
command -v curl >/dev/null 2>&1 || fail "curl is needed"
python3 -c 'import jwcrypto' 2>/dev/null || fail "python3 cannot import jwcrypto (pip install jwcrypto)"

export VALET_IMAGE="${VALET_IMAGE:-valet:smoke}"
export VALET_MASTER_KEY="$(head -c32 /dev/urandom | basenc --base64url | tr -d '=\n')"
export VALET_DB_PASSWORD="$(head -c24 /dev/urandom | basenc --base64url | tr -d '=\n')"
export VALET_ISSUER="http://localhost:8080"
compose=(docker compose -f packaging/compose.yaml -p valet-smoke)

cleanup() { "${compose[@]}" down --volumes --remove-orphans >/dev/null 2>&1 || true; }
trap cleanup EXIT

echo "smoke: building $VALET_IMAGE"
docker build -f packaging/Dockerfile -t "$VALET_IMAGE" .

echo "smoke: starting PostgreSQL and two nodes"
"${compose[@]}" up -d --wait --wait-timeout 180 || {
  "${compose[@]}" logs >&2 || true
  fail "the services did not become healthy"
}

for port in 8081 8082; do
  ready=$(curl -fsS "http://127.0.0.1:$port/readyz") || fail "node on $port: /readyz"
  [ "$ready" = "ready" ] || fail "node on $port: /readyz said $ready"
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/metrics")
  [ "$code" = "404" ] || fail "node on $port: /metrics on the public port answered $code"
done
for port in 9091 9092; do
  curl -fsS "http://127.0.0.1:$port/metrics" | grep -q '^# HELP valet_http_requests_total' \
    || fail "metrics port $port: no # HELP lines"
done
echo "smoke: both nodes ready; /metrics only on the metrics ports"

# A service client, created through node A's container (the CLI on the shared database).
client=$("${compose[@]}" exec -T valet-a valet client create --name smoke \
  --audience https://api.smoke.test --scope read --json)
client_id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])' <<<"$client")
client_secret=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])' <<<"$client")

token=$(curl -fsS -u "$client_id:$client_secret" -d grant_type=client_credentials \
  http://127.0.0.1:8081/token | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])') \
  || fail "node A issued no token"
curl -fsS http://127.0.0.1:8082/jwks.json > /tmp/valet-smoke-jwks.json || fail "node B: /jwks.json"

TOKEN="$token" python3 - /tmp/valet-smoke-jwks.json <<'PY' || fail "node A's token does not verify at node B's JWKS"
import json, os, sys, time
from jwcrypto import jwk, jwt
keys = jwk.JWKSet.from_json(open(sys.argv[1]).read())
token = jwt.JWT(jwt=os.environ["TOKEN"], key=keys, algs=["ES256", "EdDSA", "RS256"])
claims = json.loads(token.claims)
assert claims["iss"] == "http://localhost:8080", claims
assert claims["aud"] in ("https://api.smoke.test", ["https://api.smoke.test"]), claims
assert claims["exp"] > time.time(), claims
print("smoke: node A's token verifies at node B's JWKS:", claims["client_id"])
PY

active=$(curl -fsS -u "$client_id:$client_secret" --data-urlencode "token=$token" \
  http://127.0.0.1:8082/introspect | python3 -c 'import json,sys; print(json.load(sys.stdin)["active"])')
[ "$active" = "True" ] || fail "node B's introspection: active=$active"

echo "smoke: passed"

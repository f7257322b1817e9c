"""A small OpenID provider and OAuth 2 provider for Valet's federation tests.

    python3 fake_provider.py PORT CLIENT_ID CLIENT_SECRET

Serves discovery, a JWKS (an ES256 key made at start), /authorize (no login:
it answers at once for the identity set by /control), /token (client
authentication, single-use codes, PKCE S256 checked) and /userinfo (GitHub
style: a numeric `id`, `login`, `mail`). `GET /control?sub=…&email=…&
email_verified=true|false&mode=…` sets the identity and the misbehaviour of
the next sign-ins: good, bad_nonce, bad_aud, bad_iss, bad_sig, expired,
token_error, deny, wrong_iss_param, no_iss_param. Prints "ready" once listening.
"""

import base64
import hashlib
import json
import secrets
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

from jwcrypto import jwk, jwt

PORT = int(sys.argv[1])
CLIENT_ID = sys.argv[2]
CLIENT_SECRET = sys.argv[3]
ISSUER = f"http://127.0.0.1:{PORT}"
KEY = jwk.JWK.generate(kty="EC", crv="P-256", kid="fake-1", alg="ES256")
OTHER_KEY = jwk.JWK.generate(kty="EC", crv="P-256", kid="fake-1", alg="ES256")
STATE = {"sub": "user-1", "email": "user@example.test", "email_verified": True, "mode": "good"}
CODES = {}
TOKENS = {}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send_json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def redirect(self, location):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/.well-known/openid-configuration":
            self.send_json(200, {
                "issuer": ISSUER,
                "authorization_endpoint": ISSUER + "/authorize",
                "token_endpoint": ISSUER + "/token",
                "userinfo_endpoint": ISSUER + "/userinfo",
                "jwks_uri": ISSUER + "/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["ES256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_post"],
                "authorization_response_iss_parameter_supported": True,
            })
        elif url.path == "/jwks":
            self.send_json(200, {"keys": [json.loads(KEY.export_public())]})
        elif url.path == "/control":
            STATE.update(query)
            STATE["email_verified"] = query.get("email_verified", "true") == "true"
            self.send_json(200, STATE)
        elif url.path == "/authorize":
            self.authorize(query)
        elif url.path == "/userinfo":
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            who = TOKENS.get(token)
            if who is None:
                self.send_json(401, {"error": "invalid_token"})
                return
            self.send_json(200, {"id": int(who["sub"]) if who["sub"].isdigit() else who["sub"],
                                 "login": who["sub"], "mail": who["email"]})
        else:
            self.send_json(404, {"error": "not_found"})

    def authorize(self, query):
        mode = STATE["mode"]
        redirect_uri = query["redirect_uri"]
        params = {"state": query.get("state", "")}
        if mode == "deny":
            params["error"] = "access_denied"
        else:
            code = secrets.token_urlsafe(16)
            CODES[code] = dict(query, who=dict(STATE))
            params["code"] = code
        if mode == "wrong_iss_param":
            params["iss"] = "http://127.0.0.1:1"
        elif mode != "no_iss_param":
            params["iss"] = ISSUER
        self.redirect(redirect_uri + "?" + urlencode(params))

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if urlparse(self.path).path != "/token":
            self.send_json(404, {"error": "not_found"})
            return
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            self.send_json(401, {"error": "invalid_client"})
            return
        grant = CODES.pop(form.get("code", ""), None)
        if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
            self.send_json(400, {"error": "invalid_grant"})
            return
        challenge = b64url(hashlib.sha256(form.get("code_verifier", "").encode()).digest())
        if grant.get("code_challenge") != challenge or grant.get("code_challenge_method") != "S256":
            self.send_json(400, {"error": "invalid_grant", "error_description": "PKCE"})
            return
        who = grant["who"]
        mode = who["mode"]
        if mode == "token_error":
            self.send_json(500, {"error": "server_error"})
            return
        now = int(time.time())
        claims = {
            "iss": "http://127.0.0.1:1" if mode == "bad_iss" else ISSUER,
            "aud": "someone-else" if mode == "bad_aud" else CLIENT_ID,
            "sub": who["sub"], "email": who["email"],
            "email_verified": who["email_verified"], "name": "Fake " + who["sub"],
            "iat": now, "exp": now - 3600 if mode == "expired" else now + 300,
            "nonce": "not-the-nonce" if mode == "bad_nonce" else grant.get("nonce", ""),
        }
        key = OTHER_KEY if mode == "bad_sig" else KEY
        token = jwt.JWT(header={"alg": "ES256", "kid": "fake-1", "typ": "JWT"}, claims=claims)
        token.make_signed_token(key)
        access_token = secrets.token_urlsafe(16)
        TOKENS[access_token] = who
        self.send_json(200, {"access_token": access_token, "token_type": "Bearer",
                             "expires_in": 300, "id_token": token.serialize()})


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print("ready", flush=True)
server.serve_forever()

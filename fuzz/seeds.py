#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets to fuzz/corpus/<target>/ (committed).

Tokens are signed with the TEST-ONLY keys of crates/valet-jose/tests/fixtures/
private_jwks.json, the keys guard_verify trusts. Needs Python `cryptography`.
Run from anywhere: python3 fuzz/seeds.py  (ECDSA signatures differ at each run).
"""
import base64, hashlib, json, pathlib, zlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

FUZZ = pathlib.Path(__file__).resolve().parent
FIXTURES = FUZZ.parent / "crates/valet-jose/tests/fixtures"
ISSUER = "https://id.example"
AUDIENCE = "https://api.example"
NOW = 1_800_000_000  # the targets' clock
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 appendix B
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def num(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def compact(value) -> bytes:
    """JSON as serde_json writes a serde_json::Value: sorted keys, no whitespace."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


jwks = json.loads((FIXTURES / "private_jwks.json").read_text())
ec_jwk, rsa_jwk = jwks["keys"]
ec_key = ec.EllipticCurvePrivateNumbers(
    num(ec_jwk["d"]), ec.EllipticCurvePublicNumbers(num(ec_jwk["x"]), num(ec_jwk["y"]), ec.SECP256R1())
).private_key()
rsa_public = rsa.RSAPublicNumbers(num(rsa_jwk["e"]), num(rsa_jwk["n"]))
rsa_key = rsa.RSAPrivateNumbers(
    num(rsa_jwk["p"]), num(rsa_jwk["q"]), num(rsa_jwk["d"]),
    num(rsa_jwk["dp"]), num(rsa_jwk["dq"]), num(rsa_jwk["qi"]), rsa_public,
).private_key()
rsa_kid = b64u(hashlib.sha256(compact({"e": rsa_jwk["e"], "kty": "RSA", "n": rsa_jwk["n"]})).digest())
VALET_HEADER = {"alg": "ES256", "typ": "at+jwt", "kid": "ec-test-1"}


def jws(header: dict, claims, alg: str = "ES256") -> str:
    payload = claims if isinstance(claims, bytes) else compact(claims)
    signing_input = (b64u(json.dumps(header, separators=(",", ":")).encode()) + "." + b64u(payload)).encode()
    if alg == "ES256":
        r, s = decode_dss_signature(ec_key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif alg == "RS256":
        signature = rsa_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = b""
    return signing_input.decode() + "." + b64u(signature)


def access_claims(**changes) -> dict:
    claims = {
        "iss": ISSUER, "sub": "alice", "aud": AUDIENCE, "exp": NOW + 600, "iat": NOW,
        "jti": "jti-1", "client_id": "shop-frontend", "scope": "orders:read profile",
        "status": {"status_list": {"idx": 7, "uri": f"{ISSUER}/statuslists/0"}},
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def zlib_b64(raw: bytes) -> str:
    return b64u(zlib.compress(raw))


def write(target: str, seeds: dict) -> None:
    folder = FUZZ / "corpus" / target
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    for name, data in seeds.items():
        (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())


# guard_verify: R token | S header\npayload | T pos pos byte payload | J jwks
ec_public = {k: ec_jwk[k] for k in ("kty", "crv", "kid", "alg", "use", "x", "y")}
rsa_public_jwk = {"kty": "RSA", "kid": rsa_kid, "use": "sig", "alg": "RS256", "n": rsa_jwk["n"], "e": rsa_jwk["e"]}
write("guard_verify", {
    "es256_access_token": "R" + jws(VALET_HEADER, access_claims()),
    "rs256_access_token": "R" + jws({"alg": "RS256", "typ": "application/at+jwt", "kid": rsa_kid},
                                    access_claims(aud=[AUDIENCE, "https://other.example"]), "RS256"),
    "expired_no_status": "R" + jws(VALET_HEADER, access_claims(exp=NOW - 31, status=None)),
    "id_token_typ_jwt": "R" + jws({"alg": "ES256", "typ": "JWT", "kid": "ec-test-1"}, access_claims()),
    "alg_none": "R" + jws({"alg": "none", "typ": "at+jwt", "kid": "ec-test-1"}, access_claims(), "none") + "AAAA",
    "crit_b64": "R" + jws({"alg": "ES256", "typ": "at+jwt", "kid": "ec-test-1", "crit": ["b64"], "b64": False},
                          access_claims()),
    "sign_valet_header": b"S\n" + compact(access_claims(scope="a  b", nbf=NOW + 30)),
    "sign_odd_numbers": b"S\n" + compact(access_claims(exp=1.8e18, iat=-5, aud=[AUDIENCE])),
    "sign_own_header": b"S" + compact({"alg": "ES256", "kid": "ec-test-1", "typ": "Application/AT+JWT",
                                       "jku": "https://evil.example/jwks"}) + b"\n" + compact(access_claims()),
    "tamper_payload": b"T\x00\x50\x41" + compact(access_claims()),
    "tamper_signature": b"T\x01\x40\x2d" + compact(access_claims()),
    "jwks": "J" + json.dumps({"keys": [ec_public, rsa_public_jwk,
                                       {"kty": "oct", "kid": "h", "k": "AAAA"},
                                       {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}),
})

# token_request: AUTHORIZATION\nBODY
basic = "Basic " + base64.b64encode(b"shop%2Bfront:s3cr%3At+x").decode()
write("token_request", {
    "authorization_code_public": "\ngrant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA"
                                 "&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&code_verifier=" + VERIFIER
                                 + "&client_id=shop-frontend",
    "client_credentials_basic": basic + "\ngrant_type=client_credentials&scope=orders%3Aread+orders%3Awrite"
                                        "&resource=https%3A%2F%2Fapi.example&resource=https%3A%2F%2Fb.example",
    "refresh_post": "\ngrant_type=refresh_token&refresh_token=rt_9Xk2mQ&scope=openid&client_id=app&client_secret=pw",
    "basic_and_body_id": basic + "\ngrant_type=refresh_token&refresh_token=x&client_id=shop%2Bfront",
    "repeated_and_empty": "\ngrant_type=client_credentials&scope=&scope=a&client_id=a&client_id=b",
    "introspection": "basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\ntoken=eyJhbGciOiJFUzI1NiJ9.e30.sig&token_type_hint=access_token",
})

# authorize_request: the query string
write("authorize_request", {
    "full": f"response_type=code&client_id=shop-frontend&redirect_uri=https%3A%2F%2Fapp.example%2Fcb"
            f"&scope=openid%20profile%20orders%3Aread&state=xyz%20%26%3D%2B&nonce=n-0S6_WzA2Mj"
            f"&code_challenge={CHALLENGE}&code_challenge_method=S256&prompt=login%20consent&max_age=600"
            f"&response_mode=form_post&login_hint=alice%40example.com&resource=https%3A%2F%2Fapi.example",
    "minimal": f"response_type=code&client_id=c&code_challenge={CHALLENGE}&code_challenge_method=S256",
    "plain_pkce": "response_type=code&client_id=c&code_challenge=abc&code_challenge_method=plain&state=s",
    "prompt_none_login": f"response_type=code&client_id=c&code_challenge={CHALLENGE}"
                         f"&code_challenge_method=S256&prompt=none+login&state=%FF%FE",
    "implicit": "response_type=token&client_id=c&response_mode=fragment&state=s&state=t",
})

# redirect_uri: requested\nregistered...
write("redirect_uri", {
    "exact": "https://app.example/cb\nhttps://app.example/cb\nhttps://app.example/other",
    "loopback_port": "http://127.0.0.1:53117/callback\nhttp://127.0.0.1/callback\nhttp://[::1]/cb",
    "ipv6_port_query": "http://[::1]:8000/cb?x=1\nhttp://[::1]/cb?x=1",
    "userinfo_trick": "http://127.0.0.1:80@evil.example/callback\nhttp://127.0.0.1/callback",
    "none_one_registered": "\nhttps://only.example/cb",
    "native_scheme": "com.example.app:/oauth\ncom.example.app:/oauth\nhttp://localhost:3000/cb",
    "near_misses": "https://app.example/cb/\nhttps://app.example/cb\nhttp://127.0.0.1:8080/cb",
    # The first crash: user info parsed as a port gave a non-IP host the port freedom.
    "userinfo_as_port": "http://127.0.0.1:8080/cb\nhttp://127.0.0.1:1@localhost/cb\nhttp://[::1]:6@attt",
})

# status_list: C claims | Z bits zlib | B bits raw | G access claims | I index
bits = bytearray(128 * 1024)
for index in (0, 7, 1000, 1 << 19, (1 << 20) - 1):
    bits[index // 8] |= 1 << (index % 8)
list_claims = {
    "iss": ISSUER, "sub": f"{ISSUER}/statuslists/0", "iat": NOW, "exp": NOW + 86_400, "ttl": 30,
    "status_list": {"bits": 1, "lst": zlib_b64(bytes(bits))},
}
write("status_list", {
    "valet_list_claims": b"C" + compact(list_claims),
    "draft_one_bit": b"C" + compact({**list_claims, "status_list": {"bits": 1, "lst": "eNrbuRgAAhcBXQ"}}),
    "draft_two_bits": b"C" + compact({**list_claims, "ttl": 0, "status_list": {"bits": 2, "lst": "eNo76fITAAPfAgc"}}),
    "zlib_four_bits": b"Z\x02" + zlib.compress(bytes([0x21, 0xF0, 0x00, 0xFF])),
    "zlib_bomb_small": b"Z\x00" + zlib.compress(bytes(200_000), 9),
    "raw_two_bits": b"B\x01" + bytes([0xC9, 0x44, 0xF9]),
    "raw_eight_bits": b"B\x03" + bytes(range(32)),
    "bad_bits": b"B\xf3" + bytes([1, 2, 3]),
    "access_claims": b"G" + compact(access_claims(status={"status_list": {"idx": 5, "uri": f"{ISSUER}/statuslists/3"}})),
    "index": b"I" + (3 * (1 << 20) + 5).to_bytes(8, "big"),
})

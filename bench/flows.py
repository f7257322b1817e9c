#!/usr/bin/env python3
"""Load generator for the browser flow: Authorization Code + PKCE, as flows per second.

    bench/flows.py --base http://127.0.0.1:18080 --client-id ID --client-secret SECRET \
        --users alice,bob --password PW --mode full --duration 15 --concurrency 4 \
        [--server-pid PID ...] [--label NAME] [--json-out FILE]

Each worker is a process with its own keep-alive connection and cookie jar (a
"browser", as in crates/valet-server/tests/api/common.rs), driving:

  GET /authorize → (login form → POST) → (consent form → POST) → redirect with code
  → POST /token (authorization_code, PKCE verifier) → POST /token (refresh_token)

It follows redirects and fills whatever form the server shows: hidden inputs are
sent back as they are, `username`/`login` and `password` get the worker's user,
`decision` gets `allow`. So the same driver runs against Valet and against
oidc-provider's devInteractions pages.

Modes:
  full     a new browser per flow (no session) with prompt=consent: every flow signs
           in (one password verification at Valet) and consents;
  sso      one browser per worker, signed in once before the clock starts; consent
           is remembered, so each flow is authorize (immediate redirect) → code
           exchange → refresh, with no password hashing;
  refresh  one refresh token per worker (from one flow before the clock starts),
           then only refresh_token grants, each with the token the last one returned.

With --server-pid, the server's CPU time (utime + stime from /proc, summed over the
given pids) over the measured window is reported per flow. Only the standard library
is used, so that the generator itself costs as little CPU as it can.
"""

import argparse
import base64
import hashlib
import html
import http.client
import json
import multiprocessing
import os
import re
import secrets
import sys
import time
import urllib.parse

REDIRECT_URI = "https://app.example.test/callback"
STEPS = ("authorize", "login", "consent", "token", "refresh")


class Browser:
    def __init__(self, base):
        url = urllib.parse.urlsplit(base)
        self.host, self.port = url.hostname, url.port
        self.conn = None
        self.cookies = {}

    def request(self, method, target, body=None, headers=None):
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                self.conn.request(method, target, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        for name, value in response.getheaders():
            if name.lower() != "set-cookie":
                continue
            pair = value.split(";", 1)[0]
            key, _, val = pair.partition("=")
            key = key.strip()
            if not val or "max-age=0" in value.lower() or "expires=thu, 01 jan 1970" in value.lower():
                self.cookies.pop(key, None)
            else:
                self.cookies[key] = val
        if response.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        return response.status, response.getheader("Location"), data


FORM = re.compile(r"<form[^>]*action=\"([^\"]*)\"[^>]*>(.*?)</form>", re.S | re.I)
INPUT = re.compile(r"<input([^>]*)>", re.I)
ATTR = re.compile(r"(\w+)=\"([^\"]*)\"")


def parse_form(page):
    match = FORM.search(page)
    if not match:
        return None, None
    action, inner = html.unescape(match.group(1)), match.group(2)
    fields = {}
    for tag in INPUT.findall(inner):
        attrs = {k.lower(): html.unescape(v) for k, v in ATTR.findall(tag)}
        if "name" in attrs:
            fields[attrs["name"]] = attrs.get("value", "")
    return action, fields


def path_of(location):
    url = urllib.parse.urlsplit(location)
    return url.path + ("?" + url.query if url.query else "")


class FlowError(Exception):
    pass


def pkce():
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize(browser, args, user, prompt_consent, times):
    """Drives /authorize to the redirect with the code; returns (code, verifier)."""
    verifier, challenge = pkce()
    state = secrets.token_urlsafe(8)
    query = {
        "response_type": "code",
        "client_id": args.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": args.scope,
        "state": state,
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if prompt_consent:
        query["prompt"] = "consent"
    phase = "authorize"
    started = time.perf_counter()
    method, target, body = "GET", args.authorize_path + "?" + urllib.parse.urlencode(query), None
    for _ in range(20):
        status, location, data = browser.request(method, target, body)
        if status in (301, 302, 303, 307):
            if location.startswith(REDIRECT_URI):
                params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
                times[phase].append(time.perf_counter() - started)
                if params.get("state") != state or "code" not in params:
                    raise FlowError(f"bad redirect: {location}")
                return params["code"], verifier
            method, target, body = "GET", path_of(location), None
            continue
        if status != 200:
            raise FlowError(f"{method} {target}: {status} {data[:200]!r}")
        action, fields = parse_form(data.decode("utf-8", "replace"))
        if action is None:
            raise FlowError(f"{method} {target}: no form in the page")
        now = time.perf_counter()
        times[phase].append(now - started)
        started = now
        if "password" in fields or "login" in fields:
            phase = "login"
            fields.update({"password": args.password})
            fields["login" if "login" in fields else "username"] = user
        else:
            phase = "consent"
            fields["decision"] = "allow"
        method, target, body = "POST", path_of(action), urllib.parse.urlencode(fields)
    raise FlowError("too many steps")


def token(browser, args, form, times, step):
    started = time.perf_counter()
    status, _, data = browser.request(
        "POST", args.token_path, urllib.parse.urlencode(form), {"Authorization": args.basic}
    )
    times[step].append(time.perf_counter() - started)
    if status != 200:
        raise FlowError(f"token ({step}): {status} {data[:200]!r}")
    return json.loads(data)


def one_flow(browser, args, user, prompt_consent, times):
    code, verifier = authorize(browser, args, user, prompt_consent, times)
    tokens = token(browser, args, {
        "grant_type": "authorization_code", "code": code,
        "redirect_uri": REDIRECT_URI, "code_verifier": verifier,
    }, times, "token")
    if "refresh_token" not in tokens:
        raise FlowError(f"no refresh token: {tokens}")
    refreshed = token(browser, args, {
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
    }, times, "refresh")
    return refreshed["refresh_token"]


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total


def worker(index, args, barrier, start_at, results):
    user = args.users[index % len(args.users)]
    times = {step: [] for step in STEPS}
    scratch = {step: [] for step in STEPS}
    flows = errors = 0
    first_error = None
    browser = Browser(args.base)
    refresh = None
    try:
        if args.mode == "sso":
            one_flow(browser, args, user, True, scratch)
        elif args.mode == "refresh":
            refresh = one_flow(browser, args, user, True, scratch)
    except FlowError as error:
        first_error = str(error)
    barrier.wait()
    while start_at.value == 0.0 or time.time() < start_at.value:
        time.sleep(0.001)
    deadline = start_at.value + args.duration
    while first_error is None or args.mode == "full":
        if time.time() >= deadline:
            break
        try:
            if args.mode == "full":
                browser = Browser(args.base)
                one_flow(browser, args, user, True, times)
            elif args.mode == "sso":
                one_flow(browser, args, user, False, times)
            else:
                refresh = token(browser, args, {
                    "grant_type": "refresh_token", "refresh_token": refresh,
                }, times, "refresh")["refresh_token"]
            flows += 1
        except (FlowError, OSError, http.client.HTTPException) as error:
            errors += 1
            first_error = first_error or str(error)
            if args.mode != "full":
                break
    results.put({"flows": flows, "errors": errors, "first_error": first_error, "times": times})


def percentile(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--users", required=True, help="comma-separated usernames")
    parser.add_argument("--password", default="correct horse battery staple")
    parser.add_argument("--scope", default="openid offline_access read")
    parser.add_argument("--mode", choices=("full", "sso", "refresh"), default="full")
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--authorize-path", default="/authorize")
    parser.add_argument("--token-path", default="/token")
    parser.add_argument("--server-pid", type=int, action="append", default=[])
    parser.add_argument("--label", default="")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    args.users = args.users.split(",")
    args.basic = "Basic " + base64.b64encode(f"{args.client_id}:{args.client_secret}".encode()).decode()

    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(args.concurrency + 1)
    start_at = ctx.Value("d", 0.0)
    results = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(i, args, barrier, start_at, results)) for i in range(args.concurrency)]
    for p in procs:
        p.start()
    barrier.wait()
    start_at.value = time.time() + 0.2
    while time.time() < start_at.value:
        time.sleep(0.001)
    hz = os.sysconf("SC_CLK_TCK")
    cpu0 = cpu_ticks(args.server_pid) if args.server_pid else None
    t0 = time.time()
    collected = [results.get() for _ in procs]
    elapsed = time.time() - t0
    cpu1 = cpu_ticks(args.server_pid) if args.server_pid else None
    for p in procs:
        p.join()

    flows = sum(r["flows"] for r in collected)
    errors = sum(r["errors"] for r in collected)
    first_error = next((r["first_error"] for r in collected if r["first_error"]), None)
    times = {step: [t for r in collected for t in r["times"][step]] for step in STEPS}
    elapsed = max(elapsed, args.duration)
    out = {
        "label": args.label, "mode": args.mode, "concurrency": args.concurrency,
        "flows": flows, "errors": errors, "first_error": first_error,
        "flows_per_s": flows / elapsed,
        "server_cpu_per_flow_ms": ((cpu1 - cpu0) / hz / flows * 1e3) if (cpu0 is not None and flows) else None,
        "steps": {
            step: {"count": len(v), "mean_ms": (sum(v) / len(v) * 1e3) if v else None,
                   "p50_ms": percentile(v, 0.5) * 1e3 if v else None,
                   "p99_ms": percentile(v, 0.99) * 1e3 if v else None}
            for step, v in times.items()
        },
    }
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(out, f)
    steps = " ".join(f"{s}={out['steps'][s]['p50_ms']:.1f}/{out['steps'][s]['p99_ms']:.1f}ms"
                     for s in STEPS if out["steps"][s]["count"])
    cpu = out["server_cpu_per_flow_ms"]
    print(f"FLOWS label={args.label} mode={args.mode} flows={flows} errors={errors} "
          f"flows_per_s={out['flows_per_s']:.1f} server_cpu_per_flow_ms={cpu if cpu is None else round(cpu, 3)} "
          f"p50/p99: {steps}")
    if errors or not flows:
        print(f"first error: {first_error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

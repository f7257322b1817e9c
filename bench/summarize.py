#!/usr/bin/env python3
"""Markdown tables from the results files the bench scripts write.

    bench/summarize.py peer  bench/results/peer_comparison.jsonl
    bench/summarize.py scale bench/results/scale.jsonl
"""

import json
import statistics
import sys

TARGETS = {
    "ratio": 10.0,          # Valet tokens/s ÷ oidc-provider tokens/s, at least
    "cpu_per_sign": 2.0,    # Valet CPU per token ÷ one ES256 signature, at most
    "startup_ms": 300.0,    # at most
    "idle_rss_mib": 30.0,   # at most
    "scale_p99": 1.5,       # p99 at 1M ÷ p99 at 1k, at most
}


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def pick(records, server, test):
    for r in records:
        if r["server"] == server and r["test"] == test:
            return r
    return None


def fmt(value, digits=0, unit=""):
    if value is None:
        return "–"
    return f"{value:,.{digits}f}{unit}"


def user_system(run):
    """'(user + system)' CPU per successful request of a wrk run, in µs."""
    ok = max(run["requests"] - run["non2xx"], 1)
    if "cpu_user_s" not in run:
        return ""
    return f"({run['cpu_user_s'] / ok * 1e6:.1f} + {run['cpu_system_s'] / ok * 1e6:.1f})"


def verdict(ok):
    return "met" if ok else "**missed**"


def peer(path):
    rs = load(path)
    meta = pick(rs, "machine", "meta") or {}
    end = pick(rs, "machine", "meta_end") or {}
    signs = [(pick(rs, "micro", name) or {}).get("es256_sign_us") for name in ("sign", "sign_after")]
    signs = [s for s in signs if s]
    # Measured before and after Valet's runs; their mean is what a token is compared with.
    sign = sum(signs) / len(signs) if signs else None
    guard = pick(rs, "micro", "guard") or {}
    valets = ["valet-sqlite", "valet-postgres"]
    ops = ["oidc-provider", "oidc-provider-2-workers"]
    servers = [s for s in valets + ops if pick(rs, s, "client_credentials")]
    op1 = pick(rs, "oidc-provider", "client_credentials")
    op2 = pick(rs, "oidc-provider-2-workers", "client_credentials")
    out = []
    out.append(f"Machine: {meta.get('nproc')} CPUs ({meta.get('cpu')}), {meta.get('mem_gib')} GiB; "
               f"load average before {' '.join(meta.get('load_before', []))}, after {' '.join(end.get('load_after', []))}; "
               f"Valet {meta.get('valet_rev')}, node {meta.get('node')}, oidc-provider {meta.get('oidc_provider')}, "
               f"PostgreSQL {meta.get('postgres')}.")
    out.append("")
    conns = (op1 or pick(rs, servers[0], "client_credentials") or {}).get("connections")
    out.append(f"### client_credentials (wrk, 1 thread, {conns} connections, loopback)")
    out.append("")
    out.append("| server | tokens/s | p50 | p99 | CPU per token | CPU per token ÷ ES256 sign | peak RSS | tokens/s ÷ oidc-provider (1 proc / 2 workers) |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for s in servers:
        cc = pick(rs, s, "client_credentials")
        rss = (pick(rs, s, "rss_after_client_credentials") or {}).get("peak_rss_mib")
        cpu = cc.get("cpu_per_req_us")
        ratio = "–"
        if s in valets and op1:
            ratio = f"{cc['per_s'] / op1['per_s']:.1f}× / " + (f"{cc['per_s'] / op2['per_s']:.1f}×" if op2 else "–")
        out.append(f"| {s} | {fmt(cc['per_s'])} | {fmt(cc['p50_ms'], 2, ' ms')} | {fmt(cc['p99_ms'], 2, ' ms')} | "
                   f"{fmt(cpu, 1, ' µs')} | {fmt(cpu / sign if (cpu and sign) else None, 2)} | {fmt(rss, 1, ' MiB')} | {ratio} |")
    out.append("")
    out.append(f"One raw ES256 signature (aws-lc-rs, prepared key, same run): {fmt(sign, 1, ' µs')}"
               + (f" (the mean of {' and '.join(f'{s:.1f}' for s in signs)} µs, before and after Valet's runs)"
                  if len(signs) > 1 else "") + "; "
               f"a whole access-token JWT through `SigningKey::sign_jwt`: "
               f"{fmt((pick(rs, 'micro', 'sign') or {}).get('es256_jwt_us'), 1, ' µs')}.")
    out.append("")

    floors = [(s, pick(rs, s, "client_credentials"), pick(rs, s, "empty_request")) for s in valets]
    floors = [(s, cc, e) for s, cc, e in floors if cc and e and cc.get("cpu_per_req_us") and e.get("cpu_per_req_us")]
    if floors and sign:
        out.append("Where a token's CPU goes: the signature, what any request costs (an empty `GET /healthz` under "
                   "the same wrk load: loopback TCP, HTTP, routing, middleware), and the token work left over.")
        out.append("")
        out.append("| server | CPU per token (user + system) | ES256 signature | empty request (user + system) | token work left | empty request ÷ signature |")
        out.append("|---|---:|---:|---:|---:|---:|")
        for s, cc, e in floors:
            cpu, floor = cc["cpu_per_req_us"], e["cpu_per_req_us"]
            out.append(f"| {s} | {cpu:.1f} µs {user_system(cc)} | {sign:.1f} µs | {floor:.1f} µs {user_system(e)} | "
                       f"{cpu - sign - floor:.1f} µs | {floor / sign:.2f} |")
        out.append("")

    out.append("### Other endpoints (wrk, same connections)")
    out.append("")
    out.append("| server | introspection/s | p99 | CPU per introspection | JWKS/s | p99 | CPU per JWKS |")
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    for s in servers:
        i = pick(rs, s, "introspection") or {}
        j = pick(rs, s, "jwks") or {}
        intro = (fmt(i.get("per_s")), fmt(i.get("p99_ms"), 2, " ms"), fmt(i.get("cpu_per_req_us"), 1, " µs")) if i else \
            ("not offered for JWT access tokens", "–", "–")
        out.append(f"| {s} | {intro[0]} | {intro[1]} | {intro[2]} | {fmt(j.get('per_s'))} | "
                   f"{fmt(j.get('p99_ms'), 2, ' ms')} | {fmt(j.get('cpu_per_req_us'), 1, ' µs')} |")
    out.append("")

    flow_servers = [s for s in servers if pick(rs, s, "flow_full")]
    if flow_servers:
        f0 = pick(rs, flow_servers[0], "flow_full")
        driver = "bench/flows.py" if f0.get("driver", "python") == "python" else "flow_load"
        out.append(f"### Authorization Code + PKCE ({driver}, server CPU from /proc)")
        out.append("")
        out.append("| server | mode | browsers | flows/s | server CPU per flow | driver CPU per flow | p50 / p99 per step |")
        out.append("|---|---|---:|---:|---:|---:|---|")
        names = {"full": "login + consent + code + refresh", "sso": "session: authorize + code + refresh",
                 "refresh": "refresh rotation only"}
        for s in flow_servers:
            for mode in ("full", "sso", "refresh"):
                f = pick(rs, s, f"flow_{mode}")
                if not f:
                    continue
                steps = ", ".join(f"{k} {v['p50_ms']:.1f}/{v['p99_ms']:.1f} ms"
                                  for k, v in f["steps"].items() if v["count"])
                out.append(f"| {s} | {names[mode]} | {f['concurrency']} | {fmt(f['flows_per_s'], 1)} | "
                           f"{fmt(f['server_cpu_per_flow_ms'], 2, ' ms')} | "
                           f"{fmt(f.get('driver_cpu_per_flow_ms'), 2, ' ms')} | {steps} |")
        out.append("")

    out.append("### Start-up and memory")
    out.append("")
    out.append("| server | first start (empty store: migrations, key generation) | restart to ready (median of 5) | idle RSS (median) | peak RSS over the whole run |")
    out.append("|---|---:|---:|---:|---:|")
    for s in valets + ["valet-postgres-no-tls"]:
        first, st = pick(rs, s, "startup_first"), pick(rs, s, "startup")
        if not st:
            continue
        out.append(f"| {s} | {fmt(first['startup_ms_median'], 0, ' ms')} | {fmt(st['startup_ms_median'], 0, ' ms')} "
                   f"({', '.join(str(round(x)) for x in st['startup_ms'])}) | {fmt(st['idle_rss_mib_median'], 1, ' MiB')} | "
                   f"{fmt((pick(rs, s, 'rss_end') or {}).get('peak_rss_mib'), 1, ' MiB')} |")
    for s in ops:
        e = pick(rs, s, "rss_end")
        if e:
            out.append(f"| {s} | – | – | – | {fmt(e.get('peak_rss_mib'), 1, ' MiB')} |")
    out.append("")

    if guard:
        out.append(f"Guard (`cargo bench -p valet-guard --bench verify`, one core): `Guard::verify` "
                   f"{fmt(guard.get('guard_verify_us'), 1, ' µs')} ({fmt(guard.get('guard_verifications_per_s'))}/s), "
                   f"raw ES256 verification {fmt(guard.get('raw_verify_us'), 1, ' µs')}, ratio {fmt(guard.get('guard_overhead_ratio'), 2)}.")
        out.append("")

    out.append("### Targets")
    out.append("")
    out.append("| target | measured | |")
    out.append("|---|---|---|")
    for s in valets:
        cc = pick(rs, s, "client_credentials")
        if cc and op1:
            r1 = cc["per_s"] / op1["per_s"]
            r2 = cc["per_s"] / op2["per_s"] if op2 else None
            out.append(f"| {s}: tokens/s ≥ 10× oidc-provider | {r1:.1f}× (1 process), {fmt(r2, 1, '×')} (2 workers) | "
                       f"{verdict(r1 >= TARGETS['ratio'])} / {verdict(r2 is not None and r2 >= TARGETS['ratio'])} |")
        if cc and sign and cc.get("cpu_per_req_us"):
            r = cc["cpu_per_req_us"] / sign
            out.append(f"| {s}: CPU per token ≤ 2× one ES256 signature | {r:.2f}× ({cc['cpu_per_req_us']:.1f} µs vs {sign:.1f} µs) | "
                       f"{verdict(r <= TARGETS['cpu_per_sign'])} |")
        st = pick(rs, s, "startup")
        if st:
            out.append(f"| {s}: start-up < 300 ms | {st['startup_ms_median']:.0f} ms | {verdict(st['startup_ms_median'] < TARGETS['startup_ms'])} |")
            out.append(f"| {s}: idle RSS < 30 MiB | {st['idle_rss_mib_median']:.1f} MiB | {verdict(st['idle_rss_mib_median'] < TARGETS['idle_rss_mib'])} |")
    print("\n".join(out))


def scale(path):
    rs = load(path)
    out = []
    meta = pick(rs, "machine", "meta") or {}
    out.append(f"Machine: {meta.get('nproc')} CPUs ({meta.get('cpu')}), {meta.get('mem_gib')} GiB; "
               f"load average before {' '.join(meta.get('load_before', []))}.")
    out.append("")
    out.append("| backend | grant | families seeded | round | requests/s | p50 | p99 | CPU per request | non-2xx |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    runs = [r for r in rs if r["test"] in ("refresh_token", "client_credentials")]
    for r in runs:
        out.append(f"| {r['server']} | {r['test']} | {r['families']:,} | {r.get('round', 0) + 1} | {fmt(r['per_s'])} | "
                   f"{fmt(r['p50_ms'], 2, ' ms')} | {fmt(r['p99_ms'], 2, ' ms')} | {fmt(r['cpu_per_req_us'], 0, ' µs')} | {r['non2xx']} |")
    out.append("")
    seeds = [r for r in rs if r["test"] == "seed"]
    if seeds:
        out.append("| backend | families | users | seeding time | database size |")
        out.append("|---|---:|---:|---:|---:|")
        for r in seeds:
            out.append(f"| {r['server']} | {r['families']:,} | {r['users']:,} | {r['seconds']:.1f} s | {float(r['size_mib']):,.0f} MiB |")
        out.append("")
    out.append("Medians over the rounds:")
    out.append("")
    out.append("| backend | grant | requests/s at 1k / at max | p50 at 1k / at max | p99 at 1k | p99 at max | p99 ratio | target ≤ 1.5× |")
    out.append("|---|---|---:|---:|---:|---:|---:|---|")
    for backend in ("valet-sqlite", "valet-postgres"):
        for test in ("refresh_token", "client_credentials"):
            mine = [r for r in runs if r["server"] == backend and r["test"] == test]
            sizes = sorted({r["families"] for r in mine})
            if len(sizes) < 2:
                continue
            small = [r for r in mine if r["families"] == sizes[0]]
            big = [r for r in mine if r["families"] == sizes[-1]]
            med = lambda rows, key: statistics.median(r[key] for r in rows)
            ratio = med(big, "p99_ms") / med(small, "p99_ms")
            out.append(f"| {backend} | {test} | {med(small, 'per_s'):,.0f} / {med(big, 'per_s'):,.0f} | "
                       f"{med(small, 'p50_ms'):.2f} / {med(big, 'p50_ms'):.2f} ms | {med(small, 'p99_ms'):.2f} ms | "
                       f"{med(big, 'p99_ms'):.2f} ms ({sizes[-1]:,}) | {ratio:.2f}× | {verdict(ratio <= TARGETS['scale_p99'])} |")
    print("\n".join(out))


if __name__ == "__main__":
    {"peer": peer, "scale": scale}[sys.argv[1]](sys.argv[2])

#!/usr/bin/env python3
"""Every ratio issue 17 sets a target for, in one table and one plot.

    python3 bench/summary.py [--results bench/results] [--runs 5] [--markdown FILE] [--svg FILE]

Reads the latest run in each results file that exists under bench/results/:
  peer_runs/*.jsonl      (bench/peer_comparison.sh keeps a copy of each run there:
                          each ratio is the median over the latest --runs of them,
                          with every run's value in its note; without any,
                          peer_comparison.jsonl, the latest run alone)
  refresh.jsonl          (bench/refresh.sh: each run rewrites it)
  cluster.jsonl          (bench/cluster.sh: each run rewrites it)
  gateway_proxy.jsonl    (bench/gateway_proxy.sh: appended; the latest `run` is used)
  scale.jsonl            (bench/scale.sh: each run rewrites it)
and prints one markdown table: each ratio, the target next to it and whether it is
met. With --svg it also draws the ratios against their targets as one SVG (written
with the standard library only: no plotting package). A run made with the smoke-test
switches of peer_comparison.sh is marked so in both: its figures test the tooling
and measure nothing.
"""

import argparse
import html
import json
import math
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CHEAP = "cheap hash (benchmark mode)"


def load(directory, name):
    path = os.path.join(directory, name)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def pick(records, server, test):
    return next((r for r in records if r.get("server") == server and r.get("test") == test), None)


class Row:
    """One ratio. `at_least` / `at_most`: the target; neither: reported only."""

    def __init__(self, name, value, source, at_least=None, at_most=None, note=""):
        self.name, self.value, self.source, self.note = name, value, source, note
        self.at_least, self.at_most = at_least, at_most

    def target(self):
        if self.at_least is not None:
            return f"≥ {self.at_least:g}×"
        if self.at_most is not None:
            return f"≤ {self.at_most:g}×"
        return "none"

    def met(self):
        if self.value is None:
            return None
        if self.at_least is not None:
            return self.value >= self.at_least
        if self.at_most is not None:
            return self.value <= self.at_most
        return None

    def verdict(self):
        return {True: "met", False: "**missed**", None: "–"}[self.met()]


def ratio(a, b, key):
    if not a or not b or not a.get(key) or not b.get(key):
        return None
    return a[key] / b[key]


def peer_rows(peer):
    rows = []
    op = pick(peer, "oidc-provider", "client_credentials")
    op2 = pick(peer, "oidc-provider-2-workers", "client_credentials")
    sign = None
    signs = [s for s in (pick(peer, "micro", "sign"), pick(peer, "micro", "sign_after")) if s]
    values = [s.get("es256_sign_us") for s in signs if s.get("es256_sign_us")]
    if values:
        sign = statistics.mean(values)
    op_flow = {m: pick(peer, "oidc-provider", f"flow_{m}") for m in ("full", "sso", "refresh")}
    src = "peer_comparison.sh"
    for server, store in (("valet-sqlite", "SQLite"), ("valet-postgres", "PostgreSQL")):
        cc = pick(peer, server, "client_credentials")
        if cc:
            rows.append(Row(f"client_credentials tokens/s, {store} ÷ oidc-provider", ratio(cc, op, "per_s"), src, at_least=10))
            if op2:
                rows.append(Row(f"client_credentials tokens/s, {store} ÷ oidc-provider (2 workers)",
                                ratio(cc, op2, "per_s"), src, at_least=10))
            if sign and cc.get("cpu_per_req_us"):
                rows.append(Row(f"CPU per token ÷ one ES256 signature, {store}", cc["cpu_per_req_us"] / sign, src, at_most=2))
        eddsa = pick(peer, server, "client_credentials_eddsa")
        if eddsa:
            rows.append(Row(f"client_credentials tokens/s with EdDSA access tokens, {store} ÷ oidc-provider",
                            ratio(eddsa, op, "per_s"), src, note="option; the target is for the ES256 default"))
            rows.append(Row(f"client_credentials tokens/s, EdDSA ÷ ES256, {store}", ratio(eddsa, cc, "per_s"), src))
        refresh = pick(peer, server, "flow_refresh")
        if refresh:
            target = 5 if store == "SQLite" else None
            note = "" if target else "target ≥ 3× is for a 3-node PostgreSQL cluster"
            rows.append(Row(f"refresh rotations/s, {store} ÷ oidc-provider", ratio(refresh, op_flow["refresh"], "flows_per_s"),
                            src, at_least=target, note=note))
        full = pick(peer, server, "flow_full")
        if full:
            rows.append(Row(f"code flow with sign-in (argon2id), {store} ÷ oidc-provider",
                            ratio(full, op_flow["full"], "flows_per_s"), src,
                            note="the hash included: no ratio target; oidc-provider checks no password"))
        cheap = pick(peer, server, "flow_full_cheap_hash")
        if cheap:
            rows.append(Row(f"code flow with sign-in, {CHEAP}, {store} ÷ oidc-provider",
                            ratio(cheap, op_flow["full"], "flows_per_s"), src, at_least=10))
        if cheap and cheap.get("server_cpu_per_flow_ms") and (op_flow["full"] or {}).get("server_cpu_per_flow_ms"):
            rows.append(Row(f"server CPU per flow, oidc-provider ÷ {store} with the {CHEAP}",
                            op_flow["full"]["server_cpu_per_flow_ms"] / cheap["server_cpu_per_flow_ms"], src, at_least=10,
                            note="the same flow by CPU, which the load generator on the same cores does not shift"))
        sso = pick(peer, server, "flow_sso")
        if sso:
            rows.append(Row(f"code flow on a session (no sign-in), {store} ÷ oidc-provider",
                            ratio(sso, op_flow["sso"], "flows_per_s"), src))
    return rows


def sign_in_rows(peer):
    """Sign-in p99 at the measured peak, as a fraction of the 250 ms bound."""
    rows = []
    for server, store in (("valet-sqlite", "SQLite"), ("valet-postgres", "PostgreSQL")):
        full = pick(peer, server, "flow_full")
        login = ((full or {}).get("steps") or {}).get("login") or {}
        if login.get("p99_ms"):
            rows.append(Row(f"sign-in p99 ÷ 250 ms (argon2id), {store}", login["p99_ms"] / 250, "peer_comparison.sh",
                            at_most=1, note=f"p99 {login['p99_ms']:.0f} ms"))
    return rows


def rounds_by_server(records):
    """flows/s of each server's interleaved rounds (refresh.sh, cluster.sh)."""
    rounds = {}
    for r in records:
        if r.get("test", "").startswith("round_"):
            rounds.setdefault(r["server"], []).append(r["flows_per_s"])
    return rounds


def refresh_rows(records):
    rounds = rounds_by_server(records)
    if "oidc-provider" not in rounds:
        return []
    op = statistics.median(rounds["oidc-provider"])
    return [Row(f"refresh rotations/s, Valet build `{label}` ÷ oidc-provider (median of {len(values)} rounds)",
                statistics.median(values) / op if op else None, "refresh.sh", at_least=5)
            for label, values in rounds.items() if label != "oidc-provider"]


def cluster_rows(records):
    """Refresh rotations through a cluster of nodes on PostgreSQL (and one node
    behind the same proxy), each ÷ oidc-provider."""
    rounds = rounds_by_server(records)
    if "oidc-provider" not in rounds:
        return []
    op = statistics.median(rounds["oidc-provider"])
    rows = []
    if "cluster" in rounds:
        rows.append(Row(f"refresh rotations/s, PostgreSQL cluster ÷ oidc-provider (median of {len(rounds['cluster'])} rounds)",
                        statistics.median(rounds["cluster"]) / op if op else None, "cluster.sh", at_least=3,
                        note="the nodes share this host's cores"))
    if "single" in rounds:
        rows.append(Row(f"refresh rotations/s, one PostgreSQL node behind the same proxy ÷ oidc-provider "
                        f"(median of {len(rounds['single'])} rounds)",
                        statistics.median(rounds["single"]) / op if op else None, "cluster.sh"))
    return rows


def gateway_rows(records):
    saturated = [r for r in records if r.get("kind") == "saturated"]
    if not saturated:
        return []
    latest = max(r.get("run", "") for r in saturated)
    runs = [r for r in saturated if r.get("run", "") == latest]
    direct = {r["round"]: r["per_s"] for r in runs if r["test"] == "direct"}
    def ratios(test):
        return [r["per_s"] / direct[r["round"]] for r in runs if r["test"] == test and direct.get(r["round"])]
    rows = []
    # "Adds at most 20 %" to a call: the call through the gateway costs at most
    # 1.2 times a direct one, so its throughput is at least 1 / 1.2 of it.
    if gateway := ratios("gateway"):
        rows.append(Row(f"gateway throughput ÷ straight to the guard (median of {len(gateway)} rounds)",
                        statistics.median(gateway), "gateway_proxy.sh", at_least=round(1 / 1.2, 3)))
    # The reference hop (VALET_BENCH_NGINX=1): reported only.
    if nginx := ratios("nginx"):
        rows.append(Row(f"nginx in the gateway's place ÷ straight to the guard (median of {len(nginx)} rounds)",
                        statistics.median(nginx), "gateway_proxy.sh"))
    return rows


def scale_rows(records):
    rows = []
    runs = [r for r in records if r.get("test") in ("refresh_token", "client_credentials")]
    for backend in ("valet-sqlite", "valet-postgres"):
        for test in ("refresh_token", "client_credentials"):
            mine = [r for r in runs if r["server"] == backend and r["test"] == test]
            sizes = sorted({r["families"] for r in mine})
            if len(sizes) < 2:
                continue
            p99 = [statistics.median(r["p99_ms"] for r in mine if r["families"] == n) for n in (sizes[0], sizes[-1])]
            rows.append(Row(f"{test} p99 at {sizes[-1]:,} ÷ at {sizes[0]:,} families, {backend}",
                            p99[1] / p99[0] if p99[0] else None, "scale.sh", at_most=1.5))
    return rows


def median_rows(runs):
    """One row per ratio over several runs: the median, every run's value noted."""
    by_name = {}
    for rows in runs:
        for row in rows:
            by_name.setdefault(row.name, []).append(row)
    merged = []
    for name, rows in by_name.items():
        values = [r.value for r in rows if r.value is not None]
        first = rows[0]
        if len(runs) == 1:
            merged.append(first)
            continue
        listed = ", ".join(f"{v:.2f}" for v in values)
        # A note that differs between runs (a run's own figure) is left out.
        shared = first.note if first.note and all(r.note == first.note for r in rows) else ""
        note = f"median of {len(values)} runs: {listed}" + (f"; {shared}" if shared else "")
        merged.append(Row(name, statistics.median(values) if values else None, first.source,
                          first.at_least, first.at_most, note))
    return merged


def markdown(rows, meta):
    out = []
    if meta.get("smoke"):
        out.append("**SMOKE RUN: these figures test the tooling and measure nothing** "
                   "(a debug build or skipped micro-benchmarks, seconds per measurement).")
        out.append("")
    if meta:
        revs = ", ".join(f"`{rev}`" for rev in meta.get("revs", [meta.get("valet_rev", "?")]))
        out.append(f"peer_comparison.sh: {meta.get('runs', 1)} run(s) of Valet {revs}, oidc-provider "
                   f"{meta.get('oidc_provider', '?')}, {meta.get('nproc')} CPUs ({meta.get('cpu', '')}); "
                   f"load average before the latest {' '.join(meta.get('load_before', []))}.")
        out.append("")
    out.append("| ratio | measured | target | | from | note |")
    out.append("|---|---:|---:|---|---|---|")
    for r in rows:
        value = "–" if r.value is None else f"{r.value:.2f}×"
        verdict = f"smoke run: {r.verdict()}" if meta.get("smoke") and r.met() is not None else r.verdict()
        out.append(f"| {r.name} | {value} | {r.target()} | {verdict} | {r.source} | {r.note} |")
    return "\n".join(out) + "\n"


def svg(rows, meta):
    """Horizontal bars on a log scale, one per ratio, the target as a tick."""
    rows = [r for r in rows if r.value]
    left, width, bar, gap, top = 470, 420, 16, 8, 60
    height = top + len(rows) * (bar + gap) + 50
    lo = min([0.1] + [r.value for r in rows] + [t for r in rows for t in (r.at_least, r.at_most) if t])
    hi = max([20.0] + [r.value for r in rows] + [t for r in rows for t in (r.at_least, r.at_most) if t])
    lo, hi = 10 ** math.floor(math.log10(lo)), 10 ** math.ceil(math.log10(hi))

    def x(v):
        return left + width * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    title = "Valet: every ratio against its target (issue 17)"
    if meta.get("smoke"):
        title += " — SMOKE RUN, measures nothing"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" height="{height}" '
             'font-family="sans-serif" font-size="11">',
             '<rect width="100%" height="100%" fill="white"/>',
             f'<text x="10" y="20" font-size="14" font-weight="bold">{html.escape(title)}</text>',
             '<text x="10" y="38" fill="#555">bar: measured ratio (log scale); black tick: target; '
             'green met, red missed, grey no target</text>']
    decade = lo
    while decade <= hi:
        parts.append(f'<line x1="{x(decade):.1f}" y1="{top - 6}" x2="{x(decade):.1f}" y2="{height - 40}" stroke="#ddd"/>')
        parts.append(f'<text x="{x(decade):.1f}" y="{height - 26}" text-anchor="middle" fill="#555">{decade:g}×</text>')
        decade *= 10
    parts.append(f'<line x1="{x(1):.1f}" y1="{top - 6}" x2="{x(1):.1f}" y2="{height - 40}" stroke="#999"/>')
    for i, r in enumerate(rows):
        y = top + i * (bar + gap)
        colour = {True: "#2f855a", False: "#c53030", None: "#a0aec0"}[r.met()]
        x0, x1 = x(lo), x(r.value)
        parts.append(f'<text x="{left - 6}" y="{y + bar - 4}" text-anchor="end">{html.escape(r.name)}</text>')
        parts.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(1.0, x1 - x0):.1f}" height="{bar}" fill="{colour}"/>')
        parts.append(f'<text x="{x1 + 4:.1f}" y="{y + bar - 4}">{r.value:.2f}×</text>')
        target = r.at_least if r.at_least is not None else r.at_most
        if target:
            parts.append(f'<line x1="{x(target):.1f}" y1="{y - 2}" x2="{x(target):.1f}" y2="{y + bar + 2}" '
                         'stroke="black" stroke-width="2"/>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default=os.path.join(HERE, "results"))
    parser.add_argument("--runs", type=int, default=5, help="peer_comparison.sh runs to take medians over")
    parser.add_argument("--markdown", help="also write the table to this file")
    parser.add_argument("--svg", help="write the plot to this file")
    args = parser.parse_args()
    run_dir = os.path.join(args.results, "peer_runs")
    names = sorted(n for n in os.listdir(run_dir) if n.endswith(".jsonl"))[-args.runs:] if os.path.isdir(run_dir) else []
    peers = [load(run_dir, n) for n in names] or [load(args.results, "peer_comparison.jsonl")]
    metas = [pick(peer, "machine", "meta") or {} for peer in peers]
    meta = dict(metas[-1])
    meta["runs"] = len(peers)
    meta["smoke"] = any(m.get("smoke") for m in metas)
    meta["revs"] = sorted({m.get("valet_rev", "?") for m in metas})
    rows = (median_rows([peer_rows(peer) + sign_in_rows(peer) for peer in peers])
            + refresh_rows(load(args.results, "refresh.jsonl")) + cluster_rows(load(args.results, "cluster.jsonl"))
            + gateway_rows(load(args.results, "gateway_proxy.jsonl")) + scale_rows(load(args.results, "scale.jsonl")))
    if not rows:
        sys.exit(f"no results under {args.results}: run bench/peer_comparison.sh (and the other bench scripts) first")
    table = markdown(rows, meta)
    print(table, end="")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table)
    if args.svg:
        with open(args.svg, "w") as f:
            f.write(svg(rows, meta))
        print(f"wrote {args.svg}", file=sys.stderr)


if __name__ == "__main__":
    main()

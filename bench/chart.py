#!/usr/bin/env python3
"""One PNG of throughput and latency from the bench results.

    python3 bench/chart.py [--out docs/benchmarks.png]

Reads bench/results/peer_comparison.jsonl (bench/peer_comparison.sh) and, if present,
bench/results/scale.jsonl (bench/scale.sh). Installs matplotlib from PyPI if missing.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")

try:
    import matplotlib
except ImportError:
    print("installing matplotlib (PyPI)", file=sys.stderr)
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "matplotlib"])
    import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {
    "valet-sqlite": "#2b6cb0",
    "valet-postgres": "#63b3ed",
    "oidc-provider": "#c05621",
    "oidc-provider-2-workers": "#f6ad55",
}
SERVERS = list(COLORS)


def load(name):
    path = os.path.join(RESULTS, name)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def pick(records, server, test):
    return next((r for r in records if r["server"] == server and r["test"] == test), None)


def bar_labels(ax, bars, fmt="{:,.0f}"):
    for bar in bars:
        height = bar.get_height()
        if height:
            ax.annotate(fmt.format(height), (bar.get_x() + bar.get_width() / 2, height),
                        ha="center", va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.path.join(HERE, "..", "docs", "benchmarks.png"))
    args = parser.parse_args()
    peer = load("peer_comparison.jsonl")
    scale = load("scale.jsonl")
    if not peer:
        sys.exit("no bench/results/peer_comparison.jsonl: run bench/peer_comparison.sh first")
    meta = pick(peer, "machine", "meta") or {}

    fig, grid = plt.subplots(2, 2, figsize=(12, 9.5))
    axes = grid.flatten()

    # 1. client_credentials tokens/s.
    ax = axes[0]
    servers = [s for s in SERVERS if pick(peer, s, "client_credentials")]
    values = [pick(peer, s, "client_credentials")["per_s"] for s in servers]
    bars = ax.bar(range(len(servers)), values, color=[COLORS[s] for s in servers])
    bar_labels(ax, bars)
    ax.set_xticks(range(len(servers)), [s.replace("-2-workers", "\n(2 workers)").replace("valet-", "Valet\n") for s in servers], fontsize=8)
    ax.set_title("client_credentials: tokens/s", fontsize=10)
    ax.set_ylabel("tokens per second (higher is better)")

    # 2. client_credentials latency p50 / p99.
    ax = axes[1]
    width = 0.38
    p50 = [pick(peer, s, "client_credentials")["p50_ms"] for s in servers]
    p99 = [pick(peer, s, "client_credentials")["p99_ms"] for s in servers]
    xs = range(len(servers))
    b1 = ax.bar([x - width / 2 for x in xs], p50, width, color=[COLORS[s] for s in servers], label="p50")
    b2 = ax.bar([x + width / 2 for x in xs], p99, width, color=[COLORS[s] for s in servers], alpha=0.5, hatch="//", label="p99")
    bar_labels(ax, b1, "{:.1f}")
    bar_labels(ax, b2, "{:.1f}")
    ax.set_xticks(list(xs), [s.replace("-2-workers", "\n(2 workers)").replace("valet-", "Valet\n") for s in servers], fontsize=8)
    ax.set_title(f"client_credentials latency ({(pick(peer, servers[0], 'client_credentials') or {}).get('connections')} conns)", fontsize=10)
    ax.set_ylabel("ms (lower is better); solid p50, hatched p99")

    # 3. browser flow: flows/s by mode.
    ax = axes[2]
    modes = [("flow_full", "login+consent\n+code+refresh"), ("flow_sso", "session:\nauthorize+code\n+refresh"),
             ("flow_refresh", "refresh\nonly")]
    flow_servers = [s for s in SERVERS if pick(peer, s, "flow_full")]
    width = 0.8 / max(1, len(flow_servers))
    for i, s in enumerate(flow_servers):
        recs = [pick(peer, s, m) or {} for m, _ in modes]
        vals = [r.get("flows_per_s", 0) for r in recs]
        bars = ax.bar([j + (i - (len(flow_servers) - 1) / 2) * width for j in range(len(modes))], vals, width,
                      color=COLORS[s], label=s)
        for bar, r in zip(bars, recs):
            cpu = r.get("server_cpu_per_flow_ms")
            ax.annotate(f"{bar.get_height():,.0f}" + (f"\n{cpu:.1f} ms" if cpu else ""),
                        (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                        fontsize=7, xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(range(len(modes)), [label for _, label in modes], fontsize=8)
    ax.set_title("Auth Code + PKCE: flows/s (label: server CPU per flow)", fontsize=10)
    ax.set_ylabel("flows (or refreshes) per second")
    ax.legend(fontsize=7)

    # 4. scale: p99 at 1k vs at the largest size.
    if scale:
        ax = axes[3]
        runs = [r for r in scale if r["test"] in ("refresh_token", "client_credentials")]
        groups = []
        biggest = 0
        for backend in ("valet-sqlite", "valet-postgres"):
            for test in ("refresh_token", "client_credentials"):
                mine = [r for r in runs if r["server"] == backend and r["test"] == test]
                sizes = sorted({r["families"] for r in mine})
                if len(sizes) >= 2:
                    p99 = [statistics.median(r["p99_ms"] for r in mine if r["families"] == n) for n in (sizes[0], sizes[-1])]
                    groups.append((backend, test, p99[0], p99[1]))
                    biggest = sizes[-1]
        width = 0.38
        for j, (backend, test, small, big) in enumerate(groups):
            b1 = ax.bar(j - width / 2, small, width, color=COLORS[backend], alpha=0.5)
            b2 = ax.bar(j + width / 2, big, width, color=COLORS[backend])
            bar_labels(ax, b1, "{:.1f}")
            bar_labels(ax, b2, "{:.1f}")
        ax.set_xticks(range(len(groups)), [f"{b.replace('valet-', '')}\n{t.replace('_', ' ')}" for b, t, _, _ in groups], fontsize=8)
        label = f"{biggest // 1_000_000}M" if biggest >= 1_000_000 and biggest % 1_000_000 == 0 else f"{biggest:,}"
        ax.set_title(f"token endpoint p99, median of rounds: 1k (light) vs {label} (dark) families", fontsize=10)
        ax.set_ylabel("p99 ms (lower is better)")
    else:
        axes[3].axis("off")
        axes[3].text(0.5, 0.5, "no bench/results/scale.jsonl\n(bench/scale.sh not run with these results)",
                     ha="center", va="center", fontsize=9, color="gray", transform=axes[3].transAxes)

    for ax in axes:
        ax.margins(y=0.12)
    fig.suptitle(f"Valet {meta.get('valet_rev', '')} vs oidc-provider {meta.get('oidc_provider', '')} — {meta.get('nproc')} CPUs "
                 f"({meta.get('cpu')}), loopback", fontsize=11)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {os.path.relpath(args.out)}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Start-up time to ready and idle RSS of a server, over several starts.

    bench/startup.py --runs 5 --ready http://127.0.0.1:PORT/readyz -- COMMAND...

Each run executes COMMAND, polls the ready URL every 2 ms over a raw socket (no
process spawned per poll) and records the time from exec to the first 200; then it
waits --idle seconds and reads VmRSS of the process, stops it with SIGTERM and waits
for it to exit. Prints one JSON object: every run's figures and their medians.
"""

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse


def ready(host, port, path):
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--ready", required=True)
    parser.add_argument("--idle", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    url = urllib.parse.urlsplit(args.ready)

    startup_ms, idle_rss = [], []
    for _ in range(args.runs):
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not ready(url.hostname, url.port, url.path):
            if proc.poll() is not None:
                sys.exit(f"the server exited with {proc.returncode} before it was ready")
            if time.perf_counter() - started > args.timeout:
                proc.kill()
                sys.exit("the server was not ready in time")
            time.sleep(0.002)
        startup_ms.append((time.perf_counter() - started) * 1e3)
        time.sleep(args.idle)
        idle_rss.append(rss_kib(proc.pid) / 1024)
        proc.terminate()
        proc.wait(timeout=30)
    print(json.dumps({
        "runs": args.runs,
        "startup_ms": [round(x, 1) for x in startup_ms],
        "idle_rss_mib": [round(x, 1) for x in idle_rss],
        "startup_ms_median": round(statistics.median(startup_ms), 1),
        "idle_rss_mib_median": round(statistics.median(idle_rss), 1),
    }))


if __name__ == "__main__":
    main()

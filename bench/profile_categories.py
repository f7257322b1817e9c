#!/usr/bin/env python3
"""Groups a flat `perf report --no-children --sort dso,symbol --stdio -g none` listing
(on stdin) into categories by self time, and lists the hottest symbols.

Used by bench/profile.sh; the categories are a reading aid, matched on symbol names.
"""

import re
import sys

# First match wins: kernel symbols first (`kfree` is not libc's free), libc's
# allocator only in libc.
CATEGORIES = [
    ("kernel: network, syscalls, scheduling", r"\[k\]"),
    ("ECDSA P-256 / SHA-2 (aws-lc)", r"ecp_nistz256|p256|bignum|aws_lc|sha256|SHA256|ec_GFp|ecdsa|BN_|bn_|fiat_|ECDSA|EC_"),
    ("RSA / argon2 (password and RS256)", r"argon2|blake2|Argon2|rsa|RSA"),
    ("database (SQLite, sqlx)", r"sqlite3|libsqlite|sqlx_sqlite|btree|vdbe|pager|Vdbe|Btree|Pager|sqlx_core|sqlx_postgres"),
    ("malloc / free / memcpy (libc)", r"libc\.so\S* .*(?:malloc|free|_int_|memcpy|memmove|memset|memcmp|realloc|tcache|consolidate|unlink_chunk)"),
    ("tokio runtime", r"tokio|mio|parking_lot|futex|epoll"),
    ("HTTP (hyper, axum, tower, http)", r"hyper|axum|tower|http::|httparse|matchit|h1::"),
    ("JSON / base64 / formatting", r"serde|base64|core::fmt|alloc::fmt|itoa|ryu|json|form_urlencoded|percent_encoding"),
    ("Valet (valet_* crates)", r"valet_"),
    ("tracing / metrics", r"tracing|metrics"),
]

rows = []
for line in sys.stdin:
    m = re.match(r"\s+([0-9.]+)%\s+(\S+)\s+(\[.\])\s+(.*?)\s*(?:-\s+-\s*)?$", line)
    if m:
        rows.append((float(m.group(1)), m.group(2), m.group(3), m.group(4).strip()))

totals = {name: 0.0 for name, _ in CATEGORIES}
other = 0.0
for pct, dso, kind, sym in rows:
    text = f"{kind} {dso} {sym}"
    for name, pattern in CATEGORIES:
        if re.search(pattern, text):
            totals[name] += pct
            break
    else:
        other += pct

for name, pct in sorted(totals.items(), key=lambda kv: -kv[1]):
    if pct >= 0.05:
        print(f"  {pct:5.1f}%  {name}")
print(f"  {other:5.1f}%  other")
print()
print("## hottest symbols (self time)")
for pct, dso, kind, sym in sorted(rows, key=lambda r: -r[0])[:25]:
    print(f"  {pct:5.2f}%  {dso:<18} {sym[:110]}")

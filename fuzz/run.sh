#!/usr/bin/env bash
# Runs every fuzz target in turn, one process (one core) each, for SECONDS_PER_TARGET
# (default 180), then prints a table: target, seconds, executions, CPU seconds, new crashes.
#
#   fuzz/run.sh [SECONDS_PER_TARGET]        e.g.  nice -n 10 fuzz/run.sh 180
#
# Each target reads the committed seeds in fuzz/corpus/<target>/ (never written) and grows
# its own corpus in fuzz/target/corpus/<target>/ (gitignored, kept between runs). Crashing
# inputs go to fuzz/artifacts/<target>/ (gitignored); rerun one with
# `cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>`.
# Exits 1 if any target found a crash or did not run. Needs a nightly toolchain
# (cargo +nightly).
set -euo pipefail

seconds="${1:-180}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [SECONDS_PER_TARGET]" >&2
    exit 2
fi
cd "$(dirname "$0")"

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz
fi
if [ ! -x /usr/bin/time ]; then
    echo "installing time (Debian package), for each target's CPU time" >&2
    apt-get install -y -qq time >/dev/null
fi

# No sanitizer: the crates forbid unsafe code, so what fuzzing can find here is panics,
# overflows (debug assertions are on), timeouts and memory blow-ups, all of which
# libFuzzer sees without ASan, at about twice the speed.
cargo +nightly fuzz build --sanitizer none
bin_dir="target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release"
mkdir -p target/logs

rows=()
found=0
for target in $(cargo +nightly fuzz list); do
    mkdir -p "target/corpus/$target" "artifacts/$target"
    before=$(find "artifacts/$target" -type f | wc -l)
    log="target/logs/$target.log"
    started=$(date +%s)
    # User + system CPU of the fuzzing process, from the kernel's accounting.
    /usr/bin/time -f '%U %S' -o "target/logs/$target.cpu" \
        "$bin_dir/$target" "target/corpus/$target" "corpus/$target" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="artifacts/$target/" >"$log" 2>&1 || true
    wall=$(($(date +%s) - started))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cpu=$(tail -n 1 "target/logs/$target.cpu" | awk '{ printf "%.1f", $1 + $2 }')
    crashes=$(($(find "artifacts/$target" -type f | wc -l) - before))
    if [ -z "$execs" ]; then
        # No final stats: the target did not run, which must not pass as clean.
        echo "$target did not run; see fuzz/$log" >&2
        crashes=$((crashes + 1))
    fi
    found=$((found + crashes))
    rows+=("| $target | $wall | ${execs:-?} | $cpu | $crashes |")
    echo "$target: ${wall}s, ${execs:-?} executions, ${cpu} CPU s, $crashes new crash(es) (log: fuzz/$log)" >&2
done

echo "| target | seconds | executions | CPU s | new crashes |"
echo "|---|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
[ "$found" -eq 0 ]

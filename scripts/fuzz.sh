#!/usr/bin/env bash
# Runs every libFuzzer target in fuzz/ for SECONDS each (default 30), with the memory limits
# the parsers promise to respect. Exits non-zero on the first crash, leak, timeout or
# out-of-memory; the input is left in fuzz/artifacts/<target>/.
#
# Usage: scripts/fuzz.sh [SECONDS]
# Needs the nightly toolchain (rustup toolchain install nightly); installs cargo-fuzz if
# missing. New corpus entries go to fuzz/corpus/<target>/ (only seed-* files are committed).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_EACH=${1:-30}

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

cd "$ROOT"
targets=$(cargo +nightly fuzz list)
cargo +nightly fuzz build
for t in $targets; do
    echo "== $t (${SECONDS_EACH}s)"
    mkdir -p "fuzz/corpus/$t"
    cargo +nightly fuzz run "$t" -- \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=512 -malloc_limit_mb=256 \
        -timeout=10 -print_final_stats=1
done
echo "fuzz: all targets ran ${SECONDS_EACH}s without a crash"

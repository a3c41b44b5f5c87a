#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ and runs each for SECONDS (default 30), with the
# memory limits the parsers promise to respect. Exits non-zero on the first crash, leak,
# timeout or out-of-memory; the input is left in fuzz/artifacts/<target>/.
#
# Usage: scripts/fuzz.sh [--dev] [--scratch] [--build-only] [SECONDS] [TARGET...]
#   --dev      build without optimizations (much faster to build, slower to run: what
#              scripts/test.sh uses for its short runs); default: release, as cargo-fuzz
#   --scratch  new corpus entries go to a temporary directory, not fuzz/corpus/<target>/
#   --build-only  build the targets, run none
#   TARGET     only these targets (default: every [[bin]] in fuzz/Cargo.toml)
#
# Needs the nightly toolchain (AddressSanitizer): rustup toolchain install nightly. The
# targets are built with cargo directly, with the flags `cargo fuzz build` (0.13) passes,
# so cargo-fuzz need not be installed; `cargo +nightly fuzz run|tmin|cmin <target>` works
# on the same crate. Only seed-* files of fuzz/corpus/ are committed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROFILE=release
SCRATCH=""
BUILD_ONLY=""
while [[ $# -gt 0 && $1 == --* ]]; do
    case $1 in
    --dev) PROFILE=dev ;;
    --scratch) SCRATCH=1 ;;
    --build-only) BUILD_ONLY=1 ;;
    *) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
SECONDS_EACH=${1:-30}
shift || true

cd "$ROOT/fuzz"
if (($#)); then
    targets=("$@")
else
    # The name of every [[bin]] section.
    mapfile -t targets < <(awk '/^\[\[bin\]\]/ { bin = 1; next } /^\[/ { bin = 0 }
        bin && $1 == "name" { gsub(/"/, "", $3); print $3 }' Cargo.toml)
fi

TRIPLE=$(rustc +nightly -vV | sed -n 's/^host: //p')
# cargo-fuzz's defaults: sanitizer coverage with comparison tracing, AddressSanitizer,
# `--cfg fuzzing`, debug assertions (and overflow checks); release builds in one codegen
# unit.
RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing \
-Cllvm-args=-simplifycfg-branch-fold-threshold=0 -Zsanitizer=address \
-Cllvm-args=-sanitizer-coverage-stack-depth -Cdebug-assertions"
build=(cargo +nightly build --target "$TRIPLE" --bins)
if [[ $PROFILE == release ]]; then
    build+=(--release --config 'profile.release.debug="line-tables-only"')
    RUSTFLAGS+=" -Ccodegen-units=1"
    out_dir=release
else
    out_dir=debug
fi
# --target keeps the flags off build scripts and proc macros, as cargo-fuzz does.
RUSTFLAGS="$RUSTFLAGS" "${build[@]}"
if [[ -n $BUILD_ONLY ]]; then exit 0; fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_odr_violation=0}

for t in "${targets[@]}"; do
    echo "== $t (${SECONDS_EACH}s)"
    mkdir -p "corpus/$t" "artifacts/$t"
    corpus=("corpus/$t")
    if [[ -n $SCRATCH ]]; then
        # libFuzzer writes new inputs to the first directory and reads them all.
        corpus=("$(mktemp -d)" "corpus/$t")
    fi
    "${CARGO_TARGET_DIR:-target}/$TRIPLE/$out_dir/$t" -max_total_time="$SECONDS_EACH" \
        -rss_limit_mb=512 -malloc_limit_mb=256 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" "${corpus[@]}"
    if [[ -n $SCRATCH ]]; then rm -rf "${corpus[0]}"; fi
done
echo "fuzz: ${#targets[@]} targets ran ${SECONDS_EACH}s each without a crash"

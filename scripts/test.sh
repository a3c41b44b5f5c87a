#!/usr/bin/env bash
# The whole test suite: what README's test command and CI (.ci/run) run.
#   -. installs what the tests drive when it is missing (scripts/install-test-deps.sh:
#      etcd 3.4 and 3.5.1, etcdctl, etcdutl, dig, go);
#   0. no import circle among the server's files (scripts/module-cycles.py);
#   1. cargo test --workspace (with the crash points compiled in, inert): unit tests,
#      multi-process cluster tests and the e2e suites that drive chorus with the real
#      etcdctl 3.4 and 3.5 and compare it with a real etcd;
#   2. the robustness suite's CI profile: every fault scenario for a few seconds of
#      traffic, against the server built with its crash points (`failpoints` feature);
#   3. every fuzz target in fuzz/ for a few seconds from its seeds (scripts/fuzz.sh: an
#      unoptimized AddressSanitizer build with nightly, in fuzz/target). The targets are
#      built while steps 1 and 2 run, at the lowest CPU and I/O priority: the tests wait
#      on child processes and the robustness suite keeps one core busy, so the build
#      takes the idle time (about 3.5 minutes of CI) and never the tests'.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each step prints its wall time, so CI's log shows where its minutes go.
step() {
  local start=$SECONDS
  "$@"
  echo "test.sh: '$*' took $((SECONDS - start)) s" >&2
}
step scripts/install-test-deps.sh
# The server's layers import only downward (docs/adr/0006-server-layers.md).
step python3 scripts/module-cycles.py crates/server/src --max 1
# Most tests wait on child processes (clusters, etcd, etcdctl): twice as many test
# threads as cores keeps both cores busy (tests/suite.rs holds every end-to-end file).
export RUST_TEST_THREADS=${RUST_TEST_THREADS:-$(($(nproc) * 2))}
# One build for the tests and the robustness suite: the crash points are compiled in
# and inert unless FAILPOINTS names one at start-up (no test does), so the tests run the
# same server the fault scenarios crash. The test build also makes every binary the
# tests and the robustness suite run (target/debug/chorus, chorusctl, chorus-robustness:
# their packages have integration tests). A later `cargo build` would not reuse it: it
# leaves out the dev-dependencies' features (tokio's test-util) and recompiles every
# crate that uses tokio (2 minutes of CI).
export CHORUS_TEST_BINARIES_BUILT=1
step cargo test --workspace --features chorus/failpoints --no-run
# The fuzz build in its own session (setsid), so that an early exit stops all of it.
fuzz_log=target/fuzz-build.log
setsid nice -n 19 ionice -c 3 scripts/fuzz.sh --dev --build-only >"$fuzz_log" 2>&1 &
fuzz_build=$!
trap 'kill -- -$fuzz_build 2>/dev/null || true' EXIT
step cargo test --workspace --features chorus/failpoints
step target/debug/chorus-robustness --profile ci
fuzz_built() {
  local status=0
  wait "$fuzz_build" || status=$?
  trap - EXIT # the build's processes are gone: nothing left to stop
  if ((status != 0)); then
    cat "$fuzz_log" >&2
    echo "test.sh: the fuzz build failed (exit status $status)" >&2
    return 1
  fi
}
step fuzz_built
# Seconds per fuzz target: a smoke run that catches a parser change breaking its contract
# on the seeds and their near mutations (docs/robustness.md#fuzzing for long runs).
step scripts/fuzz.sh --dev --scratch "${FUZZ_SECONDS:-6}"

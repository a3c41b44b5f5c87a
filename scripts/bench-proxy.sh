#!/usr/bin/env bash
# The grpc-proxy under load: chorus's `chorus grpc-proxy` next to etcd 3.4's
# `etcd grpc-proxy`, each in front of a one-member cluster of its own server, and each
# compared with talking to the member directly.
#
#   watch  1,000 clients watching one key (1,000 watch streams on 1,000 connections),
#          --puts puts of that key:
#          the member's watcher count (sampled), events/s, and the member's CPU time
#          per delivered event (utime + stime from /proc, all the member's threads)
#   range  serializable reads of one key, 20 clients on 2 connections: req/s and the
#          member's CPU time per read (the proxy answers from its cache)
#
# Usage: scripts/bench-proxy.sh [--puts N] [--reads N] [--out DIR]
# Binaries: $CHORUS_BIN (default target/release/chorus), $BENCH_BIN (default
# target/release/chorus-bench), $ETCD_BIN (default: etcd on PATH). Build first:
#   cargo build --release -p chorus -p chorus-bench
# Ports are chosen at run time below 32768 on 127.0.0.1; every process started here is
# stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHORUS_BIN=${CHORUS_BIN:-$ROOT/target/release/chorus}
BENCH_BIN=${BENCH_BIN:-$ROOT/target/release/chorus-bench}
ETCD_BIN=${ETCD_BIN:-$(command -v etcd || echo /usr/bin/etcd)}
PUTS=200
READS=50000
OUT=""
while (($#)); do
    case $1 in
        --puts) PUTS=$2; shift ;;
        --reads) READS=$2; shift ;;
        --out) OUT=$2; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-proxy.XXXXXX")
OUT=${OUT:-$WORK}
mkdir -p "$OUT"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

# port VAR: a port below 32768 that nothing listens on, into VAR (no subshell, so the
# counter moves on), starting from a per-run offset.
NEXT_PORT=$((20000 + ($$ % 500) * 20))
port() {
    for _ in $(seq 2000); do
        NEXT_PORT=$((NEXT_PORT + 1))
        ((NEXT_PORT < 32000)) || NEXT_PORT=20000
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$NEXT_PORT") 2>/dev/null; then
            printf -v "$1" '%s' "$NEXT_PORT"
            return
        fi
    done
    echo "no free port" >&2
    exit 1
}

# Waits (bounded) until `url`/health answers.
wait_health() {
    for _ in $(seq 300); do
        curl -fs "$1/health" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "not healthy: $1" >&2
    exit 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)

# start_member KIND -> sets MEMBER_PID MEMBER_URL
start_member() {
    local kind=$1 cport pport bin
    port cport; port pport
    bin=$CHORUS_BIN; [ "$kind" = etcd ] && bin=$ETCD_BIN
    "$bin" --name m0 --data-dir "$WORK/$kind-data-$cport" \
        --listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
        --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
        --initial-cluster "m0=http://127.0.0.1:$pport" >"$OUT/$kind-member-$cport.log" 2>&1 &
    MEMBER_PID=$!
    PIDS+=("$MEMBER_PID")
    MEMBER_URL="http://127.0.0.1:$cport"
    wait_health "$MEMBER_URL"
}

# start_proxy KIND ENDPOINT -> sets PROXY_PID PROXY_URL
start_proxy() {
    local kind=$1 p bin
    port p
    bin=$CHORUS_BIN; [ "$kind" = etcd ] && bin=$ETCD_BIN
    "$bin" grpc-proxy start --endpoints="$2" --listen-addr="127.0.0.1:$p" >"$OUT/$kind-proxy-$p.log" 2>&1 &
    PROXY_PID=$!
    PIDS+=("$PROXY_PID")
    PROXY_URL="http://127.0.0.1:$p"
    wait_health "$PROXY_URL"
}

stop() { kill "$@" 2>/dev/null || true; for p in "$@"; do wait "$p" 2>/dev/null || true; done; }

# Samples the member's watcher gauge into a file until the file "$1.stop" appears.
sample_watchers() {
    local url=$1 file=$2 max=0 v
    while [ ! -e "$file.stop" ]; do
        v=$(curl -fs "$url/metrics" | awk '$1=="etcd_debugging_mvcc_watcher_total"{print $2}')
        v=${v%.*}
        [ -n "$v" ] && ((v > max)) && max=$v
        echo "$max" >"$file"
        sleep 0.05
    done
}

# CPU µs per unit: per AFTER BEFORE UNITS (clock ticks).
per() { python3 -c "print(round(($1-$2)/$TICK/$3*1e6, 2))"; }

json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

ROWS=()
# run KIND MODE(direct|proxy) WORKLOAD(watch|range)
run() {
    local kind=$1 mode=$2 load=$3 target name before after watchers=""
    start_member "$kind"
    target=$MEMBER_URL
    if [ "$mode" = proxy ]; then start_proxy "$kind" "$MEMBER_URL"; target=$PROXY_URL; fi
    name="$kind-$mode-$load"
    before=$(cpu_ticks "$MEMBER_PID")
    local pbefore=0 pafter=0
    [ "$mode" = proxy ] && pbefore=$(cpu_ticks "$PROXY_PID")
    if [ "$load" = watch ]; then
        sample_watchers "$MEMBER_URL" "$WORK/$name.watchers" &
        local sampler=$!
        "$BENCH_BIN" --endpoints "$target" --conns 1000 --clients 10 -w json --no-progress \
            watch --streams 1000 --watch-per-stream 1 --put-total "$PUTS" >"$OUT/$name.json"
        touch "$WORK/$name.watchers.stop"; wait "$sampler" || true
        watchers=$(cat "$WORK/$name.watchers")
        after=$(cpu_ticks "$MEMBER_PID")
        [ "$mode" = proxy ] && pafter=$(cpu_ticks "$PROXY_PID")
        local events rate
        events=$(json "$OUT/$name.json" 'd["reports"]["events"]["requests"]')
        rate=$(json "$OUT/$name.json" 'round(d["reports"]["events"]["requests_per_sec"])')
        ROWS+=("| $kind | $mode | watch: 1,000 clients x $PUTS puts | $watchers | $rate events/s | $(per "$after" "$before" "$events") µs/event | $(per "$pafter" "$pbefore" "$events") µs/event |")
    else
        ETCDCTL_API=3 etcdctl --endpoints "$target" put foo bar >/dev/null
        "$BENCH_BIN" --endpoints "$target" --conns 2 --clients 20 -w json --no-progress \
            range foo --consistency s --total "$READS" >"$OUT/$name.json"
        after=$(cpu_ticks "$MEMBER_PID")
        [ "$mode" = proxy ] && pafter=$(cpu_ticks "$PROXY_PID")
        local rate
        rate=$(json "$OUT/$name.json" 'round(d["reports"]["range"]["requests_per_sec"])')
        ROWS+=("| $kind | $mode | serializable range x $READS | | $rate req/s | $(per "$after" "$before" "$READS") µs/read | $(per "$pafter" "$pbefore" "$READS") µs/read |")
    fi
    local pids=("$MEMBER_PID"); [ "$mode" = proxy ] && pids+=("$PROXY_PID")
    stop "${pids[@]}"
}

for kind in chorus etcd; do
    for load in watch range; do
        for mode in direct proxy; do
            run "$kind" "$mode" "$load"
        done
    done
done

{
    echo "| server | via | load | member watchers (max) | throughput | member CPU | proxy CPU |"
    echo "|---|---|---|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
} | tee "$OUT/report.md"

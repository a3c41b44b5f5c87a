#!/usr/bin/env bash
# Defragment under load, chorus next to etcd 3.4 and etcd 3.5.1 (one member each, one
# after the other, fresh data dirs, ports chosen at run time on 127.0.0.1).
#
# Each server gets KEYS keys of 256 B (default 1,000,000; with DELETE=1 they are then
# deleted and compacted, so the defragment has much to give back), then, while one client
# puts at 100/s and another reads linearizably at 100/s for 30 s, `etcdctl defrag` runs.
# Prints per server: the defragment's duration, the db size before and after, and the
# slowest put and read of the two loops (the stall a client saw), with their p99.
#
# Usage: scripts/bench-defrag.sh [KEYS]      (DELETE=1 scripts/bench-defrag.sh 200000)
# SERVERS="34 35 chorus" (the default) picks the servers; chorus's own account of the
# defragment (its log line) goes to standard error.
# Binaries as scripts/bench-vs-etcd.sh: $CHORUS_BIN, $BENCH_BIN, $ETCD34_BIN, $ETCD35_BIN,
# $ETCDCTL_BIN. Build first: cargo build --release -p chorus -p chorus-bench
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHORUS_BIN=${CHORUS_BIN:-$ROOT/target/release/chorus}
BENCH_BIN=${BENCH_BIN:-$ROOT/target/release/chorus-bench}
ETCD34_BIN=${ETCD34_BIN:-$(command -v etcd || echo /usr/bin/etcd)}
ETCD35_BIN=${ETCD35_BIN:-$ROOT/target/etcd-v3.5.1/etcd}
ETCDCTL_BIN=${ETCDCTL_BIN:-$(dirname "$ETCD35_BIN")/etcdctl}
KEYS=${1:-1000000}
DELETE=${DELETE:-0}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-defrag.XXXXXX")
PID=""
cleanup() {
    [[ -n $PID ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

# A free port below the ephemeral range.
port() {
    python3 -c 'import random,socket
while True:
    p = random.randint(10000, 32000); s = socket.socket()
    try: s.bind(("127.0.0.1", p)); s.close(); s2 = socket.socket(); s2.bind(("127.0.0.1", p + 1)); s2.close(); print(p); break
    except OSError: pass'
}

ctl() { ETCDCTL_API=3 "$ETCDCTL_BIN" --endpoints "$EP" --command-timeout 600s "$@"; }
bench() { "$BENCH_BIN" --endpoints "$EP" --no-progress "$@"; }
field() { sed -n "s/^ *$1:[[:space:]]*\([0-9.]*\).*/\1/p" "$2" | head -1; }
p99() { sed -n 's/^ *99% in \([0-9.]*\).*/\1/p' "$1" | head -1; }
dbsize() { ctl endpoint status -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["dbSize"])'; }

run() {
    local name=$1 bin=$2 p
    p=$(port)
    EP=127.0.0.1:$p
    local dir=$WORK/$name
    "$bin" --name m --data-dir "$dir" --quota-backend-bytes 8589934592 \
        --listen-client-urls "http://$EP" --advertise-client-urls "http://$EP" \
        --listen-peer-urls "http://127.0.0.1:$((p + 1))" \
        --initial-advertise-peer-urls "http://127.0.0.1:$((p + 1))" \
        --initial-cluster "m=http://127.0.0.1:$((p + 1))" >"$WORK/$name.log" 2>&1 &
    PID=$!
    for _ in $(seq 100); do ctl endpoint health >/dev/null 2>&1 && break; sleep 0.2; done
    bench --conns 10 --clients 100 put --total "$KEYS" --key-size 16 --val-size 256 \
        --sequential-keys --key-space-size "$KEYS" >"$WORK/$name.load"
    if [[ $DELETE == 1 ]]; then
        ctl del "" --from-key >/dev/null
        ctl compact "$(ctl get k -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')" --physical >/dev/null
    fi
    local before after t0 t1
    before=$(dbsize)
    ctl put probe v >/dev/null
    bench --clients 1 put --rate 100 --total 3000 --key-size 8 --val-size 256 \
        --key-space-size 1000 >"$WORK/$name.put" &
    local puts=$!
    bench --clients 1 range probe --consistency l --rate 100 --total 3000 >"$WORK/$name.range" &
    local reads=$!
    sleep 5
    t0=$(date +%s.%N)
    ctl defrag >/dev/null
    t1=$(date +%s.%N)
    wait $puts $reads
    after=$(dbsize)
    printf '| %s | %s | %.2f | %s | %s | %s | %s | %s | %s |\n' "$name" "$KEYS" \
        "$(echo "$t1 - $t0" | bc)" "$((before >> 20))" "$((after >> 20))" \
        "$(field Slowest "$WORK/$name.put")" "$(p99 "$WORK/$name.put")" \
        "$(field Slowest "$WORK/$name.range")" "$(p99 "$WORK/$name.range")"
    grep -h "defragmented the backend" "$WORK/$name.log" >&2 || true
    kill "$PID"
    wait "$PID" 2>/dev/null || true
    PID=""
    rm -rf "$dir"
}

echo "| server | keys | defrag (s) | db before (MiB) | db after (MiB) | slowest put (s) | put p99 (s) | slowest l-read (s) | l-read p99 (s) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for s in ${SERVERS:-34 35 chorus}; do
    case $s in
        34) run "etcd 3.4.23" "$ETCD34_BIN" ;;
        35) run "etcd 3.5.1" "$ETCD35_BIN" ;;
        chorus) run chorus "$CHORUS_BIN" ;;
        *) echo "bench-defrag: unknown server $s (34, 35, chorus)" >&2; exit 2 ;;
    esac
done

#!/usr/bin/env bash
# Maintenance under load and one huge range, chorus next to etcd 3.4 and etcd 3.5.1 (one
# member each, one after the other, fresh data dirs, ports chosen at run time on
# 127.0.0.1). Issue 20's defragment, compaction and big-range figures.
#
# Each server gets KEYS keys of 256 B (default 1,000,000), written LOADS times (default 1;
# 2 when OPS has compact, so that a compaction has KEYS superseded revisions to remove;
# with DELETE=1 the keys are then deleted and compacted, so a defragment has much to
# give back). Then, in the order of OPS (default "defrag"):
#   range   the memory one `get "" --prefix` of every key adds to the member: its peak
#           RSS (VmHWM, reset through /proc/PID/clear_refs just before) less its RSS
#           before, for a unary Range (etcdctl) and, on chorus, for KV.RangeStream
#           (chorusctl get --stream; etcd 3.4 and 3.5 have no RangeStream);
#   compact `etcdctl compact <revision>` at the newest revision, timed until the member
#           logs that the compaction finished (etcd: `finished scheduled compaction`),
#   defrag  `etcdctl defrag`,
# each of the last two while one client puts at 100/s and another reads linearizably at
# 100/s for LOOP_SECONDS (default 30; the operation starts 5 s in). Each request's start
# and latency are logged (chorus-bench --latency-log), so the table gives the p99 of the
# requests sent before the operation and of those sent while it ran, and the slowest of
# the latter (the stall a client saw).
#
# Usage: scripts/bench-defrag.sh [KEYS]      (DELETE=1 scripts/bench-defrag.sh 200000)
#        OPS="range compact" scripts/bench-defrag.sh 1000000
# SERVERS="34 35 chorus" (the default) picks the servers; chorus's own account of the
# defragment (its log line) goes to standard error.
# Binaries as scripts/bench-vs-etcd.sh: $CHORUS_BIN, $BENCH_BIN, $ETCD34_BIN, $ETCD35_BIN,
# $ETCDCTL_BIN, and $CHORUSCTL_BIN. Build first:
#   cargo build --release -p chorus -p chorus-bench -p chorusctl
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHORUS_BIN=${CHORUS_BIN:-$ROOT/target/release/chorus}
BENCH_BIN=${BENCH_BIN:-$ROOT/target/release/chorus-bench}
CHORUSCTL_BIN=${CHORUSCTL_BIN:-$ROOT/target/release/chorusctl}
ETCD34_BIN=${ETCD34_BIN:-$(command -v etcd || echo /usr/bin/etcd)}
ETCD35_BIN=${ETCD35_BIN:-$ROOT/target/etcd-v3.5.1/etcd}
ETCDCTL_BIN=${ETCDCTL_BIN:-$(dirname "$ETCD35_BIN")/etcdctl}
KEYS=${1:-1000000}
OPS=${OPS:-defrag}
DELETE=${DELETE:-0}
if [[ " $OPS " == *" compact "* ]]; then LOADS=${LOADS:-2}; else LOADS=${LOADS:-1}; fi
LOOP_SECONDS=${LOOP_SECONDS:-30}
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
status() { ctl endpoint status -w json | python3 -c "import json,sys; print(json.load(sys.stdin)[0]$1)"; }
dbsize() { status '["Status"]["dbSize"]'; }
revision() { status '["Status"]["header"]["revision"]'; }
kib() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$PID/status"; }

# The member's memory added by one command: peak RSS (reset just before) less RSS before.
peak_added() {
    local before t0 t1
    before=$(kib VmRSS)
    echo 5 >"/proc/$PID/clear_refs"
    t0=$(date +%s.%N)
    "$@" >/dev/null
    t1=$(date +%s.%N)
    printf '%.2f %s %s' "$(echo "$t1 - $t0" | bc)" "$((before >> 10))" "$((($(kib VmHWM) - before) >> 10))"
}

# Each call on a freshly started member: what one call leaves to the allocator and to
# the backend's page cache would serve the next and hide what it takes.
range_rows() {
    local name=$1 t rss added
    if [[ $name == chorus ]]; then
        read -r t rss added <<<"$(peak_added "$CHORUSCTL_BIN" --endpoints "$EP" \
            --command-timeout 600s get "" --prefix --stream)"
        echo "| $name | $KEYS | RangeStream (chorusctl get \"\" --prefix --stream) | $t | $rss | $added |" >>"$WORK/range.md"
    fi
    stop_member
    start_member
    read -r t rss added <<<"$(peak_added ctl get "" --prefix)"
    echo "| $name | $KEYS | Range (etcdctl get \"\" --prefix) | $t | $rss | $added |" >>"$WORK/range.md"
}

# A compaction at revision $1, returning when the member logs that it finished. Not
# `compact --physical`: etcd 3.5.1 answers that with `etcdserver: request timed out`
# when the compaction outlasts its request timeout (1,000,000 revisions do).
compact_and_wait() {
    local log=$WORK/$NAME.log seen
    seen=$(grep -c 'finished.*compaction' "$log" || true)
    ctl compact "$1" >/dev/null
    for _ in $(seq 6000); do
        (($(grep -c 'finished.*compaction' "$log" || true) > seen)) && return 0
        sleep 0.1
    done
    echo "bench-defrag: $NAME did not log the end of the compaction within 600 s" >&2
    return 1
}

# p99 before the operation, p99 while it ran and the slowest then (ms), from a latency log.
window() {
    python3 - "$1" "$2" "$3" <<'PY'
import sys
t0, t1 = float(sys.argv[2]), float(sys.argv[3])
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))] * 1000 if xs else float("nan")
before = [l for s, l in rows if s < t0]
during = [l for s, l in rows if t0 <= s <= t1]
print(f"{p99(before):.1f} / {p99(during):.1f} / {max(during, default=float('nan')) * 1000:.1f}")
PY
}

# Runs the operation `$@` under the put and read loops; one table row.
under_load() {
    local name=$1 op=$2 before after t0 t1 total=$((LOOP_SECONDS * 100))
    shift 2
    before=$(dbsize)
    ctl put probe v >/dev/null
    bench --latency-log "$WORK/put.log" --clients 1 put --rate 100 --total "$total" \
        --key-size 8 --val-size 256 --key-space-size 1000 >/dev/null &
    local puts=$!
    bench --latency-log "$WORK/read.log" --clients 1 range probe --consistency l --rate 100 \
        --total "$total" >/dev/null &
    local reads=$!
    sleep 5
    t0=$(date +%s.%N)
    "$@" >/dev/null
    t1=$(date +%s.%N)
    wait $puts $reads
    after=$(dbsize)
    printf '| %s | %s | %s | %.2f | %s / %s | %s | %s |\n' "$name" "$op" "$KEYS" \
        "$(echo "$t1 - $t0" | bc)" "$((before >> 20))" "$((after >> 20))" \
        "$(window "$WORK/put.log" "$t0" "$t1")" "$(window "$WORK/read.log" "$t0" "$t1")" \
        >>"$WORK/load.md"
}

# Starts $BIN on $DIR at $EP (its log appended to $WORK/$NAME.log); returns once healthy.
start_member() {
    local p=${EP##*:}
    "$BIN" --name m --data-dir "$DIR" --quota-backend-bytes 8589934592 \
        --listen-client-urls "http://$EP" --advertise-client-urls "http://$EP" \
        --listen-peer-urls "http://127.0.0.1:$((p + 1))" \
        --initial-advertise-peer-urls "http://127.0.0.1:$((p + 1))" \
        --initial-cluster "m=http://127.0.0.1:$((p + 1))" >>"$WORK/$NAME.log" 2>&1 &
    PID=$!
    for _ in $(seq 300); do ctl endpoint health >/dev/null 2>&1 && break; sleep 0.2; done
}

stop_member() {
    kill "$PID"
    wait "$PID" 2>/dev/null || true
    PID=""
}

run() {
    NAME=$1
    BIN=$2
    EP=127.0.0.1:$(port)
    DIR=$WORK/$NAME
    start_member
    for _ in $(seq "$LOADS"); do
        bench --conns 10 --clients 100 put --total "$KEYS" --key-size 16 --val-size 256 \
            --sequential-keys --key-space-size "$KEYS" >/dev/null
    done
    if [[ $DELETE == 1 ]]; then
        ctl del "" --from-key >/dev/null
        ctl compact "$(revision)" --physical >/dev/null
    fi
    for op in $OPS; do
        case $op in
            range) range_rows "$NAME" ;;
            compact) under_load "$NAME" compact compact_and_wait "$(revision)" ;;
            defrag) under_load "$NAME" defrag ctl defrag ;;
            *) echo "bench-defrag: unknown operation $op (range, compact, defrag)" >&2; exit 2 ;;
        esac
    done
    grep -h "defragmented the backend" "$WORK/$NAME.log" >&2 || true
    stop_member
    rm -rf "$DIR"
}

for s in ${SERVERS:-34 35 chorus}; do
    case $s in
        34) run "etcd 3.4.23" "$ETCD34_BIN" ;;
        35) run "etcd 3.5.1" "$ETCD35_BIN" ;;
        chorus) run chorus "$CHORUS_BIN" ;;
        *) echo "bench-defrag: unknown server $s (34, 35, chorus)" >&2; exit 2 ;;
    esac
done
if [[ -s $WORK/range.md ]]; then
    echo "| server | keys | call | time (s) | RSS before (MiB) | peak RSS added (MiB) |"
    echo "|---|---:|---|---:|---:|---:|"
    cat "$WORK/range.md"
    echo
fi
if [[ -s $WORK/load.md ]]; then
    echo "| server | operation | keys | operation (s) | db before / after (MiB) | put p99 before / during / slowest during (ms) | l-read p99 before / during / slowest during (ms) |"
    echo "|---|---|---:|---:|---|---|---|"
    cat "$WORK/load.md"
fi

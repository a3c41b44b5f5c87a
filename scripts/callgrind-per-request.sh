#!/usr/bin/env bash
# Instructions the member executes per request, counted by callgrind (repeatable whatever
# else the machine does, unlike req/s or CPU time on a shared VM):
#   scripts/callgrind-per-request.sh CHORUS_BIN CHORUS_BENCH_BIN range|put [TOTAL]
# Starts one member under `valgrind --tool=callgrind` in a temporary directory, warms it
# up with 2,000 requests, zeroes the counters, sends TOTAL (default 20,000) requests over
# 10 connections from 100 clients, dumps, and prints instructions per request. Build the
# member with debug info (`[profile.release] debug = true` is the workspace's default) to
# read the per-function costs with callgrind_annotate on the kept dump.
set -euo pipefail
BIN=${1:?chorus binary}; BENCH=${2:?chorus-bench binary}; LOAD=${3:?range or put}
TOTAL=${4:-20000}
case $LOAD in
    range) ARGS=(range foo --consistency=l) ;;
    put) ARGS=(put --key-size=8 --val-size=256 --sequential-keys) ;;
    *) echo "callgrind-per-request: load is range or put, not $LOAD" >&2; exit 2 ;;
esac
for tool in valgrind callgrind_control callgrind_annotate python3 curl; do
    command -v "$tool" >/dev/null || { echo "callgrind-per-request: needs $tool" >&2; exit 2; }
done
DIR=$(mktemp -d /tmp/callgrind-per-request.XXXXXX)
# Two free ports below 32768 (the ephemeral range starts there).
read -r PC PP < <(python3 - <<'PY'
import random, socket
ports = []
while len(ports) < 2:
    p = random.randrange(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); ports.append(p)
    except OSError:
        pass
    finally:
        s.close()
print(*ports)
PY
)
valgrind --tool=callgrind --callgrind-out-file="$DIR/cg.out" --dump-instr=no \
    "$BIN" --name cg --data-dir "$DIR/data" \
    --listen-client-urls "http://127.0.0.1:$PC" --advertise-client-urls "http://127.0.0.1:$PC" \
    --listen-peer-urls "http://127.0.0.1:$PP" --initial-advertise-peer-urls "http://127.0.0.1:$PP" \
    --initial-cluster "cg=http://127.0.0.1:$PP" --snapshot-count=100000 \
    --heartbeat-interval=100 --election-timeout=1000 --log-level=error >"$DIR/log" 2>&1 &
VP=$!
trap 'kill $VP 2>/dev/null || true' EXIT
# bench N: N requests (a put spreads them over N keys).
bench() {
    local extra=()
    [ "$LOAD" = put ] && extra=(--key-space-size="$1")
    "$BENCH" --endpoints="127.0.0.1:$PC" --conns=10 --clients=100 "${ARGS[@]}" --total="$1" "${extra[@]}"
}
ready=0
for _ in $(seq 1 240); do # a member under valgrind starts in a few seconds; bound: 2 min
    # Readiness, and the key the range reads: foo=bar through the JSON gateway.
    if curl -sf -X POST "http://127.0.0.1:$PC/v3/kv/put" -d '{"key":"Zm9v","value":"YmFy"}' \
        >/dev/null 2>&1; then ready=1; break; fi
    sleep 0.5
done
((ready)) || { echo "callgrind-per-request: the member did not start, see $DIR/log" >&2; exit 1; }
bench 2000 >/dev/null
callgrind_control -z "$VP" >/dev/null 2>&1
bench "$TOTAL" >"$DIR/bench.txt"
callgrind_control -d "$VP" >/dev/null 2>&1
kill "$VP"; wait "$VP" || true
trap - EXIT
rm -rf "$DIR/data"
total=$(callgrind_annotate "$DIR/cg.out.1" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
echo "$LOAD: $((total / TOTAL)) instructions per request ($total for $TOTAL requests); dump: $DIR/cg.out.1"

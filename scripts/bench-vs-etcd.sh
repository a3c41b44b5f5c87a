#!/usr/bin/env bash
# chorus next to etcd 3.4, same load, same machine, same settings.
#
# Starts real etcd and chorus (target/release/chorus) on 127.0.0.1 with ports chosen at
# run time and fresh data dirs under a temp dir, one and three members, and runs the same
# chorus-bench workloads against each in alternation (etcd, then chorus, row by row; a
# fresh cluster for every run). Samples each server's RSS from /proc (VmRSS at the end of
# the run, VmHWM = peak, summed over members), measures the disk's own fdatasync, the
# RSS, db size and start-up time with 1,000,000 keys, and prints a markdown report with
# the ratio chorus/etcd of every figure.
#
# Usage: scripts/bench-vs-etcd.sh [--quick] [--out DIR] [--only ROWS] [--tmpdir DIR]
#                                 [--wait-idle PCT] [--pin]
#   --quick        small totals: a smoke check of a few minutes
#   --out DIR      keep the report, every chorus-bench JSON report and every log in DIR
#   --only ROWS    comma-separated row ids or globs (put-*,range-s-1m,keys-1m,fsync...);
#                  --list prints the ids
#   --tmpdir DIR   where the data dirs go (default $TMPDIR or /tmp); the fdatasync
#                  figure is of this file system
#   --wait-idle PCT before each run, wait (at most 10 minutes) until the CPUs were at
#                  least PCT % idle over one second (other work on the machine); the idle
#                  share seen before each run is in the report either way
#   --pin          run every member on CPU 0 and chorus-bench on CPU 1 (taskset): the load
#                  generator then takes no CPU from the server, as on separate machines,
#                  and req/s measures the server (both servers get the same one core)
# Binaries: $CHORUS_BIN (default target/release/chorus), $BENCH_BIN (default
# target/release/chorus-bench), $ETCD_BIN, $ETCDCTL_BIN (default: etcd, etcdctl on PATH).
# Needs bash, coreutils and python3 (JSON and the table). Build first:
#   cargo build --release -p chorus -p chorus-bench
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHORUS_BIN=${CHORUS_BIN:-$ROOT/target/release/chorus}
BENCH_BIN=${BENCH_BIN:-$ROOT/target/release/chorus-bench}
ETCD_BIN=${ETCD_BIN:-$(command -v etcd || echo /usr/bin/etcd)}
ETCDCTL_BIN=${ETCDCTL_BIN:-$(command -v etcdctl || echo /usr/bin/etcdctl)}

QUICK=0
OUT=""
ONLY="*"
LIST=0
WAIT_IDLE=0
PIN=0
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
        --pin) PIN=1 ;;
        --list) LIST=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "bench-vs-etcd: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

# ---------------------------------------------------------------------------------------
# Rows: id | members | chorus-bench arguments (the same for both servers). Totals are
# "full quick".
pick() { if ((QUICK)); then echo "$2"; else echo "$1"; fi; }
PUT_1=$(pick 10000 500)
PUT_100=$(pick 50000 5000)
PUT_1000=$(pick 100000 10000)
RANGE=$(pick 100000 10000)
TXN=$(pick 50000 5000)
WATCH_PUTS=$(pick 1000 100)
WATCH_LAT_PUTS=$(pick 300 50)
BIG_KEYS=$(pick 1000000 50000)

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

# Same settings on both: etcd 3.4's defaults written out (snapshot count, heartbeat,
# election, backend batching), an 8 GiB quota so the 1M-key load never hits the alarm,
# and pre-vote on (chorus's default; etcd 3.4's is off).
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
READY_TIMEOUT=120      # s, a cluster starting (also with 1M keys)
STOP_TIMEOUT=60        # s, SIGTERM to exit
BENCH_TIMEOUT=$(pick 900 180) # s, one chorus-bench run
BIG_TIMEOUT=$(pick 1800 300)  # s, the 1M-key load

# ---------------------------------------------------------------------------------------
for bin in "$CHORUS_BIN" "$BENCH_BIN" "$ETCD_BIN" "$ETCDCTL_BIN"; do
    if [[ ! -x $bin ]]; then
        echo "bench-vs-etcd: $bin not found; build with 'cargo build --release -p chorus -p chorus-bench'" \
            "and install etcd 3.4 (apt-get install etcd-server etcd-client)" >&2
        exit 1
    fi
done
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
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
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
    bin=$ETCD_BIN
    [[ $CUR_KIND == chorus ]] && bin=$CHORUS_BIN
    local -a args
    read -ra args <<<"${CUR_ARGS[$i]}"
    "${SERVER_PIN[@]}" env "${CLEAN_ENV[@]}" "$bin" "${args[@]}" >>"$OUT/logs/$CLUSTER_TAG.m$i.log" 2>&1 &
    CUR_PIDS[i]=$!
    ALL_PIDS+=("$!")
}

# start_cluster KIND N TAG: N fresh members of etcd|chorus; returns when all serve.
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
VERSION_ETCD=$(first_line "$ETCD_BIN" --version)
VERSION_ETCDCTL=$(first_line "$ETCDCTL_BIN" version)
VERSION_CHORUS=$(first_line "$CHORUS_BIN" --version)
CHORUS_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
FS=$(df -PT "$WORK" | awk 'NR==2 {print $2 " on " $1 " (" $7 ")"}')
record kind=header date="$(date -u '+%Y-%m-%d %H:%M:%S UTC')" nproc="$(nproc)" \
    cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
    kernel="$(uname -sr)" mem="$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)" \
    fs="$FS" etcd="$VERSION_ETCD ($VERSION_ETCDCTL)" chorus="$VERSION_CHORUS (commit $CHORUS_COMMIT)" \
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
    for server in etcd chorus; do
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
    for server in etcd chorus; do
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
rows = {}
for r in recs:
    if r["kind"] == "row":
        rows.setdefault(r["row"], {})[r["server"]] = r
big = {r["server"]: r for r in recs if r["kind"] == "big"}

def ratio(c, e):
    if c is None or e is None or e == 0:
        return "–"
    return f"{c / e:.2f}x"

def ms(x):
    return "–" if x is None else f"{x * 1000:.2f}"

def num(x):
    return "–" if x is None else f"{x:,.0f}"

def load1(r):
    return r.get("load", "–")

def cpu_us(r):
    # The members' CPU time (all threads, user + system) during the run per request.
    if r.get("cpu_ms") is None or not r.get("requests"):
        return None
    return r["cpu_ms"] * 1000 / r["requests"]

def us(x):
    return "–" if x is None else (f"{x:.2f}" if x < 10 else f"{x:,.0f}")

def mib(kb):
    return "–" if kb is None else f"{kb / 1024:.0f}"

print("# chorus vs etcd 3.4: chorus-bench side by side")
print()
print(f"- date: {head['date']}" + ("  (**--quick**: small totals, a smoke check)" if head["quick"] else ""))
print(f"- machine: {head['nproc']} CPUs ({head['cpu']}), {head['mem']}, kernel {head['kernel']}")
print(f"- data dirs: {head['fs']}")
print(f"- etcd: {head['etcd']}")
print(f"- chorus: {head['chorus']}")
print(f"- flags on both: `{head['flags']}`")
print(f"- CPU pinning: {head.get('pinning', 'none')}")
print(f"- load average at start / end: {head['load_start']} / {foot['load_end']}; run took {foot['seconds']} s")
print("- every run on a fresh cluster (etcd first, then chorus, row by row); 3-member runs with `--target-leader`")
print("- RSS: VmHWM (peak) summed over members, MiB; latencies in ms; ratios are chorus/etcd")
print("- CPU µs/req: the members' CPU time (user + system, all threads, summed over members) during the run, per request "
      "(per event delivered for watch-1m); less sensitive to the machine's other load than req/s")
print("- before: CPU idle over the second before the run (2 CPUs shared with other work) and the 1-minute load average")
print()
if rows:
    print("| row | members | conns/clients | etcd req/s | chorus req/s | ratio | etcd p50 | chorus p50 | ratio | etcd p99 | chorus p99 | ratio | etcd RSS | chorus RSS | ratio | etcd CPU µs/req | chorus CPU µs/req | ratio | before (etcd; chorus) |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, pair in rows.items():
        e, c = pair.get("etcd", {}), pair.get("chorus", {})
        any_ = e or c
        args = any_["args"].split()
        cc = "/".join(a.split("=")[1] for a in args if a.startswith(("--conns=", "--clients=")))
        errs = ""
        for side, r in (("etcd", e), ("chorus", c)):
            if r.get("errors"):
                errs += f" ({side}: {r['errors']} errors)"
        label = name + errs
        print(f"| {label} | {any_['members']} | {cc} | {num(e.get('rps'))} | {num(c.get('rps'))} | {ratio(c.get('rps'), e.get('rps'))} "
              f"| {ms(e.get('p50'))} | {ms(c.get('p50'))} | {ratio(c.get('p50'), e.get('p50'))} "
              f"| {ms(e.get('p99'))} | {ms(c.get('p99'))} | {ratio(c.get('p99'), e.get('p99'))} "
              f"| {mib(e.get('hwm_kb'))} | {mib(c.get('hwm_kb'))} | {ratio(c.get('hwm_kb'), e.get('hwm_kb'))} "
              f"| {us(cpu_us(e))} | {us(cpu_us(c))} | {ratio(cpu_us(c), cpu_us(e))} "
              f"| {load1(e)}; {load1(c)} |")
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
    for side in ("etcd", "chorus"):
        if p.get(side, {}).get("p50") is not None:
            line += f"; put 1/1 one member p50 {side} {ms(p[side]['p50'])} ms = {p[side]['p50'] / fs['p50']:.2f}x fdatasync"
    print(line)
    print()
if big:
    e, c = big.get("etcd", {}), big.get("chorus", {})
    keys = (e or c)["keys"]
    print(f"## {keys:,} keys of 256 bytes (one member, loaded with put 100/1000, sequential keys)")
    print()
    print("| figure | etcd | chorus | ratio |")
    print("|---|---:|---:|---:|")
    def line(label, k, fmt):
        print(f"| {label} | {fmt(e.get(k))} | {fmt(c.get(k))} | {ratio(c.get(k), e.get(k))} |")
    line("load req/s", "rps", num)
    line("load p50 ms", "p50", ms)
    line("load p99 ms", "p99", ms)
    line("RSS after the load (VmRSS, MiB)", "rss_kb", mib)
    line("peak RSS during the load (VmHWM, MiB)", "hwm_kb", mib)
    line("db file size (MiB)", "db_bytes", lambda b: "–" if b is None else f"{b / 1048576:.0f}")
    line("db file allocated on disk (MiB)", "db_alloc", lambda b: "–" if not b else f"{b / 1048576:.0f}")
    line("WAL dir (MiB)", "wal_bytes", lambda b: "–" if b is None else f"{b / 1048576:.0f}")
    line("start-up to serving after kill -9 (s)", "startup_kill9", lambda s: "–" if s is None else f"{s:.2f}")
    line("RSS after that start-up (MiB)", "rss_after_kill9_restart_kb", mib)
    line("start-up to serving after SIGTERM (s)", "startup_term", lambda s: "–" if s is None else f"{s:.2f}")
    line("RSS after that start-up (MiB)", "rss_after_term_restart_kb", mib)
    errs = [f"{s}: {r['errors']} errors in the load" for s, r in big.items() if r.get("errors")]
    if errs:
        print()
        print("**" + "; ".join(errs) + "**")
    print()
    print(f"before the runs: etcd {e.get('load', '–')}; chorus {c.get('load', '–')}")
    print()

# The targets of issue 7.
checks = []
for name, pair in rows.items():
    if not name.startswith(("put-", "range-", "txn-")):
        continue
    e, c = pair.get("etcd", {}), pair.get("chorus", {})
    if None in (e.get("rps"), c.get("rps"), e.get("p99"), c.get("p99")):
        checks.append((f"{name}: >= 2x req/s, p99 no worse", "no data"))
        continue
    r, l = c["rps"] / e["rps"], c["p99"] / e["p99"]
    ok = r >= 2 and l <= 1
    checks.append((f"{name}: >= 2x etcd's req/s with p99 no worse",
                   f"{'met' if ok else 'MISSED'}: {r:.2f}x req/s, p99 {l:.2f}x"))
p = rows.get("put-1x1-1m", {}).get("chorus", {})
if fs and p.get("p50") is not None:
    r = p["p50"] / fs["p50"]
    checks.append(("put 1/1 one member: p50 <= 1.5x fdatasync p50",
                   f"{'met' if r <= 1.5 else 'MISSED'}: {ms(p['p50'])} ms = {r:.2f}x of {ms(fs['p50'])} ms"))
if big.get("etcd") and big.get("chorus"):
    e, c = big["etcd"], big["chorus"]
    if e.get("rss_kb") and c.get("rss_kb"):
        r = c["rss_kb"] / e["rss_kb"]
        checks.append((f"RSS with {e['keys']:,} keys <= 0.5x etcd's",
                       f"{'met' if r <= 0.5 else 'MISSED'}: {r:.2f}x ({mib(c['rss_kb'])} vs {mib(e['rss_kb'])} MiB)"))
    for k, label in (("startup_kill9", "after kill -9"), ("startup_term", "after SIGTERM")):
        if e.get(k) is not None and c.get(k) is not None:
            r = c[k] / e[k]
            checks.append((f"start-up {label} no slower than etcd",
                           f"{'met' if r <= 1 else 'MISSED'}: {c[k]:.2f} s vs {e[k]:.2f} s ({r:.2f}x)"))
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

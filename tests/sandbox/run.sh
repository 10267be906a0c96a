#!/usr/bin/env bash
# VM process isolation (docs/security.md): boots the default guest and checks the process from
# outside: /proc/PID/status (Seccomp 2, NoNewPrivs 1, the uid after the drop, no capabilities),
# the hart threads' own filters, closed inherited fds, the cgroup and its limits; the test hook
# makes one VM die of SIGSYS while a second keeps running and answering; --no-sandbox; a
# libmicrohttpd + json-c server (the API's stack) keeps working inside the same filter.
# SANDBOX_ENGINE=jit runs every VM with --engine jit (its code caches made before the filter,
# taken over by the rebooted machine's harts).
# usage: tests/sandbox/run.sh [VESSEL]   Prints PASS/FAIL lines and "sandbox: N passed, N failed".
# SANDBOX_VM_ARGS: more vessel run options for every VM (run-all.sh: "--net user", the same
# checks with user-mode networking, whose filter allows more; "--vsock cid=3,path=@NAME@.vsock":
# with a vsock device, @NAME@ becoming a path of each VM's own in the test's directory).
set -u
VESSEL=$(realpath "${1:-./vessel}")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d)
MARKER=VESSEL-INIT-OK
BOOT_TIMEOUT=${BOOT_TIMEOUT:-120}
ENGINE=(--engine "${SANDBOX_ENGINE:-interp}")
pass=0 fail=0
PIDS=()
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }
check() { # name, condition (as a command), detail on failure
    if eval "$2"; then ok "$1"; else bad "$1" "$3"; fi
}
CG_NAMES=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    sleep 0.3
    for n in "${CG_NAMES[@]}"; do
        for d in $(cgdirs "$n"); do rmdir "$d" 2>/dev/null; done
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

# The directories of cgroup NAME that vessel made: <mount><our cgroup>/vessel/NAME per controller.
cgdirs() {
    local ctl mnt own
    for ctl in memory cpu; do
        mnt=$(awk -v c="$ctl" '$3 == "cgroup" && ("," $4 ",") ~ ("," c ",") {print $2; exit}' /proc/self/mounts)
        own=$(awk -F: -v c="$ctl" '("," $2 ",") ~ ("," c ",") {print $3; exit}' /proc/self/cgroup)
        [ "$own" = / ] && own=
        [ -n "$mnt" ] && echo "$mnt$own/vessel/$1"
    done
}

# start_vm NAME [env...] -- [vessel args...]: the console on a fifo (fd kept open here) and a
# log; sets VM_PID_<NAME>, the fifo's fd in FD_<NAME>. An extra fd 9 is inherited on purpose.
start_vm() {
    local name=$1
    shift
    local envs=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    mkfifo "$TMP/$name.in"
    exec 9<"$ROOT/Makefile"
    local vm_args=${SANDBOX_VM_ARGS:-}
    vm_args=${vm_args//@NAME@/$TMP/$name}
    # shellcheck disable=SC2086 # SANDBOX_VM_ARGS is a list of options
    env "${envs[@]}" "$VESSEL" run "${ENGINE[@]}" "$@" $vm_args <"$TMP/$name.in" >"$TMP/$name.log" 2>&1 &
    local pid=$!
    exec 9<&-
    local fd
    exec {fd}>"$TMP/$name.in"
    PIDS+=("$pid")
    eval "VM_PID_$name=$pid FD_$name=$fd"
}

wait_for() { # file, text, timeout seconds
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -aq -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

wait_count() { # file, text, count, timeout seconds
    local i
    for ((i = 0; i < $4 * 10; i++)); do
        [ "$(grep -ac -- "$2" "$1" 2>/dev/null)" -ge "$3" ] && return 0
        sleep 0.1
    done
    return 1
}

status_field() { awk -v f="$2:" '$1 == f {print $2; exit}' "/proc/$1/status" 2>/dev/null; }

# ---- 1. a sandboxed VM in its own cgroup (2 vCPUs) ----
CG=sbtest-$$
CG_NAMES+=("$CG")
start_vm A -- --cpus 2 --overcommit --cgroup "$CG"
if ! wait_for "$TMP/A.log" "$MARKER" "$BOOT_TIMEOUT"; then
    bad boot "no $MARKER within $BOOT_TIMEOUT s: $(tail -c 300 "$TMP/A.log")"
    echo "sandbox: $pass passed, $((fail + 1)) failed"
    exit 1
fi
ok boot
P=$VM_PID_A
check seccomp_mode '[ "$(status_field $P Seccomp)" = 2 ]' "Seccomp: $(status_field $P Seccomp)"
check no_new_privs '[ "$(status_field $P NoNewPrivs)" = 1 ]' "NoNewPrivs: $(status_field $P NoNewPrivs)"
# Every hart thread stacks its own filter on the process one (Seccomp_filters 2); the others 1.
nhart=0
for t in /proc/$P/task/*; do
    [ "$(status_field "$P/task/${t##*/}" Seccomp_filters)" = 2 ] && nhart=$((nhart + 1))
done
check hart_filters '[ $nhart -eq 2 ]' "$nhart threads with 2 filters, expected the 2 harts"
# Threads started before the sandbox (console reader, block I/O, RTC) got it too (TSYNC).
loose=
for t in /proc/$P/task/*; do
    tid=${t##*/}
    [ "$(status_field "$P/task/$tid" Seccomp)" = 2 ] && [ "$(status_field "$P/task/$tid" NoNewPrivs)" = 1 ] ||
        loose="$loose $tid($(cat "$t/comm"))"
done
check all_threads_filtered '[ -z "$loose" ] && [ $(ls /proc/$P/task | wc -l) -ge 4 ]' "threads without the filter:$loose"
check inherited_fd_closed '[ ! -e /proc/$P/fd/9 ]' "fd 9 (inherited) still open: $(readlink /proc/$P/fd/9)"
check images_kept_open 'ls -l /proc/$P/fd/ | grep -q /Image' "the kernel image is not held open (reboot cannot reload it)"
if [ "$(id -u)" = 0 ]; then
    want=$(id -u vessel 2>/dev/null || id -u nobody)
    uids=$(awk '$1 == "Uid:" {print $2, $3, $4, $5}' /proc/$P/status)
    check uid_dropped '[ "$uids" = "$want $want $want $want" ]' "Uid: $uids, expected $want"
    check groups_dropped '[ -z "$(awk '\''$1 == "Groups:" {print $2}'\'' /proc/$P/status)" ]' \
        "$(grep Groups: /proc/$P/status)"
    check no_capabilities '[ "$(status_field $P CapEff)" = 0000000000000000 ] && [ "$(status_field $P CapPrm)" = 0000000000000000 ]' \
        "$(grep -E 'CapEff|CapPrm' /proc/$P/status | tr '\n' ' ')"
    # cgroup: membership and limits (guest 512 MiB + 64 + 2 * 16 + 1 MiB, and under the JIT
    # 2 * 64 MiB of code cache; 2 vCPUs of 100 ms)
    jitmb=0
    if [ "${SANDBOX_ENGINE:-interp}" = jit ]; then jitmb=128; fi
    read -r memdir cpudir <<<"$(cgdirs "$CG" | tr '\n' ' ')"
    memcg=$(awk -F: '("," $2 ",") ~ /,memory,/ {print $3}' /proc/$P/cgroup)
    cpucg=$(awk -F: '("," $2 ",") ~ /,cpu,/ {print $3}' /proc/$P/cgroup)
    check cgroup_memory_member '[ "${memcg##*/vessel/}" = "$CG" ] && grep -qx "$P" "$memdir/cgroup.procs"' "memory cgroup $memcg"
    check cgroup_cpu_member '[ "${cpucg##*/vessel/}" = "$CG" ] && grep -qx "$P" "$cpudir/cgroup.procs"' "cpu cgroup $cpucg"
    lim=$(cat "$memdir/memory.limit_in_bytes" 2>/dev/null)
    check cgroup_memory_limit '[ "$lim" = $(((512 + 64 + 32 + jitmb + 1) << 20)) ]' "memory.limit_in_bytes $lim"
    q=$(cat "$cpudir/cpu.cfs_quota_us" 2>/dev/null) per=$(cat "$cpudir/cpu.cfs_period_us" 2>/dev/null)
    check cgroup_cpu_quota '[ "$q" = 200000 ] && [ "$per" = 100000 ]' "cfs_quota_us $q, cfs_period_us $per"
else
    echo "(not root: uid drop and cgroup checks skipped)"
fi

# ---- 2. the test hook: a hart's forbidden call kills that VM, not the other ----
start_vm B VESSEL_TEST_FORBIDDEN_SYSCALL=1 -- --no-reboot
(sleep 60 && kill "$VM_PID_B" 2>/dev/null) &
WD=$!
wait "$VM_PID_B"
rc=$?
kill "$WD" 2>/dev/null
check hook_sigsys '[ $rc = $((128 + 31)) ]' "exit status $rc, expected 159 (SIGSYS): $(tail -c 200 "$TMP/B.log")"
check hook_after_start 'grep -aq "OpenSBI\|Linux version" "$TMP/B.log"' "the guest had not started"
echo "echo still-alive-\$((6 * 7))" >&"$FD_A"
check other_vm_answers 'wait_for "$TMP/A.log" still-alive-42 30' "VM A did not answer after B died"
check other_vm_running 'kill -0 $P 2>/dev/null' "VM A exited"

# ---- 3. a guest reboot inside the sandbox (images re-read through the open files) ----
echo "reboot -f" >&"$FD_A"
check reboot_in_sandbox 'wait_count "$TMP/A.log" "$MARKER" 2 "$BOOT_TIMEOUT"' \
    "no second $MARKER after reboot: $(tail -c 300 "$TMP/A.log")"
echo "poweroff -f" >&"$FD_A"
wait "$P"
rc=$?
check poweroff_clean '[ $rc = 0 ]' "exit status $rc: $(tail -c 300 "$TMP/A.log")"
if [ "$(id -u)" = 0 ]; then
    ok=1
    for d in $(cgdirs "$CG"); do rmdir "$d" 2>/dev/null || ok=0; done
    check cgroup_removable '[ $ok = 1 ]' "the group could not be removed after the VM exited"
fi

# ---- 4. --no-sandbox ----
start_vm C -- --no-sandbox
sleep 1
check no_sandbox '[ "$(status_field $VM_PID_C Seccomp)" = 0 ] && [ "$(status_field $VM_PID_C NoNewPrivs)" = 0 ]' \
    "Seccomp $(status_field $VM_PID_C Seccomp), NoNewPrivs $(status_field $VM_PID_C NoNewPrivs)"
kill "$VM_PID_C" 2>/dev/null
wait "$VM_PID_C" 2>/dev/null

# ---- 5. not root: the sandbox without the uid drop; the cgroup reason said once ----
CACHE=${VESSEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vessel}/guest/default
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && [ -f "$CACHE/Image" ]; then
    U=$TMP/unpriv
    mkdir -p "$U"
    cp "$VESSEL" "$CACHE/Image" "$CACHE/fw_dynamic.bin" "$CACHE/initramfs.cpio.gz" "$U/"
    chmod 755 "$TMP" "$U"
    chmod 644 "$U"/*
    chmod 755 "$U/${VESSEL##*/}"
    mkfifo "$U/in"
    chmod 666 "$U/in"
    setpriv --reuid 65534 --regid 65534 --clear-groups "$U/${VESSEL##*/}" run \
        --firmware "$U/fw_dynamic.bin" --kernel "$U/Image" --initrd "$U/initramfs.cpio.gz" \
        "${ENGINE[@]}" --cgroup "sbtest-np-$$" <"$U/in" >"$TMP/D.log" 2>&1 &
    DP=$!
    PIDS+=("$DP")
    exec {DFD}>"$U/in"
    wait_for "$TMP/D.log" "$MARKER" "$BOOT_TIMEOUT"
    check unpriv_sandbox '[ "$(status_field $DP Seccomp)" = 2 ] && [ "$(status_field $DP NoNewPrivs)" = 1 ] && [ "$(awk '\''$1 == "Uid:" {print $2}'\'' /proc/$DP/status)" = 65534 ]' \
        "Seccomp $(status_field $DP Seccomp), NoNewPrivs $(status_field $DP NoNewPrivs)"
    check unpriv_cgroup_reason '[ "$(grep -c "cgroup limits not enforced" "$TMP/D.log")" = 1 ]' \
        "expected one line saying why: $(grep -a cgroup "$TMP/D.log")"
    echo "poweroff -f" >&"$DFD"
    wait "$DP"
    rc=$?
    check unpriv_poweroff '[ $rc = 0 ]' "exit status $rc"
    exec {DFD}>&-
fi

# ---- 6. the REST API's libraries (libmicrohttpd epoll thread + json-c) inside the filter ----
PROBE=$TMP/mhd_probe
case $VESSEL in *-asan) B=asan EXTRA="-fsanitize=address,undefined" ;; *) B=rel EXTRA= ;; esac
if make -s -C "$ROOT" "build/$B/src/vm/sandbox.o" "build/$B/src/util/log.o" >/dev/null &&
    gcc -std=gnu11 -O1 -g $EXTRA -D_GNU_SOURCE -I"$ROOT/src" -pthread -o "$PROBE" \
        "$ROOT/tests/sandbox/mhd_probe.c" "$ROOT/build/$B/src/vm/sandbox.o" \
        "$ROOT/build/$B/src/util/log.o" -lmicrohttpd -ljson-c -lseccomp; then
    SOCK=$TMP/api.sock
    mkfifo "$TMP/probe.in"
    "$PROBE" "$SOCK" <"$TMP/probe.in" >"$TMP/probe.log" 2>&1 &
    PP=$!
    PIDS+=("$PP")
    exec {PFD}>"$TMP/probe.in"
    wait_for "$TMP/probe.log" READY 10
    check api_seccomp '[ "$(status_field $PP Seccomp)" = 2 ]' "probe not sandboxed: $(cat "$TMP/probe.log")"
    out=$(curl -s --max-time 5 --unix-socket "$SOCK" http://localhost/vm/config)
    check api_get '[ "$out" = "{\"id\":\"probe\",\"url\":\"\\/vm\\/config\"}" ]' "GET: '$out'"
    out=$(curl -s --max-time 5 --unix-socket "$SOCK" -X PUT -d '{"vcpu_count":2}' http://localhost/machine-config)
    check api_put_json '[ "$out" = "{\"echo\":{\"vcpu_count\":2}}" ]' "PUT: '$out'"
    code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -X PUT -d '{bad' http://localhost/x)
    check api_bad_json '[ "$code" = 400 ]' "malformed JSON: HTTP $code"
    for i in $(seq 50); do curl -s --max-time 5 --unix-socket "$SOCK" http://localhost/ >/dev/null; done
    exec {PFD}>&-
    wait "$PP"
    rc=$?
    check api_clean_stop '[ $rc = 0 ] && grep -q STOPPED "$TMP/probe.log"' "exit status $rc: $(cat "$TMP/probe.log")"
else
    bad api_probe_build "cannot build tests/sandbox/mhd_probe.c (libmicrohttpd-dev, libjson-c-dev)"
fi

echo "sandbox: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

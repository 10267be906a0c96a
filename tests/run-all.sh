#!/bin/bash
# Everything `make test` runs: host set-up, guest artifacts, both builds, unit
# tests (plain + ASan/UBSan), ISA tests, guest tests (plain + ASan/UBSan).
# Set-up or build failures stop at once; test failures are counted and the last
# line is exactly "N passed, N failed" (summed over all suites).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}

logdir=build/test-logs
mkdir -p "$logdir"
# Every VM the tests start is accounted in a store of their own, never the host's.
VESSEL_STORE=$(mktemp -d /tmp/vessel-test-store.XXXXXX)
export VESSEL_STORE
trap 'rm -rf "$VESSEL_STORE"' EXIT

echo "== host packages"
./scripts/setup-host.sh
echo "== guest artifacts"
./guest/build.sh
./tests/guest/build.sh
echo "== build"
make -j2 vessel vessel-asan build/unit-tests build/unit-tests-asan
# The Debian root disk: built once into the cache (debootstrap's second stage runs inside
# ./vessel; ~12 min on a fresh machine), a no-op while guest/build-rootfs.sh's inputs are unchanged.
echo "== Debian root disk"
./guest/build-rootfs.sh

total_pass=0
total_fail=0
summary=()

# run_suite NAME CMD...: run, show and log the output, take the suite's own
# "N passed, N failed" line. A non-zero exit with no failure counted, or no
# count line at all, counts as one failure.
run_suite() {
    local name=$1
    shift
    local log="$logdir/$name.log" rc=0 line p=0 f=0
    echo "== $name: $*"
    set +e
    "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    line=$(grep -aE '([0-9]+) passed, ([0-9]+) failed' "$log" | tail -n1 || true)
    if [[ $line =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
        p=${BASH_REMATCH[1]}
        f=${BASH_REMATCH[2]}
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "$name: exit status $rc with no failure counted: counting 1 failure"
        f=$((f + 1))
    fi
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    summary+=("$(printf '%-14s %5d passed, %d failed' "$name" "$p" "$f")")
}

run_suite unit ./build/unit-tests
run_suite unit-asan ./build/unit-tests-asan
# The CPU harness's tests again through the JIT (--engine jit), plain and sanitized.
VESSEL_TEST_ENGINE=jit run_suite unit-jit ./build/unit-tests
VESSEL_TEST_ENGINE=jit run_suite unit-jit-asan ./build/unit-tests-asan
# The engine is named everywhere the interpreter is meant: the JIT is vessel's default.
if [ -x tests/isa/run.sh ]; then
    ISA_ENGINE=interp run_suite isa tests/isa/run.sh ./vessel
    ISA_ENGINE=interp run_suite isa-asan tests/isa/run.sh ./vessel-asan
    ISA_ENGINE=jit run_suite isa-jit tests/isa/run.sh ./vessel
    ISA_ENGINE=jit run_suite isa-jit-asan tests/isa/run.sh ./vessel-asan
else
    summary+=("$(printf '%-14s skipped (no tests/isa/run.sh)' isa)")
fi
# Memory-model litmus programs, bare metal on 2 and 4 harts.
LITMUS_ENGINE=interp run_suite litmus tests/litmus/run.sh ./vessel
LITMUS_ENGINE=interp run_suite litmus-asan tests/litmus/run.sh ./vessel-asan
LITMUS_ENGINE=jit run_suite litmus-jit tests/litmus/run.sh ./vessel
# Random-instruction differential test against QEMU (tests/diff), the CI budget.
run_suite diff python3 tests/diff/run.py \
    --emu './vessel run --engine interp --firmware {bin} --memory 256M' --ref qemu \
    --seeds 4 --seqs 500 --len 100
# The JIT against QEMU (the interpreter is checked against QEMU just above).
run_suite diff-jit python3 tests/diff/run.py \
    --emu './vessel run --engine jit --firmware {bin} --memory 256M' --ref qemu \
    --seeds 4 --seqs 500 --len 100 --out build/diff-jit
# The JIT against QEMU with the sequences in user mode under Sv39: the JIT's fast memory (at
# once), and the TLB path its accesses take while an address space warms up (the default).
VESSEL_FASTMEM_WARMUP=0 run_suite diff-user-jit python3 tests/diff/run.py --user \
    --emu './vessel run --engine jit --firmware {bin} --memory 256M' --ref qemu \
    --seeds 4 --seqs 500 --len 100 --out build/diff-user-jit
run_suite diff-user-jit-warmup python3 tests/diff/run.py --user \
    --emu './vessel run --engine jit --firmware {bin} --memory 256M' --ref qemu \
    --first-seed 5 --seeds 4 --seqs 500 --len 100 --out build/diff-user-jit-warmup
# The guest suite (boots, SMP memory model and code patching, reboot) under the interpreter,
# under the sanitizers (the default engine, the JIT) and under the JIT.
run_suite guest python3 tests/guest/run.py --no-build --engine interp ./vessel
run_suite guest-asan python3 tests/guest/run.py --no-build ./vessel-asan
run_suite guest-jit python3 tests/guest/run.py --no-build --engine jit ./vessel
# qcow2 interop with qemu-img on the host (no guest; seconds), plain and sanitized.
run_suite qcow2 tests/disk/run_qcow2.sh ./vessel
run_suite qcow2-asan tests/disk/run_qcow2.sh ./vessel-asan
run_suite blk python3 tests/guest/run_blk.py --no-build ./vessel
# Under the sanitizers: every check, with less data (--small; the full sizes take ~15 min).
run_suite blk-asan python3 tests/guest/run_blk.py --no-build --small ./vessel-asan
# The manager and the REST API: store, detached VM processes, admission, Firecracker's API.
run_suite mgr python3 tests/mgr/run.py ./vessel
run_suite mgr-asan python3 tests/mgr/run.py --no-slow ./vessel-asan
run_suite hostile python3 tests/hostile/run.py ./vessel ./vessel-asan
# The Debian root disk: systemd to a login prompt, files, apt, fio, poweroff, persistence.
run_suite disk python3 tests/guest/run_disk.py ./vessel
run_suite gdb tests/gdb/run.sh ./vessel
# VM process isolation: seccomp, no_new_privs, fds, uid drop, cgroup limits, the kill hook.
run_suite sandbox tests/sandbox/run.sh ./vessel
run_suite sandbox-asan tests/sandbox/run.sh ./vessel-asan
# The same with user-mode networking on (its filter allows IPv4/IPv6 sockets; harts still not).
SANDBOX_VM_ARGS="--net user" run_suite sandbox-net tests/sandbox/run.sh ./vessel
# ... and with a vsock device (its filter allows connect; socket stays AF_UNIX only).
SANDBOX_VM_ARGS="--vsock cid=3,path=@NAME@.vsock" run_suite sandbox-vsock tests/sandbox/run.sh ./vessel
# virtio-net with user-mode networking (libslirp): DHCP, HTTP through 10.0.2.2, hostfwd,
# restrict=on, two VMs isolated, a tap (as root), bad --net specs; under the sanitizers the
# main groups.
run_suite net python3 tests/net/run.py ./vessel
run_suite net-asan python3 tests/net/run.py -k user -k tap -k bad_ -k vsock ./vessel-asan
# The same under the JIT: code caches made before the filter, reused by the rebooted machine (~1 min).
SANDBOX_ENGINE=jit run_suite sandbox-jit tests/sandbox/run.sh ./vessel
# C sources as clang-format writes them.
run_suite format bash -c 'if make -s format-check; then echo "format: 1 passed, 0 failed"; else echo "format: 0 passed, 1 failed"; fi'
# Every libFuzzer harness, a bounded time each (FUZZ_SECONDS, default 10).
run_suite fuzz tests/fuzz/build.sh "${FUZZ_SECONDS:-10}"

echo "== summary"
printf '%s\n' "${summary[@]}"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]

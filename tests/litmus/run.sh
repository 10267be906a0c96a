#!/bin/bash
# Litmus tests for the memory model, bare metal on 2 and 4 harts (tests/litmus/litmus.h).
#   tests/litmus/run.sh EMU        EMU = path to vessel, or `qemu` (qemu-system-riscv64 -M virt)
# Prints one PASS/FAIL line per test and harts count, then "litmus: N passed, N failed".
# LITMUS_TIMEOUT (default 300 s) bounds each program. LITMUS_ENGINE=jit|interp passes --engine.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${LITMUS_OUT:-$root/build/litmus}
emu=${1:?usage: run.sh VESSEL|qemu}
if ! make -s --no-print-directory -C "$here" OUT="$out" >&2; then
    echo "litmus: 0 passed, 1 failed"
    exit 1
fi
pass=0 fail=0
for n in 2 4; do
    log=$out/litmus$n.$(basename "$emu")${LITMUS_ENGINE:+-$LITMUS_ENGINE}.log
    if [ "$emu" = qemu ]; then
        cmd=(qemu-system-riscv64 -M virt -bios "$out/litmus$n.bin" -nographic -smp "$n" -m 256M)
    else
        cmd=("$emu" run --firmware "$out/litmus$n.bin" --cpus "$n" --memory 256M)
        cmd+=(--overcommit) # admission is not under test (other VMs may run on this host)
        [ -n "${LITMUS_ENGINE:-}" ] && cmd+=(--engine "$LITMUS_ENGINE")
    fi
    t0=$(date +%s%N)
    timeout "${LITMUS_TIMEOUT:-300}" "${cmd[@]}" </dev/null >"$log" 2>&1
    rc=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    dt=$((ms / 1000)).$(printf '%03d' $((ms % 1000)))
    while read -r line; do
        echo "$line"
        case $line in PASS*) pass=$((pass + 1)) ;; FAIL*) fail=$((fail + 1)) ;; esac
    done < <(grep -a '^PASS \|^FAIL ' "$log")
    if ! grep -q "^PASS: litmus$n" "$log" || [ $rc -ne 0 ]; then
        echo "FAIL litmus$n: exit status $rc after ${dt}s (log: $log)"
        fail=$((fail + 1))
    else
        echo "litmus$n: ${dt}s"
    fi
done
echo "litmus: $pass passed, $fail failed"
[ $fail -eq 0 ]

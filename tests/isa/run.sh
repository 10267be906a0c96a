#!/bin/bash
# Run the ISA tests on an emulator.
#   tests/isa/run.sh EMU [name...]
# EMU is `qemu` (qemu-system-riscv64 -M virt, the reference) or the path to a vessel binary.
# Each test is built into build/isa/ (make -C tests/isa), run with a timeout (ISA_TIMEOUT,
# default 20 s) and passes iff it printed "PASS: <name>" and the emulator exited 0.
# Output of each run is kept in build/isa/<name>.<emu>.log.
# ISA_ENGINE=jit|interp passes --engine to vessel (logs then go to <name>.vessel-<engine>.log).
# ISA_OUT=dir ISA_DEFS=-DNO_QEMU_QUIRKS builds a strict variant (QEMU 7.2 deviations from the
# spec are then failures) into another directory.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${ISA_OUT:-$root/build/isa}
timeout_s=${ISA_TIMEOUT:-20}

if [ $# -lt 1 ]; then
    echo "usage: $0 qemu|/path/to/vessel [test...]" >&2
    exit 2
fi
emu=$1
shift
if [ "$emu" != qemu ] && [ ! -x "$emu" ]; then
    echo "run.sh: emulator '$emu' is neither 'qemu' nor an executable file" >&2
    exit 2
fi

if ! make -s --no-print-directory -C "$here" OUT="$out" DEFS="${ISA_DEFS:-}" >&2; then
    echo "run.sh: building the ISA tests failed" >&2
    echo "isa: 0 passed, 1 failed"
    exit 1
fi

if [ $# -gt 0 ]; then
    names=("$@")
else
    names=()
    for f in "$here"/*.S; do
        n=$(basename "$f" .S)
        [ "$n" = runtime ] || names+=("$n")
    done
fi

if [ "$emu" = qemu ]; then tag=qemu; else tag=vessel${ISA_ENGINE:+-$ISA_ENGINE}; fi
passed=0
failed=0
for name in "${names[@]}"; do
    name=${name%.S}
    src=$here/$name.S
    bin=$out/$name.bin
    if [ ! -f "$src" ] || [ ! -f "$bin" ]; then
        echo "FAIL $name (no such test)"
        failed=$((failed + 1))
        continue
    fi
    # Harts to start: a `/* smp: N */` comment in the source, else 1.
    smp=$(grep -m1 -o 'smp: *[0-9]\+' "$src" | grep -o '[0-9]\+$')
    smp=${smp:-1}
    log=$out/$name.$tag.log
    if [ "$emu" = qemu ]; then
        cmd=(qemu-system-riscv64 -M virt -bios "$bin" -nographic -smp "$smp" -m 256M)
    else
        cmd=("$emu" run --firmware "$bin" --cpus "$smp" --memory 256M --mmu sv57)
        # admission is not under test: more vCPUs than host CPUs, other VMs on this host
        cmd+=(--overcommit)
        if [ -n "${ISA_ENGINE:-}" ]; then cmd+=(--engine "$ISA_ENGINE"); fi
    fi
    start=$(date +%s%N)
    timeout -k 5 "$timeout_s" "${cmd[@]}" </dev/null >"$log.out" 2>"$log.err"
    rc=$?
    ms=$((($(date +%s%N) - start) / 1000000))
    secs=$((ms / 1000)).$((ms % 1000 / 100))
    { echo "# ${cmd[*]}"; echo "# exit status $rc"; tr -d '\r' <"$log.out"; echo "# stderr:";
      cat "$log.err"; } >"$log"
    pass_line=0
    if tr -d '\r' <"$log.out" | grep -qx "PASS: $name"; then pass_line=1; fi
    rm -f "$log.out" "$log.err"
    if [ $rc -eq 0 ] && [ $pass_line -eq 1 ]; then
        echo "PASS $name (${secs}s)"
        passed=$((passed + 1))
    else
        if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
            why="timeout after ${timeout_s}s"
        elif [ $pass_line -eq 1 ]; then
            why="printed PASS but exit status $rc"
        else
            why="exit status $rc"
        fi
        msg=$(grep -m1 '^FAIL' "$log" | head -c 300)
        echo "FAIL $name ($why)${msg:+: $msg}"
        failed=$((failed + 1))
    fi
done
echo "isa: $passed passed, $failed failed"
[ $failed -eq 0 ]

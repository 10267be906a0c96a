#!/usr/bin/env bash
# GDB stub tests: gdb-multiarch drives `vessel run --gdb`. Usage: tests/gdb/run.sh VESSEL
# Prints PASS/FAIL per test and "gdb: N passed, N failed"; exits non-zero on failure.
set -u
VESSEL=${1:-./vessel}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ISA_BIN=$ROOT/build/isa/rv64i.bin
CACHE=${VESSEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vessel}
PORT=$((20000 + $$ % 20000))
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"; [ -n "${VPID:-}" ] && kill $VPID 2>/dev/null' EXIT
pass=0 fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }

gdb_batch() { # $1 = command file
    timeout 60 gdb-multiarch -q -batch -nx -x "$1" 2>&1 | grep -v '^warning:\|determining executable\|"file" command'
}

# 1. bare-metal program started paused: breakpoint, step, registers, memory write, continue.
if [ ! -f "$ISA_BIN" ]; then make -s -C "$ROOT/tests/isa" >/dev/null 2>&1; fi
if [ -f "$ISA_BIN" ]; then
    "$VESSEL" run --firmware "$ISA_BIN" --gdb $PORT --paused </dev/null >"$TMP/vm1.log" 2>&1 &
    VPID=$!
    sleep 0.5
    cat >"$TMP/c1" <<G
set pagination off
set confirm off
set architecture riscv:rv64
target remote :$PORT
printf "PC0=%lx\n", \$pc
break *0x80000012
continue
printf "PC1=%lx\n", \$pc
stepi
printf "PC2=%lx\n", \$pc
printf "MHARTID_INSN=%x\n", *(unsigned int *)0x80000000
set \$t6 = 0x1234
printf "T6=%lx\n", \$t6
delete
continue
G
    out=$(gdb_batch "$TMP/c1")
    wait $VPID; rc=$?; VPID=
    echo "$out" | grep -q "PC0=80000000" && ok paused_at_reset || bad paused_at_reset "$out"
    echo "$out" | grep -q "PC1=80000012" && ok breakpoint_hit || bad breakpoint_hit "$out"
    echo "$out" | grep -q "PC2=80000016" && ok single_step || bad single_step "$out"
    echo "$out" | grep -q "MHARTID_INSN=f14022f3" && ok memory_read || bad memory_read "$out"
    echo "$out" | grep -q "T6=1234" && ok register_write || bad register_write "$out"
    [ $rc -eq 0 ] && grep -q "PASS: rv64i" "$TMP/vm1.log" && ok continue_to_end ||
        bad continue_to_end "exit $rc: $(tail -2 "$TMP/vm1.log")"
else
    bad isa_binary "cannot build $ISA_BIN"
fi

# 2. attach to a running Linux guest: Ctrl-C stops it in the kernel, detach lets it go on.
K=$CACHE/guest/default
if [ -f "$K/Image" ]; then
    mkfifo "$TMP/in"
    "$VESSEL" run --gdb $PORT <"$TMP/in" >"$TMP/vm2.log" 2>&1 &
    VPID=$!
    exec 7>"$TMP/in"
    for _ in $(seq 1 120); do grep -q "VESSEL-INIT-OK" "$TMP/vm2.log" && break; sleep 0.5; done
    cat >"$TMP/c2" <<G
set pagination off
set confirm off
set architecture riscv:rv64
target remote :$PORT
printf "KPC=%lx\n", \$pc
info threads
detach
G
    out=$(gdb_batch "$TMP/c2")
    echo "$out" | grep -qE "KPC=ffffffff|KPC=8" && ok attach_running_linux || bad attach_running_linux "$out"
    sleep 1
    echo "poweroff" >&7
    for _ in $(seq 1 40); do kill -0 $VPID 2>/dev/null || break; sleep 0.25; done
    if kill -0 $VPID 2>/dev/null; then
        bad detach_then_poweroff "guest did not power off after detach"
        kill $VPID
    else
        wait $VPID && ok detach_then_poweroff || bad detach_then_poweroff "exit status $?"
    fi
    VPID=
    exec 7>&-
else
    bad linux_guest "default guest not built ($K)"
fi

# 3. hardware watchpoints on a bare-metal program (tests/isa/sdtrig, which also arms triggers
# of its own: the debugger's stay apart): rwatch and awatch stop with the address in range,
# a fifth hbreak is refused (E28) and the program still passes.
SDTRIG_BIN=$ROOT/build/isa/sdtrig.bin
if [ ! -f "$SDTRIG_BIN" ]; then make -s -C "$ROOT/tests/isa" >/dev/null 2>&1; fi
if [ -f "$SDTRIG_BIN" ]; then
    "$VESSEL" run --firmware "$SDTRIG_BIN" --gdb $PORT --paused </dev/null >"$TMP/vm4.log" 2>&1 &
    VPID=$!
    sleep 0.5
    cat >"$TMP/c4" <<G
set pagination off
set confirm off
set architecture riscv:rv64
target remote :$PORT
rwatch *(long *)0x80401040
continue
printf "RW_PC=%lx\n", \$pc
delete
awatch *(long *)0x80401048
continue
printf "AW_PC=%lx\n", \$pc
delete
hbreak *0x80000100
hbreak *0x80000104
hbreak *0x80000108
hbreak *0x8000010c
hbreak *0x80000110
continue
delete
continue
G
    out=$(gdb_batch "$TMP/c4")
    wait $VPID; rc=$?; VPID=
    echo "$out" | grep -q "Hardware read watchpoint 1: \*(long \*)0x80401040" &&
        echo "$out" | grep -q "^RW_PC=80" && ok rwatch_bare_metal || bad rwatch_bare_metal "$out"
    echo "$out" | grep -q "Hardware access (read/write) watchpoint 2: \*(long \*)0x80401048" &&
        echo "$out" | grep -q "^AW_PC=80" && ok awatch_bare_metal || bad awatch_bare_metal "$out"
    echo "$out" | sed -n '/^AW_PC=/,$p' | grep -qi "Could not insert hardware breakpoint" &&
        ok hwbreak_limit ||
        bad hwbreak_limit "$out"
    [ $rc -eq 0 ] && grep -q "PASS: sdtrig" "$TMP/vm4.log" && ok watch_then_continue ||
        bad watch_then_continue "exit $rc: $(tail -2 "$TMP/vm4.log")"
else
    bad isa_binary "cannot build $SDTRIG_BIN"
fi

# 4. a booted Linux guest: hbreak on the uname syscall's handler (address from the guest's
# /proc/kallsyms) stops there when `uname` runs; watch on jiffies stops with the old and the
# new value; then the guest goes on and powers off.
if [ -f "$K/Image" ]; then
    rm -f "$TMP/in5"
    mkfifo "$TMP/in5"
    "$VESSEL" run --gdb $PORT <"$TMP/in5" >"$TMP/vm5.log" 2>&1 &
    VPID=$!
    exec 7>"$TMP/in5"
    for _ in $(seq 1 120); do grep -q "VESSEL-INIT-OK" "$TMP/vm5.log" && break; sleep 0.5; done
    echo "grep -E ' (__riscv_sys_newuname|jiffies)\$' /proc/kallsyms | sed 's/^/KSYM /'" >&7
    for _ in $(seq 1 60); do grep -q "^KSYM .* jiffies" "$TMP/vm5.log" && break; sleep 0.5; done
    fn=$(grep -a "^KSYM .* __riscv_sys_newuname" "$TMP/vm5.log" | awk '{print $2}' | tr -d '\r')
    jf=$(grep -a "^KSYM .* jiffies" "$TMP/vm5.log" | awk '{print $2}' | tr -d '\r')
    if [ -z "$fn" ] || [ -z "$jf" ]; then
        bad linux_kallsyms "no addresses: $(tail -3 "$TMP/vm5.log")"
    else
        cat >"$TMP/c5" <<G
set pagination off
set confirm off
set architecture riscv:rv64
target remote :$PORT
hbreak *0x$fn
continue
printf "HB_PC=%lx\n", \$pc
delete
watch *(unsigned long *)0x$jf
continue
printf "W_PC=%lx\n", \$pc
delete
detach
G
        gdb_batch "$TMP/c5" >"$TMP/out5" &
        GPID=$!
        sleep 3
        echo "uname -a" >&7
        wait $GPID
        out=$(cat "$TMP/out5")
        echo "$out" | grep -q "^HB_PC=$fn" && ok hbreak_linux_syscall || bad hbreak_linux_syscall "$out"
        if echo "$out" | grep -q "Hardware watchpoint 2: \*(unsigned long \*)0x$jf" &&
            echo "$out" | grep -q "^Old value = " && echo "$out" | grep -q "^New value = "; then
            old=$(echo "$out" | sed -n 's/^Old value = //p')
            new=$(echo "$out" | sed -n 's/^New value = //p')
            [ "$new" -gt "$old" ] && ok watch_linux_jiffies || bad watch_linux_jiffies "$old -> $new"
        else
            bad watch_linux_jiffies "$out"
        fi
    fi
    sleep 1
    echo "poweroff" >&7
    for _ in $(seq 1 40); do kill -0 $VPID 2>/dev/null || break; sleep 0.25; done
    if kill -0 $VPID 2>/dev/null; then
        bad linux_poweroff_after_watch "guest did not power off"
        kill $VPID
    else
        wait $VPID && ok linux_poweroff_after_watch || bad linux_poweroff_after_watch "exit status $?"
    fi
    VPID=
    exec 7>&-
fi

# 5. bad port
"$VESSEL" run --gdb 99999 </dev/null >/dev/null 2>"$TMP/err"; rc=$?
[ $rc -eq 2 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] && ok bad_port || bad bad_port "exit $rc: $(cat "$TMP/err")"

echo "gdb: $pass passed, $fail failed"
[ $fail -eq 0 ]

/* Physical addresses with nothing behind them (past the end of RAM, a hole in the device
 * area) raise access faults: load 5, store 7, fetch 1, with mtval = the address (priv spec
 * 3.6 physical memory attributes). An access that straddles the end of RAM faults too
 * (misaligned or access fault). The emulator must survive all of it. */
#include "common.h"

#define RAM_END 0x90000000              /* -m 256M */
#define HOLE 0x02100000                 /* between the CLINT and the PLIC on virt */

/* Test n: `insns` (address in a1) must raise `cause` in M with mtval = a1. */
#define BUS_FAULT(n, cause, ...) EXPECT_EXC_IN(PRV_M, n, cause, __VA_ARGS__); CHECK_MTVALR a1

    .text
    .globl test_main
test_main:
    li a1, RAM_END
    BUS_FAULT(1, CAUSE_LOAD_ACCESS, ld a0, 0(a1))
    BUS_FAULT(2, CAUSE_LOAD_ACCESS, lbu a0, 0(a1))
    BUS_FAULT(3, CAUSE_STORE_ACCESS, sd a0, 0(a1))
    BUS_FAULT(4, CAUSE_STORE_ACCESS, sb a0, 0(a1))
    TESTNUM 5                           /* AMO: store/AMO fault (QEMU 7.2: load; tolerated) */
    EXPECT_MTRAP 1f
2:  amoadd.w a0, a0, (a1)
    CLEAR_EXPECT
    FAIL "AMO to nowhere did not trap"
1:  ld a0, HD_MCAUSE(tp)
    CHECK_EQ2_QEMU a0, CAUSE_STORE_ACCESS, CAUSE_STORE_ACCESS, CAUSE_LOAD_ACCESS
    CHECK_MEPC 2b
    CHECK_MTVALR a1
    li a1, RAM_END + 0x10000000
    BUS_FAULT(6, CAUSE_LOAD_ACCESS, lw a0, 0(a1))
    li a1, HOLE
    BUS_FAULT(7, CAUSE_LOAD_ACCESS, lw a0, 0(a1))
    BUS_FAULT(8, CAUSE_STORE_ACCESS, sw a0, 0(a1))
    li a1, 0xfffffffffffff000           /* top of the physical address space */
    BUS_FAULT(9, CAUSE_LOAD_ACCESS, ld a0, 0(a1))

    /* ---- fetch: mepc = mtval = the target ---- */
    .irp target, RAM_END, HOLE
    TESTNUM 10 + (\target == HOLE)
    li a1, \target
    EXPECT_MTRAP 1f
    jalr a1
    CLEAR_EXPECT
    FAIL "jump to nowhere did not trap"
1:  CHECK_MCAUSE CAUSE_FETCH_ACCESS
    CHECK_MTVALR a1
    ld a0, HD_MEPC(tp)
    CHECK_EQR a0, a1
    .endr

    /* ---- the last word of RAM is fine; an access straddling its end is not ---- */
    TESTNUM 20
    li a1, RAM_END - 4
    lw a0, 0(a1)
    sw a0, 0(a1)
    TESTNUM 21
    li a1, RAM_END - 4
    EXPECT_MTRAP 1f
    ld a0, 0(a1)
    CLEAR_EXPECT
    FAIL "load across the end of RAM did not trap"
1:  ld a0, HD_MCAUSE(tp)
    CHECK_EQ2 a0, CAUSE_MISALIGNED_LOAD, CAUSE_LOAD_ACCESS

    /* ---- from S as well (access faults are not delegated here) ---- */
    li a1, RAM_END
    EXPECT_EXC_IN(PRV_S, 30, CAUSE_LOAD_ACCESS, ld a0, 0(a1))
    CHECK_MTVALR a1
    EXPECT_EXC_IN(PRV_U, 31, CAUSE_STORE_ACCESS, sw a0, 0(a1))
    CHECK_MTVALR a1
    j pass

/* WFI (priv spec 3.3.3): it resumes when an interrupt is pending and enabled in mie/sie,
 * whatever the global enables (MIE/SIE) and mideleg say; if the interrupt is then taken, xepc points
 * after the wfi. Every wait is bounded by mtime and loops around wfi, since wfi may also
 * return early. */
#include "common.h"

#define MENVCFG_STCE (1 << 63)

    .text
    .globl test_main
test_main:
    li s0, CLINT_MSIP(0)
    li s1, CLINT_MTIMECMP(0)

    /* ---- already pending (MSIP), MIE = 0: wfi returns, no trap ---- */
    TESTNUM 1
    CLEAR_TRAPS
    li t0, 1
    sw t0, 0(s0)
    li t0, MIP_MSIP
    csrw mie, t0
    wfi
    ld a0, HD_MCOUNT(tp)
    CHECK_EQ a0, 0
    sw zero, 0(s0)

    /* ---- a timer in the future wakes wfi, MIE = 0 ---- */
    TESTNUM 2
    CLEAR_TRAPS
    TIMER_IN 30000                      /* 3 ms */
    li t0, MIP_MTIP
    csrw mie, t0
    DEADLINE_START
1:  wfi
    csrr a0, mip
    andi a0, a0, MIP_MTIP
    bnez a0, 2f
    DEADLINE_CHECK "wfi never saw the timer"
    j 1b
2:  ld a0, HD_MCOUNT(tp)
    CHECK_EQ a0, 0
    ld a0, 0(s1)
    li t0, CLINT_MTIME
    ld a1, 0(t0)
    bgeu a1, a0, 3f
    FAIL "MTIP before the deadline"
3:  li t0, -1
    sd t0, 0(s1)

    /* ---- with MIE = 1 the interrupt is taken; mepc is after the wfi ---- */
    TESTNUM 3
    CLEAR_TRAPS
    TIMER_IN 20000
    li t0, MIP_MTIP
    csrw mie, t0
    csrsi mstatus, MSTATUS_MIE
    DEADLINE_START
    .option push
    .option norvc
1:  wfi
2:  ld a0, HD_MICOUNT(tp)
    .option pop
    bnez a0, 3f
    DEADLINE_CHECK "timer interrupt not taken after wfi"
    j 1b
3:  csrci mstatus, MSTATUS_MIE
    CHECK_MCAUSE CAUSE_INTR | IRQ_M_TIMER
    ld a0, HD_MEPC(tp)                  /* either after the wfi or (if the interrupt came
                                         * while not waiting) somewhere in the loop */
    la a1, 2b
    beq a0, a1, 4f
    la a1, 1b
    bltu a0, a1, 5f
    la a1, 3b
    bltu a0, a1, 4f
5:  FAIL "mepc outside the wait loop"
4:  li t0, -1
    sd t0, 0(s1)

    /* ---- in S with SIE = 0: an S timer (Sstc) wakes wfi ---- */
    TESTNUM 4
    li t0, MENVCFG_STCE
    csrw CSR_MENVCFG, t0
    li t0, 2
    csrw mcounteren, t0
    li t0, MIP_STIP
    csrw mideleg, t0
    csrw mie, t0
    li t0, -1
    csrw CSR_STIMECMP, t0
    CLEAR_TRAPS
    EXPECT_MTRAP 1f
    GOTO_MODE PRV_S, 2f
2:  csrci sstatus, MSTATUS_SIE
    rdtime a0
    li t0, 20000
    add a0, a0, t0
    csrw CSR_STIMECMP, a0
    DEADLINE_START
3:  wfi
    csrr a1, sip
    andi a1, a1, MIP_STIP
    bnez a1, 4f
    DEADLINE_CHECK "wfi in S never saw the S timer"
    j 3b
4:  ld a1, HD_SCOUNT(tp)
    CHECK_EQ a1, 0
    li t0, -1
    csrw CSR_STIMECMP, t0
    ecall
1:  CHECK_MCAUSE CAUSE_ECALL_S
    ld a0, HD_MICOUNT(tp)
    CHECK_EQ a0, 0

    /* ---- in S, an M interrupt (always enabled below M) ends wfi and is taken in M ---- */
    TESTNUM 5
    csrw mideleg, zero
    CLEAR_TRAPS
    li t0, MIP_MTIP
    csrw mie, t0
    TIMER_IN 20000
    EXPECT_MTRAP 1f
    GOTO_MODE PRV_S, 2f
2:  DEADLINE_START
3:  wfi
    ld a0, HD_MICOUNT(tp)
    bnez a0, 4f
    DEADLINE_CHECK "wfi in S: M timer interrupt not taken"
    j 3b
4:  ecall
1:  CHECK_MCAUSE CAUSE_ECALL_S
    ld a0, HD_MILOG(tp)
    CHECK_EQ a0, CAUSE_INTR | IRQ_M_TIMER
    li t0, -1
    sd t0, 0(s1)

    /* ---- in M, an interrupt delegated to S (so never taken in M) still ends wfi ---- */
    TESTNUM 6
    li t0, MIP_SSIP
    csrw mideleg, t0
    csrs mip, t0
    li t0, MIP_SSIP | MIP_MTIP          /* MTIP: a 1 s backstop, so a hang becomes a failure */
    csrw mie, t0
    TIMER_IN 10000000
    CLEAR_TRAPS
    csrsi mstatus, MSTATUS_MIE
    wfi
    csrci mstatus, MSTATUS_MIE
    ld a0, HD_MCOUNT(tp)
    CHECK_EQ a0, 0                      /* 1: only the backstop timer ended the wfi */
    li t0, -1
    sd t0, 0(s1)
    li t0, MIP_SSIP
    csrc mip, t0
    csrw mideleg, zero

    csrw mie, zero
    csrw CSR_MENVCFG, zero
    csrw mcounteren, zero
    j pass

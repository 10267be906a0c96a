/* Machine timer interrupt through the CLINT: MTIP = (mtime >= mtimecmp), level-triggered and
 * read-only in mip; taken only with mie.MTIE and mstatus.MIE in M; always taken in S/U;
 * 32-bit accesses to mtime/mtimecmp (priv spec 3.2.1, 3.1.9). */
#include "common.h"

    .text
    .globl test_main
test_main:
    li s0, CLINT_MTIME
    li s1, CLINT_MTIMECMP(0)

    /* ---- MTIP follows mtimecmp ---- */
    TESTNUM 1
    li t0, -1
    sd t0, 0(s1)
    WAIT_CSR_CLEAR mip, MIP_MTIP, "MTIP pending with mtimecmp = -1"
    sd zero, 0(s1)                      /* mtime >= 0 */
    WAIT_CSR_SET mip, MIP_MTIP, "MTIP not pending with mtimecmp = 0"
    li t0, -1
    sd t0, 0(s1)
    WAIT_CSR_CLEAR mip, MIP_MTIP, "MTIP stayed pending after mtimecmp moved to -1"
    TESTNUM 2                           /* software cannot set or clear MTIP */
    li t0, MIP_MTIP
    csrs mip, t0
    csrr a0, mip
    CHECK_MASKED a0, MIP_MTIP, 0
    sd zero, 0(s1)
    WAIT_CSR_SET mip, MIP_MTIP, "MTIP not pending with mtimecmp = 0"
    li t0, MIP_MTIP
    csrc mip, t0
    csrr a0, mip
    CHECK_MASKED a0, MIP_MTIP, MIP_MTIP
    li t0, -1
    sd t0, 0(s1)
    WAIT_CSR_CLEAR mip, MIP_MTIP, "MTIP stayed pending after mtimecmp moved to -1"

    /* ---- becomes pending when mtime reaches mtimecmp ---- */
    TESTNUM 3
    TIMER_IN 20000                      /* 2 ms */
    csrr a0, mip
    CHECK_MASKED a0, MIP_MTIP, 0
    WAIT_CSR_SET mip, MIP_MTIP, "MTIP never became pending"
    ld a0, 0(s1)
    ld a1, 0(s0)
    bgeu a1, a0, 1f
    FAIL "MTIP pending before mtime reached mtimecmp"
1:
    /* ---- pending + MTIE but MIE = 0: no interrupt in M ---- */
    TESTNUM 4
    CLEAR_TRAPS
    li t0, MIP_MTIP
    csrs mie, t0
    li t1, 1000
1:  addi t1, t1, -1
    bnez t1, 1b
    ld a0, HD_MICOUNT(tp)
    CHECK_EQ a0, 0
    /* ---- MIE = 1: taken at once ---- */
    TESTNUM 5
    csrsi mstatus, MSTATUS_MIE
2:  nop
    nop
    csrci mstatus, MSTATUS_MIE
3:  ld a0, HD_MICOUNT(tp)
    CHECK_EQ a0, 1
    CHECK_MCAUSE CAUSE_INTR | IRQ_M_TIMER
    ld a0, HD_MEPC(tp)                  /* interrupted after csrs, before csrci completed */
    la a1, 2b
    bgeu a0, a1, 4f
    FAIL "mepc of the interrupt before the instruction enabling it"
4:  la a1, 3b
    bltu a0, a1, 5f
    FAIL "mepc of the interrupt after MIE was cleared"
5:  ld a0, HD_MTVAL(tp)
    CHECK_EQ a0, 0
    ld a0, HD_MSTATUS(tp)               /* trap from M: MPP = M, MPIE = 1 */
    CHECK_MASKED a0, MSTATUS_MPP | MSTATUS_MPIE | MSTATUS_MIE, MSTATUS_MPP | MSTATUS_MPIE
    csrr a0, mip                        /* still pending (level) until mtimecmp moves */
    CHECK_MASKED a0, MIP_MTIP, MIP_MTIP
    li t0, -1
    sd t0, 0(s1)
    WAIT_CSR_CLEAR mip, MIP_MTIP, "MTIP stayed pending after mtimecmp moved to -1"

    /* ---- a future deadline, waited for with interrupts on ---- */
    TESTNUM 6
    CLEAR_TRAPS
    TIMER_IN 50000                      /* 5 ms */
    li t0, MIP_MTIP
    csrs mie, t0
    csrsi mstatus, MSTATUS_MIE
    WAIT_NONZERO HD_MICOUNT, "timer interrupt not delivered"
    csrci mstatus, MSTATUS_MIE
    CHECK_MCAUSE CAUSE_INTR | IRQ_M_TIMER
    ld a0, HD_MICOUNT(tp)
    CHECK_EQ a0, 1
    li t0, -1
    sd t0, 0(s1)

    /* ---- in S and U an M interrupt is taken regardless of MIE ---- */
    .irp mode, PRV_S, PRV_U
    TESTNUM 10 + \mode
    CLEAR_TRAPS
    csrci mstatus, MSTATUS_MIE
    sd zero, 0(s1)
    WAIT_CSR_SET mip, MIP_MTIP, "MTIP not pending with mtimecmp = 0"
    li t0, MIP_MTIP
    csrs mie, t0
    EXPECT_MTRAP 1f
    GOTO_MODE \mode, 2f
2:  nop
    nop
    ecall
1:  CHECK_MCAUSE CAUSE_ECALL_U + \mode
    ld a0, HD_MICOUNT(tp)
    CHECK_EQ a0, 1
    ld a0, HD_MILOG(tp)
    CHECK_EQ a0, CAUSE_INTR | IRQ_M_TIMER
    li t0, -1
    sd t0, 0(s1)
    .endr

    /* ---- 32-bit accesses: mtime halves, mtimecmp written as two words ---- */
    TESTNUM 20
    ld a0, 0(s0)
    lwu a1, 0(s0)
    lwu a2, 4(s0)
    ld a3, 0(s0)
    srli a4, a0, 32
    bgeu a2, a4, 1f
    FAIL "mtime high word below an earlier 64-bit read"
1:  srli a4, a3, 32
    bgeu a4, a2, 2f
    FAIL "mtime high word above a later 64-bit read"
2:  TESTNUM 21
    li t0, -1
    sw t0, 0(s1)                        /* low word first, high word still all ones */
    li t0, 0
    sw t0, 4(s1)
    li t0, 0x12345678
    sw t0, 0(s1)
    ld a0, 0(s1)
    CHECK_EQ a0, 0x12345678
    lwu a0, 4(s1)
    CHECK_EQ a0, 0
    li t0, -1
    sd t0, 0(s1)
    lwu a0, 4(s1)
    CHECK_EQ a0, 0xffffffff
    WAIT_CSR_CLEAR mip, MIP_MTIP, "MTIP pending with mtimecmp = -1"

    csrw mie, zero
    j pass

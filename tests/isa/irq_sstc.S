/* Sstc: with menvcfg.STCE = 1, mip.STIP = (time >= stimecmp), re-evaluated as time advances,
 * read-only to software; delegated to S it interrupts S (scause = interrupt 5); S accesses
 * stimecmp only with mcounteren.TM = 1 and STCE = 1. With STCE = 0, STIP is an ordinary
 * M-writable bit again. (Sstc spec; priv spec 3.1.9.) */
#include "common.h"

#define MENVCFG_STCE (1 << 63)

    .text
    .globl test_main
test_main:
    /* ---- STCE = 0: STIP is writable by M, stimecmp is M-only ---- */
    TESTNUM 1
    csrw CSR_MENVCFG, zero
    li t0, MIP_STIP
    csrs mip, t0
    csrr a0, mip
    CHECK_MASKED a0, MIP_STIP, MIP_STIP
    csrc mip, t0
    csrr a0, mip
    CHECK_MASKED a0, MIP_STIP, 0
    li t0, 2
    csrw mcounteren, t0
    EXPECT_ILLEGAL_IN(PRV_S, 2, csrr a0, CSR_STIMECMP)

    /* ---- STCE = 1 ---- */
    TESTNUM 3
    li t0, MENVCFG_STCE
    csrw CSR_MENVCFG, t0
    csrr a0, CSR_MENVCFG
    CHECK_MASKED a0, MENVCFG_STCE, MENVCFG_STCE
    li t0, -1
    csrw CSR_STIMECMP, t0
    CHECK_CSR CSR_STIMECMP, -1
    csrr a0, mip
    CHECK_MASKED a0, MIP_STIP, 0
    TESTNUM 4                           /* time >= 0 */
    csrw CSR_STIMECMP, zero
    WAIT_CSR_SET mip, MIP_STIP, "STIP not pending with stimecmp = 0"
    TESTNUM 5                           /* read-only now */
    li t0, MIP_STIP
    csrc mip, t0
    csrr a0, mip
    CHECK_MASKED a0, MIP_STIP, MIP_STIP
    li t0, -1
    csrw CSR_STIMECMP, t0
    WAIT_CSR_CLEAR mip, MIP_STIP, "STIP pending with stimecmp = -1"
    li t0, MIP_STIP
    csrs mip, t0
    csrr a0, mip
    CHECK_MASKED a0, MIP_STIP, 0
    TESTNUM 6                           /* follows time as it advances */
    rdtime a0
    li t0, 30000                        /* 3 ms */
    add a0, a0, t0
    csrw CSR_STIMECMP, a0
    csrr a1, mip
    CHECK_MASKED a1, MIP_STIP, 0
    WAIT_CSR_SET mip, MIP_STIP, "STIP did not follow time past stimecmp"
    rdtime a1
    bgeu a1, a0, 1f
    FAIL "STIP set before time reached stimecmp"
1:  TESTNUM 7                           /* moving stimecmp forward clears it again */
    li t0, 100000000
    add a0, a1, t0
    csrw CSR_STIMECMP, a0
    WAIT_CSR_CLEAR mip, MIP_STIP, "STIP stayed pending after stimecmp moved ahead"

    /* ---- S access: needs mcounteren.TM ---- */
    csrw mcounteren, zero
    EXPECT_ILLEGAL_IN(PRV_S, 10, csrr a0, CSR_STIMECMP)
    EXPECT_ILLEGAL_IN(PRV_S, 11, csrw CSR_STIMECMP, zero)
    li t0, 2
    csrw mcounteren, t0
    RUN_IN(PRV_S, 12, li a0, -2; csrw CSR_STIMECMP, a0; csrr a1, CSR_STIMECMP)
    CHECK_EQ a1, -2
    CHECK_CSR CSR_STIMECMP, -2
    EXPECT_ILLEGAL_IN(PRV_U, 13, csrr a0, CSR_STIMECMP)

    /* ---- the interrupt, delegated to S ---- */
    TESTNUM 20
    li t0, MIP_STIP
    csrw mideleg, t0
    csrw mie, t0                        /* sie.STIE */
    li t0, -1
    csrw CSR_STIMECMP, t0
    CLEAR_TRAPS
    EXPECT_MTRAP 1f
    GOTO_MODE PRV_S, 2f
2:  csrr a0, sie
    CHECK_EQ a0, MIP_STIP
    rdtime a0
    li t0, 20000                        /* 2 ms */
    add a0, a0, t0
    csrw CSR_STIMECMP, a0
    csrsi sstatus, MSTATUS_SIE
    WAIT_NONZERO HD_SICOUNT, "S timer interrupt not delivered"
    csrci sstatus, MSTATUS_SIE
    CHECK_SCAUSE CAUSE_INTR | IRQ_S_TIMER
    CHECK_STVAL 0
    csrr a0, sip                        /* still pending: the handler only masked it */
    CHECK_EQ a0, MIP_STIP
    li t0, -1                           /* S clears it by moving stimecmp */
    csrw CSR_STIMECMP, t0
    WAIT_CSR_CLEAR sip, MIP_STIP, "STIP stayed pending after stimecmp = -1"
    ecall
1:  CHECK_MCAUSE CAUSE_ECALL_S
    ld a0, HD_MICOUNT(tp)               /* never seen by M */
    CHECK_EQ a0, 0
    ld a0, HD_SICOUNT(tp)
    CHECK_EQ a0, 1

    /* ---- delegated: taken in U whatever SIE says; not taken in M ---- */
    TESTNUM 21
    csrw CSR_STIMECMP, zero
    WAIT_CSR_SET mip, MIP_STIP, "STIP not pending with stimecmp = 0"
    li t0, MIP_STIP
    csrs mie, t0
    CLEAR_TRAPS
    csrsi mstatus, MSTATUS_MIE          /* M with MIE = 1: a delegated interrupt waits */
    nop
    nop
    csrci mstatus, MSTATUS_MIE
    ld a0, HD_MICOUNT(tp)
    CHECK_EQ a0, 0
    li t0, MSTATUS_SIE
    csrc mstatus, t0
    EXPECT_MTRAP 1f
    GOTO_MODE PRV_U, 2f
2:  nop                                 /* interrupted here, into S */
    ecall
1:  CHECK_MCAUSE CAUSE_ECALL_U
    ld a0, HD_SICOUNT(tp)
    CHECK_EQ a0, 1
    CHECK_SCAUSE CAUSE_INTR | IRQ_S_TIMER
    CHECK_SEPC 2b
    ld a0, HD_SSTATUS(tp)
    CHECK_MASKED a0, MSTATUS_SPP, 0

    /* ---- not delegated: an S timer interrupt taken in M ---- */
    TESTNUM 22
    csrw mideleg, zero
    li t0, MIP_STIP
    csrw mie, t0
    CLEAR_TRAPS
    csrsi mstatus, MSTATUS_MIE
    nop
    csrci mstatus, MSTATUS_MIE
    ld a0, HD_MICOUNT(tp)
    CHECK_EQ a0, 1
    CHECK_MCAUSE CAUSE_INTR | IRQ_S_TIMER

    li t0, -1
    csrw CSR_STIMECMP, t0
    csrw mie, zero
    csrw CSR_MENVCFG, zero
    csrw mcounteren, zero
    j pass

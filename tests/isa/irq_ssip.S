/* Supervisor software interrupt (priv spec 4.1.3): SSIP set by software (from S through sip,
 * or from M through mip), delegated with mideleg to S; sip/sie are the mideleg-filtered views
 * of mip/mie; S interrupts obey sstatus.SIE in S, are always enabled in U, and a delegated
 * interrupt is never taken in M. */
#include "common.h"

    .text
    .globl test_main
test_main:
    /* ---- sip/sie views follow mideleg ---- */
    TESTNUM 1
    csrw mideleg, zero
    li t0, MIP_SSIP
    csrw mie, t0
    csrs mip, t0
    csrr a0, sie
    CHECK_EQ a0, 0
    csrr a0, sip
    CHECK_EQ a0, 0
    li t0, MIP_SSIP
    csrw mideleg, t0
    csrr a0, sie
    CHECK_EQ a0, MIP_SSIP
    csrr a0, sip
    CHECK_EQ a0, MIP_SSIP
    TESTNUM 2                           /* sip writes reach mip.SSIP */
    li t0, MIP_SSIP
    csrc sip, t0
    csrr a0, mip
    CHECK_MASKED a0, MIP_SSIP, 0
    csrs sip, t0
    csrr a0, mip
    CHECK_MASKED a0, MIP_SSIP, MIP_SSIP
    csrc mip, t0
    TESTNUM 3                           /* sie writes reach mie only for delegated bits */
    csrw mie, zero
    li t0, MIP_SSIP | MIP_MSIP | MIP_MTIP
    csrs sie, t0
    csrr a0, mie
    CHECK_EQ a0, MIP_SSIP

    /* ---- S sets its own SSIP with SIE = 1: taken at once in S ---- */
    TESTNUM 10
    CLEAR_TRAPS
    EXPECT_MTRAP 1f
    GOTO_MODE PRV_S, 2f
2:  csrsi sstatus, MSTATUS_SIE
    csrsi sip, MIP_SSIP
3:  nop
    csrci sstatus, MSTATUS_SIE
    ld a0, HD_SICOUNT(tp)
    CHECK_EQ a0, 1
    CHECK_SCAUSE CAUSE_INTR | IRQ_S_SOFT
    CHECK_SEPC 3b
    ld a0, HD_SSTATUS(tp)               /* from S, SIE was 1 */
    CHECK_MASKED a0, MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE, MSTATUS_SPP | MSTATUS_SPIE
    csrr a0, sip                        /* the handler masked it; software must clear it */
    CHECK_EQ a0, MIP_SSIP
    csrci sip, MIP_SSIP
    csrr a0, sip
    CHECK_EQ a0, 0
    ecall
1:  CHECK_MCAUSE CAUSE_ECALL_S
    ld a0, HD_MICOUNT(tp)
    CHECK_EQ a0, 0

    /* ---- S with SIE = 0: stays pending ---- */
    TESTNUM 11
    CLEAR_TRAPS
    li t0, MIP_SSIP
    csrw mie, t0
    EXPECT_MTRAP 1f
    GOTO_MODE PRV_S, 2f
2:  csrci sstatus, MSTATUS_SIE
    csrsi sip, MIP_SSIP
    nop
    nop
    ld a0, HD_SICOUNT(tp)
    CHECK_EQ a0, 0
    csrr a0, sip
    CHECK_EQ a0, MIP_SSIP
    csrsi sstatus, MSTATUS_SIE          /* enabling takes it */
    nop
    csrci sstatus, MSTATUS_SIE
    ld a0, HD_SICOUNT(tp)
    CHECK_EQ a0, 1
    csrci sip, MIP_SSIP
    ecall
1:  CHECK_MCAUSE CAUSE_ECALL_S

    /* ---- raised by M, taken when U runs (U: S interrupts always enabled) ---- */
    TESTNUM 12
    CLEAR_TRAPS
    li t0, MIP_SSIP
    csrw mie, t0
    csrs mip, t0
    li t0, MSTATUS_SIE
    csrc mstatus, t0
    EXPECT_MTRAP 1f
    GOTO_MODE PRV_U, 2f
2:  nop
    ecall
1:  CHECK_MCAUSE CAUSE_ECALL_U
    ld a0, HD_SICOUNT(tp)
    CHECK_EQ a0, 1
    CHECK_SCAUSE CAUSE_INTR | IRQ_S_SOFT
    CHECK_SEPC 2b
    ld a0, HD_SSTATUS(tp)
    CHECK_MASKED a0, MSTATUS_SPP, 0

    /* ---- a delegated interrupt is not taken in M, even with MIE = 1 ---- */
    TESTNUM 13
    CLEAR_TRAPS
    li t0, MIP_SSIP
    csrw mie, t0                        /* still pending from test 12 */
    csrr a0, mip
    CHECK_MASKED a0, MIP_SSIP, MIP_SSIP
    csrsi mstatus, MSTATUS_MIE
    nop
    nop
    csrci mstatus, MSTATUS_MIE
    ld a0, HD_MCOUNT(tp)
    CHECK_EQ a0, 0
    ld a0, HD_SCOUNT(tp)
    CHECK_EQ a0, 0

    /* ---- not delegated: taken in M (cause 1) ---- */
    TESTNUM 14
    csrw mideleg, zero
    csrsi mstatus, MSTATUS_MIE
    nop
    csrci mstatus, MSTATUS_MIE
    ld a0, HD_MICOUNT(tp)
    CHECK_EQ a0, 1
    CHECK_MCAUSE CAUSE_INTR | IRQ_S_SOFT
    TESTNUM 15                          /* and from S, non-delegated goes to M whatever SIE */
    CLEAR_TRAPS
    li t0, MIP_SSIP
    csrw mie, t0
    EXPECT_MTRAP 1f
    GOTO_MODE PRV_S, 2f
2:  nop
    ecall
1:  CHECK_MCAUSE CAUSE_ECALL_S
    ld a0, HD_MICOUNT(tp)
    CHECK_EQ a0, 1
    ld a0, HD_MILOG(tp)
    CHECK_EQ a0, CAUSE_INTR | IRQ_S_SOFT
    ld a0, HD_SCOUNT(tp)
    CHECK_EQ a0, 0

    li t0, MIP_SSIP
    csrc mip, t0
    csrw mie, zero
    j pass

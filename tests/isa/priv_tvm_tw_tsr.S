/* mstatus trap-virtualization bits (priv spec 3.1.6.5): TSR makes sret in S illegal, TW makes
 * wfi in S and U illegal, TVM makes satp accesses and sfence.vma in S illegal. None of them
 * affects M. */
#include "common.h"

    .text
    .globl test_main
test_main:
    /* ---- TSR ---- */
    li t0, MSTATUS_TSR
    csrs mstatus, t0
    EXPECT_ILLEGAL_IN(PRV_S, 1, sret)
    TESTNUM 2                           /* sret in M is unaffected */
    li t0, MSTATUS_SPP
    csrc mstatus, t0
    la t0, 2f
    csrw sepc, t0
    EXPECT_MTRAP 1f
    sret
2:  ecall                               /* in U */
1:  CHECK_MCAUSE CAUSE_ECALL_U
    li t0, MSTATUS_TSR
    csrc mstatus, t0
    TESTNUM 3                           /* TSR = 0: sret in S works */
    EXPECT_MTRAP 1f
    GOTO_MODE PRV_S, 2f
2:  li t0, MSTATUS_SPP
    csrc sstatus, t0
    la t0, 3f
    csrw sepc, t0
    sret
3:  ecall
1:  CHECK_MCAUSE CAUSE_ECALL_U

    /* ---- TW ---- */
    li t0, MSTATUS_TW
    csrs mstatus, t0
    EXPECT_ILLEGAL_IN(PRV_S, 10, wfi)
    EXPECT_ILLEGAL_IN(PRV_U, 11, wfi)
    TESTNUM 12                          /* wfi in M with TW = 1: no trap (an interrupt is
                                         * pending and enabled in mie, MIE = 0: wfi returns) */
    li t0, MIP_SSIP
    csrs mie, t0
    csrs mip, t0
    CLEAR_TRAPS
    wfi
    ld a0, HD_MCOUNT(tp)
    CHECK_EQ a0, 0
    li t0, MIP_SSIP
    csrc mip, t0
    csrc mie, t0
    li t0, MSTATUS_TW
    csrc mstatus, t0
    TESTNUM 13                          /* TW = 0: wfi in S does not trap. A pending S-level
                                         * interrupt, delegated, enabled in sie, SIE = 0,
                                         * makes it return at once. */
    li t0, MIP_SSIP
    csrs mideleg, t0
    csrs mie, t0
    csrs mip, t0
    li t0, MSTATUS_SIE
    csrc mstatus, t0
    RUN_IN(PRV_S, 13, wfi; nop)
    ld a0, HD_SCOUNT(tp)
    CHECK_EQ a0, 0
    li t0, MIP_SSIP
    csrc mip, t0
    csrc mie, t0
    csrc mideleg, t0

    /* ---- TVM ---- */
    li t0, MSTATUS_TVM
    csrs mstatus, t0
    EXPECT_ILLEGAL_IN(PRV_S, 20, csrr a0, satp)
    EXPECT_ILLEGAL_IN(PRV_S, 21, csrw satp, zero)
    EXPECT_ILLEGAL_IN(PRV_S, 22, csrrs a0, satp, zero)
    EXPECT_ILLEGAL_IN(PRV_S, 23, sfence.vma)
    EXPECT_ILLEGAL_IN(PRV_S, 24, sfence.vma a0, zero)
    TESTNUM 25                          /* M is unaffected */
    csrr a0, satp
    csrw satp, zero
    sfence.vma
    li t0, MSTATUS_TVM
    csrc mstatus, t0
    RUN_IN(PRV_S, 26, csrr a0, satp; csrw satp, zero; sfence.vma; sfence.vma a0, a1)

    j pass

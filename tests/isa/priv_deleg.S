/* Exception delegation with medeleg (priv spec 3.1.8, 4.1): delegated traps from U and S go
 * to stvec with scause/sepc/stval and the sstatus stack (SPP, SPIE, SIE) set, M state
 * untouched; sret returns; traps taken in M are never delegated; read-only-zero bits of
 * medeleg/mideleg ("medeleg[11] is read-only zero"; QEMU 7.2 keeps it writable: tolerated on
 * QEMU only). */
#include "common.h"

    .text
    .globl test_main
test_main:
    /* ---- WARL: M-mode ecall is not delegable, nor are M-level interrupts ---- */
    TESTNUM 1
    li t0, -1
    csrw medeleg, t0
    csrr a0, medeleg
    IF_QEMU 1f                          /* QEMU 7.2 lets medeleg[11] be set (tolerated there) */
    CHECK_MASKED a0, 1 << CAUSE_ECALL_M, 0
1:
    CHECK_MASKED a0, (1 << 8) | (1 << 9) | (1 << 2) | (1 << 3) | (1 << 12) | (1 << 13) | (1 << 15), (1 << 8) | (1 << 9) | (1 << 2) | (1 << 3) | (1 << 12) | (1 << 13) | (1 << 15)
    csrw medeleg, zero
    CHECK_CSR medeleg, 0
    TESTNUM 2
    li t0, -1
    csrw mideleg, t0
    csrr a0, mideleg
    CHECK_MASKED a0, MIP_SSIP | MIP_STIP | MIP_SEIP | MIP_MSIP | MIP_MTIP | MIP_MEIP, MIP_SSIP | MIP_STIP | MIP_SEIP
    csrw mideleg, zero

    /* ---- ecall from U, delegated: handled in S ---- */
    TESTNUM 10
    li t0, 1 << CAUSE_ECALL_U
    csrw medeleg, t0
    CLEAR_TRAPS
    li t0, MSTATUS_SIE | MSTATUS_SPIE
    csrc mstatus, t0
    EXPECT_STRAP 3f, PRV_S
    GOTO_MODE PRV_U, 2f
2:  ecall
    FAIL "delegated ecall from U did not trap"
3:  CHECK_SCAUSE CAUSE_ECALL_U          /* now in S */
    CHECK_SEPC 2b
    CHECK_STVAL 0
    ld a0, HD_SSTATUS(tp)
    CHECK_MASKED a0, MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE, 0
    ld a0, HD_MCOUNT(tp)                /* M saw nothing */
    CHECK_EQ a0, 0
    csrr a0, scause                     /* the S CSR really holds it */
    CHECK_EQ a0, CAUSE_ECALL_U
    BACK_TO_M                           /* ecall from S is not delegated */
    CHECK_MCAUSE CAUSE_ECALL_S

    /* ---- sret back to U after a delegated ecall; U continues ---- */
    TESTNUM 11
    li s0, 0
    EXPECT_STRAP 3f, PRV_U
    EXPECT_MTRAP 1f
    GOTO_MODE PRV_U, 2f
2:  li s0, 1
    ecall                               /* -> S handler -> sret to 3f in U */
    FAIL "not resumed in U"
3:  addi s0, s0, 1
    ebreak                              /* not delegated: -> M */
    FAIL "ebreak did not trap"
1:  CHECK_MCAUSE CAUSE_BREAKPOINT
    CHECK_EQ s0, 2
    ld a0, HD_MSTATUS(tp)               /* the ebreak came from U */
    CHECK_MASKED a0, MSTATUS_MPP, 0
    CHECK_SCAUSE CAUSE_ECALL_U

    /* ---- ecall from S, delegated; SIE/SPIE/SPP stack ---- */
    TESTNUM 12
    li t0, (1 << CAUSE_ECALL_U) | (1 << CAUSE_ECALL_S)
    csrw medeleg, t0
    CLEAR_TRAPS
    EXPECT_STRAP 3f, PRV_S
    GOTO_MODE PRV_S, 2f
2:  csrsi sstatus, MSTATUS_SIE          /* SIE = 1 before the trap (sie = 0: nothing fires) */
4:  ecall
    FAIL "delegated ecall from S did not trap"
3:  CHECK_SCAUSE CAUSE_ECALL_S
    CHECK_SEPC 4b
    ld a0, HD_SSTATUS(tp)
    CHECK_MASKED a0, MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE, MSTATUS_SPP | MSTATUS_SPIE
    csrr a0, sstatus                    /* the handler's sret restored SIE = SPIE = 1 */
    CHECK_MASKED a0, MSTATUS_SIE, MSTATUS_SIE
    csrci sstatus, MSTATUS_SIE
    ld a0, HD_MCOUNT(tp)
    CHECK_EQ a0, 0
    /* with S ecalls delegated, get back to M with a non-delegated exception */
    EXPECT_MTRAP 1f
    ebreak
1:  CHECK_MCAUSE CAUSE_BREAKPOINT
    li t0, 1 << CAUSE_ECALL_S
    csrc medeleg, t0

    /* ---- illegal instruction from U, delegated ---- */
    TESTNUM 13
    li t0, 1 << CAUSE_ILLEGAL
    csrw medeleg, t0
    EXPECT_STRAP 3f, PRV_S
    GOTO_MODE PRV_U, 2f
2:  .word 0xffffffff
    FAIL "illegal instruction from U did not trap"
3:  CHECK_SCAUSE CAUSE_ILLEGAL
    CHECK_SEPC 2b
    ld a0, HD_STVAL(tp)
    CHECK_EQ2 a0, 0, 0xffffffff
    BACK_TO_M

    /* ---- breakpoint from S, delegated ---- */
    TESTNUM 14
    li t0, 1 << CAUSE_BREAKPOINT
    csrw medeleg, t0
    EXPECT_STRAP 3f, PRV_S
    GOTO_MODE PRV_S, 2f
    .option push
    .option norvc
2:  ebreak
    .option pop
    FAIL "ebreak from S did not trap"
3:  CHECK_SCAUSE CAUSE_BREAKPOINT
    CHECK_SEPC 2b
    ld a0, HD_SSTATUS(tp)
    CHECK_MASKED a0, MSTATUS_SPP, MSTATUS_SPP
    BACK_TO_M

    /* ---- traps taken in M are never delegated ---- */
    TESTNUM 15
    li t0, -1
    csrw medeleg, t0
    CLEAR_TRAPS
    EXPECT_MTRAP 1f
2:  .word 0xffffffff
    CLEAR_EXPECT
    FAIL "illegal instruction in M did not trap"
1:  CHECK_MCAUSE CAUSE_ILLEGAL
    CHECK_MEPC 2b
    ld a0, HD_SCOUNT(tp)
    CHECK_EQ a0, 0
    EXPECT_MTRAP 1f
    ebreak
1:  CHECK_MCAUSE CAUSE_BREAKPOINT
    EXPECT_MTRAP 1f
    ecall
1:  CHECK_MCAUSE CAUSE_ECALL_M
    ld a0, HD_SCOUNT(tp)
    CHECK_EQ a0, 0

    /* ---- only the delegated causes go to S ---- */
    TESTNUM 16
    li t0, 1 << CAUSE_ECALL_U
    csrw medeleg, t0
    CLEAR_TRAPS
    EXPECT_MTRAP 1f
    GOTO_MODE PRV_U, 2f
2:  .word 0xffffffff                    /* illegal: not delegated now */
1:  CHECK_MCAUSE CAUSE_ILLEGAL
    ld a0, HD_MSTATUS(tp)
    CHECK_MASKED a0, MSTATUS_MPP, 0
    ld a0, HD_SCOUNT(tp)
    CHECK_EQ a0, 0

    /* ---- delegated trap from U uses stvec; stvec is WARL-aligned ---- */
    TESTNUM 17
    la t0, alt_stvec
    csrw stvec, t0
    EXPECT_MTRAP 1f
    GOTO_MODE PRV_U, 2f
2:  ecall                               /* -> alt_stvec in S, which does ebreak -> M */
1:  CHECK_MCAUSE CAUSE_BREAKPOINT
    la t0, alt_stvec_ebreak
    CHECK_MEPC alt_stvec_ebreak
    ld a0, HD_MSTATUS(tp)
    CHECK_MASKED a0, MSTATUS_MPP, MSTATUS_MPP_S
    la t0, strap_entry
    csrw stvec, t0

    csrw medeleg, zero
    j pass

    .balign 4
alt_stvec:
    csrr a0, scause
    .option push
    .option norvc
alt_stvec_ebreak:
    ebreak
    .option pop

/* Traps into M (priv spec 3.1.6.1, 3.3): ecall from U/S/M (causes 8/9/11, mtval 0), ebreak
 * (cause 3), illegal instructions (mepc, mtval = 0 or the instruction bits), privileged
 * instructions in the wrong mode, and the mstatus stack on trap entry and mret/sret:
 * MPP/SPP, MPIE/SPIE, xRET setting xPP to U, MPRV cleared when returning below M.
 * QEMU 7.2 deviation tolerated on QEMU only (tests 51, 52): mret to S/U leaves MPRV set
 * (priv 1.12 requires clearing it). */
#include "common.h"

.macro SET_MPP mode
    li t0, MSTATUS_MPP
    csrc mstatus, t0
    li t0, (\mode) << 11
    csrs mstatus, t0
.endm

    .text
    .globl test_main
test_main:
    /* ---- ecall from each mode ---- */
    TESTNUM 1
    EXPECT_MTRAP 1f
2:  ecall
    CLEAR_EXPECT
    FAIL "ecall in M did not trap"
1:  CHECK_MCAUSE CAUSE_ECALL_M
    CHECK_MEPC 2b
    CHECK_MTVAL 0
    ld a0, HD_MSTATUS(tp)
    CHECK_MASKED a0, MSTATUS_MPP, MSTATUS_MPP_M
    TESTNUM 2
    EXPECT_MTRAP 1f
    GOTO_MODE PRV_S, 2f
2:  ecall
    FAIL "ecall in S did not trap"
1:  CHECK_MCAUSE CAUSE_ECALL_S
    CHECK_MEPC 2b
    CHECK_MTVAL 0
    ld a0, HD_MSTATUS(tp)
    CHECK_MASKED a0, MSTATUS_MPP, MSTATUS_MPP_S
    TESTNUM 3
    EXPECT_MTRAP 1f
    GOTO_MODE PRV_U, 2f
2:  ecall
    FAIL "ecall in U did not trap"
1:  CHECK_MCAUSE CAUSE_ECALL_U
    CHECK_MEPC 2b
    CHECK_MTVAL 0
    ld a0, HD_MSTATUS(tp)
    CHECK_MASKED a0, MSTATUS_MPP, 0

    /* ---- ebreak: cause 3, mtval 0 or the pc ---- */
    .irp mode, PRV_M, PRV_S, PRV_U
    TESTNUM 10 + \mode
    EXPECT_MTRAP 1f
    GOTO_MODE \mode, 2f
    .option push
    .option norvc
2:  ebreak
    .option pop
    FAIL "ebreak did not trap"
1:  CHECK_MCAUSE CAUSE_BREAKPOINT
    CHECK_MEPC 2b
    ld a0, HD_MTVAL(tp)
    beqz a0, 3f
    la a1, 2b
    CHECK_EQR a0, a1
3:
    .endr

    /* ---- illegal instructions ---- */
    EXPECT_ILLEGAL(20, .word 0xffffffff)
    EXPECT_ILLEGAL(21, .word 0x0000000b)            /* custom-0, not implemented */
    EXPECT_ILLEGAL(22, .word 0x00000033 | (0x7f << 25))   /* OP with an unused funct7 */
    EXPECT_ILLEGAL(23, .word 0x0000603b)                  /* OP-32 funct3 6 funct7 0 */
    EXPECT_ILLEGAL(24, .word 0x00003067)                  /* jalr with funct3 != 0 */
    EXPECT_ILLEGAL(25, .word 0x00002063)                  /* branch funct3 2 */
    EXPECT_ILLEGAL(26, .word 0x00007003)                  /* load funct3 7 */
    EXPECT_ILLEGAL(27, .word 0x00004023)                  /* store funct3 4 */
    EXPECT_ILLEGAL(28, .word 0x44005013)                  /* OP-IMM shift right, funct6 010001 */
    EXPECT_ILLEGAL_IN(PRV_U, 30, mret)
    EXPECT_ILLEGAL_IN(PRV_S, 31, mret)
    EXPECT_ILLEGAL_IN(PRV_U, 32, sret)
    EXPECT_ILLEGAL_IN(PRV_U, 33, sfence.vma)
    EXPECT_ILLEGAL_IN(PRV_U, 34, sfence.vma a0, a1)
    EXPECT_ILLEGAL_IN(PRV_S, 35, .word 0xffffffff)
    EXPECT_ILLEGAL_IN(PRV_U, 36, .word 0x00000000)
    EXPECT_ILLEGAL_IN(PRV_S, 37, csrr a0, mcause)
    TESTNUM 38                          /* an illegal instruction changes no register */
    li a0, 0x55
    EXPECT_MTRAP 1f
    .word 0x0000050b                    /* custom-0 with rd = a0 */
    CLEAR_EXPECT
1:  CHECK_EQ a0, 0x55

    /* ---- trap entry: MPIE <- MIE, MIE <- 0; mret: MIE <- MPIE, MPIE <- 1, MPP <- U ---- */
    TESTNUM 40
    csrw mie, zero                      /* MIE may be set safely: nothing is enabled */
    li t0, MSTATUS_MIE
    csrs mstatus, t0
    EXPECT_MTRAP 1f
    ecall
1:  ld a0, HD_MSTATUS(tp)
    CHECK_MASKED a0, MSTATUS_MIE | MSTATUS_MPIE, MSTATUS_MPIE
    csrr a0, mstatus                    /* the handler's mret restored MIE = 1 */
    CHECK_MASKED a0, MSTATUS_MIE | MSTATUS_MPIE, MSTATUS_MIE | MSTATUS_MPIE
    li t0, MSTATUS_MIE
    csrc mstatus, t0
    TESTNUM 41                          /* mret to S with MPIE = 1: MIE = 1 in S, MPP = U */
    li t0, MSTATUS_MPIE
    csrs mstatus, t0
    SET_MPP PRV_S
    la t0, 2f
    csrw mepc, t0
    EXPECT_MTRAP 1f
    mret
2:  ecall
1:  CHECK_MCAUSE CAUSE_ECALL_S
    ld a0, HD_MSTATUS(tp)               /* MPIE at the ecall = MIE while in S */
    CHECK_MASKED a0, MSTATUS_MPIE | MSTATUS_MIE, MSTATUS_MPIE
    li t0, MSTATUS_MIE                  /* the handler's mret set MIE again */
    csrc mstatus, t0
    TESTNUM 42                          /* mret to S with MPIE = 0: MIE = 0 in S */
    li t0, MSTATUS_MPIE
    csrc mstatus, t0
    SET_MPP PRV_S
    la t0, 2f
    csrw mepc, t0
    EXPECT_MTRAP 1f
    mret
2:  ecall
1:  ld a0, HD_MSTATUS(tp)
    CHECK_MASKED a0, MSTATUS_MPIE | MSTATUS_MIE, 0
    TESTNUM 44                          /* mret (M to M): MIE <- MPIE, MPIE <- 1, MPP <- U */
    SET_MPP PRV_M
    li t0, MSTATUS_MPIE
    csrc mstatus, t0
    la t0, 2f
    csrw mepc, t0
    mret
2:  csrr a0, mstatus
    CHECK_MASKED a0, MSTATUS_MPIE | MSTATUS_MIE, MSTATUS_MPIE
    CHECK_MASKED a0, MSTATUS_MPP, 0     /* least-privileged mode (priv 1.12) */

    /* ---- MPRV: cleared by mret to S or U, kept by mret to M ---- */
    TESTNUM 50
    li t0, MSTATUS_MPRV
    csrs mstatus, t0
    SET_MPP PRV_M
    la t0, 2f
    csrw mepc, t0
    mret
2:  csrr a0, mstatus
    CHECK_MASKED a0, MSTATUS_MPRV, MSTATUS_MPRV
    TESTNUM 51
    EXPECT_MTRAP 1f
    GOTO_MODE PRV_S, 2f                 /* MPRV still 1 here (MPP = S while jumping: data
                                         * accesses of GOTO_MODE happen before the mret) */
2:  ecall
1:  ld a0, HD_MSTATUS(tp)
    IF_QEMU 3f                          /* QEMU 7.2 keeps MPRV (tolerated there) */
    CHECK_MASKED a0, MSTATUS_MPRV, 0
3:  li t0, MSTATUS_MPRV
    csrc mstatus, t0
    TESTNUM 52
    li t0, MSTATUS_MPRV
    csrs mstatus, t0
    EXPECT_MTRAP 1f
    GOTO_MODE PRV_U, 2f
2:  ecall
1:  ld a0, HD_MSTATUS(tp)
    IF_QEMU 3f
    CHECK_MASKED a0, MSTATUS_MPRV, 0
3:  li t0, MSTATUS_MPRV
    csrc mstatus, t0

    /* ---- sret: SIE <- SPIE, SPIE <- 1, SPP <- U; privilege from SPP ---- */
    TESTNUM 60                          /* sret in S with SPP = U, SPIE = 1 */
    li t0, MSTATUS_SIE | MSTATUS_SPP
    csrc mstatus, t0
    li t0, MSTATUS_SPIE
    csrs mstatus, t0
    EXPECT_MTRAP 1f
    GOTO_MODE PRV_S, 2f
2:  la t0, 3f
    csrw sepc, t0
    sret
3:  ecall                               /* in U now */
1:  CHECK_MCAUSE CAUSE_ECALL_U
    ld a0, HD_MSTATUS(tp)
    CHECK_MASKED a0, MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP, MSTATUS_SIE | MSTATUS_SPIE
    TESTNUM 61                          /* sret with SPP = S stays in S; SPIE = 0 -> SIE = 0 */
    li t0, MSTATUS_SIE | MSTATUS_SPIE
    csrc mstatus, t0
    li t0, MSTATUS_SPP
    csrs mstatus, t0
    EXPECT_MTRAP 1f
    GOTO_MODE PRV_S, 2f
2:  la t0, 3f
    csrw sepc, t0
    sret
3:  ecall
1:  CHECK_MCAUSE CAUSE_ECALL_S
    ld a0, HD_MSTATUS(tp)
    CHECK_MASKED a0, MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP, MSTATUS_SPIE
    li t0, MSTATUS_SPIE
    csrc mstatus, t0
    TESTNUM 62                          /* sret from M with SPP = U goes to U */
    li t0, MSTATUS_SPP
    csrc mstatus, t0
    la t0, 2f
    csrw sepc, t0
    EXPECT_MTRAP 1f
    sret
2:  ecall
1:  CHECK_MCAUSE CAUSE_ECALL_U

    /* ---- 32-bit instructions at 2-byte aligned addresses (C present): no misalignment ---- */
    TESTNUM 70
    li a0, 0
    la t0, 2f
    jr t0
    .balign 4
    .half 0x0001                        /* c.nop */
    .option push
    .option norvc
2:  addi a0, a0, 5                      /* a 32-bit instruction at pc = 2 mod 4 */
    .option pop
    CHECK_EQ a0, 5
    la t0, 3f
    jalr t0
    j 4f
    .balign 4
    .half 0x0001                        /* c.nop */
    .option push
    .option norvc
3:  addi a0, a0, 1
    jr ra
    .option pop
4:  CHECK_EQ a0, 6

    j pass

/* Vectored trap vectors (priv spec 3.1.7, 4.1.2): with xtvec.MODE = 1, interrupts go to
 * BASE + 4 * cause and exceptions to BASE; MODE values >= 2 are reserved (WARL). */
#include "common.h"

#define HIT HD_USER                     /* which vector entry ran */
#define HIT_CAUSE HD_USER + 8
#define SAVE HD_USER + 16

    .text
    .globl test_main
test_main:
    /* ---- mtvec ---- */
    TESTNUM 1
    la s0, mvec_table
    ori t0, s0, 1
    csrw mtvec, t0
    csrr a0, mtvec
    CHECK_EQR a0, t0
    li s1, CLINT_MSIP(0)
    li s2, CLINT_MTIMECMP(0)

    TESTNUM 2                           /* machine software interrupt -> entry 3 */
    sd zero, HIT(tp)
    li t0, 1
    sw t0, 0(s1)
    WAIT_CSR_SET mip, MIP_MSIP, "MSIP not pending"
    li t0, MIP_MSIP
    csrw mie, t0
    csrsi mstatus, MSTATUS_MIE
    nop
    csrci mstatus, MSTATUS_MIE
    sw zero, 0(s1)
    ld a0, HIT(tp)
    CHECK_EQ a0, 3
    ld a0, HIT_CAUSE(tp)
    CHECK_EQ a0, CAUSE_INTR | IRQ_M_SOFT
    TESTNUM 3                           /* machine timer -> entry 7 */
    sd zero, HIT(tp)
    sd zero, 0(s2)
    WAIT_CSR_SET mip, MIP_MTIP, "MTIP not pending"
    li t0, MIP_MTIP
    csrw mie, t0
    csrsi mstatus, MSTATUS_MIE
    nop
    csrci mstatus, MSTATUS_MIE
    li t0, -1
    sd t0, 0(s2)
    ld a0, HIT(tp)
    CHECK_EQ a0, 7
    .irp irq, IRQ_S_SOFT, IRQ_S_TIMER, IRQ_S_EXT  /* S-level, not delegated: entries 1, 5, 9 */
    TESTNUM 4 + \irq
    sd zero, HIT(tp)
    li t0, 1 << \irq
    csrs mip, t0
    csrw mie, t0
    csrsi mstatus, MSTATUS_MIE
    nop
    csrci mstatus, MSTATUS_MIE
    li t0, 1 << \irq
    csrc mip, t0
    ld a0, HIT(tp)
    CHECK_EQ a0, \irq
    ld a0, HIT_CAUSE(tp)
    CHECK_EQ a0, CAUSE_INTR | \irq
    .endr
    TESTNUM 20                          /* exceptions use BASE */
    sd zero, HIT(tp)
    EXPECT_MTRAP 1f
    ecall
1:  ld a0, HIT(tp)
    CHECK_EQ a0, 100
    CHECK_MCAUSE CAUSE_ECALL_M
    TESTNUM 21                          /* and from U as well */
    sd zero, HIT(tp)
    EXPECT_MTRAP 1f
    GOTO_MODE PRV_U, 2f
2:  .word 0xffffffff
1:  ld a0, HIT(tp)
    CHECK_EQ a0, 100
    CHECK_MCAUSE CAUSE_ILLEGAL
    TESTNUM 22                          /* reserved modes are not accepted */
    la t0, mtrap_entry
    csrw mtvec, t0
    ori t1, t0, 2
    csrw mtvec, t1
    csrr a0, mtvec
    andi a0, a0, 3
    li t1, 2
    bltu a0, t1, 1f
    FAIL "mtvec accepted MODE = 2"
1:  la t0, mtrap_entry                  /* direct mode again */
    csrw mtvec, t0
    csrr a0, mtvec
    CHECK_EQR a0, t0

    /* ---- stvec, for interrupts delegated to S ---- */
    TESTNUM 30
    csrw CSR_MENVCFG, zero              /* STIP writable by M */
    la s0, svec_table
    ori t0, s0, 1
    csrw stvec, t0
    csrr a0, stvec
    CHECK_EQR a0, t0
    li t0, MIP_SSIP | MIP_STIP | MIP_SEIP
    csrw mideleg, t0
    .irp irq, IRQ_S_SOFT, IRQ_S_TIMER, IRQ_S_EXT
    TESTNUM 31 + \irq
    sd zero, HIT(tp)
    li t0, 1 << \irq
    csrw mie, t0
    csrs mip, t0                        /* raised by M, taken once S enables SIE */
    EXPECT_MTRAP 1f
    GOTO_MODE PRV_S, 2f
2:  csrsi sstatus, MSTATUS_SIE
    nop
    csrci sstatus, MSTATUS_SIE
    ecall
1:  ld a0, HIT(tp)
    CHECK_EQ a0, \irq + 200
    li t0, 1 << \irq
    csrc mip, t0
    .endr
    TESTNUM 50                          /* an S exception uses BASE */
    li t0, 1 << CAUSE_ECALL_U
    csrw medeleg, t0
    sd zero, HIT(tp)
    EXPECT_STRAP 3f, PRV_S
    EXPECT_MTRAP 1f
    GOTO_MODE PRV_U, 2f
2:  ecall
3:  ecall                               /* S -> M */
1:  ld a0, HIT(tp)
    CHECK_EQ a0, 300
    CHECK_SCAUSE CAUSE_ECALL_U
    csrw medeleg, zero
    la t0, strap_entry
    csrw stvec, t0
    csrw mideleg, zero
    csrw mie, zero
    j pass

/* ---- vector tables: 4-byte entries (no compressed jumps) ---- */
    .balign 256
    .option push
    .option norvc
mvec_table:
    j mvec_exc
    .irp n, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    j mvec_\n
    .endr
    .balign 256
svec_table:
    j svec_exc
    .irp n, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    j svec_\n
    .endr
    .option pop

mvec_exc:                               /* mark, then the runtime's exception handling */
    csrrw sp, mscratch, sp
    sd t0, SAVE(sp)
    li t0, 100
    sd t0, HIT(sp)
    ld t0, SAVE(sp)
    csrrw sp, mscratch, sp
    j mtrap_entry

    .irp n, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
mvec_\n:
    csrrw sp, mscratch, sp
    sd t0, SAVE(sp)
    li t0, \n
    sd t0, HIT(sp)
    csrr t0, mcause
    sd t0, HIT_CAUSE(sp)
    li t0, 1 << \n
    csrc mie, t0
    ld t0, SAVE(sp)
    csrrw sp, mscratch, sp
    mret
    .endr

svec_exc:
    csrrw sp, sscratch, sp
    sd t0, SAVE(sp)
    li t0, 300
    sd t0, HIT(sp)
    ld t0, SAVE(sp)
    csrrw sp, sscratch, sp
    j strap_entry

    .irp n, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
svec_\n:
    csrrw sp, sscratch, sp
    sd t0, SAVE(sp)
    li t0, \n + 200
    sd t0, HIT(sp)
    li t0, 1 << \n
    csrc sie, t0
    ld t0, SAVE(sp)
    csrrw sp, sscratch, sp
    sret
    .endr

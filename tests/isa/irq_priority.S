/* Interrupt priority (priv spec 3.1.9): several pending interrupts to M are taken in the
 * order MEI > MSI > MTI > SEI > SSI > STI; several to S in the order SEI > SSI > STI; M-level
 * interrupts before S-level ones. The runtime handlers log each cause and mask it in mie/sie,
 * so the log shows the order. SEIP is raised through its software-writable bit in mip.
 * QEMU 7.2 deviation tolerated on QEMU only: without AIA it takes the lowest-numbered pending
 * interrupt first (SSI, MSI, STI, MTI, SEI), so on QEMU that order is expected instead. */
#include "common.h"

/* Check log entry `idx` (at off(tp)) equals interrupt `irq`. */
.macro CHECK_LOG off, idx, irq
    ld a0, \off + 8 * \idx(tp)
    CHECK_EQ a0, CAUSE_INTR | \irq
.endm

    .text
    .globl test_main
test_main:
    csrw CSR_MENVCFG, zero              /* STIP software-writable */
    csrw mideleg, zero
    li s0, CLINT_MSIP(0)
    li s1, CLINT_MTIMECMP(0)

    /* mip.SEIP is writable by M (priv spec 3.1.9) */
    TESTNUM 1
    li t0, MIP_SEIP
    csrs mip, t0
    csrr a0, mip
    CHECK_MASKED a0, MIP_SEIP, MIP_SEIP
    csrc mip, t0
    csrr a0, mip
    CHECK_MASKED a0, MIP_SEIP, 0

    /* ---- all five pending for M at once ---- */
    TESTNUM 2
    CLEAR_TRAPS
    li t0, 1
    sw t0, 0(s0)                        /* MSIP */
    sd zero, 0(s1)                      /* MTIP */
    li t0, MIP_SEIP | MIP_SSIP | MIP_STIP
    csrs mip, t0
    WAIT_CSR_SET mip, MIP_MSIP, "MSIP not pending"
    WAIT_CSR_SET mip, MIP_MTIP, "MTIP not pending"
    li t0, MIP_MSIP | MIP_MTIP | MIP_SEIP | MIP_SSIP | MIP_STIP
    csrw mie, t0
    csrsi mstatus, MSTATUS_MIE
    nop
    csrci mstatus, MSTATUS_MIE
    ld a0, HD_MICOUNT(tp)
    CHECK_EQ a0, 5
    IF_QEMU 2f
    CHECK_LOG HD_MILOG, 0, IRQ_M_SOFT
    CHECK_LOG HD_MILOG, 1, IRQ_M_TIMER
    CHECK_LOG HD_MILOG, 2, IRQ_S_EXT
    CHECK_LOG HD_MILOG, 3, IRQ_S_SOFT
    CHECK_LOG HD_MILOG, 4, IRQ_S_TIMER
    j 3f
2:  CHECK_LOG HD_MILOG, 0, IRQ_S_SOFT   /* QEMU 7.2: lowest number first */
    CHECK_LOG HD_MILOG, 1, IRQ_M_SOFT
    CHECK_LOG HD_MILOG, 2, IRQ_S_TIMER
    CHECK_LOG HD_MILOG, 3, IRQ_M_TIMER
    CHECK_LOG HD_MILOG, 4, IRQ_S_EXT
3:
    /* ---- enabling one at a time in reverse order only changes which is first ---- */
    TESTNUM 3
    CLEAR_TRAPS
    li t0, MIP_STIP
    csrw mie, t0
    li t0, MIP_SSIP
    csrs mie, t0
    csrsi mstatus, MSTATUS_MIE
    nop
    csrci mstatus, MSTATUS_MIE
    ld a0, HD_MICOUNT(tp)
    CHECK_EQ a0, 2
    CHECK_LOG HD_MILOG, 0, IRQ_S_SOFT
    CHECK_LOG HD_MILOG, 1, IRQ_S_TIMER

    /* ---- delegated S interrupts, taken in S ---- */
    TESTNUM 4
    li t0, -1
    sd t0, 0(s1)
    sw zero, 0(s0)
    li t0, MIP_SEIP | MIP_SSIP | MIP_STIP
    csrw mideleg, t0
    csrw mie, t0
    CLEAR_TRAPS
    EXPECT_MTRAP 1f
    GOTO_MODE PRV_S, 2f
2:  csrsi sstatus, MSTATUS_SIE
    nop
    csrci sstatus, MSTATUS_SIE
    ecall
1:  CHECK_MCAUSE CAUSE_ECALL_S
    ld a0, HD_MICOUNT(tp)
    CHECK_EQ a0, 0
    ld a0, HD_SICOUNT(tp)
    CHECK_EQ a0, 3
    IF_QEMU 2f
    CHECK_LOG HD_SILOG, 0, IRQ_S_EXT
    CHECK_LOG HD_SILOG, 1, IRQ_S_SOFT
    CHECK_LOG HD_SILOG, 2, IRQ_S_TIMER
    j 3f
2:  CHECK_LOG HD_SILOG, 0, IRQ_S_SOFT   /* QEMU 7.2: lowest number first */
    CHECK_LOG HD_SILOG, 1, IRQ_S_TIMER
    CHECK_LOG HD_SILOG, 2, IRQ_S_EXT
3:
    /* ---- in S: a pending M interrupt goes before pending S ones ---- */
    TESTNUM 5
    CLEAR_TRAPS
    li t0, MIP_SSIP | MIP_STIP
    csrw mie, t0
    sd zero, 0(s1)                      /* MTIP, not delegated */
    WAIT_CSR_SET mip, MIP_MTIP, "MTIP not pending"
    li t0, MIP_MTIP
    csrs mie, t0
    EXPECT_MTRAP 1f
    GOTO_MODE PRV_S, 2f
2:  csrsi sstatus, MSTATUS_SIE
    nop
    csrci sstatus, MSTATUS_SIE
    ecall
1:  ld a0, HD_MICOUNT(tp)
    CHECK_EQ a0, 1
    CHECK_LOG HD_MILOG, 0, IRQ_M_TIMER
    ld a0, HD_SICOUNT(tp)
    CHECK_EQ a0, 2
    CHECK_LOG HD_SILOG, 0, IRQ_S_SOFT
    CHECK_LOG HD_SILOG, 1, IRQ_S_TIMER

    li t0, -1
    sd t0, 0(s1)
    li t0, MIP_SEIP | MIP_SSIP | MIP_STIP
    csrc mip, t0
    csrw mie, zero
    csrw mideleg, zero
    j pass

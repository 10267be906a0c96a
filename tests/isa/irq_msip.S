/* Machine software interrupts through the CLINT msip registers (priv spec 3.1.9, ACLINT
 * MSWI): a hart interrupting itself, msip holding only bit 0, MSIP read-only in mip, and
 * inter-processor interrupts between two harts, including waking a hart from wfi.
 * smp: 2 */
#include "common.h"

    .text
    .globl test_main
test_main:
    li s0, CLINT_MSIP(0)

    /* ---- self IPI ---- */
    TESTNUM 1
    csrr a0, mip
    CHECK_MASKED a0, MIP_MSIP, 0
    li t0, 1
    sw t0, 0(s0)
    lw a0, 0(s0)
    CHECK_EQ a0, 1
    WAIT_CSR_SET mip, MIP_MSIP, "MSIP not pending after msip = 1"
    TESTNUM 2                           /* mip.MSIP is read-only */
    li t0, MIP_MSIP
    csrc mip, t0
    csrr a0, mip
    CHECK_MASKED a0, MIP_MSIP, MIP_MSIP
    TESTNUM 3
    CLEAR_TRAPS
    li t0, MIP_MSIP
    csrs mie, t0
    csrsi mstatus, MSTATUS_MIE
    nop
    csrci mstatus, MSTATUS_MIE
    ld a0, HD_MICOUNT(tp)
    CHECK_EQ a0, 1
    CHECK_MCAUSE CAUSE_INTR | IRQ_M_SOFT
    sw zero, 0(s0)
    WAIT_CSR_CLEAR mip, MIP_MSIP, "MSIP still pending after msip = 0"
    TESTNUM 4                           /* only bit 0 of msip exists */
    li t0, -2
    sw t0, 0(s0)
    lw a0, 0(s0)
    CHECK_EQ a0, 0
    csrr a0, mip
    CHECK_MASKED a0, MIP_MSIP, 0
    li t0, -1
    sw t0, 0(s0)
    lw a0, 0(s0)
    CHECK_EQ a0, 1
    sw zero, 0(s0)

    /* ---- hart 0 -> hart 1 ---- */
    TESTNUM 10
    WAIT_WORD_GE h1_ready, 1, "hart 1 did not come up"
    li t0, 1
    sw t0, 4(s0)                        /* msip[1] */
    WAIT_WORD_GE h1_got, 1, "hart 1 did not take the IPI"
    la t0, h1_cause
    ld a0, 0(t0)
    CHECK_EQ a0, CAUSE_INTR | IRQ_M_SOFT
    lw a0, 4(s0)                        /* hart 1 cleared its msip */
    CHECK_EQ a0, 0
    csrr a0, mip                        /* our own MSIP was never raised */
    CHECK_MASKED a0, MIP_MSIP, 0

    /* ---- hart 1 -> hart 0, waking hart 0 from wfi with MIE = 0 ---- */
    TESTNUM 11
    CLEAR_TRAPS
    li t0, MIP_MSIP
    csrs mie, t0
    la t0, h0_waiting
    li t1, 1
    sd t1, 0(t0)                        /* hart 1 sends once it sees this */
    DEADLINE_START
1:  wfi
    csrr a0, mip
    andi a0, a0, MIP_MSIP
    bnez a0, 2f
    DEADLINE_CHECK "wfi did not end with the IPI from hart 1"
    j 1b
2:  ld a0, HD_MCOUNT(tp)                /* MIE = 0: no trap */
    CHECK_EQ a0, 0
    sw zero, 0(s0)
    WAIT_CSR_CLEAR mip, MIP_MSIP, "MSIP still pending after msip = 0"
    csrw mie, zero

    /* ---- several IPIs while masked collapse into one pending bit ---- */
    TESTNUM 12
    la t0, h1_cmd
    li t1, 2
    sd t1, 0(t0)
    WAIT_WORD_GE h1_done, 2, "hart 1 did not finish"
    WAIT_CSR_SET mip, MIP_MSIP, "IPIs from hart 1 not pending"
    CLEAR_TRAPS
    li t0, MIP_MSIP
    csrs mie, t0
    csrsi mstatus, MSTATUS_MIE
    nop
    csrci mstatus, MSTATUS_MIE
    ld a0, HD_MICOUNT(tp)
    CHECK_EQ a0, 1
    sw zero, 0(s0)
    csrw mie, zero
    j pass

/* ---- hart 1 ---- */
    .globl test_secondary
test_secondary:
    ld t0, HD_HARTID(tp)
    li t1, 1
    bne t0, t1, park                    /* only hart 1 takes part */
    CLEAR_TRAPS
    li t0, MIP_MSIP
    csrs mie, t0
    csrsi mstatus, MSTATUS_MIE
    la t0, h1_ready
    li t1, 1
    sd t1, 0(t0)
1:  wfi                                 /* interrupt handled by the runtime, then here */
    ld t0, HD_MICOUNT(tp)
    beqz t0, 1b
    csrci mstatus, MSTATUS_MIE
    li s0, CLINT_MSIP(0)
    sw zero, 4(s0)                      /* clear our own msip */
    ld t0, HD_MILOG(tp)
    la t1, h1_cause
    sd t0, 0(t1)
    fence rw, rw
    la t1, h1_got
    li t0, 1
    sd t0, 0(t1)
    /* wait for hart 0 to sit in wfi, then interrupt it */
    WAIT_WORD_GE h0_waiting, 1, "hart 1: hart 0 never waited"
    li t0, 1
    sw t0, 0(s0)
    /* on command, send three IPIs in a row */
    WAIT_WORD_GE h1_cmd, 2, "hart 1: no second command"
    li t0, 1
    sw t0, 0(s0)
    sw t0, 0(s0)
    sw t0, 0(s0)
    fence rw, rw
    la t1, h1_done
    li t0, 2
    sd t0, 0(t1)
    j park

    .data
    .balign 64
h1_ready:   .dword 0
h1_got:     .dword 0
h1_cause:   .dword 0
h0_waiting: .dword 0
h1_cmd:     .dword 0
h1_done:    .dword 0

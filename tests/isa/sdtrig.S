/* Debug triggers (Sdtrig, RISC-V debug spec 1.0 ch. 5): tselect/tdata1/tdata2/tinfo with
 * mcontrol6 (type 6, 5.7.17) address triggers raising breakpoint exceptions (action 0):
 * execute, load and store matches (equal, napot), the m/s/u mode bits, the hit bit, type 0
 * written becoming "disabled", and precise state: epc = the instruction, tval = the matching
 * address, the register of a load and the memory of a store unchanged.
 * On QEMU (7.2) the parts it does not implement are skipped (IF_QEMU): tval of a trigger
 * breakpoint (0 there), hit0, type 15 on writing type 0, partial overlaps, napot ranges
 * (an equal match with an 8-byte watch there) and holding off M-mode triggers while
 * mstatus.MIE=0 (5.4). */
#include "common.h"

#define CSR_TSELECT 0x7a0
#define CSR_TDATA1  0x7a1
#define CSR_TDATA2  0x7a2
#define CSR_TINFO   0x7a4
#define MC6         (6 << 60)
#define MC6_HIT0    (1 << 22)
#define MC6_NAPOT   (1 << 7)
#define MC6_M       (1 << 6)
#define MC6_S       (1 << 4)
#define MC6_U       (1 << 3)
#define MC6_X       (1 << 2)
#define MC6_ST      (1 << 1)
#define MC6_LD      (1 << 0)
#define DATA        (SCRATCH_BASE + 0x1000)

/* Arm trigger `idx` with tdata1 = `t1` and tdata2 = the value in register `addr`. */
.macro ARM idx, t1, addr
    li t0, \idx
    csrw CSR_TSELECT, t0
    csrw CSR_TDATA1, zero
    csrw CSR_TDATA2, \addr
    li t0, \t1
    csrw CSR_TDATA1, t0
.endm
.macro DISARM idx
    li t0, \idx
    csrw CSR_TSELECT, t0
    csrw CSR_TDATA1, zero
.endm

/* A trigger breakpoint's tval: the address (vessel); QEMU 7.2 writes 0. */
.macro CHECK_TVAL reg
    ld t5, HD_MTVAL(tp)
    IF_QEMU .Ltv\@
    CHECK_EQR t5, \reg
.Ltv\@:
.endm

    .text
    .globl test_main
test_main:
    /* ---- tinfo, tselect ---- */
    TESTNUM 1
    csrr a0, CSR_TINFO
    CHECK_MASKED a0, (1 << 6), (1 << 6) /* mcontrol6 supported */
    li t0, 1
    csrw CSR_TSELECT, t0
    csrr a0, CSR_TSELECT
    CHECK_EQ a0, 1                      /* at least two triggers */
    csrw CSR_TSELECT, zero

    /* ---- type 0 written: a trigger that can never fire, read back as type 15 ---- */
    TESTNUM 2
    IF_QEMU 1f
    csrw CSR_TDATA1, zero
    csrr a0, CSR_TDATA1
    srli a0, a0, 60
    CHECK_EQ a0, 15
1:

    /* ---- execute trigger in U: fires before the instruction, the one before retired ---- */
    TESTNUM 3
    la a2, 3f
    ARM 0, MC6 | MC6_U | MC6_X, a2
    li a0, 0
    EXPECT_MTRAP 2f
    GOTO_MODE PRV_U, 4f
4:  addi a0, zero, 1
3:  addi a0, a0, 1
    ecall
    CLEAR_EXPECT
    FAIL "execute trigger did not fire"
2:  CHECK_MCAUSE CAUSE_BREAKPOINT
    CHECK_MEPC 3b
    CHECK_TVAL a2
    TESTNUM 4
    CHECK_EQ a0, 1
    TESTNUM 5
    IF_QEMU 1f
    csrr a1, CSR_TDATA1
    CHECK_MASKED a1, MC6_HIT0, MC6_HIT0
1:  DISARM 0

    /* ---- load trigger in S, equal match: the register is not written ---- */
    li a2, DATA + 8
    ARM 1, MC6 | MC6_S | MC6_LD, a2
    li a3, DATA
    li a1, 0x5a5a
    EXPECT_EXC_IN(PRV_S, 6, CAUSE_BREAKPOINT, ld a1, 8(a3))
    CHECK_TVAL a2
    CHECK_EQ a1, 0x5a5a
    /* a store does not match a load trigger, nor a load of other bytes */
    RUN_IN(PRV_S, 7, sd a1, 8(a3); ld a0, 16(a3); lw a0, 4(a3))
    /* a misaligned load that covers the address only in part */
    IF_QEMU 1f
    EXPECT_EXC_IN(PRV_S, 8, CAUSE_BREAKPOINT, ld a1, 5(a3))
    CHECK_TVAL a2
1:  DISARM 1

    /* ---- store trigger in U, napot over 8 bytes: memory unchanged ---- */
    li a2, DATA + 0x40 + 3
    ARM 2, MC6 | MC6_U | MC6_ST | MC6_NAPOT, a2
    li a3, DATA
    li a1, -1
    EXPECT_EXC_IN(PRV_U, 9, CAUSE_BREAKPOINT, sw a1, 0x44(a3))
    li a2, DATA + 0x44
    CHECK_TVAL a2
    li a3, DATA
    lw a0, 0x44(a3)
    CHECK_EQ a0, 0
    /* just outside the range, and a load: no trap (QEMU 7.2 implements napot as an equal
     * match with an 8-byte watch, so stores at +0x48 fire there) */
    IF_QEMU 1f
    RUN_IN(PRV_U, 10, sd a1, 0x48(a3); sd a1, 0x38(a3); ld a0, 0x40(a3))
    ld a0, 0x48(a3)
    CHECK_EQ a0, -1
1:
    /* U only: the same store in S does not fire */
    RUN_IN(PRV_S, 11, sw a1, 0x40(a3))
    DISARM 2

    /* ---- AMO matches a store trigger ---- */
    li a2, DATA + 0x80
    ARM 0, MC6 | MC6_S | MC6_ST, a2
    li a3, DATA + 0x80
    li a1, 1
    EXPECT_EXC_IN(PRV_S, 12, CAUSE_BREAKPOINT, amoadd.d a0, a1, (a3))
    CHECK_TVAL a2
    ld a0, 0(a3)
    CHECK_EQ a0, 0
    DISARM 0

    /* ---- M-mode triggers are held off while mstatus.MIE = 0 (5.4) ---- */
    TESTNUM 13
    IF_QEMU 1f
    la a2, 2f
    ARM 0, MC6 | MC6_M | MC6_X, a2
    csrci mstatus, MSTATUS_MIE
2:  nop
    DISARM 0
1:

    /* ---- in M with MIE = 1 it fires ---- */
    TESTNUM 14
    li a2, DATA + 0x100
    ARM 3, MC6 | MC6_M | MC6_LD, a2
    EXPECT_MTRAP 2f
    csrsi mstatus, MSTATUS_MIE
    li a3, DATA + 0x100
3:  lb a0, 0(a3)
    CLEAR_EXPECT
    FAIL "M-mode load trigger did not fire"
2:  CHECK_MCAUSE CAUSE_BREAKPOINT
    CHECK_MEPC 3b
    CHECK_TVAL a2
    DISARM 3
    j pass

/* RV64A: LR/SC (success, failure after any SC, SC with no reservation), every AMO in .w and
 * .d (.w results sign-extended, .w operands use only their low 32 bits), aq/rl variants, and
 * misaligned AMO / LR addresses (misaligned or access fault; unpriv spec "Zaamo"/"Zalrsc").
 * QEMU 7.2 reports a misaligned AMO as a *load* address-misaligned exception (cause 4);
 * that is tolerated on QEMU only. */
#include "common.h"

/* `inst` on a word initialised to `init` (upper neighbour word = sentinel) with `operand`:
 * rd must be `old` (sign-extended), memory `new`, neighbour untouched. */
.macro AMO_W n, inst, init, operand, old, new
    TESTNUM \n
    la s0, amo_data
    li t0, 0xa5a5a5a5a5a5a5a5
    sd t0, 0(s0)
    li t0, \init
    sw t0, 0(s0)
    li a1, \operand
    \inst a0, a1, (s0)
    CHECK_EQ a0, \old
    lwu a2, 0(s0)
    CHECK_EQ a2, \new
    lwu a2, 4(s0)
    CHECK_EQ a2, 0xa5a5a5a5
.endm

/* Same on the upper word of a doubleword (address = base + 4). */
.macro AMO_W_HI n, inst, init, operand, old, new
    TESTNUM \n
    la s0, amo_data
    li t0, 0x5a5a5a5a5a5a5a5a
    sd t0, 0(s0)
    li t0, \init
    sw t0, 4(s0)
    li a1, \operand
    addi s1, s0, 4
    \inst a0, a1, (s1)
    CHECK_EQ a0, \old
    lwu a2, 4(s0)
    CHECK_EQ a2, \new
    lwu a2, 0(s0)
    CHECK_EQ a2, 0x5a5a5a5a
.endm

.macro AMO_D n, inst, init, operand, old, new
    TESTNUM \n
    la s0, amo_data
    li t0, 0xa5a5a5a5a5a5a5a5
    sd t0, 8(s0)
    li t0, \init
    sd t0, 0(s0)
    li a1, \operand
    \inst a0, a1, (s0)
    CHECK_EQ a0, \old
    ld a2, 0(s0)
    CHECK_EQ a2, \new
    ld a2, 8(s0)
    CHECK_EQ a2, 0xa5a5a5a5a5a5a5a5
.endm

    .text
    .globl test_main
test_main:
    la s0, amo_data

    /* ---- LR/SC word ---- */
    TESTNUM 1                           /* lr.w sign-extends */
    li t0, 0x80000001
    sw t0, 0(s0)
    lr.w a0, (s0)
    CHECK_EQ a0, 0xffffffff80000001
    TESTNUM 2                           /* sc.w right after lr.w succeeds */
    li a1, 0x12345678
    sc.w a2, a1, (s0)
    CHECK_EQ a2, 0
    lwu a0, 0(s0)
    CHECK_EQ a0, 0x12345678
    TESTNUM 3                           /* that sc consumed the reservation: next sc fails */
    li a1, 0x55555555
    sc.w a2, a1, (s0)
    CHECK_NE a2, 0
    lwu a0, 0(s0)
    CHECK_EQ a0, 0x12345678             /* and did not write */
    TESTNUM 4                           /* sc.w writes only 32 bits */
    li t0, 0x1111111122222222
    sd t0, 0(s0)
    lr.w a0, (s0)
    li a1, 0xffffffff33333333
    sc.w a2, a1, (s0)
    CHECK_EQ a2, 0
    ld a0, 0(s0)
    CHECK_EQ a0, 0x1111111133333333
    CHECK_EQ a1, 0xffffffff33333333     /* source register untouched */

    /* ---- LR/SC doubleword ---- */
    TESTNUM 10
    li t0, 0x8000000000000001
    sd t0, 0(s0)
    lr.d a0, (s0)
    CHECK_EQ a0, 0x8000000000000001
    TESTNUM 11
    li a1, 0x0123456789abcdef
    sc.d a2, a1, (s0)
    CHECK_EQ a2, 0
    ld a0, 0(s0)
    CHECK_EQ a0, 0x0123456789abcdef
    TESTNUM 12                          /* SC with no reservation fails, memory unchanged */
    li a1, 42
    sc.d a2, a1, (s0)
    CHECK_NE a2, 0
    ld a0, 0(s0)
    CHECK_EQ a0, 0x0123456789abcdef
    TESTNUM 13                          /* an intervening SC (to another address) invalidates */
    lr.d a0, (s0)
    li a1, 7
    addi s1, s0, 64
    sc.d a3, a1, (s1)                   /* outcome either way, but it clears the reservation */
    li a1, 9
    sc.d a2, a1, (s0)
    CHECK_NE a2, 0
    ld a0, 0(s0)
    CHECK_EQ a0, 0x0123456789abcdef
    TESTNUM 14                          /* after a successful SC, every later SC fails (failed SCs too) */
    lr.d a0, (s0)
    sc.d a2, a0, (s0)
    CHECK_EQ a2, 0
    sc.d a2, a0, (s0)
    CHECK_NE a2, 0
    sc.d a2, a0, (s0)
    CHECK_NE a2, 0
    TESTNUM 15                          /* rd == rs2: value stored before rd is written */
    lr.d a0, (s0)
    li a1, 0x77
    sc.d a1, a1, (s0)
    CHECK_EQ a1, 0
    ld a0, 0(s0)
    CHECK_EQ a0, 0x77
    TESTNUM 16                          /* a CAS-style increment loop */
    sd zero, 0(s0)
    li s1, 100
1:  lr.d a0, (s0)
    addi a0, a0, 3
    sc.d a2, a0, (s0)
    bnez a2, 1b
    addi s1, s1, -1
    bnez s1, 1b
    ld a0, 0(s0)
    CHECK_EQ a0, 300
    TESTNUM 17                          /* aq/rl encodings */
    li t0, 5
    sd t0, 0(s0)
    lr.d.aq a0, (s0)
    addi a0, a0, 1
    sc.d.rl a2, a0, (s0)
    CHECK_EQ a2, 0
    lr.d.aqrl a0, (s0)
    addi a0, a0, 1
    sc.d.aqrl a2, a0, (s0)
    CHECK_EQ a2, 0
    lr.w.aq a0, (s0)
    addi a0, a0, 1
    sc.w.rl a2, a0, (s0)
    CHECK_EQ a2, 0
    lr.w.aqrl a0, (s0)
    addi a0, a0, 1
    sc.w.aqrl a2, a0, (s0)
    CHECK_EQ a2, 0
    ld a0, 0(s0)
    CHECK_EQ a0, 9

    /* ---- AMO .w ---- */
    AMO_W 20, amoswap.w, 0x80000000, 0x12345678, 0xffffffff80000000, 0x12345678
    AMO_W 21, amoswap.w, 0x7fffffff, 0xffffffff87654321, 0x7fffffff, 0x87654321
    AMO_W 22, amoadd.w, 0x7fffffff, 1, 0x7fffffff, 0x80000000
    AMO_W 23, amoadd.w, 0xffffffff, 0x0000000100000001, 0xffffffffffffffff, 0
    AMO_W 24, amoadd.w, 0x80000000, 0xffffffff, 0xffffffff80000000, 0x7fffffff
    AMO_W 25, amoxor.w, 0xff00ff00, 0x0ff00ff0, 0xffffffffff00ff00, 0xf0f0f0f0
    AMO_W 26, amoand.w, 0xff00ff00, 0x0ff00ff0, 0xffffffffff00ff00, 0x0f000f00
    AMO_W 27, amoor.w, 0xff00ff00, 0x0ff00ff0, 0xffffffffff00ff00, 0xfff0fff0
    AMO_W 28, amomin.w, 0x80000000, 1, 0xffffffff80000000, 0x80000000
    AMO_W 29, amomin.w, 5, 0xfffffffd, 5, 0xfffffffd           /* -3 as a 32-bit value */
    AMO_W 30, amomin.w, 5, 0x0000000100000003, 5, 3
    AMO_W 31, amomax.w, 0x80000000, 1, 0xffffffff80000000, 1
    AMO_W 32, amomax.w, 5, 0xfffffffd, 5, 5
    AMO_W 33, amomax.w, 0xfffffffe, 0x00000000ffffffff, 0xfffffffffffffffe, 0xffffffff
    AMO_W 34, amominu.w, 0x80000000, 1, 0xffffffff80000000, 1
    AMO_W 35, amominu.w, 5, 0xfffffffd, 5, 5
    AMO_W 36, amominu.w, 2, 0xffffffff00000001, 2, 1
    AMO_W 37, amomaxu.w, 0x80000000, 1, 0xffffffff80000000, 0x80000000
    AMO_W 38, amomaxu.w, 5, 0xfffffffd, 5, 0xfffffffd
    AMO_W 39, amomaxu.w, 0xffffffff, 0x80000000, 0xffffffffffffffff, 0xffffffff
    AMO_W_HI 40, amoadd.w, 0xfffffff0, 0x20, 0xfffffffffffffff0, 0x10
    AMO_W_HI 41, amoswap.w, 0x12345678, 0x9abcdef0, 0x12345678, 0x9abcdef0
    AMO_W 42, amoadd.w.aq, 1, 2, 1, 3
    AMO_W 43, amoadd.w.rl, 1, 2, 1, 3
    AMO_W 44, amoor.w.aqrl, 1, 2, 1, 3

    /* ---- AMO .d ---- */
    AMO_D 50, amoswap.d, 0x8000000000000000, 0x0123456789abcdef, 0x8000000000000000, 0x0123456789abcdef
    AMO_D 51, amoadd.d, 0x7fffffffffffffff, 1, 0x7fffffffffffffff, 0x8000000000000000
    AMO_D 52, amoadd.d, 0xffffffffffffffff, 1, 0xffffffffffffffff, 0
    AMO_D 53, amoadd.d, 0x00000000ffffffff, 1, 0x00000000ffffffff, 0x100000000
    AMO_D 54, amoxor.d, 0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0, 0xff00ff00ff00ff00, 0xf0f0f0f0f0f0f0f0
    AMO_D 55, amoand.d, 0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0, 0xff00ff00ff00ff00, 0x0f000f000f000f00
    AMO_D 56, amoor.d, 0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0, 0xff00ff00ff00ff00, 0xfff0fff0fff0fff0
    AMO_D 57, amomin.d, 0x8000000000000000, 1, 0x8000000000000000, 0x8000000000000000
    AMO_D 58, amomin.d, 5, -3, 5, -3
    AMO_D 59, amomin.d, 0x00000000ffffffff, 0x100000000, 0xffffffff, 0xffffffff
    AMO_D 60, amomax.d, 0x8000000000000000, 1, 0x8000000000000000, 1
    AMO_D 61, amomax.d, 5, -3, 5, 5
    AMO_D 62, amominu.d, 0x8000000000000000, 1, 0x8000000000000000, 1
    AMO_D 63, amominu.d, 5, -3, 5, 5
    AMO_D 64, amomaxu.d, 0x8000000000000000, 1, 0x8000000000000000, 0x8000000000000000
    AMO_D 65, amomaxu.d, 5, -3, 5, -3
    AMO_D 66, amoadd.d.aq, 10, 20, 10, 30
    AMO_D 67, amoswap.d.rl, 10, 20, 10, 20
    AMO_D 68, amomaxu.d.aqrl, 10, 20, 10, 20

    /* rd = x0: memory still updated */
    TESTNUM 70
    li t0, 40
    sd t0, 0(s0)
    li a1, 2
    amoadd.d x0, a1, (s0)
    ld a0, 0(s0)
    CHECK_EQ a0, 42
    /* rd == rs2 */
    TESTNUM 71
    li a1, 8
    amoadd.d a1, a1, (s0)
    CHECK_EQ a1, 42
    ld a0, 0(s0)
    CHECK_EQ a0, 50

    /* ---- misaligned addresses: misaligned (4/6) or access fault (5/7); mtval = address
     * (or 0, which the spec also allows) ---- */
    TESTNUM 80
    addi s1, s0, 2
    EXPECT_MTRAP 1f
2:  amoadd.w a0, a1, (s1)
    CLEAR_EXPECT
    FAIL "misaligned amoadd.w did not trap"
1:  ld a0, HD_MCAUSE(tp)
    CHECK_EQ2_QEMU a0, CAUSE_MISALIGNED_STORE, CAUSE_STORE_ACCESS, CAUSE_MISALIGNED_LOAD
    CHECK_MEPC 2b
    ld a0, HD_MTVAL(tp)
    beqz a0, 3f
    CHECK_EQR a0, s1
3:
    TESTNUM 81
    addi s1, s0, 4
    EXPECT_MTRAP 1f
2:  amoswap.d a0, a1, (s1)
    CLEAR_EXPECT
    FAIL "misaligned amoswap.d did not trap"
1:  ld a0, HD_MCAUSE(tp)
    CHECK_EQ2_QEMU a0, CAUSE_MISALIGNED_STORE, CAUSE_STORE_ACCESS, CAUSE_MISALIGNED_LOAD
    CHECK_MEPC 2b
    ld a0, HD_MTVAL(tp)
    beqz a0, 3f
    CHECK_EQR a0, s1
3:
    TESTNUM 82
    addi s1, s0, 1
    EXPECT_MTRAP 1f
2:  amomaxu.w a0, a1, (s1)
    CLEAR_EXPECT
    FAIL "misaligned amomaxu.w did not trap"
1:  ld a0, HD_MCAUSE(tp)
    CHECK_EQ2_QEMU a0, CAUSE_MISALIGNED_STORE, CAUSE_STORE_ACCESS, CAUSE_MISALIGNED_LOAD
    TESTNUM 83
    addi s1, s0, 6
    EXPECT_MTRAP 1f
2:  lr.w a0, (s1)
    CLEAR_EXPECT
    FAIL "misaligned lr.w did not trap"
1:  ld a0, HD_MCAUSE(tp)
    CHECK_EQ2 a0, CAUSE_MISALIGNED_LOAD, CAUSE_LOAD_ACCESS
    CHECK_MEPC 2b
    TESTNUM 84
    addi s1, s0, 4
    EXPECT_MTRAP 1f
2:  lr.d a0, (s1)
    CLEAR_EXPECT
    FAIL "misaligned lr.d did not trap"
1:  ld a0, HD_MCAUSE(tp)
    CHECK_EQ2 a0, CAUSE_MISALIGNED_LOAD, CAUSE_LOAD_ACCESS
    TESTNUM 85                          /* the faulting AMO wrote nothing */
    li t0, 0x1122334455667788
    sd t0, 0(s0)
    addi s1, s0, 2
    li a1, -1
    EXPECT_MTRAP 1f
    amoswap.w a0, a1, (s1)
    CLEAR_EXPECT
1:  ld a0, 0(s0)
    CHECK_EQ a0, 0x1122334455667788

    j pass

    .data
    .balign 64
amo_data:
    .space 128

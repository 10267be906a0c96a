/* RV64I base integer instructions: ALU (incl. W forms), shifts, lui/auipc, jal/jalr,
 * branches, loads/stores of every width, x0 as destination, fence. */
#include "common.h"

#define BR_TAKEN(n, inst, v1, v2)                                                                  \
    TESTNUM n; li a1, v1; li a2, v2; inst a1, a2, 1f; FAIL_BRANCH; 1:
#define BR_NOT_TAKEN(n, inst, v1, v2)                                                              \
    TESTNUM n; li a1, v1; li a2, v2; inst a1, a2, 1f; j 2f; 1: FAIL_BRANCH; 2:

.macro FAIL_BRANCH
    FAIL "branch went the wrong way"
.endm

    .text
    .globl test_main
test_main:
    /* ---- add / sub ---- */
    TEST_RR(1, add, 0x0, 0x0, 0x0)
    TEST_RR(2, add, 0x2, 0x1, 0x1)
    TEST_RR(3, add, 0xa, 0x3, 0x7)
    TEST_RR(4, add, 0xffffffffffff8000, 0x0, 0xffffffffffff8000)
    TEST_RR(5, add, 0x7fffffffffffffff, 0x7ffffffffffffffe, 0x1)
    TEST_RR(6, add, 0x8000000000000000, 0x7fffffffffffffff, 0x1)
    TEST_RR(7, add, 0x0, 0xffffffffffffffff, 0x1)
    TEST_RR(8, add, 0x80000000, 0x7fffffff, 0x1)
    TEST_RR_SRC1_EQ_DEST(9, add, 24, 13, 11)
    TEST_RR_SRC2_EQ_DEST(10, add, 25, 14, 11)
    TEST_RR_SRC12_EQ_DEST(11, add, 26, 13)
    TEST_RR(12, sub, 0x0, 0x3, 0x3)
    TEST_RR(13, sub, 0xfffffffffffffffc, 0x3, 0x7)
    TEST_RR(14, sub, 0x8000000000000000, 0x0, 0x8000000000000000)
    TEST_RR(15, sub, 0x7fffffffffffffff, 0x8000000000000000, 0x1)
    TEST_RR(16, sub, 0x1, 0x0, 0xffffffffffffffff)
    TEST_RR_SRC12_EQ_DEST(17, sub, 0, 13)

    /* ---- addw / subw: 32-bit result sign-extended ---- */
    TEST_RR(20, addw, 0xffffffff80000000, 0x7fffffff, 0x1)
    TEST_RR(21, addw, 0x0, 0xffffffff, 0x1)
    TEST_RR(22, addw, 0x2, 0x1234567800000001, 0x0000000100000001)
    TEST_RR(23, addw, 0xffffffff80000000, 0x80000000, 0x0)
    TEST_RR(24, addw, 0x7fffffff, 0xffffffff80000000, 0xffffffffffffffff)
    TEST_RR(25, subw, 0xffffffff80000000, 0x0, 0x80000000)
    TEST_RR(26, subw, 0x7fffffff, 0xffffffff80000000, 0x1)
    TEST_RR(27, subw, 0xfffffffffffffffc, 0x3, 0x7)
    TEST_RR(28, subw, 0x0, 0x500000003, 0x3)

    /* ---- addi / addiw ---- */
    TEST_RI(30, addi, 0x0, 0x0, 0)
    TEST_RI(31, addi, 0xa, 0x3, 7)
    TEST_RI(32, addi, 0xfffffffffffff800, 0x0, -2048)
    TEST_RI(33, addi, 0x7ff, 0x0, 2047)
    TEST_RI(34, addi, 0x8000000000000000, 0x7fffffffffffffff, 1)
    TEST_RI(35, addi, 0xffffffffffffffff, 0x0, -1)
    TEST_RI_SRC1_EQ_DEST(36, addi, 24, 13, 11)
    TEST_RI(37, addiw, 0xffffffff80000000, 0x7fffffff, 1)
    TEST_RI(38, addiw, 0x7ffff7ff, 0xffffffff7fffffff, -2048)
    TEST_RI(39, addiw, 0xffffffffffffffff, 0x100000000, -1)
    TEST_RI(40, addiw, 0x5, 0xabcdef0000000004, 1)

    /* ---- logic ---- */
    TEST_RR(45, and, 0x0f000f00, 0xff00ff00, 0x0f0f0f0f)
    TEST_RR(46, and, 0xf000f000f000f000, 0xff00ff00ff00ff00, 0xf0f0f0f0f0f0f0f0)
    TEST_RR(47, or, 0xff0fff0f, 0xff00ff00, 0x0f0f0f0f)
    TEST_RR(48, or, 0xfff0fff0fff0fff0, 0xff00ff00ff00ff00, 0xf0f0f0f0f0f0f0f0)
    TEST_RR(49, xor, 0xf00ff00f, 0xff00ff00, 0x0f0f0f0f)
    TEST_RR(50, xor, 0x0ff00ff00ff00ff0, 0xff00ff00ff00ff00, 0xf0f0f0f0f0f0f0f0)
    TEST_RI(51, andi, 0xff00ff00ff00ff00, 0xff00ff00ff00ff00, -1)
    TEST_RI(52, andi, 0x000000000000070f, 0xffffffffffffff0f, 0x70f)
    TEST_RI(53, andi, 0x0, 0xff00ff00ff00f0ff, 0x700)
    TEST_RI(54, ori, 0xffffffffffffff0f, 0xff00ff00, -241)
    TEST_RI(55, ori, 0xff00ff00ff00fff0, 0xff00ff00ff00ff00, 0x0f0)
    TEST_RI(56, xori, 0xffffffffff00f00f, 0x0000000000ff0f00, -241)
    TEST_RI(57, xori, 0x00ff0ff0, 0x00ff0f00, 0x0f0)
    TEST_RI(58, xori, 0xffffffffffffffff, 0x0, -1)

    /* ---- slt / sltu / slti / sltiu ---- */
    TEST_RR(60, slt, 0, 0x0, 0x0)
    TEST_RR(61, slt, 1, 0xffffffffffffffff, 0x0)
    TEST_RR(62, slt, 0, 0x0, 0xffffffffffffffff)
    TEST_RR(63, slt, 1, 0x8000000000000000, 0x7fffffffffffffff)
    TEST_RR(64, slt, 0, 0x7fffffffffffffff, 0x8000000000000000)
    TEST_RR(65, slt, 1, 0xfffffffffffffffe, 0xffffffffffffffff)
    TEST_RR(66, sltu, 0, 0xffffffffffffffff, 0x0)
    TEST_RR(67, sltu, 1, 0x0, 0xffffffffffffffff)
    TEST_RR(68, sltu, 0, 0x8000000000000000, 0x7fffffffffffffff)
    TEST_RR(69, sltu, 1, 0x7fffffffffffffff, 0x8000000000000000)
    TEST_RR(70, sltu, 0, 0x5, 0x5)
    TEST_RI(71, slti, 1, 0xffffffffffffffff, 0)
    TEST_RI(72, slti, 0, 0x0, -1)
    TEST_RI(73, slti, 1, 0x8000000000000000, -2048)
    TEST_RI(74, slti, 0, 0x7ff, 2047)
    TEST_RI(75, slti, 1, 0x7fe, 2047)
    TEST_RI(76, sltiu, 1, 0x0, -1)          /* immediate sign-extended, then unsigned */
    TEST_RI(77, sltiu, 0, 0xffffffffffffffff, -1)
    TEST_RI(78, sltiu, 1, 0xfffffffffffffffe, -1)
    TEST_RI(79, sltiu, 0, 0x1, 1)
    TEST_RI(80, sltiu, 1, 0x0, 1)           /* seqz */

    /* ---- 64-bit shifts, amounts 0/1/31/32/63; register amounts use the low 6 bits ---- */
    TEST_RR(90, sll, 0x8000000000000001, 0x8000000000000001, 0)
    TEST_RR(91, sll, 0x2, 0x1, 1)
    TEST_RR(92, sll, 0x80000000, 0x1, 31)
    TEST_RR(93, sll, 0x100000000, 0x1, 32)
    TEST_RR(94, sll, 0x8000000000000000, 0x1, 63)
    TEST_RR(95, sll, 0x8000000000000000, 0x1, 0xffffffffffffffff)
    TEST_RR(96, sll, 0x1, 0x1, 64)
    TEST_RR(97, srl, 0x8000000000000000, 0x8000000000000000, 0)
    TEST_RR(98, srl, 0x100000000, 0x8000000000000000, 31)
    TEST_RR(99, srl, 0x80000000, 0x8000000000000000, 32)
    TEST_RR(100, srl, 0x1, 0x8000000000000000, 63)
    TEST_RR(101, srl, 0x1, 0xffffffffffffffff, 0xffffffffffffffff)
    TEST_RR(102, sra, 0x8000000000000000, 0x8000000000000000, 0)
    TEST_RR(103, sra, 0xffffffff00000000, 0x8000000000000000, 31)
    TEST_RR(104, sra, 0xffffffff80000000, 0x8000000000000000, 32)
    TEST_RR(105, sra, 0xffffffffffffffff, 0x8000000000000000, 63)
    TEST_RR(106, sra, 0x0, 0x7fffffffffffffff, 63)
    TEST_RR(107, sra, 0x00ffffffffffffff, 0x7fffffffffffffff, 7)
    TEST_RI(108, slli, 0x8000000000000001, 0x8000000000000001, 0)
    TEST_RI(109, slli, 0x80000000, 0x1, 31)
    TEST_RI(110, slli, 0x100000000, 0x1, 32)
    TEST_RI(111, slli, 0x8000000000000000, 0xffffffffffffffff, 63)
    TEST_RI(112, srli, 0xffffffffffffffff, 0xffffffffffffffff, 0)
    TEST_RI(113, srli, 0x1ffffffff, 0xffffffffffffffff, 31)
    TEST_RI(114, srli, 0xffffffff, 0xffffffffffffffff, 32)
    TEST_RI(115, srli, 0x1, 0xffffffffffffffff, 63)
    TEST_RI(116, srai, 0x8000000000000000, 0x8000000000000000, 0)
    TEST_RI(117, srai, 0xffffffff00000000, 0x8000000000000000, 31)
    TEST_RI(118, srai, 0xffffffff80000000, 0x8000000000000000, 32)
    TEST_RI(119, srai, 0xffffffffffffffff, 0x8000000000000000, 63)
    TEST_RI(120, srai, 0x3fffffffffffffff, 0x7fffffffffffffff, 1)
    TEST_RI_SRC1_EQ_DEST(121, srai, 0xfffffffffffffff8, 0xffffffffffffff80, 4)

    /* ---- W shifts: operate on the low 32 bits, amount = low 5 bits, result sign-extended ---- */
    TEST_RR(130, sllw, 0xffffffff80000001, 0x80000001, 0)
    TEST_RR(131, sllw, 0xffffffff80000000, 0x1, 31)
    TEST_RR(132, sllw, 0x1, 0x1, 32)             /* only 5 bits of the amount */
    TEST_RR(133, sllw, 0xffffffff80000000, 0x1, 63)
    TEST_RR(134, sllw, 0x2468, 0xffffffff00001234, 1)
    TEST_RR(135, srlw, 0xffffffff80000000, 0x80000000, 0)
    TEST_RR(136, srlw, 0x1, 0x80000000, 31)
    TEST_RR(137, srlw, 0xffffffff80000000, 0x80000000, 32)
    TEST_RR(138, srlw, 0x1, 0xffffffff80000000, 63)
    TEST_RR(139, srlw, 0x7fffffff, 0x12345678ffffffff, 1)
    TEST_RR(140, sraw, 0xffffffff80000000, 0x80000000, 0)
    TEST_RR(141, sraw, 0xffffffffffffffff, 0x80000000, 31)
    TEST_RR(142, sraw, 0xffffffff80000000, 0x80000000, 32)
    TEST_RR(143, sraw, 0xffffffffc0000000, 0x80000000, 1)
    TEST_RR(144, sraw, 0x0, 0xffffffff7fffffff, 31)
    TEST_RI(145, slliw, 0xffffffff80000001, 0x80000001, 0)
    TEST_RI(146, slliw, 0xffffffff80000000, 0x1, 31)
    TEST_RI(147, slliw, 0x0, 0x100000000, 1)
    TEST_RI(148, slliw, 0x7ffffffe, 0x3fffffff, 1)
    TEST_RI(149, srliw, 0xffffffff80000000, 0x80000000, 0)
    TEST_RI(150, srliw, 0x1, 0x80000000, 31)
    TEST_RI(151, srliw, 0x7fffffff, 0xfffffffffffffffe, 1)
    TEST_RI(152, srliw, 0x0, 0xffffffff00000000, 4)
    TEST_RI(153, sraiw, 0xffffffff80000000, 0x80000000, 0)
    TEST_RI(154, sraiw, 0xffffffffffffffff, 0x80000000, 31)
    TEST_RI(155, sraiw, 0x3fffffff, 0x7fffffff, 1)
    TEST_RI(156, sraiw, 0xfffffffff8000000, 0x0000000080000000, 4)
    TEST_RI(157, sraiw, 0x0, 0xffffffff00000000, 1)

    /* ---- lui / auipc ---- */
    TEST_CASE(160, a0, 0x0, lui a0, 0)
    TEST_CASE(161, a0, 0xfffffffffffff000, lui a0, 0xfffff)
    TEST_CASE(162, a0, 0x7ffff000, lui a0, 0x7ffff)
    TEST_CASE(163, a0, 0xffffffff80000000, lui a0, 0x80000)
    TEST_CASE(164, a0, 0x12345000, lui a0, 0x12345)
    TESTNUM 165
    la a1, 1f
1:  auipc a0, 0
    CHECK_EQR a0, a1
    TESTNUM 166
    la a1, 1f
1:  auipc a0, 1
    sub a0, a0, a1
    CHECK_EQ a0, 0x1000
    TESTNUM 167
    la a1, 1f
1:  auipc a0, 0xfffff                   /* -4096 */
    sub a0, a0, a1
    CHECK_EQ a0, -4096
    TESTNUM 168
    la a1, 1f
1:  auipc a0, 0x80000                   /* -2 GiB, sign-extended */
    sub a0, a0, a1
    CHECK_EQ a0, 0xffffffff80000000

    /* ---- jal / jalr ---- */
    TESTNUM 170
    li a0, 0
    jal ra, 1f
2:  li a0, 99                           /* skipped */
1:  la a1, 2b
    CHECK_EQR ra, a1                    /* link = pc + 4 */
    CHECK_EQ a0, 0
    TESTNUM 171
    jal x0, 1f
    FAIL "jal x0 did not jump"
1:  TESTNUM 172                         /* backward jal */
    li a0, 0
    j 2f
1:  li a0, 7
    j 3f
2:  jal x0, 1b
3:  CHECK_EQ a0, 7
    TESTNUM 173                         /* jalr with offset */
    la a1, 1f - 8
    jalr t0, 8(a1)
2:  FAIL "jalr did not jump"
1:  la a2, 2b
    CHECK_EQR t0, a2
    TESTNUM 174                         /* jalr negative offset */
    la a1, 1f + 16
    jalr t0, -16(a1)
    FAIL "jalr -16 did not jump"
1:  TESTNUM 175                         /* odd target: bit 0 cleared, no trap */
    la a1, 1f
    addi a1, a1, 1
    jalr t0, 0(a1)
    FAIL "jalr to odd target went wrong"
    .balign 4
1:  TESTNUM 176                         /* odd through the immediate */
    la a1, 1f
    jalr t0, 1(a1)
    FAIL "jalr odd immediate went wrong"
    .balign 4
1:  TESTNUM 177                         /* rd == rs1: target uses the old value */
    la t0, 1f
    jalr t0, 0(t0)
2:  FAIL "jalr rd==rs1 went wrong"
1:  la a1, 2b
    CHECK_EQR t0, a1
    TESTNUM 178                         /* jalr x0 (ret) */
    la ra, 1f
    jalr x0, 0(ra)
    FAIL "jalr x0 went wrong"
1:

    /* ---- branches ---- */
    BR_TAKEN(180, beq, 0, 0)
    BR_TAKEN(181, beq, -1, -1)
    BR_NOT_TAKEN(182, beq, 0, 1)
    BR_NOT_TAKEN(183, beq, 0x100000000, 0)
    BR_TAKEN(184, bne, 0, 1)
    BR_TAKEN(185, bne, 0x100000000, 0)
    BR_NOT_TAKEN(186, bne, -1, -1)
    BR_TAKEN(187, blt, -1, 0)
    BR_TAKEN(188, blt, 0x8000000000000000, 0x7fffffffffffffff)
    BR_NOT_TAKEN(189, blt, 0, -1)
    BR_NOT_TAKEN(190, blt, 5, 5)
    BR_TAKEN(191, bge, 0, -1)
    BR_TAKEN(192, bge, 5, 5)
    BR_NOT_TAKEN(193, bge, -1, 0)
    BR_NOT_TAKEN(194, bge, 0x8000000000000000, 0x7fffffffffffffff)
    BR_TAKEN(195, bltu, 0, -1)
    BR_TAKEN(196, bltu, 0x7fffffffffffffff, 0x8000000000000000)
    BR_NOT_TAKEN(197, bltu, -1, 0)
    BR_NOT_TAKEN(198, bltu, 5, 5)
    BR_TAKEN(199, bgeu, -1, 0)
    BR_TAKEN(200, bgeu, 5, 5)
    BR_NOT_TAKEN(201, bgeu, 0, -1)
    BR_NOT_TAKEN(202, bgeu, 0x7fffffffffffffff, 0x8000000000000000)
    TESTNUM 203                         /* backward taken branch loop */
    li a0, 0
    li a1, 10
1:  addi a0, a0, 1
    bne a0, a1, 1b
    CHECK_EQ a0, 10

    /* ---- loads: sign and zero extension ---- */
    la s0, ldata
    TEST_CASE(210, a0, 0xffffffffffffff80, lb a0, 0(s0))
    TEST_CASE(211, a0, 0x7f, lb a0, 1(s0))
    TEST_CASE(212, a0, 0x80, lbu a0, 0(s0))
    TEST_CASE(213, a0, 0xff, lbu a0, 7(s0))
    TEST_CASE(214, a0, 0xffffffffffffff81, lb a0, 15(s0))
    TEST_CASE(215, a0, 0x7f80, lh a0, 0(s0))
    TEST_CASE(216, a0, 0xffffffffffffff81, lh a0, 4(s0))
    TEST_CASE(217, a0, 0xffffffffffffff80, lh a0, 6(s0))
    TEST_CASE(218, a0, 0xff80, lhu a0, 6(s0))
    TEST_CASE(226, a0, 0x2301, lh a0, 2(s0))
    TEST_CASE(227, a0, 0x2301, lhu a0, 2(s0))
    TEST_CASE(219, a0, 0x23017f80, lw a0, 0(s0))
    TEST_CASE(220, a0, 0xffffffffff80ff81, lw a0, 4(s0))
    TEST_CASE(221, a0, 0xff80ff81, lwu a0, 4(s0))
    TEST_CASE(222, a0, 0xff80ff8123017f80, ld a0, 0(s0))
    TEST_CASE(223, a0, 0x8100000000000001, ld a0, 8(s0))
    TEST_CASE(224, a0, 0xff80ff8123017f80, addi s1, s0, 16; ld a0, -16(s1))
    TEST_CASE(225, a0, 0xffffffffff80ff81, addi s1, s0, 2047; lw a0, -2043(s1))

    /* ---- stores of every width, then read back ---- */
    la s0, sdata
    TESTNUM 230
    li a0, 0x1122334455667788
    sd a0, 0(s0)
    li a1, 0xa5
    sb a1, 0(s0)
    ld a0, 0(s0)
    CHECK_EQ a0, 0x11223344556677a5
    TESTNUM 231
    li a1, 0xffffffffffffbeef           /* only the low 16 bits go out */
    sh a1, 2(s0)
    ld a0, 0(s0)
    CHECK_EQ a0, 0x11223344beef77a5
    TESTNUM 232
    li a1, 0xdeadbeefcafef00d
    sw a1, 4(s0)
    ld a0, 0(s0)
    CHECK_EQ a0, 0xcafef00dbeef77a5
    TESTNUM 233
    li a1, 0x0123456789abcdef
    sd a1, 8(s0)
    ld a0, 8(s0)
    CHECK_EQ a0, 0x0123456789abcdef
    ld a0, 0(s0)                        /* neighbour untouched */
    CHECK_EQ a0, 0xcafef00dbeef77a5
    TESTNUM 234
    addi s1, s0, 24
    sb a1, -1(s1)
    lbu a0, 23(s0)
    CHECK_EQ a0, 0xef
    TESTNUM 235
    sh a1, -4(s1)
    lh a0, 20(s0)
    CHECK_EQ a0, 0xffffffffffffcdef
    TESTNUM 236
    sw a1, -8(s1)
    lw a0, 16(s0)
    CHECK_EQ a0, 0xffffffff89abcdef
    TESTNUM 237
    sd zero, 16(s0)
    ld a0, 16(s0)
    CHECK_EQ a0, 0
    TESTNUM 238                         /* the value byte sb/sh pick is the low one */
    li a1, 0x7fffffffffffff00
    sb a1, 0(s0)
    lbu a0, 0(s0)
    CHECK_EQ a0, 0

    /* ---- x0 as destination: writes are discarded, side effects still happen ---- */
    TEST_CASE(240, x0, 0, addi x0, x0, 5)
    TEST_CASE(241, x0, 0, li a1, 7; add x0, a1, a1)
    TEST_CASE(242, x0, 0, lui x0, 0x12345)
    TEST_CASE(243, x0, 0, auipc x0, 0x1)
    TEST_CASE(244, x0, 0, la s0, ldata; ld x0, 0(s0))
    TEST_CASE(245, x0, 0, la s0, ldata; lb x0, 0(s0))
    TESTNUM 246
    jal x0, 1f                          /* jal x0: no link */
1:  CHECK_EQ x0, 0
    TESTNUM 247
    li a0, 0x55
    mv a1, x0
    CHECK_EQ a1, 0
    TESTNUM 248
    addi a0, x0, -1                     /* reading x0 gives 0 */
    CHECK_EQ a0, -1

    /* ---- fences: ordering only, no architectural effect here ---- */
    TESTNUM 250
    li a0, 3
    fence
    fence rw, rw
    fence r, r
    fence w, w
    fence io, io
    fence iorw, iorw
    fence.tso
    .insn i 0x0f, 0, x0, x0, 0x010      /* pause (fence w, 0) */
    fence.i
    addi a0, a0, 1
    CHECK_EQ a0, 4

    j pass

    .data
    .balign 16
ldata:
    .byte 0x80, 0x7f, 0x01, 0x23, 0x81, 0xff, 0x80, 0xff
    .byte 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x81
    .balign 16
sdata:
    .space 32

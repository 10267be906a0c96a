/* RV64M: multiply, high multiplies, divide/remainder (incl. W forms), divide by zero and
 * signed overflow (unpriv spec, "Division Operations": x/0 = all ones, x%0 = x,
 * MIN/-1 = MIN, MIN%-1 = 0; no traps). */
#include "common.h"

#define MIN64 0x8000000000000000
#define MAX64 0x7fffffffffffffff

    .text
    .globl test_main
test_main:
    /* ---- mul: low 64 bits ---- */
    TEST_RR(1, mul, 0x0, 0x0, 0x0)
    TEST_RR(2, mul, 0x1, 0x1, 0x1)
    TEST_RR(3, mul, 0x15, 0x3, 0x7)
    TEST_RR(4, mul, 0xffffffffffff8000, 0x1, 0xffffffffffff8000)
    TEST_RR(5, mul, 0x0, 0x8000000000000000, 0x2)
    TEST_RR(6, mul, 0x1, 0xffffffffffffffff, 0xffffffffffffffff)
    TEST_RR(7, mul, 0xffffffffffee1200, 0x00007e00, 0xb6db6db6db6db6b7)
    TEST_RR(8, mul, 0x8000000000000000, MIN64, 0xffffffffffffffff)
    TEST_RR(9, mul, 0xfffffffe00000001, 0xffffffff, 0xffffffff)
    TEST_RR_SRC1_EQ_DEST(10, mul, 143, 13, 11)
    TEST_RR_SRC12_EQ_DEST(11, mul, 169, 13)

    /* ---- mulh: signed x signed, high 64 bits ---- */
    TEST_RR(20, mulh, 0x0, 0x0, 0x0)
    TEST_RR(21, mulh, 0x0, 0x7, 0x3)
    TEST_RR(22, mulh, 0xffffffffffffffff, 0xffffffffffffffff, 0x1)
    TEST_RR(23, mulh, 0x0, 0xffffffffffffffff, 0xffffffffffffffff)
    TEST_RR(24, mulh, 0x4000000000000000, MIN64, MIN64)
    TEST_RR(25, mulh, 0xc000000000000000, MIN64, MAX64)
    TEST_RR(26, mulh, 0x3fffffffffffffff, MAX64, MAX64)
    TEST_RR(27, mulh, 0x0000000000000001, 0x100000000, 0x100000000)
    TEST_RR(28, mulh, 0xffffffffffffffff, 0xffffffff00000000, 0x100000000)

    /* ---- mulhu: unsigned x unsigned ---- */
    TEST_RR(30, mulhu, 0x0, 0x7, 0x3)
    TEST_RR(31, mulhu, 0xfffffffffffffffe, 0xffffffffffffffff, 0xffffffffffffffff)
    TEST_RR(32, mulhu, 0x0, 0xffffffffffffffff, 0x1)
    TEST_RR(33, mulhu, 0x4000000000000000, MIN64, MIN64)
    TEST_RR(34, mulhu, 0x7ffffffffffffffe, 0xffffffffffffffff, MAX64)
    TEST_RR(35, mulhu, 0x0000000000000001, 0x100000000, 0x100000000)
    TEST_RR(36, mulhu, 0xfffffffe00000001, 0xffffffff00000000, 0xffffffff00000001)

    /* ---- mulhsu: signed rs1 x unsigned rs2 ---- */
    TEST_RR(40, mulhsu, 0x0, 0x7, 0x3)
    TEST_RR(41, mulhsu, 0xffffffffffffffff, 0xffffffffffffffff, 0xffffffffffffffff)
    TEST_RR(42, mulhsu, 0x7ffffffffffffffe, MAX64, 0xffffffffffffffff)
    TEST_RR(43, mulhsu, 0xc000000000000000, MIN64, MIN64)
    TEST_RR(44, mulhsu, 0x8000000000000000, MIN64, 0xffffffffffffffff)
    TEST_RR(45, mulhsu, 0x0, 0x1, 0xffffffffffffffff)
    TEST_RR(46, mulhsu, 0xffffffffffffffff, 0xffffffffffffffff, 0x1)

    /* ---- mulw: low 32 bits of the product, sign-extended ---- */
    TEST_RR(50, mulw, 0x15, 0x3, 0x7)
    TEST_RR(51, mulw, 0xffffffff80000000, 0x40000000, 0x2)
    TEST_RR(52, mulw, 0x1, 0xffffffff, 0xffffffff)
    TEST_RR(53, mulw, 0x0, 0x100000000, 0x100000000)
    TEST_RR(54, mulw, 0x6, 0x1234567800000002, 0xabcdef0000000003)
    TEST_RR(55, mulw, 0x7fffffff, 0x7fffffff, 0x1)

    /* ---- div ---- */
    TEST_RR(60, div, 3, 20, 6)
    TEST_RR(61, div, -3, -20, 6)
    TEST_RR(62, div, -3, 20, -6)
    TEST_RR(63, div, 3, -20, -6)         /* rounds toward zero */
    TEST_RR(64, div, MIN64, MIN64, 1)
    TEST_RR(65, div, MIN64, MIN64, -1)   /* overflow */
    TEST_RR(66, div, -1, MIN64, 0)       /* divide by zero */
    TEST_RR(67, div, -1, 1, 0)
    TEST_RR(68, div, -1, 0, 0)
    TEST_RR(69, div, 0, 5, 7)
    TEST_RR(70, div, -1, -1, 1)
    /* ---- divu ---- */
    TEST_RR(71, divu, 3, 20, 6)
    TEST_RR(72, divu, 3074457345618258599, -20, 6)
    TEST_RR(73, divu, 0, 20, -6)
    TEST_RR(74, divu, 0, -20, -6)
    TEST_RR(75, divu, 1, MIN64, MIN64)
    TEST_RR(76, divu, 0, MIN64, -1)
    TEST_RR(77, divu, -1, MIN64, 0)      /* divide by zero: all ones */
    TEST_RR(78, divu, -1, 0, 0)
    TEST_RR(79, divu, 0xffffffffffffffff, 0xffffffffffffffff, 1)
    /* ---- rem ---- */
    TEST_RR(80, rem, 2, 20, 6)
    TEST_RR(81, rem, -2, -20, 6)         /* sign follows the dividend */
    TEST_RR(82, rem, 2, 20, -6)
    TEST_RR(83, rem, -2, -20, -6)
    TEST_RR(84, rem, 0, MIN64, 1)
    TEST_RR(85, rem, 0, MIN64, -1)       /* overflow */
    TEST_RR(86, rem, MIN64, MIN64, 0)    /* by zero: the dividend */
    TEST_RR(87, rem, 1, 1, 0)
    TEST_RR(88, rem, 0, 0, 0)
    /* ---- remu ---- */
    TEST_RR(90, remu, 2, 20, 6)
    TEST_RR(91, remu, 2, -20, 6)
    TEST_RR(92, remu, 20, 20, -6)
    TEST_RR(93, remu, -20, -20, -6)
    TEST_RR(94, remu, 0, MIN64, 1)
    TEST_RR(95, remu, MIN64, MIN64, -1)
    TEST_RR(96, remu, MIN64, MIN64, 0)
    TEST_RR(97, remu, 1, 1, 0)
    TEST_RR(98, remu, 0, 0, 0)
    TEST_RR_SRC1_EQ_DEST(99, remu, 3, 23, 5)

    /* ---- W forms: 32-bit operands, result sign-extended ---- */
    TEST_RR(100, divw, 3, 20, 6)
    TEST_RR(101, divw, -3, -20, 6)
    TEST_RR(102, divw, 3, -20, -6)
    TEST_RR(103, divw, 0xffffffff80000000, 0x80000000, -1)   /* overflow */
    TEST_RR(104, divw, 0xffffffff80000000, 0x80000000, 1)
    TEST_RR(105, divw, -1, 0x80000000, 0)                    /* by zero */
    TEST_RR(106, divw, -1, 1, 0)
    TEST_RR(107, divw, 2, 0xffffffff00000004, 0x1234567800000002) /* upper bits ignored */
    TEST_RR(108, divw, -1, 0x00000000ffffffff, 0x1)
    TEST_RR(110, divuw, 3, 20, 6)
    TEST_RR(111, divuw, 715827879, 0xffffffec, 6)
    TEST_RR(112, divuw, 0, 20, -6)
    TEST_RR(113, divuw, 0, -20, -6)
    TEST_RR(114, divuw, 0xffffffff80000000, 0x80000000, 1)   /* 0x80000000 sign-extends */
    TEST_RR(115, divuw, 0, 0x80000000, -1)
    TEST_RR(116, divuw, -1, 0x80000000, 0)                   /* by zero: all ones */
    TEST_RR(117, divuw, -1, 0, 0)
    TEST_RR(118, divuw, 0x7fffffff, 0xfffffffe, 0x2)
    TEST_RR(120, remw, 2, 20, 6)
    TEST_RR(121, remw, -2, -20, 6)
    TEST_RR(122, remw, 2, 20, -6)
    TEST_RR(123, remw, -2, -20, -6)
    TEST_RR(124, remw, 0, 0x80000000, 1)
    TEST_RR(125, remw, 0, 0x80000000, -1)                    /* overflow */
    TEST_RR(126, remw, 0xffffffff80000000, 0x80000000, 0)    /* by zero: dividend, sext */
    TEST_RR(127, remw, 1, 1, 0)
    TEST_RR(128, remw, 0xfffffffffffff897, 0xfffffffffffff897, 0)
    TEST_RR(129, remw, 0x1, 0x1234567800000007, 0x3)
    TEST_RR(130, remuw, 2, 20, 6)
    TEST_RR(131, remuw, 2, -20, 6)
    TEST_RR(132, remuw, 20, 20, -6)
    TEST_RR(133, remuw, -20, -20, -6)
    TEST_RR(134, remuw, 0, 0x80000000, 1)
    TEST_RR(135, remuw, 0xffffffff80000000, 0x80000000, -1)
    TEST_RR(136, remuw, 0xffffffff80000000, 0x80000000, 0)   /* by zero: dividend, sext */
    TEST_RR(137, remuw, 1, 1, 0)
    TEST_RR(138, remuw, 0, 0, 0)
    TEST_RR(139, remuw, 0xfffffffffffff897, 0xfffffffffffff897, 0)

    j pass

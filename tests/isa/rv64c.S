/* RV64C: every compressed instruction, written with explicit c.* mnemonics (each assembles
 * to exactly one 16-bit instruction; a few as raw .half encodings), plus c.ebreak and an
 * illegal all-zero halfword. */
#include "common.h"

    .option push
    .option rvc
    .text
    .globl test_main
test_main:
    la s0, cdata
    addi sp, sp, -1024                  /* room for the positive sp offsets below */
    mv s1, sp                           /* restore point for sp */

    /* ---- quadrant 0 ---- */
    TEST_CASE(1, a0, 16, c.addi4spn a0, sp, 16; sub a0, a0, sp)
    TEST_CASE(2, a1, 1020, c.addi4spn a1, sp, 1020; sub a1, a1, sp)
    TEST_CASE(3, s1, 4, .half 0x0044 /* c.addi4spn s1, sp, 4 */; sub s1, s1, sp)
    mv s1, sp
    TEST_CASE(4, a0, 0xffffffff80000001, c.lw a0, 0(s0))            /* sign-extends */
    TEST_CASE(5, a0, 0x7ffffffe, c.lw a0, 4(s0))
    TEST_CASE(6, a0, 0x7ffffffe80000001, c.ld a0, 0(s0))
    TEST_CASE(7, a2, 0x0123456789abcdef, c.ld a2, 8(s0))
    TEST_CASE(8, a0, 0x13579bdf, addi a3, s0, 32; c.lw a0, 124(a3))  /* largest c.lw offset */
    TEST_CASE(9, a0, 0xfedcba9876543210, addi a3, s0, 32; c.ld a0, 248(a3))
    TESTNUM 10
    li a4, 0xffffffffa5a55a5a
    c.sw a4, 16(s0)
    lwu a0, 16(s0)
    CHECK_EQ a0, 0xa5a55a5a
    lwu a0, 20(s0)                      /* neighbour untouched */
    CHECK_EQ a0, 0
    TESTNUM 11
    li a5, 0x1122334455667788
    c.sd a5, 24(s0)
    ld a0, 24(s0)
    CHECK_EQ a0, 0x1122334455667788
    TESTNUM 12                          /* c.fld / c.fsd on fa0..fa5 */
    c.fld fa0, 8(s0)
    fmv.x.d a0, fa0
    CHECK_EQ a0, 0x0123456789abcdef
    c.fsd fa0, 16(s0)
    ld a0, 16(s0)
    CHECK_EQ a0, 0x0123456789abcdef
    addi a3, s0, 32
    c.fld fa5, 248(a3)
    fmv.x.d a0, fa5
    CHECK_EQ a0, 0xfedcba9876543210

    /* ---- quadrant 1 ---- */
    TESTNUM 20
    li a0, 5
    c.nop
    .half 0x0005                        /* c.nop with nzimm: a HINT, executes as nop */
    .half 0x4015                        /* c.li x0, 5: HINT */
    CHECK_EQ a0, 5
    TEST_CASE(21, a0, 12, li a0, 7; c.addi a0, 5)
    TEST_CASE(22, a0, 0xffffffffffffffe7, li a0, 7; c.addi a0, -32)
    TEST_CASE(23, t3, 0x100000000, li t3, 0xffffffff; c.addi t3, 1)  /* full 64-bit add */
    TEST_CASE(24, a0, 0xffffffff80000000, li a0, 0x7fffffff; c.addiw a0, 1)
    TEST_CASE(25, a0, 0xffffffff87654321, li a0, 0x1234567887654321; c.addiw a0, 0) /* sext.w */
    TEST_CASE(26, a0, 0x000000007fffffe0, li a0, 0x80000000; c.addiw a0, -32)
    TEST_CASE(27, a0, 31, c.li a0, 31)
    TEST_CASE(28, t4, 0xffffffffffffffe0, c.li t4, -32)
    TESTNUM 29                          /* c.addi16sp */
    mv s1, sp
    c.addi16sp sp, -64
    sub a0, s1, sp
    CHECK_EQ a0, 64
    c.addi16sp sp, 496
    sub a0, sp, s1
    CHECK_EQ a0, 432
    c.addi16sp sp, -512
    sub a0, s1, sp
    CHECK_EQ a0, 80
    .half 0x6105                        /* c.addi16sp sp, 32 */
    .half 0x6105
    sub a0, s1, sp
    CHECK_EQ a0, 16
    mv sp, s1
    TEST_CASE(30, a0, 0x1000, c.lui a0, 1)
    TEST_CASE(31, a0, 0x1f000, c.lui a0, 31)
    TEST_CASE(32, a0, 0xfffffffffffe0000, c.lui a0, 0xfffe0)        /* nzimm = -32 */
    TEST_CASE(33, s1, 0xfffffffffffff000, .half 0x74fd /* c.lui s1, 0xfffff */)
    mv s1, sp
    TEST_CASE(34, a0, 0x0000000000000001, li a0, 0x8000000000000000; c.srli a0, 63)
    TEST_CASE(35, a0, 0x0000000080000000, li a0, 0x8000000000000000; c.srli a0, 32)
    TEST_CASE(36, a0, 0x4000000000000000, li a0, 0x8000000000000000; c.srli a0, 1)
    TEST_CASE(37, a0, 0xffffffffffffffff, li a0, 0x8000000000000000; c.srai a0, 63)
    TEST_CASE(38, a0, 0xffffffff80000000, li a0, 0x8000000000000000; c.srai a0, 32)
    TEST_CASE(39, a0, 0x0000000000000001, li a0, 0x7fffffffffffffff; c.srai a0, 62)
    TEST_CASE(40, a0, 0x000000000000000a, li a0, 0xfffffffffffffffa; c.andi a0, 15)
    TEST_CASE(41, a0, 0xffffffffffffffe0, li a0, 0xffffffffffffffff; c.andi a0, -32)
    TEST_CASE(42, a0, 0x0, li a0, 0x1234; c.andi a0, 0)
    TEST_CASE(43, a0, 0xfffffffffffffffd, li a0, 2; li a1, 5; c.sub a0, a1)
    TEST_CASE(44, a0, 0xff0ff00f, li a0, 0xff00ff00; li a1, 0x000f0f0f; c.xor a0, a1)
    TEST_CASE(45, a0, 0xff0fff0f, li a0, 0xff00ff00; li a1, 0x000f0f0f; c.or a0, a1)
    TEST_CASE(46, a0, 0x00000f00, li a0, 0xff00ff00; li a1, 0x000f0f0f; c.and a0, a1)
    TEST_CASE(47, a0, 0xffffffff80000000, li a0, 0x17fffffff; li a1, -1; c.subw a0, a1)
    TEST_CASE(48, a0, 0x0000000000000000, li a0, 0x100000000; li a1, 0x200000000; c.subw a0, a1)
    TEST_CASE(49, a0, 0xffffffff80000000, li a0, 0x7fffffff; li a1, 1; c.addw a0, a1)
    TEST_CASE(50, a5, 0x2, li a5, 0x1ffffffff; li a4, 0x3; c.addw a5, a4)

    TESTNUM 51                          /* c.j forward and back */
    li a0, 0
    c.j 2f
1:  addi a0, a0, 1
    c.j 3f
2:  addi a0, a0, 10
    c.j 1b
3:  CHECK_EQ a0, 11
    TESTNUM 52                          /* c.beqz / c.bnez both ways */
    li a0, 0
    li a1, 0
    c.beqz a1, 1f
    FAIL "c.beqz not taken"
1:  li a1, 1
    c.beqz a1, 2f
    addi a0, a0, 1
2:  c.bnez a1, 3f
    FAIL "c.bnez not taken"
3:  li a1, 0
    c.bnez a1, 4f
    addi a0, a0, 2
4:  CHECK_EQ a0, 3
    TESTNUM 53                          /* c.bnez backward loop */
    li a1, 5
    li a0, 0
1:  addi a0, a0, 3
    c.addi a1, -1
    c.bnez a1, 1b
    CHECK_EQ a0, 15

    /* ---- quadrant 2 ---- */
    TEST_CASE(60, a0, 0x8000000000000000, li a0, 1; c.slli a0, 63)
    TEST_CASE(61, t5, 0x100000000, li t5, 1; c.slli t5, 32)
    TEST_CASE(62, s2, 0xfffffffe, li s2, 0x7fffffff; c.slli s2, 1)
    TESTNUM 63                          /* sp-relative loads: lwsp, ldsp, fldsp */
    li t0, 0xfffffffff00dcafe
    sd t0, 8(sp)
    li t0, 0x0ff1ce0ff1ce0ff1
    sd t0, 16(sp)
    li t0, 0x7ff0000000000000
    sd t0, 504(sp)
    li t0, 0x80000000
    sw t0, 252(sp)
    c.lwsp a0, 8(sp)
    CHECK_EQ a0, 0xfffffffff00dcafe
    c.lwsp a0, 252(sp)
    CHECK_EQ a0, 0xffffffff80000000
    c.ldsp a0, 16(sp)
    CHECK_EQ a0, 0x0ff1ce0ff1ce0ff1
    c.ldsp s3, 504(sp)
    CHECK_EQ s3, 0x7ff0000000000000
    c.fldsp ft3, 16(sp)
    fmv.x.d a0, ft3
    CHECK_EQ a0, 0x0ff1ce0ff1ce0ff1
    c.fldsp fs11, 504(sp)
    fmv.x.d a0, fs11
    CHECK_EQ a0, 0x7ff0000000000000
    TESTNUM 64                          /* sp-relative stores: swsp, sdsp, fsdsp */
    sd zero, 24(sp)
    li t1, 0x123456789
    c.swsp t1, 24(sp)
    ld a0, 24(sp)
    CHECK_EQ a0, 0x23456789
    li t1, 0x5555aaaa5555aaaa
    c.sdsp t1, 32(sp)
    ld a0, 32(sp)
    CHECK_EQ a0, 0x5555aaaa5555aaaa
    li t1, 0x3ff8000000000000
    fmv.d.x ft7, t1
    c.fsdsp ft7, 504(sp)
    ld a0, 504(sp)
    CHECK_EQ a0, 0x3ff8000000000000
    c.swsp t1, 252(sp)
    lwu a0, 252(sp)
    CHECK_EQ a0, 0
    TESTNUM 65                          /* c.jr */
    la t2, 1f
    c.jr t2
    FAIL "c.jr did not jump"
1:  TESTNUM 66                          /* c.jalr links pc + 2 */
    la t2, 1f
2:  c.jalr t2
    FAIL "c.jalr did not jump"
1:  la a1, 2b
    addi a1, a1, 2
    CHECK_EQR ra, a1
    TESTNUM 67                          /* c.jalr ra: target read before the link is written */
    la ra, 1f
2:  c.jalr ra
    FAIL "c.jalr ra did not jump"
1:  la a1, 2b
    addi a1, a1, 2
    CHECK_EQR ra, a1
    TESTNUM 68                          /* c.mv, c.add */
    li a1, 0x1234567890
    c.mv a0, a1
    CHECK_EQ a0, 0x1234567890
    li t6, 0x10
    c.mv t3, t6
    c.add t3, a1
    CHECK_EQ t3, 0x12345678a0
    li a0, -1
    li a1, 1
    c.add a0, a1
    CHECK_EQ a0, 0
    TESTNUM 69                          /* c.ret (c.jr ra) */
    jal ra, 1f
    c.j 2f
1:  c.jr ra
    FAIL "c.jr ra went wrong"
2:

    /* ---- c.ebreak: breakpoint trap at its own address; execution resumes after it ---- */
    TESTNUM 70
    EXPECT_MTRAP 1f
2:  c.ebreak
    CLEAR_EXPECT
    FAIL "c.ebreak did not trap"
1:  CHECK_MCAUSE CAUSE_BREAKPOINT
    CHECK_MEPC 2b
    ld a0, HD_MTVAL(tp)                 /* mtval: 0 or the faulting pc */
    beqz a0, 3f
    la a1, 2b
    CHECK_EQR a0, a1
3:
    /* ---- the all-zero halfword is illegal ---- */
    TESTNUM 71
    EXPECT_MTRAP 1f
2:  .half 0x0000
    CLEAR_EXPECT
    FAIL "0x0000 did not trap"
1:  CHECK_MCAUSE CAUSE_ILLEGAL
    CHECK_MEPC 2b
    CHECK_MTVAL 0
    /* ---- c.addi4spn with nzuimm = 0 is reserved (illegal) ---- */
    TESTNUM 72
    EXPECT_MTRAP 1f
2:  .half 0x0008                        /* c.addi4spn a0, sp, 0 */
    CLEAR_EXPECT
    FAIL "c.addi4spn with 0 did not trap"
1:  CHECK_MCAUSE CAUSE_ILLEGAL
    CHECK_MEPC 2b
    /* ---- c.lwsp with rd = x0 is reserved ---- */
    TESTNUM 73
    EXPECT_MTRAP 1f
2:  .half 0x4002                        /* c.lwsp x0, 0(sp) */
    CLEAR_EXPECT
    FAIL "c.lwsp x0 did not trap"
1:  CHECK_MCAUSE CAUSE_ILLEGAL
    /* ---- c.jr with rs1 = x0 is reserved ---- */
    TESTNUM 74
    EXPECT_MTRAP 1f
2:  .half 0x8002                        /* c.jr x0 */
    CLEAR_EXPECT
    FAIL "c.jr x0 did not trap"
1:  CHECK_MCAUSE CAUSE_ILLEGAL

    TESTNUM 75                          /* sp intact after all that */
    CHECK_EQR sp, s1
    addi sp, sp, 1024
    j pass
    .option pop

    .data
    .balign 64
cdata:
    .word 0x80000001, 0x7ffffffe        /* 0 */
    .dword 0x0123456789abcdef           /* 8 */
    .dword 0                            /* 16 */
    .dword 0                            /* 24 */
    .space 124
    .word 0x13579bdf                    /* 32 + 124 = 156 */
    .space 280 - 160
    .dword 0xfedcba9876543210           /* 32 + 248 = 280 */

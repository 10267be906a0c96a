/* Zifencei: self-modifying code becomes visible to instruction fetch after fence.i. */
#include "common.h"

#define ADDI_A0(imm) (((imm) << 20) | 0x50513) /* addi a0, a0, imm */
#define RET 0x00008067                      /* jalr x0, 0(ra) */
#define C_ADDI_A0(imm) (0x0501 | ((imm) << 2)) /* c.addi a0, imm (0 < imm < 32) */
#define C_JR_RA 0x8082

    .text
    .globl test_main
test_main:
    la s0, code_buf

    /* 1: write a fresh routine, fence.i, run it */
    TESTNUM 1
    li t0, ADDI_A0(1)
    sw t0, 0(s0)
    li t0, RET
    sw t0, 4(s0)
    fence.i
    li a0, 10
    jalr ra, 0(s0)
    CHECK_EQ a0, 11

    /* 2: execute, modify, fence.i, execute again */
    TESTNUM 2
    li t0, ADDI_A0(2)
    sw t0, 0(s0)
    fence.i
    li a0, 10
    jalr ra, 0(s0)
    CHECK_EQ a0, 12

    /* 3: run it many times (hot code), then patch it */
    TESTNUM 3
    li a0, 0
    li s1, 1000
1:  jalr ra, 0(s0)
    addi s1, s1, -1
    bnez s1, 1b
    CHECK_EQ a0, 2000
    li t0, ADDI_A0(-3)
    sw t0, 0(s0)
    fence.i
    li a0, 0
    li s1, 1000
1:  jalr ra, 0(s0)
    addi s1, s1, -1
    bnez s1, 1b
    CHECK_EQ a0, -3000

    /* 4: replace with compressed instructions written as two halfwords */
    TESTNUM 4
    li t0, C_ADDI_A0(5)
    sh t0, 0(s0)
    li t0, C_JR_RA
    sh t0, 2(s0)
    fence.i
    li a0, 1
    jalr ra, 0(s0)
    CHECK_EQ a0, 6

    /* 5: a 32-bit instruction assembled from byte stores */
    TESTNUM 5
    li t0, ADDI_A0(100)
    sb t0, 0(s0)
    srli t0, t0, 8
    sb t0, 1(s0)
    srli t0, t0, 8
    sb t0, 2(s0)
    srli t0, t0, 8
    sb t0, 3(s0)
    li t0, RET
    sw t0, 4(s0)
    fence.i
    li a0, 1
    jalr ra, 0(s0)
    CHECK_EQ a0, 101

    /* 6: patch an instruction a little ahead in the running code itself */
    TESTNUM 6
    la t1, patch_site
    li t0, ADDI_A0(42)
    sw t0, 0(t1)
    fence.i
    li a0, 0
    .option push
    .option norvc                       /* the patch is 4 bytes */
patch_site:
    addi a0, a0, 1                      /* becomes addi a0, a0, 42 */
    .option pop
    CHECK_EQ a0, 42

    /* 7: the same site patched again, inside a loop that has executed it before */
    TESTNUM 7
    li s1, 0
    li a0, 0
1:  la t1, loop_site
    li t0, ADDI_A0(7)
    bnez s1, 2f
    li t0, ADDI_A0(3)
2:  sw t0, 0(t1)
    fence.i
    .option push
    .option norvc
loop_site:
    addi a0, a0, 1
    .option pop
    addi s1, s1, 1
    li t0, 2
    bne s1, t0, 1b
    CHECK_EQ a0, 10

    j pass

    .data
    .balign 64
code_buf:
    .space 64

/* F/D loads, stores and moves: exact bit transfer (signalling NaN payloads kept), NaN boxing
 * of singles written by flw / fmv.w.x (upper 32 bits all ones, seen with fmv.x.d), fsw and
 * fmv.x.w taking the low 32 bits as they are, and a 32-register round trip. */
#include "common.h"

    .text
    .globl test_main
test_main:
    la s0, fdata

    /* ---- fld / fsd: exact 64-bit transfer ---- */
    TESTNUM 1
    fld f1, 0(s0)
    fmv.x.d a0, f1
    CHECK_EQ a0, 0x7ff0000000000001     /* signalling NaN: not quietened by a load */
    fsd f1, 64(s0)
    ld a0, 64(s0)
    CHECK_EQ a0, 0x7ff0000000000001
    TESTNUM 2
    fld f2, 8(s0)
    fmv.x.d a0, f2
    CHECK_EQ a0, 0xfff8000000abcdef
    addi s1, s0, 2047
    fsd f2, -1911(s1)                   /* 2047 - 1911 = 136 */
    ld a0, 136(s0)
    CHECK_EQ a0, 0xfff8000000abcdef
    TESTNUM 3
    addi s1, s0, 24
    fld f3, -8(s1)
    fmv.x.d a0, f3
    CHECK_EQ a0, 0x3ff0000000000000

    /* ---- flw: NaN-boxed, payload kept ---- */
    TESTNUM 10
    flw f4, 24(s0)                      /* 0x7f800001: single signalling NaN */
    fmv.x.d a0, f4
    CHECK_EQ a0, 0xffffffff7f800001
    TESTNUM 11
    li t0, 0x0123456789abcdef
    fmv.d.x f5, t0                      /* garbage in the upper half first */
    flw f5, 28(s0)                      /* 0xbf800000 = -1.0f */
    fmv.x.d a0, f5
    CHECK_EQ a0, 0xffffffffbf800000
    TESTNUM 12                          /* fmv.x.w sign-extends the low 32 bits */
    fmv.x.w a0, f5
    CHECK_EQ a0, 0xffffffffbf800000
    flw f6, 32(s0)                      /* 0x3f800000 */
    fmv.x.w a0, f6
    CHECK_EQ a0, 0x3f800000

    /* ---- fmv.w.x boxes; fmv.x.w of an unboxed register still moves the low bits ---- */
    TESTNUM 20
    li t0, 0x123456783f800000           /* upper bits of the integer are ignored */
    fmv.w.x f7, t0
    fmv.x.d a0, f7
    CHECK_EQ a0, 0xffffffff3f800000
    TESTNUM 21
    li t0, 0x80000000
    fmv.w.x f7, t0
    fmv.x.d a0, f7
    CHECK_EQ a0, 0xffffffff80000000
    TESTNUM 22
    li t0, 0x00000000c0000000           /* not boxed */
    fmv.d.x f8, t0
    fmv.x.w a0, f8
    CHECK_EQ a0, 0xffffffffc0000000
    TESTNUM 23
    li t0, 0x7fff0000ffffffff
    fmv.d.x f8, t0
    fmv.x.d a0, f8
    CHECK_EQ a0, 0x7fff0000ffffffff

    /* ---- fsw: stores the low 32 bits (boxed or not), nothing more ---- */
    TESTNUM 30
    li t0, -1
    sd t0, 80(s0)
    fsw f5, 80(s0)
    ld a0, 80(s0)
    CHECK_EQ a0, 0xffffffffbf800000
    TESTNUM 31
    sd zero, 88(s0)
    li t0, 0x0000000140490fdb           /* unboxed; low half is pi as a single */
    fmv.d.x f9, t0
    fsw f9, 92(s0)
    ld a0, 88(s0)
    CHECK_EQ a0, 0x40490fdb00000000
    TESTNUM 32                          /* flw of what fsw stored gives the boxed pattern */
    flw f10, 92(s0)
    fmv.x.d a0, f10
    CHECK_EQ a0, 0xffffffff40490fdb

    /* ---- fld after flw: the register is replaced whole ---- */
    TESTNUM 33
    fld f10, 8(s0)
    fmv.x.d a0, f10
    CHECK_EQ a0, 0xfff8000000abcdef

    /* ---- all 32 FP registers hold independent values ---- */
    TESTNUM 40
    .irp r, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    li t0, 0x1111111100000000 + \r
    fmv.d.x f\r, t0
    .endr
    .irp r, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    fmv.x.d a0, f\r
    CHECK_EQ a0, 0x1111111100000000 + \r
    .endr
    TESTNUM 41                          /* and through memory */
    addi s1, s0, 256
    .irp r, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    fsd f\r, (\r * 8)(s1)
    .endr
    .irp r, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    ld a0, (\r * 8)(s1)
    CHECK_EQ a0, 0x1111111100000000 + \r
    .endr

    /* ---- loads and stores do not touch fflags ---- */
    TESTNUM 50
    csrwi fflags, 0
    fld f1, 0(s0)
    flw f2, 24(s0)
    fsd f1, 64(s0)
    fsw f2, 72(s0)
    fmv.x.d a0, f1
    fmv.d.x f3, a0
    csrr a0, fflags
    CHECK_EQ a0, 0

    j pass

    .data
    .balign 64
fdata:
    .dword 0x7ff0000000000001           /* 0 */
    .dword 0xfff8000000abcdef           /* 8 */
    .dword 0x3ff0000000000000           /* 16 */
    .word 0x7f800001                    /* 24 */
    .word 0xbf800000                    /* 28 */
    .word 0x3f800000                    /* 32 */
    .space 256 + 32 * 8 - 36

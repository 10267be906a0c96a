/* fcsr / frm / fflags (views of one register, masking, swaps, accrual), reserved rounding
 * modes (illegal), and mstatus.FS: FP instructions and FP CSRs trap when FS=Off, and any
 * FP state change makes FS Dirty and sets SD (priv spec 3.1.6.6).
 * QEMU 7.2 deviation tolerated on QEMU only: an instruction that changes only fflags (feq on a
 * signalling NaN) leaves FS Clean. */
#include "common.h"

.macro SET_FS val
    li t0, MSTATUS_FS
    csrc mstatus, t0
    li t0, \val
    csrs mstatus, t0
.endm

    .text
    .globl test_main
test_main:
    /* ---- fcsr = frm << 5 | fflags ---- */
    TESTNUM 1
    csrw fcsr, zero
    li t0, 0xff
    csrw fcsr, t0
    CHECK_CSR fcsr, 0xff
    CHECK_CSR frm, 7
    CHECK_CSR fflags, 0x1f
    TESTNUM 2                           /* bits above 7 are not kept */
    li t0, -1
    csrw fcsr, t0
    CHECK_CSR fcsr, 0xff
    TESTNUM 3
    li t0, 0x65                         /* frm 3, flags 5 */
    csrw fcsr, t0
    CHECK_CSR frm, 3
    CHECK_CSR fflags, 5
    TESTNUM 4                           /* fflags writes keep 5 bits, leave frm alone */
    li t0, 0xff
    csrw fflags, t0
    CHECK_CSR fflags, 0x1f
    CHECK_CSR fcsr, 0x7f
    TESTNUM 5                           /* frm writes keep 3 bits, leave fflags alone */
    li t0, 0xf9
    csrw frm, t0
    CHECK_CSR frm, 1
    CHECK_CSR fcsr, 0x3f
    TESTNUM 6                           /* swaps return the old value */
    li t0, 4
    fsrm a0, t0
    CHECK_EQ a0, 1
    CHECK_CSR frm, 4
    li t0, 0x2
    fsflags a0, t0
    CHECK_EQ a0, 0x1f
    CHECK_CSR fflags, 0x2
    li t0, 0x21
    fscsr a0, t0
    CHECK_EQ a0, 0x82
    CHECK_CSR fcsr, 0x21
    TESTNUM 7                           /* set / clear forms and immediates */
    csrsi fflags, 0x10
    CHECK_CSR fflags, 0x11
    csrci fflags, 0x01
    CHECK_CSR fflags, 0x10
    csrrsi a0, frm, 2
    CHECK_EQ a0, 1
    CHECK_CSR frm, 3
    csrrci a0, fcsr, 0x1f
    CHECK_EQ a0, 0x70
    CHECK_CSR fcsr, 0x60
    frrm a0
    CHECK_EQ a0, 3
    frflags a0
    CHECK_EQ a0, 0

    /* ---- flags accrue until cleared ---- */
    TESTNUM 10
    csrw fcsr, zero
    li t0, 0x3ff0000000000000
    fmv.d.x f1, t0                      /* 1.0 */
    fmv.d.x f2, zero                    /* 0.0 */
    fdiv.d f3, f1, f2                   /* DZ */
    CHECK_CSR fflags, FFLAG_DZ
    li t0, 0x4008000000000000
    fmv.d.x f2, t0                      /* 3.0 */
    fdiv.d f3, f1, f2                   /* NX */
    CHECK_CSR fflags, FFLAG_DZ | FFLAG_NX
    fadd.d f3, f1, f1                   /* exact: nothing new */
    CHECK_CSR fflags, FFLAG_DZ | FFLAG_NX
    csrw fflags, zero
    fadd.d f3, f1, f1
    CHECK_CSR fflags, 0

    /* ---- dynamic rounding with frm = 5, 6, 7 is illegal; so are static rm 5 and 6 ---- */
    li t0, 5
    csrw frm, t0
    EXPECT_ILLEGAL(20, fadd.d f3, f1, f2, dyn)
    li t0, 6
    csrw frm, t0
    EXPECT_ILLEGAL(21, fmul.s f3, f1, f2, dyn)
    li t0, 7
    csrw frm, t0
    EXPECT_ILLEGAL(22, fcvt.w.d a0, f1, dyn)
    csrw frm, zero
    EXPECT_ILLEGAL(23, .insn r 0x53, 5, 0x01, f3, f1, f2)    /* fadd.d, rm = 5 */
    EXPECT_ILLEGAL(24, .insn r 0x53, 6, 0x09, f3, f1, f2)    /* fmul.d, rm = 6 */
    TESTNUM 25                          /* frm = 7 does not matter to static modes */
    li t0, 7
    csrw frm, t0
    fadd.d f3, f1, f2, rne
    fmv.x.d a0, f3
    CHECK_EQ a0, 0x4010000000000000
    csrw frm, zero

    /* ---- mstatus.FS = Off: every FP instruction and FP CSR access is illegal ---- */
    SET_FS 0
    TESTNUM 29
    csrr a0, mstatus
    CHECK_MASKED a0, MSTATUS_FS | MSTATUS_SD, 0
    EXPECT_ILLEGAL(30, fadd.d f3, f1, f2)
    EXPECT_ILLEGAL(31, fmv.x.d a0, f1)
    EXPECT_ILLEGAL(32, fmv.w.x f1, a0)
    la s0, scratch
    EXPECT_ILLEGAL(33, fld f1, 0(s0))
    EXPECT_ILLEGAL(34, fsw f1, 0(s0))
    EXPECT_ILLEGAL(35, csrr a0, fcsr)
    EXPECT_ILLEGAL(36, csrw fflags, zero)
    EXPECT_ILLEGAL(37, csrr a0, frm)
    EXPECT_ILLEGAL(38, fcvt.d.w f1, a0)
    EXPECT_ILLEGAL(39, fclass.s a0, f1)
    EXPECT_ILLEGAL(40, fmadd.d f1, f2, f3, f4)
    TESTNUM 41                          /* nothing changed state: still Off */
    csrr a0, mstatus
    CHECK_MASKED a0, MSTATUS_FS, 0
    .option push
    .option rvc
    EXPECT_ILLEGAL(42, c.fld fa0, 0(s0))
    EXPECT_ILLEGAL(43, c.fsdsp fa0, 0(sp))
    .option pop

    /* ---- Initial -> Dirty on an FP operation; SD follows ---- */
    TESTNUM 50
    SET_FS MSTATUS_FS_INITIAL
    csrr a0, mstatus
    CHECK_MASKED a0, MSTATUS_SD, 0
    fadd.d f3, f1, f2
    csrr a0, mstatus
    CHECK_MASKED a0, MSTATUS_FS, MSTATUS_FS_DIRTY
    CHECK_MASKED a0, MSTATUS_SD, MSTATUS_SD
    csrr a0, sstatus                    /* the S view shows the same FS and SD */
    CHECK_MASKED a0, MSTATUS_FS | MSTATUS_SD, MSTATUS_FS_DIRTY | MSTATUS_SD
    TESTNUM 51                          /* Clean -> Dirty through an FP load */
    SET_FS MSTATUS_FS_CLEAN
    csrr a0, mstatus
    CHECK_MASKED a0, MSTATUS_FS | MSTATUS_SD, MSTATUS_FS_CLEAN
    fld f1, 0(s0)
    csrr a0, mstatus
    CHECK_MASKED a0, MSTATUS_FS | MSTATUS_SD, MSTATUS_FS_DIRTY | MSTATUS_SD
    TESTNUM 52                          /* Clean -> Dirty through an fflags write */
    SET_FS MSTATUS_FS_CLEAN
    csrwi fflags, 1
    csrr a0, mstatus
    CHECK_MASKED a0, MSTATUS_FS | MSTATUS_SD, MSTATUS_FS_DIRTY | MSTATUS_SD
    TESTNUM 53                          /* Clean -> Dirty through fmv.d.x */
    SET_FS MSTATUS_FS_CLEAN
    fmv.d.x f5, zero
    csrr a0, mstatus
    CHECK_MASKED a0, MSTATUS_FS | MSTATUS_SD, MSTATUS_FS_DIRTY | MSTATUS_SD
    TESTNUM 54                          /* Clean -> Dirty when only fflags change (feq on sNaN) */
    SET_FS MSTATUS_FS_INITIAL
    csrw fflags, zero
    li t0, 0x7ff0000000000001
    fmv.d.x f6, t0
    SET_FS MSTATUS_FS_CLEAN
    feq.d a0, f6, f6
    CHECK_EQ a0, 0
    csrr a0, mstatus
    /* QEMU 7.2 leaves FS Clean when an instruction changes only fflags: tolerated there */
    IF_QEMU 1f
    CHECK_MASKED a0, MSTATUS_FS | MSTATUS_SD, MSTATUS_FS_DIRTY | MSTATUS_SD
1:  CHECK_CSR fflags, FFLAG_NV
    TESTNUM 55                          /* FS written by software through sstatus */
    li t0, MSTATUS_FS
    csrc sstatus, t0
    csrr a0, mstatus
    CHECK_MASKED a0, MSTATUS_FS | MSTATUS_SD, 0
    li t0, MSTATUS_FS_INITIAL
    csrs sstatus, t0
    csrr a0, mstatus
    CHECK_MASKED a0, MSTATUS_FS | MSTATUS_SD, MSTATUS_FS_INITIAL

    /* ---- FS = Off in S-mode traps too ---- */
    SET_FS 0
    TESTNUM 60
    EXPECT_MTRAP 1f
    GOTO_MODE PRV_S, 2f
2:  fadd.d f3, f1, f2
    FAIL "FP instruction in S-mode with FS=Off did not trap"
1:  CHECK_MCAUSE CAUSE_ILLEGAL
    CHECK_MEPC 2b
    ld a0, HD_MSTATUS(tp)
    CHECK_MASKED a0, MSTATUS_MPP, MSTATUS_MPP_S
    SET_FS MSTATUS_FS_INITIAL

    j pass

    .data
    .balign 16
scratch:
    .space 16

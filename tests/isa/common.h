/* Shared definitions for vessel's bare-metal ISA tests (assembly, included by every test .S).
 *
 * Conventions (see README.md):
 *   gp (x3)  current test number, printed on failure
 *   tp (x4)  this hart's data block (HD_* offsets below); mscratch/sscratch hold it too
 *   sp       this hart's stack
 *   t5, t6   scratch for the macros below: never rely on them across a macro
 * A test defines `test_main` (hart 0, M-mode, after the runtime set-up) and may define
 * `test_secondary` (harts 1..; without it they stay parked in a wfi loop). A comment
 * reading `smp: N` in the test file tells run.sh how many harts to start. A test ends with `j pass`,
 * or jumps to one of the fail_* routines.
 */
#ifndef VESSEL_ISA_COMMON_H
#define VESSEL_ISA_COMMON_H

#define MAX_HARTS 8
#define HART_DATA_SIZE 1024
#define STACK_SIZE 8192

/* Board: QEMU virt */
#define UART_BASE 0x10000000
#define UART_THR 0
#define UART_LSR 5
#define UART_LSR_THRE 0x20
#define TESTDEV_BASE 0x100000
#define TESTDEV_PASS 0x5555
#define TESTDEV_FAIL 0x3333
#define CLINT_BASE 0x2000000
#define CLINT_MSIP(h) (CLINT_BASE + 4 * (h))
#define CLINT_MTIMECMP(h) (CLINT_BASE + 0x4000 + 8 * (h))
#define CLINT_MTIME (CLINT_BASE + 0xbff8)
#define RAM_BASE 0x80000000
/* Free RAM for tests (the image, stacks and page-table pool stay below 0x80200000). */
#define SCRATCH_BASE 0x80400000

/* Per-hart data block (tp): trap records and expectations. */
#define HD_MSAVE 0        /* 16 slots: M handler register save area */
#define HD_SSAVE 128      /* 16 slots: S handler register save area */
#define HD_MRESUME 256    /* expected M exception: resume pc (0 = none expected) */
#define HD_MRESUME_MODE 264 /* privilege to resume in (0 U, 1 S, 3 M, -1 keep MPP) */
#define HD_MCAUSE 272     /* last M trap: mcause, mepc, mtval, mstatus at entry */
#define HD_MEPC 280
#define HD_MTVAL 288
#define HD_MSTATUS 296
#define HD_MCOUNT 304     /* M traps taken (exceptions + interrupts) */
#define HD_MICOUNT 312    /* M interrupts taken */
#define HD_MILOG 320      /* 8 slots: mcause of the first 8 M interrupts */
#define HD_SRESUME 384    /* expected S exception: resume pc (0 = none) */
#define HD_SRESUME_MODE 392 /* 0 U, 1 S, -1 keep SPP, 3 = escalate to M with ecall */
#define HD_SCAUSE 400
#define HD_SEPC 408
#define HD_STVAL 416
#define HD_SSTATUS 424
#define HD_SCOUNT 432
#define HD_SICOUNT 440
#define HD_SILOG 448      /* 8 slots */
#define HD_SUNEXP 512     /* S handler met an unexpected trap; M reports it */
#define HD_HARTID 520
#define HD_USER 576       /* 256 bytes free for the test */

/* CSR numbers the assembler may not know by name */
#define CSR_MENVCFG 0x30a
#define CSR_SENVCFG 0x10a
#define CSR_STIMECMP 0x14d
#define CSR_MCOUNTINHIBIT 0x320

/* mstatus */
#define MSTATUS_SIE (1 << 1)
#define MSTATUS_MIE (1 << 3)
#define MSTATUS_SPIE (1 << 5)
#define MSTATUS_UBE (1 << 6)
#define MSTATUS_MPIE (1 << 7)
#define MSTATUS_SPP (1 << 8)
#define MSTATUS_MPP (3 << 11)
#define MSTATUS_MPP_S (1 << 11)
#define MSTATUS_MPP_M (3 << 11)
#define MSTATUS_FS (3 << 13)
#define MSTATUS_FS_INITIAL (1 << 13)
#define MSTATUS_FS_CLEAN (2 << 13)
#define MSTATUS_FS_DIRTY (3 << 13)
#define MSTATUS_MPRV (1 << 17)
#define MSTATUS_SUM (1 << 18)
#define MSTATUS_MXR (1 << 19)
#define MSTATUS_TVM (1 << 20)
#define MSTATUS_TW (1 << 21)
#define MSTATUS_TSR (1 << 22)
#define MSTATUS_SD (1 << 63)

/* interrupt numbers / mip bits */
#define IRQ_S_SOFT 1
#define IRQ_M_SOFT 3
#define IRQ_S_TIMER 5
#define IRQ_M_TIMER 7
#define IRQ_S_EXT 9
#define IRQ_M_EXT 11
#define MIP_SSIP (1 << IRQ_S_SOFT)
#define MIP_MSIP (1 << IRQ_M_SOFT)
#define MIP_STIP (1 << IRQ_S_TIMER)
#define MIP_MTIP (1 << IRQ_M_TIMER)
#define MIP_SEIP (1 << IRQ_S_EXT)
#define MIP_MEIP (1 << IRQ_M_EXT)
#define CAUSE_INTR (1 << 63)

/* exception causes */
#define CAUSE_MISALIGNED_FETCH 0
#define CAUSE_FETCH_ACCESS 1
#define CAUSE_ILLEGAL 2
#define CAUSE_BREAKPOINT 3
#define CAUSE_MISALIGNED_LOAD 4
#define CAUSE_LOAD_ACCESS 5
#define CAUSE_MISALIGNED_STORE 6
#define CAUSE_STORE_ACCESS 7
#define CAUSE_ECALL_U 8
#define CAUSE_ECALL_S 9
#define CAUSE_ECALL_M 11
#define CAUSE_FETCH_PAGE 12
#define CAUSE_LOAD_PAGE 13
#define CAUSE_STORE_PAGE 15

#define PRV_U 0
#define PRV_S 1
#define PRV_M 3

/* Page-table entries */
#define PTE_V (1 << 0)
#define PTE_R (1 << 1)
#define PTE_W (1 << 2)
#define PTE_X (1 << 3)
#define PTE_U (1 << 4)
#define PTE_G (1 << 5)
#define PTE_A (1 << 6)
#define PTE_D (1 << 7)
#define SATP_SV39 (8 << 60)
#define SATP_SV48 (9 << 60)
#define SATP_SV57 (10 << 60)

/* PMP configuration bits */
#define PMP_R 0x01
#define PMP_W 0x02
#define PMP_X 0x04
#define PMP_OFF 0x00
#define PMP_TOR 0x08
#define PMP_NA4 0x10
#define PMP_NAPOT 0x18
#define PMP_L 0x80

/* Floating-point flags */
#define FFLAG_NX 0x01
#define FFLAG_UF 0x02
#define FFLAG_OF 0x04
#define FFLAG_DZ 0x08
#define FFLAG_NV 0x10
#define RM_RNE 0
#define RM_RTZ 1
#define RM_RDN 2
#define RM_RUP 3
#define RM_RMM 4
#define RM_DYN 7

#ifdef __ASSEMBLER__

/* ---- test numbering and value checks ---------------------------------------------------- */

/* Set the current test number (printed when a check fails). */
.macro TESTNUM n
    li gp, \n
.endm

/* Every check adds a byte to a non-loaded section, so `size -A` counts the checks. */
.macro COUNT_CHECK
    .pushsection .isa_checks, "", @progbits
    .byte 0
    .popsection
.endm

/* Fail unless register `reg` equals the constant `exp` (64-bit compare). */
.macro CHECK_EQ reg, exp
    COUNT_CHECK
    li t6, \exp
    beq \reg, t6, .Lchk_ok\@
    mv a0, \reg
    mv a1, t6
    j fail_value
.Lchk_ok\@:
.endm

/* Fail unless registers `reg` and `expreg` are equal. */
.macro CHECK_EQR reg, expreg
    COUNT_CHECK
    beq \reg, \expreg, .Lchk_ok\@
    mv t6, \expreg
    mv a0, \reg
    mv a1, t6
    j fail_value
.Lchk_ok\@:
.endm

/* Fail unless `reg` equals `exp1` or `exp2` (where the spec allows either). */
.macro CHECK_EQ2 reg, exp1, exp2
    COUNT_CHECK
    li t6, \exp1
    beq \reg, t6, .Lchk_ok\@
    li t6, \exp2
    beq \reg, t6, .Lchk_ok\@
    mv a0, \reg
    mv a1, t6
    j fail_value
.Lchk_ok\@:
.endm

/* Like CHECK_EQ2, also accepting `quirk` when running on QEMU (a documented QEMU 7.2
 * deviation from the spec; vessel must give exp1 or exp2). */
.macro CHECK_EQ2_QEMU reg, exp1, exp2, quirk
    COUNT_CHECK
    li t6, \exp1
    beq \reg, t6, .Lchk_ok\@
    li t6, \exp2
    beq \reg, t6, .Lchk_ok\@
    lw t6, qemu_quirks
    beqz t6, .Lchk_bad\@
    li t6, \quirk
    beq \reg, t6, .Lchk_ok\@
.Lchk_bad\@:
    mv a0, \reg
    li a1, \exp1
    j fail_value
.Lchk_ok\@:
.endm

/* Branch to `label` when running on QEMU (see runtime.S). Clobbers t6. */
.macro IF_QEMU label
    lw t6, qemu_quirks
    bnez t6, \label
.endm

/* Fail if register `reg` equals the constant `val`. */
.macro CHECK_NE reg, val
    COUNT_CHECK
    li t6, \val
    bne \reg, t6, .Lchk_ok\@
    mv a0, \reg
    mv a1, t6
    j fail_ne
.Lchk_ok\@:
.endm

/* Fail unless (reg & mask) == exp. */
.macro CHECK_MASKED reg, mask, exp
    COUNT_CHECK
    li t6, \mask
    and t6, \reg, t6
    li t5, \exp
    beq t6, t5, .Lchk_ok\@
    mv a0, t6
    mv a1, t5
    j fail_value
.Lchk_ok\@:
.endm

/* Fail unless CSR `csr` reads as `exp`. Clobbers t5. */
.macro CHECK_CSR csr, exp
    csrr t5, \csr
    CHECK_EQ t5, \exp
.endm

/* Fail unconditionally with message `msg` (a string literal). */
.macro FAIL msg
    la a0, .Lfail_msg\@
    j fail_msg
    .pushsection .rodata
.Lfail_msg\@: .asciz "\msg"
    .popsection
.endm

/* riscv-tests style: run `code`, then check `reg` == `expected`. */
#define TEST_CASE(n, reg, expected, ...)                                                           \
    TESTNUM n;                                                                                     \
    __VA_ARGS__;                                                                                   \
    CHECK_EQ reg, expected

/* Register-register, register-immediate and unary operations on constants. */
#define TEST_RR(n, inst, result, v1, v2)                                                           \
    TEST_CASE(n, a0, result, li a1, v1; li a2, v2; inst a0, a1, a2)
#define TEST_RR_SRC1_EQ_DEST(n, inst, result, v1, v2)                                              \
    TEST_CASE(n, a1, result, li a1, v1; li a2, v2; inst a1, a1, a2)
#define TEST_RR_SRC2_EQ_DEST(n, inst, result, v1, v2)                                              \
    TEST_CASE(n, a2, result, li a1, v1; li a2, v2; inst a2, a1, a2)
#define TEST_RR_SRC12_EQ_DEST(n, inst, result, v1)                                                 \
    TEST_CASE(n, a1, result, li a1, v1; inst a1, a1, a1)
#define TEST_RI(n, inst, result, v1, imm)                                                          \
    TEST_CASE(n, a0, result, li a1, v1; inst a0, a1, imm)
#define TEST_RI_SRC1_EQ_DEST(n, inst, result, v1, imm)                                             \
    TEST_CASE(n, a1, result, li a1, v1; inst a1, a1, imm)
#define TEST_R(n, inst, result, v1) TEST_CASE(n, a0, result, li a1, v1; inst a0, a1)
#define TEST_R_SRC1_EQ_DEST(n, inst, result, v1) TEST_CASE(n, a1, result, li a1, v1; inst a1, a1)

/* ---- expected traps ------------------------------------------------------------------------ */

/* The next exception taken to M resumes at `resume` in privilege `mode` (3 = M). Other
 * M exceptions are failures. Interrupts never need this: the runtime logs them and masks
 * the source in mie. */
.macro EXPECT_MTRAP resume, mode = 3
    la t6, \resume
    sd t6, HD_MRESUME(tp)
    li t6, \mode
    sd t6, HD_MRESUME_MODE(tp)
.endm

/* Same, with the resume pc at `resume` + `off` (an alias of the code in a user mapping). */
.macro EXPECT_MTRAP_OFF resume, off, mode
    la t6, \resume
    li t5, \off
    add t6, t6, t5
    sd t6, HD_MRESUME(tp)
    li t6, \mode
    sd t6, HD_MRESUME_MODE(tp)
.endm

/* The next exception taken to S resumes at `resume` in `mode` (0 U, 1 S); mode 3 = the S
 * handler records the trap then does ecall, so M resumes at its own EXPECT_MTRAP label. */
.macro EXPECT_STRAP resume, mode = 1
    la t6, \resume
    sd t6, HD_SRESUME(tp)
    li t6, \mode
    sd t6, HD_SRESUME_MODE(tp)
.endm

.macro EXPECT_STRAP_OFF resume, off, mode
    la t6, \resume
    li t5, \off
    add t6, t6, t5
    sd t6, HD_SRESUME(tp)
    li t6, \mode
    sd t6, HD_SRESUME_MODE(tp)
.endm

/* S trap recorded, then escalate to M (M resumes at `mresume` in M). */
.macro EXPECT_STRAP_TO_M mresume
    li t6, 3
    sd t6, HD_SRESUME_MODE(tp)
    li t6, 1
    sd t6, HD_SRESUME(tp)
    EXPECT_MTRAP \mresume, 3
.endm

/* Cancel any pending expectation (after a trap that should have happened did not). */
.macro CLEAR_EXPECT
    sd zero, HD_MRESUME(tp)
    sd zero, HD_SRESUME(tp)
.endm

/* Checks against the last recorded trap. */
.macro CHECK_MCAUSE exp
    ld t5, HD_MCAUSE(tp)
    CHECK_EQ t5, \exp
.endm
.macro CHECK_MTVAL exp
    ld t5, HD_MTVAL(tp)
    CHECK_EQ t5, \exp
.endm
.macro CHECK_MTVALR reg
    ld t5, HD_MTVAL(tp)
    CHECK_EQR t5, \reg
.endm
.macro CHECK_MEPC label
    ld t5, HD_MEPC(tp)
    la t6, \label
    CHECK_EQR t5, t6
.endm
.macro CHECK_SCAUSE exp
    ld t5, HD_SCAUSE(tp)
    CHECK_EQ t5, \exp
.endm
.macro CHECK_STVAL exp
    ld t5, HD_STVAL(tp)
    CHECK_EQ t5, \exp
.endm
.macro CHECK_STVALR reg
    ld t5, HD_STVAL(tp)
    CHECK_EQR t5, \reg
.endm
.macro CHECK_SEPC label
    ld t5, HD_SEPC(tp)
    la t6, \label
    CHECK_EQR t5, t6
.endm

/* Reset the trap counters and logs. */
.macro CLEAR_TRAPS
    sd zero, HD_MCAUSE(tp)
    sd zero, HD_MCOUNT(tp)
    sd zero, HD_MICOUNT(tp)
    sd zero, HD_SCAUSE(tp)
    sd zero, HD_SCOUNT(tp)
    sd zero, HD_SICOUNT(tp)
.endm

/* ---- privilege changes ---------------------------------------------------------------------- */

/* From M: continue at `target` in privilege `mode` (clobbers t6). MPIE is cleared first so
 * that traps back to M from there do not end up with MIE = 1 in M. */
.macro GOTO_MODE mode, target
    li t6, MSTATUS_MPP | MSTATUS_MPIE
    csrc mstatus, t6
    li t6, (\mode) << 11
    csrs mstatus, t6
    la t6, \target
    csrw mepc, t6
    mret
.endm

/* From M: continue at `target` + `off` (a virtual alias) in privilege `mode`. */
.macro GOTO_MODE_OFF mode, target, off
    li t6, MSTATUS_MPP | MSTATUS_MPIE
    csrc mstatus, t6
    li t6, (\mode) << 11
    csrs mstatus, t6
    la t6, \target
    li t5, \off
    add t6, t6, t5
    csrw mepc, t6
    mret
.endm

/* From S: continue at `target` in U (or S when mode = 1). */
.macro SGOTO_MODE mode, target
    li t6, MSTATUS_SPP
    csrc sstatus, t6
    .if \mode
    csrs sstatus, t6
    .endif
    la t6, \target
    csrw sepc, t6
    sret
.endm

/* From S or U: run `code` there, then return to M (via ecall) at the next instruction.
 * Usage: RUN_IN_MODE 1 ... see tests. */
.macro BACK_TO_M
    EXPECT_MTRAP .Lback\@
    ecall
.Lback\@:
.endm

/* EXPECT_EXC_IN(mode, n, cause, insns...): test `n` runs the instructions (separated by
 * `;`) in privilege `mode` (entered from M with mret; bare addressing unless the test set
 * satp) and expects exception `cause` to M at the first of them. For illegal instructions
 * mtval must be 0 or the instruction bits. Ends in M. Clobbers a0-a2, t0, t1, t5, t6.
 * These are C-preprocessor macros because an assembler macro argument cannot contain `;`;
 * test numbers must be unique within a file (they name the labels). */
#define EXPECT_EXC_IN(mode, n, cause, ...)                                                         \
    EXC_PRE mode, n; __VA_ARGS__; EXC_POST mode, n, cause
#define EXPECT_ILLEGAL_IN(mode, n, ...) EXPECT_EXC_IN(mode, n, CAUSE_ILLEGAL, __VA_ARGS__)
#define EXPECT_ILLEGAL(n, ...) EXPECT_EXC_IN(PRV_M, n, CAUSE_ILLEGAL, __VA_ARGS__)

.macro EXC_PRE mode, n
    TESTNUM \n
    EXPECT_MTRAP .Lexc_ok_\n
    GOTO_MODE \mode, .Lexc_at_\n
.Lexc_at_\n:
.endm

.macro EXC_POST mode, n, cause
    CLEAR_EXPECT
    FAIL "expected a trap"
.Lexc_ok_\n:
    CHECK_MCAUSE \cause
    CHECK_MEPC .Lexc_at_\n
    .if \cause == CAUSE_ILLEGAL
    ld a0, HD_MTVAL(tp)
    beqz a0, .Lexc_tv_\n
    la a1, .Lexc_at_\n
    lhu a2, 2(a1)
    lhu a1, 0(a1)
    andi t0, a1, 3
    li t1, 3
    bne t0, t1, .Lexc_16_\n             /* compressed: 16 bits */
    slli a2, a2, 16
    or a1, a1, a2
.Lexc_16_\n:
    CHECK_EQR a0, a1
.Lexc_tv_\n:
    .endif
.endm

/* RUN_IN(mode, n, insns...): test `n` runs the instructions in `mode`; they must not trap.
 * Back to M with ecall. */
#define RUN_IN(mode, n, ...) RUN_PRE mode, n; __VA_ARGS__; RUN_POST mode, n

.macro RUN_PRE mode, n
    TESTNUM \n
    EXPECT_MTRAP .Lrun_back_\n
    GOTO_MODE \mode, .Lrun_at_\n
.Lrun_at_\n:
.endm

.macro RUN_POST mode, n
    ecall
.Lrun_back_\n:
    CHECK_MCAUSE CAUSE_ECALL_U + \mode
.endm

/* Time limits measured on the CLINT's mtime (10 MHz on QEMU virt): DEADLINE_START sets
 * t4 = now + 2 s; DEADLINE_CHECK fails with `msg` once that has passed. Clobber t4-t6. */
.macro DEADLINE_START
    li t4, CLINT_MTIME
    ld t4, 0(t4)
    li t5, 20000000
    add t4, t4, t5
.endm
.macro DEADLINE_CHECK msg
    li t5, CLINT_MTIME
    ld t5, 0(t5)
    bltu t5, t4, .Ldl_ok\@
    FAIL "\msg"
.Ldl_ok\@:
.endm

/* Wait (at most 2 s) until the 64-bit word at off(tp) is non-zero. Clobbers t4-t6. */
.macro WAIT_NONZERO off, msg
    DEADLINE_START
.Lwait\@:
    ld t5, \off(tp)
    bnez t5, .Lwait_done\@
    DEADLINE_CHECK "\msg"
    j .Lwait\@
.Lwait_done\@:
.endm

/* Wait (at most 2 s) until (csr & mask) != 0. Clobbers t4-t6. */
.macro WAIT_CSR_SET csr, mask, msg
    DEADLINE_START
.Lwaitc\@:
    csrr t5, \csr
    li t6, \mask
    and t5, t5, t6
    bnez t5, .Lwaitc_done\@
    DEADLINE_CHECK "\msg"
    j .Lwaitc\@
.Lwaitc_done\@:
.endm

/* Wait (at most 2 s) until (csr & mask) == 0. Clobbers t4-t6. */
.macro WAIT_CSR_CLEAR csr, mask, msg
    DEADLINE_START
.Lwaitz\@:
    csrr t5, \csr
    li t6, \mask
    and t5, t5, t6
    beqz t5, .Lwaitz_done\@
    DEADLINE_CHECK "\msg"
    j .Lwaitz\@
.Lwaitz_done\@:
.endm

/* Wait (at most 2 s) until the 64-bit word at symbol `sym` reaches `val` (unsigned >=).
 * Clobbers t3-t6. */
.macro WAIT_WORD_GE sym, val, msg
    DEADLINE_START
.Lwaitw\@:
    la t3, \sym
    ld t5, 0(t3)
    li t6, \val
    bgeu t5, t6, .Lwaitw_done\@
    DEADLINE_CHECK "\msg"
    j .Lwaitw\@
.Lwaitw_done\@:
.endm

/* Set this hart's mtimecmp to mtime + `delta` ticks (delta may be a large constant). Clobbers
 * t3, t5, t6. */
.macro TIMER_IN delta
    li t5, CLINT_MTIME
    ld t5, 0(t5)
    li t6, \delta
    add t5, t5, t6
    ld t6, HD_HARTID(tp)
    slli t6, t6, 3
    li t3, CLINT_MTIMECMP(0)
    add t6, t6, t3
    sd t5, 0(t6)
.endm

/* Set this hart's mtimecmp to the value in `reg`. Clobbers t5, t6. */
.macro SET_MTIMECMP reg
    ld t6, HD_HARTID(tp)
    slli t6, t6, 3
    li t5, CLINT_MTIMECMP(0)
    add t6, t6, t5
    sd \reg, 0(t6)
.endm

#endif /* __ASSEMBLER__ */
#endif

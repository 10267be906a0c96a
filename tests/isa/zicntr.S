/* Zicntr: cycle, time and instret advance; time is the CLINT's mtime; mcycle/minstret are
 * writable in M; the RV32-only high halves do not exist on RV64; mcounteren gates S and U,
 * scounteren additionally gates U (priv spec 3.1.11, 4.1.5). */
#include "common.h"

    .text
    .globl test_main
test_main:
    /* ---- cycle and instret advance ---- */
    TESTNUM 1
    rdcycle s0
    rdinstret s1
    li t0, 1000
1:  addi t0, t0, -1
    nop
    bnez t0, 1b
    rdcycle s2
    rdinstret s3
    sub a0, s3, s1
    li a1, 3000                         /* at least the 3000 loop instructions retired */
    bgeu a0, a1, 2f
    mv a1, a0
    FAIL "instret advanced by less than 3000 over a 3000-instruction loop"
2:  bgtu s2, s0, 3f
    FAIL "cycle did not advance"
3:
    /* ---- time: between two reads of mtime, and advancing ---- */
    TESTNUM 2
    li s0, CLINT_MTIME
    ld a1, 0(s0)
    rdtime a0
    ld a2, 0(s0)
    bgeu a0, a1, 1f
    FAIL "time < mtime read just before"
1:  bgeu a2, a0, 2f
    FAIL "time > mtime read just after"
2:  TESTNUM 3
    rdtime s1
    li t0, 100000000
1:  rdtime a0
    bne a0, s1, 2f
    addi t0, t0, -1
    bnez t0, 1b
    FAIL "time did not advance"
2:  bgtu a0, s1, 3f
    FAIL "time went backwards"
3:
    /* ---- mcycle / minstret are writable in M, and count on from there ---- */
    TESTNUM 4
    li t0, 0x123400000000
    csrw mcycle, t0
    rdcycle a0
    li a1, 0x123400000000
    bgeu a0, a1, 1f
    FAIL "cycle below the value written to mcycle"
1:  li a1, 0x123500000000
    bltu a0, a1, 2f
    FAIL "cycle far above the value written to mcycle"
2:  TESTNUM 5
    li t0, 0x567800000000
    csrw minstret, t0
    rdinstret a0
    li a1, 0x567800000000
    bgeu a0, a1, 1f
    FAIL "instret below the value written to minstret"
1:  li a1, 0x567900000000
    bltu a0, a1, 2f
    FAIL "instret far above the value written to minstret"
2:
    /* ---- a write to minstret/mcycle replaces the writing instruction's own increment
     * (Zicsr: the write takes effect after the instruction retires, so the next read sees
     * exactly the value written) and the counters wrap modulo 2^64 (riscv-tests
     * rv64mi instret_overflow). QEMU 7.2 counts host ticks without -icount: skipped there. */
    IF_QEMU 3f
    TESTNUM 46
    li t0, 0x9abc00000000
    csrw minstret, t0
    csrr a0, minstret
    CHECK_EQ a0, 0x9abc00000000
    TESTNUM 47
    li t0, -1
    csrw minstret, t0
    csrr a0, minstret
    csrr a1, minstret
    CHECK_EQ a0, -1
    CHECK_EQ a1, 0
    TESTNUM 48
    li t0, 0x4242
    csrw mcycle, t0
    csrr a0, mcycle
    CHECK_EQ a0, 0x4242
    TESTNUM 49                          /* csrrw: the old value is read, then replaced */
    li t0, 100
    csrw minstret, t0
    csrrw a0, minstret, zero
    csrr a1, minstret
    CHECK_EQ a0, 100
    CHECK_EQ a1, 0
    /* mcountinhibit (priv spec 3.1.13): an inhibited counter holds its value, a write to it
     * is kept, and counting resumes from there once the bit is cleared. */
    TESTNUM 50
    li t0, 5                            /* CY and IR */
    csrw mcountinhibit, t0
    csrr a0, minstret
    nop
    nop
    csrr a1, minstret
    CHECK_EQR a1, a0
    csrr a0, mcycle
    nop
    csrr a1, mcycle
    CHECK_EQR a1, a0
    TESTNUM 51
    li t0, 1000
    csrw minstret, t0
    nop
    csrr a0, minstret
    CHECK_EQ a0, 1000
    TESTNUM 52
    csrw mcountinhibit, zero            /* counting resumes after this instruction */
    csrr a0, minstret
    csrr a1, minstret
    CHECK_EQ a0, 1000
    CHECK_EQ a1, 1001
3:
    /* ---- RV32-only high halves are not CSRs on RV64 ---- */
    EXPECT_ILLEGAL(6, csrr a0, cycleh)
    EXPECT_ILLEGAL(7, csrr a0, timeh)
    EXPECT_ILLEGAL(8, csrr a0, instreth)
    EXPECT_ILLEGAL(9, csrr a0, mcycleh)

    /* ---- S-mode: gated by mcounteren ---- */
    csrw mcounteren, zero
    csrw scounteren, zero
    EXPECT_ILLEGAL_IN(PRV_S, 10, rdcycle a0)
    EXPECT_ILLEGAL_IN(PRV_S, 11, rdtime a0)
    EXPECT_ILLEGAL_IN(PRV_S, 12, rdinstret a0)
    li t0, 1                            /* CY only */
    csrw mcounteren, t0
    RUN_IN(PRV_S, 13, rdcycle a0)
    EXPECT_ILLEGAL_IN(PRV_S, 14, rdtime a0)
    EXPECT_ILLEGAL_IN(PRV_S, 15, rdinstret a0)
    li t0, 2                            /* TM only */
    csrw mcounteren, t0
    EXPECT_ILLEGAL_IN(PRV_S, 16, rdcycle a0)
    RUN_IN(PRV_S, 17, rdtime a0)
    EXPECT_ILLEGAL_IN(PRV_S, 18, rdinstret a0)
    li t0, 4                            /* IR only */
    csrw mcounteren, t0
    EXPECT_ILLEGAL_IN(PRV_S, 19, rdcycle a0)
    EXPECT_ILLEGAL_IN(PRV_S, 20, rdtime a0)
    RUN_IN(PRV_S, 21, rdinstret a0)
    li t0, 7
    csrw mcounteren, t0
    TESTNUM 22                          /* S reads the same counters M does */
    EXPECT_MTRAP 1f
    GOTO_MODE PRV_S, 2f
2:  rdtime a0
    rdcycle a1
    rdinstret a2
    ecall
1:  CHECK_MCAUSE CAUSE_ECALL_S
    rdtime a3
    bgeu a3, a0, 3f
    FAIL "S-mode time ahead of M-mode time read after it"
3:  CHECK_NE a1, 0
    CHECK_NE a2, 0
    TESTNUM 23                          /* scounteren does not affect S */
    csrw scounteren, zero
    RUN_IN(PRV_S, 24, rdcycle a0; rdtime a0; rdinstret a0)
    TESTNUM 25                          /* M is never gated */
    csrw mcounteren, zero
    rdcycle a0
    rdtime a0
    rdinstret a0

    /* ---- U-mode: needs both mcounteren and scounteren ---- */
    li t0, 7
    csrw mcounteren, t0
    csrw scounteren, zero
    EXPECT_ILLEGAL_IN(PRV_U, 30, rdcycle a0)
    EXPECT_ILLEGAL_IN(PRV_U, 31, rdtime a0)
    EXPECT_ILLEGAL_IN(PRV_U, 32, rdinstret a0)
    li t0, 7
    csrw scounteren, t0
    csrw mcounteren, zero
    EXPECT_ILLEGAL_IN(PRV_U, 33, rdcycle a0)
    EXPECT_ILLEGAL_IN(PRV_U, 34, rdtime a0)
    EXPECT_ILLEGAL_IN(PRV_U, 35, rdinstret a0)
    li t0, 7
    csrw mcounteren, t0
    RUN_IN(PRV_U, 36, rdcycle a0; rdtime a0; rdinstret a0)
    li t0, 2                            /* per bit: TM in both */
    csrw scounteren, t0
    RUN_IN(PRV_U, 37, rdtime a0)
    EXPECT_ILLEGAL_IN(PRV_U, 38, rdcycle a0)
    EXPECT_ILLEGAL_IN(PRV_U, 39, rdinstret a0)
    li t0, 5
    csrw scounteren, t0
    li t0, 1
    csrw mcounteren, t0
    RUN_IN(PRV_U, 40, rdcycle a0)
    EXPECT_ILLEGAL_IN(PRV_U, 41, rdinstret a0)
    EXPECT_ILLEGAL_IN(PRV_U, 42, rdtime a0)
    /* U cannot write the counter-enable registers either */
    EXPECT_ILLEGAL_IN(PRV_U, 43, csrw scounteren, zero)
    EXPECT_ILLEGAL_IN(PRV_S, 44, csrw mcounteren, zero)
    RUN_IN(PRV_S, 45, csrw scounteren, zero)
    CHECK_CSR scounteren, 0

    csrw mcounteren, zero
    j pass

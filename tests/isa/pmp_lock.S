/* Locked PMP entries (priv spec 3.7.1): with L set an entry applies to M-mode too, and its
 * pmpcfg byte and pmpaddr ignore writes until reset (so this test runs alone); a locked TOR
 * entry also locks the pmpaddr below it; unlocked neighbours stay writable. */
#include "common.h"

#define RL 0x80400000                   /* e0: NAPOT 4 KiB, R, locked */
#define RT 0x80402000                   /* e2 = base (OFF), e3: TOR [RT, RT + 4 KiB), RW, locked */
#define NAPOT(base, size) (((base) >> 2) | (((size) / 2 - 1) >> 2))
#define CFG(e, v) ((v) << (8 * (e)))
#define LI_ADDI_A0_0x55 0x05500513
#define RET 0x00008067

    .text
    .globl test_main
test_main:
    li t0, RL + 64                      /* code for the fetch test, inside RL */
    li t1, LI_ADDI_A0_0x55
    sw t1, 0(t0)
    li t1, RET
    sw t1, 4(t0)
    li t0, RL
    li t1, 0x0123456789abcdef
    sd t1, 0(t0)
    fence.i

    /* entry 15: catch-all for S/U; entries 0 and 3 locked */
    li t0, -1
    csrw pmpaddr15, t0
    li t0, CFG(7, PMP_NAPOT | PMP_R | PMP_W | PMP_X)
    csrw pmpcfg2, t0
    li t0, NAPOT(RL, 4096)
    csrw pmpaddr0, t0
    li t0, RT >> 2
    csrw pmpaddr2, t0
    li t0, (RT + 4096) >> 2
    csrw pmpaddr3, t0
    li t0, CFG(0, PMP_L | PMP_NAPOT | PMP_R) | CFG(3, PMP_L | PMP_TOR | PMP_R | PMP_W)
    csrw pmpcfg0, t0
    sfence.vma
    TESTNUM 1
    CHECK_CSR pmpcfg0, CFG(0, PMP_L | PMP_NAPOT | PMP_R) | CFG(3, PMP_L | PMP_TOR | PMP_R | PMP_W)

    /* ---- the locked read-only entry binds M ---- */
    TESTNUM 2
    li a1, RL
    ld a0, 0(a1)                        /* reads are allowed */
    CHECK_EQ a0, 0x0123456789abcdef
    li a1, RL + 8
    EXPECT_EXC_IN(PRV_M, 3, CAUSE_STORE_ACCESS, sd a0, 0(a1))
    CHECK_MTVALR a1
    TESTNUM 4
    li a1, RL
    ld a0, 0(a1)                        /* the store did not happen */
    CHECK_EQ a0, 0x0123456789abcdef
    li a1, RL + 4095
    EXPECT_EXC_IN(PRV_M, 5, CAUSE_STORE_ACCESS, sb a0, 0(a1))
    li a1, RL
    EXPECT_EXC_IN(PRV_M, 6, CAUSE_STORE_ACCESS, amoor.d a0, a0, (a1))
    TESTNUM 7                           /* no X: M cannot execute there */
    li a1, RL + 64
    EXPECT_MTRAP 1f
    jalr a1
    CLEAR_EXPECT
    FAIL "M executed code in a locked non-executable region"
1:  CHECK_MCAUSE CAUSE_FETCH_ACCESS
    CHECK_MTVALR a1
    ld a0, HD_MEPC(tp)
    CHECK_EQR a0, a1
    li a1, RL + 16                      /* and S is bound as before */
    EXPECT_EXC_IN(PRV_S, 8, CAUSE_STORE_ACCESS, sd a0, 0(a1))

    /* ---- the locked TOR entry: RW for M, no X ---- */
    TESTNUM 10
    li a1, RT
    sd a1, 0(a1)
    ld a0, 0(a1)
    CHECK_EQR a0, a1

    /* ---- locked cfg bytes and addresses ignore writes ---- */
    TESTNUM 20
    csrw pmpaddr0, zero
    csrr a0, pmpaddr0
    CHECK_EQ a0, NAPOT(RL, 4096)
    TESTNUM 21
    csrw pmpaddr3, zero
    csrr a0, pmpaddr3
    CHECK_EQ a0, (RT + 4096) >> 2
    TESTNUM 22                          /* TOR: the entry below is locked too */
    csrw pmpaddr2, zero
    csrr a0, pmpaddr2
    CHECK_EQ a0, RT >> 2
    TESTNUM 23                          /* clearing the cfg bytes: locked ones stay, others change */
    li t0, CFG(1, PMP_NAPOT | PMP_R)
    csrw pmpcfg0, t0
    CHECK_CSR pmpcfg0, CFG(0, PMP_L | PMP_NAPOT | PMP_R) | CFG(1, PMP_NAPOT | PMP_R) | CFG(3, PMP_L | PMP_TOR | PMP_R | PMP_W)
    csrc pmpcfg0, t0
    CHECK_CSR pmpcfg0, CFG(0, PMP_L | PMP_NAPOT | PMP_R) | CFG(3, PMP_L | PMP_TOR | PMP_R | PMP_W)
    TESTNUM 24                          /* an unlocked pmpaddr can still be written */
    li t0, 0x1234
    csrw pmpaddr5, t0
    CHECK_CSR pmpaddr5, 0x1234
    TESTNUM 25                          /* still enforced after all those writes */
    li a1, RL + 24
    EXPECT_EXC_IN(PRV_M, 26, CAUSE_STORE_ACCESS, sd a0, 0(a1))

    j pass

/* Physical memory protection without the lock bit (priv spec 3.7): NAPOT, NA4 and TOR regions
 * restricting S and U reads, writes and fetches (access faults 5, 7, 1 with mtval = the
 * address), the lowest-numbered matching entry deciding, an access only partly inside an
 * entry failing, S/U accesses that match no entry failing, M unaffected by unlocked entries,
 * odd pmpcfg CSRs absent on RV64, and pmpaddr granularity read-back. The locked case is in
 * pmp_lock.S. Changes are followed by sfence.vma, as the spec asks (3.7.2). */
#include "common.h"

#define R0 0x80400000                   /* e0: NAPOT 4 KiB, R */
#define R1 0x80401000                   /* e1: NA4, no access */
#define R3 0x80402000                   /* e3: TOR [R3, R3 + 4 KiB), X only (e2 = base, OFF) */
#define R5 0x80404000                   /* e5: NAPOT 4 KiB, R;  e6: NAPOT 8 KiB at R5, RW */
#define R7 0x80406000                   /* e7: NA4, RW */
#define NAPOT(base, size) (((base) >> 2) | (((size) / 2 - 1) >> 2))
#define CFG(e, v) ((v) << (8 * (e)))
#define LI_ADDI_A0_0x55 0x05500513      /* li a0, 0x55 */
#define RET 0x00008067

#define CFG0 (CFG(0, PMP_NAPOT | PMP_R) | CFG(1, PMP_NA4) | CFG(2, PMP_OFF) | CFG(3, PMP_TOR | PMP_X) | CFG(4, PMP_OFF) | CFG(5, PMP_NAPOT | PMP_R) | CFG(6, PMP_NAPOT | PMP_R | PMP_W) | CFG(7, PMP_NA4 | PMP_R | PMP_W))
#define CATCHALL CFG(7, PMP_NAPOT | PMP_R | PMP_W | PMP_X)  /* entry 15 in pmpcfg2 */

/* Test n: in `mode`, `insns` must raise access fault `cause` with mtval = a1. */
#define AF_IN(mode, n, cause, ...)                                                                 \
    EXPECT_EXC_IN(mode, n, cause, __VA_ARGS__); CHECK_MTVALR a1

/* Test n: in `mode`, a jump to `target` must raise a fetch access fault there. */
.macro AF_FETCH mode, n, target
    TESTNUM \n
    li a1, \target
    EXPECT_MTRAP .Laf_back_\n
    GOTO_MODE \mode, .Laf_at_\n
.Laf_at_\n:
    jalr a1
    ecall
.Laf_back_\n:
    CHECK_MCAUSE CAUSE_FETCH_ACCESS
    CHECK_MTVALR a1
    ld t5, HD_MEPC(tp)
    CHECK_EQR t5, a1
.endm

    .text
    .globl test_main
test_main:
    /* code for the fetch tests, in R0 and R3 */
    .irp base, R0, R3
    li t0, \base
    li t1, LI_ADDI_A0_0x55
    sw t1, 0(t0)
    li t1, RET
    sw t1, 4(t0)
    .endr
    fence.i

    /* ---- granularity: G from what an all-ones pmpaddr reads back as (OFF) ---- */
    TESTNUM 1
    csrw pmpcfg0, zero
    li t0, -1
    csrw pmpaddr1, t0
    csrr s0, pmpaddr1                   /* bits G-1:0 read as zero when OFF */
    CHECK_NE s0, 0
    ctz s1, s0                          /* s1 = G */
    li t0, 40
    bltu s1, t0, 1f
    FAIL "implausible PMP granularity"
1:  li t0, 2
    bltu s1, t0, 2f
    TESTNUM 2                           /* G >= 2, NAPOT: bits G-2:0 read as ones */
    li t0, CFG(1, PMP_NAPOT)
    csrw pmpcfg0, t0
    csrr a0, pmpaddr1
    addi t1, s1, -1
    li t2, 1
    sll t2, t2, t1
    addi t2, t2, -1
    and a0, a0, t2
    CHECK_EQR a0, t2
    csrw pmpcfg0, zero
2:  TESTNUM 3                           /* an aligned address reads back unchanged */
    li t0, 0x80400000 >> 2
    csrw pmpaddr1, t0
    csrr a0, pmpaddr1
    CHECK_EQ a0, 0x80400000 >> 2
    /* this file uses NA4 entries: G must be 0 */
    CHECK_EQ s1, 0

    /* ---- the regions ---- */
    li t0, NAPOT(R0, 4096)
    csrw pmpaddr0, t0
    li t0, R1 >> 2
    csrw pmpaddr1, t0
    li t0, R3 >> 2
    csrw pmpaddr2, t0
    li t0, (R3 + 4096) >> 2
    csrw pmpaddr3, t0
    csrw pmpaddr4, zero
    li t0, NAPOT(R5, 4096)
    csrw pmpaddr5, t0
    li t0, NAPOT(R5, 8192)
    csrw pmpaddr6, t0
    li t0, R7 >> 2
    csrw pmpaddr7, t0
    li t0, -1
    csrw pmpaddr15, t0
    li t0, CATCHALL
    csrw pmpcfg2, t0
    li t0, CFG0
    csrw pmpcfg0, t0
    sfence.vma
    TESTNUM 4
    CHECK_CSR pmpcfg0, CFG0
    CHECK_CSR pmpcfg2, CATCHALL

    /* ---- NAPOT, read-only ---- */
    RUN_IN(PRV_S, 10, li a1, R0 + 8; ld a0, 0(a1))
    li a1, R0 + 8
    AF_IN(PRV_S, 11, CAUSE_STORE_ACCESS, sd a0, 0(a1))
    AF_IN(PRV_U, 12, CAUSE_STORE_ACCESS, sb a0, 0(a1))
    AF_IN(PRV_S, 13, CAUSE_STORE_ACCESS, amoadd.d a0, a0, (a1))
    AF_FETCH PRV_S, 14, R0
    li a1, R0 + 4095                    /* last byte still inside */
    AF_IN(PRV_S, 15, CAUSE_STORE_ACCESS, sb a0, 0(a1))
    RUN_IN(PRV_S, 16, li a1, R0 - 8; sd a0, 0(a1))      /* just below: catch-all */

    /* ---- NA4, no access ---- */
    li a1, R1
    AF_IN(PRV_S, 20, CAUSE_LOAD_ACCESS, lw a0, 0(a1))
    AF_IN(PRV_U, 21, CAUSE_LOAD_ACCESS, lbu a0, 0(a1))
    li a1, R1 + 3
    AF_IN(PRV_S, 22, CAUSE_STORE_ACCESS, sb a0, 0(a1))
    RUN_IN(PRV_S, 23, li a1, R1 + 4; lw a0, 0(a1); sw a0, 4(a1))

    /* ---- TOR, execute only ---- */
    RUN_IN(PRV_S, 30, li a0, 0; li a1, R3; jalr a1)
    CHECK_EQ a0, 0x55
    RUN_IN(PRV_U, 31, li a0, 0; li a1, R3; jalr a1)
    CHECK_EQ a0, 0x55
    li a1, R3
    AF_IN(PRV_S, 32, CAUSE_LOAD_ACCESS, ld a0, 0(a1))
    li a1, R3 + 4088
    AF_IN(PRV_S, 33, CAUSE_STORE_ACCESS, sd a0, 0(a1))
    RUN_IN(PRV_S, 34, li a1, R3 + 4096; ld a0, 0(a1); li a1, R3 - 8; ld a0, 0(a1))

    /* ---- lowest-numbered match wins ---- */
    li a1, R5
    AF_IN(PRV_S, 40, CAUSE_STORE_ACCESS, sd a0, 0(a1))   /* e5 (R) before e6 (RW) */
    RUN_IN(PRV_S, 41, li a1, R5 + 4096; sd a0, 0(a1))    /* only e6 */
    li t0, CFG0 & ~(CFG(5, 0xff) | CFG(6, 0xff))
    li t1, CFG(5, PMP_NAPOT | PMP_R | PMP_W) | CFG(6, PMP_NAPOT)
    or t0, t0, t1
    csrw pmpcfg0, t0
    sfence.vma
    RUN_IN(PRV_S, 42, li a1, R5; sd a0, 0(a1))           /* e5 (RW) before e6 (none) */
    li a1, R5 + 4096
    AF_IN(PRV_S, 43, CAUSE_LOAD_ACCESS, ld a0, 0(a1))
    li t0, CFG0
    csrw pmpcfg0, t0
    sfence.vma

    /* ---- an access that only partly matches an entry fails ---- */
    li a1, R7
    AF_IN(PRV_S, 50, CAUSE_LOAD_ACCESS, ld a0, 0(a1))    /* 8 bytes, entry covers 4 */
    AF_IN(PRV_S, 51, CAUSE_STORE_ACCESS, sd a0, 0(a1))     /* (aligned: a misaligned one
                                                           * may legally be split) */
    RUN_IN(PRV_S, 52, li a1, R7; lw a0, 0(a1); sw a0, 0(a1))

    /* ---- M is not restricted by unlocked entries ---- */
    TESTNUM 60
    li a1, R1
    lw a0, 0(a1)
    sw a0, 0(a1)
    li a1, R0
    sd a0, 0(a1)
    li t1, LI_ADDI_A0_0x55
    sw t1, 0(a1)
    li t1, RET
    sw t1, 4(a1)
    fence.i
    jalr a1                             /* R0 is not executable for S/U, fine for M */
    CHECK_EQ a0, 0x55

    /* ---- no matching entry: S/U fail ---- */
    TESTNUM 70
    li t0, NAPOT(0x80000000, 0x200000)  /* e14: the image, RWX, instead of the catch-all */
    csrw pmpaddr14, t0
    li t0, CFG(6, PMP_NAPOT | PMP_R | PMP_W | PMP_X)
    csrw pmpcfg2, t0
    sfence.vma
    RUN_IN(PRV_S, 71, li a1, R0 + 16; ld a0, 0(a1))
    li a1, 0x80500000
    AF_IN(PRV_S, 72, CAUSE_LOAD_ACCESS, ld a0, 0(a1))
    AF_IN(PRV_U, 73, CAUSE_STORE_ACCESS, sd a0, 0(a1))
    TESTNUM 74                          /* M still fine there */
    ld a0, 0(a1)

    /* ---- odd pmpcfg registers do not exist on RV64 ---- */
    EXPECT_ILLEGAL(80, csrr a0, pmpcfg1)
    EXPECT_ILLEGAL(81, csrw pmpcfg3, zero)

    /* back to the runtime's single catch-all entry */
    csrw pmpcfg2, zero
    li t0, -1
    csrw pmpaddr0, t0
    li t0, PMP_NAPOT | PMP_R | PMP_W | PMP_X
    csrw pmpcfg0, t0
    sfence.vma
    j pass

/* Sv39 accessed/dirty bits (priv spec 4.3.1, 4.3.2 step 7, Svade/Svadu): an access sets A,
 * a store (or AMO) also sets D, a load never sets D, a faulting access sets neither, and
 * non-leaf PTEs are never marked. The hardware may instead raise a page fault when A (or D
 * for a store) is clear (Svade); the test accepts that, sets the bit itself and retries. */
#include "common.h"
#include "vm.inc"

#define VA_A      0x100000000           /* A = D = 0, RW */
#define VA_B      0x100001000           /* A = D = 0, RW: first access is a store */
#define VA_C      0x100002000           /* A = 1, D = 0: AMO */
#define VA_X      0x100003000           /* A = 0, X */
#define VA_RO     0x100004000           /* A = 0, R only: faulting store */
#define VA_MEGA   0x140000000           /* 2 MiB, A = D = 0 */
#define PTE_NOAD (PTE_V | PTE_R | PTE_W)

/* Run `insns` in S with the address in a1 (the PTE address in s1). If it faults with
 * `cause`, set the bits in `fix` in the PTE, sfence and retry once. */
#define AD_TRY(n, cause, fix, ...) AD_PRE n; __VA_ARGS__; AD_POST n, cause, fix

.macro AD_PRE n
    TESTNUM \n
    li s2, 0                            /* retries */
.Lad_again_\n:
    CLEAR_TRAPS
    EXPECT_STRAP_TO_M .Lad_back_\n
    GOTO_MODE PRV_S, .Lad_at_\n
.Lad_at_\n:
.endm

.macro AD_POST n, cause, fix
    ecall
.Lad_back_\n:
    CLEAR_EXPECT
    ld t5, HD_SCOUNT(tp)
    beqz t5, .Lad_ok_\n
    /* faulted: allowed once, with the expected cause, if the bit was clear */
    bnez s2, .Lad_bad_\n
    CHECK_SCAUSE \cause
    ld t5, 0(s1)
    ori t5, t5, \fix
    sd t5, 0(s1)
    sfence.vma
    li s2, 1
    j .Lad_again_\n
.Lad_bad_\n:
    FAIL "faulted again after the A/D bits were set"
.Lad_ok_\n:
    CHECK_MCAUSE CAUSE_ECALL_S
.endm

    .text
    .globl test_main
test_main:
    li a0, 3
    call vm_init
    call vm_std_maps
    .irp va, VA_A, VA_B, VA_C
    li a0, \va
    li a1, PA_DATA
    li a2, 0
    li a3, PTE_NOAD
    call vm_map
    .endr
    li a0, VA_C
    call vm_pte
    ld t0, 0(a0)
    ori t0, t0, PTE_A
    sd t0, 0(a0)
    li a0, VA_X
    la a1, ad_code
    li a2, 0
    li a3, PTE_V | PTE_X
    call vm_map
    li a0, VA_RO
    li a1, PA_DATA
    li a2, 0
    li a3, PTE_V | PTE_R
    call vm_map
    li a0, VA_MEGA
    li a1, 0x80000000
    li a2, 1
    li a3, PTE_NOAD | PTE_X
    call vm_map
    li t0, PA_DATA
    li t1, 0x1234
    sd t1, 0(t0)
    call vm_enable

    /* ---- load: A set, D left clear ---- */
    li a0, VA_A
    call vm_pte
    mv s1, a0
    AD_TRY(1, CAUSE_LOAD_PAGE, PTE_A, li a1, VA_A; ld a0, 0(a1))
    CHECK_EQ a0, 0x1234
    ld a0, 0(s1)
    CHECK_MASKED a0, PTE_A | PTE_D, PTE_A
    /* ---- then a store: D set ---- */
    AD_TRY(2, CAUSE_STORE_PAGE, PTE_D, li a1, VA_A; li a2, 0x99; sd a2, 8(a1))
    ld a0, 0(s1)
    CHECK_MASKED a0, PTE_A | PTE_D, PTE_A | PTE_D
    li t0, PA_DATA
    ld a0, 8(t0)
    CHECK_EQ a0, 0x99

    /* ---- first access a store: both A and D ---- */
    li a0, VA_B
    call vm_pte
    mv s1, a0
    AD_TRY(3, CAUSE_STORE_PAGE, PTE_A | PTE_D, li a1, VA_B; sw zero, 16(a1))
    ld a0, 0(s1)
    CHECK_MASKED a0, PTE_A | PTE_D, PTE_A | PTE_D

    /* ---- an AMO is a store: D set ---- */
    li a0, VA_C
    call vm_pte
    mv s1, a0
    AD_TRY(4, CAUSE_STORE_PAGE, PTE_D, li a1, VA_C; li a2, 1; amoadd.d a0, a2, (a1))
    ld a0, 0(s1)
    CHECK_MASKED a0, PTE_A | PTE_D, PTE_A | PTE_D

    /* ---- a fetch sets A ---- */
    li a0, VA_X
    call vm_pte
    mv s1, a0
    AD_TRY(5, CAUSE_FETCH_PAGE, PTE_A, li a1, VA_X; jalr a1)
    CHECK_EQ a0, 0xad
    ld a0, 0(s1)
    CHECK_MASKED a0, PTE_A | PTE_D, PTE_A

    /* ---- a store that is not permitted sets nothing ---- */
    TESTNUM 6
    li a0, VA_RO
    call vm_pte
    mv s1, a0
    li a1, VA_RO
    PF_IN(PRV_S, 6, CAUSE_STORE_PAGE, a1, sd zero, 0(a1))
    ld a0, 0(s1)
    CHECK_MASKED a0, PTE_A | PTE_D, 0

    /* ---- megapage leaf: marked at level 1; the non-leaf root entry is not ---- */
    li a0, VA_MEGA
    call vm_pte
    mv s1, a0
    AD_TRY(7, CAUSE_STORE_PAGE, PTE_A | PTE_D, la a1, ad_scratch; li t0, VA_MEGA - 0x80000000; add a1, a1, t0; sd zero, 0(a1))
    ld a0, 0(s1)
    CHECK_MASKED a0, PTE_A | PTE_D, PTE_A | PTE_D
    TESTNUM 8
    la t0, pt_root                      /* root entries pointing to tables */
    ld t0, 0(t0)
    li t1, (VA_MEGA >> 30) & 511
    slli t1, t1, 3
    add t0, t0, t1
    ld a0, 0(t0)
    CHECK_MASKED a0, PTE_A | PTE_D | PTE_U | PTE_R | PTE_W | PTE_X, 0
    la t0, pt_root
    ld t0, 0(t0)
    li t1, (VA_A >> 30) & 511
    slli t1, t1, 3
    add t0, t0, t1
    ld a0, 0(t0)
    CHECK_MASKED a0, PTE_A | PTE_D | PTE_U | PTE_R | PTE_W | PTE_X, 0

    csrw satp, zero
    sfence.vma
    csrw medeleg, zero
    j pass

    .balign 4096
    .option push
    .option norvc
ad_code:
    li a0, 0xad
    ret
    .option pop
    .balign 4096

    .data
    .balign 8
ad_scratch: .dword 0

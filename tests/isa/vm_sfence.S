/* sfence.vma (priv spec 4.2.1): after page-table or satp changes, an SFENCE.VMA (all, by
 * address, by address and ASID) makes the new translation visible; switching satp between
 * two page-table trees; switching translation off; switching between two fresh ASIDs
 * without a fence. Only outcomes the spec guarantees are
 * checked (stale translations without a fence may or may not be seen). */
#include "common.h"
#include "vm.inc"

#define VA_T 0x100000000

.macro SET_PTE pa, flags              /* from M or S: rewrite VA_T's leaf (s1) */
    li t0, \pa
    srli t0, t0, 12
    slli t0, t0, 10
    ori t0, t0, \flags
    sd t0, 0(s1)
.endm

    .text
    .globl test_main
test_main:
    li a0, 3
    call vm_init
    call vm_std_maps
    li a0, VA_T
    li a1, PA_DATA
    li a2, 0
    li a3, PTE_LEAF_RW
    call vm_map
    mv s1, a0                           /* &PTE: identity-mapped, S can write it */
    call vm_satp
    mv s2, a0                           /* satp of tree A */
    li t0, PA_DATA
    li t1, 0x1111
    sd t1, 0(t0)
    li t0, PA_DATA2
    li t1, 0x2222
    sd t1, 0(t0)
    li t0, PA_DATA3
    li t1, 0x3333
    sd t1, 0(t0)
    call vm_enable

    OK_IN(PRV_S, 1, li a1, VA_T; ld a0, 0(a1))
    CHECK_EQ a0, 0x1111
    /* S rewrites the PTE, fences that address */
    OK_IN(PRV_S, 2, SET_PTE PA_DATA2, PTE_LEAF_RW; li a1, VA_T; sfence.vma a1; ld a0, 0(a1))
    CHECK_EQ a0, 0x2222
    /* fence everything */
    OK_IN(PRV_S, 3, SET_PTE PA_DATA, PTE_LEAF_RW; sfence.vma; li a1, VA_T; ld a0, 0(a1))
    CHECK_EQ a0, 0x1111
    /* fence by address and ASID 0 */
    OK_IN(PRV_S, 4, SET_PTE PA_DATA3, PTE_LEAF_RW; li a1, VA_T; sfence.vma a1, zero; ld a0, 0(a1))
    CHECK_EQ a0, 0x3333
    /* invalidated PTE faults after the fence (here fenced from M) */
    SET_PTE PA_DATA, PTE_R
    sfence.vma
    li a1, VA_T
    PF_IN(PRV_S, 5, CAUSE_LOAD_PAGE, a1, ld a0, 0(a1))
    /* read-only, then upgraded to writable */
    SET_PTE PA_DATA, PTE_V | PTE_R | PTE_A
    sfence.vma
    PF_IN(PRV_S, 6, CAUSE_STORE_PAGE, a1, sd a1, 0(a1))
    OK_IN(PRV_S, 7, SET_PTE PA_DATA, PTE_LEAF_RW; li a1, VA_T; sfence.vma a1; li a2, 0x4444; sd a2, 0(a1))
    li t0, PA_DATA
    ld a0, 0(t0)
    CHECK_EQ a0, 0x4444
    /* a mapping removed from a valid, previously used page */
    OK_IN(PRV_S, 8, li a1, VA_T; ld a0, 0(a1); SET_PTE PA_DATA, 0; sfence.vma a1)
    li a1, VA_T
    PF_IN(PRV_S, 9, CAUSE_STORE_PAGE, a1, sd zero, 0(a1))
    SET_PTE PA_DATA, PTE_LEAF_RW
    sfence.vma

    /* ---- a second tree (B) maps VA_T elsewhere; S switches satp and fences ---- */
    call vm_new_root
    call vm_std_maps
    li a0, VA_T
    li a1, PA_DATA2
    li a2, 0
    li a3, PTE_LEAF_RW
    call vm_map
    call vm_satp
    mv s3, a0                           /* satp of tree B */
    csrw satp, s2
    sfence.vma
    OK_IN(PRV_S, 10, li a1, VA_T; ld a0, 0(a1); csrw satp, s3; sfence.vma; ld a2, 0(a1))
    CHECK_EQ a0, 0x4444
    CHECK_EQ a2, 0x2222
    TESTNUM 11
    csrr a0, satp
    CHECK_EQR a0, s3
    /* and back to tree A */
    OK_IN(PRV_S, 12, csrw satp, s2; sfence.vma; li a1, VA_T; ld a0, 0(a1))
    CHECK_EQ a0, 0x4444
    /* translation off from S (running on the identity map): physical addresses again */
    OK_IN(PRV_S, 13, csrw satp, zero; sfence.vma; li a1, PA_DATA3; ld a0, 0(a1))
    CHECK_EQ a0, 0x3333

    /* ---- ASIDs: with distinct, freshly flushed ASIDs, switching satp needs no fence
     * (4.2.1). Skipped if the hart has fewer than 2 ASID bits. ---- */
    TESTNUM 14
    li t0, 1 << 44
    or s4, s2, t0                       /* tree A, ASID 1 */
    li t0, 2 << 44
    or s5, s3, t0                       /* tree B, ASID 2 */
    csrw satp, s4
    csrr a0, satp
    bne a0, s4, 1f
    csrw satp, s5
    csrr a0, satp
    bne a0, s5, 1f
    sfence.vma
    OK_IN(PRV_S, 15, li a1, VA_T; csrw satp, s4; ld a0, 0(a1); csrw satp, s5; ld a2, 0(a1); csrw satp, s4; ld a3, 0(a1))
    CHECK_EQ a0, 0x4444
    CHECK_EQ a2, 0x2222
    CHECK_EQ a3, 0x4444
1:  csrw satp, zero
    sfence.vma

    csrw medeleg, zero
    j pass

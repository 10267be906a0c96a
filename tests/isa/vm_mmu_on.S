/* Turning translation on from S the way Linux does (arch/riscv/kernel/head.S,
 * relocate_enable_mmu): running at a physical address that the new tables do not map, S
 * points stvec at the virtual address it wants to continue at and writes satp. The very
 * next fetch uses the new satp (priv spec 4.1.11), faults (instruction page fault), and the
 * trap lands at stvec, now translated. No sfence.vma in between. */
#include "common.h"
#include "vm.inc"

#define KVA 0xffffffc000000000          /* the image seen at a high virtual address */
#define KOFF (KVA - 0x80000000)

    .text
    .globl test_main
test_main:
    li a0, 3
    call vm_init
    li a0, KVA                          /* only mapping: the image, high; no identity map */
    li a1, 0x80000000
    li a2, 2
    li a3, PTE_LEAF_RWX
    call vm_map
    call vm_satp
    mv s0, a0
    li t0, 1 << CAUSE_FETCH_PAGE
    csrw medeleg, t0
    csrw satp, zero
    sfence.vma

    TESTNUM 1
    EXPECT_MTRAP 1f
    GOTO_MODE PRV_S, 2f
2:  la t0, 3f                           /* S, bare: continue at 3f's high alias */
    li t1, KOFF
    add t0, t0, t1
    csrw stvec, t0
    csrw satp, s0
    .option push
    .option norvc
4:  nop                                 /* fetched with the new satp: page fault */
    nop
    .option pop
    li a0, -1                           /* must not get here */
    ecall
    .balign 4
3:  csrr a0, scause                     /* here at KVA + ... */
    csrr a1, sepc
    csrr a2, stval
    auipc a3, 0
    ecall                               /* not delegated: to M */
1:  CHECK_MCAUSE CAUSE_ECALL_S
    CHECK_EQ a0, CAUSE_FETCH_PAGE
    la t0, 4b
    CHECK_EQR a1, t0                    /* sepc: the physical pc of the next instruction */
    CHECK_EQR a2, t0
    li t0, KOFF                         /* and the handler ran at the virtual address */
    la t1, 3b
    add t0, t0, t1
    addi t0, t0, 12
    CHECK_EQR a3, t0

    la t0, strap_entry
    csrw stvec, t0
    csrw medeleg, zero
    csrw satp, zero
    sfence.vma
    j pass

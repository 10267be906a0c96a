/* satp is WARL (priv spec 4.1.11): writing a MODE the hart does not support leaves satp
 * unchanged (Linux probes Sv57, Sv48, Sv39 this way); Sv39, Sv48 and Sv57 are all
 * supported; ASID bits are WARL but MODE and PPN read back as written. */
#include "common.h"
#include "vm.inc"

    .text
    .globl test_main
test_main:
    li a0, 3
    call vm_init
    call vm_std_maps
    call vm_satp
    mv s0, a0                           /* Sv39 | root */
    srli s1, s0, 60
    slli s1, s1, 60
    xor s1, s0, s1                      /* PPN alone */

    TESTNUM 1
    CHECK_CSR satp, 0
    csrw satp, s0
    csrr a0, satp
    CHECK_EQR a0, s0

    /* ---- reserved and unsupported modes: no change at all ---- */
    .irp mode, 1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 14, 15
    TESTNUM 10 + \mode
    li t0, \mode
    slli t0, t0, 60
    or t0, t0, s1
    csrw satp, t0
    csrr a0, satp
    CHECK_EQR a0, s0
    .endr

    /* ---- the supported modes ---- */
    .irp mode, 9, 10, 8
    TESTNUM 30 + \mode
    li t0, \mode
    slli t0, t0, 60
    or t0, t0, s1
    csrw satp, t0
    csrr a0, satp
    CHECK_EQR a0, t0
    .endr
    TESTNUM 40                          /* back to Bare */
    csrw satp, zero
    CHECK_CSR satp, 0
    TESTNUM 41                          /* an unsupported mode from Bare: stays Bare */
    li t0, 11 << 60
    or t0, t0, s1
    csrw satp, t0
    CHECK_CSR satp, 0

    /* ---- ASID is WARL; MODE and PPN are kept ---- */
    TESTNUM 42
    li t0, 0xffff << 44
    or t0, t0, s0
    csrw satp, t0
    csrr a0, satp
    li t1, 0xffff << 44
    not t1, t1
    and a1, a0, t1
    CHECK_EQR a1, s0
    srli a0, a0, 44
    li t1, 0xffff
    and a0, a0, t1                      /* implemented ASID bits: any (ASIDLEN 0..16) */
    csrw satp, zero

    /* ---- from S (TVM = 0) the same rules apply ---- */
    TESTNUM 50
    li t0, 7 << 60
    or s2, s1, t0
    RUN_IN(PRV_S, 50, csrw satp, s0; csrw satp, s2; csrr a0, satp; csrw satp, zero)
    CHECK_EQR a0, s0
    j pass

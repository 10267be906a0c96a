/* Sv39 page faults, taken in S (medeleg) with scause 12/13/15 and stval = the address
 * (priv spec 4.3.2 translation algorithm, 4.3.1 PTE permissions): invalid PTE, W without
 * R, U page from S (SUM off/on, never executable from S), S page from U, non-executable
 * page, read-only page, execute-only page with and without MXR, misaligned superpages,
 * reserved PTE bits, a pointer PTE at the last level, an instruction that crosses into an
 * unmapped page (stval = address of the missing part), and M-mode accesses translated
 * through MPRV. */
#include "common.h"
#include "vm.inc"

#define VA_BASE   0x100000000
#define VA_INV    (VA_BASE + 0x0000)       /* V = 0 */
#define VA_WNR    (VA_BASE + 0x1000)       /* W without R */
#define VA_UDATA  (VA_BASE + 0x2000)       /* U, RW */
#define VA_UCODE  (VA_BASE + 0x3000)       /* U, RX */
#define VA_SDATA  (VA_BASE + 0x4000)       /* S, RW */
#define VA_SCODE  (VA_BASE + 0x5000)       /* S, X */
#define VA_RO     (VA_BASE + 0x7000)       /* S, R */
#define VA_XO     (VA_BASE + 0x8000)       /* S, X only */
#define VA_UXO    (VA_BASE + 0x9000)       /* U, X only */
#define VA_RSV    (VA_BASE + 0xa000)       /* reserved bit 58 set */
#define VA_CROSS  (VA_BASE + 0xb000)       /* X page; the next page is unmapped */
#define VA_PTR0   (VA_BASE + 0xd000)       /* level-0 PTE with R = W = X = 0 */
#define VA_MEGA_BAD 0x140000000            /* 2 MiB leaf whose PA is 4 KiB aligned only */
#define VA_GIGA_BAD 0x180000000            /* 1 GiB leaf whose PA is 2 MiB aligned only */

.macro MAP va, pa, level, flags
    li a0, \va
    li a1, \pa
    li a2, \level
    li a3, \flags
    call vm_map
.endm
.macro MAPL va, label, flags
    li a0, \va
    la a1, \label
    li a2, 0
    li a3, \flags
    call vm_map
.endm

    .text
    .globl test_main
test_main:
    li a0, 3
    call vm_init
    call vm_std_maps
    MAP VA_INV, PA_DATA, 0, PTE_R | PTE_W | PTE_X | PTE_A | PTE_D
    MAP VA_WNR, PA_DATA, 0, PTE_V | PTE_W | PTE_A | PTE_D
    MAP VA_UDATA, PA_DATA, 0, PTE_LEAF_RW | PTE_U
    MAPL VA_UCODE, fault_code, PTE_V | PTE_R | PTE_X | PTE_A | PTE_U
    MAP VA_SDATA, PA_DATA, 0, PTE_LEAF_RW
    MAPL VA_SCODE, fault_code, PTE_V | PTE_X | PTE_A
    MAP VA_RO, PA_DATA, 0, PTE_V | PTE_R | PTE_A
    MAPL VA_XO, fault_code, PTE_V | PTE_X | PTE_A
    MAPL VA_UXO, fault_code, PTE_V | PTE_X | PTE_A | PTE_U
    li a0, VA_RSV
    li a1, PA_DATA
    li a2, 0
    li a3, PTE_LEAF_RW | (1 << 58)
    call vm_map
    MAPL VA_CROSS, cross_page, PTE_V | PTE_X | PTE_A
    MAP VA_MEGA_BAD, PA_DATA2, 1, PTE_LEAF_RWX
    MAP VA_GIGA_BAD, 0x80200000, 2, PTE_LEAF_RWX
    /* VA_PTR0: a valid PTE at level 0 that points on (R = W = X = 0) */
    MAP VA_PTR0, PA_DATA3, 0, PTE_V
    li t0, PA_DATA
    li t1, 0x7777666655554444
    sd t1, 0(t0)
    call vm_enable

    /* ---- invalid PTE ---- */
    li a1, VA_INV + 8
    PF_IN(PRV_S, 1, CAUSE_LOAD_PAGE, a1, ld a0, 0(a1))
    PF_IN(PRV_S, 2, CAUSE_STORE_PAGE, a1, sd a0, 0(a1))
    PF_IN(PRV_S, 3, CAUSE_FETCH_PAGE, a1, jalr a1)
    PF_IN(PRV_U, 4, CAUSE_LOAD_PAGE, a1, lbu a0, 0(a1))
    PF_AMO_IN(PRV_S, 5, a1, amoadd.d a0, a0, (a1))     /* AMO: store fault */
    PF_IN(PRV_S, 6, CAUSE_LOAD_PAGE, a1, lr.d a0, (a1))

    /* ---- W without R is reserved: every access faults ---- */
    li a1, VA_WNR
    PF_IN(PRV_S, 10, CAUSE_LOAD_PAGE, a1, ld a0, 0(a1))
    PF_IN(PRV_S, 11, CAUSE_STORE_PAGE, a1, sd a0, 0(a1))

    /* ---- U page from S: only with SUM, and never for fetch ---- */
    li t0, MSTATUS_SUM
    csrc mstatus, t0
    li a1, VA_UDATA
    PF_IN(PRV_S, 20, CAUSE_LOAD_PAGE, a1, ld a0, 0(a1))
    PF_IN(PRV_S, 21, CAUSE_STORE_PAGE, a1, sd a0, 0(a1))
    li t0, MSTATUS_SUM
    csrs mstatus, t0
    OK_IN(PRV_S, 22, li a1, VA_UDATA; ld a0, 0(a1); sd a0, 8(a1))
    CHECK_EQ a0, 0x7777666655554444
    li a1, VA_UCODE
    PF_IN(PRV_S, 23, CAUSE_FETCH_PAGE, a1, jalr a1)
    li t0, MSTATUS_SUM
    csrc mstatus, t0
    PF_IN(PRV_S, 24, CAUSE_FETCH_PAGE, a1, jalr a1)
    OK_IN(PRV_U, 25, li a1, VA_UDATA; ld a0, 0(a1))
    CHECK_EQ a0, 0x7777666655554444
    OK_IN(PRV_U, 26, li a1, VA_UCODE; jalr a1)
    CHECK_EQ a0, 0xc0de

    /* ---- S page from U ---- */
    li a1, VA_SDATA
    PF_IN(PRV_U, 30, CAUSE_LOAD_PAGE, a1, ld a0, 0(a1))
    PF_IN(PRV_U, 31, CAUSE_STORE_PAGE, a1, sw a0, 0(a1))
    li a1, VA_SCODE
    PF_IN(PRV_U, 32, CAUSE_FETCH_PAGE, a1, jalr a1)
    li a1, 0x80000000 + 0x100          /* the identity (S) gigapage, from U */
    PF_IN(PRV_U, 33, CAUSE_LOAD_PAGE, a1, ld a0, 0(a1))
    OK_IN(PRV_S, 34, li a1, VA_SCODE; jalr a1)
    CHECK_EQ a0, 0xc0de

    /* ---- not executable / read-only ---- */
    li a1, VA_SDATA + 0x10
    PF_IN(PRV_S, 40, CAUSE_FETCH_PAGE, a1, jalr a1)
    li a1, VA_RO + 0x18
    PF_IN(PRV_S, 41, CAUSE_STORE_PAGE, a1, sd a0, 0(a1))
    PF_AMO_IN(PRV_S, 42, a1, amoswap.d a0, a0, (a1))
    OK_IN(PRV_S, 43, li a1, VA_RO; ld a0, 0(a1))
    CHECK_EQ a0, 0x7777666655554444

    /* ---- execute-only, and MXR ---- */
    li t0, MSTATUS_MXR
    csrc mstatus, t0
    li a1, VA_XO
    PF_IN(PRV_S, 50, CAUSE_LOAD_PAGE, a1, lw a0, 0(a1))
    li t0, MSTATUS_MXR
    csrs mstatus, t0
    OK_IN(PRV_S, 51, li a1, VA_XO; lw a0, 0(a1))
    la t0, fault_code
    lw a1, 0(t0)
    CHECK_EQR a0, a1                    /* read the instruction through MXR */
    li a1, VA_XO
    PF_IN(PRV_S, 52, CAUSE_STORE_PAGE, a1, sw a0, 0(a1))   /* MXR does not grant W */
    li a1, VA_UXO
    OK_IN(PRV_U, 53, li a1, VA_UXO; lw a0, 0(a1))
    li t0, MSTATUS_MXR
    csrc mstatus, t0
    li a1, VA_UXO
    PF_IN(PRV_U, 54, CAUSE_LOAD_PAGE, a1, lw a0, 0(a1))

    /* ---- misaligned superpages ---- */
    li a1, VA_MEGA_BAD + 0x10
    PF_IN(PRV_S, 60, CAUSE_LOAD_PAGE, a1, ld a0, 0(a1))
    PF_IN(PRV_S, 61, CAUSE_STORE_PAGE, a1, sd a0, 0(a1))
    PF_IN(PRV_S, 62, CAUSE_FETCH_PAGE, a1, jalr a1)
    li a1, VA_GIGA_BAD + 0x200000
    PF_IN(PRV_S, 63, CAUSE_LOAD_PAGE, a1, ld a0, 0(a1))

    /* ---- reserved PTE bits (63:54 without Svpbmt/Svnapot in use) ---- */
    li a1, VA_RSV
    PF_IN(PRV_S, 70, CAUSE_LOAD_PAGE, a1, ld a0, 0(a1))
    /* ---- a pointer where a leaf must be ---- */
    li a1, VA_PTR0
    PF_IN(PRV_S, 71, CAUSE_LOAD_PAGE, a1, ld a0, 0(a1))

    /* ---- an instruction that crosses into an unmapped page: sepc = its start, stval = the
     * start of the missing page (or 0, which the spec also allows) ---- */
    TESTNUM 80
    li a1, VA_CROSS + 4094
    CLEAR_TRAPS
    EXPECT_STRAP_TO_M 1f
    GOTO_MODE PRV_S, 2f
2:  jalr a1
    ecall
1:  CHECK_SCAUSE CAUSE_FETCH_PAGE
    ld a0, HD_SEPC(tp)
    CHECK_EQR a0, a1
    ld a0, HD_STVAL(tp)
    CHECK_EQ2 a0, VA_CROSS + 4096, 0
    TESTNUM 81                          /* the same instruction runs through the identity map */
    li a0, 5
    la t0, cross_insn
    jalr t0
    CHECK_EQ a0, 6

    /* ---- MPRV: M-mode loads/stores translated as MPP; faults stay in M ---- */
    TESTNUM 90
    li a1, VA_SDATA
    li t0, MSTATUS_MPP
    csrc mstatus, t0
    li t0, MSTATUS_MPRV | MSTATUS_MPP_S
    csrs mstatus, t0
    ld a0, 0(a1)                        /* as S */
    li t0, MSTATUS_MPRV
    csrc mstatus, t0
    CHECK_EQ a0, 0x7777666655554444
    TESTNUM 91                          /* as S, a U page without SUM: fault, to M */
    li a1, VA_UDATA
    CLEAR_TRAPS
    EXPECT_MTRAP 1f
    li t0, MSTATUS_MPP
    csrc mstatus, t0
    li t0, MSTATUS_MPRV | MSTATUS_MPP_S
    csrs mstatus, t0
2:  ld a0, 0(a1)
1:  li t0, MSTATUS_MPRV                 /* before any other memory access */
    csrc mstatus, t0
    CHECK_MCAUSE CAUSE_LOAD_PAGE
    CHECK_MTVALR a1
    CHECK_MEPC 2b
    ld a0, HD_SCOUNT(tp)
    CHECK_EQ a0, 0
    TESTNUM 92                          /* as U: U page fine */
    li a1, VA_UDATA
    li t0, MSTATUS_MPP
    csrc mstatus, t0
    li t0, MSTATUS_MPRV
    csrs mstatus, t0
    ld a0, 0(a1)
    li t0, MSTATUS_MPRV
    csrc mstatus, t0
    CHECK_EQ a0, 0x7777666655554444
    TESTNUM 93                          /* as S with MXR: execute-only page readable */
    li a1, VA_XO
    li t0, MSTATUS_MPP
    csrc mstatus, t0
    li t0, MSTATUS_MPRV | MSTATUS_MPP_S | MSTATUS_MXR
    csrs mstatus, t0
    lw a0, 0(a1)
    li t0, MSTATUS_MPRV | MSTATUS_MXR
    csrc mstatus, t0
    la t0, fault_code
    lw a1, 0(t0)
    CHECK_EQR a0, a1
    TESTNUM 94                          /* MPRV does not affect instruction fetch */
    li t0, MSTATUS_MPP
    csrc mstatus, t0
    li t0, MSTATUS_MPRV | MSTATUS_MPP_S
    csrs mstatus, t0
    li a0, 1
    addi a0, a0, 1                      /* still fetching physically in M */
    li t0, MSTATUS_MPRV
    csrc mstatus, t0
    CHECK_EQ a0, 2

    csrw satp, zero
    sfence.vma
    csrw medeleg, zero
    j pass

    .balign 4096
    .option push
    .option norvc
fault_code:
    li a0, 0xc0de
    ret
    .balign 4096
cross_page:
    .space 4094
cross_insn:                             /* 4 bytes starting 2 bytes before a page boundary */
    addi a0, a0, 1
    ret
    .option pop
    .balign 4096

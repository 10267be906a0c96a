/* Runtime linked into every ISA test: reset entry, per-hart set-up, M and S trap handlers
 * with expected-trap bookkeeping, UART printing, pass/fail reporting.
 * Built with -DTEST_NAME=<name> so the pass line names the test. */
#include "common.h"

#define STR2(x) #x
#define STR(x) STR2(x)

/* Wait for THRE in the UART's LSR, then write the byte in `reg`. Clobbers t0, t1. */
.macro PUTC reg
    li t0, UART_BASE
.Lputc_wait\@:
    lbu t1, UART_LSR(t0)
    andi t1, t1, UART_LSR_THRE
    beqz t1, .Lputc_wait\@
    sb \reg, UART_THR(t0)
.endm

    .section .text.init, "ax"
    .globl _start
_start:
    /* All harts arrive here in M-mode (a0 = hartid, a1 = device tree). */
    csrr t0, mhartid
    li t1, MAX_HARTS
    bgeu t0, t1, park
    la tp, hart_data
    slli t2, t0, 10                 /* HART_DATA_SIZE */
    add tp, tp, t2
    la sp, stacks
    addi t2, t0, 1
    slli t2, t2, 13                 /* STACK_SIZE */
    add sp, sp, t2

    la t1, mtrap_entry
    csrw mtvec, t1
    la t1, strap_entry
    csrw stvec, t1
    csrw mscratch, tp
    csrw sscratch, tp
    csrw mie, zero
    csrw mideleg, zero
    csrw medeleg, zero
    csrw satp, zero
    /* No timer or software interrupt pending at the start (QEMU resets mtimecmp to 0). */
    li t1, CLINT_MTIMECMP(0)
    slli t2, t0, 3
    add t1, t1, t2
    li t2, -1
    sd t2, 0(t1)
    li t1, CLINT_MSIP(0)
    slli t2, t0, 2
    add t1, t1, t2
    sw zero, 0(t1)
    li t1, MSTATUS_MIE | MSTATUS_SIE | MSTATUS_MPRV | MSTATUS_FS | MSTATUS_TVM | MSTATUS_TW | MSTATUS_TSR | MSTATUS_SUM | MSTATUS_MXR
    csrc mstatus, t1
    /* FP usable from the start (tests of FS=Off clear it themselves). */
    li t1, MSTATUS_FS_INITIAL
    csrs mstatus, t1
    /* With PMP implemented, S/U accesses matching no entry fail (priv spec 3.7.1):
     * give entry 0 the whole address space. */
    li t1, -1
    csrw pmpaddr0, t1
    li t1, PMP_NAPOT | PMP_R | PMP_W | PMP_X
    csrw pmpcfg0, t1
    sfence.vma

    bnez t0, secondary

    /* Hart 0: clear .bss, then release the others. */
    la t1, __bss_start
    la t2, __bss_end
1:  bgeu t1, t2, 2f
    sd zero, 0(t1)
    addi t1, t1, 8
    j 1b
2:  sd t0, HD_HARTID(tp)
    /* QEMU reports its version in both marchid and mimpid (mvendorid 0): a few checks
     * tolerate documented QEMU 7.2 deviations from the spec only then (see README.md). */
#ifndef NO_QEMU_QUIRKS
    csrr t1, mvendorid
    bnez t1, 3f
    csrr t1, marchid
    csrr t2, mimpid
    bne t1, t2, 3f
    beqz t1, 3f
    li t2, 1
    la t1, qemu_quirks
    sw t2, 0(t1)
#endif
3:  fence rw, rw
    la t1, boot_done
    li t2, 1
    sw t2, 0(t1)
    li gp, 0
    j test_main

secondary:
    la t1, boot_done
1:  lw t2, 0(t1)
    beqz t2, 1b
    fence rw, rw
    sd t0, HD_HARTID(tp)
    li gp, 0
    ld t1, secondary_ptr
    beqz t1, park
    jr t1

    .globl park
park:
    csrw mie, zero
1:  wfi
    j 1b

    .weak test_secondary

/* ---- M-mode trap handler ----------------------------------------------------------------
 * Exceptions: if HD_MRESUME is set, record the trap and resume there (one shot), otherwise
 * report an unexpected trap. Interrupts: log the cause, clear its bit in mie, return. */
    .text
    .balign 4
    .globl mtrap_entry
mtrap_entry:
    csrrw sp, mscratch, sp
    sd t0, HD_MSAVE + 0(sp)
    sd t1, HD_MSAVE + 8(sp)
    sd t2, HD_MSAVE + 16(sp)
    sd t3, HD_MSAVE + 24(sp)
    sd t4, HD_MSAVE + 32(sp)
    csrr t0, mcause
    csrr t1, mepc
    csrr t2, mtval
    csrr t3, mstatus
    sd t0, HD_MCAUSE(sp)
    sd t1, HD_MEPC(sp)
    sd t2, HD_MTVAL(sp)
    sd t3, HD_MSTATUS(sp)
    ld t4, HD_MCOUNT(sp)
    addi t4, t4, 1
    sd t4, HD_MCOUNT(sp)
    bltz t0, mtrap_irq

    ld t4, HD_SUNEXP(sp)
    bnez t4, unexpected_s
    ld t4, HD_MRESUME(sp)
    beqz t4, unexpected_m
    sd zero, HD_MRESUME(sp)
    csrw mepc, t4
    ld t4, HD_MRESUME_MODE(sp)
    bltz t4, mtrap_ret
    li t1, MSTATUS_MPP
    csrc mstatus, t1
    slli t4, t4, 11
    csrs mstatus, t4
mtrap_ret:
    ld t0, HD_MSAVE + 0(sp)
    ld t1, HD_MSAVE + 8(sp)
    ld t2, HD_MSAVE + 16(sp)
    ld t3, HD_MSAVE + 24(sp)
    ld t4, HD_MSAVE + 32(sp)
    csrrw sp, mscratch, sp
    mret

mtrap_irq:
    ld t4, HD_MICOUNT(sp)
    li t1, 8
    bgeu t4, t1, 1f
    slli t1, t4, 3
    add t1, t1, sp
    sd t0, HD_MILOG(t1)
1:  addi t4, t4, 1
    sd t4, HD_MICOUNT(sp)
    li t1, 1
    sll t1, t1, t0                  /* shift uses the low 6 bits: the interrupt number */
    csrc mie, t1
    j mtrap_ret

/* ---- S-mode trap handler ----------------------------------------------------------------
 * Same scheme with HD_SRESUME; resume mode 3 means: record, then ecall so that M resumes at
 * its own expectation. Unexpected S traps are reported from M (flag + ecall). */
    .balign 4
    .globl strap_entry
strap_entry:
    csrrw sp, sscratch, sp
    sd t0, HD_SSAVE + 0(sp)
    sd t1, HD_SSAVE + 8(sp)
    sd t2, HD_SSAVE + 16(sp)
    sd t3, HD_SSAVE + 24(sp)
    sd t4, HD_SSAVE + 32(sp)
    csrr t0, scause
    csrr t1, sepc
    csrr t2, stval
    csrr t3, sstatus
    sd t0, HD_SCAUSE(sp)
    sd t1, HD_SEPC(sp)
    sd t2, HD_STVAL(sp)
    sd t3, HD_SSTATUS(sp)
    ld t4, HD_SCOUNT(sp)
    addi t4, t4, 1
    sd t4, HD_SCOUNT(sp)
    bltz t0, strap_irq

    ld t4, HD_SRESUME(sp)
    beqz t4, 2f
    sd zero, HD_SRESUME(sp)
    ld t1, HD_SRESUME_MODE(sp)
    li t2, 3
    beq t1, t2, 3f
    csrw sepc, t4
    bltz t1, strap_ret
    li t2, MSTATUS_SPP
    csrc sstatus, t2
    beqz t1, strap_ret
    csrs sstatus, t2
strap_ret:
    ld t0, HD_SSAVE + 0(sp)
    ld t1, HD_SSAVE + 8(sp)
    ld t2, HD_SSAVE + 16(sp)
    ld t3, HD_SSAVE + 24(sp)
    ld t4, HD_SSAVE + 32(sp)
    csrrw sp, sscratch, sp
    sret
2:  li t4, 1                        /* unexpected: let M report it */
    sd t4, HD_SUNEXP(sp)
3:  ld t0, HD_SSAVE + 0(sp)
    ld t1, HD_SSAVE + 8(sp)
    ld t2, HD_SSAVE + 16(sp)
    ld t3, HD_SSAVE + 24(sp)
    ld t4, HD_SSAVE + 32(sp)
    csrrw sp, sscratch, sp
    ecall
    /* M resumed us here only if a test asked for that: carry on in S */
    j fail_sreturn

strap_irq:
    ld t4, HD_SICOUNT(sp)
    li t1, 8
    bgeu t4, t1, 1f
    slli t1, t4, 3
    add t1, t1, sp
    sd t0, HD_SILOG(t1)
1:  addi t4, t4, 1
    sd t4, HD_SICOUNT(sp)
    li t1, 1
    sll t1, t1, t0
    csrc sie, t1
    j strap_ret

/* ---- printing (any privilege with UART access; no stack) --------------------------------- */

/* a0 = NUL-terminated string. Clobbers a0, a1, t0, t1. */
    .globl uart_puts
uart_puts:
1:  lbu a1, 0(a0)
    beqz a1, 2f
    PUTC a1
    addi a0, a0, 1
    j 1b
2:  ret

/* a0 = value, printed as 0x + 16 hex digits. Clobbers a1, a2, t0, t1. */
    .globl uart_puthex
uart_puthex:
    li a1, '0'
    PUTC a1
    li a1, 'x'
    PUTC a1
    li a2, 60
1:  srl a1, a0, a2
    andi a1, a1, 15
    addi a1, a1, '0'
    li t0, '9'
    ble a1, t0, 2f
    addi a1, a1, 'a' - '0' - 10
2:  PUTC a1
    addi a2, a2, -4
    bgez a2, 1b
    ret

/* a0 = value < 100000, printed in decimal without using M (so failures of the M extension
 * still print readable numbers). Clobbers a0-a3, t0, t1. */
    .globl uart_putdec
uart_putdec:
    la a2, pow10
    li a3, 0                        /* printed a digit yet? */
1:  ld t0, 0(a2)
    beqz t0, 4f
    li a1, '0'
2:  bltu a0, t0, 3f
    sub a0, a0, t0
    addi a1, a1, 1
    j 2b
3:  li t0, '0'
    bne a1, t0, 5f
    bnez a3, 5f
    ld t0, 0(a2)
    li t1, 1
    bne t0, t1, 6f
5:  li a3, 1
    PUTC a1
6:  addi a2, a2, 8
    j 1b
4:  ret

/* ---- pass / fail ------------------------------------------------------------------------ */

.macro PRINT str
    la a0, \str
    jal uart_puts
.endm

/* Take the print lock (other harts may be failing at the same time); never released. */
fail_lock_take:
    la t0, fail_lock
    li t1, 1
1:  amoswap.w.aq t2, t1, (t0)
    bnez t2, 1b
    ret

fail_header:
    mv s9, ra
    jal fail_lock_take
    PRINT str_fail
    mv a0, gp
    jal uart_putdec
    PRINT str_colon
    mv ra, s9
    ret

/* a0 = got, a1 = expected */
    .globl fail_value
fail_value:
    mv s10, a0
    mv s11, a1
    jal fail_header
    PRINT str_expected
    mv a0, s11
    jal uart_puthex
    PRINT str_got
    mv a0, s10
    jal uart_puthex
    PRINT str_nl
    j report_fail

/* a0 = got (a value that must not appear) */
    .globl fail_ne
fail_ne:
    mv s10, a0
    jal fail_header
    PRINT str_forbidden
    mv a0, s10
    jal uart_puthex
    PRINT str_nl
    j report_fail

/* a0 = message */
    .globl fail_msg
fail_msg:
    mv s10, a0
    jal fail_header
    mv a0, s10
    jal uart_puts
    PRINT str_nl
    j report_fail

fail_sreturn:
    la a0, str_sreturn
    j fail_msg

unexpected_m:
    jal fail_header
    PRINT str_unexp_m
    csrr a0, mcause
    jal uart_puthex
    PRINT str_epc
    csrr a0, mepc
    jal uart_puthex
    PRINT str_tval
    csrr a0, mtval
    jal uart_puthex
    PRINT str_from
    csrr a0, mstatus
    srli a0, a0, 11
    andi a0, a0, 3
    jal uart_putdec
    PRINT str_nl
    j report_fail

unexpected_s:
    mv s8, sp
    jal fail_header
    PRINT str_unexp_s
    ld a0, HD_SCAUSE(s8)
    jal uart_puthex
    PRINT str_epc
    ld a0, HD_SEPC(s8)
    jal uart_puthex
    PRINT str_tval
    ld a0, HD_STVAL(s8)
    jal uart_puthex
    PRINT str_nl
    j report_fail

    .globl report_fail
report_fail:
    li t0, TESTDEV_BASE
    li t1, (1 << 16) | TESTDEV_FAIL
    sw t1, 0(t0)
    j park

    .globl pass
pass:
    jal fail_lock_take
    PRINT str_pass
    li t0, TESTDEV_BASE
    li t1, TESTDEV_PASS
    sw t1, 0(t0)
    j park

    .section .rodata
    .balign 8
pow10:
    .dword 10000000000, 1000000000, 100000000, 10000000, 1000000, 100000, 10000, 1000, 100, 10, 1, 0
str_fail:       .asciz "FAIL: test "
str_colon:      .asciz ": "
str_expected:   .asciz "expected "
str_got:        .asciz " got "
str_forbidden:  .asciz "got forbidden value "
str_nl:         .asciz "\n"
str_unexp_m:    .asciz "unexpected M trap: mcause="
str_unexp_s:    .asciz "unexpected S trap: scause="
str_epc:        .asciz " epc="
str_tval:       .asciz " tval="
str_from:       .asciz " from priv "
str_sreturn:    .asciz "S handler resumed after escalation"
str_pass:       .ascii "PASS: "
                .ascii STR(TEST_NAME)
                .asciz "\n"

    .data
    .balign 8
secondary_ptr:  .dword test_secondary
boot_done:      .word 0
    .globl qemu_quirks
qemu_quirks:    .word 0
fail_lock:      .word 0

    .bss
    .balign 4096
    .globl hart_data
hart_data:      .space MAX_HARTS * HART_DATA_SIZE
    .balign 16
stacks:         .space MAX_HARTS * STACK_SIZE

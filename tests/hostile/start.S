/* Entry of the hostile-guest programs: hart 0 gets a stack and runs main(); others park. */
    .section .text.init, "ax"
    .globl _start
_start:
    csrr t0, mhartid
    bnez t0, park
    la sp, stack_top
    call main
park:
    wfi
    j park

    .bss
    .align 4
    .space 16384
stack_top:

/* Four harts share counters (unpriv spec "A" chapter, RVWMO): each adds 1 100000 times with
 * amoadd.d, with amoadd.w, and with an lr.d/sc.d loop, and 20000 times to a plain counter
 * under an amoswap.aq / amoswap.rl spinlock; every total must be exact. Hart 0 waits for all
 * four to arrive and to finish.
 * smp: 4 */
#include "common.h"

#define NHARTS 4
#define ITERS 100000
#define LOCKED_ITERS 20000

    .text
    .globl test_main
test_main:
    call work
    TESTNUM 1
    li t0, CLINT_MTIME                  /* generous limit: 15 s of mtime */
    ld t4, 0(t0)
    li t1, 150000000
    add t4, t4, t1
1:  la t0, done
    ld a0, 0(t0)
    li t1, NHARTS
    beq a0, t1, 2f
    li t0, CLINT_MTIME
    ld t1, 0(t0)
    bltu t1, t4, 1b
    la t0, arrived
    ld a1, 0(t0)
    FAIL "not all harts finished (see arrived/done counts)"
2:  fence rw, rw
    TESTNUM 2
    la t0, harts_seen
    ld a0, 0(t0)
    CHECK_EQ a0, (1 << NHARTS) - 1
    TESTNUM 3
    la t0, ctr_amo_d
    ld a0, 0(t0)
    CHECK_EQ a0, NHARTS * ITERS
    TESTNUM 4
    la t0, ctr_amo_w
    lw a0, 0(t0)
    CHECK_EQ a0, NHARTS * ITERS
    TESTNUM 5
    la t0, ctr_lrsc
    ld a0, 0(t0)
    CHECK_EQ a0, NHARTS * ITERS
    TESTNUM 6
    la t0, ctr_locked
    ld a0, 0(t0)
    CHECK_EQ a0, NHARTS * LOCKED_ITERS
    TESTNUM 7
    la t0, lock
    lw a0, 0(t0)
    CHECK_EQ a0, 0
    j pass

    .globl test_secondary
test_secondary:
    ld t0, HD_HARTID(tp)
    li t1, NHARTS
    bgeu t0, t1, park
    call work
    j park

/* Each hart: check in, wait for everyone, hammer the counters, report done. */
work:
    ld t0, HD_HARTID(tp)
    li t1, 1
    sll t1, t1, t0
    la t2, harts_seen
    amoor.d zero, t1, (t2)
    la t2, arrived
    li t1, 1
    amoadd.d zero, t1, (t2)
    DEADLINE_START                      /* all harts start together */
1:  ld t1, 0(t2)
    li t3, NHARTS
    beq t1, t3, 2f
    DEADLINE_CHECK "not all harts arrived"
    j 1b
2:
    la s0, ctr_amo_d
    la s1, ctr_amo_w
    la s2, ctr_lrsc
    li s3, ITERS
    li t1, 1
3:  amoadd.d zero, t1, (s0)
    amoadd.w zero, t1, (s1)
4:  lr.d t2, (s2)
    addi t2, t2, 1
    sc.d t3, t2, (s2)
    bnez t3, 4b
    addi s3, s3, -1
    bnez s3, 3b

    la s0, lock
    la s1, ctr_locked
    li s3, LOCKED_ITERS
5:  li t1, 1
6:  lw t2, 0(s0)                        /* test, then test-and-set */
    bnez t2, 6b
    amoswap.w.aq t2, t1, (s0)
    bnez t2, 6b
    ld t2, 0(s1)                        /* plain read-modify-write inside the lock */
    addi t2, t2, 1
    sd t2, 0(s1)
    amoswap.w.rl zero, zero, (s0)
    addi s3, s3, -1
    bnez s3, 5b

    fence rw, rw
    la t2, done
    li t1, 1
    amoadd.d zero, t1, (t2)
    ret

    .data
    .balign 64
arrived:    .dword 0
    .balign 64
done:       .dword 0
    .balign 64
harts_seen: .dword 0
    .balign 64
ctr_amo_d:  .dword 0
    .balign 64
ctr_amo_w:  .dword 0
    .balign 64
ctr_lrsc:   .dword 0
    .balign 64
lock:       .dword 0
    .balign 64
ctr_locked: .dword 0

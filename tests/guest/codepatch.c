/* Code patched at run time (issue 8, Zifencei): static riscv64 Linux program.
 *   codepatch local   one thread: patch an instruction never run before, run it unflushed, patch
 *                 it back, flush (riscv_flush_icache), run: the original must run; patch and
 *                 flush: the new one must run. Each round uses a fresh slot in a page that
 *                 is already in the decode cache (its first function runs every round).
 *   codepatch remote  two threads pinned to CPUs 0 and 1: CPU 0 patches a function and flushes
 *                 for all harts (the kernel's remote fence.i, through SBI), then publishes the
 *                 round; CPU 1 calls the function and must get the new value every round.
 * Prints PATCH-OK (exit 0) or the first failures and PATCH-FAILED (exit 1). */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __NR_riscv_flush_icache
#define __NR_riscv_flush_icache 259
#endif

typedef long (*fn_t)(void);

static uint32_t li_a0(int v) /* addi a0, zero, v */
{
    return ((uint32_t)(v & 0xfff) << 20) | (10u << 7) | 0x13;
}
#define RET 0x00008067u /* jalr zero, 0(ra) */

static void flush(void *p, size_t len, unsigned long flags)
{
    if (syscall(__NR_riscv_flush_icache, p, (char *)p + len, flags) != 0) {
        perror("patch: riscv_flush_icache");
        exit(2);
    }
}

static void put(volatile uint32_t *at, int v)
{
    at[0] = li_a0(v);
    at[1] = RET;
}

static void pin(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    if (sched_setaffinity(0, sizeof(s), &s) != 0) {
        perror("patch: sched_setaffinity");
        exit(2);
    }
}

static int local_test(uint32_t *page)
{
    int bad = 0;
    put(page, 7); /* the page's first function: brings the page into the decode cache */
    flush(page, 4096, 0);
    for (unsigned k = 0; k < 250; k++) {
        volatile uint32_t *slot = page + 4 + 4 * k; /* 16 bytes a slot, never run before */
        put(slot, 1);
        flush(page, 4096, 0);
        if (((fn_t)page)() != 7) bad++;
        put(slot, 2); /* patched, no flush: either version may run */
        long unflushed = ((fn_t)slot)();
        put(slot, 1); /* patched back, flushed: the original must run */
        flush(page, 4096, 0);
        long back = ((fn_t)slot)();
        put(slot, 3); /* patched again, flushed: the new version must run */
        flush(page, 4096, 0);
        long fwd = ((fn_t)slot)();
        if ((unflushed != 1 && unflushed != 2) || back != 1 || fwd != 3) {
            if (bad < 5)
                printf("local round %u: unflushed %ld (1 or 2), after patching back %ld (want 1), "
                       "after patching again %ld (want 3)\n",
                       k, unflushed, back, fwd);
            bad++;
        }
    }
    printf("patch local: 250 rounds, %d bad\n", bad);
    return bad;
}

#define REMOTE_ROUNDS 2000
static uint32_t *rpage;
static _Atomic unsigned published, consumed;
static int remote_bad;

static void *remote_runner(void *arg)
{
    (void)arg;
    pin(1);
    for (unsigned k = 1; k <= REMOTE_ROUNDS; k++) {
        while (published < k)
            ((fn_t)rpage)(); /* keep running the old code meanwhile */
        long got = ((fn_t)rpage)();
        if (got != (long)(k % 2000)) {
            if (remote_bad < 5)
                printf("remote round %u: CPU 1 ran the old code (%ld, want %u)\n", k, got,
                       k % 2000);
            remote_bad++;
        }
        consumed = k;
    }
    return NULL;
}

static int remote_test(void)
{
    pin(0);
    put(rpage, 0);
    flush(rpage, 4096, 0);
    pthread_t t;
    if (pthread_create(&t, NULL, remote_runner, NULL) != 0) {
        perror("patch: pthread_create");
        exit(2);
    }
    for (unsigned k = 1; k <= REMOTE_ROUNDS; k++) {
        put(rpage, (int)(k % 2000));
        flush(rpage, 4096, 0); /* 0: every hart, not only this one */
        published = k;
        while (consumed < k)
            ;
    }
    pthread_join(t, NULL);
    printf("patch remote: %d rounds, %d bad\n", REMOTE_ROUNDS, remote_bad);
    return remote_bad;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *what = argc > 1 ? argv[1] : "all";
    if (argc > 2 || (strcmp(what, "local") && strcmp(what, "remote") && strcmp(what, "all"))) {
        fprintf(stderr, "usage: codepatch [local|remote|all]\n");
        return 2;
    }
    uint32_t *page = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) {
        perror("patch: mmap");
        return 2;
    }
    rpage = page + 1024;
    int bad = 0;
    if (!strcmp(what, "local") || !strcmp(what, "all")) bad += local_test(page);
    if (!strcmp(what, "remote") || !strcmp(what, "all")) bad += remote_test();
    puts(bad ? "PATCH-FAILED" : "PATCH-OK");
    return bad ? 1 : 0;
}

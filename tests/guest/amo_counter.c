/*
 * Guest test of RISC-V atomics across harts (static riscv64 Linux program).
 *
 * usage: amo_counter [THREADS [ITERATIONS]]   (defaults 4, 100000)
 *
 * THREADS threads start together (barrier) and each adds 1 ITERATIONS times to
 * one shared 64-bit counter with amoadd.d and to another with an lr.d/sc.d retry
 * loop (RISC-V unprivileged spec, "A" extension: Zaamo and Zalrsc chapters).
 * Lost updates show up as a total below THREADS*ITERATIONS. Single-threaded
 * checks of amoadd.w/amoswap.w/amomax.w/... cover the 32-bit forms, whose
 * results are sign-extended to 64 bits. Prints AMO-OK or AMO-FAIL <reason>.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__riscv) || __riscv_xlen != 64
#error "amo_counter is a riscv64 program"
#endif

static uint64_t counter_amo;
static uint64_t counter_lrsc;
static int32_t max_w;     /* amomax.w across threads */
static uint64_t cpu_mask; /* harts the threads were seen on */
static uint64_t iterations;
static pthread_barrier_t start_barrier;

static inline void amoadd_d(uint64_t *p, uint64_t v)
{
    __asm__ volatile("amoadd.d zero, %1, %0" : "+A"(*p) : "r"(v) : "memory");
}

static inline void lrsc_add_d(uint64_t *p, uint64_t v)
{
    uint64_t tmp, fail;
    __asm__ volatile("1: lr.d %0, %2\n"
                     "   add %0, %0, %3\n"
                     "   sc.d %1, %0, %2\n"
                     "   bnez %1, 1b\n"
                     : "=&r"(tmp), "=&r"(fail), "+A"(*p)
                     : "r"(v)
                     : "memory");
}

static inline int64_t amoadd_w(int32_t *p, int32_t v)
{
    int64_t old;
    __asm__ volatile("amoadd.w %0, %2, %1" : "=r"(old), "+A"(*p) : "r"(v) : "memory");
    return old;
}

static inline int64_t amoswap_w(int32_t *p, int32_t v)
{
    int64_t old;
    __asm__ volatile("amoswap.w %0, %2, %1" : "=r"(old), "+A"(*p) : "r"(v) : "memory");
    return old;
}

static inline int64_t amomax_w(int32_t *p, int32_t v)
{
    int64_t old;
    __asm__ volatile("amomax.w %0, %2, %1" : "=r"(old), "+A"(*p) : "r"(v) : "memory");
    return old;
}

static inline int64_t amomaxu_w(int32_t *p, int32_t v)
{
    int64_t old;
    __asm__ volatile("amomaxu.w %0, %2, %1" : "=r"(old), "+A"(*p) : "r"(v) : "memory");
    return old;
}

static inline int64_t amomin_w(int32_t *p, int32_t v)
{
    int64_t old;
    __asm__ volatile("amomin.w %0, %2, %1" : "=r"(old), "+A"(*p) : "r"(v) : "memory");
    return old;
}

static inline int64_t amominu_w(int32_t *p, int32_t v)
{
    int64_t old;
    __asm__ volatile("amominu.w %0, %2, %1" : "=r"(old), "+A"(*p) : "r"(v) : "memory");
    return old;
}

static inline int64_t amomax_d(int64_t *p, int64_t v)
{
    int64_t old;
    __asm__ volatile("amomax.d %0, %2, %1" : "=r"(old), "+A"(*p) : "r"(v) : "memory");
    return old;
}

static void note_cpu(void)
{
    int c = sched_getcpu();
    if (c >= 0 && c < 64) __atomic_fetch_or(&cpu_mask, 1ull << c, __ATOMIC_RELAXED);
}

static void *worker(void *arg)
{
    int32_t base = (int32_t)(uintptr_t)arg * 1000;
    pthread_barrier_wait(&start_barrier);
    note_cpu();
    for (uint64_t i = 0; i < iterations; i++) {
        amoadd_d(&counter_amo, 1);
        lrsc_add_d(&counter_lrsc, 1);
        if ((i & 1023) == 0) amomax_w(&max_w, base + (int32_t)(i >> 10 & 511));
    }
    note_cpu();
    return NULL;
}

static int failures;

static void expect(const char *what, int64_t got, int64_t want)
{
    if (got != want) {
        printf("AMO-FAIL %s: got %" PRId64 " (0x%" PRIx64 ") want %" PRId64 " (0x%" PRIx64 ")\n",
               what, got, (uint64_t)got, want, (uint64_t)want);
        failures++;
    }
}

/* 32-bit forms: return value is the old word sign-extended (A extension). */
static void check_word_amos(void)
{
    int32_t w = 0x7fffffff;
    expect("amoadd.w old", amoadd_w(&w, 1), 0x7fffffff);
    expect("amoadd.w wraps", w, INT32_MIN);
    expect("amoadd.w sign-extends old", amoadd_w(&w, 0), (int64_t)INT32_MIN);

    w = -5;
    expect("amoswap.w old", amoswap_w(&w, 0x12345678), -5);
    expect("amoswap.w new", w, 0x12345678);

    w = -7;
    expect("amomax.w old", amomax_w(&w, 3), -7);
    expect("amomax.w signed", w, 3);
    expect("amomax.w keeps larger", amomax_w(&w, -100), 3);
    expect("amomax.w value", w, 3);

    w = -7; /* 0xfffffff9: largest unsigned */
    amomaxu_w(&w, 3);
    expect("amomaxu.w unsigned", w, -7);
    amominu_w(&w, 3);
    expect("amominu.w unsigned", w, 3);
    amomin_w(&w, -9);
    expect("amomin.w signed", w, -9);

    int64_t d = -1;
    expect("amomax.d old", amomax_d(&d, 1), -1);
    expect("amomax.d value", d, 1);
}

int main(int argc, char **argv)
{
    long nthreads = 4;
    long long iters = 100000;
    char *end;

    if (argc > 1) {
        errno = 0;
        nthreads = strtol(argv[1], &end, 10);
        if (errno || *end || nthreads < 1 || nthreads > 1024) {
            fprintf(stderr, "amo_counter: bad thread count '%s' (1..1024)\n", argv[1]);
            return 2;
        }
    }
    if (argc > 2) {
        errno = 0;
        iters = strtoll(argv[2], &end, 10);
        if (errno || *end || iters < 1 || iters > 1000000000LL) {
            fprintf(stderr, "amo_counter: bad iteration count '%s'\n", argv[2]);
            return 2;
        }
    }
    iterations = (uint64_t)iters;

    check_word_amos();

    max_w = INT32_MIN;
    pthread_t *tids = calloc((size_t)nthreads, sizeof(*tids));
    if (!tids || pthread_barrier_init(&start_barrier, NULL, (unsigned)nthreads)) {
        printf("AMO-FAIL set-up: %s\n", strerror(errno ? errno : ENOMEM));
        return 1;
    }
    for (long t = 0; t < nthreads; t++) {
        int rc = pthread_create(&tids[t], NULL, worker, (void *)(uintptr_t)t);
        if (rc) {
            printf("AMO-FAIL pthread_create: %s\n", strerror(rc));
            return 1;
        }
    }
    for (long t = 0; t < nthreads; t++)
        pthread_join(tids[t], NULL);
    free(tids);

    uint64_t want = (uint64_t)nthreads * iterations;
    /* Largest value any thread offered: the last thread's base + min(k, 511). */
    uint64_t k = (iterations - 1) >> 10;
    int32_t want_max = (int32_t)((nthreads - 1) * 1000 + (k > 511 ? 511 : (int32_t)k));
    printf("amo_counter: threads=%ld iterations=%" PRIu64 " amoadd.d=%" PRIu64 " lr/sc=%" PRIu64
           " expected=%" PRIu64 " amomax.w=%" PRId32 " harts-seen=%d\n",
           nthreads, iterations, counter_amo, counter_lrsc, want, max_w,
           __builtin_popcountll(cpu_mask));
    expect("amoadd.d counter", (int64_t)counter_amo, (int64_t)want);
    expect("lr.d/sc.d counter", (int64_t)counter_lrsc, (int64_t)want);
    expect("amomax.w across threads", max_w, want_max);
    if (failures) return 1;
    printf("AMO-OK\n");
    return 0;
}

/* Litmus tests as a static Linux program: one thread per CPU, each pinned to its CPU.
 * Usage: litmus [HARTS [ROUNDS]] (HARTS even, 2 or 4; default: the online CPUs, at most 4;
 * ROUNDS default 50000). Prints one PASS/FAIL line per test and "LITMUS-OK" when all pass;
 * exit status 0 when all pass, 1 when a test failed, 2 for bad arguments. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define LITMUS_PRINT(s)   fputs((s), stdout)
#define LITMUS_PRINT_U(v) printf("%llu", (unsigned long long)(v))
#include "litmus.h"

static void *worker(void *arg)
{
    unsigned h = (unsigned)(uintptr_t)arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(h, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) {
        perror("litmus: sched_setaffinity");
        exit(2);
    }
    return (void *)(uintptr_t)litmus_main(h);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
    if (argc <= 1 && n > LITMUS_MAX_HARTS) n = LITMUS_MAX_HARTS;
    long rounds = argc > 2 ? strtol(argv[2], NULL, 10) : 50000;
    if (n < 2 || n > LITMUS_MAX_HARTS || (n & 1) || rounds < 1) {
        fprintf(stderr, "usage: litmus [HARTS (2 or 4) [ROUNDS]]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    litmus_sh.nharts = (unsigned)n;
    litmus_sh.rounds = (uint64_t)rounds;
    litmus_sh.max_rounds = 100ull * (uint64_t)rounds;
    pthread_t t[LITMUS_MAX_HARTS];
    for (long h = 1; h < n; h++)
        if (pthread_create(&t[h], NULL, worker, (void *)(uintptr_t)h) != 0) {
            perror("litmus: pthread_create");
            return 2;
        }
    unsigned failed = (unsigned)(uintptr_t)worker((void *)0);
    for (long h = 1; h < n; h++)
        pthread_join(t[h], NULL);
    if (failed) {
        printf("LITMUS-FAILED %u\n", failed);
        return 1;
    }
    printf("LITMUS-OK\n");
    return 0;
}

/* 4K random reads through blk_submit (no guest): QD1 (one request at a time, IOPS and latency)
 * and QD32 (32 in flight, each completion submits the next), SECONDS each, on IMAGE (raw or
 * qcow2, probed). Shows the block backend's own cost: use an image in the host page cache.
 *
 *   make build/unit-tests   (builds the library objects), then
 *   cc -O2 -std=gnu11 -D_GNU_SOURCE -Isrc -pthread -o build/blk_qd bench/blk_qd.c
 *      $(find build/rel/src -name '*.o' ! -name main.o)
 *      -lfdt -lm -luring -ljson-c -lmicrohttpd -lseccomp -lz -lzstd -lslirp -lnettle
 *   build/blk_qd IMAGE [SECONDS]   (VESSEL_IO_ENGINE=threads: the thread pool)
 *
 * docs/disks.md ("Performance") has figures: a raw image and its qemu-img convert qcow2. */
#include "backend/block/block.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <stdatomic.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}
static uint64_t rs = 88172645463325252ull;
static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

struct slot {
    struct blk_req r;
    struct iovec v;
    char buf[4096] __attribute__((aligned(4096)));
};
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static int ndone;
static atomic_long completed;
static atomic_bool stop;
static struct blk_backend *B;
static uint64_t nblk;
static _Thread_local uint64_t trs = 0x1234567;
static uint64_t trnd(void)
{
    trs ^= trs << 13;
    trs ^= trs >> 7;
    trs ^= trs << 17;
    return trs;
}

static void done1(struct blk_req *r, int64_t res)
{
    (void)r;
    if (res != 4096) abort();
    pthread_mutex_lock(&m);
    ndone++;
    pthread_cond_signal(&c);
    pthread_mutex_unlock(&m);
}
static void doneq(struct blk_req *r, int64_t res)
{
    if (res != 4096) abort();
    atomic_fetch_add(&completed, 1);
    if (atomic_load(&stop)) {
        pthread_mutex_lock(&m);
        ndone++;
        pthread_cond_signal(&c);
        pthread_mutex_unlock(&m);
        return;
    }
    r->offset = (trnd() % nblk) * 4096;
    if (blk_submit(B, r)) abort();
}

int main(int argc, char **argv)
{
    char err[512];
    struct blk_open_opts o = {0};
    if (blk_open(&B, argv[1], &o, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    double secs = argc > 2 ? atof(argv[2]) : 2;
    nblk = blk_size(B) / 4096;
    static struct slot s[32];
    /* QD1 */
    long n = 0;
    double t0 = now();
    while (now() - t0 < secs) {
        for (int k = 0; k < 64; k++) {
            s[0].v = (struct iovec){s[0].buf, 4096};
            s[0].r = (struct blk_req){.op = BLK_READ,
                                      .offset = (rnd() % nblk) * 4096,
                                      .iov = &s[0].v,
                                      .iovcnt = 1,
                                      .done = done1};
            ndone = 0;
            if (blk_submit(B, &s[0].r)) abort();
            pthread_mutex_lock(&m);
            while (!ndone)
                pthread_cond_wait(&c, &m);
            pthread_mutex_unlock(&m);
            n++;
        }
    }
    double qd1 = n / (now() - t0);
    /* QD32 */
    ndone = 0;
    atomic_store(&stop, false);
    atomic_store(&completed, 0);
    t0 = now();
    for (int i = 0; i < 32; i++) {
        s[i].v = (struct iovec){s[i].buf, 4096};
        s[i].r = (struct blk_req){.op = BLK_READ,
                                  .offset = (rnd() % nblk) * 4096,
                                  .iov = &s[i].v,
                                  .iovcnt = 1,
                                  .done = doneq};
        if (blk_submit(B, &s[i].r)) abort();
    }
    while (now() - t0 < secs) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&stop, true);
    long got = atomic_load(&completed);
    double dt = now() - t0;
    pthread_mutex_lock(&m);
    while (ndone < 32)
        pthread_cond_wait(&c, &m);
    pthread_mutex_unlock(&m);
    printf("%s %s: QD1 %.0f IOPS (%.1f us), QD32 %.0f IOPS\n", blk_format_name(B),
           blk_engine_name(B), qd1, 1e6 / qd1, got / dt);
    blk_close(B);
    return 0;
}

/* Raw block backend and both I/O engines (io_uring, threads). Every I/O scenario runs once per
 * engine, chosen through VESSEL_IO_ENGINE. Images live in $TMPDIR (default /tmp). */
#include "backend/block/block.h"
#include "backend/block/io_engine.h"
#include "backend/block/raw.h"
#include "test.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---- */

static void tmp_path(char *buf, size_t len, const char *tag)
{
    const char *dir = getenv("TMPDIR");
    static atomic_int seq;
    snprintf(buf, len, "%s/vessel-blk-%ld-%d-%s", dir && *dir ? dir : "/tmp", (long)getpid(),
             atomic_fetch_add(&seq, 1), tag);
}

/* A sparse image of `size` bytes; the descriptor is closed before any backend opens it. */
static void make_image(char *path, size_t len, uint64_t size)
{
    tmp_path(path, len, "img");
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK(ftruncate(fd, (off_t)size) == 0);
        close(fd);
    }
}

static struct blk_backend *open_engine(const char *path, bool readonly, const char *engine)
{
    struct blk_backend *b = NULL;
    char err[256] = "";
    struct blk_open_opts o = {.readonly = readonly};
    setenv("VESSEL_IO_ENGINE", engine, 1);
    int r = blk_open(&b, path, &o, err, sizeof(err));
    unsetenv("VESSEL_IO_ENGINE");
    if (r) {
        fprintf(stderr, "  blk_open(%s): %d %s\n", path, r, err);
        test_failures_in_current++;
        return NULL;
    }
    CHECK_STR(blk_engine_name(b), engine);
    return b;
}

/* Completion bookkeeping shared by the requests of one scenario. */
struct waiter {
    pthread_mutex_t m;
    pthread_cond_t c;
    int done;
};
#define WAITER_INIT                                                                                \
    {                                                                                              \
        PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0                                     \
    }

struct treq {
    struct blk_req r;
    struct waiter *w;
    atomic_int calls;
    int64_t res;
};

static void treq_done(struct blk_req *r, int64_t res)
{
    struct treq *t = r->opaque;
    t->res = res;
    atomic_fetch_add(&t->calls, 1);
    pthread_mutex_lock(&t->w->m);
    t->w->done++;
    pthread_cond_broadcast(&t->w->c);
    pthread_mutex_unlock(&t->w->m);
}

static void treq_init(struct treq *t, struct waiter *w, enum blk_op op, uint64_t off,
                      struct iovec *iov, int iovcnt, uint64_t len)
{
    memset(t, 0, sizeof(*t));
    t->r = (struct blk_req){.op = op,
                            .offset = off,
                            .len = len,
                            .iov = iov,
                            .iovcnt = iovcnt,
                            .done = treq_done,
                            .opaque = t};
    t->w = w;
    t->res = INT64_MIN;
}

/* Wait (at most 30 s) until `n` completions were counted. */
static bool wait_done(struct waiter *w, int n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 30;
    pthread_mutex_lock(&w->m);
    int r = 0;
    while (w->done < n && r == 0)
        r = pthread_cond_timedwait(&w->c, &w->m, &ts);
    bool ok = w->done >= n;
    pthread_mutex_unlock(&w->m);
    if (!ok) {
        fprintf(stderr, "  timed out: %d of %d requests completed\n", w->done, n);
        test_failures_in_current++;
    }
    return ok;
}

/* Submit one request and wait for it; returns the submit error or the result. */
static int64_t do_io(struct blk_backend *b, enum blk_op op, uint64_t off, struct iovec *iov,
                     int iovcnt, uint64_t len)
{
    struct waiter w = WAITER_INIT;
    struct treq t;
    treq_init(&t, &w, op, off, iov, iovcnt, len);
    int r = blk_submit(b, &t.r);
    if (r < 0) {
        CHECK_EQ(atomic_load(&t.calls), 0); /* refused: done() is never called */
        return r;
    }
    if (!wait_done(&w, 1)) return INT64_MIN;
    CHECK_EQ(atomic_load(&t.calls), 1);
    return t.res;
}

static int64_t rw1(struct blk_backend *b, enum blk_op op, uint64_t off, void *buf, size_t len)
{
    struct iovec v = {buf, len};
    return do_io(b, op, off, &v, 1, 0);
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

static uint64_t blocks_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_blocks : 0;
}

/* Can this host's filesystem (where the test images live) punch holes? */
static bool fs_can_punch(void)
{
    char p[256];
    make_image(p, sizeof(p), 1 << 20);
    int fd = open(p, O_RDWR | O_CLOEXEC);
    bool ok = fd >= 0 && fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096) == 0;
    if (fd >= 0) close(fd);
    unlink(p);
    return ok;
}

#define BOTH_ENGINES(fn)                                                                           \
    TEST(block_##fn##_io_uring)                                                                    \
    {                                                                                              \
        fn("io_uring");                                                                            \
    }                                                                                              \
    TEST(block_##fn##_threads)                                                                     \
    {                                                                                              \
        fn("threads");                                                                             \
    }

/* ---- scenarios, once per engine ---- */

/* Multi-segment I/O at odd offsets, read back with a different segmentation. */
static void rw_roundtrip(const char *engine)
{
    char path[256];
    make_image(path, sizeof(path), 1 << 20);
    struct blk_backend *b = open_engine(path, false, engine);
    if (!b) goto out;
    CHECK_EQ(blk_size(b), 1 << 20);
    CHECK(!blk_readonly(b));

    for (int pass = 0; pass < 2; pass++) {
        /* pass 1: every transfer is cut to 100 bytes, so the short-transfer path runs */
        io_engine_debug_max_xfer = pass ? 100 : 0;
        uint64_t off = 12345 + (uint64_t)pass * 100000;
        static uint8_t a[7], c[1000], d[4093], e[0], src[5100], back[5100];
        fill(src, sizeof(src), 3 + (unsigned)pass);
        memcpy(a, src, 7);
        memcpy(c, src + 7, 1000);
        memcpy(d, src + 1007, 4093);
        struct iovec wv[4] = {{a, 7}, {e, 0}, {c, 1000}, {d, 4093}};
        CHECK_EQ(do_io(b, BLK_WRITE, off, wv, 4, 0), 5100);

        memset(back, 0xee, sizeof(back));
        struct iovec rv[5] = {
            {back, 1}, {back + 1, 511}, {back + 512, 0}, {back + 512, 4000}, {back + 4512, 588}};
        CHECK_EQ(do_io(b, BLK_READ, off, rv, 5, 0), 5100);
        CHECK(!memcmp(src, back, sizeof(src)));
        /* the caller's iovec is left as it was */
        CHECK(rv[1].iov_base == back + 1 && rv[1].iov_len == 511);
        CHECK(wv[3].iov_base == d && wv[3].iov_len == 4093);

        /* bytes around the write were never written: zero */
        uint8_t edge[64];
        CHECK_EQ(rw1(b, BLK_READ, off - 64, edge, 64), 64);
        CHECK(all_zero(edge, 64));
        CHECK_EQ(rw1(b, BLK_READ, off + 5100, edge, 64), 64);
        CHECK(all_zero(edge, 64));
    }
    io_engine_debug_max_xfer = 0;

    /* the last sector, and an empty read at the very end */
    uint8_t s[512];
    fill(s, 512, 9);
    CHECK_EQ(rw1(b, BLK_WRITE, (1 << 20) - 512, s, 512), 512);
    CHECK_EQ(do_io(b, BLK_READ, 1 << 20, NULL, 0, 0), 0);
    blk_close(b);

    /* it reached the file */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    uint8_t f[512];
    CHECK(fd >= 0 && pread(fd, f, 512, (1 << 20) - 512) == 512);
    CHECK(!memcmp(f, s, 512));
    if (fd >= 0) close(fd);
out:
    io_engine_debug_max_xfer = 0;
    unlink(path);
}
BOTH_ENGINES(rw_roundtrip)

/* Many requests in flight (beyond the ring's size too), each completes exactly once. */
#define NREQ 64
#define NBIG 1000
static void many_in_flight(const char *engine)
{
    char path[256];
    make_image(path, sizeof(path), 4 << 20);
    struct blk_backend *b = open_engine(path, false, engine);
    if (!b) goto out;
    static struct treq t[NBIG];
    static uint8_t buf[NBIG][512];
    static struct iovec v[NBIG];

    struct waiter w = WAITER_INIT;
    for (int i = 0; i < NREQ; i++) {
        fill(buf[i], 512, (unsigned)i);
        v[i] = (struct iovec){buf[i], 512};
        treq_init(&t[i], &w, BLK_WRITE, (uint64_t)i * 4096 + 1, &v[i], 1, 0);
        CHECK_EQ(blk_submit(b, &t[i].r), 0);
    }
    wait_done(&w, NREQ);

    struct waiter w2 = WAITER_INIT;
    for (int i = 0; i < NREQ; i++) {
        memset(buf[i], 0, 512);
        treq_init(&t[i], &w2, BLK_READ, (uint64_t)i * 4096 + 1, &v[i], 1, 0);
        CHECK_EQ(blk_submit(b, &t[i].r), 0);
    }
    wait_done(&w2, NREQ);
    int bad = 0;
    for (int i = 0; i < NREQ; i++) {
        uint8_t want[512];
        fill(want, 512, (unsigned)i);
        bad += atomic_load(&t[i].calls) != 1 || t[i].res != 512 || memcmp(want, buf[i], 512);
    }
    CHECK_EQ(bad, 0);

    /* more than the ring holds (128 SQEs, 256 CQEs): the engine queues the rest */
    struct waiter w3 = WAITER_INIT;
    for (int i = 0; i < NBIG; i++) {
        fill(buf[i], 512, (unsigned)i + 7);
        v[i] = (struct iovec){buf[i], 512};
        treq_init(&t[i], &w3, BLK_WRITE, (uint64_t)i * 512, &v[i], 1, 0);
        CHECK_EQ(blk_submit(b, &t[i].r), 0);
    }
    /* blk_close drains: every done() has run when it returns */
    blk_close(b);
    CHECK_EQ(w3.done, NBIG);
    bad = 0;
    for (int i = 0; i < NBIG; i++)
        bad += atomic_load(&t[i].calls) != 1 || t[i].res != 512;
    CHECK_EQ(bad, 0);

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    static uint8_t all[NBIG * 512];
    CHECK(fd >= 0 && pread(fd, all, sizeof(all), 0) == (ssize_t)sizeof(all));
    bad = 0;
    for (int i = 0; i < NBIG; i++) {
        uint8_t want[512];
        fill(want, 512, (unsigned)i + 7);
        bad += memcmp(want, all + i * 512, 512) != 0;
    }
    CHECK_EQ(bad, 0);
    if (fd >= 0) close(fd);
out:
    unlink(path);
}
BOTH_ENGINES(many_in_flight)

static void flush(const char *engine)
{
    char path[256];
    make_image(path, sizeof(path), 64 << 10);
    struct blk_backend *b = open_engine(path, false, engine);
    if (b) {
        uint8_t s[4096];
        fill(s, sizeof(s), 1);
        CHECK_EQ(rw1(b, BLK_WRITE, 0, s, sizeof(s)), sizeof(s));
        CHECK_EQ(do_io(b, BLK_FLUSH, 0, NULL, 0, 0), 0);
        /* a flush with writes in flight, all submitted together */
        struct waiter w = WAITER_INIT;
        struct treq t[3];
        struct iovec v = {s, 512};
        treq_init(&t[0], &w, BLK_WRITE, 512, &v, 1, 0);
        treq_init(&t[1], &w, BLK_FLUSH, 0, NULL, 0, 0);
        treq_init(&t[2], &w, BLK_WRITE, 1024, &v, 1, 0);
        for (int i = 0; i < 3; i++)
            CHECK_EQ(blk_submit(b, &t[i].r), 0);
        wait_done(&w, 3);
        CHECK_EQ(t[0].res, 512);
        CHECK_EQ(t[1].res, 0);
        CHECK_EQ(t[2].res, 512);
        /* after a failed flush, no later flush may report success */
        blk_debug_fail_next_flush(b, -EIO);
        CHECK_EQ(do_io(b, BLK_FLUSH, 0, NULL, 0, 0), -EIO);
        CHECK_EQ(rw1(b, BLK_WRITE, 0, s, 512), 512);
        CHECK_EQ(do_io(b, BLK_FLUSH, 0, NULL, 0, 0), -EIO);
        CHECK_EQ(do_io(b, BLK_FLUSH, 0, NULL, 0, 0), -EIO);
        blk_close(b);
    }
    unlink(path);
}
BOTH_ENGINES(flush)

static void discard(const char *engine)
{
    if (!fs_can_punch()) {
        fprintf(stderr, "  note: %s cannot punch holes here; discard test skipped\n",
                getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        return;
    }
    char path[256];
    make_image(path, sizeof(path), 8 << 20);
    struct blk_backend *b = open_engine(path, false, engine);
    if (b) {
        static uint8_t data[4 << 20], back[2 << 20];
        fill(data, sizeof(data), 5);
        CHECK_EQ(rw1(b, BLK_WRITE, 0, data, sizeof(data)), sizeof(data));
        CHECK_EQ(do_io(b, BLK_FLUSH, 0, NULL, 0, 0), 0);
        uint64_t before = blocks_of(path);
        CHECK(before >= (4 << 20) / 512);
        CHECK_EQ(do_io(b, BLK_DISCARD, 1 << 20, NULL, 0, 2 << 20), 0);
        uint64_t after = blocks_of(path);
        CHECK(after + (2 << 20) / 512 <= before); /* 2 MiB of blocks went back to the host */
        CHECK_EQ(blk_size(b), 8 << 20);
        CHECK_EQ(rw1(b, BLK_READ, 1 << 20, back, sizeof(back)), sizeof(back));
        CHECK(all_zero(back, sizeof(back)));
        uint8_t edge[512];
        CHECK_EQ(rw1(b, BLK_READ, (1 << 20) - 512, edge, 512), 512);
        CHECK(!memcmp(edge, data + (1 << 20) - 512, 512));
        CHECK_EQ(rw1(b, BLK_READ, 3 << 20, edge, 512), 512);
        CHECK(!memcmp(edge, data + (3 << 20), 512));
        /* zero length: nothing to do, still completes */
        CHECK_EQ(do_io(b, BLK_DISCARD, 4096, NULL, 0, 0), 0);
        blk_close(b);
        struct stat st;
        CHECK(stat(path, &st) == 0 && st.st_size == 8 << 20);
    }
    unlink(path);
}
BOTH_ENGINES(discard)

/* WRITE_ZEROES, by punching and (forced) by writing zero buffers across several chunks. */
static void write_zeroes(const char *engine)
{
    char path[256];
    const uint64_t size = 8 << 20;
    make_image(path, sizeof(path), size);
    struct blk_backend *b = open_engine(path, false, engine);
    if (!b) goto out;
    static uint8_t data[8 << 20], back[8 << 20];
    for (int forced = 0; forced < 2; forced++) {
        if (forced) blk_debug_disable_punch(b);
        fill(data, size, 11 + (unsigned)forced);
        CHECK_EQ(rw1(b, BLK_WRITE, 0, data, size), size);
        /* odd offset and length; forced: ~2.6 MiB, so three zero-filling writes */
        uint64_t off = 1000, len = forced ? (2621440 + 333) : 70001;
        CHECK_EQ(do_io(b, BLK_WRITE_ZEROES, off, NULL, 0, len), 0);
        memset(back, 0xaa, size);
        CHECK_EQ(rw1(b, BLK_READ, 0, back, size), size);
        CHECK(!memcmp(back, data, off));
        CHECK(all_zero(back + off, len));
        CHECK(!memcmp(back + off + len, data + off + len, size - off - len));
        /* the whole image, up to its last byte */
        CHECK_EQ(do_io(b, BLK_WRITE_ZEROES, 0, NULL, 0, size), 0);
        CHECK_EQ(rw1(b, BLK_READ, 0, back, size), size);
        CHECK(all_zero(back, size));
    }
    /* with punching off, DISCARD is a hint that does nothing, successfully */
    CHECK_EQ(do_io(b, BLK_DISCARD, 0, NULL, 0, 4096), 0);
    blk_close(b);
    /* ... also when it is the first to find out that the filesystem refuses */
    b = open_engine(path, false, engine);
    if (b) {
        blk_debug_disable_punch(b);
        CHECK_EQ(do_io(b, BLK_DISCARD, 4096, NULL, 0, 8192), 0);
        CHECK_EQ(do_io(b, BLK_WRITE_ZEROES, 4096, NULL, 0, 8192), 0);
        blk_close(b);
    }
out:
    unlink(path);
}
BOTH_ENGINES(write_zeroes)

static void out_of_range(const char *engine)
{
    char path[256];
    const uint64_t size = 1 << 20;
    make_image(path, sizeof(path), size);
    struct blk_backend *b = open_engine(path, false, engine);
    if (!b) goto out;
    uint8_t s[1024];
    CHECK_EQ(rw1(b, BLK_READ, size - 512, s, 1024), -EINVAL);
    CHECK_EQ(rw1(b, BLK_WRITE, size - 1, s, 2), -EINVAL);
    CHECK_EQ(rw1(b, BLK_READ, size + 512, s, 0), -EINVAL);
    CHECK_EQ(rw1(b, BLK_READ, UINT64_MAX - 10, s, 512), -EINVAL);
    CHECK_EQ(rw1(b, BLK_WRITE, UINT64_MAX - 511, s, 512), -EINVAL);
    /* segment lengths whose sum wraps around: refused before any is touched */
    struct iovec wrap[2] = {{s, SIZE_MAX / 2 + 1}, {s, SIZE_MAX / 2 + 1}};
    CHECK_EQ(do_io(b, BLK_READ, 0, wrap, 2, 0), -EINVAL);
    struct iovec one = {s, 512};
    CHECK_EQ(do_io(b, BLK_READ, 0, &one, -1, 0), -EINVAL);
    CHECK_EQ(do_io(b, BLK_READ, 0, &one, IOV_MAX + 1, 0), -EINVAL);
    CHECK_EQ(do_io(b, BLK_READ, 0, NULL, 1, 0), -EINVAL);
    CHECK_EQ(do_io(b, BLK_DISCARD, size - 512, NULL, 0, 1024), -EINVAL);
    CHECK_EQ(do_io(b, BLK_DISCARD, 512, NULL, 0, UINT64_MAX - 100), -EINVAL);
    CHECK_EQ(do_io(b, BLK_WRITE_ZEROES, UINT64_MAX, NULL, 0, 2), -EINVAL);
    CHECK_EQ(do_io(b, (enum blk_op)77, 0, NULL, 0, 0), -EOPNOTSUPP);
    struct blk_req nodone = {.op = BLK_FLUSH};
    CHECK_EQ(blk_submit(b, &nodone), -EINVAL);
    /* in range still works */
    CHECK_EQ(rw1(b, BLK_READ, size - 1024, s, 1024), 1024);
    blk_close(b);
out:
    unlink(path);
}
BOTH_ENGINES(out_of_range)

static void readonly(const char *engine)
{
    char path[256];
    make_image(path, sizeof(path), 1 << 20);
    struct blk_backend *w = open_engine(path, false, engine);
    uint8_t s[512], r[512];
    fill(s, 512, 4);
    if (w) {
        CHECK_EQ(rw1(w, BLK_WRITE, 4096, s, 512), 512);
        blk_close(w);
    }
    struct blk_backend *b = open_engine(path, true, engine);
    if (b) {
        CHECK(blk_readonly(b));
        CHECK_EQ(rw1(b, BLK_WRITE, 0, s, 512), -EROFS);
        CHECK_EQ(do_io(b, BLK_DISCARD, 0, NULL, 0, 512), -EROFS);
        CHECK_EQ(do_io(b, BLK_WRITE_ZEROES, 0, NULL, 0, 512), -EROFS);
        CHECK_EQ(rw1(b, BLK_READ, 4096, r, 512), 512);
        CHECK(!memcmp(r, s, 512));
        CHECK_EQ(do_io(b, BLK_FLUSH, 0, NULL, 0, 0), 0);
        blk_close(b);
    }
    unlink(path);
}
BOTH_ENGINES(readonly)

/* The image shrinks under an open backend: a read past the new end must fail, not pass. */
static void shrunk_image(const char *engine)
{
    char path[256];
    make_image(path, sizeof(path), 1 << 20);
    struct blk_backend *b = open_engine(path, false, engine);
    if (b) {
        CHECK(truncate(path, 1000) == 0); /* by path: no descriptor of ours gets closed */
        uint8_t s[4096];
        CHECK_EQ(rw1(b, BLK_READ, 0, s, sizeof(s)), -EIO);
        CHECK_EQ(rw1(b, BLK_READ, 8192, s, 512), -EIO);
        blk_close(b);
    }
    unlink(path);
}
BOTH_ENGINES(shrunk_image)

/* done() submitting the next request (as a device does) while the backend drains at close. */
struct chain {
    struct blk_backend *b;
    struct blk_req r;
    uint8_t buf[512];
    struct iovec v;
    atomic_int left;
};

static void chain_done(struct blk_req *r, int64_t res)
{
    struct chain *c = r->opaque;
    if (res != 512) return;
    if (atomic_fetch_sub(&c->left, 1) > 1) {
        r->offset += 512;
        if (blk_submit(c->b, r) < 0) atomic_store(&c->left, -1000);
    }
}

static void resubmit_from_done(const char *engine)
{
    char path[256];
    make_image(path, sizeof(path), 1 << 20);
    static struct chain c;
    memset(&c, 0, sizeof(c));
    c.b = open_engine(path, false, engine);
    if (c.b) {
        c.v = (struct iovec){c.buf, 512};
        atomic_store(&c.left, 100);
        c.r = (struct blk_req){
            .op = BLK_WRITE, .iov = &c.v, .iovcnt = 1, .done = chain_done, .opaque = &c};
        CHECK_EQ(blk_submit(c.b, &c.r), 0);
        blk_close(c.b); /* waits for the whole chain */
        CHECK_EQ(atomic_load(&c.left), 0);
        CHECK_EQ(c.r.offset, 99 * 512);
    }
    unlink(path);
}
BOTH_ENGINES(resubmit_from_done)

/* io_uring reads data in the page cache within the submission: its done() then runs on the
 * submitting thread before blk_submit returns (io_engine.h), not after a hand-over to the
 * completion thread. Counted over 50 reads of a page just written (the kernel may still punt
 * one to a worker now and then); all of them must be right. */
struct inline_req {
    struct treq t;
    pthread_t submitter;
    atomic_bool on_submitter;
};
static void inline_done(struct blk_req *r, int64_t res)
{
    struct inline_req *q = r->opaque;
    atomic_store(&q->on_submitter, pthread_equal(pthread_self(), q->submitter) != 0);
    treq_done(r, res);
}

/* Voluntary context switches of this process's threads other than the caller
 * (/proc/self/task/TID/status): how often they went to sleep and were woken. */
static long other_threads_switches(void)
{
    long sum = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    struct dirent *de;
    pid_t self = (pid_t)syscall(SYS_gettid);
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || atoi(de->d_name) == self) continue;
        char path[300], line[128];
        snprintf(path, sizeof(path), "/proc/self/task/%s/status", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        while (fgets(line, sizeof(line), f))
            if (!strncmp(line, "voluntary_ctxt_switches:", 24)) sum += atol(line + 24);
        fclose(f);
    }
    closedir(d);
    return sum;
}

TEST(block_cached_read_completes_on_submitter_io_uring)
{
    char path[256];
    make_image(path, sizeof(path), 1 << 20);
    struct blk_backend *b = open_engine(path, false, "io_uring");
    if (b) {
        uint8_t w[4096], rd[4096];
        fill(w, sizeof(w), 7);
        CHECK_EQ(rw1(b, BLK_WRITE, 8192, w, sizeof(w)), (int64_t)sizeof(w));
        int inl = 0, right = 0;
        long sw0 = other_threads_switches();
        for (int i = 0; i < 50; i++) {
            struct waiter wt = WAITER_INIT;
            struct inline_req q;
            struct iovec v = {rd, sizeof(rd)};
            memset(rd, 0, sizeof(rd));
            treq_init(&q.t, &wt, BLK_READ, 8192, &v, 1, 0);
            q.t.r.done = inline_done;
            q.t.r.opaque = &q;
            q.submitter = pthread_self();
            atomic_store(&q.on_submitter, false);
            if (blk_submit(b, &q.t.r) != 0 || !wait_done(&wt, 1)) break;
            inl += atomic_load(&q.on_submitter);
            right += q.t.res == (int64_t)sizeof(rd) && !memcmp(rd, w, sizeof(w));
        }
        long sw = other_threads_switches() - sw0;
        CHECK_EQ(right, 50);
        CHECK(inl >= 40);
        /* The completion thread sleeps while nothing is in flight, not in io_uring_enter,
         * where completions posted (also those taken here) woke it: 8 switches in 50 reads
         * before. Now only a read that did not finish at once wakes it. */
        if (sw < 0 || sw > 2 * (50 - inl) + 2) {
            fprintf(stderr, "  other threads switched %ld times (%d of 50 inline)\n", sw, inl);
            test_failures_in_current++;
        }
        blk_close(b);
    }
    unlink(path);
}

/* Several threads (harts) submitting at once into one backend. */
#define NTHR    4
#define PER_THR 250
struct submitter {
    struct blk_backend *b;
    struct waiter *w;
    int id;
    struct treq t[PER_THR];
    uint8_t buf[PER_THR][512];
    struct iovec v[PER_THR];
    int refused;
};

static void *submit_thread(void *arg)
{
    struct submitter *s = arg;
    for (int i = 0; i < PER_THR; i++) {
        fill(s->buf[i], 512, (unsigned)(s->id * PER_THR + i));
        s->v[i] = (struct iovec){s->buf[i], 512};
        treq_init(&s->t[i], s->w, BLK_WRITE, (uint64_t)(s->id * PER_THR + i) * 512, &s->v[i], 1, 0);
        s->refused += blk_submit(s->b, &s->t[i].r) != 0;
    }
    return NULL;
}

static void concurrent_submitters(const char *engine)
{
    char path[256];
    make_image(path, sizeof(path), NTHR * PER_THR * 512);
    struct blk_backend *b = open_engine(path, false, engine);
    if (b) {
        static struct submitter s[NTHR];
        struct waiter w = WAITER_INIT;
        pthread_t th[NTHR];
        for (int i = 0; i < NTHR; i++) {
            s[i].b = b;
            s[i].w = &w;
            s[i].id = i;
            s[i].refused = 0;
            CHECK(pthread_create(&th[i], NULL, submit_thread, &s[i]) == 0);
        }
        for (int i = 0; i < NTHR; i++)
            pthread_join(th[i], NULL);
        wait_done(&w, NTHR * PER_THR);
        int bad = 0;
        for (int i = 0; i < NTHR; i++) {
            bad += s[i].refused;
            for (int j = 0; j < PER_THR; j++)
                bad += atomic_load(&s[i].t[j].calls) != 1 || s[i].t[j].res != 512;
        }
        CHECK_EQ(bad, 0);
        static uint8_t back[NTHR * PER_THR * 512];
        CHECK_EQ(rw1(b, BLK_READ, 0, back, sizeof(back)), sizeof(back));
        for (int i = 0; i < NTHR * PER_THR; i++) {
            uint8_t want[512];
            fill(want, 512, (unsigned)i);
            bad += memcmp(want, back + i * 512, 512) != 0;
        }
        CHECK_EQ(bad, 0);
        blk_close(b);
    }
    unlink(path);
}
BOTH_ENGINES(concurrent_submitters)

/* cache=none: how many of the file's pages in [off, off+len) are in the host page cache. */
static long cached_pages(const char *path, off_t off, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, off);
    close(fd);
    if (m == MAP_FAILED) return -1;
    long page = sysconf(_SC_PAGESIZE), n = 0;
    unsigned char vec[256];
    size_t np = len / (size_t)page;
    if (np > sizeof(vec) || mincore(m, len, vec) < 0) n = -1;
    for (size_t i = 0; n >= 0 && i < np; i++)
        n += vec[i] & 1;
    munmap(m, len);
    return n;
}

/* cache=none: aligned requests bypass the page cache (checked with mincore against a
 * writeback control), unaligned ones go through it and are counted, and both paths see each
 * other's data. */
static void direct_io(const char *engine)
{
    char path[256], err[256] = "";
    uint8_t *buf = aligned_alloc(4096, 128 << 10), *back = aligned_alloc(4096, 128 << 10);
    CHECK(buf && back);
    make_image(path, sizeof(path), 1 << 20);
    struct blk_backend *b = NULL;
    struct blk_open_opts o = {.direct = true};
    setenv("VESSEL_IO_ENGINE", engine, 1);
    int r = blk_open(&b, path, &o, err, sizeof(err));
    unsetenv("VESSEL_IO_ENGINE");
    if (r == -EINVAL && strstr(err, "does not support direct I/O")) {
        fprintf(stderr, "  note: %s\n", err); /* the refusal is the right answer there */
        goto out;
    }
    CHECK_EQ(r, 0);
    if (r) goto out;
    CHECK(blk_direct(b));
    CHECK_EQ(blk_buffered_fallbacks(b), 0);

    /* aligned: straight to the file, nothing lands in the page cache */
    fill(buf, 64 << 10, 21);
    CHECK_EQ(rw1(b, BLK_WRITE, 512 << 10, buf, 64 << 10), 64 << 10);
    memset(back, 0, 64 << 10);
    CHECK_EQ(rw1(b, BLK_READ, 512 << 10, back, 64 << 10), 64 << 10);
    CHECK(!memcmp(buf, back, 64 << 10));
    CHECK_EQ(blk_buffered_fallbacks(b), 0);
    CHECK_EQ(cached_pages(path, 512 << 10, 64 << 10), 0);

    /* unaligned buffer, then unaligned offset: through the page cache, counted */
    fill(buf + 1, 512, 22);
    CHECK_EQ(rw1(b, BLK_WRITE, 512, buf + 1, 512), 512);
    CHECK_EQ(blk_buffered_fallbacks(b), 1);
    fill(buf, 1000, 23);
    CHECK_EQ(rw1(b, BLK_WRITE, 2600, buf, 1000), 1000);
    CHECK_EQ(blk_buffered_fallbacks(b), 2);
    /* an aligned direct read sees them (the kernel writes dirty pages back first) */
    CHECK_EQ(rw1(b, BLK_READ, 0, back, 4096), 4096);
    CHECK_EQ(blk_buffered_fallbacks(b), 2);
    uint8_t want[1024];
    fill(want, 512, 22);
    CHECK(!memcmp(back + 512, want, 512));
    fill(want, 1000, 23);
    CHECK(!memcmp(back + 2600, want, 1000));
    CHECK(all_zero(back, 512) && all_zero(back + 1024, 1576) && all_zero(back + 3600, 496));

    /* a direct write replaces what the page cache holds: a buffered read sees the new data */
    fill(buf, 4096, 24);
    CHECK_EQ(rw1(b, BLK_WRITE, 0, buf, 4096), 4096);
    CHECK_EQ(rw1(b, BLK_READ, 100, back + 3, 300), 300);
    CHECK(!memcmp(back + 3, buf + 100, 300));
    CHECK_EQ(blk_buffered_fallbacks(b), 3);
    CHECK_EQ(do_io(b, BLK_FLUSH, 0, NULL, 0, 0), 0);
    blk_close(b);

    /* the control: the same aligned write with the default cache mode is cached */
    b = open_engine(path, false, engine);
    if (b) {
        CHECK(!blk_direct(b));
        CHECK_EQ(rw1(b, BLK_WRITE, 768 << 10, buf, 64 << 10), 64 << 10);
        CHECK_EQ(cached_pages(path, 768 << 10, 64 << 10), 16);
        blk_close(b);
    }

    /* read-only with cache=none: reads work, writes refused */
    o.readonly = true;
    CHECK_EQ(blk_open(&b, path, &o, err, sizeof(err)), 0);
    if (b) {
        CHECK(blk_direct(b) && blk_readonly(b));
        CHECK_EQ(rw1(b, BLK_READ, 512 << 10, back, 64 << 10), 64 << 10);
        fill(buf, 64 << 10, 21);
        CHECK(!memcmp(buf, back, 64 << 10));
        CHECK_EQ(rw1(b, BLK_WRITE, 0, buf, 4096), -EROFS);
        blk_close(b);
    }
out:
    free(buf);
    free(back);
    unlink(path);
}
BOTH_ENGINES(direct_io)

/* ---- opening ---- */

static int try_open(const char *path, bool readonly, char *err, size_t errlen)
{
    struct blk_backend *b = NULL;
    struct blk_open_opts o = {.readonly = readonly};
    err[0] = 0;
    int r = blk_open(&b, path, &o, err, errlen);
    if (r == 0)
        blk_close(b);
    else
        CHECK(err[0] && !strchr(err, '\n')); /* one line */
    return r;
}

TEST(block_refuses_bad_images)
{
    char err[256], path[256];
    tmp_path(path, sizeof(path), "dir");
    CHECK(mkdir(path, 0755) == 0);
    CHECK_EQ(try_open(path, false, err, sizeof(err)), -EISDIR);
    CHECK(strstr(err, "directory"));
    CHECK_EQ(try_open(path, true, err, sizeof(err)), -EISDIR);
    CHECK(strstr(err, "directory"));
    rmdir(path);

    static const uint64_t bad[] = {0, 100, 511, 1000, 513, (1 << 20) + 1};
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        make_image(path, sizeof(path), bad[i]);
        CHECK_EQ(try_open(path, false, err, sizeof(err)), -EINVAL);
        CHECK(strstr(err, "512"));
        CHECK(strstr(err, path));
        CHECK_EQ(try_open(path, true, err, sizeof(err)), -EINVAL);
        unlink(path);
    }
    make_image(path, sizeof(path), 512); /* one sector is enough */
    CHECK_EQ(try_open(path, false, err, sizeof(err)), 0);
    unlink(path);

    tmp_path(path, sizeof(path), "missing");
    CHECK_EQ(try_open(path, false, err, sizeof(err)), -ENOENT);
    CHECK(strstr(err, "no such file"));

    tmp_path(path, sizeof(path), "fifo");
    CHECK(mkfifo(path, 0644) == 0);
    CHECK_EQ(try_open(path, true, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "regular file"));
    unlink(path);
}

TEST(block_bad_engine_name)
{
    char path[256], err[256] = "";
    make_image(path, sizeof(path), 4096);
    struct blk_backend *b = NULL;
    setenv("VESSEL_IO_ENGINE", "bogus", 1);
    CHECK_EQ(blk_open(&b, path, NULL, err, sizeof(err)), -EINVAL);
    unsetenv("VESSEL_IO_ENGINE");
    CHECK(strstr(err, "VESSEL_IO_ENGINE=bogus"));
    /* unset: the default engine, io_uring where the kernel has it */
    CHECK_EQ(blk_open(&b, path, NULL, err, sizeof(err)), 0);
    if (b) {
        CHECK(!strcmp(blk_engine_name(b), "io_uring") || !strcmp(blk_engine_name(b), "threads"));
        blk_close(b);
    }
    unlink(path);
}

/* Can another process take a write lock on path right now? (As another vessel would, with
 * an OFD lock; a POSIX lock attempt conflicts with OFD locks the same way.) */
static bool child_can_write_lock(const char *path)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(path, O_RDWR);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        _exit(fd >= 0 && fcntl(fd, F_OFD_SETLK, &fl) == 0 ? 0 : 1);
    }
    int st = -1;
    if (pid <= 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) return true;
    return WEXITSTATUS(st) == 0;
}

/* Open file description locks (issue 8 item 6): two writable opens of one image in one process
 * conflict as two processes would, with one clear line; the refusal keeps the first lock. */
TEST(block_same_image_twice_in_process)
{
    char path[256], err[256];
    make_image(path, sizeof(path), 4096);
    struct blk_backend *a = NULL, *b = NULL;
    struct blk_open_opts ro = {.readonly = true};
    CHECK_EQ(blk_open(&a, path, NULL, err, sizeof(err)), 0);
    CHECK_EQ(blk_open(&b, path, NULL, err, sizeof(err)), -EBUSY);
    CHECK(strstr(err, "already open in this vessel"));
    CHECK(strstr(err, path));
    CHECK(!strchr(err, '\n'));
    CHECK_EQ(blk_open(&b, path, &ro, err, sizeof(err)), -EBUSY);
    /* the refusals (and their close()) did not drop a's lock */
    CHECK(!child_can_write_lock(path));
    if (a) blk_close(a);
    CHECK_EQ(blk_open(&b, path, NULL, err, sizeof(err)), 0);
    if (b) blk_close(b);
    unlink(path);
}

/* POSIX locks drop when ANY descriptor of the file is closed in the process; OFD locks do not. */
TEST(block_lock_survives_other_close)
{
    char path[256], err[256];
    make_image(path, sizeof(path), 4096);
    struct blk_backend *a = NULL;
    CHECK_EQ(blk_open(&a, path, NULL, err, sizeof(err)), 0);
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    close(fd); /* with F_SETLK this dropped a's lock */
    CHECK(!child_can_write_lock(path));
    if (a) blk_close(a);
    CHECK(child_can_write_lock(path));
    unlink(path);
}

/* Any number of read-only users in one process; a writer is refused meanwhile. */
TEST(block_two_readers_in_process)
{
    char path[256], err[256];
    make_image(path, sizeof(path), 4096);
    struct blk_backend *a = NULL, *b = NULL, *w = NULL;
    struct blk_open_opts ro = {.readonly = true};
    CHECK_EQ(blk_open(&a, path, &ro, err, sizeof(err)), 0);
    CHECK_EQ(blk_open(&b, path, &ro, err, sizeof(err)), 0);
    CHECK_EQ(blk_open(&w, path, NULL, err, sizeof(err)), -EBUSY);
    CHECK(strstr(err, "already open in this vessel"));
    if (a) blk_close(a);
    /* b still holds its shared lock after a's close */
    CHECK(!child_can_write_lock(path));
    CHECK_EQ(blk_open(&w, path, NULL, err, sizeof(err)), -EBUSY);
    long pid = 0;
    bool wr = true;
    int fd = open(path, O_RDONLY);
    CHECK_EQ(blk_lock_holder(fd, &pid, &wr), 1);
    CHECK_EQ(pid, (long)getpid());
    CHECK(!wr);
    close(fd);
    if (b) blk_close(b);
    CHECK_EQ(blk_open(&w, path, NULL, err, sizeof(err)), 0);
    if (w) blk_close(w);
    unlink(path);
}

/* A child process holds the image (as another vessel would); we must be refused, by pid. */
static void lock_case(bool child_ro, bool our_ro, bool expect_busy)
{
    char path[256], err[256];
    make_image(path, sizeof(path), 1 << 20);
    int up[2], down[2];
    CHECK(pipe(up) == 0 && pipe(down) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        struct blk_backend *b;
        char e[256];
        struct blk_open_opts o = {.readonly = child_ro};
        char ok = blk_open(&b, path, &o, e, sizeof(e)) == 0 ? 'y' : 'n';
        if (write(up[1], &ok, 1) != 1) _exit(1);
        char c;
        if (read(down[0], &c, 1) < 0) _exit(1);
        if (ok == 'y') blk_close(b);
        _exit(0);
    }
    CHECK(pid > 0);
    char ok = 0;
    CHECK(read(up[0], &ok, 1) == 1 && ok == 'y');
    int r = try_open(path, our_ro, err, sizeof(err));
    if (expect_busy) {
        CHECK_EQ(r, -EBUSY);
        char want[64];
        snprintf(want, sizeof(want), "in use by process %ld (another vessel?)", (long)pid);
        CHECK(strstr(err, want));
        CHECK(strstr(err, path));
    } else {
        CHECK_EQ(r, 0);
    }
    CHECK(write(down[1], "x", 1) == 1);
    int st = -1;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* the child is gone, and its lock with it */
    CHECK_EQ(try_open(path, false, err, sizeof(err)), 0);
    close(up[0]);
    close(up[1]);
    close(down[0]);
    close(down[1]);
    unlink(path);
}

TEST(block_lock_writer_excludes_writer)
{
    lock_case(false, false, true);
}
TEST(block_lock_writer_excludes_reader)
{
    lock_case(false, true, true);
}
TEST(block_lock_reader_excludes_writer)
{
    lock_case(true, false, true);
}
TEST(block_lock_readers_share)
{
    lock_case(true, true, false);
}

/* ---- blk_create_raw ---- */

TEST(block_create_raw)
{
    char path[256], err[256];
    tmp_path(path, sizeof(path), "new");
    CHECK_EQ(blk_create_raw(path, 10ull << 30, err, sizeof(err)), 0);
    struct stat st;
    CHECK(stat(path, &st) == 0);
    CHECK_EQ(st.st_size, 10ull << 30);
    CHECK(st.st_blocks < 64); /* sparse */
    /* usable as an image */
    struct blk_backend *b = NULL;
    CHECK_EQ(blk_open(&b, path, NULL, err, sizeof(err)), 0);
    if (b) {
        CHECK_EQ(blk_size(b), 10ull << 30);
        uint8_t s[512];
        CHECK_EQ(rw1(b, BLK_READ, (10ull << 30) - 512, s, 512), 512);
        CHECK(all_zero(s, 512));
        blk_close(b);
    }
    /* never overwrites */
    CHECK_EQ(blk_create_raw(path, 4096, err, sizeof(err)), -EEXIST);
    CHECK(strstr(err, "already exists"));
    CHECK(stat(path, &st) == 0 && st.st_size == (off_t)(10ull << 30));
    unlink(path);

    CHECK_EQ(blk_create_raw(path, 0, err, sizeof(err)), -EINVAL);
    CHECK_EQ(blk_create_raw(path, 1000, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "512"));
    CHECK_EQ(blk_create_raw(path, UINT64_MAX - 511, err, sizeof(err)), -EFBIG);
    /* larger than ext4 allows in one file (16T with 4K blocks): refused, nothing left behind */
    int r = blk_create_raw(path, 1ull << 60, err, sizeof(err));
    if (r == 0) {
        fprintf(stderr, "  note: this filesystem allows 1 EiB files\n");
        unlink(path);
    } else {
        CHECK_EQ(r, -EFBIG);
        CHECK(strstr(err, "more than this filesystem allows"));
    }
    CHECK(stat(path, &st) < 0 && errno == ENOENT);

    char nodir[300];
    snprintf(nodir, sizeof(nodir), "%s-nodir/disk.img", path);
    CHECK_EQ(blk_create_raw(nodir, 4096, err, sizeof(err)), -ENOENT);
    CHECK(strstr(err, nodir));
}

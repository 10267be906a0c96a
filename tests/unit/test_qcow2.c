/* qcow2 images: header validation, reads and writes against a shadow copy, refcount table
 * growth, backing chains, crash leaks and their repair, the dirty bit, and the block backend
 * (probe, requests, the probed-raw magic guard). Images live in $TMPDIR (default /tmp). */
#include "backend/block/block.h"
#include "backend/block/qcow2.h"
#include "test.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void q_tmp(char *buf, size_t len, const char *tag)
{
    const char *dir = getenv("TMPDIR");
    static atomic_int seq;
    snprintf(buf, len, "%s/vessel-q2-%ld-%d-%s", dir && *dir ? dir : "/tmp", (long)getpid(),
             atomic_fetch_add(&seq, 1), tag);
}

static uint64_t rnd_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

static struct qcow2 *q_open(const char *p, int flags)
{
    struct qcow2 *q = NULL;
    char err[512] = "";
    int r = qcow2_open(&q, p, flags, false, err, sizeof(err));
    if (r) {
        fprintf(stderr, "  qcow2_open(%s): %d %s\n", p, r, err);
        test_failures_in_current++;
    }
    return q;
}

static int q_write(struct qcow2 *q, uint64_t off, const uint8_t *buf, uint64_t len)
{
    /* Split into up to three segments, so slices cross segment boundaries. */
    struct iovec v[3];
    uint64_t a = len / 3, b = len / 2;
    v[0] = (struct iovec){(void *)buf, a};
    v[1] = (struct iovec){(void *)(buf + a), b - a};
    v[2] = (struct iovec){(void *)(buf + b), len - b};
    return qcow2_writev(q, off, v, 3, len);
}

static int q_read(struct qcow2 *q, uint64_t off, uint8_t *buf, uint64_t len)
{
    struct iovec v[2] = {{buf, len / 2}, {buf + len / 2, len - len / 2}};
    return qcow2_readv(q, off, v, 2, len);
}

static bool same_as_shadow(struct qcow2 *q, const uint8_t *shadow, uint64_t size)
{
    uint8_t *buf = malloc(size);
    bool ok = buf && q_read(q, 0, buf, size) == 0 && !memcmp(buf, shadow, size);
    if (buf && !ok)
        for (uint64_t i = 0; i < size; i++)
            if (buf[i] != shadow[i]) {
                fprintf(stderr, "  first difference at %llu: %02x != %02x\n", (unsigned long long)i,
                        buf[i], shadow[i]);
                break;
            }
    free(buf);
    return ok;
}

static void check_clean(const char *p)
{
    struct qcow2_check c;
    char err[512] = "";
    CHECK_EQ(qcow2_check(p, false, &c, NULL, err, sizeof(err)), 0);
    CHECK_EQ(c.leaks, 0);
    CHECK_EQ(c.errors, 0);
}

/* ---- header parsing ---- */

static uint8_t hdr_buf[1 << 16];
static size_t hdr_len;
static uint64_t hdr_file;

static int parse(char *err, size_t len)
{
    struct qcow2_header h;
    return qcow2_parse_header(hdr_buf, hdr_len, hdr_file, &h, err, len);
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}
static void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

/* One corrupted field: refused with a one-line message naming what is wrong. */
static void expect_bad(int at, int width, uint64_t v, const char *word)
{
    uint8_t save[8];
    memcpy(save, hdr_buf + at, 8);
    if (width == 4)
        put_be32(hdr_buf + at, (uint32_t)v);
    else
        put_be64(hdr_buf + at, v);
    char err[512] = "";
    int r = parse(err, sizeof(err));
    if (r == 0 || !strstr(err, word) || strchr(err, '\n')) {
        fprintf(stderr, "  field at %d = 0x%llx: r=%d err='%s' (want '%s')\n", at,
                (unsigned long long)v, r, err, word);
        test_failures_in_current++;
    }
    memcpy(hdr_buf + at, save, 8);
}

TEST(qcow2_header_validation)
{
    char p[256], err[512];
    q_tmp(p, sizeof(p), "h.qcow2");
    CHECK_EQ(qcow2_create(p, 1ull << 30, 16, NULL, NULL, err, sizeof(err)), 0);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    struct stat st;
    CHECK(fd >= 0 && fstat(fd, &st) == 0);
    hdr_file = (uint64_t)st.st_size;
    hdr_len = (size_t)pread(fd, hdr_buf, sizeof(hdr_buf), 0);
    close(fd);
    unlink(p);
    CHECK_EQ(hdr_len, 65536);
    struct qcow2_header h;
    CHECK_EQ(qcow2_parse_header(hdr_buf, hdr_len, hdr_file, &h, err, sizeof(err)), 0);
    CHECK_EQ(h.version, 3);
    CHECK_EQ(h.cluster_bits, 16);
    CHECK_EQ(h.size, 1ull << 30);
    CHECK_EQ(h.l1_size, 2);

    expect_bad(0, 4, 0x514649fa, "not a qcow2");
    expect_bad(4, 4, 4, "version 4");
    expect_bad(20, 4, 8, "cluster_bits 8");
    expect_bad(20, 4, 22, "cluster_bits 22");
    expect_bad(32, 4, 1, "encrypted");
    expect_bad(36, 4, 1, "too small");                   /* L1 cannot map 1 GiB */
    expect_bad(36, 4, 1u << 23, "too large");            /* 64 MiB of L1 */
    expect_bad(40, 8, 0x30000 + 512, "L1 table offset"); /* not aligned */
    expect_bad(40, 8, 0, "L1 table offset");             /* the header cluster */
    expect_bad(40, 8, 1ull << 40, "L1 table offset");    /* past the end of the file */
    expect_bad(40, 8, 0x10000, "overlap");               /* on the refcount table */
    expect_bad(48, 8, 0, "refcount table offset");
    expect_bad(48, 8, 0x10001, "refcount table offset");
    expect_bad(56, 4, 0, "refcount table of 0");
    expect_bad(56, 4, 1000, "refcount table of 1000");
    expect_bad(60, 4, 1, "snapshot table offset"); /* one snapshot, no table */
    expect_bad(72, 8, 1ull << 9, "unknown incompatible");
    expect_bad(72, 8, 1ull << 2, "external data");
    expect_bad(72, 8, 1ull << 4, "extended L2");
    expect_bad(72, 8, 1ull << 3, "compression type"); /* bit without the field's value */
    expect_bad(96, 4, 7, "refcount_order 7");
    expect_bad(100, 4, 100, "header_length");
    expect_bad(100, 4, 1u << 20, "header_length");
    expect_bad(24, 8, 1ull << 60, "too large");
    /* backing file name: outside the cluster, overlapping the header, too long */
    put_be32(hdr_buf + 16, 10);
    expect_bad(8, 8, 65530, "backing file name");
    expect_bad(8, 8, 8, "backing file name");
    put_be32(hdr_buf + 16, 0);
    /* a header extension running past the cluster */
    put_be32(hdr_buf + 112, 0xe2792aca);
    expect_bad(116, 4, 70000, "extension");
    put_be32(hdr_buf + 112, 0);
    /* every prefix of a valid header: refused or accepted, never a crash */
    size_t full = hdr_len;
    for (hdr_len = 0; hdr_len < 200; hdr_len++)
        parse(err, sizeof(err));
    hdr_len = full;
    CHECK_EQ(parse(err, sizeof(err)), 0);
}

/* ---- reads and writes ---- */

TEST(qcow2_random_io_and_refcount_growth)
{
    char p[256], err[512];
    q_tmp(p, sizeof(p), "rw.qcow2");
    /* 512-byte clusters: a refcount block covers 256 clusters and the first refcount table
     * 64 blocks (8 MiB), so 12 MiB of data makes the table grow. */
    const uint64_t size = 16ull << 20;
    CHECK_EQ(qcow2_create(p, size, 9, NULL, NULL, err, sizeof(err)), 0);
    uint8_t *shadow = calloc(1, size), *buf = malloc(1 << 20);
    struct qcow2 *q = q_open(p, 0);
    if (!q || !shadow || !buf) goto out;
    CHECK_EQ(qcow2_hdr(q)->rt_clusters, 1);
    /* A sequential fill of 12 MiB, then random writes, zeroes and discards. */
    for (uint64_t off = 0; off < (12ull << 20); off += 65536) {
        for (int i = 0; i < 65536; i++)
            buf[i] = (uint8_t)(rnd() | 1);
        CHECK_EQ(q_write(q, off, buf, 65536), 0);
        memcpy(shadow + off, buf, 65536);
    }
    for (int n = 0; n < 400; n++) {
        uint64_t len = 1 + rnd() % 20000, off = rnd() % (size - len);
        int kind = (int)(rnd() % 8);
        if (kind < 5) {
            for (uint64_t i = 0; i < len; i++)
                buf[i] = (uint8_t)rnd();
            CHECK_EQ(q_write(q, off, buf, len), 0);
            memcpy(shadow + off, buf, len);
        } else {
            /* zero operations are sector-granular, as virtio-blk's */
            off &= ~511ull;
            len = (len + 511) & ~511ull;
            CHECK_EQ(qcow2_zero(q, off, len, kind == 7), 0);
            if (kind == 7) { /* discard: whole clusters read zero, the rest is unchanged */
                uint64_t a = (off + 511) & ~511ull, e = (off + len) & ~511ull;
                if (e > a) memset(shadow + a, 0, e - a);
            } else {
                memset(shadow + off, 0, len);
            }
        }
        if (n % 50 == 0) CHECK_EQ(qcow2_flush(q), 0);
    }
    CHECK(same_as_shadow(q, shadow, size));
    CHECK(qcow2_hdr(q)->rt_clusters > 1); /* the refcount table grew */
    qcow2_close(q);
    check_clean(p);
    q = q_open(p, QCOW2_RDONLY);
    if (q) CHECK(same_as_shadow(q, shadow, size));
    /* read-only: writes refused */
    if (q) CHECK_EQ(q_write(q, 0, buf, 512), -EROFS);
    qcow2_close(q);
    /* out of range */
    q = q_open(p, 0);
    if (q) {
        CHECK_EQ(q_read(q, size - 512, buf, 1024), -EINVAL);
        CHECK_EQ(q_write(q, size, buf, 1), -EINVAL);
        CHECK_EQ(qcow2_zero(q, size - 512, 1024, false), -EINVAL);
        qcow2_close(q);
    }
out:
    free(shadow);
    free(buf);
    unlink(p);
}

/* qcow2_set_backing_name (import of a kept chain): the header names the new file, longer or
 * shorter than before, reads come from it, and an image without a backing file is refused. */
TEST(qcow2_set_backing_name)
{
    char a[256], b[512], top[256], err[512];
    q_tmp(a, sizeof(a), "a.raw");
    q_tmp(b, sizeof(b), "b-with-a-much-longer-name-than-a.raw");
    q_tmp(top, sizeof(top), "top-rename.qcow2");
    uint8_t blk[4096];
    const char *files[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        memset(blk, 'A' + k, sizeof(blk));
        int fd = open(files[k], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        CHECK(fd >= 0 && pwrite(fd, blk, sizeof(blk), 0) == (ssize_t)sizeof(blk) &&
              ftruncate(fd, 1 << 20) == 0);
        if (fd >= 0) close(fd);
    }
    CHECK_EQ(qcow2_create(top, 1 << 20, 16, a, "raw", err, sizeof(err)), 0);
    for (int k = 1; k >= 0; k--) { /* longer, then shorter again */
        CHECK_EQ(qcow2_set_backing_name(top, files[k], err, sizeof(err)), 0);
        struct qcow2 *q = q_open(top, QCOW2_RDONLY);
        if (!q) return;
        CHECK_STR(qcow2_hdr(q)->backing, files[k]);
        uint8_t got[16];
        struct iovec v = {got, sizeof(got)};
        CHECK_EQ(qcow2_readv(q, 0, &v, 1, sizeof(got)), 0);
        CHECK_EQ(got[0], 'A' + k);
        qcow2_close(q);
    }
    check_clean(top);
    CHECK_EQ(qcow2_set_backing_name(a, b, err, sizeof(err)), -EINVAL); /* not qcow2 */
    char plain[256];
    q_tmp(plain, sizeof(plain), "plain-rename.qcow2");
    CHECK_EQ(qcow2_create(plain, 1 << 20, 16, NULL, NULL, err, sizeof(err)), 0);
    CHECK_EQ(qcow2_set_backing_name(plain, a, err, sizeof(err)), -EINVAL); /* no backing */
    CHECK_EQ(qcow2_set_backing_name(top, "", err, sizeof(err)), -EINVAL);
}

TEST(qcow2_backing_chain)
{
    char base[256], mid[256], top[256], err[512];
    q_tmp(base, sizeof(base), "base.raw");
    q_tmp(mid, sizeof(mid), "mid.qcow2");
    q_tmp(top, sizeof(top), "top.qcow2");
    const uint64_t bsize = 3ull << 20, size = 4ull << 20; /* base smaller: zeroes past it */
    uint8_t *shadow = calloc(1, size), *buf = malloc(size);
    if (!shadow || !buf) goto out;
    for (uint64_t i = 0; i < bsize; i++)
        shadow[i] = (uint8_t)(i * 7 + 1);
    int fd = open(base, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    CHECK(fd >= 0 && pwrite(fd, shadow, bsize, 0) == (ssize_t)bsize);
    if (fd >= 0) close(fd);
    /* mid names base by a relative name, top names mid by an absolute one */
    const char *rel = strrchr(base, '/') + 1;
    CHECK_EQ(qcow2_create(mid, size, 16, rel, "raw", err, sizeof(err)), 0);
    CHECK_EQ(qcow2_create(top, 0, 12, mid, NULL, err, sizeof(err)), 0); /* size: mid's */
    struct qcow2 *q = q_open(mid, 0);
    if (!q) goto out;
    CHECK_EQ(qcow2_size(q), size);
    memset(buf, 0xa5, 100000);
    CHECK_EQ(q_write(q, 123456, buf, 100000), 0); /* partial clusters: copied from base */
    memset(shadow + 123456, 0xa5, 100000);
    CHECK_EQ(qcow2_zero(q, 1 << 20, 1 << 16, false), 0); /* a zero cluster hides base */
    memset(shadow + (1 << 20), 0, 1 << 16);
    qcow2_close(q);
    q = q_open(top, 0);
    if (!q) goto out;
    CHECK_EQ(qcow2_size(q), size);
    CHECK(qcow2_backing(q) && qcow2_backing(qcow2_backing(q)));
    CHECK(!qcow2_hdr(qcow2_backing(qcow2_backing(q)))); /* raw at the bottom */
    memset(buf, 0x3c, 5000);
    CHECK_EQ(q_write(q, 3145000, buf, 5000), 0); /* across the end of base */
    memcpy(shadow + 3145000, buf, 5000);
    CHECK_EQ(qcow2_zero(q, 2 << 20, 8192, true), 0); /* discard with a backing file: zero */
    memset(shadow + (2 << 20), 0, 8192);
    CHECK(same_as_shadow(q, shadow, size));
    qcow2_close(q);
    check_clean(mid);
    check_clean(top);
    /* base untouched */
    fd = open(base, O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0 && pread(fd, buf, bsize, 0) == (ssize_t)bsize);
    if (fd >= 0) close(fd);
    for (uint64_t i = 0; i < bsize; i++)
        if (buf[i] != (uint8_t)(i * 7 + 1)) {
            CHECK(!"base changed");
            break;
        }
    /* a missing backing file: a clear error naming it */
    unlink(base);
    struct qcow2 *x = NULL;
    CHECK(qcow2_open(&x, top, QCOW2_RDONLY, false, err, sizeof(err)) == -ENOENT);
    CHECK(strstr(err, "backing file") && strstr(err, rel));
    /* a loop: an image backed by itself */
    char loop[256];
    q_tmp(loop, sizeof(loop), "loop.qcow2");
    CHECK_EQ(qcow2_create(loop, 1 << 20, 16, NULL, NULL, err, sizeof(err)), 0);
    fd = open(loop, O_RDWR | O_CLOEXEC);
    const char *self = strrchr(loop, '/') + 1;
    uint8_t hb[12];
    put_be64(hb, 4096);
    put_be32(hb + 8, (uint32_t)strlen(self));
    CHECK(fd >= 0 && pwrite(fd, hb, 12, 8) == 12);
    CHECK(fd >= 0 && pwrite(fd, self, strlen(self), 4096) == (ssize_t)strlen(self));
    if (fd >= 0) close(fd);
    CHECK(qcow2_open(&x, loop, QCOW2_RDONLY, false, err, sizeof(err)) == -ELOOP);
    CHECK(strstr(err, "deeper than"));
    unlink(loop);
out:
    free(shadow);
    free(buf);
    unlink(base);
    unlink(mid);
    unlink(top);
}

/* A process killed after some flushed and some unflushed writes: the flushed ones are all
 * there, the image only leaks, and check --repair makes it clean. */
TEST(qcow2_crash_leaks_and_repair)
{
    char p[256], err[512];
    q_tmp(p, sizeof(p), "crash.qcow2");
    CHECK_EQ(qcow2_create(p, 64ull << 20, 16, NULL, NULL, err, sizeof(err)), 0);
    pid_t pid = fork();
    if (pid == 0) {
        struct qcow2 *q;
        char e[512];
        static uint8_t b[65536];
        if (qcow2_open(&q, p, 0, false, e, sizeof(e))) _exit(2);
        for (int i = 0; i < 64; i++) {
            memset(b, i + 1, sizeof(b));
            struct iovec v = {b, sizeof(b)};
            if (qcow2_writev(q, (uint64_t)i * 3 * 65536, &v, 1, sizeof(b))) _exit(3);
            if (i == 31 && qcow2_flush(q)) _exit(4);
        }
        _exit(0); /* no flush, no close: as kill -9 */
    }
    int st;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    struct qcow2_check c;
    CHECK_EQ(qcow2_check(p, false, &c, NULL, err, sizeof(err)), 0);
    CHECK(c.leaks > 0);
    CHECK_EQ(c.errors, 0);
    CHECK_EQ(qcow2_check(p, true, &c, NULL, err, sizeof(err)), 0);
    CHECK_EQ(c.fixed, c.leaks);
    check_clean(p);
    struct qcow2 *q = q_open(p, QCOW2_RDONLY);
    static uint8_t b[65536];
    for (int i = 0; q && i < 32; i++) {
        CHECK_EQ(q_read(q, (uint64_t)i * 3 * 65536, b, sizeof(b)), 0);
        CHECK(b[0] == i + 1 && b[65535] == i + 1);
    }
    qcow2_close(q);
    unlink(p);
}

TEST(qcow2_dirty_bit_and_refusals)
{
    char p[256], err[512];
    q_tmp(p, sizeof(p), "dirty.qcow2");
    CHECK_EQ(qcow2_create(p, 1 << 20, 16, NULL, NULL, err, sizeof(err)), 0);
    int fd = open(p, O_RDWR | O_CLOEXEC);
    uint8_t b[8];
    put_be64(b, 1); /* incompatible_features: dirty */
    CHECK(fd >= 0 && pwrite(fd, b, 8, 72) == 8);
    struct qcow2 *q = NULL;
    CHECK_EQ(qcow2_open(&q, p, 0, false, err, sizeof(err)), -EROFS);
    CHECK(strstr(err, "dirty") && strstr(err, "check --repair"));
    q = q_open(p, QCOW2_RDONLY); /* reading needs no refcounts */
    qcow2_close(q);
    struct qcow2_check c;
    CHECK_EQ(qcow2_check(p, true, &c, NULL, err, sizeof(err)), 0);
    CHECK(c.dirty);
    q = q_open(p, 0);
    qcow2_close(q);
    /* two writers: the second is refused */
    struct qcow2 *a = q_open(p, 0), *x = NULL;
    CHECK_EQ(qcow2_open(&x, p, 0, false, err, sizeof(err)), -EBUSY);
    qcow2_close(a);
    /* version 2: read-only */
    put_be32(b, 2);
    CHECK(fd >= 0 && pwrite(fd, b, 4, 4) == 4);
    CHECK_EQ(qcow2_open(&x, p, 0, false, err, sizeof(err)), -EROFS);
    CHECK(strstr(err, "version 2"));
    if (fd >= 0) close(fd);
    unlink(p);
}

/* ---- the block backend ---- */

struct done_box {
    pthread_mutex_t m;
    pthread_cond_t c;
    int n;
    int64_t res;
};

static void on_done(struct blk_req *r, int64_t res)
{
    struct done_box *d = r->opaque;
    pthread_mutex_lock(&d->m);
    d->n++;
    d->res = res;
    pthread_cond_signal(&d->c);
    pthread_mutex_unlock(&d->m);
}

static int64_t submit_wait(struct blk_backend *b, enum blk_op op, uint64_t off, void *buf,
                           uint64_t len)
{
    struct done_box d = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    struct iovec v = {buf, len};
    struct blk_req r = {.op = op, .offset = off, .len = len, .done = on_done, .opaque = &d};
    if (op == BLK_READ || op == BLK_WRITE) r.iov = &v, r.iovcnt = 1;
    int s = blk_submit(b, &r);
    if (s < 0) return s;
    pthread_mutex_lock(&d.m);
    while (!d.n)
        pthread_cond_wait(&d.c, &d.m);
    pthread_mutex_unlock(&d.m);
    return d.res;
}

TEST(qcow2_block_backend)
{
    char p[256], r[256], err[512];
    q_tmp(p, sizeof(p), "be.qcow2");
    CHECK_EQ(qcow2_create(p, 8ull << 20, 16, NULL, NULL, err, sizeof(err)), 0);
    struct blk_backend *b = NULL;
    struct blk_open_opts o = {0};
    CHECK_EQ(blk_open(&b, p, &o, err, sizeof(err)), 0);
    if (!b) return;
    CHECK_STR(blk_format_name(b), "qcow2");
    CHECK_EQ(blk_size(b), 8ull << 20);
    static uint8_t w[8192], rd[8192];
    memset(w, 0x77, sizeof(w));
    CHECK_EQ(submit_wait(b, BLK_WRITE, 4096, w, sizeof(w)), sizeof(w));
    CHECK_EQ(submit_wait(b, BLK_FLUSH, 0, NULL, 0), 0);
    CHECK_EQ(submit_wait(b, BLK_READ, 4096, rd, sizeof(rd)), sizeof(rd));
    CHECK(!memcmp(w, rd, sizeof(w)));
    CHECK_EQ(submit_wait(b, BLK_WRITE_ZEROES, 4096, NULL, 4096), 0);
    CHECK_EQ(submit_wait(b, BLK_READ, 4096, rd, sizeof(rd)), sizeof(rd));
    CHECK(rd[0] == 0 && rd[4095] == 0 && rd[4096] == 0x77);
    CHECK_EQ(submit_wait(b, BLK_READ, 8ull << 20, rd, 512), -EINVAL);
    /* cache=none is refused for qcow2 */
    blk_close(b);
    o.direct = true;
    CHECK_EQ(blk_open(&b, p, &o, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "cache=none"));
    /* format=raw forces raw: the qcow2 file's bytes are the disk */
    o = (struct blk_open_opts){.format = BLK_FMT_RAW, .readonly = true};
    CHECK_EQ(blk_open(&b, p, &o, err, sizeof(err)), 0);
    if (b) {
        CHECK_STR(blk_format_name(b), "raw");
        CHECK_EQ(submit_wait(b, BLK_READ, 0, rd, 512), 512);
        CHECK(!memcmp(rd, "QFI\xfb", 4));
        blk_close(b);
    }
    check_clean(p);
    unlink(p);

    /* A probed raw image refuses a guest write of the qcow2 magic at offset 0; format=raw
     * allows it. */
    q_tmp(r, sizeof(r), "probe.raw");
    CHECK_EQ(blk_create_raw(r, 1 << 20, err, sizeof(err)), 0);
    o = (struct blk_open_opts){0};
    CHECK_EQ(blk_open(&b, r, &o, err, sizeof(err)), 0);
    if (b) {
        CHECK_STR(blk_format_name(b), "raw");
        memcpy(w, "QFI\xfb", 4);
        CHECK_EQ(submit_wait(b, BLK_WRITE, 0, w, 512), -EPERM);
        CHECK_EQ(submit_wait(b, BLK_WRITE, 512, w, 512), 512); /* elsewhere: fine */
        w[0] = 'q';
        CHECK_EQ(submit_wait(b, BLK_WRITE, 0, w, 512), 512);
        blk_close(b);
    }
    o.format = BLK_FMT_RAW;
    CHECK_EQ(blk_open(&b, r, &o, err, sizeof(err)), 0);
    if (b) {
        w[0] = 'Q';
        CHECK_EQ(submit_wait(b, BLK_WRITE, 0, w, 512), 512);
        blk_close(b);
    }
    unlink(r);
}

/* Many requests in flight at once, as a guest with a deep queue keeps them: reads and in-place
 * writes go to the I/O engine in parallel, allocation, zeroing, discard and flush wait on the
 * worker for the engine's transfers. Within a batch the requests touch different clusters (the
 * order of overlapping requests in flight is the guest's business), so the outcome is known:
 * every read sees the data before the batch, and the image ends as the model, clean. */
#define MF_CLUSTERS 64
#define MF_BATCH    24
struct mf_req {
    struct blk_req r;
    struct iovec v;
    uint8_t buf[65536];
    unsigned slot;
    int64_t want, res;
};
static uint8_t mf_model[MF_CLUSTERS][65536];
static struct mf_req mf_reqs[MF_BATCH];
static pthread_mutex_t mf_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t mf_c = PTHREAD_COND_INITIALIZER;
static unsigned mf_done;

static void mf_on_done(struct blk_req *r, int64_t res)
{
    struct mf_req *q = r->opaque;
    pthread_mutex_lock(&mf_m);
    q->res = res;
    mf_done++;
    pthread_cond_signal(&mf_c);
    pthread_mutex_unlock(&mf_m);
}

TEST(qcow2_backend_many_in_flight)
{
    char p[256], err[512];
    q_tmp(p, sizeof(p), "inflight.qcow2");
    CHECK_EQ(qcow2_create(p, (uint64_t)MF_CLUSTERS << 16, 16, NULL, NULL, err, sizeof(err)), 0);
    struct blk_backend *b = NULL;
    struct blk_open_opts o = {0};
    CHECK_EQ(blk_open(&b, p, &o, err, sizeof(err)), 0);
    if (!b) return;
    memset(mf_model, 0, sizeof(mf_model));
    unsigned bad_reads = 0, bad_results = 0, reads = 0;
    for (unsigned round = 0; round < 80; round++) {
        bool used[MF_CLUSTERS] = {false};
        mf_done = 0;
        for (unsigned i = 0; i < MF_BATCH; i++) {
            struct mf_req *q = &mf_reqs[i];
            unsigned slot;
            do
                slot = (unsigned)(rnd() % MF_CLUSTERS);
            while (used[slot]);
            used[slot] = true;
            q->slot = slot;
            uint64_t base = (uint64_t)slot << 16;
            unsigned kind = (unsigned)(rnd() % 16);
            q->r = (struct blk_req){.done = mf_on_done, .opaque = q};
            q->res = INT64_MIN;
            if (kind < 7) { /* the whole cluster read: the model before this batch */
                q->v = (struct iovec){q->buf, 65536};
                q->r.op = BLK_READ;
                q->r.offset = base;
                q->r.iov = &q->v;
                q->r.iovcnt = 1;
                q->want = 65536;
                memset(q->buf, 0xee, sizeof(q->buf));
            } else if (kind < 13) { /* 4-32 KiB written inside it */
                uint64_t off = (rnd() % 8) * 4096, len = (1 + rnd() % 8) * 4096;
                if (off + len > 65536) len = 65536 - off;
                for (uint64_t k = 0; k < len; k++)
                    q->buf[k] = (uint8_t)rnd();
                memcpy(mf_model[slot] + off, q->buf, len);
                q->v = (struct iovec){q->buf, len};
                q->r.op = BLK_WRITE;
                q->r.offset = base + off;
                q->r.iov = &q->v;
                q->r.iovcnt = 1;
                q->want = (int64_t)len;
            } else if (kind < 15) { /* the whole cluster zeroed or discarded */
                q->r.op = kind == 13 ? BLK_WRITE_ZEROES : BLK_DISCARD;
                q->r.offset = base;
                q->r.len = 65536;
                memset(mf_model[slot], 0, 65536);
                q->want = 0;
            } else {
                q->r.op = BLK_FLUSH;
                q->want = 0;
            }
        }
        for (unsigned i = 0; i < MF_BATCH; i++)
            CHECK_EQ(blk_submit(b, &mf_reqs[i].r), 0);
        pthread_mutex_lock(&mf_m);
        while (mf_done < MF_BATCH)
            pthread_cond_wait(&mf_c, &mf_m);
        pthread_mutex_unlock(&mf_m);
        for (unsigned i = 0; i < MF_BATCH; i++) {
            struct mf_req *q = &mf_reqs[i];
            if (q->res != q->want) bad_results++;
            /* a read's slot was not written in its batch: the model holds what it must see */
            if (q->r.op == BLK_READ) {
                reads++;
                if (memcmp(q->buf, mf_model[q->slot], 65536)) bad_reads++;
            }
        }
    }
    CHECK_EQ(bad_results, 0);
    CHECK_EQ(bad_reads, 0);
    CHECK(reads > 500);
    blk_close(b);
    check_clean(p);
    /* and on disk, read back by the image layer */
    struct qcow2 *q = q_open(p, QCOW2_RDONLY);
    unsigned bad = 0;
    for (unsigned i = 0; q && i < MF_CLUSTERS; i++) {
        static uint8_t back[65536];
        struct iovec v = {back, sizeof(back)};
        CHECK_EQ(qcow2_readv(q, (uint64_t)i << 16, &v, 1, sizeof(back)), 0);
        if (memcmp(back, mf_model[i], sizeof(back))) bad++;
    }
    CHECK_EQ(bad, 0);
    if (q) qcow2_close(q);
    unlink(p);
}

/* The fast path (qcow2_blk.c): reads and in-place writes whose L2 tables are cached are mapped
 * by the submitting thread while the worker may be changing tables for other requests. Threads
 * submit at once, one request each at a time, as harts do:
 *   - two writers own the raced clusters (even and odd) and write 4 KiB-aligned pieces of them,
 *     every 8-byte word tag(cluster) << 32 | generation; once a write completes, each block's
 *     generation is published;
 *   - two readers read pieces of the same clusters: every word must carry the cluster's tag
 *     and, per block, a generation at least the one published before the read was submitted
 *     (a read the guest submits after a write completed sees it) and at most the last issued;
 *   - a churn thread writes, reads back, zeroes, discards and flushes clusters spread over 40
 *     L2 tables (more than the cache's 16): tables are read, evicted and written back, clusters
 *     freed and allocated again under the others' feet.
 * Between rounds an internal snapshot is taken (the backend closed), so every raced cluster's
 * first write in a round is a copy-on-write on the worker, with its L2 table copied too.
 * Shown to fail when the submitter maps a write as a read (in place into a cluster a snapshot
 * shares: snapshot r1 no longer reads back); with the submitter mapping while the worker is
 * busy, the test passes plain but ThreadSanitizer reports the races on the L2 cache. */
#define FP_CS      65536ull
#define FP_REGION  (512ull << 20) /* guest bytes one L2 table maps (64 KiB clusters) */
#define FP_HOT     4              /* regions of the raced clusters: their tables stay cached */
#define FP_RACED   32             /* raced clusters, FP_RACED / FP_HOT per hot region */
#define FP_REGIONS 40             /* churn clusters: one per region */
#define FP_BLKS    (FP_CS / 4096)
#define FP_ROUNDS  3

static _Atomic uint8_t fp_done[FP_RACED][FP_BLKS]; /* generation completed, per block */
static _Atomic uint8_t fp_issued[FP_RACED];        /* highest generation submitted */
static uint8_t fp_snap[FP_RACED][FP_BLKS];         /* fp_done when snapshot "r1" was taken */
static atomic_bool fp_stop;
static atomic_uint fp_bad, fp_errs, fp_reads_checked;
static struct blk_backend *fp_b;

static uint64_t fp_off(unsigned x)
{
    return (uint64_t)(x % FP_HOT) * FP_REGION + (uint64_t)(x / FP_HOT) * FP_CS;
}
static uint64_t fp_tag(unsigned x)
{
    return 0xc0de0000ull | x;
}
static uint64_t fp_rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void *fp_writer(void *arg)
{
    unsigned w = (unsigned)(uintptr_t)arg;
    uint64_t s = 0x9e3779b97f4a7c15ull * (w + 1);
    uint64_t *buf = malloc(FP_CS);
    while (buf && !atomic_load(&fp_stop)) {
        unsigned x = (unsigned)(fp_rnd(&s) % (FP_RACED / 2)) * 2 + w;
        uint8_t gen = (uint8_t)(atomic_load(&fp_issued[x]) + 1);
        if (gen == 255) continue; /* generations stay below 255 (bytes) */
        unsigned a = (unsigned)(fp_rnd(&s) % FP_BLKS), n = 1 + (unsigned)(fp_rnd(&s) % FP_BLKS);
        if (fp_rnd(&s) % 4 == 0) a = 0, n = FP_BLKS; /* the whole cluster */
        if (a + n > FP_BLKS) n = FP_BLKS - a;
        for (size_t i = 0; i < n * 4096 / 8; i++)
            buf[i] = fp_tag(x) << 32 | gen;
        atomic_store(&fp_issued[x], gen);
        int64_t r = submit_wait(fp_b, BLK_WRITE, fp_off(x) + a * 4096ull, buf, n * 4096ull);
        if (r != (int64_t)n * 4096) atomic_fetch_add(&fp_errs, 1);
        for (unsigned k = a; k < a + n; k++)
            atomic_store(&fp_done[x][k], gen);
    }
    free(buf);
    return NULL;
}

/* Words of block k of cluster x read back: tag and generation in [lo, hi] (0: never written). */
static bool fp_block_ok(const uint64_t *w, unsigned x, uint8_t lo, uint8_t hi)
{
    for (size_t i = 0; i < 4096 / 8; i++) {
        uint64_t v = w[i];
        if (v == 0 && lo == 0) continue;
        if (v >> 32 != fp_tag(x) || (v & 0xffffffffull) < lo || (v & 0xffffffffull) > hi)
            return false;
    }
    return true;
}

static void *fp_reader(void *arg)
{
    uint64_t s = 0x2545f4914f6cdd1dull * ((uintptr_t)arg + 3);
    uint64_t *buf = malloc(FP_CS);
    while (buf && !atomic_load(&fp_stop)) {
        unsigned x = (unsigned)(fp_rnd(&s) % FP_RACED);
        unsigned a = (unsigned)(fp_rnd(&s) % FP_BLKS), n = 1 + (unsigned)(fp_rnd(&s) % 4);
        if (a + n > FP_BLKS) n = FP_BLKS - a;
        uint8_t lo[FP_BLKS];
        for (unsigned k = a; k < a + n; k++)
            lo[k] = atomic_load(&fp_done[x][k]);
        int64_t r = submit_wait(fp_b, BLK_READ, fp_off(x) + a * 4096ull, buf, n * 4096ull);
        uint8_t hi = atomic_load(&fp_issued[x]);
        if (r != (int64_t)n * 4096) {
            atomic_fetch_add(&fp_errs, 1);
            continue;
        }
        for (unsigned k = a; k < a + n; k++)
            if (!fp_block_ok(buf + (k - a) * 512, x, lo[k], hi)) {
                if (atomic_fetch_add(&fp_bad, 1) < 3)
                    fprintf(stderr,
                            "  cluster %u block %u: word 0x%llx, want tag 0x%llx gen %u..%u\n", x,
                            k, (unsigned long long)buf[(k - a) * 512],
                            (unsigned long long)fp_tag(x), lo[k], hi);
            }
        atomic_fetch_add(&fp_reads_checked, 1);
    }
    free(buf);
    return NULL;
}

static void *fp_churn(void *arg)
{
    (void)arg;
    uint64_t s = 0x1234567887654321ull;
    uint64_t *buf = malloc(FP_CS), *back = malloc(FP_CS);
    while (buf && back && !atomic_load(&fp_stop)) {
        unsigned c = (unsigned)(fp_rnd(&s) % FP_REGIONS);
        uint64_t off = (uint64_t)c * FP_REGION + FP_REGION / 2, tag = 0xbeef0000ull | c;
        unsigned op = (unsigned)(fp_rnd(&s) % 8);
        int64_t r;
        if (op < 4) { /* write it whole (allocating after a discard), read it back */
            uint64_t g = fp_rnd(&s) & 0xffff;
            for (size_t i = 0; i < FP_CS / 8; i++)
                buf[i] = tag << 32 | g;
            r = submit_wait(fp_b, BLK_WRITE, off, buf, FP_CS);
            if (r != (int64_t)FP_CS) atomic_fetch_add(&fp_errs, 1);
            r = submit_wait(fp_b, BLK_READ, off, back, FP_CS);
            if (r != (int64_t)FP_CS || memcmp(buf, back, FP_CS)) atomic_fetch_add(&fp_bad, 1);
        } else if (op < 6) { /* gone: zeroes */
            r = submit_wait(fp_b, op == 4 ? BLK_DISCARD : BLK_WRITE_ZEROES, off, NULL, FP_CS);
            if (r != 0) atomic_fetch_add(&fp_errs, 1);
            r = submit_wait(fp_b, BLK_READ, off, back, 4096);
            if (r != 4096 || back[0] || back[511]) atomic_fetch_add(&fp_bad, 1);
        } else if (op == 6) {
            if (submit_wait(fp_b, BLK_FLUSH, 0, NULL, 0) != 0) atomic_fetch_add(&fp_errs, 1);
        } else { /* a cold table read for a small read */
            r = submit_wait(fp_b, BLK_READ, off + FP_CS, back, 4096);
            if (r != 4096) atomic_fetch_add(&fp_errs, 1);
        }
    }
    free(buf);
    free(back);
    return NULL;
}

/* Every raced block on disk, by the image layer: the generation table holds what it must. */
static unsigned fp_verify(struct qcow2 *q, uint8_t (*want)[FP_BLKS])
{
    unsigned bad = 0;
    static uint64_t back[FP_CS / 8];
    for (unsigned x = 0; x < FP_RACED; x++) {
        struct iovec v = {back, FP_CS};
        if (qcow2_readv(q, fp_off(x), &v, 1, FP_CS)) {
            bad++;
            continue;
        }
        for (unsigned k = 0; k < FP_BLKS; k++)
            if (!fp_block_ok(back + k * 512, x, want[x][k], want[x][k]) && bad++ < 3)
                fprintf(stderr, "  on disk: cluster %u block %u: word 0x%llx, want generation %u\n",
                        x, k, (unsigned long long)back[k * 512], want[x][k]);
    }
    return bad;
}

TEST(qcow2_backend_fast_path_races)
{
    char p[256], err[512];
    q_tmp(p, sizeof(p), "fast.qcow2");
    CHECK_EQ(qcow2_create(p, (uint64_t)FP_REGIONS * FP_REGION, 16, NULL, NULL, err, sizeof(err)),
             0);
    memset(fp_done, 0, sizeof(fp_done));
    memset(fp_issued, 0, sizeof(fp_issued));
    atomic_store(&fp_bad, 0);
    atomic_store(&fp_errs, 0);
    atomic_store(&fp_reads_checked, 0);
    uint64_t submitted = 0, mapped = 0, worker = 0;
    for (unsigned round = 0; round < FP_ROUNDS; round++) {
        if (round) { /* a snapshot: the next writes copy clusters and L2 tables */
            struct qcow2 *q = q_open(p, 0);
            if (!q) break;
            char name[8];
            snprintf(name, sizeof(name), "r%u", round);
            CHECK_EQ(qcow2_snapshot_create(q, name, err, sizeof(err)), 0);
            if (round == 1)
                for (unsigned x = 0; x < FP_RACED; x++)
                    for (unsigned k = 0; k < FP_BLKS; k++)
                        fp_snap[x][k] = atomic_load(&fp_done[x][k]);
            qcow2_close(q);
        }
        struct blk_open_opts o = {0};
        fp_b = NULL;
        CHECK_EQ(blk_open(&fp_b, p, &o, err, sizeof(err)), 0);
        if (!fp_b) break;
        atomic_store(&fp_stop, false);
        pthread_t th[5];
        pthread_create(&th[0], NULL, fp_writer, (void *)0);
        pthread_create(&th[1], NULL, fp_writer, (void *)1);
        pthread_create(&th[2], NULL, fp_reader, (void *)0);
        pthread_create(&th[3], NULL, fp_reader, (void *)1);
        pthread_create(&th[4], NULL, fp_churn, NULL);
        usleep(700 * 1000);
        atomic_store(&fp_stop, true);
        for (int i = 0; i < 5; i++)
            pthread_join(th[i], NULL);
        uint64_t s, m, w;
        qcow2_backend_counts(fp_b, &s, &m, &w);
        submitted += s, mapped += m, worker += w;
        blk_close(fp_b);
    }
    CHECK_EQ(atomic_load(&fp_errs), 0);
    CHECK_EQ(atomic_load(&fp_bad), 0);
    /* both paths ran, and many reads were checked */
    CHECK(atomic_load(&fp_reads_checked) > 300);
    CHECK(submitted > 300);
    CHECK(worker > 100);
    if (atomic_load(&fp_bad) || submitted <= 300 || worker <= 100)
        fprintf(stderr,
                "  %u reads checked; %llu mapped on submission, %llu by the worker, %llu "
                "done by the worker\n",
                atomic_load(&fp_reads_checked), (unsigned long long)submitted,
                (unsigned long long)mapped, (unsigned long long)worker);
    check_clean(p);
    struct qcow2 *q = q_open(p, 0);
    if (q) {
        static uint8_t now[FP_RACED][FP_BLKS];
        for (unsigned x = 0; x < FP_RACED; x++)
            for (unsigned k = 0; k < FP_BLKS; k++)
                now[x][k] = atomic_load(&fp_done[x][k]);
        CHECK_EQ(fp_verify(q, now), 0);
        /* the first snapshot kept its data: no write went in place into a shared cluster */
        CHECK_EQ(qcow2_snapshot_apply(q, "r1", err, sizeof(err)), 0);
        CHECK_EQ(fp_verify(q, fp_snap), 0);
        qcow2_close(q);
    }
    check_clean(p);
    unlink(p);
}

/* A guest that rewrites and discards one cluster forever, never flushing: clusters it frees
 * wait for a flush, so the file must not grow with every round. */
TEST(qcow2_rewrite_discard_bounded)
{
    char p[256], err[512];
    q_tmp(p, sizeof(p), "churn.qcow2");
    CHECK_EQ(qcow2_create(p, 1 << 20, 9, NULL, NULL, err, sizeof(err)), 0);
    struct qcow2 *q = q_open(p, 0);
    static uint8_t b[512];
    memset(b, 0xee, sizeof(b));
    for (int i = 0; q && i < 100000; i++) {
        if (q_write(q, 0, b, sizeof(b)) || qcow2_zero(q, 0, sizeof(b), true)) {
            CHECK(!"write/discard failed");
            break;
        }
    }
    qcow2_close(q);
    struct stat st;
    CHECK(stat(p, &st) == 0);
    /* 100000 rounds of one 512-byte cluster: 51 MB if nothing were ever freed */
    CHECK(st.st_size < (40 << 20));
    check_clean(p);
    unlink(p);
}

/* Internal snapshots: create, write over shared clusters and tables (copy-on-write), apply
 * (the snapshot's data back), delete; refcounts and copied flags exact throughout. */
TEST(qcow2_snapshots)
{
    char p[256], err[512];
    q_tmp(p, sizeof(p), "snap.qcow2");
    const uint64_t size = 8ull << 20;
    CHECK_EQ(qcow2_create(p, size, 12, NULL, NULL, err, sizeof(err)), 0);
    uint8_t *a = calloc(1, size), *shadow = calloc(1, size), *buf = malloc(1 << 16);
    struct qcow2 *q = q_open(p, 0);
    if (!q || !a || !shadow || !buf) goto out;
    for (uint64_t off = 0; off < (4 << 20); off += 4096) {
        memset(buf, (int)(off >> 12) | 1, 4096);
        CHECK_EQ(q_write(q, off, buf, 4096), 0);
        memset(a + off, (int)(off >> 12) | 1, 4096);
    }
    CHECK_EQ(qcow2_snapshot_create(q, "one", err, sizeof(err)), 0);
    CHECK_EQ(qcow2_snapshot_create(q, "one", err, sizeof(err)), -EEXIST);
    CHECK_EQ(qcow2_snapshot_count(q), 1);
    memcpy(shadow, a, size);
    for (int n = 0; n < 200; n++) {
        uint64_t len = 1 + rnd() % 9000, off = rnd() % (size - len);
        if (n % 5 == 4) {
            off &= ~511ull;
            len = (len + 511) & ~511ull;
            CHECK_EQ(qcow2_zero(q, off, len, false), 0);
            memset(shadow + off, 0, len);
            continue;
        }
        for (uint64_t i = 0; i < len; i++)
            buf[i] = (uint8_t)rnd();
        CHECK_EQ(q_write(q, off, buf, len), 0);
        memcpy(shadow + off, buf, len);
    }
    CHECK(same_as_shadow(q, shadow, size));
    qcow2_close(q);
    check_clean(p);
    q = q_open(p, 0);
    if (!q) goto out;
    CHECK_EQ(qcow2_snapshot_count(q), 1);
    struct qcow2_snapshot_info si;
    qcow2_snapshot_get(q, 0, &si);
    CHECK_STR(si.name, "one");
    CHECK_STR(si.id, "1");
    CHECK_EQ(si.disk_size, size);
    CHECK_EQ(qcow2_snapshot_create(q, "two", err, sizeof(err)), 0); /* the current state */
    CHECK_EQ(qcow2_snapshot_apply(q, "one", err, sizeof(err)), 0);
    CHECK(same_as_shadow(q, a, size));
    CHECK_EQ(qcow2_snapshot_apply(q, "2", err, sizeof(err)), 0); /* by id */
    CHECK(same_as_shadow(q, shadow, size));
    CHECK_EQ(qcow2_snapshot_apply(q, "three", err, sizeof(err)), -ENOENT);
    CHECK_EQ(qcow2_snapshot_delete(q, "one", err, sizeof(err)), 0);
    CHECK_EQ(qcow2_snapshot_delete(q, "two", err, sizeof(err)), 0);
    CHECK_EQ(qcow2_snapshot_count(q), 0);
    CHECK(same_as_shadow(q, shadow, size));
    qcow2_close(q);
    check_clean(p);
out:
    free(a);
    free(shadow);
    free(buf);
    unlink(p);
}

/* A hostile image maps guest data onto its own L1 table: a write there fails (I/O error)
 * instead of letting the guest rewrite the image's metadata, and the table is intact. */
TEST(qcow2_data_on_metadata_refused)
{
    char p[256], err[512];
    q_tmp(p, sizeof(p), "overlap.qcow2");
    CHECK_EQ(qcow2_create(p, 1 << 20, 16, NULL, NULL, err, sizeof(err)), 0);
    struct qcow2 *q = q_open(p, 0);
    static uint8_t b[4096];
    memset(b, 0x11, sizeof(b));
    if (q) CHECK_EQ(q_write(q, 0, b, sizeof(b)), 0); /* makes the L2 table */
    uint64_t l1 = q ? qcow2_hdr(q)->l1_offset : 0;
    qcow2_close(q);
    int fd = open(p, O_RDWR | O_CLOEXEC);
    uint8_t e[8];
    CHECK(fd >= 0 && pread(fd, e, 8, (off_t)l1) == 8);
    uint64_t l2 = 0;
    for (int i = 0; i < 8; i++)
        l2 = l2 << 8 | e[i];
    l2 &= 0x00fffffffffffe00ull;
    put_be64(e, l1 | (1ull << 63)); /* guest cluster 0 -> the L1 table, "copied" */
    CHECK(fd >= 0 && pwrite(fd, e, 8, (off_t)l2) == 8);
    q = q_open(p, 0);
    if (q) {
        CHECK_EQ(q_write(q, 0, b, sizeof(b)), -EIO);
        qcow2_close(q);
    }
    uint8_t after[8];
    CHECK(fd >= 0 && pread(fd, after, 8, (off_t)l1) == 8);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | after[i];
    CHECK_EQ(v & 0x00fffffffffffe00ull, l2); /* still the L2 table's offset */
    if (fd >= 0) close(fd);
    unlink(p);
}

/* Compressed clusters vessel writes (convert -c): packed several to a host cluster, read
 * back, then overwritten in part, zeroed and discarded (each copies or drops its share of
 * a host cluster); refcounts exact throughout. */
TEST(qcow2_compressed_write_and_cow)
{
    char p[256], err[512];
    q_tmp(p, sizeof(p), "comp.qcow2");
    const uint64_t size = (2ull << 20) + 1536; /* a partial last cluster */
    CHECK_EQ(qcow2_create(p, size, 16, NULL, NULL, err, sizeof(err)), 0);
    uint8_t *shadow = calloc(1, size + 65536), *buf = calloc(1, 65536);
    struct qcow2 *q = q_open(p, 0);
    if (!q || !shadow || !buf) goto out;
    for (uint64_t off = 0; off < size; off += 65536) {
        /* text compresses well, so several share a host cluster; every 5th is random */
        for (int i = 0; i < 65536; i++)
            buf[i] =
                (off >> 16) % 5 == 4 ? (uint8_t)rnd() : (uint8_t)("vessel"[i % 6] + (off >> 16));
        if (off + 65536 > size) memset(buf + (size - off), 0, 65536 - (size - off));
        CHECK_EQ(qcow2_write_compressed(q, off, buf), 0);
        memcpy(shadow + off, buf, 65536);
    }
    CHECK_EQ(qcow2_write_compressed(q, 0, buf), -EEXIST);
    qcow2_close(q);
    check_clean(p);
    struct stat st;
    CHECK(stat(p, &st) == 0 && st.st_size < (1 << 20)); /* compressed indeed */
    q = q_open(p, 0);
    if (!q) goto out;
    CHECK(same_as_shadow(q, shadow, size));
    memset(buf, 0x99, 3000);
    CHECK_EQ(q_write(q, 65536 + 100, buf, 3000), 0); /* copy-on-write of a compressed one */
    memcpy(shadow + 65536 + 100, buf, 3000);
    CHECK_EQ(qcow2_zero(q, 3 * 65536, 65536, false), 0);
    memset(shadow + 3 * 65536, 0, 65536);
    CHECK_EQ(qcow2_zero(q, 5 * 65536, 2 * 65536, true), 0);
    memset(shadow + 5 * 65536, 0, 2 * 65536);
    CHECK(same_as_shadow(q, shadow, size));
    qcow2_close(q);
    check_clean(p);
    q = q_open(p, QCOW2_RDONLY);
    if (q) CHECK(same_as_shadow(q, shadow, size));
    qcow2_close(q);
out:
    free(shadow);
    free(buf);
    unlink(p);
}

/* A crash inside snapshot create, after the references were counted and the copied flags
 * cleared but before the table named the snapshot (made here by taking the snapshot out of
 * the header): only leaks; --repair frees them and sets the copied flags right again. */
TEST(qcow2_repair_after_snapshot_crash)
{
    char p[256], err[512];
    q_tmp(p, sizeof(p), "snapcrash.qcow2");
    CHECK_EQ(qcow2_create(p, 4 << 20, 16, NULL, NULL, err, sizeof(err)), 0);
    struct qcow2 *q = q_open(p, 0);
    static uint8_t b[200000];
    memset(b, 0x5c, sizeof(b));
    if (q) {
        CHECK_EQ(q_write(q, 0, b, sizeof(b)), 0);
        CHECK_EQ(qcow2_snapshot_create(q, "s", err, sizeof(err)), 0);
    }
    qcow2_close(q);
    int fd = open(p, O_RDWR | O_CLOEXEC);
    static const uint8_t none[12];
    CHECK(fd >= 0 && pwrite(fd, none, 12, 60) == 12); /* nb_snapshots, snapshots_offset */
    if (fd >= 0) close(fd);
    struct qcow2_check c;
    CHECK_EQ(qcow2_check(p, false, &c, NULL, err, sizeof(err)), 0);
    CHECK(c.leaks > 0);
    CHECK_EQ(c.errors, 0);
    CHECK_EQ(qcow2_check(p, true, &c, NULL, err, sizeof(err)), 0);
    check_clean(p); /* refcounts and copied flags */
    q = q_open(p, 0);
    static uint8_t r[200000];
    if (q) {
        CHECK_EQ(q_read(q, 0, r, sizeof(r)), 0);
        CHECK(!memcmp(r, b, sizeof(b)));
        CHECK_EQ(q_write(q, 1000, b, 5000), 0); /* in place again: copied */
    }
    qcow2_close(q);
    check_clean(p);
    unlink(p);
}

/* qcow2 images: header parsing, cluster mapping, allocation and refcounts (qcow2.h).
 * Section names below refer to QEMU's docs/interop/qcow2.txt. Written from the spec. */
#include "backend/block/qcow2.h"
#include "backend/block/block.h"
#include "util/log.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define QCOW2_MAGIC      0x514649fbu
#define OFFSET_MASK      0x00fffffffffffe00ull /* L1/L2 entries: bits 9-55 */
#define OFLAG_COPIED     (1ull << 63)
#define OFLAG_COMPRESSED (1ull << 62)
#define OFLAG_ZERO       1ull
#define RT_OFFSET_MASK   0xfffffffffffffe00ull /* refcount table entries: bits 9-63 */
#define L2E_RESERVED     0x3f000000000001feull /* standard cluster: bits 1-8, 56-61 */
#define MAX_L1_BYTES     (32u << 20)
#define MAX_RT_BYTES     (8u << 20)
#define MAX_VSIZE        (1ull << 56) /* offsets are 56 bits wide */
#define HEADER_BUF       (2u << 20)   /* the largest cluster */
#define RB_CACHE         4
#define PEND_FLUSH       65536 /* clusters waiting to be freed: flush (and free) beyond this */
#define QCOW2_CHECKING   0x100 /* open_node for qcow2_check: no refusals, no backing chain */

#define INCOMPAT_DIRTY       (1ull << 0)
#define INCOMPAT_CORRUPT     (1ull << 1)
#define INCOMPAT_DATA_FILE   (1ull << 2)
#define INCOMPAT_COMPRESSION (1ull << 3)
#define INCOMPAT_EXTL2       (1ull << 4)
#define INCOMPAT_KNOWN       0x1full

#define EXT_END         0x00000000u
#define EXT_BACKING_FMT 0xe2792acau
#define EXT_BITMAPS     0x23852875u
#define EXT_CRYPTO      0x0537be77u
#define EXT_DATA_FILE   0x44415441u

struct tcache {
    uint64_t off; /* 0: empty */
    uint8_t *data;
    bool dirty;
    uint64_t used; /* LRU stamp */
};

/* One entry of the snapshot table ("Snapshot table"), kept as read so that rewriting the
 * table preserves what vessel does not interpret (extra data, VM state sizes). */
struct snap {
    uint8_t *raw; /* the whole entry, padded to 8 bytes */
    size_t len;
    uint64_t l1_off;
    uint32_t l1_size;
    char id[128], name[256];
};

struct qcow2 {
    struct snap *snaps;
    unsigned nsnaps;
    uint64_t snap_clusters; /* clusters the snapshot table takes */
    char *path;
    int fd;
    bool readonly, raw;
    uint64_t size; /* virtual size */
    struct qcow2_header h;
    unsigned cb; /* cluster_bits */
    uint64_t cs; /* cluster size */
    unsigned l2_bits;
    uint64_t l2_entries;
    unsigned rc_bits; /* bits per refcount */
    uint64_t rb_entries;
    uint64_t *l1;
    bool l1_dirty;
    uint64_t *rt;
    uint64_t rt_entries;
    struct tcache *l2c;
    unsigned nl2c;
    struct tcache rbc[RB_CACHE];
    uint64_t clock;
    uint64_t file_end; /* clusters: nothing at or beyond is in use */
    uint64_t free_hint;
    uint64_t *pend; /* clusters to give a reference back once the tables are on disk */
    size_t npend, cappend;
    uint8_t *cbuf, *dbuf, *zin;
    ZSTD_DCtx *zd;
    struct qcow2 *backing;
    bool broken;   /* metadata went wrong: no more writes */
    uint64_t cpos; /* qcow2_write_compressed: next free byte of its current host cluster */
};

static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return r;
}

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint16_t be16n(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* [a, a+al) and [b, b+bl) intersect (lengths > 0, no overflow: callers bound them). */
static bool overlaps(uint64_t a, uint64_t al, uint64_t b, uint64_t bl)
{
    return a < b + bl && b < a + al;
}

/* "Header" and "Header extensions" sections. */
int qcow2_parse_header(const uint8_t *buf, size_t len, uint64_t file_size, struct qcow2_header *h,
                       char *err, size_t errlen)
{
    memset(h, 0, sizeof(*h));
    if (len < 72 || be32(buf) != QCOW2_MAGIC)
        return fail(err, errlen, -EINVAL, "not a qcow2 image (no QFI\\xfb magic)");
    h->version = be32(buf + 4);
    if (h->version != 2 && h->version != 3)
        return fail(err, errlen, -ENOTSUP, "qcow2 version %u (vessel reads versions 2 and 3)",
                    h->version);
    uint64_t bf_off = be64(buf + 8);
    uint32_t bf_size = be32(buf + 16);
    h->cluster_bits = be32(buf + 20);
    h->size = be64(buf + 24);
    uint32_t crypt = be32(buf + 32);
    h->l1_size = be32(buf + 36);
    h->l1_offset = be64(buf + 40);
    h->rt_offset = be64(buf + 48);
    h->rt_clusters = be32(buf + 56);
    h->nb_snapshots = be32(buf + 60);
    h->snapshots_offset = be64(buf + 64);
    h->refcount_order = 4;
    h->header_length = 72;
    if (h->version == 3) {
        if (len < 104) return fail(err, errlen, -EINVAL, "qcow2 v3 header truncated");
        h->incompat = be64(buf + 72);
        h->compat = be64(buf + 80);
        h->autoclear = be64(buf + 88);
        h->refcount_order = be32(buf + 96);
        h->header_length = be32(buf + 100);
    }
    if (h->cluster_bits < 9 || h->cluster_bits > 21)
        return fail(err, errlen, -EINVAL, "qcow2 cluster_bits %u outside 9..21", h->cluster_bits);
    uint64_t cs = 1ull << h->cluster_bits;
    if (h->version == 3 && (h->header_length < 104 || h->header_length > cs ||
                            h->header_length > len || h->header_length % 8))
        return fail(err, errlen, -EINVAL, "qcow2 header_length %u invalid", h->header_length);
    if (file_size < cs)
        return fail(err, errlen, -EINVAL, "qcow2 image shorter than its first cluster");
    if (crypt) return fail(err, errlen, -ENOTSUP, "encrypted qcow2 images are not supported");
    if (h->incompat & ~INCOMPAT_KNOWN)
        return fail(err, errlen, -ENOTSUP, "qcow2 image has unknown incompatible features 0x%llx",
                    (unsigned long long)(h->incompat & ~INCOMPAT_KNOWN));
    if (h->incompat & INCOMPAT_DATA_FILE)
        return fail(err, errlen, -ENOTSUP, "qcow2 external data files are not supported");
    if (h->incompat & INCOMPAT_EXTL2)
        return fail(err, errlen, -ENOTSUP, "qcow2 extended L2 entries are not supported");
    if (h->header_length > 104) h->compression = buf[104];
    if (h->compression > 1)
        return fail(err, errlen, -ENOTSUP, "qcow2 compression type %u unknown", h->compression);
    if (!!h->compression != !!(h->incompat & INCOMPAT_COMPRESSION))
        return fail(err, errlen, -EINVAL,
                    "qcow2 compression type and its incompatible feature bit disagree");
    if (h->refcount_order > 6)
        return fail(err, errlen, -EINVAL, "qcow2 refcount_order %u > 6", h->refcount_order);
    if (h->size > MAX_VSIZE)
        return fail(err, errlen, -EINVAL, "qcow2 virtual size %llu too large",
                    (unsigned long long)h->size);
    /* L1 must map the whole virtual size ("Cluster mapping"). */
    unsigned l2_bits = h->cluster_bits - 3;
    uint64_t per_l1 = 1ull << (h->cluster_bits + l2_bits);
    uint64_t need = (h->size + per_l1 - 1) / per_l1;
    if ((uint64_t)h->l1_size * 8 > MAX_L1_BYTES)
        return fail(err, errlen, -EINVAL, "qcow2 L1 table of %u entries is too large", h->l1_size);
    if (h->l1_size < need)
        return fail(err, errlen, -EINVAL, "qcow2 L1 table (%u entries) too small for %llu bytes",
                    h->l1_size, (unsigned long long)h->size);
    if (h->l1_size) {
        if (h->l1_offset % cs || h->l1_offset < cs || h->l1_offset > file_size ||
            (uint64_t)h->l1_size * 8 > file_size - h->l1_offset)
            return fail(err, errlen, -EINVAL, "qcow2 L1 table offset 0x%llx invalid",
                        (unsigned long long)h->l1_offset);
    }
    if (!h->rt_clusters || (uint64_t)h->rt_clusters * cs > MAX_RT_BYTES)
        return fail(err, errlen, -EINVAL, "qcow2 refcount table of %u clusters invalid",
                    h->rt_clusters);
    uint64_t rt_bytes = (uint64_t)h->rt_clusters * cs;
    if (h->rt_offset % cs || h->rt_offset < cs || h->rt_offset > file_size ||
        rt_bytes > file_size - h->rt_offset)
        return fail(err, errlen, -EINVAL, "qcow2 refcount table offset 0x%llx invalid",
                    (unsigned long long)h->rt_offset);
    if (h->l1_size && overlaps(h->l1_offset, (uint64_t)h->l1_size * 8, h->rt_offset, rt_bytes))
        return fail(err, errlen, -EINVAL, "qcow2 L1 and refcount tables overlap");
    if (h->nb_snapshots > 65536)
        return fail(err, errlen, -EINVAL, "qcow2 snapshot count %u too large", h->nb_snapshots);
    if (h->nb_snapshots &&
        (h->snapshots_offset % cs || h->snapshots_offset < cs || h->snapshots_offset >= file_size))
        return fail(err, errlen, -EINVAL, "qcow2 snapshot table offset invalid");
    size_t hbytes = len < cs ? len : (size_t)cs;
    if (bf_off) {
        if (bf_size == 0 || bf_size > 1023 || bf_off >= hbytes || bf_size > hbytes - bf_off ||
            bf_off < h->header_length)
            return fail(err, errlen, -EINVAL,
                        "qcow2 backing file name (offset %llu, %u bytes) "
                        "invalid",
                        (unsigned long long)bf_off, bf_size);
        memcpy(h->backing, buf + bf_off, bf_size);
        h->backing[bf_size] = 0;
        if (strlen(h->backing) != bf_size)
            return fail(err, errlen, -EINVAL, "qcow2 backing file name holds a NUL byte");
    }
    /* Header extensions follow the header (v2: at byte 72), 8-byte aligned. */
    size_t p = h->header_length;
    while (true) {
        if (p + 8 > hbytes)
            return fail(err, errlen, -EINVAL, "qcow2 header extensions run past the first cluster");
        uint32_t type = be32(buf + p), elen = be32(buf + p + 4);
        p += 8;
        if (type == EXT_END) break;
        if (elen > hbytes - p)
            return fail(err, errlen, -EINVAL, "qcow2 header extension 0x%x too long", type);
        if (type == EXT_BACKING_FMT) {
            if (elen == 0 || elen >= sizeof(h->backing_fmt))
                return fail(err, errlen, -EINVAL, "qcow2 backing format extension invalid");
            memcpy(h->backing_fmt, buf + p, elen);
            h->backing_fmt[elen] = 0;
            if (strlen(h->backing_fmt) != elen)
                return fail(err, errlen, -EINVAL, "qcow2 backing format holds a NUL byte");
        } else if (type == EXT_BITMAPS) {
            h->has_bitmaps = true;
        } else if (type == EXT_CRYPTO || type == EXT_DATA_FILE) {
            return fail(err, errlen, -ENOTSUP, "qcow2 header extension 0x%x is not supported",
                        type);
        }
        uint64_t padded = ((uint64_t)elen + 7) & ~7ull;
        if (padded > hbytes - p)
            return fail(err, errlen, -EINVAL, "qcow2 header extension 0x%x too long", type);
        p += (size_t)padded;
    }
    if (bf_off && bf_off < p)
        return fail(err, errlen, -EINVAL, "qcow2 backing file name overlaps the extensions");
    return 0;
}

/* ---- file I/O ---- */

static int rd(struct qcow2 *q, void *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(q->fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (n == 0) return -EIO; /* past the end of the file */
        done += (size_t)n;
    }
    return 0;
}

static int wr(struct qcow2 *q, const void *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(q->fd, (const char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (n == 0) return -EIO;
        done += (size_t)n;
    }
    return 0;
}

static int sync_file(struct qcow2 *q)
{
    return fdatasync(q->fd) < 0 ? -errno : 0;
}

/* Metadata the image should not hold: log once, refuse further writes. */
static int corrupt(struct qcow2 *q, const char *what, uint64_t v)
{
    if (!q->broken)
        log_error("qcow2 %s: %s (0x%llx); the image needs `vessel disk check`; no more writes",
                  q->path, what, (unsigned long long)v);
    q->broken = true;
    return -EIO;
}

/* ---- iovec helpers ---- */

struct iovcur {
    const struct iovec *iov;
    int cnt, i;
    size_t off;
};

/* The next len bytes of the cursor as at most max segments (max >= the caller's iovcnt). */
static int iov_take(struct iovcur *c, uint64_t len, struct iovec *out, int max)
{
    int n = 0;
    while (len && c->i < c->cnt && n < max) {
        size_t avail = c->iov[c->i].iov_len - c->off;
        size_t take = avail < len ? avail : (size_t)len;
        if (take) out[n++] = (struct iovec){(char *)c->iov[c->i].iov_base + c->off, take};
        c->off += take;
        len -= take;
        if (c->off == c->iov[c->i].iov_len) {
            c->i++;
            c->off = 0;
        }
    }
    return n;
}

static void iov_memset(const struct iovec *v, int n, int byte)
{
    for (int i = 0; i < n; i++)
        memset(v[i].iov_base, byte, v[i].iov_len);
}
static void buf_to_iov(const struct iovec *v, int n, const uint8_t *src)
{
    for (int i = 0; i < n; i++, src += v[i - 1].iov_len)
        memcpy(v[i].iov_base, src, v[i].iov_len);
}
static void iov_to_buf(const struct iovec *v, int n, uint8_t *dst)
{
    for (int i = 0; i < n; i++, dst += v[i - 1].iov_len)
        memcpy(dst, v[i].iov_base, v[i].iov_len);
}

static int preadv_full(int fd, const struct iovec *v, int n, uint64_t off)
{
    /* Short reads: go on from where the kernel stopped (segments are copied, not advanced). */
    struct iovec tmp[n > 0 ? n : 1];
    memcpy(tmp, v, (size_t)n * sizeof(*v));
    int i = 0;
    while (i < n) {
        ssize_t got = preadv(fd, tmp + i, n - i, (off_t)off);
        if (got < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (got == 0) return -EIO;
        off += (uint64_t)got;
        while (i < n && (size_t)got >= tmp[i].iov_len)
            got -= (ssize_t)tmp[i++].iov_len;
        if (i < n) {
            tmp[i].iov_base = (char *)tmp[i].iov_base + got;
            tmp[i].iov_len -= (size_t)got;
        }
    }
    return 0;
}

static int pwritev_full(int fd, const struct iovec *v, int n, uint64_t off)
{
    struct iovec tmp[n > 0 ? n : 1];
    memcpy(tmp, v, (size_t)n * sizeof(*v));
    int i = 0;
    while (i < n) {
        ssize_t put = pwritev(fd, tmp + i, n - i, (off_t)off);
        if (put < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (put == 0) return -EIO;
        off += (uint64_t)put;
        while (i < n && (size_t)put >= tmp[i].iov_len)
            put -= (ssize_t)tmp[i++].iov_len;
        if (i < n) {
            tmp[i].iov_base = (char *)tmp[i].iov_base + put;
            tmp[i].iov_len -= (size_t)put;
        }
    }
    return 0;
}

/* ---- refcounts ("Host cluster management") ---- */

static uint64_t rc_max(const struct qcow2 *q)
{
    return q->rc_bits == 64 ? UINT64_MAX : (1ull << q->rc_bits) - 1;
}

static uint64_t rb_get(const struct qcow2 *q, const uint8_t *b, uint64_t i)
{
    switch (q->rc_bits) {
    case 1:
    case 2:
    case 4: {
        uint64_t bit = i * q->rc_bits;
        return (b[bit / 8] >> (bit % 8)) & ((1u << q->rc_bits) - 1);
    }
    case 8: return b[i];
    case 16: return (uint64_t)b[2 * i] << 8 | b[2 * i + 1];
    case 32: return be32(b + 4 * i);
    default: return be64(b + 8 * i);
    }
}

/* Set entry i; at and n: the bytes to write back. */
static void rb_set(const struct qcow2 *q, uint8_t *b, uint64_t i, uint64_t v, uint64_t *at,
                   size_t *n)
{
    switch (q->rc_bits) {
    case 1:
    case 2:
    case 4: {
        uint64_t bit = i * q->rc_bits;
        unsigned m = ((1u << q->rc_bits) - 1) << (bit % 8);
        b[bit / 8] = (uint8_t)((b[bit / 8] & ~m) | ((unsigned)v << (bit % 8) & m));
        *at = bit / 8;
        *n = 1;
        return;
    }
    case 8:
        b[i] = (uint8_t)v;
        *at = i, *n = 1;
        return;
    case 16:
        b[2 * i] = (uint8_t)(v >> 8);
        b[2 * i + 1] = (uint8_t)v;
        *at = 2 * i, *n = 2;
        return;
    case 32:
        put32(b + 4 * i, (uint32_t)v);
        *at = 4 * i, *n = 4;
        return;
    default: put64(b + 8 * i, v); *at = 8 * i, *n = 8;
    }
}

/* A table cluster at off through a cache (read on a miss; a dirty victim is written first,
 * behind an fdatasync: what it points to must be on disk before it). */
static int cache_get(struct qcow2 *q, struct tcache *c, unsigned n, uint64_t off, uint8_t **out)
{
    struct tcache *victim = &c[0];
    for (unsigned i = 0; i < n; i++) {
        if (c[i].off == off) {
            c[i].used = ++q->clock;
            *out = c[i].data;
            return 0;
        }
        if (c[i].used < victim->used) victim = &c[i];
    }
    if (victim->dirty) {
        int r = sync_file(q);
        if (!r) r = wr(q, victim->data, q->cs, victim->off);
        if (r) return r;
        victim->dirty = false;
    }
    victim->off = 0;
    int r = rd(q, victim->data, q->cs, off);
    if (r) return r;
    victim->off = off;
    victim->used = ++q->clock;
    *out = victim->data;
    return 0;
}

/* Refcount block offset for cluster index cl: 0 if none (refcount 0). */
static int rb_offset(struct qcow2 *q, uint64_t cl, uint64_t *off)
{
    uint64_t bi = cl / q->rb_entries;
    *off = 0;
    if (bi >= q->rt_entries) return 0;
    uint64_t e = q->rt[bi] & RT_OFFSET_MASK;
    if (!e) return 0;
    if (e % q->cs) return corrupt(q, "refcount block offset not cluster aligned", e);
    *off = e;
    return 0;
}

static int rc_get(struct qcow2 *q, uint64_t cl, uint64_t *v)
{
    uint64_t off;
    int r = rb_offset(q, cl, &off);
    *v = 0;
    if (r || !off) return r;
    uint8_t *b;
    r = cache_get(q, q->rbc, RB_CACHE, off, &b);
    if (r) return r;
    *v = rb_get(q, b, cl % q->rb_entries);
    return 0;
}

static int rc_set(struct qcow2 *q, uint64_t cl, uint64_t v, uint64_t lo, uint64_t hi);

/* "Refcount table" growth: a bigger table at the end of the file, with refcount blocks for
 * itself where needed; on disk (synced) before the header points at it; then the old table's
 * clusters are freed. */
static int grow_rt(struct qcow2 *q, uint64_t need)
{
    uint64_t per = q->cs / 8;
    uint64_t want = q->rt_entries * 2 > need ? q->rt_entries * 2 : need;
    want = (want + per - 1) / per * per;
    if (want * 8 > MAX_RT_BYTES) {
        if (need * 8 > MAX_RT_BYTES) return corrupt(q, "refcount table would exceed 8 MiB", need);
        want = MAX_RT_BYTES / 8 / per * per;
    }
    uint64_t k = want / per, start = q->file_end, m = 0;
    /* Blocks the new clusters need that do not exist yet; placed after the table. */
    for (;;) {
        uint64_t mm = 0, first = start / q->rb_entries, last = (start + k + m - 1) / q->rb_entries;
        for (uint64_t bi = first; bi <= last; bi++)
            if (bi >= q->rt_entries || !(q->rt[bi] & RT_OFFSET_MASK)) mm++;
        if (mm == m) break;
        m = mm;
    }
    if ((start + k + m - 1) / q->rb_entries >= want)
        return corrupt(q, "refcount table growth does not converge", start);
    uint64_t *nt = calloc(want, 8);
    uint8_t *blocks = m ? calloc(m, q->cs) : NULL;
    if (!nt || (m && !blocks)) {
        free(nt);
        free(blocks);
        return -ENOMEM;
    }
    memcpy(nt, q->rt, q->rt_entries * 8);
    uint64_t j = 0, first = start / q->rb_entries, last = (start + k + m - 1) / q->rb_entries;
    uint64_t blk_of[64 + 1]; /* m is tiny: a handful of blocks cover any 8 MiB table */
    if (m > 64) {
        free(nt);
        free(blocks);
        return corrupt(q, "refcount table growth needs too many blocks", m);
    }
    for (uint64_t bi = first; bi <= last; bi++)
        if (bi >= q->rt_entries || !(q->rt[bi] & RT_OFFSET_MASK)) {
            nt[bi] = (start + k + j) * q->cs;
            blk_of[j++] = bi;
        }
    int r = 0;
    /* Refcounts of the new clusters: in the new blocks, or in blocks that exist already. */
    for (uint64_t cl = start; cl < start + k + m && !r; cl++) {
        uint64_t bi = cl / q->rb_entries;
        bool fresh = false;
        for (uint64_t x = 0; x < m; x++)
            if (blk_of[x] == bi) {
                uint64_t at;
                size_t n;
                rb_set(q, blocks + x * q->cs, cl % q->rb_entries, 1, &at, &n);
                fresh = true;
            }
        if (!fresh) r = rc_set(q, cl, 1, start, start + k + m);
    }
    for (uint64_t x = 0; x < m && !r; x++)
        r = wr(q, blocks + x * q->cs, q->cs, (start + k + x) * q->cs);
    uint8_t *raw = NULL;
    if (!r) {
        raw = malloc(want * 8);
        if (!raw) r = -ENOMEM;
    }
    if (!r) {
        for (uint64_t i = 0; i < want; i++)
            put64(raw + 8 * i, nt[i]);
        r = wr(q, raw, want * 8, start * q->cs);
    }
    free(raw);
    free(blocks);
    if (!r) r = sync_file(q);
    uint8_t hb[12];
    put64(hb, start * q->cs);
    put32(hb + 8, (uint32_t)k);
    if (!r) r = wr(q, hb, 12, 48);
    if (!r) r = sync_file(q);
    if (r) {
        free(nt);
        return r;
    }
    uint64_t old = q->h.rt_offset, oldk = q->h.rt_clusters;
    free(q->rt);
    q->rt = nt;
    q->rt_entries = want;
    q->h.rt_offset = start * q->cs;
    q->h.rt_clusters = (uint32_t)k;
    q->file_end = start + k + m;
    for (uint64_t i = 0; i < oldk && !r; i++)
        r = rc_set(q, old / q->cs + i, 0, 0, 0);
    if (old / q->cs < q->free_hint) q->free_hint = old / q->cs;
    return r;
}

/* Set cluster cl's refcount to v, creating its refcount block (and growing the table) when
 * needed; a new block is placed in the range it describes, never in [lo, hi) (clusters being
 * allocated), so it counts itself. */
static int rc_set(struct qcow2 *q, uint64_t cl, uint64_t v, uint64_t lo, uint64_t hi)
{
    uint64_t bi = cl / q->rb_entries, off;
    int r;
    if (bi >= q->rt_entries) {
        if (!v) return 0;
        if ((r = grow_rt(q, bi + 1))) return r;
    }
    if ((r = rb_offset(q, cl, &off))) return r;
    if (!off) {
        if (!v) return 0;
        uint64_t base = bi * q->rb_entries, nc = base;
        while (nc < base + q->rb_entries && (nc == cl || (nc >= lo && nc < hi)))
            nc++;
        if (nc == base + q->rb_entries) return corrupt(q, "no room for a refcount block", cl);
        struct tcache *c = &q->rbc[0];
        for (unsigned i = 1; i < RB_CACHE; i++)
            if (q->rbc[i].used < c->used) c = &q->rbc[i];
        memset(c->data, 0, q->cs);
        uint64_t at;
        size_t n;
        rb_set(q, c->data, nc - base, 1, &at, &n);
        c->off = 0;
        /* The block, synced, before the table entry that makes it count. */
        if ((r = wr(q, c->data, q->cs, nc * q->cs)) || (r = sync_file(q))) return r;
        uint8_t e[8];
        put64(e, nc * q->cs);
        if ((r = wr(q, e, 8, q->h.rt_offset + bi * 8))) return r;
        q->rt[bi] = nc * q->cs;
        c->off = nc * q->cs;
        c->used = ++q->clock;
        if (nc + 1 > q->file_end) q->file_end = nc + 1;
        off = c->off;
    }
    uint8_t *b;
    if ((r = cache_get(q, q->rbc, RB_CACHE, off, &b))) return r;
    uint64_t at;
    size_t n;
    rb_set(q, b, cl % q->rb_entries, v, &at, &n);
    return wr(q, b + at, n, off + at); /* write-through: refcounts are never behind */
}

/* n clusters (n > 1: contiguous, at the end of the file). */
static int alloc_clusters(struct qcow2 *q, uint64_t n, uint64_t *first)
{
    uint64_t c = q->file_end;
    if (n == 1) {
        for (uint64_t i = q->free_hint; i < q->file_end; i++) {
            uint64_t v;
            int r = rc_get(q, i, &v);
            if (r) return r;
            if (!v) {
                c = i;
                break;
            }
        }
        q->free_hint = c + 1;
    }
    if (c + n > q->file_end) q->file_end = c + n;
    if ((c + n) > (MAX_VSIZE >> q->cb)) return corrupt(q, "image file would be too large", c);
    for (uint64_t i = 0; i < n; i++) {
        int r = rc_set(q, c + i, 1, c, c + n);
        if (r) return r;
    }
    *first = c;
    return 0;
}

/* Give back one reference to each cluster of [off, off+len) once the tables that dropped it
 * are on disk (flush). */
static int free_later(struct qcow2 *q, uint64_t off, uint64_t len)
{
    for (uint64_t cl = off >> q->cb; cl <= (off + len - 1) >> q->cb; cl++) {
        if (q->npend == q->cappend) {
            size_t nc = q->cappend ? q->cappend * 2 : 64;
            uint64_t *p = realloc(q->pend, nc * sizeof(*p));
            if (!p) return -ENOMEM;
            q->pend = p;
            q->cappend = nc;
        }
        q->pend[q->npend++] = cl;
    }
    return 0;
}

/* ---- cluster mapping ("Cluster mapping", "Compressed Clusters Descriptor") ---- */

/* A table of the cache without reading one: NULL when it is not there (its LRU stamp is
 * refreshed when it is). */
static uint8_t *cache_peek(struct qcow2 *q, struct tcache *c, unsigned n, uint64_t off)
{
    for (unsigned i = 0; i < n; i++)
        if (c[i].off == off) {
            c[i].used = ++q->clock;
            return c[i].data;
        }
    return NULL;
}

/* The L2 table for l1 index l1i (*t NULL: none). cached: only from the cache, -EWOULDBLOCK
 * when it would have to be read (qcow2_map_cached does no I/O). */
static int l2_table_in(struct qcow2 *q, uint64_t l1i, uint8_t **t, bool cached)
{
    *t = NULL;
    if (l1i >= q->h.l1_size) return 0;
    uint64_t off = q->l1[l1i] & OFFSET_MASK;
    if (!off) return 0;
    if (off % q->cs) return corrupt(q, "L2 table offset not cluster aligned", off);
    if (cached) return (*t = cache_peek(q, q->l2c, q->nl2c, off)) ? 0 : -EWOULDBLOCK;
    return cache_get(q, q->l2c, q->nl2c, off, t);
}

static int l2_table(struct qcow2 *q, uint64_t l1i, uint8_t **t)
{
    return l2_table_in(q, l1i, t, false);
}

static void compressed_range(const struct qcow2 *q, uint64_t e, uint64_t *off, uint64_t *len)
{
    unsigned x = 62 - (q->cb - 8);
    *off = e & ((1ull << x) - 1);
    uint64_t nsect = ((e & ~OFLAG_COPIED & ~OFLAG_COMPRESSED) >> x) + 1;
    *len = nsect * 512 - (*off & 511);
}

/* The compressed cluster of entry e into q->dbuf. */
static int read_compressed(struct qcow2 *q, uint64_t e)
{
    uint64_t off, len;
    compressed_range(q, e, &off, &len);
    if (len > 2 * q->cs) return corrupt(q, "compressed cluster too long", e);
    /* The last sectors may lie past the end of the file: read what there is. */
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(q->fd, q->zin + got, len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        if (n == 0) break;
        got += (size_t)n;
    }
    if (!got) return corrupt(q, "compressed cluster past the end of the file", off);
    if (q->h.compression == 0) {
        /* deflate, raw (no zlib header), 4 KiB window upwards: windowBits -12..-15 */
        z_stream s = {0};
        if (inflateInit2(&s, -15) != Z_OK) return -ENOMEM;
        s.next_in = q->zin;
        s.avail_in = (uInt)got;
        s.next_out = q->dbuf;
        s.avail_out = (uInt)q->cs;
        int zr = inflate(&s, Z_FINISH);
        bool ok = (zr == Z_STREAM_END || zr == Z_BUF_ERROR || zr == Z_OK) && s.avail_out == 0;
        inflateEnd(&s);
        if (!ok) return corrupt(q, "compressed cluster does not inflate", off);
        return 0;
    }
    if (!q->zd && !(q->zd = ZSTD_createDCtx())) return -ENOMEM;
    ZSTD_DCtx_reset(q->zd, ZSTD_reset_session_only);
    ZSTD_inBuffer in = {q->zin, got, 0};
    ZSTD_outBuffer o = {q->dbuf, q->cs, 0};
    /* The input is padded to whole sectors: stop once the cluster is complete. */
    while (o.pos < o.size) {
        size_t before = o.pos, zr = ZSTD_decompressStream(q->zd, &o, &in);
        if (ZSTD_isError(zr)) return corrupt(q, "compressed cluster does not decompress", off);
        if (zr == 0 || (o.pos == before && in.pos == in.size)) break;
    }
    if (o.pos != o.size) return corrupt(q, "compressed cluster decompresses short", off);
    return 0;
}

/* The L2 entry for guest offset off (0 when not mapped); cached as l2_table_in. */
static int l2_entry_in(struct qcow2 *q, uint64_t off, uint64_t *e, bool cached)
{
    uint8_t *t;
    uint64_t cl = off >> q->cb;
    int r = l2_table_in(q, cl >> q->l2_bits, &t, cached);
    *e = 0;
    if (r || !t) return r;
    *e = be64(t + 8 * (cl & (q->l2_entries - 1)));
    if (!(*e & OFLAG_COMPRESSED)) {
        uint64_t host = *e & OFFSET_MASK;
        if (host % q->cs) return corrupt(q, "data cluster offset not cluster aligned", host);
        if (host && host < q->cs) return corrupt(q, "data cluster in the header", host);
    } else if (q->h.version == 3 && (*e & OFLAG_COPIED)) {
        return corrupt(q, "compressed cluster with the copied flag", *e);
    }
    return 0;
}

static int l2_entry(struct qcow2 *q, uint64_t off, uint64_t *e)
{
    return l2_entry_in(q, off, e, false);
}

static int node_readv(struct qcow2 *q, uint64_t off, const struct iovec *v, int n, uint64_t len);

/* From guest offset off (at most len bytes): how far the data lies in clusters the image
 * holds itself, one after the other in the file (for a write: also only this image's, the
 * copied flag), so that one preadv/pwritev does it all. *run 0: the first cluster does not.
 * cached: L2 tables only from the cache (-EWOULDBLOCK for one that is not). */
static int mapped_run_in(struct qcow2 *q, uint64_t off, uint64_t len, bool write, uint64_t *host,
                         uint64_t *run, bool cached)
{
    *run = 0;
    uint64_t expect = 0;
    while (*run < len) {
        uint64_t e;
        int r = l2_entry_in(q, off + *run, &e, cached);
        if (r) return r;
        uint64_t h = e & OFFSET_MASK;
        bool ok = h && !(e & OFLAG_COMPRESSED) && !(q->h.version == 3 && (e & OFLAG_ZERO)) &&
                  (!write || (e & OFLAG_COPIED));
        uint64_t in = (off + *run) & (q->cs - 1);
        if (!ok || (*run && h != expect)) break;
        if (!*run) *host = h + in;
        expect = h + q->cs;
        uint64_t step = q->cs - in;
        *run += step < len - *run ? step : len - *run;
    }
    return 0;
}

static int mapped_run(struct qcow2 *q, uint64_t off, uint64_t len, bool write, uint64_t *host,
                      uint64_t *run)
{
    return mapped_run_in(q, off, len, write, host, run, false);
}

/* Read [off, off+len) of the image below q (zeroes where there is none or past its end). */
static int below_readv(struct qcow2 *q, uint64_t off, const struct iovec *v, int n, uint64_t len)
{
    if (!q->backing) {
        iov_memset(v, n, 0);
        return 0;
    }
    struct qcow2 *b = q->backing;
    uint64_t in = off >= b->size ? 0 : (b->size - off < len ? b->size - off : len);
    if (in == len) return node_readv(b, off, v, n, len);
    struct iovcur c = {v, n, 0, 0};
    struct iovec part[n];
    int k = iov_take(&c, in, part, n);
    int r = in ? node_readv(b, off, part, k, in) : 0;
    if (r) return r;
    k = iov_take(&c, len - in, part, n);
    iov_memset(part, k, 0);
    return 0;
}

/* One cluster's worth (or less) of guest data, per its entry. */
static int read_piece(struct qcow2 *q, uint64_t off, const struct iovec *v, int n, uint64_t len)
{
    uint64_t e;
    int r = l2_entry(q, off, &e);
    if (r) return r;
    uint64_t in = off & (q->cs - 1);
    if (e & OFLAG_COMPRESSED) {
        if ((r = read_compressed(q, e))) return r;
        buf_to_iov(v, n, q->dbuf + in);
        return 0;
    }
    if (e & OFLAG_ZERO && q->h.version == 3) {
        iov_memset(v, n, 0);
        return 0;
    }
    uint64_t host = e & OFFSET_MASK;
    if (!host) return below_readv(q, off, v, n, len);
    return preadv_full(q->fd, v, n, host + in);
}

static int node_readv(struct qcow2 *q, uint64_t off, const struct iovec *v, int n, uint64_t len)
{
    if (q->raw) {
        /* A raw backing file may end mid-way: zeroes past its end. */
        struct iovcur c = {v, n, 0, 0};
        struct iovec part[n > 0 ? n : 1];
        uint64_t in = off >= q->size ? 0 : (q->size - off < len ? q->size - off : len);
        int k = iov_take(&c, in, part, n);
        int r = in ? preadv_full(q->fd, part, k, off) : 0;
        if (r) return r;
        k = iov_take(&c, len - in, part, n);
        iov_memset(part, k, 0);
        return 0;
    }
    struct iovcur c = {v, n, 0, 0};
    struct iovec part[n > 0 ? n : 1];
    while (len) {
        uint64_t host, run;
        int r = mapped_run(q, off, len, false, &host, &run);
        if (r) return r;
        if (run) { /* clusters that follow each other in the file: one read */
            int k = iov_take(&c, run, part, n);
            if ((r = preadv_full(q->fd, part, k, host))) return r;
            off += run;
            len -= run;
            continue;
        }
        uint64_t chunk = q->cs - (off & (q->cs - 1));
        if (chunk > len) chunk = len;
        int k = iov_take(&c, chunk, part, n);
        if ((r = read_piece(q, off, part, k, chunk))) return r;
        off += chunk;
        len -= chunk;
    }
    return 0;
}

int qcow2_readv(struct qcow2 *q, uint64_t off, const struct iovec *iov, int iovcnt, uint64_t len)
{
    if (off > q->size || len > q->size - off || iovcnt < 0 || iovcnt > IOV_MAX) return -EINVAL;
    return node_readv(q, off, iov, iovcnt, len);
}

/* The L2 table for l1 index l1i, made if missing (a new zeroed table: refcount first, the
 * table and the L1 entry are written at the next flush). */
/* A cache slot for a table that is not read from disk (written back first if dirty). */
static int l2_slot(struct qcow2 *q, uint64_t off, struct tcache **out)
{
    struct tcache *victim = &q->l2c[0];
    for (unsigned i = 1; i < q->nl2c; i++)
        if (q->l2c[i].used < victim->used) victim = &q->l2c[i];
    if (victim->dirty) {
        int r = sync_file(q);
        if (!r) r = wr(q, victim->data, q->cs, victim->off);
        if (r) return r;
        victim->dirty = false;
    }
    victim->off = off;
    victim->dirty = true;
    victim->used = ++q->clock;
    *out = victim;
    return 0;
}

/* The L2 table for l1 index l1i, ready to change: made if missing (a zeroed table), copied
 * if an internal snapshot shares it (L1 entry without the copied flag, "Cluster mapping").
 * The new table's refcount is written first; the table and the L1 entry at the next flush,
 * and the shared table's reference is given back after that. */
static int l2_for_write(struct qcow2 *q, uint64_t l1i, uint8_t **t)
{
    int r = l2_table(q, l1i, t);
    if (r || (*t && (q->l1[l1i] & OFLAG_COPIED))) return r;
    uint64_t old = *t ? q->l1[l1i] & OFFSET_MASK : 0;
    uint8_t *copy = NULL;
    if (old) {
        /* The data clusters it maps are shared too (their refcount counts every L1 that
         * reaches them): the copy's entries lose the copied flag, and a write copies them. */
        if (!(copy = malloc(q->cs))) return -ENOMEM;
        for (uint64_t i = 0; i < q->l2_entries; i++)
            put64(copy + 8 * i, be64(*t + 8 * i) & ~OFLAG_COPIED);
    }
    uint64_t cl;
    struct tcache *slot;
    if ((r = alloc_clusters(q, 1, &cl)) || (r = l2_slot(q, cl << q->cb, &slot))) {
        free(copy);
        return r;
    }
    if (copy)
        memcpy(slot->data, copy, q->cs);
    else
        memset(slot->data, 0, q->cs);
    free(copy);
    q->l1[l1i] = (cl << q->cb) | OFLAG_COPIED;
    q->l1_dirty = true;
    *t = slot->data;
    return old ? free_later(q, old, q->cs) : 0;
}

static void set_entry(struct qcow2 *q, uint8_t *t, uint64_t cl, uint64_t e)
{
    put64(t + 8 * (cl & (q->l2_entries - 1)), e);
    struct tcache *c = NULL;
    for (unsigned i = 0; i < q->nl2c; i++)
        if (q->l2c[i].data == t) c = &q->l2c[i];
    if (c) c->dirty = true;
}

/* Guest data about to be written in place over the L1 table, the refcount table or the
 * snapshot table (the header cluster is refused when entries are read): only a corrupted or
 * hostile image maps data there, and writing would let the guest rewrite the image's own
 * metadata (QEMU's "overlap check", the tables that are cheap to check). */
static bool hits_metadata(const struct qcow2 *q, uint64_t host, uint64_t len)
{
    uint64_t snap = 0;
    for (unsigned i = 0; i < q->nsnaps; i++)
        snap += q->snaps[i].len;
    return (q->h.l1_size && overlaps(host, len, q->h.l1_offset, (uint64_t)q->h.l1_size * 8)) ||
           overlaps(host, len, q->h.rt_offset, (uint64_t)q->h.rt_clusters << q->cb) ||
           (snap && overlaps(host, len, q->h.snapshots_offset, snap));
}

/* Drop what an entry points to (after the new entry is set; given back at flush). */
static int release(struct qcow2 *q, uint64_t e)
{
    if (e & OFLAG_COMPRESSED) {
        uint64_t off, len;
        compressed_range(q, e, &off, &len);
        return free_later(q, off & ~511ull, len + (off & 511));
    }
    uint64_t host = e & OFFSET_MASK;
    return host ? free_later(q, host, q->cs) : 0;
}

/* Write one piece inside one cluster (data NULL: zeroes). */
static int write_piece(struct qcow2 *q, uint64_t off, const struct iovec *v, int n, uint64_t len)
{
    uint64_t cl = off >> q->cb, in = off & (q->cs - 1);
    uint8_t *t;
    int r = l2_for_write(q, cl >> q->l2_bits, &t);
    if (r) return r;
    uint64_t e;
    if ((r = l2_entry(q, off, &e))) return r;
    uint64_t host = e & OFFSET_MASK;
    bool plain = !(e & OFLAG_COMPRESSED) && !(e & OFLAG_ZERO);
    if (plain && host && (e & OFLAG_COPIED)) {
        if (hits_metadata(q, host, q->cs))
            return corrupt(q, "a data cluster lies on the image's own tables", host);
        return pwritev_full(q->fd, v, n, host + in);
    }
    /* A new cluster: the old contents around the piece, then the piece. */
    uint64_t nc;
    if ((r = alloc_clusters(q, 1, &nc))) return r;
    uint64_t gbase = off - in;
    if (len == q->cs) {
        r = pwritev_full(q->fd, v, n, nc << q->cb);
    } else {
        uint64_t have = q->size - gbase < q->cs ? q->size - gbase : q->cs;
        struct iovec whole = {q->cbuf, (size_t)have};
        memset(q->cbuf, 0, q->cs);
        r = read_piece(q, gbase, &whole, 1, have);
        if (!r) {
            iov_to_buf(v, n, q->cbuf + in);
            r = wr(q, q->cbuf, q->cs, nc << q->cb);
        }
    }
    if (r) return r;
    /* l2_for_write's table may have left the cache while reading the old contents. */
    if ((r = l2_for_write(q, cl >> q->l2_bits, &t))) return r;
    set_entry(q, t, cl, (nc << q->cb) | OFLAG_COPIED);
    return release(q, e);
}

/* Clusters freed since the last flush stay allocated until it: a guest rewriting and
 * discarding the same range without ever flushing would grow the file without bound, so a
 * long list is written back (a flush the guest did not ask for: harmless). */
static int reap_pending(struct qcow2 *q)
{
    return q->npend >= PEND_FLUSH ? qcow2_flush(q) : 0;
}

static int map_in(struct qcow2 *q, uint64_t off, uint64_t len, bool write, uint64_t *host,
                  bool cached)
{
    if (off > q->size || len > q->size - off || len == 0) return -EINVAL;
    if (q->broken || q->raw || (write && q->readonly)) return 0;
    uint64_t run;
    int r = mapped_run_in(q, off, len, write, host, &run, cached);
    if (r) return r;
    if (run != len) return 0;
    return write && hits_metadata(q, *host, len) ? 0 : 1; /* qcow2_writev says why */
}

int qcow2_map(struct qcow2 *q, uint64_t off, uint64_t len, bool write, uint64_t *host)
{
    return map_in(q, off, len, write, host, false);
}

int qcow2_map_cached(struct qcow2 *q, uint64_t off, uint64_t len, bool write, uint64_t *host)
{
    int r = map_in(q, off, len, write, host, true);
    return r == 1 ? 1 : 0; /* a miss or a bad entry: qcow2_map (on the image's thread) */
}

int qcow2_writev(struct qcow2 *q, uint64_t off, const struct iovec *iov, int iovcnt, uint64_t len)
{
    if (q->readonly || q->raw) return -EROFS;
    if (off > q->size || len > q->size - off || iovcnt < 0 || iovcnt > IOV_MAX) return -EINVAL;
    if (q->broken) return -EIO;
    struct iovcur c = {iov, iovcnt, 0, 0};
    struct iovec part[iovcnt > 0 ? iovcnt : 1];
    while (len) {
        uint64_t host, run;
        int r = mapped_run(q, off, len, true, &host, &run);
        if (r) return r;
        if (run) { /* in place, one write for clusters that follow each other */
            if (hits_metadata(q, host, run))
                return corrupt(q, "a data cluster lies on the image's own tables", host);
            int k = iov_take(&c, run, part, iovcnt);
            if ((r = pwritev_full(q->fd, part, k, host))) return r;
            off += run;
            len -= run;
            continue;
        }
        uint64_t chunk = q->cs - (off & (q->cs - 1));
        if (chunk > len) chunk = len;
        int k = iov_take(&c, chunk, part, iovcnt);
        if ((r = write_piece(q, off, part, k, chunk))) return r;
        off += chunk;
        len -= chunk;
    }
    return reap_pending(q);
}

int qcow2_zero(struct qcow2 *q, uint64_t off, uint64_t len, bool discard)
{
    if (q->readonly || q->raw) return -EROFS;
    if (off > q->size || len > q->size - off) return -EINVAL;
    if (q->broken) return -EIO;
    while (len) {
        uint64_t in = off & (q->cs - 1), chunk = q->cs - in;
        if (chunk > len) chunk = len;
        uint64_t cl = off >> q->cb, e;
        int r = l2_entry(q, off, &e);
        if (r) return r;
        bool reads_zero = (e & OFLAG_ZERO && !(e & OFLAG_COMPRESSED)) ||
                          (!(e & OFLAG_COMPRESSED) && !(e & OFFSET_MASK) && !q->backing);
        /* A whole cluster (or the tail of the last one): a zero cluster, its data released. */
        bool whole = in == 0 && (chunk == q->cs || off + chunk == q->size);
        if (reads_zero) {
            /* nothing to do */
        } else if (whole) {
            uint8_t *t;
            if ((r = l2_for_write(q, cl >> q->l2_bits, &t))) return r;
            set_entry(q, t, cl, discard && !q->backing ? 0 : OFLAG_ZERO);
            if ((r = release(q, e))) return r;
        } else if (!discard) {
            /* Zeroes written into the cluster (at most one cluster: a static buffer would do,
             * but cbuf is the COW staging buffer, so use dbuf). */
            memset(q->dbuf, 0, chunk);
            struct iovec z = {q->dbuf, (size_t)chunk};
            if ((r = write_piece(q, off, &z, 1, chunk))) return r;
        }
        off += chunk;
        len -= chunk;
    }
    return reap_pending(q);
}

static int rc_add(struct qcow2 *q, uint64_t cl, int delta);

/* "Compressed Clusters Descriptor": deflate (raw, 4 KiB window as QEMU writes it), packed
 * into host clusters byte after byte, each host cluster counted once per compressed cluster
 * in it. A compressed cluster never crosses into the next host cluster here. */
int qcow2_write_compressed(struct qcow2 *q, uint64_t off, const uint8_t *buf)
{
    if (q->readonly || q->raw) return -EROFS;
    if (off % q->cs || off >= q->size) return -EINVAL;
    if (q->broken) return -EIO;
    uint64_t e;
    int r = l2_entry(q, off, &e);
    if (r) return r;
    if (e) return -EEXIST; /* for new images (convert): the cluster must be unallocated */
    z_stream z = {0};
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    z.next_in = (Bytef *)buf;
    z.avail_in = (uInt)q->cs;
    z.next_out = q->zin;
    z.avail_out = (uInt)q->cs;
    int zr = deflate(&z, Z_FINISH);
    uint64_t clen = z.total_out;
    deflateEnd(&z);
    if (zr != Z_STREAM_END || clen >= q->cs - 512) { /* does not pay: a plain cluster */
        struct iovec v = {(void *)buf, (size_t)(q->size - off < q->cs ? q->size - off : q->cs)};
        return qcow2_writev(q, off, &v, 1, v.iov_len);
    }
    uint64_t in = q->cpos & (q->cs - 1);
    if (!q->cpos || !in || in + clen > q->cs) {
        uint64_t c;
        if ((r = alloc_clusters(q, 1, &c))) return r;
        q->cpos = c << q->cb;
    } else if ((r = rc_add(q, q->cpos >> q->cb, +1))) {
        return r;
    }
    uint64_t at = q->cpos;
    if ((r = wr(q, q->zin, clen, at))) return r;
    uint64_t nsect = ((at + clen - 1) >> 9) - (at >> 9);
    uint8_t *t;
    if ((r = l2_for_write(q, off >> q->cb >> q->l2_bits, &t))) return r;
    set_entry(q, t, off >> q->cb, OFLAG_COMPRESSED | nsect << (62 - (q->cb - 8)) | at);
    q->cpos = at + clen;
    return 0;
}

/* "never lose a flushed write": data and refcounts, then L2 tables, then L1, each synced;
 * then the references released since the last flush. */
int qcow2_flush(struct qcow2 *q)
{
    if (q->readonly || q->raw) return 0;
    int r = sync_file(q);
    if (r) return r;
    bool l2 = false;
    for (unsigned i = 0; i < q->nl2c; i++)
        if (q->l2c[i].dirty) {
            if ((r = wr(q, q->l2c[i].data, q->cs, q->l2c[i].off))) return r;
            q->l2c[i].dirty = false;
            l2 = true;
        }
    if (l2 && (r = sync_file(q))) return r;
    if (q->l1_dirty) {
        size_t bytes = (size_t)q->h.l1_size * 8;
        uint8_t *b = malloc(bytes ? bytes : 1);
        if (!b) return -ENOMEM;
        for (uint32_t i = 0; i < q->h.l1_size; i++)
            put64(b + 8 * i, q->l1[i]);
        r = wr(q, b, bytes, q->h.l1_offset);
        free(b);
        if (r || (r = sync_file(q))) return r;
        q->l1_dirty = false;
    }
    if (q->npend) {
        for (size_t i = 0; i < q->npend; i++) {
            uint64_t v;
            if ((r = rc_get(q, q->pend[i], &v))) return r;
            if (!v) return corrupt(q, "freeing a cluster whose refcount is 0", q->pend[i]);
            if ((r = rc_set(q, q->pend[i], v - 1, 0, 0))) return r;
            if (v == 1 && q->pend[i] < q->free_hint) q->free_hint = q->pend[i];
        }
        q->npend = 0;
        r = sync_file(q);
    }
    return r;
}

/* ---- open / close ---- */

static int lock_file(int fd, bool readonly, const char *path, char *err, size_t errlen)
{
    struct flock fl = {.l_type = readonly ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_OFD_SETLK, &fl) == 0) return 0;
    if (errno == EACCES || errno == EAGAIN)
        return fail(err, errlen, -EBUSY, "disk %s is in use by another process (another vessel?)",
                    path);
    return fail(err, errlen, -errno, "disk %s: cannot lock it: %s", path, strerror(errno));
}

static void node_free(struct qcow2 *q)
{
    if (!q) return;
    node_free(q->backing);
    if (q->fd >= 0) close(q->fd);
    for (unsigned i = 0; q->l2c && i < q->nl2c; i++)
        free(q->l2c[i].data);
    for (unsigned i = 0; i < RB_CACHE; i++)
        free(q->rbc[i].data);
    free(q->l2c);
    free(q->l1);
    free(q->rt);
    free(q->pend);
    for (unsigned i = 0; i < q->nsnaps; i++)
        free(q->snaps[i].raw);
    free(q->snaps);
    free(q->cbuf);
    free(q->dbuf);
    free(q->zin);
    ZSTD_freeDCtx(q->zd);
    free(q->path);
    free(q);
}

#define MAX_SNAP_TABLE (64u << 20)

/* "Snapshot table": every entry checked (sizes bounded, inside the file, L1 tables aligned
 * and capped) before anything uses it. */
static int load_snapshots(struct qcow2 *q)
{
    if (!q->h.nb_snapshots) return 0;
    struct stat st;
    if (fstat(q->fd, &st) < 0) return -errno;
    q->snaps = calloc(q->h.nb_snapshots, sizeof(*q->snaps));
    if (!q->snaps) return -ENOMEM;
    uint64_t p = q->h.snapshots_offset, total = 0;
    for (uint32_t i = 0; i < q->h.nb_snapshots; i++) {
        uint8_t e[40];
        int r = rd(q, e, sizeof(e), p);
        if (r) return r;
        uint32_t extra = be32(e + 36), idn = be16n(e + 12), namen = be16n(e + 14);
        /* Entries are padded to 8 bytes, but QEMU does not write the last one's padding. */
        uint64_t used = 40 + (uint64_t)extra + idn + namen, len = (used + 7) & ~7ull;
        struct snap *s = &q->snaps[q->nsnaps];
        s->l1_off = be64(e);
        s->l1_size = be32(e + 8);
        total += len;
        if (extra > 1024 || idn >= sizeof(s->id) || namen >= sizeof(s->name) ||
            total > MAX_SNAP_TABLE || p + used > (uint64_t)st.st_size ||
            (uint64_t)s->l1_size * 8 > MAX_L1_BYTES || s->l1_off % q->cs ||
            s->l1_off > (uint64_t)st.st_size ||
            (uint64_t)s->l1_size * 8 > (uint64_t)st.st_size - s->l1_off)
            return -EINVAL;
        if (!(s->raw = calloc(1, len))) return -ENOMEM;
        s->len = len;
        q->nsnaps++;
        if ((r = rd(q, s->raw, used, p))) return r;
        memcpy(s->id, s->raw + 40 + extra, idn);
        s->id[idn] = 0;
        memcpy(s->name, s->raw + 40 + extra + idn, namen);
        s->name[namen] = 0;
        p += len;
    }
    q->snap_clusters = (total + q->cs - 1) >> q->cb;
    return 0;
}

static bool has_magic(int fd)
{
    uint8_t m[4];
    return pread(fd, m, 4, 0) == 4 && be32(m) == QCOW2_MAGIC;
}

static int open_node(struct qcow2 **out, const char *path, int flags, int raw, int depth, char *err,
                     size_t errlen);

/* Backing file names are relative to the directory of the image naming them ("Header"). */
static int open_backing(struct qcow2 *q, int flags, int depth, char *err, size_t errlen)
{
    char full[PATH_MAX];
    if (q->h.backing[0] == '/') {
        snprintf(full, sizeof(full), "%s", q->h.backing);
    } else {
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", q->path);
        int n = snprintf(full, sizeof(full), "%s/%s", dirname(dir), q->h.backing);
        if (n < 0 || (size_t)n >= sizeof(full))
            return fail(err, errlen, -ENAMETOOLONG, "%s: backing file name too long", q->path);
    }
    int raw = -1; /* probe */
    if (!strcmp(q->h.backing_fmt, "raw"))
        raw = 1;
    else if (!strcmp(q->h.backing_fmt, "qcow2"))
        raw = 0;
    else if (q->h.backing_fmt[0])
        return fail(err, errlen, -ENOTSUP, "%s: backing file format '%s' is not supported", q->path,
                    q->h.backing_fmt);
    char sub[512];
    int r = open_node(&q->backing, full, (flags & QCOW2_NOLOCK) | QCOW2_RDONLY, raw, depth + 1, sub,
                      sizeof(sub));
    if (r == -ELOOP) return fail(err, errlen, r, "%s", sub); /* one line, not 64 */
    if (r) return fail(err, errlen, r, "%s: backing file: %s", q->path, sub);
    return 0;
}

static int open_node(struct qcow2 **out, const char *path, int flags, int raw, int depth, char *err,
                     size_t errlen)
{
    if (depth > QCOW2_MAX_CHAIN)
        return fail(err, errlen, -ELOOP, "backing chain deeper than %d (a loop?) at %s",
                    QCOW2_MAX_CHAIN, path);
    bool ro = flags & QCOW2_RDONLY;
    struct qcow2 *q = calloc(1, sizeof(*q));
    if (!q || !(q->path = strdup(path))) {
        free(q);
        return fail(err, errlen, -ENOMEM, "out of memory");
    }
    q->readonly = ro;
    /* through the VM's file broker once sandboxed (block.h) */
    q->fd = blk_file_open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    int r = 0;
    struct stat st;
    uint8_t *hb = NULL;
    if (q->fd < 0) {
        int e = -q->fd;
        q->fd = -1;
        r = fail(err, errlen, -e, "disk %s: %s", path,
                 e == EXDEV && blk_file_brokered()
                     ? "outside the directories this sandboxed VM may open (docs/security.md)"
                     : strerror(e));
        goto out;
    }
    if (fstat(q->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        r = fail(err, errlen, -EINVAL, "disk %s is not a regular file", path);
        goto out;
    }
    fcntl(q->fd, F_SETFL, fcntl(q->fd, F_GETFL) & ~O_NONBLOCK);
    if (!(flags & QCOW2_NOLOCK) && (r = lock_file(q->fd, ro, path, err, errlen))) goto out;
    if (raw < 0) raw = !has_magic(q->fd);
    q->raw = raw;
    if (raw) {
        q->size = (uint64_t)st.st_size;
        *out = q;
        return 0;
    }
    size_t hlen = st.st_size < HEADER_BUF ? (size_t)st.st_size : HEADER_BUF;
    if (!(hb = malloc(hlen ? hlen : 1))) {
        r = fail(err, errlen, -ENOMEM, "out of memory");
        goto out;
    }
    if ((r = rd(q, hb, hlen, 0))) {
        r = fail(err, errlen, r, "disk %s: cannot read the header", path);
        goto out;
    }
    char why[400];
    if ((r = qcow2_parse_header(hb, hlen, (uint64_t)st.st_size, &q->h, why, sizeof(why)))) {
        r = fail(err, errlen, r, "disk %s: %s", path, why);
        goto out;
    }
    if (!ro && !(flags & QCOW2_CHECKING)) {
        const char *no = NULL;
        if (q->h.incompat & INCOMPAT_DIRTY)
            no = "its dirty bit is set (it was not closed cleanly): run vessel disk check "
                 "--repair first";
        else if (q->h.incompat & INCOMPAT_CORRUPT)
            no = "it is marked corrupt: run vessel disk check --repair first";
        else if (q->h.version < 3)
            no = "it is qcow2 version 2, which vessel only reads (qemu-img amend -o compat=1.1 "
                 "upgrades it)";
        if (no) {
            r = fail(err, errlen, -EROFS, "disk %s cannot be opened for writing: %s", path, no);
            goto out;
        }
    }
    q->cb = q->h.cluster_bits;
    q->cs = 1ull << q->cb;
    q->l2_bits = q->cb - 3;
    q->l2_entries = 1ull << q->l2_bits;
    q->rc_bits = 1u << q->h.refcount_order;
    q->rb_entries = q->cs * 8 / q->rc_bits;
    q->size = q->h.size;
    q->file_end = ((uint64_t)st.st_size + q->cs - 1) >> q->cb;
    /* A fixed L2 cache: 1 MiB of tables (at least 4), whatever the image size. */
    q->nl2c = (unsigned)((1u << 20) >> q->cb);
    if (q->nl2c < 4) q->nl2c = 4;
    q->l1 = calloc(q->h.l1_size ? q->h.l1_size : 1, 8);
    q->rt_entries = (uint64_t)q->h.rt_clusters * q->cs / 8;
    q->rt = calloc(q->rt_entries, 8);
    q->l2c = calloc(q->nl2c, sizeof(*q->l2c));
    q->cbuf = malloc(q->cs);
    q->dbuf = malloc(q->cs);
    q->zin = malloc(2 * q->cs);
    bool ok = q->l1 && q->rt && q->l2c && q->cbuf && q->dbuf && q->zin;
    for (unsigned i = 0; ok && i < q->nl2c; i++)
        ok = (q->l2c[i].data = malloc(q->cs)) != NULL;
    for (unsigned i = 0; ok && i < RB_CACHE; i++)
        ok = (q->rbc[i].data = malloc(q->cs)) != NULL;
    if (!ok) {
        r = fail(err, errlen, -ENOMEM, "disk %s: out of memory", path);
        goto out;
    }
    {
        size_t bytes = (size_t)q->rt_entries * 8;
        uint8_t *b = malloc(bytes);
        if (!b || (r = rd(q, b, bytes, q->h.rt_offset))) {
            free(b);
            r = fail(err, errlen, b ? r : -ENOMEM, "disk %s: cannot read the refcount table", path);
            goto out;
        }
        for (uint64_t i = 0; i < q->rt_entries; i++)
            q->rt[i] = be64(b + 8 * i);
        free(b);
        bytes = (size_t)q->h.l1_size * 8;
        b = malloc(bytes ? bytes : 1);
        if (!b || (bytes && (r = rd(q, b, bytes, q->h.l1_offset)))) {
            free(b);
            r = fail(err, errlen, b ? r : -ENOMEM, "disk %s: cannot read the L1 table", path);
            goto out;
        }
        for (uint32_t i = 0; i < q->h.l1_size; i++)
            q->l1[i] = be64(b + 8 * i);
        free(b);
    }
    /* Autoclear bits name extensions (bitmaps...) that a writer which does not maintain them
     * must invalidate ("Header", autoclear_features). */
    if (!ro && q->h.autoclear) {
        uint8_t z[8] = {0};
        if ((r = wr(q, z, 8, 88)) || (r = sync_file(q))) {
            r = fail(err, errlen, r, "disk %s: cannot update the header", path);
            goto out;
        }
        q->h.autoclear = 0;
    }
    if ((r = load_snapshots(q))) {
        r = fail(err, errlen, r, "disk %s: invalid snapshot table", path);
        goto out;
    }
    if (q->h.backing[0] && !(flags & QCOW2_CHECKING) &&
        (r = open_backing(q, flags, depth, err, errlen)))
        goto out;
    free(hb);
    *out = q;
    return 0;
out:
    free(hb);
    node_free(q);
    return r;
}

int qcow2_open(struct qcow2 **out, const char *path, int flags, bool raw, char *err, size_t errlen)
{
    return open_node(out, path, flags, raw ? 1 : 0, 0, err, errlen);
}

void qcow2_close(struct qcow2 *q)
{
    if (!q) return;
    if (!q->readonly && !q->raw && !q->broken) {
        int r = qcow2_flush(q);
        if (r) log_error("qcow2 %s: flush at close failed: %s", q->path, strerror(-r));
    }
    node_free(q);
}

uint64_t qcow2_size(const struct qcow2 *q)
{
    return q->size;
}
const struct qcow2_header *qcow2_hdr(const struct qcow2 *q)
{
    return q->raw ? NULL : &q->h;
}
const struct qcow2 *qcow2_backing(const struct qcow2 *q)
{
    return q->backing;
}
const char *qcow2_path(const struct qcow2 *q)
{
    return q->path;
}
int qcow2_fd(const struct qcow2 *q)
{
    return q->fd;
}

/* ---- create ---- */

int qcow2_set_backing_name(const char *path, const char *name, char *err, size_t errlen)
{
    size_t nl = strlen(name);
    if (nl == 0 || nl > 1023)
        return fail(err, errlen, -EINVAL, "backing file name of %zu bytes (1 to 1023)", nl);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
    struct stat st;
    size_t len = 0;
    uint8_t *buf = NULL;
    int r = fstat(fd, &st) < 0 ? -errno : 0;
    if (!r) {
        len = st.st_size < (2 << 20) ? (size_t)st.st_size : (size_t)(2 << 20);
        buf = malloc(len ? len : 1);
        r = !buf ? -ENOMEM : pread(fd, buf, len, 0) == (ssize_t)len ? 0 : -EIO;
    }
    struct qcow2_header h;
    char why[300];
    if (!r && qcow2_parse_header(buf, len, (uint64_t)st.st_size, &h, why, sizeof(why)) < 0)
        r = fail(err, errlen, -EINVAL, "%s: %s", path, why);
    else if (r)
        r = fail(err, errlen, r, "%s: %s", path, strerror(-r));
    else if (!h.backing[0])
        r = fail(err, errlen, -EINVAL, "%s has no backing file to rename", path);
    uint64_t at = r ? 0 : be64(buf + 8), cs = 1ull << h.cluster_bits;
    size_t old = r ? 0 : strlen(h.backing);
    if (!r && at + nl > cs)
        r = fail(err, errlen, -ENOSPC, "%s: no room for a %zu-byte backing file name", path, nl);
    if (!r) {
        /* parse checked that [at, at + old) lies after the extensions in the first cluster,
         * and nothing but the header lives there */
        uint8_t nb[1024] = {0}, sz[4];
        memcpy(nb, name, nl);
        put32(sz, (uint32_t)nl);
        size_t w = nl > old ? nl : old;
        if (pwrite(fd, nb, w, (off_t)at) != (ssize_t)w || pwrite(fd, sz, 4, 16) != 4 ||
            fsync(fd) < 0)
            r = fail(err, errlen, -EIO, "%s: writing the header: %s", path, strerror(errno));
    }
    free(buf);
    close(fd);
    return r;
}

int qcow2_create(const char *path, uint64_t size, unsigned cluster_bits, const char *backing,
                 const char *backing_fmt, char *err, size_t errlen)
{
    if (cluster_bits < 9 || cluster_bits > 21)
        return fail(err, errlen, -EINVAL, "cluster size must be 512 bytes to 2 MiB");
    uint64_t cs = 1ull << cluster_bits;
    if (backing) {
        if (strlen(backing) > 1023)
            return fail(err, errlen, -ENAMETOOLONG, "backing file name longer than 1023 bytes");
        if (backing_fmt && strcmp(backing_fmt, "raw") && strcmp(backing_fmt, "qcow2"))
            return fail(err, errlen, -EINVAL, "backing format %s: raw or qcow2", backing_fmt);
        /* Resolved as readers will resolve it: relative to the new image's directory. */
        char full[PATH_MAX], dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", path);
        int n = backing[0] == '/' ? snprintf(full, sizeof(full), "%s", backing)
                                  : snprintf(full, sizeof(full), "%s/%s", dirname(dir), backing);
        if (n < 0 || (size_t)n >= sizeof(full))
            return fail(err, errlen, -ENAMETOOLONG, "backing file name too long");
        struct qcow2 *b;
        char sub[512];
        int raw = backing_fmt ? !strcmp(backing_fmt, "raw") : -1;
        int r = open_node(&b, full, QCOW2_RDONLY, raw, 1, sub, sizeof(sub));
        if (r)
            return fail(err, errlen, r,
                        "backing file %s (relative names are relative to the "
                        "new image's directory): %s",
                        backing, sub);
        if (!backing_fmt) backing_fmt = b->raw ? "raw" : "qcow2";
        if (!size) size = b->size;
        node_free(b);
    }
    if (!size || size % 512 || size > MAX_VSIZE)
        return fail(err, errlen, -EINVAL,
                    "%llu bytes: a disk size must be a non-zero multiple "
                    "of 512 (at most 64 PiB)",
                    (unsigned long long)size);
    uint64_t per_l1 = cs * (cs / 8);
    uint64_t l1_size = (size + per_l1 - 1) / per_l1;
    if (l1_size * 8 > MAX_L1_BYTES)
        return fail(err, errlen, -EFBIG, "%llu bytes is too large for %llu-byte clusters",
                    (unsigned long long)size, (unsigned long long)cs);
    uint64_t l1c = (l1_size * 8 + cs - 1) / cs, rb_entries = cs * 8 / 16, rbc = 1, rtc = 1;
    for (;;) { /* the refcount structures count themselves */
        uint64_t meta = 1 + rtc + rbc + l1c;
        uint64_t nrbc = (meta + rb_entries - 1) / rb_entries, nrtc = (nrbc * 8 + cs - 1) / cs;
        if (nrbc == rbc && nrtc == rtc) break;
        rbc = nrbc;
        rtc = nrtc;
    }
    uint64_t meta = 1 + rtc + rbc + l1c, rt_off = cs, rb_off = rt_off + rtc * cs,
             l1_off = rb_off + rbc * cs;
    size_t hlen = 112, fmtlen = backing ? strlen(backing_fmt) : 0;
    size_t ext = backing ? 8 + ((fmtlen + 7) & ~(size_t)7) : 0;
    size_t name_at = hlen + ext + 8, name_len = backing ? strlen(backing) : 0;
    if (name_at + name_len > cs)
        return fail(err, errlen, -EINVAL, "backing file name too long for %llu-byte clusters",
                    (unsigned long long)cs);
    uint8_t *buf = calloc(1, (size_t)((1 + rtc + rbc) * cs));
    if (!buf) return fail(err, errlen, -ENOMEM, "out of memory");
    uint8_t *h = buf;
    put32(h, QCOW2_MAGIC);
    put32(h + 4, 3);
    if (backing) {
        put64(h + 8, name_at);
        put32(h + 16, (uint32_t)name_len);
        memcpy(h + name_at, backing, name_len);
    }
    put32(h + 20, cluster_bits);
    put64(h + 24, size);
    put32(h + 36, (uint32_t)l1_size);
    put64(h + 40, l1_off);
    put64(h + 48, rt_off);
    put32(h + 56, (uint32_t)rtc);
    put32(h + 96, 4); /* 16-bit refcounts, as QEMU */
    put32(h + 100, (uint32_t)hlen);
    if (backing) {
        put32(h + hlen, EXT_BACKING_FMT);
        put32(h + hlen + 4, (uint32_t)fmtlen);
        memcpy(h + hlen + 8, backing_fmt, fmtlen);
    } /* then the end marker: zeroes already */
    for (uint64_t i = 0; i < rbc; i++)
        put64(buf + rt_off + 8 * i, rb_off + i * cs);
    for (uint64_t cl = 0; cl < meta; cl++) {
        uint8_t *e = buf + rb_off + 2 * cl; /* blocks are contiguous: one array */
        e[0] = 0;
        e[1] = 1;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        free(buf);
        if (e == EEXIST)
            return fail(err, errlen, -e,
                        "%s already exists (vessel disk create never "
                        "overwrites; remove it or pick another name)",
                        path);
        return fail(err, errlen, -e, "cannot create %s: %s", path, strerror(e));
    }
    struct qcow2 tmp = {.fd = fd};
    int r = wr(&tmp, buf, (size_t)((1 + rtc + rbc) * cs), 0);
    if (!r && ftruncate(fd, (off_t)(meta * cs)) < 0) r = -errno;
    if (!r && fsync(fd) < 0) r = -errno;
    close(fd);
    free(buf);
    if (r) {
        unlink(path);
        return fail(err, errlen, r, "cannot write %s: %s", path, strerror(-r));
    }
    return 0;
}

/* ---- check ---- */

static int fix_copied(struct qcow2 *q);

struct checker {
    struct qcow2 *q;
    struct qcow2_check *c;
    FILE *out;
    uint32_t *uses;
    uint64_t n; /* clusters in the file */
    unsigned said;
    uint64_t copied_bad; /* copied flags that disagree with the refcount */
};

static void say(struct checker *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct checker *k, const char *fmt, ...)
{
    if (!k->out) return;
    if (k->said++ == 20) fprintf(k->out, "(further findings not shown)\n");
    if (k->said > 20) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(k->out, fmt, ap);
    va_end(ap);
    fputc('\n', k->out);
}

static void use(struct checker *k, uint64_t off, uint64_t len, const char *what)
{
    if (!len) return;
    uint64_t first = off >> k->q->cb, last = (off + len - 1) >> k->q->cb;
    if (off + len < off || last >= k->n) {
        k->c->errors++;
        say(k, "ERROR %s at 0x%llx lies past the end of the file", what, (unsigned long long)off);
        return;
    }
    for (uint64_t cl = first; cl <= last; cl++)
        if (k->uses[cl] != UINT32_MAX) k->uses[cl]++;
}

/* "Cluster mapping": an active entry's copied flag says whether the cluster's refcount is
 * exactly one (a write goes in place only then). */
static void copied_ok(struct checker *k, uint64_t off, uint64_t e, const char *what)
{
    uint64_t v;
    if (rc_get(k->q, off >> k->q->cb, &v)) return;
    if ((v == 1) != !!(e & OFLAG_COPIED)) {
        k->c->errors++;
        k->copied_bad++;
        say(k, "ERROR %s entry for 0x%llx: copied flag %s, refcount %llu", what,
            (unsigned long long)off, e & OFLAG_COPIED ? "set" : "clear", (unsigned long long)v);
    }
}

static int walk_l1(struct checker *k, const uint64_t *l1, uint64_t n, bool active)
{
    struct qcow2 *q = k->q;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t off = l1[i] & OFFSET_MASK;
        if (!off) continue;
        if (off % q->cs || (off >> q->cb) >= k->n) {
            k->c->errors++;
            say(k, "ERROR L2 table offset 0x%llx invalid", (unsigned long long)off);
            continue;
        }
        use(k, off, q->cs, "L2 table");
        if (active) copied_ok(k, off, l1[i], "L1");
        /* Each L1 table may name an L2 table once: more (a hostile image) would make this
         * walk read the same cluster millions of times. */
        if (k->uses[off >> q->cb] > 1 + q->h.nb_snapshots) {
            k->c->errors++;
            say(k, "ERROR L2 table 0x%llx referenced more often than there are L1 tables",
                (unsigned long long)off);
            continue;
        }
        int r = rd(q, q->cbuf, q->cs, off);
        if (r) return r;
        for (uint64_t j = 0; j < q->l2_entries; j++) {
            uint64_t e = be64(q->cbuf + 8 * j);
            if (e & OFLAG_COMPRESSED) {
                uint64_t co, cl;
                compressed_range(q, e, &co, &cl);
                use(k, co & ~511ull, cl + (co & 511), "compressed cluster");
                if (active) k->c->data++;
                continue;
            }
            uint64_t host = e & OFFSET_MASK;
            if (!host) continue;
            if (host % q->cs) {
                k->c->errors++;
                say(k, "ERROR data cluster offset 0x%llx not aligned", (unsigned long long)host);
                continue;
            }
            use(k, host, q->cs, "data cluster");
            if (active) {
                k->c->data++;
                copied_ok(k, host, e, "L2");
            }
        }
    }
    return 0;
}

static int read_l1(struct qcow2 *q, uint64_t off, uint64_t n, uint64_t **out)
{
    uint8_t *b = malloc(n ? n * 8 : 1);
    uint64_t *l1 = calloc(n ? n : 1, 8);
    int r = b && l1 ? (n ? rd(q, b, n * 8, off) : 0) : -ENOMEM;
    for (uint64_t i = 0; !r && i < n; i++)
        l1[i] = be64(b + 8 * i);
    free(b);
    if (r) {
        free(l1);
        return r;
    }
    *out = l1;
    return 0;
}

/* "Snapshots": the table and each snapshot's L1 table and what it maps. */
static int walk_snapshots(struct checker *k)
{
    struct qcow2 *q = k->q;
    uint64_t bytes = 0, l1_bytes = 0;
    for (unsigned i = 0; i < q->nsnaps; i++)
        bytes += q->snaps[i].len;
    /* the table once (its entries share clusters); load_snapshots checked it */
    use(k, q->h.snapshots_offset, bytes, "snapshot table");
    for (unsigned i = 0; i < q->nsnaps; i++) {
        const struct snap *s = &q->snaps[i];
        l1_bytes += (uint64_t)s->l1_size * 8;
        if (l1_bytes > 4ull * MAX_L1_BYTES) {
            k->c->errors++;
            say(k, "ERROR snapshot L1 tables larger than %u MiB in all: not checked further",
                4 * (MAX_L1_BYTES >> 20));
            return 0;
        }
        use(k, s->l1_off, (uint64_t)s->l1_size * 8, "snapshot L1 table");
        uint64_t *l1;
        int r = read_l1(q, s->l1_off, s->l1_size, &l1);
        if (r) return r;
        r = walk_l1(k, l1, s->l1_size, false);
        free(l1);
        if (r) return r;
    }
    return 0;
}

int qcow2_check(const char *path, bool repair, struct qcow2_check *c, FILE *out, char *err,
                size_t errlen)
{
    memset(c, 0, sizeof(*c));
    struct qcow2 *q;
    int r = open_node(&q, path, (repair ? 0 : QCOW2_RDONLY) | QCOW2_CHECKING, -1, 0, err, errlen);
    if (r) return r;
    if (q->raw) {
        node_free(q);
        return fail(err, errlen, -EINVAL, "%s is a raw image: nothing to check", path);
    }
    if (repair && q->h.has_bitmaps) {
        node_free(q);
        return fail(err, errlen, -ENOTSUP,
                    "%s has persistent bitmaps, which vessel does not "
                    "account for: not repairing (qemu-img check -r leaks)",
                    path);
    }
    struct checker k = {.q = q, .c = c, .out = out};
    struct stat st;
    fstat(q->fd, &st);
    k.n = ((uint64_t)st.st_size + q->cs - 1) >> q->cb;
    c->file_clusters = k.n;
    c->dirty = q->h.incompat & INCOMPAT_DIRTY;
    if (k.n > (64ull << 20) || !(k.uses = calloc(k.n ? k.n : 1, 4))) {
        node_free(q);
        return fail(err, errlen, -ENOMEM, "%s: too many clusters to check", path);
    }
    use(&k, 0, q->cs, "header");
    use(&k, q->h.l1_offset, (uint64_t)q->h.l1_size * 8, "L1 table");
    use(&k, q->h.rt_offset, (uint64_t)q->h.rt_clusters * q->cs, "refcount table");
    for (uint64_t i = 0; i < q->rt_entries; i++) {
        uint64_t e = q->rt[i] & RT_OFFSET_MASK;
        if (!e) continue;
        if (e % q->cs) {
            c->errors++;
            say(&k, "ERROR refcount block %llu offset 0x%llx not aligned", (unsigned long long)i,
                (unsigned long long)e);
            q->rt[i] = 0; /* so rc_get does not trip over it */
            continue;
        }
        use(&k, e, q->cs, "refcount block");
    }
    r = walk_l1(&k, q->l1, q->h.l1_size, true);
    if (!r) r = walk_snapshots(&k);
    /* Compare with the stored refcounts, everywhere a refcount block could say something. */
    uint64_t limit = q->rt_entries * q->rb_entries, beyond = 0;
    if (limit < k.n) limit = k.n;
    for (uint64_t cl = 0; !r && cl < limit; cl++) {
        /* Refcounts for clusters past the end of the file: a valid image has a few; a
         * hostile one could describe 2^44 of them. */
        if (cl >= k.n && ++beyond > (1u << 22)) {
            c->errors++;
            say(&k, "ERROR refcount blocks describe far more than the file: not checked further");
            break;
        }
        if (cl >= k.n && cl % q->rb_entries == 0) { /* past the file: skip missing blocks */
            uint64_t off;
            if ((r = rb_offset(q, cl, &off))) break;
            if (!off) {
                cl += q->rb_entries - 1;
                continue;
            }
        }
        uint64_t have, want = cl < k.n ? k.uses[cl] : 0;
        if ((r = rc_get(q, cl, &have))) break;
        if (have == want) {
            if (want) c->used++;
            continue;
        }
        if (want) c->used++;
        bool leak = have > want;
        if (leak)
            c->leaks++;
        else
            c->errors++;
        say(&k, "%s cluster %llu: refcount %llu, used %llu", leak ? "Leaked" : "ERROR",
            (unsigned long long)cl, (unsigned long long)have, (unsigned long long)want);
        if (!repair) continue;
        uint64_t off;
        if ((r = rb_offset(q, cl, &off))) break;
        if (!off || want > rc_max(q)) continue; /* no block to fix it in */
        if ((r = rc_set(q, cl, want, 0, 0))) break;
        c->fixed++;
    }
    /* Copied flags follow the refcounts just repaired (a crash inside snapshot create leaves
     * them cleared on clusters whose leaked reference repair took away). */
    if (!r && repair && !q->broken && !(r = fix_copied(q)) && !(r = qcow2_flush(q)))
        c->fixed += k.copied_bad;
    if (!r && repair) r = sync_file(q);
    if (!r && repair && c->fixed == c->leaks + c->errors && (q->h.incompat & INCOMPAT_DIRTY)) {
        uint8_t b[8];
        put64(b, q->h.incompat & ~INCOMPAT_DIRTY);
        if (!(r = wr(q, b, 8, 72))) r = sync_file(q);
    }
    free(k.uses);
    node_free(q);
    if (r) return fail(err, errlen, r, "%s: %s", path, strerror(-r));
    return 0;
}

/* ---- internal snapshots ("Snapshot table") ---- */

static int rc_add(struct qcow2 *q, uint64_t cl, int delta)
{
    uint64_t v;
    int r = rc_get(q, cl, &v);
    if (r) return r;
    if ((delta < 0 && v == 0) || (delta > 0 && v == rc_max(q)))
        return corrupt(q, "refcount would leave its range", cl);
    if ((r = rc_set(q, cl, delta < 0 ? v - 1 : v + 1, 0, 0))) return r;
    if (delta < 0 && v == 1 && cl < q->free_hint) q->free_hint = cl;
    return 0;
}

/* One more (delta +1) or one less (-1) reference to every L2 table an L1 table names and to
 * every cluster those map: an L1 table counts once for each cluster it reaches. */
static int adjust_refs(struct qcow2 *q, const uint64_t *l1, uint64_t n, int delta)
{
    uint8_t *t = malloc(q->cs);
    if (!t) return -ENOMEM;
    int r = 0;
    for (uint64_t i = 0; i < n && !r; i++) {
        uint64_t off = l1[i] & OFFSET_MASK;
        if (!off) continue;
        if (off % q->cs) {
            r = corrupt(q, "L2 table offset not cluster aligned", off);
            break;
        }
        uint8_t *c;
        if ((r = cache_get(q, q->l2c, q->nl2c, off, &c))) break;
        memcpy(t, c, q->cs);
        if ((r = rc_add(q, off >> q->cb, delta))) break;
        for (uint64_t j = 0; j < q->l2_entries && !r; j++) {
            uint64_t e = be64(t + 8 * j);
            if (e & OFLAG_COMPRESSED) {
                uint64_t co, cl;
                compressed_range(q, e, &co, &cl);
                co &= ~511ull;
                cl = ((cl + 511) & ~511ull);
                for (uint64_t x = co >> q->cb; !r && x <= (co + cl - 1) >> q->cb; x++)
                    r = rc_add(q, x, delta);
            } else if (e & OFFSET_MASK) {
                r = rc_add(q, (e & OFFSET_MASK) >> q->cb, delta);
            }
        }
    }
    free(t);
    return r;
}

/* The copied flag of every active L1 and L2 entry made to say "refcount is 1" again, as the
 * spec requires ("Cluster mapping"), after refcounts changed under them. */
static int fix_copied(struct qcow2 *q)
{
    int r = 0;
    for (uint32_t i = 0; i < q->h.l1_size && !r; i++) {
        uint64_t off = q->l1[i] & OFFSET_MASK, v;
        if (!off) continue;
        if ((r = rc_get(q, off >> q->cb, &v))) break;
        uint64_t want = v == 1 ? (q->l1[i] | OFLAG_COPIED) : (q->l1[i] & ~OFLAG_COPIED);
        if (want != q->l1[i]) q->l1[i] = want, q->l1_dirty = true;
        uint8_t *t;
        if ((r = cache_get(q, q->l2c, q->nl2c, off, &t))) break;
        struct tcache *slot = NULL;
        for (unsigned k = 0; k < q->nl2c; k++)
            if (q->l2c[k].data == t) slot = &q->l2c[k];
        for (uint64_t j = 0; j < q->l2_entries && !r; j++) {
            uint64_t e = be64(t + 8 * j), host = e & OFFSET_MASK;
            if ((e & OFLAG_COMPRESSED) || !host) continue;
            if ((r = rc_get(q, host >> q->cb, &v))) break;
            uint64_t w = v == 1 ? (e | OFLAG_COPIED) : (e & ~OFLAG_COPIED);
            if (w != e) {
                put64(t + 8 * j, w);
                if (slot) slot->dirty = true;
            }
        }
    }
    return r;
}

/* A new snapshot table (the entries of q->snaps, in order) in new clusters, synced, then
 * the header pointing at it, synced, then the old table's clusters freed. */
static int write_snap_table(struct qcow2 *q)
{
    uint64_t bytes = 0;
    for (unsigned i = 0; i < q->nsnaps; i++)
        bytes += q->snaps[i].len;
    uint64_t n = (bytes + q->cs - 1) >> q->cb, first = 0;
    int r = 0;
    if (n) {
        uint8_t *b = calloc(n, q->cs);
        if (!b) return -ENOMEM;
        uint64_t p = 0;
        for (unsigned i = 0; i < q->nsnaps; i++) {
            memcpy(b + p, q->snaps[i].raw, q->snaps[i].len);
            p += q->snaps[i].len;
        }
        r = alloc_clusters(q, n, &first);
        if (!r) r = wr(q, b, n * q->cs, first << q->cb);
        free(b);
        if (!r) r = sync_file(q);
        if (r) return r;
    }
    uint8_t h[12];
    put32(h, q->nsnaps);
    put64(h + 4, first << q->cb);
    if ((r = wr(q, h, 12, 60)) || (r = sync_file(q))) return r;
    uint64_t old = q->h.snapshots_offset, oldn = q->snap_clusters;
    q->h.nb_snapshots = q->nsnaps;
    q->h.snapshots_offset = first << q->cb;
    q->snap_clusters = n;
    for (uint64_t i = 0; i < oldn && !r; i++)
        r = rc_add(q, (old >> q->cb) + i, -1);
    return r;
}

static struct snap *find_snap(struct qcow2 *q, const char *name)
{
    for (unsigned i = 0; i < q->nsnaps; i++)
        if (!strcmp(q->snaps[i].name, name)) return &q->snaps[i];
    for (unsigned i = 0; i < q->nsnaps; i++)
        if (!strcmp(q->snaps[i].id, name)) return &q->snaps[i];
    return NULL;
}

unsigned qcow2_snapshot_count(const struct qcow2 *q)
{
    return q->nsnaps;
}

void qcow2_snapshot_get(const struct qcow2 *q, unsigned i, struct qcow2_snapshot_info *s)
{
    const struct snap *n = &q->snaps[i];
    memset(s, 0, sizeof(*s));
    snprintf(s->id, sizeof(s->id), "%s", n->id);
    snprintf(s->name, sizeof(s->name), "%s", n->name);
    s->date_sec = be32(n->raw + 16);
    s->date_nsec = be32(n->raw + 20);
    s->vm_clock_nsec = be64(n->raw + 24);
    s->vm_state_size = be32(n->raw + 32);
    uint32_t extra = be32(n->raw + 36);
    if (extra >= 8 && be64(n->raw + 40)) s->vm_state_size = be64(n->raw + 40);
    s->disk_size = extra >= 16 ? be64(n->raw + 48) : q->size;
}

static int snap_prepare(struct qcow2 *q, char *err, size_t errlen)
{
    if (q->readonly || q->raw)
        return fail(err, errlen, -EROFS, "%s is not open for writing", q->path);
    if (q->broken) return fail(err, errlen, -EIO, "%s needs vessel disk check", q->path);
    int r = qcow2_flush(q);
    return r ? fail(err, errlen, r, "%s: %s", q->path, strerror(-r)) : 0;
}

static int snap_done(struct qcow2 *q, int r, char *err, size_t errlen)
{
    if (!r) r = fix_copied(q);
    if (!r) r = qcow2_flush(q);
    return r ? fail(err, errlen, r, "%s: %s", q->path, strerror(-r)) : 0;
}

int qcow2_snapshot_create(struct qcow2 *q, const char *name, char *err, size_t errlen)
{
    size_t namen = strlen(name);
    if (!namen || namen >= sizeof(q->snaps[0].name))
        return fail(err, errlen, -EINVAL, "snapshot name must be 1..255 bytes");
    if (find_snap(q, name))
        return fail(err, errlen, -EEXIST, "%s already has a snapshot %s", q->path, name);
    if (q->nsnaps >= 65536) return fail(err, errlen, -ENOSPC, "too many snapshots");
    int r = snap_prepare(q, err, errlen);
    if (r) return r;
    /* The id: one more than the largest numeric id (QEMU's scheme). */
    unsigned long next = 1;
    for (unsigned i = 0; i < q->nsnaps; i++) {
        unsigned long v = strtoul(q->snaps[i].id, NULL, 10);
        if (v >= next) next = v + 1;
    }
    char id[32];
    int idn = snprintf(id, sizeof(id), "%lu", next);
    /* The L1 copy; then every cluster it reaches gets one more reference, and the active
     * entries lose their copied flag (flushed) before the table names the snapshot: a crash
     * in between leaks, never shares a cluster the active image would write in place. */
    uint64_t n = q->h.l1_size, l1c = (n * 8 + q->cs - 1) >> q->cb, first = 0;
    uint8_t *b = l1c ? calloc(l1c, q->cs) : NULL;
    if (l1c && !b) return fail(err, errlen, -ENOMEM, "out of memory");
    for (uint64_t i = 0; i < n; i++)
        put64(b + 8 * i, q->l1[i] & ~OFLAG_COPIED);
    if (l1c) r = alloc_clusters(q, l1c, &first);
    if (!r && l1c) r = wr(q, b, l1c * q->cs, first << q->cb);
    free(b);
    if (!r) r = adjust_refs(q, q->l1, n, +1);
    if (!r) r = fix_copied(q);
    if (!r) r = qcow2_flush(q);
    if (r) return fail(err, errlen, r, "%s: %s", q->path, strerror(-r));
    size_t len = (40 + 16 + (size_t)idn + namen + 7) & ~(size_t)7;
    uint8_t *e = calloc(1, len);
    struct snap *grown = realloc(q->snaps, (q->nsnaps + 1) * sizeof(*q->snaps));
    if (!e || !grown) {
        free(e);
        if (grown) q->snaps = grown;
        return fail(err, errlen, -ENOMEM, "out of memory");
    }
    q->snaps = grown;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    put64(e, first << q->cb);
    put32(e + 8, (uint32_t)n);
    e[12] = (uint8_t)(idn >> 8), e[13] = (uint8_t)idn;
    e[14] = (uint8_t)(namen >> 8), e[15] = (uint8_t)namen;
    put32(e + 16, (uint32_t)now.tv_sec);
    put32(e + 20, (uint32_t)now.tv_nsec);
    put32(e + 36, 16);      /* extra data: vm_state_size_large (0), disk_size */
    put64(e + 48, q->size); /* disk only: no VM state */
    memcpy(e + 56, id, (size_t)idn);
    memcpy(e + 56 + idn, name, namen);
    struct snap *s = &q->snaps[q->nsnaps++];
    memset(s, 0, sizeof(*s));
    s->raw = e;
    s->len = len;
    s->l1_off = first << q->cb;
    s->l1_size = (uint32_t)n;
    snprintf(s->id, sizeof(s->id), "%s", id);
    snprintf(s->name, sizeof(s->name), "%s", name);
    r = write_snap_table(q);
    return snap_done(q, r, err, errlen);
}

static int read_snap_l1(struct qcow2 *q, const struct snap *s, uint64_t n, uint64_t **out)
{
    uint64_t *l1 = calloc(n ? n : 1, 8);
    uint8_t *b = malloc(s->l1_size ? (size_t)s->l1_size * 8 : 1);
    int r = l1 && b ? 0 : -ENOMEM;
    if (!r && s->l1_size) r = rd(q, b, (size_t)s->l1_size * 8, s->l1_off);
    for (uint64_t i = 0; !r && i < s->l1_size && i < n; i++)
        l1[i] = be64(b + 8 * i);
    free(b);
    if (r) {
        free(l1);
        return r;
    }
    *out = l1;
    return 0;
}

/* The snapshot called name (or with that id) whose tables fit the active image's: vessel
 * applies or reads only such. NULL with a message. */
static struct snap *usable_snap(struct qcow2 *q, const char *name, int *r, char *err, size_t errlen)
{
    struct snap *s = find_snap(q, name);
    if (!s) {
        *r = fail(err, errlen, -ENOENT, "%s has no snapshot %s", q->path, name);
        return NULL;
    }
    struct qcow2_snapshot_info info;
    qcow2_snapshot_get(q, (unsigned)(s - q->snaps), &info);
    if (s->l1_size > q->h.l1_size || info.disk_size != q->size) {
        *r = fail(err, errlen, -ENOTSUP,
                  "snapshot %s has another disk size or a larger L1 table (VM state?): vessel "
                  "cannot use it",
                  name);
        return NULL;
    }
    return s;
}

int qcow2_snapshot_apply(struct qcow2 *q, const char *name, char *err, size_t errlen)
{
    int r;
    struct snap *s = usable_snap(q, name, &r, err, errlen);
    if (!s) return r;
    r = snap_prepare(q, err, errlen);
    if (r) return r;
    uint64_t n = q->h.l1_size, *sl1, *old = malloc(n ? n * 8 : 8);
    if (!old) return fail(err, errlen, -ENOMEM, "out of memory");
    if ((r = read_snap_l1(q, s, n, &sl1))) {
        free(old);
        return fail(err, errlen, r, "%s: %s", q->path, strerror(-r));
    }
    /* Count the snapshot's clusters once more, make its L1 the active one (written and synced
     * by the flush), then drop the old active image's references. */
    r = adjust_refs(q, sl1, n, +1);
    if (!r) {
        memcpy(old, q->l1, n * 8);
        for (uint64_t i = 0; i < n; i++)
            q->l1[i] = sl1[i] & ~OFLAG_COPIED;
        q->l1_dirty = true;
        r = qcow2_flush(q);
    }
    if (!r) r = adjust_refs(q, old, n, -1);
    free(old);
    free(sl1);
    return snap_done(q, r, err, errlen);
}

int qcow2_snapshot_view(struct qcow2 *q, const char *name, char *err, size_t errlen)
{
    if (!q->readonly || q->raw)
        return fail(err, errlen, -EINVAL, "%s: a snapshot is viewed on a read-only qcow2 open",
                    q->path);
    int r;
    struct snap *s = usable_snap(q, name, &r, err, errlen);
    if (!s) return r;
    uint64_t *sl1;
    r = read_snap_l1(q, s, q->h.l1_size, &sl1);
    if (r) return fail(err, errlen, r, "%s: %s", q->path, strerror(-r));
    memcpy(q->l1, sl1, q->h.l1_size * 8);
    free(sl1);
    for (unsigned i = 0; i < q->nl2c; i++)
        q->l2c[i].off = 0; /* the active image's tables: read again as needed */
    return 0;
}

int qcow2_snapshot_delete(struct qcow2 *q, const char *name, char *err, size_t errlen)
{
    struct snap *s = find_snap(q, name);
    if (!s) return fail(err, errlen, -ENOENT, "%s has no snapshot %s", q->path, name);
    int r = snap_prepare(q, err, errlen);
    if (r) return r;
    struct snap gone = *s;
    uint64_t *sl1;
    if ((r = read_snap_l1(q, &gone, gone.l1_size, &sl1)))
        return fail(err, errlen, r, "%s: %s", q->path, strerror(-r));
    /* Out of the table first (synced): a crash after it only leaks. */
    unsigned i = (unsigned)(s - q->snaps);
    memmove(&q->snaps[i], &q->snaps[i + 1], (q->nsnaps - i - 1) * sizeof(*q->snaps));
    q->nsnaps--;
    r = write_snap_table(q);
    if (!r) r = adjust_refs(q, sl1, gone.l1_size, -1);
    uint64_t l1c = ((uint64_t)gone.l1_size * 8 + q->cs - 1) >> q->cb;
    for (uint64_t c = 0; !r && c < l1c; c++)
        r = rc_add(q, (gone.l1_off >> q->cb) + c, -1);
    free(sl1);
    free(gone.raw);
    return snap_done(q, r, err, errlen);
}

/* virtio-blk device tests, driven as Linux's virtio_blk driver would: a raw image in $TMPDIR
 * (default /tmp) behind the raw backend, the virtio-mmio registers walked through feature
 * negotiation and queue setup, requests built by hand in a fake guest RAM, QueueNotify, then
 * vblk_process_and_wait() and a look at the used ring, the status byte, the data and the
 * image file (pread on the host). */
#include "backend/block/block.h"
#include "backend/block/raw.h"
#include "dev/virtio/blk.h"
#include "test.h"
#include "util/log.h"
#include "virtio_harness.h"
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SECT     512u
#define RAM_SIZE (4u << 20)

/* feature bits (5.2.3) */
#define F_SEG_MAX  (1ull << 2)
#define F_RO       (1ull << 5)
#define F_BLK_SIZE (1ull << 6)
#define F_FLUSH    (1ull << 9)
#define F_DISCARD  (1ull << 13)
#define F_WZ       (1ull << 14)
#define F_V1       (1ull << VIRTIO_F_VERSION_1)
#define F_IND      (1ull << VIRTIO_F_INDIRECT_DESC)
#define F_EVT      (1ull << VIRTIO_F_EVENT_IDX)
#define F_ALL      (~0ull)

/* request types and status (5.2.6) */
#define T_IN     0u
#define T_OUT    1u
#define T_FLUSH  4u
#define T_GET_ID 8u
#define T_DISC   11u
#define T_WZ     13u
#define S_OK     0
#define S_IOERR  1
#define S_UNSUPP 2

/* config space offsets (5.2.4) */
#define C_CAPACITY  0
#define C_SEG_MAX   12
#define C_BLK_SIZE  20
#define C_MAX_DISC  36
#define C_DISC_SEG  40
#define C_DISC_ALGN 44
#define C_MAX_WZ    48
#define C_WZ_SEG    52
#define C_WZ_UNMAP  56

/* ---- rig: image + backend + device + driver ---------------------------------------------- */

struct rig {
    struct vh h;
    char path[256];
    int fd; /* the host's view of the image; opened before blk_open, closed after blk_close */
    struct blk_backend *be;
    struct vblk *d;
    uint64_t sectors;
};

struct rig_opts {
    bool readonly;
    bool sparse; /* leave the image sparse (zeroes) instead of writing the pattern */
    const char *serial;
    const char *engine;         /* NULL: the default */
    uint64_t features;          /* wanted; 0 means F_ALL */
    uint16_t num;               /* queue size; 0 means 256 */
    const struct irq_line *irq; /* instead of the harness's counting line */
    bool stall;                 /* VESSEL_TEST_BLOCK_STALL=1: no request ever completes */
};

/* The initial content of byte `off` of an image: differs between neighbouring bytes and
 * between sectors, so data read from or written to a wrong offset shows. */
static uint8_t pat(uint64_t off)
{
    return (uint8_t)(off * 7 + (off >> 9) * 13 + 1);
}

static void tmp_path(char *buf, size_t len)
{
    const char *dir = getenv("TMPDIR");
    static atomic_int seq;
    snprintf(buf, len, "%s/vessel-vblk-%ld-%d.img", dir && *dir ? dir : "/tmp", (long)getpid(),
             atomic_fetch_add(&seq, 1));
}

static bool rig_open(struct rig *r, uint64_t sectors, const struct rig_opts *o)
{
    memset(r, 0, sizeof(*r));
    r->fd = -1;
    r->sectors = sectors;
    tmp_path(r->path, sizeof(r->path));
    char err[256] = "";
    int rc = blk_create_raw(r->path, sectors * SECT, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "  blk_create_raw: %s\n", err);
        test_failures_in_current++;
        return false;
    }
    r->fd = open(r->path, O_RDWR | O_CLOEXEC);
    CHECK(r->fd >= 0);
    if (r->fd < 0) return false;
    if (!o->sparse) {
        static uint8_t buf[64 << 10];
        for (uint64_t off = 0; off < sectors * SECT; off += sizeof(buf)) {
            uint64_t n = sectors * SECT - off < sizeof(buf) ? sectors * SECT - off : sizeof(buf);
            for (uint64_t i = 0; i < n; i++)
                buf[i] = pat(off + i);
            CHECK_EQ(pwrite(r->fd, buf, n, (off_t)off), n);
        }
        CHECK_EQ(fsync(r->fd), 0);
    }
    struct blk_open_opts bo = {.readonly = o->readonly};
    if (o->engine) setenv("VESSEL_IO_ENGINE", o->engine, 1);
    if (o->stall) setenv("VESSEL_TEST_BLOCK_STALL", "1", 1);
    rc = blk_open(&r->be, r->path, &bo, err, sizeof(err));
    unsetenv("VESSEL_IO_ENGINE");
    unsetenv("VESSEL_TEST_BLOCK_STALL");
    if (rc) {
        fprintf(stderr, "  blk_open: %s\n", err);
        test_failures_in_current++;
        return false;
    }
    if (o->engine) CHECK_STR(blk_engine_name(r->be), o->engine);
    CHECK_EQ(vh_init(&r->h, RAM_SIZE), 0);
    r->d = vblk_create(r->be, o->serial, &r->h.gm, o->irq ? *o->irq : vh_irq_line(&r->h));
    CHECK(r->d != NULL);
    if (!r->d) return false;
    r->h.t = vblk_transport(r->d);
    int s = vh_setup(&r->h, o->features ? o->features : F_ALL, o->num ? o->num : 256);
    CHECK_EQ(s, 0);
    return s == 0;
}

static void rig_close(struct rig *r)
{
    vblk_destroy(r->d);
    if (r->be) blk_close(r->be);
    if (r->fd >= 0) close(r->fd);
    unlink(r->path);
    vh_free(&r->h);
}

static void run(struct rig *r)
{
    vh_kick(&r->h);
    vblk_process_and_wait(r->d);
}

/* The header of a request in guest memory (5.2.6: le32 type, le32 reserved, le64 sector). */
static uint64_t mk_hdr(struct rig *r, uint32_t type, uint64_t sector)
{
    uint64_t g = vh_alloc(&r->h, 16);
    uint8_t *p = vh_ptr(&r->h, g);
    memcpy(p, &type, 4);
    memset(p + 4, 0, 4);
    memcpy(p + 8, &sector, 8);
    return g;
}

static uint64_t mk_status(struct rig *r)
{
    uint64_t g = vh_alloc(&r->h, 1);
    *vh_ptr(&r->h, g) = 0xff;
    return g;
}

/* A request chain: header, data cut into nsplit uneven pieces (not sector-sized), status.
 * Returns the status byte's address; *head gets the chain's head. */
static uint64_t submit(struct rig *r, uint32_t type, uint64_t sector, uint64_t data, uint32_t len,
                       bool data_write, unsigned nsplit, bool indirect, uint16_t *head)
{
    struct vh_seg segs[VQ_MAX_SEGS + 8];
    unsigned n = 0;
    segs[n++] = (struct vh_seg){mk_hdr(r, type, sector), 16, false};
    uint32_t done = 0;
    for (unsigned i = 0; i < nsplit && len; i++) {
        /* piece i: len/nsplit, odd pieces 24 bytes longer so that pieces are not sector
         * aligned; with more than 16 pieces all equal (the tests then count segments) */
        uint32_t nudge = nsplit <= 16 && (i & 1) ? 24u : 0u;
        uint32_t piece = i + 1 == nsplit ? len - done : len / nsplit + nudge;
        if (piece > len - done) piece = len - done;
        if (!piece) continue;
        segs[n++] = (struct vh_seg){data + done, piece, data_write};
        done += piece;
    }
    uint64_t st = mk_status(r);
    segs[n++] = (struct vh_seg){st, 1, true};
    uint16_t hd = vh_chain(&r->h, segs, n, indirect);
    vh_avail_add(&r->h, hd);
    if (head) *head = hd;
    return st;
}

/* One request, run to completion. Checks it completed exactly once; returns its status. */
static int io(struct rig *r, uint32_t type, uint64_t sector, uint64_t data, uint32_t len,
              bool data_write, unsigned nsplit, bool indirect)
{
    uint16_t before = vh_used_idx(&r->h), head;
    uint64_t st = submit(r, type, sector, data, len, data_write, nsplit, indirect, &head);
    run(r);
    CHECK_EQ(vh_used_idx(&r->h), (uint16_t)(before + 1));
    CHECK_EQ(vh_used_id(&r->h, before), head);
    return *vh_ptr(&r->h, st);
}

static uint32_t last_used_len(struct rig *r)
{
    return vh_used_len(&r->h, (uint16_t)(vh_used_idx(&r->h) - 1));
}

/* DISCARD / WRITE_ZEROES with one range segment (5.2.6: le64 sector, le32 num, le32 flags). */
static int range_io(struct rig *r, uint32_t type, uint64_t sector, uint32_t num, uint32_t flags)
{
    uint64_t rg = vh_alloc(&r->h, 16);
    uint8_t *p = vh_ptr(&r->h, rg);
    memcpy(p, &sector, 8);
    memcpy(p + 8, &num, 4);
    memcpy(p + 12, &flags, 4);
    return io(r, type, 0, rg, 16, false, 1, false);
}

static bool host_matches_pattern(struct rig *r, uint64_t off, uint64_t len)
{
    uint8_t *b = malloc(len);
    bool ok = b && pread(r->fd, b, len, (off_t)off) == (ssize_t)len;
    for (uint64_t i = 0; ok && i < len; i++)
        ok = b[i] == pat(off + i);
    free(b);
    return ok;
}

static bool host_equals(struct rig *r, uint64_t off, const uint8_t *want, uint64_t len)
{
    uint8_t *b = malloc(len);
    bool ok = b && pread(r->fd, b, len, (off_t)off) == (ssize_t)len && !memcmp(b, want, len);
    free(b);
    return ok;
}

static bool all_bytes(const uint8_t *p, uint64_t len, uint8_t v)
{
    for (uint64_t i = 0; i < len; i++)
        if (p[i] != v) return false;
    return true;
}

static bool guest_matches_pattern(struct rig *r, uint64_t gpa, uint64_t disk_off, uint64_t len)
{
    const uint8_t *p = vh_ptr(&r->h, gpa);
    for (uint64_t i = 0; i < len; i++)
        if (p[i] != pat(disk_off + i)) return false;
    return true;
}

static void fill_random(uint8_t *p, uint64_t len, unsigned seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (uint64_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

static uint32_t cfg32(struct rig *r, uint32_t off)
{
    return (uint32_t)virtio_mmio_ops.read(r->h.t, VH_CONFIG + off, 4);
}

static uint64_t blocks_of(struct rig *r)
{
    struct stat st;
    return fstat(r->fd, &st) == 0 ? (uint64_t)st.st_blocks : 0;
}

static struct vblk_stats stats(struct rig *r)
{
    struct vblk_stats s;
    vblk_get_stats(r->d, &s);
    return s;
}

/* ---- identity, features, config space ----------------------------------------------------- */

TEST(vblk_features_and_config)
{
    struct rig r;
    /* 2 TiB + 1 sector, sparse: the capacity needs both halves of the 64-bit field */
    struct rig_opts o = {.sparse = true};
    if (rig_open(&r, (1ull << 32) + 1, &o)) {
        CHECK_EQ(vh_rd(&r.h, VH_MAGIC), 0x74726976);
        CHECK_EQ(vh_rd(&r.h, VH_VERSION), 2);
        CHECK_EQ(vh_rd(&r.h, VH_DEVICE_ID), 2);
        uint64_t f = vh_dev_features(&r.h);
        CHECK_EQ(f, F_SEG_MAX | F_BLK_SIZE | F_FLUSH | F_DISCARD | F_WZ | F_V1 | F_IND | F_EVT);
        CHECK_EQ(r.h.features, f); /* all accepted */
        vh_wr(&r.h, VH_QUEUE_SEL, 0);
        CHECK_EQ(vh_rd(&r.h, VH_QUEUE_NUM_MAX), 256);

        /* capacity as two 32-bit halves (Linux's virtio_cread64 on mmio), as one 64-bit
         * access, and bytewise */
        CHECK_EQ(cfg32(&r, C_CAPACITY), 1);
        CHECK_EQ(cfg32(&r, C_CAPACITY + 4), 1);
        CHECK_EQ(virtio_mmio_ops.read(r.h.t, VH_CONFIG + C_CAPACITY, 8), (1ull << 32) + 1);
        CHECK_EQ(virtio_mmio_ops.read(r.h.t, VH_CONFIG + C_CAPACITY, 1), 1);
        CHECK_EQ(virtio_mmio_ops.read(r.h.t, VH_CONFIG + C_CAPACITY + 4, 2), 1);
        /* seg_max + header + status must fit VQ_MAX_SEGS (see vblk_max_segments) */
        CHECK_EQ(cfg32(&r, C_SEG_MAX), VQ_MAX_SEGS - 2);
        CHECK_EQ(cfg32(&r, C_BLK_SIZE), 512);
        CHECK(cfg32(&r, C_MAX_DISC) >= 8);
        CHECK_EQ(cfg32(&r, C_DISC_SEG), 1);
        CHECK_EQ(cfg32(&r, C_DISC_ALGN), 1);
        CHECK(cfg32(&r, C_MAX_WZ) >= 8);
        CHECK_EQ(cfg32(&r, C_WZ_SEG), 1);
        CHECK_EQ(virtio_mmio_ops.read(r.h.t, VH_CONFIG + C_WZ_UNMAP, 1), 1);
        /* past the 60-byte structure and straddling its end: 0 */
        CHECK_EQ(cfg32(&r, 60), 0);
        CHECK_EQ(cfg32(&r, 58), 0);
        CHECK_EQ(cfg32(&r, 0x400), 0);
        /* config writes change nothing (no writeback toggle offered) */
        virtio_mmio_ops.write(r.h.t, VH_CONFIG + C_CAPACITY, 7, 4);
        virtio_mmio_ops.write(r.h.t, VH_CONFIG + 32, 1, 1);
        CHECK_EQ(cfg32(&r, C_CAPACITY), 1);

        /* the last sector of a > 2 TiB disk is reachable, the one after is not */
        uint64_t buf = vh_alloc(&r.h, SECT);
        memset(vh_ptr(&r.h, buf), 0x5a, SECT);
        CHECK_EQ(io(&r, T_IN, 1ull << 32, buf, SECT, true, 1, false), S_OK);
        CHECK(all_bytes(vh_ptr(&r.h, buf), SECT, 0));
        CHECK_EQ(io(&r, T_IN, (1ull << 32) + 1, buf, SECT, true, 1, false), S_IOERR);
    }
    rig_close(&r);
}

TEST(vblk_feature_subset)
{
    /* A driver that takes only VERSION_1: the device still serves requests. */
    struct rig r;
    struct rig_opts o = {.features = F_V1};
    if (rig_open(&r, 64, &o)) {
        CHECK_EQ(r.h.features, F_V1);
        uint64_t buf = vh_alloc(&r.h, SECT);
        CHECK_EQ(io(&r, T_IN, 9, buf, SECT, true, 1, false), S_OK);
        CHECK(guest_matches_pattern(&r, buf, 9 * SECT, SECT));
    }
    rig_close(&r);
}

/* ---- IN / OUT ---------------------------------------------------------------------------- */

static void rw_roundtrip(const char *engine, bool indirect)
{
    struct rig r;
    struct rig_opts o = {.engine = engine};
    if (!rig_open(&r, 2048, &o)) goto out;

    /* one sector, one data descriptor */
    uint64_t w = vh_alloc(&r.h, SECT);
    fill_random(vh_ptr(&r.h, w), SECT, 1);
    CHECK_EQ(io(&r, T_OUT, 3, w, SECT, false, 1, indirect), S_OK);
    CHECK_EQ(last_used_len(&r), 1); /* the device wrote the status byte only */
    CHECK(host_equals(&r, 3 * SECT, vh_ptr(&r.h, w), SECT));
    CHECK(host_matches_pattern(&r, 2 * SECT, SECT)); /* neighbours untouched */
    CHECK(host_matches_pattern(&r, 4 * SECT, SECT));

    uint64_t rd = vh_alloc(&r.h, SECT);
    memset(vh_ptr(&r.h, rd), 0xcc, SECT);
    CHECK_EQ(io(&r, T_IN, 3, rd, SECT, true, 1, indirect), S_OK);
    CHECK_EQ(last_used_len(&r), SECT + 1);
    CHECK(!memcmp(vh_ptr(&r.h, rd), vh_ptr(&r.h, w), SECT));

    /* 64 sectors, written in 7 uneven pieces, read back in 5 different ones */
    uint32_t len = 64 * SECT;
    uint64_t wb = vh_alloc(&r.h, len);
    fill_random(vh_ptr(&r.h, wb), len, 2);
    CHECK_EQ(io(&r, T_OUT, 100, wb, len, false, 7, indirect), S_OK);
    CHECK(host_equals(&r, 100 * SECT, vh_ptr(&r.h, wb), len));
    CHECK(host_matches_pattern(&r, 99 * SECT, SECT));
    CHECK(host_matches_pattern(&r, 164 * SECT, SECT));
    uint64_t rb = vh_alloc(&r.h, len);
    memset(vh_ptr(&r.h, rb), 0xcc, len);
    CHECK_EQ(io(&r, T_IN, 100, rb, len, true, 5, indirect), S_OK);
    CHECK_EQ(last_used_len(&r), len + 1);
    CHECK(!memcmp(vh_ptr(&r.h, rb), vh_ptr(&r.h, wb), len));

    /* untouched data reads as the initial pattern, at the right offset */
    CHECK_EQ(io(&r, T_IN, 500, rb, 8 * SECT, true, 3, indirect), S_OK);
    CHECK(guest_matches_pattern(&r, rb, 500 * SECT, 8 * SECT));
    /* the last sector */
    CHECK_EQ(io(&r, T_IN, 2047, rb, SECT, true, 2, indirect), S_OK);
    CHECK(guest_matches_pattern(&r, rb, 2047 * SECT, SECT));

    struct vblk_stats s = stats(&r);
    CHECK_EQ(s.reads, 4);
    CHECK_EQ(s.writes, 2);
    CHECK_EQ(s.errors, 0);
    CHECK_EQ(s.bad_requests, 0);
    /* completions interrupt the driver (no suppression asked for); acknowledging lowers it */
    CHECK(r.h.irq.level);
    CHECK(r.h.irq.raises >= 1);
    CHECK_EQ(vh_rd(&r.h, VH_INT_STATUS), VIRTIO_INT_USED);
    vh_wr(&r.h, VH_INT_ACK, VIRTIO_INT_USED);
    CHECK(!r.h.irq.level);
    CHECK_EQ(vh_rd(&r.h, VH_STATUS) & VIRTIO_STATUS_NEEDS_RESET, 0);
out:
    rig_close(&r);
}

TEST(vblk_rw_roundtrip_io_uring)
{
    rw_roundtrip("io_uring", false);
}
TEST(vblk_rw_roundtrip_threads)
{
    rw_roundtrip("threads", false);
}
TEST(vblk_rw_roundtrip_indirect_io_uring)
{
    rw_roundtrip("io_uring", true);
}
TEST(vblk_rw_roundtrip_indirect_threads)
{
    rw_roundtrip("threads", true);
}

/* 2.6.4 "Message Framing": the device must not depend on how the driver cuts a request into
 * descriptors. */
TEST(vblk_any_framing)
{
    struct rig r;
    struct rig_opts o = {0};
    if (!rig_open(&r, 256, &o)) goto out;

    /* OUT: header and data in one readable descriptor, status alone */
    uint64_t b = vh_alloc(&r.h, 16 + SECT);
    uint8_t *p = vh_ptr(&r.h, b);
    uint32_t type = T_OUT;
    uint64_t sector = 20;
    memcpy(p, &type, 4);
    memcpy(p + 8, &sector, 8);
    fill_random(p + 16, SECT, 3);
    uint64_t st = mk_status(&r);
    struct vh_seg s1[] = {{b, 16 + SECT, false}, {st, 1, true}};
    vh_avail_add(&r.h, vh_chain(&r.h, s1, 2, false));
    run(&r);
    CHECK_EQ(vh_used_idx(&r.h), 1);
    CHECK_EQ(*vh_ptr(&r.h, st), S_OK);
    CHECK(host_equals(&r, 20 * SECT, p + 16, SECT));

    /* IN: header split 4 + 12, data and status in one writable descriptor */
    uint64_t h = mk_hdr(&r, T_IN, 21);
    uint64_t ds = vh_alloc(&r.h, SECT + 1);
    memset(vh_ptr(&r.h, ds), 0xee, SECT + 1);
    struct vh_seg s2[] = {{h, 4, false}, {h + 4, 12, false}, {ds, SECT + 1, true}};
    vh_avail_add(&r.h, vh_chain(&r.h, s2, 3, false));
    run(&r);
    CHECK_EQ(vh_used_idx(&r.h), 2);
    CHECK_EQ(vh_ptr(&r.h, ds)[SECT], S_OK);
    CHECK_EQ(vh_used_len(&r.h, 1), SECT + 1);
    CHECK(guest_matches_pattern(&r, ds, 21 * SECT, SECT));

    /* zero-length descriptors in the middle carry nothing and are skipped */
    uint64_t h3 = mk_hdr(&r, T_IN, 22), d3 = vh_alloc(&r.h, SECT), st3 = mk_status(&r);
    struct vh_seg s3[] = {
        {h3, 16, false}, {0, 0, false}, {d3, SECT, true}, {0, 0, true}, {st3, 1, true}};
    vh_avail_add(&r.h, vh_chain(&r.h, s3, 5, true));
    run(&r);
    CHECK_EQ(vh_used_idx(&r.h), 3);
    CHECK_EQ(*vh_ptr(&r.h, st3), S_OK);
    CHECK(guest_matches_pattern(&r, d3, 22 * SECT, SECT));
out:
    rig_close(&r);
}

/* seg_max (254) data segments plus header and status fit in one request; one more does not
 * (VQ_MAX_SEGS), and the device then needs a reset rather than crashing. */
TEST(vblk_max_segments)
{
    struct rig r;
    struct rig_opts o = {0};
    if (!rig_open(&r, 1024, &o)) goto out;
    uint32_t segmax = cfg32(&r, C_SEG_MAX);
    uint64_t data = vh_alloc(&r.h, (uint64_t)(segmax + 1) * SECT);
    uint16_t head;
    /* each piece one sector: nsplit == number of sectors */
    uint64_t st = submit(&r, T_IN, 0, data, segmax * SECT, true, segmax, true, &head);
    run(&r);
    CHECK_EQ(vh_used_idx(&r.h), 1);
    CHECK_EQ(*vh_ptr(&r.h, st), S_OK);
    CHECK(guest_matches_pattern(&r, data, 0, (uint64_t)segmax * SECT));

    /* direct: a chain as long as the queue (256 descriptors) */
    st = submit(&r, T_IN, 300, data, 254 * SECT, true, 254, false, &head);
    run(&r);
    CHECK_EQ(vh_used_idx(&r.h), 2);
    CHECK_EQ(*vh_ptr(&r.h, st), S_OK);
    CHECK(guest_matches_pattern(&r, data, 300 * SECT, 254 * SECT));

    enum log_level lv = log_current_level;
    log_current_level = LOG_ERROR;
    st = submit(&r, T_IN, 0, data, (segmax + 1) * SECT, true, segmax + 1, true, &head);
    run(&r);
    log_current_level = lv;
    CHECK_EQ(vh_used_idx(&r.h), 2);
    CHECK_EQ(*vh_ptr(&r.h, st), 0xff);
    CHECK(vh_rd(&r.h, VH_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
out:
    rig_close(&r);
}

/* ---- FLUSH, GET_ID ------------------------------------------------------------------------ */

TEST(vblk_flush)
{
    struct rig r;
    struct rig_opts o = {0};
    if (!rig_open(&r, 64, &o)) goto out;
    uint64_t w = vh_alloc(&r.h, SECT);
    fill_random(vh_ptr(&r.h, w), SECT, 4);
    CHECK_EQ(io(&r, T_OUT, 1, w, SECT, false, 1, false), S_OK);
    CHECK_EQ(io(&r, T_FLUSH, 0, 0, 0, false, 0, false), S_OK);
    CHECK_EQ(last_used_len(&r), 1);
    CHECK_EQ(stats(&r).flushes, 1);
    /* a failed fdatasync reaches the guest as IOERR, and so does every later flush */
    blk_debug_fail_next_flush(r.be, -EIO);
    CHECK_EQ(io(&r, T_FLUSH, 0, 0, 0, false, 0, false), S_IOERR);
    CHECK_EQ(io(&r, T_FLUSH, 0, 0, 0, false, 0, false), S_IOERR);
    CHECK_EQ(stats(&r).errors, 2);
    /* reads still work */
    CHECK_EQ(io(&r, T_IN, 1, w, SECT, true, 1, false), S_OK);
out:
    rig_close(&r);
}

static void get_id(struct rig *r, uint64_t buf, bool one_desc, int *status, uint32_t *used)
{
    uint64_t h = mk_hdr(r, T_GET_ID, 0);
    memset(vh_ptr(&r->h, buf), 0xaa, VIRTIO_BLK_SERIAL_LEN + 1);
    uint64_t st = one_desc ? buf + VIRTIO_BLK_SERIAL_LEN : mk_status(r);
    struct vh_seg s[] = {
        {h, 16, false}, {buf, VIRTIO_BLK_SERIAL_LEN + (one_desc ? 1 : 0), true}, {st, 1, true}};
    vh_avail_add(&r->h, vh_chain(&r->h, s, one_desc ? 2 : 3, false));
    uint16_t before = vh_used_idx(&r->h);
    run(r);
    CHECK_EQ(vh_used_idx(&r->h), (uint16_t)(before + 1));
    *status = *vh_ptr(&r->h, st);
    *used = vh_used_len(&r->h, before);
}

TEST(vblk_get_id)
{
    static const struct {
        const char *serial, *want; /* want: the 20 bytes, NUL padded */
    } cases[] = {
        {"vessel-disk-7", "vessel-disk-7\0\0\0\0\0\0\0"},
        {"ABCDEFGHIJKLMNOPQRST", "ABCDEFGHIJKLMNOPQRST"},      /* exactly 20: no NUL */
        {"ABCDEFGHIJKLMNOPQRSTUVWXY", "ABCDEFGHIJKLMNOPQRST"}, /* longer: cut to 20 */
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rig r;
        struct rig_opts o = {.serial = cases[i].serial};
        if (rig_open(&r, 8, &o)) {
            for (int one = 0; one < 2; one++) {
                uint64_t buf = vh_alloc(&r.h, 32);
                int st;
                uint32_t used;
                get_id(&r, buf, one, &st, &used);
                CHECK_EQ(st, S_OK);
                CHECK_EQ(used, VIRTIO_BLK_SERIAL_LEN + 1);
                CHECK(!memcmp(vh_ptr(&r.h, buf), cases[i].want, VIRTIO_BLK_SERIAL_LEN));
            }
            CHECK_EQ(stats(&r).get_ids, 2);
        }
        rig_close(&r);
    }
    /* no serial: the guest reads an empty id */
    struct rig r;
    struct rig_opts o = {0};
    if (rig_open(&r, 8, &o)) {
        uint64_t buf = vh_alloc(&r.h, 32);
        int st;
        uint32_t used;
        get_id(&r, buf, false, &st, &used);
        CHECK_EQ(st, S_OK);
        CHECK(used >= 1 && used <= VIRTIO_BLK_SERIAL_LEN + 1);
        CHECK_EQ(strnlen((const char *)vh_ptr(&r.h, buf), VIRTIO_BLK_SERIAL_LEN), 0);
    }
    rig_close(&r);
}

/* ---- DISCARD, WRITE_ZEROES ---------------------------------------------------------------- */

static bool fs_can_punch(int fd)
{
    /* sectors 1920..1927 are never looked at by the test below */
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1920 * SECT, 4096) == 0;
}

TEST(vblk_discard_write_zeroes)
{
    struct rig r;
    struct rig_opts o = {0};
    if (!rig_open(&r, 2048, &o)) goto out;
    bool punch = fs_can_punch(r.fd);
    uint64_t buf = vh_alloc(&r.h, 256 * SECT);

    /* DISCARD 128 KiB at a 4 KiB-aligned offset: zeroes, and the file gives the blocks back */
    uint64_t b0 = blocks_of(&r);
    CHECK_EQ(range_io(&r, T_DISC, 64, 256, 0), S_OK);
    CHECK_EQ(last_used_len(&r), 1);
    uint8_t *zeros = calloc(1, 256 * SECT);
    CHECK(host_equals(&r, 64 * SECT, zeros, 256 * SECT));
    CHECK(host_matches_pattern(&r, 63 * SECT, SECT));
    CHECK(host_matches_pattern(&r, 320 * SECT, SECT));
    memset(vh_ptr(&r.h, buf), 0x77, 256 * SECT);
    CHECK_EQ(io(&r, T_IN, 64, buf, 256 * SECT, true, 4, false), S_OK);
    CHECK(all_bytes(vh_ptr(&r.h, buf), 256 * SECT, 0));
    if (punch)
        CHECK(blocks_of(&r) <= b0 - 256);
    else
        fprintf(stderr, "  (filesystem cannot punch holes: allocation not checked)\n");

    /* WRITE_ZEROES without and with the unmap flag */
    CHECK_EQ(range_io(&r, T_WZ, 400, 16, 0), S_OK);
    CHECK(host_equals(&r, 400 * SECT, zeros, 16 * SECT));
    CHECK(host_matches_pattern(&r, 399 * SECT, SECT));
    CHECK(host_matches_pattern(&r, 416 * SECT, SECT));
    CHECK_EQ(range_io(&r, T_WZ, 501, 3, 1), S_OK);
    CHECK(host_equals(&r, 501 * SECT, zeros, 3 * SECT));
    CHECK(host_matches_pattern(&r, 500 * SECT, SECT));
    CHECK(host_matches_pattern(&r, 504 * SECT, SECT));
    memset(vh_ptr(&r.h, buf), 0x77, 3 * SECT);
    CHECK_EQ(io(&r, T_IN, 501, buf, 3 * SECT, true, 1, false), S_OK);
    CHECK(all_bytes(vh_ptr(&r.h, buf), 3 * SECT, 0));
    /* the last sector, and zero sectors */
    CHECK_EQ(range_io(&r, T_WZ, 2047, 1, 0), S_OK);
    CHECK(host_equals(&r, 2047 * SECT, zeros, SECT));
    CHECK_EQ(range_io(&r, T_DISC, 700, 0, 0), S_OK);
    CHECK(host_matches_pattern(&r, 700 * SECT, SECT));

    struct vblk_stats s = stats(&r);
    CHECK_EQ(s.discards, 2);
    CHECK_EQ(s.write_zeroes, 3);
    CHECK_EQ(s.errors, 0);

    /* 5.2.6.2: unknown flags, and unmap on a discard -> UNSUPP; nothing changes */
    CHECK_EQ(range_io(&r, T_DISC, 800, 8, 1), S_UNSUPP);
    CHECK_EQ(range_io(&r, T_DISC, 800, 8, 0x80000000u), S_UNSUPP);
    CHECK_EQ(range_io(&r, T_WZ, 800, 8, 2), S_UNSUPP);
    CHECK_EQ(range_io(&r, T_WZ, 800, 8, 3), S_UNSUPP);
    CHECK(host_matches_pattern(&r, 800 * SECT, 8 * SECT));
    /* ranges past the end, overflowing, or longer than max_*_sectors -> IOERR */
    CHECK_EQ(range_io(&r, T_DISC, 2047, 2, 0), S_IOERR);
    CHECK_EQ(range_io(&r, T_WZ, 2048, 1, 0), S_IOERR);
    CHECK_EQ(range_io(&r, T_WZ, ~0ull - 1, 4, 0), S_IOERR);
    CHECK_EQ(range_io(&r, T_DISC, 0, cfg32(&r, C_MAX_DISC) + 1, 0), S_IOERR);
    CHECK_EQ(range_io(&r, T_WZ, 0, cfg32(&r, C_MAX_WZ) + 1, 0), S_IOERR);
    CHECK(host_matches_pattern(&r, 2046 * SECT, SECT));
    CHECK(host_matches_pattern(&r, 0, 63 * SECT));

    /* two ranges where max_discard_seg is 1: refused, nothing discarded */
    uint64_t rg = vh_alloc(&r.h, 32);
    uint8_t *p = vh_ptr(&r.h, rg);
    uint64_t sec0 = 900, sec1 = 950;
    uint32_t n = 8, fl = 0;
    memcpy(p, &sec0, 8), memcpy(p + 8, &n, 4), memcpy(p + 12, &fl, 4);
    memcpy(p + 16, &sec1, 8), memcpy(p + 24, &n, 4), memcpy(p + 28, &fl, 4);
    int st = io(&r, T_DISC, 0, rg, 32, false, 1, false);
    CHECK(st == S_UNSUPP || st == S_IOERR);
    CHECK(host_matches_pattern(&r, 900 * SECT, 8 * SECT));
    CHECK(host_matches_pattern(&r, 950 * SECT, 8 * SECT));
    /* the range on the wrong side (device-writable) */
    uint64_t rgw = vh_alloc(&r.h, 16);
    st = io(&r, T_WZ, 0, rgw, 16, true, 1, false);
    CHECK(st == S_UNSUPP || st == S_IOERR);

    /* where the filesystem cannot punch holes, WRITE_ZEROES still reads back zeroes */
    blk_debug_disable_punch(r.be);
    CHECK_EQ(range_io(&r, T_WZ, 1000, 40, 0), S_OK);
    CHECK(host_equals(&r, 1000 * SECT, zeros, 40 * SECT));
    CHECK(host_matches_pattern(&r, 1040 * SECT, SECT));
    CHECK_EQ(range_io(&r, T_DISC, 1100, 8, 0), S_OK); /* a hint: done as nothing */
    CHECK_EQ(vh_rd(&r.h, VH_STATUS) & VIRTIO_STATUS_NEEDS_RESET, 0);
    free(zeros);
out:
    rig_close(&r);
}

/* ---- read-only disks ---------------------------------------------------------------------- */

TEST(vblk_readonly)
{
    struct rig r;
    struct rig_opts o = {.readonly = true, .serial = "ro"};
    if (!rig_open(&r, 256, &o)) goto out;
    uint64_t f = vh_dev_features(&r.h);
    CHECK(f & F_RO);
    CHECK(!(f & F_DISCARD));
    CHECK(!(f & F_WZ));
    CHECK(r.h.features & F_RO);

    uint64_t w = vh_alloc(&r.h, 4 * SECT);
    fill_random(vh_ptr(&r.h, w), 4 * SECT, 5);
    CHECK_EQ(io(&r, T_OUT, 10, w, 4 * SECT, false, 2, false), S_IOERR);
    CHECK_EQ(io(&r, T_OUT, 10, w, 4 * SECT, false, 2, true), S_IOERR);
    /* a driver that sends them anyway */
    CHECK_EQ(range_io(&r, T_DISC, 10, 4, 0), S_IOERR);
    CHECK_EQ(range_io(&r, T_WZ, 10, 4, 0), S_IOERR);
    CHECK_EQ(range_io(&r, T_WZ, 10, 4, 1), S_IOERR);
    CHECK(host_matches_pattern(&r, 0, 256 * SECT));
    CHECK_EQ(stats(&r).errors, 5);
    CHECK_EQ(stats(&r).writes, 0);

    /* reads, flushes and GET_ID work */
    CHECK_EQ(io(&r, T_IN, 10, w, 4 * SECT, true, 3, false), S_OK);
    CHECK(guest_matches_pattern(&r, w, 10 * SECT, 4 * SECT));
    CHECK_EQ(io(&r, T_FLUSH, 0, 0, 0, false, 0, false), S_OK);
    uint64_t id = vh_alloc(&r.h, 32);
    int st;
    uint32_t used;
    get_id(&r, id, false, &st, &used);
    CHECK_EQ(st, S_OK);
    CHECK(!memcmp(vh_ptr(&r.h, id), "ro\0", 3));
out:
    rig_close(&r);
}

/* ---- bad requests that carry a status: IOERR / UNSUPP, and the device keeps working -------- */

TEST(vblk_bad_requests_fail_and_device_continues)
{
    struct rig r;
    struct rig_opts o = {0};
    if (!rig_open(&r, 128, &o)) goto out;
    uint64_t buf = vh_alloc(&r.h, 4 * SECT), good = vh_alloc(&r.h, SECT);
    unsigned nbad = 0;
#define BAD(expr, want)                                                                            \
    do {                                                                                           \
        CHECK_EQ(expr, want);                                                                      \
        nbad++;                                                                                    \
        /* the next good request is served */                                                      \
        memset(vh_ptr(&r.h, good), 0, SECT);                                                       \
        CHECK_EQ(io(&r, T_IN, 5, good, SECT, true, 1, false), S_OK);                               \
        CHECK(guest_matches_pattern(&r, good, 5 * SECT, SECT));                                    \
    } while (0)

    /* past the end of the disk, straddling it, overflowing sector * 512 */
    BAD(io(&r, T_IN, 128, buf, SECT, true, 1, false), S_IOERR);
    BAD(io(&r, T_IN, 127, buf, 2 * SECT, true, 1, false), S_IOERR);
    BAD(io(&r, T_OUT, 128, buf, SECT, false, 1, false), S_IOERR);
    BAD(io(&r, T_IN, ~0ull, buf, SECT, true, 1, false), S_IOERR);
    BAD(io(&r, T_IN, 1ull << 55, buf, SECT, true, 1, false), S_IOERR);
    /* lengths that are not whole sectors */
    BAD(io(&r, T_IN, 0, buf, 100, true, 1, false), S_IOERR);
    BAD(io(&r, T_IN, 0, buf, SECT + 1, true, 2, false), S_IOERR);
    BAD(io(&r, T_OUT, 0, buf, 511, false, 1, false), S_IOERR);
    /* data on the wrong side: writable data for OUT, readable data for IN */
    fill_random(vh_ptr(&r.h, buf), 4 * SECT, 6);
    BAD(io(&r, T_OUT, 0, buf, SECT, true, 1, false), S_IOERR);
    uint8_t keep[SECT];
    memcpy(keep, vh_ptr(&r.h, buf), SECT);
    BAD(io(&r, T_IN, 0, buf, SECT, false, 1, false), S_IOERR);
    CHECK(!memcmp(keep, vh_ptr(&r.h, buf), SECT)); /* nothing read into a readable buffer */
    /* unknown and unsupported types (2, 3: legacy SCSI/ident; 10: GET_LIFETIME; 14: SECURE
     * ERASE; zoned; legacy barrier flag) */
    static const uint32_t types[] = {2, 3, 5, 7, 10, 14, 16, 0x80000000u, 0x80000001u, ~0u};
    for (unsigned i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        BAD(io(&r, types[i], 0, buf, SECT, true, 1, false), S_UNSUPP);
    /* nothing above wrote to the image */
    CHECK(host_matches_pattern(&r, 0, 128 * SECT));

    struct vblk_stats s = stats(&r);
    CHECK_EQ(s.errors, nbad);
    CHECK_EQ(s.writes, 0);
    CHECK_EQ(s.bad_requests, 0);
    CHECK_EQ(vh_rd(&r.h, VH_STATUS) & VIRTIO_STATUS_NEEDS_RESET, 0);
    CHECK_EQ(vh_rd(&r.h, VH_INT_STATUS) & VIRTIO_INT_CONFIG, 0);

    /* a read of no data at all: completes (with a status the guest can read) */
    uint16_t before = vh_used_idx(&r.h);
    uint64_t st = submit(&r, T_IN, 0, 0, 0, true, 0, false, NULL);
    run(&r);
    CHECK_EQ(vh_used_idx(&r.h), (uint16_t)(before + 1));
    CHECK(*vh_ptr(&r.h, st) == S_OK || *vh_ptr(&r.h, st) == S_IOERR);
#undef BAD
out:
    rig_close(&r);
}

/* ---- hostile chains: NEEDS_RESET, vessel survives, a reset brings the device back ---------- */

struct hostile {
    const char *name;
    bool no_indirect; /* negotiate without VIRTIO_F_INDIRECT_DESC */
    bool none_taken;  /* the ring itself is bad: not even the good request before is taken */
    /* Build the bad request (and make it available). */
    void (*build)(struct rig *r);
};

static void add(struct rig *r, const struct vh_seg *s, unsigned n, bool indirect)
{
    vh_avail_add(&r->h, vh_chain(&r->h, s, n, indirect));
}

static void b_only_writable_byte(struct rig *r)
{
    struct vh_seg s[] = {{mk_status(r), 1, true}};
    add(r, s, 1, false);
}
static void b_short_header(struct rig *r)
{
    struct vh_seg s[] = {{mk_hdr(r, T_IN, 0), 8, false},
                         {vh_alloc(&r->h, SECT), SECT, true},
                         {mk_status(r), 1, true}};
    add(r, s, 3, false);
}
static void b_zero_len_header(struct rig *r)
{
    struct vh_seg s[] = {{mk_hdr(r, T_FLUSH, 0), 0, false}, {mk_status(r), 1, true}};
    add(r, s, 2, false);
}
static void b_write_only_header(struct rig *r)
{
    struct vh_seg s[] = {{mk_hdr(r, T_FLUSH, 0), 16, true}, {mk_status(r), 1, true}};
    add(r, s, 2, false);
}
static void b_no_status(struct rig *r)
{
    struct vh_seg s[] = {{mk_hdr(r, T_FLUSH, 0), 16, false}};
    add(r, s, 1, false);
}
static void b_out_no_status(struct rig *r)
{
    struct vh_seg s[] = {{mk_hdr(r, T_OUT, 0), 16, false}, {vh_alloc(&r->h, SECT), SECT, false}};
    add(r, s, 2, true);
}
static void b_zero_len_status(struct rig *r)
{
    struct vh_seg s[] = {{mk_hdr(r, T_FLUSH, 0), 16, false}, {mk_status(r), 0, true}};
    add(r, s, 2, false);
}
/* Two descriptors pointing at each other. */
static void b_loop(struct rig *r)
{
    uint16_t a = vh_take_desc(&r->h), b = vh_take_desc(&r->h);
    vh_desc(&r->h, vh_desc_gpa(), a, mk_hdr(r, T_IN, 0), 16, VIRTQ_DESC_F_NEXT, b);
    vh_desc(&r->h, vh_desc_gpa(), b, vh_alloc(&r->h, SECT), SECT,
            VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, a);
    vh_avail_add(&r->h, a);
}
/* A descriptor that links to itself. */
static void b_self_loop(struct rig *r)
{
    uint16_t a = vh_take_desc(&r->h);
    vh_desc(&r->h, vh_desc_gpa(), a, mk_status(r), 1, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, a);
    vh_avail_add(&r->h, a);
}
/* A loop inside an indirect table. */
static void b_indirect_loop(struct rig *r)
{
    uint64_t t = vh_alloc(&r->h, 48);
    vh_desc(&r->h, t, 0, mk_hdr(r, T_IN, 0), 16, VIRTQ_DESC_F_NEXT, 1);
    vh_desc(&r->h, t, 1, vh_alloc(&r->h, SECT), SECT, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
    vh_desc(&r->h, t, 2, mk_status(r), 1, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
    uint16_t hd = vh_take_desc(&r->h);
    vh_desc(&r->h, vh_desc_gpa(), hd, t, 48, VIRTQ_DESC_F_INDIRECT, 0);
    vh_avail_add(&r->h, hd);
}
static void b_data_past_ram(struct rig *r)
{
    struct vh_seg s[] = {{mk_hdr(r, T_IN, 0), 16, false},
                         {VH_RAM_BASE + RAM_SIZE, SECT, true},
                         {mk_status(r), 1, true}};
    add(r, s, 3, false);
}
static void b_data_straddles_ram_end(struct rig *r)
{
    struct vh_seg s[] = {{mk_hdr(r, T_IN, 0), 16, false},
                         {VH_RAM_BASE + RAM_SIZE - 256, SECT, true},
                         {mk_status(r), 1, true}};
    add(r, s, 3, false);
}
static void b_header_below_ram(struct rig *r)
{
    struct vh_seg s[] = {{0x1000, 16, false}, {mk_status(r), 1, true}};
    add(r, s, 2, false);
}
static void b_status_outside_ram(struct rig *r)
{
    struct vh_seg s[] = {{mk_hdr(r, T_FLUSH, 0), 16, false}, {VH_RAM_BASE - 1, 1, true}};
    add(r, s, 2, true);
}
static void b_length_wraps(struct rig *r)
{
    struct vh_seg s[] = {{mk_hdr(r, T_IN, 0), 16, false},
                         {0xfffffffffffffe00ull, 0x400, true},
                         {mk_status(r), 1, true}};
    add(r, s, 3, false);
}
static void b_huge_length(struct rig *r)
{
    struct vh_seg s[] = {{mk_hdr(r, T_IN, 0), 16, false},
                         {VH_RAM_BASE + VH_DATA_OFF, 0xfffffe00u, true},
                         {mk_status(r), 1, true}};
    add(r, s, 3, false);
}
static void b_indirect_table_outside_ram(struct rig *r)
{
    uint16_t hd = vh_take_desc(&r->h);
    vh_desc(&r->h, vh_desc_gpa(), hd, VH_RAM_BASE + RAM_SIZE - 32, 64, VIRTQ_DESC_F_INDIRECT, 0);
    vh_avail_add(&r->h, hd);
}
static void b_next_out_of_range(struct rig *r)
{
    uint16_t a = vh_take_desc(&r->h);
    vh_desc(&r->h, vh_desc_gpa(), a, mk_hdr(r, T_FLUSH, 0), 16, VIRTQ_DESC_F_NEXT, r->h.num);
    vh_avail_add(&r->h, a);
}
/* 258 buffers in one indirect table: more than VQ_MAX_SEGS */
static void b_too_many_segments(struct rig *r)
{
    static struct vh_seg s[VQ_MAX_SEGS + 2];
    s[0] = (struct vh_seg){mk_hdr(r, T_IN, 0), 16, false};
    uint64_t data = vh_alloc(&r->h, VQ_MAX_SEGS * SECT);
    for (unsigned i = 1; i <= VQ_MAX_SEGS; i++)
        s[i] = (struct vh_seg){data + (i - 1) * SECT, SECT, true};
    s[VQ_MAX_SEGS + 1] = (struct vh_seg){mk_status(r), 1, true};
    add(r, s, VQ_MAX_SEGS + 2, true);
}
/* A direct chain of 10 descriptors whose last links back to its head: the walk passes more
 * descriptors than the queue has. */
static void b_chain_longer_than_queue(struct rig *r)
{
    uint16_t d[10];
    for (int i = 0; i < 10; i++)
        d[i] = vh_take_desc(&r->h);
    for (int i = 0; i < 10; i++)
        vh_desc(&r->h, vh_desc_gpa(), d[i], i ? vh_alloc(&r->h, SECT) : mk_hdr(r, T_IN, 0),
                i ? SECT : 16, VIRTQ_DESC_F_NEXT | (i ? VIRTQ_DESC_F_WRITE : 0), d[(i + 1) % 10]);
    vh_avail_add(&r->h, d[0]);
}
static void b_indirect_in_indirect(struct rig *r)
{
    uint64_t inner = vh_alloc(&r->h, 32), outer = vh_alloc(&r->h, 32);
    vh_desc(&r->h, inner, 0, mk_hdr(r, T_FLUSH, 0), 16, VIRTQ_DESC_F_NEXT, 1);
    vh_desc(&r->h, inner, 1, mk_status(r), 1, VIRTQ_DESC_F_WRITE, 0);
    vh_desc(&r->h, outer, 0, inner, 32, VIRTQ_DESC_F_INDIRECT, 0);
    uint16_t hd = vh_take_desc(&r->h);
    vh_desc(&r->h, vh_desc_gpa(), hd, outer, 16, VIRTQ_DESC_F_INDIRECT, 0);
    vh_avail_add(&r->h, hd);
}
static void b_indirect_with_next(struct rig *r)
{
    uint64_t t = vh_alloc(&r->h, 32);
    vh_desc(&r->h, t, 0, mk_hdr(r, T_FLUSH, 0), 16, VIRTQ_DESC_F_NEXT, 1);
    vh_desc(&r->h, t, 1, mk_status(r), 1, VIRTQ_DESC_F_WRITE, 0);
    uint16_t a = vh_take_desc(&r->h), b = vh_take_desc(&r->h);
    vh_desc(&r->h, vh_desc_gpa(), a, t, 32, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, b);
    vh_desc(&r->h, vh_desc_gpa(), b, mk_status(r), 1, VIRTQ_DESC_F_WRITE, 0);
    vh_avail_add(&r->h, a);
}
static void b_indirect_bad_len(struct rig *r)
{
    uint64_t t = vh_alloc(&r->h, 32);
    vh_desc(&r->h, t, 0, mk_hdr(r, T_FLUSH, 0), 16, VIRTQ_DESC_F_NEXT, 1);
    vh_desc(&r->h, t, 1, mk_status(r), 1, VIRTQ_DESC_F_WRITE, 0);
    uint16_t hd = vh_take_desc(&r->h);
    vh_desc(&r->h, vh_desc_gpa(), hd, t, 24, VIRTQ_DESC_F_INDIRECT, 0);
    vh_avail_add(&r->h, hd);
}
static void b_indirect_zero_len(struct rig *r)
{
    uint16_t hd = vh_take_desc(&r->h);
    vh_desc(&r->h, vh_desc_gpa(), hd, vh_alloc(&r->h, 16), 0, VIRTQ_DESC_F_INDIRECT, 0);
    vh_avail_add(&r->h, hd);
}
static void b_indirect_not_negotiated(struct rig *r)
{
    struct vh_seg s[] = {{mk_hdr(r, T_FLUSH, 0), 16, false}, {mk_status(r), 1, true}};
    add(r, s, 2, true);
}
static void b_readable_after_writable(struct rig *r)
{
    struct vh_seg s[] = {{mk_hdr(r, T_IN, 0), 16, false},
                         {mk_status(r), 1, true},
                         {vh_alloc(&r->h, SECT), SECT, false},
                         {mk_status(r), 1, true}};
    add(r, s, 4, false);
}
static void b_head_out_of_range(struct rig *r)
{
    vh_avail_add(&r->h, r->h.num);
}
static void b_avail_idx_jumps(struct rig *r)
{
    /* one real entry, but the index claims num + 1 more than the device has taken */
    struct vh_seg s[] = {{mk_hdr(r, T_FLUSH, 0), 16, false}, {mk_status(r), 1, true}};
    add(r, s, 2, false);
    r->h.avail_idx = (uint16_t)(r->h.avail_idx + r->h.num);
    vh_put16(&r->h, vh_avail_gpa() + 2, r->h.avail_idx);
}

static const struct hostile hostiles[] = {
    {"only a writable byte", false, false, b_only_writable_byte},
    {"header shorter than 16 bytes", false, false, b_short_header},
    {"zero-length header", false, false, b_zero_len_header},
    {"write-only header", false, false, b_write_only_header},
    {"no status byte", false, false, b_no_status},
    {"OUT without status byte", false, false, b_out_no_status},
    {"zero-length status", false, false, b_zero_len_status},
    {"descriptor loop", false, false, b_loop},
    {"descriptor linked to itself", false, false, b_self_loop},
    {"loop in an indirect table", false, false, b_indirect_loop},
    {"data past the end of RAM", false, false, b_data_past_ram},
    {"data straddling the end of RAM", false, false, b_data_straddles_ram_end},
    {"header below RAM", false, false, b_header_below_ram},
    {"status outside RAM", false, false, b_status_outside_ram},
    {"address + length wraps", false, false, b_length_wraps},
    {"4 GiB length", false, false, b_huge_length},
    {"indirect table outside RAM", false, false, b_indirect_table_outside_ram},
    {"next index out of range", false, false, b_next_out_of_range},
    {"more segments than VQ_MAX_SEGS", false, false, b_too_many_segments},
    {"chain longer than the queue", false, false, b_chain_longer_than_queue},
    {"indirect in indirect", false, false, b_indirect_in_indirect},
    {"INDIRECT with NEXT", false, false, b_indirect_with_next},
    {"indirect length not a multiple of 16", false, false, b_indirect_bad_len},
    {"indirect length 0", false, false, b_indirect_zero_len},
    {"INDIRECT not negotiated", true, false, b_indirect_not_negotiated},
    {"readable after writable", false, false, b_readable_after_writable},
    {"head index out of range", false, false, b_head_out_of_range},
    {"avail idx jumps past the queue size", false, true, b_avail_idx_jumps},
};

static void hostile_case(const struct hostile *hc)
{
    struct rig r;
    uint64_t feats = hc->no_indirect ? F_ALL & ~F_IND : F_ALL;
    struct rig_opts o = {.features = feats, .num = 16};
    enum log_level lv = log_current_level;
    log_current_level = LOG_ERROR; /* the device logs a warning per malformed request */
    if (!rig_open(&r, 64, &o)) goto out;

    /* good, bad, good: all available before one kick */
    uint64_t g1 = vh_alloc(&r.h, SECT), g2 = vh_alloc(&r.h, SECT);
    uint16_t h1;
    uint64_t st1 = submit(&r, T_IN, 1, g1, SECT, true, 1, false, &h1);
    hc->build(&r);
    uint64_t st2 = submit(&r, T_IN, 2, g2, SECT, true, 1, false, NULL);
    uint32_t gen = vh_rd(&r.h, VH_CONFIG_GEN);
    int raises = r.h.irq.raises;
    run(&r);

    /* the request before the bad one completed; nothing after it was taken */
    unsigned taken = hc->none_taken ? 0 : 1;
    CHECK_EQ(vh_used_idx(&r.h), taken);
    if (taken) {
        CHECK_EQ(vh_used_id(&r.h, 0), h1);
        CHECK_EQ(*vh_ptr(&r.h, st1), S_OK);
        CHECK(guest_matches_pattern(&r, g1, SECT, SECT));
    }
    CHECK_EQ(*vh_ptr(&r.h, st2), 0xff);
    /* 2.1.2: DEVICE_NEEDS_RESET, and a configuration change notification */
    uint32_t status = vh_rd(&r.h, VH_STATUS);
    CHECK(status & VIRTIO_STATUS_NEEDS_RESET);
    CHECK(status & VIRTIO_STATUS_DRIVER_OK);
    CHECK(vh_rd(&r.h, VH_INT_STATUS) & VIRTIO_INT_CONFIG);
    CHECK(vh_rd(&r.h, VH_CONFIG_GEN) != gen);
    CHECK(r.h.irq.level);
    CHECK(r.h.irq.raises > raises || r.h.irq.level);
    struct vblk_stats s = stats(&r);
    CHECK_EQ(s.bad_requests, 1);
    CHECK_EQ(s.reads, taken);
    /* while it needs a reset, kicks (and the process hook) take nothing more */
    vh_kick(&r.h);
    vblk_process_and_wait(r.d);
    CHECK_EQ(vh_used_idx(&r.h), taken);
    CHECK_EQ(*vh_ptr(&r.h, st2), 0xff);
    CHECK_EQ(stats(&r).reads, taken);

    /* the driver resets the device (Status = 0) and sets it up again: it works */
    vh_wr(&r.h, VH_STATUS, 0);
    CHECK_EQ(vh_rd(&r.h, VH_STATUS), 0);
    CHECK_EQ(vh_rd(&r.h, VH_INT_STATUS), 0);
    CHECK(!r.h.irq.level);
    CHECK_EQ(vh_setup(&r.h, feats, 16), 0);
    CHECK_EQ(vh_rd(&r.h, VH_STATUS) & VIRTIO_STATUS_NEEDS_RESET, 0);
    memset(vh_ptr(&r.h, g2), 0, SECT);
    CHECK_EQ(io(&r, T_IN, 2, g2, SECT, true, 1, false), S_OK);
    CHECK(guest_matches_pattern(&r, g2, 2 * SECT, SECT));
    CHECK_EQ(io(&r, T_OUT, 3, g2, SECT, false, 1, !hc->no_indirect), S_OK);
    CHECK(host_equals(&r, 3 * SECT, vh_ptr(&r.h, g2), SECT));
out:
    log_current_level = lv;
    rig_close(&r);
}

TEST(vblk_hostile_chains)
{
    for (unsigned i = 0; i < sizeof(hostiles) / sizeof(hostiles[0]); i++) {
        int before = test_failures_in_current;
        hostile_case(&hostiles[i]);
        if (test_failures_in_current != before)
            fprintf(stderr, "  ^ in case \"%s\"\n", hostiles[i].name);
    }
}

/* ---- many requests in flight --------------------------------------------------------------- */

static void many_in_flight(const char *engine, bool event_idx)
{
    struct rig r;
    struct rig_opts o = {.engine = engine, .features = event_idx ? F_ALL : F_ALL & ~F_EVT};
    if (!rig_open(&r, 1024, &o)) goto out;
    enum { N = 64 };
    uint64_t data[N], st[N];
    uint16_t head[N];
    for (int round = 0; round < 6; round++) {
        uint16_t base = vh_used_idx(&r.h);
        int irq0 = r.h.irq.raises;
        /* even: reads of distinct sectors; odd: writes of other sectors (one batch) */
        for (int i = 0; i < N; i++) {
            data[i] = vh_alloc(&r.h, 2 * SECT);
            uint64_t sector = (uint64_t)(round * N + i) % 500 * 2;
            if (i & 1) {
                fill_random(vh_ptr(&r.h, data[i]), 2 * SECT, (unsigned)(round * N + i));
                st[i] = submit(&r, T_OUT, 1000 - sector, data[i], 2 * SECT, false, 2, round & 1,
                               &head[i]);
            } else {
                st[i] = submit(&r, T_IN, sector, data[i], 2 * SECT, true, 2, round & 1, &head[i]);
            }
        }
        run(&r);
        CHECK_EQ(vh_used_idx(&r.h), (uint16_t)(base + N));
        /* every head exactly once, with the right length */
        int seen[VQ_MAX_SIZE] = {0};
        for (int i = 0; i < N; i++)
            seen[vh_used_id(&r.h, (uint16_t)(base + i)) % VQ_MAX_SIZE]++;
        for (int i = 0; i < N; i++) {
            CHECK_EQ(seen[head[i]], 1);
            CHECK_EQ(*vh_ptr(&r.h, st[i]), S_OK);
            uint64_t sector = (uint64_t)(round * N + i) % 500 * 2;
            if (i & 1)
                CHECK(host_equals(&r, (1000 - sector) * SECT, vh_ptr(&r.h, data[i]), 2 * SECT));
            else if (round == 0)
                CHECK(guest_matches_pattern(&r, data[i], sector * SECT, 2 * SECT));
        }
        for (int i = 0; i < N; i++) {
            uint16_t u = (uint16_t)(base + i);
            uint32_t id = vh_used_id(&r.h, u);
            int k = 0;
            while (k < N && head[k] != id)
                k++;
            if (k < N) CHECK_EQ(vh_used_len(&r.h, u), k & 1 ? 1 : 2 * SECT + 1);
        }
        CHECK(r.h.irq.raises > irq0);
        /* the driver's interrupt handler: acknowledge, then (event idx) ask for an
         * interrupt at the next completion, as virtqueue_enable_cb() does */
        vh_wr(&r.h, VH_INT_ACK, vh_rd(&r.h, VH_INT_STATUS));
        CHECK(!r.h.irq.level);
        vh_set_used_event(&r.h, vh_used_idx(&r.h));
        /* with event idx, the drained device asks for a kick at the next buffer (2.7.10) */
        if (event_idx) {
            CHECK_EQ(vh_avail_event(&r.h), r.h.avail_idx);
            CHECK(
                vh_need_event(vh_avail_event(&r.h), (uint16_t)(r.h.avail_idx + 1), r.h.avail_idx));
        }
    }
    struct vblk_stats s = stats(&r);
    CHECK_EQ(s.reads, 6 * N / 2);
    CHECK_EQ(s.writes, 6 * N / 2);
    CHECK_EQ(s.errors, 0);
out:
    rig_close(&r);
}

TEST(vblk_many_in_flight_io_uring)
{
    many_in_flight("io_uring", true);
}
TEST(vblk_many_in_flight_threads)
{
    many_in_flight("threads", false);
}

/* ---- interrupts ---------------------------------------------------------------------------- */

TEST(vblk_interrupt_suppression)
{
    struct rig r;
    struct rig_opts o = {.features = F_ALL & ~F_EVT};
    if (!rig_open(&r, 64, &o)) goto out;
    uint64_t b = vh_alloc(&r.h, SECT);
    /* VIRTQ_AVAIL_F_NO_INTERRUPT: the request completes without an interrupt */
    vh_set_avail_flags(&r.h, VIRTQ_AVAIL_F_NO_INTERRUPT);
    CHECK_EQ(io(&r, T_IN, 1, b, SECT, true, 1, false), S_OK);
    CHECK_EQ(r.h.irq.raises, 0);
    CHECK_EQ(vh_rd(&r.h, VH_INT_STATUS), 0);
    vh_set_avail_flags(&r.h, 0);
    CHECK_EQ(io(&r, T_IN, 1, b, SECT, true, 1, false), S_OK);
    CHECK_EQ(r.h.irq.raises, 1);
    CHECK_EQ(vh_rd(&r.h, VH_INT_STATUS), VIRTIO_INT_USED);
out:
    rig_close(&r);
}

TEST(vblk_event_idx_used_event)
{
    struct rig r;
    struct rig_opts o = {0};
    if (!rig_open(&r, 64, &o)) goto out;
    CHECK(r.h.features & F_EVT);
    uint64_t b = vh_alloc(&r.h, SECT);
    CHECK_EQ(io(&r, T_IN, 1, b, SECT, true, 1, false), S_OK); /* used idx 1 */
    CHECK_EQ(r.h.irq.raises, 1);
    vh_wr(&r.h, VH_INT_ACK, VIRTIO_INT_USED);
    /* used_event far ahead: no interrupt for the next completion */
    vh_set_used_event(&r.h, 10);
    CHECK_EQ(io(&r, T_IN, 1, b, SECT, true, 1, false), S_OK); /* used idx 2 */
    CHECK_EQ(r.h.irq.raises, 1);
    CHECK_EQ(vh_rd(&r.h, VH_INT_STATUS), 0);
    /* used_event = 2: the completion that moves used idx past 2 interrupts */
    vh_set_used_event(&r.h, 2);
    CHECK_EQ(io(&r, T_IN, 1, b, SECT, true, 1, false), S_OK); /* used idx 3 */
    CHECK_EQ(r.h.irq.raises, 2);
out:
    rig_close(&r);
}

/* ---- reset and teardown with requests in flight ------------------------------------------- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The driver's side of an asynchronous reset (4.2.2.1): re-read status until it reads 0. */
static bool wait_status_zero(struct vh *h, unsigned ms)
{
    uint64_t end = now_ms() + ms;
    while (vh_rd(h, VH_STATUS) != 0) {
        if (now_ms() > end) return false;
        usleep(1000);
    }
    return true;
}

/* A reset while the backend never completes (the stall test hook): the status write returns
 * at once, status reads non-zero for as long as the request is in flight, nothing is written
 * into the request's buffers or pushed; vblk_destroy and blk_close give up within their
 * bounds (together well under the 1 s a stop may take). */
TEST(vblk_reset_while_backend_stalls)
{
    struct rig r;
    struct rig_opts o = {.stall = true};
    if (!rig_open(&r, 64, &o)) goto out;
    uint64_t b = vh_alloc(&r.h, SECT);
    uint64_t st = submit(&r, T_IN, 3, b, SECT, true, 1, false, NULL);
    vh_kick(&r.h);
    struct vblk_stats s;
    vblk_get_stats(r.d, &s);
    CHECK_EQ(s.in_flight, 1);
    uint64_t t0 = now_ms();
    vh_wr(&r.h, VH_STATUS, 0);
    CHECK(now_ms() - t0 < 100);
    CHECK(!wait_status_zero(&r.h, 200)); /* still draining: non-zero throughout */
    CHECK(vh_rd(&r.h, VH_STATUS) & VIRTIO_STATUS_DRIVER_OK);
    CHECK_EQ(vh_used_idx(&r.h), 0);
    CHECK_EQ(*vh_ptr(&r.h, st), 0xff);
    CHECK(!r.h.irq.level);
    /* the driver does not wait and starts over: ignored until the reset completes */
    (void)vh_negotiate(&r.h, F_ALL);
    CHECK(virtio_mmio_reset_pending(r.h.t));
    CHECK_EQ(vh_rd(&r.h, VH_STATUS), 0xf); /* what it was: the driver's writes were dropped */
    vblk_get_stats(r.d, &s);
    CHECK_EQ(s.in_flight, 1);

    t0 = now_ms();
    CHECK(!vblk_destroy(r.d)); /* abandoned: the request never completes */
    r.d = NULL;
    blk_close(r.be); /* abandoned too */
    r.be = NULL;
    CHECK(now_ms() - t0 < 1000);
out:
    rig_close(&r);
}

/* The completions of requests in flight at a reset finish it: status reads non-zero until the
 * last one, then 0; they write no status byte and push nothing (the reset driver expects
 * nothing from them); the device then works again. The stall hook holds the requests until the
 * test releases them, so the completions surely come after the reset. */
TEST(vblk_reset_finished_by_last_completion)
{
    struct rig r;
    struct rig_opts o = {.stall = true};
    if (!rig_open(&r, 64, &o)) goto out;
    uint64_t st[3];
    for (int i = 0; i < 3; i++)
        st[i] = submit(&r, T_IN, (uint64_t)i, vh_alloc(&r.h, SECT), SECT, true, 1, false, NULL);
    vh_kick(&r.h);
    vh_wr(&r.h, VH_STATUS, 0);
    CHECK(virtio_mmio_reset_pending(r.h.t));
    CHECK(vh_rd(&r.h, VH_STATUS) != 0);
    blk_debug_release_stalled(r.be);
    CHECK(wait_status_zero(&r.h, 5000));
    CHECK_EQ(vh_used_idx(&r.h), 0);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(*vh_ptr(&r.h, st[i]), 0xff);
    CHECK(!r.h.irq.level);
    struct virtio_mmio_stats ts;
    virtio_mmio_get_stats(r.h.t, &ts);
    CHECK_EQ(ts.resets_deferred, 1);
    struct vblk_stats s;
    vblk_get_stats(r.d, &s);
    CHECK_EQ(s.in_flight, 0);
    /* up again, served normally */
    CHECK_EQ(vh_setup(&r.h, F_ALL, 256), 0);
    uint64_t b = vh_alloc(&r.h, SECT);
    CHECK_EQ(io(&r, T_IN, 9, b, SECT, true, 1, false), S_OK);
    CHECK(guest_matches_pattern(&r, b, 9 * SECT, SECT));
out:
    rig_close(&r);
}

/* A device abandoned at destroy with a guest's reset pending: when its request completes at
 * last, finishing the reset must not touch the interrupt line (the interrupt controller is
 * freed with the machine by then). */
TEST(vblk_abandoned_device_raises_nothing)
{
    struct rig r;
    struct rig_opts o = {.stall = true};
    if (!rig_open(&r, 64, &o)) goto out;
    /* GET_ID completes at once (no backend I/O): used interrupt, line high */
    uint64_t id = vh_alloc(&r.h, VIRTIO_BLK_SERIAL_LEN);
    submit(&r, T_GET_ID, 0, id, VIRTIO_BLK_SERIAL_LEN, true, 1, false, NULL);
    vh_kick(&r.h);
    CHECK(r.h.irq.level);
    submit(&r, T_IN, 2, vh_alloc(&r.h, SECT), SECT, true, 1, false, NULL);
    vh_kick(&r.h);
    vh_wr(&r.h, VH_STATUS, 0); /* pending: the read is stalled */
    CHECK(virtio_mmio_reset_pending(r.h.t));
    int changes = r.h.irq.changes;
    CHECK(!vblk_destroy(r.d)); /* abandoned */
    r.d = NULL;
    blk_debug_release_stalled(r.be); /* the read completes now, finishing the reset */
    blk_close(r.be);                 /* waits for it: done in time, so not abandoned */
    r.be = NULL;
    CHECK_EQ(r.h.irq.changes, changes);
    CHECK(r.h.irq.level);
out:
    rig_close(&r);
}

/* A guest flooding the queue by publishing heads again while they are in flight: at most the
 * queue size is ever in flight (each request holds host memory), and the device ends in
 * NEEDS_RESET. The backend stalls, so nothing completes and frees a head meanwhile. */
TEST(vblk_flood_republished_heads_bounded)
{
    struct rig r;
    struct rig_opts o = {.stall = true};
    if (!rig_open(&r, 64, &o)) goto out;
    /* 256 distinct heads (indirect chains: one queue descriptor each) fill the queue */
    uint16_t heads[256];
    for (int i = 0; i < 256; i++)
        submit(&r, T_IN, (uint64_t)i % 64, vh_alloc(&r.h, SECT), SECT, true, 1, true, &heads[i]);
    vh_kick(&r.h);
    struct vblk_stats s;
    vblk_get_stats(r.d, &s);
    CHECK_EQ(s.in_flight, 256);
    CHECK_EQ(vh_rd(&r.h, VH_STATUS) & VIRTIO_STATUS_NEEDS_RESET, 0);
    /* now re-publish heads that are in flight, kicking each time, many times over */
    for (int i = 0; i < 10000; i++) {
        vh_avail_add(&r.h, heads[i % 256]);
        vh_kick(&r.h);
    }
    vblk_get_stats(r.d, &s);
    CHECK_EQ(s.in_flight, 256);
    CHECK_EQ(s.bad_requests, 1);
    CHECK(vh_rd(&r.h, VH_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
    CHECK(vh_rd(&r.h, VH_INT_STATUS) & VIRTIO_INT_CONFIG);
    CHECK(!vblk_destroy(r.d));
    r.d = NULL;
    blk_close(r.be);
    r.be = NULL;
out:
    rig_close(&r);
}

/* The same head published twice in one batch, with a backend that completes: the second copy
 * is refused even though the queue is far from full. */
TEST(vblk_same_head_twice_needs_reset)
{
    struct rig r;
    struct rig_opts o = {.stall = true};
    if (!rig_open(&r, 64, &o)) goto out;
    uint16_t h;
    submit(&r, T_IN, 1, vh_alloc(&r.h, SECT), SECT, true, 1, false, &h);
    vh_avail_add(&r.h, h);
    vh_kick(&r.h);
    struct vblk_stats s;
    vblk_get_stats(r.d, &s);
    CHECK_EQ(s.in_flight, 1);
    CHECK(vh_rd(&r.h, VH_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
    CHECK(!vblk_destroy(r.d));
    r.d = NULL;
    blk_close(r.be);
    r.be = NULL;
out:
    rig_close(&r);
}

TEST(vblk_reset_with_requests_in_flight)
{
    struct rig r;
    struct rig_opts o = {0};
    if (!rig_open(&r, 1024, &o)) goto out;
    for (int i = 0; i < 64; i++)
        submit(&r, T_IN, (uint64_t)i * 8, vh_alloc(&r.h, 8 * SECT), 8 * SECT, true, 2, false, NULL);
    vh_kick(&r.h);
    vh_wr(&r.h, VH_STATUS, 0); /* returns at once; status reads 0 once they are drained */
    CHECK(wait_status_zero(&r.h, 5000));
    CHECK_EQ(vh_rd(&r.h, VH_INT_STATUS), 0);
    CHECK(!r.h.irq.level);
    CHECK(vh_used_idx(&r.h) <= 64);
    CHECK_EQ(vh_setup(&r.h, F_ALL, 256), 0);
    uint64_t b = vh_alloc(&r.h, SECT);
    CHECK_EQ(io(&r, T_IN, 7, b, SECT, true, 1, false), S_OK);
    CHECK(guest_matches_pattern(&r, b, 7 * SECT, SECT));
    CHECK_EQ(vh_used_idx(&r.h), 1);

    /* destroying the device with requests in flight drains them first (ASan would see a
     * completion touching freed memory) */
    for (int i = 0; i < 64; i++)
        submit(&r, T_IN, (uint64_t)i * 8, vh_alloc(&r.h, 8 * SECT), 8 * SECT, true, 2, true, NULL);
    vh_kick(&r.h);
    vblk_destroy(r.d);
    r.d = NULL;
out:
    rig_close(&r);
}

/* Requests made available and kicked before DRIVER_OK are served once the driver is done
 * (the transport delivers the early kick at start). */
TEST(vblk_requests_before_driver_ok)
{
    struct rig r;
    struct rig_opts o = {0};
    if (!rig_open(&r, 64, &o)) goto out;
    CHECK_EQ(vh_negotiate(&r.h, F_ALL), 0);
    CHECK_EQ(vh_queue_setup(&r.h, 256), 0);
    uint64_t b = vh_alloc(&r.h, SECT);
    uint64_t st = submit(&r, T_IN, 4, b, SECT, true, 1, false, NULL);
    vh_kick(&r.h);
    CHECK_EQ(vh_used_idx(&r.h), 0);
    CHECK_EQ(vh_driver_ok(&r.h), 0);
    vblk_process_and_wait(r.d);
    CHECK_EQ(vh_used_idx(&r.h), 1);
    CHECK_EQ(*vh_ptr(&r.h, st), S_OK);
    CHECK(guest_matches_pattern(&r, b, 4 * SECT, SECT));
out:
    rig_close(&r);
}

/* A completion's interrupt must be raised before the request stops counting as in flight:
 * once nothing is in flight, vblk_destroy() (and a reset) may return and free the device and
 * its transport, which the raising I/O thread is still using. The interrupt line here stalls
 * the I/O thread inside the raise, and the test destroys the device meanwhile: the raise
 * must finish before vblk_destroy returns. */
static pthread_t main_thread;
static atomic_int slow_entered, slow_done, destroyed, late;

static void slow_irq_set(void *ctx, unsigned n, bool level)
{
    (void)ctx, (void)n;
    if (!level || pthread_equal(pthread_self(), main_thread)) return;
    atomic_store(&slow_entered, 1);
    usleep(100 * 1000);
    if (atomic_load(&destroyed)) atomic_store(&late, 1);
    atomic_store(&slow_done, 1);
}

static bool wait_flag(atomic_int *f)
{
    for (int i = 0; i < 2000 && !atomic_load(f); i++)
        usleep(1000);
    return atomic_load(f);
}

TEST(vblk_destroy_waits_for_completion_interrupt)
{
    main_thread = pthread_self();
    atomic_store(&slow_entered, 0), atomic_store(&slow_done, 0);
    atomic_store(&destroyed, 0), atomic_store(&late, 0);
    struct irq_line slow = {.set = slow_irq_set};
    struct rig r;
    /* The thread pool: io_uring completes a read from the page cache on the submitting
     * thread (io_engine.h), which is this one. */
    struct rig_opts o = {.irq = &slow, .engine = "threads"};
    if (!rig_open(&r, 64, &o)) goto out;
    submit(&r, T_IN, 1, vh_alloc(&r.h, SECT), SECT, true, 1, false, NULL);
    vh_kick(&r.h);
    CHECK(wait_flag(&slow_entered)); /* the I/O thread is raising the used interrupt */
    vblk_destroy(r.d);
    atomic_store(&destroyed, 1);
    r.d = NULL;
    CHECK(wait_flag(&slow_done));
    CHECK_EQ(atomic_load(&late), 0);
out:
    rig_close(&r);
}

/* ---- backend swap (PATCH /drives/{id}) ---------------------------------------------------- */

/* A second image of `sectors` sectors, every byte `fill`, opened as the rig's was. */
static struct blk_backend *second_image(char *path, size_t len, uint64_t sectors, uint8_t fill,
                                        bool readonly)
{
    tmp_path(path, len);
    char err[256] = "";
    CHECK_EQ(blk_create_raw(path, sectors * SECT, err, sizeof(err)), 0);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    CHECK(fd >= 0);
    static uint8_t buf[SECT];
    memset(buf, fill, sizeof(buf));
    for (uint64_t s = 0; fd >= 0 && s < sectors; s++)
        CHECK_EQ(pwrite(fd, buf, SECT, (off_t)(s * SECT)), SECT);
    if (fd >= 0) close(fd);
    struct blk_backend *be = NULL;
    struct blk_open_opts bo = {.readonly = readonly};
    CHECK_EQ(blk_open(&be, path, &bo, err, sizeof(err)), 0);
    return be;
}

static uint64_t capacity_of(struct rig *r)
{
    return cfg32(r, C_CAPACITY) | (uint64_t)cfg32(r, C_CAPACITY + 4) << 32;
}

/* The swap itself: new capacity in config space with a config change interrupt and a new
 * ConfigGeneration (4.2.2.1), reads and writes go to the new image only, and its whole new
 * size is usable. */
TEST(vblk_swap_backend_new_size_and_data)
{
    struct rig r;
    struct rig_opts o = {0};
    char path2[256] = "";
    struct blk_backend *be2 = NULL;
    if (!rig_open(&r, 64, &o)) goto out;
    uint64_t b = vh_alloc(&r.h, SECT);
    CHECK_EQ(io(&r, T_IN, 3, b, SECT, true, 1, false), S_OK);
    CHECK(guest_matches_pattern(&r, b, 3 * SECT, SECT));
    CHECK_EQ(capacity_of(&r), 64);
    uint32_t gen = vh_rd(&r.h, VH_CONFIG_GEN);
    vh_wr(&r.h, VH_INT_ACK, vh_rd(&r.h, VH_INT_STATUS));
    int raises = r.h.irq.raises;

    be2 = second_image(path2, sizeof(path2), 200, 0xa5, false);
    if (!be2) goto out;
    CHECK_EQ(vblk_swap_backend(r.d, be2, 1000), 0);
    struct blk_backend *old = r.be;
    r.be = be2; /* rig_close closes the device's backend */
    blk_close(old);
    CHECK_EQ(capacity_of(&r), 200);
    CHECK(vh_rd(&r.h, VH_CONFIG_GEN) != gen);
    CHECK(vh_rd(&r.h, VH_INT_STATUS) & VIRTIO_INT_CONFIG);
    CHECK_EQ(r.h.irq.raises, raises + 1);
    CHECK_EQ(stats(&r).swaps, 1);

    /* sector 150: past the old end, inside the new one */
    uint64_t b2 = vh_alloc(&r.h, SECT);
    CHECK_EQ(io(&r, T_IN, 150, b2, SECT, true, 1, false), S_OK);
    CHECK(all_bytes(vh_ptr(&r.h, b2), SECT, 0xa5));
    CHECK_EQ(io(&r, T_IN, 200, b2, SECT, true, 1, false), S_IOERR); /* the new end holds */
    uint64_t w = vh_alloc(&r.h, SECT);
    memset(vh_ptr(&r.h, w), 0x3c, SECT);
    CHECK_EQ(io(&r, T_OUT, 5, w, SECT, false, 1, false), S_OK);
    CHECK(host_matches_pattern(&r, 5 * SECT, SECT)); /* the old image is untouched */
    int fd2 = open(path2, O_RDONLY | O_CLOEXEC);
    uint8_t got[SECT];
    CHECK(fd2 >= 0 && pread(fd2, got, SECT, 5 * SECT) == SECT && all_bytes(got, SECT, 0x3c));
    if (fd2 >= 0) close(fd2);
out:
    rig_close(&r);
    if (path2[0]) unlink(path2);
}

/* A read-only image cannot replace a writable one (VIRTIO_BLK_F_RO was negotiated): refused,
 * nothing changes. */
TEST(vblk_swap_backend_readonly_mismatch)
{
    struct rig r;
    struct rig_opts o = {0};
    char path2[256] = "";
    if (!rig_open(&r, 64, &o)) goto out;
    struct blk_backend *ro = second_image(path2, sizeof(path2), 128, 1, true);
    if (!ro) goto out;
    CHECK_EQ(vblk_swap_backend(r.d, ro, 1000), -EINVAL);
    CHECK_EQ(capacity_of(&r), 64);
    blk_close(ro);
    uint64_t b = vh_alloc(&r.h, SECT);
    CHECK_EQ(io(&r, T_IN, 7, b, SECT, true, 1, false), S_OK);
    CHECK(guest_matches_pattern(&r, b, 7 * SECT, SECT));
out:
    rig_close(&r);
    if (path2[0]) unlink(path2);
}

struct swap_job {
    struct vblk *d;
    struct blk_backend *be;
    unsigned ms;
    int result;
};

static void *swap_thread(void *p)
{
    struct swap_job *j = p;
    j->result = vblk_swap_backend(j->d, j->be, j->ms);
    return NULL;
}

/* Requests in flight at a swap: a swap that cannot drain them in time fails (-EBUSY, bounded,
 * nothing changed); one that can waits for them, and they complete against the old image,
 * while a request the driver queues during the wait is not taken until the swap is done and
 * then goes to the new image. Nothing is lost. */
TEST(vblk_swap_backend_waits_for_in_flight)
{
    struct rig r;
    struct rig_opts o = {.stall = true};
    char path2[256] = "";
    struct blk_backend *be2 = NULL;
    if (!rig_open(&r, 64, &o)) goto out;
    uint64_t b1 = vh_alloc(&r.h, SECT);
    uint64_t st1 = submit(&r, T_IN, 3, b1, SECT, true, 1, false, NULL);
    vh_kick(&r.h);
    CHECK_EQ(stats(&r).in_flight, 1);
    be2 = second_image(path2, sizeof(path2), 128, 0x5a, false);
    if (!be2) goto out;

    uint64_t t0 = now_ms();
    CHECK_EQ(vblk_swap_backend(r.d, be2, 100), -EBUSY);
    CHECK(now_ms() - t0 < 1000);
    CHECK_EQ(capacity_of(&r), 64);
    CHECK(!(vh_rd(&r.h, VH_INT_STATUS) & VIRTIO_INT_CONFIG));
    CHECK(!stats(&r).quiesced);

    struct swap_job j = {r.d, be2, 10000, 1};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, swap_thread, &j), 0);
    bool q = false;
    for (int i = 0; i < 2000 && !(q = stats(&r).quiesced); i++)
        usleep(1000);
    CHECK(q);
    uint64_t b2 = vh_alloc(&r.h, SECT);
    uint64_t st2 = submit(&r, T_IN, 100, b2, SECT, true, 1, false, NULL);
    vh_kick(&r.h);
    CHECK_EQ(stats(&r).in_flight, 1); /* queued, not taken */
    blk_debug_release_stalled(r.be);
    pthread_join(th, NULL);
    CHECK_EQ(j.result, 0);
    struct blk_backend *old = r.be;
    r.be = be2;
    vblk_process_and_wait(r.d);
    blk_close(old);
    CHECK_EQ(vh_used_idx(&r.h), 2);
    CHECK_EQ(*vh_ptr(&r.h, st1), S_OK);
    CHECK(guest_matches_pattern(&r, b1, 3 * SECT, SECT)); /* the old image's data */
    CHECK_EQ(*vh_ptr(&r.h, st2), S_OK);
    CHECK(all_bytes(vh_ptr(&r.h, b2), SECT, 0x5a)); /* sector 100: only the new image has it */
    CHECK_EQ(capacity_of(&r), 128);
    be2 = NULL;
out:
    if (be2) blk_close(be2);
    rig_close(&r);
    if (path2[0]) unlink(path2);
}

/* The device's own backend again (the image was resized on the host, Firecracker's way to
 * announce it): the size is read again while the device is drained; a size that is not a
 * multiple of 512 is refused and the old capacity stays. */
TEST(vblk_swap_backend_same_image_resized)
{
    struct rig r;
    struct rig_opts o = {0};
    if (!rig_open(&r, 64, &o)) goto out;
    CHECK_EQ(ftruncate(r.fd, 96 * SECT), 0);
    uint32_t gen = vh_rd(&r.h, VH_CONFIG_GEN);
    CHECK_EQ(vblk_swap_backend(r.d, r.be, 1000), 0);
    CHECK_EQ(capacity_of(&r), 96);
    CHECK(vh_rd(&r.h, VH_CONFIG_GEN) != gen);
    uint64_t b = vh_alloc(&r.h, SECT);
    CHECK_EQ(io(&r, T_IN, 80, b, SECT, true, 1, false), S_OK);
    CHECK(all_bytes(vh_ptr(&r.h, b), SECT, 0));
    CHECK_EQ(io(&r, T_IN, 3, b, SECT, true, 1, false), S_OK);
    CHECK(guest_matches_pattern(&r, b, 3 * SECT, SECT));
    CHECK_EQ(ftruncate(r.fd, 100 * SECT + 7), 0);
    gen = vh_rd(&r.h, VH_CONFIG_GEN);
    CHECK_EQ(vblk_swap_backend(r.d, r.be, 1000), -EINVAL);
    CHECK_EQ(capacity_of(&r), 96);
    CHECK_EQ(vh_rd(&r.h, VH_CONFIG_GEN), gen);
    CHECK_EQ(io(&r, T_IN, 95, b, SECT, true, 1, false), S_OK);
out:
    rig_close(&r);
}

// SOURCES: src/dev/virtio/blk.c src/dev/virtio/mmio.c src/dev/virtio/virtqueue.c
// SOURCES: src/backend/block/raw.c src/backend/block/io_engine.c src/util/log.c
// SOURCES: src/util/ratelimit.c
// SOURCES: src/backend/block/block.c src/backend/block/qcow2.c src/backend/block/qcow2_blk.c
// SOURCES: src/backend/block/fileops.c
// LIBS: -luring -lz -lzstd
/* libFuzzer harness for virtio-blk behind the virtio-mmio transport, on a real raw image.
 * The fuzzer's bytes become a 64 KiB guest RAM image (descriptor table, avail and used rings,
 * indirect tables, headers, buffers) and a few choices: queue size, ring addresses, the
 * features the driver takes, read-only or writable disk, serial or none. The harness walks
 * the registers as Linux does, kicks queue 0, waits for every request
 * (vblk_process_and_wait) and checks:
 *  - no crash, no sanitizer report (RAM is a heap block: ASan sees writes past either end);
 *  - the images keep their size (nothing written past their end);
 *  - when the run is "clean" (what the device writes cannot change what it reads: writable
 *    buffers, used ring, rings and indirect tables do not overlap), a reference walk of the
 *    rings predicts the outcome: exactly the requests before the first malformed chain
 *    complete, each once, with a status byte of 0, 1 or 2 and a used length within its
 *    writable part; NEEDS_RESET is set iff a malformed chain was met; and guest RAM outside
 *    the writable buffers and the used ring is unchanged.
 *
 * Build and run with tests/fuzz/build.sh 60 fuzz_virtio_blk. Images: two 64 KiB files in
 * $TMPDIR (default /tmp), unlinked at once; their content carries over between runs.
 *
 * Input: HDR header bytes, then the RAM image (zero-padded to RAM_SIZE).
 *   [0]     queue size 1 << (b % 9)
 *   [1]     driver features: bit 0 EVENT_IDX, 1 INDIRECT_DESC, 2 FLUSH, 3 DISCARD,
 *           4 WRITE_ZEROES, 5 SEG_MAX + BLK_SIZE (VERSION_1 always)
 *   [2]     bit 0 read-only disk, bit 1 serial, bit 2 reset the device right after the kick
 *           (requests in flight), then set it up again from the same bytes and run checked
 *   [3..8]  le16 ring offsets: desc * 16, avail * 2, used * 4, each pulled back inside RAM */
#include "backend/block/block.h"
#include "dev/virtio/blk.h"
#include "util/log.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RAM_BASE   0x80000000ull
#define RAM_SIZE   0x10000u
#define HDR        9
#define IMG_SIZE   0x10000u
#define MAX_CHAINS 256

/* virtio-mmio registers (4.2.2) */
enum {
    R_DEV_FEAT = 0x010,
    R_DEV_FEAT_SEL = 0x014,
    R_DRV_FEAT = 0x020,
    R_DRV_FEAT_SEL = 0x024,
    R_QUEUE_SEL = 0x030,
    R_QUEUE_NUM = 0x038,
    R_QUEUE_READY = 0x044,
    R_QUEUE_NOTIFY = 0x050,
    R_STATUS = 0x070,
    R_DESC_LO = 0x080,
    R_DESC_HI = 0x084,
    R_DRIVER_LO = 0x090,
    R_DRIVER_HI = 0x094,
    R_DEVICE_LO = 0x0a0,
    R_DEVICE_HI = 0x0a4,
};

static uint8_t *ram, *snap;
static uint8_t *mark; /* per RAM byte: what the clean-run analysis found there */
enum { M_NONE, M_STRUCT, M_USED, M_WRITE };
static struct blk_backend *be_rw, *be_ro;
static int fd_rw = -1, fd_ro = -1;
static struct guest_mem gm;
static bool debug; /* VESSEL_FUZZ_DEBUG=1: print what each run predicted and saw */

static void fail(const char *why)
{
    fprintf(stderr, "fuzz_virtio_blk: invariant broken: %s\n", why);
    __builtin_trap();
}

static void irq_set(void *ctx, unsigned n, bool level)
{
    (void)ctx, (void)n, (void)level;
}

static struct blk_backend *open_image(const char *tag, bool readonly, int *fd)
{
    const char *dir = getenv("TMPDIR");
    char path[512], err[256];
    snprintf(path, sizeof(path), "%s/vessel-fuzz-vblk-%ld-%s.img", dir && *dir ? dir : "/tmp",
             (long)getpid(), tag);
    unlink(path);
    if (blk_create_raw(path, IMG_SIZE, err, sizeof(err))) {
        fprintf(stderr, "fuzz_virtio_blk: %s\n", err);
        exit(1);
    }
    /* our own descriptor, kept open (closing it would drop the backend's lock): for fstat */
    *fd = open(path, O_RDWR | O_CLOEXEC);
    uint8_t buf[IMG_SIZE];
    for (unsigned i = 0; i < IMG_SIZE; i++)
        buf[i] = (uint8_t)(i * 7 + (i >> 9));
    if (*fd < 0 || pwrite(*fd, buf, IMG_SIZE, 0) != IMG_SIZE) exit(1);
    struct blk_backend *b = NULL;
    struct blk_open_opts o = {.readonly = readonly};
    if (blk_open(&b, path, &o, err, sizeof(err))) {
        fprintf(stderr, "fuzz_virtio_blk: %s\n", err);
        exit(1);
    }
    unlink(path);
    return b;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    log_current_level = LOG_ERROR; /* malformed requests are logged as warnings */
    debug = getenv("VESSEL_FUZZ_DEBUG") != NULL;
    ram = aligned_alloc(4096, RAM_SIZE);
    snap = malloc(RAM_SIZE);
    mark = malloc(RAM_SIZE);
    if (!ram || !snap || !mark) exit(1);
    gm = (struct guest_mem){.ram = ram, .base = RAM_BASE, .size = RAM_SIZE};
    be_rw = open_image("rw", false, &fd_rw);
    be_ro = open_image("ro", true, &fd_ro);
    return 0;
}

/* ---- driver side ---- */

static struct virtio_mmio *tr;

static uint32_t rd(uint64_t off)
{
    return (uint32_t)virtio_mmio_ops.read(tr, off, 4);
}
static void wr(uint64_t off, uint32_t v)
{
    virtio_mmio_ops.write(tr, off, v, 4);
}

struct setup {
    uint16_t num;
    uint64_t wanted;
    uint64_t desc, avail, used; /* offsets in RAM */
};

/* Linux's probe sequence (3.1.1); returns the negotiated features. */
static uint64_t driver_init(const struct setup *s)
{
    wr(R_STATUS, 0);
    wr(R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
    wr(R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    wr(R_DEV_FEAT_SEL, 1);
    uint64_t offered = (uint64_t)rd(R_DEV_FEAT) << 32;
    wr(R_DEV_FEAT_SEL, 0);
    offered |= rd(R_DEV_FEAT);
    uint64_t f = offered & s->wanted;
    wr(R_DRV_FEAT_SEL, 1);
    wr(R_DRV_FEAT, (uint32_t)(f >> 32));
    wr(R_DRV_FEAT_SEL, 0);
    wr(R_DRV_FEAT, (uint32_t)f);
    wr(R_STATUS, rd(R_STATUS) | VIRTIO_STATUS_FEATURES_OK);
    if (!(rd(R_STATUS) & VIRTIO_STATUS_FEATURES_OK)) fail("FEATURES_OK refused");
    wr(R_QUEUE_SEL, 0);
    wr(R_QUEUE_NUM, s->num);
    uint64_t d = RAM_BASE + s->desc, a = RAM_BASE + s->avail, u = RAM_BASE + s->used;
    wr(R_DESC_LO, (uint32_t)d);
    wr(R_DESC_HI, (uint32_t)(d >> 32));
    wr(R_DRIVER_LO, (uint32_t)a);
    wr(R_DRIVER_HI, (uint32_t)(a >> 32));
    wr(R_DEVICE_LO, (uint32_t)u);
    wr(R_DEVICE_HI, (uint32_t)(u >> 32));
    wr(R_QUEUE_READY, 1);
    if (rd(R_QUEUE_READY) != 1) fail("a valid ring layout was refused");
    wr(R_STATUS, rd(R_STATUS) | VIRTIO_STATUS_DRIVER_OK);
    if (!(rd(R_STATUS) & VIRTIO_STATUS_DRIVER_OK)) fail("DRIVER_OK refused");
    return f;
}

/* ---- reference walk over the snapshot (mirrors 2.7.5, 2.7.5.3 and vq_pop's limits) ---- */

struct seg {
    uint32_t off, len; /* in RAM */
};
struct chain {
    uint16_t head;
    uint64_t read_len, write_len;
    uint32_t first_w, nw; /* writable segments: wsegs[first_w .. first_w + nw) */
    bool has_table;
    struct seg table;
    uint32_t status_off; /* RAM offset of the last writable byte */
};
static struct chain chains[MAX_CHAINS];
static struct seg wsegs[MAX_CHAINS * VQ_MAX_SEGS];
static unsigned nwsegs;

static uint16_t get16(uint64_t off)
{
    uint16_t v;
    memcpy(&v, snap + off, 2);
    return v;
}

/* RAM offset of guest range [gpa, gpa + len), or -1 outside (as gm_ptr). */
static int64_t ram_off(uint64_t gpa, uint64_t len)
{
    if (gpa < RAM_BASE) return -1;
    uint64_t off = gpa - RAM_BASE;
    if (off > RAM_SIZE || len > RAM_SIZE - off) return -1;
    return (int64_t)off;
}

static bool walk(const struct setup *s, bool indirect, uint16_t head, struct chain *c)
{
    uint64_t table = s->desc;
    uint32_t table_n = s->num, visited = 0, bufs = 0, i = head;
    bool in_ind = false;
    memset(c, 0, sizeof(*c));
    c->head = head;
    c->first_w = nwsegs;
    for (;;) {
        if (++visited > table_n) return false;
        const uint8_t *p = snap + table + 16ull * i;
        uint64_t addr;
        uint32_t len;
        uint16_t flags, next;
        memcpy(&addr, p, 8), memcpy(&len, p + 8, 4), memcpy(&flags, p + 12, 2);
        memcpy(&next, p + 14, 2);
        if (flags & VIRTQ_DESC_F_INDIRECT) {
            if (!indirect || in_ind || (flags & VIRTQ_DESC_F_NEXT)) return false;
            if (len == 0 || len % 16) return false;
            int64_t t = ram_off(addr, len);
            if (t < 0) return false;
            table = (uint64_t)t;
            table_n = len / 16;
            c->has_table = true;
            c->table = (struct seg){(uint32_t)t, len};
            visited = 0;
            in_ind = true;
            i = 0;
            continue;
        }
        if (++bufs > VQ_MAX_SEGS) return false;
        bool w = flags & VIRTQ_DESC_F_WRITE;
        if (len) {
            int64_t o = ram_off(addr, len);
            if (o < 0) return false;
            if (!w && c->nw) return false;
            if (w) {
                wsegs[nwsegs++] = (struct seg){(uint32_t)o, len};
                c->nw++;
                c->write_len += len;
                c->status_off = (uint32_t)o + len - 1;
            } else {
                c->read_len += len;
            }
        }
        if (!(flags & VIRTQ_DESC_F_NEXT)) return true;
        if (next >= table_n) return false;
        i = next;
    }
}

/* Mark [off, off + len) as `m`. Returns false on a conflict that makes the run unclean. */
static bool mark_range(uint32_t off, uint32_t len, uint8_t m)
{
    for (uint32_t i = off; i < off + len; i++) {
        uint8_t old = mark[i];
        if (old == M_NONE || (old == M_STRUCT && m == M_STRUCT)) {
            mark[i] = m;
            continue;
        }
        return false;
    }
    return true;
}

struct expect {
    bool clean;
    unsigned ndone;   /* requests that complete */
    bool needs_reset; /* a malformed chain (or ring) is met */
};

static struct expect predict(const struct setup *s, uint64_t features)
{
    struct expect e = {0};
    bool indirect = features & (1ull << VIRTIO_F_INDIRECT_DESC);
    nwsegs = 0;
    uint16_t avail_idx = get16(s->avail + 2), pending = avail_idx; /* last_avail starts at 0 */
    unsigned stop_at = pending; /* index of the first chain the device refuses */
    if (pending > s->num) {
        e.needs_reset = true;
        stop_at = 0;
    }
    static uint8_t taken[VQ_MAX_SIZE];
    memset(taken, 0, sizeof(taken));
    bool dup = false;
    for (unsigned j = 0; j < stop_at; j++) {
        uint16_t head = get16(s->avail + 4 + 2u * (j & (s->num - 1u)));
        /* A head published again while in flight is refused (NEEDS_RESET); one whose first
         * request already completed is taken again. Which of the two happens depends on how
         * fast the backend is, so such a run is not predicted (not "clean"). */
        if (head < s->num && taken[head]) dup = true;
        if (head < s->num) taken[head] = 1;
        unsigned before = nwsegs;
        if (head >= s->num || !walk(s, indirect, head, &chains[j]) || chains[j].read_len < 16 ||
            chains[j].write_len < 1) {
            nwsegs = before; /* a refused chain's buffers are never written */
            e.needs_reset = true;
            stop_at = j;
            break;
        }
    }
    e.ndone = stop_at;

    /* clean: device writes (writable buffers, used ring) touch nothing the device reads to
     * find requests (tables, rings) and not each other */
    memset(mark, 0, RAM_SIZE);
    e.clean = mark_range((uint32_t)s->desc, 16u * s->num, M_STRUCT) &&
              mark_range((uint32_t)s->avail, 6u + 2u * s->num, M_STRUCT);
    for (unsigned j = 0; e.clean && j < e.ndone; j++)
        if (chains[j].has_table)
            e.clean = mark_range(chains[j].table.off, chains[j].table.len, M_STRUCT);
    if (e.clean) e.clean = mark_range((uint32_t)s->used, 6u + 8u * s->num, M_USED);
    if (dup) e.clean = false;
    for (unsigned k = 0; e.clean && k < nwsegs; k++)
        e.clean = mark_range(wsegs[k].off, wsegs[k].len, M_WRITE);
    return e;
}

static void check(const struct setup *s, const struct expect *e)
{
    uint32_t status = rd(R_STATUS);
    uint16_t used_idx;
    memcpy(&used_idx, ram + s->used + 2, 2);
    /* the device writes used->idx only when it uses a buffer; until then it holds whatever
     * the driver left there */
    uint16_t want;
    memcpy(&want, snap + s->used + 2, 2);
    if (e->ndone) want = (uint16_t)e->ndone;
    if (used_idx != want) fail("used idx differs from the requests that should complete");
    if (!!(status & VIRTIO_STATUS_NEEDS_RESET) != e->needs_reset) fail("NEEDS_RESET");
    static uint8_t seen[MAX_CHAINS];
    memset(seen, 0, sizeof(seen));
    for (unsigned u = 0; u < e->ndone; u++) {
        uint32_t id, len;
        memcpy(&id, ram + s->used + 4 + 8u * u, 4);
        memcpy(&len, ram + s->used + 8 + 8u * u, 4);
        unsigned j = 0;
        while (j < e->ndone && (chains[j].head != id || seen[j]))
            j++;
        if (j == e->ndone) fail("a used id that was not expected (or used twice)");
        seen[j] = 1;
        if (len < 1 || len > chains[j].write_len) fail("used length");
        uint8_t st = ram[chains[j].status_off];
        if (st > 2) fail("status byte not 0/1/2");
    }
    for (unsigned i = 0; i < RAM_SIZE; i++)
        if (mark[i] != M_WRITE && mark[i] != M_USED && ram[i] != snap[i])
            fail("guest RAM changed outside writable buffers and the used ring");
}

static void check_image(int fd)
{
    struct stat st;
    if (fstat(fd, &st) || st.st_size != IMG_SIZE) fail("image size changed");
}

static uint64_t place(const uint8_t *p, unsigned align, uint64_t size)
{
    uint64_t off = (uint64_t)(p[0] | p[1] << 8) * align;
    if (off + size > RAM_SIZE) off = (off % (RAM_SIZE - size + 1)) & ~(uint64_t)(align - 1);
    return off;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < HDR) return 0;
    struct setup s;
    s.num = (uint16_t)(1u << (data[0] % 9));
    s.wanted = 1ull << VIRTIO_F_VERSION_1;
    static const uint64_t fbits[] = {1ull << VIRTIO_F_EVENT_IDX,
                                     1ull << VIRTIO_F_INDIRECT_DESC,
                                     1ull << 9,
                                     1ull << 13,
                                     1ull << 14,
                                     (1ull << 2) | (1ull << 6)};
    for (unsigned i = 0; i < 6; i++)
        if (data[1] & (1u << i)) s.wanted |= fbits[i];
    bool readonly = data[2] & 1, reset_first = data[2] & 4;
    const char *serial = (data[2] & 2) ? "fuzz-serial-0123456789" : NULL;
    s.desc = place(data + 3, 16, 16ull * s.num);
    s.avail = place(data + 5, 2, 6 + 2ull * s.num);
    s.used = place(data + 7, 4, 6 + 8ull * s.num);
    size_t n = size - HDR < RAM_SIZE ? size - HDR : RAM_SIZE;

    struct vblk *d =
        vblk_create(readonly ? be_ro : be_rw, serial, &gm, (struct irq_line){.set = irq_set});
    if (!d) return 0;
    tr = vblk_transport(d);

    if (reset_first) {
        /* kick, then reset at once with requests in flight */
        memset(ram, 0, RAM_SIZE);
        memcpy(ram, data + HDR, n);
        driver_init(&s);
        wr(R_QUEUE_NOTIFY, 0);
        wr(R_STATUS, 0);
        /* Asynchronous reset (4.2.2.1): re-read status until it reads 0; the backend
         * completes everything, so it must get there. */
        for (int i = 0; rd(R_STATUS) != 0; i++) {
            if (i > 10000) fail("reset did not complete");
            usleep(1000);
        }
    }
    memset(ram, 0, RAM_SIZE);
    memcpy(ram, data + HDR, n);
    uint64_t f = driver_init(&s);
    memcpy(snap, ram, RAM_SIZE);
    struct expect e = predict(&s, f);
    wr(R_QUEUE_NOTIFY, 0);
    vblk_process_and_wait(d);
    if (debug) {
        uint16_t used_idx;
        memcpy(&used_idx, ram + s.used + 2, 2);
        fprintf(stderr, "num %u features 0x%llx clean %d expect %u done%s; used idx %u%s\n", s.num,
                (unsigned long long)f, e.clean, e.ndone, e.needs_reset ? " + needs reset" : "",
                used_idx, rd(R_STATUS) & VIRTIO_STATUS_NEEDS_RESET ? " + needs reset" : "");
    }
    if (e.clean) check(&s, &e);
    check_image(fd_rw);
    check_image(fd_ro);
    vblk_destroy(d);
    return 0;
}

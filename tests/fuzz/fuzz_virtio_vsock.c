// SOURCES: src/dev/virtio/vsock.c src/dev/virtio/mmio.c src/dev/virtio/virtqueue.c
// SOURCES: src/util/log.c src/util/ratelimit.c
/* libFuzzer harness for virtio-vsock behind the virtio-mmio transport, on a fake backend that
 * simulates the host sockets and runs the device's work at once when kicked (the fuzzer's
 * thread is hart and backend thread both). The fuzzer's bytes become a 64 KiB guest RAM image
 * (the three queues' rings, indirect tables, tx headers and payloads, rx buffers), queue sizes,
 * ring addresses and features, and a script of driver and host actions: kicks, packet headers
 * stamped into RAM with the right CIDs (so the fuzzer reaches the protocol, not only the CID
 * check) and any fields, pokes into RAM, host programs connecting, host sockets becoming
 * readable/writable/closed/failing with data from RAM, config accesses, resets and new setups.
 * Checks, besides no crash and no sanitizer report (RAM is a heap block):
 *  - the device never sends to, receives from, accepts or connects a slot in the wrong state
 *    (a closed host socket, or connect over an open one);
 *  - every host socket the fake holds open belongs to a connection the device counts;
 *  - after a reset and the backend's next turn no host socket stays open; after destroy the
 *    backend is detached.
 *
 * Build and run with tests/fuzz/build.sh 60 fuzz_virtio_vsock.
 *
 * Input: HDR header bytes, NOPS * 4 script bytes, then the RAM image (zero-padded).
 *   [0..2]    rx / tx / event queue size 1 << (b % 9)
 *   [3]       driver features: bit 0 EVENT_IDX, 1 INDIRECT_DESC (VERSION_1 always)
 *   [4..21]   le16 ring offsets per queue: desc * 16, avail * 2, used * 4, pulled inside RAM
 *   script    NOPS ops {op, a, b, c}; see run_op */
#include "dev/virtio/vsock.h"
#include "util/log.h"
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RAM_BASE 0x80000000ull
#define RAM_SIZE 0x10000u
#define HDR      22
#define NOPS     64
#define CID      3

enum {
    R_DRV_FEAT = 0x020,
    R_DRV_FEAT_SEL = 0x024,
    R_QUEUE_SEL = 0x030,
    R_QUEUE_NUM = 0x038,
    R_QUEUE_READY = 0x044,
    R_QUEUE_NOTIFY = 0x050,
    R_INT_ACK = 0x064,
    R_STATUS = 0x070,
    R_DESC_LO = 0x080,
    R_DESC_HI = 0x084,
    R_DRIVER_LO = 0x090,
    R_DRIVER_HI = 0x094,
    R_DEVICE_LO = 0x0a0,
    R_DEVICE_HI = 0x0a4,
    R_CONFIG = 0x100,
};

static uint8_t *ram;
static struct guest_mem gm;
static struct virtio_mmio *tr;

static void fail(const char *why)
{
    fprintf(stderr, "fuzz_virtio_vsock: invariant broken: %s\n", why);
    __builtin_trap();
}

/* ---- the fake backend: host sockets simulated per slot ---- */

struct fvb {
    struct vsock_backend base;
    struct vsock_client c;
    bool attached;
    bool open[VSOCK_MAX_CONNS];
    uint32_t avail[VSOCK_MAX_CONNS]; /* bytes the host has for the guest */
    bool eof[VSOCK_MAX_CONNS], err[VSOCK_MAX_CONNS];
    uint32_t room; /* bytes send() takes before EAGAIN */
    unsigned src;  /* where host data comes from in RAM */
};

static void f_attach(struct vsock_backend *b, const struct vsock_client *c)
{
    struct fvb *f = (struct fvb *)b;
    f->attached = c != NULL;
    if (c)
        f->c = *c;
    else
        memset(f->open, 0, sizeof(f->open));
}
static void f_kick(struct vsock_backend *b)
{
    struct fvb *f = (struct fvb *)b;
    if (f->attached) f->c.run(f->c.ctx);
}
static int f_connect(struct vsock_backend *b, unsigned conn, uint32_t port)
{
    struct fvb *f = (struct fvb *)b;
    if (conn >= VSOCK_MAX_CONNS) fail("connect: slot out of range");
    if (f->open[conn]) fail("connect over an open slot");
    if (port % 3 == 0) return -ECONNREFUSED; /* nobody listens on <path>_<port> */
    f->open[conn] = true;
    f->avail[conn] = 0;
    f->eof[conn] = f->err[conn] = false;
    return 0;
}
static void f_accepted(struct vsock_backend *b, unsigned conn, uint32_t hp)
{
    struct fvb *f = (struct fvb *)b;
    (void)hp;
    if (conn >= VSOCK_MAX_CONNS || !f->open[conn]) fail("accepted on a closed slot");
}
static ssize_t f_recv(struct vsock_backend *b, unsigned conn, void *buf, size_t len)
{
    struct fvb *f = (struct fvb *)b;
    if (conn >= VSOCK_MAX_CONNS || !f->open[conn]) fail("recv on a closed slot");
    if (f->err[conn]) return -ECONNRESET;
    if (!f->avail[conn]) return f->eof[conn] ? 0 : -EAGAIN;
    size_t n = len < f->avail[conn] ? len : f->avail[conn];
    uint8_t *d = buf;
    for (size_t i = 0; i < n; i++) /* ASan: all of buf[0..n) is writable */
        d[i] = ram[(f->src + i) % RAM_SIZE];
    f->avail[conn] -= (uint32_t)n;
    return (ssize_t)n;
}
static ssize_t f_send(struct vsock_backend *b, unsigned conn, const void *buf, size_t len)
{
    struct fvb *f = (struct fvb *)b;
    if (conn >= VSOCK_MAX_CONNS || !f->open[conn]) fail("send on a closed slot");
    if (f->err[conn]) return -EPIPE;
    if (!len) fail("send of nothing");
    if (!f->room) return -EAGAIN;
    size_t n = len < f->room ? len : f->room;
    volatile uint8_t x = ((const uint8_t *)buf)[0] ^ ((const uint8_t *)buf)[n - 1];
    (void)x;
    f->room -= (uint32_t)n;
    return (ssize_t)n;
}
static void f_shutdown(struct vsock_backend *b, unsigned conn)
{
    struct fvb *f = (struct fvb *)b;
    if (conn >= VSOCK_MAX_CONNS || !f->open[conn]) fail("shutdown on a closed slot");
}
static void f_close_conn(struct vsock_backend *b, unsigned conn)
{
    struct fvb *f = (struct fvb *)b;
    if (conn >= VSOCK_MAX_CONNS) fail("close: slot out of range");
    f->open[conn] = false;
}
static void f_close(struct vsock_backend *b, bool unlink_path)
{
    (void)b, (void)unlink_path;
}
static const struct vsock_backend_ops f_ops = {
    f_attach, f_kick, f_connect, f_accepted, f_recv, f_send, f_shutdown, f_close_conn, f_close};

static void irq_set(void *ctx, unsigned n, bool level)
{
    (void)ctx, (void)n, (void)level;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    log_current_level = LOG_ERROR;
    ram = aligned_alloc(4096, RAM_SIZE);
    if (!ram) exit(1);
    gm = (struct guest_mem){.ram = ram, .base = RAM_BASE, .size = RAM_SIZE};
    return 0;
}

static uint32_t rd(uint64_t off)
{
    return (uint32_t)virtio_mmio_ops.read(tr, off, 4);
}
static void wr(uint64_t off, uint32_t v)
{
    virtio_mmio_ops.write(tr, off, v, 4);
}
static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* The rings as setup() configured them, for the driver ops that add buffers the way Linux's
 * driver does (the fuzzer rarely builds a valid chain by itself). */
static struct {
    uint64_t desc, avail;
    uint16_t num, next;
} rings[3];

static void put16(uint64_t off, uint16_t v)
{
    ram[off % RAM_SIZE] = (uint8_t)v;
    ram[(off + 1) % RAM_SIZE] = (uint8_t)(v >> 8);
}

/* One descriptor (no NEXT) at buffer offset `buf` made available on queue q. */
static void add_buf(unsigned q, uint32_t buf, uint32_t len, bool write)
{
    uint16_t num = rings[q].num, di = (uint16_t)(rings[q].next++ % num);
    uint64_t d = rings[q].desc + 16u * di, a = RAM_BASE + buf;
    for (unsigned i = 0; i < 8; i++)
        ram[(d + i) % RAM_SIZE] = (uint8_t)(a >> (8 * i));
    for (unsigned i = 0; i < 4; i++)
        ram[(d + 8 + i) % RAM_SIZE] = (uint8_t)(len >> (8 * i));
    put16(d + 12, write ? VIRTQ_DESC_F_WRITE : 0);
    put16(d + 14, 0);
    uint64_t av = rings[q].avail;
    uint16_t idx = (uint16_t)(ram[(av + 2) % RAM_SIZE] | ram[(av + 3) % RAM_SIZE] << 8);
    put16(av + 4 + 2u * (idx % num), di);
    put16(av + 2, (uint16_t)(idx + 1));
}

static void setup(const uint8_t *h)
{
    wr(R_STATUS, 0);
    wr(R_STATUS, 1);
    wr(R_STATUS, 3);
    wr(R_DRV_FEAT_SEL, 1);
    wr(R_DRV_FEAT, 1); /* VERSION_1 */
    wr(R_DRV_FEAT_SEL, 0);
    wr(R_DRV_FEAT,
       (h[3] & 1 ? 1u << VIRTIO_F_EVENT_IDX : 0) | (h[3] & 2 ? 1u << VIRTIO_F_INDIRECT_DESC : 0));
    wr(R_STATUS, 3 | VIRTIO_STATUS_FEATURES_OK);
    for (unsigned q = 0; q < 3; q++) {
        const uint8_t *o = h + 4 + 6 * q;
        uint64_t desc = RAM_BASE + (16u * le16(o)) % RAM_SIZE;
        uint64_t avail = RAM_BASE + (2u * le16(o + 2)) % RAM_SIZE;
        uint64_t used = RAM_BASE + (4u * le16(o + 4)) % RAM_SIZE;
        rings[q].desc = desc - RAM_BASE;
        rings[q].avail = avail - RAM_BASE;
        rings[q].num = (uint16_t)(1u << (h[q] % 9));
        rings[q].next = 0;
        wr(R_QUEUE_SEL, q);
        wr(R_QUEUE_NUM, 1u << (h[q] % 9));
        wr(R_DESC_LO, (uint32_t)desc);
        wr(R_DESC_HI, (uint32_t)(desc >> 32));
        wr(R_DRIVER_LO, (uint32_t)avail);
        wr(R_DRIVER_HI, (uint32_t)(avail >> 32));
        wr(R_DEVICE_LO, (uint32_t)used);
        wr(R_DEVICE_HI, (uint32_t)(used >> 32));
        wr(R_QUEUE_READY, 1);
    }
    wr(R_STATUS, rd(R_STATUS) | VIRTIO_STATUS_DRIVER_OK);
}

/* A header with the right CIDs at RAM offset `at` (a tx buffer the fuzzer's rings may point
 * at): ports from a few values so packets meet connections, the rest from the op's bytes. */
static void stamp(unsigned at, uint8_t a, uint8_t b, uint8_t c)
{
    struct vsock_hdr h = {.src_cid = CID,
                          .dst_cid = VSOCK_HOST_CID,
                          .src_port = 1000u + (a & 7),
                          .dst_port =
                              (a & 0x80) ? (1u << 30) + ((a >> 3) & 7) : 5000u + ((a >> 3) & 7),
                          .len = (uint32_t)b * (c & 0x80 ? 512u : 1u),
                          .type = (c & 0x40) ? (uint16_t)(c & 3) : VSOCK_TYPE_STREAM,
                          .op = (uint16_t)(c & 7),
                          .flags = (uint32_t)(b & 3),
                          .buf_alloc = (c & 0x20) ? 0x10000u : (uint32_t)b << 4,
                          .fwd_cnt = (uint32_t)a << 8};
    uint8_t buf[VSOCK_HDR_LEN];
    vsock_hdr_encode(&h, buf);
    for (unsigned i = 0; i < VSOCK_HDR_LEN; i++)
        ram[(at + i) % RAM_SIZE] = buf[i];
}

static void run_op(struct fvb *f, const uint8_t *hdr, const uint8_t *op)
{
    static const unsigned sizes[4] = {1, 2, 4, 8};
    uint8_t a = op[1], b = op[2], c = op[3];
    switch (op[0] % 16) {
    case 0:
        virtio_mmio_ops.write(tr, R_CONFIG + a, (uint64_t)b | (uint64_t)c << 8, sizes[c % 4]);
        break;
    case 1: (void)virtio_mmio_ops.read(tr, R_CONFIG + a, sizes[b % 4]); break;
    case 2: wr(R_QUEUE_NOTIFY, 0); break;
    case 3: wr(R_QUEUE_NOTIFY, 1); break;
    case 4: wr(R_QUEUE_NOTIFY, a); break; /* the event queue, queues that do not exist */
    case 5:
        if (f->attached) { /* a host program's CONNECT <port> */
            int slot = f->c.host_connect(f->c.ctx, 5000u + (a & 7));
            if (slot >= VSOCK_MAX_CONNS) fail("host_connect: slot out of range");
            if (slot >= 0) {
                if (f->open[slot]) fail("host_connect gave an open slot");
                f->open[slot] = true;
                f->avail[slot] = 0;
                f->eof[slot] = f->err[slot] = false;
            }
            f->c.run(f->c.ctx);
        }
        break;
    case 6: { /* a host socket's events, as poll reports them */
        unsigned s = a % VSOCK_MAX_CONNS;
        if (!f->attached || !f->open[s]) break;
        f->avail[s] += (uint32_t)b * 64;
        f->src = (unsigned)c << 8;
        if (c & 1) f->eof[s] = true;
        if ((c & 6) == 6) f->err[s] = true;
        short ev = f->c.events(f->c.ctx, s);
        (void)ev;
        f->c.ready(f->c.ctx, s,
                   (short)((b & 1 ? POLLIN : 0) | (b & 2 ? POLLOUT : 0) | (b & 4 ? POLLHUP : 0) |
                           (b & 8 ? POLLERR : 0)));
        f->c.run(f->c.ctx);
        break;
    }
    case 7: ram[((unsigned)a << 8 | b) % RAM_SIZE] = c; break;
    case 8:
        if (f->attached) f->c.run(f->c.ctx);
        break;
    case 9:
        if (a & 1)
            setup(hdr);
        else
            wr(R_INT_ACK, 3);
        break;
    case 10: wr(R_STATUS, 0); break;
    case 11:
    case 12: stamp((unsigned)a << 8 | b, b, c, a ^ c); break;
    case 13: f->room = (uint32_t)a << (b % 12); break; /* the host reads this much */
    case 14: { /* the driver sends a packet: a stamped header and payload, one descriptor */
        uint32_t buf = 0x8000u + ((uint32_t)(a & 15) << 11);
        stamp(buf, b, c, a);
        uint32_t len = VSOCK_HDR_LEN + (uint32_t)(c & 0x7f) * ((a & 0x40) ? 16u : 1u);
        add_buf(1, buf, len, false);
        wr(R_QUEUE_NOTIFY, 1);
        break;
    }
    case 15: /* the driver adds receive buffers */
        for (unsigned i = 0; i <= (a & 7u); i++)
            add_buf(0, 0xc000u + ((uint32_t)((b + i) & 7) << 11), (uint32_t)c << 4, true);
        wr(R_QUEUE_NOTIFY, 0);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < HDR + 4 * NOPS) return 0;
    const uint8_t *hdr = data, *ops = data + HDR, *img = data + HDR + 4 * NOPS;
    size_t n = size - HDR - 4 * NOPS;
    memset(ram, 0, RAM_SIZE);
    memcpy(ram, img, n < RAM_SIZE ? n : RAM_SIZE);
    static struct fvb f;
    memset(&f, 0, sizeof(f));
    f.base.ops = &f_ops;
    f.room = 1u << 20;
    struct vsock_dev *d = vsock_dev_create(&f.base, CID, &gm, (struct irq_line){irq_set, NULL, 0});
    if (!d) return 0;
    tr = vsock_dev_transport(d);
    setup(hdr);
    struct vsock_stats st;
    for (unsigned i = 0; i < NOPS; i++) {
        run_op(&f, hdr, ops + 4 * i);
        vsock_dev_get_stats(d, &st);
        unsigned open = 0;
        for (unsigned s = 0; s < VSOCK_MAX_CONNS; s++)
            open += f.open[s];
        if (open > st.conns) fail("a host socket open for no connection");
    }
    wr(R_STATUS, 0);
    if (rd(R_STATUS) != 0) fail("reset did not complete at once");
    f.c.run(f.c.ctx);
    for (unsigned s = 0; s < VSOCK_MAX_CONNS; s++)
        if (f.open[s]) fail("a host socket still open after a reset");
    vsock_dev_get_stats(d, &st);
    if (st.conns) fail("connections left after a reset");
    vsock_dev_destroy(d);
    if (f.attached) fail("still attached after destroy");
    return 0;
}

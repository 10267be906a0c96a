// SOURCES: src/dev/virtio/net.c src/dev/virtio/mmio.c src/dev/virtio/virtqueue.c
// SOURCES: src/util/log.c src/util/ratelimit.c
/* libFuzzer harness for virtio-net behind the virtio-mmio transport, on a fake backend that
 * runs the device's work at once when kicked (the fuzzer's thread is hart and backend thread
 * both). The fuzzer's bytes become a 64 KiB guest RAM image (both queues' rings, indirect
 * tables, transmit headers and frames, receive buffers), the queue sizes, ring addresses and
 * features (mergeable buffers, checksum offloads, event idx, indirect), and a script of driver
 * and host actions: kicks of either queue (or of queues that do not exist), frames from the
 * network of any length (taken from RAM), config-space accesses, pokes into guest RAM between
 * steps (a driver moving avail idx or rewriting descriptors), backend runs without a kick,
 * resets followed by a new setup.
 * Checks, besides no crash and no sanitizer report (RAM is a heap block):
 *  - every frame the device hands the backend is 14..NET_FRAME_MAX bytes;
 *  - every frame from the network is accounted for: delivered + dropped + too small + still
 *    pending == frames of a valid length offered;
 *  - at most VNET_RX_PENDING frames wait;
 *  - at the end a reset completes at once (nothing is ever in flight) and leaves none waiting.
 *
 * Build and run with tests/fuzz/build.sh 60 fuzz_virtio_net.
 *
 * Input: HDR header bytes, NOPS * 4 script bytes, then the RAM image (zero-padded).
 *   [0] [1]   rx / tx queue size 1 << (b % 9)
 *   [2]       driver features: bit 0 EVENT_IDX, 1 INDIRECT_DESC, 2 MRG_RXBUF, 3 CSUM,
 *             4 GUEST_CSUM (VERSION_1 always)
 *   [3..14]   le16 ring offsets per queue: desc * 16, avail * 2, used * 4, pulled inside RAM
 *   script    NOPS ops {op, a, b, c}; see run_op */
#include "dev/virtio/net.h"
#include "util/log.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RAM_BASE 0x80000000ull
#define RAM_SIZE 0x10000u
#define HDR      15
#define NOPS     48

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
static uint64_t offered; /* frames of a valid length given to receive() this run */
static bool debug;       /* VESSEL_FUZZ_DEBUG=1: print each run's counts */

static void fail(const char *why)
{
    fprintf(stderr, "fuzz_virtio_net: invariant broken: %s\n", why);
    __builtin_trap();
}

/* ---- the fake backend ---- */

struct fnb {
    struct net_backend base;
    struct net_client c;
    bool attached;
    uint64_t sent;
};

static void f_attach(struct net_backend *b, const struct net_client *c)
{
    struct fnb *f = (struct fnb *)b;
    f->attached = c != NULL;
    if (c) f->c = *c;
}
static void f_kick(struct net_backend *b)
{
    struct fnb *f = (struct fnb *)b;
    if (f->attached) f->c.run(f->c.ctx);
}
static void f_send(struct net_backend *b, const uint8_t *frame, size_t len)
{
    struct fnb *f = (struct fnb *)b;
    if (len < NET_FRAME_MIN || len > NET_FRAME_MAX) fail("frame of a bad length sent");
    volatile uint8_t x = frame[0] ^ frame[len - 1]; /* ASan: the whole frame is readable */
    (void)x;
    f->sent++;
}
static void f_close(struct net_backend *b)
{
    (void)b;
}
/* a backend that segments (tso): frames up to NET_GSO_FRAME_MAX with the guest's header */
static void f_send_hdr(struct net_backend *b, const uint8_t hdr[12], const uint8_t *frame,
                       size_t len)
{
    struct fnb *f = (struct fnb *)b;
    if (len < NET_FRAME_MIN || len > NET_GSO_FRAME_MAX) fail("offloaded frame of a bad length");
    volatile uint8_t x = frame[0] ^ frame[len - 1] ^ hdr[11];
    (void)x;
    f->sent++;
}
static void f_set_offload(struct net_backend *b, unsigned flags)
{
    (void)b;
    if (flags & ~15u) fail("unknown offload flags");
}
static const struct net_backend_ops f_ops = {f_attach, f_kick,     f_send,
                                             f_close,  f_send_hdr, f_set_offload};

static void irq_set(void *ctx, unsigned n, bool level)
{
    (void)ctx, (void)n, (void)level;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    log_current_level = LOG_ERROR; /* malformed rings are logged as warnings */
    debug = getenv("VESSEL_FUZZ_DEBUG") != NULL;
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

/* Linux's probe order (3.1.1): reset, ACK, DRIVER, features, FEATURES_OK, queues, DRIVER_OK. */
static void setup(const uint8_t *h)
{
    wr(R_STATUS, 0);
    wr(R_STATUS, 1);
    wr(R_STATUS, 3);
    wr(R_DRV_FEAT_SEL, 1);
    wr(R_DRV_FEAT, 1); /* VERSION_1 */
    wr(R_DRV_FEAT_SEL, 0);
    uint32_t f =
        (h[2] & 1 ? 1u << VIRTIO_F_EVENT_IDX : 0) | (h[2] & 2 ? 1u << VIRTIO_F_INDIRECT_DESC : 0) |
        (h[2] & 4 ? 1u << VIRTIO_NET_F_MRG_RXBUF : 0) | (h[2] & 8 ? 1u << VIRTIO_NET_F_CSUM : 0) |
        (h[2] & 16 ? 1u << VIRTIO_NET_F_GUEST_CSUM : 0) | (1u << VIRTIO_NET_F_MAC) |
        (1u << VIRTIO_NET_F_STATUS);
    wr(R_DRV_FEAT, f);
    wr(R_STATUS, 3 | VIRTIO_STATUS_FEATURES_OK);
    for (unsigned q = 0; q < 2; q++) {
        const uint8_t *o = h + 3 + 6 * q;
        uint64_t desc = RAM_BASE + (16u * le16(o)) % RAM_SIZE;
        uint64_t avail = RAM_BASE + (2u * le16(o + 2)) % RAM_SIZE;
        uint64_t used = RAM_BASE + (4u * le16(o + 4)) % RAM_SIZE;
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

static void receive(struct fnb *nb, unsigned len, unsigned from)
{
    /* A frame from the network: bytes of the RAM image (any content), any length; the device
     * ignores lengths outside 14..NET_FRAME_MAX (a backend never sends them). */
    static uint8_t frame[NET_FRAME_MAX + 64];
    if (len > sizeof(frame)) len = sizeof(frame);
    for (unsigned i = 0; i < len; i++)
        frame[i] = ram[(from + i) % RAM_SIZE];
    if (len >= NET_FRAME_MIN && len <= NET_FRAME_MAX) offered++;
    if (nb->attached) nb->c.receive(nb->c.ctx, frame, len);
}

static void run_op(struct fnb *nb, const uint8_t *hdr, const uint8_t *op)
{
    static const unsigned sizes[4] = {1, 2, 4, 8};
    uint8_t a = op[1], b = op[2], c = op[3];
    switch (op[0] % 11) {
    case 0: /* config write of any size, anywhere (the transport bounds it; dropped) */
        virtio_mmio_ops.write(tr, R_CONFIG + a, (uint64_t)b | (uint64_t)c << 8, sizes[c % 4]);
        break;
    case 1: /* config read of any size */
        (void)virtio_mmio_ops.read(tr, R_CONFIG + a, sizes[b % 4]);
        break;
    case 2: wr(R_QUEUE_NOTIFY, 0); break;
    case 3: wr(R_QUEUE_NOTIFY, 1); break;
    case 4: wr(R_QUEUE_NOTIFY, a); break; /* queues that do not exist */
    case 5: receive(nb, ((unsigned)a << 8 | b) % (NET_FRAME_MAX + 64), (unsigned)c << 8); break;
    case 6: receive(nb, 14 + (a % 64), (unsigned)b << 8 | c); break; /* small, common */
    case 7: ram[((unsigned)a << 8 | b) % RAM_SIZE] = c; break;       /* the driver writes RAM */
    case 8:
        if (nb->attached) nb->c.run(nb->c.ctx); /* the backend thread runs without a kick */
        break;
    case 9:
        if (a & 1)
            setup(hdr);
        else
            wr(R_INT_ACK, 3);
        break;
    case 10: wr(R_STATUS, 0); break; /* a reset in the middle */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < HDR + 4 * NOPS) return 0;
    const uint8_t *hdr = data, *ops = data + HDR, *img = data + HDR + 4 * NOPS;
    size_t n = size - HDR - 4 * NOPS;
    memset(ram, 0, RAM_SIZE);
    memcpy(ram, img, n < RAM_SIZE ? n : RAM_SIZE);
    static struct fnb nb;
    memset(&nb, 0, sizeof(nb));
    nb.base.ops = &f_ops;
    nb.base.tso = hdr[0] & 1; /* the setup header's first byte picks the backend kind too */
    nb.base.mtu = hdr[0] & 2 ? NET_MTU_MAX : 1500;
    static const uint8_t mac[6] = {0x52, 0x54, 0, 1, 2, 3};
    struct vnet *d = vnet_create(&nb.base, mac, &gm, (struct irq_line){irq_set, NULL, 0});
    if (!d) return 0;
    tr = vnet_transport(d);
    offered = 0;
    setup(hdr);
    struct vnet_stats st;
    for (unsigned i = 0; i < NOPS; i++) {
        run_op(&nb, hdr, ops + 4 * i);
        vnet_get_stats(d, &st);
        if (st.rx_pending > VNET_RX_PENDING) fail("more frames waiting than the bound");
        if (st.rx_frames + st.rx_dropped + st.rx_too_small + st.rx_pending != offered)
            fail("frames lost: delivered + dropped + too small + pending != offered");
    }
    if (debug) fprintf(stderr, "status before the final reset 0x%x\n", rd(R_STATUS));
    wr(R_STATUS, 0);
    if (rd(R_STATUS) != 0) fail("reset did not complete at once");
    vnet_get_stats(d, &st);
    if (st.rx_pending) fail("frames still waiting after a reset");
    if (debug)
        fprintf(stderr,
                "offered %llu rx %llu dropped %llu small %llu badbuf %llu tx %llu (sent %llu) "
                "txbad %llu malformed %llu\n",
                (unsigned long long)offered, (unsigned long long)st.rx_frames,
                (unsigned long long)st.rx_dropped, (unsigned long long)st.rx_too_small,
                (unsigned long long)st.rx_bad_buffers, (unsigned long long)st.tx_frames,
                (unsigned long long)nb.sent, (unsigned long long)st.tx_bad,
                (unsigned long long)st.malformed);
    if (st.tx_frames != nb.sent) fail("tx frames counted != frames sent");
    vnet_destroy(d);
    if (nb.attached) fail("still attached after destroy");
    return 0;
}

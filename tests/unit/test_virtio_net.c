/* virtio-net device tests: a fake backend that records what the device sends and runs the
 * device's work at once when kicked (the hart and the backend thread are the test's thread),
 * and both queues (rx 0, tx 1) driven by hand as Linux's virtio_net would. Also the --net and
 * --mac syntax. */
#include "backend/net/slirp.h"
#include "dev/virtio/net.h"
#include "test.h"
#include "util/staterec.h"
#include "vm/config.h"
#include "virtio_harness.h"
#include <arpa/inet.h>
#include <errno.h>

#define RAM_SIZE (2u << 20)
#define F_V1     (1ull << VIRTIO_F_VERSION_1)
#define F_EVT    (1ull << VIRTIO_F_EVENT_IDX)
#define F_MRG    (1ull << VIRTIO_NET_F_MRG_RXBUF)
#define F_CSUM   (1ull << VIRTIO_NET_F_CSUM)
#define F_GCSUM  (1ull << VIRTIO_NET_F_GUEST_CSUM)
#define HDR      VIRTIO_NET_HDR_LEN

/* ---- the fake backend ---- */

#define FAKE_MAX_SENT 8
struct fake_nb {
    struct net_backend base;
    struct net_client c;
    bool attached;
    bool run_on_kick; /* false: kicks are only counted (a backend thread that is late) */
    unsigned kicks, nsent;
    size_t sent_len[FAKE_MAX_SENT];
    uint8_t sent[FAKE_MAX_SENT][NET_FRAME_MAX];
    uint8_t sent_hdr[FAKE_MAX_SENT][12]; /* send_hdr (a tso backend) */
    unsigned offload, offload_calls;     /* set_offload */
};

static void fake_attach(struct net_backend *b, const struct net_client *c)
{
    struct fake_nb *f = (struct fake_nb *)b;
    f->attached = c != NULL;
    if (c) f->c = *c;
}
static void fake_kick(struct net_backend *b)
{
    struct fake_nb *f = (struct fake_nb *)b;
    f->kicks++;
    if (f->attached && f->run_on_kick) f->c.run(f->c.ctx);
}
static void fake_send(struct net_backend *b, const uint8_t *frame, size_t len)
{
    struct fake_nb *f = (struct fake_nb *)b;
    if (f->nsent < FAKE_MAX_SENT && len <= NET_FRAME_MAX) {
        memcpy(f->sent[f->nsent], frame, len);
        f->sent_len[f->nsent] = len;
    }
    f->nsent++;
}
static void fake_close(struct net_backend *b)
{
    (void)b;
}
static void fake_send_hdr(struct net_backend *b, const uint8_t hdr[12], const uint8_t *frame,
                          size_t len)
{
    struct fake_nb *f = (struct fake_nb *)b;
    if (f->nsent < FAKE_MAX_SENT) memcpy(f->sent_hdr[f->nsent], hdr, 12);
    fake_send(b, frame, len);
}
static void fake_set_offload(struct net_backend *b, unsigned flags)
{
    struct fake_nb *f = (struct fake_nb *)b;
    f->offload = flags;
    f->offload_calls++;
}
static const struct net_backend_ops fake_ops = {fake_attach, fake_kick,     fake_send,
                                                fake_close,  fake_send_hdr, fake_set_offload};

/* ---- two queues by hand ---- */

struct ring {
    uint64_t desc, avail, used;
    uint16_t num, avail_idx, next;
};

struct nrig {
    struct vh h;
    struct fake_nb nb;
    struct vnet *d;
    struct ring q[2];
};

static const uint8_t MAC[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

static void ring_setup(struct nrig *g, unsigned qi, uint16_t num)
{
    struct ring *r = &g->q[qi];
    uint64_t base = VH_RAM_BASE + 0x10000ull * qi; /* 4 KiB desc, avail, used for 256 entries */
    *r = (struct ring){.desc = base, .avail = base + 0x1000, .used = base + 0x2000, .num = num};
    memset(vh_ptr(&g->h, base), 0, 0x3000);
    vh_wr(&g->h, VH_QUEUE_SEL, qi);
    vh_wr(&g->h, VH_QUEUE_NUM, num);
    vh_wr(&g->h, VH_DESC_LO, (uint32_t)r->desc);
    vh_wr(&g->h, VH_DESC_HI, (uint32_t)(r->desc >> 32));
    vh_wr(&g->h, VH_DRIVER_LO, (uint32_t)r->avail);
    vh_wr(&g->h, VH_DRIVER_HI, (uint32_t)(r->avail >> 32));
    vh_wr(&g->h, VH_DEVICE_LO, (uint32_t)r->used);
    vh_wr(&g->h, VH_DEVICE_HI, (uint32_t)(r->used >> 32));
    vh_wr(&g->h, VH_QUEUE_READY, 1);
}

/* A chain of n segments (all writable or all readable) made available. Returns its head. */
static uint16_t ring_add(struct nrig *g, unsigned qi, const uint64_t *gpa, const uint32_t *len,
                         unsigned n, bool write)
{
    struct ring *r = &g->q[qi];
    uint16_t head = r->next;
    for (unsigned i = 0; i < n; i++) {
        uint16_t di = (uint16_t)((head + i) % r->num);
        uint16_t flags =
            (uint16_t)((write ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
        vh_desc(&g->h, r->desc, di, gpa[i], len[i], flags, (uint16_t)((di + 1) % r->num));
    }
    r->next = (uint16_t)((head + n) % r->num);
    vh_put16(&g->h, r->avail + 4 + 2u * (r->avail_idx % r->num), head);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    r->avail_idx++;
    vh_put16(&g->h, r->avail + 2, r->avail_idx);
    return head;
}

static uint16_t used_idx(struct nrig *g, unsigned qi)
{
    return vh_get16(&g->h, g->q[qi].used + 2);
}
static uint32_t used_id(struct nrig *g, unsigned qi, uint16_t i)
{
    return vh_get32(&g->h, g->q[qi].used + 4 + 8u * (i % g->q[qi].num));
}
static uint32_t used_len(struct nrig *g, unsigned qi, uint16_t i)
{
    return vh_get32(&g->h, g->q[qi].used + 8 + 8u * (i % g->q[qi].num));
}

/* A device on a backend whose MTU is mtu (NET_MTU_MAX: NET_FRAME_MAX is the longest frame),
 * one that segments when tso. */
static bool nrig_open_tso(struct nrig *g, uint64_t features, unsigned mtu, bool tso)
{
    memset(g, 0, sizeof(*g));
    CHECK_EQ(vh_init(&g->h, RAM_SIZE), 0);
    g->nb.base.ops = &fake_ops;
    g->nb.base.mtu = mtu;
    g->nb.base.tso = tso;
    g->nb.run_on_kick = true;
    g->d = vnet_create(&g->nb.base, MAC, &g->h.gm, vh_irq_line(&g->h));
    CHECK(g->d != NULL);
    if (!g->d) return false;
    CHECK(g->nb.attached);
    g->h.t = vnet_transport(g->d);
    bool ok = vh_negotiate(&g->h, features) == 0;
    ring_setup(g, 0, 64);
    ring_setup(g, 1, 64);
    ok = ok && vh_driver_ok(&g->h) == 0;
    CHECK(ok);
    return ok;
}

static bool nrig_open_mtu(struct nrig *g, uint64_t features, unsigned mtu)
{
    return nrig_open_tso(g, features, mtu, false);
}

static bool nrig_open(struct nrig *g, uint64_t features)
{
    return nrig_open_mtu(g, features, NET_MTU_MAX);
}

static void nrig_close(struct nrig *g)
{
    vnet_destroy(g->d);
    CHECK(!g->nb.attached);
    vh_free(&g->h);
}

/* n receive buffers of len bytes each, one segment per chain, filled with 0xee. */
static void offer_rx(struct nrig *g, unsigned n, uint32_t len)
{
    for (unsigned i = 0; i < n; i++) {
        uint64_t b = vh_alloc(&g->h, len);
        memset(vh_ptr(&g->h, b), 0xee, len);
        ring_add(g, 0, &b, &len, 1, true);
    }
}

static uint8_t *used_buf(struct nrig *g, unsigned qi, uint16_t i)
{
    uint64_t addr;
    memcpy(&addr, vh_ptr(&g->h, g->q[qi].desc + 16ull * used_id(g, qi, i)), 8);
    return vh_ptr(&g->h, addr);
}

static void make_frame(uint8_t *f, size_t len, uint8_t seed)
{
    for (size_t i = 0; i < len; i++)
        f[i] = (uint8_t)(seed + i * 7);
}

/* Send one frame from the guest: header + frame split into segments of `seg` bytes. */
static uint16_t tx(struct nrig *g, const uint8_t *hdr, const uint8_t *frame, size_t len,
                   uint32_t seg)
{
    size_t total = HDR + len;
    uint64_t b = vh_alloc(&g->h, total);
    memcpy(vh_ptr(&g->h, b), hdr, HDR);
    memcpy(vh_ptr(&g->h, b + HDR), frame, len);
    uint64_t gpa[64];
    uint32_t lens[64];
    unsigned n = 0;
    for (size_t off = 0; off < total && n < 64; n++) {
        uint32_t l = (uint32_t)(total - off < seg ? total - off : seg);
        gpa[n] = b + off;
        lens[n] = l;
        off += l;
    }
    uint16_t head = ring_add(g, 1, gpa, lens, n, false);
    vh_wr(&g->h, VH_QUEUE_NOTIFY, 1);
    return head;
}

/* ---- tests ---- */

TEST(vnet_features_and_config)
{
    struct nrig g;
    if (!nrig_open(&g, F_V1 | F_MRG)) return;
    CHECK_EQ(vh_rd(&g.h, VH_DEVICE_ID), VIRTIO_ID_NET);
    uint64_t f = vh_dev_features(&g.h);
    CHECK(f & (1ull << VIRTIO_NET_F_MAC));
    CHECK(f & (1ull << VIRTIO_NET_F_STATUS));
    CHECK(f & F_MRG);
    CHECK(f & F_CSUM);
    CHECK(f & F_GCSUM);
    /* no segmentation offloads (GUEST_TSO4 7, HOST_TSO4 11...), no control queue (17) */
    CHECK_EQ(f & ((1ull << 7) | (1ull << 8) | (1ull << 10) | (1ull << 11) | (1ull << 12) |
                  (1ull << 14) | (1ull << 17) | (1ull << 22)),
             0);
    for (unsigned i = 0; i < 6; i++)
        CHECK_EQ(virtio_mmio_ops.read(g.h.t, VH_CONFIG + i, 1), MAC[i]);
    CHECK_EQ(virtio_mmio_ops.read(g.h.t, VH_CONFIG + 6, 2), VIRTIO_NET_S_LINK_UP);
    /* writes to the configuration are dropped */
    virtio_mmio_ops.write(g.h.t, VH_CONFIG, 0xff, 1);
    CHECK_EQ(virtio_mmio_ops.read(g.h.t, VH_CONFIG, 1), MAC[0]);
    /* the backend's MTU (VIRTIO_NET_F_MTU, 5.1.4: le16 mtu at offset 10) */
    CHECK(f & (1ull << VIRTIO_NET_F_MTU));
    CHECK_EQ(virtio_mmio_ops.read(g.h.t, VH_CONFIG + 10, 2), NET_MTU_MAX);
    /* past the end: 0 */
    CHECK_EQ(virtio_mmio_ops.read(g.h.t, VH_CONFIG + 12, 4), 0);
    nrig_close(&g);
}

/* A backend with a 1500-byte MTU (a tap): offered as such, and a longer frame the guest sends
 * is dropped (the guest was told); the rest of the frames go on. */
TEST(vnet_mtu_of_the_backend)
{
    struct nrig g;
    if (!nrig_open_mtu(&g, F_V1, 1500)) return;
    CHECK_EQ(virtio_mmio_ops.read(g.h.t, VH_CONFIG + 10, 2), 1500);
    static uint8_t big[1515];
    uint8_t hdr[HDR] = {0};
    tx(&g, hdr, big, 1515, 4096); /* MTU + 14 + 1 */
    tx(&g, hdr, big, 1514, 4096); /* MTU + 14: sent */
    CHECK_EQ(g.nb.nsent, 1);
    CHECK_EQ(g.nb.sent_len[0], 1514);
    struct vnet_stats st;
    vnet_get_stats(g.d, &st);
    CHECK_EQ(st.tx_bad, 1);
    nrig_close(&g);
    /* a backend that says nothing (0): the Ethernet default */
    if (!nrig_open_mtu(&g, F_V1, 0)) return;
    CHECK_EQ(virtio_mmio_ops.read(g.h.t, VH_CONFIG + 10, 2), NET_MTU_DEFAULT);
    nrig_close(&g);
}

TEST(vnet_tx_frame_reaches_backend)
{
    struct nrig g;
    if (!nrig_open(&g, F_V1 | F_MRG)) return;
    uint8_t hdr[HDR] = {0}, frame[200];
    make_frame(frame, sizeof(frame), 3);
    int raises = g.h.irq.raises;
    uint16_t head = tx(&g, hdr, frame, sizeof(frame), 50); /* 5 segments, header split */
    CHECK_EQ(g.nb.nsent, 1);
    CHECK_EQ(g.nb.sent_len[0], sizeof(frame));
    CHECK(!memcmp(g.nb.sent[0], frame, sizeof(frame)));
    CHECK_EQ(used_idx(&g, 1), 1);
    CHECK_EQ(used_id(&g, 1, 0), head);
    CHECK_EQ(used_len(&g, 1, 0), 0); /* nothing written into a transmit buffer */
    CHECK(g.h.irq.raises > raises);
    nrig_close(&g);
}

/* RFC 1071 by the book, for the checks. */
static uint16_t ref_csum(const uint8_t *p, size_t n, uint32_t init)
{
    uint32_t s = init;
    for (size_t i = 0; i < n; i++)
        s += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

TEST(vnet_tx_checksum_completed)
{
    struct nrig g;
    if (!nrig_open(&g, F_V1 | F_CSUM)) return;
    /* Ethernet 14 + IPv4 20 + UDP 8 + 37 bytes of data (odd); checksum at 34 + 6. */
    uint8_t frame[79];
    make_frame(frame, sizeof(frame), 11);
    uint16_t pseudo = 0x1234; /* what the driver leaves in the field: the pseudo-header sum */
    frame[40] = (uint8_t)(pseudo >> 8);
    frame[41] = (uint8_t)pseudo;
    uint8_t hdr[HDR] = {VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 0, 0, 34, 0, 6, 0, 0, 0};
    tx(&g, hdr, frame, sizeof(frame), 4096);
    CHECK_EQ(g.nb.nsent, 1);
    const uint8_t *s = g.nb.sent[0];
    /* the receiver's check: pseudo-header sum plus everything from csum_start, the new
     * checksum included, folds to 0xffff */
    CHECK_EQ(ref_csum(s + 34, sizeof(frame) - 34, pseudo), 0);
    CHECK(!memcmp(s, frame, 40));
    CHECK(!memcmp(s + 42, frame + 42, sizeof(frame) - 42));

    /* offsets outside the frame: dropped, the buffer still comes back */
    uint8_t bad[HDR] = {VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 0, 0, 78, 0, 6, 0, 0, 0};
    tx(&g, bad, frame, sizeof(frame), 4096);
    uint8_t bad2[HDR] = {VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0};
    tx(&g, bad2, frame, sizeof(frame), 4096);
    /* segmentation was not offered */
    uint8_t gso[HDR] = {0, 1 /* TCPV4 */, 0, 0, 0x40, 0x05, 0, 0, 0, 0, 0, 0};
    tx(&g, gso, frame, sizeof(frame), 4096);
    CHECK_EQ(g.nb.nsent, 1);
    CHECK_EQ(used_idx(&g, 1), 4);
    struct vnet_stats st;
    vnet_get_stats(g.d, &st);
    CHECK_EQ(st.tx_frames, 1);
    CHECK_EQ(st.tx_bad, 3);
    CHECK_EQ(vh_rd(&g.h, VH_STATUS) & VIRTIO_STATUS_NEEDS_RESET, 0);
    nrig_close(&g);
}

/* A backend that segments (a tap with IFF_VNET_HDR): HOST_TSO4/6/ECN offered, a 32 KiB TCP
 * segment and a frame asking for its checksum reach the backend with the guest's header as
 * it was (the host does the work), a segment of another kind or without its checksum asked
 * for is dropped, and a backend that does not segment is offered none of it. */
TEST(vnet_tso_backend_gets_the_header)
{
    struct nrig g;
    if (!nrig_open_tso(
            &g, F_V1 | F_CSUM | (1ull << VIRTIO_NET_F_HOST_TSO4) | (1ull << VIRTIO_NET_F_HOST_TSO6),
            1500, true))
        return;
    uint64_t f = vh_dev_features(&g.h);
    CHECK(f & (1ull << VIRTIO_NET_F_HOST_TSO4));
    CHECK(f & (1ull << VIRTIO_NET_F_HOST_TSO6));
    CHECK(f & (1ull << VIRTIO_NET_F_HOST_ECN));
    static uint8_t big[32768];
    make_frame(big, sizeof(big), 9);
    uint8_t gso[HDR] = {VIRTIO_NET_HDR_F_NEEDS_CSUM,
                        VIRTIO_NET_HDR_GSO_TCPV4,
                        54,
                        0,
                        0xb4,
                        0x05,
                        34,
                        0,
                        16,
                        0,
                        0,
                        0};
    tx(&g, gso, big, sizeof(big), 4096); /* over 9 descriptors */
    uint8_t csum[HDR] = {VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 0, 0, 34, 0, 16, 0, 0, 0};
    tx(&g, csum, big, 1000, 4096);
    uint8_t udp[HDR] = {
        VIRTIO_NET_HDR_F_NEEDS_CSUM, 3 /* UDP */, 42, 0, 0xb4, 0x05, 34, 0, 6, 0, 0, 0};
    tx(&g, udp, big, sizeof(big), 4096);
    uint8_t nocsum[HDR] = {0, VIRTIO_NET_HDR_GSO_TCPV4, 54, 0, 0xb4, 0x05, 0, 0, 0, 0, 0, 0};
    tx(&g, nocsum, big, sizeof(big), 4096);
    tx(&g, csum, big, 1515, 4096); /* not segmented: no longer than the MTU */
    CHECK_EQ(g.nb.nsent, 2);
    CHECK_EQ(g.nb.sent_len[0], sizeof(big));
    CHECK(!memcmp(g.nb.sent_hdr[0], gso, 10));
    CHECK(!memcmp(g.nb.sent[0], big, 1500)); /* the checksum is the host's: bytes unchanged */
    CHECK_EQ(g.nb.sent_len[1], 1000);
    CHECK(!memcmp(g.nb.sent_hdr[1], csum, 10));
    CHECK(!memcmp(g.nb.sent[1], big, 1000));
    struct vnet_stats st;
    vnet_get_stats(g.d, &st);
    CHECK_EQ(st.tx_bad, 3);
    CHECK_EQ(used_idx(&g, 1), 5);
    nrig_close(&g);
    if (!nrig_open_tso(&g, F_V1, 1500, false)) return;
    f = vh_dev_features(&g.h);
    CHECK_EQ(f & ((1ull << VIRTIO_NET_F_HOST_TSO4) | (1ull << VIRTIO_NET_F_HOST_TSO6) |
                  (1ull << VIRTIO_NET_F_HOST_ECN)),
             0);
    nrig_close(&g);
}

/* Receive offloads on a tso backend: the driver's GUEST_CSUM/TSO4 reach the backend (on its
 * thread, at the next run), a 40 KiB TCP segment with the host's header lands in mergeable
 * buffers with that header and num_buffers, and a reset takes the offloads back. */
TEST(vnet_tso_receive_offloads)
{
    struct nrig g;
    uint64_t feats = F_V1 | F_MRG | F_GCSUM | (1ull << VIRTIO_NET_F_GUEST_TSO4);
    if (!nrig_open_tso(&g, feats, 1500, true)) return;
    CHECK(vh_dev_features(&g.h) & (1ull << VIRTIO_NET_F_GUEST_TSO6));
    offer_rx(&g, 20, 4096);
    vh_wr(&g.h, VH_QUEUE_NOTIFY, 0); /* a run: the offloads are applied */
    CHECK_EQ(g.nb.offload, NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4);
    static uint8_t seg[40000];
    make_frame(seg, sizeof(seg), 3);
    const uint8_t hh[12] = {VIRTIO_NET_HDR_F_NEEDS_CSUM,
                            VIRTIO_NET_HDR_GSO_TCPV4,
                            54,
                            0,
                            0xb4,
                            0x05,
                            34,
                            0,
                            16,
                            0,
                            0,
                            0};
    g.nb.c.receive_hdr(g.nb.c.ctx, hh, seg, sizeof(seg));
    /* 12 + 40000 bytes over 4096-byte buffers: 10 of them */
    CHECK_EQ(used_idx(&g, 0), 10);
    const uint8_t *first = used_buf(&g, 0, 0);
    CHECK(!memcmp(first, hh, 10));
    CHECK_EQ(first[10] | first[11] << 8, 10); /* num_buffers */
    CHECK(!memcmp(first + 12, seg, 4096 - 12));
    vh_wr(&g.h, VH_STATUS, 0); /* reset */
    g.nb.c.run(g.nb.c.ctx);
    CHECK_EQ(g.nb.offload, 0);
    nrig_close(&g);
    /* a driver without GUEST_CSUM: nothing is left to it */
    if (!nrig_open_tso(&g, F_V1 | F_MRG | (1ull << VIRTIO_NET_F_GUEST_TSO4), 1500, true)) return;
    vh_wr(&g.h, VH_QUEUE_NOTIFY, 0);
    CHECK_EQ(g.nb.offload, 0);
    nrig_close(&g);
}

TEST(vnet_tx_bad_lengths_dropped)
{
    struct nrig g;
    if (!nrig_open(&g, F_V1)) return;
    static uint8_t big[NET_FRAME_MAX + 1];
    uint8_t hdr[HDR] = {0};
    tx(&g, hdr, big, 13, 4096);                /* shorter than an Ethernet header */
    tx(&g, hdr, big, NET_FRAME_MAX + 1, 4096); /* longer than the largest frame */
    tx(&g, hdr, big, NET_FRAME_MAX, 4096);     /* the largest: sent */
    uint64_t b = vh_alloc(&g.h, 8);            /* no room even for the header */
    uint32_t l = 8;
    ring_add(&g, 1, &b, &l, 1, false);
    vh_wr(&g.h, VH_QUEUE_NOTIFY, 1);
    CHECK_EQ(g.nb.nsent, 1);
    CHECK_EQ(g.nb.sent_len[0], NET_FRAME_MAX);
    CHECK_EQ(used_idx(&g, 1), 4); /* every chain given back */
    struct vnet_stats st;
    vnet_get_stats(g.d, &st);
    CHECK_EQ(st.tx_bad, 3);
    nrig_close(&g);
}

TEST(vnet_rx_mergeable_spans_buffers)
{
    struct nrig g;
    if (!nrig_open(&g, F_V1 | F_MRG | F_GCSUM)) return;
    offer_rx(&g, 20, 100);
    vh_wr(&g.h, VH_QUEUE_NOTIFY, 0);
    uint8_t frame[1000];
    make_frame(frame, sizeof(frame), 5);
    g.nb.c.receive(g.nb.c.ctx, frame, sizeof(frame));
    /* 12 + 1000 bytes over 100-byte buffers: 11 of them, the last holding 12 */
    CHECK_EQ(used_idx(&g, 0), 11);
    uint8_t got[HDR + 1000];
    size_t off = 0;
    for (uint16_t i = 0; i < 11; i++) {
        uint32_t l = used_len(&g, 0, i);
        CHECK_EQ(l, i < 10 ? 100 : 12);
        if (off + l <= sizeof(got)) memcpy(got + off, used_buf(&g, 0, i), l);
        off += l;
    }
    CHECK_EQ(got[0], VIRTIO_NET_HDR_F_DATA_VALID); /* GUEST_CSUM negotiated */
    CHECK_EQ(got[10] | got[11] << 8, 11);          /* num_buffers */
    CHECK(!memcmp(got + HDR, frame, sizeof(frame)));
    nrig_close(&g);
}

TEST(vnet_rx_header_split_over_segments)
{
    struct nrig g;
    if (!nrig_open(&g, F_V1 | F_MRG)) return;
    /* first buffer: segments of 5, 6, 1 (num_buffers' two bytes in different segments) and 8 */
    uint32_t lens[4] = {5, 6, 1, 8};
    uint64_t gpa[4];
    for (int i = 0; i < 4; i++)
        gpa[i] = vh_alloc(&g.h, lens[i]);
    ring_add(&g, 0, gpa, lens, 4, true);
    offer_rx(&g, 4, 32);
    uint8_t frame[60];
    make_frame(frame, sizeof(frame), 9);
    g.nb.c.receive(g.nb.c.ctx, frame, sizeof(frame));
    /* 72 bytes: 20 in the first chain, 32, then 20 */
    CHECK_EQ(used_idx(&g, 0), 3);
    CHECK_EQ(used_len(&g, 0, 0), 20);
    CHECK_EQ(used_len(&g, 0, 1), 32);
    CHECK_EQ(used_len(&g, 0, 2), 20);
    CHECK_EQ(*vh_ptr(&g.h, gpa[1] + 5), 3); /* num_buffers low byte: header byte 10 */
    CHECK_EQ(*vh_ptr(&g.h, gpa[2]), 0);     /* high byte: header byte 11 */
    CHECK(!memcmp(vh_ptr(&g.h, gpa[3]), frame, 8));
    nrig_close(&g);
}

TEST(vnet_rx_waits_without_taking_buffers)
{
    struct nrig g;
    if (!nrig_open(&g, F_V1 | F_MRG | F_EVT)) return;
    offer_rx(&g, 3, 100); /* 300 bytes: not enough for 1012 */
    uint8_t frame[1000];
    make_frame(frame, sizeof(frame), 1);
    g.nb.c.receive(g.nb.c.ctx, frame, sizeof(frame));
    CHECK_EQ(used_idx(&g, 0), 0); /* no buffer used, none lost */
    struct vnet_stats st;
    vnet_get_stats(g.d, &st);
    CHECK_EQ(st.rx_pending, 1);
    /* more buffers and a kick: the frame goes in, starting with the first buffer offered */
    offer_rx(&g, 10, 100);
    vh_wr(&g.h, VH_QUEUE_NOTIFY, 0);
    CHECK_EQ(used_idx(&g, 0), 11);
    CHECK_EQ(used_id(&g, 0, 0), 0);
    CHECK_EQ(used_id(&g, 0, 1), 1);
    CHECK(!memcmp(used_buf(&g, 0, 0) + HDR, frame, 100 - HDR));
    vnet_get_stats(g.d, &st);
    CHECK_EQ(st.rx_pending, 0);
    CHECK_EQ(st.rx_frames, 1);
    nrig_close(&g);
}

/* A snapshot freezes the device: while quiesced, frames from the backend wait and the transmit
 * queue is left alone, so guest memory does not move under the saved queue indices; afterwards
 * both go on. The saved MAC comes back on load. */
TEST(vnet_quiesce_save_load)
{
    struct nrig g;
    if (!nrig_open(&g, F_V1 | F_MRG | F_EVT)) return;
    offer_rx(&g, 4, 2048);
    vh_wr(&g.h, VH_QUEUE_NOTIFY, 0);
    virtio_mmio_quiesce(g.h.t, true);
    uint8_t frame[200], hdr[HDR] = {0};
    make_frame(frame, sizeof(frame), 3);
    g.nb.c.receive(g.nb.c.ctx, frame, sizeof(frame));
    tx(&g, hdr, frame, 100, 4096);
    CHECK_EQ(used_idx(&g, 0), 0);
    CHECK_EQ(used_idx(&g, 1), 0);
    CHECK_EQ(g.nb.nsent, 0);
    struct sw *w = sw_new();
    virtio_mmio_save(g.h.t, w, 0);
    const uint8_t *buf;
    size_t len;
    CHECK_EQ(sw_finish(w, &buf, &len), 0);
    virtio_mmio_quiesce(g.h.t, false); /* kicks the backend: both go on */
    CHECK_EQ(used_idx(&g, 0), 1);
    CHECK_EQ(used_idx(&g, 1), 1);
    CHECK_EQ(g.nb.nsent, 1);
    CHECK(!memcmp(used_buf(&g, 0, 0) + HDR, frame, sizeof(frame)));

    /* the record loads into a device made with another MAC: the guest's stays */
    struct nrig h;
    memset(&h, 0, sizeof(h));
    CHECK_EQ(vh_init(&h.h, RAM_SIZE), 0);
    h.nb.base.ops = &fake_ops;
    h.nb.run_on_kick = true;
    static const uint8_t other[6] = {0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc};
    h.d = vnet_create(&h.nb.base, other, &h.h.gm, vh_irq_line(&h.h));
    CHECK(h.d != NULL);
    if (h.d) {
        h.h.t = vnet_transport(h.d);
        struct sr r;
        CHECK_EQ(sr_open(&r, buf, len), 0);
        CHECK_EQ(virtio_mmio_load(h.h.t, &r, 0), 0);
        CHECK(!sr_failed(&r));
        sr_close(&r);
        uint8_t mac[6];
        for (unsigned i = 0; i < 6; i++)
            mac[i] = (uint8_t)vh_rd(&h.h, 0x100 + i);
        CHECK(!memcmp(mac, MAC, 6));
        vnet_destroy(h.d);
    }
    vh_free(&h.h);
    sw_free(w);
    nrig_close(&g);
}

TEST(vnet_rx_pending_bounded)
{
    struct nrig g;
    if (!nrig_open(&g, F_V1 | F_MRG)) return;
    uint8_t frame[64] = {0};
    for (int i = 0; i < VNET_RX_PENDING + 72; i++)
        g.nb.c.receive(g.nb.c.ctx, frame, sizeof(frame));
    struct vnet_stats st;
    vnet_get_stats(g.d, &st);
    CHECK_EQ(st.rx_pending, VNET_RX_PENDING);
    CHECK_EQ(st.rx_dropped, 72);
    /* they arrive in order once there are buffers */
    offer_rx(&g, 64, 1526);
    vh_wr(&g.h, VH_QUEUE_NOTIFY, 0);
    CHECK_EQ(used_idx(&g, 0), 64);
    vnet_get_stats(g.d, &st);
    CHECK_EQ(st.rx_pending, VNET_RX_PENDING - 64);
    /* a reset drops the rest at once: nothing is in flight */
    vh_wr(&g.h, VH_STATUS, 0);
    CHECK_EQ(vh_rd(&g.h, VH_STATUS), 0);
    vnet_get_stats(g.d, &st);
    CHECK_EQ(st.rx_pending, 0);
    CHECK_EQ(st.rx_dropped, 72 + VNET_RX_PENDING - 64);
    nrig_close(&g);
}

TEST(vnet_rx_small_buffer_without_mergeable)
{
    struct nrig g;
    if (!nrig_open(&g, F_V1)) return;
    offer_rx(&g, 1, 100);
    uint8_t frame[1000];
    make_frame(frame, sizeof(frame), 2);
    g.nb.c.receive(g.nb.c.ctx, frame, sizeof(frame)); /* does not fit: dropped */
    CHECK_EQ(used_idx(&g, 0), 0);
    g.nb.c.receive(g.nb.c.ctx, frame, 60); /* fits the buffer kept for it */
    CHECK_EQ(used_idx(&g, 0), 1);
    CHECK_EQ(used_len(&g, 0, 0), HDR + 60);
    uint8_t *b = used_buf(&g, 0, 0);
    CHECK_EQ(b[0], 0);  /* no GUEST_CSUM: no DATA_VALID */
    CHECK_EQ(b[10], 1); /* num_buffers is 1 without MRG_RXBUF */
    CHECK(!memcmp(b + HDR, frame, 60));
    struct vnet_stats st;
    vnet_get_stats(g.d, &st);
    CHECK_EQ(st.rx_too_small, 1);
    nrig_close(&g);
}

TEST(vnet_rx_before_driver_ok_dropped)
{
    struct nrig g;
    memset(&g, 0, sizeof(g));
    CHECK_EQ(vh_init(&g.h, RAM_SIZE), 0);
    g.nb.base.ops = &fake_ops;
    g.d = vnet_create(&g.nb.base, MAC, &g.h.gm, vh_irq_line(&g.h));
    g.h.t = vnet_transport(g.d);
    uint8_t frame[64] = {0};
    g.nb.c.receive(g.nb.c.ctx, frame, sizeof(frame));
    struct vnet_stats st;
    vnet_get_stats(g.d, &st);
    CHECK_EQ(st.rx_pending, 0);
    CHECK_EQ(st.rx_dropped, 1);
    CHECK_EQ(g.h.irq.raises, 0);
    nrig_close(&g);
}

TEST(vnet_malformed_rings_need_reset)
{
    struct nrig g;
    if (!nrig_open(&g, F_V1 | F_MRG)) return;
    /* tx: avail idx jumps past the queue size */
    vh_put16(&g.h, g.q[1].avail + 2, 200);
    vh_wr(&g.h, VH_QUEUE_NOTIFY, 1);
    CHECK(vh_rd(&g.h, VH_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
    CHECK_EQ(g.nb.nsent, 0);
    nrig_close(&g);

    /* rx: a buffer outside guest memory */
    if (!nrig_open(&g, F_V1 | F_MRG)) return;
    uint64_t gpa = VH_RAM_BASE + RAM_SIZE - 8;
    uint32_t len = 4096;
    ring_add(&g, 0, &gpa, &len, 1, true);
    uint8_t frame[64] = {0};
    g.nb.c.receive(g.nb.c.ctx, frame, sizeof(frame));
    CHECK(vh_rd(&g.h, VH_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
    CHECK_EQ(used_idx(&g, 0), 0);
    /* later frames go nowhere and touch nothing */
    g.nb.c.receive(g.nb.c.ctx, frame, sizeof(frame));
    /* a reset and a new probe bring it back */
    bool ok = vh_negotiate(&g.h, F_V1 | F_MRG) == 0;
    ring_setup(&g, 0, 64);
    ring_setup(&g, 1, 64);
    ok = ok && vh_driver_ok(&g.h) == 0;
    CHECK(ok);
    offer_rx(&g, 1, 1526);
    g.nb.c.receive(g.nb.c.ctx, frame, sizeof(frame));
    CHECK_EQ(used_idx(&g, 0), 1);
    nrig_close(&g);
}

TEST(vnet_tx_kick_only_wakes_backend)
{
    /* The hart's notify must not do the work itself: with a backend that has not run yet,
     * nothing is taken from the ring. */
    struct nrig g;
    if (!nrig_open(&g, F_V1)) return;
    g.nb.run_on_kick = false;
    uint8_t hdr[HDR] = {0}, frame[60] = {0};
    unsigned kicks = g.nb.kicks;
    tx(&g, hdr, frame, sizeof(frame), 4096);
    CHECK_EQ(g.nb.kicks, kicks + 1);
    CHECK_EQ(used_idx(&g, 1), 0);
    g.nb.c.run(g.nb.c.ctx); /* the backend thread's turn */
    CHECK_EQ(used_idx(&g, 1), 1);
    CHECK_EQ(g.nb.nsent, 1);
    nrig_close(&g);
}

/* ---- --net and --mac ---- */

TEST(net_spec_parse_good)
{
    struct net_spec s;
    char err[256];
    CHECK_EQ(net_spec_parse("none", &s, err, sizeof(err)), 0);
    CHECK_EQ(s.kind, NET_NONE);
    CHECK_EQ(net_spec_parse("user", &s, err, sizeof(err)), 0);
    CHECK_EQ(s.kind, NET_USER);
    CHECK(!s.restrict_);
    CHECK(s.ipv6);
    CHECK_EQ(net_spec_parse("user,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=udp::5353-10.0.2.15:53,"
                            "hostfwd=::8080-:80,restrict=on,ipv6=off",
                            &s, err, sizeof(err)),
             0);
    CHECK_EQ(s.nfwd, 3);
    CHECK(!s.fwd[0].udp);
    CHECK_EQ(ntohl(s.fwd[0].host_addr.s_addr), 0x7f000001);
    CHECK_EQ(s.fwd[0].host_port, 2222);
    CHECK_EQ(s.fwd[0].guest_addr.s_addr, 0);
    CHECK_EQ(s.fwd[0].guest_port, 22);
    CHECK(s.fwd[1].udp);
    CHECK_EQ(s.fwd[1].host_addr.s_addr, htonl(INADDR_ANY));
    CHECK_EQ(ntohl(s.fwd[1].guest_addr.s_addr), 0x0a00020f);
    CHECK(!s.fwd[2].udp);
    CHECK_EQ(s.fwd[2].host_port, 8080);
    CHECK(s.restrict_);
    CHECK(!s.ipv6);
    CHECK_EQ(s.mtu, 0); /* the default: NET_MTU_MAX */
    CHECK_EQ(net_spec_parse("user,mtu=1500", &s, err, sizeof(err)), 0);
    CHECK_EQ(s.mtu, 1500);
    char back[128];
    CHECK_EQ(net_spec_format(&s, back, sizeof(back)), 0);
    CHECK_STR(back, "user,mtu=1500");
    CHECK_EQ(net_spec_parse("user,mtu=65520", &s, err, sizeof(err)), 0);
    CHECK_EQ(net_spec_format(&s, back, sizeof(back)), 0);
    CHECK_STR(back, "user"); /* the default is not written */
    CHECK_EQ(net_spec_parse("tap,ifname=tap-0.x_y", &s, err, sizeof(err)), 0);
    CHECK_EQ(s.kind, NET_TAP);
    CHECK_STR(s.ifname, "tap-0.x_y");
    CHECK_EQ(net_spec_parse("tap,ifname=abcdefghijklmno", &s, err, sizeof(err)), 0); /* 15 */
}

TEST(net_spec_parse_bad)
{
    static const char *const bad[] = {
        "",
        "tap",
        "none,restrict=on",
        "user,",
        "user,restrict",
        "user,restrict=yes",
        "user,hostfwd=tcp:127.0.0.1:2222",
        "user,hostfwd=tcp:127.0.0.1:0-:22",
        "user,hostfwd=tcp::65536-:22",
        "user,hostfwd=tcp::22-:",
        "user,hostfwd=sctp::22-:22",
        "user,hostfwd=tcp:1.2.3:22-:22",
        "user,hostfwd=tcp::22-:22x",
        "user,hostfwd=tcp::-22-:22",
        "user,hostfwd=tcp::22-:22,hostfwd=tcp::22-:23",
        "user,bogus=1",
        "user,ipv6=maybe",
        "user,mtu=575",
        "user,mtu=65521",
        "user,mtu=",
        "user,mtu=1500x",
        "user,mtu=0001500000",
        "users",
        "tap",
        "tap,",
        "tap,ifname=",
        "tap,ifname=abcdefghijklmnop", /* 16: longer than IFNAMSIZ - 1 */
        "tap,ifname=a/b",
        "tap,ifname=a b",
        "tap,ifname=x,restrict=on",
        "tap,name=x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct net_spec s;
        char err[256] = "";
        int r = net_spec_parse(bad[i], &s, err, sizeof(err));
        if (r != -EINVAL) fprintf(stderr, "  accepted: '%s'\n", bad[i]);
        CHECK_EQ(r, -EINVAL);
        CHECK(err[0] != 0);
        CHECK(!strchr(err, '\n'));
    }
    /* more rules than fit */
    char many[2048] = "user";
    for (int i = 0; i <= NET_MAX_HOSTFWD; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), ",hostfwd=tcp::%d-:80",
                 1000 + i);
    struct net_spec s;
    char err[256];
    CHECK_EQ(net_spec_parse(many, &s, err, sizeof(err)), -EINVAL);
}

TEST(net_mac_parse_and_generate)
{
    uint8_t m[6];
    CHECK_EQ(net_mac_parse("52:54:00:12:34:56", m), 0);
    CHECK(!memcmp(m, MAC, 6));
    CHECK_EQ(net_mac_parse("02:AB:cd:00:00:01", m), 0);
    CHECK_EQ(m[1], 0xab);
    static const char *const bad[] = {"",
                                      "52:54:00:12:34",
                                      "52:54:00:12:34:56:78",
                                      "01:00:5e:00:00:01", /* multicast */
                                      "00:00:00:00:00:00",
                                      "52-54-00-12-34-56",
                                      "52:54:00:12:34:5g",
                                      "+2:54:00:12:34:56",
                                      " 2:54:00:12:34:56"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_EQ(net_mac_parse(bad[i], m), -EINVAL);
    /* QEMU's locally administered prefix, then random bytes: a generated address parses */
    uint8_t a[6];
    net_mac_generate(a);
    CHECK_EQ(a[0], 0x52);
    CHECK_EQ(a[1], 0x54);
    CHECK_EQ(a[2], 0x00);
    char s[18];
    snprintf(s, sizeof(s), "%02x:%02x:%02x:%02x:%02x:%02x", a[0], a[1], a[2], a[3], a[4], a[5]);
    CHECK_EQ(net_mac_parse(s, m), 0);
}

/* ---- the configuration (Firecracker's network-interfaces, vessel.network) ---- */

TEST(config_network_interfaces)
{
    static struct vm_spec s, t;
    char err[512];
    json_object *o = json_tokener_parse(
        "{\"boot-source\":{\"kernel_image_path\":\"/k\"},"
        "\"network-interfaces\":[{\"iface_id\":\"eth0\",\"guest_mac\":\"52:54:00:0a:0b:0c\","
        "\"rx_rate_limiter\":null}],"
        "\"vessel\":{\"firmware\":\"/fw\",\"network\":\"user,hostfwd=tcp:127.0.0.1:2222-:22,"
        "restrict=on\"}}");
    CHECK(o != NULL);
    CHECK_EQ(vm_spec_from_json(&s, o, err, sizeof(err)), 0);
    json_object_put(o);
    CHECK(s.net.present);
    CHECK(s.net.mac_set);
    static struct vm_options opts;
    char cmdline[4200];
    CHECK_EQ(vm_spec_to_options(&s, &opts, cmdline, sizeof(cmdline), err, sizeof(err)), 0);
    CHECK_EQ(opts.net.kind, NET_USER);
    CHECK_EQ(opts.net.nfwd, 1);
    CHECK_EQ(opts.net.fwd[0].host_port, 2222);
    CHECK(opts.net.restrict_);
    CHECK(opts.mac_set);
    CHECK_EQ(opts.mac[5], 0x0c);
    json_object *back = vm_spec_to_json(&s, true);
    CHECK_EQ(vm_spec_from_json(&t, back, err, sizeof(err)), 0);
    json_object_put(back);
    CHECK(memcmp(&s, &t, sizeof(s)) == 0);

    /* a tap by Firecracker's host_dev_name; PUT /network-interfaces/eth0 replaces it */
    o = json_tokener_parse("{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\"}");
    CHECK_EQ(vm_spec_set_net(&s, "eth0", o, err, sizeof(err)), 0);
    json_object_put(o);
    CHECK_EQ(vm_spec_to_options(&s, &opts, cmdline, sizeof(cmdline), err, sizeof(err)), 0);
    CHECK_EQ(opts.net.kind, NET_TAP);
    CHECK_STR(opts.net.ifname, "tap0");
    CHECK_EQ(opts.mac[5], 0x0c); /* the address given before stays */

    /* vessel create: the MAC is chosen once and stored, so every start gets the same one */
    static struct vm_options ro;
    memset(&ro, 0, sizeof(ro));
    ro.machine.cpus = 1;
    ro.machine.ram_size = 128 << 20;
    CHECK_EQ(
        net_spec_parse("user,hostfwd=udp::5353-10.0.2.15:53,ipv6=off", &ro.net, err, sizeof(err)),
        0);
    CHECK_EQ(vm_spec_from_options(&s, &ro, err, sizeof(err)), 0);
    CHECK(s.net.mac_set);
    CHECK_EQ(s.net.mac[0], 0x52);
    CHECK_STR(s.net.user, "user,hostfwd=udp::5353-10.0.2.15:53,ipv6=off");
    snprintf(s.kernel, sizeof(s.kernel), "/k");
    back = vm_spec_to_json(&s, true);
    CHECK_EQ(vm_spec_from_json(&t, back, err, sizeof(err)), 0);
    json_object_put(back);
    CHECK(!memcmp(t.net.mac, s.net.mac, 6));
    CHECK_EQ(vm_spec_to_options(&t, &opts, cmdline, sizeof(cmdline), err, sizeof(err)), 0);
    CHECK(!memcmp(opts.mac, s.net.mac, 6));
    CHECK_EQ(opts.net.fwd[0].guest_port, 53);
    CHECK(opts.net.fwd[0].udp);
    CHECK(!opts.net.ipv6);

    const char *bad[] = {
        "{\"network-interfaces\":[{\"iface_id\":\"a\"},{\"iface_id\":\"b\"}]}",
        "{\"network-interfaces\":{\"iface_id\":\"a\"}}",
        "{\"network-interfaces\":[{\"host_dev_name\":\"tap0\"}]}",
        "{\"network-interfaces\":[{\"iface_id\":\"a\",\"guest_mac\":\"01:00:5e:00:00:01\"}]}",
        "{\"network-interfaces\":[{\"iface_id\":\"a\",\"host_dev_name\":\"t/0\"}]}",
        "{\"network-interfaces\":[{\"iface_id\":\"a\",\"rx_rate_limiter\":{\"bandwidth\":{}}}]}",
        "{\"network-interfaces\":[{\"iface_id\":\"a\",\"x\":1}]}",
        "{\"vessel\":{\"network\":\"user\"}}",
        "{\"network-interfaces\":[{\"iface_id\":\"a\"}],\"vessel\":{\"network\":\"tap,ifname=x\"}}",
        "{\"network-interfaces\":[{\"iface_id\":\"a\"}],\"vessel\":{\"network\":\"user,x=1\"}}",
        "{\"network-interfaces\":[{\"iface_id\":\"a\",\"host_dev_name\":\"t0\"}],"
        "\"vessel\":{\"network\":\"user\"}}",
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_object *b = json_tokener_parse(bad[i]);
        CHECK(b != NULL);
        err[0] = 0;
        int r = vm_spec_from_json(&t, b, err, sizeof(err));
        if (r != -EINVAL) fprintf(stderr, "  accepted: %s\n", bad[i]);
        CHECK_EQ(r, -EINVAL);
        CHECK(err[0] != 0);
        json_object_put(b);
    }
    /* the path's id and the body's must agree */
    o = json_tokener_parse("{\"iface_id\":\"eth1\"}");
    CHECK_EQ(vm_spec_set_net(&s, "eth0", o, err, sizeof(err)), -EINVAL);
    json_object_put(o);
}

TEST(net_publish)
{
    struct net_spec s;
    char err[256];
    memset(&s, 0, sizeof(s)); /* NET_NONE: --publish makes it user networking */
    CHECK_EQ(net_spec_add_publish(&s, "8080:80", err, sizeof(err)), 0);
    CHECK_EQ(s.kind, NET_USER);
    CHECK(s.ipv6);
    CHECK_EQ(ntohl(s.fwd[0].host_addr.s_addr), 0x7f000001); /* loopback unless asked */
    CHECK_EQ(s.fwd[0].host_port, 8080);
    CHECK_EQ(s.fwd[0].guest_port, 80);
    CHECK_EQ(net_spec_add_publish(&s, "0.0.0.0:2222:22", err, sizeof(err)), 0);
    CHECK_EQ(s.fwd[1].host_addr.s_addr, 0);
    CHECK_EQ(net_spec_add_publish(&s, "5353:53/udp", err, sizeof(err)), 0);
    CHECK(s.fwd[2].udp);
    CHECK_EQ(s.nfwd, 3);
    char buf[512];
    CHECK_EQ(net_spec_format(&s, buf, sizeof(buf)), 0);
    CHECK_STR(buf, "user,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=tcp::2222-:22,"
                   "hostfwd=udp:127.0.0.1:5353-:53");
    struct net_spec t;
    CHECK_EQ(net_spec_parse(buf, &t, err, sizeof(err)), 0);
    CHECK_EQ(t.nfwd, 3);
    CHECK(!memcmp(t.fwd, s.fwd, sizeof(t.fwd[0]) * 3));
    CHECK_EQ(net_spec_format(&s, buf, 20), -ENAMETOOLONG);
    static const char *const bad[] = {
        "8080",         "8080:80:1:2",   ":80",      "8080:",  "x:80",
        "8080:80/sctp", "1.2.3:8080:80", "70000:80", "8080:80" /* twice */};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        CHECK_EQ(net_spec_add_publish(&s, bad[i], err, sizeof(err)), -EINVAL);
        CHECK(err[0] != 0);
    }
    struct net_spec tap;
    CHECK_EQ(net_spec_parse("tap,ifname=t0", &tap, err, sizeof(err)), 0);
    CHECK_EQ(net_spec_add_publish(&tap, "8080:80", err, sizeof(err)), -EINVAL);
}

/* ---- DNS through the host's resolver (backend/net/slirp.h) ---- */

static uint16_t sum16(const uint8_t *p, size_t n, uint32_t s)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        s += (uint32_t)p[i] << 8 | p[i + 1];
    if (n & 1) s += (uint32_t)p[n - 1] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)s;
}

/* An Ethernet + IPv4 + UDP/TCP frame src:sport -> dst:dport with valid checksums. */
static size_t make_ip(uint8_t *f, uint8_t proto, uint32_t src, uint32_t dst, uint16_t sport,
                      uint16_t dport, size_t payload)
{
    size_t th = proto == 17 ? 8 : 20, tot = 20 + th + payload;
    memset(f, 0, 14 + tot);
    f[12] = 0x08;
    uint8_t *ip = f + 14, *t = ip + 20;
    ip[0] = 0x45;
    ip[2] = (uint8_t)(tot >> 8);
    ip[3] = (uint8_t)tot;
    ip[8] = 64;
    ip[9] = proto;
    for (int i = 0; i < 4; i++) {
        ip[12 + i] = (uint8_t)(src >> (24 - 8 * i));
        ip[16 + i] = (uint8_t)(dst >> (24 - 8 * i));
    }
    uint16_t c = (uint16_t)~sum16(ip, 20, 0);
    ip[10] = (uint8_t)(c >> 8);
    ip[11] = (uint8_t)c;
    t[0] = (uint8_t)(sport >> 8);
    t[1] = (uint8_t)sport;
    t[2] = (uint8_t)(dport >> 8);
    t[3] = (uint8_t)dport;
    if (proto == 17) {
        t[4] = (uint8_t)((8 + payload) >> 8);
        t[5] = (uint8_t)(8 + payload);
    } else {
        t[12] = 0x50;
    }
    for (size_t i = 0; i < payload; i++)
        t[th + i] = (uint8_t)(i * 13 + 1);
    uint8_t ph[12] = {0};
    memcpy(ph, ip + 12, 8);
    ph[9] = proto;
    ph[10] = (uint8_t)((th + payload) >> 8);
    ph[11] = (uint8_t)(th + payload);
    c = (uint16_t)~sum16(t, th + payload, sum16(ph, 12, 0));
    size_t co = proto == 17 ? 6 : 16;
    t[co] = (uint8_t)(c >> 8);
    t[co + 1] = (uint8_t)c;
    return 14 + tot;
}

/* Both checksums of a frame verify. */
static bool frame_ok(const uint8_t *f)
{
    const uint8_t *ip = f + 14, *t = ip + 20;
    size_t tot = (size_t)(ip[2] << 8 | ip[3]);
    if (sum16(ip, 20, 0) != 0xffff) return false;
    uint8_t ph[12] = {0};
    memcpy(ph, ip + 12, 8);
    ph[9] = ip[9];
    ph[10] = (uint8_t)((tot - 20) >> 8);
    ph[11] = (uint8_t)(tot - 20);
    return sum16(t, tot - 20, sum16(ph, 12, 0)) == 0xffff;
}

TEST(net_dns_nat_rewrites_and_keeps_checksums)
{
    struct in_addr virt = {htonl(0x0a000203)}, real = {htonl(0xc0a80135)}; /* 192.168.1.53 */
    uint8_t f[200];
    for (int proto = 6; proto <= 17; proto += 11) {
        for (size_t pl = 0; pl < 40; pl += 13) {
            /* guest -> 10.0.2.3:53 becomes guest -> 192.168.1.53:53 */
            size_t n = make_ip(f, (uint8_t)proto, 0x0a00020f, 0x0a000203, 40000, 53, pl);
            CHECK(net_dns_nat(f, n, true, virt, real));
            CHECK_EQ(f[30], 192);
            CHECK_EQ(f[33], 53);
            CHECK(frame_ok(f));
            /* the answer comes back from 10.0.2.3 */
            n = make_ip(f, (uint8_t)proto, 0xc0a80135, 0x0a00020f, 53, 40000, pl);
            CHECK(net_dns_nat(f, n, false, virt, real));
            CHECK_EQ(f[26], 10);
            CHECK_EQ(f[29], 3);
            CHECK(frame_ok(f));
        }
    }
    /* not DNS: another port, another address, ICMP, IPv6, short or lying lengths */
    size_t n = make_ip(f, 17, 0x0a00020f, 0x0a000203, 40000, 54, 4);
    CHECK(!net_dns_nat(f, n, true, virt, real));
    n = make_ip(f, 17, 0x0a00020f, 0x0a000204, 40000, 53, 4);
    CHECK(!net_dns_nat(f, n, true, virt, real));
    n = make_ip(f, 17, 0x0a00020f, 0x0a000203, 40000, 53, 4);
    f[23] = 1;
    CHECK(!net_dns_nat(f, n, true, virt, real));
    n = make_ip(f, 17, 0x0a00020f, 0x0a000203, 40000, 53, 4);
    CHECK(!net_dns_nat(f, 30, true, virt, real));
    f[16] = 0xff; /* total length beyond the frame */
    CHECK(!net_dns_nat(f, n, true, virt, real));
    n = make_ip(f, 17, 0x0a00020f, 0x0a000203, 40000, 53, 4);
    f[12] = 0x86;
    f[13] = 0xdd;
    CHECK(!net_dns_nat(f, n, true, virt, real));
    /* UDP without a checksum keeps none */
    n = make_ip(f, 17, 0x0a00020f, 0x0a000203, 40000, 53, 4);
    f[40] = f[41] = 0;
    CHECK(net_dns_nat(f, n, true, virt, real));
    CHECK_EQ(f[40] | f[41], 0);
}

TEST(net_dns_pick_resolv_conf)
{
    struct in_addr a;
    CHECK_EQ(net_dns_pick("# x\nsearch lan\nnameserver 10.255.255.53\nnameserver 1.1.1.1\n", &a),
             0);
    CHECK_EQ(ntohl(a.s_addr), 0x0affff35);
    CHECK_EQ(net_dns_pick("nameserver 127.0.0.1\n", &a), 0);
    CHECK_EQ(ntohl(a.s_addr), 0x0a000202); /* the host's loopback through 10.0.2.2 */
    CHECK_EQ(net_dns_pick("nameserver 127.0.0.53\nnameserver 9.9.9.9", &a), 0);
    CHECK_EQ(ntohl(a.s_addr), 0x09090909);
    CHECK_EQ(net_dns_pick("nameserver ::1\nnameserver 127.0.0.53\n", &a), -ENOENT);
    CHECK_EQ(net_dns_pick("", &a), -ENOENT);
}

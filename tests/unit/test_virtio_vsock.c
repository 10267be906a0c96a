/* virtio-vsock device tests: a fake backend (host sockets simulated: what the device sends,
 * what the host has to read, connects that succeed or are refused) run on the test's thread,
 * and the rx (0) and tx (1) queues driven by hand as Linux's vsock transport would. Also the
 * --vsock syntax and the credit arithmetic. */
#include "dev/virtio/vsock.h"
#include "test.h"
#include "virtio_harness.h"
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define RAM_SIZE  (2u << 20)
#define F_V1      (1ull << VIRTIO_F_VERSION_1)
#define GUEST_CID 3
#define HOST_DATA 8192

/* ---- the fake backend ---- */

struct fake_vb {
    struct vsock_backend base;
    struct vsock_client c;
    bool attached;
    bool refuse; /* connect fails with ECONNREFUSED */
    unsigned connects, accepted, closes, shutdowns;
    uint32_t last_port, last_hostport;
    uint8_t sent[4 * VSOCK_BUF_ALLOC]; /* what the "host" received */
    size_t nsent;
    size_t send_room;        /* bytes send() takes before EAGAIN */
    uint8_t host[HOST_DATA]; /* what the "host" sends */
    size_t host_len, host_off;
    bool host_eof;
};

static void fk_attach(struct vsock_backend *b, const struct vsock_client *c)
{
    struct fake_vb *f = (struct fake_vb *)b;
    f->attached = c != NULL;
    if (c) f->c = *c;
}
static void fk_kick(struct vsock_backend *b)
{
    struct fake_vb *f = (struct fake_vb *)b;
    if (f->attached) f->c.run(f->c.ctx);
}
static int fk_connect(struct vsock_backend *b, unsigned conn, uint32_t port)
{
    struct fake_vb *f = (struct fake_vb *)b;
    (void)conn;
    f->connects++;
    f->last_port = port;
    return f->refuse ? -ECONNREFUSED : 0;
}
static void fk_accepted(struct vsock_backend *b, unsigned conn, uint32_t hp)
{
    struct fake_vb *f = (struct fake_vb *)b;
    (void)conn;
    f->accepted++;
    f->last_hostport = hp;
}
static ssize_t fk_recv(struct vsock_backend *b, unsigned conn, void *buf, size_t len)
{
    struct fake_vb *f = (struct fake_vb *)b;
    (void)conn;
    size_t left = f->host_len - f->host_off;
    if (!left) return f->host_eof ? 0 : -EAGAIN;
    size_t n = len < left ? len : left;
    memcpy(buf, f->host + f->host_off, n);
    f->host_off += n;
    return (ssize_t)n;
}
static ssize_t fk_send(struct vsock_backend *b, unsigned conn, const void *buf, size_t len)
{
    struct fake_vb *f = (struct fake_vb *)b;
    (void)conn;
    if (!f->send_room) return -EAGAIN;
    size_t n = len < f->send_room ? len : f->send_room;
    if (f->nsent + n > sizeof(f->sent)) n = sizeof(f->sent) - f->nsent;
    memcpy(f->sent + f->nsent, buf, n);
    f->nsent += n;
    f->send_room -= n;
    return (ssize_t)n;
}
static void fk_shutdown(struct vsock_backend *b, unsigned conn)
{
    (void)conn;
    ((struct fake_vb *)b)->shutdowns++;
}
static void fk_close_conn(struct vsock_backend *b, unsigned conn)
{
    (void)conn;
    ((struct fake_vb *)b)->closes++;
}
static void fk_close(struct vsock_backend *b, bool unlink_path)
{
    (void)b;
    (void)unlink_path;
}
static const struct vsock_backend_ops fk_ops = {fk_attach,   fk_kick,       fk_connect,
                                                fk_accepted, fk_recv,       fk_send,
                                                fk_shutdown, fk_close_conn, fk_close};

/* ---- queues by hand ---- */

struct ring {
    uint64_t desc, avail, used;
    uint16_t num, avail_idx, next, seen;
};

struct vrig {
    struct vh h;
    struct fake_vb b;
    struct vsock_dev *d;
    struct ring q[3];
};

static void ring_setup(struct vrig *g, unsigned qi, uint16_t num)
{
    struct ring *r = &g->q[qi];
    uint64_t base = VH_RAM_BASE + 0x10000ull * qi;
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

static void ring_add1(struct vrig *g, unsigned qi, uint64_t gpa, uint32_t len, bool write)
{
    struct ring *r = &g->q[qi];
    uint16_t di = r->next;
    vh_desc(&g->h, r->desc, di, gpa, len, write ? VIRTQ_DESC_F_WRITE : 0, 0);
    r->next = (uint16_t)((di + 1) % r->num);
    vh_put16(&g->h, r->avail + 4 + 2u * (r->avail_idx % r->num), di);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    r->avail_idx++;
    vh_put16(&g->h, r->avail + 2, r->avail_idx);
}

static bool vrig_open(struct vrig *g)
{
    memset(g, 0, sizeof(*g));
    CHECK_EQ(vh_init(&g->h, RAM_SIZE), 0);
    g->b.base.ops = &fk_ops;
    g->b.send_room = SIZE_MAX;
    g->d = vsock_dev_create(&g->b.base, GUEST_CID, &g->h.gm, vh_irq_line(&g->h));
    CHECK(g->d != NULL);
    if (!g->d) return false;
    CHECK(g->b.attached);
    g->h.t = vsock_dev_transport(g->d);
    bool ok = vh_negotiate(&g->h, F_V1) == 0;
    for (unsigned i = 0; i < 3; i++)
        ring_setup(g, i, 128);
    ok = ok && vh_driver_ok(&g->h) == 0;
    CHECK(ok);
    return ok;
}

static void vrig_close(struct vrig *g)
{
    vsock_dev_destroy(g->d);
    CHECK(!g->b.attached);
    vh_free(&g->h);
}

/* n receive buffers of len bytes */
static void offer_rx(struct vrig *g, unsigned n, uint32_t len)
{
    for (unsigned i = 0; i < n; i++)
        ring_add1(g, 0, vh_alloc(&g->h, len), len, true);
    vh_wr(&g->h, VH_QUEUE_NOTIFY, 0);
}

static struct vsock_hdr H(uint32_t src_port, uint32_t dst_port, uint16_t op, uint32_t len) {
    return (struct vsock_hdr){.src_cid = GUEST_CID,
                              .dst_cid = VSOCK_HOST_CID,
                              .src_port = src_port,
                              .dst_port = dst_port,
                              .len = len,
                              .type = VSOCK_TYPE_STREAM,
                              .op = op,
                              .buf_alloc = 65536};
}

/* One packet from the guest (header and payload in one buffer; chain_len: what the chain
 * says, default header + len). */
static void
tx(struct vrig *g, const struct vsock_hdr *h, const uint8_t *payload, uint32_t plen)
{
    uint64_t b = vh_alloc(&g->h, VSOCK_HDR_LEN + plen);
    vsock_hdr_encode(h, vh_ptr(&g->h, b));
    if (plen) memcpy(vh_ptr(&g->h, b + VSOCK_HDR_LEN), payload, plen);
    ring_add1(g, 1, b, VSOCK_HDR_LEN + plen, false);
    vh_wr(&g->h, VH_QUEUE_NOTIFY, 1);
}

/* The next packet the device put in the rx queue, or false if none. */
static bool rx_next(struct vrig *g, struct vsock_hdr *h, uint8_t **payload)
{
    struct ring *r = &g->q[0];
    uint16_t used = vh_get16(&g->h, r->used + 2);
    if (r->seen == used) return false;
    uint32_t id = vh_get32(&g->h, r->used + 4 + 8u * (r->seen % r->num));
    uint32_t len = vh_get32(&g->h, r->used + 8 + 8u * (r->seen % r->num));
    r->seen++;
    uint64_t addr;
    memcpy(&addr, vh_ptr(&g->h, r->desc + 16ull * id), 8);
    CHECK(len >= VSOCK_HDR_LEN);
    vsock_hdr_decode(vh_ptr(&g->h, addr), h);
    CHECK_EQ(h->len, len - VSOCK_HDR_LEN);
    if (payload) *payload = vh_ptr(&g->h, addr + VSOCK_HDR_LEN);
    return true;
}

/* ---- tests ---- */

TEST(vsock_credit_arithmetic)
{
    CHECK_EQ(vsock_credit(1000, 0, 0), 1000);
    CHECK_EQ(vsock_credit(1000, 100, 600), 500);
    CHECK_EQ(vsock_credit(1000, 600, 600), 1000);
    /* counters wrap */
    CHECK_EQ(vsock_credit(1000, 0xfffffff0u, 0x10u), 968);
    /* a peer whose fwd_cnt is ahead of what it was sent, or beyond its buf_alloc: nothing */
    CHECK_EQ(vsock_credit(1000, 700, 600), 0);
    CHECK_EQ(vsock_credit(1000, 0, 1001), 0);
}

TEST(vsock_header_roundtrip)
{
    struct vsock_hdr h = {0x1122334455667788ull, 2, 0xdeadbeef, 7, 9, 1, 5, 3, 65536, 77}, h2;
    uint8_t b[VSOCK_HDR_LEN];
    vsock_hdr_encode(&h, b);
    CHECK_EQ(b[0], 0x88);       /* little endian */
    CHECK_EQ(b[30], 5);         /* op at 30 */
    memset(&h2, 0, sizeof(h2)); /* padding: compare the fields */
    vsock_hdr_decode(b, &h2);
    CHECK(h2.src_cid == h.src_cid && h2.dst_cid == 2 && h2.src_port == 0xdeadbeef &&
          h2.dst_port == 7 && h2.len == 9 && h2.type == 1 && h2.op == 5 && h2.flags == 3 &&
          h2.buf_alloc == 65536 && h2.fwd_cnt == 77);
}

TEST(vsock_features_and_config)
{
    struct vrig g;
    if (!vrig_open(&g)) return;
    CHECK_EQ(vh_rd(&g.h, VH_DEVICE_ID), VIRTIO_ID_VSOCK);
    CHECK_EQ(virtio_mmio_ops.read(g.h.t, VH_CONFIG, 4), GUEST_CID);
    CHECK_EQ(virtio_mmio_ops.read(g.h.t, VH_CONFIG + 4, 4), 0);
    virtio_mmio_ops.write(g.h.t, VH_CONFIG, 9, 4); /* read-only */
    CHECK_EQ(virtio_mmio_ops.read(g.h.t, VH_CONFIG, 4), GUEST_CID);
    vrig_close(&g);
}

TEST(vsock_guest_connect_accepted_and_data)
{
    struct vrig g;
    if (!vrig_open(&g)) return;
    offer_rx(&g, 8, 4096);
    struct vsock_hdr h = H(1234, 5000, VSOCK_OP_REQUEST, 0), r;
    tx(&g, &h, NULL, 0);
    CHECK_EQ(g.b.connects, 1);
    CHECK_EQ(g.b.last_port, 5000);
    CHECK(rx_next(&g, &r, NULL));
    CHECK_EQ(r.op, VSOCK_OP_RESPONSE);
    CHECK_EQ(r.src_cid, VSOCK_HOST_CID);
    CHECK_EQ(r.dst_cid, GUEST_CID);
    CHECK_EQ(r.src_port, 5000);
    CHECK_EQ(r.dst_port, 1234);
    CHECK_EQ(r.buf_alloc, VSOCK_BUF_ALLOC);
    CHECK_EQ(r.fwd_cnt, 0);
    /* data to the host, in order */
    uint8_t data[3000];
    for (unsigned i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 13);
    h = H(1234, 5000, VSOCK_OP_RW, sizeof(data));
    tx(&g, &h, data, sizeof(data));
    CHECK_EQ(g.b.nsent, sizeof(data));
    CHECK(memcmp(g.b.sent, data, sizeof(data)) == 0);
    /* host data to the guest, bounded by the guest's credit (buf_alloc 1000) */
    for (unsigned i = 0; i < HOST_DATA; i++)
        g.b.host[i] = (uint8_t)(i ^ 0x5a);
    g.b.host_len = 2500;
    h = H(1234, 5000, VSOCK_OP_CREDIT_UPDATE, 0);
    h.buf_alloc = 1000;
    tx(&g, &h, NULL, 0);
    g.b.c.ready(g.b.c.ctx, 0, POLLIN);
    g.b.c.run(g.b.c.ctx);
    uint8_t *p;
    CHECK(rx_next(&g, &r, &p));
    CHECK_EQ(r.op, VSOCK_OP_RW);
    CHECK_EQ(r.len, 1000);
    CHECK(memcmp(p, g.b.host, 1000) == 0);
    CHECK(!rx_next(&g, &r, NULL)); /* no credit left: nothing more read */
    CHECK_EQ(g.b.host_off, 1000);
    CHECK_EQ(g.b.c.events(g.b.c.ctx, 0), 0); /* no POLLIN without credit */
    /* the guest forwarded it: the rest comes */
    h.fwd_cnt = 1000;
    h.buf_alloc = 65536;
    tx(&g, &h, NULL, 0);
    CHECK(rx_next(&g, &r, &p));
    CHECK_EQ(r.len, 1500);
    CHECK(memcmp(p, g.b.host + 1000, 1500) == 0);
    /* the host ends its side: SHUTDOWN SEND; the guest closes: RST, host socket closed */
    g.b.host_eof = true;
    g.b.c.ready(g.b.c.ctx, 0, POLLIN);
    g.b.c.run(g.b.c.ctx);
    CHECK(rx_next(&g, &r, NULL));
    CHECK_EQ(r.op, VSOCK_OP_SHUTDOWN);
    CHECK_EQ(r.flags, VSOCK_SHUTDOWN_SEND);
    h = H(1234, 5000, VSOCK_OP_SHUTDOWN, 0);
    h.flags = VSOCK_SHUTDOWN_SEND | VSOCK_SHUTDOWN_RCV;
    tx(&g, &h, NULL, 0);
    CHECK_EQ(g.b.shutdowns, 1);
    CHECK(rx_next(&g, &r, NULL));
    CHECK_EQ(r.op, VSOCK_OP_RST);
    CHECK_EQ(g.b.closes, 1);
    struct vsock_stats st;
    vsock_dev_get_stats(g.d, &st);
    CHECK_EQ(st.conns, 0);
    vrig_close(&g);
}

TEST(vsock_guest_connect_refused)
{
    struct vrig g;
    if (!vrig_open(&g)) return;
    offer_rx(&g, 4, 4096);
    g.b.refuse = true;
    struct vsock_hdr h = H(1234, 5001, VSOCK_OP_REQUEST, 0), r;
    tx(&g, &h, NULL, 0);
    CHECK(rx_next(&g, &r, NULL));
    CHECK_EQ(r.op, VSOCK_OP_RST);
    CHECK_EQ(r.dst_port, 1234);
    CHECK_EQ(r.src_port, 5001);
    struct vsock_stats st;
    vsock_dev_get_stats(g.d, &st);
    CHECK_EQ(st.conns, 0);
    vrig_close(&g);
}

TEST(vsock_hostile_headers)
{
    struct vrig g;
    if (!vrig_open(&g)) return;
    offer_rx(&g, 16, 4096);
    struct vsock_hdr r;
    /* wrong source CID, wrong destination CID: dropped without an answer */
    struct vsock_hdr h = H(1, 5000, VSOCK_OP_REQUEST, 0);
    h.src_cid = 4;
    tx(&g, &h, NULL, 0);
    h = H(1, 5000, VSOCK_OP_REQUEST, 0);
    h.dst_cid = 3;
    tx(&g, &h, NULL, 0);
    CHECK_EQ(g.b.connects, 0);
    CHECK(!rx_next(&g, &r, NULL));
    /* len beyond the chain: dropped */
    h = H(1, 5000, VSOCK_OP_RW, 100000);
    tx(&g, &h, NULL, 0);
    CHECK(!rx_next(&g, &r, NULL));
    /* a packet for no connection, an unknown op, a SEQPACKET request: RST */
    h = H(2, 5000, VSOCK_OP_RW, 0);
    tx(&g, &h, NULL, 0);
    CHECK(rx_next(&g, &r, NULL) && r.op == VSOCK_OP_RST && r.dst_port == 2);
    h = H(3, 5000, 99, 0);
    tx(&g, &h, NULL, 0);
    CHECK(rx_next(&g, &r, NULL) && r.op == VSOCK_OP_RST && r.dst_port == 3);
    h = H(4, 5000, VSOCK_OP_REQUEST, 0);
    h.type = 2;
    tx(&g, &h, NULL, 0);
    CHECK(rx_next(&g, &r, NULL) && r.op == VSOCK_OP_RST && r.dst_port == 4);
    CHECK_EQ(g.b.connects, 0);
    /* an RST for nothing: no answer (no RST storms) */
    h = H(5, 5000, VSOCK_OP_RST, 0);
    tx(&g, &h, NULL, 0);
    CHECK(!rx_next(&g, &r, NULL));
    /* a header shorter than 44 bytes: dropped */
    uint64_t b = vh_alloc(&g.h, 20);
    ring_add1(&g, 1, b, 20, false);
    vh_wr(&g.h, VH_QUEUE_NOTIFY, 1);
    CHECK(!rx_next(&g, &r, NULL));
    vrig_close(&g);
}

TEST(vsock_credit_violation_resets)
{
    struct vrig g;
    if (!vrig_open(&g)) return;
    offer_rx(&g, 16, 4096);
    g.b.send_room = 0; /* the host does not read: everything stays in the device's buffer */
    struct vsock_hdr h = H(7, 5000, VSOCK_OP_REQUEST, 0), r;
    tx(&g, &h, NULL, 0);
    CHECK(rx_next(&g, &r, NULL) && r.op == VSOCK_OP_RESPONSE);
    static uint8_t chunk[VSOCK_MAX_PKT];
    for (uint32_t sent = 0; sent < VSOCK_BUF_ALLOC; sent += VSOCK_MAX_PKT) {
        h = H(7, 5000, VSOCK_OP_RW, VSOCK_MAX_PKT);
        tx(&g, &h, chunk, VSOCK_MAX_PKT);
    }
    CHECK(!rx_next(&g, &r, NULL)); /* all within credit */
    h = H(7, 5000, VSOCK_OP_RW, 1);
    tx(&g, &h, chunk, 1); /* one byte beyond */
    CHECK(rx_next(&g, &r, NULL) && r.op == VSOCK_OP_RST);
    CHECK_EQ(g.b.closes, 1);
    struct vsock_stats st;
    vsock_dev_get_stats(g.d, &st);
    CHECK_EQ(st.credit_violations, 1);
    CHECK_EQ(st.conns, 0);
    vrig_close(&g);
}

TEST(vsock_connections_bounded)
{
    struct vrig g;
    if (!vrig_open(&g)) return;
    offer_rx(&g, 120, 256);
    struct vsock_hdr h, r;
    for (uint32_t i = 0; i < VSOCK_MAX_CONNS + 1; i++) {
        h = H(100 + i, 5000, VSOCK_OP_REQUEST, 0);
        tx(&g, &h, NULL, 0);
    }
    CHECK_EQ(g.b.connects, VSOCK_MAX_CONNS);
    unsigned resp = 0, rst = 0;
    while (rx_next(&g, &r, NULL)) {
        if (r.op == VSOCK_OP_RESPONSE) resp++;
        if (r.op == VSOCK_OP_RST && r.dst_port == 100 + VSOCK_MAX_CONNS) rst++;
    }
    CHECK_EQ(resp, VSOCK_MAX_CONNS);
    CHECK_EQ(rst, 1);
    /* host programs are refused too while the table is full */
    CHECK_EQ(g.b.c.host_connect(g.b.c.ctx, 6000), -1);
    vrig_close(&g);
}

TEST(vsock_host_connect_accept_and_refuse)
{
    struct vrig g;
    if (!vrig_open(&g)) return;
    offer_rx(&g, 8, 4096);
    int slot = g.b.c.host_connect(g.b.c.ctx, 5000);
    CHECK(slot >= 0);
    g.b.c.run(g.b.c.ctx);
    struct vsock_hdr r, h;
    CHECK(rx_next(&g, &r, NULL));
    CHECK_EQ(r.op, VSOCK_OP_REQUEST);
    CHECK_EQ(r.dst_port, 5000);
    CHECK(r.src_port >= (1u << 30));
    h = H(5000, r.src_port, VSOCK_OP_RESPONSE, 0);
    tx(&g, &h, NULL, 0);
    CHECK_EQ(g.b.accepted, 1);
    CHECK_EQ(g.b.last_hostport, r.src_port);
    /* a second one the guest refuses: the host socket is closed, no RST back */
    int slot2 = g.b.c.host_connect(g.b.c.ctx, 5001);
    CHECK(slot2 >= 0 && slot2 != slot);
    g.b.c.run(g.b.c.ctx);
    CHECK(rx_next(&g, &r, NULL) && r.op == VSOCK_OP_REQUEST && r.dst_port == 5001);
    h = H(5001, r.src_port, VSOCK_OP_RST, 0);
    tx(&g, &h, NULL, 0);
    CHECK_EQ(g.b.closes, 1);
    CHECK(!rx_next(&g, &r, NULL));
    /* a device reset closes the rest (on the backend's next turn) */
    vh_wr(&g.h, VH_STATUS, 0);
    g.b.c.run(g.b.c.ctx);
    CHECK_EQ(g.b.closes, 2);
    CHECK_EQ(g.b.c.host_connect(g.b.c.ctx, 5000), -1); /* no driver: refused */
    vrig_close(&g);
}

/* ---- the Unix-socket backend: a burst of host programs connecting at once ---- */

struct burst_client {
    atomic_int connects; /* host_connect calls (backend thread) */
};
static void bc_run(void *ctx)
{
    (void)ctx;
}
static int bc_host_connect(void *ctx, uint32_t port)
{
    struct burst_client *c = ctx;
    (void)port;
    return atomic_fetch_add(&c->connects, 1); /* slot 0, 1, 2, ... */
}
static short bc_events(void *ctx, unsigned conn)
{
    (void)ctx, (void)conn;
    return 0;
}
static void bc_ready(void *ctx, unsigned conn, short revents)
{
    (void)ctx, (void)conn, (void)revents;
}

/* More host programs than handshake slots connect at once, non-blocking as Python's sockets
 * with a timeout do, and each writes its CONNECT line: every one reaches the device (those
 * beyond VSOCK_MAX_HANDSHAKE wait in the listen queue), none is refused or closed. */
TEST(vsock_uds_burst_of_host_connects)
{
    enum { N = 40 };
    _Static_assert(N > 4 * VSOCK_MAX_HANDSHAKE && N <= VSOCK_MAX_CONNS, "burst size");
    char dir[] = "/tmp/vessel-unit-vsock-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    struct vsock_spec spec = {.present = true, .cid = 3};
    snprintf(spec.path, sizeof(spec.path), "%s/v.sock", dir);
    struct vsock_backend *vb = NULL;
    char err[256];
    CHECK_EQ(vsock_uds_open(&vb, &spec, err, sizeof(err)), 0);
    if (!vb) return;
    struct burst_client bc = {0};
    struct vsock_client cl = {.run = bc_run,
                              .host_connect = bc_host_connect,
                              .events = bc_events,
                              .ready = bc_ready,
                              .ctx = &bc};
    vsock_backend_attach(vb, &cl);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", spec.path);
    int fds[N], refused = 0;
    for (int i = 0; i < N; i++) {
        fds[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (connect(fds[i], (struct sockaddr *)&a, sizeof(a)) < 0) refused++;
    }
    CHECK_EQ(refused, 0);
    for (int i = 0; i < N; i++)
        CHECK(send(fds[i], "CONNECT 5000\n", 13, MSG_NOSIGNAL) == 13);
    for (int t = 0; t < 500 && atomic_load(&bc.connects) < N; t++)
        usleep(10000);
    CHECK_EQ(atomic_load(&bc.connects), N);
    /* each socket is held by the backend as a connection: none reads as closed */
    int closed = 0;
    for (int i = 0; i < N; i++) {
        char c;
        if (recv(fds[i], &c, 1, MSG_DONTWAIT) == 0) closed++;
    }
    CHECK_EQ(closed, 0);
    vsock_backend_attach(vb, NULL);
    vsock_backend_close(vb, true);
    for (int i = 0; i < N; i++)
        close(fds[i]);
    CHECK(rmdir(dir) == 0);
}

TEST(vsock_spec_syntax)
{
    struct vsock_spec s;
    char err[256];
    CHECK_EQ(vsock_spec_parse("cid=3,path=/tmp/v.sock", &s, err, sizeof(err)), 0);
    CHECK(s.present && s.cid == 3 && !strcmp(s.path, "/tmp/v.sock"));
    CHECK_EQ(vsock_spec_parse("path=/tmp/a,b,cid=9", &s, err, sizeof(err)),
             -EINVAL); /* path last */
    CHECK_EQ(vsock_spec_parse("cid=9,path=/tmp/a,b", &s, err, sizeof(err)), 0);
    CHECK(!strcmp(s.path, "/tmp/a,b"));
    CHECK_EQ(vsock_spec_parse("cid=2,path=/x", &s, err, sizeof(err)), -EINVAL);
    CHECK_EQ(vsock_spec_parse("cid=4294967295,path=/x", &s, err, sizeof(err)), -EINVAL);
    CHECK_EQ(vsock_spec_parse("cid=4294967296,path=/x", &s, err, sizeof(err)), -EINVAL);
    CHECK_EQ(vsock_spec_parse("cid=3", &s, err, sizeof(err)), -EINVAL);
    CHECK_EQ(vsock_spec_parse("cid=3,path=", &s, err, sizeof(err)), -EINVAL);
    CHECK_EQ(vsock_spec_parse("", &s, err, sizeof(err)), -EINVAL);
    char longp[200] = "cid=3,path=/";
    memset(longp + strlen(longp), 'x', VSOCK_UDS_PATH_MAX);
    CHECK_EQ(vsock_spec_parse(longp, &s, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "too long") != NULL);
}

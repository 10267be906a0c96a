/* virtio-vsock (virtio 1.x spec 5.10), see vsock.h. Locking: `lock` guards the device state,
 * the connection table and the queues. Queue and connection work runs on the backend thread
 * (the vsock_client callbacks, which may call the backend's connection functions); hart
 * threads only kick it (notify), reset (under the lock; the connections are closed by the
 * backend thread on its next turn) and read the configuration. */
#include "dev/virtio/vsock.h"
#include "util/log.h"
#include "util/staterec.h"
#include "util/ratelimit.h"
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define Q_RX                  0
#define Q_TX                  1
#define Q_EVENT               2
#define TX_BATCH              256 /* packets taken per turn before the receive side gets one */
#define CONFIG_LEN            8   /* le64 guest_cid */
#define EVENT_TRANSPORT_RESET 0   /* struct virtio_vsock_event's id (5.10.6.6) */
/* Host ports vessel gives the host end of host-initiated connections (as Firecracker: high,
 * out of the way of the ports guests connect to). */
#define LOCAL_PORT_FIRST      (1u << 30)

enum cstate {
    C_FREE = 0,
    C_REQUEST,     /* host-initiated: REQUEST owed or sent, waiting for the guest's answer */
    C_ESTABLISHED, /* data both ways */
    C_CLOSING,     /* the host socket is closed; an RST is owed to the guest, then free */
};

/* control packets owed to the guest on a connection */
#define P_REQUEST  1u
#define P_RESPONSE 2u
#define P_SHUTDOWN 4u
#define P_CREDIT   8u
#define P_RST      16u

struct conn {
    enum cstate st;
    uint32_t gport, hport; /* guest's port, host's port */
    unsigned pend;         /* P_* */
    bool host_eof;         /* the host sent all it will (SHUTDOWN SEND owed or sent) */
    bool guest_no_send;    /* the guest sent SHUTDOWN SEND: after the buffer, end the host's */
    bool guest_no_recv;    /* the guest sent SHUTDOWN RCV: nothing more is read for it */
    bool host_wr_shut;     /* the host socket's write side was shut */
    bool readable;         /* poll said readable and no recv has said EAGAIN since */
    /* guest to host: a ring of VSOCK_BUF_ALLOC bytes (allocated with the first data) */
    uint8_t *buf;
    uint32_t head, used;
    uint32_t rx_cnt;       /* bytes received from the guest */
    uint32_t fwd_cnt;      /* of those, bytes the host socket took */
    uint32_t fwd_cnt_sent; /* fwd_cnt as last told to the guest */
    /* host to guest */
    uint32_t tx_cnt; /* bytes sent to the guest */
    uint32_t peer_buf_alloc, peer_fwd_cnt;
};

struct rst_entry {
    uint32_t gport, hport;
};

struct vsock_dev {
    struct virtio_mmio *t;
    struct vsock_backend *b;
    uint64_t cid;
    pthread_mutex_t lock; /* everything below */
    bool running;         /* between DRIVER_OK and reset */
    bool close_pending;   /* a reset happened: the backend thread closes every connection */
    /* snapshots: while frozen the queues are left alone (vsock_run does nothing); `active`
     * is set while vsock_run works, `idle` signalled when it ends. A restored device owes the
     * driver a TRANSPORT_RESET event: its connections' host ends did not survive. */
    bool frozen, active, reset_event;
    pthread_cond_t idle;
    struct conn c[VSOCK_MAX_CONNS];
    unsigned rr; /* where the next search for work on the receive side starts */
    uint32_t next_local_port;
    struct rst_entry rst[VSOCK_RST_RING];
    unsigned rst_head, rst_count;
    struct vq_chain chain;
    uint8_t scratch[VSOCK_MAX_PKT];
    struct vsock_stats st;
};

/* ---- header ---- */

static uint64_t get_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void vsock_hdr_decode(const uint8_t b[VSOCK_HDR_LEN], struct vsock_hdr *h)
{
    h->src_cid = get_le(b, 8);
    h->dst_cid = get_le(b + 8, 8);
    h->src_port = (uint32_t)get_le(b + 16, 4);
    h->dst_port = (uint32_t)get_le(b + 20, 4);
    h->len = (uint32_t)get_le(b + 24, 4);
    h->type = (uint16_t)get_le(b + 28, 2);
    h->op = (uint16_t)get_le(b + 30, 2);
    h->flags = (uint32_t)get_le(b + 32, 4);
    h->buf_alloc = (uint32_t)get_le(b + 36, 4);
    h->fwd_cnt = (uint32_t)get_le(b + 40, 4);
}

void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t b[VSOCK_HDR_LEN])
{
    put_le(b, h->src_cid, 8);
    put_le(b + 8, h->dst_cid, 8);
    put_le(b + 16, h->src_port, 4);
    put_le(b + 20, h->dst_port, 4);
    put_le(b + 24, h->len, 4);
    put_le(b + 28, h->type, 2);
    put_le(b + 30, h->op, 2);
    put_le(b + 32, h->flags, 4);
    put_le(b + 36, h->buf_alloc, 4);
    put_le(b + 40, h->fwd_cnt, 4);
}

/* ---- configuration space (5.10.4) ---- */

static uint32_t vsock_cfg_read(void *dev, uint32_t off, unsigned size)
{
    struct vsock_dev *d = dev;
    uint8_t cfg[CONFIG_LEN];
    put_le(cfg, d->cid, 8);
    uint32_t v = 0;
    for (unsigned i = 0; i < size && i < 4 && off + i < CONFIG_LEN; i++)
        v |= (uint32_t)cfg[off + i] << (8 * i);
    return v;
}

static void vsock_cfg_write(void *dev, uint32_t off, uint32_t val, unsigned size)
{
    (void)dev; /* read-only (5.10.4) */
    (void)off;
    (void)val;
    (void)size;
}

/* ---- connections ---- */

static struct conn *find_conn(struct vsock_dev *d, uint32_t gport, uint32_t hport)
{
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
        struct conn *c = &d->c[i];
        if (c->st != C_FREE && c->gport == gport && c->hport == hport) return c;
    }
    return NULL;
}

static int alloc_conn(struct vsock_dev *d, uint32_t gport, uint32_t hport)
{
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
        if (d->c[i].st == C_FREE) {
            struct conn *c = &d->c[i];
            memset(c, 0, sizeof(*c));
            c->gport = gport;
            c->hport = hport;
            d->st.conns_opened++;
            return (int)i;
        }
    return -1;
}

static unsigned slot_of(struct vsock_dev *d, struct conn *c)
{
    return (unsigned)(c - d->c);
}

static void free_conn(struct vsock_dev *d, struct conn *c)
{
    vsock_backend_close_conn(d->b, slot_of(d, c));
    free(c->buf);
    memset(c, 0, sizeof(*c)); /* C_FREE */
}

/* The connection ends abnormally: close the host socket, owe the guest an RST. */
static void conn_reset(struct vsock_dev *d, struct conn *c)
{
    vsock_backend_close_conn(d->b, slot_of(d, c));
    free(c->buf);
    c->buf = NULL;
    c->used = 0;
    c->st = C_CLOSING;
    c->pend = P_RST;
}

static void rst_reply(struct vsock_dev *d, uint32_t gport, uint32_t hport)
{
    if (d->rst_count == VSOCK_RST_RING) {
        d->st.rst_dropped++; /* the guest floods: it times out instead */
        return;
    }
    d->rst[(d->rst_head + d->rst_count++) % VSOCK_RST_RING] = (struct rst_entry){gport, hport};
}

static void close_all_locked(struct vsock_dev *d)
{
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
        if (d->c[i].st != C_FREE) free_conn(d, &d->c[i]);
    d->rst_head = d->rst_count = 0;
    d->close_pending = false;
}

/* Both directions finished: the guest is owed the RST that ends it (5.10.6.6). */
static void check_done(struct vsock_dev *d, struct conn *c)
{
    if (c->st == C_ESTABLISHED && c->guest_no_send && c->used == 0 &&
        (c->host_eof || c->guest_no_recv))
        conn_reset(d, c);
}

static uint32_t guest_known_free(const struct conn *c)
{
    return VSOCK_BUF_ALLOC - (c->rx_cnt - c->fwd_cnt_sent);
}

/* Write the guest's buffered data to the host socket, as far as it takes it. */
static void flush(struct vsock_dev *d, struct conn *c)
{
    unsigned slot = slot_of(d, c);
    while (c->st == C_ESTABLISHED && c->used) {
        uint32_t n = c->used < VSOCK_BUF_ALLOC - c->head ? c->used : VSOCK_BUF_ALLOC - c->head;
        ssize_t w = vsock_backend_send(d->b, slot, c->buf + c->head, n);
        if (w == -EAGAIN || w == -EINTR) break;
        if (w <= 0) {
            conn_reset(d, c); /* the host end is gone */
            return;
        }
        c->head = (c->head + (uint32_t)w) % VSOCK_BUF_ALLOC;
        c->used -= (uint32_t)w;
        c->fwd_cnt += (uint32_t)w;
    }
    if (c->st != C_ESTABLISHED) return;
    if (c->guest_no_send && c->used == 0 && !c->host_wr_shut) {
        vsock_backend_shutdown_write(d->b, slot);
        c->host_wr_shut = true;
    }
    /* Tell the guest about the room made when it has used much of what it knew of. */
    if (c->fwd_cnt != c->fwd_cnt_sent && (c->fwd_cnt - c->fwd_cnt_sent >= VSOCK_BUF_ALLOC / 4 ||
                                          guest_known_free(c) < VSOCK_BUF_ALLOC / 2))
        c->pend |= P_CREDIT;
    check_done(d, c);
}

static bool can_read_host(struct vsock_dev *d, const struct conn *c)
{
    (void)d;
    return c->st == C_ESTABLISHED && !c->host_eof && !c->guest_no_recv &&
           vsock_credit(c->peer_buf_alloc, c->peer_fwd_cnt, c->tx_cnt) > 0;
}

/* ---- transmit: packets from the guest ---- */

static void take_credit(struct conn *c, const struct vsock_hdr *h)
{
    c->peer_buf_alloc = h->buf_alloc;
    c->peer_fwd_cnt = h->fwd_cnt;
}

/* Caller holds d->lock. One packet from the guest: header h, payload at offset
 * VSOCK_HDR_LEN of the chain's readable part (h->len bytes, checked to be there). */
static void tx_packet(struct vsock_dev *d, const struct vsock_hdr *h)
{
    struct conn *c = find_conn(d, h->src_port, h->dst_port);
    if (h->type != VSOCK_TYPE_STREAM) {
        if (h->op != VSOCK_OP_RST) {
            if (c)
                conn_reset(d, c);
            else
                rst_reply(d, h->src_port, h->dst_port);
        }
        return;
    }
    if (!c) {
        if (h->op == VSOCK_OP_REQUEST) {
            int slot = alloc_conn(d, h->src_port, h->dst_port);
            if (slot < 0) {
                log_warn_ratelimited("vsock: the guest has %d connections open; one refused",
                                     VSOCK_MAX_CONNS);
                d->st.conns_refused++;
                rst_reply(d, h->src_port, h->dst_port);
                return;
            }
            c = &d->c[slot];
            int r = vsock_backend_connect(d->b, (unsigned)slot, h->dst_port);
            if (r < 0) {
                /* nobody listens on <path>_<port>: refused, as by a closed port */
                log_debug("vsock: guest connection to host port %u: %s", h->dst_port, strerror(-r));
                memset(c, 0, sizeof(*c));
                d->st.conns_refused++;
                rst_reply(d, h->src_port, h->dst_port);
                return;
            }
            c->st = C_ESTABLISHED;
            take_credit(c, h);
            c->pend = P_RESPONSE;
        } else if (h->op != VSOCK_OP_RST) {
            rst_reply(d, h->src_port, h->dst_port);
        }
        return;
    }
    if (c->st == C_CLOSING) {
        /* an RST is owed already; the guest's RST ends it without one */
        if (h->op == VSOCK_OP_RST) free_conn(d, c);
        return;
    }
    if (c->st == C_REQUEST) {
        if (h->op == VSOCK_OP_RESPONSE) {
            c->st = C_ESTABLISHED;
            take_credit(c, h);
            vsock_backend_accepted(d->b, slot_of(d, c), c->hport);
        } else if (h->op == VSOCK_OP_RST) {
            free_conn(d, c); /* the guest refused: the host program sees its socket closed */
        } else {
            conn_reset(d, c);
        }
        return;
    }
    /* established */
    take_credit(c, h);
    switch (h->op) {
    case VSOCK_OP_RW: {
        uint32_t room = VSOCK_BUF_ALLOC - c->used;
        if (c->guest_no_send || h->len > room) {
            d->st.credit_violations++;
            log_warn_ratelimited("vsock: the guest sent beyond its credit; connection reset");
            conn_reset(d, c);
            return;
        }
        if (!h->len) return;
        if (!c->buf && !(c->buf = malloc(VSOCK_BUF_ALLOC))) {
            conn_reset(d, c);
            return;
        }
        uint32_t tail = (c->head + c->used) % VSOCK_BUF_ALLOC;
        uint32_t first = h->len < VSOCK_BUF_ALLOC - tail ? h->len : VSOCK_BUF_ALLOC - tail;
        vq_chain_read(&d->chain, VSOCK_HDR_LEN, c->buf + tail, first);
        if (first < h->len) vq_chain_read(&d->chain, VSOCK_HDR_LEN + first, c->buf, h->len - first);
        c->used += h->len;
        c->rx_cnt += h->len;
        flush(d, c);
        return;
    }
    case VSOCK_OP_SHUTDOWN:
        if (h->flags & VSOCK_SHUTDOWN_SEND) c->guest_no_send = true;
        if (h->flags & VSOCK_SHUTDOWN_RCV) c->guest_no_recv = true;
        flush(d, c); /* shuts the host's write side once the buffer is out; may end it */
        return;
    case VSOCK_OP_RST: free_conn(d, c); return;
    case VSOCK_OP_CREDIT_UPDATE: return; /* taken above */
    case VSOCK_OP_CREDIT_REQUEST: c->pend |= P_CREDIT; return;
    default: /* REQUEST or RESPONSE on an established connection, INVALID, unknown */
        d->st.malformed++;
        conn_reset(d, c);
        return;
    }
}

/* Caller holds d->lock. Take packets from the transmit queue. Returns -1 if the ring broke,
 * 1 if work is left (TX_BATCH reached), 0 otherwise; *notify when a buffer was returned. */
static int tx_run(struct vsock_dev *d, bool *notify)
{
    for (unsigned n = 0; n < TX_BATCH; n++) {
        struct vq *q = virtio_mmio_queue(d->t, Q_TX);
        if (!q || q->broken) return 0;
        int r = vq_pop_or_arm(q, &d->chain);
        if (r == 0) return 0;
        if (r < 0) {
            d->st.malformed++;
            return -1;
        }
        uint8_t hb[VSOCK_HDR_LEN];
        struct vsock_hdr h;
        uint64_t rl = d->chain.read_len;
        if (rl < VSOCK_HDR_LEN) {
            d->st.tx_dropped++;
        } else {
            vq_chain_read(&d->chain, 0, hb, VSOCK_HDR_LEN);
            vsock_hdr_decode(hb, &h);
            if (h.src_cid != d->cid || h.dst_cid != VSOCK_HOST_CID) {
                d->st.tx_dropped++; /* 5.10.6.4: not ours to answer */
            } else if (h.len > rl - VSOCK_HDR_LEN || h.len > VSOCK_MAX_PKT) {
                d->st.tx_dropped++;
                d->st.malformed++;
                struct conn *c = find_conn(d, h.src_port, h.dst_port);
                if (c && c->st != C_CLOSING) conn_reset(d, c);
            } else {
                d->st.tx_pkts++;
                tx_packet(d, &h); /* reads the payload from d->chain */
            }
        }
        vq_push(q, d->chain.head, 0);
        *notify = true;
    }
    return 1;
}

/* ---- receive: packets for the guest ---- */

static bool has_rx_work(struct vsock_dev *d)
{
    if (d->rst_count) return true;
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
        const struct conn *c = &d->c[i];
        if (c->st == C_FREE) continue;
        if (c->pend) return true;
        if (c->readable && can_read_host(d, c)) return true;
    }
    return false;
}

static void hdr_for(struct vsock_dev *d, struct conn *c, struct vsock_hdr *h, uint16_t op)
{
    *h = (struct vsock_hdr){.src_cid = VSOCK_HOST_CID,
                            .dst_cid = d->cid,
                            .src_port = c->hport,
                            .dst_port = c->gport,
                            .type = VSOCK_TYPE_STREAM,
                            .op = op,
                            .buf_alloc = VSOCK_BUF_ALLOC,
                            .fwd_cnt = c->fwd_cnt};
    c->fwd_cnt_sent = c->fwd_cnt;
}

/* Caller holds d->lock. Put the next owed packet into d->chain (write_len >= header): the
 * bytes written, or 0 when nothing is owed. */
static uint32_t rx_fill(struct vsock_dev *d)
{
    struct vsock_hdr h;
    uint8_t hb[VSOCK_HDR_LEN];
    if (d->rst_count) {
        struct rst_entry e = d->rst[d->rst_head];
        d->rst_head = (d->rst_head + 1) % VSOCK_RST_RING;
        d->rst_count--;
        h = (struct vsock_hdr){.src_cid = VSOCK_HOST_CID,
                               .dst_cid = d->cid,
                               .src_port = e.hport,
                               .dst_port = e.gport,
                               .type = VSOCK_TYPE_STREAM,
                               .op = VSOCK_OP_RST};
        vsock_hdr_encode(&h, hb);
        vq_chain_write(&d->chain, 0, hb, VSOCK_HDR_LEN);
        d->st.rst_sent++;
        return VSOCK_HDR_LEN;
    }
    uint64_t room = d->chain.write_len - VSOCK_HDR_LEN;
    for (unsigned k = 0; k < VSOCK_MAX_CONNS; k++) {
        unsigned i = (d->rr + k) % VSOCK_MAX_CONNS;
        struct conn *c = &d->c[i];
        if (c->st == C_FREE) continue;
        uint16_t op = 0;
        uint32_t flags = 0, len = 0;
        if (c->pend & P_RST) {
            op = VSOCK_OP_RST;
        } else if (c->pend & P_REQUEST) {
            op = VSOCK_OP_REQUEST;
            c->pend &= ~P_REQUEST;
        } else if (c->pend & P_RESPONSE) {
            op = VSOCK_OP_RESPONSE;
            c->pend &= ~P_RESPONSE;
        } else if (c->readable && room && can_read_host(d, c)) {
            uint32_t want = vsock_credit(c->peer_buf_alloc, c->peer_fwd_cnt, c->tx_cnt);
            if (want > room) want = (uint32_t)room;
            if (want > VSOCK_MAX_PKT) want = VSOCK_MAX_PKT;
            ssize_t r = want ? vsock_backend_recv(d->b, i, d->scratch, want) : -EAGAIN;
            if (r > 0) {
                op = VSOCK_OP_RW;
                len = (uint32_t)r;
                c->tx_cnt += len;
            } else if (r == 0) {
                c->host_eof = true; /* all of it was sent: the guest may know */
                c->pend |= P_SHUTDOWN;
                check_done(d, c);
            } else if (r == -EAGAIN || r == -EINTR) {
                c->readable = false;
            } else {
                conn_reset(d, c);
            }
            if (!op) { /* nothing to send on it yet: look at it again (its SHUTDOWN, RST) */
                k--;
                continue;
            }
        } else if (c->pend & P_SHUTDOWN) {
            op = VSOCK_OP_SHUTDOWN;
            flags = VSOCK_SHUTDOWN_SEND;
            c->pend &= ~P_SHUTDOWN;
        } else if (c->pend & P_CREDIT) {
            op = VSOCK_OP_CREDIT_UPDATE;
            c->pend &= ~P_CREDIT;
        } else {
            continue;
        }
        hdr_for(d, c, &h, op);
        h.flags = flags;
        h.len = len;
        if (op == VSOCK_OP_RST) {
            d->st.rst_sent++;
            memset(c, 0, sizeof(*c)); /* the host socket was closed by conn_reset */
        }
        vsock_hdr_encode(&h, hb);
        vq_chain_write(&d->chain, 0, hb, VSOCK_HDR_LEN);
        if (len) vq_chain_write(&d->chain, VSOCK_HDR_LEN, d->scratch, len);
        d->rr = (i + 1) % VSOCK_MAX_CONNS; /* the next turn starts with the next one */
        return VSOCK_HDR_LEN + len;
    }
    return 0;
}

/* Caller holds d->lock. Fill receive buffers while something is owed. -1: the ring broke. */
static int rx_run(struct vsock_dev *d, bool *notify)
{
    struct vq *q = virtio_mmio_queue(d->t, Q_RX);
    if (!q || q->broken) return 0;
    while (has_rx_work(d)) {
        int r = vq_pop_or_arm(q, &d->chain);
        if (r == 0) return 0; /* the guest kicks when it adds buffers */
        if (r < 0) return -1;
        if (d->chain.write_len < VSOCK_HDR_LEN) {
            vq_push(q, d->chain.head, 0); /* useless buffer: returned empty */
            d->st.malformed++;
            *notify = true;
            continue;
        }
        uint32_t n = rx_fill(d);
        if (!n) {
            vq_unpop(q, &d->chain.head, 1);
            return 0;
        }
        vq_push(q, d->chain.head, n);
        d->st.rx_pkts++;
        *notify = true;
    }
    return 0;
}

static bool should_notify_locked(struct vsock_dev *d, unsigned qi)
{
    struct vq *q = virtio_mmio_queue(d->t, qi);
    return q && !q->broken && vq_should_notify(q);
}

/* ---- backend callbacks (backend thread) ---- */

static void settle_locked(struct vsock_dev *d)
{
    if (d->close_pending) close_all_locked(d);
}

/* Caller holds d->lock: the TRANSPORT_RESET event a restored device owes, into an event
 * buffer the driver posted (it keeps some there; none yet: the next kick tries again). */
static int send_reset_event(struct vsock_dev *d, bool *notify)
{
    struct vq *q = virtio_mmio_queue(d->t, Q_EVENT);
    if (!q || q->broken) return 0;
    int n = vq_pop_or_arm(q, &d->chain);
    if (n <= 0) return n;
    uint8_t ev[4] = {EVENT_TRANSPORT_RESET, 0, 0, 0};
    uint32_t len = d->chain.write_len >= sizeof(ev) ? (uint32_t)sizeof(ev) : 0;
    if (len) vq_chain_write(&d->chain, 0, ev, len);
    vq_push(q, d->chain.head, len);
    d->reset_event = !len; /* a buffer too small for it: the driver's bug; try the next */
    *notify = should_notify_locked(d, Q_EVENT);
    return 0;
}

static void vsock_run(void *ctx)
{
    struct vsock_dev *d = ctx;
    bool ntx = false, nrx = false, nev = false, broken = false, more = false;
    pthread_mutex_lock(&d->lock);
    settle_locked(d);
    d->active = true;
    if (d->running && !d->frozen && d->reset_event && send_reset_event(d, &nev) < 0) broken = true;
    if (d->running && !d->frozen && !broken) {
        int r = tx_run(d, &ntx);
        if (r < 0) broken = true;
        more = r > 0;
        if (!broken && rx_run(d, &nrx) < 0) {
            broken = true;
            d->st.malformed++;
        }
        if (ntx) ntx = should_notify_locked(d, Q_TX);
        if (nrx) nrx = should_notify_locked(d, Q_RX);
    }
    pthread_mutex_unlock(&d->lock);
    if (broken) {
        log_warn_ratelimited("virtio-vsock: malformed ring from the guest; device needs reset");
        virtio_mmio_set_needs_reset(d->t);
    }
    if (ntx || nrx || nev) virtio_mmio_interrupt(d->t, VIRTIO_INT_USED);
    pthread_mutex_lock(&d->lock);
    d->active = false;
    if (d->frozen) pthread_cond_broadcast(&d->idle);
    pthread_mutex_unlock(&d->lock);
    if (more) vsock_backend_kick(d->b);
}

static int vsock_host_connect(void *ctx, uint32_t port)
{
    struct vsock_dev *d = ctx;
    int slot = -1;
    pthread_mutex_lock(&d->lock);
    settle_locked(d);
    if (d->running) {
        /* a host port no live connection to this guest port uses */
        uint32_t hp = d->next_local_port;
        for (unsigned tries = 0; tries < VSOCK_MAX_CONNS + 1 && find_conn(d, port, hp); tries++)
            hp = hp + 1 < LOCAL_PORT_FIRST ? LOCAL_PORT_FIRST : hp + 1;
        slot = alloc_conn(d, port, hp);
        if (slot >= 0) {
            d->next_local_port = hp + 1 < LOCAL_PORT_FIRST ? LOCAL_PORT_FIRST : hp + 1;
            d->c[slot].st = C_REQUEST;
            d->c[slot].pend = P_REQUEST;
        } else {
            log_warn_ratelimited("vsock: %d connections open; a host program refused",
                                 VSOCK_MAX_CONNS);
            d->st.conns_refused++;
        }
    }
    pthread_mutex_unlock(&d->lock);
    return slot; /* run() follows on this thread and sends the REQUEST */
}

static short vsock_events(void *ctx, unsigned slot)
{
    struct vsock_dev *d = ctx;
    short ev = 0;
    pthread_mutex_lock(&d->lock);
    settle_locked(d);
    struct conn *c = &d->c[slot];
    if (d->running && c->st == C_ESTABLISHED) {
        if (!c->readable && can_read_host(d, c)) ev |= POLLIN;
        if (c->used) ev |= POLLOUT;
    }
    pthread_mutex_unlock(&d->lock);
    return ev;
}

static void vsock_ready(void *ctx, unsigned slot, short revents)
{
    struct vsock_dev *d = ctx;
    pthread_mutex_lock(&d->lock);
    settle_locked(d);
    struct conn *c = &d->c[slot];
    if (d->running && c->st == C_ESTABLISHED) {
        if (revents & (POLLIN | POLLHUP | POLLERR)) c->readable = true;
        if (revents & (POLLOUT | POLLERR)) flush(d, c);
    }
    pthread_mutex_unlock(&d->lock); /* run() follows on this thread */
}

/* ---- transport callbacks ---- */

static void vsock_start(void *dev, uint64_t features)
{
    struct vsock_dev *d = dev;
    (void)features;
    pthread_mutex_lock(&d->lock);
    d->running = true;
    bool ev = d->reset_event;
    pthread_mutex_unlock(&d->lock);
    if (ev) vsock_backend_kick(d->b); /* restored: the reset event goes out now */
}

static void vsock_notify(void *dev, unsigned q)
{
    struct vsock_dev *d = dev;
    (void)q; /* rx buffers, tx packets, event buffers (a restored device's reset event) */
    vsock_backend_kick(d->b);
}

static bool vsock_reset(void *dev)
{
    struct vsock_dev *d = dev;
    pthread_mutex_lock(&d->lock);
    d->running = false;
    d->close_pending = true; /* host sockets are the backend thread's to close */
    d->rst_head = d->rst_count = 0;
    pthread_mutex_unlock(&d->lock);
    vsock_backend_kick(d->b);
    return true; /* chains are taken and given back under the lock: nothing is in flight */
}

/* Snapshots: the guest CID (checked: the configuration names it). Connections are not saved:
 * their host ends (sockets of this process) do not outlive it. The restored device tells the
 * driver with a TRANSPORT_RESET event (5.10.6.6), as Firecracker does: Linux then resets
 * every connected socket and keeps listening ones. */
static void vsock_save(void *dev, struct sw *w)
{
    struct vsock_dev *d = dev;
    sw_u64(w, "dev.guest_cid", d->cid);
}

static int vsock_load(void *dev, struct sr *r)
{
    struct vsock_dev *d = dev;
    uint64_t cid = sr_u64(r, "dev.guest_cid", UINT32_MAX);
    if (!sr_failed(r) && cid != d->cid)
        sr_fail(r, "state of virtio-vsock: guest CID %llu, the configuration says %llu",
                (unsigned long long)cid, (unsigned long long)d->cid);
    if (sr_failed(r)) return -1;
    /* frozen until the whole machine is loaded (machine_snapshot_load lets it go): an
     * interrupt raised before the PLIC's state is restored would be lost */
    pthread_mutex_lock(&d->lock);
    d->reset_event = true;
    d->frozen = true;
    pthread_mutex_unlock(&d->lock);
    return 0;
}

static void vsock_quiesce(void *dev, bool stop)
{
    struct vsock_dev *d = dev;
    pthread_mutex_lock(&d->lock);
    d->frozen = stop;
    while (stop && d->active)
        pthread_cond_wait(&d->idle, &d->lock);
    pthread_mutex_unlock(&d->lock);
    if (!stop) vsock_backend_kick(d->b); /* what waited */
}

static const struct virtio_device_ops vsock_ops = {
    .device_id = VIRTIO_ID_VSOCK,
    .features = 0, /* stream sockets only (no SEQPACKET) */
    .num_queues = 3,
    .queue_max = 256,
    .config_size = CONFIG_LEN,
    .config_read = vsock_cfg_read,
    .config_write = vsock_cfg_write,
    .start = vsock_start,
    .notify = vsock_notify,
    .reset = vsock_reset,
    .save = vsock_save,
    .load = vsock_load,
    .quiesce = vsock_quiesce,
};

struct vsock_dev *vsock_dev_create(struct vsock_backend *b, uint32_t guest_cid,
                                   const struct guest_mem *gm, struct irq_line irq)
{
    if (!b) return NULL;
    struct vsock_dev *d = calloc(1, sizeof(*d));
    if (!d) return NULL;
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->idle, NULL);
    d->b = b;
    d->cid = guest_cid;
    d->next_local_port = LOCAL_PORT_FIRST;
    d->t = virtio_mmio_create(&vsock_ops, d, gm, irq);
    if (!d->t) {
        pthread_cond_destroy(&d->idle);
        pthread_mutex_destroy(&d->lock);
        free(d);
        return NULL;
    }
    struct vsock_client c = {.run = vsock_run,
                             .host_connect = vsock_host_connect,
                             .events = vsock_events,
                             .ready = vsock_ready,
                             .ctx = d};
    vsock_backend_attach(b, &c);
    return d;
}

void vsock_dev_destroy(struct vsock_dev *d)
{
    if (!d) return;
    vsock_backend_attach(d->b, NULL); /* closes every host socket; no callback after this */
    log_debug("virtio-vsock: rx %llu packets, tx %llu (%llu dropped), %llu resets sent (%llu "
              "dropped), %llu credit violations, %llu malformed, %llu connections (%llu refused)",
              (unsigned long long)d->st.rx_pkts, (unsigned long long)d->st.tx_pkts,
              (unsigned long long)d->st.tx_dropped, (unsigned long long)d->st.rst_sent,
              (unsigned long long)d->st.rst_dropped, (unsigned long long)d->st.credit_violations,
              (unsigned long long)d->st.malformed, (unsigned long long)d->st.conns_opened,
              (unsigned long long)d->st.conns_refused);
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
        free(d->c[i].buf);
    virtio_mmio_destroy(d->t);
    pthread_cond_destroy(&d->idle);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

struct virtio_mmio *vsock_dev_transport(struct vsock_dev *d)
{
    return d->t;
}

void vsock_dev_get_stats(struct vsock_dev *d, struct vsock_stats *s)
{
    pthread_mutex_lock(&d->lock);
    *s = d->st;
    s->conns = 0;
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
        if (d->c[i].st != C_FREE) s->conns++;
    pthread_mutex_unlock(&d->lock);
}

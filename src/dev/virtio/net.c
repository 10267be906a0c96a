/* virtio-net (virtio 1.x spec 5.1), see net.h. Locking: `lock` guards the device state and the
 * queues; it is never held across net_backend_send (the backend may hand an answer to
 * receive() before send returns). Queue work runs on the backend thread (run, receive); the
 * hart threads only kick it (notify), reset (under the lock: nothing is ever in flight outside
 * it, so a reset never waits) and read the configuration. */
#include "dev/virtio/net.h"
#include "util/log.h"
#include "util/staterec.h"
#include "util/ratelimit.h"
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define Q_RX       0
#define Q_TX       1
/* Frames taken from the transmit queue per run before the device lets receive work in (the
 * backend is kicked again for the rest). */
#define TX_BATCH   256
#define CONFIG_LEN 12 /* mac[6], le16 status, le16 max_virtqueue_pairs, le16 mtu (5.1.4) */

struct rx_frame {
    uint32_t len;
    bool has_hdr;
    uint8_t hdr[VIRTIO_NET_HDR_LEN]; /* the backend's (receive_hdr) */
    uint8_t data[];                  /* len bytes */
};

struct vnet {
    struct virtio_mmio *t;
    struct net_backend *nb;
    uint8_t mac[6];
    unsigned mtu; /* the backend's, offered as VIRTIO_NET_F_MTU; longer frames are dropped */
    pthread_mutex_t lock; /* everything below */
    bool running;         /* between DRIVER_OK and reset */
    bool mrg_rxbuf, guest_csum;
    /* Snapshots: while frozen, frames wait in `pending` and the transmit queue is left alone;
     * `active` is set while receive() or run() works, and `idle` is signalled when it ends. */
    bool frozen, active;
    pthread_cond_t idle;
    /* frames waiting for receive buffers: a ring of pointers, allocated on demand, freed at
     * reset and destroy */
    struct rx_frame *pending[VNET_RX_PENDING];
    unsigned p_head, p_count;
    /* receive buffers taken for the frame being placed (mergeable: one frame may span up to a
     * queue's worth of them) */
    uint16_t heads[VQ_MAX_SIZE];
    uint32_t lens[VQ_MAX_SIZE];
    struct vq_chain chain;
    uint8_t txbuf[VIRTIO_NET_HDR_LEN + NET_GSO_FRAME_MAX];
    /* the backend segments (net_backend.tso): offered HOST_TSO4/6/ECN, and frames go to it
     * with the guest's header (the ops copy carries the extra features) */
    bool tso;
    struct virtio_device_ops ops;
    /* receive offloads the driver took on (NET_OFFLOAD_*), for the backend to apply on its
     * thread at the next run() (offload_set: it has) */
    unsigned offload, offload_applied; /* a new backend has none applied: 0 */
    struct vnet_stats st;
};

/* ---- configuration space (5.1.4) ---- */

static uint32_t net_cfg_read(void *dev, uint32_t off, unsigned size)
{
    struct vnet *d = dev;
    uint8_t cfg[CONFIG_LEN];
    memcpy(cfg, d->mac, 6);
    cfg[6] = VIRTIO_NET_S_LINK_UP; /* the backend is always there: the link is up */
    cfg[7] = 0;
    cfg[8] =
        1; /* max_virtqueue_pairs: meaningful only with VIRTIO_NET_F_MQ, which is not offered */
    cfg[9] = 0;
    cfg[10] = (uint8_t)d->mtu;
    cfg[11] = (uint8_t)(d->mtu >> 8);
    uint32_t v = 0;
    for (unsigned i = 0; i < size && i < 4 && off + i < CONFIG_LEN; i++)
        v |= (uint32_t)cfg[off + i] << (8 * i);
    return v;
}

static void net_cfg_write(void *dev, uint32_t off, uint32_t val, unsigned size)
{
    /* 5.1.4.2: the driver must not write the configuration (the MAC changes only through a
     * control queue, not offered): writes are dropped. */
    (void)dev;
    (void)off;
    (void)val;
    (void)size;
}

/* ---- receive: frames from the backend into the guest's buffers ---- */

/* Caller holds d->lock. Place one frame into receive buffers (5.1.6.3, 5.1.6.4). Returns 1 when
 * the frame is done with (delivered, or dropped because no single buffer can hold it without
 * mergeable buffers), 0 when the queue has not enough buffers now (every buffer taken for it
 * was given back unused), -1 when the ring is malformed. */
static int deliver_locked(struct vnet *d, const uint8_t *bhdr, const uint8_t *frame, size_t len,
                          bool *notify)
{
    struct vq *q = virtio_mmio_queue(d->t, Q_RX);
    if (!q || q->broken) { /* reported when it broke; the device waits for its reset */
        d->st.rx_dropped++;
        return 1;
    }
    uint8_t hdr[VIRTIO_NET_HDR_LEN] = {0};
    /* 5.1.6.4: with GUEST_CSUM the device may say the checksums were checked (the backend
     * built or verified the whole frame). */
    if (d->guest_csum) hdr[0] = VIRTIO_NET_HDR_F_DATA_VALID;
    hdr[1] = VIRTIO_NET_HDR_GSO_NONE;
    /* a tso backend's header: what the host left to the guest, within what the driver took
     * on (the backend was told: set_offload); num_buffers is ours */
    if (bhdr) memcpy(hdr, bhdr, 10);
    size_t total = VIRTIO_NET_HDR_LEN + len;

    if (!d->mrg_rxbuf) {
        int n = vq_pop_or_arm(q, &d->chain);
        if (n <= 0) return n;
        if (d->chain.write_len < total) {
            /* The driver sized its buffers for a smaller MTU: the frame cannot go anywhere.
             * Keep the buffer for a smaller frame and drop this one. */
            vq_unpop(q, &d->chain.head, 1);
            d->st.rx_too_small++;
            return 1;
        }
        hdr[10] = 1; /* num_buffers: 1 without MRG_RXBUF (5.1.6.3.1) */
        vq_chain_write(&d->chain, 0, hdr, sizeof(hdr));
        vq_chain_write(&d->chain, VIRTIO_NET_HDR_LEN, frame, len);
        vq_push(q, d->chain.head, (uint32_t)total);
        d->st.rx_frames++;
        *notify = true;
        return 1;
    }

    /* Mergeable buffers (5.1.6.3.2): fill chains in turn, the header at the start of the
     * first; num_buffers tells how many were used. Nothing is pushed until the whole frame has
     * found room, so a frame that does not fit gives every buffer back unused. */
    unsigned k = 0;
    size_t done = 0; /* bytes of header + frame placed */
    uint8_t *nb_ptr[2] = {NULL, NULL};
    while (done < total) {
        if (k == q->num) { /* cannot happen: vq_pop refuses more than num in flight */
            vq_unpop(q, d->heads, k);
            return 0;
        }
        int n = vq_pop_or_arm(q, &d->chain);
        if (n < 0) return -1;
        if (n == 0) {
            vq_unpop(q, d->heads, k);
            return 0;
        }
        const struct vq_chain *c = &d->chain;
        if (k == 0 && c->write_len < VIRTIO_NET_HDR_LEN) {
            /* 5.1.6.3.1: every buffer holds at least the header. Give this one back empty
             * (the guest's driver counts it as a length error) and go on with the next. */
            vq_push(q, c->head, 0);
            d->st.rx_bad_buffers++;
            *notify = true;
            continue;
        }
        size_t room = c->write_len < total - done ? c->write_len : total - done;
        size_t off = 0;
        if (k == 0) {
            vq_chain_write(c, 0, hdr, sizeof(hdr));
            off = sizeof(hdr);
            /* Where num_buffers (header bytes 10 and 11) landed: the driver may split the
             * header over segments. */
            uint64_t pos = 0; /* offset of segment i in the writable part */
            for (unsigned i = c->nread, b = 0; i < c->nseg && b < 2; i++) {
                for (; b < 2 && 10 + b < pos + c->seg[i].len; b++)
                    nb_ptr[b] = c->seg[i].ptr + (10 + b - pos);
                pos += c->seg[i].len;
            }
        }
        size_t from = done + off - VIRTIO_NET_HDR_LEN; /* frame offset */
        if (room > off) vq_chain_write(c, off, frame + from, room - off);
        d->heads[k] = c->head;
        d->lens[k] = (uint32_t)room;
        k++;
        done += room;
    }
    if (nb_ptr[0]) *nb_ptr[0] = (uint8_t)k;
    if (nb_ptr[1]) *nb_ptr[1] = (uint8_t)(k >> 8);
    for (unsigned i = 0; i < k; i++)
        vq_push(q, d->heads[i], d->lens[i]);
    d->st.rx_frames++;
    *notify = true;
    return 1;
}

/* Caller holds d->lock. Deliver waiting frames in order while buffers last. */
static void flush_pending_locked(struct vnet *d, bool *notify, bool *broken)
{
    while (d->running && !d->frozen && d->p_count) {
        struct rx_frame *f = d->pending[d->p_head];
        int r = deliver_locked(d, f->has_hdr ? f->hdr : NULL, f->data, f->len, notify);
        if (r < 0) {
            *broken = true;
            return;
        }
        if (r == 0) return;
        free(f);
        d->pending[d->p_head] = NULL;
        d->p_head = (d->p_head + 1) % VNET_RX_PENDING;
        d->p_count--;
    }
}

static void drop_pending_locked(struct vnet *d)
{
    while (d->p_count) {
        free(d->pending[d->p_head]);
        d->pending[d->p_head] = NULL;
        d->p_head = (d->p_head + 1) % VNET_RX_PENDING;
        d->p_count--;
        d->st.rx_dropped++;
    }
    d->p_head = 0;
}

static void finish(struct vnet *d, bool notify, bool broken)
{
    if (broken) {
        log_warn_ratelimited("virtio-net: malformed ring from the guest; device needs reset");
        virtio_mmio_set_needs_reset(d->t);
    }
    if (notify) virtio_mmio_interrupt(d->t, VIRTIO_INT_USED);
}

/* Caller holds d->lock: one interrupt decision per batch (vq_should_notify moves the event
 * window on every call). */
static bool should_notify_locked(struct vnet *d, unsigned qi)
{
    struct vq *q = virtio_mmio_queue(d->t, qi);
    return q && !q->broken && vq_should_notify(q);
}

/* The backend thread's work on the device ended (the interrupt included): a snapshot waiting
 * in net_quiesce may go on. */
static void idle(struct vnet *d)
{
    pthread_mutex_lock(&d->lock);
    d->active = false;
    if (d->frozen) pthread_cond_broadcast(&d->idle);
    pthread_mutex_unlock(&d->lock);
}

static void receive(struct vnet *d, const uint8_t *bhdr, const uint8_t *frame, size_t len)
{
    bool notify = false, broken = false;
    pthread_mutex_lock(&d->lock);
    if (!d->running) {
        d->st.rx_dropped++; /* no driver: the frame is lost, as on a NIC that is down */
        pthread_mutex_unlock(&d->lock);
        return;
    }
    d->active = true;
    flush_pending_locked(d, &notify, &broken);
    int r = 0;
    if (!broken && !d->p_count && !d->frozen) {
        r = deliver_locked(d, bhdr, frame, len, &notify);
        if (r < 0) broken = true;
    }
    if (broken) {
        d->st.rx_dropped++; /* the queue just broke: the device waits for its reset */
    } else if (r == 0) {
        if (d->p_count == VNET_RX_PENDING) {
            d->st.rx_dropped++; /* the guest does not keep up: drop at the tail (TCP resends) */
        } else {
            struct rx_frame *f = malloc(sizeof(*f) + len);
            if (f) {
                f->len = (uint32_t)len;
                f->has_hdr = bhdr != NULL;
                if (bhdr) memcpy(f->hdr, bhdr, VIRTIO_NET_HDR_LEN);
                memcpy(f->data, frame, len);
                d->pending[(d->p_head + d->p_count++) % VNET_RX_PENDING] = f;
            } else {
                d->st.rx_dropped++;
            }
        }
    }
    if (notify) notify = should_notify_locked(d, Q_RX);
    pthread_mutex_unlock(&d->lock);
    finish(d, notify, broken);
    idle(d);
}

static void net_receive(void *ctx, const uint8_t *frame, size_t len)
{
    if (len < NET_FRAME_MIN || len > NET_FRAME_MAX) return; /* the backend's bug: never sent */
    receive(ctx, NULL, frame, len);
}

static void net_receive_hdr(void *ctx, const uint8_t hdr[12], const uint8_t *frame, size_t len)
{
    struct vnet *d = ctx;
    if (len < NET_FRAME_MIN || len > NET_GSO_FRAME_MAX || !d->tso) return;
    receive(d, hdr, frame, len);
}

/* ---- transmit: frames from the guest to the backend ---- */

/* Complete a checksum the guest left to the device (5.1.6.2: VIRTIO_NET_HDR_F_NEEDS_CSUM): the
 * Internet checksum (RFC 1071) of everything from csum_start, stored at csum_start +
 * csum_offset, where the driver put the pseudo-header sum. False if the offsets do not fit in
 * the frame. */
static bool complete_csum(uint8_t *f, size_t len, uint16_t start, uint16_t offset)
{
    if (start >= len || offset > len - start || len - start - offset < 2) return false;
    uint64_t sum = 0;
    size_t i = start;
    for (; i + 1 < len; i += 2)
        sum += (uint32_t)f[i] << 8 | f[i + 1];
    if (i < len) sum += (uint32_t)f[i] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    uint16_t c = (uint16_t)~sum;
    if (c == 0) c = 0xffff; /* as Linux does: 0 means "no checksum" for UDP */
    f[start + offset] = (uint8_t)(c >> 8);
    f[start + offset + 1] = (uint8_t)c;
    return true;
}

/* Check a transmitted header and frame in d->txbuf (hdr + len bytes); complete the checksum.
 * False: drop it. */
static bool tx_check(struct vnet *d, size_t len)
{
    const uint8_t *h = d->txbuf;
    uint8_t *f = d->txbuf + VIRTIO_NET_HDR_LEN;
    if (len < NET_FRAME_MIN) return false;
    if (d->tso && h[1] != VIRTIO_NET_HDR_GSO_NONE) {
        /* for the host to segment: TCP over IPv4 or IPv6 (ECN as offered), a segment size,
         * the checksum left to it; the kernel checks the offsets against the packet */
        uint8_t g = h[1] & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
        uint16_t gso_size = (uint16_t)(h[4] | h[5] << 8);
        return (g == VIRTIO_NET_HDR_GSO_TCPV4 || g == VIRTIO_NET_HDR_GSO_TCPV6) && gso_size &&
               (h[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM) && len <= NET_GSO_FRAME_MAX;
    }
    if (len > 14 + (size_t)d->mtu) return false;
    if (d->tso) return true; /* a checksum asked for is the host's too */
    /* No segmentation offload was offered (5.1.6.2.1: the driver must not ask for it). */
    if (h[1] != VIRTIO_NET_HDR_GSO_NONE) return false;
    if (h[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
        uint16_t start = (uint16_t)(h[6] | h[7] << 8), offset = (uint16_t)(h[8] | h[9] << 8);
        return complete_csum(f, len, start, offset);
    }
    return true;
}

static void net_run(void *ctx)
{
    struct vnet *d = ctx;
    bool notify_tx = false, notify_rx = false, broken = false, more = false;
    pthread_mutex_lock(&d->lock);
    if (d->tso && d->offload != d->offload_applied) {
        unsigned apply = d->offload_applied = d->offload;
        pthread_mutex_unlock(&d->lock);
        net_backend_set_offload(d->nb, apply); /* the backend thread: here */
        pthread_mutex_lock(&d->lock);
    }
    d->active = true;
    /* Buffers the driver added may take frames that waited for them. */
    flush_pending_locked(d, &notify_rx, &broken);
    for (unsigned n = 0; d->running && !d->frozen && !broken; n++) {
        struct vq *q = virtio_mmio_queue(d->t, Q_TX);
        if (!q || q->broken) break;
        if (n == TX_BATCH) {
            more = true;
            break;
        }
        int r = vq_pop_or_arm(q, &d->chain);
        if (r == 0) break;
        if (r < 0) {
            broken = true;
            d->st.malformed++;
            break;
        }
        /* 5.1.6.2: header and frame in the readable part; anything writable is ignored. */
        uint64_t rl = d->chain.read_len;
        bool ok = rl >= VIRTIO_NET_HDR_LEN + NET_FRAME_MIN &&
                  rl <= VIRTIO_NET_HDR_LEN + (d->tso ? NET_GSO_FRAME_MAX : NET_FRAME_MAX);
        size_t len = ok ? (size_t)rl - VIRTIO_NET_HDR_LEN : 0;
        if (ok) {
            vq_chain_read(&d->chain, 0, d->txbuf, rl);
            ok = tx_check(d, len);
        }
        vq_push(q, d->chain.head, 0);
        notify_tx = true;
        if (!ok) {
            d->st.tx_bad++;
            continue;
        }
        d->st.tx_frames++;
        /* The frame is copied and its buffer given back: send without the lock (receive()
         * may run inside send). txbuf is only used here, on the backend thread. */
        pthread_mutex_unlock(&d->lock);
        if (d->tso)
            net_backend_send_hdr(d->nb, d->txbuf, d->txbuf + VIRTIO_NET_HDR_LEN, len);
        else
            net_backend_send(d->nb, d->txbuf + VIRTIO_NET_HDR_LEN, len);
        pthread_mutex_lock(&d->lock);
    }
    if (notify_tx) notify_tx = d->running && should_notify_locked(d, Q_TX);
    if (notify_rx) notify_rx = d->running && should_notify_locked(d, Q_RX);
    pthread_mutex_unlock(&d->lock);
    finish(d, notify_tx || notify_rx, broken);
    idle(d);
    if (more) net_backend_kick(d->nb);
}

/* ---- transport callbacks ---- */

static void net_start(void *dev, uint64_t features)
{
    struct vnet *d = dev;
    pthread_mutex_lock(&d->lock);
    d->running = true;
    d->mrg_rxbuf = features & (1ull << VIRTIO_NET_F_MRG_RXBUF);
    d->guest_csum = features & (1ull << VIRTIO_NET_F_GUEST_CSUM);
    /* what frames for the guest may leave to it: told to the backend on its own thread */
    unsigned o = 0;
    if (d->tso && d->guest_csum) {
        o = NET_OFFLOAD_CSUM;
        if (features & (1ull << VIRTIO_NET_F_GUEST_TSO4)) o |= NET_OFFLOAD_TSO4;
        if (features & (1ull << VIRTIO_NET_F_GUEST_TSO6)) o |= NET_OFFLOAD_TSO6;
        if (features & (1ull << VIRTIO_NET_F_GUEST_ECN)) o |= NET_OFFLOAD_ECN;
    }
    bool kick = d->tso && o != d->offload;
    d->offload = o;
    pthread_mutex_unlock(&d->lock);
    if (kick) net_backend_kick(d->nb);
}

static void net_notify(void *dev, unsigned q)
{
    struct vnet *d = dev;
    (void)q; /* rx (new buffers) and tx (new frames) both mean work on the backend thread */
    net_backend_kick(d->nb);
}

static bool net_reset(void *dev)
{
    struct vnet *d = dev;
    pthread_mutex_lock(&d->lock);
    d->running = false;
    d->mrg_rxbuf = d->guest_csum = false;
    drop_pending_locked(d);
    bool kick = d->offload != 0; /* a driver that comes next may take on less */
    d->offload = 0;
    pthread_mutex_unlock(&d->lock);
    if (kick) net_backend_kick(d->nb);
    return true; /* chains are taken and given back under the lock: nothing is in flight */
}

/* Snapshots: the MAC address the driver read (a clone's configuration may name another, which
 * the guest sees from its next boot). Frames waiting for buffers are not saved: a network may
 * lose frames, and TCP sends them again. */
static void net_save(void *dev, struct sw *w)
{
    struct vnet *d = dev;
    sw_bytes(w, "dev.mac", d->mac, 6);
}

static int net_load(void *dev, struct sr *r)
{
    struct vnet *d = dev;
    uint8_t mac[6];
    sr_bytes(r, "dev.mac", mac, 6);
    if (!sr_failed(r) && ((mac[0] & 1) || !(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5])))
        sr_fail(r, "state of virtio-net: %02x:%02x:%02x:%02x:%02x:%02x is not a unicast address",
                mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
    if (sr_failed(r)) return -1;
    /* frozen until the whole machine is loaded (machine_snapshot_load lets it go): a frame
     * delivered before the PLIC's state is restored would lose its interrupt */
    pthread_mutex_lock(&d->lock);
    memcpy(d->mac, mac, 6);
    d->frozen = true;
    pthread_mutex_unlock(&d->lock);
    return 0;
}

static void net_quiesce(void *dev, bool stop)
{
    struct vnet *d = dev;
    pthread_mutex_lock(&d->lock);
    d->frozen = stop;
    while (stop && d->active)
        pthread_cond_wait(&d->idle, &d->lock);
    pthread_mutex_unlock(&d->lock);
    if (!stop) net_backend_kick(d->nb); /* frames that waited, and transmits left alone */
}

static const struct virtio_device_ops net_ops = {
    .device_id = VIRTIO_ID_NET,
    .features = (1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_GUEST_CSUM) |
                (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_MRG_RXBUF) |
                (1ull << VIRTIO_NET_F_STATUS) | (1ull << VIRTIO_NET_F_MTU),
    .num_queues = 2,
    .queue_max = 256,
    .config_size = CONFIG_LEN,
    .config_read = net_cfg_read,
    .config_write = net_cfg_write,
    .start = net_start,
    .notify = net_notify,
    .reset = net_reset,
    .save = net_save,
    .load = net_load,
    .quiesce = net_quiesce,
};

struct vnet *vnet_create(struct net_backend *nb, const uint8_t mac[6], const struct guest_mem *gm,
                         struct irq_line irq)
{
    if (!nb) return NULL;
    struct vnet *d = calloc(1, sizeof(*d));
    if (!d) return NULL;
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->idle, NULL);
    d->nb = nb;
    d->mtu = nb->mtu >= NET_MTU_MIN && nb->mtu <= NET_MTU_MAX ? nb->mtu : NET_MTU_DEFAULT;
    memcpy(d->mac, mac, 6);
    d->tso = nb->tso && nb->ops->send_hdr;
    d->ops = net_ops;
    if (d->tso)
        d->ops.features |= (1ull << VIRTIO_NET_F_HOST_TSO4) | (1ull << VIRTIO_NET_F_HOST_TSO6) |
                           (1ull << VIRTIO_NET_F_HOST_ECN) | (1ull << VIRTIO_NET_F_GUEST_TSO4) |
                           (1ull << VIRTIO_NET_F_GUEST_TSO6) | (1ull << VIRTIO_NET_F_GUEST_ECN);
    d->t = virtio_mmio_create(&d->ops, d, gm, irq);
    if (!d->t) {
        pthread_cond_destroy(&d->idle);
        pthread_mutex_destroy(&d->lock);
        free(d);
        return NULL;
    }
    struct net_client c = {
        .receive = net_receive, .receive_hdr = net_receive_hdr, .run = net_run, .ctx = d};
    net_backend_attach(nb, &c);
    return d;
}

void vnet_destroy(struct vnet *d)
{
    if (!d) return;
    net_backend_attach(d->nb, NULL); /* no callback runs after this */
    log_debug("virtio-net: rx %llu frames (%llu dropped, %llu too small, %llu bad buffers), "
              "tx %llu frames (%llu bad), %llu malformed rings",
              (unsigned long long)d->st.rx_frames, (unsigned long long)d->st.rx_dropped,
              (unsigned long long)d->st.rx_too_small, (unsigned long long)d->st.rx_bad_buffers,
              (unsigned long long)d->st.tx_frames, (unsigned long long)d->st.tx_bad,
              (unsigned long long)d->st.malformed);
    drop_pending_locked(d);
    virtio_mmio_destroy(d->t);
    pthread_cond_destroy(&d->idle);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

struct virtio_mmio *vnet_transport(struct vnet *d)
{
    return d->t;
}

void vnet_get_stats(struct vnet *d, struct vnet_stats *s)
{
    pthread_mutex_lock(&d->lock);
    *s = d->st;
    s->rx_pending = d->p_count;
    pthread_mutex_unlock(&d->lock);
}

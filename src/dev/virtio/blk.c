/* virtio-blk device model: guest requests -> block backend requests. */
#include "dev/virtio/blk.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/ratelimit.h"
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* feature bits (5.2.3) */
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* request types and status (5.2.6) */
#define VIRTIO_BLK_T_IN           0
#define VIRTIO_BLK_T_OUT          1
#define VIRTIO_BLK_T_FLUSH        4
#define VIRTIO_BLK_T_GET_ID       8
#define VIRTIO_BLK_T_DISCARD      11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK           0
#define VIRTIO_BLK_S_IOERR        1
#define VIRTIO_BLK_S_UNSUPP       2

#define SECTOR              512ull
#define QUEUE_SIZE          256
#define MAX_DISCARD_SECTORS 0x3fffffu
#define CONFIG_SIZE         60
/* How long vblk_destroy waits for in-flight requests before abandoning them (see there). */
#define DESTROY_WAIT_MS     250

struct vblk_req {
    struct blk_req r;
    struct vblk *d;
    uint16_t head;
    uint8_t *status;
    uint32_t used_len;
    int iovcnt;
    struct iovec iov[VQ_MAX_SEGS];
};

struct vblk {
    struct virtio_mmio *t;
    struct blk_backend *be;
    char serial[VIRTIO_BLK_SERIAL_LEN];
    bool readonly;
    uint64_t capacity; /* sectors; changes only under lock (vblk_swap_backend), read atomically */
    pthread_mutex_t lock; /* queue pop/push, counters */
    pthread_cond_t idle;
    unsigned inflight;
    bool running;
    bool reset_pending; /* the transport waits for inflight to reach 0 (async reset) */
    bool quiesced;      /* vblk_swap_backend: take no new requests (they wait in the ring) */
    struct vblk_stats st;
    struct vq_chain chain; /* scratch for vq_pop, under lock */
};

struct __attribute__((packed)) blk_hdr {
    uint32_t type, reserved;
    uint64_t sector;
};
struct __attribute__((packed)) blk_range {
    uint64_t sector;
    uint32_t num_sectors, flags;
};

/* iovecs covering bytes [off, off + len) of the chain (readable then writable segments). */
static int chain_iov(const struct vq_chain *c, uint64_t off, uint64_t len, struct iovec *iov,
                     int max)
{
    int n = 0;
    uint64_t pos = 0;
    for (unsigned s = 0; s < c->nseg && len; s++) {
        uint64_t sl = c->seg[s].len;
        if (off >= pos + sl) {
            pos += sl;
            continue;
        }
        uint64_t start = off > pos ? off - pos : 0;
        uint64_t take = sl - start < len ? sl - start : len;
        if (n == max) return -1;
        iov[n].iov_base = c->seg[s].ptr + start;
        iov[n].iov_len = take;
        n++;
        len -= take;
        off += take;
        pos += sl;
    }
    return len ? -1 : n;
}

static void complete(struct vblk_req *q, uint8_t status)
{
    struct vblk *d = q->d;
    pthread_mutex_lock(&d->lock);
    if (status != VIRTIO_BLK_S_OK) d->st.errors++;
    bool notify = false;
    bool reset_done = false;
    if (d->running) {
        /* After a reset nothing is written or pushed: the request belongs to the driver's
         * previous life (the status byte's memory may be reused once status reads 0). */
        *q->status = status;
        struct vq *vq = virtio_mmio_queue(d->t, 0);
        vq_push(vq, q->head, q->used_len);
        notify = vq_should_notify(vq);
    }
    /* Interrupt while the request still counts as in flight: once inflight drops to 0 a
     * reset or vblk_destroy() may return and free d and its transport. Lock order: d->lock,
     * then the transport's (which never calls into the device holding it). */
    if (notify) virtio_mmio_interrupt(d->t, VIRTIO_INT_USED);
    if (--d->inflight == 0) {
        pthread_cond_broadcast(&d->idle);
        reset_done = d->reset_pending;
        d->reset_pending = false;
    }
    /* Still under d->lock, for the same reason as the interrupt above. */
    if (reset_done) virtio_mmio_reset_done(d->t);
    pthread_mutex_unlock(&d->lock);
    free(q);
}

static void io_done(struct blk_req *r, int64_t result)
{
    struct vblk_req *q = r->opaque;
    if (result < 0) log_debug("virtio-blk: request failed: %s", strerror((int)-result));
    /* 2.7.13 and the in-flight bound in vq: the head is pushed (and freed for reuse) in
     * complete(), so a request's host memory lives exactly as long as its head is in flight. */
    complete(q, result < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK);
}

/* Start one request; called with d->lock held. Returns false if the chain is unusable
 * (the device then needs a reset). */
static bool start_request(struct vblk *d, const struct vq_chain *c)
{
    struct blk_hdr hdr;
    /* A request needs a readable header and a writable status byte (5.2.6). */
    if (c->read_len < sizeof(hdr) || c->write_len < 1) return false; /* counted by the caller */
    vq_chain_read(c, 0, &hdr, sizeof(hdr));
    struct vblk_req *q = calloc(1, sizeof(*q));
    if (!q) return false;
    q->d = d;
    q->head = c->head;
    /* status: the last writable byte */
    uint64_t status_off = c->read_len + c->write_len - 1;
    struct iovec siov;
    if (chain_iov(c, status_off, 1, &siov, 1) != 1) {
        free(q);
        return false;
    }
    q->status = siov.iov_base;
    q->used_len = 1;
    q->r.done = io_done;
    q->r.opaque = q;
    d->inflight++;

    uint8_t status = VIRTIO_BLK_S_OK;
    bool io = true; /* false: complete now with `status` */
    uint64_t data_len;
    switch (hdr.type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT: {
        bool in = hdr.type == VIRTIO_BLK_T_IN;
        data_len = in ? c->write_len - 1 : c->read_len - sizeof(hdr);
        uint64_t data_off = in ? c->read_len : sizeof(hdr);
        if (in ? c->read_len != sizeof(hdr) : c->write_len != 1) {
            status = VIRTIO_BLK_S_IOERR; /* data on the wrong side */
            break;
        }
        if (!in && d->readonly) {
            status = VIRTIO_BLK_S_IOERR;
            break;
        }
        if (data_len % SECTOR || hdr.sector > d->capacity ||
            data_len / SECTOR > d->capacity - hdr.sector) {
            status = VIRTIO_BLK_S_IOERR;
            break;
        }
        q->iovcnt = chain_iov(c, data_off, data_len, q->iov, VQ_MAX_SEGS);
        if (q->iovcnt < 0) {
            status = VIRTIO_BLK_S_IOERR;
            break;
        }
        q->r.op = in ? BLK_READ : BLK_WRITE;
        q->r.offset = hdr.sector * SECTOR;
        q->r.len = data_len;
        q->r.iov = q->iov;
        q->r.iovcnt = q->iovcnt;
        q->used_len = in ? (uint32_t)data_len + 1 : 1;
        if (in)
            d->st.reads++;
        else
            d->st.writes++;
        break;
    }
    case VIRTIO_BLK_T_FLUSH:
        q->r.op = BLK_FLUSH;
        d->st.flushes++;
        break;
    case VIRTIO_BLK_T_GET_ID: {
        d->st.get_ids++;
        uint64_t n =
            c->write_len - 1 < VIRTIO_BLK_SERIAL_LEN ? c->write_len - 1 : VIRTIO_BLK_SERIAL_LEN;
        vq_chain_write(c, 0, d->serial, n);
        q->used_len = (uint32_t)n + 1;
        io = false;
        break;
    }
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES: {
        struct blk_range rg;
        bool dz = hdr.type == VIRTIO_BLK_T_WRITE_ZEROES;
        if (d->readonly || c->read_len != sizeof(hdr) + sizeof(rg) || c->write_len != 1) {
            status = d->readonly ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_UNSUPP;
            break;
        }
        vq_chain_read(c, sizeof(hdr), &rg, sizeof(rg));
        /* flags: only unmap (bit 0) for write zeroes; none for discard */
        if ((rg.flags & ~(dz ? 1u : 0u)) || rg.num_sectors > MAX_DISCARD_SECTORS ||
            rg.sector > d->capacity || rg.num_sectors > d->capacity - rg.sector) {
            status = rg.flags & ~(dz ? 1u : 0u) ? VIRTIO_BLK_S_UNSUPP : VIRTIO_BLK_S_IOERR;
            break;
        }
        q->r.op = dz ? BLK_WRITE_ZEROES : BLK_DISCARD;
        q->r.offset = rg.sector * SECTOR;
        q->r.len = (uint64_t)rg.num_sectors * SECTOR;
        if (dz)
            d->st.write_zeroes++;
        else
            d->st.discards++;
        break;
    }
    default: status = VIRTIO_BLK_S_UNSUPP; break;
    }
    /* The backend this request was checked against: a swap waits for it (inflight) before
     * changing d->be. */
    struct blk_backend *be = d->be;
    /* Unlocked: the backend may complete on another thread at once. */
    pthread_mutex_unlock(&d->lock);
    if (status != VIRTIO_BLK_S_OK || !io)
        complete(q, status);
    else if (blk_submit(be, &q->r) < 0)
        complete(q, VIRTIO_BLK_S_IOERR);
    pthread_mutex_lock(&d->lock);
    return true;
}

static void process_queue(struct vblk *d)
{
    pthread_mutex_lock(&d->lock);
    struct vq *vq = virtio_mmio_queue(d->t, 0);
    bool broken = false;
    while (d->running && !d->quiesced && vq && !vq->broken) {
        int r = vq_pop_or_arm(vq, &d->chain);
        if (r == 0) break;
        if (r < 0 || !start_request(d, &d->chain)) {
            /* Take nothing more until the driver resets the device (vq_reset clears it):
             * another hart's notify may get here before the transport shows NEEDS_RESET. */
            vq->broken = true;
            broken = true;
            d->st.bad_requests++;
            break;
        }
    }
    pthread_mutex_unlock(&d->lock);
    if (broken) {
        log_warn_ratelimited("virtio-blk: malformed request from the guest; device needs reset");
        virtio_mmio_set_needs_reset(d->t);
    }
}

/* ---- transport callbacks ---- */

static uint32_t cfg_read(void *dev, uint32_t off, unsigned size)
{
    struct vblk *d = dev;
    uint8_t cfg[CONFIG_SIZE] = {0};
    uint64_t cap = __atomic_load_n(&d->capacity, __ATOMIC_RELAXED);
    uint32_t seg_max = VQ_MAX_SEGS - 2, blk_size = SECTOR, max_sect = MAX_DISCARD_SECTORS, one = 1;
    memcpy(cfg + 0, &cap, 8);
    memcpy(cfg + 12, &seg_max, 4);
    memcpy(cfg + 20, &blk_size, 4);
    memcpy(cfg + 36, &max_sect, 4); /* max_discard_sectors */
    memcpy(cfg + 40, &one, 4);      /* max_discard_seg */
    memcpy(cfg + 44, &one, 4);      /* discard_sector_alignment */
    memcpy(cfg + 48, &max_sect, 4); /* max_write_zeroes_sectors */
    memcpy(cfg + 52, &one, 4);      /* max_write_zeroes_seg */
    cfg[56] = 1;                    /* write_zeroes_may_unmap */
    if (off >= CONFIG_SIZE || size > CONFIG_SIZE - off) return 0;
    uint32_t v = 0;
    memcpy(&v, cfg + off, size);
    return v;
}

static void cfg_write(void *dev, uint32_t off, uint32_t val, unsigned size)
{
    (void)dev, (void)off, (void)val, (void)size; /* writeback toggling not offered */
}

static void dev_start(void *dev, uint64_t features)
{
    struct vblk *d = dev;
    (void)features;
    pthread_mutex_lock(&d->lock);
    d->running = true;
    pthread_mutex_unlock(&d->lock);
}

static void dev_notify(void *dev, unsigned q)
{
    if (q == 0) process_queue(dev);
}

static void drain(struct vblk *d)
{
    pthread_mutex_lock(&d->lock);
    while (d->inflight)
        pthread_cond_wait(&d->idle, &d->lock);
    pthread_mutex_unlock(&d->lock);
}

/* Wait until nothing is in flight or until `ms` have passed. True if drained. */
static bool drain_for(struct vblk *d, unsigned ms)
{
    struct timespec ts = monotonic_deadline_ms(ms);
    pthread_mutex_lock(&d->lock);
    while (d->inflight)
        if (pthread_cond_timedwait(&d->idle, &d->lock, &ts) == ETIMEDOUT) break;
    bool done = d->inflight == 0;
    pthread_mutex_unlock(&d->lock);
    return done;
}

/* Asynchronous (mmio.h): stop taking and pushing requests; if some are in flight, the last
 * completion finishes the reset. Never waits on the backend: a guest's reset must not stall
 * its hart behind a slow or stuck disk. */
static bool dev_reset(void *dev)
{
    struct vblk *d = dev;
    pthread_mutex_lock(&d->lock);
    d->running = false;
    d->st.resets++;
    bool done = d->inflight == 0;
    d->reset_pending = !done;
    pthread_mutex_unlock(&d->lock);
    return done;
}

/* Devices whose requests never completed in time at vblk_destroy: kept (never freed) so late
 * completions find valid memory; on this list so leak checkers see them as reachable. */
static pthread_mutex_t abandoned_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vblk *abandoned[64];
static unsigned nabandoned;

static struct virtio_device_ops blk_ops_template = {
    .device_id = 2,
    .num_queues = 1,
    .queue_max = QUEUE_SIZE,
    .config_size = CONFIG_SIZE,
    .config_read = cfg_read,
    .config_write = cfg_write,
    .start = dev_start,
    .notify = dev_notify,
    .reset = dev_reset,
};

struct vblk_with_ops {
    struct vblk d;
    struct virtio_device_ops ops;
};

struct vblk *vblk_create(struct blk_backend *be, const char *serial, const struct guest_mem *gm,
                         struct irq_line irq)
{
    struct vblk_with_ops *w = calloc(1, sizeof(*w));
    if (!w) return NULL;
    struct vblk *d = &w->d;
    d->be = be;
    d->readonly = blk_readonly(be);
    d->capacity = blk_size(be) / SECTOR;
    if (serial) /* 20 bytes, NUL-padded, not NUL-terminated when full (5.2.6) */
        memcpy(d->serial, serial, strnlen(serial, sizeof(d->serial)));
    pthread_mutex_init(&d->lock, NULL);
    cond_init_monotonic(&d->idle); /* drain_for() waits against CLOCK_MONOTONIC */
    w->ops = blk_ops_template;
    w->ops.features = (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) |
                      (1ull << VIRTIO_BLK_F_FLUSH);
    if (d->readonly)
        w->ops.features |= 1ull << VIRTIO_BLK_F_RO;
    else
        w->ops.features |= (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
    d->t = virtio_mmio_create(&w->ops, d, gm, irq);
    if (!d->t) {
        pthread_mutex_destroy(&d->lock);
        pthread_cond_destroy(&d->idle);
        free(w);
        return NULL;
    }
    return d;
}

bool vblk_destroy(struct vblk *d)
{
    if (!d) return true;
    dev_reset(d);
    /* Bounded: a backend that never completes (a hung NFS server, the stall test hook) must
     * not keep vessel from stopping. What is still in flight then is abandoned with the
     * device: its completions, if they ever come, write nothing into guest memory (running is
     * false) and touch only this leaked struct. The caller must keep guest RAM mapped. */
    if (!drain_for(d, DESTROY_WAIT_MS)) {
        pthread_mutex_lock(&d->lock);
        unsigned n = d->inflight;
        pthread_mutex_unlock(&d->lock);
        log_warn_ratelimited("virtio-blk: %u request(s) did not complete within %u ms of "
                             "shutdown; abandoned",
                             n, DESTROY_WAIT_MS);
        /* The interrupt controller goes away with the machine: a late completion finishing
         * a guest's reset must not lower a line into freed memory. */
        virtio_mmio_disconnect_irq(d->t);
        pthread_mutex_lock(&abandoned_lock);
        if (nabandoned < sizeof(abandoned) / sizeof(abandoned[0])) abandoned[nabandoned++] = d;
        pthread_mutex_unlock(&abandoned_lock);
        return false;
    }
    struct vblk_stats st = d->st;
    struct virtio_mmio_stats ts;
    virtio_mmio_get_stats(d->t, &ts);
    log_debug("virtio-blk: %llu reads, %llu writes, %llu flushes, %llu errors, %llu malformed "
              "requests, %llu resets (%llu waited for I/O), %llu needs-reset, %llu register "
              "writes ignored during reset",
              (unsigned long long)st.reads, (unsigned long long)st.writes,
              (unsigned long long)st.flushes, (unsigned long long)st.errors,
              (unsigned long long)st.bad_requests, (unsigned long long)ts.resets,
              (unsigned long long)ts.resets_deferred, (unsigned long long)ts.needs_reset,
              (unsigned long long)ts.ignored_during_reset);
    virtio_mmio_destroy(d->t);
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->idle);
    free((struct vblk_with_ops *)d);
    return true;
}

int vblk_swap_backend(struct vblk *d, struct blk_backend *be, unsigned wait_ms)
{
    /* The negotiated features (VIRTIO_BLK_F_RO, DISCARD...) cannot change under the driver. */
    if (blk_readonly(be) != d->readonly) return -EINVAL;
    int r = 0;
    struct timespec ts = monotonic_deadline_ms(wait_ms);
    pthread_mutex_lock(&d->lock);
    if (d->quiesced) { /* another swap is under way (callers serialise; be safe anyway) */
        pthread_mutex_unlock(&d->lock);
        return -EBUSY;
    }
    /* Quiesce: requests the driver makes available from now on stay in the ring; the ones
     * taken before complete against the backend they were checked against. */
    d->quiesced = true;
    while (d->inflight)
        if (pthread_cond_timedwait(&d->idle, &d->lock, &ts) == ETIMEDOUT) break;
    bool drained = d->inflight == 0;
    if (!drained) r = -EBUSY;
    /* The same backend: the image was resized on the host; nothing is in flight, so its size
     * can change under blk_submit's range checks now. */
    char err[256];
    if (drained && be == d->be && blk_refresh_size(be, err, sizeof(err)) < 0) {
        log_warn("virtio-blk: %s", err);
        drained = false, r = -EINVAL;
    }
    if (drained) {
        d->be = be;
        __atomic_store_n(&d->capacity, blk_size(be) / SECTOR, __ATOMIC_RELAXED);
        d->st.swaps++;
    }
    d->quiesced = false;
    pthread_mutex_unlock(&d->lock);
    /* 5.2.4 / 4.2.2.1: the capacity changed: the transport bumps ConfigGeneration and raises
     * the configuration change interrupt (dropped while the driver resets the device; it
     * reads the configuration again anyway). */
    if (drained) virtio_mmio_interrupt(d->t, VIRTIO_INT_CONFIG);
    /* Take what the driver queued while we waited: its notifications were not acted on. */
    process_queue(d);
    return r;
}

struct virtio_mmio *vblk_transport(struct vblk *d)
{
    return d->t;
}

void vblk_get_stats(struct vblk *d, struct vblk_stats *s)
{
    pthread_mutex_lock(&d->lock);
    *s = d->st;
    s->in_flight = d->inflight;
    s->quiesced = d->quiesced;
    pthread_mutex_unlock(&d->lock);
}

struct blk_backend *vblk_backend(struct vblk *d)
{
    pthread_mutex_lock(&d->lock);
    struct blk_backend *be = d->be;
    pthread_mutex_unlock(&d->lock);
    return be;
}

int vblk_flush(struct vblk *d, unsigned ms)
{
    pthread_mutex_lock(&d->lock);
    struct blk_backend *be = d->be;
    pthread_mutex_unlock(&d->lock);
    if (!be || blk_readonly(be)) return 0;
    return blk_flush_wait(be, ms);
}

void vblk_process_and_wait(struct vblk *d)
{
    process_queue(d);
    drain(d);
}

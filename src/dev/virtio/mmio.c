/* virtio-mmio transport, version 2 registers (virtio 1.x spec 4.2.2 - 4.2.3).
 *
 * Locking: `lock` guards the register state and is never held across a device callback, so a
 * device may call virtio_mmio_interrupt() from inside notify/reset/start. `ctl` serialises
 * status transitions (reset, FEATURES_OK, DRIVER_OK) together with their start/reset
 * callbacks, so a device never sees start and reset race each other. Order: ctl, then lock.
 * Queue configuration (struct vq fields set by the transport) only changes while the device is
 * not started (before DRIVER_OK, or when a reset completes, after the device stopped).
 *
 * Reset is asynchronous: writing status 0 never waits for the device's in-flight I/O (a
 * stuck backend would otherwise stall the hart, and poweroff with it). While the device
 * drains, `resetting` is set, status reads back its old non-zero value and every register
 * write but an interrupt ack (or another status 0, a no-op) is ignored; the device calls
 * virtio_mmio_reset_done() when its last request is gone, which only takes `lock` (never `ctl`: the
 * device may call it from an I/O thread holding its own lock, and ctl is held around ops->reset,
 * which takes it). */
#include "dev/virtio/mmio.h"
#include "util/log.h"
#include "util/staterec.h"
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#define MMIO_MAGIC  0x74726976 /* "virt" */
#define MMIO_VENDOR 0x554d4551 /* "QEMU", as QEMU's virt board: nothing in Linux depends on it */

enum {
    REG_MAGIC = 0x000,
    REG_VERSION = 0x004,
    REG_DEVICE_ID = 0x008,
    REG_VENDOR_ID = 0x00c,
    REG_DEVICE_FEATURES = 0x010,
    REG_DEVICE_FEATURES_SEL = 0x014,
    REG_DRIVER_FEATURES = 0x020,
    REG_DRIVER_FEATURES_SEL = 0x024,
    REG_QUEUE_SEL = 0x030,
    REG_QUEUE_NUM_MAX = 0x034,
    REG_QUEUE_NUM = 0x038,
    REG_QUEUE_READY = 0x044,
    REG_QUEUE_NOTIFY = 0x050,
    REG_INTERRUPT_STATUS = 0x060,
    REG_INTERRUPT_ACK = 0x064,
    REG_STATUS = 0x070,
    REG_QUEUE_DESC_LOW = 0x080,
    REG_QUEUE_DESC_HIGH = 0x084,
    REG_QUEUE_DRIVER_LOW = 0x090,
    REG_QUEUE_DRIVER_HIGH = 0x094,
    REG_QUEUE_DEVICE_LOW = 0x0a0,
    REG_QUEUE_DEVICE_HIGH = 0x0a4,
    REG_SHM_SEL = 0x0ac,
    REG_SHM_LEN_LOW = 0x0b0,
    REG_SHM_LEN_HIGH = 0x0b4,
    REG_SHM_BASE_LOW = 0x0b8,
    REG_SHM_BASE_HIGH = 0x0bc,
    REG_CONFIG_GENERATION = 0x0fc,
    REG_CONFIG = 0x100,
};

struct virtio_mmio {
    pthread_mutex_t ctl;  /* status transitions and their callbacks */
    pthread_mutex_t lock; /* register state below */
    const struct virtio_device_ops *ops;
    void *dev;
    const struct guest_mem *gm;
    struct irq_line irq;
    unsigned nq;
    uint16_t queue_max;
    uint64_t offered;         /* ops->features + transport features */
    uint64_t driver_features; /* what the driver wrote */
    uint32_t dev_features_sel, drv_features_sel, queue_sel;
    uint32_t status, int_status, config_gen;
    bool irq_level;
    uint32_t early_notify; /* queues kicked before DRIVER_OK, delivered after start */
    bool resetting;        /* status 0 written, the device is still draining */
    struct virtio_mmio_stats st;
    struct vq vq[VIRTIO_MAX_QUEUES];
};

/* Caller holds t->lock. Drive the line only on change: the PLIC sources are level-triggered. */
static void update_irq(struct virtio_mmio *t)
{
    bool level = t->int_status != 0;
    if (level != t->irq_level) {
        t->irq_level = level;
        irq_line_set(&t->irq, level);
    }
}

static void queue_defaults(struct virtio_mmio *t, struct vq *q)
{
    q->num = t->queue_max;
    q->desc_gpa = q->avail_gpa = q->used_gpa = 0;
    q->ready = false;
    q->event_idx = q->indirect = false;
    q->gm = t->gm;
    vq_reset(q);
}

static void apply_ring_features(struct virtio_mmio *t, struct vq *q)
{
    q->event_idx = t->driver_features & (1ull << VIRTIO_F_EVENT_IDX);
    q->indirect = t->driver_features & (1ull << VIRTIO_F_INDIRECT_DESC);
}

/* Caller holds t->lock. 2.1.2: set DEVICE_NEEDS_RESET and send a configuration change
 * notification. Meaningless on a device in reset (status 0): dropped there. */
static void needs_reset_locked(struct virtio_mmio *t)
{
    if (t->status == 0 || t->resetting || (t->status & VIRTIO_STATUS_NEEDS_RESET)) return;
    t->st.needs_reset++;
    t->status |= VIRTIO_STATUS_NEEDS_RESET;
    t->config_gen++;
    t->int_status |= VIRTIO_INT_CONFIG;
    update_irq(t);
}

struct virtio_mmio *virtio_mmio_create(const struct virtio_device_ops *ops, void *dev,
                                       const struct guest_mem *gm, struct irq_line irq)
{
    if (!ops || !gm || ops->num_queues > VIRTIO_MAX_QUEUES || ops->device_id == 0) {
        errno = EINVAL;
        return NULL;
    }
    struct virtio_mmio *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    pthread_mutex_init(&t->ctl, NULL);
    pthread_mutex_init(&t->lock, NULL);
    t->ops = ops;
    t->dev = dev;
    t->gm = gm;
    t->irq = irq;
    t->nq = ops->num_queues;
    /* Split queues need a power-of-two size: round a device's odd maximum down. */
    uint16_t max = ops->queue_max > VQ_MAX_SIZE ? VQ_MAX_SIZE : ops->queue_max;
    while (max & (max - 1))
        max &= max - 1;
    t->queue_max = max;
    t->offered = ops->features | (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_INDIRECT_DESC) |
                 (1ull << VIRTIO_F_EVENT_IDX);
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
        queue_defaults(t, &t->vq[i]);
    return t;
}

void virtio_mmio_destroy(struct virtio_mmio *t)
{
    if (!t) return;
    pthread_mutex_destroy(&t->lock);
    pthread_mutex_destroy(&t->ctl);
    free(t);
}

struct vq *virtio_mmio_queue(struct virtio_mmio *t, unsigned q)
{
    return q < t->nq ? &t->vq[q] : NULL;
}

void virtio_mmio_interrupt(struct virtio_mmio *t, uint32_t bits)
{
    pthread_mutex_lock(&t->lock);
    bits &= VIRTIO_INT_USED | VIRTIO_INT_CONFIG;
    /* 3.1.2: no used buffer notifications before DRIVER_OK (also drops completions that
     * arrive after a reset). */
    if (!(t->status & VIRTIO_STATUS_DRIVER_OK) || t->resetting) bits &= ~(uint32_t)VIRTIO_INT_USED;
    if (t->resetting) bits &= ~(uint32_t)VIRTIO_INT_CONFIG;
    if (!bits) {
        pthread_mutex_unlock(&t->lock);
        return;
    }
    if (bits & VIRTIO_INT_CONFIG) t->config_gen++;
    t->int_status |= bits;
    update_irq(t);
    pthread_mutex_unlock(&t->lock);
}

void virtio_mmio_set_needs_reset(struct virtio_mmio *t)
{
    pthread_mutex_lock(&t->lock);
    needs_reset_locked(t);
    pthread_mutex_unlock(&t->lock);
}

/* Caller holds t->lock: the register half of a reset, once the device has stopped. */
static void finish_reset_locked(struct virtio_mmio *t)
{
    t->resetting = false;
    t->status = 0;
    t->driver_features = 0;
    t->dev_features_sel = t->drv_features_sel = t->queue_sel = 0;
    t->early_notify = 0;
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
        queue_defaults(t, &t->vq[i]);
    t->int_status = 0;
    update_irq(t);
}

void virtio_mmio_reset_done(struct virtio_mmio *t)
{
    pthread_mutex_lock(&t->lock);
    if (t->resetting) finish_reset_locked(t);
    pthread_mutex_unlock(&t->lock);
}

void virtio_mmio_disconnect_irq(struct virtio_mmio *t)
{
    pthread_mutex_lock(&t->lock);
    t->irq.set = NULL; /* irq_line_set does nothing without it */
    pthread_mutex_unlock(&t->lock);
}

bool virtio_mmio_reset_pending(struct virtio_mmio *t)
{
    pthread_mutex_lock(&t->lock);
    bool r = t->resetting;
    pthread_mutex_unlock(&t->lock);
    return r;
}

void virtio_mmio_get_stats(struct virtio_mmio *t, struct virtio_mmio_stats *s)
{
    pthread_mutex_lock(&t->lock);
    *s = t->st;
    pthread_mutex_unlock(&t->lock);
}

/* Device status 0: reset the device and every queue (4.2.3.1: "writing zero to Status").
 * Caller holds t->ctl. `resetting` is set before the device is told, so a device that drains
 * at once on another thread finds the reset to finish. */
static void device_reset(struct virtio_mmio *t)
{
    pthread_mutex_lock(&t->lock);
    if (t->resetting) { /* status 0 again while draining: still the same reset */
        pthread_mutex_unlock(&t->lock);
        return;
    }
    t->resetting = true;
    t->st.resets++;
    pthread_mutex_unlock(&t->lock);
    bool done = t->ops->reset ? t->ops->reset(t->dev) : true;
    if (done) {
        virtio_mmio_reset_done(t);
    } else {
        pthread_mutex_lock(&t->lock);
        t->st.resets_deferred++;
        pthread_mutex_unlock(&t->lock);
    }
}

static bool features_acceptable(const struct virtio_mmio *t)
{
    /* 6.1: a version-2 device requires VIRTIO_F_VERSION_1; the driver may only accept a
     * subset of what was offered (3.1.1). */
    return (t->driver_features & (1ull << VIRTIO_F_VERSION_1)) &&
           !(t->driver_features & ~t->offered);
}

static void write_status(struct virtio_mmio *t, uint32_t val)
{
    pthread_mutex_lock(&t->ctl);
    if (val == 0) {
        device_reset(t);
        pthread_mutex_unlock(&t->ctl);
        return;
    }
    pthread_mutex_lock(&t->lock);
    if (t->resetting) { /* the driver must wait for status 0 first (4.2.2.1) */
        t->st.ignored_during_reset++;
        pthread_mutex_unlock(&t->lock);
        pthread_mutex_unlock(&t->ctl);
        return;
    }
    uint32_t old = t->status;
    /* The driver sets bits one step at a time and never clears them (2.1.2); NEEDS_RESET is
     * the device's. So bits only accumulate until a reset. */
    uint32_t s = old | (val & 0xff & ~(uint32_t)VIRTIO_STATUS_NEEDS_RESET);
    if ((s & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK) &&
        !features_acceptable(t)) {
        /* 3.1.1 step 6: the driver re-reads status and sees FEATURES_OK did not stick. */
        log_debug("virtio-mmio: device %u: features 0x%llx refused (offered 0x%llx)",
                  t->ops->device_id, (unsigned long long)t->driver_features,
                  (unsigned long long)t->offered);
        s &= ~(uint32_t)VIRTIO_STATUS_FEATURES_OK;
    }
    bool start = false;
    if ((s & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)) {
        if (!(s & VIRTIO_STATUS_FEATURES_OK)) {
            s &= ~(uint32_t)VIRTIO_STATUS_DRIVER_OK;
        } else {
            start = true;
            for (unsigned i = 0; i < t->nq; i++)
                apply_ring_features(t, &t->vq[i]);
        }
    }
    t->status = s;
    uint64_t features = t->driver_features;
    uint32_t early = start ? t->early_notify : 0;
    if (start) t->early_notify = 0;
    pthread_mutex_unlock(&t->lock);

    if (start) {
        if (t->ops->start) t->ops->start(t->dev, features);
        for (unsigned i = 0; i < t->nq; i++)
            if ((early >> i) & 1 && t->ops->notify) t->ops->notify(t->dev, i);
    }
    pthread_mutex_unlock(&t->ctl);
}

/* Caller holds t->lock. The selected queue if its configuration may change now: only
 * while it is not ready (4.2.2) and the device is not running. */
static struct vq *config_queue(struct virtio_mmio *t)
{
    if (t->queue_sel >= t->nq) return NULL;
    struct vq *q = &t->vq[t->queue_sel];
    if (q->ready || (t->status & VIRTIO_STATUS_DRIVER_OK)) return NULL;
    return q;
}

static void set_low(uint64_t *v, uint32_t lo)
{
    *v = (*v & ~0xffffffffull) | lo;
}
static void set_high(uint64_t *v, uint32_t hi)
{
    *v = (*v & 0xffffffffull) | (uint64_t)hi << 32;
}

/* Caller holds t->lock. */
static void write_queue_ready(struct virtio_mmio *t, uint32_t val)
{
    if (t->queue_sel >= t->nq) return;
    struct vq *q = &t->vq[t->queue_sel];
    if (t->status & VIRTIO_STATUS_DRIVER_OK) return; /* the device owns its queues now */
    if (!(val & 1)) {
        q->ready = false;
        vq_reset(q);
        return;
    }
    if (q->ready) return;
    if (q->num > t->queue_max || vq_check_layout(q) < 0) {
        log_debug("virtio-mmio: device %u queue %u: bad ring layout (num %u desc 0x%llx "
                  "driver 0x%llx device 0x%llx)",
                  t->ops->device_id, t->queue_sel, q->num, (unsigned long long)q->desc_gpa,
                  (unsigned long long)q->avail_gpa, (unsigned long long)q->used_gpa);
        needs_reset_locked(t);
        return;
    }
    vq_reset(q);
    apply_ring_features(t, q);
    q->ready = true;
}

static void write_reg(struct virtio_mmio *t, uint64_t off, uint32_t val)
{
    if (off == REG_STATUS) {
        write_status(t, val);
        return;
    }
    pthread_mutex_lock(&t->lock);
    struct vq *q;
    bool notify = false;
    if (t->resetting && off != REG_INTERRUPT_ACK) {
        /* Draining after status 0: nothing but status reads and interrupt acks until the
         * driver sees 0 (a driver that does not wait gets its writes dropped). */
        t->st.ignored_during_reset++;
        pthread_mutex_unlock(&t->lock);
        return;
    }
    switch (off) {
    case REG_DEVICE_FEATURES_SEL: t->dev_features_sel = val; break;
    case REG_DRIVER_FEATURES:
        /* Features are fixed once FEATURES_OK is set (3.1.1). */
        if (t->status & VIRTIO_STATUS_FEATURES_OK) break;
        if (t->drv_features_sel == 0)
            set_low(&t->driver_features, val);
        else if (t->drv_features_sel == 1)
            set_high(&t->driver_features, val);
        break;
    case REG_DRIVER_FEATURES_SEL: t->drv_features_sel = val; break;
    case REG_QUEUE_SEL: t->queue_sel = val; break;
    case REG_QUEUE_NUM:
        /* Kept as written (an invalid size becomes 0); QueueReady checks it. */
        if ((q = config_queue(t))) q->num = val <= 0xffff ? (uint16_t)val : 0;
        break;
    case REG_QUEUE_READY: write_queue_ready(t, val); break;
    case REG_QUEUE_NOTIFY:
        /* Without VIRTIO_F_NOTIFICATION_DATA the value is the queue index (4.2.2). */
        if (val >= t->nq || !t->vq[val].ready) break;
        if (t->status & VIRTIO_STATUS_NEEDS_RESET) break;
        if (t->status & VIRTIO_STATUS_DRIVER_OK)
            notify = true;
        else
            t->early_notify |= 1u << val;
        break;
    case REG_INTERRUPT_ACK:
        t->int_status &= ~val;
        update_irq(t);
        break;
    case REG_QUEUE_DESC_LOW:
        if ((q = config_queue(t))) set_low(&q->desc_gpa, val);
        break;
    case REG_QUEUE_DESC_HIGH:
        if ((q = config_queue(t))) set_high(&q->desc_gpa, val);
        break;
    case REG_QUEUE_DRIVER_LOW:
        if ((q = config_queue(t))) set_low(&q->avail_gpa, val);
        break;
    case REG_QUEUE_DRIVER_HIGH:
        if ((q = config_queue(t))) set_high(&q->avail_gpa, val);
        break;
    case REG_QUEUE_DEVICE_LOW:
        if ((q = config_queue(t))) set_low(&q->used_gpa, val);
        break;
    case REG_QUEUE_DEVICE_HIGH:
        if ((q = config_queue(t))) set_high(&q->used_gpa, val);
        break;
    default:
        log_debug("virtio-mmio: device %u: write 0x%x to read-only or unknown +0x%llx",
                  t->ops->device_id, val, (unsigned long long)off);
        break;
    }
    pthread_mutex_unlock(&t->lock);
    if (notify && t->ops->notify) t->ops->notify(t->dev, val);
}

static uint32_t read_reg(struct virtio_mmio *t, uint64_t off)
{
    pthread_mutex_lock(&t->lock);
    uint32_t v = 0;
    switch (off) {
    case REG_MAGIC: v = MMIO_MAGIC; break;
    case REG_VERSION: v = 2; break;
    case REG_DEVICE_ID: v = t->ops->device_id; break;
    case REG_VENDOR_ID: v = MMIO_VENDOR; break;
    case REG_DEVICE_FEATURES:
        if (t->dev_features_sel == 0)
            v = (uint32_t)t->offered;
        else if (t->dev_features_sel == 1)
            v = (uint32_t)(t->offered >> 32);
        break;
    case REG_QUEUE_NUM_MAX:
        /* 0 tells the driver the queue does not exist (4.2.3.2). */
        v = t->queue_sel < t->nq ? t->queue_max : 0;
        break;
    case REG_QUEUE_READY: v = t->queue_sel < t->nq && t->vq[t->queue_sel].ready; break;
    case REG_INTERRUPT_STATUS: v = t->int_status; break;
    case REG_STATUS: v = t->status; break;
    /* No shared memory regions: a length of -1 says so (4.2.2). */
    case REG_SHM_LEN_LOW:
    case REG_SHM_LEN_HIGH:
    case REG_SHM_BASE_LOW:
    case REG_SHM_BASE_HIGH: v = 0xffffffff; break;
    case REG_CONFIG_GENERATION: v = t->config_gen; break;
    default: break; /* write-only or reserved: 0 */
    }
    pthread_mutex_unlock(&t->lock);
    return v;
}

static uint64_t config_read(struct virtio_mmio *t, uint32_t off, unsigned size)
{
    if (!t->ops->config_read || off + size > t->ops->config_size) return 0;
    if (size == 8) {
        uint64_t lo = t->ops->config_read(t->dev, off, 4);
        uint64_t hi = t->ops->config_read(t->dev, off + 4, 4);
        return lo | hi << 32;
    }
    return t->ops->config_read(t->dev, off, size);
}

static void config_write(struct virtio_mmio *t, uint32_t off, uint64_t val, unsigned size)
{
    if (!t->ops->config_write || off + size > t->ops->config_size) return;
    if (size == 8) {
        t->ops->config_write(t->dev, off, (uint32_t)val, 4);
        t->ops->config_write(t->dev, off + 4, (uint32_t)(val >> 32), 4);
        return;
    }
    t->ops->config_write(t->dev, off, (uint32_t)val, size);
}

static uint64_t mmio_read(void *opaque, uint64_t off, unsigned size)
{
    struct virtio_mmio *t = opaque;
    if (off >= VIRTIO_MMIO_SIZE) return 0;
    if (off >= REG_CONFIG) return config_read(t, (uint32_t)(off - REG_CONFIG), size);
    /* 4.2.2.2: registers below 0x100 are accessed 32 bits wide only. */
    if (size != 4) return 0;
    return read_reg(t, off);
}

static void mmio_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct virtio_mmio *t = opaque;
    if (off >= VIRTIO_MMIO_SIZE) return;
    if (off >= REG_CONFIG) {
        config_write(t, (uint32_t)(off - REG_CONFIG), val, size);
        return;
    }
    if (size != 4) {
        log_debug("virtio-mmio: ignored %u-byte write at +0x%llx", size, (unsigned long long)off);
        return;
    }
    write_reg(t, off, (uint32_t)val);
}

const struct mmio_ops virtio_mmio_ops = {.read = mmio_read, .write = mmio_write};

/* ---- snapshots (util/staterec.h) ---- */
unsigned virtio_mmio_inflight(struct virtio_mmio *t)
{
    unsigned n = 0;
    for (unsigned i = 0; i < t->nq; i++)
        n += __atomic_load_n(&t->vq[i].inflight, __ATOMIC_ACQUIRE);
    return n;
}

void virtio_mmio_save(struct virtio_mmio *t, struct sw *w, unsigned slot)
{
    char sec[32];
    snprintf(sec, sizeof(sec), "virtio.%u", slot);
    pthread_mutex_lock(&t->ctl);
    pthread_mutex_lock(&t->lock);
    sw_section(w, sec, 1);
    sw_u64(w, "device_id", t->ops->device_id);
    sw_u64(w, "driver_features", t->driver_features);
    sw_u64(w, "dev_features_sel", t->dev_features_sel);
    sw_u64(w, "drv_features_sel", t->drv_features_sel);
    sw_u64(w, "queue_sel", t->queue_sel);
    sw_u64(w, "status", t->status);
    sw_u64(w, "int_status", t->int_status);
    sw_u64(w, "config_gen", t->config_gen);
    sw_u64(w, "irq_level", t->irq_level);
    sw_u64(w, "early_notify", t->early_notify);
    sw_u64(w, "nq", t->nq);
    for (unsigned i = 0; i < t->nq; i++) {
        const struct vq *q = &t->vq[i];
        char n[48];
#define QF(field, v)                                                                               \
    do {                                                                                           \
        snprintf(n, sizeof(n), "q%u." field, i);                                                   \
        sw_u64(w, n, v);                                                                           \
    } while (0)
        QF("num", q->num);
        QF("desc", q->desc_gpa);
        QF("avail", q->avail_gpa);
        QF("used", q->used_gpa);
        QF("ready", q->ready);
        QF("last_avail", q->last_avail);
        QF("used_idx", q->used_idx);
        QF("signalled_used", q->signalled_used);
        QF("signalled_used_valid", q->signalled_used_valid);
        QF("broken", q->broken);
#undef QF
    }
    pthread_mutex_unlock(&t->lock);
    if (t->ops->save) t->ops->save(t->dev, w);
    pthread_mutex_unlock(&t->ctl);
}

void virtio_mmio_quiesce(struct virtio_mmio *t, bool stop)
{
    if (t && t->ops->quiesce) t->ops->quiesce(t->dev, stop);
}

int virtio_mmio_load(struct virtio_mmio *t, struct sr *r, unsigned slot)
{
    char sec[32];
    snprintf(sec, sizeof(sec), "virtio.%u", slot);
    sr_enter(r, sec, 1);
    uint64_t id = sr_u64(r, "device_id", UINT32_MAX);
    if (!sr_failed(r) && id != t->ops->device_id)
        sr_fail(r, "state of %s: device %llu, the machine has device %u there", sec,
                (unsigned long long)id, t->ops->device_id);
    uint64_t feat = sr_u64(r, "driver_features", UINT64_MAX);
    uint32_t dsel = (uint32_t)sr_u64(r, "dev_features_sel", UINT32_MAX);
    uint32_t rsel = (uint32_t)sr_u64(r, "drv_features_sel", UINT32_MAX);
    uint32_t qsel = (uint32_t)sr_u64(r, "queue_sel", UINT32_MAX);
    uint32_t status = (uint32_t)sr_u64(r, "status", 0xff);
    uint32_t ist = (uint32_t)sr_u64(r, "int_status", 3);
    uint32_t gen = (uint32_t)sr_u64(r, "config_gen", UINT32_MAX);
    bool lvl = sr_u64(r, "irq_level", 1);
    uint32_t early = (uint32_t)sr_u64(r, "early_notify", (1u << VIRTIO_MAX_QUEUES) - 1);
    uint64_t nq = sr_u64(r, "nq", VIRTIO_MAX_QUEUES);
    if (!sr_failed(r) && nq != t->nq)
        sr_fail(r, "state of %s: %llu queues, the device has %u", sec, (unsigned long long)nq,
                t->nq);
    struct vq qs[VIRTIO_MAX_QUEUES];
    for (unsigned i = 0; i < t->nq && !sr_failed(r); i++) {
        struct vq *q = &qs[i];
        *q = t->vq[i];
        char n[48];
#define QF(field, max) (snprintf(n, sizeof(n), "q%u." field, i), sr_u64(r, n, max))
        q->num = (uint16_t)QF("num", t->queue_max);
        q->desc_gpa = QF("desc", UINT64_MAX);
        q->avail_gpa = QF("avail", UINT64_MAX);
        q->used_gpa = QF("used", UINT64_MAX);
        q->ready = QF("ready", 1);
        q->last_avail = (uint16_t)QF("last_avail", UINT16_MAX);
        q->used_idx = (uint16_t)QF("used_idx", UINT16_MAX);
        q->signalled_used = (uint16_t)QF("signalled_used", UINT16_MAX);
        q->signalled_used_valid = QF("signalled_used_valid", 1);
        q->broken = QF("broken", 1);
#undef QF
        q->inflight = 0;
        memset(q->inflight_map, 0, sizeof(q->inflight_map));
        q->event_idx = feat & (1ull << VIRTIO_F_EVENT_IDX);
        q->indirect = feat & (1ull << VIRTIO_F_INDIRECT_DESC);
        /* split rings have power-of-two sizes (2.7); a ready ring lies inside guest RAM */
        if (!sr_failed(r) && (q->num & (q->num - 1)))
            sr_fail(r, "state of %s: queue %u size %u is out of range (not a power of 2)", sec, i,
                    q->num);
        if (!sr_failed(r) && q->ready && (q->num == 0 || vq_check_layout(q) < 0))
            sr_fail(r, "state of %s: queue %u has a bad ring layout", sec, i);
    }
    if (!sr_failed(r) && (feat & ~t->offered))
        sr_fail(r, "state of %s: features 0x%llx were never offered", sec,
                (unsigned long long)feat);
    if (!sr_failed(r) && (status & VIRTIO_STATUS_DRIVER_OK) &&
        !(status & VIRTIO_STATUS_FEATURES_OK))
        sr_fail(r, "state of %s: DRIVER_OK without FEATURES_OK", sec);
    if (sr_failed(r)) return -1;
    pthread_mutex_lock(&t->ctl);
    pthread_mutex_lock(&t->lock);
    t->driver_features = feat;
    t->dev_features_sel = dsel;
    t->drv_features_sel = rsel;
    t->queue_sel = qsel;
    t->status = status;
    t->int_status = ist;
    t->config_gen = gen;
    t->early_notify = early;
    t->resetting = false;
    for (unsigned i = 0; i < t->nq; i++)
        t->vq[i] = qs[i];
    t->irq_level = lvl; /* the PLIC's saved line level matches it */
    update_irq(t);
    pthread_mutex_unlock(&t->lock);
    int rc = t->ops->load ? t->ops->load(t->dev, r) : 0;
    if (rc == 0 && (status & VIRTIO_STATUS_DRIVER_OK) && t->ops->start) t->ops->start(t->dev, feat);
    pthread_mutex_unlock(&t->ctl);
    return rc;
}

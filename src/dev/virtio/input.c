/* virtio-input keyboard (virtio 1.x spec 5.8). Events are queued on the host side and copied
 * into eventq buffers under the device lock, on whichever thread has work: the caller of
 * vinput_press_keys when buffers are there, else the hart that kicks the eventq when it adds
 * some. Nothing is ever in flight outside the lock, so reset never waits. */
#include "dev/virtio/input.h"
#include "util/staterec.h"
#include "util/log.h"
#include "util/ratelimit.h"
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define Q_EVENT  0 /* device -> driver (5.8.2) */
#define Q_STATUS 1 /* driver -> device: LEDs etc., discarded */
#define EVT_SIZE 8 /* struct virtio_input_event: le16 type, le16 code, le32 value (5.8.6) */

#define INPUT_NAME   "vessel power keyboard"
#define INPUT_SERIAL "vessel-input0"
#define BUS_VIRTUAL  0x06 /* linux/input.h; reported in ID_DEVIDS */

struct vinput_event {
    uint16_t type, code;
    uint32_t value;
};

struct vinput {
    struct virtio_mmio *t;
    pthread_mutex_t lock; /* everything below */
    bool running;         /* between DRIVER_OK and reset */
    uint8_t select, subsel;
    struct vinput_event pending[VINPUT_PENDING_MAX]; /* ring: head, count */
    unsigned head, count;
    struct vq_chain chain;
    struct vinput_stats st;
};

/* The keys the device reports (EV_BITS for EV_KEY). */
static const uint16_t supported_keys[] = {VINPUT_KEY_LEFTCTRL, VINPUT_KEY_LEFTALT,
                                          VINPUT_KEY_DELETE, VINPUT_KEY_POWER};

static bool key_supported(uint16_t k)
{
    for (size_t i = 0; i < sizeof(supported_keys) / sizeof(supported_keys[0]); i++)
        if (supported_keys[i] == k) return true;
    return false;
}

/* ---- configuration space (5.8.4): the driver writes select and subsel, then reads size and
 * the union u. Everything is computed from (select, subsel) on each read. ---- */

/* Fill u[128] for the current selection; returns size (0: not supported, 5.8.5.1). */
static uint8_t cfg_union(const struct vinput *d, uint8_t u[128])
{
    memset(u, 0, 128);
    switch (d->select) {
    case VIRTIO_INPUT_CFG_ID_NAME:
        memcpy(u, INPUT_NAME, sizeof(INPUT_NAME) - 1);
        return sizeof(INPUT_NAME) - 1;
    case VIRTIO_INPUT_CFG_ID_SERIAL:
        memcpy(u, INPUT_SERIAL, sizeof(INPUT_SERIAL) - 1);
        return sizeof(INPUT_SERIAL) - 1;
    case VIRTIO_INPUT_CFG_ID_DEVIDS: {
        /* struct virtio_input_devids: le16 bustype, vendor, product, version */
        static const uint8_t ids[8] = {BUS_VIRTUAL, 0, 0, 0, 1, 0, 1, 0};
        memcpy(u, ids, sizeof(ids));
        return sizeof(ids);
    }
    case VIRTIO_INPUT_CFG_EV_BITS: {
        uint8_t size = 0;
        if (d->subsel == VINPUT_EV_KEY) {
            for (size_t i = 0; i < sizeof(supported_keys) / sizeof(supported_keys[0]); i++) {
                unsigned k = supported_keys[i];
                u[k / 8] |= (uint8_t)(1u << (k % 8));
                if (k / 8 + 1 > size) size = (uint8_t)(k / 8 + 1);
            }
        } else if (d->subsel == VINPUT_EV_SYN) {
            u[0] = 1u << VINPUT_SYN_REPORT;
            size = 1;
        }
        return size;
    }
    default: return 0; /* UNSET, PROP_BITS (no properties), ABS_INFO (no axes), unknown */
    }
}

static uint32_t input_cfg_read(void *dev, uint32_t off, unsigned size)
{
    struct vinput *d = dev;
    uint8_t cfg[VIRTIO_INPUT_CFG_SIZE] = {0};
    pthread_mutex_lock(&d->lock);
    cfg[0] = d->select;
    cfg[1] = d->subsel;
    cfg[2] = cfg_union(d, cfg + 8);
    pthread_mutex_unlock(&d->lock);
    uint32_t v = 0;
    /* The transport bounds off + size by config_size; little endian (4.2.2). */
    for (unsigned i = 0; i < size && i < 4 && off + i < sizeof(cfg); i++)
        v |= (uint32_t)cfg[off + i] << (8 * i);
    return v;
}

static void input_cfg_write(void *dev, uint32_t off, uint32_t val, unsigned size)
{
    struct vinput *d = dev;
    pthread_mutex_lock(&d->lock);
    /* Only select (0) and subsel (1) are writable (5.8.5.2); bytes of a wider write that land
     * elsewhere are dropped. */
    for (unsigned i = 0; i < size && i < 4; i++) {
        uint8_t b = (uint8_t)(val >> (8 * i));
        if (off + i == 0) d->select = b;
        if (off + i == 1) d->subsel = b;
    }
    pthread_mutex_unlock(&d->lock);
}

/* ---- queues ---- */

/* Caller holds d->lock. Copy pending events into eventq buffers, one event per buffer (the
 * Linux driver accepts only buffers used with exactly 8 bytes). */
static void flush_locked(struct vinput *d, bool *notify, bool *broken)
{
    struct vq *q = virtio_mmio_queue(d->t, Q_EVENT);
    while (d->running && d->count && q && !q->broken) {
        int n = vq_pop_or_arm(q, &d->chain);
        if (n == 0) break; /* no buffer: the rest waits for the driver's next kick */
        if (n < 0) {
            *broken = true;
            d->st.malformed++;
            break;
        }
        if (d->chain.write_len < EVT_SIZE) {
            /* 5.8.6.1: eventq buffers MUST hold an event. Give it back empty, keep the event. */
            vq_push(q, d->chain.head, 0);
            d->st.bad_buffers++;
            *notify |= vq_should_notify(q);
            continue;
        }
        const struct vinput_event *e = &d->pending[d->head];
        uint8_t b[EVT_SIZE] = {(uint8_t)e->type,          (uint8_t)(e->type >> 8),
                               (uint8_t)e->code,          (uint8_t)(e->code >> 8),
                               (uint8_t)e->value,         (uint8_t)(e->value >> 8),
                               (uint8_t)(e->value >> 16), (uint8_t)(e->value >> 24)};
        vq_chain_write(&d->chain, 0, b, EVT_SIZE);
        vq_push(q, d->chain.head, EVT_SIZE);
        d->head = (d->head + 1) % VINPUT_PENDING_MAX;
        d->count--;
        d->st.events++;
        *notify |= vq_should_notify(q);
    }
}

/* Caller holds d->lock. The driver's status messages (5.8.6.2: LED state and the like) are
 * taken and given back unread: this keyboard has no LEDs. */
static void drain_status_locked(struct vinput *d, bool *notify, bool *broken)
{
    struct vq *q = virtio_mmio_queue(d->t, Q_STATUS);
    while (d->running && q && !q->broken) {
        int n = vq_pop_or_arm(q, &d->chain);
        if (n == 0) break;
        if (n < 0) {
            *broken = true;
            d->st.malformed++;
            break;
        }
        vq_push(q, d->chain.head, 0);
        d->st.status_msgs++;
        *notify |= vq_should_notify(q);
    }
}

static void finish(struct vinput *d, bool notify, bool broken)
{
    if (broken) {
        log_warn_ratelimited("virtio-input: malformed ring from the guest; device needs reset");
        virtio_mmio_set_needs_reset(d->t);
    }
    if (notify) virtio_mmio_interrupt(d->t, VIRTIO_INT_USED);
}

static void input_notify(void *dev, unsigned qi)
{
    struct vinput *d = dev;
    bool notify = false, broken = false;
    pthread_mutex_lock(&d->lock);
    if (qi == Q_EVENT)
        flush_locked(d, &notify, &broken);
    else if (qi == Q_STATUS)
        drain_status_locked(d, &notify, &broken);
    pthread_mutex_unlock(&d->lock);
    finish(d, notify, broken);
}

static void input_start(void *dev, uint64_t features)
{
    struct vinput *d = dev;
    (void)features;
    bool notify = false, broken = false;
    pthread_mutex_lock(&d->lock);
    d->running = true;
    flush_locked(d, &notify, &broken); /* events pressed while the driver was probing */
    pthread_mutex_unlock(&d->lock);
    finish(d, notify, broken);
}

static bool input_reset(void *dev)
{
    struct vinput *d = dev;
    pthread_mutex_lock(&d->lock);
    d->running = false;
    d->select = d->subsel = 0;
    d->st.dropped += d->count;
    d->head = d->count = 0;
    pthread_mutex_unlock(&d->lock);
    return true; /* events are copied under the lock: nothing is ever in flight */
}

/* Snapshots: the selection and the events not yet delivered (each as type, code, value). */
static void input_save(void *dev, struct sw *w)
{
    struct vinput *d = dev;
    pthread_mutex_lock(&d->lock);
    sw_u64(w, "dev.select", d->select);
    sw_u64(w, "dev.subsel", d->subsel);
    uint8_t ev[VINPUT_PENDING_MAX * 8];
    for (unsigned i = 0; i < d->count; i++) {
        const struct vinput_event *e = &d->pending[(d->head + i) % VINPUT_PENDING_MAX];
        uint64_t v = e->type | (uint64_t)e->code << 16 | (uint64_t)e->value << 32;
        for (unsigned b = 0; b < 8; b++)
            ev[i * 8 + b] = (uint8_t)(v >> (8 * b));
    }
    sw_u64(w, "dev.count", d->count);
    sw_bytes(w, "dev.events", ev, d->count * 8u);
    pthread_mutex_unlock(&d->lock);
}

static int input_load(void *dev, struct sr *r)
{
    struct vinput *d = dev;
    uint8_t sel = (uint8_t)sr_u64(r, "dev.select", 0xff),
            sub = (uint8_t)sr_u64(r, "dev.subsel", 0xff);
    unsigned n = (unsigned)sr_u64(r, "dev.count", VINPUT_PENDING_MAX);
    uint8_t ev[VINPUT_PENDING_MAX * 8];
    sr_bytes(r, "dev.events", ev, n * 8u);
    if (sr_failed(r)) return -1;
    pthread_mutex_lock(&d->lock);
    d->select = sel;
    d->subsel = sub;
    d->head = 0;
    d->count = n;
    for (unsigned i = 0; i < n; i++) {
        uint64_t v = 0;
        for (unsigned b = 0; b < 8; b++)
            v |= (uint64_t)ev[i * 8 + b] << (8 * b);
        d->pending[i] =
            (struct vinput_event){(uint16_t)v, (uint16_t)(v >> 16), (uint32_t)(v >> 32)};
    }
    pthread_mutex_unlock(&d->lock);
    return 0;
}

static const struct virtio_device_ops input_ops = {
    .device_id = VIRTIO_ID_INPUT,
    .features = 0, /* no device-specific features (5.8.3) */
    .num_queues = 2,
    .queue_max = 64,
    .config_size = VIRTIO_INPUT_CFG_SIZE,
    .config_read = input_cfg_read,
    .config_write = input_cfg_write,
    .start = input_start,
    .notify = input_notify,
    .reset = input_reset,
    .save = input_save,
    .load = input_load,
};

int vinput_press_keys(struct vinput *d, const uint16_t *keys, unsigned n)
{
    if (!d || n == 0 || 4u * n > VINPUT_PENDING_MAX) return -EINVAL;
    for (unsigned i = 0; i < n; i++)
        if (!key_supported(keys[i])) return -EINVAL;
    bool notify = false, broken = false;
    int r;
    pthread_mutex_lock(&d->lock);
    if (d->count + 4u * n > VINPUT_PENDING_MAX) {
        d->st.dropped += 4u * n;
        r = -ENOSPC;
    } else {
        /* presses in order, releases in reverse, each followed by SYN_REPORT */
        for (unsigned i = 0; i < 2 * n; i++) {
            uint16_t k = i < n ? keys[i] : keys[2 * n - 1 - i];
            struct vinput_event ev[2] = {{VINPUT_EV_KEY, k, i < n ? 1u : 0u},
                                         {VINPUT_EV_SYN, VINPUT_SYN_REPORT, 0}};
            for (unsigned j = 0; j < 2; j++)
                d->pending[(d->head + d->count++) % VINPUT_PENDING_MAX] = ev[j];
        }
        flush_locked(d, &notify, &broken);
        r = d->count ? 1 : 0;
    }
    pthread_mutex_unlock(&d->lock);
    finish(d, notify, broken);
    return r;
}

void vinput_get_stats(struct vinput *d, struct vinput_stats *s)
{
    pthread_mutex_lock(&d->lock);
    *s = d->st;
    pthread_mutex_unlock(&d->lock);
}

struct vinput *vinput_create(const struct guest_mem *gm, struct irq_line irq)
{
    struct vinput *d = calloc(1, sizeof(*d));
    if (!d) return NULL;
    pthread_mutex_init(&d->lock, NULL);
    d->t = virtio_mmio_create(&input_ops, d, gm, irq);
    if (!d->t) {
        pthread_mutex_destroy(&d->lock);
        free(d);
        return NULL;
    }
    return d;
}

void vinput_destroy(struct vinput *d)
{
    if (!d) return;
    struct virtio_mmio_stats ts;
    virtio_mmio_get_stats(d->t, &ts);
    log_debug("virtio-input: %llu events, %llu dropped, %llu short buffers, %llu status "
              "messages, %llu malformed, %llu resets",
              (unsigned long long)d->st.events, (unsigned long long)d->st.dropped,
              (unsigned long long)d->st.bad_buffers, (unsigned long long)d->st.status_msgs,
              (unsigned long long)d->st.malformed, (unsigned long long)ts.resets);
    virtio_mmio_destroy(d->t);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

struct virtio_mmio *vinput_transport(struct vinput *d)
{
    return d->t;
}

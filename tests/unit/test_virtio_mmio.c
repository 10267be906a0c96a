/* virtio-mmio transport unit tests: register sequences as Linux's virtio_mmio driver issues
 * them, against a fake device and a fake interrupt line. */
#include "dev/virtio/mmio.h"
#include "test.h"
#include <stdlib.h>

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (1u << 20)

enum {
    R_MAGIC = 0x000,
    R_VERSION = 0x004,
    R_DEVICE_ID = 0x008,
    R_VENDOR_ID = 0x00c,
    R_DEV_FEAT = 0x010,
    R_DEV_FEAT_SEL = 0x014,
    R_DRV_FEAT = 0x020,
    R_DRV_FEAT_SEL = 0x024,
    R_QUEUE_SEL = 0x030,
    R_QUEUE_NUM_MAX = 0x034,
    R_QUEUE_NUM = 0x038,
    R_QUEUE_READY = 0x044,
    R_QUEUE_NOTIFY = 0x050,
    R_INT_STATUS = 0x060,
    R_INT_ACK = 0x064,
    R_STATUS = 0x070,
    R_DESC_LO = 0x080,
    R_DESC_HI = 0x084,
    R_DRIVER_LO = 0x090,
    R_DRIVER_HI = 0x094,
    R_DEVICE_LO = 0x0a0,
    R_DEVICE_HI = 0x0a4,
    R_SHM_LEN_LO = 0x0b0,
    R_CONFIG_GEN = 0x0fc,
    R_CONFIG = 0x100,
};

#define S_ACK  VIRTIO_STATUS_ACKNOWLEDGE
#define S_DRV  VIRTIO_STATUS_DRIVER
#define S_FOK  VIRTIO_STATUS_FEATURES_OK
#define S_DOK  VIRTIO_STATUS_DRIVER_OK
#define F_DEV0 (1ull << 0) /* device-specific feature bits of the fake device */
#define F_DEV5 (1ull << 5)
#define F_V1   (1ull << VIRTIO_F_VERSION_1)
#define F_IND  (1ull << VIRTIO_F_INDIRECT_DESC)
#define F_EVT  (1ull << VIRTIO_F_EVENT_IDX)

/* --- fake device ------------------------------------------------------------------------- */

struct fakedev {
    struct virtio_mmio *t;
    int starts, resets, notifies[VIRTIO_MAX_QUEUES];
    uint64_t started_features;
    uint8_t config[24];
    uint32_t last_cfg_off;
    unsigned last_cfg_size;
    bool respond;     /* notify: serve queue 0 like an entropy device */
    bool defer_reset; /* reset: "requests in flight", finish later (virtio_mmio_reset_done) */
};

static uint32_t fd_config_read(void *dev, uint32_t off, unsigned size)
{
    struct fakedev *d = dev;
    d->last_cfg_off = off;
    d->last_cfg_size = size;
    uint32_t v = 0;
    if (off + size <= sizeof(d->config)) memcpy(&v, d->config + off, size);
    return v;
}

static void fd_config_write(void *dev, uint32_t off, uint32_t val, unsigned size)
{
    struct fakedev *d = dev;
    if (off + size <= sizeof(d->config)) memcpy(d->config + off, &val, size);
}

static void fd_start(void *dev, uint64_t features)
{
    struct fakedev *d = dev;
    d->starts++;
    d->started_features = features;
}

static struct vq_chain chain;

static void fd_notify(void *dev, unsigned q)
{
    struct fakedev *d = dev;
    if (q < VIRTIO_MAX_QUEUES) d->notifies[q]++;
    if (!d->respond) return;
    struct vq *vq = virtio_mmio_queue(d->t, q);
    int r;
    bool any = false;
    while ((r = vq_pop(vq, &chain)) == 1) {
        uint8_t b = 0x42;
        uint32_t n = 0;
        while (n < chain.write_len && vq_chain_write(&chain, n, &b, 1) == 1)
            n++;
        vq_push(vq, chain.head, n);
        any = true;
    }
    if (r < 0) virtio_mmio_set_needs_reset(d->t);
    if (any && vq_should_notify(vq)) virtio_mmio_interrupt(d->t, VIRTIO_INT_USED);
}

static bool fd_reset(void *dev)
{
    struct fakedev *d = dev;
    d->resets++;
    return !d->defer_reset;
}

static const struct virtio_device_ops fd_ops = {
    .device_id = 4,
    .features = F_DEV0 | F_DEV5,
    .num_queues = 2,
    .queue_max = 256,
    .config_size = 20,
    .config_read = fd_config_read,
    .config_write = fd_config_write,
    .start = fd_start,
    .notify = fd_notify,
    .reset = fd_reset,
};

/* --- fake irq line ----------------------------------------------------------------------- */

struct fakeirq {
    bool level;
    int changes;
    unsigned n;
};

static void irq_set(void *ctx, unsigned n, bool level)
{
    struct fakeirq *i = ctx;
    i->level = level;
    i->changes++;
    i->n = n;
}

/* --- harness ----------------------------------------------------------------------------- */

struct rig {
    uint8_t *ram;
    struct guest_mem gm;
    struct fakedev d;
    struct fakeirq irq;
    struct virtio_mmio *t;
};

static void rig_init(struct rig *r, const struct virtio_device_ops *ops)
{
    memset(r, 0, sizeof(*r));
    r->ram = aligned_alloc(4096, RAM_SIZE);
    memset(r->ram, 0, RAM_SIZE);
    r->gm = (struct guest_mem){.ram = r->ram, .base = RAM_BASE, .size = RAM_SIZE};
    r->t = virtio_mmio_create(ops, &r->d, &r->gm,
                              (struct irq_line){.set = irq_set, .ctx = &r->irq, .n = 3});
    r->d.t = r->t;
}

static void rig_free(struct rig *r)
{
    virtio_mmio_destroy(r->t);
    free(r->ram);
}

static uint32_t rd(struct rig *r, uint64_t off)
{
    return (uint32_t)virtio_mmio_ops.read(r->t, off, 4);
}
static void wr(struct rig *r, uint64_t off, uint32_t v)
{
    virtio_mmio_ops.write(r->t, off, v, 4);
}

static uint64_t device_features(struct rig *r)
{
    wr(r, R_DEV_FEAT_SEL, 1);
    uint64_t f = (uint64_t)rd(r, R_DEV_FEAT) << 32;
    wr(r, R_DEV_FEAT_SEL, 0);
    return f | rd(r, R_DEV_FEAT);
}

static void driver_features(struct rig *r, uint64_t f)
{
    wr(r, R_DRV_FEAT_SEL, 1);
    wr(r, R_DRV_FEAT, (uint32_t)(f >> 32));
    wr(r, R_DRV_FEAT_SEL, 0);
    wr(r, R_DRV_FEAT, (uint32_t)f);
}

/* Queue q's rings: desc at 64 KiB * (q + 1), avail + 0x4000, used + 0x5000. */
static uint64_t ring_gpa(unsigned q)
{
    return RAM_BASE + 0x10000ull * (q + 1);
}

/* vm_setup_vq(): select, check not ready, read max, size, addresses, ready. */
static void setup_queue(struct rig *r, unsigned q, uint32_t num)
{
    wr(r, R_QUEUE_SEL, q);
    CHECK_EQ(rd(r, R_QUEUE_READY), 0);
    CHECK(rd(r, R_QUEUE_NUM_MAX) >= num);
    wr(r, R_QUEUE_NUM, num);
    uint64_t d = ring_gpa(q), a = d + 0x4000, u = d + 0x5000;
    wr(r, R_DESC_LO, (uint32_t)d);
    wr(r, R_DESC_HI, (uint32_t)(d >> 32));
    wr(r, R_DRIVER_LO, (uint32_t)a);
    wr(r, R_DRIVER_HI, (uint32_t)(a >> 32));
    wr(r, R_DEVICE_LO, (uint32_t)u);
    wr(r, R_DEVICE_HI, (uint32_t)(u >> 32));
    wr(r, R_QUEUE_READY, 1);
}

/* The whole virtio_dev_probe() + driver probe sequence up to DRIVER_OK (3.1.1). */
static void linux_init(struct rig *r, uint64_t features)
{
    wr(r, R_STATUS, 0);
    wr(r, R_STATUS, S_ACK);
    wr(r, R_STATUS, rd(r, R_STATUS) | S_DRV);
    uint64_t offered = device_features(r);
    driver_features(r, offered & features);
    wr(r, R_STATUS, rd(r, R_STATUS) | S_FOK);
    CHECK(rd(r, R_STATUS) & S_FOK);
    for (unsigned q = 0; q < 2; q++)
        setup_queue(r, q, 128);
    wr(r, R_STATUS, rd(r, R_STATUS) | S_DOK);
}

/* --- tests ------------------------------------------------------------------------------- */

TEST(vmmio_identity)
{
    struct rig r;
    rig_init(&r, &fd_ops);
    CHECK(r.t != NULL);
    CHECK_EQ(rd(&r, R_MAGIC), 0x74726976);
    CHECK_EQ(rd(&r, R_VERSION), 2);
    CHECK_EQ(rd(&r, R_DEVICE_ID), 4);
    CHECK_EQ(rd(&r, R_VENDOR_ID), 0x554d4551);
    CHECK_EQ(rd(&r, R_STATUS), 0);
    CHECK_EQ(rd(&r, R_SHM_LEN_LO), 0xffffffff); /* no shared memory regions */
    /* offered: the device's bits plus VERSION_1, INDIRECT_DESC, EVENT_IDX */
    CHECK_EQ(device_features(&r), F_DEV0 | F_DEV5 | F_V1 | F_IND | F_EVT);
    wr(&r, R_DEV_FEAT_SEL, 2);
    CHECK_EQ(rd(&r, R_DEV_FEAT), 0);
    /* 4.2.2.2: registers are 32-bit only; narrower/wider accesses read 0 */
    CHECK_EQ(virtio_mmio_ops.read(r.t, R_MAGIC, 1), 0);
    CHECK_EQ(virtio_mmio_ops.read(r.t, R_MAGIC, 2), 0);
    CHECK_EQ(virtio_mmio_ops.read(r.t, R_MAGIC, 8), 0);
    /* write-only and reserved registers read 0 */
    CHECK_EQ(rd(&r, R_QUEUE_NOTIFY), 0);
    CHECK_EQ(rd(&r, R_QUEUE_NUM), 0);
    CHECK_EQ(rd(&r, 0x0f0), 0);
    /* past the window */
    CHECK_EQ(virtio_mmio_ops.read(r.t, 0x1000, 4), 0);
    /* QueueNumMax: the device's max for existing queues, 0 beyond */
    wr(&r, R_QUEUE_SEL, 1);
    CHECK_EQ(rd(&r, R_QUEUE_NUM_MAX), 256);
    wr(&r, R_QUEUE_SEL, 2);
    CHECK_EQ(rd(&r, R_QUEUE_NUM_MAX), 0);
    CHECK_EQ(rd(&r, R_QUEUE_READY), 0);
    rig_free(&r);
}

TEST(vmmio_create_checks)
{
    struct virtio_device_ops ops = fd_ops;
    ops.num_queues = VIRTIO_MAX_QUEUES + 1;
    struct rig r;
    rig_init(&r, &ops);
    CHECK(r.t == NULL);
    rig_free(&r);
    ops = fd_ops;
    ops.device_id = 0;
    rig_init(&r, &ops);
    CHECK(r.t == NULL);
    rig_free(&r);
    /* an odd or too large queue_max is rounded down to a power of two <= VQ_MAX_SIZE */
    ops = fd_ops;
    ops.queue_max = 300;
    rig_init(&r, &ops);
    CHECK_EQ(rd(&r, R_QUEUE_NUM_MAX), 256);
    rig_free(&r);
    ops.queue_max = 4096;
    rig_init(&r, &ops);
    CHECK_EQ(rd(&r, R_QUEUE_NUM_MAX), VQ_MAX_SIZE);
    rig_free(&r);
}

TEST(vmmio_linux_init_sequence)
{
    struct rig r;
    rig_init(&r, &fd_ops);
    linux_init(&r, F_V1 | F_EVT | F_IND | F_DEV5);
    CHECK_EQ(rd(&r, R_STATUS), S_ACK | S_DRV | S_FOK | S_DOK);
    CHECK_EQ(r.d.starts, 1);
    CHECK_EQ(r.d.started_features, F_V1 | F_EVT | F_IND | F_DEV5);
    CHECK_EQ(r.d.resets, 1); /* the initial status 0 write */
    for (unsigned i = 0; i < 2; i++) {
        struct vq *q = virtio_mmio_queue(r.t, i);
        CHECK(q != NULL);
        CHECK(q->ready);
        CHECK_EQ(q->num, 128);
        CHECK_EQ(q->desc_gpa, ring_gpa(i));
        CHECK_EQ(q->avail_gpa, ring_gpa(i) + 0x4000);
        CHECK_EQ(q->used_gpa, ring_gpa(i) + 0x5000);
        CHECK(q->event_idx);
        CHECK(q->indirect);
        CHECK(q->gm == &r.gm);
        wr(&r, R_QUEUE_SEL, i);
        CHECK_EQ(rd(&r, R_QUEUE_READY), 1);
    }
    CHECK(virtio_mmio_queue(r.t, 2) == NULL);

    /* kicks reach the device for existing, ready queues only */
    wr(&r, R_QUEUE_NOTIFY, 1);
    wr(&r, R_QUEUE_NOTIFY, 0);
    wr(&r, R_QUEUE_NOTIFY, 1);
    wr(&r, R_QUEUE_NOTIFY, 2);
    wr(&r, R_QUEUE_NOTIFY, 0xffffffff);
    CHECK_EQ(r.d.notifies[0], 1);
    CHECK_EQ(r.d.notifies[1], 2);
    CHECK_EQ(r.d.notifies[2], 0);
    CHECK_EQ(r.d.starts, 1);
    CHECK_EQ(r.irq.changes, 0);
    rig_free(&r);
}

TEST(vmmio_features_without_ring_features)
{
    struct rig r;
    rig_init(&r, &fd_ops);
    linux_init(&r, F_V1);
    CHECK_EQ(r.d.started_features, F_V1);
    struct vq *q = virtio_mmio_queue(r.t, 0);
    CHECK(!q->event_idx);
    CHECK(!q->indirect);
    rig_free(&r);
}

TEST(vmmio_feature_negotiation_failures)
{
    struct rig r;
    rig_init(&r, &fd_ops);
    /* no VERSION_1: FEATURES_OK does not stick */
    wr(&r, R_STATUS, S_ACK | S_DRV);
    driver_features(&r, F_DEV0);
    wr(&r, R_STATUS, S_ACK | S_DRV | S_FOK);
    CHECK_EQ(rd(&r, R_STATUS), S_ACK | S_DRV);
    /* nor does DRIVER_OK without FEATURES_OK; the device is not started */
    wr(&r, R_STATUS, S_ACK | S_DRV | S_DOK);
    CHECK_EQ(rd(&r, R_STATUS), S_ACK | S_DRV);
    CHECK_EQ(r.d.starts, 0);
    /* a feature that was not offered */
    driver_features(&r, F_V1 | (1ull << 1));
    wr(&r, R_STATUS, S_ACK | S_DRV | S_FOK);
    CHECK_EQ(rd(&r, R_STATUS), S_ACK | S_DRV);
    driver_features(&r, F_V1 | (1ull << 40));
    wr(&r, R_STATUS, S_ACK | S_DRV | S_FOK);
    CHECK_EQ(rd(&r, R_STATUS), S_ACK | S_DRV);
    /* the driver gives up */
    wr(&r, R_STATUS, S_ACK | S_DRV | VIRTIO_STATUS_FAILED);
    CHECK_EQ(rd(&r, R_STATUS), S_ACK | S_DRV | VIRTIO_STATUS_FAILED);
    /* after a reset the right set is accepted */
    wr(&r, R_STATUS, 0);
    CHECK_EQ(rd(&r, R_STATUS), 0);
    wr(&r, R_STATUS, S_ACK | S_DRV);
    driver_features(&r, F_V1 | F_DEV0);
    wr(&r, R_STATUS, S_ACK | S_DRV | S_FOK);
    CHECK_EQ(rd(&r, R_STATUS), S_ACK | S_DRV | S_FOK);
    /* features are frozen once FEATURES_OK is set */
    driver_features(&r, F_V1 | F_DEV5);
    wr(&r, R_STATUS, S_ACK | S_DRV | S_FOK | S_DOK);
    CHECK_EQ(r.d.started_features, F_V1 | F_DEV0);
    /* driver feature selector beyond 1 is ignored */
    rig_free(&r);
}

TEST(vmmio_status_bits_only_accumulate)
{
    struct rig r;
    rig_init(&r, &fd_ops);
    linux_init(&r, F_V1);
    /* a write without DRIVER_OK does not stop the device; only 0 resets */
    wr(&r, R_STATUS, S_ACK);
    CHECK_EQ(rd(&r, R_STATUS), S_ACK | S_DRV | S_FOK | S_DOK);
    CHECK_EQ(r.d.resets, 1);
    /* writing DRIVER_OK again does not restart */
    wr(&r, R_STATUS, S_ACK | S_DRV | S_FOK | S_DOK);
    CHECK_EQ(r.d.starts, 1);
    /* the driver cannot set NEEDS_RESET itself */
    wr(&r, R_STATUS, S_ACK | VIRTIO_STATUS_NEEDS_RESET);
    CHECK(!(rd(&r, R_STATUS) & VIRTIO_STATUS_NEEDS_RESET));
    /* sub-32-bit writes are ignored */
    virtio_mmio_ops.write(r.t, R_STATUS, 0, 1);
    virtio_mmio_ops.write(r.t, R_STATUS, 0, 2);
    CHECK_EQ(rd(&r, R_STATUS), S_ACK | S_DRV | S_FOK | S_DOK);
    CHECK_EQ(r.d.resets, 1);
    rig_free(&r);
}

TEST(vmmio_reset)
{
    struct rig r;
    rig_init(&r, &fd_ops);
    linux_init(&r, F_V1 | F_EVT);
    virtio_mmio_interrupt(r.t, VIRTIO_INT_USED);
    CHECK(r.irq.level);
    struct vq *q = virtio_mmio_queue(r.t, 0);
    q->last_avail = 7;
    q->used_idx = 5;

    wr(&r, R_STATUS, 0);
    CHECK_EQ(r.d.resets, 2);
    CHECK_EQ(rd(&r, R_STATUS), 0);
    CHECK_EQ(rd(&r, R_INT_STATUS), 0);
    CHECK(!r.irq.level);
    CHECK(!q->ready);
    CHECK(!q->event_idx);
    CHECK_EQ(q->last_avail, 0);
    CHECK_EQ(q->used_idx, 0);
    CHECK_EQ(q->desc_gpa, 0);
    for (unsigned i = 0; i < 2; i++) {
        wr(&r, R_QUEUE_SEL, i);
        CHECK_EQ(rd(&r, R_QUEUE_READY), 0);
        CHECK_EQ(rd(&r, R_QUEUE_NUM_MAX), 256);
    }
    /* vm_del_vq after reset: QueueReady 0 reads back 0 */
    wr(&r, R_QUEUE_SEL, 0);
    wr(&r, R_QUEUE_READY, 0);
    CHECK_EQ(rd(&r, R_QUEUE_READY), 0);
    /* used interrupts from a device after reset are dropped */
    virtio_mmio_interrupt(r.t, VIRTIO_INT_USED);
    CHECK_EQ(rd(&r, R_INT_STATUS), 0);
    CHECK(!r.irq.level);
    /* and the device can be brought up again */
    linux_init(&r, F_V1 | F_IND);
    CHECK_EQ(r.d.starts, 2);
    CHECK(q->ready);
    CHECK(q->indirect && !q->event_idx);
    rig_free(&r);
}

/* Asynchronous reset (4.2.2.1, 2.4): while the device drains, status reads back non-zero,
 * the driver's other writes are dropped and the device's interrupts too; the device's
 * reset_done finishes it. */
TEST(vmmio_async_reset)
{
    struct rig r;
    rig_init(&r, &fd_ops);
    linux_init(&r, F_V1 | F_EVT);
    struct vq *q = virtio_mmio_queue(r.t, 0);
    q->last_avail = 3;
    r.d.defer_reset = true;
    wr(&r, R_STATUS, 0);
    CHECK_EQ(r.d.resets, 2);
    CHECK(virtio_mmio_reset_pending(r.t));
    CHECK(rd(&r, R_STATUS) != 0);
    CHECK(q->ready);
    /* status 0 again while draining: the same reset, not a second one */
    wr(&r, R_STATUS, 0);
    CHECK_EQ(r.d.resets, 2);
    /* a driver that does not wait: its writes are dropped */
    wr(&r, R_STATUS, S_ACK);
    CHECK(rd(&r, R_STATUS) & S_DOK);
    wr(&r, R_QUEUE_NOTIFY, 0);
    CHECK_EQ(r.d.notifies[0], 0);
    wr(&r, R_QUEUE_SEL, 1);
    wr(&r, R_QUEUE_SEL, 0);
    CHECK_EQ(rd(&r, R_QUEUE_READY), 1);
    /* a completion arriving now raises nothing */
    virtio_mmio_interrupt(r.t, VIRTIO_INT_USED);
    virtio_mmio_set_needs_reset(r.t);
    CHECK_EQ(rd(&r, R_INT_STATUS), 0);
    CHECK(!r.irq.level);
    CHECK(!(rd(&r, R_STATUS) & VIRTIO_STATUS_NEEDS_RESET));
    /* the device has drained */
    virtio_mmio_reset_done(r.t);
    CHECK(!virtio_mmio_reset_pending(r.t));
    CHECK_EQ(rd(&r, R_STATUS), 0);
    CHECK(!q->ready);
    CHECK_EQ(q->last_avail, 0);
    virtio_mmio_reset_done(r.t); /* idempotent */
    CHECK_EQ(rd(&r, R_STATUS), 0);
    struct virtio_mmio_stats st;
    virtio_mmio_get_stats(r.t, &st);
    CHECK_EQ(st.resets, 2);
    CHECK_EQ(st.resets_deferred, 1);
    CHECK(st.ignored_during_reset >= 4);
    /* and it comes back */
    r.d.defer_reset = false;
    linux_init(&r, F_V1);
    CHECK_EQ(r.d.starts, 2);
    CHECK_EQ(rd(&r, R_STATUS), S_ACK | S_DRV | S_FOK | S_DOK);
    rig_free(&r);
}

TEST(vmmio_interrupts)
{
    struct rig r;
    rig_init(&r, &fd_ops);
    /* used-buffer interrupts only after DRIVER_OK */
    virtio_mmio_interrupt(r.t, VIRTIO_INT_USED);
    CHECK_EQ(rd(&r, R_INT_STATUS), 0);
    CHECK_EQ(r.irq.changes, 0);
    linux_init(&r, F_V1);

    virtio_mmio_interrupt(r.t, VIRTIO_INT_USED);
    CHECK_EQ(rd(&r, R_INT_STATUS), VIRTIO_INT_USED);
    CHECK(r.irq.level);
    CHECK_EQ(r.irq.n, 3);
    CHECK_EQ(r.irq.changes, 1);
    virtio_mmio_interrupt(r.t, VIRTIO_INT_USED); /* already high: no new edge */
    CHECK_EQ(r.irq.changes, 1);
    uint32_t gen = rd(&r, R_CONFIG_GEN);
    virtio_mmio_interrupt(r.t, VIRTIO_INT_CONFIG | 0xf0); /* unknown bits dropped */
    CHECK_EQ(rd(&r, R_INT_STATUS), VIRTIO_INT_USED | VIRTIO_INT_CONFIG);
    CHECK(rd(&r, R_CONFIG_GEN) != gen);

    /* vm_interrupt(): read status, ack what was read */
    wr(&r, R_INT_ACK, VIRTIO_INT_USED);
    CHECK_EQ(rd(&r, R_INT_STATUS), VIRTIO_INT_CONFIG);
    CHECK(r.irq.level);
    wr(&r, R_INT_ACK, VIRTIO_INT_CONFIG);
    CHECK_EQ(rd(&r, R_INT_STATUS), 0);
    CHECK(!r.irq.level);
    CHECK_EQ(r.irq.changes, 2);
    /* a narrow ack is ignored */
    virtio_mmio_interrupt(r.t, VIRTIO_INT_USED);
    virtio_mmio_ops.write(r.t, R_INT_ACK, 1, 1);
    CHECK_EQ(rd(&r, R_INT_STATUS), VIRTIO_INT_USED);
    wr(&r, R_INT_ACK, 0xffffffff);
    CHECK(!r.irq.level);
    /* InterruptStatus is read-only */
    wr(&r, R_INT_STATUS, 3);
    CHECK_EQ(rd(&r, R_INT_STATUS), 0);
    rig_free(&r);
}

TEST(vmmio_needs_reset)
{
    struct rig r;
    rig_init(&r, &fd_ops);
    /* meaningless while the device is in reset */
    virtio_mmio_set_needs_reset(r.t);
    CHECK_EQ(rd(&r, R_STATUS), 0);
    CHECK(!r.irq.level);

    linux_init(&r, F_V1);
    virtio_mmio_set_needs_reset(r.t);
    CHECK_EQ(rd(&r, R_STATUS), S_ACK | S_DRV | S_FOK | S_DOK | VIRTIO_STATUS_NEEDS_RESET);
    CHECK_EQ(rd(&r, R_INT_STATUS), VIRTIO_INT_CONFIG);
    CHECK(r.irq.level);
    /* the driver cannot clear it except by resetting; kicks are no longer delivered */
    wr(&r, R_STATUS, S_ACK | S_DRV | S_FOK | S_DOK);
    CHECK(rd(&r, R_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
    wr(&r, R_QUEUE_NOTIFY, 0);
    CHECK_EQ(r.d.notifies[0], 0);
    wr(&r, R_STATUS, 0);
    CHECK_EQ(rd(&r, R_STATUS), 0);
    CHECK(!r.irq.level);
    linux_init(&r, F_V1);
    wr(&r, R_QUEUE_NOTIFY, 0);
    CHECK_EQ(r.d.notifies[0], 1);
    rig_free(&r);
}

TEST(vmmio_bad_queue_layout)
{
    struct rig r;
    rig_init(&r, &fd_ops);
    wr(&r, R_STATUS, S_ACK | S_DRV);
    driver_features(&r, F_V1);
    wr(&r, R_STATUS, S_ACK | S_DRV | S_FOK);
    /* misaligned descriptor table */
    wr(&r, R_QUEUE_SEL, 0);
    wr(&r, R_QUEUE_NUM, 64);
    wr(&r, R_DESC_LO, (uint32_t)(RAM_BASE + 0x1008));
    wr(&r, R_DRIVER_LO, (uint32_t)(RAM_BASE + 0x2000));
    wr(&r, R_DEVICE_LO, (uint32_t)(RAM_BASE + 0x3000));
    wr(&r, R_QUEUE_READY, 1);
    CHECK_EQ(rd(&r, R_QUEUE_READY), 0);
    CHECK(rd(&r, R_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
    CHECK_EQ(rd(&r, R_INT_STATUS), VIRTIO_INT_CONFIG);
    CHECK(r.irq.level);
    rig_free(&r);

    struct {
        uint32_t num;
        uint64_t desc, avail, used;
    } bad[] = {
        {100, 0x1000, 0x2000, 0x3000},            /* size not a power of two */
        {512, 0x1000, 0x4000, 0x6000},            /* above QueueNumMax */
        {0, 0x1000, 0x2000, 0x3000},              /* zero */
        {0x10000 + 64, 0x1000, 0x2000, 0x3000},   /* does not fit 16 bits */
        {64, 0x1000, 0x2001, 0x3000},             /* avail misaligned */
        {64, 0x1000, 0x2000, 0x3002},             /* used misaligned */
        {64, RAM_SIZE - 0x100, 0x2000, 0x3000},   /* desc past the end of RAM */
        {64, 0x1000, 0x2000, RAM_SIZE - 8},       /* used past the end of RAM */
        {64, (uint64_t)-0x10000, 0x2000, 0x3000}, /* below RAM */
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rig_init(&r, &fd_ops);
        wr(&r, R_STATUS, S_ACK | S_DRV);
        driver_features(&r, F_V1);
        wr(&r, R_STATUS, S_ACK | S_DRV | S_FOK);
        wr(&r, R_QUEUE_SEL, 1);
        wr(&r, R_QUEUE_NUM, bad[i].num);
        uint64_t d = RAM_BASE + bad[i].desc, a = RAM_BASE + bad[i].avail,
                 u = RAM_BASE + bad[i].used;
        wr(&r, R_DESC_LO, (uint32_t)d);
        wr(&r, R_DESC_HI, (uint32_t)(d >> 32));
        wr(&r, R_DRIVER_LO, (uint32_t)a);
        wr(&r, R_DEVICE_LO, (uint32_t)u);
        wr(&r, R_QUEUE_READY, 1);
        if (rd(&r, R_QUEUE_READY) != 0 || !(rd(&r, R_STATUS) & VIRTIO_STATUS_NEEDS_RESET)) {
            fprintf(stderr, "  bad layout %u accepted\n", i);
            test_failures_in_current++;
        }
        rig_free(&r);
    }
}

TEST(vmmio_queue_registers_locked_when_ready)
{
    struct rig r;
    rig_init(&r, &fd_ops);
    wr(&r, R_STATUS, S_ACK | S_DRV);
    driver_features(&r, F_V1);
    wr(&r, R_STATUS, S_ACK | S_DRV | S_FOK);
    setup_queue(&r, 0, 64);
    struct vq *q = virtio_mmio_queue(r.t, 0);
    CHECK(q->ready);
    wr(&r, R_QUEUE_NUM, 32);
    wr(&r, R_DESC_LO, 0x1234);
    wr(&r, R_DRIVER_HI, 1);
    wr(&r, R_DEVICE_LO, 0);
    CHECK_EQ(q->num, 64);
    CHECK_EQ(q->desc_gpa, ring_gpa(0));
    CHECK_EQ(q->avail_gpa, ring_gpa(0) + 0x4000);
    CHECK_EQ(q->used_gpa, ring_gpa(0) + 0x5000);
    /* writes to a queue that does not exist go nowhere */
    wr(&r, R_QUEUE_SEL, 5);
    wr(&r, R_QUEUE_NUM, 16);
    wr(&r, R_QUEUE_READY, 1);
    CHECK_EQ(rd(&r, R_QUEUE_READY), 0);
    /* after DRIVER_OK even a not-ready queue keeps its configuration */
    wr(&r, R_STATUS, S_ACK | S_DRV | S_FOK | S_DOK);
    wr(&r, R_QUEUE_SEL, 1);
    wr(&r, R_QUEUE_NUM, 16);
    wr(&r, R_QUEUE_READY, 1);
    CHECK_EQ(rd(&r, R_QUEUE_READY), 0);
    CHECK_EQ(virtio_mmio_queue(r.t, 1)->num, 256);
    /* and QueueReady 0 does not pull a queue from under a running device */
    wr(&r, R_QUEUE_SEL, 0);
    wr(&r, R_QUEUE_READY, 0);
    CHECK(q->ready);
    rig_free(&r);
}

TEST(vmmio_early_notify_delivered_after_start)
{
    struct rig r;
    rig_init(&r, &fd_ops);
    wr(&r, R_STATUS, S_ACK | S_DRV);
    driver_features(&r, F_V1);
    wr(&r, R_STATUS, S_ACK | S_DRV | S_FOK);
    setup_queue(&r, 0, 64);
    setup_queue(&r, 1, 64);
    wr(&r, R_QUEUE_NOTIFY, 1);
    CHECK_EQ(r.d.notifies[1], 0);
    wr(&r, R_STATUS, S_ACK | S_DRV | S_FOK | S_DOK);
    CHECK_EQ(r.d.starts, 1);
    CHECK_EQ(r.d.notifies[1], 1);
    CHECK_EQ(r.d.notifies[0], 0);
    rig_free(&r);
}

TEST(vmmio_config_space)
{
    struct rig r;
    rig_init(&r, &fd_ops);
    for (unsigned i = 0; i < sizeof(r.d.config); i++)
        r.d.config[i] = (uint8_t)(0x10 + i);
    CHECK_EQ(virtio_mmio_ops.read(r.t, R_CONFIG + 0, 1), 0x10);
    CHECK_EQ(r.d.last_cfg_size, 1);
    CHECK_EQ(virtio_mmio_ops.read(r.t, R_CONFIG + 2, 2), 0x1312);
    CHECK_EQ(virtio_mmio_ops.read(r.t, R_CONFIG + 4, 4), 0x17161514);
    CHECK_EQ(r.d.last_cfg_off, 4);
    CHECK_EQ(virtio_mmio_ops.read(r.t, R_CONFIG + 8, 8), 0x1f1e1d1c1b1a1918ull);
    CHECK_EQ(virtio_mmio_ops.read(r.t, R_CONFIG + 16, 4), 0x23222120);
    /* beyond config_size (20): 0, and the device is not asked */
    r.d.last_cfg_off = 999;
    CHECK_EQ(virtio_mmio_ops.read(r.t, R_CONFIG + 20, 1), 0);
    CHECK_EQ(virtio_mmio_ops.read(r.t, R_CONFIG + 16, 8), 0);
    CHECK_EQ(virtio_mmio_ops.read(r.t, R_CONFIG + 0xe00, 4), 0);
    CHECK_EQ(r.d.last_cfg_off, 999);
    virtio_mmio_ops.write(r.t, R_CONFIG + 1, 0xab, 1);
    CHECK_EQ(r.d.config[1], 0xab);
    virtio_mmio_ops.write(r.t, R_CONFIG + 8, 0x0102030405060708ull, 8);
    CHECK_EQ(r.d.config[8], 0x08);
    CHECK_EQ(r.d.config[15], 0x01);
    virtio_mmio_ops.write(r.t, R_CONFIG + 20, 0xff, 4); /* dropped */
    CHECK_EQ(r.d.config[20], 0x24);
    rig_free(&r);
}

TEST(vmmio_end_to_end_queue)
{
    /* driver builds a ring, kicks; the fake device fills the buffer, the line goes up */
    struct rig r;
    rig_init(&r, &fd_ops);
    r.d.respond = true;
    linux_init(&r, F_V1 | F_EVT);
    uint8_t *ram = r.ram;
    uint64_t d = ring_gpa(0) - RAM_BASE, a = d + 0x4000, u = d + 0x5000;
    uint64_t buf = RAM_BASE + 0x80000;
    uint32_t len = 32;
    uint16_t flags = VIRTQ_DESC_F_WRITE, one = 1;
    memcpy(ram + d, &buf, 8);
    memcpy(ram + d + 8, &len, 4);
    memcpy(ram + d + 12, &flags, 2);
    memcpy(ram + a + 2, &one, 2); /* ring[0] = 0 already */
    wr(&r, R_QUEUE_NOTIFY, 0);
    CHECK_EQ(r.d.notifies[0], 1);
    uint16_t uidx;
    uint32_t ulen;
    memcpy(&uidx, ram + u + 2, 2);
    memcpy(&ulen, ram + u + 8, 4);
    CHECK_EQ(uidx, 1);
    CHECK_EQ(ulen, 32);
    CHECK_EQ(ram[0x80000], 0x42);
    CHECK_EQ(ram[0x80000 + 31], 0x42);
    CHECK_EQ(ram[0x80000 + 32], 0);
    CHECK(r.irq.level);
    CHECK_EQ(rd(&r, R_INT_STATUS), VIRTIO_INT_USED);
    wr(&r, R_INT_ACK, VIRTIO_INT_USED);

    /* a hostile chain: the device reports it and the transport flags NEEDS_RESET */
    uint16_t loop = VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, two = 2, zero = 0;
    memcpy(ram + d + 12, &loop, 2);
    memcpy(ram + d + 14, &zero, 2);
    memcpy(ram + a + 4 + 2, &zero, 2);
    memcpy(ram + a + 2, &two, 2);
    wr(&r, R_QUEUE_NOTIFY, 0);
    CHECK(rd(&r, R_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
    CHECK_EQ(rd(&r, R_INT_STATUS), VIRTIO_INT_CONFIG);
    CHECK(r.irq.level);
    rig_free(&r);
}

TEST(vmmio_ring_features_applied_at_driver_ok)
{
    /* a driver that sets a queue up before negotiating still gets the negotiated ring
     * features on its queues once DRIVER_OK is written */
    struct rig r;
    rig_init(&r, &fd_ops);
    wr(&r, R_STATUS, S_ACK | S_DRV);
    setup_queue(&r, 0, 64);
    struct vq *q = virtio_mmio_queue(r.t, 0);
    CHECK(q->ready);
    CHECK(!q->event_idx && !q->indirect);
    driver_features(&r, F_V1 | F_EVT | F_IND);
    wr(&r, R_STATUS, S_ACK | S_DRV | S_FOK);
    wr(&r, R_STATUS, S_ACK | S_DRV | S_FOK | S_DOK);
    CHECK(q->event_idx && q->indirect);
    rig_free(&r);
}

/* Driver side of a virtio-mmio device for unit tests: a fake guest RAM, a fake interrupt line
 * that counts levels, the register sequence Linux's virtio_mmio driver issues (3.1.1), and
 * split rings (2.7) built by hand in the fake RAM, queue 0 only. Everything is static inline
 * so each test file that includes it gets its own copy. No test.h dependency: functions
 * return values and the tests CHECK them. */
#ifndef VESSEL_TESTS_VIRTIO_HARNESS_H
#define VESSEL_TESTS_VIRTIO_HARNESS_H
#include "dev/virtio/mmio.h"
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define VH_RAM_BASE  0x80000000ull
/* Layout inside RAM: rings first (room for VQ_MAX_SIZE entries), then indirect tables, then
 * a bump area for buffers. */
#define VH_DESC_OFF  0x0000ull /* 1024 * 16 = 16 KiB */
#define VH_AVAIL_OFF 0x4000ull /* 6 + 2 * 1024 */
#define VH_USED_OFF  0x5000ull /* 6 + 8 * 1024 */
#define VH_IND_OFF   0x8000ull /* indirect tables, 224 KiB */
#define VH_DATA_OFF  0x40000ull

/* transport registers (4.2.2) */
enum {
    VH_MAGIC = 0x000,
    VH_VERSION = 0x004,
    VH_DEVICE_ID = 0x008,
    VH_DEV_FEAT = 0x010,
    VH_DEV_FEAT_SEL = 0x014,
    VH_DRV_FEAT = 0x020,
    VH_DRV_FEAT_SEL = 0x024,
    VH_QUEUE_SEL = 0x030,
    VH_QUEUE_NUM_MAX = 0x034,
    VH_QUEUE_NUM = 0x038,
    VH_QUEUE_READY = 0x044,
    VH_QUEUE_NOTIFY = 0x050,
    VH_INT_STATUS = 0x060,
    VH_INT_ACK = 0x064,
    VH_STATUS = 0x070,
    VH_DESC_LO = 0x080,
    VH_DESC_HI = 0x084,
    VH_DRIVER_LO = 0x090,
    VH_DRIVER_HI = 0x094,
    VH_DEVICE_LO = 0x0a0,
    VH_DEVICE_HI = 0x0a4,
    VH_CONFIG_GEN = 0x0fc,
    VH_CONFIG = 0x100,
};

struct vh_irq {
    bool level;
    int raises;  /* low -> high transitions */
    int changes; /* calls */
};

/* One buffer of a chain, by guest address. */
struct vh_seg {
    uint64_t gpa;
    uint32_t len;
    bool write;
};

struct vh {
    uint8_t *ram;
    uint64_t ram_size;
    struct guest_mem gm;
    struct vh_irq irq;
    struct virtio_mmio *t;
    uint16_t num;
    uint64_t features;  /* negotiated */
    uint16_t avail_idx; /* driver's shadow of avail->idx */
    uint16_t next_desc; /* next free descriptor (wraps; tests complete before reuse) */
    uint64_t ind_next;  /* bump allocator for indirect tables */
    uint64_t data_next; /* bump allocator for buffers */
};

static inline void vh_irq_set(void *ctx, unsigned n, bool level)
{
    struct vh_irq *i = ctx;
    (void)n;
    if (level && !i->level) i->raises++;
    i->level = level;
    i->changes++;
}

/* RAM of ram_size bytes (>= 1 MiB) at VH_RAM_BASE, zeroed. Returns 0 or -1. */
static inline int vh_init(struct vh *h, uint64_t ram_size)
{
    memset(h, 0, sizeof(*h));
    h->ram = aligned_alloc(4096, ram_size);
    if (!h->ram) return -1;
    memset(h->ram, 0, ram_size);
    h->ram_size = ram_size;
    h->gm = (struct guest_mem){.ram = h->ram, .base = VH_RAM_BASE, .size = ram_size};
    h->data_next = VH_RAM_BASE + VH_DATA_OFF;
    h->ind_next = VH_RAM_BASE + VH_IND_OFF;
    return 0;
}

static inline struct irq_line vh_irq_line(struct vh *h)
{
    return (struct irq_line){.set = vh_irq_set, .ctx = &h->irq, .n = 7};
}

static inline void vh_free(struct vh *h)
{
    free(h->ram);
    h->ram = NULL;
}

static inline uint8_t *vh_ptr(struct vh *h, uint64_t gpa)
{
    return h->ram + (gpa - VH_RAM_BASE);
}

static inline uint32_t vh_rd(struct vh *h, uint64_t off)
{
    return (uint32_t)virtio_mmio_ops.read(h->t, off, 4);
}

static inline void vh_wr(struct vh *h, uint64_t off, uint32_t v)
{
    virtio_mmio_ops.write(h->t, off, v, 4);
}

static inline uint64_t vh_dev_features(struct vh *h)
{
    vh_wr(h, VH_DEV_FEAT_SEL, 1);
    uint64_t f = (uint64_t)vh_rd(h, VH_DEV_FEAT) << 32;
    vh_wr(h, VH_DEV_FEAT_SEL, 0);
    return f | vh_rd(h, VH_DEV_FEAT);
}

static inline uint64_t vh_desc_gpa(void)
{
    return VH_RAM_BASE + VH_DESC_OFF;
}
static inline uint64_t vh_avail_gpa(void)
{
    return VH_RAM_BASE + VH_AVAIL_OFF;
}
static inline uint64_t vh_used_gpa(void)
{
    return VH_RAM_BASE + VH_USED_OFF;
}

/* Reset, ACKNOWLEDGE, DRIVER, features (offered & wanted), FEATURES_OK (3.1.1 steps 1-6).
 * Returns 0, or -1 if FEATURES_OK did not stick. */
static inline int vh_negotiate(struct vh *h, uint64_t wanted)
{
    vh_wr(h, VH_STATUS, 0);
    vh_wr(h, VH_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
    vh_wr(h, VH_STATUS, vh_rd(h, VH_STATUS) | VIRTIO_STATUS_DRIVER);
    h->features = vh_dev_features(h) & wanted;
    vh_wr(h, VH_DRV_FEAT_SEL, 1);
    vh_wr(h, VH_DRV_FEAT, (uint32_t)(h->features >> 32));
    vh_wr(h, VH_DRV_FEAT_SEL, 0);
    vh_wr(h, VH_DRV_FEAT, (uint32_t)h->features);
    vh_wr(h, VH_STATUS, vh_rd(h, VH_STATUS) | VIRTIO_STATUS_FEATURES_OK);
    return (vh_rd(h, VH_STATUS) & VIRTIO_STATUS_FEATURES_OK) ? 0 : -1;
}

/* Queue 0 with `num` entries at the fixed ring addresses, rings zeroed first as a driver
 * allocating them fresh would (vm_setup_vq()). Returns 0, or -1 if it is not ready. */
static inline int vh_queue_setup(struct vh *h, uint16_t num)
{
    memset(h->ram, 0, VH_IND_OFF);
    h->avail_idx = 0;
    h->next_desc = 0;
    h->num = num;
    vh_wr(h, VH_QUEUE_SEL, 0);
    if (vh_rd(h, VH_QUEUE_READY) != 0 || vh_rd(h, VH_QUEUE_NUM_MAX) < num) return -1;
    vh_wr(h, VH_QUEUE_NUM, num);
    uint64_t d = vh_desc_gpa(), a = vh_avail_gpa(), u = vh_used_gpa();
    vh_wr(h, VH_DESC_LO, (uint32_t)d);
    vh_wr(h, VH_DESC_HI, (uint32_t)(d >> 32));
    vh_wr(h, VH_DRIVER_LO, (uint32_t)a);
    vh_wr(h, VH_DRIVER_HI, (uint32_t)(a >> 32));
    vh_wr(h, VH_DEVICE_LO, (uint32_t)u);
    vh_wr(h, VH_DEVICE_HI, (uint32_t)(u >> 32));
    vh_wr(h, VH_QUEUE_READY, 1);
    return vh_rd(h, VH_QUEUE_READY) == 1 ? 0 : -1;
}

static inline int vh_driver_ok(struct vh *h)
{
    vh_wr(h, VH_STATUS, vh_rd(h, VH_STATUS) | VIRTIO_STATUS_DRIVER_OK);
    return (vh_rd(h, VH_STATUS) & VIRTIO_STATUS_DRIVER_OK) ? 0 : -1;
}

/* Linux's probe, all of it: negotiate, queue 0, DRIVER_OK. 0 or -1. */
static inline int vh_setup(struct vh *h, uint64_t wanted, uint16_t num)
{
    if (vh_negotiate(h, wanted) || vh_queue_setup(h, num)) return -1;
    return vh_driver_ok(h);
}

/* A zeroed buffer of len bytes from the bump area (16-byte aligned); wraps to the start of the
 * area when full (tests complete their requests before reusing memory). */
static inline uint64_t vh_alloc(struct vh *h, uint64_t len)
{
    uint64_t end = VH_RAM_BASE + h->ram_size;
    if (h->data_next + len > end) h->data_next = VH_RAM_BASE + VH_DATA_OFF;
    uint64_t gpa = h->data_next;
    h->data_next += (len + 15) & ~15ull;
    memset(vh_ptr(h, gpa), 0, len);
    return gpa;
}

static inline void vh_put16(struct vh *h, uint64_t gpa, uint16_t v)
{
    memcpy(vh_ptr(h, gpa), &v, 2);
}
static inline uint16_t vh_get16(struct vh *h, uint64_t gpa)
{
    uint16_t v;
    memcpy(&v, vh_ptr(h, gpa), 2);
    return v;
}
static inline uint32_t vh_get32(struct vh *h, uint64_t gpa)
{
    uint32_t v;
    memcpy(&v, vh_ptr(h, gpa), 4);
    return v;
}

/* Write descriptor i of the table at table_gpa. */
static inline void vh_desc(struct vh *h, uint64_t table_gpa, unsigned i, uint64_t addr,
                           uint32_t len, uint16_t flags, uint16_t next)
{
    uint8_t *p = vh_ptr(h, table_gpa + 16ull * i);
    memcpy(p, &addr, 8);
    memcpy(p + 8, &len, 4);
    memcpy(p + 12, &flags, 2);
    memcpy(p + 14, &next, 2);
}

/* Take one descriptor of the queue's table. */
static inline uint16_t vh_take_desc(struct vh *h)
{
    uint16_t i = h->next_desc;
    h->next_desc = (uint16_t)((h->next_desc + 1) % h->num);
    return i;
}

/* Build a chain from segs: direct (one queue descriptor per segment) or through one indirect
 * table. Returns the head descriptor index. */
static inline uint16_t vh_chain(struct vh *h, const struct vh_seg *segs, unsigned n, bool indirect)
{
    if (indirect) {
        uint64_t table = h->ind_next;
        h->ind_next += 16ull * n;
        if (h->ind_next > VH_RAM_BASE + VH_DATA_OFF) { /* wrap the table area */
            table = VH_RAM_BASE + VH_IND_OFF;
            h->ind_next = table + 16ull * n;
        }
        for (unsigned i = 0; i < n; i++)
            vh_desc(h, table, i, segs[i].gpa, segs[i].len,
                    (uint16_t)((segs[i].write ? VIRTQ_DESC_F_WRITE : 0) |
                               (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
                    (uint16_t)(i + 1 < n ? i + 1 : 0));
        uint16_t head = vh_take_desc(h);
        vh_desc(h, vh_desc_gpa(), head, table, 16 * n, VIRTQ_DESC_F_INDIRECT, 0);
        return head;
    }
    uint16_t idx[VQ_MAX_SIZE] = {0};
    for (unsigned i = 0; i < n; i++)
        idx[i] = vh_take_desc(h);
    for (unsigned i = 0; i < n; i++)
        vh_desc(h, vh_desc_gpa(), idx[i], segs[i].gpa, segs[i].len,
                (uint16_t)((segs[i].write ? VIRTQ_DESC_F_WRITE : 0) |
                           (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
                i + 1 < n ? idx[i + 1] : 0);
    return idx[0];
}

/* Make head available (2.7.13): ring entry, then the index that publishes it. */
static inline void vh_avail_add(struct vh *h, uint16_t head)
{
    vh_put16(h, vh_avail_gpa() + 4 + 2u * (h->avail_idx % h->num), head);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    h->avail_idx++;
    vh_put16(h, vh_avail_gpa() + 2, h->avail_idx);
}

static inline void vh_set_avail_flags(struct vh *h, uint16_t flags)
{
    vh_put16(h, vh_avail_gpa(), flags);
}
/* avail->used_event (VIRTIO_F_EVENT_IDX) */
static inline void vh_set_used_event(struct vh *h, uint16_t v)
{
    vh_put16(h, vh_avail_gpa() + 4 + 2u * h->num, v);
}

static inline void vh_kick(struct vh *h)
{
    vh_wr(h, VH_QUEUE_NOTIFY, 0);
}

static inline uint16_t vh_used_idx(struct vh *h)
{
    return __atomic_load_n((uint16_t *)vh_ptr(h, vh_used_gpa() + 2), __ATOMIC_ACQUIRE);
}
static inline uint32_t vh_used_id(struct vh *h, uint16_t i)
{
    return vh_get32(h, vh_used_gpa() + 4 + 8u * (i % h->num));
}
static inline uint32_t vh_used_len(struct vh *h, uint16_t i)
{
    return vh_get32(h, vh_used_gpa() + 8 + 8u * (i % h->num));
}
/* used->avail_event (VIRTIO_F_EVENT_IDX) */
static inline uint16_t vh_avail_event(struct vh *h)
{
    return vh_get16(h, vh_used_gpa() + 4 + 8u * h->num);
}

/* 2.7.10: the driver's test whether to kick after moving avail idx from old to new_idx. */
static inline bool vh_need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}
#endif

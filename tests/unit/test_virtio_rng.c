/* virtio-rng device tests: the driver side walks the virtio-mmio registers as Linux does, puts
 * device-writable buffers in the ring, kicks, and checks what comes back. */
#include "dev/virtio/rng.h"
#include "test.h"
#include "util/log.h"
#include "virtio_harness.h"

#define RAM_SIZE  (2u << 20)
#define RNG_CHUNK 4096 /* most bytes the device gives one chain (rng.c) */
#define F_V1      (1ull << VIRTIO_F_VERSION_1)
#define F_IND     (1ull << VIRTIO_F_INDIRECT_DESC)
#define F_EVT     (1ull << VIRTIO_F_EVENT_IDX)
#define F_ALL     (~0ull)

struct rrig {
    struct vh h;
    struct vrng *r;
};

static bool rrig_open(struct rrig *g, uint64_t features, uint16_t num)
{
    memset(g, 0, sizeof(*g));
    CHECK_EQ(vh_init(&g->h, RAM_SIZE), 0);
    g->r = vrng_create(&g->h.gm, vh_irq_line(&g->h));
    CHECK(g->r != NULL);
    if (!g->r) return false;
    g->h.t = vrng_transport(g->r);
    int s = vh_setup(&g->h, features, num);
    CHECK_EQ(s, 0);
    return s == 0;
}

static void rrig_close(struct rrig *g)
{
    vrng_destroy(g->r);
    vh_free(&g->h);
}

/* A buffer of len bytes filled with `fill`, offered as one writable chain (or cut into
 * nsplit pieces, or through an indirect table). Returns its address. */
static uint64_t offer(struct rrig *g, uint32_t len, unsigned nsplit, bool indirect, uint8_t fill,
                      uint16_t *head)
{
    uint64_t b = vh_alloc(&g->h, len);
    memset(vh_ptr(&g->h, b), fill, len);
    struct vh_seg s[16];
    uint32_t done = 0;
    for (unsigned i = 0; i < nsplit; i++) {
        uint32_t piece = i + 1 == nsplit ? len - done : len / nsplit;
        s[i] = (struct vh_seg){b + done, piece, true};
        done += piece;
    }
    uint16_t hd = vh_chain(&g->h, s, nsplit, indirect);
    vh_avail_add(&g->h, hd);
    if (head) *head = hd;
    return b;
}

static bool all_bytes(const uint8_t *p, uint64_t len, uint8_t v)
{
    for (uint64_t i = 0; i < len; i++)
        if (p[i] != v) return false;
    return true;
}

TEST(vrng_identity)
{
    struct rrig g;
    if (rrig_open(&g, F_ALL, 64)) {
        CHECK_EQ(vh_rd(&g.h, VH_MAGIC), 0x74726976);
        CHECK_EQ(vh_rd(&g.h, VH_DEVICE_ID), 4);
        /* no device-specific features (5.4.3), the transport's ring features */
        CHECK_EQ(vh_dev_features(&g.h), F_V1 | F_IND | F_EVT);
        vh_wr(&g.h, VH_QUEUE_SEL, 0);
        CHECK_EQ(vh_rd(&g.h, VH_QUEUE_NUM_MAX), 64);
        vh_wr(&g.h, VH_QUEUE_SEL, 1); /* one queue only (5.4.2) */
        CHECK_EQ(vh_rd(&g.h, VH_QUEUE_NUM_MAX), 0);
        /* no configuration space (5.4.4) */
        CHECK_EQ(virtio_mmio_ops.read(g.h.t, VH_CONFIG, 4), 0);
    }
    rrig_close(&g);
}

TEST(vrng_fills_buffers)
{
    struct rrig g;
    if (!rrig_open(&g, F_ALL & ~F_EVT, 64)) goto out;
    uint16_t h[5];
    uint64_t b0 = offer(&g, 16, 1, false, 0, &h[0]);
    uint64_t b1 = offer(&g, 64, 2, false, 0, &h[1]);     /* two descriptors of 32 */
    uint64_t b2 = offer(&g, 5000, 3, true, 0xa5, &h[2]); /* more than one chunk, indirect */
    uint64_t b3 = offer(&g, 16, 1, false, 0, &h[3]);
    vh_kick(&g.h);
    CHECK_EQ(vh_used_idx(&g.h), 4);
    /* in order, each with the number of bytes written */
    for (int i = 0; i < 4; i++)
        CHECK_EQ(vh_used_id(&g.h, (uint16_t)i), h[i]);
    CHECK_EQ(vh_used_len(&g.h, 0), 16);
    CHECK_EQ(vh_used_len(&g.h, 1), 64);
    CHECK_EQ(vh_used_len(&g.h, 2), RNG_CHUNK);
    CHECK_EQ(vh_used_len(&g.h, 3), 16);
    /* random, not zero (each test below fails with probability 2^-128 or less) */
    CHECK(!all_bytes(vh_ptr(&g.h, b0), 16, 0));
    CHECK(!all_bytes(vh_ptr(&g.h, b1), 32, 0));      /* first descriptor */
    CHECK(!all_bytes(vh_ptr(&g.h, b1 + 32), 32, 0)); /* second descriptor */
    CHECK(!all_bytes(vh_ptr(&g.h, b2 + RNG_CHUNK - 16), 16, 0xa5));
    CHECK(memcmp(vh_ptr(&g.h, b0), vh_ptr(&g.h, b3), 16) != 0);
    /* nothing past what the used length says */
    CHECK(all_bytes(vh_ptr(&g.h, b2 + RNG_CHUNK), 5000 - RNG_CHUNK, 0xa5));
    /* and the driver was interrupted */
    CHECK_EQ(g.h.irq.raises, 1);
    CHECK_EQ(vh_rd(&g.h, VH_INT_STATUS), VIRTIO_INT_USED);

    /* a chain with nothing writable gets 0 bytes and is given back */
    uint64_t ro = vh_alloc(&g.h, 16);
    memset(vh_ptr(&g.h, ro), 0x11, 16);
    struct vh_seg s = {ro, 16, false};
    vh_avail_add(&g.h, vh_chain(&g.h, &s, 1, false));
    vh_kick(&g.h);
    CHECK_EQ(vh_used_idx(&g.h), 5);
    CHECK_EQ(vh_used_len(&g.h, 4), 0);
    CHECK(all_bytes(vh_ptr(&g.h, ro), 16, 0x11));
    CHECK_EQ(vh_rd(&g.h, VH_STATUS) & VIRTIO_STATUS_NEEDS_RESET, 0);
out:
    rrig_close(&g);
}

TEST(vrng_no_interrupt_flag)
{
    struct rrig g;
    if (!rrig_open(&g, F_ALL & ~F_EVT, 8)) goto out;
    vh_set_avail_flags(&g.h, VIRTQ_AVAIL_F_NO_INTERRUPT);
    offer(&g, 8, 1, false, 0, NULL);
    vh_kick(&g.h);
    CHECK_EQ(vh_used_idx(&g.h), 1);
    CHECK_EQ(g.h.irq.raises, 0);
    vh_set_avail_flags(&g.h, 0);
    offer(&g, 8, 1, false, 0, NULL);
    vh_kick(&g.h);
    CHECK_EQ(vh_used_idx(&g.h), 2);
    CHECK_EQ(g.h.irq.raises, 1);
out:
    rrig_close(&g);
}

/* VIRTIO_F_EVENT_IDX (2.7.10): once the device has drained the queue it publishes
 * avail_event, so the driver's next buffer is kicked; and it interrupts per used_event. */
TEST(vrng_event_idx)
{
    struct rrig g;
    if (!rrig_open(&g, F_ALL, 8)) goto out;
    CHECK(g.h.features & F_EVT);
    offer(&g, 32, 1, false, 0, NULL);
    offer(&g, 32, 1, false, 0, NULL);
    vh_kick(&g.h);
    CHECK_EQ(vh_used_idx(&g.h), 2);
    CHECK_EQ(vh_avail_event(&g.h), 2);
    CHECK_EQ(g.h.irq.raises, 1);
    vh_wr(&g.h, VH_INT_ACK, VIRTIO_INT_USED);

    for (uint16_t i = 2; i < 40; i++) { /* wraps the 8-entry ring several times */
        uint16_t old = g.h.avail_idx;
        vh_set_used_event(&g.h, i); /* the driver wants to hear about entry i */
        offer(&g, 32, 1, i & 1, 0, NULL);
        /* Linux's virtqueue_kick_prepare(): kick only if avail_event asks for it */
        CHECK(vh_need_event(vh_avail_event(&g.h), g.h.avail_idx, old));
        vh_kick(&g.h);
        CHECK_EQ(vh_used_idx(&g.h), (uint16_t)(i + 1));
        CHECK_EQ(vh_avail_event(&g.h), (uint16_t)(i + 1));
        CHECK_EQ(vh_used_len(&g.h, i), 32);
        CHECK_EQ(g.h.irq.raises, i);
        vh_wr(&g.h, VH_INT_ACK, VIRTIO_INT_USED);
    }
    /* used_event far away: buffers are still used, without an interrupt */
    int raises = g.h.irq.raises;
    vh_set_used_event(&g.h, 1000);
    offer(&g, 32, 1, false, 0, NULL);
    vh_kick(&g.h);
    CHECK_EQ(vh_used_idx(&g.h), 41);
    CHECK_EQ(g.h.irq.raises, raises);
    CHECK_EQ(vh_rd(&g.h, VH_INT_STATUS), 0);
out:
    rrig_close(&g);
}

/* Buffers offered before the driver kicks are all used in one go, and a kick with nothing
 * new does nothing. */
TEST(vrng_batch_and_empty_kick)
{
    struct rrig g;
    if (!rrig_open(&g, F_ALL, 64)) goto out;
    for (int i = 0; i < 64; i++)
        offer(&g, 8, 1, i & 1, 0, NULL);
    vh_kick(&g.h);
    CHECK_EQ(vh_used_idx(&g.h), 64);
    int seen[64] = {0};
    for (int i = 0; i < 64; i++) {
        uint32_t id = vh_used_id(&g.h, (uint16_t)i);
        CHECK(id < 64);
        if (id < 64) seen[id]++;
        CHECK_EQ(vh_used_len(&g.h, (uint16_t)i), 8);
    }
    for (int i = 0; i < 64; i++)
        CHECK_EQ(seen[i], 1);
    vh_kick(&g.h);
    CHECK_EQ(vh_used_idx(&g.h), 64);
out:
    rrig_close(&g);
}

TEST(vrng_hostile_chain_needs_reset)
{
    struct rrig g;
    enum log_level lv = log_current_level;
    log_current_level = LOG_ERROR;
    if (!rrig_open(&g, F_ALL, 8)) goto out;
    offer(&g, 16, 1, false, 0, NULL);
    /* a descriptor linked to itself */
    uint16_t d = vh_take_desc(&g.h);
    vh_desc(&g.h, vh_desc_gpa(), d, vh_alloc(&g.h, 16), 16, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE,
            d);
    vh_avail_add(&g.h, d);
    uint64_t after = offer(&g, 16, 1, false, 0x33, NULL);
    vh_kick(&g.h);
    CHECK_EQ(vh_used_idx(&g.h), 1);
    CHECK(vh_rd(&g.h, VH_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
    CHECK(vh_rd(&g.h, VH_INT_STATUS) & VIRTIO_INT_CONFIG);
    CHECK(g.h.irq.level);
    vh_kick(&g.h);
    CHECK_EQ(vh_used_idx(&g.h), 1);
    CHECK(all_bytes(vh_ptr(&g.h, after), 16, 0x33));
    /* a buffer outside guest RAM, after a reset */
    CHECK_EQ(vh_setup(&g.h, F_ALL, 8), 0);
    CHECK_EQ(vh_rd(&g.h, VH_STATUS) & VIRTIO_STATUS_NEEDS_RESET, 0);
    struct vh_seg s = {VH_RAM_BASE + RAM_SIZE - 8, 16, true};
    vh_avail_add(&g.h, vh_chain(&g.h, &s, 1, false));
    vh_kick(&g.h);
    CHECK_EQ(vh_used_idx(&g.h), 0);
    CHECK(vh_rd(&g.h, VH_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
    /* reset and re-init: the device works again */
    vh_wr(&g.h, VH_STATUS, 0);
    CHECK_EQ(vh_rd(&g.h, VH_STATUS), 0);
    CHECK(!g.h.irq.level);
    CHECK_EQ(vh_setup(&g.h, F_ALL, 8), 0);
    uint64_t b = offer(&g, 16, 1, false, 0, NULL);
    vh_kick(&g.h);
    CHECK_EQ(vh_used_idx(&g.h), 1);
    CHECK_EQ(vh_used_len(&g.h, 0), 16);
    CHECK(!all_bytes(vh_ptr(&g.h, b), 16, 0));
out:
    log_current_level = lv;
    rrig_close(&g);
}

/* After a reset the device takes nothing from the old rings. */
TEST(vrng_reset_stops_device)
{
    struct rrig g;
    if (!rrig_open(&g, F_ALL, 8)) goto out;
    uint64_t b = offer(&g, 16, 1, false, 0x44, NULL);
    vh_wr(&g.h, VH_STATUS, 0);
    vh_kick(&g.h);
    CHECK_EQ(vh_used_idx(&g.h), 0);
    CHECK(all_bytes(vh_ptr(&g.h, b), 16, 0x44));
out:
    rrig_close(&g);
}

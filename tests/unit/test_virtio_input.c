/* virtio-input device tests: the driver side reads the configuration space as Linux's
 * virtio_input probe does (select, subsel, then size and the union byte by byte), keeps
 * 8-byte buffers in the eventq, and checks the events the host side presses. */
#include "dev/virtio/input.h"
#include "test.h"
#include "util/log.h"
#include "virtio_harness.h"
#include <errno.h>

#define RAM_SIZE (2u << 20)
#define F_V1     (1ull << VIRTIO_F_VERSION_1)
#define F_IND    (1ull << VIRTIO_F_INDIRECT_DESC)
#define F_EVT    (1ull << VIRTIO_F_EVENT_IDX)
#define F_ALL    (~0ull)
#define EV_REL   0x02
#define EV_REP   0x14

static const uint16_t POWER[] = {VINPUT_KEY_POWER};
static const uint16_t CAD[] = {VINPUT_KEY_LEFTCTRL, VINPUT_KEY_LEFTALT, VINPUT_KEY_DELETE};

struct irig {
    struct vh h;
    struct vinput *d;
};

static bool irig_open(struct irig *g, uint64_t features, uint16_t num)
{
    memset(g, 0, sizeof(*g));
    CHECK_EQ(vh_init(&g->h, RAM_SIZE), 0);
    g->d = vinput_create(&g->h.gm, vh_irq_line(&g->h));
    CHECK(g->d != NULL);
    if (!g->d) return false;
    g->h.t = vinput_transport(g->d);
    int s = vh_setup(&g->h, features, num); /* queue 0: the eventq */
    CHECK_EQ(s, 0);
    return s == 0;
}

static void irig_close(struct irig *g)
{
    vinput_destroy(g->d);
    vh_free(&g->h);
}

/* n eventq buffers of len bytes (device-writable), filled with 0xee. */
static void offer(struct irig *g, unsigned n, uint32_t len)
{
    for (unsigned i = 0; i < n; i++) {
        uint64_t b = vh_alloc(&g->h, len);
        memset(vh_ptr(&g->h, b), 0xee, len);
        struct vh_seg s = {b, len, true};
        vh_avail_add(&g->h, vh_chain(&g->h, &s, 1, false));
    }
}

/* The event in used entry i: (type, code, value) from the buffer its id points at. */
static void used_event(struct irig *g, uint16_t i, uint16_t *type, uint16_t *code, uint32_t *value)
{
    uint16_t id = (uint16_t)vh_used_id(&g->h, i);
    uint64_t addr;
    memcpy(&addr, vh_ptr(&g->h, vh_desc_gpa() + 16ull * id), 8);
    const uint8_t *p = vh_ptr(&g->h, addr);
    *type = (uint16_t)(p[0] | p[1] << 8);
    *code = (uint16_t)(p[2] | p[3] << 8);
    *value = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
}

static void check_event(struct irig *g, uint16_t i, uint16_t type, uint16_t code, uint32_t value)
{
    uint16_t t, c;
    uint32_t v;
    used_event(g, i, &t, &c, &v);
    CHECK_EQ(vh_used_len(&g->h, i), 8);
    CHECK_EQ(t, type);
    CHECK_EQ(c, code);
    CHECK_EQ(v, value);
}

/* Config space as Linux reads it: write select and subsel bytes, read size, then u. */
static uint8_t cfg_select(struct irig *g, uint8_t sel, uint8_t subsel, uint8_t u[128])
{
    virtio_mmio_ops.write(g->h.t, VH_CONFIG + 0, sel, 1);
    virtio_mmio_ops.write(g->h.t, VH_CONFIG + 1, subsel, 1);
    uint8_t size = (uint8_t)virtio_mmio_ops.read(g->h.t, VH_CONFIG + 2, 1);
    for (unsigned i = 0; i < 128; i++)
        u[i] = (uint8_t)virtio_mmio_ops.read(g->h.t, VH_CONFIG + 8 + i, 1);
    return size;
}

static bool bit(const uint8_t *bm, unsigned n)
{
    return (bm[n / 8] >> (n % 8)) & 1;
}

/* Queue sel set up at the harness's ring addresses (the harness drives one queue at a time). */
static int queue_setup_sel(struct vh *h, unsigned sel, uint16_t num)
{
    memset(h->ram, 0, VH_IND_OFF);
    h->avail_idx = 0;
    h->next_desc = 0;
    h->num = num;
    vh_wr(h, VH_QUEUE_SEL, sel);
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

TEST(vinput_identity)
{
    struct irig g;
    if (irig_open(&g, F_ALL, 64)) {
        CHECK_EQ(vh_rd(&g.h, VH_DEVICE_ID), 18);
        /* no device-specific features (5.8.3), the transport's ring features */
        CHECK_EQ(vh_dev_features(&g.h), F_V1 | F_IND | F_EVT);
        for (unsigned q = 0; q < 3; q++) { /* eventq and statusq (5.8.2) */
            vh_wr(&g.h, VH_QUEUE_SEL, q);
            CHECK_EQ(vh_rd(&g.h, VH_QUEUE_NUM_MAX), q < 2 ? 64 : 0);
        }
    }
    irig_close(&g);
}

TEST(vinput_config_space)
{
    struct irig g;
    uint8_t u[128];
    if (!irig_open(&g, F_ALL, 64)) goto out;
    uint8_t n = cfg_select(&g, VIRTIO_INPUT_CFG_ID_NAME, 0, u);
    CHECK(n > 0 && n <= 128);
    CHECK(memcmp(u, "vessel power keyboard", n) == 0 && n == 21);
    n = cfg_select(&g, VIRTIO_INPUT_CFG_ID_SERIAL, 0, u);
    CHECK(n > 0 && memcmp(u, "vessel-input0", n) == 0);
    n = cfg_select(&g, VIRTIO_INPUT_CFG_ID_DEVIDS, 0, u);
    CHECK_EQ(n, 8);
    CHECK_EQ(u[0] | u[1] << 8, 0x06); /* BUS_VIRTUAL */
    CHECK_EQ(u[4] | u[5] << 8, 1);    /* product */
    /* no properties, no axes, no relative events, no autorepeat (a held power key would
     * repeat) */
    CHECK_EQ(cfg_select(&g, VIRTIO_INPUT_CFG_PROP_BITS, 0, u), 0);
    CHECK_EQ(cfg_select(&g, VIRTIO_INPUT_CFG_EV_BITS, EV_REL, u), 0);
    CHECK_EQ(cfg_select(&g, VIRTIO_INPUT_CFG_EV_BITS, EV_REP, u), 0);
    CHECK_EQ(cfg_select(&g, VIRTIO_INPUT_CFG_ABS_INFO, 0, u), 0);
    CHECK_EQ(cfg_select(&g, VIRTIO_INPUT_CFG_UNSET, 0, u), 0);
    CHECK_EQ(cfg_select(&g, 0x7f, 0x42, u), 0);
    for (unsigned i = 0; i < 128; i++) /* 5.8.5.1: unsupported selections read 0 */
        CHECK_EQ(u[i], 0);
    /* EV_KEY: exactly the four keys */
    n = cfg_select(&g, VIRTIO_INPUT_CFG_EV_BITS, VINPUT_EV_KEY, u);
    CHECK_EQ(n, VINPUT_KEY_POWER / 8 + 1);
    unsigned set = 0;
    for (unsigned k = 0; k < 8u * 128; k++)
        set += bit(u, k);
    CHECK_EQ(set, 4);
    CHECK(bit(u, VINPUT_KEY_POWER) && bit(u, VINPUT_KEY_LEFTCTRL) && bit(u, VINPUT_KEY_LEFTALT) &&
          bit(u, VINPUT_KEY_DELETE));
    CHECK_EQ(cfg_select(&g, VIRTIO_INPUT_CFG_EV_BITS, VINPUT_EV_SYN, u), 1);
    CHECK_EQ(u[0], 1);

    /* wider accesses: a 4-byte write at 0 sets select and subsel only; size and u are
     * read-only; a 4-byte read returns the bytes little endian */
    virtio_mmio_ops.write(g.h.t, VH_CONFIG, 0xffff0000u | VINPUT_EV_KEY << 8 | 0x11, 4);
    CHECK_EQ(virtio_mmio_ops.read(g.h.t, VH_CONFIG, 4), 15u << 16 | VINPUT_EV_KEY << 8 | 0x11);
    virtio_mmio_ops.write(g.h.t, VH_CONFIG + 2, 0x55, 1);
    virtio_mmio_ops.write(g.h.t, VH_CONFIG + 8, 0xffffffffu, 4);
    virtio_mmio_ops.write(g.h.t, VH_CONFIG + 133, 0xffffffffu, 4); /* past the end */
    CHECK_EQ(virtio_mmio_ops.read(g.h.t, VH_CONFIG + 2, 1), 15);
    CHECK_EQ(virtio_mmio_ops.read(g.h.t, VH_CONFIG + 8 + 14, 1), 1u << (VINPUT_KEY_POWER % 8));
    CHECK_EQ(virtio_mmio_ops.read(g.h.t, VH_CONFIG + 8 + 127, 1), 0);
    CHECK_EQ(virtio_mmio_ops.read(g.h.t, VH_CONFIG + 136, 4), 0);
    CHECK_EQ(virtio_mmio_ops.read(g.h.t, VH_CONFIG + 134, 4), 0); /* straddles the end */
    /* unaligned 2-byte write at 1: subsel, then the read-only size */
    virtio_mmio_ops.write(g.h.t, VH_CONFIG + 1, 0x7700 | VINPUT_EV_SYN, 2);
    CHECK_EQ(virtio_mmio_ops.read(g.h.t, VH_CONFIG, 4), 1u << 16 | VINPUT_EV_SYN << 8 | 0x11);
out:
    irig_close(&g);
}

TEST(vinput_power_key_press)
{
    struct irig g;
    if (!irig_open(&g, F_ALL & ~F_EVT, 64)) goto out;
    offer(&g, 8, 8);
    vh_kick(&g.h); /* buffers but no events: nothing used, no interrupt */
    CHECK_EQ(vh_used_idx(&g.h), 0);
    CHECK_EQ(g.h.irq.raises, 0);
    CHECK_EQ(vinput_press_keys(g.d, POWER, 1), 0);
    CHECK_EQ(vh_used_idx(&g.h), 4);
    check_event(&g, 0, VINPUT_EV_KEY, VINPUT_KEY_POWER, 1);
    check_event(&g, 1, VINPUT_EV_SYN, VINPUT_SYN_REPORT, 0);
    check_event(&g, 2, VINPUT_EV_KEY, VINPUT_KEY_POWER, 0);
    check_event(&g, 3, VINPUT_EV_SYN, VINPUT_SYN_REPORT, 0);
    CHECK_EQ(g.h.irq.raises, 1);
    CHECK_EQ(vh_rd(&g.h, VH_INT_STATUS), VIRTIO_INT_USED);
    vh_wr(&g.h, VH_INT_ACK, VIRTIO_INT_USED);

    /* Ctrl-Alt-Del: presses in order, releases in reverse, SYN after each */
    CHECK_EQ(vinput_press_keys(g.d, CAD, 3), 1); /* 4 buffers left for 12 events */
    CHECK_EQ(vh_used_idx(&g.h), 8);
    offer(&g, 8, 8);
    vh_kick(&g.h);
    CHECK_EQ(vh_used_idx(&g.h), 16);
    static const uint16_t codes[6] = {VINPUT_KEY_LEFTCTRL, VINPUT_KEY_LEFTALT, VINPUT_KEY_DELETE,
                                      VINPUT_KEY_DELETE,   VINPUT_KEY_LEFTALT, VINPUT_KEY_LEFTCTRL};
    for (uint16_t i = 0; i < 6; i++) {
        check_event(&g, (uint16_t)(4 + 2 * i), VINPUT_EV_KEY, codes[i], i < 3);
        check_event(&g, (uint16_t)(5 + 2 * i), VINPUT_EV_SYN, VINPUT_SYN_REPORT, 0);
    }
    struct vinput_stats st;
    vinput_get_stats(g.d, &st);
    CHECK_EQ(st.events, 16);
    CHECK_EQ(st.dropped, 0);
    /* keys the device does not report are refused */
    static const uint16_t bad[] = {VINPUT_KEY_POWER, 30};
    CHECK_EQ(vinput_press_keys(g.d, bad, 2), -EINVAL);
    CHECK_EQ(vinput_press_keys(g.d, POWER, 0), -EINVAL);
out:
    irig_close(&g);
}

/* No buffers yet: the events wait (bounded) and go out when the driver adds buffers. */
TEST(vinput_pending_until_buffers)
{
    struct irig g;
    if (!irig_open(&g, F_ALL, 8)) goto out;
    CHECK(g.h.features & F_EVT);
    CHECK_EQ(vinput_press_keys(g.d, POWER, 1), 1);
    CHECK_EQ(vh_used_idx(&g.h), 0);
    /* event idx: the device asked to be kicked for the next buffer */
    uint16_t old = g.h.avail_idx;
    offer(&g, 2, 8);
    CHECK(vh_need_event(vh_avail_event(&g.h), g.h.avail_idx, old));
    vh_kick(&g.h);
    CHECK_EQ(vh_used_idx(&g.h), 2);
    check_event(&g, 0, VINPUT_EV_KEY, VINPUT_KEY_POWER, 1);
    old = g.h.avail_idx;
    offer(&g, 4, 8);
    CHECK(vh_need_event(vh_avail_event(&g.h), g.h.avail_idx, old));
    vh_kick(&g.h);
    CHECK_EQ(vh_used_idx(&g.h), 4); /* two events were left; two buffers stay with the device */
    check_event(&g, 2, VINPUT_EV_KEY, VINPUT_KEY_POWER, 0);
    check_event(&g, 3, VINPUT_EV_SYN, VINPUT_SYN_REPORT, 0);
    CHECK_EQ(vinput_press_keys(g.d, POWER, 1), 1); /* 2 buffers for 4 events */
    CHECK_EQ(vh_used_idx(&g.h), 6);

    /* the host side keeps at most VINPUT_PENDING_MAX events: whole presses or nothing */
    int accepted = 0, refused = 0;
    for (int i = 0; i < VINPUT_PENDING_MAX; i++) {
        int r = vinput_press_keys(g.d, POWER, 1);
        if (r == 1) accepted++;
        if (r == -ENOSPC) refused++;
    }
    CHECK_EQ(accepted, VINPUT_PENDING_MAX / 4 - 1); /* 2 events were still pending */
    CHECK_EQ(refused, VINPUT_PENDING_MAX - accepted);
    struct vinput_stats st;
    vinput_get_stats(g.d, &st);
    CHECK_EQ(st.dropped, 4u * (unsigned)refused);
    /* the driver catches up in ring-sized batches; every event arrives, in order */
    unsigned want = 6 + 2 + 4u * (unsigned)accepted, delivered = 6;
    for (int round = 0; round < 20 && delivered < want; round++) {
        unsigned n = want - delivered < 8 ? want - delivered : 8;
        offer(&g, n, 8);
        vh_kick(&g.h);
        CHECK_EQ(vh_used_idx(&g.h), delivered + n);
        for (uint16_t i = (uint16_t)delivered; i < delivered + n; i++) {
            if (i % 2) { /* odd entries are SYN_REPORT; even ones alternate press/release */
                check_event(&g, i, VINPUT_EV_SYN, VINPUT_SYN_REPORT, 0);
            } else {
                check_event(&g, i, VINPUT_EV_KEY, VINPUT_KEY_POWER, (i / 2) % 2 == 0);
            }
        }
        delivered += n;
    }
    CHECK_EQ(vh_used_idx(&g.h), want);
    offer(&g, 1, 8); /* nothing more */
    vh_kick(&g.h);
    CHECK_EQ(vh_used_idx(&g.h), want);
out:
    irig_close(&g);
}

/* A reset (reboot, driver reload) drops what waits; a press after the reset, before
 * DRIVER_OK, is kept for the new driver. */
TEST(vinput_reset_drops_pending)
{
    struct irig g;
    if (!irig_open(&g, F_ALL, 8)) goto out;
    CHECK_EQ(vinput_press_keys(g.d, POWER, 1), 1);
    vh_wr(&g.h, VH_STATUS, 0);
    CHECK_EQ(vh_rd(&g.h, VH_STATUS), 0); /* nothing in flight: the reset completes at once */
    CHECK_EQ(vh_setup(&g.h, F_ALL, 8), 0);
    offer(&g, 4, 8);
    vh_kick(&g.h);
    CHECK_EQ(vh_used_idx(&g.h), 0);
    struct vinput_stats st;
    vinput_get_stats(g.d, &st);
    CHECK_EQ(st.dropped, 4);

    vh_wr(&g.h, VH_STATUS, 0);
    CHECK_EQ(vh_negotiate(&g.h, F_ALL), 0);
    CHECK_EQ(vinput_press_keys(g.d, POWER, 1), 1); /* during probe */
    CHECK_EQ(vh_queue_setup(&g.h, 8), 0);
    offer(&g, 4, 8);
    CHECK_EQ(vh_used_idx(&g.h), 0);
    CHECK_EQ(vh_driver_ok(&g.h), 0); /* DRIVER_OK: the buffers already there are used */
    CHECK_EQ(vh_used_idx(&g.h), 4);
    check_event(&g, 0, VINPUT_EV_KEY, VINPUT_KEY_POWER, 1);
    /* after a reset the device writes nothing into the old rings */
    vh_wr(&g.h, VH_STATUS, 0);
    uint64_t b = vh_alloc(&g.h, 8);
    memset(vh_ptr(&g.h, b), 0x44, 8);
    struct vh_seg s = {b, 8, true};
    vh_avail_add(&g.h, vh_chain(&g.h, &s, 1, false));
    CHECK_EQ(vinput_press_keys(g.d, POWER, 1), 1);
    vh_kick(&g.h);
    CHECK_EQ(vh_used_idx(&g.h), 4);
    CHECK_EQ(vh_get32(&g.h, b), 0x44444444);
out:
    irig_close(&g);
}

/* Buffers too short for an event or not writable (5.8.6.1 violations) are given back empty;
 * the event goes into the next good buffer. */
TEST(vinput_short_buffers)
{
    struct irig g;
    if (!irig_open(&g, F_ALL, 16)) goto out;
    offer(&g, 1, 4);
    uint64_t ro = vh_alloc(&g.h, 8);
    memset(vh_ptr(&g.h, ro), 0x55, 8);
    struct vh_seg s = {ro, 8, false};
    vh_avail_add(&g.h, vh_chain(&g.h, &s, 1, false));
    offer(&g, 4, 8);
    CHECK_EQ(vinput_press_keys(g.d, POWER, 1), 0);
    CHECK_EQ(vh_used_idx(&g.h), 6);
    CHECK_EQ(vh_used_len(&g.h, 0), 0);
    CHECK_EQ(vh_used_len(&g.h, 1), 0);
    CHECK_EQ(vh_get32(&g.h, ro), 0x55555555);
    check_event(&g, 2, VINPUT_EV_KEY, VINPUT_KEY_POWER, 1);
    check_event(&g, 5, VINPUT_EV_SYN, VINPUT_SYN_REPORT, 0);
    /* an event split across two 4-byte descriptors of one chain is fine */
    uint64_t b = vh_alloc(&g.h, 8);
    struct vh_seg two[2] = {{b, 4, true}, {b + 4, 4, true}};
    vh_avail_add(&g.h, vh_chain(&g.h, two, 2, true));
    CHECK_EQ(vinput_press_keys(g.d, POWER, 1), 1);
    CHECK_EQ(vh_used_idx(&g.h), 7);
    CHECK_EQ(vh_used_len(&g.h, 6), 8);
    CHECK_EQ(vh_get32(&g.h, b), VINPUT_EV_KEY | VINPUT_KEY_POWER << 16);
    CHECK_EQ(vh_get32(&g.h, b + 4), 1);
    struct vinput_stats st;
    vinput_get_stats(g.d, &st);
    CHECK_EQ(st.bad_buffers, 2);
    CHECK_EQ(vh_rd(&g.h, VH_STATUS) & VIRTIO_STATUS_NEEDS_RESET, 0);
out:
    irig_close(&g);
}

/* A malformed eventq or statusq: NEEDS_RESET, nothing more from that queue, vessel lives. */
TEST(vinput_hostile_rings_need_reset)
{
    struct irig g;
    enum log_level lv = log_current_level;
    log_current_level = LOG_ERROR;
    if (!irig_open(&g, F_ALL, 8)) goto out;
    vh_put16(&g.h, vh_avail_gpa() + 2, 100); /* avail idx 100 past a ring of 8 */
    CHECK_EQ(vinput_press_keys(g.d, POWER, 1), 1);
    CHECK_EQ(vh_used_idx(&g.h), 0);
    CHECK(vh_rd(&g.h, VH_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
    CHECK(vh_rd(&g.h, VH_INT_STATUS) & VIRTIO_INT_CONFIG);
    CHECK_EQ(vinput_press_keys(g.d, POWER, 1), 1);
    CHECK_EQ(vh_used_idx(&g.h), 0);

    /* statusq with a descriptor linked to itself */
    vh_wr(&g.h, VH_STATUS, 0);
    CHECK_EQ(vh_negotiate(&g.h, F_ALL), 0);
    CHECK_EQ(queue_setup_sel(&g.h, 1, 8), 0);
    CHECK_EQ(vh_driver_ok(&g.h), 0);
    CHECK_EQ(vh_rd(&g.h, VH_STATUS) & VIRTIO_STATUS_NEEDS_RESET, 0);
    uint16_t d = vh_take_desc(&g.h);
    vh_desc(&g.h, vh_desc_gpa(), d, vh_alloc(&g.h, 8), 8, VIRTQ_DESC_F_NEXT, d);
    vh_avail_add(&g.h, d);
    vh_wr(&g.h, VH_QUEUE_NOTIFY, 1);
    CHECK_EQ(vh_used_idx(&g.h), 0);
    CHECK(vh_rd(&g.h, VH_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
    /* notifications for queues the device does not have are ignored */
    vh_wr(&g.h, VH_QUEUE_NOTIFY, 2);
    vh_wr(&g.h, VH_QUEUE_NOTIFY, 0xffffffffu);
    struct vinput_stats st;
    vinput_get_stats(g.d, &st);
    CHECK_EQ(st.malformed, 2);
out:
    log_current_level = lv;
    irig_close(&g);
}

/* The statusq (LED messages from the kernel) is taken and given back unread. */
TEST(vinput_statusq_discarded)
{
    struct irig g;
    if (!irig_open(&g, F_ALL, 8)) goto out;
    vh_wr(&g.h, VH_STATUS, 0);
    CHECK_EQ(vh_negotiate(&g.h, F_ALL), 0);
    CHECK_EQ(queue_setup_sel(&g.h, 1, 8), 0);
    CHECK_EQ(vh_driver_ok(&g.h), 0);
    for (int i = 0; i < 20; i++) { /* wraps the ring */
        uint64_t b = vh_alloc(&g.h, 8);
        static const uint8_t led[8] = {0x11, 0, 0, 0, 1, 0, 0, 0}; /* EV_LED LED_NUML 1 */
        memcpy(vh_ptr(&g.h, b), led, 8);
        struct vh_seg s = {b, 8, false};
        vh_avail_add(&g.h, vh_chain(&g.h, &s, 1, i & 1));
        vh_wr(&g.h, VH_QUEUE_NOTIFY, 1);
        CHECK_EQ(vh_used_idx(&g.h), (uint16_t)(i + 1));
        CHECK_EQ(vh_used_len(&g.h, (uint16_t)i), 0);
        CHECK(memcmp(vh_ptr(&g.h, b), led, 8) == 0);
    }
    struct vinput_stats st;
    vinput_get_stats(g.d, &st);
    CHECK_EQ(st.status_msgs, 20);
    CHECK_EQ(vh_rd(&g.h, VH_STATUS) & VIRTIO_STATUS_NEEDS_RESET, 0);
out:
    irig_close(&g);
}

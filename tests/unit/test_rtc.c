#include "dev/goldfish_rtc.h"
#include "test.h"
#include "util/clock.h"
#include <pthread.h>
#include <stdatomic.h>

struct irqrec {
    _Atomic int level;
    _Atomic int calls;
};
static void irq_set(void *ctx, unsigned n, bool level)
{
    struct irqrec *r = ctx;
    (void)n;
    atomic_store(&r->level, level);
    atomic_fetch_add(&r->calls, 1);
}

enum {
    TIME_LOW = 0x00,
    TIME_HIGH = 0x04,
    ALARM_LOW = 0x08,
    ALARM_HIGH = 0x0c,
    IRQ_ENABLED = 0x10,
    CLEAR_ALARM = 0x14,
    ALARM_STATUS = 0x18,
    CLEAR_INTERRUPT = 0x1c,
};

static uint32_t rd(struct goldfish_rtc *r, unsigned off)
{
    return (uint32_t)goldfish_rtc_mmio_ops.read(r, off, 4);
}
static void wr(struct goldfish_rtc *r, unsigned off, uint32_t v)
{
    goldfish_rtc_mmio_ops.write(r, off, v, 4);
}
/* As Linux's goldfish_rtc_read_time: LOW first (latches HIGH). */
static uint64_t read_time(struct goldfish_rtc *r)
{
    uint64_t lo = rd(r, TIME_LOW);
    return (uint64_t)rd(r, TIME_HIGH) << 32 | lo;
}
static void set_alarm(struct goldfish_rtc *r, uint64_t ns)
{
    wr(r, ALARM_HIGH, (uint32_t)(ns >> 32));
    wr(r, ALARM_LOW, (uint32_t)ns);
}
static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}
static int64_t absdiff(uint64_t a, uint64_t b)
{
    return a > b ? (int64_t)(a - b) : (int64_t)(b - a);
}

#define MS 1000000ll

TEST(rtc_time_tracks_host_realtime)
{
    struct irqrec irq = {0};
    struct goldfish_rtc *r = goldfish_rtc_create((struct irq_line){irq_set, &irq, 11});
    CHECK(r != NULL);
    uint64_t t = read_time(r);
    CHECK(absdiff(t, host_realtime_ns()) < 5 * MS);
    /* the latch: HIGH read reports the half of the last LOW read */
    CHECK_EQ(rd(r, TIME_HIGH), (uint32_t)(t >> 32));
    /* a 64-bit read gets both halves */
    CHECK(absdiff(goldfish_rtc_mmio_ops.read(r, TIME_LOW, 8), host_realtime_ns()) < 5 * MS);
    goldfish_rtc_destroy(r);
}

TEST(rtc_set_time_as_linux_does)
{
    struct irqrec irq = {0};
    struct goldfish_rtc *r = goldfish_rtc_create((struct irq_line){irq_set, &irq, 11});
    uint64_t want = 946684800ull * 1000000000ull; /* 2000-01-01 */
    wr(r, TIME_HIGH, (uint32_t)(want >> 32));
    wr(r, TIME_LOW, (uint32_t)want);
    uint64_t t = read_time(r);
    CHECK(t >= want && t - want < 5 * MS);
    sleep_ms(20);
    t = read_time(r);
    CHECK(t >= want + 20 * MS && t < want + 200 * MS); /* keeps running */
    goldfish_rtc_destroy(r);
}

TEST(rtc_alarm_fires_and_clears)
{
    struct irqrec irq = {0};
    struct goldfish_rtc *r = goldfish_rtc_create((struct irq_line){irq_set, &irq, 11});
    uint64_t t0 = read_time(r);
    set_alarm(r, t0 + 30 * MS);
    wr(r, IRQ_ENABLED, 1);
    CHECK_EQ(rd(r, ALARM_STATUS), 1);
    CHECK_EQ(rd(r, IRQ_ENABLED), 1);
    CHECK_EQ(rd(r, ALARM_LOW), (uint32_t)(t0 + 30 * MS));
    CHECK_EQ(rd(r, ALARM_HIGH), (uint32_t)((t0 + 30 * MS) >> 32));
    CHECK_EQ(atomic_load(&irq.level), 0);
    /* wait for it; it must fire after the deadline, and not much later */
    uint64_t fired = 0;
    for (int i = 0; i < 2000 && !atomic_load(&irq.level); i++)
        sleep_ms(1);
    fired = host_realtime_ns();
    CHECK_EQ(atomic_load(&irq.level), 1);
    CHECK(fired >= t0 + 30 * MS);
    CHECK(fired < t0 + 130 * MS);
    CHECK_EQ(rd(r, ALARM_STATUS), 0);
    wr(r, CLEAR_INTERRUPT, 1);
    CHECK_EQ(atomic_load(&irq.level), 0);
    goldfish_rtc_destroy(r);
}

TEST(rtc_alarm_in_past_fires_immediately_irq_gated_by_enable)
{
    struct irqrec irq = {0};
    struct goldfish_rtc *r = goldfish_rtc_create((struct irq_line){irq_set, &irq, 11});
    uint64_t t0 = read_time(r);
    set_alarm(r, t0 - 1000 * MS);
    CHECK_EQ(rd(r, ALARM_STATUS), 0);     /* fired already */
    CHECK_EQ(atomic_load(&irq.level), 0); /* but IRQ_ENABLED = 0 */
    wr(r, IRQ_ENABLED, 1);
    CHECK_EQ(atomic_load(&irq.level), 1);
    wr(r, IRQ_ENABLED, 0);
    CHECK_EQ(atomic_load(&irq.level), 0);
    wr(r, CLEAR_INTERRUPT, 1);
    wr(r, IRQ_ENABLED, 1);
    CHECK_EQ(atomic_load(&irq.level), 0);
    goldfish_rtc_destroy(r);
}

TEST(rtc_clear_alarm_cancels)
{
    struct irqrec irq = {0};
    struct goldfish_rtc *r = goldfish_rtc_create((struct irq_line){irq_set, &irq, 11});
    uint64_t t0 = read_time(r);
    wr(r, IRQ_ENABLED, 1);
    set_alarm(r, t0 + 20 * MS);
    CHECK_EQ(rd(r, ALARM_STATUS), 1);
    wr(r, CLEAR_ALARM, 1);
    CHECK_EQ(rd(r, ALARM_STATUS), 0);
    sleep_ms(60);
    CHECK_EQ(atomic_load(&irq.calls), 0);
    goldfish_rtc_destroy(r);
}

TEST(rtc_alarm_follows_guest_time_change)
{
    struct irqrec irq = {0};
    struct goldfish_rtc *r = goldfish_rtc_create((struct irq_line){irq_set, &irq, 11});
    wr(r, IRQ_ENABLED, 1);
    uint64_t t0 = read_time(r);
    set_alarm(r, t0 + 3600000 * MS); /* an hour away */
    sleep_ms(10);
    CHECK_EQ(atomic_load(&irq.level), 0);
    /* the guest moves its clock to just before the alarm: it must fire soon after */
    uint64_t nt = t0 + 3600000 * MS - 20 * MS;
    wr(r, TIME_HIGH, (uint32_t)(nt >> 32));
    wr(r, TIME_LOW, (uint32_t)nt);
    for (int i = 0; i < 2000 && !atomic_load(&irq.level); i++)
        sleep_ms(1);
    CHECK_EQ(atomic_load(&irq.level), 1);
    goldfish_rtc_destroy(r);
}

TEST(rtc_destroy_with_armed_alarm_and_odd_accesses)
{
    struct irqrec irq = {0};
    struct goldfish_rtc *r = goldfish_rtc_create((struct irq_line){irq_set, &irq, 11});
    set_alarm(r, UINT64_MAX); /* far future: the thread must not spin or overflow */
    CHECK_EQ(rd(r, ALARM_STATUS), 1);
    CHECK_EQ(goldfish_rtc_mmio_ops.read(r, 0x20, 4), 0);
    CHECK_EQ(goldfish_rtc_mmio_ops.read(r, TIME_LOW, 1), 0);
    goldfish_rtc_mmio_ops.write(r, ALARM_LOW, 0, 2); /* ignored */
    sleep_ms(5);
    goldfish_rtc_destroy(r); /* must join promptly */
    CHECK_EQ(atomic_load(&irq.calls), 0);
}

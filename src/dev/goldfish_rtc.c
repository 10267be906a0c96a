/* Goldfish RTC (Android emulator GOLDFISH-VIRTUAL-HARDWARE.TXT; consumer: Linux
 * drivers/rtc/rtc-goldfish.c). Guest time = host CLOCK_REALTIME + offset, in ns.
 * Linux sets the time by writing TIME_HIGH then TIME_LOW; each write replaces that half of the
 * current time. It arms the alarm with ALARM_HIGH, ALARM_LOW (arms), IRQ_ENABLED = 1, reads
 * ALARM_STATUS as "armed", and acknowledges with CLEAR_INTERRUPT.
 * The alarm is served by a thread waiting on a condvar with a CLOCK_REALTIME deadline, so host
 * clock steps move the deadline with the clock, as the guest expects of a wall clock. */
#include "dev/goldfish_rtc.h"
#include "util/staterec.h"
#include "util/clock.h"
#include "util/log.h"
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define RTC_TIME_LOW        0x00
#define RTC_TIME_HIGH       0x04
#define RTC_ALARM_LOW       0x08
#define RTC_ALARM_HIGH      0x0c
#define RTC_IRQ_ENABLED     0x10
#define RTC_CLEAR_ALARM     0x14
#define RTC_ALARM_STATUS    0x18
#define RTC_CLEAR_INTERRUPT 0x1c

#define MAX_WAIT_NS (3600ull * 1000000000)

struct goldfish_rtc {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* alarm (re)armed, time offset changed, or stop */
    pthread_t thread;
    bool stop;
    struct irq_line irq;
    bool irq_level;
    uint64_t offset;    /* guest ns - host realtime ns (mod 2^64) */
    uint32_t time_high; /* latched by a TIME_LOW read */
    uint64_t alarm;     /* guest ns */
    bool alarm_armed;   /* ALARM_STATUS */
    bool irq_enabled;   /* IRQ_ENABLED */
    bool irq_pending;   /* alarm fired, not yet cleared */
};

static uint64_t guest_now(const struct goldfish_rtc *r)
{
    return host_realtime_ns() + r->offset;
}

static void update_irq(struct goldfish_rtc *r)
{
    bool lvl = r->irq_pending && r->irq_enabled;
    if (lvl != r->irq_level) {
        r->irq_level = lvl;
        irq_line_set(&r->irq, lvl);
    }
}

static void fire(struct goldfish_rtc *r)
{
    r->alarm_armed = false;
    r->irq_pending = true;
    update_irq(r);
}

/* Fire at once if the alarm is already due (the guest may arm one in the past). */
static void check_alarm(struct goldfish_rtc *r)
{
    if (r->alarm_armed && guest_now(r) >= r->alarm) /* unsigned ns, as QEMU's model */
        fire(r);
}

static void *alarm_thread(void *arg)
{
    struct goldfish_rtc *r = arg;
    pthread_mutex_lock(&r->lock);
    while (!r->stop) {
        check_alarm(r);
        if (!r->alarm_armed) {
            pthread_cond_wait(&r->cond, &r->lock);
            continue;
        }
        /* Host realtime at which guest time reaches the alarm; wake at least hourly so a
         * far-off (or wrapped) deadline never overflows the timespec. */
        uint64_t now = host_realtime_ns(), gnow = now + r->offset;
        if (gnow >= r->alarm) continue;
        uint64_t left = r->alarm - gnow;
        if (left > MAX_WAIT_NS) left = MAX_WAIT_NS;
        uint64_t due = now + left;
        struct timespec ts = {.tv_sec = (time_t)(due / 1000000000u),
                              .tv_nsec = (long)(due % 1000000000u)};
        pthread_cond_timedwait(&r->cond, &r->lock, &ts);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

static uint64_t rtc_read(void *dev, uint64_t off, unsigned size)
{
    struct goldfish_rtc *r = dev;
    uint64_t v = 0;
    if (size != 4 && size != 8) return 0;
    pthread_mutex_lock(&r->lock);
    switch (off) {
    case RTC_TIME_LOW: {
        uint64_t now = guest_now(r);
        r->time_high = (uint32_t)(now >> 32);
        v = size == 8 ? now : (uint32_t)now; /* a 64-bit read gets both halves at once */
        break;
    }
    case RTC_TIME_HIGH: v = r->time_high; break;
    case RTC_ALARM_LOW: v = (uint32_t)r->alarm; break;
    case RTC_ALARM_HIGH: v = (uint32_t)(r->alarm >> 32); break;
    case RTC_IRQ_ENABLED: v = r->irq_enabled; break;
    case RTC_ALARM_STATUS: v = r->alarm_armed; break;
    default: break;
    }
    pthread_mutex_unlock(&r->lock);
    return v;
}

static uint64_t deposit32(uint64_t v, bool high, uint32_t half)
{
    return high ? (v & 0xffffffffu) | (uint64_t)half << 32 : (v & ~0xffffffffull) | half;
}

static void rtc_write(void *dev, uint64_t off, uint64_t val64, unsigned size)
{
    struct goldfish_rtc *r = dev;
    uint32_t val = (uint32_t)val64;
    if (size != 4 && size != 8) return;
    pthread_mutex_lock(&r->lock);
    switch (off) {
    case RTC_TIME_LOW:
    case RTC_TIME_HIGH: {
        uint64_t host = host_realtime_ns();
        uint64_t want = deposit32(host + r->offset, off == RTC_TIME_HIGH, val);
        if (off == RTC_TIME_LOW && size == 8) want = val64;
        r->offset = want - host;
        pthread_cond_signal(&r->cond); /* the alarm's host deadline moved */
        break;
    }
    case RTC_ALARM_LOW:
        r->alarm = size == 8 ? val64 : deposit32(r->alarm, false, val);
        r->alarm_armed = true;
        check_alarm(r);
        pthread_cond_signal(&r->cond);
        break;
    case RTC_ALARM_HIGH: r->alarm = deposit32(r->alarm, true, val); break;
    case RTC_IRQ_ENABLED:
        r->irq_enabled = val & 1;
        update_irq(r);
        break;
    case RTC_CLEAR_ALARM:
        r->alarm_armed = false;
        pthread_cond_signal(&r->cond);
        break;
    case RTC_CLEAR_INTERRUPT:
        r->irq_pending = false;
        update_irq(r);
        break;
    default: break;
    }
    pthread_mutex_unlock(&r->lock);
}

struct goldfish_rtc *goldfish_rtc_create(struct irq_line irq)
{
    struct goldfish_rtc *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    r->irq = irq;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL); /* default clock: CLOCK_REALTIME, as the deadline */
    int err = pthread_create(&r->thread, NULL, alarm_thread, r);
    if (err) {
        log_error("goldfish-rtc: cannot start the alarm thread: %s", strerror(err));
        pthread_cond_destroy(&r->cond);
        pthread_mutex_destroy(&r->lock);
        free(r);
        errno = err;
        return NULL;
    }
    return r;
}

void goldfish_rtc_destroy(struct goldfish_rtc *r)
{
    if (!r) return;
    pthread_mutex_lock(&r->lock);
    r->stop = true;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

const struct mmio_ops goldfish_rtc_mmio_ops = {.read = rtc_read, .write = rtc_write};

/* ---- snapshots (util/staterec.h): the guest's RTC keeps its offset to the host's wall clock,
 * so after a restore it reads the host's time again (the ACLINT does the same for mtime). */
void goldfish_rtc_save(struct goldfish_rtc *r, struct sw *w)
{
    pthread_mutex_lock(&r->lock);
    sw_section(w, "rtc", 1);
    sw_u64(w, "offset", r->offset);
    sw_u64(w, "time_high", r->time_high);
    sw_u64(w, "alarm", r->alarm);
    sw_u64(w, "alarm_armed", r->alarm_armed);
    sw_u64(w, "irq_enabled", r->irq_enabled);
    sw_u64(w, "irq_pending", r->irq_pending);
    sw_u64(w, "irq_level", r->irq_level);
    pthread_mutex_unlock(&r->lock);
}

int goldfish_rtc_load(struct goldfish_rtc *r, struct sr *sr)
{
    sr_enter(sr, "rtc", 1);
    uint64_t off = sr_u64(sr, "offset", UINT64_MAX);
    uint64_t th = sr_u64(sr, "time_high", UINT32_MAX), alarm = sr_u64(sr, "alarm", UINT64_MAX);
    bool armed = sr_u64(sr, "alarm_armed", 1), en = sr_u64(sr, "irq_enabled", 1);
    bool pend = sr_u64(sr, "irq_pending", 1), lvl = sr_u64(sr, "irq_level", 1);
    if (sr_failed(sr)) return -1;
    pthread_mutex_lock(&r->lock);
    r->offset = off;
    r->time_high = (uint32_t)th;
    r->alarm = alarm;
    r->alarm_armed = armed;
    r->irq_enabled = en;
    r->irq_pending = pend;
    r->irq_level = lvl;
    update_irq(r);
    check_alarm(r);
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    return 0;
}

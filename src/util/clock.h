/* The guest's time base: mtime ticks at VCLOCK_HZ from the host monotonic clock. */
#ifndef VESSEL_UTIL_CLOCK_H
#define VESSEL_UTIL_CLOCK_H
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#define VCLOCK_HZ 10000000ull /* device tree timebase-frequency, as QEMU virt */

static inline uint64_t host_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
static inline uint64_t host_realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
/* A condition variable whose timed waits count on CLOCK_MONOTONIC, so a step of the wall
 * clock moves no deadline; pair it with monotonic_deadline_ms() or host_monotonic_ns(). */
static inline void cond_init_monotonic(pthread_cond_t *c)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(c, &ca);
    pthread_condattr_destroy(&ca);
}
/* The CLOCK_MONOTONIC instant `ms` milliseconds from now, for pthread_cond_timedwait. */
static inline struct timespec monotonic_deadline_ms(unsigned ms)
{
    uint64_t t = host_monotonic_ns() + (uint64_t)ms * 1000000ull;
    return (struct timespec){(time_t)(t / 1000000000ull), (long)(t % 1000000000ull)};
}
/* Raw ticks since host boot; the ACLINT adds its own offset (mtime starts near 0). */
static inline uint64_t vclock_ticks(void)
{
    return host_monotonic_ns() / (1000000000ull / VCLOCK_HZ);
}
/* Absolute host monotonic ns at which raw tick count t is reached. */
static inline uint64_t vclock_ticks_to_ns(uint64_t t)
{
    return t * (1000000000ull / VCLOCK_HZ);
}
#endif

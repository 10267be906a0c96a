/* Rate limiting for log lines a guest can trigger (a hostile guest must not be able to flood
 * the log or spend host time formatting it). Each call site gets its own limiter: at most
 * RATELIMIT_BURST lines per RATELIMIT_INTERVAL_NS; the first line let through after a
 * suppressed stretch says how many similar messages were dropped. The events themselves are
 * counted by the devices (their stats), not by this. Thread safe. */
#ifndef VESSEL_UTIL_RATELIMIT_H
#define VESSEL_UTIL_RATELIMIT_H
#include "util/log.h"
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define RATELIMIT_BURST       5
#define RATELIMIT_INTERVAL_NS (5ull * 1000000000ull)

struct ratelimit {
    pthread_mutex_t lock;
    unsigned burst;       /* lines allowed per interval */
    uint64_t interval_ns; /* window length */
    uint64_t window_start;
    bool started;
    unsigned used;       /* lines let through in this window */
    uint64_t suppressed; /* dropped since the last line let through */
};

#define RATELIMIT_INIT(b, ns)                                                                      \
    {                                                                                              \
        .lock = PTHREAD_MUTEX_INITIALIZER, .burst = (b), .interval_ns = (ns)                       \
    }

/* May a line be logged at time now_ns (monotonic)? If so and lines were dropped since the last
 * one let through, *suppressed is set to their number (else 0). */
bool ratelimit_allow(struct ratelimit *rl, uint64_t now_ns, uint64_t *suppressed);

/* log_msg through the limiter `rl` (the macros below give each call site its own). */
void log_msg_ratelimited(struct ratelimit *rl, enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_ratelimited_(lvl, ...)                                                                 \
    do {                                                                                           \
        static struct ratelimit rl_ = RATELIMIT_INIT(RATELIMIT_BURST, RATELIMIT_INTERVAL_NS);      \
        if (log_current_level >= (lvl)) log_msg_ratelimited(&rl_, (lvl), __VA_ARGS__);             \
    } while (0)
#define log_error_ratelimited(...) log_ratelimited_(LOG_ERROR, __VA_ARGS__)
#define log_warn_ratelimited(...)  log_ratelimited_(LOG_WARN, __VA_ARGS__)
#define log_info_ratelimited(...)  log_ratelimited_(LOG_INFO, __VA_ARGS__)
#endif

/* Per-call-site log rate limiting (ratelimit.h). */
#include "util/ratelimit.h"
#include "util/clock.h"
#include <stdarg.h>
#include <stdio.h>

bool ratelimit_allow(struct ratelimit *rl, uint64_t now_ns, uint64_t *suppressed)
{
    pthread_mutex_lock(&rl->lock);
    *suppressed = 0;
    /* A new window when the old one has run out (or the clock went backwards). */
    if (!rl->started || now_ns - rl->window_start >= rl->interval_ns || now_ns < rl->window_start) {
        rl->started = true;
        rl->window_start = now_ns;
        rl->used = 0;
    }
    bool ok = rl->used < rl->burst;
    if (ok) {
        rl->used++;
        *suppressed = rl->suppressed;
        rl->suppressed = 0;
    } else {
        rl->suppressed++;
    }
    pthread_mutex_unlock(&rl->lock);
    return ok;
}

void log_msg_ratelimited(struct ratelimit *rl, enum log_level lvl, const char *fmt, ...)
{
    uint64_t dropped;
    if (!ratelimit_allow(rl, host_monotonic_ns(), &dropped)) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (dropped)
        log_msg(lvl, "%s (suppressed %llu similar messages)", line, (unsigned long long)dropped);
    else
        log_msg(lvl, "%s", line);
}

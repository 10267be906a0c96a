/* The log rate limiter (util/ratelimit.h): a burst per interval per call site, then a count of
 * what was dropped on the next line let through. */
#include "test.h"
#include "util/ratelimit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S 1000000000ull

TEST(ratelimit_burst_then_suppress)
{
    struct ratelimit rl = RATELIMIT_INIT(3, 5 * S);
    uint64_t dropped = 99;
    uint64_t t = 1000 * S;
    for (int i = 0; i < 3; i++) {
        CHECK(ratelimit_allow(&rl, t + (uint64_t)i, &dropped));
        CHECK_EQ(dropped, 0);
    }
    for (int i = 0; i < 1000; i++)
        CHECK(!ratelimit_allow(&rl, t + S, &dropped));
    /* still inside the window */
    CHECK(!ratelimit_allow(&rl, t + 5 * S - 1, &dropped));
    /* a new window: one line again, telling how many were dropped */
    CHECK(ratelimit_allow(&rl, t + 5 * S, &dropped));
    CHECK_EQ(dropped, 1001);
    CHECK(ratelimit_allow(&rl, t + 5 * S + 1, &dropped));
    CHECK_EQ(dropped, 0);
    /* the clock going backwards starts a new window rather than blocking forever */
    CHECK(ratelimit_allow(&rl, t, &dropped));
}

TEST(ratelimit_zero_burst_drops_all)
{
    struct ratelimit rl = RATELIMIT_INIT(0, S);
    uint64_t dropped;
    CHECK(!ratelimit_allow(&rl, 5, &dropped));
    CHECK(!ratelimit_allow(&rl, 10 * S, &dropped));
}

/* Through the log: a call site in a loop writes at most RATELIMIT_BURST lines. */
static void noisy(void)
{
    log_warn_ratelimited("hostile guest did %s", "something");
}

TEST(ratelimit_log_lines_bounded)
{
    char path[] = "/tmp/vessel-rl-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    close(fd);
    CHECK_EQ(log_set_file(path), 0);
    for (int i = 0; i < 10000; i++)
        noisy();
    FILE *f = fopen(path, "r");
    int lines = 0;
    char buf[512];
    while (f && fgets(buf, sizeof(buf), f))
        if (strstr(buf, "hostile guest did something")) lines++;
    if (f) fclose(f);
    CHECK(lines >= 1 && lines <= RATELIMIT_BURST);
    unlink(path);
    /* back to stderr for the other tests */
    CHECK_EQ(log_set_file(NULL), 0);
}

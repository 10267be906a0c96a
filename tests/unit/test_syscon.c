#include "dev/syscon.h"
#include "test.h"

struct rec {
    int calls;
    enum syscon_action what;
    int code;
};

static void action(void *ctx, enum syscon_action what, int code)
{
    struct rec *r = ctx;
    r->calls++;
    r->what = what;
    r->code = code;
}

TEST(syscon_actions)
{
    struct rec r = {0};
    struct syscon s = {action, &r};
    syscon_mmio_ops.write(&s, 0, 0x5555, 4);
    CHECK_EQ(r.calls, 1);
    CHECK_EQ(r.what, SYSCON_POWEROFF);
    CHECK_EQ(r.code, 0);
    syscon_mmio_ops.write(&s, 0, 0x7777, 4);
    CHECK_EQ(r.calls, 2);
    CHECK_EQ(r.what, SYSCON_REBOOT);
    syscon_mmio_ops.write(&s, 0, (42u << 16) | 0x3333, 4);
    CHECK_EQ(r.calls, 3);
    CHECK_EQ(r.what, SYSCON_FAIL);
    CHECK_EQ(r.code, 42);
    syscon_mmio_ops.write(&s, 0, 0xffff3333u, 4);
    CHECK_EQ(r.code, 0xffff);
}

TEST(syscon_ignores_other_writes)
{
    struct rec r = {0};
    struct syscon s = {action, &r};
    syscon_mmio_ops.write(&s, 0, 0x1234, 4);
    syscon_mmio_ops.write(&s, 0, 0x0, 4);
    syscon_mmio_ops.write(&s, 4, 0x5555, 4); /* wrong offset */
    syscon_mmio_ops.write(&s, 0, 0x55, 1);   /* narrow writes */
    syscon_mmio_ops.write(&s, 0, 0x5555, 2);
    CHECK_EQ(r.calls, 0);
    CHECK_EQ(syscon_mmio_ops.read(&s, 0, 4), 0);
    CHECK_EQ(syscon_mmio_ops.read(&s, 8, 8), 0);
    /* no callback installed: no crash */
    struct syscon none = {NULL, NULL};
    syscon_mmio_ops.write(&none, 0, 0x5555, 4);
}

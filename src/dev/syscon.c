/* SiFive test finisher as on QEMU's virt board: the low 16 bits of a write select the action
 * (0x3333 fail, 0x5555 pass/poweroff, 0x7777 reset), the high 16 bits are the exit code.
 * OpenSBI's syscon-poweroff/-reboot and Linux's syscon drivers use 32-bit writes at offset 0. */
#include "dev/syscon.h"
#include "util/log.h"

#define FINISHER_FAIL  0x3333
#define FINISHER_PASS  0x5555
#define FINISHER_RESET 0x7777

static uint64_t syscon_read(void *dev, uint64_t off, unsigned size)
{
    (void)dev, (void)off, (void)size;
    return 0;
}

static void syscon_write(void *dev, uint64_t off, uint64_t val, unsigned size)
{
    struct syscon *s = dev;
    if (off != 0 || size < 4) {
        log_debug("syscon: ignored %u-byte write of 0x%llx at +0x%llx", size,
                  (unsigned long long)val, (unsigned long long)off);
        return;
    }
    uint32_t v = (uint32_t)val;
    int code = (int)(v >> 16);
    enum syscon_action what;
    switch (v & 0xffff) {
    case FINISHER_PASS: what = SYSCON_POWEROFF; break;
    case FINISHER_RESET: what = SYSCON_REBOOT; break;
    case FINISHER_FAIL: what = SYSCON_FAIL; break;
    default:
        /* Guest-controlled: debug level so a guest cannot flood the log. */
        log_debug("syscon: ignored write of 0x%x", v);
        return;
    }
    if (s->action) s->action(s->ctx, what, code);
}

const struct mmio_ops syscon_mmio_ops = {.read = syscon_read, .write = syscon_write};

/* SiFive test device ("sifive,test1", "sifive,test0", "syscon") at 0x100000, 0x1000 bytes,
 * as QEMU's virt: a 32-bit write of 0x5555 powers off, 0x7777 resets, (code << 16) | 0x3333
 * powers off with failure exit code `code`. Other values are ignored (logged). Reads return 0. */
#ifndef VESSEL_DEV_SYSCON_H
#define VESSEL_DEV_SYSCON_H
#include "machine/bus.h"

#define SYSCON_MMIO_SIZE 0x1000ull

enum syscon_action { SYSCON_POWEROFF, SYSCON_REBOOT, SYSCON_FAIL };

struct syscon {
    void (*action)(void *ctx, enum syscon_action what, int code);
    void *ctx;
};
extern const struct mmio_ops syscon_mmio_ops;
#endif

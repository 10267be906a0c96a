/* CLINT-compatible ACLINT as on QEMU's virt board ("sifive,clint0"), 0x10000 bytes:
 * MSWI msip[h] @0x0 + 4h (bit 0 only, others read 0), MTIMER mtimecmp[h] @0x4000 + 8h,
 * mtime @0xBFF8. 32- and 64-bit accesses (mtimecmp/mtime halves writable with 32-bit stores).
 * mtime = vclock_ticks() + mtime_offset (starts near 0 at creation; writes adjust the offset).
 * The hart thread computes MTIP itself as mtime >= mtimecmp[h] (it reads mtimecmp atomically);
 * the ACLINT calls timer_changed(ctx, h) after a write to mtimecmp[h] or mtime so a sleeping
 * hart re-evaluates its deadline, and drives msip_out[h] for MSIP. Lockless (atomics only). */
#ifndef VESSEL_IRQ_ACLINT_H
#define VESSEL_IRQ_ACLINT_H
#include "irq/irq.h"
#include "machine/bus.h"
#include "util/clock.h"
#include <stdatomic.h>
#include <stdint.h>

#define ACLINT_MAX_HARTS 64
#define ACLINT_MMIO_SIZE 0x10000ull

struct aclint {
    unsigned nharts;
    _Atomic int64_t mtime_offset;
    _Atomic uint64_t mtimecmp[ACLINT_MAX_HARTS];
    _Atomic uint32_t msip[ACLINT_MAX_HARTS];
    struct irq_line msip_out[ACLINT_MAX_HARTS];
    void (*timer_changed)(void *ctx, unsigned hart);
    void *ctx;
};

/* msip_out: nharts lines. mtimecmp resets to UINT64_MAX (no interrupt). */
void aclint_init(struct aclint *a, unsigned nharts, const struct irq_line *msip_out,
                 void (*timer_changed)(void *ctx, unsigned hart), void *ctx);
static inline uint64_t aclint_mtime(struct aclint *a)
{
    return vclock_ticks() + (uint64_t)atomic_load_explicit(&a->mtime_offset, memory_order_relaxed);
}
extern const struct mmio_ops aclint_mmio_ops;

/* Snapshots (aclint.c has the clock policy): section "aclint". host_realtime: the host's
 * CLOCK_REALTIME in ns, now. aclint_load: 0, or -1 with the reason in r. */
struct sw;
struct sr;
void aclint_save(struct aclint *a, struct sw *w, uint64_t host_realtime);
int aclint_load(struct aclint *a, struct sr *r, uint64_t host_realtime);
#endif

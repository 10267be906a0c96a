/* SiFive-compatible PLIC (riscv,plic0) as on QEMU's virt board: 96 sources (1..95 usable,
 * riscv,ndev = 95), two contexts per hart (2h = M-mode, 2h+1 = S-mode).
 * Register map: priority 4*src @0x0, pending bits @0x1000, enables @0x2000 + 0x80*ctx,
 * threshold @0x200000 + 0x1000*ctx, claim/complete @0x200004 + 0x1000*ctx. 32-bit accesses
 * (64-bit accesses are split into two 32-bit ones). Sources are level-triggered: a source that
 * is still high after complete is pending again. The output line of each context is recomputed
 * after every change that can affect it (priority, enable, threshold, claim, complete, source
 * level) and driven through ctx_out[ctx] (level = some enabled pending source with priority >
 * threshold). Thread safety: an internal mutex; plic_set_irq may be called from any thread. */
#ifndef VESSEL_IRQ_PLIC_H
#define VESSEL_IRQ_PLIC_H
#include "irq/irq.h"
#include "machine/bus.h"
#include <stdint.h>

#define PLIC_NDEV      95
#define PLIC_NSRC      96
#define PLIC_MAX_CTX   (2 * 64)
#define PLIC_MMIO_SIZE 0x4000000ull

struct plic;
/* ctx_out: 2*nharts lines (ctx 2h -> hart h MEIP, 2h+1 -> hart h SEIP). Returns NULL on OOM. */
struct plic *plic_create(unsigned nharts, const struct irq_line *ctx_out);
void plic_destroy(struct plic *p);
/* Drive source src (1..95) to level. Out-of-range sources are ignored. */
void plic_set_irq(struct plic *p, unsigned src, bool level);
/* An irq_line callback: ctx = struct plic *, n = source. */
void plic_irq_line_set(void *plic, unsigned src, bool level);
extern const struct mmio_ops plic_mmio_ops;
/* Snapshots: section "plic". plic_load: 0, or -1 with the reason in r. */
struct sw;
struct sr;
void plic_save(struct plic *p, struct sw *w);
int plic_load(struct plic *p, struct sr *r);
#endif

/* An interrupt wire from a device to an interrupt controller (or from a controller to a hart).
 * set() may be called from any thread; the receiver does its own locking. */
#ifndef VESSEL_IRQ_IRQ_H
#define VESSEL_IRQ_IRQ_H
#include <stdbool.h>

struct irq_line {
    void (*set)(void *ctx, unsigned n, bool level);
    void *ctx;
    unsigned n;
};

static inline void irq_line_set(const struct irq_line *l, bool level)
{
    if (l->set) l->set(l->ctx, l->n, level);
}
#endif

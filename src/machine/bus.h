/* The machine's physical address space outside RAM: a sorted registry of MMIO ranges.
 * RAM is the fast path and never goes through the bus (see machine.h). */
#ifndef VESSEL_MACHINE_BUS_H
#define VESSEL_MACHINE_BUS_H
#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>

/* A device model's register interface. off is relative to the mapped base; size is 1, 2, 4
 * or 8 and off is always size-aligned (the CPU splits or faults misaligned MMIO). Called
 * from hart threads with the bus lock held unless the range was mapped BUS_LOCKLESS. */
struct mmio_ops {
    uint64_t (*read)(void *dev, uint64_t off, unsigned size);
    void (*write)(void *dev, uint64_t off, uint64_t val, unsigned size);
};

#define BUS_MAX_RANGES 64
#define BUS_LOCKLESS   1u /* the device does its own locking (e.g. ACLINT, hot path) */

struct bus_range {
    uint64_t base, size;
    const struct mmio_ops *ops;
    void *dev;
    unsigned flags;
};

struct bus {
    struct bus_range r[BUS_MAX_RANGES];
    int n;
    pthread_mutex_t lock; /* serialises device models that do not lock themselves */
};

void bus_init(struct bus *b);
void bus_destroy(struct bus *b);
/* Returns 0, -EEXIST on overlap, -ENOSPC when full. */
int bus_map(struct bus *b, uint64_t base, uint64_t size, const struct mmio_ops *ops, void *dev,
            unsigned flags);
const struct bus_range *bus_find(const struct bus *b, uint64_t addr);
/* Return false when nothing is mapped at [addr, addr+size) (the CPU raises an access fault). */
bool bus_read(struct bus *b, uint64_t addr, unsigned size, uint64_t *val);
bool bus_write(struct bus *b, uint64_t addr, unsigned size, uint64_t val);
#endif

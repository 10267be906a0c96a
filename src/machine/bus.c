#include "machine/bus.h"
#include <errno.h>
#include <string.h>

void bus_init(struct bus *b)
{
    memset(b, 0, sizeof(*b));
    pthread_mutex_init(&b->lock, NULL);
}

void bus_destroy(struct bus *b)
{
    pthread_mutex_destroy(&b->lock);
}

int bus_map(struct bus *b, uint64_t base, uint64_t size, const struct mmio_ops *ops, void *dev,
            unsigned flags)
{
    if (b->n == BUS_MAX_RANGES) return -ENOSPC;
    int i = 0;
    while (i < b->n && b->r[i].base < base)
        i++;
    if (i > 0 && b->r[i - 1].base + b->r[i - 1].size > base) return -EEXIST;
    if (i < b->n && base + size > b->r[i].base) return -EEXIST;
    memmove(&b->r[i + 1], &b->r[i], sizeof(b->r[0]) * (b->n - i));
    b->r[i] = (struct bus_range){base, size, ops, dev, flags};
    b->n++;
    return 0;
}

const struct bus_range *bus_find(const struct bus *b, uint64_t addr)
{
    int lo = 0, hi = b->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const struct bus_range *r = &b->r[mid];
        if (addr < r->base)
            hi = mid - 1;
        else if (addr - r->base >= r->size)
            lo = mid + 1;
        else
            return r;
    }
    return NULL;
}

static const struct bus_range *find_whole(const struct bus *b, uint64_t addr, unsigned size)
{
    const struct bus_range *r = bus_find(b, addr);
    if (!r || addr - r->base + size > r->size) return NULL;
    return r;
}

bool bus_read(struct bus *b, uint64_t addr, unsigned size, uint64_t *val)
{
    const struct bus_range *r = find_whole(b, addr, size);
    if (!r) {
        *val = 0;
        return false;
    }
    if (r->flags & BUS_LOCKLESS) {
        *val = r->ops->read(r->dev, addr - r->base, size);
    } else {
        pthread_mutex_lock(&b->lock);
        *val = r->ops->read(r->dev, addr - r->base, size);
        pthread_mutex_unlock(&b->lock);
    }
    return true;
}

bool bus_write(struct bus *b, uint64_t addr, unsigned size, uint64_t val)
{
    const struct bus_range *r = find_whole(b, addr, size);
    if (!r) return false;
    if (r->flags & BUS_LOCKLESS) {
        r->ops->write(r->dev, addr - r->base, val, size);
    } else {
        pthread_mutex_lock(&b->lock);
        r->ops->write(r->dev, addr - r->base, val, size);
        pthread_mutex_unlock(&b->lock);
    }
    return true;
}

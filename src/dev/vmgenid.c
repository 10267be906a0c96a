/* Virtual Machine Generation ID (vmgenid.h). */
#include "dev/vmgenid.h"
#include "util/staterec.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct vmgenid {
    pthread_mutex_t lock;
    uint8_t id[VMGENID_ID_SIZE];
    struct irq_line irq;
    bool level;
};

static void random_id(uint8_t id[VMGENID_ID_SIZE])
{
    if (getrandom(id, VMGENID_ID_SIZE, 0) != VMGENID_ID_SIZE) {
        /* never expected; still change the identifier */
        for (unsigned i = 0; i < VMGENID_ID_SIZE; i++)
            id[i] = (uint8_t)(id[i] * 31 + 7 + (uint8_t)rand());
    }
}

struct vmgenid *vmgenid_create(struct irq_line irq)
{
    struct vmgenid *g = calloc(1, sizeof(*g));
    if (!g) return NULL;
    pthread_mutex_init(&g->lock, NULL);
    g->irq = irq;
    random_id(g->id);
    return g;
}

void vmgenid_destroy(struct vmgenid *g)
{
    if (!g) return;
    pthread_mutex_destroy(&g->lock);
    free(g);
}

static void set_level(struct vmgenid *g, bool level)
{
    if (g->level != level) {
        g->level = level;
        irq_line_set(&g->irq, level);
    }
}

void vmgenid_new_generation(struct vmgenid *g)
{
    pthread_mutex_lock(&g->lock);
    random_id(g->id);
    set_level(g, true);
    pthread_mutex_unlock(&g->lock);
}

void vmgenid_get(struct vmgenid *g, uint8_t id[VMGENID_ID_SIZE])
{
    pthread_mutex_lock(&g->lock);
    memcpy(id, g->id, VMGENID_ID_SIZE);
    pthread_mutex_unlock(&g->lock);
}

static uint64_t vmgenid_read(void *dev, uint64_t off, unsigned size)
{
    struct vmgenid *g = dev;
    uint64_t v = 0;
    pthread_mutex_lock(&g->lock);
    for (unsigned i = 0; i < size && i < 8; i++)
        if (off + i < VMGENID_ID_SIZE) v |= (uint64_t)g->id[off + i] << (8 * i);
    set_level(g, false); /* the driver read the identifier: the notification is taken */
    pthread_mutex_unlock(&g->lock);
    return v;
}

static void vmgenid_write(void *dev, uint64_t off, uint64_t val, unsigned size)
{
    (void)dev, (void)off, (void)val, (void)size; /* read-only */
}

const struct mmio_ops vmgenid_mmio_ops = {.read = vmgenid_read, .write = vmgenid_write};

void vmgenid_save(struct vmgenid *g, struct sw *w)
{
    pthread_mutex_lock(&g->lock);
    sw_section(w, "vmgenid", 1);
    sw_bytes(w, "id", g->id, VMGENID_ID_SIZE);
    sw_u64(w, "irq_level", g->level);
    pthread_mutex_unlock(&g->lock);
}

int vmgenid_load(struct vmgenid *g, struct sr *r)
{
    sr_enter(r, "vmgenid", 1);
    uint8_t id[VMGENID_ID_SIZE];
    sr_bytes(r, "id", id, sizeof(id));
    bool level = sr_u64(r, "irq_level", 1);
    if (sr_failed(r)) return -1;
    pthread_mutex_lock(&g->lock);
    memcpy(g->id, id, sizeof(id));
    g->level = level; /* the PLIC's saved line level matches it */
    pthread_mutex_unlock(&g->lock);
    return 0;
}

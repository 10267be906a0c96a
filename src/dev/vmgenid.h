/* Virtual Machine Generation ID ("microsoft,vmgenid", Linux's drivers/virt/vmgenid.c through
 * its devicetree binding, rng/microsoft,vmgenid.yaml): a 16-byte identifier the guest reads,
 * and an interrupt when it changes. A VM restored from a snapshot is a new generation: vessel
 * gives it a new random identifier and raises the interrupt, and Linux then reseeds its
 * random number generator (add_vmfork_randomness), so VMs restored from one snapshot stop
 * sharing their RNG state. At VMGENID_BASE, 16 bytes read-only (reads of any width); reading
 * it lowers the interrupt (the PLIC sources are level-triggered). */
#ifndef VESSEL_DEV_VMGENID_H
#define VESSEL_DEV_VMGENID_H
#include "irq/irq.h"
#include "machine/bus.h"
#include <stdint.h>

#define VMGENID_MMIO_SIZE 0x1000ull
#define VMGENID_ID_SIZE   16

struct vmgenid;
struct vmgenid *vmgenid_create(struct irq_line irq); /* a random first identifier */
void vmgenid_destroy(struct vmgenid *g);
/* A new random identifier, and the interrupt (any thread). */
void vmgenid_new_generation(struct vmgenid *g);
void vmgenid_get(struct vmgenid *g, uint8_t id[VMGENID_ID_SIZE]);
extern const struct mmio_ops vmgenid_mmio_ops;

/* Snapshots: section "vmgenid". _load: 0, or -1 with the reason in the reader. */
struct sw;
struct sr;
void vmgenid_save(struct vmgenid *g, struct sw *w);
int vmgenid_load(struct vmgenid *g, struct sr *r);
#endif

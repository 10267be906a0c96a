/* virtio-rng (virtio 1.x spec 5.4): fills the guest's buffers from getrandom(), so the guest
 * has entropy from its first boot on. */
#ifndef VESSEL_DEV_VIRTIO_RNG_H
#define VESSEL_DEV_VIRTIO_RNG_H
#include "dev/virtio/mmio.h"

struct vrng;
struct vrng *vrng_create(const struct guest_mem *gm, struct irq_line irq);
void vrng_destroy(struct vrng *r);
struct virtio_mmio *vrng_transport(struct vrng *r);
#endif

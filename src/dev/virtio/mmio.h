/* virtio-mmio transport, version 2 registers (virtio 1.x spec 4.2.2), at
 * VIRTIO_BASE + 0x1000 * slot, PLIC source 1 + slot. DeviceID 0 marks an empty slot.
 * Offers VIRTIO_F_VERSION_1 (required), VIRTIO_F_INDIRECT_DESC and VIRTIO_F_EVENT_IDX in
 * addition to the device's own features; legacy (version 1) drivers are not supported.
 * Thread safety: own mutex; device callbacks are called without it held except where noted. */
#ifndef VESSEL_DEV_VIRTIO_MMIO_H
#define VESSEL_DEV_VIRTIO_MMIO_H
#include "dev/virtio/virtqueue.h"
#include "irq/irq.h"
#include "machine/bus.h"
#include "machine/guestmem.h"

struct sw;
struct sr;
#define VIRTIO_MMIO_SIZE  0x1000ull
#define VIRTIO_MAX_QUEUES 8

#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32

/* device status bits (2.1) */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER      2
#define VIRTIO_STATUS_DRIVER_OK   4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED      128

/* interrupt status bits */
#define VIRTIO_INT_USED   1
#define VIRTIO_INT_CONFIG 2

struct virtio_mmio;

/* What a device model provides. */
struct virtio_device_ops {
    uint32_t device_id; /* 2 = block, 4 = entropy, ... */
    uint64_t features;  /* device-specific feature bits offered */
    unsigned num_queues;
    uint16_t queue_max; /* QueueNumMax for every queue, <= VQ_MAX_SIZE */
    uint32_t config_size;
    /* Device configuration space (offset from 0x100), 1/2/4-byte accesses, little endian. */
    uint32_t (*config_read)(void *dev, uint32_t off, unsigned size);
    void (*config_write)(void *dev, uint32_t off, uint32_t val, unsigned size);
    /* The driver set DRIVER_OK with these negotiated features. */
    void (*start)(void *dev, uint64_t features);
    /* The guest notified queue q (called on a hart thread: must not block). */
    void (*notify)(void *dev, unsigned q);
    /* Device reset (status written 0), on a hart thread: must not block. Stop taking
     * requests and pushing completions at once. Returns true if nothing is in flight; false
     * if requests are, and then the device calls virtio_mmio_reset_done() (from any thread,
     * exactly once) when the last of them is gone. Until then the status register reads back
     * non-zero (4.2.2.1: the driver re-reads it until it reads 0). */
    bool (*reset)(void *dev);
    /* Snapshots (optional): the device's own state, as fields of its transport's section
     * (names start with "dev."); save runs with nothing in flight, load before start. load
     * returns 0, or -1 with the reason in r. */
    void (*save)(void *dev, struct sw *w);
    int (*load)(void *dev, struct sr *r);
    /* Snapshots (optional, for devices fed by a host thread that runs while the harts are
     * parked, as the network): stop (true) touching the queues and guest memory, waiting for
     * work under way; then resume (false). Called from a non-hart thread. */
    void (*quiesce)(void *dev, bool stop);
};

struct virtio_mmio *virtio_mmio_create(const struct virtio_device_ops *ops, void *dev,
                                       const struct guest_mem *gm, struct irq_line irq);
void virtio_mmio_destroy(struct virtio_mmio *t);
/* The queue object for queue q (valid between start and reset). */
struct vq *virtio_mmio_queue(struct virtio_mmio *t, unsigned q);
/* Raise an interrupt (VIRTIO_INT_USED after used-ring updates, VIRTIO_INT_CONFIG). Any thread. */
void virtio_mmio_interrupt(struct virtio_mmio *t, uint32_t bits);
/* The device hit a malformed request/ring: set DEVICE_NEEDS_RESET and raise a config
 * interrupt (spec 2.1.2). Any thread. */
void virtio_mmio_set_needs_reset(struct virtio_mmio *t);
/* The device has drained what was in flight when its reset began: finish the reset (the
 * status register reads 0 from now on). Any thread; no-op if no reset is pending. */
void virtio_mmio_reset_done(struct virtio_mmio *t);
/* Cut the interrupt line (the machine is going away while the device is abandoned with
 * requests in flight): later completions and a late reset_done raise nothing. Any thread. */
void virtio_mmio_disconnect_irq(struct virtio_mmio *t);
/* Whether a reset is waiting for the device to drain (for tests and stop paths). */
bool virtio_mmio_reset_pending(struct virtio_mmio *t);
/* Guest-caused events, for the debug summary at close. */
struct virtio_mmio_stats {
    uint64_t resets, resets_deferred, needs_reset, ignored_during_reset;
};
void virtio_mmio_get_stats(struct virtio_mmio *t, struct virtio_mmio_stats *s);
extern const struct mmio_ops virtio_mmio_ops;

/* Snapshots: section "virtio.SLOT" (util/staterec.h). Save needs every queue idle (no request
 * in flight: virtio_mmio_inflight() == 0). Load checks every value as the registers would
 * (features offered, ring layout inside guest memory, queue sizes), then restarts a device the
 * driver had started. 0, or -1 with the reason in r. */
void virtio_mmio_save(struct virtio_mmio *t, struct sw *w, unsigned slot);
int virtio_mmio_load(struct virtio_mmio *t, struct sr *r, unsigned slot);
/* Requests taken from the queues and not yet completed. */
unsigned virtio_mmio_inflight(struct virtio_mmio *t);
/* Stop (true) or let go on (false) a device's own host-side work on the queues (ops->quiesce;
 * nothing for devices that only answer the guest). NULL t: nothing. */
void virtio_mmio_quiesce(struct virtio_mmio *t, bool stop);
#endif

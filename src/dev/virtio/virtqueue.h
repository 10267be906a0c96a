/* Split virtqueues (virtio 1.x spec, 2.7 "Split Virtqueues"), device side.
 * The rings live in guest memory and the guest is hostile: every descriptor address, length,
 * index and flag is checked. A malformed ring makes vq_pop return -EINVAL; the device then
 * calls virtio_mmio_set_needs_reset() and stops using the queue (it never crashes vessel).
 * Threading: one thread at a time per queue (the device serialises pop/push with its own
 * lock); the guest (another thread) writes the avail ring concurrently, so ring indexes are
 * read with acquire and written with release ordering. */
#ifndef VESSEL_DEV_VIRTIO_VIRTQUEUE_H
#define VESSEL_DEV_VIRTIO_VIRTQUEUE_H
#include "machine/guestmem.h"
#include <stdbool.h>
#include <stdint.h>

#define VQ_MAX_SIZE 1024 /* largest queue we offer (QueueNumMax) */
#define VQ_MAX_SEGS 256  /* longest chain accepted, direct + indirect segments together */

/* virtq_desc flags */
#define VIRTQ_DESC_F_NEXT          1
#define VIRTQ_DESC_F_WRITE         2
#define VIRTQ_DESC_F_INDIRECT      4
/* avail flags / used flags */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY     1

struct vq {
    /* configured by the transport */
    uint16_t num;                           /* queue size, power of 2, 1..VQ_MAX_SIZE */
    uint64_t desc_gpa, avail_gpa, used_gpa; /* guest physical addresses of the three parts */
    bool ready;
    bool event_idx; /* VIRTIO_F_EVENT_IDX negotiated */
    bool indirect;  /* VIRTIO_F_INDIRECT_DESC negotiated */
    const struct guest_mem *gm;
    /* device state */
    uint16_t last_avail; /* next avail ring entry to take */
    uint16_t used_idx;   /* next used ring entry to fill */
    uint16_t signalled_used;
    bool signalled_used_valid;
    bool broken; /* a malformed ring was seen: nothing more is taken from this queue */
    /* Heads taken by vq_pop and not yet given back by vq_push. A head can be in flight only
     * once, so at most num requests are in flight whatever the driver publishes: this (not
     * last_avail, which moves when a request is taken) bounds the host memory a guest can
     * tie up in requests. */
    uint16_t inflight;
    uint64_t inflight_map[VQ_MAX_SIZE / 64];
};

/* One guest buffer segment of a chain, already translated to a host pointer. */
struct vq_seg {
    uint8_t *ptr;
    uint32_t len;
    bool write; /* device-writable */
};

struct vq_chain {
    uint16_t head; /* id to give back to vq_push */
    unsigned nseg;
    unsigned nread, nwrite; /* readable segments come first, then writable ones */
    uint64_t read_len, write_len;
    struct vq_seg seg[VQ_MAX_SEGS];
};

/* Reset device state (on device reset or queue (re)configuration). */
void vq_reset(struct vq *q);
/* Validate the configured addresses (alignment, inside guest memory). 0 or -EINVAL. */
int vq_check_layout(const struct vq *q);
/* Take the next available chain. Returns 1 with *c filled, 0 if none is available, -EINVAL
 * if the ring or chain is malformed: index jumps past the queue size, a head that is still in
 * flight (taken, not yet pushed back) published again, head or next out of
 * range, a loop or a chain longer than the queue / VQ_MAX_SEGS, a buffer outside guest memory
 * or with a length that wraps, a readable segment after a writable one, INDIRECT without the
 * feature, an indirect table inside an indirect table, INDIRECT together with NEXT, an
 * indirect table whose length is not a multiple of 16 or is 0. On -EINVAL q->broken is set. */
int vq_pop(struct vq *q, struct vq_chain *c);
/* vq_pop for a device draining its queue: when the ring is empty and event idx is on, publish
 * avail_event (so the driver kicks for its next buffer) and look once more, closing the race
 * with a buffer added in between. Same results as vq_pop. */
int vq_pop_or_arm(struct vq *q, struct vq_chain *c);
/* Give back the last n chains taken by vq_pop, unused, in any order of heads: they become
 * available again as if never taken (the avail ring still holds them; the next vq_pop reads and
 * checks them again). For a device that took buffers for something that did not fit (virtio-net
 * rx with mergeable buffers: a frame needs more buffers than are available). heads[] are the
 * chains' heads; n at most what was taken since the last push or reset. */
void vq_unpop(struct vq *q, const uint16_t *heads, unsigned n);
/* Return a chain to the guest with `written` bytes written into its writable part; its head
 * is no longer in flight. (Devices push only what they popped since the last vq_reset.) */
void vq_push(struct vq *q, uint16_t head, uint32_t written);
/* After pushing: should the device interrupt the guest? (VIRTIO_F_EVENT_IDX: used_event;
 * otherwise VIRTQ_AVAIL_F_NO_INTERRUPT.) With event idx, every call moves the signalled state
 * to the current used idx (as vhost and QEMU do): call it once per batch of pushes. */
bool vq_should_notify(struct vq *q);
/* With event_idx: publish avail_event = last_avail so the guest kicks for the next buffer. */
void vq_update_avail_event(struct vq *q);
/* Copy helpers across a chain's segments (for headers that may be split). Return bytes done.
 * vq_chain_read's off counts from the start of the readable part, vq_chain_write's from the
 * start of the writable part. */
uint64_t vq_chain_read(const struct vq_chain *c, uint64_t off, void *dst, uint64_t len);
uint64_t vq_chain_write(const struct vq_chain *c, uint64_t off, const void *src, uint64_t len);
#endif

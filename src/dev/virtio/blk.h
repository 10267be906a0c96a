/* virtio-blk (virtio 1.x spec 5.2) on a block backend: one request queue; IN, OUT, FLUSH,
 * GET_ID, DISCARD and WRITE_ZEROES; read-only disks advertise VIRTIO_BLK_F_RO and fail writes
 * with an I/O error. Requests are taken on the hart thread that notifies and complete on the
 * backend's I/O thread, at most the queue size (256) in flight (vq refuses a head published
 * again while in flight). Reset is asynchronous (mmio.h). A malformed request that cannot even
 * carry a status (no header, no writable status byte) puts the device into NEEDS_RESET. */
#ifndef VESSEL_DEV_VIRTIO_BLK_H
#define VESSEL_DEV_VIRTIO_BLK_H
#include "backend/block/block.h"
#include "dev/virtio/mmio.h"

#define VIRTIO_BLK_SERIAL_LEN 20

struct vblk;
/* serial: up to 20 bytes (longer is refused by the caller), or NULL. NULL on OOM. */
struct vblk *vblk_create(struct blk_backend *be, const char *serial, const struct guest_mem *gm,
                         struct irq_line irq);
/* Resets the device and waits (at most 250 ms) for its in-flight requests; does not close the
 * backend. Returns true if it was freed; false if requests were still in flight: the device
 * is then abandoned (never freed, their late completions touch only it) and the caller must
 * keep guest RAM mapped, as those requests may still write into it. */
bool vblk_destroy(struct vblk *d);
/* Put another backend behind a running device (PATCH /drives/{id}): stop taking requests
 * (what the driver queues meanwhile waits in the ring), wait at most wait_ms for the ones in
 * flight to complete against the old backend, switch, then raise a configuration change
 * interrupt for the new capacity (virtio 1.x 4.2.2.1, ConfigGeneration) and take what was
 * queued. -EBUSY if requests were still in flight at the deadline (nothing changed, the device
 * goes on with the old backend); -EINVAL if be's read-only flag differs from the device's
 * (features were negotiated). 0: the old backend is idle and the caller's to close. be may be
 * the device's own backend: its image was resized on the host, and its size is read again
 * while the device is drained (-EINVAL if the new size is unusable). Any thread but a hart's
 * (it blocks). */
int vblk_swap_backend(struct vblk *d, struct blk_backend *be, unsigned wait_ms);
struct virtio_mmio *vblk_transport(struct vblk *d);
/* Counters for tests and logs. */
struct vblk_stats {
    uint64_t reads, writes, flushes, discards, write_zeroes, get_ids, errors, bad_requests;
    uint64_t resets, swaps;
    uint64_t in_flight; /* now: requests taken and not yet completed */
    bool quiesced;      /* now: a backend swap waits for in_flight to drain */
};
void vblk_get_stats(struct vblk *d, struct vblk_stats *s);
/* For tests and the fuzzer: process the queue as a notify would, then wait until every
 * request submitted so far has completed. */
void vblk_process_and_wait(struct vblk *d);
/* Flush the current backend (blk_flush_wait), for a snapshot of the paused machine whose
 * requests have drained. 0 or -errno. */
int vblk_flush(struct vblk *d, unsigned ms);
/* The backend requests go to now (PATCH /drives may have swapped it). */
struct blk_backend *vblk_backend(struct vblk *d);
#endif

/* virtio-vsock (virtio 1.x spec 5.10, device ID 19) on a vsock backend (backend/vsock/vsock.h):
 * stream sockets between the guest (its CID in configuration space) and the host (CID 2).
 * Queues: rx (packets for the guest), tx (packets from the guest), event (transport reset
 * events; none are sent: snapshots of a VM with vsock are refused).
 *
 * Flow control is credit based both ways (5.10.6.3): every packet carries the sender's
 * buf_alloc and fwd_cnt. Guest to host, the device keeps a buffer of VSOCK_BUF_ALLOC bytes
 * per connection and advertises exactly that: a guest that sends beyond its credit has its
 * connection reset. Host to guest, the device reads a host socket only when the guest has both
 * credit and a receive buffer, straight into that buffer: nothing is queued for the guest but
 * control packets (a few flags per connection, and a bounded ring of resets for packets that
 * name no connection).
 *
 * Everything in a guest header is hostile: a packet whose CIDs are not (guest, host) is
 * dropped; a len beyond the chain or VSOCK_MAX_PKT is dropped; an unknown op or type, or a
 * packet for a connection in the wrong state, is answered with RST. All queue and connection
 * work runs on the backend's thread; a hart's notify only kicks it. */
#ifndef VESSEL_DEV_VIRTIO_VSOCK_H
#define VESSEL_DEV_VIRTIO_VSOCK_H
#include "backend/vsock/vsock.h"
#include "dev/virtio/mmio.h"

#define VIRTIO_ID_VSOCK 19

/* struct virtio_vsock_hdr (5.10.6), 44 bytes, little endian */
#define VSOCK_HDR_LEN     44
#define VSOCK_TYPE_STREAM 1
enum {
    VSOCK_OP_INVALID = 0,
    VSOCK_OP_REQUEST = 1,
    VSOCK_OP_RESPONSE = 2,
    VSOCK_OP_RST = 3,
    VSOCK_OP_SHUTDOWN = 4,
    VSOCK_OP_RW = 5,
    VSOCK_OP_CREDIT_UPDATE = 6,
    VSOCK_OP_CREDIT_REQUEST = 7,
};
#define VSOCK_SHUTDOWN_RCV  1
#define VSOCK_SHUTDOWN_SEND 2

#define VSOCK_BUF_ALLOC (128u * 1024) /* per connection, guest to host */
#define VSOCK_MAX_PKT   (64u * 1024)  /* payload of one packet either way */
#define VSOCK_RST_RING  64            /* resets owed for packets that name no connection */

struct vsock_hdr {
    uint64_t src_cid, dst_cid;
    uint32_t src_port, dst_port, len;
    uint16_t type, op;
    uint32_t flags, buf_alloc, fwd_cnt;
};
void vsock_hdr_decode(const uint8_t b[VSOCK_HDR_LEN], struct vsock_hdr *h);
void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t b[VSOCK_HDR_LEN]);

/* Bytes the peer can take now: its buf_alloc less what was sent and it has not yet forwarded
 * (0 if the peer's numbers are inconsistent). */
static inline uint32_t vsock_credit(uint32_t peer_buf_alloc, uint32_t peer_fwd_cnt, uint32_t tx_cnt)
{
    uint32_t in_flight = tx_cnt - peer_fwd_cnt; /* wraps like the counters */
    return in_flight > peer_buf_alloc ? 0 : peer_buf_alloc - in_flight;
}

struct vsock_dev;
/* b: the backend, attached now and detached by vsock_dev_destroy (not closed). */
struct vsock_dev *vsock_dev_create(struct vsock_backend *b, uint32_t guest_cid,
                                   const struct guest_mem *gm, struct irq_line irq);
void vsock_dev_destroy(struct vsock_dev *d);
struct virtio_mmio *vsock_dev_transport(struct vsock_dev *d);

struct vsock_stats {
    uint64_t rx_pkts, tx_pkts, tx_dropped, rst_sent, rst_dropped, credit_violations, malformed;
    uint64_t conns_opened, conns_refused;
    unsigned conns; /* now */
};
void vsock_dev_get_stats(struct vsock_dev *d, struct vsock_stats *s);
#endif

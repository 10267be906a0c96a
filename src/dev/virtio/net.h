/* virtio-net (virtio 1.x spec 5.1) on a network backend (backend/net/net.h): one receive and
 * one transmit queue, the MAC in configuration space, link status (always up), mergeable
 * receive buffers, and checksum offload both ways without segmentation offloads:
 *   VIRTIO_NET_F_CSUM       the guest may leave a TCP/UDP checksum for the device, which
 *                           completes it before the frame leaves (libslirp wants whole frames);
 *   VIRTIO_NET_F_GUEST_CSUM frames for the guest carry DATA_VALID: the backend built or checked
 *                           them whole (libslirp computes every checksum itself).
 * All queue work runs on the backend's thread: a guest notify only kicks it, so a hart never
 * waits for the network. Frames for the guest that find no buffers wait in a bounded list
 * (VNET_RX_PENDING) and are dropped beyond it, as a full NIC ring drops; a frame never takes
 * buffers it does not fill (they go back to the ring). A malformed ring puts the device into
 * NEEDS_RESET; a bad frame (length, offload header) is dropped and counted. */
#ifndef VESSEL_DEV_VIRTIO_NET_H
#define VESSEL_DEV_VIRTIO_NET_H
#include "backend/net/net.h"
#include "dev/virtio/mmio.h"

#define VIRTIO_ID_NET 1

/* feature bits (5.1.3) */
#define VIRTIO_NET_F_CSUM       0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC        5
#define VIRTIO_NET_F_MRG_RXBUF  15
#define VIRTIO_NET_F_MTU        3
#define VIRTIO_NET_F_STATUS     16
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN  9
#define VIRTIO_NET_F_HOST_TSO4  11
#define VIRTIO_NET_F_HOST_TSO6  12
#define VIRTIO_NET_F_HOST_ECN   13

#define VIRTIO_NET_S_LINK_UP 1

/* struct virtio_net_hdr (5.1.6), 12 bytes with VIRTIO_F_VERSION_1 */
#define VIRTIO_NET_HDR_LEN          12
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE     0
#define VIRTIO_NET_HDR_GSO_TCPV4    1
#define VIRTIO_NET_HDR_GSO_TCPV6    4
#define VIRTIO_NET_HDR_GSO_ECN      0x80

#define VNET_RX_PENDING 128 /* frames kept for a guest that has no receive buffers */

struct vnet;
/* nb: the backend, attached now and detached by vnet_destroy (not closed). NULL on OOM. */
struct vnet *vnet_create(struct net_backend *nb, const uint8_t mac[6], const struct guest_mem *gm,
                         struct irq_line irq);
void vnet_destroy(struct vnet *d);
struct virtio_mmio *vnet_transport(struct vnet *d);

struct vnet_stats {
    uint64_t rx_frames, rx_dropped, rx_too_small, rx_bad_buffers;
    uint64_t tx_frames, tx_bad, malformed;
    unsigned rx_pending; /* now */
};
void vnet_get_stats(struct vnet *d, struct vnet_stats *s);
#endif

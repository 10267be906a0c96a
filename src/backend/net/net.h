/* Network backends: what a virtio-net device talks to on the host (DESIGN.md: a device model
 * never opens a socket). One backend serves one device at a time and outlives it: the VM opens
 * it before the first machine and keeps it (host port forwards, connections) across guest
 * reboots; each machine's device attaches and detaches.
 *
 * Threading contract: every backend has its own thread. The device's callbacks (struct
 * net_client) run on that thread only, one at a time, so a hart thread never waits for the
 * network and never makes a socket call: a hart that is kicked by the guest calls
 * net_backend_kick(), which only wakes the backend thread (one eventfd write). */
#ifndef VESSEL_BACKEND_NET_NET_H
#define VESSEL_BACKEND_NET_NET_H
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest MTU a backend offers (user networking's default, as passt's: the guest's TCP
 * sends and receives 64 KiB segments, so its stack, which runs emulated, handles a fortieth of
 * the packets it would at 1500), and the largest Ethernet frame either way: that MTU plus the
 * 14-byte header. Frames the guest sends beyond its backend's MTU are dropped. */
#define NET_MTU_MAX       65520
#define NET_MTU_MIN       576 /* IPv4's minimum datagram (IPv6 needs 1280: a guest then has none) */
#define NET_MTU_DEFAULT   1500
#define NET_FRAME_MAX     (NET_MTU_MAX + 14)
/* The largest frame a guest hands a backend that segments (net_backend.tso): an IP packet of
 * up to 64 KiB, its Ethernet header and a VLAN tag. */
#define NET_GSO_FRAME_MAX (65535 + 14 + 4)
#define NET_FRAME_MIN     14 /* an Ethernet header */

struct net_client {
    /* A frame for the guest (len <= NET_FRAME_MAX). The device copies it before returning. */
    void (*receive)(void *ctx, const uint8_t *frame, size_t len);
    /* A tso backend with offloads set (set_offload): the frame (len <= NET_GSO_FRAME_MAX)
     * with the host's virtio-net header, which may ask for what the guest took on (a
     * checksum to complete, a large TCP segment). */
    void (*receive_hdr)(void *ctx, const uint8_t hdr[12], const uint8_t *frame, size_t len);
    /* net_backend_kick() was called: move the device's work forward (its tx queue, frames
     * waiting for rx buffers), sending with net_backend_send(). */
    void (*run)(void *ctx);
    void *ctx;
};

struct net_backend;
struct net_backend_ops {
    void (*attach)(struct net_backend *b, const struct net_client *c);
    void (*kick)(struct net_backend *b);
    void (*send)(struct net_backend *b, const uint8_t *frame, size_t len);
    void (*close)(struct net_backend *b);
    /* Only where tso is set: the frame with the guest's 12-byte header. */
    void (*send_hdr)(struct net_backend *b, const uint8_t hdr[12], const uint8_t *frame,
                     size_t len);
    /* Only where tso is set, on the backend thread (from run()): what frames for the guest may
     * leave to it (NET_OFFLOAD_*: the guest's negotiated GUEST_CSUM/TSO4/TSO6/ECN); 0 (the
     * default): complete frames of at most the MTU, through receive(). */
    void (*set_offload)(struct net_backend *b, unsigned flags);
};
struct net_backend {
    const struct net_backend_ops *ops;
    /* The largest IP packet either way (NET_MTU_MIN..NET_MTU_MAX): user networking's mtu=
     * (default NET_MTU_MAX), a tap's interface MTU. The device offers it to the guest
     * (VIRTIO_NET_F_MTU) and drops longer frames. */
    unsigned mtu;
    /* send_hdr() takes the guest's virtio-net header (virtio 1.x 5.1.6, 12 bytes) with the
     * frame, and the host does what it asks: the checksum, and TCP segmentation of frames up
     * to NET_GSO_FRAME_MAX (a tap opened with IFF_VNET_HDR: the kernel checks the header as
     * it checks vhost's). The device then offers the guest HOST_TSO4/TSO6/ECN. */
    bool tso;
};

/* Attach c (copied), or detach with NULL. Any thread but the backend's; when it returns no
 * callback of the previous client runs or will run. */
static inline void net_backend_attach(struct net_backend *b, const struct net_client *c)
{
    b->ops->attach(b, c);
}
/* Ask for the client's run() on the backend thread soon. Any thread; never blocks. */
static inline void net_backend_kick(struct net_backend *b)
{
    b->ops->kick(b);
}
/* A frame from the guest to the network. Backend thread only (from run()); may call
 * receive() before it returns (an ARP or ICMP answer). */
static inline void net_backend_send(struct net_backend *b, const uint8_t *frame, size_t len)
{
    b->ops->send(b, frame, len);
}
#define NET_OFFLOAD_CSUM 1u
#define NET_OFFLOAD_TSO4 2u
#define NET_OFFLOAD_TSO6 4u
#define NET_OFFLOAD_ECN  8u
static inline void net_backend_set_offload(struct net_backend *b, unsigned flags)
{
    b->ops->set_offload(b, flags);
}
static inline void net_backend_send_hdr(struct net_backend *b, const uint8_t hdr[12],
                                        const uint8_t *frame, size_t len)
{
    b->ops->send_hdr(b, hdr, frame, len);
}
void net_backend_close(struct net_backend *b); /* NULL: nothing */

/* ---- configuration: --net and --mac ---- */

#define NET_MAX_HOSTFWD 16
enum net_kind { NET_NONE = 0, NET_USER, NET_TAP };

struct net_hostfwd {
    bool udp;
    struct in_addr host_addr;  /* INADDR_ANY when not given (as QEMU) */
    uint16_t host_port;        /* 1..65535 */
    struct in_addr guest_addr; /* 0: the guest's DHCP address, 10.0.2.15 */
    uint16_t guest_port;
};

struct net_spec {
    enum net_kind kind;
    bool restrict_; /* restrict=on: the guest reaches nothing outside, only forwards in */
    bool ipv6;      /* on unless ipv6=off */
    unsigned mtu;   /* NET_USER: mtu=N, NET_MTU_MIN..NET_MTU_MAX; 0: NET_MTU_MAX */
    unsigned nfwd;
    struct net_hostfwd fwd[NET_MAX_HOSTFWD];
    char ifname[16]; /* NET_TAP: the interface (IFNAMSIZ - 1 characters at most) */
};

/* "none", "user[,hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT]...
 * [,restrict=on|off][,ipv6=on|off][,mtu=N]" or "tap,ifname=NAME". 0, or -EINVAL with one line in
 * err. */
int net_spec_parse(const char *s, struct net_spec *out, char *err, size_t errlen);
/* --publish [ADDR:]HOSTPORT:GUESTPORT[/tcp|/udp]: a host forward added to s (user-mode
 * networking; ADDR defaults to 127.0.0.1, so a published port is not open to the network
 * unless asked). s of kind NET_NONE becomes NET_USER. 0, or -EINVAL with one line in err. */
int net_spec_add_publish(struct net_spec *s, const char *arg, char *err, size_t errlen);
/* The canonical --net string of s (what net_spec_parse reads back to the same spec). 0, or
 * -ENAMETOOLONG when it does not fit in len. */
int net_spec_format(const struct net_spec *s, char *buf, size_t len);
/* "52:54:00:12:34:56": a unicast address (multicast bit clear, not all zero). 0 or -EINVAL. */
int net_mac_parse(const char *s, uint8_t mac[6]);
/* 52:54:00 (QEMU's locally administered prefix) and three random bytes. */
void net_mac_generate(uint8_t mac[6]);

/* Open the backend of spec (NET_USER: libslirp, NET_TAP: an existing tap) and start its
 * thread. Host forwards bind their
 * listening sockets here (before the sandbox). 0, or -errno with one line in err (a host port
 * already in use: -EADDRINUSE). */
int net_backend_open(struct net_backend **out, const struct net_spec *spec, char *err,
                     size_t errlen);
#endif

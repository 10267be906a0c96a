/* User-mode networking on libslirp (net.h): QEMU's default addresses, network 10.0.2.0/24,
 * the host as 10.0.2.2, DNS at 10.0.2.3, the guest's DHCP address 10.0.2.15; IPv6 fec0::/64
 * (host fec0::2, DNS fec0::3). One thread per backend polls libslirp's sockets and the kick
 * eventfd; libslirp is used from that thread only (it is not thread-safe). */
#ifndef VESSEL_BACKEND_NET_SLIRP_H
#define VESSEL_BACKEND_NET_SLIRP_H
#include "backend/net/net.h"

int net_slirp_open(struct net_backend **out, const struct net_spec *spec, char *err, size_t errlen);

/* DNS at 10.0.2.3 without libslirp's resolver lookup: libslirp reads /etc/resolv.conf when the
 * guest's first query arrives, which the sandbox forbids. So the backend reads it before the
 * sandbox and rewrites the guest's DNS packets itself: to_net, a frame from the guest to
 * `virt`:53 (UDP or TCP) is sent to `real` instead; !to_net, a frame from `real`:53 to the
 * guest comes from `virt`. IPv4 only; the IP and transport checksums are updated (RFC 1624);
 * fragments after the first (no ports) follow their addresses. Returns true if the frame was
 * rewritten (in place; len bytes, all checked). */
bool net_dns_nat(uint8_t *frame, size_t len, bool to_net, struct in_addr virt, struct in_addr real);
/* The first IPv4 nameserver of a resolv.conf text usable from the guest: a routable address
 * as is, 127.0.0.1 as 10.0.2.2 (libslirp's way to the host's loopback). 0 or -ENOENT. */
int net_dns_pick(const char *resolv_conf, struct in_addr *out);
#endif

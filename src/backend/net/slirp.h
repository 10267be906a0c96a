/* User-mode networking on libslirp (net.h): QEMU's default addresses, network 10.0.2.0/24,
 * the host as 10.0.2.2, DNS at 10.0.2.3, the guest's DHCP address 10.0.2.15; IPv6 fec0::/64
 * (host fec0::2, DNS fec0::3). One thread per backend polls libslirp's sockets and the kick
 * eventfd; libslirp is used from that thread only (it is not thread-safe). */
#ifndef VESSEL_BACKEND_NET_SLIRP_H
#define VESSEL_BACKEND_NET_SLIRP_H
#include "backend/net/net.h"

int net_slirp_open(struct net_backend **out, const struct net_spec *spec, char *err, size_t errlen);
#endif

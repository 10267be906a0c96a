/* tap backend (net.h): frames go to and come from a Linux tap interface the user made (and
 * usually bridged): `ip tuntap add NAME mode tap user USER`. Opened (TUNSETIFF) before the
 * sandbox; the backend thread then only polls, reads and writes the descriptor. No vnet
 * header: frames are whole both ways (the device completes checksums). */
#ifndef VESSEL_BACKEND_NET_TAP_H
#define VESSEL_BACKEND_NET_TAP_H
#include "backend/net/net.h"

int net_tap_open(struct net_backend **out, const struct net_spec *spec, char *err, size_t errlen);
#endif

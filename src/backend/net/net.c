/* Network backend selection (net.h). */
#include "backend/net/net.h"
#include "backend/net/slirp.h"
#include "backend/net/tap.h"
#include "util/err.h"
#include <errno.h>

int net_backend_open(struct net_backend **out, const struct net_spec *spec, char *err,
                     size_t errlen)
{
    *out = NULL;
    switch (spec->kind) {
    case NET_USER: return net_slirp_open(out, spec, err, errlen);
    case NET_TAP: return net_tap_open(out, spec, err, errlen);
    case NET_NONE: break;
    }
    return err_set(err, errlen, -EINVAL, "no network backend for --net none");
}

void net_backend_close(struct net_backend *b)
{
    if (b) b->ops->close(b);
}

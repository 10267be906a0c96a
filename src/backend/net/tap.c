/* tap backend (tap.h). The thread polls the tap descriptor and the kick eventfd; `client_lock`
 * is held around the client's callbacks, never across poll (as slirp.c). */
#include "backend/net/tap.h"
#include "util/err.h"
#include "util/log.h"
#include "util/ratelimit.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#define RX_BATCH   64 /* frames read per round before the device's transmit work gets a turn */
#define VIRTIO_HDR 12 /* struct virtio_net_hdr_v1 */

struct tap_backend {
    struct net_backend base;
    int fd, evfd;
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    pthread_mutex_t client_lock;
    struct net_client client;
    bool has_client;
    /* IFF_VNET_HDR: every frame read or written starts with a 12-byte virtio-net header
     * (TUNSETVNETHDRSZ). No TUNSETOFFLOAD: the kernel checksums and segments what it hands
     * us, so the header of a frame read is only skipped. */
    bool vnet_hdr;
    bool offload; /* TUNSETOFFLOAD set something: frames go to receive_hdr with their header */
    /* one byte over the largest frame: a read that fills it was cut short, and is dropped */
    uint8_t buf[VIRTIO_HDR + NET_GSO_FRAME_MAX + 1];
};

static void tap_kick(struct net_backend *nb)
{
    struct tap_backend *b = (struct tap_backend *)nb;
    uint64_t one = 1;
    ssize_t w = write(b->evfd, &one, sizeof(one));
    (void)w;
}

static void *tap_thread(void *arg)
{
    struct tap_backend *b = arg;
    while (!atomic_load(&b->stop)) {
        struct pollfd p[2] = {{.fd = b->evfd, .events = POLLIN}, {.fd = b->fd, .events = POLLIN}};
        int n = poll(p, 2, -1);
        if (n < 0) {
            if (errno != EINTR) log_error_ratelimited("tap: poll: %s", strerror(errno));
            continue;
        }
        pthread_mutex_lock(&b->client_lock);
        if (p[0].revents & POLLIN) {
            uint64_t v;
            ssize_t r = read(b->evfd, &v, sizeof(v));
            (void)r;
            if (b->has_client) b->client.run(b->client.ctx);
        }
        if (p[1].revents & (POLLIN | POLLERR | POLLHUP)) {
            for (unsigned i = 0; i < RX_BATCH; i++) {
                ssize_t len = read(b->fd, b->buf, sizeof(b->buf));
                if (len < 0) {
                    if (errno != EAGAIN && errno != EINTR)
                        log_warn_ratelimited("tap: read: %s", strerror(errno));
                    break;
                }
                /* a tap's frames are its MTU plus the header (or, with offloads, up to a 64 KiB
                 * TCP segment); anything else is dropped */
                size_t skip = b->vnet_hdr ? VIRTIO_HDR : 0;
                if (b->has_client && b->offload && b->client.receive_hdr) {
                    if ((size_t)len >= skip + NET_FRAME_MIN &&
                        (size_t)len <= skip + NET_GSO_FRAME_MAX)
                        b->client.receive_hdr(b->client.ctx, b->buf, b->buf + skip,
                                              (size_t)len - skip);
                } else if (b->has_client && (size_t)len >= skip + NET_FRAME_MIN &&
                           (size_t)len <= skip + NET_FRAME_MAX) {
                    b->client.receive(b->client.ctx, b->buf + skip, (size_t)len - skip);
                }
            }
        }
        pthread_mutex_unlock(&b->client_lock);
    }
    return NULL;
}

static void tap_attach(struct net_backend *nb, const struct net_client *c)
{
    struct tap_backend *b = (struct tap_backend *)nb;
    pthread_mutex_lock(&b->client_lock);
    b->has_client = c != NULL;
    if (c) b->client = *c;
    pthread_mutex_unlock(&b->client_lock);
    if (c) tap_kick(nb);
}

static void tap_send_hdr(struct net_backend *nb, const uint8_t hdr[12], const uint8_t *frame,
                         size_t len)
{
    struct tap_backend *b = (struct tap_backend *)nb;
    uint8_t h[VIRTIO_HDR];
    memcpy(h, hdr, VIRTIO_HDR);
    h[10] = h[11] = 0; /* num_buffers: receive only */
    struct iovec v[2] = {{h, VIRTIO_HDR}, {(void *)frame, len}};
    /* Non-blocking: a full tap queue (the host does not read) drops the frame, as a wire
     * would; the backend thread never waits on the host's network stack. A header the kernel
     * refuses (EINVAL: the guest's) drops the frame too. */
    if (writev(b->fd, v, 2) < 0 && errno != EAGAIN)
        log_warn_ratelimited("tap: write: %s", strerror(errno));
}

static void tap_set_offload(struct net_backend *nb, unsigned flags)
{
    struct tap_backend *b = (struct tap_backend *)nb;
    if (!b->vnet_hdr) return;
    unsigned t = 0;
    if (flags & NET_OFFLOAD_CSUM) t |= TUN_F_CSUM;
    if ((flags & NET_OFFLOAD_CSUM) && (flags & NET_OFFLOAD_TSO4)) t |= TUN_F_TSO4;
    if ((flags & NET_OFFLOAD_CSUM) && (flags & NET_OFFLOAD_TSO6)) t |= TUN_F_TSO6;
    if ((t & (TUN_F_TSO4 | TUN_F_TSO6)) && (flags & NET_OFFLOAD_ECN)) t |= TUN_F_TSO_ECN;
    /* on the backend thread, between reads: the next frame read is of the new kind */
    if (ioctl(b->fd, TUNSETOFFLOAD, t) < 0) {
        log_warn_ratelimited("tap: TUNSETOFFLOAD: %s", strerror(errno));
        t = 0;
        if (ioctl(b->fd, TUNSETOFFLOAD, 0) < 0) return;
    }
    b->offload = t != 0;
}

static void tap_send(struct net_backend *nb, const uint8_t *frame, size_t len)
{
    struct tap_backend *b = (struct tap_backend *)nb;
    if (b->vnet_hdr) {
        static const uint8_t none[VIRTIO_HDR];
        tap_send_hdr(nb, none, frame, len);
    } else if (write(b->fd, frame, len) < 0 && errno != EAGAIN) {
        log_warn_ratelimited("tap: write: %s", strerror(errno));
    }
}

static void tap_close(struct net_backend *nb)
{
    struct tap_backend *b = (struct tap_backend *)nb;
    if (b->thread_started) {
        atomic_store(&b->stop, true);
        tap_kick(nb);
        pthread_join(b->thread, NULL);
    }
    if (b->fd >= 0) close(b->fd);
    if (b->evfd >= 0) close(b->evfd);
    pthread_mutex_destroy(&b->client_lock);
    free(b);
}

static const struct net_backend_ops tap_ops = {
    .attach = tap_attach,
    .kick = tap_kick,
    .send = tap_send,
    .send_hdr = tap_send_hdr,
    .set_offload = tap_set_offload,
    .close = tap_close,
};

int net_tap_open(struct net_backend **out, const struct net_spec *spec, char *err, size_t errlen)
{
    const char *name = spec->ifname;
    /* An existing interface only: vessel does not create network interfaces behind the
     * user's back (and one made here would vanish with the VM). */
    char sys[64];
    snprintf(sys, sizeof(sys), "/sys/class/net/%s", name);
    if (access(sys, F_OK) != 0)
        return err_set(err, errlen, -ENODEV,
                       "--net tap,ifname=%s: no such interface (create it: ip tuntap add %s "
                       "mode tap user $USER)",
                       name, name);
    struct tap_backend *b = calloc(1, sizeof(*b));
    if (!b) return err_set(err, errlen, -ENOMEM, "out of memory for the network backend");
    b->base.ops = &tap_ops;
    b->evfd = -1;
    pthread_mutex_init(&b->client_lock, NULL);
    int r;
    b->fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (b->fd < 0 && (errno == EACCES || errno == EPERM)) {
        r = err_set(err, errlen, -EPERM,
                    "--net tap,ifname=%s: not permitted to open /dev/net/tun (needs "
                    "CAP_NET_ADMIN or access to /dev/net/tun, and a tap owned by this user)",
                    name);
        goto fail;
    }
    if (b->fd < 0) {
        r = err_set(err, errlen, errno == ENOENT ? -ENODEV : -errno,
                    "--net tap,ifname=%s: /dev/net/tun: %s", name, strerror(errno));
        goto fail;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    memcpy(ifr.ifr_name, name, strlen(name)); /* net_spec_parse bounds it to IFNAMSIZ - 1 */
    int hsz = VIRTIO_HDR;
    if (ioctl(b->fd, TUNSETIFF, &ifr) == 0 && ioctl(b->fd, TUNSETVNETHDRSZ, &hsz) == 0) {
        b->vnet_hdr = b->base.tso = true;
    } else {
        /* a kernel without virtio-net headers on taps: plain frames, no offloads */
        close(b->fd);
        b->fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
        ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    }
    if (!b->vnet_hdr && (b->fd < 0 || ioctl(b->fd, TUNSETIFF, &ifr) < 0)) {
        int e = errno;
        if (e == EPERM || e == EACCES)
            r = err_set(err, errlen, -EPERM,
                        "--net tap,ifname=%s: not permitted (needs CAP_NET_ADMIN, or a tap "
                        "owned by this user: ip tuntap add %s mode tap user $USER)",
                        name, name);
        else if (e == EBUSY)
            r = err_set(err, errlen, -EBUSY, "--net tap,ifname=%s: in use by another process",
                        name);
        else if (e == EINVAL)
            r = err_set(err, errlen, -EINVAL, "--net tap,ifname=%s: not a tap interface", name);
        else
            r = err_set(err, errlen, -e, "--net tap,ifname=%s: %s", name, strerror(e));
        goto fail;
    }
    /* the guest gets the interface's MTU (a bridge's members share one) */
    b->base.mtu = NET_MTU_DEFAULT;
    int sk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sk >= 0) {
        struct ifreq mr;
        memset(&mr, 0, sizeof(mr));
        memcpy(mr.ifr_name, name, strlen(name));
        if (ioctl(sk, SIOCGIFMTU, &mr) == 0 && mr.ifr_mtu >= NET_MTU_MIN)
            b->base.mtu = mr.ifr_mtu > NET_MTU_MAX ? NET_MTU_MAX : (unsigned)mr.ifr_mtu;
        close(sk);
    }
    b->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (b->evfd < 0) {
        r = err_set(err, errlen, -errno, "network backend: %s", strerror(errno));
        goto fail;
    }
    if (pthread_create(&b->thread, NULL, tap_thread, b) != 0) {
        r = err_set(err, errlen, -EAGAIN, "cannot start the network thread");
        goto fail;
    }
    b->thread_started = true;
    *out = &b->base;
    return 0;
fail:
    tap_close(&b->base);
    return r;
}

/* libslirp backend (slirp.h). The thread loop: let libslirp add its sockets to a poll set
 * (slirp_pollfds_fill) next to the kick eventfd, poll with libslirp's timeout bounded by the
 * next timer, then let the client run (its transmit queue), let libslirp handle what became
 * ready (slirp_pollfds_poll: frames for the guest come back through send_packet) and fire due
 * timers. `client_lock` is held around all of that except the poll itself, so attach/detach
 * from another thread waits at most one round of work, never a poll. */
#include "backend/net/slirp.h"
#include "util/err.h"
#include "util/log.h"
#include "util/ratelimit.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <slirp/libslirp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_TIMERS    8    /* libslirp 4.7 makes one (IPv6 router advertisements) */
#define POLL_MAX_MS   1000 /* libslirp's own upper bound */
#define POLL_SET_INIT 32

struct sl_timer {
    bool used, armed, by_id;
    int64_t expire_ms;
    SlirpTimerCb cb;
    SlirpTimerId id;
    void *cb_opaque;
};

struct sl_backend {
    struct net_backend base;
    bool dns_nat; /* the guest's DNS goes to dns_real (net_dns_nat) */
    struct in_addr dns_virt, dns_real;
    /* DNS frames being rewritten, to the guest and from it (backend thread only; two, since
     * slirp_input may answer through cb_send_packet while the guest's frame is in use) */
    uint8_t natbuf[NET_FRAME_MAX], txnatbuf[NET_FRAME_MAX];
    Slirp *slirp;
    int evfd;
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    pthread_mutex_t client_lock; /* the client, and the thread's round of work */
    struct net_client client;
    bool has_client;
    struct pollfd *pfd; /* the thread's poll set: [0] is evfd */
    unsigned npfd, cap;
    struct sl_timer timers[MAX_TIMERS];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- libslirp callbacks (all on the backend thread, but set-up and close) ---- */

/* ---- DNS (slirp.h: net_dns_nat) ---- */

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') for a 32-bit field changed from m to m'. */
static uint16_t csum_adjust(uint16_t hc, uint32_t m, uint32_t mn)
{
    uint32_t s = (uint16_t)~hc;
    s += (uint16_t) ~(m >> 16) + (uint16_t)~m;
    s += (mn >> 16) + (mn & 0xffff);
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

bool net_dns_nat(uint8_t *f, size_t len, bool to_net, struct in_addr virt, struct in_addr real)
{
    if (len < 14 + 20 || rd16(f + 12) != 0x0800) return false;
    uint8_t *ip = f + 14;
    size_t ihl = (size_t)(ip[0] & 15) * 4, tot = rd16(ip + 2);
    if ((ip[0] >> 4) != 4 || ihl < 20 || tot < ihl || tot > len - 14) return false;
    uint8_t proto = ip[9];
    if (proto != 17 && proto != 6) return false;
    uint8_t *addr = ip + (to_net ? 16 : 12); /* destination to the net, source to the guest */
    uint32_t match = ntohl(to_net ? virt.s_addr : real.s_addr);
    uint32_t repl = ntohl(to_net ? real.s_addr : virt.s_addr);
    uint32_t a =
        (uint32_t)addr[0] << 24 | (uint32_t)addr[1] << 16 | (uint32_t)addr[2] << 8 | addr[3];
    if (a != match) return false;
    bool first = (rd16(ip + 6) & 0x1fff) == 0; /* fragment offset 0: the transport header */
    uint8_t *th = ip + ihl;
    size_t tlen = tot - ihl;
    if (first) {
        if (tlen < (proto == 17 ? 8u : 20u)) return false;
        if (rd16(th + (to_net ? 2 : 0)) != 53) return false; /* port 53 only */
    }
    wr16(ip + 10, csum_adjust(rd16(ip + 10), a, repl));
    if (first) {
        /* the address is in the pseudo-header of both checksums */
        uint8_t *cs = th + (proto == 17 ? 6 : 16);
        uint16_t old = rd16(cs);
        if (proto == 6 || old != 0) { /* UDP checksum 0: none (RFC 768) */
            uint16_t n = csum_adjust(old, a, repl);
            if (proto == 17 && n == 0) n = 0xffff;
            wr16(cs, n);
        }
    }
    addr[0] = (uint8_t)(repl >> 24);
    addr[1] = (uint8_t)(repl >> 16);
    addr[2] = (uint8_t)(repl >> 8);
    addr[3] = (uint8_t)repl;
    return true;
}

int net_dns_pick(const char *text, struct in_addr *out)
{
    const char *p = text;
    while (p && *p) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        char line[256];
        if (n < sizeof(line)) {
            memcpy(line, p, n);
            line[n] = 0;
            char addr[64];
            struct in_addr a;
            if (sscanf(line, " nameserver %63s", addr) == 1 && inet_pton(AF_INET, addr, &a) == 1) {
                uint32_t h = ntohl(a.s_addr);
                if (h == 0x7f000001) { /* the host's loopback: libslirp's 10.0.2.2 */
                    inet_pton(AF_INET, "10.0.2.2", out);
                    return 0;
                }
                if ((h >> 24) != 127 && h != 0) {
                    *out = a;
                    return 0;
                }
            }
        }
        p = eol ? eol + 1 : NULL;
    }
    return -ENOENT;
}

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
    struct sl_backend *b = opaque;
    /* client_lock is held: this runs inside slirp_input or slirp_pollfds_poll. */
    if (!b->has_client || len < NET_FRAME_MIN || len > NET_FRAME_MAX) return (ssize_t)len;
    if (b->dns_nat) {
        memcpy(b->natbuf, buf, len);
        if (net_dns_nat(b->natbuf, len, false, b->dns_virt, b->dns_real)) buf = b->natbuf;
    }
    b->client.receive(b->client.ctx, buf, len);
    return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
    (void)opaque;
    log_debug("slirp: guest error: %s", msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
    (void)opaque;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct sl_timer *timer_alloc(struct sl_backend *b)
{
    for (unsigned i = 0; i < MAX_TIMERS; i++)
        if (!b->timers[i].used) {
            b->timers[i] = (struct sl_timer){.used = true};
            return &b->timers[i];
        }
    log_warn("slirp: more than %d timers asked for; one is not kept", MAX_TIMERS);
    return NULL;
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
    struct sl_timer *t = timer_alloc(opaque);
    if (t) {
        t->cb = cb;
        t->cb_opaque = cb_opaque;
    }
    return t;
}

static void *cb_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
    struct sl_timer *t = timer_alloc(opaque);
    if (t) {
        t->by_id = true;
        t->id = id;
        t->cb_opaque = cb_opaque;
    }
    return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
    (void)opaque;
    struct sl_timer *t = timer;
    if (t) *t = (struct sl_timer){0};
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
    (void)opaque;
    struct sl_timer *t = timer;
    if (!t) return;
    t->expire_ms = expire_ms; /* on cb_clock_get_ns's clock, in ms */
    t->armed = true;
}

static void cb_register_poll_fd(int fd, void *opaque)
{
    /* The poll set is rebuilt every round from slirp_pollfds_fill. */
    (void)fd;
    (void)opaque;
}

static void cb_notify(void *opaque)
{
    struct sl_backend *b = opaque;
    uint64_t one = 1;
    ssize_t w = write(b->evfd, &one, sizeof(one));
    (void)w;
}

static int cb_add_poll(int fd, int events, void *opaque)
{
    struct sl_backend *b = opaque;
    if (b->npfd == b->cap) {
        unsigned cap = b->cap * 2;
        struct pollfd *p = realloc(b->pfd, cap * sizeof(*p));
        if (!p) return -1; /* this socket is not polled this round; libslirp copes */
        b->pfd = p;
        b->cap = cap;
    }
    short ev = 0;
    if (events & SLIRP_POLL_IN) ev |= POLLIN;
    if (events & SLIRP_POLL_OUT) ev |= POLLOUT;
    if (events & SLIRP_POLL_PRI) ev |= POLLPRI;
    b->pfd[b->npfd] = (struct pollfd){.fd = fd, .events = ev};
    return (int)b->npfd++;
}

static int cb_get_revents(int idx, void *opaque)
{
    struct sl_backend *b = opaque;
    if (idx < 1 || (unsigned)idx >= b->npfd) return 0;
    short re = b->pfd[idx].revents;
    int r = 0;
    if (re & POLLIN) r |= SLIRP_POLL_IN;
    if (re & POLLOUT) r |= SLIRP_POLL_OUT;
    if (re & POLLPRI) r |= SLIRP_POLL_PRI;
    if (re & POLLERR) r |= SLIRP_POLL_ERR;
    if (re & POLLHUP) r |= SLIRP_POLL_HUP;
    return r;
}

static const SlirpCb callbacks = {
    .send_packet = cb_send_packet,
    .guest_error = cb_guest_error,
    .clock_get_ns = cb_clock_get_ns,
    .timer_new = cb_timer_new,
    .timer_free = cb_timer_free,
    .timer_mod = cb_timer_mod,
    .register_poll_fd = cb_register_poll_fd,
    .unregister_poll_fd = cb_register_poll_fd,
    .notify = cb_notify,
    .timer_new_opaque = cb_timer_new_opaque,
};

/* ---- the thread ---- */

/* Caller holds client_lock. Fire due timers; returns ms until the next one (or max_ms). */
static uint32_t run_timers(struct sl_backend *b, uint32_t max_ms)
{
    int64_t now = now_ms();
    uint32_t next = max_ms;
    for (unsigned i = 0; i < MAX_TIMERS; i++) {
        struct sl_timer *t = &b->timers[i];
        if (!t->used || !t->armed) continue;
        if (t->expire_ms <= now) {
            t->armed = false;
            if (t->by_id)
                slirp_handle_timer(b->slirp, t->id, t->cb_opaque);
            else if (t->cb)
                t->cb(t->cb_opaque);
            continue;
        }
        if ((uint64_t)(t->expire_ms - now) < next) next = (uint32_t)(t->expire_ms - now);
    }
    return next;
}

static void *sl_thread(void *arg)
{
    struct sl_backend *b = arg;
    while (!atomic_load(&b->stop)) {
        pthread_mutex_lock(&b->client_lock);
        uint32_t timeout = run_timers(b, POLL_MAX_MS);
        b->npfd = 1;
        b->pfd[0] = (struct pollfd){.fd = b->evfd, .events = POLLIN};
        slirp_pollfds_fill(b->slirp, &timeout, cb_add_poll, b);
        pthread_mutex_unlock(&b->client_lock);

        int n = poll(b->pfd, b->npfd, (int)timeout);
        if (n < 0 && errno != EINTR) {
            log_error_ratelimited("slirp: poll: %s", strerror(errno));
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }

        pthread_mutex_lock(&b->client_lock);
        if (n > 0 && (b->pfd[0].revents & POLLIN)) {
            uint64_t v;
            ssize_t r = read(b->evfd, &v, sizeof(v));
            (void)r;
        }
        /* The device's transmit queue first, then what the sockets have for the guest. A
         * spurious run (no kick) costs one look at an empty ring. */
        if (b->has_client && n > 0 && (b->pfd[0].revents & POLLIN)) b->client.run(b->client.ctx);
        slirp_pollfds_poll(b->slirp, n < 0, cb_get_revents, b);
        run_timers(b, POLL_MAX_MS);
        pthread_mutex_unlock(&b->client_lock);
    }
    return NULL;
}

/* ---- net_backend ops ---- */

static void sl_attach(struct net_backend *nb, const struct net_client *c)
{
    struct sl_backend *b = (struct sl_backend *)nb;
    pthread_mutex_lock(&b->client_lock);
    b->has_client = c != NULL;
    if (c) b->client = *c;
    pthread_mutex_unlock(&b->client_lock);
    if (c) cb_notify(b); /* frames may wait in the new device's queue already */
}

static void sl_kick(struct net_backend *nb)
{
    cb_notify((struct sl_backend *)nb);
}

static void sl_send(struct net_backend *nb, const uint8_t *frame, size_t len)
{
    struct sl_backend *b = (struct sl_backend *)nb;
    if (len > NET_FRAME_MAX) return;
    uint8_t *copy = NULL;
    if (b->dns_nat) {
        memcpy(b->txnatbuf, frame, len);
        if (net_dns_nat(b->txnatbuf, len, true, b->dns_virt, b->dns_real)) copy = b->txnatbuf;
    }
    slirp_input(b->slirp, copy ? copy : frame, (int)len);
}

static void sl_close(struct net_backend *nb)
{
    struct sl_backend *b = (struct sl_backend *)nb;
    if (b->thread_started) {
        atomic_store(&b->stop, true);
        cb_notify(b);
        pthread_join(b->thread, NULL);
    }
    if (b->slirp) slirp_cleanup(b->slirp);
    if (b->evfd >= 0) close(b->evfd);
    pthread_mutex_destroy(&b->client_lock);
    free(b->pfd);
    free(b);
}

static const struct net_backend_ops sl_ops = {
    .attach = sl_attach,
    .kick = sl_kick,
    .send = sl_send,
    .close = sl_close,
};

static struct in_addr v4(const char *s)
{
    struct in_addr a;
    inet_pton(AF_INET, s, &a);
    return a;
}

static struct in6_addr v6(const char *s)
{
    struct in6_addr a;
    inet_pton(AF_INET6, s, &a);
    return a;
}

int net_slirp_open(struct net_backend **out, const struct net_spec *spec, char *err, size_t errlen)
{
    struct sl_backend *b = calloc(1, sizeof(*b));
    if (!b) return err_set(err, errlen, -ENOMEM, "out of memory for the network backend");
    b->base.ops = &sl_ops;
    b->evfd = -1;
    pthread_mutex_init(&b->client_lock, NULL);
    int r = 0;
    b->cap = POLL_SET_INIT;
    b->pfd = calloc(b->cap, sizeof(*b->pfd));
    b->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!b->pfd || b->evfd < 0) {
        r = err_set(err, errlen, -errno, "network backend: %s", strerror(errno));
        goto fail;
    }

    /* QEMU's defaults (qemu-options.hx, -netdev user), so guides written for QEMU apply. */
    SlirpConfig cfg = {
        .version = 4,
        .restricted = spec->restrict_,
        .in_enabled = true,
        .vnetwork = v4("10.0.2.0"),
        .vnetmask = v4("255.255.255.0"),
        .vhost = v4("10.0.2.2"),
        .in6_enabled = spec->ipv6,
        .vprefix_addr6 = v6("fec0::"),
        .vprefix_len = 64,
        .vhost6 = v6("fec0::2"),
        .vdhcp_start = v4("10.0.2.15"),
        .vnameserver = v4("10.0.2.3"),
        .vnameserver6 = v6("fec0::3"),
        /* one MTU both ways (libslirp's TCP sends segments of if_mtu to the guest) */
        .if_mtu = spec->mtu ? spec->mtu : NET_MTU_MAX,
        .if_mru = spec->mtu ? spec->mtu : NET_MTU_MAX,
    };
    b->base.mtu = (unsigned)cfg.if_mtu;
    /* The host's resolver, read now: libslirp would read it at the guest's first query, after
     * the sandbox closed the file system (slirp.h, net_dns_nat). Without one, libslirp's own
     * lookup stays (it works unsandboxed). */
    int rfd = open("/etc/resolv.conf", O_RDONLY | O_CLOEXEC);
    if (rfd >= 0) {
        char text[4096];
        ssize_t n = read(rfd, text, sizeof(text) - 1);
        close(rfd);
        if (n > 0) {
            text[n] = 0;
            b->dns_virt = cfg.vnameserver;
            b->dns_nat = net_dns_pick(text, &b->dns_real) == 0;
        }
    }
    b->slirp = slirp_new(&cfg, &callbacks, b);
    if (!b->slirp) {
        r = err_set(err, errlen, -ENOMEM, "cannot set up user networking (libslirp)");
        goto fail;
    }
    for (unsigned i = 0; i < spec->nfwd; i++) {
        const struct net_hostfwd *f = &spec->fwd[i];
        errno = 0;
        /* The listening socket is bound here, before the sandbox (which allows no bind). */
        if (slirp_add_hostfwd(b->slirp, f->udp, f->host_addr, f->host_port, f->guest_addr,
                              f->guest_port) < 0) {
            int e = errno ? errno : EADDRINUSE;
            char ha[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &f->host_addr, ha, sizeof(ha));
            r = err_set(err, errlen, -e, "--net hostfwd: cannot listen on %s %s:%u: %s",
                        f->udp ? "udp" : "tcp", ha, f->host_port, strerror(e));
            goto fail;
        }
    }
    if (pthread_create(&b->thread, NULL, sl_thread, b) != 0) {
        r = err_set(err, errlen, -EAGAIN, "cannot start the network thread");
        goto fail;
    }
    b->thread_started = true;
    *out = &b->base;
    return 0;
fail:
    sl_close(&b->base);
    return r;
}

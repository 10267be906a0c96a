/* The Unix-socket vsock backend (vsock.h): Firecracker's host-side convention. The thread polls
 * the kick eventfd, the listening socket, the host programs still writing their CONNECT line
 * (at most VSOCK_MAX_HANDSHAKE, each given HANDSHAKE_MS; more wait in the listen queue) and the
 * connections the device wants events on. `client_lock` is held around the client's callbacks,
 * never across poll. */
#include "backend/vsock/vsock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/ratelimit.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define HANDSHAKE_MS   5000 /* a host program has this long to write its CONNECT line */
#define HANDSHAKE_LINE 32   /* "CONNECT 4294967295\n" and some room */

struct handshake {
    int fd; /* -1: free */
    uint64_t deadline_ms;
    unsigned len;
    char line[HANDSHAKE_LINE];
};

struct uds_backend {
    struct vsock_backend base;
    char path[VSOCK_PATH_MAX];
    int lfd, evfd;
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    pthread_mutex_t client_lock; /* client, has_client, conn[] */
    struct vsock_client client;
    bool has_client;
    int conn[VSOCK_MAX_CONNS]; /* host socket of each connection slot, -1: none */
    struct handshake hs[VSOCK_MAX_HANDSHAKE];
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void uds_kick(struct vsock_backend *vb)
{
    struct uds_backend *b = (struct uds_backend *)vb;
    uint64_t one = 1;
    ssize_t w = write(b->evfd, &one, sizeof(one));
    (void)w;
}

static void close_all_conns(struct uds_backend *b)
{
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
        if (b->conn[i] >= 0) {
            close(b->conn[i]);
            b->conn[i] = -1;
        }
}

static void hs_close(struct handshake *h)
{
    if (h->fd >= 0) close(h->fd);
    h->fd = -1;
    h->len = 0;
}

/* "CONNECT <port>" (the newline stripped): the port, or -1. */
static int64_t parse_connect(const char *s)
{
    if (strncmp(s, "CONNECT ", 8)) return -1;
    s += 8;
    if (*s < '0' || *s > '9') return -1;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > UINT32_MAX) return -1;
    }
    return *s ? -1 : (int64_t)v;
}

/* Caller holds client_lock. Read what the host program wrote; at its newline hand the
 * connection to the device or close it. */
static void hs_read(struct uds_backend *b, struct handshake *h)
{
    /* Byte by byte up to the newline: what follows it is the stream's, for the guest. */
    while (h->len < HANDSHAKE_LINE - 1) {
        char c;
        ssize_t r = recv(h->fd, &c, 1, MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
        if (r <= 0) {
            hs_close(h);
            return;
        }
        if (c == '\n') {
            h->line[h->len] = 0;
            int64_t port = parse_connect(h->line);
            int slot = port >= 0 && b->has_client
                           ? b->client.host_connect(b->client.ctx, (uint32_t)port)
                           : -1;
            if (port < 0) log_warn_ratelimited("vsock: a host program sent a bad CONNECT line");
            if (slot < 0 || slot >= VSOCK_MAX_CONNS || b->conn[slot] >= 0) {
                hs_close(h);
                return;
            }
            b->conn[slot] = h->fd;
            h->fd = -1;
            h->len = 0;
            return;
        }
        h->line[h->len++] = c;
    }
    hs_close(h); /* no newline in a line's room */
}

static int free_handshake(const struct uds_backend *b)
{
    for (unsigned i = 0; i < VSOCK_MAX_HANDSHAKE; i++)
        if (b->hs[i].fd < 0) return (int)i;
    return -1;
}

/* Take connections from the listen queue while a handshake slot is free. With every slot busy
 * the rest wait in the kernel's queue (VSOCK_LISTEN_BACKLOG) until one frees: a burst of host
 * programs connecting at once is served, not refused. */
static void accept_some(struct uds_backend *b)
{
    int i;
    while ((i = free_handshake(b)) >= 0) {
        int fd = accept4(b->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        b->hs[i].fd = fd;
        b->hs[i].len = 0;
        b->hs[i].deadline_ms = now_ms() + HANDSHAKE_MS;
    }
}

static void *uds_thread(void *arg)
{
    struct uds_backend *b = arg;
    struct pollfd p[2 + VSOCK_MAX_HANDSHAKE + VSOCK_MAX_CONNS];
    int which[VSOCK_MAX_CONNS]; /* pollfd index -> connection slot */
    while (!atomic_load(&b->stop)) {
        unsigned n = 0, nhs;
        int timeout = -1;
        uint64_t now = now_ms();
        p[n++] = (struct pollfd){.fd = b->evfd, .events = POLLIN};
        for (unsigned i = 0; i < VSOCK_MAX_HANDSHAKE; i++)
            if (b->hs[i].fd >= 0 && now >= b->hs[i].deadline_ms) hs_close(&b->hs[i]);
        /* the listening socket only while a handshake slot is free (accept_some) */
        p[n++] = (struct pollfd){.fd = free_handshake(b) >= 0 ? b->lfd : -1, .events = POLLIN};
        for (unsigned i = 0; i < VSOCK_MAX_HANDSHAKE; i++) {
            struct handshake *h = &b->hs[i];
            p[n++] = (struct pollfd){.fd = h->fd, .events = POLLIN};
            if (h->fd >= 0) {
                int left = (int)(h->deadline_ms - now);
                if (timeout < 0 || left < timeout) timeout = left;
            }
        }
        nhs = n;
        unsigned nconn = 0;
        pthread_mutex_lock(&b->client_lock);
        for (unsigned i = 0; i < VSOCK_MAX_CONNS && b->has_client; i++) {
            if (b->conn[i] < 0) continue;
            short ev = b->client.events(b->client.ctx, i);
            if (!ev) continue;
            which[nconn++] = (int)i;
            p[n++] = (struct pollfd){.fd = b->conn[i], .events = ev};
        }
        pthread_mutex_unlock(&b->client_lock);
        int r = poll(p, n, timeout);
        if (r < 0) {
            if (errno != EINTR) log_error_ratelimited("vsock: poll: %s", strerror(errno));
            continue;
        }
        pthread_mutex_lock(&b->client_lock);
        if (p[0].revents & POLLIN) {
            uint64_t v;
            ssize_t rr = read(b->evfd, &v, sizeof(v));
            (void)rr;
        }
        for (unsigned i = 0; i < VSOCK_MAX_HANDSHAKE; i++)
            if (b->hs[i].fd >= 0 && p[2 + i].fd == b->hs[i].fd && p[2 + i].revents)
                hs_read(b, &b->hs[i]);
        if (p[1].revents & POLLIN) accept_some(b);
        /* A connection's events go to the device only if the slot still holds the socket
         * polled (the device may have closed it, and another taken its place, meanwhile). */
        for (unsigned k = 0; k < nconn && b->has_client; k++) {
            int slot = which[k];
            if (p[nhs + k].revents && b->conn[slot] == p[nhs + k].fd)
                b->client.ready(b->client.ctx, (unsigned)slot, p[nhs + k].revents);
        }
        /* Always last: what the device wants to do after the events above. */
        if (b->has_client) b->client.run(b->client.ctx);
        pthread_mutex_unlock(&b->client_lock);
    }
    return NULL;
}

static void uds_attach(struct vsock_backend *vb, const struct vsock_client *c)
{
    struct uds_backend *b = (struct uds_backend *)vb;
    pthread_mutex_lock(&b->client_lock);
    b->has_client = c != NULL;
    if (c)
        b->client = *c;
    else
        close_all_conns(b); /* a machine going away takes its connections with it */
    pthread_mutex_unlock(&b->client_lock);
    uds_kick(vb);
}

static int uds_connect(struct vsock_backend *vb, unsigned conn, uint32_t port)
{
    struct uds_backend *b = (struct uds_backend *)vb;
    if (conn >= VSOCK_MAX_CONNS || b->conn[conn] >= 0) return -EINVAL;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int w = snprintf(a.sun_path, sizeof(a.sun_path), "%s_%u", b->path, port);
    if (w < 0 || (size_t)w >= sizeof(a.sun_path)) return -ENAMETOOLONG;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    /* A Unix stream connect does not wait for the listener to accept: it completes or fails
     * at once (EAGAIN: the listener's backlog is full; refused like the others). */
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    b->conn[conn] = fd;
    return 0;
}

static void uds_accepted(struct vsock_backend *vb, unsigned conn, uint32_t host_port)
{
    struct uds_backend *b = (struct uds_backend *)vb;
    if (conn >= VSOCK_MAX_CONNS || b->conn[conn] < 0) return;
    char line[32];
    int n = snprintf(line, sizeof(line), "OK %u\n", host_port);
    /* A fresh socket's send buffer holds a short line: it never fails for room. */
    if (send(b->conn[conn], line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) != n)
        log_warn_ratelimited("vsock: cannot answer a host program: %s", strerror(errno));
}

static ssize_t uds_recv(struct vsock_backend *vb, unsigned conn, void *buf, size_t len)
{
    struct uds_backend *b = (struct uds_backend *)vb;
    if (conn >= VSOCK_MAX_CONNS || b->conn[conn] < 0) return -EBADF;
    ssize_t r = recv(b->conn[conn], buf, len, MSG_DONTWAIT);
    if (r < 0) return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return r;
}

static ssize_t uds_send(struct vsock_backend *vb, unsigned conn, const void *buf, size_t len)
{
    struct uds_backend *b = (struct uds_backend *)vb;
    if (conn >= VSOCK_MAX_CONNS || b->conn[conn] < 0) return -EBADF;
    ssize_t r = send(b->conn[conn], buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r < 0) return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return r;
}

static void uds_shutdown_write(struct vsock_backend *vb, unsigned conn)
{
    struct uds_backend *b = (struct uds_backend *)vb;
    if (conn < VSOCK_MAX_CONNS && b->conn[conn] >= 0) shutdown(b->conn[conn], SHUT_WR);
}

static void uds_close_conn(struct vsock_backend *vb, unsigned conn)
{
    struct uds_backend *b = (struct uds_backend *)vb;
    if (conn >= VSOCK_MAX_CONNS || b->conn[conn] < 0) return;
    close(b->conn[conn]);
    b->conn[conn] = -1;
}

static void uds_close(struct vsock_backend *vb, bool unlink_path)
{
    struct uds_backend *b = (struct uds_backend *)vb;
    if (b->thread_started) {
        atomic_store(&b->stop, true);
        uds_kick(vb);
        pthread_join(b->thread, NULL);
    }
    close_all_conns(b);
    for (unsigned i = 0; i < VSOCK_MAX_HANDSHAKE; i++)
        hs_close(&b->hs[i]);
    if (b->lfd >= 0) {
        close(b->lfd);
        if (unlink_path) unlink(b->path);
    }
    if (b->evfd >= 0) close(b->evfd);
    pthread_mutex_destroy(&b->client_lock);
    free(b);
}

void vsock_backend_close(struct vsock_backend *b, bool unlink_path)
{
    if (b) b->ops->close(b, unlink_path);
}

static const struct vsock_backend_ops uds_ops = {
    .attach = uds_attach,
    .kick = uds_kick,
    .connect = uds_connect,
    .accepted = uds_accepted,
    .recv = uds_recv,
    .send = uds_send,
    .shutdown_write = uds_shutdown_write,
    .close_conn = uds_close_conn,
    .close = uds_close,
};

/* Bind path; a socket file left by a process that is gone is replaced. */
static int bind_listen(struct uds_backend *b, char *err, size_t errlen)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", b->path);
    struct stat st;
    if (lstat(b->path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return err_set(err, errlen, -EEXIST, "--vsock path=%s: exists and is not a socket",
                           b->path);
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0) return err_set(err, errlen, -errno, "vsock: socket: %s", strerror(errno));
        int c = connect(probe, (struct sockaddr *)&a, sizeof(a));
        int e = errno;
        close(probe);
        if (c == 0 || e == EAGAIN)
            return err_set(err, errlen, -EADDRINUSE,
                           "--vsock path=%s: in use by a running program (another VM?)", b->path);
        if (e == ECONNREFUSED) unlink(b->path); /* stale: nobody listens */
    }
    b->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (b->lfd < 0) return err_set(err, errlen, -errno, "vsock: socket: %s", strerror(errno));
    if (bind(b->lfd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int e = errno;
        close(b->lfd);
        b->lfd = -1;
        return err_set(err, errlen, e == EADDRINUSE ? -EADDRINUSE : -e, "--vsock path=%s: %s",
                       b->path, strerror(e));
    }
    if (listen(b->lfd, VSOCK_LISTEN_BACKLOG) < 0) {
        int e = errno;
        return err_set(err, errlen, -e, "--vsock path=%s: listen: %s", b->path, strerror(e));
    }
    return 0;
}

int vsock_uds_open(struct vsock_backend **out, const struct vsock_spec *spec, char *err,
                   size_t errlen)
{
    *out = NULL;
    int r = vsock_spec_check(spec->cid, spec->path, err, errlen);
    if (r < 0) return r;
    struct uds_backend *b = calloc(1, sizeof(*b));
    if (!b) return err_set(err, errlen, -ENOMEM, "out of memory for the vsock backend");
    b->base.ops = &uds_ops;
    b->lfd = b->evfd = -1;
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
        b->conn[i] = -1;
    for (unsigned i = 0; i < VSOCK_MAX_HANDSHAKE; i++)
        b->hs[i].fd = -1;
    pthread_mutex_init(&b->client_lock, NULL);
    snprintf(b->path, sizeof(b->path), "%s", spec->path);
    bool bound = false;
    if ((r = bind_listen(b, err, errlen)) < 0) goto fail;
    bound = true;
    b->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (b->evfd < 0) {
        r = err_set(err, errlen, -errno, "vsock backend: %s", strerror(errno));
        goto fail;
    }
    if (pthread_create(&b->thread, NULL, uds_thread, b) != 0) {
        r = err_set(err, errlen, -EAGAIN, "cannot start the vsock thread");
        goto fail;
    }
    b->thread_started = true;
    *out = &b->base;
    return 0;
fail:
    uds_close(&b->base, bound);
    return r;
}

void vsock_uds_remove_stale(const char *path)
{
    struct stat st;
    if (!path || !path[0] || lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode)) return;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(a.sun_path)) return;
    memcpy(a.sun_path, path, strlen(path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 && errno == ECONNREFUSED) unlink(path);
    close(fd);
}

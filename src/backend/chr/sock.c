/* The console of a detached VM: guest output goes to a size-bounded log file (rotated once:
 * LOG becomes LOG.1) and to the attached client; the client's bytes go to the guest. One client
 * at a time on a listening Unix socket (`vessel console`); another is told the console is busy.
 * A slow client never stalls the guest: output for it waits in a ring buffer and what does not
 * fit is dropped for that client only (the log has everything). */
#include "backend/chr/chr.h"
#include "util/log.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define IN_BUF_SIZE   16384
#define OUT_RING      65536
#define RETRY_POLL_MS 100

struct chr_sock {
    struct chr base;
    int listen_fd, client_fd, evfd, log_fd, old_fd;
    bool client_eof; /* the client half-closed: it still gets output */
    char log_path[4096];
    uint64_t log_max, log_size;
    pthread_t thread;
    atomic_bool stop;
    pthread_mutex_t wlock;   /* log file and ring */
    pthread_mutex_t rx_lock; /* the receiver, in and in_len */
    uint8_t ring[OUT_RING];
    size_t ring_head, ring_len;
    uint64_t dropped;
    size_t in_len;
    uint8_t in[IN_BUF_SIZE];
};

static void wake(struct chr_sock *s)
{
    uint64_t one = 1;
    if (write(s->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_debug("console: eventfd write: %s", strerror(errno));
}

/* LOG is copied into LOG.1 and emptied, with descriptor calls only: the VM process is
 * sandboxed by the time a log fills (no open or rename). */
static void log_rotate(struct chr_sock *s)
{
    if (s->old_fd >= 0 && ftruncate(s->old_fd, 0) == 0) {
        char buf[65536];
        off_t off = 0;
        for (;;) {
            ssize_t n = pread(s->log_fd, buf, sizeof(buf), off);
            if (n <= 0 || pwrite(s->old_fd, buf, (size_t)n, off) != n) break;
            off += n;
        }
    }
    if (ftruncate(s->log_fd, 0) == 0) s->log_size = 0; /* O_APPEND: writes start again at 0 */
}

static void sock_write(struct chr *c, const uint8_t *buf, size_t len)
{
    struct chr_sock *s = (struct chr_sock *)c;
    pthread_mutex_lock(&s->wlock);
    if (s->log_fd >= 0) {
        if (s->log_size + len > s->log_max) log_rotate(s);
        if (s->log_fd >= 0) {
            ssize_t w = write(s->log_fd, buf, len);
            if (w > 0) s->log_size += (uint64_t)w;
        }
    }
    bool had = s->ring_len > 0;
    if (s->client_fd >= 0) {
        for (size_t i = 0; i < len; i++) {
            if (s->ring_len == OUT_RING) {
                s->dropped += len - i;
                break;
            }
            s->ring[(s->ring_head + s->ring_len) % OUT_RING] = buf[i];
            s->ring_len++;
        }
    }
    pthread_mutex_unlock(&s->wlock);
    if (!had && len) wake(s);
}

static void sock_rx_ready(struct chr *c)
{
    wake((struct chr_sock *)c);
}

static void sock_set_receiver(struct chr *c, chr_rx_fn rx, void *opaque)
{
    struct chr_sock *s = (struct chr_sock *)c;
    pthread_mutex_lock(&s->rx_lock);
    s->base.rx = rx;
    s->base.rx_opaque = opaque;
    pthread_mutex_unlock(&s->rx_lock);
    wake(s);
}

static void deliver(struct chr_sock *s)
{
    pthread_mutex_lock(&s->rx_lock);
    while (s->in_len) {
        size_t n = s->base.rx ? s->base.rx(s->base.rx_opaque, s->in, s->in_len) : 0;
        if (n == 0) break;
        if (n > s->in_len) n = s->in_len;
        memmove(s->in, s->in + n, s->in_len - n);
        s->in_len -= n;
    }
    pthread_mutex_unlock(&s->rx_lock);
}

static size_t sock_held(struct chr *c, uint8_t *out, size_t max)
{
    struct chr_sock *s = (struct chr_sock *)c;
    pthread_mutex_lock(&s->rx_lock);
    size_t n = chr_inbuf_peek(s->in, s->in_len, out, max);
    pthread_mutex_unlock(&s->rx_lock);
    return n;
}

static void sock_put_back(struct chr *c, const uint8_t *buf, size_t len)
{
    struct chr_sock *s = (struct chr_sock *)c;
    pthread_mutex_lock(&s->rx_lock);
    chr_inbuf_prepend(s->in, &s->in_len, IN_BUF_SIZE, buf, len);
    pthread_mutex_unlock(&s->rx_lock);
    wake(s);
}

static void drop_client(struct chr_sock *s)
{
    pthread_mutex_lock(&s->wlock);
    if (s->client_fd >= 0) close(s->client_fd);
    s->client_fd = -1;
    s->ring_len = 0;
    pthread_mutex_unlock(&s->wlock);
}

static void flush_ring(struct chr_sock *s)
{
    pthread_mutex_lock(&s->wlock);
    while (s->ring_len && s->client_fd >= 0) {
        size_t chunk = OUT_RING - s->ring_head;
        if (chunk > s->ring_len) chunk = s->ring_len;
        ssize_t w = send(s->client_fd, s->ring + s->ring_head, chunk, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && (errno == EAGAIN || errno == EINTR)) break;
            close(s->client_fd);
            s->client_fd = -1;
            s->ring_len = 0;
            break;
        }
        s->ring_head = (s->ring_head + (size_t)w) % OUT_RING;
        s->ring_len -= (size_t)w;
    }
    pthread_mutex_unlock(&s->wlock);
}

static void accept_client(struct chr_sock *s)
{
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    pthread_mutex_lock(&s->wlock);
    bool busy = s->client_fd >= 0;
    if (!busy) {
        s->client_fd = fd;
        s->client_eof = false;
        s->ring_len = 0;
    }
    pthread_mutex_unlock(&s->wlock);
    if (busy) {
        static const char msg[] = "vessel: the console is in use by another client\r\n";
        if (send(fd, msg, sizeof(msg) - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
            /* nothing to do: the client is going away anyway */
        }
        close(fd);
    }
}

static void *sock_thread(void *arg)
{
    struct chr_sock *s = arg;
    while (!atomic_load(&s->stop)) {
        pthread_mutex_lock(&s->wlock);
        int cfd = s->client_fd;
        bool out = s->ring_len > 0;
        pthread_mutex_unlock(&s->wlock);
        struct pollfd p[3] = {
            {.fd = s->evfd, .events = POLLIN},
            {.fd = s->listen_fd, .events = POLLIN},
            {.fd = cfd, .events = (s->in_len < IN_BUF_SIZE ? POLLIN : 0) | (out ? POLLOUT : 0)}};
        int r = poll(p, cfd >= 0 ? 3 : 2, s->in_len ? RETRY_POLL_MS : -1);
        if (r < 0 && errno != EINTR) break;
        if (p[0].revents & POLLIN) {
            uint64_t v;
            if (read(s->evfd, &v, sizeof(v)) < 0) { /* counter was zero: fine */
            }
        }
        if (p[1].revents & POLLIN) accept_client(s);
        if (cfd >= 0 && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
            /* under rx_lock: a snapshot may read the held input (sock_held) */
            pthread_mutex_lock(&s->rx_lock);
            /* a full buffer: read later, unless the client is gone */
            ssize_t n = p[2].revents & (POLLHUP | POLLERR) ? 0 : -1;
            errno = EAGAIN;
            if (s->in_len < IN_BUF_SIZE)
                n = recv(cfd, s->in + s->in_len, IN_BUF_SIZE - s->in_len, MSG_DONTWAIT);
            int e = errno;
            if (n > 0) s->in_len += (size_t)n;
            pthread_mutex_unlock(&s->rx_lock);
            errno = e;
            if (n > 0) {
                /* taken */
            } else if (n == 0 && !(p[2].revents & (POLLHUP | POLLERR)))
                s->client_eof = true; /* `echo cmd | vessel console`: keep sending output */
            else if (n == 0 || (errno != EAGAIN && errno != EINTR))
                drop_client(s);
        }
        deliver(s);
        flush_ring(s);
    }
    return NULL;
}

static void sock_destroy(struct chr *c)
{
    struct chr_sock *s = (struct chr_sock *)c;
    atomic_store(&s->stop, true);
    wake(s);
    pthread_join(s->thread, NULL);
    if (s->dropped)
        log_debug("console: %llu bytes not sent to slow clients", (unsigned long long)s->dropped);
    flush_ring(s);
    drop_client(s);
    close(s->evfd);
    if (s->log_fd >= 0) close(s->log_fd);
    if (s->old_fd >= 0) close(s->old_fd);
    if (s->listen_fd >= 0) close(s->listen_fd);
    pthread_mutex_destroy(&s->wlock);
    pthread_mutex_destroy(&s->rx_lock);
    free(s);
}

static const struct chr_ops sock_ops = {
    .write = sock_write,
    .rx_ready = sock_rx_ready,
    .destroy = sock_destroy,
    .set_receiver = sock_set_receiver,
    .held = sock_held,
    .put_back = sock_put_back,
};

struct chr *chr_sock_create(int listen_fd, const char *log_path, uint64_t log_max)
{
    struct chr_sock *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->base.ops = &sock_ops;
    s->listen_fd = listen_fd;
    s->client_fd = -1;
    s->log_max = log_max < 4096 ? 4096 : log_max;
    snprintf(s->log_path, sizeof(s->log_path), "%s", log_path);
    s->log_fd = open(log_path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    char old[4200];
    snprintf(old, sizeof(old), "%s.1", log_path);
    s->old_fd = open(old, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->log_fd < 0) {
        int e = errno;
        if (s->old_fd >= 0) close(s->old_fd);
        free(s);
        errno = e;
        return NULL;
    }
    struct stat sb;
    if (fstat(s->log_fd, &sb) == 0) s->log_size = (uint64_t)sb.st_size;
    s->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->evfd < 0) {
        int e = errno;
        close(s->log_fd);
        free(s);
        errno = e;
        return NULL;
    }
    pthread_mutex_init(&s->wlock, NULL);
    pthread_mutex_init(&s->rx_lock, NULL);
    int r = pthread_create(&s->thread, NULL, sock_thread, s);
    if (r) {
        close(s->evfd);
        close(s->log_fd);
        pthread_mutex_destroy(&s->wlock);
        pthread_mutex_destroy(&s->rx_lock);
        free(s);
        errno = r;
        return NULL;
    }
    return &s->base;
}

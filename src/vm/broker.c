/* The file broker (broker.h). */
#include "vm/broker.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { OP_ALLOW = 1, OP_SEAL, OP_OPEN, OP_REOPEN, OP_CREATE };

struct broker_req {
    uint32_t op;
    int32_t flags;
    char path[PATH_MAX];
};
struct broker_rep {
    int32_t result; /* 0 (a descriptor comes with it) or -errno */
};

/* What a caller may ask for: open an existing file for reading, or reading and writing. */
#define BROKER_FLAGS (O_ACCMODE | O_DIRECT | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
#define MAX_RX_FDS   4

int broker_socketpair(int sv[2])
{
    return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 ? -errno : 0;
}

static bool flags_ok(int flags)
{
    int acc = flags & O_ACCMODE;
    return (flags & ~BROKER_FLAGS) == 0 && (acc == O_RDONLY || acc == O_RDWR);
}

/* Sends one message, with fd attached when fd >= 0. 0 or -errno. */
static int send_msg(int sock, const void *buf, size_t len, int fd)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    union {
        char b[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } c;
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        memset(&c, 0, sizeof(c));
        m.msg_control = c.b;
        m.msg_controllen = sizeof(c.b);
        struct cmsghdr *h = CMSG_FIRSTHDR(&m);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(h), &fd, sizeof(int));
    }
    ssize_t n;
    do
        n = sendmsg(sock, &m, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    return (size_t)n == len ? 0 : -EIO;
}

/* Receives one message into buf (at most len bytes) and the descriptors that came with it
 * (close-on-exec; at most MAX_RX_FDS, the rest closed). Returns its length (0: the peer closed),
 * -EMSGSIZE if it was longer than len or carried more than fds fit, or -errno. */
static ssize_t recv_msg(int sock, void *buf, size_t len, int *fds, unsigned *nfds)
{
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    union {
        char b[CMSG_SPACE(sizeof(int) * MAX_RX_FDS)];
        struct cmsghdr align;
    } c;
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.b, .msg_controllen = sizeof(c.b)};
    ssize_t n;
    do
        n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    *nfds = 0;
    if (n < 0) return -errno;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) continue;
        size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
            if (*nfds < MAX_RX_FDS)
                fds[(*nfds)++] = fd;
            else
                close(fd);
        }
    }
    if (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) return -EMSGSIZE;
    return n;
}

/* ---- the VM process's side ---- */

static int client = -1;
static pthread_mutex_t client_lock = PTHREAD_MUTEX_INITIALIZER;

void broker_set_client(int fd)
{
    client = fd;
}

bool broker_available(void)
{
    return client >= 0;
}

/* One request and its answer; the descriptor that came with a successful one, else -errno. */
static int request(uint32_t op, int flags, const char *path, int fd)
{
    if (client < 0) return -ENOTCONN;
    struct broker_req *q = calloc(1, sizeof(*q));
    if (!q) return -ENOMEM;
    q->op = op;
    q->flags = flags;
    if (path && snprintf(q->path, sizeof(q->path), "%s", path) >= (int)sizeof(q->path)) {
        free(q);
        return -ENAMETOOLONG;
    }
    pthread_mutex_lock(&client_lock);
    int r = send_msg(client, q, sizeof(*q), fd);
    free(q);
    struct broker_rep rep;
    int fds[MAX_RX_FDS];
    unsigned nfds = 0;
    if (r == 0) {
        ssize_t n = recv_msg(client, &rep, sizeof(rep), fds, &nfds);
        if (n < 0)
            r = (int)n;
        else if (n != sizeof(rep) || rep.result > 0 || rep.result < -4095)
            r = -EPROTO;
        else
            r = rep.result;
    }
    pthread_mutex_unlock(&client_lock);
    int out = -1;
    for (unsigned i = 0; i < nfds; i++) {
        if (r == 0 && out < 0)
            out = fds[i];
        else
            close(fds[i]);
    }
    if (r < 0) return r;
    if (op == OP_OPEN || op == OP_REOPEN || op == OP_CREATE) return out >= 0 ? out : -EPROTO;
    if (out >= 0) close(out);
    return 0;
}

int broker_allow_dir(const char *dir)
{
    char *real = realpath(dir, NULL);
    if (!real) return -errno;
    int r = request(OP_ALLOW, 0, real, -1);
    free(real);
    return r;
}

int broker_seal(void)
{
    return request(OP_SEAL, 0, NULL, -1);
}

int broker_open(const char *path, int flags)
{
    if (!flags_ok(flags) || path[0] != '/') return -EINVAL;
    return request(OP_OPEN, flags, path, -1);
}

int broker_create(const char *path)
{
    if (path[0] != '/') return -EINVAL;
    return request(OP_CREATE, O_RDWR, path, -1);
}

int broker_reopen(int fd, int flags)
{
    if (!flags_ok(flags) || fd < 0) return -EINVAL;
    return request(OP_REOPEN, flags, NULL, fd);
}

/* ---- the monitor's side: everything the VM process sends is hostile ---- */

struct broker {
    int sock;
    bool sealed, dead;
    unsigned ndirs;
    int dirfd[BROKER_MAX_DIRS];
    char *dir[BROKER_MAX_DIRS];
};

struct broker *broker_new(int sock)
{
    struct broker *b = calloc(1, sizeof(*b));
    if (b) b->sock = sock;
    return b;
}

void broker_free(struct broker *b)
{
    if (!b) return;
    for (unsigned i = 0; i < b->ndirs; i++) {
        close(b->dirfd[i]);
        free(b->dir[i]);
    }
    free(b);
}

static int regular_or_close(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -EPERM;
    }
    return fd;
}

static int serve_allow(struct broker *b, const char *path)
{
    if (b->sealed) return -EPERM;
    if (b->ndirs == BROKER_MAX_DIRS) return -E2BIG;
    if (path[0] != '/') return -EINVAL;
    for (unsigned i = 0; i < b->ndirs; i++)
        if (strcmp(b->dir[i], path) == 0) return 0;
    int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    char *d = strdup(path);
    if (!d) {
        close(fd);
        return -ENOMEM;
    }
    /* "/" as an allowed directory would allow everything: keep it without its slash so the
     * prefix test below still needs one */
    size_t l = strlen(d);
    while (l > 1 && d[l - 1] == '/')
        d[--l] = 0;
    b->dirfd[b->ndirs] = fd;
    b->dir[b->ndirs++] = d;
    return 0;
}

static int serve_open(struct broker *b, const char *path, int flags, bool create)
{
    if (!flags_ok(flags) || path[0] != '/') return -EINVAL;
    if (create && flags != O_RDWR) return -EINVAL;
    for (unsigned i = 0; i < b->ndirs; i++) {
        const char *d = b->dir[i];
        size_t l = strcmp(d, "/") == 0 ? 0 : strlen(d);
        if (strncmp(path, d, l) != 0 || path[l] != '/') continue;
        const char *rel = path + l;
        while (*rel == '/')
            rel++;
        if (!*rel) return -EPERM; /* the directory itself */
        struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC),
                               .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
        if (create) { /* never through a symlink, never over anything */
            how.flags |= O_CREAT | O_EXCL | O_NOFOLLOW;
            how.mode = 0600;
        }
        int fd = (int)syscall(SYS_openat2, b->dirfd[i], rel, &how, sizeof(how));
        if (fd < 0) return -errno; /* EXDEV: ".." or a symlink led out of the directory */
        return regular_or_close(fd);
    }
    return -EXDEV;
}

static int serve_reopen(const int *fds, unsigned nfds, int flags)
{
    if (nfds != 1 || !flags_ok(flags)) return -EINVAL;
    int fl = fcntl(fds[0], F_GETFL);
    if (fl < 0) return -errno;
    if ((flags & O_ACCMODE) == O_RDWR && (fl & O_ACCMODE) != O_RDWR) return -EACCES;
    struct stat st;
    if (fstat(fds[0], &st) < 0 || !S_ISREG(st.st_mode)) return -EPERM;
    char self[64];
    snprintf(self, sizeof(self), "/proc/self/fd/%d", fds[0]);
    int fd = open(self, flags | O_CLOEXEC);
    if (fd < 0) return -errno;
    return regular_or_close(fd);
}

int broker_serve(struct broker *b)
{
    if (b->dead) return -1;
    struct broker_req *q = malloc(sizeof(*q));
    if (!q) return 0; /* try again on the next wake-up */
    int fds[MAX_RX_FDS];
    unsigned nfds = 0;
    ssize_t n = recv_msg(b->sock, q, sizeof(*q), fds, &nfds);
    if (n == 0 || (n < 0 && n != -EMSGSIZE && n != -EAGAIN)) {
        for (unsigned i = 0; i < nfds; i++)
            close(fds[i]);
        free(q);
        b->dead = true;
        return -1;
    }
    if (n == -EAGAIN) {
        free(q);
        return 0;
    }
    int r, fd = -1;
    if (n != (ssize_t)sizeof(*q)) {
        r = -EINVAL;
    } else {
        q->path[sizeof(q->path) - 1] = 0;
        switch (q->op) {
        case OP_ALLOW: r = nfds ? -EINVAL : serve_allow(b, q->path); break;
        case OP_SEAL:
            b->sealed = true;
            r = 0;
            break;
        case OP_OPEN: fd = r = nfds ? -EINVAL : serve_open(b, q->path, q->flags, false); break;
        case OP_CREATE: fd = r = nfds ? -EINVAL : serve_open(b, q->path, q->flags, true); break;
        case OP_REOPEN: fd = r = serve_reopen(fds, nfds, q->flags); break;
        default: r = -EINVAL;
        }
    }
    free(q);
    for (unsigned i = 0; i < nfds; i++)
        close(fds[i]);
    if (fd >= 0) r = 0; /* OPEN and REOPEN answer with the descriptor */
    struct broker_rep rep = {.result = r};
    int s = send_msg(b->sock, &rep, sizeof(rep), fd);
    if (fd >= 0) close(fd);
    if (s < 0) {
        b->dead = true;
        return -1;
    }
    return 0;
}

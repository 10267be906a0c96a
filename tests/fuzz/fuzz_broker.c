// SOURCES: src/vm/broker.c
/* The file broker's monitor side (broker_serve) on whatever a compromised VM process could send:
 * requests with arbitrary ops, flags, paths (NUL or not), lengths and attached descriptors.
 * Each must get exactly one 4-byte answer; a descriptor comes only with result 0, and it must be
 * one of the regular files inside the allowed directory (or, for CREATE, a new empty file
 * there), never the file outside it. */
#include "vm/broker.h"
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];
static ino_t inside[2], outside;
static int attach_fd[2];

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

/* The directory goes when the fuzzer exits (CI runs it in several processes). */
static void teardown(void)
{
    nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/vessel-fuzz-broker-%d", (int)getpid());
    atexit(teardown);
    char p[128];
    mkdir(dir, 0755);
    snprintf(p, sizeof(p), "%s/in", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/in/sub", dir);
    mkdir(p, 0755);
    const char *files[3] = {"in/a.img", "in/sub/d.img", "out.img"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        int fd = open(p, O_RDWR | O_CREAT, 0644);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) abort();
        if (i < 2)
            inside[i] = st.st_ino;
        else
            outside = st.st_ino;
        if (i < 2)
            attach_fd[i] = fd; /* what a REOPEN may carry */
        else
            close(fd);
    }
    char t[128];
    snprintf(p, sizeof(p), "%s/in/link", dir);
    snprintf(t, sizeof(t), "%s/out.img", dir);
    if (symlink(t, p) < 0) { /* exists from an earlier run */
    }
    snprintf(p, sizeof(p), "%s/in/rel", dir);
    if (symlink("../out.img", p) < 0) {
    }
}

struct req {
    uint32_t op;
    int32_t flags;
    char path[PATH_MAX];
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    static int once;
    if (!once) {
        setup();
        once = 1;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) abort();
    struct broker *b = broker_new(sv[1]);
    if (!b) abort();
    /* the honest start, as the VM process makes it before it enters its sandbox (vm.c): the
     * allowed directory, then the seal. What follows is what a compromised VM process could
     * send afterwards. (Unsealed, an ALLOW of the parent directory made the CREATE there a
     * right answer that the checks below took for an escape: CI's input fuzz_broker/unsealed.) */
    static struct req q;
    int32_t rep;
    for (int k = 0; k < 2; k++) {
        memset(&q, 0, sizeof(q));
        q.op = k == 0 ? 1 : 2; /* OP_ALLOW, OP_SEAL */
        if (k == 0) snprintf(q.path, sizeof(q.path), "%s/in", dir);
        send(sv[0], &q, sizeof(q), 0);
        broker_serve(b);
        recv(sv[0], &rep, sizeof(rep), 0);
        if (rep != 0) abort();
    }

    /* then messages: [op][flags:4][fds:1][kind:1][pathlen:1][path bytes] */
    size_t i = 0;
    while (i + 8 <= len) {
        memset(&q, 0, sizeof(q));
        q.op = data[i];
        memcpy(&q.flags, data + i + 1, 4);
        unsigned nfds = data[i + 5] % 3, kind = data[i + 6] % 4, pl = data[i + 7];
        i += 8;
        if (pl > len - i) pl = (unsigned)(len - i);
        size_t msglen = sizeof(q);
        char *pp = q.path;
        if (kind == 1) pp += snprintf(q.path, sizeof(q.path), "%s/in/", dir); /* inside */
        if (kind == 2) pp += snprintf(q.path, sizeof(q.path), "%s/", dir);    /* its parent */
        memcpy(pp, data + i, pl);
        i += pl;
        if (kind == 3) { /* the bytes as a whole message of their own length */
            msglen = pl;
            memcpy(&q, data + i - pl, pl);
        }
        if (msglen == 0) msglen = 1;
        struct iovec iov = {.iov_base = &q, .iov_len = msglen};
        union {
            char c[CMSG_SPACE(2 * sizeof(int))];
            struct cmsghdr a;
        } cb;
        memset(&cb, 0, sizeof(cb));
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
        if (nfds) {
            m.msg_control = cb.c;
            m.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
            struct cmsghdr *h = CMSG_FIRSTHDR(&m);
            h->cmsg_level = SOL_SOCKET;
            h->cmsg_type = SCM_RIGHTS;
            h->cmsg_len = CMSG_LEN(nfds * sizeof(int));
            memcpy(CMSG_DATA(h), attach_fd, nfds * sizeof(int));
        }
        if (sendmsg(sv[0], &m, 0) < 0) abort();
        if (broker_serve(b) < 0) break; /* it may stop answering a broken peer */
        char c2[CMSG_SPACE(4 * sizeof(int))];
        struct iovec riov = {.iov_base = &rep, .iov_len = sizeof(rep)};
        struct msghdr rm = {
            .msg_iov = &riov, .msg_iovlen = 1, .msg_control = c2, .msg_controllen = sizeof(c2)};
        if (recvmsg(sv[0], &rm, MSG_DONTWAIT) != sizeof(rep)) abort(); /* exactly one answer */
        if (rep > 0 || rep < -4095) abort();
        int got = 0;
        for (struct cmsghdr *h = CMSG_FIRSTHDR(&rm); h; h = CMSG_NXTHDR(&rm, h)) {
            size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t j = 0; j < k; j++) {
                int fd;
                memcpy(&fd, CMSG_DATA(h) + j * sizeof(int), sizeof(int));
                struct stat st;
                if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) abort();
                if (st.st_ino == outside) abort(); /* escaped the allowed directory */
                if (q.op == 5) {
                    /* CREATE: a new, empty file, and only inside the allowed directory */
                    char self[64], where[PATH_MAX], in[128];
                    snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
                    snprintf(in, sizeof(in), "%s/in/", dir);
                    ssize_t wl = readlink(self, where, sizeof(where) - 1);
                    if (wl <= 0 || st.st_size != 0) abort();
                    where[wl] = 0;
                    if (strncmp(where, in, strlen(in)) != 0) abort();
                    unlink(where); /* keep the directory as it was for the next input */
                } else if (st.st_ino != inside[0] && st.st_ino != inside[1]) {
                    abort();
                }
                close(fd);
                got++;
            }
        }
        if (got > 1 || (got == 1 && rep != 0)) abort();
        if (rep == 0 && msglen == sizeof(q) && q.op == 1) abort(); /* ALLOW after the seal */
        if (rep == 0 && msglen == sizeof(q) && (q.op == 3 || q.op == 4 || q.op == 5) && got != 1)
            abort();
    }
    broker_free(b);
    close(sv[0]);
    close(sv[1]);
    return 0;
}

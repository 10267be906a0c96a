/* The file broker (vm/broker.c): what the monitor opens for a sandboxed VM process, and what it
 * refuses, including messages no honest VM process sends. */
#include "test.h"
#include "vm/broker.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static void *serve(void *arg)
{
    struct broker *b = arg;
    while (broker_serve(b) == 0) {
    }
    return NULL;
}

static void put(const char *dir, const char *name, const char *text)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        if (write(fd, text, strlen(text)) < 0) fprintf(stderr, "write %s failed\n", p);
        close(fd);
    }
}

static int bopen(const char *dir, const char *rel, int flags)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    return broker_open(p, flags);
}

/* the wire format (broker.c), to send what a compromised VM process might */
struct raw_req {
    uint32_t op;
    int32_t flags;
    char path[PATH_MAX];
};

static int32_t raw_request(int sock, const void *buf, size_t len, const int *fds, int nfds)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    union {
        char b[CMSG_SPACE(sizeof(int) * 2)];
        struct cmsghdr align;
    } c;
    memset(&c, 0, sizeof(c));
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds) {
        m.msg_control = c.b;
        m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *h = CMSG_FIRSTHDR(&m);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(h), fds, sizeof(int) * (size_t)nfds);
    }
    if (sendmsg(sock, &m, 0) < 0) return -9999;
    int32_t rep = 1;
    char cb[CMSG_SPACE(sizeof(int) * 4)];
    struct iovec riov = {.iov_base = &rep, .iov_len = sizeof(rep)};
    struct msghdr rm = {
        .msg_iov = &riov, .msg_iovlen = 1, .msg_control = cb, .msg_controllen = sizeof(cb)};
    if (recvmsg(sock, &rm, 0) != sizeof(rep)) return -9998;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&rm); h; h = CMSG_NXTHDR(&rm, h)) {
        int fd;
        memcpy(&fd, CMSG_DATA(h), sizeof(fd));
        close(fd);
        if (rep == 0) rep = 1; /* a descriptor came: say so */
    }
    return rep;
}

TEST(broker_opens_only_beneath_allowed_dirs)
{
    char base[] = "/tmp/vessel-broker-XXXXXX";
    CHECK(mkdtemp(base) != NULL);
    char in[64], out[64], inx[64], p[128];
    snprintf(in, sizeof(in), "%s/in", base);
    snprintf(out, sizeof(out), "%s/out", base);
    snprintf(inx, sizeof(inx), "%s/inx", base);
    mkdir(in, 0755);
    mkdir(out, 0755);
    mkdir(inx, 0755);
    put(in, "a.img", "hello");
    put(out, "b.img", "secret");
    put(inx, "c.img", "prefix");
    snprintf(p, sizeof(p), "%s/b.img", out);
    char l1[128], l2[128], fifo[128], sub[128];
    snprintf(l1, sizeof(l1), "%s/abs-link", in);
    snprintf(l2, sizeof(l2), "%s/rel-link", in);
    snprintf(fifo, sizeof(fifo), "%s/fifo", in);
    snprintf(sub, sizeof(sub), "%s/sub", in);
    CHECK(symlink(p, l1) == 0);
    CHECK(symlink("../out/b.img", l2) == 0);
    CHECK(mkfifo(fifo, 0600) == 0);
    mkdir(sub, 0755);
    put(sub, "d.img", "deeper");

    int sv[2];
    CHECK_EQ(broker_socketpair(sv), 0);
    struct broker *b = broker_new(sv[1]);
    pthread_t t;
    pthread_create(&t, NULL, serve, b);
    broker_set_client(sv[0]);
    CHECK(broker_available());

    CHECK_EQ(broker_allow_dir(in), 0);
    CHECK_EQ(broker_seal(), 0);
    CHECK_EQ(broker_allow_dir(out), -EPERM); /* sealed */

    int fd = bopen(in, "a.img", O_RDONLY);
    CHECK(fd >= 0);
    char buf[16] = "";
    CHECK_EQ(read(fd, buf, sizeof(buf)), 5);
    CHECK_STR(buf, "hello");
    CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    int w = bopen(in, "sub/d.img", O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    CHECK(w >= 0);
    CHECK_EQ(fcntl(w, F_GETFL) & O_ACCMODE, O_RDWR);

    CHECK_EQ(bopen(out, "b.img", O_RDONLY), -EXDEV);            /* outside */
    CHECK_EQ(bopen(in, "../out/b.img", O_RDONLY), -EXDEV);      /* .. */
    CHECK_EQ(bopen(in, "abs-link", O_RDONLY), -EXDEV);          /* absolute symlink out */
    CHECK_EQ(bopen(in, "rel-link", O_RDONLY), -EXDEV);          /* relative symlink out */
    CHECK_EQ(bopen(inx, "c.img", O_RDONLY), -EXDEV);            /* "in" is not a prefix of "inx" */
    CHECK_EQ(bopen(in, "fifo", O_RDONLY | O_NONBLOCK), -EPERM); /* not a regular file */
    CHECK_EQ(bopen(in, "sub", O_RDONLY), -EPERM);
    CHECK_EQ(bopen(in, "", O_RDONLY), -EPERM); /* the directory itself */
    CHECK_EQ(bopen(in, "missing.img", O_RDONLY), -ENOENT);
    CHECK_EQ(bopen(in, "new.img", O_RDWR | O_CREAT), -EINVAL);
    CHECK_EQ(bopen(in, "a.img", O_RDWR | O_TRUNC), -EINVAL);
    CHECK_EQ(bopen(in, "a.img", O_WRONLY), -EINVAL);
    CHECK_EQ(broker_open("a.img", O_RDONLY), -EINVAL); /* not absolute */

    /* reopen: never more access than the descriptor had */
    CHECK_EQ(broker_reopen(fd, O_RDWR), -EACCES);
    int r2 = broker_reopen(fd, O_RDONLY | O_CLOEXEC);
    CHECK(r2 >= 0 && r2 != fd);
    int r3 = broker_reopen(w, O_RDWR);
    CHECK(r3 >= 0);
    if (r3 >= 0) CHECK_EQ(fcntl(r3, F_GETFL) & O_ACCMODE, O_RDWR);

    /* what only a compromised VM process sends: each gets an error answer, nothing else */
    struct raw_req *q = calloc(1, sizeof(*q));
    CHECK_EQ(raw_request(sv[0], "abc", 3, NULL, 0), -EINVAL); /* short */
    q->op = 99;
    CHECK_EQ(raw_request(sv[0], q, sizeof(*q), NULL, 0), -EINVAL); /* unknown op */
    q->op = 4;                                                     /* REOPEN */
    q->flags = O_RDONLY;
    CHECK_EQ(raw_request(sv[0], q, sizeof(*q), NULL, 0), -EINVAL); /* no descriptor */
    int two[2] = {fd, w};
    CHECK_EQ(raw_request(sv[0], q, sizeof(*q), two, 2), -EINVAL); /* two */
    q->op = 3; /* OPEN, with a descriptor it must not carry, and an unterminated path */
    memset(q->path, 'a', sizeof(q->path));
    CHECK_EQ(raw_request(sv[0], q, sizeof(*q), &fd, 1), -EINVAL);
    q->op = 1; /* ALLOW after the seal */
    snprintf(q->path, sizeof(q->path), "/");
    CHECK_EQ(raw_request(sv[0], q, sizeof(*q), NULL, 0), -EPERM);
    q->op = 3;
    snprintf(q->path, sizeof(q->path), "%s/a.img", in);
    q->flags = O_RDONLY | O_PATH;
    CHECK_EQ(raw_request(sv[0], q, sizeof(*q), NULL, 0), -EINVAL);
    q->flags = O_RDONLY;
    CHECK_EQ(raw_request(sv[0], q, sizeof(*q), NULL, 0), 1); /* and an honest one still works */
    free(q);

    close(fd);
    close(w);
    if (r2 >= 0) close(r2);
    if (r3 >= 0) close(r3);
    broker_set_client(-1);
    close(sv[0]); /* the monitor sees the VM process's end go */
    pthread_join(t, NULL);
    broker_free(b);
    close(sv[1]);
    CHECK_EQ(broker_open("/tmp/x", O_RDONLY), -ENOTCONN);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
    CHECK_EQ(system(cmd), 0);
}

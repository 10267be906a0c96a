/* The guest side of the vsock tests (tests/net/run.py, group vsock): busybox has no vsock
 * client, so the suite cross-compiles this (riscv64-linux-gnu-gcc -static) into the test
 * initramfs.
 *   vsockt echo PORT          listen on PORT, echo every connection (a child each), forever
 *   vsockt connect CID PORT   connect; stdin to the socket (then shut its write side), the
 *                             socket to stdout; "connect: <error>" and status 2 if refused */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/vm_sockets.h> /* after sys/socket.h: it uses struct sockaddr */
#include <sys/wait.h>
#include <unistd.h>

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int echo(unsigned port)
{
    int l = socket(AF_VSOCK, SOCK_STREAM, 0);
    struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 64) < 0) {
        printf("listen: %s\n", strerror(errno));
        return 1;
    }
    signal(SIGCHLD, SIG_IGN);
    printf("listening %u\n", port);
    fflush(stdout);
    for (;;) {
        int c = accept(l, NULL, NULL);
        if (c < 0) continue;
        if (fork() == 0) {
            static char buf[65536];
            ssize_t n;
            while ((n = read(c, buf, sizeof(buf))) > 0)
                if (write_all(c, buf, (size_t)n) < 0) break;
            close(c);
            _exit(0);
        }
        close(c);
    }
}

static int connect_to(unsigned cid, unsigned port)
{
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
        printf("connect: %s\n", strerror(errno));
        return 2;
    }
    static char buf[65536];
    bool in_open = true;
    for (;;) {
        struct pollfd p[2] = {{.fd = s, .events = POLLIN},
                              {.fd = in_open ? 0 : -1, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) continue;
        if (p[0].revents) {
            ssize_t n = read(s, buf, sizeof(buf));
            if (n < 0) {
                fprintf(stderr, "read: %s\n", strerror(errno));
                return 3;
            }
            if (n == 0) return 0;
            if (write_all(1, buf, (size_t)n) < 0) return 3;
        }
        if (p[1].revents) {
            ssize_t n = read(0, buf, sizeof(buf));
            if (n <= 0) {
                shutdown(s, SHUT_WR);
                in_open = false;
            } else if (write_all(s, buf, (size_t)n) < 0) {
                fprintf(stderr, "write: %s\n", strerror(errno));
                return 3;
            }
        }
    }
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "echo")) return echo((unsigned)atoi(argv[2]));
    if (argc == 4 && !strcmp(argv[1], "connect"))
        return connect_to((unsigned)atoi(argv[2]), (unsigned)atoi(argv[3]));
    fprintf(stderr, "usage: vsockt echo PORT | vsockt connect CID PORT\n");
    return 1;
}

/* The VM process's monitor (supervise.h). */
#include "mgr/supervise.h"
#include "vm/broker.h"
#include "vm/sandbox.h"
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int supervise_fork(void (*cleanup)(void *ctx), void *ctx, const int *keep, size_t nkeep)
{
    pid_t vm = getpid();
    /* opened before the fork, so the monitor can never miss the VM process's end */
    int pidfd = (int)syscall(SYS_pidfd_open, vm, 0);
    if (pidfd < 0) return -errno;
    /* the file broker's socket pair (vm/broker.h): the monitor opens images for the VM process
     * once it is sandboxed */
    int sv[2];
    int r = broker_socketpair(sv);
    if (r < 0) {
        close(pidfd);
        return r;
    }
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(pidfd);
        close(sv[0]);
        close(sv[1]);
        return -e;
    }
    if (pid > 0) {
        close(pidfd);
        close(sv[1]);
        broker_set_client(sv[0]);
        return 0; /* the VM process goes on; the monitor is its child */
    }
    /* The monitor: out of the terminal's session, holding nothing of the VM's but what the
     * caller keeps (a lock that says "still cleaning up"). */
    setsid();
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    int fds[SANDBOX_MAX_FDS];
    int n = sandbox_list_fds(fds, SANDBOX_MAX_FDS);
    for (int i = 0; i < n; i++) {
        bool k = fds[i] == pidfd || fds[i] == sv[1];
        for (size_t j = 0; j < nkeep; j++)
            if (keep[j] == fds[i]) k = true;
        if (!k) close(fds[i]);
    }
    /* Until the VM process ends: serve its broker requests one at a time. */
    struct broker *b = broker_new(sv[1]);
    struct pollfd p[2] = {{.fd = pidfd, .events = POLLIN}, {.fd = sv[1], .events = POLLIN}};
    for (;;) {
        int n = poll(p, b ? 2 : 1, -1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 || p[0].revents) break;
        if (b && p[1].revents && broker_serve(b) < 0) {
            broker_free(b); /* the VM process closed its end (or broke the protocol) */
            b = NULL;
        }
    }
    broker_free(b);
    close(sv[1]);
    if (cleanup) cleanup(ctx);
    _exit(0);
}

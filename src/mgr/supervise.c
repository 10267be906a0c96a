/* The VM process's monitor (supervise.h). */
#include "mgr/supervise.h"
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
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(pidfd);
        return -e;
    }
    if (pid > 0) {
        close(pidfd);
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
        bool k = fds[i] == pidfd;
        for (size_t j = 0; j < nkeep; j++)
            if (keep[j] == fds[i]) k = true;
        if (!k) close(fds[i]);
    }
    struct pollfd p = {.fd = pidfd, .events = POLLIN};
    while (poll(&p, 1, -1) < 0 && errno == EINTR) {
    }
    if (cleanup) cleanup(ctx);
    _exit(0);
}

/* A sandboxed VM process cannot undo what it set up (unlink its sockets and reservation files,
 * remove its cgroup, restore a terminal after a seccomp kill). supervise_fork() splits off the
 * VM process and keeps the caller as its monitor, which forwards SIGTERM/SIGINT/SIGHUP, waits,
 * cleans up and ends the same way the VM process ended (its exit status, or its signal). */
#ifndef VESSEL_MGR_SUPERVISE_H
#define VESSEL_MGR_SUPERVISE_H
#include <stdbool.h>
#include <sys/types.h>

/* Call before any thread exists. Returns 0 in the VM process, -errno if fork failed; in the
 * monitor it does not return: it closes close_fd (-1: none; e.g. the VM process's readiness
 * pipe, which must reach EOF when the VM process closes it), and cleanup(ctx, crashed) runs
 * after the child is gone (crashed: it died of a signal), then the monitor exits or
 * re-raises. */
int supervise_fork(void (*cleanup)(void *ctx, bool crashed), void *ctx, int close_fd);
#endif

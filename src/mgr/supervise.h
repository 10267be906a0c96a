/* A sandboxed VM process cannot undo what it set up: unlink its sockets and admission entry,
 * remove its cgroup. supervise_fork() starts a small monitor for it: a child that leaves the
 * terminal's session, closes every descriptor but the ones it is told to keep, waits for the VM
 * process to end (a pidfd) and then runs cleanup(ctx). Meanwhile it is the VM process's file
 * broker (vm/broker.h): supervise_fork connects the VM process to it (broker_set_client). The VM
 * process stays the process the user started (its pid, its exit status, its locks). */
#ifndef VESSEL_MGR_SUPERVISE_H
#define VESSEL_MGR_SUPERVISE_H
#include <stdbool.h>
#include <stddef.h>

/* Call before any thread exists. Returns 0 in the VM process (the caller), -errno if the
 * monitor could not be made; never returns in the monitor. */
int supervise_fork(void (*cleanup)(void *ctx), void *ctx, const int *keep, size_t nkeep);
#endif

/* The file broker (docs/security.md "Opening files after the sandbox"). A sandboxed VM process
 * opens no files, yet PATCH /drives must switch a drive to another image while the guest runs
 * (Firecracker's way to hot-swap a disk). The VM process's monitor (mgr/supervise.c), which is
 * not sandboxed, opens such images on its behalf and passes the descriptor back over a
 * SOCK_SEQPACKET socket pair (SCM_RIGHTS), under rules it enforces itself, so a compromised
 * VM process gains only what the rules give:
 *  - only beneath directories named before the sandbox was entered (those of the VM's drives at
 *    boot), resolved with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), so neither "..",
 *    an absolute symlink nor a /proc magic link leads out of them;
 *  - only existing regular files, read-only or read-write, never truncated; new files only
 *    with broker_create (O_EXCL: nothing existing is replaced);
 *  - a descriptor the VM process already holds can be opened again (O_DIRECT for cache=none)
 *    with at most the access it had.
 * Requests are served one at a time, in order; each gets exactly one answer. */
#ifndef VESSEL_VM_BROKER_H
#define VESSEL_VM_BROKER_H
#include <stdbool.h>

#define BROKER_MAX_DIRS 16

/* A socket pair for a broker: sv[0] for the VM process, sv[1] for the monitor. 0 or -errno. */
int broker_socketpair(int sv[2]);

/* ---- the VM process's side ---- */
/* Use fd (sv[0]) for every request from now on. */
void broker_set_client(int fd);
bool broker_available(void);
/* Before the sandbox: files beneath dir (an existing directory; made absolute and canonical
 * here) may be opened later. 0 or -errno (-E2BIG past BROKER_MAX_DIRS, -EPERM once sealed). */
int broker_allow_dir(const char *dir);
/* No more directories: the monitor refuses any later broker_allow_dir. 0 or -errno. */
int broker_seal(void);
/* open(path, flags) through the monitor: path absolute; flags O_RDONLY or O_RDWR, optionally
 * with O_DIRECT, O_NONBLOCK, O_NOCTTY, O_CLOEXEC (the descriptor is always close-on-exec).
 * Returns the descriptor or -errno: -EXDEV outside the allowed directories, -EINVAL for flags
 * outside that set or a path that is not absolute, -EPERM for what is not a regular file. */
int broker_open(const char *path, int flags);
/* A new, empty regular file at path (absolute), read-write, mode 0600, beneath an allowed
 * directory: -EEXIST if anything is there already (no file is ever replaced or truncated).
 * For snapshot files. Descriptor or -errno. */
int broker_create(const char *path);
/* A new open file description of the file fd refers to (as open("/proc/self/fd/FD")), with
 * flags as for broker_open; O_RDWR only if fd is writable. Descriptor or -errno. */
int broker_reopen(int fd, int flags);

/* ---- the monitor's side ---- */
struct broker;
struct broker *broker_new(int sock);
/* Serve one request from the socket. 0, or -1 when the VM process closed its end (or sent
 * something no VM process sends: the broker then stops answering). */
int broker_serve(struct broker *b);
void broker_free(struct broker *b);
#endif

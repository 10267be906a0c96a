/* The VM process sandbox (docs/security.md): no_new_privs, closing inherited file descriptors,
 * dropping root to an unprivileged user, and a seccomp allow-list filter (libseccomp) for the
 * whole process, tightened per thread kind by the threads themselves. */
#ifndef VESSEL_VM_SANDBOX_H
#define VESSEL_VM_SANDBOX_H
#include <stdbool.h>
#include <stddef.h>

/* The user a VM process started as root drops to when the caller names none: the dedicated
 * system user when the host has one, else nobody. */
#define SANDBOX_DEFAULT_USER       "vessel"
#define SANDBOX_FALLBACK_USER      "nobody"
#define SANDBOX_MAX_FDS            1024
#define SANDBOX_TEST_FORBIDDEN_ENV "VESSEL_TEST_FORBIDDEN_SYSCALL"

struct sandbox_opts {
    /* Root only: the user to become (NULL: SANDBOX_DEFAULT_USER, else SANDBOX_FALLBACK_USER).
     * Ignored when not root: there is nothing to drop. */
    const char *user;
    bool keep_root; /* root stays root (only no_new_privs, fds and seccomp) */
    /* File descriptors to keep; every other one is closed. 0, 1 and 2 are always kept. */
    const int *keep_fds;
    size_t nkeep;
    /* The VM has user-mode networking (libslirp): the process filter lets threads open IPv4
     * and IPv6 sockets and connect them (the guest's outbound connections are made by the
     * network thread). Hart threads never get these. */
    bool net;
    /* The VM has a vsock device (backend/vsock): the backend thread connects Unix sockets for
     * the guest's connections to the host ("<path>_<port>"). socket() stays limited to
     * AF_UNIX unless net is set too. */
    bool vsock;
    /* The VM has a tap: its network thread sets the tap's receive offloads (TUNSETOFFLOAD)
     * when the guest's driver starts. */
    bool tap;
};

/* Enter the sandbox: PR_SET_NO_NEW_PRIVS, close every fd not kept, drop to o->user when root,
 * install the process-wide seccomp filter on every thread (TSYNC). Call once, after set-up
 * (files opened, sockets bound, boot images read), from the thread that will drive the VM.
 * Returns 0, or -errno with a one-line reason in err; after a failure the process must not run
 * the guest (a half-entered sandbox is not one). */
int sandbox_enter(const struct sandbox_opts *o, char *err, size_t errlen);

/* True once sandbox_enter succeeded. */
bool sandbox_active(void);

/* Thread kinds with a filter of their own. Threads started before sandbox_enter (console
 * reader, block I/O, gdb stub, API server) keep the process-wide filter. */
enum sandbox_thread {
    SANDBOX_THREAD_HART, /* runs guest code and device models: the guest's first target */
};

/* A thread created after sandbox_enter narrows its own filter to what its kind needs (filters
 * stack: a call must pass both). A no-op when the sandbox is off. Returns 0 or -errno; a thread
 * that fails here must not go on (the caller logs and stops it). */
int sandbox_enter_thread(enum sandbox_thread kind);

/* Lists the open fds of this process into fds (sorted); returns how many, or -errno. */
int sandbox_list_fds(int *fds, size_t max);
/* Closes every fd >= 3 that is not in keep[]. Returns 0 or -errno. */
int sandbox_close_fds_except(const int *keep, size_t nkeep);

/* Builds the filters (with and without networking) without loading them (unit tests); returns
 * 0 or -errno. */
int sandbox_check_filters(char *err, size_t errlen);
#endif

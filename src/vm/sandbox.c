/* The VM process sandbox (sandbox.h, docs/security.md).
 *
 * The allow lists below come from reading the code and from `strace -f` of vessel after set-up:
 * default boot, 4 harts, raw disks (io_uring and the thread pool, cache=none), guest reboot, the
 * gdb stub, the console on a tty and on pipes, and a libmicrohttpd server thread
 * (MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL on a Unix socket) for the REST API.
 * glibc wrappers used after set-up map to the syscalls named here (pthread_create: clone3, with
 * clone as its fallback; thread start: rseq, set_robust_list; malloc: mmap, mprotect, munmap,
 * madvise, brk; abort/raise: getpid, gettid, tgkill, rt_sigprocmask, rt_sigaction). */
#include "vm/sandbox.h"
#include "util/log.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/futex.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_ASAN 1
#endif
#endif

static atomic_bool active;
static bool net_allowed;              /* sandbox_opts.net of the sandbox being built */
static bool tap_allowed;              /* sandbox_opts.tap */
static bool vsock_allowed;            /* sandbox_opts.vsock */
static int test_forbidden_delay = -1; /* seconds after the first hart starts; -1: off */
static atomic_int test_hart_tid;

static int fail(char *err, size_t errlen, int e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -e;
}

bool sandbox_active(void)
{
    return atomic_load(&active);
}

/* ---- file descriptors ---- */

int sandbox_list_fds(int *fds, size_t max)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -errno;
    int self = dirfd(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long v = strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end || v < 0 || v == self) continue;
        if (n == max) {
            closedir(d);
            return -EMFILE;
        }
        fds[n++] = (int)v;
    }
    closedir(d);
    /* insertion sort: a few dozen entries */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && fds[j - 1] > fds[j]; j--) {
            int t = fds[j];
            fds[j] = fds[j - 1];
            fds[j - 1] = t;
        }
    return (int)n;
}

static bool in_list(int fd, const int *l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (l[i] == fd) return true;
    return false;
}

int sandbox_close_fds_except(const int *keep, size_t nkeep)
{
    static int fds[SANDBOX_MAX_FDS];
    int n = sandbox_list_fds(fds, SANDBOX_MAX_FDS);
    if (n < 0) return n;
    for (int i = 0; i < n; i++)
        if (fds[i] > 2 && !in_list(fds[i], keep, nkeep)) close(fds[i]);
    return 0;
}

/* ---- user ---- */

/* Looked up before the fds are closed and before the filter (NSS may open files and sockets). */
static int lookup_user(const char *name, uid_t *uid, gid_t *gid, char *out, size_t outlen,
                       char *err, size_t errlen)
{
    struct passwd *pw = NULL;
    if (name) {
        pw = getpwnam(name);
        if (!pw) return fail(err, errlen, ENOENT, "sandbox: no user named '%s' (--user)", name);
    } else {
        pw = getpwnam(SANDBOX_DEFAULT_USER);
        if (!pw) pw = getpwnam(SANDBOX_FALLBACK_USER);
        if (!pw)
            return fail(err, errlen, ENOENT,
                        "sandbox: neither user '%s' nor '%s' exists (name one with --user)",
                        SANDBOX_DEFAULT_USER, SANDBOX_FALLBACK_USER);
    }
    if (pw->pw_uid == 0 || pw->pw_gid == 0)
        return fail(err, errlen, EINVAL, "sandbox: user '%s' is root (uid or gid 0)", pw->pw_name);
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    snprintf(out, outlen, "%s", pw->pw_name);
    return 0;
}

static int drop_user(const char *name, uid_t uid, gid_t gid, char *err, size_t errlen)
{
    /* Groups first: once the uid is gone the process may no longer change them. glibc applies
     * setresgid/setresuid to every thread of the process (its setxid broadcast). */
    if (setgroups(0, NULL) < 0)
        return fail(err, errlen, errno, "sandbox: setgroups: %s", strerror(errno));
    if (setresgid(gid, gid, gid) < 0)
        return fail(err, errlen, errno, "sandbox: setresgid %u: %s", (unsigned)gid,
                    strerror(errno));
    if (setresuid(uid, uid, uid) < 0)
        return fail(err, errlen, errno, "sandbox: setresuid %u: %s", (unsigned)uid,
                    strerror(errno));
    /* No way back: all three uids and gids changed, capabilities went with uid 0. */
    uid_t r, e, s;
    gid_t rg, eg, sg;
    if (getresuid(&r, &e, &s) < 0 || r != uid || e != uid || s != uid ||
        getresgid(&rg, &eg, &sg) < 0 || rg != gid || eg != gid || sg != gid || setuid(0) == 0 ||
        seteuid(0) == 0 || setgid(0) == 0)
        return fail(err, errlen, EPERM, "sandbox: the process could regain root after the drop");
    log_info("sandbox: running as %s (uid %u gid %u)", name, (unsigned)uid, (unsigned)gid);
    return 0;
}

/* ---- seccomp ---- */

#define ALLOW(ctx, name)                                                                           \
    do {                                                                                           \
        int r_ = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(name), 0);                         \
        if (r_ < 0) return r_;                                                                     \
    } while (0)
#define ALLOW_IF(ctx, name, ...)                                                                   \
    do {                                                                                           \
        int r_ = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(name), __VA_ARGS__);               \
        if (r_ < 0) return r_;                                                                     \
    } while (0)

/* What every thread may need: memory (malloc arenas grow with mprotect), futexes, time, the
 * exit paths, and the signal paths of abort() and the console's fatal-signal handler, which
 * restores the terminal and re-raises on whatever thread the signal arrived. */
static int allow_common(scmp_filter_ctx ctx)
{
    ALLOW(ctx, futex);
    ALLOW(ctx, sched_yield);
    ALLOW(ctx, clock_gettime); /* the vDSO's fallback */
    ALLOW(ctx, gettimeofday);
    ALLOW(ctx, clock_nanosleep);
    ALLOW(ctx, nanosleep);
    ALLOW(ctx, getrandom); /* virtio-rng (on the notifying hart) and the device tree seed */
    ALLOW(ctx, madvise);
    ALLOW(ctx, munmap);
    /* malloc counts CPUs once more than 8 arenas exist (a thread's first allocation) */
    ALLOW(ctx, sched_getaffinity);
    ALLOW(ctx, brk);
    /* Never a mapping both writable and executable: a guest with a write primitive must not
     * get a place to put host code. PROT_EXEC alone (dlopen) is not needed after set-up. */
    ALLOW_IF(ctx, mmap, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    ALLOW_IF(ctx, mprotect, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    ALLOW(ctx, mremap);
    ALLOW(ctx, write); /* console, log, eventfd kicks */
    ALLOW(ctx, writev);
    ALLOW(ctx, read);
    ALLOW(ctx, close);
    ALLOW_IF(ctx, newfstatat, 1, SCMP_A3(SCMP_CMP_EQ, AT_EMPTY_PATH)); /* fstat(fd): stdio */
    ALLOW(ctx, fstat);
    ALLOW(ctx, lseek);
    ALLOW(ctx, rt_sigprocmask);
    ALLOW(ctx, rt_sigreturn);
    ALLOW(ctx, rt_sigaction);
    ALLOW(ctx, sigaltstack);
    ALLOW(ctx, getpid);
    ALLOW(ctx, gettid);
    ALLOW(ctx, getuid);
    ALLOW(ctx, geteuid);
    ALLOW(ctx, getgid);
    ALLOW(ctx, getegid);
    /* Signals only to this process (raise, abort, pthread_kill). */
    ALLOW_IF(ctx, tgkill, 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));
    ALLOW_IF(ctx, kill, 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));
    ALLOW(ctx, exit);
    ALLOW(ctx, exit_group);
    ALLOW(ctx, restart_syscall);
    /* The terminal: get and set attributes only (raw mode on, restored at exit or on a fatal
     * signal); no TIOCSTI (pushing input into the controlling terminal). */
    ALLOW_IF(ctx, ioctl, 1, SCMP_A1(SCMP_CMP_EQ, TCGETS));
    ALLOW_IF(ctx, ioctl, 1, SCMP_A1(SCMP_CMP_EQ, TCSETS));
    ALLOW_IF(ctx, ioctl, 1, SCMP_A1(SCMP_CMP_EQ, TCSETSW));
    ALLOW_IF(ctx, ioctl, 1, SCMP_A1(SCMP_CMP_EQ, TCSETSF));
    ALLOW(ctx, io_uring_enter); /* block requests are submitted on the hart's thread */
#ifndef SANDBOX_ASAN
    /* Opening a file fails (EACCES) instead of killing: glibc's malloc reads
     * /proc/sys/vm/overcommit_memory the first time it shrinks a thread's heap, on any thread,
     * and copes with a failed open (it then never unmaps heap tails, only discards them). */
    int e = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 0);
    if (e == 0) e = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(open), 0);
    if (e < 0) return e;
#endif
#ifdef SANDBOX_ASAN
    /* The sanitizer runtime: its reports read /proc/self/maps and symbolize, and its allocator
     * maps and tracks memory on its own. Only in the ASan build. */
    ALLOW(ctx, open);
    ALLOW(ctx, openat);
    ALLOW(ctx, readlink);
    ALLOW(ctx, readlinkat);
    ALLOW(ctx, prctl);
    ALLOW(ctx, getrlimit);
    ALLOW(ctx, prlimit64);
    ALLOW(ctx, pipe2);
    ALLOW(ctx, dup2);
    ALLOW(ctx, wait4);
    ALLOW(ctx, uname);
    ALLOW(ctx, newfstatat);
    ALLOW(ctx, stat);
    ALLOW(ctx, access);
    ALLOW(ctx, getppid);
    ALLOW(ctx, pread64);
    ALLOW(ctx, lstat);
    ALLOW(ctx, statx);
    ALLOW(ctx, faccessat);
    ALLOW(ctx, faccessat2);
    /* LeakSanitizer at exit stops the world from a tracer task (clone without CLONE_THREAD,
     * ptrace, /proc/self/task); a report runs llvm-symbolizer (fork, pipes, execve). */
    ALLOW(ctx, clone);
    ALLOW(ctx, ptrace);
    ALLOW(ctx, getdents);
    ALLOW(ctx, getdents64);
    ALLOW(ctx, execve);
    ALLOW(ctx, fork);
    ALLOW(ctx, vfork);
    ALLOW(ctx, dup3);
#endif
    return 0;
}

/* The rest of the process: the VM's control thread (rebuilds the machine on a guest reboot:
 * guest RAM, device threads, hart threads), the console reader, the block I/O completion
 * thread and pool, the gdb stub, the REST API server thread (libmicrohttpd + epoll). */
static int allow_process(scmp_filter_ctx ctx)
{
    int r = allow_common(ctx);
    if (r < 0) return r;
        /* Threads only (pthread_create): a new process could escape the filter's accounting. */
#ifndef SANDBOX_ASAN
    const scmp_datum_t thread = CLONE_VM | CLONE_THREAD | CLONE_SIGHAND;
    ALLOW_IF(ctx, clone, 1, SCMP_A0(SCMP_CMP_MASKED_EQ, thread, thread));
#endif
    /* clone3 passes its flags in memory that seccomp cannot read: fail it with ENOSYS so glibc
     * falls back to clone, whose flags the rule above checks. */
    int e = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    if (e < 0) return e;
    ALLOW(ctx, set_robust_list);
    ALLOW(ctx, rseq);
    ALLOW(ctx, poll);
    ALLOW(ctx, ppoll);
    ALLOW(ctx, select);
    ALLOW(ctx, pselect6);
    ALLOW(ctx, readv);
    /* The thread pool I/O engine; io_uring set-up happened before the sandbox. */
    ALLOW(ctx, preadv);
    ALLOW(ctx, pwritev);
    ALLOW(ctx, pread64);
    ALLOW(ctx, pwrite64);
    ALLOW(ctx, fdatasync);
    ALLOW(ctx, fsync);
    ALLOW(ctx, fallocate);
    ALLOW(ctx, ftruncate);       /* the console log rotates in place (backend/chr/sock.c) */
    ALLOW(ctx, mincore);         /* a snapshot skips guest pages never touched */
    ALLOW(ctx, rt_sigtimedwait); /* a VM process's signal thread (sigwait: SIGTERM stops it) */
    ALLOW(ctx, fcntl);
    /* Sockets: the gdb stub and the API accept on sockets bound before the sandbox; a new
     * socket may only be a Unix one (never a network connection out of a compromised VM). */
    ALLOW(ctx, accept);
    ALLOW(ctx, accept4);
    ALLOW(ctx, recvfrom);
    ALLOW(ctx, recvmsg);
    ALLOW(ctx, sendto);
    ALLOW(ctx, sendmsg);
    ALLOW(ctx, shutdown);
    ALLOW(ctx, getsockname);
    ALLOW(ctx, getpeername);
    ALLOW(ctx, getsockopt);
    ALLOW(ctx, setsockopt);
    ALLOW_IF(ctx, socket, 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
    ALLOW_IF(ctx, socketpair, 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
    ALLOW(ctx, epoll_create1);
    ALLOW(ctx, epoll_ctl);
    ALLOW(ctx, epoll_wait);
    ALLOW(ctx, epoll_pwait);
    ALLOW(ctx, eventfd2);
    ALLOW(ctx, pipe2);
    ALLOW(ctx, timerfd_create);
    ALLOW(ctx, timerfd_settime);
    ALLOW(ctx, dup);
    /* A thread narrowing its own filter (sandbox_enter_thread): adding a filter only takes
     * permissions away. */
    ALLOW_IF(ctx, seccomp, 1, SCMP_A0(SCMP_CMP_EQ, SECCOMP_SET_MODE_FILTER));
    if (vsock_allowed && !net_allowed) {
        /* virtio-vsock (backend/vsock/uds.c): a guest connection to host port P is a connect to
         * the Unix socket "<path>_<P>". Only AF_UNIX sockets can be made (above), so connect
         * reaches nothing but Unix sockets, and only those the process's user may write. */
        ALLOW(ctx, connect);
    }
    if (tap_allowed) /* backend/net/tap.c: the guest's receive offloads, on the network thread */
        ALLOW_IF(ctx, ioctl, 1, SCMP_A1(SCMP_CMP_EQ, TUNSETOFFLOAD));
    if (net_allowed) {
        /* User-mode networking (backend/net/slirp.c): libslirp makes the guest's TCP and UDP
         * connections and pings as host sockets on the network thread, so that thread needs
         * IPv4/IPv6 sockets (TCP, UDP, unprivileged ICMP datagram sockets) and connect.
         * Forwarded host ports were bound and listen before the sandbox: no bind or listen.
         * Seccomp filters cannot tell threads apart, so this is process-wide; the hart threads
         * (the guest's first target) stack their own filter without it. */
        ALLOW_IF(ctx, socket, 1, SCMP_A0(SCMP_CMP_EQ, AF_INET));
        ALLOW_IF(ctx, socket, 1, SCMP_A0(SCMP_CMP_EQ, AF_INET6));
        ALLOW(ctx, connect);
        /* libslirp sizes a UDP datagram before it reads it (sorecvfrom: FIONREAD). */
        ALLOW_IF(ctx, ioctl, 1, SCMP_A1(SCMP_CMP_EQ, FIONREAD));
#ifndef SANDBOX_ASAN /* the ASan build allows every newfstatat */
        /* libslirp stat()s /etc/resolv.conf to find the host's DNS server when the guest asks
         * 10.0.2.3: let the path lookup fail (like open, above) instead of killing. The
         * backend read the file before the sandbox and sends DNS on itself (slirp.h). */
        int e2 = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(newfstatat), 1,
                                  SCMP_A3(SCMP_CMP_NE, AT_EMPTY_PATH));
        if (e2 < 0) return e2;
#endif
    }
    return 0;
}

/* A hart thread runs guest code and the device models (MMIO handlers, virtqueues, block request
 * submission): the code a hostile guest reaches first gets the least. */
static int allow_hart(scmp_filter_ctx ctx)
{
    return allow_common(ctx);
}

/* VESSEL_SECCOMP_DEBUG=1 (debugging only): a forbidden call prints its number and exits with
 * SIGSYS's status instead of a silent kill, so a missing entry is found at once (a thread that
 * blocks SIGSYS is still killed silently). VESSEL_SECCOMP_DEBUG=log: forbidden calls are allowed
 * and logged by the kernel (dmesg / audit: "type=1326 ... syscall=N"), to collect them all. */
static bool debug_trap, debug_log;

static void sigsys_debug(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    char msg[96];
    int n = snprintf(msg, sizeof(msg), "\nvessel: seccomp: forbidden system call %d (thread %d)\n",
                     si->si_syscall, (int)syscall(SYS_gettid));
    if (n > 0) {
        ssize_t w = write(2, msg, (size_t)n);
        (void)w;
    }
    signal(sig, SIG_DFL);
    raise(sig);
    _exit(128 + sig);
}

static int build_filter(scmp_filter_ctx *out, int (*allow)(scmp_filter_ctx), bool tsync)
{
    uint32_t def = debug_log ? SCMP_ACT_LOG : debug_trap ? SCMP_ACT_TRAP : SCMP_ACT_KILL_PROCESS;
    scmp_filter_ctx ctx = seccomp_init(def);
    if (!ctx) return -ENOMEM;
    int r = allow(ctx);
    if (!r && tsync) r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    /* no_new_privs is set by the caller (sandbox_enter), not by libseccomp behind its back */
    if (!r) r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
    if (r < 0) {
        seccomp_release(ctx);
        return r;
    }
    *out = ctx;
    return 0;
}

int sandbox_check_filters(char *err, size_t errlen)
{
    int (*const kinds[])(scmp_filter_ctx) = {allow_process, allow_hart, allow_process,
                                             allow_process};
    const char *names[] = {"process", "hart", "process (networking)", "process (vsock)"};
    bool saved = net_allowed, saved_vsock = vsock_allowed, saved_tap = tap_allowed;
    for (unsigned i = 0; i < 4; i++) {
        scmp_filter_ctx ctx;
        net_allowed = i == 2;
        vsock_allowed = i == 3;
        tap_allowed = i == 2;
        int r = build_filter(&ctx, kinds[i], i != 1);
        net_allowed = saved;
        vsock_allowed = saved_vsock;
        tap_allowed = saved_tap;
        if (!r) {
            /* export to /dev/null proves libseccomp can generate the BPF program */
            int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
            if (fd < 0) r = -errno;
            if (!r) r = seccomp_export_bpf(ctx, fd);
            if (fd >= 0) close(fd);
            seccomp_release(ctx);
        }
        if (r < 0)
            return fail(err, errlen, -r, "sandbox: the %s filter: %s", names[i], strerror(-r));
    }
    return 0;
}

/* ---- the forbidden-syscall test hook ---- */

static void test_forbidden_handler(int sig)
{
    (void)sig;
    /* What an exploit would do next: a network connection out (forbidden in every build; the
     * ASan build allows execve for its symbolizer). The filter kills the process at the call. */
    syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
}

/* Waits for the first hart thread, then the delay, then signals it: its handler, on the hart
 * thread, makes the forbidden call. */
static void *test_forbidden_thread(void *arg)
{
    (void)arg;
    int tid;
    while (!(tid = atomic_load(&test_hart_tid))) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    struct timespec ts = {test_forbidden_delay, 0};
    nanosleep(&ts, NULL);
    syscall(SYS_tgkill, getpid(), tid, SIGUSR2);
    return NULL;
}

static int test_hook_arm(char *err, size_t errlen)
{
    const char *v = getenv(SANDBOX_TEST_FORBIDDEN_ENV);
    if (!v || !*v) return 0;
    char *end;
    long s = strtol(v, &end, 10);
    if (*end || s < 0 || s > 3600)
        return fail(err, errlen, EINVAL, "%s=%s: expected seconds (0 to 3600)",
                    SANDBOX_TEST_FORBIDDEN_ENV, v);
    test_forbidden_delay = (int)s;
    struct sigaction sa = {.sa_handler = test_forbidden_handler};
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGUSR2, &sa, NULL) < 0)
        return fail(err, errlen, errno, "sandbox: test hook: %s", strerror(errno));
    pthread_t t;
    int e = pthread_create(&t, NULL, test_forbidden_thread, NULL);
    if (e) return fail(err, errlen, e, "sandbox: test hook thread: %s", strerror(e));
    pthread_detach(t);
    log_warn("test hook %s: a hart makes a forbidden system call %ld s after it starts",
             SANDBOX_TEST_FORBIDDEN_ENV, s);
    return 0;
}

/* ---- entering ---- */

int sandbox_enter(const struct sandbox_opts *o, char *err, size_t errlen)
{
    if (atomic_load(&active)) return fail(err, errlen, EALREADY, "sandbox: already entered");
    const char *dbg = getenv("VESSEL_SECCOMP_DEBUG");
    debug_trap = dbg && !strcmp(dbg, "1");
    debug_log = dbg && !strcmp(dbg, "log");
    if (debug_trap) {
        struct sigaction sa = {.sa_sigaction = sigsys_debug, .sa_flags = SA_SIGINFO};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSYS, &sa, NULL);
    }
    /* execve can never gain privileges again (setuid binaries, file capabilities); also what
     * lets an unprivileged process install a seccomp filter. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return fail(err, errlen, errno, "sandbox: PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
    bool drop = geteuid() == 0 && !o->keep_root;
    uid_t uid = 0;
    gid_t gid = 0;
    char name[256];
    int r;
    if (drop && (r = lookup_user(o->user, &uid, &gid, name, sizeof(name), err, errlen)) < 0)
        return r;
    r = sandbox_close_fds_except(o->keep_fds, o->nkeep);
    if (r < 0) return fail(err, errlen, -r, "sandbox: closing file descriptors: %s", strerror(-r));
    if (drop && (r = drop_user(name, uid, gid, err, errlen)) < 0) return r;
    /* glibc reads /etc/localtime on the first time conversion (libmicrohttpd's Date header):
     * do it now, while open is allowed. */
    tzset();
    net_allowed = o->net;
    vsock_allowed = o->vsock;
    tap_allowed = o->tap;
    r = test_hook_arm(err, errlen);
    if (r < 0) return r;
    scmp_filter_ctx ctx;
    r = build_filter(&ctx, allow_process, true);
    if (r < 0) return fail(err, errlen, -r, "sandbox: building the filter: %s", strerror(-r));
    r = seccomp_load(ctx);
    seccomp_release(ctx);
    if (r < 0)
        return fail(err, errlen, -r, "sandbox: loading the seccomp filter: %s", strerror(-r));
    atomic_store(&active, true);
    return 0;
}

int sandbox_enter_thread(enum sandbox_thread kind)
{
    if (!atomic_load(&active)) return 0;
    scmp_filter_ctx ctx;
    if (kind != SANDBOX_THREAD_HART) return -EINVAL;
    int r = build_filter(&ctx, allow_hart, false);
    if (r < 0) return r;
    r = seccomp_load(ctx);
    seccomp_release(ctx);
    if (r < 0) return r;
    if (kind == SANDBOX_THREAD_HART && test_forbidden_delay >= 0) {
        int zero = 0;
        atomic_compare_exchange_strong(&test_hart_tid, &zero, (int)syscall(SYS_gettid));
    }
    return 0;
}

/* The VM process sandbox and cgroup helpers. Filters are loaded in forked children (a filter
 * cannot be removed again), which report through their exit status or die of SIGSYS. */
#include "test.h"
#include "cpu/riscv/jit/cache.h"
#include "cpu/riscv/jit/x86.h"
#include "machine/machine.h"
#include "vm/cgroup.h"
#include "vm/sandbox.h"
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs fn in a child; returns its wait status. */
static int in_child(int (*fn)(void))
{
    fflush(NULL);
    pid_t p = fork();
    if (p == 0) _exit(fn());
    int st = -1;
    if (p > 0) waitpid(p, &st, 0);
    return st;
}

static bool exited_with(int st, int code)
{
    return WIFEXITED(st) && WEXITSTATUS(st) == code;
}

static bool killed_by_sigsys(int st)
{
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS;
}

/* Enters the sandbox keeping every open fd and (as root) staying root unless drop. */
static int enter(bool drop)
{
    static int fds[SANDBOX_MAX_FDS];
    int n = sandbox_list_fds(fds, SANDBOX_MAX_FDS);
    if (n < 0) return 90;
    struct sandbox_opts o = {.keep_root = !drop, .keep_fds = fds, .nkeep = (size_t)n};
    char err[256];
    if (sandbox_enter(&o, err, sizeof(err)) < 0) {
        fprintf(stderr, "  sandbox_enter: %s\n", err);
        return 91;
    }
    return 0;
}

TEST(sandbox_filters_build)
{
    char err[256] = "";
    CHECK_EQ(sandbox_check_filters(err, sizeof(err)), 0);
    CHECK_STR(err, "");
}

static int fd_a, fd_b, fd_c;

static int child_close_fds(void)
{
    int keep[] = {fd_b};
    if (sandbox_close_fds_except(keep, 1) < 0) return 10;
    if (fcntl(fd_a, F_GETFD) != -1 || errno != EBADF) return 11;
    if (fcntl(fd_c, F_GETFD) != -1 || errno != EBADF) return 12;
    if (fcntl(fd_b, F_GETFD) < 0) return 13;
    /* 0-2 always stay (the console) */
    if (fcntl(1, F_GETFD) < 0 || fcntl(2, F_GETFD) < 0) return 14;
    return 0;
}

TEST(sandbox_closes_fds_not_kept)
{
    fd_a = open("/dev/null", O_RDONLY);
    fd_b = open("/dev/null", O_RDONLY);
    fd_c = open("/dev/null", O_RDONLY);
    CHECK(fd_a > 2 && fd_b > 2 && fd_c > 2);
    int fds[SANDBOX_MAX_FDS];
    int n = sandbox_list_fds(fds, SANDBOX_MAX_FDS);
    CHECK(n >= 3);
    bool seen = false;
    for (int i = 0; i < n; i++) {
        if (fds[i] == fd_b) seen = true;
        if (i) CHECK(fds[i - 1] < fds[i]); /* sorted */
    }
    CHECK(seen);
    CHECK(exited_with(in_child(child_close_fds), 0));
    close(fd_a);
    close(fd_b);
    close(fd_c);
}

static int child_allowed_calls(void)
{
    int r = enter(false);
    if (r) return r;
    if (!sandbox_active()) return 20;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) return 22;
    int u = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0); /* the API socket family */
    if (u < 0) return 23;
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 24;
    if (mprotect(p, 4096, PROT_READ) < 0) return 25;
    char *m = malloc(1 << 20); /* the allocator's paths */
    if (!m) return 26;
    free(m);
#ifndef __SANITIZE_ADDRESS__
    /* open fails instead of killing (glibc's malloc may try one, sandbox.c) */
    if (open("/etc/passwd", O_RDONLY) != -1 || errno != EACCES) return 27;
#endif
    return 0;
}

TEST(sandbox_allows_what_vessel_uses)
{
    CHECK(exited_with(in_child(child_allowed_calls), 0));
}

static int child_inet_socket(void)
{
    if (enter(false)) return 1;
    syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
    return 0; /* not reached: killed */
}

static int child_wx_mapping(void)
{
    if (enter(false)) return 1;
    mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return 0;
}

static int child_tiocsti(void)
{
    if (enter(false)) return 1;
    char c = 'x';
    ioctl(0, TIOCSTI, &c);
    return 0;
}

#ifndef __SANITIZE_ADDRESS__
static int child_new_process(void)
{
    if (enter(false)) return 1;
    /* fork() is clone without CLONE_THREAD (glibc may try clone3 first: ENOSYS, then clone) */
    pid_t p = fork();
    if (p == 0) _exit(0);
    return 0;
}
#endif

static int child_hart_no_socket(void)
{
    if (enter(false)) return 1;
    if (sandbox_enter_thread(SANDBOX_THREAD_HART) < 0) return 2;
    if (getpid() <= 0) return 3;                  /* still allowed */
    syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0); /* allowed process-wide, not on a hart */
    return 0;
}

TEST(sandbox_kills_forbidden_calls)
{
    CHECK(killed_by_sigsys(in_child(child_inet_socket)));
    CHECK(killed_by_sigsys(in_child(child_wx_mapping)));
    CHECK(killed_by_sigsys(in_child(child_tiocsti)));
#ifndef __SANITIZE_ADDRESS__ /* the ASan build allows clone for LeakSanitizer */
    CHECK(killed_by_sigsys(in_child(child_new_process)));
#endif
    CHECK(killed_by_sigsys(in_child(child_hart_no_socket)));
}

/* The JIT's code cache under the filter (vm.c vm_boot): a cache made before it and released
 * (a machine destroyed by a guest reboot) is taken over without memfd_create or an
 * executable mapping, and code written through its RW view runs from its RX view. */
#define SB_JIT_CACHE_SIZE (192u << 10) /* a size no other test keeps a spare of */
static int child_jit_cache_after_filter(void)
{
    struct jit_cache c;
    if (jit_cache_acquire(&c, SB_JIT_CACHE_SIZE) < 0) return 2;
    c.rw[c.used] = 0xcc; /* old code, flushed by the next owner */
    jit_cache_release(&c);
    if (enter(false)) return 1;
    if (jit_cache_acquire(&c, SB_JIT_CACHE_SIZE) < 0) return 3;
    if (!c.reused || c.rw[c.used] != 0) return 4;
    struct x86 e;
    x86_init(&e, c.rw + c.used, jit_cache_avail(&c));
    x86_mov_imm(&e, RAX, 42);
    x86_ret(&e);
    uint32_t off = jit_cache_commit(&c, x86_len(&e));
    int (*fn)(void) = (int (*)(void))(void *)(c.rx + off);
    return fn() == 42 ? 0 : 5;
}

/* Without a spare the cache would need memfd_create and PROT_EXEC: the filter kills. */
static int child_jit_cache_new_after_filter(void)
{
    if (enter(false)) return 1;
    struct jit_cache c;
    jit_cache_acquire(&c, SB_JIT_CACHE_SIZE + 4096);
    return 0;
}

TEST(sandbox_jit_cache_survives_the_filter)
{
    CHECK(exited_with(in_child(child_jit_cache_after_filter), 0));
    CHECK(killed_by_sigsys(in_child(child_jit_cache_new_after_filter)));
}

static int child_drop_root(void)
{
    if (enter(true)) return 1;
    if (getuid() == 0 || geteuid() == 0 || getgid() == 0) return 2;
    /* sandbox_enter checked setuid(0) fails before loading the filter; now the call itself is
     * not even allowed */
    syscall(SYS_setuid, 0);
    return 3;
}

TEST(sandbox_drops_root)
{
    if (geteuid() != 0 || (!getpwnam(SANDBOX_DEFAULT_USER) && !getpwnam(SANDBOX_FALLBACK_USER))) {
        fprintf(stderr, "  (skipped: not root or no unprivileged user)\n");
        return;
    }
    CHECK(killed_by_sigsys(in_child(child_drop_root)));
}

TEST(cgroup_names_and_limits)
{
    CHECK(cgroup_name_valid("web"));
    CHECK(cgroup_name_valid("vm-1.test_2"));
    CHECK(!cgroup_name_valid(""));
    CHECK(!cgroup_name_valid(".."));
    CHECK(!cgroup_name_valid(".hidden"));
    CHECK(!cgroup_name_valid("a/b"));
    CHECK(!cgroup_name_valid("a b"));
    CHECK(!cgroup_name_valid(NULL));
    char longname[70];
    memset(longname, 'a', 65);
    longname[65] = 0;
    CHECK(!cgroup_name_valid(longname));
    longname[64] = 0;
    CHECK(cgroup_name_valid(longname));
    /* guest + 64 MiB + 16 MiB per vCPU + RAM/512 (rounded up to a MiB) */
    CHECK_EQ(cgroup_memory_limit(512ull << 20, 1, 0), (512ull + 64 + 16 + 1) << 20);
    CHECK_EQ(cgroup_memory_limit(1ull << 30, 4, 0), (1024ull + 64 + 64 + 2) << 20);
    /* under the JIT each hart's code cache may fill up: added whole */
    CHECK_EQ(cgroup_memory_limit(1ull << 30, 4, 64ull << 20), (1024ull + 64 + 64 + 256 + 2) << 20);
    struct machine_config mc = {.engine = ENGINE_JIT};
    CHECK_EQ(machine_code_per_hart(&mc), 64ull << 20);
    mc.jit_cache_size = 16ull << 20;
    CHECK_EQ(machine_code_per_hart(&mc), 16ull << 20);
    mc.engine = ENGINE_INTERP;
    CHECK_EQ(machine_code_per_hart(&mc), 0);
    char p[256];
    CHECK_EQ(cgroup_path("../x", "memory", p, sizeof(p)), (unsigned long long)-EINVAL);
}

/* A VM process's own cgroup (cgroup.h). Kernel docs: Documentation/admin-guide/cgroup-v2.rst
 * (memory.max, cpu.max, "no internal processes", delegation), cgroup-v1/memory.rst and
 * scheduler/sched-bwc.rst (cpu.cfs_quota_us / cpu.cfs_period_us). */
#include "vm/cgroup.h"
#include "util/log.h"
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIB (1ull << 20)

/* What the process needs beside guest RAM, measured on the default guest (RSS of a booted
 * 2-hart VM minus the touched guest RAM): ~4 MiB of binary, libraries and heap, ~14 MiB per hart
 * (its thread's malloc arena: TLBs and decode state, and its stack). The fixed part also covers
 * the transient copy of the kernel read on every (re)boot (~31 MiB for Debian's), io_uring
 * rings and the page cache of image I/O that the memory controller charges to the group
 * (reclaimable, so a tight limit costs speed, not the VM). Page tables for guest RAM: 8 bytes per
 * 4 KiB page, 1/512 of it. Under the JIT each hart's code cache (a memfd: shared memory, charged
 * to the group as its pages are written, never reclaimable without swap) may fill up to its
 * size: it is added whole, or a guest that runs much code would be killed by the limit rather
 * than have its cache flushed. */
#define OVERHEAD_FIXED    (64 * MIB)
#define OVERHEAD_PER_HART (16 * MIB)

uint64_t cgroup_memory_limit(uint64_t ram_size, unsigned cpus, uint64_t code_per_hart)
{
    uint64_t pt = (ram_size / 512 + MIB - 1) & ~(MIB - 1);
    return ram_size + OVERHEAD_FIXED + (uint64_t)cpus * (OVERHEAD_PER_HART + code_per_hart) + pt;
}

static int fail(char *err, size_t errlen, int e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int e, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -e;
}

int cgroup_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 64 || name[0] == '.') return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

static bool has_token(const char *list, const char *tok)
{
    size_t n = strlen(tok);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && !strncmp(p, tok, n)) return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

/* The mount point of the v1 hierarchy holding controller, or of the v2 hierarchy (controller
 * NULL). */
static int find_mount(const char *controller, char *out, size_t outlen)
{
    FILE *f = fopen("/proc/self/mounts", "re");
    if (!f) return -errno;
    char dev[256], mnt[1024], type[64], opts[1024];
    int r = -ENOENT;
    while (fscanf(f, "%255s %1023s %63s %1023s %*d %*d", dev, mnt, type, opts) == 4) {
        bool hit = controller ? !strcmp(type, "cgroup") && has_token(opts, controller)
                              : !strcmp(type, "cgroup2");
        if (hit && strlen(mnt) < outlen) {
            snprintf(out, outlen, "%s", mnt);
            r = 0;
            break;
        }
    }
    fclose(f);
    return r;
}

/* This process's cgroup in the hierarchy of controller (v1), or in the v2 one (NULL). */
static int own_path(const char *controller, char *out, size_t outlen)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f) return -errno;
    char line[4096];
    int r = -ENOENT;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = 0;
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c2 = 0;
        bool hit = controller ? has_token(c1 + 1, controller) : !strcmp(line, "0") && !c1[1];
        if (hit && strlen(c2 + 1) < outlen) {
            /* "/" is the root: no component to add */
            snprintf(out, outlen, "%s", strcmp(c2 + 1, "/") ? c2 + 1 : "");
            r = 0;
            break;
        }
    }
    fclose(f);
    return r;
}

static bool v2_has(const char *mnt, const char *ctl)
{
    char p[1100], buf[512];
    snprintf(p, sizeof(p), "%s/cgroup.controllers", mnt);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) return false;
    buf[n] = 0;
    for (char *t = strtok(buf, " \n"); t; t = strtok(NULL, " \n"))
        if (!strcmp(t, ctl)) return true;
    return false;
}

enum cg_mode { CG_NONE, CG_V1, CG_V2 };

/* v1 when both controllers are mounted as v1 hierarchies, else v2 when its root offers both. */
static enum cg_mode detect(char *mem_base, char *cpu_base, size_t len)
{
    char mnt[1024], own[2048];
    if (!find_mount("memory", mnt, sizeof(mnt)) && !own_path("memory", own, sizeof(own))) {
        snprintf(mem_base, len, "%s%s/vessel", mnt, own);
        if (!find_mount("cpu", mnt, sizeof(mnt)) && !own_path("cpu", own, sizeof(own))) {
            snprintf(cpu_base, len, "%s%s/vessel", mnt, own);
            return CG_V1;
        }
    }
    if (!find_mount(NULL, mnt, sizeof(mnt)) && v2_has(mnt, "memory") && v2_has(mnt, "cpu") &&
        !own_path(NULL, own, sizeof(own))) {
        snprintf(mem_base, len, "%s%s/vessel", mnt, own);
        snprintf(cpu_base, len, "%s%s/vessel", mnt, own);
        return CG_V2;
    }
    return CG_NONE;
}

static int write_str(const char *dir, const char *file, const char *val)
{
    char p[4400];
    snprintf(p, sizeof(p), "%s/%s", dir, file);
    int fd = open(p, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t n = write(fd, val, strlen(val));
    int e = n < 0 ? errno : 0;
    close(fd);
    if (e) return -e;
    return n == (ssize_t)strlen(val) ? 0 : -EIO;
}

static int mkdir_ok(const char *p)
{
    return mkdir(p, 0755) == 0 || errno == EEXIST ? 0 : -errno;
}

int cgroup_path(const char *name, const char *controller, char *out, size_t outlen)
{
    char mem[4096], cpu[4096];
    if (!cgroup_name_valid(name)) return -EINVAL;
    enum cg_mode m = detect(mem, cpu, sizeof(mem));
    if (m == CG_NONE) return -ENOENT;
    const char *base = !strcmp(controller, "memory") ? mem : !strcmp(controller, "cpu") ? cpu : 0;
    if (!base) return -EINVAL;
    if ((size_t)snprintf(out, outlen, "%s/%s", base, name) >= outlen) return -ENAMETOOLONG;
    return 0;
}

static int setup_failed(char *err, size_t errlen, int r, const char *what, const char *path)
{
    if (r == -EACCES || r == -EPERM || r == -EROFS)
        return fail(err, errlen, -r,
                    "cgroup limits not enforced: %s %s: %s (needs root or a cgroup subtree "
                    "delegated to this user)",
                    what, path, strerror(-r));
    return fail(err, errlen, -r, "cgroup limits not enforced: %s %s: %s", what, path, strerror(-r));
}

int cgroup_enter(const char *name, uint64_t ram_size, unsigned cpus, uint64_t code_per_hart,
                 char *err, size_t errlen)
{
    if (!cgroup_name_valid(name))
        return fail(err, errlen, EINVAL,
                    "cgroup name '%s': use 1 to 64 of A-Z a-z 0-9 _ . - (not starting with .)",
                    name ? name : "");
    char mem[4096], cpu[4096], g[4200], val[64], pid[32];
    enum cg_mode mode = detect(mem, cpu, sizeof(mem));
    if (mode == CG_NONE)
        return fail(err, errlen, ENOENT,
                    "cgroup limits not enforced: no memory and cpu cgroup controllers mounted");
    uint64_t limit = cgroup_memory_limit(ram_size, cpus, code_per_hart);
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    int r;
    if (mode == CG_V2) {
        /* v2: controllers reach a child only when its parent enables them (cgroup-v2.rst
         * "Enabling and Disabling"); a parent holding processes cannot ("no internal
         * processes"), so the caller's own cgroup must be the root or a delegated subtree. */
        char parent[4096];
        snprintf(parent, sizeof(parent), "%.*s", (int)(strlen(mem) - strlen("/vessel")), mem);
        if ((r = write_str(parent, "cgroup.subtree_control", "+memory +cpu")) < 0)
            return setup_failed(err, errlen, r, "enabling controllers in", parent);
        if ((r = mkdir_ok(mem)) < 0) return setup_failed(err, errlen, r, "creating", mem);
        if ((r = write_str(mem, "cgroup.subtree_control", "+memory +cpu")) < 0)
            return setup_failed(err, errlen, r, "enabling controllers in", mem);
        snprintf(g, sizeof(g), "%s/%s", mem, name);
        if ((r = mkdir_ok(g)) < 0) return setup_failed(err, errlen, r, "creating", g);
        snprintf(val, sizeof(val), "%llu", (unsigned long long)limit);
        if ((r = write_str(g, "memory.max", val)) < 0)
            return setup_failed(err, errlen, r, "writing memory.max of", g);
        snprintf(val, sizeof(val), "%llu %u", (unsigned long long)cpus * CGROUP_CPU_PERIOD_US,
                 CGROUP_CPU_PERIOD_US);
        if ((r = write_str(g, "cpu.max", val)) < 0)
            return setup_failed(err, errlen, r, "writing cpu.max of", g);
        if ((r = write_str(g, "cgroup.procs", pid)) < 0)
            return setup_failed(err, errlen, r, "moving the process into", g);
        log_info("cgroup %s: memory.max %llu, cpu.max %s", g, (unsigned long long)limit, val);
        return 0;
    }
    /* v1: one hierarchy per controller. */
    if ((r = mkdir_ok(mem)) < 0) return setup_failed(err, errlen, r, "creating", mem);
    snprintf(g, sizeof(g), "%s/%s", mem, name);
    if ((r = mkdir_ok(g)) < 0) return setup_failed(err, errlen, r, "creating", g);
    snprintf(val, sizeof(val), "%llu", (unsigned long long)limit);
    if ((r = write_str(g, "memory.limit_in_bytes", val)) < 0)
        return setup_failed(err, errlen, r, "writing memory.limit_in_bytes of", g);
    if ((r = write_str(g, "cgroup.procs", pid)) < 0)
        return setup_failed(err, errlen, r, "moving the process into", g);
    if ((r = mkdir_ok(cpu)) < 0) return setup_failed(err, errlen, r, "creating", cpu);
    snprintf(g, sizeof(g), "%s/%s", cpu, name);
    if ((r = mkdir_ok(g)) < 0) return setup_failed(err, errlen, r, "creating", g);
    snprintf(val, sizeof(val), "%u", CGROUP_CPU_PERIOD_US);
    if ((r = write_str(g, "cpu.cfs_period_us", val)) < 0)
        return setup_failed(err, errlen, r, "writing cpu.cfs_period_us of", g);
    snprintf(val, sizeof(val), "%llu", (unsigned long long)cpus * CGROUP_CPU_PERIOD_US);
    if ((r = write_str(g, "cpu.cfs_quota_us", val)) < 0)
        return setup_failed(err, errlen, r, "writing cpu.cfs_quota_us of", g);
    if ((r = write_str(g, "cgroup.procs", pid)) < 0)
        return setup_failed(err, errlen, r, "moving the process into", g);
    log_info("cgroup: memory %s/%s limit %llu, cpu %s quota %s/%u us", mem, name,
             (unsigned long long)limit, g, val, CGROUP_CPU_PERIOD_US);
    return 0;
}

int cgroup_remove(const char *name, char *err, size_t errlen)
{
    if (!cgroup_name_valid(name))
        return fail(err, errlen, EINVAL, "cgroup name '%s' is not valid", name ? name : "");
    char mem[4096], cpu[4096], g[4200];
    enum cg_mode mode = detect(mem, cpu, sizeof(mem));
    if (mode == CG_NONE) return 0;
    const char *bases[2] = {mem, cpu};
    for (unsigned i = 0; i < (mode == CG_V1 ? 2u : 1u); i++) {
        snprintf(g, sizeof(g), "%s/%s", bases[i], name);
        if (rmdir(g) < 0 && errno != ENOENT) {
            int e = errno;
            return fail(err, errlen, e, "cannot remove cgroup %s: %s", g, strerror(e));
        }
    }
    return 0;
}

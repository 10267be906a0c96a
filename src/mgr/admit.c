/* Resource admission (admit.h). */
#include "mgr/admit.h"
#include "util/err.h"
#include "util/log.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int host_info_read(struct host_info *h)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    h->cpus = n > 0 ? (unsigned)n : 1;
    h->mem_total_mib = h->mem_available_mib = 0;
    FILE *f = fopen("/proc/meminfo", "re");
    if (!f) return -errno;
    char line[256];
    while (fgets(line, sizeof(line), f)) {
        unsigned long long kb;
        if (sscanf(line, "MemTotal: %llu kB", &kb) == 1) h->mem_total_mib = kb >> 10;
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) h->mem_available_mib = kb >> 10;
    }
    fclose(f);
    return h->mem_total_mib ? 0 : -EIO;
}

void policy_default(struct host_policy *p)
{
    p->cpu_overcommit = 1.0;
    p->mem_overcommit = 1.0;
    p->reserve_mib = 1024;
}

static int policy_path(const struct store *st, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/host.json", st->root);
    return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

int policy_load(const struct store *st, struct host_policy *p, char *err, size_t errlen)
{
    policy_default(p);
    char path[3200];
    if (policy_path(st, path, sizeof(path))) return err_set(err, errlen, -ENAMETOOLONG, "path");
    char *txt;
    int r = store_read_file(path, &txt, 65536);
    if (r == -ENOENT) return 0;
    if (r < 0) return err_set(err, errlen, r, "cannot read %s: %s", path, strerror(-r));
    json_object *o = json_tokener_parse(txt);
    free(txt);
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return err_set(err, errlen, -EINVAL, "%s is corrupt (not a JSON object)", path);
    }
    struct host_policy np = *p;
    r = 0;
    json_object_object_foreach(o, key, v)
    {
        bool num =
            json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int);
        double d = num ? json_object_get_double(v) : NAN;
        if (!strcmp(key, "version")) continue;
        if (!strcmp(key, "cpu_overcommit") && num && d >= 0.1 && d <= 1000)
            np.cpu_overcommit = d;
        else if (!strcmp(key, "memory_overcommit") && num && d >= 0.1 && d <= 1000)
            np.mem_overcommit = d;
        else if (!strcmp(key, "reserve_memory_mib") && json_object_is_type(v, json_type_int) &&
                 json_object_get_int64(v) >= 0 && json_object_get_int64(v) <= (1ll << 40))
            np.reserve_mib = (uint64_t)json_object_get_int64(v);
        else {
            r = err_set(err, errlen, -EINVAL, "%s: bad or unknown entry '%s'", path, key);
            break;
        }
    }
    json_object_put(o);
    if (!r) *p = np;
    return r;
}

int policy_save(const struct store *st, const struct host_policy *p, char *err, size_t errlen)
{
    char path[3200];
    if (policy_path(st, path, sizeof(path))) return err_set(err, errlen, -ENAMETOOLONG, "path");
    json_object *o = json_object_new_object();
    json_object_object_add(o, "version", json_object_new_int(1));
    json_object_object_add(o, "cpu_overcommit", json_object_new_double(p->cpu_overcommit));
    json_object_object_add(o, "memory_overcommit", json_object_new_double(p->mem_overcommit));
    json_object_object_add(o, "reserve_memory_mib", json_object_new_int64((int64_t)p->reserve_mib));
    char *data;
    int r = asprintf(&data, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
    json_object_put(o);
    if (r < 0) return err_set(err, errlen, -ENOMEM, "out of memory");
    r = store_write_file(path, data, strlen(data), 0600);
    free(data);
    if (r < 0) return err_set(err, errlen, r, "cannot write %s: %s", path, strerror(-r));
    return 0;
}

void policy_budget(const struct host_policy *p, const struct host_info *h, double *cpus,
                   double *mem_mib)
{
    *cpus = h->cpus * p->cpu_overcommit;
    double base =
        h->mem_total_mib > p->reserve_mib ? (double)(h->mem_total_mib - p->reserve_mib) : 0.0;
    *mem_mib = base * p->mem_overcommit;
}

static int run_dir(const struct store *st, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/run", st->root);
    return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

/* Foreground runs: STORE/run/PID.json, each locked by its process. */
static void run_usage(const struct store *st, struct host_usage *u)
{
    char dir[3200];
    if (run_dir(st, dir, sizeof(dir))) return;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".json")) continue;
        int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        bool live = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
        char buf[512];
        ssize_t r = live ? pread(fd, buf, sizeof(buf) - 1, 0) : 0;
        close(fd);
        if (!live) {
            unlinkat(dirfd(d), e->d_name, 0); /* its process is gone */
            continue;
        }
        unsigned cpus = 0;
        unsigned long long mem = 0;
        if (r > 0) {
            buf[r] = 0;
            if (sscanf(buf, "{ \"cpus\": %u, \"mem_mib\": %llu", &cpus, &mem) == 2) {
                u->vms++;
                u->cpus += cpus;
                u->mem_mib += mem;
            }
        }
    }
    closedir(d);
}

void admit_usage(const struct store *st, const char *skip, struct host_usage *u)
{
    memset(u, 0, sizeof(*u));
    char **names;
    int n = store_vm_list(st, &names);
    for (int i = 0; i < n; i++) {
        if (skip && !strcmp(names[i], skip)) continue;
        struct store_run run;
        enum store_vm_state s = store_vm_state(st, names[i], &run);
        if (s == SVM_RUNNING || s == SVM_PAUSED || s == SVM_STARTING) {
            u->vms++;
            u->cpus += run.cpus;
            u->mem_mib += run.mem_mib;
        }
    }
    if (n > 0) store_names_free(names, n);
    run_usage(st, u);
}

static void fmt_gib(char *buf, size_t len, double mib)
{
    snprintf(buf, len, "%.1f GiB", mib / 1024.0);
}

int admit_check(const struct store *st, const char *what, unsigned cpus, uint64_t mem_mib,
                char *err, size_t errlen)
{
    struct host_policy p;
    int r = policy_load(st, &p, err, errlen);
    if (r) return r;
    struct host_info h;
    if (host_info_read(&h) < 0)
        return err_set(err, errlen, -EIO, "cannot read the host's memory from /proc/meminfo");
    struct host_usage u;
    admit_usage(st, what, &u);
    double bcpu, bmem;
    policy_budget(&p, &h, &bcpu, &bmem);
    double fcpu = bcpu - u.cpus, fmem = bmem - (double)u.mem_mib;
    if (fcpu < 0) fcpu = 0;
    if (fmem < 0) fmem = 0;
    bool cpu_short = cpus > fcpu + 1e-9, mem_short = (double)mem_mib > fmem;
    /* Without memory overcommit a VM must also fit in what is available right now. */
    bool avail_short = p.mem_overcommit <= 1.0 && mem_mib > h.mem_available_mib;
    if (!cpu_short && !mem_short && !avail_short) return 0;
    char need[32], free_[32], tot[32];
    fmt_gib(need, sizeof(need), (double)mem_mib);
    fmt_gib(free_, sizeof(free_), fmem);
    fmt_gib(tot, sizeof(tot), bmem);
    if (!cpu_short && !mem_short) {
        char av[32];
        fmt_gib(av, sizeof(av), (double)h.mem_available_mib);
        return err_set(err, errlen, -EBUSY,
                       "%s needs %s of memory; the host has only %s available right now", what,
                       need, av);
    }
    unsigned fc = (unsigned)(fcpu + 1e-9), bc = (unsigned)(bcpu + 1e-9);
    return err_set(err, errlen, -EBUSY,
                   "%s needs %u vCPU%s and %s; %u vCPU%s and %s are free of %u vCPU%s and %s "
                   "(%u VM%s running)",
                   what, cpus, cpus == 1 ? "" : "s", need, fc, fc == 1 ? "" : "s", free_, bc,
                   bc == 1 ? "" : "s", tot, u.vms, u.vms == 1 ? "" : "s");
}

int admit_run_register(const struct store *st, unsigned cpus, uint64_t mem_mib, char *err,
                       size_t errlen)
{
    char dir[3200], path[3300];
    if (run_dir(st, dir, sizeof(dir))) return err_set(err, errlen, -ENAMETOOLONG, "path");
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return err_set(err, errlen, -errno, "cannot create %s: %s", dir, strerror(errno));
    snprintf(path, sizeof(path), "%s/%d.json", dir, (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return err_set(err, errlen, -errno, "cannot create %s: %s", path, strerror(errno));
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
        int e = errno;
        close(fd);
        return err_set(err, errlen, -e, "cannot lock %s: %s", path, strerror(e));
    }
    char buf[128];
    int n = snprintf(buf, sizeof(buf), "{ \"cpus\": %u, \"mem_mib\": %llu }\n", cpus,
                     (unsigned long long)mem_mib);
    if (write(fd, buf, (size_t)n) != n) {
        int e = errno;
        close(fd);
        unlink(path);
        return err_set(err, errlen, -e, "cannot write %s", path);
    }
    return fd;
}

void admit_run_remove(const struct store *st, pid_t pid)
{
    char path[3300];
    snprintf(path, sizeof(path), "%s/run/%d.json", st->root, (int)pid);
    unlink(path);
}

void admit_run_release(const struct store *st, int fd)
{
    if (fd < 0) return;
    admit_run_remove(st, getpid());
    close(fd);
}

int admit_run_begin(struct store *st, const char *store_dir, unsigned cpus, uint64_t mem_mib,
                    char *err, size_t errlen)
{
    char serr[256];
    if (store_open(st, store_dir, true, serr, sizeof(serr)) < 0) {
        log_info("no resource accounting across VMs: %s", serr);
        return -1;
    }
    int lk = store_lock(st, err, errlen);
    if (lk < 0) return lk;
    int r = admit_check(st, "this VM", cpus, mem_mib, err, errlen);
    if (r == 0) r = admit_run_register(st, cpus, mem_mib, err, errlen);
    store_unlock(lk);
    return r;
}

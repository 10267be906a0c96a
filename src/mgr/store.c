/* The VM store (store.h). */
#include "mgr/store.h"
#include "util/err.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_MAX (1u << 20) /* a config file is a few KB; refuse anything absurd */

const char *store_state_name(enum store_vm_state s)
{
    switch (s) {
    case SVM_STOPPED: return "stopped";
    case SVM_RUNNING: return "running";
    case SVM_PAUSED: return "paused";
    case SVM_CRASHED: return "crashed";
    case SVM_STARTING: return "starting";
    }
    return "?";
}

static int mkdir_p(const char *path, mode_t mode)
{
    char tmp[3072];
    if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp)) return -ENAMETOOLONG;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, mode) < 0 && errno != EEXIST) return -errno;
        *p = '/';
    }
    if (mkdir(tmp, mode) < 0 && errno != EEXIST) return -errno;
    return 0;
}

int store_open(struct store *st, const char *dir, bool create, char *err, size_t errlen)
{
    const char *env = getenv("VESSEL_STORE");
    int n;
    if (dir && *dir)
        n = snprintf(st->root, sizeof(st->root), "%s", dir);
    else if (env && *env)
        n = snprintf(st->root, sizeof(st->root), "%s", env);
    else if (geteuid() == 0)
        n = snprintf(st->root, sizeof(st->root), "/var/lib/vessel");
    else {
        const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
        if (xdg && *xdg == '/')
            n = snprintf(st->root, sizeof(st->root), "%s/vessel", xdg);
        else if (home && *home)
            n = snprintf(st->root, sizeof(st->root), "%s/.local/share/vessel", home);
        else
            return err_set(err, errlen, -ENOENT, "no store: set --store, VESSEL_STORE or HOME");
    }
    if (n <= 0 || (size_t)n >= sizeof(st->root) - 256)
        return err_set(err, errlen, -ENAMETOOLONG, "store path too long");
    while (n > 1 && st->root[n - 1] == '/')
        st->root[--n] = 0;
    char vms[3100];
    snprintf(vms, sizeof(vms), "%s/vms", st->root);
    struct stat sb;
    if (stat(vms, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode))
            return err_set(err, errlen, -ENOTDIR, "store %s: %s is not a directory", st->root, vms);
        return 0;
    }
    if (!create) return err_set(err, errlen, -ENOENT, "store %s: no VMs here yet", st->root);
    int r = mkdir_p(vms, 0700);
    if (r < 0)
        return err_set(err, errlen, r, "cannot create the store %s: %s", st->root, strerror(-r));
    return 0;
}

bool store_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= STORE_NAME_MAX) return false;
    if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9'))) return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

int store_vm_path(const struct store *st, const char *name, const char *file, char *buf, size_t len)
{
    int n = file ? snprintf(buf, len, "%s/vms/%s/%s", st->root, name, file)
                 : snprintf(buf, len, "%s/vms/%s", st->root, name);
    return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

int store_sock_path(const struct store *st, const char *name, const char *file, char *buf,
                    size_t len, int *dirfd)
{
    *dirfd = -1;
    char full[4096];
    int r = store_vm_path(st, name, file, full, sizeof(full));
    if (r) return r;
    if (strlen(full) < 108 && strlen(full) < len) {
        strcpy(buf, full);
        return 0;
    }
    char dir[4096];
    store_vm_path(st, name, NULL, dir, sizeof(dir));
    int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int n = snprintf(buf, len, "/proc/self/fd/%d/%s", fd, file);
    if (n < 0 || (size_t)n >= len || n >= 108) {
        close(fd);
        return -ENAMETOOLONG;
    }
    *dirfd = fd;
    return 0;
}

bool store_vm_exists(const struct store *st, const char *name)
{
    char p[4096];
    if (store_vm_path(st, name, "config.json", p, sizeof(p))) return false;
    return access(p, F_OK) == 0;
}

int store_write_file(const char *path, const char *data, size_t len, mode_t mode)
{
    char tmp[4200];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) return -errno;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            close(fd);
            unlink(tmp);
            return -e;
        }
        off += (size_t)w;
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        int e = errno;
        unlink(tmp);
        return -e;
    }
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return -e;
    }
    /* make the rename durable */
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = 0;
        int dfd = open(dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    return 0;
}

int store_read_file(const char *path, char **out, size_t max)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    if ((uint64_t)sb.st_size > max) {
        close(fd);
        return -EFBIG;
    }
    char *buf = malloc((size_t)sb.st_size + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    size_t off = 0;
    for (;;) {
        if (off == (size_t)sb.st_size) break;
        ssize_t r = read(fd, buf + off, (size_t)sb.st_size - off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        off += (size_t)r;
    }
    close(fd);
    buf[off] = 0;
    *out = buf;
    return (int)off;
}

int store_read_json(const char *path, size_t max, json_object **out, char *err, size_t errlen)
{
    char *txt;
    int r = store_read_file(path, &txt, max);
    if (r < 0)
        return err_set(err, errlen, r, "%s",
                       r == -EFBIG ? "larger than the limit for this file" : strerror(-r));
    json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, txt, r);
    enum json_tokener_error je = json_tokener_get_error(tok);
    json_tokener_free(tok);
    free(txt);
    if (!o || je != json_tokener_success) {
        json_object_put(o);
        return err_set(err, errlen, -EINVAL, "not valid JSON: %s", json_tokener_error_desc(je));
    }
    *out = o;
    return 0;
}

static int save_spec(const char *path, const struct vm_spec *spec)
{
    json_object *o = vm_spec_to_json(spec, true);
    const char *txt =
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
    char *data;
    int r = asprintf(&data, "%s\n", txt);
    json_object_put(o);
    if (r < 0) return -ENOMEM;
    r = store_write_file(path, data, strlen(data), 0600);
    free(data);
    return r;
}

int store_vm_create(const struct store *st, const char *name, const struct vm_spec *spec, char *err,
                    size_t errlen)
{
    char dir[4096], cfg[4096];
    if (store_vm_path(st, name, NULL, dir, sizeof(dir)) ||
        store_vm_path(st, name, "config.json", cfg, sizeof(cfg)))
        return err_set(err, errlen, -ENAMETOOLONG, "%s: store path too long", name);
    if (mkdir(dir, 0700) < 0) {
        if (errno == EEXIST) return err_set(err, errlen, -EEXIST, "a VM named %s exists", name);
        return err_set(err, errlen, -errno, "cannot create %s: %s", dir, strerror(errno));
    }
    int r = save_spec(cfg, spec);
    if (r < 0) {
        rmdir(dir);
        return err_set(err, errlen, r, "cannot write %s: %s", cfg, strerror(-r));
    }
    return 0;
}

int store_vm_load(const struct store *st, const char *name, struct vm_spec *spec, char *err,
                  size_t errlen)
{
    char cfg[4096];
    if (store_vm_path(st, name, "config.json", cfg, sizeof(cfg)))
        return err_set(err, errlen, -ENAMETOOLONG, "%s: store path too long", name);
    json_object *o;
    char e1[300];
    int r = store_read_json(cfg, CONFIG_MAX, &o, e1, sizeof(e1));
    if (r == -ENOENT) return err_set(err, errlen, r, "no VM named %s (see vessel list)", name);
    if (r == -EINVAL) return err_set(err, errlen, r, "VM %s: %s is corrupt (%s)", name, cfg, e1);
    if (r < 0) return err_set(err, errlen, r, "VM %s: cannot read %s: %s", name, cfg, e1);
    char e2[400];
    r = vm_spec_from_json(spec, o, e2, sizeof(e2));
    json_object_put(o);
    if (r < 0) return err_set(err, errlen, r, "VM %s: %s is invalid: %s", name, cfg, e2);
    return 0;
}

char *store_mac_owner(const struct store *st, const char *self, const uint8_t mac[6])
{
    char **names = NULL;
    int n = store_vm_list(st, &names);
    char *owner = NULL;
    struct vm_spec *other = malloc(sizeof(*other)); /* large: not on the stack */
    for (int i = 0; other && i < n && !owner; i++) {
        char err[256];
        if (self && !strcmp(names[i], self)) continue;
        if (store_vm_load(st, names[i], other, err, sizeof(err)) < 0) continue;
        if (other->net.present && !memcmp(other->net.mac, mac, 6)) owner = strdup(names[i]);
    }
    free(other);
    if (n > 0) store_names_free(names, n);
    return owner;
}

int store_vm_save(const struct store *st, const char *name, const struct vm_spec *spec, char *err,
                  size_t errlen)
{
    char cfg[4096];
    if (store_vm_path(st, name, "config.json", cfg, sizeof(cfg)))
        return err_set(err, errlen, -ENAMETOOLONG, "%s: store path too long", name);
    if (spec->net.present) {
        /* two VMs with one MAC address break a shared (tap) network */
        char *owner = store_mac_owner(st, name, spec->net.mac);
        if (owner) {
            const uint8_t *m = spec->net.mac;
            int r = err_set(err, errlen, -EEXIST,
                            "MAC address %02x:%02x:%02x:%02x:%02x:%02x is %s's: every VM needs "
                            "its own (--mac another, or none to have one made)",
                            m[0], m[1], m[2], m[3], m[4], m[5], owner);
            free(owner);
            return r;
        }
    }
    int r = save_spec(cfg, spec);
    if (r < 0) return err_set(err, errlen, r, "cannot write %s: %s", cfg, strerror(-r));
    return 0;
}

static int rm_tree_at(int dfd)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return -errno;
    }
    int r = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0) continue;
        if (errno != EISDIR) {
            r = -errno;
            continue;
        }
        int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) {
            r = -errno;
            continue;
        }
        int rr = rm_tree_at(sub);
        if (rr < 0) r = rr;
        if (unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) < 0) r = -errno;
    }
    closedir(d);
    return r;
}

int store_vm_remove(const struct store *st, const char *name, char *err, size_t errlen)
{
    char dir[4096];
    if (store_vm_path(st, name, NULL, dir, sizeof(dir)))
        return err_set(err, errlen, -ENAMETOOLONG, "%s: store path too long", name);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) return err_set(err, errlen, -errno, "no VM named %s", name);
    int r = rm_tree_at(dfd);
    if (r == 0 && rmdir(dir) < 0) r = -errno;
    if (r < 0) return err_set(err, errlen, r, "cannot remove %s: %s", dir, strerror(-r));
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int store_vm_list(const struct store *st, char ***out)
{
    char vms[3100];
    snprintf(vms, sizeof(vms), "%s/vms", st->root);
    *out = NULL;
    DIR *d = opendir(vms);
    if (!d) return errno == ENOENT ? 0 : -errno;
    int n = 0, cap = 0;
    char **names = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!store_name_valid(e->d_name)) continue; /* ".", "..", temporaries */
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, (size_t)cap * sizeof(*nn));
            if (!nn) break;
            names = nn;
        }
        names[n] = strdup(e->d_name);
        if (names[n]) n++;
    }
    closedir(d);
    if (n) qsort(names, (size_t)n, sizeof(*names), cmp_str);
    *out = names;
    return n;
}

void store_names_free(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Is a write lock held on path by a live process? (F_OFD_GETLK tests without taking it.) */
/* Whether any lock is held on [start, start + len) of the file (len 0: to the end). */
static bool lock_held_range(const char *path, off_t start, off_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    bool held = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
    close(fd);
    return held;
}

static bool lock_held(const char *path)
{
    return lock_held_range(path, 0, 0);
}

/* Bytes [start, start + len) of name's vm.lock are locked (len 0: to the end). */
static bool vm_lock_held(const struct store *st, const char *name, off_t start, off_t len)
{
    char lockp[4096];
    if (store_vm_path(st, name, "vm.lock", lockp, sizeof(lockp))) return false;
    return lock_held_range(lockp, start, len);
}

bool store_vm_held(const struct store *st, const char *name)
{
    return vm_lock_held(st, name, 0, 0);
}

bool store_vm_process_alive(const struct store *st, const char *name)
{
    return vm_lock_held(st, name, 0, 1); /* byte 0: the VM process; byte 1: its monitor */
}

static int read_run(const char *path, struct store_run *run)
{
    char *txt;
    int r = store_read_file(path, &txt, 65536);
    if (r < 0) return r;
    json_object *o = json_tokener_parse(txt);
    free(txt);
    if (!o) return -EINVAL;
    memset(run, 0, sizeof(*run));
    json_object *v;
    if (json_object_object_get_ex(o, "pid", &v)) run->pid = (pid_t)json_object_get_int(v);
    if (json_object_object_get_ex(o, "cpus", &v)) run->cpus = (unsigned)json_object_get_int(v);
    if (json_object_object_get_ex(o, "mem_mib", &v))
        run->mem_mib = (uint64_t)json_object_get_int64(v);
    if (json_object_object_get_ex(o, "started_ms", &v))
        run->started_ms = (uint64_t)json_object_get_int64(v);
    if (json_object_object_get_ex(o, "cgroup_note", &v))
        snprintf(run->cgroup_note, sizeof(run->cgroup_note), "%s", json_object_get_string(v));
    run->state = SVM_RUNNING;
    if (json_object_object_get_ex(o, "state", &v)) {
        const char *s = json_object_get_string(v);
        if (!strcmp(s, "paused")) run->state = SVM_PAUSED;
        if (!strcmp(s, "starting")) run->state = SVM_STARTING;
        if (!strcmp(s, "stopped")) run->state = SVM_STOPPED;
    }
    json_object_put(o);
    return 0;
}

enum store_vm_state store_vm_state(const struct store *st, const char *name, struct store_run *run)
{
    char lockp[4096], runp[4096];
    struct store_run tmp;
    if (!run) run = &tmp;
    memset(run, 0, sizeof(*run));
    if (store_vm_path(st, name, "vm.lock", lockp, sizeof(lockp)) ||
        store_vm_path(st, name, "run.json", runp, sizeof(runp)))
        return SVM_STOPPED;
    bool alive = lock_held(lockp);
    int r = read_run(runp, run);
    if (alive) return r == 0 ? run->state : SVM_STARTING;
    if (r == 0 && run->state == SVM_STOPPED) return SVM_STOPPED; /* its monitor was killed */
    /* The lock is free: a process that had written run.json died without clearing it. Check
     * once more so a VM that exits cleanly between the two reads is not called crashed. */
    if (r == 0 && access(runp, F_OK) == 0) return SVM_CRASHED;
    return SVM_STOPPED;
}

int store_vm_lock(const struct store *st, const char *name, unsigned byte, int *fd, char *err,
                  size_t errlen)
{
    char lockp[4096];
    if (store_vm_path(st, name, "vm.lock", lockp, sizeof(lockp)))
        return err_set(err, errlen, -ENAMETOOLONG, "%s: store path too long", name);
    int f = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (f < 0) return err_set(err, errlen, -errno, "%s: %s", lockp, strerror(errno));
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1};
    if (fcntl(f, F_OFD_SETLK, &fl) < 0) {
        int e = errno;
        close(f);
        if (e == EAGAIN || e == EACCES)
            return err_set(err, errlen, -EBUSY, "VM %s is already running", name);
        return err_set(err, errlen, -e, "%s: cannot lock: %s", lockp, strerror(e));
    }
    *fd = f;
    return 0;
}

int store_run_open(const struct store *st, const char *name)
{
    char runp[4096];
    if (store_vm_path(st, name, "run.json", runp, sizeof(runp))) return -ENAMETOOLONG;
    int fd = open(runp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    return fd < 0 ? -errno : fd;
}

int store_run_put(int fd, const struct store_run *run)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "pid", json_object_new_int(run->pid));
    json_object_object_add(o, "state", json_object_new_string(store_state_name(run->state)));
    json_object_object_add(o, "cpus", json_object_new_int((int)run->cpus));
    json_object_object_add(o, "mem_mib", json_object_new_int64((int64_t)run->mem_mib));
    json_object_object_add(o, "started_ms", json_object_new_int64((int64_t)run->started_ms));
    if (run->cgroup_note[0])
        json_object_object_add(o, "cgroup_note", json_object_new_string(run->cgroup_note));
    /* One pwrite of a fixed-size record at offset 0: a reader sees the old or the new one, and
     * the sandboxed process needs no open, rename or truncate for it. */
    char rec[STORE_RUN_RECORD];
    int n = snprintf(rec, sizeof(rec), "%s", json_object_to_json_string(o));
    json_object_put(o);
    if (n < 0 || (size_t)n >= sizeof(rec) - 1) return -E2BIG;
    memset(rec + n, ' ', sizeof(rec) - 1 - (size_t)n);
    rec[sizeof(rec) - 1] = '\n';
    ssize_t w = pwrite(fd, rec, sizeof(rec), 0);
    return w == (ssize_t)sizeof(rec) ? 0 : -EIO;
}

void store_vm_clear_runtime(const struct store *st, const char *name, bool keep_run)
{
    static const char *const files[] = {"api.sock", "console.sock", "run.json"};
    for (unsigned i = 0; i < (keep_run ? 2u : 3u); i++) {
        char p[4096];
        if (store_vm_path(st, name, files[i], p, sizeof(p)) == 0) unlink(p);
    }
}

void store_run_clear(const struct store *st, const char *name)
{
    char runp[4096];
    if (store_vm_path(st, name, "run.json", runp, sizeof(runp)) == 0) unlink(runp);
}

int store_lock(const struct store *st, char *err, size_t errlen)
{
    char p[3100];
    snprintf(p, sizeof(p), "%s/.lock", st->root);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_set(err, errlen, -errno, "cannot lock the store %s: %s", p, strerror(errno));
    while (flock(fd, LOCK_EX) < 0) {
        if (errno == EINTR) continue;
        int e = errno;
        close(fd);
        return err_set(err, errlen, -e, "cannot lock the store %s: %s", p, strerror(e));
    }
    return fd;
}

void store_unlock(int fd)
{
    if (fd >= 0) close(fd);
}

/* vessel export / vessel import: a VM (configuration, disks, optionally a snapshot) as one
 * portable file (docs/snapshots.md "Export and import").
 *
 * The file is a pax tar archive compressed with zstd (libarchive), so `tar tf` lists it. Its
 * members: disks/diskN.img|qcow2 (every drive, in order), snapshot/{info.json,state,memory,
 * disk-N.img} (with --snapshot), and manifest.json last: format, version, name, the
 * configuration with drive paths naming members, and every member's size and sha256.
 *
 * Import trusts nothing in the file. It extracts only member names of that fixed set, each
 * once, into a temporary directory of the store, with sizes and hashes computed while
 * writing. It then checks the manifest against what arrived: the same set, sizes and hashes,
 * a configuration that parses, drives that name disk members. Only then does it rename the
 * directory into place, under the store lock. Any failure removes the directory, so nothing is
 * half-imported. */
#include "backend/block/qcow2.h"
#include "cli/cli.h"
#include "mgr/store.h"
#include "vm/config.h"
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* libarchive is loaded on first use (dlopen), not linked: it pulls in libxml2, ICU and
 * libstdc++, about 2 MiB of resident pages in every VM process that never exports. */
// clang-format off
#define ARCHIVE_FNS(X) \
    X(archive_entry_filetype) \
    X(archive_entry_free) \
    X(archive_entry_new) \
    X(archive_entry_pathname) \
    X(archive_entry_set_filetype) \
    X(archive_entry_set_mtime) \
    X(archive_entry_set_pathname) \
    X(archive_entry_set_perm) \
    X(archive_entry_set_size) \
    X(archive_error_string) \
    X(archive_read_data) \
    X(archive_read_free) \
    X(archive_read_new) \
    X(archive_read_next_header) \
    X(archive_read_open_filename) \
    X(archive_read_support_filter_all) \
    X(archive_read_support_format_tar) \
    X(archive_write_add_filter_zstd) \
    X(archive_write_close) \
    X(archive_write_data) \
    X(archive_write_free) \
    X(archive_write_header) \
    X(archive_write_new) \
    X(archive_write_open_filename) \
    X(archive_write_set_format_pax_restricted)
// clang-format on
static struct {
#define LA_DECL(f) typeof(&f) f;
    ARCHIVE_FNS(LA_DECL)
#undef LA_DECL
} la;

static int load_libarchive(char *err, size_t errlen)
{
    static void *h;
    if (h) return 0;
    void *lib = dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(err, errlen, "cannot load libarchive (install libarchive13): %.200s", dlerror());
        return -1;
    }
#define LA_LOAD(f)                                                                                 \
    if (!(la.f = (typeof(la.f))dlsym(lib, #f))) {                                                  \
        snprintf(err, errlen, "libarchive lacks %s", #f);                                          \
        dlclose(lib);                                                                              \
        return -1;                                                                                 \
    }
    ARCHIVE_FNS(LA_LOAD)
#undef LA_LOAD
    h = lib;
    return 0;
}

#define EXPORT_FORMAT   "vessel-export"
#define EXPORT_VERSION  1
#define CHUNK           (1u << 20)
#define MANIFEST_MAX    (1u << 20)
#define MAX_LAYERS      8 /* --keep-backing: backing files per disk */
#define MAX_MEMBERS     (2 * MACHINE_MAX_DISKS + 4 + MACHINE_MAX_DISKS * MAX_LAYERS)
#define MEMBER_NAME_MAX 64

struct member {
    char name[MEMBER_NAME_MAX]; /* in the archive */
    char path[4300];            /* on this host */
    bool temp;                  /* a flattened copy made for the export: removed after */
    uint64_t size;
    char sha[65];
};

static void hex(const uint8_t *d, char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void progress(const char *what, uint64_t done, uint64_t total)
{
    if (!isatty(2) || total == 0) return;
    unsigned pct = (unsigned)(done * 100 / total);
    fprintf(stderr, "\r%-28s %3u%% %8.1f MiB", what, pct, (double)done / (1 << 20));
    if (done == total) fputc('\n', stderr);
}

/* ---- export ---- */

static int add_member(struct archive *a, struct member *m, char *err, size_t errlen)
{
    int fd = open(m->path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "%.400s: %s", m->path, fd < 0 ? strerror(errno) : "not a file");
        if (fd >= 0) close(fd);
        return -1;
    }
    m->size = (uint64_t)sb.st_size;
    struct archive_entry *e = la.archive_entry_new();
    la.archive_entry_set_pathname(e, m->name);
    la.archive_entry_set_size(e, (la_int64_t)m->size);
    la.archive_entry_set_filetype(e, AE_IFREG);
    la.archive_entry_set_perm(e, 0600);
    la.archive_entry_set_mtime(e, time(NULL), 0);
    int r = la.archive_write_header(a, e) == ARCHIVE_OK ? 0 : -1;
    la.archive_entry_free(e);
    if (r) {
        snprintf(err, errlen, "writing the archive: %s", la.archive_error_string(a));
        close(fd);
        return -1;
    }
    struct sha256_ctx h;
    sha256_init(&h);
    uint8_t *buf = malloc(CHUNK);
    uint64_t done = 0;
    while (buf && done < m->size) {
        ssize_t n = read(fd, buf, CHUNK);
        if (n <= 0) {
            snprintf(err, errlen, "%.400s: %s", m->path, n < 0 ? strerror(errno) : "shrank");
            r = -1;
            break;
        }
        sha256_update(&h, (size_t)n, buf);
        if (la.archive_write_data(a, buf, (size_t)n) != n) {
            snprintf(err, errlen, "writing the archive: %s", la.archive_error_string(a));
            r = -1;
            break;
        }
        done += (uint64_t)n;
        progress(m->name, done, m->size);
    }
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        r = -1;
    }
    free(buf);
    close(fd);
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_digest(&h, sizeof(d), d);
    hex(d, m->sha);
    return r;
}

/* The qcow2 header of the file at path (its first 4 KiB): 1 with *h, 0 when the file does not
 * start with the qcow2 magic, -EINVAL when it does but vessel cannot read the header, -errno
 * when the file cannot be read. */
static int qcow2_header_of(const char *path, struct qcow2_header *h)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    uint8_t buf[4096];
    struct stat sb;
    ssize_t n = pread(fd, buf, sizeof(buf), 0);
    int r = 0;
    if (n >= 4 && !memcmp(buf, "QFI\xfb", 4)) {
        char e[200];
        r = fstat(fd, &sb) == 0 &&
                    qcow2_parse_header(buf, (size_t)n, (uint64_t)sb.st_size, h, e, sizeof(e)) == 0
                ? 1
                : -EINVAL;
    }
    close(fd);
    return r;
}

/* Is the image a qcow2 with a backing file (not exportable on its own yet)? */
static bool has_backing(const char *path)
{
    struct qcow2_header h;
    return qcow2_header_of(path, &h) == 1 && h.backing[0];
}

/* An imported disk must stand alone: a qcow2 header naming a backing file would have the VM
 * open that host path (/etc/shadow, another VM's disk) and show it to the guest. A file with
 * the qcow2 magic is checked whatever its member name says (the format is probed at start);
 * one whose header vessel cannot read is refused too. 0, or -1 with a message. */
static int standalone_disk(const char *path, const char *member, char *err, size_t errlen)
{
    struct qcow2_header h;
    int r = qcow2_header_of(path, &h);
    if (r == -EINVAL)
        snprintf(err, errlen, "%.100s: not a qcow2 image vessel can read", member);
    else if (r < 0)
        snprintf(err, errlen, "%.100s: %s", member, strerror(-r));
    else if (r == 1 && h.backing[0])
        snprintf(err, errlen,
                 "%.100s names a backing file (%.100s): an export carries standalone disks", member,
                 h.backing);
    else
        return 0;
    return -1;
}

/* A disk member the manifest links to a backing member: it must be a qcow2 image with a
 * backing file, and whatever name its header holds, it is pointed at that member's place in
 * the imported VM's directory (never a host path the file names). 0, or -1 with a message. */
static int relink_disk(const char *path, const char *member, const char *final, const char *to,
                       char *err, size_t errlen)
{
    if (!has_backing(path)) {
        snprintf(err, errlen,
                 "%.100s: the manifest gives it a backing file, but it is not a qcow2 "
                 "image with one",
                 member);
        return -1;
    }
    char where[4200], e2[400];
    snprintf(where, sizeof(where), "%.4000s/%s", final, to);
    if (qcow2_set_backing_name(path, where, e2, sizeof(e2)) < 0) {
        snprintf(err, errlen, "%.100s: %s", member, e2);
        return -1;
    }
    return 0;
}

static void export_usage(FILE *out)
{
    fprintf(out,
            "Usage: vessel export NAME FILE [--snapshot SNAP] [--keep-backing] [--store DIR]\n"
            "One portable file (tar + zstd: `tar tf FILE` lists it) with the VM's\n"
            "configuration and disks, and with --snapshot that snapshot (memory and\n"
            "disks) too. Without --snapshot the VM must be stopped.\n"
            "A qcow2 disk with a backing file travels flattened (one standalone image);\n"
            "--keep-backing carries it as it is with each of its backing files (at most\n"
            "%d), and the import links them again.\n",
            MAX_LAYERS);
}

int cli_export(int argc, char **argv)
{
    const char *store = NULL, *snap = NULL, *w[2] = {NULL, NULL};
    int nw = 0;
    bool keep = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--store") && i + 1 < argc)
            store = argv[++i];
        else if (!strcmp(argv[i], "--keep-backing"))
            keep = true;
        else if (!strcmp(argv[i], "--snapshot") && i + 1 < argc)
            snap = argv[++i];
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            export_usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' || nw == 2) {
            export_usage(stderr);
            return VM_EXIT_USAGE;
        } else
            w[nw++] = argv[i];
    }
    if (nw != 2 || !store_name_valid(w[0]) || (snap && !store_name_valid(snap))) {
        export_usage(stderr);
        return VM_EXIT_USAGE;
    }
    const char *name = w[0], *file = w[1];
    struct store st;
    char err[700];
    if (store_open(&st, store, false, err, sizeof(err)) < 0) {
        fprintf(stderr, "vessel export: %s\n", err);
        return VM_EXIT_USAGE;
    }
    static struct vm_spec spec;
    if (store_vm_load(&st, name, &spec, err, sizeof(err)) < 0) {
        fprintf(stderr, "vessel export: %s\n", err);
        return VM_EXIT_USAGE;
    }
    enum store_vm_state s = store_vm_state(&st, name, NULL);
    if (!snap && (s == SVM_RUNNING || s == SVM_PAUSED || s == SVM_STARTING)) {
        fprintf(stderr,
                "vessel export: %s is %s: stop it, or export a snapshot of it "
                "(--snapshot)\n",
                name, store_state_name(s));
        return VM_EXIT_USAGE;
    }
    if (access(file, F_OK) == 0) {
        fprintf(stderr, "vessel export: %s exists\n", file);
        return VM_EXIT_USAGE;
    }
    static struct member mem[MAX_MEMBERS];
    unsigned n = 0;
    char sdir[4200] = "";
    json_object *cfg = vm_spec_to_json(&spec, true), *drives;
    json_object *links = json_object_new_object(); /* --keep-backing: member -> its backing */
    for (unsigned i = 0; i < spec.ndrives; i++) {
        const char *p = spec.drives[i].path;
        struct member *m = &mem[n++];
        size_t l = strlen(p);
        bool q = l > 6 && !strcmp(p + l - 6, ".qcow2");
        snprintf(m->name, sizeof(m->name), "disks/disk%u.%s", i, q ? "qcow2" : "img");
        snprintf(m->path, sizeof(m->path), "%s", p);
        if (keep && has_backing(p)) {
            /* the overlay as it is, then each backing file: disks/diskN.bK.{img,qcow2} */
            snprintf(m->name, sizeof(m->name), "disks/disk%u.qcow2", i);
            struct qcow2 *img;
            if (qcow2_open(&img, p, QCOW2_RDONLY | QCOW2_NOLOCK, false, err, sizeof(err)) < 0) {
                fprintf(stderr, "vessel export: %s\n", err);
                json_object_put(links);
                json_object_put(cfg);
                return VM_EXIT_HOST_ERROR;
            }
            const char *above = m->name;
            unsigned k = 0;
            for (const struct qcow2 *b = qcow2_backing(img); b; b = qcow2_backing(b)) {
                if (++k > MAX_LAYERS) {
                    fprintf(stderr, "vessel export: disk %s has more than %d backing files\n",
                            spec.drives[i].id, MAX_LAYERS);
                    qcow2_close(img);
                    json_object_put(links);
                    json_object_put(cfg);
                    return VM_EXIT_USAGE;
                }
                struct member *bm = &mem[n++];
                snprintf(bm->name, sizeof(bm->name), "disks/disk%u.b%u.%s", i, k,
                         qcow2_hdr(b) ? "qcow2" : "img");
                snprintf(bm->path, sizeof(bm->path), "%s", qcow2_path(b));
                json_object_object_add(links, above, json_object_new_string(bm->name));
                above = bm->name;
            }
            qcow2_close(img);
        } else if (has_backing(p)) {
            /* an overlay travels flattened: a standalone qcow2 with the chain's data */
            snprintf(m->path, sizeof(m->path), "%.4000s.flat-%u-%d.qcow2", file, i, (int)getpid());
            snprintf(m->name, sizeof(m->name), "disks/disk%u.qcow2", i);
            m->temp = true;
            char *args[] = {"disk", "convert", "-O", "qcow2", (char *)p, m->path, NULL};
            if (cli_disk(6, args) != 0) {
                fprintf(stderr, "vessel export: cannot flatten disk %s\n", spec.drives[i].id);
                for (unsigned k = 0; k < n; k++)
                    if (mem[k].temp) unlink(mem[k].path);
                json_object_put(cfg);
                json_object_put(links);
                return VM_EXIT_HOST_ERROR;
            }
        }
    }
    /* the configuration names the members, not this host's paths */
    if (json_object_object_get_ex(cfg, "drives", &drives))
        for (unsigned i = 0; i < spec.ndrives && i < json_object_array_length(drives); i++)
            json_object_object_add(json_object_array_get_idx(drives, i), "path_on_host",
                                   json_object_new_string(mem[i].name));
    if (snap) {
        store_vm_path(&st, name, "snapshots", sdir, sizeof(sdir));
        size_t l = strlen(sdir);
        snprintf(sdir + l, sizeof(sdir) - l, "/%s", snap);
        char merr[600];
        if (snapshot_materialize(sdir, merr, sizeof(merr)) < 0) {
            fprintf(stderr, "vessel export: snapshot %s: %s\n", snap, merr);
            for (unsigned k = 0; k < n; k++)
                if (mem[k].temp) unlink(mem[k].path);
            json_object_put(cfg);
            json_object_put(links);
            return VM_EXIT_HOST_ERROR;
        }
        DIR *d = opendir(sdir);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            bool ok = !strcmp(e->d_name, "info.json") || !strcmp(e->d_name, "state") ||
                      !strcmp(e->d_name, "memory") ||
                      (!strncmp(e->d_name, "disk-", 5) && strlen(e->d_name) < 20);
            if (!ok || n == MAX_MEMBERS) continue;
            struct member *m = &mem[n++];
            snprintf(m->name, sizeof(m->name), "snapshot/%.40s", e->d_name);
            snprintf(m->path, sizeof(m->path), "%.4200s/%.40s", sdir, e->d_name);
            if (!strncmp(e->d_name, "disk-", 5) && has_backing(m->path)) {
                /* the copy of an overlay (a clone's or a --image debian VM's disk) names this
                 * host's base: it travels flattened too, and restores as a standalone disk */
                char src[4300];
                snprintf(src, sizeof(src), "%s", m->path);
                snprintf(m->path, sizeof(m->path), "%.4000s.flat-s%u-%d.qcow2", file, n,
                         (int)getpid());
                m->temp = true;
                char *args[] = {"disk", "convert", "-O", "qcow2", src, m->path, NULL};
                if (cli_disk(6, args) != 0) {
                    fprintf(stderr, "vessel export: cannot flatten snapshot disk %s\n", e->d_name);
                    closedir(d);
                    for (unsigned k = 0; k < n; k++)
                        if (mem[k].temp) unlink(mem[k].path);
                    json_object_put(cfg);
                    json_object_put(links);
                    return VM_EXIT_HOST_ERROR;
                }
            }
        }
        if (d) closedir(d);
        char ip[4300];
        snprintf(ip, sizeof(ip), "%s/info.json", sdir);
        if (!d || access(ip, F_OK) < 0) {
            fprintf(stderr, "vessel export: %s has no snapshot %s\n", name, snap);
            for (unsigned k = 0; k < n; k++)
                if (mem[k].temp) unlink(mem[k].path);
            json_object_put(cfg);
            json_object_put(links);
            return VM_EXIT_USAGE;
        }
    }
    char part[4200];
    snprintf(part, sizeof(part), "%s.partial", file);
    if (load_libarchive(err, sizeof(err)) < 0) {
        fprintf(stderr, "vessel export: %s\n", err);
        for (unsigned k = 0; k < n; k++)
            if (mem[k].temp) unlink(mem[k].path);
        json_object_put(cfg);
        json_object_put(links);
        return VM_EXIT_HOST_ERROR;
    }
    struct archive *a = la.archive_write_new();
    la.archive_write_set_format_pax_restricted(a);
    la.archive_write_add_filter_zstd(a);
    int r = la.archive_write_open_filename(a, part) == ARCHIVE_OK ? 0 : -1;
    if (r) snprintf(err, sizeof(err), "%.400s: %.200s", part, la.archive_error_string(a));
    for (unsigned i = 0; !r && i < n; i++)
        r = add_member(a, &mem[i], err, sizeof(err));
    json_object *man = json_object_new_object(), *list = json_object_new_array();
    json_object_object_add(man, "format", json_object_new_string(EXPORT_FORMAT));
    json_object_object_add(man, "version", json_object_new_int(EXPORT_VERSION));
    json_object_object_add(man, "name", json_object_new_string(name));
    json_object_object_add(man, "created", json_object_new_int64((int64_t)time(NULL)));
    json_object_object_add(man, "config", cfg);
    json_object_object_add(man, "snapshot", snap ? json_object_new_string(snap) : NULL);
    for (unsigned i = 0; i < n; i++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(mem[i].name));
        json_object_object_add(o, "size", json_object_new_int64((int64_t)mem[i].size));
        json_object_object_add(o, "sha256", json_object_new_string(mem[i].sha));
        json_object_array_add(list, o);
    }
    json_object_object_add(man, "members", list);
    if (json_object_object_length(links))
        json_object_object_add(man, "backing", links);
    else
        json_object_put(links);
    if (!r) {
        const char *txt = json_object_to_json_string_ext(man, JSON_C_TO_STRING_PRETTY);
        struct archive_entry *e = la.archive_entry_new();
        la.archive_entry_set_pathname(e, "manifest.json");
        la.archive_entry_set_size(e, (la_int64_t)strlen(txt));
        la.archive_entry_set_filetype(e, AE_IFREG);
        la.archive_entry_set_perm(e, 0600);
        la.archive_entry_set_mtime(e, time(NULL), 0);
        if (la.archive_write_header(a, e) != ARCHIVE_OK ||
            la.archive_write_data(a, txt, strlen(txt)) != (la_ssize_t)strlen(txt)) {
            snprintf(err, sizeof(err), "writing the archive: %s", la.archive_error_string(a));
            r = -1;
        }
        la.archive_entry_free(e);
    }
    if (la.archive_write_close(a) != ARCHIVE_OK && !r) {
        snprintf(err, sizeof(err), "writing the archive: %s", la.archive_error_string(a));
        r = -1;
    }
    la.archive_write_free(a);
    json_object_put(man);
    for (unsigned i = 0; i < n; i++)
        if (mem[i].temp) unlink(mem[i].path);
    if (!r) {
        int fd = open(part, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0 || rename(part, file) < 0) {
            snprintf(err, sizeof(err), "%.400s: %s", file, strerror(errno));
            r = -1;
        }
        if (fd >= 0) close(fd);
    }
    if (r) {
        unlink(part);
        fprintf(stderr, "vessel export: %s\n", err);
        return VM_EXIT_HOST_ERROR;
    }
    struct stat sb;
    stat(file, &sb);
    printf("%s: exported to %s (%.1f MiB)\n", name, file, (double)sb.st_size / (1 << 20));
    return 0;
}

/* ---- import ---- */

/* The member names an export may hold, and where each goes in the VM's directory. */
static bool member_allowed(const char *n, char *rel, size_t rl)
{
    unsigned i, k;
    char ext[8], tail[16];
    if (sscanf(n, "disks/disk%u.b%u.%7s%15s", &i, &k, ext, tail) == 3 && i < MACHINE_MAX_DISKS &&
        k >= 1 && k <= MAX_LAYERS && (!strcmp(ext, "img") || !strcmp(ext, "qcow2"))) {
        char want[MEMBER_NAME_MAX];
        snprintf(want, sizeof(want), "disks/disk%u.b%u.%s", i, k, ext);
        if (strcmp(want, n)) return false;
        snprintf(rel, rl, "%s", n);
        return true;
    }
    if (sscanf(n, "disks/disk%u.%7s%15s", &i, ext, tail) == 2 && i < MACHINE_MAX_DISKS &&
        (!strcmp(ext, "img") || !strcmp(ext, "qcow2"))) {
        char want[MEMBER_NAME_MAX];
        snprintf(want, sizeof(want), "disks/disk%u.%s", i, ext);
        if (strcmp(want, n)) return false; /* no leading zeros or other spellings */
        snprintf(rel, rl, "%s", n);
        return true;
    }
    static const char *const snapf[] = {"info.json", "state", "memory"};
    for (unsigned k = 0; k < 3; k++)
        if (!strncmp(n, "snapshot/", 9) && !strcmp(n + 9, snapf[k])) {
            snprintf(rel, rl, ".snapshot/%s", snapf[k]);
            return true;
        }
    if (sscanf(n, "snapshot/disk-%u.im%1s%15s", &i, ext, tail) == 2 && i < MACHINE_MAX_DISKS &&
        !strcmp(ext, "g")) {
        char want[MEMBER_NAME_MAX];
        snprintf(want, sizeof(want), "snapshot/disk-%u.img", i);
        if (strcmp(want, n)) return false;
        snprintf(rel, rl, ".snapshot/disk-%u.img", i);
        return true;
    }
    return !strcmp(n, "manifest.json") && (snprintf(rel, rl, "manifest.json"), true);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

/* Write one member's data to path, sparse, hashing it. 0 or -1 with err. */
static int extract(struct archive *a, const char *path, struct member *m, char *manifest, char *err,
                   size_t errlen)
{
    int fd = manifest ? -1 : open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (!manifest && fd < 0) {
        snprintf(err, errlen, "%.400s: %s", path, strerror(errno));
        return -1;
    }
    struct sha256_ctx h;
    sha256_init(&h);
    uint8_t *buf = malloc(CHUNK);
    uint64_t off = 0;
    int r = buf ? 0 : -1;
    while (!r) {
        la_ssize_t n = la.archive_read_data(a, buf, CHUNK);
        if (n == 0) break;
        if (n < 0) {
            snprintf(err, errlen, "the file is damaged or truncated (%.64s): %.300s", m->name,
                     la.archive_error_string(a));
            r = -1;
            break;
        }
        sha256_update(&h, (size_t)n, buf);
        if (manifest) {
            if (off + (uint64_t)n > MANIFEST_MAX) {
                snprintf(err, errlen, "manifest.json is larger than %u bytes", MANIFEST_MAX);
                r = -1;
                break;
            }
            memcpy(manifest + off, buf, (size_t)n);
        } else if (!all_zero(buf, (size_t)n)) { /* zeros stay holes */
            size_t w = 0;
            while (w < (size_t)n) {
                ssize_t k = pwrite(fd, buf + w, (size_t)n - w, (off_t)(off + w));
                if (k <= 0) {
                    snprintf(err, errlen, "%.400s: %s", path, strerror(errno));
                    r = -1;
                    break;
                }
                w += (size_t)k;
            }
        }
        off += (uint64_t)n;
    }
    free(buf);
    if (manifest && !r) manifest[off] = 0;
    if (fd >= 0) {
        if (!r && (ftruncate(fd, (off_t)off) < 0 || fsync(fd) < 0)) {
            snprintf(err, errlen, "%.400s: %s", path, strerror(errno));
            r = -1;
        }
        close(fd);
    }
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_digest(&h, sizeof(d), d);
    hex(d, m->sha);
    m->size = off;
    return r;
}

static void rm_tree(const char *dir)
{
    const char *subs[] = {"disks", ".snapshot", NULL};
    char p[4400];
    for (int i = 0;; i++) {
        const char *sub = subs[i];
        snprintf(p, sizeof(p), "%s%s%s", dir, sub ? "/" : "", sub ? sub : "");
        DIR *d = opendir(p);
        struct dirent *e;
        while (d && (e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlinkat(dirfd(d), e->d_name, 0);
        if (d) closedir(d);
        rmdir(p);
        if (!sub) break;
    }
}

static void import_usage(FILE *out)
{
    fprintf(out, "Usage: vessel import FILE [--name NAME] [--store DIR]\n"
                 "A VM from a file vessel export made. Everything is checked (sizes, sha256,\n"
                 "the configuration) before the VM is created; a damaged file creates nothing.\n");
}

/* --keep-backing: a disk member and the member that is its backing file. */
struct link {
    char from[MEMBER_NAME_MAX], to[MEMBER_NAME_MAX];
};
#define MAX_LINKS (MACHINE_MAX_DISKS * MAX_LAYERS)

static bool received(const struct member *got, unsigned ngot, const char *n)
{
    for (unsigned k = 0; k < ngot; k++)
        if (!strcmp(got[k].name, n)) return true;
    return false;
}

/* The manifest's "backing" object: each link from a disk's top image (disks/diskN.qcow2) or
 * layer K-1 (disks/diskN.b{K-1}.qcow2) to layer K of the same disk, both received. So a
 * chain never leaves the export, never loops and never crosses disks. 0 or -1. */
static int check_links(json_object *m, const struct member *got, unsigned ngot, struct link *links,
                       unsigned *nlinks, char *err, size_t errlen)
{
    json_object *b;
    *nlinks = 0;
    if (!json_object_object_get_ex(m, "backing", &b) || json_object_is_type(b, json_type_null))
        return 0;
    if (!json_object_is_type(b, json_type_object)) {
        snprintf(err, errlen, "manifest.json: 'backing' must be an object");
        return -1;
    }
    json_object_object_foreach(b, from, v)
    {
        const char *to = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
        unsigned i, k, fi, fk;
        char ext[8], want[MEMBER_NAME_MAX];
        bool ok = *nlinks < MAX_LINKS && received(got, ngot, from) && received(got, ngot, to) &&
                  sscanf(to, "disks/disk%u.b%u.%7s", &i, &k, ext) == 3 && k >= 1;
        if (ok && k == 1)
            ok = sscanf(from, "disks/disk%u.qcow2", &fi) == 1 && fi == i &&
                 snprintf(want, sizeof(want), "disks/disk%u.qcow2", i) > 0 && !strcmp(want, from);
        else if (ok)
            ok = sscanf(from, "disks/disk%u.b%u.qcow2", &fi, &fk) == 2 && fi == i && fk == k - 1 &&
                 snprintf(want, sizeof(want), "disks/disk%u.b%u.qcow2", i, fk) > 0 &&
                 !strcmp(want, from);
        if (!ok) {
            snprintf(err, errlen,
                     "manifest.json: backing link %.64s -> %.64s is not one of the file's "
                     "own chains",
                     from, to);
            return -1;
        }
        snprintf(links[*nlinks].from, MEMBER_NAME_MAX, "%s", from);
        snprintf(links[*nlinks].to, MEMBER_NAME_MAX, "%s", to);
        (*nlinks)++;
    }
    return 0;
}

/* Check the manifest against what arrived; fills spec with drive paths in final. */
static int check_manifest(const char *text, struct member *got, unsigned ngot, const char *final,
                          struct vm_spec *spec, char *name, size_t namelen, char *snap,
                          size_t snaplen, struct link *links, unsigned *nlinks, char *err,
                          size_t errlen)
{
    json_object *m = json_tokener_parse(text), *v, *list;
    int r = -1;
    if (!m || !json_object_is_type(m, json_type_object)) {
        snprintf(err, errlen, "manifest.json is not a JSON object");
        goto out;
    }
    if (!json_object_object_get_ex(m, "format", &v) ||
        strcmp(json_object_get_string(v), EXPORT_FORMAT) ||
        !json_object_object_get_ex(m, "version", &v) || json_object_get_int(v) != EXPORT_VERSION) {
        snprintf(err, errlen, "not a vessel export of version %d", EXPORT_VERSION);
        goto out;
    }
    if (!json_object_object_get_ex(m, "members", &list) ||
        !json_object_is_type(list, json_type_array) ||
        json_object_array_length(list) != ngot - 1) { /* all but the manifest */
        snprintf(err, errlen, "the file's members do not match its manifest");
        goto out;
    }
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *o = json_object_array_get_idx(list, i), *n, *sz, *sh;
        if (!json_object_object_get_ex(o, "name", &n) ||
            !json_object_object_get_ex(o, "size", &sz) ||
            !json_object_object_get_ex(o, "sha256", &sh)) {
            snprintf(err, errlen, "manifest.json: a member without name, size or sha256");
            goto out;
        }
        bool found = false;
        for (unsigned k = 0; k < ngot; k++)
            if (!strcmp(got[k].name, json_object_get_string(n))) {
                found = true;
                if (got[k].size != (uint64_t)json_object_get_int64(sz) ||
                    strcmp(got[k].sha, json_object_get_string(sh))) {
                    snprintf(err, errlen,
                             "%.64s: its sha256 or size does not match the manifest "
                             "(the file is damaged)",
                             got[k].name);
                    goto out;
                }
            }
        if (!found) {
            snprintf(err, errlen, "%s is in the manifest but not in the file",
                     json_object_get_string(n));
            goto out;
        }
    }
    if (json_object_object_get_ex(m, "name", &v) && json_object_is_type(v, json_type_string))
        snprintf(name, namelen, "%s", json_object_get_string(v));
    snap[0] = 0;
    if (json_object_object_get_ex(m, "snapshot", &v) && json_object_is_type(v, json_type_string))
        snprintf(snap, snaplen, "%s", json_object_get_string(v));
    if (snap[0] && !store_name_valid(snap)) {
        snprintf(err, errlen, "manifest.json: bad snapshot name");
        goto out;
    }
    if (check_links(m, got, ngot, links, nlinks, err, errlen) < 0) goto out;
    json_object *cfg;
    if (!json_object_object_get_ex(m, "config", &cfg) ||
        vm_spec_from_json(spec, cfg, err, errlen) < 0)
        goto out;
    for (unsigned i = 0; i < spec->ndrives; i++) {
        char rel[MEMBER_NAME_MAX];
        bool ok = false;
        for (unsigned k = 0; k < ngot; k++)
            if (!strcmp(got[k].name, spec->drives[i].path) && !strncmp(got[k].name, "disks/", 6))
                ok = true;
        if (!ok || !member_allowed(spec->drives[i].path, rel, sizeof(rel))) {
            snprintf(err, errlen, "drive %s names no disk of the file", spec->drives[i].id);
            goto out;
        }
        if (snprintf(spec->drives[i].path, sizeof(spec->drives[i].path), "%.3900s/%s", final,
                     rel) >= (int)sizeof(spec->drives[i].path)) {
            snprintf(err, errlen, "the store path is too long");
            goto out;
        }
    }
    r = 0;
out:
    json_object_put(m);
    return r;
}

int cli_import(int argc, char **argv)
{
    const char *store = NULL, *as = NULL, *file = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--store") && i + 1 < argc)
            store = argv[++i];
        else if (!strcmp(argv[i], "--name") && i + 1 < argc)
            as = argv[++i];
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            import_usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' || file) {
            import_usage(stderr);
            return VM_EXIT_USAGE;
        } else
            file = argv[i];
    }
    if (!file || (as && !store_name_valid(as))) {
        import_usage(stderr);
        return VM_EXIT_USAGE;
    }
    struct store st;
    char err[700];
    if (store_open(&st, store, true, err, sizeof(err)) < 0) {
        fprintf(stderr, "vessel import: %s\n", err);
        return VM_EXIT_USAGE;
    }
    char tmp[4200], vms[4096];
    store_vm_path(&st, ".import", NULL, vms, sizeof(vms)); /* vms/.import */
    snprintf(tmp, sizeof(tmp), "%s-%d", vms, (int)getpid());
    char *slash = strrchr(vms, '/');
    if (slash) *slash = 0; /* vms */
    if (mkdir(tmp, 0700) < 0) {
        fprintf(stderr, "vessel import: %s: %s\n", tmp, strerror(errno));
        return VM_EXIT_HOST_ERROR;
    }
    char p[4400];
    snprintf(p, sizeof(p), "%s/disks", tmp);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/.snapshot", tmp);
    mkdir(p, 0700);

    if (load_libarchive(err, sizeof(err)) < 0) {
        fprintf(stderr, "vessel import: %s\n", err);
        rm_tree(tmp);
        return VM_EXIT_HOST_ERROR;
    }
    struct archive *a = la.archive_read_new();
    la.archive_read_support_filter_all(a);
    la.archive_read_support_format_tar(a);
    static struct member got[MAX_MEMBERS + 1];
    unsigned ngot = 0, nlinks = 0;
    static struct link links[MAX_LINKS];
    char *manifest = malloc(MANIFEST_MAX + 1);
    bool have_manifest = false;
    int r = manifest ? 0 : -1;
    if (!manifest) snprintf(err, sizeof(err), "out of memory");
    if (!r && la.archive_read_open_filename(a, file, CHUNK) != ARCHIVE_OK) {
        snprintf(err, sizeof(err), "%.400s: %.200s", file, la.archive_error_string(a));
        r = -1;
    }
    struct archive_entry *e;
    while (!r) {
        int h = la.archive_read_next_header(a, &e);
        if (h == ARCHIVE_EOF) break;
        if (h != ARCHIVE_OK) {
            snprintf(err, sizeof(err), "the file is damaged or truncated: %s",
                     la.archive_error_string(a));
            r = -1;
            break;
        }
        const char *n = la.archive_entry_pathname(e);
        char rel[MEMBER_NAME_MAX];
        if (!n || strlen(n) >= MEMBER_NAME_MAX || la.archive_entry_filetype(e) != AE_IFREG ||
            !member_allowed(n, rel, sizeof(rel))) {
            snprintf(err, sizeof(err), "the file holds '%.100s', which no vessel export holds",
                     n ? n : "?");
            r = -1;
            break;
        }
        for (unsigned k = 0; k < ngot; k++)
            if (!strcmp(got[k].name, n)) {
                snprintf(err, sizeof(err), "the file holds %s twice", n);
                r = -1;
            }
        if (r || ngot == MAX_MEMBERS + 1) {
            if (!r) snprintf(err, sizeof(err), "the file holds too many members");
            r = -1;
            break;
        }
        struct member *m = &got[ngot++];
        snprintf(m->name, sizeof(m->name), "%s", n);
        bool is_man = !strcmp(n, "manifest.json");
        snprintf(m->path, sizeof(m->path), "%s/%s", tmp, rel);
        r = extract(a, m->path, m, is_man ? manifest : NULL, err, sizeof(err));
        if (!r) progress(n, m->size, m->size);
        if (is_man) have_manifest = true;
    }
    la.archive_read_free(a);
    if (!r && !have_manifest) {
        snprintf(err, sizeof(err), "the file has no manifest.json (truncated?)");
        r = -1;
    }
    static struct vm_spec spec;
    char name[64] = "", snap[64] = "", final[4096];
    if (!r) {
        /* the final name first: the drive paths point into its directory */
        char mname[64] = "";
        json_object *mj = json_tokener_parse(manifest), *v;
        if (mj && json_object_object_get_ex(mj, "name", &v) &&
            json_object_is_type(v, json_type_string))
            snprintf(mname, sizeof(mname), "%s", json_object_get_string(v));
        json_object_put(mj);
        snprintf(name, sizeof(name), "%s", as ? as : mname);
        if (!store_name_valid(name)) {
            snprintf(err, sizeof(err),
                     "the file names its VM '%.64s', not a valid name: give "
                     "--name",
                     name);
            r = -1;
        }
    }
    if (!r) {
        store_vm_path(&st, name, NULL, final, sizeof(final));
        char ignore[64];
        r = check_manifest(manifest, got, ngot, final, &spec, ignore, sizeof(ignore), snap,
                           sizeof(snap), links, &nlinks, err, sizeof(err));
    }
    for (unsigned k = 0; !r && k < ngot; k++) {
        if (strncmp(got[k].name, "disks/", 6) && strncmp(got[k].name, "snapshot/disk-", 14))
            continue;
        const struct link *l = NULL;
        for (unsigned j = 0; j < nlinks; j++)
            if (!strcmp(links[j].from, got[k].name)) l = &links[j];
        r = l ? relink_disk(got[k].path, got[k].name, final, l->to, err, sizeof(err))
              : standalone_disk(got[k].path, got[k].name, err, sizeof(err));
    }
    free(manifest);
    int lk = -1;
    if (!r && (lk = store_lock(&st, err, sizeof(err))) < 0) r = -1;
    if (!r && store_vm_exists(&st, name)) {
        snprintf(err, sizeof(err), "a VM named %s exists (give --name)", name);
        r = -1;
    }
    /* into place: the snapshot directory, then the VM's directory, then its configuration */
    if (!r && snap[0]) {
        char from[4400], to[4400];
        snprintf(from, sizeof(from), "%s/.snapshot", tmp);
        snprintf(to, sizeof(to), "%s/snapshots", tmp);
        mkdir(to, 0700);
        snprintf(to + strlen(to), sizeof(to) - strlen(to), "/%s", snap);
        if (rename(from, to) < 0) {
            snprintf(err, sizeof(err), "%.400s: %s", to, strerror(errno));
            r = -1;
        }
    }
    if (!r && rename(tmp, final) < 0) {
        snprintf(err, sizeof(err), "%.400s: %s", final, strerror(errno));
        r = -1;
    }
    /* an export imported next to its source (or another VM with its MAC): a MAC of its own */
    char *owner = spec.net.present ? store_mac_owner(&st, name, spec.net.mac) : NULL;
    if (owner) {
        char *o = NULL;
        do
            free(o), net_mac_generate(spec.net.mac);
        while ((o = store_mac_owner(&st, name, spec.net.mac)));
        fprintf(stderr, "vessel import: %s has %s's MAC address: it gets a new one\n", name, owner);
        free(owner);
    }
    if (!r && store_vm_save(&st, name, &spec, err, sizeof(err)) < 0) {
        char e2[200];
        store_vm_remove(&st, name, e2, sizeof(e2));
        r = -1;
    }
    if (lk >= 0) store_unlock(lk);
    if (r) {
        /* nothing half-imported: the temporary directory goes, with all it holds */
        char sd[4400];
        snprintf(sd, sizeof(sd), "%s/snapshots/%s", tmp, snap);
        if (snap[0]) rm_tree(sd);
        snprintf(sd, sizeof(sd), "%s/snapshots", tmp);
        rmdir(sd);
        rm_tree(tmp);
        fprintf(stderr, "vessel import: %s\n", err);
        return VM_EXIT_USAGE;
    }
    char sd[4400];
    snprintf(sd, sizeof(sd), "%s/.snapshot", final);
    rmdir(sd); /* empty when the export had no snapshot */
    printf("%s\n", name);
    return 0;
}

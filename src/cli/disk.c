/* vessel disk: create, inspect, check and convert disk images (raw and qcow2). */
#include "backend/block/block.h"
#include "backend/block/qcow2.h"
#include "cli/cli.h"
#include "util/size.h"
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXIT_HOST 1
#define EXIT_ARGS 2

static void disk_usage(FILE *out)
{
    fprintf(out, "Usage: vessel disk COMMAND [ARGS]\n"
                 "Create, inspect, check and convert disk images (raw and qcow2).\n"
                 "\n"
                 "Commands:\n"
                 "  create FILE SIZE   make a sparse raw image of SIZE bytes (e.g. 10G);\n"
                 "                     -f qcow2 [--backing B] for a qcow2 image\n"
                 "  info FILE          show an image's format and sizes, its backing chain,\n"
                 "                     and whether a vessel is using it\n"
                 "  check FILE         check a qcow2 image's refcounts (--repair fixes leaks)\n"
                 "  snapshot FILE list|create|apply|delete [NAME]\n"
                 "                     a qcow2 image's internal snapshots\n"
                 "  convert -O FMT IN OUT\n"
                 "                     copy an image to a new raw or qcow2 image\n"
                 "\n"
                 "'vessel disk COMMAND --help' describes a command.\n");
}

static void create_usage(FILE *out)
{
    fprintf(out, "Usage: vessel disk create FILE SIZE [-f raw|qcow2] [--backing B [-F FMT]]\n"
                 "Create FILE as a disk image of SIZE bytes. The file is sparse: it takes\n"
                 "space on the host only as the guest writes to it.\n"
                 "SIZE is a whole number with an optional unit K, M, G or T (powers of 1024),\n"
                 "e.g. 10G or 512M, and a multiple of 512 (the sector size).\n"
                 "An existing FILE is never overwritten.\n"
                 "\n"
                 "  -f, --format FMT           raw (the default) or qcow2 (version 3,\n"
                 "                             64 KiB clusters)\n"
                 "  -b, --backing B            qcow2 only: reads of clusters the image does\n"
                 "                             not hold come from B (kept unchanged); a\n"
                 "                             relative B is relative to FILE's directory.\n"
                 "                             SIZE may then be left out (B's size)\n"
                 "  -F, --backing-format FMT   B's format (raw, qcow2; probed if not given)\n"
                 "  -h, --help                 show this help\n"
                 "\n"
                 "Exit status: 0 created, 1 host error, 2 bad arguments (nothing is written).\n");
}

static void info_usage(FILE *out)
{
    fprintf(out, "Usage: vessel disk info FILE\n"
                 "Show a disk image's format, its size as the guest sees it, the space it takes\n"
                 "on the host, and whether a running vessel has it open (and which process).\n"
                 "\n"
                 "  -h, --help   show this help\n"
                 "\n"
                 "Exit status: 0 shown, 1 host error, 2 bad arguments or not an image.\n");
}

static const struct option help_only[] = {
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Parse a subcommand's argv (argv[0] = its name): --help or exactly npos positionals.
 * Returns -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, int npos, const char *what, void (*usage)(FILE *))
{
    optind = 0; /* glibc: full re-initialisation, as argv differs between calls */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", help_only, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return 0;
        }
        if (optopt)
            fprintf(stderr, "vessel disk %s: unknown option -%c (see vessel disk %s --help)\n",
                    argv[0], optopt, argv[0]);
        else
            fprintf(stderr, "vessel disk %s: unknown option %s (see vessel disk %s --help)\n",
                    argv[0], argv[optind - 1], argv[0]);
        return EXIT_ARGS;
    }
    if (npos >= 0 && argc - optind != npos) {
        fprintf(stderr, "vessel disk %s: expected %s (see vessel disk %s --help)\n", argv[0], what,
                argv[0]);
        return EXIT_ARGS;
    }
    return -1;
}

/* Errors that mean "fix your arguments" rather than "the host failed". */
static int exit_for(int err)
{
    switch (-err) {
    case EINVAL:
    case EEXIST:
    case ENOENT:
    case ENOTDIR:
    case EISDIR:
    case EFBIG:
    case ENAMETOOLONG:
    case ELOOP: return EXIT_ARGS;
    default: return EXIT_HOST;
    }
}

static const struct option create_opts[] = {
    {"help", no_argument, NULL, 'h'},
    {"format", required_argument, NULL, 'f'},
    {"backing", required_argument, NULL, 'b'},
    {"backing-format", required_argument, NULL, 'F'},
    {NULL, 0, NULL, 0},
};

/* getopt's complaint about argv[optind - 1], in the subcommand's words. */
static int bad_option(char **argv)
{
    if (optopt && strchr("fbFO", optopt) && argv[optind - 1][0] == '-' &&
        argv[optind - 1][1] == optopt)
        fprintf(stderr, "vessel disk %s: option -%c needs a value (see vessel disk %s --help)\n",
                argv[0], optopt, argv[0]);
    else if (optopt)
        fprintf(stderr, "vessel disk %s: unknown option -%c (see vessel disk %s --help)\n", argv[0],
                optopt, argv[0]);
    else
        fprintf(stderr, "vessel disk %s: unknown option %s (see vessel disk %s --help)\n", argv[0],
                argv[optind - 1], argv[0]);
    return EXIT_ARGS;
}

static int disk_create(int argc, char **argv)
{
    const char *fmt = "raw", *backing = NULL, *bfmt = NULL;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":hf:b:F:", create_opts, NULL)) != -1) {
        switch (c) {
        case 'h': create_usage(stdout); return 0;
        case 'f': fmt = optarg; break;
        case 'b': backing = optarg; break;
        case 'F': bfmt = optarg; break;
        default: return bad_option(argv);
        }
    }
    bool qcow2 = !strcmp(fmt, "qcow2");
    if (!qcow2 && strcmp(fmt, "raw")) {
        fprintf(stderr, "vessel disk create: format %s: raw or qcow2\n", fmt);
        return EXIT_ARGS;
    }
    if ((backing || bfmt) && !qcow2) {
        fprintf(stderr, "vessel disk create: --backing needs -f qcow2\n");
        return EXIT_ARGS;
    }
    if (bfmt && !backing) {
        fprintf(stderr, "vessel disk create: --backing-format without --backing\n");
        return EXIT_ARGS;
    }
    int npos = argc - optind;
    if (npos != 2 && !(backing && npos == 1)) {
        fprintf(stderr, "vessel disk create: expected FILE and SIZE (see vessel disk create "
                        "--help)\n");
        return EXIT_ARGS;
    }
    const char *path = argv[optind], *size_s = npos == 2 ? argv[optind + 1] : NULL;
    uint64_t size = 0;
    int r;
    if (size_s) {
        r = size_parse(size_s, &size);
        if (r < 0) {
            fprintf(stderr, "vessel disk create: size %s: %s (use e.g. 10G, 512M or 4096)\n",
                    size_s, r == -ERANGE ? "too large" : "not a size");
            return EXIT_ARGS;
        }
        if (size == 0 || size % 512) {
            fprintf(stderr,
                    "vessel disk create: size %s: must be a non-zero multiple of 512 bytes "
                    "(the sector size)\n",
                    size_s);
            return EXIT_ARGS;
        }
    }
    char err[1024];
    r = qcow2 ? qcow2_create(path, size, 16, backing, bfmt, err, sizeof(err))
              : blk_create_raw(path, size, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "vessel disk create: %s\n", err);
        return exit_for(r);
    }
    if (qcow2 && !size) { /* the backing file's: read it back for the message */
        struct qcow2 *q;
        if (qcow2_open(&q, path, QCOW2_RDONLY | QCOW2_NOLOCK, false, err, sizeof(err)) == 0) {
            size = qcow2_size(q);
            qcow2_close(q);
        }
    }
    char sz[32];
    size_format(size, sz, sizeof(sz));
    if (backing)
        printf("created %s: qcow2 image, %s, backing file %s\n", path, sz, backing);
    else
        printf("created %s: %s image, %s (sparse)\n", path, qcow2 ? "qcow2" : "raw", sz);
    return 0;
}

/* "1.5G": one decimal for sizes that are not a whole number of units. */
static void size_human(uint64_t v, char *buf, size_t len)
{
    static const char units[] = "KMGTPE";
    if (v < 1024 || (v % 1024) == 0) {
        size_format(v, buf, (unsigned)len);
        return;
    }
    double d = (double)v;
    int u = -1;
    while (d >= 1024 && u < 5) {
        d /= 1024;
        u++;
    }
    snprintf(buf, len, "%.1f%c", d, units[u]);
}

/* Who holds a lock on the image, as "read-write by process 123 (vessel)"; empty if nobody.
 * vessel takes OFD locks, which carry no pid: blk_lock_holder finds the holder in /proc. */
static void lock_holder(int fd, char *buf, size_t len)
{
    buf[0] = 0;
    long pid;
    bool write = false;
    if (blk_lock_holder(fd, &pid, &write) <= 0) return;
    const char *mode = write ? "read-write" : "read-only";
    if (pid <= 0) {
        snprintf(buf, len, "%s by another process (not visible from here)", mode);
        return;
    }
    char comm[64] = "", p[64];
    snprintf(p, sizeof(p), "/proc/%ld/comm", pid);
    FILE *f = fopen(p, "re");
    if (f) {
        if (fgets(comm, sizeof(comm), f)) comm[strcspn(comm, "\n")] = 0;
        fclose(f);
    }
    if (comm[0])
        snprintf(buf, len, "%s by process %ld (%s)", mode, pid, comm);
    else
        snprintf(buf, len, "%s by process %ld", mode, pid);
}

/* qcow2: the header's view (read without a lock), then the backing chain. */
static int info_qcow2(const char *path, const struct stat *st, const char *holder)
{
    char err[1024];
    struct qcow2 *q;
    int r = qcow2_open(&q, path, QCOW2_RDONLY | QCOW2_NOLOCK, false, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "vessel disk info: %s\n", err);
        return r == -ENOMEM || r == -EIO ? EXIT_HOST : EXIT_ARGS;
    }
    const struct qcow2_header *h = qcow2_hdr(q);
    uint64_t alloc = (uint64_t)st->st_blocks * 512;
    char vs[32], as[32];
    size_human(h->size, vs, sizeof(vs));
    size_human(alloc, as, sizeof(as));
    printf("image:          %s\n", path);
    printf("format:         qcow2 (version %u)\n", h->version);
    printf("virtual size:   %s (%llu bytes)\n", vs, (unsigned long long)h->size);
    printf("cluster size:   %llu\n", 1ull << h->cluster_bits);
    printf("allocated:      %s on the host (%llu bytes)\n", as, (unsigned long long)alloc);
    if (h->backing[0]) {
        printf("backing chain:  ");
        for (const struct qcow2 *b = qcow2_backing(q); b; b = qcow2_backing(b)) {
            const struct qcow2_header *bh = qcow2_hdr(b);
            printf("%s%s (%s)", b == qcow2_backing(q) ? "" : " -> ", qcow2_path(b),
                   bh ? "qcow2" : "raw");
        }
        printf("\n");
    }
    printf("compression:    %s\n", h->compression ? "zstd" : "deflate");
    printf("snapshots:      %u\n", h->nb_snapshots);
    bool dirty = h->incompat & QCOW2_INCOMPAT_DIRTY, bad = h->incompat & QCOW2_INCOMPAT_CORRUPT;
    printf("dirty:          %s\n",
           dirty ? "yes: not closed cleanly; run vessel disk check --repair before use" : "no");
    if (bad) printf("corrupt:        yes: marked corrupt; run vessel disk check --repair\n");
    printf("in use:         %s\n", holder[0] ? holder : "no");
    qcow2_close(q);
    return 0;
}

static int disk_info(int argc, char **argv)
{
    int r = parse_args(argc, argv, 1, "FILE", info_usage);
    if (r >= 0) return r;
    const char *path = argv[optind];
    /* A plain descriptor, no lock: info must work on an image a vessel is running. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY); /* a FIFO: no wait */
    if (fd < 0) {
        int e = errno;
        fprintf(stderr, "vessel disk info: %s: %s\n", path, strerror(e));
        return exit_for(-e);
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        fprintf(stderr, "vessel disk info: %s: %s\n", path, strerror(e));
        close(fd);
        return EXIT_HOST;
    }
    if (!S_ISREG(st.st_mode)) {
        fprintf(stderr, "vessel disk info: %s is %s, not a disk image\n", path,
                S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
        close(fd);
        return EXIT_ARGS;
    }
    unsigned char magic[4] = {0};
    ssize_t n = pread(fd, magic, sizeof(magic), 0);
    if (n < 0) {
        int e = errno;
        fprintf(stderr, "vessel disk info: cannot read %s: %s\n", path, strerror(e));
        close(fd);
        return EXIT_HOST;
    }
    bool qcow2 = n == 4 && !memcmp(magic, "QFI\xfb", 4);
    char holder[160];
    lock_holder(fd, holder, sizeof(holder));
    close(fd);

    if (qcow2) return info_qcow2(path, &st, holder);
    uint64_t vsize = (uint64_t)st.st_size, alloc = (uint64_t)st.st_blocks * 512;
    char vs[32], as[32];
    size_human(vsize, vs, sizeof(vs));
    size_human(alloc, as, sizeof(as));
    printf("image:          %s\n", path);
    printf("format:         raw\n");
    printf("virtual size:   %s (%llu bytes)\n", vs, (unsigned long long)vsize);
    printf("allocated:      %s on the host (%llu bytes)\n", as, (unsigned long long)alloc);
    printf("in use:         %s\n", holder[0] ? holder : "no");
    if (vsize < 512)
        printf("warning:        smaller than one 512-byte sector: vessel will not open it\n");
    else if (vsize % 512)
        printf("warning:        not a multiple of 512 bytes: vessel will not open it\n");
    return 0;
}

static void check_usage(FILE *out)
{
    fprintf(out, "Usage: vessel disk check [--repair] FILE\n"
                 "Check a qcow2 image: rebuild the reference counts its tables imply and\n"
                 "compare them with the stored ones. A leak (a cluster counted but not used,\n"
                 "e.g. after vessel was killed mid-write) wastes space and is harmless; an\n"
                 "error (a cluster used more than counted) would corrupt data on later writes.\n"
                 "The image must not be in use.\n"
                 "\n"
                 "  -r, --repair   fix leaks (and too-low counts), then clear the dirty bit\n"
                 "  -h, --help     show this help\n"
                 "\n"
                 "Exit status: 0 clean (or repaired), 1 host error, 2 bad arguments or not a\n"
                 "qcow2 image, 3 leaks left, 4 errors left.\n");
}

static const struct option check_opts[] = {
    {"help", no_argument, NULL, 'h'},
    {"repair", no_argument, NULL, 'r'},
    {NULL, 0, NULL, 0},
};

static int disk_check(int argc, char **argv)
{
    bool repair = false;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":hr", check_opts, NULL)) != -1) {
        if (c == 'h') {
            check_usage(stdout);
            return 0;
        }
        if (c == 'r') {
            repair = true;
            continue;
        }
        return bad_option(argv);
    }
    if (argc - optind != 1) {
        fprintf(stderr, "vessel disk check: expected FILE (see vessel disk check --help)\n");
        return EXIT_ARGS;
    }
    const char *path = argv[optind];
    struct qcow2_check res;
    char err[1024];
    int r = qcow2_check(path, repair, &res, stdout, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "vessel disk check: %s\n", err);
        return r == -EBUSY || r == -EIO || r == -ENOMEM ? EXIT_HOST : EXIT_ARGS;
    }
    printf("%s: %llu clusters in use (%llu of guest data), %llu in the file\n", path,
           (unsigned long long)res.used, (unsigned long long)res.data,
           (unsigned long long)res.file_clusters);
    printf("%llu leaked clusters, %llu errors", (unsigned long long)res.leaks,
           (unsigned long long)res.errors);
    if (repair) printf(", %llu fixed", (unsigned long long)res.fixed);
    printf("\n");
    if (res.dirty)
        printf("dirty bit: %s\n",
               repair && res.fixed == res.leaks + res.errors ? "cleared" : "set");
    uint64_t left = res.leaks + res.errors - (repair ? res.fixed : 0);
    if (!left) {
        printf("No errors found%s.\n", repair && res.fixed ? " after repair" : "");
        return 0;
    }
    return res.errors ? 4 : 3;
}

static void convert_usage(FILE *out)
{
    fprintf(out, "Usage: vessel disk convert [-c] [-l SNAPSHOT] -O raw|qcow2 IN OUT\n"
                 "Copy image IN (raw or qcow2, backing chain included) to a new image OUT of\n"
                 "the given format. Zero blocks are left out: OUT is sparse (a raw OUT has\n"
                 "holes, a qcow2 OUT unallocated clusters). OUT must not exist.\n"
                 "\n"
                 "  -O, --output-format FMT   raw or qcow2\n"
                 "  -c, --compress            qcow2: deflate-compressed clusters (where that\n"
                 "                            saves space; readable by QEMU; writes to them\n"
                 "                            later store them uncompressed)\n"
                 "  -l, --snapshot NAME       qcow2 IN: convert its internal snapshot NAME\n"
                 "                            (name or id) instead of its current state\n"
                 "  -h, --help                show this help\n"
                 "\n"
                 "Exit status: 0 converted, 1 host error, 2 bad arguments.\n");
}

static const struct option convert_opts[] = {
    {"help", no_argument, NULL, 'h'},
    {"output-format", required_argument, NULL, 'O'},
    {"compress", no_argument, NULL, 'c'},
    {"snapshot", required_argument, NULL, 'l'},
    {NULL, 0, NULL, 0},
};

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

int disk_convert_image(const char *in, const char *snap, const char *outp, bool to_qcow2,
                       bool compress, uint64_t *size_out, char *err, size_t errlen)
{
    struct qcow2 *src, *dst = NULL;
    /* The input's format is probed (qcow2 magic, else raw), as blk_open does. */
    /* A snapshot's clusters are never written while it exists: it can be read from an image
     * a running VM holds (its lock is exclusive). */
    int r = qcow2_open(&src, in, QCOW2_RDONLY | (snap ? QCOW2_NOLOCK : 0), false, err, errlen);
    if (r == -EINVAL && strstr(err, "not a qcow2 image") && !snap)
        r = qcow2_open(&src, in, QCOW2_RDONLY, true, err, errlen);
    if (r < 0) return r;
    if (snap && (r = qcow2_snapshot_view(src, snap, err, errlen)) < 0) {
        qcow2_close(src);
        return r == -ENOTSUP ? -EINVAL : r;
    }
    uint64_t size = qcow2_size(src);
    if (!size || size % 512) {
        snprintf(err, errlen, "%s: size %llu is not a non-zero multiple of 512", in,
                 (unsigned long long)size);
        qcow2_close(src);
        return -EINVAL;
    }
    r = to_qcow2 ? qcow2_create(outp, size, 16, NULL, NULL, err, errlen)
                 : blk_create_raw(outp, size, err, errlen);
    if (r < 0) {
        qcow2_close(src);
        return r;
    }
    int ofd = -1;
    if (to_qcow2)
        r = qcow2_open(&dst, outp, 0, false, err, errlen);
    else if ((ofd = open(outp, O_WRONLY | O_CLOEXEC)) < 0)
        r = -errno, snprintf(err, errlen, "%s: %s", outp, strerror(errno));
    enum { CHUNK = 1 << 20, GRAIN = 64 << 10 };
    uint8_t *buf = r ? NULL : malloc(CHUNK);
    if (!r && !buf) r = -ENOMEM, snprintf(err, errlen, "out of memory");
    for (uint64_t off = 0; !r && off < size; off += CHUNK) {
        size_t n = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
        struct iovec v = {buf, n};
        if ((r = qcow2_readv(src, off, &v, 1, n))) {
            snprintf(err, errlen, "reading %s at %llu: %s", in, (unsigned long long)off,
                     strerror(-r));
            break;
        }
        /* Zero grains stay holes / unallocated clusters. */
        for (size_t g = 0; !r && g < n; g += GRAIN) {
            size_t gl = n - g < GRAIN ? n - g : GRAIN;
            if (all_zero(buf + g, gl)) continue;
            struct iovec w = {buf + g, gl};
            if (compress) {
                /* whole clusters (GRAIN is the cluster size): the last one padded */
                static uint8_t cl[GRAIN];
                memcpy(cl, buf + g, gl);
                memset(cl + gl, 0, GRAIN - gl);
                r = qcow2_write_compressed(dst, off + g, cl);
            } else if (to_qcow2)
                r = qcow2_writev(dst, off + g, &w, 1, gl);
            else if (pwrite(ofd, buf + g, gl, (off_t)(off + g)) != (ssize_t)gl)
                r = -EIO;
            if (r) snprintf(err, errlen, "writing %s: %s", outp, strerror(-r));
        }
    }
    free(buf);
    if (!r && to_qcow2 && (r = qcow2_flush(dst)))
        snprintf(err, errlen, "writing %s: %s", outp, strerror(-r));
    if (!r && ofd >= 0 && fsync(ofd) < 0)
        r = -errno, snprintf(err, errlen, "writing %s: %s", outp, strerror(errno));
    if (dst) qcow2_close(dst);
    if (ofd >= 0) close(ofd);
    qcow2_close(src);
    if (r) {
        unlink(outp);                   /* ours: created above */
        return r == -EINVAL ? -EIO : r; /* never a usage error here */
    }
    if (size_out) *size_out = size;
    return 0;
}

static int disk_convert(int argc, char **argv)
{
    const char *fmt = NULL, *snap = NULL;
    bool compress = false;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":hcO:l:", convert_opts, NULL)) != -1) {
        if (c == 'l') {
            snap = optarg;
            continue;
        }
        if (c == 'c') {
            compress = true;
            continue;
        }
        if (c == 'h') {
            convert_usage(stdout);
            return 0;
        }
        if (c == 'O') {
            fmt = optarg;
            continue;
        }
        return bad_option(argv);
    }
    if (!fmt || (strcmp(fmt, "raw") && strcmp(fmt, "qcow2"))) {
        fprintf(stderr, "vessel disk convert: -O raw or -O qcow2 is needed\n");
        return EXIT_ARGS;
    }
    if (argc - optind != 2) {
        fprintf(stderr, "vessel disk convert: expected IN and OUT (see vessel disk convert "
                        "--help)\n");
        return EXIT_ARGS;
    }
    const char *in = argv[optind], *outp = argv[optind + 1];
    bool to_qcow2 = !strcmp(fmt, "qcow2");
    if (compress && !to_qcow2) {
        fprintf(stderr, "vessel disk convert: -c needs -O qcow2\n");
        return EXIT_ARGS;
    }
    char err[1024];
    uint64_t size = 0;
    int r = disk_convert_image(in, snap, outp, to_qcow2, compress, &size, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "vessel disk convert: %s\n", err);
        return exit_for(r);
    }
    char sz[32];
    size_human(size, sz, sizeof(sz));
    printf("converted %s to %s: %s image, %s\n", in, outp, fmt, sz);
    return 0;
}

static void snapshot_usage(FILE *out)
{
    fprintf(out, "Usage: vessel disk snapshot FILE list|create|apply|delete [NAME]\n"
                 "A qcow2 image's internal snapshots (disk state only), as qemu-img snapshot\n"
                 "sees them: vessel lists QEMU's snapshots and QEMU lists vessel's.\n"
                 "  list            ID, name, date and VM state size of each snapshot\n"
                 "  create NAME     the image's current state, kept under NAME\n"
                 "  apply NAME      the image goes back to NAME's state (NAME stays)\n"
                 "  delete NAME     NAME is gone and the clusters only it used are freed\n"
                 "NAME may also be a snapshot's ID. The image must not be in use.\n"
                 "\n"
                 "  -h, --help   show this help\n"
                 "\n"
                 "Exit status: 0 done, 1 host error, 2 bad arguments or no such snapshot.\n");
}

static int disk_snapshot(int argc, char **argv)
{
    int r = parse_args(argc, argv, -1, "", snapshot_usage);
    if (r >= 0) return r;
    int n = argc - optind;
    const char *path = n >= 1 ? argv[optind] : NULL, *cmd = n >= 2 ? argv[optind + 1] : NULL;
    bool list = cmd && !strcmp(cmd, "list");
    bool known =
        cmd && (list || !strcmp(cmd, "create") || !strcmp(cmd, "apply") || !strcmp(cmd, "delete"));
    if (!known || n != (list ? 2 : 3)) {
        fprintf(stderr, "vessel disk snapshot: expected FILE list, or FILE create|apply|delete "
                        "NAME (see vessel disk snapshot --help)\n");
        return EXIT_ARGS;
    }
    char err[1024];
    struct qcow2 *q;
    r = qcow2_open(&q, path, list ? QCOW2_RDONLY : 0, false, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "vessel disk snapshot: %s\n", err);
        return r == -EBUSY || r == -EIO || r == -ENOMEM ? EXIT_HOST : EXIT_ARGS;
    }
    const char *name = list ? NULL : argv[optind + 2];
    if (list) {
        unsigned k = qcow2_snapshot_count(q);
        if (k) printf("%-6s %-24s %-19s %10s\n", "ID", "NAME", "DATE", "VM STATE");
        for (unsigned i = 0; i < k; i++) {
            struct qcow2_snapshot_info s;
            qcow2_snapshot_get(q, i, &s);
            char date[32] = "";
            time_t t = (time_t)s.date_sec;
            struct tm tm;
            if (gmtime_r(&t, &tm)) strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
            char vs[32];
            size_human(s.vm_state_size, vs, sizeof(vs));
            printf("%-6s %-24s %-19s %10s\n", s.id, s.name, date, vs);
        }
        if (!k) printf("%s has no snapshots\n", path);
    } else if (!strcmp(cmd, "create")) {
        r = qcow2_snapshot_create(q, name, err, sizeof(err));
    } else if (!strcmp(cmd, "apply")) {
        r = qcow2_snapshot_apply(q, name, err, sizeof(err));
    } else {
        r = qcow2_snapshot_delete(q, name, err, sizeof(err));
    }
    qcow2_close(q);
    if (r < 0) {
        fprintf(stderr, "vessel disk snapshot: %s\n", err);
        return r == -EIO || r == -ENOMEM || r == -ENOSPC ? EXIT_HOST : EXIT_ARGS;
    }
    if (!list) printf("%s: snapshot %s: %sd\n", path, name, cmd[0] == 'a' ? "applie" : cmd);
    return 0;
}

int cli_disk(int argc, char **argv)
{
    if (argc < 2) {
        disk_usage(stderr);
        return EXIT_ARGS;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        disk_usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "create")) return disk_create(argc - 1, argv + 1);
    if (!strcmp(cmd, "info")) return disk_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "check")) return disk_check(argc - 1, argv + 1);
    if (!strcmp(cmd, "convert")) return disk_convert(argc - 1, argv + 1);
    if (!strcmp(cmd, "snapshot")) return disk_snapshot(argc - 1, argv + 1);
    fprintf(stderr, "vessel disk: unknown command '%s' (see vessel disk --help)\n", cmd);
    return EXIT_ARGS;
}

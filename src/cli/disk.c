/* vessel disk: create and inspect raw disk images. */
#include "backend/block/block.h"
#include "cli/cli.h"
#include "util/size.h"
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_HOST 1
#define EXIT_ARGS 2

static void disk_usage(FILE *out)
{
    fprintf(out, "Usage: vessel disk COMMAND [ARGS]\n"
                 "Create and inspect raw disk images.\n"
                 "\n"
                 "Commands:\n"
                 "  create FILE SIZE   make a sparse raw image of SIZE bytes (e.g. 10G)\n"
                 "  info FILE          show an image's format and sizes, and whether a vessel\n"
                 "                     is using it\n"
                 "\n"
                 "'vessel disk COMMAND --help' describes a command.\n");
}

static void create_usage(FILE *out)
{
    fprintf(out, "Usage: vessel disk create FILE SIZE\n"
                 "Create FILE as a raw disk image of SIZE bytes. The file is sparse: it takes\n"
                 "space on the host only as the guest writes to it.\n"
                 "SIZE is a whole number with an optional unit K, M, G or T (powers of 1024),\n"
                 "e.g. 10G or 512M, and a multiple of 512 (the sector size).\n"
                 "An existing FILE is never overwritten.\n"
                 "\n"
                 "  -h, --help   show this help\n"
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
    if (argc - optind != npos) {
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

static int disk_create(int argc, char **argv)
{
    int r = parse_args(argc, argv, 2, "FILE and SIZE", create_usage);
    if (r >= 0) return r;
    const char *path = argv[optind], *size_s = argv[optind + 1];
    uint64_t size;
    r = size_parse(size_s, &size);
    if (r < 0) {
        fprintf(stderr, "vessel disk create: size %s: %s (use e.g. 10G, 512M or 4096)\n", size_s,
                r == -ERANGE ? "too large" : "not a size");
        return EXIT_ARGS;
    }
    if (size == 0 || size % 512) {
        fprintf(stderr,
                "vessel disk create: size %s: must be a non-zero multiple of 512 bytes "
                "(the sector size)\n",
                size_s);
        return EXIT_ARGS;
    }
    char err[512];
    r = blk_create_raw(path, size, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "vessel disk create: %s\n", err);
        return exit_for(r);
    }
    char sz[32];
    size_format(size, sz, sizeof(sz));
    printf("created %s: raw image, %s (sparse)\n", path, sz);
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

    uint64_t vsize = (uint64_t)st.st_size, alloc = (uint64_t)st.st_blocks * 512;
    char vs[32], as[32];
    size_human(vsize, vs, sizeof(vs));
    size_human(alloc, as, sizeof(as));
    printf("image:          %s\n", path);
    printf("format:         %s\n", qcow2 ? "qcow2 (vessel opens raw images only)" : "raw");
    printf("virtual size:   %s (%llu bytes)\n", vs, (unsigned long long)vsize);
    printf("allocated:      %s on the host (%llu bytes)\n", as, (unsigned long long)alloc);
    printf("in use:         %s\n", holder[0] ? holder : "no");
    if (vsize < 512)
        printf("warning:        smaller than one 512-byte sector: vessel will not open it\n");
    else if (vsize % 512)
        printf("warning:        not a multiple of 512 bytes: vessel will not open it\n");
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
    fprintf(stderr, "vessel disk: unknown command '%s' (see vessel disk --help)\n", cmd);
    return EXIT_ARGS;
}

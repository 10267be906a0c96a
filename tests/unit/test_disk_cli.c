/* `vessel disk create` and `vessel disk info`: output, exit status, and what lands on disk. */
#include "backend/block/block.h"
#include "cli/cli.h"
#include "test.h"
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct out {
    int status;
    char out[4096], err[4096];
};

static void slurp(FILE *f, char *buf, size_t len)
{
    rewind(f);
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = 0;
    fclose(f);
}

/* Run cli_disk(argv) with stdout and stderr captured. argv ends with NULL; argv[0] = "disk". */
static void run(struct out *o, ...)
{
    char *argv[16];
    int argc = 0;
    va_list ap;
    va_start(ap, o);
    char *a;
    while ((a = va_arg(ap, char *)) && argc < 15)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;

    FILE *fo = tmpfile(), *fe = tmpfile();
    if (!fo || !fe) {
        test_failures_in_current++;
        return;
    }
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    dup2(fileno(fo), 1);
    dup2(fileno(fe), 2);
    o->status = cli_disk(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    slurp(fo, o->out, sizeof(o->out));
    slurp(fe, o->err, sizeof(o->err));
}

static int lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void tmp_name(char *buf, size_t len, const char *tag)
{
    const char *dir = getenv("TMPDIR");
    static int seq;
    snprintf(buf, len, "%s/vessel-dcli-%ld-%d-%s", dir && *dir ? dir : "/tmp", (long)getpid(),
             seq++, tag);
}

static bool exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

TEST(disk_cli_help)
{
    struct out o;
    run(&o, "disk", "--help", NULL);
    CHECK_EQ(o.status, 0);
    CHECK(strstr(o.out, "Usage: vessel disk COMMAND"));
    CHECK(strstr(o.out, "create FILE SIZE"));
    CHECK(strstr(o.out, "info FILE"));
    CHECK_STR(o.err, "");

    run(&o, "disk", NULL);
    CHECK_EQ(o.status, 2);
    CHECK(strstr(o.err, "Usage: vessel disk"));
    CHECK_STR(o.out, "");

    run(&o, "disk", "frobnicate", NULL);
    CHECK_EQ(o.status, 2);
    CHECK_STR(o.err, "vessel disk: unknown command 'frobnicate' (see vessel disk --help)\n");

    run(&o, "disk", "create", "--help", NULL);
    CHECK_EQ(o.status, 0);
    CHECK(strstr(o.out, "Usage: vessel disk create FILE SIZE"));
    CHECK(strstr(o.out, "never overwritten"));

    /* --help anywhere wins, and creates nothing */
    char p[256];
    tmp_name(p, sizeof(p), "h");
    run(&o, "disk", "create", p, "1G", "-h", NULL);
    CHECK_EQ(o.status, 0);
    CHECK(!exists(p));

    run(&o, "disk", "info", "--help", NULL);
    CHECK_EQ(o.status, 0);
    CHECK(strstr(o.out, "Usage: vessel disk info FILE"));
}

TEST(disk_cli_create)
{
    struct out o;
    char p[256];
    tmp_name(p, sizeof(p), "c.img");
    run(&o, "disk", "create", p, "10G", NULL);
    CHECK_EQ(o.status, 0);
    char want[400];
    snprintf(want, sizeof(want), "created %s: raw image, 10G (sparse)\n", p);
    CHECK_STR(o.out, want);
    CHECK_STR(o.err, "");
    struct stat st;
    CHECK(stat(p, &st) == 0 && st.st_size == (off_t)(10ull << 30) && st.st_blocks < 64);
    mode_t um = umask(0);
    umask(um);
    CHECK((st.st_mode & 0777) == (0644 & ~um));

    /* existing file: refused, untouched */
    int fd = open(p, O_WRONLY | O_CLOEXEC);
    CHECK(fd >= 0 && pwrite(fd, "keep", 4, 0) == 4);
    if (fd >= 0) close(fd);
    run(&o, "disk", "create", p, "1M", NULL);
    CHECK_EQ(o.status, 2);
    CHECK(strstr(o.err, "already exists"));
    CHECK_EQ(lines(o.err), 1);
    CHECK_STR(o.out, "");
    char keep[5] = "";
    fd = open(p, O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0 && pread(fd, keep, 4, 0) == 4 && !strcmp(keep, "keep"));
    CHECK(fstat(fd, &st) == 0 && st.st_size == (off_t)(10ull << 30));
    if (fd >= 0) close(fd);
    unlink(p);

    /* the smallest image: one sector, in plain bytes */
    run(&o, "disk", "create", p, "512", NULL);
    CHECK_EQ(o.status, 0);
    CHECK(stat(p, &st) == 0 && st.st_size == 512);
    unlink(p);
}

TEST(disk_cli_create_bad_input)
{
    struct out o;
    char p[256];
    tmp_name(p, sizeof(p), "bad.img");
    static const struct {
        const char *size, *msg;
    } bad[] = {
        {"", "not a size"},          {"abc", "not a size"},      {"-1G", "unknown option -1"},
        {"1.5G", "not a size"},      {"12Q", "not a size"},      {"0", "multiple of 512"},
        {"1000", "multiple of 512"}, {"513", "multiple of 512"}, {"99999999999T", "too large"},
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        run(&o, "disk", "create", p, bad[i].size, NULL);
        CHECK_EQ(o.status, 2);
        if (!strstr(o.err, bad[i].msg)) fprintf(stderr, "  size \"%s\": %s", bad[i].size, o.err);
        CHECK(strstr(o.err, bad[i].msg));
        CHECK_EQ(lines(o.err), 1);
        CHECK_STR(o.out, "");
        CHECK(!exists(p));
    }
    /* bigger than the filesystem allows in one file (ext4: 16T): nothing left behind */
    run(&o, "disk", "create", p, "1048576T", NULL);
    if (o.status == 0) {
        fprintf(stderr, "  note: this filesystem allows 1 EiB files\n");
        unlink(p);
    } else {
        CHECK_EQ(o.status, 2);
        CHECK(strstr(o.err, "more than this filesystem allows"));
        CHECK_EQ(lines(o.err), 1);
        CHECK(!exists(p));
    }

    run(&o, "disk", "create", p, NULL);
    CHECK_EQ(o.status, 2);
    CHECK_STR(o.err,
              "vessel disk create: expected FILE and SIZE (see vessel disk create --help)\n");
    run(&o, "disk", "create", p, "1G", "extra", NULL);
    CHECK_EQ(o.status, 2);
    CHECK(strstr(o.err, "expected FILE and SIZE"));
    run(&o, "disk", "create", "--sparse", p, "1G", NULL);
    CHECK_EQ(o.status, 2);
    CHECK(strstr(o.err, "unknown option --sparse"));
    run(&o, "disk", "create", "-x", p, "1G", NULL);
    CHECK_EQ(o.status, 2);
    CHECK(strstr(o.err, "unknown option -x"));
    CHECK(!exists(p));

    /* missing directory: the user's mistake (2); no permission would be the host's (1) */
    char nodir[300];
    snprintf(nodir, sizeof(nodir), "%s.d/x.img", p);
    run(&o, "disk", "create", nodir, "1M", NULL);
    CHECK_EQ(o.status, 2);
    CHECK(strstr(o.err, nodir));
    CHECK_EQ(lines(o.err), 1);
    if (geteuid() != 0) {
        run(&o, "disk", "create", "/proc/vessel-test.img", "1M", NULL);
        CHECK_EQ(o.status, 1);
    }
}

TEST(disk_cli_info)
{
    struct out o;
    char p[256];
    tmp_name(p, sizeof(p), "i.img");
    run(&o, "disk", "create", p, "2G", NULL);
    CHECK_EQ(o.status, 0);
    int fd = open(p, O_WRONLY | O_CLOEXEC);
    static char data[1 << 20];
    memset(data, 0x5a, sizeof(data));
    CHECK(fd >= 0 && pwrite(fd, data, sizeof(data), 4096) == (ssize_t)sizeof(data));
    CHECK(fd >= 0 && fsync(fd) == 0);
    struct stat st;
    CHECK(fstat(fd, &st) == 0);
    if (fd >= 0) close(fd);

    run(&o, "disk", "info", p, NULL);
    CHECK_EQ(o.status, 0);
    CHECK_STR(o.err, "");
    char want[512];
    snprintf(want, sizeof(want), "image:          %s\n", p);
    CHECK(strstr(o.out, want));
    CHECK(strstr(o.out, "format:         raw\n"));
    CHECK(strstr(o.out, "virtual size:   2G (2147483648 bytes)\n"));
    snprintf(want, sizeof(want), "(%llu bytes)\n", (unsigned long long)st.st_blocks * 512);
    CHECK(strstr(o.out, want));
    CHECK((unsigned long long)st.st_blocks * 512 >= sizeof(data));
    CHECK(strstr(o.out, "in use:         no\n"));

    /* held by another process, as a running vessel would */
    int up[2], down[2];
    CHECK(pipe(up) == 0 && pipe(down) == 0);
    for (int ro = 0; ro < 2; ro++) {
        pid_t pid = fork();
        if (pid == 0) {
            struct blk_backend *b;
            char e[256];
            struct blk_open_opts opts = {.readonly = ro};
            char ok = blk_open(&b, p, &opts, e, sizeof(e)) == 0 ? 'y' : 'n';
            char c;
            if (write(up[1], &ok, 1) != 1 || read(down[0], &c, 1) < 0) _exit(1);
            _exit(0);
        }
        char ok = 0;
        CHECK(pid > 0 && read(up[0], &ok, 1) == 1 && ok == 'y');
        run(&o, "disk", "info", p, NULL);
        CHECK_EQ(o.status, 0);
        snprintf(want, sizeof(want), "in use:         %s by process %ld",
                 ro ? "read-only" : "read-write", (long)pid);
        CHECK(strstr(o.out, want));
        CHECK(write(down[1], "x", 1) == 1);
        int wst;
        CHECK(waitpid(pid, &wst, 0) == pid);
    }
    close(up[0]);
    close(up[1]);
    close(down[0]);
    close(down[1]);
    unlink(p);
}

TEST(disk_cli_info_bad_input)
{
    struct out o;
    char p[256];
    tmp_name(p, sizeof(p), "missing.img");
    run(&o, "disk", "info", p, NULL);
    CHECK_EQ(o.status, 2);
    CHECK(strstr(o.err, p) && strstr(o.err, "No such file"));
    CHECK_EQ(lines(o.err), 1);
    CHECK_STR(o.out, "");

    run(&o, "disk", "info", NULL);
    CHECK_EQ(o.status, 2);
    CHECK_STR(o.err, "vessel disk info: expected FILE (see vessel disk info --help)\n");

    tmp_name(p, sizeof(p), "dir");
    CHECK(mkdir(p, 0755) == 0);
    run(&o, "disk", "info", p, NULL);
    CHECK_EQ(o.status, 2);
    CHECK(strstr(o.err, "is a directory, not a disk image"));
    CHECK_EQ(lines(o.err), 1);
    rmdir(p);

    tmp_name(p, sizeof(p), "fifo");
    CHECK(mkfifo(p, 0644) == 0);
    run(&o, "disk", "info", p, NULL); /* must not wait for a writer */
    CHECK_EQ(o.status, 2);
    CHECK(strstr(o.err, "not a regular file"));
    unlink(p);

    /* odd sizes are shown, with a warning that vessel will not open them */
    tmp_name(p, sizeof(p), "odd.img");
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    CHECK(fd >= 0 && ftruncate(fd, 1000) == 0);
    if (fd >= 0) close(fd);
    run(&o, "disk", "info", p, NULL);
    CHECK_EQ(o.status, 0);
    CHECK(strstr(o.out, "virtual size:   1000 (1000 bytes)"));
    CHECK(strstr(o.out, "not a multiple of 512"));
    unlink(p);

    /* a qcow2 magic with a broken header: not shown as raw, the header's fault named */
    fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    CHECK(fd >= 0 && write(fd, "QFI\xfb\0\0\0\3", 8) == 8 && ftruncate(fd, 65536) == 0);
    if (fd >= 0) close(fd);
    run(&o, "disk", "info", p, NULL);
    CHECK_EQ(o.status, 2);
    CHECK(strstr(o.err, "qcow2 cluster_bits 0 outside 9..21"));
    CHECK_EQ(lines(o.err), 1);
    unlink(p);
}

TEST(disk_cli_qcow2)
{
    struct out o;
    char q[256], b[256], r[256], r2[256], want[600];
    tmp_name(q, sizeof(q), "q.qcow2");
    tmp_name(b, sizeof(b), "base.img");
    tmp_name(r, sizeof(r), "conv.raw");
    tmp_name(r2, sizeof(r2), "conv.qcow2");
    /* a raw base with data, a qcow2 overlay on it, no SIZE: the base's */
    run(&o, "disk", "create", b, "4M", NULL);
    CHECK_EQ(o.status, 0);
    int fd = open(b, O_WRONLY | O_CLOEXEC);
    static char data[200000];
    memset(data, 0x42, sizeof(data));
    CHECK(fd >= 0 && pwrite(fd, data, sizeof(data), 100000) == (ssize_t)sizeof(data));
    if (fd >= 0) close(fd);
    run(&o, "disk", "create", "-f", "qcow2", q, "--backing", b, NULL);
    CHECK_EQ(o.status, 0);
    snprintf(want, sizeof(want), "created %s: qcow2 image, 4M, backing file %s\n", q, b);
    CHECK_STR(o.out, want);
    run(&o, "disk", "info", q, NULL);
    CHECK_EQ(o.status, 0);
    CHECK(strstr(o.out, "format:         qcow2 (version 3)\n"));
    CHECK(strstr(o.out, "virtual size:   4M (4194304 bytes)\n"));
    CHECK(strstr(o.out, "cluster size:   65536\n"));
    snprintf(want, sizeof(want), "backing chain:  %s (raw)\n", b);
    CHECK(strstr(o.out, want));
    CHECK(strstr(o.out, "dirty:          no\n"));
    run(&o, "disk", "check", q, NULL);
    CHECK_EQ(o.status, 0);
    CHECK(strstr(o.out, "0 leaked clusters, 0 errors"));
    /* convert flattens the chain: the raw copy holds the base's data */
    run(&o, "disk", "convert", "-O", "raw", q, r, NULL);
    CHECK_EQ(o.status, 0);
    static char back[200000];
    fd = open(r, O_RDONLY | O_CLOEXEC);
    struct stat st;
    CHECK(fd >= 0 && pread(fd, back, sizeof(back), 100000) == (ssize_t)sizeof(back));
    CHECK(!memcmp(back, data, sizeof(data)));
    CHECK(fd >= 0 && fstat(fd, &st) == 0 && st.st_size == 4 << 20 &&
          st.st_blocks * 512 < (1 << 20)); /* sparse */
    if (fd >= 0) close(fd);
    /* and back to qcow2, which reads the same */
    run(&o, "disk", "convert", "-O", "qcow2", r, r2, NULL);
    CHECK_EQ(o.status, 0);
    run(&o, "disk", "check", r2, NULL);
    CHECK_EQ(o.status, 0);
    unlink(r);
    run(&o, "disk", "convert", "-O", "raw", r2, r, NULL);
    CHECK_EQ(o.status, 0);
    fd = open(r, O_RDONLY | O_CLOEXEC);
    memset(back, 0, sizeof(back));
    CHECK(fd >= 0 && pread(fd, back, sizeof(back), 100000) == (ssize_t)sizeof(back));
    CHECK(!memcmp(back, data, sizeof(data)));
    if (fd >= 0) close(fd);
    /* compressed: the patterned data takes a fraction of its size, and reads the same */
    char z[256], zr[256];
    tmp_name(z, sizeof(z), "z.qcow2");
    tmp_name(zr, sizeof(zr), "z.raw");
    run(&o, "disk", "convert", "-c", "-O", "qcow2", r, z, NULL);
    CHECK_EQ(o.status, 0);
    struct stat plain;
    CHECK(stat(r2, &plain) == 0 && stat(z, &st) == 0);
    CHECK(st.st_size + 3 * 65536 <= plain.st_size); /* 4 data clusters became 1 */
    run(&o, "disk", "convert", "-O", "raw", z, zr, NULL);
    CHECK_EQ(o.status, 0);
    fd = open(zr, O_RDONLY | O_CLOEXEC);
    memset(back, 0, sizeof(back));
    CHECK(fd >= 0 && pread(fd, back, sizeof(back), 100000) == (ssize_t)sizeof(back));
    CHECK(!memcmp(back, data, sizeof(data)));
    if (fd >= 0) close(fd);
    run(&o, "disk", "check", z, NULL);
    CHECK_EQ(o.status, 0);
    unlink(z);
    unlink(zr);
    run(&o, "disk", "convert", "-c", "-O", "raw", r, z, NULL);
    CHECK_EQ(o.status, 2);
    CHECK(strstr(o.err, "-c needs -O qcow2"));
    /* bad arguments */
    run(&o, "disk", "create", "-f", "vmdk", "x", "1M", NULL);
    CHECK_EQ(o.status, 2);
    CHECK(strstr(o.err, "raw or qcow2"));
    run(&o, "disk", "create", "--backing", b, "x", "1M", NULL);
    CHECK_EQ(o.status, 2);
    CHECK(strstr(o.err, "needs -f qcow2"));
    run(&o, "disk", "convert", q, "x", NULL);
    CHECK_EQ(o.status, 2);
    CHECK(strstr(o.err, "-O raw or -O qcow2"));
    run(&o, "disk", "convert", "-O", "raw", q, r, NULL); /* exists */
    CHECK_EQ(o.status, 2);
    CHECK(strstr(o.err, "already exists"));
    run(&o, "disk", "check", b, NULL);
    CHECK_EQ(o.status, 2);
    CHECK(strstr(o.err, "raw image"));
    /* a missing backing file */
    unlink(b);
    run(&o, "disk", "info", q, NULL);
    CHECK_EQ(o.status, 2);
    CHECK(strstr(o.err, "backing file") && strstr(o.err, "No such file"));
    CHECK_EQ(lines(o.err), 1);
    unlink(q);
    unlink(r);
    unlink(r2);
}

TEST(disk_cli_snapshot)
{
    struct out o;
    char q[256];
    tmp_name(q, sizeof(q), "s.qcow2");
    run(&o, "disk", "create", "-f", "qcow2", q, "1M", NULL);
    CHECK_EQ(o.status, 0);
    run(&o, "disk", "snapshot", q, "list", NULL);
    CHECK_EQ(o.status, 0);
    CHECK(strstr(o.out, "has no snapshots"));
    run(&o, "disk", "snapshot", q, "create", "base", NULL);
    CHECK_EQ(o.status, 0);
    CHECK(strstr(o.out, "snapshot base: created"));
    run(&o, "disk", "snapshot", q, "list", NULL);
    CHECK_EQ(o.status, 0);
    CHECK(strstr(o.out, "1      base "));
    run(&o, "disk", "snapshot", q, "create", "base", NULL);
    CHECK_EQ(o.status, 2);
    CHECK(strstr(o.err, "already has a snapshot base"));
    run(&o, "disk", "snapshot", q, "apply", "nope", NULL);
    CHECK_EQ(o.status, 2);
    CHECK(strstr(o.err, "has no snapshot nope"));
    CHECK_EQ(lines(o.err), 1);
    run(&o, "disk", "snapshot", q, "apply", "1", NULL);
    CHECK_EQ(o.status, 0);
    run(&o, "disk", "snapshot", q, "delete", "base", NULL);
    CHECK_EQ(o.status, 0);
    run(&o, "disk", "snapshot", q, "frob", "x", NULL);
    CHECK_EQ(o.status, 2);
    run(&o, "disk", "snapshot", q, "create", NULL);
    CHECK_EQ(o.status, 2);
    CHECK(strstr(o.err, "expected FILE list"));
    run(&o, "disk", "check", q, NULL);
    CHECK_EQ(o.status, 0);
    unlink(q);
}

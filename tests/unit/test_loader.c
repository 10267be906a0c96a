#include "test.h"
#include "machine/loader.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- loader_read_file ---- */

static char tmpdir[64];

static const char *tmp_setup(void)
{
    strcpy(tmpdir, "/tmp/vessel-test-loader-XXXXXX");
    if (!mkdtemp(tmpdir)) return NULL;
    return tmpdir;
}

static void tmp_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", tmpdir, name);
}

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = len ? fwrite(data, 1, len, f) : 0;
    fclose(f);
    return w == len ? 0 : -1;
}

static void tmp_cleanup(void)
{
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            tmp_path(p, sizeof(p), e->d_name);
            if (unlink(p) < 0) rmdir(p);
        }
        closedir(d);
    }
    rmdir(tmpdir);
}

TEST(loader_read_file_ok)
{
    if (!tmp_setup()) {
        CHECK(!"mkdtemp");
        return;
    }
    char p[256], err[LOADER_ERR_LEN] = "";
    tmp_path(p, sizeof(p), "initrd");
    CHECK_EQ(write_file(p, "hello world", 11), 0);
    uint8_t *data = NULL;
    size_t len = 0;
    CHECK_EQ(loader_read_file(p, "initrd", 11, &data, &len, err), 0);
    CHECK_EQ(len, 11);
    CHECK(data && memcmp(data, "hello world", 11) == 0);
    free(data);

    /* One byte over the cap. */
    data = (uint8_t *)1;
    CHECK_EQ(loader_read_file(p, "initrd", 10, &data, &len, err), -EFBIG);
    CHECK(data == NULL);
    char want[512];
    snprintf(want, sizeof(want), "initrd %s is too large (11 bytes, at most 10)", p);
    CHECK_STR(err, want);
    tmp_cleanup();
}

TEST(loader_read_file_errors)
{
    if (!tmp_setup()) {
        CHECK(!"mkdtemp");
        return;
    }
    char p[256], want[512], err[LOADER_ERR_LEN];
    uint8_t *data = NULL;
    size_t len = 99;

    tmp_path(p, sizeof(p), "nope");
    CHECK_EQ(loader_read_file(p, "kernel", 1 << 20, &data, &len, err), -ENOENT);
    snprintf(want, sizeof(want), "kernel %s: No such file or directory", p);
    CHECK_STR(err, want);
    CHECK(data == NULL);
    CHECK_EQ(len, 0);

    CHECK_EQ(loader_read_file(tmpdir, "firmware", 1 << 20, &data, &len, err), -EISDIR);
    snprintf(want, sizeof(want), "firmware %s is a directory", tmpdir);
    CHECK_STR(err, want);

    tmp_path(p, sizeof(p), "empty");
    CHECK_EQ(write_file(p, "", 0), 0);
    CHECK_EQ(loader_read_file(p, "initrd", 1 << 20, &data, &len, err), -EINVAL);
    snprintf(want, sizeof(want), "initrd %s is empty", p);
    CHECK_STR(err, want);

    tmp_path(p, sizeof(p), "nope/deeper");
    CHECK(loader_read_file(p, "kernel", 1 << 20, &data, &len, err) < 0);
    CHECK(strstr(err, "kernel ") == err && strstr(err, p) != NULL);

    /* NULL err and NULL what are tolerated. */
    CHECK_EQ(loader_read_file(tmpdir, NULL, 1, &data, &len, NULL), -EISDIR);
    CHECK_EQ(loader_read_file(NULL, "kernel", 1, &data, &len, err), -EINVAL);
    tmp_cleanup();
}

/* A pipe has no size up front: the stream path must read it all and honour the cap. */
static int pipe_with(const void *buf, size_t n, char *path, size_t pathlen)
{
    int fds[2];
    if (pipe(fds) < 0) return -1;
    if (n && write(fds[1], buf, n) != (ssize_t)n) return -1;
    close(fds[1]);
    snprintf(path, pathlen, "/proc/self/fd/%d", fds[0]);
    return fds[0];
}

TEST(loader_read_file_stream)
{
    static uint8_t big[60000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7 + 3);
    char p[64], err[LOADER_ERR_LEN];
    uint8_t *data = NULL;
    size_t len = 0;

    int fd = pipe_with(big, sizeof(big), p, sizeof(p));
    CHECK(fd >= 0);
    CHECK_EQ(loader_read_file(p, "initrd", sizeof(big), &data, &len, err), 0);
    CHECK_EQ(len, sizeof(big));
    CHECK(data && memcmp(data, big, sizeof(big)) == 0);
    free(data);
    close(fd);

    fd = pipe_with(big, sizeof(big), p, sizeof(p));
    CHECK_EQ(loader_read_file(p, "initrd", sizeof(big) - 1, &data, &len, err), -EFBIG);
    CHECK(strstr(err, "is too large (more than 59999 bytes)") != NULL);
    close(fd);

    fd = pipe_with(big, 0, p, sizeof(p));
    CHECK_EQ(loader_read_file(p, "initrd", 100, &data, &len, err), -EINVAL);
    CHECK(strstr(err, "is empty") != NULL);
    close(fd);

    /* An endless character device stops at the cap. */
    CHECK_EQ(loader_read_file("/dev/zero", "kernel", 300000, &data, &len, err), -EFBIG);
    CHECK_STR(err, "kernel /dev/zero is too large (more than 300000 bytes)");
    CHECK_EQ(loader_read_file("/dev/null", "kernel", 300000, &data, &len, err), -EINVAL);
    CHECK_STR(err, "kernel /dev/null is empty");
}

/* ---- loader_parse_kernel ---- */

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A RISC-V Image header per Documentation/arch/riscv/boot-image-header.rst. */
static uint8_t *make_image(size_t len, uint64_t text_offset, uint64_t image_size, uint32_t version,
                           uint64_t flags, int magic_kind)
{
    uint8_t *d = calloc(1, len < 64 ? 64 : len);
    if (!d) return NULL;
    d[0] = 'M'; /* EFI stub: "MZ" doubles as c.li s4,-13 */
    d[1] = 'Z';
    put_le(d + 8, text_offset, 8);
    put_le(d + 16, image_size, 8);
    put_le(d + 24, flags, 8);
    put_le(d + 32, version, 4);
    if (magic_kind & 1) memcpy(d + 48, "RISCV\0\0\0", 8);
    if (magic_kind & 2) memcpy(d + 56, "RSC\x05", 4);
    put_le(d + 60, 0x40, 4);
    return d;
}

static int parse(const void *d, size_t len, struct kernel_info *ki, char *err)
{
    memset(ki, 0xa5, sizeof(*ki));
    err[0] = 0;
    return loader_parse_kernel(d, len, "/k", ki, err);
}

TEST(loader_parse_kernel_valid)
{
    struct kernel_info ki;
    char err[LOADER_ERR_LEN];
    /* Debian trixie's header values. */
    uint8_t *d = make_image(4096, 0x200000, 0x1e6c000, 0x2, 0, 3);
    CHECK_EQ(parse(d, 4096, &ki, err), 0);
    CHECK_EQ(ki.text_offset, 0x200000);
    CHECK_EQ(ki.image_size, 0x1e6c000);
    CHECK_EQ(ki.file_size, 4096);
    free(d);

    /* magic2 alone (the "RISCV" magic is deprecated and may disappear). */
    d = make_image(100, 0x200000, 0x10000, 0x2, 0, 2);
    CHECK_EQ(parse(d, 100, &ki, err), 0);
    CHECK_EQ(ki.image_size, 0x10000);
    free(d);

    /* Legacy magic, version 0.1, image_size 0: file size rounded up to 2 MiB. */
    d = make_image(3 << 20, 0x200000, 0, 0x1, 0, 1);
    CHECK_EQ(parse(d, 3 << 20, &ki, err), 0);
    CHECK_EQ(ki.image_size, 4 << 20);
    CHECK_EQ(ki.file_size, 3 << 20);
    CHECK_EQ(parse(d, 2 << 20, &ki, err), 0);
    CHECK_EQ(ki.image_size, 2 << 20);
    free(d);

    /* image_size exactly the file size is fine. */
    d = make_image(256, 0x200000, 256, 0x2, 0, 3);
    CHECK_EQ(parse(d, 256, &ki, err), 0);
    free(d);
}

TEST(loader_parse_kernel_bad_headers)
{
    struct kernel_info ki;
    char err[LOADER_ERR_LEN];
    uint8_t *d = make_image(4096, 0x200000, 4095, 0x2, 0, 3);
    CHECK_EQ(parse(d, 4096, &ki, err), -EINVAL);
    CHECK_STR(err, "kernel /k: header image_size 4095 is smaller than the file (4096 bytes): "
                   "corrupt or not a plain Image");
    free(d);

    d = make_image(4096, 0x200000, 0, 0x2, 0, 3);
    CHECK_EQ(parse(d, 4096, &ki, err), -EINVAL);
    CHECK(strstr(err, "image_size 0") != NULL);
    free(d);

    d = make_image(4096, 0x200000, 1 << 20, 0x2, 1, 3);
    CHECK_EQ(parse(d, 4096, &ki, err), -EINVAL);
    CHECK(strstr(err, "big-endian") != NULL);
    free(d);

    d = make_image(4096, 0x200000, UINT64_MAX, 0x2, 0, 3);
    CHECK_EQ(parse(d, 4096, &ki, err), -EINVAL);
    CHECK(strstr(err, "implausible") != NULL);
    free(d);
    d = make_image(4096, UINT64_MAX - 5, 1 << 20, 0x2, 0, 3);
    CHECK_EQ(parse(d, 4096, &ki, err), -EINVAL);
    free(d);

    /* No magic at all. */
    d = make_image(4096, 0x200000, 1 << 20, 0x2, 0, 0);
    CHECK_EQ(parse(d, 4096, &ki, err), -EINVAL);
    CHECK_STR(err, "kernel /k is not a RISC-V Linux kernel Image (no \"RSC\\x05\" magic at "
                   "offset 56)");
    free(d);

    /* Every truncation of a valid header is rejected without reading past the end. */
    d = make_image(64, 0x200000, 1 << 20, 0x2, 0, 3);
    for (size_t n = 0; n < 64; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, d, n);
        CHECK_EQ(parse(copy, n, &ki, err), -EINVAL);
        CHECK(err[0] != 0);
        free(copy);
    }
    free(d);
}

TEST(loader_parse_kernel_other_formats)
{
    struct kernel_info ki;
    char err[LOADER_ERR_LEN];
    static uint8_t b[1024];

    CHECK_EQ(parse(b, 0, &ki, err), -EINVAL);
    CHECK_STR(err, "kernel /k is empty");
    CHECK_EQ(loader_parse_kernel(NULL, 0, "/k", &ki, err), -EINVAL);
    CHECK_EQ(loader_parse_kernel(b, 10, "/k", NULL, err), -EINVAL);

    memset(b, 0, sizeof(b));
    memcpy(b, "\x1f\x8b\x08", 3);
    CHECK_EQ(parse(b, sizeof(b), &ki, err), -EINVAL);
    CHECK(strstr(err, "kernel /k is gzip-compressed") == err);
    CHECK_EQ(parse(b, 2, &ki, err), -EINVAL);
    CHECK(strstr(err, "gzip") != NULL);

    memcpy(b,
           "\xfd"
           "7zXZ\0",
           6);
    CHECK_EQ(parse(b, sizeof(b), &ki, err), -EINVAL);
    CHECK(strstr(err, "xz-compressed") != NULL);
    memcpy(b, "\x28\xb5\x2f\xfd", 4);
    CHECK_EQ(parse(b, sizeof(b), &ki, err), -EINVAL);
    CHECK(strstr(err, "zstd-compressed") != NULL);

    /* EFI zboot (drivers/firmware/efi/libstub/zboot-header.S). */
    memset(b, 0, sizeof(b));
    memcpy(b, "MZ\0\0zimg", 8);
    memcpy(b + 24, "zstd22", 7);
    CHECK_EQ(parse(b, sizeof(b), &ki, err), -EINVAL);
    CHECK(strstr(err, "EFI zboot image (zstd22-compressed payload)") != NULL);
    memset(b + 24, 'A', 32); /* unterminated type: bounded at 0x38 */
    CHECK_EQ(parse(b, sizeof(b), &ki, err), -EINVAL);
    CHECK(strstr(err, "EFI zboot image (AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-compressed") != NULL);
    b[24] = 0x01;
    CHECK_EQ(parse(b, sizeof(b), &ki, err), -EINVAL);
    CHECK(strstr(err, "(unknown-compressed") != NULL);
    CHECK_EQ(parse(b, 10, &ki, err), -EINVAL);
    CHECK(strstr(err, "(unknown-compressed") != NULL);

    /* ELF: riscv64 vmlinux is refused with a hint, others name their machine. */
    memset(b, 0, sizeof(b));
    memcpy(b,
           "\x7f"
           "ELF\x02\x01\x01",
           7);
    put_le(b + 18, 243, 2);
    CHECK_EQ(parse(b, sizeof(b), &ki, err), -EINVAL);
    CHECK(strstr(err, "RISC-V ELF file (vmlinux?)") != NULL);
    put_le(b + 18, 62, 2);
    CHECK_EQ(parse(b, sizeof(b), &ki, err), -EINVAL);
    CHECK(strstr(err, "ELF file for x86-64 (e_machine 62)") != NULL);
    b[5] = 2; /* big-endian ELF: s390 */
    b[18] = 0;
    b[19] = 22;
    CHECK_EQ(parse(b, sizeof(b), &ki, err), -EINVAL);
    CHECK(strstr(err, "ELF file for s390") != NULL);
    CHECK_EQ(parse(b, 8, &ki, err), -EINVAL); /* too short for e_machine */
    CHECK(strstr(err, "ELF file") != NULL);

    /* x86 bzImage: "HdrS" at 0x202, also when it carries an EFI stub ("MZ"). */
    memset(b, 0, sizeof(b));
    memcpy(b, "MZ", 2);
    memcpy(b + 0x202, "HdrS", 4);
    CHECK_EQ(parse(b, sizeof(b), &ki, err), -EINVAL);
    CHECK_STR(err, "kernel /k is an x86 Linux kernel (bzImage), not a RISC-V one");
    CHECK_EQ(parse(b, 0x205, &ki, err), -EINVAL); /* "HdrS" cut off */
    CHECK(strstr(err, "bzImage") == NULL);

    memset(b, 0, sizeof(b));
    memcpy(b + 56, "ARM\x64", 4);
    CHECK_EQ(parse(b, sizeof(b), &ki, err), -EINVAL);
    CHECK(strstr(err, "arm64 Linux kernel Image") != NULL);

    memset(b, 0, sizeof(b));
    memcpy(b, "\x27\x05\x19\x56", 4);
    CHECK_EQ(parse(b, sizeof(b), &ki, err), -EINVAL);
    CHECK(strstr(err, "U-Boot uImage") != NULL);

    /* PE without a Linux header; PE offset pointing outside the file. */
    memset(b, 0, sizeof(b));
    memcpy(b, "MZ", 2);
    put_le(b + 0x3c, 0x80, 4);
    memcpy(b + 0x80, "PE\0\0", 4);
    put_le(b + 0x84, 0xaa64, 2);
    CHECK_EQ(parse(b, sizeof(b), &ki, err), -EINVAL);
    CHECK(strstr(err, "PE/EFI executable for arm64 (machine 0xaa64)") != NULL);
    put_le(b + 0x3c, 0xfffffffe, 4);
    CHECK_EQ(parse(b, sizeof(b), &ki, err), -EINVAL);
    CHECK(strstr(err, "not a RISC-V Linux kernel Image") != NULL);
    put_le(b + 0x3c, sizeof(b) - 4, 4);
    memcpy(b + sizeof(b) - 4, "PE\0\0", 4);
    CHECK_EQ(parse(b, sizeof(b), &ki, err), -EINVAL);
    CHECK(strstr(err, "PE/EFI") == NULL);

    CHECK_EQ(parse("hello", 5, &ki, err), -EINVAL);
    CHECK_STR(err, "kernel /k is not a RISC-V Linux kernel Image (only 5 bytes)");
}

/* Real files on the host, when present. */
static void parse_real(const char *path, const char *want_sub, int want_rc)
{
    uint8_t *d = NULL;
    size_t len = 0;
    char err[LOADER_ERR_LEN] = "";
    if (access(path, R_OK) != 0) return;
    if (loader_read_file(path, "kernel", 512u << 20, &d, &len, err) != 0) {
        fprintf(stderr, "  %s: %s\n", path, err);
        test_failures_in_current++;
        return;
    }
    struct kernel_info ki;
    err[0] = 0;
    int r = loader_parse_kernel(d, len, path, &ki, err);
    CHECK_EQ(r, want_rc);
    if (want_sub && !strstr(err, want_sub)) {
        fprintf(stderr, "  %s: \"%s\" lacks \"%s\"\n", path, err, want_sub);
        test_failures_in_current++;
    }
    if (r == 0) {
        CHECK_EQ(ki.text_offset, 0x200000);
        CHECK(ki.image_size >= len);
        CHECK_EQ(ki.file_size, len);
    }
    free(d);
}

TEST(loader_parse_kernel_host_files)
{
    parse_real("/bin/sh", "ELF file for x86-64", -EINVAL);
    parse_real("/usr/riscv64-linux-gnu/lib/libc.so.6", "RISC-V ELF file", -EINVAL);
    DIR *dir = opendir("/boot");
    if (dir) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(dir))) {
            if (strncmp(e->d_name, "vmlinuz-", 8) == 0) {
                snprintf(p, sizeof(p), "/boot/%s", e->d_name);
                parse_real(p, "x86 Linux kernel (bzImage)", -EINVAL);
            }
        }
        closedir(dir);
    }
    const char *home = getenv("HOME");
    if (home) {
        char p[512];
        snprintf(p, sizeof(p), "%s/.cache/vessel/guest/default/Image", home);
        parse_real(p, NULL, 0);
    }
}

/* Reading boot images from the host and validating the kernel before it goes into guest RAM.
 * Everything here handles bytes from user-supplied files: bounds-check every header field. */
#include "machine/loader.h"
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIB (1024ull * 1024)

static void set_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(char *err, const char *fmt, ...)
{
    if (!err) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, LOADER_ERR_LEN, fmt, ap);
    va_end(ap);
}

/* Reads until EOF or len bytes; returns bytes read or -errno. */
static ssize_t read_full(int fd, uint8_t *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = read(fd, buf + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        if (n == 0) break;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

/* Pipes and character devices (e.g. --kernel <(zcat Image.gz)) have no size up front:
 * grow the buffer as data arrives, up to max_size. */
static int read_stream(int fd, const char *what, const char *path, size_t max_size, uint8_t **data,
                       size_t *len, char *err)
{
    size_t cap = 0, used = 0;
    uint8_t *buf = NULL;
    for (;;) {
        if (used == cap) {
            if (cap > max_size) {
                free(buf);
                set_err(err, "%s %s is too large (more than %zu bytes)", what, path, max_size);
                return -EFBIG;
            }
            /* Room for max_size + 1 bytes at most, so an over-long stream is detected. */
            size_t ncap = cap ? cap * 2 : 64 * 1024;
            if (ncap < cap || ncap > max_size)
                ncap = max_size == SIZE_MAX ? SIZE_MAX : max_size + 1;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                set_err(err, "%s %s: out of memory after %zu bytes", what, path, used);
                return -ENOMEM;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t n = read_full(fd, buf + used, cap - used);
        if (n < 0) {
            free(buf);
            set_err(err, "%s %s: %s", what, path, strerror((int)-n));
            return (int)n;
        }
        used += (size_t)n;
        if (used > max_size) {
            free(buf);
            set_err(err, "%s %s is too large (more than %zu bytes)", what, path, max_size);
            return -EFBIG;
        }
        if (used < cap) break; /* EOF */
    }
    if (used == 0) {
        free(buf);
        set_err(err, "%s %s is empty", what, path);
        return -EINVAL;
    }
    *data = buf;
    *len = used;
    return 0;
}

/* Reads the whole of fd (a regular file from its start, or a stream to its end). */
static int read_fd(int fd, const char *path, const char *what, size_t max_size, uint8_t **data,
                   size_t *len, char *err)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        set_err(err, "%s %s: %s", what, path, strerror(e));
        return -e;
    }
    if (S_ISDIR(st.st_mode)) {
        set_err(err, "%s %s is a directory", what, path);
        return -EISDIR;
    }
    if (!S_ISREG(st.st_mode)) return read_stream(fd, what, path, max_size, data, len, err);
    if (st.st_size == 0) {
        set_err(err, "%s %s is empty", what, path);
        return -EINVAL;
    }
    if ((uint64_t)st.st_size > max_size) {
        set_err(err, "%s %s is too large (%lld bytes, at most %zu)", what, path,
                (long long)st.st_size, max_size);
        return -EFBIG;
    }
    /* A file kept open across guest reboots (loader_file_open) is read again from its start. */
    if (lseek(fd, 0, SEEK_SET) < 0) {
        int e = errno;
        set_err(err, "%s %s: %s", what, path, strerror(e));
        return -e;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size);
    if (!buf) {
        set_err(err, "%s %s: out of memory for %zu bytes", what, path, size);
        return -ENOMEM;
    }
    ssize_t n = read_full(fd, buf, size);
    if (n < 0) {
        free(buf);
        set_err(err, "%s %s: %s", what, path, strerror((int)-n));
        return (int)n;
    }
    if (n == 0) { /* truncated between fstat and read */
        free(buf);
        set_err(err, "%s %s is empty", what, path);
        return -EINVAL;
    }
    *data = buf;
    *len = (size_t)n;
    return 0;
}

int loader_read_file(const char *path, const char *what, size_t max_size, uint8_t **data,
                     size_t *len, char err[LOADER_ERR_LEN])
{
    if (!what) what = "file";
    if (!path || !data || !len) {
        set_err(err, "%s: no path given", what);
        return -EINVAL;
    }
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        set_err(err, "%s %s: %s", what, path, strerror(e));
        return -e;
    }
    int r = read_fd(fd, path, what, max_size, data, len, err);
    close(fd);
    return r;
}

int loader_file_open(struct loader_file *f, const char *path, const char *what, size_t max_size,
                     char err[LOADER_ERR_LEN])
{
    *f = (struct loader_file){.fd = -1};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        set_err(err, "%s %s: %s", what, path, strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        f->fd = fd;
        return 0;
    }
    /* A pipe (--kernel <(zcat Image.gz)) can be read only once: keep its bytes. */
    int r = read_fd(fd, path, what, max_size, &f->data, &f->len, err);
    close(fd);
    return r;
}

int loader_file_read(const struct loader_file *f, const char *path, const char *what,
                     size_t max_size, uint8_t **data, size_t *len, char err[LOADER_ERR_LEN])
{
    *data = NULL;
    *len = 0;
    if (f->fd >= 0) return read_fd(f->fd, path, what, max_size, data, len, err);
    if (f->len > max_size) {
        set_err(err, "%s %s is too large (%zu bytes, at most %zu)", what, path, f->len, max_size);
        return -EFBIG;
    }
    uint8_t *buf = malloc(f->len);
    if (!buf) {
        set_err(err, "%s %s: out of memory for %zu bytes", what, path, f->len);
        return -ENOMEM;
    }
    memcpy(buf, f->data, f->len);
    *data = buf;
    *len = f->len;
    return 0;
}

void loader_file_close(struct loader_file *f)
{
    if (f->fd >= 0) close(f->fd);
    free(f->data);
    *f = (struct loader_file){.fd = -1};
}

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16;
}
static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}
static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static bool has_at(const uint8_t *d, size_t len, size_t off, const void *magic, size_t n)
{
    return off <= len && n <= len - off && memcmp(d + off, magic, n) == 0;
}

static const char *elf_machine_name(unsigned m)
{
    switch (m) {
    case 3: return "i386";
    case 8: return "MIPS";
    case 20: return "PowerPC";
    case 21: return "PowerPC64";
    case 22: return "s390";
    case 40: return "ARM";
    case 62: return "x86-64";
    case 183: return "AArch64";
    case 243: return "RISC-V";
    case 258: return "LoongArch";
    default: return "another machine";
    }
}

static const char *pe_machine_name(unsigned m)
{
    switch (m) {
    case 0x14c: return "i386";
    case 0x8664: return "x86-64";
    case 0x1c0:
    case 0x1c2:
    case 0x1c4: return "ARM";
    case 0xaa64: return "arm64";
    case 0x5032: return "riscv32";
    case 0x5064: return "riscv64";
    case 0x6264: return "LoongArch64";
    default: return "another machine";
    }
}

/* Compressed containers a user may hand us by mistake (magic numbers of each format). */
static const char *compression_name(const uint8_t *d, size_t len)
{
    if (has_at(d, len, 0, "\x1f\x8b", 2)) return "gzip";
    if (has_at(d, len, 0,
               "\xfd"
               "7zXZ\0",
               6))
        return "xz";
    if (has_at(d, len, 0, "\x28\xb5\x2f\xfd", 4)) return "zstd";
    if (has_at(d, len, 0, "BZh", 3)) return "bzip2";
    if (has_at(d, len, 0, "\x04\x22\x4d\x18", 4)) return "lz4";
    return NULL;
}

/* EFI zboot header (drivers/firmware/efi/libstub/zboot-header.S): "MZ", "zimg" at 4, payload
 * offset @8, size @12, NUL-terminated compression type @24 (the header's next field is @0x38). */
static void describe_zboot(const uint8_t *d, size_t len, char *comp, size_t complen)
{
    size_t i = 0;
    for (size_t off = 24; off < 0x38 && off < len && i + 1 < complen; off++, i++) {
        uint8_t c = d[off];
        if (c == 0) break;
        if (c < 0x21 || c > 0x7e) { /* not a plausible name: do not echo junk */
            i = 0;
            break;
        }
        comp[i] = (char)c;
    }
    if (i == 0)
        snprintf(comp, complen, "unknown");
    else
        comp[i] = 0;
}

/* RISC-V Image header (Documentation/arch/riscv/boot-image-header.rst). */
#define HDR_TEXT_OFFSET 8
#define HDR_IMAGE_SIZE  16
#define HDR_FLAGS       24
#define HDR_VERSION     32
#define HDR_MAGIC       48
#define HDR_MAGIC2      56
#define HDR_LEN         64
#define HDR_FLAG_BE     1ull
#define HDR_VERSION_0_2 0x00000002u
/* Nothing real comes close; a bound keeps later address arithmetic far from overflow. */
#define HDR_MAX_SIZE    (1ull << 40)

static int parse_riscv_image(const uint8_t *d, size_t len, const char *path, struct kernel_info *ki,
                             char *err)
{
    uint64_t text_offset = le64(d + HDR_TEXT_OFFSET);
    uint64_t image_size = le64(d + HDR_IMAGE_SIZE);
    uint64_t flags = le64(d + HDR_FLAGS);
    uint32_t version = le32(d + HDR_VERSION);
    if (flags & HDR_FLAG_BE) {
        set_err(err, "kernel %s is a big-endian RISC-V kernel; vessel runs little-endian guests",
                path);
        return -EINVAL;
    }
    if (image_size == 0) {
        /* Before header version 0.2 image_size could be 0: assume the file plus slack for
         * BSS, rounded up to the 2 MiB alignment the kernel is placed at. */
        if (version >= HDR_VERSION_0_2) {
            set_err(err,
                    "kernel %s has image_size 0 in its header (version %u.%u): corrupt "
                    "Image",
                    path, version >> 16, version & 0xffff);
            return -EINVAL;
        }
        image_size = ((uint64_t)len + 2 * MIB - 1) & ~(2 * MIB - 1);
    }
    if (image_size > HDR_MAX_SIZE || text_offset > HDR_MAX_SIZE) {
        set_err(err, "kernel %s has an implausible header (text_offset 0x%llx, image_size 0x%llx)",
                path, (unsigned long long)text_offset, (unsigned long long)image_size);
        return -EINVAL;
    }
    if (image_size < (uint64_t)len) {
        set_err(err,
                "kernel %s: header image_size %llu is smaller than the file (%zu bytes): corrupt "
                "or not a plain Image",
                path, (unsigned long long)image_size, len);
        return -EINVAL;
    }
    ki->text_offset = text_offset;
    ki->image_size = image_size;
    ki->file_size = len;
    return 0;
}

int loader_parse_kernel(const uint8_t *data, size_t len, const char *path, struct kernel_info *ki,
                        char err[LOADER_ERR_LEN])
{
    if (!path) path = "(unnamed)";
    if (!ki || (!data && len)) {
        set_err(err, "kernel %s: no data", path);
        return -EINVAL;
    }
    if (len == 0) {
        set_err(err, "kernel %s is empty", path);
        return -EINVAL;
    }
    const char *comp = compression_name(data, len);
    if (comp) {
        set_err(err,
                "kernel %s is %s-compressed; decompress it and pass the plain Image (e.g. "
                "arch/riscv/boot/Image)",
                path, comp);
        return -EINVAL;
    }
    if (has_at(data, len, 0,
               "\x7f"
               "ELF",
               4)) {
        unsigned m = 0;
        if (len >= 20) m = data[5] == 2 ? be16(data + 18) : le16(data + 18);
        if (m == 243)
            set_err(err,
                    "kernel %s is a RISC-V ELF file (vmlinux?); vessel boots the raw Image "
                    "(arch/riscv/boot/Image, Debian's /boot/vmlinux-*), not an ELF",
                    path);
        else
            set_err(err,
                    "kernel %s is an ELF file for %s (e_machine %u), not a RISC-V Linux "
                    "kernel Image",
                    path, elf_machine_name(m), m);
        return -EINVAL;
    }
    if (has_at(data, len, 0, "MZ", 2) && has_at(data, len, 4, "zimg", 4)) {
        char c[32];
        describe_zboot(data, len, c, sizeof(c));
        set_err(err,
                "kernel %s is an EFI zboot image (%s-compressed payload), which vessel cannot "
                "boot; use the uncompressed Image",
                path, c);
        return -EINVAL;
    }
    /* The RISC-V header: magic2 since version 0.2, the deprecated "RISCV" magic before. */
    if (len >= HDR_LEN && (has_at(data, len, HDR_MAGIC2, "RSC\x05", 4) ||
                           has_at(data, len, HDR_MAGIC, "RISCV\0\0\0", 8)))
        return parse_riscv_image(data, len, path, ki, err);

    if (has_at(data, len, 0x202, "HdrS", 4)) {
        set_err(err, "kernel %s is an x86 Linux kernel (bzImage), not a RISC-V one", path);
        return -EINVAL;
    }
    if (has_at(data, len, 56, "ARM\x64", 4)) {
        set_err(err, "kernel %s is an arm64 Linux kernel Image, not a RISC-V one", path);
        return -EINVAL;
    }
    if (has_at(data, len, 0, "\x27\x05\x19\x56", 4)) {
        set_err(err, "kernel %s is a U-Boot uImage; vessel needs the raw RISC-V Image", path);
        return -EINVAL;
    }
    if (has_at(data, len, 0, "MZ", 2) && len >= 0x40) {
        uint32_t pe = le32(data + 0x3c);
        if (has_at(data, len, pe, "PE\0\0", 4) && (size_t)pe + 6 <= len) {
            unsigned m = le16(data + pe + 4);
            set_err(err,
                    "kernel %s is a PE/EFI executable for %s (machine 0x%x) without a Linux "
                    "Image header, not a RISC-V Linux kernel Image",
                    path, pe_machine_name(m), m);
            return -EINVAL;
        }
    }
    if (len < HDR_LEN)
        set_err(err, "kernel %s is not a RISC-V Linux kernel Image (only %zu bytes)", path, len);
    else
        set_err(err,
                "kernel %s is not a RISC-V Linux kernel Image (no \"RSC\\x05\" magic at offset "
                "56)",
                path);
    return -EINVAL;
}

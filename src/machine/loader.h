/* Loading firmware, kernel and initrd images into guest RAM.
 * Errors are -errno plus a one-line human message in err (what is wrong, with which file). */
#ifndef VESSEL_MACHINE_LOADER_H
#define VESSEL_MACHINE_LOADER_H
#include <stddef.h>
#include <stdint.h>

#define LOADER_ERR_LEN 256

/* Reads a whole file into a malloc'd buffer (max_size cap). 0 or -errno with message. */
int loader_read_file(const char *path, const char *what, size_t max_size, uint8_t **data,
                     size_t *len, char err[LOADER_ERR_LEN]);

/* A boot image opened once, before the sandbox, and read again at every guest reboot without
 * opening its path: a regular file stays open (fd), a stream's bytes are kept (data, len). */
struct loader_file {
    int fd; /* -1: none */
    uint8_t *data;
    size_t len;
};
int loader_file_open(struct loader_file *f, const char *path, const char *what, size_t max_size,
                     char err[LOADER_ERR_LEN]);
/* Like loader_read_file, from f; path and what only name it in messages. */
int loader_file_read(const struct loader_file *f, const char *path, const char *what,
                     size_t max_size, uint8_t **data, size_t *len, char err[LOADER_ERR_LEN]);
void loader_file_close(struct loader_file *f);

struct kernel_info {
    uint64_t text_offset; /* from the Image header */
    uint64_t image_size;  /* bytes of RAM the kernel occupies, including BSS */
    size_t file_size;
};

/* Validate a RISC-V Linux kernel Image (Documentation/arch/riscv/boot-image-header.rst):
 * magic2 "RSC\x05" at 56 (or legacy "RISCV\0\0\0" magic at 48). Recognises and rejects with a
 * clear message: empty files, x86 bzImage ("HdrS" at 0x202), ELF files of another machine, gzip
 * or EFI zboot images it cannot use, anything else ("not a RISC-V Linux kernel Image"). A
 * riscv64 ELF vmlinux is not accepted either (say so). Returns 0 or -EINVAL. */
int loader_parse_kernel(const uint8_t *data, size_t len, const char *path, struct kernel_info *ki,
                        char err[LOADER_ERR_LEN]);
#endif

// SOURCES: src/machine/loader.c
/* loader_parse_kernel on arbitrary bytes (the kernel file is user-supplied): no crash, no
 * read past the end (ASan, the input is an exact-size copy), a NUL-terminated one-line message
 * on every rejection, and consistent results on acceptance. */
#include "machine/loader.h"
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) return 0;
    memcpy(copy, data, len);
    char err[LOADER_ERR_LEN];
    memset(err, 'X', sizeof(err));
    struct kernel_info ki;
    memset(&ki, 0, sizeof(ki));
    int r = loader_parse_kernel(copy, len, "/fuzz/Image", &ki, err);
    if (r == 0) {
        if (len < 64 || ki.file_size != len || ki.image_size < len) abort();
    } else {
        if (r != -EINVAL) abort();
        size_t n = strnlen(err, sizeof(err));
        if (n == 0 || n == sizeof(err) || strchr(err, '\n')) abort();
        if (strncmp(err, "kernel /fuzz/Image", 18) != 0) abort();
    }
    free(copy);
    return 0;
}

// SOURCES: src/util/size.c
/* size_parse on arbitrary strings: never crashes, and every accepted value survives a
 * size_format -> size_parse round trip. */
#include "util/size.h"
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char s[64];
    if (len >= sizeof(s)) len = sizeof(s) - 1;
    memcpy(s, data, len);
    s[len] = 0;

    uint64_t v = 0x5a5a;
    int r = size_parse(s, &v);
    if (r != 0 && r != -EINVAL && r != -ERANGE) abort();
    if (r != 0) {
        if (v != 0x5a5a) /* *out untouched on error */
            abort();
        return 0;
    }
    if (s[0] < '0' || s[0] > '9') /* only digits may start a size */
        abort();
    char buf[32];
    uint64_t back = 0;
    size_format(v, buf, sizeof(buf));
    if (size_parse(buf, &back) != 0 || back != v) abort();
    /* Oracle: the value is the digits (read by strtoull) shifted by one unit. */
    char *end;
    errno = 0;
    unsigned long long digits = strtoull(s, &end, 10);
    if (errno != 0) abort(); /* digits alone overflowed, yet size_parse accepted */
    bool match = false;
    for (int sh = 0; sh <= 40; sh += 10)
        if (digits <= (UINT64_MAX >> sh) && (digits << sh) == v) match = true;
    if (!match) abort();
    return 0;
}

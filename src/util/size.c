/* Sizes given by users: a decimal integer with an optional binary unit (see size.h). */
#include "util/size.h"
#include <errno.h>
#include <stdio.h>
#include <strings.h>

/* Shift for a unit letter, or -1. */
static int unit_shift(char c)
{
    switch (c) {
    case 'k':
    case 'K': return 10;
    case 'm':
    case 'M': return 20;
    case 'g':
    case 'G': return 30;
    case 't':
    case 'T': return 40;
    default: return -1;
    }
}

int size_parse(const char *s, uint64_t *out)
{
    if (!s || !out) return -EINVAL;
    /* Syntax first, so "99999999999999999999Q" is malformed rather than out of range. */
    const char *p = s;
    while (*p >= '0' && *p <= '9')
        p++;
    if (p == s) return -EINVAL; /* empty, sign, space, unit without number */
    const char *digits_end = p;
    int shift = 0;
    if (*p && unit_shift(*p) >= 0) {
        shift = unit_shift(*p++);
        /* "1G", "1GB", "1GiB" (case-insensitive): all powers of 1024. */
        if (*p && strcasecmp(p, "b") != 0 && strcasecmp(p, "ib") != 0) return -EINVAL;
    } else if (*p && strcasecmp(p, "b") != 0) {
        return -EINVAL; /* only a plain byte count may carry a bare "B" */
    }

    uint64_t v = 0;
    for (p = s; p < digits_end; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return -ERANGE;
        v = v * 10 + d;
    }
    if (shift && v > (UINT64_MAX >> shift)) return -ERANGE;
    *out = v << shift;
    return 0;
}

void size_format(uint64_t bytes, char *buf, unsigned buflen)
{
    static const char units[] = "KMGT";
    if (!buf || buflen == 0) return;
    int u = -1; /* index into units, -1 = bytes */
    if (bytes != 0) {
        while (u < 3 && (bytes & 1023) == 0) {
            bytes >>= 10;
            u++;
        }
    }
    if (u < 0)
        snprintf(buf, buflen, "%llu", (unsigned long long)bytes);
    else
        snprintf(buf, buflen, "%llu%c", (unsigned long long)bytes, units[u]);
}

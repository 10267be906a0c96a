/* One-line error messages for callers (DESIGN.md "Errors"): format into err, return code. */
#ifndef VESSEL_UTIL_ERR_H
#define VESSEL_UTIL_ERR_H
#include <stddef.h>

int err_set(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#endif

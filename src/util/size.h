/* Parsing sizes given by users: "64M", "1G", "512K", "4096", "1.5G"? (no: integers only),
 * suffixes K M G T (powers of 1024, case-insensitive, optional trailing "B" or "iB").
 * Rejects empty strings, negative numbers, unknown suffixes ("12Q"), garbage and overflow. */
#ifndef VESSEL_UTIL_SIZE_H
#define VESSEL_UTIL_SIZE_H
#include <stdint.h>

/* Returns 0 and *out, or -EINVAL (malformed) / -ERANGE (overflows 64 bits). */
int size_parse(const char *s, uint64_t *out);
/* Format bytes as "512M", "1G", "1536K": the largest unit that divides exactly. */
void size_format(uint64_t bytes, char *buf, unsigned buflen);
#endif

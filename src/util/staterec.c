/* State records (staterec.h).
 *
 * Layout, all integers little-endian:
 *   header:  "VESSELST" | u32 format version | u32 flags (0) | u64 length of the body
 *   body:    sections, each  u16 name length | name | u32 version | u32 length | fields
 *   fields:  each  u8 name length | name | u8 type (1 u64, 2 bytes) | u32 length | value
 *   trailer: u32 CRC-32 (zlib's) of header and body */
#include "util/staterec.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define HDR_LEN      24
#define T_U64        1
#define T_BYTES      2
#define MAX_SECTIONS 4096

struct sw {
    uint8_t *buf;
    size_t len, cap;
    size_t sec_len_at; /* offset of the current section's length field; 0: none open */
    int err;
    bool finished;
};

static void put(struct sw *w, const void *p, size_t n)
{
    if (w->err) return;
    if (w->len + n > STATEREC_MAX_RECORD) {
        w->err = -E2BIG;
        return;
    }
    if (w->len + n > w->cap) {
        size_t c = w->cap ? w->cap : 4096;
        while (c < w->len + n)
            c *= 2;
        uint8_t *b = realloc(w->buf, c);
        if (!b) {
            w->err = -ENOMEM;
            return;
        }
        w->buf = b;
        w->cap = c;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void put_le(struct sw *w, uint64_t v, unsigned n)
{
    uint8_t b[8];
    for (unsigned i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    put(w, b, n);
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static bool name_ok(const char *s, size_t n)
{
    if (n == 0 || n > STATEREC_MAX_NAME) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.'))
            return false;
    }
    return true;
}

struct sw *sw_new(void)
{
    struct sw *w = calloc(1, sizeof(*w));
    if (!w) return NULL;
    put(w, STATEREC_MAGIC, 8);
    put_le(w, STATEREC_VERSION, 4);
    put_le(w, 0, 4);
    put_le(w, 0, 8); /* body length, filled in by sw_finish */
    return w;
}

void sw_free(struct sw *w)
{
    if (!w) return;
    free(w->buf);
    free(w);
}

static void end_section(struct sw *w)
{
    if (!w->sec_len_at || w->err) return;
    size_t n = w->len - (w->sec_len_at + 4);
    if (n > STATEREC_MAX_SECTION) {
        w->err = -E2BIG;
        return;
    }
    for (unsigned i = 0; i < 4; i++)
        w->buf[w->sec_len_at + i] = (uint8_t)(n >> (8 * i));
    w->sec_len_at = 0;
}

void sw_section(struct sw *w, const char *name, uint32_t version)
{
    end_section(w);
    size_t n = strlen(name);
    if (!name_ok(name, n)) {
        if (!w->err) w->err = -EINVAL;
        return;
    }
    put_le(w, n, 2);
    put(w, name, n);
    put_le(w, version, 4);
    w->sec_len_at = w->len;
    put_le(w, 0, 4);
}

static void field(struct sw *w, const char *name, unsigned type, const void *p, size_t len)
{
    size_t n = strlen(name);
    if (!w->sec_len_at || !name_ok(name, n) || len > STATEREC_MAX_SECTION) {
        if (!w->err) w->err = len > STATEREC_MAX_SECTION ? -E2BIG : -EINVAL;
        return;
    }
    put_le(w, n, 1);
    put(w, name, n);
    put_le(w, type, 1);
    put_le(w, len, 4);
    put(w, p, len);
}

void sw_u64(struct sw *w, const char *name, uint64_t v)
{
    uint8_t b[8];
    for (unsigned i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    field(w, name, T_U64, b, 8);
}

void sw_bytes(struct sw *w, const char *name, const void *p, size_t len)
{
    field(w, name, T_BYTES, p, len);
}

int sw_finish(struct sw *w, const uint8_t **buf, size_t *len)
{
    if (!w->finished) {
        end_section(w);
        if (w->err) return w->err;
        uint64_t body = w->len - HDR_LEN;
        for (unsigned i = 0; i < 8; i++)
            w->buf[16 + i] = (uint8_t)(body >> (8 * i));
        uint32_t crc = (uint32_t)crc32(0L, w->buf, (uInt)w->len);
        put_le(w, crc, 4);
        if (w->err) return w->err;
        w->finished = true;
    }
    *buf = w->buf;
    *len = w->len;
    return 0;
}

/* ---- reading ---- */

void sr_fail(struct sr *r, const char *fmt, ...)
{
    if (r->failed) return;
    r->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof(r->err), fmt, ap);
    va_end(ap);
}

int sr_open(struct sr *r, const uint8_t *buf, size_t len)
{
    memset(r, 0, sizeof(*r));
    r->buf = buf;
    r->len = len;
    if (len < HDR_LEN + 4 || memcmp(buf, STATEREC_MAGIC, 8) != 0) {
        sr_fail(r, "not a vessel state file (no magic)");
        return -EINVAL;
    }
    uint32_t ver = (uint32_t)get_le(buf + 8, 4);
    if (ver != STATEREC_VERSION) {
        sr_fail(r, "state file format %u; this vessel reads format %u", ver, STATEREC_VERSION);
        return -EINVAL;
    }
    uint64_t body = get_le(buf + 16, 8);
    if (len > STATEREC_MAX_RECORD + HDR_LEN + 4 || body != len - HDR_LEN - 4) {
        sr_fail(r, "state file is truncated or has trailing data (%zu bytes, header says %llu)",
                len, (unsigned long long)(body + HDR_LEN + 4));
        return -EINVAL;
    }
    uint32_t crc = (uint32_t)crc32(0L, buf, (uInt)(len - 4));
    if (crc != (uint32_t)get_le(buf + len - 4, 4)) {
        sr_fail(r, "state file checksum mismatch (corrupted)");
        return -EINVAL;
    }
    /* index the sections; every length is checked against what is left */
    size_t off = HDR_LEN, end = len - 4;
    r->sections = calloc(MAX_SECTIONS, sizeof(*r->sections));
    if (!r->sections) {
        sr_fail(r, "out of memory");
        return -ENOMEM;
    }
    while (off < end) {
        if (r->nsections == MAX_SECTIONS) {
            sr_fail(r, "state file has more than %u sections", MAX_SECTIONS);
            goto bad;
        }
        if (end - off < 2) goto trunc;
        size_t nl = get_le(buf + off, 2);
        off += 2;
        if (end - off < nl + 8) goto trunc;
        if (!name_ok((const char *)buf + off, nl)) {
            sr_fail(r, "state file has a section with a bad name");
            goto bad;
        }
        struct sr_section *s = &r->sections[r->nsections];
        s->name = (const char *)buf + off;
        s->name_len = nl;
        off += nl;
        s->version = (uint32_t)get_le(buf + off, 4);
        size_t sl = get_le(buf + off + 4, 4);
        off += 8;
        if (sl > STATEREC_MAX_SECTION || end - off < sl) goto trunc;
        s->data = buf + off;
        s->len = sl;
        off += sl;
        for (unsigned i = 0; i < r->nsections; i++)
            if (r->sections[i].name_len == nl && memcmp(r->sections[i].name, s->name, nl) == 0) {
                sr_fail(r, "state file has section %.*s twice", (int)nl, s->name);
                goto bad;
            }
        /* the fields must tile the section exactly */
        size_t f = 0;
        while (f < sl) {
            if (sl - f < 1) goto trunc;
            size_t fl = s->data[f];
            if (sl - f < 1 + fl + 5 || !name_ok((const char *)s->data + f + 1, fl)) goto badfield;
            unsigned type = s->data[f + 1 + fl];
            size_t vl = get_le(s->data + f + 2 + fl, 4);
            if ((type != T_U64 && type != T_BYTES) || (type == T_U64 && vl != 8) ||
                sl - f - 6 - fl < vl)
                goto badfield;
            f += 6 + fl + vl;
        }
        r->nsections++;
    }
    return 0;
badfield:
    sr_fail(r, "state file section %.*s has a malformed field",
            (int)r->sections[r->nsections].name_len, r->sections[r->nsections].name);
    goto bad;
trunc:
    sr_fail(r, "state file is malformed (a length runs past the end)");
bad:
    free(r->sections);
    r->sections = NULL;
    r->nsections = 0;
    return -EINVAL;
}

void sr_close(struct sr *r)
{
    free(r->sections);
    r->sections = NULL;
    r->nsections = 0;
    r->cur = NULL;
}

static const struct sr_section *find_section(const struct sr *r, const char *name)
{
    size_t n = strlen(name);
    for (unsigned i = 0; i < r->nsections; i++)
        if (r->sections[i].name_len == n && memcmp(r->sections[i].name, name, n) == 0)
            return &r->sections[i];
    return NULL;
}

bool sr_has_section(const struct sr *r, const char *name)
{
    return find_section(r, name) != NULL;
}

uint32_t sr_enter(struct sr *r, const char *name, uint32_t max_version)
{
    r->cur = NULL;
    if (r->failed) return 0;
    const struct sr_section *s = find_section(r, name);
    if (!s) {
        sr_fail(r, "state file has no %s", name);
        return 0;
    }
    if (s->version == 0 || s->version > max_version) {
        sr_fail(r, "state of %s is version %u; this vessel reads up to %u", name, s->version,
                max_version);
        return 0;
    }
    r->cur = s;
    return s->version;
}

/* The field's value and length, or NULL if the current section has no such field. */
static const uint8_t *find_field(const struct sr *r, const char *name, unsigned *type, size_t *len)
{
    const struct sr_section *s = r->cur;
    if (!s) return NULL;
    size_t n = strlen(name), f = 0;
    while (f < s->len) { /* bounds checked by sr_open */
        size_t fl = s->data[f];
        unsigned t = s->data[f + 1 + fl];
        size_t vl = get_le(s->data + f + 2 + fl, 4);
        if (fl == n && memcmp(s->data + f + 1, name, n) == 0) {
            *type = t;
            *len = vl;
            return s->data + f + 6 + fl;
        }
        f += 6 + fl + vl;
    }
    return NULL;
}

static uint64_t read_u64(struct sr *r, const char *name, uint64_t max, bool optional, uint64_t def)
{
    if (r->failed) return 0;
    if (!r->cur) {
        sr_fail(r, "internal: no section entered");
        return 0;
    }
    unsigned t;
    size_t l;
    const uint8_t *p = find_field(r, name, &t, &l);
    if (!p && optional) return def;
    if (!p || t != T_U64) {
        sr_fail(r, "state of %.*s: %s is %s", (int)r->cur->name_len, r->cur->name, name,
                p ? "not a number" : "missing");
        return 0;
    }
    uint64_t v = get_le(p, 8);
    if (v > max) {
        sr_fail(r, "state of %.*s: %s = %llu is out of range (at most %llu)", (int)r->cur->name_len,
                r->cur->name, name, (unsigned long long)v, (unsigned long long)max);
        return 0;
    }
    return v;
}

uint64_t sr_u64(struct sr *r, const char *field, uint64_t max)
{
    return read_u64(r, field, max, false, 0);
}

uint64_t sr_u64_or(struct sr *r, const char *field, uint64_t max, uint64_t def)
{
    return read_u64(r, field, max, true, def);
}

void sr_bytes(struct sr *r, const char *field, void *p, size_t len)
{
    memset(p, 0, len);
    if (r->failed) return;
    if (!r->cur) {
        sr_fail(r, "internal: no section entered");
        return;
    }
    unsigned t;
    size_t l;
    const uint8_t *v = find_field(r, field, &t, &l);
    if (!v || t != T_BYTES || l != len) {
        sr_fail(r, "state of %.*s: %s is %s", (int)r->cur->name_len, r->cur->name, field,
                !v ? "missing" : "of the wrong type or size");
        return;
    }
    memcpy(p, v, len);
}

const uint8_t *sr_bytes_ref(struct sr *r, const char *field, size_t *len)
{
    *len = 0;
    if (r->failed) return NULL;
    if (!r->cur) {
        sr_fail(r, "internal: no section entered");
        return NULL;
    }
    unsigned t;
    size_t l;
    const uint8_t *v = find_field(r, field, &t, &l);
    if (!v || t != T_BYTES) {
        sr_fail(r, "state of %.*s: %s is %s", (int)r->cur->name_len, r->cur->name, field,
                !v ? "missing" : "not bytes");
        return NULL;
    }
    *len = l;
    return v;
}

/* Explicit, versioned state records: what a snapshot stores of each component (docs/snapshots.md).
 *
 * A record is a header, a sequence of sections and a CRC-32 over both. A section belongs to
 * one component instance ("hart.0", "plic", "virtio.3") and has a version of its own; it holds
 * named fields, each a u64 or a byte string. Components write their fields one by one (never a
 * raw struct) and read them back by name, so adding a field needs no new format, and a field a
 * reader does not know is ignored.
 *
 * A record read from a file is untrusted input. sr_open checks the magic, the format version,
 * the CRC, the bounds of every section and field, and the caps (section size, record size,
 * name length and charset), before any component sees a byte. Then each component checks its
 * values (ranges, consistency) before it applies any of them. Reads are sticky: the first
 * missing field, wrong type or out-of-range value records one message, later reads return 0,
 * and the component checks sr_failed() once before it applies what it read. */
#ifndef VESSEL_UTIL_STATEREC_H
#define VESSEL_UTIL_STATEREC_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATEREC_MAGIC       "VESSELST"
#define STATEREC_VERSION     1u
#define STATEREC_MAX_SECTION (4u << 20)  /* bytes of fields in one section */
#define STATEREC_MAX_RECORD  (64u << 20) /* bytes of one whole record */
#define STATEREC_MAX_NAME    48

/* ---- writing ---- */
struct sw;
struct sw *sw_new(void);
void sw_free(struct sw *w);
/* Start a section (ends the previous one). Names: 1..STATEREC_MAX_NAME of [a-z0-9_.]. */
void sw_section(struct sw *w, const char *name, uint32_t version);
void sw_u64(struct sw *w, const char *field, uint64_t v);
void sw_bytes(struct sw *w, const char *field, const void *p, size_t len);
/* The finished record (header, sections, CRC); valid until sw_free. 0, or -ENOMEM / -E2BIG
 * (over a cap) / -EINVAL (a bad name) if any write failed. */
int sw_finish(struct sw *w, const uint8_t **buf, size_t *len);

/* ---- reading ---- */
struct sr_section {
    const char *name; /* not NUL-terminated: name_len bytes */
    size_t name_len;
    uint32_t version;
    const uint8_t *data;
    size_t len;
};
struct sr {
    const uint8_t *buf;
    size_t len;
    unsigned nsections;
    struct sr_section *sections;
    const struct sr_section *cur; /* the section sr_enter chose */
    bool failed;
    char err[200];
};
/* Check a record and index its sections. 0, or -EINVAL with a one-line reason in r->err. The
 * buffer must stay valid while r is used. */
int sr_open(struct sr *r, const uint8_t *buf, size_t len);
void sr_close(struct sr *r);
/* Make `name` the current section; its version must be at most max_version. Returns the
 * version, or 0 (and fails r) if it is missing or newer. */
uint32_t sr_enter(struct sr *r, const char *name, uint32_t max_version);
bool sr_has_section(const struct sr *r, const char *name);
/* A u64 field of the current section, which must be <= max; 0 (and r fails) otherwise. */
uint64_t sr_u64(struct sr *r, const char *field, uint64_t max);
/* Like sr_u64, but a missing field gives def (fields added in later versions). */
uint64_t sr_u64_or(struct sr *r, const char *field, uint64_t max, uint64_t def);
/* A byte field of exactly len bytes into p (zeroed if it fails). */
void sr_bytes(struct sr *r, const char *field, void *p, size_t len);
/* A byte field of any length: a pointer into the record and its length, or NULL (r fails). */
const uint8_t *sr_bytes_ref(struct sr *r, const char *field, size_t *len);
/* Fail r with a message (a component's own check: a value out of range, inconsistent). */
void sr_fail(struct sr *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline bool sr_failed(const struct sr *r)
{
    return r->failed;
}
#endif

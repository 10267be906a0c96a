/* qcow2 images (QEMU's docs/interop/qcow2.txt, version 3; version 2 read-only).
 * The image layer here is synchronous: the virtio-blk backend (qcow2_open_backend) runs it on
 * a worker thread of its own (and qcow2_map_cached on the submitting thread while that worker
 * is idle, qcow2_blk.c), `vessel disk` calls it directly. One caller at a time per image.
 *
 * Consistency without a dirty bit: refcounts are kept exact on disk. A new cluster's refcount
 * is written before its data and before any table points at it; L2 tables and the L1 table
 * are written back at FLUSH (and when a dirty L2 table leaves the cache), each step behind an
 * fdatasync: data and refcounts, then L2 tables, then L1. Clusters freed by a discard or a
 * copy-on-write keep their refcount until the table change that frees them is on disk. So a
 * crash (kill -9, power loss) can leave leaked clusters (refcount > 0, unused: `vessel disk
 * check --repair` frees them), never a cluster in use with too low a refcount, and never
 * loses a write a FLUSH has acknowledged. */
#ifndef VESSEL_BACKEND_BLOCK_QCOW2_H
#define VESSEL_BACKEND_BLOCK_QCOW2_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>

#define QCOW2_MAX_CHAIN 64 /* backing files deeper than this: refused (a loop?) */

struct qcow2_header {
    uint32_t version;
    unsigned cluster_bits;
    uint64_t size; /* virtual size, bytes */
    uint64_t l1_offset;
    uint32_t l1_size; /* entries */
    uint64_t rt_offset;
    uint32_t rt_clusters;
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    uint64_t incompat, compat, autoclear;
    unsigned refcount_order;
    uint32_t header_length;
    unsigned compression; /* 0 deflate, 1 zstd */
    char backing[1024];   /* empty: none */
    char backing_fmt[17]; /* header extension 0xe2792aca; empty: not given */
    bool has_bitmaps;     /* extension 0x23852875 */
};

#define QCOW2_INCOMPAT_DIRTY   (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ull << 1)

/* Parse and validate a header from the file's first bytes (buf: min(file size, 2 MiB) bytes
 * read from offset 0; file_size: the file's size). Every field is checked against the spec
 * and against the file (tables aligned, inside the file, no overlap with the header or each
 * other, sizes capped). 0, or -EINVAL (-ENOTSUP for valid features vessel lacks) with a
 * one-line message. */
int qcow2_parse_header(const uint8_t *buf, size_t len, uint64_t file_size, struct qcow2_header *h,
                       char *err, size_t errlen);

struct qcow2;

enum qcow2_open_flags {
    QCOW2_RDONLY = 1,
    QCOW2_NOLOCK = 2, /* `disk info`: read an image a vessel may be using */
};

/* Open an image and its backing chain (backing files read-only, shared locks; qcow2 or raw,
 * as the backing format extension says or as probed). `raw` opens path as a raw image node
 * (for convert, and the chain). Writable opens refuse images with the dirty or corrupt bit
 * ("run vessel disk check --repair") and version 2 (read-only works). Images with internal
 * snapshots are written copy-on-write where a snapshot shares a table or cluster.
 * 0 or -errno with a one-line message. */
int qcow2_open(struct qcow2 **out, const char *path, int flags, bool raw, char *err, size_t errlen);
void qcow2_close(struct qcow2 *q); /* flushes first if writable */
uint64_t qcow2_size(const struct qcow2 *q);
const struct qcow2_header *qcow2_hdr(const struct qcow2 *q); /* NULL for a raw node */
const struct qcow2 *qcow2_backing(const struct qcow2 *q);
const char *qcow2_path(const struct qcow2 *q);
int qcow2_fd(const struct qcow2 *q);

/* Guest I/O on [off, off+len) (inside the virtual size): 0 or -errno (-EIO on metadata the
 * image should not hold; it is logged once). */
int qcow2_readv(struct qcow2 *q, uint64_t off, const struct iovec *iov, int iovcnt, uint64_t len);
int qcow2_writev(struct qcow2 *q, uint64_t off, const struct iovec *iov, int iovcnt, uint64_t len);
/* Where guest range [off, off+len) lies when it is all data clusters of this image (not
 * compressed, not zero, not in a backing file; for a write also only this image's, the copied
 * flag, so writing there changes no table), one after the other in the file: 1 and *host, so
 * one preadv/pwritev of qcow2_fd() at *host does the request. 0: not so (qcow2_readv/writev
 * do it). -errno: a table could not be read or is corrupt. Changes no data; the mapping stays
 * true until the next qcow2_writev/zero/flush/snapshot call. */
int qcow2_map(struct qcow2 *q, uint64_t off, uint64_t len, bool write, uint64_t *host);
/* qcow2_map from the tables already in memory, with no I/O (no table read, no cache
 * eviction): 1 and *host as qcow2_map, 0 when qcow2_map would have to read a table or would
 * not return 1 (a corrupt entry is still reported, once, as qcow2_map does). Cheap enough for
 * a hart thread; the caller still owns the image exclusively for the call (one caller at a
 * time, as for every function here). */
int qcow2_map_cached(struct qcow2 *q, uint64_t off, uint64_t len, bool write, uint64_t *host);
/* Whole clusters become zero clusters (discard: unallocated where no backing file shows
 * through); partial ones get zeroes written (write_zeroes) or are left alone (discard). */
int qcow2_zero(struct qcow2 *q, uint64_t off, uint64_t len, bool discard);
int qcow2_flush(struct qcow2 *q);
/* One whole guest cluster (buf: cluster size bytes; past the virtual size, zeroes) written
 * deflate-compressed, or plain where compression does not pay. Only for clusters not yet
 * allocated (new images: convert -c), -EEXIST otherwise. */
int qcow2_write_compressed(struct qcow2 *q, uint64_t off, const uint8_t *buf);

/* A new image (refuses an existing file). cluster_bits 9..21 (16 is QEMU's default). size 0
 * with a backing file: the backing file's size. backing_fmt NULL: probed. */
int qcow2_create(const char *path, uint64_t size, unsigned cluster_bits, const char *backing,
                 const char *backing_fmt, char *err, size_t errlen);

/* Internal snapshots ("Snapshot table"): disk state only, no VM state. The image must be
 * open for writing. Names or ids select a snapshot. 0 or -errno with a message. */
struct qcow2_snapshot_info {
    char id[128], name[256];
    uint64_t date_sec;
    uint32_t date_nsec;
    uint64_t vm_clock_nsec, vm_state_size, disk_size;
};
unsigned qcow2_snapshot_count(const struct qcow2 *q);
void qcow2_snapshot_get(const struct qcow2 *q, unsigned i, struct qcow2_snapshot_info *s);
int qcow2_snapshot_create(struct qcow2 *q, const char *name, char *err, size_t errlen);
/* The active image becomes the snapshot's state (the snapshot stays). */
int qcow2_snapshot_apply(struct qcow2 *q, const char *name, char *err, size_t errlen);
int qcow2_snapshot_delete(struct qcow2 *q, const char *name, char *err, size_t errlen);
/* Point an image's backing file name at another file without looking at either image's
 * data (`qemu-img rebase -u`): the import of an export that kept a backing chain names the
 * imported layers. The image must already have a backing file; the new name (1-1023 bytes)
 * must fit in the first cluster where the old one was. The backing format extension stays.
 * 0, or -errno with a message. */
int qcow2_set_backing_name(const char *path, const char *name, char *err, size_t errlen);
/* On an image open read-only: reads see the snapshot's state instead of the active image's
 * (nothing is written; `vessel disk convert -l`). A snapshot's tables and clusters are never
 * written while it exists, so this is safe on an image a VM is writing (QCOW2_NOLOCK). */
int qcow2_snapshot_view(struct qcow2 *q, const char *name, char *err, size_t errlen);

/* The block backend (qcow2_blk.c; blk_open opens it): how many reads and writes were mapped
 * on submission and sent straight to the I/O engine, how many the worker mapped for the
 * engine, how many requests the worker did itself. For tests; zeroes for another backend. */
struct blk_backend;
void qcow2_backend_counts(struct blk_backend *b, uint64_t *submitted, uint64_t *mapped,
                          uint64_t *worker);

struct qcow2_check {
    uint64_t leaks;  /* clusters whose refcount is higher than their uses */
    uint64_t errors; /* refcounts too low, references outside the file, bad offsets */
    uint64_t fixed;  /* repaired */
    uint64_t used;   /* clusters in use */
    uint64_t data;   /* guest data clusters allocated (active L1) */
    uint64_t file_clusters;
    bool dirty; /* the dirty bit was set (cleared by a clean repair) */
};
/* Rebuild the refcounts an image should have from its tables (header, L1/L2 of the active
 * image and of every internal snapshot, refcount structures, snapshot table) and compare.
 * repair: set leaked refcounts to their uses (and too-low ones where the refcount block
 * exists); clear the dirty bit once nothing is left. Findings go to out (may be NULL).
 * 0 (result in *c) or -errno with a message. */
int qcow2_check(const char *path, bool repair, struct qcow2_check *c, FILE *out, char *err,
                size_t errlen);
#endif

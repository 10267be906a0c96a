// SOURCES: src/backend/block/qcow2.c src/util/log.c src/backend/block/fileops.c
// LIBS: -lz -lzstd
/* qcow2 images as hostile input: the header parser on the raw bytes, then the whole image
 * layer on them as a file: open (tables, backing name), reads across the first clusters,
 * writes and zeroes (allocation and refcounts on corrupted metadata), flush, snapshot
 * create/apply/delete, and check.
 * Never a crash, a hang or a sanitizer report; errors are fine. */
#include "backend/block/qcow2.h"
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char err[512];
    struct qcow2_header h;
    qcow2_parse_header(data, len, len, &h, err, sizeof(err));
    if (len > (1u << 20)) return 0;

    int fd = memfd_create("fuzz-qcow2", MFD_CLOEXEC);
    if (fd < 0) return 0;
    if (write(fd, data, len) != (ssize_t)len) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    static uint8_t buf[256 << 10];
    struct qcow2 *q;
    /* Read-write (backing files are not followed from a memfd's directory: /proc/self/fd). */
    if (qcow2_open(&q, path, 0, false, err, sizeof(err)) == 0) {
        uint64_t size = qcow2_size(q);
        uint64_t n = size < sizeof(buf) ? size : sizeof(buf);
        struct iovec v = {buf, (size_t)n};
        qcow2_readv(q, 0, &v, 1, n);
        if (size > n) qcow2_readv(q, size - n, &v, 1, n);
        memset(buf, 0x5a, sizeof(buf));
        uint64_t off = len > 8 ? ((uint64_t)data[len - 1] << 12 | data[len - 2]) : 0;
        uint64_t wl = 70000;
        if (off < size && wl > size - off) wl = size - off;
        if (off < size) {
            struct iovec w = {buf, (size_t)wl};
            qcow2_writev(q, off, &w, 1, wl);
            qcow2_zero(q, off & ~511ull, wl & ~511ull, data[0] & 1);
            qcow2_flush(q);
            qcow2_readv(q, off, &w, 1, wl);
        }
        /* A compressed write (convert -c) into a cluster of the hostile image. */
        if ((data[0] & 8) && size) {
            unsigned cb = qcow2_hdr(q)->cluster_bits;
            static uint8_t cl[2 << 20];
            memset(cl, data[0], (size_t)1 << cb);
            qcow2_write_compressed(q, (off % size) >> cb << cb, cl);
        }
        /* Snapshot table rewrites and reference walks over hostile tables. */
        if (data[0] & 2) {
            if (qcow2_snapshot_count(q)) qcow2_snapshot_apply(q, "1", err, sizeof(err));
            qcow2_snapshot_create(q, "fz", err, sizeof(err));
            if (data[0] & 4) qcow2_snapshot_delete(q, "1", err, sizeof(err));
        }
        qcow2_close(q);
    }
    struct qcow2_check c;
    qcow2_check(path, false, &c, NULL, err, sizeof(err));
    close(fd);
    return 0;
}

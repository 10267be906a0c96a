/* blk_open's format probe and the dispatch to the format drivers (block.h, driver.h). */
#include "backend/block/block.h"
#include "backend/block/driver.h"
#include "util/clock.h"
#include "util/log.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const unsigned char qcow2_magic[4] = {'Q', 'F', 'I', 0xfb};

/* Does the file start with the qcow2 magic? Anything that cannot be read is left to the raw
 * driver, whose checks give the right message (no such file, a directory, a FIFO...). */
static bool looks_qcow2(const char *path)
{
    int fd = blk_file_open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return false;
    struct stat st;
    unsigned char m[4];
    bool yes = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && pread(fd, m, 4, 0) == 4 &&
               !memcmp(m, qcow2_magic, 4);
    close(fd);
    return yes;
}

int blk_format_parse(const char *s, enum blk_format *f)
{
    if (!strcmp(s, "raw"))
        *f = BLK_FMT_RAW;
    else if (!strcmp(s, "qcow2"))
        *f = BLK_FMT_QCOW2;
    else if (!strcmp(s, "auto"))
        *f = BLK_FMT_AUTO;
    else
        return -EINVAL;
    return 0;
}

int blk_open(struct blk_backend **out, const char *path, const struct blk_open_opts *o, char *err,
             size_t errlen)
{
    enum blk_format f = o ? o->format : BLK_FMT_AUTO;
    bool probed = f == BLK_FMT_AUTO;
    if (probed) f = looks_qcow2(path) ? BLK_FMT_QCOW2 : BLK_FMT_RAW;
    if (f == BLK_FMT_QCOW2) return qcow2_open_backend(out, path, o, err, errlen);
    int r = raw_open(out, path, o, err, errlen);
    if (r == 0) (*out)->probed_raw = probed;
    return r;
}

void blk_close(struct blk_backend *b)
{
    if (b) b->drv->close(b);
}
int blk_refresh_size(struct blk_backend *b, char *err, size_t errlen)
{
    return b->drv->refresh_size(b, err, errlen);
}
bool blk_same_file(const struct blk_backend *b, const char *path)
{
    return b->drv->same_file(b, path);
}
uint64_t blk_size(const struct blk_backend *b)
{
    return b->drv->size(b);
}
bool blk_readonly(const struct blk_backend *b)
{
    return b->readonly;
}
bool blk_direct(const struct blk_backend *b)
{
    return b->drv->direct(b);
}
uint64_t blk_buffered_fallbacks(const struct blk_backend *b)
{
    return b->drv->buffered_fallbacks(b);
}
const char *blk_engine_name(const struct blk_backend *b)
{
    return b->drv->engine_name(b);
}
const char *blk_format_name(const struct blk_backend *b)
{
    return b->drv->name;
}

/* A write at offset 0 whose first bytes are the qcow2 magic (virtio-blk writes whole
 * sectors, so a write that reaches offset 0..3 starts at 0). */
static bool writes_magic(const struct blk_req *r)
{
    if (r->op != BLK_WRITE || r->offset != 0 || r->iovcnt <= 0 || !r->iov) return false;
    unsigned char head[4];
    size_t have = 0;
    for (int i = 0; i < r->iovcnt && have < 4; i++)
        for (size_t k = 0; k < r->iov[i].iov_len && have < 4; k++)
            head[have++] = ((const unsigned char *)r->iov[i].iov_base)[k];
    return have == 4 && !memcmp(head, qcow2_magic, 4);
}

/* blk_flush_wait's request: on the heap, freed by whichever of the waiter and done() lets go
 * last, so a waiter that timed out leaves nothing dangling. */
struct flush_wait {
    struct blk_req req;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    int refs;
    int64_t result;
};

static void flush_wait_put(struct flush_wait *w)
{
    pthread_mutex_lock(&w->lock);
    bool last = --w->refs == 0;
    pthread_mutex_unlock(&w->lock);
    if (!last) return;
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

static void flush_wait_done(struct blk_req *r, int64_t result)
{
    struct flush_wait *w = r->opaque;
    pthread_mutex_lock(&w->lock);
    w->done = true;
    w->result = result;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    flush_wait_put(w);
}

int blk_flush_wait(struct blk_backend *b, unsigned ms)
{
    struct flush_wait *w = calloc(1, sizeof(*w));
    if (!w) return -ENOMEM;
    pthread_mutex_init(&w->lock, NULL);
    cond_init_monotonic(&w->cond);
    w->refs = 2;
    w->req = (struct blk_req){.op = BLK_FLUSH, .done = flush_wait_done, .opaque = w};
    int r = blk_submit(b, &w->req);
    if (r < 0) {
        w->refs = 1;
        flush_wait_put(w);
        return r;
    }
    struct timespec ts = monotonic_deadline_ms(ms);
    pthread_mutex_lock(&w->lock);
    while (!w->done)
        if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) == ETIMEDOUT) break;
    r = w->done ? (w->result < 0 ? (int)w->result : 0) : -ETIMEDOUT;
    pthread_mutex_unlock(&w->lock);
    flush_wait_put(w);
    return r;
}

int blk_snapshot(struct blk_backend *b, enum blk_snap_op op, const char *name, char *err,
                 size_t errlen)
{
    if (!b->drv->snapshot) {
        snprintf(err, errlen, "a %s image has no internal snapshots", b->drv->name);
        return -ENOTSUP;
    }
    if (b->readonly) {
        snprintf(err, errlen, "the image is open read-only");
        return -EROFS;
    }
    return b->drv->snapshot(b, op, name, err, errlen);
}

int blk_submit(struct blk_backend *b, struct blk_req *r)
{
    if (!b || !r || !r->done) return -EINVAL;
    if (b->probed_raw && writes_magic(r)) {
        log_error("disk: the guest wrote a qcow2 header to the start of a raw image that was "
                  "opened without format=raw; refused (give format=raw to allow it)");
        return -EPERM;
    }
    return b->drv->submit(b, r);
}

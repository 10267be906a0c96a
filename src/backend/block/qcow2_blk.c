/* The qcow2 block backend (block.h): requests run on a worker thread of the backend's own, one
 * at a time, through the synchronous image layer (qcow2.c), so mapping, allocation and
 * metadata writes never happen on a hart thread and need no locking of their own. */
#include "backend/block/block.h"
#include "backend/block/driver.h"
#include "backend/block/qcow2.h"
#include "util/clock.h"
#include "util/log.h"
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CLOSE_WAIT_MS 200 /* as raw: a hung request must not keep vessel from exiting */

struct qreq {
    struct blk_req *r;
    struct qreq *next;
};

struct q2_backend {
    struct blk_backend base; /* first */
    struct qcow2 *img;
    uint64_t size;
    dev_t dev;
    ino_t ino;
    pthread_t th;
    pthread_mutex_t lock;
    pthread_cond_t work, idle;
    struct qreq *head, *tail;
    unsigned inflight; /* accepted, done() not returned yet */
    bool stop;
    int flush_err; /* first failed flush: every later one reports it (as raw) */
    struct q2_backend *next_abandoned;
};

static pthread_mutex_t abandoned_lock = PTHREAD_MUTEX_INITIALIZER;
static struct q2_backend *abandoned; /* reachable for leak checkers, never freed */

static int64_t run(struct q2_backend *b, struct blk_req *r)
{
    int rc;
    switch (r->op) {
    case BLK_READ:
    case BLK_WRITE: {
        uint64_t len = 0;
        for (int i = 0; i < r->iovcnt; i++)
            len += r->iov[i].iov_len;
        rc = r->op == BLK_READ ? qcow2_readv(b->img, r->offset, r->iov, r->iovcnt, len)
                               : qcow2_writev(b->img, r->offset, r->iov, r->iovcnt, len);
        return rc < 0 ? rc : (int64_t)len;
    }
    case BLK_FLUSH:
        rc = qcow2_flush(b->img);
        /* After a failed fdatasync the kernel may drop dirty pages: never report a later
         * flush as safe. */
        if (rc < 0 && !b->flush_err) {
            b->flush_err = rc;
            log_error("disk %s: flush failed: %s; every later flush will fail too",
                      qcow2_path(b->img), strerror(-rc));
        }
        return b->flush_err ? b->flush_err : rc;
    case BLK_DISCARD: return qcow2_zero(b->img, r->offset, r->len, true);
    case BLK_WRITE_ZEROES: return qcow2_zero(b->img, r->offset, r->len, false);
    }
    return -EOPNOTSUPP;
}

static void *worker(void *arg)
{
    struct q2_backend *b = arg;
    pthread_mutex_lock(&b->lock);
    for (;;) {
        while (!b->head && !b->stop)
            pthread_cond_wait(&b->work, &b->lock);
        if (!b->head) break;
        struct qreq *q = b->head;
        b->head = q->next;
        if (!b->head) b->tail = NULL;
        pthread_mutex_unlock(&b->lock);
        struct blk_req *r = q->r;
        free(q);
        r->done(r, run(b, r));
        pthread_mutex_lock(&b->lock);
        if (--b->inflight == 0) pthread_cond_broadcast(&b->idle);
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

static bool in_range(const struct q2_backend *b, uint64_t off, uint64_t len)
{
    return off <= b->size && len <= b->size - off;
}

static int q2_submit(struct blk_backend *bb, struct blk_req *r)
{
    struct q2_backend *b = (struct q2_backend *)bb;
    uint64_t len = 0;
    switch (r->op) {
    case BLK_WRITE:
        if (b->base.readonly) return -EROFS;
        /* fallthrough */
    case BLK_READ:
        if (r->iovcnt < 0 || r->iovcnt > IOV_MAX || (r->iovcnt && !r->iov)) return -EINVAL;
        for (int i = 0; i < r->iovcnt; i++) {
            if (r->iov[i].iov_len > b->size - len) return -EINVAL;
            len += r->iov[i].iov_len;
        }
        if (!in_range(b, r->offset, len)) return -EINVAL;
        break;
    case BLK_FLUSH: break;
    case BLK_DISCARD:
    case BLK_WRITE_ZEROES:
        if (b->base.readonly) return -EROFS;
        if (!in_range(b, r->offset, r->len)) return -EINVAL;
        break;
    default: return -EOPNOTSUPP;
    }
    struct qreq *q = malloc(sizeof(*q));
    if (!q) return -ENOMEM;
    q->r = r;
    q->next = NULL;
    pthread_mutex_lock(&b->lock);
    if (b->tail)
        b->tail->next = q;
    else
        b->head = q;
    b->tail = q;
    b->inflight++;
    pthread_cond_signal(&b->work);
    pthread_mutex_unlock(&b->lock);
    return 0;
}

static void q2_close(struct blk_backend *bb)
{
    struct q2_backend *b = (struct q2_backend *)bb;
    struct timespec ts = monotonic_deadline_ms(CLOSE_WAIT_MS);
    pthread_mutex_lock(&b->lock);
    while (b->inflight)
        if (pthread_cond_timedwait(&b->idle, &b->lock, &ts) == ETIMEDOUT) break;
    unsigned left = b->inflight;
    if (!left) {
        b->stop = true;
        pthread_cond_signal(&b->work);
    }
    pthread_mutex_unlock(&b->lock);
    if (left) {
        log_warn("disk %s: %u request(s) did not complete within %u ms of closing; abandoned",
                 qcow2_path(b->img), left, CLOSE_WAIT_MS);
        pthread_mutex_lock(&abandoned_lock);
        b->next_abandoned = abandoned;
        abandoned = b;
        pthread_mutex_unlock(&abandoned_lock);
        return;
    }
    pthread_join(b->th, NULL);
    qcow2_close(b->img); /* writes back the tables */
    pthread_cond_destroy(&b->work);
    pthread_cond_destroy(&b->idle);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

static int q2_refresh_size(struct blk_backend *bb, char *err, size_t errlen)
{
    (void)bb;
    (void)err;
    (void)errlen;
    return 0; /* a qcow2 image's size is in its header: resizing is qemu-img's job */
}

static bool q2_same_file(const struct blk_backend *bb, const char *path)
{
    const struct q2_backend *b = (const struct q2_backend *)bb;
    struct stat st;
    return stat(path, &st) == 0 && st.st_dev == b->dev && st.st_ino == b->ino;
}

static uint64_t q2_size(const struct blk_backend *bb)
{
    return ((const struct q2_backend *)bb)->size;
}
static bool q2_direct(const struct blk_backend *bb)
{
    (void)bb;
    return false;
}
static uint64_t q2_buffered(const struct blk_backend *bb)
{
    (void)bb;
    return 0;
}
static const char *q2_engine(const struct blk_backend *bb)
{
    (void)bb;
    return "qcow2-worker";
}

const struct blk_driver qcow2_driver = {
    .name = "qcow2",
    .close = q2_close,
    .refresh_size = q2_refresh_size,
    .same_file = q2_same_file,
    .size = q2_size,
    .submit = q2_submit,
    .direct = q2_direct,
    .buffered_fallbacks = q2_buffered,
    .engine_name = q2_engine,
};

int qcow2_open_backend(struct blk_backend **out, const char *path, const struct blk_open_opts *o,
                       char *err, size_t errlen)
{
    bool ro = o && o->readonly;
    if (o && o->direct) {
        snprintf(err, errlen,
                 "disk %s: cache=none is for raw images only (qcow2 goes through "
                 "the page cache)",
                 path);
        return -EINVAL;
    }
    struct q2_backend *b = calloc(1, sizeof(*b));
    if (!b) {
        snprintf(err, errlen, "disk %s: out of memory", path);
        return -ENOMEM;
    }
    int r = qcow2_open(&b->img, path, ro ? QCOW2_RDONLY : 0, false, err, errlen);
    if (r) {
        free(b);
        return r;
    }
    struct stat st;
    if (fstat(qcow2_fd(b->img), &st) == 0) {
        b->dev = st.st_dev;
        b->ino = st.st_ino;
    }
    b->size = qcow2_size(b->img) & ~511ull; /* the device counts whole sectors */
    if (b->size == 0) {
        snprintf(err, errlen, "disk %s: qcow2 virtual size is below one 512-byte sector", path);
        qcow2_close(b->img);
        free(b);
        return -EINVAL;
    }
    b->base.drv = &qcow2_driver;
    b->base.readonly = ro;
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->work, NULL);
    cond_init_monotonic(&b->idle);
    if ((r = pthread_create(&b->th, NULL, worker, b))) {
        snprintf(err, errlen, "disk %s: cannot start its worker thread: %s", path, strerror(r));
        qcow2_close(b->img);
        free(b);
        return -r;
    }
    log_debug("disk %s: qcow2, %llu bytes, %s", path, (unsigned long long)b->size,
              ro ? "read-only" : "read-write");
    *out = &b->base;
    return 0;
}

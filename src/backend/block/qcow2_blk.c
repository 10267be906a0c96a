/* The qcow2 block backend (block.h). The image layer (qcow2.c) is synchronous and takes one
 * caller at a time; a worker thread of the backend's own does everything that may block or
 * change a table, so mapping, allocation and metadata writes never happen on a hart thread.
 *
 * A read or write whose range is all data clusters of the image, one after the other in the
 * file (qcow2_map: for a write, clusters written in place), needs no table change: it is handed
 * to an I/O engine (io_uring or a thread pool, as raw) as one transfer, and the next request is
 * taken at once, so a guest with many requests in flight gets them served in parallel.
 * Everything else (allocation, zeroing, discard, flush, a backing file's data) runs on the
 * worker synchronously, and only when no engine transfer is in flight: a table change or a
 * freed cluster can then never race with a transfer that was mapped before it. Reads that need
 * the worker wait only for transfers that write.
 *
 * Fast path: when the worker is idle (nothing queued, not busy) and the L2 tables a request
 * needs are in the cache, the submitting thread maps it itself (qcow2_map_cached: memory only,
 * no I/O) and hands it straight to the engine, as raw does: one thread hand-off per request
 * instead of two. Anything else is queued for the worker, in order.
 *
 * Locking (b->lock):
 *   - the queue, busy, inflight, eng_reads/eng_writes, stop and the statistics are under it;
 *   - the image (struct qcow2: L1, L2 cache, refcounts, flags) belongs to the worker while
 *     busy is set, and to whoever holds b->lock while it is clear. The worker sets busy under
 *     the lock when it takes a request and clears it under the lock once the queue is empty;
 *     a submitter maps only with the lock held and busy clear. So the image has one user at a
 *     time, and the lock orders each hand-over;
 *   - a submitter counts its transfer in eng_reads/eng_writes before it lets the lock go, so
 *     a worker that then takes a table-changing request waits for it (eng_idle) before it
 *     touches the image;
 *   - a request submitted while anything is queued or the worker is busy is queued behind
 *     it: requests are mapped in the order they were submitted, and a request the guest
 *     submits after another completed sees every table change that one made (completion
 *     comes after the change, and the change is in memory, the L2 cache, before any write-
 *     back). */
#include "backend/block/io_engine.h"
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

/* One accepted request: queued for the worker (next) or handed to the engine (t). */
struct q2_task {
    struct io_task t; /* first */
    struct q2_backend *b;
    struct blk_req *r;
    struct q2_task *next; /* the worker's queue */
    struct iovec iov[];   /* a copy: the engine advances it */
};

struct q2_backend {
    struct blk_backend base; /* first */
    struct qcow2 *img;
    struct io_engine *eng;
    uint64_t size;
    dev_t dev;
    ino_t ino;
    pthread_t th;
    pthread_mutex_t lock;
    pthread_cond_t work, idle;
    struct q2_task *head, *tail;
    bool busy;                      /* the worker owns the image (see the top of the file) */
    unsigned inflight;              /* accepted, done() not returned yet */
    unsigned eng_reads, eng_writes; /* of them, with the engine */
    pthread_cond_t eng_idle;        /* eng_reads or eng_writes dropped to 0 */
    /* statistics: requests mapped by the submitter / by the worker for the engine, done by
     * the worker */
    uint64_t nsubmit, nfast, nslow;
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

static void task_done(struct io_task *t, int64_t res)
{
    struct q2_task *k = (struct q2_task *)t;
    struct q2_backend *b = k->b;
    struct blk_req *r = k->r;
    bool write = t->kind == IO_WRITEV;
    int64_t len = (int64_t)t->len;
    free(k);
    r->done(r, res < 0 ? res : len);
    pthread_mutex_lock(&b->lock);
    unsigned *n = write ? &b->eng_writes : &b->eng_reads;
    if (--*n == 0) pthread_cond_broadcast(&b->eng_idle);
    if (--b->inflight == 0) pthread_cond_broadcast(&b->idle);
    pthread_mutex_unlock(&b->lock);
}

static uint64_t req_len(const struct blk_req *r)
{
    uint64_t len = 0;
    for (int i = 0; i < r->iovcnt; i++)
        len += r->iov[i].iov_len;
    return len;
}

/* k's request mapped to host offset host: count it with the engine (b->lock held; the caller
 * submits it once the lock is let go). */
static void engine_prepare(struct q2_backend *b, struct q2_task *k, uint64_t host, uint64_t len)
{
    bool write = k->r->op == BLK_WRITE;
    memset(&k->t, 0, sizeof(k->t));
    k->t.kind = write ? IO_WRITEV : IO_READV;
    k->t.fd = qcow2_fd(b->img);
    k->t.offset = host;
    k->t.iov = k->iov;
    k->t.iovcnt = k->r->iovcnt;
    k->t.len = len;
    k->t.complete = task_done;
    if (write)
        b->eng_writes++;
    else
        b->eng_reads++;
}

/* Worker thread (busy): hand k to the engine if its range maps straight to the file (the
 * tables may be read for it). False: the worker must do it. */
static bool try_engine(struct q2_backend *b, struct q2_task *k)
{
    struct blk_req *r = k->r;
    if (r->op != BLK_READ && r->op != BLK_WRITE) return false;
    uint64_t len = req_len(r), host;
    if (len == 0 || qcow2_map(b->img, r->offset, len, r->op == BLK_WRITE, &host) != 1) return false;
    pthread_mutex_lock(&b->lock);
    engine_prepare(b, k, host, len);
    b->nfast++;
    pthread_mutex_unlock(&b->lock);
    io_engine_submit(b->eng, &k->t);
    return true;
}

static void *worker(void *arg)
{
    struct q2_backend *b = arg;
    pthread_mutex_lock(&b->lock);
    for (;;) {
        if (!b->head) {
            b->busy = false; /* the image is the submitters' again (fast path) */
            while (!b->head && !b->stop)
                pthread_cond_wait(&b->work, &b->lock);
            if (!b->head) break;
        }
        struct q2_task *k = b->head;
        b->head = k->next;
        if (!b->head) b->tail = NULL;
        b->busy = true;
        pthread_mutex_unlock(&b->lock);
        if (try_engine(b, k)) {
            pthread_mutex_lock(&b->lock);
            continue;
        }
        struct blk_req *r = k->r;
        free(k);
        /* the worker does it: once no engine transfer could see a table or cluster change
         * (a read through the worker changes none of the data a transfer touches) */
        pthread_mutex_lock(&b->lock);
        b->nslow++;
        while (b->eng_writes || (r->op != BLK_READ && b->eng_reads))
            pthread_cond_wait(&b->eng_idle, &b->lock);
        pthread_mutex_unlock(&b->lock);
        r->done(r, run(b, r));
        pthread_mutex_lock(&b->lock);
        if (--b->inflight == 0) pthread_cond_broadcast(&b->idle);
    }
    b->busy = false;
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
    int nseg = r->op == BLK_READ || r->op == BLK_WRITE ? r->iovcnt : 0;
    struct q2_task *k = malloc(sizeof(*k) + (size_t)nseg * sizeof(struct iovec));
    if (!k) return -ENOMEM;
    if (nseg) memcpy(k->iov, r->iov, (size_t)nseg * sizeof(struct iovec));
    k->b = b;
    k->r = r;
    k->next = NULL;
    uint64_t host;
    pthread_mutex_lock(&b->lock);
    b->inflight++;
    /* The fast path (see the top of the file): the image is ours while the lock is held and
     * the worker is idle with nothing queued. */
    if (nseg && len && !b->head && !b->busy &&
        qcow2_map_cached(b->img, r->offset, len, r->op == BLK_WRITE, &host) == 1) {
        engine_prepare(b, k, host, len);
        b->nsubmit++;
        pthread_mutex_unlock(&b->lock);
        io_engine_submit(b->eng, &k->t);
        return 0;
    }
    if (b->tail)
        b->tail->next = k;
    else
        b->head = k;
    b->tail = k;
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
    io_engine_destroy(b->eng); /* nothing is in flight: returns at once */
    log_debug("disk %s: %llu requests mapped on submission, %llu by the worker for the engine, "
              "%llu done by the worker",
              qcow2_path(b->img), (unsigned long long)b->nsubmit, (unsigned long long)b->nfast,
              (unsigned long long)b->nslow);
    qcow2_close(b->img); /* writes back the tables */
    pthread_cond_destroy(&b->eng_idle);
    pthread_cond_destroy(&b->work);
    pthread_cond_destroy(&b->idle);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

void qcow2_backend_counts(struct blk_backend *bb, uint64_t *submitted, uint64_t *mapped,
                          uint64_t *worker)
{
    *submitted = *mapped = *worker = 0;
    if (bb->drv != &qcow2_driver) return;
    struct q2_backend *b = (struct q2_backend *)bb;
    pthread_mutex_lock(&b->lock);
    *submitted = b->nsubmit;
    *mapped = b->nfast;
    *worker = b->nslow;
    pthread_mutex_unlock(&b->lock);
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
    return io_engine_name(((const struct q2_backend *)bb)->eng);
}

static int q2_snapshot(struct blk_backend *bb, enum blk_snap_op op, const char *name, char *err,
                       size_t errlen)
{
    struct q2_backend *b = (struct q2_backend *)bb;
    /* A request's done() runs before the worker counts it finished (a flush the caller just
     * waited for, say): wait, bounded, for the count to reach 0. */
    struct timespec ts = monotonic_deadline_ms(CLOSE_WAIT_MS * 10);
    pthread_mutex_lock(&b->lock);
    while (b->inflight)
        if (pthread_cond_timedwait(&b->idle, &b->lock, &ts) == ETIMEDOUT) break;
    int r;
    if (b->inflight) {
        snprintf(err, errlen, "%u requests are in flight", b->inflight);
        r = -EBUSY;
    } else {
        /* the worker sleeps with nothing queued and nothing is submitted (the caller's
         * promise): the image is ours until this returns */
        r = op == BLK_SNAP_CREATE ? qcow2_snapshot_create(b->img, name, err, errlen)
                                  : qcow2_snapshot_delete(b->img, name, err, errlen);
    }
    pthread_mutex_unlock(&b->lock);
    return r;
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
    .snapshot = q2_snapshot,
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
    enum io_engine_kind kind;
    int r = io_engine_kind_from_env(&kind, err, errlen);
    if (r < 0) return r;
    if (blk_file_brokered()) kind = IO_ENGINE_THREADS; /* no io_uring set-up in the sandbox */
    struct q2_backend *b = calloc(1, sizeof(*b));
    if (!b) {
        snprintf(err, errlen, "disk %s: out of memory", path);
        return -ENOMEM;
    }
    r = qcow2_open(&b->img, path, ro ? QCOW2_RDONLY : 0, false, err, errlen);
    if (r) {
        free(b);
        return r;
    }
    if ((r = io_engine_create(&b->eng, kind, err, errlen)) < 0) {
        qcow2_close(b->img);
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
    pthread_cond_init(&b->eng_idle, NULL);
    cond_init_monotonic(&b->idle);
    if ((r = pthread_create(&b->th, NULL, worker, b))) {
        snprintf(err, errlen, "disk %s: cannot start its worker thread: %s", path, strerror(r));
        io_engine_destroy(b->eng);
        qcow2_close(b->img);
        free(b);
        return -r;
    }
    log_debug("disk %s: qcow2, %llu bytes, %s", path, (unsigned long long)b->size,
              ro ? "read-only" : "read-write");
    *out = &b->base;
    return 0;
}

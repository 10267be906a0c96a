/* I/O engines: io_uring with a completion thread, or a pool of worker threads (io_engine.h). */
#include "backend/block/io_engine.h"
#include "util/log.h"
#include "util/ratelimit.h"
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define URING_ENTRIES  128
#define POOL_THREADS   4
#define MAX_RETRIES    100 /* EINTR/EAGAIN/ECANCELED resubmissions before giving up */
#define STUCK_RETRY_NS (10 * 1000 * 1000)

volatile size_t io_engine_debug_max_xfer;

struct io_engine {
    enum io_engine_kind kind; /* URING or THREADS, never AUTO */
    pthread_mutex_t lock;
    pthread_cond_t work;         /* threads: a task was queued, or stop; uring: see cq_asleep */
    pthread_cond_t idle;         /* nothing queued and nothing in flight */
    struct io_task *head, *tail; /* queued, not yet handed to the kernel or a worker */
    unsigned inflight;           /* uring: SQEs not yet reaped; threads: tasks being run */
    unsigned reapers;            /* uring: threads running callbacks of reaped CQEs */
    bool cq_asleep; /* uring: the completion thread waits on `work` with nothing in flight */
    bool stop;

    struct io_uring ring;
    unsigned max_inflight; /* the CQ size: never more SQEs out than CQEs fit */
    pthread_t cq_thread;

    pthread_t workers[POOL_THREADS];
    unsigned nworkers;
};

int io_engine_kind_from_env(enum io_engine_kind *k, char *err, size_t errlen)
{
    const char *v = getenv("VESSEL_IO_ENGINE");
    if (!v || !*v)
        *k = IO_ENGINE_AUTO;
    else if (!strcmp(v, "io_uring"))
        *k = IO_ENGINE_URING;
    else if (!strcmp(v, "threads"))
        *k = IO_ENGINE_THREADS;
    else {
        snprintf(err, errlen, "VESSEL_IO_ENGINE=%s: expected io_uring or threads", v);
        return -EINVAL;
    }
    return 0;
}

const char *io_engine_name(const struct io_engine *e)
{
    return e->kind == IO_ENGINE_URING ? "io_uring" : "threads";
}

/* ---- shared pieces ---- */

static void queue_push(struct io_engine *e, struct io_task *t)
{
    t->next = NULL;
    if (e->tail)
        e->tail->next = t;
    else
        e->head = t;
    e->tail = t;
}

static struct io_task *queue_pop(struct io_engine *e)
{
    struct io_task *t = e->head;
    if (t) {
        e->head = t->next;
        if (!e->head) e->tail = NULL;
    }
    return t;
}

/* Step past n transferred bytes: drop finished segments, trim a partly finished one. */
static void task_advance(struct io_task *t, uint64_t n)
{
    t->xfer += n;
    while (n && t->iovcnt > 0) {
        if (n >= t->iov->iov_len) {
            n -= t->iov->iov_len;
            t->iov++;
            t->iovcnt--;
        } else {
            t->iov->iov_base = (char *)t->iov->iov_base + n;
            t->iov->iov_len -= n;
            n = 0;
        }
    }
    /* Zero-length segments left in front would make a later transfer return 0 (no progress). */
    while (t->iovcnt > 0 && t->iov->iov_len == 0) {
        t->iov++;
        t->iovcnt--;
    }
}

/* The segments to issue now: all that is left, or (tests) a clipped first segment. */
static const struct iovec *task_segments(struct io_task *t, int *cnt)
{
    size_t max = io_engine_debug_max_xfer;
    if (max && t->iovcnt > 0) {
        t->one = t->iov[0];
        if (t->one.iov_len > max) t->one.iov_len = max;
        *cnt = 1;
        return &t->one;
    }
    *cnt = t->iovcnt;
    return t->iov;
}

static bool retryable(int64_t res)
{
    return res == -EINTR || res == -EAGAIN || res == -ECANCELED;
}

/* uring: wake the completion thread if it sleeps while something is in flight (e->lock held). */
static void uring_wake_locked(struct io_engine *e)
{
    if (e->cq_asleep && (e->inflight || e->head)) pthread_cond_signal(&e->work);
}

/* Queue a task (fresh, the rest of a short transfer, or a retry) and start it if there is room. */
static void uring_flush_locked(struct io_engine *e);
static void engine_enqueue(struct io_engine *e, struct io_task *t)
{
    pthread_mutex_lock(&e->lock);
    queue_push(e, t);
    if (e->kind == IO_ENGINE_URING) {
        uring_flush_locked(e);
        uring_wake_locked(e);
    } else {
        pthread_cond_signal(&e->work);
    }
    pthread_mutex_unlock(&e->lock);
}

/* ---- thread pool ---- */

static int64_t run_rw(struct io_task *t)
{
    while (t->xfer < t->len) {
        int cnt;
        const struct iovec *v = task_segments(t, &cnt);
        off_t off = (off_t)(t->offset + t->xfer);
        ssize_t n = t->kind == IO_READV ? preadv(t->fd, v, cnt, off) : pwritev(t->fd, v, cnt, off);
        if (n < 0) {
            if (retryable(-errno) && ++t->retries < MAX_RETRIES) continue;
            return -errno;
        }
        if (n == 0) return -EIO; /* end of file inside the request: the image shrank under us */
        task_advance(t, (uint64_t)n);
    }
    return (int64_t)t->xfer;
}

static int64_t run_task(struct io_task *t)
{
    int r;
    switch (t->kind) {
    case IO_READV:
    case IO_WRITEV: return run_rw(t);
    case IO_FDATASYNC:
        do
            r = fdatasync(t->fd);
        while (r < 0 && errno == EINTR);
        return r < 0 ? -errno : 0;
    case IO_FALLOCATE:
        do
            r = fallocate(t->fd, t->mode, (off_t)t->offset, (off_t)t->len);
        while (r < 0 && errno == EINTR);
        return r < 0 ? -errno : 0;
    case IO_NOP: return 0;
    }
    return -EINVAL;
}

static void *pool_worker(void *arg)
{
    struct io_engine *e = arg;
    pthread_mutex_lock(&e->lock);
    for (;;) {
        struct io_task *t = queue_pop(e);
        if (!t) {
            if (e->stop) break;
            pthread_cond_wait(&e->work, &e->lock);
            continue;
        }
        e->inflight++;
        pthread_mutex_unlock(&e->lock);
        int64_t res = run_task(t);
        t->complete(t, res); /* may free t, may submit more */
        pthread_mutex_lock(&e->lock);
        if (--e->inflight == 0 && !e->head) pthread_cond_broadcast(&e->idle);
    }
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

static int pool_start(struct io_engine *e, char *err, size_t errlen)
{
    for (unsigned i = 0; i < POOL_THREADS; i++) {
        int r = pthread_create(&e->workers[i], NULL, pool_worker, e);
        if (r) {
            snprintf(err, errlen, "cannot start I/O threads: %s", strerror(r));
            return -r;
        }
        e->nworkers++;
    }
    return 0;
}

/* ---- io_uring ---- */

static void uring_prep(struct io_uring_sqe *sqe, struct io_task *t)
{
    int cnt;
    const struct iovec *v;
    switch (t->kind) {
    case IO_READV:
        v = task_segments(t, &cnt);
        io_uring_prep_readv(sqe, t->fd, v, (unsigned)cnt, t->offset + t->xfer);
        break;
    case IO_WRITEV:
        v = task_segments(t, &cnt);
        io_uring_prep_writev(sqe, t->fd, v, (unsigned)cnt, t->offset + t->xfer);
        break;
    case IO_FDATASYNC: io_uring_prep_fsync(sqe, t->fd, IORING_FSYNC_DATASYNC); break;
    case IO_FALLOCATE:
        io_uring_prep_fallocate(sqe, t->fd, t->mode, (off_t)t->offset, (off_t)t->len);
        break;
    case IO_NOP: io_uring_prep_nop(sqe); break;
    }
    io_uring_sqe_set_data(sqe, t);
}

/* Move queued tasks into the ring while it (and the CQ) has room, then tell the kernel.
 * SQEs the kernel did not take stay in the SQ; the completion thread retries them. */
static void uring_flush_locked(struct io_engine *e)
{
    while (e->head && e->inflight < e->max_inflight) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);
        if (!sqe) break;
        uring_prep(sqe, queue_pop(e));
        e->inflight++;
    }
    if (io_uring_sq_ready(&e->ring)) {
        int r;
        do
            r = io_uring_submit(&e->ring);
        while (r == -EINTR);
        if (r < 0) log_debug("io_uring_submit: %s (will retry)", strerror(-r));
    }
}

/* One reaped CQE: true and the result if the task is finished, false if the rest of a short
 * transfer (or a retry) went back into the queue. */
static bool uring_settle(struct io_engine *e, struct io_task *t, int64_t *res_out)
{
    int64_t res = t->cqe_res;
    if (res < 0 && retryable(res) && ++t->retries < MAX_RETRIES) {
        engine_enqueue(e, t);
        return false;
    }
    if ((t->kind == IO_READV || t->kind == IO_WRITEV) && res >= 0) {
        if (res == 0 && t->xfer < t->len) {
            *res_out = -EIO; /* end of file inside the request */
            return true;
        }
        task_advance(t, (uint64_t)res);
        if (t->xfer < t->len) {
            engine_enqueue(e, t);
            return false;
        }
        res = (int64_t)t->xfer;
    }
    *res_out = res;
    return true;
}

/* Take every CQE there is off the ring (e->lock held) as a list of tasks, in order, and count
 * the caller as a reaper. A submitter (stop_at_nop) leaves io_engine_destroy's NOP, and what
 * follows it, to the completion thread; the completion thread sets *quit when it takes it. */
static struct io_task *uring_take_locked(struct io_engine *e, bool stop_at_nop, bool *quit)
{
    struct io_task *batch = NULL, **tailp = &batch;
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&e->ring, head, cqe)
    {
        struct io_task *t = io_uring_cqe_get_data(cqe);
        if (!t) {
            if (stop_at_nop) break;
            *quit = true; /* io_engine_destroy's NOP: everything before it was drained */
            n++;
            continue;
        }
        n++;
        t->cqe_res = cqe->res;
        t->next = NULL;
        *tailp = t;
        tailp = &t->next;
    }
    io_uring_cq_advance(&e->ring, n);
    e->inflight -= n;
    e->reapers++;
    return batch;
}

/* Which thread is running completion callbacks: it does not reap inline again when a callback
 * submits (a chain of resubmissions would nest without bound). */
static __thread bool reaping_here;

/* Run the callbacks of a taken batch with no lock held, then stop counting as a reaper. */
static void uring_complete_batch(struct io_engine *e, struct io_task *batch)
{
    reaping_here = true;
    while (batch) {
        struct io_task *t = batch;
        batch = t->next;
        int64_t res;
        if (uring_settle(e, t, &res)) t->complete(t, res); /* may free t, may submit more */
    }
    reaping_here = false;
    pthread_mutex_lock(&e->lock);
    e->reapers--;
    uring_flush_locked(e);
    uring_wake_locked(e); /* a retry or the rest of a short transfer went out */
    if (!e->inflight && !e->head && !e->reapers) pthread_cond_broadcast(&e->idle);
    pthread_mutex_unlock(&e->lock);
}

static void *uring_cq_thread(void *arg)
{
    struct io_engine *e = arg;
    bool quit = false;
    while (!quit) {
        pthread_mutex_lock(&e->lock);
        /* Nothing in flight: wait here, not in the kernel. A thread waiting in io_uring_enter
         * is woken by every completion the kernel posts, also one a submitter then takes
         * itself (io_engine_submit); that wake-up, an interprocessor interrupt, took a tenth
         * of a hart thread's time at QD1 (in __wake_up, inside the submission). */
        while (!e->inflight && !e->head) {
            e->cq_asleep = true;
            pthread_cond_wait(&e->work, &e->lock);
        }
        e->cq_asleep = false;
        if (io_uring_sq_ready(&e->ring)) uring_flush_locked(e);
        bool stuck = io_uring_sq_ready(&e->ring) > 0;
        pthread_mutex_unlock(&e->lock);

        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = STUCK_RETRY_NS};
        int r = io_uring_wait_cqe_timeout(&e->ring, &cqe, stuck ? &ts : NULL);
        if (r < 0) {
            if (r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
                log_error_ratelimited("io_uring: waiting for completions: %s", strerror(-r));
                usleep(1000);
            }
            continue;
        }

        /* Take the whole batch off the ring first (a submitter may have taken it already),
         * then run callbacks with no lock held. The lock orders the CQ's consumers, and our
         * reads of the tasks after the submitters' writes for tools such as TSan, which do not
         * see the hand-over through the kernel. */
        pthread_mutex_lock(&e->lock);
        struct io_task *batch = uring_take_locked(e, false, &quit);
        pthread_mutex_unlock(&e->lock);
        uring_complete_batch(e, batch);
    }
    return NULL;
}

/* Operations the engine submits; the ring accepts no other (uring_restrict). */
static const int uring_ops[] = {IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_FSYNC,
                                IORING_OP_FALLOCATE, IORING_OP_NOP};
#define N_URING_OPS (sizeof(uring_ops) / sizeof(uring_ops[0]))

/* seccomp does not see io_uring operations (docs/security.md): a ring created disabled gets an
 * allow list of SQE opcodes and no further io_uring_register calls before it is enabled (kernel
 * 5.10, io_uring_register(2) IORING_REGISTER_RESTRICTIONS), so a compromised process cannot use
 * it to open files or sockets behind the filter's back. */
static int uring_restrict(struct io_engine *e)
{
    struct io_uring_restriction res[N_URING_OPS];
    memset(res, 0, sizeof(res));
    for (unsigned i = 0; i < N_URING_OPS; i++) {
        res[i].opcode = IORING_RESTRICTION_SQE_OP;
        res[i].sqe_op = (uint8_t)uring_ops[i];
    }
    /* The raw system call: Debian 12's liburing 2.3 declares io_uring_register_restrictions and
     * io_uring_enable_rings but does not export them. */
    if (syscall(SYS_io_uring_register, e->ring.ring_fd, IORING_REGISTER_RESTRICTIONS, res,
                N_URING_OPS) < 0 ||
        syscall(SYS_io_uring_register, e->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0)
        return -errno;
    return 0;
}

static int uring_start(struct io_engine *e, char *err, size_t errlen)
{
    bool restricted = true;
    int r = io_uring_queue_init(URING_ENTRIES, &e->ring, IORING_SETUP_R_DISABLED);
    if (r == -EINVAL) { /* before 5.10: no disabled rings, no restrictions */
        restricted = false;
        r = io_uring_queue_init(URING_ENTRIES, &e->ring, 0);
    }
    if (r < 0) {
        snprintf(err, errlen, "io_uring is unavailable: %s", strerror(-r));
        return r;
    }
    /* Timed waits must not put SQEs in the ring from the completion thread (EXT_ARG, 5.11). */
    bool ok = e->ring.features & IORING_FEAT_EXT_ARG;
    struct io_uring_probe *p = io_uring_get_probe_ring(&e->ring);
    if (!p)
        ok = false;
    else {
        for (unsigned i = 0; i < N_URING_OPS; i++)
            ok = ok && io_uring_opcode_supported(p, uring_ops[i]);
        io_uring_free_probe(p);
    }
    if (!ok) {
        io_uring_queue_exit(&e->ring);
        snprintf(err, errlen, "io_uring lacks operations vessel needs (kernel too old)");
        return -EOPNOTSUPP;
    }
    if (restricted && (r = uring_restrict(e)) < 0) {
        io_uring_queue_exit(&e->ring);
        snprintf(err, errlen, "cannot restrict the io_uring ring: %s", strerror(-r));
        return r;
    }
    e->max_inflight = e->ring.cq.ring_entries;
    r = pthread_create(&e->cq_thread, NULL, uring_cq_thread, e);
    if (r) {
        io_uring_queue_exit(&e->ring);
        snprintf(err, errlen, "cannot start the I/O completion thread: %s", strerror(r));
        return -r;
    }
    return 0;
}

static void uring_stop(struct io_engine *e)
{
    pthread_mutex_lock(&e->lock);
    struct io_uring_sqe *sqe;
    while (!(sqe = io_uring_get_sqe(&e->ring))) {
        /* Cannot happen once idle (the SQ is empty), but never spin without submitting. */
        io_uring_submit(&e->ring);
    }
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data(sqe, NULL);
    e->inflight++;
    uring_wake_locked(e);
    int r;
    do
        r = io_uring_submit(&e->ring);
    while (r == -EINTR);
    pthread_mutex_unlock(&e->lock);
    pthread_join(e->cq_thread, NULL);
    io_uring_queue_exit(&e->ring);
}

/* ---- common entry points ---- */

int io_engine_create(struct io_engine **out, enum io_engine_kind kind, char *err, size_t errlen)
{
    struct io_engine *e = calloc(1, sizeof(*e));
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->work, NULL);
    pthread_cond_init(&e->idle, NULL);
    int r = -EOPNOTSUPP;
    if (kind != IO_ENGINE_THREADS) {
        char why[160] = "";
        r = uring_start(e, why, sizeof(why));
        if (r == 0)
            e->kind = IO_ENGINE_URING;
        else if (kind == IO_ENGINE_URING)
            snprintf(err, errlen, "VESSEL_IO_ENGINE=io_uring: %s", why);
        else
            log_info("%s; using I/O threads", why);
    }
    if (r < 0 && kind != IO_ENGINE_URING) {
        e->kind = IO_ENGINE_THREADS;
        r = pool_start(e, err, errlen);
        if (r < 0) {
            pthread_mutex_lock(&e->lock);
            e->stop = true;
            pthread_cond_broadcast(&e->work);
            pthread_mutex_unlock(&e->lock);
            for (unsigned i = 0; i < e->nworkers; i++)
                pthread_join(e->workers[i], NULL);
        }
    }
    if (r < 0) {
        pthread_cond_destroy(&e->idle);
        pthread_cond_destroy(&e->work);
        pthread_mutex_destroy(&e->lock);
        free(e);
        return r;
    }
    *out = e;
    return 0;
}

void io_engine_submit(struct io_engine *e, struct io_task *t)
{
    t->xfer = 0;
    t->retries = 0;
    task_advance(t, 0); /* leading empty segments would read as "no progress" */
    if (e->kind != IO_ENGINE_URING) {
        engine_enqueue(e, t);
        return;
    }
    /* io_uring does a buffered read whose data is in the page cache (and much else) within
     * io_uring_enter: its CQE is there when the submission returns. Completing it here saves
     * the hand-over to the completion thread, whose wake-up costs more than the read (on a
     * guest's QD1 4K reads, tens of microseconds of each request). */
    pthread_mutex_lock(&e->lock);
    queue_push(e, t);
    uring_flush_locked(e);
    struct io_task *batch = NULL;
    bool mine = !reaping_here && io_uring_cq_ready(&e->ring) > 0;
    if (mine) batch = uring_take_locked(e, true, &(bool){false});
    uring_wake_locked(e); /* what did not finish at once: the completion thread waits for it */
    pthread_mutex_unlock(&e->lock);
    if (mine) uring_complete_batch(e, batch);
}

void io_engine_destroy(struct io_engine *e)
{
    if (!e) return;
    pthread_mutex_lock(&e->lock);
    while (e->head || e->inflight || e->reapers)
        pthread_cond_wait(&e->idle, &e->lock);
    pthread_mutex_unlock(&e->lock);
    if (e->kind == IO_ENGINE_URING) {
        uring_stop(e);
    } else {
        pthread_mutex_lock(&e->lock);
        e->stop = true;
        pthread_cond_broadcast(&e->work);
        pthread_mutex_unlock(&e->lock);
        for (unsigned i = 0; i < e->nworkers; i++)
            pthread_join(e->workers[i], NULL);
    }
    pthread_cond_destroy(&e->idle);
    pthread_cond_destroy(&e->work);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

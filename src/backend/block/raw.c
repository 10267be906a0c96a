/* Raw disk images: the guest's sectors are the file's bytes (block.h). */
#include "backend/block/block.h"
#include "backend/block/driver.h"
#include "backend/block/io_engine.h"
#include "backend/block/raw.h"
#include "util/clock.h"
#include "util/log.h"
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define SECTOR        512u
#define ZERO_BUF_SIZE (64u << 10)
#define ZERO_SEGS     16u /* one zero-filling write: 16 x 64 KiB = 1 MiB */
#define CLOSE_WAIT_MS 200 /* blk_close: how long to wait for in-flight requests */

struct raw_backend {
    struct blk_backend base; /* first: the generic handle (driver.h) */
    int fd;
    int dfd;                       /* cache=none: the same file with O_DIRECT; else -1 */
    unsigned dio_mem_align;        /* cache=none: buffer address alignment */
    unsigned dio_off_align;        /* cache=none: offset and length alignment */
    atomic_uint_fast64_t buffered; /* cache=none: requests that had to use the page cache */
    atomic_uint_fast64_t direct;   /* cache=none: requests done with O_DIRECT */
    uint64_t size;
    bool readonly;
    char *path;
    struct io_engine *eng;

    pthread_mutex_t lock;
    pthread_cond_t idle;
    unsigned inflight; /* requests accepted whose done() has not returned yet */

    atomic_bool no_punch; /* the filesystem refused to punch holes: write zeroes instead */
    atomic_bool debug_refuse_punch; /* tests: act as if fallocate said EOPNOTSUPP */
    atomic_int debug_flush_err;     /* tests: the next fdatasync "fails" with this */
    atomic_int flush_err; /* first failed flush: every later flush reports it (see blk_submit) */
    /* Test hook VESSEL_TEST_BLOCK_STALL=1 (read once at blk_open): requests are accepted and
     * never completed, as on a hung NFS server. Kept on `stalled` (under lock), reachable:
     * blk_close abandons the backend with them. */
    bool stall;
    struct raw_req *stalled;
    struct raw_backend *next_abandoned;
};

/* One accepted request: the engine task, a private copy of the caller's iovec (the engine
 * advances it on short transfers), and the progress of a zero-filling WRITE_ZEROES. */
struct raw_req {
    struct io_task task; /* first: the engine hands it back */
    struct raw_backend *b;
    struct blk_req *r;
    uint64_t zoff, zleft;
    bool punch; /* a DISCARD/WRITE_ZEROES that tried to punch (or, in tests, pretended to) */
    struct raw_req *next_stalled;
    bool fill_now; /* stalled: starts by zero-filling (blk_submit's fill_now) */
    struct iovec iov[];
};

static struct raw_backend *raw_of(struct blk_backend *bb)
{
    return bb->drv == &raw_driver ? (struct raw_backend *)bb : NULL;
}

/* Only ever read (it is the source of zero-filling writes), never written. */
static char zero_buf[ZERO_BUF_SIZE];

/* Backends blk_close gave up waiting for (their requests never completed): never freed, so a
 * late completion finds valid memory; listed so leak checkers see them as reachable. */
static pthread_mutex_t abandoned_lock = PTHREAD_MUTEX_INITIALIZER;
static struct raw_backend *abandoned;

/* Open file description locks (F_OFD_SETLK): they belong to this open() of the image, not
 * to the process, so closing another descriptor of the same file (anywhere in vessel) keeps
 * them, and two opens in one process conflict with each other as two processes would. */
static int lock_image(int fd, bool readonly)
{
    struct flock fl = {.l_type = readonly ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET};
    return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* Does /proc/PID/fdinfo hold a lock line for dev:ino? Lines read "lock:\t1: OFDLCK ADVISORY
 * WRITE -1 fe:00:1234 0 EOF" (the pid field is -1 for OFD locks, hence this search). */
static int fdinfo_lock(const char *pid, const char *devino, bool *write)
{
    char dir[300];
    snprintf(dir, sizeof(dir), "/proc/%.255s/fdinfo", pid);
    DIR *d = opendir(dir);
    if (!d) return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char p[600];
        snprintf(p, sizeof(p), "%s/%.255s", dir, e->d_name);
        FILE *f = fopen(p, "re");
        if (!f) continue;
        char line[256];
        while (fgets(line, sizeof(line), f))
            if (!strncmp(line, "lock:", 5) && strstr(line, devino)) {
                *write = strstr(line, " WRITE ") != NULL;
                found = 1;
                break;
            }
        fclose(f);
    }
    closedir(d);
    return found;
}

int blk_lock_holder(int fd, long *pid, bool *write)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET}; /* conflicts with any lock */
    *pid = 0;
    if (fcntl(fd, F_OFD_GETLK, &fl) < 0) return -errno;
    if (fl.l_type == F_UNLCK) return 0;
    *write = fl.l_type == F_WRLCK;
    if (fl.l_pid > 0) { /* a POSIX lock (an older vessel): the kernel names it */
        *pid = fl.l_pid;
        return 1;
    }
    /* OFD locks have no owning process (l_pid = -1): look for the lock among the open files
     * of the processes we can see. */
    struct stat st;
    if (fstat(fd, &st) < 0) return 1;
    char devino[64];
    snprintf(devino, sizeof(devino), " %02x:%02x:%llu ", major(st.st_dev), minor(st.st_dev),
             (unsigned long long)st.st_ino);
    DIR *d = opendir("/proc");
    if (!d) return 1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        if (fdinfo_lock(e->d_name, devino, write)) {
            *pid = strtol(e->d_name, NULL, 10);
            break;
        }
    }
    closedir(d);
    return 1;
}

/* A conflicting lock: name the holder. Returns 0 if the holder has let go meanwhile (try
 * again), else -EBUSY with the message. */
static int lock_conflict(int fd, const char *path, char *err, size_t errlen)
{
    long pid;
    bool write = false;
    int r = blk_lock_holder(fd, &pid, &write);
    if (r == 0) return 0;
    if (pid == (long)getpid())
        snprintf(err, errlen,
                 "disk %s is already open in this vessel (the same image given twice?)", path);
    else if (pid > 0)
        snprintf(err, errlen, "disk %s is in use by process %ld (another vessel?)", path, pid);
    else
        snprintf(err, errlen, "disk %s is in use by another process (another vessel?)", path);
    return -EBUSY;
}

static int fail_msg(char *err, size_t errlen, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_msg(char *err, size_t errlen, int r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return r;
}

static int check_geometry(const char *path, const struct stat *st, char *err, size_t errlen)
{
    if (S_ISDIR(st->st_mode))
        return fail_msg(err, errlen, -EISDIR, "disk %s is a directory, not a disk image", path);
    if (!S_ISREG(st->st_mode))
        return fail_msg(err, errlen, -EINVAL, "disk %s is not a regular file (raw images only)",
                        path);
    if (st->st_size < (off_t)SECTOR)
        return fail_msg(err, errlen, -EINVAL,
                        "disk %s is %lld bytes: an image holds at least one 512-byte sector "
                        "(make one with vessel disk create)",
                        path, (long long)st->st_size);
    if (st->st_size % SECTOR)
        return fail_msg(err, errlen, -EINVAL,
                        "disk %s is %lld bytes, not a multiple of 512 (the sector size): "
                        "round it up with truncate -s",
                        path, (long long)st->st_size);
    return 0;
}

static int open_image(const char *path, bool readonly, char *err, size_t errlen)
{
    /* O_NONBLOCK: a FIFO given as an image must be refused, not wait for a writer. Cleared
     * once the file is known to be regular (check_geometry). */
    int fd =
        blk_file_open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd >= 0) return fd;
    int e = -fd;
    if (e == EXDEV && blk_file_brokered())
        return fail_msg(err, errlen, -e,
                        "disk %s: the sandboxed VM can only open images in the directories of its "
                        "drives at boot (docs/security.md)",
                        path);
    if (e == ENOENT)
        return fail_msg(err, errlen, -e, "disk %s: no such file (vessel disk create makes one)",
                        path);
    if (e == EISDIR)
        return fail_msg(err, errlen, -e, "disk %s is a directory, not a disk image", path);
    if ((e == EACCES || e == EROFS || e == EPERM) && !readonly)
        return fail_msg(err, errlen, -e, "disk %s: cannot open for writing: %s", path, strerror(e));
    return fail_msg(err, errlen, -e, "disk %s: %s", path, strerror(e));
}

/* cache=none: a second descriptor of the very file fd refers to (reopened through
 * /proc/self/fd, so a path swapped meanwhile cannot slip in), with O_DIRECT, and the
 * alignment direct I/O needs on it. */
static int open_direct(int fd, bool readonly, const char *path, unsigned *mem_align,
                       unsigned *off_align, char *err, size_t errlen)
{
    int dfd = blk_file_reopen(fd, (readonly ? O_RDONLY : O_RDWR) | O_DIRECT | O_CLOEXEC | O_NOCTTY);
    if (dfd < 0) {
        int e = -dfd;
        if (e == EINVAL)
            return fail_msg(err, errlen, -e,
                            "disk %s: its filesystem does not support direct I/O "
                            "(cache=none); leave out cache=none",
                            path);
        if (e == ENOENT)
            return fail_msg(err, errlen, -e, "disk %s: cache=none needs /proc mounted", path);
        return fail_msg(err, errlen, -e, "disk %s: cannot open for direct I/O: %s", path,
                        strerror(e));
    }
    *mem_align = *off_align = 4096; /* safe for every block device if statx cannot tell */
#ifdef STATX_DIOALIGN
    struct statx sx;
    if (statx(dfd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 && (sx.stx_mask & STATX_DIOALIGN) &&
        sx.stx_dio_mem_align && sx.stx_dio_offset_align) {
        *mem_align = sx.stx_dio_mem_align;
        *off_align = sx.stx_dio_offset_align;
    }
#endif
    return dfd;
}

int raw_open(struct blk_backend **out, const char *path, const struct blk_open_opts *o, char *err,
             size_t errlen)
{
    bool readonly = o && o->readonly;
    bool direct = o && o->direct;
    unsigned mem_align = 0, off_align = 0;
    int dfd = -1;
    enum io_engine_kind kind;
    int r = io_engine_kind_from_env(&kind, err, errlen);
    if (r < 0) return r;
    if (blk_file_brokered()) kind = IO_ENGINE_THREADS; /* no io_uring set-up in the sandbox */

    struct stat st;
    int fd = open_image(path, readonly, err, errlen);
    if (fd < 0) return fd;
    if (fstat(fd, &st) < 0) {
        r = fail_msg(err, errlen, -errno, "disk %s: %s", path, strerror(errno));
    } else {
        r = check_geometry(path, &st, err, errlen);
        if (!r && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
            r = fail_msg(err, errlen, -errno, "disk %s: %s", path, strerror(errno));
        if (!r && direct) {
            dfd = open_direct(fd, readonly, path, &mem_align, &off_align, err, errlen);
            if (dfd < 0) r = dfd;
        }
    }
    if (!r) {
        for (int tries = 0;; tries++) {
            r = lock_image(fd, readonly);
            if (r != -EACCES && r != -EAGAIN) break;
            r = lock_conflict(fd, path, err, errlen);
            if (r < 0) break;
            if (tries == 3) { /* locks keep coming and going: someone is busy with it */
                r = fail_msg(err, errlen, -EBUSY,
                             "disk %s is in use by another process (another vessel?)", path);
                break;
            }
        }
        if (r < 0 && r != -EBUSY)
            r = fail_msg(err, errlen, r, "disk %s: cannot lock it against other users: %s", path,
                         strerror(-r));
    }
    struct raw_backend *b = NULL;
    if (!r) {
        b = calloc(1, sizeof(*b));
        if (b) b->path = strdup(path);
        if (!b || !b->path) r = fail_msg(err, errlen, -ENOMEM, "disk %s: out of memory", path);
    }
    if (!r) r = io_engine_create(&b->eng, kind, err, errlen);
    if (r < 0) {
        if (b) free(b->path);
        free(b);
        if (dfd >= 0) close(dfd);
        close(fd);
        return r;
    }
    b->fd = fd;
    b->dfd = dfd;
    b->dio_mem_align = mem_align;
    b->dio_off_align = off_align;
    atomic_init(&b->buffered, 0);
    atomic_init(&b->direct, 0);
    b->size = (uint64_t)st.st_size;
    b->readonly = readonly;
    b->base.drv = &raw_driver;
    b->base.readonly = readonly;
    pthread_mutex_init(&b->lock, NULL);
    cond_init_monotonic(&b->idle); /* blk_close waits against CLOCK_MONOTONIC */
    const char *stall = getenv("VESSEL_TEST_BLOCK_STALL");
    b->stall = stall && !strcmp(stall, "1");
    if (b->stall) log_warn("disk %s: VESSEL_TEST_BLOCK_STALL=1: requests never complete", path);
    log_debug("disk %s: raw, %llu bytes, %s, engine %s, cache=%s", path,
              (unsigned long long)b->size, readonly ? "read-only" : "read-write",
              io_engine_name(b->eng), direct ? "none" : "writeback");
    if (direct)
        log_debug("disk %s: direct I/O alignment: memory %u, offset/length %u", path, mem_align,
                  off_align);
    *out = &b->base;
    return 0;
}

static void raw_close(struct blk_backend *bb)
{
    struct raw_backend *b = (struct raw_backend *)bb;
    if (!b) return;
    /* Bounded: a request that never completes (hung storage, the stall hook) must not keep
     * vessel from exiting. Then the backend is abandoned whole: descriptor, lock and engine
     * stay as they are until the process exits, and a late completion finds them valid. */
    struct timespec ts = monotonic_deadline_ms(CLOSE_WAIT_MS);
    pthread_mutex_lock(&b->lock);
    while (b->inflight)
        if (pthread_cond_timedwait(&b->idle, &b->lock, &ts) == ETIMEDOUT) break;
    unsigned left = b->inflight;
    pthread_mutex_unlock(&b->lock);
    if (left) {
        log_warn("disk %s: %u request(s) did not complete within %u ms of closing; abandoned",
                 b->path, left, CLOSE_WAIT_MS);
        pthread_mutex_lock(&abandoned_lock);
        b->next_abandoned = abandoned;
        abandoned = b;
        pthread_mutex_unlock(&abandoned_lock);
        return;
    }
    io_engine_destroy(b->eng);
    if (b->dfd >= 0)
        log_debug("disk %s: cache=none: %llu reads/writes direct, %llu through the page cache",
                  b->path, (unsigned long long)atomic_load(&b->direct),
                  (unsigned long long)atomic_load(&b->buffered));

    if (b->dfd >= 0) close(b->dfd);
    close(b->fd); /* drops the lock (only this descriptor's: an OFD lock) */

    pthread_cond_destroy(&b->idle);
    pthread_mutex_destroy(&b->lock);
    free(b->path);
    free(b);
}

static int raw_refresh_size(struct blk_backend *bb, char *err, size_t errlen)
{
    struct raw_backend *b = (struct raw_backend *)bb;
    struct stat st;
    if (fstat(b->fd, &st) < 0)
        return fail_msg(err, errlen, -errno, "cannot stat %s: %s", b->path, strerror(errno));
    int r = check_geometry(b->path, &st, err, errlen);
    if (r < 0) return r;
    __atomic_store_n(&b->size, (uint64_t)st.st_size, __ATOMIC_RELAXED);
    return 0;
}

static bool raw_same_file(const struct blk_backend *bb, const char *path)
{
    const struct raw_backend *b = (const struct raw_backend *)bb;
    struct stat a, p;
    /* through the broker when sandboxed: the process may not stat paths either */
    int fd = blk_file_open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return false;
    bool same =
        fstat(b->fd, &a) == 0 && fstat(fd, &p) == 0 && a.st_dev == p.st_dev && a.st_ino == p.st_ino;
    close(fd);
    return same;
}

static uint64_t raw_size(const struct blk_backend *bb)
{
    return ((const struct raw_backend *)bb)->size;
}
static bool raw_direct(const struct blk_backend *bb)
{
    return ((const struct raw_backend *)bb)->dfd >= 0;
}
static uint64_t raw_buffered_fallbacks(const struct blk_backend *bb)
{
    return atomic_load(&((struct raw_backend *)bb)->buffered);
}
static const char *raw_engine_name(const struct blk_backend *bb)
{
    return io_engine_name(((const struct raw_backend *)bb)->eng);
}

void blk_debug_disable_punch(struct blk_backend *bb)
{
    struct raw_backend *b = raw_of(bb);
    if (!b) return; /* not a raw image */
    atomic_store(&b->debug_refuse_punch, true);
}
void blk_debug_fail_next_flush(struct blk_backend *bb, int err)
{
    struct raw_backend *b = raw_of(bb);
    if (!b) return; /* not a raw image */
    atomic_store(&b->debug_flush_err, err);
}

static void zero_fill_next(struct raw_req *q);

void blk_debug_release_stalled(struct blk_backend *bb)
{
    struct raw_backend *b = raw_of(bb);
    if (!b) return; /* not a raw image */
    pthread_mutex_lock(&b->lock);
    b->stall = false;
    struct raw_req *q = b->stalled;
    b->stalled = NULL;
    pthread_mutex_unlock(&b->lock);
    while (q) {
        struct raw_req *next = q->next_stalled;
        if (q->fill_now)
            zero_fill_next(q);
        else
            io_engine_submit(b->eng, &q->task);
        q = next;
    }
}

static void req_finish(struct raw_req *q, int64_t res)
{
    struct raw_backend *b = q->b;
    struct blk_req *r = q->r;
    free(q);
    r->done(r, res);
    pthread_mutex_lock(&b->lock);
    if (--b->inflight == 0) pthread_cond_broadcast(&b->idle);
    pthread_mutex_unlock(&b->lock);
}

/* The next (at most 1 MiB) zero-filling write of a WRITE_ZEROES. */
static void zero_fill_next(struct raw_req *q)
{
    uint64_t chunk = q->zleft < (uint64_t)ZERO_SEGS * ZERO_BUF_SIZE
                         ? q->zleft
                         : (uint64_t)ZERO_SEGS * ZERO_BUF_SIZE;
    int n = 0;
    for (uint64_t left = chunk; left; n++) {
        size_t seg = left < ZERO_BUF_SIZE ? (size_t)left : ZERO_BUF_SIZE;
        q->iov[n] = (struct iovec){.iov_base = zero_buf, .iov_len = seg};
        left -= seg;
    }
    q->task.kind = IO_WRITEV;
    q->task.offset = q->zoff;
    q->task.iov = q->iov;
    q->task.iovcnt = n;
    q->task.len = chunk;
    io_engine_submit(q->b->eng, &q->task);
}

static bool punch_refused(int64_t res)
{
    return res == -EOPNOTSUPP || res == -ENOSYS;
}

static void task_done(struct io_task *t, int64_t res)
{
    struct raw_req *q = (struct raw_req *)t;
    struct raw_backend *b = q->b;
    bool punched = q->punch;
    q->punch = false;
    if (punched && atomic_load(&b->debug_refuse_punch)) res = -EOPNOTSUPP;
    switch (q->r->op) {
    case BLK_FLUSH:
        if (res == 0 && atomic_load(&b->debug_flush_err))
            res = atomic_exchange(&b->debug_flush_err, 0);
        /* After a failed fdatasync the kernel may have dropped the dirty pages and the next
         * fdatasync succeeds: never let a later flush tell the guest its data is safe. */
        if (res < 0) {
            int expect = 0;
            if (atomic_compare_exchange_strong(&b->flush_err, &expect, (int)res))
                log_error("disk %s: flush failed: %s; every later flush will fail too", b->path,
                          strerror((int)-res));
        } else if (atomic_load(&b->flush_err)) {
            res = atomic_load(&b->flush_err);
        }
        break;
    case BLK_DISCARD:
        /* virtio-blk discard is a hint (the device MAY deallocate): where holes cannot be
         * made, doing nothing is a correct answer. */
        if (punched && punch_refused(res)) {
            atomic_store(&b->no_punch, true);
            res = 0;
        }
        break;
    case BLK_WRITE_ZEROES:
        if (punched && punch_refused(res)) {
            if (!atomic_exchange(&b->no_punch, true))
                log_info("disk %s: the filesystem cannot punch holes; writing zeroes instead",
                         b->path);
            zero_fill_next(q);
            return;
        }
        if (t->kind == IO_WRITEV) {
            if (res < 0) {
                break;
            }
            q->zoff += t->len;
            q->zleft -= t->len;
            if (q->zleft) {
                zero_fill_next(q);
                return;
            }
            res = 0;
        }
        break;
    default: break;
    }
    req_finish(q, res);
}

/* cache=none: can this read/write go to the O_DIRECT descriptor as it is? */
static bool dio_aligned(const struct raw_backend *b, const struct blk_req *r)
{
    uint64_t ma = b->dio_mem_align, oa = b->dio_off_align;
    if (r->offset % oa) return false;
    for (int i = 0; i < r->iovcnt; i++)
        if ((uintptr_t)r->iov[i].iov_base % ma || r->iov[i].iov_len % oa) return false;
    return true;
}

/* offset+len inside the image, without overflowing. */
static bool in_range(const struct raw_backend *b, uint64_t off, uint64_t len)
{
    return off <= b->size && len <= b->size - off;
}

static int raw_submit(struct blk_backend *bb, struct blk_req *r)
{
    struct raw_backend *b = (struct raw_backend *)bb;
    if (!b || !r || !r->done) return -EINVAL;
    uint64_t len = 0;
    int nseg = 0;
    bool fill_now = false;
    switch (r->op) {
    case BLK_WRITE:
        if (b->readonly) return -EROFS;
        /* fallthrough */
    case BLK_READ:
        if (r->iovcnt < 0 || r->iovcnt > IOV_MAX || (r->iovcnt && !r->iov)) return -EINVAL;
        for (int i = 0; i < r->iovcnt; i++) {
            if (r->iov[i].iov_len > b->size - len)
                return -EINVAL; /* also catches a sum that would overflow */
            len += r->iov[i].iov_len;
        }
        if (!in_range(b, r->offset, len)) return -EINVAL;
        nseg = r->iovcnt;
        break;
    case BLK_FLUSH: break;
    case BLK_DISCARD:
    case BLK_WRITE_ZEROES:
        if (b->readonly) return -EROFS;
        if (!in_range(b, r->offset, r->len)) return -EINVAL;
        len = r->len;
        nseg = r->op == BLK_WRITE_ZEROES ? (int)ZERO_SEGS : 0;
        break;
    default: return -EOPNOTSUPP;
    }

    struct raw_req *q = malloc(sizeof(*q) + (size_t)nseg * sizeof(struct iovec));
    if (!q) return -ENOMEM;
    memset(&q->task, 0, sizeof(q->task));
    q->b = b;
    q->r = r;
    q->zoff = q->zleft = 0;
    q->punch = false;
    q->task.fd = b->fd;
    q->task.complete = task_done;
    q->task.offset = r->offset;
    q->task.len = len;
    switch (r->op) {
    case BLK_READ:
    case BLK_WRITE:
        if (nseg) memcpy(q->iov, r->iov, (size_t)nseg * sizeof(struct iovec));
        q->task.kind = r->op == BLK_READ ? IO_READV : IO_WRITEV;
        if (b->dfd >= 0) {
            if (dio_aligned(b, r)) {
                q->task.fd = b->dfd;
                atomic_fetch_add_explicit(&b->direct, 1, memory_order_relaxed);
            } else if (atomic_fetch_add(&b->buffered, 1) == 0) {
                log_debug("disk %s: a request not aligned for direct I/O goes through the "
                          "page cache (offset %llu)",
                          b->path, (unsigned long long)r->offset);
            }
        }
        q->task.iov = q->iov;
        q->task.iovcnt = nseg;
        break;
    case BLK_FLUSH: q->task.kind = IO_FDATASYNC; break;
    default:
        /* DISCARD, WRITE_ZEROES: fallocate(2) refuses a zero length, so complete it as a NOP. */
        q->task.kind = len ? IO_FALLOCATE : IO_NOP;
        q->task.mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
        q->zoff = r->offset; /* where zero-filling starts if punching is refused */
        q->zleft = len;
        q->punch = len != 0;
        if (q->punch && atomic_load(&b->debug_refuse_punch))
            q->task.kind = IO_NOP; /* tests: the filesystem "refuses"; leave the data alone */
        if (len && atomic_load(&b->no_punch)) {
            q->punch = false;
            if (r->op == BLK_DISCARD)
                q->task.kind = IO_NOP; /* a hint we cannot act on */
            else
                fill_now = true;
        }
        break;
    }

    pthread_mutex_lock(&b->lock);
    b->inflight++;
    if (b->stall) { /* test hook: accepted, never completed */
        q->fill_now = fill_now;
        q->next_stalled = b->stalled;
        b->stalled = q;
        pthread_mutex_unlock(&b->lock);
        return 0;
    }
    pthread_mutex_unlock(&b->lock);
    if (fill_now)
        zero_fill_next(q);
    else
        io_engine_submit(b->eng, &q->task);
    return 0;
}

const struct blk_driver raw_driver = {
    .name = "raw",
    .close = raw_close,
    .refresh_size = raw_refresh_size,
    .same_file = raw_same_file,
    .size = raw_size,
    .submit = raw_submit,
    .direct = raw_direct,
    .buffered_fallbacks = raw_buffered_fallbacks,
    .engine_name = raw_engine_name,
};

int blk_create_raw(const char *path, uint64_t size, char *err, size_t errlen)
{
    if (size < SECTOR || size % SECTOR)
        return fail_msg(err, errlen, -EINVAL,
                        "%llu bytes: a disk size must be a non-zero multiple of 512",
                        (unsigned long long)size);
    if (size > (uint64_t)INT64_MAX)
        return fail_msg(err, errlen, -EFBIG, "%llu bytes: too large for a file",
                        (unsigned long long)size);
    /* O_EXCL: never overwrite, not even through a symlink. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        if (e == EEXIST)
            return fail_msg(err, errlen, -e,
                            "%s already exists (vessel disk create never "
                            "overwrites; remove it or pick another name)",
                            path);
        return fail_msg(err, errlen, -e, "cannot create %s: %s", path, strerror(e));
    }
    int r = 0;
    if (ftruncate(fd, (off_t)size) < 0) {
        int e = errno;
        if (e == EFBIG || e == EINVAL)
            r = fail_msg(err, errlen, -EFBIG,
                         "%s: %llu bytes is more than this filesystem "
                         "allows in one file",
                         path, (unsigned long long)size);
        else
            r = fail_msg(err, errlen, -e, "cannot size %s: %s", path, strerror(e));
    } else if (fsync(fd) < 0) {
        r = fail_msg(err, errlen, -errno, "cannot write %s: %s", path, strerror(errno));
    }
    close(fd);
    if (r < 0) unlink(path); /* ours: O_EXCL created it */
    return r;
}

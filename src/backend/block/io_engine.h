/* I/O engines for block backends (internal to src/backend/block). An engine runs io_tasks
 * asynchronously and calls each task's complete() exactly once: on an engine thread, or (io_uring,
 * when the kernel finished the transfer within the submission, as it does a buffered read from
 * the page cache) on the submitting thread before io_engine_submit returns. So a submitter must
 * hold no lock that complete() takes.
 * Reads and writes are completed in full: a short transfer is resubmitted for the rest, and
 * one that makes no progress (end of file) fails with -EIO rather than passing as success.
 * Two engines: io_uring (one ring and one completion thread per engine) and a pool of worker
 * threads doing preadv/pwritev/fdatasync/fallocate. io_engine_submit() never blocks for long:
 * what the ring cannot take yet waits in a queue inside the engine. */
#ifndef VESSEL_BACKEND_BLOCK_IO_ENGINE_H
#define VESSEL_BACKEND_BLOCK_IO_ENGINE_H
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

enum io_kind { IO_READV, IO_WRITEV, IO_FDATASYNC, IO_FALLOCATE, IO_NOP };

struct io_task {
    enum io_kind kind;
    int fd;
    uint64_t offset;   /* READV/WRITEV/FALLOCATE */
    struct iovec *iov; /* READV/WRITEV; the engine advances it past what was transferred */
    int iovcnt;
    uint64_t len; /* READV/WRITEV: sum of iov; FALLOCATE: length */
    int mode;     /* FALLOCATE */
    /* res: bytes for READV/WRITEV (== len), 0 for the others, or -errno. May free the task. */
    void (*complete)(struct io_task *t, int64_t res);

    /* engine-private; io_engine_submit() initialises them */
    uint64_t xfer; /* bytes transferred so far */
    unsigned retries;
    int32_t cqe_res;
    struct iovec one; /* io_engine_debug_max_xfer: the clipped segment */
    struct io_task *next;
};

enum io_engine_kind { IO_ENGINE_AUTO, IO_ENGINE_URING, IO_ENGINE_THREADS };

struct io_engine;

/* VESSEL_IO_ENGINE: unset or empty = AUTO, "io_uring", "threads"; -EINVAL and a message for
 * anything else. */
int io_engine_kind_from_env(enum io_engine_kind *k, char *err, size_t errlen);
/* AUTO: io_uring if the kernel offers it (and the operations we need), else threads.
 * URING fails (-errno and a message) where io_uring is unavailable. */
int io_engine_create(struct io_engine **out, enum io_engine_kind kind, char *err, size_t errlen);
void io_engine_submit(struct io_engine *e, struct io_task *t);
/* Waits until every submitted task has completed, then stops the engine's threads. Must not be
 * called from a complete() callback. */
void io_engine_destroy(struct io_engine *e);
const char *io_engine_name(const struct io_engine *e);

/* Tests only: when non-zero, every read/write is issued for at most this many bytes of its
 * first remaining segment, so the short-transfer path runs on every request. */
extern volatile size_t io_engine_debug_max_xfer;
#endif

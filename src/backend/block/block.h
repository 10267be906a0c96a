/* Block backends: what a virtio-blk device talks to on the host. A device model never opens
 * files itself (DESIGN.md). Requests are asynchronous: blk_submit() never blocks the caller
 * (a hart thread) and each request completes exactly once, on an I/O engine thread, through
 * its done() callback. Several requests may be in flight at once.
 * I/O engine: io_uring (liburing) with a completion thread; a thread pool where io_uring is
 * unavailable or VESSEL_IO_ENGINE=threads is set (tests force it that way). */
#ifndef VESSEL_BACKEND_BLOCK_H
#define VESSEL_BACKEND_BLOCK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

enum blk_op { BLK_READ, BLK_WRITE, BLK_FLUSH, BLK_DISCARD, BLK_WRITE_ZEROES };

struct blk_req {
    enum blk_op op;
    uint64_t offset;   /* bytes; READ/WRITE/DISCARD/WRITE_ZEROES */
    uint64_t len;      /* bytes; DISCARD/WRITE_ZEROES (READ/WRITE: sum of iov) */
    struct iovec *iov; /* READ/WRITE; valid until done() */
    int iovcnt;
    /* Called once, on an I/O thread: result 0 (or bytes for READ/WRITE) or -errno. */
    void (*done)(struct blk_req *r, int64_t result);
    void *opaque;
};

struct blk_backend;

/* Image formats. AUTO: qcow2 if the file starts with its magic, else raw. */
enum blk_format { BLK_FMT_AUTO, BLK_FMT_RAW, BLK_FMT_QCOW2 };

struct blk_open_opts {
    bool readonly;
    enum blk_format format; /* format=; zero (AUTO) probes */
    /* cache=none: reads and writes bypass the host page cache (O_DIRECT on a second
     * descriptor of the same file). A request whose offset, lengths or buffers the filesystem
     * cannot take directly (statx STATX_DIOALIGN; 4096 if unknown) goes through the page cache
     * instead, so the guest never sees EINVAL. FLUSH is still fdatasync: O_DIRECT does not
     * make data durable by itself (device caches, file metadata). Refused with a clear message
     * where the filesystem has no direct I/O (e.g. some tmpfs). */
    bool direct;
};

/* Open an image: qcow2 (see qcow2.h) or raw, as o->format says or as probed. A probed raw
 * image refuses guest writes that would put the qcow2 magic at its start (the next open would
 * take a guest-written header as the image's, backing file name included); format=raw lifts
 * that. The rest of this comment is about raw images; qcow2 ones follow the same rules for
 * locks, readonly and requests, and open their backing files read-only with shared locks.
 * Open a raw image. Writable images get an exclusive lock, read-only ones a shared lock,
 * both open file description locks (F_OFD_SETLK) over the whole file: they belong to this
 * open, so no other close() in vessel drops them, and they conflict between two opens in one
 * process as between two processes. So any number of read-only users (in this process or
 * others), or one writer. A conflict fails with -EBUSY and a one-line message naming the
 * holder's pid where it can be found (blk_lock_holder), "already open in this vessel" if it
 * is this process.
 * Refuses directories, images smaller than one 512-byte sector and sizes that are not a
 * multiple of 512 (message says so), and anything but regular files.
 * The environment variable VESSEL_IO_ENGINE (io_uring, threads) picks the engine; another
 * value fails with -EINVAL. Test hook: VESSEL_TEST_BLOCK_STALL=1 (read here, once) makes
 * every request of this backend be accepted and never complete (a hung disk), for the tests
 * that stop a VM under it. Returns 0 or -errno with a one-line message in err. */
int blk_open(struct blk_backend **out, const char *path, const struct blk_open_opts *o, char *err,
             size_t errlen);
/* Waits for in-flight requests, at most 200 ms: requests that have not completed by then are
 * abandoned with the backend (descriptor, lock and threads stay until the process exits; a
 * warning says so), so a hung disk never keeps vessel from exiting. */
void blk_close(struct blk_backend *b);
/* Who holds a lock on the file open as fd: 1 with *write and *pid (0 if the holder cannot be
 * named: OFD locks carry no pid, so it is looked up in /proc/PID/fdinfo of the processes we can
 * see), 0 if nobody, -errno. */
int blk_lock_holder(int fd, long *pid, bool *write);
uint64_t blk_size(const struct blk_backend *b);
/* Read the image's size again (it was resized on the host: PATCH /drives with the same path).
 * The caller guarantees nothing is submitted meanwhile (vblk_swap_backend). 0, or -errno with
 * a message (the new size is not a non-zero multiple of 512: the old size stays). */
int blk_refresh_size(struct blk_backend *b, char *err, size_t errlen);
/* Whether path names the file this backend has open (same device and inode). */
bool blk_same_file(const struct blk_backend *b, const char *path);
bool blk_readonly(const struct blk_backend *b);
/* Submit; returns 0 (done() will be called) or -errno (done() will not be called):
 * -EINVAL for a range outside the image (or overflowing) or more than IOV_MAX segments,
 * -EROFS for WRITE/DISCARD/WRITE_ZEROES on a read-only image.
 * READ/WRITE complete in full (short transfers are resubmitted) or fail.
 * FLUSH is fdatasync; once one has failed, every later FLUSH fails too (the kernel may have
 * dropped the unwritten data). DISCARD punches a hole (FALLOC_FL_PUNCH_HOLE|KEEP_SIZE), and
 * succeeds doing nothing where the filesystem cannot punch holes (it is a hint);
 * WRITE_ZEROES punches a hole too (reads back zeroes), falling back to writing zeroes.
 * done() runs on an engine thread, or on the caller's before blk_submit returns (io_uring
 * finished the transfer within the submission: data in the page cache), so the caller holds no
 * lock done() takes; done() may submit more requests but must not call blk_close. */
int blk_submit(struct blk_backend *b, struct blk_req *r);
/* A FLUSH, waited for: what the image format caches (qcow2's tables) is written to the file
 * and the file is fdatasync'ed, so a copy of the file taken afterwards (a snapshot of a paused
 * VM) is a consistent image. Waits at most `ms`: 0, or -errno (-ETIMEDOUT: a hung disk; the
 * flush completes, or not, later without harm). Nothing else may be submitted meanwhile. */
int blk_flush_wait(struct blk_backend *b, unsigned ms);
/* Whether cache=none is in effect, and how many reads/writes went through the page cache
 * because they were not aligned for direct I/O. */
bool blk_direct(const struct blk_backend *b);
uint64_t blk_buffered_fallbacks(const struct blk_backend *b);
/* Internal snapshots of the open image (qcow2's snapshot table; see qcow2.h): create one of
 * the image as it is, or delete one. For a VM snapshot of a paused machine whose requests
 * have drained: the caller guarantees nothing is in flight or submitted meanwhile (-EBUSY
 * otherwise). -ENOTSUP (with a message) for a raw image, -EROFS for a read-only one; else
 * qcow2_snapshot_create/delete's result. */
enum blk_snap_op { BLK_SNAP_CREATE, BLK_SNAP_DELETE };
int blk_snapshot(struct blk_backend *b, enum blk_snap_op op, const char *name, char *err,
                 size_t errlen);
/* "raw" or "qcow2". */
const char *blk_format_name(const struct blk_backend *b);
/* format= value: "raw", "qcow2", "auto"; -EINVAL for anything else. */
int blk_format_parse(const char *s, enum blk_format *f);
/* Which engine serves this backend: "io_uring" or "threads". */
const char *blk_engine_name(const struct blk_backend *b);

/* How block backends open image files. By default open(2). A sandboxed VM process may open
 * nothing and set up no io_uring ring: it sets its file broker here (vm/broker.h), and from then
 * on images are opened through it and new backends use the thread-pool engine. */
struct blk_file_ops {
    int (*open)(const char *path, int flags); /* a descriptor or -errno */
    int (*reopen)(int fd, int flags);         /* the same file opened again, or -errno */
};
void blk_set_file_ops(const struct blk_file_ops *ops);
/* For the backends: open(path, flags) or the broker's; a descriptor or -errno (-EXDEV: the
 * broker does not open files outside the directories of the VM's drives at boot). */
int blk_file_open(const char *path, int flags);
/* The file fd refers to, opened again with flags (O_DIRECT): a descriptor or -errno. */
int blk_file_reopen(int fd, int flags);
/* Whether files are opened through a broker (the process is sandboxed). */
bool blk_file_brokered(void);

/* `vessel disk create`: a sparse raw image of `size` bytes (multiple of 512). Refuses to
 * overwrite an existing file. 0 or -errno with message. */
int blk_create_raw(const char *path, uint64_t size, char *err, size_t errlen);
#endif

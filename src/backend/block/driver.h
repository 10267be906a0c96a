/* Image format drivers behind block.h (internal to src/backend/block). blk_open probes the
 * format (or takes format=) and hands the file to one driver; every later call goes through
 * the backend's driver table. Each driver's own state begins with struct blk_backend. */
#ifndef VESSEL_BACKEND_BLOCK_DRIVER_H
#define VESSEL_BACKEND_BLOCK_DRIVER_H
#include "backend/block/block.h"

struct blk_driver {
    const char *name; /* "raw", "qcow2" */
    void (*close)(struct blk_backend *b);
    int (*refresh_size)(struct blk_backend *b, char *err, size_t errlen);
    bool (*same_file)(const struct blk_backend *b, const char *path);
    uint64_t (*size)(const struct blk_backend *b);
    int (*submit)(struct blk_backend *b, struct blk_req *r);
    bool (*direct)(const struct blk_backend *b);
    uint64_t (*buffered_fallbacks)(const struct blk_backend *b);
    const char *(*engine_name)(const struct blk_backend *b);
    /* blk_snapshot; NULL: the format has no internal snapshots */
    int (*snapshot)(struct blk_backend *b, enum blk_snap_op op, const char *name, char *err,
                    size_t errlen);
};

struct blk_backend {
    const struct blk_driver *drv;
    bool readonly;
    /* The format was guessed from the contents (no format= given) and came out raw: a guest
     * write that would make the image look like qcow2 is refused (blk_submit), or the next
     * open would read a guest-written header (and its backing file name: any host file). */
    bool probed_raw;
};

/* Each driver's open (blk_open's contract, for an already chosen format). */
int raw_open(struct blk_backend **out, const char *path, const struct blk_open_opts *o, char *err,
             size_t errlen);
int qcow2_open_backend(struct blk_backend **out, const char *path, const struct blk_open_opts *o,
                       char *err, size_t errlen);
extern const struct blk_driver raw_driver, qcow2_driver;
#endif

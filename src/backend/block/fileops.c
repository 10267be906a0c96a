/* How block backends open image files (block.h): open(2), or the sandboxed VM's file broker
 * (vm/broker.h) once blk_set_file_ops has been called. */
#include "backend/block/block.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>

static const struct blk_file_ops *file_ops;

void blk_set_file_ops(const struct blk_file_ops *ops)
{
    file_ops = ops;
}

bool blk_file_brokered(void)
{
    return file_ops != NULL;
}

int blk_file_open(const char *path, int flags)
{
    if (file_ops) return file_ops->open(path, flags);
    int fd = open(path, flags);
    return fd >= 0 ? fd : -errno;
}

int blk_file_reopen(int fd, int flags)
{
    if (file_ops) return file_ops->reopen(fd, flags);
    char self[64];
    snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
    int nfd = open(self, flags);
    return nfd >= 0 ? nfd : -errno;
}

/*
 * Guest helper for the virtio-blk tests (static riscv64 Linux program): zero a
 * byte range of a block device with fallocate(2).
 *
 * usage: blkzero punch|zero DEVICE OFFSET LENGTH   (bytes, multiples of 512)
 *
 * Linux turns fallocate on a block device into REQ_OP_WRITE_ZEROES
 * (block/fops.c, blkdev_fallocate): "punch" (PUNCH_HOLE|KEEP_SIZE) allows the
 * device to unmap and never falls back to writing zero pages, so its success
 * means the device carried out a virtio-blk WRITE_ZEROES with the unmap flag;
 * "zero" (ZERO_RANGE) asks the device not to unmap. busybox has no tool for
 * either. Exit status 0 on success; otherwise one line on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int parse_u64(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 0);
    if (errno || end == s || *end || v < 0) return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    long long off, len;
    int mode;

    if (argc != 5 || parse_u64(argv[3], &off) || parse_u64(argv[4], &len)) {
        fprintf(stderr, "usage: blkzero punch|zero DEVICE OFFSET LENGTH\n");
        return 2;
    }
    if (!strcmp(argv[1], "punch")) {
        mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
    } else if (!strcmp(argv[1], "zero")) {
        mode = FALLOC_FL_ZERO_RANGE;
    } else {
        fprintf(stderr, "blkzero: mode must be punch or zero, not '%s'\n", argv[1]);
        return 2;
    }
    int fd = open(argv[2], O_RDWR);
    if (fd < 0) {
        fprintf(stderr, "blkzero: %s: %s\n", argv[2], strerror(errno));
        return 1;
    }
    if (fallocate(fd, mode, off, len) < 0) {
        fprintf(stderr, "blkzero: %s %s %lld+%lld: %s\n", argv[1], argv[2], off, len,
                strerror(errno));
        close(fd);
        return 1;
    }
    close(fd);
    return 0;
}

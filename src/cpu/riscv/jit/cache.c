/* JIT code cache (cache.h): W^X by double mapping a memfd. */
#include "cpu/riscv/jit/cache.h"
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int jit_cache_init(struct jit_cache *c, size_t size)
{
    memset(c, 0, sizeof(*c));
    if (size < JIT_CACHE_MIN) size = JIT_CACHE_MIN;
    if (size > JIT_CACHE_MAX) size = JIT_CACHE_MAX;
    size = (size + 4095) & ~(size_t)4095;
    int fd = memfd_create("vessel-jit", MFD_CLOEXEC);
    if (fd < 0) return -errno;
    if (ftruncate(fd, (off_t)size) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    void *rw = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (rw == MAP_FAILED) {
        int e = errno;
        close(fd);
        return -e;
    }
    void *rx = mmap(NULL, size, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd); /* the mappings keep the memory */
    if (rx == MAP_FAILED) {
        munmap(rw, size);
        return -e;
    }
    c->rw = rw;
    c->rx = rx;
    c->size = size;
    c->used = 16; /* offset 0 means "no translation" to the block tables */
    return 0;
}

void jit_cache_destroy(struct jit_cache *c)
{
    if (c->rw) munmap(c->rw, c->size);
    if (c->rx) munmap(c->rx, c->size);
    c->rw = c->rx = NULL;
}

uint32_t jit_cache_commit(struct jit_cache *c, size_t n)
{
    uint32_t off = (uint32_t)c->used;
    c->used = (c->used + n + 15) & ~(size_t)15;
    if (c->used > c->size) c->used = c->size;
    return off;
}

/* x86 keeps instruction fetch coherent with stores by physical address (Intel SDM vol. 3,
 * 11.6 "Self-modifying code"), so code rewritten through the RW view after a flush needs no
 * explicit cache maintenance; the indirect call into it is a fresh fetch. */
void jit_cache_flush(struct jit_cache *c)
{
    c->used = 16;
    c->gen++;
    c->flushes++;
}

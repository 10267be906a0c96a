/* JIT code cache (cache.h): W^X by double mapping a memfd. */
#include "cpu/riscv/jit/cache.h"
#include <errno.h>
#include <pthread.h>
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

/* Spare caches of harts that were destroyed, kept mapped for the next machine: the VM
 * process's seccomp filter forbids memfd_create and PROT_EXEC mappings (src/vm/sandbox.c), so
 * caches are created only while the first machine is built, before the sandbox, and a guest
 * reboot's new harts take them over here. */
#define JIT_CACHE_SPARES 64
static struct jit_cache spares[JIT_CACHE_SPARES];
static unsigned nspares;
static pthread_mutex_t spares_lock = PTHREAD_MUTEX_INITIALIZER;

int jit_cache_acquire(struct jit_cache *c, size_t size)
{
    if (size < JIT_CACHE_MIN) size = JIT_CACHE_MIN;
    if (size > JIT_CACHE_MAX) size = JIT_CACHE_MAX;
    size = (size + 4095) & ~(size_t)4095;
    pthread_mutex_lock(&spares_lock);
    for (unsigned i = 0; i < nspares; i++) {
        if (spares[i].size != size) continue;
        *c = spares[i];
        spares[i] = spares[--nspares];
        pthread_mutex_unlock(&spares_lock);
        /* a new owner: nothing of the old one's code is reachable from it */
        c->used = 16;
        c->gen = 0;
        c->flushes = 0;
        /* give the old code's pages back (shmem: MADV_REMOVE frees them); they read as zeros */
        madvise(c->rw, c->size, MADV_REMOVE);
        c->reused = true;
        return 0;
    }
    pthread_mutex_unlock(&spares_lock);
    return jit_cache_init(c, size);
}

void jit_cache_release(struct jit_cache *c)
{
    if (!c->rw) return;
    pthread_mutex_lock(&spares_lock);
    if (nspares < JIT_CACHE_SPARES) {
        spares[nspares++] = *c;
        c->rw = c->rx = NULL;
    }
    pthread_mutex_unlock(&spares_lock);
    jit_cache_destroy(c); /* no room: unmapped (nothing if kept) */
}

/* The JIT's code cache: one memfd mapped twice, a read-write view the translator writes
 * through and a read-execute view the host runs, so no page is ever writable and executable
 * at once. Allocation is a bump pointer; when the cache is full it is flushed whole (every
 * translation is dropped, `gen` tells their owners). */
#ifndef VESSEL_CPU_RISCV_JIT_CACHE_H
#define VESSEL_CPU_RISCV_JIT_CACHE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JIT_CACHE_MIN     (64u << 10)
#define JIT_CACHE_DEFAULT (64u << 20)
#define JIT_CACHE_MAX     (1ull << 31) /* offsets are 32-bit */

struct jit_cache {
    uint8_t *rw, *rx;
    size_t size, used;
    unsigned gen; /* bumped by every flush */
    unsigned flushes;
    bool reused; /* taken over from a destroyed hart (jit_cache_acquire) */
};

/* size is rounded up to pages and clamped to [JIT_CACHE_MIN, JIT_CACHE_MAX]. 0 or -errno. */
int jit_cache_init(struct jit_cache *c, size_t size);
void jit_cache_destroy(struct jit_cache *c);
/* Like jit_cache_init, but takes over a cache of the same size that jit_cache_release kept
 * (flushed), if there is one: then no system call but madvise. The JIT's harts use these two,
 * so a rebooted machine's harts reuse the caches made before the sandbox. */
int jit_cache_acquire(struct jit_cache *c, size_t size);
/* Keep the cache for a later jit_cache_acquire (unmapped if too many are kept already). */
void jit_cache_release(struct jit_cache *c);
/* Space left to write at rw + used. */
static inline size_t jit_cache_avail(const struct jit_cache *c)
{
    return c->size - c->used;
}
/* Keep n bytes just written at rw + used; returns their offset. */
uint32_t jit_cache_commit(struct jit_cache *c, size_t n);
/* Drop everything. */
void jit_cache_flush(struct jit_cache *c);
#endif

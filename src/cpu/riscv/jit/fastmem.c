/* Fast memory: user pages mapped again at their guest virtual addresses (fastmem.h). */
#include "cpu/riscv/jit/fastmem.h"
#include "cpu/riscv/jit/jit.h"
#include "util/log.h"
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define FM_PAGES       (FM_USER_TOP >> 12)
/* Pages mapped at most before the whole region is emptied: each mapping is a host VMA
 * (vm.max_map_count is 65530 by default for the whole process), and a flush costs in
 * proportion to them. 16 MiB of a program's working set per hart, and at most
 * FM_PROCESS_MAX in the process (many harts), leaving room for everything else. */
#define FM_MAX_MAPPED  4096
#define FM_PROCESS_MAX 32768
static _Atomic unsigned fm_process_mapped;
static atomic_flag fm_map_failed_logged = ATOMIC_FLAG_INIT;

struct fastmem {
    uint8_t *base;  /* the region: guest va v at base + v */
    uint8_t *state; /* per page: 0 not mapped, 1 read-only, 2 read-write (FM_PAGES bytes) */
    uint32_t list[FM_MAX_MAPPED]; /* pages mapped since the last full flush (may repeat) */
    unsigned n;
    struct fastmem_stats st;
};

bool fastmem_wanted(void)
{
    const char *v = getenv("VESSEL_FASTMEM");
    return !v || strcmp(v, "0") != 0;
}

static void *reserve(size_t len)
{
    void *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

int fastmem_init(struct hart *h)
{
    h->fm = NULL;
    h->fm_base = NULL;
    h->fm_limit = 0;
    if (!h->env.fastmem) return 0;
    int r0 = jit_fm_install();
    if (r0 < 0) {
        log_warn("hart %u: no fast memory (SIGSEGV handler: %s)", h->id, strerror(-r0));
        return r0;
    }
    struct fastmem *f = calloc(1, sizeof(*f));
    if (!f) return -ENOMEM;
    f->base = reserve(FM_USER_TOP + FM_GUARD);
    f->state = mmap(NULL, FM_PAGES, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (!f->base || f->state == MAP_FAILED) {
        int r = -errno;
        if (f->base) munmap(f->base, FM_USER_TOP + FM_GUARD);
        if (f->state != MAP_FAILED) munmap(f->state, FM_PAGES);
        free(f);
        log_warn("hart %u: no fast memory (%s): user code uses the TLB", h->id, strerror(-r));
        return r;
    }
    h->fm = f;
    h->fm_base = f->base;
    fastmem_update_mode(h);
    return 0;
}

void fastmem_destroy(struct hart *h)
{
    struct fastmem *f = h->fm;
    if (!f) return;
    log_debug("hart %u fastmem: %llu pages mapped, %llu flushes, %llu pages unmapped, %llu host "
              "faults to slow paths",
              h->id, (unsigned long long)f->st.fills, (unsigned long long)f->st.flushes,
              (unsigned long long)f->st.unmaps, (unsigned long long)f->st.faults);
    atomic_fetch_sub(&fm_process_mapped, f->n);
    munmap(f->base, FM_USER_TOP + FM_GUARD);
    munmap(f->state, FM_PAGES);
    free(f);
    h->fm = NULL;
    h->fm_base = NULL;
    h->fm_limit = 0;
}

/* Back to no access: a fresh reservation over the range (MAP_FIXED replaces the mappings). */
static void unmap_range(uint8_t *p, size_t len)
{
    if (mmap(p, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) ==
        MAP_FAILED)
        log_error("fastmem: cannot unmap %zu bytes: %s", len, strerror(errno));
}

void fastmem_flush_all(struct hart *h)
{
    struct fastmem *f = h->fm;
    if (!f || f->n == 0) return;
    unmap_range(f->base, FM_USER_TOP);
    for (unsigned i = 0; i < f->n; i++)
        f->state[f->list[i]] = 0;
    atomic_fetch_sub(&fm_process_mapped, f->n);
    f->n = 0;
    f->st.flushes++;
}

void fastmem_flush_page(struct hart *h, uint64_t va)
{
    struct fastmem *f = h->fm;
    if (!f || va >= FM_USER_TOP || !f->state[va >> 12]) return;
    unmap_range(f->base + (va & ~0xfffull), 4096);
    f->state[va >> 12] = 0;
    f->st.unmaps++;
}

void fastmem_fill(struct hart *h, uint64_t va, uint64_t pa, bool write)
{
    struct fastmem *f = h->fm;
    if (!f || va >= FM_USER_TOP) return;
    uint64_t vpn = va >> 12;
    uint8_t want = write ? 2 : 1;
    if (f->state[vpn] >= want) return;
    if (f->state[vpn] == 0) {
        if (f->n == FM_MAX_MAPPED || atomic_load(&fm_process_mapped) >= FM_PROCESS_MAX)
            fastmem_flush_all(h);
        if (f->n == 0 && atomic_load(&fm_process_mapped) >= FM_PROCESS_MAX)
            return; /* the other harts hold them all: this access keeps its slow path */
        f->list[f->n++] = (uint32_t)vpn;
        atomic_fetch_add(&fm_process_mapped, 1);
    }
    uint64_t off = (pa & ~0xfffull) - h->env.ram_base;
    void *p = mmap(f->base + (vpn << 12), 4096, write ? PROT_READ | PROT_WRITE : PROT_READ,
                   MAP_SHARED | MAP_FIXED | MAP_POPULATE, h->env.ram_fd, (off_t)off);
    if (p == MAP_FAILED) {
        /* The page stays out (its accesses keep taking the slow path); the previous
         * mapping, if any, is gone: MAP_FIXED unmapped it first or nothing changed. */
        if (!atomic_flag_test_and_set(&fm_map_failed_logged))
            log_warn("fastmem: cannot map a guest page (%s): its accesses take the slow path",
                     strerror(errno));
        unmap_range(f->base + (vpn << 12), 4096);
        f->state[vpn] = 0;
        return;
    }
    f->state[vpn] = want;
    f->st.fills++;
}

void fastmem_update_mode(struct hart *h)
{
    h->fm_limit = h->fm && h->priv == PRV_U && (h->satp >> 60) == 8 ? FM_USER_TOP : 0;
}

void fastmem_get_stats(const struct hart *h, struct fastmem_stats *s)
{
    memset(s, 0, sizeof(*s));
    if (h->fm) *s = h->fm->st;
}

void fastmem_count_fault(struct hart *h)
{
    if (h->fm) h->fm->st.faults++;
}

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
/* Pages mapped at most in one region before it is emptied: each mapping is a host VMA
 * (vm.max_map_count is 65530 by default for the whole process), and a flush costs in
 * proportion to them. 32 MiB of a program's working set, and at most FM_PROCESS_MAX in the
 * process (many harts, many regions), leaving room for everything else. */
#define FM_MAX_MAPPED  8192
#define FM_PROCESS_MAX 48000
/* Regions per hart: address spaces (ASID and root table) whose user pages stay mapped while
 * another runs; a switch to a fifth takes the least recently used one, emptied. */
#define FM_REGIONS     4
#define SATP_TAG       ((1ull << 60) - 1) /* satp without MODE: ASID and root page table */

static _Atomic unsigned fm_process_mapped;
static atomic_flag fm_map_failed_logged = ATOMIC_FLAG_INIT;

struct fm_region {
    uint8_t *base;  /* guest va v at base + v; NULL: not reserved yet */
    uint8_t *state; /* per page: 0 not mapped, 1 read-only, 2 read-write (FM_PAGES bytes) */
    uint32_t list[FM_MAX_MAPPED]; /* pages mapped since the last flush (may repeat) */
    unsigned n;
    bool tagged;  /* holds translations of the address space `tag` (else of none yet) */
    uint64_t tag; /* satp & SATP_TAG when it was made current */
    uint64_t used;
    /* Warm-up: the address space gets fast memory once it has been current for
     * env.fastmem_warmup instructions (run while it was, since: instret when it became so);
     * until then its accesses take the TLB as without fast memory. */
    bool enabled;
    uint64_t run, since;
};

struct fastmem {
    struct fm_region r[FM_REGIONS];
    struct fm_region *cur; /* the region of the current satp (fills go there) */
    uint64_t clock;
    struct fastmem_stats st;
};

bool fastmem_wanted(void)
{
    const char *v = getenv("VESSEL_FASTMEM");
    return !v || strcmp(v, "0") != 0;
}

uint64_t fastmem_warmup_wanted(void)
{
    const char *v = getenv("VESSEL_FASTMEM_WARMUP");
    if (!v || !*v) return FM_WARMUP_DEFAULT;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    return *end ? FM_WARMUP_DEFAULT : (uint64_t)n;
}

/* A region's reservation: a guard, the 2^38 bytes, a guard. */
#define FM_RESERVED (FM_GUARD + FM_USER_TOP + FM_GUARD)

static int region_reserve(struct fm_region *r)
{
    uint8_t *p =
        mmap(NULL, FM_RESERVED, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        r->base = NULL;
        return -errno;
    }
    r->base = p + FM_GUARD;
    r->state = mmap(NULL, FM_PAGES, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r->state == MAP_FAILED) {
        int e = -errno;
        munmap(p, FM_RESERVED);
        r->base = r->state = NULL;
        return e;
    }
    r->n = 0;
    r->tagged = false;
    return 0;
}

int fastmem_init(struct hart *h)
{
    h->fm = NULL;
    h->fm_base = NULL;
    h->fm_limit = 0;
    if (!h->env.fastmem) return 0;
    int r = jit_fm_install();
    if (r < 0) {
        log_warn("hart %u: no fast memory (SIGSEGV handler: %s)", h->id, strerror(-r));
        return r;
    }
    struct fastmem *f = calloc(1, sizeof(*f));
    if (!f) return -ENOMEM;
    r = region_reserve(&f->r[0]);
    if (r < 0) {
        free(f);
        log_warn("hart %u: no fast memory (%s): user code uses the TLB", h->id, strerror(-r));
        return r;
    }
    f->cur = &f->r[0];
    h->fm = f;
    h->fm_base = f->cur->base;
    fastmem_update_mode(h);
    return 0;
}

void fastmem_destroy(struct hart *h)
{
    struct fastmem *f = h->fm;
    if (!f) return;
    log_debug("hart %u fastmem: %llu pages mapped, %llu flushes, %llu pages unmapped, %llu host "
              "faults to slow paths, %llu address-space switches (%llu kept their pages), "
              "%llu address spaces warmed up",
              h->id, (unsigned long long)f->st.fills, (unsigned long long)f->st.flushes,
              (unsigned long long)f->st.unmaps, (unsigned long long)f->st.faults,
              (unsigned long long)f->st.switches, (unsigned long long)f->st.switch_hits,
              (unsigned long long)f->st.warmed);
    for (unsigned i = 0; i < FM_REGIONS; i++) {
        struct fm_region *r = &f->r[i];
        if (!r->base) continue;
        atomic_fetch_sub(&fm_process_mapped, r->n);
        munmap(r->base - FM_GUARD, FM_RESERVED);
        munmap(r->state, FM_PAGES);
    }
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

static void region_flush(struct fastmem *f, struct fm_region *r)
{
    if (!r->base || r->n == 0) return;
    unmap_range(r->base, FM_USER_TOP);
    for (unsigned i = 0; i < r->n; i++)
        r->state[r->list[i]] = 0;
    atomic_fetch_sub(&fm_process_mapped, r->n);
    r->n = 0;
    f->st.flushes++;
}

void fastmem_flush_all(struct hart *h)
{
    struct fastmem *f = h->fm;
    if (!f) return;
    for (unsigned i = 0; i < FM_REGIONS; i++)
        region_flush(f, &f->r[i]);
}

void fastmem_flush_asid(struct hart *h, uint64_t asid)
{
    struct fastmem *f = h->fm;
    if (!f) return;
    for (unsigned i = 0; i < FM_REGIONS; i++)
        if (f->r[i].tagged && ((f->r[i].tag >> 44) & 0xffff) == (asid & 0xffff))
            region_flush(f, &f->r[i]);
}

void fastmem_flush_page(struct hart *h, uint64_t va)
{
    struct fastmem *f = h->fm;
    if (!f || va >= FM_USER_TOP) return;
    for (unsigned i = 0; i < FM_REGIONS; i++) {
        struct fm_region *r = &f->r[i];
        if (!r->base || !r->state[va >> 12]) continue;
        unmap_range(r->base + (va & ~0xfffull), 4096);
        r->state[va >> 12] = 0;
        f->st.unmaps++;
    }
}

void fastmem_switch(struct hart *h)
{
    struct fastmem *f = h->fm;
    if (!f) return;
    f->cur->run += h->instret - f->cur->since;
    if ((h->satp >> 60) == 8) {
        uint64_t tag = h->satp & SATP_TAG;
        struct fm_region *pick = NULL, *lru = NULL;
        f->st.switches++;
        for (unsigned i = 0; i < FM_REGIONS && !pick; i++)
            if (f->r[i].base && f->r[i].tagged && f->r[i].tag == tag) pick = &f->r[i];
        if (pick) {
            f->st.switch_hits++;
        } else {
            for (unsigned i = 0; i < FM_REGIONS && !pick; i++) {
                struct fm_region *r = &f->r[i];
                if (r->base && !r->tagged)
                    pick = r;
                else if (!r->base && region_reserve(r) == 0)
                    pick = r;
                else if (r->base && (!lru || r->used < lru->used))
                    lru = r;
            }
            if (!pick) pick = lru;
            region_flush(f, pick);
            pick->tagged = true;
            pick->tag = tag;
            pick->enabled = false;
            pick->run = 0;
        }
        pick->used = ++f->clock;
        pick->since = h->instret;
        f->cur = pick;
        h->fm_base = pick->base;
    }
    fastmem_update_mode(h);
}

void fastmem_fill(struct hart *h, uint64_t va, uint64_t pa, bool write)
{
    struct fastmem *f = h->fm;
    if (!f || va >= FM_USER_TOP) return;
    struct fm_region *r = f->cur;
    uint64_t vpn = va >> 12;
    uint8_t want = write ? 2 : 1;
    if (r->state[vpn] >= want) return;
    if (r->state[vpn] == 0) {
        if (r->n == FM_MAX_MAPPED) region_flush(f, r);
        if (atomic_load(&fm_process_mapped) >= FM_PROCESS_MAX) fastmem_flush_all(h);
        if (atomic_load(&fm_process_mapped) >= FM_PROCESS_MAX)
            return; /* other harts hold them all: this access keeps its slow path */
        r->list[r->n++] = (uint32_t)vpn;
        atomic_fetch_add(&fm_process_mapped, 1);
    }
    uint64_t off = (pa & ~0xfffull) - h->env.ram_base;
    void *p = mmap(r->base + (vpn << 12), 4096, write ? PROT_READ | PROT_WRITE : PROT_READ,
                   MAP_SHARED | MAP_FIXED | MAP_POPULATE, h->env.ram_fd, (off_t)off);
    if (p == MAP_FAILED) {
        /* The page stays out (its accesses keep taking the slow path); the previous
         * mapping, if any, is gone: MAP_FIXED unmapped it first or nothing changed. */
        if (!atomic_flag_test_and_set(&fm_map_failed_logged))
            log_warn("fastmem: cannot map a guest page (%s): its accesses take the slow path",
                     strerror(errno));
        unmap_range(r->base + (vpn << 12), 4096);
        r->state[vpn] = 0;
        return;
    }
    r->state[vpn] = want;
    f->st.fills++;
}

void fastmem_update_mode(struct hart *h)
{
    struct fastmem *f = h->fm;
    h->fm_limit = 0;
    if (!f || h->priv != PRV_U || (h->satp >> 60) != 8) return;
    struct fm_region *r = f->cur;
    if (!r->tagged || r->tag != (h->satp & SATP_TAG)) return;
    if (!r->enabled && r->run + (h->instret - r->since) >= h->env.fastmem_warmup) {
        r->enabled = true;
        f->st.warmed++;
    }
    if (r->enabled) h->fm_limit = FM_USER_TOP;
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

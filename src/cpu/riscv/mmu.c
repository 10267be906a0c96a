/* Address translation (Sv39/Sv48/Sv57, priv spec 10.3-10.6), PMP (3.7), the software TLB and
 * the slow paths of loads, stores and atomics (MMIO, page-crossing, misses). */
#include "cpu/riscv/hart.h"
#include "cpu/riscv/jit/fastmem.h"
#include "cpu/riscv/jit/jit.h"
#include "irq/aclint.h"
#include "machine/bus.h"
#include <string.h>

#define PTE_V        (1ull << 0)
#define PTE_R        (1ull << 1)
#define PTE_W        (1ull << 2)
#define PTE_X        (1ull << 3)
#define PTE_U        (1ull << 4)
#define PTE_A        (1ull << 6)
#define PTE_D        (1ull << 7)
#define PTE_RESERVED (0x3ffull << 54) /* N, PBMT and reserved bits: none implemented */
#define PTE_PPN_MASK ((1ull << 44) - 1)

#define SATP_MODE_SHIFT 60

static void tlb_flush_soft(struct hart *h)
{
    if (++h->tlb_gen > TLB_GEN_MAX) { /* generations exhausted: really clear, start over */
        for (unsigned s = 0; s < TLBI_COUNT; s++)
            for (unsigned a = 0; a < 3; a++)
                for (unsigned i = 0; i < TLB_SIZE; i++)
                    h->tlb[s].e[a][i].tag = h->tlb[s].v[a][i].tag = TLB_EMPTY;
        h->tlb_gen = 0;
    }
    h->tlb_key = (uint64_t)h->tlb_gen << 52;
    h->tlb_super_lo = UINT64_MAX;
    h->tlb_super_last = 0;
}

void tlb_flush_all(struct hart *h)
{
    tlb_flush_soft(h);
    if (h->fm) { /* a cache of the TLB (PMP, MXR, sfence.vma, triggers) */
        fastmem_flush_all(h);
        fastmem_update_mode(h);
    }
}

/* The software TLB has no ASIDs: it is flushed; fast memory keeps a region per address
 * space. */
void tlb_satp_written(struct hart *h)
{
    tlb_flush_soft(h);
    fastmem_switch(h);
}

void tlb_flush_asid(struct hart *h, uint64_t asid)
{
    tlb_flush_soft(h);
    fastmem_flush_asid(h, asid);
}

/* Linux fences one address after every page fault that installs a PTE (update_mmu_cache):
 * flushing everything there made the TLB refill for most of the guest's run. */
void tlb_flush_page(struct hart *h, uint64_t va)
{
    if (va >= h->tlb_super_lo && va <= h->tlb_super_last) {
        tlb_flush_all(h);
        return;
    }
    fastmem_flush_page(h, va);
    uint64_t tag = (va >> 12) ^ h->tlb_key;
    unsigned i = (unsigned)(va >> 12) & (TLB_SIZE - 1);
    for (unsigned s = 0; s < TLBI_COUNT; s++)
        for (unsigned a = 0; a < 3; a++) {
            if (h->tlb[s].e[a][i].tag == tag) h->tlb[s].e[a][i].tag = TLB_EMPTY;
            if (h->tlb[s].v[a][i].tag == tag) h->tlb[s].v[a][i].tag = TLB_EMPTY;
        }
}

/* fence.i: decoded pages stay, but each is compared with memory before it runs again
 * (Linux patches kernel text tens of thousands of times at boot, one fence.i each). */
void dcache_flush(struct hart *h)
{
    h->dcache_epoch++;
}

void dcache_invalidate_all(struct hart *h)
{
    for (unsigned i = 0; i < DCACHE_SLOTS; i++)
        if (h->dcache[i]) h->dcache[i]->ppn = DPAGE_INVALID;
    jit_invalidate_all(h);
}

static inline bool ram_contains(const struct hart *h, uint64_t pa, uint64_t size)
{
    return pa >= h->env.ram_base && pa - h->env.ram_base < h->env.ram_size &&
           size <= h->env.ram_size - (pa - h->env.ram_base);
}

static inline uint8_t *ram_ptr(const struct hart *h, uint64_t pa)
{
    return h->env.ram + (pa - h->env.ram_base);
}

/* ---- PMP ---- */

/* Range [lo, hi) of entry i; false if the entry is off. */
static bool pmp_range(const struct hart *h, unsigned i, uint64_t *lo, uint64_t *hi)
{
    unsigned a = (h->pmpcfg[i] >> 3) & 3;
    uint64_t addr = h->pmpaddr[i];
    switch (a) {
    case 1: /* TOR */
        *lo = i ? h->pmpaddr[i - 1] << 2 : 0;
        *hi = addr << 2;
        return true;
    case 2: /* NA4 */
        *lo = addr << 2;
        *hi = *lo + 4;
        return true;
    case 3: { /* NAPOT: trailing ones give the size */
        unsigned t = (unsigned)__builtin_ctzll(~addr);
        if (t >= 54) { /* whole address space */
            *lo = 0;
            *hi = ~0ull;
            return true;
        }
        uint64_t size = 1ull << (t + 3);
        *lo = (addr & ~((1ull << t) - 1)) << 2;
        *hi = *lo + size;
        return true;
    }
    default: return false;
    }
}

static bool pmp_perm(uint8_t cfg, enum access acc)
{
    return acc == ACC_R ? (cfg & 1) : acc == ACC_W ? (cfg & 2) : (cfg & 4);
}

void pmp_update(struct hart *h)
{
    h->pmp_nactive = 0;
    for (unsigned i = 0; i < PMP_ENTRIES; i++) {
        uint64_t lo, hi;
        if (!pmp_range(h, i, &lo, &hi) || hi <= lo) continue;
        h->pmp_active[h->pmp_nactive++] = (struct pmp_region){lo, hi, h->pmpcfg[i]};
    }
}

/* 1 = allowed, 0 = denied, -1 = the range [pa, pa+size) is only partly covered by the
 * deciding entry (the access must be split / not cached). */
static int pmp_decide(struct hart *h, uint64_t pa, uint64_t size, enum access acc, unsigned priv)
{
    if (priv == PRV_M && h->pmp_nactive == 0) return 1;
    uint64_t end = pa + size;
    for (unsigned i = 0; i < h->pmp_nactive; i++) {
        const struct pmp_region *r = &h->pmp_active[i];
        if (end <= r->lo || pa >= r->hi) continue; /* no overlap */
        if (pa < r->lo || end > r->hi) return -1;
        if (priv == PRV_M && !(r->cfg & 0x80)) return 1;
        return pmp_perm(r->cfg, acc);
    }
    return priv == PRV_M ? 1 : 0; /* no match: M allowed, S/U denied (16 entries implemented) */
}

bool pmp_check(struct hart *h, uint64_t pa, unsigned size, enum access acc, unsigned priv)
{
    return pmp_decide(h, pa, size, acc, priv) == 1;
}

/* ---- translation ---- */

static unsigned data_priv(const struct hart *h)
{
    if (h->priv == PRV_M && (h->mstatus & MSTATUS_MPRV))
        return (unsigned)((h->mstatus & MSTATUS_MPP) >> 11);
    return h->priv;
}

static int fault_cause(enum access acc, bool page)
{
    if (page)
        return acc == ACC_R   ? EXC_LOAD_PAGE_FAULT
               : acc == ACC_W ? EXC_STORE_PAGE_FAULT
                              : EXC_INSN_PAGE_FAULT;
    return acc == ACC_R ? EXC_LOAD_ACCESS : acc == ACC_W ? EXC_STORE_ACCESS : EXC_INSN_ACCESS;
}

/* debug: a debugger's view (no permission checks, no A/D updates). */
static int walk(struct hart *h, uint64_t va, enum access acc, unsigned priv, bool debug,
                uint64_t *pa)
{
    unsigned mode = (unsigned)(h->satp >> SATP_MODE_SHIFT);
    unsigned levels = mode == 8 ? 3 : mode == 9 ? 4 : 5;
    unsigned vabits = 12 + 9 * levels;
    /* bits 63..vabits-1 must all equal bit vabits-1 */
    int64_t sva = (int64_t)(va << (64 - vabits)) >> (64 - vabits);
    if ((uint64_t)sva != va) return fault_cause(acc, true);

    bool sum = h->mstatus & MSTATUS_SUM, mxr = h->mstatus & MSTATUS_MXR;
retry:;
    uint64_t base = (h->satp & PTE_PPN_MASK) << 12;
    for (int lvl = (int)levels - 1; lvl >= 0; lvl--) {
        uint64_t idx = (va >> (12 + 9 * lvl)) & 0x1ff;
        uint64_t pte_pa = base + idx * 8;
        if (!ram_contains(h, pte_pa, 8) || !pmp_check(h, pte_pa, 8, ACC_R, PRV_S))
            return fault_cause(acc, false);
        _Atomic uint64_t *ptep = (_Atomic uint64_t *)ram_ptr(h, pte_pa);
        uint64_t pte = atomic_load_explicit(ptep, memory_order_acquire);
        if (!(pte & PTE_V) || (!(pte & PTE_R) && (pte & PTE_W)) || (pte & PTE_RESERVED))
            return fault_cause(acc, true);
        uint64_t ppn = (pte >> 10) & PTE_PPN_MASK;
        if (!(pte & (PTE_R | PTE_X))) { /* pointer to next level */
            if (lvl == 0 || (pte & (PTE_A | PTE_D | PTE_U))) return fault_cause(acc, true);
            base = ppn << 12;
            continue;
        }
        /* leaf */
        uint64_t lowmask = (1ull << (9 * lvl)) - 1;
        if (debug) {
            *pa = ((ppn | ((va >> 12) & lowmask)) << 12) | (va & 0xfff);
            return 0;
        }
        if (pte & PTE_U) {
            if (priv == PRV_S && (acc == ACC_X || !sum)) return fault_cause(acc, true);
        } else if (priv == PRV_U) {
            return fault_cause(acc, true);
        }
        bool ok = acc == ACC_R   ? ((pte & PTE_R) || (mxr && (pte & PTE_X)))
                  : acc == ACC_W ? (pte & PTE_W)
                                 : (pte & PTE_X);
        if (!ok) return fault_cause(acc, true);
        if (ppn & lowmask) /* misaligned superpage */
            return fault_cause(acc, true);
        /* Hardware A/D update, atomically (priv spec 10.3.2 step 8). */
        uint64_t want = pte | PTE_A | (acc == ACC_W ? PTE_D : 0);
        if (want != pte) {
            if (!pmp_check(h, pte_pa, 8, ACC_W, PRV_S)) return fault_cause(acc, false);
            if (!atomic_compare_exchange_strong(ptep, &pte, want)) goto retry;
        }
        uint64_t vpn = va >> 12;
        *pa = ((ppn | (vpn & lowmask)) << 12) | (va & 0xfff);
        if (lowmask) { /* a superpage: its 4 KiB entries are flushed only all together */
            uint64_t lo = va & ~((lowmask << 12) | 0xfff), last = va | (lowmask << 12) | 0xfff;
            if (lo < h->tlb_super_lo) h->tlb_super_lo = lo;
            if (last > h->tlb_super_last) h->tlb_super_last = last;
        }
        return 0;
    }
    return fault_cause(acc, true);
}

static int translate_priv(struct hart *h, uint64_t va, enum access acc, unsigned priv, uint64_t *pa)
{
    if (priv == PRV_M || (h->satp >> SATP_MODE_SHIFT) == 0) {
        *pa = va;
        return 0;
    }
    return walk(h, va, acc, priv, false, pa);
}

int mmu_debug_translate(struct hart *h, uint64_t va, uint64_t *pa)
{
    if (h->priv == PRV_M || (h->satp >> SATP_MODE_SHIFT) == 0) {
        *pa = va;
        return 0;
    }
    return walk(h, va, ACC_R, PRV_S, true, pa);
}

int mmu_translate(struct hart *h, uint64_t va, enum access acc, uint64_t *pa)
{
    unsigned priv = acc == ACC_X ? h->priv : data_priv(h);
    return translate_priv(h, va, acc, priv, pa);
}

static unsigned tlbi_for(const struct hart *h, unsigned priv, enum access acc)
{
    if (priv == PRV_S) return (acc != ACC_X && (h->mstatus & MSTATUS_SUM)) ? TLBI_S_SUM : TLBI_S;
    return priv == PRV_M ? TLBI_M : TLBI_U;
}

/* Translate + PMP-check one access that does not cross a page; on success fill the TLB when
 * the page is RAM with uniform PMP permission. *host is NULL for MMIO. */
static int access_page(struct hart *h, uint64_t va, unsigned size, enum access acc, uint64_t *pa,
                       uint8_t **host)
{
    unsigned priv = acc == ACC_X ? h->priv : data_priv(h);
    bool mprv_data = acc != ACC_X && h->priv == PRV_M && (h->mstatus & MSTATUS_MPRV);
    struct tlb_set *set = &h->tlb[tlbi_for(h, priv, acc)];
    unsigned i = (unsigned)(va >> 12) & (TLB_SIZE - 1);
    uint64_t tag = (va >> 12) ^ h->tlb_key;
    /* The victim way: its entries were filled below, under the same conditions, and every
     * flush that drops an entry drops them too. (MPRV data accesses use no TLB set.) */
    if (!mprv_data && set->v[acc][i].tag == tag) {
        struct tlb_entry hit = set->v[acc][i];
        set->v[acc][i] = set->e[acc][i];
        set->e[acc][i] = hit;
        h->tlb_victim_hits++;
        *host = (uint8_t *)(uintptr_t)(va + hit.addend);
        *pa = h->env.ram_base + (uint64_t)(*host - h->env.ram);
        if (acc != ACC_X && h->fm_limit) fastmem_fill(h, va, *pa, acc == ACC_W);
        return 0;
    }
    int c = translate_priv(h, va, acc, priv, pa);
    if (c) return c;
    if (!pmp_check(h, *pa, size, acc, priv)) return fault_cause(acc, false);
    if (!ram_contains(h, *pa, size)) {
        *host = NULL;
        return 0;
    }
    *host = ram_ptr(h, *pa);
    uint64_t page = *pa & ~0xfffull;
    /* a page with a watched address stays out of the data TLB: its accesses take the slow
     * paths, which check the triggers */
    bool watched = acc != ACC_X && h->trig_data && !trigger_page_cacheable(h, va & ~0xfffull);
    if (!mprv_data && !watched && ram_contains(h, page, 4096) &&
        pmp_decide(h, page, 4096, acc, priv) == 1) {
        struct tlb_entry *e = &set->e[acc][i];
        h->tlb_refills++;
        if (e->tag != TLB_EMPTY && e->tag != tag) set->v[acc][i] = *e;
        e->tag = tag;
        e->addend = (uintptr_t)ram_ptr(h, page) - (uintptr_t)(va & ~0xfffull);
        /* fm_limit: a user-mode access (not M with MPRV) under Sv39 */
        if (acc != ACC_X && h->fm_limit) fastmem_fill(h, va, page, acc == ACC_W);
    }
    return 0;
}

static uint64_t load_host(const uint8_t *p, unsigned size)
{
    switch (size) {
    case 1: return *p;
    case 2: {
        uint16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    case 4: {
        uint32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    default: {
        uint64_t v;
        memcpy(&v, p, 8);
        return v;
    }
    }
}

static void store_host(uint8_t *p, unsigned size, uint64_t val)
{
    switch (size) {
    case 1: *p = (uint8_t)val; break;
    case 2: {
        uint16_t v = (uint16_t)val;
        memcpy(p, &v, 2);
        break;
    }
    case 4: {
        uint32_t v = (uint32_t)val;
        memcpy(p, &v, 4);
        break;
    }
    default: memcpy(p, &val, 8); break;
    }
}

int mem_load_slow(struct hart *h, uint64_t va, unsigned size, uint64_t *val)
{
    uint64_t pa;
    uint8_t *host;
    if (h->trig_data) { /* a trigger fires before the access (and before its faults) */
        int c = trigger_check_data(h, va, size, TRIG_LOAD);
        if (c) return c;
    }
    h->fault_tval = va;
    if ((va & 0xfff) + size > 4096) { /* crosses a page: byte by byte, all-or-nothing */
        uint64_t v = 0;
        for (unsigned i = 0; i < size; i++) {
            uint64_t b;
            int c = mem_load_slow(h, va + i, 1, &b); /* sets fault_tval to the failing byte */
            if (c) return c;
            v |= b << (8 * i);
        }
        *val = v;
        return 0;
    }
    int c = access_page(h, va, size, ACC_R, &pa, &host);
    if (c) return c;
    if (host) {
        *val = load_host(host, size);
        return 0;
    }
    if (pa & (size - 1)) return EXC_LOAD_MISALIGNED; /* devices take aligned accesses only */
    if (!bus_read(h->env.bus, pa, size, val)) return EXC_LOAD_ACCESS;
    return 0;
}

int mem_store_slow(struct hart *h, uint64_t va, unsigned size, uint64_t val)
{
    uint64_t pa;
    uint8_t *host;
    if (h->trig_data) {
        int c = trigger_check_data(h, va, size, TRIG_STORE);
        if (c) return c;
    }
    h->fault_tval = va;
    if ((va & 0xfff) + size > 4096) {
        /* Check both pages before writing anything, so a fault leaves memory unchanged. */
        unsigned first = 4096 - (unsigned)(va & 0xfff);
        uint8_t *h1, *h2;
        uint64_t pa2;
        int c = access_page(h, va, first, ACC_W, &pa, &h1);
        if (c) return c;
        c = access_page(h, va + first, size - first, ACC_W, &pa2, &h2);
        if (c) {
            h->fault_tval = va + first; /* the part in the second page faulted */
            return c;
        }
        if (!h1 || !h2) return EXC_STORE_MISALIGNED;
        for (unsigned i = 0; i < size; i++) {
            uint8_t b = (uint8_t)(val >> (8 * i));
            if (i < first)
                h1[i] = b;
            else
                h2[i - first] = b;
        }
        return 0;
    }
    int c = access_page(h, va, size, ACC_W, &pa, &host);
    if (c) return c;
    if (host) {
        store_host(host, size, val);
        return 0;
    }
    if (pa & (size - 1)) return EXC_STORE_MISALIGNED;
    if (!bus_write(h->env.bus, pa, size, val)) return EXC_STORE_ACCESS;
    return 0;
}

/* The rest of mem_atomic_ptr, out of line so that its TLB-hit path stays a leaf. Triggers
 * (an AMO, and SC, which cannot be told apart here, is both a load and a store for matching)
 * come before misalignment (priv spec 3.1.15 priority); a TLB hit needs no check, as a page
 * with a watched address never enters the data TLB. */
static __attribute__((noinline)) int atomic_miss(struct hart *h, uint64_t va, unsigned size,
                                                 bool is_load, void **ptr)
{
    if (h->trig_data) {
        int c = trigger_check_data(h, va, size, is_load ? TRIG_LOAD : TRIG_LOAD | TRIG_STORE);
        if (c) return c;
    }
    h->fault_tval = va;
    if (va & (size - 1)) return is_load ? EXC_LOAD_MISALIGNED : EXC_STORE_MISALIGNED;
    uint64_t pa;
    uint8_t *host;
    int c = access_page(h, va, size, is_load ? ACC_R : ACC_W, &pa, &host);
    if (c) return c;
    if (!host) /* no atomics on device memory */
        return is_load ? EXC_LOAD_ACCESS : EXC_STORE_ACCESS;
    *ptr = host;
    return 0;
}

int mem_atomic_ptr(struct hart *h, uint64_t va, unsigned size, bool is_load, void **ptr)
{
    if (!(va & (size - 1))) {
        struct tlb_entry *e =
            &h->tlb[h->tlbi_data].e[is_load ? ACC_R : ACC_W][(va >> 12) & (TLB_SIZE - 1)];
        if (e->tag == ((va >> 12) ^ h->tlb_key)) {
            *ptr = (void *)(uintptr_t)(va + e->addend);
            return 0;
        }
    }
    return atomic_miss(h, va, size, is_load, ptr);
}

int mem_fetch_page(struct hart *h, uint64_t va, uint8_t **host_page)
{
    uint64_t pa;
    uint8_t *host;
    int c = access_page(h, va, 2, ACC_X, &pa, &host);
    if (c) return c;
    if (!host) return EXC_INSN_ACCESS; /* no execution from devices */
    *host_page = host - (pa & 0xfff);
    return 0;
}

uint64_t hart_time(struct hart *h)
{
    return aclint_mtime(h->env.clint);
}

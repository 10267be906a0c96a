/* Fast memory for user-mode code under the JIT (docs/engine.md "Fast memory"): the pages a
 * user-mode (U) program has accessed under Sv39 are mapped again, at their guest virtual
 * addresses, into one host region per hart, so that a translated load or store is one host
 * access at base + va instead of a software TLB lookup. The region is a cache of the TLB:
 * pages enter it only where the TLB would take them (RAM, uniform PMP permission, no
 * trigger), read-only until a store is allowed (PTE.D set), and the flushes empty it
 * (sfence.vma of its ASID or of all, PMP, MXR). Each hart keeps up to four such regions, one
 * per address space (satp's ASID and root table), so that switching between processes keeps
 * their pages. An address space gets it once it has run FM_WARMUP_DEFAULT instructions:
 * short-lived processes would pay a host fault per page for little use. Meanwhile, and in
 * every other mode, the translated accesses take the TLB in their stubs. An access to a page not
 * (yet) there faults on the host; the fault handler sends it to the instruction's slow path, which
 * walks the page table as before and maps the page. */
#ifndef VESSEL_CPU_RISCV_JIT_FASTMEM_H
#define VESSEL_CPU_RISCV_JIT_FASTMEM_H
#include "cpu/riscv/hart.h"
#include <stdbool.h>
#include <stdint.h>

/* User virtual addresses under Sv39: [0, 2^38). The region has a guard after it, so that an
 * access starting below the top and ending above it faults inside the region, and one before
 * it: an access whose limit test a test of the same base register stood for (the JIT's
 * elided tests) may reach up to 2 KiB past either end. */
#define FM_USER_TOP (1ull << 38)
#define FM_GUARD    (1ull << 16)

struct fastmem_stats {
    uint64_t fills;                 /* pages mapped (a store's upgrade from read-only counts too) */
    uint64_t flushes;               /* the whole region emptied (with pages in it) */
    uint64_t unmaps;                /* single pages unmapped (sfence.vma with an address) */
    uint64_t faults;                /* host faults sent to a slow path */
    uint64_t switches, switch_hits; /* satp writes (Sv39), those whose region was kept */
    uint64_t warmed;                /* address spaces that ran long enough to get it */
};
/* Instructions an address space runs (while current, in any mode) before its user code gets
 * fast memory (hart_env.fastmem_warmup's default): a short-lived process touches most of
 * its pages a few times, and each page's first access through fast memory costs a host
 * fault and an mmap (~5 us) where the TLB walks in ~0.1 us. */
#define FM_WARMUP_DEFAULT (32u << 20)

/* Whether machines should offer fast memory: yes unless VESSEL_FASTMEM=0 (for measuring
 * and debugging the engine, like the other VESSEL_* hooks). */
bool fastmem_wanted(void);
/* The warm-up machines give their harts: FM_WARMUP_DEFAULT, or VESSEL_FASTMEM_WARMUP
 * (instructions; 0: at once, which the differential tests use to reach fast memory). */
uint64_t fastmem_warmup_wanted(void);
/* Reserve h's region when h->env.fastmem (after jit_init). 0, or -errno (then there is no
 * fast memory and user code uses the TLB as other code does). */
int fastmem_init(struct hart *h);
void fastmem_destroy(struct hart *h);
/* The TLB took va's page (at guest physical pa) for a user-mode load (write false) or store:
 * map it. */
void fastmem_fill(struct hart *h, uint64_t va, uint64_t pa, bool write);
void fastmem_flush_all(struct hart *h);
/* sfence.vma with rs1 = x0 and an ASID: that address space's region. */
void fastmem_flush_asid(struct hart *h, uint64_t asid);
/* sfence.vma with an address: that page in every region. */
void fastmem_flush_page(struct hart *h, uint64_t va);
/* satp was written: make the region of its address space (ASID and root table) current,
 * keeping the others' pages (ASIDs make that correct: the guest fences an ASID whose page
 * tables it changed, priv spec 10.2.1), taking the least recently used one if it has none. */
void fastmem_switch(struct hart *h);
/* h->fm_limit for the current mode: FM_USER_TOP in U mode under Sv39 with fast memory, else
 * 0 (every translated fast access then takes its slow path). */
void fastmem_update_mode(struct hart *h);
void fastmem_get_stats(const struct hart *h, struct fastmem_stats *s);
/* Count a fault sent to a slow path (the signal handler, jit.c). */
void fastmem_count_fault(struct hart *h);
#endif

/* Debug triggers (Sdtrig, RISC-V debug spec 1.0 ch. 5): the guest's tselect/tdata1-3/tinfo
 * CSRs with mcontrol6 (type 6) address triggers, and the GDB stub's hardware breakpoints and
 * watchpoints, which share the matching here but live in struct hart_debug where the guest
 * cannot see them.
 *
 * How the engine stays fast with nothing armed: execute triggers are checked by a handler the
 * decoder plants only in slots whose page offset an armed trigger can match (exec.c), and a
 * page holding a watched address never enters the data TLB (mmu.c), so its loads and stores
 * take the slow path, which calls trigger_check_data() before anything else. Both fire before
 * the instruction or access (timing "before", 5.7.17), so the exception is precise: epc is
 * the instruction, nothing of it retired, no memory changed. */
#include "cpu/riscv/hart.h"

/* tdata1 (5.7.2) and mcontrol6 (5.7.17) fields, RV64 */
#define TDATA1_TYPE_SHIFT 60
#define TYPE_MCONTROL6    6ull
#define TYPE_DISABLED     15ull
#define MC6_HIT0          (1ull << 22)
#define MC6_MATCH_SHIFT   7
#define MC6_MATCH         (0xfull << MC6_MATCH_SHIFT)
#define MC6_M             (1ull << 6)
#define MC6_S             (1ull << 4)
#define MC6_U             (1ull << 3)
#define MC6_EXECUTE       (1ull << 2)
#define MC6_STORE         (1ull << 1)
#define MC6_LOAD          (1ull << 0)
/* Fields kept on a write; everything else is WARL-legalized to 0: dmode (no debug mode:
 * Sdext is not implemented), hit1, vs/vu (no H), select (address only, no data match),
 * size (0 = any access size), action (0 = breakpoint exception only), chain, uncertainen. */
#define MC6_WMASK                                                                                  \
    (MC6_HIT0 | MC6_MATCH | MC6_M | MC6_S | MC6_U | MC6_EXECUTE | MC6_STORE | MC6_LOAD)
#define MATCH_EQ    0
#define MATCH_NAPOT 1
#define MATCH_GE    2
#define MATCH_LT    3

/* tinfo (5.7.6): version 1 (this spec) in bits 31:24, supported types as a bit mask. */
#define TINFO_VALUE ((1ull << 24) | (1ull << TYPE_MCONTROL6) | (1ull << TYPE_DISABLED))

static unsigned trig_type(const struct trigger *t)
{
    return (unsigned)(t->tdata1 >> TDATA1_TYPE_SHIFT);
}

static bool trig_armed(const struct trigger *t)
{
    return trig_type(t) == TYPE_MCONTROL6 && (t->tdata1 & (MC6_M | MC6_S | MC6_U)) &&
           (t->tdata1 & (MC6_EXECUTE | MC6_STORE | MC6_LOAD));
}

/* The addresses a trigger matches, as an inclusive range; false if none. */
static bool trig_range(const struct trigger *t, uint64_t *lo, uint64_t *hi)
{
    uint64_t a = t->tdata2;
    switch ((t->tdata1 & MC6_MATCH) >> MC6_MATCH_SHIFT) {
    case MATCH_NAPOT: { /* the top XLEN-1-z bits match, z = index of the lowest 0 in tdata2 */
        unsigned z = a == ~0ull ? 64 : (unsigned)__builtin_ctzll(~a);
        uint64_t span = z >= 63 ? ~0ull : (2ull << z) - 1;
        *lo = a & ~span;
        *hi = *lo | span;
        return true;
    }
    case MATCH_GE:
        *lo = a;
        *hi = ~0ull;
        return true;
    case MATCH_LT:
        *lo = 0;
        *hi = a - 1;
        return a != 0;
    default: *lo = *hi = a; return true;
    }
}

uint64_t trigger_csr_read(const struct hart *h, unsigned csr)
{
    const struct trigger *t = &h->trig[h->tselect];
    switch (csr) {
    case CSR_TSELECT: return h->tselect;
    case CSR_TDATA1: return t->tdata1;
    case CSR_TDATA2: return t->tdata2;
    case CSR_TINFO: return TINFO_VALUE;
    default: return 0; /* tdata3 (textra64): no context matching, all fields 0 */
    }
}

void trigger_csr_write(struct hart *h, unsigned csr, uint64_t val)
{
    struct trigger *t = &h->trig[h->tselect];
    switch (csr) {
    case CSR_TSELECT:
        /* WARL: an index with no trigger is not taken, so reading back tells the guest how
         * many triggers there are (5.7.1) */
        if (val < TRIG_COUNT) h->tselect = (unsigned)val;
        return;
    case CSR_TDATA1:
        if (val >> TDATA1_TYPE_SHIFT == TYPE_MCONTROL6) {
            uint64_t v = val & MC6_WMASK;
            if (((v & MC6_MATCH) >> MC6_MATCH_SHIFT) > MATCH_LT) /* mask/negated: unsupported */
                v &= ~MC6_MATCH;
            t->tdata1 = (TYPE_MCONTROL6 << TDATA1_TYPE_SHIFT) | v;
        } else {
            /* type 0 ("no trigger" when written: 5.7.2 asks for a trigger that can never
             * fire, which type 15 is) and every unsupported type become disabled */
            t->tdata1 = TYPE_DISABLED << TDATA1_TYPE_SHIFT;
        }
        break;
    case CSR_TDATA2: t->tdata2 = val; break;
    default: return; /* tdata3, tinfo: read-only here */
    }
    trigger_update(h);
}

void trigger_update(struct hart *h)
{
    h->trig_exec = h->trig_data = false;
    h->trig_nranges = 0;
    for (unsigned k = 0; k < TRIG_COUNT; k++) {
        const struct trigger *t = &h->trig[k];
        uint64_t lo, hi;
        if (!trig_armed(t) || !trig_range(t, &lo, &hi)) continue;
        if (t->tdata1 & MC6_EXECUTE) h->trig_exec = true;
        if (t->tdata1 & (MC6_LOAD | MC6_STORE)) {
            h->trig_data = true;
            h->trig_lo[h->trig_nranges] = lo;
            h->trig_hi[h->trig_nranges++] = hi;
        }
    }
    const struct hart_debug *d = h->debug;
    if (d) {
        if (d->nhwbp) h->trig_exec = true;
        for (unsigned k = 0; k < d->nwatch && k < DEBUG_MAX_WATCH; k++) {
            h->trig_data = true;
            h->trig_lo[h->trig_nranges] = d->watch[k].addr;
            h->trig_hi[h->trig_nranges++] = d->watch[k].addr + d->watch[k].len - 1;
        }
    }
    /* Pages cached before must take the slow path now; slots decoded before must be planted
     * with (or lose) the execute check. */
    tlb_flush_all(h);
    dcache_invalidate_all(h);
}

bool trigger_exec_offset(const struct hart *h, unsigned off)
{
    for (unsigned k = 0; k < TRIG_COUNT; k++) {
        const struct trigger *t = &h->trig[k];
        if (!trig_armed(t) || !(t->tdata1 & MC6_EXECUTE)) continue;
        if (((t->tdata1 & MC6_MATCH) >> MC6_MATCH_SHIFT) != MATCH_EQ) return true; /* a range */
        if ((t->tdata2 & 0xfff) == off) return true;
    }
    const struct hart_debug *d = h->debug;
    for (unsigned k = 0; d && k < d->nhwbp && k < DEBUG_MAX_HWBP; k++)
        if ((d->hwbp[k] & 0xfff) == off) return true;
    return false;
}

bool trigger_page_cacheable(const struct hart *h, uint64_t page_va)
{
    uint64_t last = page_va + 4095;
    for (unsigned k = 0; k < h->trig_nranges; k++)
        if (h->trig_lo[k] <= last && h->trig_hi[k] >= page_va) return false;
    return true;
}

/* May a guest trigger with action=0 fire now? Its m/s/u bit must name the current mode, and,
 * so that a breakpoint in the trap handler cannot recurse forever (5.4, option 1, as there is
 * no tcontrol): not in M-mode while mstatus.MIE=0, nor in S-mode while sstatus.SIE=0 when
 * breakpoints are delegated to S. */
static bool guest_mode_ok(const struct hart *h, const struct trigger *t)
{
    switch (h->priv) {
    case PRV_M: return (t->tdata1 & MC6_M) && (h->mstatus & MSTATUS_MIE);
    case PRV_S:
        return (t->tdata1 & MC6_S) &&
               (!((h->medeleg >> EXC_BREAKPOINT) & 1) || (h->mstatus & MSTATUS_SIE));
    default: return t->tdata1 & MC6_U;
    }
}

int trigger_check_exec(struct hart *h, uint64_t pc)
{
    const struct hart_debug *d = h->debug;
    for (unsigned k = 0; d && k < d->nhwbp && k < DEBUG_MAX_HWBP; k++) {
        if (d->hwbp[k] == pc) {
            h->debug_hit_kind = 0;
            h->debug_hit_addr = pc;
            return CAUSE_DEBUG_TRIGGER;
        }
    }
    bool fired = false;
    for (unsigned k = 0; k < TRIG_COUNT; k++) {
        struct trigger *t = &h->trig[k];
        uint64_t lo, hi;
        if (!trig_armed(t) || !(t->tdata1 & MC6_EXECUTE) || !guest_mode_ok(h, t) ||
            !trig_range(t, &lo, &hi) || pc < lo || pc > hi)
            continue;
        t->tdata1 |= MC6_HIT0; /* hit1:hit0 = 1: fired before the instruction retired */
        fired = true;
    }
    if (!fired) return 0;
    h->fault_tval = pc; /* xtval = the virtual address of the instruction (priv 3.1.16) */
    return EXC_BREAKPOINT;
}

int trigger_check_data(struct hart *h, uint64_t va, unsigned size, unsigned kinds)
{
    /* Compare every byte accessed (5.5: size=0 matches any access size), so an access that
     * only partly overlaps a watched range matches too. */
    uint64_t end = va + size - 1;
    if (end < va) end = ~0ull;
    const struct hart_debug *d = h->debug;
    for (unsigned k = 0; d && k < d->nwatch && k < DEBUG_MAX_WATCH; k++) {
        const struct debug_watch *w = &d->watch[k];
        uint64_t wend = w->addr + w->len - 1;
        if (!(w->kind & kinds) || va > wend || end < w->addr) continue;
        h->debug_hit_kind = w->kind;
        h->debug_hit_addr = va > w->addr ? va : w->addr;
        return CAUSE_DEBUG_TRIGGER;
    }
    bool fired = false;
    uint64_t tval = 0;
    for (unsigned k = 0; k < TRIG_COUNT; k++) {
        struct trigger *t = &h->trig[k];
        uint64_t lo, hi;
        unsigned tk =
            ((t->tdata1 & MC6_LOAD) ? TRIG_LOAD : 0) | ((t->tdata1 & MC6_STORE) ? TRIG_STORE : 0);
        if (!trig_armed(t) || !(tk & kinds) || !guest_mode_ok(h, t) || !trig_range(t, &lo, &hi) ||
            va > hi || end < lo)
            continue;
        t->tdata1 |= MC6_HIT0;
        uint64_t a = va > lo ? va : lo; /* the first accessed byte that matched */
        if (!fired || a < tval) tval = a;
        fired = true;
    }
    if (!fired) return 0;
    h->fault_tval = tval;
    return EXC_BREAKPOINT;
}

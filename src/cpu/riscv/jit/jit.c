/* The JIT (first increment): guest basic blocks translated to x86-64, one host function per
 * block, run from a dispatch loop that looks blocks up by physical page and offset.
 *
 * - Translations hang off per-physical-page records keyed and validated exactly like the
 *   interpreter's decode cache (exec.c dcache_get): a page's blocks are translated from a copy
 *   of its bytes taken when the page entered the cache, and after a fence.i (dcache_epoch
 *   bumped) the page keeps its translations only if memory still equals the copy. So a
 *   translation is dropped exactly when the interpreter would drop its decoded slots.
 * - Guest registers live in struct hart, the ones a block uses most also in host registers
 *   within the block (write-back: see struct gen). The generated code keeps rbx = hart, the
 *   read/write TLB arrays of the current data TLB set in its frame, and does the
 *   interpreter's TLB hit path inline (one tag compare, add: emit_tlb), calling
 *   mem_load_slow/mem_store_slow otherwise.
 * - pc and instret are exact: each exit of a block stores the next pc and adds the number of
 *   instructions retired up to it; a fault stores the faulting instruction's pc and the count
 *   before it and returns cause + 1, and jit_exec raises the exception as the interpreter does.
 * - LR/SC and AMOs are inline too (emit_atomic), F/D through fpu_exec. Everything else (CSRs,
 *   fence.i, system instructions, illegal encodings) is one call of the interpreter for that
 *   instruction (emit_interp_step); the block goes on
 *   unless it was an event for the run loop. So is a 32-bit instruction straddling the end
 *   of the page, which ends the block. (A block that cannot be translated would run in the
 *   interpreter for one control transfer: hart_exec with budget 1, h->exec_left > 0 tells
 *   an event.)
 * - Blocks reach each other without the dispatcher: an exit into the same page through the
 *   page record's table (emit_exit), exits into other pages and user code's jalr through
 *   far links (emit_far_exit); other jalr, and a jalr's targets other than the one it is
 *   linked to, through a shared trampoline that looks the target up in the jump cache
 *   (emit_trampoline). All count
 *   against the budget, so control returns to the run loop as often as with the interpreter. */
#include "cpu/riscv/jit/jit.h"
#include "cpu/riscv/alu.h"
#include "cpu/riscv/decode.h"
#include "cpu/riscv/fpu.h"
#include "cpu/riscv/jit/cache.h"
#include "cpu/riscv/jit/fastmem.h"
#include "cpu/riscv/jit/x86.h"
#include "util/log.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <ucontext.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* PAUSEs within one jit_exec call after which the hart yields its host CPU (as exec.c). */
#define PAUSE_YIELD_COUNT 64

/* Block table values: 0 = not translated yet, JIT_INTERP = run the interpreter here, else the
 * block's offset in the code cache. */
#define JIT_INTERP 1u

/* A page record's blocks: an open-addressing hash table (linear probing, at most half full)
 * from page offset to block table value, grown by doubling. The first version had a flat
 * table of one 32-bit entry per 2-byte slot (8 KiB per record, 8 MiB of a VM's RSS at
 * JPAGE_MAX) for the ~30 blocks a code page holds on average; generated code no longer reads
 * it (exits to blocks translated later are patched: emit_exit), so it can be sparse. */
struct jblk {
    uint32_t val; /* 0: empty slot */
    uint32_t off;
};
struct jpage {
    uint64_t ppn;   /* DPAGE_INVALID when unused */
    uint64_t epoch; /* h->dcache_epoch when last known to match memory */
    unsigned gen;   /* code cache generation the values in blk belong to */
    uint32_t ver;   /* bumped whenever blk is cleared (far links check it: emit_far_exit) */
    unsigned nblk;  /* entries in blk */
    unsigned mask;  /* blk's capacity - 1 (blk NULL: none) */
    struct jblk *blk;
    uint8_t code[DPAGE_BYTES]; /* the bytes translations are made from */
};
/* Page records: a 4-way set-associative index by physical page (JPAGE_SETS sets, most
 * recently used first in each) over at most JPAGE_MAX records (4 KiB and their block tables
 * each). A miss takes an empty way of its set, a new record while fewer than JPAGE_MAX exist,
 * else one from another set in clock order; in a full set it takes over the least recently
 * used way. The first index was direct-mapped (4096 entries, 1024 records): under the Debian
 * root disk two hot pages sharing an entry (a kernel page and one of a user program's) took it
 * from each other on every switch, and fio's 100 s run re-translated 8.2 million blocks
 * (590,000 records evicted, 84 code-cache flushes, 25 s translating: a quarter of the run). */
#define JPAGE_WAYS  4
#define JPAGE_SETS  2048
#define JPAGE_SLOTS (JPAGE_SETS * JPAGE_WAYS)
#ifndef JPAGE_MAX
#define JPAGE_MAX 4096
#endif

/* Jump cache: virtual pc -> block, so a dispatch that hits skips the page record (whose
 * header and table entry were the dispatcher's cache misses). An entry is valid while the
 * fetch TLB gives the same host page and nothing changed any record since it was filled:
 * `stamp` is bumped by every record fill, fence.i epoch, cache flush and invalidation. */
#define JC_SIZE 4096
struct jc_entry {
    uint64_t pc;
    const uint8_t *hp;
    uint32_t off, stamp;
    /* h->fm_limit when the entry was made: the block is translate's variant for it (0 or
     * FM_USER_TOP: off or on), which the dispatcher and the trampoline look up */
    uint64_t fm_limit; /* 32 bytes: the trampoline indexes with a shift */
};
_Static_assert(sizeof(struct jc_entry) == 32, "jc_entry is indexed by << 5");

struct jit {
    struct jit_cache cache;
    struct jpage *pages[JPAGE_SLOTS];
    unsigned npages, hand;
    struct jc_entry jc[JC_SIZE];
    uint32_t stamp;
    uint64_t jc_epoch;
    uint8_t *tramp;    /* RW address of the dispatch trampoline (emit_trampoline) */
    uint8_t *exit_pc;  /* its tail: h->pc = rax, return 0 */
    uint8_t *exit_eax; /* its epilogue: return eax */
    uint8_t *slow[2];  /* the load and store slow-path thunks (emit_trampoline) */
    uint8_t *link;     /* the link thunk (emit_exit) */
    uint8_t *xlink;    /* the far link thunk (emit_far_exit) */
    uint8_t *lookup;   /* the trampoline past its budget count (a jalr's other targets) */
    uint8_t *entry;    /* the shared prologue the dispatcher calls blocks through */
    unsigned pauses;
    struct jit_stats st;
    uint64_t steps_by_op[RV_OP_COUNT]; /* interpreter steps per operation (trace level) */
    bool dump_all, dump_one;           /* VESSEL_JIT_DUMP (jit.h) */
    bool perf_map;                     /* VESSEL_JIT_PERFMAP (jit.h) */
    uint64_t dump_pc;
    /* fast-memory sites of the blocks in the cache, in cache order (jit_fm_fault) */
    struct fm_site *sites;
    size_t nsites, sites_cap;
};

/* Host calling convention of a block: returns 0 (h->pc is the next block), JIT_LEAVE (an
 * interpreter step had an event: return to the run loop), or an exception cause + 1 (pc and
 * instret already set for the faulting instruction, trap value in h->fault_tval). */
#define JIT_LEAVE (-1)
/* The dispatcher enters a block through the shared prologue (emit_trampoline), which sets up
 * the frame and jumps to the block's code; blocks have no prologue of their own, so chained
 * jumps and the trampoline enter them at their start too. */
typedef int (*jit_entry_fn)(struct hart *h, struct tlb_entry *tr, struct tlb_entry *tw,
                            uint64_t vbase, struct tlb_entry *tx, const uint8_t *block);

#define OFF_X(r)      ((int32_t)(offsetof(struct hart, x) + 8 * (unsigned)(r)))
#define OFF_PC        ((int32_t)offsetof(struct hart, pc))
#define OFF_INSTRET   ((int32_t)offsetof(struct hart, instret))
#define OFF_KEY       ((int32_t)offsetof(struct hart, tlb_key))
#define OFF_LEFT      ((int32_t)offsetof(struct hart, exec_left))
#define OFF_BUDGET    ((int32_t)offsetof(struct hart, jit_budget))
#define OFF_LINK      ((int32_t)offsetof(struct hart, jit_link))
#define OFF_XLINK     ((int32_t)offsetof(struct hart, jit_xlink))
#define OFF_DEPOCH    ((int32_t)offsetof(struct hart, dcache_epoch))
#define OFF_F(r)      ((int32_t)(offsetof(struct hart, fp.f) + 8 * (unsigned)(r)))
#define OFF_MSTATUS   ((int32_t)offsetof(struct hart, mstatus))
#define OFF_RES_ADDR  ((int32_t)offsetof(struct hart, res_addr))
#define OFF_RES_VAL   ((int32_t)offsetof(struct hart, res_val))
#define OFF_RES_VALID ((int32_t)offsetof(struct hart, res_valid))
#define OFF_FM_BASE   ((int32_t)offsetof(struct hart, fm_base))
#define OFF_FM_LIMIT  ((int32_t)offsetof(struct hart, fm_limit))
#define HREG          RBX
/* The frame (emit_prologue): the read/write arrays of the current data TLB set, the virtual
 * address of the block's page and the fetch TLB array, all in memory so that r12-r15 can
 * cache guest registers. */
#define TR_SLOT       16
#define TW_SLOT       24
/* The virtual address of the block's page. Translations are keyed by physical page, and the
 * same page can run at several virtual addresses (before and after paging is enabled, shared
 * libraries in several processes): every pc in generated code is vbase + an offset. */
#define VBASE_SLOT    32
/* The fetch TLB array of the current privilege (for the dispatch trampoline). */
#define TX_SLOT       8

_Static_assert(sizeof(((struct hart *)0)->res_valid) == 1, "res_valid is stored as a byte");

/* ---- page records' block tables ---- */

static unsigned blk_hash(unsigned off)
{
    uint32_t x = (off >> 1) * 0x9e3779b1u;
    return x ^ (x >> 16);
}

/* A block's key in its page's table: its page offset, and whether it is the translation for
 * an address space with fast memory on (translate's variant: its tests may be elided). */
static unsigned blk_key(unsigned off, bool variant)
{
    return off | (unsigned)variant << 12;
}

/* The block table value at key off (blk_key): 0 when nothing was translated there. */
static uint32_t blk_get(const struct jpage *p, unsigned off)
{
    if (!p->blk) return 0;
    for (unsigned i = blk_hash(off) & p->mask;; i = (i + 1) & p->mask) {
        if (p->blk[i].val == 0) return 0;
        if (p->blk[i].off == off) return p->blk[i].val;
    }
}

static void blk_insert(struct jblk *t, unsigned mask, unsigned off, uint32_t val)
{
    unsigned i = blk_hash(off) & mask;
    while (t[i].val != 0 && t[i].off != off)
        i = (i + 1) & mask;
    t[i] = (struct jblk){val, off};
}

/* Set the value at off (val != 0). -ENOMEM leaves the table as it was. */
static int blk_put(struct jpage *p, unsigned off, uint32_t val)
{
    if (!p->blk || 2 * (p->nblk + 1) > p->mask + 1) {
        unsigned cap = p->blk ? 2 * (p->mask + 1) : 16;
        struct jblk *t = calloc(cap, sizeof(*t));
        if (!t) return -ENOMEM;
        for (unsigned i = 0; p->blk && i <= p->mask; i++)
            if (p->blk[i].val) blk_insert(t, cap - 1, p->blk[i].off, p->blk[i].val);
        free(p->blk);
        p->blk = t;
        p->mask = cap - 1;
    }
    if (blk_get(p, off) == 0) p->nblk++;
    blk_insert(p->blk, p->mask, off, val);
    return 0;
}

/* Forget the record's blocks (and give their table's memory back). */
static void blk_clear(struct jpage *p)
{
    p->ver++;
    free(p->blk);
    p->blk = NULL;
    p->nblk = p->mask = 0;
}

/* ---- helpers called from generated code ---- */

static uint64_t jit_alu_helper(uint64_t a, uint64_t b, int64_t imm, unsigned op)
{
    return rv_alu((enum rv_op)op, a, b, imm);
}

static void jit_pause_helper(struct hart *h)
{
    /* Zihintpause: see exec.c PAUSE */
    if (++h->jit->pauses >= PAUSE_YIELD_COUNT) {
        h->jit->pauses = 0;
        sched_yield();
    }
}

/* Slow paths of loads and stores (TLB miss, page crossing, MMIO, faults). info packs the
 * instruction's page offset (bits 0-11), the instructions to retire before it on a fault
 * (12-19), rd or rs2 (20-25), the access size (26-29) and sign extension (30). Values are
 * truncated to the access type, then extended, as exec.c does. Bit 31: the register is an f
 * register (FLW/FLD/FSW/FSD; a single is NaN-boxed when loaded). */
static int jit_mem_fault(struct hart *h, int c, uint32_t info, uint64_t vbase)
{
    h->pc = vbase + (info & 0xfff);
    h->instret += (info >> 12) & 0xff;
    return c + 1;
}

static int jit_load_slow(struct hart *h, uint64_t va, uint32_t info, uint64_t vbase)
{
    unsigned size = (info >> 26) & 15;
    uint64_t v;
    int c = mem_load_slow(h, va, size, &v);
    if (c) return jit_mem_fault(h, c, info, vbase);
    bool sx = (info >> 30) & 1;
    switch (size) {
    case 1: v = sx ? (uint64_t)(int64_t)(int8_t)v : (uint8_t)v; break;
    case 2: v = sx ? (uint64_t)(int64_t)(int16_t)v : (uint16_t)v; break;
    case 4: v = sx ? (uint64_t)(int64_t)(int32_t)v : (uint32_t)v; break;
    default: break;
    }
    if (info >> 31)
        h->fp.f[(info >> 20) & 31] = size == 4 ? fpu_box32((uint32_t)v) : v;
    else
        h->x[(info >> 20) & 63] = v;
    return 0;
}

static int jit_store_slow(struct hart *h, uint64_t va, uint32_t info, uint64_t vbase)
{
    unsigned size = (info >> 26) & 15;
    uint64_t v = info >> 31 ? h->fp.f[(info >> 20) & 31] : h->x[(info >> 20) & 63];
    if (size < 8) v &= (1ull << (8 * size)) - 1;
    int c = mem_store_slow(h, va, size, v);
    return c ? jit_mem_fault(h, c, info, vbase) : 0;
}

/* One instruction in the interpreter (emit_interp_step), counted for the debug line and, per
 * operation, for the trace level (what to translate next). */
static void jit_interp_step(struct hart *h, unsigned op)
{
    h->jit->st.steps++;
    h->jit->steps_by_op[op]++;
    hart_exec(h, 0);
}

/* An OP-FP or fused multiply-add instruction (encoding insn) with mstatus.FS already checked:
 * the interpreter's fpu_exec without the step around it. Non-zero for an illegal encoding, which
 * fpu_exec rejects before changing anything: the block then runs the instruction as an
 * interpreter step, which raises the exception. */
static int jit_fpu_helper(struct hart *h, uint32_t insn)
{
    if (fpu_exec(&h->fp, h->x, insn) != 0) return 1;
    h->mstatus |= FS_DIRTY;
    return 0;
}

/* A CSR instruction (info: csr number, operation, rs1 or uimm, rd, flags; emit_csr) with pc and
 * instret exact: the interpreter's CSR_OP without the step around it. 0: retired, the block
 * goes on; 1: retired, but the write may have changed what the run loop or the block depends
 * on (csr_write_is_quiet): the block returns to the run loop; 2: an exception, with nothing
 * changed: the block runs the instruction as an interpreter step, which raises it. */
static int jit_csr_helper(struct hart *h, uint32_t info)
{
    unsigned csr = info & 0xfff, op = (info >> 12) & 3, src = (info >> 14) & 31,
             rd = (info >> 19) & 63; /* 32: x0's sink (decode.h) */
    bool uimm = (info >> 25) & 1, wr = (info >> 26) & 1;
    uint64_t before = h->mstatus, old;
    if (csr_access(h, csr, (int)op, uimm ? src : h->x[src], wr, &old)) return 2;
    if (rd) h->x[rd] = old;
    h->pc += 4;
    h->instret++;
    return !wr || csr_write_is_quiet(h, csr, before) ? 0 : 1;
}

/* ---- code generation ---- */

/* STUB_STEP: run the instruction as an interpreter step and return to the run loop (the rare
 * cases of an instruction with inline code: F/D with mstatus.FS off, illegal FP encodings). */
enum stub_kind { STUB_LOAD, STUB_STORE, STUB_BRANCH, STUB_STEP };
struct stub {
    enum stub_kind kind;
    uint8_t *from[2]; /* jcc displacements that lead here */
    uint8_t *back;    /* where the fast path continues */
    struct rv_decoded d;
    int32_t off;    /* the instruction's page offset */
    unsigned k;     /* instructions of the block retired before this one */
    uint16_t dirty; /* cached registers not yet written back where the fast path jumps here */
    uint16_t live;  /* cached registers loaded where the fast path continues (at back) */
    uint16_t live_at_jump; /* cached registers loaded where the fast path jumps here */
    /* A fast-memory access (emit_fm): the host load or store that faults when its page is
     * not mapped; the fault handler resumes at the stub (jit_fm_fault). NULL otherwise. */
    uint8_t *site;
    bool site_based; /* rax is fm_base + va there, not va */
    /* A fast-memory access whose limit test failed (an address space still warming up, or
     * not user mode) takes the TLB path in its stub before any slow path: the access as
     * the fast path makes it, through the register `reg` (a load's destination, a store's
     * data: reloaded from src_off first when the fast path loaded it after its jump), then
     * back to `after`, just after the fast path's access. */
    uint8_t *after;
    enum x86_reg reg;
    bool reload_src;
    /* No limit test of its own: an earlier test of the same base register stands for it
     * (emit_fm); the fault handler's way in computes rax = va first. */
    bool elided;
    int32_t src_off;
};

/* A fast-memory access in the code cache and its stub (cache offsets, < 2^31), in cache
 * order; FM_SITE_BASED in stub: rax holds fm_base + va at the access, not va. */
struct fm_site {
    uint32_t at, stub;
};
#define FM_SITE_BASED (1u << 31)

struct gen {
    struct x86 e;
    struct stub stubs[2 * JIT_MAX_INSNS];
    unsigned nstubs;
    const struct jpage *page; /* the page record the block is translated for (chaining) */
    const uint8_t *bodies_rw; /* cache.rw: blocks' code at their offsets (for rel32 targets) */
    int32_t start;            /* this block's page offset */
    const uint8_t *tramp;     /* the dispatch trampoline (RW address; rel32 is the same in RX) */
    const uint8_t *exit_pc, *exit_eax; /* the trampoline's tails: blocks jump there to return */
    const uint8_t *slow[2];            /* the slow-path thunks (RW addresses) */
    const uint8_t *link;               /* the link thunk (RW address) */
    const uint8_t *xlink;              /* the far link thunk (RW address) */
    const uint8_t *lookup;             /* the trampoline's lookup (RW address) */
    /* Register caching: guest register r is held in host register host[r] (-1: only in
     * struct hart). Writes go to the host register only (write-back): `dirty` says which
     * cached registers h->x does not have yet at the point being emitted. Every way out of
     * the fast path (block exits, side exits, slow paths, helper calls, interpreter steps)
     * writes the dirty ones back first (flush_dirty), so exits, slow paths and the
     * interpreter see h->x exactly as before. The cached registers are caller-saved and
     * reloaded after every call (reload_cached). */
    int8_t host[33];
    int8_t cidx[33];             /* the index in cached[] of a cached guest register, else -1 */
    uint8_t ncached, cached[16]; /* the guest registers cached, in host register order */
    uint16_t live;               /* bit i: cached[i]'s host register holds its value */
    uint16_t dirty;              /* bit i: cached[i] was written since h->x last had it */
    /* Loads and stores use fast memory (translated in user mode with fast memory on); the
     * fast-memory sites of this block, for struct jit's list once it is committed. */
    bool fm;
    bool fm_r15; /* fm accesses through r15 = h->fm_base, loaded at the block's start */
    /* A block that jumps back to its own start (closes_loop) does so at `head`, after loading
     * every cached register: there all are live and the ones in dh (written somewhere in the
     * block) count as dirty (emit_loop_head, emit_back_edge). NULL otherwise. */
    uint8_t *head;
    uint16_t dh;
    /* Elided limit tests (emit_fm). variant: the block is translated for an address space
     * with fast memory on (jit_exec's lookup key); elide: it also starts with a test that
     * fast memory is on (else it leaves to the dispatcher at once), so that an
     * access whose base register passed the limit test earlier in the block, unchanged
     * since, and whose offset is within 2 KiB of that test's, needs no test of its own: it
     * stays inside the region or its guards. fmc: the guest registers tested so far (with
     * the offset tested in fmc_imm). */
    bool variant, elide;
    unsigned elided;
    uint64_t fmc; /* bit 32: x[32], the decoder's sink for writes of x0 */
    int32_t fmc_imm[32];
    unsigned nsites;
    struct fm_site sites[2 * JIT_MAX_INSNS];
};

/* Host registers for cached guest registers: never scratch in block bodies (rax, rcx, rdx
 * are); argument registers among them are set up for a call only after the dirty ones were
 * written back (calls take guest values from h->x). rbp and r12-r15 are callee-saved (the
 * prologue saves them), the others caller-saved: all are reloaded after a call anyway, as
 * the call may have written h->x. */
static const enum x86_reg cache_regs[] = {RSI, RDI, R8, R9, R10, R11, RBP, R12, R13, R14, R15};
#define NCACHE_REGS (sizeof(cache_regs) / sizeof(cache_regs[0]))

/* The host register of cached guest register r, loaded from h->x first where this is the
 * block's (or, after a call, the rest of the block's) first read of it. Loads are made lazily
 * like this rather than at the body's start since a block is straight-line code whose side
 * exits mostly leave early: whether a register is loaded at a point is known statically. */
static enum x86_reg hreg(struct gen *g, unsigned r)
{
    uint16_t bit = (uint16_t)(1u << g->cidx[r]);
    enum x86_reg h = (enum x86_reg)g->host[r];
    if (!(g->live & bit)) {
        x86_mov_load(&g->e, h, M(HREG, OFF_X(r)));
        g->live |= bit;
    }
    return h;
}

/* A guest register as an operand: its host register, or its slot in struct hart. */
static struct x86_rm greg(struct gen *g, unsigned r)
{
    if (g->host[r] < 0) return M(HREG, OFF_X(r));
    return R(hreg(g, r));
}

/* Reload the cached registers in mask from h->x (a slow path's stub, before it returns to
 * the fast path, where they are live). */
static void reload_cached(struct gen *g, uint16_t mask)
{
    for (unsigned i = 0; i < g->ncached; i++)
        if (mask & (1u << i)) x86_mov_load(&g->e, cache_regs[i], M(HREG, OFF_X(g->cached[i])));
}

/* The fast path continues here after stub s returns: what is live here is what s reloads. */
static void set_back(struct gen *g, struct stub *s)
{
    s->back = g->e.p;
    s->live = g->live;
}

/* After a call in the fast path (the dirty registers were written back before it): the
 * host registers are lost, h->x has everything, and each is loaded again where it is next
 * read. */
static void forget_cached(struct gen *g)
{
    g->live = g->dirty = 0;
}

/* cache_regs[] indices of the callee-saved host registers (rbp, r12-r15): a call keeps
 * their values. */
#define CALLEE_SAVED_CACHED 0x7c0u

/* After a call of a helper that writes no x register (the dirty ones were written back
 * before it): the callee-saved host registers still hold their guest registers' values. */
static void keep_callee_saved(struct gen *g)
{
    g->live &= CALLEE_SAVED_CACHED;
    g->dirty = 0;
}

/* Guest register r (cached) was written in its host register. */
static void mark_written(struct gen *g, unsigned r)
{
    g->live |= (uint16_t)(1u << g->cidx[r]);
    g->dirty |= (uint16_t)(1u << g->cidx[r]);
}

/* Write the cached registers in mask back to h->x (before anything leaves the fast path). */
static void flush_dirty(struct gen *g, uint16_t mask)
{
    for (unsigned i = 0; i < g->ncached; i++)
        if (mask & (1u << i)) x86_mov_store(&g->e, M(HREG, OFF_X(g->cached[i])), cache_regs[i]);
}

/* A short forward jump's target: the layouts using them keep it within reach, and a miss
 * would be an engine bug, caught as a failed translation (the block then runs in the
 * interpreter) rather than a wrong jump. */
static void patch8(struct x86 *e, uint8_t *at, const uint8_t *target)
{
    if (!x86_patch8(at, target)) {
        log_error("jit: short jump out of reach (%td bytes)", target - at);
        e->overflow = true;
    }
}

/* dst = vbase + off (flags unchanged) */
static void emit_vpc(struct x86 *e, enum x86_reg dst, int32_t off)
{
    x86_mov_load(e, dst, M(RSP, VBASE_SLOT));
    if (off) x86_lea(e, dst, M(dst, off));
}

/* 6 pushes + 40 bytes: 16-byte aligned for calls, with a scratch slot at [rsp] and the
 * block function's arguments but the hart at the *_SLOT offsets */
#define FRAME 40
static void emit_prologue(struct x86 *e)
{
    x86_push(e, RBX);
    x86_push(e, RBP);
    x86_push(e, R12);
    x86_push(e, R13);
    x86_push(e, R14);
    x86_push(e, R15);
    x86_alu_imm(e, true, ALU_SUB, R(RSP), FRAME);
    x86_mov_load(e, RBX, R(RDI));
    x86_mov_store(e, M(RSP, TR_SLOT), RSI);
    x86_mov_store(e, M(RSP, TW_SLOT), RDX);
    x86_mov_store(e, M(RSP, VBASE_SLOT), RCX);
    x86_mov_store(e, M(RSP, TX_SLOT), R8);
}
static void emit_epilogue(struct x86 *e)
{
    x86_alu_imm(e, true, ALU_ADD, R(RSP), FRAME);
    x86_pop(e, R15);
    x86_pop(e, R14);
    x86_pop(e, R13);
    x86_pop(e, R12);
    x86_pop(e, RBP);
    x86_pop(e, RBX);
    x86_ret(e);
}

/* A far link: an exit to another page jumps straight to its target's body while the record
 * says the link still holds (emit_far_exit). It sits in the code cache after the exit's code
 * (read through the RX view, written by jit_exec through the RW one). */
struct far_link {
    uint64_t pc;      /* the target's virtual pc (1 until linked: never matches) */
    uint64_t addend;  /* the fetch TLB entry's addend for it when linked */
    uint64_t page;    /* the target's page record (struct jpage *) */
    uint32_t ver;     /* the record's ver when linked */
    uint32_t tlb_off; /* the fetch TLB entry's offset in its array */
    uint32_t jmp_at;  /* the cache offset of the jump's rel32 to patch */
    uint32_t jalr;    /* 1: a jalr's (its other targets take the trampoline's lookup) */
};
_Static_assert(sizeof(struct far_link) == 40, "far_link layout");
#define FL(f) ((int32_t)offsetof(struct far_link, f))

/* An exit to another page, with rax = the target pc (instret counted, dirty registers
 * written back). It counts against the budget like every chained exit. Then, where the
 * exit's far link (struct far_link) names this pc, the current fetch TLB still maps the pc's
 * page to the same host page as when it was linked, and the target's page record is the
 * same (ver) and checked against memory since the last fence.i (epoch): the target's vbase
 * goes in the frame and a direct jump enters its body. Anything else goes to the far link
 * thunk (emit_trampoline), which asks jit_exec to link the exit to the block it runs next.
 * A user program's jalr (jalr: true) is linked the same way to the first target it takes;
 * its other targets (a function's return to another caller) take the trampoline's
 * jump-cache lookup rather than a new link each time. Linking returns took gzip -6 of
 * random data from 1.11 to 1.08 s; the kernel's returns, to many callers, cost a boot 2-3%
 * more host CPU that way (larger code, the failed compare), so they keep the trampoline.
 * The first version sent these exits through the dispatch trampoline: its one indirect jump
 * for every such exit in the guest mispredicted, and sha256sum, whose round loop spans a page
 * end, spent 21% of its time in it. */
static void emit_far_exit(struct gen *g, bool jalr)
{
    struct x86 *e = &g->e;
    x86_alu_imm(e, false, ALU_SUB, M(HREG, OFF_BUDGET), 1);
    x86_patch(x86_jcc(e, CC_LE), g->exit_pc); /* h->pc = rax, return 0 */
    uint8_t *rec = x86_lea_rip(e, RDI);
    uint8_t *miss[5];
    unsigned n = 0;
    x86_alu_rm(e, true, ALU_CMP, RAX, M(RDI, FL(pc)));
    uint8_t *other = x86_jcc(e, CC_NE);
    if (!jalr) miss[n++] = other;
    x86_mov32_load(e, RDX, M(RDI, FL(tlb_off)));
    x86_alu_rm(e, true, ALU_ADD, RDX, M(RSP, TX_SLOT));
    x86_mov_load(e, RCX, R(RAX));
    x86_shift_imm(e, true, SH_SHR, RCX, 12);
    x86_alu_rm(e, true, ALU_XOR, RCX, M(HREG, OFF_KEY));
    x86_alu_rm(e, true, ALU_CMP, RCX, M(RDX, 0));
    miss[n++] = x86_jcc(e, CC_NE);
    x86_mov_load(e, RCX, M(RDX, 8));
    x86_alu_rm(e, true, ALU_CMP, RCX, M(RDI, FL(addend)));
    miss[n++] = x86_jcc(e, CC_NE);
    x86_mov_load(e, RDX, M(RDI, FL(page)));
    x86_mov32_load(e, RCX, M(RDX, (int32_t)offsetof(struct jpage, ver)));
    x86_alu_rm(e, false, ALU_CMP, RCX, M(RDI, FL(ver)));
    miss[n++] = x86_jcc(e, CC_NE);
    x86_mov_load(e, RCX, M(RDX, (int32_t)offsetof(struct jpage, epoch)));
    x86_alu_rm(e, true, ALU_CMP, RCX, M(HREG, OFF_DEPOCH));
    miss[n++] = x86_jcc(e, CC_NE);
    x86_alu_imm(e, true, ALU_AND, R(RAX), -4096);
    x86_mov_store(e, M(RSP, VBASE_SLOT), RAX);
    uint8_t *jmp = x86_jmp(e); /* to the target's body once linked */
    x86_patch(jmp, g->xlink);  /* (not reached before: pc is 1 until then) */
    for (unsigned k = 0; k < n; k++)
        x86_patch(miss[k], g->xlink);
    if (jalr) { /* another target: linked first if never linked, else the trampoline's lookup */
        x86_patch(other, e->p);
        x86_alu_imm(e, true, ALU_CMP, M(RDI, FL(pc)), 1);
        x86_patch(x86_jcc(e, CC_E), g->xlink);
        x86_patch(x86_jmp(e), g->lookup);
    }
    while (((uintptr_t)e->p & 7) && !e->overflow)
        x86_b(e, 0xcc); /* int3: never run */
    x86_patch(rec, e->p);
    if (e->overflow) return;
    struct far_link fl = {.pc = 1, .jmp_at = (uint32_t)(jmp - g->bodies_rw), .jalr = jalr};
    x86_bytes(e, &fl, sizeof(fl));
}

/* Leave the block for the guest pc vbase + off with n more instructions retired. A jump to
 * the block's own start is a back edge to its loop head (closes_loop saw it: emit_back_edge).
 * A target in the same page is chained when the budget allows: a jump straight into its body
 * when it was translated before this block; otherwise the jump
 * first goes to a link request (h->jit_link = where the jump's displacement is, and the
 * page), the block returns to the dispatcher, and the dispatcher patches the jump to the
 * target's body once it has that block (jit_exec). Only exits to a block starting at or
 * before this block's start count against the budget: chained jumps always enter a block at
 * its start, so any cycle of them has such an exit (and the trampoline and the dispatcher
 * count every other way); a chain of forward exits ends within the page. A block and the
 * blocks it jumps to this
 * way belong to the same page record, whose entries are set once and reset only with the
 * whole record (code changed, eviction, cache flush), which makes all of them unreachable
 * together: nothing ever needs unlinking. Exits to other pages are far links (emit_far_exit). */
static void emit_back_edge(struct gen *g, unsigned n, uint16_t dirty, uint16_t live);

static void emit_exit(struct gen *g, int32_t off, unsigned n, uint16_t dirty, uint16_t live)
{
    struct x86 *e = &g->e;
    if (off == g->start && g->head) {
        emit_back_edge(g, n, dirty, live);
        return;
    }
    flush_dirty(g, dirty);
    if (n) x86_alu_imm(e, true, ALU_ADD, M(HREG, OFF_INSTRET), (int32_t)n);
    bool same_page = off >= 0 && off < DPAGE_BYTES;
    uint32_t v = same_page ? blk_get(g->page, blk_key((unsigned)off, g->variant)) : 0;
    if (same_page && v != JIT_INTERP) {
        bool backward = off <= g->start;
        uint8_t *nochain = NULL;
        if (backward) {
            x86_alu_imm(e, false, ALU_SUB, M(HREG, OFF_BUDGET), 1);
            nochain = x86_jcc8(e, CC_LE); /* over the jmp */
        }
        uint8_t *site = x86_jmp(e);
        if (v) x86_patch(site, g->bodies_rw + v);
        if (v && !backward) return; /* always chained */
        /* The way back to the dispatcher: a call of the link thunk, whose return address
         * says where the site's displacement is and is followed by the page and the target's
         * offset (emit_trampoline). Not translated yet, the site leads here: a link request.
         * With the budget spent the request is moot (jit_exec stops). */
        if (!v) x86_patch(site, e->p);
        patch8(e, nochain, e->p);
        _Static_assert(JIT_CACHE_MAX <= (1ull << 32), "site offsets are 32-bit");
        x86_patch(x86_call(e), g->link);
        x86_d(e, (uint32_t)g->page->ppn);
        x86_d(e, (uint32_t)off);
        return;
    }
    emit_vpc(e, RAX, off);
    if (same_page)
        x86_patch(x86_jmp(e), g->exit_pc); /* h->pc = rax, return 0 */
    else
        emit_far_exit(g, false);
}

/* The jump of a block to its own start when it has a loop head (g->head): with `live` and
 * `dirty` the cached registers loaded and not yet written back there, it loads the others,
 * writes back the dirty ones the head does not count as dirty, counts n instructions and
 * one block against the budget, and jumps to the head, the guest registers staying in host
 * registers. With the budget spent it leaves the block for its start instead. The first
 * version of a loop went back through the block's start, writing back and loading again
 * every cached register each time: gzip's longest_match carried its chain pointer through
 * h->x (a store forwarded to a load) on every iteration. */
static void emit_back_edge(struct gen *g, unsigned n, uint16_t dirty, uint16_t live)
{
    struct x86 *e = &g->e;
    uint16_t all = (uint16_t)((1u << g->ncached) - 1);
    reload_cached(g, all & ~live);
    flush_dirty(g, dirty & ~g->dh);
    if (n) x86_alu_imm(e, true, ALU_ADD, M(HREG, OFF_INSTRET), (int32_t)n);
    x86_alu_imm(e, false, ALU_SUB, M(HREG, OFF_BUDGET), 1);
    x86_patch(x86_jcc(e, CC_G), g->head);
    flush_dirty(g, (uint16_t)((dirty | g->dh) & all));
    emit_vpc(e, RAX, g->start);
    x86_patch(x86_jmp(e), g->exit_pc); /* h->pc = rax, return 0 */
}

/* The trampoline's lookup of the block for the guest pc in rax (the fetch TLB, then the jump
 * cache): a jump there, or to one of the out[] jumps (added at *n) on a miss. fm: for user
 * code with fast memory, whose jump-cache entries must match fm_limit too; the kernel's code
 * is only ever looked up with fast memory off (a translation for it on that the kernel's
 * lookup could find is left at once by its start test or its first failed limit test). */
static void emit_lookup(struct x86 *e, struct jit *j, bool fm, uint8_t **out, unsigned *n)
{
    /* fetch TLB: tag = vpn ^ key at tx[vpn & (TLB_SIZE - 1)]; hp = (pc & ~0xfff) + addend */
    x86_mov_load(e, RCX, R(RAX));
    x86_shift_imm(e, true, SH_SHR, RCX, 12);
    x86_mov32_load(e, RDX, R(RCX));
    x86_alu_imm(e, false, ALU_AND, R(RDX), TLB_SIZE - 1);
    x86_shift_imm(e, false, SH_SHL, RDX, 4);
    x86_alu_rm(e, true, ALU_ADD, RDX, M(RSP, TX_SLOT));
    x86_alu_rm(e, true, ALU_XOR, RCX, M(HREG, OFF_KEY));
    x86_alu_rm(e, true, ALU_CMP, RCX, M(RDX, 0));
    out[(*n)++] = x86_jcc(e, CC_NE);
    x86_mov_load(e, RCX, R(RAX));
    x86_alu_imm(e, true, ALU_AND, R(RCX), -4096);
    x86_alu_rm(e, true, ALU_ADD, RCX, M(RDX, 8));
    /* jump cache entry (pc >> 1) & (JC_SIZE - 1): same pc, same host page, current stamp,
     * same fast-memory state */
    x86_mov32_load(e, RDX, R(RAX));
    x86_shift_imm(e, false, SH_SHR, RDX, 1);
    x86_alu_imm(e, false, ALU_AND, R(RDX), JC_SIZE - 1);
    x86_shift_imm(e, false, SH_SHL, RDX, 5);
    x86_mov_imm(e, RSI, (uint64_t)(uintptr_t)j->jc);
    x86_alu_rm(e, true, ALU_ADD, RDX, R(RSI));
    x86_alu_rm(e, true, ALU_CMP, RAX, M(RDX, (int32_t)offsetof(struct jc_entry, pc)));
    out[(*n)++] = x86_jcc(e, CC_NE);
    x86_alu_rm(e, true, ALU_CMP, RCX, M(RDX, (int32_t)offsetof(struct jc_entry, hp)));
    out[(*n)++] = x86_jcc(e, CC_NE);
    x86_mov32_load(e, RSI, M(RDX, (int32_t)offsetof(struct jc_entry, stamp)));
    x86_mov_imm(e, RDI, (uint64_t)(uintptr_t)&j->stamp);
    x86_alu_rm(e, false, ALU_CMP, RSI, M(RDI, 0));
    out[(*n)++] = x86_jcc(e, CC_NE);
    if (fm) { /* the translation for fast memory on or off, as now (translate's variant) */
        x86_mov_load(e, RSI, M(HREG, OFF_FM_LIMIT));
        x86_alu_rm(e, true, ALU_CMP, RSI, M(RDX, (int32_t)offsetof(struct jc_entry, fm_limit)));
        out[(*n)++] = x86_jcc(e, CC_NE);
    }
    x86_mov_load(e, RCX, R(RAX));
    x86_alu_imm(e, true, ALU_AND, R(RCX), -4096);
    x86_mov_store(e, M(RSP, VBASE_SLOT), RCX);
    x86_mov32_load(e, RDX, M(RDX, (int32_t)offsetof(struct jc_entry, off)));
    x86_mov_imm(e, RCX, (uint64_t)(uintptr_t)j->cache.rx);
    x86_alu_rm(e, true, ALU_ADD, RDX, R(RCX));
    x86_jmp_reg(e, RDX);
}

/* The dispatch trampoline, shared by all blocks, for jalr and exits to other pages: with
 * rax = the target pc (instret already counted), it does the dispatcher's fetch-TLB and
 * jump-cache lookup and jumps into the target block's body with its page's vbase in the frame, or
 * stores the pc and returns 0 to the dispatcher. The jump cache holds only blocks the
 * dispatcher validated, under the current stamp; whatever bumps the stamp (fence.i, records
 * refilled, flushes) is either dispatcher work or an event that returns to it first. */
static void emit_trampoline(struct jit *j)
{
    struct x86 e;
    x86_init(&e, j->cache.rw + j->cache.used, jit_cache_avail(&j->cache));
    j->entry = e.p; /* jit_entry_fn: the frame, then the block at r9 */
    emit_prologue(&e);
    x86_jmp_reg(&e, R9);
    uint8_t *tramp = e.p;
    uint8_t *out[16];
    unsigned n = 0;
    x86_alu_imm(&e, false, ALU_SUB, M(HREG, OFF_BUDGET), 1);
    out[n++] = x86_jcc(&e, CC_LE);
    emit_lookup(&e, j, false, out, &n); /* jalr without fast memory: the kernel (emit_insn) */
    j->lookup = e.p;                    /* user code's jalr to other targets (emit_far_exit) */
    emit_lookup(&e, j, true, out, &n);
    for (unsigned k = 0; k < n; k++)
        x86_patch(out[k], e.p);
    /* the tails every block returns through (one copy of the epilogue, not one per exit) */
    j->exit_pc = e.p;
    x86_mov_store(&e, M(HREG, OFF_PC), RAX);
    x86_alu_rm(&e, false, ALU_XOR, RAX, R(RAX));
    j->exit_eax = e.p;
    emit_epilogue(&e);
    /* The load and store slow paths, called from a block's stubs with rax = va and edx = the
     * info word: jit_load_slow/jit_store_slow(h, va, info, vbase); on a fault they leave
     * through the epilogue with its cause + 1, else return to the stub. One copy here rather
     * than the argument set-up and the call in every stub. */
    for (unsigned k = 0; k < 2; k++) {
        j->slow[k] = e.p;
        x86_mov_load(&e, RDI, R(HREG));
        x86_mov_load(&e, RSI, R(RAX));
        x86_mov_load(&e, RCX, M(RSP, 8 + VBASE_SLOT)); /* above the return address */
        x86_alu_imm(&e, true, ALU_SUB, R(RSP), 8);     /* 16-byte aligned for the call */
        x86_call_abs(&e, k == 0 ? (const void *)jit_load_slow : (const void *)jit_store_slow);
        x86_alu_imm(&e, true, ALU_ADD, R(RSP), 8);
        x86_test32(&e, RAX, RAX);
        uint8_t *fault = x86_jcc8(&e, CC_NE);
        x86_ret(&e);
        patch8(&e, fault, e.p);
        x86_alu_imm(&e, true, ALU_ADD, R(RSP), 8); /* the block's frame again */
        x86_patch(x86_jmp(&e), j->exit_eax);
    }
    /* The link thunk (emit_exit): called right after an exit's jump, its return address is
     * followed by the page (32 bits) and the target's page offset (32 bits). It asks the
     * dispatcher to patch that jump (h->jit_link = the jump's displacement's cache offset |
     * page << 32) and leaves for vbase + offset. */
    j->link = e.p;
    x86_b(&e, 0x59);                          /* pop rcx */
    x86_mov32_load(&e, RDX, M(RCX, 0));       /* the page */
    x86_shift_imm(&e, true, SH_SHL, RDX, 32); /* | */
    x86_lea(&e, RAX, M(RCX, -9));             /* the jmp's rel32 before the call */
    x86_mov_imm(&e, RSI, (uint64_t)(uintptr_t)j->cache.rx);
    x86_alu_rm(&e, true, ALU_SUB, RAX, R(RSI)); /* its cache offset */
    x86_alu_rm(&e, true, ALU_OR, RDX, R(RAX));
    x86_mov_store(&e, M(HREG, OFF_LINK), RDX);
    x86_mov32_load(&e, RAX, M(RCX, 4)); /* the target's page offset */
    x86_alu_rm(&e, true, ALU_ADD, RAX, M(RSP, VBASE_SLOT));
    x86_patch(x86_jmp(&e), j->exit_pc); /* h->pc = rax, return 0 */
    /* The far link thunk (emit_far_exit), with rax = the target pc and rdi = the exit's far
     * link (RX address): h->jit_xlink = its cache offset + 1, and leave for rax. */
    j->xlink = e.p;
    x86_mov_imm(&e, RSI, (uint64_t)(uintptr_t)j->cache.rx - 1);
    x86_alu_rm(&e, true, ALU_SUB, RDI, R(RSI));
    x86_mov_store(&e, M(HREG, OFF_XLINK), RDI);
    x86_patch(x86_jmp(&e), j->exit_pc);
    j->tramp = tramp;
    jit_cache_commit(&j->cache, x86_len(&e)); /* fits: the cache is at least 64 KiB */
}

static struct stub *new_stub(struct gen *g, enum stub_kind kind, const struct rv_decoded *d,
                             int32_t off, unsigned k)
{
    struct stub *s = &g->stubs[g->nstubs++];
    *s = (struct stub){kind, {NULL, NULL}, NULL,  *d,   off, k,     g->dirty, 0,
                       0,    NULL,         false, NULL, RAX, false, 0,        false};
    return s;
}

static unsigned mem_size(enum rv_op op)
{
    switch (op) {
    case RV_OP_LB:
    case RV_OP_LBU:
    case RV_OP_SB: return 1;
    case RV_OP_LH:
    case RV_OP_LHU:
    case RV_OP_SH: return 2;
    case RV_OP_LW:
    case RV_OP_LWU:
    case RV_OP_SW:
    case RV_OP_FLW:
    case RV_OP_FSW: return 4;
    default: return 8;
    }
}

/* rax = va = x[rs1] + imm; rdx = &tlb[index]; jumps to the stub (with rax = va) unless the
 * page hits in the TLB and the access stays inside it; then rax = host address. (An alignment
 * test instead of the bound sent gzip's misaligned loads to the slow path, which walks the
 * page table every time: walk went from 4 to 8% of the run.) */
static void emit_va(struct gen *g, const struct stub *s)
{
    struct x86 *e = &g->e;
    if (g->host[s->d.rs1] >= 0 && s->d.imm) {
        x86_lea(e, RAX, M(hreg(g, s->d.rs1), s->d.imm));
    } else if (g->host[s->d.rs1] >= 0) {
        x86_mov_load(e, RAX, R(hreg(g, s->d.rs1)));
    } else {
        x86_mov_load(e, RAX, greg(g, s->d.rs1));
        if (s->d.imm) x86_alu_imm(e, true, ALU_ADD, R(RAX), s->d.imm);
    }
}

/* Whether the access at x[b] + imm needs no limit test of its own in a block that elides
 * them (gen.elide): b passed one earlier in the block, unchanged since, at an offset within
 * 2 KiB of imm, so x[b] + imm is within 4 KiB of an address below FM_USER_TOP: inside the
 * region or its guards. */
static bool fm_elidable(const struct gen *g, unsigned b, int32_t imm)
{
    return b && g->host[b] >= 0 && (g->fmc >> b & 1) && imm - g->fmc_imm[b] < 2048 &&
           g->fmc_imm[b] - imm < 2048;
}

/* x[b] + imm passed its limit test (b in a host register: it stays as tested until written). */
static void fm_tested(struct gen *g, unsigned b, int32_t imm)
{
    if (b && g->host[b] >= 0) {
        g->fmc |= 1ull << b;
        g->fmc_imm[b] = imm;
    }
}

/* Fast memory (fastmem.h): rax = va = x[rs1] + imm; jumps to the stub (rax = va) unless
 * va < h->fm_limit (a user address, in user mode under Sv39); else returns the operand of
 * the access, fm_base (r15) + va, which is the site: when the page is not mapped there (or
 * read-only for a store) the host faults and jit_fm_fault resumes at the stub, rax = va.
 * An access that starts below the limit and ends above it faults in the guard.
 * In a block that elides tests, an access whose test an earlier one stands for has none;
 * one whose test fails does not come back (emit_stub). */
static struct x86_rm emit_fm(struct gen *g, struct stub *s)
{
    struct x86 *e = &g->e;
    unsigned b = s->d.rs1;
    if (g->elide && fm_elidable(g, b, s->d.imm)) {
        enum x86_reg hb = hreg(g, b);
        s->elided = true;
        s->live_at_jump = g->live;
        g->elided++;
        return MI(R15, hb, s->d.imm);
    }
    emit_va(g, s);
    x86_alu_rm(e, true, ALU_CMP, RAX, M(HREG, OFF_FM_LIMIT));
    s->from[0] = x86_jcc(e, CC_AE);
    s->live_at_jump = g->live;
    if (g->elide) fm_tested(g, b, s->d.imm);
    if (!g->fm_r15) { /* rax = fm_base + va: the fault handler takes fm_base off again */
        x86_alu_rm(e, true, ALU_ADD, RAX, M(HREG, OFF_FM_BASE));
        s->site_based = true;
        return M(RAX, 0);
    }
    /* [r15 + x[rs1] + imm]: the access does not wait for rax */
    if (g->host[s->d.rs1] >= 0) return MI(R15, (enum x86_reg)g->host[s->d.rs1], s->d.imm);
    return MI(R15, RAX, 0);
}

static void emit_tlb(struct gen *g, struct stub *s, int32_t tlb_slot, unsigned size);

/* The address of a load or store, fast memory or the TLB: the operand of the access, which
 * follows (fm_site marks it). */
static struct x86_rm emit_addr(struct gen *g, struct stub *s, int32_t tlb_slot, unsigned size)
{
    if (g->fm) return emit_fm(g, s);
    emit_tlb(g, s, tlb_slot, size);
    return M(RAX, 0);
}

static void fm_site(struct gen *g, struct stub *s)
{
    if (g->fm) s->site = g->e.p;
}

static uint8_t *emit_tlb_check(struct x86 *e, int32_t tlb_slot, unsigned size);

static void emit_tlb(struct gen *g, struct stub *s, int32_t tlb_slot, unsigned size)
{
    emit_va(g, s);
    s->from[0] = emit_tlb_check(&g->e, tlb_slot, size);
    s->live_at_jump = g->live;
    x86_alu_rm(&g->e, true, ALU_ADD, RAX, M(RDX, 8));
}

/* rax = va: rdx = &tlb[index]; the jcc taken unless the page hits in the TLB and the access
 * stays inside it (then host address = rax + [rdx + 8]). */
static uint8_t *emit_tlb_check(struct x86 *e, int32_t tlb_slot, unsigned size)
{
    /* rdx = tlb + ((va >> 12) & (TLB_SIZE - 1)) * sizeof(struct tlb_entry) */
    _Static_assert(sizeof(struct tlb_entry) == 16, "tlb_entry is indexed by << 4");
    x86_mov32_load(e, RDX, R(RAX));
    x86_shift_imm(e, false, SH_SHR, RDX, 8);
    x86_alu_imm(e, false, ALU_AND, R(RDX), (TLB_SIZE - 1) << 4);
    x86_alu_rm(e, true, ALU_ADD, RDX, M(RSP, tlb_slot));
    /* The tag is compared with the page of the access's last byte (va + size - 1): the entry
     * at va's index holds a page with va's low page-number bits, so this matches only when
     * the access stays inside va's page and that page hits (a wrap past 2^64 does not match
     * either). One test for both, which also leaves misaligned accesses inside a page on the
     * fast path. */
    if (size > 1)
        x86_lea(e, RCX, M(RAX, (int32_t)size - 1));
    else
        x86_mov_load(e, RCX, R(RAX));
    x86_shift_imm(e, true, SH_SHR, RCX, 12);
    x86_alu_rm(e, true, ALU_XOR, RCX, M(HREG, OFF_KEY));
    x86_alu_rm(e, true, ALU_CMP, RCX, M(RDX, 0));
    return x86_jcc(e, CC_NE);
}

static bool is_branch(enum rv_op op)
{
    return op >= RV_OP_BEQ && op <= RV_OP_BGEU;
}

static bool is_load(enum rv_op op)
{
    return op >= RV_OP_LB && op <= RV_OP_LWU;
}
static bool is_store(enum rv_op op)
{
    return op >= RV_OP_SB && op <= RV_OP_SD;
}
static bool is_fp_mem(enum rv_op op)
{
    return op == RV_OP_FLW || op == RV_OP_FLD || op == RV_OP_FSW || op == RV_OP_FSD;
}
static bool load_signed(enum rv_op op)
{
    return op == RV_OP_LB || op == RV_OP_LH || op == RV_OP_LW || op == RV_OP_LD;
}

/* Operations with inline code; the others call the interpreter for the one instruction. */
static bool jit_inline(enum rv_op op)
{
    switch (op) {
    case RV_OP_NOP:
    case RV_OP_LI:
    case RV_OP_MV:
    case RV_OP_AUIPC:
    case RV_OP_JAL:
    case RV_OP_JALR:
    case RV_OP_BEQ:
    case RV_OP_BNE:
    case RV_OP_BLT:
    case RV_OP_BGE:
    case RV_OP_BLTU:
    case RV_OP_BGEU:
    case RV_OP_FENCE:
    case RV_OP_FENCE_SL:
    case RV_OP_PAUSE: return true;
    default: return is_load(op) || is_store(op) || rv_alu_op(op);
    }
}

/* x[rd] = src, or its low 32 bits sign-extended when w32: its host register when cached
 * (written back later), else h->x */
static void emit_set_rd_from(struct gen *g, unsigned rd, enum x86_reg src, bool w32)
{
    struct x86 *e = &g->e;
    if (w32) x86_movsxd(e, src, src);
    if (g->host[rd] >= 0) {
        x86_mov_load(e, (enum x86_reg)g->host[rd], R(src));
        mark_written(g, rd);
    } else {
        x86_mov_store(e, M(HREG, OFF_X(rd)), src);
    }
}
static void emit_set_rd(struct gen *g, unsigned rd, bool w32)
{
    emit_set_rd_from(g, rd, RAX, w32);
}

/* Where an instruction computes rd: rd's host register, or rax (rd_computed stores it). */
static enum x86_reg rd_reg(const struct gen *g, unsigned rd)
{
    return g->host[rd] >= 0 ? (enum x86_reg)g->host[rd] : RAX;
}

/* rd was computed in h = rd_reg(g, rd): sign-extended from 32 bits when w32, and written. */
static void rd_computed(struct gen *g, unsigned rd, enum x86_reg h, bool w32)
{
    if (h == RAX) {
        emit_set_rd(g, rd, w32);
        return;
    }
    if (w32) x86_movsxd(&g->e, h, h);
    mark_written(g, rd);
}

/* Guest register r in a host register to read: its own (hreg), or `scratch` loaded from h->x. */
static enum x86_reg greg_in(struct gen *g, unsigned r, enum x86_reg scratch)
{
    if (g->host[r] >= 0) return hreg(g, r);
    x86_mov_load(&g->e, scratch, greg(g, r));
    return scratch;
}

/* The commonest ALU operations with rd cached: computed in rd's host register, without going
 * through rax. False when the operation has no such form (emit_alu does it through rax). */
static bool emit_alu_in_place(struct gen *g, const struct rv_decoded *d)
{
    struct x86 *e = &g->e;
    const enum x86_reg h = (enum x86_reg)g->host[d->rd];
    const struct x86_rm rs1 = greg(g, d->rs1), rs2 = greg(g, d->rs2);
    enum x86_alu a;
    enum x86_shift sh;
    switch (d->op) {
    case RV_OP_ADDI: a = ALU_ADD; goto alu_imm;
    case RV_OP_XORI: a = ALU_XOR; goto alu_imm;
    case RV_OP_ORI: a = ALU_OR; goto alu_imm;
    case RV_OP_ANDI:
        a = ALU_AND;
    alu_imm:
        if (d->rs1 != d->rd) x86_mov_load(e, h, rs1);
        if (d->imm || a == ALU_AND) x86_alu_imm(e, true, a, R(h), d->imm);
        break;
    case RV_OP_SUB: a = ALU_SUB; goto alu_rr;
    case RV_OP_ADD: a = ALU_ADD; goto alu_rr;
    case RV_OP_XOR: a = ALU_XOR; goto alu_rr;
    case RV_OP_OR: a = ALU_OR; goto alu_rr;
    case RV_OP_AND:
        a = ALU_AND;
    alu_rr:
        if (d->rd == d->rs2 && d->rs1 != d->rs2) {
            if (a == ALU_SUB) return false; /* rd = rs1 - rd: through rax */
            x86_alu_rm(e, true, a, h, rs1); /* commutative: rd = rd op rs1 */
        } else {
            if (d->rs1 != d->rd) x86_mov_load(e, h, rs1);
            x86_alu_rm(e, true, a, h, rs2);
        }
        break;
    case RV_OP_SLLI: sh = SH_SHL; goto sh_imm;
    case RV_OP_SRLI: sh = SH_SHR; goto sh_imm;
    case RV_OP_SRAI:
        sh = SH_SAR;
    sh_imm:
        if (d->rs1 != d->rd) x86_mov_load(e, h, rs1);
        x86_shift_imm(e, true, sh, h, (uint8_t)(d->imm & 63));
        break;
    case RV_OP_MUL:
        if (d->rd == d->rs2 && d->rs1 != d->rs2) {
            x86_imul(e, true, h, rs1);
        } else {
            if (d->rs1 != d->rd) x86_mov_load(e, h, rs1);
            x86_imul(e, true, h, rs2);
        }
        break;
    /* 32-bit forms: the 32-bit operation (which zero-extends), then sign-extend in place */
    case RV_OP_ADDIW:
        if (d->rs1 != d->rd) x86_mov32_load(e, h, rs1);
        if (d->imm) x86_alu_imm(e, false, ALU_ADD, R(h), d->imm);
        x86_movsxd(e, h, h);
        break;
    case RV_OP_SUBW: a = ALU_SUB; goto alu_rrw;
    case RV_OP_ADDW:
        a = ALU_ADD;
    alu_rrw:
        if (d->rd == d->rs2 && d->rs1 != d->rs2) {
            if (a == ALU_SUB) return false;
            x86_alu_rm(e, false, a, h, rs1);
        } else {
            if (d->rs1 != d->rd) x86_mov32_load(e, h, rs1);
            x86_alu_rm(e, false, a, h, rs2);
        }
        x86_movsxd(e, h, h);
        break;
    case RV_OP_MULW:
        if (d->rd == d->rs2 && d->rs1 != d->rs2) {
            x86_imul(e, false, h, rs1);
        } else {
            if (d->rs1 != d->rd) x86_mov32_load(e, h, rs1);
            x86_imul(e, false, h, rs2);
        }
        x86_movsxd(e, h, h);
        break;
    case RV_OP_SLLIW: sh = SH_SHL; goto shw_imm;
    case RV_OP_SRLIW: sh = SH_SHR; goto shw_imm;
    case RV_OP_SRAIW:
        sh = SH_SAR;
    shw_imm:
        if (d->rs1 != d->rd) x86_mov32_load(e, h, rs1);
        x86_shift_imm(e, false, sh, h, (uint8_t)(d->imm & 31));
        x86_movsxd(e, h, h);
        break;
    default: return false;
    }
    mark_written(g, d->rd);
    return true;
}

/* Pure ALU operation: inline for the common ones, else a call of the shared rv_alu. */
static void emit_alu(struct gen *g, const struct rv_decoded *d)
{
    struct x86 *e = &g->e;
    const struct x86_rm rs1 = greg(g, d->rs1), rs2 = greg(g, d->rs2);
    const int32_t imm = d->imm;
    enum x86_alu a;
    enum x86_shift sh;
    enum x86_cc cc;
    if (g->host[d->rd] >= 0 && emit_alu_in_place(g, d)) return;
    switch (d->op) {
    case RV_OP_ADDI: a = ALU_ADD; goto alu_imm;
    case RV_OP_XORI: a = ALU_XOR; goto alu_imm;
    case RV_OP_ORI: a = ALU_OR; goto alu_imm;
    case RV_OP_ANDI:
        a = ALU_AND;
    alu_imm:
        x86_mov_load(e, RAX, rs1);
        if (imm || a == ALU_AND) x86_alu_imm(e, true, a, R(RAX), imm);
        emit_set_rd(g, d->rd, false);
        return;
    case RV_OP_ADDIW:
        x86_mov32_load(e, RAX, rs1);
        if (imm) x86_alu_imm(e, false, ALU_ADD, R(RAX), imm);
        emit_set_rd(g, d->rd, true);
        return;
    case RV_OP_SLTI: cc = CC_L; goto slt_imm;
    case RV_OP_SLTIU:
        cc = CC_B;
    slt_imm: /* compares with the sign-extended immediate, as the spec says for both */
        x86_mov_load(e, RCX, rs1);
        x86_alu_imm(e, true, ALU_CMP, R(RCX), imm);
        x86_setcc(e, cc, RAX);
        emit_set_rd(g, d->rd, false);
        return;
    case RV_OP_SLLI: sh = SH_SHL; goto sh_imm;
    case RV_OP_SRLI: sh = SH_SHR; goto sh_imm;
    case RV_OP_SRAI:
        sh = SH_SAR;
    sh_imm:
        x86_mov_load(e, RAX, rs1);
        x86_shift_imm(e, true, sh, RAX, (uint8_t)(imm & 63));
        emit_set_rd(g, d->rd, false);
        return;
    case RV_OP_SLLIW: sh = SH_SHL; goto shw_imm;
    case RV_OP_SRLIW: sh = SH_SHR; goto shw_imm;
    case RV_OP_SRAIW:
        sh = SH_SAR;
    shw_imm:
        x86_mov32_load(e, RAX, rs1);
        x86_shift_imm(e, false, sh, RAX, (uint8_t)(imm & 31));
        emit_set_rd(g, d->rd, true);
        return;
    case RV_OP_ADD: a = ALU_ADD; goto alu_rr;
    case RV_OP_SUB: a = ALU_SUB; goto alu_rr;
    case RV_OP_XOR: a = ALU_XOR; goto alu_rr;
    case RV_OP_OR: a = ALU_OR; goto alu_rr;
    case RV_OP_AND:
        a = ALU_AND;
    alu_rr:
        x86_mov_load(e, RAX, rs1);
        x86_alu_rm(e, true, a, RAX, rs2);
        emit_set_rd(g, d->rd, false);
        return;
    case RV_OP_ADDW: a = ALU_ADD; goto alu_rrw;
    case RV_OP_SUBW:
        a = ALU_SUB;
    alu_rrw:
        x86_mov32_load(e, RAX, rs1);
        x86_alu_rm(e, false, a, RAX, rs2);
        emit_set_rd(g, d->rd, true);
        return;
    case RV_OP_SLT: cc = CC_L; goto slt_rr;
    case RV_OP_SLTU:
        cc = CC_B;
    slt_rr:
        x86_mov_load(e, RCX, rs1);
        x86_alu_rm(e, true, ALU_CMP, RCX, rs2);
        x86_setcc(e, cc, RAX);
        emit_set_rd(g, d->rd, false);
        return;
    /* x86 masks a 64-bit shift count to 6 bits and a 32-bit one to 5, as RISC-V does */
    case RV_OP_SLL: sh = SH_SHL; goto sh_rr;
    case RV_OP_SRL: sh = SH_SHR; goto sh_rr;
    case RV_OP_SRA:
        sh = SH_SAR;
    sh_rr:
        x86_mov_load(e, RCX, rs2);
        x86_mov_load(e, RAX, rs1);
        x86_shift_cl(e, true, sh, RAX);
        emit_set_rd(g, d->rd, false);
        return;
    case RV_OP_SLLW: sh = SH_SHL; goto shw_rr;
    case RV_OP_SRLW: sh = SH_SHR; goto shw_rr;
    case RV_OP_SRAW:
        sh = SH_SAR;
    shw_rr:
        x86_mov_load(e, RCX, rs2);
        x86_mov32_load(e, RAX, rs1);
        x86_shift_cl(e, false, sh, RAX);
        emit_set_rd(g, d->rd, true);
        return;
    case RV_OP_MUL:
        x86_mov_load(e, RAX, rs1);
        x86_imul(e, true, RAX, rs2);
        emit_set_rd(g, d->rd, false);
        return;
    case RV_OP_MULW:
        x86_mov32_load(e, RAX, rs1);
        x86_imul(e, false, RAX, rs2);
        emit_set_rd(g, d->rd, true);
        return;
    case RV_OP_MULH:
    case RV_OP_MULHU:
        x86_mov_load(e, RAX, rs1);
        x86_mul_wide(e, d->op == RV_OP_MULH, rs2);
        x86_mov_load(e, RAX, R(RDX));
        emit_set_rd(g, d->rd, false);
        return;
    default: /* the shared C semantics; arguments from h->x (rsi/rdi may cache registers) */
        flush_dirty(g, g->dirty);
        x86_mov_load(e, RDI, M(HREG, OFF_X(d->rs1)));
        x86_mov_load(e, RSI, M(HREG, OFF_X(d->rs2)));
        x86_mov_imm(e, RDX, (uint64_t)(int64_t)imm);
        x86_mov_imm(e, RCX, (uint64_t)d->op);
        x86_call_abs(e, (const void *)jit_alu_helper);
        keep_callee_saved(g);
        emit_set_rd(g, d->rd, false);
        return;
    }
}

/* Operations after which the interpreter always leaves for the run loop (exec.c: traps,
 * RETIRE_AND_LEAVE, mret/sret): the block ends with them. */
static bool ends_block(enum rv_op op)
{
    switch (op) {
    case RV_OP_JAL:
    case RV_OP_JALR:
    case RV_OP_ECALL:
    case RV_OP_EBREAK:
    case RV_OP_MRET:
    case RV_OP_SRET:
    case RV_OP_WFI:
    case RV_OP_SFENCE_VMA:
    case RV_OP_FENCE_I:
    case RV_OP_ILLEGAL: return true;
    default: return false;
    }
}

enum emitted { EMIT_CONT, EMIT_SYNCED, EMIT_END };

/* h->pc = the instruction at page offset off, h->instret += k (the block's instructions
 * retired before it): pc and instret exact at that instruction. */
static void emit_sync_pc(struct gen *g, int32_t off, unsigned k)
{
    struct x86 *e = &g->e;
    emit_vpc(e, RAX, off);
    x86_mov_store(e, M(HREG, OFF_PC), RAX);
    if (k) x86_alu_imm(e, true, ALU_ADD, M(HREG, OFF_INSTRET), (int32_t)k);
}

/* Call jit_interp_step for the instruction op at page offset off, k instructions after pc
 * and instret were last made exact (its registers written back before). */
static void emit_step_call(struct gen *g, enum rv_op op, int32_t off, unsigned k)
{
    emit_sync_pc(g, off, k);
    x86_mov_load(&g->e, RDI, R(HREG));
    x86_mov_imm(&g->e, RSI, (uint64_t)op);
    x86_call_abs(&g->e, (const void *)jit_interp_step);
}

/* Return JIT_LEAVE to the dispatcher: pc and instret are already set in struct hart. */
static void emit_leave(struct gen *g)
{
    x86_mov_imm(&g->e, RAX, 0xffffffffu);
    x86_patch(x86_jmp(&g->e), g->exit_eax);
}

/* Everything without inline code (CSRs, F/D, atomics, system instructions) runs in the
 * interpreter, one instruction: hart_exec with budget 0 executes exactly the instruction at
 * h->pc, with pc and instret made exact first. It leaves exec_left at -1 when the instruction
 * simply retired; anything else (a trap, a CSR write, mret...) is an event for the run loop,
 * and the interpreter has already set pc and instret: the block returns 0. */
static enum emitted emit_interp_step(struct gen *g, const struct rv_decoded *d, int32_t off,
                                     unsigned k)
{
    struct x86 *e = &g->e;
    flush_dirty(g, g->dirty);
    emit_step_call(g, d->op, off, k);
    if (ends_block(d->op)) {
        emit_leave(g);
        return EMIT_END;
    }
    x86_alu_imm(e, false, ALU_CMP, M(HREG, OFF_LEFT), -1);
    uint8_t *ev = x86_jcc8(e, CC_NE); /* over 23 bytes at most */
    emit_vpc(e, RAX, off + d->len);
    x86_alu_rm(e, true, ALU_CMP, RAX, M(HREG, OFF_PC));
    uint8_t *ok = x86_jcc8(e, CC_E);
    patch8(e, ev, e->p);
    emit_leave(g);
    patch8(e, ok, e->p);
    forget_cached(g); /* the interpreter may have written any register */
    return EMIT_SYNCED;
}

/* CSRRW..CSRRCI through jit_csr_helper: the dirty registers written back, pc and instret made
 * exact (counter reads), the helper called; the block goes on unless it says otherwise. The
 * interpreter step it replaces cost a decode-cache lookup and a dispatch more, and ended the
 * block after every write (Linux masks interrupts with csrrci sstatus and swaps sscratch on
 * every trap). */
static enum emitted emit_csr(struct gen *g, const struct rv_decoded *d, int32_t off, unsigned k)
{
    struct x86 *e = &g->e;
    unsigned idx = (unsigned)(d->op - RV_OP_CSRRW); /* rw, rs, rc, rwi, rsi, rci */
    bool uimm = idx >= 3, wr = idx % 3 == 0 || d->rs1 != 0;
    uint32_t info = ((uint32_t)d->imm & 0xfff) | (idx % 3) << 12 | (uint32_t)d->rs1 << 14 |
                    (uint32_t)d->rd << 19 | (uint32_t)uimm << 25 | (uint32_t)wr << 26;
    flush_dirty(g, g->dirty);
    g->dirty = 0;
    emit_sync_pc(g, off, k);
    struct stub *s = new_stub(g, STUB_STEP, d, off, 0); /* pc and instret are already exact */
    x86_mov_load(e, RDI, R(HREG));
    x86_mov_imm(e, RSI, info);
    x86_call_abs(e, (const void *)jit_csr_helper);
    forget_cached(g); /* the call clobbered them; rd is in h->x */
    x86_alu_imm(e, false, ALU_CMP, R(RAX), 1);
    s->from[0] = x86_jcc(e, CC_A);
    uint8_t *go = x86_jcc8(e, CC_NE);
    emit_leave(g); /* the helper set pc and instret */
    patch8(e, go, e->p);
    return EMIT_SYNCED;
}

static bool is_atomic(enum rv_op op)
{
    return op >= RV_OP_LR_W && op <= RV_OP_AMOMAXU_D;
}

/* LR/SC and AMOs inline: mem_atomic_ptr's fast path (the address naturally aligned and its
 * page in the data TLB, the read one for LR, the write one otherwise) and then the host
 * operation exec.c does, with the same barriers (a locked instruction is a full one). Anything
 * else (a TLB miss, misalignment, device memory, a fault) is an interpreter step of the
 * instruction at its stub, which then leaves the block: the interpreter does it all. */
static void emit_atomic(struct gen *g, const struct rv_decoded *d, int32_t off, unsigned k)
{
    struct x86 *e = &g->e;
    const bool lr = d->op == RV_OP_LR_W || d->op == RV_OP_LR_D;
    const bool sc = d->op == RV_OP_SC_W || d->op == RV_OP_SC_D;
    const bool dbl = d->op == RV_OP_LR_D || d->op == RV_OP_SC_D || d->op >= RV_OP_AMOSWAP_D;
    const unsigned size = dbl ? 8 : 4;
    struct rv_decoded a = *d;
    a.imm = 0; /* the address is rs1 alone (LR/SC's imm holds aq/rl) */
    struct stub *s = new_stub(g, STUB_STEP, &a, off, k);
    /* Both sources are read before the first branch: a cached register's first read loads it,
     * and every path below must have done that. */
    const struct x86_rm src = greg(g, d->rs2);
    emit_tlb(g, s, lr ? TR_SLOT : TW_SLOT, size);
    /* rax = host address: the same offset in its page as the guest's (pages are 4 KiB aligned
     * on both sides), so this is the alignment check */
    x86_test_al_imm(e, (uint8_t)(size - 1));
    s->from[1] = x86_jcc(e, CC_NE);
    if (lr) {
        if (d->imm & 1) x86_full_fence(e); /* .rl: earlier stores before this load */
        x86_load_n(e, size, true, RCX, M(RAX, 0));
        x86_mov_load(e, RAX, greg(g, d->rs1));
        x86_mov_store(e, M(HREG, OFF_RES_ADDR), RAX);
        x86_mov_store(e, M(HREG, OFF_RES_VAL), RCX);
        x86_mov_mem8_imm(e, M(HREG, OFF_RES_VALID), 1);
    } else if (sc) {
        x86_mov_load(e, RDX, R(RAX));
        x86_load_n(e, 1, false, RCX, M(HREG, OFF_RES_VALID));
        x86_test32(e, RCX, RCX);
        uint8_t *no1 = x86_jcc8(e, CC_E);
        x86_mov_load(e, RCX, greg(g, d->rs1));
        x86_alu_rm(e, true, ALU_CMP, RCX, M(HREG, OFF_RES_ADDR));
        uint8_t *no2 = x86_jcc8(e, CC_NE);
        x86_mov_load(e, RAX, M(HREG, OFF_RES_VAL)); /* cmpxchg compares eax alone for .w */
        x86_mov_load(e, RCX, src);
        x86_lock_cmpxchg(e, dbl, M(RDX, 0), RCX);
        x86_setcc(e, CC_NE, RCX); /* rd = 0: stored; 1: the value had changed */
        uint8_t *done = x86_jmp8(e);
        patch8(e, no1, e->p);
        patch8(e, no2, e->p);
        /* no store was tried, so no locked instruction ordered it */
        if (d->imm) x86_full_fence(e);
        x86_mov_imm(e, RCX, 1);
        patch8(e, done, e->p);
        x86_mov_mem8_imm(e, M(HREG, OFF_RES_VALID), 0);
    } else {
        const unsigned kind = (unsigned)(d->op - (dbl ? RV_OP_AMOSWAP_D : RV_OP_AMOSWAP_W));
        switch (kind) {
        case 0: /* swap */
            x86_mov_load(e, RCX, src);
            x86_xchg(e, dbl, M(RAX, 0), RCX);
            break;
        case 1: /* add */
            x86_mov_load(e, RCX, src);
            x86_lock_xadd(e, dbl, M(RAX, 0), RCX);
            break;
        default: { /* xor, and, or, min, max, minu, maxu: a compare-and-swap loop */
            static const enum x86_alu alu[] = {0, 0, ALU_XOR, ALU_AND, ALU_OR};
            static const enum x86_cc keep_old[] = {0, 0, 0, 0, 0, CC_L, CC_G, CC_B, CC_A};
            x86_mov_load(e, RDX, R(RAX));
            if (dbl)
                x86_mov_load(e, RAX, M(RDX, 0));
            else
                x86_mov32_load(e, RAX, M(RDX, 0));
            uint8_t *loop = e->p;
            if (kind <= 4) {
                x86_mov_load(e, RCX, R(RAX));
                x86_alu_rm(e, dbl, alu[kind], RCX, src);
            } else { /* new = old when old is already the min/max, else src */
                x86_mov_load(e, RCX, src);
                x86_alu_rm(e, dbl, ALU_CMP, RAX, R(RCX));
                x86_cmov(e, dbl, keep_old[kind], RCX, R(RAX));
            }
            x86_lock_cmpxchg(e, dbl, M(RDX, 0), RCX);
            patch8(e, x86_jcc8(e, CC_NE), loop); /* rax = what memory held */
            x86_mov_load(e, RCX, R(RAX));
        }
        }
    }
    if (d->rd) emit_set_rd_from(g, d->rd, RCX, !dbl && !lr && !sc);
}

/* The compare of branch d (rax may be clobbered); returns the condition it is taken on. */
static enum x86_cc emit_branch_cmp(struct gen *g, const struct rv_decoded *d)
{
    static const enum x86_cc cc[] = {CC_E, CC_NE, CC_L, CC_GE, CC_B, CC_AE};
    /* the same with the operands swapped: 0 op x as x op' 0 (bgtz, blez...) */
    static const enum x86_cc swapped[] = {CC_E, CC_NE, CC_G, CC_LE, CC_A, CC_BE};
    struct x86 *e = &g->e;
    unsigned rs1 = d->rs1, rs2 = d->rs2;
    enum x86_cc c = cc[d->op - RV_OP_BEQ];
    if (rs1 == 0 && rs2 != 0) { /* compared with zero as an immediate, not x0's slot */
        rs1 = rs2;
        rs2 = 0;
        c = swapped[d->op - RV_OP_BEQ];
    }
    enum x86_reg a = greg_in(g, rs1, RAX);
    if (rs2 == 0)
        x86_alu_imm(e, true, ALU_CMP, R(a), 0);
    else
        x86_alu_rm(e, true, ALU_CMP, a, greg(g, rs2));
    return c;
}

/* A branch b over exactly one instruction x that only writes a register (li, mv, addi):
 * rd = taken ? rd : x's result, a compare and a cmov, without the branch. Compilers without
 * Zicond write `v = c ? a : b` that way, and when c is data (gzip's window slide:
 * `m >= WSIZE ? m - WSIZE : 0`, 11% of gzip's time on random data) the branch mispredicts
 * half the time. instret: x is counted with the block's instructions; the branch taken, one
 * comes off again. */
static bool emit_select(struct gen *g, const struct rv_decoded *b, int32_t boff,
                        const struct rv_decoded *x, int32_t xoff)
{
    if (!is_branch(b->op) || xoff != boff + b->len || b->imm != b->len + x->len) return false;
    if (x->op != RV_OP_LI && x->op != RV_OP_MV && x->op != RV_OP_ADDI) return false;
    if (x->rd == 0 || x->rd == 32) return false;
    struct x86 *e = &g->e;
    if (x->op == RV_OP_LI) {
        x86_mov_mem_imm(e, R(RCX), x->imm);
    } else {
        x86_mov_load(e, RCX, greg(g, x->rs1));
        if (x->op == RV_OP_ADDI && x->imm) x86_alu_imm(e, true, ALU_ADD, R(RCX), x->imm);
    }
    enum x86_cc c = emit_branch_cmp(g, b);   /* the flags stay until the sub below */
    enum x86_cc run = (enum x86_cc)(c ^ 1);  /* x runs when the branch is not taken */
    enum x86_reg h = greg_in(g, x->rd, RAX); /* rd's old value (moves keep the flags) */
    x86_cmov(e, true, run, h, R(RCX));
    rd_computed(g, x->rd, h, false);
    x86_setcc(e, c, RAX);
    x86_alu_mr(e, true, ALU_SUB, M(HREG, OFF_INSTRET), RAX);
    return true;
}

/* Emit one instruction. k: instructions of the block since pc/instret were last made exact
 * (the block's start or an interpreter step). */
static enum emitted emit_insn(struct gen *g, const struct rv_decoded *d, int32_t off, unsigned k)
{
    struct x86 *e = &g->e;
    int32_t next = off + d->len;
    if (is_fp_mem(d->op) || d->op == RV_OP_FPU) {
        if (d->op == RV_OP_FPU) {
            /* fmv.w.x, fcvt read x registers. Written back before the stub is made: it is
             * also reached after the helper's call, which clobbers the host registers, so it
             * must not write them back (they stay loaded, clean, until the call). */
            flush_dirty(g, g->dirty);
            g->dirty = 0;
        }
        /* F/D with mstatus.FS off is an illegal instruction: the interpreter raises it */
        struct stub *fs = new_stub(g, STUB_STEP, d, off, k);
        x86_mov_load(e, RAX, M(HREG, OFF_MSTATUS));
        x86_alu_imm(e, false, ALU_AND, R(RAX), (int32_t)MSTATUS_FS);
        fs->from[0] = x86_jcc(e, CC_E);
        if (d->op == RV_OP_FPU) {
            x86_mov_load(e, RDI, R(HREG));
            x86_mov_imm(e, RSI, (uint32_t)d->imm); /* the raw encoding */
            x86_call_abs(e, (const void *)jit_fpu_helper);
            forget_cached(g); /* fmv.x, fcvt, compares write x registers */
            x86_test32(e, RAX, RAX);
            fs->from[1] = x86_jcc(e, CC_NE);
            return EMIT_CONT;
        }
        unsigned size = mem_size(d->op);
        if (d->op == RV_OP_FLW || d->op == RV_OP_FLD) {
            struct stub *s = new_stub(g, STUB_LOAD, d, off, k);
            struct x86_rm at = emit_addr(g, s, TR_SLOT, size);
            fm_site(g, s);
            x86_load_n(e, size, false, RAX, at);
            s->after = e->p;
            s->reg = RAX;
            if (size == 4) { /* NaN-boxed (spec 12.2) */
                x86_mov_imm(e, RCX, 0xffffffff00000000ull);
                x86_alu_rm(e, true, ALU_OR, RAX, R(RCX));
            }
            x86_mov_store(e, M(HREG, OFF_F(d->rd)), RAX);
            set_back(g, s);
            x86_alu_imm(e, true, ALU_OR, M(HREG, OFF_MSTATUS), (int32_t)FS_DIRTY);
        } else {
            struct stub *s = new_stub(g, STUB_STORE, d, off, k);
            struct x86_rm at = emit_addr(g, s, TW_SLOT, size);
            x86_mov_load(e, RCX, M(HREG, OFF_F(d->rs2)));
            fm_site(g, s);
            x86_store_n(e, size, at, RCX);
            s->after = e->p;
            s->reg = RCX;
            s->reload_src = true;
            s->src_off = OFF_F(d->rs2);
            set_back(g, s);
        }
        return EMIT_CONT;
    }
    if (is_atomic(d->op)) {
        emit_atomic(g, d, off, k);
        return EMIT_CONT;
    }
    if (d->op >= RV_OP_CSRRW && d->op <= RV_OP_CSRRCI) return emit_csr(g, d, off, k);
    if (!jit_inline(d->op)) return emit_interp_step(g, d, off, k);
    if (rv_alu_op(d->op)) {
        emit_alu(g, d);
        return EMIT_CONT;
    }
    if (is_load(d->op)) {
        struct stub *s = new_stub(g, STUB_LOAD, d, off, k);
        unsigned size = mem_size(d->op);
        struct x86_rm at = emit_addr(g, s, TR_SLOT, size);
        fm_site(g, s);
        s->reg = rd_reg(g, d->rd); /* straight into rd's host register when it has one */
        x86_load_n(e, size, load_signed(d->op), s->reg, at);
        s->after = e->p;
        rd_computed(g, d->rd, s->reg, false);
        set_back(g, s);
        return EMIT_CONT;
    }
    if (is_store(d->op)) {
        struct stub *s = new_stub(g, STUB_STORE, d, off, k);
        unsigned size = mem_size(d->op);
        struct x86_rm at = emit_addr(g, s, TW_SLOT, size);
        enum x86_reg src = RCX;
        s->reload_src = true; /* unless the data is in a host register already */
        s->src_off = OFF_X(d->rs2);
        if (g->host[d->rs2] >= 0) {
            s->reload_src = !(g->live & (1u << g->cidx[d->rs2]));
            src = hreg(g, d->rs2);
        } else {
            x86_mov_load(e, RCX, greg(g, d->rs2));
        }
        fm_site(g, s);
        x86_store_n(e, size, at, src);
        s->after = e->p;
        s->reg = src;
        set_back(g, s);
        return EMIT_CONT;
    }
    switch (d->op) {
    case RV_OP_NOP:
    case RV_OP_FENCE: /* x86-TSO gives every ordering but store -> load (docs/engine.md) */
        return EMIT_CONT;
    case RV_OP_FENCE_SL: x86_full_fence(e); return EMIT_CONT;
    case RV_OP_PAUSE:
        flush_dirty(g, g->dirty); /* the call clobbers the cached registers */
        x86_mov_load(e, RDI, R(HREG));
        x86_call_abs(e, (const void *)jit_pause_helper);
        keep_callee_saved(g);
        return EMIT_CONT;
    case RV_OP_LI:
        if (g->host[d->rd] >= 0) {
            x86_mov_mem_imm(e, R((enum x86_reg)g->host[d->rd]), d->imm);
            mark_written(g, d->rd);
        } else {
            x86_mov_mem_imm(e, M(HREG, OFF_X(d->rd)), d->imm);
        }
        return EMIT_CONT;
    case RV_OP_MV:
        x86_mov_load(e, RAX, greg(g, d->rs1));
        emit_set_rd(g, d->rd, false);
        return EMIT_CONT;
    case RV_OP_AUIPC:
        emit_vpc(e, RAX, off + d->imm); /* |imm| < 2^31 - 4096 (U-type, 4 KiB units) */
        emit_set_rd(g, d->rd, false);
        return EMIT_CONT;
    case RV_OP_BEQ:
    case RV_OP_BNE:
    case RV_OP_BLT:
    case RV_OP_BGE:
    case RV_OP_BLTU:
    case RV_OP_BGEU: {
        struct stub *s = new_stub(g, STUB_BRANCH, d, off, k);
        s->from[0] = x86_jcc(e, emit_branch_cmp(g, d));
        s->live_at_jump = g->live;
        return EMIT_CONT;
    }
    case RV_OP_JAL:
        emit_vpc(e, RAX, next);
        emit_set_rd(g, d->rd, false);
        emit_exit(g, off + d->imm, k + 1, g->dirty, g->live);
        return EMIT_END;
    case RV_OP_JALR: /* target before the link: rd may be rs1 */
        x86_mov_load(e, RAX, greg(g, d->rs1));
        if (d->imm) x86_alu_imm(e, true, ALU_ADD, R(RAX), d->imm);
        x86_alu_imm(e, true, ALU_AND, R(RAX), -2);
        emit_vpc(e, RCX, next);
        emit_set_rd_from(g, d->rd, RCX, false);
        flush_dirty(g, g->dirty);
        x86_alu_imm(e, true, ALU_ADD, M(HREG, OFF_INSTRET), (int32_t)(k + 1));
        if (g->fm) /* user code: linked (emit_far_exit) */
            emit_far_exit(g, true);
        else
            x86_patch(x86_jmp(e), g->tramp);
        return EMIT_END;
    default: return EMIT_END; /* not reached: jit_inline */
    }
}

static void emit_stub(struct gen *g, const struct stub *s)
{
    struct x86 *e = &g->e;
    for (unsigned f = 0; f < 2; f++)
        x86_patch(s->from[f], e->p);
    const uint8_t *stub_at = e->p;
    const struct rv_decoded *d = &s->d;
    if (s->kind == STUB_BRANCH) {
        emit_exit(g, s->off + d->imm, s->k + 1, s->dirty, s->live_at_jump);
        return;
    }
    if (s->site && g->elide) {
        /* Outside the limit in a block that elides tests (an address past 2^38: a user page
         * in the upper half, or a fault): the interpreter makes the access and the block
         * leaves, as the accesses whose tests this one stood for may not run unchecked. */
        if (!s->elided) {
            flush_dirty(g, s->dirty);
            emit_step_call(g, d->op, s->off, s->k);
            emit_leave(g);
        }
        stub_at = e->p; /* the fault handler's way in */
        if (s->elided) x86_lea(e, RAX, M((enum x86_reg)g->host[d->rs1], d->imm));
    } else if (s->site) { /* fast memory outside its limit: the TLB, as without fast memory */
        bool load = s->kind == STUB_LOAD;
        unsigned size = mem_size(d->op);
        uint8_t *miss = emit_tlb_check(e, load ? TR_SLOT : TW_SLOT, size);
        x86_alu_rm(e, true, ALU_ADD, RAX, M(RDX, 8));
        if (load) {
            x86_load_n(e, size, !is_fp_mem(d->op) && load_signed(d->op), s->reg, M(RAX, 0));
        } else {
            if (s->reload_src) x86_mov_load(e, s->reg, M(HREG, s->src_off));
            x86_store_n(e, size, M(RAX, 0), s->reg);
        }
        x86_patch(x86_jmp(e), s->after);
        x86_patch(miss, e->p);
        stub_at = e->p; /* the slow path: a TLB miss, and the fault handler's way in */
    }
    flush_dirty(g, s->dirty);
    switch (s->kind) {
    case STUB_BRANCH: return; /* above */
    case STUB_STEP:
        emit_step_call(g, d->op, s->off, s->k);
        emit_leave(g); /* pc and instret are the interpreter's */
        return;
    case STUB_LOAD:
    case STUB_STORE: {
        if (s->site) /* the handler resumes here, before the dirty registers' write-back */
            g->sites[g->nsites++] = (struct fm_site){(uint32_t)(s->site - g->bodies_rw),
                                                     (uint32_t)(stub_at - g->bodies_rw) |
                                                         (s->site_based ? FM_SITE_BASED : 0)};
        /* helper(h, va, info, vbase): 0, or cause + 1 with pc and instret set */
        uint32_t info = (uint32_t)s->off | s->k << 12 |
                        (uint32_t)(s->kind == STUB_LOAD ? d->rd : d->rs2) << 20 |
                        mem_size(d->op) << 26 | (uint32_t)load_signed(d->op) << 30 |
                        (uint32_t)is_fp_mem(d->op) << 31;
        x86_mov_imm(e, RDX, info);
        x86_patch(x86_call(e), g->slow[s->kind == STUB_LOAD ? 0 : 1]); /* rax = va */
        /* The call clobbered the caller-saved ones, and a load wrote rd in h->x; the fast
         * path may also have loaded registers after its jump here (a store's data). */
        uint16_t reload = s->live & ~(s->live_at_jump & CALLEE_SAVED_CACHED);
        if (s->kind == STUB_LOAD && !is_fp_mem(d->op) && g->host[d->rd] >= 0)
            reload |= (uint16_t)(1u << g->cidx[d->rd]) & s->live;
        reload_cached(g, reload);
        x86_patch(x86_jmp(e), s->back); /* a fault left through the thunk */
        return;
    }
    }
}

static void insn_xregs(const struct rv_decoded *d, unsigned r[2], unsigned *w);

/* Operations that run inline without a call and cannot fault, branch or leave the block:
 * between them no one can see a guest register (an exit, a fault, a helper or an
 * interpreter step would). */
static bool unobservable(enum rv_op op)
{
    if (op == RV_OP_LI || op == RV_OP_MV || op == RV_OP_NOP) return true;
    if (!rv_alu_op(op)) return false;
    switch (op) { /* the ones emit_alu calls rv_alu for write back the dirty registers */
    case RV_OP_ADDI:
    case RV_OP_XORI:
    case RV_OP_ORI:
    case RV_OP_ANDI:
    case RV_OP_ADDIW:
    case RV_OP_SLTI:
    case RV_OP_SLTIU:
    case RV_OP_SLLI:
    case RV_OP_SRLI:
    case RV_OP_SRAI:
    case RV_OP_SLLIW:
    case RV_OP_SRLIW:
    case RV_OP_SRAIW:
    case RV_OP_ADD:
    case RV_OP_SUB:
    case RV_OP_XOR:
    case RV_OP_OR:
    case RV_OP_AND:
    case RV_OP_ADDW:
    case RV_OP_SUBW:
    case RV_OP_SLT:
    case RV_OP_SLTU:
    case RV_OP_SLL:
    case RV_OP_SRL:
    case RV_OP_SRA:
    case RV_OP_SLLW:
    case RV_OP_SRLW:
    case RV_OP_SRAW:
    case RV_OP_MUL:
    case RV_OP_MULW:
    case RV_OP_MULH:
    case RV_OP_MULHU: return true;
    default: return false;
    }
}

/* Register r's value after instruction k is never seen: the block writes r again at some
 * instruction after k, every instruction up to and including that one is unobservable, and
 * none of them reads r. */
static bool dead_after(const struct rv_decoded *d, unsigned k, unsigned n, unsigned r)
{
    if (r == 0 || r == 32) return true; /* x0: writes go to the sink */
    for (unsigned i = k + 1; i < n; i++) {
        if (!unobservable(d[i].op)) return false;
        unsigned rr[2], w;
        insn_xregs(&d[i], rr, &w);
        if (rr[0] == r || rr[1] == r) return false;
        if (w == r) return true;
    }
    return false;
}

/* A rotate written as two shifts and an or (what compilers emit without Zbb: sha256's
 * sigma functions are six of them per round), d[k..k+2]: slli(w) a, x, s; srli(w) b, x, n;
 * or c, a, b (the shifts in either order, the or's operands too), s + n = 64 (32): c = x
 * rotated right by n (for the W forms sign-extended from 32 bits), one x86 rotate instead of
 * two shifts, their sign extensions and the or. Only when the shifts' own results are never
 * seen (dead_after: the block overwrites a and b before anything could look) unless c is
 * one of them. Returns false (nothing emitted) for any other instructions. */
static bool emit_rotate(struct gen *g, const struct rv_decoded *d, unsigned k, unsigned n)
{
    if (k + 2 >= n) return false;
    const struct rv_decoded *s1 = &d[k], *s2 = &d[k + 1], *o = &d[k + 2];
    if (o->op != RV_OP_OR) return false;
    bool w = s1->op == RV_OP_SLLIW || s1->op == RV_OP_SRLIW;
    unsigned bits = w ? 32 : 64;
    const struct rv_decoded *l, *r;
    if (s1->op == (w ? RV_OP_SLLIW : RV_OP_SLLI) && s2->op == (w ? RV_OP_SRLIW : RV_OP_SRLI)) {
        l = s1;
        r = s2;
    } else if (s1->op == (w ? RV_OP_SRLIW : RV_OP_SRLI) &&
               s2->op == (w ? RV_OP_SLLIW : RV_OP_SLLI)) {
        l = s2;
        r = s1;
    } else {
        return false;
    }
    unsigned x = l->rs1, a = l->rd, b = r->rd, c = o->rd;
    unsigned sl = (unsigned)l->imm & (bits - 1), sr = (unsigned)r->imm & (bits - 1);
    if (r->rs1 != x || sl + sr != bits || sr == 0 || a == b || a == x || b == x || a == 0 ||
        b == 0 || a == 32 || b == 32)
        return false;
    if (!((o->rs1 == a && o->rs2 == b) || (o->rs1 == b && o->rs2 == a))) return false;
    if ((c != a && !dead_after(d, k + 2, n, a)) || (c != b && !dead_after(d, k + 2, n, b)))
        return false;
    /* computed in c's host register when it has one, else in rax and stored */
    struct x86 *e = &g->e;
    enum x86_reg h = rd_reg(g, c);
    struct x86_rm src = greg(g, x);
    if (w)
        x86_mov32_load(e, h, src);
    else
        x86_mov_load(e, h, src);
    x86_shift_imm(e, !w, SH_ROR, h, (uint8_t)sr);
    rd_computed(g, c, h, w);
    return true;
}

/* slli a, x, 32; srli c, a, s (0 < s < 64): c = x's low word zero-extended, shifted left by
 * 32 - s (right by s - 32): zext.w for s = 32, a scaled unsigned index for s < 32 (what
 * compilers emit for `p[i]` with an unsigned int i without Zba: gzip's hash chains, ct_tally),
 * as a 32-bit move (which zero-extends) and at most one shift, instead of two shifts and the
 * moves around them. Only when a's own value is never seen (c is a, or dead_after). */
static bool emit_zext(struct gen *g, const struct rv_decoded *d, unsigned k, unsigned n)
{
    if (k + 1 >= n) return false;
    const struct rv_decoded *l = &d[k], *r = &d[k + 1];
    if (l->op != RV_OP_SLLI || r->op != RV_OP_SRLI || (l->imm & 63) != 32) return false;
    unsigned x = l->rs1, a = l->rd, c = r->rd, s = (unsigned)r->imm & 63;
    if (r->rs1 != a || s == 0 || a == 0 || a == 32) return false;
    if (c != a && !dead_after(d, k + 1, n, a)) return false;
    struct x86 *e = &g->e;
    enum x86_reg h = rd_reg(g, c);
    x86_mov32_load(e, h, greg(g, x));
    if (s < 32) x86_shift_imm(e, true, SH_SHL, h, (uint8_t)(32 - s));
    if (s > 32) x86_shift_imm(e, false, SH_SHR, h, (uint8_t)(s - 32));
    rd_computed(g, c, h, false);
    return true;
}

/* slli a, x, s (s = 1..3); add c, a, y (or y, a): c = y + (x << s), an array element's
 * address without Zba's shNadd (`prev[cur_match & wmask]` in gzip's longest_match, whose
 * chain of dependent loads this shortens by a cycle), as one lea. Only when a's own value is
 * never seen (c is a, or dead_after). */
static bool emit_shadd(struct gen *g, const struct rv_decoded *d, unsigned k, unsigned n)
{
    if (k + 1 >= n) return false;
    const struct rv_decoded *l = &d[k], *r = &d[k + 1];
    if (l->op != RV_OP_SLLI || r->op != RV_OP_ADD) return false;
    unsigned x = l->rs1, a = l->rd, c = r->rd, s = (unsigned)l->imm & 63;
    if (s < 1 || s > 3 || a == 0 || a == 32) return false;
    unsigned y;
    if (r->rs1 == a && r->rs2 != a)
        y = r->rs2;
    else if (r->rs2 == a && r->rs1 != a)
        y = r->rs1;
    else
        return false;
    if (c != a && !dead_after(d, k + 1, n, a)) return false;
    enum x86_reg xr = greg_in(g, x, RDX), yr = greg_in(g, y, RCX), h = rd_reg(g, c);
    x86_lea(&g->e, h, MIS(yr, xr, s, 0));
    rd_computed(g, c, h, false);
    return true;
}

/* Decode up to JIT_MAX_INSNS translatable instructions from page offset start of p->code
 * into d, d[k] at page offset offs[k]; *end = where the block's last instruction falls
 * through to. A block follows one backward branch whose target is before its start (in a
 * loop entered in its middle, the loop's closing branch, usually taken): the branch becomes
 * the opposite branch to its fall-through (a side exit) and the block goes on at the target,
 * up to its own start, which then closes the loop inside the block (emit_back_edge). A
 * plain backward jump (j) there is followed the same way, as a no-op. So a
 * loop of two blocks (longest_match's, 60% of gzip's time: its chain walk is one block,
 * entered where the first byte compare fails) runs as one, its registers kept in host
 * registers across iterations. */
static unsigned scan_block(const uint8_t *code, unsigned start, struct rv_decoded *d, int32_t *offs,
                           int32_t *end)
{
    unsigned n = 0, off = start;
    bool followed = false;
    while (n < JIT_MAX_INSNS && off < DPAGE_BYTES && !(followed && off == start)) {
        uint16_t lo, hi = 0;
        memcpy(&lo, code + off, 2);
        offs[n] = (int32_t)off;
        if ((lo & 3) == 3) {
            if (off == DPAGE_BYTES - 2) {
                /* straddles the page: its upper half is not in this page's copy, so it runs
                 * as an interpreter step (which fetches both halves, as exec.c's CROSS does)
                 * and the block ends after it */
                d[n] = (struct rv_decoded){.op = RV_OP_CROSS, .len = 4};
                n++;
                off += 4;
                break;
            }
            memcpy(&hi, code + off + 2, 2);
        }
        struct rv_decoded *x = &d[n];
        rv_decode((uint32_t)lo | ((uint32_t)hi << 16), x);
        off += x->len;
        int32_t target = offs[n] + x->imm;
        bool back = !followed && target >= 0 && target < (int32_t)start;
        if (back && is_branch(x->op)) {
            x->op = (enum rv_op)(RV_OP_BEQ + ((x->op - RV_OP_BEQ) ^ 1)); /* the opposite */
            x->imm = x->len;
            off = (unsigned)target;
            followed = true;
        } else if (back && x->op == RV_OP_JAL && x->rd == 32) {
            /* a plain jump (j: rd = x0) back to a loop's test: the block goes on there, the
             * jump retired as a no-op (crc32's table loop in gzip) */
            x->op = RV_OP_NOP;
            off = (unsigned)target;
            followed = true;
        }
        if (ends_block(d[n++].op)) break;
    }
    *end = (int32_t)off;
    return n;
}

/* VESSEL_JIT_DUMP: the block's guest instructions (encoding and decoded operation) and its
 * host code as hex lines, which scripts/jit-dump.py turns into a disassembly. Log lines, not
 * a file: the VM process's sandbox opens no files. */
static void dump_block(unsigned ncached, const struct jpage *p, uint64_t pc,
                       const struct rv_decoded *d, const int32_t *offs, unsigned n,
                       const uint8_t *host, size_t len, uint32_t off)
{
    log_info("jit dump: block %#llx: %u guest instructions, %zu bytes of host code at cache "
             "offset %#x (%u registers cached)",
             (unsigned long long)pc, n, len, off, ncached);
    for (unsigned k = 0; k < n; k++) {
        unsigned o = (unsigned)offs[k];
        uint32_t w = 0;
        memcpy(&w, p->code + o, o + d[k].len <= DPAGE_BYTES ? d[k].len : 2);
        log_info("jit dump: guest %#llx: %0*x %s rd=x%u rs1=x%u rs2=x%u imm=%d",
                 (unsigned long long)(pc - (pc & 0xfff) + o), d[k].len * 2, w, rv_op_name(d[k].op),
                 d[k].rd, d[k].rs1, d[k].rs2, d[k].imm);
    }
    for (size_t i = 0; i < len; i += 32) {
        char hex[65];
        size_t m = len - i < 32 ? len - i : 32;
        for (size_t b = 0; b < m; b++)
            snprintf(hex + 2 * b, 3, "%02x", host[i + b]);
        log_info("jit dump: host %#llx +%04zx: %s", (unsigned long long)pc, i, hex);
    }
}

/* The x registers an inline instruction reads (r[0], r[1]; 0 = none) and writes (*w). Only
 * for choosing what to cache: interpreter steps and helpers read and write h->x. */
static void insn_xregs(const struct rv_decoded *d, unsigned r[2], unsigned *w)
{
    r[0] = r[1] = *w = 0;
    switch (d->op) {
    case RV_OP_LI:
    case RV_OP_AUIPC:
    case RV_OP_JAL: *w = d->rd; return;
    case RV_OP_MV:
    case RV_OP_JALR:
        r[0] = d->rs1;
        *w = d->rd;
        return;
    case RV_OP_BEQ:
    case RV_OP_BNE:
    case RV_OP_BLT:
    case RV_OP_BGE:
    case RV_OP_BLTU:
    case RV_OP_BGEU:
        r[0] = d->rs1;
        r[1] = d->rs2;
        return;
    case RV_OP_FLW:
    case RV_OP_FLD:
    case RV_OP_FSW:
    case RV_OP_FSD: r[0] = d->rs1; return; /* rd and rs2 are f registers */
    default: break;
    }
    if (is_load(d->op)) {
        r[0] = d->rs1;
        *w = d->rd;
    } else if (is_store(d->op)) {
        r[0] = d->rs1;
        r[1] = d->rs2;
    } else if (rv_alu_op(d->op) || is_atomic(d->op)) {
        r[0] = d->rs1;
        r[1] = d->rs2; /* x0 in the immediate forms and LR */
        *w = d->rd;
    }
}

/* Host registers go to the guest registers the block uses most: each read saves a load of
 * h->x, each write but one a store (the last is written back where the block leaves);
 * a register read before the block writes it costs a load at the body's start. A register
 * must save at least one access to be worth one. */
/* Returns the gain of the guest register given the last host register when all were taken,
 * else 0. */
static int choose_cached(struct gen *g, const struct rv_decoded *d, unsigned n)
{
    int gain[33] = {0};
    bool seen[33] = {false}, read_first[33] = {false}, written[33] = {false};
    for (unsigned k = 0; k < n; k++) {
        unsigned r[2], w;
        insn_xregs(&d[k], r, &w);
        for (unsigned i = 0; i < 2; i++) {
            if (!r[i]) continue;
            if (!seen[r[i]]) {
                seen[r[i]] = read_first[r[i]] = true;
                gain[r[i]]--;
            }
            gain[r[i]]++;
        }
        if (w) {
            seen[w] = true;
            if (written[w]) gain[w]++; /* the first write's store stays (the write-back) */
            written[w] = true;
        }
    }
    memset(g->host, -1, sizeof(g->host));
    memset(g->cidx, -1, sizeof(g->cidx));
    g->ncached = 0;
    gain[0] = gain[32] = 0; /* x0 reads as zero from h->x; x[32] is the write sink */
    int last = 0;
    while (g->ncached < NCACHE_REGS) {
        unsigned best = 0;
        for (unsigned r = 1; r < 32; r++)
            if (gain[r] > gain[best]) best = r;
        if (gain[best] < 1) break;
        last = gain[best];
        gain[best] = 0;
        g->host[best] = (int8_t)cache_regs[g->ncached];
        g->cidx[best] = (int8_t)g->ncached;
        g->cached[g->ncached++] = (uint8_t)best;
    }
    return g->ncached == NCACHE_REGS ? last : 0;
}

/* Whether the block (d[0..n), d[k] at offs[k], falling through to end) jumps back to its
 * start: a branch or jal there, or the fall-through of a block that followed a branch. */
static bool closes_loop(const struct rv_decoded *d, const int32_t *offs, unsigned n, int32_t end,
                        int32_t start)
{
    for (unsigned k = 0; k < n; k++)
        if ((is_branch(d[k].op) || d[k].op == RV_OP_JAL) && offs[k] + d[k].imm == start)
            return true;
    return n && !ends_block(d[n - 1].op) && end == start;
}

/* The loop head of a block that closes a loop: every cached register loaded (where the block
 * starts, once), then the head. */
static void emit_loop_head(struct gen *g, const struct rv_decoded *d, unsigned n)
{
    uint16_t all = (uint16_t)((1u << g->ncached) - 1);
    reload_cached(g, all);
    g->live = all;
    g->dh = 0;
    for (unsigned k = 0; k < n; k++) {
        unsigned r[2], w;
        insn_xregs(&d[k], r, &w);
        if (w && g->cidx[w] >= 0) g->dh |= (uint16_t)(1u << g->cidx[w]);
    }
    g->dirty = g->dh;
    g->head = g->e.p;
}

/* Give up the last host register (r15: cache_regs' last) and the guest register it held, the
 * one the choice above valued least. */
static void uncache_last(struct gen *g)
{
    unsigned r = g->cached[--g->ncached];
    g->host[r] = -1;
    g->cidx[r] = -1;
}

/* VESSEL_JIT_PERFMAP: perf's map of JIT code (/tmp/perf-PID.map: "START SIZE NAME" lines),
 * one for the process, opened by the first hart (before the sandbox) and appended to by each
 * with one write() per line, which O_APPEND keeps whole. */
static int perf_map_fd = -1;
static pthread_once_t perf_map_once = PTHREAD_ONCE_INIT;
static void perf_map_open(void)
{
    char path[64];
    snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)getpid());
    perf_map_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (perf_map_fd < 0) log_warn("VESSEL_JIT_PERFMAP: %s: %s", path, strerror(errno));
}
static void perf_map_add(const struct jit *j, const uint8_t *rw, size_t len, const char *what,
                         uint64_t pc)
{
    if (!j->perf_map || perf_map_fd < 0) return;
    char line[96];
    int n = snprintf(line, sizeof(line), "%lx %zx %s_%llx\n",
                     (unsigned long)(uintptr_t)(j->cache.rx + (rw - j->cache.rw)), len, what,
                     (unsigned long long)pc);
    if (n <= 0) return;
    ssize_t w = write(perf_map_fd, line, (size_t)n); /* a failure costs the profile a line */
    (void)w;
}

static int fm_sites_add(struct jit *j, const struct fm_site *s, unsigned n)
{
    if (j->nsites + n > j->sites_cap) {
        size_t cap = j->sites_cap ? 2 * j->sites_cap : 4096;
        struct fm_site *ns = realloc(j->sites, cap * sizeof(*ns));
        if (!ns) return -ENOMEM;
        j->sites = ns;
        j->sites_cap = cap;
    }
    memcpy(j->sites + j->nsites, s, n * sizeof(*s));
    j->nsites += n;
    return 0;
}

/* d ran (synced: as an interpreter step): the register it writes is not as tested any more.
 * insn_xregs tells that exactly for the operations below; after any other (CSRs, F/D,
 * system instructions) or a step, which may write any register, no test stands. */
static void fm_written(struct gen *g, const struct rv_decoded *d, bool synced)
{
    enum rv_op op = d->op;
    unsigned r[2], w;
    insn_xregs(d, r, &w);
    bool exact = op == RV_OP_LI || op == RV_OP_AUIPC || op == RV_OP_MV || is_branch(op) ||
                 is_load(op) || is_store(op) || is_fp_mem(op) || rv_alu_op(op);
    g->fmc = exact && !synced ? g->fmc & ~(1ull << w) : 0;
}

/* Whether a translation of d[0..n) with g's cached registers would elide a limit test
 * (emit_fm's rule, tracked the way the translation tracks it). */
static bool fm_would_elide(struct gen *g, const struct rv_decoded *d, unsigned n)
{
    g->fmc = 0;
    for (unsigned k = 0; k < n; k++) {
        if (is_load(d[k].op) || is_store(d[k].op) || is_fp_mem(d[k].op)) {
            if (fm_elidable(g, d[k].rs1, d[k].imm)) return true;
            fm_tested(g, d[k].rs1, d[k].imm);
        }
        fm_written(g, &d[k], false);
    }
    return false;
}

/* Translate the block at pc (page p, offset pc & 0xfff); returns the block table value.
 * fm: loads and stores use fast memory (jit_exec: user mode under Sv39 with fast memory on);
 * variant: and it is on for the address space now (the block may elide limit tests). */
static uint32_t translate(struct jit *j, struct jpage *p, uint64_t pc, bool fm, bool variant)
{
    struct rv_decoded d[JIT_MAX_INSNS];
    int32_t offs[JIT_MAX_INSNS], end;
    unsigned off = (unsigned)(pc & 0xfff);
    unsigned n = scan_block(p->code, off, d, offs, &end);
    if (n == 0) return JIT_INTERP;
    bool loop = closes_loop(d, offs, n, end, (int32_t)off), followed = false;
    for (unsigned k = 0; k < n; k++)
        followed |= offs[k] < (int32_t)off;
    static __thread struct gen g; /* ~5 KiB: off the hart thread's stack */
    for (int attempt = 0; attempt < 2; attempt++) {
        g.nstubs = 0;
        g.nsites = 0;
        g.fm = fm;
        g.fm_r15 = false;
        int nmem = 0;
        for (unsigned k = 0; k < n && g.fm; k++)
            if (is_load(d[k].op) || is_store(d[k].op) || is_fp_mem(d[k].op)) nmem++;
        g.live = g.dirty = 0; /* cached registers are loaded where first read (hreg) */
        x86_init(&g.e, j->cache.rw + j->cache.used, jit_cache_avail(&j->cache));
        struct x86 *e = &g.e;
        /* Fast memory with fm_base in r15 (cache_regs' last) saves an add from memory per
         * access, unless the block would rather cache one more guest register (sha256). */
        int last = choose_cached(&g, d, n);
        g.variant = variant;
        g.elide = false;
        g.elided = 0;
        uint8_t *bail = NULL; /* the start's test: fast memory off */
        if (nmem && last <= nmem) {
            g.fm_r15 = true;
            j->st.fm_pinned++;
            if (g.ncached == NCACHE_REGS) uncache_last(&g);
            g.elide = variant && fm_would_elide(&g, d, n);
            if (g.elide) { /* fast memory off (another address space warming up): leave */
                x86_alu_imm(e, true, ALU_CMP, M(HREG, OFF_FM_LIMIT), 0);
                bail = x86_jcc(e, CC_E);
                j->st.fm_guarded++;
            }
            x86_mov_load(e, R15, M(HREG, OFF_FM_BASE)); /* callee-saved: kept */
        } else if (nmem) {
            j->st.fm_added++;
        }
        g.page = p;
        g.bodies_rw = j->cache.rw;
        g.start = (int32_t)off;
        g.tramp = j->tramp;
        g.exit_pc = j->exit_pc;
        g.exit_eax = j->exit_eax;
        g.slow[0] = j->slow[0];
        g.slow[1] = j->slow[1];
        g.link = j->link;
        g.xlink = j->xlink;
        g.lookup = j->lookup;
        g.head = NULL;
        if (loop) emit_loop_head(&g, d, n);
        enum emitted em = EMIT_CONT;
        unsigned base = 0; /* instructions already added to instret */
        g.fmc = 0;
        for (unsigned k = 0; k < n && em != EMIT_END; k++) {
            unsigned k0 = k;
            bool synced = false;
            if (emit_rotate(&g, d, k, n)) { /* three instructions as one */
                k += 2;
                j->st.fused++;
            } else if (emit_zext(&g, d, k, n) || emit_shadd(&g, d, k, n)) { /* two as one */
                k += 1;
                j->st.fused++;
            } else if (k + 1 < n && emit_select(&g, &d[k], offs[k], &d[k + 1], offs[k + 1])) {
                k += 1;
                j->st.selects++;
            } else {
                em = emit_insn(&g, &d[k], offs[k], k - base);
                if (em == EMIT_SYNCED) base = k + 1;
                synced = em == EMIT_SYNCED; /* an interpreter step: any register written */
            }
            for (unsigned q = k0; q <= k && g.elide; q++)
                fm_written(&g, &d[q], synced);
        }
        if (em != EMIT_END) emit_exit(&g, end, n - base, g.dirty, g.live);
        for (unsigned s = 0; s < g.nstubs; s++)
            emit_stub(&g, &g.stubs[s]);
        if (bail) { /* at the start: nothing ran, nothing to write back */
            x86_patch(bail, e->p);
            emit_sync_pc(&g, (int32_t)off, 0);
            emit_leave(&g);
        }
        if (!e->overflow && g.nsites && fm_sites_add(j, g.sites, g.nsites) < 0) {
            /* no memory for the fault handler's list: the same block with the TLB */
            fm = false;
            attempt--;
            continue;
        }
        if (!e->overflow) {
            j->st.blocks++;
            j->st.insns += n;
            j->st.loops += loop;
            j->st.followed += followed;
            j->st.fm_elided += g.elided;
            j->st.host_bytes += x86_len(e);
            uint32_t boff = jit_cache_commit(&j->cache, x86_len(e));
            perf_map_add(j, j->cache.rw + boff, x86_len(e), "g", pc);
            if (unlikely(j->dump_all || (j->dump_one && pc == j->dump_pc)))
                dump_block(g.ncached, p, pc, d, offs, n, j->cache.rw + boff, x86_len(e), boff);
            return boff;
        }
        /* full: drop every translation and start over (this page's table included) */
        jit_cache_flush(&j->cache);
        j->nsites = 0;
        j->stamp++;
        emit_trampoline(j);
        perf_map_add(j, j->cache.rw, j->cache.used, "jit_trampoline", 0);
        j->st.flushes++;
        blk_clear(p);
        p->gen = j->cache.gen;
    }
    return JIT_INTERP; /* a block larger than the whole cache: cannot happen above its minimum */
}

/* Put p in way 0 of set w, moving ways 0..i-1 down one (way i is p's or empty): most
 * recently used first. */
static void set_front(struct jpage **w, unsigned i, struct jpage *p)
{
    for (; i > 0; i--)
        w[i] = w[i - 1];
    w[0] = p;
}

/* The page record for ppn, validated as exec.c dcache_get validates decoded pages. */
static struct jpage *jit_page(struct hart *h, struct jit *j, uint64_t ppn, const uint8_t *mem)
{
    unsigned set = (unsigned)((ppn ^ (ppn >> 11) ^ (ppn >> 22)) & (JPAGE_SETS - 1));
    struct jpage **w = &j->pages[set * JPAGE_WAYS];
    struct jpage *p = NULL;
    unsigned i;
    for (i = 0; i < JPAGE_WAYS; i++)
        if (w[i] && w[i]->ppn == ppn) {
            p = w[i];
            break;
        }
    if (p) {
        set_front(w, i, p);
        if (p->epoch != h->dcache_epoch) {
            /* a fence.i happened since: keep the translations only if the code is unchanged */
            if (memcmp(p->code, mem, DPAGE_BYTES) != 0) {
                j->st.invalidated++;
                goto fill;
            }
            p->epoch = h->dcache_epoch;
        }
        if (p->gen != j->cache.gen) { /* the code cache was flushed since */
            blk_clear(p);
            p->gen = j->cache.gen;
        }
        return p;
    }
    for (i = 0; i < JPAGE_WAYS && w[i]; i++)
        ;
    if (i == JPAGE_WAYS) { /* a full set: its least recently used record */
        i = JPAGE_WAYS - 1;
        p = w[i];
        if (p->ppn != DPAGE_INVALID) j->st.evicted++;
    } else if (j->npages < JPAGE_MAX) {
        p = malloc(sizeof(*p));
        if (!p) return NULL;
        p->blk = NULL;
        p->ver = 0;
        j->npages++;
    } else { /* all records in use: take one from another set */
        unsigned v;
        do
            v = j->hand++ % JPAGE_SLOTS;
        while (!j->pages[v] || v / JPAGE_WAYS == set);
        p = j->pages[v];
        j->pages[v] = NULL;
        if (p->ppn != DPAGE_INVALID) j->st.evicted++;
    }
    set_front(w, i, p);
fill:
    j->stamp++;
    memcpy(p->code, mem, DPAGE_BYTES); /* see dcache_get: any byte memory held is fine */
    blk_clear(p);
    p->ppn = ppn;
    p->epoch = h->dcache_epoch;
    p->gen = j->cache.gen;
    return p;
}

/* Link the far exit whose record is at cache offset at (emit_far_exit) to the block at
 * cache offset off, which runs next for pc (host page hp, fetch TLB entry te). */
static void far_link(struct hart *h, struct jit *j, uint32_t at, uint64_t pc, uint8_t *hp,
                     const struct tlb_entry *te, const struct tlb_entry *tx, uint32_t off,
                     bool variant)
{
    if ((size_t)at + sizeof(struct far_link) > j->cache.used) return;
    /* the fetch TLB must hold the page (PMP-split pages are not cached: no link then) */
    if (te->tag != ((pc >> 12) ^ h->tlb_key) || (pc & ~0xfffull) + te->addend != (uintptr_t)hp)
        return;
    struct jpage *p = jit_page(h, j, hart_ram_ppn(h, hp), hp);
    if (!p || p->gen != j->cache.gen || blk_get(p, blk_key(pc & 0xfff, variant)) != off) return;
    struct far_link fl;
    memcpy(&fl, j->cache.rw + at, sizeof(fl));
    if ((size_t)fl.jmp_at + 4 > j->cache.used) return;
    fl.pc = pc;
    fl.addend = te->addend;
    fl.page = (uint64_t)(uintptr_t)p;
    fl.ver = p->ver;
    fl.tlb_off = (uint32_t)((const uint8_t *)te - (const uint8_t *)tx);
    memcpy(j->cache.rw + at, &fl, sizeof(fl));
    x86_patch(j->cache.rw + fl.jmp_at, j->cache.rw + off);
    j->st.far_linked++;
    j->st.jalr_linked += fl.jalr;
}

/* The hart whose blocks this thread runs (the fault handler's way to it). */
static __thread struct hart *jit_cur;
static struct sigaction fm_old_segv; /* the handler before ours: faults not ours go there */
static pthread_mutex_t fm_sig_lock = PTHREAD_MUTEX_INITIALIZER;

/* SIGSEGV: a fast-memory access (emit_fm) to a page not mapped in the hart's region (or a
 * store to a read-only one) resumes at its stub with rax = va, as if the fast path had
 * jumped there; the stub's slow path maps the page or raises the guest's exception. Any
 * other fault goes to the handler installed before (the console's, ASan's) or kills the
 * process as before. */
static void jit_fm_fault(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    struct hart *h = jit_cur;
    if (h && h->jit && h->fm_base) {
        struct jit *j = h->jit;
        greg_t *gr = uc->uc_mcontext.gregs;
        uintptr_t rip = (uintptr_t)gr[REG_RIP], rx = (uintptr_t)j->cache.rx;
        uintptr_t a = (uintptr_t)si->si_addr, base = (uintptr_t)h->fm_base;
        if (a - (base - FM_GUARD) < FM_GUARD + FM_USER_TOP + FM_GUARD && rip - rx < j->cache.used) {
            uint32_t at = (uint32_t)(rip - rx);
            size_t lo = 0, hi = j->nsites;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (j->sites[mid].at < at)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo < j->nsites && j->sites[lo].at == at) { /* the stub wants rax = va */
                uint32_t stub = j->sites[lo].stub;
                if (stub & FM_SITE_BASED) gr[REG_RAX] = (greg_t)((uintptr_t)gr[REG_RAX] - base);
                gr[REG_RIP] = (greg_t)(rx + (stub & ~FM_SITE_BASED));
                fastmem_count_fault(h);
                return;
            }
        }
    }
    if ((fm_old_segv.sa_flags & SA_SIGINFO) && fm_old_segv.sa_sigaction) {
        fm_old_segv.sa_sigaction(sig, si, ucv);
    } else if (!(fm_old_segv.sa_flags & SA_SIGINFO) && fm_old_segv.sa_handler != SIG_DFL &&
               fm_old_segv.sa_handler != SIG_IGN) {
        fm_old_segv.sa_handler(sig);
    } else { /* the default action: the access faults again when this returns */
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        sigemptyset(&dfl.sa_mask);
        sigaction(sig, &dfl, NULL);
    }
}

/* Make jit_fm_fault the SIGSEGV handler (again: a handler installed since, such as a
 * console's, is kept as the one it passes other faults to). */
int jit_fm_install(void)
{
    pthread_mutex_lock(&fm_sig_lock);
    struct sigaction cur;
    int r = sigaction(SIGSEGV, NULL, &cur);
    if (r == 0 && !((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == jit_fm_fault)) {
        struct sigaction sa = {.sa_sigaction = jit_fm_fault, .sa_flags = SA_SIGINFO};
        sigemptyset(&sa.sa_mask);
        fm_old_segv = cur;
        r = sigaction(SIGSEGV, &sa, NULL);
    }
    pthread_mutex_unlock(&fm_sig_lock);
    return r < 0 ? -errno : 0;
}

void jit_exec(struct hart *h, int budget)
{
    struct jit *j = h->jit;
    /* Debugging (breakpoints, stepping) and Sdtrig triggers are the interpreter's. */
    if (!j || budget <= 0 || h->debug || h->trig_exec || h->trig_data) {
        hart_exec(h, budget);
        return;
    }
    j->pauses = 0;
    jit_cur = h;
    /* Blocks translated now use fast memory: user mode under Sv39 with fast memory on, also
     * while the address space warms up (fm_limit 0: their stubs take the TLB meanwhile). */
    const bool fm = h->fm && h->priv == PRV_U && (h->satp >> 60) == 8;
    struct tlb_entry *const tr = h->tlb[h->tlbi_data].e[ACC_R];
    struct tlb_entry *const tw = h->tlb[h->tlbi_data].e[ACC_W];
    struct tlb_entry *const tx = h->tlb[h->priv == PRV_M   ? TLBI_M
                                        : h->priv == PRV_S ? TLBI_S
                                                           : TLBI_U]
                                     .e[ACC_X];
    /* blocks chained to each other count against the same budget (emit_exit) */
    h->jit_budget = budget;
    uint64_t link = 0; /* a link request of the block that returned last (emit_exit) */
    uint32_t link_stamp = 0;
    unsigned link_gen = 0;
    uint64_t xlink = 0; /* a far link request (emit_far_exit) */
    unsigned xlink_gen = 0;
    while (h->jit_budget-- > 0) {
        uint64_t pc = h->pc;
        uint64_t vpn = pc >> 12;
        struct tlb_entry *te = &tx[vpn & (TLB_SIZE - 1)];
        uint8_t *hp;
        if (likely(te->tag == (vpn ^ h->tlb_key))) {
            hp = (uint8_t *)(uintptr_t)((pc & ~0xfffull) + te->addend);
        } else {
            int c = mem_fetch_page(h, pc, &hp);
            if (c) {
                hart_raise_exception(h, (uint64_t)c, pc);
                return;
            }
        }
        if (unlikely(h->dcache_epoch != j->jc_epoch)) { /* a fence.i: records re-check */
            j->jc_epoch = h->dcache_epoch;
            j->stamp++;
        }
        struct jc_entry *jc = &j->jc[(pc >> 1) & (JC_SIZE - 1)];
        uint32_t off;
        /* user code's translation for its address space's fast memory, on or off (fm_limit
         * is FM_USER_TOP only in user mode under Sv39) */
        const bool variant = fm && h->fm_limit;
        if (likely(jc->pc == pc && jc->hp == hp && jc->stamp == j->stamp &&
                   jc->fm_limit == h->fm_limit)) {
            off = jc->off;
        } else {
            struct jpage *p = jit_page(h, j, hart_ram_ppn(h, hp), hp);
            if (unlikely(!p)) {
                hart_exec(h, h->jit_budget + 1); /* out of host memory: the interpreter copes */
                return;
            }
            unsigned poff = (unsigned)(pc & 0xfff);
            off = blk_get(p, blk_key(poff, variant));
            if (unlikely(off == 0)) {
                struct timespec t0, t1;
                clock_gettime(CLOCK_MONOTONIC, &t0);
                off = translate(j, p, pc, fm, variant);
                clock_gettime(CLOCK_MONOTONIC, &t1);
                j->st.compile_ns +=
                    (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000ll + (t1.tv_nsec - t0.tv_nsec));
                if (unlikely(blk_put(p, blk_key(poff, variant), off) != 0)) { /* no memory */
                    hart_exec(h, h->jit_budget + 1);
                    return;
                }
            }
            if (off == JIT_INTERP) {
                j->st.fallbacks++;
                link = 0;
                hart_exec(h, 1);
                if (h->exec_left > 0) return; /* an event the run loop must see */
                continue;
            }
            *jc = (struct jc_entry){pc, hp, off, j->stamp, h->fm_limit};
        }
        /* The block that returned last asked for its exit here to be linked: patch it when
         * nothing was reset since it ran (the stamp moves with every record refill, fence.i
         * and cache flush) and this block is in that block's physical page (the fetch TLB
         * could have changed in between). */
        if (link) {
            if (j->stamp == link_stamp && j->cache.gen == link_gen &&
                (uint32_t)(link >> 32) == (uint32_t)hart_ram_ppn(h, hp)) {
                x86_patch(j->cache.rw + (uint32_t)link, j->cache.rw + off);
                j->st.linked++;
            }
            link = 0;
        }
        if (xlink) {
            if (j->cache.gen == xlink_gen)
                far_link(h, j, (uint32_t)(xlink - 1), pc, hp, te, tx, off, variant);
            xlink = 0;
        }
        h->jit_link = 0;
        h->jit_xlink = 0;
        int r = ((jit_entry_fn)(void *)(j->cache.rx + (j->entry - j->cache.rw)))(
            h, tr, tw, pc & ~0xfffull, tx, j->cache.rx + off);
        if (unlikely(r)) {
            if (r == JIT_LEAVE) return;
            hart_raise_exception(h, (uint64_t)(r - 1), h->fault_tval);
            return;
        }
        if (h->jit_link) {
            link = h->jit_link;
            link_stamp = j->stamp;
            link_gen = j->cache.gen;
        }
        if (h->jit_xlink) {
            j->st.far_misses++;
            xlink = h->jit_xlink;
            xlink_gen = j->cache.gen;
        }
    }
}

int jit_init(struct hart *h, size_t cache_size)
{
    struct jit *j = calloc(1, sizeof(*j));
    if (!j) return -ENOMEM;
    int r = jit_cache_acquire(&j->cache, cache_size ? cache_size : JIT_CACHE_DEFAULT);
    if (r < 0) {
        free(j);
        return r;
    }
    emit_trampoline(j);
    const char *pm = getenv("VESSEL_JIT_PERFMAP");
    if (pm && *pm && strcmp(pm, "0") != 0) {
        j->perf_map = true;
        pthread_once(&perf_map_once, perf_map_open);
        perf_map_add(j, j->cache.rw, j->cache.used, "jit_trampoline", 0);
    }
    const char *dump = getenv("VESSEL_JIT_DUMP");
    if (dump && *dump) {
        if (strcmp(dump, "all") == 0) {
            j->dump_all = true;
        } else {
            char *end;
            j->dump_pc = strtoull(dump, &end, 16);
            j->dump_one = *end == 0;
            if (!j->dump_one) log_warn("VESSEL_JIT_DUMP=%s: expected all or a hex address", dump);
        }
    }
    h->jit = j;
    return 0;
}

void jit_get_stats(const struct hart *h, struct jit_stats *s)
{
    memset(s, 0, sizeof(*s));
    if (h->jit) *s = h->jit->st;
}

void jit_destroy(struct hart *h)
{
    struct jit *j = h->jit;
    if (!j) return;
    log_debug("hart %u jit: %llu blocks translated (%llu guest instructions, %llu KiB host "
              "code), %llu pages invalidated (code changed), %llu page records evicted, "
              "%llu interpreter fallbacks (blocks), %llu interpreted instructions in blocks, "
              "%llu cache flushes, %llu exits linked, %llu far links made (%llu of jalr's) of "
              "%llu misses, %llu rotates, zero-extensions and shift-adds fused, %llu branches "
              "over one instruction as a cmov, %llu ms "
              "translating, %llu+%llu blocks with fast memory (fm_base in r15 + added from "
              "memory), %llu blocks with a loop inside, %llu that followed a backward branch, "
              "%llu blocks eliding limit tests (%llu tests elided)",
              h->id, (unsigned long long)j->st.blocks, (unsigned long long)j->st.insns,
              (unsigned long long)(j->st.host_bytes >> 10), (unsigned long long)j->st.invalidated,
              (unsigned long long)j->st.evicted, (unsigned long long)j->st.fallbacks,
              (unsigned long long)j->st.steps, (unsigned long long)j->st.flushes,
              (unsigned long long)j->st.linked, (unsigned long long)j->st.far_linked,
              (unsigned long long)j->st.jalr_linked, (unsigned long long)j->st.far_misses,
              (unsigned long long)j->st.fused, (unsigned long long)j->st.selects,
              (unsigned long long)(j->st.compile_ns / 1000000), (unsigned long long)j->st.fm_pinned,
              (unsigned long long)j->st.fm_added, (unsigned long long)j->st.loops,
              (unsigned long long)j->st.followed, (unsigned long long)j->st.fm_guarded,
              (unsigned long long)j->st.fm_elided);
    log_debug("hart %u tlb: %llu refills (page walks), %llu misses taken from the victim ways",
              h->id, (unsigned long long)h->tlb_refills, (unsigned long long)h->tlb_victim_hits);
    if (log_current_level >= LOG_TRACE) {
        /* the ten operations the interpreter ran most inside blocks */
        for (unsigned n = 0; n < 10; n++) {
            unsigned best = 0;
            for (unsigned op = 1; op < RV_OP_COUNT; op++)
                if (j->steps_by_op[op] > j->steps_by_op[best]) best = op;
            if (!j->steps_by_op[best]) break;
            log_trace("hart %u jit: %llu interpreter steps of %s", h->id,
                      (unsigned long long)j->steps_by_op[best], rv_op_name((enum rv_op)best));
            j->steps_by_op[best] = 0;
        }
    }
    for (unsigned i = 0; i < JPAGE_SLOTS; i++) {
        if (!j->pages[i]) continue;
        blk_clear(j->pages[i]);
        free(j->pages[i]);
    }
    if (jit_cur == h) jit_cur = NULL;
    free(j->sites);
    jit_cache_release(&j->cache);
    free(j);
    h->jit = NULL;
}

void jit_invalidate_all(struct hart *h)
{
    struct jit *j = h->jit;
    if (!j) return;
    for (unsigned i = 0; i < JPAGE_SLOTS; i++) {
        if (!j->pages[i]) continue;
        j->pages[i]->ppn = DPAGE_INVALID;
        blk_clear(j->pages[i]);
    }
    j->stamp++;
}

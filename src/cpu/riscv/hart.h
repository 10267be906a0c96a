/* A RISC-V RV64GC hart: architectural state, CSRs, software TLB, decode cache.
 * One host thread runs each hart (hart_run); other threads only touch the fields marked
 * "any thread" (interrupt wires, kick, stop request). */
#ifndef VESSEL_CPU_RISCV_HART_H
#define VESSEL_CPU_RISCV_HART_H
#include "cpu/riscv/fpu.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct bus;
struct hart;
struct aclint;
struct jit;

#define PRV_U 0
#define PRV_S 1
#define PRV_M 3

/* mstatus (priv spec 3.1.6) */
#define MSTATUS_SIE  (1ull << 1)
#define MSTATUS_MIE  (1ull << 3)
#define MSTATUS_SPIE (1ull << 5)
#define MSTATUS_MPIE (1ull << 7)
#define MSTATUS_SPP  (1ull << 8)
#define MSTATUS_MPP  (3ull << 11)
#define MSTATUS_FS   (3ull << 13)
#define MSTATUS_MPRV (1ull << 17)
#define MSTATUS_SUM  (1ull << 18)
#define MSTATUS_MXR  (1ull << 19)
#define MSTATUS_TVM  (1ull << 20)
#define MSTATUS_TW   (1ull << 21)
#define MSTATUS_TSR  (1ull << 22)
#define MSTATUS_UXL  (3ull << 32)
#define MSTATUS_SXL  (3ull << 34)
#define MSTATUS_SD   (1ull << 63)
#define FS_DIRTY     (3ull << 13)

/* interrupt bits (mip/mie) */
#define IRQ_SSI  1
#define IRQ_MSI  3
#define IRQ_STI  5
#define IRQ_MTI  7
#define IRQ_SEI  9
#define IRQ_MEI  11
#define MIP_SSIP (1ull << IRQ_SSI)
#define MIP_MSIP (1ull << IRQ_MSI)
#define MIP_STIP (1ull << IRQ_STI)
#define MIP_MTIP (1ull << IRQ_MTI)
#define MIP_SEIP (1ull << IRQ_SEI)
#define MIP_MEIP (1ull << IRQ_MEI)

/* exception causes */
#define EXC_INSN_MISALIGNED  0
#define EXC_INSN_ACCESS      1
#define EXC_ILLEGAL_INSN     2
#define EXC_BREAKPOINT       3
#define EXC_LOAD_MISALIGNED  4
#define EXC_LOAD_ACCESS      5
#define EXC_STORE_MISALIGNED 6
#define EXC_STORE_ACCESS     7
#define EXC_ECALL_U          8
#define EXC_ECALL_S          9
#define EXC_ECALL_M          11
#define EXC_INSN_PAGE_FAULT  12
#define EXC_LOAD_PAGE_FAULT  13
#define EXC_STORE_PAGE_FAULT 15

#define MENVCFG_FIOM (1ull << 0)
#define MENVCFG_STCE (1ull << 63)

enum access { ACC_R = 0, ACC_W = 1, ACC_X = 2 };

/* Software TLB: direct mapped, one array per access type, per effective privilege (S-mode data
 * accesses with sstatus.SUM set use their own set, so Linux toggling SUM around every user copy
 * costs no flush). A hit gives host address = vaddr + addend. tag = (vaddr >> 12) ^ tlb_key,
 * where tlb_key = generation << 52: a flush bumps the generation instead of clearing the arrays.
 * Only RAM pages whose PMP permission is uniform over the page are cached. Each entry has a
 * victim way (v): a fill moves the entry it replaces there, and a miss that finds its page
 * there swaps the two instead of walking the page table. The inline checks (exec.c, the JIT)
 * look at e only. */
#define TLB_BITS  10
#define TLB_SIZE  (1u << TLB_BITS)
#define TLB_EMPTY (~0ull)
struct tlb_entry {
    uint64_t tag;
    uintptr_t addend;
};
struct tlb_set {
    struct tlb_entry e[3][TLB_SIZE];
    struct tlb_entry v[3][TLB_SIZE];
};
/* TLB set index for an effective privilege; TLBI_NONE is always empty (used while
 * M-mode data accesses go through MPRV translation: they take the slow path). */
enum { TLBI_U = 0, TLBI_S = 1, TLBI_S_SUM = 2, TLBI_M = 3, TLBI_NONE = 4, TLBI_COUNT = 5 };
#define TLB_GEN_MAX 0xffeu

/* Decode cache: pre-decoded instructions of one physical page, one slot per 2-byte offset,
 * plus a sentinel that continues to the next page. */
struct dinsn {
    /* Handler: a computed-goto label, as its distance from exec.c's base label (GCC's
     * relative-label idiom). 12 bytes a slot instead of 16 with a pointer: the decode cache is
     * most of a VM process's memory beyond its guest RAM (3 MiB less at DCACHE_PAGES). */
    int32_t h;
    int32_t imm; /* immediate, CSR number or raw encoding, per handler */
    uint8_t rd, rs1, rs2;
};
_Static_assert(sizeof(struct dinsn) == 12, "dinsn is 12 bytes: see DCACHE_PAGES");
#define DPAGE_SLOTS 2048
#define DPAGE_BYTES 4096
struct dpage {
    uint64_t ppn;   /* physical page number, or DPAGE_INVALID */
    uint64_t epoch; /* dcache_epoch when last known to match memory */
    struct dinsn ins[DPAGE_SLOTS + 1];
    /* The page's bytes as they were when it entered the cache: slots are decoded from here,
     * and after fence.i the page is kept only if memory still equals this copy. */
    uint8_t code[DPAGE_BYTES];
};
#define DPAGE_INVALID (~0ull)
/* The decode cache: DCACHE_SLOTS direct-mapped index entries (by physical page) sharing at most
 * DCACHE_PAGES decoded pages (28 KiB each); when all are in use, a miss takes one over from
 * another index entry (clock order). Many index entries make conflict misses rare (a 256-entry
 * direct-mapped cache missed on 5% of page entries under a Debian guest doing block I/O, and
 * each miss resets 2048 slots and re-decodes: 1024 entries doubled 4K random-read IOPS); the
 * page limit keeps the memory a hart adds bounded (10.7 MiB). */
#define DCACHE_SLOTS  1024
#define DCACHE_PAGES  384

#define PMP_ENTRIES 16
struct pmp_region {
    uint64_t lo, hi; /* [lo, hi) */
    uint8_t cfg;
};

/* Debug triggers (Sdtrig, debug spec 1.0 ch. 5): TRIG_COUNT guest-visible triggers per hart,
 * each mcontrol6 (type 6) or disabled (type 15). trigger.c. */
#define TRIG_COUNT  4
#define CSR_TSELECT 0x7a0
#define CSR_TDATA1  0x7a1
#define CSR_TDATA2  0x7a2
#define CSR_TDATA3  0x7a3
#define CSR_TINFO   0x7a4
struct trigger {
    uint64_t tdata1, tdata2;
};
/* Access kinds a data trigger watches (mcontrol6 load/store bits). */
#define TRIG_LOAD           1u
#define TRIG_STORE          2u
/* Not a RISC-V cause: a debugger-owned trigger fired; hart_raise_exception parks the hart for
 * the debugger instead of trapping (the equivalent of action=1, enter debug mode). */
#define CAUSE_DEBUG_TRIGGER 0x1000

/* Debugger state shared by all harts of a machine; changed only while every hart is parked. */
#define DEBUG_MAX_BREAKPOINTS 64
#define DEBUG_MAX_HWBP        4 /* hardware breakpoints (Z1) */
#define DEBUG_MAX_WATCH       4 /* watchpoints (Z2, Z3, Z4) */
struct debug_watch {
    uint64_t addr, len; /* virtual [addr, addr + len) */
    unsigned kind;      /* TRIG_LOAD | TRIG_STORE */
};
struct hart_debug {
    unsigned nbp;
    uint64_t bp_pa[DEBUG_MAX_BREAKPOINTS]; /* physical addresses of software breakpoints */
    unsigned nhwbp, nwatch;
    uint64_t hwbp[DEBUG_MAX_HWBP]; /* virtual addresses, any privilege */
    struct debug_watch watch[DEBUG_MAX_WATCH];
    /* called on the hart's thread when it stops for the debugger (breakpoint, step) */
    void (*stopped)(void *ctx, struct hart *h);
    void *ctx;
};
enum hart_debug_reason { DEBUG_NONE = 0, DEBUG_BREAKPOINT, DEBUG_STEP, DEBUG_TRIGGER };

/* Which engine runs guest code (--engine). */
enum hart_engine { ENGINE_INTERP = 0, ENGINE_JIT = 1 };

/* What the hart needs from the machine. */
/* satp modes (priv spec 10.1.11) a hart may offer at most (hart_env.satp_max_mode) */
enum { MMU_SV39 = 8, MMU_SV48 = 9, MMU_SV57 = 10 };

struct hart_env {
    uint8_t *ram;
    uint64_t ram_base, ram_size;
    struct bus *bus;
    struct aclint *clint;
    enum hart_engine engine;
    uint64_t jit_cache_size; /* bytes of translated code per hart (0: default) */
    /* The widest satp mode the hart accepts: 8 (Sv39), 9 (Sv48) or 10 (Sv57; 0 means this
     * too). A write of a wider mode has no effect, which is how Linux finds the widest. */
    unsigned satp_max_mode;
    /* fastmem: guest RAM is the memfd ram_fd mapped shared at ram, and the JIT may map its
     * pages again where user-mode code finds them (fastmem.c). false: RAM is not shareable
     * (e.g. a snapshot's file mapped copy-on-write) or the option is off. */
    bool fastmem;
    int ram_fd;
    uint64_t fastmem_warmup; /* jit/fastmem.h FM_WARMUP_DEFAULT; 0: at once */
};

/* Why hart_run returned. */
enum hart_exit { HART_EXIT_STOP = 0, HART_EXIT_FATAL = 1 };

struct hart {
    uint64_t x[33]; /* x[32] is a write sink for side-effecting instructions with rd = x0 */
    uint64_t pc;
    struct fpu_state fp;
    unsigned priv;
    unsigned id;

    /* CSRs */
    uint64_t mstatus, medeleg, mideleg, mie, mtvec, mscratch, mepc, mcause, mtval;
    uint64_t mcounteren, scounteren, menvcfg, senvcfg, mcountinhibit;
    uint64_t stvec, sscratch, sepc, scause, stval, satp, stimecmp;
    uint64_t mip_sw; /* software-writable mip bits: SSIP, STIP (when !STCE), SEIP */
    uint64_t instret, cycle_offset, instret_offset;
    uint8_t pmpcfg[PMP_ENTRIES];
    uint64_t pmpaddr[PMP_ENTRIES];
    struct pmp_region pmp_active[PMP_ENTRIES]; /* enabled entries in priority order */
    unsigned pmp_nactive;

    /* LR/SC reservation; SC is a compare-and-swap against the value LR saw. */
    uint64_t res_addr, res_val;
    bool res_valid;

    bool wfi;
    uint64_t halt_poll_ns; /* adaptive WFI polling window (0: sleep at once) */

    struct hart_env env;

    /* any thread */
    _Atomic uint64_t mip_ext; /* wires: MSIP, MEIP, SEIP (PLIC) */
    _Atomic int stop;         /* ask hart_run to return */
    _Atomic int kicked;
    pthread_mutex_t sleep_lock;
    pthread_cond_t sleep_cond;

    /* fatal-loop detection */
    uint64_t last_trap_pc, last_trap_instret, same_trap_count;
    char fatal_msg[160];

    /* engine */
    unsigned tlbi_data; /* TLB set for loads/stores at the current privilege/MPRV/SUM */
    uint64_t tlb_key;   /* generation << 52, XORed into every tag */
    /* Set by mem_load_slow/mem_store_slow when they fail: the trap value, i.e. the address of
     * the part of the access that faulted (for an access crossing into a page that faults, the
     * start of that page, not va: priv spec 3.1.16; Linux resolves the fault for the page in
     * stval, so va would make it fix the wrong page and the hart fault forever). */
    uint64_t fault_tval;
    unsigned tlb_gen;
    /* Virtual range [lo, last] of the superpages translated since the last full flush: an
     * sfence.vma for one address inside it flushes everything (the TLB holds a superpage as
     * 4 KiB entries, and the spec's one-address fence covers the whole leaf), elsewhere only
     * that page's entries (tlb_flush_page). */
    uint64_t tlb_super_lo, tlb_super_last;
    uint64_t tlb_refills, tlb_victim_hits; /* misses that walked, misses the victim way took */
    struct tlb_set tlb[TLBI_COUNT];
    struct dpage *dcache[DCACHE_SLOTS];
    unsigned dcache_pages; /* decoded pages allocated (at most DCACHE_PAGES) */
    unsigned dcache_hand;  /* clock hand: the next index entry to take a page from */
    uint64_t dcache_epoch; /* bumped by fence.i: pages are re-checked against memory */
    struct dinsn tmp[3];   /* executes an instruction that straddles two pages */

    /* debugging */
    bool trace_traps;
    struct hart_debug *debug; /* NULL when no debugger is configured */
    _Atomic int pause_req;    /* park in hart_run until cleared (any thread, sleep_lock) */
    bool parked;              /* under sleep_lock */
    bool single_step;         /* execute one instruction, then park */
    enum hart_debug_reason debug_reason;
    void *user; /* owner (the machine) */
    /* DEBUG_TRIGGER: what fired (TRIG_LOAD/TRIG_STORE, 0 = execute) and the address */
    unsigned debug_hit_kind;
    uint64_t debug_hit_addr;

    /* Debug triggers: guest CSRs, and what trigger_update() derived from them and from the
     * debugger's: whether any execute / load-store trigger is armed (the slow paths and the
     * decoder test only these) and the virtual ranges the data TLB must not cache. Kept at
     * the end so the hot fields above keep their offsets. */
    unsigned tselect;
    struct trigger trig[TRIG_COUNT];
    bool trig_exec, trig_data;
    unsigned trig_nranges;
    uint64_t trig_lo[TRIG_COUNT + DEBUG_MAX_WATCH], trig_hi[TRIG_COUNT + DEBUG_MAX_WATCH];
    /* cycle/instret values held while mcountinhibit.CY/IR is set (cold: kept at the end) */
    uint64_t cycle_frozen, instret_frozen;
    /* hart_exec's budget left when it returned: > 0 means it stopped for an event (trap, CSR
     * write, fence.i...) rather than because the budget ran out (the JIT's fallback needs it) */
    int exec_left;
    int jit_budget; /* blocks jit_exec may still run, chained ones included */
    /* set by a block exit that asks jit_exec to link it to its target (jit.c emit_exit) */
    uint64_t jit_link;
    /* set by an exit to another page that asks to be linked: its link record's cache offset
     * + 1 (jit.c emit_far_exit) */
    uint64_t jit_xlink;
    struct jit *jit; /* NULL unless env.engine is ENGINE_JIT (jit/jit.c) */
    /* Fast memory (jit/fastmem.h): guest va v of a mapped user page is at fm_base + v;
     * translated accesses go there when va < fm_limit (0 outside U mode under Sv39). */
    uint8_t *fm_base;
    uint64_t fm_limit;
    struct fastmem *fm;
};

/* Set up a hart in its reset state (M-mode, pc = reset_pc). Returns 0 or -ENOMEM. */
int hart_init(struct hart *h, unsigned id, const struct hart_env *env, uint64_t reset_pc);
void hart_reset(struct hart *h, uint64_t reset_pc);
void hart_destroy(struct hart *h);
/* Run until h->stop is set (HART_EXIT_STOP) or the guest cannot continue (HART_EXIT_FATAL,
 * with h->fatal_msg). */
enum hart_exit hart_run(struct hart *h);
/* Execute at most about `budget` control transfers; returns when the budget is spent or after
 * an instruction that changes privilege, interrupt enables or translation. budget 0 executes
 * exactly one instruction (debugger single-step), ignoring breakpoints. (exec.c) */
void hart_exec(struct hart *h, int budget);

/* Interrupt wires from devices (any thread). bit is the mip bit number. */
void hart_set_irq(struct hart *h, unsigned bit, bool level);
/* Wake the hart from WFI so it re-evaluates timers and interrupts (any thread). */
void hart_kick(struct hart *h);
void hart_request_stop(struct hart *h);
/* Debugger: ask a hart to park, wait until it has (any thread but the hart's own). */
void hart_pause(struct hart *h);
/* Let a parked hart run again (optionally for one instruction only). */
void hart_resume(struct hart *h, bool single_step);

/* Trap machinery (trap.c). */
void hart_raise_exception(struct hart *h, uint64_t cause, uint64_t tval);
void hart_mret(struct hart *h);
void hart_sret(struct hart *h);
/* Take the highest-priority pending enabled interrupt, if any. Returns true if taken. */
bool hart_check_interrupts(struct hart *h);
uint64_t hart_mip(struct hart *h);
/* Recompute the data TLB selector after a privilege/MPRV/MPP change. */
void hart_update_mode(struct hart *h);

/* Snapshots (hart_state.c, util/staterec.h): section "hart.ID". hart_load expects a hart in
 * its reset state, not running; 0, or -1 with the reason in r (nothing that matters applied). */
struct sw;
struct sr;
void hart_save(const struct hart *h, struct sw *w);
int hart_load(struct hart *h, struct sr *r);

/* CSRs (csr.c). op: 0 = RW, 1 = RS, 2 = RC. write = whether the instruction writes.
 * Returns 0 or an exception cause (illegal instruction). On success *old is the old value. */
int csr_access(struct hart *h, unsigned csr, int op, uint64_t val, bool write, uint64_t *old);
/* After csr_access wrote csr (mstatus was mstatus_before): true when the write changed nothing
 * that code running on must look at again (the data TLB set, privilege, translation, raised
 * interrupt enables, timers, triggers): data registers (xscratch, xepc, xcause, xtval), the FP
 * CSRs, and status writes that only clear SIE/MIE. The interpreter leaves its loop after every
 * CSR write; the JIT's blocks go on after these. */
bool csr_write_is_quiet(const struct hart *h, unsigned csr, uint64_t mstatus_before);

/* MMU (mmu.c). */
void tlb_flush_all(struct hart *h);
/* After a satp write (flushes what has no ASIDs). */
void tlb_satp_written(struct hart *h);
/* sfence.vma x0, asid. */
void tlb_flush_asid(struct hart *h, uint64_t asid);
/* sfence.vma with rs1 = va: drop the translations of va's page (all of them if va may be in
 * a superpage). */
void tlb_flush_page(struct hart *h, uint64_t va);
void dcache_flush(struct hart *h);          /* fence.i semantics */
void dcache_invalidate_all(struct hart *h); /* forget every decoded page */
/* Translate va for access acc at the effective privilege for that access. Returns 0 and *pa,
 * or an exception cause. */
int mmu_translate(struct hart *h, uint64_t va, enum access acc, uint64_t *pa);
/* Translation as a debugger sees it: no permission checks, no A/D updates. 0 or a cause. */
int mmu_debug_translate(struct hart *h, uint64_t va, uint64_t *pa);
/* Slow paths; return 0 or an exception cause; on a fault h->fault_tval is the trap value. */
int mem_load_slow(struct hart *h, uint64_t va, unsigned size, uint64_t *val);
int mem_store_slow(struct hart *h, uint64_t va, unsigned size, uint64_t val);
/* Host pointer for an aligned atomic access (AMO/LR/SC) with write permission; 0 or a cause
 * (then h->fault_tval is the trap value, as for the slow paths). */
int mem_atomic_ptr(struct hart *h, uint64_t va, unsigned size, bool is_load, void **ptr);
/* Fill the fetch TLB for va and return the host pointer to its page; 0 or cause. */
int mem_fetch_page(struct hart *h, uint64_t va, uint8_t **host_page);
/* Physical address of host RAM pointer, for decode cache keys. */
static inline uint64_t hart_ram_ppn(const struct hart *h, const uint8_t *host)
{
    return (uint64_t)(host - h->env.ram) >> 12;
}
bool pmp_check(struct hart *h, uint64_t pa, unsigned size, enum access acc, unsigned priv);
/* Recompute the active PMP regions after a pmpcfg/pmpaddr write (csr.c, reset). */
void pmp_update(struct hart *h);

/* Debug triggers (trigger.c). */
/* Recompute the armed summary after guest or debugger triggers changed; flushes the TLB and
 * forgets decoded code. Call on the hart's thread or while it is parked. */
void trigger_update(struct hart *h);
/* tselect/tdata1/tdata2/tdata3/tinfo: read, and write with WARL legalization. */
uint64_t trigger_csr_read(const struct hart *h, unsigned csr);
void trigger_csr_write(struct hart *h, unsigned csr, uint64_t val);
/* May the slot at this page offset hold an instruction an execute trigger matches? */
bool trigger_exec_offset(const struct hart *h, unsigned off);
/* Before executing at pc / accessing [va, va + size): 0, EXC_BREAKPOINT (h->fault_tval set)
 * or CAUSE_DEBUG_TRIGGER (h->debug_hit_* set). kinds: TRIG_LOAD | TRIG_STORE. */
int trigger_check_exec(struct hart *h, uint64_t pc);
int trigger_check_data(struct hart *h, uint64_t va, unsigned size, unsigned kinds);
/* May the data TLB cache the page at page_va? (false if a data trigger watches part of it) */
bool trigger_page_cacheable(const struct hart *h, uint64_t page_va);

/* time CSR value = ACLINT mtime */
uint64_t hart_time(struct hart *h);
#endif

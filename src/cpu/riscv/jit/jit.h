/* The JIT engine (--engine jit): translates guest basic blocks to x86-64 and runs them,
 * falling back to the interpreter (hart_exec) for what it does not translate. docs/engine.md
 * "The JIT". */
#ifndef VESSEL_CPU_RISCV_JIT_JIT_H
#define VESSEL_CPU_RISCV_JIT_JIT_H
#include "cpu/riscv/hart.h"
#include <stddef.h>

/* Guest instructions per translated block at most. */
#define JIT_MAX_INSNS 64

/* Set up h->jit with a code cache of cache_size bytes (0: the default). 0 or -errno.
 * VESSEL_JIT_DUMP=all, or =PC (hex, a block's first guest virtual address), logs the guest
 * instructions and the host code (hex) of the blocks translated there; scripts/jit-dump.py
 * disassembles the host side with objdump. An environment variable rather than an option:
 * it is for debugging the engine, like the interpreter's VESSEL_* test hooks.
 * VESSEL_JIT_PERFMAP=1 writes /tmp/perf-PID.map, which names each block g_<guest pc>
 * (profile with --no-sandbox: the sandbox may not let the file be written); perf reads it
 * only for anonymous memory, so scripts/jit-perf.py matches perf's memfd offsets to it. */
int jit_init(struct hart *h, size_t cache_size);
/* Log the counters (debug level) and free everything. */
void jit_destroy(struct hart *h);
/* Like hart_exec: run at most about `budget` blocks; returns early on the same events. Uses
 * the interpreter while a debugger is attached or a trigger is armed, and for budget 0. */
void jit_exec(struct hart *h, int budget);
/* Make the JIT's fast-memory fault handler the process's SIGSEGV handler (again, if another
 * was installed since: that one then gets the faults that are not the JIT's). 0 or -errno. */
int jit_fm_install(void);
/* Forget every translation (with dcache_invalidate_all). */
void jit_invalidate_all(struct hart *h);

struct jit_stats {
    uint64_t blocks, insns; /* blocks translated, guest instructions in them */
    uint64_t invalidated;   /* pages whose code changed: their translations dropped */
    uint64_t steps;         /* instructions run by the interpreter inside blocks (CSRs, F/D...) */
    uint64_t fallbacks;     /* interpreter runs for code the JIT does not translate */
    uint64_t flushes;       /* code cache full: everything dropped */
    uint64_t evicted;       /* page records taken over by another page (conflicts) */
    uint64_t host_bytes;    /* bytes of host code generated */
    uint64_t compile_ns;    /* time spent translating (CLOCK_MONOTONIC) */
    uint64_t linked;        /* exits patched to jump to a block translated after them */
    uint64_t far_linked;    /* exits to another page linked (again) to their target */
    uint64_t far_misses;    /* such exits whose link did not hold (to the dispatcher) */
    uint64_t jalr_linked;   /* of the far links, jalr's (linked to their first target) */
    uint64_t fused;         /* rotates (shift, shift, or), zero-extensions (slli 32, srli) and
                             * shift-adds (slli 1-3, add) translated as one */
    uint64_t fm_pinned;     /* blocks with fast-memory accesses through r15 = fm_base */
    uint64_t fm_added;      /* such blocks that add fm_base from memory (registers short) */
    uint64_t selects;       /* branches over one register write translated as a cmov */
    uint64_t loops;         /* blocks that jump back to their own start inside (a loop head) */
    uint64_t followed;      /* blocks that went on at a backward branch's target (scan_block) */
    uint64_t fm_guarded;    /* blocks that test fast memory is on and elide limit tests */
    uint64_t fm_elided;     /* limit tests elided in them (a test of the same base register
                             * earlier in the block stands for them: emit_fm) */
};
void jit_get_stats(const struct hart *h, struct jit_stats *s);
#endif

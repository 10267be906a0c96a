/* Litmus tests for vessel's memory model (RVWMO, unpriv spec chapter 17; docs/engine.md
 * "Memory model"), shared by a bare-metal build (litmus_bm.c) and a static Linux program
 * (litmus_linux.c). Harts work in pairs (h, h ^ m); with 4 harts two pairs run at once, and
 * the pairing m changes every round (litmus_pair_mask), so that whichever harts the host runs
 * side by side are tested against each other (with more harts than host CPUs, a fixed pair
 * could spend a whole run never on the CPUs at the same time).
 * Each round: all harts meet at a barrier, wait a random short time, run the test body on
 * LITMUS_SLOTS independent sets of variables one after the other, meet again; hart 0 then
 * classifies the outcome of every pair and resets the variables.
 *
 * Tests (r = a load's result):
 *   SB  store buffering: h: x[h] = 1; BARRIER; r[h] = x[h^m]. Forbidden with a barrier that
 *       orders the store before the load: r[h] = r[h^m] = 0.
 *   MP  message passing: producer: data = 1; fence w,w; flag = 1. consumer: r1 = flag;
 *       fence r,r; r2 = data. Forbidden: r1 = 1 and r2 = 0.
 *   LB  load buffering: h: r[h] = x[h^m]; fence r,w; x[h] = 1. Forbidden: both r = 1.
 * A test "can fail" if its checker sees the outcome it looks for when the ordering is really
 * absent: on an x86 host, SB without a barrier shows r = 0, 0 (the host's store buffer); MP
 * and LB cannot reorder there (x86-TSO keeps load->load, store->store and load->store order),
 * so their checkers are shown to work on variants with the two accesses swapped in program
 * order, where the looked-for outcome is allowed even under sequential consistency.
 * Platform: define LITMUS_PRINT(s), LITMUS_PRINT_U(v) before including; call litmus_main()
 * on every hart with its index; it returns the number of failed tests (on every hart). */
#ifndef VESSEL_TESTS_LITMUS_H
#define VESSEL_TESTS_LITMUS_H
#include <stdint.h>

#define LITMUS_MAX_HARTS 4
#define LINE             64
/* Independent instances per round, each on its own variables, run one after the other: more
 * trials per barrier (harts leave the barrier close together, then drift apart). */
#define LITMUS_SLOTS     4
#define LITMUS_STR2(x)   #x
#define LITMUS_STR(x)    LITMUS_STR2(x)

enum kind { SB, MP, LB };
enum body {
    SB_NONE,
    SB_FENCE_RW_RW,
    SB_FENCE_W_R,
    SB_AMO_AQRL,
    SB_FENCE_TSO,
    MP_FENCES,
    MP_NONE,
    MP_SWAPPED,
    LB_FENCE_R_W,
    LB_NONE,
    LB_SWAPPED,
};
/* MUST_NOT: the forbidden outcome must never be seen; MUST_SEE: the outcome must be seen at
 * least once (run more rounds, up to a limit, until it is); INFO: allowed, only counted. */
enum expect { MUST_NOT, MUST_SEE, INFO };

struct variant {
    const char *name;
    enum kind kind;
    enum body body;
    enum expect expect;
};

static const struct variant litmus_variants[] = {
    {"SB+none", SB, SB_NONE, MUST_SEE},
    {"SB+fence.rw.rw", SB, SB_FENCE_RW_RW, MUST_NOT},
    {"SB+fence.w.r", SB, SB_FENCE_W_R, MUST_NOT},
    {"SB+amoswap.aqrl", SB, SB_AMO_AQRL, MUST_NOT},
    {"SB+fence.tso", SB, SB_FENCE_TSO, INFO},
    {"MP+fence.w.w+fence.r.r", MP, MP_FENCES, MUST_NOT},
    {"MP+none", MP, MP_NONE, INFO},
    {"MP+swapped-stores", MP, MP_SWAPPED, MUST_SEE},
    {"LB+fence.r.w", LB, LB_FENCE_R_W, MUST_NOT},
    {"LB+none", LB, LB_NONE, INFO},
    {"LB+swapped", LB, LB_SWAPPED, MUST_SEE},
};
#define LITMUS_NVARIANTS (sizeof(litmus_variants) / sizeof(litmus_variants[0]))

struct line64 {
    volatile uint64_t v;
    char pad[LINE - 8];
};

struct litmus_shared {
    struct line64 x[LITMUS_SLOTS][LITMUS_MAX_HARTS];    /* SB, LB: one variable per hart */
    struct line64 data[LITMUS_SLOTS][LITMUS_MAX_HARTS]; /* MP: by the pair's lower hart */
    struct line64 flag[LITMUS_SLOTS][LITMUS_MAX_HARTS];
    struct line64 r1[LITMUS_SLOTS][LITMUS_MAX_HARTS], r2[LITMUS_SLOTS][LITMUS_MAX_HARTS];
    struct line64 scratch[LITMUS_MAX_HARTS]; /* AMO target, per hart */
    struct line64 count, sense, stop, timeout;
    unsigned nharts;
    uint64_t rounds, max_rounds;
};

static struct litmus_shared litmus_sh __attribute__((aligned(LINE)));

/* Sense-reversing barrier; returns 0, or -1 after about 2^31 spins (a hart never came). */
static int litmus_barrier(unsigned *sense)
{
    unsigned s = !*sense;
    *sense = s;
    if (__atomic_add_fetch(&litmus_sh.count.v, 1, __ATOMIC_ACQ_REL) == litmus_sh.nharts) {
        __atomic_store_n(&litmus_sh.count.v, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&litmus_sh.sense.v, s, __ATOMIC_RELEASE);
        return 0;
    }
    for (uint64_t n = 0; __atomic_load_n(&litmus_sh.sense.v, __ATOMIC_ACQUIRE) != s; n++) {
        /* After a while, pause (Zihintpause): vessel then yields the host CPU to a hart that
         * has yet to arrive (harts may outnumber host CPUs); not at once, so that harts
         * running side by side leave the barrier close together. */
        if (n > 300) __asm__ __volatile__(".word 0x0100000f");
        if (n > (1ull << 31) || __atomic_load_n(&litmus_sh.timeout.v, __ATOMIC_RELAXED)) {
            __atomic_store_n(&litmus_sh.timeout.v, 1, __ATOMIC_RELAXED);
            return -1;
        }
    }
    return 0;
}

/* Round n pairs hart h with hart h ^ mask: with 4 harts the three perfect matchings
 * (0-1 2-3, 0-2 1-3, 0-3 1-2) in turn. */
static unsigned litmus_pair_mask(uint64_t n)
{
    return litmus_sh.nharts == 2 ? 1 : 1 + (unsigned)(n % (litmus_sh.nharts - 1));
}

/* The test bodies: exactly the instructions under test, nothing the compiler can move.
 * m: this round's pair mask; in MP the pair's lower hart produces. */
static void litmus_body(enum body b, unsigned h, unsigned m, unsigned k)
{
    unsigned lo = h < (h ^ m) ? h : h ^ m;
    volatile uint64_t *mine = &litmus_sh.x[k][h].v, *other = &litmus_sh.x[k][h ^ m].v;
    volatile uint64_t *scr = &litmus_sh.scratch[h].v;
    volatile uint64_t *data = &litmus_sh.data[k][lo].v, *flag = &litmus_sh.flag[k][lo].v;
    uint64_t one = 1, r1 = 0, r2 = 0;
    int producer = h == lo;
    switch (b) {
#define SB_ASM(mid)                                                                                \
    __asm__ __volatile__("sd %1, 0(%2)\n\t" mid "\n\tld %0, 0(%3)"                                 \
                         : "=&r"(r1)                                                               \
                         : "r"(one), "r"(mine), "r"(other), "r"(scr)                               \
                         : "memory")
    case SB_NONE: SB_ASM(""); break;
    case SB_FENCE_RW_RW: SB_ASM("fence rw, rw"); break;
    case SB_FENCE_W_R: SB_ASM("fence w, r"); break;
    case SB_AMO_AQRL: SB_ASM("amoswap.d.aqrl zero, zero, (%4)"); break;
    case SB_FENCE_TSO: SB_ASM("fence.tso"); break;
#undef SB_ASM
    case MP_FENCES:
    case MP_NONE:
    case MP_SWAPPED:
        if (producer) {
            if (b == MP_FENCES)
                __asm__ __volatile__("sd %0, 0(%1)\n\tfence w, w\n\tsd %0, 0(%2)" ::"r"(one),
                                     "r"(data), "r"(flag)
                                     : "memory");
            else if (b == MP_NONE)
                __asm__ __volatile__("sd %0, 0(%1)\n\tsd %0, 0(%2)" ::"r"(one), "r"(data), "r"(flag)
                                     : "memory");
            else { /* flag first, data a little later: a consumer may see flag = 1, data = 0.
                    * "Later" is a counted loop, not nops a JIT translates to nothing: the
                    * window must stay wide enough for the other hart's loads to land in it. */
                uint64_t spin = 1024;
                __asm__ __volatile__("sd %1, 0(%3)\n1:\taddi %0, %0, -1\n\tbnez %0, 1b\n\t"
                                     "sd %1, 0(%2)"
                                     : "+&r"(spin)
                                     : "r"(one), "r"(data), "r"(flag)
                                     : "memory");
            }
        } else {
            if (b == MP_FENCES)
                __asm__ __volatile__("ld %0, 0(%2)\n\tfence r, r\n\tld %1, 0(%3)"
                                     : "=&r"(r1), "=&r"(r2)
                                     : "r"(flag), "r"(data)
                                     : "memory");
            else
                __asm__ __volatile__("ld %0, 0(%2)\n\tld %1, 0(%3)"
                                     : "=&r"(r1), "=&r"(r2)
                                     : "r"(flag), "r"(data)
                                     : "memory");
        }
        break;
    case LB_FENCE_R_W:
        __asm__ __volatile__("ld %0, 0(%2)\n\tfence r, w\n\tsd %1, 0(%3)"
                             : "=&r"(r1)
                             : "r"(one), "r"(other), "r"(mine)
                             : "memory");
        break;
    case LB_NONE:
        __asm__ __volatile__("ld %0, 0(%2)\n\tsd %1, 0(%3)"
                             : "=&r"(r1)
                             : "r"(one), "r"(other), "r"(mine)
                             : "memory");
        break;
    case LB_SWAPPED: { /* store, a little later (a counted loop, as MP_SWAPPED) load: both
                        * loads may see 1 */
        uint64_t spin = 256;
        __asm__ __volatile__("sd %2, 0(%4)\n1:\taddi %1, %1, -1\n\tbnez %1, 1b\n\tld %0, 0(%3)"
                             : "=&r"(r1), "+&r"(spin)
                             : "r"(one), "r"(other), "r"(mine)
                             : "memory");
        break;
    }
    }
    litmus_sh.r1[k][h].v = r1;
    litmus_sh.r2[k][h].v = r2;
}

/* Hart 0, between rounds: count the looked-for outcomes of every pair of the round's pairing
 * m (the consumer of MP is the higher hart), reset the variables. */
static uint64_t litmus_classify(enum kind k, unsigned m)
{
    uint64_t seen = 0;
    for (unsigned s = 0; s < LITMUS_SLOTS; s++) {
        for (unsigned a = 0; a < litmus_sh.nharts; a++) {
            unsigned b = a ^ m;
            if (b < a) continue;
            uint64_t ra = litmus_sh.r1[s][a].v, rb = litmus_sh.r1[s][b].v;
            if (k == SB && ra == 0 && rb == 0) seen++;
            if (k == MP && rb == 1 && litmus_sh.r2[s][b].v == 0) seen++;
            if (k == LB && ra == 1 && rb == 1) seen++;
        }
        for (unsigned h = 0; h < litmus_sh.nharts; h++) {
            litmus_sh.x[s][h].v = litmus_sh.data[s][h].v = litmus_sh.flag[s][h].v = 0;
            litmus_sh.r1[s][h].v = litmus_sh.r2[s][h].v = 7;
        }
    }
    return seen;
}

/* Every hart calls this; hart 0 must have set nharts, rounds and max_rounds before the others
 * start. Returns the number of failed tests. */
static unsigned litmus_main(unsigned h)
{
    unsigned sense = 0, failed = 0;
    uint64_t rnd = 0x9e3779b97f4a7c15ull * (h + 1);
    for (unsigned vi = 0; vi < LITMUS_NVARIANTS; vi++) {
        const struct variant *v = &litmus_variants[vi];
        uint64_t seen = 0, round = 0;
        if (h == 0) litmus_classify(v->kind, 1);
        for (;;) {
            if (litmus_barrier(&sense)) goto timeout;
            if (__atomic_load_n(&litmus_sh.stop.v, __ATOMIC_ACQUIRE)) break;
            rnd ^= rnd << 13;
            rnd ^= rnd >> 7;
            rnd ^= rnd << 17;
            for (unsigned d = rnd & 31; d; d--)
                __asm__ __volatile__("" ::: "memory");
            unsigned m = litmus_pair_mask(round); /* every hart counts the rounds */
            for (unsigned k = 0; k < LITMUS_SLOTS; k++)
                litmus_body(v->body, h, m, k);
            round++;
            if (litmus_barrier(&sense)) goto timeout;
            if (h == 0) {
                seen += litmus_classify(v->kind, m);
                int done = round >= litmus_sh.rounds;
                if (v->expect == MUST_SEE && !seen) done = round >= litmus_sh.max_rounds;
                if (done) __atomic_store_n(&litmus_sh.stop.v, 1, __ATOMIC_RELEASE);
            }
        }
        if (litmus_barrier(&sense)) goto timeout; /* everyone saw stop */
        if (h == 0) {
            int ok = v->expect == MUST_NOT ? seen == 0 : v->expect == MUST_SEE ? seen > 0 : 1;
            if (!ok) failed++;
            LITMUS_PRINT(ok ? "PASS " : "FAIL ");
            LITMUS_PRINT(v->name);
            LITMUS_PRINT(" harts=");
            LITMUS_PRINT_U(litmus_sh.nharts);
            LITMUS_PRINT(" rounds=");
            LITMUS_PRINT_U(round);
            LITMUS_PRINT("x" LITMUS_STR(LITMUS_SLOTS));
            LITMUS_PRINT(v->kind == SB ? " r=0,0:" : v->kind == MP ? " flag=1,data=0:" : " r=1,1:");
            LITMUS_PRINT_U(seen);
            LITMUS_PRINT(v->expect == MUST_NOT   ? " (forbidden: must be 0)\n"
                         : v->expect == MUST_SEE ? " (must be seen: shows the check can fail)\n"
                                                 : " (allowed, counted only)\n");
            __atomic_store_n(&litmus_sh.stop.v, 0, __ATOMIC_RELEASE);
        }
        if (litmus_barrier(&sense)) goto timeout;
    }
    return failed;
timeout:
    if (h == 0) LITMUS_PRINT("FAIL litmus: a hart did not reach the barrier in time\n");
    return 1;
}
#endif

/* SiFive-compatible PLIC. Behaviour follows the SiFive "Platform-Level Interrupt Controller
 * Specification" (riscv-plic-spec, v1.0.0) and what Linux's irq-sifive-plic.c and OpenSBI expect:
 *  - priorities are 3-bit WARL, source 0 does not exist;
 *  - claim (spec §10) returns the highest-priority pending enabled source whose priority is above
 *    the context's threshold (ties: lowest id), clears its pending bit and holds the source's
 *    gateway "in service" until complete (spec §11);
 *  - sources are level-triggered: pending follows the line while the source is not in service,
 *    and a source still high at complete is pending again.
 * Every context's output is recomputed after each change and driven only when it changes. */
#include "irq/plic.h"
#include "util/staterec.h"
#include <stdio.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PLIC_WORDS 3 /* 96 sources / 32 */
#define PRIO_MASK  7u

#define PRIORITY_BASE  0x000000u
#define PENDING_BASE   0x001000u
#define ENABLE_BASE    0x002000u
#define ENABLE_STRIDE  0x80u
#define CONTEXT_BASE   0x200000u
#define CONTEXT_STRIDE 0x1000u

struct plic_ctx {
    uint32_t enable[PLIC_WORDS];
    uint32_t threshold;
    bool out; /* last level driven on the output line */
    struct irq_line line;
};

struct plic {
    pthread_mutex_t lock;
    unsigned nctx;
    uint32_t prio[PLIC_NSRC];
    uint32_t level[PLIC_WORDS];   /* input line levels */
    uint32_t pending[PLIC_WORDS]; /* gateway forwarded, not yet claimed */
    uint32_t claimed[PLIC_WORDS]; /* in service: claimed, not yet completed */
    struct plic_ctx ctx[];
};

static inline bool bit_get(const uint32_t *w, unsigned i)
{
    return (w[i / 32] >> (i % 32)) & 1;
}
static inline void bit_set(uint32_t *w, unsigned i, bool v)
{
    if (v)
        w[i / 32] |= 1u << (i % 32);
    else
        w[i / 32] &= ~(1u << (i % 32));
}

/* Best claimable source for a context: enabled, pending, priority > threshold; 0 if none. */
static unsigned best_source(const struct plic *p, const struct plic_ctx *c)
{
    unsigned best = 0;
    uint32_t best_prio = c->threshold;
    for (unsigned w = 0; w < PLIC_WORDS; w++) {
        uint32_t cand = p->pending[w] & c->enable[w];
        while (cand) {
            unsigned src = w * 32 + (unsigned)__builtin_ctz(cand);
            cand &= cand - 1;
            if (p->prio[src] > best_prio) { /* strict: ties keep the lower id */
                best_prio = p->prio[src];
                best = src;
            }
        }
    }
    return best;
}

static void update_outputs(struct plic *p)
{
    for (unsigned i = 0; i < p->nctx; i++) {
        struct plic_ctx *c = &p->ctx[i];
        bool lvl = best_source(p, c) != 0;
        if (lvl != c->out) {
            c->out = lvl;
            irq_line_set(&c->line, lvl);
        }
    }
}

struct plic *plic_create(unsigned nharts, const struct irq_line *ctx_out)
{
    if (nharts == 0 || 2 * nharts > PLIC_MAX_CTX) {
        errno = EINVAL;
        return NULL;
    }
    unsigned nctx = 2 * nharts;
    struct plic *p = calloc(1, sizeof(*p) + nctx * sizeof(p->ctx[0]));
    if (!p) return NULL;
    pthread_mutex_init(&p->lock, NULL);
    p->nctx = nctx;
    for (unsigned i = 0; i < nctx; i++)
        p->ctx[i].line = ctx_out ? ctx_out[i] : (struct irq_line){0};
    return p;
}

void plic_destroy(struct plic *p)
{
    if (!p) return;
    pthread_mutex_destroy(&p->lock);
    free(p);
}

void plic_set_irq(struct plic *p, unsigned src, bool level)
{
    if (src == 0 || src >= PLIC_NSRC) return;
    pthread_mutex_lock(&p->lock);
    if (bit_get(p->level, src) != level) {
        bit_set(p->level, src, level);
        /* The gateway forwards a level request only while the source is not in service. */
        if (!bit_get(p->claimed, src)) bit_set(p->pending, src, level);
        update_outputs(p);
    }
    pthread_mutex_unlock(&p->lock);
}

void plic_irq_line_set(void *plic, unsigned src, bool level)
{
    plic_set_irq(plic, src, level);
}

static uint32_t claim(struct plic *p, struct plic_ctx *c)
{
    unsigned src = best_source(p, c);
    if (src) {
        bit_set(p->pending, src, false);
        bit_set(p->claimed, src, true);
        update_outputs(p);
    }
    return src;
}

static void complete(struct plic *p, struct plic_ctx *c, uint32_t src)
{
    /* Spec §11: a completion for a source not enabled for this context is ignored. */
    if (src == 0 || src >= PLIC_NSRC || !bit_get(c->enable, src) || !bit_get(p->claimed, src))
        return;
    bit_set(p->claimed, src, false);
    if (bit_get(p->level, src)) bit_set(p->pending, src, true);
    update_outputs(p);
}

static uint32_t read32(struct plic *p, uint32_t off)
{
    if (off < PENDING_BASE) {
        unsigned src = off / 4;
        return src < PLIC_NSRC ? p->prio[src] : 0;
    }
    if (off < ENABLE_BASE) {
        unsigned w = (off - PENDING_BASE) / 4;
        return w < PLIC_WORDS ? p->pending[w] : 0;
    }
    if (off < CONTEXT_BASE) {
        unsigned ctx = (off - ENABLE_BASE) / ENABLE_STRIDE;
        unsigned w = (off - ENABLE_BASE) % ENABLE_STRIDE / 4;
        if (ctx >= p->nctx || w >= PLIC_WORDS) return 0;
        return p->ctx[ctx].enable[w];
    }
    unsigned ctx = (off - CONTEXT_BASE) / CONTEXT_STRIDE;
    unsigned reg = (off - CONTEXT_BASE) % CONTEXT_STRIDE;
    if (ctx >= p->nctx) return 0;
    if (reg == 0) return p->ctx[ctx].threshold;
    if (reg == 4) return claim(p, &p->ctx[ctx]);
    return 0;
}

static void write32(struct plic *p, uint32_t off, uint32_t val)
{
    if (off < PENDING_BASE) {
        unsigned src = off / 4;
        if (src == 0 || src >= PLIC_NSRC) return;
        p->prio[src] = val & PRIO_MASK;
        update_outputs(p);
        return;
    }
    if (off < ENABLE_BASE) return; /* pending bits are read-only */
    if (off < CONTEXT_BASE) {
        unsigned ctx = (off - ENABLE_BASE) / ENABLE_STRIDE;
        unsigned w = (off - ENABLE_BASE) % ENABLE_STRIDE / 4;
        if (ctx >= p->nctx || w >= PLIC_WORDS) return;
        if (w == 0) val &= ~1u; /* source 0 does not exist */
        p->ctx[ctx].enable[w] = val;
        update_outputs(p);
        return;
    }
    unsigned ctx = (off - CONTEXT_BASE) / CONTEXT_STRIDE;
    unsigned reg = (off - CONTEXT_BASE) % CONTEXT_STRIDE;
    if (ctx >= p->nctx) return;
    if (reg == 0) {
        p->ctx[ctx].threshold = val & PRIO_MASK;
        update_outputs(p);
    } else if (reg == 4) {
        complete(p, &p->ctx[ctx], val);
    }
}

static uint64_t plic_read(void *dev, uint64_t off, unsigned size)
{
    struct plic *p = dev;
    if (off >= PLIC_MMIO_SIZE || (off & 3) || (size != 4 && size != 8)) return 0;
    pthread_mutex_lock(&p->lock);
    uint64_t v = read32(p, (uint32_t)off);
    if (size == 8 && off + 4 < PLIC_MMIO_SIZE) v |= (uint64_t)read32(p, (uint32_t)off + 4) << 32;
    pthread_mutex_unlock(&p->lock);
    return v;
}

static void plic_write(void *dev, uint64_t off, uint64_t val, unsigned size)
{
    struct plic *p = dev;
    if (off >= PLIC_MMIO_SIZE || (off & 3) || (size != 4 && size != 8)) return;
    pthread_mutex_lock(&p->lock);
    write32(p, (uint32_t)off, (uint32_t)val);
    if (size == 8 && off + 4 < PLIC_MMIO_SIZE) write32(p, (uint32_t)off + 4, (uint32_t)(val >> 32));
    pthread_mutex_unlock(&p->lock);
}

const struct mmio_ops plic_mmio_ops = {.read = plic_read, .write = plic_write};

/* ---- snapshots (util/staterec.h) ---- */
void plic_save(struct plic *p, struct sw *w)
{
    pthread_mutex_lock(&p->lock);
    sw_section(w, "plic", 1);
    sw_u64(w, "nctx", p->nctx);
    sw_bytes(w, "prio", p->prio, sizeof(p->prio));
    sw_bytes(w, "level", p->level, sizeof(p->level));
    sw_bytes(w, "pending", p->pending, sizeof(p->pending));
    sw_bytes(w, "claimed", p->claimed, sizeof(p->claimed));
    for (unsigned i = 0; i < p->nctx; i++) {
        char n[24];
        snprintf(n, sizeof(n), "enable.%u", i);
        sw_bytes(w, n, p->ctx[i].enable, sizeof(p->ctx[i].enable));
        snprintf(n, sizeof(n), "threshold.%u", i);
        sw_u64(w, n, p->ctx[i].threshold);
    }
    pthread_mutex_unlock(&p->lock);
}

int plic_load(struct plic *p, struct sr *r)
{
    sr_enter(r, "plic", 1);
    uint64_t nctx = sr_u64(r, "nctx", PLIC_MAX_CTX);
    if (!sr_failed(r) && nctx != p->nctx)
        sr_fail(r, "state of plic: %llu contexts, the machine has %u", (unsigned long long)nctx,
                p->nctx);
    uint32_t prio[PLIC_NSRC], level[PLIC_WORDS], pending[PLIC_WORDS], claimed[PLIC_WORDS];
    uint32_t enable[PLIC_MAX_CTX][PLIC_WORDS], thr[PLIC_MAX_CTX];
    sr_bytes(r, "prio", prio, sizeof(prio));
    sr_bytes(r, "level", level, sizeof(level));
    sr_bytes(r, "pending", pending, sizeof(pending));
    sr_bytes(r, "claimed", claimed, sizeof(claimed));
    for (unsigned i = 0; i < p->nctx && !sr_failed(r); i++) {
        char n[24];
        snprintf(n, sizeof(n), "enable.%u", i);
        sr_bytes(r, n, enable[i], sizeof(enable[i]));
        snprintf(n, sizeof(n), "threshold.%u", i);
        thr[i] = (uint32_t)sr_u64(r, n, PRIO_MASK);
    }
    /* source 0 does not exist; priorities are 3 bits */
    bool bad = !sr_failed(r) && ((level[0] | pending[0] | claimed[0]) & 1);
    for (unsigned s = 0; s < PLIC_NSRC && !sr_failed(r); s++)
        if (prio[s] > PRIO_MASK || (s == 0 && prio[s])) bad = true;
    for (unsigned i = 0; i < p->nctx && !sr_failed(r); i++)
        if (enable[i][0] & 1) bad = true;
    if (bad) sr_fail(r, "state of plic: a priority, source or enable bit out of range");
    if (sr_failed(r)) return -1;
    pthread_mutex_lock(&p->lock);
    memcpy(p->prio, prio, sizeof(prio));
    memcpy(p->level, level, sizeof(level));
    memcpy(p->pending, pending, sizeof(pending));
    memcpy(p->claimed, claimed, sizeof(claimed));
    for (unsigned i = 0; i < p->nctx; i++) {
        memcpy(p->ctx[i].enable, enable[i], sizeof(enable[i]));
        p->ctx[i].threshold = thr[i];
    }
    update_outputs(p);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

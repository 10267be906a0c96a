#include "irq/plic.h"
#include "test.h"

#define NHARTS 2
#define NCTX   (2 * NHARTS)

struct lines {
    bool level[NCTX];
    int calls[NCTX];
};

static void line_set(void *ctx, unsigned n, bool level)
{
    struct lines *l = ctx;
    l->level[n] = level;
    l->calls[n]++;
}

static struct plic *mk(struct lines *l)
{
    memset(l, 0, sizeof(*l));
    struct irq_line out[NCTX];
    for (unsigned i = 0; i < NCTX; i++)
        out[i] = (struct irq_line){line_set, l, i};
    return plic_create(NHARTS, out);
}

static uint32_t rd(struct plic *p, uint64_t off)
{
    return (uint32_t)plic_mmio_ops.read(p, off, 4);
}
static void wr(struct plic *p, uint64_t off, uint32_t v)
{
    plic_mmio_ops.write(p, off, v, 4);
}
static void prio(struct plic *p, unsigned src, uint32_t v)
{
    wr(p, 4 * src, v);
}
static void enable(struct plic *p, unsigned ctx, unsigned src, bool on)
{
    uint64_t off = 0x2000 + 0x80 * ctx + 4 * (src / 32);
    uint32_t v = rd(p, off);
    wr(p, off, on ? v | (1u << (src % 32)) : v & ~(1u << (src % 32)));
}
static void threshold(struct plic *p, unsigned ctx, uint32_t v)
{
    wr(p, 0x200000 + 0x1000 * ctx, v);
}
static uint32_t claim(struct plic *p, unsigned ctx)
{
    return rd(p, 0x200004 + 0x1000 * ctx);
}
static void complete(struct plic *p, unsigned ctx, uint32_t src)
{
    wr(p, 0x200004 + 0x1000 * ctx, src);
}

TEST(plic_priority_is_3bit_warl_and_source0_absent)
{
    struct lines l;
    struct plic *p = mk(&l);
    CHECK(p != NULL);
    prio(p, 5, 0xffffffff);
    CHECK_EQ(rd(p, 4 * 5), 7);
    prio(p, 95, 3);
    CHECK_EQ(rd(p, 4 * 95), 3);
    prio(p, 0, 7);
    CHECK_EQ(rd(p, 0), 0);
    prio(p, 96, 7); /* beyond ndev */
    CHECK_EQ(rd(p, 4 * 96), 0);
    /* enable bit 0 (source 0) is hardwired to 0 */
    wr(p, 0x2000, 0xffffffff);
    CHECK_EQ(rd(p, 0x2000), 0xfffffffe);
    threshold(p, 1, 0xff);
    CHECK_EQ(rd(p, 0x201000), 7);
    plic_destroy(p);
}

TEST(plic_claim_complete_basic)
{
    struct lines l;
    struct plic *p = mk(&l);
    prio(p, 10, 1);
    enable(p, 1, 10, true);
    CHECK(!l.level[1]);
    plic_set_irq(p, 10, true);
    CHECK(l.level[1]);
    CHECK(!l.level[0]); /* not enabled for the M context */
    CHECK_EQ(rd(p, 0x1000), 1u << 10);
    CHECK_EQ(claim(p, 1), 10);
    CHECK(!l.level[1]);
    CHECK_EQ(rd(p, 0x1000), 0);
    /* claimed: not claimable again until completed, even though the line is high */
    CHECK_EQ(claim(p, 1), 0);
    plic_set_irq(p, 10, false);
    complete(p, 1, 10);
    CHECK(!l.level[1]);
    CHECK_EQ(rd(p, 0x1000), 0);
    plic_destroy(p);
}

TEST(plic_level_source_repends_after_complete)
{
    struct lines l;
    struct plic *p = mk(&l);
    prio(p, 3, 2);
    enable(p, 0, 3, true);
    plic_set_irq(p, 3, true);
    CHECK_EQ(claim(p, 0), 3);
    CHECK(!l.level[0]);
    complete(p, 0, 3); /* line still high: pending again */
    CHECK(l.level[0]);
    CHECK_EQ(rd(p, 0x1000), 1u << 3);
    CHECK_EQ(claim(p, 0), 3);
    /* line falls while in service, rises and falls again: nothing after complete */
    plic_set_irq(p, 3, false);
    plic_set_irq(p, 3, true);
    plic_set_irq(p, 3, false);
    complete(p, 0, 3);
    CHECK(!l.level[0]);
    CHECK_EQ(claim(p, 0), 0);
    plic_destroy(p);
}

TEST(plic_pending_follows_line)
{
    struct lines l;
    struct plic *p = mk(&l);
    prio(p, 40, 1);
    enable(p, 1, 40, true);
    plic_set_irq(p, 40, true);
    CHECK_EQ(rd(p, 0x1004), 1u << 8);
    CHECK(l.level[1]);
    plic_set_irq(p, 40, false);
    CHECK_EQ(rd(p, 0x1004), 0);
    CHECK(!l.level[1]);
    wr(p, 0x1004, 0xffffffff); /* pending is read-only */
    CHECK_EQ(rd(p, 0x1004), 0);
    plic_destroy(p);
}

TEST(plic_claim_picks_highest_priority_ties_lowest_id)
{
    struct lines l;
    struct plic *p = mk(&l);
    unsigned srcs[] = {7, 33, 64, 90};
    uint32_t prios[] = {2, 5, 5, 1};
    for (unsigned i = 0; i < 4; i++) {
        prio(p, srcs[i], prios[i]);
        enable(p, 1, srcs[i], true);
        plic_set_irq(p, srcs[i], true);
    }
    CHECK_EQ(claim(p, 1), 33); /* 33 and 64 tie at 5: lowest id */
    CHECK_EQ(claim(p, 1), 64);
    CHECK_EQ(claim(p, 1), 7);
    CHECK_EQ(claim(p, 1), 90);
    CHECK_EQ(claim(p, 1), 0);
    CHECK(!l.level[1]);
    complete(p, 1, 64);
    CHECK(l.level[1]);
    CHECK_EQ(claim(p, 1), 64);
    plic_destroy(p);
}

TEST(plic_threshold_and_priority_masking)
{
    struct lines l;
    struct plic *p = mk(&l);
    prio(p, 1, 3);
    enable(p, 1, 1, true);
    threshold(p, 1, 3);
    plic_set_irq(p, 1, true);
    CHECK(!l.level[1]);         /* priority must be strictly above threshold */
    CHECK_EQ(claim(p, 1), 0);   /* and claim respects it */
    CHECK_EQ(rd(p, 0x1000), 2); /* still pending */
    threshold(p, 1, 2);         /* lowering the threshold raises the output */
    CHECK(l.level[1]);
    threshold(p, 1, 7); /* raising it lowers the output */
    CHECK(!l.level[1]);
    threshold(p, 1, 0);
    CHECK(l.level[1]);
    prio(p, 1, 0); /* priority 0 = never */
    CHECK(!l.level[1]);
    CHECK_EQ(claim(p, 1), 0);
    prio(p, 1, 1);
    CHECK(l.level[1]);
    enable(p, 1, 1, false); /* disabling lowers it */
    CHECK(!l.level[1]);
    enable(p, 1, 1, true);
    CHECK(l.level[1]);
    plic_destroy(p);
}

TEST(plic_two_contexts_share_source)
{
    struct lines l;
    struct plic *p = mk(&l);
    prio(p, 10, 1);
    enable(p, 1, 10, true);
    enable(p, 3, 10, true);
    plic_set_irq(p, 10, true);
    CHECK(l.level[1] && l.level[3]);
    CHECK(!l.level[0] && !l.level[2]);
    CHECK_EQ(claim(p, 3), 10); /* hart 1 wins */
    CHECK(!l.level[1] && !l.level[3]);
    CHECK_EQ(claim(p, 1), 0); /* hart 0 gets nothing */
    /* complete from a context where the source is not enabled is ignored */
    complete(p, 0, 10);
    CHECK(!l.level[1]);
    complete(p, 3, 10);
    CHECK(l.level[1] && l.level[3]);
    plic_destroy(p);
}

TEST(plic_complete_ignored_when_not_claimed_or_bogus)
{
    struct lines l;
    struct plic *p = mk(&l);
    prio(p, 5, 1);
    prio(p, 6, 1);
    enable(p, 1, 5, true);
    enable(p, 1, 6, true);
    plic_set_irq(p, 5, true);
    plic_set_irq(p, 6, true);
    CHECK_EQ(claim(p, 1), 5);
    complete(p, 1, 6); /* 6 not claimed: ignored, and must not disturb 5 */
    complete(p, 1, 0);
    complete(p, 1, 200);
    CHECK_EQ(claim(p, 1), 6);
    CHECK_EQ(claim(p, 1), 0);
    complete(p, 1, 5);
    CHECK_EQ(claim(p, 1), 5);
    plic_destroy(p);
}

TEST(plic_output_driven_only_on_change)
{
    struct lines l;
    struct plic *p = mk(&l);
    prio(p, 2, 1);
    prio(p, 4, 1);
    enable(p, 1, 2, true);
    enable(p, 1, 4, true);
    plic_set_irq(p, 2, true);
    CHECK_EQ(l.calls[1], 1);
    plic_set_irq(p, 4, true);
    plic_set_irq(p, 2, true);
    prio(p, 2, 2);
    CHECK_EQ(l.calls[1], 1);
    CHECK_EQ(l.calls[0], 0);
    CHECK_EQ(claim(p, 1), 2); /* 4 still pending: line stays up */
    CHECK_EQ(l.calls[1], 1);
    CHECK_EQ(claim(p, 1), 4);
    CHECK_EQ(l.calls[1], 2);
    CHECK(!l.level[1]);
    plic_destroy(p);
}

TEST(plic_access_sizes_and_out_of_range)
{
    struct lines l;
    struct plic *p = mk(&l);
    /* 64-bit access = two 32-bit ones */
    plic_mmio_ops.write(p, 8, 0x0000000500000003ull, 8);
    CHECK_EQ(rd(p, 8), 3);
    CHECK_EQ(rd(p, 12), 5);
    CHECK_EQ(plic_mmio_ops.read(p, 8, 8), 0x0000000500000003ull);
    /* byte and halfword accesses: read 0, writes ignored */
    CHECK_EQ(plic_mmio_ops.read(p, 8, 1), 0);
    plic_mmio_ops.write(p, 16, 7, 1);
    plic_mmio_ops.write(p, 16, 7, 2);
    CHECK_EQ(rd(p, 16), 0);
    /* contexts beyond 2*nharts and unimplemented enable words read 0 */
    CHECK_EQ(rd(p, 0x2000 + 0x80 * NCTX), 0);
    wr(p, 0x2000 + 0x80 * NCTX, 0xffffffff);
    CHECK_EQ(rd(p, 0x2000 + 0x80 * NCTX), 0);
    wr(p, 0x2000 + 12, 0xffffffff);
    CHECK_EQ(rd(p, 0x2000 + 12), 0);
    CHECK_EQ(rd(p, 0x200000 + 0x1000 * NCTX), 0);
    CHECK_EQ(rd(p, 0x200008), 0);
    CHECK_EQ(plic_mmio_ops.read(p, PLIC_MMIO_SIZE, 4), 0);
    /* out-of-range sources are ignored */
    plic_set_irq(p, 0, true);
    plic_set_irq(p, 96, true);
    plic_set_irq(p, 1000, true);
    CHECK_EQ(rd(p, 0x1000) | rd(p, 0x1004) | rd(p, 0x1008), 0);
    CHECK(plic_create(0, NULL) == NULL);
    CHECK(plic_create(65, NULL) == NULL);
    plic_destroy(p);
}

TEST(plic_irq_line_adapter)
{
    struct lines l;
    struct plic *p = mk(&l);
    prio(p, 11, 1);
    enable(p, 0, 11, true);
    struct irq_line src = {plic_irq_line_set, p, 11};
    irq_line_set(&src, true);
    CHECK(l.level[0]);
    irq_line_set(&src, false);
    CHECK(!l.level[0]);
    plic_destroy(p);
}

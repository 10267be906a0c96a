/* Split virtqueue unit tests: rings built by hand in a fake guest RAM, well-formed and hostile. */
#include "dev/virtio/virtqueue.h"
#include "test.h"
#include <errno.h>
#include <stdlib.h>

#define RAM_BASE  0x80000000ull
#define RAM_SIZE  (1u << 20)
#define DESC_GPA  (RAM_BASE + 0x0000) /* 16 KiB: room for 1024 descriptors */
#define AVAIL_GPA (RAM_BASE + 0x4000)
#define USED_GPA  (RAM_BASE + 0x5000)
#define IND_GPA   (RAM_BASE + 0x8000) /* indirect tables */
#define DATA_GPA  (RAM_BASE + 0x10000)

struct fake {
    uint8_t *ram;
    struct guest_mem gm;
    struct vq q;
    uint16_t avail_idx; /* driver's shadow */
};

static void fake_init(struct fake *f, uint16_t num)
{
    memset(f, 0, sizeof(*f));
    f->ram = aligned_alloc(4096, RAM_SIZE);
    memset(f->ram, 0, RAM_SIZE);
    f->gm = (struct guest_mem){.ram = f->ram, .base = RAM_BASE, .size = RAM_SIZE};
    f->q.num = num;
    f->q.desc_gpa = DESC_GPA;
    f->q.avail_gpa = AVAIL_GPA;
    f->q.used_gpa = USED_GPA;
    f->q.gm = &f->gm;
    f->q.ready = true;
    vq_reset(&f->q);
}

static void fake_free(struct fake *f)
{
    free(f->ram);
}

static uint8_t *hp(struct fake *f, uint64_t gpa)
{
    return f->ram + (gpa - RAM_BASE);
}

static void put16(struct fake *f, uint64_t gpa, uint16_t v)
{
    memcpy(hp(f, gpa), &v, 2);
}
static uint16_t get16(struct fake *f, uint64_t gpa)
{
    uint16_t v;
    memcpy(&v, hp(f, gpa), 2);
    return v;
}
static uint32_t get32(struct fake *f, uint64_t gpa)
{
    uint32_t v;
    memcpy(&v, hp(f, gpa), 4);
    return v;
}

static void desc_at(struct fake *f, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
                    uint16_t flags, uint16_t next)
{
    uint8_t *p = hp(f, table + 16ull * i);
    memcpy(p, &addr, 8);
    memcpy(p + 8, &len, 4);
    memcpy(p + 12, &flags, 2);
    memcpy(p + 14, &next, 2);
}

static void desc(struct fake *f, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                 uint16_t next)
{
    desc_at(f, DESC_GPA, i, addr, len, flags, next);
}

/* Driver side: put head in the avail ring and publish it. */
static void avail_add(struct fake *f, uint16_t head)
{
    put16(f, AVAIL_GPA + 4 + 2 * (f->avail_idx % f->q.num), head);
    f->avail_idx++;
    put16(f, AVAIL_GPA + 2, f->avail_idx);
}

static void set_avail_idx(struct fake *f, uint16_t idx)
{
    f->avail_idx = idx;
    put16(f, AVAIL_GPA + 2, idx);
}

static uint16_t used_idx(struct fake *f)
{
    return get16(f, USED_GPA + 2);
}
static uint32_t used_id(struct fake *f, uint16_t i)
{
    return get32(f, USED_GPA + 4 + 8 * (i % f->q.num));
}
static uint32_t used_len(struct fake *f, uint16_t i)
{
    return get32(f, USED_GPA + 8 + 8 * (i % f->q.num));
}

static struct vq_chain chain; /* big (VQ_MAX_SEGS segments): keep it off the stack */

/* --- layout ------------------------------------------------------------------------------ */

TEST(vq_layout_good)
{
    struct fake f;
    fake_init(&f, 256);
    CHECK_EQ(vq_check_layout(&f.q), 0);
    f.q.num = 1;
    CHECK_EQ(vq_check_layout(&f.q), 0);
    f.q.num = VQ_MAX_SIZE;
    CHECK_EQ(vq_check_layout(&f.q), 0);
    /* rings ending exactly at the end of RAM */
    f.q.num = 8;
    f.q.desc_gpa = RAM_BASE + RAM_SIZE - 16 * 8;
    f.q.avail_gpa = RAM_BASE + RAM_SIZE - (6 + 2 * 8);
    f.q.used_gpa = RAM_BASE + RAM_SIZE - (6 + 8 * 8) - 2; /* 4-aligned */
    CHECK_EQ(vq_check_layout(&f.q), 0);
    fake_free(&f);
}

TEST(vq_layout_bad)
{
    struct fake f;
    fake_init(&f, 256);
    f.q.num = 0;
    CHECK_EQ(vq_check_layout(&f.q), -EINVAL);
    f.q.num = 3;
    CHECK_EQ(vq_check_layout(&f.q), -EINVAL);
    f.q.num = 2048;
    CHECK_EQ(vq_check_layout(&f.q), -EINVAL);
    f.q.num = 256;

    f.q.desc_gpa = DESC_GPA + 8; /* misaligned: 16 needed */
    CHECK_EQ(vq_check_layout(&f.q), -EINVAL);
    f.q.desc_gpa = DESC_GPA;
    f.q.avail_gpa = AVAIL_GPA + 1;
    CHECK_EQ(vq_check_layout(&f.q), -EINVAL);
    f.q.avail_gpa = AVAIL_GPA;
    f.q.used_gpa = USED_GPA + 2;
    CHECK_EQ(vq_check_layout(&f.q), -EINVAL);
    f.q.used_gpa = USED_GPA;
    CHECK_EQ(vq_check_layout(&f.q), 0);

    /* outside RAM: below, above, straddling the end, wrapping the address space */
    f.q.desc_gpa = RAM_BASE - 0x1000;
    CHECK_EQ(vq_check_layout(&f.q), -EINVAL);
    f.q.desc_gpa = RAM_BASE + RAM_SIZE;
    CHECK_EQ(vq_check_layout(&f.q), -EINVAL);
    f.q.desc_gpa = RAM_BASE + RAM_SIZE - 16 * 128;
    CHECK_EQ(vq_check_layout(&f.q), -EINVAL);
    f.q.desc_gpa = 0xfffffffffffff000ull;
    CHECK_EQ(vq_check_layout(&f.q), -EINVAL);
    f.q.desc_gpa = DESC_GPA;
    f.q.used_gpa = RAM_BASE + RAM_SIZE - 8;
    CHECK_EQ(vq_check_layout(&f.q), -EINVAL);
    f.q.used_gpa = USED_GPA;
    f.q.avail_gpa = RAM_BASE + RAM_SIZE - 2;
    CHECK_EQ(vq_check_layout(&f.q), -EINVAL);
    fake_free(&f);
}

/* --- well-formed chains ------------------------------------------------------------------ */

TEST(vq_simple_chain)
{
    struct fake f;
    fake_init(&f, 16);
    CHECK_EQ(vq_pop(&f.q, &chain), 0); /* nothing yet */
    desc(&f, 5, DATA_GPA, 100, 0, 0);
    memcpy(hp(&f, DATA_GPA), "hello", 5);
    avail_add(&f, 5);
    CHECK_EQ(vq_pop(&f.q, &chain), 1);
    CHECK_EQ(chain.head, 5);
    CHECK_EQ(chain.nseg, 1);
    CHECK_EQ(chain.nread, 1);
    CHECK_EQ(chain.nwrite, 0);
    CHECK_EQ(chain.read_len, 100);
    CHECK_EQ(chain.write_len, 0);
    CHECK(chain.seg[0].ptr == hp(&f, DATA_GPA));
    CHECK_EQ(chain.seg[0].len, 100);
    CHECK(!chain.seg[0].write);
    char buf[8] = {0};
    CHECK_EQ(vq_chain_read(&chain, 0, buf, 5), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    CHECK_EQ(vq_pop(&f.q, &chain), 0);
    CHECK_EQ(f.q.last_avail, 1);

    vq_push(&f.q, 5, 0);
    CHECK_EQ(used_idx(&f), 1);
    CHECK_EQ(used_id(&f, 0), 5);
    CHECK_EQ(used_len(&f, 0), 0);
    fake_free(&f);
}

TEST(vq_split_read_write)
{
    struct fake f;
    fake_init(&f, 8);
    /* a virtio-blk style request: 16-byte header split 10 + 6, data, 1-byte status split off */
    desc(&f, 0, DATA_GPA, 10, VIRTQ_DESC_F_NEXT, 3);
    desc(&f, 3, DATA_GPA + 0x100, 6, VIRTQ_DESC_F_NEXT, 7);
    desc(&f, 7, DATA_GPA + 0x1000, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
    desc(&f, 1, DATA_GPA + 0x2000, 1, VIRTQ_DESC_F_WRITE, 0);
    for (int i = 0; i < 10; i++)
        hp(&f, DATA_GPA)[i] = (uint8_t)i;
    for (int i = 0; i < 6; i++)
        hp(&f, DATA_GPA + 0x100)[i] = (uint8_t)(10 + i);
    avail_add(&f, 0);
    CHECK_EQ(vq_pop(&f.q, &chain), 1);
    CHECK_EQ(chain.head, 0);
    CHECK_EQ(chain.nseg, 4);
    CHECK_EQ(chain.nread, 2);
    CHECK_EQ(chain.nwrite, 2);
    CHECK_EQ(chain.read_len, 16);
    CHECK_EQ(chain.write_len, 513);
    CHECK(!chain.seg[1].write && chain.seg[2].write && chain.seg[3].write);
    CHECK(chain.seg[3].ptr == hp(&f, DATA_GPA + 0x2000));

    uint8_t hdr[16];
    CHECK_EQ(vq_chain_read(&chain, 0, hdr, 16), 16);
    for (int i = 0; i < 16; i++)
        CHECK_EQ(hdr[i], i);
    /* from an offset across the split, and past the end (partial) */
    CHECK_EQ(vq_chain_read(&chain, 8, hdr, 4), 4);
    CHECK_EQ(hdr[0], 8);
    CHECK_EQ(hdr[3], 11);
    CHECK_EQ(vq_chain_read(&chain, 12, hdr, 16), 4);
    CHECK_EQ(vq_chain_read(&chain, 16, hdr, 1), 0);

    /* writes go only to the writable part: the status byte is at offset 512 */
    uint8_t st = 0x5a;
    CHECK_EQ(vq_chain_write(&chain, 512, &st, 1), 1);
    CHECK_EQ(hp(&f, DATA_GPA + 0x2000)[0], 0x5a);
    uint8_t two[2] = {0xaa, 0xbb};
    CHECK_EQ(vq_chain_write(&chain, 511, two, 2), 2); /* straddles the two writable segments */
    CHECK_EQ(hp(&f, DATA_GPA + 0x1000)[511], 0xaa);
    CHECK_EQ(hp(&f, DATA_GPA + 0x2000)[0], 0xbb);
    CHECK_EQ(vq_chain_write(&chain, 513, two, 2), 0);
    CHECK_EQ(hp(&f, DATA_GPA)[0], 0); /* the readable part was not touched */

    vq_push(&f.q, chain.head, 513);
    CHECK_EQ(used_idx(&f), 1);
    CHECK_EQ(used_len(&f, 0), 513);
    fake_free(&f);
}

TEST(vq_write_only_chain)
{
    /* e.g. virtio-rng: nothing readable. Valid at the queue level. */
    struct fake f;
    fake_init(&f, 4);
    desc(&f, 2, DATA_GPA, 64, VIRTQ_DESC_F_WRITE, 0);
    avail_add(&f, 2);
    CHECK_EQ(vq_pop(&f.q, &chain), 1);
    CHECK_EQ(chain.nread, 0);
    CHECK_EQ(chain.nwrite, 1);
    CHECK_EQ(chain.write_len, 64);
    fake_free(&f);
}

TEST(vq_zero_length_descriptors)
{
    struct fake f;
    fake_init(&f, 8);
    /* zero-length descriptors are skipped, even with a garbage address or out of order */
    desc(&f, 0, 0xdead0000ull, 0, VIRTQ_DESC_F_NEXT, 1);
    desc(&f, 1, DATA_GPA, 8, VIRTQ_DESC_F_NEXT, 2);
    desc(&f, 2, 0, 0, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 3);
    desc(&f, 3, 0xffffffffffffffffull, 0, VIRTQ_DESC_F_NEXT, 4); /* readable after writable */
    desc(&f, 4, DATA_GPA + 8, 8, VIRTQ_DESC_F_WRITE, 0);
    avail_add(&f, 0);
    CHECK_EQ(vq_pop(&f.q, &chain), 1);
    CHECK_EQ(chain.nseg, 2);
    CHECK_EQ(chain.nread, 1);
    CHECK_EQ(chain.nwrite, 1);
    CHECK(chain.seg[0].ptr == hp(&f, DATA_GPA));

    /* a chain of nothing but zero-length descriptors is still a chain to give back */
    desc(&f, 6, 0, 0, 0, 0);
    avail_add(&f, 6);
    CHECK_EQ(vq_pop(&f.q, &chain), 1);
    CHECK_EQ(chain.head, 6);
    CHECK_EQ(chain.nseg, 0);
    CHECK_EQ(vq_pop(&f.q, &chain), 0);
    fake_free(&f);
}

TEST(vq_several_chains_in_order)
{
    struct fake f;
    fake_init(&f, 8);
    for (int i = 0; i < 8; i++) {
        desc(&f, i, DATA_GPA + 0x100 * i, 16 + i, 0, 0);
        avail_add(&f, (uint16_t)(7 - i));
    }
    for (int i = 0; i < 8; i++) {
        CHECK_EQ(vq_pop(&f.q, &chain), 1);
        CHECK_EQ(chain.head, 7 - i);
        CHECK_EQ(chain.read_len, 16 + 7 - i);
    }
    CHECK_EQ(vq_pop(&f.q, &chain), 0);
    /* completed out of order */
    for (int i = 0; i < 8; i++)
        vq_push(&f.q, (uint16_t)i, (uint32_t)i * 2);
    CHECK_EQ(used_idx(&f), 8);
    for (int i = 0; i < 8; i++) {
        CHECK_EQ(used_id(&f, (uint16_t)i), i);
        CHECK_EQ(used_len(&f, (uint16_t)i), i * 2);
    }
    fake_free(&f);
}

TEST(vq_full_queue_chain)
{
    /* a direct chain using every descriptor of the queue is fine */
    struct fake f;
    fake_init(&f, 4);
    for (int i = 0; i < 4; i++)
        desc(&f, i, DATA_GPA + 0x10 * i, 16, i < 3 ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
    avail_add(&f, 0);
    CHECK_EQ(vq_pop(&f.q, &chain), 1);
    CHECK_EQ(chain.nseg, 4);
    CHECK_EQ(chain.read_len, 64);
    fake_free(&f);
}

TEST(vq_indirect_chain)
{
    struct fake f;
    fake_init(&f, 4);
    f.q.indirect = true;
    desc_at(&f, IND_GPA, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 2);
    desc_at(&f, IND_GPA, 2, DATA_GPA + 0x1000, 4096, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
    desc_at(&f, IND_GPA, 1, DATA_GPA + 0x3000, 1, VIRTQ_DESC_F_WRITE, 0);
    /* the WRITE flag on the descriptor pointing at a table is ignored (2.7.5.3.2) */
    desc(&f, 3, IND_GPA, 3 * 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
    avail_add(&f, 3);
    CHECK_EQ(vq_pop(&f.q, &chain), 1);
    CHECK_EQ(chain.head, 3);
    CHECK_EQ(chain.nseg, 3);
    CHECK_EQ(chain.nread, 1);
    CHECK_EQ(chain.nwrite, 2);
    CHECK_EQ(chain.read_len, 16);
    CHECK_EQ(chain.write_len, 4097);
    CHECK(chain.seg[1].ptr == hp(&f, DATA_GPA + 0x1000));
    CHECK(chain.seg[2].ptr == hp(&f, DATA_GPA + 0x3000));
    vq_push(&f.q, 3, 4097);
    CHECK_EQ(used_id(&f, 0), 3);
    fake_free(&f);
}

TEST(vq_indirect_after_direct)
{
    /* direct descriptors followed by a final indirect one */
    struct fake f;
    fake_init(&f, 4);
    f.q.indirect = true;
    desc(&f, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
    desc(&f, 1, IND_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
    desc_at(&f, IND_GPA, 0, DATA_GPA + 0x100, 8, VIRTQ_DESC_F_NEXT, 1);
    desc_at(&f, IND_GPA, 1, DATA_GPA + 0x200, 8, VIRTQ_DESC_F_WRITE, 0);
    avail_add(&f, 0);
    CHECK_EQ(vq_pop(&f.q, &chain), 1);
    CHECK_EQ(chain.nseg, 3);
    CHECK_EQ(chain.nread, 2);
    CHECK_EQ(chain.nwrite, 1);
    fake_free(&f);
}

TEST(vq_indirect_max_segs)
{
    /* an indirect table may be longer than the queue; VQ_MAX_SEGS is the limit */
    struct fake f;
    fake_init(&f, 2);
    f.q.indirect = true;
    for (int i = 0; i < VQ_MAX_SEGS + 1; i++)
        desc_at(&f, IND_GPA, i, DATA_GPA + i, 1, VIRTQ_DESC_F_NEXT, (uint16_t)(i + 1));
    desc_at(&f, IND_GPA, VQ_MAX_SEGS - 1, DATA_GPA, 1, 0, 0);
    desc(&f, 0, IND_GPA, 16 * (VQ_MAX_SEGS + 1), VIRTQ_DESC_F_INDIRECT, 0);
    avail_add(&f, 0);
    CHECK_EQ(vq_pop(&f.q, &chain), 1);
    CHECK_EQ(chain.nseg, VQ_MAX_SEGS);
    CHECK_EQ(chain.read_len, VQ_MAX_SEGS);

    /* one more segment is too many */
    desc_at(&f, IND_GPA, VQ_MAX_SEGS - 1, DATA_GPA, 1, VIRTQ_DESC_F_NEXT, VQ_MAX_SEGS);
    desc_at(&f, IND_GPA, VQ_MAX_SEGS, DATA_GPA, 1, 0, 0);
    avail_add(&f, 0);
    CHECK_EQ(vq_pop(&f.q, &chain), -EINVAL);
    CHECK(f.q.broken);
    fake_free(&f);
}

TEST(vq_zero_length_count_toward_limit)
{
    /* zero-length entries in a big indirect table still count: the walk stays bounded */
    struct fake f;
    fake_init(&f, 2);
    f.q.indirect = true;
    unsigned n = 4096;
    for (unsigned i = 0; i < n; i++)
        desc_at(&f, IND_GPA, i, 0, 0, VIRTQ_DESC_F_NEXT, (uint16_t)(i + 1));
    desc_at(&f, IND_GPA, n - 1, 0, 0, 0, 0);
    desc(&f, 0, IND_GPA, 16 * n, VIRTQ_DESC_F_INDIRECT, 0);
    avail_add(&f, 0);
    CHECK_EQ(vq_pop(&f.q, &chain), -EINVAL);
    fake_free(&f);
}

TEST(vq_wraparound)
{
    struct fake f;
    fake_init(&f, 4);
    f.q.last_avail = 65534;
    f.q.used_idx = 65534;
    set_avail_idx(&f, 65534);
    for (int i = 0; i < 4; i++) {
        desc(&f, i, DATA_GPA + 0x100 * i, 10 + i, 0, 0);
        avail_add(&f, (uint16_t)i); /* 65534, 65535, 0, 1 */
    }
    CHECK_EQ(f.avail_idx, 2);
    CHECK_EQ(get16(&f, AVAIL_GPA + 4 + 2 * (65534 % 4)), 0);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(vq_pop(&f.q, &chain), 1);
        CHECK_EQ(chain.head, i);
        CHECK_EQ(chain.read_len, 10 + i);
        vq_push(&f.q, chain.head, 100 + i);
    }
    CHECK_EQ(vq_pop(&f.q, &chain), 0);
    CHECK_EQ(f.q.last_avail, 2);
    CHECK_EQ(used_idx(&f), 2);
    /* used entries 65534 % 4 = 2, 3, 0, 1 */
    CHECK_EQ(used_id(&f, 65534), 0);
    CHECK_EQ(used_id(&f, 65535), 1);
    CHECK_EQ(used_id(&f, 0), 2);
    CHECK_EQ(used_len(&f, 1), 103);
    fake_free(&f);
}

TEST(vq_avail_idx_exactly_num_ok)
{
    struct fake f;
    fake_init(&f, 4);
    f.q.last_avail = 65533;
    for (int i = 0; i < 4; i++) {
        desc(&f, i, DATA_GPA, 1, 0, 0);
        put16(&f, AVAIL_GPA + 4 + 2 * (uint64_t)((65533 + i) % 4), (uint16_t)i);
    }
    set_avail_idx(&f, 1); /* 65533 + 4 wrapped: a jump of exactly num */
    int got = 0;
    while (vq_pop(&f.q, &chain) == 1)
        got++;
    CHECK_EQ(got, 4);
    CHECK(!f.q.broken);
    fake_free(&f);
}

/* --- notification suppression ------------------------------------------------------------ */

TEST(vq_no_interrupt_flag)
{
    struct fake f;
    fake_init(&f, 4);
    vq_push(&f.q, 0, 0);
    CHECK(vq_should_notify(&f.q));
    put16(&f, AVAIL_GPA, VIRTQ_AVAIL_F_NO_INTERRUPT);
    vq_push(&f.q, 1, 0);
    CHECK(!vq_should_notify(&f.q));
    put16(&f, AVAIL_GPA, 0);
    CHECK(vq_should_notify(&f.q));
    /* avail_event is only written with event idx */
    put16(&f, USED_GPA + 4 + 8 * 4, 0x1234);
    f.q.last_avail = 3;
    vq_update_avail_event(&f.q);
    CHECK_EQ(get16(&f, USED_GPA + 4 + 8 * 4), 0x1234);
    fake_free(&f);
}

TEST(vq_event_idx_suppression)
{
    struct fake f;
    fake_init(&f, 8);
    f.q.event_idx = true;
    const uint64_t used_event = AVAIL_GPA + 4 + 2 * 8;
    /* the flag is ignored with event idx */
    put16(&f, AVAIL_GPA, VIRTQ_AVAIL_F_NO_INTERRUPT);

    put16(&f, used_event, 0);
    vq_push(&f.q, 0, 0); /* used idx 0 -> 1: crosses event 0 */
    CHECK(vq_should_notify(&f.q));
    vq_push(&f.q, 1, 0); /* 1 -> 2: event 0 already passed */
    CHECK(!vq_should_notify(&f.q));

    put16(&f, used_event, 4); /* "interrupt me when entry 4 is used" */
    vq_push(&f.q, 2, 0);      /* 2 -> 3 */
    CHECK(!vq_should_notify(&f.q));
    vq_push(&f.q, 3, 0); /* 3 -> 4 */
    CHECK(!vq_should_notify(&f.q));
    vq_push(&f.q, 4, 0); /* 4 -> 5: entry 4 used */
    CHECK(vq_should_notify(&f.q));

    /* a batch: several pushes, one check; event inside the batch */
    put16(&f, used_event, 6);
    vq_push(&f.q, 5, 0);
    vq_push(&f.q, 6, 0);
    vq_push(&f.q, 7, 0); /* 5 -> 8 covers 6 */
    CHECK(vq_should_notify(&f.q));

    /* wraparound of the 16-bit indexes */
    f.q.used_idx = 65535;
    f.q.signalled_used = 65535;
    put16(&f, used_event, 65535);
    vq_push(&f.q, 0, 0); /* 65535 -> 0 */
    CHECK(vq_should_notify(&f.q));
    put16(&f, used_event, 1);
    vq_push(&f.q, 0, 0); /* 0 -> 1 */
    CHECK(!vq_should_notify(&f.q));
    vq_push(&f.q, 0, 0); /* 1 -> 2 */
    CHECK(vq_should_notify(&f.q));

    /* after a reset the first check always notifies */
    vq_reset(&f.q);
    put16(&f, used_event, 100);
    vq_push(&f.q, 0, 0);
    CHECK(vq_should_notify(&f.q));
    fake_free(&f);
}

TEST(vq_update_avail_event)
{
    struct fake f;
    fake_init(&f, 8);
    f.q.event_idx = true;
    for (int i = 0; i < 3; i++) {
        desc(&f, i, DATA_GPA, 1, 0, 0);
        avail_add(&f, (uint16_t)i);
    }
    CHECK_EQ(vq_pop(&f.q, &chain), 1);
    CHECK_EQ(vq_pop(&f.q, &chain), 1);
    vq_update_avail_event(&f.q);
    CHECK_EQ(get16(&f, USED_GPA + 4 + 8 * 8), 2);
    CHECK_EQ(used_idx(&f), 0); /* nothing else in the used ring was touched */
    fake_free(&f);
}

/* --- hostile rings ----------------------------------------------------------------------- */

/* Publish a single chain starting at head and expect vq_pop to reject it. */
static void expect_bad(struct fake *f, uint16_t head, int line)
{
    avail_add(f, head);
    int r = vq_pop(&f->q, &chain);
    if (r != -EINVAL || !f->q.broken) {
        fprintf(stderr, "  line %d: vq_pop = %d, broken = %d\n", line, r, f->q.broken);
        test_failures_in_current++;
    }
    /* and it stays broken */
    if (vq_pop(&f->q, &chain) != -EINVAL) {
        fprintf(stderr, "  line %d: queue not left broken\n", line);
        test_failures_in_current++;
    }
}
#define EXPECT_BAD(f, head) expect_bad(f, head, __LINE__)

TEST(vq_bad_self_loop)
{
    struct fake f;
    fake_init(&f, 8);
    desc(&f, 3, DATA_GPA, 8, VIRTQ_DESC_F_NEXT, 3);
    EXPECT_BAD(&f, 3);
    fake_free(&f);
}

TEST(vq_bad_cycle)
{
    struct fake f;
    fake_init(&f, 8);
    desc(&f, 0, DATA_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
    desc(&f, 1, DATA_GPA, 8, VIRTQ_DESC_F_NEXT, 2);
    desc(&f, 2, DATA_GPA, 8, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
    EXPECT_BAD(&f, 0);
    fake_free(&f);

    /* a cycle of zero-length descriptors (never turned into segments) */
    fake_init(&f, 8);
    desc(&f, 0, 0, 0, VIRTQ_DESC_F_NEXT, 1);
    desc(&f, 1, 0, 0, VIRTQ_DESC_F_NEXT, 0);
    EXPECT_BAD(&f, 0);
    fake_free(&f);
}

TEST(vq_bad_chain_longer_than_queue)
{
    /* num = 4: five descriptors can only happen by revisiting one */
    struct fake f;
    fake_init(&f, 4);
    for (int i = 0; i < 4; i++)
        desc(&f, i, DATA_GPA, 1, VIRTQ_DESC_F_NEXT, (uint16_t)((i + 1) % 4));
    EXPECT_BAD(&f, 0);
    fake_free(&f);
}

TEST(vq_bad_addresses)
{
    static const struct {
        uint64_t addr;
        uint32_t len;
    } bad[] = {
        {RAM_BASE - 8, 16},                  /* starts below RAM */
        {0, 1},                              /* far below */
        {RAM_BASE + RAM_SIZE, 1},            /* just past the end */
        {RAM_BASE + RAM_SIZE - 8, 16},       /* straddles the end */
        {RAM_BASE + RAM_SIZE - 1, 2},        /* straddles by one byte */
        {0xfffffffffffffff0ull, 0x20},       /* addr + len wraps */
        {0xffffffffffffffffull, 0xffffffff}, /* wraps far */
        {RAM_BASE + 0x1000, 0xffffffff},     /* longer than RAM */
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct fake f;
        fake_init(&f, 8);
        desc(&f, 0, bad[i].addr, bad[i].len, 0, 0);
        EXPECT_BAD(&f, 0);
        fake_free(&f);
        /* also as the writable tail of a chain */
        fake_init(&f, 8);
        desc(&f, 0, DATA_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
        desc(&f, 1, bad[i].addr, bad[i].len, VIRTQ_DESC_F_WRITE, 0);
        EXPECT_BAD(&f, 0);
        fake_free(&f);
    }
    /* the last byte of RAM is fine */
    struct fake f;
    fake_init(&f, 8);
    desc(&f, 0, RAM_BASE + RAM_SIZE - 1, 1, 0, 0);
    avail_add(&f, 0);
    CHECK_EQ(vq_pop(&f.q, &chain), 1);
    CHECK(chain.seg[0].ptr == f.ram + RAM_SIZE - 1);
    fake_free(&f);
}

TEST(vq_bad_read_after_write)
{
    struct fake f;
    fake_init(&f, 8);
    desc(&f, 0, DATA_GPA, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    desc(&f, 1, DATA_GPA + 8, 8, 0, 0);
    EXPECT_BAD(&f, 0);
    fake_free(&f);
}

TEST(vq_bad_head_and_next_index)
{
    struct fake f;
    fake_init(&f, 8);
    EXPECT_BAD(&f, 8);
    fake_free(&f);
    fake_init(&f, 8);
    EXPECT_BAD(&f, 0xffff);
    fake_free(&f);
    fake_init(&f, 8);
    desc(&f, 0, DATA_GPA, 8, VIRTQ_DESC_F_NEXT, 8);
    EXPECT_BAD(&f, 0);
    fake_free(&f);
}

TEST(vq_bad_avail_idx_jump)
{
    struct fake f;
    fake_init(&f, 8);
    for (int i = 0; i < 8; i++)
        desc(&f, i, DATA_GPA, 1, 0, 0);
    set_avail_idx(&f, 9);
    CHECK_EQ(vq_pop(&f.q, &chain), -EINVAL);
    CHECK(f.q.broken);
    CHECK_EQ(f.q.last_avail, 0);
    fake_free(&f);

    /* going backwards is a huge jump forwards */
    fake_init(&f, 8);
    for (int i = 0; i < 8; i++)
        desc(&f, i, DATA_GPA, 1, 0, 0);
    f.q.last_avail = 100;
    set_avail_idx(&f, 99);
    CHECK_EQ(vq_pop(&f.q, &chain), -EINVAL);
    fake_free(&f);
}

TEST(vq_bad_indirect)
{
    struct fake f;
    /* INDIRECT without the feature */
    fake_init(&f, 4);
    desc_at(&f, IND_GPA, 0, DATA_GPA, 8, 0, 0);
    desc(&f, 0, IND_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
    EXPECT_BAD(&f, 0);
    fake_free(&f);

    /* indirect inside indirect */
    fake_init(&f, 4);
    f.q.indirect = true;
    desc_at(&f, IND_GPA, 0, DATA_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
    desc_at(&f, IND_GPA, 1, IND_GPA + 0x100, 16, VIRTQ_DESC_F_INDIRECT, 0);
    desc_at(&f, IND_GPA + 0x100, 0, DATA_GPA, 8, 0, 0);
    desc(&f, 0, IND_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
    EXPECT_BAD(&f, 0);
    fake_free(&f);

    /* a table pointing at itself */
    fake_init(&f, 4);
    f.q.indirect = true;
    desc_at(&f, IND_GPA, 0, IND_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
    desc(&f, 0, IND_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
    EXPECT_BAD(&f, 0);
    fake_free(&f);

    /* INDIRECT | NEXT */
    fake_init(&f, 4);
    f.q.indirect = true;
    desc_at(&f, IND_GPA, 0, DATA_GPA, 8, 0, 0);
    desc(&f, 0, IND_GPA, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
    desc(&f, 1, DATA_GPA, 8, VIRTQ_DESC_F_WRITE, 0);
    EXPECT_BAD(&f, 0);
    fake_free(&f);

    /* table lengths: 0, not a multiple of 16, outside RAM, wrapping */
    static const struct {
        uint64_t addr;
        uint32_t len;
    } bad[] = {
        {IND_GPA, 0},        {IND_GPA, 17},
        {IND_GPA, 8},        {RAM_BASE + RAM_SIZE - 16, 32},
        {RAM_BASE - 16, 32}, {0xfffffffffffffff0ull, 32},
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fake_init(&f, 4);
        f.q.indirect = true;
        desc(&f, 0, bad[i].addr, bad[i].len, VIRTQ_DESC_F_INDIRECT, 0);
        EXPECT_BAD(&f, 0);
        fake_free(&f);
    }

    /* next beyond the table's own size (but < num) */
    fake_init(&f, 16);
    f.q.indirect = true;
    desc_at(&f, IND_GPA, 0, DATA_GPA, 8, VIRTQ_DESC_F_NEXT, 2);
    desc_at(&f, IND_GPA, 1, DATA_GPA, 8, 0, 0);
    desc_at(&f, IND_GPA, 2, DATA_GPA, 8, 0, 0); /* exists in memory, not in the table */
    desc(&f, 0, IND_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
    EXPECT_BAD(&f, 0);
    fake_free(&f);

    /* a loop inside the table */
    fake_init(&f, 16);
    f.q.indirect = true;
    desc_at(&f, IND_GPA, 0, DATA_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
    desc_at(&f, IND_GPA, 1, DATA_GPA, 8, VIRTQ_DESC_F_NEXT, 0);
    desc(&f, 0, IND_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
    EXPECT_BAD(&f, 0);
    fake_free(&f);

    /* bad buffer inside a table */
    fake_init(&f, 4);
    f.q.indirect = true;
    desc_at(&f, IND_GPA, 0, RAM_BASE + RAM_SIZE - 4, 8, 0, 0);
    desc(&f, 0, IND_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
    EXPECT_BAD(&f, 0);
    fake_free(&f);
}

TEST(vq_bad_ring_placement_at_pop)
{
    /* vq_pop does not rely on vq_check_layout having been called */
    struct fake f;
    fake_init(&f, 8);
    f.q.avail_gpa = RAM_BASE + RAM_SIZE - 4;
    CHECK_EQ(vq_pop(&f.q, &chain), -EINVAL);
    fake_free(&f);
    fake_init(&f, 8);
    f.q.desc_gpa = RAM_BASE - 16;
    avail_add(&f, 0);
    CHECK_EQ(vq_pop(&f.q, &chain), -EINVAL);
    fake_free(&f);
    fake_init(&f, 8);
    f.q.num = 6; /* not a power of two */
    CHECK_EQ(vq_pop(&f.q, &chain), -EINVAL);
    fake_free(&f);
    fake_init(&f, 8);
    f.q.avail_gpa = AVAIL_GPA + 1; /* misaligned for the atomic index load */
    CHECK_EQ(vq_pop(&f.q, &chain), -EINVAL);
    fake_free(&f);

    /* a used ring outside RAM: push writes nothing and breaks the queue */
    fake_init(&f, 8);
    f.q.used_gpa = RAM_BASE + RAM_SIZE - 8;
    vq_push(&f.q, 0, 0);
    CHECK(f.q.broken);
    fake_free(&f);
    /* an avail ring outside RAM: err on the side of interrupting */
    fake_init(&f, 8);
    f.q.avail_gpa = RAM_BASE + RAM_SIZE;
    CHECK(vq_should_notify(&f.q));
    f.q.event_idx = true;
    CHECK(vq_should_notify(&f.q));
    fake_free(&f);
}

TEST(vq_not_ready)
{
    struct fake f;
    fake_init(&f, 8);
    desc(&f, 0, DATA_GPA, 8, 0, 0);
    avail_add(&f, 0);
    f.q.ready = false;
    CHECK_EQ(vq_pop(&f.q, &chain), 0);
    f.q.ready = true;
    CHECK_EQ(vq_pop(&f.q, &chain), 1);
    fake_free(&f);
}

TEST(vq_reset_clears_broken)
{
    struct fake f;
    fake_init(&f, 8);
    EXPECT_BAD(&f, 9);
    vq_reset(&f.q);
    CHECK(!f.q.broken);
    CHECK_EQ(f.q.last_avail, 0);
    CHECK_EQ(f.q.used_idx, 0);
    fake_free(&f);
}

/* --- concurrency: a driver thread and the device (this thread) share the ring ------------ */

#include <pthread.h>
#include <stdatomic.h>

#define STRESS_N 20000

struct stress {
    struct fake *f;
    int bad;
};

/* Driver: one descriptor per request, payload = sequence number; waits for used entries with
 * acquire loads before reusing descriptors (as a real driver's free list would). */
static void *stress_driver(void *arg)
{
    struct stress *s = arg;
    struct fake *f = s->f;
    uint16_t num = f->q.num, used_seen = 0;
    unsigned inflight = 0;
    for (uint32_t seq = 0; seq < STRESS_N;) {
        if (inflight < num) {
            uint16_t slot = (uint16_t)(seq % num);
            uint64_t buf = DATA_GPA + 8ull * slot;
            memcpy(hp(f, buf), &seq, 4);
            desc(f, slot, buf, 4, 0, 0);
            put16(f, AVAIL_GPA + 4 + 2 * (f->avail_idx % num), slot);
            f->avail_idx++;
            atomic_store_explicit((_Atomic uint16_t *)hp(f, AVAIL_GPA + 2), f->avail_idx,
                                  memory_order_release);
            inflight++;
            seq++;
        } else {
            uint16_t u =
                atomic_load_explicit((_Atomic uint16_t *)hp(f, USED_GPA + 2), memory_order_acquire);
            inflight -= (uint16_t)(u - used_seen);
            used_seen = u;
        }
    }
    return NULL;
}

TEST(vq_concurrent_driver)
{
    struct fake f;
    fake_init(&f, 16);
    struct stress s = {.f = &f};
    pthread_t th;
    pthread_create(&th, NULL, stress_driver, &s);
    uint32_t expect = 0;
    while (expect < STRESS_N) {
        int r = vq_pop(&f.q, &chain);
        if (r < 0) {
            s.bad++;
            break;
        }
        if (r == 0) continue;
        uint32_t v = 0;
        if (vq_chain_read(&chain, 0, &v, 4) != 4 || v != expect) s.bad++;
        expect++;
        vq_push(&f.q, chain.head, 0);
    }
    pthread_join(th, NULL);
    CHECK_EQ(s.bad, 0);
    CHECK_EQ(expect, STRESS_N);
    fake_free(&f);
}

/* --- in-flight bound (issue 8 item 3) ----------------------------------------------------- */

/* A head is in flight from vq_pop to vq_push; publishing it again meanwhile is a driver error
 * (2.7.13.1), so a guest can never have more than num requests in flight. */
TEST(vq_head_in_flight_twice_refused)
{
    struct fake f;
    fake_init(&f, 4);
    for (int i = 0; i < 4; i++)
        desc(&f, i, DATA_GPA, 1, 0, 0);
    avail_add(&f, 2);
    CHECK_EQ(vq_pop(&f.q, &chain), 1);
    CHECK_EQ(f.q.inflight, 1);
    avail_add(&f, 2); /* again, before it was used */
    CHECK_EQ(vq_pop(&f.q, &chain), -EINVAL);
    CHECK(f.q.broken);
    CHECK_EQ(f.q.inflight, 1);
    fake_free(&f);

    /* once used, the head may be published again */
    fake_init(&f, 4);
    for (int i = 0; i < 4; i++)
        desc(&f, i, DATA_GPA, 1, 0, 0);
    for (int round = 0; round < 10; round++) {
        avail_add(&f, 1);
        CHECK_EQ(vq_pop(&f.q, &chain), 1);
        CHECK_EQ(chain.head, 1);
        vq_push(&f.q, 1, 0);
        CHECK_EQ(f.q.inflight, 0);
    }
    CHECK(!f.q.broken);
    fake_free(&f);
}

TEST(vq_inflight_bounded_by_num)
{
    struct fake f;
    fake_init(&f, 8);
    for (int i = 0; i < 8; i++) {
        desc(&f, i, DATA_GPA, 1, 0, 0);
        avail_add(&f, (uint16_t)i);
    }
    for (int i = 0; i < 8; i++)
        CHECK_EQ(vq_pop(&f.q, &chain), 1);
    CHECK_EQ(f.q.inflight, 8);
    /* the queue is full of requests in flight: any head published now is one of them */
    for (int i = 0; i < 8; i++) {
        avail_add(&f, (uint16_t)i);
        CHECK_EQ(vq_pop(&f.q, &chain), -EINVAL);
        CHECK_EQ(f.q.inflight, 8);
    }
    /* a reset forgets what was in flight (the device dropped those requests) */
    vq_reset(&f.q);
    CHECK_EQ(f.q.inflight, 0);
    f.avail_idx = 0;
    avail_add(&f, 5);
    CHECK_EQ(vq_pop(&f.q, &chain), 1);
    vq_push(&f.q, 5, 0);
    vq_push(&f.q, 5, 0); /* pushing a head not in flight: not counted below zero */
    CHECK_EQ(f.q.inflight, 0);
    fake_free(&f);
}

/* vq_unpop: chains taken and given back unused are taken again, in the same order, and are no
 * longer in flight (virtio-net rx: a frame that does not fit the buffers available). */
TEST(vq_unpop_returns_chains)
{
    struct fake f;
    fake_init(&f, 8);
    for (int i = 0; i < 3; i++) {
        desc(&f, i, DATA_GPA + 64u * i, 64, VIRTQ_DESC_F_WRITE, 0);
        avail_add(&f, (uint16_t)i);
    }
    uint16_t heads[3];
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(vq_pop(&f.q, &chain), 1);
        heads[i] = chain.head;
    }
    CHECK_EQ(vq_pop(&f.q, &chain), 0);
    CHECK_EQ(f.q.inflight, 3);
    vq_unpop(&f.q, heads + 1, 2); /* the last two back */
    CHECK_EQ(f.q.inflight, 1);
    CHECK_EQ(f.q.last_avail, 1);
    CHECK_EQ(vq_pop(&f.q, &chain), 1);
    CHECK_EQ(chain.head, 1);
    CHECK_EQ(vq_pop(&f.q, &chain), 1);
    CHECK_EQ(chain.head, 2);
    CHECK_EQ(vq_pop(&f.q, &chain), 0);
    CHECK(!f.q.broken);
    CHECK_EQ(used_idx(&f), 0); /* nothing was used */
    fake_free(&f);
}

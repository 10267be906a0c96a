// SOURCES: src/dev/virtio/virtqueue.c src/util/log.c
/* libFuzzer harness for the split virtqueue: the fuzzer's bytes become a queue configuration
 * and a guest RAM image holding the rings, descriptors and indirect tables. The harness pops
 * and pushes until the queue is empty or broken, and checks what must hold whatever the guest
 * wrote: no crash, every segment inside guest RAM, at most VQ_MAX_SEGS segments, readable
 * segments before writable ones, lengths adding up, a failed pop leaves the queue broken.
 *
 * Build and run with tests/fuzz/build.sh 60 fuzz_virtqueue.
 *
 * Input: 18 header bytes, then the RAM image (zero-padded to RAM_SIZE).
 *   [0]     queue size: 1 << (b & 15) for b & 15 <= 10, otherwise an invalid size
 *   [1]     bit 0 event_idx, bit 1 indirect, bit 2 not ready, bit 3 pop only if the layout
 *           checks out (as the transport does), bit 4 RAM at 0x80000000 (else at 0x10000),
 *           bit 5 hold: pop without pushing back (requests stay in flight), which checks the
 *           in-flight bound: never more than num heads in flight, never one head twice
 *   [2..3]  last_avail, [4..5] used_idx (little endian)
 *   [6..17] desc, avail, used: u32 offsets from RAM base - 0x100, modulo RAM_SIZE + 0x200 */
#include "dev/virtio/virtqueue.h"
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define RAM_SIZE 0x10000u
#define HDR      18

static uint8_t ram[RAM_SIZE] __attribute__((aligned(4096)));
static struct vq_chain chain;

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void check_chain(const struct vq_chain *c, uint16_t num)
{
    if (c->nseg > VQ_MAX_SEGS || c->nread + c->nwrite != c->nseg) __builtin_trap();
    if (c->head >= num) __builtin_trap();
    uint64_t rl = 0, wl = 0;
    for (unsigned i = 0; i < c->nseg; i++) {
        const struct vq_seg *s = &c->seg[i];
        if (s->len == 0) __builtin_trap(); /* zero-length descriptors are skipped */
        if (s->ptr < ram || s->ptr > ram + RAM_SIZE) __builtin_trap();
        if (s->len > (size_t)(ram + RAM_SIZE - s->ptr)) __builtin_trap();
        if (s->write != (i >= c->nread)) __builtin_trap();
        if (s->write)
            wl += s->len;
        else
            rl += s->len;
    }
    if (rl != c->read_len || wl != c->write_len) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < HDR) return 0;
    memset(ram, 0, sizeof(ram));
    memcpy(ram, data + HDR, size - HDR < RAM_SIZE ? size - HDR : RAM_SIZE);

    struct guest_mem gm = {.ram = ram, .size = RAM_SIZE};
    gm.base = (data[1] & 16) ? 0x80000000ull : 0x10000ull;

    struct vq q;
    memset(&q, 0, sizeof(q));
    unsigned lg = data[0] & 15;
    static const uint16_t odd_sizes[] = {0, 3, 2048, 0xffff, 6};
    q.num = lg <= 10 ? (uint16_t)(1u << lg) : odd_sizes[lg - 11];
    q.event_idx = data[1] & 1;
    q.indirect = data[1] & 2;
    q.ready = !(data[1] & 4);
    q.gm = &gm;
    uint64_t base = gm.base - 0x100;
    q.desc_gpa = base + le32(data + 6) % (RAM_SIZE + 0x200);
    q.avail_gpa = base + le32(data + 10) % (RAM_SIZE + 0x200);
    q.used_gpa = base + le32(data + 14) % (RAM_SIZE + 0x200);
    vq_reset(&q);
    q.last_avail = (uint16_t)(data[2] | data[3] << 8);
    q.used_idx = (uint16_t)(data[4] | data[5] << 8);

    int layout = vq_check_layout(&q);
    if (layout != 0 && layout != -EINVAL) __builtin_trap();
    if ((data[1] & 8) && layout) return 0;

    bool hold = data[1] & 32;
    static uint8_t held[VQ_MAX_SIZE];
    unsigned nheld = 0;
    if (hold) memset(held, 0, sizeof(held));
    /* Pushing may overwrite the avail ring (rings may overlap): bound the loop. */
    for (unsigned iter = 0; iter < 2 * VQ_MAX_SIZE + 8; iter++) {
        int r = vq_pop(&q, &chain);
        if (r == 0) break;
        if (r < 0) {
            if (r != -EINVAL || !q.broken) __builtin_trap();
            break;
        }
        if (r != 1) __builtin_trap();
        check_chain(&chain, q.num);
        if (q.inflight > q.num) __builtin_trap();
        if (hold) {
            if (held[chain.head]) __builtin_trap(); /* one head in flight twice */
            held[chain.head] = 1;
            if (++nheld > q.num || q.inflight != nheld) __builtin_trap();
            continue;
        }
        uint8_t tmp[64];
        uint64_t got = vq_chain_read(&chain, 0, tmp, sizeof(tmp));
        if (got > chain.read_len || got > sizeof(tmp)) __builtin_trap();
        uint64_t off = chain.write_len > 8 ? chain.write_len - 8 : 0;
        uint64_t put = vq_chain_write(&chain, off, tmp, 8);
        if (put > 8 || off + put > chain.write_len) __builtin_trap();
        vq_push(&q, chain.head, (uint32_t)chain.write_len);
        if (q.inflight != 0) __builtin_trap();
        (void)vq_should_notify(&q);
        vq_update_avail_event(&q);
    }
    return 0;
}

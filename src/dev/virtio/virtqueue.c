/* Split virtqueues, device side (virtio 1.x spec 2.7). Every guest-controlled value is read
 * once into a local copy and validated before use; all guest memory goes through gm_ptr. */
#include "dev/virtio/virtqueue.h"
#include "util/log.h"
#include <endian.h>
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

/* Ring layout (2.7.5 - 2.7.8):
 *   desc:  num * { le64 addr; le32 len; le16 flags; le16 next; }
 *   avail: le16 flags; le16 idx; le16 ring[num]; le16 used_event;
 *   used:  le16 flags; le16 idx; { le32 id; le32 len; } ring[num]; le16 avail_event; */
#define DESC_SIZE 16u

static uint64_t desc_bytes(uint16_t num)
{
    return (uint64_t)DESC_SIZE * num;
}
static uint64_t avail_bytes(uint16_t num)
{
    return 6 + 2 * (uint64_t)num;
}
static uint64_t used_bytes(uint16_t num)
{
    return 6 + 8 * (uint64_t)num;
}

static bool num_valid(uint16_t num)
{
    return num != 0 && num <= VQ_MAX_SIZE && (num & (num - 1)) == 0;
}

/* The ring words are shared with guest harts running concurrently on other host threads. */
static uint16_t load16(const void *p, memory_order mo)
{
    return le16toh(atomic_load_explicit((_Atomic uint16_t *)p, mo));
}

static void store16(void *p, uint16_t v, memory_order mo)
{
    atomic_store_explicit((_Atomic uint16_t *)p, htole16(v), mo);
}

static void store32(void *p, uint32_t v)
{
    atomic_store_explicit((_Atomic uint32_t *)p, htole32(v), memory_order_relaxed);
}

/* Host pointer for a ring word, NULL if outside RAM or not naturally aligned on the host
 * (the atomics need natural alignment; vq_check_layout guarantees it for a good layout). */
static void *ring_ptr(const struct vq *q, uint64_t gpa, uint64_t len, unsigned align)
{
    if (!q->gm) return NULL;
    void *p = gm_ptr(q->gm, gpa, len);
    if (!p || ((uintptr_t)p & (align - 1))) return NULL;
    return p;
}

void vq_reset(struct vq *q)
{
    q->last_avail = 0;
    q->used_idx = 0;
    q->signalled_used = 0;
    q->signalled_used_valid = false;
    q->broken = false;
    q->inflight = 0;
    memset(q->inflight_map, 0, sizeof(q->inflight_map));
}

static bool head_inflight(const struct vq *q, uint16_t head)
{
    return (q->inflight_map[head / 64] >> (head % 64)) & 1;
}

int vq_check_layout(const struct vq *q)
{
    if (!q->gm || !num_valid(q->num)) return -EINVAL;
    /* 2.7: descriptor table 16-byte, available ring 2-byte, used ring 4-byte aligned. */
    if ((q->desc_gpa & 15) || (q->avail_gpa & 1) || (q->used_gpa & 3)) return -EINVAL;
    if (!ring_ptr(q, q->desc_gpa, desc_bytes(q->num), 16) ||
        !ring_ptr(q, q->avail_gpa, avail_bytes(q->num), 2) ||
        !ring_ptr(q, q->used_gpa, used_bytes(q->num), 4))
        return -EINVAL;
    return 0;
}

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
};

static void desc_read(const uint8_t *table, uint32_t i, struct desc *d)
{
    /* One copy: the guest may rewrite the descriptor while we look at it. */
    uint8_t raw[DESC_SIZE];
    memcpy(raw, table + (uint64_t)i * DESC_SIZE, DESC_SIZE);
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
    memcpy(&addr, raw, 8);
    memcpy(&len, raw + 8, 4);
    memcpy(&flags, raw + 12, 2);
    memcpy(&next, raw + 14, 2);
    d->addr = le64toh(addr);
    d->len = le32toh(len);
    d->flags = le16toh(flags);
    d->next = le16toh(next);
}

static int vq_fail(struct vq *q, const char *why)
{
    /* Guest-controlled: debug level, so a guest cannot flood the log. */
    log_debug("virtqueue: malformed ring (%s); queue stopped", why);
    q->broken = true;
    return -EINVAL;
}

/* Walk the chain starting at `head` (2.7.5, 2.7.5.3). Direct chains are bounded by the queue
 * size, an indirect table by its own entry count, buffer descriptors overall by VQ_MAX_SEGS:
 * together these bound the walk whatever loops the guest builds. */
static int walk_chain(struct vq *q, const uint8_t *dtable, uint16_t head, struct vq_chain *c)
{
    const uint8_t *table = dtable;
    uint32_t table_n = q->num; /* entries in the current table */
    uint32_t visited = 0;      /* descriptors visited in the current table */
    unsigned bufs = 0;         /* buffer descriptors visited, zero-length included */
    bool in_indirect = false;
    uint32_t i = head;

    for (;;) {
        if (++visited > table_n) return vq_fail(q, "descriptor loop or chain longer than table");
        struct desc d;
        desc_read(table, i, &d);

        if (d.flags & VIRTQ_DESC_F_INDIRECT) {
            if (!q->indirect) return vq_fail(q, "INDIRECT without the feature");
            if (in_indirect) return vq_fail(q, "INDIRECT inside an indirect table");
            if (d.flags & VIRTQ_DESC_F_NEXT) return vq_fail(q, "INDIRECT together with NEXT");
            if (d.len == 0 || d.len % DESC_SIZE) return vq_fail(q, "indirect table length");
            /* Tables are read with memcpy, so only bounds matter (no alignment needed). */
            const uint8_t *t = gm_ptr(q->gm, d.addr, d.len);
            if (!t) return vq_fail(q, "indirect table outside guest memory");
            table = t;
            table_n = d.len / DESC_SIZE;
            visited = 0;
            in_indirect = true;
            i = 0;
            continue;
        }

        if (++bufs > VQ_MAX_SEGS) return vq_fail(q, "chain longer than VQ_MAX_SEGS");
        bool write = d.flags & VIRTQ_DESC_F_WRITE;
        /* Zero-length descriptors carry no data: skip them (their address is never used). */
        if (d.len) {
            uint8_t *p = gm_ptr(q->gm, d.addr, d.len);
            if (!p) return vq_fail(q, "buffer outside guest memory");
            /* 2.7.4.2: readable descriptors come before writable ones. */
            if (!write && c->nwrite) return vq_fail(q, "readable buffer after a writable one");
            c->seg[c->nseg++] = (struct vq_seg){.ptr = p, .len = d.len, .write = write};
            if (write) {
                c->nwrite++;
                c->write_len += d.len;
            } else {
                c->nread++;
                c->read_len += d.len;
            }
        }
        if (!(d.flags & VIRTQ_DESC_F_NEXT)) return 1;
        if (d.next >= table_n) return vq_fail(q, "next index out of range");
        i = d.next;
    }
}

int vq_pop(struct vq *q, struct vq_chain *c)
{
    if (q->broken) return -EINVAL;
    if (!q->ready) return 0;
    if (!num_valid(q->num)) return vq_fail(q, "queue size");
    uint16_t num = q->num;
    uint8_t *avail = ring_ptr(q, q->avail_gpa, avail_bytes(num), 2);
    const uint8_t *dtable = gm_ptr(q->gm, q->desc_gpa, desc_bytes(num));
    if (!avail || !dtable) return vq_fail(q, "ring outside guest memory");

    /* Acquire: the ring entries and descriptors the driver wrote before publishing idx are
     * visible once we see idx (2.7.13). */
    uint16_t avail_idx = load16(avail + 2, memory_order_acquire);
    uint16_t pending = (uint16_t)(avail_idx - q->last_avail);
    if (pending == 0) return 0;
    if (pending > num) return vq_fail(q, "avail idx moved by more than the queue size");

    uint16_t head =
        load16(avail + 4 + 2 * (uint32_t)(q->last_avail & (num - 1)), memory_order_relaxed);
    if (head >= num) return vq_fail(q, "head index out of range");
    /* 2.7.13.1: the driver makes a buffer available again only after the device used it.
     * A head published twice is a driver error (QEMU: "Virtqueue size exceeded"); it would
     * otherwise keep unbounded requests in flight from a bounded queue. */
    if (head_inflight(q, head) || q->inflight >= num)
        return vq_fail(q, "head already in flight (more requests than the queue size)");

    c->head = head;
    c->nseg = c->nread = c->nwrite = 0;
    c->read_len = c->write_len = 0;
    int r = walk_chain(q, dtable, head, c);
    if (r < 0) return r;
    q->last_avail++;
    q->inflight_map[head / 64] |= 1ull << (head % 64);
    q->inflight++;
    return 1;
}

void vq_unpop(struct vq *q, const uint16_t *heads, unsigned n)
{
    /* QEMU calls this virtqueue_unpop: last_avail steps back over entries the driver still
     * has in its avail ring (2.7.13: it cannot reclaim them before they are used). */
    for (unsigned i = 0; i < n; i++) {
        uint16_t h = heads[i];
        if (h < VQ_MAX_SIZE && head_inflight(q, h)) {
            q->inflight_map[h / 64] &= ~(1ull << (h % 64));
            q->inflight--;
        }
    }
    q->last_avail = (uint16_t)(q->last_avail - n);
}

void vq_push(struct vq *q, uint16_t head, uint32_t written)
{
    if (!num_valid(q->num)) return;
    if (head < q->num && head_inflight(q, head)) {
        q->inflight_map[head / 64] &= ~(1ull << (head % 64));
        q->inflight--;
    }
    uint8_t *used = ring_ptr(q, q->used_gpa, used_bytes(q->num), 4);
    if (!used) {
        vq_fail(q, "used ring outside guest memory");
        return;
    }
    uint8_t *elem = used + 4 + 8 * (uint32_t)(q->used_idx & (q->num - 1));
    store32(elem, head);
    store32(elem + 4, written);
    q->used_idx++;
    /* Release: the element is visible before the index that publishes it (2.7.8). */
    store16(used + 2, q->used_idx, memory_order_release);
}

/* 2.7.10: notify if new_idx has moved past event_idx since old. */
static bool need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old)
{
    return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old);
}

bool vq_should_notify(struct vq *q)
{
    if (!num_valid(q->num)) return true;
    const uint8_t *avail = ring_ptr(q, q->avail_gpa, avail_bytes(q->num), 2);
    if (!avail) return true; /* an extra interrupt is harmless, a lost one hangs the guest */
    /* The used->idx store must be ordered before reading flags/used_event (store->load):
     * the driver does the mirror image when it re-enables interrupts. */
    atomic_thread_fence(memory_order_seq_cst);
    if (!q->event_idx) return !(load16(avail, memory_order_relaxed) & VIRTQ_AVAIL_F_NO_INTERRUPT);

    /* The window [old, new) covers entries used since the last check; like vhost and QEMU
     * we move it on every check, whether or not we interrupt. */
    uint16_t event = load16(avail + 4 + 2 * (uint32_t)q->num, memory_order_relaxed);
    uint16_t old = q->signalled_used, new_idx = q->used_idx;
    bool valid = q->signalled_used_valid;
    q->signalled_used = new_idx;
    q->signalled_used_valid = true;
    return !valid || need_event(event, new_idx, old);
}

int vq_pop_or_arm(struct vq *q, struct vq_chain *c)
{
    int r = vq_pop(q, c);
    if (r == 0 && q->event_idx) {
        vq_update_avail_event(q);
        r = vq_pop(q, c);
    }
    return r;
}

void vq_update_avail_event(struct vq *q)
{
    if (!q->event_idx || !num_valid(q->num)) return;
    uint8_t *used = ring_ptr(q, q->used_gpa, used_bytes(q->num), 4);
    if (!used) return;
    store16(used + 4 + 8 * (uint32_t)q->num, q->last_avail, memory_order_relaxed);
    /* Order the avail_event store before the next avail->idx load, or a kick can be lost. */
    atomic_thread_fence(memory_order_seq_cst);
}

/* Copy between a buffer and the readable (write=false) or writable (write=true) part of a
 * chain, starting `off` bytes into that part. */
static uint64_t chain_copy(const struct vq_chain *c, bool write, uint64_t off, uint8_t *buf,
                           uint64_t len)
{
    uint64_t done = 0;
    unsigned first = write ? c->nread : 0, end = write ? c->nseg : c->nread;
    for (unsigned i = first; i < end && done < len; i++) {
        const struct vq_seg *s = &c->seg[i];
        if (off >= s->len) {
            off -= s->len;
            continue;
        }
        uint64_t n = s->len - off;
        if (n > len - done) n = len - done;
        if (write)
            memcpy(s->ptr + off, buf + done, n);
        else
            memcpy(buf + done, s->ptr + off, n);
        done += n;
        off = 0;
    }
    return done;
}

uint64_t vq_chain_read(const struct vq_chain *c, uint64_t off, void *dst, uint64_t len)
{
    return chain_copy(c, false, off, dst, len);
}

uint64_t vq_chain_write(const struct vq_chain *c, uint64_t off, const void *src, uint64_t len)
{
    return chain_copy(c, true, off, (uint8_t *)src, len);
}

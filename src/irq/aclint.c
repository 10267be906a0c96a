/* CLINT-layout ACLINT (RISC-V ACLINT spec v1.0: MSWI §3, MTIMER §2), lockless for the hart
 * threads' hot path. Registers may be accessed with any size the bus delivers (1, 2, 4, 8);
 * narrower accesses read or replace the addressed bytes of the 32-bit MSIP or 64-bit
 * MTIMECMP/MTIME register, so 32-bit halves work as OpenSBI's RV32 code path expects. */
#include "irq/aclint.h"
#include "util/staterec.h"
#include <stdio.h>
#include <pthread.h>
#include <string.h>

#define MSIP_BASE     0x0000u
#define MTIMECMP_BASE 0x4000u
#define MTIME_OFF     0xBFF8u

/* MSIP store + line update must be one step: with a sender setting and the target clearing at
 * the same time, unserialised updates could leave msip = 1 with the line low (a lost IPI). */
static pthread_mutex_t msip_lock = PTHREAD_MUTEX_INITIALIZER;

void aclint_init(struct aclint *a, unsigned nharts, const struct irq_line *msip_out,
                 void (*timer_changed)(void *ctx, unsigned hart), void *ctx)
{
    memset(a, 0, sizeof(*a));
    a->nharts = nharts > ACLINT_MAX_HARTS ? ACLINT_MAX_HARTS : nharts;
    atomic_store(&a->mtime_offset, -(int64_t)vclock_ticks());
    for (unsigned h = 0; h < ACLINT_MAX_HARTS; h++) {
        atomic_store(&a->mtimecmp[h], UINT64_MAX);
        atomic_store(&a->msip[h], 0);
        if (msip_out && h < a->nharts) a->msip_out[h] = msip_out[h];
    }
    a->timer_changed = timer_changed;
    a->ctx = ctx;
}

/* Extract `size` bytes at byte offset `byte` of a register value. */
static uint64_t extract(uint64_t reg, unsigned byte, unsigned size)
{
    uint64_t v = reg >> (byte * 8);
    return size >= 8 ? v : v & ((1ull << (size * 8)) - 1);
}

/* Replace `size` bytes at byte offset `byte` of reg with the low bytes of val. */
static uint64_t deposit(uint64_t reg, unsigned byte, unsigned size, uint64_t val)
{
    uint64_t mask = size >= 8 ? ~0ull : ((1ull << (size * 8)) - 1);
    return (reg & ~(mask << (byte * 8))) | ((val & mask) << (byte * 8));
}

static bool valid_access(uint64_t off, unsigned size, unsigned regsize, uint64_t base)
{
    unsigned byte = (unsigned)((off - base) % regsize);
    return (size == 1 || size == 2 || size == 4 || size == 8) && byte + size <= regsize;
}

static uint64_t aclint_read(void *dev, uint64_t off, unsigned size)
{
    struct aclint *a = dev;
    if (off < MTIMECMP_BASE) {
        if (size == 8 && (off & 7) == 0) { /* two adjacent MSIP words */
            return aclint_read(a, off, 4) | aclint_read(a, off + 4, 4) << 32;
        }
        if (!valid_access(off, size, 4, MSIP_BASE)) return 0;
        unsigned h = (unsigned)(off / 4);
        if (h >= a->nharts) return 0;
        return extract(atomic_load(&a->msip[h]), off % 4, size);
    }
    if (off < MTIME_OFF) {
        unsigned h = (unsigned)((off - MTIMECMP_BASE) / 8);
        if (h >= a->nharts || !valid_access(off, size, 8, MTIMECMP_BASE)) return 0;
        return extract(atomic_load(&a->mtimecmp[h]), (off - MTIMECMP_BASE) % 8, size);
    }
    if (off < ACLINT_MMIO_SIZE && valid_access(off, size, 8, MTIME_OFF))
        return extract(aclint_mtime(a), (off - MTIME_OFF) % 8, size);
    return 0;
}

static void write_msip(struct aclint *a, unsigned h, uint32_t val)
{
    uint32_t bit = val & 1; /* MSWI §3.1: only bit 0 is implemented */
    pthread_mutex_lock(&msip_lock);
    if (atomic_exchange(&a->msip[h], bit) != bit) irq_line_set(&a->msip_out[h], bit);
    pthread_mutex_unlock(&msip_lock);
}

static void aclint_write(void *dev, uint64_t off, uint64_t val, unsigned size)
{
    struct aclint *a = dev;
    if (off < MTIMECMP_BASE) {
        if (size == 8 && (off & 7) == 0) {
            aclint_write(a, off, val & 0xffffffffu, 4);
            aclint_write(a, off + 4, val >> 32, 4);
            return;
        }
        unsigned h = (unsigned)(off / 4);
        if (h >= a->nharts || !valid_access(off, size, 4, MSIP_BASE)) return;
        /* Only byte 0 holds bit 0; writes to the upper bytes touch nothing implemented. */
        if (off % 4 == 0) write_msip(a, h, (uint32_t)val);
        return;
    }
    if (off < MTIME_OFF) {
        unsigned h = (unsigned)((off - MTIMECMP_BASE) / 8);
        if (h >= a->nharts || !valid_access(off, size, 8, MTIMECMP_BASE)) return;
        unsigned byte = (unsigned)((off - MTIMECMP_BASE) % 8);
        uint64_t old = atomic_load(&a->mtimecmp[h]);
        while (!atomic_compare_exchange_weak(&a->mtimecmp[h], &old, deposit(old, byte, size, val)))
            ;
        if (a->timer_changed) a->timer_changed(a->ctx, h);
        return;
    }
    if (off >= ACLINT_MMIO_SIZE || !valid_access(off, size, 8, MTIME_OFF)) return;
    /* mtime itself runs from the host clock; a write moves the offset so that mtime reads the
     * written value now and keeps counting from there. */
    uint64_t now = vclock_ticks();
    int64_t old_off = atomic_load(&a->mtime_offset);
    uint64_t cur = now + (uint64_t)old_off;
    uint64_t want = deposit(cur, (unsigned)((off - MTIME_OFF) % 8), size, val);
    atomic_store(&a->mtime_offset, (int64_t)(want - now));
    if (a->timer_changed)
        for (unsigned h = 0; h < a->nharts; h++)
            a->timer_changed(a->ctx, h);
}

const struct mmio_ops aclint_mmio_ops = {.read = aclint_read, .write = aclint_write};

/* ---- snapshots (util/staterec.h) ----
 * Clock policy (docs/snapshots.md): the guest's mtime continues from its saved value plus the
 * host wall-clock time that passed since the snapshot, as if the guest had been paused that
 * long. So the guest's monotonic clock never runs backwards, and its wall clock (set from the
 * RTC at boot, advanced by mtime since) agrees with the host's again at once. A host clock
 * that is behind the snapshot's (another host) adds nothing. */
void aclint_save(struct aclint *a, struct sw *w, uint64_t host_realtime)
{
    sw_section(w, "aclint", 1);
    sw_u64(w, "nharts", a->nharts);
    sw_u64(w, "mtime", aclint_mtime(a));
    sw_u64(w, "host_realtime_ns", host_realtime);
    for (unsigned h = 0; h < a->nharts; h++) {
        char n[24];
        snprintf(n, sizeof(n), "mtimecmp.%u", h);
        sw_u64(w, n, atomic_load(&a->mtimecmp[h]));
        snprintf(n, sizeof(n), "msip.%u", h);
        sw_u64(w, n, atomic_load(&a->msip[h]));
    }
}

int aclint_load(struct aclint *a, struct sr *r, uint64_t host_realtime)
{
    sr_enter(r, "aclint", 1);
    uint64_t n = sr_u64(r, "nharts", ACLINT_MAX_HARTS);
    uint64_t mtime = sr_u64(r, "mtime", UINT64_MAX);
    uint64_t then = sr_u64(r, "host_realtime_ns", UINT64_MAX);
    if (!sr_failed(r) && n != a->nharts)
        sr_fail(r, "state of aclint: %llu harts, the machine has %u", (unsigned long long)n,
                a->nharts);
    uint64_t cmp[ACLINT_MAX_HARTS], sip[ACLINT_MAX_HARTS];
    for (unsigned h = 0; h < a->nharts; h++) {
        char f[24];
        snprintf(f, sizeof(f), "mtimecmp.%u", h);
        cmp[h] = sr_u64(r, f, UINT64_MAX);
        snprintf(f, sizeof(f), "msip.%u", h);
        sip[h] = sr_u64(r, f, 1);
    }
    if (sr_failed(r)) return -1;
    uint64_t passed =
        host_realtime > then ? (host_realtime - then) / (1000000000ull / VCLOCK_HZ) : 0;
    atomic_store(&a->mtime_offset, (int64_t)(mtime + passed - vclock_ticks()));
    for (unsigned h = 0; h < a->nharts; h++) {
        atomic_store(&a->mtimecmp[h], cmp[h]);
        write_msip(a, h, (uint32_t)sip[h]);
        if (a->timer_changed) a->timer_changed(a->ctx, h);
    }
    return 0;
}

/* Full-machine snapshots (snapshot.h, docs/snapshots.md). */
#include "machine/snapshot.h"
#include "dev/goldfish_rtc.h"
#include "dev/uart.h"
#include "dev/vmgenid.h"
#include "dev/virtio/blk.h"
#include "dev/virtio/input.h"
#include "dev/virtio/mmio.h"
#include "dev/virtio/net.h"
#include "dev/virtio/rng.h"
#include "dev/virtio/vsock.h"
#include "irq/plic.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/staterec.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MACHINE_STATE_VERSION 1
#define PAGE                  4096u

#define fail err_set

/* sr_open, or -EINVAL with its reason in err (r is then closed). */
static int open_record(struct sr *r, const uint8_t *state, size_t len, char *err, size_t errlen)
{
    if (sr_open(r, state, len) == 0) return 0;
    int e = fail(err, errlen, -EINVAL, "%s", r->err);
    sr_close(r);
    return e;
}

/* The transport in virtio slot i (disks, then entropy, then input, then the network:
 * machine.c). */
static struct virtio_mmio *slot_transport(struct machine *m, unsigned i)
{
    if (i < m->cfg.ndisks) return m->blk[i] ? vblk_transport(m->blk[i]) : NULL;
    if (i == m->cfg.ndisks) return m->rng ? vrng_transport(m->rng) : NULL;
    if (i == m->cfg.ndisks + 1) return m->input ? vinput_transport(m->input) : NULL;
    unsigned k = m->cfg.ndisks + 2;
    if (m->net && i == k++) return vnet_transport(m->net);
    if (m->vsock && i == k) return vsock_dev_transport(m->vsock);
    return NULL;
}

static unsigned nslots(const struct machine *m)
{
    return m->cfg.ndisks + 2 + (m->net ? 1u : 0u) + (m->vsock ? 1u : 0u);
}

static int write_all(int fd, const void *p, size_t n, uint64_t off)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = pwrite(fd, b, n, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return w < 0 ? -errno : -EIO;
        b += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

static bool page_is_zero(const uint8_t *p)
{
    const uint64_t *q = (const uint64_t *)p;
    for (unsigned i = 0; i < PAGE / 8; i++)
        if (q[i]) return false;
    return true;
}

/* Guest RAM, sparsely: pages that are not resident (never touched) or all zero are holes. */
static int save_memory(struct machine *m, int fd, const uint8_t id[16], uint64_t *pages, char *err,
                       size_t errlen)
{
    uint8_t hdr[SNAP_MEM_HEADER];
    memset(hdr, 0, sizeof(hdr));
    memcpy(hdr, SNAP_MEM_MAGIC, 16);
    uint64_t f[3] = {1, m->cfg.ram_size, RAM_BASE};
    memcpy(hdr + 16, f, sizeof(f));
    memcpy(hdr + 40, id, 16);
    int r = write_all(fd, hdr, sizeof(hdr), 0);
    if (r == 0 && ftruncate(fd, (off_t)(SNAP_MEM_HEADER + m->cfg.ram_size)) < 0) r = -errno;
    if (r < 0) return fail(err, errlen, r, "writing the memory file: %s", strerror(-r));
    /* mincore: which pages exist at all (a 4 GiB guest that touched 256 MiB reads 256 MiB) */
    size_t npages = (size_t)(m->cfg.ram_size / PAGE);
    unsigned char *vec = m->cfg.restore ? NULL : malloc(npages);
    /* (for RAM mapped from an earlier snapshot's file, residency says nothing about content) */
    if (vec && mincore(m->ram, m->cfg.ram_size, vec) < 0) {
        free(vec);
        vec = NULL; /* then look at every page */
    }
    uint64_t n = 0;
    for (size_t i = 0; i < npages; i++) {
        if (vec && !(vec[i] & 1)) continue;
        const uint8_t *p = m->ram + (uint64_t)i * PAGE;
        if (page_is_zero(p)) continue;
        /* runs of non-zero pages in one write */
        size_t j = i + 1;
        while (j < npages && j - i < 256 && (!vec || (vec[j] & 1)) &&
               !page_is_zero(m->ram + (uint64_t)j * PAGE))
            j++;
        r = write_all(fd, p, (j - i) * PAGE, SNAP_MEM_HEADER + (uint64_t)i * PAGE);
        if (r < 0) {
            free(vec);
            return fail(err, errlen, r, "writing the memory file: %s", strerror(-r));
        }
        n += j - i;
        i = j - 1;
    }
    free(vec);
    if (fsync(fd) < 0) return fail(err, errlen, -errno, "memory file: fsync: %s", strerror(errno));
    *pages = n;
    return 0;
}

static int save_locked(struct machine *m, int state_fd, int mem_fd, const char *config_json,
                       struct snap_save_stats *st, char *err, size_t errlen);

/* Freeze (or let go) every device fed from the host (virtio_mmio_quiesce). */
static void quiesce_all(struct machine *m, bool stop)
{
    for (unsigned i = 0; i < nslots(m); i++)
        virtio_mmio_quiesce(slot_transport(m, i), stop);
}

int machine_snapshot_save(struct machine *m, int state_fd, int mem_fd, const char *config_json,
                          struct snap_save_stats *st, char *err, size_t errlen)
{
    /* Devices fed from the host (the network) stop touching guest memory until the memory
     * file is written; then requests in flight complete against the files (the harts are
     * parked: no new ones). */
    quiesce_all(m, true);
    int r = save_locked(m, state_fd, mem_fd, config_json, st, err, errlen);
    quiesce_all(m, false);
    return r;
}

/* Wait (bounded) until no virtio request is in flight, then flush every disk: what the
 * disks' formats cache (qcow2's tables) goes to the files, so copies the manager takes while
 * the VM stays paused are consistent images of this instant. */
static int settle(struct machine *m, char *err, size_t errlen)
{
    for (unsigned waited = 0;; waited += 5) {
        unsigned busy = 0;
        for (unsigned i = 0; i < nslots(m); i++)
            if (slot_transport(m, i)) busy += virtio_mmio_inflight(slot_transport(m, i));
        if (!busy) break;
        if (waited >= SNAP_DRAIN_MS)
            return fail(err, errlen, -EBUSY,
                        "%u disk requests did not complete within %u ms; no snapshot taken", busy,
                        SNAP_DRAIN_MS);
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    for (unsigned i = 0; i < m->cfg.ndisks; i++) {
        int fr = m->blk[i] ? vblk_flush(m->blk[i], SNAP_DRAIN_MS) : 0;
        if (fr < 0)
            return fail(err, errlen, fr, "disk %u: flushing it failed (%s); no snapshot taken", i,
                        strerror(-fr));
    }
    return 0;
}

int machine_disk_snapshot(struct machine *m, enum blk_snap_op op, const char *name,
                          bool done[MACHINE_MAX_DISKS], char *err, size_t errlen)
{
    for (unsigned i = 0; i < MACHINE_MAX_DISKS; i++)
        done[i] = false;
    /* as machine_snapshot_save: devices fed from the host hold still while requests drain */
    quiesce_all(m, true);
    int r = settle(m, err, errlen);
    for (unsigned i = 0; !r && i < m->cfg.ndisks; i++) {
        struct blk_backend *be = m->blk[i] ? vblk_backend(m->blk[i]) : NULL;
        if (!be || blk_readonly(be) || strcmp(blk_format_name(be), "qcow2")) continue;
        char e2[300];
        int br = blk_snapshot(be, op, name, e2, sizeof(e2));
        if (br == 0)
            done[i] = true;
        else if (!(op == BLK_SNAP_DELETE && br == -ENOENT))
            r = fail(err, errlen, br, "disk %u: %s", i, e2);
    }
    if (r && op == BLK_SNAP_CREATE)
        for (unsigned i = 0; i < m->cfg.ndisks; i++) {
            char e2[300];
            if (done[i] &&
                blk_snapshot(vblk_backend(m->blk[i]), BLK_SNAP_DELETE, name, e2, sizeof(e2)) == 0)
                done[i] = false;
        }
    quiesce_all(m, false);
    return r;
}

static int save_locked(struct machine *m, int state_fd, int mem_fd, const char *config_json,
                       struct snap_save_stats *st, char *err, size_t errlen)
{
    int sr = settle(m, err, errlen);
    if (sr) return sr;
    uint8_t id[16];
    if (getrandom(id, sizeof(id), 0) != (ssize_t)sizeof(id))
        return fail(err, errlen, -EIO, "getrandom: %s", strerror(errno));
    struct sw *w = sw_new();
    if (!w) return fail(err, errlen, -ENOMEM, "out of memory");
    sw_section(w, "machine", MACHINE_STATE_VERSION);
    sw_u64(w, "cpus", m->nharts);
    sw_u64(w, "ram_size", m->cfg.ram_size);
    sw_u64(w, "ndisks", m->cfg.ndisks);
    sw_bytes(w, "mem_id", id, sizeof(id));
    uint64_t now = host_realtime_ns();
    sw_u64(w, "host_realtime_ns", now);
    if (config_json) {
        sw_section(w, "config", 1);
        sw_bytes(w, "json", config_json, strlen(config_json));
    }
    for (unsigned i = 0; i < m->nharts; i++)
        hart_save(&m->harts[i], w);
    aclint_save(&m->clint, w, now);
    plic_save(m->plic, w);
    uart_save(m->uart, w);
    goldfish_rtc_save(m->rtc, w);
    vmgenid_save(m->genid, w);
    for (unsigned i = 0; i < nslots(m); i++)
        virtio_mmio_save(slot_transport(m, i), w, i);
    const uint8_t *buf;
    size_t len;
    int r = sw_finish(w, &buf, &len);
    if (r < 0) {
        sw_free(w);
        return fail(err, errlen, r, "building the state record: %s", strerror(-r));
    }
    uint64_t pages = 0;
    r = save_memory(m, mem_fd, id, &pages, err, errlen);
    if (r == 0) {
        r = write_all(state_fd, buf, len, 0);
        if (r == 0 && fsync(state_fd) < 0) r = -errno;
        if (r < 0) fail(err, errlen, r, "writing the state file: %s", strerror(-r));
    }
    sw_free(w);
    if (r == 0 && st) {
        st->mem_pages_written = pages;
        st->state_bytes = len;
    }
    return r;
}

int snapshot_read_state(int fd, uint8_t **buf, size_t *len, char *err, size_t errlen)
{
    struct stat sb;
    if (fstat(fd, &sb) < 0) return fail(err, errlen, -errno, "state file: %s", strerror(errno));
    if (!S_ISREG(sb.st_mode) || sb.st_size <= 0 || (uint64_t)sb.st_size > STATEREC_MAX_RECORD + 64)
        return fail(err, errlen, -EINVAL, "state file: not a regular file of 1 B to %u MiB",
                    STATEREC_MAX_RECORD >> 20);
    uint8_t *b = malloc((size_t)sb.st_size);
    if (!b) return fail(err, errlen, -ENOMEM, "out of memory");
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t n = pread(fd, b + got, (size_t)sb.st_size - got, (off_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            free(b);
            return fail(err, errlen, n < 0 ? -errno : -EIO, "state file: short read");
        }
        got += (size_t)n;
    }
    *buf = b;
    *len = got;
    return 0;
}

int snapshot_check(const uint8_t *state, size_t len, int mem_fd, unsigned *cpus, uint64_t *ram_size,
                   unsigned *ndisks, char *err, size_t errlen)
{
    struct sr r;
    int e = open_record(&r, state, len, err, errlen);
    if (e < 0) return e;
    sr_enter(&r, "machine", MACHINE_STATE_VERSION);
    *cpus = (unsigned)sr_u64(&r, "cpus", MACHINE_MAX_HARTS);
    *ram_size = sr_u64(&r, "ram_size", 1ull << 40);
    *ndisks = (unsigned)sr_u64(&r, "ndisks", MACHINE_MAX_DISKS);
    uint8_t id[16];
    sr_bytes(&r, "mem_id", id, sizeof(id));
    if (!sr_failed(&r) && (*cpus == 0 || *ram_size < MACHINE_MIN_RAM || *ram_size % PAGE))
        sr_fail(&r, "state of machine: %u harts, %llu bytes of RAM", *cpus,
                (unsigned long long)*ram_size);
    if (sr_failed(&r)) {
        int e = fail(err, errlen, -EINVAL, "%s", r.err);
        sr_close(&r);
        return e;
    }
    sr_close(&r);
    /* the memory file: its header names the same RAM size and identity, and it is that long */
    uint8_t hdr[64];
    struct stat sb;
    if (pread(mem_fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) || fstat(mem_fd, &sb) < 0)
        return fail(err, errlen, -EINVAL, "memory file: cannot read its header");
    uint64_t f[3];
    memcpy(f, hdr + 16, sizeof(f));
    if (memcmp(hdr, SNAP_MEM_MAGIC, 16) != 0 || f[0] != 1)
        return fail(err, errlen, -EINVAL, "memory file: not a vessel memory file");
    if (f[1] != *ram_size || f[2] != RAM_BASE)
        return fail(err, errlen, -EINVAL, "memory file: %llu bytes of RAM, the state says %llu",
                    (unsigned long long)f[1], (unsigned long long)*ram_size);
    if (memcmp(hdr + 40, id, 16) != 0)
        return fail(err, errlen, -EINVAL,
                    "memory file: belongs to another snapshot than the state file");
    if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size != SNAP_MEM_HEADER + *ram_size)
        return fail(err, errlen, -EINVAL, "memory file: %lld bytes, expected %llu (truncated?)",
                    (long long)sb.st_size, (unsigned long long)(SNAP_MEM_HEADER + *ram_size));
    return 0;
}

int machine_snapshot_load(struct machine *m, const uint8_t *state, size_t len, char *err,
                          size_t errlen)
{
    struct sr r;
    int e = open_record(&r, state, len, err, errlen);
    if (e < 0) return e;
    sr_enter(&r, "machine", MACHINE_STATE_VERSION);
    unsigned cpus = (unsigned)sr_u64(&r, "cpus", MACHINE_MAX_HARTS);
    uint64_t ram = sr_u64(&r, "ram_size", UINT64_MAX);
    unsigned nd = (unsigned)sr_u64(&r, "ndisks", MACHINE_MAX_DISKS);
    if (!sr_failed(&r) && (cpus != m->nharts || ram != m->cfg.ram_size || nd != m->cfg.ndisks))
        sr_fail(&r,
                "the snapshot is of a VM with %u vCPUs, %llu MiB and %u disks; this one has "
                "%u, %llu MiB and %u",
                cpus, (unsigned long long)(ram >> 20), nd, m->nharts,
                (unsigned long long)(m->cfg.ram_size >> 20), m->cfg.ndisks);
    /* Every component checks all its values before it applies any; the order matters only
     * for interrupt lines: devices and the PLIC restore their levels as saved, then the PLIC
     * and the ACLINT drive the harts' wires. */
    for (unsigned i = 0; i < m->nharts && !sr_failed(&r); i++)
        hart_load(&m->harts[i], &r);
    uint64_t now = host_realtime_ns();
    if (!sr_failed(&r)) goldfish_rtc_load(m->rtc, &r);
    if (!sr_failed(&r)) vmgenid_load(m->genid, &r);
    if (!sr_failed(&r)) uart_load(m->uart, &r);
    for (unsigned i = 0; i < nslots(m) && !sr_failed(&r); i++)
        virtio_mmio_load(slot_transport(m, i), &r, i);
    if (!sr_failed(&r)) plic_load(m->plic, &r);
    if (!sr_failed(&r)) aclint_load(&m->clint, &r, now);
    int rc = 0;
    if (sr_failed(&r)) rc = fail(err, errlen, -EINVAL, "%s", r.err);
    sr_close(&r);
    /* devices fed from the host (network, vsock) load frozen: they go on now that the PLIC
     * and the harts have their state, so no interrupt they raise is overwritten */
    quiesce_all(m, false);
    /* a restored VM is a new generation: the guest reseeds its RNG (dev/vmgenid.h) */
    if (rc == 0) vmgenid_new_generation(m->genid);
    return rc;
}

char *snapshot_config(const uint8_t *state, size_t len, char *err, size_t errlen)
{
    struct sr r;
    if (open_record(&r, state, len, err, errlen) < 0) return NULL;
    char *json = NULL;
    size_t vl = 0;
    const uint8_t *v = NULL;
    if (sr_enter(&r, "config", 1)) v = sr_bytes_ref(&r, "json", &vl);
    if (!v)
        fail(err, errlen, -ENOENT, "the snapshot carries no VM configuration: %s", r.err);
    else if (vl == 0 || vl > (1u << 20) || memchr(v, 0, vl))
        fail(err, errlen, -EINVAL, "the snapshot's configuration is malformed");
    else if ((json = malloc(vl + 1))) {
        memcpy(json, v, vl);
        json[vl] = 0;
    } else {
        fail(err, errlen, -ENOMEM, "out of memory");
    }
    sr_close(&r);
    return json;
}

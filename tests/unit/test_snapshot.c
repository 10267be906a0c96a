/* Snapshot state records (util/staterec.c) and full-machine save/restore (machine/snapshot.c):
 * round trips, and refusal of every corruption a file can carry. */
#include "dev/uart.h"
#include "irq/plic.h"
#include "machine/machine.h"
#include "machine/snapshot.h"
#include "test.h"
#include "util/staterec.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static const uint8_t *record(struct sw *w, size_t *len)
{
    const uint8_t *b = NULL;
    CHECK_EQ(sw_finish(w, &b, len), 0);
    return b;
}

TEST(staterec_round_trip_and_sticky_errors)
{
    struct sw *w = sw_new();
    sw_section(w, "alpha", 2);
    sw_u64(w, "x", 42);
    sw_bytes(w, "blob", "hello", 5);
    sw_section(w, "beta.0", 1);
    sw_u64(w, "big", UINT64_MAX);
    size_t len;
    const uint8_t *b = record(w, &len);
    struct sr r;
    CHECK_EQ(sr_open(&r, b, len), 0);
    CHECK_EQ(sr_enter(&r, "alpha", 3), 2);
    CHECK_EQ(sr_u64(&r, "x", 100), 42);
    char blob[5];
    sr_bytes(&r, "blob", blob, 5);
    CHECK(!memcmp(blob, "hello", 5));
    CHECK_EQ(sr_u64_or(&r, "added_later", 10, 7), 7);
    CHECK(!sr_failed(&r));
    CHECK_EQ(sr_enter(&r, "beta.0", 1), 1);
    CHECK_EQ(sr_u64(&r, "big", UINT64_MAX), UINT64_MAX);
    CHECK(!sr_failed(&r));
    CHECK_EQ(sr_u64(&r, "big", 5), 0); /* out of range: fails, sticky */
    CHECK(sr_failed(&r));
    CHECK(strstr(r.err, "out of range") != NULL);
    CHECK_EQ(sr_enter(&r, "alpha", 3), 0); /* sticky */
    sr_close(&r);

    CHECK_EQ(sr_open(&r, b, len), 0);
    CHECK_EQ(sr_enter(&r, "alpha", 1), 0); /* newer than this reader */
    CHECK(strstr(r.err, "version 2") != NULL);
    sr_close(&r);
    CHECK_EQ(sr_open(&r, b, len), 0);
    sr_enter(&r, "alpha", 2);
    sr_bytes(&r, "x", blob, 5); /* wrong type */
    CHECK(sr_failed(&r));
    sr_close(&r);
    CHECK_EQ(sr_open(&r, b, len), 0);
    CHECK_EQ(sr_enter(&r, "gamma", 1), 0); /* missing */
    CHECK(sr_has_section(&r, "beta.0") && !sr_has_section(&r, "gamma"));
    sr_close(&r);

    /* any flipped bit and any truncation is refused before a component sees a byte */
    uint8_t *c = malloc(len);
    unsigned refused = 0;
    for (size_t i = 0; i < len; i++) {
        memcpy(c, b, len);
        c[i] ^= 0x10;
        if (sr_open(&r, c, len) < 0) refused++;
        sr_close(&r);
    }
    CHECK_EQ(refused, len);
    refused = 0;
    for (size_t n = 0; n < len; n++) {
        if (sr_open(&r, b, n) < 0) refused++;
        sr_close(&r);
    }
    CHECK_EQ(refused, len);
    free(c);
    sw_free(w);

    /* the writer refuses what the reader could not take */
    w = sw_new();
    sw_section(w, "Bad Name", 1);
    const uint8_t *bb;
    CHECK_EQ(sw_finish(w, &bb, &len), -EINVAL);
    sw_free(w);
    w = sw_new();
    sw_u64(w, "x", 1); /* a field outside any section */
    CHECK_EQ(sw_finish(w, &bb, &len), -EINVAL);
    sw_free(w);
}

/* A record whose CRC is right but whose structure lies: the reader must still refuse it. */
TEST(staterec_refuses_lying_lengths)
{
    struct sw *w = sw_new();
    sw_section(w, "s", 1);
    sw_u64(w, "a", 1);
    sw_section(w, "s", 1); /* the same section twice */
    size_t len;
    const uint8_t *b = record(w, &len);
    struct sr r;
    CHECK_EQ(sr_open(&r, b, len), -EINVAL);
    CHECK(strstr(r.err, "twice") != NULL);
    sr_close(&r);
    sw_free(w);
}

static void null_write(struct chr *c, const uint8_t *b, size_t n)
{
    (void)c, (void)b, (void)n;
}
static void null_destroy(struct chr *c)
{
    (void)c;
}
static const struct chr_ops null_ops = {.write = null_write, .destroy = null_destroy};

static int tmpfile_fd(char *path)
{
    strcpy(path, "/tmp/vessel-snap-XXXXXX");
    return mkstemp(path);
}

TEST(machine_snapshot_round_trip)
{
    static struct chr console = {.ops = &null_ops};
    struct machine_config cfg = {.cpus = 2, .ram_size = 64ull << 20};
    struct machine *m, *n;
    char err[300];
    CHECK_EQ(machine_create(&m, &cfg, &console, err, sizeof(err)), 0);
    /* some state in every component */
    struct hart *h = &m->harts[1];
    h->pc = 0x80201234;
    h->x[5] = 0x1122334455667788ull;
    h->fp.f[3] = 0xfff0000012345678ull;
    h->priv = PRV_S;
    uint64_t old;
    m->harts[1].priv = PRV_M;
    CHECK_EQ(csr_access(h, 0x300, 0, (1ull << 13) | (1ull << 1) | (1ull << 11), true, &old), 0);
    CHECK_EQ(csr_access(h, 0x180, 0, (8ull << 60) | 0x80123, true, &old), 0); /* satp Sv39 */
    CHECK_EQ(csr_access(h, 0x105, 0, 0x80200000, true, &old), 0);
    h->priv = PRV_S;
    h->instret = 123456;
    memcpy(m->ram + 0x1000, "guest data", 10);
    m->ram[(60 << 20) + 5] = 0x5a;
    plic_mmio_ops.write(m->plic, 4 * 10, 5, 4);               /* priority of source 10 */
    plic_mmio_ops.write(m->plic, 0x2000 + 0x80, 1u << 10, 4); /* ctx 1 enables it */
    uart_mmio_ops.write(m->uart, 7, 0xab, 1);                 /* scratch register */
    for (unsigned i = 0; i < m->nharts; i++)
        m->harts[i].parked = true;

    char sp[64], mp[64];
    int sfd = tmpfile_fd(sp), mfd = tmpfile_fd(mp);
    struct snap_save_stats st;
    CHECK_EQ(machine_snapshot_save(m, sfd, mfd, NULL, &st, err, sizeof(err)), 0);
    CHECK(st.mem_pages_written >= 2 && st.mem_pages_written < 100); /* sparse */
    struct stat sb;
    fstat(mfd, &sb);
    CHECK_EQ((uint64_t)sb.st_size, SNAP_MEM_HEADER + cfg.ram_size);
    CHECK((uint64_t)sb.st_blocks * 512 < (4u << 20)); /* holes for untouched memory */

    uint8_t *state;
    size_t slen;
    CHECK_EQ(snapshot_read_state(sfd, &state, &slen, err, sizeof(err)), 0);
    unsigned cpus, nd;
    uint64_t ram;
    CHECK_EQ(snapshot_check(state, slen, mfd, &cpus, &ram, &nd, err, sizeof(err)), 0);
    CHECK(cpus == 2 && ram == cfg.ram_size && nd == 0);

    struct machine_config rc = cfg;
    rc.restore = true;
    rc.restore_mem_fd = mfd;
    CHECK_EQ(machine_create(&n, &rc, &console, err, sizeof(err)), 0);
    int r = machine_snapshot_load(n, state, slen, err, sizeof(err));
    CHECK_EQ(r, 0);
    if (r) fprintf(stderr, "  %s\n", err);
    struct hart *g = &n->harts[1];
    CHECK_EQ(g->pc, 0x80201234);
    CHECK_EQ(g->x[5], 0x1122334455667788ull);
    CHECK_EQ(g->fp.f[3], 0xfff0000012345678ull);
    CHECK_EQ(g->priv, PRV_S);
    CHECK_EQ(g->satp, h->satp);
    CHECK_EQ(g->mstatus, h->mstatus);
    CHECK_EQ(g->stvec, 0x80200000);
    CHECK_EQ(g->instret, 123456);
    CHECK(!memcmp(n->ram + 0x1000, "guest data", 10));
    CHECK_EQ(n->ram[(60 << 20) + 5], 0x5a);
    CHECK_EQ(plic_mmio_ops.read(n->plic, 4 * 10, 4), 5);
    CHECK_EQ(plic_mmio_ops.read(n->plic, 0x2000 + 0x80, 4), 1u << 10);
    CHECK_EQ(uart_mmio_ops.read(n->uart, 7, 1), 0xab);
    /* copy-on-write: the restored guest's writes never reach the memory file */
    n->ram[0x1000] = 'G';
    char c;
    CHECK_EQ(pread(mfd, &c, 1, SNAP_MEM_HEADER + 0x1000), 1);
    CHECK_EQ(c, 'g');
    machine_destroy(n);

    /* a machine of another shape is refused, with the reason */
    struct machine_config other = rc;
    other.cpus = 1;
    CHECK_EQ(machine_create(&n, &other, &console, err, sizeof(err)), 0);
    CHECK_EQ(machine_snapshot_load(n, state, slen, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "2 vCPUs") != NULL);
    machine_destroy(n);

    /* a memory file of another snapshot, or truncated, is refused */
    char mp2[64];
    int mfd2 = tmpfile_fd(mp2);
    char sp2[64];
    int sfd2 = tmpfile_fd(sp2);
    CHECK_EQ(machine_snapshot_save(m, sfd2, mfd2, NULL, NULL, err, sizeof(err)), 0);
    close(sfd2);
    unlink(sp2);
    CHECK_EQ(snapshot_check(state, slen, mfd2, &cpus, &ram, &nd, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "another snapshot") != NULL);
    CHECK_EQ(ftruncate(mfd, (off_t)(SNAP_MEM_HEADER + cfg.ram_size - 4096)), 0);
    CHECK_EQ(snapshot_check(state, slen, mfd, &cpus, &ram, &nd, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "truncated") != NULL);
    free(state);
    machine_destroy(m);
    close(sfd);
    close(mfd);
    close(mfd2);
    unlink(sp);
    unlink(mp);
    unlink(mp2);
}

/* Values no hart can hold are refused even with a valid CRC: a hand-made record. */
TEST(machine_snapshot_refuses_impossible_values)
{
    static struct chr console = {.ops = &null_ops};
    struct machine_config cfg = {.cpus = 1, .ram_size = 64ull << 20};
    struct machine *m;
    char err[300];
    CHECK_EQ(machine_create(&m, &cfg, &console, err, sizeof(err)), 0);
    m->harts[0].parked = true;
    char sp[64], mp[64];
    int sfd = tmpfile_fd(sp), mfd = tmpfile_fd(mp);
    CHECK_EQ(machine_snapshot_save(m, sfd, mfd, NULL, NULL, err, sizeof(err)), 0);
    uint8_t *state;
    size_t slen;
    CHECK_EQ(snapshot_read_state(sfd, &state, &slen, err, sizeof(err)), 0);
    /* rewrite the record with one field changed at a time */
    static const struct {
        const char *sec, *field;
        uint64_t v;
        const char *why;
    } bad[] = {
        {"hart.0", "satp", 5ull << 60, "satp"},       /* an unimplemented translation mode */
        {"hart.0", "priv", 2, "privilege 2"},         /* no such privilege */
        {"hart.0", "pc", 0x80000001, "odd"},          /* misaligned pc */
        {"hart.0", "mstatus", 2ull << 11, "mstatus"}, /* MPP = 2 (reserved) */
        {"plic", "threshold.0", 8, "out of range"},
        {"virtio.0", "q0.num", 3, "out of range"}, /* queue_max is a power of 2; 3 is not */
        {"virtio.0", "status", 0x104, "out of range"},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        struct sr r;
        CHECK_EQ(sr_open(&r, state, slen), 0);
        struct sw *w = sw_new();
        for (unsigned i = 0; i < r.nsections; i++) {
            const struct sr_section *s = &r.sections[i];
            char name[64];
            snprintf(name, sizeof(name), "%.*s", (int)s->name_len, s->name);
            sw_section(w, name, s->version);
            size_t f = 0;
            while (f < s->len) {
                size_t fl = s->data[f];
                unsigned t = s->data[f + 1 + fl];
                size_t vl = s->data[f + 2 + fl] | (size_t)s->data[f + 3 + fl] << 8 |
                            (size_t)s->data[f + 4 + fl] << 16;
                char fn[64];
                snprintf(fn, sizeof(fn), "%.*s", (int)fl, (const char *)s->data + f + 1);
                const uint8_t *v = s->data + f + 6 + fl;
                if (!strcmp(name, bad[k].sec) && !strcmp(fn, bad[k].field)) {
                    sw_u64(w, fn, bad[k].v);
                } else if (t == 1) {
                    uint64_t x = 0;
                    for (unsigned b = 0; b < 8; b++)
                        x |= (uint64_t)v[b] << (8 * b);
                    sw_u64(w, fn, x);
                } else {
                    sw_bytes(w, fn, v, vl);
                }
                f += 6 + fl + vl;
            }
        }
        sr_close(&r);
        const uint8_t *b;
        size_t len;
        CHECK_EQ(sw_finish(w, &b, &len), 0);
        struct machine_config rc = cfg;
        rc.restore = true;
        rc.restore_mem_fd = mfd;
        struct machine *n;
        CHECK_EQ(machine_create(&n, &rc, &console, err, sizeof(err)), 0);
        int res = machine_snapshot_load(n, b, len, err, sizeof(err));
        CHECK_EQ(res, -EINVAL);
        if (res == 0) fprintf(stderr, "  %s.%s accepted\n", bad[k].sec, bad[k].field);
        if (res == -EINVAL && !strstr(err, bad[k].why))
            fprintf(stderr, "  %s.%s: unexpected reason: %s\n", bad[k].sec, bad[k].field, err);
        CHECK(res == -EINVAL && strstr(err, bad[k].why) != NULL);
        machine_destroy(n);
        sw_free(w);
    }
    free(state);
    machine_destroy(m);
    close(sfd);
    close(mfd);
    unlink(sp);
    unlink(mp);
}

/* A hart's architectural state in a snapshot (util/staterec.h): registers, pc, privilege, CSRs,
 * PMP, counters, debug triggers. Not saved: the TLBs, the decode cache and translated code
 * (rebuilt), the LR reservation (dropped: an SC after a restore may fail, as after any trap), and
 * the interrupt wires (mip_ext: the PLIC and ACLINT drive them again when they are restored).
 *
 * Loading writes every CSR through csr_access, as an M-mode instruction would, so each value
 * passes the same WARL legalisation; a value that does not read back as saved was never one a
 * hart could hold, and the snapshot is refused. */
#include "cpu/riscv/hart.h"
#include "util/staterec.h"
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define HART_STATE_VERSION 1

/* The CSRs restored through csr_access, in an order where each write is allowed and sticks:
 * menvcfg before stimecmp (Sstc), pmpaddr before pmpcfg (a locked entry ignores later address
 * writes), mstatus before anything that depends on FS or TVM. Priv spec numbers. */
static const struct {
    const char *name;
    unsigned csr;
    size_t off; /* the field of struct hart that holds it */
} csrs[] = {
    {"mstatus", 0x300, offsetof(struct hart, mstatus)},
    {"medeleg", 0x302, offsetof(struct hart, medeleg)},
    {"mideleg", 0x303, offsetof(struct hart, mideleg)},
    {"mie", 0x304, offsetof(struct hart, mie)},
    {"mtvec", 0x305, offsetof(struct hart, mtvec)},
    {"mcounteren", 0x306, offsetof(struct hart, mcounteren)},
    {"menvcfg", 0x30a, offsetof(struct hart, menvcfg)},
    {"mscratch", 0x340, offsetof(struct hart, mscratch)},
    {"mepc", 0x341, offsetof(struct hart, mepc)},
    {"mcause", 0x342, offsetof(struct hart, mcause)},
    {"mtval", 0x343, offsetof(struct hart, mtval)},
    {"stvec", 0x105, offsetof(struct hart, stvec)},
    {"scounteren", 0x106, offsetof(struct hart, scounteren)},
    {"senvcfg", 0x10a, offsetof(struct hart, senvcfg)},
    {"sscratch", 0x140, offsetof(struct hart, sscratch)},
    {"sepc", 0x141, offsetof(struct hart, sepc)},
    {"scause", 0x142, offsetof(struct hart, scause)},
    {"stval", 0x143, offsetof(struct hart, stval)},
    {"satp", 0x180, offsetof(struct hart, satp)},
    {"stimecmp", 0x14d, offsetof(struct hart, stimecmp)},
};

static uint64_t csr_field(const struct hart *h, size_t i)
{
    uint64_t v;
    memcpy(&v, (const char *)h + csrs[i].off, sizeof(v));
    return v;
}

void hart_save(const struct hart *h, struct sw *w)
{
    char sec[32];
    snprintf(sec, sizeof(sec), "hart.%u", h->id);
    sw_section(w, sec, HART_STATE_VERSION);
    sw_bytes(w, "x", h->x, 32 * sizeof(uint64_t));
    sw_bytes(w, "f", h->fp.f, sizeof(h->fp.f));
    sw_u64(w, "fflags", h->fp.fflags);
    sw_u64(w, "frm", h->fp.frm);
    sw_u64(w, "pc", h->pc);
    sw_u64(w, "priv", h->priv);
    sw_u64(w, "wfi", h->wfi);
    for (size_t i = 0; i < sizeof(csrs) / sizeof(csrs[0]); i++)
        sw_u64(w, csrs[i].name, csr_field(h, i));
    sw_u64(w, "mip_sw", h->mip_sw);
    sw_bytes(w, "pmpcfg", h->pmpcfg, sizeof(h->pmpcfg));
    sw_bytes(w, "pmpaddr", h->pmpaddr, sizeof(h->pmpaddr));
    sw_u64(w, "instret", h->instret);
    sw_u64(w, "cycle_offset", h->cycle_offset);
    sw_u64(w, "instret_offset", h->instret_offset);
    sw_u64(w, "cycle_frozen", h->cycle_frozen);
    sw_u64(w, "instret_frozen", h->instret_frozen);
    sw_u64(w, "mcountinhibit", h->mcountinhibit);
    sw_u64(w, "tselect", h->tselect);
    for (unsigned k = 0; k < TRIG_COUNT; k++) {
        char n[24];
        snprintf(n, sizeof(n), "tdata1.%u", k);
        sw_u64(w, n, h->trig[k].tdata1);
        snprintf(n, sizeof(n), "tdata2.%u", k);
        sw_u64(w, n, h->trig[k].tdata2);
    }
}

/* Write csr as an M-mode instruction would (WARL legalisation, side effects); the caller then
 * checks that the field holds what was saved. */
static void put_csr(struct hart *h, unsigned csr, uint64_t v)
{
    uint64_t old;
    (void)csr_access(h, csr, 0, v, true, &old);
}

int hart_load(struct hart *h, struct sr *r)
{
    char sec[32];
    snprintf(sec, sizeof(sec), "hart.%u", h->id);
    sr_enter(r, sec, HART_STATE_VERSION);
    uint64_t x[32], f[32], val[sizeof(csrs) / sizeof(csrs[0])];
    uint8_t pmpcfg[PMP_ENTRIES];
    uint64_t pmpaddr[PMP_ENTRIES], tdata1[TRIG_COUNT], tdata2[TRIG_COUNT];
    sr_bytes(r, "x", x, sizeof(x));
    sr_bytes(r, "f", f, sizeof(f));
    uint64_t fflags = sr_u64(r, "fflags", 0x1f), frm = sr_u64(r, "frm", 7);
    uint64_t pc = sr_u64(r, "pc", UINT64_MAX), priv = sr_u64(r, "priv", PRV_M);
    uint64_t wfi = sr_u64(r, "wfi", 1);
    for (size_t i = 0; i < sizeof(csrs) / sizeof(csrs[0]); i++)
        val[i] = sr_u64(r, csrs[i].name, UINT64_MAX);
    uint64_t mip_sw = sr_u64(r, "mip_sw", UINT64_MAX);
    sr_bytes(r, "pmpcfg", pmpcfg, sizeof(pmpcfg));
    sr_bytes(r, "pmpaddr", pmpaddr, sizeof(pmpaddr));
    uint64_t instret = sr_u64(r, "instret", UINT64_MAX);
    uint64_t cyo = sr_u64(r, "cycle_offset", UINT64_MAX);
    uint64_t ino = sr_u64(r, "instret_offset", UINT64_MAX);
    uint64_t cyf = sr_u64(r, "cycle_frozen", UINT64_MAX);
    uint64_t inf = sr_u64(r, "instret_frozen", UINT64_MAX);
    uint64_t inhibit = sr_u64(r, "mcountinhibit", 5);
    uint64_t tselect = sr_u64(r, "tselect", TRIG_COUNT - 1);
    for (unsigned k = 0; k < TRIG_COUNT; k++) {
        char n[24];
        snprintf(n, sizeof(n), "tdata1.%u", k);
        tdata1[k] = sr_u64(r, n, UINT64_MAX);
        snprintf(n, sizeof(n), "tdata2.%u", k);
        tdata2[k] = sr_u64(r, n, UINT64_MAX);
    }
    if (!sr_failed(r) && priv == 2) sr_fail(r, "state of %s: privilege 2 does not exist", sec);
    if (!sr_failed(r) && (pc & 1))
        sr_fail(r, "state of %s: pc 0x%llx is odd", sec, (unsigned long long)pc);
    if (!sr_failed(r) && (inhibit & ~5ull))
        sr_fail(r, "state of %s: mcountinhibit 0x%llx", sec, (unsigned long long)inhibit);
    if (sr_failed(r)) return -1;

    /* apply: the hart is in its reset state, not running */
    memcpy(h->x, x, sizeof(x));
    h->x[0] = 0;
    memcpy(h->fp.f, f, sizeof(f));
    h->fp.fflags = (uint32_t)fflags;
    h->fp.frm = (uint32_t)frm;
    h->priv = PRV_M;
    for (unsigned i = 0; i < PMP_ENTRIES; i++) /* addresses first: a lock freezes them */
        put_csr(h, 0x3b0 + i, pmpaddr[i]);
    for (unsigned i = 0; i < PMP_ENTRIES; i += 8) {
        uint64_t v = 0;
        for (unsigned b = 0; b < 8; b++)
            v |= (uint64_t)pmpcfg[i + b] << (8 * b);
        put_csr(h, 0x3a0 + i / 4, v);
    }
    for (size_t i = 0; i < sizeof(csrs) / sizeof(csrs[0]); i++)
        put_csr(h, csrs[i].csr, val[i]);
    put_csr(h, 0x344, mip_sw); /* mip: its software-writable bits are the hart's state */
    for (unsigned k = 0; k < TRIG_COUNT; k++) {
        put_csr(h, 0x7a0, k);
        put_csr(h, 0x7a1, tdata1[k]);
        put_csr(h, 0x7a2, tdata2[k]);
    }
    put_csr(h, 0x7a0, tselect);
    /* every value must have stuck: else it was never one this hart could hold */
    const char *bad = NULL;
    for (size_t i = 0; i < sizeof(csrs) / sizeof(csrs[0]) && !bad; i++)
        if (csr_field(h, i) != val[i]) bad = csrs[i].name;
    if (!bad && memcmp(h->pmpaddr, pmpaddr, sizeof(pmpaddr)) != 0) bad = "pmpaddr";
    if (!bad && memcmp(h->pmpcfg, pmpcfg, sizeof(pmpcfg)) != 0) bad = "pmpcfg";
    if (!bad && h->mip_sw != mip_sw) bad = "mip_sw";
    for (unsigned k = 0; k < TRIG_COUNT && !bad; k++)
        if (h->trig[k].tdata1 != tdata1[k] || h->trig[k].tdata2 != tdata2[k]) bad = "tdata";
    if (!bad && h->tselect != tselect) bad = "tselect";
    if (bad) sr_fail(r, "state of %s: %s holds a value this hart cannot have", sec, bad);
    if (sr_failed(r)) return -1;
    h->instret = instret;
    h->cycle_offset = cyo;
    h->instret_offset = ino;
    h->cycle_frozen = cyf;
    h->instret_frozen = inf;
    h->mcountinhibit = inhibit;
    h->pc = pc;
    h->priv = (unsigned)priv;
    h->wfi = wfi;
    h->res_valid = false;
    hart_update_mode(h);
    trigger_update(h); /* flushes the TLBs and the decoded pages too */
    return 0;
}

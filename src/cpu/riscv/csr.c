/* Control and status registers (priv spec ch. 2, 3, 10; Sstc; Zicntr; F's fcsr).
 * Unimplemented CSRs raise illegal instruction: OpenSBI and Linux probe by trapping. */
#include "cpu/riscv/hart.h"
#include "irq/aclint.h"
#include <string.h>

#define CSR_FFLAGS        0x001
#define CSR_FRM           0x002
#define CSR_FCSR          0x003
#define CSR_CYCLE         0xc00
#define CSR_TIME          0xc01
#define CSR_INSTRET       0xc02
#define CSR_SSTATUS       0x100
#define CSR_SIE           0x104
#define CSR_STVEC         0x105
#define CSR_SCOUNTEREN    0x106
#define CSR_SENVCFG       0x10a
#define CSR_SSCRATCH      0x140
#define CSR_SEPC          0x141
#define CSR_SCAUSE        0x142
#define CSR_STVAL         0x143
#define CSR_SIP           0x144
#define CSR_STIMECMP      0x14d
#define CSR_SATP          0x180
#define CSR_MSTATUS       0x300
#define CSR_MISA          0x301
#define CSR_MEDELEG       0x302
#define CSR_MIDELEG       0x303
#define CSR_MIE           0x304
#define CSR_MTVEC         0x305
#define CSR_MCOUNTEREN    0x306
#define CSR_MENVCFG       0x30a
#define CSR_MCOUNTINHIBIT 0x320
#define CSR_MSCRATCH      0x340
#define CSR_MEPC          0x341
#define CSR_MCAUSE        0x342
#define CSR_MTVAL         0x343
#define CSR_MIP           0x344
#define CSR_PMPCFG0       0x3a0
#define CSR_PMPADDR0      0x3b0
#define CSR_MCYCLE        0xb00
#define CSR_MINSTRET      0xb02
#define CSR_MVENDORID     0xf11
#define CSR_MARCHID       0xf12
#define CSR_MIMPID        0xf13
#define CSR_MHARTID       0xf14
#define CSR_MCONFIGPTR    0xf15

/* RV64, extensions A C D F I M S U */
#define MISA_VALUE                                                                                 \
    ((2ull << 62) | (1u << 0) | (1u << 2) | (1u << 3) | (1u << 5) | (1u << 8) | (1u << 12) |       \
     (1u << 18) | (1u << 20))

#define MSTATUS_WMASK                                                                              \
    (MSTATUS_SIE | MSTATUS_MIE | MSTATUS_SPIE | MSTATUS_MPIE | MSTATUS_SPP | MSTATUS_MPP |         \
     MSTATUS_FS | MSTATUS_MPRV | MSTATUS_SUM | MSTATUS_MXR | MSTATUS_TVM | MSTATUS_TW |            \
     MSTATUS_TSR)
#define SSTATUS_RMASK                                                                              \
    (MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_FS | MSTATUS_SUM | MSTATUS_MXR |           \
     MSTATUS_UXL | MSTATUS_SD)
#define SSTATUS_WMASK                                                                              \
    (MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_FS | MSTATUS_SUM | MSTATUS_MXR)
/* Delegable exceptions: all defined ones but ecall from M (11). */
#define MEDELEG_MASK        0xb3ffull
#define MIDELEG_MASK        (MIP_SSIP | MIP_STIP | MIP_SEIP)
#define MIE_MASK            (MIP_SSIP | MIP_MSIP | MIP_STIP | MIP_MTIP | MIP_SEIP | MIP_MEIP)
#define COUNTEREN_MASK      0x7ull                        /* CY, TM, IR; no hpm counters */
#define MSTATUS_UXL_SXL_64  ((2ull << 32) | (2ull << 34)) /* XLEN 64 in U and S, read-only */
#define SATP_MODE_SHIFT_CSR 60

static uint64_t mstatus_read(const struct hart *h)
{
    uint64_t s = h->mstatus | MSTATUS_UXL_SXL_64;
    if ((s & MSTATUS_FS) == FS_DIRTY) s |= MSTATUS_SD;
    return s;
}

uint64_t hart_mip(struct hart *h)
{
    uint64_t mip = h->mip_sw | atomic_load_explicit(&h->mip_ext, memory_order_relaxed);
    uint64_t t = hart_time(h);
    if (t >= atomic_load_explicit(&h->env.clint->mtimecmp[h->id], memory_order_relaxed))
        mip |= MIP_MTIP;
    if (h->menvcfg & MENVCFG_STCE) {
        mip &= ~MIP_STIP;
        if (t >= h->stimecmp) mip |= MIP_STIP;
    }
    return mip;
}

/* Counter gating for S and U (priv spec 3.1.11/10.1.5). */
static bool counter_allowed(const struct hart *h, unsigned bit)
{
    if (h->priv == PRV_M) return true;
    if (!(h->mcounteren & (1u << bit))) return false;
    if (h->priv == PRV_U && !(h->scounteren & (1u << bit))) return false;
    return true;
}

static bool pmp_locked(const struct hart *h, unsigned i)
{
    return h->pmpcfg[i] & 0x80;
}

static void pmpcfg_write(struct hart *h, unsigned first, uint64_t val)
{
    for (unsigned k = 0; k < 8; k++) {
        unsigned i = first + k;
        if (i >= PMP_ENTRIES || pmp_locked(h, i)) continue;
        uint8_t c = (uint8_t)(val >> (8 * k)) & 0x9f; /* L, A, X, W, R */
        if ((c & 3) == 2)                             /* W without R is reserved */
            c &= ~2;
        h->pmpcfg[i] = c;
    }
}

static bool fp_enabled(const struct hart *h)
{
    return (h->mstatus & MSTATUS_FS) != 0;
}

/* Counters (priv spec 3.1.11, 3.1.12): bit 0 = cycle (follows instret: one instruction, one
 * cycle), bit 2 = instret. csr_access is called for an instruction that retires right after it
 * returns, and a CSR write takes effect after the writing instruction retires (Zicsr 9.1). */
static uint64_t *ctr_offset(struct hart *h, unsigned bit)
{
    return bit ? &h->instret_offset : &h->cycle_offset;
}
static uint64_t *ctr_frozen(struct hart *h, unsigned bit)
{
    return bit ? &h->instret_frozen : &h->cycle_frozen;
}
/* An inhibited counter (mcountinhibit, 3.1.13) holds its value. */
static uint64_t ctr_read(struct hart *h, unsigned bit)
{
    if (h->mcountinhibit & (1u << bit)) return *ctr_frozen(h, bit);
    return h->instret + *ctr_offset(h, bit);
}
/* The value written replaces the writing instruction's own increment: the next read sees it. */
static void ctr_write(struct hart *h, unsigned bit, uint64_t v)
{
    if (h->mcountinhibit & (1u << bit))
        *ctr_frozen(h, bit) = v;
    else
        *ctr_offset(h, bit) = v - (h->instret + 1);
}
/* Setting a bit freezes the counter after the writing instruction (which still counts);
 * clearing it lets the instructions after the writing one count on from the held value. */
static void mcountinhibit_write(struct hart *h, uint64_t nv)
{
    for (unsigned bit = 0; bit <= 2; bit += 2) {
        uint64_t m = 1ull << bit;
        if (!(h->mcountinhibit & m) && (nv & m))
            *ctr_frozen(h, bit) = h->instret + *ctr_offset(h, bit) + 1;
        else if ((h->mcountinhibit & m) && !(nv & m))
            *ctr_offset(h, bit) = *ctr_frozen(h, bit) - (h->instret + 1);
    }
    h->mcountinhibit = nv;
}

bool csr_write_is_quiet(const struct hart *h, unsigned csr, uint64_t mstatus_before)
{
    switch (csr) {
    case CSR_FFLAGS:
    case CSR_FRM:
    case CSR_FCSR:
    case CSR_SSCRATCH:
    case CSR_SEPC:
    case CSR_SCAUSE:
    case CSR_STVAL:
    case CSR_MSCRATCH:
    case CSR_MEPC:
    case CSR_MCAUSE:
    case CSR_MTVAL: return true;
    case CSR_SSTATUS:
    case CSR_MSTATUS: {
        uint64_t changed = mstatus_before ^ h->mstatus;
        /* no bit set, and only interrupt enables cleared */
        return !(changed & h->mstatus) && !(changed & ~(MSTATUS_SIE | MSTATUS_MIE));
    }
    default: return false;
    }
}

int csr_access(struct hart *h, unsigned csr, int op, uint64_t val, bool write, uint64_t *old)
{
    unsigned minpriv = (csr >> 8) & 3;
    if (h->priv < minpriv) return EXC_ILLEGAL_INSN;
    if (write && (csr >> 10) == 3) /* read-only CSR */
        return EXC_ILLEGAL_INSN;

    uint64_t cur;
    /* read */
    switch (csr) {
    case CSR_FFLAGS:
        if (!fp_enabled(h)) return EXC_ILLEGAL_INSN;
        cur = h->fp.fflags;
        break;
    case CSR_FRM:
        if (!fp_enabled(h)) return EXC_ILLEGAL_INSN;
        cur = h->fp.frm;
        break;
    case CSR_FCSR:
        if (!fp_enabled(h)) return EXC_ILLEGAL_INSN;
        cur = h->fp.fflags | (h->fp.frm << 5);
        break;
    case CSR_CYCLE:
        if (!counter_allowed(h, 0)) return EXC_ILLEGAL_INSN;
        cur = ctr_read(h, 0);
        break;
    case CSR_TIME:
        if (!counter_allowed(h, 1)) return EXC_ILLEGAL_INSN;
        cur = hart_time(h);
        break;
    case CSR_INSTRET:
        if (!counter_allowed(h, 2)) return EXC_ILLEGAL_INSN;
        cur = ctr_read(h, 2);
        break;
    case CSR_SSTATUS: cur = mstatus_read(h) & SSTATUS_RMASK; break;
    case CSR_SIE: cur = h->mie & h->mideleg; break;
    case CSR_STVEC: cur = h->stvec; break;
    case CSR_SCOUNTEREN: cur = h->scounteren; break;
    case CSR_SENVCFG: cur = h->senvcfg; break;
    case CSR_SSCRATCH: cur = h->sscratch; break;
    case CSR_SEPC: cur = h->sepc; break;
    case CSR_SCAUSE: cur = h->scause; break;
    case CSR_STVAL: cur = h->stval; break;
    case CSR_SIP: cur = hart_mip(h) & h->mideleg; break;
    case CSR_STIMECMP:
        /* Sstc: below M, needs menvcfg.STCE and mcounteren.TM */
        if (h->priv < PRV_M && (!(h->menvcfg & MENVCFG_STCE) || !(h->mcounteren & 2)))
            return EXC_ILLEGAL_INSN;
        cur = h->stimecmp;
        break;
    case CSR_SATP:
        if (h->priv == PRV_S && (h->mstatus & MSTATUS_TVM)) return EXC_ILLEGAL_INSN;
        cur = h->satp;
        break;
    case CSR_MSTATUS: cur = mstatus_read(h); break;
    case CSR_MISA: cur = MISA_VALUE; break;
    case CSR_MEDELEG: cur = h->medeleg; break;
    case CSR_MIDELEG: cur = h->mideleg; break;
    case CSR_MIE: cur = h->mie; break;
    case CSR_MTVEC: cur = h->mtvec; break;
    case CSR_MCOUNTEREN: cur = h->mcounteren; break;
    case CSR_MENVCFG: cur = h->menvcfg; break;
    case CSR_MCOUNTINHIBIT: cur = h->mcountinhibit; break;
    case CSR_MSCRATCH: cur = h->mscratch; break;
    case CSR_MEPC: cur = h->mepc; break;
    case CSR_MCAUSE: cur = h->mcause; break;
    case CSR_MTVAL: cur = h->mtval; break;
    case CSR_MIP: cur = hart_mip(h); break;
    case CSR_MCYCLE: cur = ctr_read(h, 0); break;
    case CSR_MINSTRET: cur = ctr_read(h, 2); break;
    case CSR_MVENDORID:
    case CSR_MARCHID:
    case CSR_MIMPID:
    case CSR_MCONFIGPTR: cur = 0; break;
    case CSR_MHARTID: cur = h->id; break;
    default:
        if (csr >= CSR_PMPCFG0 && csr < CSR_PMPCFG0 + 16) {
            unsigned n = csr - CSR_PMPCFG0;
            if (n & 1) /* RV64 has only even pmpcfg registers */
                return EXC_ILLEGAL_INSN;
            cur = 0;
            for (unsigned k = 0; k < 8; k++)
                if (n * 4 + k < PMP_ENTRIES) cur |= (uint64_t)h->pmpcfg[n * 4 + k] << (8 * k);
            break;
        }
        if (csr >= CSR_PMPADDR0 && csr < CSR_PMPADDR0 + 64) {
            unsigned n = csr - CSR_PMPADDR0;
            cur = n < PMP_ENTRIES ? h->pmpaddr[n] : 0;
            break;
        }
        if (csr >= CSR_TSELECT && csr <= CSR_TINFO) { /* Sdtrig; tcontrol etc. trap */
            cur = trigger_csr_read(h, csr);
            break;
        }
        return EXC_ILLEGAL_INSN;
    }
    *old = cur;
    if (!write) return 0;

    uint64_t nv = op == 0 ? val : op == 1 ? (cur | val) : (cur & ~val);
    switch (csr) {
    case CSR_FFLAGS:
        h->fp.fflags = nv & 0x1f;
        h->mstatus |= FS_DIRTY;
        break;
    case CSR_FRM:
        h->fp.frm = nv & 7;
        h->mstatus |= FS_DIRTY;
        break;
    case CSR_FCSR:
        h->fp.fflags = nv & 0x1f;
        h->fp.frm = (nv >> 5) & 7;
        h->mstatus |= FS_DIRTY;
        break;
    case CSR_SSTATUS: nv = (h->mstatus & ~SSTATUS_WMASK) | (nv & SSTATUS_WMASK); goto set_mstatus;
    case CSR_MSTATUS:
        nv = (h->mstatus & ~MSTATUS_WMASK) | (nv & MSTATUS_WMASK);
        if (((nv & MSTATUS_MPP) >> 11) == 2) /* reserved MPP: keep the old value */
            nv = (nv & ~MSTATUS_MPP) | (h->mstatus & MSTATUS_MPP);
    set_mstatus : {
        uint64_t changed = nv ^ h->mstatus;
        h->mstatus = nv;
        /* SUM selects its own TLB set and MPRV accesses are never cached: only MXR flushes. */
        if (changed & MSTATUS_MXR) tlb_flush_all(h);
        hart_update_mode(h);
        break;
    }
    case CSR_SIE: h->mie = (h->mie & ~h->mideleg) | (nv & h->mideleg & MIE_MASK); break;
    case CSR_STVEC: h->stvec = nv & ~2ull; break;
    case CSR_SCOUNTEREN: h->scounteren = nv & COUNTEREN_MASK; break;
    case CSR_SENVCFG: h->senvcfg = nv & MENVCFG_FIOM; break;
    case CSR_SSCRATCH: h->sscratch = nv; break;
    case CSR_SEPC: h->sepc = nv & ~1ull; break;
    case CSR_SCAUSE: h->scause = nv; break;
    case CSR_STVAL: h->stval = nv; break;
    case CSR_SIP: /* only SSIP is writable through sip */
        if (h->mideleg & MIP_SSIP) h->mip_sw = (h->mip_sw & ~MIP_SSIP) | (nv & MIP_SSIP);
        break;
    case CSR_STIMECMP: h->stimecmp = nv; break;
    case CSR_SATP: {
        uint64_t mode = nv >> SATP_MODE_SHIFT_CSR;
        unsigned max = h->env.satp_max_mode ? h->env.satp_max_mode : 10;
        if (mode != 0 && (mode < 8 || mode > max))
            break; /* unsupported mode: the write has no effect at all */
        /* ASIDLEN = 16: Linux then fences by ASID instead of flushing on every mm switch,
         * and fast memory keeps each address space's pages (jit/fastmem.h). */
        h->satp = (mode << SATP_MODE_SHIFT_CSR) | (nv & ((1ull << 60) - 1));
        tlb_satp_written(h);
        break;
    }
    case CSR_MEDELEG: h->medeleg = nv & MEDELEG_MASK; break;
    case CSR_MIDELEG: h->mideleg = nv & MIDELEG_MASK; break;
    case CSR_MIE: h->mie = nv & MIE_MASK; break;
    case CSR_MTVEC: h->mtvec = nv & ~2ull; break;
    case CSR_MCOUNTEREN: h->mcounteren = nv & COUNTEREN_MASK; break;
    case CSR_MENVCFG: h->menvcfg = nv & (MENVCFG_FIOM | MENVCFG_STCE); break;
    case CSR_MCOUNTINHIBIT: mcountinhibit_write(h, nv & 5); break;
    case CSR_MSCRATCH: h->mscratch = nv; break;
    case CSR_MEPC: h->mepc = nv & ~1ull; break;
    case CSR_MCAUSE: h->mcause = nv; break;
    case CSR_MTVAL: h->mtval = nv; break;
    case CSR_MIP: {
        /* CSRRS/CSRRC modify the software bits only, never the wires that reads OR in
         * (priv spec 3.1.9: SEIP). */
        if (op != 0) nv = op == 1 ? (h->mip_sw | val) : (h->mip_sw & ~val);
        uint64_t wm = MIP_SSIP | MIP_SEIP | ((h->menvcfg & MENVCFG_STCE) ? 0 : MIP_STIP);
        h->mip_sw = (h->mip_sw & ~wm) | (nv & wm);
        break;
    }
    case CSR_MCYCLE: ctr_write(h, 0, nv); break;
    case CSR_MINSTRET: ctr_write(h, 2, nv); break;
    default:
        if (csr >= CSR_PMPCFG0 && csr < CSR_PMPCFG0 + 16) {
            pmpcfg_write(h, (csr - CSR_PMPCFG0) * 4, nv);
            pmp_update(h);
            tlb_flush_all(h);
        } else if (csr >= CSR_PMPADDR0 && csr < CSR_PMPADDR0 + PMP_ENTRIES) {
            unsigned n = csr - CSR_PMPADDR0;
            bool next_tor_locked =
                n + 1 < PMP_ENTRIES && pmp_locked(h, n + 1) && ((h->pmpcfg[n + 1] >> 3) & 3) == 1;
            if (!pmp_locked(h, n) && !next_tor_locked) h->pmpaddr[n] = nv & ((1ull << 54) - 1);
            pmp_update(h);
            tlb_flush_all(h);
        } else if (csr >= CSR_TSELECT && csr <= CSR_TINFO) {
            trigger_csr_write(h, csr, nv);
        }
        /* pmpaddr16..63: read-only zero */
        break;
    }
    return 0;
}

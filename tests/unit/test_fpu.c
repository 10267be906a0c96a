/* Tests for the RV64 F/D unit (src/cpu/riscv/fpu.c).
 *
 * Three kinds of checks:
 *  1. targeted cases whose expected values are worked out by hand from the spec;
 *  2. host fast path against the exact software path on random inputs (RNE/RTZ/RDN/RUP);
 *  3. QEMU as the reference: the groups of vectors below are generated from one seeded stream
 *     and run through real instructions under qemu-riscv64; the table ref_hashes holds a hash of
 *     each group's results (f rd, x rd, fflags). This file doubles as that generator:
 *
 *       riscv64-linux-gnu-gcc -O2 -static -DFPU_REFGEN tests/unit/test_fpu.c -o /tmp/fpu_refgen
 *       qemu-riscv64 /tmp/fpu_refgen            # prints the ref_hashes table
 *       qemu-riscv64 /tmp/fpu_refgen G          # dumps every vector of group G
 *
 *     and FPU_DUMP_GROUP=G ./build/unit-tests fpu_qemu dumps the same group from vessel, so a
 *     mismatching group can be diffed vector by vector. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- shared between the unit test and the RISC-V generator: integer-only code ---- */

struct vec {
    uint32_t insn, frm;
    uint64_t a, b, c, xin; /* f11, f12, f13, x11 */
};
struct vout {
    uint64_t f, x; /* f15, x15 */
    uint32_t flags;
};
#define SENTINEL 0x5555aaaa5555aaaaull
#define RD       15u
#define RS1      11u
#define RS2      12u
#define RS3      13u

/* an OP-FP style encoding with the fixed registers above */
#define ENC(f7, rs2, rm, opc)                                                                      \
    ((uint32_t)(f7) << 25 | (uint32_t)(rs2) << 20 | RS1 << 15 | (uint32_t)(rm) << 12 | RD << 7 |   \
     (uint32_t)(opc))

/* What an operand of a template is: which f format (for random inputs), or unused. */
enum src { S_NONE, S_S, S_D };
struct tmpl {
    const char *name;
    uint32_t insn;  /* with rm = DYN (7) where the instruction has an rm field */
    uint8_t has_rm; /* 1: run under every frm; 2: static rm in insn (frm varied as a decoy) */
    uint8_t sa, sb, sc, xin;
};

#define R2(n, f7, rm)                                                                              \
    {                                                                                              \
        n, ENC(f7, RS2, rm, 0x53), rm == 7, S_S + (f7 & 1), S_S + (f7 & 1), 0, 0                   \
    }
#define R1(n, f7, rs2, rm, s, hasrm)                                                               \
    {                                                                                              \
        n, ENC(f7, rs2, rm, 0x53), hasrm, s, 0, 0, 0                                               \
    }
#define RX(n, f7, rs2, rm)                                                                         \
    {                                                                                              \
        n, ENC(f7, rs2, rm, 0x53), rm == 7, 0, 0, 0, 1                                             \
    }
#define R4(n, opc, fmt)                                                                            \
    {                                                                                              \
        n, (RS3 << 27) | ENC(fmt, RS2, 7, opc), 1, S_S + fmt, S_S + fmt, S_S + fmt, 0              \
    }

static const struct tmpl tmpls[] = {
    R2("fadd.s", 0x00, 7),
    R2("fadd.d", 0x01, 7),
    R2("fsub.s", 0x04, 7),
    R2("fsub.d", 0x05, 7),
    R2("fmul.s", 0x08, 7),
    R2("fmul.d", 0x09, 7),
    R2("fdiv.s", 0x0c, 7),
    R2("fdiv.d", 0x0d, 7),
    R1("fsqrt.s", 0x2c, 0, 7, S_S, 1),
    R1("fsqrt.d", 0x2d, 0, 7, S_D, 1),
    R4("fmadd.s", 0x43, 0),
    R4("fmadd.d", 0x43, 1),
    R4("fmsub.s", 0x47, 0),
    R4("fmsub.d", 0x47, 1),
    R4("fnmsub.s", 0x4b, 0),
    R4("fnmsub.d", 0x4b, 1),
    R4("fnmadd.s", 0x4f, 0),
    R4("fnmadd.d", 0x4f, 1),
    R2("fsgnj.s", 0x10, 0),
    R2("fsgnjn.s", 0x10, 1),
    R2("fsgnjx.s", 0x10, 2),
    R2("fsgnj.d", 0x11, 0),
    R2("fsgnjn.d", 0x11, 1),
    R2("fsgnjx.d", 0x11, 2),
    R2("fmin.s", 0x14, 0),
    R2("fmax.s", 0x14, 1),
    R2("fmin.d", 0x15, 0),
    R2("fmax.d", 0x15, 1),
    R2("fle.s", 0x50, 0),
    R2("flt.s", 0x50, 1),
    R2("feq.s", 0x50, 2),
    R2("fle.d", 0x51, 0),
    R2("flt.d", 0x51, 1),
    R2("feq.d", 0x51, 2),
    R1("fcvt.s.d", 0x20, 1, 7, S_D, 1),
    R1("fcvt.d.s", 0x21, 0, 7, S_S, 1),
    R1("fcvt.w.s", 0x60, 0, 7, S_S, 1),
    R1("fcvt.wu.s", 0x60, 1, 7, S_S, 1),
    R1("fcvt.l.s", 0x60, 2, 7, S_S, 1),
    R1("fcvt.lu.s", 0x60, 3, 7, S_S, 1),
    R1("fcvt.w.d", 0x61, 0, 7, S_D, 1),
    R1("fcvt.wu.d", 0x61, 1, 7, S_D, 1),
    R1("fcvt.l.d", 0x61, 2, 7, S_D, 1),
    R1("fcvt.lu.d", 0x61, 3, 7, S_D, 1),
    RX("fcvt.s.w", 0x68, 0, 7),
    RX("fcvt.s.wu", 0x68, 1, 7),
    RX("fcvt.s.l", 0x68, 2, 7),
    RX("fcvt.s.lu", 0x68, 3, 7),
    RX("fcvt.d.w", 0x69, 0, 7),
    RX("fcvt.d.wu", 0x69, 1, 7),
    RX("fcvt.d.l", 0x69, 2, 7),
    RX("fcvt.d.lu", 0x69, 3, 7),
    R1("fmv.x.w", 0x70, 0, 0, S_S, 0),
    R1("fclass.s", 0x70, 0, 1, S_S, 0),
    R1("fmv.x.d", 0x71, 0, 0, S_D, 0),
    R1("fclass.d", 0x71, 0, 1, S_D, 0),
    RX("fmv.w.x", 0x78, 0, 0),
    RX("fmv.d.x", 0x79, 0, 0),
    /* static rounding modes (frm set to a different mode) */
    {"fadd.s/rmm", ENC(0x00, RS2, 4, 0x53), 2, S_S, S_S, 0, 0},
    {"fmul.d/rmm", ENC(0x09, RS2, 4, 0x53), 2, S_D, S_D, 0, 0},
    {"fdiv.d/rup", ENC(0x0d, RS2, 3, 0x53), 2, S_D, S_D, 0, 0},
    {"fsqrt.s/rdn", ENC(0x2c, 0, 2, 0x53), 2, S_S, 0, 0, 0},
    {"fmadd.d/rtz", (RS3 << 27) | ENC(1, RS2, 1, 0x43), 2, S_D, S_D, S_D, 0},
    {"fcvt.w.d/rmm", ENC(0x61, 0, 4, 0x53), 2, S_D, 0, 0, 0},
    {"fcvt.s.l/rmm", ENC(0x68, 2, 4, 0x53), 2, 0, 0, 0, 1},
};
#define NTMPL (int)(sizeof(tmpls) / sizeof(tmpls[0]))

static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

static const uint64_t special_s[] = {
    0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7fc12345,
    0x7f800001, 0xff8abcde, 0x7fa00000, 0x00000001, 0x80000001, 0x007fffff, 0x807fffff,
    0x00800000, 0x80800000, 0x7f7fffff, 0xff7fffff, 0x3f800000, 0xbf800000, 0x3f000000,
    0xbf000000, 0x3fc00000, 0x40200000, 0xc0200000, 0x4f000000, 0xcf000000, 0x4effffff,
    0x4f800000, 0x4f7fffff, 0x5f000000, 0xdf000000, 0x5f800000, 0x5effffff, 0x4b800000,
    0x4b800001, 0x3f800001, 0x3f7fffff, 0x33800000, 0x00400000, 0x00fffffe, 0x3f000001,
};
static const uint64_t special_d[] = {
    0x0000000000000000, 0x8000000000000000, 0x7ff0000000000000, 0xfff0000000000000,
    0x7ff8000000000000, 0xfff8000000000000, 0x7ff8000000012345, 0x7ff0000000000001,
    0xfff4000000000000, 0x0000000000000001, 0x8000000000000001, 0x000fffffffffffff,
    0x0010000000000000, 0x8010000000000000, 0x7fefffffffffffff, 0xffefffffffffffff,
    0x3ff0000000000000, 0xbff0000000000000, 0x3fe0000000000000, 0xbfe0000000000000,
    0x3ff8000000000000, 0x4004000000000000, 0xc004000000000000, 0x41e0000000000000,
    0xc1e0000000000000, 0x41dfffffffc00000, 0xc1e0000000100000, 0xc1e0000000200000,
    0x41f0000000000000, 0x41efffffffe00000, 0x43e0000000000000, 0xc3e0000000000000,
    0x43dfffffffffffff, 0x43f0000000000000, 0x43efffffffffffff, 0x3ff0000000000001,
    0x3fefffffffffffff, 0x3ca0000000000000, 0x36a0000000000000, 0x47efffffe0000000,
    0x47efffffffffffff, 0x3810000000000000, 0x380fffffffffffff, 0x36a8000000000000,
};

/* A random value of one format, biased toward the cases where implementations go wrong. ref is
 * another operand (or 0): some values take an exponent close to it, for cancellation and ties. */
static uint64_t gen_f(uint64_t *s, int is_d, uint64_t ref)
{
    const int p = is_d ? 53 : 24, ebits = is_d ? 11 : 8, width = is_d ? 64 : 32;
    const int64_t emax_field = (1 << ebits) - 1, bias = (1 << (ebits - 1)) - 1;
    const uint64_t fmask = (1ull << (p - 1)) - 1;
    uint64_t r = rng_next(s), frac, v;
    int64_t e;

    switch (r % 16) {
    case 0:
    case 1:
        if (is_d) return special_d[(r >> 8) % (sizeof(special_d) / 8)];
        return special_s[(r >> 8) % (sizeof(special_s) / 8)];
    case 2:
    case 3: v = rng_next(s); return is_d ? v : (uint32_t)v;
    case 4: /* sparse significand: products and sums land exactly on ties */
    case 5:
        frac = 0;
        for (int i = (int)((r >> 8) % 3); i >= 0; i--)
            frac |= 1ull << (rng_next(s) % (p - 1));
        if ((r >> 12) & 1) frac = fmask & ~frac;
        if (((r >> 20) & 3) == 0) /* a power of two: divisions land on subnormal ties */
            frac = 0;
        e = bias + (int64_t)((r >> 16) % 9) - 4;
        break;
    case 6: /* subnormal or just above */
    case 13:
        frac = rng_next(s) & fmask;
        if ((r >> 8) & 1) frac >>= rng_next(s) % (p - 1);
        e = (int64_t)((r >> 16) % 3);
        break;
    case 7: /* near overflow */
        frac = rng_next(s) & fmask;
        e = emax_field - 1 - (int64_t)((r >> 16) % 3);
        break;
    case 8: /* near the integer-conversion limits: 2^23..2^65 */
        frac = rng_next(s) & fmask;
        if ((r >> 8) & 1) frac &= ~((1ull << (rng_next(s) % (p - 1))) - 1);
        e = bias + 23 + (int64_t)((r >> 16) % 43);
        break;
    case 9: /* small values for conversions: |x| < 4 with few fraction bits */
        frac = (rng_next(s) & fmask) & ~((1ull << (p - 1 - (int)((r >> 8) % 4))) - 1);
        e = bias - 2 + (int64_t)((r >> 16) % 4);
        break;
    case 10:
    case 11:
    case 12: /* exponent close to the other operand */
        if (ref) {
            int64_t re = (int64_t)((ref >> (p - 1)) & (uint64_t)emax_field);
            frac = rng_next(s) & fmask;
            if ((r >> 8) & 1) frac &= ~((1ull << (rng_next(s) % (p - 1))) - 1);
            e = re + (int64_t)((r >> 16) % 5) - 2;
            if (r & (1ull << 30)) /* and a product's exponent for FMA cancellation */
                e = 2 * re - bias + (int64_t)((r >> 16) % 5) - 2;
            if (e < 0 || e >= emax_field) e = bias;
            break;
        }
        /* fall through */
    default:
        frac = rng_next(s) & fmask;
        e = bias + (int64_t)((r >> 16) % 61) - 30;
        break;
    }
    v = ((uint64_t)e << (p - 1)) | frac;
    if ((r >> 40) & 1) v |= 1ull << (width - 1);
    return v;
}

static uint64_t gen_x(uint64_t *s)
{
    uint64_t r = rng_next(s), v = rng_next(s);
    switch (r % 8) {
    case 0: return (uint64_t)((int64_t)(v % 2001) - 1000);
    case 1: return (uint64_t)(int64_t)(int32_t)v;
    case 2: return (uint32_t)v;
    case 3: { /* 2^k +- small: rounding boundaries of both formats */
        uint64_t k = 1ull << (r >> 8) % 64;
        return k + (uint64_t)((int64_t)(v % 9) - 4);
    }
    case 4: /* sparse: exact ties when converting */
        return (1ull << (v % 64)) | (1ull << ((v >> 8) % 64)) | (1ull << ((v >> 16) % 64));
    case 5: return (r >> 8) & 1 ? 0 - (v >> (v % 40)) : v >> (v % 40);
    default: return v;
    }
}

/* S operands are NaN-boxed, except now and then, to exercise the unboxed-reads-as-NaN rule. */
static uint64_t gen_operand(uint64_t *s, int src, uint64_t ref)
{
    uint64_t v;
    if (src == S_NONE) return rng_next(s);
    v = gen_f(s, src == S_D, ref);
    if (src == S_S) {
        uint64_t r = rng_next(s);
        v = (r % 32) ? (0xffffffff00000000ull | v) : ((r >> 8) & 0xffffffff00000000ull) | v;
    }
    return v;
}

static const uint64_t special_x[] = {
    0,
    1,
    0xffffffffffffffff,
    0x7fffffff,
    0xffffffff80000000,
    0x80000000,
    0xffffffff,
    0x100000000,
    0x7fffffffffffffff,
    0x8000000000000000,
    16777217,
    0xfffffffffeffffff,
    0x0020000000000001,
    0xffffffff01000001,
    0x12345678ffffffff,
    0x8000000000000400,
    0x8000000000000401,
    0x7ffffffffffffe00,
    0x8000008000000000,
    0x0000000002000002,
    0x7fffffc0,
    0xffffff80,
};
/* FMA addends for the exhaustive special-value groups */
static const uint64_t special_c_s[] = {0,          0x80000000, 0x7f800000, 0xff800000,
                                       0x7fc00000, 0x7f800001, 0x3f800000, 0x80000001};
static const uint64_t special_c_d[] = {0,
                                       0x8000000000000000,
                                       0x7ff0000000000000,
                                       0xfff0000000000000,
                                       0x7ff8000000000000,
                                       0x7ff0000000000001,
                                       0x3ff0000000000000,
                                       0x8000000000000001};
#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))
#define NSPEC_S  (NELEM(special_s) + 1) /* + one improperly boxed value */

/* Groups 0..nrandom-1: GROUP_VECTORS random vectors of one template and frm. Then one group per
 * template with every combination of special operands (FMA addends from a shorter list). */
struct group {
    int t;
    uint32_t frm; /* for has_rm == 2: the decoy frm */
    int special;
};

static int nrandom_groups(void)
{
    int n = 0;
    for (int t = 0; t < NTMPL; t++)
        n += tmpls[t].has_rm == 1 ? 5 : 1;
    return n;
}

static int ngroups(void)
{
    return nrandom_groups() + NTMPL;
}

static struct group group_at(int g)
{
    if (g >= nrandom_groups()) return (struct group){g - nrandom_groups(), 1, 1};
    for (int t = 0; t < NTMPL; t++) {
        int k = tmpls[t].has_rm == 1 ? 5 : 1;
        if (g < k) return (struct group){t, tmpls[t].has_rm == 1 ? (uint32_t)g : 1, 0};
        g -= k;
    }
    return (struct group){-1, 0, 0};
}

#define GROUP_VECTORS 3000

static int nspecial(int src)
{
    return src == S_S ? NSPEC_S : src == S_D ? NELEM(special_d) : 1;
}

static uint64_t special_operand(int src, int i)
{
    if (src == S_D) return special_d[i];
    if (src == S_S) return i < NELEM(special_s) ? 0xffffffff00000000ull | special_s[i] : 0x3f800000;
    return 0x0123456789abcdefull;
}

static int group_size(int g)
{
    struct group gr = group_at(g);
    const struct tmpl *t = &tmpls[gr.t];
    if (!gr.special) return GROUP_VECTORS;
    int n = nspecial(t->sa) * nspecial(t->sb) * (t->sc ? NELEM(special_c_s) : 1) *
            (t->xin ? NELEM(special_x) : 1);
    return t->has_rm == 1 && !t->sc ? n * 5 : n; /* FMAs cycle frm instead */
}

static struct vec group_vec(int g, int i, uint64_t *s)
{
    struct group gr = group_at(g);
    const struct tmpl *t = &tmpls[gr.t];
    struct vec v = {.insn = t->insn, .frm = gr.frm};
    if (gr.special) {
        int na = nspecial(t->sa), nb = nspecial(t->sb), nc = t->sc ? NELEM(special_c_s) : 1;
        int nx = t->xin ? NELEM(special_x) : 1, k = i;
        v.a = special_operand(t->sa, k % na);
        k /= na;
        v.b = special_operand(t->sb, k % nb);
        k /= nb;
        v.c = t->sc == S_S   ? 0xffffffff00000000ull | special_c_s[k % nc]
              : t->sc == S_D ? special_c_d[k % nc]
                             : 0;
        k /= nc;
        v.xin = special_x[k % nx];
        k /= nx;
        if (t->has_rm == 1) v.frm = t->sc ? (uint32_t)(i % 5) : (uint32_t)k;
        return v;
    }
    v.a = gen_operand(s, t->sa, 0);
    v.b = gen_operand(s, t->sb, v.a);
    v.c = gen_operand(s, t->sc, v.a);
    v.xin = t->xin ? gen_x(s) : rng_next(s);
    return v;
}

static uint64_t hash_out(uint64_t h, const struct vout *o)
{
    uint64_t w[3] = {o->f, o->x, o->flags};
    for (int i = 0; i < 3; i++) {
        h ^= w[i];
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    return h;
}

/* Run group g through exec; dump prints every vector. Returns the group's hash. */
static uint64_t run_group(int g, void (*exec)(const struct vec *, struct vout *), int dump)
{
    uint64_t s = 0x9e3779b97f4a7c15ull ^ ((uint64_t)(g + 1) * 0xbf58476d1ce4e5b9ull);
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < group_size(g); i++) {
        struct vec v = group_vec(g, i, &s);
        struct vout o;
        exec(&v, &o);
        h = hash_out(h, &o);
        if (dump)
            printf("%d insn=%08x frm=%u a=%016llx b=%016llx c=%016llx x=%016llx -> f=%016llx "
                   "x=%016llx fl=%02x\n",
                   i, v.insn, v.frm, (unsigned long long)v.a, (unsigned long long)v.b,
                   (unsigned long long)v.c, (unsigned long long)v.xin, (unsigned long long)o.f,
                   (unsigned long long)o.x, o.flags);
    }
    return h;
}

#ifdef FPU_REFGEN
/* ---- the RISC-V side: run each vector through the real instruction ---- */
#include <sys/mman.h>

struct tramp_io {
    uint64_t a, b, c, fsent, xin, xsent, frm, fout, xout, flags;
};
void refgen_tramp(struct tramp_io *io);
extern const char refgen_slot[], refgen_end[];
__asm__(".pushsection .text\n.option push\n.option norvc\n"
        ".globl refgen_tramp\nrefgen_tramp:\n"
        "fld f11, 0(a0)\nfld f12, 8(a0)\nfld f13, 16(a0)\nfld f15, 24(a0)\n"
        "ld a1, 32(a0)\nld a5, 40(a0)\nld t0, 48(a0)\nfsrm t0\nfsflags zero\n"
        ".globl refgen_slot\nrefgen_slot:\nnop\n"
        "fsd f15, 56(a0)\nsd a5, 64(a0)\nfrflags t0\nsd t0, 72(a0)\nret\n"
        ".globl refgen_end\nrefgen_end:\n"
        ".option pop\n.popsection\n");

static uint8_t *code;
static uint32_t code_insn;

static void exec_real(const struct vec *v, struct vout *o)
{
    size_t slot = (size_t)(refgen_slot - (const char *)refgen_tramp);
    size_t len = (size_t)(refgen_end - (const char *)refgen_tramp);
    if (v->insn != code_insn) {
        memcpy(code, (const void *)refgen_tramp, len);
        memcpy(code + slot, &v->insn, 4);
        __builtin___clear_cache((char *)code, (char *)code + len);
        code_insn = v->insn;
    }
    struct tramp_io io = {v->a, v->b, v->c, SENTINEL, v->xin, SENTINEL, v->frm, 0, 0, 0};
    ((void (*)(struct tramp_io *))(void *)code)(&io);
    o->f = io.fout;
    o->x = io.xout;
    o->flags = (uint32_t)io.flags;
}

int main(int argc, char **argv)
{
    code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED) return 1;
    if (argc > 1) {
        run_group(atoi(argv[1]), exec_real, 1);
        return 0;
    }
    for (int g = 0; g < ngroups(); g++) {
        struct group gr = group_at(g);
        printf("    0x%016llxull, /* %d %s frm=%u */\n",
               (unsigned long long)run_group(g, exec_real, 0), g, tmpls[gr.t].name, gr.frm);
    }
    return 0;
}

#else /* ---- the unit tests ---- */
#include "test.h"
#include "cpu/riscv/fpu.h"

static struct fpu_state st;
static uint64_t xr[32];

/* Execute v on vessel's FPU with the same register assignment as the generator. */
static void exec_vessel(const struct vec *v, struct vout *o)
{
    memset(&st, 0, sizeof(st));
    memset(xr, 0, sizeof(xr));
    st.f[RS1] = v->a;
    st.f[RS2] = v->b;
    st.f[RS3] = v->c;
    st.f[RD] = SENTINEL;
    xr[RS1] = v->xin;
    xr[RD] = SENTINEL;
    st.frm = v->frm;
    int rc = fpu_exec(&st, xr, v->insn);
    o->f = st.f[RD];
    o->x = xr[RD];
    o->flags = rc ? 0xff : st.fflags;
}

/* Shorthands: run insn with operands, return the f or x result; *fl gets fflags. */
static uint64_t run(uint32_t insn, uint64_t a, uint64_t b, uint64_t c, uint32_t frm, uint32_t *fl,
                    int want_x)
{
    struct vec v = {insn, frm, a, b, c, a};
    struct vout o;
    exec_vessel(&v, &o);
    *fl = o.flags;
    return want_x ? o.x : o.f;
}

#define BOX(v) (0xffffffff00000000ull | (uint32_t)(v))

/* funct7 values (fmt in bit 0) */
enum {
    F_ADD = 0x00,
    F_SUB = 0x04,
    F_MUL = 0x08,
    F_DIV = 0x0c,
    F_SQRT = 0x2c,
    F_SGNJ = 0x10,
    F_MINMAX = 0x14,
    F_CVTFF = 0x20,
    F_CMP = 0x50,
    F_CVTFI = 0x60,
    F_CVTIF = 0x68,
    F_MVX = 0x70,
    F_MVF = 0x78
};
enum { RNE, RTZ, RDN, RUP, RMM, DYN = 7 };
enum { NX = 1, UF = 2, OF = 4, DZ = 8, NV = 16 };

/* binary op on S (fmt 0) or D (fmt 1) with a given mode */
static uint64_t op2(uint32_t f7, int d, uint64_t a, uint64_t b, uint32_t rm, uint32_t *fl)
{
    if (!d) {
        a = BOX(a);
        b = BOX(b);
    }
    uint64_t r = run(ENC(f7 | (uint32_t)d, RS2, DYN, 0x53), a, b, 0, rm, fl, 0);
    return d ? r : (r >> 32 == 0xffffffff ? (uint32_t)r : 0xdeadull); /* S results are boxed */
}

static uint64_t fma4(uint32_t opc, int d, uint64_t a, uint64_t b, uint64_t c, uint32_t rm,
                     uint32_t *fl)
{
    if (!d) {
        a = BOX(a);
        b = BOX(b);
        c = BOX(c);
    }
    uint64_t r = run((RS3 << 27) | ENC((uint32_t)d, RS2, DYN, opc), a, b, c, rm, fl, 0);
    return d ? r : (r >> 32 == 0xffffffff ? (uint32_t)r : 0xdeadull);
}

/* FSQRT (rs2 = 0) */
static uint64_t sqrt1(int d, uint64_t a, uint32_t rm, uint32_t *fl)
{
    uint64_t r = run(ENC(F_SQRT | (uint32_t)d, 0, DYN, 0x53), d ? a : BOX(a), 0, 0, rm, fl, 0);
    return d ? r : (r >> 32 == 0xffffffff ? (uint32_t)r : 0xdeadull);
}

/* unary f -> x (conversions, fclass, fmv) */
static uint64_t op_fx(uint32_t f7, uint32_t rs2, uint32_t rm_field, uint64_t a, uint32_t frm,
                      uint32_t *fl)
{
    return run(ENC(f7, rs2, rm_field, 0x53), a, 0, 0, frm, fl, 1);
}

/* x -> f conversions */
static uint64_t op_xf(uint32_t f7, uint32_t rs2, uint64_t x, uint32_t frm, uint32_t *fl)
{
    return run(ENC(f7, rs2, DYN, 0x53), x, 0, 0, frm, fl, 0);
}

#define EXPECT(expr, val, flags)                                                                   \
    do {                                                                                           \
        uint32_t fl_;                                                                              \
        uint64_t r_ = (expr);                                                                      \
        (void)fl;                                                                                  \
        fl_ = *fl;                                                                                 \
        CHECK_EQ(r_, (val));                                                                       \
        CHECK_EQ(fl_, (flags));                                                                    \
    } while (0)

/* Checks on both paths: the host fast path and the software path must both be right. */
#define BOTH_PATHS(...)                                                                            \
    do {                                                                                           \
        for (int path_ = 1; path_ >= 0; path_--) {                                                 \
            fpu_set_host_path(path_);                                                              \
            __VA_ARGS__;                                                                           \
        }                                                                                          \
        fpu_set_host_path(1);                                                                      \
    } while (0)

static uint32_t flv;
static uint32_t *const fl = &flv;

/* single constants */
#define S_ONE              0x3f800000u
#define S_TWO              0x40000000u
#define S_INF              0x7f800000u
#define S_NINF             0xff800000u
#define S_QNAN             0x7fc00000u
#define S_SNAN             0x7f800001u
#define S_MAX              0x7f7fffffu
#define D_ONE              0x3ff0000000000000ull
#define D_INF              0x7ff0000000000000ull
#define D_QNAN             0x7ff8000000000000ull
#define D_SNAN             0x7ff0000000000001ull
#define D_MAX              0x7fefffffffffffffull
#define D_NEG              0x8000000000000000ull

TEST(fpu_add_basic_and_specials)
{
    BOTH_PATHS({
        EXPECT(op2(F_ADD, 0, S_ONE, S_TWO, RNE, fl), 0x40400000, 0);
        EXPECT(op2(F_ADD, 1, D_ONE, 0x4000000000000000, RNE, fl), 0x4008000000000000, 0);
        EXPECT(op2(F_ADD, 0, S_INF, S_NINF, RNE, fl), S_QNAN, NV);
        EXPECT(op2(F_SUB, 1, D_INF, D_INF, RNE, fl), D_QNAN, NV);
        EXPECT(op2(F_ADD, 0, S_INF, S_ONE, RNE, fl), S_INF, 0);
        /* exact zero sums: +0, except -0 in RDN (IEEE 754 6.3) */
        for (uint32_t rm = 0; rm < 5; rm++)
            EXPECT(op2(F_SUB, 0, S_ONE, S_ONE, rm, fl), rm == RDN ? 0x80000000 : 0, 0);
        EXPECT(op2(F_ADD, 1, D_ONE, D_ONE | D_NEG, RDN, fl), D_NEG, 0);
        EXPECT(op2(F_ADD, 0, 0x80000000, 0x80000000, RNE, fl), 0x80000000, 0);
        EXPECT(op2(F_ADD, 0, 0x80000000, 0, RNE, fl), 0, 0);
        EXPECT(op2(F_ADD, 0, 0x80000000, 0, RDN, fl), 0x80000000, 0);
        EXPECT(op2(F_SUB, 1, 0, 0, RNE, fl), 0, 0);
        /* NaNs: result canonical; NV only for signalling */
        EXPECT(op2(F_ADD, 0, S_QNAN, S_ONE, RNE, fl), S_QNAN, 0);
        EXPECT(op2(F_ADD, 0, 0xffc12345, S_ONE, RNE, fl), S_QNAN, 0);
        EXPECT(op2(F_ADD, 0, S_ONE, S_SNAN, RNE, fl), S_QNAN, NV);
        EXPECT(op2(F_ADD, 1, 0xfff8000000abcdef, D_ONE, RNE, fl), D_QNAN, 0);
        EXPECT(op2(F_MUL, 1, D_SNAN, D_ONE, RNE, fl), D_QNAN, NV);
        EXPECT(op2(F_ADD, 0, S_SNAN, S_QNAN, RUP, fl), S_QNAN, NV);
    });
}

TEST(fpu_rounding_modes_ties)
{
    BOTH_PATHS({
        /* 1 + 2^-24 in single: exactly half an ulp above 1 (even) */
        static const uint32_t pos[5] = {0x3f800000, 0x3f800000, 0x3f800000, 0x3f800001, 0x3f800001};
        static const uint32_t neg[5] = {0xbf800000, 0xbf800000, 0xbf800001, 0xbf800000, 0xbf800001};
        for (uint32_t rm = 0; rm < 5; rm++) {
            EXPECT(op2(F_ADD, 0, S_ONE, 0x33800000, rm, fl), pos[rm], NX);
            EXPECT(op2(F_ADD, 0, 0xbf800000, 0xb3800000, rm, fl), neg[rm], NX);
        }
        /* tie above an odd value: RNE and RMM both go up */
        EXPECT(op2(F_ADD, 0, 0x3f800001, 0x33800000, RNE, fl), 0x3f800002, NX);
        EXPECT(op2(F_ADD, 0, 0x3f800001, 0x33800000, RMM, fl), 0x3f800002, NX);
        EXPECT(op2(F_ADD, 0, 0x3f800001, 0x33800000, RTZ, fl), 0x3f800001, NX);
        /* double: 1 + 2^-53 */
        EXPECT(op2(F_ADD, 1, D_ONE, 0x3ca0000000000000, RNE, fl), D_ONE, NX);
        EXPECT(op2(F_ADD, 1, D_ONE, 0x3ca0000000000000, RMM, fl), D_ONE + 1, NX);
        EXPECT(op2(F_ADD, 1, D_ONE | D_NEG, 0xbca0000000000000, RMM, fl), (D_ONE + 1) | D_NEG, NX);
        EXPECT(op2(F_ADD, 1, D_ONE | D_NEG, 0xbca0000000000000, RUP, fl), D_ONE | D_NEG, NX);
        EXPECT(op2(F_ADD, 1, D_ONE | D_NEG, 0xbca0000000000000, RDN, fl), (D_ONE + 1) | D_NEG, NX);
        /* not a tie: 1 + 3*2^-25 rounds up in RNE, RMM */
        EXPECT(op2(F_ADD, 0, S_ONE, 0x33c00000, RNE, fl), 0x3f800001, NX);
        EXPECT(op2(F_ADD, 0, S_ONE, 0x33c00000, RTZ, fl), 0x3f800000, NX);
        /* product tie: (1+2^-12)^2 = 1 + 2^-11 + 2^-24 */
        EXPECT(op2(F_MUL, 0, 0x3f800800, 0x3f800800, RNE, fl), 0x3f801000, NX);
        EXPECT(op2(F_MUL, 0, 0x3f800800, 0x3f800800, RMM, fl), 0x3f801001, NX);
        /* 1/3 in each mode (0x3eaaaaab is RNE) */
        EXPECT(op2(F_DIV, 0, S_ONE, 0x40400000, RNE, fl), 0x3eaaaaab, NX);
        EXPECT(op2(F_DIV, 0, S_ONE, 0x40400000, RTZ, fl), 0x3eaaaaaa, NX);
        EXPECT(op2(F_DIV, 0, S_ONE, 0x40400000, RMM, fl), 0x3eaaaaab, NX);
        EXPECT(op2(F_DIV, 0, 0xbf800000, 0x40400000, RUP, fl), 0xbeaaaaaa, NX);
        EXPECT(op2(F_DIV, 0, 0xbf800000, 0x40400000, RDN, fl), 0xbeaaaaab, NX);
    });
}

TEST(fpu_overflow_underflow)
{
    BOTH_PATHS({
        static const uint32_t pos[5] = {S_INF, S_MAX, S_MAX, S_INF, S_INF};
        static const uint32_t neg[5] = {S_NINF, 0xff7fffff, S_NINF, 0xff7fffff, S_NINF};
        for (uint32_t rm = 0; rm < 5; rm++) {
            EXPECT(op2(F_ADD, 0, S_MAX, S_MAX, rm, fl), pos[rm], OF | NX);
            EXPECT(op2(F_MUL, 0, 0xff7fffff, S_TWO, rm, fl), neg[rm], OF | NX);
        }
        EXPECT(op2(F_MUL, 1, D_MAX, 0x4000000000000000, RTZ, fl), D_MAX, OF | NX);
        EXPECT(op2(F_MUL, 1, D_MAX, 0x4000000000000000, RMM, fl), D_INF, OF | NX);
        /* exact subnormal results raise nothing */
        EXPECT(op2(F_MUL, 0, 0x00800000, 0x3f000000, RNE, fl), 0x00400000, 0);
        /* half of the smallest subnormal: a tie between 0 and it */
        static const uint32_t half_min[5] = {0, 0, 0, 1, 1};
        for (uint32_t rm = 0; rm < 5; rm++)
            EXPECT(op2(F_MUL, 0, 0x00000001, 0x3f000000, rm, fl), half_min[rm], UF | NX);
        EXPECT(op2(F_MUL, 0, 0x80000001, 0x3f000000, RDN, fl), 0x80000001, UF | NX);
        /* tininess after rounding: 2^-126 * (1 - 2^-46) rounds (RNE) to 2^-126 with an
         * unbounded exponent, so it is not tiny: NX but no UF. In RTZ it stays tiny. */
        EXPECT(op2(F_MUL, 0, 0x00fffffe, 0x3f000001, RNE, fl), 0x00800000, NX);
        EXPECT(op2(F_MUL, 0, 0x00fffffe, 0x3f000001, RMM, fl), 0x00800000, NX);
        EXPECT(op2(F_MUL, 0, 0x00fffffe, 0x3f000001, RUP, fl), 0x00800000, NX);
        EXPECT(op2(F_MUL, 0, 0x00fffffe, 0x3f000001, RTZ, fl), 0x007fffff, UF | NX);
        EXPECT(op2(F_MUL, 0, 0x00fffffe, 0x3f000001, RDN, fl), 0x007fffff, UF | NX);
        /* 2^-126 * (1 - 2^-24) is representable with an unbounded exponent: tiny, and rounds
         * (a tie, to even) up to 2^-126 with UF */
        EXPECT(op2(F_MUL, 0, 0x3f7fffff, 0x00800000, RNE, fl), 0x00800000, UF | NX);
        /* the same in double: 2^-1022 * (1 - 2^-106) */
        EXPECT(op2(F_MUL, 1, 0x001ffffffffffffe, 0x3fe0000000000001, RNE, fl), 0x0010000000000000,
               NX);
        EXPECT(op2(F_MUL, 1, 0x001ffffffffffffe, 0x3fe0000000000001, RTZ, fl), 0x000fffffffffffff,
               UF | NX);
        /* subnormal inputs */
        EXPECT(op2(F_ADD, 1, 1, 1, RNE, fl), 2, 0);
        EXPECT(op2(F_ADD, 0, 0x007fffff, 0x00000001, RNE, fl), 0x00800000, 0);
        EXPECT(op2(F_DIV, 0, 0x00000001, 0x40000000, RNE, fl), 0, UF | NX);
    });
}

TEST(fpu_div_sqrt)
{
    BOTH_PATHS({
        EXPECT(op2(F_DIV, 0, S_ONE, 0, RNE, fl), S_INF, DZ);
        EXPECT(op2(F_DIV, 0, 0xbf800000, 0, RNE, fl), S_NINF, DZ);
        EXPECT(op2(F_DIV, 1, D_ONE, D_NEG, RNE, fl), D_INF | D_NEG, DZ);
        EXPECT(op2(F_DIV, 0, 0, 0, RNE, fl), S_QNAN, NV);
        EXPECT(op2(F_DIV, 1, D_INF, D_INF, RNE, fl), D_QNAN, NV);
        EXPECT(op2(F_DIV, 1, D_INF, D_ONE, RNE, fl), D_INF, 0);
        EXPECT(op2(F_DIV, 1, D_ONE, D_INF | D_NEG, RNE, fl), D_NEG, 0);
        EXPECT(op2(F_DIV, 1, 0x4018000000000000, 0x4000000000000000, RNE, fl), 0x4008000000000000,
               0);
        EXPECT(sqrt1(0, 0x40800000, RNE, fl), S_TWO, 0);
        EXPECT(sqrt1(0, 0xbf800000, RNE, fl), S_QNAN, NV);
        EXPECT(sqrt1(0, 0x80000000, RNE, fl), 0x80000000, 0);
        EXPECT(sqrt1(0, S_INF, RNE, fl), S_INF, 0);
        EXPECT(sqrt1(0, S_NINF, RNE, fl), S_QNAN, NV);
        EXPECT(sqrt1(0, S_SNAN, RNE, fl), S_QNAN, NV);
        EXPECT(sqrt1(0, S_QNAN, RNE, fl), S_QNAN, 0);
        EXPECT(sqrt1(1, 0x4000000000000000, RNE, fl), 0x3ff6a09e667f3bcd, NX);
        EXPECT(sqrt1(1, 0x4000000000000000, RTZ, fl), 0x3ff6a09e667f3bcc, NX);
        EXPECT(sqrt1(1, 0x4000000000000000, RMM, fl), 0x3ff6a09e667f3bcd, NX);
        EXPECT(sqrt1(1, 1, RNE, fl), 0x1e60000000000000, 0); /* sqrt(2^-1074) */
        EXPECT(sqrt1(0, 2, RNE, fl), 0x1a800000, 0);         /* sqrt(2^-148) = 2^-74 */
    });
    /* fsqrt with rs2 != 0 is not an instruction */
    CHECK_EQ(fpu_exec(&st, xr, ENC(F_SQRT, 1, 0, 0x53)), -1);
}

TEST(fpu_fma)
{
    BOTH_PATHS({
        /* single rounding: (1+2^-12)^2 - 1 = 2^-11 + 2^-24 exactly; fmul then fadd gives 2^-11 */
        EXPECT(fma4(0x43, 0, 0x3f800800, 0x3f800800, 0xbf800000, RNE, fl), 0x3a000400, 0);
        EXPECT(fma4(0x47, 0, 0x3f800800, 0x3f800800, S_ONE, RNE, fl), 0x3a000400, 0);
        EXPECT(fma4(0x43, 1, 0x3ff0000001000000, 0x3ff0000001000000, 0xbff0000000000000, RNE, fl),
               0x3e40000000800000, 0);
        /* signs of the four forms */
        EXPECT(fma4(0x43, 0, S_TWO, 0x40400000, S_ONE, RNE, fl), 0x40e00000, 0); /* 7 */
        EXPECT(fma4(0x47, 0, S_TWO, 0x40400000, S_ONE, RNE, fl), 0x40a00000, 0); /* 5 */
        EXPECT(fma4(0x4b, 0, S_TWO, 0x40400000, S_ONE, RNE, fl), 0xc0a00000, 0); /* -5 */
        EXPECT(fma4(0x4f, 0, S_TWO, 0x40400000, S_ONE, RNE, fl), 0xc0e00000, 0); /* -7 */
        /* invalid: inf * 0, even with a quiet NaN addend (spec 11.6) */
        EXPECT(fma4(0x43, 0, S_INF, 0, S_QNAN, RNE, fl), S_QNAN, NV);
        EXPECT(fma4(0x43, 1, 0, D_INF | D_NEG, D_QNAN, RNE, fl), D_QNAN, NV);
        EXPECT(fma4(0x43, 1, 0, D_INF, D_ONE, RNE, fl), D_QNAN, NV);
        EXPECT(fma4(0x43, 0, S_QNAN, 0, S_ONE, RNE, fl), S_QNAN, 0);
        EXPECT(fma4(0x43, 0, S_ONE, S_ONE, S_SNAN, RNE, fl), S_QNAN, NV);
        EXPECT(fma4(0x43, 0, S_INF, S_ONE, S_NINF, RNE, fl), S_QNAN, NV);
        EXPECT(fma4(0x47, 0, S_INF, S_ONE, S_INF, RNE, fl), S_QNAN, NV);
        EXPECT(fma4(0x43, 0, S_INF, S_ONE, S_INF, RNE, fl), S_INF, 0);
        EXPECT(fma4(0x43, 0, S_ONE, S_ONE, S_NINF, RNE, fl), S_NINF, 0);
        /* exact zeros */
        EXPECT(fma4(0x43, 0, 0, S_ONE, 0x80000000, RNE, fl), 0, 0);
        EXPECT(fma4(0x43, 0, 0, S_ONE, 0x80000000, RDN, fl), 0x80000000, 0);
        EXPECT(fma4(0x43, 0, 0x80000000, S_ONE, 0x80000000, RNE, fl), 0x80000000, 0);
        EXPECT(fma4(0x4f, 0, S_ONE, S_ONE, 0xbf800000, RNE, fl), 0, 0);
        EXPECT(fma4(0x4f, 0, S_ONE, S_ONE, 0xbf800000, RDN, fl), 0x80000000, 0);
        EXPECT(fma4(0x4b, 0, 0, S_ONE, 0, RNE, fl), 0, 0);
        EXPECT(fma4(0x4f, 0, 0, S_ONE, 0, RNE, fl), 0x80000000, 0);
        /* zero product plus a subnormal is exact */
        EXPECT(fma4(0x43, 1, 0, D_ONE, 1, RNE, fl), 1, 0);
        /* tiny product far below a normal addend: only inexact, RUP nudges up */
        EXPECT(fma4(0x43, 1, 1, 1, D_ONE, RNE, fl), D_ONE, NX);
        EXPECT(fma4(0x43, 1, 1, 1, D_ONE, RUP, fl), D_ONE + 1, NX);
        EXPECT(fma4(0x47, 1, 1, 1, D_ONE, RUP, fl), 0xbfefffffffffffff, NX);
        EXPECT(fma4(0x47, 1, 1, 1, D_ONE, RDN, fl), D_ONE | D_NEG, NX);
        EXPECT(fma4(0x43, 1, 1, 1, D_ONE | D_NEG, RTZ, fl), 0xbfefffffffffffff, NX);
        /* overflow inside an FMA */
        EXPECT(fma4(0x43, 0, S_MAX, S_TWO, 0xff7fffff, RNE, fl), S_MAX, 0);
        EXPECT(fma4(0x43, 0, S_MAX, S_TWO, S_ONE, RTZ, fl), S_MAX, OF | NX);
        /* RMM tie: 1 + 2^-24 as (1+2^-12)^2 - 2^-11 */
        EXPECT(fma4(0x43, 0, 0x3f800800, 0x3f800800, 0xba000000, RMM, fl), 0x3f800001, NX);
        EXPECT(fma4(0x43, 0, 0x3f800800, 0x3f800800, 0xba000000, RNE, fl), 0x3f800000, NX);
    });
}

TEST(fpu_nan_boxing)
{
    uint32_t f7add = F_ADD;
    /* an unboxed single reads as the canonical NaN (quiet: no NV) */
    EXPECT(run(ENC(f7add, RS2, RNE, 0x53), 0x000000003f800000, BOX(S_ONE), 0, 0, fl, 0),
           BOX(S_QNAN), 0);
    EXPECT(run(ENC(f7add, RS2, RNE, 0x53), BOX(S_ONE), 0xfffffffe3f800000, 0, 0, fl, 0),
           BOX(S_QNAN), 0);
    /* FSGNJ.S does check the box: rs1 becomes 0x7fc00000, then takes rs2's sign */
    EXPECT(run(ENC(F_SGNJ, RS2, 0, 0x53), 0x123456783f800000, BOX(0xbf800000), 0, 0, fl, 0),
           BOX(0xffc00000), 0);
    EXPECT(run(ENC(F_SGNJ, RS2, 0, 0x53), BOX(0xbf800000), 0x00000000bf800000, 0, 0, fl, 0),
           BOX(0x3f800000), 0);
    /* FCLASS.S of an unboxed value: quiet NaN */
    EXPECT(op_fx(F_MVX, 0, 1, 0x3f800000, 0, fl), 1u << 9, 0);
    /* FMV.X.W moves the low bits regardless and sign-extends */
    EXPECT(op_fx(F_MVX, 0, 0, 0x123456789abcdef0, 0, fl), 0xffffffff9abcdef0, 0);
    EXPECT(op_fx(F_MVX, 0, 0, BOX(0x3f800000), 0, fl), 0x3f800000, 0);
    /* FMV.W.X boxes; FMV.D.X / FMV.X.D are raw */
    EXPECT(run(ENC(F_MVF, 0, 0, 0x53), 0, 0, 0, 0, fl, 0), BOX(0), 0);
    EXPECT(run(ENC(F_MVF, 0, 0, 0x53), 0x12345678ff800001, 0, 0, 0, fl, 0), BOX(0xff800001), 0);
    EXPECT(run(ENC(F_MVF | 1, 0, 0, 0x53), 0x7ff0000000000001, 0, 0, 0, fl, 0), 0x7ff0000000000001,
           0);
    EXPECT(op_fx(F_MVX | 1, 0, 0, 0xfff0000000000001, 0, fl), 0xfff0000000000001, 0);
    /* FCVT.D.S of an unboxed single: canonical NaN, no NV */
    EXPECT(run(ENC(F_CVTFF | 1, 0, RNE, 0x53), 0x7f800001, 0, 0, 0, fl, 0), D_QNAN, 0);
    /* FEQ.S on unboxed values: quiet NaN, so 0 without NV; FLT sets NV */
    EXPECT(run(ENC(F_CMP, RS2, 2, 0x53), 0x3f800000, 0x3f800000, 0, 0, fl, 1), 0, 0);
    EXPECT(run(ENC(F_CMP, RS2, 1, 0x53), 0x3f800000, BOX(S_ONE), 0, 0, fl, 1), 0, NV);
    /* FSGNJ does not canonicalise NaNs */
    EXPECT(run(ENC(F_SGNJ, RS2, 2, 0x53), BOX(0xffc12345), BOX(0x80000000), 0, 0, fl, 0),
           BOX(0x7fc12345), 0);
    EXPECT(run(ENC(F_SGNJ | 1, RS2, 1, 0x53), D_SNAN, D_SNAN, 0, 0, fl, 0), D_SNAN | D_NEG, 0);
    /* the fma reads all three operands boxed */
    EXPECT(run((RS3 << 27) | ENC(0, RS2, RNE, 0x43), BOX(S_ONE), BOX(S_ONE), 0x40000000, 0, fl, 0),
           BOX(S_QNAN), 0);
}

TEST(fpu_min_max)
{
    uint32_t mn = F_MINMAX, rmin = 0, rmax = 1;
#define MM(d, which, a, b) run(ENC(mn | (d), RS2, which, 0x53), a, b, 0, 0, fl, 0)
    EXPECT(MM(0, rmin, BOX(S_ONE), BOX(S_QNAN)), BOX(S_ONE), 0);
    EXPECT(MM(0, rmax, BOX(S_QNAN), BOX(S_ONE)), BOX(S_ONE), 0);
    EXPECT(MM(0, rmin, BOX(S_SNAN), BOX(S_ONE)), BOX(S_ONE), NV);
    EXPECT(MM(0, rmax, BOX(S_ONE), BOX(S_SNAN)), BOX(S_ONE), NV);
    EXPECT(MM(0, rmin, BOX(S_QNAN), BOX(0xffc00001)), BOX(S_QNAN), 0);
    EXPECT(MM(0, rmin, BOX(S_SNAN), BOX(S_SNAN)), BOX(S_QNAN), NV);
    EXPECT(MM(0, rmin, BOX(0x80000000), BOX(0)), BOX(0x80000000), 0);
    EXPECT(MM(0, rmin, BOX(0), BOX(0x80000000)), BOX(0x80000000), 0);
    EXPECT(MM(0, rmax, BOX(0x80000000), BOX(0)), BOX(0), 0);
    EXPECT(MM(0, rmax, BOX(0), BOX(0x80000000)), BOX(0), 0);
    EXPECT(MM(0, rmin, BOX(0xbf800000), BOX(S_TWO)), BOX(0xbf800000), 0);
    EXPECT(MM(0, rmax, BOX(0xbf800000), BOX(S_TWO)), BOX(S_TWO), 0);
    EXPECT(MM(0, rmin, BOX(0xc0000000), BOX(0xbf800000)), BOX(0xc0000000), 0);
    EXPECT(MM(0, rmax, BOX(S_NINF), BOX(S_INF)), BOX(S_INF), 0);
    EXPECT(MM(1, rmin, D_QNAN | 5, D_ONE), D_ONE, 0);
    EXPECT(MM(1, rmax, D_SNAN, D_QNAN), D_QNAN, NV);
    EXPECT(MM(1, rmin, D_NEG, 0), D_NEG, 0);
    EXPECT(MM(1, rmax, D_NEG | 1, 1), 1, 0);
    EXPECT(MM(1, rmin, 0x4000000000000000, 0x3fffffffffffffff), 0x3fffffffffffffff, 0);
#undef MM
    CHECK_EQ(fpu_exec(&st, xr, ENC(F_MINMAX, RS2, 2, 0x53)), -1);
}

TEST(fpu_compare)
{
#define CMP(d, which, a, b) run(ENC(F_CMP | (d), RS2, which, 0x53), a, b, 0, 0, fl, 1)
    enum { LE = 0, LT = 1, EQ = 2 };
    EXPECT(CMP(0, EQ, BOX(S_QNAN), BOX(S_ONE)), 0, 0);
    EXPECT(CMP(0, EQ, BOX(S_SNAN), BOX(S_ONE)), 0, NV);
    EXPECT(CMP(0, EQ, BOX(S_QNAN), BOX(S_QNAN)), 0, 0);
    EXPECT(CMP(0, LT, BOX(S_QNAN), BOX(S_ONE)), 0, NV);
    EXPECT(CMP(0, LE, BOX(S_ONE), BOX(S_QNAN)), 0, NV);
    EXPECT(CMP(0, EQ, BOX(0x80000000), BOX(0)), 1, 0);
    EXPECT(CMP(0, LT, BOX(0x80000000), BOX(0)), 0, 0);
    EXPECT(CMP(0, LE, BOX(0), BOX(0x80000000)), 1, 0);
    EXPECT(CMP(0, LT, BOX(S_ONE), BOX(S_TWO)), 1, 0);
    EXPECT(CMP(0, LE, BOX(S_TWO), BOX(S_ONE)), 0, 0);
    EXPECT(CMP(0, LT, BOX(0xc0000000), BOX(0xbf800000)), 1, 0);
    EXPECT(CMP(0, LT, BOX(S_NINF), BOX(0xff7fffff)), 1, 0);
    EXPECT(CMP(1, EQ, D_ONE, D_ONE), 1, 0);
    EXPECT(CMP(1, LE, D_INF, D_INF), 1, 0);
    EXPECT(CMP(1, LT, D_INF, D_INF), 0, 0);
    EXPECT(CMP(1, LT, 1, 2), 1, 0);
    EXPECT(CMP(1, LT, D_NEG | 2, D_NEG | 1), 1, 0);
    EXPECT(CMP(1, EQ, D_SNAN, D_SNAN), 0, NV);
#undef CMP
    /* rd = x0 is not written */
    xr[0] = 0;
    st.f[1] = D_ONE;
    CHECK_EQ(fpu_exec(&st, xr, (0x51u << 25) | (1 << 20) | (1 << 15) | (2 << 12) | 0x53), 0);
    CHECK_EQ(xr[0], 0);
    CHECK_EQ(fpu_exec(&st, xr, ENC(F_CMP, RS2, 3, 0x53)), -1);
}

TEST(fpu_fclass)
{
    static const uint64_t s_in[10] = {S_NINF,     0xbf800000, 0x80000001, 0x80000000, 0,
                                      0x007fffff, S_MAX,      S_INF,      S_SNAN,     S_QNAN};
    static const uint64_t d_in[10] = {
        D_INF | D_NEG, 0xbff0000000000000, D_NEG | 0xfffff,   D_NEG, 0, 1, 0x0010000000000000,
        D_INF,         0x7ff4000000000000, 0xfff8000000000001};
    for (int i = 0; i < 10; i++) {
        EXPECT(op_fx(F_MVX, 0, 1, BOX(s_in[i]), 0, fl), 1u << i, 0);
        EXPECT(op_fx(F_MVX | 1, 0, 1, d_in[i], 0, fl), 1u << i, 0);
    }
    CHECK_EQ(fpu_exec(&st, xr, ENC(F_MVX, 0, 2, 0x53)), -1);
    CHECK_EQ(fpu_exec(&st, xr, ENC(F_MVX, 1, 1, 0x53)), -1);
}

TEST(fpu_fcvt_to_int)
{
    enum { W = 0, WU = 1, L = 2, LU = 3 };
#define CVD(t, a, rm) op_fx(F_CVTFI | 1, t, DYN, a, rm, fl)
#define CVS(t, a, rm) op_fx(F_CVTFI, t, DYN, BOX(a), rm, fl)
    const uint64_t imin32 = 0xffffffff80000000ull;
    EXPECT(CVD(W, 0x41e0000000000000, RNE), 0x7fffffff, NV); /* 2^31 */
    EXPECT(CVD(W, 0x41dfffffffc00000, RNE), 0x7fffffff, 0);  /* 2^31-1 */
    EXPECT(CVD(W, 0xc1e0000000000000, RNE), imin32, 0);      /* -2^31 */
    EXPECT(CVD(W, 0xc1e0000000200000, RNE), imin32, NV);     /* -2^31-1 */
    EXPECT(CVD(W, 0xc1e0000000100000, RTZ), imin32, NX);     /* -2^31-0.5 */
    EXPECT(CVD(W, 0xc1e0000000100000, RNE), imin32, NX);     /* tie to even */
    EXPECT(CVD(W, 0xc1e0000000100000, RMM), imin32, NV);     /* away: -2^31-1 */
    EXPECT(CVD(W, 0xc1e0000000100000, RDN), imin32, NV);
    EXPECT(CVD(W, D_QNAN, RNE), 0x7fffffff, NV);
    EXPECT(CVD(W, D_SNAN | D_NEG, RNE), 0x7fffffff, NV);
    EXPECT(CVD(W, D_INF, RNE), 0x7fffffff, NV);
    EXPECT(CVD(W, D_INF | D_NEG, RNE), imin32, NV);
    EXPECT(CVD(W, 0xbff0000000000000, RNE), 0xffffffffffffffff, 0); /* -1 */
    EXPECT(CVD(W, D_NEG, RNE), 0, 0);
    EXPECT(CVD(W, 1, RUP), 1, NX);
    EXPECT(CVD(W, D_NEG | 1, RDN), 0xffffffffffffffff, NX);
    /* unsigned: -0.5 */
    EXPECT(CVD(WU, 0xbfe0000000000000, RTZ), 0, NX);
    EXPECT(CVD(WU, 0xbfe0000000000000, RNE), 0, NX);
    EXPECT(CVD(WU, 0xbfe0000000000000, RUP), 0, NX);
    EXPECT(CVD(WU, 0xbfe0000000000000, RDN), 0, NV);
    EXPECT(CVD(WU, 0xbfe0000000000000, RMM), 0, NV);
    EXPECT(CVD(WU, 0xbff0000000000000, RTZ), 0, NV);
    EXPECT(CVD(WU, 0x41f0000000000000, RNE), 0xffffffffffffffff, NV); /* 2^32 */
    EXPECT(CVD(WU, 0x41efffffffe00000, RNE), 0xffffffffffffffff, 0);  /* 2^32-1 */
    EXPECT(CVD(WU, 0x41e0000000000000, RNE), 0xffffffff80000000, 0);  /* 2^31, sext */
    EXPECT(CVD(WU, D_QNAN, RNE), 0xffffffffffffffff, NV);
    EXPECT(CVD(WU, D_INF | D_NEG, RNE), 0, NV);
    EXPECT(CVD(WU, D_ONE, RNE), 1, 0);
    /* 64-bit */
    EXPECT(CVD(L, 0x43e0000000000000, RNE), 0x7fffffffffffffff, NV); /* 2^63 */
    EXPECT(CVD(L, 0xc3e0000000000000, RNE), 0x8000000000000000, 0);  /* -2^63 */
    EXPECT(CVD(L, 0xc3e0000000000001, RNE), 0x8000000000000000, NV);
    EXPECT(CVD(L, 0x43dfffffffffffff, RNE), 0x7ffffffffffffc00, 0);
    EXPECT(CVD(L, D_QNAN, RNE), 0x7fffffffffffffff, NV);
    EXPECT(CVD(LU, 0x43f0000000000000, RNE), 0xffffffffffffffff, NV); /* 2^64 */
    EXPECT(CVD(LU, 0x43efffffffffffff, RNE), 0xfffffffffffff800, 0);
    EXPECT(CVD(LU, 0xbff0000000000000, RNE), 0, NV);
    EXPECT(CVD(LU, D_QNAN | D_NEG, RNE), 0xffffffffffffffff, NV);
    EXPECT(CVD(LU, D_INF, RNE), 0xffffffffffffffff, NV);
    /* single sources, rounding modes */
    EXPECT(CVS(W, 0x4f000000, RNE), 0x7fffffff, NV);
    EXPECT(CVS(W, 0xcf000000, RNE), imin32, 0);
    EXPECT(CVS(W, 0x3fc00000, RNE), 2, NX); /* 1.5 */
    EXPECT(CVS(W, 0x40200000, RNE), 2, NX); /* 2.5 */
    EXPECT(CVS(W, 0x40200000, RMM), 3, NX);
    EXPECT(CVS(W, 0xc0200000, RMM), 0xfffffffffffffffd, NX);
    EXPECT(CVS(W, 0xc0200000, RDN), 0xfffffffffffffffd, NX);
    EXPECT(CVS(W, 0xc0200000, RUP), 0xfffffffffffffffe, NX);
    EXPECT(CVS(W, 0x3e99999a, RUP), 1, NX);
    EXPECT(CVS(L, 0x5f000000, RNE), 0x7fffffffffffffff, NV);
    EXPECT(CVS(L, 0xdf000000, RNE), 0x8000000000000000, 0);
    EXPECT(CVS(LU, 0x5f800000, RNE), 0xffffffffffffffff, NV);
    EXPECT(CVS(LU, 0x5f7fffff, RNE), 0xffffff0000000000, 0);
    EXPECT(op_fx(F_CVTFI, 0, DYN, 0x3f800000, RNE, fl), 0x7fffffff, NV); /* unboxed = NaN */
#undef CVD
#undef CVS
    CHECK_EQ(fpu_exec(&st, xr, ENC(F_CVTFI, 4, DYN, 0x53)), -1);
}

TEST(fpu_fcvt_from_int_and_between)
{
    enum { W = 0, WU = 1, L = 2, LU = 3 };
    /* 2^24 + 1 to single: a tie */
    EXPECT(op_xf(F_CVTIF, W, 16777217, RNE, fl), BOX(0x4b800000), NX);
    EXPECT(op_xf(F_CVTIF, W, 16777217, RMM, fl), BOX(0x4b800001), NX);
    EXPECT(op_xf(F_CVTIF, W, 16777217, RUP, fl), BOX(0x4b800001), NX);
    EXPECT(op_xf(F_CVTIF, W, 0xfffffffffeffffff, RMM, fl), BOX(0xcb800001), NX); /* -(2^24+1) */
    EXPECT(op_xf(F_CVTIF, W, 0xfffffffffeffffff, RUP, fl), BOX(0xcb800000), NX);
    EXPECT(op_xf(F_CVTIF, L, 0xffffffffffffffff, RNE, fl), BOX(0xbf800000), 0);
    EXPECT(op_xf(F_CVTIF, WU, 0x12345678ffffffff, RNE, fl), BOX(0x4f800000), NX);
    EXPECT(op_xf(F_CVTIF, WU, 0x12345678ffffffff, RTZ, fl), BOX(0x4f7fffff), NX);
    EXPECT(op_xf(F_CVTIF | 1, W, 0x00000000ffffffff, RNE, fl), 0xbff0000000000000, 0);
    EXPECT(op_xf(F_CVTIF | 1, LU, 0xffffffffffffffff, RNE, fl), 0x43f0000000000000, NX);
    EXPECT(op_xf(F_CVTIF | 1, LU, 0xffffffffffffffff, RTZ, fl), 0x43efffffffffffff, NX);
    EXPECT(op_xf(F_CVTIF | 1, L, 0x8000000000000000, RNE, fl), 0xc3e0000000000000, 0);
    EXPECT(op_xf(F_CVTIF | 1, L, 0, RDN, fl), 0, 0); /* +0 even in RDN */
    EXPECT(op_xf(F_CVTIF | 1, W, 0x7fffffff, RNE, fl), 0x41dfffffffc00000, 0);
    /* FCVT.S.D */
    uint32_t sd = F_CVTFF, ds = F_CVTFF | 1;
    EXPECT(run(ENC(sd, 1, DYN, 0x53), D_MAX, 0, 0, RNE, fl, 0), BOX(S_INF), OF | NX);
    EXPECT(run(ENC(sd, 1, DYN, 0x53), D_MAX, 0, 0, RTZ, fl, 0), BOX(S_MAX), OF | NX);
    EXPECT(run(ENC(sd, 1, DYN, 0x53), D_SNAN, 0, 0, RNE, fl, 0), BOX(S_QNAN), NV);
    EXPECT(run(ENC(sd, 1, DYN, 0x53), 0xfff8000012345678, 0, 0, RNE, fl, 0), BOX(S_QNAN), 0);
    EXPECT(run(ENC(sd, 1, DYN, 0x53), 0x3690000000000000, 0, 0, RNE, fl, 0), BOX(0), UF | NX);
    EXPECT(run(ENC(sd, 1, DYN, 0x53), 0x3690000000000000, 0, 0, RMM, fl, 0), BOX(1), UF | NX);
    EXPECT(run(ENC(sd, 1, DYN, 0x53), 0x36a0000000000000, 0, 0, RNE, fl, 0), BOX(1), 0);
    EXPECT(run(ENC(sd, 1, DYN, 0x53), 0x3ff0000010000000, 0, 0, RNE, fl, 0), BOX(S_ONE), NX);
    EXPECT(run(ENC(sd, 1, DYN, 0x53), 0x3ff0000010000000, 0, 0, RMM, fl, 0), BOX(0x3f800001), NX);
    EXPECT(run(ENC(sd, 1, DYN, 0x53), D_INF | D_NEG, 0, 0, RNE, fl, 0), BOX(S_NINF), 0);
    EXPECT(run(ENC(sd, 1, DYN, 0x53), D_NEG, 0, 0, RNE, fl, 0), BOX(0x80000000), 0);
    /* FCVT.D.S: exact */
    EXPECT(run(ENC(ds, 0, DYN, 0x53), BOX(1), 0, 0, RNE, fl, 0), 0x36a0000000000000, 0);
    EXPECT(run(ENC(ds, 0, DYN, 0x53), BOX(S_SNAN), 0, 0, RNE, fl, 0), D_QNAN, NV);
    EXPECT(run(ENC(ds, 0, DYN, 0x53), BOX(0xbf800000), 0, 0, RNE, fl, 0), 0xbff0000000000000, 0);
    /* fcvt.s.s / fcvt.d.d / fcvt.s.h do not exist */
    CHECK_EQ(fpu_exec(&st, xr, ENC(sd, 0, 0, 0x53)), -1);
    CHECK_EQ(fpu_exec(&st, xr, ENC(ds, 1, 0, 0x53)), -1);
    CHECK_EQ(fpu_exec(&st, xr, ENC(sd, 2, 0, 0x53)), -1);
}

TEST(fpu_decode_illegal)
{
    /* reserved static modes and bad frm with DYN */
    for (uint32_t rm = 5; rm <= 6; rm++) {
        CHECK_EQ(fpu_exec(&st, xr, ENC(F_ADD, RS2, rm, 0x53)), -1);
        CHECK_EQ(fpu_exec(&st, xr, (RS3 << 27) | ENC(1, RS2, rm, 0x43)), -1);
        CHECK_EQ(fpu_exec(&st, xr, ENC(F_CVTFF | 1, 0, rm, 0x53)), -1);
    }
    for (uint32_t frm = 5; frm <= 7; frm++) {
        memset(&st, 0, sizeof(st));
        st.frm = frm;
        st.f[RD] = 1234;
        CHECK_EQ(fpu_exec(&st, xr, ENC(F_MUL | 1, RS2, DYN, 0x53)), -1);
        CHECK_EQ(fpu_exec(&st, xr, ENC(F_CVTIF | 1, 0, DYN, 0x53)), -1);
        CHECK_EQ(fpu_exec(&st, xr, ENC(F_CVTFI, 0, DYN, 0x53)), -1);
        CHECK_EQ(st.f[RD], 1234); /* nothing written */
        /* instructions without an rm field do not care about frm */
        CHECK_EQ(fpu_exec(&st, xr, ENC(F_SGNJ | 1, RS2, 0, 0x53)), 0);
        /* but a static mode works even when frm is bad */
        CHECK_EQ(fpu_exec(&st, xr, ENC(F_MUL | 1, RS2, RMM, 0x53)), 0);
    }
    /* H (fmt 2) and Q (fmt 3) */
    CHECK_EQ(fpu_exec(&st, xr, ENC(F_ADD | 2, RS2, 0, 0x53)), -1);
    CHECK_EQ(fpu_exec(&st, xr, ENC(F_ADD | 3, RS2, 0, 0x53)), -1);
    CHECK_EQ(fpu_exec(&st, xr, (RS3 << 27) | ENC(2, RS2, 0, 0x4f)), -1);
    /* unknown funct5 values, wrong sub-fields */
    static const uint32_t bad_f5[] = {0x06, 0x07, 0x09, 0x0a, 0x0c, 0x0d, 0x0e, 0x0f,
                                      0x10, 0x13, 0x15, 0x19, 0x1b, 0x1d, 0x1f};
    for (size_t i = 0; i < sizeof(bad_f5) / sizeof(bad_f5[0]); i++)
        CHECK_EQ(fpu_exec(&st, xr, ENC(bad_f5[i] << 2, 0, 0, 0x53)), -1);
    CHECK_EQ(fpu_exec(&st, xr, ENC(F_SGNJ, RS2, 3, 0x53)), -1);
    CHECK_EQ(fpu_exec(&st, xr, ENC(F_MVF, 1, 0, 0x53)), -1);
    CHECK_EQ(fpu_exec(&st, xr, ENC(F_MVF, 0, 1, 0x53)), -1);
    CHECK_EQ(fpu_exec(&st, xr, ENC(F_CVTIF, 4, 0, 0x53)), -1);
    CHECK_EQ(fpu_exec(&st, xr, ENC(F_ADD, RS2, 0, 0x33)), -1); /* not an FP opcode */
    CHECK_EQ(fpu_exec(&st, xr, 0), -1);
    /* an illegal instruction leaves fflags alone */
    st.fflags = 0;
    st.f[RS1] = D_SNAN;
    CHECK_EQ(fpu_exec(&st, xr, ENC(F_ADD | 1, RS2, 5, 0x53)), -1);
    CHECK_EQ(st.fflags, 0);
}

TEST(fpu_flags_accrue_and_host_state)
{
    unsigned mx0, mx1;
    __asm__ volatile("stmxcsr %0" : "=m"(mx0));
    memset(&st, 0, sizeof(st));
    st.f[1] = D_ONE;
    st.f[2] = 0x4008000000000000; /* 3.0 */
    st.f[3] = 0;
    st.frm = RUP;
    /* fdiv.d f4, f1, f2 (NX), then fdiv.d f5, f1, f3 (DZ): flags OR together */
    CHECK_EQ(fpu_exec(&st, xr, (0x0du << 25) | (2 << 20) | (1 << 15) | (7 << 12) | (4 << 7) | 0x53),
             0);
    CHECK_EQ(st.f[4], 0x3fd5555555555556ull); /* 1/3 rounded up */
    CHECK_EQ(fpu_exec(&st, xr, (0x0du << 25) | (3 << 20) | (1 << 15) | (7 << 12) | (5 << 7) | 0x53),
             0);
    CHECK_EQ(st.fflags, NX | DZ);
    CHECK_EQ(fpu_exec(&st, xr, (0x01u << 25) | (1 << 20) | (1 << 15) | (7 << 12) | (6 << 7) | 0x53),
             0);
    CHECK_EQ(st.fflags, NX | DZ); /* exact add keeps the old flags */
    /* fsqrt.d f7, f2 in RUP takes the host path: inexact */
    CHECK_EQ(fpu_exec(&st, xr, (0x2du << 25) | (2 << 15) | (7 << 12) | (7 << 7) | 0x53), 0);
    CHECK_EQ(st.f[7], 0x3ffbb67ae8584cabull); /* sqrt(3) rounded up */
    CHECK_EQ(st.fflags, NX | DZ);
    /* the host's rounding mode and flags are unchanged */
    __asm__ volatile("stmxcsr %0" : "=m"(mx1));
    CHECK_EQ(mx1, mx0);
    /* rd == rs1 works */
    CHECK_EQ(fpu_exec(&st, xr, (0x01u << 25) | (1 << 20) | (1 << 15) | (7 << 12) | (1 << 7) | 0x53),
             0);
    CHECK_EQ(st.f[1], 0x4000000000000000ull);
}

/* The host square root against the software one, on the QEMU generator's inputs (more of them)
 * in all five modes: RMM uses the host's RNE, which must never differ. */
TEST(fpu_host_vs_soft_sqrt)
{
    int n = 0, bad = 0;
    for (int g = 0; g < ngroups(); g++) {
        struct group gr = group_at(g);
        const struct tmpl *t = &tmpls[gr.t];
        uint64_t s = 0x1234567ull + (uint64_t)g;
        if (strncmp(t->name, "fsqrt", 5) != 0) continue;
        int count = gr.special ? group_size(g) : 40000;
        for (int i = 0; i < count; i++) {
            struct vec v = group_vec(g, gr.special ? i : 0, &s);
            struct vout h, sw;
            fpu_set_host_path(1);
            exec_vessel(&v, &h);
            fpu_set_host_path(0);
            exec_vessel(&v, &sw);
            n++;
            if (h.f != sw.f || h.flags != sw.flags) {
                if (bad++ < 10)
                    fprintf(stderr,
                            "  host/soft differ: %s frm=%u a=%016llx: host %016llx/%02x soft "
                            "%016llx/%02x\n",
                            t->name, v.frm, (unsigned long long)v.a, (unsigned long long)h.f,
                            h.flags, (unsigned long long)sw.f, sw.flags);
            }
        }
    }
    fpu_set_host_path(1);
    CHECK_EQ(bad, 0);
    CHECK(n > 400000);
    if (getenv("FPU_VERBOSE")) printf("fpu: host and soft square roots agree on %d vectors\n", n);
}

/* The generated vectors must reach the cases where RMM and RNE differ (exact ties), or the
 * QEMU comparison says little about RMM. */
TEST(fpu_rmm_ties_covered)
{
    int ties = 0, groups = 0;
    for (int g = 0; g < ngroups(); g++) {
        struct group gr = group_at(g);
        uint64_t s = 0x9e3779b97f4a7c15ull ^ ((uint64_t)(g + 1) * 0xbf58476d1ce4e5b9ull);
        int n = 0;
        if (gr.special || tmpls[gr.t].has_rm != 1 || gr.frm != RMM) continue;
        for (int i = 0; i < GROUP_VECTORS; i++) {
            struct vec v = group_vec(g, i, &s);
            struct vout rmm, rne;
            exec_vessel(&v, &rmm);
            v.frm = RNE;
            exec_vessel(&v, &rne);
            n += rmm.f != rne.f || rmm.x != rne.x;
        }
        if (getenv("FPU_VERBOSE"))
            printf("  %-10s RMM differs from RNE in %d of %d\n", tmpls[gr.t].name, n,
                   GROUP_VECTORS);
        groups++;
        ties += n > 0;
    }
    /* every rounding template but the exact ones (fcvt.d.s, fcvt.d.w, fcvt.d.wu) and the square
     * roots, which never land exactly on a midpoint */
    CHECK_EQ(ties, groups - 5);
}

/* Hashes of each group's results under qemu-riscv64 7.2 (see the top of this file). */
static const uint64_t ref_hashes[] = {
    /* BEGIN ref_hashes */
    0x99651a056d83e4feull, /* 0 fadd.s frm=0 */
    0x76169e4a5c1837d0ull, /* 1 fadd.s frm=1 */
    0x1ec494592597e86bull, /* 2 fadd.s frm=2 */
    0x0c35ad1eeb74d8e5ull, /* 3 fadd.s frm=3 */
    0x08812372ab765314ull, /* 4 fadd.s frm=4 */
    0xc845b153dca76b0dull, /* 5 fadd.d frm=0 */
    0x3c5191c9878da090ull, /* 6 fadd.d frm=1 */
    0x4d766a6f11efc410ull, /* 7 fadd.d frm=2 */
    0x83740c51aee1af96ull, /* 8 fadd.d frm=3 */
    0x492bf4a47c4f4b1cull, /* 9 fadd.d frm=4 */
    0x9284b9e09e3a9d2aull, /* 10 fsub.s frm=0 */
    0x8c6b0297717a8e67ull, /* 11 fsub.s frm=1 */
    0x8f21ab2be3f05e22ull, /* 12 fsub.s frm=2 */
    0xfb87037e6ca4b90full, /* 13 fsub.s frm=3 */
    0xfd924a2fddcee060ull, /* 14 fsub.s frm=4 */
    0x209c8ef3338b58b5ull, /* 15 fsub.d frm=0 */
    0x500300acb02d11c1ull, /* 16 fsub.d frm=1 */
    0x87a5d5e99a27e82bull, /* 17 fsub.d frm=2 */
    0x2c9de6801cb08bf0ull, /* 18 fsub.d frm=3 */
    0x52e035982cc93078ull, /* 19 fsub.d frm=4 */
    0x7314ec3951424164ull, /* 20 fmul.s frm=0 */
    0x72e4ec6f468a2862ull, /* 21 fmul.s frm=1 */
    0xf8becda22c5c545eull, /* 22 fmul.s frm=2 */
    0x3e3ff21853f5e0eeull, /* 23 fmul.s frm=3 */
    0x29a044ce4626afaeull, /* 24 fmul.s frm=4 */
    0xce9336e58fa8954dull, /* 25 fmul.d frm=0 */
    0x3af28c3aa74c9d3bull, /* 26 fmul.d frm=1 */
    0xd9b14dc75fc9bfb7ull, /* 27 fmul.d frm=2 */
    0x5eb527d5f9fc9bbcull, /* 28 fmul.d frm=3 */
    0x03dd008e7ec256ebull, /* 29 fmul.d frm=4 */
    0xbb8759e8bb383b4full, /* 30 fdiv.s frm=0 */
    0x6a7a580c8e02d841ull, /* 31 fdiv.s frm=1 */
    0x0e3e757324d86cb8ull, /* 32 fdiv.s frm=2 */
    0xa10bca260a0c4441ull, /* 33 fdiv.s frm=3 */
    0x78881d7d3b929365ull, /* 34 fdiv.s frm=4 */
    0xfac0abfb140e78b7ull, /* 35 fdiv.d frm=0 */
    0x019f406f484b9529ull, /* 36 fdiv.d frm=1 */
    0x57a92ae7792b8acbull, /* 37 fdiv.d frm=2 */
    0x1d3b04310aab0d5full, /* 38 fdiv.d frm=3 */
    0x276756d232ae4524ull, /* 39 fdiv.d frm=4 */
    0x0e1ebd35b37c648bull, /* 40 fsqrt.s frm=0 */
    0x8c1f82aa50e34b38ull, /* 41 fsqrt.s frm=1 */
    0x684e7e41915cb9a3ull, /* 42 fsqrt.s frm=2 */
    0xa69aae738c42cdaeull, /* 43 fsqrt.s frm=3 */
    0xafe29eab316ffcc3ull, /* 44 fsqrt.s frm=4 */
    0xc7843cc37e3f4b16ull, /* 45 fsqrt.d frm=0 */
    0xfb1d4a3a46045491ull, /* 46 fsqrt.d frm=1 */
    0x92dc3098340cfa57ull, /* 47 fsqrt.d frm=2 */
    0xbcf12ab393a27a69ull, /* 48 fsqrt.d frm=3 */
    0x23a3a43a89e034b5ull, /* 49 fsqrt.d frm=4 */
    0x5618e30cfcc27e76ull, /* 50 fmadd.s frm=0 */
    0x8ad970874dcfcb63ull, /* 51 fmadd.s frm=1 */
    0x3c3cc33425cd38c4ull, /* 52 fmadd.s frm=2 */
    0xaedcd8f0414e15b7ull, /* 53 fmadd.s frm=3 */
    0x4380082823c8932full, /* 54 fmadd.s frm=4 */
    0x3464b66ab59aaf27ull, /* 55 fmadd.d frm=0 */
    0xc68876b751ef1f89ull, /* 56 fmadd.d frm=1 */
    0x2cc7f77e3fe0d15cull, /* 57 fmadd.d frm=2 */
    0x62e146ce2a9a2fdcull, /* 58 fmadd.d frm=3 */
    0x7e0ac4561a6041caull, /* 59 fmadd.d frm=4 */
    0x6c9ecfb3c562f7c7ull, /* 60 fmsub.s frm=0 */
    0x959fb3481d7a943aull, /* 61 fmsub.s frm=1 */
    0x6fcde9387fbb35afull, /* 62 fmsub.s frm=2 */
    0xe1f72e33524befacull, /* 63 fmsub.s frm=3 */
    0xcad1cbc11e2542d5ull, /* 64 fmsub.s frm=4 */
    0x2049a64a5e705e7full, /* 65 fmsub.d frm=0 */
    0x430a6ac01c608155ull, /* 66 fmsub.d frm=1 */
    0xedadf514edae503cull, /* 67 fmsub.d frm=2 */
    0xdee0e8c5699e18baull, /* 68 fmsub.d frm=3 */
    0x9be4b5fbf81f72beull, /* 69 fmsub.d frm=4 */
    0x3f31412277f3416eull, /* 70 fnmsub.s frm=0 */
    0x806469e733db30e6ull, /* 71 fnmsub.s frm=1 */
    0x7599767eee1863a8ull, /* 72 fnmsub.s frm=2 */
    0x18405080eca6200cull, /* 73 fnmsub.s frm=3 */
    0xe3231698d877edadull, /* 74 fnmsub.s frm=4 */
    0x5e368a8e25396eb7ull, /* 75 fnmsub.d frm=0 */
    0xe2bf7a0cd98d03fcull, /* 76 fnmsub.d frm=1 */
    0x9f9d6327f101a884ull, /* 77 fnmsub.d frm=2 */
    0x915fb3d658ad80e5ull, /* 78 fnmsub.d frm=3 */
    0xc5c7bd153f6d66aeull, /* 79 fnmsub.d frm=4 */
    0x9f0718b616fb93d4ull, /* 80 fnmadd.s frm=0 */
    0xda63dad1bc2ed12full, /* 81 fnmadd.s frm=1 */
    0x2feb351e100f4e8dull, /* 82 fnmadd.s frm=2 */
    0x04fd40edf6d988e8ull, /* 83 fnmadd.s frm=3 */
    0x2559d7a90cd1bb27ull, /* 84 fnmadd.s frm=4 */
    0x5bf41a997f52bcb1ull, /* 85 fnmadd.d frm=0 */
    0xe4b5f26055289691ull, /* 86 fnmadd.d frm=1 */
    0xe5dcfddef8039063ull, /* 87 fnmadd.d frm=2 */
    0xa7fb29508ab0c668ull, /* 88 fnmadd.d frm=3 */
    0xa2192eb83ac67dbfull, /* 89 fnmadd.d frm=4 */
    0x10db7dfb76ca41e4ull, /* 90 fsgnj.s frm=1 */
    0x4a3e7b533d92f34bull, /* 91 fsgnjn.s frm=1 */
    0x0a12df441b30a8bbull, /* 92 fsgnjx.s frm=1 */
    0x604361e3ccc342ffull, /* 93 fsgnj.d frm=1 */
    0x162aea98aa219f84ull, /* 94 fsgnjn.d frm=1 */
    0xc7f83d7033f4f114ull, /* 95 fsgnjx.d frm=1 */
    0x843d2c4e7fe99326ull, /* 96 fmin.s frm=1 */
    0x384d788de66a11f1ull, /* 97 fmax.s frm=1 */
    0x3b9073a2410510a9ull, /* 98 fmin.d frm=1 */
    0x67298dde9c04e7f1ull, /* 99 fmax.d frm=1 */
    0x4c54fdb39e75ad71ull, /* 100 fle.s frm=1 */
    0xc53b47d9be3a0f63ull, /* 101 flt.s frm=1 */
    0x70acb2f02f36163cull, /* 102 feq.s frm=1 */
    0x491d8f839afcf164ull, /* 103 fle.d frm=1 */
    0x69ea103c71eb1856ull, /* 104 flt.d frm=1 */
    0xe6a99ec6af07c510ull, /* 105 feq.d frm=1 */
    0x263be5196b519949ull, /* 106 fcvt.s.d frm=0 */
    0x284b4d777405da38ull, /* 107 fcvt.s.d frm=1 */
    0x1f4ba402ba8ec91aull, /* 108 fcvt.s.d frm=2 */
    0x81c3470e8e7128eaull, /* 109 fcvt.s.d frm=3 */
    0x3112553dab14ea74ull, /* 110 fcvt.s.d frm=4 */
    0x22a28be0ec4d21ffull, /* 111 fcvt.d.s frm=0 */
    0x1438a5555b8c57acull, /* 112 fcvt.d.s frm=1 */
    0xef5434c9c3fb4414ull, /* 113 fcvt.d.s frm=2 */
    0xc20568fd21d1f5b7ull, /* 114 fcvt.d.s frm=3 */
    0xf1e8fc9a80d8d451ull, /* 115 fcvt.d.s frm=4 */
    0xea7a3ddf7c87ac44ull, /* 116 fcvt.w.s frm=0 */
    0xb2d332bcb6472273ull, /* 117 fcvt.w.s frm=1 */
    0x451092b5cfb1b14dull, /* 118 fcvt.w.s frm=2 */
    0xd2cca58eb90cb68full, /* 119 fcvt.w.s frm=3 */
    0xfe3d95d8db2119b0ull, /* 120 fcvt.w.s frm=4 */
    0xe7ff1494b4b07a8dull, /* 121 fcvt.wu.s frm=0 */
    0x6e61843d22b82ff7ull, /* 122 fcvt.wu.s frm=1 */
    0x519e2f0205a1d165ull, /* 123 fcvt.wu.s frm=2 */
    0x0f732e899214914bull, /* 124 fcvt.wu.s frm=3 */
    0xfffde107a183a857ull, /* 125 fcvt.wu.s frm=4 */
    0xba8d15fb079fda21ull, /* 126 fcvt.l.s frm=0 */
    0xf1bc33befb2b2081ull, /* 127 fcvt.l.s frm=1 */
    0x23fc795aafd98793ull, /* 128 fcvt.l.s frm=2 */
    0xf9aed7012cf8aaa8ull, /* 129 fcvt.l.s frm=3 */
    0x390998fed5f94dccull, /* 130 fcvt.l.s frm=4 */
    0x8378ab07c1ab5d62ull, /* 131 fcvt.lu.s frm=0 */
    0x89a6a711eb81ec78ull, /* 132 fcvt.lu.s frm=1 */
    0x674eca286e6b7ab6ull, /* 133 fcvt.lu.s frm=2 */
    0x11677b0bfe2bce0eull, /* 134 fcvt.lu.s frm=3 */
    0x4e760c3c4826d992ull, /* 135 fcvt.lu.s frm=4 */
    0x368d8b16d1125b51ull, /* 136 fcvt.w.d frm=0 */
    0x6efe66f17319e076ull, /* 137 fcvt.w.d frm=1 */
    0xb311f0e3b0878aaeull, /* 138 fcvt.w.d frm=2 */
    0x4267d8af03723a5bull, /* 139 fcvt.w.d frm=3 */
    0xe8d43b2fad1818ceull, /* 140 fcvt.w.d frm=4 */
    0x80bfd701c0a5e7aeull, /* 141 fcvt.wu.d frm=0 */
    0x224d64aa3e1ac7b4ull, /* 142 fcvt.wu.d frm=1 */
    0xb1e155c755c0bd38ull, /* 143 fcvt.wu.d frm=2 */
    0xc2d67f73f830f558ull, /* 144 fcvt.wu.d frm=3 */
    0xf8ec4f90eeefa2b2ull, /* 145 fcvt.wu.d frm=4 */
    0xc3fa9a0a3d904c30ull, /* 146 fcvt.l.d frm=0 */
    0x64269a1e9ba34ba9ull, /* 147 fcvt.l.d frm=1 */
    0x72c18388415dbf14ull, /* 148 fcvt.l.d frm=2 */
    0x1bd74b3f7bf64f76ull, /* 149 fcvt.l.d frm=3 */
    0x75b02508307deff5ull, /* 150 fcvt.l.d frm=4 */
    0x8fd282f885af871eull, /* 151 fcvt.lu.d frm=0 */
    0x481332ce20b7f647ull, /* 152 fcvt.lu.d frm=1 */
    0x1a618a67be98682dull, /* 153 fcvt.lu.d frm=2 */
    0x86484ab247385853ull, /* 154 fcvt.lu.d frm=3 */
    0xafd93532ef7c1db4ull, /* 155 fcvt.lu.d frm=4 */
    0xd7a5e934f688a88cull, /* 156 fcvt.s.w frm=0 */
    0x838050af23adbf0dull, /* 157 fcvt.s.w frm=1 */
    0x4023a183121ab8b1ull, /* 158 fcvt.s.w frm=2 */
    0x1aadd798a1ddff26ull, /* 159 fcvt.s.w frm=3 */
    0x6cb84fd912eeca2aull, /* 160 fcvt.s.w frm=4 */
    0xfc005aaea9f6ed13ull, /* 161 fcvt.s.wu frm=0 */
    0x92b0caba84932cedull, /* 162 fcvt.s.wu frm=1 */
    0xb037bf2f98ef801bull, /* 163 fcvt.s.wu frm=2 */
    0x4791c47e52220720ull, /* 164 fcvt.s.wu frm=3 */
    0x0785478e879fc899ull, /* 165 fcvt.s.wu frm=4 */
    0x7682622d09fba004ull, /* 166 fcvt.s.l frm=0 */
    0xcf9d001159697f1dull, /* 167 fcvt.s.l frm=1 */
    0x74df74d1d600a33cull, /* 168 fcvt.s.l frm=2 */
    0x861d9736d82281e6ull, /* 169 fcvt.s.l frm=3 */
    0x732fbd590342956aull, /* 170 fcvt.s.l frm=4 */
    0x322d8ad3ac97d4c0ull, /* 171 fcvt.s.lu frm=0 */
    0x58a0beda30b007e3ull, /* 172 fcvt.s.lu frm=1 */
    0xa51366e23244c53dull, /* 173 fcvt.s.lu frm=2 */
    0x2c35f4daef3621ccull, /* 174 fcvt.s.lu frm=3 */
    0x97debabe4404501eull, /* 175 fcvt.s.lu frm=4 */
    0x0511b09203735e7aull, /* 176 fcvt.d.w frm=0 */
    0x83b539539b083c91ull, /* 177 fcvt.d.w frm=1 */
    0x1fb2d18d73273604ull, /* 178 fcvt.d.w frm=2 */
    0xd5d8e53fdd18622full, /* 179 fcvt.d.w frm=3 */
    0x3e133ee3ecd0fd2full, /* 180 fcvt.d.w frm=4 */
    0x4bcbb3752aad1128ull, /* 181 fcvt.d.wu frm=0 */
    0xb57e47596c8fdf90ull, /* 182 fcvt.d.wu frm=1 */
    0xb1b1d281f0ccb9faull, /* 183 fcvt.d.wu frm=2 */
    0x195b0434c8d36a4dull, /* 184 fcvt.d.wu frm=3 */
    0xcce80609924db4f3ull, /* 185 fcvt.d.wu frm=4 */
    0x69bf0c1cc607e2b8ull, /* 186 fcvt.d.l frm=0 */
    0x6d359dccef5ad7feull, /* 187 fcvt.d.l frm=1 */
    0xbd385a79fb34979dull, /* 188 fcvt.d.l frm=2 */
    0xc221b2f0f202de58ull, /* 189 fcvt.d.l frm=3 */
    0x5e838a3bf7ad8ff1ull, /* 190 fcvt.d.l frm=4 */
    0x83050cba799780efull, /* 191 fcvt.d.lu frm=0 */
    0x7a12891d09223c2dull, /* 192 fcvt.d.lu frm=1 */
    0x358e1c06dad201bcull, /* 193 fcvt.d.lu frm=2 */
    0xd27505b5c113b007ull, /* 194 fcvt.d.lu frm=3 */
    0x8a2dfcdf6c38f64eull, /* 195 fcvt.d.lu frm=4 */
    0xe1339f4a478faf4dull, /* 196 fmv.x.w frm=1 */
    0xa57de3f32874f9d2ull, /* 197 fclass.s frm=1 */
    0x8758ea371288f25bull, /* 198 fmv.x.d frm=1 */
    0x222357ad31cd7c60ull, /* 199 fclass.d frm=1 */
    0x919c41114e753cbdull, /* 200 fmv.w.x frm=1 */
    0x02eda76c976f6bd2ull, /* 201 fmv.d.x frm=1 */
    0x295e835aa4686a32ull, /* 202 fadd.s/rmm frm=1 */
    0xa0ee1215297527ddull, /* 203 fmul.d/rmm frm=1 */
    0x090e672c18198787ull, /* 204 fdiv.d/rup frm=1 */
    0xc1edfba7cbbfdbd7ull, /* 205 fsqrt.s/rdn frm=1 */
    0xbe33d46d93d5d1dcull, /* 206 fmadd.d/rtz frm=1 */
    0x7ebb175bc186bb0eull, /* 207 fcvt.w.d/rmm frm=1 */
    0x1b04841cc3ed484cull, /* 208 fcvt.s.l/rmm frm=1 */
    0xbb8cb6137c6d52c5ull, /* 209 fadd.s frm=1 */
    0xcb201c38b920ba9aull, /* 210 fadd.d frm=1 */
    0xc977b262ef18c2c2ull, /* 211 fsub.s frm=1 */
    0x6494fd8f32f9b091ull, /* 212 fsub.d frm=1 */
    0x65ef13a997396d0dull, /* 213 fmul.s frm=1 */
    0x750c7c818d0b5554ull, /* 214 fmul.d frm=1 */
    0xe8476d7065ea037full, /* 215 fdiv.s frm=1 */
    0xbcf3a350020b7131ull, /* 216 fdiv.d frm=1 */
    0x8821ede6f42d4466ull, /* 217 fsqrt.s frm=1 */
    0x86d082b330586de1ull, /* 218 fsqrt.d frm=1 */
    0x1491f38d90c905f0ull, /* 219 fmadd.s frm=1 */
    0x63f6adb2a209be81ull, /* 220 fmadd.d frm=1 */
    0x2d3e97acce2f3eceull, /* 221 fmsub.s frm=1 */
    0x59ee9cc793ad9f80ull, /* 222 fmsub.d frm=1 */
    0x9a9f6d142b213a41ull, /* 223 fnmsub.s frm=1 */
    0x64855408415cdfe7ull, /* 224 fnmsub.d frm=1 */
    0x146978e3c42f4fceull, /* 225 fnmadd.s frm=1 */
    0xbc90cad04ab4b3ebull, /* 226 fnmadd.d frm=1 */
    0x11f42084bce47dceull, /* 227 fsgnj.s frm=1 */
    0xd93145838cdafb15ull, /* 228 fsgnjn.s frm=1 */
    0x6722fc750b870886ull, /* 229 fsgnjx.s frm=1 */
    0x3a7ab41f075e9da3ull, /* 230 fsgnj.d frm=1 */
    0xe47962b429075b30ull, /* 231 fsgnjn.d frm=1 */
    0x4bbc3f20aaff64deull, /* 232 fsgnjx.d frm=1 */
    0x69ee578df7846400ull, /* 233 fmin.s frm=1 */
    0xfb7599dd66ef1218ull, /* 234 fmax.s frm=1 */
    0xcef82209e52bdec6ull, /* 235 fmin.d frm=1 */
    0xb55ea8e33c2cc583ull, /* 236 fmax.d frm=1 */
    0xc60ffe834e337851ull, /* 237 fle.s frm=1 */
    0x0ce89ca044a1923full, /* 238 flt.s frm=1 */
    0xd1a58fd530897e59ull, /* 239 feq.s frm=1 */
    0xa433c4a41afaf3eaull, /* 240 fle.d frm=1 */
    0xdd63dc2afad3bb98ull, /* 241 flt.d frm=1 */
    0xfdb9e47339adf1e5ull, /* 242 feq.d frm=1 */
    0x35c0024e2460922dull, /* 243 fcvt.s.d frm=1 */
    0x3ba75fb17a415260ull, /* 244 fcvt.d.s frm=1 */
    0xe7324658c68d6048ull, /* 245 fcvt.w.s frm=1 */
    0x192191db4e2db817ull, /* 246 fcvt.wu.s frm=1 */
    0x9e3af4d46b81ed8bull, /* 247 fcvt.l.s frm=1 */
    0xa536647439b5732bull, /* 248 fcvt.lu.s frm=1 */
    0x41cc3330ddd850d0ull, /* 249 fcvt.w.d frm=1 */
    0xfbe999090601f678ull, /* 250 fcvt.wu.d frm=1 */
    0xe55abf047fa410b7ull, /* 251 fcvt.l.d frm=1 */
    0x83425f353b95bc7eull, /* 252 fcvt.lu.d frm=1 */
    0xf8e84d82aa218ee4ull, /* 253 fcvt.s.w frm=1 */
    0xf9528cba9580beafull, /* 254 fcvt.s.wu frm=1 */
    0x7bc5f750b47c1058ull, /* 255 fcvt.s.l frm=1 */
    0x4aec6c63cd318506ull, /* 256 fcvt.s.lu frm=1 */
    0x45f7f5c504844d31ull, /* 257 fcvt.d.w frm=1 */
    0x08cdd8849205788dull, /* 258 fcvt.d.wu frm=1 */
    0xf24381c8add24afaull, /* 259 fcvt.d.l frm=1 */
    0x0c1224eacd84b8a6ull, /* 260 fcvt.d.lu frm=1 */
    0x7df698733e47af9cull, /* 261 fmv.x.w frm=1 */
    0x7ab0fcb7ac5247d3ull, /* 262 fclass.s frm=1 */
    0xe147df394c3e929eull, /* 263 fmv.x.d frm=1 */
    0xd3a19d27e984e8a1ull, /* 264 fclass.d frm=1 */
    0xe82d3f6004d75290ull, /* 265 fmv.w.x frm=1 */
    0xa057e84c080b7675ull, /* 266 fmv.d.x frm=1 */
    0x74bf80a92320a43cull, /* 267 fadd.s/rmm frm=1 */
    0x5d884b4df7899b53ull, /* 268 fmul.d/rmm frm=1 */
    0x6067a5edbce3b109ull, /* 269 fdiv.d/rup frm=1 */
    0x915955226770c808ull, /* 270 fsqrt.s/rdn frm=1 */
    0x584c6cdc87830d88ull, /* 271 fmadd.d/rtz frm=1 */
    0xfd312497a9d9740full, /* 272 fcvt.w.d/rmm frm=1 */
    0xaf21a327e5243875ull, /* 273 fcvt.s.l/rmm frm=1 */
    /* END ref_hashes */
};

TEST(fpu_qemu_vectors)
{
    const char *dump = getenv("FPU_DUMP_GROUP");
    int ng = ngroups(), bad = 0, nvec = 0;
    CHECK_EQ(sizeof(ref_hashes) / sizeof(ref_hashes[0]), (size_t)ng);
    if ((size_t)ng > sizeof(ref_hashes) / sizeof(ref_hashes[0])) return;
    if (dump) {
        run_group(atoi(dump), exec_vessel, 1);
        return;
    }
    for (int path = 1; path >= 0; path--) {
        fpu_set_host_path(path);
        nvec = 0;
        for (int g = 0; g < ng; g++) {
            nvec += group_size(g);
            uint64_t h = run_group(g, exec_vessel, 0);
            if (h != ref_hashes[g]) {
                struct group gr = group_at(g);
                fprintf(stderr, "  group %d (%s frm=%u, %s path) differs from QEMU\n", g,
                        tmpls[gr.t].name, gr.frm, path ? "host" : "soft");
                bad++;
            }
        }
    }
    fpu_set_host_path(1);
    CHECK_EQ(bad, 0);
    if (!bad && getenv("FPU_VERBOSE"))
        printf("fpu: %d groups, %d vectors agree with QEMU on both paths\n", ng, nvec);
}
#endif

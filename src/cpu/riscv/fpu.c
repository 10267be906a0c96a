/* RV64 F and D arithmetic: OP-FP and the fused multiply-adds (unprivileged spec ch. 11 "F" and
 * 12 "D", version 20191213).
 *
 * An exact integer soft-float does the arithmetic: unpack to a 64-bit significand, compute the
 * exact result or one with a sticky ("jammed") low bit, and round once in round_pack, with
 * tininess detected after rounding. It handles every rounding mode including RMM and all NaN
 * rules, and does not touch the host FPU state. Only square roots (RNE/RTZ/RDN/RUP, and RMM,
 * which never differs from RNE for a square root) go to the host's SQRTSD/SQRTSS, because the
 * integer square root is slow; see arith() for why the other operations stay in software.
 *
 * An earlier version ran add/sub/mul/div/FMA on SSE/FMA3 as well. It agreed with this code on
 * ~2M random vectors in the four host modes, which confirms that x86 also detects tininess after
 * rounding and raises UE only with PE, but it was not faster. The unit tests compare the
 * software and host square roots and check everything against QEMU-generated vectors. */
#include "cpu/riscv/fpu.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

typedef unsigned __int128 u128;

enum { RM_RNE = 0, RM_RTZ = 1, RM_RDN = 2, RM_RUP = 3, RM_RMM = 4, RM_DYN = 7 };

/* An IEEE binary format: p = precision including the hidden bit. */
struct ffmt {
    int p, emin, emax, bias, width;
    uint64_t expmask; /* exponent field, in place */
    uint64_t qnan;    /* RISC-V canonical NaN (spec 11.3) */
};
static const struct ffmt F32 = {24, -126, 127, 127, 32, 0x7f800000ull, 0x7fc00000ull};
static const struct ffmt F64 = {
    53, -1022, 1023, 1023, 64, 0x7ff0000000000000ull, 0x7ff8000000000000ull};

static inline uint64_t sign_bit(const struct ffmt *f)
{
    return 1ull << (f->width - 1);
}
static inline uint64_t frac_mask(const struct ffmt *f)
{
    return (1ull << (f->p - 1)) - 1;
}
static inline bool is_nan(const struct ffmt *f, uint64_t v)
{
    return (v & f->expmask) == f->expmask && (v & frac_mask(f));
}
static inline bool is_snan(const struct ffmt *f, uint64_t v)
{
    return is_nan(f, v) && !(v & (1ull << (f->p - 2)));
}

/* ---- soft-float core ---- */

enum fclass { C_ZERO, C_FINITE, C_INF, C_QNAN, C_SNAN };

/* A finite nonzero value is sig * 2^(exp - 63) with bit 63 of sig set. */
struct unp {
    int cls;
    bool sign;
    int32_t exp;
    uint64_t sig;
};

static struct unp unpack(const struct ffmt *f, uint64_t v)
{
    struct unp u = {.sign = (v >> (f->width - 1)) & 1};
    uint64_t e = (v & f->expmask) >> (f->p - 1), frac = v & frac_mask(f);
    if ((v & f->expmask) == f->expmask) {
        u.cls = !frac ? C_INF : (frac >> (f->p - 2)) ? C_QNAN : C_SNAN;
    } else if (e == 0) {
        if (!frac) {
            u.cls = C_ZERO;
        } else {
            int s;
            u.cls = C_FINITE;
            u.sig = frac << (64 - f->p);
            s = __builtin_clzll(u.sig);
            u.sig <<= s;
            u.exp = f->emin - s;
        }
    } else {
        u.cls = C_FINITE;
        u.sig = (frac | (1ull << (f->p - 1))) << (64 - f->p);
        u.exp = (int32_t)e - f->bias;
    }
    return u;
}

static inline bool nan_cls(int c)
{
    return c == C_QNAN || c == C_SNAN;
}

/* Shift right, ORing every bit shifted out into bit 0 ("jamming"), so later rounding still
 * sees that the value was inexact. */
static inline uint64_t jam64(uint64_t x, int32_t n)
{
    if (n <= 0) return x;
    if (n >= 64) return x != 0;
    return (x >> n) | ((x << (64 - n)) != 0);
}

static inline u128 jam128(u128 x, int32_t n)
{
    if (n <= 0) return x;
    if (n >= 128) return x != 0;
    return (x >> n) | ((x << (128 - n)) != 0);
}

static inline int clz128(u128 x)
{
    uint64_t hi = (uint64_t)(x >> 64);
    return hi ? __builtin_clzll(hi) : 64 + __builtin_clzll((uint64_t)x);
}

/* Whether to add one unit in the last place, given the discarded bits r (nonzero), the weight
 * of half a unit, and whether the kept value is odd. */
static inline bool round_up(int rm, bool sign, uint64_t r, uint64_t half, bool odd)
{
    switch (rm) {
    case RM_RNE: return r > half || (r == half && odd);
    case RM_RMM: return r >= half;
    case RM_RDN: return sign && r;
    case RM_RUP: return !sign && r;
    default: return false; /* RTZ */
    }
}

static inline uint64_t pack_zero(const struct ffmt *f, bool sign)
{
    return sign ? sign_bit(f) : 0;
}

static inline uint64_t pack_inf(const struct ffmt *f, bool sign)
{
    return pack_zero(f, sign) | f->expmask;
}

/* Round sig * 2^(e - 63) (bit 63 of sig set; bit 0 sticky) to format f. IEEE 754-2008 7.4/7.5
 * with tininess detected after rounding, as RISC-V requires (spec 11.2). */
static uint64_t round_pack(const struct ffmt *f, bool sign, int32_t e, uint64_t sig, int rm,
                           uint32_t *fl)
{
    const int sh = 64 - f->p;
    const uint64_t mask = (1ull << sh) - 1, half = 1ull << (sh - 1);
    bool tiny = false;
    uint64_t m, r;

    if (e < f->emin) {
        /* Tiny after rounding unless rounding to p bits with an unbounded exponent already
         * reaches 2^emin. */
        r = sig & mask;
        tiny = !(e == f->emin - 1 && (sig >> sh) == (1ull << f->p) - 1 && r &&
                 round_up(rm, sign, r, half, true));
        sig = jam64(sig, f->emin - e);
        e = f->emin;
    }
    r = sig & mask;
    m = sig >> sh;
    if (r) {
        *fl |= FFLAG_NX | (tiny ? FFLAG_UF : 0);
        if (round_up(rm, sign, r, half, m & 1)) m++;
    }
    if (m >> f->p) { /* carried to 2^p: renormalise (the dropped bit is 0) */
        m >>= 1;
        e++;
    }
    if (e > f->emax) {
        *fl |= FFLAG_OF | FFLAG_NX;
        bool to_max = rm == RM_RTZ || (rm == RM_RDN && !sign) || (rm == RM_RUP && sign);
        return to_max ? (pack_inf(f, sign) - 1) : pack_inf(f, sign);
    }
    /* The hidden bit, when present, adds one to the exponent field: this also turns a subnormal
     * that rounded up to 2^emin into the smallest normal. */
    return pack_zero(f, sign) + ((uint64_t)(e + f->bias - 1) << (f->p - 1)) + m;
}

/* (-1)^neg_prod * a * b [+ (-1)^neg_c * c], rounded once. has_c=false gives a plain product.
 * FADD/FSUB use b = 1.0. Spec 11.6: inf * 0 sets NV even when c is a quiet NaN. */
static uint64_t soft_fma(const struct ffmt *f, uint64_t a, uint64_t b, uint64_t c, bool has_c,
                         bool neg_prod, bool neg_c, int rm, uint32_t *fl)
{
    struct unp ua = unpack(f, a), ub = unpack(f, b);
    struct unp uc = has_c ? unpack(f, c) : (struct unp){.cls = C_ZERO};
    bool psign = ua.sign ^ ub.sign ^ neg_prod, csign = uc.sign ^ neg_c;
    bool inf_zero = (ua.cls == C_INF && ub.cls == C_ZERO) || (ua.cls == C_ZERO && ub.cls == C_INF);

    if (nan_cls(ua.cls) || nan_cls(ub.cls) || nan_cls(uc.cls)) {
        if (ua.cls == C_SNAN || ub.cls == C_SNAN || uc.cls == C_SNAN || inf_zero) *fl |= FFLAG_NV;
        return f->qnan;
    }
    if (inf_zero) {
        *fl |= FFLAG_NV;
        return f->qnan;
    }
    if (ua.cls == C_INF || ub.cls == C_INF) {
        if (uc.cls == C_INF && csign != psign) {
            *fl |= FFLAG_NV;
            return f->qnan;
        }
        return pack_inf(f, psign);
    }
    if (uc.cls == C_INF) return pack_inf(f, csign);
    if (ua.cls == C_ZERO || ub.cls == C_ZERO) {
        if (!has_c) return pack_zero(f, psign);
        if (uc.cls == C_ZERO) /* IEEE 754 6.3: exact zero sums are +0 except in RDN */
            return pack_zero(f, psign == csign ? psign : rm == RM_RDN);
        return (c & ~sign_bit(f)) | pack_zero(f, csign);
    }

    /* Exact product: at most 2*53 significant bits, value = prod * 2^(pe - 127). */
    u128 prod = (u128)ua.sig * ub.sig;
    int32_t pe = ua.exp + ub.exp;
    if (prod >> 127)
        pe++;
    else
        prod <<= 1;
    if (uc.cls == C_ZERO) /* adding a zero to a nonzero value is exact */
        return round_pack(f, psign, pe, (uint64_t)(prod >> 64) | ((uint64_t)prod != 0), rm, fl);

    /* Both at bit 126 (room for the carry). The product's low 20+ bits are zero, so the
     * shift is exact; the jammed operand is odd and the other even, so the sticky bit survives
     * the subtraction. */
    u128 big = prod >> 1, small = (u128)uc.sig << 63;
    int32_t e = pe, ce = uc.exp;
    bool sign = psign;
    if (ce > pe || (ce == pe && small > big)) {
        u128 t = big;
        big = small;
        small = t;
        e = ce;
        ce = pe;
        sign = csign;
    }
    small = jam128(small, e - ce);
    u128 sum = psign == csign ? big + small : big - small;
    if (!sum) return pack_zero(f, rm == RM_RDN);
    int lz = clz128(sum);
    sum <<= lz;
    return round_pack(f, sign, e + 1 - lz, (uint64_t)(sum >> 64) | ((uint64_t)sum != 0), rm, fl);
}

/* n / d for a quotient known to fit 64 bits (n >> 64 < d): x86 DIV would fault otherwise. */
static inline uint64_t div128(u128 n, uint64_t d, uint64_t *rem)
{
#if defined(__x86_64__)
    uint64_t q, r;
    __asm__("divq %[d]"
            : "=a"(q), "=d"(r)
            : [d] "rm"(d), "a"((uint64_t)n), "d"((uint64_t)(n >> 64)));
    *rem = r;
    return q;
#else
    *rem = (uint64_t)(n % d);
    return (uint64_t)(n / d);
#endif
}

static uint64_t soft_div(const struct ffmt *f, uint64_t a, uint64_t b, int rm, uint32_t *fl)
{
    struct unp ua = unpack(f, a), ub = unpack(f, b);
    bool sign = ua.sign ^ ub.sign;

    if (nan_cls(ua.cls) || nan_cls(ub.cls)) {
        if (ua.cls == C_SNAN || ub.cls == C_SNAN) *fl |= FFLAG_NV;
        return f->qnan;
    }
    if ((ua.cls == C_INF && ub.cls == C_INF) || (ua.cls == C_ZERO && ub.cls == C_ZERO)) {
        *fl |= FFLAG_NV;
        return f->qnan;
    }
    if (ua.cls == C_INF) return pack_inf(f, sign);
    if (ub.cls == C_ZERO) {
        *fl |= FFLAG_DZ;
        return pack_inf(f, sign);
    }
    if (ua.cls == C_ZERO || ub.cls == C_INF) return pack_zero(f, sign);

    /* 64 quotient bits (>= p + 2) plus a sticky bit from the remainder. Both significands
     * have bit 63 set, so the high half of n is below the divisor. */
    int32_t e = ua.exp - ub.exp;
    u128 n;
    if (ua.sig >= ub.sig) {
        n = (u128)ua.sig << 63;
    } else {
        n = (u128)ua.sig << 64;
        e--;
    }
    uint64_t rem, q = div128(n, ub.sig, &rem);
    return round_pack(f, sign, e, q | (rem != 0), rm, fl);
}

static uint64_t soft_sqrt(const struct ffmt *f, uint64_t a, int rm, uint32_t *fl)
{
    struct unp ua = unpack(f, a);

    if (nan_cls(ua.cls)) {
        if (ua.cls == C_SNAN) *fl |= FFLAG_NV;
        return f->qnan;
    }
    if (ua.cls == C_ZERO) return a; /* sqrt(-0) = -0 */
    if (ua.sign) {
        *fl |= FFLAG_NV;
        return f->qnan;
    }
    if (ua.cls == C_INF) return a;

    /* sqrt(sig * 2^(e-63)) = sqrt(n) * 2^(floor(e/2) - 63), n = sig * 2^(63 or 64) in
     * [2^126, 2^128), so the integer root has exactly 64 bits. */
    int32_t e = ua.exp;
    u128 n = (u128)ua.sig << ((e & 1) ? 64 : 63);
    u128 rem = 0, root = 0;
    for (int i = 0; i < 64; i++) {
        root <<= 1;
        rem = (rem << 2) | (n >> 126);
        n <<= 2;
        u128 t = (root << 1) | 1;
        if (rem >= t) {
            rem -= t;
            root |= 1;
        }
    }
    return round_pack(f, false, (e - (e & 1)) / 2, (uint64_t)root | (rem != 0), rm, fl);
}

/* FCVT.S.D / FCVT.D.S */
static uint64_t soft_cvt_ff(const struct ffmt *to, const struct ffmt *from, uint64_t a, int rm,
                            uint32_t *fl)
{
    struct unp u = unpack(from, a);
    switch (u.cls) {
    case C_SNAN: *fl |= FFLAG_NV; /* fall through */
    case C_QNAN: return to->qnan;
    case C_INF: return pack_inf(to, u.sign);
    case C_ZERO: return pack_zero(to, u.sign);
    default: return round_pack(to, u.sign, u.exp, u.sig, rm, fl);
    }
}

/* FCVT.S/D.{W,WU,L,LU}: mag is the integer's magnitude. */
static uint64_t soft_cvt_if(const struct ffmt *f, bool sign, uint64_t mag, int rm, uint32_t *fl)
{
    if (!mag) return 0;
    int lz = __builtin_clzll(mag);
    return round_pack(f, sign, 63 - lz, mag << lz, rm, fl);
}

/* FCVT.{W,WU,L,LU}.S/D. Spec 11.7 table 11.4: out of range or NaN saturates and sets NV only;
 * in range but inexact sets NX. Returns the value before 32-bit sign extension. */
static uint64_t soft_cvt_fi(const struct ffmt *f, uint64_t a, int bits, bool is_unsigned, int rm,
                            uint32_t *fl)
{
    struct unp u = unpack(f, a);
    uint64_t umax = bits == 64 ? ~0ull : (1ull << bits) - 1;
    uint64_t smax = umax >> 1;
    uint64_t hi = is_unsigned ? umax : smax;      /* positive limit */
    uint64_t lo = is_unsigned ? 0 : ~smax & umax; /* negative limit, as bits */
    uint64_t lo_mag = is_unsigned ? 0 : smax + 1; /* its magnitude */

    if (nan_cls(u.cls)) {
        *fl |= FFLAG_NV;
        return hi;
    }
    if (u.cls == C_INF) {
        *fl |= FFLAG_NV;
        return u.sign ? lo : hi;
    }
    if (u.cls == C_ZERO) return 0;
    if (u.exp >= 64) {
        *fl |= FFLAG_NV;
        return u.sign ? lo : hi;
    }
    /* Integer part in the high 64 bits, fraction in the low 64. */
    u128 v = u.exp < -64 ? 1 : jam128((u128)u.sig << 64, 63 - u.exp);
    uint64_t ip = (uint64_t)(v >> 64), fr = (uint64_t)v;
    if (fr && round_up(rm, u.sign, fr, 1ull << 63, ip & 1))
        ip++; /* cannot wrap: exp == 63 leaves no fraction */
    if (u.sign ? ip > lo_mag : ip > hi) {
        *fl |= FFLAG_NV;
        return u.sign ? lo : hi;
    }
    if (fr) *fl |= FFLAG_NX;
    return u.sign ? (0 - ip) & umax : ip;
}

/* ---- host square root ---- */

/* Off only in tests that compare the two paths. */
static int host_path_enabled = 1;

int fpu_set_host_path(int enable)
{
    int old = host_path_enabled;
    host_path_enabled = enable;
    return old;
}

#if defined(__x86_64__)
/* MXCSR: all exceptions masked, no FTZ/DAZ; RC bits 13-14 for RNE, RTZ, RDN, RUP. */
static const uint32_t mxcsr_for_rm[4] = {0x1f80, 0x7f80, 0x3f80, 0x5f80};

/* SQRTSD/SQRTSS in the requested mode. One asm block saves MXCSR, loads the mode, operates,
 * reads the flags and restores, so the compiler cannot move the operation across the mode
 * change. Returns RISC-V flags; MXCSR bit 1 (denormal operand) has no RISC-V counterpart. */
static uint32_t host_sqrt(const struct ffmt *f, uint64_t a, int rm, uint64_t *r)
{
    uint32_t csr = mxcsr_for_rm[rm], st, old;
    if (f == &F64) {
        double d;
        memcpy(&d, &a, 8);
        __asm__ volatile("stmxcsr %[old]\n\tldmxcsr %[new]\n\tsqrtsd %[x], %[x]\n\t"
                         "stmxcsr %[st]\n\tldmxcsr %[old]"
                         : [x] "+x"(d), [st] "=m"(st), [old] "=m"(old)
                         : [new] "m"(csr));
        memcpy(r, &d, 8);
    } else {
        float s;
        uint32_t v = (uint32_t)a;
        memcpy(&s, &v, 4);
        __asm__ volatile("stmxcsr %[old]\n\tldmxcsr %[new]\n\tsqrtss %[x], %[x]\n\t"
                         "stmxcsr %[st]\n\tldmxcsr %[old]"
                         : [x] "+x"(s), [st] "=m"(st), [old] "=m"(old)
                         : [new] "m"(csr));
        memcpy(&v, &s, 4);
        *r = v;
    }
    return ((st & 0x01) ? FFLAG_NV : 0) | ((st & 0x20) ? FFLAG_NX : 0);
}
#endif

/* ---- operations on register values ---- */

enum aop { A_ADD, A_SUB, A_MUL, A_DIV, A_SQRT, A_FMA };

/* Rounded arithmetic on unboxed values of format f. neg_prod/neg_c select the FMA form.
 *
 * Everything but square root uses the integer path: on x86, restoring MXCSR after an inexact
 * host operation costs tens of cycles (LDMXCSR with changed flag bits), so add, multiply,
 * divide and FMA were no faster on the host than here (measured, and both paths agreed on
 * ~2M random vectors). Square root is five times faster on the host. RMM square roots use RNE:
 * a square root is never exactly halfway between two floats (the square of a (p+1)-bit odd
 * significand has more than p bits), so the two modes always agree. Square roots cannot
 * overflow or underflow, so only NV and NX can arise. */
static uint64_t arith(const struct ffmt *f, enum aop op, uint64_t a, uint64_t b, uint64_t c,
                      bool neg_prod, bool neg_c, int rm, uint32_t *fl)
{
    const uint64_t one = (uint64_t)f->bias << (f->p - 1);
    switch (op) {
    case A_ADD: return soft_fma(f, a, one, b, true, false, false, rm, fl);
    case A_SUB: return soft_fma(f, a, one, b, true, false, true, rm, fl);
    case A_MUL: return soft_fma(f, a, b, 0, false, false, false, rm, fl);
    case A_DIV: return soft_div(f, a, b, rm, fl);
    case A_SQRT:
#if defined(__x86_64__)
        if (host_path_enabled && !is_nan(f, a)) {
            uint64_t r;
            *fl |= host_sqrt(f, a, rm == RM_RMM ? RM_RNE : rm, &r);
            return is_nan(f, r) ? f->qnan : r; /* sqrt(negative): the host's NaN is not ours */
        }
#endif
        return soft_sqrt(f, a, rm, fl);
    default: return soft_fma(f, a, b, c, true, neg_prod, neg_c, rm, fl);
    }
}

/* FMIN/FMAX (spec 11.6, version 2.2 semantics = IEEE 754-2019 minimumNumber/maximumNumber). */
static uint64_t fminmax(const struct ffmt *f, uint64_t a, uint64_t b, bool max, uint32_t *fl)
{
    bool an = is_nan(f, a), bn = is_nan(f, b);
    if (is_snan(f, a) || is_snan(f, b)) *fl |= FFLAG_NV;
    if (an && bn) return f->qnan;
    if (an) return b;
    if (bn) return a;
    uint64_t sb = sign_bit(f);
    bool a_less;
    if ((a ^ b) & sb)
        a_less = (a & sb) != 0; /* also orders -0 below +0 */
    else
        a_less = (a & sb) ? a > b : a < b;
    return a_less != max ? a : b;
}

/* FEQ/FLT/FLE (spec 11.8): 0 = eq (quiet), 1 = lt, 2 = le (signalling). */
static uint64_t fcmp(const struct ffmt *f, uint64_t a, uint64_t b, int which, uint32_t *fl)
{
    if (is_nan(f, a) || is_nan(f, b)) {
        if (which != 0 || is_snan(f, a) || is_snan(f, b)) *fl |= FFLAG_NV;
        return 0;
    }
    uint64_t sb = sign_bit(f);
    int64_t ka = (int64_t)(a & ~sb), kb = (int64_t)(b & ~sb);
    if (a & sb) ka = -ka;
    if (b & sb) kb = -kb;
    switch (which) {
    case 0: return ka == kb;
    case 1: return ka < kb;
    default: return ka <= kb;
    }
}

/* FCLASS (spec 11.9 table 11.5). */
static uint64_t fclass(const struct ffmt *f, uint64_t a)
{
    struct unp u = unpack(f, a);
    bool subnormal = u.cls == C_FINITE && !(a & f->expmask);
    switch (u.cls) {
    case C_INF: return u.sign ? 1u << 0 : 1u << 7;
    case C_ZERO: return u.sign ? 1u << 3 : 1u << 4;
    case C_SNAN: return 1u << 8;
    case C_QNAN: return 1u << 9;
    default:
        if (subnormal) return u.sign ? 1u << 2 : 1u << 5;
        return u.sign ? 1u << 1 : 1u << 6;
    }
}

/* ---- decode ---- */

/* A single read from an f register: improperly NaN-boxed values read as the canonical NaN
 * (spec 12.2). */
static inline uint64_t read_s(const struct fpu_state *fs, unsigned r)
{
    uint64_t v = fs->f[r];
    return (v >> 32) == 0xffffffffu ? (uint32_t)v : F32.qnan;
}

static inline uint64_t read_f(const struct fpu_state *fs, const struct ffmt *f, unsigned r)
{
    return f == &F64 ? fs->f[r] : read_s(fs, r);
}

static inline void write_f(struct fpu_state *fs, const struct ffmt *f, unsigned r, uint64_t v)
{
    fs->f[r] = f == &F64 ? v : fpu_box32((uint32_t)v);
}

static inline void write_x(uint64_t *x, unsigned r, uint64_t v)
{
    if (r) x[r] = v;
}

/* Resolve the rounding mode; -1 if reserved (spec 11.2: 5 and 6 reserved, DYN with frm >= 5
 * illegal). Instructions with an rm field check it even when rounding cannot matter. */
static inline int resolve_rm(const struct fpu_state *fs, unsigned rm)
{
    if (rm == RM_DYN) rm = fs->frm & 7;
    return rm <= RM_RMM ? (int)rm : -1;
}

int fpu_exec(struct fpu_state *fs, uint64_t *x, uint32_t insn)
{
    const unsigned opc = insn & 0x7f, rd = (insn >> 7) & 31, f3 = (insn >> 12) & 7;
    const unsigned rs1 = (insn >> 15) & 31, rs2 = (insn >> 20) & 31, fmt = (insn >> 25) & 3;
    const unsigned funct5 = insn >> 27;
    uint32_t fl = 0;
    int rm;

    if (fmt > 1) /* H and Q are not implemented */
        return -1;
    const struct ffmt *f = fmt ? &F64 : &F32;

    if (opc == 0x43 || opc == 0x47 || opc == 0x4b || opc == 0x4f) {
        /* FMADD a*b+c, FMSUB a*b-c, FNMSUB -(a*b)+c, FNMADD -(a*b)-c (spec 11.6) */
        if ((rm = resolve_rm(fs, f3)) < 0) return -1;
        bool neg_c = opc == 0x47 || opc == 0x4f, neg_prod = opc == 0x4b || opc == 0x4f;
        uint64_t r = arith(f, A_FMA, read_f(fs, f, rs1), read_f(fs, f, rs2), read_f(fs, f, funct5),
                           neg_prod, neg_c, rm, &fl);
        write_f(fs, f, rd, r);
        fs->fflags |= fl;
        return 0;
    }
    if (opc != 0x53) return -1;

    /* rs2 is an operand only for two-operand instructions; elsewhere it is part of the opcode */
    uint64_t a = read_f(fs, f, rs1), b = funct5 == 0x0b ? 0 : read_f(fs, f, rs2), r;
    switch (funct5) {
    case 0x00: /* FADD */
    case 0x01: /* FSUB */
    case 0x02: /* FMUL */
    case 0x03: /* FDIV */
    case 0x0b: /* FSQRT */
        if ((rm = resolve_rm(fs, f3)) < 0 || (funct5 == 0x0b && rs2 != 0)) return -1;
        {
            static const enum aop ops[] = {
                [0] = A_ADD, [1] = A_SUB, [2] = A_MUL, [3] = A_DIV, [0x0b] = A_SQRT};
            r = arith(f, ops[funct5], a, b, 0, false, false, rm, &fl);
        }
        write_f(fs, f, rd, r);
        break;
    case 0x04: { /* FSGNJ, FSGNJN, FSGNJX: bit operations, no NaN canonicalisation */
        uint64_t sb = sign_bit(f);
        if (f3 > 2) return -1;
        uint64_t s = f3 == 0 ? b & sb : f3 == 1 ? ~b & sb : (a ^ b) & sb;
        write_f(fs, f, rd, (a & ~sb) | s);
        break;
    }
    case 0x05: /* FMIN, FMAX */
        if (f3 > 1) return -1;
        write_f(fs, f, rd, fminmax(f, a, b, f3 == 1, &fl));
        break;
    case 0x08: { /* FCVT.S.D (fmt S, rs2 = D) and FCVT.D.S (fmt D, rs2 = S) */
        if ((rm = resolve_rm(fs, f3)) < 0 || rs2 != (fmt ? 0u : 1u)) return -1;
        const struct ffmt *from = fmt ? &F32 : &F64;
        write_f(fs, f, rd, soft_cvt_ff(f, from, read_f(fs, from, rs1), rm, &fl));
        break;
    }
    case 0x14: /* FLE (f3 0), FLT (1), FEQ (2) */
        if (f3 > 2) return -1;
        write_x(x, rd, fcmp(f, a, b, 2 - f3, &fl));
        break;
    case 0x18: /* FCVT.{W,WU,L,LU}.fmt */
        if ((rm = resolve_rm(fs, f3)) < 0 || rs2 > 3) return -1;
        r = soft_cvt_fi(f, a, rs2 < 2 ? 32 : 64, rs2 & 1, rm, &fl);
        write_x(x, rd, rs2 < 2 ? (uint64_t)(int64_t)(int32_t)r : r); /* W[U] sign-extends */
        break;
    case 0x1a: { /* FCVT.fmt.{W,WU,L,LU} */
        if ((rm = resolve_rm(fs, f3)) < 0 || rs2 > 3) return -1;
        uint64_t v = x[rs1];
        bool neg = false;
        switch (rs2) {
        case 0: v = (uint64_t)(int64_t)(int32_t)v; /* fall through */
        case 2:
            neg = (int64_t)v < 0;
            if (neg) v = 0 - v;
            break;
        case 1: v = (uint32_t)v; break;
        default: break;
        }
        r = soft_cvt_if(f, neg, v, rm, &fl);
        write_f(fs, f, rd, r);
        break;
    }
    case 0x1c: /* FMV.X.W / FMV.X.D (f3 0), FCLASS (f3 1) */
        if (rs2 != 0 || f3 > 1) return -1;
        if (f3 == 1)
            r = fclass(f, a);
        else /* a transfer: the raw low bits, NaN box not checked (spec 12.2) */
            r = fmt ? fs->f[rs1] : (uint64_t)(int64_t)(int32_t)fs->f[rs1];
        write_x(x, rd, r);
        break;
    case 0x1e: /* FMV.W.X / FMV.D.X */
        if (rs2 != 0 || f3 != 0) return -1;
        write_f(fs, f, rd, fmt ? x[rs1] : (uint32_t)x[rs1]);
        break;
    default: return -1;
    }
    fs->fflags |= fl;
    return 0;
}

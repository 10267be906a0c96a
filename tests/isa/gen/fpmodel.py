"""A small exact model of RISC-V F/D arithmetic, used to generate the expected values of the
fp_*.S tests. Values are exact rationals (fractions.Fraction); every operation rounds once
per IEEE 754-2008 with RISC-V's choices (unpriv spec, "F" chapter):
  - NaN results are the canonical NaN (0x7fc00000 / 0x7ff8000000000000), payloads dropped;
  - tininess is detected after rounding; underflow is raised only when also inexact;
  - single values in 64-bit registers are NaN-boxed (upper 32 bits all ones).
Flags: NX=1 UF=2 OF=4 DZ=8 NV=16. Rounding modes: 0 RNE, 1 RTZ, 2 RDN, 3 RUP, 4 RMM."""
from fractions import Fraction
from math import isqrt

NX, UF, OF, DZ, NV = 1, 2, 4, 8, 16
RNE, RTZ, RDN, RUP, RMM = range(5)
RM_NAMES = ["rne", "rtz", "rdn", "rup", "rmm"]


class Fmt:
    def __init__(self, name, ebits, p):
        self.name, self.ebits, self.p = name, ebits, p
        self.bits = ebits + p
        self.bias = (1 << (ebits - 1)) - 1
        self.emin = 1 - self.bias
        self.emax = self.bias
        self.qnan = ((1 << ebits) - 1) << (p - 1) | 1 << (p - 2)
        self.maxfin = Fraction((1 << p) - 1) * Fraction(2) ** (self.emax - p + 1)


S = Fmt("s", 8, 24)
D = Fmt("d", 11, 53)


# A decoded value: ("nan", signalling) | ("inf", sign) | ("num", sign, Fraction >= 0)
def decode(bits, f):
    sign = bits >> (f.bits - 1) & 1
    e = bits >> (f.p - 1) & ((1 << f.ebits) - 1)
    m = bits & ((1 << (f.p - 1)) - 1)
    if e == (1 << f.ebits) - 1:
        if m == 0:
            return ("inf", sign)
        return ("nan", not (m >> (f.p - 2) & 1))
    if e == 0:
        v = Fraction(m) * Fraction(2) ** (f.emin - f.p + 1)
    else:
        v = Fraction(m | 1 << (f.p - 1)) * Fraction(2) ** (e - f.bias - f.p + 1)
    return ("num", sign, v)


def encode_inf(sign, f):
    return sign << (f.bits - 1) | ((1 << f.ebits) - 1) << (f.p - 1)


def encode_zero(sign, f):
    return sign << (f.bits - 1)


def ilog2(x):
    """floor(log2(x)) for a positive Fraction."""
    e = x.numerator.bit_length() - x.denominator.bit_length()
    if Fraction(2) ** e > x:
        e -= 1
    while Fraction(2) ** (e + 1) <= x:
        e += 1
    return e


def round_int(q, sign, rm):
    """Round the non-negative rational q (a magnitude) to an integer; returns (n, inexact)."""
    n = q.numerator // q.denominator
    rem = q - n
    if rem == 0:
        return n, False
    up = False
    if rm == RNE:
        up = rem > Fraction(1, 2) or (rem == Fraction(1, 2) and n & 1)
    elif rm == RTZ:
        up = False
    elif rm == RDN:
        up = sign == 1
    elif rm == RUP:
        up = sign == 0
    elif rm == RMM:
        up = rem >= Fraction(1, 2)
    return n + (1 if up else 0), True


def round_to(sign, x, f, rm):
    """Round sign * x (x > 0) to format f. Returns (bits, flags)."""
    flags = 0
    e = ilog2(x)
    # Tininess after rounding: round with unbounded exponent range first.
    q_unb = Fraction(2) ** (e - f.p + 1)
    n_unb, _ = round_int(x / q_unb, sign, rm)
    tiny = n_unb * q_unb < Fraction(2) ** f.emin
    quantum = Fraction(2) ** (max(e, f.emin) - f.p + 1)
    n, inexact = round_int(x / quantum, sign, rm)
    v = n * quantum
    if inexact:
        flags |= NX
        if tiny:
            flags |= UF
    if v > f.maxfin:
        flags |= OF | NX
        to_inf = rm in (RNE, RMM) or (rm == RUP and sign == 0) or (rm == RDN and sign == 1)
        if to_inf:
            return encode_inf(sign, f), flags
        return encode_num(sign, f.maxfin, f), flags
    if v == 0:
        return encode_zero(sign, f), flags
    return encode_num(sign, v, f), flags


def encode_num(sign, v, f):
    """Encode an exactly representable non-zero magnitude v."""
    e = ilog2(v)
    if e < f.emin:
        m = v / Fraction(2) ** (f.emin - f.p + 1)
        assert m.denominator == 1
        return sign << (f.bits - 1) | int(m)
    m = v / Fraction(2) ** (e - f.p + 1)
    assert m.denominator == 1 and (1 << (f.p - 1)) <= m < (1 << f.p)
    return sign << (f.bits - 1) | (e + f.bias) << (f.p - 1) | (int(m) & ((1 << (f.p - 1)) - 1))


def from_signed(sign, x, f, rm):
    """Round a signed exact value (sign, |x|), handling zero."""
    if x == 0:
        return encode_zero(sign, f), 0
    return round_to(sign, x, f, rm)


def snan_in(*vals):
    return any(v[0] == "nan" and v[1] for v in vals)


def nan_result(f, *vals):
    return f.qnan, (NV if snan_in(*vals) else 0)


def signed_val(v):
    return -v[2] if v[1] else v[2]


def add(a, b, f, rm, negate_b=False):
    A, B = decode(a, f), decode(b, f)
    if negate_b and B[0] != "nan":
        B = (B[0], 1 - B[1]) + B[2:]
    if A[0] == "nan" or B[0] == "nan":
        return nan_result(f, A, B)
    if A[0] == "inf" and B[0] == "inf":
        if A[1] != B[1]:
            return f.qnan, NV
        return encode_inf(A[1], f), 0
    if A[0] == "inf":
        return encode_inf(A[1], f), 0
    if B[0] == "inf":
        return encode_inf(B[1], f), 0
    s = signed_val(A) + signed_val(B)
    if s == 0:
        if A[2] == 0 and B[2] == 0 and A[1] == B[1]:
            return encode_zero(A[1], f), 0
        return encode_zero(1 if rm == RDN else 0, f), 0
    return round_to(1 if s < 0 else 0, abs(s), f, rm)


def sub(a, b, f, rm):
    return add(a, b, f, rm, negate_b=True)


def mul(a, b, f, rm):
    A, B = decode(a, f), decode(b, f)
    if A[0] == "nan" or B[0] == "nan":
        return nan_result(f, A, B)
    sign = A[1] ^ B[1]
    if A[0] == "inf" or B[0] == "inf":
        if (A[0] == "num" and A[2] == 0) or (B[0] == "num" and B[2] == 0):
            return f.qnan, NV
        return encode_inf(sign, f), 0
    return from_signed(sign, A[2] * B[2], f, rm)


def div(a, b, f, rm):
    A, B = decode(a, f), decode(b, f)
    if A[0] == "nan" or B[0] == "nan":
        return nan_result(f, A, B)
    sign = A[1] ^ B[1]
    if A[0] == "inf":
        if B[0] == "inf":
            return f.qnan, NV
        return encode_inf(sign, f), 0
    if B[0] == "inf":
        return encode_zero(sign, f), 0
    if B[2] == 0:
        if A[2] == 0:
            return f.qnan, NV
        return encode_inf(sign, f), DZ
    return from_signed(sign, A[2] / B[2], f, rm)


def sqrt(a, f, rm):
    A = decode(a, f)
    if A[0] == "nan":
        return nan_result(f, A)
    if A[0] == "inf":
        return (f.qnan, NV) if A[1] else (encode_inf(0, f), 0)
    if A[2] == 0:
        return encode_zero(A[1], f), 0
    if A[1]:
        return f.qnan, NV
    K = 1200  # enough bits below the binary point even for the smallest subnormal
    scaled = A[2] * Fraction(4) ** K
    n = scaled.numerator // scaled.denominator
    r = isqrt(n)
    exact = r * r == n and scaled.denominator == 1
    v = Fraction(r, 2**K) if exact else Fraction(2 * r + 1, 2 ** (K + 1))
    return round_to(0, v, f, rm)


def fma(a, b, c, f, rm, neg_prod=False, neg_c=False):
    A, B, C = decode(a, f), decode(b, f), decode(c, f)
    # inf * 0 is invalid even when the addend is a quiet NaN (unpriv spec, F chapter)
    if (A[0] == "inf" and B[0] == "num" and B[2] == 0) or (
        B[0] == "inf" and A[0] == "num" and A[2] == 0
    ):
        return f.qnan, NV
    if A[0] == "nan" or B[0] == "nan" or C[0] == "nan":
        return nan_result(f, A, B, C)
    psign = A[1] ^ B[1] ^ (1 if neg_prod else 0)
    csign = C[1] ^ (1 if neg_c else 0)
    if A[0] == "inf" or B[0] == "inf":
        if C[0] == "inf" and csign != psign:
            return f.qnan, NV
        return encode_inf(psign, f), 0
    if C[0] == "inf":
        return encode_inf(csign, f), 0
    p = A[2] * B[2]
    s = (-p if psign else p) + (-C[2] if csign else C[2])
    if s == 0:
        if p == 0 and C[2] == 0 and psign == csign:
            return encode_zero(psign, f), 0
        return encode_zero(1 if rm == RDN else 0, f), 0
    return round_to(1 if s < 0 else 0, abs(s), f, rm)


def to_int(a, f, rm, bits, signed):
    """fcvt.{w,wu,l,lu}.{s,d}: returns (64-bit register value, flags)."""
    A = decode(a, f)
    lo = -(1 << (bits - 1)) if signed else 0
    hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    if A[0] == "nan":
        r, fl = hi, NV
    elif A[0] == "inf":
        r, fl = (lo if A[1] else hi), NV
    else:
        n, inexact = round_int(A[2], A[1], rm)
        v = -n if A[1] else n
        if v < lo or v > hi:
            r, fl = (lo if v < lo else hi), NV
        else:
            r, fl = v, (NX if inexact else 0)
    # 32-bit results are sign-extended into the 64-bit register (also for wu)
    if bits == 32:
        r &= 0xFFFFFFFF
        if r >> 31:
            r -= 1 << 32
    return r & (2**64 - 1), fl


def from_int(v, f, rm):
    """fcvt.{s,d}.{w,wu,l,lu} from the exact integer v."""
    return from_signed(1 if v < 0 else 0, Fraction(abs(v)), f, rm)


def convert(a, fsrc, fdst, rm):
    """fcvt.s.d / fcvt.d.s"""
    A = decode(a, fsrc)
    if A[0] == "nan":
        return nan_result(fdst, A)
    if A[0] == "inf":
        return encode_inf(A[1], fdst), 0
    return from_signed(A[1], A[2], fdst, rm)


def fclass(a, f):
    A = decode(a, f)
    if A[0] == "nan":
        return 1 << 8 if A[1] else 1 << 9
    if A[0] == "inf":
        return 1 << 0 if A[1] else 1 << 7
    if A[2] == 0:
        return 1 << 3 if A[1] else 1 << 4
    sub = A[2] < Fraction(2) ** f.emin
    if A[1]:
        return 1 << 2 if sub else 1 << 1
    return 1 << 5 if sub else 1 << 6


def minmax(a, b, f, is_max):
    A, B = decode(a, f), decode(b, f)
    fl = NV if snan_in(A, B) else 0
    if A[0] == "nan" and B[0] == "nan":
        return f.qnan, fl
    if A[0] == "nan":
        return b, fl
    if B[0] == "nan":
        return a, fl
    va = (Fraction(-1) if A[1] else Fraction(1)) * (Fraction(10) ** 400 if A[0] == "inf" else A[2])
    vb = (Fraction(-1) if B[1] else Fraction(1)) * (Fraction(10) ** 400 if B[0] == "inf" else B[2])
    if va == vb:  # only +-0 differ in bits: min prefers -0, max +0
        if is_max:
            return (a if A[1] == 0 else b), fl
        return (a if A[1] == 1 else b), fl
    if is_max:
        return (a if va > vb else b), fl
    return (a if va < vb else b), fl


def compare(a, b, f, op):
    """feq (quiet), flt, fle (signalling)."""
    A, B = decode(a, f), decode(b, f)
    if A[0] == "nan" or B[0] == "nan":
        if op == "eq":
            return 0, (NV if snan_in(A, B) else 0)
        return 0, NV

    def val(X):
        s = -1 if X[1] else 1
        return s * (Fraction(10) ** 400 if X[0] == "inf" else X[2])

    va, vb = val(A), val(B)
    r = {"eq": va == vb, "lt": va < vb, "le": va <= vb}[op]
    return int(r), 0


def box(v32):
    """NaN-box a single into a 64-bit FP register image."""
    return 0xFFFFFFFF00000000 | v32


def unbox(reg, f):
    """The single value an operation sees in a 64-bit register (canonical NaN if not boxed)."""
    if f is S:
        return reg & 0xFFFFFFFF if reg >> 32 == 0xFFFFFFFF else S.qnan
    return reg


def result_reg(bits, f):
    return box(bits) if f is S else bits

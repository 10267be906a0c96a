#!/usr/bin/env python3
"""Generates tests/isa/zba.S, zbb.S and zbs.S: every Zba/Zbb/Zbs instruction on edge inputs,
expected values from the small Python model below (unpriv spec, "B" chapter).
Run: python3 tests/isa/gen/gen_bitmanip.py"""
import os

M = (1 << 64) - 1


def sx(v, b):
    v &= (1 << b) - 1
    return v - (1 << b) if v >> (b - 1) else v


def u(v):
    return v & M


def z32(v):
    return v & 0xFFFFFFFF


def s32(v):
    return u(sx(v, 32))


def rol(a, s):
    s &= 63
    return u((a << s) | (a >> (64 - s))) if s else a


def ror(a, s):
    s &= 63
    return u((a >> s) | (a << (64 - s))) if s else a


def rolw(a, s):
    s &= 31
    a = z32(a)
    return s32((a << s) | (a >> (32 - s)) if s else a)


def rorw(a, s):
    s &= 31
    a = z32(a)
    return s32((a >> s) | (a << (32 - s)) if s else a)


OPS = {  # rd = op(rs1, rs2)
    "add.uw": lambda a, b: u(b + z32(a)),
    "sh1add": lambda a, b: u(b + (a << 1)),
    "sh2add": lambda a, b: u(b + (a << 2)),
    "sh3add": lambda a, b: u(b + (a << 3)),
    "sh1add.uw": lambda a, b: u(b + (z32(a) << 1)),
    "sh2add.uw": lambda a, b: u(b + (z32(a) << 2)),
    "sh3add.uw": lambda a, b: u(b + (z32(a) << 3)),
    "andn": lambda a, b: a & u(~b),
    "orn": lambda a, b: u(a | u(~b)),
    "xnor": lambda a, b: u(~(a ^ b)),
    "max": lambda a, b: a if sx(a, 64) >= sx(b, 64) else b,
    "min": lambda a, b: a if sx(a, 64) <= sx(b, 64) else b,
    "maxu": max,
    "minu": min,
    "rol": rol,
    "ror": ror,
    "rolw": rolw,
    "rorw": rorw,
    "bclr": lambda a, b: a & u(~(1 << (b & 63))),
    "bset": lambda a, b: a | (1 << (b & 63)),
    "binv": lambda a, b: a ^ (1 << (b & 63)),
    "bext": lambda a, b: (a >> (b & 63)) & 1,
}
IMM = {  # rd = op(rs1, shamt)
    "slli.uw": lambda a, s: u(z32(a) << s),
    "rori": ror,
    "roriw": rorw,
    "bclri": OPS["bclr"],
    "bseti": OPS["bset"],
    "binvi": OPS["binv"],
    "bexti": OPS["bext"],
}


def clz(a, w):
    for i in range(w - 1, -1, -1):
        if a >> i & 1:
            return w - 1 - i
    return w


def ctz(a, w):
    for i in range(w):
        if a >> i & 1:
            return i
    return w


def orcb(a):
    return sum(0xFF << (8 * i) for i in range(8) if (a >> (8 * i)) & 0xFF)


UNARY = {
    "clz": lambda a: clz(a, 64), "clzw": lambda a: clz(z32(a), 32),
    "ctz": lambda a: ctz(a, 64), "ctzw": lambda a: ctz(z32(a), 32),
    "cpop": lambda a: bin(a).count("1"), "cpopw": lambda a: bin(z32(a)).count("1"),
    "sext.b": lambda a: u(sx(a, 8)), "sext.h": lambda a: u(sx(a, 16)),
    "zext.h": lambda a: a & 0xFFFF, "zext.w": z32,
    "orc.b": orcb, "rev8": lambda a: int.from_bytes(a.to_bytes(8, "little"), "big"),
}
GROUPS = {
    "zba": ["add.uw", "sh1add", "sh2add", "sh3add", "sh1add.uw", "sh2add.uw", "sh3add.uw",
            "slli.uw", "zext.w"],
    "zbb": ["andn", "orn", "xnor", "clz", "clzw", "ctz", "ctzw", "cpop", "cpopw", "max", "maxu",
            "min", "minu", "sext.b", "sext.h", "zext.h", "rol", "rolw", "ror", "rori", "rorw",
            "roriw", "orc.b", "rev8"],
    "zbs": ["bclr", "bclri", "bext", "bexti", "binv", "binvi", "bset", "bseti"],
}
DESC = {
    "zba": "Zba: add.uw (and zext.w), sh1add..sh3add, their .uw forms, slli.uw.",
    "zbb": "Zbb: andn/orn/xnor, clz/ctz/cpop (+w), max/min(u), sext.b/h, zext.h, rol/ror(i)(w),\n"
           " * orc.b, rev8. Register shift amounts use only their low 6 (W: 5) bits.",
    "zbs": "Zbs: bclr/bext/binv/bset and their immediate forms; the bit index is rs2 mod 64.",
}
VALS = [0, M, 1, 0x8000000000000000, 0x7FFFFFFFFFFFFFFF, 0x80000000, 0xFFFFFFFF,
        0x0123456789ABCDEF, 0xFEDCBA9876543210, 0x00FF00000000FF01, 0x100000000]
SHIFTS = [0, 1, 31, 32, 33, 63, 64, 0xFFFFFFFFFFFFFFC1]
SHIFT_OPS = ("rol", "ror", "rolw", "rorw", "bclr", "bset", "binv", "bext")
FEW = [0, M, 1, 0x8000000000000000, 0x80000000, 0xFFFFFFFF, 0x0123456789ABCDEF,
       0xFFFFFFFFFFFFFFF0]
UNARY_VALS = VALS + [0x80, 0x7F, 0x8000, 0x7FFF, 0xFFFFFFFF7FFFFFFF, 0x0000000100000000,
                     0x0001000000010000, 0x8080]


def gen(group):
    lines, n = [], 1

    def out(s):
        lines.append("    " + s)

    for op in GROUPS[group]:
        out(f"/* {op} */")
        if op in OPS:
            if op in SHIFT_OPS:
                pairs = [(a, b) for a in VALS for b in SHIFTS]
            else:
                pairs = [(a, b) for a in FEW for b in VALS][:15]
            for a, b in pairs:
                out(f"TEST_RR({n}, {op}, 0x{OPS[op](a, b):x}, 0x{a:x}, 0x{b:x})")
                n += 1
            v = 0x0123456789ABCDEF
            out(f"TEST_RR_SRC12_EQ_DEST({n}, {op}, 0x{OPS[op](v, v):x}, 0x{v:x})")
            n += 1
        elif op in IMM:
            shs = [0, 1, 16, 31] if op == "roriw" else [0, 1, 31, 32, 63]
            for a in [0, M, 1, 0x8000000000000000, 0x0123456789ABCDEF, 0xFFFFFFFF80000001]:
                for s in shs:
                    out(f"TEST_RI({n}, {op}, 0x{IMM[op](a, s):x}, 0x{a:x}, {s})")
                    n += 1
            v = 0xFEDCBA9876543210
            out(f"TEST_RI_SRC1_EQ_DEST({n}, {op}, 0x{IMM[op](v, 5):x}, 0x{v:x}, 5)")
            n += 1
        else:
            for a in UNARY_VALS:
                if op == "ctzw" and z32(a) == 0 and a != 0 and ctz(a, 64) != 32:
                    # QEMU 7.2 counts into the upper half (fixed in QEMU 8.0)
                    out(f"/* test {n}: QEMU 7.2 ctzw bug tolerated on QEMU only */")
                    out(f"TESTNUM {n}")
                    out(f"li a1, 0x{a:x}")
                    out("ctzw a0, a1")
                    out(f"CHECK_EQ2_QEMU a0, 32, 32, {ctz(a, 64)}")
                else:
                    out(f"TEST_R({n}, {op}, 0x{UNARY[op](a):x}, 0x{a:x})")
                n += 1
            v = 0xFEDCBA9876543210
            out(f"TEST_R_SRC1_EQ_DEST({n}, {op}, 0x{UNARY[op](v):x}, 0x{v:x})")
            n += 1
    return lines, n - 1


if __name__ == "__main__":
    outdir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for group in GROUPS:
        lines, count = gen(group)
        head = ["/* " + DESC[group],
                " * Inputs: 0, all ones, single bits, mixed patterns. GENERATED by",
                " * tests/isa/gen/gen_bitmanip.py from a model of the spec (checked against QEMU);",
                " * edit the generator, not this file. */",
                '#include "common.h"', "", "    .text", "    .globl test_main", "test_main:"]
        with open(os.path.join(outdir, group + ".S"), "w") as f:
            f.write("\n".join(head + lines + ["    j pass"]) + "\n")
        print(f"{group}.S: {count} tests")

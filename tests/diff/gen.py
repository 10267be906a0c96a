#!/usr/bin/env python3
"""Random RV64GC (+Zba/Zbb/Zbs) program generator for the differential tester.

From a seed, writes one bare-metal assembly program (for 0x80000000, run with QEMU -bios
or vessel --firmware) made of sequences. Each sequence starts from its own seeded random
state (x1..x31, f0..f31, fcsr, a 256-byte memory block), runs LEN random "units" (one
instruction, or a short fixed pattern such as lr+sc or la+jalr) and dumps its state through
the UART as one line of hex (see README.md for the line format).

Sequence n of seed S depends only on (S, n). `--trace n` builds the same program (same
layout, so pc-dependent values agree) but runs only sequence n, with a state dump at the start
of each of its units, so the runner can find the first unit after which the emulators disagree.

Registers: s0 (x8) always holds the block address and is never written by a unit; every
load/store/AMO address is s0 + an offset inside the block. Python stdlib only.
"""
import argparse
import random
import struct
import sys

BLOCK = 256  # bytes of private memory per sequence (s0 points at it)
DUMP = BLOCK  # the dump area follows the block: pc, x1..x31, f0..f31, fcsr
NWORDS = 1 + 31 + 32 + 1 + 1 + BLOCK // 8  # words per dump line
BASE = 8  # s0
RMS = ["rne", "rtz", "rdn", "rup", "rmm", "dyn"]

# ---- values ------------------------------------------------------------------------------

X_SPECIAL = [0, 1, 2, 3, 0xFFFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFE, 0x8000000000000000,
             0x7FFFFFFFFFFFFFFF, 0x80000000, 0x7FFFFFFF, 0xFFFFFFFF80000000, 0xFFFFFFFF,
             0x100000000, 0x8000, 0xFFFF, 0x80, 0xFF, 63, 64, 31, 32]


def rand_x(r):
    k = r.random()
    if k < 0.35:
        return r.choice(X_SPECIAL)
    if k < 0.5:  # small signed
        return r.randint(-40, 40) & 0xFFFFFFFFFFFFFFFF
    if k < 0.65:  # sign-extended 32-bit
        v = r.getrandbits(32)
        return (v | 0xFFFFFFFF00000000) if v & 0x80000000 else v
    if k < 0.75:  # a value an FP conversion finds interesting
        return struct.unpack("<Q", struct.pack("<d", r.choice(D_NICE)))[0]
    return r.getrandbits(64)


D_NICE = [0.0, -0.0, 1.0, -1.0, 0.5, 1.5, 2.5, -2.5, 3.0, 0.1, 1e300, -1e-300,
          2.0**31, -2.0**31, 2.0**31 - 0.5, 2.0**32, 2.0**63, -2.0**63, 2.0**64, 4294967295.5,
          float("inf"), float("-inf"), 1.0 / 3, 2.0**-1022, 2.0**-1074, 1.7976931348623157e308]
D_BITS = [0x7FF8000000000000, 0xFFF8000000000000, 0x7FF0000000000001, 0xFFF4000000000000,
          0x7FFFFFFFFFFFFFFF, 0x000FFFFFFFFFFFFF, 0x0000000000000001, 0x8000000000000001,
          0x0010000000000000, 0x7FEFFFFFFFFFFFFF]
S_BITS = [0x7FC00000, 0xFFC00000, 0x7F800001, 0xFFA00000, 0x7F800000, 0xFF800000,
          0x00000000, 0x80000000, 0x00000001, 0x807FFFFF, 0x00800000, 0x7F7FFFFF, 0x3F800000,
          0xBF800000, 0x3F000000, 0x3FC00000, 0x40200000, 0x4F000000, 0xCF000000, 0x5F000000,
          0xDF000000, 0x4F800000, 0x5F800000, 0x3EAAAAAB]


def rand_single(r):
    k = r.random()
    if k < 0.5:
        return r.choice(S_BITS)
    if k < 0.7:  # random exponent near 1.0 (ties and inexact results)
        return (r.getrandbits(1) << 31) | (r.randint(118, 160) << 23) | r.getrandbits(23)
    if k < 0.8:  # near the subnormal range or overflow: products and sums leave the range
        e = r.choice([r.randint(0, 40), r.randint(215, 254)])
        return (r.getrandbits(1) << 31) | (e << 23) | r.getrandbits(23)
    return r.getrandbits(32)


def rand_f(r):
    k = r.random()
    if k < 0.4:  # a NaN-boxed single (unprivileged spec 20191213, 12.2 "NaN Boxing")
        return 0xFFFFFFFF00000000 | rand_single(r)
    if k < 0.47:  # not properly boxed: reads as the canonical NaN
        return (r.getrandbits(32) << 32) | rand_single(r)
    if k < 0.7:
        return struct.unpack("<Q", struct.pack("<d", r.choice(D_NICE)))[0]
    if k < 0.85:
        return r.choice(D_BITS)
    if k < 0.9:
        return (r.getrandbits(1) << 63) | (r.randint(1000, 1100) << 52) | r.getrandbits(52)
    if k < 0.95:  # near the subnormal range or overflow
        e = r.choice([r.randint(0, 80), r.randint(1970, 2046)])
        return (r.getrandbits(1) << 63) | (e << 52) | r.getrandbits(52)
    return r.getrandbits(64)


# ---- instruction units ---------------------------------------------------------------------


class Gen:
    def __init__(self, r, misaligned):
        self.r = r
        self.misaligned = misaligned
        self.avoid = {BASE}  # registers no unit may write (the base, a loop's counter)

    # registers
    def rd(self):
        r = self.r
        if r.random() < 0.03:
            return "x0"
        while True:
            v = r.randint(1, 31)
            if v not in self.avoid:
                return "x%d" % v

    def rs(self):
        return "x%d" % self.r.randint(0, 31)

    def rdc(self):  # compressed rd' (x9..x15, never the base)
        return "x%d" % self.r.randint(9, 15)

    def rsc(self):
        return "x%d" % self.r.randint(8, 15)

    def fr(self):
        return "f%d" % self.r.randint(0, 31)

    def frc(self):
        return "f%d" % self.r.randint(8, 15)

    def off(self, size, limit=None):
        """An offset of an access of `size` bytes inside the block."""
        r = self.r
        top = BLOCK - size if limit is None else min(limit, BLOCK - size)
        if self.misaligned and size > 1 and r.random() < 0.15:
            if r.random() < 0.3 and BLOCK // 2 <= top:  # across the page boundary
                return r.randint(BLOCK // 2 - size + 1, BLOCK // 2 - 1)
            return r.randint(0, top)
        return r.randint(0, top // size) * size

    def rm(self):
        return self.r.choice(RMS)

    # unit makers: each returns a list of assembly lines
    def alu_r(self):
        op = self.r.choice(
            ["add", "sub", "sll", "slt", "sltu", "xor", "srl", "sra", "or", "and", "addw",
             "subw", "sllw", "srlw", "sraw"])
        return ["%s %s, %s, %s" % (op, self.rd(), self.rs(), self.rs())]

    def alu_i(self):
        r = self.r
        op = r.choice(["addi", "slti", "sltiu", "xori", "ori", "andi", "addiw", "slli", "srli",
                       "srai", "slliw", "srliw", "sraiw", "lui", "auipc"])
        if op in ("slli", "srli", "srai"):
            imm = r.randint(0, 63)
        elif op in ("slliw", "srliw", "sraiw"):
            imm = r.randint(0, 31)
        elif op in ("lui", "auipc"):
            return ["%s %s, 0x%x" % (op, self.rd(), r.getrandbits(20))]
        else:
            imm = r.choice([r.randint(-2048, 2047), r.randint(-4, 4), -2048, 2047])
        return ["%s %s, %s, %d" % (op, self.rd(), self.rs(), imm)]

    def idiom(self):
        """The idioms the JIT translates as one operation (jit.c emit_rotate, emit_zext,
        emit_shadd, emit_select): a rotate (slli/srli/or), a zero-extension (slli 32; srli), a
        shift-add (slli 1-3; add), their intermediate overwritten right after (fused) or not
        (kept); a branch over one li, mv or addi."""
        r = self.r
        a, c, x, y = self.rd(), self.rd(), self.rs(), self.rs()
        kind = r.choice(["rot", "rotw", "zext", "shadd", "select"])
        if kind == "select":  # a branch over one register write (emit_select: a cmov)
            br = r.choice(["beq", "bne", "blt", "bge", "bltu", "bgeu"])
            x = r.choice(["li %s, %d" % (c, r.randint(-2048, 2047)), "mv %s, %s" % (c, y),
                          "addi %s, %s, %d" % (c, y, r.randint(-2048, 2047))])
            return ["%s %s, %s, 1f" % (br, self.rs(), self.rs()), x, "1:"]
        if kind in ("rot", "rotw"):
            w = "w" if kind == "rotw" else ""
            bits = 32 if w else 64
            b = self.rd()
            n = r.randint(1, bits - 1)
            sh = ["slli%s %s, %s, %d" % (w, a, x, bits - n), "srli%s %s, %s, %d" % (w, b, x, n)]
            if r.random() < 0.5:
                sh.reverse()
            lines = sh + ["or %s, %s, %s" % (c, a, b) if r.random() < 0.5 else
                          "or %s, %s, %s" % (c, b, a)]
            dead = [a, b]
        elif kind == "zext":
            lines = ["slli %s, %s, 32" % (a, x),
                     "srli %s, %s, %d" % (c, a, r.choice([32, 32, 31, 30, 29, r.randint(1, 63)]))]
            dead = [a]
        else:
            lines = ["slli %s, %s, %d" % (a, x, r.randint(1, 3)),
                     "add %s, %s, %s" % (c, a, y) if r.random() < 0.5 else
                     "add %s, %s, %s" % (c, y, a)]
            dead = [a]
        if r.random() < 0.7:  # overwrite the intermediates: the JIT may fuse
            lines += ["li %s, %d" % (d, r.randint(-8, 8)) for d in dead]
        return lines

    def muldiv(self):
        op = self.r.choice(["mul", "mulh", "mulhsu", "mulhu", "div", "divu", "rem", "remu",
                            "mulw", "divw", "divuw", "remw", "remuw"])
        return ["%s %s, %s, %s" % (op, self.rd(), self.rs(), self.rs())]

    def bitmanip(self):
        r = self.r
        k = r.random()
        if k < 0.5:
            op = r.choice(["sh1add", "sh2add", "sh3add", "add.uw", "sh1add.uw", "sh2add.uw",
                           "sh3add.uw", "andn", "orn", "xnor", "max", "maxu", "min", "minu",
                           "rol", "ror", "rolw", "rorw", "bclr", "bext", "binv", "bset"])
            return ["%s %s, %s, %s" % (op, self.rd(), self.rs(), self.rs())]
        if k < 0.75:
            op = r.choice(["clz", "ctz", "cpop", "clzw", "ctzw", "cpopw", "sext.b", "sext.h",
                           "zext.h", "orc.b", "rev8"])
            if op == "ctzw":
                # QEMU 7.2 counts past bit 31 when the low word is zero (tests/isa/zbb.S test
                # 112): set a bit of the low word first so the reference is right.
                t = self.rdnz()
                return ["bseti %s, %s, %d" % (t, self.rs(), r.randint(0, 31)),
                        "ctzw %s, %s" % (self.rd(), t)]
            return ["%s %s, %s" % (op, self.rd(), self.rs())]
        op = r.choice(["rori", "roriw", "slli.uw", "bclri", "bexti", "binvi", "bseti"])
        imm = r.randint(0, 31 if op == "roriw" else 63)
        return ["%s %s, %s, %d" % (op, self.rd(), self.rs(), imm)]

    def load(self):
        op, size = self.r.choice([("lb", 1), ("lh", 2), ("lw", 4), ("ld", 8), ("lbu", 1),
                                  ("lhu", 2), ("lwu", 4)])
        return ["%s %s, %d(s0)" % (op, self.rd(), self.off(size))]

    def store(self):
        op, size = self.r.choice([("sb", 1), ("sh", 2), ("sw", 4), ("sd", 8)])
        return ["%s %s, %d(s0)" % (op, self.rs(), self.off(size))]

    def fp_ldst(self):
        op, size = self.r.choice([("flw", 4), ("fld", 8), ("fsw", 4), ("fsd", 8)])
        return ["%s %s, %d(s0)" % (op, self.fr(), self.off(size))]

    def amo(self):
        r = self.r
        w = r.choice(["w", "d"])
        size = 4 if w == "w" else 8
        order = r.choice(["", ".aq", ".rl", ".aqrl"])
        t = self.rd()
        while t == "x0":
            t = self.rd()
        lines = ["addi %s, s0, %d" % (t, r.randint(0, BLOCK // size - 1) * size)]
        if r.random() < 0.25:
            # lr then sc to the same address: the sc succeeds on both (nothing in between)
            d = self.rd()
            while d == t:
                d = self.rd()
            lines.append("lr.%s%s %s, (%s)" % (w, order, d, t))
            lines.append("sc.%s%s %s, %s, (%s)" % (w, r.choice(["", ".aq", ".rl", ".aqrl"]),
                                                   self.rd(), self.rs(), t))
            return lines
        op = r.choice(["amoswap", "amoadd", "amoxor", "amoand", "amoor", "amomin", "amomax",
                       "amominu", "amomaxu"])
        lines.append("%s.%s%s %s, %s, (%s)" % (op, w, order, self.rd(), self.rs(), t))
        return lines

    def fp(self):
        r = self.r
        s = r.choice(["s", "d"])
        k = r.random()
        if k < 0.3:
            op = r.choice(["fadd", "fsub", "fmul", "fdiv"])
            return ["%s.%s %s, %s, %s, %s" % (op, s, self.fr(), self.fr(), self.fr(), self.rm())]
        if k < 0.4:
            op = r.choice(["fmadd", "fmsub", "fnmadd", "fnmsub"])
            return ["%s.%s %s, %s, %s, %s, %s" % (op, s, self.fr(), self.fr(), self.fr(),
                                                  self.fr(), self.rm())]
        if k < 0.45:
            return ["fsqrt.%s %s, %s, %s" % (s, self.fr(), self.fr(), self.rm())]
        if k < 0.55:
            op = r.choice(["fmin", "fmax", "fsgnj", "fsgnjn", "fsgnjx"])
            return ["%s.%s %s, %s, %s" % (op, s, self.fr(), self.fr(), self.fr())]
        if k < 0.63:
            op = r.choice(["feq", "flt", "fle"])
            return ["%s.%s %s, %s, %s" % (op, s, self.rd(), self.fr(), self.fr())]
        if k < 0.66:
            return ["fclass.%s %s, %s" % (s, self.rd(), self.fr())]
        if k < 0.76:  # float -> integer
            it = r.choice(["w", "wu", "l", "lu"])
            return ["fcvt.%s.%s %s, %s, %s" % (it, s, self.rd(), self.fr(), self.rm())]
        if k < 0.84:  # integer -> float (exact ones take no rounding mode)
            it = r.choice(["w", "wu", "l", "lu"])
            if s == "d" and it in ("w", "wu"):
                return ["fcvt.d.%s %s, %s" % (it, self.fr(), self.rs())]
            return ["fcvt.%s.%s %s, %s, %s" % (s, it, self.fr(), self.rs(), self.rm())]
        if k < 0.88:
            if s == "s":
                return ["fcvt.s.d %s, %s, %s" % (self.fr(), self.fr(), self.rm())]
            return ["fcvt.d.s %s, %s" % (self.fr(), self.fr())]
        if k < 0.94:
            if r.random() < 0.5:
                return ["fmv.x.%s %s, %s" % ("w" if s == "s" else "d", self.rd(), self.fr())]
            return ["fmv.%s.x %s, %s" % ("w" if s == "s" else "d", self.fr(), self.rs())]
        return self.fcsr()

    def fcsr(self):
        """fflags/frm/fcsr accesses. Most keep frm valid (0-4); a few write any value, after
        which every instruction with a dynamic rounding mode must raise illegal-instruction
        (unprivileged spec 20191213, 11.2 "frm") until frm is valid again: the trap count
        compares that."""
        r = self.r
        csr = r.choice(["fflags", "frm", "fcsr"])
        if r.random() < 0.15:
            op = r.choice(["csrrw", "csrrs", "csrrwi", "csrrsi"])
            src = ("%d" % r.randint(0, 31)) if op.endswith("i") else self.rs()
            return ["%s %s, %s, %s" % (op, self.rd(), r.choice(["frm", "fcsr"]), src)]
        k = r.random()
        if k < 0.2:
            return ["csrr %s, %s" % (self.rd(), csr)]
        if csr == "fflags":
            op = r.choice(["csrrw", "csrrs", "csrrc", "csrrwi", "csrrsi", "csrrci"])
            src = ("%d" % r.randint(0, 31)) if op.endswith("i") else self.rs()
            return ["%s %s, fflags, %s" % (op, self.rd(), src)]
        if csr == "frm":
            if k < 0.6:
                return ["csrrwi %s, frm, %d" % (self.rd(), r.randint(0, 4))]
            if k < 0.8:  # clearing bits of a valid frm leaves a valid frm
                return ["csrrc %s, frm, %s" % (self.rd(), self.rs())]
            return ["csrrci %s, frm, %d" % (self.rd(), r.randint(0, 31))]
        if k < 0.6:
            return ["csrrwi %s, fcsr, %d" % (self.rd(), r.randint(0, 31))]
        if k < 0.8:
            return ["csrrc %s, fcsr, %s" % (self.rd(), self.rs())]
        return ["csrrsi %s, fcsr, %d" % (self.rd(), r.randint(0, 31))]

    def compressed(self):
        """RVC (spec chapter 16), as explicit c.* mnemonics assembled with RVC enabled only
        around them, so the assembler neither adds nor removes a compressed encoding."""
        r = self.r
        k = r.randint(0, 24)
        if k == 0:
            line = "c.addi4spn %s, sp, %d" % (self.rdc(), r.randint(1, 255) * 4)
        elif k == 1:
            line = "c.lw %s, %d(s0)" % (self.rdc(), r.randint(0, 31) * 4)
        elif k == 2:
            line = "c.ld %s, %d(s0)" % (self.rdc(), r.randint(0, 31) * 8)
        elif k == 3:
            line = "c.sw %s, %d(s0)" % (self.rsc(), r.randint(0, 31) * 4)
        elif k == 4:
            line = "c.sd %s, %d(s0)" % (self.rsc(), r.randint(0, 31) * 8)
        elif k == 5:
            line = "c.fld %s, %d(s0)" % (self.frc(), r.randint(0, 31) * 8)
        elif k == 6:
            line = "c.fsd %s, %d(s0)" % (self.frc(), r.randint(0, 31) * 8)
        elif k == 7:
            line = "c.addi %s, %d" % (self.rdnz(), r.choice([i for i in range(-32, 32) if i]))
        elif k == 8:
            line = "c.addiw %s, %d" % (self.rdnz(), r.randint(-32, 31))
        elif k == 9:
            line = "c.li %s, %d" % (self.rdnz(), r.randint(-32, 31))
        elif k == 10:
            line = "c.addi16sp sp, %d" % (r.choice([i for i in range(-32, 32) if i]) * 16)
        elif k == 11:
            d = self.rdnz()
            while d == "x2":
                d = self.rdnz()
            imm = r.choice(list(range(1, 32)) + list(range(0xFFFE0, 0x100000)))
            line = "c.lui %s, 0x%x" % (d, imm)
        elif k == 12:
            line = "c.%s %s, %d" % (r.choice(["srli", "srai"]), self.rdc(), r.randint(1, 63))
        elif k == 13:
            line = "c.andi %s, %d" % (self.rdc(), r.randint(-32, 31))
        elif k == 14:
            line = "c.%s %s, %s" % (r.choice(["sub", "xor", "or", "and", "subw", "addw"]),
                                    self.rdc(), self.rsc())
        elif k == 15:
            line = "c.slli %s, %d" % (self.rdnz(), r.randint(1, 63))
        elif k == 16:
            line = "c.mv %s, %s" % (self.rdnz(), self.rsnz())
        elif k == 17:
            line = "c.add %s, %s" % (self.rdnz(), self.rsnz())
        elif k in (18, 19, 20, 21, 22, 23):
            # sp-relative: point sp at the block first
            op = r.choice(["c.lwsp", "c.ldsp", "c.swsp", "c.sdsp", "c.fldsp", "c.fsdsp"])
            size = 4 if "w" in op[2:] else 8
            o = r.randint(0, BLOCK // size - 1) * size
            if op in ("c.lwsp", "c.ldsp"):
                line = "%s %s, %d(sp)" % (op, self.rdnz(), o)
            elif op in ("c.swsp", "c.sdsp"):
                line = "%s %s, %d(sp)" % (op, self.rs(), o)
            else:
                line = "%s %s, %d(sp)" % (op, self.fr(), o)
            return ["c.mv sp, s0 # rvc", line + " # rvc"]
        else:
            return ["c.nop # rvc"]
        return [line + " # rvc"]

    def raw(self):
        """A random encoding in an opcode space without control transfer (OP, OP-32, OP-IMM,
        OP-IMM-32, OP-FP, the fused multiply-adds; RVC ALU groups; loads, stores and AMOs
        inside the block, see raw_mem), legal or not: both emulators must agree on which ones
        raise illegal-instruction (the trap handler counts them and skips the instruction) and
        on what the legal ones do. Only the register fields are constrained, so s0 is never
        written."""
        r = self.r
        if r.random() < 0.2:
            return self.raw_mem()
        if r.random() < 0.75:
            opc = r.choice([0x33, 0x3B, 0x13, 0x1B, 0x53, 0x53, 0x43, 0x47, 0x4B, 0x4F])
            w = r.getrandbits(32) & ~0x7F | opc
            if opc in (0x13, 0x1B, 0x33, 0x3B) and r.random() < 0.6:
                # near the defined funct7 values, so legal ones are common too
                f7 = r.choice([0x00, 0x01, 0x20, 0x04, 0x05, 0x07, 0x10, 0x14, 0x24, 0x30,
                               0x34, 0x35, 0x60, 0x02, 0x21])
                w = (w & 0x01FFFFFF) | (f7 << 25)
            while (w >> 7) & 31 in self.avoid:
                w ^= r.randint(1, 31) << 7
            return [".insn 4, 0x%08x" % w]
        k = r.randint(0, 7)
        h = r.getrandbits(16)
        if k == 0:  # quadrant 0 funct3 000 (c.addi4spn; imm 0 is reserved) and 100 (reserved)
            h = h & 0x1FFC | r.choice([0x0000, 0x8000])
            if (h >> 2) & 7 == 0:
                h |= 1 << 2
        elif k <= 4:  # quadrant 1 funct3 000-011: c.addi, c.addiw, c.li, c.lui/c.addi16sp
            h = h & 0x1FFC | ((k - 1) << 13) | 1
            while (h >> 7) & 31 in self.avoid:
                h ^= r.randint(1, 31) << 7
        elif k == 5:  # quadrant 1 funct3 100: shifts, c.andi, c.sub..c.addw and reserved ones
            h = h & 0x1FFC | 0x8001
            if (h >> 7) & 7 == 0:
                h |= 1 << 7
        elif k == 6:  # quadrant 2 funct3 000: c.slli
            h = h & 0x1FFC | 2
            while (h >> 7) & 31 in self.avoid:
                h ^= r.randint(1, 31) << 7
        else:  # quadrant 2 funct3 100 with rs2 != 0: c.mv, c.add
            h = h & 0x1FFC | 0x8002
            if (h >> 2) & 31 == 0:
                h |= 1 << 2
            while (h >> 7) & 31 in self.avoid:
                h ^= r.randint(1, 31) << 7
        if h == 0:
            h = 0x0004
        return [".insn 2, 0x%04x # rvc" % h]

    def loop(self, kinds):
        """A counted loop (2-40 iterations, or 100 or 300) around 1-4 straight-line units, so
        code also runs more than once: an engine that compiles hot code (a JIT) gets to run its
        translation. The counter is never in x8-x15 (compressed rd') nor sp, and no unit of
        the body writes it."""
        r = self.r
        t = r.choice([1, 3, 4, 5, 6, 7] + list(range(16, 32)))
        count = r.choice([r.randint(2, 40), r.randint(2, 40), 100, 300])
        self.avoid.add(t)
        lines = ["li x%d, %d" % (t, count)]
        for j in range(r.randint(1, 4)):
            lines.append("@SUB%d" % j)
            lines += getattr(self, r.choice(kinds))()
        self.avoid.discard(t)
        lines.append("addi x%d, x%d, -1" % (t, t))
        lines.append("bnez x%d, @SUBTOP" % t)
        return lines

    def raw_mem(self):
        """A random encoding in LOAD, STORE, LOAD-FP, STORE-FP (any funct3: reserved widths,
        H/Q and vector widths are illegal on both) with rs1 = s0 and an offset inside the
        block, or in AMO (any funct5, funct3, aq/rl, rs2) on an aligned address of the block."""
        r = self.r
        w = r.getrandbits(32)
        if r.random() < 0.3:
            t = self.rdnz()
            w = w & ~((31 << 15) | 0x7F) | (int(t[1:]) << 15) | 0x2F
            if r.random() < 0.7:  # a defined width (W or D) most of the time
                w = w & ~(7 << 12) | (r.choice([2, 3]) << 12)
            while (w >> 7) & 31 in self.avoid:
                w ^= r.randint(1, 31) << 7
            return ["addi %s, s0, %d" % (t, r.randint(0, BLOCK // 8 - 1) * 8),
                    ".insn 4, 0x%08x" % w]
        opc = r.choice([0x03, 0x23, 0x07, 0x27])
        off = self.off(8)
        w = w & ~((31 << 15) | 0x7F) | (BASE << 15) | opc
        if opc in (0x03, 0x07):  # I-type: imm[11:0] in bits 31:20
            w = w & 0x000FFFFF | (off << 20)
            while opc == 0x03 and (w >> 7) & 31 in self.avoid:
                w ^= r.randint(1, 31) << 7
        else:  # S-type: imm[11:5] in bits 31:25, imm[4:0] in bits 11:7
            w = w & 0x01FFF07F | ((off >> 5) << 25) | ((off & 31) << 7)
        return [".insn 4, 0x%08x" % w]

    def rdnz(self):
        d = self.rd()
        while d == "x0":
            d = self.rd()
        return d

    def rsnz(self):
        s = self.rs()
        while s == "x0":
            s = self.rs()
        return s

    def branch(self, i, n):
        """A forward branch or jump to the start of a later unit (or the sequence end)."""
        r = self.r
        tgt = min(n, i + 1 + r.randint(1, 4))
        k = r.random()
        if 0.45 <= k < 0.6:
            tgt = min(n, i + 2)  # c.beqz/c.bnez reach +-256 bytes: skip at most one unit
        label = "L%d" % tgt  # resolved per sequence by the caller
        if k < 0.45:
            op = r.choice(["beq", "bne", "blt", "bge", "bltu", "bgeu"])
            return ["%s %s, %s, @%s" % (op, self.rs(), self.rs(), label)]
        if k < 0.6:
            op = r.choice(["6", "7"])  # c.beqz / c.bnez
            return [".insn cb 1, %s, %s, @%s # rvc" % (op, self.rsc(), label)]
        if k < 0.7:
            return ["jal %s, @%s" % (self.rd(), label)]
        if k < 0.77:
            return [".insn cj 1, 5, @%s # rvc" % label]
        t = self.rdnz()
        lines = ["la %s, @%s" % (t, label)]
        if r.random() < 0.3:
            lines.append("addi %s, %s, 1" % (t, t))  # jalr clears bit 0 (RV spec 2.5)
            lines.append("jalr %s, 0(%s)" % (self.rd(), t))
        elif r.random() < 0.5:
            lines.append("c.jr %s # rvc" % t)
        elif r.random() < 0.5:
            lines.append("c.jalr %s # rvc" % t)
        else:
            lines.append("jalr %s, 0(%s)" % (self.rd(), t))
        return lines


WEIGHTS = [("alu_r", 16), ("alu_i", 14), ("muldiv", 9), ("bitmanip", 10), ("load", 6),
           ("store", 5), ("fp_ldst", 3), ("amo", 4), ("fp", 20), ("compressed", 10),
           ("branch", 3), ("raw", 4), ("loop", 2), ("idiom", 4)]


def make_sequence(seed, n, length, misaligned, raw=True):
    """The state and units of sequence n: depends on (seed, n) only."""
    r = random.Random("%d:%d" % (seed, n))
    xs = [rand_x(r) for _ in range(32)]
    fs = [rand_f(r) for _ in range(32)]
    frm = r.randint(0, 4) if r.random() < 0.95 else r.randint(5, 7)
    fcsr = (frm << 5) | r.getrandbits(5)
    mem = [rand_x(r) if r.random() < 0.5 else rand_f(r) for _ in range(BLOCK // 8)]
    g = Gen(r, misaligned)
    kinds = [k for k, w in WEIGHTS for _ in range(w) if raw or k != "raw"]
    straight = [k for k in kinds if k not in ("branch", "loop")]
    units = []
    for i in range(length):
        k = r.choice(kinds)
        if k == "branch":
            units.append(g.branch(i, length))
        elif k == "loop":
            units.append(g.loop(straight))
        else:
            units.append(getattr(g, k)())
    return xs, fs, fcsr, mem, units


# ---- program --------------------------------------------------------------------------------

HEADER = r"""/* Generated by tests/diff/gen.py %(args)s: do not edit. */
    .option norvc
    .option norelax
    .section .text.init, "ax"
    .globl _start
_start:
    csrr t0, mhartid
    bnez t0, park
    la t0, trap
    csrw mtvec, t0
    csrw mie, zero
    li t0, 0x6000           /* mstatus.FS = dirty: FP on */
    csrs mstatus, t0
%(user_setup)s
    la sp, stack_top
    la t0, %(first)s
    jr t0

park:
    wfi
    j park

/* Print the byte in a0 (ns16550a THR; wait for THRE). Clobbers t0, t1. */
putc:
    li t0, 0x10000000
1:  lbu t1, 5(t0)
    andi t1, t1, 0x20
    beqz t1, 1b
    sb a0, 0(t0)
    ret

/* Print a1 as 16 hex digits. Clobbers a0, a2, t0..t2, uses t3 as link. */
puthex:
    mv t3, ra
    li a2, 60
1:  srl a0, a1, a2
    andi a0, a0, 15
    addi a0, a0, 48
    li t2, 58
    blt a0, t2, 2f
    addi a0, a0, 39
2:  call putc
    addi a2, a2, -4
    bgez a2, 1b
    mv ra, t3
    ret

/* Illegal instruction (mcause 2): count it in the dump area's trap word and resume after
 * the instruction (2 or 4 bytes by its low bits, RV spec 1.5), touching no other state; mtval
 * is not compared (it may be 0 or the instruction: privileged spec, "Machine Trap Value
 * Register").
 * Anything else: "TRAP mcause mepc mtval", then FAIL through the SiFive test device. */
    .balign 4
trap:
    csrw mscratch, t0
    csrr t0, mcause
%(user_trap)s
    addi t0, t0, -2
    bnez t0, fatal
    sd t1, %(scratch)d(s0)
    ld t0, %(traps)d(s0)
    addi t0, t0, 1
    sd t0, %(traps)d(s0)
    csrr t0, mepc
    lhu t1, 0(t0)
    addi t0, t0, 2
    andi t1, t1, 3
    addi t1, t1, -3
    bnez t1, 1f
    addi t0, t0, 2
1:  csrw mepc, t0
    ld t1, %(scratch)d(s0)
    csrr t0, mscratch
    mret
fatal:
    li a0, 84; call putc
    li a0, 32; call putc
    csrr a1, mcause; call puthex
    li a0, 32; call putc
    csrr a1, mepc; call puthex
    li a0, 32; call putc
    csrr a1, mtval; call puthex
    li a0, 10; call putc
    li t0, 0x100000
    li t1, 0x13333
    sw t1, 0(t0)
1:  j 1b

/* Load a sequence's state from the table at x31 and return to ra through mret, which
 * touches no register: memory block, fcsr, f0..f31, x1..x31 (s0 = the block). */
load_state:
    csrw mepc, ra
    li t0, 0x1800           /* mstatus.MPP = M (U with --user) for the mret */
    %(mpp)s mstatus, t0
    la s0, block
    sd zero, %(traps)d(s0)
%(copy)s
    ld t0, %(fcsr_off)d(x31)
    csrw fcsr, t0
%(fload)s
%(xload)s
    ld x31, %(x31_off)d(x31)
    mret

/* Dump the state: the caller stored ra at DUMP+8(s0) and called with `call`. Prints one line
 * "D" + hex words (pc of the call, x1..x31, f0..f31, fcsr, the count of illegal-instruction
 * traps, the block), restores x2..x31 and
 * returns; the caller reloads ra. fcsr and f registers are only read. */
dump:
    sd ra, %(dump)d(s0)
%(xsave)s
%(fsave)s
    csrr t0, fcsr
    sd t0, %(dump_fcsr)d(s0)
    li a0, 68; call putc
    mv t4, s0
    addi t5, s0, %(dump)d
    addi t6, s0, %(dump_end)d
1:  ld a1, 0(t5)
    call puthex
    addi t5, t5, 8
    bltu t5, t6, 1b
2:  ld a1, 0(t4)
    call puthex
    addi t4, t4, 8
    addi t6, s0, %(block)d
    bltu t4, t6, 2b
    li a0, 10; call putc
    ld ra, %(dump)d(s0)
%(xrest)s
    ret

done:
    li a0, 69; call putc
    li a0, 78; call putc
    li a0, 68; call putc
    li a0, 10; call putc
    li t0, 0x100000
    li t1, 0x5555
    sw t1, 0(t0)
1:  j 1b
"""

# --user: the sequences, the dump and the end run in U mode under Sv39: an identity map of
# two 1 GiB pages with U set (devices at 0-1 GiB, RAM at 2-3 GiB), PMP open to all. A
# sequence enters load_state through ecall (from M for the first, from U after).
USER_SETUP = r"""    la t0, pt_root
    li t1, 0xd7             /* 0-1 GiB: V R W U A D (the UART, the test device) */
    sd t1, 0(t0)
    li t1, (0x80000 << 10) | 0xdf /* 2-3 GiB: V R W X U A D */
    sd t1, 16(t0)
    li t1, -1
    srli t1, t1, 10
    csrw pmpaddr0, t1
    li t1, 0x1f             /* NAPOT, R W X */
    csrw pmpcfg0, t1
    srli t0, t0, 12
    li t1, 8
    slli t1, t1, 60
    or t0, t0, t1
    csrw satp, t0
    sfence.vma"""
USER_TRAP = r"""    addi t0, t0, -8         /* ecall from U (8) or M (11): load the state at x31 */
    beqz t0, 3f
    addi t0, t0, -3
    bnez t0, 4f
3:  csrr ra, mepc
    addi ra, ra, 4
    j load_state
4:  csrr t0, mcause"""

# A dump call, and a placeholder of the same size (16 bytes) in its place when not tracing, so
# the trace build has the normal build's layout and pc-dependent values (auipc, jal) agree.
DUMP_CALL = "    sd ra, %d(s0)\n    call dump\n    ld ra, %d(s0)" % (DUMP + 8, DUMP + 8)
NO_DUMP = "    j .+16\n    nop\n    nop\n    nop"


def program(args):
    xs_off, fs_off, fcsr_off, mem_off = 0, 32 * 8, 64 * 8, 65 * 8
    table_size = mem_off + BLOCK
    regs = [i for i in range(1, 31) if i != BASE]
    out = [HEADER % {
        "args": " ".join(sys.argv[1:]),
        "first": "seq_%d" % (args.trace if args.trace is not None else 0),
        "user_setup": USER_SETUP if args.user else "",
        "user_trap": USER_TRAP if args.user else "",
        "mpp": "csrc" if args.user else "csrs",
        "copy": "\n".join("    ld t0, %d(x31)\n    sd t0, %d(s0)" % (mem_off + 8 * k, 8 * k)
                          for k in range(BLOCK // 8)),
        "fcsr_off": fcsr_off,
        "fload": "\n".join("    fld f%d, %d(x31)" % (k, fs_off + 8 * k) for k in range(32)),
        "xload": "\n".join("    ld x%d, %d(x31)" % (k, xs_off + 8 * k) for k in regs),
        "x31_off": xs_off + 8 * 31,
        "dump": DUMP,
        "xsave": "\n".join("    sd x%d, %d(s0)" % (k, DUMP + 8 * k) for k in range(2, 32)),
        "fsave": "\n".join("    fsd f%d, %d(s0)" % (k, DUMP + 8 * (32 + k)) for k in range(32)),
        "dump_fcsr": DUMP + 8 * 64,
        "dump_end": DUMP + 8 * 66,
        "traps": DUMP + 8 * 65,
        "scratch": DUMP + 8 * 66,
        "block": BLOCK,
        "xrest": "\n".join("    ld x%d, %d(s0)" % (k, DUMP + 8 * k)
                           for k in range(2, 32) if k != BASE),
    }]
    data = []
    ninsns = 0
    for n in range(args.seqs):
        dump = DUMP_CALL if args.trace == n else NO_DUMP
        xs, fs, fcsr, mem, units = make_sequence(args.seed, n, args.len, args.misaligned,
                                                  args.raw)
        ninsns += sum(len([ln for ln in u if not ln.startswith("@SUB")]) for u in units)
        out.append("seq_%d:" % n)
        out.append("    la x31, state_%d\n    %s" % (n, "ecall" if args.user else "call load_state"))
        for i, unit in enumerate(units):
            out.append("s%d_u%d:" % (n, i))  # kept in the symbol table: the runner maps pcs
            out.append(dump)
            for line in unit:
                if line.startswith("@SUB"):  # a loop body's unit: labelled and traced too
                    out.append("s%d_u%d_%s:" % (n, i, line[4:]))
                    out.append(dump)
                    continue
                line = line.replace("@SUBTOP", "s%d_u%d_0" % (n, i))
                line = line.replace("@L", "s%d_u" % n)
                if line.endswith(" # rvc"):
                    out.append("    .option push\n    .option rvc\n    %s\n    .option pop"
                               % line[:-6])
                else:
                    out.append("    " + line)
        out.append("s%d_u%d:" % (n, args.len))
        out.append(DUMP_CALL)
        nxt = "seq_%d" % (n + 1) if n + 1 < args.seqs and args.trace is None else "done"
        out.append("    la x31, %s\n    jr x31" % nxt)  # same size whatever the target
        words = [xs[k] if k != BASE else 0 for k in range(32)] + fs + [fcsr] + mem
        assert len(words) * 8 == table_size
        data.append("    .balign 8\nstate_%d:\n%s" % (n, "\n".join(
            "    .dword 0x%016x" % w for w in words)))
    out.append("    .section .rodata\n" + "\n".join(data))
    # The block straddles a page boundary (4 KiB pages; 128 bytes on each side), so
    # misaligned accesses in its middle cross pages too.
    if args.user:
        out.append("    .bss\n    .balign 4096\npt_root:\n    .skip 4096")
    out.append("    .bss\n    .balign 4096\n    .skip %d\nblock:\n    .skip %d\n    .balign 16\n"
               "    .skip 4096\nstack_top:\n" % (4096 - BLOCK // 2, BLOCK + 8 * 67))
    out.append("/* random instructions: %d */" % ninsns)  # read by run.py
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--seqs", type=int, default=1000, help="sequences in the program")
    ap.add_argument("--len", type=int, default=100, help="units per sequence")
    ap.add_argument("--trace", type=int, metavar="N",
                    help="run only sequence N, with a state dump before each of its units "
                    "(the program's layout stays that of the normal build)")
    ap.add_argument("--no-misaligned", dest="misaligned", action="store_false",
                    help="keep every load and store naturally aligned")
    ap.add_argument("--no-raw", dest="raw", action="store_false",
                    help="no random encodings (no illegal instructions)")
    ap.add_argument("--user", action="store_true",
                    help="run the sequences in user mode under Sv39 (an identity map)")
    ap.add_argument("-o", "--output", default="-")
    args = ap.parse_args()
    text = program(args)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()

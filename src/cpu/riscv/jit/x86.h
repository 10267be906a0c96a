/* A small x86-64 instruction encoder for the JIT: only the forms the code generator uses.
 * Encodings from the Intel SDM vol. 2 (2.1 instruction format, 2.2.1 REX prefixes; opcode
 * tables in chapters 3-4). Memory operands are always [base + disp]. */
#ifndef VESSEL_CPU_RISCV_JIT_X86_H
#define VESSEL_CPU_RISCV_JIT_X86_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum x86_reg { RAX = 0, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };
/* condition codes (SDM vol. 1, appendix B) */
enum x86_cc {
    CC_B = 0x2,
    CC_AE = 0x3,
    CC_E = 0x4,
    CC_NE = 0x5,
    CC_BE = 0x6,
    CC_A = 0x7,
    CC_L = 0xc,
    CC_GE = 0xd,
    CC_LE = 0xe,
    CC_G = 0xf
};
/* group-1 ALU operations: opcode /digit for 81 (imm32), and op << 3 | 3 for r64, r/m64 */
enum x86_alu { ALU_ADD = 0, ALU_OR = 1, ALU_AND = 4, ALU_SUB = 5, ALU_XOR = 6, ALU_CMP = 7 };
/* group-2 shifts: C1 /digit ib, D3 /digit (count in cl) */
enum x86_shift { SH_ROL = 0, SH_ROR = 1, SH_SHL = 4, SH_SHR = 5, SH_SAR = 7 };

/* Output buffer; overflow is sticky and leaves p unchanged, so callers check once at the end. */
struct x86 {
    uint8_t *p, *start, *end;
    bool overflow;
};

static inline void x86_init(struct x86 *e, uint8_t *buf, size_t size)
{
    e->p = e->start = buf;
    e->end = buf + size;
    e->overflow = false;
}
static inline size_t x86_len(const struct x86 *e)
{
    return (size_t)(e->p - e->start);
}
static inline void x86_bytes(struct x86 *e, const void *b, size_t n)
{
    if (e->overflow || (size_t)(e->end - e->p) < n) {
        e->overflow = true;
        return;
    }
    memcpy(e->p, b, n);
    e->p += n;
}
static inline void x86_b(struct x86 *e, uint8_t b)
{
    x86_bytes(e, &b, 1);
}
static inline void x86_d(struct x86 *e, uint32_t d)
{
    uint8_t b[4] = {(uint8_t)d, (uint8_t)(d >> 8), (uint8_t)(d >> 16), (uint8_t)(d >> 24)};
    x86_bytes(e, b, 4);
}
static inline void x86_q(struct x86 *e, uint64_t q)
{
    x86_d(e, (uint32_t)q);
    x86_d(e, (uint32_t)(q >> 32));
}

/* An r/m operand: a register, or memory at [base + disp] or [base + index + disp] (idx; the
 * index is never rsp). */
struct x86_rm {
    uint8_t base;
    bool mem;
    int32_t disp;
    bool idx;
    uint8_t index;
    uint8_t scale; /* the index times 1 << scale (0-3) */
};
static inline struct x86_rm R(enum x86_reg r) {
    return (struct x86_rm){(uint8_t)r, false, 0, false, 0, 0};
} static inline struct x86_rm M(enum x86_reg base, int32_t disp) {
    return (struct x86_rm){(uint8_t)base, true, disp, false, 0, 0};
} static inline struct x86_rm MI(enum x86_reg base, enum x86_reg index, int32_t disp) {
    return (struct x86_rm){(uint8_t)base, true, disp, true, (uint8_t)index, 0};
} /* [base + (index << scale) + disp] */
static inline struct x86_rm
MIS(enum x86_reg base, enum x86_reg index, unsigned scale, int32_t disp) {
    return (struct x86_rm){(uint8_t)base, true, disp, true, (uint8_t)index, (uint8_t)(scale & 3)};
}

/* [66] [REX] opcode ModRM [SIB] [disp]. w: REX.W; byte_regs: a byte-register operand, so a REX
 * is needed to mean sil/dil/spl/bpl rather than dh/bh/ah/ch. */
static inline void
x86_op(struct x86 *e, bool p66, bool w, bool byte_regs, const uint8_t *op, size_t nop, unsigned reg,
       struct x86_rm rm)
{
    if (p66) x86_b(e, 0x66);
    uint8_t rex =
        (uint8_t)(0x40 | (w ? 8 : 0) | ((reg & 8) ? 4 : 0) |
                  ((rm.mem && rm.idx && (rm.index & 8)) ? 2 : 0) | ((rm.base & 8) ? 1 : 0));
    if (rex != 0x40 || (byte_regs && ((reg & 7) >= 4 || (!rm.mem && (rm.base & 7) >= 4))))
        x86_b(e, rex);
    x86_bytes(e, op, nop);
    unsigned r = (reg & 7) << 3, b = rm.base & 7;
    if (!rm.mem) {
        x86_b(e, (uint8_t)(0xc0 | r | b));
        return;
    }
    bool d8 = rm.disp >= -128 && rm.disp <= 127;
    unsigned mod = (rm.disp == 0 && b != 5) ? 0 : d8 ? 0x40 : 0x80;
    if (rm.idx) { /* ModRM rm = 100: a SIB byte */
        x86_b(e, (uint8_t)(mod | r | 4));
        x86_b(e, (uint8_t)((rm.scale << 6) | ((rm.index & 7) << 3) | b));
    } else {
        x86_b(e, (uint8_t)(mod | r | b));
        if (b == 4) x86_b(e, 0x24); /* SIB: base only (rsp/r12 need one) */
    }
    if (rm.disp == 0 && b != 5) return;
    if (d8)
        x86_b(e, (uint8_t)(int8_t)rm.disp);
    else
        x86_d(e, (uint32_t)rm.disp);
}
#define X86_OP1(e, p66, w, bytes, o, reg, rm)                                                      \
    do {                                                                                           \
        const uint8_t op_[] = {o};                                                                 \
        x86_op(e, p66, w, bytes, op_, 1, reg, rm);                                                 \
    } while (0)
#define X86_OP2(e, p66, w, bytes, o1, o2, reg, rm)                                                 \
    do {                                                                                           \
        const uint8_t op_[] = {o1, o2};                                                            \
        x86_op(e, p66, w, bytes, op_, 2, reg, rm);                                                 \
    } while (0)

/* mov r64, r/m64 (8B) and mov r/m64, r64 (89) */
static inline void x86_mov_load(struct x86 *e, enum x86_reg dst, struct x86_rm src)
{
    X86_OP1(e, false, true, false, 0x8b, dst, src);
}
static inline void x86_mov_store(struct x86 *e, struct x86_rm dst, enum x86_reg src)
{
    X86_OP1(e, false, true, false, 0x89, src, dst);
}
/* 32-bit forms: a 32-bit register write zero-extends into the 64-bit register */
static inline void x86_mov32_load(struct x86 *e, enum x86_reg dst, struct x86_rm src)
{
    X86_OP1(e, false, false, false, 0x8b, dst, src);
}
/* store the low size bytes of src (1, 2, 4 or 8) */
static inline void x86_store_n(struct x86 *e, unsigned size, struct x86_rm dst, enum x86_reg src)
{
    switch (size) {
    case 1: X86_OP1(e, false, false, true, 0x88, src, dst); break;
    case 2: X86_OP1(e, true, false, false, 0x89, src, dst); break;
    case 4: X86_OP1(e, false, false, false, 0x89, src, dst); break;
    default: X86_OP1(e, false, true, false, 0x89, src, dst); break;
    }
}
/* load size bytes, sign- or zero-extended to 64 bits */
static inline void x86_load_n(struct x86 *e, unsigned size, bool sx, enum x86_reg dst,
                              struct x86_rm src)
{
    switch (size) {
    case 1:
        if (sx)
            X86_OP2(e, false, true, false, 0x0f, 0xbe, dst, src); /* movsx r64, r/m8 */
        else
            X86_OP2(e, false, false, true, 0x0f, 0xb6, dst, src); /* movzx r32, r/m8 */
        break;
    case 2:
        if (sx)
            X86_OP2(e, false, true, false, 0x0f, 0xbf, dst, src); /* movsx r64, r/m16 */
        else
            X86_OP2(e, false, false, false, 0x0f, 0xb7, dst, src); /* movzx r32, r/m16 */
        break;
    case 4:
        if (sx)
            X86_OP1(e, false, true, false, 0x63, dst, src); /* movsxd r64, r/m32 */
        else
            X86_OP1(e, false, false, false, 0x8b, dst, src); /* mov r32, r/m32 */
        break;
    default: X86_OP1(e, false, true, false, 0x8b, dst, src); break;
    }
}
/* mov r64, imm64 (the shortest form that gives the same 64-bit value) */
static inline void x86_mov_imm(struct x86 *e, enum x86_reg dst, uint64_t imm)
{
    if (imm <= 0xffffffffull) { /* mov r32, imm32 zero-extends */
        if (dst & 8) x86_b(e, 0x41);
        x86_b(e, (uint8_t)(0xb8 | (dst & 7)));
        x86_d(e, (uint32_t)imm);
    } else if ((int64_t)imm == (int32_t)imm) { /* mov r/m64, simm32: REX.W C7 /0 */
        X86_OP1(e, false, true, false, 0xc7, 0, R(dst));
        x86_d(e, (uint32_t)imm);
    } else {
        x86_b(e, (uint8_t)(0x48 | ((dst & 8) ? 1 : 0)));
        x86_b(e, (uint8_t)(0xb8 | (dst & 7)));
        x86_q(e, imm);
    }
}
/* mov qword [m], simm32 */
static inline void x86_mov_mem_imm(struct x86 *e, struct x86_rm dst, int32_t imm)
{
    X86_OP1(e, false, true, false, 0xc7, 0, dst);
    x86_d(e, (uint32_t)imm);
}
/* mov byte [m], imm8 (C6 /0 ib) */
static inline void x86_mov_mem8_imm(struct x86 *e, struct x86_rm dst, uint8_t imm)
{
    X86_OP1(e, false, false, false, 0xc6, 0, dst);
    x86_b(e, imm);
}
/* lea r64, [base + disp] */
static inline void x86_lea(struct x86 *e, enum x86_reg dst, struct x86_rm src)
{
    X86_OP1(e, false, true, false, 0x8d, dst, src);
}
/* lea r64, [rip + rel32]; returns where the displacement goes, for x86_patch (it is the
 * instruction's last field, so rip-relative and rel32 jumps count from the same place) */
static inline uint8_t *x86_lea_rip(struct x86 *e, enum x86_reg dst)
{
    x86_b(e, (uint8_t)(0x48 | ((dst & 8) ? 4 : 0)));
    x86_b(e, 0x8d);
    x86_b(e, (uint8_t)(((dst & 7) << 3) | 5));
    uint8_t *at = e->overflow ? NULL : e->p;
    x86_d(e, 0);
    return e->overflow ? NULL : at;
}
/* op r, r/m (64-bit, or 32-bit with w = false) */
static inline void x86_alu_rm(struct x86 *e, bool w, enum x86_alu op, enum x86_reg dst,
                              struct x86_rm src)
{
    X86_OP1(e, false, w, false, (uint8_t)((op << 3) | 3), dst, src);
}
/* op r/m, r (01, 29, ...: op << 3 | 1) */
static inline void x86_alu_mr(struct x86 *e, bool w, enum x86_alu op, struct x86_rm dst,
                              enum x86_reg src)
{
    X86_OP1(e, false, w, false, (uint8_t)((op << 3) | 1), src, dst);
}
/* op r/m, simm32 (81 /op id), or simm8 (83 /op ib) when it fits */
static inline void x86_alu_imm(struct x86 *e, bool w, enum x86_alu op, struct x86_rm dst,
                               int32_t imm)
{
    if (imm >= -128 && imm <= 127) {
        X86_OP1(e, false, w, false, 0x83, op, dst);
        x86_b(e, (uint8_t)(int8_t)imm);
    } else {
        X86_OP1(e, false, w, false, 0x81, op, dst);
        x86_d(e, (uint32_t)imm);
    }
}
static inline void x86_shift_imm(struct x86 *e, bool w, enum x86_shift op, enum x86_reg r,
                                 uint8_t n)
{
    X86_OP1(e, false, w, false, 0xc1, op, R(r));
    x86_b(e, n);
}
static inline void x86_shift_cl(struct x86 *e, bool w, enum x86_shift op, enum x86_reg r)
{
    X86_OP1(e, false, w, false, 0xd3, op, R(r));
}
/* imul r, r/m (0F AF) */
static inline void x86_imul(struct x86 *e, bool w, enum x86_reg dst, struct x86_rm src)
{
    X86_OP2(e, false, w, false, 0x0f, 0xaf, dst, src);
}
/* rdx:rax = rax * r/m64: mul (F7 /4, unsigned) or imul (F7 /5, signed) */
static inline void x86_mul_wide(struct x86 *e, bool is_signed, struct x86_rm src)
{
    X86_OP1(e, false, true, false, 0xf7, is_signed ? 5 : 4, src);
}
/* setcc r8; movzx r32, r8: r = condition ? 1 : 0 */
static inline void x86_setcc(struct x86 *e, enum x86_cc cc, enum x86_reg r)
{
    X86_OP2(e, false, false, true, 0x0f, (uint8_t)(0x90 | cc), 0, R(r));
    X86_OP2(e, false, false, true, 0x0f, 0xb6, r, R(r));
}
/* cmovcc r, r/m (0F 40+cc) */
static inline void x86_cmov(struct x86 *e, bool w, enum x86_cc cc, enum x86_reg dst,
                            struct x86_rm src)
{
    X86_OP2(e, false, w, false, 0x0f, (uint8_t)(0x40 | cc), dst, src);
}
/* Atomic read-modify-writes of m with r (64-bit, or 32-bit with w = false), each a full
 * barrier: xchg m, r (87, locked without a prefix); lock xadd m, r (F0 0F C1): r = old m,
 * m += r; lock cmpxchg m, r (F0 0F B1): if m == rax then m = r, ZF = 1, else rax = m, ZF = 0. */
static inline void x86_xchg(struct x86 *e, bool w, struct x86_rm m, enum x86_reg r)
{
    X86_OP1(e, false, w, false, 0x87, r, m);
}
static inline void x86_lock_xadd(struct x86 *e, bool w, struct x86_rm m, enum x86_reg r)
{
    x86_b(e, 0xf0);
    X86_OP2(e, false, w, false, 0x0f, 0xc1, r, m);
}
static inline void x86_lock_cmpxchg(struct x86 *e, bool w, struct x86_rm m, enum x86_reg r)
{
    x86_b(e, 0xf0);
    X86_OP2(e, false, w, false, 0x0f, 0xb1, r, m);
}
/* movsxd r64, r32 */
static inline void x86_movsxd(struct x86 *e, enum x86_reg dst, enum x86_reg src)
{
    X86_OP1(e, false, true, false, 0x63, dst, R(src));
}
static inline void x86_test32(struct x86 *e, enum x86_reg a, enum x86_reg b)
{
    X86_OP1(e, false, false, false, 0x85, b, R(a));
}
/* test al, imm8 (A8 ib) */
static inline void x86_test_al_imm(struct x86 *e, uint8_t imm)
{
    x86_b(e, 0xa8);
    x86_b(e, imm);
}
static inline void x86_push(struct x86 *e, enum x86_reg r)
{
    if (r & 8) x86_b(e, 0x41);
    x86_b(e, (uint8_t)(0x50 | (r & 7)));
}
static inline void x86_pop(struct x86 *e, enum x86_reg r)
{
    if (r & 8) x86_b(e, 0x41);
    x86_b(e, (uint8_t)(0x58 | (r & 7)));
}
static inline void x86_ret(struct x86 *e)
{
    x86_b(e, 0xc3);
}
/* call r/m64 (FF /2) */
static inline void x86_call_reg(struct x86 *e, enum x86_reg r)
{
    X86_OP1(e, false, false, false, 0xff, 2, R(r));
}
/* jmp r/m64 (FF /4) */
static inline void x86_jmp_reg(struct x86 *e, enum x86_reg r)
{
    X86_OP1(e, false, false, false, 0xff, 4, R(r));
}
/* call an absolute address through rax (the code cache is not within rel32 of the binary) */
static inline void x86_call_abs(struct x86 *e, const void *fn)
{
    x86_mov_imm(e, RAX, (uint64_t)(uintptr_t)fn);
    x86_call_reg(e, RAX);
}
/* lock or dword [rsp], 0: a full barrier, cheaper than mfence (docs/engine.md) */
static inline void x86_full_fence(struct x86 *e)
{
    const uint8_t b[] = {0xf0, 0x83, 0x0c, 0x24, 0x00};
    x86_bytes(e, b, sizeof(b));
}

/* Jumps with rel32 displacements: the return value is the position of the displacement, for
 * x86_patch once the target is known (NULL after an overflow). */
static inline uint8_t *x86_jcc(struct x86 *e, enum x86_cc cc)
{
    x86_b(e, 0x0f);
    x86_b(e, (uint8_t)(0x80 | cc));
    uint8_t *at = e->overflow ? NULL : e->p;
    x86_d(e, 0);
    return e->overflow ? NULL : at;
}
static inline uint8_t *x86_jmp(struct x86 *e)
{
    x86_b(e, 0xe9);
    uint8_t *at = e->overflow ? NULL : e->p;
    x86_d(e, 0);
    return e->overflow ? NULL : at;
}
/* call rel32; returns where the displacement goes, for x86_patch */
static inline uint8_t *x86_call(struct x86 *e)
{
    x86_b(e, 0xe8);
    uint8_t *at = e->overflow ? NULL : e->p;
    x86_d(e, 0);
    return e->overflow ? NULL : at;
}
/* Short forms (rel8), for forward jumps over at most 127 bytes: patch with x86_patch8. */
static inline uint8_t *x86_jcc8(struct x86 *e, enum x86_cc cc)
{
    x86_b(e, (uint8_t)(0x70 | cc));
    uint8_t *at = e->overflow ? NULL : e->p;
    x86_b(e, 0);
    return e->overflow ? NULL : at;
}
static inline uint8_t *x86_jmp8(struct x86 *e)
{
    x86_b(e, 0xeb);
    uint8_t *at = e->overflow ? NULL : e->p;
    x86_b(e, 0);
    return e->overflow ? NULL : at;
}
/* Point the rel8 at `at` to `target`; false (nothing written) when it is out of reach, which
 * the caller's layout must exclude. */
static inline bool x86_patch8(uint8_t *at, const uint8_t *target)
{
    if (!at) return true;
    ptrdiff_t rel = target - (at + 1);
    if (rel < -128 || rel > 127) return false;
    *at = (uint8_t)(int8_t)rel;
    return true;
}
/* Point the rel32 at `at` to `target` (both in the same buffer). */
static inline void x86_patch(uint8_t *at, const uint8_t *target)
{
    if (!at) return;
    int32_t rel = (int32_t)(target - (at + 4));
    memcpy(at, &rel, 4);
}
#endif

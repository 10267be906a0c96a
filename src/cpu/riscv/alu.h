/* Pure ALU operations (rd = f(rs1, rs2, imm)) as one function, shared by the interpreter's
 * handlers (where op is a constant and the switch folds away) and the JIT's helper calls, so
 * both engines compute with the same code. Unprivileged spec ch. 2, 4, 13 (M), 28 (B). */
#ifndef VESSEL_CPU_RISCV_ALU_H
#define VESSEL_CPU_RISCV_ALU_H
#include "cpu/riscv/decode.h"
#include <stdbool.h>
#include <stdint.h>

static inline uint64_t mulhu64(uint64_t a, uint64_t b)
{
    return (uint64_t)(((unsigned __int128)a * b) >> 64);
}
static inline uint64_t mulh64(int64_t a, int64_t b)
{
    return (uint64_t)(((__int128)a * b) >> 64);
}
static inline uint64_t mulhsu64(int64_t a, uint64_t b)
{
    return (uint64_t)(((__int128)a * (__int128)(unsigned __int128)b) >> 64);
}
static inline uint64_t rol64(uint64_t v, unsigned s)
{
    s &= 63;
    return s ? (v << s) | (v >> (64 - s)) : v;
}
static inline uint64_t ror64(uint64_t v, unsigned s)
{
    s &= 63;
    return s ? (v >> s) | (v << (64 - s)) : v;
}
static inline uint32_t rol32(uint32_t v, unsigned s)
{
    s &= 31;
    return s ? (v << s) | (v >> (32 - s)) : v;
}
static inline uint32_t ror32(uint32_t v, unsigned s)
{
    s &= 31;
    return s ? (v >> s) | (v << (32 - s)) : v;
}
static inline uint64_t sx32(uint64_t v)
{
    return (uint64_t)(int64_t)(int32_t)v;
}
static inline uint64_t orc_b(uint64_t v)
{
    uint64_t r = 0;
    for (unsigned i = 0; i < 64; i += 8)
        if ((v >> i) & 0xff) r |= 0xffull << i;
    return r;
}

/* Is op one rv_alu computes? */
static inline bool rv_alu_op(enum rv_op op)
{
    return (op >= RV_OP_ADDI && op <= RV_OP_REMUW) || (op >= RV_OP_SH1ADD && op <= RV_OP_BSETI);
}

/* a = x[rs1], b = x[rs2], imm = the decoded immediate (shift amount for shifts). */
static inline __attribute__((always_inline)) uint64_t rv_alu(enum rv_op op, uint64_t a, uint64_t b,
                                                             int64_t imm)
{
    switch (op) {
    case RV_OP_ADDI: return a + (uint64_t)imm;
    case RV_OP_SLTI: return (int64_t)a < imm;
    case RV_OP_SLTIU: return a < (uint64_t)imm;
    case RV_OP_XORI: return a ^ (uint64_t)imm;
    case RV_OP_ORI: return a | (uint64_t)imm;
    case RV_OP_ANDI: return a & (uint64_t)imm;
    case RV_OP_SLLI: return a << imm;
    case RV_OP_SRLI: return a >> imm;
    case RV_OP_SRAI: return (uint64_t)((int64_t)a >> imm);
    case RV_OP_ADD: return a + b;
    case RV_OP_SUB: return a - b;
    case RV_OP_SLL: return a << (b & 63);
    case RV_OP_SLT: return (int64_t)a < (int64_t)b;
    case RV_OP_SLTU: return a < b;
    case RV_OP_XOR: return a ^ b;
    case RV_OP_SRL: return a >> (b & 63);
    case RV_OP_SRA: return (uint64_t)((int64_t)a >> (b & 63));
    case RV_OP_OR: return a | b;
    case RV_OP_AND: return a & b;
    case RV_OP_ADDIW: return sx32(a + (uint64_t)imm);
    case RV_OP_SLLIW: return sx32((uint32_t)a << imm);
    case RV_OP_SRLIW: return sx32((uint32_t)a >> imm);
    case RV_OP_SRAIW: return (uint64_t)(int64_t)((int32_t)a >> imm);
    case RV_OP_ADDW: return sx32(a + b);
    case RV_OP_SUBW: return sx32(a - b);
    case RV_OP_SLLW: return sx32((uint32_t)a << (b & 31));
    case RV_OP_SRLW: return sx32((uint32_t)a >> (b & 31));
    case RV_OP_SRAW: return (uint64_t)(int64_t)((int32_t)a >> (b & 31));
    case RV_OP_MUL: return a * b;
    case RV_OP_MULH: return mulh64((int64_t)a, (int64_t)b);
    case RV_OP_MULHSU: return mulhsu64((int64_t)a, b);
    case RV_OP_MULHU: return mulhu64(a, b);
    case RV_OP_MULW: return sx32((uint32_t)a * (uint32_t)b);
    /* Division never traps (unpriv spec 13.2): x/0 = -1, x%0 = x, MIN/-1 = MIN, MIN%-1 = 0. */
    case RV_OP_DIV:
        return b == 0 ? ~0ull
               : ((int64_t)a == INT64_MIN && (int64_t)b == -1)
                   ? a
                   : (uint64_t)((int64_t)a / (int64_t)b);
    case RV_OP_DIVU: return b == 0 ? ~0ull : a / b;
    case RV_OP_REM:
        return b == 0 ? a
               : ((int64_t)a == INT64_MIN && (int64_t)b == -1)
                   ? 0
                   : (uint64_t)((int64_t)a % (int64_t)b);
    case RV_OP_REMU: return b == 0 ? a : a % b;
    case RV_OP_DIVW:
        return (uint32_t)b == 0 ? ~0ull
               : ((int32_t)a == INT32_MIN && (int32_t)b == -1)
                   ? sx32(a)
                   : (uint64_t)(int64_t)((int32_t)a / (int32_t)b);
    case RV_OP_DIVUW: return (uint32_t)b == 0 ? ~0ull : sx32((uint32_t)a / (uint32_t)b);
    case RV_OP_REMW:
        return (uint32_t)b == 0 ? sx32(a)
               : ((int32_t)a == INT32_MIN && (int32_t)b == -1)
                   ? 0
                   : (uint64_t)(int64_t)((int32_t)a % (int32_t)b);
    case RV_OP_REMUW: return (uint32_t)b == 0 ? sx32(a) : sx32((uint32_t)a % (uint32_t)b);
    /* Zba */
    case RV_OP_SH1ADD: return b + (a << 1);
    case RV_OP_SH2ADD: return b + (a << 2);
    case RV_OP_SH3ADD: return b + (a << 3);
    case RV_OP_ADD_UW: return b + (uint32_t)a;
    case RV_OP_SH1ADD_UW: return b + ((uint64_t)(uint32_t)a << 1);
    case RV_OP_SH2ADD_UW: return b + ((uint64_t)(uint32_t)a << 2);
    case RV_OP_SH3ADD_UW: return b + ((uint64_t)(uint32_t)a << 3);
    case RV_OP_SLLI_UW: return (uint64_t)(uint32_t)a << imm;
    /* Zbb */
    case RV_OP_ANDN: return a & ~b;
    case RV_OP_ORN: return a | ~b;
    case RV_OP_XNOR: return ~(a ^ b);
    case RV_OP_CLZ: return a ? (uint64_t)__builtin_clzll(a) : 64;
    case RV_OP_CTZ: return a ? (uint64_t)__builtin_ctzll(a) : 64;
    case RV_OP_CPOP: return (uint64_t)__builtin_popcountll(a);
    case RV_OP_CLZW: return (uint32_t)a ? (uint64_t)__builtin_clz((uint32_t)a) : 32;
    case RV_OP_CTZW: return (uint32_t)a ? (uint64_t)__builtin_ctz((uint32_t)a) : 32;
    case RV_OP_CPOPW: return (uint64_t)__builtin_popcount((uint32_t)a);
    case RV_OP_MAX: return (int64_t)a > (int64_t)b ? a : b;
    case RV_OP_MAXU: return a > b ? a : b;
    case RV_OP_MIN: return (int64_t)a < (int64_t)b ? a : b;
    case RV_OP_MINU: return a < b ? a : b;
    case RV_OP_SEXT_B: return (uint64_t)(int64_t)(int8_t)a;
    case RV_OP_SEXT_H: return (uint64_t)(int64_t)(int16_t)a;
    case RV_OP_ZEXT_H: return (uint16_t)a;
    case RV_OP_ROL: return rol64(a, (unsigned)b);
    case RV_OP_ROR: return ror64(a, (unsigned)b);
    case RV_OP_RORI: return ror64(a, (unsigned)imm);
    case RV_OP_ROLW: return sx32(rol32((uint32_t)a, (unsigned)b));
    case RV_OP_RORW: return sx32(ror32((uint32_t)a, (unsigned)b));
    case RV_OP_RORIW: return sx32(ror32((uint32_t)a, (unsigned)imm));
    case RV_OP_ORC_B: return orc_b(a);
    case RV_OP_REV8: return __builtin_bswap64(a);
    /* Zbs */
    case RV_OP_BCLR: return a & ~(1ull << (b & 63));
    case RV_OP_BCLRI: return a & ~(1ull << imm);
    case RV_OP_BEXT: return (a >> (b & 63)) & 1;
    case RV_OP_BEXTI: return (a >> imm) & 1;
    case RV_OP_BINV: return a ^ (1ull << (b & 63));
    case RV_OP_BINVI: return a ^ (1ull << imm);
    case RV_OP_BSET: return a | (1ull << (b & 63));
    case RV_OP_BSETI: return a | (1ull << imm);
    default: return 0;
    }
}
#endif

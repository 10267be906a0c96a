/* Instruction decoding per the RISC-V unprivileged spec (ch. 2, 5, 7, 8, 11-13, 16 "C",
 * 28 "Bit manipulation"), priv spec ch. 3 for SYSTEM. */
#include "cpu/riscv/decode.h"
#include <stdbool.h>
#include <string.h>

static const char *const op_names[] = {
#define RV_NAME(n) #n,
    RV_OPS(RV_NAME)
#undef RV_NAME
};

const char *rv_op_name(enum rv_op op)
{
    return (unsigned)op < RV_OP_COUNT ? op_names[op] : "?";
}

static inline uint32_t bits(uint32_t w, unsigned hi, unsigned lo)
{
    return (w >> lo) & ((1u << (hi - lo + 1)) - 1);
}

static inline int32_t sext(uint32_t v, unsigned nbits)
{
    return (int32_t)(v << (32 - nbits)) >> (32 - nbits);
}

static void set(struct rv_decoded *d, enum rv_op op, unsigned rd, unsigned rs1, unsigned rs2,
                int32_t imm)
{
    d->op = op;
    d->rd = (uint8_t)rd;
    d->rs1 = (uint8_t)rs1;
    d->rs2 = (uint8_t)rs2;
    d->imm = imm;
}

static void illegal(struct rv_decoded *d, uint32_t raw)
{
    set(d, RV_OP_ILLEGAL, 0, 0, 0, (int32_t)raw);
}

/* ---- 32-bit encodings ---- */

static void decode_op_imm(uint32_t w, struct rv_decoded *d, unsigned rd, unsigned rs1)
{
    int32_t imm = sext(bits(w, 31, 20), 12);
    unsigned f3 = bits(w, 14, 12), f6 = bits(w, 31, 26), sh = bits(w, 25, 20);
    unsigned imm12 = bits(w, 31, 20);
    switch (f3) {
    case 0: set(d, rs1 == 0 ? RV_OP_LI : imm == 0 ? RV_OP_MV : RV_OP_ADDI, rd, rs1, 0, imm); return;
    case 2: set(d, RV_OP_SLTI, rd, rs1, 0, imm); return;
    case 3: set(d, RV_OP_SLTIU, rd, rs1, 0, imm); return;
    case 4: set(d, RV_OP_XORI, rd, rs1, 0, imm); return;
    case 6: set(d, RV_OP_ORI, rd, rs1, 0, imm); return;
    case 7: set(d, RV_OP_ANDI, rd, rs1, 0, imm); return;
    case 1:
        if (f6 == 0x00) {
            set(d, RV_OP_SLLI, rd, rs1, 0, (int32_t)sh);
            return;
        }
        if (f6 == 0x12) {
            set(d, RV_OP_BCLRI, rd, rs1, 0, (int32_t)sh);
            return;
        }
        if (f6 == 0x1a) {
            set(d, RV_OP_BINVI, rd, rs1, 0, (int32_t)sh);
            return;
        }
        if (f6 == 0x0a) {
            set(d, RV_OP_BSETI, rd, rs1, 0, (int32_t)sh);
            return;
        }
        switch (imm12) {
        case 0x600: set(d, RV_OP_CLZ, rd, rs1, 0, 0); return;
        case 0x601: set(d, RV_OP_CTZ, rd, rs1, 0, 0); return;
        case 0x602: set(d, RV_OP_CPOP, rd, rs1, 0, 0); return;
        case 0x604: set(d, RV_OP_SEXT_B, rd, rs1, 0, 0); return;
        case 0x605: set(d, RV_OP_SEXT_H, rd, rs1, 0, 0); return;
        }
        break;
    case 5:
        if (f6 == 0x00) {
            set(d, RV_OP_SRLI, rd, rs1, 0, (int32_t)sh);
            return;
        }
        if (f6 == 0x10) {
            set(d, RV_OP_SRAI, rd, rs1, 0, (int32_t)sh);
            return;
        }
        if (f6 == 0x18) {
            set(d, RV_OP_RORI, rd, rs1, 0, (int32_t)sh);
            return;
        }
        if (f6 == 0x12) {
            set(d, RV_OP_BEXTI, rd, rs1, 0, (int32_t)sh);
            return;
        }
        if (imm12 == 0x287) {
            set(d, RV_OP_ORC_B, rd, rs1, 0, 0);
            return;
        }
        if (imm12 == 0x6b8) {
            set(d, RV_OP_REV8, rd, rs1, 0, 0);
            return;
        }
        break;
    }
    illegal(d, w);
}

static void decode_op_imm32(uint32_t w, struct rv_decoded *d, unsigned rd, unsigned rs1)
{
    unsigned f3 = bits(w, 14, 12), f7 = bits(w, 31, 25), sh5 = bits(w, 24, 20);
    unsigned f6 = bits(w, 31, 26), sh6 = bits(w, 25, 20);
    switch (f3) {
    case 0: set(d, RV_OP_ADDIW, rd, rs1, 0, sext(bits(w, 31, 20), 12)); return;
    case 1:
        if (f7 == 0x00) {
            set(d, RV_OP_SLLIW, rd, rs1, 0, (int32_t)sh5);
            return;
        }
        if (f6 == 0x02) {
            set(d, RV_OP_SLLI_UW, rd, rs1, 0, (int32_t)sh6);
            return;
        }
        if (f7 == 0x30 && sh5 == 0) {
            set(d, RV_OP_CLZW, rd, rs1, 0, 0);
            return;
        }
        if (f7 == 0x30 && sh5 == 1) {
            set(d, RV_OP_CTZW, rd, rs1, 0, 0);
            return;
        }
        if (f7 == 0x30 && sh5 == 2) {
            set(d, RV_OP_CPOPW, rd, rs1, 0, 0);
            return;
        }
        break;
    case 5:
        if (f7 == 0x00) {
            set(d, RV_OP_SRLIW, rd, rs1, 0, (int32_t)sh5);
            return;
        }
        if (f7 == 0x20) {
            set(d, RV_OP_SRAIW, rd, rs1, 0, (int32_t)sh5);
            return;
        }
        if (f7 == 0x30) {
            set(d, RV_OP_RORIW, rd, rs1, 0, (int32_t)sh5);
            return;
        }
        break;
    }
    illegal(d, w);
}

static void decode_op(uint32_t w, struct rv_decoded *d, unsigned rd, unsigned rs1, unsigned rs2)
{
    unsigned f3 = bits(w, 14, 12), f7 = bits(w, 31, 25);
    static const enum rv_op base[8] = {RV_OP_ADD, RV_OP_SLL, RV_OP_SLT, RV_OP_SLTU,
                                       RV_OP_XOR, RV_OP_SRL, RV_OP_OR,  RV_OP_AND};
    static const enum rv_op mext[8] = {RV_OP_MUL, RV_OP_MULH, RV_OP_MULHSU, RV_OP_MULHU,
                                       RV_OP_DIV, RV_OP_DIVU, RV_OP_REM,    RV_OP_REMU};
    enum rv_op op = RV_OP_ILLEGAL;
    switch (f7) {
    case 0x00: op = base[f3]; break;
    case 0x01: op = mext[f3]; break;
    case 0x20:
        op = f3 == 0   ? RV_OP_SUB
             : f3 == 5 ? RV_OP_SRA
             : f3 == 7 ? RV_OP_ANDN
             : f3 == 6 ? RV_OP_ORN
             : f3 == 4 ? RV_OP_XNOR
                       : RV_OP_ILLEGAL;
        break;
    case 0x10:
        op = f3 == 2   ? RV_OP_SH1ADD
             : f3 == 4 ? RV_OP_SH2ADD
             : f3 == 6 ? RV_OP_SH3ADD
                       : RV_OP_ILLEGAL;
        break;
    case 0x05:
        op = f3 == 4   ? RV_OP_MIN
             : f3 == 5 ? RV_OP_MINU
             : f3 == 6 ? RV_OP_MAX
             : f3 == 7 ? RV_OP_MAXU
                       : RV_OP_ILLEGAL;
        break;
    case 0x30: op = f3 == 1 ? RV_OP_ROL : f3 == 5 ? RV_OP_ROR : RV_OP_ILLEGAL; break;
    case 0x24: op = f3 == 1 ? RV_OP_BCLR : f3 == 5 ? RV_OP_BEXT : RV_OP_ILLEGAL; break;
    case 0x34: op = f3 == 1 ? RV_OP_BINV : RV_OP_ILLEGAL; break;
    case 0x14: op = f3 == 1 ? RV_OP_BSET : RV_OP_ILLEGAL; break;
    }
    if (op == RV_OP_ILLEGAL)
        illegal(d, w);
    else
        set(d, op, rd, rs1, rs2, 0);
}

static void decode_op32(uint32_t w, struct rv_decoded *d, unsigned rd, unsigned rs1, unsigned rs2)
{
    unsigned f3 = bits(w, 14, 12), f7 = bits(w, 31, 25);
    enum rv_op op = RV_OP_ILLEGAL;
    switch (f7) {
    case 0x00:
        op = f3 == 0 ? RV_OP_ADDW : f3 == 1 ? RV_OP_SLLW : f3 == 5 ? RV_OP_SRLW : RV_OP_ILLEGAL;
        break;
    case 0x20: op = f3 == 0 ? RV_OP_SUBW : f3 == 5 ? RV_OP_SRAW : RV_OP_ILLEGAL; break;
    case 0x01:
        op = f3 == 0   ? RV_OP_MULW
             : f3 == 4 ? RV_OP_DIVW
             : f3 == 5 ? RV_OP_DIVUW
             : f3 == 6 ? RV_OP_REMW
             : f3 == 7 ? RV_OP_REMUW
                       : RV_OP_ILLEGAL;
        break;
    case 0x04:
        op = f3 == 0 ? RV_OP_ADD_UW : (f3 == 4 && rs2 == 0) ? RV_OP_ZEXT_H : RV_OP_ILLEGAL;
        break;
    case 0x10:
        op = f3 == 2   ? RV_OP_SH1ADD_UW
             : f3 == 4 ? RV_OP_SH2ADD_UW
             : f3 == 6 ? RV_OP_SH3ADD_UW
                       : RV_OP_ILLEGAL;
        break;
    case 0x30: op = f3 == 1 ? RV_OP_ROLW : f3 == 5 ? RV_OP_RORW : RV_OP_ILLEGAL; break;
    }
    if (op == RV_OP_ILLEGAL)
        illegal(d, w);
    else
        set(d, op, rd, rs1, rs2, 0);
}

static void decode_amo(uint32_t w, struct rv_decoded *d, unsigned rd, unsigned rs1, unsigned rs2)
{
    unsigned f3 = bits(w, 14, 12), f5 = bits(w, 31, 27);
    if (f3 != 2 && f3 != 3) {
        illegal(d, w);
        return;
    }
    bool dbl = f3 == 3;
    enum rv_op op;
    switch (f5) {
    case 0x02:
        if (rs2 != 0) {
            illegal(d, w);
            return;
        }
        op = dbl ? RV_OP_LR_D : RV_OP_LR_W;
        break;
    case 0x03: op = dbl ? RV_OP_SC_D : RV_OP_SC_W; break;
    case 0x01: op = dbl ? RV_OP_AMOSWAP_D : RV_OP_AMOSWAP_W; break;
    case 0x00: op = dbl ? RV_OP_AMOADD_D : RV_OP_AMOADD_W; break;
    case 0x04: op = dbl ? RV_OP_AMOXOR_D : RV_OP_AMOXOR_W; break;
    case 0x0c: op = dbl ? RV_OP_AMOAND_D : RV_OP_AMOAND_W; break;
    case 0x08: op = dbl ? RV_OP_AMOOR_D : RV_OP_AMOOR_W; break;
    case 0x10: op = dbl ? RV_OP_AMOMIN_D : RV_OP_AMOMIN_W; break;
    case 0x14: op = dbl ? RV_OP_AMOMAX_D : RV_OP_AMOMAX_W; break;
    case 0x18: op = dbl ? RV_OP_AMOMINU_D : RV_OP_AMOMINU_W; break;
    case 0x1c: op = dbl ? RV_OP_AMOMAXU_D : RV_OP_AMOMAXU_W; break;
    default: illegal(d, w); return;
    }
    /* aq/rl (bits 26/25) matter to LR/SC only: every AMO is a full host barrier anyway. */
    bool lrsc = op == RV_OP_LR_W || op == RV_OP_LR_D || op == RV_OP_SC_W || op == RV_OP_SC_D;
    set(d, op, rd, rs1, rs2, lrsc ? (int32_t)bits(w, 26, 25) : 0);
}

/* FENCE (unpriv spec 2.7, 17.1): pred = bits 27:24 (I O R W), succ = 23:20, fm = 31:28.
 * fm = 1000 is FENCE.TSO, which never orders stores before loads; other fm values are
 * reserved and treated as a normal fence. rd, rs1 and the unused bits are ignored. */
static void decode_fence(uint32_t w, struct rv_decoded *d)
{
    unsigned fm = bits(w, 31, 28), pred = bits(w, 27, 24), succ = bits(w, 23, 20);
    if (w == 0x0100000f) { /* PAUSE (Zihintpause): pred = W, succ = 0, rd = rs1 = x0 */
        set(d, RV_OP_PAUSE, 0, 0, 0, 0x010);
        return;
    }
    bool store_before_load = fm != 8 && (pred & 0x5) && (succ & 0xa); /* W|O before R|I */
    set(d, store_before_load ? RV_OP_FENCE_SL : RV_OP_FENCE, 0, 0, 0, (int32_t)bits(w, 31, 20));
}

static void decode_system(uint32_t w, struct rv_decoded *d, unsigned rd, unsigned rs1, unsigned rs2)
{
    unsigned f3 = bits(w, 14, 12);
    if (f3 == 0) {
        if (w == 0x00000073)
            set(d, RV_OP_ECALL, 0, 0, 0, 0);
        else if (w == 0x00100073)
            set(d, RV_OP_EBREAK, 0, 0, 0, 0);
        else if (w == 0x30200073)
            set(d, RV_OP_MRET, 0, 0, 0, 0);
        else if (w == 0x10200073)
            set(d, RV_OP_SRET, 0, 0, 0, 0);
        else if (w == 0x10500073)
            set(d, RV_OP_WFI, 0, 0, 0, 0);
        else if (bits(w, 31, 25) == 0x09 && rd == 0)
            set(d, RV_OP_SFENCE_VMA, 0, rs1, rs2, 0);
        else
            illegal(d, w);
        return;
    }
    static const enum rv_op csr_ops[8] = {RV_OP_ILLEGAL, RV_OP_CSRRW,  RV_OP_CSRRS,  RV_OP_CSRRC,
                                          RV_OP_ILLEGAL, RV_OP_CSRRWI, RV_OP_CSRRSI, RV_OP_CSRRCI};
    if (csr_ops[f3] == RV_OP_ILLEGAL) {
        illegal(d, w);
        return;
    }
    set(d, csr_ops[f3], rd, rs1, 0, (int32_t)bits(w, 31, 20));
}

static void decode32(uint32_t w, struct rv_decoded *d)
{
    unsigned rd = bits(w, 11, 7), rs1 = bits(w, 19, 15), rs2 = bits(w, 24, 20);
    unsigned f3 = bits(w, 14, 12);
    int32_t imm_i = sext(bits(w, 31, 20), 12);
    int32_t imm_s = sext((bits(w, 31, 25) << 5) | bits(w, 11, 7), 12);
    int32_t imm_b = sext((bits(w, 31, 31) << 12) | (bits(w, 7, 7) << 11) | (bits(w, 30, 25) << 5) |
                             (bits(w, 11, 8) << 1),
                         13);
    int32_t imm_u = (int32_t)(w & 0xfffff000u);
    int32_t imm_j = sext((bits(w, 31, 31) << 20) | (bits(w, 19, 12) << 12) |
                             (bits(w, 20, 20) << 11) | (bits(w, 30, 21) << 1),
                         21);
    switch (w & 0x7f) {
    case 0x37: set(d, RV_OP_LI, rd, 0, 0, imm_u); return;
    case 0x17: set(d, RV_OP_AUIPC, rd, 0, 0, imm_u); return;
    case 0x6f: set(d, RV_OP_JAL, rd, 0, 0, imm_j); return;
    case 0x67:
        if (f3 == 0)
            set(d, RV_OP_JALR, rd, rs1, 0, imm_i);
        else
            illegal(d, w);
        return;
    case 0x63: {
        static const enum rv_op br[8] = {RV_OP_BEQ, RV_OP_BNE, RV_OP_ILLEGAL, RV_OP_ILLEGAL,
                                         RV_OP_BLT, RV_OP_BGE, RV_OP_BLTU,    RV_OP_BGEU};
        if (br[f3] == RV_OP_ILLEGAL)
            illegal(d, w);
        else
            set(d, br[f3], 0, rs1, rs2, imm_b);
        return;
    }
    case 0x03: {
        static const enum rv_op ld[8] = {RV_OP_LB,  RV_OP_LH,  RV_OP_LW,  RV_OP_LD,
                                         RV_OP_LBU, RV_OP_LHU, RV_OP_LWU, RV_OP_ILLEGAL};
        if (ld[f3] == RV_OP_ILLEGAL)
            illegal(d, w);
        else
            set(d, ld[f3], rd, rs1, 0, imm_i);
        return;
    }
    case 0x23: {
        static const enum rv_op st[4] = {RV_OP_SB, RV_OP_SH, RV_OP_SW, RV_OP_SD};
        if (f3 > 3)
            illegal(d, w);
        else
            set(d, st[f3], 0, rs1, rs2, imm_s);
        return;
    }
    case 0x13: decode_op_imm(w, d, rd, rs1); return;
    case 0x1b: decode_op_imm32(w, d, rd, rs1); return;
    case 0x33: decode_op(w, d, rd, rs1, rs2); return;
    case 0x3b: decode_op32(w, d, rd, rs1, rs2); return;
    case 0x0f:
        if (f3 == 0)
            decode_fence(w, d);
        else if (f3 == 1)
            set(d, RV_OP_FENCE_I, 0, 0, 0, 0);
        else
            illegal(d, w);
        return;
    case 0x73: decode_system(w, d, rd, rs1, rs2); return;
    case 0x2f: decode_amo(w, d, rd, rs1, rs2); return;
    case 0x07:
        if (f3 == 2 || f3 == 3)
            set(d, f3 == 2 ? RV_OP_FLW : RV_OP_FLD, rd, rs1, 0, imm_i);
        else
            illegal(d, w);
        return;
    case 0x27:
        if (f3 == 2 || f3 == 3)
            set(d, f3 == 2 ? RV_OP_FSW : RV_OP_FSD, 0, rs1, rs2, imm_s);
        else
            illegal(d, w);
        return;
    case 0x43:
    case 0x47:
    case 0x4b:
    case 0x4f:
    case 0x53: set(d, RV_OP_FPU, 0, 0, 0, (int32_t)w); return;
    }
    illegal(d, w);
}

/* ---- 16-bit encodings (C extension, RV64) ---- */

static void decode16(uint32_t w, struct rv_decoded *d)
{
    unsigned q = w & 3, f3 = bits(w, 15, 13);
    unsigned rd = bits(w, 11, 7), rs2 = bits(w, 6, 2);
    unsigned rdp = bits(w, 4, 2) + 8, rs1p = bits(w, 9, 7) + 8;
    if (w == 0) {
        illegal(d, w);
        return;
    }
    if (q == 0) {
        uint32_t uimm_d = (bits(w, 12, 10) << 3) | (bits(w, 6, 5) << 6);
        uint32_t uimm_w = (bits(w, 12, 10) << 3) | (bits(w, 6, 6) << 2) | (bits(w, 5, 5) << 6);
        switch (f3) {
        case 0: {
            uint32_t nz = (bits(w, 12, 11) << 4) | (bits(w, 10, 7) << 6) | (bits(w, 6, 6) << 2) |
                          (bits(w, 5, 5) << 3);
            if (nz == 0)
                illegal(d, w);
            else
                set(d, RV_OP_ADDI, rdp, 2, 0, (int32_t)nz);
            return;
        }
        case 1: set(d, RV_OP_FLD, rdp, rs1p, 0, (int32_t)uimm_d); return;
        case 2: set(d, RV_OP_LW, rdp, rs1p, 0, (int32_t)uimm_w); return;
        case 3: set(d, RV_OP_LD, rdp, rs1p, 0, (int32_t)uimm_d); return;
        case 5: set(d, RV_OP_FSD, 0, rs1p, rdp, (int32_t)uimm_d); return;
        case 6: set(d, RV_OP_SW, 0, rs1p, rdp, (int32_t)uimm_w); return;
        case 7: set(d, RV_OP_SD, 0, rs1p, rdp, (int32_t)uimm_d); return;
        }
        illegal(d, w);
        return;
    }
    if (q == 1) {
        int32_t imm6 = sext((bits(w, 12, 12) << 5) | bits(w, 6, 2), 6);
        switch (f3) {
        case 0: set(d, RV_OP_ADDI, rd, rd, 0, imm6); return; /* c.nop when rd = 0 */
        case 1:
            if (rd == 0)
                illegal(d, w);
            else
                set(d, RV_OP_ADDIW, rd, rd, 0, imm6);
            return;
        case 2: set(d, RV_OP_LI, rd, 0, 0, imm6); return;
        case 3:
            if (rd == 2) {
                int32_t nz =
                    sext((bits(w, 12, 12) << 9) | (bits(w, 6, 6) << 4) | (bits(w, 5, 5) << 6) |
                             (bits(w, 4, 3) << 7) | (bits(w, 2, 2) << 5),
                         10);
                if (nz == 0)
                    illegal(d, w);
                else
                    set(d, RV_OP_ADDI, 2, 2, 0, nz);
            } else {
                int32_t nz = sext((bits(w, 12, 12) << 17) | (bits(w, 6, 2) << 12), 18);
                if (nz == 0)
                    illegal(d, w);
                else
                    set(d, RV_OP_LI, rd, 0, 0, nz);
            }
            return;
        case 4: {
            unsigned f2 = bits(w, 11, 10);
            unsigned sh = (bits(w, 12, 12) << 5) | bits(w, 6, 2);
            if (f2 == 0) {
                set(d, RV_OP_SRLI, rs1p, rs1p, 0, (int32_t)sh);
                return;
            }
            if (f2 == 1) {
                set(d, RV_OP_SRAI, rs1p, rs1p, 0, (int32_t)sh);
                return;
            }
            if (f2 == 2) {
                set(d, RV_OP_ANDI, rs1p, rs1p, 0, imm6);
                return;
            }
            static const enum rv_op ops[8] = {RV_OP_SUB,  RV_OP_XOR,  RV_OP_OR,      RV_OP_AND,
                                              RV_OP_SUBW, RV_OP_ADDW, RV_OP_ILLEGAL, RV_OP_ILLEGAL};
            enum rv_op op = ops[(bits(w, 12, 12) << 2) | bits(w, 6, 5)];
            if (op == RV_OP_ILLEGAL)
                illegal(d, w);
            else
                set(d, op, rs1p, rs1p, rdp, 0);
            return;
        }
        case 5: {
            int32_t j =
                sext((bits(w, 12, 12) << 11) | (bits(w, 11, 11) << 4) | (bits(w, 10, 9) << 8) |
                         (bits(w, 8, 8) << 10) | (bits(w, 7, 7) << 6) | (bits(w, 6, 6) << 7) |
                         (bits(w, 5, 3) << 1) | (bits(w, 2, 2) << 5),
                     12);
            set(d, RV_OP_JAL, 0, 0, 0, j);
            return;
        }
        case 6:
        case 7: {
            int32_t b = sext((bits(w, 12, 12) << 8) | (bits(w, 11, 10) << 3) |
                                 (bits(w, 6, 5) << 6) | (bits(w, 4, 3) << 1) | (bits(w, 2, 2) << 5),
                             9);
            set(d, f3 == 6 ? RV_OP_BEQ : RV_OP_BNE, 0, rs1p, 0, b);
            return;
        }
        }
    }
    if (q == 2) {
        switch (f3) {
        case 0:
            set(d, RV_OP_SLLI, rd, rd, 0, (int32_t)((bits(w, 12, 12) << 5) | bits(w, 6, 2)));
            return;
        case 1: {
            uint32_t u = (bits(w, 12, 12) << 5) | (bits(w, 6, 5) << 3) | (bits(w, 4, 2) << 6);
            set(d, RV_OP_FLD, rd, 2, 0, (int32_t)u);
            return;
        }
        case 2: {
            uint32_t u = (bits(w, 12, 12) << 5) | (bits(w, 6, 4) << 2) | (bits(w, 3, 2) << 6);
            if (rd == 0)
                illegal(d, w);
            else
                set(d, RV_OP_LW, rd, 2, 0, (int32_t)u);
            return;
        }
        case 3: {
            uint32_t u = (bits(w, 12, 12) << 5) | (bits(w, 6, 5) << 3) | (bits(w, 4, 2) << 6);
            if (rd == 0)
                illegal(d, w);
            else
                set(d, RV_OP_LD, rd, 2, 0, (int32_t)u);
            return;
        }
        case 4:
            if (!bits(w, 12, 12)) {
                if (rs2 == 0) {
                    if (rd == 0)
                        illegal(d, w);
                    else
                        set(d, RV_OP_JALR, 0, rd, 0, 0); /* c.jr */
                } else {
                    set(d, RV_OP_MV, rd, rs2, 0, 0); /* c.mv */
                }
            } else {
                if (rd == 0 && rs2 == 0)
                    set(d, RV_OP_EBREAK, 0, 0, 0, 0);
                else if (rs2 == 0)
                    set(d, RV_OP_JALR, 1, rd, 0, 0); /* c.jalr */
                else
                    set(d, RV_OP_ADD, rd, rd, rs2, 0);
            }
            return;
        case 5: {
            uint32_t u = (bits(w, 12, 10) << 3) | (bits(w, 9, 7) << 6);
            set(d, RV_OP_FSD, 0, 2, rs2, (int32_t)u);
            return;
        }
        case 6: {
            uint32_t u = (bits(w, 12, 9) << 2) | (bits(w, 8, 7) << 6);
            set(d, RV_OP_SW, 0, 2, rs2, (int32_t)u);
            return;
        }
        case 7: {
            uint32_t u = (bits(w, 12, 10) << 3) | (bits(w, 9, 7) << 6);
            set(d, RV_OP_SD, 0, 2, rs2, (int32_t)u);
            return;
        }
        }
    }
    illegal(d, w);
}

/* Operations that only compute x[rd]: with rd = x0 they do nothing at all. */
static bool pure_alu(enum rv_op op)
{
    switch (op) {
    case RV_OP_LI:
    case RV_OP_MV:
    case RV_OP_AUIPC:
    case RV_OP_ADDI:
    case RV_OP_SLTI:
    case RV_OP_SLTIU:
    case RV_OP_XORI:
    case RV_OP_ORI:
    case RV_OP_ANDI:
    case RV_OP_SLLI:
    case RV_OP_SRLI:
    case RV_OP_SRAI:
    case RV_OP_ADD:
    case RV_OP_SUB:
    case RV_OP_SLL:
    case RV_OP_SLT:
    case RV_OP_SLTU:
    case RV_OP_XOR:
    case RV_OP_SRL:
    case RV_OP_SRA:
    case RV_OP_OR:
    case RV_OP_AND:
    case RV_OP_ADDIW:
    case RV_OP_SLLIW:
    case RV_OP_SRLIW:
    case RV_OP_SRAIW:
    case RV_OP_ADDW:
    case RV_OP_SUBW:
    case RV_OP_SLLW:
    case RV_OP_SRLW:
    case RV_OP_SRAW:
    case RV_OP_MUL:
    case RV_OP_MULH:
    case RV_OP_MULHSU:
    case RV_OP_MULHU:
    case RV_OP_DIV:
    case RV_OP_DIVU:
    case RV_OP_REM:
    case RV_OP_REMU:
    case RV_OP_MULW:
    case RV_OP_DIVW:
    case RV_OP_DIVUW:
    case RV_OP_REMW:
    case RV_OP_REMUW:
    case RV_OP_SH1ADD:
    case RV_OP_SH2ADD:
    case RV_OP_SH3ADD:
    case RV_OP_ADD_UW:
    case RV_OP_SH1ADD_UW:
    case RV_OP_SH2ADD_UW:
    case RV_OP_SH3ADD_UW:
    case RV_OP_SLLI_UW:
    case RV_OP_ANDN:
    case RV_OP_ORN:
    case RV_OP_XNOR:
    case RV_OP_CLZ:
    case RV_OP_CTZ:
    case RV_OP_CPOP:
    case RV_OP_CLZW:
    case RV_OP_CTZW:
    case RV_OP_CPOPW:
    case RV_OP_MAX:
    case RV_OP_MAXU:
    case RV_OP_MIN:
    case RV_OP_MINU:
    case RV_OP_SEXT_B:
    case RV_OP_SEXT_H:
    case RV_OP_ZEXT_H:
    case RV_OP_ROL:
    case RV_OP_ROR:
    case RV_OP_RORI:
    case RV_OP_ROLW:
    case RV_OP_RORW:
    case RV_OP_RORIW:
    case RV_OP_ORC_B:
    case RV_OP_REV8:
    case RV_OP_BCLR:
    case RV_OP_BCLRI:
    case RV_OP_BEXT:
    case RV_OP_BEXTI:
    case RV_OP_BINV:
    case RV_OP_BINVI:
    case RV_OP_BSET:
    case RV_OP_BSETI: return true;
    default: return false;
    }
}

/* Operations with an integer rd and a side effect (must still run with rd = x0). */
static bool side_effect_rd(enum rv_op op)
{
    switch (op) {
    case RV_OP_JAL:
    case RV_OP_JALR:
    case RV_OP_LB:
    case RV_OP_LH:
    case RV_OP_LW:
    case RV_OP_LD:
    case RV_OP_LBU:
    case RV_OP_LHU:
    case RV_OP_LWU:
    case RV_OP_CSRRW:
    case RV_OP_CSRRS:
    case RV_OP_CSRRC:
    case RV_OP_CSRRWI:
    case RV_OP_CSRRSI:
    case RV_OP_CSRRCI: return true;
    default: return op >= RV_OP_LR_W && op <= RV_OP_AMOMAXU_D;
    }
}

void rv_decode(uint32_t insn, struct rv_decoded *d)
{
    memset(d, 0, sizeof(*d));
    if ((insn & 3) == 3) {
        d->len = 4;
        if ((insn & 0x1f) == 0x1f) { /* 48-bit and longer encodings: none implemented */
            illegal(d, insn);
            return;
        }
        decode32(insn, d);
    } else {
        d->len = 2;
        decode16(insn & 0xffff, d);
    }
    if (d->rd == 0) {
        if (pure_alu(d->op))
            d->op = RV_OP_NOP;
        else if (side_effect_rd(d->op))
            d->rd = RV_SINK;
    }
}

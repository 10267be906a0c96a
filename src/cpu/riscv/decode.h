/* RV64GC + Zba/Zbb/Zbs instruction decoder: one 16- or 32-bit encoding to an operation with
 * its operands extracted. Compressed instructions are expanded to their 32-bit equivalents.
 * Results never write x0: pure ALU operations with rd = x0 become NOP, and operations with
 * side effects (loads, jumps, CSR, atomics) get rd = RV_SINK, a scratch register.
 * Memory ordering (docs/engine.md "Memory model"): FENCE keeps imm = bits 31:20 (fm, pred,
 * succ) and becomes FENCE_SL when it orders earlier stores before later loads, the one
 * ordering x86-TSO does not give for free; LR/SC keep imm = aq << 1 | rl. */
#ifndef VESSEL_CPU_RISCV_DECODE_H
#define VESSEL_CPU_RISCV_DECODE_H
#include <stdint.h>

#define RV_SINK 32

// clang-format off
#define RV_OPS(X)                                                                                  \
    X(DECODE) X(PAGE_END) X(TMP_END) X(CROSS) X(ILLEGAL) X(NOP) X(LI) X(MV) X(AUIPC) X(JAL)       \
    X(JALR) X(BEQ) X(BNE) X(BLT) X(BGE) X(BLTU) X(BGEU) X(LB) X(LH) X(LW) X(LD) X(LBU) X(LHU)      \
    X(LWU) X(SB) X(SH) X(SW) X(SD) X(ADDI) X(SLTI) X(SLTIU) X(XORI) X(ORI) X(ANDI) X(SLLI)        \
    X(SRLI) X(SRAI) X(ADD) X(SUB) X(SLL) X(SLT) X(SLTU) X(XOR) X(SRL) X(SRA) X(OR) X(AND)         \
    X(ADDIW) X(SLLIW) X(SRLIW) X(SRAIW) X(ADDW) X(SUBW) X(SLLW) X(SRLW) X(SRAW) X(MUL) X(MULH)    \
    X(MULHSU) X(MULHU) X(DIV) X(DIVU) X(REM) X(REMU) X(MULW) X(DIVW) X(DIVUW) X(REMW) X(REMUW)   \
    X(FENCE) X(FENCE_SL) X(PAUSE) X(FENCE_I) X(ECALL) X(EBREAK) X(MRET) X(SRET) X(WFI) X(SFENCE_VMA) X(CSRRW)         \
    X(CSRRS) X(CSRRC) X(CSRRWI) X(CSRRSI) X(CSRRCI) X(LR_W) X(LR_D) X(SC_W) X(SC_D)              \
    X(AMOSWAP_W) X(AMOADD_W) X(AMOXOR_W) X(AMOAND_W) X(AMOOR_W) X(AMOMIN_W) X(AMOMAX_W)          \
    X(AMOMINU_W) X(AMOMAXU_W) X(AMOSWAP_D) X(AMOADD_D) X(AMOXOR_D) X(AMOAND_D) X(AMOOR_D)        \
    X(AMOMIN_D) X(AMOMAX_D) X(AMOMINU_D) X(AMOMAXU_D) X(FLW) X(FLD) X(FSW) X(FSD) X(FPU)          \
    X(SH1ADD) X(SH2ADD) X(SH3ADD) X(ADD_UW) X(SH1ADD_UW) X(SH2ADD_UW) X(SH3ADD_UW) X(SLLI_UW)    \
    X(ANDN) X(ORN) X(XNOR) X(CLZ) X(CTZ) X(CPOP) X(CLZW) X(CTZW) X(CPOPW) X(MAX) X(MAXU) X(MIN)   \
    X(MINU) X(SEXT_B) X(SEXT_H) X(ZEXT_H) X(ROL) X(ROR) X(RORI) X(ROLW) X(RORW) X(RORIW)         \
    X(ORC_B) X(REV8) X(BCLR) X(BCLRI) X(BEXT) X(BEXTI) X(BINV) X(BINVI) X(BSET) X(BSETI)
// clang-format on

enum rv_op {
#define RV_ENUM(n) RV_OP_##n,
    RV_OPS(RV_ENUM)
#undef RV_ENUM
        RV_OP_COUNT
};

struct rv_decoded {
    enum rv_op op;
    int32_t imm; /* immediate; CSR number for CSR ops; raw encoding for FPU and ILLEGAL */
    uint8_t rd, rs1, rs2;
    uint8_t len; /* 2 or 4 */
};

/* insn: the instruction's bytes (only the low 16 bits matter for a compressed one). */
void rv_decode(uint32_t insn, struct rv_decoded *d);
const char *rv_op_name(enum rv_op op);
#endif

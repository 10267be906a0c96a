/* Decoder tests: every RV64GC + Zba/Zbb/Zbs instruction class, compressed expansions, rd = x0
 * handling and illegal encodings. The encodings come from GNU as (binutils 2.40,
 * -march=rv64gc_zba_zbb_zbs_zihintpause); the expected operands were written from the spec
 * (unprivileged spec ch. 2, 13, 14 "A", 16 "C", 28 "B"), not from the decoder. */
#include "cpu_harness.h"

struct dcase {
    uint32_t insn;
    const char *src;
    enum rv_op op;
    uint8_t rd, rs1, rs2;
    int32_t imm;
    uint8_t len;
};

static void check_cases(const struct dcase *c, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        struct rv_decoded d;
        memset(&d, 0xa5, sizeof(d));
        rv_decode(c[k].insn, &d);
        bool ok = d.op == c[k].op && d.len == c[k].len;
        /* NOP leaves the other fields unspecified */
        if (c[k].op != RV_OP_NOP)
            ok = ok && d.rd == c[k].rd && d.rs1 == c[k].rs1 && d.rs2 == c[k].rs2 &&
                 d.imm == c[k].imm;
        if (!ok) {
            fprintf(stderr,
                    "  decode 0x%08x (%s): got %s rd=%u rs1=%u rs2=%u imm=%d len=%u, "
                    "want %s rd=%u rs1=%u rs2=%u imm=%d len=%u\n",
                    c[k].insn, c[k].src, rv_op_name(d.op), d.rd, d.rs1, d.rs2, d.imm, d.len,
                    rv_op_name(c[k].op), c[k].rd, c[k].rs1, c[k].rs2, c[k].imm, c[k].len);
            test_failures_in_current++;
        }
    }
}
#define CHECK_CASES(arr) check_cases(arr, sizeof(arr) / sizeof(arr[0]))

/* clang-format off */
static const struct dcase dc_upper_jump[] = {
{0x123452b7, "lui x5, 0x12345", RV_OP_LI, 5, 0, 0, 0x12345000, 4},
{0xffffffb7, "lui x31, 0xfffff", RV_OP_LI, 31, 0, 0, -4096, 4},
{0x80000397, "auipc x7, 0x80000", RV_OP_AUIPC, 7, 0, 0, (-2147483647 - 1), 4},
{0x00001097, "auipc x1, 1", RV_OP_AUIPC, 1, 0, 0, 4096, 4},
{0x7ffff0ef, "jal x1, .+0xffffe", RV_OP_JAL, 1, 0, 0, 1048574, 4},
{0x800000ef, "jal x1, .-0x100000", RV_OP_JAL, 1, 0, 0, -1048576, 4},
{0xffdff2ef, "jal x5, .-4", RV_OP_JAL, 5, 0, 0, -4, 4},
{0x0010016f, "jal x2, .+2048", RV_OP_JAL, 2, 0, 0, 2048, 4},
{0x0000006f, "jal x0, .", RV_OP_JAL, 32, 0, 0, 0, 4},
{0x800300e7, "jalr x1, -2048(x6)", RV_OP_JALR, 1, 6, 0, -2048, 4},
{0x00008067, "jalr x0, 0(x1)", RV_OP_JALR, 32, 1, 0, 0, 4},
{0x7ff504e7, "jalr x9, 2047(x10)", RV_OP_JALR, 9, 10, 0, 2047, 4},
};
static const struct dcase dc_branch[] = {
{0x80208063, "beq x1, x2, .-4096", RV_OP_BEQ, 0, 1, 2, -4096, 4},
{0x7e419fe3, "bne x3, x4, .+4094", RV_OP_BNE, 0, 3, 4, 4094, 4},
{0xfe62cfe3, "blt x5, x6, .-2", RV_OP_BLT, 0, 5, 6, -2, 4},
{0x0083d463, "bge x7, x8, .+8", RV_OP_BGE, 0, 7, 8, 8, 4},
{0x81efe0e3, "bltu x31, x30, .-2048", RV_OP_BLTU, 0, 31, 30, -2048, 4},
{0x001070e3, "bgeu x0, x1, .+2048", RV_OP_BGEU, 0, 0, 1, 2048, 4},
};
static const struct dcase dc_load_store[] = {
{0xfff30283, "lb x5, -1(x6)", RV_OP_LB, 5, 6, 0, -1, 4},
{0x7ff41383, "lh x7, 2047(x8)", RV_OP_LH, 7, 8, 0, 2047, 4},
{0x80052483, "lw x9, -2048(x10)", RV_OP_LW, 9, 10, 0, -2048, 4},
{0x00863583, "ld x11, 8(x12)", RV_OP_LD, 11, 12, 0, 8, 4},
{0x00074683, "lbu x13, 0(x14)", RV_OP_LBU, 13, 14, 0, 0, 4},
{0xffe85783, "lhu x15, -2(x16)", RV_OP_LHU, 15, 16, 0, -2, 4},
{0x00496883, "lwu x17, 4(x18)", RV_OP_LWU, 17, 18, 0, 4, 4},
{0xfe530fa3, "sb x5, -1(x6)", RV_OP_SB, 0, 6, 5, -1, 4},
{0x7e741fa3, "sh x7, 2047(x8)", RV_OP_SH, 0, 8, 7, 2047, 4},
{0x80952023, "sw x9, -2048(x10)", RV_OP_SW, 0, 10, 9, -2048, 4},
{0xfeb63c23, "sd x11, -8(x12)", RV_OP_SD, 0, 12, 11, -8, 4},
{0x00013823, "sd x0, 16(x2)", RV_OP_SD, 0, 2, 0, 16, 4},
};
static const struct dcase dc_op_imm[] = {
{0xfff30293, "addi x5, x6, -1", RV_OP_ADDI, 5, 6, 0, -1, 4},
{0x06400293, "addi x5, x0, 100", RV_OP_LI, 5, 0, 0, 100, 4},
{0x00030293, "addi x5, x6, 0", RV_OP_MV, 5, 6, 0, 0, 4},
{0x80032293, "slti x5, x6, -2048", RV_OP_SLTI, 5, 6, 0, -2048, 4},
{0xfff33293, "sltiu x5, x6, -1", RV_OP_SLTIU, 5, 6, 0, -1, 4},
{0x7ff34293, "xori x5, x6, 2047", RV_OP_XORI, 5, 6, 0, 2047, 4},
{0xff036293, "ori x5, x6, -16", RV_OP_ORI, 5, 6, 0, -16, 4},
{0x0ff37293, "andi x5, x6, 255", RV_OP_ANDI, 5, 6, 0, 255, 4},
{0x03f31293, "slli x5, x6, 63", RV_OP_SLLI, 5, 6, 0, 63, 4},
{0x02035293, "srli x5, x6, 32", RV_OP_SRLI, 5, 6, 0, 32, 4},
{0x43f35293, "srai x5, x6, 63", RV_OP_SRAI, 5, 6, 0, 63, 4},
{0x40135293, "srai x5, x6, 1", RV_OP_SRAI, 5, 6, 0, 1, 4},
};
static const struct dcase dc_op[] = {
{0x007302b3, "add x5, x6, x7", RV_OP_ADD, 5, 6, 7, 0, 4},
{0x407302b3, "sub x5, x6, x7", RV_OP_SUB, 5, 6, 7, 0, 4},
{0x007312b3, "sll x5, x6, x7", RV_OP_SLL, 5, 6, 7, 0, 4},
{0x007322b3, "slt x5, x6, x7", RV_OP_SLT, 5, 6, 7, 0, 4},
{0x007332b3, "sltu x5, x6, x7", RV_OP_SLTU, 5, 6, 7, 0, 4},
{0x007342b3, "xor x5, x6, x7", RV_OP_XOR, 5, 6, 7, 0, 4},
{0x007352b3, "srl x5, x6, x7", RV_OP_SRL, 5, 6, 7, 0, 4},
{0x407352b3, "sra x5, x6, x7", RV_OP_SRA, 5, 6, 7, 0, 4},
{0x007362b3, "or x5, x6, x7", RV_OP_OR, 5, 6, 7, 0, 4},
{0x01df7fb3, "and x31, x30, x29", RV_OP_AND, 31, 30, 29, 0, 4},
{0x027302b3, "mul x5, x6, x7", RV_OP_MUL, 5, 6, 7, 0, 4},
{0x027312b3, "mulh x5, x6, x7", RV_OP_MULH, 5, 6, 7, 0, 4},
{0x027322b3, "mulhsu x5, x6, x7", RV_OP_MULHSU, 5, 6, 7, 0, 4},
{0x027332b3, "mulhu x5, x6, x7", RV_OP_MULHU, 5, 6, 7, 0, 4},
{0x027342b3, "div x5, x6, x7", RV_OP_DIV, 5, 6, 7, 0, 4},
{0x027352b3, "divu x5, x6, x7", RV_OP_DIVU, 5, 6, 7, 0, 4},
{0x027362b3, "rem x5, x6, x7", RV_OP_REM, 5, 6, 7, 0, 4},
{0x027372b3, "remu x5, x6, x7", RV_OP_REMU, 5, 6, 7, 0, 4},
};
static const struct dcase dc_op32[] = {
{0xfff3029b, "addiw x5, x6, -1", RV_OP_ADDIW, 5, 6, 0, -1, 4},
{0x0003029b, "addiw x5, x6, 0", RV_OP_ADDIW, 5, 6, 0, 0, 4},
{0x01f3129b, "slliw x5, x6, 31", RV_OP_SLLIW, 5, 6, 0, 31, 4},
{0x01f3529b, "srliw x5, x6, 31", RV_OP_SRLIW, 5, 6, 0, 31, 4},
{0x4073529b, "sraiw x5, x6, 7", RV_OP_SRAIW, 5, 6, 0, 7, 4},
{0x007302bb, "addw x5, x6, x7", RV_OP_ADDW, 5, 6, 7, 0, 4},
{0x407302bb, "subw x5, x6, x7", RV_OP_SUBW, 5, 6, 7, 0, 4},
{0x007312bb, "sllw x5, x6, x7", RV_OP_SLLW, 5, 6, 7, 0, 4},
{0x007352bb, "srlw x5, x6, x7", RV_OP_SRLW, 5, 6, 7, 0, 4},
{0x407352bb, "sraw x5, x6, x7", RV_OP_SRAW, 5, 6, 7, 0, 4},
{0x027302bb, "mulw x5, x6, x7", RV_OP_MULW, 5, 6, 7, 0, 4},
{0x027342bb, "divw x5, x6, x7", RV_OP_DIVW, 5, 6, 7, 0, 4},
{0x027352bb, "divuw x5, x6, x7", RV_OP_DIVUW, 5, 6, 7, 0, 4},
{0x027362bb, "remw x5, x6, x7", RV_OP_REMW, 5, 6, 7, 0, 4},
{0x027372bb, "remuw x5, x6, x7", RV_OP_REMUW, 5, 6, 7, 0, 4},
};
static const struct dcase dc_zba[] = {
{0x207322b3, "sh1add x5, x6, x7", RV_OP_SH1ADD, 5, 6, 7, 0, 4},
{0x207342b3, "sh2add x5, x6, x7", RV_OP_SH2ADD, 5, 6, 7, 0, 4},
{0x207362b3, "sh3add x5, x6, x7", RV_OP_SH3ADD, 5, 6, 7, 0, 4},
{0x087302bb, "add.uw x5, x6, x7", RV_OP_ADD_UW, 5, 6, 7, 0, 4},
{0x080302bb, "zext.w x5, x6", RV_OP_ADD_UW, 5, 6, 0, 0, 4},
{0x207322bb, "sh1add.uw x5, x6, x7", RV_OP_SH1ADD_UW, 5, 6, 7, 0, 4},
{0x207342bb, "sh2add.uw x5, x6, x7", RV_OP_SH2ADD_UW, 5, 6, 7, 0, 4},
{0x207362bb, "sh3add.uw x5, x6, x7", RV_OP_SH3ADD_UW, 5, 6, 7, 0, 4},
{0x0bf3129b, "slli.uw x5, x6, 63", RV_OP_SLLI_UW, 5, 6, 0, 63, 4},
{0x0813129b, "slli.uw x5, x6, 1", RV_OP_SLLI_UW, 5, 6, 0, 1, 4},
};
static const struct dcase dc_zbb[] = {
{0x407372b3, "andn x5, x6, x7", RV_OP_ANDN, 5, 6, 7, 0, 4},
{0x407362b3, "orn x5, x6, x7", RV_OP_ORN, 5, 6, 7, 0, 4},
{0x407342b3, "xnor x5, x6, x7", RV_OP_XNOR, 5, 6, 7, 0, 4},
{0x60031293, "clz x5, x6", RV_OP_CLZ, 5, 6, 0, 0, 4},
{0x60131293, "ctz x5, x6", RV_OP_CTZ, 5, 6, 0, 0, 4},
{0x60231293, "cpop x5, x6", RV_OP_CPOP, 5, 6, 0, 0, 4},
{0x6003129b, "clzw x5, x6", RV_OP_CLZW, 5, 6, 0, 0, 4},
{0x6013129b, "ctzw x5, x6", RV_OP_CTZW, 5, 6, 0, 0, 4},
{0x6023129b, "cpopw x5, x6", RV_OP_CPOPW, 5, 6, 0, 0, 4},
{0x0a7362b3, "max x5, x6, x7", RV_OP_MAX, 5, 6, 7, 0, 4},
{0x0a7372b3, "maxu x5, x6, x7", RV_OP_MAXU, 5, 6, 7, 0, 4},
{0x0a7342b3, "min x5, x6, x7", RV_OP_MIN, 5, 6, 7, 0, 4},
{0x0a7352b3, "minu x5, x6, x7", RV_OP_MINU, 5, 6, 7, 0, 4},
{0x60431293, "sext.b x5, x6", RV_OP_SEXT_B, 5, 6, 0, 0, 4},
{0x60531293, "sext.h x5, x6", RV_OP_SEXT_H, 5, 6, 0, 0, 4},
{0x080342bb, "zext.h x5, x6", RV_OP_ZEXT_H, 5, 6, 0, 0, 4},
{0x607312b3, "rol x5, x6, x7", RV_OP_ROL, 5, 6, 7, 0, 4},
{0x607352b3, "ror x5, x6, x7", RV_OP_ROR, 5, 6, 7, 0, 4},
{0x63f35293, "rori x5, x6, 63", RV_OP_RORI, 5, 6, 0, 63, 4},
{0x607312bb, "rolw x5, x6, x7", RV_OP_ROLW, 5, 6, 7, 0, 4},
{0x607352bb, "rorw x5, x6, x7", RV_OP_RORW, 5, 6, 7, 0, 4},
{0x61f3529b, "roriw x5, x6, 31", RV_OP_RORIW, 5, 6, 0, 31, 4},
{0x28735293, "orc.b x5, x6", RV_OP_ORC_B, 5, 6, 0, 0, 4},
{0x6b835293, "rev8 x5, x6", RV_OP_REV8, 5, 6, 0, 0, 4},
};
static const struct dcase dc_zbs[] = {
{0x487312b3, "bclr x5, x6, x7", RV_OP_BCLR, 5, 6, 7, 0, 4},
{0x4bf31293, "bclri x5, x6, 63", RV_OP_BCLRI, 5, 6, 0, 63, 4},
{0x487352b3, "bext x5, x6, x7", RV_OP_BEXT, 5, 6, 7, 0, 4},
{0x4bf35293, "bexti x5, x6, 63", RV_OP_BEXTI, 5, 6, 0, 63, 4},
{0x687312b3, "binv x5, x6, x7", RV_OP_BINV, 5, 6, 7, 0, 4},
{0x68031293, "binvi x5, x6, 0", RV_OP_BINVI, 5, 6, 0, 0, 4},
{0x287312b3, "bset x5, x6, x7", RV_OP_BSET, 5, 6, 7, 0, 4},
{0x2bf31293, "bseti x5, x6, 63", RV_OP_BSETI, 5, 6, 0, 63, 4},
};
static const struct dcase dc_amo[] = {
{0x100322af, "lr.w x5, (x6)", RV_OP_LR_W, 5, 6, 0, 0, 4},
{0x140332af, "lr.d.aq x5, (x6)", RV_OP_LR_D, 5, 6, 0, 2, 4},
{0x187322af, "sc.w x5, x7, (x6)", RV_OP_SC_W, 5, 6, 7, 0, 4},
{0x1a7332af, "sc.d.rl x5, x7, (x6)", RV_OP_SC_D, 5, 6, 7, 1, 4},
{0x160322af, "lr.w.aqrl x5, (x6)", RV_OP_LR_W, 5, 6, 0, 3, 4},
{0x1e7322af, "sc.w.aqrl x5, x7, (x6)", RV_OP_SC_W, 5, 6, 7, 3, 4},
{0x087322af, "amoswap.w x5, x7, (x6)", RV_OP_AMOSWAP_W, 5, 6, 7, 0, 4},
{0x007322af, "amoadd.w x5, x7, (x6)", RV_OP_AMOADD_W, 5, 6, 7, 0, 4},
{0x207322af, "amoxor.w x5, x7, (x6)", RV_OP_AMOXOR_W, 5, 6, 7, 0, 4},
{0x607322af, "amoand.w x5, x7, (x6)", RV_OP_AMOAND_W, 5, 6, 7, 0, 4},
{0x407322af, "amoor.w x5, x7, (x6)", RV_OP_AMOOR_W, 5, 6, 7, 0, 4},
{0x807322af, "amomin.w x5, x7, (x6)", RV_OP_AMOMIN_W, 5, 6, 7, 0, 4},
{0xa07322af, "amomax.w x5, x7, (x6)", RV_OP_AMOMAX_W, 5, 6, 7, 0, 4},
{0xc07322af, "amominu.w x5, x7, (x6)", RV_OP_AMOMINU_W, 5, 6, 7, 0, 4},
{0xe07322af, "amomaxu.w x5, x7, (x6)", RV_OP_AMOMAXU_W, 5, 6, 7, 0, 4},
{0x087332af, "amoswap.d x5, x7, (x6)", RV_OP_AMOSWAP_D, 5, 6, 7, 0, 4},
{0x067332af, "amoadd.d.aqrl x5, x7, (x6)", RV_OP_AMOADD_D, 5, 6, 7, 0, 4},
{0x207332af, "amoxor.d x5, x7, (x6)", RV_OP_AMOXOR_D, 5, 6, 7, 0, 4},
{0x607332af, "amoand.d x5, x7, (x6)", RV_OP_AMOAND_D, 5, 6, 7, 0, 4},
{0x407332af, "amoor.d x5, x7, (x6)", RV_OP_AMOOR_D, 5, 6, 7, 0, 4},
{0x807332af, "amomin.d x5, x7, (x6)", RV_OP_AMOMIN_D, 5, 6, 7, 0, 4},
{0xa07332af, "amomax.d x5, x7, (x6)", RV_OP_AMOMAX_D, 5, 6, 7, 0, 4},
{0xc07332af, "amominu.d x5, x7, (x6)", RV_OP_AMOMINU_D, 5, 6, 7, 0, 4},
{0xe1eebfaf, "amomaxu.d x31, x30, (x29)", RV_OP_AMOMAXU_D, 31, 29, 30, 0, 4},
};
static const struct dcase dc_system[] = {
{0x00000073, "ecall", RV_OP_ECALL, 0, 0, 0, 0, 4},
{0x00100073, "ebreak", RV_OP_EBREAK, 0, 0, 0, 0, 4},
{0x30200073, "mret", RV_OP_MRET, 0, 0, 0, 0, 4},
{0x10200073, "sret", RV_OP_SRET, 0, 0, 0, 0, 4},
{0x10500073, "wfi", RV_OP_WFI, 0, 0, 0, 0, 4},
{0x12628073, "sfence.vma x5, x6", RV_OP_SFENCE_VMA, 0, 5, 6, 0, 4},
{0x12000073, "sfence.vma", RV_OP_SFENCE_VMA, 0, 0, 0, 0, 4},
{0x340312f3, "csrrw x5, mscratch, x6", RV_OP_CSRRW, 5, 6, 0, 0x340, 4},
{0xfff022f3, "csrrs x5, 0xfff, x0", RV_OP_CSRRS, 5, 0, 0, 0xfff, 4},
{0x1003b073, "csrrc x0, sstatus, x7", RV_OP_CSRRC, 32, 7, 0, 0x100, 4},
{0x7c0fd2f3, "csrrwi x5, 0x7c0, 31", RV_OP_CSRRWI, 5, 31, 0, 0x7c0, 4},
{0x3040e2f3, "csrrsi x5, mie, 1", RV_OP_CSRRSI, 5, 1, 0, 0x304, 4},
{0x344172f3, "csrrci x5, mip, 2", RV_OP_CSRRCI, 5, 2, 0, 0x344, 4},
{0x18009073, "csrrw x0, satp, x1", RV_OP_CSRRW, 32, 1, 0, 0x180, 4},
/* imm = fm|pred|succ; FENCE_SL when a store must be ordered before a later load */
{0x0ff0000f, "fence", RV_OP_FENCE_SL, 0, 0, 0, 0x0ff, 4},
{0x0310000f, "fence rw, w", RV_OP_FENCE, 0, 0, 0, 0x031, 4},
{0x8330000f, "fence.tso", RV_OP_FENCE, 0, 0, 0, 0x833, 4},
{0x0100000f, "pause", RV_OP_PAUSE, 0, 0, 0, 0x010, 4},
{0x0100800f, "fence w, 0 with rs1 = x1: not pause", RV_OP_FENCE, 0, 0, 0, 0x010, 4},
{0x0120000f, "fence w, r", RV_OP_FENCE_SL, 0, 0, 0, 0x012, 4},
{0x0230000f, "fence r, rw", RV_OP_FENCE, 0, 0, 0, 0x023, 4},
{0x0140000f, "fence w, o", RV_OP_FENCE, 0, 0, 0, 0x014, 4},
{0x05a0000f, "fence ow, ir", RV_OP_FENCE_SL, 0, 0, 0, 0x05a, 4},
{0x0220000f, "fence r, r", RV_OP_FENCE, 0, 0, 0, 0x022, 4},
{0x0480000f, "fence o, i", RV_OP_FENCE_SL, 0, 0, 0, 0x048, 4},
{0x0ff2828f, "fence with rd/rs1 set (ignored)", RV_OP_FENCE_SL, 0, 0, 0, 0x0ff, 4},
{0x0000100f, "fence.i", RV_OP_FENCE_I, 0, 0, 0, 0, 4},
};
static const struct dcase dc_fp[] = {
{0xffc32287, "flw f5, -4(x6)", RV_OP_FLW, 5, 6, 0, -4, 4},
{0x00833007, "fld f0, 8(x6)", RV_OP_FLD, 0, 6, 0, 8, 4},
{0x00532627, "fsw f5, 12(x6)", RV_OP_FSW, 0, 6, 5, 12, 4},
{0xfff13c27, "fsd f31, -8(x2)", RV_OP_FSD, 0, 2, 31, -8, 4},
{0x023170d3, "fadd.d f1, f2, f3", RV_OP_FPU, 0, 0, 0, (int32_t)0x023170d3u, 4},
{0x203170c3, "fmadd.s f1, f2, f3, f4", RV_OP_FPU, 0, 0, 0, (int32_t)0x203170c3u, 4},
{0x223170cb, "fnmsub.d f1, f2, f3, f4", RV_OP_FPU, 0, 0, 0, (int32_t)0x223170cbu, 4},
{0xc200f2d3, "fcvt.w.d x5, f1", RV_OP_FPU, 0, 0, 0, (int32_t)0xc200f2d3u, 4},
{0xe2008053, "fmv.x.d x0, f1", RV_OP_FPU, 0, 0, 0, (int32_t)0xe2008053u, 4},
};
static const struct dcase dc_c_q0[] = {
{0x1fe0, "c.addi4spn x8, x2, 1020", RV_OP_ADDI, 8, 2, 0, 1020, 2},
{0x005c, "c.addi4spn x15, x2, 4", RV_OP_ADDI, 15, 2, 0, 4, 2},
{0x0024, "c.addi4spn x9, x2, 8", RV_OP_ADDI, 9, 2, 0, 8, 2},
{0x3fe0, "c.fld f8, 248(x15)", RV_OP_FLD, 8, 15, 0, 248, 2},
{0x5d64, "c.lw x9, 124(x10)", RV_OP_LW, 9, 10, 0, 124, 2},
{0x4040, "c.lw x8, 4(x8)", RV_OP_LW, 8, 8, 0, 4, 2},
{0x4020, "c.lw x8, 64(x8)", RV_OP_LW, 8, 8, 0, 64, 2},
{0x7ef0, "c.ld x12, 248(x13)", RV_OP_LD, 12, 13, 0, 248, 2},
{0x62b0, "c.ld x12, 64(x13)", RV_OP_LD, 12, 13, 0, 64, 2},
{0xa504, "c.fsd f9, 8(x10)", RV_OP_FSD, 0, 10, 9, 8, 2},
{0xc22c, "c.sw x11, 64(x12)", RV_OP_SW, 0, 12, 11, 64, 2},
{0xc24c, "c.sw x11, 4(x12)", RV_OP_SW, 0, 12, 11, 4, 2},
{0xe7d8, "c.sd x14, 136(x15)", RV_OP_SD, 0, 15, 14, 136, 2},
};
static const struct dcase dc_c_q1[] = {
{0x0001, "c.nop", RV_OP_NOP, 0, 0, 0, 0, 2},
{0x1281, "c.addi x5, -32", RV_OP_ADDI, 5, 5, 0, -32, 2},
{0x02fd, "c.addi x5, 31", RV_OP_ADDI, 5, 5, 0, 31, 2},
{0x337d, "c.addiw x6, -1", RV_OP_ADDIW, 6, 6, 0, -1, 2},
{0x2301, "c.addiw x6, 0", RV_OP_ADDIW, 6, 6, 0, 0, 2},
{0x5381, "c.li x7, -32", RV_OP_LI, 7, 0, 0, -32, 2},
{0x4395, "c.li x7, 5", RV_OP_LI, 7, 0, 0, 5, 2},
{0x7101, "c.addi16sp x2, -512", RV_OP_ADDI, 2, 2, 0, -512, 2},
{0x617d, "c.addi16sp x2, 496", RV_OP_ADDI, 2, 2, 0, 496, 2},
{0x6141, "c.addi16sp x2, 16", RV_OP_ADDI, 2, 2, 0, 16, 2},
{0x6105, "c.addi16sp x2, 32", RV_OP_ADDI, 2, 2, 0, 32, 2},
{0x6121, "c.addi16sp x2, 64", RV_OP_ADDI, 2, 2, 0, 64, 2},
{0x6109, "c.addi16sp x2, 128", RV_OP_ADDI, 2, 2, 0, 128, 2},
{0x6111, "c.addi16sp x2, 256", RV_OP_ADDI, 2, 2, 0, 256, 2},
{0x7401, "c.lui x8, 0xfffe0", RV_OP_LI, 8, 0, 0, -131072, 2},
{0x6485, "c.lui x9, 1", RV_OP_LI, 9, 0, 0, 4096, 2},
{0x64fd, "c.lui x9, 0x1f", RV_OP_LI, 9, 0, 0, 0x1f000, 2},
{0x907d, "c.srli x8, 63", RV_OP_SRLI, 8, 8, 0, 63, 2},
{0x8005, "c.srli x8, 1", RV_OP_SRLI, 8, 8, 0, 1, 2},
{0x9481, "c.srai x9, 32", RV_OP_SRAI, 9, 9, 0, 32, 2},
{0x997d, "c.andi x10, -1", RV_OP_ANDI, 10, 10, 0, -1, 2},
{0x893d, "c.andi x10, 15", RV_OP_ANDI, 10, 10, 0, 15, 2},
{0x8c05, "c.sub x8, x9", RV_OP_SUB, 8, 8, 9, 0, 2},
{0x8d2d, "c.xor x10, x11", RV_OP_XOR, 10, 10, 11, 0, 2},
{0x8e55, "c.or x12, x13", RV_OP_OR, 12, 12, 13, 0, 2},
{0x8f7d, "c.and x14, x15", RV_OP_AND, 14, 14, 15, 0, 2},
{0x9c1d, "c.subw x8, x15", RV_OP_SUBW, 8, 8, 15, 0, 2},
{0x9ca9, "c.addw x9, x10", RV_OP_ADDW, 9, 9, 10, 0, 2},
{0xb001, "c.j .-2048", RV_OP_JAL, 32, 0, 0, -2048, 2},
{0xaffd, "c.j .+2046", RV_OP_JAL, 32, 0, 0, 2046, 2},
{0xa009, "c.j .+2", RV_OP_JAL, 32, 0, 0, 2, 2},
{0xa801, "c.j .+16", RV_OP_JAL, 32, 0, 0, 16, 2},
{0xa005, "c.j .+32", RV_OP_JAL, 32, 0, 0, 32, 2},
{0xa081, "c.j .+64", RV_OP_JAL, 32, 0, 0, 64, 2},
{0xa041, "c.j .+128", RV_OP_JAL, 32, 0, 0, 128, 2},
{0xa201, "c.j .+256", RV_OP_JAL, 32, 0, 0, 256, 2},
{0xa101, "c.j .+1024", RV_OP_JAL, 32, 0, 0, 1024, 2},
{0xbffd, "c.j .-2", RV_OP_JAL, 32, 0, 0, -2, 2},
{0xd001, "c.beqz x8, .-256", RV_OP_BEQ, 0, 8, 0, -256, 2},
{0xeffd, "c.bnez x15, .+254", RV_OP_BNE, 0, 15, 0, 254, 2},
{0xc089, "c.beqz x9, .+2", RV_OP_BEQ, 0, 9, 0, 2, 2},
{0xc085, "c.beqz x9, .+32", RV_OP_BEQ, 0, 9, 0, 32, 2},
{0xc481, "c.beqz x9, .+8", RV_OP_BEQ, 0, 9, 0, 8, 2},
{0xe0a1, "c.bnez x9, .+64", RV_OP_BNE, 0, 9, 0, 64, 2},
{0xfcfd, "c.bnez x9, .-2", RV_OP_BNE, 0, 9, 0, -2, 2},
};
static const struct dcase dc_c_q2[] = {
{0x12fe, "c.slli x5, 63", RV_OP_SLLI, 5, 5, 0, 63, 2},
{0x0286, "c.slli x5, 1", RV_OP_SLLI, 5, 5, 0, 1, 2},
{0x32fe, "c.fldsp f5, 504(x2)", RV_OP_FLD, 5, 2, 0, 504, 2},
{0x22a2, "c.fldsp f5, 8(x2)", RV_OP_FLD, 5, 2, 0, 8, 2},
{0x52fe, "c.lwsp x5, 252(x2)", RV_OP_LW, 5, 2, 0, 252, 2},
{0x4292, "c.lwsp x5, 4(x2)", RV_OP_LW, 5, 2, 0, 4, 2},
{0x5282, "c.lwsp x5, 32(x2)", RV_OP_LW, 5, 2, 0, 32, 2},
{0x737e, "c.ldsp x6, 504(x2)", RV_OP_LD, 6, 2, 0, 504, 2},
{0x60a2, "c.ldsp x1, 8(x2)", RV_OP_LD, 1, 2, 0, 8, 2},
{0x7082, "c.ldsp x1, 32(x2)", RV_OP_LD, 1, 2, 0, 32, 2},
{0x6086, "c.ldsp x1, 64(x2)", RV_OP_LD, 1, 2, 0, 64, 2},
{0x8082, "c.jr x1", RV_OP_JALR, 32, 1, 0, 0, 2},
{0x829a, "c.mv x5, x6", RV_OP_MV, 5, 6, 0, 0, 2},
{0x9002, "c.ebreak", RV_OP_EBREAK, 0, 0, 0, 0, 2},
{0x9382, "c.jalr x7", RV_OP_JALR, 1, 7, 0, 0, 2},
{0x929a, "c.add x5, x6", RV_OP_ADD, 5, 5, 6, 0, 2},
{0xbfa2, "c.fsdsp f8, 504(x2)", RV_OP_FSD, 0, 2, 8, 504, 2},
{0xdfa6, "c.swsp x9, 252(x2)", RV_OP_SW, 0, 2, 9, 252, 2},
{0xc226, "c.swsp x9, 4(x2)", RV_OP_SW, 0, 2, 9, 4, 2},
{0xc0a6, "c.swsp x9, 64(x2)", RV_OP_SW, 0, 2, 9, 64, 2},
{0xffaa, "c.sdsp x10, 504(x2)", RV_OP_SD, 0, 2, 10, 504, 2},
{0xe42a, "c.sdsp x10, 8(x2)", RV_OP_SD, 0, 2, 10, 8, 2},
{0xe0aa, "c.sdsp x10, 64(x2)", RV_OP_SD, 0, 2, 10, 64, 2},
};
static const struct dcase dc_rd_zero[] = {
{0x00728013, "addi x0, x5, 7", RV_OP_NOP, 0, 0, 0, 0, 4},
{0x00628033, "add x0, x5, x6", RV_OP_NOP, 0, 0, 0, 0, 4},
{0x00001037, "lui x0, 1", RV_OP_NOP, 0, 0, 0, 0, 4},
{0x00001017, "auipc x0, 1", RV_OP_NOP, 0, 0, 0, 0, 4},
{0x02208033, "mul x0, x1, x2", RV_OP_NOP, 0, 0, 0, 0, 4},
{0x2020a033, "sh1add x0, x1, x2", RV_OP_NOP, 0, 0, 0, 0, 4},
{0x6b80d013, "rev8 x0, x1", RV_OP_NOP, 0, 0, 0, 0, 4},
{0x0010801b, "addiw x0, x1, 1", RV_OP_NOP, 0, 0, 0, 0, 4},
{0x0042a003, "lw x0, 4(x5)", RV_OP_LW, 32, 5, 0, 4, 4},
{0xfff2c003, "lbu x0, -1(x5)", RV_OP_LBU, 32, 5, 0, -1, 4},
{0x3002a073, "csrrs x0, mstatus, x5", RV_OP_CSRRS, 32, 5, 0, 0x300, 4},
{0x3401d073, "csrrwi x0, mscratch, 3", RV_OP_CSRRWI, 32, 3, 0, 0x340, 4},
{0x1002b02f, "lr.d x0, (x5)", RV_OP_LR_D, 32, 5, 0, 0, 4},
{0x0062a02f, "amoadd.w x0, x6, (x5)", RV_OP_AMOADD_W, 32, 5, 6, 0, 4},
{0x1862a02f, "sc.w x0, x6, (x5)", RV_OP_SC_W, 32, 5, 6, 0, 4},
{0x0080006f, "jal x0, .+8", RV_OP_JAL, 32, 0, 0, 8, 4},
{0x00428067, "jalr x0, 4(x5)", RV_OP_JALR, 32, 5, 0, 4, 4},
{0x4005, "c.li x0, 1", RV_OP_NOP, 0, 0, 0, 0, 2},
{0x8016, "c.mv x0, x5", RV_OP_NOP, 0, 0, 0, 0, 2},
{0x9016, "c.add x0, x5", RV_OP_NOP, 0, 0, 0, 0, 2},
{0x0005, "c.addi x0, 1", RV_OP_NOP, 0, 0, 0, 0, 2},
};
static const struct dcase dc_illegal[] = {
{0x0000, ".half 0x0000", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x00000000u, 2},
{0x0004, ".half 0x0004", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x00000004u, 2},
{0x8000, ".half 0x8000", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x00008000u, 2},
{0x9c00, ".half 0x9c00", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x00009c00u, 2},
{0x4002, ".half 0x4002", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x00004002u, 2},
{0x6002, ".half 0x6002", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x00006002u, 2},
{0x8002, ".half 0x8002", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x00008002u, 2},
{0x2001, ".half 0x2001", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x00002001u, 2},
{0x6101, ".half 0x6101", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x00006101u, 2},
{0x6281, ".half 0x6281", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x00006281u, 2},
{0x9c41, ".half 0x9c41", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x00009c41u, 2},
{0x9c61, ".half 0x9c61", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x00009c61u, 2},
{0x0000001f, ".word 0x0000001f", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x0000001fu, 4},
{0x0000003f, ".word 0x0000003f", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x0000003fu, 4},
{0xffffffff, ".word 0xffffffff", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0xffffffffu, 4},
{0x0000000b, ".word 0x0000000b", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x0000000bu, 4},
{0x00000077, ".word 0x00000077", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x00000077u, 4},
{0x047302b3, ".word 0x047302b3", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x047302b3u, 4},
{0x407312b3, ".word 0x407312b3", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x407312b3u, 4},
{0x047302bb, ".word 0x047302bb", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x047302bbu, 4},
{0x0203129b, ".word 0x0203129b", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x0203129bu, 4},
{0x340042f3, ".word 0x340042f3", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x340042f3u, 4},
{0x0000200f, ".word 0x0000200f", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x0000200fu, 4},
{0x00002063, ".word 0x00002063", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x00002063u, 4},
{0x00007003, ".word 0x00007003", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x00007003u, 4},
{0x00004023, ".word 0x00004023", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x00004023u, 4},
{0x00001067, ".word 0x00001067", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x00001067u, 4},
{0x007302af, ".word 0x007302af", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x007302afu, 4},
{0x287322af, ".word 0x287322af", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x287322afu, 4},
{0x107322af, ".word 0x107322af", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x107322afu, 4},
{0x00200073, ".word 0x00200073", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x00200073u, 4},
{0x7b200073, ".word 0x7b200073", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x7b200073u, 4},
{0x00001007, ".word 0x00001007", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x00001007u, 4},
{0x10031293, ".word 0x10031293", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x10031293u, 4},
{0x60331293, ".word 0x60331293", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x60331293u, 4},
{0x0813429b, ".word 0x0813429b", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x0813429bu, 4},
{0x0813c2bb, ".word 0x0813c2bb", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x0813c2bbu, 4},
{0x69835293, ".word 0x69835293", RV_OP_ILLEGAL, 0, 0, 0, (int32_t)0x69835293u, 4},
};
/* clang-format on */

TEST(decode_upper_and_jumps)
{
    CHECK_CASES(dc_upper_jump);
}
TEST(decode_branches)
{
    CHECK_CASES(dc_branch);
}
TEST(decode_loads_stores)
{
    CHECK_CASES(dc_load_store);
}
TEST(decode_op_imm)
{
    CHECK_CASES(dc_op_imm);
}
TEST(decode_op)
{
    CHECK_CASES(dc_op);
}
TEST(decode_op32)
{
    CHECK_CASES(dc_op32);
}
TEST(decode_zba)
{
    CHECK_CASES(dc_zba);
}
TEST(decode_zbb)
{
    CHECK_CASES(dc_zbb);
}
TEST(decode_zbs)
{
    CHECK_CASES(dc_zbs);
}
TEST(decode_amo)
{
    CHECK_CASES(dc_amo);
}
TEST(decode_system_fence_csr)
{
    CHECK_CASES(dc_system);
}
TEST(decode_fp)
{
    CHECK_CASES(dc_fp);
}
TEST(decode_compressed_q0)
{
    CHECK_CASES(dc_c_q0);
}
TEST(decode_compressed_q1)
{
    CHECK_CASES(dc_c_q1);
}
TEST(decode_compressed_q2)
{
    CHECK_CASES(dc_c_q2);
}
TEST(decode_rd_x0)
{
    CHECK_CASES(dc_rd_zero);
}
TEST(decode_illegal)
{
    CHECK_CASES(dc_illegal);
}

struct group {
    const struct dcase *c;
    size_t n;
};
#define G(a)                                                                                       \
    {                                                                                              \
        a, sizeof(a) / sizeof(a[0])                                                                \
    }
static const struct group all_groups[] = {
    G(dc_upper_jump), G(dc_branch), G(dc_load_store), G(dc_op_imm),  G(dc_op),     G(dc_op32),
    G(dc_zba),        G(dc_zbb),    G(dc_zbs),        G(dc_amo),     G(dc_system), G(dc_fp),
    G(dc_c_q0),       G(dc_c_q1),   G(dc_c_q2),       G(dc_rd_zero), G(dc_illegal)};

/* Every architectural operation appears in the tables above (the internal DECODE, PAGE_END,
 * TMP_END and CROSS handlers are the interpreter's, not the decoder's). */
TEST(decode_tables_cover_every_op)
{
    bool seen[RV_OP_COUNT] = {0};
    for (size_t g = 0; g < sizeof(all_groups) / sizeof(all_groups[0]); g++)
        for (size_t k = 0; k < all_groups[g].n; k++)
            seen[all_groups[g].c[k].op] = true;
    for (int op = RV_OP_ILLEGAL; op < RV_OP_COUNT; op++) {
        if (!seen[op]) fprintf(stderr, "  no decode case for %s\n", rv_op_name((enum rv_op)op));
        CHECK(seen[op]);
    }
}

static uint32_t golden(const char *src)
{
    for (size_t g = 0; g < sizeof(all_groups) / sizeof(all_groups[0]); g++)
        for (size_t k = 0; k < all_groups[g].n; k++)
            if (strcmp(all_groups[g].c[k].src, src) == 0) return all_groups[g].c[k].insn;
    fprintf(stderr, "  no golden encoding for \"%s\"\n", src);
    test_failures_in_current++;
    return 0;
}
#define ENC(src, expr)                                                                             \
    do {                                                                                           \
        uint32_t want_ = golden(src), got_ = (uint32_t)(expr);                                     \
        if (want_ != got_) {                                                                       \
            fprintf(stderr, "  encoder %s for \"%s\": 0x%08x, as says 0x%08x\n", #expr, src, got_, \
                    want_);                                                                        \
            test_failures_in_current++;                                                            \
        }                                                                                          \
    } while (0)

/* The harness encoders the execution tests use agree with the assembler. */
TEST(decode_harness_encoders_match_assembler)
{
    ENC("lui x5, 0x12345", I_LUI(5, 0x12345000));
    ENC("auipc x7, 0x80000", I_AUIPC(7, 0x80000000u));
    ENC("jal x1, .+0xffffe", I_JAL(1, 0xffffe));
    ENC("jal x1, .-0x100000", I_JAL(1, -0x100000));
    ENC("jal x5, .-4", I_JAL(5, -4));
    ENC("jal x2, .+2048", I_JAL(2, 2048));
    ENC("jal x0, .", I_SELF_LOOP());
    ENC("jalr x1, -2048(x6)", I_JALR(1, 6, -2048));
    ENC("jalr x9, 2047(x10)", I_JALR(9, 10, 2047));
    ENC("beq x1, x2, .-4096", I_BEQ(1, 2, -4096));
    ENC("bne x3, x4, .+4094", I_BNE(3, 4, 4094));
    ENC("blt x5, x6, .-2", I_BLT(5, 6, -2));
    ENC("bge x7, x8, .+8", I_BGE(7, 8, 8));
    ENC("bltu x31, x30, .-2048", I_BLTU(31, 30, -2048));
    ENC("bgeu x0, x1, .+2048", I_BGEU(0, 1, 2048));
    ENC("lb x5, -1(x6)", I_LB(5, 6, -1));
    ENC("lh x7, 2047(x8)", I_LH(7, 8, 2047));
    ENC("lw x9, -2048(x10)", I_LW(9, 10, -2048));
    ENC("ld x11, 8(x12)", I_LD(11, 12, 8));
    ENC("lbu x13, 0(x14)", I_LBU(13, 14, 0));
    ENC("lhu x15, -2(x16)", I_LHU(15, 16, -2));
    ENC("lwu x17, 4(x18)", I_LWU(17, 18, 4));
    ENC("sb x5, -1(x6)", I_SB(5, 6, -1));
    ENC("sh x7, 2047(x8)", I_SH(7, 8, 2047));
    ENC("sw x9, -2048(x10)", I_SW(9, 10, -2048));
    ENC("sd x11, -8(x12)", I_SD(11, 12, -8));
    ENC("addi x5, x6, -1", I_ADDI(5, 6, -1));
    ENC("slti x5, x6, -2048", I_SLTI(5, 6, -2048));
    ENC("sltiu x5, x6, -1", I_SLTIU(5, 6, -1));
    ENC("xori x5, x6, 2047", I_XORI(5, 6, 2047));
    ENC("ori x5, x6, -16", I_ORI(5, 6, -16));
    ENC("andi x5, x6, 255", I_ANDI(5, 6, 255));
    ENC("slli x5, x6, 63", I_SLLI(5, 6, 63));
    ENC("srli x5, x6, 32", I_SRLI(5, 6, 32));
    ENC("srai x5, x6, 63", I_SRAI(5, 6, 63));
    ENC("add x5, x6, x7", I_ADD(5, 6, 7));
    ENC("sub x5, x6, x7", I_SUB(5, 6, 7));
    ENC("sll x5, x6, x7", I_SLL(5, 6, 7));
    ENC("slt x5, x6, x7", I_SLT(5, 6, 7));
    ENC("sltu x5, x6, x7", I_SLTU(5, 6, 7));
    ENC("xor x5, x6, x7", I_XOR(5, 6, 7));
    ENC("srl x5, x6, x7", I_SRL(5, 6, 7));
    ENC("sra x5, x6, x7", I_SRA(5, 6, 7));
    ENC("or x5, x6, x7", I_OR(5, 6, 7));
    ENC("and x31, x30, x29", I_AND(31, 30, 29));
    ENC("mul x5, x6, x7", I_MUL(5, 6, 7));
    ENC("mulh x5, x6, x7", I_MULH(5, 6, 7));
    ENC("mulhsu x5, x6, x7", I_MULHSU(5, 6, 7));
    ENC("mulhu x5, x6, x7", I_MULHU(5, 6, 7));
    ENC("div x5, x6, x7", I_DIV(5, 6, 7));
    ENC("divu x5, x6, x7", I_DIVU(5, 6, 7));
    ENC("rem x5, x6, x7", I_REM(5, 6, 7));
    ENC("remu x5, x6, x7", I_REMU(5, 6, 7));
    ENC("addiw x5, x6, -1", I_ADDIW(5, 6, -1));
    ENC("slliw x5, x6, 31", I_SLLIW(5, 6, 31));
    ENC("srliw x5, x6, 31", I_SRLIW(5, 6, 31));
    ENC("sraiw x5, x6, 7", I_SRAIW(5, 6, 7));
    ENC("addw x5, x6, x7", I_ADDW(5, 6, 7));
    ENC("subw x5, x6, x7", I_SUBW(5, 6, 7));
    ENC("sllw x5, x6, x7", I_SLLW(5, 6, 7));
    ENC("srlw x5, x6, x7", I_SRLW(5, 6, 7));
    ENC("sraw x5, x6, x7", I_SRAW(5, 6, 7));
    ENC("mulw x5, x6, x7", I_MULW(5, 6, 7));
    ENC("divw x5, x6, x7", I_DIVW(5, 6, 7));
    ENC("divuw x5, x6, x7", I_DIVUW(5, 6, 7));
    ENC("remw x5, x6, x7", I_REMW(5, 6, 7));
    ENC("remuw x5, x6, x7", I_REMUW(5, 6, 7));
    ENC("sh1add x5, x6, x7", I_SH1ADD(5, 6, 7));
    ENC("sh2add x5, x6, x7", I_SH2ADD(5, 6, 7));
    ENC("sh3add x5, x6, x7", I_SH3ADD(5, 6, 7));
    ENC("add.uw x5, x6, x7", I_ADD_UW(5, 6, 7));
    ENC("sh1add.uw x5, x6, x7", I_SH1ADD_UW(5, 6, 7));
    ENC("sh2add.uw x5, x6, x7", I_SH2ADD_UW(5, 6, 7));
    ENC("sh3add.uw x5, x6, x7", I_SH3ADD_UW(5, 6, 7));
    ENC("slli.uw x5, x6, 63", I_SLLI_UW(5, 6, 63));
    ENC("andn x5, x6, x7", I_ANDN(5, 6, 7));
    ENC("orn x5, x6, x7", I_ORN(5, 6, 7));
    ENC("xnor x5, x6, x7", I_XNOR(5, 6, 7));
    ENC("clz x5, x6", I_CLZ(5, 6));
    ENC("ctz x5, x6", I_CTZ(5, 6));
    ENC("cpop x5, x6", I_CPOP(5, 6));
    ENC("clzw x5, x6", I_CLZW(5, 6));
    ENC("ctzw x5, x6", I_CTZW(5, 6));
    ENC("cpopw x5, x6", I_CPOPW(5, 6));
    ENC("max x5, x6, x7", I_MAX(5, 6, 7));
    ENC("maxu x5, x6, x7", I_MAXU(5, 6, 7));
    ENC("min x5, x6, x7", I_MIN(5, 6, 7));
    ENC("minu x5, x6, x7", I_MINU(5, 6, 7));
    ENC("sext.b x5, x6", I_SEXT_B(5, 6));
    ENC("sext.h x5, x6", I_SEXT_H(5, 6));
    ENC("zext.h x5, x6", I_ZEXT_H(5, 6));
    ENC("rol x5, x6, x7", I_ROL(5, 6, 7));
    ENC("ror x5, x6, x7", I_ROR(5, 6, 7));
    ENC("rori x5, x6, 63", I_RORI(5, 6, 63));
    ENC("rolw x5, x6, x7", I_ROLW(5, 6, 7));
    ENC("rorw x5, x6, x7", I_RORW(5, 6, 7));
    ENC("roriw x5, x6, 31", I_RORIW(5, 6, 31));
    ENC("orc.b x5, x6", I_ORC_B(5, 6));
    ENC("rev8 x5, x6", I_REV8(5, 6));
    ENC("bclr x5, x6, x7", I_BCLR(5, 6, 7));
    ENC("bclri x5, x6, 63", I_BCLRI(5, 6, 63));
    ENC("bext x5, x6, x7", I_BEXT(5, 6, 7));
    ENC("bexti x5, x6, 63", I_BEXTI(5, 6, 63));
    ENC("binv x5, x6, x7", I_BINV(5, 6, 7));
    ENC("binvi x5, x6, 0", I_BINVI(5, 6, 0));
    ENC("bset x5, x6, x7", I_BSET(5, 6, 7));
    ENC("bseti x5, x6, 63", I_BSETI(5, 6, 63));
    ENC("lr.w x5, (x6)", I_LR_W(5, 6));
    ENC("sc.w x5, x7, (x6)", I_SC_W(5, 7, 6));
    ENC("amoswap.w x5, x7, (x6)", I_AMO(AMO_SWAP, 0, 5, 6, 7));
    ENC("amoadd.w x5, x7, (x6)", I_AMO(AMO_ADD, 0, 5, 6, 7));
    ENC("amoxor.w x5, x7, (x6)", I_AMO(AMO_XOR, 0, 5, 6, 7));
    ENC("amoand.w x5, x7, (x6)", I_AMO(AMO_AND, 0, 5, 6, 7));
    ENC("amoor.w x5, x7, (x6)", I_AMO(AMO_OR, 0, 5, 6, 7));
    ENC("amomin.w x5, x7, (x6)", I_AMO(AMO_MIN, 0, 5, 6, 7));
    ENC("amomax.w x5, x7, (x6)", I_AMO(AMO_MAX, 0, 5, 6, 7));
    ENC("amominu.w x5, x7, (x6)", I_AMO(AMO_MINU, 0, 5, 6, 7));
    ENC("amomaxu.w x5, x7, (x6)", I_AMO(AMO_MAXU, 0, 5, 6, 7));
    ENC("amoswap.d x5, x7, (x6)", I_AMO(AMO_SWAP, 1, 5, 6, 7));
    ENC("amomaxu.d x31, x30, (x29)", I_AMO(AMO_MAXU, 1, 31, 29, 30));
    ENC("ecall", I_ECALL());
    ENC("ebreak", I_EBREAK());
    ENC("mret", I_MRET());
    ENC("sret", I_SRET());
    ENC("wfi", I_WFI());
    ENC("sfence.vma x5, x6", I_SFENCE_VMA(5, 6));
    ENC("csrrw x5, mscratch, x6", I_CSRRW(5, 0x340, 6));
    ENC("csrrs x5, 0xfff, x0", I_CSRRS(5, 0xfff, 0));
    ENC("csrrc x0, sstatus, x7", I_CSRRC(0, 0x100, 7));
    ENC("csrrwi x5, 0x7c0, 31", I_CSRRWI(5, 0x7c0, 31));
    ENC("csrrsi x5, mie, 1", I_CSRRSI(5, 0x304, 1));
    ENC("csrrci x5, mip, 2", I_CSRRCI(5, 0x344, 2));
    ENC("fence", I_FENCE());
    ENC("fence.i", I_FENCE_I());
    ENC("flw f5, -4(x6)", I_FLW(5, 6, -4));
    ENC("fld f0, 8(x6)", I_FLD(0, 6, 8));
    ENC("fsw f5, 12(x6)", I_FSW(5, 6, 12));
    ENC("fsd f31, -8(x2)", I_FSD(31, 2, -8));
    /* compressed */
    ENC("c.addi4spn x8, x2, 1020", enc_c_addi4spn(8, 1020));
    ENC("c.addi4spn x15, x2, 4", enc_c_addi4spn(15, 4));
    ENC("c.addi4spn x9, x2, 8", enc_c_addi4spn(9, 8));
    ENC("c.lw x9, 124(x10)", enc_c_lw(9, 10, 124));
    ENC("c.lw x8, 4(x8)", enc_c_lw(8, 8, 4));
    ENC("c.lw x8, 64(x8)", enc_c_lw(8, 8, 64));
    ENC("c.ld x12, 248(x13)", enc_c_ld(12, 13, 248));
    ENC("c.ld x12, 64(x13)", enc_c_ld(12, 13, 64));
    ENC("c.sw x11, 64(x12)", enc_c_sw(11, 12, 64));
    ENC("c.sw x11, 4(x12)", enc_c_sw(11, 12, 4));
    ENC("c.sd x14, 136(x15)", enc_c_sd(14, 15, 136));
    ENC("c.fld f8, 248(x15)", enc_c_fld(8, 15, 248));
    ENC("c.fsd f9, 8(x10)", enc_c_fsd(9, 10, 8));
    ENC("c.fldsp f5, 504(x2)", enc_c_fldsp(5, 504));
    ENC("c.fldsp f5, 8(x2)", enc_c_fldsp(5, 8));
    ENC("c.fsdsp f8, 504(x2)", enc_c_fsdsp(8, 504));
    ENC("c.nop", C_NOP());
    ENC("c.addi x5, -32", C_ADDI(5, -32));
    ENC("c.addi x5, 31", C_ADDI(5, 31));
    ENC("c.addiw x6, -1", C_ADDIW(6, -1));
    ENC("c.li x7, -32", C_LI(7, -32));
    ENC("c.li x7, 5", C_LI(7, 5));
    ENC("c.addi16sp x2, -512", enc_c_addi16sp(-512));
    ENC("c.addi16sp x2, 496", enc_c_addi16sp(496));
    ENC("c.addi16sp x2, 16", enc_c_addi16sp(16));
    ENC("c.addi16sp x2, 32", enc_c_addi16sp(32));
    ENC("c.addi16sp x2, 64", enc_c_addi16sp(64));
    ENC("c.addi16sp x2, 128", enc_c_addi16sp(128));
    ENC("c.addi16sp x2, 256", enc_c_addi16sp(256));
    ENC("c.lui x8, 0xfffe0", enc_c_lui(8, -131072));
    ENC("c.lui x9, 1", enc_c_lui(9, 4096));
    ENC("c.lui x9, 0x1f", enc_c_lui(9, 0x1f000));
    ENC("c.srli x8, 63", C_SRLI(8, 63));
    ENC("c.srai x9, 32", C_SRAI(9, 32));
    ENC("c.andi x10, -1", C_ANDI(10, -1));
    ENC("c.andi x10, 15", C_ANDI(10, 15));
    ENC("c.sub x8, x9", C_SUB(8, 9));
    ENC("c.xor x10, x11", C_XOR(10, 11));
    ENC("c.or x12, x13", C_OR(12, 13));
    ENC("c.and x14, x15", C_AND(14, 15));
    ENC("c.subw x8, x15", C_SUBW(8, 15));
    ENC("c.addw x9, x10", C_ADDW(9, 10));
    ENC("c.j .-2048", enc_c_j(-2048));
    ENC("c.j .+2046", enc_c_j(2046));
    ENC("c.j .+2", enc_c_j(2));
    ENC("c.j .+16", enc_c_j(16));
    ENC("c.j .+32", enc_c_j(32));
    ENC("c.j .+64", enc_c_j(64));
    ENC("c.j .+128", enc_c_j(128));
    ENC("c.j .+256", enc_c_j(256));
    ENC("c.j .+1024", enc_c_j(1024));
    ENC("c.j .-2", enc_c_j(-2));
    ENC("c.beqz x8, .-256", C_BEQZ(8, -256));
    ENC("c.bnez x15, .+254", C_BNEZ(15, 254));
    ENC("c.beqz x9, .+2", C_BEQZ(9, 2));
    ENC("c.beqz x9, .+32", C_BEQZ(9, 32));
    ENC("c.beqz x9, .+8", C_BEQZ(9, 8));
    ENC("c.bnez x9, .+64", C_BNEZ(9, 64));
    ENC("c.slli x5, 63", C_SLLI(5, 63));
    ENC("c.lwsp x5, 252(x2)", enc_c_lwsp(5, 252));
    ENC("c.lwsp x5, 4(x2)", enc_c_lwsp(5, 4));
    ENC("c.lwsp x5, 32(x2)", enc_c_lwsp(5, 32));
    ENC("c.ldsp x6, 504(x2)", enc_c_ldsp(6, 504));
    ENC("c.ldsp x1, 8(x2)", enc_c_ldsp(1, 8));
    ENC("c.ldsp x1, 32(x2)", enc_c_ldsp(1, 32));
    ENC("c.ldsp x1, 64(x2)", enc_c_ldsp(1, 64));
    ENC("c.jr x1", C_JR(1));
    ENC("c.mv x5, x6", C_MV(5, 6));
    ENC("c.ebreak", C_EBREAK());
    ENC("c.jalr x7", C_JALR(7));
    ENC("c.add x5, x6", C_ADD(5, 6));
    ENC("c.swsp x9, 252(x2)", enc_c_swsp(9, 252));
    ENC("c.swsp x9, 4(x2)", enc_c_swsp(9, 4));
    ENC("c.swsp x9, 64(x2)", enc_c_swsp(9, 64));
    ENC("c.sdsp x10, 504(x2)", enc_c_sdsp(10, 504));
    ENC("c.sdsp x10, 8(x2)", enc_c_sdsp(10, 8));
    ENC("c.sdsp x10, 64(x2)", enc_c_sdsp(10, 64));
}

/* A compressed instruction is decoded from its low 16 bits only: the interpreter may pass
 * whatever follows it in memory. */
TEST(decode_compressed_ignores_upper_half)
{
    static const uint32_t upper[] = {0x0000, 0xffff, 0x1234, 0x0073};
    for (unsigned k = 0; k < 4; k++) {
        struct rv_decoded d;
        rv_decode((upper[k] << 16) | 0x929a, &d); /* c.add x5, x6 */
        CHECK_EQ(d.op, RV_OP_ADD);
        CHECK_EQ(d.len, 2);
        CHECK_EQ(d.rd, 5);
        CHECK_EQ(d.rs1, 5);
        CHECK_EQ(d.rs2, 6);
        rv_decode((upper[k] << 16) | 0x0000, &d);
        CHECK_EQ(d.op, RV_OP_ILLEGAL);
        CHECK_EQ(d.len, 2);
        CHECK_EQ(d.imm, 0); /* only the 16-bit parcel is the instruction */
    }
}

TEST(decode_op_names)
{
    CHECK_STR(rv_op_name(RV_OP_ADD), "ADD");
    CHECK_STR(rv_op_name(RV_OP_SH1ADD_UW), "SH1ADD_UW");
    CHECK_STR(rv_op_name(RV_OP_BSETI), "BSETI");
    CHECK_STR(rv_op_name(RV_OP_COUNT), "?");
    CHECK_STR(rv_op_name((enum rv_op) - 1), "?");
}

/* Operations whose result goes to integer register rd. */
static bool writes_int_rd(enum rv_op op)
{
    switch (op) {
    case RV_OP_BEQ:
    case RV_OP_BNE:
    case RV_OP_BLT:
    case RV_OP_BGE:
    case RV_OP_BLTU:
    case RV_OP_BGEU:
    case RV_OP_SB:
    case RV_OP_SH:
    case RV_OP_SW:
    case RV_OP_SD:
    case RV_OP_FENCE:
    case RV_OP_FENCE_SL:
    case RV_OP_PAUSE:
    case RV_OP_FENCE_I:
    case RV_OP_ECALL:
    case RV_OP_EBREAK:
    case RV_OP_MRET:
    case RV_OP_SRET:
    case RV_OP_WFI:
    case RV_OP_SFENCE_VMA:
    case RV_OP_FLW:
    case RV_OP_FLD:
    case RV_OP_FSW:
    case RV_OP_FSD:
    case RV_OP_FPU:
    case RV_OP_NOP:
    case RV_OP_ILLEGAL: return false;
    default: return true;
    }
}

static void check_invariants(uint32_t insn, unsigned want_len)
{
    struct rv_decoded d;
    rv_decode(insn, &d);
    bool ok = d.len == want_len && d.op >= RV_OP_ILLEGAL && d.op < RV_OP_COUNT && d.rd <= RV_SINK &&
              d.rs1 < 32 && d.rs2 < 32;
    if (d.op == RV_OP_ILLEGAL)
        ok = ok && (uint32_t)d.imm == (want_len == 2 ? (insn & 0xffff) : insn);
    if (writes_int_rd(d.op)) ok = ok && d.rd != 0; /* results never write x0 */
    if (!ok) {
        fprintf(stderr, "  0x%08x: %s rd=%u rs1=%u rs2=%u imm=0x%x len=%u\n", insn,
                rv_op_name(d.op), d.rd, d.rs1, d.rs2, (unsigned)d.imm, d.len);
        test_failures_in_current++;
    }
}

/* Over the whole 16-bit space and a pseudo-random sample of the 32-bit space: length, register
 * ranges, ILLEGAL carries the raw bits, nothing that writes rd targets x0. */
TEST(decode_invariants_whole_space)
{
    for (uint32_t w = 0; w < 0x10000; w++)
        if ((w & 3) != 3) check_invariants(w, 2);
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (int k = 0; k < 400000 && test_failures_in_current < 20; k++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        uint32_t w = (uint32_t)s | 3;
        check_invariants(w, 4);
        /* the same bits with the major opcodes the decoder knows, rd = x0 */
        static const uint8_t majors[] = {0x03, 0x07, 0x0f, 0x13, 0x17, 0x1b, 0x23, 0x27,
                                         0x2f, 0x33, 0x37, 0x3b, 0x63, 0x67, 0x6f, 0x73};
        uint32_t m = (w & ~0xfffu) | majors[k % 16];
        check_invariants(m, 4);
    }
}

/* Instruction execution on a hart (hart_exec): ALU, W, shifts, M, Zba/Zbb/Zbs, branches,
 * jumps and link values, loads/stores of every width (misaligned, page-crossing, MMIO), AMOs
 * and LR/SC, x0, page-straddling instructions, self-modifying code with fence.i, traps raised
 * by instructions and the exception-loop detector. Expected values follow the unprivileged
 * spec (ch. 2 RV32I/4 RV64I, 13 "M", 14 "A", 28 "B") and the priv spec ch. 3 for traps. */
#include "cpu_harness.h"

#define D TH_DATA

/* ---- single-instruction ALU cases ---- */

struct alu_case {
    const char *name;
    uint32_t insn;
    bool c16;   /* a 16-bit instruction */
    uint8_t rd; /* result register (0 means x5) */
    uint64_t a, b, want;
};

/* Run each case as a one-instruction program at TH_CODE with x6 = x8 = x2 = a and
 * x7 = x9 = b; the result is read from rd (x5 by default, preset to a sentinel). */
static void run_alu_cases(const struct alu_case *c, size_t n)
{
    struct th *t = th_new();
    for (size_t k = 0; k < n; k++) {
        th_org(t, TH_CODE);
        if (c[k].c16)
            th_emit16(t, (uint16_t)c[k].insn);
        else
            th_emit(t, c[k].insn);
        uint64_t end = th_emit(t, I_SELF_LOOP());
        dcache_flush(&t->h); /* new code at the same address */
        t->h.pc = TH_CODE;
        unsigned rd = c[k].rd ? c[k].rd : 5;
        t->h.x[5] = 0x5a5a5a5a5a5a5a5aull;
        t->h.x[2] = t->h.x[6] = t->h.x[8] = c[k].a;
        t->h.x[7] = t->h.x[9] = c[k].b;
        th_run_until(t, end, 10);
        if (t->h.pc != end || t->h.x[rd] != c[k].want) {
            fprintf(stderr,
                    "  %s (0x%08x): a=0x%llx b=0x%llx -> x%u=0x%llx pc=0x%llx, want 0x%llx\n",
                    c[k].name, c[k].insn, (unsigned long long)c[k].a, (unsigned long long)c[k].b,
                    rd, (unsigned long long)t->h.x[rd], (unsigned long long)t->h.pc,
                    (unsigned long long)c[k].want);
            test_failures_in_current++;
        }
    }
    th_free(t);
}
#define RUN_ALU(arr) run_alu_cases(arr, sizeof(arr) / sizeof(arr[0]))

#define M1    0xffffffffffffffffull
#define MIN   0x8000000000000000ull
#define SX(v) ((uint64_t)(int64_t)(v))

TEST(cpu_alu_base)
{
    const struct alu_case c[] = {
        {"add", I_ADD(5, 6, 7), 0, 0, 0x7fffffffffffffff, 1, MIN},
        {"add wraps", I_ADD(5, 6, 7), 0, 0, M1, 2, 1},
        {"sub", I_SUB(5, 6, 7), 0, 0, 0, 1, M1},
        {"sub min", I_SUB(5, 6, 7), 0, 0, MIN, 1, 0x7fffffffffffffff},
        {"addi -2048", I_ADDI(5, 6, -2048), 0, 0, 0, 0, SX(-2048)},
        {"addi 2047", I_ADDI(5, 6, 2047), 0, 0, 1, 0, 2048},
        {"slt less", I_SLT(5, 6, 7), 0, 0, M1, 0, 1},
        {"slt greater", I_SLT(5, 6, 7), 0, 0, 0, M1, 0},
        {"slt equal", I_SLT(5, 6, 7), 0, 0, 5, 5, 0},
        {"sltu", I_SLTU(5, 6, 7), 0, 0, 0, M1, 1},
        {"sltu 2", I_SLTU(5, 6, 7), 0, 0, M1, 0, 0},
        {"slti", I_SLTI(5, 6, -1), 0, 0, SX(-2), 0, 1},
        {"slti equal", I_SLTI(5, 6, -1), 0, 0, M1, 0, 0},
        {"sltiu sign-extended imm", I_SLTIU(5, 6, -1), 0, 0, 0xfffffffffffffffe, 0, 1},
        {"sltiu seqz", I_SLTIU(5, 6, 1), 0, 0, 0, 0, 1},
        {"sltiu seqz nonzero", I_SLTIU(5, 6, 1), 0, 0, 7, 0, 0},
        {"xor", I_XOR(5, 6, 7), 0, 0, 0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0, 0xf0f0f0f0f0f0f0f0},
        {"or", I_OR(5, 6, 7), 0, 0, 0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0, 0xfff0fff0fff0fff0},
        {"and", I_AND(5, 6, 7), 0, 0, 0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0, 0x0f000f000f000f00},
        {"xori not", I_XORI(5, 6, -1), 0, 0, 0x1234, 0, ~0x1234ull},
        {"ori", I_ORI(5, 6, -2048), 0, 0, 1, 0, 0xfffffffffffff801},
        {"andi", I_ANDI(5, 6, 0x7ff), 0, 0, M1, 0, 0x7ff},
        {"andi negative", I_ANDI(5, 6, -16), 0, 0, 0x1234567f, 0, 0x12345670},
        {"lui negative", I_LUI(5, 0xfffff000), 0, 0, 0, 0, 0xfffffffffffff000},
        {"lui positive", I_LUI(5, 0x7ffff000), 0, 0, 0, 0, 0x7ffff000},
        {"li", I_ADDI(5, 0, -5), 0, 0, 9, 9, SX(-5)},
        {"mv", I_ADDI(5, 6, 0), 0, 0, 0x123456789, 0, 0x123456789},
        {"auipc negative", I_AUIPC(5, 0xfffff000), 0, 0, 0, 0, TH_CODE - 0x1000},
        {"auipc positive", I_AUIPC(5, 0x7ffff000), 0, 0, 0, 0, TH_CODE + 0x7ffff000},
    };
    RUN_ALU(c);
}

TEST(cpu_shifts)
{
    const struct alu_case c[] = {
        {"sll 63", I_SLL(5, 6, 7), 0, 0, 1, 63, MIN},
        {"sll uses rs2[5:0]", I_SLL(5, 6, 7), 0, 0, 1, 64 + 3, 8},
        {"srl 63", I_SRL(5, 6, 7), 0, 0, MIN, 63, 1},
        {"srl uses rs2[5:0]", I_SRL(5, 6, 7), 0, 0, MIN, 0xffffffffffffffc1, 0x4000000000000000},
        {"sra 63", I_SRA(5, 6, 7), 0, 0, MIN, 63, M1},
        {"sra positive", I_SRA(5, 6, 7), 0, 0, 0x4000000000000000, 62, 1},
        {"sra uses rs2[5:0]", I_SRA(5, 6, 7), 0, 0, MIN, 65, 0xc000000000000000},
        {"slli 63", I_SLLI(5, 6, 63), 0, 0, 3, 0, MIN},
        {"slli 0", I_SLLI(5, 6, 0), 0, 0, 3, 0, 3},
        {"srli 32", I_SRLI(5, 6, 32), 0, 0, 0xdeadbeef00000000, 0, 0xdeadbeef},
        {"srai 4", I_SRAI(5, 6, 4), 0, 0, MIN, 0, 0xf800000000000000},
        {"srai 63", I_SRAI(5, 6, 63), 0, 0, MIN, 0, M1},
        {"srai positive", I_SRAI(5, 6, 1), 0, 0, 0x7ffffffffffffffe, 0, 0x3fffffffffffffff},
    };
    RUN_ALU(c);
}

TEST(cpu_w_ops)
{
    const struct alu_case c[] = {
        {"addw overflow", I_ADDW(5, 6, 7), 0, 0, 0x7fffffff, 1, 0xffffffff80000000},
        {"addw ignores upper", I_ADDW(5, 6, 7), 0, 0, 0xffffffff00000001, 0x1234567800000001, 2},
        {"subw", I_SUBW(5, 6, 7), 0, 0, 0x80000000, 1, 0x7fffffff},
        {"subw negative", I_SUBW(5, 6, 7), 0, 0, 0, 1, M1},
        {"addiw overflow", I_ADDIW(5, 6, 1), 0, 0, 0x7fffffff, 0, 0xffffffff80000000},
        {"sext.w", I_ADDIW(5, 6, 0), 0, 0, 0x00000001fffffffe, 0, 0xfffffffffffffffe},
        {"addiw -1", I_ADDIW(5, 6, -1), 0, 0, 0, 0, M1},
        {"sllw", I_SLLW(5, 6, 7), 0, 0, 1, 31, 0xffffffff80000000},
        {"sllw uses rs2[4:0]", I_SLLW(5, 6, 7), 0, 0, 1, 33, 2},
        {"srlw", I_SRLW(5, 6, 7), 0, 0, 0xffffffff80000000, 31, 1},
        {"srlw 0 sign-extends", I_SRLW(5, 6, 7), 0, 0, 0x80000000, 0, 0xffffffff80000000},
        {"srlw uses rs2[4:0]", I_SRLW(5, 6, 7), 0, 0, 0x80000000, 36, 0x08000000},
        {"sraw", I_SRAW(5, 6, 7), 0, 0, 0x80000000, 4, 0xfffffffff8000000},
        {"sraw uses rs2[4:0]", I_SRAW(5, 6, 7), 0, 0, 0x80000000, 63, M1},
        {"slliw", I_SLLIW(5, 6, 31), 0, 0, 3, 0, 0xffffffff80000000},
        {"srliw", I_SRLIW(5, 6, 4), 0, 0, 0xfffffffffffffff0, 0, 0x0fffffff},
        {"srliw 0", I_SRLIW(5, 6, 0), 0, 0, 0x80000000, 0, 0xffffffff80000000},
        {"sraiw", I_SRAIW(5, 6, 4), 0, 0, 0x80000000, 0, 0xfffffffff8000000},
        {"sraiw ignores upper", I_SRAIW(5, 6, 1), 0, 0, 0xffffffff7ffffffe, 0, 0x3fffffff},
    };
    RUN_ALU(c);
}

TEST(cpu_mul)
{
    const struct alu_case c[] = {
        {"mul", I_MUL(5, 6, 7), 0, 0, SX(-2), 3, SX(-6)},
        {"mul wraps", I_MUL(5, 6, 7), 0, 0, 0x100000000, 0x100000000, 0},
        {"mulh", I_MULH(5, 6, 7), 0, 0, SX(-2), 3, M1},
        {"mulh min*min", I_MULH(5, 6, 7), 0, 0, MIN, MIN, 0x4000000000000000},
        {"mulh min*-1", I_MULH(5, 6, 7), 0, 0, MIN, M1, 0},
        {"mulhu", I_MULHU(5, 6, 7), 0, 0, SX(-2), 3, 2},
        {"mulhu max", I_MULHU(5, 6, 7), 0, 0, M1, M1, 0xfffffffffffffffe},
        {"mulhsu negative", I_MULHSU(5, 6, 7), 0, 0, SX(-2), 3, M1},
        {"mulhsu rs2 unsigned", I_MULHSU(5, 6, 7), 0, 0, 3, SX(-2), 2},
        {"mulhsu -1*max", I_MULHSU(5, 6, 7), 0, 0, M1, M1, M1},
        {"mulw", I_MULW(5, 6, 7), 0, 0, 0x7fffffff, 2, 0xfffffffffffffffe},
        {"mulw ignores upper", I_MULW(5, 6, 7), 0, 0, 0x100000003, 0x500000007, 21},
    };
    RUN_ALU(c);
}

/* Division never traps (unpriv spec 13.2, table "Semantics for division by zero and division
 * overflow"). */
TEST(cpu_div_rem)
{
    const struct alu_case c[] = {
        {"div truncates", I_DIV(5, 6, 7), 0, 0, 7, SX(-2), SX(-3)},
        {"div negative", I_DIV(5, 6, 7), 0, 0, SX(-7), 2, SX(-3)},
        {"rem", I_REM(5, 6, 7), 0, 0, 7, SX(-2), 1},
        {"rem negative", I_REM(5, 6, 7), 0, 0, SX(-7), 2, SX(-1)},
        {"divu", I_DIVU(5, 6, 7), 0, 0, SX(-2), 3, 0x5555555555555554},
        {"remu", I_REMU(5, 6, 7), 0, 0, SX(-2), 3, 2},
        {"div by zero", I_DIV(5, 6, 7), 0, 0, 7, 0, M1},
        {"divu by zero", I_DIVU(5, 6, 7), 0, 0, 7, 0, M1},
        {"rem by zero", I_REM(5, 6, 7), 0, 0, SX(-7), 0, SX(-7)},
        {"remu by zero", I_REMU(5, 6, 7), 0, 0, 7, 0, 7},
        {"div overflow", I_DIV(5, 6, 7), 0, 0, MIN, M1, MIN},
        {"rem overflow", I_REM(5, 6, 7), 0, 0, MIN, M1, 0},
        {"divw", I_DIVW(5, 6, 7), 0, 0, 0x100000007, SX(-2), SX(-3)},
        {"divw overflow", I_DIVW(5, 6, 7), 0, 0, 0x80000000, 0xffffffff, 0xffffffff80000000},
        {"remw overflow", I_REMW(5, 6, 7), 0, 0, 0x80000000, M1, 0},
        {"divw by zero (low word)", I_DIVW(5, 6, 7), 0, 0, 7, 0x100000000, M1},
        {"divuw by zero", I_DIVUW(5, 6, 7), 0, 0, 7, 0, M1},
        {"remw by zero", I_REMW(5, 6, 7), 0, 0, 0x180000000, 0, 0xffffffff80000000},
        {"remuw by zero", I_REMUW(5, 6, 7), 0, 0, 0x80000000, 0, 0xffffffff80000000},
        {"divuw", I_DIVUW(5, 6, 7), 0, 0, 0xffffffff, 2, 0x7fffffff},
        {"divuw sign-extends", I_DIVUW(5, 6, 7), 0, 0, 0xffffffff, 1, M1},
        {"remw", I_REMW(5, 6, 7), 0, 0, SX(-7), 2, SX(-1)},
        {"remuw", I_REMUW(5, 6, 7), 0, 0, 0xffffffff, 0x10, 15},
        {"div x,x,zero (cpu_relax)", I_DIV(6, 6, 0), 0, 6, 5, 0, M1},
    };
    RUN_ALU(c);
}

TEST(cpu_zba)
{
    const struct alu_case c[] = {
        {"sh1add", I_SH1ADD(5, 6, 7), 0, 0, 0x8000000000000001, 0x10, 0x12},
        {"sh2add", I_SH2ADD(5, 6, 7), 0, 0, 3, 100, 112},
        {"sh3add", I_SH3ADD(5, 6, 7), 0, 0, 3, M1, 23},
        {"add.uw", I_ADD_UW(5, 6, 7), 0, 0, 0xffffffff80000003, 0x1000, 0x80001003},
        {"zext.w", I_ADD_UW(5, 6, 0), 0, 0, 0xffffffff80000003, 0, 0x80000003},
        {"sh1add.uw", I_SH1ADD_UW(5, 6, 7), 0, 0, 0xffffffff80000003, 0x1000, 0x100001006},
        {"sh2add.uw", I_SH2ADD_UW(5, 6, 7), 0, 0, 0xffffffff80000003, 0x1000, 0x20000100c},
        {"sh3add.uw", I_SH3ADD_UW(5, 6, 7), 0, 0, 0xffffffff80000003, 0x1000, 0x400001018},
        {"slli.uw", I_SLLI_UW(5, 6, 4), 0, 0, 0xffffffff80000003, 0, 0x800000030},
        {"slli.uw 63", I_SLLI_UW(5, 6, 63), 0, 0, 0xffffffff00000001, 0, MIN},
    };
    RUN_ALU(c);
}

TEST(cpu_zbb)
{
    const struct alu_case c[] = {
        {"andn", I_ANDN(5, 6, 7), 0, 0, 0xff00, 0x0f00, 0xf000},
        {"orn", I_ORN(5, 6, 7), 0, 0, 1, 0xfffffffffffffff0, 0xf},
        {"xnor", I_XNOR(5, 6, 7), 0, 0, 0xf0, 0x0f, 0xffffffffffffff00},
        {"clz", I_CLZ(5, 6), 0, 0, 0x00f0000000000100, 0, 8},
        {"clz 0", I_CLZ(5, 6), 0, 0, 0, 0, 64},
        {"clz msb", I_CLZ(5, 6), 0, 0, MIN, 0, 0},
        {"ctz", I_CTZ(5, 6), 0, 0, 0x00f0000000000100, 0, 8},
        {"ctz 0", I_CTZ(5, 6), 0, 0, 0, 0, 64},
        {"cpop", I_CPOP(5, 6), 0, 0, 0x00f0000000000100, 0, 5},
        {"cpop all", I_CPOP(5, 6), 0, 0, M1, 0, 64},
        {"clzw", I_CLZW(5, 6), 0, 0, 0xffffffff00000001, 0, 31},
        {"clzw 0", I_CLZW(5, 6), 0, 0, 0xffffffff00000000, 0, 32},
        {"ctzw 0", I_CTZW(5, 6), 0, 0, 0x100000000, 0, 32},
        {"ctzw", I_CTZW(5, 6), 0, 0, 0x80000000, 0, 31},
        {"cpopw", I_CPOPW(5, 6), 0, 0, 0xffffffff0000000f, 0, 4},
        {"max", I_MAX(5, 6, 7), 0, 0, M1, 1, 1},
        {"maxu", I_MAXU(5, 6, 7), 0, 0, M1, 1, M1},
        {"min", I_MIN(5, 6, 7), 0, 0, M1, 1, M1},
        {"minu", I_MINU(5, 6, 7), 0, 0, M1, 1, 1},
        {"sext.b", I_SEXT_B(5, 6), 0, 0, 0x1280, 0, 0xffffffffffffff80},
        {"sext.b positive", I_SEXT_B(5, 6), 0, 0, 0xff7f, 0, 0x7f},
        {"sext.h", I_SEXT_H(5, 6), 0, 0, 0x18000, 0, 0xffffffffffff8000},
        {"zext.h", I_ZEXT_H(5, 6), 0, 0, 0xffffffffffff8001, 0, 0x8001},
        {"rol", I_ROL(5, 6, 7), 0, 0, 0x8000000000000001, 1, 3},
        {"rol uses rs2[5:0]", I_ROL(5, 6, 7), 0, 0, 0x8000000000000001, 65, 3},
        {"ror", I_ROR(5, 6, 7), 0, 0, 3, 1, 0x8000000000000001},
        {"ror by 64 = 0", I_ROR(5, 6, 7), 0, 0, 0x1234, 64, 0x1234},
        {"rori 63", I_RORI(5, 6, 63), 0, 0, 1, 0, 2},
        {"rori 4", I_RORI(5, 6, 4), 0, 0, 0x1234, 0, 0x4000000000000123},
        {"rolw", I_ROLW(5, 6, 7), 0, 0, 0x80000001, 1, 3},
        {"rolw sign-extends", I_ROLW(5, 6, 7), 0, 0, 0x40000000, 1, 0xffffffff80000000},
        {"rorw", I_RORW(5, 6, 7), 0, 0, 1, 1, 0xffffffff80000000},
        {"rorw uses rs2[4:0]", I_RORW(5, 6, 7), 0, 0, 1, 33, 0xffffffff80000000},
        {"roriw", I_RORIW(5, 6, 4), 0, 0, 0xffffffff00001234, 0, 0x40000123},
        {"roriw sign-extends", I_RORIW(5, 6, 1), 0, 0, 1, 0, 0xffffffff80000000},
        {"orc.b", I_ORC_B(5, 6), 0, 0, 0x0001000080000100, 0, 0x00ff0000ff00ff00},
        {"rev8", I_REV8(5, 6), 0, 0, 0x0102030405060708, 0, 0x0807060504030201},
    };
    RUN_ALU(c);
}

TEST(cpu_zbs)
{
    const struct alu_case c[] = {
        {"bclr", I_BCLR(5, 6, 7), 0, 0, M1, 63, 0x7fffffffffffffff},
        {"bclr uses rs2[5:0]", I_BCLR(5, 6, 7), 0, 0, M1, 64, 0xfffffffffffffffe},
        {"bclri", I_BCLRI(5, 6, 5), 0, 0, M1, 0, ~0x20ull},
        {"bext", I_BEXT(5, 6, 7), 0, 0, MIN, 63, 1},
        {"bext 0", I_BEXT(5, 6, 7), 0, 0, MIN, 62, 0},
        {"bexti", I_BEXTI(5, 6, 32), 0, 0, 0x100000000, 0, 1},
        {"binv", I_BINV(5, 6, 7), 0, 0, 0, 63, MIN},
        {"binv clears", I_BINV(5, 6, 7), 0, 0, MIN, 63, 0},
        {"binvi", I_BINVI(5, 6, 0), 0, 0, 1, 0, 0},
        {"bset uses rs2[5:0]", I_BSET(5, 6, 7), 0, 0, 0, 65, 2},
        {"bseti", I_BSETI(5, 6, 63), 0, 0, 0, 0, MIN},
    };
    RUN_ALU(c);
}

TEST(cpu_compressed_alu)
{
    const struct alu_case c[] = {
        {"c.addi", C_ADDI(6, -32), 1, 6, 0, 0, SX(-32)},
        {"c.addiw", C_ADDIW(6, 1), 1, 6, 0x7fffffff, 0, 0xffffffff80000000},
        {"c.li", C_LI(5, -32), 1, 5, 0, 0, SX(-32)},
        {"c.lui negative", enc_c_lui(5, -131072), 1, 5, 0, 0, 0xfffffffffffe0000},
        {"c.lui positive", enc_c_lui(5, 0x1f000), 1, 5, 0, 0, 0x1f000},
        {"c.addi16sp", enc_c_addi16sp(-512), 1, 2, 0x1000, 0, 0xe00},
        {"c.addi4spn", enc_c_addi4spn(8, 1020), 1, 8, 0x1000, 0, 0x13fc},
        {"c.srli", C_SRLI(8, 63), 1, 8, MIN, 0, 1},
        {"c.srai", C_SRAI(8, 63), 1, 8, MIN, 0, M1},
        {"c.andi", C_ANDI(8, -2), 1, 8, 0xff, 0, 0xfe},
        {"c.sub", C_SUB(8, 9), 1, 8, 1, 2, M1},
        {"c.xor", C_XOR(8, 9), 1, 8, 0xff, 0x0f, 0xf0},
        {"c.or", C_OR(8, 9), 1, 8, 0xf0, 0x0f, 0xff},
        {"c.and", C_AND(8, 9), 1, 8, 0xff, 0x0f, 0x0f},
        {"c.subw", C_SUBW(8, 9), 1, 8, 0x80000000, 1, 0x7fffffff},
        {"c.addw", C_ADDW(8, 9), 1, 8, 0x7fffffff, 1, 0xffffffff80000000},
        {"c.slli", C_SLLI(6, 63), 1, 6, 1, 0, MIN},
        {"c.mv", C_MV(5, 7), 1, 5, 0, 0x1234, 0x1234},
        {"c.add", C_ADD(6, 7), 1, 6, 0x1000, 0x234, 0x1234},
    };
    RUN_ALU(c);
}

/* ---- programs ---- */

/* Emit the end of a program (a self-loop) and run to it. */
static bool run_prog(struct th *t)
{
    uint64_t end = th_emit(t, I_SELF_LOOP());
    return th_run_until(t, end, 200) == end;
}

TEST(cpu_branches)
{
    struct th *t = th_new();
    struct bc {
        uint32_t f3;
        unsigned a, b;
        bool taken;
    };
    /* x5 = -1, x6 = 1, x7 = 1 */
    const struct bc c[] = {
        {0, 6, 7, true}, {0, 5, 6, false},                   /* beq */
        {1, 5, 6, true}, {1, 6, 7, false},                   /* bne */
        {4, 5, 6, true}, {4, 6, 5, false}, {4, 6, 7, false}, /* blt */
        {5, 6, 5, true}, {5, 6, 7, true},  {5, 5, 6, false}, /* bge */
        {6, 6, 5, true}, {6, 5, 6, false}, {6, 6, 7, false}, /* bltu */
        {7, 5, 6, true}, {7, 6, 7, true},  {7, 6, 5, false}, /* bgeu */
    };
    unsigned n = sizeof(c) / sizeof(c[0]);
    uint64_t want_not_taken = 0;
    for (unsigned k = 0; k < n; k++) {
        th_emit(t, enc_b(c[k].f3, c[k].a, c[k].b, 8)); /* taken: skip the bset */
        th_emit(t, I_BSETI(10, 10, k));
        if (!c[k].taken) want_not_taken |= 1ull << k;
    }
    /* backward branch: a counted loop */
    th_emit(t, I_ADDI(11, 0, 10));
    uint64_t loop = th_emit(t, I_ADDI(12, 12, 3));
    th_emit(t, I_ADDI(11, 11, -1));
    th_emit(t, I_BNE(11, 0, (int32_t)(loop - th_here(t))));
    /* compressed branches: x8 = 0, x9 = 1 */
    th_emit16(t, C_BEQZ(8, 4)); /* taken */
    th_emit16(t, C_LI(13, 1));
    th_emit16(t, C_BNEZ(8, 4)); /* not taken */
    th_emit16(t, C_LI(14, 1));
    th_emit16(t, C_BNEZ(9, 4)); /* taken */
    th_emit16(t, C_LI(15, 1));
    th_emit16(t, C_BEQZ(9, 4)); /* not taken */
    th_emit16(t, C_LI(16, 1));
    t->h.x[5] = M1;
    t->h.x[6] = t->h.x[7] = 1;
    t->h.x[8] = 0;
    t->h.x[9] = 1;
    CHECK(run_prog(t));
    CHECK_EQ(t->h.x[10], want_not_taken);
    CHECK_EQ(t->h.x[12], 30);
    CHECK_EQ(t->h.x[13], 0);
    CHECK_EQ(t->h.x[14], 1);
    CHECK_EQ(t->h.x[15], 0);
    CHECK_EQ(t->h.x[16], 1);
    th_free(t);
}

/* Far branch targets in both directions (B-immediate extremes) */
TEST(cpu_branch_far_offsets)
{
    struct th *t = th_new();
    uint64_t start = TH_CODE + 0x2000;
    t->h.pc = start;
    th_org(t, start);
    th_emit(t, I_BEQ(0, 0, 4094 - 2)); /* -> start + 4092 */
    th_org(t, start + 4092);
    th_emit(t, I_BGEU(0, 0, -4096)); /* -> start - 4 */
    th_org(t, start - 4);
    th_emit(t, I_JAL(0, 0xf0000 - (-4))); /* -> start + 0xf0000 */
    th_org(t, start + 0xf0000);
    th_emit(t, I_ADDI(5, 0, 77));
    CHECK(run_prog(t));
    CHECK_EQ(t->h.x[5], 77);
    th_free(t);
}

TEST(cpu_jal_jalr_link)
{
    struct th *t = th_new();
    /* jal: link = pc + 4 */
    uint64_t a = th_emit(t, I_JAL(11, 8));
    th_emit(t, 0); /* an illegal marker: must be jumped over */
    /* jalr: target (rs1 + imm) & ~1, link = pc + 4 */
    uint64_t b = th_emit(t, I_JALR(5, 6, -4));
    th_emit(t, 0);
    uint64_t b_target = th_here(t);
    /* jalr with rd == rs1: the target uses the old value */
    uint64_t c = th_emit(t, I_JALR(7, 7, 0));
    th_emit(t, 0);
    uint64_t c_target = th_here(t);
    /* c.jalr: link = pc + 2 */
    uint64_t d = th_emit16(t, C_JALR(8));
    th_emit16(t, 0);
    uint64_t d_target = th_here(t);
    /* c.j over a marker, c.jr */
    th_emit16(t, (uint16_t)enc_c_j(4));
    th_emit16(t, 0);
    th_emit16(t, C_JR(9));
    th_emit16(t, 0);
    uint64_t e_target = th_here(t);
    /* backward jal */
    uint64_t f0 = th_emit(t, I_JAL(0, 12));
    th_emit(t, I_JAL(0, 12));
    th_emit(t, 0);
    uint64_t f12 = th_emit(t, I_JAL(10, -8));
    (void)f0;
    t->h.x[6] = b_target + 5; /* (x6 - 4) is odd: bit 0 is cleared */
    t->h.x[7] = c_target;
    t->h.x[8] = d_target;
    t->h.x[9] = e_target;
    CHECK(run_prog(t));
    CHECK_EQ(t->h.x[11], a + 4);
    CHECK_EQ(t->h.x[5], b + 4);
    CHECK_EQ(t->h.x[7], c + 4);
    CHECK_EQ(t->h.x[1], d + 2);
    CHECK_EQ(t->h.x[10], f12 + 4);
    CHECK_EQ(t->h.x[0], 0);
    th_free(t);
}

TEST(cpu_loads_sign_extension)
{
    struct th *t = th_new();
    th_w64(t, D, 0x8899aabbccddeeffull);
    th_w64(t, D + 8, 0x000000007fff7f7full);
    th_emit(t, I_LB(10, 6, 0));
    th_emit(t, I_LBU(11, 6, 0));
    th_emit(t, I_LH(12, 6, 0));
    th_emit(t, I_LHU(13, 6, 0));
    th_emit(t, I_LW(14, 6, 0));
    th_emit(t, I_LWU(15, 6, 0));
    th_emit(t, I_LD(16, 6, 0));
    th_emit(t, I_LB(17, 6, 7));
    th_emit(t, I_LW(18, 6, 4));
    th_emit(t, I_LB(19, 6, 8));
    th_emit(t, I_LH(20, 6, 8));
    th_emit(t, I_LW(21, 6, 8));
    th_emit(t, I_LD(22, 7, -16));
    th_emit(t, I_LHU(23, 7, -14));
    t->h.x[6] = D;
    t->h.x[7] = D + 16;
    CHECK(run_prog(t));
    CHECK_EQ(t->h.x[10], 0xffffffffffffffffull);
    CHECK_EQ(t->h.x[11], 0xff);
    CHECK_EQ(t->h.x[12], 0xffffffffffffeeffull);
    CHECK_EQ(t->h.x[13], 0xeeff);
    CHECK_EQ(t->h.x[14], 0xffffffffccddeeffull);
    CHECK_EQ(t->h.x[15], 0xccddeeff);
    CHECK_EQ(t->h.x[16], 0x8899aabbccddeeffull);
    CHECK_EQ(t->h.x[17], 0xffffffffffffff88ull);
    CHECK_EQ(t->h.x[18], 0xffffffff8899aabbull);
    CHECK_EQ(t->h.x[19], 0x7f);
    CHECK_EQ(t->h.x[20], 0x7f7f);
    CHECK_EQ(t->h.x[21], 0x7fff7f7f);
    CHECK_EQ(t->h.x[22], 0x8899aabbccddeeffull);
    CHECK_EQ(t->h.x[23], 0xccdd);
    th_free(t);
}

TEST(cpu_stores_all_widths)
{
    struct th *t = th_new();
    memset(th_ptr(t, D + 0xf0), 0xaa, 0x40);
    th_emit(t, I_SB(8, 9, 0));
    th_emit(t, I_SH(8, 9, 8));
    th_emit(t, I_SW(8, 9, 16));
    th_emit(t, I_SD(8, 9, 24));
    th_emit(t, I_SB(8, 9, -1));
    t->h.x[8] = 0x1122334455667788ull;
    t->h.x[9] = D + 0x100;
    CHECK(run_prog(t));
    CHECK_EQ(th_r64(t, D + 0x100), 0xaaaaaaaaaaaaaa88ull);
    CHECK_EQ(th_r64(t, D + 0x108), 0xaaaaaaaaaaaa7788ull);
    CHECK_EQ(th_r64(t, D + 0x110), 0xaaaaaaaa55667788ull);
    CHECK_EQ(th_r64(t, D + 0x118), 0x1122334455667788ull);
    CHECK_EQ(th_r64(t, D + 0x120), 0xaaaaaaaaaaaaaaaaull);
    CHECK_EQ(th_r8(t, D + 0xff), 0x88);
    CHECK_EQ(th_r8(t, D + 0xfe), 0xaa);
    th_free(t);
}

TEST(cpu_compressed_loads_stores)
{
    struct th *t = th_new();
    th_w64(t, D + 8, 0xfedcba9876543210ull);
    th_w64(t, D + 0x40, 0x8000000180000002ull);
    th_emit16(t, enc_c_lw(10, 8, 12));  /* lw x10, 12(x8) = 0xfedcba98 */
    th_emit16(t, enc_c_ld(11, 8, 8));   /* ld x11, 8(x8) */
    th_emit16(t, enc_c_sw(9, 8, 0x20)); /* sw x9, 32(x8) */
    th_emit16(t, enc_c_sd(9, 8, 0x28)); /* sd x9, 40(x8) */
    th_emit16(t, enc_c_lwsp(12, 0x40)); /* lw x12, 64(sp) */
    th_emit16(t, enc_c_ldsp(13, 0x40)); /* ld x13, 64(sp) */
    th_emit16(t, enc_c_swsp(9, 0x80));  /* sw x9, 128(sp) */
    th_emit16(t, enc_c_sdsp(9, 0x88));  /* sd x9, 136(sp) */
    t->h.x[8] = D;
    t->h.x[2] = D;
    t->h.x[9] = 0x0123456789abcdefull;
    CHECK(run_prog(t));
    CHECK_EQ(t->h.x[10], 0xfffffffffedcba98ull);
    CHECK_EQ(t->h.x[11], 0xfedcba9876543210ull);
    CHECK_EQ(th_r64(t, D + 0x20), 0x89abcdefull);
    CHECK_EQ(th_r64(t, D + 0x28), 0x0123456789abcdefull);
    CHECK_EQ(t->h.x[12], 0xffffffff80000002ull);
    CHECK_EQ(t->h.x[13], 0x8000000180000002ull);
    CHECK_EQ(th_r64(t, D + 0x80), 0x89abcdefull);
    CHECK_EQ(th_r64(t, D + 0x88), 0x0123456789abcdefull);
    th_free(t);
}

/* vessel performs misaligned accesses in hardware (no trap), inside a page ... */
TEST(cpu_misaligned_within_page)
{
    struct th *t = th_new();
    for (unsigned i = 0; i < 32; i++)
        th_w8(t, D + 0x200 + i, (uint8_t)(0xa0 + i));
    th_emit(t, I_LH(10, 6, 1));
    th_emit(t, I_LW(11, 6, 3));
    th_emit(t, I_LD(12, 6, 5));
    th_emit(t, I_LHU(13, 6, 7));
    th_emit(t, I_LWU(14, 6, 9));
    th_emit(t, I_SD(8, 6, 0x41));
    th_emit(t, I_SW(8, 6, 0x4b));
    th_emit(t, I_SH(8, 6, 0x51));
    t->h.x[6] = D + 0x200;
    t->h.x[8] = 0x0102030405060708ull;
    /* twice: the first pass fills the TLB, the second takes the fast path */
    for (int pass = 0; pass < 2; pass++) {
        memset(&t->h.x[10], 0, 5 * sizeof(t->h.x[0]));
        memset(th_ptr(t, D + 0x240), 0, 0x20);
        t->h.pc = TH_CODE;
        th_org(t, TH_CODE + 8 * 4);
        CHECK(run_prog(t));
        CHECK_EQ(t->h.x[10], 0xffffffffffffa2a1ull);
        CHECK_EQ(t->h.x[11], 0xffffffffa6a5a4a3ull);
        CHECK_EQ(t->h.x[12], 0xacabaaa9a8a7a6a5ull);
        CHECK_EQ(t->h.x[13], 0xa8a7);
        CHECK_EQ(t->h.x[14], 0xacabaaa9);
        CHECK_EQ(th_r64(t, D + 0x241), 0x0102030405060708ull);
        CHECK_EQ(th_r32(t, D + 0x24b), 0x05060708);
        CHECK_EQ(th_r16(t, D + 0x251), 0x0708);
        CHECK_EQ(th_r8(t, D + 0x240), 0);
        CHECK_EQ(th_r8(t, D + 0x249), 0);
    }
    th_free(t);
}

/* ... and across a page boundary */
TEST(cpu_misaligned_across_page)
{
    struct th *t = th_new();
    for (unsigned i = 0; i < 16; i++)
        th_w8(t, D + 0xff8 + i, (uint8_t)(0x10 + i));
    th_emit(t, I_LD(10, 6, 0));  /* D+0xffd .. D+0x1004 */
    th_emit(t, I_LW(11, 6, 1));  /* D+0xffe .. D+0x1001 */
    th_emit(t, I_LH(12, 6, 2));  /* D+0xfff .. D+0x1000 */
    th_emit(t, I_LWU(13, 6, 0)); /* D+0xffd .. D+0x1000 */
    th_emit(t, I_SD(8, 7, 0));   /* D+0x1ffb .. D+0x2002 */
    th_emit(t, I_SW(8, 20, 0));  /* D+0x2ffe .. D+0x3001 */
    th_emit(t, I_SH(8, 21, 0));  /* D+0x3fff .. D+0x4000 */
    t->h.x[6] = D + 0xffd;
    t->h.x[7] = D + 0x1ffb;
    t->h.x[20] = D + 0x2ffe;
    t->h.x[21] = D + 0x3fff;
    t->h.x[8] = 0x8182838485868788ull;
    for (int pass = 0; pass < 2; pass++) {
        memset(&t->h.x[10], 0, 4 * sizeof(t->h.x[0]));
        memset(th_ptr(t, D + 0x1ff0), 0, 0x20);
        memset(th_ptr(t, D + 0x2ff0), 0, 0x20);
        memset(th_ptr(t, D + 0x3ff0), 0, 0x20);
        t->h.pc = TH_CODE;
        th_org(t, TH_CODE + 7 * 4);
        CHECK(run_prog(t));
        CHECK_EQ(t->h.x[10], 0x1c1b1a1918171615ull);
        CHECK_EQ(t->h.x[11], 0x19181716);
        CHECK_EQ(t->h.x[12], 0x1817);
        CHECK_EQ(t->h.x[13], 0x18171615);
        CHECK_EQ(th_r64(t, D + 0x1ffb), 0x8182838485868788ull);
        CHECK_EQ(th_r32(t, D + 0x2ffe), 0x85868788);
        CHECK_EQ(th_r16(t, D + 0x3fff), 0x8788);
        CHECK_EQ(th_r8(t, D + 0x2003), 0);
        CHECK_EQ(th_r8(t, D + 0x4001), 0);
    }
    th_free(t);
}

TEST(cpu_mmio_loads_stores)
{
    struct th *t = th_new();
    for (unsigned i = 0; i < 16; i++)
        t->dev.mem[i] = (uint8_t)(0x80 + i);
    th_emit(t, I_LW(10, 6, 4));
    th_emit(t, I_LBU(11, 6, 1));
    th_emit(t, I_LD(12, 6, 8));
    th_emit(t, I_LH(13, 6, 2));
    th_emit(t, I_SW(8, 6, 0x10));
    th_emit(t, I_SD(8, 6, 0x18));
    th_emit(t, I_SB(8, 6, 0x20));
    t->h.x[6] = TH_DEV_BASE;
    t->h.x[8] = 0xdeadbeefcafef00dull;
    CHECK(run_prog(t));
    CHECK_EQ(t->h.x[10], 0xffffffff87868584ull);
    CHECK_EQ(t->h.x[11], 0x81);
    CHECK_EQ(t->h.x[12], 0x8f8e8d8c8b8a8988ull);
    CHECK_EQ(t->h.x[13], 0xffffffffffff8382ull);
    CHECK_EQ(t->dev.nreads, 4);
    CHECK_EQ(t->dev.nwrites, 3);
    uint64_t v;
    memcpy(&v, &t->dev.mem[0x10], 8);
    CHECK_EQ(v, 0xcafef00dull);
    memcpy(&v, &t->dev.mem[0x18], 8);
    CHECK_EQ(v, 0xdeadbeefcafef00dull);
    CHECK_EQ(t->dev.mem[0x20], 0x0d);
    CHECK_EQ(t->dev.mem[0x21], 0);
    CHECK_EQ(t->dev.last_size, 1);
    CHECK_EQ(t->dev.last_off, 0x20);
    th_free(t);
}

/* Run one faulting instruction at TH_CODE; returns the mcause (or ~0 if no trap). */
static uint64_t trap_of(struct th *t, uint32_t insn)
{
    th_org(t, TH_CODE);
    th_emit(t, insn);
    uint64_t end = th_emit(t, I_SELF_LOOP());
    dcache_flush(&t->h);
    t->h.pc = TH_CODE;
    t->h.priv = PRV_M;
    hart_update_mode(&t->h);
    t->h.mcause = t->h.mepc = t->h.mtval = 0x77;
    uint64_t pc = th_run_until(t, end, 10);
    if (pc != TH_MTRAP) return ~0ull;
    return t->h.mcause;
}

/* Unmapped physical addresses raise access faults, never touch the host (priv spec 3.6). */
TEST(cpu_access_faults)
{
    struct th *t = th_new();
    uint64_t c;
    t->h.x[6] = TH_UNMAPPED;
    CHECK_EQ(trap_of(t, I_LW(5, 6, 0)), EXC_LOAD_ACCESS);
    CHECK_EQ(t->h.mtval, TH_UNMAPPED);
    CHECK_EQ(t->h.mepc, TH_CODE);
    CHECK_EQ(trap_of(t, I_SD(5, 6, 8)), EXC_STORE_ACCESS);
    CHECK_EQ(t->h.mtval, TH_UNMAPPED + 8);
    /* just past the device's range */
    t->h.x[6] = TH_DEV_BASE + TH_DEV_SIZE - 8;
    CHECK_EQ(trap_of(t, I_LD(5, 6, 0)), ~0ull);
    CHECK_EQ(trap_of(t, I_LD(5, 6, 8)), EXC_LOAD_ACCESS);
    /* a load straddling the end of RAM */
    t->h.x[6] = TH_RAM_BASE + TH_RAM_SIZE - 4;
    CHECK_EQ(trap_of(t, I_LW(5, 6, 0)), ~0ull);
    CHECK_EQ(trap_of(t, I_LD(5, 6, 0)), EXC_LOAD_ACCESS);
    /* mtval: the address of the part that faulted (priv spec 3.1.16), the end of RAM */
    CHECK_EQ(t->h.mtval, TH_RAM_BASE + TH_RAM_SIZE);
    t->h.x[5] = M1;
    c = trap_of(t, I_SD(5, 6, 0)); /* misaligned or access fault (unpriv 2.6) */
    CHECK(c == EXC_STORE_ACCESS || c == EXC_STORE_MISALIGNED);
    CHECK_EQ(th_r32(t, TH_RAM_BASE + TH_RAM_SIZE - 4), 0); /* nothing written */
    /* fetch from a device or from nowhere */
    t->h.x[6] = TH_DEV_BASE;
    CHECK_EQ(trap_of(t, I_JALR(0, 6, 0)), EXC_INSN_ACCESS);
    CHECK_EQ(t->h.mepc, TH_DEV_BASE);
    CHECK_EQ(t->h.mtval, TH_DEV_BASE);
    t->h.x[6] = TH_UNMAPPED + 1; /* jalr clears bit 0 of the target */
    CHECK_EQ(trap_of(t, I_JALR(0, 6, 0)), EXC_INSN_ACCESS);
    CHECK_EQ(t->h.mepc, TH_UNMAPPED);
    CHECK_EQ(t->h.mtval, TH_UNMAPPED);
    /* misaligned MMIO: the device never sees it (misaligned or access fault both allowed) */
    t->h.x[6] = TH_DEV_BASE;
    unsigned before = t->dev.nreads;
    c = trap_of(t, I_LW(5, 6, 2));
    CHECK(c == EXC_LOAD_MISALIGNED || c == EXC_LOAD_ACCESS);
    CHECK_EQ(t->h.mtval, TH_DEV_BASE + 2);
    CHECK_EQ(t->dev.nreads, before);
    th_free(t);
}

TEST(cpu_amo_word)
{
    struct th *t = th_new();
    static const struct {
        unsigned f5;
        uint32_t want_mem;
    } c[] = {
        /* old = 0x80000010 (negative), src = 1 */
        {AMO_SWAP, 1}, {AMO_ADD, 0x80000011}, {AMO_XOR, 0x80000011},
        {AMO_AND, 0},  {AMO_OR, 0x80000011},  {AMO_MIN, 0x80000010},
        {AMO_MAX, 1},  {AMO_MINU, 1},         {AMO_MAXU, 0x80000010},
    };
    unsigned n = sizeof(c) / sizeof(c[0]);
    for (unsigned k = 0; k < n; k++) {
        th_w64(t, D + 8 * k, 0xdddddddd80000010ull);
        th_emit(t, I_AMO(c[k].f5, 0, 10 + k, 6, 7));
        th_emit(t, I_ADDI(6, 6, 8));
    }
    t->h.x[6] = D;
    t->h.x[7] = 0xffffffff00000001ull; /* only the low word is the operand */
    CHECK(run_prog(t));
    for (unsigned k = 0; k < n; k++) {
        if (t->h.x[10 + k] != 0xffffffff80000010ull ||
            th_r64(t, D + 8 * k) != (0xdddddddd00000000ull | c[k].want_mem)) {
            fprintf(stderr, "  amo.w f5=0x%x: rd 0x%llx mem 0x%llx\n", c[k].f5,
                    (unsigned long long)t->h.x[10 + k], (unsigned long long)th_r64(t, D + 8 * k));
            test_failures_in_current++;
        }
    }
    th_free(t);
}

TEST(cpu_amo_doubleword)
{
    struct th *t = th_new();
    static const struct {
        unsigned f5;
        uint64_t want_mem;
    } c[] = {
        /* old = 0x8000000000000010 (negative), src = 1 */
        {AMO_SWAP, 1},
        {AMO_ADD, 0x8000000000000011ull},
        {AMO_XOR, 0x8000000000000011ull},
        {AMO_AND, 0},
        {AMO_OR, 0x8000000000000011ull},
        {AMO_MIN, 0x8000000000000010ull},
        {AMO_MAX, 1},
        {AMO_MINU, 1},
        {AMO_MAXU, 0x8000000000000010ull},
    };
    unsigned n = sizeof(c) / sizeof(c[0]);
    for (unsigned k = 0; k < n; k++) {
        th_w64(t, D + 8 * k, 0x8000000000000010ull);
        th_emit(t, I_AMO(c[k].f5, 1, 10 + k, 6, 7));
        th_emit(t, I_ADDI(6, 6, 8));
    }
    t->h.x[6] = D;
    t->h.x[7] = 1;
    CHECK(run_prog(t));
    for (unsigned k = 0; k < n; k++) {
        if (t->h.x[10 + k] != 0x8000000000000010ull || th_r64(t, D + 8 * k) != c[k].want_mem) {
            fprintf(stderr, "  amo.d f5=0x%x: rd 0x%llx mem 0x%llx\n", c[k].f5,
                    (unsigned long long)t->h.x[10 + k], (unsigned long long)th_r64(t, D + 8 * k));
            test_failures_in_current++;
        }
    }
    th_free(t);
}

/* LR/SC (unpriv spec 14.2): success, failure without a reservation, every SC clears it. */
TEST(cpu_lr_sc)
{
    struct th *t = th_new();
    th_w64(t, D, 100);
    th_w64(t, D + 8, 0x5555555580000000ull);
    th_w64(t, D + 16, 7);
    th_emit(t, I_LR_D(10, 6));
    th_emit(t, I_SC_D(11, 21, 6)); /* succeeds (storing the same value 100) */
    th_emit(t, I_SC_D(12, 8, 6));  /* the previous SC consumed the reservation: fails */
    th_emit(t, I_LR_D(22, 6));
    th_emit(t, I_SC_D(23, 7, 6));  /* succeeds: memory = 200 */
    th_emit(t, I_SC_W(13, 8, 9));  /* no reservation at all: fails */
    th_emit(t, I_LR_W(14, 9));     /* sign-extends */
    th_emit(t, I_SC_W(15, 8, 20)); /* a different address: fails */
    th_emit(t, I_LR_W(16, 9));
    th_emit(t, I_SC_W(17, 8, 9)); /* succeeds: low word = 300 */
    t->h.x[6] = D;
    t->h.x[7] = 200;
    t->h.x[8] = 300;
    t->h.x[9] = D + 8;
    t->h.x[20] = D + 16;
    t->h.x[21] = 100;
    CHECK(run_prog(t));
    CHECK_EQ(t->h.x[10], 100);
    CHECK_EQ(t->h.x[11], 0);
    CHECK_EQ(t->h.x[12], 1);
    CHECK_EQ(t->h.x[22], 100);
    CHECK_EQ(t->h.x[23], 0);
    CHECK_EQ(t->h.x[13], 1);
    CHECK_EQ(t->h.x[14], 0xffffffff80000000ull);
    CHECK_EQ(t->h.x[15], 1);
    CHECK_EQ(t->h.x[16], 0xffffffff80000000ull);
    CHECK_EQ(t->h.x[17], 0);
    CHECK_EQ(th_r64(t, D), 200);
    CHECK_EQ(th_r64(t, D + 8), 0x555555550000012cull);
    CHECK_EQ(th_r64(t, D + 16), 7);
    th_free(t);
}

/* A trap between LR and SC clears the reservation (priv spec: xRET/trap may clear it; vessel
 * always does, so a context switch can never let a stale SC succeed). */
TEST(cpu_sc_fails_after_trap)
{
    struct th *t = th_new();
    th_w64(t, D, 5);
    th_emit(t, I_LR_D(10, 6));
    th_emit(t, I_ECALL());
    uint64_t after = th_emit(t, I_SC_D(11, 7, 6));
    t->h.x[6] = D;
    t->h.x[7] = 9;
    CHECK_EQ(th_run_until(t, 0, 10), TH_MTRAP);
    t->h.pc = after;
    CHECK(run_prog(t));
    CHECK_EQ(t->h.x[11], 1);
    CHECK_EQ(th_r64(t, D), 5);
    th_free(t);
}

TEST(cpu_atomics_misaligned_and_mmio)
{
    struct th *t = th_new();
    t->h.x[6] = D + 2;
    uint64_t c = trap_of(t, I_LR_W(5, 6));
    CHECK(c == EXC_LOAD_MISALIGNED || c == EXC_LOAD_ACCESS);
    CHECK_EQ(t->h.mtval, D + 2);
    c = trap_of(t, I_AMO(AMO_ADD, 1, 5, 6, 7));
    CHECK(c == EXC_STORE_MISALIGNED || c == EXC_STORE_ACCESS);
    CHECK_EQ(t->h.mtval, D + 2);
    c = trap_of(t, I_SC_D(5, 7, 6));
    CHECK(c == EXC_STORE_MISALIGNED || c == EXC_STORE_ACCESS);
    /* no atomics on device memory (PMA): access fault */
    t->h.x[6] = TH_DEV_BASE;
    CHECK_EQ(trap_of(t, I_AMO(AMO_SWAP, 0, 5, 6, 7)), EXC_STORE_ACCESS);
    CHECK_EQ(trap_of(t, I_LR_D(5, 6)), EXC_LOAD_ACCESS);
    CHECK_EQ(t->dev.nwrites, 0);
    th_free(t);
}

/* x0 is hard-wired to zero, yet instructions with rd = x0 keep their side effects. */
TEST(cpu_x0_stays_zero)
{
    struct th *t = th_new();
    th_w64(t, D, 40);
    th_emit(t, I_ADDI(0, 0, 5));
    th_emit(t, I_LUI(0, 0x12345000));
    th_emit(t, I_LW(0, 6, 0));
    th_emit(t, I_AMO(AMO_ADD, 1, 0, 6, 7)); /* memory += 2 */
    th_emit(t, I_LR_D(0, 6));
    th_emit(t, I_SC_D(10, 7, 6)); /* the LR with rd = x0 made the reservation */
    th_emit(t, I_CSRRS(0, CSR_MSCRATCH_N, 0));
    th_emit(t, I_JAL(0, 4));
    th_emit16(t, C_LI(0, 7));
    th_emit16(t, C_MV(0, 7));
    th_emit(t, I_ADD(11, 0, 0));
    t->h.x[6] = D;
    t->h.x[7] = 2;
    CHECK(run_prog(t));
    CHECK_EQ(t->h.x[0], 0);
    CHECK_EQ(t->h.x[11], 0);
    CHECK_EQ(t->h.x[10], 0);
    CHECK_EQ(th_r64(t, D), 2);
    th_free(t);
}

/* 32-bit instructions at page offset 0xffe: the upper half is on the next page. */
TEST(cpu_insn_straddling_page)
{
    struct th *t = th_new();
    uint64_t p1 = TH_CODE + 0x1000, p2 = TH_CODE + 0x2000, p3 = TH_CODE + 0x3000,
             p4 = TH_CODE + 0x4000, p5 = TH_CODE + 0x5000, p6 = TH_CODE + 0x6000;
    th_w64(t, D, 0x1122334455667788ull);
    th_emit(t, I_JAL(0, (int32_t)(p1 - 8 - TH_CODE)));
    th_org(t, p1 - 8);
    th_emit(t, I_ADDI(5, 0, 1));
    th_emit16(t, C_NOP());
    th_emit(t, I_ADDI(6, 5, 41)); /* at p1 - 2 */
    th_emit(t, I_JAL(0, (int32_t)(p2 - 2 - (p1 + 2))));
    th_org(t, p2 - 2);
    uint64_t auipc_pc = th_emit(t, I_AUIPC(10, 0));
    th_emit(t, I_JAL(0, (int32_t)(p3 - 2 - (p2 + 2))));
    th_org(t, p3 - 2);
    uint64_t jal_pc = th_emit(t, I_JAL(1, 8)); /* link = p3 + 2, target p3 + 6 */
    th_emit16(t, 0);
    th_emit16(t, 0);
    th_emit(t, I_JAL(0, (int32_t)(p4 - 2 - (p3 + 6))));
    th_org(t, p4 - 2);
    th_emit(t, I_BNE(0, 0, 100)); /* not taken: continues at p4 + 2 */
    th_emit(t, I_JAL(0, (int32_t)(p5 - 2 - (p4 + 2))));
    th_org(t, p5 - 2);
    th_emit(t, I_CSRRW(12, CSR_MSCRATCH_N, 13)); /* leaves hart_exec; resumes at p5 + 2 */
    th_emit(t, I_JAL(0, (int32_t)(p6 - 2 - (p5 + 2))));
    th_org(t, p6 - 2);
    th_emit(t, I_LD(14, 15, 0));
    th_emit16(t, C_ADDI(14, 1)); /* compressed right after the straddle */
    t->h.x[13] = 0x55;
    t->h.x[15] = D;
    t->h.mscratch = 0x66;
    CHECK(run_prog(t));
    CHECK_EQ(t->h.x[6], 42);
    CHECK_EQ(t->h.x[10], auipc_pc);
    CHECK_EQ(t->h.x[1], jal_pc + 4);
    CHECK_EQ(t->h.x[12], 0x66);
    CHECK_EQ(t->h.mscratch, 0x55);
    CHECK_EQ(t->h.x[14], 0x1122334455667789ull);
    th_free(t);
}

TEST(cpu_illegal_straddling_page)
{
    struct th *t = th_new();
    uint64_t at = TH_CODE + 0xffe;
    th_emit(t, I_JAL(0, (int32_t)(at - TH_CODE)));
    th_org(t, at);
    th_emit(t, 0x0000000bu); /* custom-0: illegal */
    CHECK_EQ(th_run_until(t, 0, 10), TH_MTRAP);
    CHECK_EQ(t->h.mcause, EXC_ILLEGAL_INSN);
    CHECK_EQ(t->h.mepc, at);
    CHECK_EQ(t->h.mtval, 0x0000000b);
    th_free(t);
}

/* Issue 8, item 2: a slot decoded from bytes that differ from those the page entered the cache
 * with must not survive a fence.i once the bytes are changed back. Patch an instruction, run it
 * before any fence.i, patch it back, fence.i: the original must run. (With a hash of the page
 * taken at entry and slots decoded from live memory, the patched version ran forever.) */
TEST(cpu_fence_i_patch_run_unpatch)
{
    struct th *t = th_new();
    th_emit(t, I_ADDI(5, 5, 1));
    uint64_t p1 = th_emit(t, I_SELF_LOOP());
    uint64_t p2 = th_emit(t, I_ADDI(7, 7, 1)); /* not executed yet: its slot is undecoded */
    uint64_t p3 = th_emit(t, I_SELF_LOOP());
    CHECK_EQ(th_run_until(t, p1, 10), p1); /* the page enters the decode cache */
    th_w32(t, p2, I_ADDI(7, 7, 100));      /* patched by a store, no fence.i */
    t->h.pc = p2;
    CHECK_EQ(th_run_until(t, p3, 10), p3);
    /* without a fence.i either version may run (Zifencei) */
    CHECK(t->h.x[7] == 1 || t->h.x[7] == 100);
    th_w32(t, p2, I_ADDI(7, 7, 1)); /* patched back */
    dcache_flush(&t->h);            /* fence.i */
    t->h.x[7] = 0;
    t->h.pc = p2;
    CHECK_EQ(th_run_until(t, p3, 10), p3);
    CHECK_EQ(t->h.x[7], 1);
    /* and the forward direction: patched, fence.i, the new version runs */
    th_w32(t, p2, I_ADDI(7, 7, 100));
    dcache_flush(&t->h);
    t->h.x[7] = 0;
    t->h.pc = p2;
    CHECK_EQ(th_run_until(t, p3, 10), p3);
    CHECK_EQ(t->h.x[7], 100);
    /* a compressed pair replacing a 32-bit instruction, changed back between two fence.i's */
    th_w32(t, p2, (uint32_t)C_LI(7, 3) | ((uint32_t)C_ADDI(7, 4) << 16));
    dcache_flush(&t->h);
    t->h.pc = p2;
    CHECK_EQ(th_run_until(t, p3, 10), p3);
    CHECK_EQ(t->h.x[7], 7);
    th_w32(t, p2, I_ADDI(7, 7, 1));
    dcache_flush(&t->h);
    t->h.x[7] = 0;
    t->h.pc = p2;
    CHECK_EQ(th_run_until(t, p3, 10), p3);
    CHECK_EQ(t->h.x[7], 1);
    th_free(t);
}

/* Code patched by a store runs in its new form after fence.i (Zifencei). */
TEST(cpu_self_modifying_code_fence_i)
{
    struct th *t = th_new();
    uint64_t l = TH_CODE + 0x100;
    th_emit(t, I_JAL(1, (int32_t)(l - th_here(t))));
    th_emit(t, I_ADD(8, 5, 0));
    th_emit(t, I_SW(7, 6, 0));
    th_emit(t, I_FENCE_I());
    th_emit(t, I_JAL(1, (int32_t)(l - th_here(t))));
    th_emit(t, I_ADD(9, 5, 0));
    /* now replace the 32-bit instruction by two 16-bit ones */
    th_emit(t, I_SW(20, 6, 0));
    th_emit(t, I_FENCE_I());
    th_emit(t, I_JAL(1, (int32_t)(l - th_here(t))));
    uint64_t end_at = th_here(t);
    th_org(t, l);
    th_emit(t, I_ADDI(5, 0, 1));
    th_emit(t, I_JALR(0, 1, 0));
    th_org(t, end_at);
    t->h.x[6] = l;
    t->h.x[7] = I_ADDI(5, 0, 2);
    t->h.x[20] = (uint32_t)C_LI(5, 3) | ((uint32_t)C_ADDI(5, 4) << 16);
    CHECK(run_prog(t));
    CHECK_EQ(t->h.x[8], 1);
    CHECK_EQ(t->h.x[9], 2);
    CHECK_EQ(t->h.x[5], 7);
    th_free(t);
}

/* ---- traps raised by instructions (priv spec 3.1.15 mcause, 3.1.16 mtval) ---- */

TEST(cpu_ecall_ebreak_illegal)
{
    struct th *t = th_new();
    CHECK_EQ(trap_of(t, I_ECALL()), EXC_ECALL_M);
    CHECK_EQ(t->h.mtval, 0);
    CHECK_EQ(t->h.mepc, TH_CODE);
    CHECK_EQ(trap_of(t, I_EBREAK()), EXC_BREAKPOINT);
    CHECK(t->h.mtval == TH_CODE || t->h.mtval == 0);
    CHECK_EQ(trap_of(t, 0xffffffffu), EXC_ILLEGAL_INSN);
    CHECK_EQ(t->h.mtval, 0xffffffffu);
    CHECK_EQ(trap_of(t, 0x047302b3u), EXC_ILLEGAL_INSN); /* unknown funct7 */
    CHECK_EQ(t->h.mtval, 0x047302b3u);
    /* a 16-bit illegal instruction reports its 16 bits */
    CHECK_EQ(trap_of(t, 0x12340000u), EXC_ILLEGAL_INSN);
    CHECK_EQ(t->h.mtval, 0);
    CHECK_EQ(trap_of(t, 0x00008002u), EXC_ILLEGAL_INSN); /* c.jr x0 */
    CHECK_EQ(t->h.mtval, 0x8002);
    /* a CSR instruction that is illegal reports its encoding */
    uint32_t w = I_CSRRW(0, CSR_MHARTID_N, 5);
    CHECK_EQ(trap_of(t, w), EXC_ILLEGAL_INSN);
    CHECK_EQ(t->h.mtval, w);
    w = I_CSRRS(7, 0x7ff, 0); /* unimplemented CSR */
    CHECK_EQ(trap_of(t, w), EXC_ILLEGAL_INSN);
    CHECK_EQ(t->h.mtval, w);
    CHECK_EQ(t->h.x[7], 0);
    /* the trap saved the previous state */
    CHECK_EQ(t->h.priv, PRV_M);
    CHECK_EQ((t->h.mstatus & MSTATUS_MPP) >> 11, PRV_M);
    th_free(t);
}

/* Privileged instructions from lower modes (priv spec 3.3.2, 3.1.6.5 TVM/TW/TSR). */
TEST(cpu_privileged_insns_by_mode)
{
    struct th *t = th_new();
    struct pc {
        uint32_t insn;
        unsigned priv;
        uint64_t mstatus;
        uint64_t want; /* ~0: no trap */
    };
    const struct pc c[] = {
        {I_MRET(), PRV_S, 0, EXC_ILLEGAL_INSN},
        {I_SRET(), PRV_U, 0, EXC_ILLEGAL_INSN},
        {I_SRET(), PRV_S, MSTATUS_TSR, EXC_ILLEGAL_INSN},
        {I_WFI(), PRV_U, 0, EXC_ILLEGAL_INSN},
        {I_WFI(), PRV_S, MSTATUS_TW, EXC_ILLEGAL_INSN},
        {I_WFI(), PRV_S, 0, ~0ull},
        {I_SFENCE_VMA(0, 0), PRV_U, 0, EXC_ILLEGAL_INSN},
        {I_SFENCE_VMA(0, 0), PRV_S, MSTATUS_TVM, EXC_ILLEGAL_INSN},
        {I_SFENCE_VMA(0, 0), PRV_S, 0, ~0ull},
        {I_CSRRS(5, CSR_SATP_N, 0), PRV_S, MSTATUS_TVM, EXC_ILLEGAL_INSN},
        {I_CSRRS(5, CSR_SATP_N, 0), PRV_S, 0, ~0ull},
        {I_ECALL(), PRV_S, 0, EXC_ECALL_S},
        {I_ECALL(), PRV_U, 0, EXC_ECALL_U},
    };
    th_pmp_allow_all(t);
    for (unsigned k = 0; k < sizeof(c) / sizeof(c[0]); k++) {
        th_org(t, TH_CODE);
        th_emit(t, c[k].insn);
        uint64_t end = th_emit(t, I_SELF_LOOP());
        dcache_flush(&t->h);
        t->h.mstatus = c[k].mstatus;
        t->h.pc = TH_CODE;
        th_set_priv(t, c[k].priv);
        t->h.mcause = 0x77;
        uint64_t pc = th_run_until(t, end, 10);
        uint64_t got = pc == TH_MTRAP ? t->h.mcause : pc == end ? ~0ull : 0x99;
        if (got != c[k].want) {
            fprintf(stderr, "  insn 0x%08x priv %u mstatus 0x%llx: got 0x%llx want 0x%llx\n",
                    c[k].insn, c[k].priv, (unsigned long long)c[k].mstatus, (unsigned long long)got,
                    (unsigned long long)c[k].want);
            test_failures_in_current++;
        }
        if (c[k].want == EXC_ILLEGAL_INSN) CHECK_EQ(t->h.mtval, c[k].insn);
        if (got != ~0ull) CHECK_EQ((t->h.mstatus & MSTATUS_MPP) >> 11, c[k].priv);
        t->h.wfi = false;
    }
    th_free(t);
}

TEST(cpu_wfi_returns)
{
    struct th *t = th_new();
    uint64_t w = th_emit(t, I_WFI());
    th_emit(t, I_SELF_LOOP());
    hart_exec(&t->h, 100);
    CHECK(t->h.wfi);
    CHECK_EQ(t->h.pc, w + 4);
    th_free(t);
}

/* mret into S-mode and sret into U-mode as instructions; ecalls come back to M. */
TEST(cpu_mret_sret_execute)
{
    struct th *t = th_new();
    th_pmp_allow_all(t);
    uint64_t s_code = TH_CODE + 0x400, u_code = TH_CODE + 0x800;
    th_emit(t, I_MRET());
    th_org(t, s_code);
    th_emit(t, I_ADDI(5, 0, 1));
    th_emit(t, I_SRET());
    th_org(t, u_code);
    th_emit(t, I_ADDI(6, 0, 2));
    th_emit(t, I_ECALL());
    t->h.mepc = s_code;
    t->h.sepc = u_code;
    t->h.mstatus = (1ull << 11) | MSTATUS_MPIE; /* MPP = S */
    CHECK_EQ(th_run_until(t, 0, 20), TH_MTRAP);
    CHECK_EQ(t->h.x[5], 1);
    CHECK_EQ(t->h.x[6], 2);
    CHECK_EQ(t->h.mcause, EXC_ECALL_U);
    CHECK_EQ(t->h.mepc, u_code + 4);
    CHECK_EQ(t->h.priv, PRV_M);
    th_free(t);
}

/* minstret read by an instruction counts exactly the instructions retired before it. */
TEST(cpu_instret_exact)
{
    struct th *t = th_new();
    th_emit(t, I_ADDI(5, 5, 1));
    th_emit(t, I_ADDI(5, 5, 1));
    th_emit(t, I_ADDI(5, 5, 1));
    th_emit(t, I_CSRRS(6, CSR_MINSTRET_N, 0));
    th_emit(t, I_CSRRS(7, CSR_INSTRET_N, 0));
    th_emit(t, I_CSRRS(8, CSR_CYCLE_N, 0));
    /* a counted loop (in-page backward branch) and a cross-page jump and back */
    th_emit(t, I_ADDI(11, 0, 10));
    uint64_t loop = th_emit(t, I_ADDI(12, 12, 1));
    th_emit(t, I_ADDI(11, 11, -1));
    th_emit(t, I_BNE(11, 0, (int32_t)(loop - th_here(t))));
    uint64_t j = th_emit(t, I_JAL(1, 0x1000));
    th_emit(t, I_CSRRS(9, CSR_MINSTRET_N, 0));
    th_org(t, j + 0x1000);
    th_emit(t, I_JALR(0, 1, 0));
    th_org(t, j + 8);
    CHECK(run_prog(t));
    CHECK_EQ(t->h.x[6], 3);
    CHECK_EQ(t->h.x[7], 4);
    CHECK(t->h.x[8] >= 5);
    CHECK_EQ(t->h.x[12], 10);
    CHECK_EQ(t->h.x[9], 6 + 1 + 30 + 2);
    th_free(t);
}

TEST(cpu_budget_bounds_hart_exec)
{
    struct th *t = th_new();
    uint64_t loop = th_emit(t, I_ADDI(5, 5, 1));
    th_emit(t, I_JAL(0, -4));
    hart_exec(&t->h, 10);
    CHECK(t->h.x[5] >= 5 && t->h.x[5] <= 20);
    CHECK(t->h.pc == loop || t->h.pc == loop + 4);
    uint64_t before = t->h.x[5];
    hart_exec(&t->h, 10);
    CHECK(t->h.x[5] > before);
    th_free(t);
}

/* F/D loads and stores need mstatus.FS != Off and make it Dirty (unpriv ch. "F", priv 3.1.6.6) */
TEST(cpu_fp_load_store)
{
    struct th *t = th_new();
    th_w64(t, D, 0x400921fb54442d18ull);
    th_w32(t, D + 8, 0x3f800000u);
    t->h.x[6] = D;
    t->h.mstatus = 0;
    CHECK_EQ(trap_of(t, I_FLD(1, 6, 0)), EXC_ILLEGAL_INSN);
    CHECK_EQ(trap_of(t, I_FSD(1, 6, 16)), EXC_ILLEGAL_INSN);
    CHECK_EQ(trap_of(t, 0x023170d3u), EXC_ILLEGAL_INSN); /* fadd.d with FS=Off */
    t->h.mstatus = 1ull << 13;                           /* FS = Initial */
    th_org(t, TH_CODE);
    th_emit(t, I_FLD(1, 6, 0));
    th_emit(t, I_FLW(2, 6, 8));
    th_emit(t, I_FSD(1, 6, 16));
    th_emit(t, I_FSW(2, 6, 24));
    dcache_flush(&t->h);
    t->h.pc = TH_CODE;
    CHECK(run_prog(t));
    CHECK_EQ(t->h.fp.f[1], 0x400921fb54442d18ull);
    CHECK_EQ(t->h.fp.f[2], 0xffffffff3f800000ull); /* NaN-boxed */
    CHECK_EQ(th_r64(t, D + 16), 0x400921fb54442d18ull);
    CHECK_EQ(th_r64(t, D + 24), 0x3f800000u);
    CHECK_EQ(t->h.mstatus & MSTATUS_FS, FS_DIRTY);
    th_free(t);
}

TEST(cpu_fp_compressed_load_store)
{
    struct th *t = th_new();
    th_w64(t, D + 0x10, 0x3ff0000000000000ull);
    th_w64(t, D + 0x40, 0x4000000000000000ull);
    th_emit16(t, enc_c_fld(9, 8, 0x10)); /* fld f9, 16(x8) */
    th_emit16(t, enc_c_fsd(9, 8, 0x18)); /* fsd f9, 24(x8) */
    th_emit16(t, enc_c_fldsp(20, 0x40)); /* fld f20, 64(sp) */
    th_emit16(t, enc_c_fsdsp(20, 0x48)); /* fsd f20, 72(sp) */
    t->h.x[8] = D;
    t->h.x[2] = D;
    t->h.mstatus = 1ull << 13;
    CHECK(run_prog(t));
    CHECK_EQ(t->h.fp.f[9], 0x3ff0000000000000ull);
    CHECK_EQ(th_r64(t, D + 0x18), 0x3ff0000000000000ull);
    CHECK_EQ(t->h.fp.f[20], 0x4000000000000000ull);
    CHECK_EQ(th_r64(t, D + 0x48), 0x4000000000000000ull);
    CHECK_EQ(t->h.mstatus & MSTATUS_FS, FS_DIRTY);
    /* FS = Off: illegal, with the 16-bit encoding or 0 in mtval */
    t->h.mstatus = 0;
    CHECK_EQ(trap_of(t, enc_c_fld(9, 8, 0x10)), EXC_ILLEGAL_INSN);
    CHECK(t->h.mtval == enc_c_fld(9, 8, 0x10) || t->h.mtval == 0);
    th_free(t);
}

/* Jumps and branches whose target is on another page, from 16-bit instructions and from a
 * 32-bit instruction straddling two pages. */
TEST(cpu_branches_across_pages)
{
    struct th *t = th_new();
    uint64_t p = TH_CODE + 0x3000, q = TH_CODE + 0x5000;
    t->h.pc = p - 8;
    th_org(t, p - 8);
    th_emit16(t, (uint16_t)enc_c_j(0x10)); /* p-8 -> p+8 */
    th_emit16(t, 0);
    th_emit(t, I_JAL(0, (int32_t)(q - 2 - (p - 4)))); /* p-4 -> q-2 */
    th_org(t, p + 8);
    th_emit16(t, C_BNEZ(9, -12)); /* p+8 -> p-4 */
    th_emit16(t, 0);
    th_org(t, q - 2);
    th_emit(t, I_BEQ(0, 0, 8)); /* straddles, taken: q+6 */
    th_emit(t, 0);
    th_emit(t, I_ADDI(5, 0, 1));     /* q+6 */
    th_emit(t, I_BNE(0, 0, -0x800)); /* not taken */
    t->h.x[9] = 1;
    CHECK(run_prog(t));
    CHECK_EQ(t->h.x[5], 1);
    th_free(t);
}

/* A guest whose trap handler itself faults at the same pc forever is stopped with a message
 * (hart.c), instead of spinning the host thread. */
TEST(cpu_exception_loop_detector)
{
    struct th *t = th_new();
    th_w32(t, TH_MTRAP, 0); /* the trap vector holds an illegal instruction */
    t->h.pc = TH_MTRAP;
    int n;
    for (n = 0; n < 2000000 && !t->h.fatal_msg[0]; n++) {
        hart_exec(&t->h, 16);
        if (n == 1000) CHECK_EQ(t->h.fatal_msg[0], 0); /* not after a few repeats */
    }
    CHECK(t->h.fatal_msg[0] != 0);
    CHECK(atomic_load(&t->h.stop) != 0);
    CHECK(n > 1000 && n < 2000000);
    CHECK(strstr(t->h.fatal_msg, "0x80008000") != NULL);
    th_free(t);
}

/* The same pc trapping over and over is not a loop while instructions retire in between. */
TEST(cpu_exception_loop_needs_no_progress)
{
    struct th *t = th_new();
    t->h.pc = TH_CODE;
    for (int n = 0; n < 300000; n++) {
        t->h.pc = TH_CODE;
        t->h.instret++;
        hart_raise_exception(&t->h, EXC_ILLEGAL_INSN, 0);
    }
    CHECK_EQ(t->h.fatal_msg[0], 0);
    CHECK_EQ(t->h.pc, TH_MTRAP);
    /* without progress it is detected */
    int n;
    for (n = 0; n < 2000000 && !t->h.fatal_msg[0]; n++) {
        t->h.pc = TH_CODE;
        hart_raise_exception(&t->h, EXC_ILLEGAL_INSN, 0);
    }
    CHECK(t->h.fatal_msg[0] != 0);
    th_free(t);
}

/* ---- Sdtrig mcontrol6 triggers (debug spec 1.0, 5.5 matching, 5.7.17 mcontrol6) ---- */
#define TR_SELECT  0x7a0
#define TR_TDATA1  0x7a1
#define TR_TDATA2  0x7a2
#define MC6_(bits) ((6ull << 60) | (bits))
#define MC6_HIT    (1ull << 22)
#define MC6_M      (1ull << 6)
#define MC6_S      (1ull << 4)
#define MC6_U      (1ull << 3)
#define MC6_X      (1ull << 2)
#define MC6_ST     (1ull << 1)
#define MC6_LD     (1ull << 0)
#define MC6_NAPOT  (1ull << 7)
#define MC6_GE     (2ull << 7)
#define MC6_LT     (3ull << 7)

static void trig_arm(struct th *t, unsigned idx, uint64_t tdata1, uint64_t tdata2)
{
    th_csrw(t, TR_SELECT, idx);
    th_csrw(t, TR_TDATA2, tdata2);
    th_csrw(t, TR_TDATA1, tdata1);
}

/* One instruction in M-mode with mstatus.MIE=1 (M-mode triggers with action 0 are held off
 * while MIE=0: 5.4); the trap cause or ~0 when it ran to the end. */
static uint64_t trig_trap_of(struct th *t, uint32_t insn)
{
    t->h.mstatus |= MSTATUS_MIE;
    return trap_of(t, insn);
}

/* Execute triggers fire before the instruction: epc = tval = its address, nothing of it
 * retired, and only at the exact pc (a slot with the same page offset elsewhere runs). */
TEST(cpu_trigger_execute)
{
    struct th *t = th_new();
    th_emit(t, I_ADDI(5, 0, 1));
    uint64_t second = th_emit(t, I_ADDI(5, 5, 1));
    uint64_t end = th_emit(t, I_SELF_LOOP());
    trig_arm(t, 0, MC6_(MC6_M | MC6_X), second);
    t->h.mstatus |= MSTATUS_MIE;
    uint64_t ir = t->h.instret;
    CHECK_EQ(th_run_until(t, end, 10), TH_MTRAP);
    CHECK_EQ(t->h.mcause, EXC_BREAKPOINT);
    CHECK_EQ(t->h.mepc, second);
    CHECK_EQ(t->h.mtval, second);
    CHECK_EQ(t->h.x[5], 1);
    CHECK_EQ(t->h.instret - ir, 1); /* the first addi only */
    th_csrw(t, TR_SELECT, 0);
    CHECK(th_csrr(t, TR_TDATA1) & MC6_HIT);
    /* mstatus.MIE = 0 in M-mode: held off (no recursion in the handler) */
    t->h.pc = TH_CODE;
    t->h.mstatus &= ~MSTATUS_MIE;
    CHECK_EQ(th_run_until(t, end, 10), end);
    CHECK_EQ(t->h.x[5], 2);
    /* disarmed (type 0 written): runs through */
    th_csrw(t, TR_TDATA1, 0);
    t->h.pc = TH_CODE;
    t->h.mstatus |= MSTATUS_MIE;
    CHECK_EQ(th_run_until(t, end, 10), end);
    CHECK_EQ(t->h.x[5], 2);
    th_free(t);
}

/* Slots planted with the trigger check whose pc does not match still run their instruction:
 * a compressed one, a jal, a branch, an auipc (pc-relative) and a load. */
TEST(cpu_trigger_execute_non_matching_slots)
{
    struct th *t = th_new();
    th_emit(t, I_ADDI(5, 0, 0));              /* +0 */
    th_emit16(t, 0x0285);                     /* +4 c.addi x5, 1 */
    th_emit(t, I_JAL(0, 8));                  /* +6 skip the next */
    th_emit(t, I_ADDI(5, 5, 100));            /* +10 skipped */
    th_emit(t, I_ADDI(5, 5, 10));             /* +14 */
    th_emit(t, I_BEQ(0, 0, 8));               /* +18 taken */
    th_emit(t, I_ADDI(5, 5, 100));            /* +22 skipped */
    th_emit(t, I_AUIPC(7, 0));                /* +26 x7 = its pc */
    th_emit(t, I_LD(8, 6, 0));                /* +30 */
    uint64_t end = th_emit(t, I_SELF_LOOP()); /* +34 */
    th_w64(t, D, 0x1234);
    t->h.x[6] = D;
    static const unsigned offs[] = {4, 6, 18, 26, 30};
    for (unsigned k = 0; k < 4; k++) /* same page offsets, another page */
        trig_arm(t, k, MC6_(MC6_M | MC6_S | MC6_U | MC6_X), 0x90000000ull + offs[k]);
    t->h.mstatus |= MSTATUS_MIE;
    CHECK_EQ(th_run_until(t, end, 20), end);
    CHECK_EQ(t->h.x[5], 11);
    CHECK_EQ(t->h.x[7], TH_CODE + 26);
    CHECK_EQ(t->h.x[8], 0x1234);
    /* now one matches: the compressed instruction */
    trig_arm(t, 0, MC6_(MC6_M | MC6_X), TH_CODE + 4);
    t->h.pc = TH_CODE;
    CHECK_EQ(th_run_until(t, end, 20), TH_MTRAP);
    CHECK_EQ(t->h.mepc, TH_CODE + 4);
    CHECK_EQ(t->h.x[5], 0);
    /* a napot range over the jal and the skipped addi (+8..+15): fires at the jal (+6 is
     * below it), then at +14 once the jal is out of range */
    trig_arm(t, 0, MC6_(MC6_M | MC6_X | MC6_NAPOT), TH_CODE + 8 + 3);
    t->h.pc = TH_CODE;
    t->h.mstatus |= MSTATUS_MIE;
    CHECK_EQ(th_run_until(t, end, 20), TH_MTRAP);
    CHECK_EQ(t->h.mepc, TH_CODE + 14);
    CHECK_EQ(t->h.x[5], 1);
    th_free(t);
}

/* The m/s/u bits select the modes a trigger fires in; in S-mode with breakpoints delegated,
 * sstatus.SIE = 0 holds action-0 triggers off (5.4). */
TEST(cpu_trigger_privilege_filter)
{
    struct th *t = th_new();
    th_emit(t, I_ADDI(5, 0, 1));
    uint64_t end = th_emit(t, I_SELF_LOOP());
    th_csrw(t, CSR_PMPADDR0_N, ~0ull >> 10); /* S and U may run everywhere */
    th_csrw(t, CSR_PMPCFG0_N, 0x1f);
    struct {
        unsigned priv;
        uint64_t bits;
        bool fires;
    } c[] = {
        {PRV_U, MC6_U, true},          {PRV_U, MC6_S | MC6_M, false}, {PRV_S, MC6_S, true},
        {PRV_S, MC6_U | MC6_M, false}, {PRV_M, MC6_M, true},          {PRV_M, MC6_U | MC6_S, false},
    };
    for (unsigned k = 0; k < sizeof(c) / sizeof(c[0]); k++) {
        trig_arm(t, 0, MC6_(c[k].bits | MC6_X), TH_CODE);
        t->h.pc = TH_CODE;
        t->h.mstatus |= MSTATUS_MIE;
        th_set_priv(t, c[k].priv);
        uint64_t pc = th_run_until(t, end, 10);
        if ((pc == TH_MTRAP) != c[k].fires)
            fprintf(stderr, "  case %u: priv %u bits 0x%llx -> pc 0x%llx\n", k, c[k].priv,
                    (unsigned long long)c[k].bits, (unsigned long long)pc);
        CHECK_EQ(pc == TH_MTRAP, c[k].fires);
        th_set_priv(t, PRV_M);
    }
    /* delegated to S: fires into S with SIE=1, held off with SIE=0 */
    t->h.medeleg = 1u << EXC_BREAKPOINT;
    trig_arm(t, 0, MC6_(MC6_S | MC6_X), TH_CODE);
    t->h.pc = TH_CODE;
    t->h.mstatus |= MSTATUS_SIE;
    th_set_priv(t, PRV_S);
    CHECK_EQ(th_run_until(t, end, 10), TH_STRAP);
    CHECK_EQ(t->h.scause, EXC_BREAKPOINT);
    CHECK_EQ(t->h.sepc, TH_CODE);
    CHECK_EQ(t->h.stval, TH_CODE);
    t->h.pc = TH_CODE;
    t->h.mstatus &= ~MSTATUS_SIE;
    th_set_priv(t, PRV_S);
    CHECK_EQ(th_run_until(t, end, 10), end);
    th_set_priv(t, PRV_M);
    th_free(t);
}

/* Load and store triggers: before the access (the register or memory is unchanged), tval =
 * the first accessed byte that matched, partial overlaps match, the TLB cached before the
 * trigger was armed does not hide it. */
TEST(cpu_trigger_load_store)
{
    struct th *t = th_new();
    th_w64(t, D + 8, 0x1111111111111111ull);
    t->h.x[6] = D;
    t->h.x[5] = 0x77;
    t->h.x[7] = 0x2222222222222222ull;
    CHECK_EQ(trig_trap_of(t, I_LD(5, 6, 8)), ~0ull); /* fills the TLB */
    CHECK_EQ(t->h.x[5], 0x1111111111111111ull);
    trig_arm(t, 0, MC6_(MC6_M | MC6_LD), D + 8);
    t->h.x[5] = 0x77;
    CHECK_EQ(trig_trap_of(t, I_LD(5, 6, 8)), EXC_BREAKPOINT);
    CHECK_EQ(t->h.mtval, D + 8);
    CHECK_EQ(t->h.mepc, TH_CODE);
    CHECK_EQ(t->h.x[5], 0x77);
    /* a misaligned load over it, one that ends on it, one just past it */
    CHECK_EQ(trig_trap_of(t, I_LD(5, 6, 4)), EXC_BREAKPOINT);
    CHECK_EQ(t->h.mtval, D + 8);
    CHECK_EQ(trig_trap_of(t, I_LW(5, 6, 5)), EXC_BREAKPOINT);
    CHECK_EQ(t->h.mtval, D + 8);
    CHECK_EQ(trig_trap_of(t, I_LW(5, 6, 4)), ~0ull);
    CHECK_EQ(trig_trap_of(t, I_LB(5, 6, 9)), ~0ull);
    /* a load trigger ignores stores */
    CHECK_EQ(trig_trap_of(t, I_SD(7, 6, 8)), ~0ull);
    CHECK_EQ(th_r64(t, D + 8), 0x2222222222222222ull);
    /* a store trigger over 8 bytes (napot): the store is not performed */
    trig_arm(t, 0, MC6_(MC6_M | MC6_ST | MC6_NAPOT), D + 0x10 + 3);
    t->h.x[7] = 0x3333333333333333ull;
    CHECK_EQ(trig_trap_of(t, I_SB(7, 6, 0x17)), EXC_BREAKPOINT);
    CHECK_EQ(t->h.mtval, D + 0x17);
    CHECK_EQ(th_r8(t, D + 0x17), 0);
    CHECK_EQ(trig_trap_of(t, I_SD(7, 6, 0xc)), EXC_BREAKPOINT); /* overlaps 0x10..0x13 */
    CHECK_EQ(t->h.mtval, D + 0x10);
    CHECK_EQ(th_r64(t, D + 0x8), 0x2222222222222222ull);
    CHECK_EQ(th_r32(t, D + 0x10), 0);
    CHECK_EQ(trig_trap_of(t, I_SB(7, 6, 0x18)), ~0ull);
    CHECK_EQ(trig_trap_of(t, I_LD(5, 6, 0x10)), ~0ull);
    /* ge / lt */
    trig_arm(t, 0, MC6_(MC6_M | MC6_ST | MC6_GE), D + 0x800);
    CHECK_EQ(trig_trap_of(t, I_SD(7, 6, 0x7f8)), ~0ull);
    CHECK_EQ(trig_trap_of(t, I_SD(7, 6, 0x7fc)), EXC_BREAKPOINT);
    CHECK_EQ(t->h.mtval, D + 0x800);
    trig_arm(t, 0, MC6_(MC6_M | MC6_LD | MC6_LT), D + 0x100);
    CHECK_EQ(trig_trap_of(t, I_LD(5, 6, 0x100)), ~0ull);
    CHECK_EQ(trig_trap_of(t, I_LD(5, 6, 0xfc)), EXC_BREAKPOINT);
    CHECK_EQ(t->h.mtval, D + 0xfc);
    /* in U only: an M-mode load does not fire */
    trig_arm(t, 0, MC6_(MC6_U | MC6_LD), D + 8);
    CHECK_EQ(trig_trap_of(t, I_LD(5, 6, 8)), ~0ull);
    th_free(t);
}

/* A store crossing into the next page whose second part is watched: nothing is written. */
TEST(cpu_trigger_store_across_page)
{
    struct th *t = th_new();
    t->h.x[6] = D + 0xffc;
    t->h.x[7] = ~0ull;
    trig_arm(t, 1, MC6_(MC6_M | MC6_ST), D + 0x1002);
    CHECK_EQ(trig_trap_of(t, I_SD(7, 6, 0)), EXC_BREAKPOINT);
    CHECK_EQ(t->h.mtval, D + 0x1002);
    CHECK_EQ(th_r32(t, D + 0xffc), 0);
    CHECK_EQ(th_r32(t, D + 0x1000), 0);
    CHECK_EQ(trig_trap_of(t, I_SW(7, 6, 0)), ~0ull); /* 0xffc..0xfff only */
    CHECK_EQ(th_r32(t, D + 0xffc), 0xffffffffu);
    th_free(t);
}

/* AMOs are loads and stores for matching; LR is a load. */
TEST(cpu_trigger_atomics)
{
    struct th *t = th_new();
    th_w64(t, D, 5);
    t->h.x[6] = D;
    t->h.x[7] = 1;
    trig_arm(t, 0, MC6_(MC6_M | MC6_LD), D);
    CHECK_EQ(trig_trap_of(t, I_AMO(AMO_ADD, 1, 5, 6, 7)), EXC_BREAKPOINT);
    CHECK_EQ(t->h.mtval, D);
    CHECK_EQ(th_r64(t, D), 5);
    trig_arm(t, 0, MC6_(MC6_M | MC6_ST), D + 4);
    CHECK_EQ(trig_trap_of(t, I_AMO(AMO_ADD, 1, 5, 6, 7)), EXC_BREAKPOINT);
    CHECK_EQ(t->h.mtval, D + 4);
    CHECK_EQ(th_r64(t, D), 5);
    CHECK_EQ(trig_trap_of(t, I_LR_D(5, 6)), ~0ull); /* LR does not store */
    CHECK_EQ(t->h.x[5], 5);
    CHECK_EQ(trig_trap_of(t, I_AMO(AMO_ADD, 0, 5, 6, 7)), ~0ull); /* bytes 0..3 only */
    CHECK_EQ(th_r64(t, D), 6);
    th_free(t);
}

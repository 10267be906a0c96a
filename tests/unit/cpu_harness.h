/* Shared helpers for the CPU engine unit tests (test_decode.c, test_cpu.c, test_csr.c,
 * test_mmu.c): a hart with 16 MiB of RAM at 0x80000000, a bus with a small fake MMIO device,
 * an ACLINT for time/mtimecmp, and instruction encoders to write test programs by hand.
 * Everything goes through the engine's public interface (hart.h, decode.h, bus.h, aclint.h). */
#ifndef VESSEL_TEST_CPU_HARNESS_H
#define VESSEL_TEST_CPU_HARNESS_H
#include "cpu/riscv/decode.h"
#include "cpu/riscv/hart.h"
#include "cpu/riscv/jit/fastmem.h"
#include "cpu/riscv/jit/jit.h"
#include "irq/aclint.h"
#include "machine/bus.h"
#include "test.h"
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- memory map of the test machine ---- */
#define TH_RAM_BASE 0x80000000ull
#define TH_RAM_SIZE (16ull << 20)
#define TH_CODE     0x80000000ull /* reset pc: programs start here */
#define TH_MTRAP    0x80008000ull /* mtvec: a `jal x0, 0` self-loop */
#define TH_STRAP    0x80008100ull /* stvec: a `jal x0, 0` self-loop */
#define TH_DATA     0x80100000ull /* scratch data */
#define TH_PT_POOL  0x80400000ull /* page-table pages handed out by th_pt_alloc */
#define TH_DEV_BASE 0x10000000ull /* fake MMIO device */
#define TH_DEV_SIZE 0x100ull
#define TH_UNMAPPED 0x20000000ull /* neither RAM nor device */

/* CSR numbers (priv spec 2.2) */
#define CSR_FFLAGS_N     0x001
#define CSR_FRM_N        0x002
#define CSR_FCSR_N       0x003
#define CSR_SSTATUS_N    0x100
#define CSR_SIE_N        0x104
#define CSR_STVEC_N      0x105
#define CSR_SCOUNTEREN_N 0x106
#define CSR_SENVCFG_N    0x10a
#define CSR_SSCRATCH_N   0x140
#define CSR_SEPC_N       0x141
#define CSR_SCAUSE_N     0x142
#define CSR_STVAL_N      0x143
#define CSR_SIP_N        0x144
#define CSR_STIMECMP_N   0x14d
#define CSR_SATP_N       0x180
#define CSR_MSTATUS_N    0x300
#define CSR_MISA_N       0x301
#define CSR_MEDELEG_N    0x302
#define CSR_MIDELEG_N    0x303
#define CSR_MIE_N        0x304
#define CSR_MTVEC_N      0x305
#define CSR_MCOUNTEREN_N 0x306
#define CSR_MENVCFG_N    0x30a
#define CSR_MSCRATCH_N   0x340
#define CSR_MEPC_N       0x341
#define CSR_MCAUSE_N     0x342
#define CSR_MTVAL_N      0x343
#define CSR_MIP_N        0x344
#define CSR_PMPCFG0_N    0x3a0
#define CSR_PMPADDR0_N   0x3b0
#define CSR_MCYCLE_N     0xb00
#define CSR_MINSTRET_N   0xb02
#define CSR_CYCLE_N      0xc00
#define CSR_TIME_N       0xc01
#define CSR_INSTRET_N    0xc02
#define CSR_MVENDORID_N  0xf11
#define CSR_MHARTID_N    0xf14

/* A byte-addressable fake device that records its accesses. */
struct th_dev {
    uint8_t mem[TH_DEV_SIZE];
    unsigned nreads, nwrites;
    uint64_t last_off, last_val;
    unsigned last_size;
};

struct th {
    uint8_t *ram;
    int ram_fd; /* -1: RAM is private anonymous memory */
    struct bus bus;
    struct aclint clint;
    struct th_dev dev;
    struct hart h;
    uint64_t pc;      /* emission cursor (guest physical) */
    uint64_t pt_next; /* next free page-table page */
};

static inline uint64_t th_dev_read(void *dev, uint64_t off, unsigned size)
{
    struct th_dev *d = dev;
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= (uint64_t)d->mem[off + i] << (8 * i);
    d->nreads++;
    d->last_off = off;
    d->last_size = size;
    return v;
}

static inline void th_dev_write(void *dev, uint64_t off, uint64_t val, unsigned size)
{
    struct th_dev *d = dev;
    for (unsigned i = 0; i < size; i++)
        d->mem[off + i] = (uint8_t)(val >> (8 * i));
    d->nwrites++;
    d->last_off = off;
    d->last_size = size;
    d->last_val = val;
}

static const struct mmio_ops th_dev_ops = {th_dev_read, th_dev_write};

static inline uint8_t *th_ptr(struct th *t, uint64_t pa)
{
    if (pa < TH_RAM_BASE || pa - TH_RAM_BASE >= TH_RAM_SIZE) {
        fprintf(stderr, "  harness: address 0x%llx outside test RAM\n", (unsigned long long)pa);
        abort(); /* a bug in the test itself */
    }
    return t->ram + (pa - TH_RAM_BASE);
}
static inline void th_w8(struct th *t, uint64_t pa, uint8_t v)
{
    *th_ptr(t, pa) = v;
}
static inline void th_w16(struct th *t, uint64_t pa, uint16_t v)
{
    memcpy(th_ptr(t, pa), &v, 2);
}
static inline void th_w32(struct th *t, uint64_t pa, uint32_t v)
{
    memcpy(th_ptr(t, pa), &v, 4);
}
static inline void th_w64(struct th *t, uint64_t pa, uint64_t v)
{
    memcpy(th_ptr(t, pa), &v, 8);
}
static inline uint8_t th_r8(struct th *t, uint64_t pa)
{
    return *th_ptr(t, pa);
}
static inline uint16_t th_r16(struct th *t, uint64_t pa)
{
    uint16_t v;
    memcpy(&v, th_ptr(t, pa), 2);
    return v;
}
static inline uint32_t th_r32(struct th *t, uint64_t pa)
{
    uint32_t v;
    memcpy(&v, th_ptr(t, pa), 4);
    return v;
}
static inline uint64_t th_r64(struct th *t, uint64_t pa)
{
    uint64_t v;
    memcpy(&v, th_ptr(t, pa), 8);
    return v;
}

/* Program emission at the cursor. */
static inline void th_org(struct th *t, uint64_t pa)
{
    t->pc = pa;
}
static inline uint64_t th_here(const struct th *t)
{
    return t->pc;
}
static inline uint64_t th_emit(struct th *t, uint32_t insn)
{
    uint64_t at = t->pc;
    th_w32(t, at, insn);
    t->pc += 4;
    dcache_flush(&t->h); /* as a loader would: decoded copies are re-checked before they run */
    return at;
}
static inline uint64_t th_emit16(struct th *t, uint16_t insn)
{
    uint64_t at = t->pc;
    th_w16(t, at, insn);
    t->pc += 2;
    dcache_flush(&t->h);
    return at;
}

/* CSR access as M-mode (whatever the hart's current privilege), checked. */
static inline int th_csr_m(struct th *t, unsigned csr, int op, uint64_t val, bool write,
                           uint64_t *old)
{
    unsigned p = t->h.priv;
    t->h.priv = PRV_M;
    int c = csr_access(&t->h, csr, op, val, write, old);
    t->h.priv = p;
    hart_update_mode(&t->h);
    return c;
}
static inline void th_csrw(struct th *t, unsigned csr, uint64_t val)
{
    uint64_t old;
    int c = th_csr_m(t, csr, 0, val, true, &old);
    if (c) fprintf(stderr, "  harness: csr 0x%x write failed (%d)\n", csr, c);
    CHECK_EQ(c, 0);
}
static inline uint64_t th_csrr(struct th *t, unsigned csr)
{
    uint64_t old = 0xdeadbeef;
    int c = th_csr_m(t, csr, 1, 0, false, &old);
    if (c) fprintf(stderr, "  harness: csr 0x%x read failed (%d)\n", csr, c);
    CHECK_EQ(c, 0);
    return old;
}
/* csr_access at the hart's current privilege. */
static inline int th_csr_read_at(struct th *t, unsigned csr, uint64_t *v)
{
    return csr_access(&t->h, csr, 1, 0, false, v);
}
static inline int th_csr_write_at(struct th *t, unsigned csr, uint64_t v)
{
    uint64_t old;
    return csr_access(&t->h, csr, 0, v, true, &old);
}

static inline void th_set_priv(struct th *t, unsigned priv)
{
    t->h.priv = priv;
    hart_update_mode(&t->h);
}

/* Hand out a zeroed 4 KiB page for page tables. */
static inline uint64_t th_pt_alloc(struct th *t)
{
    uint64_t pa = t->pt_next;
    t->pt_next += 4096;
    memset(th_ptr(t, pa), 0, 4096);
    return pa;
}

static inline void th_free(struct th *t)
{
    if (!t) return;
    hart_destroy(&t->h);
    bus_destroy(&t->bus);
    munmap(t->ram, TH_RAM_SIZE);
    if (t->ram_fd >= 0) close(t->ram_fd);
    free(t);
}

static inline struct th *th_new(void)
{
    struct th *t = calloc(1, sizeof(*t));
    if (!t) abort();
    /* VESSEL_TEST_ENGINE=jit: th_run_until runs the JIT (the CPU tests under both engines),
     * with RAM in a memfd and fast memory for user-mode code as `vessel run` has them
     * (VESSEL_FASTMEM=0: without) */
    const char *eng = getenv("VESSEL_TEST_ENGINE");
    bool jit = eng && strcmp(eng, "jit") == 0;
    t->ram_fd = -1;
    if (jit && fastmem_wanted()) {
        t->ram_fd = memfd_create("th-ram", MFD_CLOEXEC);
        if (t->ram_fd < 0 || ftruncate(t->ram_fd, TH_RAM_SIZE) < 0) abort();
        t->ram = mmap(NULL, TH_RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
                      t->ram_fd, 0);
    } else {
        t->ram = mmap(NULL, TH_RAM_SIZE, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    }
    if (t->ram == MAP_FAILED) abort();
    bus_init(&t->bus);
    if (bus_map(&t->bus, TH_DEV_BASE, TH_DEV_SIZE, &th_dev_ops, &t->dev, 0) != 0) abort();
    aclint_init(&t->clint, 1, NULL, NULL, NULL);
    struct hart_env env = {.ram = t->ram,
                           .ram_base = TH_RAM_BASE,
                           .ram_size = TH_RAM_SIZE,
                           .bus = &t->bus,
                           .clint = &t->clint,
                           .fastmem = t->ram_fd >= 0,
                           .ram_fd = t->ram_fd};
    if (jit) env.engine = ENGINE_JIT;
    if (hart_init(&t->h, 0, &env, TH_CODE) != 0) abort();
    th_w32(t, TH_MTRAP, 0x0000006f); /* jal x0, 0 */
    th_w32(t, TH_STRAP, 0x0000006f);
    t->h.mtvec = TH_MTRAP;
    t->h.stvec = TH_STRAP;
    t->pc = TH_CODE;
    t->pt_next = TH_PT_POOL;
    return t;
}

/* Run until the hart reaches stop_pc or one of the trap vectors (or max_calls calls of
 * hart_exec). hart_exec returns after CSR writes, traps, fence.i etc., so call it in a loop. */
static inline uint64_t th_run_until(struct th *t, uint64_t stop_pc, int max_calls)
{
    for (int n = 0; n < max_calls; n++) {
        if (t->h.jit)
            jit_exec(&t->h, 16);
        else
            hart_exec(&t->h, 16);
        uint64_t pc = t->h.pc;
        if (pc == stop_pc || pc == TH_MTRAP || pc == TH_STRAP || t->h.fatal_msg[0]) break;
    }
    return t->h.pc;
}

/* ---- instruction encoders (unprivileged spec ch. 2 "Base Instruction Formats") ---- */
static inline uint32_t enc_r(unsigned op, unsigned rd, unsigned f3, unsigned rs1, unsigned rs2,
                             unsigned f7)
{
    return (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op;
}
static inline uint32_t enc_i(unsigned op, unsigned rd, unsigned f3, unsigned rs1, int32_t imm)
{
    return ((uint32_t)(imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op;
}
static inline uint32_t enc_s(unsigned op, unsigned f3, unsigned rs1, unsigned rs2, int32_t imm)
{
    uint32_t u = (uint32_t)imm;
    return (((u >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((u & 0x1f) << 7) |
           op;
}
static inline uint32_t enc_b(unsigned f3, unsigned rs1, unsigned rs2, int32_t imm)
{
    uint32_t u = (uint32_t)imm;
    return (((u >> 12) & 1) << 31) | (((u >> 5) & 0x3f) << 25) | (rs2 << 20) | (rs1 << 15) |
           (f3 << 12) | (((u >> 1) & 0xf) << 8) | (((u >> 11) & 1) << 7) | 0x63;
}
/* imm: the 32-bit value the instruction produces (low 12 bits must be 0). */
static inline uint32_t enc_u(unsigned op, unsigned rd, uint32_t imm)
{
    return (imm & 0xfffff000u) | (rd << 7) | op;
}
static inline uint32_t enc_j(unsigned rd, int32_t imm)
{
    uint32_t u = (uint32_t)imm;
    return (((u >> 20) & 1) << 31) | (((u >> 1) & 0x3ff) << 21) | (((u >> 11) & 1) << 20) |
           (((u >> 12) & 0xff) << 12) | (rd << 7) | 0x6f;
}

/* RV64I */
#define I_LUI(rd, imm)               enc_u(0x37, rd, imm)
#define I_AUIPC(rd, imm)             enc_u(0x17, rd, imm)
#define I_JAL(rd, off)               enc_j(rd, off)
#define I_JALR(rd, rs1, off)         enc_i(0x67, rd, 0, rs1, off)
#define I_BEQ(a, b, off)             enc_b(0, a, b, off)
#define I_BNE(a, b, off)             enc_b(1, a, b, off)
#define I_BLT(a, b, off)             enc_b(4, a, b, off)
#define I_BGE(a, b, off)             enc_b(5, a, b, off)
#define I_BLTU(a, b, off)            enc_b(6, a, b, off)
#define I_BGEU(a, b, off)            enc_b(7, a, b, off)
#define I_LB(rd, rs1, off)           enc_i(0x03, rd, 0, rs1, off)
#define I_LH(rd, rs1, off)           enc_i(0x03, rd, 1, rs1, off)
#define I_LW(rd, rs1, off)           enc_i(0x03, rd, 2, rs1, off)
#define I_LD(rd, rs1, off)           enc_i(0x03, rd, 3, rs1, off)
#define I_LBU(rd, rs1, off)          enc_i(0x03, rd, 4, rs1, off)
#define I_LHU(rd, rs1, off)          enc_i(0x03, rd, 5, rs1, off)
#define I_LWU(rd, rs1, off)          enc_i(0x03, rd, 6, rs1, off)
#define I_SB(rs2, rs1, off)          enc_s(0x23, 0, rs1, rs2, off)
#define I_SH(rs2, rs1, off)          enc_s(0x23, 1, rs1, rs2, off)
#define I_SW(rs2, rs1, off)          enc_s(0x23, 2, rs1, rs2, off)
#define I_SD(rs2, rs1, off)          enc_s(0x23, 3, rs1, rs2, off)
#define I_ADDI(rd, rs1, imm)         enc_i(0x13, rd, 0, rs1, imm)
#define I_SLTI(rd, rs1, imm)         enc_i(0x13, rd, 2, rs1, imm)
#define I_SLTIU(rd, rs1, imm)        enc_i(0x13, rd, 3, rs1, imm)
#define I_XORI(rd, rs1, imm)         enc_i(0x13, rd, 4, rs1, imm)
#define I_ORI(rd, rs1, imm)          enc_i(0x13, rd, 6, rs1, imm)
#define I_ANDI(rd, rs1, imm)         enc_i(0x13, rd, 7, rs1, imm)
#define I_SLLI(rd, rs1, sh)          enc_i(0x13, rd, 1, rs1, (sh))
#define I_SRLI(rd, rs1, sh)          enc_i(0x13, rd, 5, rs1, (sh))
#define I_SRAI(rd, rs1, sh)          enc_i(0x13, rd, 5, rs1, 0x400 | (sh))
#define I_ADD(rd, a, b)              enc_r(0x33, rd, 0, a, b, 0x00)
#define I_SUB(rd, a, b)              enc_r(0x33, rd, 0, a, b, 0x20)
#define I_SLL(rd, a, b)              enc_r(0x33, rd, 1, a, b, 0x00)
#define I_SLT(rd, a, b)              enc_r(0x33, rd, 2, a, b, 0x00)
#define I_SLTU(rd, a, b)             enc_r(0x33, rd, 3, a, b, 0x00)
#define I_XOR(rd, a, b)              enc_r(0x33, rd, 4, a, b, 0x00)
#define I_SRL(rd, a, b)              enc_r(0x33, rd, 5, a, b, 0x00)
#define I_SRA(rd, a, b)              enc_r(0x33, rd, 5, a, b, 0x20)
#define I_OR(rd, a, b)               enc_r(0x33, rd, 6, a, b, 0x00)
#define I_AND(rd, a, b)              enc_r(0x33, rd, 7, a, b, 0x00)
#define I_ADDIW(rd, rs1, imm)        enc_i(0x1b, rd, 0, rs1, imm)
#define I_SLLIW(rd, rs1, sh)         enc_i(0x1b, rd, 1, rs1, (sh))
#define I_SRLIW(rd, rs1, sh)         enc_i(0x1b, rd, 5, rs1, (sh))
#define I_SRAIW(rd, rs1, sh)         enc_i(0x1b, rd, 5, rs1, 0x400 | (sh))
#define I_ADDW(rd, a, b)             enc_r(0x3b, rd, 0, a, b, 0x00)
#define I_SUBW(rd, a, b)             enc_r(0x3b, rd, 0, a, b, 0x20)
#define I_SLLW(rd, a, b)             enc_r(0x3b, rd, 1, a, b, 0x00)
#define I_SRLW(rd, a, b)             enc_r(0x3b, rd, 5, a, b, 0x00)
#define I_SRAW(rd, a, b)             enc_r(0x3b, rd, 5, a, b, 0x20)
#define I_FENCE()                    0x0ff0000fu
#define I_FENCE_I()                  0x0000100fu
#define I_ECALL()                    0x00000073u
#define I_EBREAK()                   0x00100073u
#define I_MRET()                     0x30200073u
#define I_SRET()                     0x10200073u
#define I_WFI()                      0x10500073u
#define I_SFENCE_VMA(rs1, rs2)       enc_r(0x73, 0, 0, rs1, rs2, 0x09)
#define I_CSRRW(rd, csr, rs1)        enc_i(0x73, rd, 1, rs1, (int32_t)(csr))
#define I_CSRRS(rd, csr, rs1)        enc_i(0x73, rd, 2, rs1, (int32_t)(csr))
#define I_CSRRC(rd, csr, rs1)        enc_i(0x73, rd, 3, rs1, (int32_t)(csr))
#define I_CSRRWI(rd, csr, uimm)      enc_i(0x73, rd, 5, uimm, (int32_t)(csr))
#define I_CSRRSI(rd, csr, uimm)      enc_i(0x73, rd, 6, uimm, (int32_t)(csr))
#define I_CSRRCI(rd, csr, uimm)      enc_i(0x73, rd, 7, uimm, (int32_t)(csr))
#define I_SELF_LOOP()                I_JAL(0, 0)
/* M */
#define I_MUL(rd, a, b)              enc_r(0x33, rd, 0, a, b, 0x01)
#define I_MULH(rd, a, b)             enc_r(0x33, rd, 1, a, b, 0x01)
#define I_MULHSU(rd, a, b)           enc_r(0x33, rd, 2, a, b, 0x01)
#define I_MULHU(rd, a, b)            enc_r(0x33, rd, 3, a, b, 0x01)
#define I_DIV(rd, a, b)              enc_r(0x33, rd, 4, a, b, 0x01)
#define I_DIVU(rd, a, b)             enc_r(0x33, rd, 5, a, b, 0x01)
#define I_REM(rd, a, b)              enc_r(0x33, rd, 6, a, b, 0x01)
#define I_REMU(rd, a, b)             enc_r(0x33, rd, 7, a, b, 0x01)
#define I_MULW(rd, a, b)             enc_r(0x3b, rd, 0, a, b, 0x01)
#define I_DIVW(rd, a, b)             enc_r(0x3b, rd, 4, a, b, 0x01)
#define I_DIVUW(rd, a, b)            enc_r(0x3b, rd, 5, a, b, 0x01)
#define I_REMW(rd, a, b)             enc_r(0x3b, rd, 6, a, b, 0x01)
#define I_REMUW(rd, a, b)            enc_r(0x3b, rd, 7, a, b, 0x01)
/* A: funct5 in bits 31:27, aq/rl clear */
#define I_AMO(f5, w64, rd, rs1, rs2) enc_r(0x2f, rd, (w64) ? 3 : 2, rs1, rs2, (f5) << 2)
#define AMO_LR                       0x02
#define AMO_SC                       0x03
#define AMO_SWAP                     0x01
#define AMO_ADD                      0x00
#define AMO_XOR                      0x04
#define AMO_AND                      0x0c
#define AMO_OR                       0x08
#define AMO_MIN                      0x10
#define AMO_MAX                      0x14
#define AMO_MINU                     0x18
#define AMO_MAXU                     0x1c
#define I_LR_W(rd, rs1)              I_AMO(AMO_LR, 0, rd, rs1, 0)
#define I_LR_D(rd, rs1)              I_AMO(AMO_LR, 1, rd, rs1, 0)
#define I_SC_W(rd, rs2, rs1)         I_AMO(AMO_SC, 0, rd, rs1, rs2)
#define I_SC_D(rd, rs2, rs1)         I_AMO(AMO_SC, 1, rd, rs1, rs2)
/* F/D loads and stores */
#define I_FLW(fd, rs1, off)          enc_i(0x07, fd, 2, rs1, off)
#define I_FLD(fd, rs1, off)          enc_i(0x07, fd, 3, rs1, off)
#define I_FSW(fs2, rs1, off)         enc_s(0x27, 2, rs1, fs2, off)
#define I_FSD(fs2, rs1, off)         enc_s(0x27, 3, rs1, fs2, off)
/* Zba */
#define I_SH1ADD(rd, a, b)           enc_r(0x33, rd, 2, a, b, 0x10)
#define I_SH2ADD(rd, a, b)           enc_r(0x33, rd, 4, a, b, 0x10)
#define I_SH3ADD(rd, a, b)           enc_r(0x33, rd, 6, a, b, 0x10)
#define I_ADD_UW(rd, a, b)           enc_r(0x3b, rd, 0, a, b, 0x04)
#define I_SH1ADD_UW(rd, a, b)        enc_r(0x3b, rd, 2, a, b, 0x10)
#define I_SH2ADD_UW(rd, a, b)        enc_r(0x3b, rd, 4, a, b, 0x10)
#define I_SH3ADD_UW(rd, a, b)        enc_r(0x3b, rd, 6, a, b, 0x10)
#define I_SLLI_UW(rd, a, sh)         enc_i(0x1b, rd, 1, a, 0x080 | (sh))
/* Zbb */
#define I_ANDN(rd, a, b)             enc_r(0x33, rd, 7, a, b, 0x20)
#define I_ORN(rd, a, b)              enc_r(0x33, rd, 6, a, b, 0x20)
#define I_XNOR(rd, a, b)             enc_r(0x33, rd, 4, a, b, 0x20)
#define I_CLZ(rd, a)                 enc_i(0x13, rd, 1, a, 0x600)
#define I_CTZ(rd, a)                 enc_i(0x13, rd, 1, a, 0x601)
#define I_CPOP(rd, a)                enc_i(0x13, rd, 1, a, 0x602)
#define I_CLZW(rd, a)                enc_i(0x1b, rd, 1, a, 0x600)
#define I_CTZW(rd, a)                enc_i(0x1b, rd, 1, a, 0x601)
#define I_CPOPW(rd, a)               enc_i(0x1b, rd, 1, a, 0x602)
#define I_MAX(rd, a, b)              enc_r(0x33, rd, 6, a, b, 0x05)
#define I_MAXU(rd, a, b)             enc_r(0x33, rd, 7, a, b, 0x05)
#define I_MIN(rd, a, b)              enc_r(0x33, rd, 4, a, b, 0x05)
#define I_MINU(rd, a, b)             enc_r(0x33, rd, 5, a, b, 0x05)
#define I_SEXT_B(rd, a)              enc_i(0x13, rd, 1, a, 0x604)
#define I_SEXT_H(rd, a)              enc_i(0x13, rd, 1, a, 0x605)
#define I_ZEXT_H(rd, a)              enc_r(0x3b, rd, 4, a, 0, 0x04)
#define I_ROL(rd, a, b)              enc_r(0x33, rd, 1, a, b, 0x30)
#define I_ROR(rd, a, b)              enc_r(0x33, rd, 5, a, b, 0x30)
#define I_RORI(rd, a, sh)            enc_i(0x13, rd, 5, a, 0x600 | (sh))
#define I_ROLW(rd, a, b)             enc_r(0x3b, rd, 1, a, b, 0x30)
#define I_RORW(rd, a, b)             enc_r(0x3b, rd, 5, a, b, 0x30)
#define I_RORIW(rd, a, sh)           enc_i(0x1b, rd, 5, a, 0x600 | (sh))
#define I_ORC_B(rd, a)               enc_i(0x13, rd, 5, a, 0x287)
#define I_REV8(rd, a)                enc_i(0x13, rd, 5, a, 0x6b8)
/* Zbs */
#define I_BCLR(rd, a, b)             enc_r(0x33, rd, 1, a, b, 0x24)
#define I_BCLRI(rd, a, sh)           enc_i(0x13, rd, 1, a, 0x480 | (sh))
#define I_BEXT(rd, a, b)             enc_r(0x33, rd, 5, a, b, 0x24)
#define I_BEXTI(rd, a, sh)           enc_i(0x13, rd, 5, a, 0x480 | (sh))
#define I_BINV(rd, a, b)             enc_r(0x33, rd, 1, a, b, 0x34)
#define I_BINVI(rd, a, sh)           enc_i(0x13, rd, 1, a, 0x680 | (sh))
#define I_BSET(rd, a, b)             enc_r(0x33, rd, 1, a, b, 0x14)
#define I_BSETI(rd, a, sh)           enc_i(0x13, rd, 1, a, 0x280 | (sh))

/* ---- compressed encoders (unprivileged spec ch. "C" Standard Extension) ---- */
static inline uint32_t cb(uint32_t v, unsigned hi, unsigned lo) /* bits hi..lo of v */
{
    return (v >> lo) & ((1u << (hi - lo + 1)) - 1);
}
/* rd'/rs' are x8..x15 */
#define CR3(r) ((unsigned)(r)-8u)
static inline uint16_t enc_c_addi4spn(unsigned rdp, unsigned uimm)
{
    return (uint16_t)((cb(uimm, 5, 4) << 11) | (cb(uimm, 9, 6) << 7) | (cb(uimm, 2, 2) << 6) |
                      (cb(uimm, 3, 3) << 5) | (CR3(rdp) << 2));
}
static inline uint16_t enc_c_lw(unsigned rdp, unsigned rs1p, unsigned uimm)
{
    return (uint16_t)((2u << 13) | (cb(uimm, 5, 3) << 10) | (CR3(rs1p) << 7) |
                      (cb(uimm, 2, 2) << 6) | (cb(uimm, 6, 6) << 5) | (CR3(rdp) << 2));
}
static inline uint16_t enc_c_ld(unsigned rdp, unsigned rs1p, unsigned uimm)
{
    return (uint16_t)((3u << 13) | (cb(uimm, 5, 3) << 10) | (CR3(rs1p) << 7) |
                      (cb(uimm, 7, 6) << 5) | (CR3(rdp) << 2));
}
static inline uint16_t enc_c_sw(unsigned rs2p, unsigned rs1p, unsigned uimm)
{
    return (uint16_t)(enc_c_lw(rs2p, rs1p, uimm) | (6u << 13));
}
static inline uint16_t enc_c_sd(unsigned rs2p, unsigned rs1p, unsigned uimm)
{
    return (uint16_t)(enc_c_ld(rs2p, rs1p, uimm) | (7u << 13));
}
/* C.FLD/C.FSD share the C.LD/C.SD layouts with funct3 1/5 */
static inline uint16_t enc_c_fld(unsigned rdp, unsigned rs1p, unsigned uimm)
{
    return (uint16_t)((enc_c_ld(rdp, rs1p, uimm) & ~(7u << 13)) | (1u << 13));
}
static inline uint16_t enc_c_fsd(unsigned rs2p, unsigned rs1p, unsigned uimm)
{
    return (uint16_t)((enc_c_sd(rs2p, rs1p, uimm) & ~(7u << 13)) | (5u << 13));
}
static inline uint16_t enc_c_ci(unsigned f3, unsigned rd, int32_t imm6, unsigned q)
{
    uint32_t u = (uint32_t)imm6;
    return (uint16_t)((f3 << 13) | (cb(u, 5, 5) << 12) | (rd << 7) | (cb(u, 4, 0) << 2) | q);
}
#define C_NOP()          enc_c_ci(0, 0, 0, 1)
#define C_ADDI(rd, imm)  enc_c_ci(0, rd, imm, 1)
#define C_ADDIW(rd, imm) enc_c_ci(1, rd, imm, 1)
#define C_LI(rd, imm)    enc_c_ci(2, rd, imm, 1)
#define C_SLLI(rd, sh)   enc_c_ci(0, rd, sh, 2)
/* C.LUI: imm is the 32-bit value loaded (bits 17:12 significant). */
static inline uint16_t enc_c_lui(unsigned rd, int32_t imm)
{
    uint32_t u = (uint32_t)imm;
    return (uint16_t)((3u << 13) | (cb(u, 17, 17) << 12) | (rd << 7) | (cb(u, 16, 12) << 2) | 1);
}
static inline uint16_t enc_c_addi16sp(int32_t imm)
{
    uint32_t u = (uint32_t)imm;
    return (uint16_t)((3u << 13) | (cb(u, 9, 9) << 12) | (2u << 7) | (cb(u, 4, 4) << 6) |
                      (cb(u, 6, 6) << 5) | (cb(u, 8, 7) << 3) | (cb(u, 5, 5) << 2) | 1);
}
static inline uint16_t enc_c_shift(unsigned f2, unsigned rdp, unsigned sh)
{
    return (uint16_t)((4u << 13) | (cb(sh, 5, 5) << 12) | (f2 << 10) | (CR3(rdp) << 7) |
                      (cb(sh, 4, 0) << 2) | 1);
}
#define C_SRLI(rdp, sh)  enc_c_shift(0, rdp, sh)
#define C_SRAI(rdp, sh)  enc_c_shift(1, rdp, sh)
#define C_ANDI(rdp, imm) enc_c_shift(2, rdp, (unsigned)(imm)&0x3f)
static inline uint16_t enc_c_arith(unsigned b12, unsigned f2, unsigned rdp, unsigned rs2p)
{
    return (uint16_t)((4u << 13) | (b12 << 12) | (3u << 10) | (CR3(rdp) << 7) | (f2 << 5) |
                      (CR3(rs2p) << 2) | 1);
}
#define C_SUB(rdp, rs2p)  enc_c_arith(0, 0, rdp, rs2p)
#define C_XOR(rdp, rs2p)  enc_c_arith(0, 1, rdp, rs2p)
#define C_OR(rdp, rs2p)   enc_c_arith(0, 2, rdp, rs2p)
#define C_AND(rdp, rs2p)  enc_c_arith(0, 3, rdp, rs2p)
#define C_SUBW(rdp, rs2p) enc_c_arith(1, 0, rdp, rs2p)
#define C_ADDW(rdp, rs2p) enc_c_arith(1, 1, rdp, rs2p)
static inline uint16_t enc_c_j(int32_t off)
{
    uint32_t u = (uint32_t)off;
    return (uint16_t)((5u << 13) | (cb(u, 11, 11) << 12) | (cb(u, 4, 4) << 11) |
                      (cb(u, 9, 8) << 9) | (cb(u, 10, 10) << 8) | (cb(u, 6, 6) << 7) |
                      (cb(u, 7, 7) << 6) | (cb(u, 3, 1) << 3) | (cb(u, 5, 5) << 2) | 1);
}
static inline uint16_t enc_c_bz(unsigned f3, unsigned rs1p, int32_t off)
{
    uint32_t u = (uint32_t)off;
    return (uint16_t)((f3 << 13) | (cb(u, 8, 8) << 12) | (cb(u, 4, 3) << 10) | (CR3(rs1p) << 7) |
                      (cb(u, 7, 6) << 5) | (cb(u, 2, 1) << 3) | (cb(u, 5, 5) << 2) | 1);
}
#define C_BEQZ(rs1p, off) enc_c_bz(6, rs1p, off)
#define C_BNEZ(rs1p, off) enc_c_bz(7, rs1p, off)
static inline uint16_t enc_c_lwsp(unsigned rd, unsigned uimm)
{
    return (uint16_t)((2u << 13) | (cb(uimm, 5, 5) << 12) | (rd << 7) | (cb(uimm, 4, 2) << 4) |
                      (cb(uimm, 7, 6) << 2) | 2);
}
static inline uint16_t enc_c_ldsp(unsigned rd, unsigned uimm)
{
    return (uint16_t)((3u << 13) | (cb(uimm, 5, 5) << 12) | (rd << 7) | (cb(uimm, 4, 3) << 5) |
                      (cb(uimm, 8, 6) << 2) | 2);
}
static inline uint16_t enc_c_swsp(unsigned rs2, unsigned uimm)
{
    return (uint16_t)((6u << 13) | (cb(uimm, 5, 2) << 9) | (cb(uimm, 7, 6) << 7) | (rs2 << 2) | 2);
}
static inline uint16_t enc_c_sdsp(unsigned rs2, unsigned uimm)
{
    return (uint16_t)((7u << 13) | (cb(uimm, 5, 3) << 10) | (cb(uimm, 8, 6) << 7) | (rs2 << 2) | 2);
}
static inline uint16_t enc_c_fldsp(unsigned rd, unsigned uimm)
{
    return (uint16_t)((enc_c_ldsp(rd, uimm) & ~(7u << 13)) | (1u << 13));
}
static inline uint16_t enc_c_fsdsp(unsigned rs2, unsigned uimm)
{
    return (uint16_t)((enc_c_sdsp(rs2, uimm) & ~(7u << 13)) | (5u << 13));
}
static inline uint16_t enc_c_cr(unsigned b12, unsigned rd, unsigned rs2)
{
    return (uint16_t)((4u << 13) | (b12 << 12) | (rd << 7) | (rs2 << 2) | 2);
}
#define C_JR(rs1)      enc_c_cr(0, rs1, 0)
#define C_MV(rd, rs2)  enc_c_cr(0, rd, rs2)
#define C_EBREAK()     enc_c_cr(1, 0, 0)
#define C_JALR(rs1)    enc_c_cr(1, rs1, 0)
#define C_ADD(rd, rs2) enc_c_cr(1, rd, rs2)

/* ---- Sv39/48/57 page tables (priv spec 10.3-10.6) ---- */
#define PTE_V_    (1ull << 0)
#define PTE_R_    (1ull << 1)
#define PTE_W_    (1ull << 2)
#define PTE_X_    (1ull << 3)
#define PTE_U_    (1ull << 4)
#define PTE_G_    (1ull << 5)
#define PTE_A_    (1ull << 6)
#define PTE_D_    (1ull << 7)
#define SATP_SV39 (8ull << 60)
#define SATP_SV48 (9ull << 60)
#define SATP_SV57 (10ull << 60)

static inline uint64_t th_pte(uint64_t pa, uint64_t flags)
{
    return ((pa >> 12) << 10) | flags;
}

/* Map va -> pa with a leaf at `level` (0 = 4 KiB, 1 = 2 MiB, 2 = 1 GiB, 3 = 512 GiB, ...)
 * in a table of `levels` levels rooted at root. Returns the PTE's physical address. Next-level
 * tables are allocated from the pool as needed. */
static inline uint64_t th_map(struct th *t, uint64_t root, unsigned levels, uint64_t va,
                              uint64_t pa, unsigned level, uint64_t flags)
{
    uint64_t table = root;
    for (int l = (int)levels - 1;; l--) {
        uint64_t pte_pa = table + ((va >> (12 + 9 * l)) & 0x1ff) * 8;
        if (l == (int)level) {
            th_w64(t, pte_pa, th_pte(pa, flags));
            return pte_pa;
        }
        uint64_t pte = th_r64(t, pte_pa);
        if (!(pte & PTE_V_)) {
            uint64_t next = th_pt_alloc(t);
            pte = th_pte(next, PTE_V_);
            th_w64(t, pte_pa, pte);
        }
        table = ((pte >> 10) & ((1ull << 44) - 1)) << 12;
    }
}

/* Let S and U access everything through PMP entry 15 (NAPOT over the whole address space);
 * without a matching entry S/U accesses fail (priv spec 3.7.1). */
static inline void th_pmp_allow_all(struct th *t)
{
    th_csrw(t, CSR_PMPADDR0_N + 15, (1ull << 54) - 1);
    th_csrw(t, CSR_PMPCFG0_N + 2, 0x1full << 56); /* entry 15: A=NAPOT, X W R */
}
#endif

/* The JIT (src/cpu/riscv/jit): the x86-64 encoder (bytes checked against GNU objdump's reading
 * of them), the code cache (W^X double mapping, recycling when full) and what only a JIT can
 * get wrong: one physical page run at two virtual addresses, a fault in the middle of a block
 * (pc, instret, mtval exact), and translations surviving a full cache. The CPU tests of
 * test_cpu.c/test_mmu.c run through the JIT too with VESSEL_TEST_ENGINE=jit (make unit-jit). */
#include "cpu/riscv/jit/cache.h"
#include "cpu/riscv/jit/jit.h"
#include "cpu/riscv/jit/x86.h"
#include "cpu_harness.h"
#include "util/log.h"
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Emit one instruction into a fresh buffer and compare its bytes. */
#define ENC(stmt, ...)                                                                             \
    do {                                                                                           \
        const uint8_t want_[] = {__VA_ARGS__};                                                     \
        uint8_t buf_[32];                                                                          \
        struct x86 e;                                                                              \
        x86_init(&e, buf_, sizeof(buf_));                                                          \
        stmt;                                                                                      \
        if (x86_len(&e) != sizeof(want_) || memcmp(buf_, want_, sizeof(want_)) != 0) {             \
            fprintf(stderr, "  %s: got", #stmt);                                                   \
            for (size_t q_ = 0; q_ < x86_len(&e); q_++)                                            \
                fprintf(stderr, " %02x", buf_[q_]);                                                \
            fprintf(stderr, "\n");                                                                 \
            test_failures_in_current++;                                                            \
        }                                                                                          \
    } while (0)

TEST(jit_x86_encodings)
{
    /* expected bytes: objdump -D -b binary -mi386:x86-64 reads each as the named instruction */
    ENC(x86_mov_load(&e, RAX, M(RBX, 8)), 0x48, 0x8b, 0x43, 0x08);
    ENC(x86_mov_store(&e, M(RBX, 0x108), RAX), 0x48, 0x89, 0x83, 0x08, 0x01, 0x00, 0x00);
    ENC(x86_mov_load(&e, RCX, R(RSP)), 0x48, 0x8b, 0xcc);
    ENC(x86_alu_rm(&e, true, ALU_ADD, RDX, R(R12)), 0x49, 0x03, 0xd4);
    ENC(x86_alu_rm(&e, true, ALU_XOR, RCX, M(RBX, 0x2000)), 0x48, 0x33, 0x8b, 0x00, 0x20, 0x00,
        0x00);
    ENC(x86_alu_rm(&e, true, ALU_CMP, RCX, M(RDX, 0)), 0x48, 0x3b, 0x0a);
    ENC(x86_alu_imm(&e, false, ALU_AND, R(RDX), 255), 0x81, 0xe2, 0xff, 0x00, 0x00, 0x00);
    ENC(x86_alu_imm(&e, true, ALU_ADD, M(RBX, 0x110), 3), 0x48, 0x83, 0x83, 0x10, 0x01, 0x00, 0x00,
        0x03);
    ENC(x86_shift_imm(&e, true, SH_SHR, RCX, 12), 0x48, 0xc1, 0xe9, 0x0c);
    ENC(x86_shift_cl(&e, false, SH_SAR, RAX), 0xd3, 0xf8);
    ENC(x86_load_n(&e, 1, true, RAX, M(RAX, 0)), 0x48, 0x0f, 0xbe, 0x00);
    ENC(x86_load_n(&e, 2, false, RAX, M(R13, 0)), 0x41, 0x0f, 0xb7, 0x45, 0x00);
    ENC(x86_load_n(&e, 4, true, RAX, M(R12, 8)), 0x49, 0x63, 0x44, 0x24, 0x08);
    ENC(x86_store_n(&e, 1, M(RAX, 0), RCX), 0x88, 0x08);
    /* [base + index + disp] (fast memory: [r15 + va]) */
    ENC(x86_load_n(&e, 1, false, R9, MI(R15, RAX, 0)), 0x45, 0x0f, 0xb6, 0x0c, 0x07);
    ENC(x86_load_n(&e, 1, false, RSI, MI(R15, RBP, 7)), 0x41, 0x0f, 0xb6, 0x74, 0x2f, 0x07);
    ENC(x86_store_n(&e, 8, MI(R15, R13, -0x1c), RCX), 0x4b, 0x89, 0x4c, 0x2f, 0xe4);
    ENC(x86_load_n(&e, 1, true, RAX, MI(R15, R9, 0)), 0x4b, 0x0f, 0xbe, 0x04, 0x0f);
    ENC(x86_mov_load(&e, RDX, MI(R15, RSI, 0x12345)), 0x49, 0x8b, 0x94, 0x37, 0x45, 0x23, 0x01,
        0x00);
    ENC(x86_store_n(&e, 1, MI(R15, RAX, 0), RSI), 0x41, 0x88, 0x34, 0x07);
    ENC(x86_load_n(&e, 1, false, RCX, MI(R13, RAX, 0)), 0x41, 0x0f, 0xb6, 0x4c, 0x05, 0x00);
    ENC(x86_load_n(&e, 2, false, R10, MI(R15, R8, 0)), 0x47, 0x0f, 0xb7, 0x14, 0x07);
    /* [base + index * 2^scale] (shift-and-add as lea: emit_shadd), as GNU as encodes them */
    ENC(x86_lea(&e, RSI, MIS(RCX, R8, 1, 0)), 0x4a, 0x8d, 0x34, 0x41);
    ENC(x86_lea(&e, R8, MIS(RBP, R9, 3, 0)), 0x4e, 0x8d, 0x44, 0xcd, 0x00);
    ENC(x86_lea(&e, RAX, MIS(R13, RAX, 2, 0)), 0x49, 0x8d, 0x44, 0x85, 0x00);
    ENC(x86_lea(&e, R12, MIS(RSI, RSI, 1, 0)), 0x4c, 0x8d, 0x24, 0x76);
    ENC(x86_lea(&e, RDI, MIS(R12, R15, 1, 0)), 0x4b, 0x8d, 0x3c, 0x7c);
    ENC(x86_store_n(&e, 1, M(RAX, 0), RSI), 0x40, 0x88, 0x30);
    ENC(x86_store_n(&e, 2, M(RAX, 0), RCX), 0x66, 0x89, 0x08);
    ENC(x86_mov_imm(&e, RAX, 0x12345678), 0xb8, 0x78, 0x56, 0x34, 0x12);
    ENC(x86_mov_imm(&e, RDX, 0xffffffff80000000ull), 0x48, 0xc7, 0xc2, 0x00, 0x00, 0x00, 0x80);
    ENC(x86_mov_imm(&e, R8, 0x123456789abcull), 0x49, 0xb8, 0xbc, 0x9a, 0x78, 0x56, 0x34, 0x12,
        0x00, 0x00);
    ENC(x86_mov_mem_imm(&e, M(RBX, 16), -5), 0x48, 0xc7, 0x43, 0x10, 0xfb, 0xff, 0xff, 0xff);
    ENC(x86_lea(&e, RAX, M(R14, 0x7fc)), 0x49, 0x8d, 0x86, 0xfc, 0x07, 0x00, 0x00);
    ENC(x86_setcc(&e, CC_L, RAX), 0x0f, 0x9c, 0xc0, 0x0f, 0xb6, 0xc0);
    ENC(x86_setcc(&e, CC_B, RSI), 0x40, 0x0f, 0x92, 0xc6, 0x40, 0x0f, 0xb6, 0xf6);
    ENC(x86_imul(&e, true, RAX, M(RBX, 40)), 0x48, 0x0f, 0xaf, 0x43, 0x28);
    ENC(x86_mul_wide(&e, true, M(RBX, 40)), 0x48, 0xf7, 0x6b, 0x28);
    ENC(x86_movsxd(&e, RAX, RAX), 0x48, 0x63, 0xc0);
    ENC(x86_push(&e, R12), 0x41, 0x54);
    ENC(x86_pop(&e, RBX), 0x5b);
    ENC(x86_call_reg(&e, RAX), 0xff, 0xd0);
    ENC(x86_full_fence(&e), 0xf0, 0x83, 0x0c, 0x24, 0x00);
    ENC(x86_test32(&e, RAX, RAX), 0x85, 0xc0);
    ENC(x86_test_al_imm(&e, 7), 0xa8, 0x07);
    ENC(x86_mov_load(&e, RAX, M(RBP, 0)), 0x48, 0x8b, 0x45, 0x00);
    ENC(x86_cmov(&e, true, CC_L, RCX, R(RAX)), 0x48, 0x0f, 0x4c, 0xc8);
    ENC(x86_cmov(&e, false, CC_AE, RSI, M(RBX, 0)), 0x0f, 0x43, 0x33);
    ENC(x86_alu_mr(&e, true, ALU_SUB, M(RBX, 0x2d0), RAX), 0x48, 0x29, 0x83, 0xd0, 0x02, 0x00,
        0x00);
    ENC(x86_alu_mr(&e, true, ALU_ADD, M(RBX, 8), RCX), 0x48, 0x01, 0x4b, 0x08);
    ENC(x86_xchg(&e, true, M(RAX, 0), RCX), 0x48, 0x87, 0x08);
    ENC(x86_xchg(&e, false, M(RAX, 0), RCX), 0x87, 0x08);
    ENC(x86_lock_xadd(&e, true, M(RAX, 0), RCX), 0xf0, 0x48, 0x0f, 0xc1, 0x08);
    ENC(x86_lock_xadd(&e, false, M(RDX, 0), R9), 0xf0, 0x44, 0x0f, 0xc1, 0x0a);
    ENC(x86_lock_cmpxchg(&e, true, M(RDX, 0), RCX), 0xf0, 0x48, 0x0f, 0xb1, 0x0a);
    ENC(x86_lock_cmpxchg(&e, false, M(RDX, 0), RCX), 0xf0, 0x0f, 0xb1, 0x0a);
    ENC(x86_mov_mem8_imm(&e, M(RBX, 0x120), 1), 0xc6, 0x83, 0x20, 0x01, 0x00, 0x00, 0x01);
    /* r12/r13 as bases need a SIB byte / a displacement (SDM vol. 2, table 2-2) */
    ENC(x86_mov_load(&e, RAX, M(R12, 0)), 0x49, 0x8b, 0x04, 0x24);
    ENC(x86_mov_load(&e, RAX, M(R13, 0)), 0x49, 0x8b, 0x45, 0x00);
    /* short jumps: jle/jmp rel8, patched forward */
    ENC(
        {
            uint8_t *at_ = x86_jcc8(&e, CC_LE);
            x86_patch8(at_, at_ + 1 + 3);
        },
        0x7e, 0x03);
    ENC(
        {
            uint8_t *at_ = x86_jmp8(&e);
            x86_patch8(at_, at_ + 1);
        },
        0xeb, 0x00);
}

/* A short jump's target out of reach is refused, not truncated. */
TEST(jit_x86_short_jump_reach)
{
    uint8_t buf[300];
    struct x86 e;
    x86_init(&e, buf, sizeof(buf));
    uint8_t *at = x86_jmp8(&e);
    CHECK(x86_patch8(at, at + 1 + 127));
    CHECK_EQ(buf[1], 127);
    CHECK(!x86_patch8(at, at + 1 + 128));
    CHECK_EQ(buf[1], 127); /* unchanged */
    CHECK(x86_patch8(at, buf));
    CHECK_EQ((int8_t)buf[1], -2);
}

TEST(jit_x86_overflow_is_sticky)
{
    uint8_t buf[6];
    struct x86 e;
    x86_init(&e, buf, sizeof(buf));
    x86_mov_load(&e, RAX, M(RBX, 8)); /* 4 bytes */
    CHECK(!e.overflow);
    x86_mov_store(&e, M(RBX, 0x108), RAX); /* 7 bytes: does not fit */
    CHECK(e.overflow);
    size_t len = x86_len(&e);
    CHECK(len <= sizeof(buf));
    x86_ret(&e); /* would fit, but the buffer is already bad: the translation is dropped */
    CHECK_EQ(x86_len(&e), len);
    CHECK(x86_jmp(&e) == NULL);
}

/* The permissions of the mapping that contains p, from /proc/self/maps ("r-xs" etc.). */
static int map_perms(const void *p, char out[5])
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return -1;
    char line[512];
    int found = -1;
    while (fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;
        char perms[5];
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 && (uintptr_t)p >= lo &&
            (uintptr_t)p < hi) {
            memcpy(out, perms, 5);
            found = 0;
            break;
        }
    }
    fclose(f);
    return found;
}

TEST(jit_cache_wx_double_mapping)
{
    struct jit_cache c;
    CHECK_EQ(jit_cache_init(&c, 100000), 0); /* rounded up to pages */
    CHECK_EQ(c.size, 102400);
    char prw[5] = "", prx[5] = "";
    CHECK_EQ(map_perms(c.rw, prw), 0);
    CHECK_EQ(map_perms(c.rx, prx), 0);
    /* never writable and executable at once */
    CHECK(strcmp(prw, "rw-s") == 0);
    CHECK(strcmp(prx, "r-xs") == 0);
    /* the two views are the same memory: code written through rw runs from rx */
    struct x86 e;
    x86_init(&e, c.rw + c.used, jit_cache_avail(&c));
    x86_mov_imm(&e, RAX, 0x1234567);
    x86_ret(&e);
    uint32_t off = jit_cache_commit(&c, x86_len(&e));
    uint64_t (*fn)(void) = (uint64_t(*)(void))(void *)(c.rx + off);
    CHECK_EQ(fn(), 0x1234567);
    jit_cache_destroy(&c);
}

TEST(jit_cache_recycles_when_full)
{
    struct jit_cache c;
    CHECK_EQ(jit_cache_init(&c, 1), 0); /* clamped to the minimum */
    CHECK_EQ(c.size, JIT_CACHE_MIN);
    unsigned gen = c.gen;
    uint32_t first = jit_cache_commit(&c, 100);
    CHECK(first > 0); /* offset 0 is never a translation */
    while (jit_cache_avail(&c) >= 1000)
        jit_cache_commit(&c, 1000);
    CHECK(jit_cache_avail(&c) < 1000);
    jit_cache_flush(&c);
    CHECK_EQ(c.gen, gen + 1);
    CHECK_EQ(jit_cache_commit(&c, 100), first); /* the space is reused */
    jit_cache_destroy(&c);
}

static struct th *th_new_jit(size_t cache)
{
    setenv("VESSEL_TEST_ENGINE", "jit", 1);
    struct th *t = th_new();
    unsetenv("VESSEL_TEST_ENGINE");
    if (cache) {
        jit_destroy(&t->h);
        if (jit_init(&t->h, cache) != 0) abort();
    }
    CHECK(t->h.jit != NULL);
    return t;
}

/* One physical page at two virtual addresses: pcs in a translation must follow the virtual
 * address it runs at (the default guest hung when they did not: Linux runs its first pages
 * at their physical address, then at the kernel's virtual address). */
TEST(jit_same_page_two_virtual_addresses)
{
    struct th *t = th_new_jit(0);
    uint64_t root = th_pt_alloc(t);
    const uint64_t va1 = 0x40000000, va2 = 0x7fe00000;
    th_map(t, root, 3, va1, TH_CODE, 0, PTE_V_ | PTE_R_ | PTE_X_ | PTE_A_);
    th_map(t, root, 3, va2, TH_CODE, 0, PTE_V_ | PTE_R_ | PTE_X_ | PTE_A_);
    th_pmp_allow_all(t);
    th_emit(t, I_AUIPC(5, 0));
    th_emit(t, I_ADDI(6, 6, 1));
    uint64_t loop = th_emit(t, I_SELF_LOOP()) - TH_CODE;
    th_csrw(t, CSR_SATP_N, SATP_SV39 | (root >> 12));
    t->h.priv = PRV_S;
    hart_update_mode(&t->h);
    t->h.pc = va1;
    CHECK_EQ(th_run_until(t, va1 + loop, 10), va1 + loop);
    CHECK_EQ(t->h.x[5], va1);
    t->h.pc = va2;
    CHECK_EQ(th_run_until(t, va2 + loop, 10), va2 + loop);
    CHECK_EQ(t->h.x[5], va2);
    CHECK_EQ(t->h.x[6], 2);
    struct jit_stats st;
    jit_get_stats(&t->h, &st);
    CHECK(st.blocks >= 1);
    th_free(t);
}

/* A load that faults in the middle of a translated block: the instructions before it are
 * retired (their results and instret), mepc is the load, mtval its address. */
TEST(jit_fault_in_the_middle_of_a_block)
{
    struct th *t = th_new_jit(0);
    t->h.x[10] = TH_UNMAPPED;
    th_emit(t, I_ADDI(5, 0, 11));
    th_emit(t, I_ADDI(6, 0, 22));
    uint64_t ld = th_emit(t, I_LD(7, 10, 8));
    th_emit(t, I_ADDI(8, 0, 33));
    th_emit(t, I_SELF_LOOP());
    t->h.x[7] = 0x77;
    uint64_t before = t->h.instret;
    CHECK_EQ(th_run_until(t, TH_MTRAP, 1), TH_MTRAP);
    CHECK_EQ(t->h.mepc, ld);
    CHECK_EQ(t->h.mcause, EXC_LOAD_ACCESS);
    CHECK_EQ(t->h.mtval, TH_UNMAPPED + 8);
    CHECK_EQ(t->h.instret - before, 2);
    CHECK_EQ(t->h.x[5], 11);
    CHECK_EQ(t->h.x[6], 22);
    CHECK_EQ(t->h.x[7], 0x77); /* the load did not write */
    CHECK_EQ(t->h.x[8], 0);    /* nor did anything after it run */
    struct jit_stats st;
    jit_get_stats(&t->h, &st);
    CHECK(st.blocks >= 1);
    th_free(t);
}

/* Translations keep working across code-cache flushes: 400 blocks of 60 instructions each
 * (~250 bytes of host code apiece) do not fit in the minimum 64 KiB cache. */
TEST(jit_cache_full_flushes_and_retranslates)
{
    struct th *t = th_new_jit(JIT_CACHE_MIN);
    const uint64_t base = TH_CODE + 0x10000; /* above the trap vectors */
    for (unsigned b = 0; b < 400; b++) {
        th_org(t, base + b * 256);
        for (unsigned k = 0; k < 60; k++)
            th_emit(t, I_ADDI(5, 5, 1));
        th_emit(t, I_JAL(0, 256 - 60 * 4));
    }
    uint64_t end = base + 400 * 256;
    th_org(t, end);
    th_emit(t, I_SELF_LOOP());
    for (int round = 0; round < 2; round++) {
        t->h.x[5] = 0;
        t->h.pc = base;
        CHECK_EQ(th_run_until(t, end, 200), end);
        CHECK_EQ(t->h.x[5], 400 * 60);
    }
    struct jit_stats st;
    jit_get_stats(&t->h, &st);
    CHECK(st.flushes >= 1);
    CHECK(st.blocks > 400);
    th_free(t);
}

/* A loop inside one page runs as chained blocks: the result and instret are exact, and the
 * budget still returns control (interrupts are taken between jit_exec calls). */
TEST(jit_chained_loop_exact_and_bounded)
{
    struct th *t = th_new_jit(0);
    t->h.x[5] = 1000;
    uint64_t loop = th_emit(t, I_ADDI(5, 5, -1));
    th_emit(t, I_ADDI(6, 6, 1));
    th_emit(t, I_BNE(5, 0, -8));
    uint64_t end = th_emit(t, I_SELF_LOOP());
    (void)loop;
    uint64_t before = t->h.instret;
    CHECK_EQ(th_run_until(t, end, 1000), end);
    CHECK_EQ(t->h.x[6], 1000);
    /* 3 per iteration, plus the self-loop jumps th_run_until ran before it saw pc = end */
    CHECK(t->h.instret - before >= 3000);
    CHECK(t->h.instret - before <= 3000 + 16);
    /* a self-loop chained to itself: one jit_exec call returns within its budget */
    before = t->h.instret;
    jit_exec(&t->h, 50);
    CHECK_EQ(t->h.pc, end);
    CHECK(t->h.instret - before >= 1);
    CHECK(t->h.instret - before <= 50);
    th_free(t);
}

/* A page record costs its 4 KiB copy and a table the size of its blocks, not a flat table with
 * an entry per 2-byte slot (which made a record 12 KiB: 12 MiB of a VM's RSS at 1024 records):
 * 64 code pages of one block each add less than 6 KiB of heap apiece. mallinfo2 counts this
 * thread's (the main) arena; under ASan it counts nothing and the bound holds trivially. */
TEST(jit_page_records_are_small)
{
    struct th *t = th_new_jit(0);
    const uint64_t base = TH_CODE + 0x10000; /* above the trap vectors */
    for (unsigned pg = 0; pg < 64; pg++) {
        th_org(t, base + pg * 4096);
        th_emit(t, I_ADDI(5, 5, 1));
        th_emit(t, I_JAL(0, 4096 - 4)); /* the next page */
    }
    uint64_t end = base + 64 * 4096;
    th_org(t, end);
    th_emit(t, I_SELF_LOOP());
    size_t before = mallinfo2().uordblks;
    t->h.pc = base;
    CHECK_EQ(th_run_until(t, end, 100), end);
    CHECK_EQ(t->h.x[5], 64);
    size_t grew = mallinfo2().uordblks - before;
    if (grew >= 64 * 6144) fprintf(stderr, "  64 page records took %zu bytes\n", grew);
    CHECK(grew < 64 * 6144);
    th_free(t);
}

/* An exit to a block of the same page translated after it is patched to jump there, and a
 * patched jump never outlives the code it leads to: once the target is rewritten and a fence.i
 * executed, the new code runs (the page's record is refilled, the linked block unreachable). */
TEST(jit_exit_linked_to_a_later_block)
{
    struct th *t = th_new_jit(0);
    const uint64_t a = TH_CODE + 0x10000, b = a + 0x100;
    th_org(t, a);
    th_emit(t, I_ADDI(6, 6, 1));
    th_emit(t, I_JAL(0, 0x100 - 4)); /* to b, translated after this block */
    th_org(t, b);
    uint64_t bi = th_emit(t, I_ADDI(5, 5, -1));
    th_emit(t, I_BNE(5, 0, -0x104)); /* back to a, translated before */
    uint64_t end = th_emit(t, I_SELF_LOOP());
    t->h.x[5] = 1000;
    t->h.pc = a;
    uint64_t before = t->h.instret;
    CHECK_EQ(th_run_until(t, end, 1000), end);
    CHECK_EQ(t->h.x[6], 1000);
    CHECK(t->h.instret - before >= 4000);
    CHECK(t->h.instret - before <= 4000 + 16);
    struct jit_stats st;
    jit_get_stats(&t->h, &st);
    CHECK(st.linked >= 1);
    th_w32(t, bi, I_ADDI(5, 5, -2));
    dcache_flush(&t->h); /* fence.i */
    t->h.x[5] = 1000;
    t->h.x[6] = 0;
    t->h.pc = a;
    CHECK_EQ(th_run_until(t, end, 1000), end);
    CHECK_EQ(t->h.x[6], 500);
    th_free(t);
}

/* Calls from one page into another and returns (jal/jalr through the dispatch trampoline and
 * the jump cache), 500 round trips: the count and instret are exact, and the x1 links right. */
TEST(jit_cross_page_calls_exact)
{
    struct th *t = th_new_jit(0);
    const uint64_t fn = TH_CODE + 0x3000; /* another page */
    t->h.x[5] = 500;
    uint64_t loop = th_emit(t, I_JAL(1, (int32_t)(fn - (TH_CODE + 0))));
    th_emit(t, I_ADDI(5, 5, -1));
    th_emit(t, I_BNE(5, 0, -8));
    uint64_t end = th_emit(t, I_SELF_LOOP());
    th_org(t, fn);
    th_emit(t, I_ADDI(6, 6, 1));
    th_emit(t, I_JALR(0, 1, 0)); /* ret */
    (void)loop;
    uint64_t before = t->h.instret;
    CHECK_EQ(th_run_until(t, end, 1000), end);
    CHECK_EQ(t->h.x[6], 500);
    CHECK_EQ(t->h.x[1], TH_CODE + 4);
    CHECK(t->h.instret - before >= 500 * 5);
    CHECK(t->h.instret - before <= 500 * 5 + 16);
    th_free(t);
}

/* A loop whose two blocks are in two pages: their exits to each other are far links (direct
 * jumps, emit_far_exit), exact in count and instret and bounded by the budget. A link must not
 * outlive what it was made for: remapping the target's virtual page to other code (and
 * sfence.vma'ing it), and changing the code of a target page (and fence.i), each run the new
 * code. */
TEST(jit_far_links_follow_remaps_and_code_changes)
{
    struct th *t = th_new_jit(0);
    uint64_t root = th_pt_alloc(t);
    const uint64_t va = 0x40000000, vb = va + 0x1000;
    const uint64_t pa = TH_CODE + 0x20000, pb = pa + 0x1000, pb2 = pa + 0x2000;
    const uint64_t flags = PTE_V_ | PTE_R_ | PTE_X_ | PTE_A_;
    th_map(t, root, 3, va, pa, 0, flags);
    th_map(t, root, 3, vb, pb, 0, flags);
    th_pmp_allow_all(t);
    th_org(t, pa);
    uint64_t a0 = th_emit(t, I_ADDI(5, 5, -1));
    th_emit(t, I_JAL(0, 0x1000 - 4)); /* to vb */
    for (unsigned v = 0; v < 2; v++) {
        th_org(t, v ? pb2 : pb);
        th_emit(t, I_ADDI(6, 6, (int32_t)v + 1)); /* pb2 adds 2 */
        th_emit(t, I_BEQ(5, 0, 8));
        th_emit(t, I_JAL(0, -0x1000 - 8)); /* back to va */
        th_emit(t, I_SELF_LOOP());
    }
    const uint64_t end = vb + 12;
    th_csrw(t, CSR_SATP_N, SATP_SV39 | (root >> 12));
    t->h.priv = PRV_S;
    hart_update_mode(&t->h);

    struct jit_stats st0, st1;
    jit_get_stats(&t->h, &st0);
    t->h.x[5] = 1000;
    t->h.pc = va;
    uint64_t before = t->h.instret;
    CHECK_EQ(th_run_until(t, end, 1000), end);
    CHECK_EQ(t->h.x[6], 1000);
    CHECK(t->h.instret - before >= 5000);
    CHECK(t->h.instret - before <= 5000 + 16);
    jit_get_stats(&t->h, &st1);
    CHECK(st1.far_linked - st0.far_linked >= 2); /* both exits */
    CHECK(st1.blocks - st0.blocks <= 4);
    /* every far jump counts against the budget */
    t->h.x[5] = 1000000;
    t->h.pc = va;
    before = t->h.instret;
    jit_exec(&t->h, 50);
    CHECK(t->h.instret - before >= 2);
    CHECK(t->h.instret - before <= 3 * 50 + 3);

    /* vb now maps other code (the TLB entry fenced as sfence.vma does) */
    th_map(t, root, 3, vb, pb2, 0, flags);
    tlb_flush_page(&t->h, vb);
    t->h.x[5] = 1000;
    t->h.x[6] = 0;
    t->h.pc = va;
    CHECK_EQ(th_run_until(t, end, 1000), end);
    CHECK_EQ(t->h.x[6], 2000);

    /* the code in va's page changes (then fence.i) */
    th_w32(t, a0, I_ADDI(5, 5, -2));
    dcache_flush(&t->h);
    t->h.x[5] = 1000;
    t->h.x[6] = 0;
    t->h.pc = vb; /* enter at the far side: its link to va is what is tested */
    CHECK_EQ(th_run_until(t, end, 1000), end);
    CHECK_EQ(t->h.x[6], 2 + 2 * 500);
    th_free(t);
}

/* 32-bit results (RISC-V sign-extends them to 64 bits) wherever something reads them: a
 * 64-bit ALU operation, a branch compare, an address, a 64-bit and a 32-bit store, the next
 * 32-bit operation, a block exit, a slow path and a fault. Each case is compared with the
 * interpreter, on values whose bit 31 is set. (Written for an experiment that left the sign
 * extension until a 64-bit read; it measured no gain and was not kept.) */
static void w_program(struct th *t, uint64_t *end)
{
    th_org(t, TH_CODE + 0x10000);
    th_emit(t, I_SD(0, 12, 16));         /* the data page in the write TLB: the stores below hit */
    th_emit(t, I_JAL(0, 4));             /* the block below is another */
    th_emit(t, I_ADDIW(6, 5, 1));        /* 0x7fffffff + 1: negative */
    th_emit(t, I_ADDW(7, 6, 6));         /* 32-bit chain: 0 */
    th_emit(t, I_SUBW(8, 7, 6));         /* 0x80000000 */
    th_emit(t, I_MULW(9, 8, 6));         /* 0 */
    th_emit(t, I_SLLIW(18, 5, 1));       /* 0xfffffffe */
    th_emit(t, I_SRAIW(19, 18, 1));      /* -1 */
    th_emit(t, I_SW(8, 12, 0));          /* 32-bit store: 0x80000000 */
    th_emit(t, I_SD(6, 12, 8));          /* 64-bit store: sign-extended */
    th_emit(t, I_ADD(20, 6, 8));         /* 64-bit add of two */
    th_emit(t, I_SLLW(21, 6, 5));        /* count from a 64-bit value's low bits */
    th_emit(t, I_BLT(6, 0, 8));          /* signed compare: taken */
    th_emit(t, I_ADDI(22, 0, 1));        /* skipped */
    th_emit(t, I_ADDIW(23, 18, 0x100));  /* sext.w-like */
    th_emit(t, I_LD(24, 13, 0));         /* TLB miss: the slow path, then on */
    th_emit(t, I_ADDIW(25, 19, -0x7ff)); /* pending at the fault below */
    th_emit(t, I_ADDIW(26, 18, 3));
    th_emit(t, I_LD(27, 14, 0)); /* faults: h->x as the interpreter's at the trap */
    *end = th_emit(t, I_SELF_LOOP());
}

/* The interpreter (engine 0) or the JIT with w_program loaded; x14 is the last load's base. */
static struct th *w_setup(int engine, uint64_t x14, uint64_t *end)
{
    struct th *t = engine ? th_new_jit(0) : th_new();
    w_program(t, end);
    for (unsigned r = 5; r < 32; r++)
        t->h.x[r] = 0x5555555555555555ull * r;
    t->h.x[5] = 0x7fffffff;
    t->h.x[12] = TH_DATA;
    t->h.x[13] = TH_DATA + 0x3000; /* first touched here */
    t->h.x[14] = x14;
    t->h.pc = TH_CODE + 0x10000;
    return t;
}

TEST(jit_w_results_sign_extended_where_read)
{
    uint64_t want[32], mem[2] = {0, 0}, end;
    for (int engine = 0; engine < 2; engine++) {
        struct th *t = w_setup(engine, TH_UNMAPPED, &end);
        CHECK_EQ(th_run_until(t, TH_MTRAP, 10), TH_MTRAP);
        CHECK_EQ(t->h.mcause, EXC_LOAD_ACCESS);
        if (!engine) {
            memcpy(want, t->h.x, sizeof(want));
            mem[0] = th_r64(t, TH_DATA);
            mem[1] = th_r64(t, TH_DATA + 8);
            CHECK_EQ(want[6], 0xffffffff80000000ull); /* the program does what it says */
            CHECK_EQ(mem[0] & 0xffffffffull, 0x80000000ull);
        } else {
            for (unsigned r = 1; r < 32; r++)
                CHECK_EQ(t->h.x[r], want[r]);
            CHECK_EQ(th_r64(t, TH_DATA), mem[0]);
            CHECK_EQ(th_r64(t, TH_DATA + 8), mem[1]);
        }
        th_free(t);
    }
    /* the same run to the end with the fault's address mapped: the block's exit */
    for (int engine = 0; engine < 2; engine++) {
        struct th *t = w_setup(engine, TH_DATA + 0x5000, &end);
        CHECK_EQ(th_run_until(t, end, 10), end);
        if (!engine)
            memcpy(want, t->h.x, sizeof(want));
        else
            for (unsigned r = 1; r < 32; r++)
                CHECK_EQ(t->h.x[r], want[r]);
        th_free(t);
    }
}

/* F/D loads, stores and arithmetic inside a block (translated since FLD/FSD were the
 * interpreter steps a Linux guest ran most): NaN boxing of FLW, a page-crossing FLD on the slow
 * path, FS set dirty; with mstatus.FS off, or a reserved rounding mode, the instruction traps
 * as an illegal instruction with exact mepc, mtval and instret. */
TEST(jit_fp_loads_stores_and_traps)
{
    struct th *t = th_new_jit(0);
    th_csrw(t, CSR_MSTATUS_N, th_csrr(t, CSR_MSTATUS_N) | (1ull << 13)); /* FS Initial */
    th_w64(t, TH_DATA, 0x400921fb54442d18ull);                           /* pi */
    th_w64(t, TH_DATA + 8, 0x3f800000);                                  /* 1.0f */
    th_w64(t, TH_DATA + 24, 0x1111111122222222ull);
    th_w64(t, TH_DATA + 0xff8, 0x8877665544332211ull);
    th_w64(t, TH_DATA + 0x1000, 0x00ffeeddccbbaa99ull);
    t->h.x[10] = TH_DATA;
    t->h.x[11] = TH_DATA + 0xffc;
    th_emit(t, I_FLD(1, 10, 0));
    th_emit(t, I_FLW(2, 10, 8));
    th_emit(t, enc_r(0x53, 3, 0, 1, 1, 0x01)); /* fadd.d f3, f1, f1 */
    th_emit(t, I_FSD(3, 10, 16));
    th_emit(t, I_FSW(2, 10, 24));
    th_emit(t, I_FLD(4, 11, 0)); /* crosses into the next page */
    th_emit(t, I_ADDI(5, 0, 1));
    uint64_t bad_rm = th_emit(t, enc_r(0x53, 6, 5, 1, 1, 0x01)); /* rm 5: reserved */
    th_emit(t, I_SELF_LOOP());
    uint64_t before = t->h.instret;
    CHECK_EQ(th_run_until(t, TH_MTRAP, 1), TH_MTRAP);
    CHECK_EQ(t->h.fp.f[1], 0x400921fb54442d18ull);
    CHECK_EQ(t->h.fp.f[2], 0xffffffff3f800000ull);
    CHECK_EQ(t->h.fp.f[3], 0x401921fb54442d18ull);
    CHECK_EQ(th_r64(t, TH_DATA + 16), 0x401921fb54442d18ull);
    CHECK_EQ(th_r64(t, TH_DATA + 24), 0x111111113f800000ull);
    CHECK_EQ(t->h.fp.f[4], 0xccbbaa9988776655ull);
    CHECK_EQ((t->h.mstatus >> 13) & 3, 3); /* Dirty */
    CHECK_EQ(t->h.mcause, EXC_ILLEGAL_INSN);
    CHECK_EQ(t->h.mepc, bad_rm);
    CHECK_EQ(t->h.mtval, enc_r(0x53, 6, 5, 1, 1, 0x01));
    CHECK_EQ(t->h.instret - before, 7);
    CHECK_EQ(t->h.x[5], 1);

    /* FS off: the FLD in the middle of the next block traps, nothing after it runs */
    th_csrw(t, CSR_MSTATUS_N, th_csrr(t, CSR_MSTATUS_N) & ~(3ull << 13));
    uint64_t start = th_emit(t, I_ADDI(7, 0, 2));
    uint64_t fld = th_emit(t, I_FLD(8, 10, 0));
    th_emit(t, I_ADDI(9, 0, 3));
    th_emit(t, I_SELF_LOOP());
    t->h.pc = start;
    t->h.priv = PRV_M;
    t->h.fp.f[8] = 0x55;
    before = t->h.instret;
    CHECK_EQ(th_run_until(t, TH_MTRAP, 1), TH_MTRAP);
    CHECK_EQ(t->h.mcause, EXC_ILLEGAL_INSN);
    CHECK_EQ(t->h.mepc, fld);
    CHECK_EQ(t->h.instret - before, 1);
    CHECK_EQ(t->h.x[7], 2);
    CHECK_EQ(t->h.x[9], 0);
    CHECK_EQ(t->h.fp.f[8], 0x55);
    struct jit_stats st;
    jit_get_stats(&t->h, &st);
    CHECK(st.blocks >= 2);
    th_free(t);
}

/* Register caching: guest registers used twice or more in a block live in host registers
 * too. Whatever writes them behind the block's back must be seen by the rest of the block: a
 * CSR read (an interpreter step), a load on the slow path (crossing a page), a helper call
 * (div), and the slow path's call must not lose the other cached values. */
TEST(jit_cached_registers_follow_every_writer)
{
    struct th *t = th_new_jit(0);
    th_csrw(t, CSR_MSCRATCH_N, 1000);
    th_w64(t, TH_DATA + 0xffc, 0x0000000500000000ull); /* bytes 0xffc..0x1003 */
    t->h.x[10] = TH_DATA + 0xffc;
    th_emit(t, I_ADDI(5, 0, 7));
    th_emit(t, I_ADDI(6, 5, 1));               /* x6 = 8 */
    th_emit(t, I_CSRRS(5, CSR_MSCRATCH_N, 0)); /* x5 = 1000 by the interpreter */
    th_emit(t, I_ADD(6, 6, 5));                /* x6 = 1008 */
    th_emit(t, I_LD(7, 10, 0));                /* crosses the page: slow path, x7 = 5 << 32 */
    th_emit(t, I_ADD(8, 7, 6));                /* x8 = (5 << 32) + 1008 */
    th_emit(t, I_DIV(9, 8, 5));                /* helper call */
    th_emit(t, I_ADD(9, 9, 6));
    th_emit(t, I_ADD(11, 5, 7));
    th_emit(t, I_ADD(11, 11, 8));
    th_emit(t, I_SELF_LOOP());
    CHECK_EQ(th_run_until(t, TH_CODE + 40, 2), TH_CODE + 40);
    CHECK_EQ(t->h.x[5], 1000);
    CHECK_EQ(t->h.x[6], 1008);
    CHECK_EQ(t->h.x[7], 5ull << 32);
    CHECK_EQ(t->h.x[8], (5ull << 32) + 1008);
    CHECK_EQ(t->h.x[9], ((5ull << 32) + 1008) / 1000 + 1008);
    CHECK_EQ(t->h.x[11], 1000 + (5ull << 32) + (5ull << 32) + 1008);
    th_free(t);
}

/* Write-back register caching: registers a block uses several times live in host registers
 * and reach h->x only where the block leaves. A side exit (a taken branch), a store of a
 * cached value, a misaligned load inside a page (fast path) and one crossing the page (slow
 * path), and a fault in the middle of the block must each see every earlier write, and no
 * write after them. */
TEST(jit_write_back_at_every_exit)
{
    struct th *t = th_new_jit(0);
    th_w64(t, TH_DATA, 0x8877665544332211ull);
    th_w64(t, TH_DATA + 0xff8, 0x0706050403020100ull);
    th_w64(t, TH_DATA + 0x1000, 0x0f0e0d0c0b0a0908ull);
    th_emit(t, I_ADDI(5, 0, 3));
    th_emit(t, I_ADD(5, 5, 5));  /* x5 = 6 */
    th_emit(t, I_ADDI(6, 5, 1)); /* x6 = 7 */
    th_emit(t, I_ADD(6, 6, 5));  /* x6 = 13 */
    th_emit(t, I_BEQ(10, 0, 4 * 11));
    th_emit(t, I_ADD(5, 5, 6));  /* x5 = 19 */
    th_emit(t, I_SD(5, 12, 16)); /* mem[TH_DATA + 16] = 19 */
    th_emit(t, I_LW(7, 12, 1));  /* misaligned, inside the page: 0x55443322 */
    th_emit(t, I_LD(8, 13, 0));  /* crosses the page: 0x0b0a090807060504 */
    th_emit(t, I_ADD(7, 7, 5));  /* x7 = 0x55443322 + 19 */
    th_emit(t, I_ADD(6, 6, 7));  /* x6 = 13 + x7 */
    uint64_t ld = th_emit(t, I_LD(9, 11, 0));
    th_emit(t, I_ADD(5, 5, 5)); /* never runs: the load faults */
    th_emit(t, I_ADD(6, 6, 6));
    th_emit(t, I_SELF_LOOP());
    uint64_t side = th_emit(t, I_SELF_LOOP()); /* the BEQ's target */
    CHECK_EQ(side, TH_CODE + 4 * 15);

    /* x10 = 0: the branch leaves the block with x5 and x6 dirty */
    t->h.x[12] = TH_DATA;
    t->h.x[13] = TH_DATA + 0xffc;
    uint64_t before = t->h.instret;
    CHECK_EQ(th_run_until(t, side, 4), side);
    CHECK_EQ(t->h.x[5], 6);
    CHECK_EQ(t->h.x[6], 13);
    CHECK(t->h.instret - before >= 5); /* and the self-loop's jumps within the budget */
    CHECK(t->h.instret - before <= 5 + 16);

    /* x10 = 1: on to the load from an unmapped address, which faults */
    t->h.pc = TH_CODE;
    t->h.x[10] = 1;
    t->h.x[11] = TH_UNMAPPED;
    t->h.x[9] = 0x99;
    before = t->h.instret;
    CHECK_EQ(th_run_until(t, TH_MTRAP, 4), TH_MTRAP);
    CHECK_EQ(t->h.mepc, ld);
    CHECK_EQ(t->h.mcause, EXC_LOAD_ACCESS);
    CHECK_EQ(t->h.instret - before, 11);
    CHECK_EQ(t->h.x[5], 19);
    CHECK_EQ(th_r64(t, TH_DATA + 16), 19);
    CHECK_EQ(t->h.x[7], 0x55443322ull + 19);
    CHECK_EQ(t->h.x[8], 0x0b0a090807060504ull);
    CHECK_EQ(t->h.x[6], 13 + 0x55443322ull + 19);
    CHECK_EQ(t->h.x[9], 0x99);
    th_free(t);
}

/* A slow path's call keeps the callee-saved host registers, so its stub reloads only the
 * caller-saved ones, and those loaded between the jump to the stub and the fast path's
 * continuation: here a store's data register (x20), cached in a callee-saved host register
 * since six registers are used more, is first read after the TLB check, and the store takes
 * the slow path (MMIO). The block reads x20 again afterwards, from its host register; then a
 * load from the device overwrites x20 (live in its host register): the stub reloads rd. */
TEST(jit_slow_path_reloads_what_the_fast_path_loaded)
{
    struct th *t = th_new_jit(0);
    for (unsigned r = 5; r <= 10; r++) /* x5-x10: the six most used, host registers 0-5 */
        for (unsigned k = 0; k < 3; k++)
            th_emit(t, I_ADDI(r, r, 1));
    th_emit(t, I_SD(20, 11, 0)); /* x11 and x20 next: callee-saved host registers */
    th_emit(t, I_SD(20, 11, 8));
    th_emit(t, I_SD(20, 11, 16));
    th_emit(t, I_ADD(21, 20, 0));
    th_emit(t, I_LD(20, 11, 32));
    th_emit(t, I_ADD(22, 20, 0));
    uint64_t end = th_emit(t, I_SELF_LOOP());
    t->h.x[11] = TH_DEV_BASE;
    t->h.x[20] = 0x1234567890abcdefull;
    memcpy(t->dev.mem + 32, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
    CHECK_EQ(th_run_until(t, end, 4), end);
    CHECK_EQ(t->dev.nwrites, 3);
    CHECK_EQ(t->dev.last_val, 0x1234567890abcdefull);
    CHECK_EQ(t->h.x[21], 0x1234567890abcdefull);
    CHECK_EQ(t->h.x[20], 0x8877665544332211ull);
    CHECK_EQ(t->h.x[22], 0x8877665544332211ull);
    CHECK_EQ(t->h.x[5], 3);
    CHECK_EQ(t->h.x[10], 3);
    th_free(t);
}

/* VESSEL_JIT_DUMP=PC logs the block translated at PC, guest and host side (scripts/jit-dump.py
 * disassembles it), and only that block; the compile time is counted. */
TEST(jit_dump_logs_one_block)
{
    char path[] = "/tmp/vessel-jit-dump-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    enum log_level old = log_current_level;
    CHECK_EQ(log_set_file(path), 0);
    log_current_level = LOG_INFO;
    char pc[32];
    snprintf(pc, sizeof(pc), "%llx", (unsigned long long)TH_CODE);
    setenv("VESSEL_JIT_DUMP", pc, 1);
    struct th *t = th_new_jit(0);
    unsetenv("VESSEL_JIT_DUMP");
    th_emit(t, I_ADDI(5, 0, 1));
    th_emit(t, I_JAL(0, 8)); /* a second block at TH_CODE + 12: not dumped */
    th_emit(t, I_ADDI(5, 0, 9));
    th_emit(t, I_ADDI(6, 5, 2));
    th_emit(t, I_SELF_LOOP());
    CHECK_EQ(th_run_until(t, TH_CODE + 16, 4), TH_CODE + 16);
    struct jit_stats st;
    jit_get_stats(&t->h, &st);
    th_free(t);
    log_set_file(NULL);
    log_current_level = old;
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    char buf[16384];
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f) fclose(f);
    unlink(path);
    buf[n] = 0;
    CHECK(strstr(buf, "jit dump: block 0x80000000: 2 guest instructions") != NULL);
    CHECK(strstr(buf, "jit dump: guest 0x80000000: 00100293 LI rd=x5") != NULL);
    /* li x5, 1: mov qword [rbx + 40], 1 (blocks have no prologue: the dispatcher enters
     * them through a shared one) */
    CHECK(strstr(buf, "jit dump: host 0x80000000 +0000: 48c7432801000000") != NULL);
    CHECK(strstr(buf, "block 0x8000000c") == NULL);
    CHECK(st.blocks >= 2 && st.compile_ns > 0);
}

/* An OP-FP instruction the helper rejects (a reserved rounding mode) is raised by an
 * interpreter step after the helper's call: the cached registers were written back before
 * the call, which clobbered their host registers, so the step must not write them back
 * again. Here x5-x7 are cached and dirty when the block reaches the instruction. */
TEST(jit_rejected_fp_op_keeps_dirty_registers)
{
    struct th *t = th_new_jit(0);
    th_csrw(t, CSR_MSTATUS_N, th_csrr(t, CSR_MSTATUS_N) | (1ull << 13)); /* FS Initial */
    for (unsigned r = 5; r <= 7; r++)
        for (unsigned k = 0; k < 3; k++)
            th_emit(t, I_ADDI(r, r, (int32_t)r));
    uint64_t bad_rm = th_emit(t, enc_r(0x53, 6, 5, 1, 1, 0x01)); /* rm 5: reserved */
    th_emit(t, I_SELF_LOOP());
    uint64_t before = t->h.instret;
    CHECK_EQ(th_run_until(t, TH_MTRAP, 1), TH_MTRAP);
    CHECK_EQ(t->h.mcause, EXC_ILLEGAL_INSN);
    CHECK_EQ(t->h.mepc, bad_rm);
    CHECK_EQ(t->h.instret - before, 9);
    CHECK_EQ(t->h.x[5], 15);
    CHECK_EQ(t->h.x[6], 18);
    CHECK_EQ(t->h.x[7], 21);
    th_free(t);
}

/* A rotate written as shift, shift, or (sha256's sigma functions) is one x86 rotate when the
 * shifts' own results are dead: the 32-bit form sign-extends, the 64-bit one does not, the
 * shifts may come in either order. When a shift's result is still read, or a load that may
 * fault comes before the block overwrites it, the three run as written: the result and
 * every register at the fault are exact. */
TEST(jit_rotate_fused_only_when_unseen)
{
    struct th *t = th_new_jit(0);
    t->h.x[15] = 0x00000000c0000003ull; /* rotated right by 6 (32 bits): 0x0f000000 */
    t->h.x[13] = 0x8000000000000001ull;
    th_emit(t, I_SLLIW(23, 15, 26)); /* rorw x14, x15, 6 */
    th_emit(t, I_SRLIW(14, 15, 6));
    th_emit(t, I_OR(14, 14, 23));
    th_emit(t, I_SRLI(24, 13, 4)); /* ror x25, x13, 4 (the shifts the other way round) */
    th_emit(t, I_SLLI(23, 13, 60));
    th_emit(t, I_OR(25, 23, 24));
    th_emit(t, I_SLLIW(26, 15, 31)); /* rorw x28, x15, 1: sign-extends */
    th_emit(t, I_SRLIW(27, 15, 1));
    th_emit(t, I_OR(28, 26, 27));
    th_emit(t, I_ADDI(23, 0, 1)); /* x23, x24, x26, x27 overwritten: the shifts were unseen */
    th_emit(t, I_ADDI(24, 0, 2));
    th_emit(t, I_ADDI(26, 0, 3));
    th_emit(t, I_ADDI(27, 0, 4));
    uint64_t end = th_emit(t, I_SELF_LOOP());
    CHECK_EQ(th_run_until(t, end, 4), end);
    CHECK_EQ(t->h.x[14], 0x000000000f000000ull);
    CHECK_EQ(t->h.x[25], 0x1800000000000000ull);
    CHECK_EQ(t->h.x[28], 0xffffffffe0000001ull);
    CHECK_EQ(t->h.x[23], 1);
    CHECK_EQ(t->h.x[27], 4);
    struct jit_stats st;
    jit_get_stats(&t->h, &st);
    CHECK_EQ(st.fused, 3);
    th_free(t);

    /* a shift's result read afterwards, then one live at a fault: not fused, exact */
    t = th_new_jit(0);
    t->h.x[15] = 0x00000000c0000003ull;
    t->h.x[10] = TH_UNMAPPED;
    th_emit(t, I_SLLIW(23, 15, 26));
    th_emit(t, I_SRLIW(14, 15, 6));
    th_emit(t, I_OR(14, 14, 23));
    th_emit(t, I_ADD(5, 23, 0)); /* reads x23 */
    th_emit(t, I_SLLIW(24, 15, 26));
    th_emit(t, I_SRLIW(22, 15, 6));
    th_emit(t, I_OR(21, 22, 24));
    uint64_t ld = th_emit(t, I_LD(7, 10, 0)); /* faults with x22 and x24 as the shifts left them */
    th_emit(t, I_ADDI(24, 0, 1));
    th_emit(t, I_ADDI(22, 0, 1));
    th_emit(t, I_SELF_LOOP());
    CHECK_EQ(th_run_until(t, TH_MTRAP, 4), TH_MTRAP);
    CHECK_EQ(t->h.mepc, ld);
    CHECK_EQ(t->h.x[14], 0x000000000f000000ull);
    CHECK_EQ(t->h.x[5], 0x000000000c000000ull);
    CHECK_EQ(t->h.x[23], 0x000000000c000000ull);
    CHECK_EQ(t->h.x[24], 0x000000000c000000ull);
    CHECK_EQ(t->h.x[22], 0x0000000003000000ull);
    CHECK_EQ(t->h.x[21], 0x000000000f000000ull);
    jit_get_stats(&t->h, &st);
    CHECK_EQ(st.fused, 0);
    th_free(t);
}

/* Code pages that share a set of the page-record index keep their records: 40 pages, two in
 * each of 20 sets (with 16 MiB of RAM the index's hash gives every set two pages: x and
 * 0x800 + (x ^ 1), jit.c jit_page), run round after round as one loop. Each record filled
 * invalidates the jump cache, so a direct-mapped index (one way) would make the two pages of
 * a set take the record from each other on every round and re-translate for ever. */
TEST(jit_pages_sharing_a_set_keep_their_records)
{
    struct th *t = th_new_jit(0);
    uint64_t pages[40];
    for (unsigned k = 0; k < 20; k++) {
        unsigned x = 0x20 + k;
        pages[2 * k] = TH_RAM_BASE + ((uint64_t)x << 12);
        pages[2 * k + 1] = TH_RAM_BASE + ((uint64_t)(0x800 + (x ^ 1)) << 12);
    }
    for (unsigned k = 0; k < 40; k++) {
        uint64_t next = pages[(k + 1) % 40] - TH_RAM_BASE;
        th_org(t, pages[k]);
        th_emit(t, I_ADDI(5, 5, 1));
        th_emit(t, I_LUI(6, (int32_t)next));
        th_emit(t, I_ADD(6, 6, 7));
        th_emit(t, I_JALR(0, 6, 0));
    }
    t->h.x[7] = TH_RAM_BASE;
    t->h.pc = pages[0];
    for (int i = 0; i < 20; i++)
        jit_exec(&t->h, 2048);
    CHECK(t->h.x[5] >= 40 * 100); /* a hundred rounds at least */
    struct jit_stats st;
    jit_get_stats(&t->h, &st);
    CHECK_EQ(st.evicted, 0);
    CHECK(st.blocks <= 40 + 4);
    th_free(t);
}

/* LR/SC and AMOs run inline (emit_atomic): every operation, both widths, against the
 * interpreter from the same state. Twice round a loop, so the second time every access hits
 * the TLB (the first misses go to the stub's interpreter step); registers cached and not,
 * rd = x0, rd = rs2; an SC that stores, one without a reservation, one whose value changed;
 * then a misaligned AMO and a misaligned LR in the middle of a block (mepc, mcause, mtval and
 * instret exact). */
struct engine_run {
    uint64_t x[32], mem[20], instret, pc, mepc, mcause, mtval, mstatus, sscratch, mscratch;
    uint64_t fcsr, steps, memsum, loops, followed, selects;
};

static void atomics_program(struct th *t, uint64_t misaligned)
{
    static const unsigned f5[] = {AMO_SWAP, AMO_ADD, AMO_XOR,  AMO_AND, AMO_OR,
                                  AMO_MIN,  AMO_MAX, AMO_MINU, AMO_MAXU};
    static const uint64_t init[] = {
        0x8000000000000001ull, 5, 0xfffffffffffffff0ull, 0x7fffffff80000000ull, 0x123456789ull,
        0xffffffff7fffffffull, 0, 0x00000000ffffffffull, 0xfedcba9876543210ull};
    for (unsigned i = 0; i < 20; i++)
        th_w64(t, TH_DATA + 8 * i, init[i % 9] ^ (uint64_t)i << 40);
    t->h.x[10] = TH_DATA;
    t->h.x[11] = 0xffffffff80000005ull;
    t->h.x[12] = 7;
    t->h.x[13] = 0x8000000000000001ull;
    t->h.x[14] = (uint64_t)-3;
    th_emit(t, I_ADDI(31, 0, 2));
    uint64_t loop = th_here(t);
    for (unsigned w = 0; w < 2; w++)
        for (unsigned i = 0; i < 9; i++) {
            unsigned rs2 = 11 + (i + w) % 4, rd = 15 + (i % 8);
            if (i == 3) rd = 0;
            if (i == 6) rd = rs2;
            th_emit(t, I_ADDI(20, 10, (int32_t)(8 * i + 72 * w)));
            th_emit(t, I_AMO(f5[i], w, rd, 20, rs2));
            th_emit(t, I_ADD(30, 30, rd)); /* rd is read after: a cached rd must be right */
        }
    th_emit(t, I_LR_D(5, 10));
    th_emit(t, I_ADDI(5, 5, 1));
    th_emit(t, I_SC_D(6, 5, 10)); /* stores: x6 = 0 */
    th_emit(t, I_SC_D(7, 5, 10)); /* no reservation: x7 = 1 */
    th_emit(t, I_ADDI(20, 10, 8));
    th_emit(t, I_LR_W(8, 20));
    th_emit(t, I_ADDI(26, 8, 1));
    th_emit(t, I_SW(26, 20, 0));   /* the reserved word changes */
    th_emit(t, I_SC_W(9, 14, 20)); /* fails: x9 = 1 */
    th_emit(t, I_LR_W(21, 20));
    th_emit(t, I_SC_W(22, 13, 20)); /* stores the low half of x13 */
    th_emit(t, I_ADDI(31, 31, -1));
    th_emit(t, I_BNE(31, 0, (int32_t)(loop - th_here(t))));
    if (misaligned) { /* a fault after a few instructions of one block */
        th_emit(t, I_ADDI(23, 0, 11));
        th_emit(t, I_ADDI(20, 10, (int32_t)(misaligned & 0xff)));
        th_emit(t, misaligned & 0x100 ? I_AMO(AMO_ADD, 1, 24, 20, 12) : I_LR_W(24, 20));
        th_emit(t, I_ADDI(25, 0, 33));
    }
    th_emit(t, I_ECALL()); /* stops with instret exact (a self-loop would count its turns) */
}

/* Run prog(t, arg) until it traps (it ends with ecall), in the JIT or the interpreter, for at
 * most `calls` calls of the engine. */
static void engine_run_calls(bool jit, void (*prog)(struct th *, uint64_t), uint64_t arg,
                             struct engine_run *r, int calls)
{
    struct th *t;
    if (jit) {
        t = th_new_jit(0);
    } else {
        char *saved = getenv("VESSEL_TEST_ENGINE") ? strdup(getenv("VESSEL_TEST_ENGINE")) : NULL;
        unsetenv("VESSEL_TEST_ENGINE");
        t = th_new();
        if (saved) setenv("VESSEL_TEST_ENGINE", saved, 1);
        free(saved);
        CHECK(t->h.jit == NULL);
    }
    prog(t, arg);
    th_run_until(t, TH_MTRAP, calls);
    memcpy(r->x, t->h.x, sizeof(r->x));
    for (unsigned i = 0; i < 20; i++)
        r->mem[i] = th_r64(t, TH_DATA + 8 * i);
    /* FNV-1a of TH_DATA's first 64 KiB and RAM's last 4 KiB */
    r->memsum = 0xcbf29ce484222325ull;
    for (uint64_t a = TH_DATA; a < TH_DATA + 0x10000; a++)
        r->memsum = (r->memsum ^ th_r8(t, a)) * 0x100000001b3ull;
    for (uint64_t a = TH_RAM_BASE + TH_RAM_SIZE - 0x1000; a < TH_RAM_BASE + TH_RAM_SIZE; a++)
        r->memsum = (r->memsum ^ th_r8(t, a)) * 0x100000001b3ull;
    r->instret = t->h.instret;
    r->pc = t->h.pc;
    r->mepc = t->h.mepc;
    r->mcause = t->h.mcause;
    r->mtval = t->h.mtval;
    r->mstatus = t->h.mstatus;
    r->sscratch = t->h.sscratch;
    r->mscratch = t->h.mscratch;
    r->fcsr = t->h.fp.fflags | t->h.fp.frm << 5;
    struct jit_stats st = {0};
    if (jit) jit_get_stats(&t->h, &st);
    r->steps = st.steps;
    r->loops = st.loops;
    r->followed = st.followed;
    r->selects = st.selects;
    th_free(t);
}

static void engine_run(bool jit, void (*prog)(struct th *, uint64_t), uint64_t arg,
                       struct engine_run *r)
{
    engine_run_calls(jit, prog, arg, r, 200);
}

TEST(jit_atomics_match_the_interpreter)
{
    /* 0: no fault; amoadd.d 2 bytes off; lr.w 1 byte off */
    static const uint64_t mis[] = {0, 0x100 | 2, 1};
    for (unsigned m = 0; m < 3; m++) {
        struct engine_run a, b;
        engine_run(false, atomics_program, mis[m], &a);
        engine_run(true, atomics_program, mis[m], &b);
        for (unsigned i = 1; i < 32; i++)
            if (a.x[i] != b.x[i]) {
                fprintf(stderr, "  case %u: x%u interp %#llx jit %#llx\n", m, i,
                        (unsigned long long)a.x[i], (unsigned long long)b.x[i]);
                test_failures_in_current++;
            }
        for (unsigned i = 0; i < 20; i++)
            if (a.mem[i] != b.mem[i]) {
                fprintf(stderr, "  case %u: dword %u interp %#llx jit %#llx\n", m, i,
                        (unsigned long long)a.mem[i], (unsigned long long)b.mem[i]);
                test_failures_in_current++;
            }
        if (b.instret != a.instret || b.pc != a.pc)
            fprintf(stderr, "  case %u: instret %llu/%llu pc %#llx/%#llx\n", m,
                    (unsigned long long)a.instret, (unsigned long long)b.instret,
                    (unsigned long long)a.pc, (unsigned long long)b.pc);
        CHECK_EQ(b.instret, a.instret);
        CHECK_EQ(b.pc, a.pc);
        CHECK_EQ(a.x[6], 0);
        CHECK_EQ(a.x[7], 1);
        CHECK_EQ(a.x[9], 1);
        CHECK_EQ(a.x[22], 0);
        CHECK_EQ(a.pc, TH_MTRAP);
        CHECK_EQ(b.mepc, a.mepc);
        CHECK_EQ(b.mcause, a.mcause);
        if (!mis[m]) CHECK_EQ(a.mcause, EXC_ECALL_M);
        if (mis[m]) {
            CHECK_EQ(a.mcause, mis[m] & 0x100 ? EXC_STORE_MISALIGNED : EXC_LOAD_MISALIGNED);
            CHECK_EQ(b.mtval, a.mtval);
            CHECK_EQ(a.mtval, TH_DATA + (mis[m] & 0xff));
            CHECK_EQ(b.x[23], 11);
            CHECK_EQ(b.x[25], 0);
        }
    }
    /* the JIT ran them inline: the interpreter stepped only the first misses */
    struct th *t = th_new_jit(0);
    atomics_program(t, 0);
    th_run_until(t, TH_MTRAP, 200);
    CHECK_EQ(t->h.mcause, EXC_ECALL_M);
    struct jit_stats st;
    jit_get_stats(&t->h, &st);
    CHECK(st.steps < 10);
    th_free(t);
}

/* CSR instructions through jit_csr_helper, against the interpreter: reads and writes of data
 * CSRs, sstatus/mstatus interrupt enables cleared (the block goes on) and set (it leaves),
 * counters read right after a write (instret exact), the FP CSRs, uimm forms, rd = x0; then an
 * access to a CSR that does not exist in the middle of a block (the interpreter step raises
 * illegal-instruction with the encoding in mtval). One interpreter step: the final ecall, or
 * the faulting access. */
static void csr_program(struct th *t, uint64_t fault)
{
    t->h.mstatus |= MSTATUS_FS; /* FP on: fcsr accessible */
    t->h.x[5] = 0x1234;
    t->h.x[6] = 0x55;
    t->h.x[7] = ~0ull;
    th_emit(t, I_CSRRW(8, CSR_SSCRATCH_N, 5));
    th_emit(t, I_CSRRS(9, CSR_SSCRATCH_N, 0));
    th_emit(t, I_CSRRW(0, CSR_MSCRATCH_N, 9));
    th_emit(t, I_CSRRC(10, CSR_MSCRATCH_N, 6));
    th_emit(t, I_CSRRSI(11, CSR_MSTATUS_N, 8)); /* MIE set: the block leaves */
    th_emit(t, I_ADDI(12, 11, 1));
    th_emit(t, I_CSRRCI(13, CSR_MSTATUS_N, 8)); /* cleared: it goes on */
    th_emit(t, I_CSRRS(14, CSR_SSTATUS_N, 0));
    th_emit(t, I_CSRRW(0, CSR_MINSTRET_N, 7));
    th_emit(t, I_CSRRS(15, CSR_MINSTRET_N, 0));
    th_emit(t, I_CSRRS(16, CSR_INSTRET_N, 0));
    th_emit(t, I_CSRRS(17, CSR_MCYCLE_N, 0));
    th_emit(t, I_CSRRWI(18, CSR_FRM_N, 3));
    th_emit(t, I_CSRRSI(19, CSR_FFLAGS_N, 5));
    th_emit(t, I_CSRRS(20, CSR_FCSR_N, 0));
    th_emit(t, I_CSRRW(21, CSR_SEPC_N, 5));
    th_emit(t, I_CSRRCI(22, CSR_SEPC_N, 0)); /* uimm 0: a read */
    if (fault) {
        th_emit(t, I_ADDI(23, 0, 11));
        th_emit(t, I_CSRRS(24, 0x7c0, 0)); /* no such CSR */
        th_emit(t, I_ADDI(25, 0, 33));
    }
    th_emit(t, I_ECALL());
}

TEST(jit_csr_ops_match_the_interpreter)
{
    for (unsigned f = 0; f < 2; f++) {
        struct engine_run a, b;
        engine_run(false, csr_program, f, &a);
        engine_run(true, csr_program, f, &b);
        for (unsigned i = 1; i < 32; i++)
            if (a.x[i] != b.x[i]) {
                fprintf(stderr, "  case %u: x%u interp %#llx jit %#llx\n", f, i,
                        (unsigned long long)a.x[i], (unsigned long long)b.x[i]);
                test_failures_in_current++;
            }
        CHECK_EQ(b.instret, a.instret);
        CHECK_EQ(b.pc, a.pc);
        CHECK_EQ(b.mepc, a.mepc);
        CHECK_EQ(b.mcause, a.mcause);
        CHECK_EQ(b.mtval, a.mtval);
        CHECK_EQ(b.mstatus, a.mstatus);
        CHECK_EQ(b.sscratch, a.sscratch);
        CHECK_EQ(b.mscratch, a.mscratch);
        CHECK_EQ(b.fcsr, a.fcsr);
        CHECK_EQ(a.x[9], 0x1234);
        CHECK_EQ(a.x[15], ~0ull); /* the write replaced its own increment */
        CHECK_EQ(a.x[16], 0);     /* and the counter went on */
        CHECK_EQ(a.mcause, (uint64_t)(f ? EXC_ILLEGAL_INSN : EXC_ECALL_M));
        if (f) {
            CHECK_EQ(b.x[23], 11);
            CHECK_EQ(b.x[25], 0);
        }
        CHECK_EQ(b.steps, 1); /* the ecall, or the faulting CSR access (the trap comes first) */
    }
}

/* The x registers in which two runs of variant v differ (each printed). */
static unsigned xregs_differ(const struct engine_run *a, const struct engine_run *b, uint64_t v)
{
    unsigned bad = 0;
    for (unsigned r = 1; r < 32; r++)
        if (a->x[r] != b->x[r]) {
            fprintf(stderr, "  variant %#llx: x%u interp %#llx jit %#llx\n", (unsigned long long)v,
                    r, (unsigned long long)a->x[r], (unsigned long long)b->x[r]);
            bad++;
        }
    return bad;
}

/* A loop entered in its middle (MID), closed by a backward branch to TOP: the block at MID
 * follows the branch (its fall-through a side exit), goes on at TOP and jumps back to its own
 * start with the guest registers kept in host registers (jit.c scan_block, emit_back_edge).
 * v & 7: the closing branch (each kind, taken while x5 > 0, so its opposite is the exit);
 * v & 8: a CSR read inside the loop (a helper call: the registers are written back and
 * loaded again before the jump back); v & 16: the loop runs off RAM's end, the load in the
 * followed part (TOP) faulting; v & 32: the load at the block's start (MID) faulting; v & 64:
 * closed by a forward exit test and a plain jump (j TOP) instead of the branch. */
static void loop_program(struct th *t, uint64_t v)
{
    bool fault = v & 0x30;
    t->h.x[5] = 300;
    t->h.x[10] = fault ? TH_RAM_BASE + TH_RAM_SIZE - 8 * 100 : TH_DATA;
    t->h.x[12] = 1;
    t->h.mscratch = 0x55;
    for (unsigned i = 0; i < (fault ? 100u : 400u); i++)
        th_w64(t, t->h.x[10] + 8 * i, 0x1000 + i * 77);
    uint64_t jmp = th_emit(t, 0); /* jal x0, MID */
    uint64_t top = th_emit(t, I_ADDI(5, 5, -1));
    th_emit(t, I_ADD(7, 7, 5));
    th_emit(t, I_LW(16, 10, v & 16 ? 4 : -4));
    th_emit(t, I_ADD(9, 9, 16));
    if (v & 8) {
        th_emit(t, I_CSRRS(11, CSR_MSCRATCH_N, 0));
        th_emit(t, I_ADD(9, 9, 11));
    }
    uint64_t mid = th_emit(t, I_ADDI(6, 6, 1));
    th_w32(t, jmp, I_JAL(0, (int32_t)(mid - jmp)));
    th_emit(t, I_LD(8, 10, 0));
    th_emit(t, I_ADD(9, 9, 8));
    th_emit(t, I_SD(9, 10, 0));
    th_emit(t, I_ADDI(10, 10, 8));
    int32_t back = (int32_t)(top - th_here(t));
    if (v & 0x40) { /* the exit test first, then a plain jump back (followed as a no-op) */
        th_emit(t, I_BEQ(5, 0, 8));
        th_emit(t, I_JAL(0, back - 4));
        th_emit(t, I_ECALL());
        return;
    }
    switch (v & 7) {
    case 0: th_emit(t, I_BNE(5, 0, back)); break;
    case 1: th_emit(t, I_BLT(0, 5, back)); break;
    case 2: th_emit(t, I_BGE(5, 12, back)); break;
    case 3: th_emit(t, I_BLTU(0, 5, back)); break;
    case 4: th_emit(t, I_BGEU(5, 12, back)); break;
    default:
        th_emit(t, I_SLTIU(15, 5, 1));
        th_emit(t, I_BEQ(15, 0, back - 4));
        break;
    }
    th_emit(t, I_ECALL());
}

TEST(jit_loop_entered_in_its_middle_matches_the_interpreter)
{
    static const uint64_t variants[] = {0, 1, 2, 3, 4, 5, 8, 0x10, 0x20, 0x19, 0x2d, 0x40, 0x58};
    for (unsigned i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        uint64_t v = variants[i];
        struct engine_run a, b;
        engine_run_calls(false, loop_program, v, &a, 100000);
        engine_run_calls(true, loop_program, v, &b, 100000);
        CHECK_EQ(xregs_differ(&a, &b, v), 0);
        CHECK_EQ(b.memsum, a.memsum);
        CHECK_EQ(b.instret, a.instret);
        CHECK_EQ(b.pc, a.pc);
        CHECK_EQ(b.mepc, a.mepc);
        CHECK_EQ(b.mcause, a.mcause);
        CHECK_EQ(b.mtval, a.mtval);
        CHECK_EQ(a.pc, TH_MTRAP);
        if (v & 0x30) {
            CHECK_EQ(a.mcause, EXC_LOAD_ACCESS);
            CHECK_EQ(a.mtval, TH_RAM_BASE + TH_RAM_SIZE + (v & 16 ? 4 : 0));
            CHECK(a.x[6] > 90 && a.x[6] < 110); /* it ran off the end after ~100 rounds */
        } else {
            CHECK_EQ(a.mcause, EXC_ECALL_M);
            CHECK_EQ(a.x[6], 301);
            CHECK_EQ(a.x[5], 0);
        }
        /* the block at MID went on at TOP and closed the loop inside itself */
        CHECK(b.followed >= 1);
        CHECK(b.loops >= 1);
    }
}

/* A loop inside one block still counts against the budget: one jit_exec call returns. */
TEST(jit_loop_inside_a_block_bounded)
{
    struct th *t = th_new_jit(0);
    loop_program(t, 0);
    t->h.x[5] = 1u << 30;
    for (int call = 0; call < 4; call++) {
        uint64_t before = t->h.instret;
        jit_exec(&t->h, 50);
        CHECK(t->h.instret - before >= 50);
        CHECK(t->h.instret - before <= 50 * JIT_MAX_INSNS);
    }
    CHECK(t->h.x[6] > 100);
    CHECK(t->h.x[5] > 1000);
    th_free(t);
}

/* slli a, x, 32; srli c, a, s as one zero-extension (jit.c emit_zext): zext.w, scaled indices
 * and s > 32, each fused only where the slli's own result is never seen, and exact where it
 * is (read afterwards, or live at a fault). */
TEST(jit_zero_extension_fused_only_when_unseen)
{
    struct th *t = th_new_jit(0);
    t->h.x[6] = 0xfedcba9887654321ull;
    th_emit(t, I_SLLI(5, 6, 32)); /* zext.w x5, x6 */
    th_emit(t, I_SRLI(5, 5, 32));
    th_emit(t, I_SLLI(7, 6, 32)); /* x8 = zext(x6) << 2; x7 overwritten below */
    th_emit(t, I_SRLI(8, 7, 30));
    th_emit(t, I_SLLI(9, 6, 32)); /* x10 = zext(x6) >> 8 */
    th_emit(t, I_SRLI(10, 9, 40));
    th_emit(t, I_SLLI(6, 6, 32)); /* in place: x6 = zext(x6) << 1 */
    th_emit(t, I_SRLI(6, 6, 31));
    th_emit(t, I_ADDI(7, 0, 1));
    th_emit(t, I_ADDI(9, 0, 2));
    uint64_t end = th_emit(t, I_SELF_LOOP());
    CHECK_EQ(th_run_until(t, end, 4), end);
    CHECK_EQ(t->h.x[5], 0x87654321ull);
    CHECK_EQ(t->h.x[8], 0x87654321ull << 2);
    CHECK_EQ(t->h.x[10], 0x876543ull);
    CHECK_EQ(t->h.x[6], 0x87654321ull << 1);
    CHECK_EQ(t->h.x[7], 1);
    CHECK_EQ(t->h.x[9], 2);
    struct jit_stats st;
    jit_get_stats(&t->h, &st);
    CHECK_EQ(st.fused, 4);
    th_free(t);

    /* the slli's result read afterwards, then one live at a fault: not fused, exact */
    t = th_new_jit(0);
    t->h.x[6] = 0xfedcba9887654321ull;
    t->h.x[10] = TH_UNMAPPED;
    th_emit(t, I_SLLI(7, 6, 32));
    th_emit(t, I_SRLI(8, 7, 30));
    th_emit(t, I_ADD(5, 7, 0)); /* reads x7 */
    th_emit(t, I_SLLI(12, 6, 32));
    th_emit(t, I_SRLI(13, 12, 31));
    uint64_t ld = th_emit(t, I_LD(14, 10, 0)); /* faults with x12 as the slli left it */
    th_emit(t, I_ADDI(12, 0, 1));
    th_emit(t, I_SELF_LOOP());
    CHECK_EQ(th_run_until(t, TH_MTRAP, 4), TH_MTRAP);
    CHECK_EQ(t->h.mepc, ld);
    CHECK_EQ(t->h.x[5], 0x8765432100000000ull);
    CHECK_EQ(t->h.x[7], 0x8765432100000000ull);
    CHECK_EQ(t->h.x[8], 0x87654321ull << 2);
    CHECK_EQ(t->h.x[12], 0x8765432100000000ull);
    CHECK_EQ(t->h.x[13], 0x87654321ull << 1);
    jit_get_stats(&t->h, &st);
    CHECK_EQ(st.fused, 0);
    th_free(t);
}

/* slli a, x, s; add c, a, y as one lea (jit.c emit_shadd): each scale, either operand order,
 * y = x, operands read once (in struct hart) or often (host registers), fused only where
 * the slli's own result is never seen, exact where it is (read afterwards, live at a fault). */
TEST(jit_shift_add_fused_only_when_unseen)
{
    struct th *t = th_new_jit(0);
    t->h.x[6] = 0x123456789ull;
    t->h.x[7] = 0x1000;
    t->h.x[11] = 0xffffffffffff0000ull;
    th_emit(t, I_SLLI(5, 6, 1)); /* x8 = x7 + x6 * 2; x5 overwritten below */
    th_emit(t, I_ADD(8, 5, 7));
    th_emit(t, I_SLLI(9, 6, 3)); /* in place, y first: x9 = x11 + x6 * 8 */
    th_emit(t, I_ADD(9, 11, 9));
    th_emit(t, I_SLLI(10, 6, 2)); /* y = x: x12 = x6 * 5 */
    th_emit(t, I_ADD(12, 10, 6));
    th_emit(t, I_SLLI(13, 11, 1)); /* x11 read often: host registers */
    th_emit(t, I_ADD(14, 13, 11));
    th_emit(t, I_ADD(15, 11, 11));
    th_emit(t, I_ADD(15, 15, 11));
    th_emit(t, I_ADDI(5, 0, 1));
    th_emit(t, I_ADDI(10, 0, 2));
    th_emit(t, I_ADDI(13, 0, 3));
    uint64_t end = th_emit(t, I_SELF_LOOP());
    CHECK_EQ(th_run_until(t, end, 4), end);
    CHECK_EQ(t->h.x[8], 0x1000 + 0x123456789ull * 2);
    CHECK_EQ(t->h.x[9], 0xffffffffffff0000ull + 0x123456789ull * 8);
    CHECK_EQ(t->h.x[12], 0x123456789ull * 5);
    CHECK_EQ(t->h.x[14], 0xffffffffffff0000ull * 3);
    CHECK_EQ(t->h.x[15], 0xffffffffffff0000ull * 3);
    CHECK_EQ(t->h.x[5], 1);
    CHECK_EQ(t->h.x[10], 2);
    CHECK_EQ(t->h.x[13], 3);
    struct jit_stats st;
    jit_get_stats(&t->h, &st);
    CHECK_EQ(st.fused, 4);
    th_free(t);

    /* the slli's result read afterwards, then one live at a fault: not fused, exact */
    t = th_new_jit(0);
    t->h.x[6] = 0x123456789ull;
    t->h.x[7] = 0x1000;
    t->h.x[10] = TH_UNMAPPED;
    th_emit(t, I_SLLI(5, 6, 1));
    th_emit(t, I_ADD(8, 5, 7));
    th_emit(t, I_ADD(9, 5, 0)); /* reads x5 */
    th_emit(t, I_SLLI(12, 6, 2));
    th_emit(t, I_ADD(13, 12, 7));
    uint64_t ld = th_emit(t, I_LD(14, 10, 0)); /* faults with x12 as the slli left it */
    th_emit(t, I_ADDI(12, 0, 1));
    th_emit(t, I_SELF_LOOP());
    CHECK_EQ(th_run_until(t, TH_MTRAP, 4), TH_MTRAP);
    CHECK_EQ(t->h.mepc, ld);
    CHECK_EQ(t->h.x[5], 0x123456789ull * 2);
    CHECK_EQ(t->h.x[8], 0x1000 + 0x123456789ull * 2);
    CHECK_EQ(t->h.x[9], 0x123456789ull * 2);
    CHECK_EQ(t->h.x[12], 0x123456789ull * 4);
    CHECK_EQ(t->h.x[13], 0x1000 + 0x123456789ull * 4);
    jit_get_stats(&t->h, &st);
    CHECK_EQ(st.fused, 0);
    th_free(t);
}

/* A jalr of user code is linked like a far exit to the first target it takes (a return to
 * one caller jumps straight there) and looks the others up in the jump cache, without asking
 * for a new link each time: a function called from two places returns to both, exactly;
 * the links follow a change of the code returned to. */
TEST(jit_jalr_linked_to_one_target_looks_up_the_others)
{
    struct th *t = th_new_jit(0);
    const uint64_t fn = TH_CODE + 0x3000; /* another page */
    /* user code under Sv39 (identity-mapped): only user code's jalr are linked */
    uint64_t root = th_pt_alloc(t);
    const uint64_t ucode = PTE_V_ | PTE_R_ | PTE_X_ | PTE_A_ | PTE_U_;
    th_map(t, root, 3, TH_CODE, TH_CODE, 0, ucode);
    th_map(t, root, 3, fn, fn, 0, ucode);
    th_pmp_allow_all(t);
    th_csrw(t, CSR_SATP_N, SATP_SV39 | (root >> 12));
    th_set_priv(t, PRV_U);
    t->h.x[5] = 500;
    uint64_t loop = th_emit(t, I_JAL(1, (int32_t)(fn - TH_CODE)));
    uint64_t inc = th_emit(t, I_ADDI(7, 7, 1));
    uint64_t site2 = th_here(t);
    th_emit(t, I_JAL(1, (int32_t)(fn - site2)));
    th_emit(t, I_ADDI(5, 5, -1));
    th_emit(t, I_BNE(5, 0, (int32_t)(loop - th_here(t))));
    uint64_t end = th_emit(t, I_SELF_LOOP());
    th_org(t, fn);
    th_emit(t, I_ADDI(6, 6, 1));
    th_emit(t, I_JALR(0, 1, 0)); /* ret: to either caller */
    struct jit_stats st0, st1;
    jit_get_stats(&t->h, &st0);
    uint64_t before = t->h.instret;
    CHECK_EQ(th_run_until(t, end, 2000), end);
    CHECK_EQ(t->h.x[6], 1000);
    CHECK_EQ(t->h.x[7], 500);
    CHECK_EQ(t->h.x[1], site2 + 4);
    CHECK(t->h.instret - before >= 500 * 9);
    CHECK(t->h.instret - before <= 500 * 9 + 16);
    jit_get_stats(&t->h, &st1);
    /* the return, to its first target (with fast memory: user code under Sv39) */
    CHECK_EQ(st1.jalr_linked - st0.jalr_linked, t->h.fm ? 1u : 0u);
    CHECK(st1.far_misses - st0.far_misses <= 10);
    /* the code returned to changes (then fence.i): the link does not hold, the new code runs */
    th_w32(t, inc, I_ADDI(7, 7, 2));
    dcache_flush(&t->h);
    t->h.x[5] = 500;
    t->h.x[6] = t->h.x[7] = 0;
    t->h.pc = loop;
    CHECK_EQ(th_run_until(t, end, 2000), end);
    CHECK_EQ(t->h.x[6], 1000);
    CHECK_EQ(t->h.x[7], 1000);
    th_free(t);
}

/* Branches over one instruction (li, mv, addi) as a cmov (jit.c emit_select): every branch
 * kind, taken and not, x0 as either operand, rd in a host register or in struct hart, then a
 * fault (instret exact at it), against the interpreter; the JIT translated them as selects.
 * v & 1: a faulting load at the end; v & 2: in a loop (the select's target is the loop's
 * start). */
static void select_program(struct th *t, uint64_t v)
{
    static const uint64_t vals[] = {0, 1, 5, (uint64_t)-1, (uint64_t)-5, 0x8000000000000000ull};
    for (unsigned i = 0; i < 6; i++)
        t->h.x[10 + i] = vals[i];
    t->h.x[16] = TH_UNMAPPED;
    t->h.x[31] = 3;
    uint64_t top = th_emit(t, I_ADDI(30, 30, 1));
    unsigned rd = 5;
    for (unsigned op = 0; op < 6; op++)
        for (unsigned a = 0; a < 6; a++) {
            unsigned ra = 10 + a, rb = 10 + (a * 5 + op) % 6;
            if ((a + op) % 5 == 0) rb = 0; /* x0 */
            if ((a + op) % 7 == 1) ra = 0;
            uint32_t br = enc_b((unsigned[]){0, 1, 4, 5, 6, 7}[op], ra, rb, 8);
            th_emit(t, br);
            switch ((a + op) % 3) {
            case 0: th_emit(t, I_ADDI(rd, 0, (int32_t)(a * 10 + op))); break; /* li */
            case 1: th_emit(t, I_ADDI(rd, 10 + op, 0)); break;                /* mv */
            default: th_emit(t, I_ADDI(rd, 10 + a, -7)); break;               /* addi */
            }
            th_emit(t, I_ADD(29, 29, rd)); /* read: rd's value is checked via x29 too */
            rd = rd == 9 ? 17 : rd == 28 ? 5 : rd + 1;
        }
    if (v & 2) {
        th_emit(t, I_ADDI(31, 31, -1));
        uint64_t b = th_here(t);
        th_emit(t, I_BEQ(31, 0, 8));
        th_emit(t, I_JAL(0, (int32_t)(top - b - 4)));
    }
    if (v & 1) th_emit(t, I_LD(6, 16, 0));
    th_emit(t, I_ECALL());
}

TEST(jit_branch_over_one_instruction_as_a_select)
{
    for (uint64_t v = 0; v < 4; v++) {
        struct engine_run a, b;
        engine_run_calls(false, select_program, v, &a, 1000);
        engine_run_calls(true, select_program, v, &b, 1000);
        CHECK_EQ(xregs_differ(&a, &b, v), 0);
        CHECK_EQ(b.instret, a.instret);
        CHECK_EQ(b.pc, a.pc);
        CHECK_EQ(b.mepc, a.mepc);
        CHECK_EQ(b.mcause, a.mcause);
        CHECK_EQ(a.mcause, (uint64_t)(v & 1 ? EXC_LOAD_ACCESS : EXC_ECALL_M));
        CHECK(b.selects >= 30);
    }
}

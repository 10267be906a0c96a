/* The JIT's fast memory (src/cpu/riscv/jit/fastmem.c): user-mode loads and stores under Sv39
 * go to the hart's region where the pages a user program touched are mapped again. What it
 * must keep exact: every access's value against the interpreter (sizes, signs, misaligned,
 * across pages), the page faults (read-only pages, supervisor pages, addresses beyond
 * Sv39's user half, an access that ends beyond it), the D bit, sfence.vma and satp (a page
 * remapped), writes to RAM by others (a device's DMA), device memory, and translated user
 * code run where there is no fast memory. Each test checks with the counters that the fast
 * path was really taken: a host fault per page, then none. */
#include "cpu/riscv/jit/fastmem.h"
#include "cpu/riscv/jit/jit.h"
#include "cpu_harness.h"
#include <stdlib.h>

#define U_CODE   0x10000ull  /* user code */
#define U_D0     0x200000ull /* two data pages, physically apart */
#define U_D1     0x201000ull
#define U_RO     0x300000ull            /* read-only */
#define U_CLEAN  0x301000ull            /* writable, D clear */
#define U_KERN   0x302000ull            /* no U bit */
#define U_DEV    0x303000ull            /* the harness's device */
#define U_REMAP  0x304000ull            /* remapped by the test */
#define U_TOP    (FM_USER_TOP - 0x1000) /* the last page of Sv39's user half */
#define PA_CODE  (TH_CODE + 0x20000)
#define PA_D0    TH_DATA
#define PA_D1    (TH_DATA + 0x5000)
#define PA_RO    (TH_DATA + 0x9000)
#define PA_CLEAN (TH_DATA + 0xa000)
#define PA_KERN  (TH_DATA + 0xb000)
#define PA_R1    (TH_DATA + 0xc000)
#define PA_R2    (TH_DATA + 0xd000)
#define PA_TOP   (TH_DATA + 0x8000)

#define UDATA (PTE_V_ | PTE_R_ | PTE_W_ | PTE_A_ | PTE_D_ | PTE_U_)

struct fm_env {
    struct th *t;
    uint64_t root, pte_clean, pte_remap;
};

/* A hart (jit: with the JIT and, unless VESSEL_FASTMEM=0, fast memory; else the
 * interpreter) in U mode under Sv39 with the pages above mapped. */
static struct fm_env fm_setup(bool jit)
{
    if (jit) setenv("VESSEL_TEST_ENGINE", "jit", 1);
    struct fm_env f = {th_new(), 0, 0, 0};
    unsetenv("VESSEL_TEST_ENGINE");
    struct th *t = f.t;
    f.root = th_pt_alloc(t);
    th_map(t, f.root, 3, U_CODE, PA_CODE, 0, PTE_V_ | PTE_R_ | PTE_X_ | PTE_A_ | PTE_U_);
    th_map(t, f.root, 3, U_D0, PA_D0, 0, UDATA);
    th_map(t, f.root, 3, U_D1, PA_D1, 0, UDATA);
    th_map(t, f.root, 3, U_RO, PA_RO, 0, PTE_V_ | PTE_R_ | PTE_A_ | PTE_U_);
    f.pte_clean = th_map(t, f.root, 3, U_CLEAN, PA_CLEAN, 0, UDATA & ~PTE_D_);
    th_map(t, f.root, 3, U_KERN, PA_KERN, 0, UDATA & ~PTE_U_);
    th_map(t, f.root, 3, U_DEV, TH_DEV_BASE, 0, UDATA);
    f.pte_remap = th_map(t, f.root, 3, U_REMAP, PA_R1, 0, UDATA);
    th_map(t, f.root, 3, U_TOP, PA_TOP, 0, UDATA);
    th_pmp_allow_all(t);
    th_csrw(t, CSR_SATP_N, SATP_SV39 | (f.root >> 12));
    th_set_priv(t, PRV_U);
    th_org(t, PA_CODE);
    return f;
}

static uint64_t fm_faults(const struct th *t)
{
    struct fastmem_stats s;
    fastmem_get_stats(&t->h, &s);
    return s.faults;
}

/* Run the user program at U_CODE to `end` (a self-loop) or a trap: the pc reached. */
static uint64_t fm_run(struct th *t, uint64_t end)
{
    th_set_priv(t, PRV_U);
    t->h.pc = U_CODE;
    return th_run_until(t, end, 200);
}

static uint64_t u_va(uint64_t pa)
{
    return U_CODE + (pa - PA_CODE);
}

/* Loads and stores of every size and sign, misaligned ones, one across two pages: the
 * registers and memory equal the interpreter's, and a second run takes no host fault. */
static uint64_t ls_program(struct th *t)
{
    th_emit(t, I_SD(5, 10, 0));
    th_emit(t, I_SW(6, 10, 8));
    th_emit(t, I_SH(7, 10, 12));
    th_emit(t, I_SB(8, 10, 14));
    th_emit(t, I_LD(12, 10, 0));
    th_emit(t, I_LW(13, 10, 8));
    th_emit(t, I_LWU(14, 10, 8));
    th_emit(t, I_LH(15, 10, 12));
    th_emit(t, I_LHU(16, 10, 12));
    th_emit(t, I_LB(17, 10, 14));
    th_emit(t, I_LBU(18, 10, 14));
    th_emit(t, I_LD(19, 10, 3)); /* misaligned, inside the page */
    th_emit(t, I_SD(6, 11, 0));  /* across D0's end into D1 */
    th_emit(t, I_LD(20, 11, 0));
    th_emit(t, I_LW(21, 11, 2));    /* within D1's first bytes */
    th_emit(t, I_SW(7, 10, 0x400)); /* a store then a load of another size */
    th_emit(t, I_LHU(22, 10, 0x402));
    return u_va(th_emit(t, I_SELF_LOOP()));
}

TEST(fastmem_loads_stores_match_the_interpreter)
{
    uint64_t regs[2][32];
    uint8_t mem[2][3][4096];
    uint64_t faults1 = 0, faults2 = 0;
    for (int jit = 0; jit < 2; jit++) {
        struct fm_env f = fm_setup(jit);
        struct th *t = f.t;
        uint64_t end = ls_program(t);
        for (unsigned r = 1; r < 32; r++)
            t->h.x[r] = 0x8899aabbccddeeffull * r;
        t->h.x[10] = U_D0 + 0x100;
        t->h.x[11] = U_D0 + 0xffc;
        CHECK_EQ(fm_run(t, end), end);
        if (t->h.pc != end)
            fprintf(stderr, "  trap: mcause %llu mepc %llx mtval %llx\n",
                    (unsigned long long)t->h.mcause, (unsigned long long)t->h.mepc,
                    (unsigned long long)t->h.mtval);
        if (jit) {
            faults1 = fm_faults(t);
            CHECK_EQ(fm_run(t, end), end); /* the pages are mapped now */
            faults2 = fm_faults(t) - faults1;
        } else {
            CHECK_EQ(fm_run(t, end), end);
        }
        memcpy(regs[jit], t->h.x, sizeof(regs[jit]));
        memcpy(mem[jit][0], th_ptr(t, PA_D0), 4096);
        memcpy(mem[jit][1], th_ptr(t, PA_D1), 4096);
        memcpy(mem[jit][2], th_ptr(t, PA_CODE), 4096);
        th_free(t);
    }
    for (unsigned r = 1; r < 32; r++)
        if (regs[0][r] != regs[1][r]) {
            fprintf(stderr, "  x%u: interpreter %llx, jit %llx\n", r,
                    (unsigned long long)regs[0][r], (unsigned long long)regs[1][r]);
            CHECK(0);
        }
    CHECK(memcmp(mem[0], mem[1], sizeof(mem[0])) == 0);
    CHECK_EQ(regs[1][12], regs[1][5]);
    CHECK_EQ(regs[1][20], regs[1][6]);
    if (fastmem_wanted()) {
        CHECK(faults1 >= 2); /* D0 and D1 entered through faults */
        CHECK_EQ(faults2, 0);
    }
}

/* One load or store at x10 + 0 in user mode: the trap cause (0 = none) and, with one, mtval
 * and mepc. */
static int user_access(struct fm_env *f, uint32_t insn, uint64_t va, uint64_t *tval)
{
    struct th *t = f->t;
    th_org(t, PA_CODE);
    uint64_t at = u_va(th_emit(t, insn));
    uint64_t end = u_va(th_emit(t, I_SELF_LOOP()));
    t->h.x[10] = va;
    t->h.mcause = 0;
    uint64_t pc = fm_run(t, end);
    if (pc == end) return 0;
    CHECK_EQ(pc, TH_MTRAP);
    CHECK_EQ(t->h.mepc, at);
    *tval = t->h.mtval;
    return (int)t->h.mcause;
}

TEST(fastmem_faults_and_permissions_exact)
{
    for (int jit = 0; jit < 2; jit++) {
        struct fm_env f = fm_setup(jit);
        struct th *t = f.t;
        uint64_t tv = 0;
        /* a read-only page: loads work (and map it), stores fault and change nothing */
        th_w64(t, PA_RO, 0x1122334455667788ull);
        CHECK_EQ(user_access(&f, I_LD(5, 10, 0), U_RO, &tv), 0);
        CHECK_EQ(t->h.x[5], 0x1122334455667788ull);
        t->h.x[6] = 7;
        CHECK_EQ(user_access(&f, I_SD(6, 10, 0), U_RO + 8, &tv), EXC_STORE_PAGE_FAULT);
        CHECK_EQ(tv, U_RO + 8);
        CHECK_EQ(th_r64(t, PA_RO + 8), 0);
        /* D clear: a load maps the page read-only, the store then sets D and writes */
        CHECK_EQ(user_access(&f, I_LD(5, 10, 0), U_CLEAN, &tv), 0);
        CHECK_EQ(th_r64(t, f.pte_clean) & PTE_D_, 0);
        t->h.x[6] = 0x5a5a;
        CHECK_EQ(user_access(&f, I_SD(6, 10, 0), U_CLEAN + 16, &tv), 0);
        CHECK(th_r64(t, f.pte_clean) & PTE_D_);
        CHECK_EQ(th_r64(t, PA_CLEAN + 16), 0x5a5a);
        /* a supervisor page */
        CHECK_EQ(user_access(&f, I_LW(5, 10, 0), U_KERN + 4, &tv), EXC_LOAD_PAGE_FAULT);
        CHECK_EQ(tv, U_KERN + 4);
        /* beyond Sv39's user half, and an access that ends there (its first bytes are in a
         * mapped page: the fault is at the first byte beyond) */
        CHECK_EQ(user_access(&f, I_LD(5, 10, 0), FM_USER_TOP, &tv), EXC_LOAD_PAGE_FAULT);
        CHECK_EQ(tv, FM_USER_TOP);
        CHECK_EQ(user_access(&f, I_LD(5, 10, 0), FM_USER_TOP - 4, &tv), EXC_LOAD_PAGE_FAULT);
        CHECK_EQ(tv, FM_USER_TOP);
        t->h.x[6] = 1;
        CHECK_EQ(user_access(&f, I_SD(6, 10, 0), FM_USER_TOP - 2, &tv), EXC_STORE_PAGE_FAULT);
        CHECK_EQ(tv, FM_USER_TOP);
        CHECK_EQ(th_r16(t, PA_TOP + 0xffe), 0); /* nothing of it was written */
        CHECK_EQ(user_access(&f, I_LD(5, 10, 0), 0xffffffc000000000ull, &tv), EXC_LOAD_PAGE_FAULT);
        CHECK_EQ(user_access(&f, I_LD(5, 10, 0), 0x123456789000ull, &tv), EXC_LOAD_PAGE_FAULT);
        CHECK_EQ(tv, 0x123456789000ull); /* not canonical under Sv39 */
        /* an unmapped user page, then mapped (the TLB had no entry for it) */
        CHECK_EQ(user_access(&f, I_LD(5, 10, 0), 0x400000, &tv), EXC_LOAD_PAGE_FAULT);
        th_map(t, f.root, 3, 0x400000, PA_R2, 0, UDATA);
        th_w64(t, PA_R2, 99);
        CHECK_EQ(user_access(&f, I_LD(5, 10, 0), 0x400000, &tv), 0);
        CHECK_EQ(t->h.x[5], 99);
        th_free(t);
    }
}

TEST(fastmem_follows_sfence_satp_dma_and_devices)
{
    struct fm_env f = fm_setup(true);
    struct th *t = f.t;
    uint64_t tv;
    th_w64(t, PA_R1, 111);
    th_w64(t, PA_R2, 222);
    CHECK_EQ(user_access(&f, I_LD(5, 10, 0), U_REMAP, &tv), 0);
    CHECK_EQ(t->h.x[5], 111);
    uint64_t f0 = fm_faults(t);
    CHECK_EQ(user_access(&f, I_LD(5, 10, 0), U_REMAP, &tv), 0);
    CHECK_EQ(fm_faults(t), f0); /* mapped: no host fault */
    /* another writer (a device's DMA, another hart) changes the page */
    th_w64(t, PA_R1, 112);
    CHECK_EQ(user_access(&f, I_LD(5, 10, 0), U_REMAP, &tv), 0);
    CHECK_EQ(t->h.x[5], 112);
    /* remapped, then sfence.vma of that address */
    th_w64(t, f.pte_remap, th_pte(PA_R2, UDATA));
    tlb_flush_page(&t->h, U_REMAP);
    CHECK_EQ(user_access(&f, I_LD(5, 10, 0), U_REMAP, &tv), 0);
    CHECK_EQ(t->h.x[5], 222);
    /* another address space */
    uint64_t root2 = th_pt_alloc(t);
    th_map(t, root2, 3, U_CODE, PA_CODE, 0, PTE_V_ | PTE_R_ | PTE_X_ | PTE_A_ | PTE_U_);
    th_map(t, root2, 3, U_REMAP, PA_R1, 0, UDATA);
    th_csrw(t, CSR_SATP_N, SATP_SV39 | (root2 >> 12));
    CHECK_EQ(user_access(&f, I_LD(5, 10, 0), U_REMAP, &tv), 0);
    CHECK_EQ(t->h.x[5], 112);
    CHECK_EQ(user_access(&f, I_LD(5, 10, 0), U_D0, &tv), EXC_LOAD_PAGE_FAULT); /* not here */
    th_csrw(t, CSR_SATP_N, SATP_SV39 | (f.root >> 12));
    /* device memory: every access reaches the device */
    t->dev.mem[8] = 0x42;
    unsigned reads = t->dev.nreads;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(user_access(&f, I_LBU(5, 10, 0), U_DEV + 8, &tv), 0);
        CHECK_EQ(t->h.x[5], 0x42);
    }
    CHECK_EQ(t->dev.nreads, reads + 3);
    th_free(t);
}

/* User code translated with fast memory, then run in M mode at its physical address (where
 * there is no fast memory: every access takes its slow path) and under Sv48 (likewise). */
TEST(fastmem_user_blocks_run_anywhere)
{
    struct fm_env f = fm_setup(true);
    struct th *t = f.t;
    th_org(t, PA_CODE);
    th_emit(t, I_LD(5, 10, 0));
    th_emit(t, I_ADDI(5, 5, 1));
    th_emit(t, I_SD(5, 10, 8));
    uint64_t end = u_va(th_emit(t, I_SELF_LOOP()));
    th_w64(t, PA_D0, 41);
    t->h.x[10] = U_D0;
    CHECK_EQ(fm_run(t, end), end);
    CHECK_EQ(th_r64(t, PA_D0 + 8), 42);
    /* M mode, physical addresses: the same translated block */
    th_set_priv(t, PRV_M);
    th_w64(t, PA_D0, 50);
    t->h.x[10] = PA_D0;
    t->h.pc = PA_CODE;
    CHECK_EQ(th_run_until(t, PA_CODE + (end - U_CODE), 200), PA_CODE + (end - U_CODE));
    CHECK_EQ(th_r64(t, PA_D0 + 8), 51);
    /* U mode under Sv48: the TLB path (the same virtual layout, one level more) */
    uint64_t root48 = th_pt_alloc(t);
    th_map(t, root48, 4, U_CODE, PA_CODE, 0, PTE_V_ | PTE_R_ | PTE_X_ | PTE_A_ | PTE_U_);
    th_map(t, root48, 4, U_D0, PA_D1, 0, UDATA);
    th_csrw(t, CSR_SATP_N, (9ull << 60) | (root48 >> 12));
    th_w64(t, PA_D1, 60);
    t->h.x[10] = U_D0;
    CHECK_EQ(fm_run(t, end), end);
    CHECK_EQ(th_r64(t, PA_D1 + 8), 61);
    CHECK_EQ(t->h.fm_limit, 0);
    th_free(t);
}

static uint64_t fm_switches(const struct th *t, uint64_t *hits)
{
    struct fastmem_stats s;
    fastmem_get_stats(&t->h, &s);
    *hits = s.switch_hits;
    return s.switches;
}

/* sfence.vma va (x0 when va is 0), asid, run in S mode (translation off: the satp write
 * is the caller's to undo). */
static void s_fence(struct th *t, uint64_t va, uint64_t asid)
{
    t->h.x[6] = va;
    t->h.x[7] = asid;
    th_org(t, TH_CODE + 0x30000);
    th_emit(t, I_SFENCE_VMA(va ? 6 : 0, 7));
    uint64_t end = th_emit(t, I_SELF_LOOP());
    th_csrw(t, CSR_SATP_N, 0); /* bare: the fence runs at its physical address */
    th_set_priv(t, PRV_S);
    t->h.pc = TH_CODE + 0x30000;
    CHECK_EQ(th_run_until(t, end, 20), end);
}

/* Two address spaces with their own ASIDs: switching satp between them keeps each one's
 * mapped pages (no host fault on the way back); a page of A remapped while B runs and fenced
 * by address and A's ASID, or A's ASID fenced whole, is seen anew when A runs again; B's
 * pages stay through A's fences by ASID. */
TEST(fastmem_regions_per_asid)
{
    struct fm_env f = fm_setup(true);
    struct th *t = f.t;
    uint64_t tv, hits0, hits1;
    uint64_t root_b = th_pt_alloc(t);
    th_map(t, root_b, 3, U_CODE, PA_CODE, 0, PTE_V_ | PTE_R_ | PTE_X_ | PTE_A_ | PTE_U_);
    th_map(t, root_b, 3, U_D0, PA_D1, 0, UDATA);
    const uint64_t satp_a = SATP_SV39 | (1ull << 44) | (f.root >> 12);
    const uint64_t satp_b = SATP_SV39 | (2ull << 44) | (root_b >> 12);
    th_w64(t, PA_D0, 0xa);
    th_w64(t, PA_D1, 0xb);
    th_w64(t, PA_R1, 0xa1);
    th_w64(t, PA_R2, 0xa2);
    th_csrw(t, CSR_SATP_N, satp_a);
    CHECK_EQ(th_csrr(t, CSR_SATP_N), satp_a); /* ASIDs are implemented */
    CHECK_EQ(user_access(&f, I_LD(5, 10, 0), U_D0, &tv), 0);
    CHECK_EQ(t->h.x[5], 0xa);
    CHECK_EQ(user_access(&f, I_LD(5, 10, 0), U_REMAP, &tv), 0);
    CHECK_EQ(t->h.x[5], 0xa1);
    th_csrw(t, CSR_SATP_N, satp_b);
    CHECK_EQ(user_access(&f, I_LD(5, 10, 0), U_D0, &tv), 0);
    CHECK_EQ(t->h.x[5], 0xb);
    uint64_t sw0 = fm_switches(t, &hits0), faults = fm_faults(t);
    th_csrw(t, CSR_SATP_N, satp_a);
    CHECK_EQ(user_access(&f, I_LD(5, 10, 0), U_D0, &tv), 0);
    CHECK_EQ(t->h.x[5], 0xa);
    th_csrw(t, CSR_SATP_N, satp_b);
    CHECK_EQ(user_access(&f, I_LD(5, 10, 0), U_D0, &tv), 0);
    CHECK_EQ(t->h.x[5], 0xb);
    CHECK_EQ(fm_switches(t, &hits1) - sw0, 2);
    if (fastmem_wanted()) {
        CHECK_EQ(hits1 - hits0, 2);
        CHECK_EQ(fm_faults(t), faults); /* both kept their pages */
    }
    /* while B runs: A's U_REMAP moves to PA_R2, fenced by address and A's ASID */
    th_w64(t, f.pte_remap, th_pte(PA_R2, UDATA));
    s_fence(t, U_REMAP, 1);
    th_csrw(t, CSR_SATP_N, satp_a);
    CHECK_EQ(user_access(&f, I_LD(5, 10, 0), U_REMAP, &tv), 0);
    CHECK_EQ(t->h.x[5], 0xa2);
    /* A's whole ASID fenced while B runs: A's D0 moves to PA_R1 */
    th_map(t, f.root, 3, U_D0, PA_R1, 0, UDATA);
    th_csrw(t, CSR_SATP_N, satp_b);
    CHECK_EQ(user_access(&f, I_LD(5, 10, 0), U_D0, &tv), 0); /* B's: mapped */
    uint64_t fb = fm_faults(t);
    s_fence(t, 0, 1);
    th_csrw(t, CSR_SATP_N, satp_b);
    CHECK_EQ(user_access(&f, I_LD(5, 10, 0), U_D0, &tv), 0);
    CHECK_EQ(t->h.x[5], 0xb);
    if (fastmem_wanted()) CHECK_EQ(fm_faults(t), fb); /* B's pages stayed */
    th_csrw(t, CSR_SATP_N, satp_a);
    CHECK_EQ(user_access(&f, I_LD(5, 10, 0), U_D0, &tv), 0);
    CHECK_EQ(t->h.x[5], 0xa1);
    th_free(t);
}

/* A block short of host registers adds fm_base from memory (the fault handler then takes it
 * off rax again), one with registers to spare keeps it in r15: both exact, faulting first and
 * then not, against the interpreter. */
static uint64_t busy_program(struct th *t, bool busy)
{
    th_org(t, PA_CODE);
    if (busy) /* x20..x31 each read three times or more: eleven host registers wanted */
        for (unsigned rep = 0; rep < 3; rep++)
            for (unsigned r = 20; r < 31; r++)
                th_emit(t, I_ADD(r, r, r + 1));
    th_emit(t, I_LD(19, 10, 8));
    th_emit(t, I_ADD(19, 19, 5));
    th_emit(t, I_SD(19, 10, 16));
    return u_va(th_emit(t, I_SELF_LOOP()));
}

TEST(fastmem_r15_and_added_base_forms)
{
    for (int busy = 0; busy < 2; busy++) {
        uint64_t regs[2][32], out[2];
        for (int jit = 0; jit < 2; jit++) {
            struct fm_env f = fm_setup(jit);
            struct th *t = f.t;
            uint64_t end = busy_program(t, busy);
            for (unsigned r = 1; r < 32; r++)
                t->h.x[r] = 0x0101010101010101ull * r;
            t->h.x[10] = U_D0;
            th_w64(t, PA_D0 + 8, 1000);
            struct jit_stats s0, s1;
            jit_get_stats(&t->h, &s0);
            CHECK_EQ(fm_run(t, end), end);
            if (jit && fastmem_wanted()) {
                CHECK(fm_faults(t) >= 1);
                jit_get_stats(&t->h, &s1);
                if (busy)
                    CHECK_EQ(s1.fm_added - s0.fm_added, 1);
                else
                    CHECK_EQ(s1.fm_pinned - s0.fm_pinned, 1);
                uint64_t f0 = fm_faults(t);
                for (unsigned r = 1; r < 32; r++)
                    t->h.x[r] = 0x0101010101010101ull * r;
                t->h.x[10] = U_D0;
                CHECK_EQ(fm_run(t, end), end); /* mapped now */
                CHECK_EQ(fm_faults(t), f0);
            }
            memcpy(regs[jit], t->h.x, sizeof(regs[jit]));
            out[jit] = th_r64(t, PA_D0 + 16);
            th_free(t);
        }
        CHECK(memcmp(regs[0], regs[1], sizeof(regs[0])) == 0);
        CHECK_EQ(out[0], out[1]);
        CHECK_EQ(out[1], regs[1][19]);
    }
}

/* An address space gets fast memory only after running env.fastmem_warmup instructions;
 * before, its user blocks (translated with fast-memory accesses all the same) take the TLB
 * in their stubs: exact, and no host fault. */
TEST(fastmem_after_warm_up)
{
    struct fm_env f = fm_setup(true);
    struct th *t = f.t;
    t->h.env.fastmem_warmup = 2000;
    th_csrw(t, CSR_SATP_N, SATP_SV39 | (3ull << 44) | (f.root >> 12)); /* a fresh region */
    th_org(t, PA_CODE);
    th_emit(t, I_ADDI(6, 0, 100));
    uint64_t loop = th_emit(t, I_LD(5, 10, 0));
    th_emit(t, I_ADDI(5, 5, 1));
    th_emit(t, I_SD(5, 10, 0));
    th_emit(t, I_ADDI(6, 6, -1));
    th_emit(t, I_BNE(6, 0, (int32_t)(loop - th_here(t))));
    uint64_t end = u_va(th_emit(t, I_SELF_LOOP()));
    th_w64(t, PA_D0, 0);
    t->h.x[10] = U_D0;
    uint64_t f0 = fm_faults(t);
    CHECK_EQ(fm_run(t, end), end); /* ~500 instructions: still warming up */
    CHECK_EQ(th_r64(t, PA_D0), 100);
    CHECK_EQ(fm_faults(t), f0);
    CHECK_EQ(t->h.fm_limit, 0);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(fm_run(t, end), end);
    CHECK_EQ(th_r64(t, PA_D0), 500);
    if (fastmem_wanted()) {
        CHECK_EQ(t->h.fm_limit, FM_USER_TOP); /* warm now */
        CHECK(fm_faults(t) > f0);
    }
    th_free(t);
}

/* Limit tests elided (emit_fm): after `ld x5, 0(x10)` passed its test, later accesses through
 * x10 (unchanged, offsets within 2 KiB) have none. What they reach must still be exact: an
 * access into a page not mapped yet (a host fault whose stub computes the address itself),
 * one below address 0 (the region's lower guard: the guest's page fault at the wrapped
 * address), a base in the upper half of Sv39 mapped for the user (its test fails: the
 * interpreter makes the access and the block leaves, never reaching the unchecked ones), and
 * the same code in an address space still warming up (not the elided translation: no host
 * fault). Registers and memory against the interpreter. */
#define U_ZERO  0x0ull                /* a user page at address 0 */
#define U_UPPER 0xffffffc000001000ull /* a user page in Sv39's upper half */
#define PA_ZERO (TH_DATA + 0xe000)
#define PA_UP   (TH_DATA + 0xf000)

static uint64_t elide_program(struct th *t)
{
    th_emit(t, I_LD(5, 10, 0));    /* tested */
    th_emit(t, I_LD(6, 10, 8));    /* elided: the next page when x10 is its last dword */
    th_emit(t, I_SD(7, 10, -16));  /* elided */
    th_emit(t, I_LW(8, 10, 4));    /* elided */
    th_emit(t, I_ADDI(10, 10, 0)); /* written: tested again */
    th_emit(t, I_LBU(9, 10, 2));
    th_emit(t, I_SB(9, 10, -1)); /* elided */
    return u_va(th_emit(t, I_SELF_LOOP()));
}

static int elide_run(struct fm_env *f, uint64_t x10, uint64_t end, uint64_t *tval)
{
    struct th *t = f->t;
    for (unsigned r = 5; r < 10; r++)
        t->h.x[r] = 0x1111111111111111ull * r;
    t->h.x[10] = x10;
    t->h.mcause = 0;
    uint64_t pc = fm_run(t, end);
    if (pc == end) return 0;
    CHECK_EQ(pc, TH_MTRAP);
    *tval = t->h.mtval;
    return (int)t->h.mcause;
}

TEST(fastmem_elided_tests_exact)
{
    uint64_t regs[2][4][32], tvals[2][4];
    int causes[2][4];
    uint8_t mem[2][4][4096];
    for (int jit = 0; jit < 2; jit++) {
        struct fm_env f = fm_setup(jit);
        struct th *t = f.t;
        th_map(t, f.root, 3, U_ZERO, PA_ZERO, 0, UDATA);
        th_map(t, f.root, 3, U_UPPER, PA_UP, 0, UDATA);
        for (unsigned i = 0; i < 512; i++) {
            th_w64(t, PA_D0 + 8 * i, 0x0123456789abcdefull * (i + 1));
            th_w64(t, PA_D1 + 8 * i, 0xfedcba9876543210ull ^ i);
            th_w64(t, PA_ZERO + 8 * i, 0x5555aaaa0000ull + i);
            th_w64(t, PA_UP + 8 * i, 0x7777000000000000ull + i);
        }
        th_org(t, PA_CODE);
        uint64_t end = elide_program(t);
        struct jit_stats s0, s1;
        jit_get_stats(&t->h, &s0);
        const uint64_t bases[4] = {U_D0 + 0xff8, 0x8, U_UPPER + 0x100, U_D0 + 0xff8};
        for (unsigned c = 0; c < 4; c++) {
            uint64_t f0 = fm_faults(t);
            if (c == 3) { /* another address space, warming up, over the same pages */
                t->h.env.fastmem_warmup = 1u << 30;
                th_csrw(t, CSR_SATP_N, SATP_SV39 | (5ull << 44) | (f.root >> 12));
            }
            tvals[jit][c] = 0;
            causes[jit][c] = elide_run(&f, bases[c], end, &tvals[jit][c]);
            memcpy(regs[jit][c], t->h.x, sizeof(regs[jit][c]));
            if (jit && fastmem_wanted()) {
                if (c == 0) CHECK(fm_faults(t) >= 2);   /* D0, then D1 by the elided load */
                if (c == 3) CHECK_EQ(fm_faults(t), f0); /* the TLB's path only */
            }
        }
        if (jit && fastmem_wanted()) {
            jit_get_stats(&t->h, &s1);
            CHECK(s1.fm_guarded > s0.fm_guarded);
            CHECK(s1.fm_elided - s0.fm_elided >= 4);
        }
        memcpy(mem[jit][0], th_ptr(t, PA_D0), 4096);
        memcpy(mem[jit][1], th_ptr(t, PA_D1), 4096);
        memcpy(mem[jit][2], th_ptr(t, PA_ZERO), 4096);
        memcpy(mem[jit][3], th_ptr(t, PA_UP), 4096);
        th_free(t);
    }
    for (unsigned c = 0; c < 4; c++) {
        CHECK_EQ(causes[0][c], causes[1][c]);
        CHECK_EQ(tvals[0][c], tvals[1][c]);
        for (unsigned r = 1; r < 32; r++)
            if (regs[0][c][r] != regs[1][c][r]) {
                fprintf(stderr, "  case %u x%u: interpreter %llx, jit %llx\n", c, r,
                        (unsigned long long)regs[0][c][r], (unsigned long long)regs[1][c][r]);
                CHECK(0);
            }
    }
    CHECK(memcmp(mem[0], mem[1], sizeof(mem[0])) == 0);
    CHECK_EQ(causes[1][0], 0);
    CHECK_EQ(regs[1][0][6], 0xfedcba9876543210ull); /* D1's first dword */
    CHECK_EQ(causes[1][1], EXC_STORE_PAGE_FAULT);   /* sd at 8 - 16, below 0 */
    CHECK_EQ(tvals[1][1], (uint64_t)-8);
    CHECK_EQ(regs[1][1][6], 0x5555aaaa0000ull + 2); /* the loads before it ran */
    CHECK_EQ(causes[1][2], 0);
    CHECK_EQ(regs[1][2][5], 0x7777000000000000ull + 0x20);
    CHECK_EQ(causes[1][3], 0);
}

/* Address translation (priv spec 10.3 Sv32 algorithm as extended by 10.4-10.6 Sv39/Sv48/Sv57),
 * A/D updates, page faults, SUM/MXR/MPRV, and PMP (priv spec 3.7), through mmu_translate,
 * mem_load_slow/mem_store_slow, pmp_check and programs run with hart_exec. Page tables are built
 * in guest RAM with th_map. */
#include "cpu_harness.h"

#define M1 0xffffffffffffffffull

static const uint64_t page_size[5] = {1ull << 12, 1ull << 21, 1ull << 30, 1ull << 39, 1ull << 48};

/* A hart in S-mode with paging on (satp mode 8/9/10), PMP letting S use everything. */
static struct th *vm_new(unsigned mode, uint64_t *root)
{
    struct th *t = th_new();
    th_pmp_allow_all(t);
    *root = th_pt_alloc(t);
    th_csrw(t, CSR_SATP_N, ((uint64_t)mode << 60) | (*root >> 12));
    th_set_priv(t, PRV_S);
    return t;
}

static int xlate(struct th *t, uint64_t va, enum access acc, uint64_t *pa)
{
    *pa = 0x5a5a5a5a;
    return mmu_translate(&t->h, va, acc, pa);
}

/* Expected fault cause for an access type. */
static int pf(enum access acc)
{
    return acc == ACC_R   ? EXC_LOAD_PAGE_FAULT
           : acc == ACC_W ? EXC_STORE_PAGE_FAULT
                          : EXC_INSN_PAGE_FAULT;
}
static int af(enum access acc)
{
    return acc == ACC_R ? EXC_LOAD_ACCESS : acc == ACC_W ? EXC_STORE_ACCESS : EXC_INSN_ACCESS;
}

static void set_mstatus_bits(struct th *t, uint64_t set, uint64_t clear)
{
    uint64_t s = th_csrr(t, CSR_MSTATUS_N);
    th_csrw(t, CSR_MSTATUS_N, (s & ~clear) | set);
}

TEST(mmu_bare_and_m_mode_do_not_translate)
{
    struct th *t = th_new();
    uint64_t pa;
    th_pmp_allow_all(t);
    th_set_priv(t, PRV_S); /* satp = 0: Bare */
    CHECK_EQ(xlate(t, 0x1234567, ACC_R, &pa), 0);
    CHECK_EQ(pa, 0x1234567);
    uint64_t root = th_pt_alloc(t);
    th_csrw(t, CSR_SATP_N, SATP_SV39 | (root >> 12));
    CHECK_EQ(xlate(t, 0x1234567, ACC_R, &pa), EXC_LOAD_PAGE_FAULT); /* empty table */
    th_set_priv(t, PRV_M);
    for (int acc = ACC_R; acc <= ACC_X; acc++) {
        CHECK_EQ(xlate(t, 0x1234567, (enum access)acc, &pa), 0);
        CHECK_EQ(pa, 0x1234567);
    }
    th_free(t);
}

/* 4 KiB pages, with the A and D bits set by hardware (priv spec 10.3.2 step 7/8, Svadu-style
 * updates are what vessel does). */
TEST(mmu_sv39_4k_and_ad_bits)
{
    uint64_t root, pa;
    struct th *t = vm_new(8, &root);
    uint64_t pte = th_map(t, root, 3, 0x40001000, 0x80200000, 0, PTE_V_ | PTE_R_ | PTE_W_);
    CHECK_EQ(xlate(t, 0x40001123, ACC_R, &pa), 0);
    CHECK_EQ(pa, 0x80200123);
    CHECK(th_r64(t, pte) & PTE_A_);
    CHECK_EQ(th_r64(t, pte) & PTE_D_, 0);
    CHECK_EQ(xlate(t, 0x40001ff8, ACC_W, &pa), 0);
    CHECK_EQ(pa, 0x80200ff8);
    CHECK(th_r64(t, pte) & PTE_D_);
    /* no X: fetch faults and the PTE is untouched */
    th_w64(t, pte, th_pte(0x80200000, PTE_V_ | PTE_R_ | PTE_W_));
    CHECK_EQ(xlate(t, 0x40001000, ACC_X, &pa), EXC_INSN_PAGE_FAULT);
    CHECK_EQ(th_r64(t, pte), th_pte(0x80200000, PTE_V_ | PTE_R_ | PTE_W_));
    /* neighbours are not mapped */
    CHECK_EQ(xlate(t, 0x40000ff8, ACC_R, &pa), EXC_LOAD_PAGE_FAULT);
    CHECK_EQ(xlate(t, 0x40002000, ACC_W, &pa), EXC_STORE_PAGE_FAULT);
    th_free(t);
}

/* Every leaf level of each mode: 4K, 2M, 1G, 512G (Sv48/57), 256T (Sv57). */
TEST(mmu_all_page_sizes_all_modes)
{
    for (unsigned mode = 8; mode <= 10; mode++) {
        unsigned levels = mode - 5;
        uint64_t root, pa;
        struct th *t = vm_new(mode, &root);
        for (unsigned lvl = 0; lvl < levels; lvl++) {
            uint64_t sz = page_size[lvl];
            uint64_t va = sz * (lvl + 3);                   /* canonical, low half */
            uint64_t base = lvl == 0 ? 0x80300000 : sz * 5; /* aligned to the page size */
            th_map(t, root, levels, va, base, lvl, PTE_V_ | PTE_R_ | PTE_A_);
            static const uint64_t offs[] = {0, 0x123, 0xff8};
            for (unsigned k = 0; k < 3; k++) {
                uint64_t off = k == 2 ? sz - 8 : offs[k];
                int c = xlate(t, va + off, ACC_R, &pa);
                if (c || pa != base + off) {
                    fprintf(stderr, "  mode %u level %u va 0x%llx: cause %d pa 0x%llx\n", mode, lvl,
                            (unsigned long long)(va + off), c, (unsigned long long)pa);
                    test_failures_in_current++;
                }
            }
            CHECK_EQ(xlate(t, va + sz, ACC_R, &pa), EXC_LOAD_PAGE_FAULT);
        }
        th_free(t);
    }
}

/* Superpages backed by RAM, read through mem_load_slow. */
TEST(mmu_superpage_loads)
{
    uint64_t root, v;
    struct th *t = vm_new(8, &root);
    th_map(t, root, 3, 0x200000, 0x80600000, 1, PTE_V_ | PTE_R_ | PTE_W_);
    th_map(t, root, 3, 0x40000000, 0x80000000, 2, PTE_V_ | PTE_R_);
    th_w64(t, 0x80601238, 0x1122334455667788ull);
    CHECK_EQ(mem_load_slow(&t->h, 0x201238, 8, &v), 0);
    CHECK_EQ(v, 0x1122334455667788ull);
    CHECK_EQ(mem_load_slow(&t->h, 0x40601238, 8, &v), 0);
    CHECK_EQ(v, 0x1122334455667788ull);
    CHECK_EQ(mem_store_slow(&t->h, 0x20123c, 4, 0xabcdef01), 0);
    CHECK_EQ(th_r64(t, 0x80601238), 0xabcdef0155667788ull);
    CHECK_EQ(mem_store_slow(&t->h, 0x40601238, 8, 0), EXC_STORE_PAGE_FAULT); /* read-only */
    CHECK_EQ(th_r64(t, 0x80601238), 0xabcdef0155667788ull);
    th_free(t);
}

/* Bits 63..VABITS-1 of a virtual address must equal bit VABITS-1 (priv spec 10.4.2). */
TEST(mmu_canonical_addresses)
{
    static const struct {
        unsigned mode;
        uint64_t good_high, bad;
    } c[] = {
        {8, 0xffffffc000000000ull, 0x0000004000000000ull},
        {8, 0xffffffffc0000000ull, 0xff00000000000000ull},
        {9, 0xffff800000000000ull, 0x0000800000000000ull},
        {10, 0xff00000000000000ull, 0x0100000000000000ull},
    };
    for (unsigned k = 0; k < sizeof(c) / sizeof(c[0]); k++) {
        uint64_t root, pa;
        struct th *t = vm_new(c[k].mode, &root);
        unsigned levels = c[k].mode - 5;
        th_map(t, root, levels, c[k].good_high, 0x80200000, 0,
               PTE_V_ | PTE_R_ | PTE_W_ | PTE_X_ | PTE_A_ | PTE_D_);
        CHECK_EQ(xlate(t, c[k].good_high + 8, ACC_R, &pa), 0);
        CHECK_EQ(pa, 0x80200008);
        /* the non-canonical address aliases the same table index once truncated */
        uint64_t alias = c[k].bad | (c[k].good_high & ((1ull << (12 + 9 * levels - 1)) - 1));
        for (int acc = ACC_R; acc <= ACC_X; acc++)
            CHECK_EQ(xlate(t, alias, (enum access)acc, &pa), pf((enum access)acc));
        CHECK_EQ(xlate(t, c[k].bad, ACC_R, &pa), EXC_LOAD_PAGE_FAULT);
        th_free(t);
    }
}

/* Invalid PTEs fault with the access type's page-fault cause and are left unchanged. */
TEST(mmu_invalid_ptes_fault_without_ad_update)
{
    uint64_t root, pa;
    struct th *t = vm_new(8, &root);
    const uint64_t rwx = PTE_R_ | PTE_W_ | PTE_X_;
    struct {
        const char *what;
        uint64_t va, pa;
        unsigned lvl;
        uint64_t flags;
    } c[] = {
        {"V=0", 0x10000, 0x80200000, 0, rwx},
        {"W without R", 0x11000, 0x80200000, 0, PTE_V_ | PTE_W_},
        {"W+X without R", 0x12000, 0x80200000, 0, PTE_V_ | PTE_W_ | PTE_X_},
        {"reserved bit 54", 0x13000, 0x80200000, 0, PTE_V_ | rwx | (1ull << 54)},
        {"PBMT bits (no Svpbmt)", 0x14000, 0x80200000, 0, PTE_V_ | rwx | (1ull << 61)},
        {"N bit (no Svnapot)", 0x15000, 0x80200000, 0, PTE_V_ | rwx | (1ull << 63)},
        {"misaligned 2M superpage", 0x400000, 0x80201000, 1, PTE_V_ | rwx},
        {"misaligned 1G superpage", 0x80000000, 0x80200000, 2, PTE_V_ | rwx},
    };
    unsigned n = sizeof(c) / sizeof(c[0]);
    uint64_t ptes[8];
    for (unsigned k = 0; k < n; k++)
        ptes[k] = th_map(t, root, 3, c[k].va, c[k].pa, c[k].lvl, c[k].flags);
    for (unsigned k = 0; k < n; k++) {
        uint64_t before = th_r64(t, ptes[k]);
        for (int acc = ACC_R; acc <= ACC_X; acc++) {
            int got = xlate(t, c[k].va + 0x10, (enum access)acc, &pa);
            if (got != pf((enum access)acc)) {
                fprintf(stderr, "  %s acc %d: cause %d\n", c[k].what, acc, got);
                test_failures_in_current++;
            }
        }
        CHECK_EQ(th_r64(t, ptes[k]), before);
    }
    /* a pointer PTE (no R/W/X) at the last level */
    uint64_t l0 = th_map(t, root, 3, 0x20000, 0x80200000, 0, PTE_V_);
    CHECK_EQ(xlate(t, 0x20000, ACC_R, &pa), EXC_LOAD_PAGE_FAULT);
    CHECK_EQ(th_r64(t, l0), th_pte(0x80200000, PTE_V_));
    th_free(t);
}

/* A page-table page outside RAM (or denied by PMP) gives an access fault of the original
 * access type (priv spec 10.3.2 step 2). */
TEST(mmu_page_table_access_faults)
{
    uint64_t root, pa;
    struct th *t = vm_new(8, &root);
    th_w64(t, root + 8 * 1, th_pte(TH_DEV_BASE, PTE_V_)); /* VPN2 = 1: next level at a device */
    th_w64(t, root + 8 * 2, th_pte(TH_UNMAPPED, PTE_V_));
    for (int acc = ACC_R; acc <= ACC_X; acc++) {
        CHECK_EQ(xlate(t, 0x40000000, (enum access)acc, &pa), af((enum access)acc));
        CHECK_EQ(xlate(t, 0x80000000, (enum access)acc, &pa), af((enum access)acc));
    }
    CHECK_EQ(t->dev.nreads, 0);
    /* the root itself outside RAM */
    th_csrw(t, CSR_SATP_N, SATP_SV39 | (TH_UNMAPPED >> 12));
    CHECK_EQ(xlate(t, 0x1000, ACC_W, &pa), EXC_STORE_ACCESS);
    th_free(t);
}

TEST(mmu_store_to_read_only_page)
{
    uint64_t root, pa, v;
    struct th *t = vm_new(8, &root);
    uint64_t pte = th_map(t, root, 3, 0x30000, 0x80200000, 0, PTE_V_ | PTE_R_ | PTE_X_);
    CHECK_EQ(xlate(t, 0x30008, ACC_W, &pa), EXC_STORE_PAGE_FAULT);
    CHECK_EQ(th_r64(t, pte), th_pte(0x80200000, PTE_V_ | PTE_R_ | PTE_X_)); /* no A, no D */
    th_w64(t, 0x80200008, 77);
    CHECK_EQ(mem_store_slow(&t->h, 0x30008, 8, 5), EXC_STORE_PAGE_FAULT);
    CHECK_EQ(mem_load_slow(&t->h, 0x30008, 8, &v), 0);
    CHECK_EQ(v, 77);
    void *p = NULL;
    CHECK_EQ(mem_atomic_ptr(&t->h, 0x30008, 8, false, &p), EXC_STORE_PAGE_FAULT);
    CHECK(p == NULL);
    th_free(t);
}

/* U pages from S: only with SUM, never for fetch; S pages from U never (priv spec 10.1.1.2). */
TEST(mmu_user_supervisor_separation)
{
    uint64_t root, pa;
    struct th *t = vm_new(8, &root);
    const uint64_t all = PTE_V_ | PTE_R_ | PTE_W_ | PTE_X_ | PTE_A_ | PTE_D_;
    th_map(t, root, 3, 0x10000, 0x80200000, 0, all | PTE_U_);
    th_map(t, root, 3, 0x11000, 0x80201000, 0, all);
    /* S, SUM = 0 */
    for (int acc = ACC_R; acc <= ACC_X; acc++)
        CHECK_EQ(xlate(t, 0x10000, (enum access)acc, &pa), pf((enum access)acc));
    /* S, SUM = 1 */
    set_mstatus_bits(t, MSTATUS_SUM, 0);
    CHECK_EQ(xlate(t, 0x10010, ACC_R, &pa), 0);
    CHECK_EQ(pa, 0x80200010);
    CHECK_EQ(xlate(t, 0x10010, ACC_W, &pa), 0);
    CHECK_EQ(xlate(t, 0x10010, ACC_X, &pa), EXC_INSN_PAGE_FAULT);
    CHECK_EQ(xlate(t, 0x11010, ACC_X, &pa), 0);
    /* U */
    th_set_priv(t, PRV_U);
    for (int acc = ACC_R; acc <= ACC_X; acc++) {
        CHECK_EQ(xlate(t, 0x10020, (enum access)acc, &pa), 0);
        CHECK_EQ(pa, 0x80200020);
        CHECK_EQ(xlate(t, 0x11020, (enum access)acc, &pa), pf((enum access)acc));
    }
    th_free(t);
}

/* MXR makes execute-only pages readable (priv spec 3.1.6.3). */
TEST(mmu_execute_only_and_mxr)
{
    uint64_t root, pa;
    struct th *t = vm_new(8, &root);
    uint64_t pte = th_map(t, root, 3, 0x50000, 0x80200000, 0, PTE_V_ | PTE_X_);
    CHECK_EQ(xlate(t, 0x50000, ACC_R, &pa), EXC_LOAD_PAGE_FAULT);
    CHECK_EQ(th_r64(t, pte) & PTE_A_, 0);
    CHECK_EQ(xlate(t, 0x50000, ACC_X, &pa), 0);
    CHECK(th_r64(t, pte) & PTE_A_);
    set_mstatus_bits(t, MSTATUS_MXR, 0);
    CHECK_EQ(xlate(t, 0x50004, ACC_R, &pa), 0);
    CHECK_EQ(pa, 0x80200004);
    CHECK_EQ(xlate(t, 0x50004, ACC_W, &pa), EXC_STORE_PAGE_FAULT);
    set_mstatus_bits(t, 0, MSTATUS_MXR);
    CHECK_EQ(xlate(t, 0x50000, ACC_R, &pa), EXC_LOAD_PAGE_FAULT);
    th_free(t);
}

/* M-mode loads/stores with MPRV use the MPP privilege's translation; fetches do not
 * (priv spec 3.1.6.3). OpenSBI reads S memory this way. */
TEST(mmu_mprv_uses_mpp_for_data)
{
    uint64_t root, pa, v;
    struct th *t = vm_new(8, &root);
    th_map(t, root, 3, 0x5000, TH_DATA, 0, PTE_V_ | PTE_R_ | PTE_W_ | PTE_A_ | PTE_D_);
    th_map(t, root, 3, 0x6000, TH_DATA + 0x1000, 0, PTE_V_ | PTE_R_ | PTE_U_);
    th_w64(t, TH_DATA, 0x600d);
    th_w64(t, TH_DATA + 0x1000, 0x0u);
    th_set_priv(t, PRV_M);
    /* MPRV = 0: bare */
    CHECK_EQ(xlate(t, 0x5000, ACC_R, &pa), 0);
    CHECK_EQ(pa, 0x5000);
    CHECK_EQ(mem_load_slow(&t->h, 0x5000, 8, &v), EXC_LOAD_ACCESS); /* nothing at PA 0x5000 */
    /* MPRV = 1, MPP = S */
    set_mstatus_bits(t, MSTATUS_MPRV | (1ull << 11), MSTATUS_MPP);
    CHECK_EQ(xlate(t, 0x5008, ACC_R, &pa), 0);
    CHECK_EQ(pa, TH_DATA + 8);
    CHECK_EQ(xlate(t, 0x5008, ACC_X, &pa), 0);
    CHECK_EQ(pa, 0x5008); /* instruction fetch stays M (bare) */
    CHECK_EQ(mem_load_slow(&t->h, 0x5000, 8, &v), 0);
    CHECK_EQ(v, 0x600d);
    CHECK_EQ(mem_store_slow(&t->h, 0x5010, 8, 0xfeed), 0);
    CHECK_EQ(th_r64(t, TH_DATA + 0x10), 0xfeed);
    CHECK_EQ(xlate(t, 0x6000, ACC_R, &pa), EXC_LOAD_PAGE_FAULT); /* U page, SUM = 0 */
    set_mstatus_bits(t, MSTATUS_SUM, 0);
    CHECK_EQ(xlate(t, 0x6000, ACC_R, &pa), 0);
    /* MPP = U: the U page is fine, the S page is not */
    set_mstatus_bits(t, 0, MSTATUS_MPP | MSTATUS_SUM);
    CHECK_EQ(xlate(t, 0x6000, ACC_R, &pa), 0);
    CHECK_EQ(xlate(t, 0x5000, ACC_R, &pa), EXC_LOAD_PAGE_FAULT);
    /* MPP = M: bare again */
    set_mstatus_bits(t, MSTATUS_MPP, 0);
    CHECK_EQ(xlate(t, 0x5000, ACC_R, &pa), 0);
    CHECK_EQ(pa, 0x5000);
    th_free(t);
}

/* The same through an M-mode program (the interpreter's data TLB must follow MPRV). */
TEST(mmu_mprv_in_program)
{
    uint64_t root;
    struct th *t = vm_new(8, &root);
    uint64_t pte = th_map(t, root, 3, 0x5000, TH_DATA, 0, PTE_V_ | PTE_R_ | PTE_W_);
    th_w64(t, TH_DATA, 0x1234);
    th_set_priv(t, PRV_M);
    th_emit(t, I_LD(5, 6, 0)); /* MPRV = 0: PA 0x5000, nothing there */
    th_emit(t, I_CSRRC(0, CSR_MSTATUS_N, 11));
    th_emit(t, I_CSRRS(0, CSR_MSTATUS_N, 7)); /* MPRV, MPP = S */
    th_emit(t, I_LD(8, 6, 0));
    th_emit(t, I_SD(8, 6, 8));
    th_emit(t, I_CSRRC(0, CSR_MSTATUS_N, 7));
    th_emit(t, I_LD(9, 10, 0));
    uint64_t end = th_emit(t, I_SELF_LOOP());
    t->h.x[6] = 0x5000;
    t->h.x[7] = MSTATUS_MPRV | (1ull << 11);
    t->h.x[10] = TH_DATA;
    t->h.x[11] = MSTATUS_MPP;
    CHECK_EQ(th_run_until(t, end, 20), TH_MTRAP);
    CHECK_EQ(t->h.mcause, EXC_LOAD_ACCESS);
    CHECK_EQ(t->h.mtval, 0x5000);
    t->h.pc = TH_CODE + 4;
    CHECK_EQ(th_run_until(t, end, 20), end);
    CHECK_EQ(t->h.x[8], 0x1234);
    CHECK_EQ(th_r64(t, TH_DATA + 8), 0x1234);
    CHECK_EQ(t->h.x[9], 0x1234);
    CHECK_EQ(th_r64(t, pte) & (PTE_A_ | PTE_D_), PTE_A_ | PTE_D_);
    CHECK_EQ(t->h.mstatus & MSTATUS_MPRV, 0);
    th_free(t);
}

/* Loads and stores crossing into an unmapped or read-only page fault as a whole. */
TEST(mmu_page_crossing_faults_all_or_nothing)
{
    uint64_t root, v;
    struct th *t = vm_new(8, &root);
    th_map(t, root, 3, 0x10000, 0x80200000, 0, PTE_V_ | PTE_R_ | PTE_W_);
    th_map(t, root, 3, 0x11000, 0x80201000, 0, PTE_V_ | PTE_R_);
    th_w64(t, 0x80200ff8, 0x1111111111111111ull);
    th_w64(t, 0x80201000, 0x2222222222222222ull);
    CHECK_EQ(mem_load_slow(&t->h, 0x10ffc, 8, &v), 0);
    CHECK_EQ(v, 0x2222222211111111ull);
    CHECK_EQ(mem_load_slow(&t->h, 0x11ffc, 8, &v), EXC_LOAD_PAGE_FAULT); /* 0x12000 unmapped */
    CHECK_EQ(t->h.fault_tval, 0x12000); /* the part that faulted, not va */
    CHECK_EQ(mem_store_slow(&t->h, 0x10ffc, 8, 0), EXC_STORE_PAGE_FAULT);
    CHECK_EQ(t->h.fault_tval, 0x11000);
    CHECK_EQ(mem_store_slow(&t->h, 0x11ffc, 8, 0), EXC_STORE_PAGE_FAULT); /* first part */
    CHECK_EQ(t->h.fault_tval, 0x11ffc);
    CHECK_EQ(th_r64(t, 0x80200ff8), 0x1111111111111111ull); /* first page unchanged */
    CHECK_EQ(th_r64(t, 0x80201000), 0x2222222222222222ull);
    th_free(t);
}

/* A program in S-mode with paging: instruction fetch, loads and stores through the TLB,
 * A/D bits, and page faults with the right cause, epc and tval. */
TEST(mmu_paged_program)
{
    uint64_t root;
    struct th *t = vm_new(8, &root);
    uint64_t code_pte = th_map(t, root, 3, 0x10000, TH_CODE + 0x10000, 0, PTE_V_ | PTE_X_);
    uint64_t data_pte = th_map(t, root, 3, 0x20000, TH_DATA, 0, PTE_V_ | PTE_R_ | PTE_W_);
    th_w64(t, TH_DATA, 0xabc);
    th_org(t, TH_CODE + 0x10000);
    th_emit(t, I_LD(5, 6, 0));
    th_emit(t, I_LD(5, 6, 0)); /* a TLB hit this time */
    th_emit(t, I_SD(5, 6, 8));
    th_emit(t, I_ECALL());
    uint64_t ld_unmapped = th_emit(t, I_LD(7, 8, 0));
    t->h.pc = 0x10000;
    t->h.x[6] = 0x20000;
    t->h.x[8] = 0x7000;
    CHECK_EQ(th_run_until(t, 0, 20), TH_MTRAP);
    CHECK_EQ(t->h.mcause, EXC_ECALL_S);
    CHECK_EQ(t->h.mepc, 0x1000c);
    CHECK_EQ(t->h.x[5], 0xabc);
    CHECK_EQ(th_r64(t, TH_DATA + 8), 0xabc);
    CHECK(th_r64(t, code_pte) & PTE_A_);
    CHECK_EQ(th_r64(t, data_pte) & (PTE_A_ | PTE_D_), PTE_A_ | PTE_D_);
    /* load page fault */
    th_set_priv(t, PRV_S);
    t->h.pc = 0x10000 + (ld_unmapped - (TH_CODE + 0x10000));
    CHECK_EQ(th_run_until(t, 0, 20), TH_MTRAP);
    CHECK_EQ(t->h.mcause, EXC_LOAD_PAGE_FAULT);
    CHECK_EQ(t->h.mepc, 0x10010);
    CHECK_EQ(t->h.mtval, 0x7000);
    /* fetch page fault, delegated to S */
    th_csrw(t, CSR_MEDELEG_N, 1ull << EXC_INSN_PAGE_FAULT);
    th_set_priv(t, PRV_S);
    t->h.pc = 0x30000;
    CHECK_EQ(th_run_until(t, 0, 20), TH_STRAP);
    CHECK_EQ(t->h.priv, PRV_S);
    CHECK_EQ(t->h.scause, EXC_INSN_PAGE_FAULT);
    CHECK_EQ(t->h.sepc, 0x30000);
    CHECK_EQ(t->h.stval, 0x30000);
    th_free(t);
}

/* Misaligned loads and stores that cross from one virtual page into another one whose
 * physical page is elsewhere, executed twice so the second run hits the TLB. */
TEST(mmu_paged_access_crossing_pages)
{
    uint64_t root;
    struct th *t = vm_new(8, &root);
    th_map(t, root, 3, 0x10000, TH_CODE + 0x10000, 0, PTE_V_ | PTE_X_ | PTE_A_);
    th_map(t, root, 3, 0x20000, TH_DATA + 0x5000, 0, PTE_V_ | PTE_R_ | PTE_W_ | PTE_A_ | PTE_D_);
    th_map(t, root, 3, 0x21000, TH_DATA + 0x2000, 0, PTE_V_ | PTE_R_ | PTE_W_ | PTE_A_ | PTE_D_);
    th_org(t, TH_CODE + 0x10000);
    th_emit(t, I_LD(7, 6, 0));  /* 0x20000: fills the TLB for the first page */
    th_emit(t, I_LD(8, 11, 0)); /* 0x21000: and for the second */
    th_emit(t, I_LD(5, 12, 0)); /* 0x20ffc */
    th_emit(t, I_LW(9, 12, 2));
    th_emit(t, I_SW(10, 12, 1));
    th_emit(t, I_ECALL());
    t->h.x[6] = 0x20000;
    t->h.x[11] = 0x21000;
    t->h.x[12] = 0x20ffc;
    t->h.x[10] = 0xa1a2a3a4;
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned i = 0; i < 8; i++) {
            th_w8(t, TH_DATA + 0x5ff8 + i, (uint8_t)(0x10 + i));
            th_w8(t, TH_DATA + 0x2000 + i, (uint8_t)(0x20 + i));
            th_w8(t, TH_DATA + 0x6000 + i, 0xee); /* physically next: must not be used */
        }
        th_set_priv(t, PRV_S);
        t->h.pc = 0x10000;
        t->h.x[5] = t->h.x[9] = 0;
        CHECK_EQ(th_run_until(t, 0, 20), TH_MTRAP);
        CHECK_EQ(t->h.mcause, EXC_ECALL_S);
        CHECK_EQ(t->h.x[5], 0x2322212017161514ull);
        CHECK_EQ(t->h.x[9], 0x21201716ull);
    }
    CHECK_EQ(th_r8(t, TH_DATA + 0x5ffd), 0xa4);
    CHECK_EQ(th_r8(t, TH_DATA + 0x5fff), 0xa2);
    CHECK_EQ(th_r8(t, TH_DATA + 0x2000), 0xa1);
    CHECK_EQ(th_r8(t, TH_DATA + 0x6000), 0xee);
    th_free(t);
}

/* A misaligned load/store whose second page faults traps with tval = the start of that page
 * (the part that faulted). With tval = va, Linux "fixes" the first page, which is fine, and the
 * access faults again forever (dpkg's xz decoder hung that way). */
TEST(mmu_crossing_fault_tval_is_the_faulting_page)
{
    uint64_t root;
    struct th *t = vm_new(8, &root);
    th_map(t, root, 3, 0x10000, TH_CODE + 0x10000, 0, PTE_V_ | PTE_X_ | PTE_A_);
    th_map(t, root, 3, 0x20000, TH_DATA, 0, PTE_V_ | PTE_R_ | PTE_W_ | PTE_A_ | PTE_D_);
    th_map(t, root, 3, 0x21000, TH_DATA + 0x1000, 0, PTE_V_ | PTE_R_ | PTE_A_); /* read-only */
    th_org(t, TH_CODE + 0x10000);
    th_emit(t, I_LD(5, 12, 0)); /* 0x21ffb: 5 bytes in 0x21000, 3 in unmapped 0x22000 */
    uint64_t sd = th_emit(t, I_SD(5, 13, 0)); /* 0x20ffd: 3 bytes writable, 5 read-only */
    th_csrw(t, CSR_MEDELEG_N, (1ull << EXC_LOAD_PAGE_FAULT) | (1ull << EXC_STORE_PAGE_FAULT));
    t->h.x[12] = 0x21ffb;
    t->h.x[13] = 0x20ffd;
    th_set_priv(t, PRV_S);
    t->h.pc = 0x10000;
    CHECK_EQ(th_run_until(t, 0, 20), TH_STRAP);
    CHECK_EQ(t->h.scause, EXC_LOAD_PAGE_FAULT);
    CHECK_EQ(t->h.sepc, 0x10000);
    CHECK_EQ(t->h.stval, 0x22000);
    th_set_priv(t, PRV_S);
    t->h.pc = 0x10000 + (sd - (TH_CODE + 0x10000));
    CHECK_EQ(th_run_until(t, 0, 20), TH_STRAP);
    CHECK_EQ(t->h.scause, EXC_STORE_PAGE_FAULT);
    CHECK_EQ(t->h.stval, 0x21000);
    CHECK_EQ(th_r64(t, TH_DATA + 0xff8), 0); /* nothing written */
    /* a misaligned access entirely inside one faulting page reports va itself */
    t->h.x[12] = 0x30003;
    th_set_priv(t, PRV_S);
    t->h.pc = 0x10000;
    CHECK_EQ(th_run_until(t, 0, 20), TH_STRAP);
    CHECK_EQ(t->h.stval, 0x30003);
    th_free(t);
}

/* A 32-bit instruction at the end of a mapped page whose next page is unmapped: the fault's
 * epc is the instruction, tval the address of the missing part (priv spec 3.1.16). */
TEST(mmu_straddling_fetch_fault)
{
    uint64_t root;
    struct th *t = vm_new(8, &root);
    th_map(t, root, 3, 0x10000, TH_CODE + 0x10000, 0, PTE_V_ | PTE_X_);
    th_org(t, TH_CODE + 0x10ffe);
    th_emit16(t, (uint16_t)I_ADDI(5, 0, 1)); /* low half only; the rest is on 0x11000 */
    t->h.pc = 0x10ffe;
    CHECK_EQ(th_run_until(t, 0, 20), TH_MTRAP);
    CHECK_EQ(t->h.mcause, EXC_INSN_PAGE_FAULT);
    CHECK_EQ(t->h.mepc, 0x10ffe);
    CHECK_EQ(t->h.mtval, 0x11000);
    CHECK_EQ(t->h.x[5], 0);
    /* mapped, but not executable */
    th_map(t, root, 3, 0x11000, TH_CODE + 0x11000, 0, PTE_V_ | PTE_R_);
    th_w16(t, TH_CODE + 0x11000, (uint16_t)(I_ADDI(5, 0, 1) >> 16));
    th_set_priv(t, PRV_S);
    t->h.pc = 0x10ffe;
    CHECK_EQ(th_run_until(t, 0, 20), TH_MTRAP);
    CHECK_EQ(t->h.mcause, EXC_INSN_PAGE_FAULT);
    CHECK_EQ(t->h.mtval, 0x11000);
    /* executable: it runs */
    th_map(t, root, 3, 0x11000, TH_CODE + 0x11000, 0, PTE_V_ | PTE_X_);
    th_w32(t, TH_CODE + 0x11002, I_ECALL());
    tlb_flush_all(&t->h);
    th_set_priv(t, PRV_S);
    t->h.pc = 0x10ffe;
    CHECK_EQ(th_run_until(t, 0, 20), TH_MTRAP);
    CHECK_EQ(t->h.mcause, EXC_ECALL_S);
    CHECK_EQ(t->h.mepc, 0x11002);
    CHECK_EQ(t->h.x[5], 1);
    th_free(t);
}

/* sfence.vma makes a changed PTE visible (priv spec 10.2.1). */
TEST(mmu_remap_after_sfence_vma)
{
    uint64_t root;
    struct th *t = vm_new(8, &root);
    uint64_t pte =
        th_map(t, root, 3, 0x20000, TH_DATA, 0, PTE_V_ | PTE_R_ | PTE_W_ | PTE_A_ | PTE_D_);
    /* map the leaf table itself so the program can edit the PTE */
    uint64_t table = pte & ~0xfffull;
    th_map(t, root, 3, 0x40000, table, 0, PTE_V_ | PTE_R_ | PTE_W_ | PTE_A_ | PTE_D_);
    th_map(t, root, 3, 0x10000, TH_CODE + 0x10000, 0, PTE_V_ | PTE_X_ | PTE_A_);
    th_w64(t, TH_DATA, 111);
    th_w64(t, TH_DATA + 0x1000, 222);
    th_org(t, TH_CODE + 0x10000);
    th_emit(t, I_LD(5, 6, 0));
    th_emit(t, I_SD(9, 10, (int32_t)(pte & 0xfff)));
    th_emit(t, I_SFENCE_VMA(0, 0));
    th_emit(t, I_LD(11, 6, 0));
    th_emit(t, I_ECALL());
    t->h.pc = 0x10000;
    t->h.x[6] = 0x20000;
    t->h.x[9] = th_pte(TH_DATA + 0x1000, PTE_V_ | PTE_R_ | PTE_W_ | PTE_A_ | PTE_D_);
    t->h.x[10] = 0x40000;
    CHECK_EQ(th_run_until(t, 0, 20), TH_MTRAP);
    CHECK_EQ(t->h.mcause, EXC_ECALL_S);
    CHECK_EQ(t->h.x[5], 111);
    CHECK_EQ(t->h.x[11], 222);
    th_free(t);
}

/* sfence.vma with rs1 = an address (priv spec 10.2.1): a changed leaf for that address is seen
 * after it, for a 4 KiB page and for a superpage fenced through another of its 4 KiB pages
 * (the TLB holds superpages as 4 KiB entries); a 4 KiB fence leaves other pages cached. */
static bool tlb_cached(struct th *t, uint64_t va)
{
    for (unsigned s = 0; s < TLBI_COUNT; s++)
        for (unsigned a = 0; a < 3; a++)
            if (t->h.tlb[s].e[a][(va >> 12) & (TLB_SIZE - 1)].tag == ((va >> 12) ^ t->h.tlb_key))
                return true;
    return false;
}

TEST(mmu_sfence_vma_one_address)
{
    uint64_t root;
    struct th *t = vm_new(8, &root);
    const uint64_t rw = PTE_V_ | PTE_R_ | PTE_W_ | PTE_A_ | PTE_D_;
    uint64_t pte4k = th_map(t, root, 3, 0x20000, TH_DATA, 0, rw);
    th_map(t, root, 3, 0x21000, TH_DATA + 0x1000, 0, rw);
    uint64_t pte2m = th_map(t, root, 3, 0x200000, 0x80600000, 1, rw);
    th_map(t, root, 3, 0x10000, TH_CODE + 0x10000, 0, PTE_V_ | PTE_X_ | PTE_A_);
    th_w64(t, TH_DATA, 111);
    th_w64(t, TH_DATA + 0x2000, 222);
    th_w64(t, 0x80601000, 333);
    th_w64(t, 0x80801000, 444);
    th_org(t, TH_CODE + 0x10000);
    th_emit(t, I_LD(5, 6, 0)); /* 0x20000 and 0x201000 enter the TLB */
    th_emit(t, I_LD(5, 7, 0)); /* 0x21000 too */
    th_emit(t, I_LD(5, 8, 0)); /* 0x201000 */
    th_emit(t, I_ECALL());
    th_emit(t, I_SFENCE_VMA(6, 0)); /* 0x10010: after the PTEs changed */
    th_emit(t, I_SFENCE_VMA(9, 0)); /* 0x200000: another 4 KiB page of the superpage */
    th_emit(t, I_LD(11, 6, 0));
    th_emit(t, I_LD(12, 8, 0));
    th_emit(t, I_ECALL());
    t->h.pc = 0x10000;
    t->h.x[6] = 0x20000;
    t->h.x[7] = 0x21000;
    t->h.x[8] = 0x201000;
    t->h.x[9] = 0x200000;
    CHECK_EQ(th_run_until(t, 0, 20), TH_MTRAP);
    CHECK_EQ(t->h.x[5], 333);
    CHECK(tlb_cached(t, 0x20000) && tlb_cached(t, 0x21000) && tlb_cached(t, 0x201000));
    th_w64(t, pte4k, th_pte(TH_DATA + 0x2000, rw));
    th_w64(t, pte2m, th_pte(0x80800000, rw));
    th_set_priv(t, PRV_S);
    t->h.pc = 0x10010;
    CHECK_EQ(th_run_until(t, 0, 20), TH_MTRAP);
    CHECK_EQ(t->h.mcause, EXC_ECALL_S);
    CHECK_EQ(t->h.x[11], 222);
    CHECK_EQ(t->h.x[12], 444);
    /* the superpage fence flushed everything; a 4 KiB one only its page */
    CHECK(tlb_cached(t, 0x20000) && !tlb_cached(t, 0x21000));
    tlb_flush_page(&t->h, 0x20000);
    CHECK(!tlb_cached(t, 0x20000) && tlb_cached(t, 0x201000));
    th_free(t);
}

/* Two pages whose TLB entries collide (addresses 4 MiB apart: the same index) used in turn:
 * after both were walked once, each miss takes the other from the victim way instead of
 * walking again, with the right data; sfence.vma of an address drops its victim entry too (a
 * remap is then seen), and a full flush all of them. */
TEST(mmu_tlb_victim_way)
{
    uint64_t root;
    struct th *t = vm_new(8, &root);
    const uint64_t rw = PTE_V_ | PTE_R_ | PTE_W_ | PTE_A_ | PTE_D_;
    const uint64_t va = 0x20000, vb = va + ((uint64_t)TLB_SIZE << 12);
    uint64_t pte_a = th_map(t, root, 3, va, TH_DATA, 0, rw);
    th_map(t, root, 3, vb, TH_DATA + 0x1000, 0, rw);
    th_w64(t, TH_DATA, 111);
    th_w64(t, TH_DATA + 0x1000, 222);
    th_w64(t, TH_DATA + 0x2000, 333);
    uint64_t v;
    CHECK_EQ(mem_load_slow(&t->h, va, 8, &v), 0);
    CHECK_EQ(v, 111);
    CHECK_EQ(mem_load_slow(&t->h, vb, 8, &v), 0); /* evicts va's entry into the victim way */
    CHECK_EQ(v, 222);
    uint64_t walks = t->h.tlb_refills, hits = t->h.tlb_victim_hits;
    for (int i = 0; i < 10; i++) {
        CHECK_EQ(mem_load_slow(&t->h, i & 1 ? vb : va, 8, &v), 0);
        CHECK_EQ(v, i & 1 ? 222u : 111u);
    }
    CHECK_EQ(t->h.tlb_refills, walks);
    CHECK_EQ(t->h.tlb_victim_hits - hits, 10);
    /* va is in the victim way now (vb was used last); remap va and fence it */
    CHECK(!tlb_cached(t, va) && tlb_cached(t, vb));
    th_w64(t, pte_a, th_pte(TH_DATA + 0x2000, rw));
    tlb_flush_page(&t->h, va);
    CHECK_EQ(mem_load_slow(&t->h, va, 8, &v), 0);
    CHECK_EQ(v, 333);
    CHECK_EQ(t->h.tlb_refills, walks + 1);
    /* a full flush: both walk again */
    tlb_flush_all(&t->h);
    CHECK_EQ(mem_load_slow(&t->h, vb, 8, &v), 0);
    CHECK_EQ(mem_load_slow(&t->h, va, 8, &v), 0);
    CHECK_EQ(v, 333);
    CHECK_EQ(t->h.tlb_refills, walks + 3);
    th_free(t);
}

/* Decoded code follows the mapping: the same VA remapped to other physical code runs the new
 * code once the TLB is flushed (the decode cache is keyed by physical page). */
TEST(mmu_code_remap)
{
    uint64_t root;
    struct th *t = vm_new(8, &root);
    uint64_t a = TH_CODE + 0x20000, b = TH_CODE + 0x21000;
    uint64_t pte = th_map(t, root, 3, 0x10000, a, 0, PTE_V_ | PTE_X_ | PTE_A_);
    th_w32(t, a, I_ADDI(5, 0, 1));
    th_w32(t, a + 4, I_ECALL());
    th_w32(t, b, I_ADDI(5, 0, 2));
    th_w32(t, b + 4, I_ECALL());
    t->h.pc = 0x10000;
    CHECK_EQ(th_run_until(t, 0, 20), TH_MTRAP);
    CHECK_EQ(t->h.x[5], 1);
    th_w64(t, pte, th_pte(b, PTE_V_ | PTE_X_ | PTE_A_));
    tlb_flush_all(&t->h); /* what sfence.vma does */
    th_set_priv(t, PRV_S);
    t->h.pc = 0x10000;
    CHECK_EQ(th_run_until(t, 0, 20), TH_MTRAP);
    CHECK_EQ(t->h.x[5], 2);
    CHECK_EQ(t->h.mepc, 0x10004);
    th_free(t);
}

/* Linux turns the MMU on with stvec pointing at a virtual address: the fetch after the satp
 * write (still at the physical pc) page-faults into stvec (NOTES-boot.md, "MMU-on trick"). */
TEST(mmu_satp_write_takes_effect_immediately)
{
    struct th *t = th_new();
    th_pmp_allow_all(t);
    uint64_t root = th_pt_alloc(t);
    uint64_t kva = 0xffffffc000000000ull; /* 1 GiB at PA 0x80000000 */
    th_map(t, root, 3, kva, 0x80000000, 2, PTE_V_ | PTE_R_ | PTE_W_ | PTE_X_ | PTE_A_ | PTE_D_);
    th_csrw(t, CSR_MEDELEG_N, 1ull << EXC_INSN_PAGE_FAULT);
    uint64_t stvec_va = kva + (TH_STRAP - 0x80000000);
    th_csrw(t, CSR_STVEC_N, stvec_va);
    th_set_priv(t, PRV_S);
    uint64_t w = th_emit(t, I_CSRRW(0, CSR_SATP_N, 5));
    th_emit(t, I_ADDI(6, 0, 1)); /* never runs: PA 0x80000004 is not mapped at VA 0x80000004 */
    t->h.x[5] = SATP_SV39 | (root >> 12);
    CHECK_EQ(th_run_until(t, stvec_va, 20), stvec_va);
    CHECK_EQ(t->h.priv, PRV_S);
    CHECK_EQ(t->h.scause, EXC_INSN_PAGE_FAULT);
    CHECK_EQ(t->h.sepc, w + 4);
    CHECK_EQ(t->h.stval, w + 4);
    CHECK_EQ(t->h.x[6], 0);
    th_free(t);
}

/* ---- PMP (priv spec 3.7) ---- */

static void pmp_set(struct th *t, unsigned i, uint64_t addr, uint8_t cfg)
{
    th_csrw(t, CSR_PMPADDR0_N + i, addr);
    uint64_t reg = CSR_PMPCFG0_N + (i / 8) * 2;
    uint64_t v = th_csrr(t, reg);
    unsigned sh = (i % 8) * 8;
    th_csrw(t, reg, (v & ~(0xffull << sh)) | ((uint64_t)cfg << sh));
}
#define PMP_R     0x01
#define PMP_W     0x02
#define PMP_X     0x04
#define PMP_TOR   0x08
#define PMP_NA4   0x10
#define PMP_NAPOT 0x18
#define PMP_L     0x80
static uint64_t napot(uint64_t base, uint64_t size)
{
    return (base >> 2) | ((size >> 3) - 1);
}

TEST(pmp_napot_region)
{
    struct th *t = th_new();
    pmp_set(t, 0, napot(0x80100000, 0x10000), PMP_NAPOT | PMP_R);
    struct hart *h = &t->h;
    CHECK(pmp_check(h, 0x80100000, 8, ACC_R, PRV_S));
    CHECK(pmp_check(h, 0x8010fff8, 8, ACC_R, PRV_U));
    CHECK(!pmp_check(h, 0x80100000, 8, ACC_W, PRV_S));
    CHECK(!pmp_check(h, 0x80100000, 4, ACC_X, PRV_S));
    CHECK(!pmp_check(h, 0x800ffff8, 8, ACC_R, PRV_S)); /* no entry matches: S/U denied */
    CHECK(!pmp_check(h, 0x80110000, 1, ACC_R, PRV_S));
    CHECK(!pmp_check(h, 0x8010fffc, 8, ACC_R, PRV_S)); /* only partly inside */
    CHECK(!pmp_check(h, 0x800ffffc, 8, ACC_R, PRV_S));
    /* M: unlocked entries and no match both allow */
    CHECK(pmp_check(h, 0x80100000, 8, ACC_W, PRV_M));
    CHECK(pmp_check(h, 0x80100000, 8, ACC_X, PRV_M));
    CHECK(pmp_check(h, 0x90000000, 8, ACC_W, PRV_M));
    th_free(t);
}

TEST(pmp_na4_region)
{
    struct th *t = th_new();
    pmp_set(t, 3, 0x80100010 >> 2, PMP_NA4 | PMP_R | PMP_W);
    struct hart *h = &t->h;
    CHECK(pmp_check(h, 0x80100010, 4, ACC_R, PRV_S));
    CHECK(pmp_check(h, 0x80100013, 1, ACC_W, PRV_S));
    CHECK(!pmp_check(h, 0x8010000c, 4, ACC_R, PRV_S));
    CHECK(!pmp_check(h, 0x80100014, 4, ACC_R, PRV_S));
    CHECK(!pmp_check(h, 0x80100010, 4, ACC_X, PRV_S));
    CHECK(!pmp_check(h, 0x80100010, 8, ACC_R, PRV_S)); /* wider than the entry */
    th_free(t);
}

TEST(pmp_tor_regions)
{
    struct th *t = th_new();
    struct hart *h = &t->h;
    /* entry 0 TOR: [0, 0x80000000) */
    pmp_set(t, 0, 0x80000000 >> 2, PMP_TOR | PMP_R | PMP_W | PMP_X);
    CHECK(pmp_check(h, 0, 8, ACC_W, PRV_U));
    CHECK(pmp_check(h, 0x7ffffff8, 8, ACC_X, PRV_S));
    CHECK(!pmp_check(h, 0x80000000, 4, ACC_R, PRV_S));
    CHECK(!pmp_check(h, 0x7ffffffc, 8, ACC_R, PRV_S));
    /* entries 1, 2: [0x80101000, 0x80102000) via pmpaddr1 (entry 1 off) */
    pmp_set(t, 1, 0x80101000 >> 2, 0);
    pmp_set(t, 2, 0x80102000 >> 2, PMP_TOR | PMP_R | PMP_X);
    CHECK(pmp_check(h, 0x80101000, 4, ACC_R, PRV_S));
    CHECK(pmp_check(h, 0x80101ffc, 4, ACC_X, PRV_S));
    CHECK(!pmp_check(h, 0x80101000, 4, ACC_W, PRV_S));
    CHECK(!pmp_check(h, 0x80100ffc, 4, ACC_R, PRV_S));
    CHECK(!pmp_check(h, 0x80102000, 4, ACC_R, PRV_S));
    CHECK(!pmp_check(h, 0x80101ffc, 8, ACC_R, PRV_S));
    th_free(t);
    /* top <= bottom: the entry matches nothing, the next one decides */
    t = th_new();
    h = &t->h;
    pmp_set(t, 0, 0x80102000 >> 2, 0);
    pmp_set(t, 1, 0x80101000 >> 2, PMP_TOR | PMP_R | PMP_W);
    pmp_set(t, 2, napot(0x80100000, 0x10000), PMP_NAPOT | PMP_R);
    CHECK(!pmp_check(h, 0x80101800, 4, ACC_W, PRV_S));
    CHECK(pmp_check(h, 0x80101800, 4, ACC_R, PRV_S));
    th_free(t);
}

/* The lowest-numbered matching entry decides. */
TEST(pmp_priority_lowest_entry_wins)
{
    struct th *t = th_new();
    struct hart *h = &t->h;
    pmp_set(t, 0, napot(0x80100000, 0x10000), PMP_NAPOT); /* no permissions */
    pmp_set(t, 1, napot(0x80000000, TH_RAM_SIZE), PMP_NAPOT | PMP_R | PMP_W | PMP_X);
    CHECK(!pmp_check(h, 0x80100000, 4, ACC_R, PRV_S));
    CHECK(!pmp_check(h, 0x8010fffc, 4, ACC_X, PRV_U));
    CHECK(pmp_check(h, 0x800ffffc, 4, ACC_W, PRV_S));
    CHECK(pmp_check(h, 0x80110000, 4, ACC_W, PRV_S));
    CHECK(pmp_check(h, 0x80100000, 4, ACC_W, PRV_M));
    th_free(t);
}

/* Locked entries also bind M-mode (priv spec 3.7.1.2). */
TEST(pmp_locked_entry_binds_m)
{
    struct th *t = th_new();
    struct hart *h = &t->h;
    pmp_set(t, 0, napot(0x80100000, 0x10000), PMP_NAPOT | PMP_R);
    CHECK(pmp_check(h, 0x80100000, 8, ACC_W, PRV_M));
    pmp_set(t, 0, napot(0x80100000, 0x10000), PMP_NAPOT | PMP_R | PMP_L);
    CHECK(pmp_check(h, 0x80100000, 8, ACC_R, PRV_M));
    CHECK(!pmp_check(h, 0x80100000, 8, ACC_W, PRV_M));
    CHECK(!pmp_check(h, 0x80100000, 4, ACC_X, PRV_M));
    CHECK(pmp_check(h, 0x80200000, 8, ACC_W, PRV_M)); /* outside: M still allowed */
    /* and through the data path */
    uint64_t v;
    CHECK_EQ(mem_store_slow(h, 0x80100000, 8, 1), EXC_STORE_ACCESS);
    CHECK_EQ(mem_load_slow(h, 0x80100000, 8, &v), 0);
    th_free(t);
}

/* The matching entry must cover every byte of the access, whatever the privilege and the
 * L/R/W/X bits (priv spec 3.7.1.3): an aligned 8-byte M-mode access overlapping a 4-byte
 * entry fails. */
TEST(pmp_partial_match_fails_in_m)
{
    struct th *t = th_new();
    pmp_set(t, 0, 0x80100004 >> 2, PMP_NA4 | PMP_R | PMP_W);
    /* regression (fixed in 8bda97a): M-mode with no locked entry skipped the match check */
    CHECK(!pmp_check(&t->h, 0x80100000, 8, ACC_R, PRV_M));
    CHECK(pmp_check(&t->h, 0x80100004, 4, ACC_R, PRV_M));
    CHECK(pmp_check(&t->h, 0x80100008, 8, ACC_W, PRV_M));
    th_free(t);
}

/* PMP applies to S-mode execution, loads, stores and to the page-table walk. */
TEST(pmp_faults_in_s_mode)
{
    struct th *t = th_new();
    /* code page X only, data page R only, everything else nothing */
    pmp_set(t, 0, napot(TH_CODE, 0x1000), PMP_NAPOT | PMP_X);
    pmp_set(t, 1, napot(TH_DATA, 0x1000), PMP_NAPOT | PMP_R);
    th_w64(t, TH_DATA, 99);
    th_emit(t, I_LD(5, 6, 0));
    uint64_t st = th_emit(t, I_SD(5, 6, 8));
    th_set_priv(t, PRV_S);
    t->h.x[6] = TH_DATA;
    CHECK_EQ(th_run_until(t, 0, 20), TH_MTRAP);
    CHECK_EQ(t->h.mcause, EXC_STORE_ACCESS);
    CHECK_EQ(t->h.mepc, st);
    CHECK_EQ(t->h.mtval, TH_DATA + 8);
    CHECK_EQ(t->h.x[5], 99);
    /* fetch outside the X region */
    th_set_priv(t, PRV_S);
    t->h.pc = TH_CODE + 0x1000;
    CHECK_EQ(th_run_until(t, 0, 20), TH_MTRAP);
    CHECK_EQ(t->h.mcause, EXC_INSN_ACCESS);
    CHECK_EQ(t->h.mtval, TH_CODE + 0x1000);
    /* the page-table walk is checked too */
    uint64_t root = th_pt_alloc(t);
    th_csrw(t, CSR_SATP_N, SATP_SV39 | (root >> 12));
    th_set_priv(t, PRV_S);
    uint64_t pa;
    CHECK_EQ(xlate(t, 0x1000, ACC_R, &pa), EXC_LOAD_ACCESS);
    CHECK_EQ(xlate(t, 0x1000, ACC_W, &pa), EXC_STORE_ACCESS);
    CHECK_EQ(xlate(t, 0x1000, ACC_X, &pa), EXC_INSN_ACCESS);
    th_free(t);
}

/* A PMP change takes effect for later accesses even to pages already in the TLB, and a page
 * only partly covered by an entry is never cached as a whole. */
TEST(pmp_changes_and_partial_pages_vs_tlb)
{
    struct th *t = th_new();
    pmp_set(t, 0, napot(TH_CODE, 0x10000), PMP_NAPOT | PMP_X);
    pmp_set(t, 1, napot(TH_DATA, 0x1000), PMP_NAPOT | PMP_R | PMP_W);
    th_w64(t, TH_DATA, 5);
    th_emit(t, I_LD(5, 6, 0));
    uint64_t end = th_emit(t, I_SELF_LOOP());
    th_set_priv(t, PRV_S);
    t->h.x[6] = TH_DATA;
    CHECK_EQ(th_run_until(t, end, 20), end);
    CHECK_EQ(t->h.x[5], 5);
    pmp_set(t, 1, napot(TH_DATA, 0x1000), PMP_NAPOT | PMP_W); /* no longer readable */
    t->h.pc = TH_CODE;
    t->h.x[5] = 0;
    CHECK_EQ(th_run_until(t, end, 20), TH_MTRAP);
    CHECK_EQ(t->h.mcause, EXC_LOAD_ACCESS);
    CHECK_EQ(t->h.x[5], 0);
    /* only 8 bytes of the data page readable */
    pmp_set(t, 1, napot(TH_DATA, 8), PMP_NAPOT | PMP_R);
    th_org(t, TH_CODE);
    th_emit(t, I_LD(5, 6, 0));
    th_emit(t, I_LD(5, 6, 0));
    uint64_t bad = th_emit(t, I_LD(7, 6, 8));
    th_emit(t, I_SELF_LOOP());
    dcache_flush(&t->h);
    th_set_priv(t, PRV_S);
    t->h.pc = TH_CODE;
    CHECK_EQ(th_run_until(t, 0, 20), TH_MTRAP);
    CHECK_EQ(t->h.mcause, EXC_LOAD_ACCESS);
    CHECK_EQ(t->h.mepc, bad);
    CHECK_EQ(t->h.x[5], 5);
    th_free(t);
}

/* Sdtrig load/store triggers match virtual addresses (debug spec 1.0, 5.5): under paging an
 * alias of the watched physical page does not match, and only the watched page is kept out of
 * the data TLB (the other stays on the fast path). */
TEST(mmu_triggers_match_virtual_addresses)
{
    uint64_t root, v;
    struct th *t = vm_new(8, &root);
    th_map(t, root, 3, 0x40001000, 0x80200000, 0, PTE_V_ | PTE_R_ | PTE_W_ | PTE_A_ | PTE_D_);
    th_map(t, root, 3, 0x40002000, 0x80200000, 0, PTE_V_ | PTE_R_ | PTE_W_ | PTE_A_ | PTE_D_);
    th_w64(t, 0x80200008, 42);
    th_csrw(t, 0x7a2, 0x40001008);                                    /* tdata2 */
    th_csrw(t, 0x7a1, (6ull << 60) | (1 << 4) | (1 << 1) | (1 << 0)); /* S, load, store */
    CHECK_EQ(mem_load_slow(&t->h, 0x40002008, 8, &v), 0);
    CHECK_EQ(v, 42);
    CHECK_EQ(mem_load_slow(&t->h, 0x40001008, 8, &v), EXC_BREAKPOINT);
    CHECK_EQ(t->h.fault_tval, 0x40001008);
    CHECK_EQ(mem_store_slow(&t->h, 0x40001000, 8, 7), 0); /* same page, other bytes */
    CHECK_EQ(mem_store_slow(&t->h, 0x40001004, 8, 7), EXC_BREAKPOINT);
    CHECK_EQ(t->h.fault_tval, 0x40001008);
    CHECK_EQ(th_r64(t, 0x80200008), 42);
    /* the alias entered the read TLB, the watched page did not */
    const struct tlb_entry *r = t->h.tlb[TLBI_S].e[ACC_R];
    CHECK_EQ(r[0x40002 & (TLB_SIZE - 1)].tag, 0x40002 ^ t->h.tlb_key);
    CHECK(r[0x40001 & (TLB_SIZE - 1)].tag != (0x40001 ^ t->h.tlb_key));
    CHECK(t->h.tlb[TLBI_S].e[ACC_W][0x40001 & (TLB_SIZE - 1)].tag != (0x40001 ^ t->h.tlb_key));
    /* disarmed: the page may be cached again */
    th_csrw(t, 0x7a1, 0);
    CHECK_EQ(mem_load_slow(&t->h, 0x40001008, 8, &v), 0);
    CHECK_EQ(r[0x40001 & (TLB_SIZE - 1)].tag, 0x40001 ^ t->h.tlb_key);
    th_free(t);
}

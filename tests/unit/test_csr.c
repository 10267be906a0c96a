/* CSRs through csr_access (priv spec ch. 2 "CSRs", 3.1 machine-level CSRs, 10.1 supervisor
 * CSRs, Sstc, Zicntr, the F extension's fcsr), trap entry and return (hart_raise_exception,
 * hart_mret, hart_sret; priv spec 3.1.6.1, 3.3.2) and interrupts (hart_check_interrupts;
 * priv spec 3.1.9 "mip and mie", 3.1.8 delegation). */
#include "cpu_harness.h"

#define M1 0xffffffffffffffffull

/* ---- CSRs ---- */

TEST(csr_misa)
{
    struct th *t = th_new();
    uint64_t v = th_csrr(t, CSR_MISA_N);
    CHECK_EQ(v >> 62, 2); /* MXL = 64 */
    for (const char *e = "ACDFIMSU"; *e; e++)
        CHECK(v & (1ull << (*e - 'A')));
    CHECK_EQ(v & (1ull << ('H' - 'A')), 0); /* no hypervisor: OpenSBI would use it */
    CHECK_EQ(v & (1ull << ('V' - 'A')), 0);
    CHECK_EQ(v, 0x800000000014112dull);
    /* WARL: writes are accepted and change nothing */
    uint64_t old;
    CHECK_EQ(th_csr_m(t, CSR_MISA_N, 0, 0, true, &old), 0);
    CHECK_EQ(th_csrr(t, CSR_MISA_N), v);
    th_free(t);
}

TEST(csr_mstatus_write_masks)
{
    struct th *t = th_new();
    th_csrw(t, CSR_MSTATUS_N, M1);
    /* SIE MIE SPIE MPIE SPP MPP FS MPRV SUM MXR TVM TW TSR, UXL = SXL = 2 (read-only), SD */
    CHECK_EQ(th_csrr(t, CSR_MSTATUS_N), 0x8000000a007e79aaull);
    th_csrw(t, CSR_MSTATUS_N, 0);
    CHECK_EQ(th_csrr(t, CSR_MSTATUS_N), 0x0000000a00000000ull); /* UXL/SXL stay 2 */
    /* MPP = 2 is reserved: the field keeps a legal value */
    th_csrw(t, CSR_MSTATUS_N, 1ull << 11);
    th_csrw(t, CSR_MSTATUS_N, 2ull << 11);
    uint64_t mpp = (th_csrr(t, CSR_MSTATUS_N) & MSTATUS_MPP) >> 11;
    CHECK(mpp != 2);
    CHECK_EQ(mpp, 1);
    /* SD summarises FS == Dirty */
    th_csrw(t, CSR_MSTATUS_N, 1ull << 13);
    CHECK_EQ(th_csrr(t, CSR_MSTATUS_N) & MSTATUS_SD, 0);
    th_csrw(t, CSR_MSTATUS_N, 2ull << 13);
    CHECK_EQ(th_csrr(t, CSR_MSTATUS_N) & MSTATUS_SD, 0);
    th_csrw(t, CSR_MSTATUS_N, 3ull << 13);
    CHECK(th_csrr(t, CSR_MSTATUS_N) & MSTATUS_SD);
    /* UXL/SXL cannot be changed */
    th_csrw(t, CSR_MSTATUS_N, (1ull << 32) | (1ull << 34));
    CHECK_EQ(th_csrr(t, CSR_MSTATUS_N) & (MSTATUS_UXL | MSTATUS_SXL), 0xa00000000ull);
    th_free(t);
}

TEST(csr_sstatus_is_a_view)
{
    struct th *t = th_new();
    uint64_t m_only = MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP | MSTATUS_MPRV | MSTATUS_TVM |
                      MSTATUS_TW | MSTATUS_TSR;
    uint64_t s_bits =
        MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_FS | MSTATUS_SUM | MSTATUS_MXR;
    th_csrw(t, CSR_MSTATUS_N, m_only | s_bits);
    CHECK_EQ(th_csrr(t, CSR_SSTATUS_N), s_bits | (2ull << 32) | MSTATUS_SD);
    /* writing sstatus never touches M-only fields */
    th_csrw(t, CSR_SSTATUS_N, 0);
    CHECK_EQ(th_csrr(t, CSR_MSTATUS_N) & ~(MSTATUS_UXL | MSTATUS_SXL), m_only);
    th_csrw(t, CSR_MSTATUS_N, MSTATUS_MIE);
    th_csrw(t, CSR_SSTATUS_N, M1);
    CHECK_EQ(th_csrr(t, CSR_MSTATUS_N) & ~(MSTATUS_UXL | MSTATUS_SXL | MSTATUS_SD),
             MSTATUS_MIE | s_bits);
    /* accessible from S, not from U */
    uint64_t v;
    th_set_priv(t, PRV_S);
    CHECK_EQ(th_csr_read_at(t, CSR_SSTATUS_N, &v), 0);
    CHECK_EQ(v & MSTATUS_MIE, 0);
    th_set_priv(t, PRV_U);
    CHECK_EQ(th_csr_read_at(t, CSR_SSTATUS_N, &v), EXC_ILLEGAL_INSN);
    th_free(t);
}

/* sie/sip are mie/mip restricted to the bits delegated in mideleg (priv spec 10.1.3). */
TEST(csr_sie_sip_masked_by_mideleg)
{
    struct th *t = th_new();
    th_csrw(t, CSR_MIE_N, 0xaaa);
    CHECK_EQ(th_csrr(t, CSR_MIE_N), 0xaaa);
    CHECK_EQ(th_csrr(t, CSR_SIE_N), 0);
    th_csrw(t, CSR_MIDELEG_N, MIP_SSIP | MIP_STIP | MIP_SEIP);
    CHECK_EQ(th_csrr(t, CSR_SIE_N), 0x222);
    th_csrw(t, CSR_SIE_N, 0);
    CHECK_EQ(th_csrr(t, CSR_MIE_N), 0x888); /* M bits untouched */
    th_csrw(t, CSR_SIE_N, M1);
    CHECK_EQ(th_csrr(t, CSR_MIE_N), 0xaaa);
    th_csrw(t, CSR_MIDELEG_N, MIP_SSIP);
    th_csrw(t, CSR_SIE_N, 0);
    CHECK_EQ(th_csrr(t, CSR_MIE_N), 0xaa8);
    /* sip: SSIP visible and writable only when delegated */
    th_csrw(t, CSR_MIP_N, MIP_SSIP | MIP_STIP);
    CHECK_EQ(th_csrr(t, CSR_SIP_N), MIP_SSIP);
    th_csrw(t, CSR_SIP_N, 0);
    CHECK_EQ(th_csrr(t, CSR_MIP_N) & MIP_SSIP, 0);
    CHECK(th_csrr(t, CSR_MIP_N) & MIP_STIP);
    th_csrw(t, CSR_MIDELEG_N, 0);
    th_csrw(t, CSR_SIP_N, MIP_SSIP); /* not delegated: no effect, no trap */
    CHECK_EQ(th_csrr(t, CSR_MIP_N) & MIP_SSIP, 0);
    CHECK_EQ(th_csrr(t, CSR_SIP_N), 0);
    /* STIP/SEIP are read-only in sip; MTIP is never visible there */
    th_csrw(t, CSR_MIDELEG_N, MIP_SSIP | MIP_STIP | MIP_SEIP);
    th_csrw(t, CSR_MIP_N, 0);
    th_csrw(t, CSR_SIP_N, MIP_STIP | MIP_SEIP);
    CHECK_EQ(th_csrr(t, CSR_MIP_N) & (MIP_STIP | MIP_SEIP), 0);
    atomic_store(&t->clint.mtimecmp[0], 0);
    CHECK(th_csrr(t, CSR_MIP_N) & MIP_MTIP);
    CHECK_EQ(th_csrr(t, CSR_SIP_N) & MIP_MTIP, 0);
    th_free(t);
}

TEST(csr_deleg_writable_masks)
{
    struct th *t = th_new();
    th_csrw(t, CSR_MEDELEG_N, M1);
    uint64_t md = th_csrr(t, CSR_MEDELEG_N);
    CHECK_EQ(md & (1ull << EXC_ECALL_M), 0); /* medeleg[11] is read-only zero */
    CHECK_EQ(md, 0xb3ff);                    /* every defined exception but ecall from M */
    th_csrw(t, CSR_MIDELEG_N, M1);
    CHECK_EQ(th_csrr(t, CSR_MIDELEG_N), MIP_SSIP | MIP_STIP | MIP_SEIP);
    th_csrw(t, CSR_MIE_N, M1);
    CHECK_EQ(th_csrr(t, CSR_MIE_N), 0xaaa);
    th_free(t);
}

TEST(csr_tvec_modes)
{
    struct th *t = th_new();
    static const unsigned csrs[] = {CSR_MTVEC_N, CSR_STVEC_N};
    for (unsigned k = 0; k < 2; k++) {
        th_csrw(t, csrs[k], 0x80001001);
        CHECK_EQ(th_csrr(t, csrs[k]), 0x80001001); /* vectored */
        th_csrw(t, csrs[k], 0x80001000);
        CHECK_EQ(th_csrr(t, csrs[k]), 0x80001000); /* direct */
        th_csrw(t, csrs[k], 0x80001002);           /* mode 2, 3 reserved (WARL) */
        CHECK((th_csrr(t, csrs[k]) & 3) < 2);
        CHECK_EQ(th_csrr(t, csrs[k]) & ~3ull, 0x80001000);
        th_csrw(t, csrs[k], 0x80001003);
        CHECK((th_csrr(t, csrs[k]) & 3) < 2);
    }
    th_free(t);
}

/* With C, IALIGN = 16: xepc[0] is always zero (priv spec 3.1.14). */
TEST(csr_epc_low_bit)
{
    struct th *t = th_new();
    th_csrw(t, CSR_MEPC_N, 0x80000003);
    CHECK_EQ(th_csrr(t, CSR_MEPC_N), 0x80000002);
    th_csrw(t, CSR_SEPC_N, M1);
    CHECK_EQ(th_csrr(t, CSR_SEPC_N), 0xfffffffffffffffeull);
    th_free(t);
}

/* satp (priv spec 10.1.11): an unsupported MODE makes the whole write have no effect. */
TEST(csr_satp)
{
    struct th *t = th_new();
    th_csrw(t, CSR_SATP_N, SATP_SV39 | (0xffffull << 44) | 0x80123);
    uint64_t v = th_csrr(t, CSR_SATP_N);
    CHECK_EQ(v >> 60, 8);
    CHECK_EQ((v >> 44) & 0xffff, 0xffff); /* ASIDLEN = 16 */
    CHECK_EQ(v & ((1ull << 44) - 1), 0x80123);
    th_csrw(t, CSR_SATP_N, SATP_SV48 | 0x1);
    CHECK_EQ(th_csrr(t, CSR_SATP_N), SATP_SV48 | 0x1);
    th_csrw(t, CSR_SATP_N, SATP_SV57 | ((1ull << 44) - 1));
    CHECK_EQ(th_csrr(t, CSR_SATP_N), SATP_SV57 | ((1ull << 44) - 1));
    static const uint64_t bad_modes[] = {1, 5, 7, 11, 15};
    for (unsigned k = 0; k < 5; k++) {
        th_csrw(t, CSR_SATP_N, (bad_modes[k] << 60) | 0x555);
        CHECK_EQ(th_csrr(t, CSR_SATP_N), SATP_SV57 | ((1ull << 44) - 1));
    }
    th_csrw(t, CSR_SATP_N, 0);
    CHECK_EQ(th_csrr(t, CSR_SATP_N), 0);
    /* S-mode access, trapped by mstatus.TVM; never from U */
    uint64_t old;
    th_set_priv(t, PRV_S);
    CHECK_EQ(th_csr_write_at(t, CSR_SATP_N, SATP_SV39 | 5), 0);
    CHECK_EQ(th_csr_read_at(t, CSR_SATP_N, &old), 0);
    CHECK_EQ(old, SATP_SV39 | 5);
    t->h.mstatus |= MSTATUS_TVM;
    CHECK_EQ(th_csr_read_at(t, CSR_SATP_N, &old), EXC_ILLEGAL_INSN);
    CHECK_EQ(th_csr_write_at(t, CSR_SATP_N, 0), EXC_ILLEGAL_INSN);
    t->h.mstatus &= ~MSTATUS_TVM;
    th_set_priv(t, PRV_U);
    CHECK_EQ(th_csr_read_at(t, CSR_SATP_N, &old), EXC_ILLEGAL_INSN);
    th_free(t);
}

/* Zicntr gating (priv spec 3.1.11 mcounteren, 10.1.5 scounteren). */
TEST(csr_counter_gating)
{
    struct th *t = th_new();
    static const unsigned ctr[3] = {CSR_CYCLE_N, CSR_TIME_N, CSR_INSTRET_N};
    uint64_t v;
    for (unsigned k = 0; k < 3; k++)
        CHECK_EQ(th_csr_read_at(t, ctr[k], &v), 0); /* M: always */
    th_csrw(t, CSR_MCOUNTEREN_N, M1);
    CHECK_EQ(th_csrr(t, CSR_MCOUNTEREN_N), 7);
    th_csrw(t, CSR_SCOUNTEREN_N, M1);
    CHECK_EQ(th_csrr(t, CSR_SCOUNTEREN_N), 7);
    for (unsigned en = 0; en < 8; en++) {
        th_csrw(t, CSR_MCOUNTEREN_N, en);
        th_csrw(t, CSR_SCOUNTEREN_N, 7);
        th_set_priv(t, PRV_S);
        for (unsigned k = 0; k < 3; k++)
            CHECK_EQ(th_csr_read_at(t, ctr[k], &v), (en >> k) & 1 ? 0 : EXC_ILLEGAL_INSN);
        th_set_priv(t, PRV_U);
        for (unsigned k = 0; k < 3; k++)
            CHECK_EQ(th_csr_read_at(t, ctr[k], &v), (en >> k) & 1 ? 0 : EXC_ILLEGAL_INSN);
        th_set_priv(t, PRV_M);
        /* U needs both */
        th_csrw(t, CSR_MCOUNTEREN_N, 7);
        th_csrw(t, CSR_SCOUNTEREN_N, en);
        th_set_priv(t, PRV_U);
        for (unsigned k = 0; k < 3; k++)
            CHECK_EQ(th_csr_read_at(t, ctr[k], &v), (en >> k) & 1 ? 0 : EXC_ILLEGAL_INSN);
        th_set_priv(t, PRV_S); /* scounteren does not gate S */
        for (unsigned k = 0; k < 3; k++)
            CHECK_EQ(th_csr_read_at(t, ctr[k], &v), 0);
        th_set_priv(t, PRV_M);
    }
    /* time is the ACLINT's mtime */
    uint64_t before = aclint_mtime(&t->clint);
    CHECK_EQ(th_csr_read_at(t, CSR_TIME_N, &v), 0);
    CHECK(v >= before && v < before + VCLOCK_HZ);
    th_free(t);
}

TEST(csr_counters_writable_in_m)
{
    struct th *t = th_new();
    /* csr_access is called for an instruction that then retires: the written value replaces
     * that instruction's increment (Zicsr), so called alone it reads back one lower. */
    th_csrw(t, CSR_MINSTRET_N, 1000);
    CHECK_EQ(th_csrr(t, CSR_MINSTRET_N), 999);
    CHECK_EQ(th_csrr(t, CSR_INSTRET_N), 999);
    th_csrw(t, CSR_MCYCLE_N, 5000);
    CHECK_EQ(th_csrr(t, CSR_MCYCLE_N), 4999);
    CHECK_EQ(th_csrr(t, CSR_CYCLE_N), 4999);
    /* Executed: csrw minstret, x5; csrr x6, minstret; csrr x7, minstret; csrrw x8, mcycle,
     * x5; csrr x9, mcycle. The read right after a write sees exactly the value written. */
    t->h.x[5] = ~0ull;
    th_emit(t, I_CSRRW(0, CSR_MINSTRET_N, 5));
    th_emit(t, I_CSRRS(6, CSR_MINSTRET_N, 0));
    th_emit(t, I_CSRRS(7, CSR_MINSTRET_N, 0));
    th_emit(t, I_CSRRW(8, CSR_MCYCLE_N, 5));
    th_emit(t, I_CSRRS(9, CSR_MCYCLE_N, 0));
    uint64_t end = th_emit(t, I_SELF_LOOP());
    CHECK_EQ(th_run_until(t, end, 20), end);
    CHECK_EQ(t->h.x[6], ~0ull);
    CHECK_EQ(t->h.x[7], 0); /* wrapped modulo 2^64 (riscv-tests rv64mi instret_overflow) */
    CHECK_EQ(t->h.x[9], ~0ull);
    th_csrw(t, 0x320, M1); /* mcountinhibit: CY and IR; bit 1 (TM) is read-only zero */
    CHECK_EQ(th_csrr(t, 0x320) & 2, 0);
    CHECK_EQ(th_csrr(t, 0x320) & 5, 5);
    th_free(t);
}

/* CSR address bits [11:10] = 3: read-only; any write is illegal (priv spec 2.1). */
TEST(csr_read_only_write_illegal)
{
    struct th *t = th_new();
    uint64_t old;
    static const unsigned ro[] = {CSR_MHARTID_N, CSR_MVENDORID_N, 0xf12,        0xf13,
                                  CSR_CYCLE_N,   CSR_TIME_N,      CSR_INSTRET_N};
    for (unsigned k = 0; k < sizeof(ro) / sizeof(ro[0]); k++) {
        CHECK_EQ(th_csr_m(t, ro[k], 0, 0, true, &old), EXC_ILLEGAL_INSN);
        CHECK_EQ(th_csr_m(t, ro[k], 1, 0, true, &old), EXC_ILLEGAL_INSN);
        CHECK_EQ(th_csr_m(t, ro[k], 1, 0, false, &old), 0); /* csrrs rd, csr, x0 */
    }
    CHECK_EQ(th_csrr(t, CSR_MHARTID_N), 0);
    CHECK_EQ(th_csrr(t, CSR_MVENDORID_N), 0);
    th_free(t);
}

/* CSR address bits [9:8] give the lowest privilege that may access it (priv spec 2.1). */
TEST(csr_privilege_of_addresses)
{
    struct th *t = th_new();
    uint64_t v;
    th_set_priv(t, PRV_S);
    CHECK_EQ(th_csr_read_at(t, CSR_MSTATUS_N, &v), EXC_ILLEGAL_INSN);
    CHECK_EQ(th_csr_read_at(t, CSR_MSCRATCH_N, &v), EXC_ILLEGAL_INSN);
    CHECK_EQ(th_csr_read_at(t, CSR_MISA_N, &v), EXC_ILLEGAL_INSN);
    CHECK_EQ(th_csr_read_at(t, CSR_MHARTID_N, &v), EXC_ILLEGAL_INSN);
    CHECK_EQ(th_csr_read_at(t, CSR_PMPADDR0_N, &v), EXC_ILLEGAL_INSN);
    CHECK_EQ(th_csr_write_at(t, CSR_SSCRATCH_N, 42), 0);
    CHECK_EQ(th_csr_read_at(t, CSR_SSCRATCH_N, &v), 0);
    CHECK_EQ(v, 42);
    th_set_priv(t, PRV_U);
    CHECK_EQ(th_csr_read_at(t, CSR_SSCRATCH_N, &v), EXC_ILLEGAL_INSN);
    CHECK_EQ(th_csr_write_at(t, CSR_SSCRATCH_N, 1), EXC_ILLEGAL_INSN);
    CHECK_EQ(th_csr_read_at(t, CSR_SIE_N, &v), EXC_ILLEGAL_INSN);
    t->h.mstatus |= 1ull << 13;
    CHECK_EQ(th_csr_read_at(t, CSR_FFLAGS_N, &v), 0); /* user-level */
    th_set_priv(t, PRV_M);
    CHECK_EQ(th_csrr(t, CSR_SSCRATCH_N), 42); /* the failed U write changed nothing */
    /* unimplemented: hypervisor, debug, custom */
    static const unsigned none[] = {0x600, 0x200, 0x7b0, 0x7c0, 0x5c0, 0xfc0, 0xda0};
    for (unsigned k = 0; k < sizeof(none) / sizeof(none[0]); k++)
        CHECK_EQ(th_csr_read_at(t, none[k], &v), EXC_ILLEGAL_INSN);
    th_free(t);
}

/* Sstc: stimecmp exists below M only with menvcfg.STCE and mcounteren.TM (Sstc spec 2.1). */
TEST(csr_stimecmp_needs_stce)
{
    struct th *t = th_new();
    uint64_t v;
    th_csrw(t, CSR_STIMECMP_N, 1234);
    CHECK_EQ(th_csrr(t, CSR_STIMECMP_N), 1234);
    th_set_priv(t, PRV_S);
    CHECK_EQ(th_csr_read_at(t, CSR_STIMECMP_N, &v), EXC_ILLEGAL_INSN);
    CHECK_EQ(th_csr_write_at(t, CSR_STIMECMP_N, 5), EXC_ILLEGAL_INSN);
    th_set_priv(t, PRV_M);
    CHECK_EQ(th_csrr(t, CSR_STIMECMP_N), 1234);
    th_csrw(t, CSR_MENVCFG_N, M1);
    uint64_t menv = th_csrr(t, CSR_MENVCFG_N);
    CHECK(menv & MENVCFG_STCE);
    CHECK(menv & MENVCFG_FIOM);
    CHECK_EQ(menv & (1ull << 62), 0); /* PBMTE: the MMU treats PBMT bits as reserved */
    /* ... and mcounteren.TM (Sstc spec 2.1) */
    th_set_priv(t, PRV_S);
    CHECK_EQ(th_csr_read_at(t, CSR_STIMECMP_N, &v), EXC_ILLEGAL_INSN);
    th_csrw(t, CSR_MCOUNTEREN_N, 5);
    CHECK_EQ(th_csr_write_at(t, CSR_STIMECMP_N, 5), EXC_ILLEGAL_INSN);
    th_csrw(t, CSR_MCOUNTEREN_N, 2);
    CHECK_EQ(th_csr_write_at(t, CSR_STIMECMP_N, 5), 0);
    CHECK_EQ(th_csr_read_at(t, CSR_STIMECMP_N, &v), 0);
    CHECK_EQ(v, 5);
    th_set_priv(t, PRV_U);
    CHECK_EQ(th_csr_read_at(t, CSR_STIMECMP_N, &v), EXC_ILLEGAL_INSN);
    th_set_priv(t, PRV_M);
    th_csrw(t, CSR_SENVCFG_N, M1);
    CHECK(th_csrr(t, CSR_SENVCFG_N) & MENVCFG_FIOM);
    th_free(t);
}

/* RV64: only even pmpcfg registers exist (priv spec 3.7.1). */
TEST(csr_pmpcfg_odd_illegal)
{
    struct th *t = th_new();
    uint64_t v;
    for (unsigned n = 0; n < 16; n++) {
        int c = th_csr_m(t, CSR_PMPCFG0_N + n, 1, 0, false, &v);
        CHECK_EQ(c, (n & 1) ? EXC_ILLEGAL_INSN : 0);
        c = th_csr_m(t, CSR_PMPCFG0_N + n, 0, 0, true, &v);
        CHECK_EQ(c, (n & 1) ? EXC_ILLEGAL_INSN : 0);
    }
    /* 16 entries: pmpcfg4.. and pmpaddr16.. are read-only zero */
    th_csrw(t, CSR_PMPCFG0_N + 4, M1);
    CHECK_EQ(th_csrr(t, CSR_PMPCFG0_N + 4), 0);
    th_csrw(t, CSR_PMPADDR0_N + 16, M1);
    CHECK_EQ(th_csrr(t, CSR_PMPADDR0_N + 16), 0);
    th_csrw(t, CSR_PMPADDR0_N + 63, M1);
    CHECK_EQ(th_csrr(t, CSR_PMPADDR0_N + 63), 0);
    /* pmpaddr holds bits 55:2 */
    th_csrw(t, CSR_PMPADDR0_N + 3, M1);
    CHECK_EQ(th_csrr(t, CSR_PMPADDR0_N + 3), (1ull << 54) - 1);
    /* reserved cfg bits 6:5 read zero; W without R is reserved */
    th_csrw(t, CSR_PMPCFG0_N, 0x7full | (0x1aull << 8));
    uint64_t cfg = th_csrr(t, CSR_PMPCFG0_N);
    CHECK_EQ(cfg & 0x60, 0);
    CHECK_EQ(cfg & 0x1f, 0x1f);
    CHECK((cfg >> 8 & 3) != 2);
    th_free(t);
}

/* Locked PMP entries ignore writes to their cfg and address (and a locked TOR entry locks the
 * address below it) until reset (priv spec 3.7.1.2). */
TEST(csr_pmp_locked_entries_ignore_writes)
{
    struct th *t = th_new();
    th_csrw(t, CSR_PMPADDR0_N, 0x20000000);
    th_csrw(t, CSR_PMPADDR0_N + 1, 0x20001000);
    th_csrw(t, CSR_PMPCFG0_N, 0x99ull | (0x88ull << 16)); /* 0: L NAPOT R; 2: L TOR */
    th_csrw(t, CSR_PMPADDR0_N, 0x12345);
    CHECK_EQ(th_csrr(t, CSR_PMPADDR0_N), 0x20000000);
    th_csrw(t, CSR_PMPADDR0_N + 1, 0x12345); /* entry 2 is a locked TOR above it */
    CHECK_EQ(th_csrr(t, CSR_PMPADDR0_N + 1), 0x20001000);
    th_csrw(t, CSR_PMPADDR0_N + 2, 0x30000000); /* entry 2's own address is locked too */
    CHECK_EQ(th_csrr(t, CSR_PMPADDR0_N + 2), 0);
    th_csrw(t, CSR_PMPCFG0_N, 0x0f0f0f0full << 8); /* entries 1 and 3 are not locked */
    uint64_t cfg = th_csrr(t, CSR_PMPCFG0_N);
    CHECK_EQ(cfg & 0xff, 0x99);
    CHECK_EQ((cfg >> 16) & 0xff, 0x88);
    CHECK_EQ((cfg >> 8) & 0xff, 0x0f);
    CHECK_EQ((cfg >> 24) & 0xff, 0x0f);
    th_csrw(t, CSR_PMPADDR0_N + 3, 0x777);
    CHECK_EQ(th_csrr(t, CSR_PMPADDR0_N + 3), 0x777);
    /* hart_reset unlocks */
    hart_reset(&t->h, TH_CODE);
    th_csrw(t, CSR_PMPCFG0_N, 0);
    CHECK_EQ(th_csrr(t, CSR_PMPCFG0_N), 0);
    th_free(t);
}

TEST(csr_fp_csrs_need_fs)
{
    struct th *t = th_new();
    uint64_t old;
    static const unsigned fp[] = {CSR_FFLAGS_N, CSR_FRM_N, CSR_FCSR_N};
    th_csrw(t, CSR_MSTATUS_N, 0); /* FS = Off */
    for (unsigned k = 0; k < 3; k++) {
        CHECK_EQ(th_csr_m(t, fp[k], 1, 0, false, &old), EXC_ILLEGAL_INSN);
        CHECK_EQ(th_csr_m(t, fp[k], 0, 1, true, &old), EXC_ILLEGAL_INSN);
    }
    th_csrw(t, CSR_MSTATUS_N, 1ull << 13); /* Initial */
    CHECK_EQ(th_csrr(t, CSR_FCSR_N), 0);
    CHECK_EQ(th_csrr(t, CSR_MSTATUS_N) & MSTATUS_FS, 1ull << 13); /* reads do not dirty */
    th_csrw(t, CSR_FCSR_N, 0xff);
    CHECK_EQ(th_csrr(t, CSR_FFLAGS_N), 0x1f);
    CHECK_EQ(th_csrr(t, CSR_FRM_N), 7);
    CHECK_EQ(th_csrr(t, CSR_MSTATUS_N) & MSTATUS_FS, FS_DIRTY);
    CHECK(th_csrr(t, CSR_MSTATUS_N) & MSTATUS_SD);
    th_csrw(t, CSR_FRM_N, 0x1fa);
    CHECK_EQ(th_csrr(t, CSR_FRM_N), 2);
    th_csrw(t, CSR_FFLAGS_N, 0xe1);
    CHECK_EQ(th_csrr(t, CSR_FCSR_N), (2 << 5) | 1);
    th_free(t);
}

/* mip (priv spec 3.1.9): SSIP, STIP (without Sstc) and SEIP are software-writable; MSIP, MTIP,
 * MEIP come from the ACLINT/PLIC. */
TEST(csr_mip_writable_bits)
{
    struct th *t = th_new();
    th_csrw(t, CSR_MIP_N, M1);
    CHECK_EQ(th_csrr(t, CSR_MIP_N), MIP_SSIP | MIP_STIP | MIP_SEIP);
    th_csrw(t, CSR_MIP_N, 0);
    CHECK_EQ(th_csrr(t, CSR_MIP_N), 0);
    hart_set_irq(&t->h, IRQ_MEI, true);
    hart_set_irq(&t->h, IRQ_MSI, true);
    CHECK_EQ(th_csrr(t, CSR_MIP_N), MIP_MEIP | MIP_MSIP);
    th_csrw(t, CSR_MIP_N, 0); /* wires are not writable */
    CHECK_EQ(th_csrr(t, CSR_MIP_N), MIP_MEIP | MIP_MSIP);
    hart_set_irq(&t->h, IRQ_MEI, false);
    hart_set_irq(&t->h, IRQ_MSI, false);
    CHECK_EQ(th_csrr(t, CSR_MIP_N), 0);
    /* with Sstc, STIP is (time >= stimecmp) and not writable */
    th_csrw(t, CSR_MENVCFG_N, MENVCFG_STCE);
    th_csrw(t, CSR_STIMECMP_N, M1);
    th_csrw(t, CSR_MIP_N, MIP_STIP);
    CHECK_EQ(th_csrr(t, CSR_MIP_N) & MIP_STIP, 0);
    th_free(t);
}

/* SEIP: CSR reads see the software bit OR the PLIC wire, but the read-modify-write of
 * CSRRS/CSRRC uses only the software bit (priv spec 3.1.9, "mip.SEIP ... the value used in the
 * read-modify-write sequence of a CSRRS or CSRRC instruction contains only the
 * software-writable SEIP bit, ignoring the interrupt value from the external interrupt
 * controller"). OpenSBI does csr_set(mip, SSIP) on IPIs: with the PLIC's S-context line high
 * at that moment, the wire must not be latched into the software bit. */
TEST(csr_mip_seip_rmw_ignores_wire)
{
    struct th *t = th_new();
    uint64_t old;
    hart_set_irq(&t->h, IRQ_SEI, true);
    CHECK(th_csrr(t, CSR_MIP_N) & MIP_SEIP);
    CHECK_EQ(th_csr_m(t, CSR_MIP_N, 1, MIP_SSIP, true, &old), 0); /* csrs mip, SSIP */
    CHECK(old & MIP_SEIP);
    hart_set_irq(&t->h, IRQ_SEI, false);
    /* regression (fixed in 8bda97a): the read-modify-write used hart_mip(), wire included */
    CHECK_EQ(th_csrr(t, CSR_MIP_N) & MIP_SEIP, 0);
    CHECK(th_csrr(t, CSR_MIP_N) & MIP_SSIP);
    /* csrc mip, SSIP while the wire is high must not latch it either */
    hart_set_irq(&t->h, IRQ_SEI, true);
    CHECK_EQ(th_csr_m(t, CSR_MIP_N, 2, MIP_SSIP, true, &old), 0);
    hart_set_irq(&t->h, IRQ_SEI, false);
    CHECK_EQ(th_csrr(t, CSR_MIP_N) & MIP_SEIP, 0);
    th_free(t);
}

/* ---- traps ---- */

static void preset_trap_csrs(struct th *t)
{
    t->h.mepc = t->h.mcause = t->h.mtval = 0x1111;
    t->h.sepc = t->h.scause = t->h.stval = 0x2222;
}

TEST(trap_exception_in_m)
{
    struct th *t = th_new();
    preset_trap_csrs(t);
    t->h.pc = 0x80001234;
    th_csrw(t, CSR_MTVEC_N, TH_MTRAP | 1); /* vectored: exceptions still go to the base */
    th_csrw(t, CSR_MSTATUS_N, MSTATUS_MIE);
    hart_raise_exception(&t->h, EXC_LOAD_PAGE_FAULT, 0xabcd);
    CHECK_EQ(t->h.pc, TH_MTRAP);
    CHECK_EQ(t->h.priv, PRV_M);
    CHECK_EQ(t->h.mcause, EXC_LOAD_PAGE_FAULT);
    CHECK_EQ(t->h.mepc, 0x80001234);
    CHECK_EQ(t->h.mtval, 0xabcd);
    uint64_t s = th_csrr(t, CSR_MSTATUS_N);
    CHECK_EQ((s & MSTATUS_MPP) >> 11, PRV_M);
    CHECK(s & MSTATUS_MPIE);
    CHECK_EQ(s & MSTATUS_MIE, 0);
    CHECK_EQ(t->h.sepc, 0x2222);
    th_free(t);
}

TEST(trap_exception_from_s_not_delegated)
{
    struct th *t = th_new();
    preset_trap_csrs(t);
    th_csrw(t, CSR_MEDELEG_N, 1ull << EXC_ECALL_U); /* something else is delegated */
    th_csrw(t, CSR_MSTATUS_N, MSTATUS_SIE);
    th_set_priv(t, PRV_S);
    t->h.pc = 0x80002000;
    hart_raise_exception(&t->h, EXC_ECALL_S, 0);
    CHECK_EQ(t->h.priv, PRV_M);
    CHECK_EQ(t->h.pc, TH_MTRAP);
    CHECK_EQ(t->h.mcause, EXC_ECALL_S);
    CHECK_EQ(t->h.mepc, 0x80002000);
    uint64_t s = th_csrr(t, CSR_MSTATUS_N);
    CHECK_EQ((s & MSTATUS_MPP) >> 11, PRV_S);
    CHECK_EQ(s & MSTATUS_MPIE, 0);
    CHECK(s & MSTATUS_SIE); /* S state untouched */
    CHECK_EQ(t->h.scause, 0x2222);
    th_free(t);
}

TEST(trap_exception_delegated_from_u)
{
    struct th *t = th_new();
    preset_trap_csrs(t);
    th_csrw(t, CSR_MEDELEG_N, 1ull << EXC_ECALL_U);
    th_csrw(t, CSR_STVEC_N, TH_STRAP | 1); /* vectored: exceptions go to the base */
    th_csrw(t, CSR_MSTATUS_N, MSTATUS_SIE | MSTATUS_SPP | (3ull << 11));
    th_set_priv(t, PRV_U);
    t->h.pc = 0x80003000;
    hart_raise_exception(&t->h, EXC_ECALL_U, 0x77);
    CHECK_EQ(t->h.priv, PRV_S);
    CHECK_EQ(t->h.pc, TH_STRAP);
    CHECK_EQ(t->h.scause, EXC_ECALL_U);
    CHECK_EQ(t->h.sepc, 0x80003000);
    CHECK_EQ(t->h.stval, 0x77);
    uint64_t s = th_csrr(t, CSR_MSTATUS_N);
    CHECK_EQ(s & MSTATUS_SPP, 0); /* came from U */
    CHECK(s & MSTATUS_SPIE);
    CHECK_EQ(s & MSTATUS_SIE, 0);
    CHECK_EQ((s & MSTATUS_MPP) >> 11, 3); /* M state untouched */
    CHECK_EQ(t->h.mepc, 0x1111);
    CHECK_EQ(t->h.mcause, 0x1111);
    th_free(t);
}

TEST(trap_exception_delegated_from_s)
{
    struct th *t = th_new();
    preset_trap_csrs(t);
    th_csrw(t, CSR_MEDELEG_N, 1ull << EXC_STORE_PAGE_FAULT);
    th_csrw(t, CSR_MSTATUS_N, 0);
    th_set_priv(t, PRV_S);
    t->h.pc = 0xffffffff80001000ull;
    hart_raise_exception(&t->h, EXC_STORE_PAGE_FAULT, 0xdead000);
    CHECK_EQ(t->h.priv, PRV_S);
    CHECK_EQ(t->h.pc, TH_STRAP);
    CHECK_EQ(t->h.scause, EXC_STORE_PAGE_FAULT);
    CHECK_EQ(t->h.sepc, 0xffffffff80001000ull);
    CHECK_EQ(t->h.stval, 0xdead000);
    uint64_t s = th_csrr(t, CSR_MSTATUS_N);
    CHECK(s & MSTATUS_SPP);
    CHECK_EQ(s & MSTATUS_SPIE, 0);
    /* a delegated cause raised in M still goes to M */
    th_set_priv(t, PRV_M);
    t->h.pc = 0x80004000;
    hart_raise_exception(&t->h, EXC_STORE_PAGE_FAULT, 1);
    CHECK_EQ(t->h.priv, PRV_M);
    CHECK_EQ(t->h.pc, TH_MTRAP);
    CHECK_EQ(t->h.mcause, EXC_STORE_PAGE_FAULT);
    CHECK_EQ(t->h.mepc, 0x80004000);
    th_free(t);
}

TEST(trap_mret_restores)
{
    struct th *t = th_new();
    /* to S: MIE <- MPIE, MPIE <- 1, MPP <- U, MPRV cleared (MPP != M) */
    th_csrw(t, CSR_MSTATUS_N, (1ull << 11) | MSTATUS_MPIE | MSTATUS_MPRV);
    th_csrw(t, CSR_MEPC_N, 0x80005000);
    hart_mret(&t->h);
    CHECK_EQ(t->h.priv, PRV_S);
    CHECK_EQ(t->h.pc, 0x80005000);
    uint64_t s = th_csrr(t, CSR_MSTATUS_N);
    CHECK(s & MSTATUS_MIE);
    CHECK(s & MSTATUS_MPIE);
    CHECK_EQ(s & MSTATUS_MPP, 0);
    CHECK_EQ(s & MSTATUS_MPRV, 0);
    /* to M: MPRV kept */
    th_set_priv(t, PRV_M);
    th_csrw(t, CSR_MSTATUS_N, (3ull << 11) | MSTATUS_MPRV);
    hart_mret(&t->h);
    CHECK_EQ(t->h.priv, PRV_M);
    s = th_csrr(t, CSR_MSTATUS_N);
    CHECK(s & MSTATUS_MPRV);
    CHECK_EQ(s & MSTATUS_MIE, 0);
    CHECK(s & MSTATUS_MPIE);
    /* to U */
    th_csrw(t, CSR_MSTATUS_N, MSTATUS_MIE);
    hart_mret(&t->h);
    CHECK_EQ(t->h.priv, PRV_U);
    CHECK_EQ(th_csrr(t, CSR_MSTATUS_N) & MSTATUS_MIE, 0);
    th_free(t);
}

TEST(trap_sret_restores)
{
    struct th *t = th_new();
    th_csrw(t, CSR_MSTATUS_N, MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_MPRV | (3ull << 11));
    th_csrw(t, CSR_SEPC_N, 0x80006000);
    th_set_priv(t, PRV_S);
    hart_sret(&t->h);
    CHECK_EQ(t->h.priv, PRV_S);
    CHECK_EQ(t->h.pc, 0x80006000);
    uint64_t s = th_csrr(t, CSR_MSTATUS_N);
    CHECK(s & MSTATUS_SIE);
    CHECK(s & MSTATUS_SPIE);
    CHECK_EQ(s & MSTATUS_SPP, 0);
    CHECK_EQ(s & MSTATUS_MPRV, 0);
    CHECK_EQ((s & MSTATUS_MPP) >> 11, 3);
    /* SPP = 0: back to U with SIE <- SPIE = 0 */
    th_csrw(t, CSR_MSTATUS_N, MSTATUS_SIE);
    th_set_priv(t, PRV_S);
    hart_sret(&t->h);
    CHECK_EQ(t->h.priv, PRV_U);
    CHECK_EQ(th_csrr(t, CSR_MSTATUS_N) & MSTATUS_SIE, 0);
    th_free(t);
}

/* ---- interrupts ---- */

TEST(irq_vectored_mtvec_and_stvec)
{
    struct th *t = th_new();
    t->h.pc = 0x80001000;
    th_csrw(t, CSR_MTVEC_N, 0x80010001);
    th_csrw(t, CSR_MIE_N, MIP_MTIP);
    th_csrw(t, CSR_MSTATUS_N, MSTATUS_MIE);
    atomic_store(&t->clint.mtimecmp[0], 0);
    CHECK(hart_check_interrupts(&t->h));
    CHECK_EQ(t->h.pc, 0x80010000 + 4 * IRQ_MTI);
    CHECK_EQ(t->h.mcause, (1ull << 63) | IRQ_MTI);
    CHECK_EQ(t->h.mepc, 0x80001000);
    CHECK_EQ(t->h.mtval, 0);
    atomic_store(&t->clint.mtimecmp[0], M1);
    /* S-level, delegated */
    th_csrw(t, CSR_MIDELEG_N, MIP_SSIP);
    th_csrw(t, CSR_STVEC_N, 0x80020001);
    th_csrw(t, CSR_MIE_N, MIP_SSIP);
    th_csrw(t, CSR_MSTATUS_N, MSTATUS_SIE);
    th_csrw(t, CSR_MIP_N, MIP_SSIP);
    th_set_priv(t, PRV_S);
    t->h.pc = 0x80003000;
    CHECK(hart_check_interrupts(&t->h));
    CHECK_EQ(t->h.priv, PRV_S);
    CHECK_EQ(t->h.pc, 0x80020000 + 4 * IRQ_SSI);
    CHECK_EQ(t->h.scause, (1ull << 63) | IRQ_SSI);
    CHECK_EQ(t->h.sepc, 0x80003000);
    th_free(t);
}

static void clear_source(struct th *t, unsigned irq)
{
    switch (irq) {
    case IRQ_MEI:
    case IRQ_MSI: hart_set_irq(&t->h, irq, false); break;
    case IRQ_MTI: atomic_store(&t->clint.mtimecmp[0], M1); break;
    default: {
        uint64_t old;
        CHECK_EQ(th_csr_m(t, CSR_MIP_N, 2, 1ull << irq, true, &old), 0);
    }
    }
}

/* Priority MEI > MSI > MTI > SEI > SSI > STI (priv spec 3.1.9). */
TEST(irq_priority_order)
{
    struct th *t = th_new();
    th_csrw(t, CSR_MIE_N, 0xaaa);
    hart_set_irq(&t->h, IRQ_MEI, true);
    hart_set_irq(&t->h, IRQ_MSI, true);
    atomic_store(&t->clint.mtimecmp[0], 0);
    th_csrw(t, CSR_MIP_N, MIP_SEIP | MIP_SSIP | MIP_STIP);
    static const unsigned order[] = {IRQ_MEI, IRQ_MSI, IRQ_MTI, IRQ_SEI, IRQ_SSI, IRQ_STI};
    for (unsigned k = 0; k < 6; k++) {
        th_set_priv(t, PRV_M);
        th_csrw(t, CSR_MSTATUS_N, MSTATUS_MIE);
        CHECK(hart_check_interrupts(&t->h));
        CHECK_EQ(t->h.mcause, (1ull << 63) | order[k]);
        clear_source(t, order[k]);
    }
    th_csrw(t, CSR_MSTATUS_N, MSTATUS_MIE);
    CHECK(!hart_check_interrupts(&t->h));
    th_free(t);
}

/* The same order among delegated S-level interrupts. */
TEST(irq_priority_order_delegated)
{
    struct th *t = th_new();
    th_csrw(t, CSR_MIDELEG_N, MIP_SEIP | MIP_SSIP | MIP_STIP);
    th_csrw(t, CSR_MIE_N, MIP_SEIP | MIP_SSIP | MIP_STIP);
    th_csrw(t, CSR_MIP_N, MIP_SEIP | MIP_SSIP | MIP_STIP);
    static const unsigned order[] = {IRQ_SEI, IRQ_SSI, IRQ_STI};
    for (unsigned k = 0; k < 3; k++) {
        th_set_priv(t, PRV_U);
        CHECK(hart_check_interrupts(&t->h));
        CHECK_EQ(t->h.priv, PRV_S);
        CHECK_EQ(t->h.scause, (1ull << 63) | order[k]);
        clear_source(t, order[k]);
    }
    th_free(t);
}

/* Global enables (priv spec 3.1.6.1): interrupts for a mode above the current one are always
 * enabled, for the current mode only with xIE, for a mode below never. */
TEST(irq_global_enable_rules)
{
    struct th *t = th_new();
    th_csrw(t, CSR_MIE_N, MIP_MTIP | MIP_SSIP);
    atomic_store(&t->clint.mtimecmp[0], 0);
    /* M with MIE = 0: not taken, but a WFI wakes */
    th_csrw(t, CSR_MSTATUS_N, 0);
    t->h.wfi = true;
    CHECK(!hart_check_interrupts(&t->h));
    CHECK(!t->h.wfi);
    /* S with MIE = 0: M interrupts preempt */
    th_set_priv(t, PRV_S);
    CHECK(hart_check_interrupts(&t->h));
    CHECK_EQ(t->h.priv, PRV_M);
    CHECK_EQ(t->h.mcause, (1ull << 63) | IRQ_MTI);
    CHECK_EQ((t->h.mstatus & MSTATUS_MPP) >> 11, PRV_S);
    atomic_store(&t->clint.mtimecmp[0], M1);
    /* delegated SSI: S needs SIE, U always takes it, M never does */
    th_csrw(t, CSR_MIDELEG_N, MIP_SSIP);
    th_csrw(t, CSR_MIP_N, MIP_SSIP);
    th_csrw(t, CSR_MSTATUS_N, 0);
    th_set_priv(t, PRV_S);
    CHECK(!hart_check_interrupts(&t->h));
    CHECK_EQ(t->h.priv, PRV_S);
    th_csrw(t, CSR_MSTATUS_N, MSTATUS_SIE);
    CHECK(hart_check_interrupts(&t->h));
    CHECK_EQ(t->h.priv, PRV_S);
    CHECK_EQ(t->h.scause, (1ull << 63) | IRQ_SSI);
    th_csrw(t, CSR_MSTATUS_N, 0);
    th_set_priv(t, PRV_U);
    CHECK(hart_check_interrupts(&t->h));
    CHECK_EQ(t->h.priv, PRV_S);
    th_set_priv(t, PRV_M);
    th_csrw(t, CSR_MSTATUS_N, MSTATUS_MIE | MSTATUS_SIE);
    CHECK(!hart_check_interrupts(&t->h));
    /* not delegated SSI in S with MIE = 0: goes to M */
    th_csrw(t, CSR_MIDELEG_N, 0);
    th_csrw(t, CSR_MSTATUS_N, 0);
    th_set_priv(t, PRV_S);
    CHECK(hart_check_interrupts(&t->h));
    CHECK_EQ(t->h.priv, PRV_M);
    CHECK_EQ(t->h.mcause, (1ull << 63) | IRQ_SSI);
    /* mie bit clear: never */
    th_csrw(t, CSR_MIE_N, 0);
    th_set_priv(t, PRV_U);
    CHECK(!hart_check_interrupts(&t->h));
    th_free(t);
}

/* An M-level interrupt wins over a pending delegated one even when S has SIE set. */
TEST(irq_m_preempts_s)
{
    struct th *t = th_new();
    th_csrw(t, CSR_MIDELEG_N, MIP_SSIP | MIP_STIP | MIP_SEIP);
    th_csrw(t, CSR_MIE_N, 0xaaa);
    th_csrw(t, CSR_MIP_N, MIP_SEIP | MIP_SSIP);
    atomic_store(&t->clint.mtimecmp[0], 0);
    th_csrw(t, CSR_MSTATUS_N, MSTATUS_SIE);
    th_set_priv(t, PRV_S);
    CHECK(hart_check_interrupts(&t->h));
    CHECK_EQ(t->h.priv, PRV_M);
    CHECK_EQ(t->h.mcause, (1ull << 63) | IRQ_MTI);
    th_free(t);
}

/* mip.MTIP = (mtime >= mtimecmp), evaluated continuously (priv spec 3.2.1). */
TEST(irq_mtip_follows_mtimecmp)
{
    struct th *t = th_new();
    CHECK_EQ(hart_mip(&t->h) & MIP_MTIP, 0); /* mtimecmp resets to all ones */
    atomic_store(&t->clint.mtimecmp[0], 0);
    CHECK(hart_mip(&t->h) & MIP_MTIP);
    CHECK(th_csrr(t, CSR_MIP_N) & MIP_MTIP);
    th_csrw(t, CSR_MIP_N, 0); /* not writable */
    CHECK(th_csrr(t, CSR_MIP_N) & MIP_MTIP);
    atomic_store(&t->clint.mtimecmp[0], aclint_mtime(&t->clint) + 100 * VCLOCK_HZ);
    CHECK_EQ(hart_mip(&t->h) & MIP_MTIP, 0);
    /* a deadline 50 ms ahead becomes pending on its own */
    atomic_store(&t->clint.mtimecmp[0], aclint_mtime(&t->clint) + VCLOCK_HZ / 20);
    CHECK_EQ(hart_mip(&t->h) & MIP_MTIP, 0);
    struct timespec ts = {0, 80 * 1000 * 1000};
    nanosleep(&ts, NULL);
    CHECK(hart_mip(&t->h) & MIP_MTIP);
    th_free(t);
}

/* Sstc: with menvcfg.STCE, STIP = (time >= stimecmp) (Sstc spec 2.2). */
TEST(irq_stip_from_stimecmp)
{
    struct th *t = th_new();
    /* STCE = 0: STIP is the software bit, stimecmp is ignored */
    th_csrw(t, CSR_STIMECMP_N, 0);
    CHECK_EQ(hart_mip(&t->h) & MIP_STIP, 0);
    th_csrw(t, CSR_MIP_N, MIP_STIP);
    CHECK(hart_mip(&t->h) & MIP_STIP);
    /* STCE = 1 */
    th_csrw(t, CSR_MENVCFG_N, MENVCFG_STCE);
    th_csrw(t, CSR_MCOUNTEREN_N, 2);
    th_csrw(t, CSR_STIMECMP_N, M1);
    CHECK_EQ(hart_mip(&t->h) & MIP_STIP, 0); /* the software bit no longer counts */
    th_set_priv(t, PRV_S);
    CHECK_EQ(th_csr_write_at(t, CSR_STIMECMP_N, 0), 0);
    CHECK(hart_mip(&t->h) & MIP_STIP);
    th_set_priv(t, PRV_M);
    th_csrw(t, CSR_MIDELEG_N, MIP_STIP);
    CHECK(th_csrr(t, CSR_SIP_N) & MIP_STIP);
    th_csrw(t, CSR_MIE_N, MIP_STIP);
    th_csrw(t, CSR_MSTATUS_N, MSTATUS_SIE);
    th_set_priv(t, PRV_S);
    CHECK(hart_check_interrupts(&t->h));
    CHECK_EQ(t->h.scause, (1ull << 63) | IRQ_STI);
    th_set_priv(t, PRV_M);
    th_csrw(t, CSR_STIMECMP_N, aclint_mtime(&t->clint) + 100 * VCLOCK_HZ);
    CHECK_EQ(hart_mip(&t->h) & MIP_STIP, 0);
    th_free(t);
}

/* An interrupt taken while executing: hart_exec stops after the CSR write that enables it and
 * the next check delivers it with mepc = the next instruction. */
TEST(irq_after_csr_write_in_program)
{
    struct th *t = th_new();
    th_emit(t, I_CSRRSI(0, CSR_MSTATUS_N, MSTATUS_MIE));
    uint64_t next = th_emit(t, I_ADDI(5, 0, 1));
    th_emit(t, I_SELF_LOOP());
    th_csrw(t, CSR_MIE_N, MIP_MSIP);
    hart_set_irq(&t->h, IRQ_MSI, true);
    hart_exec(&t->h, 100);
    CHECK_EQ(t->h.pc, next);
    CHECK(hart_check_interrupts(&t->h));
    CHECK_EQ(t->h.pc, TH_MTRAP);
    CHECK_EQ(t->h.mepc, next);
    CHECK_EQ(t->h.x[5], 0);
    th_free(t);
}

/* ---- Sdtrig trigger CSRs (debug spec 1.0, 5.7.1 tselect, 5.7.2 tdata1, 5.7.6 tinfo,
 * 5.7.17 mcontrol6) ---- */
#define CSR_TSELECT_N 0x7a0
#define CSR_TDATA1_N  0x7a1
#define CSR_TDATA2_N  0x7a2
#define CSR_TDATA3_N  0x7a3
#define CSR_TINFO_N   0x7a4
#define T_DISABLED    (15ull << 60)
#define T_MC6         (6ull << 60)

TEST(csr_sdtrig_tselect_tinfo)
{
    struct th *t = th_new();
    /* version 1 in 31:24, types 6 (mcontrol6) and 15 (disabled) */
    CHECK_EQ(th_csrr(t, CSR_TINFO_N), 0x01008040ull);
    CHECK_EQ(th_csrr(t, CSR_TSELECT_N), 0);
    th_csrw(t, CSR_TSELECT_N, 3);
    CHECK_EQ(th_csrr(t, CSR_TSELECT_N), 3);
    /* WARL: an index with no trigger is not taken (this is how a debugger counts them) */
    th_csrw(t, CSR_TSELECT_N, 4);
    CHECK_EQ(th_csrr(t, CSR_TSELECT_N), 3);
    th_csrw(t, CSR_TSELECT_N, M1);
    CHECK_EQ(th_csrr(t, CSR_TSELECT_N), 3);
    /* every trigger starts disabled */
    for (unsigned k = 0; k < 4; k++) {
        th_csrw(t, CSR_TSELECT_N, k);
        CHECK_EQ(th_csrr(t, CSR_TDATA1_N), T_DISABLED);
        CHECK_EQ(th_csrr(t, CSR_TDATA2_N), 0);
        CHECK_EQ(th_csrr(t, CSR_TDATA3_N), 0);
        CHECK_EQ(th_csrr(t, CSR_TINFO_N), 0x01008040ull);
    }
    /* tinfo and tdata3 ignore writes */
    th_csrw(t, CSR_TINFO_N, 0);
    CHECK_EQ(th_csrr(t, CSR_TINFO_N), 0x01008040ull);
    th_csrw(t, CSR_TDATA3_N, M1);
    CHECK_EQ(th_csrr(t, CSR_TDATA3_N), 0);
    th_free(t);
}

TEST(csr_sdtrig_tdata1_warl)
{
    struct th *t = th_new();
    /* m, s, u, execute, store, load and match=napot are kept */
    uint64_t v = T_MC6 | (1ull << 7) | 0x5f;
    th_csrw(t, CSR_TDATA1_N, v);
    CHECK_EQ(th_csrr(t, CSR_TDATA1_N), v);
    /* dmode (59), uncertain (26), hit1 (25), vs/vu (24/23), select (21), size (18:16),
     * action (15:12), chain (11), uncertainen (5): not implemented, read 0 */
    uint64_t junk = (1ull << 59) | (1ull << 26) | (1ull << 25) | (3ull << 23) | (1ull << 21) |
                    (7ull << 16) | (1ull << 12) | (1ull << 11) | (1ull << 5);
    th_csrw(t, CSR_TDATA1_N, T_MC6 | junk | 0x44);
    CHECK_EQ(th_csrr(t, CSR_TDATA1_N), T_MC6 | 0x44);
    /* match: 0-3 kept, mask/negated matches (4, 5, 8, 9, 12, 13) become equal */
    for (unsigned m = 0; m < 16; m++) {
        th_csrw(t, CSR_TDATA1_N, T_MC6 | ((uint64_t)m << 7) | 0x44);
        CHECK_EQ((th_csrr(t, CSR_TDATA1_N) >> 7) & 15, m <= 3 ? m : 0);
    }
    /* hit0 is writable, so a handler can clear it */
    th_csrw(t, CSR_TDATA1_N, T_MC6 | (1ull << 22) | 0x44);
    CHECK_EQ(th_csrr(t, CSR_TDATA1_N), T_MC6 | (1ull << 22) | 0x44);
    /* tdata2 holds any address */
    th_csrw(t, CSR_TDATA2_N, 0xffffffff80001234ull);
    CHECK_EQ(th_csrr(t, CSR_TDATA2_N), 0xffffffff80001234ull);
    th_free(t);
}

/* Writing type 0 gives a trigger that cannot fire: type 15 (5.7.2); unsupported types
 * (mcontrol 2, icount 3, itrigger 4, ...) become disabled too, which a debugger reads back. */
TEST(csr_sdtrig_type_switching)
{
    struct th *t = th_new();
    for (unsigned type = 0; type < 16; type++) {
        th_csrw(t, CSR_TDATA1_N, T_MC6 | 0x44);
        th_csrw(t, CSR_TDATA1_N, ((uint64_t)type << 60) | 0x44);
        uint64_t want = type == 6 ? (T_MC6 | 0x44) : T_DISABLED;
        CHECK_EQ(th_csrr(t, CSR_TDATA1_N), want);
    }
    /* triggers are independent */
    th_csrw(t, CSR_TSELECT_N, 1);
    th_csrw(t, CSR_TDATA1_N, T_MC6 | 0x41);
    th_csrw(t, CSR_TDATA2_N, 0x1111);
    th_csrw(t, CSR_TSELECT_N, 2);
    th_csrw(t, CSR_TDATA2_N, 0x2222);
    CHECK_EQ(th_csrr(t, CSR_TDATA1_N), T_DISABLED);
    th_csrw(t, CSR_TSELECT_N, 1);
    CHECK_EQ(th_csrr(t, CSR_TDATA1_N), T_MC6 | 0x41);
    CHECK_EQ(th_csrr(t, CSR_TDATA2_N), 0x1111);
    /* a hart reset disables them all */
    hart_reset(&t->h, TH_CODE);
    th_csrw(t, CSR_TSELECT_N, 1);
    CHECK_EQ(th_csrr(t, CSR_TDATA1_N), T_DISABLED);
    th_free(t);
}

/* The trigger CSRs are M-mode CSRs; tcontrol/mcontext/scontext are not implemented. */
TEST(csr_sdtrig_access)
{
    struct th *t = th_new();
    uint64_t v;
    th_set_priv(t, PRV_S);
    for (unsigned c = CSR_TSELECT_N; c <= CSR_TINFO_N; c++)
        CHECK_EQ(th_csr_read_at(t, c, &v), EXC_ILLEGAL_INSN);
    th_set_priv(t, PRV_M);
    CHECK_EQ(th_csr_read_at(t, 0x7a5, &v), EXC_ILLEGAL_INSN); /* tcontrol */
    CHECK_EQ(th_csr_read_at(t, 0x7a8, &v), EXC_ILLEGAL_INSN); /* mcontext */
    CHECK_EQ(th_csr_read_at(t, CSR_TINFO_N, &v), 0);
    th_free(t);
}

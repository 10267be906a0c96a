/* The interpreter: threaded dispatch (computed goto) over pre-decoded instructions cached per
 * physical page, with an inline software-TLB hit path for loads and stores. The pc is not kept
 * per instruction: it is rebuilt from the slot's position in its page when needed.
 * Shaped so a JIT can later replace this function behind hart_exec(). */
#include "cpu/riscv/alu.h"
#include "cpu/riscv/decode.h"
#include "cpu/riscv/hart.h"
#include "cpu/riscv/memorder.h"
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PAUSEs within one hart_exec call after which the hart yields its host CPU. */
#define PAUSE_YIELD_COUNT 64

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* The decode cache (docs/engine.md). Slots are decoded lazily, but always from p->code, the
 * copy of the page taken when it entered the cache, never from live memory: every decoded slot
 * then describes exactly those bytes. After a fence.i the page is kept only if memory still
 * equals the copy byte for byte, so a slot decoded from bytes that have since changed (even
 * changed and changed back) can never survive, and no hash collision decides correctness.
 * Between fence.i's the hart may run the copy while memory differs: RISC-V lets instruction
 * fetch miss stores not yet followed by fence.i (unpriv spec 3.1 "Zifencei"). */
static struct dpage *dcache_get(struct hart *h, uint64_t ppn, const uint8_t *mem, int32_t decode_h,
                                int32_t end_h)
{
    unsigned idx = (unsigned)((ppn ^ (ppn >> 8)) & (DCACHE_SLOTS - 1));
    struct dpage *p = h->dcache[idx];
    if (p && p->ppn == ppn) {
        if (p->epoch == h->dcache_epoch) return p;
        /* a fence.i happened since: keep the decoded slots only if the code is unchanged */
        if (memcmp(p->code, mem, DPAGE_BYTES) == 0) {
            p->epoch = h->dcache_epoch;
            return p;
        }
    }
    if (!p) {
        if (h->dcache_pages < DCACHE_PAGES) {
            p = malloc(sizeof(*p));
            if (!p) return NULL;
            h->dcache_pages++;
        } else { /* all pages in use: take one from another index entry */
            unsigned v;
            do
                v = h->dcache_hand++ & (DCACHE_SLOTS - 1);
            while (!h->dcache[v] || v == idx);
            p = h->dcache[v];
            h->dcache[v] = NULL;
        }
        h->dcache[idx] = p;
    }
    for (unsigned j = 0; j < DPAGE_SLOTS; j++)
        p->ins[j].h = decode_h;
    p->ins[DPAGE_SLOTS].h = end_h;
    /* Another hart may be storing into this page: each byte of the copy is some value memory
     * held, which is all an unsynchronised fetch may see. */
    memcpy(p->code, mem, DPAGE_BYTES);
    p->ppn = ppn;
    p->epoch = h->dcache_epoch;
    return p;
}

/* Encoding of a CSR instruction, for mtval on an illegal-instruction trap. */
static uint32_t csr_encoding(const struct dinsn *i, unsigned funct3)
{
    unsigned rd = i->rd == RV_SINK ? 0 : i->rd;
    return ((uint32_t)i->imm << 20) | ((uint32_t)i->rs1 << 15) | (funct3 << 12) | (rd << 7) | 0x73;
}

void hart_exec(struct hart *h, int budget)
{
    static const void *const L[RV_OP_COUNT] = {
#define RV_LABEL(n) [RV_OP_##n] = &&op_##n,
        RV_OPS(RV_LABEL)
#undef RV_LABEL
    };
    /* Compressed variants (see H2 below). */
    static const void *const LC[RV_OP_COUNT] = {
// clang-format off
#define RV_CLABEL(n) [RV_OP_##n] = &&opc_##n,
        RV_CLABEL(NOP) RV_CLABEL(LI) RV_CLABEL(MV) RV_CLABEL(JAL) RV_CLABEL(JALR)
        RV_CLABEL(BEQ) RV_CLABEL(BNE) RV_CLABEL(LW) RV_CLABEL(LD) RV_CLABEL(SW) RV_CLABEL(SD)
        RV_CLABEL(ADDI) RV_CLABEL(SLLI) RV_CLABEL(SRLI) RV_CLABEL(SRAI) RV_CLABEL(ANDI)
        RV_CLABEL(ADD) RV_CLABEL(SUB) RV_CLABEL(XOR) RV_CLABEL(OR) RV_CLABEL(AND)
        RV_CLABEL(ADDIW) RV_CLABEL(SUBW) RV_CLABEL(ADDW) RV_CLABEL(FLD) RV_CLABEL(FSD)
#undef RV_CLABEL
        // clang-format on
    };
    /* Branches and jal whose target lies in the same page: imm holds the slot delta. */
    static const void *const LL[RV_OP_COUNT] = {
        [RV_OP_BEQ] = &&op_BEQ_L, [RV_OP_BNE] = &&op_BNE_L,   [RV_OP_BLT] = &&op_BLT_L,
        [RV_OP_BGE] = &&op_BGE_L, [RV_OP_BLTU] = &&op_BLTU_L, [RV_OP_BGEU] = &&op_BGEU_L,
        [RV_OP_JAL] = &&op_JAL_L,
    };
    static const void *const LCL[RV_OP_COUNT] = {
        [RV_OP_BEQ] = &&opc_BEQ_L,
        [RV_OP_BNE] = &&opc_BNE_L,
        [RV_OP_JAL] = &&opc_JAL_L,
    };
    uint64_t *const x = h->x;
    const uint64_t key = h->tlb_key;
    struct tlb_entry *const tr = h->tlb[h->tlbi_data].e[ACC_R];
    struct tlb_entry *const tw = h->tlb[h->tlbi_data].e[ACC_W];
    struct tlb_entry *const tx = h->tlb[h->priv == PRV_M   ? TLBI_M
                                        : h->priv == PRV_S ? TLBI_S
                                                           : TLBI_U]
                                     .e[ACC_X];
    uint64_t pc = h->pc;
    uint64_t cur_vpn = ~0ull, vbase = 0;
    struct dinsn *ins0 = NULL, *i = NULL;
    uint8_t *hpage = NULL;      /* live memory of the current page */
    const uint8_t *code = NULL; /* the decode cache's copy of it: slots decode from this */
    uint64_t icnt = 0;
    unsigned pauses = 0;

#define PC_OF(p)    (vbase + ((uint64_t)((p)-ins0) << 1))
#define NEXT_PC()   (PC_OF(i) + (S << 1))
/* Handlers are stored as offsets from op_DECODE (struct dinsn). */
#define HOFF(label) ((int32_t)((const char *)(label) - (const char *)&&op_DECODE))
#define DISPATCH()  goto *(const void *)((const char *)&&op_DECODE + i->h)
#define NEXT()                                                                                     \
    do {                                                                                           \
        icnt++;                                                                                    \
        i += S;                                                                                    \
        DISPATCH();                                                                                \
    } while (0)
#define JUMP(target)                                                                               \
    do {                                                                                           \
        pc = (target);                                                                             \
        icnt++;                                                                                    \
        goto jump;                                                                                 \
    } while (0)
    /* A taken branch to a slot of the same page (imm = slot delta). */
#define LOCAL_JUMP()                                                                               \
    do {                                                                                           \
        icnt++;                                                                                    \
        if (unlikely(--budget <= 0)) {                                                             \
            h->pc = PC_OF(i) + ((uint64_t)IMM << 1);                                               \
            goto out;                                                                              \
        }                                                                                          \
        i += i->imm;                                                                               \
        DISPATCH();                                                                                \
    } while (0)
    /* Leave with the current instruction not retired and an exception raised. */
#define EXC(cause, tval)                                                                           \
    do {                                                                                           \
        h->pc = PC_OF(i);                                                                          \
        h->instret += icnt;                                                                        \
        icnt = 0;                                                                                  \
        hart_raise_exception(h, (cause), (tval));                                                  \
        goto out;                                                                                  \
    } while (0)
    /* Retire the current instruction and leave (state changed under the interpreter's feet). */
#define RETIRE_AND_LEAVE(newpc)                                                                    \
    do {                                                                                           \
        h->pc = (newpc);                                                                           \
        icnt++;                                                                                    \
        goto out;                                                                                  \
    } while (0)
#define RD  x[i->rd]
#define RS1 x[i->rs1]
#define RS2 x[i->rs2]
#define IMM ((int64_t)i->imm)

    /* Handlers: op_X runs a 4-byte encoding, opc_X (only for operations a compressed
     * instruction can expand to) a 2-byte one. S, the length in halfwords, is a constant in
     * each, so stepping to the next slot does not wait on a load. */
#define H4(name, ...)                                                                              \
    op_##name:                                                                                     \
    {                                                                                              \
        enum { S = 2 };                                                                            \
        __VA_ARGS__                                                                                \
    }
#define H2(name, ...)                                                                              \
    H4(name, __VA_ARGS__)                                                                          \
    opc_##name:                                                                                    \
    {                                                                                              \
        enum { S = 1 };                                                                            \
        __VA_ARGS__                                                                                \
    }

    if (unlikely(budget == 0)) goto step_one;
    goto newpc;

step_one : { /* decode the instruction at pc afresh and run only it */
    uint8_t *hp, *hp2;
    /* the fetch TLB first: the JIT steps every instruction it does not translate here, and a
     * page walk each time was a fifth of its run time */
    struct tlb_entry *e = &tx[(pc >> 12) & (TLB_SIZE - 1)];
    if (likely(e->tag == ((pc >> 12) ^ key))) {
        hp = (uint8_t *)(uintptr_t)((pc & ~0xfffull) + e->addend);
    } else {
        int c = mem_fetch_page(h, pc, &hp);
        if (c) {
            hart_raise_exception(h, (uint64_t)c, pc);
            goto out;
        }
    }
    int c;
    uint16_t lo, hi = 0;
    memcpy(&lo, hp + (pc & 0xfff), 2);
    if ((lo & 3) == 3) {
        if ((pc & 0xfff) == 4094) {
            c = mem_fetch_page(h, pc + 2, &hp2);
            if (c) {
                hart_raise_exception(h, (uint64_t)c, pc + 2);
                goto out;
            }
            memcpy(&hi, hp2, 2);
        } else {
            memcpy(&hi, hp + (pc & 0xfff) + 2, 2);
        }
    }
    struct rv_decoded d;
    rv_decode((uint32_t)lo | ((uint32_t)hi << 16), &d);
    struct dinsn *t = h->tmp;
    t[0] = (struct dinsn){HOFF((d.len == 2 && LC[d.op]) ? LC[d.op] : L[d.op]), d.imm, d.rd, d.rs1,
                          d.rs2};
    t[1] = t[2] = (struct dinsn){HOFF(&&op_STEP_END), 0, 0, 0, 0};
    ins0 = t;
    vbase = pc;
    cur_vpn = ~0ull;
    i = t;
    DISPATCH(); /* a taken jump ends the step through the exhausted budget */
}
op_STEP_END: /* a single step ends here (budget 0); after TRIG_CHECK execution goes on */
    pc = PC_OF(i);
    goto jump;
op_DEBUG_BREAK: /* a debugger breakpoint: stop before executing this instruction */
    h->pc = PC_OF(i);
    h->debug_reason = DEBUG_BREAKPOINT;
    goto out;
op_TRIG_CHECK : { /* an execute trigger may match this slot (Sdtrig): it fires before the
                   * instruction; otherwise run the instruction, decoded afresh, from h->tmp */
    uint64_t ipc = PC_OF(i);
    int c = trigger_check_exec(h, ipc);
    if (c) EXC((uint64_t)c, ipc);
    h->pc = pc = ipc;
    h->instret += icnt;
    icnt = 0;
    goto step_one;
}

jump:
    if (unlikely(--budget <= 0)) {
        h->pc = pc;
        goto out;
    }
    if ((pc >> 12) == cur_vpn) {
        i = ins0 + ((pc & 0xfff) >> 1);
        DISPATCH();
    }
newpc : {
    uint64_t vpn = pc >> 12;
    struct tlb_entry *e = &tx[vpn & (TLB_SIZE - 1)];
    uint8_t *hp;
    if (likely(e->tag == (vpn ^ key))) {
        hp = (uint8_t *)(uintptr_t)((pc & ~0xfffull) + e->addend);
    } else {
        int c = mem_fetch_page(h, pc, &hp);
        if (c) {
            h->pc = pc;
            h->instret += icnt;
            icnt = 0;
            hart_raise_exception(h, (uint64_t)c, pc);
            goto out;
        }
    }
    struct dpage *dp =
        dcache_get(h, hart_ram_ppn(h, hp), hp, HOFF(L[RV_OP_DECODE]), HOFF(L[RV_OP_PAGE_END]));
    if (!dp) {
        h->pc = pc;
        snprintf(h->fatal_msg, sizeof(h->fatal_msg), "hart %u: out of host memory", h->id);
        atomic_store(&h->stop, 1);
        goto out;
    }
    ins0 = dp->ins;
    vbase = pc & ~0xfffull;
    cur_vpn = vpn;
    hpage = hp;
    code = dp->code;
    i = ins0 + ((pc & 0xfff) >> 1);
    DISPATCH();
}

op_DECODE : {
    size_t off = (size_t)(i - ins0) << 1;
    if (unlikely(h->debug && h->debug->nbp)) {
        uint64_t pa = h->env.ram_base + (uint64_t)(hpage - h->env.ram) + off;
        for (unsigned b = 0; b < h->debug->nbp; b++) {
            if (h->debug->bp_pa[b] == pa) {
                i->h = HOFF(&&op_DEBUG_BREAK);
                DISPATCH();
            }
        }
    }
    if (unlikely(h->trig_exec) && trigger_exec_offset(h, (unsigned)off)) {
        i->h = HOFF(&&op_TRIG_CHECK);
        DISPATCH();
    }
    uint16_t lo;
    memcpy(&lo, code + off, 2);
    uint32_t w = lo;
    if ((lo & 3) == 3) {
        if (off == 4094) {
            i->h = HOFF(L[RV_OP_CROSS]);
            DISPATCH();
        }
        uint16_t hi;
        memcpy(&hi, code + off + 2, 2);
        w |= (uint32_t)hi << 16;
    }
    struct rv_decoded d;
    rv_decode(w, &d);
    i->imm = d.imm;
    i->rd = d.rd;
    i->rs1 = d.rs1;
    i->rs2 = d.rs2;
    i->h = HOFF((d.len == 2 && LC[d.op]) ? LC[d.op] : L[d.op]);
    if (LL[d.op] && (uint64_t)((int64_t)off + d.imm) < 4096) {
        i->imm = d.imm >> 1;
        i->h = HOFF(d.len == 2 ? LCL[d.op] : LL[d.op]);
    }
    DISPATCH();
}

op_CROSS : { /* a 32-bit instruction whose upper half is on the next page */
    uint64_t ipc = PC_OF(i);
    uint16_t lo, hi;
    memcpy(&lo, code + 4094, 2); /* the half that made this slot CROSS (lo & 3 == 3) */
    uint8_t *hp2;
    int c = mem_fetch_page(h, ipc + 2, &hp2);
    if (c) EXC((uint64_t)c, ipc + 2);
    memcpy(&hi, hp2, 2);
    struct rv_decoded d;
    rv_decode((uint32_t)lo | ((uint32_t)hi << 16), &d);
    struct dinsn *t = h->tmp;
    /* A 4-byte handler steps two slots: slot 2 (pc + 4) continues after it. */
    t[0] = (struct dinsn){HOFF(L[d.op]), d.imm, d.rd, d.rs1, d.rs2};
    t[1] = t[2] = (struct dinsn){HOFF(L[RV_OP_TMP_END]), 0, 0, 0, 0};
    ins0 = t;
    vbase = ipc;
    cur_vpn = ~0ull;
    i = t;
    DISPATCH();
}
op_TMP_END:
    pc = vbase + 4;
    goto jump;
op_PAGE_END:
    pc = vbase + 4096;
    goto jump;

op_ILLEGAL:
    EXC(EXC_ILLEGAL_INSN, (uint32_t)i->imm);
    H2(NOP, NEXT();)
    /* RVWMO on x86-TSO (docs/engine.md "Memory model"): only store -> load needs a barrier. */
    H4(FENCE, host_fence_tso(); NEXT();)
    H4(FENCE_SL, host_fence_full(); NEXT();)
    /* Zihintpause: a spin-wait hint (Linux's cpu_relax). A hart that pauses this often within
     * one hart_exec call is spinning on a lock or flag another hart has to change: give up its
     * host CPU so that hart can run when harts outnumber host CPUs (the idea of KVM's
     * pause-loop exiting). Without contention sched_yield returns at once. */
    H4(PAUSE, {
        if (unlikely(++pauses >= PAUSE_YIELD_COUNT)) {
            pauses = 0;
            sched_yield();
        }
        NEXT();
    })
    H2(LI, RD = (uint64_t)IMM; NEXT();)
    H2(MV, RD = RS1; NEXT();)
    H4(AUIPC, RD = PC_OF(i) + (uint64_t)IMM; NEXT();)
    H2(JAL, uint64_t cur = PC_OF(i); RD = cur + (S << 1); JUMP(cur + (uint64_t)IMM);)
    H2(JAL_L, RD = PC_OF(i) + (S << 1); LOCAL_JUMP();)
    H2(JALR, uint64_t t = (RS1 + (uint64_t)IMM) & ~1ull; RD = NEXT_PC(); JUMP(t);)
#define BRANCH(H, name, cond)                                                                      \
    H(name, if (cond) JUMP(PC_OF(i) + (uint64_t)IMM); NEXT();)                                     \
    H(name##_L, if (cond) LOCAL_JUMP(); NEXT();)
    BRANCH(H2, BEQ, RS1 == RS2)
    BRANCH(H2, BNE, RS1 != RS2)
    BRANCH(H4, BLT, (int64_t)RS1 < (int64_t)RS2)
    BRANCH(H4, BGE, (int64_t)RS1 >= (int64_t)RS2)
    BRANCH(H4, BLTU, RS1 < RS2)
    BRANCH(H4, BGEU, RS1 >= RS2)

#define LOAD(H, name, type)                                                                        \
    H(name, {                                                                                      \
        uint64_t va = RS1 + (uint64_t)IMM;                                                         \
        struct tlb_entry *e = &tr[(va >> 12) & (TLB_SIZE - 1)];                                    \
        type v;                                                                                    \
        if (likely(e->tag == ((va >> 12) ^ key) && (va & 0xfff) <= 4096 - sizeof(type))) {         \
            memcpy(&v, (void *)(uintptr_t)(va + e->addend), sizeof(v));                            \
        } else {                                                                                   \
            uint64_t sv;                                                                           \
            int c = mem_load_slow(h, va, sizeof(type), &sv);                                       \
            if (c) EXC((uint64_t)c, h->fault_tval);                                                \
            v = (type)sv;                                                                          \
        }                                                                                          \
        RD = (uint64_t)(int64_t)v;                                                                 \
        NEXT();                                                                                    \
    })
    LOAD(H4, LB, int8_t)
    LOAD(H4, LH, int16_t)
    LOAD(H2, LW, int32_t)
    LOAD(H2, LD, int64_t)
    LOAD(H4, LBU, uint8_t)
    LOAD(H4, LHU, uint16_t)
    LOAD(H4, LWU, uint32_t)

#define STORE_VAL(type, val)                                                                       \
    do {                                                                                           \
        uint64_t va = RS1 + (uint64_t)IMM;                                                         \
        struct tlb_entry *e = &tw[(va >> 12) & (TLB_SIZE - 1)];                                    \
        type v = (type)(val);                                                                      \
        if (likely(e->tag == ((va >> 12) ^ key) && (va & 0xfff) <= 4096 - sizeof(type))) {         \
            memcpy((void *)(uintptr_t)(va + e->addend), &v, sizeof(v));                            \
        } else {                                                                                   \
            int c = mem_store_slow(h, va, sizeof(type), (uint64_t)v);                              \
            if (c) EXC((uint64_t)c, h->fault_tval);                                                \
        }                                                                                          \
    } while (0)
    H4(SB, STORE_VAL(uint8_t, RS2); NEXT();)
    H4(SH, STORE_VAL(uint16_t, RS2); NEXT();)
    H2(SW, STORE_VAL(uint32_t, RS2); NEXT();)
    H2(SD, STORE_VAL(uint64_t, RS2); NEXT();)

#define ALU(name)  H4(name, RD = rv_alu(RV_OP_##name, RS1, RS2, IMM); NEXT();)
#define ALU2(name) H2(name, RD = rv_alu(RV_OP_##name, RS1, RS2, IMM); NEXT();)
    ALU2(ADDI)
    ALU(SLTI)
    ALU(SLTIU)
    ALU(XORI)
    ALU(ORI)
    ALU2(ANDI)
    ALU2(SLLI)
    ALU2(SRLI)
    ALU2(SRAI)
    ALU2(ADD)
    ALU2(SUB)
    ALU(SLL)
    ALU(SLT)
    ALU(SLTU)
    ALU2(XOR)
    ALU(SRL)
    ALU(SRA)
    ALU2(OR)
    ALU2(AND)
    ALU2(ADDIW)
    ALU(SLLIW)
    ALU(SRLIW)
    ALU(SRAIW)
    ALU2(ADDW)
    ALU2(SUBW)
    ALU(SLLW)
    ALU(SRLW)
    ALU(SRAW)
    ALU(MUL)
    ALU(MULH)
    ALU(MULHSU)
    ALU(MULHU)
    ALU(MULW)
    /* Division never traps (unpriv spec 13.2): x/0 = -1, x%0 = x, MIN/-1 = MIN, MIN%-1 = 0. */
    ALU(DIV)
    ALU(DIVU)
    ALU(REM)
    ALU(REMU)
    ALU(DIVW)
    ALU(DIVUW)
    ALU(REMW)
    ALU(REMUW)
    /* Zba */
    ALU(SH1ADD)
    ALU(SH2ADD)
    ALU(SH3ADD)
    ALU(ADD_UW)
    ALU(SH1ADD_UW)
    ALU(SH2ADD_UW)
    ALU(SH3ADD_UW)
    ALU(SLLI_UW)
    /* Zbb */
    ALU(ANDN)
    ALU(ORN)
    ALU(XNOR)
    ALU(CLZ)
    ALU(CTZ)
    ALU(CPOP)
    ALU(CLZW)
    ALU(CTZW)
    ALU(CPOPW)
    ALU(MAX)
    ALU(MAXU)
    ALU(MIN)
    ALU(MINU)
    ALU(SEXT_B)
    ALU(SEXT_H)
    ALU(ZEXT_H)
    ALU(ROL)
    ALU(ROR)
    ALU(RORI)
    ALU(ROLW)
    ALU(RORW)
    ALU(RORIW)
    ALU(ORC_B)
    ALU(REV8)
    /* Zbs */
    ALU(BCLR)
    ALU(BCLRI)
    ALU(BEXT)
    ALU(BEXTI)
    ALU(BINV)
    ALU(BINVI)
    ALU(BSET)
    ALU(BSETI)

    H4(FENCE_I, dcache_flush(h); RETIRE_AND_LEAVE(NEXT_PC());)
op_ECALL:
    EXC(h->priv == PRV_U ? EXC_ECALL_U : h->priv == PRV_S ? EXC_ECALL_S : EXC_ECALL_M, 0);
op_EBREAK:
    EXC(EXC_BREAKPOINT, PC_OF(i));
op_MRET:
    if (h->priv != PRV_M) EXC(EXC_ILLEGAL_INSN, 0x30200073);
    h->pc = PC_OF(i);
    icnt++;
    hart_mret(h);
    goto out;
op_SRET:
    if (h->priv == PRV_U || (h->priv == PRV_S && (h->mstatus & MSTATUS_TSR)))
        EXC(EXC_ILLEGAL_INSN, 0x10200073);
    h->pc = PC_OF(i);
    icnt++;
    hart_sret(h);
    goto out;
op_WFI:
    if (h->priv == PRV_U || (h->priv == PRV_S && (h->mstatus & MSTATUS_TW)))
        EXC(EXC_ILLEGAL_INSN, 0x10500073);
    h->wfi = true;
    RETIRE_AND_LEAVE(PC_OF(i) + 4);
op_SFENCE_VMA:
    if (h->priv == PRV_U || (h->priv == PRV_S && (h->mstatus & MSTATUS_TVM)))
        EXC(EXC_ILLEGAL_INSN, 0x12000073u | ((uint32_t)i->rs1 << 15) | ((uint32_t)i->rs2 << 20));
    /* rs1 != x0: only that address's leaf (priv spec 10.2.1), in every address space; rs2 !=
     * x0 alone: that ASID's translations (the TLB has no ASIDs: all of it) */
    if (i->rs1)
        tlb_flush_page(h, RS1);
    else if (i->rs2)
        tlb_flush_asid(h, RS2);
    else
        tlb_flush_all(h);
    RETIRE_AND_LEAVE(PC_OF(i) + 4);

#define CSR_OP(name, op, funct3, srcval, is_write)                                                 \
    H4(name, {                                                                                     \
        uint64_t old;                                                                              \
        bool wr = (is_write);                                                                      \
        h->instret += icnt; /* exact instret for reads of instret/cycle */                         \
        icnt = 0;                                                                                  \
        int c = csr_access(h, (unsigned)i->imm, op, (srcval), wr, &old);                           \
        if (c) EXC((uint64_t)c, csr_encoding(i, funct3));                                          \
        RD = old;                                                                                  \
        if (wr) RETIRE_AND_LEAVE(NEXT_PC());                                                       \
        NEXT();                                                                                    \
    })
    CSR_OP(CSRRW, 0, 1, RS1, true)
    CSR_OP(CSRRS, 1, 2, RS1, i->rs1 != 0)
    CSR_OP(CSRRC, 2, 3, RS1, i->rs1 != 0)
    CSR_OP(CSRRWI, 0, 5, i->rs1, true)
    CSR_OP(CSRRSI, 1, 6, i->rs1, i->rs1 != 0)
    CSR_OP(CSRRCI, 2, 7, i->rs1, i->rs1 != 0)

    /* A: LR/SC as load-reserved + compare-and-swap against the reserved value. */
#define LR_OP(name, type, ext)                                                                     \
    H4(name, {                                                                                     \
        uint64_t va = RS1;                                                                         \
        void *p;                                                                                   \
        int c = mem_atomic_ptr(h, va, sizeof(type), true, &p);                                     \
        if (c) EXC((uint64_t)c, h->fault_tval);                                                    \
        if (i->imm & 1) host_fence_full(); /* .rl: earlier stores before this load */              \
        uint64_t v = ext(__atomic_load_n((type *)p, __ATOMIC_ACQUIRE));                            \
        h->res_addr = va;                                                                          \
        h->res_val = v;                                                                            \
        h->res_valid = true;                                                                       \
        RD = v;                                                                                    \
        NEXT();                                                                                    \
    })
#define SC_OP(name, type)                                                                          \
    H4(name, {                                                                                     \
        uint64_t va = RS1;                                                                         \
        void *p;                                                                                   \
        int c = mem_atomic_ptr(h, va, sizeof(type), false, &p);                                    \
        if (c) EXC((uint64_t)c, h->fault_tval);                                                    \
        bool ok = false;                                                                           \
        if (h->res_valid && h->res_addr == va) {                                                   \
            type expect = (type)h->res_val;                                                        \
            ok = __atomic_compare_exchange_n((type *)p, &expect, (type)RS2, false,                 \
                                             __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);                  \
        } else if (i->imm) /* no store was tried, so no locked instruction ordered it */           \
            host_fence_full();                                                                     \
        h->res_valid = false;                                                                      \
        RD = ok ? 0 : 1;                                                                           \
        NEXT();                                                                                    \
    })
#define EXT_W(v) sx32(v)
#define EXT_D(v) (uint64_t)(v)
    LR_OP(LR_W, uint32_t, EXT_W)
    LR_OP(LR_D, uint64_t, EXT_D)
    SC_OP(SC_W, uint32_t)
    SC_OP(SC_D, uint64_t)

#define AMO_PTR(size)                                                                              \
    uint64_t va = RS1;                                                                             \
    void *p;                                                                                       \
    int c = mem_atomic_ptr(h, va, size, false, &p);                                                \
    if (c) EXC((uint64_t)c, h->fault_tval);
#define AMO_FETCH(name, type, fn, ext)                                                             \
    H4(name, {                                                                                     \
        AMO_PTR(sizeof(type))                                                                      \
        type old = fn((type *)p, (type)RS2, __ATOMIC_SEQ_CST);                                     \
        RD = ext(old);                                                                             \
        NEXT();                                                                                    \
    })
#define AMO_CAS(name, type, expr, ext)                                                             \
    H4(name, {                                                                                     \
        AMO_PTR(sizeof(type))                                                                      \
        type src = (type)RS2, old = __atomic_load_n((type *)p, __ATOMIC_RELAXED), nv;              \
        do {                                                                                       \
            nv = (expr);                                                                           \
        } while (!__atomic_compare_exchange_n((type *)p, &old, nv, true, __ATOMIC_SEQ_CST,         \
                                              __ATOMIC_RELAXED));                                  \
        RD = ext(old);                                                                             \
        NEXT();                                                                                    \
    })
    AMO_FETCH(AMOSWAP_W, uint32_t, __atomic_exchange_n, EXT_W)
    AMO_FETCH(AMOADD_W, uint32_t, __atomic_fetch_add, EXT_W)
    AMO_FETCH(AMOXOR_W, uint32_t, __atomic_fetch_xor, EXT_W)
    AMO_FETCH(AMOAND_W, uint32_t, __atomic_fetch_and, EXT_W)
    AMO_FETCH(AMOOR_W, uint32_t, __atomic_fetch_or, EXT_W)
    AMO_CAS(AMOMIN_W, uint32_t, (int32_t)old < (int32_t)src ? old : src, EXT_W)
    AMO_CAS(AMOMAX_W, uint32_t, (int32_t)old > (int32_t)src ? old : src, EXT_W)
    AMO_CAS(AMOMINU_W, uint32_t, old < src ? old : src, EXT_W)
    AMO_CAS(AMOMAXU_W, uint32_t, old > src ? old : src, EXT_W)
    AMO_FETCH(AMOSWAP_D, uint64_t, __atomic_exchange_n, EXT_D)
    AMO_FETCH(AMOADD_D, uint64_t, __atomic_fetch_add, EXT_D)
    AMO_FETCH(AMOXOR_D, uint64_t, __atomic_fetch_xor, EXT_D)
    AMO_FETCH(AMOAND_D, uint64_t, __atomic_fetch_and, EXT_D)
    AMO_FETCH(AMOOR_D, uint64_t, __atomic_fetch_or, EXT_D)
    AMO_CAS(AMOMIN_D, uint64_t, (int64_t)old < (int64_t)src ? old : src, EXT_D)
    AMO_CAS(AMOMAX_D, uint64_t, (int64_t)old > (int64_t)src ? old : src, EXT_D)
    AMO_CAS(AMOMINU_D, uint64_t, old < src ? old : src, EXT_D)
    AMO_CAS(AMOMAXU_D, uint64_t, old > src ? old : src, EXT_D)

    /* F/D loads and stores (the arithmetic is in fpu.c). i->rd / i->rs2 are f registers. */
#define FP_CHECK()                                                                                 \
    if (unlikely(!(h->mstatus & MSTATUS_FS))) EXC(EXC_ILLEGAL_INSN, 0);
    H4(FLW, {
        FP_CHECK();
        uint64_t va = RS1 + (uint64_t)IMM;
        uint64_t v;
        struct tlb_entry *e = &tr[(va >> 12) & (TLB_SIZE - 1)];
        if (likely(e->tag == ((va >> 12) ^ key) && (va & 0xfff) <= 4092)) {
            uint32_t w;
            memcpy(&w, (void *)(uintptr_t)(va + e->addend), 4);
            v = w;
        } else {
            int c = mem_load_slow(h, va, 4, &v);
            if (c) EXC((uint64_t)c, h->fault_tval);
        }
        h->fp.f[i->rd] = fpu_box32((uint32_t)v);
        h->mstatus |= FS_DIRTY;
        NEXT();
    })
    H2(FLD, {
        FP_CHECK();
        uint64_t va = RS1 + (uint64_t)IMM;
        uint64_t v;
        struct tlb_entry *e = &tr[(va >> 12) & (TLB_SIZE - 1)];
        if (likely(e->tag == ((va >> 12) ^ key) && (va & 0xfff) <= 4088)) {
            memcpy(&v, (void *)(uintptr_t)(va + e->addend), 8);
        } else {
            int c = mem_load_slow(h, va, 8, &v);
            if (c) EXC((uint64_t)c, h->fault_tval);
        }
        h->fp.f[i->rd] = v;
        h->mstatus |= FS_DIRTY;
        NEXT();
    })
    H4(FSW, FP_CHECK(); STORE_VAL(uint32_t, h->fp.f[i->rs2]); NEXT();)
    H2(FSD, FP_CHECK(); STORE_VAL(uint64_t, h->fp.f[i->rs2]); NEXT();)
    H4(FPU, if (unlikely(!(h->mstatus & MSTATUS_FS)) || fpu_exec(&h->fp, x, (uint32_t)i->imm) != 0)
                EXC(EXC_ILLEGAL_INSN, (uint32_t)i->imm);
       h->mstatus |= FS_DIRTY; NEXT();)

out:
    h->instret += icnt;
    h->exec_left = budget;
}

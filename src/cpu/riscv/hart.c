/* Hart lifecycle, the run loop (interrupts, WFI sleep), trap entry and return
 * (priv spec 3.1.6.1, 3.1.9, 3.3.2, 3.3.3). */
#include "cpu/riscv/hart.h"
#include "cpu/riscv/jit/fastmem.h"
#include "cpu/riscv/jit/jit.h"
#include "irq/aclint.h"
#include "util/clock.h"
#include "util/log.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Control transfers per hart_exec call: bounds interrupt latency for a busy hart. */
#define EXEC_BUDGET     2048
/* Consecutive exceptions at one pc with no instruction retired before vessel gives up. */
#define TRAP_LOOP_LIMIT 100000

static void hart_clear_state(struct hart *h, uint64_t reset_pc)
{
    memset(h->x, 0, sizeof(h->x));
    memset(&h->fp, 0, sizeof(h->fp));
    h->pc = reset_pc;
    h->priv = PRV_M;
    h->mstatus = 0;
    h->medeleg = h->mideleg = h->mie = h->mtvec = h->mscratch = h->mepc = 0;
    h->mcause = h->mtval = h->mcounteren = h->scounteren = h->menvcfg = h->senvcfg = 0;
    h->mcountinhibit = 0;
    h->stvec = h->sscratch = h->sepc = h->scause = h->stval = h->satp = 0;
    h->stimecmp = ~0ull;
    h->mip_sw = 0;
    h->instret = h->cycle_offset = h->instret_offset = 0;
    h->cycle_frozen = h->instret_frozen = 0;
    memset(h->pmpcfg, 0, sizeof(h->pmpcfg));
    memset(h->pmpaddr, 0, sizeof(h->pmpaddr));
    pmp_update(h);
    h->res_valid = false;
    h->wfi = false;
    h->last_trap_pc = ~0ull;
    h->same_trap_count = 0;
    h->fatal_msg[0] = 0;
    atomic_store(&h->mip_ext, 0);
    atomic_store(&h->stop, 0);
    atomic_store(&h->kicked, 0);
    hart_update_mode(h);
    h->tselect = 0;
    for (unsigned k = 0; k < TRIG_COUNT; k++) /* reset: every trigger disabled (type 15) */
        h->trig[k] = (struct trigger){15ull << 60, 0};
    h->tlb_gen = TLB_GEN_MAX; /* the next flush clears every set */
    trigger_update(h);        /* also flushes the TLB and the decoded pages */
}

int hart_init(struct hart *h, unsigned id, const struct hart_env *env, uint64_t reset_pc)
{
    memset(h, 0, sizeof(*h));
    h->id = id;
    h->env = *env;
    pthread_mutex_init(&h->sleep_lock, NULL);
    cond_init_monotonic(&h->sleep_cond);
    hart_clear_state(h, reset_pc);
    if (env->engine == ENGINE_JIT) {
        int r = jit_init(h, env->jit_cache_size);
        if (r == 0) (void)fastmem_init(h); /* without it, user code uses the TLB */
        if (r < 0) {
            hart_destroy(h);
            memset(h, 0, sizeof(*h)); /* nothing left for the caller to destroy */
            return r;
        }
    }
    return 0;
}

void hart_reset(struct hart *h, uint64_t reset_pc)
{
    hart_clear_state(h, reset_pc);
}

void hart_destroy(struct hart *h)
{
    fastmem_destroy(h);
    jit_destroy(h);
    for (unsigned i = 0; i < DCACHE_SLOTS; i++) {
        free(h->dcache[i]);
        h->dcache[i] = NULL;
    }
    h->dcache_pages = 0;
    pthread_mutex_destroy(&h->sleep_lock);
    pthread_cond_destroy(&h->sleep_cond);
}

void hart_update_mode(struct hart *h)
{
    if (h->priv == PRV_M)
        h->tlbi_data = (h->mstatus & MSTATUS_MPRV) ? TLBI_NONE : TLBI_M;
    else if (h->priv == PRV_S)
        h->tlbi_data = (h->mstatus & MSTATUS_SUM) ? TLBI_S_SUM : TLBI_S;
    else
        h->tlbi_data = TLBI_U;
    fastmem_update_mode(h);
}

void hart_kick(struct hart *h)
{
    pthread_mutex_lock(&h->sleep_lock);
    atomic_store(&h->kicked, 1);
    pthread_cond_broadcast(&h->sleep_cond); /* the debugger may wait on it too */
    pthread_mutex_unlock(&h->sleep_lock);
}

void hart_pause(struct hart *h)
{
    pthread_mutex_lock(&h->sleep_lock);
    atomic_store(&h->pause_req, 1);
    atomic_store(&h->kicked, 1);
    pthread_cond_broadcast(&h->sleep_cond);
    while (!h->parked && !atomic_load(&h->stop))
        pthread_cond_wait(&h->sleep_cond, &h->sleep_lock);
    pthread_mutex_unlock(&h->sleep_lock);
}

void hart_resume(struct hart *h, bool single_step)
{
    pthread_mutex_lock(&h->sleep_lock);
    h->single_step = single_step;
    h->debug_reason = DEBUG_NONE;
    atomic_store(&h->pause_req, 0);
    pthread_cond_broadcast(&h->sleep_cond);
    pthread_mutex_unlock(&h->sleep_lock);
}

/* Stay here while the debugger holds the hart. */
static void hart_park(struct hart *h)
{
    pthread_mutex_lock(&h->sleep_lock);
    h->parked = true;
    pthread_cond_broadcast(&h->sleep_cond);
    while (atomic_load(&h->pause_req) && !atomic_load(&h->stop))
        pthread_cond_wait(&h->sleep_cond, &h->sleep_lock);
    h->parked = false;
    pthread_mutex_unlock(&h->sleep_lock);
}

/* The hart stopped for the debugger on its own (breakpoint or finished step). */
static void hart_debug_stop(struct hart *h, enum hart_debug_reason why)
{
    h->debug_reason = why;
    atomic_store(&h->pause_req, 1);
    if (h->debug && h->debug->stopped) h->debug->stopped(h->debug->ctx, h);
}

void hart_set_irq(struct hart *h, unsigned bit, bool level)
{
    if (level) {
        atomic_fetch_or(&h->mip_ext, 1ull << bit);
        hart_kick(h);
    } else {
        atomic_fetch_and(&h->mip_ext, ~(1ull << bit));
    }
}

void hart_request_stop(struct hart *h)
{
    atomic_store(&h->stop, 1);
    hart_kick(h);
}

static void set_fatal(struct hart *h, const char *what, uint64_t cause, uint64_t tval)
{
    snprintf(h->fatal_msg, sizeof(h->fatal_msg),
             "hart %u: %s (cause %llu, pc 0x%llx, tval 0x%llx, %s-mode)", h->id, what,
             (unsigned long long)cause, (unsigned long long)h->pc, (unsigned long long)tval,
             h->priv == PRV_M   ? "M"
             : h->priv == PRV_S ? "S"
                                : "U");
    atomic_store(&h->stop, 1);
}

static void trap_enter(struct hart *h, uint64_t cause, bool irq, uint64_t tval)
{
    uint64_t deleg = irq ? h->mideleg : h->medeleg;
    uint64_t code = cause & 63;
    unsigned from = h->priv;
    uint64_t mcause_val = irq ? (cause | (1ull << 63)) : cause;
    if (h->trace_traps)
        log_debug("hart %u trap %s %llu at pc 0x%llx tval 0x%llx from %u", h->id,
                  irq ? "irq" : "exc", (unsigned long long)code, (unsigned long long)h->pc,
                  (unsigned long long)tval, from);
    h->res_valid = false;
    if (from <= PRV_S && ((deleg >> code) & 1)) {
        h->scause = mcause_val;
        h->sepc = h->pc;
        h->stval = tval;
        uint64_t s = h->mstatus;
        s = (s & ~MSTATUS_SPIE) | ((s & MSTATUS_SIE) ? MSTATUS_SPIE : 0);
        s = (s & ~MSTATUS_SPP) | (from == PRV_S ? MSTATUS_SPP : 0);
        s &= ~MSTATUS_SIE;
        h->mstatus = s;
        h->priv = PRV_S;
        uint64_t base = h->stvec & ~3ull;
        h->pc = (irq && (h->stvec & 1)) ? base + 4 * code : base;
    } else {
        h->mcause = mcause_val;
        h->mepc = h->pc;
        h->mtval = tval;
        uint64_t s = h->mstatus;
        s = (s & ~MSTATUS_MPIE) | ((s & MSTATUS_MIE) ? MSTATUS_MPIE : 0);
        s = (s & ~MSTATUS_MPP) | ((uint64_t)from << 11);
        s &= ~MSTATUS_MIE;
        h->mstatus = s;
        h->priv = PRV_M;
        uint64_t base = h->mtvec & ~3ull;
        h->pc = (irq && (h->mtvec & 1)) ? base + 4 * code : base;
    }
    hart_update_mode(h);
}

void hart_raise_exception(struct hart *h, uint64_t cause, uint64_t tval)
{
    if (cause == CAUSE_DEBUG_TRIGGER) { /* a debugger trigger: stop for it, no guest trap */
        h->debug_reason = DEBUG_TRIGGER;
        return;
    }
    /* An exception at the same pc with nothing retired since the last one, over and over,
     * is a fault loop the guest cannot leave (e.g. its trap vector itself faults). */
    if (h->pc == h->last_trap_pc && h->instret == h->last_trap_instret) {
        if (++h->same_trap_count >= TRAP_LOOP_LIMIT) {
            set_fatal(h, "the guest is stuck in an exception loop", cause, tval);
            return;
        }
    } else {
        h->same_trap_count = 0;
    }
    h->last_trap_pc = h->pc;
    h->last_trap_instret = h->instret;
    trap_enter(h, cause, false, tval);
}

void hart_mret(struct hart *h)
{
    uint64_t s = h->mstatus;
    unsigned mpp = (unsigned)((s & MSTATUS_MPP) >> 11);
    s = (s & ~MSTATUS_MIE) | ((s & MSTATUS_MPIE) ? MSTATUS_MIE : 0);
    s |= MSTATUS_MPIE;
    s &= ~MSTATUS_MPP; /* least-privileged mode: U */
    if (mpp != PRV_M) s &= ~MSTATUS_MPRV;
    h->mstatus = s;
    h->priv = mpp;
    h->pc = h->mepc;
    hart_update_mode(h);
}

void hart_sret(struct hart *h)
{
    uint64_t s = h->mstatus;
    unsigned spp = (s & MSTATUS_SPP) ? PRV_S : PRV_U;
    s = (s & ~MSTATUS_SIE) | ((s & MSTATUS_SPIE) ? MSTATUS_SIE : 0);
    s |= MSTATUS_SPIE;
    s &= ~MSTATUS_SPP;
    s &= ~MSTATUS_MPRV; /* sret always returns to a mode below M */
    h->mstatus = s;
    h->priv = spp;
    h->pc = h->sepc;
    hart_update_mode(h);
}

/* Priority order, priv spec 3.1.9: MEI, MSI, MTI, SEI, SSI, STI. */
static const unsigned irq_order[] = {IRQ_MEI, IRQ_MSI, IRQ_MTI, IRQ_SEI, IRQ_SSI, IRQ_STI};

bool hart_check_interrupts(struct hart *h)
{
    uint64_t pend = hart_mip(h) & h->mie;
    if (!pend) return false;
    h->wfi = false; /* WFI wakes on any pending enabled interrupt, even if globally off */
    uint64_t m_en = 0, s_en = 0;
    uint64_t mpend = pend & ~h->mideleg, spend = pend & h->mideleg;
    if (h->priv < PRV_M || (h->mstatus & MSTATUS_MIE)) m_en = mpend;
    if (h->priv < PRV_S || (h->priv == PRV_S && (h->mstatus & MSTATUS_SIE))) s_en = spend;
    uint64_t take = m_en ? m_en : s_en;
    if (!take) return false;
    for (unsigned i = 0; i < sizeof(irq_order) / sizeof(irq_order[0]); i++) {
        if (take & (1ull << irq_order[i])) {
            trap_enter(h, irq_order[i], true, 0);
            return true;
        }
    }
    return false;
}

/* Adaptive halt polling, as KVM does: when wakeups have recently come soon after WFI (an I/O
 * completion, an IPI), spin a little before sleeping so they are not delayed by a futex wakeup;
 * an idle guest, woken only by its timer ticks, shrinks the window to nothing and sleeps. */
#define HALT_POLL_START_NS 10000
#define HALT_POLL_MAX_NS   50000

static bool hart_poll_wakeup(struct hart *h, uint64_t deadline, uint64_t until_ns)
{
    while (host_monotonic_ns() < until_ns) {
        if (atomic_load_explicit(&h->kicked, memory_order_acquire) || atomic_load(&h->stop) ||
            hart_time(h) >= deadline)
            return true;
        __builtin_ia32_pause();
    }
    return false;
}

/* Sleep in WFI until an interrupt may be pending: the next enabled timer deadline or a kick. */
static void hart_wait(struct hart *h)
{
    uint64_t deadline = ~0ull; /* in mtime ticks */
    if (h->mie & MIP_MTIP) deadline = atomic_load(&h->env.clint->mtimecmp[h->id]);
    if ((h->menvcfg & MENVCFG_STCE) && (h->mie & MIP_STIP) && h->stimecmp < deadline)
        deadline = h->stimecmp;
    uint64_t start = host_monotonic_ns();
    if (h->halt_poll_ns && hart_poll_wakeup(h, deadline, start + h->halt_poll_ns)) {
        atomic_store(&h->kicked, 0);
        return; /* woken while polling: keep the window */
    }
    pthread_mutex_lock(&h->sleep_lock);
    while (!atomic_load(&h->kicked) && !atomic_load(&h->stop)) {
        uint64_t now = hart_time(h);
        if (now >= deadline) break;
        uint64_t delta_ticks = deadline - now;
        if (delta_ticks > 10 * VCLOCK_HZ)
            delta_ticks = 10 * VCLOCK_HZ; /* re-check every 10 s at most */
        uint64_t wake = host_monotonic_ns() + vclock_ticks_to_ns(delta_ticks);
        struct timespec ts = {(time_t)(wake / 1000000000ull), (long)(wake % 1000000000ull)};
        pthread_cond_timedwait(&h->sleep_cond, &h->sleep_lock, &ts);
    }
    atomic_store(&h->kicked, 0);
    pthread_mutex_unlock(&h->sleep_lock);
    /* Grow the window when the sleep was short enough that polling would have caught it. */
    uint64_t slept = host_monotonic_ns() - start;
    if (slept <= HALT_POLL_MAX_NS) {
        h->halt_poll_ns = h->halt_poll_ns ? h->halt_poll_ns * 2 : HALT_POLL_START_NS;
        if (h->halt_poll_ns > HALT_POLL_MAX_NS) h->halt_poll_ns = HALT_POLL_MAX_NS;
    } else {
        h->halt_poll_ns /= 2;
        if (h->halt_poll_ns < HALT_POLL_START_NS) h->halt_poll_ns = 0;
    }
}

enum hart_exit hart_run(struct hart *h)
{
    while (!atomic_load_explicit(&h->stop, memory_order_relaxed)) {
        if (atomic_load_explicit(&h->pause_req, memory_order_relaxed)) {
            hart_park(h);
            continue;
        }
        if (h->single_step) { /* like QEMU's default: no interrupts while stepping */
            h->single_step = false;
            h->wfi = false;
            hart_exec(h, 0);
            /* a watchpoint that fired during the step is the better stop reason */
            hart_debug_stop(h, h->debug_reason == DEBUG_TRIGGER ? DEBUG_TRIGGER : DEBUG_STEP);
            continue;
        }
        hart_check_interrupts(h);
        if (h->wfi) {
            hart_wait(h);
            continue;
        }
        if (h->jit)
            jit_exec(h, EXEC_BUDGET);
        else
            hart_exec(h, EXEC_BUDGET);
        if (h->debug_reason != DEBUG_NONE) hart_debug_stop(h, h->debug_reason);
    }
    return h->fatal_msg[0] ? HART_EXIT_FATAL : HART_EXIT_STOP;
}

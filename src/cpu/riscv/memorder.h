/* Host barriers that implement RVWMO guest ordering (docs/engine.md "Memory model").
 * On an x86-64 host (x86-TSO) plain loads and stores already keep load->load, load->store and
 * store->store order; the only reordering the host does is a load passing an earlier store
 * still in the store buffer. So a guest FENCE that orders stores before loads needs a full
 * barrier, and every other guest FENCE only needs the compiler not to move accesses across it.
 * Other hosts are weaker than TSO: there every guest FENCE is a full barrier (correct, slower;
 * plain guest accesses there would also need care, so x86-64 is the only host we claim). */
#ifndef VESSEL_CPU_RISCV_MEMORDER_H
#define VESSEL_CPU_RISCV_MEMORDER_H

/* Orders every earlier host memory access before every later one (also store -> load). A
 * locked read-modify-write of the stack is a full barrier on x86 (SDM vol. 3, 9.2.2) and
 * cheaper than mfence on most cores; it leaves the stack word unchanged. */
static inline void host_fence_full(void)
{
#if defined(__x86_64__)
    __asm__ __volatile__("lock orq $0, (%%rsp)" ::: "memory", "cc");
#else
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

/* Orders everything except an earlier store before a later load (FENCE.TSO and every FENCE
 * whose predecessor set has no W/O or successor set no R/I). */
static inline void host_fence_tso(void)
{
#if defined(__x86_64__)
    __asm__ __volatile__("" ::: "memory");
#else
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}
#endif

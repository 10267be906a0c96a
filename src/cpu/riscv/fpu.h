/* RV64 F and D arithmetic (everything but loads/stores, which the interpreter does).
 * IEEE-754-2008 as the RISC-V unprivileged spec (ch. "F" and "D") demands: all five rounding
 * modes (RNE, RTZ, RDN, RUP, RMM) from the instruction's rm field or, for rm=7 (DYN), from
 * frm; accrued exception flags (NV DZ OF UF NX) in fflags; NaN boxing of single values in the
 * 64-bit f registers (an improperly boxed single input reads as the canonical NaN); canonical
 * NaN results (0x7fc00000 / 0x7ff8000000000000); FMIN/FMAX with -0 < +0 and signalling-NaN
 * rules; FEQ quiet, FLT/FLE signalling; FCVT to integers saturating with NV (NaN -> max);
 * FCLASS; FMV.X.W sign-extends; FSGNJ* do not canonicalise. */
#ifndef VESSEL_CPU_RISCV_FPU_H
#define VESSEL_CPU_RISCV_FPU_H
#include <stdint.h>

#define FFLAG_NX 0x01
#define FFLAG_UF 0x02
#define FFLAG_OF 0x04
#define FFLAG_DZ 0x08
#define FFLAG_NV 0x10

struct fpu_state {
    uint64_t f[32];
    uint32_t fflags; /* accrued flags, 5 bits */
    uint32_t frm;    /* dynamic rounding mode, 3 bits */
};

/* Execute one OP-FP (opcode 0x53) or fused multiply-add (0x43, 0x47, 0x4b, 0x4f) instruction
 * given its 32-bit encoding. x is the 32 integer registers (x[0] is never written: results for
 * rd=0 are discarded). Returns 0 on success, -1 for an illegal instruction (unknown encoding,
 * reserved rm 5/6, or rm=DYN with frm >= 5). The caller has already checked mstatus.FS != Off
 * and marks FS Dirty afterwards. */
int fpu_exec(struct fpu_state *fs, uint64_t *x, uint32_t insn);

/* Enable (1, the default) or disable (0) the host-FPU path (currently square roots only); the
 * exact software path then does every operation. Results and flags are identical either way;
 * this exists so tests can compare the two. Returns the previous setting. Not thread-safe:
 * call before harts run. */
int fpu_set_host_path(int enable);

/* Box a single into a 64-bit f register value. */
static inline uint64_t fpu_box32(uint32_t v)
{
    return 0xffffffff00000000ull | v;
}
#endif

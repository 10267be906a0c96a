// SOURCES: src/cpu/riscv/fpu.c
/* fpu_exec on arbitrary encodings and register contents: never crashes, and
 *  - an illegal instruction (-1) changes nothing;
 *  - fflags only gains bits, within the five defined ones; x0 is never written;
 *  - a single-precision result written to an f register is NaN-boxed;
 *  - every NaN an arithmetic instruction produces is the canonical one;
 *  - the host square-root path and the software path give identical state.
 * Input: 4 bytes instruction, 1 byte frm, then register values (missing bytes read as 0). */
#include "cpu/riscv/fpu.h"
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct snap {
    struct fpu_state fs;
    uint64_t x[32];
};

static int run(struct snap *s, uint32_t insn, int host)
{
    fpu_set_host_path(host);
    return fpu_exec(&s->fs, s->x, insn);
}

static bool is_nan64(uint64_t v)
{
    return (v & 0x7ff0000000000000ull) == 0x7ff0000000000000ull && (v << 12);
}
static bool is_nan32(uint32_t v)
{
    return (v & 0x7f800000u) == 0x7f800000u && (v << 9);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    struct snap in, a, b;
    uint32_t insn = 0;
    memset(&in, 0, sizeof(in));
    if (len < 5) return 0;
    memcpy(&insn, data, 4);
    in.fs.frm = data[4] & 7;
    data += 5;
    len -= 5;
    /* Steer toward FP opcodes: the low 7 bits pick one of the five. */
    static const uint8_t opcodes[] = {0x53, 0x53, 0x53, 0x43, 0x47, 0x4b, 0x4f};
    insn = (insn & ~0x7fu) | opcodes[(insn & 0x7f) % sizeof(opcodes)];
    /* Registers: a few f values (often boxed singles), then x values. */
    for (int i = 0; i < 32 && len >= 8; i++, data += 8, len -= 8) {
        uint64_t v;
        memcpy(&v, data, 8);
        if ((v >> 60) == 0xf) v |= 0xffffffff00000000ull;
        in.fs.f[i] = v;
    }
    for (int i = 1; i < 32 && len >= 8; i++, data += 8, len -= 8)
        memcpy(&in.x[i], data, 8);

    a = in;
    b = in;
    int ra = run(&a, insn, 1), rb = run(&b, insn, 0);
    fpu_set_host_path(1);
    if (ra != rb || memcmp(&a, &b, sizeof(a)) != 0) abort();
    if (ra != 0 && ra != -1) abort();
    if (ra == -1) {
        if (memcmp(&a, &in, sizeof(a)) != 0) abort();
        return 0;
    }
    if (a.x[0] != 0) abort();
    if (a.fs.fflags & ~0x1fu) abort();
    if ((a.fs.fflags & in.fs.fflags) != in.fs.fflags) abort();

    unsigned opc = insn & 0x7f, rd = (insn >> 7) & 31, funct5 = insn >> 27, fmt = (insn >> 25) & 3;
    bool writes_f = opc != 0x53 || funct5 <= 0x0b || funct5 == 0x1a || funct5 == 0x1e;
    bool is_sgnj = opc == 0x53 && funct5 == 0x04;
    bool is_mv = opc == 0x53 && funct5 == 0x1e;
    if (writes_f) {
        uint64_t r = a.fs.f[rd];
        if (fmt == 0 && (r >> 32) != 0xffffffffu) abort();
        /* arithmetic NaN results are canonical; FSGNJ and FMV move bits as they are */
        if (!is_sgnj && !is_mv) {
            if (fmt == 0 && is_nan32((uint32_t)r) && (uint32_t)r != 0x7fc00000u) abort();
            if (fmt == 1 && is_nan64(r) && r != 0x7ff8000000000000ull) abort();
        }
    }
    return 0;
}

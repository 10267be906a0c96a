/* Bounds-checked guest physical memory access for device models (DESIGN.md: "guest memory
 * access is always bounds-checked through one helper"). Every address and length here comes
 * from the guest: never trust them. */
#ifndef VESSEL_MACHINE_GUESTMEM_H
#define VESSEL_MACHINE_GUESTMEM_H
#include <stdint.h>

struct guest_mem {
    uint8_t *ram;
    uint64_t base, size; /* guest physical [base, base + size) */
};

/* Host pointer for guest physical [gpa, gpa + len), or NULL if any byte is outside RAM
 * (including overflow of gpa + len). len 0 is valid inside RAM. */
static inline void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
    if (gpa < gm->base) return 0;
    uint64_t off = gpa - gm->base;
    if (off > gm->size || len > gm->size - off) return 0;
    return gm->ram + off;
}
#endif

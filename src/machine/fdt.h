/* Device tree for vessel's board (QEMU riscv virt layout; see docs and NOTES-boot.md). */
#ifndef VESSEL_MACHINE_FDT_H
#define VESSEL_MACHINE_FDT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FDT_MAX_VIRTIO 8

struct fdt_params {
    unsigned nharts;
    uint64_t ram_base, ram_size;
    const char *bootargs; /* NULL: no bootargs property */
    bool has_initrd;
    uint64_t initrd_start, initrd_end; /* end exclusive */
    uint8_t rng_seed[32];              /* /chosen/rng-seed */
    const char *isa;                   /* legacy riscv,isa, e.g. "rv64imafdc_zicntr_..." */
    const char *const *isa_ext;        /* riscv,isa-extensions, NULL-terminated */
    const char *mmu_type;              /* e.g. "riscv,sv57" */
    unsigned n_virtio;                 /* virtio,mmio nodes at 0x10001000 + 0x1000 n, irq 1 + n */
};

/* Build the blob into buf (bufsize bytes). Returns the blob's total size (>0) or -errno
 * (-ENOSPC if the buffer is too small). */
int fdt_build(const struct fdt_params *p, void *buf, size_t bufsize);
#endif

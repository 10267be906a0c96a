/* Device tree for vessel's board (QEMU riscv virt layout; see docs and NOTES-boot.md). */
#ifndef VESSEL_MACHINE_FDT_H
#define VESSEL_MACHINE_FDT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* virtio-mmio slots at 0x10001000 + 0x1000 n. The first 8 are QEMU virt's (PLIC sources 1-8);
 * the rest (vessel's own) take sources from 12 on, after the UART (10) and the RTC (11). */
#define FDT_MAX_VIRTIO 16
static inline unsigned fdt_virtio_irq(unsigned n)
{
    return n < 8 ? 1 + n : 12 + (n - 8);
}

/* Bound on /chosen/vessel,ssh-authorized-keys (vm/config.h VM_SSH_KEYS_MAX): the blob and
 * OpenSBI's growth must stay within machine.c's FDT_BUF_SIZE. */
#define FDT_SSH_KEYS_MAX 16384

struct fdt_params {
    unsigned nharts;
    uint64_t ram_base, ram_size;
    const char *bootargs; /* NULL: no bootargs property */
    const char *ssh_keys; /* /chosen/vessel,ssh-authorized-keys (NULL: none); < FDT_SSH_KEYS_MAX */
    bool has_initrd;
    uint64_t initrd_start, initrd_end; /* end exclusive */
    uint8_t rng_seed[32];              /* /chosen/rng-seed */
    const char *isa;                   /* legacy riscv,isa, e.g. "rv64imafdc_zicntr_..." */
    const char *const *isa_ext;        /* riscv,isa-extensions, NULL-terminated */
    const char *mmu_type;              /* e.g. "riscv,sv57" */
    unsigned n_virtio;                 /* virtio,mmio nodes at 0x10001000 + 0x1000 n, irq
                                          fdt_virtio_irq(n) */
};

/* Build the blob into buf (bufsize bytes). Returns the blob's total size (>0) or -errno
 * (-ENOSPC if the buffer is too small). */
int fdt_build(const struct fdt_params *p, void *buf, size_t bufsize);
#endif

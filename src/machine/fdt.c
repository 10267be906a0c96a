/* Device tree of vessel's board, built with libfdt's sequential-write API.
 * Layout, node names and compatibles follow QEMU's riscv64 virt machine (hw/riscv/virt.c) so
 * that OpenSBI's generic platform and Linux bind the same drivers; see NOTES-boot.md §2 for
 * which properties each of them depends on. */
#include "machine/fdt.h"
#include "util/clock.h"
#include <errno.h>
#include <libfdt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

/* The board's memory map (QEMU virt); machine.c maps the devices at the same addresses. */
#define CLINT_BASE    0x2000000ull
#define CLINT_SIZE    0x10000ull
#define PLIC_BASE     0xc000000ull
#define PLIC_SIZE     0x600000ull /* the register window QEMU advertises */
#define PLIC_NDEV     95
#define UART0_BASE    0x10000000ull
#define UART0_SIZE    0x100ull
#define UART0_CLOCK   3686400u /* 8250_of refuses a port without clock-frequency */
#define UART0_IRQ     10
#define TEST_BASE     0x100000ull
#define TEST_SIZE     0x1000ull
#define RTC_BASE      0x101000ull
#define RTC_SIZE      0x1000ull
#define RTC_IRQ       11
#define VMGENID_BASE  0x102000ull
#define VMGENID_IRQ   20
#define VIRTIO_BASE   0x10001000ull
#define VIRTIO_SIZE   0x1000ull
#define FDT_MAX_HARTS 64 /* PLIC contexts and ACLINT harts are sized for 64 */

/* Local interrupt numbers on the hart's riscv,cpu-intc (privileged spec, mip bits). */
#define IRQ_S_SOFT  1
#define IRQ_M_SOFT  3
#define IRQ_S_TIMER 5
#define IRQ_M_TIMER 7
#define IRQ_S_EXT   9
#define IRQ_M_EXT   11

/* Fixed phandles so the same configuration always yields the same blob. */
#define PH_PLIC    1u
#define PH_TEST    2u
#define PH_CPU(h)  (3u + 2u * (h))
#define PH_INTC(h) (4u + 2u * (h))

/* Every step returns a libfdt error (<0); stop at the first one. */
#define TRY(expr)                                                                                  \
    do {                                                                                           \
        int r_ = (expr);                                                                           \
        if (r_ < 0) return r_;                                                                     \
    } while (0)

static int prop_cells(void *fdt, const char *name, const uint32_t *cells, unsigned n)
{
    fdt32_t v[4 * FDT_MAX_HARTS];
    if (n > sizeof(v) / sizeof(v[0])) return -FDT_ERR_BADVALUE;
    for (unsigned i = 0; i < n; i++)
        v[i] = cpu_to_fdt32(cells[i]);
    return fdt_property(fdt, name, v, (int)(n * sizeof(v[0])));
}

/* reg = <addr size> with #address-cells = #size-cells = 2. */
static int prop_reg64(void *fdt, uint64_t addr, uint64_t size)
{
    const uint32_t c[4] = {(uint32_t)(addr >> 32), (uint32_t)addr, (uint32_t)(size >> 32),
                           (uint32_t)size};
    return prop_cells(fdt, "reg", c, 4);
}

/* A string-list property ("a\0b\0") from a NULL-terminated array or n explicit strings. */
static int prop_strings(void *fdt, const char *name, const char *const *list, int n)
{
    size_t len = 0;
    for (int i = 0; n < 0 ? list[i] != NULL : i < n; i++)
        len += strlen(list[i]) + 1;
    if (len > INT_MAX) return -FDT_ERR_NOSPACE;
    char *v;
    TRY(fdt_property_placeholder(fdt, name, (int)len, (void **)&v));
    for (int i = 0; n < 0 ? list[i] != NULL : i < n; i++) {
        size_t l = strlen(list[i]) + 1;
        memcpy(v, list[i], l);
        v += l;
    }
    return 0;
}

/* interrupts-extended: for each hart, <intc_h irq_a intc_h irq_b>. */
static int prop_irqs_per_hart(void *fdt, unsigned nharts, uint32_t irq_a, uint32_t irq_b)
{
    uint32_t c[4 * FDT_MAX_HARTS];
    for (unsigned h = 0; h < nharts; h++) {
        c[4 * h + 0] = PH_INTC(h);
        c[4 * h + 1] = irq_a;
        c[4 * h + 2] = PH_INTC(h);
        c[4 * h + 3] = irq_b;
    }
    return prop_cells(fdt, "interrupts-extended", c, 4 * nharts);
}

static int node_name(char *buf, size_t len, const char *base, uint64_t unit)
{
    int n = snprintf(buf, len, "%s@%llx", base, (unsigned long long)unit);
    return n > 0 && (size_t)n < len ? 0 : -FDT_ERR_BADVALUE;
}

static int build_chosen(void *fdt, const struct fdt_params *p)
{
    TRY(fdt_begin_node(fdt, "chosen"));
    if (p->bootargs) TRY(fdt_property_string(fdt, "bootargs", p->bootargs));
    if (p->has_initrd) {
        /* Linux reads 1 or 2 cells (drivers/of/fdt.c early_init_dt_check_for_initrd). */
        TRY(fdt_property_u64(fdt, "linux,initrd-start", p->initrd_start));
        TRY(fdt_property_u64(fdt, "linux,initrd-end", p->initrd_end));
    }
    /* Without a seed a 6.12 guest's first getrandom() can block until virtio-rng arrives. */
    TRY(fdt_property(fdt, "rng-seed", p->rng_seed, sizeof(p->rng_seed)));
    TRY(fdt_property_string(fdt, "stdout-path", "/soc/serial@10000000"));
    /* vessel's own (vendor prefix, DT spec 2.2.4): keys for root, which the Debian root disk's
     * vessel-ssh-authorized-keys service installs from /proc/device-tree/chosen. */
    if (p->ssh_keys) TRY(fdt_property_string(fdt, "vessel,ssh-authorized-keys", p->ssh_keys));
    return fdt_end_node(fdt);
}

static int build_memory(void *fdt, const struct fdt_params *p)
{
    char name[32];
    TRY(node_name(name, sizeof(name), "memory", p->ram_base));
    TRY(fdt_begin_node(fdt, name));
    TRY(fdt_property_string(fdt, "device_type", "memory"));
    TRY(prop_reg64(fdt, p->ram_base, p->ram_size));
    return fdt_end_node(fdt);
}

static int build_cpu(void *fdt, const struct fdt_params *p, unsigned h)
{
    char name[32];
    TRY(node_name(name, sizeof(name), "cpu", h));
    TRY(fdt_begin_node(fdt, name));
    TRY(fdt_property_u32(fdt, "phandle", PH_CPU(h)));
    /* OpenSBI skips cpu nodes without device_type "cpu" (fdt_helper.c). */
    TRY(fdt_property_string(fdt, "device_type", "cpu"));
    TRY(fdt_property_u32(fdt, "reg", h));
    TRY(fdt_property_string(fdt, "status", "okay"));
    TRY(fdt_property_string(fdt, "compatible", "riscv"));
    TRY(fdt_property_string(fdt, "riscv,isa", p->isa));
    if (p->isa_ext) {
        TRY(fdt_property_string(fdt, "riscv,isa-base", "rv64i"));
        TRY(prop_strings(fdt, "riscv,isa-extensions", p->isa_ext, -1));
    }
    /* OpenSBI's fdt_cpu_fixup disables cpus without mmu-type. */
    TRY(fdt_property_string(fdt, "mmu-type", p->mmu_type));

    /* #address-cells 0 as newer QEMU emits it: dtc warns about interrupt providers without. */
    TRY(fdt_begin_node(fdt, "interrupt-controller"));
    TRY(fdt_property_u32(fdt, "#address-cells", 0));
    TRY(fdt_property_u32(fdt, "#interrupt-cells", 1));
    TRY(fdt_property(fdt, "interrupt-controller", NULL, 0));
    TRY(fdt_property_string(fdt, "compatible", "riscv,cpu-intc"));
    TRY(fdt_property_u32(fdt, "phandle", PH_INTC(h)));
    TRY(fdt_end_node(fdt));
    return fdt_end_node(fdt);
}

static int build_cpus(void *fdt, const struct fdt_params *p)
{
    char name[32];
    TRY(fdt_begin_node(fdt, "cpus"));
    TRY(fdt_property_u32(fdt, "#address-cells", 1));
    TRY(fdt_property_u32(fdt, "#size-cells", 0));
    /* Linux panics without timebase-frequency (arch/riscv/kernel/time.c). */
    TRY(fdt_property_u32(fdt, "timebase-frequency", (uint32_t)VCLOCK_HZ));
    for (unsigned h = 0; h < p->nharts; h++)
        TRY(build_cpu(fdt, p, h));

    /* Topology as QEMU reports it: one cluster, one core per hart. */
    TRY(fdt_begin_node(fdt, "cpu-map"));
    TRY(fdt_begin_node(fdt, "cluster0"));
    for (unsigned h = 0; h < p->nharts; h++) {
        snprintf(name, sizeof(name), "core%u", h);
        TRY(fdt_begin_node(fdt, name));
        TRY(fdt_property_u32(fdt, "cpu", PH_CPU(h)));
        TRY(fdt_end_node(fdt));
    }
    TRY(fdt_end_node(fdt));
    TRY(fdt_end_node(fdt));
    return fdt_end_node(fdt);
}

/* A device node under /soc wired to one PLIC source. */
static int build_plic_device(void *fdt, const char *base, uint64_t addr, uint64_t size,
                             const char *compat, uint32_t irq)
{
    char name[48];
    TRY(node_name(name, sizeof(name), base, addr));
    TRY(fdt_begin_node(fdt, name));
    TRY(fdt_property_u32(fdt, "interrupts", irq));
    TRY(fdt_property_u32(fdt, "interrupt-parent", PH_PLIC));
    TRY(prop_reg64(fdt, addr, size));
    TRY(fdt_property_string(fdt, "compatible", compat));
    return 0; /* caller ends the node */
}

static int build_soc(void *fdt, const struct fdt_params *p)
{
    char name[48];
    TRY(fdt_begin_node(fdt, "soc"));
    TRY(fdt_property_u32(fdt, "#address-cells", 2));
    TRY(fdt_property_u32(fdt, "#size-cells", 2));
    TRY(fdt_property_string(fdt, "compatible", "simple-bus"));
    TRY(fdt_property(fdt, "ranges", NULL, 0)); /* identity: children use CPU addresses */

    TRY(build_plic_device(fdt, "rtc", RTC_BASE, RTC_SIZE, "google,goldfish-rtc", RTC_IRQ));
    TRY(fdt_end_node(fdt));

    /* VM generation ID (rng/microsoft,vmgenid.yaml): 16 bytes; a new one after a restore */
    TRY(build_plic_device(fdt, "vmgenid", VMGENID_BASE, 16, "microsoft,vmgenid", VMGENID_IRQ));
    TRY(fdt_end_node(fdt));

    TRY(build_plic_device(fdt, "serial", UART0_BASE, UART0_SIZE, "ns16550a", UART0_IRQ));
    TRY(fdt_property_u32(fdt, "clock-frequency", UART0_CLOCK));
    TRY(fdt_end_node(fdt));

    static const char *const test_compat[] = {"sifive,test1", "sifive,test0", "syscon"};
    TRY(node_name(name, sizeof(name), "test", TEST_BASE));
    TRY(fdt_begin_node(fdt, name));
    TRY(fdt_property_u32(fdt, "phandle", PH_TEST));
    TRY(prop_reg64(fdt, TEST_BASE, TEST_SIZE));
    TRY(prop_strings(fdt, "compatible", test_compat, 3));
    TRY(fdt_end_node(fdt));

    for (unsigned n = 0; n < p->n_virtio; n++) {
        TRY(build_plic_device(fdt, "virtio_mmio", VIRTIO_BASE + VIRTIO_SIZE * n, VIRTIO_SIZE,
                              "virtio,mmio", fdt_virtio_irq(n)));
        TRY(fdt_end_node(fdt));
    }

    /* PLIC contexts 2h (M) and 2h+1 (S) follow the order of interrupts-extended. */
    static const char *const plic_compat[] = {"sifive,plic-1.0.0", "riscv,plic0"};
    TRY(node_name(name, sizeof(name), "plic", PLIC_BASE));
    TRY(fdt_begin_node(fdt, name));
    TRY(fdt_property_u32(fdt, "phandle", PH_PLIC));
    TRY(fdt_property_u32(fdt, "riscv,ndev", PLIC_NDEV));
    TRY(prop_reg64(fdt, PLIC_BASE, PLIC_SIZE));
    TRY(prop_irqs_per_hart(fdt, p->nharts, IRQ_M_EXT, IRQ_S_EXT));
    TRY(fdt_property(fdt, "interrupt-controller", NULL, 0));
    TRY(prop_strings(fdt, "compatible", plic_compat, 2));
    TRY(fdt_property_u32(fdt, "#address-cells", 0));
    TRY(fdt_property_u32(fdt, "#interrupt-cells", 1));
    TRY(fdt_end_node(fdt));

    /* OpenSBI finds the harts' timers and IPIs through the CLINT's interrupts-extended. */
    static const char *const clint_compat[] = {"sifive,clint0", "riscv,clint0"};
    TRY(node_name(name, sizeof(name), "clint", CLINT_BASE));
    TRY(fdt_begin_node(fdt, name));
    TRY(prop_irqs_per_hart(fdt, p->nharts, IRQ_M_SOFT, IRQ_M_TIMER));
    TRY(prop_reg64(fdt, CLINT_BASE, CLINT_SIZE));
    TRY(prop_strings(fdt, "compatible", clint_compat, 2));
    TRY(fdt_end_node(fdt));

    return fdt_end_node(fdt);
}

/* syscon-poweroff / syscon-reboot: OpenSBI's SRST and Linux both drive the test device
 * through these (OpenSBI lib/utils/reset/fdt_reset_syscon.c). */
static int build_syscon_action(void *fdt, const char *name, const char *compat, uint32_t value)
{
    TRY(fdt_begin_node(fdt, name));
    TRY(fdt_property_u32(fdt, "value", value));
    TRY(fdt_property_u32(fdt, "offset", 0));
    TRY(fdt_property_u32(fdt, "regmap", PH_TEST));
    TRY(fdt_property_string(fdt, "compatible", compat));
    return fdt_end_node(fdt);
}

static int build_tree(void *fdt, int size, const struct fdt_params *p)
{
    TRY(fdt_create(fdt, size));
    TRY(fdt_finish_reservemap(fdt));
    TRY(fdt_begin_node(fdt, ""));
    TRY(fdt_property_u32(fdt, "#address-cells", 2));
    TRY(fdt_property_u32(fdt, "#size-cells", 2));
    TRY(fdt_property_string(fdt, "compatible", "riscv-virtio"));
    TRY(fdt_property_string(fdt, "model", "riscv-virtio,qemu"));
    TRY(build_chosen(fdt, p));
    TRY(build_syscon_action(fdt, "poweroff", "syscon-poweroff", 0x5555));
    TRY(build_syscon_action(fdt, "reboot", "syscon-reboot", 0x7777));
    TRY(build_memory(fdt, p));
    TRY(build_cpus(fdt, p));
    TRY(build_soc(fdt, p));
    TRY(fdt_end_node(fdt));
    return fdt_finish(fdt);
}

static bool params_valid(const struct fdt_params *p)
{
    if (!p || p->nharts == 0 || p->nharts > FDT_MAX_HARTS || p->n_virtio > FDT_MAX_VIRTIO)
        return false;
    if (!p->isa || !p->mmu_type || p->ram_size == 0 || p->ram_base + p->ram_size < p->ram_base)
        return false;
    if (p->has_initrd && p->initrd_end < p->initrd_start) return false;
    if (p->ssh_keys && strnlen(p->ssh_keys, FDT_SSH_KEYS_MAX) == FDT_SSH_KEYS_MAX) return false;
    return true;
}

int fdt_build(const struct fdt_params *p, void *buf, size_t bufsize)
{
    if (!buf || !params_valid(p)) return -EINVAL;
    /* libfdt sizes are ints; a device tree never comes near 2 GiB. */
    int size = bufsize > INT_MAX ? INT_MAX : (int)bufsize;
    int r = build_tree(buf, size, p);
    if (r == -FDT_ERR_NOSPACE) return -ENOSPC;
    if (r < 0) return -EINVAL;
    return (int)fdt_totalsize(buf);
}

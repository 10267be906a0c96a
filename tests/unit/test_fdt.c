#include "test.h"
#include "machine/fdt.h"
#include "util/clock.h"
#include <errno.h>
#include <libfdt.h>
#include <stdlib.h>
#include <unistd.h>

static const char *const test_isa_ext[] = {"i",      "m",     "a",        "f",     "d", "c",
                                           "zicntr", "zicsr", "zifencei", "zihpm", NULL};

static struct fdt_params default_params(unsigned nharts)
{
    struct fdt_params p = {
        .nharts = nharts,
        .ram_base = 0x80000000ull,
        .ram_size = 512ull << 20,
        .bootargs = "console=ttyS0 root=/dev/vda rw",
        .has_initrd = true,
        .initrd_start = 0x88000000ull,
        .initrd_end = 0x88123457ull,
        .isa = "rv64imafdc_zicntr_zicsr_zifencei_zihpm",
        .isa_ext = test_isa_ext,
        .mmu_type = "riscv,sv57",
        .n_virtio = 8,
    };
    for (int i = 0; i < 32; i++)
        p.rng_seed[i] = (uint8_t)(0x40 + i);
    return p;
}

static uint8_t blob[256 * 1024];

static int build(const struct fdt_params *p)
{
    memset(blob, 0xee, sizeof(blob));
    int n = fdt_build(p, blob, sizeof(blob));
    if (n > 0) {
        CHECK_EQ(fdt_check_header(blob), 0);
        CHECK_EQ((uint32_t)n, fdt_totalsize(blob));
    }
    return n;
}

static int node(const char *path)
{
    int off = fdt_path_offset(blob, path);
    if (off < 0) fprintf(stderr, "  missing node %s\n", path);
    return off;
}

static const void *prop(int off, const char *name, int *len)
{
    int l = -1;
    const void *v = off >= 0 ? fdt_getprop(blob, off, name, &l) : NULL;
    if (len) *len = v ? l : -1;
    return v;
}

static const char *prop_str(const char *path, const char *name)
{
    int len;
    const char *s = prop(node(path), name, &len);
    if (!s || len < 1 || s[len - 1] != 0) return NULL;
    return s;
}

/* A property made of n u32 cells; returns cell i, or a marker if the length is wrong. */
static uint64_t cell(const char *path, const char *name, int ncells, int i)
{
    int len;
    const fdt32_t *v = prop(node(path), name, &len);
    if (!v || len != ncells * 4 || i >= ncells) return 0xbad0bad0bad0ull;
    fdt32_t x;
    memcpy(&x, v + i, 4);
    return fdt32_to_cpu(x);
}

static uint64_t u64prop(const char *path, const char *name)
{
    int len;
    const void *v = prop(node(path), name, &len);
    if (!v || len != 8) return 0xbad0bad0bad0ull;
    fdt64_t x;
    memcpy(&x, v, 8);
    return fdt64_to_cpu(x);
}

static bool has_prop(const char *path, const char *name)
{
    return prop(node(path), name, NULL) != NULL;
}

/* The index-th string of a string-list property. */
static const char *strlist(const char *path, const char *name, int idx)
{
    int off = node(path);
    return off < 0 ? NULL : fdt_stringlist_get(blob, off, name, idx, NULL);
}

static int strlist_count(const char *path, const char *name)
{
    int off = node(path);
    return off < 0 ? -1 : fdt_stringlist_count(blob, off, name);
}

/* Checks reg = <addr size> in 2+2 cells. */
static void check_reg64(const char *path, uint64_t addr, uint64_t size)
{
    CHECK_EQ(cell(path, "reg", 4, 0) << 32 | cell(path, "reg", 4, 1), addr);
    CHECK_EQ(cell(path, "reg", 4, 2) << 32 | cell(path, "reg", 4, 3), size);
}

/* The phandle in property name of path resolves to the node at target. */
static void check_ref(const char *path, const char *name, int ncells, int i, const char *target)
{
    uint32_t ph = (uint32_t)cell(path, name, ncells, i);
    int off = fdt_node_offset_by_phandle(blob, ph);
    int want = node(target);
    if (off < 0 || off != want) {
        fprintf(stderr, "  %s %s[%d] = phandle %u does not resolve to %s\n", path, name, i, ph,
                target);
        test_failures_in_current++;
    }
}

TEST(fdt_root_chosen_memory)
{
    struct fdt_params p = default_params(1);
    CHECK(build(&p) > 0);
    CHECK_EQ(cell("/", "#address-cells", 1, 0), 2);
    CHECK_EQ(cell("/", "#size-cells", 1, 0), 2);
    CHECK_STR(prop_str("/", "compatible"), "riscv-virtio");
    CHECK_STR(prop_str("/", "model"), "riscv-virtio,qemu");

    CHECK_STR(prop_str("/chosen", "bootargs"), "console=ttyS0 root=/dev/vda rw");
    CHECK_EQ(u64prop("/chosen", "linux,initrd-start"), 0x88000000ull);
    CHECK_EQ(u64prop("/chosen", "linux,initrd-end"), 0x88123457ull);
    int len;
    const uint8_t *seed = prop(node("/chosen"), "rng-seed", &len);
    CHECK_EQ(len, 32);
    CHECK(seed && memcmp(seed, p.rng_seed, 32) == 0);
    CHECK_STR(prop_str("/chosen", "stdout-path"), "/soc/serial@10000000");
    CHECK(node(prop_str("/chosen", "stdout-path")) >= 0);

    CHECK_STR(prop_str("/memory@80000000", "device_type"), "memory");
    check_reg64("/memory@80000000", 0x80000000ull, 512ull << 20);
}

TEST(fdt_chosen_without_bootargs_or_initrd)
{
    struct fdt_params p = default_params(1);
    p.bootargs = NULL;
    p.has_initrd = false;
    CHECK(build(&p) > 0);
    CHECK(node("/chosen") >= 0);
    CHECK(!has_prop("/chosen", "bootargs"));
    CHECK(!has_prop("/chosen", "linux,initrd-start"));
    CHECK(!has_prop("/chosen", "linux,initrd-end"));
    CHECK(has_prop("/chosen", "rng-seed"));
    CHECK(has_prop("/chosen", "stdout-path"));

    /* An empty command line is still a property; RAM above 4 GiB uses both cells. */
    p.bootargs = "";
    p.ram_size = 6ull << 30;
    CHECK(build(&p) > 0);
    CHECK_STR(prop_str("/chosen", "bootargs"), "");
    check_reg64("/memory@80000000", 0x80000000ull, 6ull << 30);
}

static void check_harts(unsigned n)
{
    char path[64], intc[96];
    CHECK_EQ(cell("/cpus", "timebase-frequency", 1, 0), VCLOCK_HZ);
    CHECK_EQ(cell("/cpus", "timebase-frequency", 1, 0), 10000000);
    CHECK_EQ(cell("/cpus", "#address-cells", 1, 0), 1);
    CHECK_EQ(cell("/cpus", "#size-cells", 1, 0), 0);
    for (unsigned h = 0; h < n; h++) {
        snprintf(path, sizeof(path), "/cpus/cpu@%x", h);
        CHECK_STR(prop_str(path, "device_type"), "cpu");
        CHECK_EQ(cell(path, "reg", 1, 0), h);
        CHECK_STR(prop_str(path, "status"), "okay");
        CHECK_STR(prop_str(path, "compatible"), "riscv");
        CHECK_STR(prop_str(path, "riscv,isa"), "rv64imafdc_zicntr_zicsr_zifencei_zihpm");
        CHECK_STR(prop_str(path, "riscv,isa-base"), "rv64i");
        CHECK_STR(prop_str(path, "mmu-type"), "riscv,sv57");
        CHECK_EQ(strlist_count(path, "riscv,isa-extensions"), 10);
        for (int i = 0; test_isa_ext[i]; i++)
            CHECK_STR(strlist(path, "riscv,isa-extensions", i), test_isa_ext[i]);

        snprintf(intc, sizeof(intc), "%s/interrupt-controller", path);
        CHECK_STR(prop_str(intc, "compatible"), "riscv,cpu-intc");
        CHECK_EQ(cell(intc, "#interrupt-cells", 1, 0), 1);
        CHECK_EQ(cell(intc, "#address-cells", 1, 0), 0);
        int len;
        CHECK(prop(node(intc), "interrupt-controller", &len) != NULL && len == 0);
        CHECK(fdt_get_phandle(blob, node(intc)) != 0);

        /* CLINT: <intc 3 intc 7> per hart; PLIC: <intc 11 intc 9> (context 2h = M). */
        check_ref("/soc/clint@2000000", "interrupts-extended", 4 * n, 4 * h, intc);
        CHECK_EQ(cell("/soc/clint@2000000", "interrupts-extended", 4 * n, 4 * h + 1), 3);
        check_ref("/soc/clint@2000000", "interrupts-extended", 4 * n, 4 * h + 2, intc);
        CHECK_EQ(cell("/soc/clint@2000000", "interrupts-extended", 4 * n, 4 * h + 3), 7);
        check_ref("/soc/plic@c000000", "interrupts-extended", 4 * n, 4 * h, intc);
        CHECK_EQ(cell("/soc/plic@c000000", "interrupts-extended", 4 * n, 4 * h + 1), 11);
        check_ref("/soc/plic@c000000", "interrupts-extended", 4 * n, 4 * h + 2, intc);
        CHECK_EQ(cell("/soc/plic@c000000", "interrupts-extended", 4 * n, 4 * h + 3), 9);

        snprintf(intc, sizeof(intc), "/cpus/cpu-map/cluster0/core%u", h);
        check_ref(intc, "cpu", 1, 0, path);
    }
    snprintf(path, sizeof(path), "/cpus/cpu@%x", n);
    CHECK(fdt_path_offset(blob, path) < 0);
    snprintf(path, sizeof(path), "/cpus/cpu-map/cluster0/core%u", n);
    CHECK(fdt_path_offset(blob, path) < 0);
}

TEST(fdt_cpus_1_2_4_64_harts)
{
    static const unsigned counts[] = {1, 2, 4, 64};
    for (unsigned i = 0; i < 4; i++) {
        struct fdt_params p = default_params(counts[i]);
        CHECK(build(&p) > 0);
        check_harts(counts[i]);
    }
}

TEST(fdt_soc_devices)
{
    struct fdt_params p = default_params(2);
    CHECK(build(&p) > 0);
    CHECK_EQ(cell("/soc", "#address-cells", 1, 0), 2);
    CHECK_EQ(cell("/soc", "#size-cells", 1, 0), 2);
    CHECK_STR(prop_str("/soc", "compatible"), "simple-bus");
    int len;
    CHECK(prop(node("/soc"), "ranges", &len) != NULL && len == 0);

    const char *clint = "/soc/clint@2000000";
    CHECK_EQ(strlist_count(clint, "compatible"), 2);
    CHECK_STR(strlist(clint, "compatible", 0), "sifive,clint0");
    CHECK_STR(strlist(clint, "compatible", 1), "riscv,clint0");
    check_reg64(clint, 0x2000000, 0x10000);

    const char *plic = "/soc/plic@c000000";
    CHECK_EQ(strlist_count(plic, "compatible"), 2);
    CHECK_STR(strlist(plic, "compatible", 0), "sifive,plic-1.0.0");
    CHECK_STR(strlist(plic, "compatible", 1), "riscv,plic0");
    check_reg64(plic, 0xc000000, 0x600000);
    CHECK_EQ(cell(plic, "#address-cells", 1, 0), 0);
    CHECK_EQ(cell(plic, "#interrupt-cells", 1, 0), 1);
    CHECK_EQ(cell(plic, "riscv,ndev", 1, 0), 95);
    CHECK(has_prop(plic, "interrupt-controller"));
    CHECK(fdt_get_phandle(blob, node(plic)) != 0);

    const char *uart = "/soc/serial@10000000";
    CHECK_STR(prop_str(uart, "compatible"), "ns16550a");
    check_reg64(uart, 0x10000000, 0x100);
    CHECK_EQ(cell(uart, "clock-frequency", 1, 0), 3686400);
    CHECK_EQ(cell(uart, "interrupts", 1, 0), 10);
    check_ref(uart, "interrupt-parent", 1, 0, plic);

    const char *rtc = "/soc/rtc@101000";
    CHECK_STR(prop_str(rtc, "compatible"), "google,goldfish-rtc");
    check_reg64(rtc, 0x101000, 0x1000);
    CHECK_EQ(cell(rtc, "interrupts", 1, 0), 11);
    check_ref(rtc, "interrupt-parent", 1, 0, plic);

    const char *test = "/soc/test@100000";
    CHECK_EQ(strlist_count(test, "compatible"), 3);
    CHECK_STR(strlist(test, "compatible", 0), "sifive,test1");
    CHECK_STR(strlist(test, "compatible", 1), "sifive,test0");
    CHECK_STR(strlist(test, "compatible", 2), "syscon");
    check_reg64(test, 0x100000, 0x1000);

    CHECK_STR(prop_str("/poweroff", "compatible"), "syscon-poweroff");
    check_ref("/poweroff", "regmap", 1, 0, test);
    CHECK_EQ(cell("/poweroff", "offset", 1, 0), 0);
    CHECK_EQ(cell("/poweroff", "value", 1, 0), 0x5555);
    CHECK_STR(prop_str("/reboot", "compatible"), "syscon-reboot");
    check_ref("/reboot", "regmap", 1, 0, test);
    CHECK_EQ(cell("/reboot", "offset", 1, 0), 0);
    CHECK_EQ(cell("/reboot", "value", 1, 0), 0x7777);

    /* Devices we do not have must not be advertised. */
    CHECK(fdt_path_offset(blob, "/soc/pci@30000000") < 0);
    CHECK(fdt_path_offset(blob, "/fw-cfg@10100000") < 0);
    CHECK(fdt_path_offset(blob, "/flash@20000000") < 0);
    CHECK(fdt_path_offset(blob, "/pmu") < 0);
}

static void check_virtio(unsigned n)
{
    /* QEMU virt's 8 slots on PLIC sources 1-8, then ours from 12 (10 is the UART, 11 the RTC) */
    static const unsigned irq[FDT_MAX_VIRTIO] = {1,  2,  3,  4,  5,  6,  7,  8,
                                                 12, 13, 14, 15, 16, 17, 18, 19};
    char path[64];
    for (unsigned i = 0; i < FDT_MAX_VIRTIO + 1; i++) {
        uint64_t base = 0x10001000ull + 0x1000ull * i;
        snprintf(path, sizeof(path), "/soc/virtio_mmio@%llx", (unsigned long long)base);
        if (i >= n) {
            CHECK(fdt_path_offset(blob, path) < 0);
            continue;
        }
        CHECK_STR(prop_str(path, "compatible"), "virtio,mmio");
        check_reg64(path, base, 0x1000);
        CHECK_EQ(cell(path, "interrupts", 1, 0), irq[i]);
        check_ref(path, "interrupt-parent", 1, 0, "/soc/plic@c000000");
    }
}

TEST(fdt_virtio_nodes)
{
    for (unsigned n = 0; n <= FDT_MAX_VIRTIO; n++) {
        struct fdt_params p = default_params(1);
        p.n_virtio = n;
        CHECK(build(&p) > 0);
        check_virtio(n);
    }
}

/* Every phandle is unique, and the same parameters give the same bytes. */
TEST(fdt_phandles_unique_and_deterministic)
{
    struct fdt_params p = default_params(4);
    int n = build(&p);
    CHECK(n > 0);
    uint32_t seen[64];
    int nseen = 0;
    for (int off = fdt_next_node(blob, -1, NULL); off >= 0; off = fdt_next_node(blob, off, NULL)) {
        uint32_t ph = fdt_get_phandle(blob, off);
        if (!ph) continue;
        for (int i = 0; i < nseen; i++)
            CHECK(seen[i] != ph);
        if (nseen < 64) seen[nseen++] = ph;
    }
    CHECK_EQ(nseen, 2 + 2 * 4); /* plic, test, cpu + intc per hart */

    uint8_t *copy = malloc((size_t)n);
    memcpy(copy, blob, (size_t)n);
    CHECK_EQ(build(&p), n);
    CHECK(memcmp(copy, blob, (size_t)n) == 0);
    free(copy);
}

TEST(fdt_enospc_every_short_size)
{
    struct fdt_params p = default_params(2);
    int n = build(&p);
    CHECK(n > 0);
    static uint8_t small[16384];
    CHECK((size_t)n <= sizeof(small));
    for (int sz = 0; sz < n; sz++) {
        int r = fdt_build(&p, small, (size_t)sz);
        if (r != -ENOSPC) {
            fprintf(stderr, "  bufsize %d -> %d, want -ENOSPC\n", sz, r);
            test_failures_in_current++;
            break;
        }
    }
    CHECK_EQ(fdt_build(&p, small, (size_t)n), n);
    CHECK(memcmp(small, blob, (size_t)n) == 0);
}

TEST(fdt_rejects_bad_params)
{
    struct fdt_params p;
    CHECK_EQ(fdt_build(NULL, blob, sizeof(blob)), -EINVAL);
    p = default_params(1);
    CHECK_EQ(fdt_build(&p, NULL, sizeof(blob)), -EINVAL);
    p = default_params(0);
    CHECK_EQ(fdt_build(&p, blob, sizeof(blob)), -EINVAL);
    p = default_params(65);
    CHECK_EQ(fdt_build(&p, blob, sizeof(blob)), -EINVAL);
    p = default_params(1);
    p.n_virtio = FDT_MAX_VIRTIO + 1;
    CHECK_EQ(fdt_build(&p, blob, sizeof(blob)), -EINVAL);
    p = default_params(1);
    p.isa = NULL;
    CHECK_EQ(fdt_build(&p, blob, sizeof(blob)), -EINVAL);
    p = default_params(1);
    p.mmu_type = NULL;
    CHECK_EQ(fdt_build(&p, blob, sizeof(blob)), -EINVAL);
    p = default_params(1);
    p.ram_size = 0;
    CHECK_EQ(fdt_build(&p, blob, sizeof(blob)), -EINVAL);
    p = default_params(1);
    p.initrd_end = p.initrd_start - 1;
    CHECK_EQ(fdt_build(&p, blob, sizeof(blob)), -EINVAL);
    p.has_initrd = false; /* the addresses do not matter without an initrd */
    CHECK(fdt_build(&p, blob, sizeof(blob)) > 0);
}

/* --ssh-key: /chosen/vessel,ssh-authorized-keys only when given; the largest allowed set of
 * keys still leaves OpenSBI room in machine.c's 64 KiB device tree buffer. */
TEST(fdt_chosen_ssh_keys)
{
    struct fdt_params p = default_params(4);
    CHECK(build(&p) > 0);
    CHECK(!has_prop("/chosen", "vessel,ssh-authorized-keys"));
    p.ssh_keys = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA a@b\necdsa-sha2-nistp256 AAAAE2Vj c\n";
    CHECK(build(&p) > 0);
    CHECK_STR(prop_str("/chosen", "vessel,ssh-authorized-keys"), p.ssh_keys);
    static char big[FDT_SSH_KEYS_MAX + 1];
    memset(big, 'a', FDT_SSH_KEYS_MAX);
    big[FDT_SSH_KEYS_MAX - 1] = 0;
    p.ssh_keys = big;
    int n = build(&p);
    CHECK(n > 0 && n + 16 * 1024 < 0x10000);
    big[FDT_SSH_KEYS_MAX - 1] = 'a';
    CHECK_EQ(fdt_build(&p, blob, sizeof(blob)), -EINVAL);
}

/* Legacy-only ISA description: no isa-base / isa-extensions when isa_ext is NULL. */
TEST(fdt_isa_ext_optional)
{
    struct fdt_params p = default_params(1);
    p.isa_ext = NULL;
    CHECK(build(&p) > 0);
    CHECK(has_prop("/cpus/cpu@0", "riscv,isa"));
    CHECK(!has_prop("/cpus/cpu@0", "riscv,isa-base"));
    CHECK(!has_prop("/cpus/cpu@0", "riscv,isa-extensions"));
}

/* dtc decompiles the blob without complaint (its checks cover unit addresses, reg formats,
 * interrupt properties and phandle references). Skipped when dtc is absent. */
TEST(fdt_dtc_accepts_blob)
{
    if (access("/usr/bin/dtc", X_OK) != 0) return;
    struct fdt_params p = default_params(4);
    int n = build(&p);
    CHECK(n > 0);
    char dir[] = "/tmp/vessel-test-fdt-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp");
        return;
    }
    char dtb[64], out[64], cmd[256];
    snprintf(dtb, sizeof(dtb), "%s/t.dtb", dir);
    snprintf(out, sizeof(out), "%s/err", dir);
    FILE *f = fopen(dtb, "wb");
    CHECK(f && fwrite(blob, 1, (size_t)n, f) == (size_t)n);
    if (f) fclose(f);
    snprintf(cmd, sizeof(cmd), "dtc -q -I dtb -O dts -o /dev/null %s 2>%s; test $? -eq 0", dtb,
             out);
    CHECK_EQ(system(cmd), 0);
    /* -q suppresses warnings; run again and require no warning at all. */
    snprintf(cmd, sizeof(cmd), "dtc -I dtb -O dts -o /dev/null %s 2>%s", dtb, out);
    CHECK_EQ(system(cmd), 0);
    f = fopen(out, "r");
    char line[256] = "";
    if (f) {
        if (fgets(line, sizeof(line), f)) {
            fprintf(stderr, "  dtc: %s", line);
            test_failures_in_current++;
        }
        fclose(f);
    }
    unlink(dtb);
    unlink(out);
    rmdir(dir);
}

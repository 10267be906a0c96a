/* Board assembly: RAM, devices on the bus, interrupt wiring, image placement as QEMU's virt
 * machine does it (NOTES-boot.md §1), one host thread per hart. */
#include "machine/machine.h"
#include "cpu/riscv/jit/cache.h"
#include "cpu/riscv/jit/fastmem.h"
#include "dev/goldfish_rtc.h"
#include "dev/uart.h"
#include "dev/vmgenid.h"
#include "dev/virtio/blk.h"
#include "dev/virtio/input.h"
#include "dev/virtio/net.h"
#include "dev/virtio/vsock.h"
#include "dev/virtio/rng.h"
#include "irq/plic.h"
#include "machine/fdt.h"
#include "machine/loader.h"
#include "machine/snapshot.h"
#include "util/log.h"
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#define FDT_BUF_SIZE     0x10000ull /* blob plus room for OpenSBI to grow it in place */
#define FW_DYN_INFO_SIZE 48
#define ALIGN_UP(v, a)   (((v) + (a)-1) & ~((uint64_t)(a)-1))
#define ALIGN_DOWN(v, a) ((v) & ~((uint64_t)(a)-1))
#define MIB              (1ull << 20)

_Static_assert(MACHINE_MAX_DISKS + 4 <= VIRTIO_SLOTS && VIRTIO_SLOTS <= FDT_MAX_VIRTIO,
               "disks, entropy, input, network and vsock must fit in the virtio-mmio slots of the "
               "device tree");

/* Advertise exactly what the engine implements (NOTES-boot.md §2). */
static const char ISA_STRING[] = "rv64imafdc_zicntr_zicsr_zifencei_zihintpause_zba_zbb_zbs_sstc";
static const char *const ISA_EXTENSIONS[] = {"i",   "m",      "a",     "f",        "d",
                                             "c",   "zicntr", "zicsr", "zifencei", "zihintpause",
                                             "zba", "zbb",    "zbs",   "sstc",     NULL};

static void errf(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

/* ---- interrupt wiring ---- */

static void plic_ctx_irq(void *ctx, unsigned n, bool level)
{
    struct machine *m = ctx;
    if (n / 2 < m->nharts) hart_set_irq(&m->harts[n / 2], (n & 1) ? IRQ_SEI : IRQ_MEI, level);
}

static void msip_irq(void *ctx, unsigned n, bool level)
{
    struct machine *m = ctx;
    if (n < m->nharts) hart_set_irq(&m->harts[n], IRQ_MSI, level);
}

static void timer_changed(void *ctx, unsigned hart)
{
    struct machine *m = ctx;
    if (hart < m->nharts) hart_kick(&m->harts[hart]);
}

static void syscon_action(void *ctx, enum syscon_action what, int code)
{
    struct machine *m = ctx;
    switch (what) {
    case SYSCON_POWEROFF: machine_post_event(m, MEV_POWEROFF, 0, NULL); break;
    case SYSCON_REBOOT: {
        /* Ctrl-Alt-Del makes systemd reboot: after a power-down request that means stop. */
        pthread_mutex_lock(&m->ev_lock);
        bool stop = m->powerdown_requested;
        pthread_mutex_unlock(&m->ev_lock);
        machine_post_event(m, stop ? MEV_POWEROFF : MEV_REBOOT, 0, NULL);
        break;
    }
    case SYSCON_FAIL: machine_post_event(m, MEV_GUEST_FAIL, code, NULL); break;
    }
}

void machine_post_event(struct machine *m, enum machine_event ev, int code, const char *msg)
{
    pthread_mutex_lock(&m->ev_lock);
    if (m->ev == MEV_NONE) {
        m->ev = ev;
        m->fail_code = code;
        if (msg) snprintf(m->msg, sizeof(m->msg), "%s", msg);
    }
    pthread_cond_broadcast(&m->ev_cond);
    pthread_mutex_unlock(&m->ev_lock);
    for (unsigned i = 0; i < m->nharts; i++)
        hart_request_stop(&m->harts[i]);
}

/* ---- image loading ---- */

static int read_image(struct machine *m, unsigned which, const char *path, const char *what,
                      size_t max, uint8_t **data, size_t *len, char *lerr)
{
    const struct loader_file *f = m->cfg.images[which];
    if (f) return loader_file_read(f, path, what, max, data, len, lerr);
    return loader_read_file(path, what, max, data, len, lerr);
}

static int load_raw(struct machine *m, const char *path, const char *what, uint64_t addr,
                    uint64_t limit, uint64_t *size_out, char *err, size_t errlen)
{
    uint8_t *data;
    size_t len;
    char lerr[LOADER_ERR_LEN];
    int r =
        read_image(m, MACHINE_IMG_FIRMWARE, path, what, (size_t)(limit - addr), &data, &len, lerr);
    if (r < 0) {
        errf(err, errlen, "%s", lerr);
        return r;
    }
    memcpy(m->ram + (addr - RAM_BASE), data, len);
    free(data);
    *size_out = len;
    return 0;
}

/* --mmu, else Sv39 (most RISC-V boards; the JIT's fast memory needs it) unless guest RAM is
 * more than Linux maps under Sv39 (its direct map is 124 GiB): then Sv48. */
static unsigned mmu_mode(const struct machine_config *c)
{
    if (c->mmu_mode) return c->mmu_mode;
    return c->ram_size > (64ull << 30) ? MMU_SV48 : MMU_SV39;
}

static int load_images(struct machine *m, char *err, size_t errlen)
{
    const struct machine_config *c = &m->cfg;
    uint64_t ram_end = RAM_BASE + c->ram_size;
    uint64_t fdt_addr = ALIGN_DOWN(ram_end - FDT_BUF_SIZE, 2 * MIB);
    if (fdt_addr < RAM_BASE + 4 * MIB) fdt_addr = ALIGN_DOWN(ram_end - FDT_BUF_SIZE, 4096);
    uint64_t info_addr = fdt_addr - 64;
    uint64_t free_end = info_addr; /* everything below is free for images */
    uint64_t fw_end = RAM_BASE, fw_size = 0;
    int r;

    if (c->firmware) {
        r = load_raw(m, c->firmware, "firmware", RAM_BASE, free_end, &fw_size, err, errlen);
        if (r < 0) return r;
        fw_end = RAM_BASE + fw_size;
    }

    uint64_t kernel_addr = 0, kernel_end = 0;
    if (c->kernel) {
        uint8_t *data;
        size_t len;
        char lerr[LOADER_ERR_LEN];
        r = read_image(m, MACHINE_IMG_KERNEL, c->kernel, "kernel", (size_t)c->ram_size, &data, &len,
                       lerr);
        if (r < 0) {
            errf(err, errlen, "%s", lerr);
            return r;
        }
        struct kernel_info ki;
        r = loader_parse_kernel(data, len, c->kernel, &ki, lerr);
        if (r < 0) {
            free(data);
            errf(err, errlen, "%s", lerr);
            return r;
        }
        kernel_addr = c->firmware ? ALIGN_UP(fw_end, 2 * MIB) : RAM_BASE;
        if (kernel_addr == RAM_BASE && c->firmware) kernel_addr += 2 * MIB;
        kernel_end = kernel_addr + ALIGN_UP(ki.image_size > len ? ki.image_size : len, 4096);
        if (kernel_end > free_end) {
            free(data);
            errf(err, errlen,
                 "kernel %s needs %llu MiB of RAM at 0x%llx; --memory %llu MiB is too small",
                 c->kernel, (unsigned long long)((kernel_end - RAM_BASE + MIB - 1) / MIB),
                 (unsigned long long)kernel_addr, (unsigned long long)(c->ram_size / MIB));
            return -E2BIG;
        }
        memcpy(m->ram + (kernel_addr - RAM_BASE), data, len);
        free(data);
    }

    unsigned mmu = mmu_mode(c);
    struct fdt_params p = {
        .nharts = c->cpus,
        .ram_base = RAM_BASE,
        .ram_size = c->ram_size,
        .bootargs = c->cmdline,
        .ssh_keys = c->ssh_keys,
        .isa = ISA_STRING,
        .isa_ext = ISA_EXTENSIONS,
        .mmu_type = mmu == MMU_SV57   ? "riscv,sv57"
                    : mmu == MMU_SV48 ? "riscv,sv48"
                                      : "riscv,sv39",
        /* disks, then the entropy and input devices, then the network and vsock devices */
        .n_virtio = c->ndisks + 2 + (c->net ? 1 : 0) + (c->vsock ? 1 : 0),
    };
    if (getrandom(p.rng_seed, sizeof(p.rng_seed), 0) != (ssize_t)sizeof(p.rng_seed))
        memset(p.rng_seed, 0x5a, sizeof(p.rng_seed));

    if (c->initrd) {
        if (!c->kernel) {
            errf(err, errlen, "--initrd needs --kernel");
            return -EINVAL;
        }
        /* QEMU: initrd at kernel + min(RAM/2, 128 MiB), or right after the kernel if that
         * leaves no room. */
        uint64_t gap = c->ram_size / 2 < 128 * MIB ? c->ram_size / 2 : 128 * MIB;
        uint8_t *data;
        size_t len;
        char lerr[LOADER_ERR_LEN];
        uint64_t room = free_end > kernel_end ? free_end - kernel_end : 0;
        r = read_image(m, MACHINE_IMG_INITRD, c->initrd, "initrd", (size_t)c->ram_size, &data, &len,
                       lerr);
        if (r < 0) {
            errf(err, errlen, "%s", lerr);
            return r;
        }
        if (len > room) {
            free(data);
            errf(err, errlen,
                 "initrd %s (%.1f MiB) does not fit in guest memory (%.1f MiB free after the "
                 "kernel); raise --memory",
                 c->initrd, (double)len / MIB, (double)room / MIB);
            return -E2BIG;
        }
        uint64_t start = ALIGN_UP(kernel_addr + gap, 4096);
        if (start < kernel_end || start + len > free_end) start = ALIGN_UP(kernel_end, 4096);
        if (start + len > free_end) {
            free(data);
            errf(err, errlen, "initrd %s does not fit in guest memory; raise --memory", c->initrd);
            return -E2BIG;
        }
        memcpy(m->ram + (start - RAM_BASE), data, len);
        free(data);
        p.has_initrd = true;
        p.initrd_start = start;
        p.initrd_end = start + len;
    }

    r = fdt_build(&p, m->ram + (fdt_addr - RAM_BASE), FDT_BUF_SIZE);
    if (r < 0) {
        errf(err, errlen, "cannot build the device tree: %s", strerror(-r));
        return r;
    }
    m->fdt_addr = fdt_addr;
    m->entry_kernel = kernel_addr;

    /* fw_dynamic_info (OpenSBI include/sbi/fw_dynamic.h): magic, version 2, next_addr,
     * next_mode (1 = S), options, boot_hart (-1 = any). */
    uint64_t info[6] = {0x4942534f, 2, kernel_addr, 1, 0, ~0ull};
    memcpy(m->ram + (info_addr - RAM_BASE), info, sizeof(info));

    /* Reset state of every hart: firmware entry, a0 = hartid, a1 = fdt, a2 = info. */
    for (unsigned i = 0; i < m->nharts; i++) {
        struct hart *h = &m->harts[i];
        h->pc = c->firmware ? RAM_BASE : kernel_addr;
        h->x[10] = i;
        h->x[11] = fdt_addr;
        h->x[12] = info_addr;
    }
    return 0;
}

uint64_t machine_code_per_hart(const struct machine_config *cfg)
{
    if (cfg->engine != ENGINE_JIT) return 0;
    return cfg->jit_cache_size ? cfg->jit_cache_size : JIT_CACHE_DEFAULT;
}

int machine_create(struct machine **out, const struct machine_config *cfg, struct chr *console,
                   char *err, size_t errlen)
{
    struct machine *m = calloc(1, sizeof(*m));
    if (!m) {
        errf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    m->cfg = *cfg;
    m->console = console;
    m->nharts = cfg->cpus;
    pthread_mutex_init(&m->ev_lock, NULL);
    pthread_cond_init(&m->ev_cond, NULL);
    bus_init(&m->bus);
    int r = -ENOMEM;

    /* Guest RAM: reserved lazily, pages cost host memory only when touched. Restored from a
     * snapshot: the memory file after its header, copy-on-write (machine/snapshot.h). */
    bool shared = cfg->ram_memfd && !cfg->restore;
    if (cfg->restore)
        m->ram = mmap(NULL, cfg->ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE,
                      cfg->restore_mem_fd, SNAP_MEM_HEADER);
    else if (shared)
        m->ram = mmap(NULL, cfg->ram_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
                      cfg->ram_fd, 0);
    else
        m->ram = mmap(NULL, cfg->ram_size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m->ram == MAP_FAILED) {
        m->ram = NULL;
        r = -errno;
        errf(err, errlen, "cannot reserve %llu MiB of guest memory: %s",
             (unsigned long long)(cfg->ram_size >> 20), strerror(errno));
        goto fail;
    }
    madvise(m->ram, cfg->ram_size, MADV_HUGEPAGE);

    m->harts = calloc(m->nharts, sizeof(*m->harts));
    m->threads = calloc(m->nharts, sizeof(*m->threads));
    if (!m->harts || !m->threads) {
        errf(err, errlen, "out of memory");
        goto fail;
    }

    struct irq_line msip[MACHINE_MAX_HARTS];
    for (unsigned i = 0; i < m->nharts; i++)
        msip[i] = (struct irq_line){msip_irq, m, i};
    aclint_init(&m->clint, m->nharts, msip, timer_changed, m);

    m->ram_shared = shared;
    struct hart_env env = {.ram = m->ram,
                           .ram_base = RAM_BASE,
                           .ram_size = cfg->ram_size,
                           .bus = &m->bus,
                           .clint = &m->clint,
                           .engine = cfg->engine,
                           .jit_cache_size = cfg->jit_cache_size,
                           .satp_max_mode = mmu_mode(cfg),
                           .fastmem = shared && cfg->engine == ENGINE_JIT && fastmem_wanted(),
                           .ram_fd = shared ? cfg->ram_fd : -1,
                           .fastmem_warmup = fastmem_warmup_wanted()};
    for (unsigned i = 0; i < m->nharts; i++) {
        if (hart_init(&m->harts[i], i, &env, RAM_BASE) < 0) {
            errf(err, errlen, "out of memory");
            goto fail;
        }
        m->harts[i].trace_traps = cfg->trace;
    }

    struct irq_line ctx[2 * MACHINE_MAX_HARTS];
    for (unsigned i = 0; i < 2 * m->nharts; i++)
        ctx[i] = (struct irq_line){plic_ctx_irq, m, i};
    m->plic = plic_create(m->nharts, ctx);
    m->uart = uart_create(console, (struct irq_line){plic_irq_line_set, m->plic, UART0_IRQ});
    m->rtc = goldfish_rtc_create((struct irq_line){plic_irq_line_set, m->plic, RTC_IRQ});
    m->genid = vmgenid_create((struct irq_line){plic_irq_line_set, m->plic, VMGENID_IRQ});
    if (!m->plic || !m->uart || !m->rtc || !m->genid) {
        errf(err, errlen, "out of memory creating devices");
        goto fail;
    }
    m->syscon = (struct syscon){syscon_action, m};

    if (bus_map(&m->bus, CLINT_BASE, ACLINT_MMIO_SIZE, &aclint_mmio_ops, &m->clint, BUS_LOCKLESS) ||
        bus_map(&m->bus, PLIC_BASE, PLIC_MMIO_SIZE, &plic_mmio_ops, m->plic, BUS_LOCKLESS) ||
        bus_map(&m->bus, UART0_BASE, UART_MMIO_SIZE, &uart_mmio_ops, m->uart, BUS_LOCKLESS) ||
        bus_map(&m->bus, SYSCON_BASE, SYSCON_MMIO_SIZE, &syscon_mmio_ops, &m->syscon, 0) ||
        bus_map(&m->bus, RTC_BASE, RTC_MMIO_SIZE, &goldfish_rtc_mmio_ops, m->rtc, BUS_LOCKLESS) ||
        bus_map(&m->bus, VMGENID_BASE, VMGENID_MMIO_SIZE, &vmgenid_mmio_ops, m->genid,
                BUS_LOCKLESS)) {
        errf(err, errlen, "internal error: overlapping device ranges");
        r = -EEXIST;
        goto fail;
    }

    /* virtio-mmio slots: disks in the order given (vda, vdb, ...), then virtio-rng, then
     * virtio-input, then virtio-net (when there is a network), then virtio-vsock (when
     * configured). */
    m->gm = (struct guest_mem){m->ram, RAM_BASE, cfg->ram_size};
    unsigned nslots = cfg->ndisks + 2 + (cfg->net ? 1u : 0u) + (cfg->vsock ? 1u : 0u);
    for (unsigned i = 0; i < nslots; i++) {
        struct irq_line irq = {plic_irq_line_set, m->plic, fdt_virtio_irq(i)};
        struct virtio_mmio *t;
        if (i < cfg->ndisks) {
            m->blk[i] = vblk_create(cfg->disks[i].backend, cfg->disks[i].serial, &m->gm, irq);
            t = m->blk[i] ? vblk_transport(m->blk[i]) : NULL;
        } else if (i == cfg->ndisks) {
            m->rng = vrng_create(&m->gm, irq);
            t = m->rng ? vrng_transport(m->rng) : NULL;
        } else if (i == cfg->ndisks + 1) {
            m->input = vinput_create(&m->gm, irq);
            t = m->input ? vinput_transport(m->input) : NULL;
        } else if (i == cfg->ndisks + 2 && cfg->net) {
            m->net = vnet_create(cfg->net, cfg->mac, &m->gm, irq);
            t = m->net ? vnet_transport(m->net) : NULL;
        } else {
            m->vsock = vsock_dev_create(cfg->vsock, cfg->vsock_cid, &m->gm, irq);
            t = m->vsock ? vsock_dev_transport(m->vsock) : NULL;
        }
        if (!t || bus_map(&m->bus, VIRTIO_BASE + 0x1000ull * i, VIRTIO_MMIO_SIZE, &virtio_mmio_ops,
                          t, BUS_LOCKLESS)) {
            errf(err, errlen, "cannot create virtio device %u", i);
            r = -ENOMEM;
            goto fail;
        }
    }

    if (!cfg->restore) {
        r = load_images(m, err, errlen);
        if (r < 0) goto fail;
    }
    *out = m;
    return 0;
fail:
    machine_destroy(m);
    return r;
}

static void *hart_thread(void *arg)
{
    struct hart *h = arg;
    struct machine *m = h->user;
    if (m->cfg.hart_thread_init && m->cfg.hart_thread_init() < 0) {
        machine_post_event(m, MEV_HOST_ERROR, 0, "cannot set up a hart thread (sandbox)");
        return NULL;
    }
    enum hart_exit e = hart_run(h);
    if (e == HART_EXIT_FATAL) machine_post_event(m, MEV_FATAL, 0, h->fatal_msg);
    return NULL;
}

enum machine_event machine_run(struct machine *m)
{
    for (unsigned i = 0; i < m->nharts; i++) {
        m->harts[i].user = m;
        if (pthread_create(&m->threads[i], NULL, hart_thread, &m->harts[i]) != 0) {
            machine_post_event(m, MEV_HOST_ERROR, 0, "cannot create a hart thread");
            for (unsigned j = 0; j < i; j++)
                pthread_join(m->threads[j], NULL);
            return MEV_HOST_ERROR;
        }
    }
    m->threads_started = true;
    pthread_mutex_lock(&m->ev_lock);
    while (m->ev == MEV_NONE)
        pthread_cond_wait(&m->ev_cond, &m->ev_lock);
    enum machine_event ev = m->ev;
    pthread_mutex_unlock(&m->ev_lock);
    for (unsigned i = 0; i < m->nharts; i++)
        hart_request_stop(&m->harts[i]);
    for (unsigned i = 0; i < m->nharts; i++)
        pthread_join(m->threads[i], NULL);
    m->threads_started = false;
    return ev;
}

void machine_request_powerdown(struct machine *m)
{
    static const uint16_t power[] = {VINPUT_KEY_POWER};
    static const uint16_t cad[] = {VINPUT_KEY_LEFTCTRL, VINPUT_KEY_LEFTALT, VINPUT_KEY_DELETE};
    pthread_mutex_lock(&m->ev_lock);
    m->powerdown_requested = true;
    pthread_mutex_unlock(&m->ev_lock);
    int r1 = vinput_press_keys(m->input, power, 1);
    int r2 = vinput_press_keys(m->input, cad, 3);
    if (r1 < 0 || r2 < 0)
        log_warn("power-down request: key events dropped (%d pending already)", VINPUT_PENDING_MAX);
    else if (r1 > 0 || r2 > 0)
        log_info("power-down request: the guest's input driver is not ready; keys kept for it");
}

void machine_destroy(struct machine *m)
{
    if (!m) return;
    if (m->console) chr_set_receiver(m->console, NULL, NULL);
    if (m->harts)
        for (unsigned i = 0; i < m->nharts; i++)
            if (m->harts[i].env.ram) hart_destroy(&m->harts[i]);
    free(m->harts);
    free(m->threads);
    /* vblk_destroy waits a bounded time: requests a hung backend never completes are
     * abandoned, and the backend may still write their data into guest RAM later. */
    bool ram_in_use = false;
    for (unsigned i = 0; i < MACHINE_MAX_DISKS; i++)
        if (!vblk_destroy(m->blk[i])) ram_in_use = true;
    vrng_destroy(m->rng);
    vinput_destroy(m->input);
    vnet_destroy(m->net); /* detaches from the backend: no frame reaches this machine after */
    vsock_dev_destroy(m->vsock); /* detaches, closing the guest's connections */
    goldfish_rtc_destroy(m->rtc);
    vmgenid_destroy(m->genid);
    uart_destroy(m->uart);
    if (m->plic) plic_destroy(m->plic);
    if (m->ram && ram_in_use) {
        /* Swap in fresh zero pages at the same address instead of unmapping: the guest's
         * memory is released, and a late write lands in memory nobody reads (the range stays
         * reserved until the process exits). */
        if (mmap(m->ram, m->cfg.ram_size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) == MAP_FAILED)
            log_warn("guest RAM kept mapped: %s", strerror(errno));
    } else if (m->ram) {
        munmap(m->ram, m->cfg.ram_size);
    }
    /* The memfd serves the next machine after a reboot (no memfd_create in the sandbox):
     * zeroed, its pages given back. A late write above went to the fresh private pages. */
    if (m->ram && m->ram_shared &&
        fallocate(m->cfg.ram_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
                  (off_t)m->cfg.ram_size) < 0)
        log_warn("guest RAM not released: %s", strerror(errno));
    bus_destroy(&m->bus);
    pthread_mutex_destroy(&m->ev_lock);
    pthread_cond_destroy(&m->ev_cond);
    free(m);
}

// clang-format off
// SOURCES: src/vm/gdbstub.c src/machine/machine.c src/machine/bus.c src/machine/fdt.c
// SOURCES: src/machine/loader.c src/cpu/riscv/hart.c src/cpu/riscv/exec.c src/cpu/riscv/decode.c
// SOURCES: src/cpu/riscv/csr.c src/cpu/riscv/mmu.c src/cpu/riscv/fpu.c src/irq/plic.c
// SOURCES: src/irq/aclint.c src/dev/uart.c src/dev/syscon.c src/dev/goldfish_rtc.c src/dev/vmgenid.c
// SOURCES: src/util/log.c src/util/size.c src/dev/virtio/mmio.c src/dev/virtio/virtqueue.c
// SOURCES: src/dev/virtio/blk.c src/dev/virtio/rng.c src/backend/block/raw.c
// SOURCES: src/backend/block/io_engine.c src/util/ratelimit.c src/cpu/riscv/trigger.c
// SOURCES: src/dev/virtio/input.c src/cpu/riscv/jit/jit.c src/cpu/riscv/jit/cache.c src/dev/virtio/net.c
// SOURCES: src/cpu/riscv/jit/fastmem.c
// SOURCES: src/dev/virtio/vsock.c
// SOURCES: src/backend/block/block.c src/backend/block/qcow2.c src/backend/block/qcow2_blk.c
// SOURCES: src/backend/block/fileops.c
// LIBS: -lfdt -luring -lz -lzstd
// clang-format on
/* The GDB remote protocol parser on arbitrary client bytes (a debugger connection is user
 * input): packets, checksums, register/memory/breakpoint requests against a real machine whose
 * harts are parked. Must never crash or write outside guest RAM. */
#include "vm/gdbstub.h"
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

static void null_write(struct chr *c, const uint8_t *b, size_t n)
{
    (void)c, (void)b, (void)n;
}
static void null_destroy(struct chr *c)
{
    (void)c;
}
static const struct chr_ops null_ops = {.write = null_write, .destroy = null_destroy};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    static struct machine *m;
    static struct chr console = {.ops = &null_ops};
    static int devnull = -1;
    if (!m) {
        struct machine_config cfg = {.cpus = 2, .ram_size = 64ull << 20};
        char err[256];
        if (machine_create(&m, &cfg, &console, err, sizeof(err)) < 0) abort();
        devnull = open("/dev/null", O_WRONLY);
    }
    for (unsigned i = 0; i < m->nharts; i++)
        m->harts[i].parked = true; /* no hart threads: everything counts as parked */
    int fd = dup(devnull);
    struct gdbstub *g = gdbstub_create_detached(fd);
    if (!g) return 0;
    gdbstub_attach(g, m, true);
    gdbstub_feed(g, data, len);
    gdbstub_detach(g);
    for (unsigned i = 0; i < m->nharts; i++) {
        m->harts[i].debug = NULL;
        m->harts[i].pause_req = 0;
    }
    gdbstub_destroy(g); /* closes fd */
    return 0;
}

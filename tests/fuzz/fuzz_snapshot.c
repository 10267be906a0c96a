// clang-format off
// SOURCES: src/machine/snapshot.c src/machine/machine.c src/machine/bus.c src/machine/fdt.c
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
// SOURCES: src/backend/block/fileops.c src/cpu/riscv/hart_state.c src/util/err.c
// LIBS: -lfdt -luring -lz -lzstd
// clang-format on
/* A snapshot's state file is untrusted input: the fuzzer's bytes become the body of a state
 * record (this harness adds the header and a correct CRC, so the input reaches the section and
 * field parser and every component's checks), then sr_open and machine_snapshot_load on a real
 * machine. Must never crash, hang or touch memory outside the machine.
 * FUZZ_SNAPSHOT_SEED=FILE writes the body of a real machine's snapshot there (the seed). */
#include "machine/snapshot.h"
#include "util/staterec.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static void null_write(struct chr *c, const uint8_t *b, size_t n)
{
    (void)c, (void)b, (void)n;
}
static void null_destroy(struct chr *c)
{
    (void)c;
}
static const struct chr_ops null_ops = {.write = null_write, .destroy = null_destroy};

static struct machine *machine(void)
{
    static struct machine *m;
    static struct chr console = {.ops = &null_ops};
    if (!m) {
        struct machine_config cfg = {.cpus = 2, .ram_size = 64ull << 20};
        char err[256];
        if (machine_create(&m, &cfg, &console, err, sizeof(err)) < 0) abort();
        for (unsigned i = 0; i < m->nharts; i++)
            m->harts[i].parked = true;
        const char *seed = getenv("FUZZ_SNAPSHOT_SEED");
        if (seed) {
            char sp[] = "/tmp/fuzz-snap-XXXXXX", mp[] = "/tmp/fuzz-mem-XXXXXX";
            int s = mkstemp(sp), mm = mkstemp(mp);
            if (machine_snapshot_save(m, s, mm, NULL, NULL, err, sizeof(err)) < 0) abort();
            uint8_t *b;
            size_t l;
            if (snapshot_read_state(s, &b, &l, err, sizeof(err)) < 0) abort();
            FILE *f = fopen(seed, "wb");
            fwrite(b + 24, 1, l - 28, f); /* the body: no header, no CRC */
            fclose(f);
            free(b);
            unlink(sp);
            unlink(mp);
            close(s);
            close(mm);
        }
    }
    return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    struct machine *m = machine();
    if (len > (1u << 20)) return 0;
    uint8_t *rec = malloc(len + 28);
    memcpy(rec, STATEREC_MAGIC, 8);
    uint32_t ver = STATEREC_VERSION, flags = 0;
    uint64_t body = len;
    memcpy(rec + 8, &ver, 4);
    memcpy(rec + 12, &flags, 4);
    memcpy(rec + 16, &body, 8);
    memcpy(rec + 24, data, len);
    uint32_t crc = (uint32_t)crc32(0L, rec, (uInt)(len + 24));
    memcpy(rec + 24 + len, &crc, 4);
    char err[300];
    int r = machine_snapshot_load(m, rec, len + 28, err, sizeof(err));
    if (r != 0 && r != -EINVAL) abort();
    if (r != 0 && !err[0]) abort(); /* a refusal always says why */
    free(rec);
    return 0;
}

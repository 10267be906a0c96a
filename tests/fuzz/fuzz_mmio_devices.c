// SOURCES: src/irq/plic.c src/irq/aclint.c src/dev/uart.c src/dev/syscon.c
// SOURCES: src/dev/goldfish_rtc.c src/util/log.c
/* libFuzzer harness: random register reads and writes (and input lines / console bytes) into
 * the board's small devices, wired as on the virt board (UART -> PLIC 10, RTC -> PLIC 11).
 * Besides the sanitizers it checks invariants that must hold whatever the guest does.
 *
 * Build and run with tests/fuzz/build.sh 60 fuzz_mmio_devices, or by hand (repository root):
 *   mkdir -p build && clang -g -O1 -std=gnu11 -D_GNU_SOURCE -Isrc \
 *     -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *     tests/fuzz/fuzz_mmio_devices.c src/irq/plic.c src/irq/aclint.c src/dev/uart.c \
 *     src/dev/syscon.c src/dev/goldfish_rtc.c src/util/log.c \
 *     -o build/fuzz_mmio_devices -lpthread
 *   ./build/fuzz_mmio_devices -max_total_time=60
 *
 * Input: a sequence of records. Byte 0 selects the target and operation, then the offset
 * bytes, then (for writes) 8 value bytes; a truncated record ends the input. */
#include "dev/goldfish_rtc.h"
#include "dev/syscon.h"
#include "dev/uart.h"
#include "irq/aclint.h"
#include "irq/plic.h"
#include "util/log.h"
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define NHARTS 2

struct cursor {
    const uint8_t *p;
    size_t n;
};

static bool take(struct cursor *c, void *out, size_t len)
{
    if (c->n < len) return false;
    memcpy(out, c->p, len);
    c->p += len;
    c->n -= len;
    return true;
}

static atomic_int hart_line[2 * NHARTS];
static void ctx_line(void *ctx, unsigned n, bool level)
{
    (void)ctx;
    atomic_store(&hart_line[n], level);
}
static atomic_int msip_line[NHARTS];
static void msip_set(void *ctx, unsigned n, bool level)
{
    (void)ctx;
    atomic_store(&msip_line[n], level);
}
static void timer_changed(void *ctx, unsigned hart)
{
    (void)ctx;
    if (hart >= NHARTS) __builtin_trap();
}
static void syscon_action(void *ctx, enum syscon_action what, int code)
{
    (void)ctx;
    if (what > SYSCON_FAIL || code < 0 || code > 0xffff) __builtin_trap();
}

static void null_write(struct chr *c, const uint8_t *b, size_t l)
{
    (void)c, (void)b, (void)l;
}
static void null_rx_ready(struct chr *c)
{
    (void)c;
}
static void null_destroy(struct chr *c)
{
    (void)c;
}
static const struct chr_ops null_chr_ops = {
    .write = null_write, .rx_ready = null_rx_ready, .destroy = null_destroy};

static const unsigned sizes[4] = {1, 2, 4, 8};

/* Offsets biased towards the interesting parts of each register map. */
static uint64_t plic_offset(uint8_t sel, uint32_t raw)
{
    switch (sel & 7) {
    case 0: return (raw % 0x1000) & ~3u;                                         /* priorities */
    case 1: return 0x1000 + (raw % 0x80);                                        /* pending */
    case 2: return 0x2000 + (raw % (2 * NHARTS + 1)) * 0x80 + (raw >> 8) % 0x80; /* enables */
    case 3: return 0x200000 + (raw % (2 * NHARTS + 1)) * 0x1000 + ((raw >> 8) % 3) * 4;
    default: return raw % PLIC_MMIO_SIZE;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    log_current_level = LOG_ERROR;
    struct cursor c = {data, size};
    for (unsigned i = 0; i < 2 * NHARTS; i++)
        atomic_store(&hart_line[i], 0);
    for (unsigned i = 0; i < NHARTS; i++)
        atomic_store(&msip_line[i], 0);

    struct irq_line ctx_out[2 * NHARTS], msip_out[NHARTS];
    for (unsigned i = 0; i < 2 * NHARTS; i++)
        ctx_out[i] = (struct irq_line){ctx_line, NULL, i};
    for (unsigned i = 0; i < NHARTS; i++)
        msip_out[i] = (struct irq_line){msip_set, NULL, i};

    struct plic *plic = plic_create(NHARTS, ctx_out);
    struct chr chr = {.ops = &null_chr_ops};
    struct uart *uart = uart_create(&chr, (struct irq_line){plic_irq_line_set, plic, 10});
    struct goldfish_rtc *rtc = goldfish_rtc_create((struct irq_line){plic_irq_line_set, plic, 11});
    struct aclint aclint;
    aclint_init(&aclint, NHARTS, msip_out, timer_changed, NULL);
    struct syscon syscon = {syscon_action, NULL};
    if (!plic || !uart || !rtc) __builtin_trap();

    uint8_t op;
    while (take(&c, &op, 1)) {
        unsigned target = op & 7, size = sizes[(op >> 3) & 3];
        bool write = op & 0x20;
        uint64_t val = 0;
        const struct mmio_ops *ops;
        void *dev;
        uint64_t off;
        if (target == 0 || target == 5) { /* PLIC, register map or a source line */
            uint8_t sel;
            uint32_t raw;
            if (!take(&c, &sel, 1) || !take(&c, &raw, 4)) break;
            if (target == 5) {
                plic_set_irq(plic, raw % 128, sel & 1);
                continue;
            }
            ops = &plic_mmio_ops, dev = plic, off = plic_offset(sel, raw);
        } else if (target == 6) { /* console input bytes */
            uint8_t len, buf[32];
            if (!take(&c, &len, 1)) break;
            len %= sizeof(buf);
            if (!take(&c, buf, len)) break;
            if (chr.rx) chr.rx(chr.rx_opaque, buf, len);
            continue;
        } else {
            uint16_t raw;
            if (!take(&c, &raw, 2)) break;
            switch (target) {
            case 1: ops = &uart_mmio_ops, dev = uart, off = raw % UART_MMIO_SIZE; break;
            case 2: ops = &aclint_mmio_ops, dev = &aclint, off = raw % ACLINT_MMIO_SIZE; break;
            case 3: ops = &goldfish_rtc_mmio_ops, dev = rtc, off = raw % 0x24; break;
            case 4: ops = &syscon_mmio_ops, dev = &syscon, off = raw % SYSCON_MMIO_SIZE; break;
            default: /* 7: ACLINT timer region, where the 64-bit registers are */
                ops = &aclint_mmio_ops, dev = &aclint, off = 0x4000 + raw % 0x8000;
                break;
            }
        }
        /* The bus contract: size-aligned, inside the range. */
        off &= ~(uint64_t)(size - 1);
        if (write) {
            if (!take(&c, &val, 8)) break;
            ops->write(dev, off, val, size);
        } else {
            uint64_t v = ops->read(dev, off, size);
            if (size < 8 && (v >> (size * 8))) __builtin_trap(); /* wider than the access */
            if (target == 1 && off == 5 && (v & 0x60) != 0x60)
                __builtin_trap(); /* LSR: transmitter always idle */
            if (target == 0 && off < 0x1000 && size == 4 && v > 7)
                __builtin_trap(); /* priority is 3 bits */
        }
        /* MSIP register and its wire always agree. */
        for (unsigned h = 0; h < NHARTS; h++)
            if ((uint32_t)atomic_load(&msip_line[h]) != atomic_load(&aclint.msip[h]))
                __builtin_trap();
    }

    goldfish_rtc_destroy(rtc);
    uart_destroy(uart);
    plic_destroy(plic);
    return 0;
}

// SOURCES: src/dev/virtio/input.c src/dev/virtio/mmio.c src/dev/virtio/virtqueue.c
// SOURCES: src/util/log.c src/util/ratelimit.c
/* libFuzzer harness for virtio-input behind the virtio-mmio transport. The fuzzer's bytes
 * become a 64 KiB guest RAM image (both queues' rings, indirect tables, buffers), the queue
 * sizes, ring addresses and features, and a script of driver and host actions: config-space
 * writes of any size at any offset, selections read back as Linux does, kicks of either queue
 * (or of queues that do not exist), key presses from the host side, pokes into guest RAM
 * between steps (a driver moving avail idx), and resets followed by a new setup.
 * Checks, besides no crash and no sanitizer report (RAM is a heap block):
 *  - a selection written byte by byte reads back, its size is at most 128 and the union past
 *    size reads 0 (5.8.5.1);
 *  - vinput_press_keys returns 0, 1 or -ENOSPC, never anything else for supported keys;
 *  - at the end a reset completes at once (nothing is ever in flight) and every event pressed
 *    is accounted for: delivered + dropped (refused, or pending at a reset) == pressed.
 *
 * Build and run with tests/fuzz/build.sh 60 fuzz_virtio_input.
 *
 * Input: HDR header bytes, NOPS * 4 script bytes, then the RAM image (zero-padded).
 *   [0] [1]   eventq / statusq size 1 << (b % 7)
 *   [2]       driver features: bit 0 EVENT_IDX, bit 1 INDIRECT_DESC (VERSION_1 always)
 *   [3..14]   le16 ring offsets per queue: desc * 16, avail * 2, used * 4, pulled inside RAM
 *   script    NOPS ops {op, a, b, c}; see run_op */
#include "dev/virtio/input.h"
#include "util/log.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RAM_BASE 0x80000000ull
#define RAM_SIZE 0x10000u
#define HDR      15
#define NOPS     32

enum {
    R_DEV_FEAT_SEL = 0x014,
    R_DRV_FEAT = 0x020,
    R_DRV_FEAT_SEL = 0x024,
    R_QUEUE_SEL = 0x030,
    R_QUEUE_NUM = 0x038,
    R_QUEUE_READY = 0x044,
    R_QUEUE_NOTIFY = 0x050,
    R_INT_ACK = 0x064,
    R_STATUS = 0x070,
    R_DESC_LO = 0x080,
    R_DESC_HI = 0x084,
    R_DRIVER_LO = 0x090,
    R_DRIVER_HI = 0x094,
    R_DEVICE_LO = 0x0a0,
    R_DEVICE_HI = 0x0a4,
    R_CONFIG = 0x100,
};

static uint8_t *ram;
static struct guest_mem gm;
static struct virtio_mmio *tr;
static uint64_t pressed; /* events offered to vinput_press_keys this run */
static bool debug;       /* VESSEL_FUZZ_DEBUG=1: print each run's counts */

static void fail(const char *why)
{
    fprintf(stderr, "fuzz_virtio_input: invariant broken: %s\n", why);
    __builtin_trap();
}

static void irq_set(void *ctx, unsigned n, bool level)
{
    (void)ctx, (void)n, (void)level;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    log_current_level = LOG_ERROR; /* malformed rings are logged as warnings */
    debug = getenv("VESSEL_FUZZ_DEBUG") != NULL;
    ram = aligned_alloc(4096, RAM_SIZE);
    if (!ram) exit(1);
    gm = (struct guest_mem){.ram = ram, .base = RAM_BASE, .size = RAM_SIZE};
    return 0;
}

static uint32_t rd(uint64_t off)
{
    return (uint32_t)virtio_mmio_ops.read(tr, off, 4);
}
static void wr(uint64_t off, uint32_t v)
{
    virtio_mmio_ops.write(tr, off, v, 4);
}

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* Linux's probe order (3.1.1): reset, ACK, DRIVER, features, FEATURES_OK, queues, DRIVER_OK. */
static void setup(const uint8_t *h)
{
    wr(R_STATUS, 0);
    wr(R_STATUS, 1);
    wr(R_STATUS, 3);
    wr(R_DRV_FEAT_SEL, 1);
    wr(R_DRV_FEAT, 1); /* VERSION_1 */
    wr(R_DRV_FEAT_SEL, 0);
    wr(R_DRV_FEAT,
       (h[2] & 1 ? 1u << VIRTIO_F_EVENT_IDX : 0) | (h[2] & 2 ? 1u << VIRTIO_F_INDIRECT_DESC : 0));
    wr(R_STATUS, 3 | VIRTIO_STATUS_FEATURES_OK);
    for (unsigned q = 0; q < 2; q++) {
        const uint8_t *o = h + 3 + 6 * q;
        uint64_t desc = RAM_BASE + (16u * le16(o)) % RAM_SIZE;
        uint64_t avail = RAM_BASE + (2u * le16(o + 2)) % RAM_SIZE;
        uint64_t used = RAM_BASE + (4u * le16(o + 4)) % RAM_SIZE;
        wr(R_QUEUE_SEL, q);
        wr(R_QUEUE_NUM, 1u << (h[q] % 7));
        wr(R_DESC_LO, (uint32_t)desc);
        wr(R_DESC_HI, (uint32_t)(desc >> 32));
        wr(R_DRIVER_LO, (uint32_t)avail);
        wr(R_DRIVER_HI, (uint32_t)(avail >> 32));
        wr(R_DEVICE_LO, (uint32_t)used);
        wr(R_DEVICE_HI, (uint32_t)(used >> 32));
        wr(R_QUEUE_READY, 1);
    }
    wr(R_STATUS, rd(R_STATUS) | VIRTIO_STATUS_DRIVER_OK);
}

static void check_selection(uint8_t sel, uint8_t subsel)
{
    virtio_mmio_ops.write(tr, R_CONFIG, sel, 1);
    virtio_mmio_ops.write(tr, R_CONFIG + 1, subsel, 1);
    if (virtio_mmio_ops.read(tr, R_CONFIG, 1) != sel) fail("select does not read back");
    if (virtio_mmio_ops.read(tr, R_CONFIG + 1, 1) != subsel) fail("subsel does not read back");
    unsigned size = (unsigned)virtio_mmio_ops.read(tr, R_CONFIG + 2, 1);
    if (size > 128) fail("size > 128");
    for (unsigned i = size; i < 128; i++)
        if (virtio_mmio_ops.read(tr, R_CONFIG + 8 + i, 1) != 0) fail("union past size not 0");
}

static void press(struct vinput *d, const uint16_t *keys, unsigned n)
{
    int r = vinput_press_keys(d, keys, n);
    if (r != 0 && r != 1 && r != -ENOSPC) fail("unexpected vinput_press_keys result");
    pressed += 4u * n;
}

static void run_op(struct vinput *d, const uint8_t *hdr, const uint8_t *op)
{
    static const uint16_t power[] = {VINPUT_KEY_POWER};
    static const uint16_t cad[] = {VINPUT_KEY_LEFTCTRL, VINPUT_KEY_LEFTALT, VINPUT_KEY_DELETE};
    static const unsigned sizes[4] = {1, 2, 4, 8};
    uint8_t a = op[1], b = op[2], c = op[3];
    switch (op[0] % 10) {
    case 0: /* config write of any size, anywhere (the transport bounds it) */
        virtio_mmio_ops.write(tr, R_CONFIG + a, (uint64_t)b | (uint64_t)c << 8 | 0xa5a50000ull,
                              sizes[c % 4]);
        break;
    case 1: /* config read of any size */
        (void)virtio_mmio_ops.read(tr, R_CONFIG + a, sizes[b % 4]);
        break;
    case 2: check_selection(a, b); break;
    case 3: wr(R_QUEUE_NOTIFY, 0); break;
    case 4: wr(R_QUEUE_NOTIFY, 1); break;
    case 5: wr(R_QUEUE_NOTIFY, a); break; /* queues that may not exist */
    case 6: press(d, power, 1); break;
    case 7: press(d, cad, 3); break;
    case 8: ram[((unsigned)a << 8 | b) % RAM_SIZE] = c; break; /* the driver writes RAM */
    case 9:
        if (a & 1) {
            setup(hdr);
        } else {
            wr(R_INT_ACK, 3);
        }
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < HDR + 4 * NOPS) return 0;
    const uint8_t *hdr = data, *ops = data + HDR, *img = data + HDR + 4 * NOPS;
    size_t n = size - HDR - 4 * NOPS;
    memset(ram, 0, RAM_SIZE);
    memcpy(ram, img, n < RAM_SIZE ? n : RAM_SIZE);
    struct vinput *d = vinput_create(&gm, (struct irq_line){irq_set, NULL, 0});
    if (!d) return 0;
    tr = vinput_transport(d);
    pressed = 0;
    setup(hdr);
    for (unsigned i = 0; i < NOPS; i++)
        run_op(d, hdr, ops + 4 * i);
    /* A reset never waits (events are copied under the device lock) and drops what waits. */
    wr(R_STATUS, 0);
    if (rd(R_STATUS) != 0) fail("reset did not complete at once");
    struct vinput_stats st;
    vinput_get_stats(d, &st);
    if (debug)
        fprintf(stderr,
                "pressed %llu delivered %llu dropped %llu short %llu status %llu bad %llu\n",
                (unsigned long long)pressed, (unsigned long long)st.events,
                (unsigned long long)st.dropped, (unsigned long long)st.bad_buffers,
                (unsigned long long)st.status_msgs, (unsigned long long)st.malformed);
    if (st.events + st.dropped != pressed) fail("events lost: delivered + dropped != pressed");
    vinput_destroy(d);
    return 0;
}

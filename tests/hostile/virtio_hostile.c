/* Hostile-guest programs against vessel's virtio-blk (issue 8): bare metal, M-mode, hart 0.
 * Built once per MODE (see Makefile); each prints what it saw on the UART and either powers
 * off through the SiFive test device or spins (the test then sends Ctrl-A x).
 *   FLOOD          a read in flight (the disk stalls), then its head published again and
 *                  again, each with a kick: the device must take none of them and set
 *                  DEVICE_NEEDS_RESET (virtio 1.x 2.1.2).
 *   RESET_POWEROFF a read in flight (the disk stalls), status 0 written: status must read
 *                  non-zero while the device drains (4.2.2.1), then poweroff.
 *   RESET_SPIN     the same, then spin forever (the test quits with Ctrl-A x).
 *   RESET_OK       a disk that works: status 0 with a read in flight reads 0 once drained,
 *                  and the device works again after a fresh set-up.
 * The bss is not cleared by start.S: everything here is written before it is read. */
#include <stdint.h>

#define UART    0x10000000ul
#define TESTDEV 0x100000ul
#define VIRTIO0 0x10001000ul
#define NSLOTS  8
#define QNUM    8

/* virtio-mmio registers (4.2.2) */
#define R_MAGIC     0x000
#define R_VERSION   0x004
#define R_DEVICE_ID 0x008
#define R_DEV_FEAT  0x010
#define R_DEV_FSEL  0x014
#define R_DRV_FEAT  0x020
#define R_DRV_FSEL  0x024
#define R_QSEL      0x030
#define R_QNUM_MAX  0x034
#define R_QNUM      0x038
#define R_QREADY    0x044
#define R_NOTIFY    0x050
#define R_INT_STAT  0x060
#define R_INT_ACK   0x064
#define R_STATUS    0x070
#define R_DESC_LO   0x080
#define R_DESC_HI   0x084
#define R_DRV_LO    0x090
#define R_DRV_HI    0x094
#define R_DEV_LO    0x0a0
#define R_DEV_HI    0x0a4

#define S_ACK         1
#define S_DRV         2
#define S_DOK         4
#define S_FOK         8
#define S_NEEDS_RESET 64

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
};

static struct desc dtab[QNUM] __attribute__((aligned(4096)));
static struct {
    uint16_t flags, idx, ring[QNUM], used_event;
} avail __attribute__((aligned(4096)));
static struct {
    uint16_t flags, idx;
    struct {
        uint32_t id, len;
    } ring[QNUM];
    uint16_t avail_event;
} used __attribute__((aligned(4096)));
static struct {
    uint32_t type, reserved;
    uint64_t sector;
} hdr;
static uint8_t data[512] __attribute__((aligned(512)));
static volatile uint8_t status_byte;
static unsigned long blk; /* base of the virtio-blk slot */

static void putc_(char c)
{
    volatile uint8_t *u = (volatile uint8_t *)UART;
    while (!(u[5] & 0x20))
        ;
    u[0] = (uint8_t)c;
}
static void puts_(const char *s)
{
    while (*s)
        putc_(*s++);
}
__attribute__((unused)) static void puthex(uint32_t v)
{
    puts_("0x");
    for (int i = 28; i >= 0; i -= 4)
        putc_("0123456789abcdef"[(v >> i) & 15]);
}

static uint32_t rd(unsigned off)
{
    return *(volatile uint32_t *)(blk + off);
}
static void wr(unsigned off, uint32_t v)
{
    *(volatile uint32_t *)(blk + off) = v;
}

__attribute__((unused)) static void poweroff(void)
{
    puts_("POWEROFF\n");
    *(volatile uint32_t *)TESTDEV = 0x5555;
    for (;;)
        ;
}
static void fail(const char *why)
{
    puts_("FAIL: ");
    puts_(why);
    puts_("\n");
    *(volatile uint32_t *)TESTDEV = 0x3333 | (1u << 16); /* test device: failure, code 1 */
    for (;;)
        ;
}

static int find_blk(void)
{
    for (unsigned n = 0; n < NSLOTS; n++) {
        blk = VIRTIO0 + n * 0x1000ul;
        if (rd(R_MAGIC) == 0x74726976 && rd(R_VERSION) == 2 && rd(R_DEVICE_ID) == 2) return 0;
    }
    return -1;
}

/* The driver's side of a reset: status 0, re-read until it reads 0 (bounded by `spins`). */
static int reset_and_wait(unsigned long spins)
{
    wr(R_STATUS, 0);
    for (unsigned long i = 0; i < spins; i++)
        if (rd(R_STATUS) == 0) return 0;
    return -1;
}

/* 3.1.1: ACKNOWLEDGE, DRIVER, features (VERSION_1 only), FEATURES_OK, queue 0, DRIVER_OK. */
static void setup(void)
{
    if (reset_and_wait(100000000ul)) fail("status never read 0 after reset");
    wr(R_STATUS, S_ACK);
    wr(R_STATUS, S_ACK | S_DRV);
    wr(R_DRV_FSEL, 1);
    wr(R_DRV_FEAT, 1); /* VIRTIO_F_VERSION_1 (bit 32) */
    wr(R_DRV_FSEL, 0);
    wr(R_DRV_FEAT, 0);
    wr(R_STATUS, S_ACK | S_DRV | S_FOK);
    if (!(rd(R_STATUS) & S_FOK)) fail("FEATURES_OK refused");
    wr(R_QSEL, 0);
    if (rd(R_QNUM_MAX) < QNUM) fail("queue too small");
    for (unsigned i = 0; i < sizeof(avail); i++)
        ((volatile uint8_t *)&avail)[i] = 0;
    for (unsigned i = 0; i < sizeof(used); i++)
        ((volatile uint8_t *)&used)[i] = 0;
    wr(R_QNUM, QNUM);
    wr(R_DESC_LO, (uint32_t)(uintptr_t)dtab);
    wr(R_DESC_HI, (uint32_t)((uint64_t)(uintptr_t)dtab >> 32));
    wr(R_DRV_LO, (uint32_t)(uintptr_t)&avail);
    wr(R_DRV_HI, (uint32_t)((uint64_t)(uintptr_t)&avail >> 32));
    wr(R_DEV_LO, (uint32_t)(uintptr_t)&used);
    wr(R_DEV_HI, (uint32_t)((uint64_t)(uintptr_t)&used >> 32));
    wr(R_QREADY, 1);
    wr(R_STATUS, S_ACK | S_DRV | S_FOK | S_DOK);
    if (!(rd(R_STATUS) & S_DOK)) fail("DRIVER_OK refused");
}

/* Publish head 0 (again) and kick (2.7.13). */
static void publish_head0(void)
{
    avail.ring[avail.idx % QNUM] = 0;
    __asm__ volatile("fence w,w" ::: "memory");
    avail.idx++;
    __asm__ volatile("fence w,w" ::: "memory");
    wr(R_NOTIFY, 0);
}

/* A one-sector read of `sector` as descriptors 0 (header), 1 (data), 2 (status). */
static void read_request(uint64_t sector)
{
    hdr.type = 0; /* VIRTIO_BLK_T_IN */
    hdr.reserved = 0;
    hdr.sector = sector;
    status_byte = 0xff;
    dtab[0] = (struct desc){(uint64_t)(uintptr_t)&hdr, sizeof(hdr), 1, 1};
    dtab[1] = (struct desc){(uint64_t)(uintptr_t)data, sizeof(data), 1 | 2, 2};
    dtab[2] = (struct desc){(uint64_t)(uintptr_t)&status_byte, 1, 2, 0};
    publish_head0();
}

/* used->idx as the device last wrote it (the device is another thread: never cached). */
static uint16_t used_idx(void)
{
    uint16_t v = *(volatile uint16_t *)&used.idx;
    __asm__ volatile("fence r,r" ::: "memory"); /* the ring entry and data after the index */
    return v;
}

__attribute__((unused)) static void pause_a_little(void)
{
    for (volatile unsigned long i = 0; i < 2000000ul; i++)
        ;
}

int main(void)
{
    puts_("hostile: " MODE_NAME "\n");
    if (find_blk()) fail("no virtio-blk found");
    setup();
    read_request(0);
#if !MODE_RESET_OK
    pause_a_little(); /* the stalled disk has the read now */
#endif

#if MODE_FLOOD
    if (rd(R_STATUS) & S_NEEDS_RESET) fail("NEEDS_RESET after one good request");
    for (unsigned i = 0; i < 100000; i++)
        publish_head0(); /* head 0 is still in flight: a driver error each time */
    uint32_t s = rd(R_STATUS);
    puts_("status ");
    puthex(s);
    puts_("\n");
    if (!(s & S_NEEDS_RESET)) fail("no NEEDS_RESET after re-published heads");
    if (!(rd(R_INT_STAT) & 2)) fail("no configuration change interrupt");
    if (used_idx() != 0) fail("a re-published head was used");
    puts_("needs-reset: ok\n");
    poweroff();
#elif MODE_RESET_POWEROFF || MODE_RESET_SPIN
    wr(R_STATUS, 0);
    for (unsigned i = 0; i < 200; i++) {
        if (rd(R_STATUS) == 0) fail("status read 0 while a request was in flight");
        for (volatile unsigned j = 0; j < 10000; j++)
            ;
    }
    if (used_idx() != 0 || status_byte != 0xff) fail("the stalled request completed");
    puts_("reset pending: status ");
    puthex(rd(R_STATUS));
    puts_("\n");
#if MODE_RESET_POWEROFF
    poweroff();
#else
    puts_("SPIN\n");
    for (;;)
        ;
#endif
#elif MODE_RESET_OK
    /* at once: the read is likely still in flight, so the reset completes asynchronously */
    if (reset_and_wait(1000000000ul)) fail("status never read 0 after reset");
    puts_("reset done\n");
    setup();
    read_request(1);
    for (unsigned long i = 0; used_idx() != 1; i++)
        if (i > 1000000000ul) fail("read after reset never completed");
    if (status_byte != 0) fail("read after reset failed");
    if (data[0] != 0xa5 || data[511] != 0x5a) fail("read after reset: wrong data");
    puts_("read after reset: ok\n");
    poweroff();
#endif
    return 0;
}

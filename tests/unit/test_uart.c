#include "dev/uart.h"
#include "test.h"

/* A fake chr backend: records output, counts rx_ready calls. */
struct fake_chr {
    struct chr base;
    uint8_t out[256];
    size_t nout;
    int rx_ready_calls;
};

static void fake_write(struct chr *c, const uint8_t *buf, size_t len)
{
    struct fake_chr *f = (struct fake_chr *)c;
    for (size_t i = 0; i < len && f->nout < sizeof(f->out); i++)
        f->out[f->nout++] = buf[i];
}
static void fake_rx_ready(struct chr *c)
{
    ((struct fake_chr *)c)->rx_ready_calls++;
}
static void fake_destroy(struct chr *c)
{
    (void)c;
}
static const struct chr_ops fake_ops = {
    .write = fake_write, .rx_ready = fake_rx_ready, .destroy = fake_destroy};

struct irqrec {
    bool level;
    int calls;
};
static void irq_set(void *ctx, unsigned n, bool level)
{
    struct irqrec *r = ctx;
    (void)n;
    r->level = level;
    r->calls++;
}

struct rig {
    struct fake_chr chr;
    struct irqrec irq;
    struct uart *u;
};

static void mk(struct rig *r)
{
    memset(r, 0, sizeof(*r));
    r->chr.base.ops = &fake_ops;
    r->u = uart_create(&r->chr.base, (struct irq_line){irq_set, &r->irq, 10});
}

static uint8_t rd(struct rig *r, unsigned off)
{
    return (uint8_t)uart_mmio_ops.read(r->u, off, 1);
}
static void wr(struct rig *r, unsigned off, uint8_t v)
{
    uart_mmio_ops.write(r->u, off, v, 1);
}
/* Push bytes as the chr backend would; returns the count accepted. */
static size_t feed(struct rig *r, const char *s)
{
    return r->chr.base.rx(r->chr.base.rx_opaque, (const uint8_t *)s, strlen(s));
}

enum { RBR = 0, THR = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

TEST(uart_idle_registers)
{
    struct rig r;
    mk(&r);
    CHECK(r.chr.base.rx != NULL); /* registered as receiver */
    CHECK_EQ(rd(&r, LSR), 0x60);
    CHECK_EQ(rd(&r, IIR), 0x01);
    CHECK_EQ(rd(&r, IER), 0);
    CHECK_EQ(rd(&r, MSR), 0xb0);
    CHECK_EQ(rd(&r, RBR), 0);
    CHECK(!r.irq.level);
    wr(&r, SCR, 0x5a);
    CHECK_EQ(rd(&r, SCR), 0x5a);
    wr(&r, IER, 0xff);
    CHECK_EQ(rd(&r, IER), 0x0f);
    CHECK_EQ(uart_mmio_ops.read(r.u, 8, 1), 0);
    uart_destroy(r.u);
}

TEST(uart_tx_goes_straight_to_chr)
{
    struct rig r;
    mk(&r);
    const char *msg = "hi\r\n";
    for (const char *p = msg; *p; p++) {
        wr(&r, THR, (uint8_t)*p);
        CHECK_EQ(rd(&r, LSR) & 0x60, 0x60); /* never busy */
    }
    CHECK_EQ(r.chr.nout, 4);
    CHECK(memcmp(r.chr.out, msg, 4) == 0);
    uart_destroy(r.u);
}

TEST(uart_dlab_divisor_latch)
{
    struct rig r;
    mk(&r);
    wr(&r, LCR, 0x83);
    wr(&r, 0, 0x01); /* DLL: must not transmit */
    wr(&r, 1, 0x02); /* DLM: must not change IER */
    CHECK_EQ(rd(&r, 0), 0x01);
    CHECK_EQ(rd(&r, 1), 0x02);
    wr(&r, LCR, 0x03);
    CHECK_EQ(rd(&r, LCR), 0x03);
    CHECK_EQ(rd(&r, IER), 0);
    CHECK_EQ(r.chr.nout, 0);
    uart_destroy(r.u);
}

TEST(uart_thre_interrupt_semantics)
{
    struct rig r;
    mk(&r);
    wr(&r, IER, 0x02); /* ETBEI with THR empty: THRE interrupt at once */
    CHECK(r.irq.level);
    CHECK_EQ(rd(&r, IIR), 0x02);
    /* reading IIR while THRE is the source clears it */
    CHECK(!r.irq.level);
    CHECK_EQ(rd(&r, IIR), 0x01);
    /* transmitting a byte empties THR again: re-asserted */
    wr(&r, THR, 'a');
    CHECK(r.irq.level);
    CHECK_EQ(rd(&r, IIR), 0x02);
    CHECK(!r.irq.level);
    /* Linux serial8250_THRE_test: disable and re-enable ETBEI re-asserts */
    wr(&r, IER, 0x00);
    wr(&r, IER, 0x02);
    CHECK(r.irq.level);
    CHECK_EQ(rd(&r, IIR) & 0x0f, 0x02);
    /* disabling ETBEI drops the line */
    wr(&r, THR, 'b');
    CHECK(r.irq.level);
    wr(&r, IER, 0x00);
    CHECK(!r.irq.level);
    CHECK_EQ(rd(&r, IIR), 0x01);
    /* rewriting IER with ETBEI already set does not re-raise a cleared THRE */
    wr(&r, IER, 0x02);
    CHECK_EQ(rd(&r, IIR), 0x02);
    wr(&r, IER, 0x02);
    CHECK(!r.irq.level);
    uart_destroy(r.u);
}

TEST(uart_rx_fifo_lsr_iir)
{
    struct rig r;
    mk(&r);
    wr(&r, FCR, 0x01); /* FIFOs on */
    CHECK_EQ(rd(&r, IIR), 0xc1);
    wr(&r, IER, 0x01);
    CHECK(!r.irq.level);
    CHECK_EQ(feed(&r, "abc"), 3);
    CHECK(r.irq.level);
    CHECK_EQ(rd(&r, LSR), 0x61);
    CHECK_EQ(rd(&r, IIR), 0xc4);
    CHECK(r.irq.level); /* reading IIR does not clear RX data available */
    CHECK_EQ(rd(&r, RBR), 'a');
    CHECK_EQ(rd(&r, RBR), 'b');
    CHECK_EQ(rd(&r, RBR), 'c');
    CHECK_EQ(rd(&r, LSR), 0x60);
    CHECK(!r.irq.level);
    CHECK_EQ(rd(&r, IIR), 0xc1);
    CHECK_EQ(r.chr.rx_ready_calls, 0); /* the backend never had to wait */
    uart_destroy(r.u);
}

TEST(uart_rx_priority_over_thre)
{
    struct rig r;
    mk(&r);
    wr(&r, FCR, 0x01);
    wr(&r, IER, 0x03);
    feed(&r, "x");
    CHECK_EQ(rd(&r, IIR), 0xc4);
    CHECK_EQ(rd(&r, RBR), 'x');
    CHECK_EQ(rd(&r, IIR), 0xc2); /* THRE still pending after RX drained */
    CHECK_EQ(rd(&r, IIR), 0xc1);
    CHECK(!r.irq.level);
    uart_destroy(r.u);
}

TEST(uart_rx_full_fifo_backpressure_and_rx_ready)
{
    struct rig r;
    mk(&r);
    wr(&r, FCR, 0x01);
    const char *in = "0123456789abcdefXYZ"; /* 19 bytes */
    CHECK_EQ(feed(&r, in), 16);
    CHECK_EQ(feed(&r, in + 16), 0);
    CHECK_EQ(r.chr.rx_ready_calls, 0);
    CHECK_EQ(rd(&r, RBR), '0');
    CHECK_EQ(r.chr.rx_ready_calls, 1); /* room again: the backend is told */
    CHECK_EQ(rd(&r, RBR), '1');
    CHECK_EQ(r.chr.rx_ready_calls, 1); /* only once per refusal */
    CHECK_EQ(feed(&r, in + 16), 2);
    CHECK_EQ(feed(&r, in + 18), 0);
    for (int i = 2; i < 16; i++)
        CHECK_EQ(rd(&r, RBR), (uint8_t)in[i]);
    CHECK_EQ(r.chr.rx_ready_calls, 2);
    CHECK_EQ(feed(&r, in + 18), 1);
    CHECK_EQ(rd(&r, RBR), 'X');
    CHECK_EQ(rd(&r, RBR), 'Y');
    CHECK_EQ(rd(&r, RBR), 'Z');
    CHECK_EQ(rd(&r, LSR) & 1, 0);
    uart_destroy(r.u);
}

TEST(uart_fifo_disabled_holds_one_byte)
{
    struct rig r;
    mk(&r);
    CHECK_EQ(feed(&r, "ab"), 1);
    CHECK_EQ(rd(&r, IIR) & 0xc0, 0); /* no FIFO bits */
    CHECK_EQ(rd(&r, RBR), 'a');
    CHECK_EQ(r.chr.rx_ready_calls, 1);
    /* enabling the FIFO (a change of FCR bit 0) resets it, and widens it */
    CHECK_EQ(feed(&r, "b"), 1);
    wr(&r, FCR, 0x01);
    CHECK_EQ(rd(&r, LSR) & 1, 0);
    CHECK_EQ(feed(&r, "cdef"), 4);
    /* clear RX FIFO */
    wr(&r, FCR, 0x03);
    CHECK_EQ(rd(&r, LSR) & 1, 0);
    CHECK_EQ(rd(&r, IIR), 0xc1);
    uart_destroy(r.u);
}

TEST(uart_loopback)
{
    struct rig r;
    mk(&r);
    wr(&r, FCR, 0x01);
    wr(&r, MCR, 0x10 | 0x0a); /* LOOP | RTS | OUT2, as Linux autoconfig */
    CHECK_EQ(rd(&r, MSR) & 0xf0, 0x90);
    wr(&r, MCR, 0x10 | 0x05); /* LOOP | DTR | OUT1 */
    CHECK_EQ(rd(&r, MSR) & 0xf0, 0x60);
    wr(&r, THR, 'L');
    CHECK_EQ(r.chr.nout, 0); /* not sent out */
    CHECK_EQ(rd(&r, LSR) & 1, 1);
    CHECK_EQ(rd(&r, RBR), 'L');
    CHECK_EQ(feed(&r, "q"), 0); /* serial input disconnected */
    wr(&r, MCR, 0x0b);
    CHECK_EQ(rd(&r, MSR), 0xb0);
    CHECK_EQ(r.chr.rx_ready_calls, 1); /* input reconnected: ask for it */
    CHECK_EQ(feed(&r, "q"), 1);
    uart_destroy(r.u);
}

/* ns16550a UART model. Register semantics per the National/TI PC16550D datasheet; the parts
 * that matter for booting are what Linux's 8250_port.c and OpenSBI's uart8250.c rely on
 * (NOTES-boot.md §5): LSR = THRE|TEMT when idle, the THRE interrupt re-asserted when ETBEI is
 * enabled and after every transmitted byte, and IIR bits 7:6 set while FIFOs are enabled.
 * Transmission is instantaneous: a THR write goes straight to the chr backend. */
#include "dev/uart.h"
#include "util/staterec.h"
#include <string.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdlib.h>

enum {
    REG_RBR_THR_DLL = 0,
    REG_IER_DLM = 1,
    REG_IIR_FCR = 2,
    REG_LCR = 3,
    REG_MCR = 4,
    REG_LSR = 5,
    REG_MSR = 6,
    REG_SCR = 7,
};

#define IER_ERBFI 0x01 /* received data available */
#define IER_ETBEI 0x02 /* THR empty */
#define IER_MASK  0x0f

#define IIR_NONE 0x01
#define IIR_THRE 0x02
#define IIR_RDA  0x04
#define IIR_FIFO 0xc0

#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02

#define LCR_DLAB 0x80

#define MCR_DTR  0x01
#define MCR_RTS  0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f

#define LSR_DR   0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI  0x40
#define MSR_DCD 0x80

#define RX_FIFO_SIZE 16

struct uart {
    pthread_mutex_t lock;
    struct chr *chr;
    struct irq_line irq;
    bool irq_level;
    uint8_t rx[RX_FIFO_SIZE];
    unsigned rx_head, rx_count;
    bool rx_blocked; /* the backend holds bytes we refused; tell it when there is room */
    bool fifo_en;
    bool thre_ip; /* THRE interrupt pending (reported only while IER.ETBEI) */
    uint8_t ier, lcr, mcr, scr, dll, dlm;
};

static unsigned rx_capacity(const struct uart *u)
{
    return u->fifo_en ? RX_FIFO_SIZE : 1;
}

static uint8_t iir_id(const struct uart *u)
{
    if ((u->ier & IER_ERBFI) && u->rx_count) return IIR_RDA;
    if ((u->ier & IER_ETBEI) && u->thre_ip) return IIR_THRE;
    return IIR_NONE;
}

static void update_irq(struct uart *u)
{
    bool lvl = iir_id(u) != IIR_NONE;
    if (lvl != u->irq_level) {
        u->irq_level = lvl;
        irq_line_set(&u->irq, lvl);
    }
}

static void rx_push(struct uart *u, uint8_t b)
{
    u->rx[(u->rx_head + u->rx_count) % RX_FIFO_SIZE] = b;
    u->rx_count++;
}

/* True when the backend should be told that the FIFO has room again. */
static bool rx_room_notify(struct uart *u)
{
    if (u->rx_blocked && u->rx_count < rx_capacity(u) && !(u->mcr & MCR_LOOP)) {
        u->rx_blocked = false;
        return true;
    }
    return false;
}

static void rx_clear(struct uart *u)
{
    u->rx_head = 0;
    u->rx_count = 0;
}

static size_t uart_rx(void *opaque, const uint8_t *buf, size_t len)
{
    struct uart *u = opaque;
    size_t n = 0;
    pthread_mutex_lock(&u->lock);
    /* In loopback the serial input is disconnected (16550 datasheet, MCR bit 4). */
    if (!(u->mcr & MCR_LOOP))
        while (n < len && u->rx_count < rx_capacity(u))
            rx_push(u, buf[n++]);
    if (n < len) u->rx_blocked = true;
    update_irq(u);
    pthread_mutex_unlock(&u->lock);
    return n;
}

static uint8_t msr_value(const struct uart *u)
{
    if (!(u->mcr & MCR_LOOP)) return MSR_CTS | MSR_DSR | MSR_DCD;
    /* Loopback wires the modem outputs to the inputs; Linux's autoconfig checks this. */
    return ((u->mcr & MCR_RTS) ? MSR_CTS : 0) | ((u->mcr & MCR_DTR) ? MSR_DSR : 0) |
           ((u->mcr & MCR_OUT1) ? MSR_RI : 0) | ((u->mcr & MCR_OUT2) ? MSR_DCD : 0);
}

static uint64_t uart_read(void *dev, uint64_t off, unsigned size)
{
    struct uart *u = dev;
    uint8_t v = 0;
    bool notify = false;
    (void)size;
    if (off > REG_SCR) return 0;
    pthread_mutex_lock(&u->lock);
    switch (off) {
    case REG_RBR_THR_DLL:
        if (u->lcr & LCR_DLAB) {
            v = u->dll;
        } else if (u->rx_count) {
            v = u->rx[u->rx_head];
            u->rx_head = (u->rx_head + 1) % RX_FIFO_SIZE;
            u->rx_count--;
            notify = rx_room_notify(u);
            update_irq(u);
        }
        break;
    case REG_IER_DLM: v = (u->lcr & LCR_DLAB) ? u->dlm : u->ier; break;
    case REG_IIR_FCR:
        v = iir_id(u);
        /* Reading IIR while THRE is the reported source clears it (16550D datasheet, IIR). */
        if (v == IIR_THRE) {
            u->thre_ip = false;
            update_irq(u);
        }
        if (u->fifo_en) v |= IIR_FIFO;
        break;
    case REG_LCR: v = u->lcr; break;
    case REG_MCR: v = u->mcr; break;
    case REG_LSR: v = LSR_THRE | LSR_TEMT | (u->rx_count ? LSR_DR : 0); break;
    case REG_MSR: v = msr_value(u); break;
    case REG_SCR: v = u->scr; break;
    }
    pthread_mutex_unlock(&u->lock);
    if (notify && u->chr) chr_rx_ready(u->chr);
    return v;
}

static void transmit(struct uart *u, uint8_t b)
{
    if (u->mcr & MCR_LOOP) {
        if (u->rx_count < rx_capacity(u)) rx_push(u, b);
    } else if (u->chr) {
        chr_write(u->chr, &b, 1);
    }
    /* The byte left at once: THR is empty again, which raises the THRE interrupt. */
    u->thre_ip = true;
}

static void write_fcr(struct uart *u, uint8_t val)
{
    bool en = val & FCR_ENABLE;
    /* Changing the FIFO enable resets both FIFOs; the other bits act only with it set. */
    if (en != u->fifo_en) rx_clear(u);
    u->fifo_en = en;
    if (en && (val & FCR_CLEAR_RX)) rx_clear(u);
}

static void uart_write(void *dev, uint64_t off, uint64_t val64, unsigned size)
{
    struct uart *u = dev;
    uint8_t val = (uint8_t)val64;
    bool notify = false;
    (void)size;
    if (off > REG_SCR) return;
    pthread_mutex_lock(&u->lock);
    switch (off) {
    case REG_RBR_THR_DLL:
        if (u->lcr & LCR_DLAB)
            u->dll = val;
        else
            transmit(u, val);
        break;
    case REG_IER_DLM:
        if (u->lcr & LCR_DLAB) {
            u->dlm = val;
        } else {
            uint8_t changed = (u->ier ^ val) & IER_MASK;
            u->ier = val & IER_MASK;
            /* Enabling ETBEI with THR empty (always, here) raises THRE at once; Linux's
             * serial8250_THRE_test and its TX start path depend on it. */
            if (changed & IER_ETBEI) u->thre_ip = (u->ier & IER_ETBEI) != 0;
        }
        break;
    case REG_IIR_FCR: write_fcr(u, val); break;
    case REG_LCR: u->lcr = val; break;
    case REG_MCR: u->mcr = val & MCR_MASK; break;
    case REG_LSR:
    case REG_MSR: break; /* read-only here (factory test registers on some parts) */
    case REG_SCR: u->scr = val; break;
    }
    notify = rx_room_notify(u);
    update_irq(u);
    pthread_mutex_unlock(&u->lock);
    if (notify && u->chr) chr_rx_ready(u->chr);
}

struct uart *uart_create(struct chr *chr, struct irq_line irq)
{
    struct uart *u = calloc(1, sizeof(*u));
    if (!u) return NULL;
    pthread_mutex_init(&u->lock, NULL);
    u->chr = chr;
    u->irq = irq;
    if (chr) chr_set_receiver(chr, uart_rx, u);
    return u;
}

/* Destroy the chr backend first (that joins its reader thread, the only caller of uart_rx);
 * this function does not touch the chr, so it may already be gone. */
void uart_destroy(struct uart *u)
{
    if (!u) return;
    pthread_mutex_destroy(&u->lock);
    free(u);
}

const struct mmio_ops uart_mmio_ops = {.read = uart_read, .write = uart_write};

/* ---- snapshots (util/staterec.h) ---- */
void uart_save(struct uart *u, struct sw *w)
{
    /* version 2: the console input the backend holds for the FIFO (typed, not yet taken) */
    static uint8_t held[CHR_HELD_MAX]; /* snapshots are taken one at a time */
    size_t nheld = chr_held(u->chr, held, sizeof(held));
    pthread_mutex_lock(&u->lock);
    sw_section(w, "uart", 2);
    sw_bytes(w, "console_in", held, nheld);
    uint8_t rx[RX_FIFO_SIZE]; /* in order, oldest first */
    for (unsigned i = 0; i < u->rx_count; i++)
        rx[i] = u->rx[(u->rx_head + i) % RX_FIFO_SIZE];
    sw_bytes(w, "rx", rx, u->rx_count);
    sw_u64(w, "rx_count", u->rx_count);
    sw_u64(w, "irq_level", u->irq_level);
    sw_u64(w, "fifo_en", u->fifo_en);
    sw_u64(w, "thre_ip", u->thre_ip);
    sw_u64(w, "ier", u->ier);
    sw_u64(w, "lcr", u->lcr);
    sw_u64(w, "mcr", u->mcr);
    sw_u64(w, "scr", u->scr);
    sw_u64(w, "dll", u->dll);
    sw_u64(w, "dlm", u->dlm);
    pthread_mutex_unlock(&u->lock);
}

int uart_load(struct uart *u, struct sr *r)
{
    uint32_t version = sr_enter(r, "uart", 2);
    size_t nheld = 0;
    const uint8_t *held = version >= 2 ? sr_bytes_ref(r, "console_in", &nheld) : NULL;
    if (!sr_failed(r) && nheld > CHR_HELD_MAX)
        sr_fail(r, "state of uart: %zu bytes of console input, at most %u", nheld, CHR_HELD_MAX);
    unsigned n = (unsigned)sr_u64(r, "rx_count", RX_FIFO_SIZE);
    uint8_t rx[RX_FIFO_SIZE];
    sr_bytes(r, "rx", rx, n);
    bool irq = sr_u64(r, "irq_level", 1), fifo = sr_u64(r, "fifo_en", 1);
    bool thre = sr_u64(r, "thre_ip", 1);
    uint8_t ier = (uint8_t)sr_u64(r, "ier", 0x0f), lcr = (uint8_t)sr_u64(r, "lcr", 0xff);
    uint8_t mcr = (uint8_t)sr_u64(r, "mcr", 0x1f), scr = (uint8_t)sr_u64(r, "scr", 0xff);
    uint8_t dll = (uint8_t)sr_u64(r, "dll", 0xff), dlm = (uint8_t)sr_u64(r, "dlm", 0xff);
    if (!sr_failed(r) && !fifo && n > 1) sr_fail(r, "state of uart: %u bytes without a FIFO", n);
    if (sr_failed(r)) return -1;
    pthread_mutex_lock(&u->lock);
    memcpy(u->rx, rx, n);
    u->rx_head = 0;
    u->rx_count = n;
    u->fifo_en = fifo;
    u->thre_ip = thre;
    u->ier = ier;
    u->lcr = lcr;
    u->mcr = mcr;
    u->scr = scr;
    u->dll = dll;
    u->dlm = dlm;
    u->irq_level = irq; /* the PLIC's saved line level matches it */
    update_irq(u);      /* and if it did not, this drives the line to what the registers say */
    pthread_mutex_unlock(&u->lock);
    if (held) chr_put_back(u->chr, held, nheld); /* after the FIFO's bytes, before new input */
    return 0;
}

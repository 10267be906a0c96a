/* ns16550a UART (8250-compatible register set, 1-byte registers, reg-shift 0) at
 * 0x10000000 on PLIC source 10. 16-byte RX FIFO; TX goes straight to the chr backend.
 * LSR reports THRE|TEMT (0x60) when idle, DR when RX data waits. IIR/IER per the 16550:
 * RX-data-available interrupt when IER.ERBFI and data waits; THRE interrupt when IER.ETBEI and
 * the THR is empty (asserted again when ETBEI is re-enabled; cleared by reading IIR while it
 * is the reported source, or by writing THR). DLAB/divisor latch, LCR, MCR (loopback not
 * needed), MSR (reports CTS|DSR|DCD), SCR all readable/writable. Thread safe (own mutex). */
#ifndef VESSEL_DEV_UART_H
#define VESSEL_DEV_UART_H
#include "backend/chr/chr.h"
#include "irq/irq.h"
#include "machine/bus.h"

#define UART_MMIO_SIZE 0x100ull

struct uart;
/* Registers itself as chr's receiver. Returns NULL on OOM. */
struct uart *uart_create(struct chr *chr, struct irq_line irq);
void uart_destroy(struct uart *u);
extern const struct mmio_ops uart_mmio_ops;
/* Snapshots: section "uart". _load: 0, or -1 with the reason in the reader. */
struct sw;
struct sr;
void uart_save(struct uart *u, struct sw *w);
int uart_load(struct uart *u, struct sr *sr);
#endif

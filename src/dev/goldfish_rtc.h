/* Goldfish RTC ("google,goldfish-rtc") at 0x101000, PLIC source 11. Time is host CLOCK_REALTIME
 * in ns plus an offset the guest can set by writing TIME_LOW/HIGH. Registers (32-bit):
 * TIME_LOW 0x00 (reading it latches the high half), TIME_HIGH 0x04, ALARM_LOW 0x08 (writing it
 * arms the alarm at HIGH:LOW), ALARM_HIGH 0x0c, IRQ_ENABLED 0x10, CLEAR_ALARM 0x14,
 * ALARM_STATUS 0x18, CLEAR_INTERRUPT 0x1c. The alarm fires from a timer thread and raises the
 * IRQ line while IRQ_ENABLED. Thread safe (own mutex). */
#ifndef VESSEL_DEV_GOLDFISH_RTC_H
#define VESSEL_DEV_GOLDFISH_RTC_H
#include "irq/irq.h"
#include "machine/bus.h"

#define RTC_MMIO_SIZE 0x1000ull

struct goldfish_rtc;
struct goldfish_rtc *goldfish_rtc_create(struct irq_line irq);
void goldfish_rtc_destroy(struct goldfish_rtc *r);
extern const struct mmio_ops goldfish_rtc_mmio_ops;
/* Snapshots: section "rtc". _load: 0, or -1 with the reason in the reader. */
struct sw;
struct sr;
void goldfish_rtc_save(struct goldfish_rtc *r, struct sw *w);
int goldfish_rtc_load(struct goldfish_rtc *r, struct sr *sr);
#endif

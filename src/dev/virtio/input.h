/* virtio-input keyboard (virtio 1.x spec 5.8) that exists to ask the guest to shut down: it
 * reports KEY_POWER (systemd-logind: HandlePowerKey=poweroff) and Ctrl, Alt and Delete (the
 * kernel's VT keyboard turns Ctrl-Alt-Del into SIGINT for init; systemd starts
 * ctrl-alt-del.target). Linux's driver is virtio_input (CONFIG_VIRTIO_INPUT).
 * Events come from the host side (vinput_press_keys, any thread) and go into the buffers the
 * driver keeps in the eventq; the statusq (LEDs and the like) is accepted and discarded. */
#ifndef VESSEL_DEV_VIRTIO_INPUT_H
#define VESSEL_DEV_VIRTIO_INPUT_H
#include "dev/virtio/mmio.h"

#define VIRTIO_ID_INPUT 18

/* Linux input event codes (include/uapi/linux/input-event-codes.h), part of the device ABI. */
#define VINPUT_EV_SYN       0x00
#define VINPUT_EV_KEY       0x01
#define VINPUT_SYN_REPORT   0
#define VINPUT_KEY_LEFTCTRL 29
#define VINPUT_KEY_LEFTALT  56
#define VINPUT_KEY_DELETE   111
#define VINPUT_KEY_POWER    116

/* config select values (5.8.5) */
#define VIRTIO_INPUT_CFG_UNSET     0x00
#define VIRTIO_INPUT_CFG_ID_NAME   0x01
#define VIRTIO_INPUT_CFG_ID_SERIAL 0x02
#define VIRTIO_INPUT_CFG_ID_DEVIDS 0x03
#define VIRTIO_INPUT_CFG_PROP_BITS 0x10
#define VIRTIO_INPUT_CFG_EV_BITS   0x11
#define VIRTIO_INPUT_CFG_ABS_INFO  0x12
#define VIRTIO_INPUT_CFG_SIZE      136 /* select, subsel, size, reserved[5], u[128] */

/* Events kept for a driver that has no eventq buffers yet (4 events per key press). */
#define VINPUT_PENDING_MAX 64

struct vinput;
struct vinput *vinput_create(const struct guest_mem *gm, struct irq_line irq);
void vinput_destroy(struct vinput *d);
struct virtio_mmio *vinput_transport(struct vinput *d);

/* Press the n keys in order, then release them in reverse order, each step followed by
 * SYN_REPORT: {KEY_POWER} is one press of the power button, {CTRL, ALT, DELETE} is
 * Ctrl-Alt-Del. Any thread. Events the eventq has no buffers for are kept (at most
 * VINPUT_PENDING_MAX) and delivered when the driver adds buffers; a device reset (guest
 * reboot, driver reload) drops them, as they were meant for the driver that is gone.
 * Returns 0 if every event went into guest buffers, 1 if some wait for buffers, -ENOSPC if the
 * events did not fit (nothing was queued), -EINVAL for a bad key list. */
int vinput_press_keys(struct vinput *d, const uint16_t *keys, unsigned n);

struct vinput_stats {
    uint64_t events, dropped, bad_buffers, status_msgs, malformed;
};
void vinput_get_stats(struct vinput *d, struct vinput_stats *s);
#endif

/* A character backend: where a serial device's bytes go and come from.
 * Output: chr_write() from any thread (the device's); never blocks the caller for long.
 * Input: the backend pushes bytes to the device through rx(opaque, buf, len), which returns how
 * many it accepted (its FIFO may be full). Bytes not accepted stay buffered in the backend; the
 * device calls chr_rx_ready() when it has room again so no input is ever dropped. */
#ifndef VESSEL_BACKEND_CHR_H
#define VESSEL_BACKEND_CHR_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct chr;
typedef size_t (*chr_rx_fn)(void *opaque, const uint8_t *buf, size_t len);

struct chr_ops {
    void (*write)(struct chr *c, const uint8_t *buf, size_t len);
    void (*rx_ready)(struct chr *c);
    void (*destroy)(struct chr *c);
    /* Optional: install the receiver so that, on return, no call to the previous one is still
     * running (a backend with its own input thread needs this so the old device can be freed). */
    void (*set_receiver)(struct chr *c, chr_rx_fn rx, void *opaque);
    /* Optional (snapshots): copy up to max bytes of the input held for the device (typed,
     * not yet accepted) into out, oldest first, leaving them held; returns how many. */
    size_t (*held)(struct chr *c, uint8_t *out, size_t max);
    /* Optional (restore): bytes to give the device before any input that arrives later. */
    void (*put_back)(struct chr *c, const uint8_t *buf, size_t len);
};

struct chr {
    const struct chr_ops *ops;
    chr_rx_fn rx;
    void *rx_opaque;
};

static inline void chr_write(struct chr *c, const uint8_t *buf, size_t len)
{
    c->ops->write(c, buf, len);
}
static inline void chr_rx_ready(struct chr *c)
{
    if (c->ops->rx_ready) c->ops->rx_ready(c);
}
/* Install (or, with rx = NULL, remove) the device fed by this backend. Once it returns, the
 * previous receiver is no longer being called and may be destroyed. Input that arrives while
 * no receiver is set stays buffered in the backend for the next one. */
static inline void chr_set_receiver(struct chr *c, chr_rx_fn rx, void *opaque)
{
    if (c->ops->set_receiver) {
        c->ops->set_receiver(c, rx, opaque);
        return;
    }
    __atomic_store_n(&c->rx_opaque, opaque, __ATOMIC_RELAXED);
    __atomic_store_n(&c->rx, rx, __ATOMIC_RELEASE);
}
/* Input held for the device (up to max bytes; 0 for a backend that holds none). */
static inline size_t chr_held(struct chr *c, uint8_t *out, size_t max)
{
    return c && c->ops->held ? c->ops->held(c, out, max) : 0;
}
/* Input a snapshot held, for the device first (dropped by a backend that takes none). */
static inline void chr_put_back(struct chr *c, const uint8_t *buf, size_t len)
{
    if (c && c->ops->put_back && len) c->ops->put_back(c, buf, len);
}
/* The most input a snapshot keeps (the backends hold at most this much). */
#define CHR_HELD_MAX 65536
/* For backends: the held/put_back work on an input buffer of cap bytes holding *len (the
 * caller holds the buffer's lock). Peek copies up to max bytes, oldest first; prepend puts
 * n bytes before the held ones, as far as there is room. */
static inline size_t chr_inbuf_peek(const uint8_t *buf, size_t len, uint8_t *out, size_t max)
{
    size_t n = len < max ? len : max;
    memcpy(out, buf, n);
    return n;
}
static inline void chr_inbuf_prepend(uint8_t *buf, size_t *len, size_t cap, const uint8_t *src,
                                     size_t n)
{
    if (n > cap - *len) n = cap - *len;
    memmove(buf + n, buf, *len);
    memcpy(buf, src, n);
    *len += n;
}
static inline void chr_destroy(struct chr *c)
{
    c->ops->destroy(c);
}

/* The terminal backend: stdin/stdout. If stdin is a terminal it is put in raw mode (restored on
 * every exit path: normal exit, chr_destroy, fatal signals) and the QEMU escapes apply:
 * Ctrl-A x quits (calls on_quit), Ctrl-A p calls the power-down callback (see
 * chr_stdio_set_powerdown), Ctrl-A h prints help, Ctrl-A Ctrl-A sends Ctrl-A; Ctrl-A c is
 * not special. If stdin is not a terminal it is read as a plain byte stream, with no escapes;
 * EOF on stdin just stops input. A reader thread feeds the receiver.
 * Returns NULL with errno set on failure. */
struct chr *chr_stdio_create(void (*on_quit)(void *ctx), void *ctx);
/* The console of a detached VM (sock.c): output to log_path (rotated to log_path.1 beyond
 * log_max bytes) and to the one client connected to listen_fd (a bound, listening Unix socket,
 * owned from now on); the client's bytes are the guest's input. NULL with errno on failure. */
struct chr *chr_sock_create(int listen_fd, const char *log_path, uint64_t log_max);
/* Install (fn = NULL: remove) what Ctrl-A p calls, on the backend's reader thread; c must come
 * from chr_stdio_create. */
void chr_stdio_set_powerdown(struct chr *c, void (*fn)(void *ctx), void *ctx);
/* Output to out, input from in (split.c): Firecracker's serial_out_path with stdin as input.
 * Destroying it destroys out (owned) but not in. NULL on allocation failure. */
struct chr *chr_split_create(struct chr *out, struct chr *in);
/* Restore the terminal if this process changed it (async-signal-safe; idempotent). */
void chr_stdio_restore_terminal(void);
#endif

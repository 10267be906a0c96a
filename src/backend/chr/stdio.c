/* The terminal backend: guest output to stdout, stdin to the guest.
 * A reader thread polls stdin and an eventfd (rx_ready / shutdown). Bytes the device did not
 * accept stay in a buffer and are offered again when the device signals room, so input is
 * never dropped; while the buffer is full stdin is simply not read (the data waits in the
 * kernel). When stdin is a terminal it is switched to raw mode, and restored on chr_destroy,
 * at exit and on fatal signals. */
#include "backend/chr/chr.h"
#include "backend/chr/escape.h"
#include "util/log.h"
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <termios.h>
#include <unistd.h>

#define IN_BUF_SIZE   65536
#define READ_CHUNK    4096
#define RETRY_POLL_MS 100 /* safety net if a device never calls chr_rx_ready */

const char chr_escape_help[] = "\r\n"
                               "C-a h    print this help\r\n"
                               "C-a x    exit vessel\r\n"
                               "C-a p    ask the guest to power down (power key, Ctrl-Alt-Del)\r\n"
                               "C-a C-a  send C-a to the guest\r\n";

unsigned chr_escape_feed(struct chr_escape *e, uint8_t ch, uint8_t out[2],
                         enum chr_escape_event *ev)
{
    *ev = CHR_ESC_NONE;
    if (!e->armed) {
        if (ch == CHR_ESCAPE_CHAR) {
            e->armed = true;
            return 0;
        }
        out[0] = ch;
        return 1;
    }
    e->armed = false;
    switch (ch) {
    case 'x': *ev = CHR_ESC_QUIT; return 0;
    case 'p': *ev = CHR_ESC_POWERDOWN; return 0;
    case 'h':
    case '?': *ev = CHR_ESC_HELP; return 0;
    case CHR_ESCAPE_CHAR: out[0] = CHR_ESCAPE_CHAR; return 1;
    default:
        out[0] = CHR_ESCAPE_CHAR;
        out[1] = ch;
        return 2;
    }
}

struct chr_stdio {
    struct chr base;
    int in_fd, out_fd, evfd;
    bool tty;
    void (*on_quit)(void *ctx);
    void *ctx;
    _Atomic(void (*)(void *)) on_powerdown; /* Ctrl-A p; set after create */
    void *_Atomic powerdown_ctx;
    pthread_t thread;
    atomic_bool stop;
    bool free_on_exit; /* chr_destroy was called from on_quit, on the reader thread */
    pthread_mutex_t wlock;
    pthread_mutex_t rx_lock; /* held while calling the receiver and while replacing it, and
                              * for buf and len (a snapshot reads them from another thread) */
    atomic_int swap_waiting; /* stdio_set_receiver wants rx_lock */
    bool write_failed;
    struct chr_escape esc;
    size_t len; /* bytes in buf not yet accepted by the device */
    uint8_t buf[IN_BUF_SIZE];
};

/* Terminal state is process-wide, so only one stdio backend may exist at a time. */
static atomic_bool instance_active;
static struct termios saved_tio;
static atomic_int raw_fd = -1; /* fd whose termios we changed, -1 when restored */
static const int fatal_signals[] = {SIGTERM, SIGHUP,  SIGINT, SIGQUIT, SIGSEGV,
                                    SIGBUS,  SIGABRT, SIGFPE, SIGILL};
#define NFATAL (sizeof(fatal_signals) / sizeof(fatal_signals[0]))
static struct sigaction old_actions[NFATAL];
static bool handler_installed[NFATAL];

void chr_stdio_restore_terminal(void)
{
    int fd = atomic_exchange(&raw_fd, -1);
    if (fd >= 0) tcsetattr(fd, TCSANOW, &saved_tio);
}

static void restore_at_exit(void)
{
    chr_stdio_restore_terminal();
}

static void fatal_signal_handler(int sig, siginfo_t *si, void *uc)
{
    int saved_errno = errno;
    chr_stdio_restore_terminal();
    for (unsigned i = 0; i < NFATAL; i++) {
        if (fatal_signals[i] != sig) continue;
        const struct sigaction *old = &old_actions[i];
        /* Someone else handles it (e.g. graceful shutdown on SIGTERM): let them. */
        if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction) {
            old->sa_sigaction(sig, si, uc);
            errno = saved_errno;
            return;
        }
        if (!(old->sa_flags & SA_SIGINFO) && old->sa_handler != SIG_DFL &&
            old->sa_handler != SIG_IGN) {
            old->sa_handler(sig);
            errno = saved_errno;
            return;
        }
    }
    /* Default action: re-raise it; it is delivered when this handler returns. */
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    raise(sig);
    errno = saved_errno;
}

static void install_signal_handlers(void)
{
    struct sigaction sa = {.sa_sigaction = fatal_signal_handler, .sa_flags = SA_SIGINFO};
    sigemptyset(&sa.sa_mask);
    for (unsigned i = 0; i < NFATAL; i++) {
        handler_installed[i] = false;
        if (sigaction(fatal_signals[i], NULL, &old_actions[i]) != 0) continue;
        /* An ignored signal (nohup) stays ignored. */
        if (!(old_actions[i].sa_flags & SA_SIGINFO) && old_actions[i].sa_handler == SIG_IGN)
            continue;
        handler_installed[i] = sigaction(fatal_signals[i], &sa, NULL) == 0;
    }
}

static void remove_signal_handlers(void)
{
    for (unsigned i = 0; i < NFATAL; i++) {
        struct sigaction cur;
        if (!handler_installed[i]) continue;
        handler_installed[i] = false;
        /* Leave alone a handler someone installed after ours. */
        if (sigaction(fatal_signals[i], NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
            cur.sa_sigaction == fatal_signal_handler)
            sigaction(fatal_signals[i], &old_actions[i], NULL);
    }
}

/* Raw mode like cfmakeraw(): no echo, no line editing, no signals from keys (Ctrl-C goes to the
 * guest), 8-bit clean, and no output post-processing (the guest sends "\r\n" itself). */
static int enter_raw_mode(int fd)
{
    static atomic_bool atexit_done;
    if (tcgetattr(fd, &saved_tio) != 0) return -errno;
    if (!atomic_exchange(&atexit_done, true)) atexit(restore_at_exit);
    install_signal_handlers();
    struct termios raw = saved_tio;
    raw.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    raw.c_oflag &= ~(tcflag_t)OPOST;
    raw.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    raw.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
    raw.c_cflag |= CS8;
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    atomic_store(&raw_fd, fd);
    if (tcsetattr(fd, TCSANOW, &raw) != 0) {
        int err = errno;
        atomic_store(&raw_fd, -1);
        remove_signal_handlers();
        return -err;
    }
    return 0;
}

/* Write all of buf to fd, riding out EINTR, EAGAIN and partial writes. Returns 0 or -errno. */
static int write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            poll(&p, 1, -1);
        } else {
            return n < 0 ? -errno : -EIO;
        }
    }
    return 0;
}

static void stdio_write(struct chr *c, const uint8_t *buf, size_t len)
{
    struct chr_stdio *s = (struct chr_stdio *)c;
    pthread_mutex_lock(&s->wlock);
    int err = write_all(s->out_fd, buf, len);
    if (err && !s->write_failed) {
        s->write_failed = true; /* say it once; the guest keeps running without a console */
        log_warn("console: cannot write to stdout: %s; guest output is discarded", strerror(-err));
    }
    pthread_mutex_unlock(&s->wlock);
}

static void wake_reader(struct chr_stdio *s)
{
    uint64_t one = 1;
    /* Non-blocking eventfd: fails only when the counter is saturated, i.e. already signalled. */
    if (write(s->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_debug("console: eventfd write: %s", strerror(errno));
}

static void stdio_rx_ready(struct chr *c)
{
    wake_reader((struct chr_stdio *)c);
}

/* Offer buffered input to the device until it is all taken or the device is full. Each call of
 * the receiver holds rx_lock, so stdio_set_receiver can wait out a call in progress; a pending
 * swap makes this give way at once (it wakes the reader again afterwards). */
static void deliver(struct chr_stdio *s)
{
    while (!atomic_load(&s->swap_waiting)) {
        pthread_mutex_lock(&s->rx_lock);
        size_t n = s->len && s->base.rx ? s->base.rx(s->base.rx_opaque, s->buf, s->len) : 0;
        if (n > s->len) n = s->len;
        memmove(s->buf, s->buf + n, s->len - n);
        s->len -= n;
        pthread_mutex_unlock(&s->rx_lock);
        if (n == 0) break;
    }
}

static size_t stdio_held(struct chr *c, uint8_t *out, size_t max)
{
    struct chr_stdio *s = (struct chr_stdio *)c;
    pthread_mutex_lock(&s->rx_lock);
    size_t n = chr_inbuf_peek(s->buf, s->len, out, max);
    pthread_mutex_unlock(&s->rx_lock);
    return n;
}

static void stdio_put_back(struct chr *c, const uint8_t *buf, size_t len)
{
    struct chr_stdio *s = (struct chr_stdio *)c;
    pthread_mutex_lock(&s->rx_lock);
    chr_inbuf_prepend(s->buf, &s->len, sizeof(s->buf), buf, len);
    pthread_mutex_unlock(&s->rx_lock);
    wake_reader(s);
}

/* Append input for the device (reader thread), as far as the buffer has room. */
static void held_append(struct chr_stdio *s, const uint8_t *b, size_t n)
{
    pthread_mutex_lock(&s->rx_lock);
    if (n > sizeof(s->buf) - s->len) n = sizeof(s->buf) - s->len;
    memcpy(s->buf + s->len, b, n);
    s->len += n;
    pthread_mutex_unlock(&s->rx_lock);
}

static void stdio_set_receiver(struct chr *c, chr_rx_fn rx, void *opaque)
{
    struct chr_stdio *s = (struct chr_stdio *)c;
    atomic_fetch_add(&s->swap_waiting, 1);
    pthread_mutex_lock(&s->rx_lock);
    s->base.rx = rx;
    s->base.rx_opaque = opaque;
    pthread_mutex_unlock(&s->rx_lock);
    atomic_fetch_sub(&s->swap_waiting, 1);
    wake_reader(s); /* buffered input may be waiting for the new receiver */
}

static void handle_input(struct chr_stdio *s, const uint8_t *in, size_t n)
{
    if (!s->tty) {
        held_append(s, in, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        enum chr_escape_event ev;
        uint8_t out[2];
        unsigned k = chr_escape_feed(&s->esc, in[i], out, &ev);
        held_append(s, out, k);
        if (ev == CHR_ESC_HELP) {
            write_all(STDERR_FILENO, (const uint8_t *)chr_escape_help, strlen(chr_escape_help));
        } else if (ev == CHR_ESC_QUIT) {
            static const char msg[] = "\r\nvessel: terminated (C-a x)\r\n";
            write_all(STDERR_FILENO, (const uint8_t *)msg, sizeof(msg) - 1);
            if (s->on_quit) s->on_quit(s->ctx);
        } else if (ev == CHR_ESC_POWERDOWN) {
            static const char msg[] = "\r\nvessel: power-down request sent (C-a p)\r\n";
            write_all(STDERR_FILENO, (const uint8_t *)msg, sizeof(msg) - 1);
            void (*fn)(void *) = atomic_load(&s->on_powerdown);
            if (fn) fn(atomic_load(&s->powerdown_ctx));
        }
    }
}

/* Read what stdin has, if the buffer has room. Returns false at EOF or on a hard error. */
static bool read_input(struct chr_stdio *s)
{
    uint8_t tmp[READ_CHUNK];
    /* One spare byte: an escape armed by the previous chunk can add a byte (Ctrl-A + c). */
    size_t room = sizeof(s->buf) - s->len - 1;
    ssize_t n = read(s->in_fd, tmp, room < sizeof(tmp) ? room : sizeof(tmp));
    if (n > 0) {
        handle_input(s, tmp, (size_t)n);
        return true;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n < 0) log_debug("console: stdin read: %s; input stops", strerror(errno));
    return false;
}

static void stdio_free(struct chr_stdio *s)
{
    close(s->evfd);
    pthread_mutex_destroy(&s->wlock);
    pthread_mutex_destroy(&s->rx_lock);
    free(s);
    atomic_store(&instance_active, false);
}

static void *reader_thread(void *arg)
{
    struct chr_stdio *s = arg;
    bool eof = false;
    while (!atomic_load(&s->stop)) {
        deliver(s);
        struct pollfd p[2] = {{.fd = s->evfd, .events = POLLIN},
                              {.fd = s->in_fd, .events = POLLIN}};
        bool want_input = !eof && s->len + 2 <= sizeof(s->buf);
        int r = poll(p, want_input ? 2 : 1, s->len ? RETRY_POLL_MS : -1);
        if (r < 0) {
            if (errno == EINTR) continue;
            log_error("console: poll: %s; input stops", strerror(errno));
            break;
        }
        if (p[0].revents & POLLIN) {
            uint64_t v;
            if (read(s->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                log_debug("console: eventfd read: %s", strerror(errno));
        }
        if (want_input && p[1].revents) {
            if (p[1].revents & POLLNVAL)
                eof = true; /* stdin closed */
            else
                eof = !read_input(s);
        }
    }
    if (s->free_on_exit) {
        pthread_detach(pthread_self());
        stdio_free(s);
    }
    return NULL;
}

static void stdio_destroy(struct chr *c)
{
    struct chr_stdio *s = (struct chr_stdio *)c;
    atomic_store(&s->stop, true);
    if (s->tty) {
        chr_stdio_restore_terminal();
        remove_signal_handlers();
    }
    if (pthread_equal(pthread_self(), s->thread)) {
        /* Called from on_quit: the reader frees everything when it unwinds. */
        s->free_on_exit = true;
        return;
    }
    wake_reader(s);
    pthread_join(s->thread, NULL);
    stdio_free(s);
}

static const struct chr_ops stdio_ops = {
    .write = stdio_write,
    .rx_ready = stdio_rx_ready,
    .destroy = stdio_destroy,
    .held = stdio_held,
    .put_back = stdio_put_back,
    .set_receiver = stdio_set_receiver,
};

struct chr *chr_stdio_create(void (*on_quit)(void *ctx), void *ctx)
{
    if (atomic_exchange(&instance_active, true)) {
        errno = EBUSY;
        return NULL;
    }
    struct chr_stdio *s = calloc(1, sizeof(*s));
    if (!s) {
        atomic_store(&instance_active, false);
        errno = ENOMEM;
        return NULL;
    }
    s->base.ops = &stdio_ops;
    s->in_fd = STDIN_FILENO;
    s->out_fd = STDOUT_FILENO;
    s->on_quit = on_quit;
    s->ctx = ctx;
    pthread_mutex_init(&s->wlock, NULL);
    pthread_mutex_init(&s->rx_lock, NULL);
    s->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->evfd < 0) {
        int err = errno;
        pthread_mutex_destroy(&s->wlock);
        pthread_mutex_destroy(&s->rx_lock);
        free(s);
        atomic_store(&instance_active, false);
        errno = err;
        return NULL;
    }
    if (isatty(s->in_fd)) {
        int err = enter_raw_mode(s->in_fd);
        if (err == 0)
            s->tty = true;
        else
            log_warn("console: cannot put the terminal in raw mode: %s", strerror(-err));
    }
    int err = pthread_create(&s->thread, NULL, reader_thread, s);
    if (err) {
        if (s->tty) {
            chr_stdio_restore_terminal();
            remove_signal_handlers();
        }
        stdio_free(s);
        errno = err;
        return NULL;
    }
    return &s->base;
}

void chr_stdio_set_powerdown(struct chr *c, void (*fn)(void *ctx), void *ctx)
{
    struct chr_stdio *s = (struct chr_stdio *)c;
    atomic_store(&s->powerdown_ctx, ctx);
    atomic_store(&s->on_powerdown, fn);
}

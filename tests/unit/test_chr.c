#include "backend/chr/chr.h"
#include "backend/chr/escape.h"
#include "test.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* ---- the escape state machine ---- */

static size_t run_escape(const char *in, size_t n, uint8_t *out, int *quits, int *helps)
{
    struct chr_escape e = {0};
    size_t k = 0;
    *quits = *helps = 0;
    for (size_t i = 0; i < n; i++) {
        enum chr_escape_event ev;
        k += chr_escape_feed(&e, (uint8_t)in[i], out + k, &ev);
        *quits += ev == CHR_ESC_QUIT;
        *helps += ev == CHR_ESC_HELP;
    }
    return k;
}

TEST(chr_escape_plain_bytes_pass)
{
    uint8_t out[32];
    int q, h;
    size_t k = run_escape("ls -l\r\x03", 7, out, &q, &h);
    CHECK_EQ(k, 7);
    CHECK(memcmp(out, "ls -l\r\x03", 7) == 0);
    CHECK_EQ(q + h, 0);
}

TEST(chr_escape_commands)
{
    uint8_t out[32];
    int q, h;
    size_t k = run_escape("a\x01x", 3, out, &q, &h);
    CHECK_EQ(k, 1);
    CHECK_EQ(out[0], 'a');
    CHECK_EQ(q, 1);
    k = run_escape("\x01h\x01?", 4, out, &q, &h);
    CHECK_EQ(k, 0);
    CHECK_EQ(h, 2);
    CHECK_EQ(q, 0);
    /* Ctrl-A Ctrl-A sends one Ctrl-A */
    k = run_escape("\x01\x01z", 3, out, &q, &h);
    CHECK_EQ(k, 2);
    CHECK(memcmp(out, "\x01z", 2) == 0);
    /* Ctrl-A c (and any other byte) is not special: both go through */
    k = run_escape("\x01"
                   "c\x01"
                   "b",
                   4, out, &q, &h);
    CHECK_EQ(k, 4);
    CHECK(memcmp(out,
                 "\x01"
                 "c\x01"
                 "b",
                 4) == 0);
    CHECK_EQ(q + h, 0);
    /* Ctrl-A Ctrl-A x: the second Ctrl-A was consumed as data, x is plain */
    k = run_escape("\x01\x01x", 3, out, &q, &h);
    CHECK_EQ(k, 2);
    CHECK_EQ(q, 0);
    /* Ctrl-A p: the power-down request, nothing for the guest */
    struct chr_escape e = {0};
    enum chr_escape_event ev;
    CHECK_EQ(chr_escape_feed(&e, 0x01, out, &ev), 0);
    CHECK_EQ(ev, CHR_ESC_NONE);
    CHECK_EQ(chr_escape_feed(&e, 'p', out, &ev), 0);
    CHECK_EQ(ev, CHR_ESC_POWERDOWN);
    CHECK_EQ(chr_escape_feed(&e, 'p', out, &ev), 1); /* a plain p afterwards */
    CHECK_EQ(ev, CHR_ESC_NONE);
    /* the help text uses CRLF line ends for the raw terminal */
    CHECK(strstr(chr_escape_help, "C-a x") != NULL);
    CHECK(strstr(chr_escape_help, "C-a p") != NULL);
    CHECK(strstr(chr_escape_help, "\r\n") != NULL);
    for (const char *p = chr_escape_help; (p = strchr(p, '\n')); p++)
        CHECK(p > chr_escape_help && p[-1] == '\r');
}

/* ---- fd plumbing helpers ---- */

struct saved_fd {
    int fd, copy;
};
static struct saved_fd fd_replace(int fd, int with)
{
    struct saved_fd s = {fd, dup(fd)};
    dup2(with, fd);
    return s;
}
static void fd_restore(struct saved_fd s)
{
    dup2(s.copy, s.fd);
    close(s.copy);
}
static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* ---- a receiver that behaves like a UART: 16-byte FIFO, rx_ready when it drains ---- */

struct recv {
    pthread_mutex_t lock;
    struct chr *chr;
    uint8_t fifo[16];
    size_t nfifo;
    bool refused;
    uint8_t *got;
    size_t ngot, cap;
};

static size_t recv_rx(void *opaque, const uint8_t *buf, size_t len)
{
    struct recv *r = opaque;
    pthread_mutex_lock(&r->lock);
    size_t n = 0;
    while (n < len && r->nfifo < sizeof(r->fifo))
        r->fifo[r->nfifo++] = buf[n++];
    if (n < len) r->refused = true;
    pthread_mutex_unlock(&r->lock);
    return n;
}

/* The "guest" drains the FIFO; returns bytes drained. */
static size_t recv_drain(struct recv *r)
{
    pthread_mutex_lock(&r->lock);
    size_t n = r->nfifo;
    for (size_t i = 0; i < n && r->ngot < r->cap; i++)
        r->got[r->ngot++] = r->fifo[i];
    r->nfifo = 0;
    bool notify = r->refused;
    r->refused = false;
    pthread_mutex_unlock(&r->lock);
    if (notify) chr_rx_ready(r->chr);
    return n;
}

struct writer_arg {
    int fd;
    const uint8_t *buf;
    size_t len;
};
static void *writer(void *p)
{
    struct writer_arg *w = p;
    size_t off = 0;
    while (off < w->len) {
        ssize_t n = write(w->fd, w->buf + off, w->len - off);
        if (n <= 0) break;
        off += (size_t)n;
    }
    close(w->fd);
    return NULL;
}

static atomic_int quit_calls;
static void on_quit(void *ctx)
{
    (void)ctx;
    quit_calls++;
}

static atomic_int powerdown_calls;
static void on_powerdown(void *ctx)
{
    atomic_fetch_add((atomic_int *)ctx, 1);
}

TEST(chr_stdio_pipe_input_never_dropped)
{
    int p[2];
    CHECK(pipe(p) == 0);
    struct saved_fd in = fd_replace(STDIN_FILENO, p[0]);
    close(p[0]);

    const size_t len = 200000; /* far more than the pipe, the FIFO and the backend buffer */
    uint8_t *script = malloc(len);
    for (size_t i = 0; i < len; i++)
        script[i] = (uint8_t)(i * 7 + i / 251);
    script[10] = 0x01; /* Ctrl-A in a non-tty stream is data */
    script[11] = 'x';

    struct recv r = {.lock = PTHREAD_MUTEX_INITIALIZER, .cap = len};
    r.got = malloc(len);
    quit_calls = 0;
    struct chr *c = chr_stdio_create(on_quit, NULL);
    CHECK(c != NULL);
    if (!c) {
        fd_restore(in);
        return;
    }
    r.chr = c;
    chr_set_receiver(c, recv_rx, &r);
    struct writer_arg w = {p[1], script, len};
    pthread_t wt;
    pthread_create(&wt, NULL, writer, &w);
    for (int idle = 0; r.ngot < len && idle < 100000;) {
        if (recv_drain(&r) == 0) {
            idle++;
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL);
        } else {
            idle = 0;
        }
    }
    pthread_join(wt, NULL);
    CHECK_EQ(r.ngot, len);
    CHECK(memcmp(r.got, script, len) == 0);
    CHECK_EQ(quit_calls, 0);
    /* EOF reached: the backend keeps running and is destroyed cleanly */
    sleep_ms(10);
    chr_destroy(c);
    fd_restore(in);
    free(script);
    free(r.got);
}

TEST(chr_stdio_receiver_set_late)
{
    int p[2];
    CHECK(pipe(p) == 0);
    struct saved_fd in = fd_replace(STDIN_FILENO, p[0]);
    close(p[0]);
    struct chr *c = chr_stdio_create(NULL, NULL);
    CHECK(c != NULL);
    if (!c) {
        fd_restore(in);
        return;
    }
    CHECK(write(p[1], "early", 5) == 5);
    sleep_ms(30); /* read by the backend before anyone listens */
    struct recv r = {.lock = PTHREAD_MUTEX_INITIALIZER, .cap = 64, .chr = c};
    r.got = malloc(64);
    chr_set_receiver(c, recv_rx, &r);
    for (int i = 0; i < 1000 && r.ngot < 5; i++) {
        recv_drain(&r);
        sleep_ms(1);
    }
    CHECK_EQ(r.ngot, 5);
    CHECK(memcmp(r.got, "early", 5) == 0);
    close(p[1]);
    chr_destroy(c);
    fd_restore(in);
    free(r.got);
}

/* A slow receiver taking one byte per call, to catch a swap in the middle of a call. */
struct slow_recv {
    atomic_int in_call, calls_after_removal;
    atomic_bool removed;
    uint8_t got[64];
    atomic_size_t n;
};
static size_t slow_rx(void *opaque, const uint8_t *buf, size_t len)
{
    struct slow_recv *r = opaque;
    (void)len;
    if (atomic_load(&r->removed)) atomic_fetch_add(&r->calls_after_removal, 1);
    atomic_store(&r->in_call, 1);
    sleep_ms(2);
    size_t i = atomic_load(&r->n);
    if (i < sizeof(r->got)) {
        r->got[i] = buf[0];
        atomic_store(&r->n, i + 1);
    }
    atomic_store(&r->in_call, 0);
    return 1;
}

TEST(chr_stdio_receiver_swap_waits_and_keeps_input)
{
    int p[2];
    CHECK(pipe(p) == 0);
    struct saved_fd in = fd_replace(STDIN_FILENO, p[0]);
    close(p[0]);
    struct chr *c = chr_stdio_create(NULL, NULL);
    CHECK(c != NULL);
    if (!c) {
        fd_restore(in);
        return;
    }
    static struct slow_recv a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    char msg[41];
    for (int i = 0; i < 40; i++)
        msg[i] = (char)('A' + i % 26);
    chr_set_receiver(c, slow_rx, &a);
    CHECK(write(p[1], msg, 40) == 40);
    for (int i = 0; i < 2000 && atomic_load(&a.n) < 5; i++)
        sleep_ms(1);
    /* as machine_destroy does before freeing the UART (e.g. on guest reboot) */
    chr_set_receiver(c, NULL, NULL);
    CHECK_EQ(atomic_load(&a.in_call), 0);
    atomic_store(&a.removed, true);
    sleep_ms(20);
    CHECK_EQ(atomic_load(&a.calls_after_removal), 0);
    size_t na = atomic_load(&a.n);
    CHECK(na >= 5 && na < 40);
    chr_set_receiver(c, slow_rx, &b); /* the next machine's UART */
    for (int i = 0; i < 3000 && na + atomic_load(&b.n) < 40; i++)
        sleep_ms(1);
    CHECK_EQ(na + atomic_load(&b.n), 40);
    CHECK(memcmp(a.got, msg, na) == 0);
    CHECK(memcmp(b.got, msg + na, 40 - na) == 0);
    close(p[1]);
    chr_destroy(c);
    fd_restore(in);
}

TEST(chr_stdio_output_and_single_instance)
{
    int in[2], out[2];
    CHECK(pipe(in) == 0 && pipe(out) == 0);
    struct saved_fd sin = fd_replace(STDIN_FILENO, in[0]);
    fflush(stdout);
    struct saved_fd sout = fd_replace(STDOUT_FILENO, out[1]);
    close(in[0]);
    close(out[1]);
    struct chr *c = chr_stdio_create(NULL, NULL);
    CHECK(c != NULL);
    if (c) {
        errno = 0;
        CHECK(chr_stdio_create(NULL, NULL) == NULL);
        CHECK_EQ(errno, EBUSY);
        chr_write(c, (const uint8_t *)"hello\r\n", 7);
        uint8_t big[100000];
        memset(big, 'z', sizeof(big));
        /* bigger than the pipe: drain it concurrently through a reader */
        fcntl(out[0], F_SETFL, O_NONBLOCK);
        pid_t pid = fork();
        if (pid == 0) {
            /* non-blocking stdout: the backend must ride out EAGAIN and partial writes */
            fcntl(STDOUT_FILENO, F_SETFL, O_NONBLOCK);
            chr_write(c, big, sizeof(big));
            _exit(0);
        }
        uint8_t buf[4096];
        size_t total = 0;
        bool hello_ok = false;
        for (int i = 0; i < 5000 && total < 7 + sizeof(big); i++) {
            ssize_t n = read(out[0], buf, sizeof(buf));
            if (n > 0) {
                if (total == 0) hello_ok = n >= 7 && memcmp(buf, "hello\r\n", 7) == 0;
                total += (size_t)n;
            } else {
                sleep_ms(1);
            }
        }
        int st;
        waitpid(pid, &st, 0);
        CHECK(hello_ok);
        CHECK_EQ(total, 7 + sizeof(big));
        chr_destroy(c);
    }
    fd_restore(sout);
    fd_restore(sin);
    close(in[1]);
    close(out[0]);
    /* the instance slot is free again */
    c = chr_stdio_create(NULL, NULL);
    CHECK(c != NULL);
    if (c) chr_destroy(c);
}

/* ---- terminal mode through a pseudo-terminal ---- */

static int open_pty(int *master)
{
    *master = posix_openpt(O_RDWR | O_NOCTTY);
    if (*master < 0 || grantpt(*master) || unlockpt(*master)) return -1;
    return open(ptsname(*master), O_RDWR | O_NOCTTY);
}

TEST(chr_stdio_tty_raw_mode_escapes_and_restore)
{
    int master, slave = open_pty(&master);
    CHECK(slave >= 0);
    if (slave < 0) return;
    struct termios before;
    tcgetattr(slave, &before);
    CHECK(before.c_lflag & ICANON);
    int errp[2];
    CHECK(pipe(errp) == 0);
    struct saved_fd sin = fd_replace(STDIN_FILENO, slave);
    struct saved_fd serr = fd_replace(STDERR_FILENO, errp[1]);
    close(errp[1]);

    quit_calls = 0;
    struct chr *c = chr_stdio_create(on_quit, NULL);
    CHECK(c != NULL);
    if (c) {
        struct termios raw;
        tcgetattr(slave, &raw);
        CHECK(!(raw.c_lflag & (ICANON | ECHO | ISIG)));
        CHECK(!(raw.c_oflag & OPOST));
        CHECK(!(raw.c_iflag & ICRNL));
        struct recv r = {.lock = PTHREAD_MUTEX_INITIALIZER, .cap = 64, .chr = c};
        r.got = malloc(64);
        chr_set_receiver(c, recv_rx, &r);
        atomic_store(&powerdown_calls, 0);
        chr_stdio_set_powerdown(c, on_powerdown, &powerdown_calls);
        /* "ab", C-a C-a, C-a c, C-a h (help), "z", C-a p (power down), C-a x (quit) */
        const char keys[] = "ab\x01\x01\x01"
                            "c\x01hz\x01p\x01x";
        CHECK(write(master, keys, sizeof(keys) - 1) == (ssize_t)sizeof(keys) - 1);
        for (int i = 0; i < 2000 && quit_calls == 0; i++) {
            recv_drain(&r);
            sleep_ms(1);
        }
        recv_drain(&r);
        CHECK_EQ(quit_calls, 1);
        CHECK_EQ(atomic_load(&powerdown_calls), 1);
        CHECK_EQ(r.ngot, 6);
        CHECK(memcmp(r.got,
                     "ab\x01\x01"
                     "cz",
                     6) == 0);
        chr_destroy(c);
        free(r.got);
        char help[512] = {0};
        fcntl(errp[0], F_SETFL, O_NONBLOCK);
        ssize_t n = read(errp[0], help, sizeof(help) - 1);
        CHECK(n > 0 && strstr(help, "C-a x") != NULL);
        CHECK(n > 0 && strstr(help, "power-down request sent") != NULL);
    }
    struct termios after;
    tcgetattr(slave, &after);
    CHECK(after.c_lflag & ICANON);
    CHECK(after.c_lflag & ECHO);
    CHECK_EQ(after.c_oflag, before.c_oflag);
    CHECK_EQ(after.c_iflag, before.c_iflag);
    /* our signal handlers are gone again */
    struct sigaction sa;
    sigaction(SIGTERM, NULL, &sa);
    CHECK(!(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL);
    fd_restore(serr);
    fd_restore(sin);
    close(errp[0]);
    close(slave);
    close(master);
}

static void child_with_tty_then_signal(int slave, int sig)
{
    /* The default action, as in an interactive shell: run under nohup or as a background job
     * of a script, the test inherits SIGHUP/SIGINT ignored, and vessel keeps an ignored signal
     * ignored (it leaves the terminal restored either way). */
    if (sig) signal(sig, SIG_DFL);
    dup2(slave, STDIN_FILENO);
    struct chr *c = chr_stdio_create(NULL, NULL);
    if (!c) _exit(3);
    struct termios t;
    tcgetattr(STDIN_FILENO, &t);
    if (t.c_lflag & ICANON) _exit(4);
    if (sig == SIGSEGV) {
        volatile uintptr_t bad = 16; /* a real fault, not raise() */
        *(volatile int *)bad = 1;
    }
    if (sig) raise(sig);
    exit(0); /* the atexit path */
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED_BY_CLANG 1
#endif
#endif
#ifndef SANITIZED_BY_CLANG
#define SANITIZED_BY_CLANG 0
#endif

static void check_child_restores(int sig)
{
    int master, slave = open_pty(&master);
    CHECK(slave >= 0);
    if (slave < 0) return;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) child_with_tty_then_signal(slave, sig);
    int st = 0;
    waitpid(pid, &st, 0);
    if (sig) {
        CHECK(WIFSIGNALED(st));
        CHECK_EQ(WTERMSIG(st), sig);
    } else {
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    struct termios t;
    tcgetattr(slave, &t);
    CHECK(t.c_lflag & ICANON);
    CHECK(t.c_lflag & ECHO);
    close(slave);
    close(master);
}

TEST(chr_stdio_restores_terminal_on_signals_and_exit)
{
    check_child_restores(SIGTERM);
    check_child_restores(SIGHUP);
    check_child_restores(SIGINT);
    check_child_restores(SIGABRT);
    check_child_restores(0);
}

TEST(chr_stdio_restores_terminal_on_segv)
{
    /* ASan/TSan catch SIGSEGV themselves and exit without re-raising: only meaningful without */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || SANITIZED_BY_CLANG
    CHECK(1);
#else
    check_child_restores(SIGSEGV);
#endif
}

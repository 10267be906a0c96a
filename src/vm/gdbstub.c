/* GDB remote serial protocol (all-stop), one client at a time, on its own thread.
 * Harts are parked while the debugger holds the machine (hart_pause/hart_resume). */
#include "vm/gdbstub.h"
#include "util/log.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define PKT_MAX 4096

struct gdbstub {
    int listen_fd, client_fd, evfd;
    pthread_t thread;
    bool thread_started;
    _Atomic int quit;
    pthread_mutex_t lock; /* m, running, dbg */
    struct machine *m;
    struct hart_debug dbg;
    bool running;          /* harts run (the debugger is not holding them) */
    unsigned cur;          /* hart for register/memory/step requests */
    _Atomic int stop_hart; /* hart that stopped on its own, -1 if none */
    bool wait_for_debugger;
    char in[PKT_MAX + 8];
    size_t inlen;
};

static const char *const gpr_names[32] = {"zero", "ra", "sp",  "gp",  "tp", "t0", "t1", "t2",
                                          "fp",   "s1", "a0",  "a1",  "a2", "a3", "a4", "a5",
                                          "a6",   "a7", "s2",  "s3",  "s4", "s5", "s6", "s7",
                                          "s8",   "s9", "s10", "s11", "t3", "t4", "t5", "t6"};
static const char *const fpr_names[32] = {
    "ft0", "ft1", "ft2", "ft3", "ft4",  "ft5",  "ft6", "ft7", "fs0",  "fs1", "fa0",
    "fa1", "fa2", "fa3", "fa4", "fa5",  "fa6",  "fa7", "fs2", "fs3",  "fs4", "fs5",
    "fs6", "fs7", "fs8", "fs9", "fs10", "fs11", "ft8", "ft9", "ft10", "ft11"};

/* ---- hart control ---- */

static void hart_stopped_cb(void *ctx, struct hart *h)
{
    struct gdbstub *g = ctx;
    int expected = -1;
    atomic_compare_exchange_strong(&g->stop_hart, &expected, (int)h->id);
    uint64_t one = 1;
    if (write(g->evfd, &one, sizeof(one)) < 0) { /* the stub polls again anyway */
    }
}

static void pause_all(struct gdbstub *g)
{
    for (unsigned i = 0; i < g->m->nharts; i++)
        hart_pause(&g->m->harts[i]);
    g->running = false;
}

static void resume_all(struct gdbstub *g)
{
    atomic_store(&g->stop_hart, -1);
    g->running = true;
    for (unsigned i = 0; i < g->m->nharts; i++)
        hart_resume(&g->m->harts[i], false);
}

/* Breakpoints or watchpoints changed: every hart must decode again and refill its TLB to see
 * them (harts are parked). */
static void refresh_code(struct gdbstub *g)
{
    for (unsigned i = 0; i < g->m->nharts; i++)
        trigger_update(&g->m->harts[i]); /* also forgets decoded code */
}

/* The debugger leaves: no breakpoint or watchpoint of its may stop the guest any more. */
static void clear_breakpoints(struct gdbstub *g)
{
    g->dbg.nbp = g->dbg.nhwbp = g->dbg.nwatch = 0;
    refresh_code(g);
}

/* ---- packet I/O ---- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void send_all(struct gdbstub *g, const char *buf, size_t len)
{
    while (len && g->client_fd >= 0) {
        ssize_t n = write(g->client_fd, buf, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            close(g->client_fd);
            g->client_fd = -1;
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

static void send_packet(struct gdbstub *g, const char *data)
{
    static const char hex[] = "0123456789abcdef";
    size_t len = strlen(data);
    char *pkt = malloc(len + 5);
    if (!pkt) return;
    unsigned sum = 0;
    pkt[0] = '$';
    for (size_t i = 0; i < len; i++) {
        pkt[1 + i] = data[i];
        sum += (unsigned char)data[i];
    }
    pkt[1 + len] = '#';
    pkt[2 + len] = hex[(sum >> 4) & 15];
    pkt[3 + len] = hex[sum & 15];
    send_all(g, pkt, len + 4);
    free(pkt);
}

static void send_fmt(struct gdbstub *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_fmt(struct gdbstub *g, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    send_packet(g, buf);
}

static void put_hex_le(char *out, uint64_t v, unsigned bytes)
{
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < bytes; i++) {
        uint8_t b = (uint8_t)(v >> (8 * i));
        out[2 * i] = hex[b >> 4];
        out[2 * i + 1] = hex[b & 15];
    }
    out[2 * bytes] = 0;
}

/* Parse little-endian hex of up to 8 bytes; returns characters consumed or -1. */
static int get_hex_le(const char *s, unsigned bytes, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned i = 0; i < bytes; i++) {
        int hi = hexval(s[2 * i]), lo = hi < 0 ? -1 : hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        r |= (uint64_t)((hi << 4) | lo) << (8 * i);
    }
    *v = r;
    return (int)(2 * bytes);
}

static bool parse_hex(const char **s, uint64_t *v)
{
    uint64_t r = 0;
    int n = 0, d;
    while ((d = hexval(**s)) >= 0 && n < 16) {
        r = (r << 4) | (uint64_t)d;
        (*s)++;
        n++;
    }
    *v = r;
    return n > 0 && hexval(**s) < 0;
}

/* ---- registers and memory ---- */

/* GDB numbering for RISC-V: 0-31 x, 32 pc, 33-64 f, 65 + CSR number for CSRs. */
static bool reg_get(struct hart *h, unsigned n, uint64_t *v, unsigned *bytes)
{
    *bytes = 8;
    if (n < 32)
        *v = h->x[n];
    else if (n == 32)
        *v = h->pc;
    else if (n <= 64)
        *v = h->fp.f[n - 33];
    else if (n == 66 || n == 67 || n == 68) {
        *bytes = 4;
        *v = n == 66 ? h->fp.fflags : n == 67 ? h->fp.frm : (h->fp.fflags | (h->fp.frm << 5));
    } else
        return false;
    return true;
}

static bool reg_set(struct hart *h, unsigned n, uint64_t v)
{
    if (n == 0) return true;
    if (n < 32)
        h->x[n] = v;
    else if (n == 32)
        h->pc = v & ~1ull;
    else if (n <= 64)
        h->fp.f[n - 33] = v;
    else if (n == 66)
        h->fp.fflags = v & 0x1f;
    else if (n == 67)
        h->fp.frm = v & 7;
    else if (n == 68) {
        h->fp.fflags = v & 0x1f;
        h->fp.frm = (v >> 5) & 7;
    } else
        return false;
    return true;
}

/* Guest RAM pointer for [va, va+len) within one page, through h's translation. */
static uint8_t *guest_ptr(struct gdbstub *g, struct hart *h, uint64_t va, size_t len)
{
    uint64_t pa;
    if (mmu_debug_translate(h, va, &pa) != 0) return NULL;
    uint64_t base = g->m->harts[0].env.ram_base, size = g->m->harts[0].env.ram_size;
    if (pa < base || pa - base >= size || len > size - (pa - base)) return NULL;
    return g->m->ram + (pa - base);
}

static void handle_mem_read(struct gdbstub *g, struct hart *h, const char *args)
{
    uint64_t addr, len;
    const char *p = args;
    if (!parse_hex(&p, &addr) || *p++ != ',' || !parse_hex(&p, &len) || len > PKT_MAX / 2 - 8) {
        send_packet(g, "E01");
        return;
    }
    char *out = malloc(2 * len + 1);
    if (!out) return;
    out[0] = 0;
    for (uint64_t i = 0; i < len; i++) {
        uint8_t *ptr = guest_ptr(g, h, addr + i, 1);
        if (!ptr) {
            if (i == 0) {
                free(out);
                send_packet(g, "E14");
                return;
            }
            break;
        }
        put_hex_le(out + 2 * i, *ptr, 1);
    }
    send_packet(g, out);
    free(out);
}

static void handle_mem_write(struct gdbstub *g, struct hart *h, const char *args)
{
    uint64_t addr, len;
    const char *p = args;
    if (!parse_hex(&p, &addr) || *p++ != ',' || !parse_hex(&p, &len) || *p++ != ':' ||
        strlen(p) != 2 * len) {
        send_packet(g, "E01");
        return;
    }
    for (uint64_t i = 0; i < len; i++) {
        uint64_t b;
        uint8_t *ptr = guest_ptr(g, h, addr + i, 1);
        if (!ptr || get_hex_le(p + 2 * i, 1, &b) < 0) {
            send_packet(g, "E14");
            return;
        }
        *ptr = (uint8_t)b;
    }
    refresh_code(g);
    send_packet(g, "OK");
}

/* Insert v into (or remove it from) a small unordered set of n addresses; false when
 * inserting into a full one. Inserting a member or removing a non-member changes nothing. */
static bool addr_set_update(uint64_t *set, unsigned *n, unsigned max, uint64_t v, bool insert)
{
    unsigned i;
    for (i = 0; i < *n && set[i] != v; i++)
        ;
    if (insert && i == *n) {
        if (*n == max) return false;
        set[(*n)++] = v;
    } else if (!insert && i < *n) {
        set[i] = set[--*n];
    }
    return true;
}

/* Z1 (hbreak) and Z2/Z3/Z4 (watch, rwatch, awatch) on virtual addresses, through the trigger
 * engine (trigger.c) with triggers of the debugger's own that the guest cannot see or change.
 * A full set answers E28 (ENOSPC), as GDB then tells the user it ran out of them. */
#define WATCH_MAX_LEN 4096
static void handle_hw_breakpoint(struct gdbstub *g, bool insert, unsigned type, uint64_t addr,
                                 uint64_t len)
{
    struct hart_debug *d = &g->dbg;
    if (type == 1) {
        if (!addr_set_update(d->hwbp, &d->nhwbp, DEBUG_MAX_HWBP, addr, insert)) {
            send_packet(g, "E28");
            return;
        }
    } else {
        if (len == 0 || len > WATCH_MAX_LEN || addr + len - 1 < addr) {
            send_packet(g, "E22");
            return;
        }
        unsigned kind = type == 2 ? TRIG_STORE : type == 3 ? TRIG_LOAD : TRIG_LOAD | TRIG_STORE;
        unsigned i;
        for (i = 0; i < d->nwatch; i++)
            if (d->watch[i].addr == addr && d->watch[i].len == len && d->watch[i].kind == kind)
                break;
        if (insert && i == d->nwatch) {
            if (d->nwatch == DEBUG_MAX_WATCH) {
                send_packet(g, "E28");
                return;
            }
            d->watch[d->nwatch++] = (struct debug_watch){addr, len, kind};
        } else if (!insert && i < d->nwatch) {
            d->watch[i] = d->watch[--d->nwatch];
        }
    }
    refresh_code(g);
    send_packet(g, "OK");
}

static void handle_breakpoint(struct gdbstub *g, struct hart *h, bool insert, const char *args)
{
    uint64_t type, addr, kind;
    const char *p = args;
    if (!parse_hex(&p, &type) || *p++ != ',' || !parse_hex(&p, &addr) || *p++ != ',' ||
        !parse_hex(&p, &kind)) {
        send_packet(g, "E01");
        return;
    }
    if (type > 4) {
        send_packet(g, "");
        return;
    }
    if (type >= 1) {
        handle_hw_breakpoint(g, insert, (unsigned)type, addr, kind);
        return;
    }
    uint64_t pa;
    if (mmu_debug_translate(h, addr, &pa) != 0) {
        send_packet(g, "E14");
        return;
    }
    struct hart_debug *d = &g->dbg;
    if (!addr_set_update(d->bp_pa, &d->nbp, DEBUG_MAX_BREAKPOINTS, pa, insert)) {
        send_packet(g, "E28");
        return;
    }
    refresh_code(g);
    send_packet(g, "OK");
}

static const char *target_xml(void)
{
    static char xml[8192];
    if (xml[0]) return xml;
    size_t n = (size_t)snprintf(xml, sizeof(xml),
                                "<?xml version=\"1.0\"?><!DOCTYPE target SYSTEM \"gdb-target.dtd\">"
                                "<target version=\"1.0\"><architecture>riscv:rv64</architecture>"
                                "<feature name=\"org.gnu.gdb.riscv.cpu\">");
    for (int i = 0; i < 32; i++)
        n += (size_t)snprintf(xml + n, sizeof(xml) - n,
                              "<reg name=\"%s\" bitsize=\"64\" type=\"%s\" regnum=\"%d\"/>",
                              gpr_names[i], i == 2 || i == 8 ? "data_ptr" : "int", i);
    n += (size_t)snprintf(xml + n, sizeof(xml) - n,
                          "<reg name=\"pc\" bitsize=\"64\" type=\"code_ptr\" regnum=\"32\"/>"
                          "</feature><feature name=\"org.gnu.gdb.riscv.fpu\">");
    for (int i = 0; i < 32; i++)
        n +=
            (size_t)snprintf(xml + n, sizeof(xml) - n,
                             "<reg name=\"%s\" bitsize=\"64\" type=\"ieee_double\" regnum=\"%d\"/>",
                             fpr_names[i], 33 + i);
    snprintf(xml + n, sizeof(xml) - n,
             "<reg name=\"fflags\" bitsize=\"32\" type=\"int\" regnum=\"66\"/>"
             "<reg name=\"frm\" bitsize=\"32\" type=\"int\" regnum=\"67\"/>"
             "<reg name=\"fcsr\" bitsize=\"32\" type=\"int\" regnum=\"68\"/></feature></target>");
    return xml;
}

static void handle_query(struct gdbstub *g, const char *q)
{
    if (!strncmp(q, "qSupported", 10)) {
        send_fmt(g, "PacketSize=%x;qXfer:features:read+;swbreak+;hwbreak+", PKT_MAX);
    } else if (!strcmp(q, "qAttached")) {
        send_packet(g, "1");
    } else if (!strcmp(q, "qC")) {
        send_fmt(g, "QC%x", g->cur + 1);
    } else if (!strcmp(q, "qfThreadInfo")) {
        char buf[512] = "m";
        size_t n = 1;
        for (unsigned i = 0; i < g->m->nharts; i++)
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%x", i ? "," : "", i + 1);
        send_packet(g, buf);
    } else if (!strcmp(q, "qsThreadInfo")) {
        send_packet(g, "l");
    } else if (!strncmp(q, "qXfer:features:read:target.xml:", 31)) {
        const char *p = q + 31;
        uint64_t off, len;
        if (!parse_hex(&p, &off) || *p++ != ',' || !parse_hex(&p, &len)) {
            send_packet(g, "E01");
            return;
        }
        const char *xml = target_xml();
        size_t total = strlen(xml);
        if (len > PKT_MAX - 16) len = PKT_MAX - 16;
        if (off >= total) {
            send_packet(g, "l");
            return;
        }
        char *out = malloc(len + 2);
        if (!out) return;
        size_t n = total - off < len ? total - off : len;
        out[0] = off + n >= total ? 'l' : 'm';
        memcpy(out + 1, xml + off, n);
        out[n + 1] = 0;
        send_packet(g, out);
        free(out);
    } else {
        send_packet(g, "");
    }
}

/* Stop reply; a hart stopped by one of the debugger's triggers says which (GDB remote
 * protocol, "Stop Reply Packets": watch/rwatch/awatch:ADDR, hwbreak). */
static void report_stop(struct gdbstub *g, int sig)
{
    const struct hart *h = &g->m->harts[g->cur];
    if (h->debug_reason != DEBUG_TRIGGER) {
        send_fmt(g, "T%02xthread:%x;", sig, g->cur + 1);
        return;
    }
    unsigned k = h->debug_hit_kind;
    if (k == 0) {
        send_fmt(g, "T%02xthread:%x;hwbreak:;", sig, g->cur + 1);
        return;
    }
    send_fmt(g, "T%02xthread:%x;%s:%llx;", sig, g->cur + 1,
             k == TRIG_STORE  ? "watch"
             : k == TRIG_LOAD ? "rwatch"
                              : "awatch",
             (unsigned long long)h->debug_hit_addr);
}

/* One packet while the machine is held by the debugger (or 'c'/'s' letting it go). */
static void handle_packet(struct gdbstub *g, char *pkt)
{
    struct hart *h = &g->m->harts[g->cur];
    char out[PKT_MAX];
    switch (pkt[0]) {
    case '?': report_stop(g, 5); break;
    case 'g': {
        size_t n = 0;
        for (unsigned r = 0; r < 33; r++, n += 16)
            put_hex_le(out + n, r < 32 ? h->x[r] : h->pc, 8);
        send_packet(g, out);
        break;
    }
    case 'G': {
        const char *p = pkt + 1;
        for (unsigned r = 0; r < 33 && strlen(p) >= 16; r++, p += 16) {
            uint64_t v;
            if (get_hex_le(p, 8, &v) < 0) break;
            reg_set(h, r, v);
        }
        send_packet(g, "OK");
        break;
    }
    case 'p': {
        const char *p = pkt + 1;
        uint64_t n, v;
        unsigned bytes;
        if (!parse_hex(&p, &n) || n > 4096 || !reg_get(h, (unsigned)n, &v, &bytes)) {
            send_packet(g, "E01");
            break;
        }
        put_hex_le(out, v, bytes);
        send_packet(g, out);
        break;
    }
    case 'P': {
        const char *p = pkt + 1;
        uint64_t n, v;
        if (!parse_hex(&p, &n) || *p++ != '=' || strlen(p) < 8 || n > 4096) {
            send_packet(g, "E01");
            break;
        }
        unsigned bytes = (unsigned)(strlen(p) / 2 > 8 ? 8 : strlen(p) / 2);
        if (get_hex_le(p, bytes, &v) < 0 || !reg_set(h, (unsigned)n, v))
            send_packet(g, "E01");
        else
            send_packet(g, "OK");
        break;
    }
    case 'm': handle_mem_read(g, h, pkt + 1); break;
    case 'M': handle_mem_write(g, h, pkt + 1); break;
    case 'Z': handle_breakpoint(g, h, true, pkt + 1); break;
    case 'z': handle_breakpoint(g, h, false, pkt + 1); break;
    case 'H': { /* Hg/Hc thread: -1 or 0 mean any thread */
        const char *p = pkt + 2;
        uint64_t t = 0;
        if (p[0] != '-' && !parse_hex(&p, &t)) {
            send_packet(g, "E01");
        } else if (p[0] != '-' && t > g->m->nharts) {
            send_packet(g, "E01");
        } else {
            if (p[0] != '-' && t > 0) g->cur = (unsigned)t - 1;
            send_packet(g, "OK");
        }
        break;
    }
    case 'T': {
        const char *p = pkt + 1;
        uint64_t t;
        send_packet(g, parse_hex(&p, &t) && t >= 1 && t <= g->m->nharts ? "OK" : "E01");
        break;
    }
    case 'c':
        if (pkt[1]) {
            uint64_t a;
            const char *p = pkt + 1;
            if (parse_hex(&p, &a)) h->pc = a;
        }
        resume_all(g);
        break;
    case 's':
        atomic_store(&g->stop_hart, -1);
        g->running = true;
        hart_resume(h, true);
        break;
    case 'D':
        clear_breakpoints(g);
        send_packet(g, "OK");
        resume_all(g);
        close(g->client_fd);
        g->client_fd = -1;
        break;
    case 'k':
        machine_post_event(g->m, MEV_QUIT, 0, NULL);
        resume_all(g);
        close(g->client_fd);
        g->client_fd = -1;
        break;
    case 'q': handle_query(g, pkt); break;
    default: send_packet(g, ""); break;
    }
}

/* Consume buffered input: acks, Ctrl-C and complete packets. */
static void process_input(struct gdbstub *g)
{
    size_t i = 0;
    while (i < g->inlen && g->client_fd >= 0) {
        char c = g->in[i];
        if (c == 0x03) { /* interrupt */
            i++;
            if (g->m && g->running) {
                pause_all(g);
                report_stop(g, 2);
            }
            continue;
        }
        if (c != '$') {
            i++; /* '+', '-' and noise */
            continue;
        }
        char *hash = memchr(g->in + i, '#', g->inlen - i);
        if (!hash || (size_t)(hash - g->in) + 3 > g->inlen) break; /* incomplete */
        size_t end = (size_t)(hash - g->in);
        unsigned sum = 0;
        for (size_t k = i + 1; k < end; k++)
            sum += (unsigned char)g->in[k];
        int hi = hexval(hash[1]), lo = hexval(hash[2]);
        if (hi < 0 || lo < 0 || (unsigned)((hi << 4) | lo) != (sum & 0xff)) {
            send_all(g, "-", 1);
        } else {
            send_all(g, "+", 1);
            g->in[end] = 0;
            if (g->m && !g->running)
                handle_packet(g, g->in + i + 1);
            else if (g->m)
                ; /* running: only Ctrl-C is meaningful */
            else
                send_packet(g, "E01");
        }
        i = end + 3;
    }
    memmove(g->in, g->in + i, g->inlen - i);
    g->inlen -= i;
}

static void *stub_thread(void *arg)
{
    struct gdbstub *g = arg;
    while (!atomic_load(&g->quit)) {
        struct pollfd p[3] = {{g->evfd, POLLIN, 0},
                              {g->client_fd >= 0 ? g->client_fd : g->listen_fd, POLLIN, 0},
                              {-1, 0, 0}};
        if (poll(p, 2, 500) < 0 && errno != EINTR) break;
        pthread_mutex_lock(&g->lock);
        if (p[0].revents & POLLIN) {
            uint64_t v;
            if (read(g->evfd, &v, sizeof(v)) < 0) { /* nothing to do */
            }
        }
        int who = atomic_load(&g->stop_hart);
        if (g->m && g->running && who >= 0) { /* a hart hit a breakpoint or finished a step */
            pause_all(g);
            g->cur = (unsigned)who;
            if (g->client_fd >= 0) report_stop(g, 5);
        }
        if (g->client_fd < 0 && (p[1].revents & POLLIN)) {
            int fd = accept(g->listen_fd, NULL, NULL);
            if (fd >= 0) {
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                g->client_fd = fd;
                g->inlen = 0;
                if (g->m && g->running) pause_all(g); /* like QEMU: attaching stops the machine */
            }
        } else if (g->client_fd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = read(g->client_fd, g->in + g->inlen, PKT_MAX - g->inlen);
            if (n <= 0) {
                close(g->client_fd);
                g->client_fd = -1;
                if (g->m && !g->running) { /* debugger gone: let the guest run */
                    clear_breakpoints(g);
                    resume_all(g);
                }
            } else {
                g->inlen += (size_t)n;
                process_input(g);
                if (g->inlen >= PKT_MAX) /* garbage that never forms a packet */
                    g->inlen = 0;
            }
        }
        pthread_mutex_unlock(&g->lock);
    }
    return NULL;
}

int gdbstub_create(struct gdbstub **out, int port, char *err, size_t errlen)
{
    struct gdbstub *g = calloc(1, sizeof(*g));
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    g->client_fd = -1;
    atomic_store(&g->stop_hart, -1);
    pthread_mutex_init(&g->lock, NULL);
    g->dbg.stopped = hart_stopped_cb;
    g->dbg.ctx = g;
    g->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    g->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (g->evfd < 0 || g->listen_fd < 0 ||
        setsockopt(g->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(g->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(g->listen_fd, 1) < 0) {
        int e = errno;
        snprintf(err, errlen, "--gdb %d: cannot listen on 127.0.0.1:%d: %s", port, port,
                 strerror(e));
        gdbstub_destroy(g);
        return -e;
    }
    if (pthread_create(&g->thread, NULL, stub_thread, g) != 0) {
        snprintf(err, errlen, "cannot start the gdb stub thread");
        gdbstub_destroy(g);
        return -EAGAIN;
    }
    g->thread_started = true;
    *out = g;
    return 0;
}

struct gdbstub *gdbstub_create_detached(int reply_fd)
{
    struct gdbstub *g = calloc(1, sizeof(*g));
    if (!g) return NULL;
    g->listen_fd = g->evfd = -1;
    g->client_fd = reply_fd;
    atomic_store(&g->stop_hart, -1);
    pthread_mutex_init(&g->lock, NULL);
    g->dbg.stopped = hart_stopped_cb;
    g->dbg.ctx = g;
    return g;
}

void gdbstub_feed(struct gdbstub *g, const uint8_t *buf, size_t len)
{
    pthread_mutex_lock(&g->lock);
    while (len && g->client_fd >= 0) {
        size_t n = PKT_MAX - g->inlen < len ? PKT_MAX - g->inlen : len;
        memcpy(g->in + g->inlen, buf, n);
        g->inlen += n;
        buf += n;
        len -= n;
        process_input(g);
        if (g->inlen >= PKT_MAX) g->inlen = 0;
    }
    pthread_mutex_unlock(&g->lock);
}

void gdbstub_attach(struct gdbstub *g, struct machine *m, bool wait_for_debugger)
{
    pthread_mutex_lock(&g->lock);
    g->m = m;
    g->cur = 0;
    g->running = !wait_for_debugger;
    atomic_store(&g->stop_hart, -1);
    for (unsigned i = 0; i < m->nharts; i++) {
        m->harts[i].debug = &g->dbg;
        if (wait_for_debugger) /* harts have not started: they park at once */
            atomic_store(&m->harts[i].pause_req, 1);
    }
    pthread_mutex_unlock(&g->lock);
}

void gdbstub_detach(struct gdbstub *g)
{
    pthread_mutex_lock(&g->lock);
    g->m = NULL;
    pthread_mutex_unlock(&g->lock);
}

void gdbstub_destroy(struct gdbstub *g)
{
    if (!g) return;
    atomic_store(&g->quit, 1);
    if (g->thread_started) {
        uint64_t one = 1;
        if (write(g->evfd, &one, sizeof(one)) < 0) { /* poll times out anyway */
        }
        pthread_join(g->thread, NULL);
    }
    if (g->client_fd >= 0) close(g->client_fd);
    if (g->listen_fd >= 0) close(g->listen_fd);
    if (g->evfd >= 0) close(g->evfd);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

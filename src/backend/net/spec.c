/* The --net / --mac syntax (net.h): no backend code, so the configuration parser (vm/config.c)
 * and its fuzzer link it alone. */
#include "backend/net/net.h"
#include "util/err.h"
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define fail(err, errlen, ...) err_set(err, errlen, -EINVAL, __VA_ARGS__)

/* A decimal port 1..65535, the whole of [s, s+n). */
static int parse_port(const char *s, size_t n, uint16_t *out)
{
    if (n == 0 || n > 5) return -1;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v < 1 || v > 65535) return -1;
    *out = (uint16_t)v;
    return 0;
}

/* An IPv4 address in [s, s+n); empty: *out unchanged. */
static int parse_addr(const char *s, size_t n, struct in_addr *out)
{
    if (n == 0) return 0;
    char buf[INET_ADDRSTRLEN];
    if (n >= sizeof(buf)) return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    return inet_pton(AF_INET, buf, out) == 1 ? 0 : -1;
}

/* QEMU's syntax: [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT. */
static int parse_hostfwd(const char *v, size_t n, struct net_hostfwd *f)
{
    memset(f, 0, sizeof(*f));
    f->host_addr.s_addr = htonl(INADDR_ANY);
    const char *end = v + n, *p = v;
    const char *c1 = memchr(p, ':', n);
    if (!c1) return -1;
    if (c1 - p == 3 && !strncmp(p, "tcp", 3))
        f->udp = false;
    else if (c1 - p == 3 && !strncmp(p, "udp", 3))
        f->udp = true;
    else if (c1 != p)
        return -1;
    p = c1 + 1;
    const char *dash = memchr(p, '-', (size_t)(end - p));
    if (!dash) return -1;
    const char *c2 = memchr(p, ':', (size_t)(dash - p));
    if (!c2) return -1;
    if (parse_addr(p, (size_t)(c2 - p), &f->host_addr) < 0) return -1;
    if (parse_port(c2 + 1, (size_t)(dash - c2 - 1), &f->host_port) < 0) return -1;
    p = dash + 1;
    const char *c3 = memchr(p, ':', (size_t)(end - p));
    if (!c3) return -1;
    if (parse_addr(p, (size_t)(c3 - p), &f->guest_addr) < 0) return -1;
    if (parse_port(c3 + 1, (size_t)(end - c3 - 1), &f->guest_port) < 0) return -1;
    return 0;
}

static int parse_onoff(const char *v, size_t n, bool *out)
{
    if (n == 2 && !strncmp(v, "on", 2)) {
        *out = true;
        return 0;
    }
    if (n == 3 && !strncmp(v, "off", 3)) {
        *out = false;
        return 0;
    }
    return -1;
}

int net_spec_parse(const char *s, struct net_spec *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->ipv6 = true;
    const char *comma = strchr(s, ',');
    size_t klen = comma ? (size_t)(comma - s) : strlen(s);
    if (klen == 4 && !strncmp(s, "none", 4)) {
        if (comma) return fail(err, errlen, "--net %s: 'none' takes no options", s);
        out->kind = NET_NONE;
        return 0;
    }
    if (klen == 3 && !strncmp(s, "tap", 3)) {
        out->kind = NET_TAP;
        const char *v = comma ? comma + 1 : "";
        if (strncmp(v, "ifname=", 7) || strchr(v, ','))
            return fail(err, errlen, "--net %s: expected tap,ifname=NAME", s);
        v += 7;
        size_t n = strlen(v);
        if (n == 0 || n >= sizeof(out->ifname))
            return fail(err, errlen, "--net %s: an interface name has 1 to %zu characters", s,
                        sizeof(out->ifname) - 1);
        for (size_t i = 0; i < n; i++)
            if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
                  (v[i] >= '0' && v[i] <= '9') || v[i] == '_' || v[i] == '-' || v[i] == '.'))
                return fail(err, errlen, "--net %s: interface names use A-Z a-z 0-9 _ - .", s);
        memcpy(out->ifname, v, n + 1);
        return 0;
    }
    if (!(klen == 4 && !strncmp(s, "user", 4)))
        return fail(err, errlen, "--net %s: unknown network '%.*s' (none, user, tap)", s, (int)klen,
                    s);
    out->kind = NET_USER;
    while (comma) {
        const char *opt = comma + 1;
        comma = strchr(opt, ',');
        size_t olen = comma ? (size_t)(comma - opt) : strlen(opt);
        const char *eq = memchr(opt, '=', olen);
        size_t nlen = eq ? (size_t)(eq - opt) : olen;
        const char *v = eq ? eq + 1 : opt + olen;
        size_t vlen = olen - nlen - (eq ? 1 : 0);
        if (nlen == 7 && !strncmp(opt, "hostfwd", 7) && eq) {
            if (out->nfwd == NET_MAX_HOSTFWD)
                return fail(err, errlen, "--net: at most %d hostfwd rules", NET_MAX_HOSTFWD);
            struct net_hostfwd *f = &out->fwd[out->nfwd];
            if (parse_hostfwd(v, vlen, f) < 0)
                return fail(err, errlen,
                            "--net: bad hostfwd '%.*s' (expected "
                            "[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT)",
                            (int)vlen, v);
            for (unsigned i = 0; i < out->nfwd; i++)
                if (out->fwd[i].udp == f->udp && out->fwd[i].host_port == f->host_port)
                    return fail(err, errlen, "--net: host port %s:%u is forwarded twice",
                                f->udp ? "udp" : "tcp", f->host_port);
            out->nfwd++;
        } else if (nlen == 8 && !strncmp(opt, "restrict", 8) && eq) {
            if (parse_onoff(v, vlen, &out->restrict_) < 0)
                return fail(err, errlen, "--net: restrict=%.*s: expected on or off", (int)vlen, v);
        } else if (nlen == 3 && !strncmp(opt, "mtu", 3) && eq) {
            unsigned long m = 0;
            size_t k = 0;
            for (; k < vlen && k < 6 && v[k] >= '0' && v[k] <= '9'; k++)
                m = m * 10 + (unsigned long)(v[k] - '0');
            if (k == 0 || k != vlen || m < NET_MTU_MIN || m > NET_MTU_MAX)
                return fail(err, errlen, "--net: mtu=%.*s: expected %d to %d", (int)vlen, v,
                            NET_MTU_MIN, NET_MTU_MAX);
            out->mtu = (unsigned)m;
        } else if (nlen == 4 && !strncmp(opt, "ipv6", 4) && eq) {
            if (parse_onoff(v, vlen, &out->ipv6) < 0)
                return fail(err, errlen, "--net: ipv6=%.*s: expected on or off", (int)vlen, v);
        } else {
            return fail(err, errlen,
                        "--net: unknown option '%.*s' (hostfwd=RULE, restrict=on|off, "
                        "ipv6=on|off, mtu=N)",
                        (int)olen, opt);
        }
    }
    return 0;
}

int net_mac_parse(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    char tail;
    if (strlen(s) != 17) return -EINVAL;
    if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) !=
        6)
        return -EINVAL;
    for (int i = 0; i < 6; i++) {
        if (s[3 * i] == '+' || s[3 * i] == '-' || s[3 * i] == ' ' || s[3 * i + 1] == ' ')
            return -EINVAL;
        if (i < 5 && s[3 * i + 2] != ':') return -EINVAL;
        mac[i] = (uint8_t)v[i];
    }
    /* A station address: not multicast (bit 0 of the first byte), not all zero. */
    if (mac[0] & 1) return -EINVAL;
    if (!(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5])) return -EINVAL;
    return 0;
}

void net_mac_generate(uint8_t mac[6])
{
    uint8_t r[3];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        r[0] = (uint8_t)rand();
        r[1] = (uint8_t)rand();
        r[2] = (uint8_t)rand();
    }
    mac[0] = 0x52;
    mac[1] = 0x54;
    mac[2] = 0x00;
    memcpy(mac + 3, r, 3);
}

int net_spec_add_publish(struct net_spec *s, const char *arg, char *err, size_t errlen)
{
    if (s->kind == NET_TAP)
        return fail(err, errlen, "--publish %s: needs user networking, not a tap", arg);
    char buf[96];
    size_t n = strlen(arg);
    if (n >= 64) return fail(err, errlen, "--publish %s: too long", arg);
    bool udp = false;
    if (n > 4 && (!strcmp(arg + n - 4, "/udp") || !strcmp(arg + n - 4, "/tcp"))) {
        udp = arg[n - 3] == 'u';
        n -= 4;
    }
    /* HOSTPORT:GUESTPORT or ADDR:HOSTPORT:GUESTPORT */
    const char *last = NULL;
    unsigned colons = 0;
    for (size_t i = 0; i < n; i++)
        if (arg[i] == ':') {
            colons++;
            last = arg + i;
        }
    struct net_hostfwd f;
    int w;
    if (colons == 1)
        w = snprintf(buf, sizeof(buf), "%s:127.0.0.1:%.*s-:%.*s", udp ? "udp" : "tcp",
                     (int)(last - arg), arg, (int)(arg + n - last - 1), last + 1);
    else if (colons == 2)
        w = snprintf(buf, sizeof(buf), "%s:%.*s-:%.*s", udp ? "udp" : "tcp", (int)(last - arg), arg,
                     (int)(arg + n - last - 1), last + 1);
    else
        w = -1;
    if (w < 0 || (size_t)w >= sizeof(buf) || parse_hostfwd(buf, strlen(buf), &f) < 0)
        return fail(err, errlen,
                    "--publish %s: expected [ADDR:]HOSTPORT:GUESTPORT[/udp], e.g. 8080:80", arg);
    if (s->kind == NET_NONE) {
        memset(s, 0, sizeof(*s));
        s->kind = NET_USER;
        s->ipv6 = true;
    }
    if (s->nfwd == NET_MAX_HOSTFWD)
        return fail(err, errlen, "--publish %s: at most %d forwarded ports", arg, NET_MAX_HOSTFWD);
    for (unsigned i = 0; i < s->nfwd; i++)
        if (s->fwd[i].udp == f.udp && s->fwd[i].host_port == f.host_port)
            return fail(err, errlen, "--publish %s: host port %u is forwarded twice", arg,
                        f.host_port);
    s->fwd[s->nfwd++] = f;
    return 0;
}

int net_spec_format(const struct net_spec *s, char *buf, size_t len)
{
    size_t n = 0;
    int w;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        w = snprintf(buf + n, n < len ? len - n : 0, __VA_ARGS__);                                 \
        if (w < 0) return -EINVAL;                                                                 \
        n += (size_t)w;                                                                            \
    } while (0)
    switch (s->kind) {
    case NET_NONE: PUT("none"); break;
    case NET_TAP: PUT("tap,ifname=%s", s->ifname); break;
    case NET_USER:
        PUT("user");
        for (unsigned i = 0; i < s->nfwd; i++) {
            const struct net_hostfwd *f = &s->fwd[i];
            char ha[INET_ADDRSTRLEN] = "", ga[INET_ADDRSTRLEN] = "";
            if (f->host_addr.s_addr != htonl(INADDR_ANY))
                inet_ntop(AF_INET, &f->host_addr, ha, sizeof(ha));
            if (f->guest_addr.s_addr) inet_ntop(AF_INET, &f->guest_addr, ga, sizeof(ga));
            PUT(",hostfwd=%s:%s:%u-%s:%u", f->udp ? "udp" : "tcp", ha, f->host_port, ga,
                f->guest_port);
        }
        if (s->restrict_) PUT(",restrict=on");
        if (!s->ipv6) PUT(",ipv6=off");
        if (s->mtu && s->mtu != NET_MTU_MAX) PUT(",mtu=%u", s->mtu);
        break;
    }
#undef PUT
    return n < len ? 0 : -ENAMETOOLONG;
}

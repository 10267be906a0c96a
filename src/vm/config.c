/* VM configuration <-> JSON (Firecracker's FullVmConfiguration where they overlap). */
#include "vm/config.h"
#include "backend/net/net.h"
#include "util/paths.h"
#include "util/err.h"
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define fail(err, errlen, ...) err_set(err, errlen, -EINVAL, __VA_ARGS__)

void vm_spec_init(struct vm_spec *s)
{
    memset(s, 0, sizeof(*s));
    s->cpus = 1;
    s->mem_mib = VM_DEFAULT_MEM_MIB;
    s->jit = true; /* the default engine */
}

bool vm_drive_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n >= VM_DRIVE_ID_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return strcmp(id, ".") && strcmp(id, "..");
}

/* Every key of o must be one of `allowed` (NULL-terminated). */
static int check_keys(json_object *o, const char *what, const char *const *allowed, char *err,
                      size_t errlen)
{
    if (!json_object_is_type(o, json_type_object))
        return fail(err, errlen, "%s: expected a JSON object", what);
    json_object_object_foreach(o, key, val)
    {
        (void)val;
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            if (!strcmp(key, *a)) ok = true;
        if (!ok) return fail(err, errlen, "%s: unknown field '%s'", what, key);
    }
    return 0;
}

/* 1: present and set, 0: absent, <0: wrong type. */
static int get_bool(json_object *o, const char *what, const char *key, bool *out, char *err,
                    size_t errlen)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v)) return 0;
    if (!json_object_is_type(v, json_type_boolean))
        return fail(err, errlen, "%s: '%s' must be true or false", what, key);
    *out = json_object_get_boolean(v);
    return 1;
}

static int get_int(json_object *o, const char *what, const char *key, int64_t lo, int64_t hi,
                   int64_t *out, char *err, size_t errlen)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v)) return 0;
    if (!json_object_is_type(v, json_type_int))
        return fail(err, errlen, "%s: '%s' must be an integer", what, key);
    errno = 0;
    int64_t x = json_object_get_int64(v);
    if (errno || x < lo || x > hi)
        return fail(err, errlen, "%s: '%s' must be from %lld to %lld", what, key, (long long)lo,
                    (long long)hi);
    *out = x;
    return 1;
}

/* Strings must fit `cap` bytes with the NUL and hold no NUL or control characters. */
static int get_str(json_object *o, const char *what, const char *key, char *out, size_t cap,
                   char *err, size_t errlen)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v)) return 0;
    if (!json_object_is_type(v, json_type_string))
        return fail(err, errlen, "%s: '%s' must be a string", what, key);
    const char *s = json_object_get_string(v);
    size_t n = (size_t)json_object_get_string_len(v);
    if (n >= cap) return fail(err, errlen, "%s: '%s' is longer than %zu bytes", what, key, cap - 1);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return fail(err, errlen, "%s: '%s' holds a control character", what, key);
    memcpy(out, s, n);
    out[n] = 0;
    return 1;
}

/* ---- --ssh-key ---- */

static bool key_type_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '@';
}

static bool base64_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* One line of a public key file, without its newline: 1 a key, 0 blank or a comment, -EINVAL
 * with the reason in err. *kb, *ke: the key without surrounding blanks. */
static int ssh_key_line(const char *l, size_t n, const char **kb, const char **ke, char *err,
                        size_t errlen)
{
    while (n && (l[n - 1] == '\r' || l[n - 1] == ' ' || l[n - 1] == '\t'))
        n--;
    size_t i = 0;
    while (i < n && (l[i] == ' ' || l[i] == '\t'))
        i++;
    if (i == n || l[i] == '#') return 0;
    for (size_t k = i; k < n; k++)
        if (((unsigned char)l[k] < 0x20 && l[k] != '\t') || (unsigned char)l[k] >= 0x7f)
            return fail(err, errlen, "a byte that is not printable ASCII (0x%02x)",
                        (unsigned char)l[k]);
    if (memmem(l + i, n - i, "PRIVATE KEY", 11))
        return fail(err, errlen, "this is a private key: give the public one (the .pub file)");
    size_t t = i;
    while (t < n && key_type_char(l[t]))
        t++;
    bool known = (t - i > 4 && !strncmp(l + i, "ssh-", 4)) ||
                 (t - i > 6 && !strncmp(l + i, "ecdsa-", 6)) ||
                 (t - i > 3 && !strncmp(l + i, "sk-", 3));
    if (!known || t == n || (l[t] != ' ' && l[t] != '\t'))
        return fail(err, errlen,
                    "expected a public key such as 'ssh-ed25519 AAAA... comment' (key types "
                    "ssh-*, ecdsa-*, sk-*; no authorized_keys options)");
    size_t b = t;
    while (b < n && (l[b] == ' ' || l[b] == '\t'))
        b++;
    size_t e = b;
    while (e < n && base64_char(l[e]))
        e++;
    size_t pad = 0;
    while (e < n && l[e] == '=' && pad < 2) {
        e++;
        pad++;
    }
    if (e - b < 16 || (e < n && l[e] != ' ' && l[e] != '\t'))
        return fail(err, errlen, "the key after '%.*s' is not base64", (int)(t - i), l + i);
    *kb = l + i;
    *ke = l + n;
    return 1;
}

int vm_ssh_keys_add(char *keys, size_t cap, const char *text, size_t len, char *err, size_t errlen)
{
    if (cap > VM_SSH_KEYS_MAX) cap = VM_SSH_KEYS_MAX;
    size_t have = strnlen(keys, cap), at = have;
    if (have == cap) return fail(err, errlen, "internal: the key buffer is not a string");
    unsigned line = 0, nkeys = 0;
    for (size_t p = 0; p < len;) {
        const char *l = text + p;
        const char *nl = memchr(l, '\n', len - p);
        size_t n = nl ? (size_t)(nl - l) : len - p;
        p += n + (nl ? 1 : 0);
        line++;
        if (memchr(l, 0, n)) {
            memset(keys + have, 0, at - have + 1);
            return fail(err, errlen, "line %u: a NUL byte (not a text file)", line);
        }
        const char *kb = NULL, *ke = NULL;
        char e2[200];
        int r = ssh_key_line(l, n, &kb, &ke, e2, sizeof(e2));
        if (r < 0) {
            memset(keys + have, 0, at - have + 1);
            return fail(err, errlen, "line %u: %s", line, e2);
        }
        if (r == 0) continue;
        size_t kl = (size_t)(ke - kb);
        if (at + kl + 2 > cap) {
            memset(keys + have, 0, at - have + 1);
            return err_set(err, errlen, -E2BIG, "more than %zu bytes of keys in all", cap - 1);
        }
        memcpy(keys + at, kb, kl);
        keys[at + kl] = '\n';
        at += kl + 1;
        nkeys++;
    }
    if (!nkeys) {
        return fail(err, errlen,
                    "no public key in it (expected lines like 'ssh-ed25519 AAAA... "
                    "comment')");
    }
    keys[at] = 0;
    return 0;
}

int vm_ssh_keys_add_file(char *keys, size_t cap, const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) return err_set(err, errlen, -errno, "%s", strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return fail(err, errlen, "not a regular file");
    }
    if (sb.st_size > VM_SSH_KEYS_MAX) {
        close(fd);
        return err_set(err, errlen, -E2BIG,
                       "%lld bytes: larger than %d bytes (a public key is under 1 KiB; give the "
                       ".pub file)",
                       (long long)sb.st_size, VM_SSH_KEYS_MAX);
    }
    char *buf = malloc(VM_SSH_KEYS_MAX + 1);
    if (!buf) {
        close(fd);
        return fail(err, errlen, "out of memory");
    }
    size_t n = 0;
    for (;;) {
        ssize_t k = read(fd, buf + n, VM_SSH_KEYS_MAX + 1 - n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return err_set(err, errlen, -e, "%s", strerror(e));
        }
        if (k == 0 || (n += (size_t)k) > VM_SSH_KEYS_MAX) break;
    }
    close(fd);
    int r = n > VM_SSH_KEYS_MAX
                ? err_set(err, errlen, -E2BIG, "larger than %d bytes", VM_SSH_KEYS_MAX)
                : vm_ssh_keys_add(keys, cap, buf, n, err, errlen);
    free(buf);
    return r;
}

int vm_spec_set_machine(struct vm_spec *s, json_object *o, bool partial, char *err, size_t errlen)
{
    static const char *const keys[] = {"vcpu_count",        "mem_size_mib", "smt", "cpu_template",
                                       "track_dirty_pages", "huge_pages",   NULL};
    const char *what = "machine-config";
    int r = check_keys(o, what, keys, err, errlen);
    if (r) return r;
    int64_t cpus = s->cpus, mem = (int64_t)s->mem_mib;
    int hc = get_int(o, what, "vcpu_count", 1, VM_MAX_CPUS, &cpus, err, errlen);
    if (hc < 0) return hc;
    int hm = get_int(o, what, "mem_size_mib", MACHINE_MIN_RAM >> 20, 1 << 20, &mem, err, errlen);
    if (hm < 0) return hm;
    if (!partial && (!hc || !hm))
        return fail(err, errlen, "%s: 'vcpu_count' and 'mem_size_mib' are required", what);
    bool smt = false, dirty = false;
    if ((r = get_bool(o, what, "smt", &smt, err, errlen)) < 0) return r;
    if (smt) return fail(err, errlen, "%s: 'smt' can only be enabled on x86 hosts' guests", what);
    if ((r = get_bool(o, what, "track_dirty_pages", &dirty, err, errlen)) < 0) return r;
    if (dirty) return fail(err, errlen, "%s: 'track_dirty_pages' is not supported yet", what);
    json_object *v;
    if (json_object_object_get_ex(o, "cpu_template", &v) && !json_object_is_type(v, json_type_null))
        return fail(err, errlen, "%s: CPU templates are x86/aarch64 only", what);
    char hp[16] = "None";
    if ((r = get_str(o, what, "huge_pages", hp, sizeof(hp), err, errlen)) < 0) return r;
    if (strcmp(hp, "None") && strcmp(hp, "Transparent"))
        return fail(err, errlen, "%s: 'huge_pages' must be None or Transparent", what);
    s->cpus = (unsigned)cpus;
    s->mem_mib = (uint64_t)mem;
    return 0;
}

int vm_spec_set_boot(struct vm_spec *s, json_object *o, char *err, size_t errlen)
{
    static const char *const keys[] = {"kernel_image_path", "initrd_path", "boot_args", NULL};
    const char *what = "boot-source";
    int r = check_keys(o, what, keys, err, errlen);
    if (r) return r;
    char kernel[VM_PATH_MAX] = "", initrd[VM_PATH_MAX] = "", args[VM_CMDLINE_MAX] = "";
    int hk = get_str(o, what, "kernel_image_path", kernel, sizeof(kernel), err, errlen);
    if (hk < 0) return hk;
    if (!hk || !kernel[0]) return fail(err, errlen, "%s: 'kernel_image_path' is required", what);
    if ((r = get_str(o, what, "initrd_path", initrd, sizeof(initrd), err, errlen)) < 0) return r;
    int ha = get_str(o, what, "boot_args", args, sizeof(args), err, errlen);
    if (ha < 0) return ha;
    memcpy(s->kernel, kernel, sizeof(kernel));
    memcpy(s->initrd, initrd, sizeof(initrd));
    s->has_cmdline = ha == 1;
    memcpy(s->cmdline, args, sizeof(args));
    return 0;
}

static int find_drive(const struct vm_spec *s, const char *id)
{
    for (unsigned i = 0; i < s->ndrives; i++)
        if (!strcmp(s->drives[i].id, id)) return (int)i;
    return -1;
}

int vm_spec_drive_index(const struct vm_spec *s, const char *id)
{
    int at = find_drive(s, id);
    if (at < 0) return -1;
    /* as vm_spec_to_options: the root drive first, the others in the order they were added */
    int root = -1;
    for (unsigned i = 0; i < s->ndrives; i++)
        if (s->drives[i].root) root = (int)i;
    if (at == root) return 0;
    int n = root >= 0 ? 1 : 0;
    for (int i = 0; i < at; i++)
        if (i != root) n++;
    return n;
}

int vm_spec_set_drive(struct vm_spec *s, const char *id, json_object *o, char *err, size_t errlen)
{
    static const char *const keys[] = {
        "drive_id",  "is_root_device", "is_read_only", "path_on_host", "cache_type",
        "io_engine", "partuuid",       "rate_limiter", "socket",       NULL};
    const char *what = "drive";
    int r = check_keys(o, what, keys, err, errlen);
    if (r) return r;
    struct vm_drive_spec d = {0};
    char bid[VM_DRIVE_ID_MAX + 1] = "";
    int hid = get_str(o, what, "drive_id", bid, sizeof(bid), err, errlen);
    if (hid < 0) return hid;
    if (!hid) return fail(err, errlen, "%s: 'drive_id' is required", what);
    if (id && strcmp(id, bid))
        return fail(err, errlen, "%s: the drive_id in the body ('%s') differs from the path's",
                    what, bid);
    if (!vm_drive_id_valid(bid))
        return fail(err, errlen, "%s: drive_id '%s' must be 1-63 of A-Z a-z 0-9 _ . -", what, bid);
    memcpy(d.id, bid, strlen(bid) + 1); /* valid ids are shorter than d.id */
    int hr = get_bool(o, what, "is_root_device", &d.root, err, errlen);
    if (hr < 0) return hr;
    if (!hr) return fail(err, errlen, "%s: 'is_root_device' is required", what);
    if ((r = get_bool(o, what, "is_read_only", &d.readonly, err, errlen)) < 0) return r;
    int hp = get_str(o, what, "path_on_host", d.path, sizeof(d.path), err, errlen);
    if (hp < 0) return hp;
    if (!hp || !d.path[0]) return fail(err, errlen, "%s: 'path_on_host' is required", what);
    char str[32] = "";
    if ((r = get_str(o, what, "cache_type", str, sizeof(str), err, errlen)) < 0) return r;
    /* Unsafe (Firecracker ignores flushes) is served as Writeback: flushes reach the disk. */
    if (r && strcmp(str, "Unsafe") && strcmp(str, "Writeback"))
        return fail(err, errlen, "%s: 'cache_type' must be Unsafe or Writeback", what);
    str[0] = 0;
    if ((r = get_str(o, what, "io_engine", str, sizeof(str), err, errlen)) < 0) return r;
    if (r && strcmp(str, "Sync") && strcmp(str, "Async"))
        return fail(err, errlen, "%s: 'io_engine' must be Sync or Async", what);
    json_object *v;
    if (json_object_object_get_ex(o, "socket", &v))
        return fail(err, errlen, "%s: vhost-user drives ('socket') are not supported", what);
    if (json_object_object_get_ex(o, "partuuid", &v))
        return fail(err, errlen, "%s: 'partuuid' is not supported (the root is /dev/vda)", what);
    if (json_object_object_get_ex(o, "rate_limiter", &v) && !json_object_is_type(v, json_type_null))
        return fail(err, errlen, "%s: rate limiters are not supported yet", what);
    int at = find_drive(s, d.id);
    for (unsigned i = 0; i < s->ndrives; i++)
        if (d.root && s->drives[i].root && (int)i != at)
            return fail(err, errlen, "%s: drive '%s' is already the root device", what,
                        s->drives[i].id);
    if (at < 0) {
        if (s->ndrives == MACHINE_MAX_DISKS)
            return fail(err, errlen, "%s: at most %d drives", what, MACHINE_MAX_DISKS);
        at = (int)s->ndrives++;
    } else {
        /* keep vessel's extras of a replaced drive */
        d.direct = s->drives[at].direct;
        memcpy(d.serial, s->drives[at].serial, sizeof(d.serial));
    }
    s->drives[at] = d;
    return 0;
}

/* "vessel": {"firmware": PATH, "drives": {ID: {"serial": S, "cache": "none"|"writeback"}}} */
static int set_extras(struct vm_spec *s, json_object *o, char *err, size_t errlen)
{
    static const char *const keys[] = {
        "firmware",       "drives", "network",   "ssh_authorized_keys",
        "ssh_identities", "engine", "jit_cache", NULL};
    static const char *const dkeys[] = {"serial", "cache", NULL};
    int r = check_keys(o, "vessel", keys, err, errlen);
    if (r) return r;
    if ((r = get_str(o, "vessel", "firmware", s->firmware, sizeof(s->firmware), err, errlen)) < 0)
        return r;
    char user[sizeof(s->net.user)] = ""; /* whole: it is copied whole */
    if ((r = get_str(o, "vessel", "network", user, sizeof(user), err, errlen)) < 0) return r;
    if (r) {
        /* user-mode networking options of the interface: "user[,hostfwd=...]..." */
        struct net_spec ns;
        char e2[256];
        if (!s->net.present)
            return fail(err, errlen, "vessel.network: no network-interfaces entry to apply it to");
        if (s->net.host_dev_name[0])
            return fail(err, errlen, "vessel.network: the interface is a tap (host_dev_name)");
        if (net_spec_parse(user, &ns, e2, sizeof(e2)) < 0 || ns.kind != NET_USER)
            return fail(err, errlen, "vessel.network: %s",
                        ns.kind != NET_USER ? "expected user[,options]" : e2);
        memcpy(s->net.user, user, sizeof(user));
    }
    char engine[8] = "";
    if ((r = get_str(o, "vessel", "engine", engine, sizeof(engine), err, errlen)) < 0) return r;
    if (r) {
        if (strcmp(engine, "interp") && strcmp(engine, "jit"))
            return fail(err, errlen, "vessel.engine: expected \"interp\" or \"jit\"");
        s->jit = !strcmp(engine, "jit");
    }
    int64_t jc = 0;
    if ((r = get_int(o, "vessel", "jit_cache", VM_JIT_CACHE_MIN, VM_JIT_CACHE_MAX, &jc, err,
                     errlen)) < 0)
        return r;
    s->jit_cache_size = (uint64_t)jc;
    json_object *v;
    if (json_object_object_get_ex(o, "ssh_authorized_keys", &v)) {
        char e2[300];
        if (!json_object_is_type(v, json_type_string))
            return fail(err, errlen, "vessel.ssh_authorized_keys: expected a string");
        s->ssh_keys[0] = 0;
        if (vm_ssh_keys_add(s->ssh_keys, sizeof(s->ssh_keys), json_object_get_string(v),
                            (size_t)json_object_get_string_len(v), e2, sizeof(e2)) < 0)
            return fail(err, errlen, "vessel.ssh_authorized_keys: %s", e2);
    }
    if (json_object_object_get_ex(o, "ssh_identities", &v)) {
        size_t n = json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 0;
        if (!json_object_is_type(v, json_type_array) || n > VM_SSH_KEY_FILES)
            return fail(err, errlen, "vessel.ssh_identities: expected an array of at most %d paths",
                        VM_SSH_KEY_FILES);
        for (size_t i = 0; i < n; i++) {
            json_object *p = json_object_array_get_idx(v, i);
            const char *ps = json_object_get_string(p);
            size_t pl = (size_t)json_object_get_string_len(p);
            if (!json_object_is_type(p, json_type_string) || pl == 0 || pl >= VM_PATH_MAX ||
                ps[0] != '/' || strlen(ps) != pl)
                return fail(err, errlen, "vessel.ssh_identities: expected absolute paths");
            memcpy(s->ssh_identities[i], ps, pl + 1);
        }
        s->nssh_identities = (unsigned)n;
    }
    json_object *ds;
    if (!json_object_object_get_ex(o, "drives", &ds)) return 0;
    if (!json_object_is_type(ds, json_type_object))
        return fail(err, errlen, "vessel.drives: expected an object");
    json_object_object_foreach(ds, id, dv)
    {
        int at = find_drive(s, id);
        if (at < 0) return fail(err, errlen, "vessel.drives: no drive '%s'", id);
        if ((r = check_keys(dv, "vessel.drives", dkeys, err, errlen))) return r;
        char serial[64] = "", cache[16] = "";
        if ((r = get_str(dv, "vessel.drives", "serial", serial, sizeof(serial), err, errlen)) < 0)
            return r;
        if (strlen(serial) > 20 || strchr(serial, ' '))
            return fail(err, errlen, "vessel.drives: serial of '%s': at most 20 printable bytes",
                        id);
        if ((r = get_str(dv, "vessel.drives", "cache", cache, sizeof(cache), err, errlen)) < 0)
            return r;
        if (r && strcmp(cache, "none") && strcmp(cache, "writeback"))
            return fail(err, errlen, "vessel.drives: cache of '%s' must be none or writeback", id);
        memcpy(s->drives[at].serial, serial, sizeof(s->drives[at].serial));
        s->drives[at].direct = !strcmp(cache, "none");
    }
    return 0;
}

int vm_spec_set_net(struct vm_spec *s, const char *id, json_object *o, char *err, size_t errlen)
{
    static const char *const keys[] = {"iface_id",        "host_dev_name",   "guest_mac",
                                       "rx_rate_limiter", "tx_rate_limiter", NULL};
    const char *what = "network-interfaces";
    int r = check_keys(o, what, keys, err, errlen);
    if (r) return r;
    struct vm_net_spec n = {.present = true};
    if ((r = get_str(o, what, "iface_id", n.iface_id, sizeof(n.iface_id), err, errlen)) < 0)
        return r;
    if (!r) return fail(err, errlen, "%s: 'iface_id' is required", what);
    if (!vm_drive_id_valid(n.iface_id))
        return fail(err, errlen, "%s: iface_id '%s' must be 1-63 of A-Z a-z 0-9 _ . -", what,
                    n.iface_id);
    if (id && strcmp(id, n.iface_id))
        return fail(err, errlen, "%s: iface_id '%s' differs from the path's '%s'", what, n.iface_id,
                    id);
    if (s->net.present && strcmp(s->net.iface_id, n.iface_id))
        return fail(err, errlen, "%s: one interface per VM ('%s' exists)", what, s->net.iface_id);
    r = get_str(o, what, "host_dev_name", n.host_dev_name, sizeof(n.host_dev_name), err, errlen);
    if (r < 0) return r;
    if (r) {
        char spec[64];
        struct net_spec ns;
        snprintf(spec, sizeof(spec), "tap,ifname=%s", n.host_dev_name);
        if (net_spec_parse(spec, &ns, err, errlen) < 0)
            return fail(err, errlen, "%s: host_dev_name '%s' is not an interface name", what,
                        n.host_dev_name);
    }
    char mac[32];
    if ((r = get_str(o, what, "guest_mac", mac, sizeof(mac), err, errlen)) < 0) return r;
    if (r) {
        if (net_mac_parse(mac, n.mac) < 0)
            return fail(err, errlen, "%s: guest_mac '%s' is not a unicast MAC address", what, mac);
        n.mac_set = true;
    } else if (s->net.present) { /* the address chosen before stays */
        memcpy(n.mac, s->net.mac, 6);
        n.mac_set = s->net.mac_set;
    }
    static const char *const limiters[] = {"rx_rate_limiter", "tx_rate_limiter", NULL};
    for (const char *const *l = limiters; *l; l++) {
        json_object *v;
        if (json_object_object_get_ex(o, *l, &v) && !json_object_is_type(v, json_type_null) &&
            !(json_object_is_type(v, json_type_object) && json_object_object_length(v) == 0))
            return fail(err, errlen, "%s: '%s' is not supported yet", what, *l);
    }
    if (!n.host_dev_name[0]) memcpy(n.user, s->net.user, sizeof(n.user)); /* vessel.network */
    s->net = n;
    return 0;
}

int vm_spec_set_vsock(struct vm_spec *s, json_object *o, char *err, size_t errlen)
{
    static const char *const keys[] = {"guest_cid", "uds_path", "vsock_id", NULL};
    const char *what = "vsock";
    int r = check_keys(o, what, keys, err, errlen);
    if (r) return r;
    struct vm_vsock_spec v = {.present = true};
    int64_t cid = 0;
    int hc = get_int(o, what, "guest_cid", 3, (int64_t)UINT32_MAX - 1, &cid, err, errlen);
    if (hc < 0) return hc;
    int hp = get_str(o, what, "uds_path", v.uds_path, sizeof(v.uds_path), err, errlen);
    if (hp < 0) return hp;
    if (!hc || !hp) return fail(err, errlen, "%s: 'guest_cid' and 'uds_path' are required", what);
    char id[VM_DRIVE_ID_MAX];
    if ((r = get_str(o, what, "vsock_id", id, sizeof(id), err, errlen)) < 0) return r;
    v.guest_cid = (uint32_t)cid;
    char e2[300];
    if (vsock_spec_check(v.guest_cid, v.uds_path, e2, sizeof(e2)) < 0)
        return fail(err, errlen, "%s: %s", what, e2 + (strncmp(e2, "--vsock: ", 9) ? 0 : 9));
    s->vsock = v;
    return 0;
}

/* Firecracker sections vessel does not offer yet: accepted when absent, null or empty. */
static bool empty_section(json_object *v)
{
    if (!v || json_object_is_type(v, json_type_null)) return true;
    if (json_object_is_type(v, json_type_array)) return json_object_array_length(v) == 0;
    if (json_object_is_type(v, json_type_object)) return json_object_object_length(v) == 0;
    return false;
}

int vm_spec_from_json(struct vm_spec *out, json_object *o, char *err, size_t errlen)
{
    static const char *const keys[] = {"machine-config",
                                       "boot-source",
                                       "drives",
                                       "logger",
                                       "metrics",
                                       "entropy",
                                       "balloon",
                                       "cpu-config",
                                       "memory-hotplug",
                                       "mmds-config",
                                       "pmem",
                                       "vsock",
                                       "network-interfaces",
                                       "vessel",
                                       "version",
                                       "serial",
                                       NULL};
    static const char *const unsupported[] = {"balloon",     "cpu-config", "memory-hotplug",
                                              "mmds-config", "pmem",       NULL};
    int r = check_keys(o, "configuration", keys, err, errlen);
    if (r) return r;
    struct vm_spec *sp = malloc(sizeof(*sp)); /* ~50 KB: kept off API threads' stacks */
    if (!sp) return fail(err, errlen, "out of memory");
#define s (*sp)
    vm_spec_init(&s);
    json_object *v;
    for (const char *const *u = unsupported; *u; u++)
        if (json_object_object_get_ex(o, *u, &v) && !empty_section(v)) {
            r = fail(err, errlen, "configuration: '%s' is not supported yet", *u);
            goto out;
        }
    int64_t ver = VM_CONFIG_VERSION;
    if ((r = get_int(o, "configuration", "version", 1, 1000, &ver, err, errlen)) < 0) goto out;
    if (ver != VM_CONFIG_VERSION) {
        r = fail(err, errlen, "configuration: version %lld is not known to this vessel (%d)",
                 (long long)ver, VM_CONFIG_VERSION);
        goto out;
    }
    if (json_object_object_get_ex(o, "machine-config", &v) &&
        (r = vm_spec_set_machine(&s, v, false, err, errlen)))
        goto out;
    if (json_object_object_get_ex(o, "boot-source", &v) &&
        (r = vm_spec_set_boot(&s, v, err, errlen)))
        goto out;
    if (json_object_object_get_ex(o, "drives", &v)) {
        if (!json_object_is_type(v, json_type_array)) {
            r = fail(err, errlen, "configuration: 'drives' must be an array");
            goto out;
        }
        size_t n = json_object_array_length(v);
        for (size_t i = 0; i < n; i++) {
            json_object *d = json_object_array_get_idx(v, i), *idv;
            const char *id =
                json_object_object_get_ex(d, "drive_id", &idv) ? json_object_get_string(idv) : NULL;
            if (id && find_drive(&s, id) >= 0) {
                r = fail(err, errlen, "configuration: drive '%s' is listed twice", id);
                goto out;
            }
            if ((r = vm_spec_set_drive(&s, NULL, d, err, errlen))) goto out;
        }
    }
    if (json_object_object_get_ex(o, "network-interfaces", &v) &&
        !json_object_is_type(v, json_type_null)) {
        if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) > 1) {
            r = fail(err, errlen,
                     "configuration: 'network-interfaces' must be an array of at "
                     "most one interface");
            goto out;
        }
        if (json_object_array_length(v) == 1 &&
            (r = vm_spec_set_net(&s, NULL, json_object_array_get_idx(v, 0), err, errlen)))
            goto out;
    }
    if (json_object_object_get_ex(o, "vsock", &v) && !json_object_is_type(v, json_type_null) &&
        (r = vm_spec_set_vsock(&s, v, err, errlen)))
        goto out;
    if (json_object_object_get_ex(o, "vessel", &v) && (r = set_extras(&s, v, err, errlen)))
        goto out;
    *out = s;
out:
#undef s
    free(sp);
    return r;
}

json_object *vm_spec_machine_json(const struct vm_spec *s)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "vcpu_count", json_object_new_int((int)s->cpus));
    json_object_object_add(m, "mem_size_mib", json_object_new_int64((int64_t)s->mem_mib));
    json_object_object_add(m, "smt", json_object_new_boolean(0));
    json_object_object_add(m, "track_dirty_pages", json_object_new_boolean(0));
    json_object_object_add(m, "huge_pages", json_object_new_string("None"));
    return m;
}

json_object *vm_spec_to_json(const struct vm_spec *s, bool vessel_extras)
{
    json_object *o = json_object_new_object();
    if (vessel_extras) json_object_object_add(o, "version", json_object_new_int(VM_CONFIG_VERSION));
    json_object_object_add(o, "machine-config", vm_spec_machine_json(s));
    if (s->kernel[0]) {
        json_object *b = json_object_new_object();
        json_object_object_add(b, "kernel_image_path", json_object_new_string(s->kernel));
        if (s->initrd[0])
            json_object_object_add(b, "initrd_path", json_object_new_string(s->initrd));
        if (s->has_cmdline)
            json_object_object_add(b, "boot_args", json_object_new_string(s->cmdline));
        json_object_object_add(o, "boot-source", b);
    }
    json_object *ds = json_object_new_array();
    json_object *extras = json_object_new_object();
    for (unsigned i = 0; i < s->ndrives; i++) {
        const struct vm_drive_spec *d = &s->drives[i];
        json_object *j = json_object_new_object();
        json_object_object_add(j, "drive_id", json_object_new_string(d->id));
        json_object_object_add(j, "is_root_device", json_object_new_boolean(d->root));
        json_object_object_add(j, "is_read_only", json_object_new_boolean(d->readonly));
        json_object_object_add(j, "path_on_host", json_object_new_string(d->path));
        json_object_object_add(j, "cache_type", json_object_new_string("Writeback"));
        json_object_object_add(j, "io_engine", json_object_new_string("Async"));
        json_object_array_add(ds, j);
        if (d->serial[0] || d->direct) {
            json_object *e = json_object_new_object();
            if (d->serial[0])
                json_object_object_add(e, "serial", json_object_new_string(d->serial));
            json_object_object_add(e, "cache",
                                   json_object_new_string(d->direct ? "none" : "writeback"));
            json_object_object_add(extras, d->id, e);
        }
    }
    json_object_object_add(o, "drives", ds);
    if (s->net.present) {
        json_object *ns = json_object_new_array(), *n = json_object_new_object();
        json_object_object_add(n, "iface_id", json_object_new_string(s->net.iface_id));
        if (s->net.host_dev_name[0])
            json_object_object_add(n, "host_dev_name",
                                   json_object_new_string(s->net.host_dev_name));
        if (s->net.mac_set) {
            char mac[18];
            const uint8_t *m = s->net.mac;
            snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3],
                     m[4], m[5]);
            json_object_object_add(n, "guest_mac", json_object_new_string(mac));
        }
        json_object_array_add(ns, n);
        json_object_object_add(o, "network-interfaces", ns);
    }
    if (s->vsock.present) {
        json_object *v = json_object_new_object();
        json_object_object_add(v, "guest_cid", json_object_new_int64(s->vsock.guest_cid));
        json_object_object_add(v, "uds_path", json_object_new_string(s->vsock.uds_path));
        json_object_object_add(o, "vsock", v);
    }
    if (vessel_extras) {
        json_object *v = json_object_new_object();
        if (s->firmware[0])
            json_object_object_add(v, "firmware", json_object_new_string(s->firmware));
        if (s->net.present && !s->net.host_dev_name[0] && s->net.user[0])
            json_object_object_add(v, "network", json_object_new_string(s->net.user));
        if (s->ssh_keys[0])
            json_object_object_add(v, "ssh_authorized_keys", json_object_new_string(s->ssh_keys));
        if (!s->jit) json_object_object_add(v, "engine", json_object_new_string("interp"));
        if (s->jit_cache_size)
            json_object_object_add(v, "jit_cache",
                                   json_object_new_int64((int64_t)s->jit_cache_size));
        if (s->nssh_identities) {
            json_object *a = json_object_new_array();
            for (unsigned i = 0; i < s->nssh_identities && i < VM_SSH_KEY_FILES; i++)
                json_object_array_add(a, json_object_new_string(s->ssh_identities[i]));
            json_object_object_add(v, "ssh_identities", a);
        }
        json_object_object_add(v, "drives", extras);
        json_object_object_add(o, "vessel", v);
    } else {
        json_object_put(extras);
    }
    return o;
}

static bool names_root(const char *cmdline)
{
    for (const char *p = cmdline; (p = strstr(p, "root=")); p++)
        if (p == cmdline || p[-1] == ' ') return true;
    return false;
}

void vm_spec_disk_order(const struct vm_spec *s, unsigned order[MACHINE_MAX_DISKS])
{
    int root = -1;
    for (unsigned i = 0; i < s->ndrives; i++)
        if (s->drives[i].root) root = (int)i;
    /* the root drive is vda; the others follow in the order they were added */
    unsigned n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (unsigned i = 0; i < s->ndrives && n < MACHINE_MAX_DISKS; i++)
            if ((pass == 0) == ((int)i == root)) order[n++] = i;
}

int vm_spec_to_options(const struct vm_spec *s, struct vm_options *o, char *cmdline_buf,
                       size_t cmdline_len, char *err, size_t errlen)
{
    memset(o, 0, sizeof(*o));
    struct machine_config *mc = &o->machine;
    if (!s->kernel[0] && !s->firmware[0])
        return fail(err, errlen, "no boot source: set a kernel (PUT /boot-source) first");
    mc->cpus = s->cpus;
    mc->ram_size = s->mem_mib << 20;
    mc->kernel = s->kernel[0] ? s->kernel : NULL;
    mc->initrd = s->initrd[0] ? s->initrd : NULL;
    mc->firmware = s->firmware[0] ? s->firmware : NULL;
    if (!mc->firmware) {
        /* as `vessel run --kernel`: Linux boots through the cached OpenSBI */
        char dir[VM_PATH_MAX - 64];
        if (paths_cache_dir(dir, sizeof(dir)) < 0)
            return fail(err, errlen, "cannot locate the guest cache for OpenSBI: set VESSEL_CACHE");
        snprintf(o->default_firmware, sizeof(o->default_firmware),
                 "%s/guest/default/fw_dynamic.bin", dir);
        mc->firmware = o->default_firmware;
    }
    int root = -1;
    for (unsigned i = 0; i < s->ndrives; i++)
        if (s->drives[i].root) root = (int)i;
    unsigned order[MACHINE_MAX_DISKS], n = 0;
    vm_spec_disk_order(s, order);
    for (unsigned k = 0; k < s->ndrives; k++) {
        const struct vm_drive_spec *d = &s->drives[order[k]];
        struct vm_disk *vd = &o->disks[n++];
        snprintf(vd->path, sizeof(vd->path), "%s", d->path);
        vd->readonly = d->readonly;
        vd->direct = d->direct;
        memcpy(vd->serial, d->serial, sizeof(vd->serial));
    }
    o->ndisks = n;
    if (s->net.present) {
        char spec[sizeof(s->net.user) + 32];
        if (s->net.host_dev_name[0])
            snprintf(spec, sizeof(spec), "tap,ifname=%s", s->net.host_dev_name);
        else
            snprintf(spec, sizeof(spec), "%s", s->net.user[0] ? s->net.user : "user");
        int r = net_spec_parse(spec, &o->net, err, errlen);
        if (r < 0) return r;
        memcpy(o->mac, s->net.mac, 6);
        o->mac_set = s->net.mac_set;
    }
    if (s->vsock.present) {
        o->vsock.present = true;
        o->vsock.cid = s->vsock.guest_cid;
        memcpy(o->vsock.path, s->vsock.uds_path, sizeof(o->vsock.path));
    }
    mc->ssh_keys = s->ssh_keys[0] ? s->ssh_keys : NULL;
    mc->engine = s->jit ? ENGINE_JIT : ENGINE_INTERP;
    mc->jit_cache_size = s->jit_cache_size;
    if (mc->kernel) {
        const char *base = s->has_cmdline ? s->cmdline : "console=ttyS0";
        int w;
        if (root >= 0 && !names_root(base))
            w = snprintf(cmdline_buf, cmdline_len, "%s root=/dev/vda %s", base,
                         s->drives[root].readonly ? "ro" : "rw");
        else
            w = snprintf(cmdline_buf, cmdline_len, "%s", base);
        if (w < 0 || (size_t)w >= cmdline_len)
            return fail(err, errlen, "the kernel command line is too long");
        mc->cmdline = cmdline_buf;
    }
    return 0;
}

int vm_spec_from_options(struct vm_spec *s, const struct vm_options *o, char *err, size_t errlen)
{
    const struct machine_config *mc = &o->machine;
    vm_spec_init(s);
    if (mc->cpus > VM_MAX_CPUS) return fail(err, errlen, "at most %d vCPUs per VM", VM_MAX_CPUS);
    s->cpus = mc->cpus;
    s->mem_mib = mc->ram_size >> 20;
    const char *src[3] = {mc->kernel, mc->initrd, mc->firmware};
    char *dst[3] = {s->kernel, s->initrd, s->firmware};
    for (int i = 0; i < 3; i++) {
        if (!src[i]) continue;
        /* the store outlives the caller's working directory: keep absolute paths */
        char *abs = realpath(src[i], NULL);
        if (!abs) return fail(err, errlen, "%s: %s", src[i], strerror(errno));
        if (strlen(abs) >= VM_PATH_MAX) {
            free(abs);
            return fail(err, errlen, "%s: path too long", src[i]);
        }
        strcpy(dst[i], abs);
        free(abs);
    }
    if (mc->cmdline) {
        if (strlen(mc->cmdline) >= VM_CMDLINE_MAX)
            return fail(err, errlen, "the kernel command line is too long");
        s->has_cmdline = true;
        strcpy(s->cmdline, mc->cmdline);
    }
    for (unsigned i = 0; i < o->ndisks; i++) {
        struct vm_drive_spec *d = &s->drives[i];
        snprintf(d->id, sizeof(d->id), i == 0 ? "rootfs" : "disk%u", i);
        char *abs = realpath(o->disks[i].path, NULL);
        if (!abs) return fail(err, errlen, "%s: %s", o->disks[i].path, strerror(errno));
        snprintf(d->path, sizeof(d->path), "%s", abs);
        free(abs);
        d->readonly = o->disks[i].readonly;
        d->direct = o->disks[i].direct;
        memcpy(d->serial, o->disks[i].serial, sizeof(d->serial));
    }
    s->ndrives = o->ndisks;
    s->jit = mc->engine == ENGINE_JIT;
    s->jit_cache_size = mc->jit_cache_size;
    if (mc->ssh_keys) {
        if (strlen(mc->ssh_keys) >= sizeof(s->ssh_keys))
            return fail(err, errlen, "--ssh-key: more than %d bytes of keys", VM_SSH_KEYS_MAX - 1);
        strcpy(s->ssh_keys, mc->ssh_keys);
    }
    if (o->net.kind != NET_NONE) {
        struct vm_net_spec *n = &s->net;
        n->present = true;
        snprintf(n->iface_id, sizeof(n->iface_id), "eth0");
        if (o->net.kind == NET_TAP)
            snprintf(n->host_dev_name, sizeof(n->host_dev_name), "%s", o->net.ifname);
        else if (net_spec_format(&o->net, n->user, sizeof(n->user)) < 0)
            return fail(err, errlen, "--net: the options are too long to store");
        /* The MAC is chosen now and stored: a stored VM keeps its address across starts. */
        if (o->mac_set)
            memcpy(n->mac, o->mac, 6);
        else
            net_mac_generate(n->mac);
        n->mac_set = true;
    }
    if (o->vsock.present) {
        /* the store outlives the caller's working directory: an absolute path */
        struct vm_vsock_spec *v = &s->vsock;
        v->present = true;
        v->guest_cid = o->vsock.cid;
        int w;
        if (o->vsock.path[0] == '/') {
            w = snprintf(v->uds_path, sizeof(v->uds_path), "%s", o->vsock.path);
        } else {
            char cwd[VM_PATH_MAX];
            if (!getcwd(cwd, sizeof(cwd))) return fail(err, errlen, "--vsock: %s", strerror(errno));
            w = snprintf(v->uds_path, sizeof(v->uds_path), "%s/%s", cwd, o->vsock.path);
        }
        char e2[300];
        if (w < 0 || (size_t)w >= sizeof(v->uds_path) ||
            vsock_spec_check(v->guest_cid, v->uds_path, e2, sizeof(e2)) < 0)
            return fail(err, errlen, "--vsock: path %s is too long for a Unix socket once absolute",
                        o->vsock.path);
    }
    return 0;
}

/* The REST API (api.h). */
#include "api/api.h"
#include "util/log.h"
#include "machine/snapshot.h"
#include "vm/broker.h"
#include "vm/sandbox.h"
#include "util/version.h"
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define JSON_MAX_DEPTH 16

static void set_json(struct api_response *r, unsigned status, json_object *o)
{
    r->status = status;
    r->body = strdup(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    if (!r->body) r->status = 500;
}

static void set_fault(struct api_response *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_fault(struct api_response *r, unsigned status, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "fault_message", json_object_new_string(msg));
    set_json(r, status, o);
}

static bool preboot(struct api_ctx *a)
{
    struct vm_info vi;
    vm_get_info(a->vm, &vi);
    return vi.state == VM_NOT_STARTED;
}

/* Parse a request body: one JSON value and nothing after it. */
static json_object *parse_body(const char *body, size_t len, struct api_response *r)
{
    if (!body || len == 0) {
        set_fault(r, 400, "the request needs a JSON body");
        return NULL;
    }
    json_tokener *tok = json_tokener_new_ex(JSON_MAX_DEPTH);
    if (!tok) {
        set_fault(r, 500, "out of memory");
        return NULL;
    }
    json_object *o = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (e == json_tokener_continue) {
        json_object_put(o);
        set_fault(r, 400, "malformed JSON: the body ends too early");
        return NULL;
    }
    if (!o || e != json_tokener_success) {
        json_object_put(o);
        set_fault(r, 400, "malformed JSON: %s", json_tokener_error_desc(e));
        return NULL;
    }
    for (size_t i = used; i < len; i++)
        if (body[i] != ' ' && body[i] != '\n' && body[i] != '\r' && body[i] != '\t') {
            json_object_put(o);
            set_fault(r, 400, "malformed JSON: trailing characters after the value");
            return NULL;
        }
    if (!json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        set_fault(r, 400, "the body must be a JSON object");
        return NULL;
    }
    return o;
}

static const char *instance_state(enum vm_state s)
{
    switch (s) {
    case VM_NOT_STARTED: return "Not started";
    case VM_PAUSED: return "Paused";
    default: return "Running";
    }
}

static void get_root(struct api_ctx *a, struct api_response *r)
{
    struct vm_info vi;
    vm_get_info(a->vm, &vi);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "app_name", json_object_new_string("vessel"));
    json_object_object_add(o, "id", json_object_new_string(a->id));
    json_object_object_add(o, "state", json_object_new_string(instance_state(vi.state)));
    json_object_object_add(o, "vmm_version", json_object_new_string(VESSEL_VERSION));
    set_json(r, 200, o);
}

static uint64_t now_ms(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* vessel's statistics (GET /vessel/info): not a Firecracker endpoint. */
static json_object *info_json(struct api_ctx *a)
{
    struct vm_info vi;
    vm_get_info(a->vm, &vi);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(a->id));
    json_object_object_add(o, "state", json_object_new_string(vm_state_name(vi.state)));
    json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
    json_object_object_add(o, "boots", json_object_new_int((int)vi.boots));
    json_object_object_add(o, "started_ms", json_object_new_int64((int64_t)vi.started_ms));
    uint64_t up = vi.started_ms ? now_ms(CLOCK_REALTIME) - vi.started_ms : 0;
    json_object_object_add(o, "uptime_ms", json_object_new_int64((int64_t)up));
    json_object_object_add(o, "instructions", json_object_new_int64((int64_t)vi.instret_total));
    json_object_object_add(o, "engine", json_object_new_string(vi.jit ? "jit" : "interp"));
    /* the process's memory: what the guest touched plus vessel's own */
    long rss_pages = 0;
    char sb[128];
    ssize_t n = a->statm_fd >= 0 ? pread(a->statm_fd, sb, sizeof(sb) - 1, 0) : -1;
    if (n > 0) {
        long size;
        sb[n] = 0;
        if (sscanf(sb, "%ld %ld", &size, &rss_pages) != 2) rss_pages = 0;
    }
    json_object_object_add(o, "rss_bytes",
                           json_object_new_int64((int64_t)rss_pages * sysconf(_SC_PAGESIZE)));
    struct timespec cpu;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    json_object_object_add(
        o, "cpu_time_ms",
        json_object_new_int64((int64_t)cpu.tv_sec * 1000 + cpu.tv_nsec / 1000000));
    return o;
}

static void flush_metrics(struct api_ctx *a, struct api_response *r)
{
    if (!a->metrics_set) {
        set_fault(r, 400, "the metrics system is not configured (PUT /metrics first)");
        return;
    }
    json_object *o = info_json(a);
    json_object_object_add(o, "utc_timestamp_ms",
                           json_object_new_int64((int64_t)now_ms(CLOCK_REALTIME)));
    pthread_mutex_lock(&a->lock);
    int w = fprintf(a->metrics, "%s\n", json_object_to_json_string(o));
    int fl = fflush(a->metrics);
    pthread_mutex_unlock(&a->lock);
    json_object_put(o);
    if (w < 0 || fl != 0)
        set_fault(r, 400, "cannot write the metrics to %s", a->metrics_path);
    else
        r->status = 204;
}

/* PUT /serial's serial_out_path: the guest's serial output goes to that file from boot on. */
static int serial_to_file(struct api_ctx *a, char *err, size_t errlen)
{
    if (!a->serial_out[0]) return 0;
    struct chr *c = chr_sock_create(-1, a->serial_out, UINT64_MAX / 2);
    if (!c) {
        snprintf(err, errlen, "serial_out_path %.300s: %s", a->serial_out, strerror(errno));
        return -EINVAL;
    }
    vm_set_console(a->vm, c);
    return 0;
}

static void put_actions(struct api_ctx *a, json_object *o, struct api_response *r)
{
    json_object *v;
    if (json_object_object_length(o) != 1 || !json_object_object_get_ex(o, "action_type", &v) ||
        !json_object_is_type(v, json_type_string)) {
        set_fault(r, 400,
                  "the body must be {\"action_type\": \"InstanceStart\" | "
                  "\"SendCtrlAltDel\" | \"FlushMetrics\"}");
        return;
    }
    const char *act = json_object_get_string(v);
    char err[512] = "";
    if (!strcmp(act, "FlushMetrics")) {
        flush_metrics(a, r);
    } else if (!strcmp(act, "InstanceStart")) {
        pthread_mutex_lock(&a->lock);
        int rc = -EBUSY;
        if (!preboot(a))
            snprintf(err, sizeof(err), "the VM has already been started");
        else if ((rc = vm_spec_to_options(&a->spec, &a->opts, a->cmdline, sizeof(a->cmdline), err,
                                          sizeof(err))) == 0 &&
                 (!a->before_start || (rc = a->before_start(a, err, sizeof(err))) == 0) &&
                 (rc = serial_to_file(a, err, sizeof(err))) == 0)
            rc = vm_start(a->vm, &a->opts, err, sizeof(err));
        pthread_mutex_unlock(&a->lock);
        if (rc)
            set_fault(r, 400, "InstanceStart: %s", err);
        else
            r->status = 204;
    } else if (!strcmp(act, "SendCtrlAltDel")) {
        if (vm_request_shutdown(a->vm, err, sizeof(err)))
            set_fault(r, 400, "SendCtrlAltDel: %s", err);
        else
            r->status = 204;
    } else {
        set_fault(r, 400, "unknown action_type '%s'", act);
    }
}

static void patch_vm(struct api_ctx *a, json_object *o, struct api_response *r)
{
    json_object *v;
    if (json_object_object_length(o) != 1 || !json_object_object_get_ex(o, "state", &v) ||
        !json_object_is_type(v, json_type_string)) {
        set_fault(r, 400, "the body must be {\"state\": \"Paused\" | \"Resumed\"}");
        return;
    }
    const char *st = json_object_get_string(v);
    char err[256];
    int rc;
    if (!strcmp(st, "Paused"))
        rc = vm_pause(a->vm, err, sizeof(err));
    else if (!strcmp(st, "Resumed"))
        rc = vm_resume(a->vm, err, sizeof(err));
    else {
        set_fault(r, 400, "unknown state '%s' (Paused, Resumed)", st);
        return;
    }
    if (rc)
        set_fault(r, 400, "%s", err);
    else
        r->status = 204;
}

/* PUT /snapshot/create (Firecracker's SnapshotCreateParams): the VM must be paused. */
static bool simple_fields(json_object *o, const char *const *keys, const json_type *types,
                          struct api_response *r, const char *what);
static void put_snapshot_create(struct api_ctx *a, json_object *o, struct api_response *r)
{
    static const char *const keys[] = {"snapshot_path", "mem_file_path", "snapshot_type", NULL};
    static const json_type types[] = {json_type_string, json_type_string, json_type_string};
    if (!simple_fields(o, keys, types, r, "snapshot")) return;
    json_object *sp, *mp, *ty;
    if (!json_object_object_get_ex(o, "snapshot_path", &sp) ||
        !json_object_object_get_ex(o, "mem_file_path", &mp)) {
        set_fault(r, 400, "snapshot: 'snapshot_path' and 'mem_file_path' are required");
        return;
    }
    if (json_object_object_get_ex(o, "snapshot_type", &ty) &&
        strcmp(json_object_get_string(ty), "Full") != 0) {
        set_fault(r, 400, "snapshot: only snapshot_type Full is supported (not '%s')",
                  json_object_get_string(ty));
        return;
    }
    const char *spath = json_object_get_string(sp), *mpath = json_object_get_string(mp);
    if (!spath[0] || !mpath[0] || strlen(spath) >= VM_PATH_MAX || strlen(mpath) >= VM_PATH_MAX ||
        !strcmp(spath, mpath)) {
        set_fault(r, 400, "snapshot: two different paths of 1-%d bytes", VM_PATH_MAX - 1);
        return;
    }
    if (preboot(a)) {
        set_fault(r, 400, "snapshot: the VM has not started");
        return;
    }
    char err[600];
    struct snap_save_stats st;
    /* the configuration goes into the state file: PUT /snapshot/load in a fresh process needs
     * it (Firecracker's snapshots carry theirs too) */
    pthread_mutex_lock(&a->lock);
    json_object *cfg = vm_spec_to_json(&a->spec, true);
    pthread_mutex_unlock(&a->lock);
    if (vm_snapshot_create(a->vm, spath, mpath, json_object_to_json_string(cfg), &st, err,
                           sizeof(err)) < 0)
        set_fault(r, 400, "snapshot: %s", err);
    else
        r->status = 204;
    json_object_put(cfg);
}

/* PUT /vessel/disk-snapshot {"action": "create"|"delete", "name": N} (not a Firecracker
 * endpoint; `vessel snapshot` uses it): internal snapshots of the paused VM's writable qcow2
 * disks at one instant (machine_disk_snapshot). 200 with {"drives": [{"drive_id",
 * "snapshot"}]}: which drives have (or had) one. */
static void put_disk_snapshot(struct api_ctx *a, json_object *o, struct api_response *r)
{
    static const char *const keys[] = {"action", "name", NULL};
    static const json_type types[] = {json_type_string, json_type_string};
    if (!simple_fields(o, keys, types, r, "disk-snapshot")) return;
    json_object *ac, *nm;
    if (!json_object_object_get_ex(o, "action", &ac) ||
        !json_object_object_get_ex(o, "name", &nm)) {
        set_fault(r, 400, "disk-snapshot: 'action' and 'name' are required");
        return;
    }
    const char *action = json_object_get_string(ac), *name = json_object_get_string(nm);
    bool create = !strcmp(action, "create");
    if (!create && strcmp(action, "delete")) {
        set_fault(r, 400, "disk-snapshot: 'action' must be create or delete");
        return;
    }
    size_t nl = strlen(name);
    bool ok = nl > 0 && nl < 128 && nl == (size_t)json_object_get_string_len(nm);
    for (size_t i = 0; ok && i < nl; i++)
        ok = name[i] > 0x20 && name[i] < 0x7f;
    if (!ok) {
        set_fault(r, 400, "disk-snapshot: 'name' must be 1-127 printable characters, no spaces");
        return;
    }
    if (preboot(a)) {
        set_fault(r, 400, "disk-snapshot: the VM has not started");
        return;
    }
    bool done[MACHINE_MAX_DISKS];
    char err[600];
    if (vm_disk_snapshot(a->vm, create ? BLK_SNAP_CREATE : BLK_SNAP_DELETE, name, done, err,
                         sizeof(err)) < 0) {
        set_fault(r, 400, "disk-snapshot: %s", err);
        return;
    }
    json_object *res = json_object_new_object(), *arr = json_object_new_array();
    unsigned order[MACHINE_MAX_DISKS];
    pthread_mutex_lock(&a->lock);
    vm_spec_disk_order(&a->spec, order);
    for (unsigned k = 0; k < a->spec.ndrives && k < MACHINE_MAX_DISKS; k++) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "drive_id", json_object_new_string(a->spec.drives[order[k]].id));
        json_object_object_add(d, "snapshot", json_object_new_boolean(done[k]));
        json_object_array_add(arr, d);
    }
    pthread_mutex_unlock(&a->lock);
    json_object_object_add(res, "drives", arr);
    set_json(r, 200, res);
}

/* PUT /snapshot/load (Firecracker's SnapshotLoadParams): before boot only; the VM resumes from
 * the snapshot with the configuration it carries, paused unless resume_vm. */
static void put_snapshot_load(struct api_ctx *a, json_object *o, struct api_response *r)
{
    static const char *const keys[] = {
        "snapshot_path",     "mem_file_path", "mem_backend",       "enable_diff_snapshots",
        "track_dirty_pages", "resume_vm",     "network_overrides", NULL};
    static const json_type types[] = {json_type_string,  json_type_string,  json_type_object,
                                      json_type_boolean, json_type_boolean, json_type_boolean,
                                      json_type_array};
    if (!simple_fields(o, keys, types, r, "snapshot load")) return;
    json_object *sp, *mf = NULL, *mb = NULL, *v;
    if (!json_object_object_get_ex(o, "snapshot_path", &sp)) {
        set_fault(r, 400, "snapshot load: 'snapshot_path' is required");
        return;
    }
    json_object_object_get_ex(o, "mem_file_path", &mf);
    json_object_object_get_ex(o, "mem_backend", &mb);
    if (!mf == !mb) {
        set_fault(r, 400, "snapshot load: exactly one of 'mem_file_path' and 'mem_backend'");
        return;
    }
    const char *mpath = mf ? json_object_get_string(mf) : NULL;
    if (mb) {
        json_object *bt = NULL, *bp = NULL;
        json_object_object_foreach(mb, k, val)
        {
            if (!strcmp(k, "backend_type") && json_object_is_type(val, json_type_string))
                bt = val;
            else if (!strcmp(k, "backend_path") && json_object_is_type(val, json_type_string))
                bp = val;
            else {
                set_fault(r, 400, "snapshot load: mem_backend: unknown or mistyped field '%s'", k);
                return;
            }
        }
        if (!bt || !bp) {
            set_fault(r, 400, "snapshot load: mem_backend needs backend_type and backend_path");
            return;
        }
        if (strcmp(json_object_get_string(bt), "File") != 0) {
            set_fault(r, 400, "snapshot load: backend_type '%s' is not supported (File is)",
                      json_object_get_string(bt));
            return;
        }
        mpath = json_object_get_string(bp);
    }
    if ((json_object_object_get_ex(o, "enable_diff_snapshots", &v) && json_object_get_boolean(v)) ||
        (json_object_object_get_ex(o, "track_dirty_pages", &v) && json_object_get_boolean(v))) {
        set_fault(r, 400, "snapshot load: dirty page tracking (diff snapshots) is not supported");
        return;
    }
    if (json_object_object_get_ex(o, "network_overrides", &v) && json_object_array_length(v)) {
        set_fault(r, 400, "snapshot load: network_overrides are not supported");
        return;
    }
    bool resume = json_object_object_get_ex(o, "resume_vm", &v) && json_object_get_boolean(v);
    const char *spath = json_object_get_string(sp);
    if (!spath[0] || !mpath[0] || strlen(spath) >= VM_PATH_MAX || strlen(mpath) >= VM_PATH_MAX) {
        set_fault(r, 400, "snapshot load: paths of 1-%d bytes", VM_PATH_MAX - 1);
        return;
    }
    char err[600] = "";
    int rc = 0;
    pthread_mutex_lock(&a->lock);
    if (!preboot(a)) {
        set_fault(r, 400, "snapshot load: the operation is not allowed after the VM has started");
        pthread_mutex_unlock(&a->lock);
        return;
    }
    /* the configuration the snapshot carries replaces what was PUT so far */
    uint8_t *state = NULL;
    size_t len = 0;
    int fd = open(spath, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        rc = -errno, snprintf(err, sizeof(err), "%s: %s", spath, strerror(errno));
    else
        rc = snapshot_read_state(fd, &state, &len, err, sizeof(err));
    if (fd >= 0) close(fd);
    static struct vm_spec spec;
    char *cfg = rc == 0 ? snapshot_config(state, len, err, sizeof(err)) : NULL;
    if (rc == 0 && !cfg) rc = -EINVAL;
    if (rc == 0) {
        json_object *j = json_tokener_parse(cfg);
        if (!j || vm_spec_from_json(&spec, j, err, sizeof(err)) < 0) {
            rc = -EINVAL;
            if (!j) snprintf(err, sizeof(err), "the snapshot's configuration is not JSON");
        }
        json_object_put(j);
    }
    free(cfg);
    free(state);
    if (rc == 0) {
        a->spec = spec;
        snprintf(a->restore_state, sizeof(a->restore_state), "%s", spath);
        snprintf(a->restore_mem, sizeof(a->restore_mem), "%s", mpath);
        if ((rc = vm_spec_to_options(&a->spec, &a->opts, a->cmdline, sizeof(a->cmdline), err,
                                     sizeof(err))) == 0 &&
            (!a->before_start || (rc = a->before_start(a, err, sizeof(err))) == 0) &&
            (rc = serial_to_file(a, err, sizeof(err))) == 0) {
            a->opts.restore_state = a->restore_state;
            a->opts.restore_mem = a->restore_mem;
            a->opts.start_paused = !resume;
            rc = vm_start(a->vm, &a->opts, err, sizeof(err));
        }
    }
    pthread_mutex_unlock(&a->lock);
    if (rc)
        set_fault(r, 400, "snapshot load: %s", err);
    else
        r->status = 204;
}

/* Fields of a small object: each must be one of keys and of the given json type. */
static bool simple_fields(json_object *o, const char *const *keys, const json_type *types,
                          struct api_response *r, const char *what)
{
    json_object_object_foreach(o, k, v)
    {
        int i = 0;
        while (keys[i] && strcmp(keys[i], k))
            i++;
        if (!keys[i]) {
            set_fault(r, 400, "%s: unknown field '%s'", what, k);
            return false;
        }
        if (!json_object_is_type(v, types[i])) {
            set_fault(r, 400, "%s: '%s' has the wrong type", what, k);
            return false;
        }
    }
    return true;
}

static void put_logger(struct api_ctx *a, json_object *o, struct api_response *r)
{
    static const char *const keys[] = {"level",           "log_path", "show_level",
                                       "show_log_origin", "module",   NULL};
    static const json_type types[] = {json_type_string, json_type_string, json_type_boolean,
                                      json_type_boolean, json_type_string};
    if (!simple_fields(o, keys, types, r, "logger")) return;
    json_object *v;
    const char *level =
        json_object_object_get_ex(o, "level", &v) ? json_object_get_string(v) : "Info";
    static const char *const fc[] = {"error", "warning", "info", "debug", "trace", "off"};
    static const char *const ours[] = {"error", "warn", "info", "debug", "trace", "error"};
    int li = -1;
    for (int i = 0; i < 6; i++)
        if (!strcasecmp(level, fc[i])) li = i;
    if (li < 0) {
        set_fault(r, 400, "logger: unknown level '%s'", level);
        return;
    }
    pthread_mutex_lock(&a->lock);
    if (a->logger_set) {
        pthread_mutex_unlock(&a->lock);
        set_fault(r, 400, "logger: already configured");
        return;
    }
    if (json_object_object_get_ex(o, "log_path", &v) &&
        log_set_file(json_object_get_string(v)) < 0) {
        pthread_mutex_unlock(&a->lock);
        set_fault(r, 400, "logger: cannot open %s: %s", json_object_get_string(v), strerror(errno));
        return;
    }
    log_set_level_name(ours[li]);
    a->logger_set = true;
    pthread_mutex_unlock(&a->lock);
    r->status = 204;
}

static void put_metrics(struct api_ctx *a, json_object *o, struct api_response *r)
{
    static const char *const keys[] = {"metrics_path", "emit_id", "properties", NULL};
    static const json_type types[] = {json_type_string, json_type_boolean, json_type_object};
    if (!simple_fields(o, keys, types, r, "metrics")) return;
    json_object *v;
    if (!json_object_object_get_ex(o, "metrics_path", &v)) {
        set_fault(r, 400, "metrics: 'metrics_path' is required");
        return;
    }
    const char *p = json_object_get_string(v);
    if (strlen(p) >= sizeof(a->metrics_path) || !*p) {
        set_fault(r, 400, "metrics: bad metrics_path");
        return;
    }
    pthread_mutex_lock(&a->lock);
    if (a->metrics_set) {
        pthread_mutex_unlock(&a->lock);
        set_fault(r, 400, "metrics: already configured");
        return;
    }
    /* opened now and kept: after boot the VM process is sandboxed and opens nothing */
    FILE *f = fopen(p, "ae");
    if (!f) {
        pthread_mutex_unlock(&a->lock);
        set_fault(r, 400, "metrics: cannot open %s: %s", p, strerror(errno));
        return;
    }
    a->metrics = f;
    strcpy(a->metrics_path, p);
    a->metrics_set = true;
    pthread_mutex_unlock(&a->lock);
    r->status = 204;
}

static void put_entropy(json_object *o, struct api_response *r)
{
    json_object_object_foreach(o, k, v)
    {
        if (strcmp(k, "rate_limiter")) {
            set_fault(r, 400, "entropy: unknown field '%s'", k);
            return;
        }
        if (!json_object_is_type(v, json_type_null)) {
            set_fault(r, 400, "entropy: rate limiters are not supported yet");
            return;
        }
    }
    r->status = 204; /* the entropy device (virtio-rng) is always present */
}

static void put_serial(struct api_ctx *a, json_object *o, struct api_response *r)
{
    static const char *const keys[] = {"serial_out_path", "rate_limiter", NULL};
    static const json_type types[] = {json_type_string, json_type_null};
    if (!simple_fields(o, keys, types, r, "serial")) return;
    json_object *v;
    const char *p =
        json_object_object_get_ex(o, "serial_out_path", &v) ? json_object_get_string(v) : "";
    if (a->console_fixed) {
        set_fault(r, 400, "serial: this VM's console goes to its console.log (vessel logs)");
        return;
    }
    if (strlen(p) >= sizeof(a->serial_out)) {
        set_fault(r, 400, "serial: serial_out_path too long");
        return;
    }
    pthread_mutex_lock(&a->lock);
    strcpy(a->serial_out, p);
    pthread_mutex_unlock(&a->lock);
    r->status = 204;
}

/* Pre-boot configuration changes share this wrapper: lock, state check, apply. */
enum cfg_kind { CFG_MACHINE_PUT, CFG_MACHINE_PATCH, CFG_BOOT, CFG_DRIVE, CFG_NET, CFG_VSOCK };
static void put_config(struct api_ctx *a, enum cfg_kind k, const char *id, json_object *o,
                       struct api_response *r)
{
    char err[512];
    pthread_mutex_lock(&a->lock);
    if (!preboot(a)) {
        pthread_mutex_unlock(&a->lock);
        set_fault(r, 400, "the operation is not allowed after the VM has started");
        return;
    }
    int rc;
    switch (k) {
    case CFG_MACHINE_PUT: rc = vm_spec_set_machine(&a->spec, o, false, err, sizeof(err)); break;
    case CFG_MACHINE_PATCH: rc = vm_spec_set_machine(&a->spec, o, true, err, sizeof(err)); break;
    case CFG_BOOT: rc = vm_spec_set_boot(&a->spec, o, err, sizeof(err)); break;
    case CFG_NET: rc = vm_spec_set_net(&a->spec, id, o, err, sizeof(err)); break;
    case CFG_VSOCK: rc = vm_spec_set_vsock(&a->spec, o, err, sizeof(err)); break;
    default: rc = vm_spec_set_drive(&a->spec, id, o, err, sizeof(err)); break;
    }
    pthread_mutex_unlock(&a->lock);
    if (rc)
        set_fault(r, 400, "%s", err);
    else
        r->status = 204;
}

/* PATCH /drives/{id} (Firecracker's PartialDrive): post-boot only, swaps the drive's image. */
static void patch_drive(struct api_ctx *a, const char *id, json_object *o, struct api_response *r)
{
    const char *bid = NULL, *path = NULL;
    json_object_object_foreach(o, k, v)
    {
        if (!strcmp(k, "drive_id") && json_object_is_type(v, json_type_string)) {
            bid = json_object_get_string(v);
        } else if (!strcmp(k, "path_on_host") && json_object_is_type(v, json_type_string)) {
            path = json_object_get_string(v);
        } else if (!strcmp(k, "rate_limiter")) {
            if (!json_object_is_type(v, json_type_null)) {
                set_fault(r, 400, "drive: rate limiters are not supported yet");
                return;
            }
        } else if (!strcmp(k, "drive_id") || !strcmp(k, "path_on_host")) {
            set_fault(r, 400, "drive: '%s' has the wrong type", k);
            return;
        } else {
            set_fault(r, 400,
                      "drive: unknown field '%s' (PATCH takes drive_id, path_on_host, "
                      "rate_limiter)",
                      k);
            return;
        }
    }
    if (!bid) {
        set_fault(r, 400, "drive: 'drive_id' is required");
        return;
    }
    if (strcmp(bid, id)) {
        set_fault(r, 400, "drive: the drive_id in the body ('%s') differs from the path's", bid);
        return;
    }
    if (path && (!path[0] || strlen(path) >= VM_PATH_MAX)) {
        set_fault(r, 400, "drive: 'path_on_host' must be 1-%d bytes", VM_PATH_MAX - 1);
        return;
    }
    char err[600] = "";
    int rc = 0;
    pthread_mutex_lock(&a->lock);
    int at = vm_spec_drive_index(&a->spec, id);
    if (preboot(a))
        rc = -EBUSY,
        snprintf(err, sizeof(err), "not supported before boot (PUT /drives/%s is)", id);
    else if (at < 0)
        rc = -ENOENT, snprintf(err, sizeof(err), "no drive '%s'", id);
    else if (path && sandbox_active() && !broker_available())
        /* a sandboxed VM process opens files only through its monitor (docs/security.md) */
        rc = -EPERM, snprintf(err, sizeof(err),
                              "the VM process is sandboxed without a monitor and opens no files "
                              "after boot; start it with --no-sandbox to change drives");
    else if (path && sandbox_active() && path[0] != '/')
        rc = -EINVAL, snprintf(err, sizeof(err),
                               "'path_on_host' must be an absolute path once the VM is sandboxed");
    else if (path && (rc = vm_update_drive(a->vm, (unsigned)at, path, err, sizeof(err))) == 0)
        for (unsigned i = 0; i < a->spec.ndrives; i++) /* GET /vm/config shows the new path */
            if (!strcmp(a->spec.drives[i].id, id))
                memcpy(a->spec.drives[i].path, path, strlen(path) + 1);
    pthread_mutex_unlock(&a->lock);
    if (rc)
        set_fault(r, 400, "PATCH /drives/%s: %s", id, err);
    else
        r->status = 204;
}

void api_handle(struct api_ctx *a, const char *method, const char *path, const char *body,
                size_t len, struct api_response *r)
{
    memset(r, 0, sizeof(*r));
    bool get = !strcmp(method, "GET"), put = !strcmp(method, "PUT"),
         patch = !strcmp(method, "PATCH");
    /* routes: path, allowed methods (G, P=PUT, A=PATCH) */
    static const struct {
        const char *path;
        const char *methods;
        const char *allow;
    } routes[] = {
        {"/", "G", "GET"},
        {"/version", "G", "GET"},
        {"/machine-config", "GPA", "GET, PUT, PATCH"},
        {"/boot-source", "P", "PUT"},
        {"/actions", "P", "PUT"},
        {"/vm", "A", "PATCH"},
        {"/vm/config", "G", "GET"},
        {"/logger", "P", "PUT"},
        {"/metrics", "P", "PUT"},
        {"/entropy", "P", "PUT"},
        {"/serial", "P", "PUT"},
        {"/drives/", "PA", "PUT, PATCH"},
        {"/snapshot/create", "P", "PUT"},
        {"/snapshot/load", "P", "PUT"},
        {"/network-interfaces/", "P", "PUT"},
        {"/vsock", "P", "PUT"},
        {"/vessel/info", "G", "GET"},
        {"/vessel/quit", "P", "PUT"},
        {"/vessel/disk-snapshot", "P", "PUT"},
    };
    int ri = -1;
    for (unsigned i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        size_t pl = strlen(routes[i].path);
        bool prefix = routes[i].path[pl - 1] == '/' && pl > 1;
        if (prefix ? !strncmp(path, routes[i].path, pl) && path[pl] : !strcmp(path, routes[i].path))
            ri = (int)i;
    }
    if (ri < 0) {
        set_fault(r, 404, "no such resource: %s", path);
        return;
    }
    char m = get ? 'G' : put ? 'P' : patch ? 'A' : 0;
    if (!m || !strchr(routes[ri].methods, m)) {
        set_fault(r, 405, "%s does not take %s (it takes %s)", routes[ri].path, method,
                  routes[ri].allow);
        r->allow = routes[ri].allow;
        return;
    }
    if (get) {
        if (len) {
            set_fault(r, 400, "GET takes no body");
            return;
        }
        const char *p = routes[ri].path;
        if (!strcmp(p, "/")) {
            get_root(a, r);
        } else if (!strcmp(p, "/version")) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "firecracker_version",
                                   json_object_new_string(VESSEL_VERSION));
            set_json(r, 200, o);
        } else if (!strcmp(p, "/machine-config")) {
            pthread_mutex_lock(&a->lock);
            json_object *o = vm_spec_machine_json(&a->spec);
            pthread_mutex_unlock(&a->lock);
            set_json(r, 200, o);
        } else if (!strcmp(p, "/vm/config")) {
            pthread_mutex_lock(&a->lock);
            json_object *o = vm_spec_to_json(&a->spec, false);
            pthread_mutex_unlock(&a->lock);
            set_json(r, 200, o);
        } else {
            set_json(r, 200, info_json(a));
        }
        return;
    }
    const char *p = routes[ri].path;
    json_object *o;
    if (!strcmp(p, "/vessel/quit") && len == 0) {
        o = json_object_new_object();
    } else if (!(o = parse_body(body, len, r))) {
        return;
    }
    if (!strcmp(p, "/machine-config")) {
        put_config(a, put ? CFG_MACHINE_PUT : CFG_MACHINE_PATCH, NULL, o, r);
    } else if (!strcmp(p, "/boot-source")) {
        put_config(a, CFG_BOOT, NULL, o, r);
    } else if (!strcmp(p, "/drives/")) {
        const char *id = path + strlen("/drives/");
        if (!vm_drive_id_valid(id))
            set_fault(r, 400, "drive id '%s' must be 1-63 of A-Z a-z 0-9 _ . -", id);
        else if (patch)
            patch_drive(a, id, o, r);
        else
            put_config(a, CFG_DRIVE, id, o, r);
    } else if (!strcmp(p, "/network-interfaces/")) {
        /* pre-boot only: the backend (sockets, a tap) is opened before the sandbox */
        const char *id = path + strlen("/network-interfaces/");
        if (!vm_drive_id_valid(id))
            set_fault(r, 400, "iface id '%s' must be 1-63 of A-Z a-z 0-9 _ . -", id);
        else
            put_config(a, CFG_NET, id, o, r);
    } else if (!strcmp(p, "/vsock")) {
        /* pre-boot only: the backend binds its socket before the sandbox */
        put_config(a, CFG_VSOCK, NULL, o, r);
    } else if (!strcmp(p, "/actions")) {
        put_actions(a, o, r);
    } else if (!strcmp(p, "/vm")) {
        patch_vm(a, o, r);
    } else if (!strcmp(p, "/snapshot/create")) {
        put_snapshot_create(a, o, r);
    } else if (!strcmp(p, "/snapshot/load")) {
        put_snapshot_load(a, o, r);
    } else if (!strcmp(p, "/vessel/disk-snapshot")) {
        put_disk_snapshot(a, o, r);
    } else if (!strcmp(p, "/logger") || !strcmp(p, "/metrics")) {
        /* pre-boot only (as Firecracker): the files are opened before the sandbox */
        if (!preboot(a))
            set_fault(r, 400, "the operation is not allowed after the VM has started");
        else if (!strcmp(p, "/logger"))
            put_logger(a, o, r);
        else
            put_metrics(a, o, r);
    } else if (!strcmp(p, "/entropy")) {
        if (preboot(a))
            put_entropy(o, r);
        else
            set_fault(r, 400, "the operation is not allowed after the VM has started");
    } else if (!strcmp(p, "/serial")) {
        if (preboot(a))
            put_serial(a, o, r);
        else
            set_fault(r, 400, "the operation is not allowed after the VM has started");
    } else if (!strcmp(p, "/vessel/quit")) {
        if (json_object_object_length(o)) {
            set_fault(r, 400, "/vessel/quit takes no fields");
        } else {
            vm_quit(a->vm);
            r->status = 204;
        }
    }
    json_object_put(o);
}

/* ---- HTTP: libmicrohttpd ---- */

struct api_server {
    struct MHD_Daemon *d;
    struct api_ctx *a;
};

struct req {
    char *buf;
    size_t len;
    bool too_big;
};

static enum MHD_Result send_response(struct MHD_Connection *c, const struct api_response *r)
{
    struct MHD_Response *resp =
        r->body ? MHD_create_response_from_buffer(strlen(r->body), r->body, MHD_RESPMEM_MUST_COPY)
                : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    if (r->body) MHD_add_response_header(resp, "Content-Type", "application/json");
    if (r->allow) MHD_add_response_header(resp, "Allow", r->allow);
    enum MHD_Result ret = MHD_queue_response(c, r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct api_server *s = cls;
    struct req *q = *con_cls;
    if (!q) {
        q = calloc(1, sizeof(*q));
        if (!q) return MHD_NO;
        *con_cls = q;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > API_MAX_BODY) q->too_big = true;
        if (q->too_big) {
            struct api_response r = {0};
            set_fault(&r, 413, "the body is larger than %d bytes", API_MAX_BODY);
            enum MHD_Result ret = send_response(c, &r);
            free(r.body);
            return ret;
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!q->too_big && q->len + *upload_size <= API_MAX_BODY) {
            char *nb = realloc(q->buf, q->len + *upload_size + 1);
            if (!nb) return MHD_NO;
            q->buf = nb;
            memcpy(q->buf + q->len, upload_data, *upload_size);
            q->len += *upload_size;
            q->buf[q->len] = 0;
        } else {
            q->too_big = true; /* chunked bodies have no Content-Length: counted here */
        }
        *upload_size = 0;
        return MHD_YES;
    }
    struct api_response r;
    if (q->too_big) {
        memset(&r, 0, sizeof(r));
        set_fault(&r, 413, "the body is larger than %d bytes", API_MAX_BODY);
    } else {
        api_handle(s->a, method, url, q->buf, q->len, &r);
    }
    log_debug("api: %s %s -> %u", method, url, r.status);
    enum MHD_Result ret = send_response(c, &r);
    free(r.body);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    struct req *q = *con_cls;
    if (q) {
        free(q->buf);
        free(q);
    }
    *con_cls = NULL;
}

struct api_server *api_server_start(struct api_ctx *a, int listen_fd, char *err, size_t errlen)
{
    struct api_server *s = calloc(1, sizeof(*s));
    if (!s) {
        close(listen_fd);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->a = a;
    a->statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    s->d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, on_request, s,
        MHD_OPTION_LISTEN_SOCKET, listen_fd, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024), MHD_OPTION_END);
    if (!s->d) {
        close(listen_fd);
        free(s);
        snprintf(err, errlen, "cannot start the API server (libmicrohttpd)");
        return NULL;
    }
    return s;
}

void api_server_stop(struct api_server *s)
{
    if (!s) return;
    int fd = MHD_quiesce_daemon(s->d);
    MHD_stop_daemon(s->d);
    if (fd >= 0) close(fd);
    if (s->a->statm_fd >= 0) close(s->a->statm_fd);
    s->a->statm_fd = -1;
    if (s->a->metrics) fclose(s->a->metrics);
    s->a->metrics = NULL;
    free(s);
}

int api_listen_unix(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "%s: socket path longer than %zu bytes", path,
                 sizeof(sa.sun_path) - 1);
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -errno;
    }
    int br = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    if (br < 0 && errno == EADDRINUSE) {
        /* a leftover socket file: replace it only if nobody serves it */
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        if (probe >= 0) close(probe);
        struct stat sb;
        if (live || lstat(path, &sb) < 0 || !S_ISSOCK(sb.st_mode)) {
            close(fd);
            snprintf(err, errlen, "%s: %s", path,
                     live ? "another process is serving this socket"
                          : "exists and is not a socket");
            return -EADDRINUSE;
        }
        unlink(path);
        br = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    }
    if (br < 0) {
        int e = errno;
        close(fd);
        snprintf(err, errlen, "%s: cannot bind: %s", path, strerror(e));
        return -e;
    }
    if (listen(fd, 16) < 0) {
        int e = errno;
        close(fd);
        snprintf(err, errlen, "%s: listen: %s", path, strerror(e));
        return -e;
    }
    return fd;
}

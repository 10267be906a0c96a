// clang-format off
// SOURCES: src/api/api.c src/vm/config.c src/util/log.c src/util/paths.c src/util/err.c
// SOURCES: src/backend/chr/sock.c src/util/ratelimit.c src/vm/broker.c src/backend/net/spec.c
// SOURCES: src/backend/vsock/spec.c
// LIBS: -ljson-c -lmicrohttpd
/* The REST API's request handling (api_handle) and the configuration parser on arbitrary
 * requests. Input: byte 0 picks the method, then the path up to '\n', then the body. Every
 * answer must be a known status; error bodies are {"fault_message": ...}; 200 bodies are JSON.
 * Then the body as a whole configuration: whatever vm_spec_from_json accepts must survive
 * vm_spec_to_json -> vm_spec_from_json unchanged. The VM layer is replaced by a fake that
 * records calls (the harness never boots anything). */
// clang-format on
#include "api/api.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the fake VM layer ---- */
bool sandbox_active(void)
{
    return false;
}
struct vm {
    enum vm_state state;
};
static struct vm fake_vm;
const char *vm_state_name(enum vm_state s)
{
    return s == VM_RUNNING ? "running" : s == VM_PAUSED ? "paused" : "not started";
}
void vm_get_info(struct vm *vm, struct vm_info *info)
{
    memset(info, 0, sizeof(*info));
    info->state = vm->state;
}
int vm_start(struct vm *vm, const struct vm_options *o, char *err, size_t errlen)
{
    /* what InstanceStart hands over must be a consistent machine */
    if (o->machine.cpus < 1 || o->machine.cpus > VM_MAX_CPUS || o->ndisks > MACHINE_MAX_DISKS)
        abort();
    if (o->machine.ram_size < MACHINE_MIN_RAM) abort();
    vm->state = VM_RUNNING;
    return 0 * snprintf(err, errlen, "ok");
}
int vm_pause(struct vm *vm, char *err, size_t errlen)
{
    if (vm->state == VM_NOT_STARTED) return -EBUSY + 0 * snprintf(err, errlen, "not started");
    vm->state = VM_PAUSED;
    return 0;
}
int vm_resume(struct vm *vm, char *err, size_t errlen)
{
    if (vm->state == VM_NOT_STARTED) return -EBUSY + 0 * snprintf(err, errlen, "not started");
    vm->state = VM_RUNNING;
    return 0;
}
int vm_request_shutdown(struct vm *vm, char *err, size_t errlen)
{
    return vm->state == VM_RUNNING ? 0 : -EBUSY + 0 * snprintf(err, errlen, "no");
}
int snapshot_read_state(int fd, uint8_t **buf, size_t *len, char *err, size_t errlen)
{
    (void)fd, (void)buf, (void)len;
    snprintf(err, errlen, "the fake VM reads no snapshots");
    return -EINVAL;
}
char *snapshot_config(const uint8_t *state, size_t len, char *err, size_t errlen)
{
    (void)state, (void)len;
    snprintf(err, errlen, "the fake VM reads no snapshots");
    return NULL;
}
int vm_snapshot_create(struct vm *vm, const char *state_path, const char *mem_path,
                       const char *config_json, struct snap_save_stats *stats, char *err,
                       size_t errlen)
{
    (void)vm, (void)state_path, (void)mem_path, (void)stats, (void)config_json;
    snprintf(err, errlen, "the fake VM takes no snapshots");
    return -EBUSY;
}
int vm_disk_snapshot(struct vm *vm, enum blk_snap_op op, const char *name,
                     bool done[MACHINE_MAX_DISKS], char *err, size_t errlen)
{
    /* PUT /vessel/disk-snapshot must only reach a started VM, with a checked name */
    if (vm->state == VM_NOT_STARTED || (op != BLK_SNAP_CREATE && op != BLK_SNAP_DELETE) ||
        !name[0] || strlen(name) >= 128 || strchr(name, ' '))
        abort();
    for (unsigned i = 0; i < MACHINE_MAX_DISKS; i++)
        done[i] = i == 0;
    return name[0] == 'x' ? -EBUSY + 0 * snprintf(err, errlen, "the fake VM is busy") : 0;
}
int vm_update_drive(struct vm *vm, unsigned index, const char *path, char *err, size_t errlen)
{
    /* PATCH /drives/{id} must only reach a booted VM, with an index InstanceStart gave a disk
     * and a path that fits a vm_disk */
    if (vm->state == VM_NOT_STARTED || index >= MACHINE_MAX_DISKS || !path[0] ||
        strlen(path) >= sizeof(((struct vm_disk *)0)->path))
        abort();
    return path[0] == 'x' ? -ENOENT + 0 * snprintf(err, errlen, "cannot open %s", path) : 0;
}
void vm_quit(struct vm *vm)
{
    (void)vm;
}
void vm_set_console(struct vm *vm, struct chr *c)
{
    (void)vm;
    chr_destroy(c);
}

static bool is_fault(const char *body)
{
    json_object *o = json_tokener_parse(body), *m;
    bool ok = o && json_object_is_type(o, json_type_object) && json_object_object_length(o) == 1 &&
              json_object_object_get_ex(o, "fault_message", &m) &&
              json_object_is_type(m, json_type_string);
    json_object_put(o);
    return ok;
}

static struct api_ctx ctx;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    static const char *const methods[] = {"GET", "PUT", "PATCH", "DELETE"};
    if (len < 1) return 0;
    memset(&ctx, 0, sizeof(ctx));
    pthread_mutex_init(&ctx.lock, NULL);
    vm_spec_init(&ctx.spec);
    fake_vm.state = data[0] & 4 ? VM_RUNNING : VM_NOT_STARTED;
    ctx.vm = &fake_vm;
    ctx.id = "fuzz";
    ctx.statm_fd = -1;
    if (data[0] & 8) { /* two drives, so PATCH /drives/{id} can find one */
        static const char *const drives[] = {
            "{\"drive_id\":\"data\",\"is_root_device\":false,\"path_on_host\":\"d.img\"}",
            "{\"drive_id\":\"rootfs\",\"is_root_device\":true,\"path_on_host\":\"r.img\"}"};
        for (int i = 0; i < 2; i++) {
            char err[600];
            json_object *d = json_tokener_parse(drives[i]);
            if (!d || vm_spec_set_drive(&ctx.spec, NULL, d, err, sizeof(err))) abort();
            json_object_put(d);
        }
    }
    const char *method = methods[data[0] & 3];
    const uint8_t *nl = memchr(data + 1, '\n', len - 1);
    size_t plen = nl ? (size_t)(nl - data - 1) : len - 1;
    char path[256];
    if (plen >= sizeof(path)) plen = sizeof(path) - 1;
    memcpy(path, data + 1, plen);
    path[plen] = 0;
    /* these open files at paths from the body: not with fuzzer-made paths on the host */
    if (!strncmp(path, "/metrics", 8) || !strncmp(path, "/logger", 7) ||
        !strncmp(path, "/serial", 7))
        path[1] = 'X';
    const char *body = nl ? (const char *)nl + 1 : "";
    size_t blen = nl ? len - (size_t)(nl + 1 - data) : 0;
    char *b = malloc(blen + 1); /* the server NUL-terminates what it collected */
    memcpy(b, body, blen);
    b[blen] = 0;

    struct api_response r;
    api_handle(&ctx, method, path, b, blen, &r);
    switch (r.status) {
    case 200:
        if (!r.body) abort();
        {
            json_object *o = json_tokener_parse(r.body);
            if (!o) abort();
            json_object_put(o);
        }
        break;
    case 204:
        if (r.body) abort();
        break;
    case 400:
    case 404:
    case 405:
    case 413:
        if (!r.body || !is_fault(r.body)) abort();
        break;
    default: abort();
    }
    free(r.body);

    /* the configuration parser: accepted -> round trip */
    json_object *o = json_tokener_parse(b);
    if (o) {
        static struct vm_spec s1, s2;
        char err[600];
        if (vm_spec_from_json(&s1, o, err, sizeof(err)) == 0) {
            json_object *back = vm_spec_to_json(&s1, true);
            if (vm_spec_from_json(&s2, back, err, sizeof(err)) != 0) abort();
            if (memcmp(&s1, &s2, sizeof(s1)) != 0) abort();
            json_object_put(back);
        }
        json_object_put(o);
    }
    free(b);
    pthread_mutex_destroy(&ctx.lock);
    return 0;
}

/* The REST API of a VM process: HTTP/1.1 + JSON on a Unix socket, compatible with Firecracker's
 * API (shared/specs/firecracker-api.yaml) where the two overlap, vessel's own endpoints under
 * /vessel/ (docs/api.md). libmicrohttpd parses HTTP, json-c parses JSON; api_handle() is the
 * part that is vessel's own and is what the fuzz harness drives. */
#ifndef VESSEL_API_API_H
#define VESSEL_API_API_H
#include "vm/config.h"
#include "vm/vm.h"
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define API_MAX_BODY 51200 /* Firecracker's default http_api_max_payload_size */

struct api_ctx {
    struct vm *vm;
    const char *id; /* instance id: the VM's name, or "anonymous-instance" */
    pthread_mutex_t lock;
    struct vm_spec spec; /* pre-boot configuration, edited by PUT/PATCH */
    char cmdline[VM_CMDLINE_MAX + 64];
    struct vm_options opts; /* what InstanceStart booted (points into spec and cmdline) */
    bool logger_set, metrics_set;
    FILE *metrics; /* PUT /metrics: opened then, kept (the sandbox opens nothing later) */
    int statm_fd;  /* /proc/self/statm, opened by api_server_start (-1: none) */
    char metrics_path[VM_PATH_MAX];
    char serial_out[VM_PATH_MAX];
    char restore_state[VM_PATH_MAX], restore_mem[VM_PATH_MAX]; /* PUT /snapshot/load */
    bool console_fixed; /* a stored VM: its console is console.log/console.sock (no PUT /serial) */
    /* Called by InstanceStart before the VM boots (admission, console); 0 or -errno + err. */
    int (*before_start)(struct api_ctx *a, char *err, size_t errlen);
    void *user;
};

struct api_response {
    unsigned status;
    char *body;        /* malloc'd JSON or NULL (204) */
    const char *allow; /* for 405: the methods the path takes */
};

/* Handle one request (method, path, body of len bytes: untrusted). Fills r; never fails. */
void api_handle(struct api_ctx *a, const char *method, const char *path, const char *body,
                size_t len, struct api_response *r);

struct api_server;
/* Serve a on the listening Unix socket fd (owned from now on). NULL with err on failure. */
struct api_server *api_server_start(struct api_ctx *a, int listen_fd, char *err, size_t errlen);
void api_server_stop(struct api_server *s);

/* Bind and listen on a Unix socket at path (an existing socket file is replaced only if no one
 * answers on it). Returns the fd or -errno with err. */
int api_listen_unix(const char *path, char *err, size_t errlen);
#endif

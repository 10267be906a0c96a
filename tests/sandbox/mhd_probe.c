/* A stand-in for the VM process's REST API server, run inside vessel's sandbox: libmicrohttpd
 * with its internal polling thread on epoll, on a Unix socket bound before the sandbox, and
 * json-c for the bodies. tests/sandbox/run.sh drives it with curl; any system call of this
 * stack that the process filter does not allow kills it with SIGSYS.
 * usage: mhd_probe SOCKET_PATH   (serves until stdin closes) */
#include "vm/sandbox.h"
#include <json-c/json.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define BODY_MAX 4096

struct req {
    char body[BODY_MAX + 1];
    size_t len;
    bool too_big;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, json_object *o)
{
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(s), (void *)s, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    json_object_put(o);
    return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    struct req *q = *con_cls;
    if (!q) {
        q = calloc(1, sizeof(*q));
        if (!q) return MHD_NO;
        *con_cls = q;
        return MHD_YES;
    }
    if (*data_size) {
        if (q->len + *data_size > BODY_MAX)
            q->too_big = true;
        else {
            memcpy(q->body + q->len, data, *data_size);
            q->len += *data_size;
        }
        *data_size = 0;
        return MHD_YES;
    }
    json_object *o = json_object_new_object();
    if (q->too_big) {
        json_object_object_add(o, "fault_message", json_object_new_string("body too large"));
        return reply(c, 413, o);
    }
    if (!strcmp(method, "GET")) {
        json_object_object_add(o, "id", json_object_new_string("probe"));
        json_object_object_add(o, "url", json_object_new_string(url));
        return reply(c, 200, o);
    }
    q->body[q->len] = 0;
    json_object *in = json_tokener_parse(q->body);
    if (!in) {
        json_object_object_add(o, "fault_message", json_object_new_string("malformed JSON"));
        return reply(c, 400, o);
    }
    json_object_object_add(o, "echo", in);
    return reply(c, 200, o);
}

static void done(void *cls, struct MHD_Connection *c, void **con_cls,
                 enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    free(*con_cls);
    *con_cls = NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: mhd_probe SOCKET_PATH\n");
        return 2;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
    unlink(argv[1]);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
        perror("mhd_probe: socket");
        return 1;
    }
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, handler, NULL,
        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED, done, NULL, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "mhd_probe: MHD_start_daemon failed\n");
        return 1;
    }
    static int fds[SANDBOX_MAX_FDS];
    int n = sandbox_list_fds(fds, SANDBOX_MAX_FDS);
    struct sandbox_opts o = {.keep_fds = fds, .nkeep = n > 0 ? (size_t)n : 0};
    char err[256];
    if (n < 0 || sandbox_enter(&o, err, sizeof(err)) < 0) {
        fprintf(stderr, "mhd_probe: %s\n", err);
        return 1;
    }
    printf("READY\n");
    fflush(stdout);
    char c;
    while (read(0, &c, 1) > 0) {
    }
    MHD_stop_daemon(d);
    printf("STOPPED\n");
    return 0;
}

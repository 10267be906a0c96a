/* vsock backends: the host side of a virtio-vsock device (dev/virtio/vsock.h). The device
 * model speaks the virtio-vsock protocol with the guest; the backend owns every host socket
 * (DESIGN.md: a device model never opens a socket). One backend, the Unix-socket one
 * (backend/vsock/uds.c), follows Firecracker's host-side convention:
 *   - it listens on `path`; a host program connects and writes "CONNECT <port>\n"; the device
 *     opens a guest connection to that port and, when the guest accepts, the backend answers
 *     "OK <hostport>\n" on the socket, which from then on carries the stream; a refusal closes it;
 *   - a guest connection to host port P is a connection to the Unix socket "<path>_<P>".
 * Connections are numbered 0..VSOCK_MAX_CONNS-1 by the device (its table's slots); the backend
 * keeps the host socket of each.
 *
 * Threading contract (as backend/net/net.h): the backend has its own thread; the device's
 * callbacks (struct vsock_client) run on that thread only, one at a time, and the device calls
 * the backend's connection functions (connect, recv, send, ...) only from inside them. A hart
 * thread only calls vsock_backend_kick (one eventfd write). */
#ifndef VESSEL_BACKEND_VSOCK_VSOCK_H
#define VESSEL_BACKEND_VSOCK_VSOCK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Connections at once, both directions and every state (half-open ones included): a guest
 * cannot make the process hold more host sockets than this. */
#define VSOCK_MAX_CONNS      64
/* Host programs that connected and have not yet written their CONNECT line; more wait in
 * the listening socket's queue (at most VSOCK_LISTEN_BACKLOG, the kernel's cap permitting). */
#define VSOCK_MAX_HANDSHAKE  8
#define VSOCK_LISTEN_BACKLOG 128
#define VSOCK_PATH_MAX       108 /* sizeof(sun_path) */
/* "<path>_<port>" must fit sun_path for every port: path at most this long. */
#define VSOCK_UDS_PATH_MAX   (VSOCK_PATH_MAX - 1 - 11)
#define VSOCK_HOST_CID       2

struct vsock_client {
    /* vsock_backend_kick() was called: move the device's queues forward. */
    void (*run)(void *ctx);
    /* A host program asked for guest port `port` (its CONNECT line): the connection slot the
     * device gives it, or -1 to refuse (the backend closes the socket). */
    int (*host_connect)(void *ctx, uint32_t port);
    /* The poll events (POLLIN, POLLOUT) the device wants on connection `conn` now. */
    short (*events)(void *ctx, unsigned conn);
    /* Poll reported revents on connection `conn`. */
    void (*ready)(void *ctx, unsigned conn, short revents);
    void *ctx;
};

struct vsock_backend;
struct vsock_backend_ops {
    void (*attach)(struct vsock_backend *b, const struct vsock_client *c);
    void (*kick)(struct vsock_backend *b);
    int (*connect)(struct vsock_backend *b, unsigned conn, uint32_t port);
    void (*accepted)(struct vsock_backend *b, unsigned conn, uint32_t host_port);
    ssize_t (*recv)(struct vsock_backend *b, unsigned conn, void *buf, size_t len);
    ssize_t (*send)(struct vsock_backend *b, unsigned conn, const void *buf, size_t len);
    void (*shutdown_write)(struct vsock_backend *b, unsigned conn);
    void (*close_conn)(struct vsock_backend *b, unsigned conn);
    void (*close)(struct vsock_backend *b, bool unlink_path);
};
struct vsock_backend {
    const struct vsock_backend_ops *ops;
};

/* Attach c (copied), or detach with NULL (which closes every connection's host socket). Any
 * thread but the backend's; when it returns no callback of the previous client runs. */
static inline void vsock_backend_attach(struct vsock_backend *b, const struct vsock_client *c)
{
    b->ops->attach(b, c);
}
/* Ask for the client's run() on the backend thread soon. Any thread; never blocks. */
static inline void vsock_backend_kick(struct vsock_backend *b)
{
    b->ops->kick(b);
}
/* From the client's callbacks only. connect: the guest asks for host port `port`: 0 with the
 * host socket kept as connection conn, or -errno (nobody listens). accepted: the guest took a
 * host-initiated connection (answer "OK <host_port>\n"). recv/send: non-blocking, bytes, 0 at
 * end of stream (recv), -EAGAIN, or -errno. close_conn: forget the connection's socket. */
static inline int vsock_backend_connect(struct vsock_backend *b, unsigned conn, uint32_t port)
{
    return b->ops->connect(b, conn, port);
}
static inline void vsock_backend_accepted(struct vsock_backend *b, unsigned conn, uint32_t hp)
{
    b->ops->accepted(b, conn, hp);
}
static inline ssize_t vsock_backend_recv(struct vsock_backend *b, unsigned conn, void *buf,
                                         size_t len)
{
    return b->ops->recv(b, conn, buf, len);
}
static inline ssize_t vsock_backend_send(struct vsock_backend *b, unsigned conn, const void *buf,
                                         size_t len)
{
    return b->ops->send(b, conn, buf, len);
}
static inline void vsock_backend_shutdown_write(struct vsock_backend *b, unsigned conn)
{
    b->ops->shutdown_write(b, conn);
}
static inline void vsock_backend_close_conn(struct vsock_backend *b, unsigned conn)
{
    b->ops->close_conn(b, conn);
}
/* Stop the thread, close every socket; unlink_path: remove the listening socket's file too
 * (a sandboxed process may not: its monitor does). NULL: nothing. */
void vsock_backend_close(struct vsock_backend *b, bool unlink_path);

/* ---- configuration: --vsock cid=N,path=P ---- */

struct vsock_spec {
    bool present;
    uint32_t cid; /* >= 3 */
    char path[VSOCK_PATH_MAX];
};

/* Check cid (3..0xfffffffe: 0-2 are reserved, -1 is VMADDR_CID_ANY) and path (non-empty, short
 * enough for "<path>_<port>" in sun_path). 0 or -EINVAL with one line in err. */
int vsock_spec_check(uint32_t cid, const char *path, char *err, size_t errlen);
/* "cid=N,path=P" (either order). 0, or -EINVAL with one line in err. */
int vsock_spec_parse(const char *s, struct vsock_spec *out, char *err, size_t errlen);

/* Bind and listen on spec->path (a stale socket file nobody listens on is replaced; a live one
 * or another file is an error) and start the backend thread. 0 or -errno with one line in err
 * (in use: -EADDRINUSE). */
int vsock_uds_open(struct vsock_backend **out, const struct vsock_spec *spec, char *err,
                   size_t errlen);
/* Remove the socket file at path if it is a socket nobody listens on (a VM process's monitor
 * cleaning up after it: a live socket is another program's). */
void vsock_uds_remove_stale(const char *path);
#endif

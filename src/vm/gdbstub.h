/* GDB remote stub: `vessel run --gdb PORT [--paused]`, then in gdb-multiarch:
 * `target remote :PORT`. All-stop mode; each hart is a thread (id = hart + 1). Supports
 * registers (x0-x31, pc, f0-f31, fflags, frm, fcsr), memory through the current hart's
 * translation, software breakpoints, single-step, Ctrl-C, detach and kill. */
#ifndef VESSEL_VM_GDBSTUB_H
#define VESSEL_VM_GDBSTUB_H
#include "machine/machine.h"
#include <stdbool.h>
#include <stddef.h>

struct gdbstub;

/* Listen on 127.0.0.1:port. Returns 0 or -errno with a message in err. */
int gdbstub_create(struct gdbstub **out, int port, char *err, size_t errlen);
/* Serve this machine until gdbstub_detach (called before the machine is destroyed). With
 * wait_for_debugger, every hart is parked until gdb connects and continues. */
void gdbstub_attach(struct gdbstub *g, struct machine *m, bool wait_for_debugger);
void gdbstub_detach(struct gdbstub *g);
void gdbstub_destroy(struct gdbstub *g);

/* For tests and fuzzing: a stub without socket or thread whose replies go to reply_fd;
 * gdbstub_feed() handles bytes as if the client had sent them. NULL on OOM. */
struct gdbstub *gdbstub_create_detached(int reply_fd);
void gdbstub_feed(struct gdbstub *g, const uint8_t *buf, size_t len);
#endif

#include "vm/vm.h"
#include "vm/gdbstub.h"
#include "util/log.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static struct machine *volatile current_machine;

static void on_quit(void *ctx)
{
    (void)ctx;
    struct machine *m = current_machine;
    if (m)
        machine_post_event(m, MEV_QUIT, 0, NULL);
}

int vm_run(const struct vm_options *o)
{
    struct chr *console = chr_stdio_create(on_quit, NULL);
    if (!console) {
        fprintf(stderr, "vessel: cannot set up the console: %s\n", strerror(errno));
        return VM_EXIT_HOST_ERROR;
    }
    int status;
    struct gdbstub *gdb = NULL;
    if (o->gdb_port) {
        char err[256];
        if (gdbstub_create(&gdb, o->gdb_port, err, sizeof(err)) < 0) {
            chr_destroy(console);
            fprintf(stderr, "vessel: %s\n", err);
            return VM_EXIT_HOST_ERROR;
        }
        log_info("gdb stub listening on 127.0.0.1:%d", o->gdb_port);
    }
    bool first = true;
    for (;;) {
        struct machine *m;
        char err[512];
        int r = machine_create(&m, &o->machine, console, err, sizeof(err));
        if (r < 0) {
            gdbstub_destroy(gdb);
            chr_destroy(console);
            fprintf(stderr, "vessel: %s\n", err);
            return (r == -ENOMEM || r == -EEXIST) ? VM_EXIT_HOST_ERROR : VM_EXIT_USAGE;
        }
        current_machine = m;
        if (gdb)
            gdbstub_attach(gdb, m, first && o->paused);
        first = false;
        enum machine_event ev = machine_run(m);
        if (gdb)
            gdbstub_detach(gdb);
        current_machine = NULL;
        char msg[sizeof(m->msg)];
        snprintf(msg, sizeof(msg), "%s", m->msg);
        int code = m->fail_code;
        machine_destroy(m);
        if (ev == MEV_REBOOT && !o->no_reboot) {
            log_info("guest reboot");
            continue;
        }
        gdbstub_destroy(gdb);
        chr_destroy(console);
        switch (ev) {
        case MEV_POWEROFF:
        case MEV_REBOOT:
        case MEV_QUIT:
            status = VM_EXIT_OK;
            break;
        case MEV_GUEST_FAIL:
            fprintf(stderr, "vessel: the guest reported failure (code %d)\n", code);
            status = VM_EXIT_GUEST_FAIL;
            break;
        case MEV_FATAL:
            fprintf(stderr, "vessel: the guest cannot continue: %s\n", msg);
            status = VM_EXIT_GUEST_DEAD;
            break;
        default:
            fprintf(stderr, "vessel: host error: %s\n", msg[0] ? msg : "unknown");
            status = VM_EXIT_HOST_ERROR;
            break;
        }
        return status;
    }
}

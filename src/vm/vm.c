#include "vm/vm.h"
#include "vm/gdbstub.h"
#include "backend/block/block.h"
#include "util/log.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static struct machine *volatile current_machine;
static int vm_run_machine(const struct vm_options *o, const struct machine_config *mc);

/* Ctrl-A p, on the console's reader thread. Same lifetime rule as on_quit (current_machine is
 * cleared before machine_destroy; the window between reading it and using it is the one
 * on_quit has too, until requests go through the machine's control thread, DESIGN.md). */
static void on_powerdown(void *ctx)
{
    (void)ctx;
    struct machine *m = current_machine;
    if (m) machine_request_powerdown(m);
}

static void on_quit(void *ctx)
{
    (void)ctx;
    struct machine *m = current_machine;
    if (m) machine_post_event(m, MEV_QUIT, 0, NULL);
}

static void close_disks(struct machine_config *mc)
{
    for (unsigned i = 0; i < mc->ndisks; i++)
        blk_close(mc->disks[i].backend);
    mc->ndisks = 0;
}

/* Open (and lock) every disk before anything runs; the locks are kept across guest reboots. */
static int open_disks(const struct vm_options *o, struct machine_config *mc)
{
    for (unsigned i = 0; i < o->ndisks; i++) {
        char err[512];
        struct blk_open_opts bo = {.readonly = o->disks[i].readonly, .direct = o->disks[i].direct};
        int r = blk_open(&mc->disks[i].backend, o->disks[i].path, &bo, err, sizeof(err));
        if (r < 0) {
            close_disks(mc);
            fprintf(stderr, "vessel: %s\n", err);
            return r == -ENOMEM ? VM_EXIT_HOST_ERROR : VM_EXIT_USAGE;
        }
        mc->disks[i].serial = o->disks[i].serial[0] ? o->disks[i].serial : NULL;
        mc->ndisks = i + 1;
    }
    return 0;
}

int vm_run(const struct vm_options *o)
{
    struct machine_config mc = o->machine;
    mc.ndisks = 0;
    int dr = open_disks(o, &mc);
    if (dr) return dr;
    int status = vm_run_machine(o, &mc);
    close_disks(&mc);
    return status;
}

static int vm_run_machine(const struct vm_options *o, const struct machine_config *mc)
{
    struct chr *console = chr_stdio_create(on_quit, NULL);
    if (!console) {
        fprintf(stderr, "vessel: cannot set up the console: %s\n", strerror(errno));
        return VM_EXIT_HOST_ERROR;
    }
    chr_stdio_set_powerdown(console, on_powerdown, NULL);
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
        int r = machine_create(&m, mc, console, err, sizeof(err));
        if (r < 0) {
            gdbstub_destroy(gdb);
            chr_destroy(console);
            fprintf(stderr, "vessel: %s\n", err);
            return (r == -ENOMEM || r == -EEXIST) ? VM_EXIT_HOST_ERROR : VM_EXIT_USAGE;
        }
        current_machine = m;
        if (gdb) gdbstub_attach(gdb, m, first && o->paused);
        first = false;
        enum machine_event ev = machine_run(m);
        if (gdb) gdbstub_detach(gdb);
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
        case MEV_QUIT: status = VM_EXIT_OK; break;
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

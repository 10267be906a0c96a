#include "vm/vm.h"
#include "vm/gdbstub.h"
#include "backend/block/block.h"
#include "machine/loader.h"
#include "vm/cgroup.h"
#include "vm/sandbox.h"
#include "util/log.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static struct machine *volatile current_machine;
static int vm_run_machine(const struct vm_options *o, const struct machine_config *mc);

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

/* Boot images are opened once: a guest reboot reads them again through the open files, since
 * the sandboxed process may not open anything. */
static int open_images(const struct machine_config *mc, struct loader_file img[MACHINE_NIMG])
{
    const char *paths[MACHINE_NIMG] = {mc->firmware, mc->kernel, mc->initrd};
    const char *what[MACHINE_NIMG] = {"firmware", "kernel", "initrd"};
    for (unsigned i = 0; i < MACHINE_NIMG; i++) {
        char err[LOADER_ERR_LEN];
        img[i] = (struct loader_file){.fd = -1};
        if (!paths[i]) continue;
        int r = loader_file_open(&img[i], paths[i], what[i], (size_t)mc->ram_size, err);
        if (r < 0) {
            for (unsigned j = 0; j < i; j++)
                loader_file_close(&img[j]);
            fprintf(stderr, "vessel: %s\n", err);
            return r == -ENOMEM ? VM_EXIT_HOST_ERROR : VM_EXIT_USAGE;
        }
    }
    return 0;
}

static int hart_thread_sandbox(void)
{
    return sandbox_enter_thread(SANDBOX_THREAD_HART);
}

int vm_run(const struct vm_options *o)
{
    if (o->cgroup) {
        char err[512];
        /* Not fatal: the VM runs without limits and says so once. */
        if (cgroup_enter(o->cgroup, o->machine.ram_size, o->machine.cpus, err, sizeof(err)) < 0)
            fprintf(stderr, "vessel: %s\n", err);
    }
    struct machine_config mc = o->machine;
    mc.ndisks = 0;
    int dr = open_disks(o, &mc);
    if (dr) return dr;
    struct loader_file img[MACHINE_NIMG];
    dr = open_images(&mc, img);
    if (dr) {
        close_disks(&mc);
        return dr;
    }
    for (unsigned i = 0; i < MACHINE_NIMG; i++)
        mc.images[i] = img[i].fd >= 0 || img[i].data ? &img[i] : NULL;
    if (!o->no_sandbox) mc.hart_thread_init = hart_thread_sandbox;
    int status = vm_run_machine(o, &mc);
    close_disks(&mc);
    for (unsigned i = 0; i < MACHINE_NIMG; i++)
        loader_file_close(&img[i]);
    return status;
}

/* Everything is open (disks, images, console, gdb socket, guest RAM): keep what is open now
 * except what the process inherited, and enter the sandbox. */
static int enter_sandbox(const struct vm_options *o)
{
    static int fds[SANDBOX_MAX_FDS], keep[SANDBOX_MAX_FDS];
    int n = sandbox_list_fds(fds, SANDBOX_MAX_FDS);
    if (n < 0) {
        fprintf(stderr, "vessel: sandbox: listing file descriptors: %s\n", strerror(-n));
        return -1;
    }
    size_t nkeep = 0;
    for (int i = 0; i < n; i++) {
        bool inherited = false;
        for (int j = 0; j < o->ninherited; j++)
            if (o->inherited_fds[j] == fds[i]) inherited = true;
        if (!inherited) keep[nkeep++] = fds[i];
    }
    struct sandbox_opts so = {.user = o->user, .keep_fds = keep, .nkeep = nkeep};
    char err[512];
    if (sandbox_enter(&so, err, sizeof(err)) < 0) {
        fprintf(stderr, "vessel: %s (--no-sandbox runs without it)\n", err);
        return -1;
    }
    return 0;
}

static int vm_run_machine(const struct vm_options *o, const struct machine_config *mc)
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
        int r = machine_create(&m, mc, console, err, sizeof(err));
        if (r < 0) {
            gdbstub_destroy(gdb);
            chr_destroy(console);
            fprintf(stderr, "vessel: %s\n", err);
            return (r == -ENOMEM || r == -EEXIST) ? VM_EXIT_HOST_ERROR : VM_EXIT_USAGE;
        }
        if (first && !o->no_sandbox && enter_sandbox(o) < 0) {
            machine_destroy(m);
            gdbstub_destroy(gdb);
            chr_destroy(console);
            return VM_EXIT_HOST_ERROR;
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

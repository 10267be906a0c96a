#include "vm/vm.h"
#include "cpu/riscv/jit/fastmem.h"
#include "backend/block/block.h"
#include "machine/loader.h"
#include "vm/cgroup.h"
#include "machine/snapshot.h"
#include "util/clock.h"
#include "vm/broker.h"
#include "vm/sandbox.h"
#include "util/err.h"
#include "dev/virtio/blk.h"
#include "vm/gdbstub.h"
#include "util/log.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

struct vm {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    enum vm_state state;
    struct vm_options opts; /* valid from the start on */
    bool start_req;         /* vm_start handed over opts; vm_run builds the machine */
    int start_result;       /* for the waiting vm_start: 1 pending, 0 ok, <0 failed */
    char start_err[512];
    bool quit;         /* vm_quit before the machine existed */
    bool drive_busy;   /* vm_update_drive works on vm->m's device without the lock */
    struct machine *m; /* the current machine, NULL between reboots */
    struct machine_config mc;
    struct loader_file img[MACHINE_NIMG]; /* boot images, opened once (read on every boot) */
    struct chr *console;
    bool owns_console;
    struct chr *serial; /* vm_set_console: owned, replaces console for the UART */
    struct gdbstub *gdb;
    unsigned boots;
    uint64_t started_ms;
    uint64_t restore_us; /* restored from a snapshot: vessel's own work, else 0 */
    void (*on_state)(void *ctx, enum vm_state st);
    void *ctx;
};

const char *vm_state_name(enum vm_state s)
{
    switch (s) {
    case VM_NOT_STARTED: return "not started";
    case VM_RUNNING: return "running";
    case VM_PAUSED: return "paused";
    case VM_HALTED: return "halted";
    }
    return "?";
}

static void on_quit(void *ctx);
static void on_powerdown(void *ctx);
static struct vm *_Atomic stdio_vm;

struct vm *vm_new(struct chr *console, void (*on_state)(void *ctx, enum vm_state st), void *ctx)
{
    struct vm *vm = calloc(1, sizeof(*vm));
    if (!vm) return NULL;
    if (!console) {
        console = chr_stdio_create(on_quit, NULL);
        if (!console) {
            int e = errno;
            free(vm);
            errno = e;
            return NULL;
        }
        vm->owns_console = true;
        atomic_store(&stdio_vm, vm);
        chr_stdio_set_powerdown(console, on_powerdown, NULL);
    }
    pthread_mutex_init(&vm->lock, NULL);
    pthread_cond_init(&vm->cond, NULL);
    vm->console = console;
    vm->on_state = on_state;
    vm->ctx = ctx;
    return vm;
}

void vm_free(struct vm *vm)
{
    if (!vm) return;
    if (vm->serial) chr_destroy(vm->serial); /* before the console it takes input from */
    if (vm->owns_console) {
        atomic_store(&stdio_vm, NULL);
        chr_destroy(vm->console);
    }
    pthread_mutex_destroy(&vm->lock);
    pthread_cond_destroy(&vm->cond);
    free(vm);
}

/* Called with vm->lock held; the callback runs after it is dropped (see notify). */
static void set_state(struct vm *vm, enum vm_state st)
{
    vm->state = st;
    pthread_cond_broadcast(&vm->cond);
}

static void notify(struct vm *vm, enum vm_state st)
{
    if (vm->on_state) vm->on_state(vm->ctx, st);
}

static void close_disks(struct machine_config *mc)
{
    for (unsigned i = 0; i < mc->ndisks; i++)
        blk_close(mc->disks[i].backend);
    mc->ndisks = 0;
}

/* Guest RAM as a memfd under the JIT (its fast memory maps user pages again), made before the
 * sandbox and kept across reboots; without it (other engine, VESSEL_FASTMEM=0, no memfd) RAM
 * is private anonymous memory. */
static void open_ram(struct machine_config *mc)
{
    mc->ram_memfd = false;
    if (mc->engine != ENGINE_JIT || !fastmem_wanted()) return;
    int fd = memfd_create("vessel-ram", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)mc->ram_size) < 0) {
        log_warn("guest RAM: no memfd (%s): the JIT runs without fast memory", strerror(errno));
        if (fd >= 0) close(fd);
        return;
    }
    mc->ram_memfd = true;
    mc->ram_fd = fd;
}

static void close_ram(struct machine_config *mc)
{
    if (mc->ram_memfd) close(mc->ram_fd);
    mc->ram_memfd = false;
}

/* Open (and lock) every disk before anything runs; the locks are kept across guest reboots. */
static int open_disks(const struct vm_options *o, struct machine_config *mc, char *err,
                      size_t errlen)
{
    for (unsigned i = 0; i < o->ndisks; i++) {
        struct blk_open_opts bo = {.readonly = o->disks[i].readonly,
                                   .direct = o->disks[i].direct,
                                   .format = (enum blk_format)o->disks[i].format};
        int r = blk_open(&mc->disks[i].backend, o->disks[i].path, &bo, err, errlen);
        if (r < 0) {
            close_disks(mc);
            return r;
        }
        mc->disks[i].serial = o->disks[i].serial[0] ? o->disks[i].serial : NULL;
        mc->ndisks = i + 1;
    }
    return 0;
}

static int exit_status_for(int r)
{
    return (r == -ENOMEM || r == -EEXIST || r == -EPERM) ? VM_EXIT_HOST_ERROR : VM_EXIT_USAGE;
}

/* The network backend is opened once, before the sandbox (host forwards bind their ports now),
 * and kept across guest reboots with its connections and forwards. */
static int open_net(const struct vm_options *o, struct machine_config *mc, char *err, size_t errlen)
{
    mc->net = NULL;
    if (o->net.kind == NET_NONE) return 0;
    int r = net_backend_open(&mc->net, &o->net, err, errlen);
    if (r < 0) return r;
    if (o->mac_set)
        memcpy(mc->mac, o->mac, 6);
    else
        net_mac_generate(mc->mac);
    log_info("network: %02x:%02x:%02x:%02x:%02x:%02x", mc->mac[0], mc->mac[1], mc->mac[2],
             mc->mac[3], mc->mac[4], mc->mac[5]);
    return 0;
}

/* The vsock backend likewise: it listens on its Unix socket from now on, across reboots. */
static int open_vsock(const struct vm_options *o, struct machine_config *mc, char *err,
                      size_t errlen)
{
    mc->vsock = NULL;
    if (!o->vsock.present) return 0;
    int r = vsock_uds_open(&mc->vsock, &o->vsock, err, errlen);
    if (r < 0) return r;
    mc->vsock_cid = o->vsock.cid;
    log_info("vsock: guest CID %u, host socket %s", o->vsock.cid, o->vsock.path);
    return 0;
}

static void close_net(struct machine_config *mc)
{
    net_backend_close(mc->net);
    mc->net = NULL;
    /* A sandboxed process may not unlink: its monitor removes the socket file (cli/run.c). */
    vsock_backend_close(mc->vsock, !sandbox_active());
    mc->vsock = NULL;
}

/* Boot images are opened once: a guest reboot reads them again through the open files, since
 * the sandboxed process may not open anything. */
static int open_images(struct vm *vm, char *err, size_t errlen)
{
    const struct machine_config *mc = &vm->mc;
    const char *paths[MACHINE_NIMG] = {mc->firmware, mc->kernel, mc->initrd};
    const char *what[MACHINE_NIMG] = {"firmware", "kernel", "initrd"};
    for (unsigned i = 0; i < MACHINE_NIMG; i++)
        vm->img[i] = (struct loader_file){.fd = -1};
    for (unsigned i = 0; i < MACHINE_NIMG; i++) {
        if (!paths[i]) continue;
        char lerr[LOADER_ERR_LEN];
        int r = loader_file_open(&vm->img[i], paths[i], what[i], (size_t)mc->ram_size, lerr);
        if (r < 0) {
            for (unsigned j = 0; j < i; j++)
                loader_file_close(&vm->img[j]);
            snprintf(err, errlen, "%s", lerr);
            return r;
        }
        vm->mc.images[i] = &vm->img[i];
    }
    return 0;
}

static void close_images(struct vm *vm)
{
    for (unsigned i = 0; i < MACHINE_NIMG; i++)
        loader_file_close(&vm->img[i]);
}

static int hart_thread_sandbox(void)
{
    return sandbox_enter_thread(SANDBOX_THREAD_HART);
}

/* Everything is open (disks, images, console, sockets, guest RAM): keep what is open now except
 * what the process inherited, and enter the sandbox. */
static int enter_sandbox(const struct vm_options *o, char *err, size_t errlen)
{
    static int fds[SANDBOX_MAX_FDS], keep[SANDBOX_MAX_FDS];
    int n = sandbox_list_fds(fds, SANDBOX_MAX_FDS);
    if (n < 0)
        return err_set(err, errlen, n, "sandbox: listing file descriptors: %s", strerror(-n));
    size_t nkeep = 0;
    for (int i = 0; i < n; i++) {
        bool inherited = false;
        for (int j = 0; j < o->ninherited; j++)
            if (o->inherited_fds[j] == fds[i]) inherited = true;
        if (!inherited) keep[nkeep++] = fds[i];
    }
    /* PATCH /drives may later switch a drive to another image in the directory of one of the
     * drives it has now: the monitor opens it (vm/broker.h). */
    if (broker_available()) {
        for (unsigned i = 0; i < o->ndisks; i++) {
            char copy[sizeof(o->disks[i].path)];
            snprintf(copy, sizeof(copy), "%s", o->disks[i].path);
            const char *dir = dirname(copy);
            int r = broker_allow_dir(dir);
            if (r < 0) log_warn("PATCH /drives cannot use %s: %s", dir, strerror(-r));
        }
        if (o->snapshot_dir) {
            int r = broker_allow_dir(o->snapshot_dir);
            if (r < 0) log_warn("snapshots cannot use %s: %s", o->snapshot_dir, strerror(-r));
        }
        int r = broker_seal();
        if (r < 0) return err_set(err, errlen, r, "sandbox: the file broker: %s", strerror(-r));
    }
    struct sandbox_opts so = {.user = o->user,
                              .keep_fds = keep,
                              .nkeep = nkeep,
                              .net = o->net.kind == NET_USER,
                              .tap = o->net.kind == NET_TAP,
                              .vsock = o->vsock.present};
    char e2[400];
    int r = sandbox_enter(&so, e2, sizeof(e2));
    if (r < 0) return err_set(err, errlen, r, "%s (--no-sandbox runs without it)", e2);
    if (broker_available()) {
        static const struct blk_file_ops brokered = {.open = broker_open, .reopen = broker_reopen};
        blk_set_file_ops(&brokered);
    }
    return 0;
}

/* A snapshot to restore: its state record read and checked against the configuration (the
 * same vCPUs, memory and disks), its memory file open and checked against the record. */
static int open_snapshot(const struct vm_options *o, uint8_t **state, size_t *len, int *mem_fd,
                         char *err, size_t errlen)
{
    int sfd = open(o->restore_state, O_RDONLY | O_CLOEXEC);
    if (sfd < 0)
        return err_set(err, errlen, -errno, "snapshot %s: %s", o->restore_state, strerror(errno));
    char e2[300];
    int r = snapshot_read_state(sfd, state, len, e2, sizeof(e2));
    close(sfd);
    if (r < 0) return err_set(err, errlen, r, "snapshot %s: %s", o->restore_state, e2);
    *mem_fd = open(o->restore_mem, O_RDONLY | O_CLOEXEC);
    if (*mem_fd < 0) {
        r = err_set(err, errlen, -errno, "snapshot memory %s: %s", o->restore_mem, strerror(errno));
    } else {
        unsigned cpus, nd;
        uint64_t ram;
        r = snapshot_check(*state, *len, *mem_fd, &cpus, &ram, &nd, e2, sizeof(e2));
        if (r < 0)
            err_set(err, errlen, r, "snapshot %s: %s", o->restore_state, e2);
        else if (cpus != o->machine.cpus || ram != o->machine.ram_size || nd != o->ndisks)
            r = err_set(err, errlen, -EINVAL,
                        "the snapshot is of a VM with %u vCPUs, %llu MiB and %u disks; this VM "
                        "has %u, %llu MiB and %u",
                        cpus, (unsigned long long)(ram >> 20), nd, o->machine.cpus,
                        (unsigned long long)(o->machine.ram_size >> 20), o->ndisks);
    }
    if (r < 0) {
        if (*mem_fd >= 0) close(*mem_fd);
        *mem_fd = -1;
        free(*state);
        *state = NULL;
    }
    return r;
}

/* Cgroup, disks, images, debugger, the first machine, the sandbox. 0 or -errno with err; the
 * vm is left unstarted. */
static int vm_boot(struct vm *vm, char *err, size_t errlen)
{
    struct vm_options *o = &vm->opts;
    if (o->cgroup) {
        char cerr[400];
        /* Not fatal: the VM runs without limits and says so once. */
        if (cgroup_enter(o->cgroup, o->machine.ram_size, o->machine.cpus,
                         machine_code_per_hart(&o->machine), cerr, sizeof(cerr)) < 0)
            fprintf(stderr, "vessel: %s\n", cerr);
    }
    vm->mc = o->machine;
    vm->mc.ndisks = 0;
    vm->mc.ram_memfd = false;
    int r = open_disks(o, &vm->mc, err, errlen);
    if (r < 0) return r;
    if ((r = open_images(vm, err, errlen)) < 0) {
        close_disks(&vm->mc);
        return r;
    }
    if ((r = open_net(o, &vm->mc, err, errlen)) < 0 ||
        (r = open_vsock(o, &vm->mc, err, errlen)) < 0) {
        close_net(&vm->mc);
        close_images(vm);
        close_disks(&vm->mc);
        /* the user's to fix: a port in use, a tap missing or not theirs */
        return (r == -EADDRINUSE || r == -ENODEV || r == -EPERM || r == -EBUSY) ? -EINVAL : r;
    }
    if (!o->no_sandbox) vm->mc.hart_thread_init = hart_thread_sandbox;
    if (o->gdb_port) {
        r = gdbstub_create(&vm->gdb, o->gdb_port, err, errlen);
        if (r < 0) {
            close_net(&vm->mc);
            close_images(vm);
            close_disks(&vm->mc);
            return -EEXIST;
        }
        log_info("gdb stub listening on 127.0.0.1:%d", o->gdb_port);
    }
    /* Before the sandbox: with --engine jit this makes the harts' code caches (memfd_create,
     * an executable mapping), which machines rebuilt on a guest reboot take over
     * (jit_cache_acquire), so the filter never allows PROT_EXEC. */
    open_ram(&vm->mc);
    struct machine *m;
    uint8_t *state = NULL;
    size_t state_len = 0;
    int mem_fd = -1;
    if (o->restore_state) {
        r = open_snapshot(o, &state, &state_len, &mem_fd, err, errlen);
        if (r == 0) {
            vm->mc.restore = true;
            vm->mc.restore_mem_fd = mem_fd;
        }
    }
    if (r == 0) r = machine_create(&m, &vm->mc, vm->serial ? vm->serial : vm->console, err, errlen);
    if (o->restore_state) {
        /* a guest reboot later boots from the images again */
        vm->mc.restore = false;
        if (mem_fd >= 0) close(mem_fd); /* the mapping keeps the file */
        if (r == 0) {
            uint64_t t0 = host_monotonic_ns();
            r = machine_snapshot_load(m, state, state_len, err, errlen);
            if (r < 0) {
                machine_destroy(m);
            } else {
                vm->restore_us = (host_monotonic_ns() - t0) / 1000;
                log_info("restored %s in %.2f ms", o->restore_state, (double)vm->restore_us / 1000);
            }
        }
        free(state);
    }
    if (r == 0 && !o->no_sandbox && !sandbox_active()) {
        r = enter_sandbox(o, err, errlen);
        if (r < 0) {
            machine_destroy(m);
            r = -EPERM;
        }
    }
    if (r < 0) {
        gdbstub_destroy(vm->gdb);
        vm->gdb = NULL;
        close_net(&vm->mc);
        close_images(vm);
        close_disks(&vm->mc);
        close_ram(&vm->mc);
        return r;
    }
    vm->m = m;
    return 0;
}

static uint64_t realtime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The machine loop: run, rebuild on guest reboot, until something ends it. */
static int vm_loop(struct vm *vm)
{
    bool first = true;
    for (;;) {
        struct machine *m = vm->m;
        if (vm->gdb) gdbstub_attach(vm->gdb, m, first && vm->opts.paused);
        first = false;
        enum machine_event ev = machine_run(m);
        if (vm->gdb) gdbstub_detach(vm->gdb);
        pthread_mutex_lock(&vm->lock);
        vm->m = NULL;
        /* A drive update still uses the machine's device (bounded: VM_DRIVE_SWAP_WAIT_MS) and
         * then writes vm->mc, which the next machine is built from. */
        while (vm->drive_busy)
            pthread_cond_wait(&vm->cond, &vm->lock);
        bool quit = vm->quit;
        pthread_mutex_unlock(&vm->lock);
        char msg[sizeof(m->msg)];
        snprintf(msg, sizeof(msg), "%s", m->msg);
        int code = m->fail_code;
        machine_destroy(m);
        if (ev == MEV_REBOOT && !vm->opts.no_reboot && !quit) {
            log_info("guest reboot");
            char err[512];
            struct machine *nm;
            int r = machine_create(&nm, &vm->mc, vm->serial ? vm->serial : vm->console, err,
                                   sizeof(err));
            if (r < 0) {
                fprintf(stderr, "vessel: %s\n", err);
                return exit_status_for(r);
            }
            pthread_mutex_lock(&vm->lock);
            vm->m = nm;
            vm->boots++;
            /* a pause asked for during the reboot applies to the new machine */
            bool paused = vm->state == VM_PAUSED;
            if (vm->quit) machine_post_event(nm, MEV_QUIT, 0, NULL);
            pthread_mutex_unlock(&vm->lock);
            if (paused)
                for (unsigned i = 0; i < nm->nharts; i++)
                    atomic_store(&nm->harts[i].pause_req, 1);
            continue;
        }
        switch (ev) {
        case MEV_POWEROFF:
        case MEV_REBOOT:
        case MEV_QUIT: return VM_EXIT_OK;
        case MEV_GUEST_FAIL:
            fprintf(stderr, "vessel: the guest reported failure (code %d)\n", code);
            return VM_EXIT_GUEST_FAIL;
        case MEV_FATAL:
            fprintf(stderr, "vessel: the guest cannot continue: %s\n", msg);
            return VM_EXIT_GUEST_DEAD;
        default:
            fprintf(stderr, "vessel: host error: %s\n", msg[0] ? msg : "unknown");
            return VM_EXIT_HOST_ERROR;
        }
    }
}

int vm_run(struct vm *vm, const struct vm_options *o)
{
    pthread_mutex_lock(&vm->lock);
    if (o) {
        vm->opts = *o;
        vm->start_req = true;
        vm->start_result = 1;
    }
    for (;;) {
        while (!vm->start_req && !vm->quit)
            pthread_cond_wait(&vm->cond, &vm->lock);
        if (vm->quit && !vm->start_req) {
            set_state(vm, VM_HALTED);
            pthread_mutex_unlock(&vm->lock);
            notify(vm, VM_HALTED);
            return VM_EXIT_OK;
        }
        char err[512] = "";
        int r = vm_boot(vm, err, sizeof(err));
        vm->start_req = false;
        if (r == 0) {
            vm->start_result = 0;
            vm->boots = 1;
            vm->started_ms = realtime_ms();
            if (vm->quit) machine_post_event(vm->m, MEV_QUIT, 0, NULL);
            if (vm->opts.start_paused) { /* the harts park before their first instruction */
                for (unsigned i = 0; i < vm->m->nharts; i++)
                    atomic_store(&vm->m->harts[i].pause_req, 1);
                set_state(vm, VM_PAUSED);
            } else {
                set_state(vm, VM_RUNNING);
            }
            break;
        }
        if (o) { /* started from the command line: that is the end of it */
            set_state(vm, VM_HALTED);
            pthread_mutex_unlock(&vm->lock);
            fprintf(stderr, "vessel: %s\n", err);
            notify(vm, VM_HALTED);
            return exit_status_for(r);
        }
        /* started through the API: report to the caller and keep waiting for a good config */
        vm->start_result = r;
        snprintf(vm->start_err, sizeof(vm->start_err), "%s", err);
        pthread_cond_broadcast(&vm->cond);
    }
    enum vm_state first = vm->state;
    pthread_mutex_unlock(&vm->lock);
    notify(vm, first);
    int status = vm_loop(vm);
    pthread_mutex_lock(&vm->lock);
    set_state(vm, VM_HALTED);
    pthread_mutex_unlock(&vm->lock);
    gdbstub_destroy(vm->gdb);
    vm->gdb = NULL;
    close_net(&vm->mc);
    close_disks(&vm->mc);
    close_ram(&vm->mc);
    close_images(vm);
    notify(vm, VM_HALTED);
    return status;
}

int vm_start(struct vm *vm, const struct vm_options *o, char *err, size_t errlen)
{
    pthread_mutex_lock(&vm->lock);
    if (vm->state != VM_NOT_STARTED || vm->start_req) {
        pthread_mutex_unlock(&vm->lock);
        return err_set(err, errlen, -EBUSY, "the VM has already been started");
    }
    vm->opts = *o;
    vm->start_req = true;
    vm->start_result = 1;
    pthread_cond_broadcast(&vm->cond);
    while (vm->start_result == 1 && vm->state == VM_NOT_STARTED)
        pthread_cond_wait(&vm->cond, &vm->lock);
    int r = vm->start_result;
    if (r < 0) snprintf(err, errlen, "%s", vm->start_err);
    if (r == 1) r = err_set(err, errlen, -ECANCELED, "the VM was stopped while starting");
    pthread_mutex_unlock(&vm->lock);
    return r;
}

static void pause_harts(struct machine *m, bool pause)
{
    for (unsigned i = 0; i < m->nharts; i++) {
        if (pause)
            hart_pause(&m->harts[i]);
        else
            hart_resume(&m->harts[i], false);
    }
}

int vm_pause(struct vm *vm, char *err, size_t errlen)
{
    pthread_mutex_lock(&vm->lock);
    if (vm->state != VM_RUNNING && vm->state != VM_PAUSED) {
        enum vm_state st = vm->state;
        pthread_mutex_unlock(&vm->lock);
        return err_set(err, errlen, -EBUSY, "the VM is %s", vm_state_name(st));
    }
    bool changed = vm->state == VM_RUNNING;
    if (changed && vm->m) pause_harts(vm->m, true);
    set_state(vm, VM_PAUSED);
    pthread_mutex_unlock(&vm->lock);
    if (changed) notify(vm, VM_PAUSED);
    return 0;
}

int vm_resume(struct vm *vm, char *err, size_t errlen)
{
    pthread_mutex_lock(&vm->lock);
    if (vm->state != VM_RUNNING && vm->state != VM_PAUSED) {
        enum vm_state st = vm->state;
        pthread_mutex_unlock(&vm->lock);
        return err_set(err, errlen, -EBUSY, "the VM is %s", vm_state_name(st));
    }
    bool changed = vm->state == VM_PAUSED;
    if (changed && vm->m) pause_harts(vm->m, false);
    set_state(vm, VM_RUNNING);
    pthread_mutex_unlock(&vm->lock);
    if (changed) notify(vm, VM_RUNNING);
    return 0;
}

int vm_request_shutdown(struct vm *vm, char *err, size_t errlen)
{
    pthread_mutex_lock(&vm->lock);
    int r = 0;
    if (vm->state != VM_RUNNING)
        r = err_set(err, errlen, -EBUSY, "the VM is %s", vm_state_name(vm->state));
    else if (vm->m)
        machine_request_powerdown(vm->m);
    pthread_mutex_unlock(&vm->lock);
    return r;
}

void vm_set_console(struct vm *vm, struct chr *c)
{
    /* keep the input of the console the vm was made with */
    struct chr *split = chr_split_create(c, vm->console);
    if (split) c = split;
    pthread_mutex_lock(&vm->lock);
    struct chr *old = vm->serial;
    vm->serial = c;
    pthread_mutex_unlock(&vm->lock);
    if (old) chr_destroy(old);
}

int vm_update_drive(struct vm *vm, unsigned index, const char *path, char *err, size_t errlen)
{
    /* The checks and the bookkeeping under vm->lock; the open and the drain (bounded: blk_open,
     * VM_DRIVE_SWAP_WAIT_MS) without it, so GET /, pause and quit never wait for a slow disk.
     * drive_busy keeps the machine alive meanwhile: vm_loop clears vm->m, then waits for it
     * before destroying the machine or building the next one from vm->mc. */
    pthread_mutex_lock(&vm->lock);
    int r = 0;
    if (vm->state != VM_RUNNING && vm->state != VM_PAUSED)
        r = err_set(err, errlen, -EBUSY, "the VM is %s", vm_state_name(vm->state));
    else if (index >= vm->mc.ndisks)
        r = err_set(err, errlen, -EINVAL, "no disk %u (the VM has %u)", index, vm->mc.ndisks);
    else if (!vm->m || !vm->m->blk[index])
        r = err_set(err, errlen, -EBUSY, "the guest is rebooting or stopping; try again");
    else if (vm->drive_busy)
        r = err_set(err, errlen, -EBUSY, "another drive update is under way; try again");
    else if (strlen(path) >= sizeof(vm->opts.disks[index].path))
        r = err_set(err, errlen, -ENAMETOOLONG, "the path is too long");
    if (r < 0) {
        pthread_mutex_unlock(&vm->lock);
        return r;
    }
    vm->drive_busy = true;
    struct machine *m = vm->m;
    struct vm_disk *vd = &vm->opts.disks[index]; /* written only here, under drive_busy */
    struct blk_backend *old = vm->mc.disks[index].backend, *nb = NULL;
    pthread_mutex_unlock(&vm->lock);

    /* The disk's options: the guest negotiated its features (read-only) on them. */
    struct blk_open_opts bo = {
        .readonly = vd->readonly, .direct = vd->direct, .format = (enum blk_format)vd->format};
    /* The drive's own image again (Firecracker's way to announce a resize): its lock is ours,
     * so keep the backend and read its size again. */
    bool same = blk_same_file(old, path);
    if (same)
        nb = old;
    else
        r = blk_open(&nb, path, &bo, err, errlen);
    if (r == 0) {
        r = vblk_swap_backend(m->blk[index], nb, VM_DRIVE_SWAP_WAIT_MS);
        if (r == -EBUSY)
            err_set(err, errlen, r,
                    "the disk's requests did not complete within %u ms; it keeps %s",
                    VM_DRIVE_SWAP_WAIT_MS, vd->path);
        else if (r < 0 && same)
            err_set(err, errlen, r, "%s: its size is not a non-zero multiple of 512", path);
        else if (r < 0)
            err_set(err, errlen, r, "cannot swap the disk's image");
        if (r < 0 && !same) blk_close(nb);
    }

    pthread_mutex_lock(&vm->lock);
    if (r == 0) {
        /* The next machine after a guest reboot gets the new image in the same slot. */
        vm->mc.disks[index].backend = nb;
        m->cfg.disks[index].backend = nb;
        snprintf(vd->path, sizeof(vd->path), "%s", path);
    }
    vm->drive_busy = false;
    pthread_cond_broadcast(&vm->cond);
    pthread_mutex_unlock(&vm->lock);
    if (r == 0) {
        log_info("disk %u: now %s (%llu bytes)", index, path, (unsigned long long)blk_size(nb));
        if (!same) blk_close(old); /* idle (drained above): returns at once */
    }
    return r;
}

/* A new file for a snapshot: through the broker once sandboxed (beneath the snapshot or drive
 * directories, never an existing file), else created or truncated here. */
static int create_file(const char *path, char *err, size_t errlen)
{
    int fd;
    if (!sandbox_active()) {
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) fd = -errno;
    } else {
        fd = broker_available() ? broker_create(path) : -EPERM;
    }
    if (fd < 0)
        return err_set(err, errlen, fd, "%s: %s", path,
                       fd == -EXDEV    ? "outside the directories this sandboxed VM may write"
                       : fd == -EEXIST ? "exists already"
                                       : strerror(-fd));
    return fd;
}

/* Take the paused machine for a snapshot: -EBUSY unless paused, booted and free. Until
 * paused_machine_put, vm->m stays alive and paused (drive_busy). */
static int paused_machine_get(struct vm *vm, struct machine **m, char *err, size_t errlen)
{
    pthread_mutex_lock(&vm->lock);
    int r = 0;
    if (vm->state != VM_PAUSED)
        r = err_set(err, errlen, -EBUSY, "the VM is %s; pause it first", vm_state_name(vm->state));
    else if (!vm->m)
        r = err_set(err, errlen, -EBUSY, "the guest is rebooting; try again");
    else if (vm->drive_busy)
        r = err_set(err, errlen, -EBUSY, "a drive update or snapshot is under way; try again");
    if (r == 0) {
        vm->drive_busy = true;
        *m = vm->m;
    }
    pthread_mutex_unlock(&vm->lock);
    return r;
}

static void paused_machine_put(struct vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    vm->drive_busy = false;
    pthread_cond_broadcast(&vm->cond);
    pthread_mutex_unlock(&vm->lock);
}

int vm_snapshot_create(struct vm *vm, const char *state_path, const char *mem_path,
                       const char *config_json, struct snap_save_stats *stats, char *err,
                       size_t errlen)
{
    struct machine *m;
    int r = paused_machine_get(vm, &m, err, errlen);
    if (r < 0) return r;
    int sfd = create_file(state_path, err, errlen), mfd = -1;
    if (sfd >= 0) mfd = create_file(mem_path, err, errlen);
    r = sfd < 0 ? sfd : mfd < 0 ? mfd : 0;
    if (r == 0) {
        uint64_t t0 = host_monotonic_ns();
        r = machine_snapshot_save(m, sfd, mfd, config_json, stats, err, errlen);
        if (r == 0)
            log_info("snapshot %s: %llu pages of memory, %.1f ms", state_path,
                     (unsigned long long)(stats ? stats->mem_pages_written : 0),
                     (double)(host_monotonic_ns() - t0) / 1e6);
    }
    if (sfd >= 0) close(sfd);
    if (mfd >= 0) close(mfd);
    paused_machine_put(vm);
    return r;
}

int vm_disk_snapshot(struct vm *vm, enum blk_snap_op op, const char *name,
                     bool done[MACHINE_MAX_DISKS], char *err, size_t errlen)
{
    struct machine *m;
    int r = paused_machine_get(vm, &m, err, errlen);
    if (r < 0) return r;
    r = machine_disk_snapshot(m, op, name, done, err, errlen);
    paused_machine_put(vm);
    return r;
}

void vm_quit(struct vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    vm->quit = true;
    if (vm->m) machine_post_event(vm->m, MEV_QUIT, 0, NULL);
    pthread_cond_broadcast(&vm->cond);
    pthread_mutex_unlock(&vm->lock);
}

void vm_get_info(struct vm *vm, struct vm_info *info)
{
    pthread_mutex_lock(&vm->lock);
    info->state = vm->state;
    info->boots = vm->boots;
    info->started_ms = vm->started_ms;
    info->restore_us = vm->restore_us;
    info->instret_total = 0;
    info->jit = vm->m && vm->m->cfg.engine == ENGINE_JIT;
    if (vm->m)
        for (unsigned i = 0; i < vm->m->nharts; i++)
            info->instret_total += __atomic_load_n(&vm->m->harts[i].instret, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&vm->lock);
}

/* The terminal's Ctrl-A x: vm_new creates the console before the vm exists, so the callback
 * finds the vm through this (one terminal console per process). */
static void on_quit(void *ctx)
{
    (void)ctx;
    struct vm *vm = atomic_load(&stdio_vm);
    if (vm) vm_quit(vm);
}

/* Ctrl-A p: the same request as the API's SendCtrlAltDel (under the vm's lock, so it never
 * reaches a machine being torn down). */
static void on_powerdown(void *ctx)
{
    (void)ctx;
    struct vm *vm = atomic_load(&stdio_vm);
    char err[64];
    if (vm) vm_request_shutdown(vm, err, sizeof(err));
}

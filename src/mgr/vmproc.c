/* A VM process (vmproc.h). */
#include "mgr/vmproc.h"
#include "api/api.h"
#include "mgr/admit.h"
#include "mgr/supervise.h"
#include "vm/cgroup.h"
#include "util/log.h"
#include <errno.h>
#include <sys/stat.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

/* wakes the signal thread at exit (SIGUSR2 is the sandbox's test hook, on hart threads) */
#define WAKE_SIG (SIGRTMIN + 2)

struct vmproc {
    const struct vmproc_opts *o;
    struct store st;
    bool have_store;
    int lock_fd, run_fd, runjson_fd;
    struct store_run run;
    pthread_mutex_t run_lock; /* run.json writes */
    struct api_ctx api;
    struct api_server *srv;
    struct chr *console;
    struct vm *vm;
    char api_path[256], con_path[256];
    int api_dirfd, con_dirfd;
    int status;
};

static void report(struct vmproc *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(struct vmproc *p, const char *fmt, ...)
{
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (p->o->ready_fd >= 0) {
        if (write(p->o->ready_fd, msg, strlen(msg)) < 0) { /* the starter gave up waiting */
        }
        close(p->o->ready_fd);
        ((struct vmproc_opts *)p->o)->ready_fd = -1;
    }
    if (strncmp(msg, "OK", 2)) fprintf(stderr, "vessel: %s", msg[0] == 'E' ? msg + 4 : msg);
}

static void on_state(void *ctx, enum vm_state st)
{
    struct vmproc *p = ctx;
    if (!p->o->name) return;
    pthread_mutex_lock(&p->run_lock);
    enum store_vm_state s = st == VM_PAUSED ? SVM_PAUSED : SVM_RUNNING;
    if (st != VM_HALTED && p->run.state != s) {
        p->run.state = s;
        store_run_put(p->runjson_fd, &p->run);
    }
    pthread_mutex_unlock(&p->run_lock);
}

/* Right before a boot (InstanceStart, or at once): the sandbox settings and the cgroup go into
 * the options; foreground runs take part in admission. */
static int before_start(struct api_ctx *a, char *err, size_t errlen)
{
    struct vmproc *p = a->user;
    struct vm_options *vo = &a->opts;
    const struct vm_options *b = p->o->base;
    vo->no_reboot = p->o->no_reboot;
    vo->machine.trace = log_current_level >= LOG_TRACE;
    if (b) {
        vo->no_sandbox = b->no_sandbox;
        vo->user = b->user;
        vo->cgroup = b->cgroup;
        vo->machine.engine = b->machine.engine;
        vo->machine.jit_cache_size = b->machine.jit_cache_size;
        vo->ninherited = b->ninherited;
        memcpy(vo->inherited_fds, b->inherited_fds, sizeof(vo->inherited_fds));
    }
    if (p->o->name) {
        /* snapshots: vessel snapshot create makes them in vms/NAME/snapshots/SNAP/ */
        static char snapdir[4096], rstate[4200], rmem[4200];
        store_vm_path(&p->st, p->o->name, "snapshots", snapdir, sizeof(snapdir));
        if (mkdir(snapdir, 0700) == 0 || errno == EEXIST) vo->snapshot_dir = snapdir;
        if (p->o->restore_dir) {
            snprintf(rstate, sizeof(rstate), "%s/state", p->o->restore_dir);
            snprintf(rmem, sizeof(rmem), "%s/memory", p->o->restore_dir);
            vo->restore_state = rstate;
            vo->restore_mem = rmem;
        }
        /* a stored VM's own cgroup; the monitor removes it after the VM process exits */
        char cerr[sizeof(p->run.cgroup_note)];
        if (cgroup_enter(p->o->name, vo->machine.ram_size, vo->machine.cpus,
                         machine_code_per_hart(&vo->machine), cerr, sizeof(cerr)) < 0) {
            snprintf(p->run.cgroup_note, sizeof(p->run.cgroup_note), "not enforced: %.200s", cerr);
            log_warn("%s", p->run.cgroup_note);
        } else {
            snprintf(p->run.cgroup_note, sizeof(p->run.cgroup_note),
                     "cgroup vessel/%s: memory and CPU limited", p->o->name);
        }
        store_run_put(p->runjson_fd, &p->run);
        return 0;
    }
    /* a foreground API VM (Firecracker's way): snapshot files go next to its API socket, as
     * they go inside the jail for Firecracker */
    static char sockdir[4096];
    snprintf(sockdir, sizeof(sockdir), "%s", p->api_path);
    char *slash = strrchr(sockdir, '/');
    if (slash && slash != sockdir) {
        *slash = 0;
        vo->snapshot_dir = sockdir;
    }
    if (p->o->overcommit || p->run_fd >= 0) return 0;
    int r = admit_run_begin(&p->st, p->o->store_dir, a->spec.cpus, a->spec.mem_mib, err, errlen);
    if (r < -1) return r;
    p->have_store = r >= 0;
    p->run_fd = r;
    return 0;
}

static void *run_thread(void *arg)
{
    struct vmproc *p = arg;
    p->status = vm_run(p->vm, NULL);
    return NULL;
}

static void *signal_thread(void *arg)
{
    struct vmproc *p = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, WAKE_SIG); /* our own wake-up at exit */
    for (;;) {
        int sig;
        if (sigwait(&set, &sig)) continue;
        if (sig == WAKE_SIG) return NULL;
        log_info("signal %d: stopping the VM", sig);
        vm_quit(p->vm);
    }
}

/* What outlives the VM process and needs the host's privileges to undo (the cgroup). */
static void vmproc_after_exit(const char *name)
{
    char err[300];
    if (cgroup_remove(name, err, sizeof(err)) < 0) log_warn("%s", err);
}

static int listen_at(struct vmproc *p, const char *file, char *path, size_t len, int *dirfd,
                     char *err, size_t errlen)
{
    int r = store_sock_path(&p->st, p->o->name, file, path, len, dirfd);
    if (r < 0) {
        snprintf(err, errlen, "%s: socket path too long", file);
        return r;
    }
    return api_listen_unix(path, err, errlen);
}

/* The detached process's files, console and API; 0 or -errno with err. */
static int setup_detached(struct vmproc *p, char *err, size_t errlen)
{
    const char *name = p->o->name;
    int r;
    if ((r = store_vm_lock(&p->st, name, 0, &p->lock_fd, err, errlen)) < 0) return r;
    if ((r = store_vm_load(&p->st, name, &p->api.spec, err, errlen)) < 0) return r;
    p->run = (struct store_run){.pid = getpid(),
                                .state = SVM_STARTING,
                                .cpus = p->api.spec.cpus,
                                .mem_mib = p->api.spec.mem_mib};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    p->run.started_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    if ((p->runjson_fd = store_run_open(&p->st, name)) < 0 ||
        (r = store_run_put(p->runjson_fd, &p->run)) < 0) {
        r = p->runjson_fd < 0 ? p->runjson_fd : r;
        snprintf(err, errlen, "cannot write run.json: %s", strerror(-r));
        return r;
    }
    int cfd =
        listen_at(p, "console.sock", p->con_path, sizeof(p->con_path), &p->con_dirfd, err, errlen);
    if (cfd < 0) return cfd;
    char log_path[4096];
    store_vm_path(&p->st, name, "console.log", log_path, sizeof(log_path));
    p->console = chr_sock_create(cfd, log_path, VMPROC_CONSOLE_LOG_MAX);
    if (!p->console) {
        r = -errno;
        close(cfd);
        snprintf(err, errlen, "cannot set up the console: %s", strerror(-r));
        return r;
    }
    int afd =
        listen_at(p, "api.sock", p->api_path, sizeof(p->api_path), &p->api_dirfd, err, errlen);
    if (afd < 0) return afd;
    p->vm = vm_new(p->console, on_state, p);
    if (!p->vm) {
        close(afd);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    p->api.vm = p->vm;
    p->api.id = name;
    p->api.console_fixed = true;
    p->srv = api_server_start(&p->api, afd, err, errlen);
    return p->srv ? 0 : -EIO;
}

static int setup_foreground(struct vmproc *p, char *err, size_t errlen)
{
    if (p->o->spec)
        p->api.spec = *p->o->spec;
    else
        vm_spec_init(&p->api.spec);
    p->vm = vm_new(NULL, on_state, p);
    if (!p->vm) {
        snprintf(err, errlen, "cannot set up the console: %s", strerror(errno));
        return -EIO;
    }
    p->api.vm = p->vm;
    p->api.id = "anonymous-instance";
    if (!p->o->api_sock) return 0;
    snprintf(p->api_path, sizeof(p->api_path), "%s", p->o->api_sock);
    int afd = api_listen_unix(p->o->api_sock, err, errlen);
    if (afd < 0) return afd;
    p->srv = api_server_start(&p->api, afd, err, errlen);
    return p->srv ? 0 : -EIO;
}

static void unlink_sock(const char *path, int dirfd)
{
    if (path[0]) unlink(path);
    if (dirfd >= 0) close(dirfd);
}

/* The monitor's clean-up of a stored VM (supervise.h): its sockets, run.json and its cgroup.
 * run.json stays when the VM process did not end cleanly (it writes "stopped" into it last):
 * the VM then shows as crashed. */
static void cleanup_detached(void *ctx)
{
    struct vmproc *p = ctx;
    struct store_run run;
    bool clean =
        store_vm_state(&p->st, p->o->name, &run) == SVM_STOPPED || run.state == SVM_STOPPED;
    store_vm_clear_runtime(&p->st, p->o->name, !clean);
    /* the vsock socket of the configuration it ran (the sandboxed process cannot unlink) */
    static struct vm_spec spec;
    char err[300];
    if (store_vm_load(&p->st, p->o->name, &spec, err, sizeof(err)) == 0 && spec.vsock.present)
        vsock_uds_remove_stale(spec.vsock.uds_path);
    vmproc_after_exit(p->o->name);
}

/* ... and of a foreground run: the API socket and the VM process's admission entry. */
static pid_t vm_pid;
static void cleanup_foreground(void *ctx)
{
    struct vmproc *p = ctx;
    if (p->o->api_sock) unlink(p->o->api_sock);
    /* a --config-file's vsock socket (one set through the API later is not known here: the
     * next VM on that path replaces the stale file) */
    if (p->o->spec && p->o->spec->vsock.present) vsock_uds_remove_stale(p->o->spec->vsock.uds_path);
    struct store st;
    char err[256];
    if (store_open(&st, p->o->store_dir, false, err, sizeof(err)) == 0)
        admit_run_remove(&st, vm_pid);
}

/* Start the monitor of this VM process (supervise.h). A stored VM's monitor holds byte 1 of
 * vm.lock, so the VM stays "live" until the clean-up is done. Returns 0, or an exit status
 * when the monitor could not be set up. */
static int monitor(struct vmproc *p)
{
    int mfd = -1;
    if (p->o->name) {
        char err[600];
        if (store_vm_lock(&p->st, p->o->name, 1, &mfd, err, sizeof(err)) < 0) {
            report(p, "ERR %s\n", err);
            return VM_EXIT_HOST_ERROR;
        }
    }
    vm_pid = getpid();
    int r = supervise_fork(p->o->name ? cleanup_detached : cleanup_foreground, p, &mfd,
                           mfd >= 0 ? 1 : 0);
    if (mfd >= 0) close(mfd); /* the monitor's lock is the monitor's */
    if (r < 0) {
        report(p, "ERR cannot start the VM's monitor: %s\n", strerror(-r));
        return VM_EXIT_HOST_ERROR;
    }
    return 0;
}

int vmproc_run(const struct vmproc_opts *o)
{
    static struct vmproc proc; /* one per process; large (the spec) */
    struct vmproc *p = &proc;
    memset(p, 0, sizeof(*p));
    p->o = o;
    p->lock_fd = p->run_fd = p->runjson_fd = p->api_dirfd = p->con_dirfd = -1;
    if (o->name) {
        char err[600];
        if (store_open(&p->st, o->store_dir, false, err, sizeof(err)) < 0) {
            report(p, "ERR %s\n", err);
            return VM_EXIT_USAGE;
        }
        p->have_store = true;
    }
    /* a stored VM always has a monitor; a foreground one when it will be sandboxed */
    if (o->name || (o->base && !o->base->no_sandbox)) {
        int st = monitor(p);
        if (st) return st;
    }
    pthread_mutex_init(&p->run_lock, NULL);
    pthread_mutex_init(&p->api.lock, NULL);
    p->api.user = p;
    p->api.before_start = before_start;

    /* SIGTERM/SIGINT stop the VM (as Ctrl-A x): taken by one thread with sigwait */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, WAKE_SIG);
    pthread_sigmask(SIG_BLOCK, &set, &old);

    char err[700] = "";
    int r = o->name ? setup_detached(p, err, sizeof(err)) : setup_foreground(p, err, sizeof(err));
    int status = VM_EXIT_OK;
    pthread_t rt, st;
    bool running = false, sig_started = false;
    if (r == 0) {
        sig_started = pthread_create(&st, NULL, signal_thread, p) == 0;
        if (pthread_create(&rt, NULL, run_thread, p) != 0) {
            snprintf(err, sizeof(err), "cannot create a thread");
            r = -EAGAIN;
        } else {
            running = true;
        }
    }
    bool boot_now = r == 0 && (o->name || o->spec);
    if (boot_now) {
        pthread_mutex_lock(&p->api.lock);
        r = vm_spec_to_options(&p->api.spec, &p->api.opts, p->api.cmdline, sizeof(p->api.cmdline),
                               err, sizeof(err));
        if (r == 0) r = before_start(&p->api, err, sizeof(err));
        if (r == 0) r = vm_start(p->vm, &p->api.opts, err, sizeof(err));
        pthread_mutex_unlock(&p->api.lock);
    }
    if (r < 0) {
        report(p, "ERR %s\n", err);
        status = (r == -ENOMEM || r == -EIO || r == -EAGAIN) ? VM_EXIT_HOST_ERROR : VM_EXIT_USAGE;
        if (r == -EBUSY) status = VM_EXIT_HOST_ERROR;
        if (p->vm) vm_quit(p->vm);
    } else {
        struct vm_info vi;
        vm_get_info(p->vm, &vi);
        if (o->restore_dir)
            report(p, "OK restored in %.2f ms\n", (double)vi.restore_us / 1000);
        else
            report(p, "OK\n");
    }
    if (running) {
        pthread_join(rt, NULL);
        if (r == 0) status = p->status;
    }
    if (sig_started) {
        pthread_kill(st, WAKE_SIG);
        pthread_join(st, NULL);
    }
    api_server_stop(p->srv);
    /* a monitor removes the socket (the sandboxed VM process may not) */
    if (!o->name && o->base && o->base->no_sandbox) unlink_sock(p->api_path, p->api_dirfd);
    if (p->console) chr_destroy(p->console);
    vm_free(p->vm);
    /* the monitor removes the admission entry; unsupervised, it is removed here */
    if (p->have_store && !o->name && o->base && o->base->no_sandbox)
        admit_run_release(&p->st, p->run_fd);
    if (o->name && p->runjson_fd >= 0) {
        p->run.state = SVM_STOPPED; /* ended cleanly: the monitor removes run.json */
        store_run_put(p->runjson_fd, &p->run);
    }
    if (p->lock_fd >= 0) close(p->lock_fd); /* last: the VM is stopped once this is gone */
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return status;
}

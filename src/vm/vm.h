/* A VM's lifecycle: build the machine from a configuration, run it, reboot it, pause it, stop it.
 * One thread (the caller of vm_run) owns the machine's lifetime; any other thread (the REST API,
 * a signal handler's helper, the console) asks it for things through the vm_* calls below, which
 * act between instructions (DESIGN.md, "Many VMs: the process model"). */
#ifndef VESSEL_VM_VM_H
#define VESSEL_VM_VM_H
#include "backend/block/block.h"
#include "backend/net/net.h"
#include "backend/vsock/vsock.h"
#include "machine/machine.h"
#include <stdbool.h>
#include "vm/sandbox.h"

/* Process exit statuses of `vessel run`. */
#define VM_EXIT_OK         0 /* guest powered off (or rebooted with no_reboot) */
#define VM_EXIT_HOST_ERROR 1
#define VM_EXIT_USAGE      2 /* bad arguments or input files */
#define VM_EXIT_GUEST_DEAD 3 /* the guest cannot continue */
#define VM_EXIT_GUEST_FAIL 4 /* the guest reported failure through the test device */

struct vm_disk {
    char path[4096];
    bool readonly;
    char serial[21]; /* empty: none */
    bool direct;     /* cache=none: O_DIRECT (blk_open_opts) */
    int format;      /* format=: enum blk_format (0: probe) */
};

struct vm_options {
    struct machine_config machine;
    unsigned ndisks;
    struct vm_disk disks[MACHINE_MAX_DISKS];
    bool no_reboot;
    int gdb_port;                /* 0: no debugger stub */
    bool paused;                 /* with gdb_port: wait for the debugger before running */
    char default_firmware[4096]; /* storage for the cached OpenSBI path (vm_spec_to_options) */
    /* Sandbox (vm/sandbox.h): on unless no_sandbox. user: who root becomes (NULL: default).
     * inherited_fds: fds open when the process started, closed on entering the sandbox. */
    bool no_sandbox;
    const char *user;
    int inherited_fds[SANDBOX_MAX_FDS];
    int ninherited;
    const char *cgroup; /* NULL: none; else the VM's cgroup name (vm/cgroup.h) */
    /* Restore from a snapshot instead of booting (machine/snapshot.h): the state file and the
     * memory file, opened before the sandbox. NULL: boot. */
    const char *restore_state, *restore_mem;
    bool start_paused; /* the VM starts paused (PUT /snapshot/load with resume_vm false) */
    /* Where vm_snapshot_create may create files once the process is sandboxed (the store's
     * snapshots directory of the VM); NULL: only the directories of its drives. */
    const char *snapshot_dir;
    /* --net (kind NET_NONE: no network device) and --mac (mac_set false: one is generated at
     * boot and kept across guest reboots; a manager stores it to keep it for good). */
    struct net_spec net;
    uint8_t mac[6];
    bool mac_set;
    /* --vsock cid=N,path=P (present false: no vsock device) */
    struct vsock_spec vsock;
};

enum vm_state {
    VM_NOT_STARTED = 0, /* waiting for InstanceStart (vessel run --api-sock) */
    VM_RUNNING,
    VM_PAUSED,
    VM_HALTED, /* the guest powered off, failed, or was stopped: vm_run returns */
};
const char *vm_state_name(enum vm_state s); /* "not started", "running", ... */

struct vm;
/* console: where the UART goes (owned by the caller, outlives the vm); NULL: this terminal
 * (chr_stdio, Ctrl-A x calls vm_quit), owned by the vm. Returns NULL with errno on failure.
 * on_state (may be NULL) is called on the vm_run thread or an API thread, with no vm lock held,
 * after every state change. */
struct vm *vm_new(struct chr *console, void (*on_state)(void *ctx, enum vm_state st), void *ctx);
void vm_free(struct vm *vm);

/* Run: boot with o (copied; strings must stay valid until vm_run returns) or, with o = NULL,
 * wait until vm_start() supplies the configuration. Blocks until the guest halts; returns a
 * VM_EXIT_* status with one line on stderr for anything that is not a clean poweroff. */
int vm_run(struct vm *vm, const struct vm_options *o);

/* From other threads. Each returns 0 or -errno with a one-line reason in err:
 * vm_start: -EBUSY unless VM_NOT_STARTED; -EINVAL/-ENOENT for a configuration that cannot boot
 * (disks that do not open, a missing kernel...); waits until the machine has been built. */
int vm_start(struct vm *vm, const struct vm_options *o, char *err, size_t errlen);
int vm_pause(struct vm *vm, char *err, size_t errlen);  /* -EBUSY unless running/paused */
int vm_resume(struct vm *vm, char *err, size_t errlen); /* -EBUSY unless running/paused */
/* Ask the guest to power off (the power key); -EBUSY unless running. */
int vm_request_shutdown(struct vm *vm, char *err, size_t errlen);
/* PATCH /drives/{id}: put the image at path behind disk `index` (vda = 0, as in vm_options) of
 * the running (or paused) VM. Opens and locks it with the disk's options, waits at most
 * VM_DRIVE_SWAP_WAIT_MS for the device's requests in flight, swaps, closes the old image and
 * tells the guest the new capacity (config change interrupt). The disk keeps the new image
 * across guest reboots. -EBUSY before boot, after halt, during a guest reboot or when the
 * device did not drain in time (the old image then stays); -EINVAL for a bad index; blk_open's
 * errors for the new image. */
#define VM_DRIVE_SWAP_WAIT_MS 1000
int vm_update_drive(struct vm *vm, unsigned index, const char *path, char *err, size_t errlen);
/* PUT /snapshot/create: the paused VM's full state to a new state file and memory file
 * (machine/snapshot.h). -EBUSY unless paused (Firecracker's rule; `vessel snapshot create`
 * pauses and resumes around it); files that exist are refused in a sandboxed process. On
 * success *stats says what was written. */
struct snap_save_stats;
int vm_snapshot_create(struct vm *vm, const char *state_path, const char *mem_path,
                       const char *config_json, struct snap_save_stats *stats, char *err,
                       size_t errlen);
/* PUT /vessel/disk-snapshot: machine_disk_snapshot on the paused VM (-EBUSY unless paused).
 * done[i]: disk i (vda, vdb, ...) has (or had) the internal snapshot. */
int vm_disk_snapshot(struct vm *vm, enum blk_snap_op op, const char *name,
                     bool done[MACHINE_MAX_DISKS], char *err, size_t errlen);
/* Stop at once (as Ctrl-A x): vm_run returns VM_EXIT_OK. Safe in any state. */
void vm_quit(struct vm *vm);
/* Before boot: the guest's serial output goes to c from now on (the vm owns it); input still
 * comes from the console given to vm_new, which keeps serving its keys (Ctrl-A x). */
void vm_set_console(struct vm *vm, struct chr *c);

struct vm_info {
    enum vm_state state;
    unsigned boots;         /* machines built (1 + guest reboots) */
    uint64_t started_ms;    /* CLOCK_REALTIME ms of the first boot, 0 before */
    uint64_t instret_total; /* instructions retired by all harts of the current machine */
    uint64_t restore_us;    /* restored from a snapshot: vessel's own work (state + devices) */
    bool jit;               /* the harts run translated code (--engine jit) */
};
void vm_get_info(struct vm *vm, struct vm_info *info);
#endif

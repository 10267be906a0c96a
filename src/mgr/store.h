/* The VM store: a directory per VM (docs/store.md).
 *   STORE/host.json            the admission policy (vessel host set)
 *   STORE/.lock                store-wide lock: admission and create/rm/rename hold it
 *   STORE/vms/NAME/config.json the VM's configuration (vm/config.h; written atomically)
 *   STORE/vms/NAME/vm.lock     an OFD write lock held by the VM process while it lives
 *   STORE/vms/NAME/run.json    written by the VM process: pid, state, what it reserved;
 *                              present without the lock = the process died (crashed)
 *   STORE/vms/NAME/api.sock    its REST API; console.sock its console; console.log the output
 *   STORE/vms/NAME/disks/      disks vessel created for it
 *   STORE/run/PID.json (+lock) a foreground `vessel run`, for admission
 * "Running" is asserted by the process holding vm.lock, never a field someone forgot to clear. */
#ifndef VESSEL_MGR_STORE_H
#define VESSEL_MGR_STORE_H
#include "vm/config.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define STORE_NAME_MAX 64

struct store {
    char root[3072];
};

enum store_vm_state { SVM_STOPPED = 0, SVM_RUNNING, SVM_PAUSED, SVM_CRASHED, SVM_STARTING };
const char *store_state_name(enum store_vm_state s);

/* What a live VM process records (run.json). */
struct store_run {
    pid_t pid;
    enum store_vm_state state; /* running or paused, as the process last wrote it */
    unsigned cpus;
    uint64_t mem_mib;
    uint64_t started_ms;
    char cgroup_note[256]; /* why there is no cgroup (empty: enforced) */
};

/* dir: --store, else $VESSEL_STORE, else /var/lib/vessel (root) or $XDG_DATA_HOME/vessel
 * (~/.local/share/vessel). create: make it if missing. 0 or -errno with a one-line message. */
int store_open(struct store *st, const char *dir, bool create, char *err, size_t errlen);

/* 1-63 of [a-z0-9_.-], starting with a letter or digit: a file name, never a path. */
bool store_name_valid(const char *name);
int store_vm_path(const struct store *st, const char *name, const char *file, char *buf,
                  size_t len);
/* Unix socket paths are limited to 107 bytes: for a long store path the socket is reached
 * through /proc/self/fd/DIRFD/FILE, with dirfd an O_PATH descriptor of the VM directory that
 * the caller closes (*dirfd = -1 when not needed). */
int store_sock_path(const struct store *st, const char *name, const char *file, char *buf,
                    size_t len, int *dirfd);

bool store_vm_exists(const struct store *st, const char *name);
/* Create the VM's directory and config (-EEXIST if the name is taken). */
int store_vm_create(const struct store *st, const char *name, const struct vm_spec *spec, char *err,
                    size_t errlen);
int store_vm_load(const struct store *st, const char *name, struct vm_spec *spec, char *err,
                  size_t errlen);
int store_vm_save(const struct store *st, const char *name, const struct vm_spec *spec, char *err,
                  size_t errlen);
/* Remove the VM's directory and everything in it (the caller checked it is not running). */
int store_vm_remove(const struct store *st, const char *name, char *err, size_t errlen);
/* Names of all VMs, sorted; *out is malloc'd (free each and the array). Returns the count or
 * -errno. */
int store_vm_list(const struct store *st, char ***out);
/* The name of another VM than self (NULL: any) whose configuration has this MAC address, or
 * NULL; the caller frees it. store_vm_save refuses a configuration whose MAC another VM has. */
char *store_mac_owner(const struct store *st, const char *self, const uint8_t mac[6]);
void store_names_free(char **names, int n);

/* Whether a VM process holds the VM's lock (its byte 0). A monitor still cleaning up after
 * its VM process (byte 1) does not count: the VM is gone. */
bool store_vm_process_alive(const struct store *st, const char *name);
/* State from the lock and run.json; run (may be NULL) gets run.json for live or crashed VMs. */
enum store_vm_state store_vm_state(const struct store *st, const char *name, struct store_run *run);
/* True while the VM process or its monitor holds the VM's lock: a VM whose run.json already
 * says stopped may still have its monitor cleaning up (cgroup, runtime files). */
bool store_vm_held(const struct store *st, const char *name);

/* The VM process side: lock one byte of vm.lock (0: the VM process, 1: its monitor; -EBUSY if
 * another process holds it; the fd stays open for the life of the process). A VM is live while
 * any byte is locked. */
int store_vm_lock(const struct store *st, const char *name, unsigned byte, int *fd, char *err,
                  size_t errlen);
/* run.json: created once (fd), then rewritten in place with store_run_put (no path calls, so
 * it works inside the sandbox); removed by store_run_clear. */
#define STORE_RUN_RECORD 1024
int store_run_open(const struct store *st, const char *name);
int store_run_put(int fd, const struct store_run *run);
void store_run_clear(const struct store *st, const char *name);
/* What a VM process leaves while it runs: its sockets and (unless keep_run: a crash is shown
 * by it) run.json. Called once the process is gone, by its monitor or by `vessel stop`. */
void store_vm_clear_runtime(const struct store *st, const char *name, bool keep_run);

/* Store-wide lock (flock on STORE/.lock): returns an fd to pass to store_unlock, or -errno. */
int store_lock(const struct store *st, char *err, size_t errlen);
void store_unlock(int fd);

/* Atomic file replacement: write to a temporary in the same directory, fsync, rename, fsync the
 * directory. 0 or -errno. */
int store_write_file(const char *path, const char *data, size_t len, mode_t mode);
/* Read and parse a JSON file of at most max bytes: 0 and *out (json_object_put it), or -errno
 * with what went wrong in err (-EINVAL: not JSON). */
int store_read_json(const char *path, size_t max, json_object **out, char *err, size_t errlen);
/* Read a whole small file (at most max bytes, NUL-terminated); -EFBIG when larger. */
int store_read_file(const char *path, char **out, size_t max);
#endif

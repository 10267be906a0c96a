/* A VM process: one VM, its REST API, its console, its reservation (DESIGN.md "Many VMs").
 * Two ways in:
 *  - detached, spawned by `vessel start` (name set): the VM of a store, its console on
 *    console.sock + console.log, its API on api.sock, its lock held while it lives;
 *  - in the foreground, `vessel run --api-sock PATH [--config-file F]`: the console on this
 *    terminal, the API on PATH; without a config it waits for InstanceStart. */
#ifndef VESSEL_MGR_VMPROC_H
#define VESSEL_MGR_VMPROC_H
#include "mgr/store.h"
#include <stdbool.h>

#define VMPROC_CONSOLE_LOG_MAX (4u << 20) /* console.log is rotated beyond this (one .1 kept) */

struct vmproc_opts {
    const char *store_dir;      /* NULL: the default store */
    const char *name;           /* detached mode: the VM's name */
    int ready_fd;               /* detached mode: "OK\n" or "ERR message\n", then closed */
    const char *restore_dir;    /* detached mode: resume from this snapshot (state, memory) */
    const char *api_sock;       /* foreground mode */
    const struct vm_spec *spec; /* foreground: boot this at once (NULL: wait for the API) */
    bool overcommit;            /* foreground: skip admission */
    bool no_reboot;
    /* foreground: the sandbox settings of `vessel run` (no_sandbox, user, inherited fds,
     * cgroup) for the VM it boots; NULL: the defaults (sandboxed; a stored VM's own cgroup) */
    const struct vm_options *base;
};

/* Returns the process exit status (VM_EXIT_*). */
int vmproc_run(const struct vmproc_opts *o);

/* The detached VM process's console log path etc. are store_vm_path(st, name, "console.log"). */
#endif

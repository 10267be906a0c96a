/* A VM's lifecycle: build the machine from a configuration, run it, reboot it, stop it. */
#ifndef VESSEL_VM_VM_H
#define VESSEL_VM_VM_H
#include "machine/machine.h"
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
};

struct vm_options {
    struct machine_config machine;
    unsigned ndisks;
    struct vm_disk disks[MACHINE_MAX_DISKS];
    bool no_reboot;
    int gdb_port; /* 0: no debugger stub */
    bool paused;  /* with gdb_port: wait for the debugger before running */
    /* Sandbox (vm/sandbox.h): on unless no_sandbox. user: who root becomes (NULL: default).
     * inherited_fds: fds open when the process started, closed on entering the sandbox. */
    bool no_sandbox;
    const char *user;
    int inherited_fds[SANDBOX_MAX_FDS];
    int ninherited;
    const char *cgroup; /* NULL: none; else the VM's cgroup name (vm/cgroup.h) */
};

/* Run until the guest powers off (or fails); returns a VM_EXIT_* status. Prints one line on
 * stderr for anything that is not a clean poweroff. */
int vm_run(const struct vm_options *o);
#endif

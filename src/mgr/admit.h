/* Resource admission across every VM of a store (DESIGN.md "Many VMs"): a start takes the
 * store-wide lock, sums what the live VM processes (and foreground `vessel run`s) reserved,
 * compares with the host and the policy, and the new VM's reservation is visible (its process
 * holds its lock and has written run.json) before the lock is released. */
#ifndef VESSEL_MGR_ADMIT_H
#define VESSEL_MGR_ADMIT_H
#include "mgr/store.h"

struct host_policy {
    double cpu_overcommit; /* vCPUs per host CPU (default 1) */
    double mem_overcommit; /* guest memory per byte of budget (default 1) */
    uint64_t reserve_mib;  /* memory kept for the host (default 1024) */
};

struct host_info {
    unsigned cpus;
    uint64_t mem_total_mib, mem_available_mib;
};

struct host_usage {
    unsigned vms; /* live VM processes and foreground runs */
    unsigned cpus;
    uint64_t mem_mib;
};

int host_info_read(struct host_info *h);
void policy_default(struct host_policy *p);
/* STORE/host.json; a missing file is the default policy, a corrupt one an error. */
int policy_load(const struct store *st, struct host_policy *p, char *err, size_t errlen);
int policy_save(const struct store *st, const struct host_policy *p, char *err, size_t errlen);
void policy_budget(const struct host_policy *p, const struct host_info *h, double *cpus,
                   double *mem_mib);

/* Sum the reservations of live VMs (skipping `skip`, may be NULL) and live foreground runs;
 * stale run entries are removed. */
void admit_usage(const struct store *st, const char *skip, struct host_usage *u);

/* With the store lock held: 0 if `what` (a VM name, or "this VM") fits, else -EBUSY with one
 * line naming the shortage. */
int admit_check(const struct store *st, const char *what, unsigned cpus, uint64_t mem_mib,
                char *err, size_t errlen);

/* A foreground `vessel run`: register its reservation (STORE/run/PID.json, held by a lock on
 * that file until the process exits). Returns an fd to pass to admit_run_release. */
int admit_run_register(const struct store *st, unsigned cpus, uint64_t mem_mib, char *err,
                       size_t errlen);
void admit_run_release(const struct store *st, int fd);
/* The entry of process pid (its monitor removes it: the sandboxed process may not unlink). */
void admit_run_remove(const struct store *st, pid_t pid);
/* All of it for a foreground run: open the store (store_dir NULL: the default), lock, check,
 * register. Returns the fd for admit_run_release; -1 when there is no usable store (logged at
 * info level; the run goes on unaccounted); another negative errno with err when refused. */
int admit_run_begin(struct store *st, const char *store_dir, unsigned cpus, uint64_t mem_mib,
                    char *err, size_t errlen);
#endif

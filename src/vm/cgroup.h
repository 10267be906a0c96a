/* A VM process's own cgroup: memory limited to its guest RAM plus vessel's overhead, CPU time to
 * its vCPUs (docs/security.md). cgroup v2 (memory.max, cpu.max) or, on hosts that mount the v1
 * memory and cpu controllers, their v1 files (memory.limit_in_bytes, cpu.cfs_quota_us).
 *
 * The group is <controller mount><caller's cgroup>/vessel/<name>: below the cgroup the caller
 * runs in (on most hosts the root, so <mount>/vessel/<name>), never out of a limit the host put
 * the caller under. cgroup_remove must be called from a process in the same cgroup as the one
 * that called cgroup_enter before it moved itself (the manager that started the VM). */
#ifndef VESSEL_VM_CGROUP_H
#define VESSEL_VM_CGROUP_H
#include <stddef.h>
#include <stdint.h>

#define CGROUP_CPU_PERIOD_US 100000 /* 100 ms, the kernel's default CFS period */

/* Memory a VM process may use for guest RAM of ram_size bytes and cpus harts, each with a JIT
 * code cache of code_per_hart bytes (0 under the interpreter; cgroup.c says what the overhead
 * covers). */
uint64_t cgroup_memory_limit(uint64_t ram_size, unsigned cpus, uint64_t code_per_hart);

/* Creates (or reuses) the VM's group, writes its limits and moves this process into it. Call
 * before dropping root. Returns 0; or -errno with a one-line reason in err (not root and no
 * delegated subtree, no controllers, a bad name) for the caller to show once. */
int cgroup_enter(const char *name, uint64_t ram_size, unsigned cpus, uint64_t code_per_hart,
                 char *err, size_t errlen);

/* Removes the VM's group (after its process exited). 0 when removed or absent; -EBUSY while a
 * process is still in it; other -errno with err. */
int cgroup_remove(const char *name, char *err, size_t errlen);

/* The directory of name's group for a controller ("memory" or "cpu"), for tests and
 * `vessel inspect`. Returns 0 or -errno (no such controller mounted). */
int cgroup_path(const char *name, const char *controller, char *out, size_t outlen);

/* A name is 1-64 of [A-Za-z0-9_.-], not starting with '.': never a path. */
int cgroup_name_valid(const char *name);
#endif

/* Full-machine snapshots (docs/snapshots.md): a state file (util/staterec.h: one section per
 * component) and a memory file (a 4 KiB header, then guest RAM; zero pages are holes). */
#ifndef VESSEL_MACHINE_SNAPSHOT_H
#define VESSEL_MACHINE_SNAPSHOT_H
#include "backend/block/block.h"
#include "machine/machine.h"
#include <stddef.h>
#include <stdint.h>

#define SNAP_MEM_HEADER 4096u
#define SNAP_MEM_MAGIC  "VESSELMEM\0\0\0\0\0\0\0"

/* How long machine_snapshot_save waits for virtio requests in flight to complete. */
#define SNAP_DRAIN_MS 2000

struct snap_save_stats {
    uint64_t mem_pages_written; /* non-zero pages in the memory file */
    uint64_t state_bytes;
};

/* Save the machine: every hart must be parked (vm pause). Waits (bounded) until no virtio
 * request is in flight, writes the state record to state_fd and guest RAM to mem_fd (both
 * empty regular files, written from offset 0; fsynced). 0, or -errno with a message. */
int machine_snapshot_save(struct machine *m, int state_fd, int mem_fd, const char *config_json,
                          struct snap_save_stats *st, char *err, size_t errlen);
/* Internal snapshots (blk_snapshot) named `name` of every writable qcow2 disk of the paused
 * machine, taken once its requests have drained and its disks are flushed: all at one
 * instant. done[i] says which disks (machine order: vda, vdb, ...) have one; raw and
 * read-only disks are left alone. BLK_SNAP_CREATE is all or nothing (a failure deletes the
 * ones made); BLK_SNAP_DELETE deletes what exists (a disk without it is not an error).
 * 0, or -errno with a message. */
int machine_disk_snapshot(struct machine *m, enum blk_snap_op op, const char *name,
                          bool done[MACHINE_MAX_DISKS], char *err, size_t errlen);
/* The VM configuration (Firecracker's FullVmConfiguration JSON) a snapshot was saved with, if
 * the saver gave one (section "config"): a malloc'd string, or NULL with a message. */
char *snapshot_config(const uint8_t *state, size_t len, char *err, size_t errlen);

/* Read a state file (at most STATEREC_MAX_RECORD bytes) into a malloc'd buffer. */
int snapshot_read_state(int fd, uint8_t **buf, size_t *len, char *err, size_t errlen);
/* Check a state record against the machine configuration it is to be restored into and a
 * memory file against the record (header, size, identity). Fills cfg_cpus/ram (what the
 * snapshot needs) for the caller's messages. 0, or -EINVAL with a message. */
int snapshot_check(const uint8_t *state, size_t len, int mem_fd, unsigned *cpus, uint64_t *ram_size,
                   unsigned *ndisks, char *err, size_t errlen);
/* Apply a checked state record to a machine created with cfg.restore_mem_fd (its RAM is the
 * memory file, mapped copy-on-write): every component validates its values first. 0, or
 * -EINVAL with a message (the machine must then be destroyed, never run). */
int machine_snapshot_load(struct machine *m, const uint8_t *state, size_t len, char *err,
                          size_t errlen);
#endif

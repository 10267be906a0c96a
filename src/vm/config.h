/* A VM's configuration as data that outlives a command line: what the store keeps in a VM's
 * config.json, what the REST API edits before boot and reports in GET /vm/config, and what
 * --config-file reads. Its JSON follows Firecracker's FullVmConfiguration (machine-config,
 * boot-source, drives) where the two overlap; what Firecracker has no key for (firmware, drive
 * serials, cache=none) lives under "vessel". Every value read from JSON is untrusted: unknown
 * keys, wrong types and out-of-range values are errors with a one-line message. */
#ifndef VESSEL_VM_CONFIG_H
#define VESSEL_VM_CONFIG_H
#include "vm/vm.h"
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#define VM_CONFIG_VERSION  1
#define VM_PATH_MAX        4096
#define VM_CMDLINE_MAX     2048
#define VM_DRIVE_ID_MAX    64
#define VM_MAX_CPUS        32 /* Firecracker's machine-config range is [1, 32] */
#define VM_DEFAULT_MEM_MIB 128
/* --ssh-key: public keys for the guest's root (the device tree's
 * /chosen/vessel,ssh-authorized-keys), at most this many bytes in all, from at most
 * VM_SSH_KEY_FILES files. */
#define VM_SSH_KEYS_MAX    16384
#define VM_SSH_KEY_FILES   4
/* --jit-cache: bytes of translated code per vCPU */
#define VM_JIT_CACHE_MIN   (64ll << 10)
#define VM_JIT_CACHE_MAX   (2ll << 30)

struct vm_drive_spec {
    char id[VM_DRIVE_ID_MAX];
    char path[VM_PATH_MAX];
    bool root, readonly, direct;
    char serial[21]; /* empty: none */
};

/* The network interface (Firecracker's NetworkInterfaceConfig; one at most). host_dev_name
 * names a tap; without it the interface uses user-mode networking with `user` (the --net
 * string, "user,..."; vessel.network in the JSON). The MAC is kept once chosen: a stored VM
 * keeps its address across starts. */
struct vm_net_spec {
    bool present;
    char iface_id[VM_DRIVE_ID_MAX];
    char host_dev_name[16];
    char user[512];
    uint8_t mac[6];
    bool mac_set;
};

/* The vsock device (Firecracker's Vsock: guest_cid, uds_path; vsock_id is deprecated there and
 * accepted but not kept). */
struct vm_vsock_spec {
    bool present;
    uint32_t guest_cid;
    char uds_path[VSOCK_PATH_MAX];
};

struct vm_spec {
    unsigned cpus;
    uint64_t mem_mib;
    char kernel[VM_PATH_MAX];   /* empty: not set */
    char initrd[VM_PATH_MAX];   /* empty: none */
    char firmware[VM_PATH_MAX]; /* empty: the cached OpenSBI when a kernel is given */
    bool has_cmdline;
    char cmdline[VM_CMDLINE_MAX];
    unsigned ndrives;
    struct vm_drive_spec drives[MACHINE_MAX_DISKS];
    struct vm_net_spec net;
    struct vm_vsock_spec vsock;
    /* --ssh-key: the keys (lines of an authorized_keys file, checked by vm_ssh_keys_add;
     * empty: none) and the private keys beside the .pub files given, for `vessel ssh -i`
     * (vessel.ssh_authorized_keys and vessel.ssh_identities in the JSON). */
    char ssh_keys[VM_SSH_KEYS_MAX];
    unsigned nssh_identities;
    char ssh_identities[VM_SSH_KEY_FILES][VM_PATH_MAX];
    /* --engine and --jit-cache (vessel.engine "interp"/"jit", vessel.jit_cache bytes; 0: the
     * default size). true by default (vm_spec_init): config.json names only "interp". */
    bool jit;
    uint64_t jit_cache_size;
};

/* The order of the spec's drives as the machine's disks (vda, vdb, ...): the root drive
 * first, the others as they were added. order[k] is the spec index of disk k. */
void vm_spec_disk_order(const struct vm_spec *s, unsigned order[MACHINE_MAX_DISKS]);

/* Firecracker's defaults: 1 vCPU, 128 MiB, nothing to boot. */
void vm_spec_init(struct vm_spec *s);

/* Check a drive id (Firecracker: any string; here 1-63 of [A-Za-z0-9_.-], so it can name files). */
bool vm_drive_id_valid(const char *id);

/* JSON object member parsers for the API and the config file. `what` names the object in
 * messages. Each returns 0 or -EINVAL with a message; on error *s is unchanged.
 * partial: PATCH semantics (only the given keys change; required keys may be absent). */
int vm_spec_set_machine(struct vm_spec *s, json_object *o, bool partial, char *err, size_t errlen);
int vm_spec_set_boot(struct vm_spec *s, json_object *o, char *err, size_t errlen);
/* PUT /drives/{id}: id is the path's; the body's drive_id must match. Adds or replaces. */
int vm_spec_set_drive(struct vm_spec *s, const char *id, json_object *o, char *err, size_t errlen);

/* PUT /network-interfaces/{id}: iface_id must match id; host_dev_name (a tap) and guest_mac
 * optional; rate limiters are not supported. Adds or replaces the one interface. */
int vm_spec_set_net(struct vm_spec *s, const char *id, json_object *o, char *err, size_t errlen);

/* PUT /vsock: guest_cid (3..2^32-2) and uds_path (short enough for "<path>_<port>" in
 * sun_path) required; vsock_id optional. Adds or replaces the one vsock device. */
int vm_spec_set_vsock(struct vm_spec *s, json_object *o, char *err, size_t errlen);
/* Append the public keys in text (len bytes, the contents of an authorized_keys or .pub file)
 * to keys (a NUL-terminated string in a buffer of cap bytes, at most VM_SSH_KEYS_MAX), one
 * key a line. Each line that is not blank or a '#' comment must be KEYTYPE BASE64 [COMMENT]
 * with KEYTYPE ssh-*, ecdsa-* or sk-* (no authorized_keys options), printable ASCII only; at
 * least one key. Returns 0, or -EINVAL (-E2BIG: too long) with a one-line reason naming the
 * line; keys is then unchanged. */
int vm_ssh_keys_add(char *keys, size_t cap, const char *text, size_t len, char *err, size_t errlen);
/* Read a public key file (at most VM_SSH_KEYS_MAX bytes) and append its keys as above. */
int vm_ssh_keys_add_file(char *keys, size_t cap, const char *path, char *err, size_t errlen);

/* The disk index (vda = 0) vm_spec_to_options gives drive id, or -1 if there is none. */
int vm_spec_drive_index(const struct vm_spec *s, const char *id);

/* The whole configuration: Firecracker's FullVmConfiguration keys (machine-config, boot-source,
 * drives; other Firecracker sections are accepted only when empty or null, see config.c) plus
 * "vessel" (firmware and per-drive extras). */
int vm_spec_from_json(struct vm_spec *s, json_object *o, char *err, size_t errlen);
/* GET /vm/config: only Firecracker's keys (vessel_extras false), or the full file (true). */
json_object *vm_spec_to_json(const struct vm_spec *s, bool vessel_extras);
json_object *vm_spec_machine_json(const struct vm_spec *s);

/* Fill a vm_options whose strings point into s (s must outlive o). The root drive goes first
 * and, as Firecracker does, "root=/dev/vda rw|ro" is appended to the command line unless it
 * already names a root. Returns 0 or -EINVAL (no kernel or firmware). */
int vm_spec_to_options(const struct vm_spec *s, struct vm_options *o, char *cmdline_buf,
                       size_t cmdline_len, char *err, size_t errlen);
/* The reverse, for `vessel create` (which parses `run` options). */
int vm_spec_from_options(struct vm_spec *s, const struct vm_options *o, char *err, size_t errlen);
#endif

/* Subcommands: each parses its arguments, validates them, calls the library and prints. */
#ifndef VESSEL_CLI_CLI_H
#define VESSEL_CLI_CLI_H
#include "vm/config.h"
#include "vm/vm.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "util/version.h"

struct run_args {
    struct vm_options vm;
    bool overcommit;
    bool help;
    const char *log_level, *log_file;
    const char *api_sock, *config_file, *store;
    char default_paths[3][4096]; /* storage for default firmware, kernel, initrd */
    /* --ssh-key FILE (repeatable): the keys read (vm.machine.ssh_keys points here) and the
     * files, in order */
    char ssh_keys[VM_SSH_KEYS_MAX];
    const char *ssh_key_files[VM_SSH_KEY_FILES];
    unsigned nssh_key_files;
};

/* What the host can give; separated out so tests can fake it. */
struct host_limits {
    unsigned cpus;
    unsigned long long mem_available;
};
int host_limits_read(struct host_limits *l);

/* Parse `vessel run` arguments (argv[0] = "run"). Returns 0, or -EINVAL with a one-line
 * message in err. Fills defaults for the default guest. Does not touch the files, except
 * --ssh-key's, read and checked into a->ssh_keys. */
int cli_run_parse(int argc, char **argv, const struct host_limits *lim, struct run_args *a,
                  char *err, size_t errlen);
int cli_run(int argc, char **argv);
void cli_run_usage(FILE *out);
/* `vessel disk convert` without its messages: IN (probed raw or qcow2; with snap, that internal
 * snapshot of a qcow2 IN, readable while a VM holds IN) to a new sparse image OUT. 0, or
 * -errno with a message (OUT is removed). */
int disk_convert_image(const char *in, const char *snap, const char *outp, bool to_qcow2,
                       bool compress, uint64_t *size_out, char *err, size_t errlen);
/* A snapshot whose disks are internal snapshots of the VM's qcow2 images gets a file for each
 * (disk-N.img, a standalone qcow2 of that instant, "copy" in its info.json), for a clone to
 * stand on or an export to carry. 0 (also when sdir has no snapshot), or -errno with a
 * message. */
int snapshot_materialize(const char *sdir, char *err, size_t errlen);
int cli_disk(int argc, char **argv);
/* The VMs of the store (vm.c) and the host's policy (host.c). */
int cli_create(int argc, char **argv);
int cli_set(int argc, char **argv);
int cli_start(int argc, char **argv);
int cli_stop(int argc, char **argv);
int cli_pause(int argc, char **argv);
int cli_resume(int argc, char **argv);
int cli_list(int argc, char **argv);
int cli_inspect(int argc, char **argv);
int cli_rm(int argc, char **argv);
int cli_logs(int argc, char **argv);
int cli_console(int argc, char **argv);
int cli_host(int argc, char **argv);
int cli_ssh(int argc, char **argv);
int cli_vmm(int argc, char **argv); /* the detached VM process (vessel __vmm) */
int cli_snapshot(int argc, char **argv);
int cli_clone(int argc, char **argv);
int cli_export(int argc, char **argv); /* export.c */
int cli_import(int argc, char **argv);
#endif

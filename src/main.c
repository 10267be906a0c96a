/* vessel: subcommand dispatch only. */
#include "cli/cli.h"
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

struct subcommand {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
};

static const struct subcommand subcommands[] = {
    {"run", cli_run, "boot a virtual machine in the foreground"},
    {"create", cli_create, "create a VM in the store"},
    {"list", cli_list, "list the VMs and their states"},
    {"start", cli_start, "start a VM in the background"},
    {"snapshot", cli_snapshot, "snapshots of a VM: create, list, restore, rm"},
    {"clone", cli_clone, "a new VM from another (or from its snapshot)"},
    {"export", cli_export, "a VM (and a snapshot) as one portable file"},
    {"import", cli_import, "a VM from a file vessel export made"},
    {"stop", cli_stop, "shut a VM down (power key, then force)"},
    {"pause", cli_pause, "pause a running VM"},
    {"resume", cli_resume, "resume a paused VM"},
    {"console", cli_console, "attach to a VM's console"},
    {"logs", cli_logs, "print a VM's console output"},
    {"inspect", cli_inspect, "a VM's configuration and state as JSON"},
    {"set", cli_set, "change a stopped VM's configuration"},
    {"rm", cli_rm, "delete a VM"},
    {"host", cli_host, "the host's resources and the admission policy"},
    {"ssh", cli_ssh, "ssh into a VM through its published port 22"},
    {"disk", cli_disk, "create and inspect disk images"},
    {"__vmm", cli_vmm, NULL}, /* the VM process `vessel start` spawns */
};
#define NSUB (sizeof(subcommands) / sizeof(subcommands[0]))

static void usage(FILE *out)
{
    fprintf(out, "Usage: vessel COMMAND [OPTIONS]\n"
                 "vessel is a hosted hypervisor for 64-bit RISC-V guests.\n\nCommands:\n");
    for (unsigned i = 0; i < NSUB; i++)
        if (subcommands[i].help)
            fprintf(out, "  %-8s %s\n", subcommands[i].name, subcommands[i].help);
    fprintf(out, "\nOptions:\n  -h, --help     show this help\n  --version      show the version\n"
                 "\n'vessel COMMAND --help' describes a command.\n");
}

int main(int argc, char **argv)
{
    /* A closed stdout must not kill the VM; the console backend reports it once. */
    signal(SIGPIPE, SIG_IGN);
    /* Large buffers (kernel, initrd, disk images read at set-up) come from mmap and go back to
     * the host when freed. glibc's default raises the mmap threshold to the size of the largest
     * block freed, so after the 30 MiB kernel buffer the initrd's buffer stayed resident in the
     * heap for the VM's whole life. A fixed threshold turns that adjustment off. */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("vessel %s\n", VESSEL_VERSION);
        return 0;
    }
    for (unsigned i = 0; i < NSUB; i++)
        if (!strcmp(argv[1], subcommands[i].name)) return subcommands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "vessel: unknown command '%s' (see vessel --help)\n", argv[1]);
    return 2;
}

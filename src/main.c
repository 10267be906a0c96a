/* vessel: subcommand dispatch only. */
#include "cli/cli.h"
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
    {"disk", cli_disk, "create and inspect disk images"},
};
#define NSUB (sizeof(subcommands) / sizeof(subcommands[0]))

static void usage(FILE *out)
{
    fprintf(out, "Usage: vessel COMMAND [OPTIONS]\n"
                 "vessel is a hosted hypervisor for 64-bit RISC-V guests.\n\nCommands:\n");
    for (unsigned i = 0; i < NSUB; i++)
        fprintf(out, "  %-8s %s\n", subcommands[i].name, subcommands[i].help);
    fprintf(out, "\nOptions:\n  -h, --help     show this help\n  --version      show the version\n"
                 "\n'vessel COMMAND --help' describes a command.\n");
}

int main(int argc, char **argv)
{
    /* A closed stdout must not kill the VM; the console backend reports it once. */
    signal(SIGPIPE, SIG_IGN);
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

/* vessel run: boot a VM in the foreground, its console on this terminal. */
#include "backend/block/block.h"
#include "backend/vsock/vsock.h"
#include "cli/cli.h"
#include "mgr/admit.h"
#include "mgr/supervise.h"
#include "mgr/vmproc.h"
#include "util/err.h"
#include "util/log.h"
#include "util/paths.h"
#include "util/size.h"
#include "vm/cgroup.h"
#include "vm/sandbox.h"
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define fail(err, errlen, ...) err_set(err, errlen, -EINVAL, __VA_ARGS__)

#define DEFAULT_CPUS         1
#define DEFAULT_MEMORY       (512ull << 20)
#define DEFAULT_CMDLINE      "console=ttyS0"
#define DEFAULT_DISK_CMDLINE "console=ttyS0 root=/dev/vda rw"

void cli_run_usage(FILE *out)
{
    fprintf(out,
            "Usage: vessel run [OPTIONS]\n"
            "Boot a RISC-V virtual machine with its console on this terminal.\n"
            "Without --kernel and --firmware, boots the default guest (Debian's kernel and a\n"
            "busybox initramfs, built by guest/build.sh into the cache).\n"
            "\n"
            "  --cpus N           virtual CPUs (default %d; at most the host's CPUs)\n"
            "  --memory SIZE      guest RAM, e.g. 512M, 2G (default 512M; at least 64M, at\n"
            "                     most the host's available memory)\n"
            "  --kernel FILE      RISC-V Linux kernel Image\n"
            "  --initrd FILE      initramfs to pass to the kernel\n"
            "  --cmdline STRING   kernel command line (default \"%s\")\n"
            "  --disk IMAGE[,readonly][,serial=ID][,cache=writeback|none][,format=F]\n"
            "                     a disk image (raw or qcow2) as virtio-blk (vda, vdb, ...\n"
            "                     in order; up to %d); with no --kernel the default kernel\n"
            "                     boots it as root (root=/dev/vda); cache=none bypasses the\n"
            "                     host page cache (O_DIRECT, raw only; default writeback);\n"
            "                     format=raw|qcow2 (default: probed from the image)\n"
            "  --firmware FILE    M-mode firmware loaded at 0x80000000 (default: the cached\n"
            "                     OpenSBI fw_dynamic.bin when --kernel is given; alone, a\n"
            "                     bare-metal program)\n"
            "  --overcommit       allow more vCPUs than host CPUs and more memory than available\n"
            "  --no-reboot        exit when the guest reboots instead of restarting it\n"
            "  --gdb PORT         serve the GDB remote protocol on 127.0.0.1:PORT\n"
            "                     (gdb-multiarch: target remote :PORT)\n"
            "  --paused           with --gdb: wait for the debugger before running\n"
            "  --no-sandbox       run without the sandbox (seccomp filter, no_new_privs,\n"
            "                     closing inherited files, dropping root); for debugging\n"
            "  --user NAME        as root, the user to run as after set-up (default: %s,\n"
            "                     else %s)\n"
            "  --cgroup NAME      run in its own cgroup NAME, limited to the guest's memory\n"
            "                     plus vessel's overhead and to --cpus CPUs (root or a\n"
            "                     delegated cgroup subtree)\n"
            "  --api-sock PATH    serve the REST API (Firecracker-compatible) on this Unix\n"
            "                     socket and wait for the configuration and InstanceStart\n"
            "  --config-file FILE boot the configuration in FILE (Firecracker's JSON format)\n"
            "  --store DIR        the VM store whose VMs share this host's resources\n"
            "  --net none|user[,hostfwd=[tcp|udp]:[HADDR]:HPORT-[GADDR]:GPORT]...\n"
            "                     [,restrict=on][,ipv6=off] | tap,ifname=NAME\n"
            "                     network: none (default) or user-mode networking\n"
            "                     (libslirp, QEMU's addresses: guest 10.0.2.15 by DHCP, host\n"
            "                     10.0.2.2, DNS 10.0.2.3); hostfwd forwards a host port to\n"
            "                     the guest; restrict=on lets the guest reach nothing;\n"
            "                     tap: an existing tap interface (ip tuntap add NAME mode\n"
            "                     tap user $USER)\n"
            "  --publish [ADDR:]HOSTPORT:GUESTPORT[/udp]\n"
            "                     forward a host port (on 127.0.0.1 unless ADDR) to the\n"
            "                     guest; implies --net user; repeatable\n"
            "  --mac MAC          the network device's MAC address (default: 52:54:00 and\n"
            "                     three random bytes, new for every vessel run)\n"
            "  --vsock cid=N,path=PATH\n"
            "                     virtio-vsock with guest CID N (>= 3), Firecracker's host\n"
            "                     convention: host programs connect to PATH and write\n"
            "                     \"CONNECT <port>\\n\"; guest connections to host port P go to\n"
            "                     the Unix socket PATH_P\n"
            "  --ssh-key FILE     public keys (a .pub or authorized_keys file) for the guest's\n"
            "                     root, given in the device tree (/chosen/vessel,ssh-\n"
            "                     authorized-keys); the Debian root disk installs them in\n"
            "                     /root/.ssh/authorized_keys at boot; repeatable (%d files)\n"
            "  --engine ENGINE    jit (default: guest code translated to x86-64) or interp\n"
            "                     (the interpreter, the JIT's reference)\n"
            "  --jit-cache SIZE   translated code per vCPU with the JIT (default 64M,\n"
            "                     64K to 2G; flushed whole when full)\n"
            "  --mmu MODE         sv39 (default), sv48 or sv57: the widest paging mode the\n"
            "                     vCPUs offer (the JIT's fast memory works under sv39)\n"
            "  --log-level LEVEL  error, warn (default), info, debug, trace (traps)\n"
            "  --log-file FILE    write log lines to FILE instead of stderr\n"
            "  -h, --help         show this help\n"
            "\n"
            "Console: Ctrl-A x quits, Ctrl-A p asks the guest to power down, Ctrl-A h helps,\n"
            "Ctrl-A Ctrl-A sends Ctrl-A.\n"
            "Exit status: 0 guest powered off, 1 host error, 2 bad arguments or files,\n"
            "3 the guest cannot continue, 4 the guest reported failure.\n",
            DEFAULT_CPUS, DEFAULT_CMDLINE, MACHINE_MAX_DISKS, SANDBOX_DEFAULT_USER,
            SANDBOX_FALLBACK_USER, VM_SSH_KEY_FILES);
}

int host_limits_read(struct host_limits *l)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    l->cpus = n > 0 ? (unsigned)n : 1;
    l->mem_available = 0;
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return -errno;
    char line[256];
    while (fgets(line, sizeof(line), f)) {
        unsigned long long kb;
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
            l->mem_available = kb * 1024;
            break;
        }
    }
    fclose(f);
    return 0;
}

enum {
    OPT_CPUS = 256,
    OPT_MEMORY,
    OPT_KERNEL,
    OPT_INITRD,
    OPT_CMDLINE,
    OPT_FIRMWARE,
    OPT_OVERCOMMIT,
    OPT_NO_REBOOT,
    OPT_LOG_LEVEL,
    OPT_LOG_FILE,
    OPT_GDB,
    OPT_PAUSED,
    OPT_DISK,
    OPT_NO_SANDBOX,
    OPT_USER,
    OPT_CGROUP,
    OPT_API_SOCK,
    OPT_CONFIG_FILE,
    OPT_STORE,
    OPT_ENGINE,
    OPT_JIT_CACHE,
    OPT_MMU,
    OPT_NET,
    OPT_VSOCK,
    OPT_MAC,
    OPT_PUBLISH,
    OPT_SSH_KEY
};

static const struct option run_options[] = {
    {"cpus", required_argument, NULL, OPT_CPUS},
    {"memory", required_argument, NULL, OPT_MEMORY},
    {"kernel", required_argument, NULL, OPT_KERNEL},
    {"initrd", required_argument, NULL, OPT_INITRD},
    {"cmdline", required_argument, NULL, OPT_CMDLINE},
    {"firmware", required_argument, NULL, OPT_FIRMWARE},
    {"overcommit", no_argument, NULL, OPT_OVERCOMMIT},
    {"no-reboot", no_argument, NULL, OPT_NO_REBOOT},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"log-file", required_argument, NULL, OPT_LOG_FILE},
    {"gdb", required_argument, NULL, OPT_GDB},
    {"paused", no_argument, NULL, OPT_PAUSED},
    {"disk", required_argument, NULL, OPT_DISK},
    {"no-sandbox", no_argument, NULL, OPT_NO_SANDBOX},
    {"user", required_argument, NULL, OPT_USER},
    {"cgroup", required_argument, NULL, OPT_CGROUP},
    {"api-sock", required_argument, NULL, OPT_API_SOCK},
    {"config-file", required_argument, NULL, OPT_CONFIG_FILE},
    {"store", required_argument, NULL, OPT_STORE},
    {"engine", required_argument, NULL, OPT_ENGINE},
    {"jit-cache", required_argument, NULL, OPT_JIT_CACHE},
    {"mmu", required_argument, NULL, OPT_MMU},
    {"net", required_argument, NULL, OPT_NET},
    {"vsock", required_argument, NULL, OPT_VSOCK},
    {"mac", required_argument, NULL, OPT_MAC},
    {"publish", required_argument, NULL, OPT_PUBLISH},
    {"ssh-key", required_argument, NULL, OPT_SSH_KEY},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int default_path(struct run_args *a, int slot, const char *name, const char **out, char *err,
                        size_t errlen)
{
    char dir[3800];
    if (paths_cache_dir(dir, sizeof(dir)) < 0)
        return fail(err, errlen, "cannot locate the guest cache: set VESSEL_CACHE or HOME");
    snprintf(a->default_paths[slot], sizeof(a->default_paths[slot]), "%s/guest/default/%s", dir,
             name);
    *out = a->default_paths[slot];
    return 0;
}

/* IMAGE[,readonly][,serial=ID][,cache=MODE][,format=FMT]: the image path may not contain
 * commas. */
static int parse_disk(const char *spec, struct vm_options *vm, char *err, size_t errlen)
{
    if (vm->ndisks == MACHINE_MAX_DISKS)
        return fail(err, errlen, "--disk %s: at most %d disks (virtio slots are full)", spec,
                    MACHINE_MAX_DISKS);
    struct vm_disk *d = &vm->disks[vm->ndisks];
    memset(d, 0, sizeof(*d));
    const char *comma = strchr(spec, ',');
    size_t plen = comma ? (size_t)(comma - spec) : strlen(spec);
    if (plen == 0) return fail(err, errlen, "--disk %s: no image file given", spec);
    if (plen >= sizeof(d->path)) return fail(err, errlen, "--disk: the image path is too long");
    memcpy(d->path, spec, plen);
    vm->ndisks++;
    while (comma) {
        const char *opt = comma + 1;
        comma = strchr(opt, ',');
        size_t olen = comma ? (size_t)(comma - opt) : strlen(opt);
        if (olen == 8 && !strncmp(opt, "readonly", 8)) {
            d->readonly = true;
        } else if (olen > 7 && !strncmp(opt, "serial=", 7)) {
            size_t slen = olen - 7;
            if (slen > 20)
                return fail(err, errlen, "--disk %s: serial is longer than 20 characters", spec);
            for (size_t k = 0; k < slen; k++)
                if (opt[7 + k] < 0x21 || opt[7 + k] > 0x7e)
                    return fail(err, errlen, "--disk %s: serial may only hold printable characters",
                                spec);
            memcpy(d->serial, opt + 7, slen);
        } else if (olen == 15 && !strncmp(opt, "cache=writeback", 15)) {
            d->direct = false;
        } else if (olen == 10 && !strncmp(opt, "cache=none", 10)) {
            d->direct = true;
        } else if (olen > 7 && !strncmp(opt, "format=", 7)) {
            char f[16];
            enum blk_format bf;
            snprintf(f, sizeof(f), "%.*s", (int)olen - 7, opt + 7);
            if (olen - 7 >= sizeof(f) || blk_format_parse(f, &bf) < 0)
                return fail(err, errlen, "--disk %s: unknown format '%.*s' (raw, qcow2, auto)",
                            spec, (int)olen - 7, opt + 7);
            d->format = (int)bf;
        } else if (olen > 6 && !strncmp(opt, "cache=", 6)) {
            return fail(err, errlen, "--disk %s: unknown cache mode '%.*s' (writeback, none)", spec,
                        (int)olen - 6, opt + 6);
        } else {
            return fail(
                err, errlen,
                "--disk %s: unknown option '%.*s' (options: readonly, serial=ID, cache=MODE, "
                "format=FMT)",
                spec, (int)olen, opt);
        }
    }
    return 0;
}

int cli_run_parse(int argc, char **argv, const struct host_limits *lim, struct run_args *a,
                  char *err, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    struct machine_config *mc = &a->vm.machine;
    mc->engine = ENGINE_JIT; /* the default: --engine interp for the interpreter */
    const char *cpus_s = NULL, *mem_s = NULL, *gdb_s = NULL, *net_s = NULL;
    const char *publish[NET_MAX_HOSTFWD + 1];
    unsigned npublish = 0;
    bool cmdline_set = false;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", run_options, NULL)) != -1) {
        switch (c) {
        case OPT_CPUS: cpus_s = optarg; break;
        case OPT_MEMORY: mem_s = optarg; break;
        case OPT_KERNEL: mc->kernel = optarg; break;
        case OPT_INITRD: mc->initrd = optarg; break;
        case OPT_CMDLINE:
            mc->cmdline = optarg;
            cmdline_set = true;
            break;
        case OPT_FIRMWARE: mc->firmware = optarg; break;
        case OPT_OVERCOMMIT: a->overcommit = true; break;
        case OPT_NO_REBOOT: a->vm.no_reboot = true; break;
        case OPT_LOG_LEVEL: a->log_level = optarg; break;
        case OPT_LOG_FILE: a->log_file = optarg; break;
        case OPT_GDB: gdb_s = optarg; break;
        case OPT_PAUSED: a->vm.paused = true; break;
        case OPT_API_SOCK: a->api_sock = optarg; break;
        case OPT_CONFIG_FILE: a->config_file = optarg; break;
        case OPT_STORE: a->store = optarg; break;
        case OPT_DISK: {
            int r = parse_disk(optarg, &a->vm, err, errlen);
            if (r < 0) return r;
            break;
        }
        case OPT_NO_SANDBOX: a->vm.no_sandbox = true; break;
        case OPT_USER: a->vm.user = optarg; break;
        case OPT_CGROUP:
            if (!cgroup_name_valid(optarg))
                return fail(err, errlen,
                            "--cgroup %s: use 1 to 64 of A-Z a-z 0-9 _ . - (not starting with .)",
                            optarg);
            a->vm.cgroup = optarg;
            break;
        case OPT_ENGINE:
            if (strcmp(optarg, "jit") && strcmp(optarg, "interp"))
                return fail(err, errlen, "--engine %s: expected interp or jit", optarg);
            mc->engine = strcmp(optarg, "jit") ? ENGINE_INTERP : ENGINE_JIT;
            break;
        case OPT_MMU:
            if (strcmp(optarg, "sv39") == 0)
                mc->mmu_mode = MMU_SV39;
            else if (strcmp(optarg, "sv48") == 0)
                mc->mmu_mode = MMU_SV48;
            else if (strcmp(optarg, "sv57") == 0)
                mc->mmu_mode = MMU_SV57;
            else
                return fail(err, errlen, "--mmu %s: expected sv39, sv48 or sv57", optarg);
            break;
        case OPT_JIT_CACHE:
            if (size_parse(optarg, &mc->jit_cache_size) < 0 ||
                mc->jit_cache_size < VM_JIT_CACHE_MIN || mc->jit_cache_size > VM_JIT_CACHE_MAX)
                return fail(err, errlen, "--jit-cache %s: expected a size from 64K to 2G", optarg);
            break;
        case OPT_NET: {
            int r = net_spec_parse(optarg, &a->vm.net, err, errlen);
            if (r < 0) return r;
            net_s = optarg;
            break;
        }
        case OPT_VSOCK: {
            int r = vsock_spec_parse(optarg, &a->vm.vsock, err, errlen);
            if (r < 0) return r;
            break;
        }
        case OPT_PUBLISH:
            if (npublish == NET_MAX_HOSTFWD + 1)
                return fail(err, errlen, "--publish: at most %d forwarded ports", NET_MAX_HOSTFWD);
            publish[npublish++] = optarg;
            break;
        case OPT_SSH_KEY:
            if (a->nssh_key_files == VM_SSH_KEY_FILES)
                return fail(err, errlen,
                            "--ssh-key: at most %d files (one file may hold many keys)",
                            VM_SSH_KEY_FILES);
            a->ssh_key_files[a->nssh_key_files++] = optarg;
            break;
        case OPT_MAC:
            if (net_mac_parse(optarg, a->vm.mac) < 0)
                return fail(err, errlen,
                            "--mac %s: expected a unicast address like 52:54:00:12:34:56", optarg);
            a->vm.mac_set = true;
            break;
        case 'h': a->help = true; return 0;
        case ':':
            return fail(err, errlen, "option %s needs a value (see vessel run --help)",
                        argv[optind - 1]);
        default:
            if (optopt)
                return fail(err, errlen, "unknown option -%c (see vessel run --help)", optopt);
            return fail(err, errlen, "unknown option %s (see vessel run --help)", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return fail(err, errlen, "unexpected argument '%s' (see vessel run --help)", argv[optind]);

    if ((a->api_sock || a->config_file) &&
        (cpus_s || mem_s || mc->kernel || mc->initrd || cmdline_set || mc->firmware ||
         a->vm.ndisks || gdb_s || net_s || a->vm.mac_set || npublish || a->vm.vsock.present ||
         a->nssh_key_files))
        return fail(err, errlen,
                    "--api-sock and --config-file take the VM's configuration from the API or the "
                    "file: drop --cpus, --memory, --kernel, --initrd, --cmdline, --firmware, "
                    "--disk, --gdb, --net, --mac, --publish, --vsock and --ssh-key");
    for (unsigned i = 0; i < a->nssh_key_files; i++) {
        char e2[300];
        const char *f = a->ssh_key_files[i];
        if (vm_ssh_keys_add_file(a->ssh_keys, sizeof(a->ssh_keys), f, e2, sizeof(e2)) < 0)
            return fail(err, errlen, "--ssh-key %s: %s", f, e2);
    }
    if (a->ssh_keys[0]) mc->ssh_keys = a->ssh_keys;
    /* after --net, whatever the order: --publish adds to its forwards (or makes it user) */
    for (unsigned i = 0; i < npublish; i++) {
        int r = net_spec_add_publish(&a->vm.net, publish[i], err, errlen);
        if (r < 0) return r;
    }
    if (a->vm.mac_set && a->vm.net.kind == NET_NONE)
        return fail(err, errlen, "--mac needs a network (--net user or tap)");
    if (a->log_level && log_set_level_name(a->log_level) < 0)
        return fail(err, errlen, "--log-level %s: expected error, warn, info, debug or trace",
                    a->log_level);
    if (a->api_sock || a->config_file) return 0;
    if (gdb_s) {
        char *end;
        errno = 0;
        long v = strtol(gdb_s, &end, 10);
        if (errno || end == gdb_s || *end || v < 1 || v > 65535)
            return fail(err, errlen, "--gdb %s: expected a TCP port from 1 to 65535", gdb_s);
        a->vm.gdb_port = (int)v;
    }
    if (a->vm.user && a->vm.no_sandbox)
        return fail(err, errlen, "--user needs the sandbox (it is dropped with --no-sandbox)");
    if (a->vm.user) {
        struct passwd *pw = getpwnam(a->vm.user);
        if (!pw) return fail(err, errlen, "--user %s: no such user", a->vm.user);
        if (pw->pw_uid == 0 || pw->pw_gid == 0)
            return fail(err, errlen, "--user %s: an unprivileged user is needed", a->vm.user);
    }
    if (a->vm.paused && !a->vm.gdb_port)
        return fail(err, errlen, "--paused needs --gdb PORT (nothing could resume the guest)");

    mc->cpus = DEFAULT_CPUS;
    if (cpus_s) {
        char *end;
        errno = 0;
        long v = strtol(cpus_s, &end, 10);
        if (errno || end == cpus_s || *end || v < 1 || v > MACHINE_MAX_HARTS)
            return fail(err, errlen, "--cpus %s: expected a whole number from 1 to %d", cpus_s,
                        MACHINE_MAX_HARTS);
        mc->cpus = (unsigned)v;
    }
    if (mc->cpus > lim->cpus && !a->overcommit)
        return fail(err, errlen,
                    "--cpus %u: this host has only %u CPUs (use --overcommit to allow more)",
                    mc->cpus, lim->cpus);

    mc->ram_size = DEFAULT_MEMORY;
    if (mem_s) {
        uint64_t v;
        int r = size_parse(mem_s, &v);
        if (r < 0)
            return fail(err, errlen, "--memory %s: %s (use e.g. 512M or 2G)", mem_s,
                        r == -ERANGE ? "too large" : "not a size");
        mc->ram_size = v;
    }
    if (mc->ram_size < MACHINE_MIN_RAM)
        return fail(err, errlen, "--memory %s: at least 64M is needed", mem_s);
    if (mc->ram_size % (1ull << 20))
        return fail(err, errlen, "--memory %s: must be a whole number of MiB", mem_s);
    if (mc->ram_size > (1ull << 40))
        return fail(err, errlen, "--memory %s: at most 1T is supported", mem_s);
    if (mc->ram_size > lim->mem_available && !a->overcommit) {
        char have[32];
        size_format(lim->mem_available & ~((1ull << 20) - 1), have, sizeof(have));
        return fail(err, errlen,
                    "--memory %s: the host has only %s available (use --overcommit to allow more)",
                    mem_s ? mem_s : "512M", have);
    }

    bool default_kernel = !mc->kernel && !mc->firmware;
    if (default_kernel) {
        /* the default guest */
        int r = default_path(a, 0, "fw_dynamic.bin", &mc->firmware, err, errlen);
        if (!r) r = default_path(a, 1, "Image", &mc->kernel, err, errlen);
        if (!r && !mc->initrd)
            r = default_path(a, 2, "initramfs.cpio.gz", &mc->initrd, err, errlen);
        if (r) return r;
        if (access(mc->kernel, F_OK) != 0)
            return fail(err, errlen,
                        "the default guest is not built (%s is missing): run guest/build.sh",
                        mc->kernel);
    } else if (mc->kernel && !mc->firmware) {
        int r = default_path(a, 0, "fw_dynamic.bin", &mc->firmware, err, errlen);
        if (r) return r;
    }
    if (mc->initrd && !mc->kernel) return fail(err, errlen, "--initrd needs --kernel");
    if (mc->kernel && !cmdline_set)
        mc->cmdline = a->vm.ndisks && default_kernel ? DEFAULT_DISK_CMDLINE : DEFAULT_CMDLINE;
    return 0;
}

/* vessel run --api-sock / --config-file: Firecracker's way of starting a VMM. */
static int run_api(const struct run_args *a)
{
    static struct vm_spec spec;
    struct vmproc_opts vo = {.store_dir = a->store,
                             .ready_fd = -1,
                             .api_sock = a->api_sock,
                             .overcommit = a->overcommit,
                             .no_reboot = a->vm.no_reboot,
                             .base = &a->vm};
    if (a->config_file) {
        char err[600];
        json_object *o;
        int r = store_read_json(a->config_file, 1u << 20, &o, err, sizeof(err));
        if (r < 0) {
            fprintf(stderr, "vessel run: --config-file %s: %s\n", a->config_file, err);
            return VM_EXIT_USAGE;
        }
        r = vm_spec_from_json(&spec, o, err, sizeof(err));
        json_object_put(o);
        if (r < 0) {
            fprintf(stderr, "vessel run: --config-file %s: %s\n", a->config_file, err);
            return VM_EXIT_USAGE;
        }
        if (!spec.kernel[0]) {
            fprintf(stderr, "vessel run: --config-file %s: no boot-source\n", a->config_file);
            return VM_EXIT_USAGE;
        }
        vo.spec = &spec;
    }
    return vmproc_run(&vo);
}

/* The monitor removes the admission entry of the sandboxed VM process (supervise.h). */
static struct {
    struct store *st;
    pid_t pid;
    const char *vsock_path; /* the sandboxed process cannot unlink its vsock socket */
} run_cleanup;
static void release_run(void *ctx)
{
    if (run_cleanup.st) admit_run_remove(run_cleanup.st, run_cleanup.pid);
    /* its vsock socket file, if nobody listens on it any more (not another VM's, after a
     * refusal for a path in use) */
    vsock_uds_remove_stale(run_cleanup.vsock_path);
    (void)ctx;
}

int cli_run(int argc, char **argv)
{
    struct host_limits lim;
    if (host_limits_read(&lim) < 0) {
        fprintf(stderr, "vessel: cannot read the host's resources from /proc/meminfo\n");
        return VM_EXIT_HOST_ERROR;
    }
    /* Before anything is opened: what the process inherited, to be closed in the sandbox. */
    int inherited[SANDBOX_MAX_FDS];
    int ninh = sandbox_list_fds(inherited, SANDBOX_MAX_FDS);
    static struct run_args a;
    char err[512];
    if (cli_run_parse(argc, argv, &lim, &a, err, sizeof(err)) < 0) {
        fprintf(stderr, "vessel run: %s\n", err);
        return VM_EXIT_USAGE;
    }
    if (a.help) {
        cli_run_usage(stdout);
        return 0;
    }
    if (a.log_file && log_set_file(a.log_file) < 0) {
        fprintf(stderr, "vessel run: --log-file %s: %s\n", a.log_file, strerror(errno));
        return VM_EXIT_USAGE;
    }
    if (a.vm.user && geteuid() != 0)
        log_warn("--user %s: ignored, vessel is not running as root", a.vm.user);
    if (ninh < 0 || ninh > (int)(sizeof(a.vm.inherited_fds) / sizeof(a.vm.inherited_fds[0]))) {
        fprintf(stderr, "vessel run: cannot list the open file descriptors (%d)\n", ninh);
        return VM_EXIT_HOST_ERROR;
    }
    for (int i = 0; i < ninh; i++)
        a.vm.inherited_fds[i] = inherited[i];
    a.vm.ninherited = ninh;
    if (a.api_sock || a.config_file) return run_api(&a);
    a.vm.machine.trace = log_current_level >= LOG_TRACE;
    /* take part in admission with the VMs of the store */
    struct store st;
    int run_fd = -1;
    if (!a.overcommit) {
        run_fd = admit_run_begin(&st, a.store, a.vm.machine.cpus, a.vm.machine.ram_size >> 20, err,
                                 sizeof(err));
        if (run_fd < -1) {
            fprintf(stderr, "vessel run: %s (use --overcommit to allow it)\n", err);
            return VM_EXIT_HOST_ERROR;
        }
    }
    /* Sandboxed, the VM process cannot remove its admission entry nor open an image for PATCH
     * /drives: a monitor does (and restores the terminal if the filter kills the VM process).
     * Before any thread exists. */
    bool monitored = false;
    if (!a.vm.no_sandbox) {
        run_cleanup.st = run_fd >= 0 ? &st : NULL;
        run_cleanup.pid = getpid();
        run_cleanup.vsock_path = a.vm.vsock.present ? a.vm.vsock.path : NULL;
        int r = supervise_fork(release_run, NULL, NULL, 0);
        if (r < 0) log_warn("no monitor process (%s): the admission entry stays", strerror(-r));
        monitored = r == 0;
    }
    struct vm *vm = vm_new(NULL, NULL, NULL);
    if (!vm) {
        fprintf(stderr, "vessel: cannot set up the console: %s\n", strerror(errno));
        if (!monitored) admit_run_release(&st, run_fd);
        return VM_EXIT_HOST_ERROR;
    }
    int status = vm_run(vm, &a.vm);
    vm_free(vm);
    if (monitored || !a.vm.no_sandbox)
        close(run_fd); /* sandboxed: no unlink; the monitor (or the next admission) removes it */
    else
        admit_run_release(&st, run_fd);
    return status;
}

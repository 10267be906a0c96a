/* vessel create/list/start/stop/pause/resume/inspect/set/rm/logs/console: VMs of the store.
 * Running VMs are driven through their REST API (api/client.h); the state comes from the VM
 * processes themselves (mgr/store.h). */
#include "api/client.h"
#include "backend/block/block.h"
#include "backend/block/qcow2.h"
#include "cli/cli.h"
#include "mgr/admit.h"
#include "mgr/store.h"
#include "mgr/vmproc.h"
#include "util/paths.h"
#include "util/size.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#define START_TIMEOUT_MS 30000
#define API_TIMEOUT_MS   5000
#define CONSOLE_QUIET_MS 1000

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Common: --store DIR and a VM name. Returns 0 or an exit status (message printed). */
static int open_store(struct store *st, const char *dir, bool create, const char *cmd)
{
    char err[512];
    if (store_open(st, dir, create, err, sizeof(err)) < 0) {
        fprintf(stderr, "vessel %s: %s\n", cmd, err);
        return VM_EXIT_HOST_ERROR;
    }
    return 0;
}

static int check_name(const char *name, const char *cmd)
{
    if (store_name_valid(name)) return 0;
    fprintf(stderr,
            "vessel %s: '%s' is not a valid VM name (1-63 of a-z 0-9 _ . -, starting with a "
            "letter or digit)\n",
            cmd, name);
    return VM_EXIT_USAGE;
}

/* Parse "--store DIR" and "-h" plus one NAME for the simple commands. */
struct simple_args {
    const char *store, *name;
    bool force, follow, attach, json, help;
    long timeout;
};

static int parse_simple(int argc, char **argv, const char *cmd, const char *flags,
                        struct simple_args *a, void (*usage)(FILE *))
{
    static const struct option opts[] = {
        {"store", required_argument, NULL, 's'}, {"force", no_argument, NULL, 'F'},
        {"follow", no_argument, NULL, 'f'},      {"attach", no_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof(*a));
    a->timeout = 30;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":hf", opts, NULL)) != -1) {
        if (c != 's' && c != 'h' && c != '?' && c != ':' && !strchr(flags, c)) c = '?';
        switch (c) {
        case 's': a->store = optarg; break;
        case 'F': a->force = true; break;
        case 'f': a->follow = true; break;
        case 'a': a->attach = true; break;
        case 'j': a->json = true; break;
        case 't': {
            char *end;
            errno = 0;
            a->timeout = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || a->timeout < 0 || a->timeout > 86400) {
                fprintf(stderr, "vessel %s: --timeout %s: expected seconds from 0 to 86400\n", cmd,
                        optarg);
                return VM_EXIT_USAGE;
            }
            break;
        }
        case 'h': a->help = true; break;
        case ':':
            fprintf(stderr, "vessel %s: option %s needs a value\n", cmd, argv[optind - 1]);
            return VM_EXIT_USAGE;
        default:
            fprintf(stderr, "vessel %s: unknown option %s (see vessel %s --help)\n", cmd,
                    argv[optind - 1], cmd);
            return VM_EXIT_USAGE;
        }
    }
    if (a->help) {
        usage(stdout);
        return -1;
    }
    bool wants_name = usage != NULL && strcmp(cmd, "list") != 0;
    if (wants_name) {
        if (optind != argc - 1) {
            fprintf(stderr, "vessel %s: expected one VM name (see vessel %s --help)\n", cmd, cmd);
            return VM_EXIT_USAGE;
        }
        a->name = argv[optind];
        return check_name(a->name, cmd);
    }
    if (optind != argc) {
        fprintf(stderr, "vessel %s: unexpected argument '%s'\n", cmd, argv[optind]);
        return VM_EXIT_USAGE;
    }
    return 0;
}

/* ---- create / set ---- */

static void create_usage(FILE *out)
{
    fprintf(out,
            "Usage: vessel create NAME [OPTIONS]\n"
            "Create a VM in the store (it does not start it: vessel start NAME).\n"
            "Takes every `vessel run` option that describes the machine (--cpus, --memory,\n"
            "--kernel, --initrd, --cmdline, --firmware, --disk, --no-reboot), and:\n"
            "  --image debian     boot a copy of the cached Debian root disk (built by\n"
            "                     guest/build-rootfs.sh), kept in the VM's directory\n"
            "  --disk-size SIZE   a new sparse disk of SIZE for the VM (with --image: grow the\n"
            "                     root disk to SIZE)\n"
            "  --ssh-key FILE     public keys for root (kept in the VM's configuration, given\n"
            "                     to the guest at every boot); vessel ssh uses the private\n"
            "                     key beside FILE.pub\n"
            "  --store DIR        the store (default $VESSEL_STORE, /var/lib/vessel for root,\n"
            "                     else ~/.local/share/vessel)\n");
}

static void set_usage(FILE *out)
{
    fprintf(out, "Usage: vessel set NAME [OPTIONS]\n"
                 "Change a stopped VM: --cpus N, --memory SIZE, --kernel FILE, --initrd FILE,\n"
                 "--cmdline STR, --firmware FILE, --disk IMAGE[,...] (adds a disk),\n"
                 "--vsock cid=N,path=PATH (or none: removes it), --net SPEC (replaces the\n"
                 "network; none removes it), --mac MAC, --publish [ADDR:]HOSTPORT:GUESTPORT (adds\n"
                 "a forward; repeatable), --engine interp|jit, --jit-cache SIZE. The VM keeps its\n"
                 "MAC address unless --mac gives one.\n"
                 "  --store DIR   the store\n");
}

/* Copy a file keeping its holes (the Debian image is mostly empty). */
static int copy_sparse(const char *src, const char *dst, uint64_t grow_to, char *err, size_t errlen)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        snprintf(err, errlen, "%.400s: %s", src, strerror(errno));
        return -errno;
    }
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        int e = errno;
        close(in);
        snprintf(err, errlen, "%.400s: %s", dst, strerror(e));
        return -e;
    }
    struct stat sb;
    fstat(in, &sb);
    off_t pos = 0;
    int r = 0;
    while (pos < sb.st_size) {
        off_t data = lseek(in, pos, SEEK_DATA);
        if (data < 0) break; /* only a hole is left */
        off_t hole = lseek(in, data, SEEK_HOLE);
        if (hole < 0) hole = sb.st_size;
        off_t o_in = data, o_out = data;
        while (o_in < hole) {
            ssize_t n = copy_file_range(in, &o_in, out, &o_out, (size_t)(hole - o_in), 0);
            if (n <= 0) {
                r = n < 0 ? -errno : -EIO;
                break;
            }
        }
        if (r) break;
        pos = hole;
    }
    uint64_t size = (uint64_t)sb.st_size > grow_to ? (uint64_t)sb.st_size : grow_to;
    if (!r && ftruncate(out, (off_t)size) < 0) r = -errno;
    if (!r && fsync(out) < 0) r = -errno;
    close(in);
    close(out);
    if (r) {
        unlink(dst);
        snprintf(err, errlen, "copying %.200s to %.300s: %s", src, dst, strerror(-r));
    }
    return r;
}

/* Split manager options from run options; run options go to cli_run_parse. */
/* The VM's root disk on a shared base image: the cached image is linked (or copied once) into
 * the store's images/ under a name that says which build it was, and the VM gets a qcow2
 * overlay on it. So creating a VM costs milliseconds and kilobytes, the VMs share the base's
 * blocks, and rebuilding the cache later does not change the base under existing VMs. */
static int image_overlay(const struct store *st, const char *src, const char *dst, uint64_t size,
                         char *err, size_t errlen)
{
    struct stat sb;
    if (stat(src, &sb) < 0) {
        snprintf(err, errlen, "%.400s: %s", src, strerror(errno));
        return -errno;
    }
    char dir[4200], base[4400];
    snprintf(dir, sizeof(dir), "%s/images", st->root);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "%.400s: %s", dir, strerror(errno));
        return -errno;
    }
    snprintf(base, sizeof(base), "%s/debian-%lld-%lld.img", dir, (long long)sb.st_mtime,
             (long long)sb.st_size);
    if (access(base, R_OK) != 0) {
        char tmp[4500];
        snprintf(tmp, sizeof(tmp), "%s.tmp-%d", base, (int)getpid());
        int r = link(src, tmp) == 0 ? 0 : copy_sparse(src, tmp, 0, err, errlen);
        if (r == 0 && rename(tmp, base) < 0) r = -errno;
        if (r) {
            unlink(tmp);
            if (!err[0]) snprintf(err, errlen, "%.400s: %s", base, strerror(-r));
            return r;
        }
    }
    return qcow2_create(dst, size > (uint64_t)sb.st_size ? size : 0, 16, base, "raw", err, errlen);
}

/* --ssh-key X.pub: if the private key X is beside it, `vessel ssh` offers it (-i X). */
static void ssh_identities_from(struct vm_spec *spec, const struct run_args *ra)
{
    spec->nssh_identities = 0;
    for (unsigned i = 0; i < ra->nssh_key_files && i < VM_SSH_KEY_FILES; i++) {
        const char *f = ra->ssh_key_files[i];
        size_t n = strlen(f);
        char priv[VM_PATH_MAX];
        if (n <= 4 || n >= sizeof(priv) || strcmp(f + n - 4, ".pub")) continue;
        memcpy(priv, f, n - 4);
        priv[n - 4] = 0;
        char *abs = realpath(priv, NULL);
        if (abs && strlen(abs) < VM_PATH_MAX)
            strcpy(spec->ssh_identities[spec->nssh_identities++], abs);
        free(abs);
    }
}

int cli_create(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        create_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? VM_EXIT_USAGE : 0;
    }
    const char *name = argv[1];
    if (name[0] == '-') {
        fprintf(stderr, "vessel create: the VM name comes first (vessel create NAME [OPTIONS])\n");
        return VM_EXIT_USAGE;
    }
    int rc = check_name(name, "create");
    if (rc) return rc;
    const char *store_dir = NULL, *image = NULL, *disk_size = NULL;
    char **rargv = calloc((size_t)argc + 1, sizeof(char *));
    if (!rargv) return VM_EXIT_HOST_ERROR;
    int rargc = 0;
    rargv[rargc++] = "create";
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i];
        const char **dst = !strcmp(o, "--store")       ? &store_dir
                           : !strcmp(o, "--image")     ? &image
                           : !strcmp(o, "--disk-size") ? &disk_size
                                                       : NULL;
        if (dst) {
            if (i + 1 >= argc) {
                fprintf(stderr, "vessel create: option %s needs a value\n", o);
                free(rargv);
                return VM_EXIT_USAGE;
            }
            *dst = argv[++i];
            continue;
        }
        if (!strcmp(o, "--overcommit") || !strcmp(o, "--gdb") || !strcmp(o, "--paused") ||
            !strcmp(o, "--api-sock") || !strcmp(o, "--config-file") || !strcmp(o, "--log-file")) {
            fprintf(stderr, "vessel create: %s is a `vessel run` option, not part of a VM\n", o);
            free(rargv);
            return VM_EXIT_USAGE;
        }
        rargv[rargc++] = argv[i];
    }
    /* admission happens at start: describe the machine without checking the host here */
    struct host_limits lim = {.cpus = MACHINE_MAX_HARTS, .mem_available = ~0ull};
    static struct run_args ra;
    char err[600];
    int r = cli_run_parse(rargc, rargv, &lim, &ra, err, sizeof(err));
    free(rargv);
    if (r < 0) {
        fprintf(stderr, "vessel create: %s\n", err);
        return VM_EXIT_USAGE;
    }
    uint64_t dsize = 0;
    if (disk_size) {
        if (size_parse(disk_size, &dsize) < 0 || dsize == 0 || dsize % 512) {
            fprintf(stderr,
                    "vessel create: --disk-size %s: expected a size such as 8G (a multiple "
                    "of 512 bytes)\n",
                    disk_size);
            return VM_EXIT_USAGE;
        }
    }
    char img_src[4096] = "";
    if (image) {
        if (strcmp(image, "debian")) {
            fprintf(stderr, "vessel create: --image %s: the only image is 'debian'\n", image);
            return VM_EXIT_USAGE;
        }
        char cache[3800];
        if (paths_cache_dir(cache, sizeof(cache)) < 0) {
            fprintf(stderr, "vessel create: cannot locate the guest cache (set VESSEL_CACHE)\n");
            return VM_EXIT_USAGE;
        }
        snprintf(img_src, sizeof(img_src), "%s/guest/debian/debian.img", cache);
        if (access(img_src, R_OK) != 0) {
            fprintf(stderr,
                    "vessel create: the Debian root disk is not built (%s is missing): run "
                    "guest/build-rootfs.sh\n",
                    img_src);
            return VM_EXIT_USAGE;
        }
    }
    static struct vm_spec spec;
    if (vm_spec_from_options(&spec, &ra.vm, err, sizeof(err)) < 0) {
        fprintf(stderr, "vessel create: %s\n", err);
        return VM_EXIT_USAGE;
    }
    ssh_identities_from(&spec, &ra);
    struct store st;
    if ((rc = open_store(&st, store_dir, true, "create"))) return rc;
    int lk = store_lock(&st, err, sizeof(err));
    if (lk < 0) {
        fprintf(stderr, "vessel create: %s\n", err);
        return VM_EXIT_HOST_ERROR;
    }
    char dir[4096], disks[4096];
    store_vm_path(&st, name, NULL, dir, sizeof(dir));
    store_vm_path(&st, name, "disks", disks, sizeof(disks));
    if (mkdir(dir, 0700) < 0) {
        int e = errno;
        store_unlock(lk);
        if (e == EEXIST)
            fprintf(stderr, "vessel create: a VM named %s exists\n", name);
        else
            fprintf(stderr, "vessel create: cannot create %s: %s\n", dir, strerror(e));
        return e == EEXIST ? VM_EXIT_USAGE : VM_EXIT_HOST_ERROR;
    }
    r = 0;
    if (image || disk_size) {
        if (spec.ndrives == MACHINE_MAX_DISKS) {
            snprintf(err, sizeof(err), "at most %d disks", MACHINE_MAX_DISKS);
            r = -EINVAL;
        } else if (mkdir(disks, 0700) < 0) {
            snprintf(err, sizeof(err), "cannot create %.400s: %s", disks, strerror(errno));
            r = -errno;
        }
        if (!r) {
            /* the new disk is vda; the --disk ones follow */
            memmove(&spec.drives[1], &spec.drives[0], spec.ndrives * sizeof(spec.drives[0]));
            spec.ndrives++;
            struct vm_drive_spec *d = &spec.drives[0];
            memset(d, 0, sizeof(*d));
            snprintf(d->id, sizeof(d->id), "%s", image ? "rootfs" : "data");
            for (unsigned i = 1; i < spec.ndrives; i++)
                snprintf(spec.drives[i].id, sizeof(spec.drives[i].id), "disk%u", i);
            if (snprintf(d->path, sizeof(d->path), "%s/%s", disks,
                         image ? "root.qcow2" : "data.img") >= (int)sizeof(d->path)) {
                snprintf(err, sizeof(err), "the store path is too long");
                r = -ENAMETOOLONG;
            } else if (image) {
                d->root = true;
                /* the default kernel boots it (root=/dev/vda rw is added at boot) */
                if (!strcmp(spec.cmdline, "console=ttyS0")) spec.has_cmdline = true;
                r = image_overlay(&st, img_src, d->path, dsize, err, sizeof(err));
            } else {
                r = blk_create_raw(d->path, dsize, err, sizeof(err));
            }
        }
    }
    /* a MAC made here that another VM has (1 in 2^24 per VM) is made again; one the user
     * gave is refused by store_vm_save */
    bool user_mac = false;
    for (int i = 2; i < argc; i++)
        user_mac |= !strcmp(argv[i], "--mac") || !strncmp(argv[i], "--mac=", 6);
    for (char *o;
         !r && spec.net.present && !user_mac && (o = store_mac_owner(&st, name, spec.net.mac));)
        free(o), net_mac_generate(spec.net.mac);
    if (!r) r = store_vm_save(&st, name, &spec, err, sizeof(err));
    if (r < 0) {
        char e2[256];
        store_vm_remove(&st, name, e2, sizeof(e2));
        store_unlock(lk);
        fprintf(stderr, "vessel create: %s\n", err);
        return VM_EXIT_HOST_ERROR;
    }
    store_unlock(lk);
    printf("%s\n", name);
    return 0;
}

int cli_set(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        set_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? VM_EXIT_USAGE : 0;
    }
    const char *name = argv[1], *store_dir = NULL;
    int rc = check_name(name, "set");
    if (rc) return rc;
    static const struct option opts[] = {{"cpus", required_argument, NULL, 'c'},
                                         {"memory", required_argument, NULL, 'm'},
                                         {"kernel", required_argument, NULL, 'k'},
                                         {"initrd", required_argument, NULL, 'i'},
                                         {"cmdline", required_argument, NULL, 'l'},
                                         {"firmware", required_argument, NULL, 'f'},
                                         {"disk", required_argument, NULL, 'd'},
                                         {"store", required_argument, NULL, 's'},
                                         {"vsock", required_argument, NULL, 'v'},
                                         {"net", required_argument, NULL, 'n'},
                                         {"mac", required_argument, NULL, 'a'},
                                         {"publish", required_argument, NULL, 'p'},
                                         {"engine", required_argument, NULL, 'e'},
                                         {"jit-cache", required_argument, NULL, 'j'},
                                         {NULL, 0, NULL, 0}};
    const char *v[12] = {0};
    const char *disks[MACHINE_MAX_DISKS], *pubs[NET_MAX_HOSTFWD];
    unsigned ndisks = 0, npub = 0;
    optind = 2;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        const char *keys = "cmkilfsvnaej";
        if (c == 'p') {
            if (npub == NET_MAX_HOSTFWD) {
                fprintf(stderr, "vessel set: at most %d --publish\n", NET_MAX_HOSTFWD);
                return VM_EXIT_USAGE;
            }
            pubs[npub++] = optarg;
        } else if (c == 'd') {
            if (ndisks == MACHINE_MAX_DISKS) {
                fprintf(stderr, "vessel set: at most %d disks\n", MACHINE_MAX_DISKS);
                return VM_EXIT_USAGE;
            }
            disks[ndisks++] = optarg;
        } else if (c != ':' && c != '?' && strchr(keys, c)) {
            v[strchr(keys, c) - keys] = optarg;
        } else {
            fprintf(stderr, "vessel set: bad option %s (see vessel set --help)\n",
                    argv[optind - 1]);
            return VM_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "vessel set: unexpected argument '%s'\n", argv[optind]);
        return VM_EXIT_USAGE;
    }
    store_dir = v[6];
    struct store st;
    if ((rc = open_store(&st, store_dir, false, "set"))) return rc;
    char err[600];
    int lk = store_lock(&st, err, sizeof(err));
    if (lk < 0) {
        fprintf(stderr, "vessel set: %s\n", err);
        return VM_EXIT_HOST_ERROR;
    }
    static struct vm_spec spec;
    int r = store_vm_load(&st, name, &spec, err, sizeof(err));
    enum store_vm_state s = store_vm_state(&st, name, NULL);
    if (!r && (s == SVM_RUNNING || s == SVM_PAUSED || s == SVM_STARTING)) {
        snprintf(err, sizeof(err), "%s is %s: stop it first", name, store_state_name(s));
        r = -EBUSY;
    }
    /* build the argument list `run` understands, so the checks are the same as create's */
    char *rargv[96], cur[600];
    int rargc = 0;
    rargv[rargc++] = "set";
    static const char *const flag[] = {"--cpus",   "--memory",  "--kernel",
                                       "--initrd", "--cmdline", "--firmware"};
    for (int i = 0; i < 6; i++)
        if (v[i]) {
            rargv[rargc++] = (char *)flag[i];
            rargv[rargc++] = (char *)v[i];
        }
    if (v[10]) {
        rargv[rargc++] = "--engine";
        rargv[rargc++] = (char *)v[10];
    }
    if (v[11]) {
        rargv[rargc++] = "--jit-cache";
        rargv[rargc++] = (char *)v[11];
    }
    for (unsigned i = 0; i < ndisks; i++) {
        rargv[rargc++] = "--disk";
        rargv[rargc++] = (char *)disks[i];
    }
    bool vsock_none = v[7] && !strcmp(v[7], "none");
    if (v[7] && !vsock_none) {
        rargv[rargc++] = "--vsock";
        rargv[rargc++] = (char *)v[7];
    }
    /* the network: --net replaces it (none removes it); --mac and --publish change the one
     * the VM has (its --net spelled out again, so run's checks apply to the result) */
    bool net_change = v[8] || v[9] || npub;
    if (net_change) {
        const char *net_arg = v[8];
        if (!net_arg && spec.net.present) {
            if (spec.net.host_dev_name[0])
                snprintf(cur, sizeof(cur), "tap,ifname=%s", spec.net.host_dev_name);
            else
                snprintf(cur, sizeof(cur), "%s", spec.net.user[0] ? spec.net.user : "user");
            net_arg = cur;
        }
        if (net_arg) {
            rargv[rargc++] = "--net";
            rargv[rargc++] = (char *)net_arg;
        }
        if (v[9]) {
            rargv[rargc++] = "--mac";
            rargv[rargc++] = (char *)v[9];
        }
        for (unsigned i = 0; i < npub; i++) {
            rargv[rargc++] = "--publish";
            rargv[rargc++] = (char *)pubs[i];
        }
    }
    rargv[rargc] = NULL;
    static struct run_args ra;
    struct host_limits lim = {.cpus = MACHINE_MAX_HARTS, .mem_available = ~0ull};
    if (!r && cli_run_parse(rargc, rargv, &lim, &ra, err, sizeof(err)) < 0) r = -EINVAL;
    static struct vm_spec ns;
    if (!r && vm_spec_from_options(&ns, &ra.vm, err, sizeof(err)) < 0) r = -EINVAL;
    if (!r) {
        if (v[0]) spec.cpus = ns.cpus;
        if (v[1]) spec.mem_mib = ns.mem_mib;
        if (v[2]) memcpy(spec.kernel, ns.kernel, sizeof(spec.kernel));
        if (v[3]) memcpy(spec.initrd, ns.initrd, sizeof(spec.initrd));
        if (v[4]) {
            spec.has_cmdline = true;
            memcpy(spec.cmdline, ns.cmdline, sizeof(spec.cmdline));
        }
        if (v[5]) memcpy(spec.firmware, ns.firmware, sizeof(spec.firmware));
        if (v[7]) spec.vsock = ns.vsock; /* none: not present */
        if (v[10]) spec.jit = ns.jit;
        if (v[11]) spec.jit_cache_size = ns.jit_cache_size;
        if (net_change) {
            /* a VM keeps its MAC address unless --mac gives another */
            struct vm_net_spec old = spec.net;
            spec.net = ns.net;
            if (!v[9] && old.present && spec.net.present) memcpy(spec.net.mac, old.mac, 6);
        }
        for (unsigned i = 0; i < ns.ndrives && !r; i++) {
            if (spec.ndrives == MACHINE_MAX_DISKS) {
                snprintf(err, sizeof(err), "at most %d disks", MACHINE_MAX_DISKS);
                r = -EINVAL;
                break;
            }
            struct vm_drive_spec *d = &spec.drives[spec.ndrives];
            *d = ns.drives[i];
            snprintf(d->id, sizeof(d->id), "disk%u", spec.ndrives);
            spec.ndrives++;
        }
    }
    if (!r) r = store_vm_save(&st, name, &spec, err, sizeof(err));
    store_unlock(lk);
    if (r < 0) {
        fprintf(stderr, "vessel set: %s\n", err);
        return r == -EINVAL || r == -ENOENT ? VM_EXIT_USAGE : VM_EXIT_HOST_ERROR;
    }
    return 0;
}

/* ---- start ---- */

static void start_usage(FILE *out)
{
    fprintf(out, "Usage: vessel start NAME [--attach] [--store DIR]\n"
                 "Start a VM in the background (its own process; `vessel console NAME` attaches).\n"
                 "Refused, with what is short, when the running VMs would exceed the host's CPUs\n"
                 "or memory under the policy (vessel host).\n"
                 "  --attach   open the console at once (Ctrl-A d detaches)\n");
}

/* Files the VM needs must exist before a process is spawned for it. */
static int check_files(const struct vm_spec *s, char *err, size_t errlen)
{
    const char *what[3] = {"kernel", "initrd", "firmware"};
    const char *path[3] = {s->kernel, s->initrd, s->firmware};
    for (int i = 0; i < 3; i++)
        if (path[i][0] && access(path[i], R_OK) != 0) {
            snprintf(err, errlen, "%s %s: %s", what[i], path[i], strerror(errno));
            return -ENOENT;
        }
    for (unsigned i = 0; i < s->ndrives; i++)
        if (access(s->drives[i].path, s->drives[i].readonly ? R_OK : R_OK | W_OK) != 0) {
            snprintf(err, errlen, "drive %s: %s: %s", s->drives[i].id, s->drives[i].path,
                     strerror(errno));
            return -ENOENT;
        }
    return 0;
}

/* Spawn `vessel __vmm` detached; returns its pid, the read end of its ready pipe in *rfd. */
static pid_t spawn_vmm(const struct store *st, const char *name, const char *restore, int *rfd)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) return -1;
    char logp[4096];
    store_vm_path(st, name, "vessel.log", logp, sizeof(logp));
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        setsid();
        int null = open("/dev/null", O_RDWR);
        int log = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (null >= 0) dup2(null, 0);
        if (log >= 0) {
            /* vessel's own log for this VM: kept small (restarted when over 1 MiB) */
            struct stat sb;
            if (fstat(log, &sb) == 0 && sb.st_size > (1 << 20) && ftruncate(log, 0) < 0) {
            }
            dup2(log, 1);
            dup2(log, 2);
        }
        dup2(p[1], 3); /* dup2 clears CLOEXEC on the copy */
        for (int fd = 4; fd < 1024; fd++)
            close(fd);
        char *args[] = {"vessel",         "__vmm",  "--store",
                        (char *)st->root, "--name", (char *)name,
                        "--ready-fd",     "3",      restore ? "--restore" : NULL,
                        (char *)restore,  NULL};
        execv("/proc/self/exe", args);
        _exit(127);
    }
    close(p[1]);
    *rfd = p[0];
    return pid;
}

static int cli_console_attach(const struct store *st, const char *name);

static int start_vm(struct store *stp, const char *name, const char *restore, bool attach);

int cli_start(int argc, char **argv)
{
    struct simple_args a;
    int rc = parse_simple(argc, argv, "start", "a", &a, start_usage);
    if (rc) return rc < 0 ? 0 : rc;
    struct store st;
    if ((rc = open_store(&st, a.store, false, "start"))) return rc;
    return start_vm(&st, a.name, NULL, a.attach);
}

/* Start a stored VM (restore: a snapshot directory to resume from instead of booting). */
static int start_vm(struct store *stp, const char *name, const char *restore, bool attach)
{
    struct store st = *stp;
    /* a clone made from a snapshot resumes from it at its first start (vessel clone) */
    char from[4096], pending[4200] = "";
    if (!restore) {
        store_vm_path(&st, name, "restore-from", pending, sizeof(pending));
        FILE *f = fopen(pending, "re");
        if (f) {
            if (fgets(from, sizeof(from), f)) {
                from[strcspn(from, "\n")] = 0;
                restore = from;
            }
            fclose(f);
        } else {
            pending[0] = 0;
        }
    }
    struct {
        const char *name;
        bool attach;
    } a = {name, attach};
    char err[700];
    static struct vm_spec spec;
    if (store_vm_load(&st, a.name, &spec, err, sizeof(err)) < 0) {
        fprintf(stderr, "vessel start: %s\n", err);
        return VM_EXIT_USAGE;
    }
    if (check_files(&spec, err, sizeof(err)) < 0) {
        fprintf(stderr, "vessel start: %s: %s\n", a.name, err);
        return VM_EXIT_USAGE;
    }
    int lk = store_lock(&st, err, sizeof(err));
    if (lk < 0) {
        fprintf(stderr, "vessel start: %s\n", err);
        return VM_EXIT_HOST_ERROR;
    }
    enum store_vm_state s = store_vm_state(&st, a.name, NULL);
    if (s == SVM_RUNNING || s == SVM_PAUSED || s == SVM_STARTING) {
        store_unlock(lk);
        fprintf(stderr, "vessel start: %s is already %s\n", a.name, store_state_name(s));
        return VM_EXIT_HOST_ERROR;
    }
    if (admit_check(&st, a.name, spec.cpus, spec.mem_mib, err, sizeof(err)) < 0) {
        store_unlock(lk);
        fprintf(stderr, "vessel start: %s\n", err);
        return VM_EXIT_HOST_ERROR;
    }
    int rfd;
    pid_t pid = spawn_vmm(&st, a.name, restore, &rfd);
    if (pid < 0) {
        store_unlock(lk);
        fprintf(stderr, "vessel start: cannot spawn the VM process: %s\n", strerror(errno));
        return VM_EXIT_HOST_ERROR;
    }
    /* the store stays locked until the VM holds its own lock and has recorded its reservation */
    char msg[700] = "";
    size_t len = 0;
    uint64_t deadline = mono_ms() + START_TIMEOUT_MS;
    while (len < sizeof(msg) - 1) {
        int64_t left = (int64_t)(deadline - mono_ms());
        if (left <= 0) break;
        struct pollfd pfd = {.fd = rfd, .events = POLLIN};
        if (poll(&pfd, 1, (int)left) <= 0) continue;
        ssize_t n = read(rfd, msg + len, sizeof(msg) - 1 - len);
        if (n <= 0) break;
        len += (size_t)n;
        if (memchr(msg, '\n', len)) break; /* the VM process reports one line */
    }
    close(rfd);
    store_unlock(lk);
    msg[len] = 0;
    waitpid(pid, NULL, WNOHANG);
    if (strncmp(msg, "OK", 2)) {
        char *nl = strchr(msg, '\n');
        if (nl) *nl = 0;
        if (!len) {
            kill(pid, SIGKILL);
            fprintf(stderr,
                    "vessel start: %s: the VM process did not report (see %s/vms/%s/"
                    "vessel.log)\n",
                    a.name, st.root, a.name);
        } else {
            fprintf(stderr, "vessel start: %s: %s\n", a.name, msg[0] == 'E' ? msg + 4 : msg);
        }
        return VM_EXIT_HOST_ERROR;
    }
    if (pending[0]) unlink(pending); /* resumed once: later starts boot */
    if (a.attach) return cli_console_attach(&st, a.name);
    char *nl = strchr(msg, '\n');
    if (nl) *nl = 0;
    if (msg[2] == ' ') /* what the VM process adds, e.g. how long a restore took */
        printf("%s: %s\n", a.name, msg + 3);
    else
        printf("%s\n", a.name);
    return 0;
}

/* ---- API helpers ---- */

/* One request to a running VM; prints the failure. Returns the HTTP status or -1. */
static long vm_api(const struct store *st, const char *name, const char *cmd, const char *method,
                   const char *path, const char *body, char **resp)
{
    char sock[256], err[256];
    int dirfd;
    if (store_sock_path(st, name, "api.sock", sock, sizeof(sock), &dirfd) < 0) {
        fprintf(stderr, "vessel %s: %s: socket path too long\n", cmd, name);
        return -1;
    }
    long status = 0;
    int r = api_call(sock, method, path, body, API_TIMEOUT_MS, &status, resp, err, sizeof(err));
    if (dirfd >= 0) close(dirfd);
    if (r < 0) {
        fprintf(stderr, "vessel %s: %s does not answer on its API: %s\n", cmd, name, err);
        return -1;
    }
    return status;
}

static void print_fault(const char *cmd, const char *name, const char *resp)
{
    json_object *o = resp ? json_tokener_parse(resp) : NULL, *m;
    if (o && json_object_object_get_ex(o, "fault_message", &m))
        fprintf(stderr, "vessel %s: %s: %s\n", cmd, name, json_object_get_string(m));
    else
        fprintf(stderr, "vessel %s: %s: the request failed\n", cmd, name);
    json_object_put(o);
}

static bool is_live(enum store_vm_state s)
{
    return s == SVM_RUNNING || s == SVM_PAUSED || s == SVM_STARTING;
}

/* Until name's VM is no longer live (false after ms), and then until its monitor has let go
 * of the VM's lock (at most 5 s more): its monitor writes run.json's "stopped" before it
 * cleans up, and a caller that then cleared the runtime files would leave a VM whose lock is
 * held without a run.json, which `vessel list` shows as starting. */
static bool wait_stopped(const struct store *st, const char *name, uint64_t ms)
{
    uint64_t end = mono_ms() + ms;
    for (;;) {
        if (!is_live(store_vm_state(st, name, NULL))) break;
        if (mono_ms() >= end) return false;
        sleep_ms(20);
    }
    for (uint64_t grace = mono_ms() + 5000; store_vm_held(st, name) && mono_ms() < grace;)
        sleep_ms(20);
    return true;
}

/* ---- stop / pause / resume ---- */

static void stop_usage(FILE *out)
{
    fprintf(out,
            "Usage: vessel stop NAME [--force] [--timeout SECONDS] [--store DIR]\n"
            "Ask the guest to power off (the power key, as Firecracker's SendCtrlAltDel), wait\n"
            "up to --timeout seconds (default 30), then stop it at once. --force stops at once.\n");
}

int cli_stop(int argc, char **argv)
{
    struct simple_args a;
    int rc = parse_simple(argc, argv, "stop", "Ft", &a, stop_usage);
    if (rc) return rc < 0 ? 0 : rc;
    struct store st;
    if ((rc = open_store(&st, a.store, false, "stop"))) return rc;
    if (!store_vm_exists(&st, a.name)) {
        fprintf(stderr, "vessel stop: no VM named %s\n", a.name);
        return VM_EXIT_USAGE;
    }
    struct store_run run;
    enum store_vm_state s = store_vm_state(&st, a.name, &run);
    if (!is_live(s)) {
        if (s == SVM_CRASHED) store_vm_clear_runtime(&st, a.name, false);
        fprintf(stderr, "vessel stop: %s is not running\n", a.name);
        return 0;
    }
    bool done = false;
    if (!a.force && a.timeout > 0) {
        char *resp = NULL;
        if (s == SVM_PAUSED) {
            long r = vm_api(&st, a.name, "stop", "PATCH", "/vm", "{\"state\":\"Resumed\"}", NULL);
            (void)r;
        }
        long r = vm_api(&st, a.name, "stop", "PUT", "/actions",
                        "{\"action_type\":\"SendCtrlAltDel\"}", &resp);
        if (r == 204)
            done = wait_stopped(&st, a.name, (uint64_t)a.timeout * 1000);
        else if (r > 0)
            print_fault("stop", a.name, resp);
        free(resp);
        if (!done && r == 204)
            fprintf(stderr, "vessel stop: %s did not power off within %ld s: stopping it\n", a.name,
                    a.timeout);
    }
    if (!done) {
        long r = vm_api(&st, a.name, "stop", "PUT", "/vessel/quit", NULL, NULL);
        done = r == 204 && wait_stopped(&st, a.name, 5000);
    }
    if (!done && run.pid > 0 && is_live(store_vm_state(&st, a.name, &run))) {
        kill(run.pid, SIGKILL);
        done = wait_stopped(&st, a.name, 5000);
    }
    if (!done) {
        fprintf(stderr, "vessel stop: %s: the VM process %d does not stop\n", a.name, (int)run.pid);
        return VM_EXIT_HOST_ERROR;
    }
    store_vm_clear_runtime(&st, a.name, false);
    return 0;
}

static void pause_usage(FILE *out)
{
    fprintf(out, "Usage: vessel pause NAME [--store DIR]\n"
                 "Stop the VM's CPUs (memory and devices stay; vessel resume continues it).\n");
}

static void resume_usage(FILE *out)
{
    fprintf(out, "Usage: vessel resume NAME [--store DIR]\n"
                 "Continue a paused VM.\n");
}

static int pause_resume(int argc, char **argv, bool pause)
{
    const char *cmd = pause ? "pause" : "resume";
    struct simple_args a;
    int rc = parse_simple(argc, argv, cmd, "", &a, pause ? pause_usage : resume_usage);
    if (rc) return rc < 0 ? 0 : rc;
    struct store st;
    if ((rc = open_store(&st, a.store, false, cmd))) return rc;
    enum store_vm_state s = store_vm_state(&st, a.name, NULL);
    if (!is_live(s)) {
        fprintf(stderr, "vessel %s: %s is %s\n", cmd, a.name,
                store_vm_exists(&st, a.name) ? store_state_name(s) : "not a VM");
        return VM_EXIT_HOST_ERROR;
    }
    char *resp = NULL;
    long r = vm_api(&st, a.name, cmd, "PATCH", "/vm",
                    pause ? "{\"state\":\"Paused\"}" : "{\"state\":\"Resumed\"}", &resp);
    if (r != 204) {
        if (r > 0) print_fault(cmd, a.name, resp);
        free(resp);
        return VM_EXIT_HOST_ERROR;
    }
    free(resp);
    return 0;
}

int cli_pause(int argc, char **argv)
{
    return pause_resume(argc, argv, true);
}
int cli_resume(int argc, char **argv)
{
    return pause_resume(argc, argv, false);
}

/* ---- list / inspect ---- */

static void list_usage(FILE *out)
{
    fprintf(out, "Usage: vessel list [--json] [--store DIR]\n"
                 "The VMs of the store: NAME STATE CPUS MEMORY DISKS UPTIME.\n");
}

static void fmt_uptime(uint64_t ms, char *buf, size_t len)
{
    uint64_t s = ms / 1000;
    if (s < 60)
        snprintf(buf, len, "%llus", (unsigned long long)s);
    else if (s < 3600)
        snprintf(buf, len, "%llum%02llus", (unsigned long long)(s / 60),
                 (unsigned long long)(s % 60));
    else
        snprintf(buf, len, "%lluh%02llum", (unsigned long long)(s / 3600),
                 (unsigned long long)(s / 60 % 60));
}

static uint64_t now_real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int cli_list(int argc, char **argv)
{
    struct simple_args a;
    int rc = parse_simple(argc, argv, "list", "j", &a, list_usage);
    if (rc) return rc < 0 ? 0 : rc;
    struct store st;
    char err[512];
    if (store_open(&st, a.store, false, err, sizeof(err)) < 0) {
        if (a.json)
            printf("[]\n");
        else
            printf("NAME STATE CPUS MEMORY DISKS UPTIME\n");
        return 0; /* no store yet: no VMs */
    }
    char **names;
    int n = store_vm_list(&st, &names);
    json_object *arr = json_object_new_array();
    if (!a.json)
        printf("%-20s %-9s %4s %7s %5s %s\n", "NAME", "STATE", "CPUS", "MEMORY", "DISKS", "UPTIME");
    static struct vm_spec spec;
    for (int i = 0; i < n; i++) {
        struct store_run run;
        enum store_vm_state s = store_vm_state(&st, names[i], &run);
        bool ok = store_vm_load(&st, names[i], &spec, err, sizeof(err)) == 0;
        const char *state = ok ? store_state_name(s) : "broken";
        uint64_t up = is_live(s) && run.started_ms ? now_real_ms() - run.started_ms : 0;
        if (a.json) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "name", json_object_new_string(names[i]));
            json_object_object_add(o, "state", json_object_new_string(state));
            json_object_object_add(o, "cpus", json_object_new_int(ok ? (int)spec.cpus : 0));
            json_object_object_add(o, "memory_mib",
                                   json_object_new_int64(ok ? (int64_t)spec.mem_mib : 0));
            json_object_object_add(o, "disks", json_object_new_int(ok ? (int)spec.ndrives : 0));
            json_object_object_add(o, "pid", is_live(s) ? json_object_new_int(run.pid) : NULL);
            json_object_object_add(o, "uptime_s", json_object_new_int64((int64_t)(up / 1000)));
            if (!ok) json_object_object_add(o, "error", json_object_new_string(err));
            json_object_array_add(arr, o);
        } else if (ok) {
            char mem[32], upt[32] = "-";
            size_format(spec.mem_mib << 20, mem, sizeof(mem));
            if (is_live(s)) fmt_uptime(up, upt, sizeof(upt));
            printf("%-20s %-9s %4u %7s %5u %s\n", names[i], state, spec.cpus, mem, spec.ndrives,
                   upt);
        } else {
            printf("%-20s %-9s %4s %7s %5s -\n", names[i], state, "-", "-", "-");
            fprintf(stderr, "vessel list: %s\n", err);
        }
    }
    if (a.json)
        printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(arr);
    if (n > 0) store_names_free(names, n);
    return 0;
}

static void inspect_usage(FILE *out)
{
    fprintf(out,
            "Usage: vessel inspect NAME [--store DIR]\n"
            "The VM as JSON: name, state, pid, configuration, resources, runtime statistics.\n");
}

int cli_inspect(int argc, char **argv)
{
    struct simple_args a;
    int rc = parse_simple(argc, argv, "inspect", "", &a, inspect_usage);
    if (rc) return rc < 0 ? 0 : rc;
    struct store st;
    if ((rc = open_store(&st, a.store, false, "inspect"))) return rc;
    char err[600];
    static struct vm_spec spec;
    if (store_vm_load(&st, a.name, &spec, err, sizeof(err)) < 0) {
        fprintf(stderr, "vessel inspect: %s\n", err);
        return VM_EXIT_USAGE;
    }
    struct store_run run;
    enum store_vm_state s = store_vm_state(&st, a.name, &run);
    json_object *o = json_object_new_object();
    char dir[4096];
    store_vm_path(&st, a.name, NULL, dir, sizeof(dir));
    json_object_object_add(o, "name", json_object_new_string(a.name));
    json_object_object_add(o, "state", json_object_new_string(store_state_name(s)));
    json_object_object_add(o, "pid", is_live(s) ? json_object_new_int(run.pid) : NULL);
    json_object_object_add(o, "directory", json_object_new_string(dir));
    json_object_object_add(o, "config", vm_spec_to_json(&spec, true));
    json_object *res = json_object_new_object();
    json_object_object_add(res, "cpus", json_object_new_int((int)spec.cpus));
    json_object_object_add(res, "memory_mib", json_object_new_int64((int64_t)spec.mem_mib));
    json_object_object_add(o, "resources", res);
    if (is_live(s)) {
        char *resp = NULL;
        if (vm_api(&st, a.name, "inspect", "GET", "/vessel/info", NULL, &resp) == 200) {
            json_object *info = json_tokener_parse(resp);
            if (info) json_object_object_add(o, "runtime", info);
        }
        free(resp);
        json_object_object_add(
            o, "enforcement",
            json_object_new_string(run.cgroup_note[0] ? run.cgroup_note : "none recorded"));
    }
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return 0;
}

/* ---- rm ---- */

static void rm_usage(FILE *out)
{
    fprintf(out,
            "Usage: vessel rm NAME [--force] [--store DIR]\n"
            "Delete a VM: its directory, configuration, logs and the disks vessel created for\n"
            "it (disks given by path with --disk stay). A running VM needs --force (stopped\n"
            "at once first).\n");
}

static char *clone_of(const struct store *st, const char *dir);

/* A VM whose disks are overlays on one of name's snapshots (*snap: which), or NULL. */
static char *clone_of_any_snapshot(const struct store *st, const char *name, char *snap,
                                   size_t snaplen)
{
    char base[4096];
    store_vm_path(st, name, "snapshots", base, sizeof(base));
    DIR *d = opendir(base);
    struct dirent *e;
    char *found = NULL;
    while (d && !found && (e = readdir(d))) {
        if (!store_name_valid(e->d_name)) continue;
        char sdir[4400];
        snprintf(sdir, sizeof(sdir), "%s/%s", base, e->d_name);
        if ((found = clone_of(st, sdir))) snprintf(snap, snaplen, "%s", e->d_name);
    }
    if (d) closedir(d);
    return found;
}

/* The files in the store a qcow2 image names as its backing file, into *set (realpaths). */
static void add_backing(const char *path, char ***set, size_t *n, size_t *cap)
{
    uint8_t buf[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return;
    struct stat sb;
    ssize_t got = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) ? pread(fd, buf, sizeof(buf), 0) : -1;
    close(fd);
    struct qcow2_header h;
    char err[256], real[PATH_MAX];
    if (got < 72 || memcmp(buf, "QFI\xfb", 4) != 0 ||
        qcow2_parse_header(buf, (size_t)got, (uint64_t)sb.st_size, &h, err, sizeof(err)) < 0 ||
        !h.backing[0])
        return;
    /* a relative backing name is relative to the image's directory */
    char full[4400];
    if (h.backing[0] == '/') {
        snprintf(full, sizeof(full), "%s", h.backing);
    } else {
        char dir[4400];
        snprintf(dir, sizeof(dir), "%s", path);
        snprintf(full, sizeof(full), "%.3000s/%.1000s", dirname(dir), h.backing);
    }
    if (!realpath(full, real)) return;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        char **p = realloc(*set, nc * sizeof(*p));
        if (!p) return;
        *set = p;
        *cap = nc;
    }
    if (((*set)[*n] = strdup(real))) (*n)++;
}

static void scan_backings(const char *dir, int depth, char ***set, size_t *n, size_t *cap)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        char p[4400];
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) < 0) continue;
        if (S_ISDIR(sb.st_mode) && depth > 0)
            scan_backings(p, depth - 1, set, n, cap);
        else if (S_ISREG(sb.st_mode))
            add_backing(p, set, n, cap);
    }
    closedir(d);
}

/* Base images in the store's images/ (vessel create --image) that no disk, snapshot copy or
 * clone in the store uses any more are removed. Caller holds the store lock. */
static void images_gc(const struct store *st)
{
    char idir[4200], vdir[4200];
    snprintf(idir, sizeof(idir), "%s/images", st->root);
    snprintf(vdir, sizeof(vdir), "%s/vms", st->root);
    DIR *d = opendir(idir);
    if (!d) return;
    char **set = NULL;
    size_t n = 0, cap = 0;
    /* vms/NAME/{disks,snapshots/SNAP}/FILE, and vms/.import-PID/... */
    scan_backings(vdir, 3, &set, &n, &cap);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, "debian-", 7) || l < 5 || strcmp(e->d_name + l - 4, ".img"))
            continue; /* only the bases create --image makes (not their .tmp files) */
        char p[4400], real[PATH_MAX];
        snprintf(p, sizeof(p), "%.4100s/%.255s", idir, e->d_name);
        if (!realpath(p, real)) continue;
        bool used = false;
        for (size_t i = 0; i < n && !used; i++)
            used = !strcmp(set[i], real);
        if (!used && unlink(p) == 0) printf("removed base image %s (no VM uses it)\n", e->d_name);
    }
    closedir(d);
    for (size_t i = 0; i < n; i++)
        free(set[i]);
    free(set);
}

int cli_rm(int argc, char **argv)
{
    struct simple_args a;
    int rc = parse_simple(argc, argv, "rm", "F", &a, rm_usage);
    if (rc) return rc < 0 ? 0 : rc;
    struct store st;
    if ((rc = open_store(&st, a.store, false, "rm"))) return rc;
    char dir[4096];
    store_vm_path(&st, a.name, NULL, dir, sizeof(dir));
    if (access(dir, F_OK) != 0) {
        fprintf(stderr, "vessel rm: no VM named %s\n", a.name);
        return VM_EXIT_USAGE;
    }
    struct store_run run;
    enum store_vm_state s = store_vm_state(&st, a.name, &run);
    if (is_live(s)) {
        if (!a.force) {
            fprintf(stderr, "vessel rm: %s is %s (stop it, or use --force)\n", a.name,
                    store_state_name(s));
            return VM_EXIT_HOST_ERROR;
        }
        char *args[] = {"stop", (char *)a.name, "--force", "--store", st.root, NULL};
        if (cli_stop(5, args) != 0) return VM_EXIT_HOST_ERROR;
    }
    char err[600];
    int lk = store_lock(&st, err, sizeof(err));
    if (lk < 0) {
        fprintf(stderr, "vessel rm: %s\n", err);
        return VM_EXIT_HOST_ERROR;
    }
    /* a start may have won the race for the lock: never remove a live VM (the stopped one's
     * monitor may still be cleaning up: that is no VM process) */
    if (store_vm_process_alive(&st, a.name)) {
        store_unlock(lk);
        fprintf(stderr, "vessel rm: %s was started again meanwhile\n", a.name);
        return VM_EXIT_HOST_ERROR;
    }
    /* clones of its snapshots read their disks' unchanged data from them */
    char snap[256];
    char *clone = clone_of_any_snapshot(&st, a.name, snap, sizeof(snap));
    if (clone) {
        store_unlock(lk);
        fprintf(stderr, "vessel rm: %s is a clone of %s's snapshot %s: remove %s first\n", clone,
                a.name, snap, clone);
        free(clone);
        return VM_EXIT_USAGE;
    }
    int r = store_vm_remove(&st, a.name, err, sizeof(err));
    if (r == 0) images_gc(&st);
    store_unlock(lk);
    if (r < 0) {
        fprintf(stderr, "vessel rm: %s\n", err);
        return VM_EXIT_HOST_ERROR;
    }
    return 0;
}

/* ---- logs / console ---- */

static void logs_usage(FILE *out)
{
    fprintf(out,
            "Usage: vessel logs NAME [-f] [--store DIR]\n"
            "The VM's console output (the last %u MiB or so). -f keeps following it.\n",
            (VMPROC_CONSOLE_LOG_MAX >> 20) * 2);
}

static off_t cat_file(const char *path, off_t from)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    if (from > 0 && lseek(fd, from, SEEK_SET) < 0) from = 0;
    char buf[65536];
    off_t pos = from;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0) break;
        if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n) break;
        pos += n;
    }
    fflush(stdout);
    close(fd);
    return pos;
}

int cli_logs(int argc, char **argv)
{
    struct simple_args a;
    int rc = parse_simple(argc, argv, "logs", "f", &a, logs_usage);
    if (rc) return rc < 0 ? 0 : rc;
    struct store st;
    if ((rc = open_store(&st, a.store, false, "logs"))) return rc;
    if (!store_vm_exists(&st, a.name)) {
        fprintf(stderr, "vessel logs: no VM named %s\n", a.name);
        return VM_EXIT_USAGE;
    }
    char log[4096], old[4200];
    store_vm_path(&st, a.name, "console.log", log, sizeof(log));
    snprintf(old, sizeof(old), "%s.1", log);
    cat_file(old, 0);
    off_t pos = cat_file(log, 0);
    if (pos < 0) pos = 0;
    struct stat sb;
    ino_t ino = stat(log, &sb) == 0 ? sb.st_ino : 0;
    while (a.follow) {
        sleep_ms(200);
        if (stat(log, &sb) < 0) continue;
        if (sb.st_ino != ino || sb.st_size < pos) { /* rotated or restarted */
            ino = sb.st_ino;
            pos = 0;
        }
        if (sb.st_size > pos) pos = cat_file(log, pos);
    }
    return 0;
}

static void console_usage(FILE *out)
{
    fprintf(out, "Usage: vessel console NAME [--store DIR]\n"
                 "Attach to a running VM's console. Ctrl-A d detaches (the VM runs on);\n"
                 "Ctrl-A Ctrl-A sends Ctrl-A. With stdin not a terminal (a script), the bytes\n"
                 "are sent as they are and the command ends 1 s after stdin ends and the\n"
                 "output goes quiet.\n");
}

static struct termios saved_tio;
static bool tio_saved;
static void restore_tty(void)
{
    if (tio_saved) tcsetattr(0, TCSANOW, &saved_tio);
}

static int cli_console_attach(const struct store *st, const char *name)
{
    char sock[256];
    int dirfd;
    if (store_sock_path(st, name, "console.sock", sock, sizeof(sock), &dirfd) < 0) {
        fprintf(stderr, "vessel console: %s: socket path too long\n", name);
        return VM_EXIT_HOST_ERROR;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, sock, strnlen(sock, sizeof(sa.sun_path) - 1));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        fprintf(stderr, "vessel console: %s: cannot connect to its console: %s\n", name,
                strerror(errno));
        if (dirfd >= 0) close(dirfd);
        return VM_EXIT_HOST_ERROR;
    }
    if (dirfd >= 0) close(dirfd);
    bool tty = isatty(0);
    if (tty && tcgetattr(0, &saved_tio) == 0) {
        tio_saved = true;
        atexit(restore_tty);
        struct termios raw = saved_tio;
        cfmakeraw(&raw);
        tcsetattr(0, TCSANOW, &raw);
        fprintf(stderr, "vessel: attached to %s (Ctrl-A d detaches)\r\n", name);
    }
    bool armed = false, in_open = true;
    int status = 0;
    for (;;) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
        /* once a piped stdin has ended, leave when the output has been quiet for a second */
        int pr = poll(p, in_open ? 2 : 1, in_open ? -1 : CONSOLE_QUIET_MS);
        if (pr < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (pr == 0) break;
        if (p[0].revents) {
            char buf[4096];
            ssize_t n = read(fd, buf, sizeof(buf));
            if (n <= 0) {
                if (tty)
                    fprintf(stderr, "\r\nvessel: %s's console closed (the VM stopped)\r\n", name);
                break;
            }
            if (write(1, buf, (size_t)n) < 0) break;
        }
        if (in_open && p[1].revents) {
            unsigned char in[4096], out[8192];
            ssize_t n = read(0, in, sizeof(in));
            if (n <= 0) {
                in_open = false; /* EOF on a pipe: keep printing the output */
                shutdown(fd, SHUT_WR);
                continue;
            }
            size_t k = 0;
            bool detach = false;
            for (ssize_t i = 0; i < n; i++) {
                if (!tty) {
                    out[k++] = in[i];
                } else if (armed) {
                    armed = false;
                    if (in[i] == 'd') {
                        detach = true;
                        break;
                    }
                    if (in[i] != 1) out[k++] = 1;
                    out[k++] = in[i];
                } else if (in[i] == 1) {
                    armed = true;
                } else {
                    out[k++] = in[i];
                }
            }
            if (k && send(fd, out, k, MSG_NOSIGNAL) < 0) break;
            if (detach) {
                fprintf(stderr, "\r\nvessel: detached from %s (it keeps running)\r\n", name);
                break;
            }
        }
    }
    close(fd);
    restore_tty();
    return status;
}

int cli_console(int argc, char **argv)
{
    struct simple_args a;
    int rc = parse_simple(argc, argv, "console", "", &a, console_usage);
    if (rc) return rc < 0 ? 0 : rc;
    struct store st;
    if ((rc = open_store(&st, a.store, false, "console"))) return rc;
    enum store_vm_state s = store_vm_state(&st, a.name, NULL);
    if (!is_live(s)) {
        fprintf(stderr, "vessel console: %s is %s\n", a.name,
                store_vm_exists(&st, a.name) ? store_state_name(s) : "not a VM");
        return VM_EXIT_HOST_ERROR;
    }
    return cli_console_attach(&st, a.name);
}

/* ---- the VM process itself (not listed in --help) ---- */

int cli_vmm(int argc, char **argv)
{
    static const struct option opts[] = {{"store", required_argument, NULL, 's'},
                                         {"name", required_argument, NULL, 'n'},
                                         {"ready-fd", required_argument, NULL, 'r'},
                                         {"restore", required_argument, NULL, 'R'},
                                         {NULL, 0, NULL, 0}};
    struct vmproc_opts o = {.ready_fd = -1};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 's')
            o.store_dir = optarg;
        else if (c == 'n')
            o.name = optarg;
        else if (c == 'r')
            o.ready_fd = atoi(optarg);
        else if (c == 'R')
            o.restore_dir = optarg;
        else
            return VM_EXIT_USAGE;
    }
    if (!o.name || !store_name_valid(o.name)) return VM_EXIT_USAGE;
    return vmproc_run(&o);
}

/* ---- vessel snapshot (docs/snapshots.md) ---- */

static void snapshot_usage(FILE *out)
{
    fprintf(out,
            "Usage: vessel snapshot create NAME SNAP   a running VM: memory, CPUs, devices, disks\n"
            "                                          (a stopped VM: its disks)\n"
            "       vessel snapshot list NAME [--json]\n"
            "       vessel snapshot restore NAME SNAP  the VM then runs from that instant\n"
            "       vessel snapshot rm NAME SNAP\n"
            "  --store DIR   the store\n"
            "Snapshots live in the VM's directory (snapshots/SNAP/). A running VM is paused\n"
            "while its snapshot is written, then runs on. Restoring a running VM stops it\n"
            "first. Writable disks are copied (sparse) into the snapshot and copied back on\n"
            "restore.\n");
}

/* Remove a snapshot directory (its files, one level). */
static void rm_snapdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlinkat(dirfd(d), e->d_name, 0);
        closedir(d);
    }
    rmdir(dir);
}

/* Copy src over dst atomically (a temporary file next to dst, renamed). */
static int copy_over(const char *src, const char *dst, char *err, size_t errlen)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.restore-tmp", dst);
    unlink(tmp);
    int r = copy_sparse(src, tmp, 0, err, errlen);
    if (r == 0 && rename(tmp, dst) < 0) {
        r = -errno;
        snprintf(err, errlen, "%.400s: %s", dst, strerror(errno));
        unlink(tmp);
    }
    return r;
}

/* The internal snapshot (qcow2) that holds a VM snapshot's state of a disk. */
static void disk_snap_name(const char *snap, char *out, size_t len)
{
    snprintf(out, len, "vessel-%s", snap);
}

/* An internal snapshot of a stopped VM's disk file: create, apply or delete. 1 done, 0 the
 * file is not qcow2 (a raw disk: the caller copies it), -errno with a message. */
static int offline_disk_snap(const char *path, char op, const char *iname, char *err, size_t errlen)
{
    struct qcow2 *q;
    int r = qcow2_open(&q, path, 0, false, err, errlen);
    if (r == -EINVAL && strstr(err, "not a qcow2 image")) return 0;
    if (r < 0) return r;
    r = op == 'c'   ? qcow2_snapshot_create(q, iname, err, errlen)
        : op == 'a' ? qcow2_snapshot_apply(q, iname, err, errlen)
                    : qcow2_snapshot_delete(q, iname, err, errlen);
    qcow2_close(q);
    return r < 0 ? r : 1;
}

/* PUT /vessel/disk-snapshot on a paused live VM: which drive ids got (or had) the internal
 * snapshot, in has[] by spec index. 0 or -1 (message printed). */
static int live_disk_snap(const struct store *st, const char *name, const struct vm_spec *spec,
                          bool create, const char *iname, bool has[MACHINE_MAX_DISKS])
{
    for (unsigned i = 0; i < MACHINE_MAX_DISKS; i++)
        has[i] = false;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "action", json_object_new_string(create ? "create" : "delete"));
    json_object_object_add(o, "name", json_object_new_string(iname));
    char *resp = NULL;
    long r = vm_api(st, name, "snapshot", "PUT", "/vessel/disk-snapshot",
                    json_object_to_json_string(o), &resp);
    json_object_put(o);
    if (r != 200) {
        if (r > 0) print_fault("snapshot", name, resp);
        free(resp);
        return -1;
    }
    json_object *res = json_tokener_parse(resp ? resp : ""), *drives;
    free(resp);
    if (res && json_object_object_get_ex(res, "drives", &drives) &&
        json_object_is_type(drives, json_type_array))
        for (size_t k = 0; k < json_object_array_length(drives); k++) {
            json_object *d = json_object_array_get_idx(drives, k), *id, *sn;
            if (!json_object_object_get_ex(d, "drive_id", &id) ||
                !json_object_object_get_ex(d, "snapshot", &sn) || !json_object_get_boolean(sn))
                continue;
            for (unsigned i = 0; i < spec->ndrives; i++)
                if (!strcmp(spec->drives[i].id, json_object_get_string(id))) has[i] = true;
        }
    json_object_put(res);
    return 0;
}

int snapshot_materialize(const char *sdir, char *err, size_t errlen)
{
    char p[4400], out[4400], tmp[4500];
    snprintf(p, sizeof(p), "%s/info.json", sdir);
    json_object *info = json_object_from_file(p), *disks;
    if (!info) return 0; /* no such snapshot: the caller says so */
    if (!json_object_object_get_ex(info, "disks", &disks) ||
        !json_object_is_type(disks, json_type_array)) {
        json_object_put(info);
        snprintf(err, errlen, "%s: no disk list", p);
        return -EINVAL;
    }
    bool changed = false;
    int r = 0;
    for (unsigned i = 0; !r && i < json_object_array_length(disks) && i < MACHINE_MAX_DISKS; i++) {
        json_object *j = json_object_array_get_idx(disks, i), *in, *c, *path;
        if (!json_object_object_get_ex(j, "internal", &in) ||
            json_object_object_get_ex(j, "copy", &c))
            continue;
        if (!json_object_object_get_ex(j, "path", &path)) {
            snprintf(err, errlen, "%s: disk %u has no path", p, i);
            r = -EINVAL;
            break;
        }
        snprintf(out, sizeof(out), "%s/disk-%u.img", sdir, i);
        snprintf(tmp, sizeof(tmp), "%s.tmp", out);
        unlink(tmp);
        r = disk_convert_image(json_object_get_string(path), json_object_get_string(in), tmp, true,
                               false, NULL, err, errlen);
        if (!r && rename(tmp, out) < 0) {
            r = -errno;
            snprintf(err, errlen, "%s: %s", out, strerror(errno));
            unlink(tmp);
        }
        if (!r) {
            snprintf(out, sizeof(out), "disk-%u.img", i);
            json_object_object_add(j, "copy", json_object_new_string(out));
            changed = true;
        }
    }
    snprintf(tmp, sizeof(tmp), "%s/info.json.tmp", sdir);
    if (!r && changed) {
        if (json_object_to_file_ext(tmp, info, JSON_C_TO_STRING_PRETTY) < 0 || rename(tmp, p) < 0) {
            r = -EIO;
            snprintf(err, errlen, "cannot write %s", p);
            unlink(tmp);
        }
    }
    json_object_put(info);
    return r;
}

static int snapshot_create(struct store *st, const char *name, const char *snap)
{
    char err[700];
    static struct vm_spec spec;
    if (store_vm_load(st, name, &spec, err, sizeof(err)) < 0) {
        fprintf(stderr, "vessel snapshot: %s\n", err);
        return VM_EXIT_USAGE;
    }
    char base[4096], dir[4200], p1[4300], p2[4300];
    store_vm_path(st, name, "snapshots", base, sizeof(base));
    snprintf(dir, sizeof(dir), "%s/%s", base, snap);
    if (mkdir(base, 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "vessel snapshot: %s: %s\n", base, strerror(errno));
        return VM_EXIT_HOST_ERROR;
    }
    if (mkdir(dir, 0700) < 0) {
        fprintf(stderr, "vessel snapshot: %s: %s\n", snap,
                errno == EEXIST ? "a snapshot of that name exists" : strerror(errno));
        return errno == EEXIST ? VM_EXIT_USAGE : VM_EXIT_HOST_ERROR;
    }
    uint64_t t0 = mono_ms();
    enum store_vm_state s = store_vm_state(st, name, NULL);
    bool live = is_live(s), resume = s == SVM_RUNNING;
    int rc = 0;
    char *resp = NULL;
    if (live && resume &&
        vm_api(st, name, "snapshot", "PATCH", "/vm", "{\"state\":\"Paused\"}", NULL) != 204) {
        fprintf(stderr, "vessel snapshot: %s: cannot pause it\n", name);
        rc = VM_EXIT_HOST_ERROR;
    }
    if (!rc && live) {
        snprintf(p1, sizeof(p1), "%s/state", dir);
        snprintf(p2, sizeof(p2), "%s/memory", dir);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "snapshot_type", json_object_new_string("Full"));
        json_object_object_add(o, "snapshot_path", json_object_new_string(p1));
        json_object_object_add(o, "mem_file_path", json_object_new_string(p2));
        long r = vm_api(st, name, "snapshot", "PUT", "/snapshot/create",
                        json_object_to_json_string(o), &resp);
        json_object_put(o);
        if (r != 204) {
            if (r > 0) print_fault("snapshot", name, resp);
            rc = VM_EXIT_HOST_ERROR;
        }
    }
    /* the disks at the same instant: the guest is paused and its requests have completed
     * (and its disks are flushed). A qcow2 disk gets an internal snapshot (its tables are
     * copied, not its data: milliseconds); a raw one is copied. */
    char iname[128];
    disk_snap_name(snap, iname, sizeof(iname));
    bool internal[MACHINE_MAX_DISKS] = {false};
    if (!rc && live && live_disk_snap(st, name, &spec, true, iname, internal) < 0)
        rc = VM_EXIT_HOST_ERROR;
    json_object *disks = json_object_new_array();
    for (unsigned i = 0; !rc && i < spec.ndrives; i++) {
        const struct vm_drive_spec *d = &spec.drives[i];
        json_object *j = json_object_new_object();
        json_object_object_add(j, "id", json_object_new_string(d->id));
        json_object_object_add(j, "path", json_object_new_string(d->path));
        if (!d->readonly && !live) {
            int q = offline_disk_snap(d->path, 'c', iname, err, sizeof(err));
            if (q < 0) {
                fprintf(stderr, "vessel snapshot: disk %s: %s\n", d->id, err);
                rc = VM_EXIT_HOST_ERROR;
            }
            internal[i] = q == 1;
        }
        if (internal[i]) {
            json_object_object_add(j, "internal", json_object_new_string(iname));
        } else if (!rc && !d->readonly) {
            snprintf(p1, sizeof(p1), "%s/disk-%u.img", dir, i);
            if (copy_sparse(d->path, p1, 0, err, sizeof(err)) < 0) {
                fprintf(stderr, "vessel snapshot: copying disk %s: %s\n", d->id, err);
                rc = VM_EXIT_HOST_ERROR;
            }
            json_object_object_add(j, "copy", json_object_new_string(p1 + strlen(dir) + 1));
        }
        json_object_array_add(disks, j);
    }
    if (rc) { /* no half snapshot: the internal ones made go again */
        bool any = false;
        for (unsigned i = 0; i < spec.ndrives; i++)
            any |= internal[i];
        if (any && live) {
            bool gone[MACHINE_MAX_DISKS];
            live_disk_snap(st, name, &spec, false, iname, gone);
        } else {
            for (unsigned i = 0; i < spec.ndrives; i++)
                if (internal[i])
                    offline_disk_snap(spec.drives[i].path, 'd', iname, err, sizeof(err));
        }
    }
    if (live && resume &&
        vm_api(st, name, "snapshot", "PATCH", "/vm", "{\"state\":\"Resumed\"}", NULL) != 204)
        fprintf(stderr, "vessel snapshot: %s: could not resume it (vessel resume %s)\n", name,
                name);
    free(resp);
    if (!rc) {
        json_object *info = json_object_new_object();
        json_object_object_add(info, "version", json_object_new_int(1));
        json_object_object_add(info, "name", json_object_new_string(snap));
        json_object_object_add(info, "created", json_object_new_int64((int64_t)time(NULL)));
        json_object_object_add(info, "memory", json_object_new_boolean(live));
        json_object_object_add(info, "cpus", json_object_new_int((int)spec.cpus));
        json_object_object_add(info, "memory_mib", json_object_new_int64((int64_t)spec.mem_mib));
        json_object_object_add(info, "disks", json_object_get(disks));
        /* the configuration at that instant: what a clone of this snapshot is made from */
        json_object_object_add(info, "config", vm_spec_to_json(&spec, true));
        snprintf(p1, sizeof(p1), "%s/info.json", dir);
        if (json_object_to_file_ext(p1, info, JSON_C_TO_STRING_PRETTY) < 0) {
            fprintf(stderr, "vessel snapshot: cannot write %s\n", p1);
            rc = VM_EXIT_HOST_ERROR;
        }
        json_object_put(info);
    }
    json_object_put(disks);
    if (rc) {
        rm_snapdir(dir);
        return rc;
    }
    printf("%s: snapshot %s (%s) in %llu ms\n", name, snap,
           live ? "memory, CPUs, devices and disks" : "disks",
           (unsigned long long)(mono_ms() - t0));
    return 0;
}

static uint64_t dir_bytes(const char *dir)
{
    uint64_t n = 0;
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat sb;
        if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode))
            n += (uint64_t)sb.st_blocks * 512;
    }
    closedir(d);
    return n;
}

static int snapshot_list(struct store *st, const char *name, bool as_json)
{
    char base[4096];
    store_vm_path(st, name, "snapshots", base, sizeof(base));
    json_object *arr = json_object_new_array();
    DIR *d = opendir(base);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!store_name_valid(e->d_name)) continue;
        char p[4400];
        snprintf(p, sizeof(p), "%s/%s/info.json", base, e->d_name);
        json_object *info = json_object_from_file(p), *v;
        if (!info) continue; /* not finished, or not ours */
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(e->d_name));
        json_object_object_add(o, "created",
                               json_object_new_int64(json_object_object_get_ex(info, "created", &v)
                                                         ? json_object_get_int64(v)
                                                         : 0));
        json_object_object_add(
            o, "memory",
            json_object_new_boolean(json_object_object_get_ex(info, "memory", &v) &&
                                    json_object_get_boolean(v)));
        snprintf(p, sizeof(p), "%s/%s", base, e->d_name);
        json_object_object_add(o, "bytes", json_object_new_int64((int64_t)dir_bytes(p)));
        json_object_array_add(arr, o);
        json_object_put(info);
    }
    if (d) closedir(d);
    if (as_json) {
        printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN));
    } else {
        printf("%-20s %-20s %-7s %s\n", "SNAPSHOT", "CREATED", "MEMORY", "SIZE");
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            json_object *o = json_object_array_get_idx(arr, i), *v;
            json_object_object_get_ex(o, "created", &v);
            time_t t = (time_t)json_object_get_int64(v);
            char when[32];
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&t));
            json_object *nm, *mem, *b;
            json_object_object_get_ex(o, "name", &nm);
            json_object_object_get_ex(o, "memory", &mem);
            json_object_object_get_ex(o, "bytes", &b);
            printf("%-20s %-20s %-7s %.1f MiB\n", json_object_get_string(nm), when,
                   json_object_get_boolean(mem) ? "yes" : "no",
                   (double)json_object_get_int64(b) / (1 << 20));
        }
    }
    json_object_put(arr);
    return 0;
}

static int snapshot_restore(struct store *st, const char *name, const char *snap)
{
    char err[700], dir[4200], p[4400];
    store_vm_path(st, name, "snapshots", dir, sizeof(dir));
    size_t l = strlen(dir);
    snprintf(dir + l, sizeof(dir) - l, "/%s", snap);
    snprintf(p, sizeof(p), "%s/info.json", dir);
    json_object *info = json_object_from_file(p), *v;
    if (!info) {
        fprintf(stderr, "vessel snapshot: %s has no snapshot %s\n", name, snap);
        return VM_EXIT_USAGE;
    }
    bool memory = json_object_object_get_ex(info, "memory", &v) && json_object_get_boolean(v);
    static struct vm_spec spec;
    int rc = 0;
    if (store_vm_load(st, name, &spec, err, sizeof(err)) < 0) {
        fprintf(stderr, "vessel snapshot: %s\n", err);
        rc = VM_EXIT_USAGE;
    }
    json_object *disks = NULL;
    if (!rc && (!json_object_object_get_ex(info, "disks", &disks) ||
                !json_object_is_type(disks, json_type_array) ||
                json_object_array_length(disks) != spec.ndrives)) {
        fprintf(stderr, "vessel snapshot: %s: the snapshot's disks do not match the VM's\n", snap);
        rc = VM_EXIT_USAGE;
    }
    if (!rc && is_live(store_vm_state(st, name, NULL))) {
        char *args[] = {"stop", (char *)name, "--force", "--store", (char *)st->root, NULL};
        if (cli_stop(5, args) != 0) rc = VM_EXIT_HOST_ERROR;
        /* the stopped VM process's monitor may still be cleaning up (its lock reads as
         * "starting"): wait for it, bounded */
        for (int i = 0; !rc && i < 100; i++) {
            enum store_vm_state s = store_vm_state(st, name, NULL);
            if (s != SVM_STARTING && !is_live(s)) break;
            usleep(100000);
        }
    }
    for (unsigned i = 0; !rc && i < spec.ndrives; i++) {
        json_object *j = json_object_array_get_idx(disks, i), *c, *in;
        if (json_object_object_get_ex(j, "internal", &in)) {
            /* the disk's own internal snapshot becomes its state again */
            int q = offline_disk_snap(spec.drives[i].path, 'a', json_object_get_string(in), err,
                                      sizeof(err));
            if (q == 1) continue;
            /* gone (the disk was replaced, or came flattened by an import): a copy made for a
             * clone or an export serves as well */
            if (!json_object_object_get_ex(j, "copy", &c)) {
                fprintf(stderr, "vessel snapshot: restoring disk %s: %s\n", spec.drives[i].id,
                        q == 0 ? "it is no longer a qcow2 image with the snapshot" : err);
                rc = VM_EXIT_HOST_ERROR;
                break;
            }
        } else if (!json_object_object_get_ex(j, "copy", &c)) {
            continue; /* read-only: unchanged */
        }
        const char *cp = json_object_get_string(c);
        if (strchr(cp, '/') || cp[0] == '.') {
            fprintf(stderr, "vessel snapshot: %s: bad disk copy name\n", snap);
            rc = VM_EXIT_USAGE;
            break;
        }
        snprintf(p, sizeof(p), "%s/%s", dir, cp);
        if (copy_over(p, spec.drives[i].path, err, sizeof(err)) < 0) {
            fprintf(stderr, "vessel snapshot: restoring disk %s: %s\n", spec.drives[i].id, err);
            rc = VM_EXIT_HOST_ERROR;
        }
    }
    json_object_put(info);
    if (rc) return rc;
    if (!memory) {
        printf("%s: disks restored from %s (the VM is stopped)\n", name, snap);
        return 0;
    }
    return start_vm(st, name, dir, false);
}

/* The name of a VM whose disks are overlays on snapshot directory dir, or NULL. */
static char *clone_of(const struct store *st, const char *dir)
{
    char **names = NULL;
    int n = store_vm_list(st, &names);
    char *found = NULL;
    for (int i = 0; i < n; i++) {
        char p[4096], line[4096];
        store_vm_path(st, names[i], "clone-of", p, sizeof(p));
        FILE *f = fopen(p, "re");
        if (f) {
            if (!found && fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\n")] = 0;
                if (!strcmp(line, dir)) found = strdup(names[i]);
            }
            fclose(f);
        }
    }
    if (n > 0) store_names_free(names, n);
    return found;
}

static void clone_usage(FILE *out)
{
    fprintf(out,
            "Usage: vessel clone SRC DST [--snapshot SNAP] [--store DIR]\n"
            "A new VM DST with SRC's configuration.\n"
            "  --snapshot SNAP  from SRC's snapshot SNAP: DST's disks are qcow2 overlays on\n"
            "                   the snapshot's disks (made in milliseconds, sharing unchanged\n"
            "                   data), and its first start resumes from the snapshot's instant,\n"
            "                   its memory shared copy-on-write with every other clone of it.\n"
            "  without it       SRC must be stopped; its writable disks are copied (sparse).\n");
}

static int write_line(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    if (!f) return -errno;
    int r = fprintf(f, "%s\n", text) < 0 ? -EIO : 0;
    if (fclose(f) != 0 && !r) r = -errno;
    return r;
}

int cli_clone(int argc, char **argv)
{
    const char *store = NULL, *snap = NULL, *w[2] = {NULL, NULL};
    int nw = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--store") && i + 1 < argc) {
            store = argv[++i];
        } else if (!strcmp(argv[i], "--snapshot") && i + 1 < argc) {
            snap = argv[++i];
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            clone_usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' || nw == 2) {
            clone_usage(stderr);
            return VM_EXIT_USAGE;
        } else {
            w[nw++] = argv[i];
        }
    }
    if (nw != 2) {
        clone_usage(stderr);
        return VM_EXIT_USAGE;
    }
    const char *src = w[0], *dst = w[1];
    int rc = check_name(src, "clone");
    if (!rc) rc = check_name(dst, "clone");
    if (!rc && snap && !store_name_valid(snap)) {
        fprintf(stderr, "vessel clone: bad snapshot name '%s'\n", snap);
        rc = VM_EXIT_USAGE;
    }
    if (rc) return rc;
    struct store st;
    if ((rc = open_store(&st, store, false, "clone"))) return rc;
    char err[700];
    static struct vm_spec spec;
    char sdir[4200] = "", p[4400];
    if (store_vm_load(&st, src, &spec, err, sizeof(err)) < 0) {
        fprintf(stderr, "vessel clone: %s\n", err);
        return VM_EXIT_USAGE;
    }
    bool memory = false;
    json_object *info = NULL, *disks = NULL, *v;
    if (snap) {
        store_vm_path(&st, src, "snapshots", sdir, sizeof(sdir));
        size_t l = strlen(sdir);
        snprintf(sdir + l, sizeof(sdir) - l, "/%s", snap);
        /* disks kept as internal snapshots of SRC's images: a clone needs files to stand on
         * (made once per snapshot, then shared by every clone) */
        if (snapshot_materialize(sdir, err, sizeof(err)) < 0) {
            fprintf(stderr, "vessel clone: snapshot %s: %s\n", snap, err);
            return VM_EXIT_HOST_ERROR;
        }
        snprintf(p, sizeof(p), "%s/info.json", sdir);
        info = json_object_from_file(p);
        if (!info) {
            fprintf(stderr, "vessel clone: %s has no snapshot %s\n", src, snap);
            return VM_EXIT_USAGE;
        }
        memory = json_object_object_get_ex(info, "memory", &v) && json_object_get_boolean(v);
        /* the configuration as it was at the snapshot */
        if (!json_object_object_get_ex(info, "config", &v) ||
            vm_spec_from_json(&spec, v, err, sizeof(err)) < 0 ||
            !json_object_object_get_ex(info, "disks", &disks) ||
            json_object_array_length(disks) != spec.ndrives) {
            fprintf(stderr, "vessel clone: snapshot %s has no usable configuration\n", snap);
            json_object_put(info);
            return VM_EXIT_USAGE;
        }
    } else if (is_live(store_vm_state(&st, src, NULL))) {
        fprintf(stderr,
                "vessel clone: %s is running: stop it, or clone a snapshot of it "
                "(--snapshot)\n",
                src);
        return VM_EXIT_USAGE;
    }
    /* its own identity: a new MAC address (a guest resumed from a snapshot keeps the one its
     * driver read until it boots again), and no published ports (two VMs cannot hold one host
     * port) */
    bool dropped_ports = false;
    if (spec.net.present) {
        char *o = NULL;
        do
            free(o), net_mac_generate(spec.net.mac);
        while ((o = store_mac_owner(&st, dst, spec.net.mac)));
        spec.net.mac_set = true;
        struct net_spec ns;
        char e2[256];
        if (spec.net.user[0] && net_spec_parse(spec.net.user, &ns, e2, sizeof(e2)) == 0 &&
            ns.nfwd) {
            ns.nfwd = 0;
            dropped_ports = net_spec_format(&ns, spec.net.user, sizeof(spec.net.user)) == 0;
        }
    }
    int lk = store_lock(&st, err, sizeof(err));
    if (lk < 0) {
        fprintf(stderr, "vessel clone: %s\n", err);
        json_object_put(info);
        return VM_EXIT_HOST_ERROR;
    }
    char dir[4096], ddir[4096];
    store_vm_path(&st, dst, NULL, dir, sizeof(dir));
    store_vm_path(&st, dst, "disks", ddir, sizeof(ddir));
    if (mkdir(dir, 0700) < 0) {
        int e = errno;
        store_unlock(lk);
        json_object_put(info);
        fprintf(stderr, "vessel clone: %s\n",
                e == EEXIST ? "a VM of that name exists" : strerror(e));
        return e == EEXIST ? VM_EXIT_USAGE : VM_EXIT_HOST_ERROR;
    }
    int r = mkdir(ddir, 0700) < 0 ? -errno : 0;
    if (r) snprintf(err, sizeof(err), "%.400s: %s", ddir, strerror(-r));
    for (unsigned i = 0; !r && i < spec.ndrives; i++) {
        struct vm_drive_spec *d = &spec.drives[i];
        if (d->readonly) continue; /* shared as it is */
        char np[4400];
        if (snap) {
            json_object *j = json_object_array_get_idx(disks, i), *c;
            if (!json_object_object_get_ex(j, "copy", &c) ||
                strchr(json_object_get_string(c), '/')) {
                snprintf(err, sizeof(err), "snapshot %s has no copy of disk %s", snap, d->id);
                r = -EINVAL;
                break;
            }
            snprintf(p, sizeof(p), "%s/%s", sdir, json_object_get_string(c));
            snprintf(np, sizeof(np), "%s/disk%u.qcow2", ddir, i);
            r = qcow2_create(np, 0, 16, p, NULL, err, sizeof(err));
        } else {
            snprintf(np, sizeof(np), "%s/disk%u.img", ddir, i);
            r = copy_sparse(d->path, np, 0, err, sizeof(err));
        }
        if (!r && snprintf(d->path, sizeof(d->path), "%s", np) >= (int)sizeof(d->path)) {
            snprintf(err, sizeof(err), "the store path is too long");
            r = -ENAMETOOLONG;
        }
    }
    if (!r) r = store_vm_save(&st, dst, &spec, err, sizeof(err));
    if (!r && snap) {
        snprintf(p, sizeof(p), "%s/clone-of", dir);
        r = write_line(p, sdir);
        if (!r && memory) {
            snprintf(p, sizeof(p), "%s/restore-from", dir);
            r = write_line(p, sdir);
        }
        if (r) snprintf(err, sizeof(err), "%.400s: %s", p, strerror(-r));
    }
    json_object_put(info);
    if (r < 0) {
        char e2[256];
        store_vm_remove(&st, dst, e2, sizeof(e2));
        store_unlock(lk);
        fprintf(stderr, "vessel clone: %s\n", err);
        return VM_EXIT_HOST_ERROR;
    }
    store_unlock(lk);
    printf("%s\n", dst);
    if (dropped_ports)
        fprintf(stderr,
                "vessel clone: %s's published ports are not cloned (vessel set %s --publish "
                "HOSTPORT:GUESTPORT gives it its own)\n",
                src, dst);
    return 0;
}

/* Before a snapshot's directory goes: delete the internal snapshots it keeps in the VM's qcow2
 * disks (through the VM process, paused for it, while the VM runs). 0 or -1 (message
 * printed; the snapshot stays). */
static int snapshot_drop_internal(struct store *st, const char *name, const char *snap,
                                  const char *info_path)
{
    json_object *info = json_object_from_file(info_path), *disks, *in;
    bool any = false;
    if (info && json_object_object_get_ex(info, "disks", &disks) &&
        json_object_is_type(disks, json_type_array))
        for (size_t i = 0; i < json_object_array_length(disks); i++)
            any |= json_object_object_get_ex(json_object_array_get_idx(disks, i), "internal", &in);
    if (!any) {
        json_object_put(info);
        return 0;
    }
    char iname[128], err[700];
    disk_snap_name(snap, iname, sizeof(iname));
    enum store_vm_state s = store_vm_state(st, name, NULL);
    int r = 0;
    if (is_live(s)) {
        static struct vm_spec spec;
        bool gone[MACHINE_MAX_DISKS], resume = s == SVM_RUNNING;
        if (store_vm_load(st, name, &spec, err, sizeof(err)) < 0) {
            fprintf(stderr, "vessel snapshot: %s\n", err);
            r = -1;
        } else if (resume && vm_api(st, name, "snapshot", "PATCH", "/vm", "{\"state\":\"Paused\"}",
                                    NULL) != 204) {
            fprintf(stderr, "vessel snapshot: %s: cannot pause it\n", name);
            r = -1;
        } else {
            r = live_disk_snap(st, name, &spec, false, iname, gone);
            if (resume && vm_api(st, name, "snapshot", "PATCH", "/vm", "{\"state\":\"Resumed\"}",
                                 NULL) != 204)
                fprintf(stderr, "vessel snapshot: %s: could not resume it (vessel resume %s)\n",
                        name, name);
        }
    } else {
        for (size_t i = 0; !r && i < json_object_array_length(disks); i++) {
            json_object *j = json_object_array_get_idx(disks, i), *path;
            if (!json_object_object_get_ex(j, "internal", &in) ||
                !json_object_object_get_ex(j, "path", &path))
                continue;
            int q = offline_disk_snap(json_object_get_string(path), 'd', json_object_get_string(in),
                                      err, sizeof(err));
            if (q < 0 && q != -ENOENT) {
                fprintf(stderr, "vessel snapshot: disk %s: %s\n", json_object_get_string(path),
                        err);
                r = -1;
            }
        }
    }
    json_object_put(info);
    return r;
}

int cli_snapshot(int argc, char **argv)
{
    /* parsed by hand: getopt's "+" mode would stay on for the cli_stop/cli_start this calls */
    const char *store = NULL;
    bool as_json = false;
    const char *w[3] = {NULL, NULL, NULL};
    int nw = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--store") && i + 1 < argc) {
            store = argv[++i];
        } else if (!strncmp(argv[i], "--store=", 8)) {
            store = argv[i] + 8;
        } else if (!strcmp(argv[i], "--json")) {
            as_json = true;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            snapshot_usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "vessel snapshot: unknown option %s\n", argv[i]);
            return VM_EXIT_USAGE;
        } else if (nw < 3) {
            w[nw++] = argv[i];
        } else {
            fprintf(stderr, "vessel snapshot: too many arguments\n");
            return VM_EXIT_USAGE;
        }
    }
    const char *sub = w[0], *name = w[1], *snap = w[2];
    bool list = sub && !strcmp(sub, "list");
    if (!sub || !name || (list ? snap != NULL : !snap)) {
        snapshot_usage(stderr);
        return VM_EXIT_USAGE;
    }
    if (!store_name_valid(name) || (snap && !store_name_valid(snap))) {
        fprintf(stderr, "vessel snapshot: bad name '%s': 1-63 of a-z A-Z 0-9 _ . - (not first)\n",
                !store_name_valid(name) ? name : snap);
        return VM_EXIT_USAGE;
    }
    struct store st;
    int rc = open_store(&st, store, false, "snapshot");
    if (rc) return rc;
    if (!store_vm_exists(&st, name)) {
        fprintf(stderr, "vessel snapshot: no VM named %s\n", name);
        return VM_EXIT_USAGE;
    }
    if (list) return snapshot_list(&st, name, as_json);
    if (!strcmp(sub, "create")) return snapshot_create(&st, name, snap);
    if (!strcmp(sub, "restore")) return snapshot_restore(&st, name, snap);
    if (!strcmp(sub, "rm")) {
        char dir[4200], p[4400];
        store_vm_path(&st, name, "snapshots", dir, sizeof(dir));
        size_t l = strlen(dir);
        snprintf(dir + l, sizeof(dir) - l, "/%s", snap);
        snprintf(p, sizeof(p), "%s/info.json", dir);
        if (access(p, F_OK) < 0) {
            fprintf(stderr, "vessel snapshot: %s has no snapshot %s\n", name, snap);
            return VM_EXIT_USAGE;
        }
        char *user = clone_of(&st, dir);
        if (user) {
            fprintf(stderr, "vessel snapshot: %s's disks back clone %s: remove the clone first\n",
                    snap, user);
            free(user);
            return VM_EXIT_USAGE;
        }
        if (snapshot_drop_internal(&st, name, snap, p) < 0) return VM_EXIT_HOST_ERROR;
        rm_snapdir(dir);
        return 0;
    }
    fprintf(stderr, "vessel snapshot: unknown subcommand '%s' (create, list, restore, rm)\n", sub);
    return VM_EXIT_USAGE;
}

/* ---- ssh ---- */

static void ssh_usage(FILE *out)
{
    fprintf(out,
            "Usage: vessel ssh NAME [--store DIR] [-- SSH-ARGS...]\n"
            "ssh into a running VM through its published port 22 (vessel create NAME --publish\n"
            "2222:22) as root, with a known_hosts file of the VM's own (its host keys are made\n"
            "at its first boot), and -i KEY for each --ssh-key KEY.pub the VM was created\n"
            "with whose private key KEY exists. VESSEL_SSH names another ssh program.\n");
}

int cli_ssh(int argc, char **argv)
{
    int dd = argc; /* ssh's own arguments follow "--" */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--")) {
            dd = i;
            break;
        }
    struct simple_args a;
    int rc = parse_simple(dd, argv, "ssh", "", &a, ssh_usage);
    if (rc) return rc < 0 ? 0 : rc;
    struct store st;
    if ((rc = open_store(&st, a.store, false, "ssh"))) return rc;
    char err[600];
    static struct vm_spec spec;
    if (store_vm_load(&st, a.name, &spec, err, sizeof(err)) < 0) {
        fprintf(stderr, "vessel ssh: %s\n", err);
        return VM_EXIT_USAGE;
    }
    struct net_spec ns = {0};
    const struct net_hostfwd *fwd = NULL;
    if (spec.net.present && !spec.net.host_dev_name[0] &&
        net_spec_parse(spec.net.user[0] ? spec.net.user : "user", &ns, err, sizeof(err)) == 0)
        for (unsigned i = 0; i < ns.nfwd && !fwd; i++)
            if (!ns.fwd[i].udp && ns.fwd[i].guest_port == 22) fwd = &ns.fwd[i];
    if (!fwd) {
        fprintf(stderr,
                "vessel ssh: %s publishes no port 22 (create the VM with --publish 2222:22)\n",
                a.name);
        return VM_EXIT_USAGE;
    }
    if (!is_live(store_vm_state(&st, a.name, NULL))) {
        fprintf(stderr, "vessel ssh: %s is not running (vessel start %s)\n", a.name, a.name);
        return VM_EXIT_USAGE;
    }
    char host[INET_ADDRSTRLEN] = "127.0.0.1", port[8], known[4200], kopt[4300];
    if (fwd->host_addr.s_addr != htonl(INADDR_ANY))
        inet_ntop(AF_INET, &fwd->host_addr, host, sizeof(host));
    snprintf(port, sizeof(port), "%u", fwd->host_port);
    store_vm_path(&st, a.name, "known_hosts", known, sizeof(known));
    snprintf(kopt, sizeof(kopt), "UserKnownHostsFile=%s", known);
    const char *prog = getenv("VESSEL_SSH");
    if (!prog || !*prog) prog = "ssh";
    char *av[64];
    int n = 0;
    av[n++] = (char *)prog;
    av[n++] = "-p";
    av[n++] = port;
    av[n++] = "-o";
    av[n++] = kopt;
    av[n++] = "-o";
    av[n++] = "StrictHostKeyChecking=accept-new"; /* the first connection learns the keys */
    /* the private keys beside the --ssh-key files given at create, while they exist */
    for (unsigned i = 0; i < spec.nssh_identities && i < VM_SSH_KEY_FILES; i++)
        if (access(spec.ssh_identities[i], R_OK) == 0) {
            av[n++] = "-i";
            av[n++] = spec.ssh_identities[i];
        }
    av[n++] = "-l";
    av[n++] = "root";
    av[n++] = host;
    for (int i = dd + 1; i < argc && n < 63; i++)
        av[n++] = argv[i];
    av[n] = NULL;
    execvp(prog, av);
    fprintf(stderr, "vessel ssh: cannot run %s: %s\n", prog, strerror(errno));
    return VM_EXIT_HOST_ERROR;
}

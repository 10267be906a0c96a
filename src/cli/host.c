/* vessel host [set]: the host's resources, the admission policy, what the VMs use. */
#include "cli/cli.h"
#include "mgr/admit.h"
#include "util/size.h"
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void host_usage(FILE *out)
{
    fprintf(out, "Usage: vessel host [--json] [--store DIR]\n"
                 "       vessel host set [--cpu-overcommit R] [--memory-overcommit R]\n"
                 "                       [--reserve-memory SIZE] [--store DIR]\n"
                 "The host's CPUs and memory, the admission policy and what running VMs use.\n"
                 "A VM starts only if the vCPUs and memory of all running VMs stay within\n"
                 "CPUs x cpu-overcommit and (MemTotal - reserve) x memory-overcommit; without\n"
                 "memory overcommit it must also fit in MemAvailable. Defaults: 1, 1, 1G.\n");
}

static int parse_ratio(const char *s, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(d) || d < 0.1 || d > 1000) return -EINVAL;
    *out = d;
    return 0;
}

int cli_host(int argc, char **argv)
{
    bool set = argc > 1 && !strcmp(argv[1], "set");
    if (set) argc--, argv++;
    static const struct option opts[] = {{"store", required_argument, NULL, 's'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"cpu-overcommit", required_argument, NULL, 'c'},
                                         {"memory-overcommit", required_argument, NULL, 'm'},
                                         {"reserve-memory", required_argument, NULL, 'r'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *store_dir = NULL, *cpu = NULL, *mem = NULL, *res = NULL;
    bool json = false;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 's': store_dir = optarg; break;
        case 'j': json = true; break;
        case 'c': cpu = optarg; break;
        case 'm': mem = optarg; break;
        case 'r': res = optarg; break;
        case 'h': host_usage(stdout); return 0;
        default:
            fprintf(stderr, "vessel host: bad option %s (see vessel host --help)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind != argc || (!set && (cpu || mem || res))) {
        fprintf(stderr, "vessel host: policy options go with `vessel host set`\n");
        return 2;
    }
    struct store st;
    char err[512];
    if (store_open(&st, store_dir, set, err, sizeof(err)) < 0 && set) {
        fprintf(stderr, "vessel host: %s\n", err);
        return 1;
    }
    struct host_policy p;
    if (policy_load(&st, &p, err, sizeof(err)) < 0) {
        fprintf(stderr, "vessel host: %s\n", err);
        if (!set) return 1;
        policy_default(&p); /* a corrupt policy is replaced by a complete new one */
    }
    if (set) {
        if (cpu && parse_ratio(cpu, &p.cpu_overcommit) < 0) {
            fprintf(stderr,
                    "vessel host set: --cpu-overcommit %s: expected a ratio from 0.1 to "
                    "1000\n",
                    cpu);
            return 2;
        }
        if (mem && parse_ratio(mem, &p.mem_overcommit) < 0) {
            fprintf(stderr,
                    "vessel host set: --memory-overcommit %s: expected a ratio from 0.1 "
                    "to 1000\n",
                    mem);
            return 2;
        }
        if (res) {
            uint64_t b;
            if (size_parse(res, &b) < 0) {
                fprintf(stderr, "vessel host set: --reserve-memory %s: not a size\n", res);
                return 2;
            }
            p.reserve_mib = b >> 20;
        }
        int lk = store_lock(&st, err, sizeof(err));
        int r = lk < 0 ? lk : policy_save(&st, &p, err, sizeof(err));
        store_unlock(lk);
        if (r < 0) {
            fprintf(stderr, "vessel host set: %s\n", err);
            return 1;
        }
    }
    struct host_info h;
    if (host_info_read(&h) < 0) {
        fprintf(stderr, "vessel host: cannot read /proc/meminfo\n");
        return 1;
    }
    struct host_usage u;
    admit_usage(&st, NULL, &u);
    double bcpu, bmem;
    policy_budget(&p, &h, &bcpu, &bmem);
    if (json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "cpus", json_object_new_int((int)h.cpus));
        json_object_object_add(o, "memory_total_mib",
                               json_object_new_int64((int64_t)h.mem_total_mib));
        json_object_object_add(o, "memory_available_mib",
                               json_object_new_int64((int64_t)h.mem_available_mib));
        json_object_object_add(o, "cpu_overcommit", json_object_new_double(p.cpu_overcommit));
        json_object_object_add(o, "memory_overcommit", json_object_new_double(p.mem_overcommit));
        json_object_object_add(o, "reserve_memory_mib",
                               json_object_new_int64((int64_t)p.reserve_mib));
        json_object_object_add(o, "vcpu_budget", json_object_new_double(bcpu));
        json_object_object_add(o, "memory_budget_mib", json_object_new_int64((int64_t)bmem));
        json_object_object_add(o, "vms_running", json_object_new_int((int)u.vms));
        json_object_object_add(o, "vcpus_used", json_object_new_int((int)u.cpus));
        json_object_object_add(o, "memory_used_mib", json_object_new_int64((int64_t)u.mem_mib));
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
        json_object_put(o);
        return 0;
    }
    printf("store:   %s\n", st.root);
    printf("host:    %u CPUs, %.1f GiB memory (%.1f GiB available)\n", h.cpus,
           h.mem_total_mib / 1024.0, h.mem_available_mib / 1024.0);
    printf("policy:  cpu-overcommit %g, memory-overcommit %g, reserve-memory %.1f GiB\n",
           p.cpu_overcommit, p.mem_overcommit, p.reserve_mib / 1024.0);
    printf("budget:  %g vCPUs, %.1f GiB\n", bcpu, bmem / 1024.0);
    printf("in use:  %u VM%s, %u vCPU%s, %.1f GiB\n", u.vms, u.vms == 1 ? "" : "s", u.cpus,
           u.cpus == 1 ? "" : "s", u.mem_mib / 1024.0);
    return 0;
}

/* The VM store, admission and the configuration format (no guest). */
#include "api/api.h"
#include "mgr/admit.h"
#include "mgr/store.h"
#include "test.h"
#include "vm/config.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void tmp_store(struct store *st)
{
    char tmpl[] = "/tmp/vessel-unit-store-XXXXXX";
    char *d = mkdtemp(tmpl);
    CHECK(d != NULL);
    char err[256];
    CHECK_EQ(store_open(st, d, true, err, sizeof(err)), 0);
}

static void rm_store(struct store *st)
{
    char cmd[3200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", st->root);
    CHECK_EQ(system(cmd), 0);
}

TEST(store_names)
{
    CHECK(store_name_valid("web"));
    CHECK(store_name_valid("a1_b-c.d"));
    CHECK(!store_name_valid(""));
    CHECK(!store_name_valid(".."));
    CHECK(!store_name_valid("a/b"));
    CHECK(!store_name_valid("Web"));
    CHECK(!store_name_valid("-x"));
    char long_name[80];
    memset(long_name, 'a', 64);
    long_name[64] = 0;
    CHECK(!store_name_valid(long_name));
    long_name[63] = 0;
    CHECK(store_name_valid(long_name));
}

TEST(config_roundtrip_and_strictness)
{
    static struct vm_spec s, t;
    char err[512];
    json_object *o = json_tokener_parse(
        "{\"machine-config\":{\"vcpu_count\":3,\"mem_size_mib\":300},"
        "\"boot-source\":{\"kernel_image_path\":\"/k\",\"boot_args\":\"console=ttyS0 quiet\"},"
        "\"drives\":[{\"drive_id\":\"root\",\"path_on_host\":\"/r\",\"is_root_device\":true,"
        "\"is_read_only\":true},{\"drive_id\":\"d2\",\"path_on_host\":\"/d\",\"is_root_device\":"
        "false}],\"vessel\":{\"firmware\":\"/fw\",\"drives\":{\"d2\":{\"serial\":\"S2\","
        "\"cache\":\"none\"}},\"engine\":\"jit\",\"jit_cache\":1048576}}");
    CHECK(o != NULL);
    CHECK_EQ(vm_spec_from_json(&s, o, err, sizeof(err)), 0);
    json_object_put(o);
    CHECK_EQ(s.cpus, 3);
    CHECK_EQ(s.mem_mib, 300);
    CHECK_EQ(s.ndrives, 2);
    CHECK(s.drives[1].direct);
    CHECK_STR(s.drives[1].serial, "S2");
    CHECK(s.jit);
    CHECK_EQ(s.jit_cache_size, 1048576);
    json_object *back = vm_spec_to_json(&s, true);
    CHECK_EQ(vm_spec_from_json(&t, back, err, sizeof(err)), 0);
    json_object_put(back);
    CHECK(memcmp(&s, &t, sizeof(s)) == 0);
    /* the root drive becomes vda and names itself on the command line, read-only */
    struct vm_options opts;
    char cmdline[4200];
    CHECK_EQ(vm_spec_to_options(&s, &opts, cmdline, sizeof(cmdline), err, sizeof(err)), 0);
    CHECK_STR(opts.machine.cmdline, "console=ttyS0 quiet root=/dev/vda ro");
    CHECK_STR(opts.disks[0].path, "/r");
    CHECK(opts.disks[1].direct);
    CHECK_EQ(opts.machine.engine, ENGINE_JIT);
    CHECK_EQ(opts.machine.jit_cache_size, 1048576);
    /* unknown keys, wrong types, ranges, duplicate drives: errors, spec untouched */
    const char *bad[] = {
        "{\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":128,\"x\":1}}",
        "{\"machine-config\":{\"vcpu_count\":\"1\",\"mem_size_mib\":128}}",
        "{\"machine-config\":{\"vcpu_count\":33,\"mem_size_mib\":128}}",
        "{\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":63}}",
        "{\"machine-config\":{\"vcpu_count\":1}}",
        "{\"drives\":[{\"drive_id\":\"a\",\"path_on_host\":\"/a\",\"is_root_device\":false},"
        "{\"drive_id\":\"a\",\"path_on_host\":\"/b\",\"is_root_device\":false}]}",
        "{\"drives\":[{\"drive_id\":\"a\",\"path_on_host\":\"/a\",\"is_root_device\":true},"
        "{\"drive_id\":\"b\",\"path_on_host\":\"/b\",\"is_root_device\":true}]}",
        "{\"drives\":[{\"drive_id\":\"../x\",\"path_on_host\":\"/a\",\"is_root_device\":false}]}",
        "{\"boot-source\":{\"kernel_image_path\":\"/k\\u0001\"}}",
        "{\"version\":2}",
        "{\"vsock\":{\"guest_cid\":2,\"uds_path\":\"/v\"}}",
        "{\"vsock\":{\"guest_cid\":3}}",
        "{\"vsock\":{\"guest_cid\":3,\"uds_path\":\"\"}}",
        "{\"vsock\":{\"guest_cid\":3,\"uds_path\":\"/v\",\"x\":1}}",
        "{\"vsock\":[]}",
        "{\"vessel\":{\"engine\":\"fast\"}}",
        "{\"vessel\":{\"engine\":1}}",
        "{\"vessel\":{\"jit_cache\":1024}}",
        "{\"vessel\":{\"jit_cache\":\"16M\"}}",
        "[]",
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        t = s;
        json_object *b = json_tokener_parse(bad[i]);
        CHECK(b != NULL);
        err[0] = 0;
        CHECK_EQ(vm_spec_from_json(&t, b, err, sizeof(err)), -EINVAL);
        CHECK(err[0] != 0);
        CHECK(memcmp(&s, &t, sizeof(s)) == 0);
        json_object_put(b);
    }
}

#define ED_KEY "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOv7pQ2mFq1I2o9Zr5ZtJ0sJ1xk8o4rP0Wn0g0l0m0n0"

/* --ssh-key: what vm_ssh_keys_add accepts and refuses, the JSON round trip
 * (vessel.ssh_authorized_keys, vessel.ssh_identities) and the way to the machine. */
TEST(config_ssh_keys)
{
    static char keys[VM_SSH_KEYS_MAX];
    char err[300];
    const char *good = "# my keys\r\n\n  " ED_KEY " me@host  \r\n"
                       "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY= x\n"
                       "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t";
    CHECK_EQ(vm_ssh_keys_add(keys, sizeof(keys), good, strlen(good), err, sizeof(err)), 0);
    CHECK_STR(keys, ED_KEY " me@host\necdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY= x\n"
                           "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t\n");
    const char *bad[] = {
        "",
        "# only a comment\n\n",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n",
        "command=\"ls\" " ED_KEY "\n",
        "ssh-ed25519\n",
        "ssh-ed25519 AAAA!notbase64!AAAAAAAAAAAA\n",
        "ssh-ed25519 AAAA\n",
        "rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ\n",
        ED_KEY " caf\xc3\xa9\n",
        ED_KEY " a\x1b[2Jb\n",
    };
    size_t before = strlen(keys);
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        CHECK_EQ(vm_ssh_keys_add(keys, sizeof(keys), bad[i], strlen(bad[i]), err, sizeof(err)),
                 -EINVAL);
        CHECK(err[0] != 0);
        CHECK_EQ(strlen(keys), before);
    }
    /* a NUL in the middle of a file */
    CHECK_EQ(
        vm_ssh_keys_add(keys, sizeof(keys), ED_KEY "\0\n", sizeof(ED_KEY) + 1, err, sizeof(err)),
        -EINVAL);
    /* the bound counts the keys already there */
    static char many[VM_SSH_KEYS_MAX * 2];
    size_t n = 0;
    while (n + sizeof(ED_KEY) + 1 < sizeof(many)) {
        memcpy(many + n, ED_KEY "\n", sizeof(ED_KEY));
        n += sizeof(ED_KEY);
    }
    CHECK_EQ(vm_ssh_keys_add(keys, sizeof(keys), many, n, err, sizeof(err)), -E2BIG);
    CHECK_EQ(strlen(keys), before);

    /* JSON: kept as given (checked again on reading), identities as absolute paths */
    static struct vm_spec s, t;
    vm_spec_init(&s);
    snprintf(s.kernel, sizeof(s.kernel), "/k");
    memcpy(s.ssh_keys, keys, sizeof(keys));
    s.nssh_identities = 1;
    snprintf(s.ssh_identities[0], sizeof(s.ssh_identities[0]), "/home/me/.ssh/id_ed25519");
    json_object *o = vm_spec_to_json(&s, true);
    CHECK_EQ(vm_spec_from_json(&t, o, err, sizeof(err)), 0);
    json_object_put(o);
    CHECK(memcmp(&s, &t, sizeof(s)) == 0);
    struct vm_options opts;
    char cmdline[4200];
    CHECK_EQ(vm_spec_to_options(&s, &opts, cmdline, sizeof(cmdline), err, sizeof(err)), 0);
    CHECK_STR(opts.machine.ssh_keys, keys);
    static struct vm_spec u;
    opts.machine.kernel = opts.machine.firmware = NULL; /* no files to resolve */
    CHECK_EQ(vm_spec_from_options(&u, &opts, err, sizeof(err)), 0);
    CHECK_STR(u.ssh_keys, keys);
    /* no keys: no property */
    s.ssh_keys[0] = 0;
    CHECK_EQ(vm_spec_to_options(&s, &opts, cmdline, sizeof(cmdline), err, sizeof(err)), 0);
    CHECK(opts.machine.ssh_keys == NULL);
    const char *badj[] = {
        "{\"vessel\":{\"ssh_authorized_keys\":1}}",
        "{\"vessel\":{\"ssh_authorized_keys\":\"not a key\"}}",
        "{\"vessel\":{\"ssh_authorized_keys\":\"\"}}",
        "{\"vessel\":{\"ssh_identities\":\"/a\"}}",
        "{\"vessel\":{\"ssh_identities\":[\"rel/a\"]}}",
        "{\"vessel\":{\"ssh_identities\":[1]}}",
        "{\"vessel\":{\"ssh_identities\":[\"/a\",\"/b\",\"/c\",\"/d\",\"/e\"]}}",
    };
    for (unsigned i = 0; i < sizeof(badj) / sizeof(badj[0]); i++) {
        json_object *b = json_tokener_parse(badj[i]);
        CHECK(b != NULL);
        err[0] = 0;
        CHECK_EQ(vm_spec_from_json(&t, b, err, sizeof(err)), -EINVAL);
        CHECK(err[0] != 0);
        json_object_put(b);
    }
}

TEST(store_create_load_atomic)
{
    struct store st;
    tmp_store(&st);
    static struct vm_spec s, t;
    vm_spec_init(&s);
    s.cpus = 2;
    char err[512];
    CHECK_EQ(store_vm_create(&st, "one", &s, err, sizeof(err)), 0);
    CHECK_EQ(store_vm_create(&st, "one", &s, err, sizeof(err)), -EEXIST);
    CHECK_EQ(store_vm_load(&st, "one", &t, err, sizeof(err)), 0);
    CHECK_EQ(t.cpus, 2);
    CHECK_EQ(store_vm_load(&st, "two", &t, err, sizeof(err)), -ENOENT);
    /* a corrupt file is an error naming the VM and the file */
    char p[4096];
    store_vm_path(&st, "one", "config.json", p, sizeof(p));
    FILE *f = fopen(p, "w");
    fputs("{\"machine-config\": {", f);
    fclose(f);
    CHECK_EQ(store_vm_load(&st, "one", &t, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "one") && strstr(err, "corrupt"));
    /* a save replaces it whole; no temporary stays behind */
    CHECK_EQ(store_vm_save(&st, "one", &s, err, sizeof(err)), 0);
    CHECK_EQ(store_vm_load(&st, "one", &t, err, sizeof(err)), 0);
    char **names;
    int n = store_vm_list(&st, &names);
    CHECK_EQ(n, 1);
    if (n == 1) CHECK_STR(names[0], "one");
    store_names_free(names, n);
    char d[4096];
    store_vm_path(&st, "one", NULL, d, sizeof(d));
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) -eq 1", d);
    CHECK_EQ(system(cmd), 0);
    CHECK_EQ(store_vm_remove(&st, "one", err, sizeof(err)), 0);
    CHECK(!store_vm_exists(&st, "one"));
    rm_store(&st);
}

/* The state comes from the lock: a live holder is running, a dead one with run.json crashed. */
TEST(store_state_from_lock)
{
    struct store st;
    tmp_store(&st);
    static struct vm_spec s;
    vm_spec_init(&s);
    char err[512];
    CHECK_EQ(store_vm_create(&st, "vm", &s, err, sizeof(err)), 0);
    CHECK_EQ(store_vm_state(&st, "vm", NULL), SVM_STOPPED);
    int pfd[2];
    CHECK_EQ(pipe(pfd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        int fd;
        if (store_vm_lock(&st, "vm", 0, &fd, err, sizeof(err)) < 0) _exit(1);
        struct store_run run = {.pid = getpid(), .state = SVM_PAUSED, .cpus = 1, .mem_mib = 64};
        int rfd = store_run_open(&st, "vm");
        if (rfd < 0 || store_run_put(rfd, &run) < 0) _exit(1);
        run.state = SVM_RUNNING; /* rewritten in place */
        if (store_run_put(rfd, &run) < 0) _exit(1);
        if (write(pfd[1], "x", 1) != 1) _exit(1);
        pause();
        _exit(0);
    }
    char c;
    CHECK_EQ(read(pfd[0], &c, 1), 1);
    struct store_run run;
    CHECK_EQ(store_vm_state(&st, "vm", &run), SVM_RUNNING);
    CHECK_EQ(run.pid, pid);
    int fd;
    CHECK_EQ(store_vm_lock(&st, "vm", 0, &fd, err, sizeof(err)), -EBUSY);
    /* the monitor's byte is separate */
    int mfd;
    CHECK_EQ(store_vm_lock(&st, "vm", 1, &mfd, err, sizeof(err)), 0);
    close(mfd);
    struct host_usage u;
    admit_usage(&st, NULL, &u);
    CHECK_EQ(u.vms, 1);
    CHECK_EQ(u.mem_mib, 64);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    CHECK_EQ(store_vm_state(&st, "vm", NULL), SVM_CRASHED);
    admit_usage(&st, NULL, &u);
    CHECK_EQ(u.vms, 0);
    close(pfd[0]);
    close(pfd[1]);
    rm_store(&st);
}

TEST(admission_message_and_policy)
{
    struct store st;
    tmp_store(&st);
    char err[512];
    struct host_info h;
    CHECK_EQ(host_info_read(&h), 0);
    CHECK_EQ(admit_check(&st, "ok", 1, 64, err, sizeof(err)), 0);
    CHECK_EQ(admit_check(&st, "web", h.cpus + 1, 64, err, sizeof(err)), -EBUSY);
    char want[64];
    snprintf(want, sizeof(want), "web needs %u vCPUs and 0.1 GiB; %u vCPU", h.cpus + 1, h.cpus);
    CHECK(strstr(err, want) != NULL);
    CHECK(strstr(err, "(0 VMs running)") != NULL);
    struct host_policy p;
    CHECK_EQ(policy_load(&st, &p, err, sizeof(err)), 0);
    p.cpu_overcommit = 4;
    CHECK_EQ(policy_save(&st, &p, err, sizeof(err)), 0);
    CHECK_EQ(admit_check(&st, "web", h.cpus + 1, 64, err, sizeof(err)), 0);
    /* a foreground run's reservation counts until it is released */
    int fd = admit_run_register(&st, 3 * h.cpus, 64, err, sizeof(err));
    CHECK(fd >= 0);
    CHECK_EQ(admit_check(&st, "web", h.cpus + 1, 64, err, sizeof(err)), -EBUSY);
    admit_run_release(&st, fd);
    CHECK_EQ(admit_check(&st, "web", h.cpus + 1, 64, err, sizeof(err)), 0);
    /* a corrupt policy is an error, not a silent default */
    char pp[3200];
    snprintf(pp, sizeof(pp), "%s/host.json", st.root);
    FILE *f = fopen(pp, "w");
    fputs("{\"cpu_overcommit\": \"lots\"}", f);
    fclose(f);
    CHECK(policy_load(&st, &p, err, sizeof(err)) < 0);
    CHECK(admit_check(&st, "web", 1, 64, err, sizeof(err)) < 0);
    rm_store(&st);
}

/* PATCH /drives/{id} finds the disk by the index vm_spec_to_options gives it: the root drive
 * is vda wherever it was added, the others follow in the order they were added. */
TEST(config_drive_index_matches_options)
{
    static struct vm_spec s;
    char err[512];
    const char *cfgs[] = {
        "{\"boot-source\":{\"kernel_image_path\":\"/k\"},\"drives\":["
        "{\"drive_id\":\"a\",\"path_on_host\":\"/a\",\"is_root_device\":false},"
        "{\"drive_id\":\"r\",\"path_on_host\":\"/r\",\"is_root_device\":true},"
        "{\"drive_id\":\"b\",\"path_on_host\":\"/b\",\"is_root_device\":false}]}",
        "{\"boot-source\":{\"kernel_image_path\":\"/k\"},\"drives\":["
        "{\"drive_id\":\"a\",\"path_on_host\":\"/a\",\"is_root_device\":false},"
        "{\"drive_id\":\"b\",\"path_on_host\":\"/b\",\"is_root_device\":false},"
        "{\"drive_id\":\"r\",\"path_on_host\":\"/r\",\"is_root_device\":true}]}",
        "{\"boot-source\":{\"kernel_image_path\":\"/k\"},\"drives\":["
        "{\"drive_id\":\"a\",\"path_on_host\":\"/a\",\"is_root_device\":false},"
        "{\"drive_id\":\"b\",\"path_on_host\":\"/b\",\"is_root_device\":false}]}",
    };
    for (unsigned c = 0; c < sizeof(cfgs) / sizeof(cfgs[0]); c++) {
        json_object *o = json_tokener_parse(cfgs[c]);
        CHECK(o != NULL);
        CHECK_EQ(vm_spec_from_json(&s, o, err, sizeof(err)), 0);
        json_object_put(o);
        struct vm_options opts;
        char cmdline[4200];
        setenv("VESSEL_CACHE", "/nonexistent-cache", 1); /* only names the OpenSBI path */
        CHECK_EQ(vm_spec_to_options(&s, &opts, cmdline, sizeof(cmdline), err, sizeof(err)), 0);
        unsetenv("VESSEL_CACHE");
        CHECK_EQ(opts.ndisks, s.ndrives);
        for (unsigned i = 0; i < s.ndrives; i++) {
            int at = vm_spec_drive_index(&s, s.drives[i].id);
            CHECK(at >= 0 && (unsigned)at < opts.ndisks);
            if (at >= 0) CHECK_STR(opts.disks[at].path, s.drives[i].path);
        }
        CHECK_EQ(vm_spec_drive_index(&s, "nosuch"), -1);
    }
}

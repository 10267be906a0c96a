// clang-format off
// SOURCES: src/cli/export.c src/mgr/store.c src/vm/config.c src/backend/net/spec.c
// SOURCES: src/backend/block/qcow2.c src/backend/block/fileops.c src/util/log.c src/util/err.c
// SOURCES: src/util/paths.c src/util/size.c src/backend/vsock/spec.c
// LIBS: -ljson-c -lnettle -lzstd
// clang-format on
/* vessel import on arbitrary files (an export file is untrusted input): the fuzzer's bytes are
 * the archive. Import must refuse or succeed without crashing, and a refusal must leave the
 * store as it was (no VM, no temporary directory). The seed is a real export of a small VM. */
#include "cli/cli.h"
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* export's flattening of overlays (cli/disk.c) and of internal snapshots (cli/vm.c) is not
 * under test here */
int cli_disk(int argc, char **argv)
{
    (void)argc, (void)argv;
    return 1;
}
int snapshot_materialize(const char *sdir, char *err, size_t errlen)
{
    (void)sdir;
    snprintf(err, errlen, "not in the fuzz harness");
    return -ENOSYS;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    if (d) closedir(d);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    static char store[64], file[96], vms[96];
    if (!store[0]) {
        snprintf(store, sizeof(store), "/tmp/vessel-fuzz-import-%d", (int)getpid());
        snprintf(file, sizeof(file), "%s.in", store);
        snprintf(vms, sizeof(vms), "%s/vms", store);
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
    }
    FILE *f = fopen(file, "wb");
    if (!f) return 0;
    fwrite(data, 1, len, f);
    fclose(f);
    char *argv[] = {"import", file, "--name", "fz", "--store", store, NULL};
    int r = cli_import(6, argv);
    int n = count_entries(vms);
    if (r != 0 && n != 0) abort(); /* a refused import left something behind */
    if (r == 0) {                  /* accepted: remove it for the next input */
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "rm -rf %s/fz", vms);
        if (system(cmd) != 0) abort();
    }
    return 0;
}

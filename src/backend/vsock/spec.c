/* --vsock cid=N,path=P and its checks (vsock.h): no sockets here, for the configuration code
 * and its fuzz harnesses. */
#include "backend/vsock/vsock.h"
#include "util/err.h"
#include <errno.h>
#include <string.h>

int vsock_spec_check(uint32_t cid, const char *path, char *err, size_t errlen)
{
    if (cid < 3 || cid == UINT32_MAX)
        return err_set(err, errlen, -EINVAL,
                       "--vsock: cid %u is reserved (the guest's CID is 3 to 4294967294)", cid);
    if (!path[0]) return err_set(err, errlen, -EINVAL, "--vsock: path= is empty");
    if (strlen(path) > VSOCK_UDS_PATH_MAX)
        return err_set(err, errlen, -EINVAL,
                       "--vsock: path %s is too long for a Unix socket (at most %d bytes, so "
                       "that \"<path>_<port>\" fits too)",
                       path, VSOCK_UDS_PATH_MAX);
    return 0;
}

int vsock_spec_parse(const char *s, struct vsock_spec *out, char *err, size_t errlen)
{
    struct vsock_spec v = {.present = true};
    bool have_cid = false, have_path = false;
    const char *p = s;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > 4 && !strncmp(p, "cid=", 4)) {
            uint64_t c = 0;
            size_t i = 4;
            for (; i < n && p[i] >= '0' && p[i] <= '9' && c <= UINT32_MAX; i++)
                c = c * 10 + (uint64_t)(p[i] - '0');
            if (i != n || c > UINT32_MAX)
                return err_set(err, errlen, -EINVAL, "--vsock: cid=%.*s is not a number",
                               (int)(n - 4), p + 4);
            v.cid = (uint32_t)c;
            have_cid = true;
        } else if (n >= 5 && !strncmp(p, "path=", 5)) {
            /* the path is the rest: it may hold commas */
            n = strlen(p);
            if (n - 5 >= sizeof(v.path))
                return err_set(err, errlen, -EINVAL,
                               "--vsock: path %s is too long for a Unix socket (at most %d "
                               "bytes)",
                               p + 5, VSOCK_UDS_PATH_MAX);
            memcpy(v.path, p + 5, n - 5);
            v.path[n - 5] = 0;
            have_path = true;
            break;
        } else {
            return err_set(err, errlen, -EINVAL,
                           "--vsock: unknown option '%.*s' (expected cid=N,path=PATH)", (int)n, p);
        }
        p += n;
        if (*p == ',') p++;
    }
    if (!have_cid || !have_path)
        return err_set(err, errlen, -EINVAL, "--vsock: expected cid=N,path=PATH (missing %s)",
                       !have_cid ? "cid" : "path");
    int r = vsock_spec_check(v.cid, v.path, err, errlen);
    if (r < 0) return r;
    *out = v;
    return 0;
}

#include "util/paths.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int paths_cache_dir(char *buf, size_t len)
{
    const char *v = getenv("VESSEL_CACHE");
    int n;
    if (v && *v)
        n = snprintf(buf, len, "%s", v);
    else if ((v = getenv("XDG_CACHE_HOME")) && *v)
        n = snprintf(buf, len, "%s/vessel", v);
    else if ((v = getenv("HOME")) && *v)
        n = snprintf(buf, len, "%s/.cache/vessel", v);
    else
        return -ENOENT;
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

#ifndef VESSEL_UTIL_PATHS_H
#define VESSEL_UTIL_PATHS_H
#include <stddef.h>
/* The guest/artifact cache: $VESSEL_CACHE, else $XDG_CACHE_HOME/vessel, else
 * $HOME/.cache/vessel (guest/ scripts use the same rule). 0 or -ENAMETOOLONG/-ENOENT. */
int paths_cache_dir(char *buf, size_t len);
#endif

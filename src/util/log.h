/* Logging with levels, to stderr or a file; never into the guest console stream. */
#ifndef VESSEL_UTIL_LOG_H
#define VESSEL_UTIL_LOG_H
#include <stdarg.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_TRACE };

extern enum log_level log_current_level;
/* Returns 0 or -EINVAL for an unknown name ("error", "warn", "info", "debug", "trace"). */
int log_set_level_name(const char *name);
/* Send log lines to PATH instead of stderr (NULL: back to stderr). Returns 0 or -errno. */
int log_set_file(const char *path);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)                                                                              \
    do {                                                                                           \
        if (log_current_level >= LOG_INFO) log_msg(LOG_INFO, __VA_ARGS__);                         \
    } while (0)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_current_level >= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__);                       \
    } while (0)
#define log_trace(...)                                                                             \
    do {                                                                                           \
        if (log_current_level >= LOG_TRACE) log_msg(LOG_TRACE, __VA_ARGS__);                       \
    } while (0)
#endif

#include "util/log.h"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum log_level log_current_level = LOG_WARN;
static FILE *log_fp;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};

int log_set_level_name(const char *name)
{
    for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            log_current_level = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

int log_set_file(const char *path)
{
    if (!path) { /* back to stderr */
        pthread_mutex_lock(&log_lock);
        if (log_fp) fclose(log_fp);
        log_fp = NULL;
        pthread_mutex_unlock(&log_lock);
        return 0;
    }
    FILE *fp = fopen(path, "a");
    if (!fp) return -errno;
    setvbuf(fp, NULL, _IOLBF, 0);
    pthread_mutex_lock(&log_lock);
    if (log_fp) fclose(log_fp);
    log_fp = fp;
    pthread_mutex_unlock(&log_lock);
    return 0;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    if (lvl > log_current_level) return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    pthread_mutex_lock(&log_lock);
    FILE *out = log_fp ? log_fp : stderr;
    /* At the terminal, start on a fresh line: the guest console may be mid-line and raw. */
    fprintf(out, "%s[%5ld.%03ld] vessel %s: ", log_fp ? "" : "\r", (long)ts.tv_sec,
            ts.tv_nsec / 1000000, level_names[lvl]);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fputs(log_fp ? "\n" : "\r\n", out);
    pthread_mutex_unlock(&log_lock);
}

/* The CLI's side of the REST API: one request over a VM's Unix socket (libcurl). */
#ifndef VESSEL_API_CLIENT_H
#define VESSEL_API_CLIENT_H
#include <stddef.h>

/* Send method path [body] to the socket; *status gets the HTTP status and *resp (may be NULL)
 * the response body (malloc'd, NUL-terminated). Returns 0, or -errno with a one-line reason
 * when no HTTP exchange happened (nobody listening, timeout). */
int api_call(const char *sock, const char *method, const char *path, const char *body,
             long timeout_ms, long *status, char **resp, char *err, size_t errlen);
#endif

/* REST API client (client.h). libcurl is loaded on first use (dlopen), not linked: only the
 * CLI talks to VM processes, and the VM processes (one per VM) would otherwise map libcurl and
 * the ~25 libraries it pulls in (TLS, Kerberos, LDAP...): ~3 MiB of RSS each, for nothing. */
#include "api/client.h"
#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct buf {
    char *p;
    size_t len;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct buf *b = ud;
    size_t n = size * nmemb;
    if (b->len + n > (1u << 20)) return 0; /* a response is small; refuse a flood */
    char *np = realloc(b->p, b->len + n + 1);
    if (!np) return 0;
    memcpy(np + b->len, ptr, n);
    b->len += n;
    np[b->len] = 0;
    b->p = np;
    return n;
}

static struct {
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_perform)(CURL *);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    void (*easy_cleanup)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
} cu;
static bool cu_ok;
static char cu_err[200];

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void global_init(void)
{
    void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(cu_err, sizeof(cu_err), "cannot load libcurl (install libcurl4): %s", dlerror());
        return;
    }
    struct {
        void **fn;
        const char *name;
    } syms[] = {
        {(void **)&cu.global_init, "curl_global_init"},
        {(void **)&cu.easy_init, "curl_easy_init"},
        {(void **)&cu.easy_setopt, "curl_easy_setopt"},
        {(void **)&cu.easy_perform, "curl_easy_perform"},
        {(void **)&cu.easy_getinfo, "curl_easy_getinfo"},
        {(void **)&cu.easy_cleanup, "curl_easy_cleanup"},
        {(void **)&cu.easy_strerror, "curl_easy_strerror"},
        {(void **)&cu.slist_append, "curl_slist_append"},
        {(void **)&cu.slist_free_all, "curl_slist_free_all"},
    };
    for (unsigned i = 0; i < sizeof(syms) / sizeof(syms[0]); i++)
        if (!(*syms[i].fn = dlsym(h, syms[i].name))) {
            snprintf(cu_err, sizeof(cu_err), "libcurl lacks %s", syms[i].name);
            return;
        }
    cu.global_init(CURL_GLOBAL_NOTHING);
    cu_ok = true;
}

int api_call(const char *sock, const char *method, const char *path, const char *body,
             long timeout_ms, long *status, char **resp, char *err, size_t errlen)
{
    pthread_once(&once, global_init);
    if (!cu_ok) {
        snprintf(err, errlen, "%s", cu_err);
        return -ENOSYS;
    }
    CURL *c = cu.easy_init();
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    char url[512];
    snprintf(url, sizeof(url), "http://localhost%s", path);
    struct buf b = {0};
    struct curl_slist *hdr = NULL;
    cu.easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
    cu.easy_setopt(c, CURLOPT_URL, url);
    cu.easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    cu.easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    cu.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    cu.easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    cu.easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (body) {
        hdr = cu.slist_append(hdr, "Content-Type: application/json");
        cu.easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
        cu.easy_setopt(c, CURLOPT_POSTFIELDS, body);
        cu.easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    CURLcode rc = cu.easy_perform(c);
    int r = 0;
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "%s", cu.easy_strerror(rc));
        r = rc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -ECONNREFUSED;
        free(b.p);
    } else {
        cu.easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        if (resp)
            *resp = b.p ? b.p : strdup("");
        else
            free(b.p);
    }
    cu.slist_free_all(hdr);
    cu.easy_cleanup(c);
    return r;
}

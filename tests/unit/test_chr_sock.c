/* The detached VM's console (backend/chr/sock.c): bounded log, one client, input delivery. */
#include "api/api.h"
#include "backend/chr/chr.h"
#include "test.h"
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static char rx_buf[256];
static size_t rx_len;
static size_t rx_take(void *opaque, const uint8_t *buf, size_t len)
{
    (void)opaque;
    size_t n = len < sizeof(rx_buf) - rx_len ? len : sizeof(rx_buf) - rx_len;
    memcpy(rx_buf + rx_len, buf, n);
    __atomic_store_n(&rx_len, rx_len + n, __ATOMIC_RELEASE);
    return n;
}

static int connect_to(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static ssize_t read_some(int fd, char *buf, size_t len, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0) return -1;
    return read(fd, buf, len);
}

TEST(chr_sock_log_bounded_and_client)
{
    char dir[] = "/tmp/vessel-unit-sock-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char sock[128], log[128], old[140];
    snprintf(sock, sizeof(sock), "%s/c.sock", dir);
    snprintf(log, sizeof(log), "%s/console.log", dir);
    snprintf(old, sizeof(old), "%s.1", log);
    char err[256];
    int lfd = api_listen_unix(sock, err, sizeof(err));
    CHECK(lfd >= 0);
    struct chr *c = chr_sock_create(lfd, log, 8192);
    CHECK(c != NULL);
    if (!c) return;
    chr_set_receiver(c, rx_take, NULL);
    /* 3 x the bound: the log and its one rotation hold at most 2 x 8192 */
    uint8_t line[100];
    memset(line, 'x', sizeof(line));
    for (int i = 0; i < 250; i++)
        chr_write(c, line, sizeof(line));
    struct stat a, b;
    CHECK_EQ(stat(log, &a), 0);
    CHECK_EQ(stat(old, &b), 0);
    CHECK(a.st_size <= 8192 && b.st_size <= 8192 && b.st_size > 4096);
    /* a client sees output written after it connected, and its bytes reach the guest */
    int fd = connect_to(sock);
    CHECK(fd >= 0);
    usleep(100 * 1000); /* the console thread accepts it */
    chr_write(c, (const uint8_t *)"hello", 5);
    char buf[64] = "";
    ssize_t n = read_some(fd, buf, sizeof(buf) - 1, 2000);
    CHECK_EQ(n, 5);
    CHECK(!memcmp(buf, "hello", 5));
    CHECK_EQ(write(fd, "typed", 5), 5);
    for (int i = 0; i < 200 && __atomic_load_n(&rx_len, __ATOMIC_ACQUIRE) < 5; i++)
        usleep(10 * 1000);
    CHECK_EQ(rx_len, 5);
    CHECK(!memcmp(rx_buf, "typed", 5));
    /* a second client is told the console is busy and closed */
    int fd2 = connect_to(sock);
    CHECK(fd2 >= 0);
    n = read_some(fd2, buf, sizeof(buf) - 1, 2000);
    CHECK(n > 0);
    if (n > 0) {
        buf[n] = 0;
        CHECK(strstr(buf, "in use") != NULL);
    }
    close(fd2);
    /* half-close: the client still gets output (`echo cmd | vessel console`) */
    shutdown(fd, SHUT_WR);
    usleep(100 * 1000);
    chr_write(c, (const uint8_t *)"after", 5);
    n = read_some(fd, buf, sizeof(buf) - 1, 2000);
    CHECK_EQ(n, 5);
    close(fd);
    chr_destroy(c);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK_EQ(system(cmd), 0);
}

/* The VM process's monitor (supervise.h). */
#include "mgr/supervise.h"
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static volatile pid_t child;

static void forward(int sig)
{
    if (child > 0) kill(child, sig);
}

int supervise_fork(void (*cleanup)(void *ctx, bool crashed), void *ctx, int close_fd)
{
    struct termios tio;
    bool tty = isatty(0) && tcgetattr(0, &tio) == 0;
    pid_t pid = fork();
    if (pid < 0) return -errno;
    if (pid == 0) return 0;
    child = pid;
    if (close_fd >= 0) close(close_fd);
    struct sigaction sa = {.sa_handler = forward};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    bool crashed = WIFSIGNALED(status);
    /* a VM process killed by its seccomp filter cannot restore the terminal itself */
    if (crashed && tty) tcsetattr(0, TCSANOW, &tio);
    if (cleanup) cleanup(ctx, crashed);
    if (crashed) {
        int sig = WTERMSIG(status);
        signal(sig, SIG_DFL);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, sig);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        raise(sig);
    }
    exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

/* The master process and its workers. See supervise.h. */
#include "common/supervise.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/daemon.h"
#include "common/log.h"

#define MAX_LISTENERS 16
#define READY_TIMEOUT_MS 60000

typedef struct {
    char bind[64];
    int port;
    int fd;
} listener;

static listener ls[MAX_LISTENERS];
static size_t nls;

/* The listener addresses a configuration names; -1 if it cannot be read
 * (the -t check says why). */
static int config_listeners(const char *config, listener *out)
{
    jerr e = {0};
    json_t *root = jparse_file(config, 1u << 20, &e);
    json_t *l = root ? json_object_get(root, "listeners") : NULL;
    int n = 0;
    const char *name;
    json_t *v;
    json_object_foreach(l, name, v) {
        http_server_conf c; /* read as the daemon reads it, defaults and all */
        bool present;
        if (n >= MAX_LISTENERS || !daemon_listener_conf(root, name, true, 0, &c, &present, &e)) {
            n = -1;
            break;
        }
        snprintf(out[n].bind, sizeof out[n].bind, "%s", c.bind);
        out[n].port = c.port;
        out[n].fd = -1;
        n++;
    }
    json_decref(root);
    return l ? n : -1;
}

static int open_listener(const listener *l)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    socklen_t len;
    if (inet_pton(AF_INET, l->bind, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)l->port);
        len = sizeof *a4;
    } else if (inet_pton(AF_INET6, l->bind, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)l->port);
        len = sizeof *a6;
    } else {
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0); /* its workers poll it */
    int one = 1;
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 4096) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool same_listeners(const listener *a, size_t na, const listener *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        bool found = false;
        for (size_t j = 0; j < nb && !found; j++)
            found = a[i].port == b[j].port && strcmp(a[i].bind, b[j].bind) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* Runs "<binary> -t -c config": true if the configuration is valid. Its
 * complaint goes to our stderr (at start) or into *why (on a reload). */
static bool check_config(char **argv, const char *config, char *why, size_t cap)
{
    int p[2] = {-1, -1};
    if (why && pipe2(p, O_CLOEXEC) != 0)
        return false;
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 1);
        if (why)
            dup2(p[1], 2);
        char *args[] = {argv[0], "-t", "-c", (char *)config, NULL};
        setenv("CDNI_WORKER", "check", 1);
        execv("/proc/self/exe", args);
        _exit(127);
    }
    if (why) {
        close(p[1]);
        size_t n = 0;
        ssize_t r;
        while (pid > 0 && n + 1 < cap && (r = read(p[0], why + n, cap - 1 - n)) > 0)
            n += (size_t)r;
        why[n] = 0;
        while (n && (why[n - 1] == '\n' || why[n - 1] == '\r'))
            why[--n] = 0;
        close(p[0]);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return false;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* A worker with the sockets handed down; *ready_fd: where it says it serves. */
static pid_t spawn_worker(char **argv, int *ready_fd)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    pid_t master = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != master)
            _exit(1);
        char fds[MAX_LISTENERS * 100] = "", one[100], rfd[16];
        for (size_t i = 0; i < nls; i++) {
            fcntl(ls[i].fd, F_SETFD, 0); /* kept across exec */
            snprintf(one, sizeof one, "%s%.63s|%d=%d", i ? ";" : "", ls[i].bind, ls[i].port, ls[i].fd);
            strncat(fds, one, sizeof fds - strlen(fds) - 1);
        }
        fcntl(p[1], F_SETFD, 0);
        snprintf(rfd, sizeof rfd, "%d", p[1]);
        setenv("CDNI_WORKER", "1", 1);
        setenv("CDNI_LISTEN_FDS", fds, 1);
        setenv("CDNI_READY_FD", rfd, 1);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return -1;
    }
    *ready_fd = p[0];
    return pid;
}

static int exit_status(int st) { return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 1; }

/* Waits for the worker's ready byte; false if it died or took too long
 * (then it is gone, its status in *st). */
static bool await_ready(pid_t pid, int rfd, int *st)
{
    long long waited = 0;
    bool ok = false;
    for (;;) {
        struct pollfd pf = {rfd, POLLIN, 0};
        int r = poll(&pf, 1, 100);
        if (r > 0) {
            char c;
            ok = read(rfd, &c, 1) == 1;
            break; /* a byte: it serves; end of file: it exited before */
        }
        if ((waited += 100) >= READY_TIMEOUT_MS)
            break;
    }
    close(rfd);
    if (!ok) {
        kill(pid, SIGKILL);
        waitpid(pid, st, 0);
    }
    return ok;
}

int supervise(int argc, char **argv, const char *name, const char *config)
{
    (void)argc;
    const char *nm = getenv("CDNI_NO_MASTER");
    if (getenv("CDNI_WORKER") || (nm && strcmp(nm, "1") == 0))
        return -1;
    log_setup(name, LOG_INFO);
    if (!check_config(argv, config, NULL, 0))
        return 1;
    int n = config_listeners(config, ls);
    if (n < 0)
        return 1;
    nls = (size_t)n;
    for (size_t i = 0; i < nls; i++)
        if ((ls[i].fd = open_listener(&ls[i])) < 0) {
            char port[16];
            snprintf(port, sizeof port, "%d", ls[i].port);
            log_kv(LOG_ERROR, "cannot listen", "bind", ls[i].bind, "port", port, "detail", strerror(errno), NULL);
            return 1;
        }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int rfd, st = 0;
    pid_t worker = spawn_worker(argv, &rfd);
    if (worker < 0 || !await_ready(worker, rfd, &st))
        return worker < 0 ? 1 : exit_status(st);
    char wp[16];
    snprintf(wp, sizeof wp, "%d", (int)worker);
    log_kv(LOG_INFO, "master: worker serving", "pid", wp, NULL);
    pid_t old = 0; /* a previous worker still draining */
    for (;;) {
        siginfo_t si;
        struct timespec to = {1, 0};
        int sig = sigtimedwait(&set, &si, &to);
        if (sig == SIGCHLD || sig < 0) {
            pid_t p;
            while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
                if (p == old) {
                    old = 0;
                } else if (p == worker) {
                    char code[16];
                    snprintf(code, sizeof code, "%d", exit_status(st));
                    log_kv(LOG_ERROR, "master: the worker died; exiting with its status", "status", code, NULL);
                    return exit_status(st);
                }
            }
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT) {
            for (size_t i = 0; i < nls; i++) /* stopping: new connections are refused from now on */
                close(ls[i].fd);
            kill(worker, SIGTERM);
            if (old)
                kill(old, SIGTERM);
            int wst = 0;
            waitpid(worker, &wst, 0);
            if (old)
                waitpid(old, &st, 0);
            return exit_status(wst);
        }
        if (sig != SIGHUP)
            continue;
        /* a reload */
        char why[1024];
        listener now[MAX_LISTENERS];
        int nn = -1;
        if (!check_config(argv, config, why, sizeof why)) {
            log_kv(LOG_ERROR, "reload refused: the configuration is not valid; the running one stays", "detail",
                   why, NULL);
            continue;
        }
        nn = config_listeners(config, now);
        if (nn < 0 || !same_listeners(ls, nls, now, (size_t)nn)) {
            log_kv(LOG_ERROR, "reload refused: listener addresses change only with a restart; the running "
                              "configuration stays", NULL);
            continue;
        }
        if (old) { /* the one before is still draining: it goes now */
            kill(old, SIGKILL);
            waitpid(old, &st, 0);
            old = 0;
        }
        pid_t next = spawn_worker(argv, &rfd);
        if (next < 0 || !await_ready(next, rfd, &st)) {
            log_kv(LOG_ERROR, "reload failed: the new worker did not start; the running one stays", NULL);
            continue;
        }
        kill(worker, SIGTERM); /* it drains what it holds; the new one takes new connections */
        old = worker;
        worker = next;
        snprintf(wp, sizeof wp, "%d", (int)worker);
        log_kv(LOG_INFO, "reloaded", "pid", wp, NULL);
    }
}

int supervise_listen_fd(const char *bind, int port)
{
    const char *s = getenv("CDNI_LISTEN_FDS");
    char want[96];
    int wl = snprintf(want, sizeof want, "%s|%d=", bind, port);
    for (const char *p = s; p && *p;) {
        if (strncmp(p, want, (size_t)wl) == 0)
            return atoi(p + wl);
        p = strchr(p, ';');
        p = p ? p + 1 : NULL;
    }
    return -1;
}

void supervise_ready(void)
{
    const char *s = getenv("CDNI_READY_FD");
    if (!s)
        return;
    int fd = atoi(s);
    if (write(fd, "R", 1) != 1) {
        /* the master is gone: PR_SET_PDEATHSIG ends us */
    }
    close(fd);
    unsetenv("CDNI_READY_FD");
}

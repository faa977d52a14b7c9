/* Reload without dropping a connection, and stopping by draining.
 *
 * A daemon runs as two processes: a small master, which owns the
 * listening sockets, and a worker (the same binary, started again with the
 * sockets handed down), which does all the work. On SIGHUP the master
 * checks the configuration file and the files it names (by running the
 * binary with -t); if it is valid and names the same listener addresses,
 * it starts a new worker on the same sockets, waits until that worker says
 * it is serving, then asks the old one to drain. New connections are
 * accepted by the new worker from the moment it serves (the kernel holds
 * them in the listen queue meanwhile); connections the old worker holds are
 * finished there: requests in flight are answered (with Connection: close),
 * idle kept-alive connections are closed, within the drain bound. An
 * invalid configuration is refused, its JSON path in the log, and the old
 * worker stays. Everything the configuration says is reloaded this way —
 * peers, tokens, keys, certificates, routing rules, egress policy — except
 * listener addresses and ports, which need a restart.
 *
 * SIGTERM or SIGINT to the master drains the worker and exits with its
 * status (0 after a clean drain). A worker that dies unexpectedly takes
 * the master with it (with its status), so a supervisor sees the failure.
 * The worker dies with the master (PR_SET_PDEATHSIG). */
#ifndef COMMON_SUPERVISE_H
#define COMMON_SUPERVISE_H

#include <stdbool.h>

/* Called from main after the arguments are parsed (not for -t). In the
 * master: runs it and returns its exit status (>= 0). In a worker, or
 * where supervision is off (CDNI_NO_MASTER=1 in the environment): -1, and
 * main goes on. */
int supervise(int argc, char **argv, const char *name, const char *config);

/* In a worker: the listening socket the master holds for bind:port, or -1
 * (none handed down: the worker binds it itself). */
int supervise_listen_fd(const char *bind, int port);

/* In a worker, once every listener serves: the master may now stop the
 * previous worker. */
void supervise_ready(void);

#endif

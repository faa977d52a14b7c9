/* What every daemon does around its own work: the listener and limits
 * sections of its JSON config, operator endpoints (/healthz, /readyz,
 * /metrics), and waiting for SIGINT/SIGTERM. */
#ifndef COMMON_DAEMON_H
#define COMMON_DAEMON_H

#include <jansson.h>
#include <stdbool.h>

#include "common/http_client.h"
#include "common/http_server.h"
#include "common/jcheck.h"
#include "common/metrics.h"
#include "common/store.h"
#include "common/url.h"

/* listeners.<name> = {"bind": "127.0.0.1", "port": 8080,
 * "max_header_bytes": N, "max_connections_per_ip": N} plus the shared
 * "limits" (max_body_bytes, max_header_bytes, max_connections, timeout_s,
 * header_timeout_s: default 10, max_connections_per_ip: default 256, 0 for
 * none) and "threads" members of the config root. The request-head memory of a listener is its own
 * max_header_bytes, else limits.max_header_bytes, else header_default
 * (0: 32 KiB). Listeners facing end users pass a smaller default: the
 * memory is cleared for every request on a kept-alive connection. */
bool daemon_listener_conf(json_t *root, const char *name, bool required, size_t header_default,
                          http_server_conf *out, bool *present, jerr *e);

/* listeners.<name>.tls = {"certificates": [{"cert": PEM, "key": PEM}, ...]
 * (SNI picks; the first is the default), "client_ca": PEM bundle,
 * "client_certificates": "required" (the default with a client_ca) or
 * "optional", "min_version": "1.2" (default) or "1.3"}. The files are read
 * and checked here. */
bool daemon_tls_conf(json_t *o, const char *path, tls_conf *out, jerr *e);
/* A peer's client certificate: {"san", "subject", "spki": "sha256//..."}. */
bool daemon_peer_cert(json_t *o, const char *path, tls_peer_id *out, jerr *e);
/* Our side of outbound TLS: {"ca": PEM bundle (default: the system's),
 * "cert", "key": our client certificate, "pin": "sha256//..."}, members
 * not given taken from base (may be NULL); o NULL: base as it is. */
bool daemon_client_tls(json_t *o, const char *path, const http_tls_client *base, http_tls_client *out, jerr *e);

/* A peer entry's "client_cert" (into *cert, *has_cert) and "tls" (into
 * *tls, members not given from base), with path the entry's. */
bool daemon_peer_tls(json_t *peer, const char *path, const http_tls_client *base, tls_peer_id *cert, bool *has_cert,
                     http_tls_client *tls, jerr *e);

/* root's "redis": a URL (see common/store.h), or {"url", "min_replicas_acked",
 * "ack_timeout_ms", "sentinel_password"}, which is checked and folded into
 * one URL (written back as the member's string) in *url. */
bool daemon_redis_conf(json_t *root, const char **url, jerr *e);

/* Host names that are this daemon's own: the addresses its listeners bind
 * (not the wildcards) and the root's "reserved_hosts" entries, added to
 * out; false with e naming a bad entry. */
bool daemon_own_names(json_t *root, const http_server_conf *const *listeners, size_t n, url_names *out, jerr *e);

/* Readiness: fill *status ("ready", "degraded", "starting") and extra detail
 * members into `detail`; return true when the instance can serve. */
typedef bool (*daemon_ready_fn)(void *ctx, const char **status, json_t *detail);

typedef struct {
    metrics *metrics;
    daemon_ready_fn ready;
    void *ready_ctx;
    store *store; /* its node (the Sentinel master) on /readyz and /metrics; may be NULL */
} daemon_ops;

/* Three routes: GET /healthz and /readyz (public), GET /metrics. */
void daemon_ops_routes(daemon_ops *ops, http_routes *out);

/* "-c FILE", "-t" (check the config and exit), "-h". Returns -1 to go on
 * with *config set, or the exit status for main to return. */
int daemon_parse_args(int argc, char **argv, const char *name, const char **config,
                      bool *check_only);

/* Blocks SIGINT/SIGTERM in the calling thread (call first in main, before
 * any thread starts) so that daemon_wait_for_signal can take them. */
void daemon_block_signals(void);
int daemon_wait_for_signal(void);

#endif

/* Config sections and operator endpoints shared by the daemons. */
#include "common/daemon.h"
#include "common/clock.h"
#include "common/store.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* An optional integer member in [lo, hi] into *dst, which keeps its value when absent. */
static bool get_uint(json_t *o, const char *key, const char *path, long long lo, long long hi, unsigned *dst, jerr *e)
{
    long long v = *dst;
    if (!jget_int(o, key, path, false, lo, hi, &v, e))
        return false;
    *dst = (unsigned)v;
    return true;
}

static bool get_size(json_t *o, const char *key, const char *path, long long lo, long long hi, size_t *dst, jerr *e)
{
    long long v = (long long)*dst;
    if (!jget_int(o, key, path, false, lo, hi, &v, e))
        return false;
    *dst = (size_t)v;
    return true;
}

bool daemon_listener_conf(json_t *root, const char *name, bool required, size_t header_default,
                          http_server_conf *out, bool *present, jerr *e)
{
    static const char *const lkeys[] = {"bind", "port", "max_header_bytes", "cors_origins", "max_connections_per_ip",
                                        "tls", NULL};
    static const char *const limkeys[] = {"max_body_bytes", "max_header_bytes", "max_connections",
                                          "timeout_s", "header_timeout_s", "max_connections_per_ip", "drain_timeout_s",
                                          NULL};
    json_t *ls = NULL, *l = NULL, *lim = NULL;
    *present = false;
    memset(out, 0, sizeof *out);
    if (!jget_obj(root, "listeners", "$", true, &ls, e) ||
        !jget_obj(ls, name, "$.listeners", required, &l, e))
        return false;
    if (!l)
        return true;
    char path[JPATH_MAX];
    jpath_key(path, "$.listeners", name);
    const char *bind = "127.0.0.1";
    long long port = 0, threads = 2;
    if (!jonly(l, path, lkeys, e) || !jget_str(l, "bind", path, false, &bind, e) ||
        !jget_int(l, "port", path, true, 1, 65535, &port, e) ||
        !jget_int(root, "threads", "$", false, 1, 256, &threads, e))
        return false;
    out->name = name;
    out->bind = bind;
    out->port = (int)port;
    out->threads = (unsigned)threads;
    out->max_body = 4u << 20;
    out->max_header = header_default ? header_default : 32768;
    out->max_connections = 4096;
    out->timeout_s = 30;
    out->head_timeout_s = 10;
    out->max_per_ip = 256;
    out->drain_s = 10;
    if (!jget_obj(root, "limits", "$", false, &lim, e))
        return false;
    if (lim && (!jonly(lim, "$.limits", limkeys, e) ||
                !get_size(lim, "max_body_bytes", "$.limits", 1024, 1ll << 30, &out->max_body, e) ||
                !get_size(lim, "max_header_bytes", "$.limits", 4096, 1 << 20, &out->max_header, e) ||
                !get_uint(lim, "max_connections", "$.limits", 1, 1000000, &out->max_connections, e) ||
                !get_uint(lim, "timeout_s", "$.limits", 1, 3600, &out->timeout_s, e) ||
                !get_uint(lim, "header_timeout_s", "$.limits", 1, 3600, &out->head_timeout_s, e) ||
                !get_uint(lim, "max_connections_per_ip", "$.limits", 0, 1000000, &out->max_per_ip, e) ||
                !get_uint(lim, "drain_timeout_s", "$.limits", 0, 3600, &out->drain_s, e)))
        return false;
    /* the listener's own, over the shared limits */
    if (!get_uint(l, "max_connections_per_ip", path, 0, 1000000, &out->max_per_ip, e) ||
        !get_size(l, "max_header_bytes", path, 4096, 1 << 20, &out->max_header, e))
        return false;
    json_t *cors = NULL;
    if (!jget_arr(l, "cors_origins", path, false, &cors, e))
        return false;
    size_t i;
    json_t *o;
    json_array_foreach(cors, i, o) {
        char p[JPATH_MAX + 32];
        snprintf(p, sizeof p, "%s.cors_origins[%zu]", path, i);
        const char *s = json_string_value(o);
        if (i >= HTTP_MAX_CORS)
            return jfail(e, p, "at most 8 origins");
        const char *auth = !s ? NULL : strncmp(s, "http://", 7) == 0 ? s + 7 : strncmp(s, "https://", 8) == 0 ? s + 8 : NULL;
        bool ok = s && (strcmp(s, "*") == 0 || (auth && *auth && !strchr(auth, '/')));
        if (!ok)
            return jfail(e, p, "an origin: \"*\" or scheme://host[:port], without a path");
        out->cors_origins[i] = s;
    }
    json_t *tls = NULL;
    if (!jget_obj(l, "tls", path, false, &tls, e))
        return false;
    if (tls) {
        char tp[JPATH_MAX];
        jpath_key(tp, path, "tls");
        if (!daemon_tls_conf(tls, tp, &out->tls, e))
            return false;
    }
    *present = true;
    return true;
}

bool daemon_tls_conf(json_t *o, const char *path, tls_conf *out, jerr *e)
{
    static const char *const keys[] = {"certificates", "client_ca", "client_certificates", "min_version", NULL};
    static const char *const ckeys[] = {"cert", "key", NULL};
    json_t *certs = NULL;
    const char *ca = NULL, *mode = NULL, *minv = "1.2";
    memset(out, 0, sizeof *out);
    if (!jonly(o, path, keys, e) || !jget_arr(o, "certificates", path, true, &certs, e) ||
        !jget_str(o, "client_ca", path, false, &ca, e) || !jget_str(o, "client_certificates", path, false, &mode, e) ||
        !jget_str(o, "min_version", path, false, &minv, e))
        return false;
    char cp[JPATH_MAX];
    jpath_key(cp, path, "certificates");
    if (json_array_size(certs) == 0 || json_array_size(certs) > TLS_MAX_CERTS)
        return jfail(e, cp, "1 to %d certificates (chain and key); the first is the default", TLS_MAX_CERTS);
    size_t i;
    json_t *c;
    json_array_foreach(certs, i, c) {
        char ip[JPATH_MAX];
        jpath_idx(ip, cp, i);
        if (!json_is_object(c))
            return jfail(e, ip, "expected {\"cert\": PEM file, \"key\": PEM file}");
        if (!jonly(c, ip, ckeys, e) || !jget_str(c, "cert", ip, true, &out->certs[i].cert, e) ||
            !jget_str(c, "key", ip, true, &out->certs[i].key, e))
            return false;
        out->ncerts = i + 1;
    }
    out->client_ca = ca;
    char mp[JPATH_MAX];
    jpath_key(mp, path, "client_certificates");
    if (!mode)
        out->client = ca ? TLS_CLIENT_REQUIRED : TLS_CLIENT_NONE;
    else if (strcmp(mode, "required") == 0)
        out->client = TLS_CLIENT_REQUIRED;
    else if (strcmp(mode, "optional") == 0)
        out->client = TLS_CLIENT_OPTIONAL;
    else
        return jfail(e, mp, "\"required\" or \"optional\"");
    if (!ca && mode)
        return jfail(e, mp, "needs client_ca: the CAs client certificates must chain to");
    if (strcmp(minv, "1.2") != 0 && strcmp(minv, "1.3") != 0) {
        jpath_key(mp, path, "min_version");
        return jfail(e, mp, "\"1.2\" or \"1.3\"");
    }
    out->tls13_only = strcmp(minv, "1.3") == 0;
    /* the files are read now, so a bad one is refused with its path */
    char err[256];
    tls_store *st = tls_store_load(out, err, sizeof err);
    if (!st)
        return jfail(e, path, "%s", err);
    tls_store_free(st);
    return true;
}

bool daemon_peer_cert(json_t *o, const char *path, tls_peer_id *out, jerr *e)
{
    static const char *const keys[] = {"san", "subject", "spki", NULL};
    const char *spki = NULL;
    memset(out, 0, sizeof *out);
    if (!json_is_object(o))
        return jfail(e, path, "expected {\"san\", \"subject\", \"spki\"}");
    if (!jonly(o, path, keys, e) || !jget_str(o, "san", path, false, &out->san, e) ||
        !jget_str(o, "subject", path, false, &out->subject, e) || !jget_str(o, "spki", path, false, &spki, e))
        return false;
    if (spki) {
        char sp[JPATH_MAX];
        jpath_key(sp, path, "spki");
        if (!tls_parse_spki(spki, out->spki))
            return jfail(e, sp, "\"sha256//\" and the base64 SHA-256 of the public key, or 64 hex digits");
        out->has_spki = true;
    }
    if (!out->san && !out->subject && !out->has_spki)
        return jfail(e, path, "name at least one of san, subject, spki");
    return true;
}

bool daemon_peer_tls(json_t *peer, const char *path, const http_tls_client *base, tls_peer_id *cert, bool *has_cert,
                     http_tls_client *tls, jerr *e)
{
    char p[JPATH_MAX];
    json_t *cc = json_object_get(peer, "client_cert");
    *has_cert = false;
    if (cc) {
        jpath_key(p, path, "client_cert");
        if (!daemon_peer_cert(cc, p, cert, e))
            return false;
        *has_cert = true;
    }
    jpath_key(p, path, "tls");
    return daemon_client_tls(json_object_get(peer, "tls"), p, base, tls, e);
}

bool daemon_client_tls(json_t *o, const char *path, const http_tls_client *base, http_tls_client *out, jerr *e)
{
    static const char *const keys[] = {"ca", "cert", "key", "pin", NULL};
    if (base)
        *out = *base;
    else
        memset(out, 0, sizeof *out);
    if (!o)
        return true;
    if (!json_is_object(o))
        return jfail(e, path, "expected {\"ca\", \"cert\", \"key\", \"pin\"}");
    if (!jonly(o, path, keys, e) || !jget_str(o, "ca", path, false, &out->ca, e) ||
        !jget_str(o, "cert", path, false, &out->cert, e) || !jget_str(o, "key", path, false, &out->key, e) ||
        !jget_str(o, "pin", path, false, &out->pin, e))
        return false;
    if (!out->cert != !out->key)
        return jfail(e, path, "cert and key go together");
    const char *files[] = {out->ca, out->cert, out->key};
    for (size_t i = 0; i < 3; i++)
        if (files[i] && access(files[i], R_OK) != 0)
            return jfail(e, path, "cannot read %s", files[i]);
    if (out->pin && strncmp(out->pin, "sha256//", 8) != 0)
        return jfail(e, path, "pin: \"sha256//<base64>\" (several joined by ';')");
    return true;
}

bool daemon_redis_conf(json_t *root, const char **url, jerr *e)
{
    json_t *v = json_object_get(root, "redis");
    store_url u;
    if (json_is_object(v)) {
        static const char *const keys[] = {"url", "min_replicas_acked", "ack_timeout_ms", "sentinel_password", NULL};
        const char *base = NULL, *sp = NULL;
        long long need = -1, tmo = -1;
        if (!jonly(v, "$.redis", keys, e) || !jget_str(v, "url", "$.redis", true, &base, e) ||
            !jget_int(v, "min_replicas_acked", "$.redis", false, 0, 64, &need, e) ||
            !jget_int(v, "ack_timeout_ms", "$.redis", false, 1, 600000, &tmo, e) ||
            !jget_str(v, "sentinel_password", "$.redis", false, &sp, e))
            return false;
        if (strchr(base, '?'))
            return jfail(e, "$.redis.url", "give the options as members of $.redis, not in the URL");
        char composed[4200];
        int n = snprintf(composed, sizeof composed, "%s", base);
        const char *sep = "?";
        if (need >= 0)
            n += snprintf(composed + n, sizeof composed - (size_t)n, "%smin_replicas_acked=%lld", sep, need), sep = "&";
        if (tmo >= 0)
            n += snprintf(composed + n, sizeof composed - (size_t)n, "%sack_timeout_ms=%lld", sep, tmo), sep = "&";
        if (sp && *sp)
            n += snprintf(composed + n, sizeof composed - (size_t)n, "%ssentinel_password=%s", sep, sp);
        if (n < 0 || (size_t)n >= sizeof composed || !store_parse_url(composed, (size_t)n, &u))
            return jfail(e, "$.redis.url", "expected redis://host:port[/db], unix:///path or "
                                           "redis+sentinel://host:port[,host:port...]/master-name[/db]");
        if (sp && u.kind != STORE_URL_SENTINEL)
            return jfail(e, "$.redis.sentinel_password", "only with a redis+sentinel:// URL");
        json_object_set_new(root, "redis", json_string(composed));
        *url = json_string_value(json_object_get(root, "redis"));
        return true;
    }
    if (!jget_str(root, "redis", "$", true, url, e))
        return false;
    if (!store_parse_url(*url, strlen(*url), &u))
        return jfail(e, "$.redis", "expected redis://host:port[/db], unix:///path or "
                                   "redis+sentinel://host:port[,host:port...]/master-name[/db] (options after ?)");
    return true;
}

bool daemon_own_names(json_t *root, const http_server_conf *const *listeners, size_t n, url_names *out, jerr *e)
{
    for (size_t i = 0; i < n; i++) {
        const char *b = listeners[i]->bind;
        if (b && strcmp(b, "0.0.0.0") != 0 && strcmp(b, "::") != 0) {
            char h[80];
            snprintf(h, sizeof h, strchr(b, ':') ? "[%s]" : "%s", b);
            url_names_add(out, h, false);
        }
    }
    json_t *rh = NULL;
    if (!jget_arr(root, "reserved_hosts", "$", false, &rh, e) || (rh && !jstr_array(rh, "$.reserved_hosts", e)))
        return false;
    size_t i;
    json_t *h;
    json_array_foreach(rh, i, h)
        if (!url_names_add(out, json_string_value(h), false)) {
            char p[JPATH_MAX];
            jpath_idx(p, "$.reserved_hosts", i);
            return jfail(e, p, "not a host name or address");
        }
    return true;
}

static void on_healthz(http_req *r, void *ctx)
{
    http_reply_json(r, 200, NULL, json_pack("{s:s}", "status", "alive"));
}

/* Which Redis node is in use, and (Sentinel) when the master last changed. */
static json_t *redis_report(store *st)
{
    char node[300], when[CLOCK_ISO8601_LEN];
    long long changed = 0;
    unsigned long switches = 0;
    bool sentinel = store_master(st, node, sizeof node, &changed, &switches);
    json_t *o = json_pack("{s:s, s:b, s:i}", "node", node, "sentinel", sentinel, "min_replicas_acked",
                          store_replicas_needed(st));
    if (sentinel) {
        if (changed) {
            clock_iso8601(changed / 1000, when);
            json_object_set_new(o, "changed", json_string(when));
        }
        json_object_set_new(o, "switches", json_integer((json_int_t)switches));
    }
    return o;
}

/* cdni_redis_master{node} 1 for the node in use (0 for those before it),
 * the wall time of the last change and the switches seen. */
static void redis_metrics(metrics *m, store *st)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static metric_cell *cur;
    char node[300], labels[360];
    long long changed = 0;
    unsigned long switches = 0;
    bool sentinel = store_master(st, node, sizeof node, &changed, &switches);
    snprintf(labels, sizeof labels, "node=\"%s\"", node);
    pthread_mutex_lock(&mu);
    metric_cell *c = metrics_series(m, "cdni_redis_master", labels, "gauge",
                                    "1 for the Redis node this instance writes to (the Sentinel master)");
    if (cur && cur != c)
        metric_set(cur, 0);
    if (c)
        metric_set(c, 1);
    cur = c;
    pthread_mutex_unlock(&mu);
    if (sentinel) {
        metric_set(metrics_series(m, "cdni_redis_master_changed_seconds", "", "gauge",
                                  "when the Sentinel master last changed (Unix time)"),
                   (uint64_t)(changed / 1000));
        metric_set(metrics_series(m, "cdni_redis_master_switches_total", "", "counter",
                                  "Sentinel master switches followed since start"),
                   switches);
    }
}

static void on_readyz(http_req *r, void *ctx)
{
    daemon_ops *ops = ctx;
    const char *status = "ready";
    json_t *detail = json_object();
    bool ok = ops->ready ? ops->ready(ops->ready_ctx, &status, detail) : true;
    if (ops->store)
        json_object_set_new(detail, "redis_node", redis_report(ops->store));
    bool expiring;
    json_t *certs = http_tls_report(&expiring);
    if (json_array_size(certs)) {
        json_object_set_new(detail, "certificates", certs);
        if (expiring) /* still serving, but someone must renew */
            json_object_set_new(detail, "warning", json_string("a certificate expires within 14 days"));
    } else {
        json_decref(certs);
    }
    json_object_set_new(detail, "status", json_string(status));
    http_reply_json(r, ok ? 200 : 503, NULL, detail);
}

static void on_metrics(http_req *r, void *ctx)
{
    daemon_ops *ops = ctx;
    if (ops->store)
        redis_metrics(ops->metrics, ops->store);
    size_t len = 0;
    char *text = metrics_render(ops->metrics, &len);
    if (!text) {
        http_reply_problem(r, 503, "Service Unavailable", "out of memory", NULL);
        return;
    }
    http_reply_take(r, 200, "text/plain; version=0.0.4", text, len);
}

void daemon_ops_routes(daemon_ops *ops, http_routes *out)
{
    http_routes_add(out, (http_route){"GET", "/healthz", on_healthz, ops, true});
    http_routes_add(out, (http_route){"GET", "/readyz", on_readyz, ops, true});
    http_routes_add(out, (http_route){"GET", "/metrics", on_metrics, ops, false});
}

void daemon_block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP); /* the master's to act on; a worker's, left pending */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int daemon_wait_for_signal(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig = 0;
    sigwait(&set, &sig);
    return sig;
}

static void usage(FILE *f, const char *name)
{
    fprintf(f, "usage: %s -c CONFIG.json\n"
               "  -c, --config FILE   configuration (specs/%s-config.schema.json)\n"
               "  -t, --check         check the configuration and exit\n"
               "  -h, --help          this text\n", name, name);
}

int daemon_parse_args(int argc, char **argv, const char *name, const char **config,
                      bool *check_only)
{
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"check", no_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    *config = NULL;
    *check_only = false;
    while ((c = getopt_long(argc, argv, "c:th", opts, NULL)) != -1) {
        if (c == 'c')
            *config = optarg;
        else if (c == 't')
            *check_only = true;
        else {
            usage(c == 'h' ? stdout : stderr, name);
            return c == 'h' ? 0 : 2;
        }
    }
    if (!*config) {
        usage(stderr, name);
        return 2;
    }
    return -1;
}

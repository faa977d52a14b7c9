/* dcdn: the downstream CDN gateway.
 *
 *   dcdn -c dcdn.json [-t]
 *
 * Reads the configuration (config.c), then starts what it names, each in
 * its own file: the metadata client of every upstream (metadata_sync.c,
 * RFC 8006), the router role (router.c: FCI advertisement and heartbeats,
 * RI server and HTTP redirection, two-step manifest rewriting, the
 * surrogate registry), the surrogate role (surrogate.c on cache.c: signed
 * delivery, acquisition), CI/T (triggers.c, RFC 8007), CDNI logging behind
 * an Atom feed (logger.c, RFC 7937), and the operator listener (/healthz,
 * /readyz, /metrics, /v1/status, /v1/metadata/..., /v1/cache/...).
 * SIGHUP reloads through the master (common/supervise.h); SIGTERM drains. */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/supervise.h"
#include "dcdn/dcdn.h"

static bool ready(void *ctx, const char **status, json_t *detail)
{
    dcdn *d = ctx;
    bool loaded = false;
    for (size_t i = 0; i < d->n_ups; i++) {
        snap_ref *ref;
        if (snapshot_acquire(&d->ups[i].snap, &ref))
            loaded = true;
        snapshot_release(&d->ups[i].snap, ref);
    }
    bool redis = store_up(d->store);
    json_object_set_new(detail, "redis", json_string(redis ? "up" : "down"));
    json_object_set_new(detail, "metadata", json_string(loaded ? "loaded" : "none"));
    if (!loaded) {
        *status = "starting";
        return false;
    }
    /* Still resolving from memory: ready to serve, but an operator should look. */
    *status = redis ? "ready" : "degraded";
    return true;
}

int main(int argc, char **argv)
{
    const char *config;
    bool check_only;
    int rc0 = daemon_parse_args(argc, argv, "dcdn", &config, &check_only);
    if (rc0 >= 0)
        return rc0;
    if (!check_only) {
        int master = supervise(argc, argv, "dcdn", config);
        if (master >= 0)
            return master;
    }
    daemon_block_signals();
    static dcdn d;
    jerr e = {0};
    if (!dcdn_config_load(&d, config, &e)) {
        fprintf(stderr, "dcdn: %s: %s: %s\n", config, e.path, e.reason);
        return 1;
    }
    if (check_only) {
        printf("%s: ok\n", config);
        return 0;
    }
    pthread_mutex_init(&d.rec_mu, NULL);
    unsigned char rnd[8];
    RAND_bytes(rnd, sizeof rnd);
    for (int i = 0; i < 8; i++)
        snprintf(d.instance + 2 * i, 3, "%02x", rnd[i]);
    snprintf(d.channel, sizeof d.channel, "cdni:%s:mi:changed", d.cdn_id);
    d.metrics = metrics_new();
    d.m_fetch_ok = metrics_series(d.metrics, "cdni_mi_refresh_total", "result=\"ok\"", "counter",
                                  "metadata tree walks against upstream CDNs");
    d.m_fetch_fail = metrics_series(d.metrics, "cdni_mi_refresh_total", "result=\"failed\"", "counter",
                                    "metadata tree walks against upstream CDNs");
    d.m_changes = metrics_series(d.metrics, "cdni_mi_changes_applied_total", "", "counter",
                                 "new metadata trees applied");
    d.m_resolve_ok = metrics_series(d.metrics, "cdni_mi_resolutions_total", "result=\"servable\"",
                                    "counter", "resolution API answers");
    d.m_resolve_refused = metrics_series(d.metrics, "cdni_mi_resolutions_total", "result=\"refused\"",
                                         "counter", "resolution API answers");
    d.m_resolve_nohost = metrics_series(d.metrics, "cdni_mi_resolutions_total", "result=\"no_host\"",
                                        "counter", "resolution API answers");
    store_status st;
    d.store = store_open(d.redis_url, &st);
    if (!d.store) {
        fprintf(stderr, "dcdn: $.redis: not a redis:// or unix:// URL\n");
        return 1;
    }
    if (st == STORE_DOWN)
        log_kv(LOG_ERROR, "redis is down at start; retrying in the background", NULL);
    if (d.us.present && !hop_keys_jti_store(&d.us, d.redis_url, d.cdn_id)) {
        fprintf(stderr, "dcdn: $.redis: cannot open the one-time token store\n");
        return 1;
    }
    char stats_prefix[160];
    snprintf(stats_prefix, sizeof stats_prefix, "cdni:%s:stats", d.cdn_id);
    if (!(d.stats = mstats_new(d.redis_url, stats_prefix, 60, 2000))) {
        fprintf(stderr, "dcdn: cannot start the per-minute counters\n");
        return 1;
    }
    if (!dcdn_sync_start(&d)) {
        fprintf(stderr, "dcdn: cannot start the metadata client\n");
        return 1;
    }
    if (!router_start(&d)) {
        fprintf(stderr, "dcdn: cannot start the router\n");
        return 1;
    }
    if (!logger_start(&d)) {
        fprintf(stderr, "dcdn: cannot start the CDNI log producer in %s\n", d.log_dir);
        return 1;
    }
    if (d.has_surrogate && !surrogate_start(&d)) {
        fprintf(stderr, "dcdn: cannot open the cache in %s\n", d.cache_conf.dir);
        return 1;
    }
    d.ops = (daemon_ops){d.metrics, ready, &d, d.store};
    /* each listener's routes, module by module; /healthz on every listener */
    http_routes routes = {0}, peer_routes = {0}, delivery_routes = {0}, surrogate_routes_ = {0};
    daemon_ops_routes(&d.ops, &routes);
    const http_route healthz = routes.r ? routes.r[0] : (http_route){0};
    status_op_routes(&d, &routes);
    resolve_api_routes(&d, &routes);
    router_op_routes(&d, &routes);
    if (d.has_surrogate)
        surrogate_op_routes(&d, &routes);
    http_routes_add(&surrogate_routes_, healthz);
    surrogate_routes(&d, &surrogate_routes_);
    router_peer_routes(&d, &peer_routes);
    logger_peer_routes(&d, &peer_routes);
    if (d.cit_pid)
        triggers_peer_routes(&d, &peer_routes);
    http_routes_add(&peer_routes, healthz);
    http_routes_add(&delivery_routes, healthz); /* before the catch-all */
    router_delivery_routes(&d, &delivery_routes);
    if (routes.failed || peer_routes.failed || delivery_routes.failed || surrogate_routes_.failed) {
        fprintf(stderr, "dcdn: out of memory\n");
        return 1;
    }
    d.op_conf.tokens = d.op_tokens;
    d.op_conf.ntokens = d.n_op;
    d.op_conf.metrics = d.metrics;
    http_server *op = http_server_start(&d.op_conf, routes.r, routes.n);
    http_server *peer = NULL, *delivery = NULL, *surrogate = NULL;
    if (d.has_peer) {
        d.peer_conf.tokens = d.peer_tokens;
        d.peer_conf.ntokens = d.n_peer;
        d.peer_conf.metrics = d.metrics;
        d.peer_conf.suspendable = true; /* trigger acceptances wait for the group commit parked */
        peer = http_server_start(&d.peer_conf, peer_routes.r, peer_routes.n);
    }
    if (d.has_delivery) {
        d.delivery_conf.metrics = d.metrics;
        delivery = http_server_start(&d.delivery_conf, delivery_routes.r, delivery_routes.n);
    }
    if (d.has_surrogate) {
        d.surrogate_conf.metrics = d.metrics;
        d.surrogate_conf.suspendable = true;
        if (!d.surrogate_conf.name || !strcmp(d.surrogate_conf.name, ""))
            d.surrogate_conf.name = "surrogate";
        surrogate = http_server_start(&d.surrogate_conf, surrogate_routes_.r, surrogate_routes_.n);
    }
    int rc = 0;
    if (!op || (d.has_peer && !peer) || (d.has_delivery && !delivery) || (d.has_surrogate && !surrogate) ||
        !triggers_start(&d)) {
        rc = 1;
    } else {
        log_kv(LOG_INFO, "dcdn started", "cdn_id", d.cdn_id, NULL);
        supervise_ready();
        daemon_wait_for_signal();
        log_kv(LOG_INFO, "stopping", NULL);
        http_server *all[] = {op, peer, delivery, surrogate};
        http_server_drain(all, 4, d.op_conf.drain_s);
    }
    if (d.has_surrogate)
        surrogate_quiesce(&d); /* wakes parked requests before their listener goes */
    http_server_stop(op);
    http_server_stop(peer);
    http_server_stop(delivery);
    http_server_stop(surrogate);
    http_routes_free(&routes);
    http_routes_free(&peer_routes);
    http_routes_free(&delivery_routes);
    http_routes_free(&surrogate_routes_);
    router_stop(&d); /* its heartbeats read the cache's figures */
    triggers_stop(&d); /* before the cache it works on */
    if (d.has_surrogate)
        surrogate_stop(&d);
    logger_stop(&d); /* after the listeners: every delivery record is in */
    delivery_records_free(&d);
    dcdn_sync_stop(&d);
    mstats_free(d.stats);
    store_close(d.store);
    metrics_free(d.metrics);
    free(d.op_tokens);
    free(d.peer_tokens);
    for (size_t i = 0; i < d.n_ups; i++)
        if (d.ups[i].us_keys.keys)
            jwk_set_free(&d.ups[i].us_keys);
    for (size_t i = 0; i < d.n_ups; i++)
        egress_free(d.ups[i].egress);
    egress_free(d.egress);
    url_names_free(&d.own_hosts);
    hop_keys_free(&d.us);
    free(d.ups);
    free(d.extra_types);
    json_decref(d.config);
    return rc;
}

/* ucdn: the upstream CDN gateway.
 *
 *   ucdn -c ucdn.json
 *
 * Listeners: csp (CSP API), peer (CDNI interfaces toward dCDNs: RFC 8006 MI,
 * RFC 8008 FCI intake, heartbeats), operator (/healthz, /readyz, /metrics,
 * peers, route explain), delivery (end users: redirects to a dCDN). State lives in Redis;
 * each instance keeps an in-process catalog rebuilt on pub/sub, so any
 * number of instances can run side by side. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/supervise.h"
#include "ucdn/ucdn.h"

static void on_change(const char *msg, void *ud)
{
    ucdn *u = ud;
    if (!ucdn_reload(u))
        log_kv(LOG_WARN, "catalog reload failed; serving the previous one", NULL);
}

static bool ready(void *ctx, const char **status, json_t *detail)
{
    ucdn *u = ctx;
    snap_ref *ref;
    mi_catalog *c = snapshot_acquire(&u->catalog, &ref);
    bool redis = store_up(u->store);
    json_object_set_new(detail, "redis", json_string(redis ? "up" : "down"));
    if (c)
        json_object_set_new(detail, "catalog_version", json_integer((json_int_t)mi_catalog_version(c)));
    snapshot_release(&u->catalog, ref);
    if (!c || !atomic_load(&u->redis_seen)) {
        *status = "starting";
        return false;
    }
    /* a catalog found lost and still empty: degraded (nothing to serve but
     * 404s), until CSPs publish again */
    bool catalog = ucdn_catalog_report(u, detail);
    *status = redis && catalog ? "ready" : "degraded";
    return true;
}

static http_server *start(http_server_conf *conf, http_token *tokens, size_t n, metrics *m,
                          const http_route *routes, size_t nroutes)
{
    conf->tokens = tokens;
    conf->ntokens = n;
    conf->metrics = m;
    return http_server_start(conf, routes, nroutes);
}

int main(int argc, char **argv)
{
    const char *config;
    bool check_only;
    int rc0 = daemon_parse_args(argc, argv, "ucdn", &config, &check_only);
    if (rc0 >= 0)
        return rc0;
    if (!check_only) {
        int master = supervise(argc, argv, "ucdn", config);
        if (master >= 0)
            return master;
    }
    daemon_block_signals();
    static ucdn u;
    jerr e = {0};
    if (!ucdn_config_load(&u, config, &e)) {
        fprintf(stderr, "ucdn: %s: %s: %s\n", config, e.path, e.reason);
        return 1;
    }
    if (check_only) {
        printf("%s: ok\n", config);
        return 0;
    }
    snprintf(u.key_services, sizeof u.key_services, "cdni:%s:{mi}:services", u.cdn_id);
    snprintf(u.key_versions, sizeof u.key_versions, "cdni:%s:{mi}:versions", u.cdn_id);
    snprintf(u.key_svchost, sizeof u.key_svchost, "cdni:%s:{mi}:svchost", u.cdn_id);
    snprintf(u.key_hosts, sizeof u.key_hosts, "cdni:%s:{mi}:hosts", u.cdn_id);
    snprintf(u.key_version, sizeof u.key_version, "cdni:%s:{mi}:version", u.cdn_id);
    snprintf(u.key_history, sizeof u.key_history, "cdni:%s:{mi}:history", u.cdn_id);
    snprintf(u.channel, sizeof u.channel, "cdni:%s:mi:changed", u.cdn_id);
    snprintf(u.key_claims, sizeof u.key_claims, "cdni:%s:{mi}:claims", u.cdn_id);
    snprintf(u.key_claimrefs, sizeof u.key_claimrefs, "cdni:%s:{mi}:claimrefs", u.cdn_id);
    snprintf(u.key_objclaims, sizeof u.key_objclaims, "cdni:%s:{mi}:objclaims", u.cdn_id);
    snprintf(u.key_schema, sizeof u.key_schema, "cdni:%s:{mi}:schema", u.cdn_id);

    u.metrics = metrics_new();
    csp_api_init(&u);
    u.m_reloads = metrics_series(u.metrics, "cdni_mi_catalog_reloads_total", "", "counter",
                                 "MI catalog rebuilds from Redis");
    u.m_reload_errors = metrics_series(u.metrics, "cdni_mi_catalog_reload_errors_total", "", "counter",
                                       "MI catalog rebuilds that failed (previous catalog kept)");
    u.m_services = metrics_series(u.metrics, "cdni_mi_delivery_services", "", "gauge",
                                  "delivery services in the current catalog");
    u.m_version = metrics_series(u.metrics, "cdni_mi_catalog_version", "", "gauge",
                                 "version of the current MI catalog");
    u.m_writes = metrics_series(u.metrics, "cdni_csp_service_writes_total", "", "counter",
                                "delivery service creations, replacements and deletions");
    snprintf(u.key_fci, sizeof u.key_fci, "cdni:%s:{peers}:fci", u.cdn_id);
    snprintf(u.key_hb, sizeof u.key_hb, "cdni:%s:{peers}:hb", u.cdn_id);
    snprintf(u.peer_channel, sizeof u.peer_channel, "cdni:%s:peers:changed", u.cdn_id);
    if (!collections_init(&u)) {
        fprintf(stderr, "ucdn: out of memory\n");
        return 1;
    }
    if (!router_init(&u)) {
        fprintf(stderr, "ucdn: $.routing: could not set up request routing (see log)\n");
        return 1;
    }
    pthread_mutex_init(&u.reload_mu, NULL);
    snapshot_init(&u.catalog, mi_catalog_free);
    atomic_init(&u.redis_seen, false);

    store_status st;
    u.store = store_open(u.redis_url, &st);
    if (!u.store) {
        fprintf(stderr, "ucdn: $.redis: not a redis:// or unix:// URL\n");
        return 1;
    }
    if (st == STORE_DOWN)
        log_kv(LOG_ERROR, "redis is down at start; retrying in the background", NULL);
    if (u.us.present && !hop_keys_jti_store(&u.us, u.redis_url, u.cdn_id)) {
        fprintf(stderr, "ucdn: $.redis: cannot open the one-time token store\n");
        return 1;
    }
    char stats_prefix[160];
    snprintf(stats_prefix, sizeof stats_prefix, "cdni:%s:stats", u.cdn_id);
    if (!(u.stats = mstats_new(u.redis_url, stats_prefix, 60, 2000))) {
        fprintf(stderr, "ucdn: cannot start the per-minute counters\n");
        return 1;
    }
    else if (ucdn_reload(&u)) {
        peering_reload(&u);
        collections_reload(&u);
    }
    u.sub = store_subscribe(u.redis_url, u.channel, on_change, &u);
    u.peer_sub = store_subscribe(u.redis_url, u.peer_channel, peering_on_message, &u);
    u.coll_sub = store_subscribe(u.redis_url, u.channel_collections, collections_on_message, &u);

    u.mi = (mi_server_ctx){&u.catalog, u.max_age_s};
    u.ops = (daemon_ops){u.metrics, ready, &u, u.store};
    /* each listener's routes, module by module; /healthz on every listener */
    http_routes csp_routes = {0}, peer_routes = {0}, op_routes = {0}, delivery_routes = {0};
    csp_api_routes(&u, &csp_routes);
    collections_routes(&u, &csp_routes);
    collector_csp_routes(&u, &csp_routes);
    purges_routes(&u, &csp_routes);
    mi_server_routes(&u.mi, &peer_routes);
    peering_routes(&u, &peer_routes);
    daemon_ops_routes(&u.ops, &op_routes);
    const http_route healthz = op_routes.r ? op_routes.r[0] : (http_route){0};
    peering_op_routes(&u, &op_routes);
    router_op_routes(&u, &op_routes);
    collector_op_routes(&u, &op_routes);
    status_op_routes(&u, &op_routes);
    http_routes_add(&peer_routes, healthz);
    http_routes_add(&delivery_routes, healthz); /* before the catch-all */
    router_routes(&u, &delivery_routes);
    if (csp_routes.failed || peer_routes.failed || op_routes.failed || delivery_routes.failed) {
        fprintf(stderr, "ucdn: out of memory\n");
        return 1;
    }

    http_server *csp = start(&u.csp_conf, u.csp_tokens, u.n_csp, u.metrics, csp_routes.r, csp_routes.n);
    http_server *peer = start(&u.peer_conf, u.peer_tokens, u.n_peer, u.metrics, peer_routes.r, peer_routes.n);
    http_server *op = start(&u.op_conf, u.op_tokens, u.n_op, u.metrics, op_routes.r, op_routes.n);
    http_server *delivery = u.has_delivery ? start(&u.delivery_conf, NULL, 0, u.metrics, delivery_routes.r,
                                                   delivery_routes.n)
                                           : NULL;
    int rc = 0;
    if (!csp || !peer || !op || (u.has_delivery && !delivery) || !collector_start(&u) || !purges_start(&u) ||
        !peering_start(&u)) {
        rc = 1;
    } else {
        log_kv(LOG_INFO, "ucdn started", "cdn_id", u.cdn_id, NULL);
        supervise_ready();
        int sig = daemon_wait_for_signal();
        char s[8];
        snprintf(s, sizeof s, "%d", sig);
        log_kv(LOG_INFO, "stopping", "signal", s, NULL);
        http_server *all[] = {csp, peer, op, delivery};
        http_server_drain(all, 4, u.csp_conf.drain_s);
    }
    http_server_stop(csp);
    http_server_stop(peer);
    http_server_stop(op);
    http_server_stop(delivery);
    http_routes_free(&csp_routes);
    http_routes_free(&peer_routes);
    http_routes_free(&op_routes);
    http_routes_free(&delivery_routes);
    peering_stop(&u);
    collector_stop(&u);
    purges_stop(&u);
    store_unsubscribe(u.coll_sub);
    store_unsubscribe(u.peer_sub);
    store_unsubscribe(u.sub);
    store_close(u.store);
    snapshot_destroy(&u.catalog);
    router_free(&u);
    mstats_free(u.stats);
    collections_free(&u);
    for (size_t i = 0; i < u.n_rules; i++) {
        fp_list_free(u.rules[i].fps, u.rules[i].n_fps);
        free(u.rules[i].only);
        free(u.rules[i].exclude);
        free(u.rules[i].prefer);
    }
    free(u.rules);
    for (size_t i = 0; i < u.n_peers; i++)
        if (u.peer_sig[i].key.keys)
            jwk_set_free(&u.peer_sig[i].key);
    free(u.peer_sig);
    for (size_t i = 0; u.csp_keys && i < u.n_csp; i++)
        if (u.csp_keys[i].keys)
            jwk_set_free(&u.csp_keys[i]);
    free(u.csp_keys);
    hop_keys_free(&u.us);
    egress_free(u.egress);
    url_names_free(&u.reserved);
    free(u.csp_limits);
    free(u.peers);
    ipt_free(u.rt.trusted);
    metrics_free(u.metrics);
    free(u.csp_tokens);
    free(u.peer_tokens);
    free(u.op_tokens);
    free(u.extra_types);
    json_decref(u.config);
    return rc;
}

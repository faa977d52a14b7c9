/* ucdn configuration: JSON, checked member by member; a bad value names
 * its JSON path and the daemon refuses to start. specs/ucdn-config.schema.json
 * describes the same shape. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "interfaces/redirection.h"
#include "interfaces/triggers.h"
#include "ucdn/ucdn.h"


static bool tokens(json_t *root, const char *key, const char *who_key, bool required,
                   http_token **out, size_t *n, jerr *e)
{
    json_t *arr = NULL;
    *out = NULL;
    *n = 0;
    if (!jget_arr(root, key, "$", required, &arr, e))
        return false;
    if (!arr)
        return true;
    char ap[JPATH_MAX];
    jpath_key(ap, "$", key);
    *out = calloc(json_array_size(arr) + 1, sizeof **out);
    size_t i;
    json_t *t;
    json_array_foreach(arr, i, t)
    {
        char ip[JPATH_MAX];
        jpath_idx(ip, ap, i);
        const char *who = NULL, *tok = NULL;
        const char *const allowed[] = {who_key, "token", "uri_signing_keys", "limits", NULL};
        if (!json_is_object(t))
            return jfail(e, ip, "expected an object");
        if (!jonly(t, ip, allowed, e) || !jget_str(t, who_key, ip, true, &who, e) ||
            !jget_str(t, "token", ip, true, &tok, e))
            return false;
        if (strlen(tok) < 16) {
            char tp[JPATH_MAX];
            jpath_key(tp, ip, "token");
            return jfail(e, tp, "tokens must be at least 16 characters");
        }
        if (!mi_service_id_ok(who)) {
            char wp[JPATH_MAX];
            jpath_key(wp, ip, who_key);
            return jfail(e, wp, "1-64 of [A-Za-z0-9._-]");
        }
        (*out)[i] = (http_token){tok, who, NULL};
        (*n)++;
    }
    return true;
}

/* peers: [{"id", "token", "ri_url", "ri_token", "fci_url", "delivery_url",
 *          "priority", "weight", "max_load", "enabled"}] */
static bool peers_conf(ucdn *u, json_t *root, jerr *e)
{
    static const char *const keys[] = {"id", "token", "ri_url", "ri_token", "fci_url",
                                       "delivery_url", "priority", "weight", "max_load",
                                       "enabled", "audience", "uri_signing_key", "li_feed_url", "ci_url",
                                       "client_cert", "tls", "uri_signing", NULL};
    json_t *arr = NULL;
    if (!jget_arr(root, "peers", "$", true, &arr, e))
        return false;
    size_t n = json_array_size(arr);
    if (n > ROUTE_MAX_PEERS)
        return jfail(e, "$.peers", "at most %d peers", ROUTE_MAX_PEERS);
    u->peers = calloc(n ? n : 1, sizeof *u->peers);
    u->peer_sig = calloc(n ? n : 1, sizeof *u->peer_sig);
    u->peer_tokens = calloc(n + 1, sizeof *u->peer_tokens);
    for (size_t i = 0; i < n; i++) {
        char ip[JPATH_MAX], fp[JPATH_MAX];
        jpath_idx(ip, "$.peers", i);
        json_t *o = json_array_get(arr, i);
        route_peer *p = &u->peers[i];
        long long prio = 100, weight = 1;
        bool enabled = true;
        json_t *ml = NULL;
        if (!json_is_object(o))
            return jfail(e, ip, "expected an object");
        if (!jonly(o, ip, keys, e) || !jget_str(o, "id", ip, true, &p->id, e) ||
            !jget_str(o, "token", ip, !json_object_get(o, "client_cert"), &p->token, e) ||
            !jget_str(o, "ri_url", ip, false, &p->ri_url, e) ||
            !jget_str(o, "ri_token", ip, false, &p->ri_token, e) ||
            !jget_str(o, "fci_url", ip, false, &p->fci_url, e) ||
            !jget_str(o, "li_feed_url", ip, false, &p->li_feed_url, e) ||
            !jget_str(o, "ci_url", ip, false, &p->ci_url, e) ||
            !jget_str(o, "delivery_url", ip, false, &p->delivery_url, e) ||
            !jget_int(o, "priority", ip, false, 0, 1000000, &prio, e) ||
            !jget_int(o, "weight", ip, false, 1, 1000000, &weight, e) ||
            !jget_bool(o, "enabled", ip, false, &enabled, e) ||
            !jget_str(o, "audience", ip, false, &u->peer_sig[i].audience, e))
            return false;
        const char *skf = NULL, *prof = NULL;
        json_t *uso = NULL;
        static const char *const us_keys[] = {"profile", NULL};
        jpath_key(fp, ip, "uri_signing");
        if (!jget_str(o, "uri_signing_key", ip, false, &skf, e) || !jget_obj(o, "uri_signing", ip, false, &uso, e) ||
            (uso && (!jonly(uso, fp, us_keys, e) || !jget_str(uso, "profile", fp, false, &prof, e))))
            return false;
        int pv = hop_profile_from_name(prof);
        if (pv < 0) {
            char pp[JPATH_MAX];
            jpath_key(pp, fp, "profile");
            return jfail(e, pp, "expected \"rfc9246\" or \"ats\"");
        }
        u->peer_sig[i].profile = (hop_profile)pv;
        if (skf) {
            jpath_key(fp, ip, "uri_signing_key");
            jwk_set *ks = &u->peer_sig[i].key;
            if (!hop_trust_load(skf, fp, ks, e))
                return false;
            jws_alg a = ks->n == 1 && ks->keys[0].kty == JWK_EC_P256 ? JWS_ES256 : JWS_HS256;
            if (ks->n != 1 || (a == JWS_ES256 && !ks->keys[0].has_private) || !jws_key_fits(&ks->keys[0], a))
                return jfail(e, fp, "expected one signing key (EC P-256 with \"d\", or an oct secret of 32+ bytes)");
            u->peer_sig[i].alg = a;
        }
        if (p->token && strlen(p->token) < 16) {
            jpath_key(fp, ip, "token");
            return jfail(e, fp, "tokens must be at least 16 characters");
        }
        if (!daemon_peer_tls(o, ip, &u->tls_client, &p->cert, &p->has_cert, &p->tls, e))
            return false;
        if ((p->ri_url || p->fci_url || p->li_feed_url || p->ci_url) && (!p->ri_token || strlen(p->ri_token) < 16)) {
            jpath_key(fp, ip, "ri_token");
            return jfail(e, fp, "needed (at least 16 characters) with ri_url, fci_url, li_feed_url or ci_url");
        }
        static const char *const url_keys[] = {"ri_url", "fci_url", "delivery_url", "li_feed_url", "ci_url"};
        const char *urls[] = {p->ri_url, p->fci_url, p->delivery_url, p->li_feed_url, p->ci_url};
        for (int k = 0; k < 5; k++)
            if (urls[k] && ((strncmp(urls[k], "http://", 7) && strncmp(urls[k], "https://", 8)) ||
                            strlen(urls[k]) > 1024)) {
                jpath_key(fp, ip, url_keys[k]);
                return jfail(e, fp, "expected an http:// or https:// URL of at most 1024 characters");
            }
        for (size_t k = 0; k < i; k++)
            if (strcmp(u->peers[k].id, p->id) == 0) {
                jpath_key(fp, ip, "id");
                return jfail(e, fp, "duplicate peer id \"%s\"", p->id);
            }
        p->max_load = 1.0;
        ml = json_object_get(o, "max_load");
        if (ml) {
            if (!json_is_number(ml) || json_number_value(ml) <= 0) {
                jpath_key(fp, ip, "max_load");
                return jfail(e, fp, "expected a number above 0 (1.0 = full capacity)");
            }
            p->max_load = json_number_value(ml);
        }
        p->priority = prio;
        p->weight = weight;
        p->enabled = enabled;
        p->id_hash = route_hash(p->id, strlen(p->id));
        u->peer_tokens[i] = (http_token){p->token, p->id, p->has_cert ? &p->cert : NULL};
        if (!u->peer_sig[i].audience)
            u->peer_sig[i].audience = p->id;
    }
    u->n_peers = n;
    u->n_peer = n;
    return true;
}

static const char **id_list(json_t *o, const char *key, const char *path, jerr *e, bool *ok)
{
    json_t *a = NULL;
    *ok = jget_arr(o, key, path, false, &a, e);
    if (!*ok || !a)
        return NULL;
    char lp[JPATH_MAX];
    jpath_key(lp, path, key);
    if (!(*ok = jstr_array(a, lp, e)))
        return NULL;
    const char **l = calloc(json_array_size(a) + 1, sizeof *l);
    for (size_t i = 0; i < json_array_size(a); i++)
        l[i] = json_string_value(json_array_get(a, i));
    return l;
}

/* routing: {"heartbeat_timeout_s", "client_ip_header", "trusted_proxies",
 *           "redirect_status", "content_hashing", "ri_timeout_ms",
 *           "ri_cache_max_s", "ri_retry_after_s", "max_hops", "fallback_url",
 *           "geo_file", "rules": [{"match": {...}, "only"|"exclude"|"prefer"}]} */
/* triggers: {"cdn_pid": "AS64496:1", "retry_max_s": 60} */
static bool triggers_conf(ucdn *u, json_t *root, jerr *e)
{
    static const char *const keys[] = {"cdn_pid", "retry_max_s", NULL};
    json_t *t = NULL;
    long long retry = 60;
    if (!jget_obj(root, "triggers", "$", false, &t, e))
        return false;
    if (!t)
        return true;
    if (!jonly(t, "$.triggers", keys, e) || !jget_str(t, "cdn_pid", "$.triggers", true, &u->pg.cdn_pid, e) ||
        !jget_int(t, "retry_max_s", "$.triggers", false, 1, 3600, &retry, e))
        return false;
    if (!cit_pid_ok(u->pg.cdn_pid))
        return jfail(e, "$.triggers.cdn_pid", "expected a CDN PID, \"AS<number>:<qualifier>\"");
    u->pg.retry_max_s = retry;
    return true;
}

/* collector: {"poll_s": 30, "archive_dir": null, "require_hash": true,
 *             "require_gzip": true, "max_file_bytes": 268435456} */
static bool collector_conf(ucdn *u, json_t *root, jerr *e)
{
    static const char *const keys[] = {"poll_s", "archive_dir", "require_hash", "require_gzip", "max_file_bytes",
                                       NULL};
    json_t *c = NULL;
    long long poll = 30, max = 256LL << 20;
    u->li.require_hash = u->li.require_gzip = true;
    if (!jget_obj(root, "collector", "$", false, &c, e))
        return false;
    if (c && (!jonly(c, "$.collector", keys, e) || !jget_int(c, "poll_s", "$.collector", false, 1, 86400, &poll, e) ||
              !jget_str(c, "archive_dir", "$.collector", false, &u->li.archive_dir, e) ||
              !jget_bool(c, "require_hash", "$.collector", false, &u->li.require_hash, e) ||
              !jget_bool(c, "require_gzip", "$.collector", false, &u->li.require_gzip, e) ||
              !jget_int(c, "max_file_bytes", "$.collector", false, 4096, 4LL << 30, &max, e)))
        return false;
    if (u->li.archive_dir && strlen(u->li.archive_dir) > 400)
        return jfail(e, "$.collector.archive_dir", "at most 400 characters");
    u->li.poll_s = (int)poll;
    u->li.max_file_bytes = max;
    return true;
}

static bool routing_conf(ucdn *u, json_t *root, jerr *e)
{
    static const char *const keys[] = {"heartbeat_timeout_s", "client_ip_header", "trusted_proxies",
                                       "redirect_status", "content_hashing", "ri_timeout_ms",
                                       "ri_cache_max_s", "ri_retry_after_s", "max_hops",
                                       "fallback_url", "geo_file", "rules", NULL};
    json_t *r = NULL, *tp = NULL, *rules = NULL;
    long long hb = 180, rs = 302, rit = 1000, ric = 60, rra = 10, mh = RI_MAX_HOPS_DEFAULT;
    if (!jget_obj(root, "routing", "$", false, &r, e))
        return false;
    u->rt.hb_timeout_ms = hb * 1000;
    u->rt.redirect_status = 302;
    u->rt.ri_timeout_ms = rit;
    u->rt.ri_cache_max_s = (int)ric;
    u->rt.ri_retry_after_s = (int)rra;
    u->rt.max_hops = (int)mh;
    if (!r)
        return true;
    if (!jonly(r, "$.routing", keys, e) ||
        !jget_int(r, "heartbeat_timeout_s", "$.routing", false, 1, 86400, &hb, e) ||
        !jget_str(r, "client_ip_header", "$.routing", false, &u->rt.client_ip_header, e) ||
        !jget_arr(r, "trusted_proxies", "$.routing", false, &tp, e) ||
        !jget_int(r, "redirect_status", "$.routing", false, 301, 308, &rs, e) ||
        !jget_bool(r, "content_hashing", "$.routing", false, &u->rt.content_hashing, e) ||
        !jget_int(r, "ri_timeout_ms", "$.routing", false, 10, 60000, &rit, e) ||
        !jget_int(r, "ri_cache_max_s", "$.routing", false, 0, 86400, &ric, e) ||
        !jget_int(r, "ri_retry_after_s", "$.routing", false, 0, 3600, &rra, e) ||
        !jget_int(r, "max_hops", "$.routing", false, 1, 16, &mh, e) ||
        !jget_str(r, "fallback_url", "$.routing", false, &u->rt.fallback_url, e) ||
        !jget_str(r, "geo_file", "$.routing", false, &u->rt.geo_file, e) ||
        !jget_arr(r, "rules", "$.routing", false, &rules, e))
        return false;
    if (rs != 301 && rs != 302 && rs != 303 && rs != 307 && rs != 308)
        return jfail(e, "$.routing.redirect_status", "expected 301, 302, 303, 307 or 308");
    if (u->rt.fallback_url && ((strncmp(u->rt.fallback_url, "http://", 7) &&
                                strncmp(u->rt.fallback_url, "https://", 8)) ||
                               strlen(u->rt.fallback_url) > 1024))
        return jfail(e, "$.routing.fallback_url", "expected an http:// or https:// URL");
    u->rt.hb_timeout_ms = hb * 1000;
    u->rt.redirect_status = (int)rs;
    u->rt.ri_timeout_ms = rit;
    u->rt.ri_cache_max_s = (int)ric;
    u->rt.ri_retry_after_s = (int)rra;
    u->rt.max_hops = (int)mh;
    if (tp) {
        if (!jstr_array(tp, "$.routing.trusted_proxies", e))
            return false;
        iptable_builder *b = iptb_new();
        for (size_t i = 0; i < json_array_size(tp); i++) {
            json_t *v = json_array_get(tp, i);
            ipt_addr a;
            unsigned len;
            if (!ipt_parse_prefix(json_string_value(v), json_string_length(v), &a, &len)) {
                ipt_free(iptb_build(b, 0));
                char ip[JPATH_MAX];
                jpath_idx(ip, "$.routing.trusted_proxies", i);
                return jfail(e, ip, "expected an address prefix like 10.0.0.0/8");
            }
            iptb_add(b, &a, len, (uint32_t)i);
        }
        u->rt.trusted = iptb_build(b, 0);
    }
    size_t n = json_array_size(rules);
    u->rules = calloc(n ? n : 1, sizeof *u->rules);
    for (size_t i = 0; i < n; i++) {
        static const char *const rkeys[] = {"match", "only", "exclude", "prefer", NULL};
        static const char *const mkeys[] = {"host", "path", "content_type", "footprints", NULL};
        char ip[JPATH_MAX], mp[JPATH_MAX];
        jpath_idx(ip, "$.routing.rules", i);
        jpath_key(mp, ip, "match");
        json_t *o = json_array_get(rules, i), *m = NULL, *ct = NULL, *fps = NULL;
        route_rule *rl = &u->rules[i];
        bool ok = true;
        if (!json_is_object(o))
            return jfail(e, ip, "expected an object");
        if (!jonly(o, ip, rkeys, e) || !jget_obj(o, "match", ip, true, &m, e) ||
            !jonly(m, mp, mkeys, e) || !jget_str(m, "host", mp, false, &rl->host, e) ||
            !jget_str(m, "path", mp, false, &rl->path, e) ||
            !jget_arr(m, "content_type", mp, false, &ct, e) ||
            !jget_arr(m, "footprints", mp, false, &fps, e))
            return false;
        rl->only = id_list(o, "only", ip, e, &ok);
        if (ok)
            rl->exclude = id_list(o, "exclude", ip, e, &ok);
        if (ok)
            rl->prefer = id_list(o, "prefer", ip, e, &ok);
        u->n_rules = i + 1;
        if (!ok)
            return false;
        for (size_t k = 0; k < json_array_size(ct); k++) {
            const char *t = json_string_value(json_array_get(ct, k));
            unsigned bit = !t ? 0 : !strcmp(t, "hls") ? CT_HLS : !strcmp(t, "dash") ? CT_DASH
                                  : !strcmp(t, "segment") ? CT_SEGMENT : !strcmp(t, "other") ? CT_OTHER : 0;
            if (!bit) {
                char cp[JPATH_MAX], kp[JPATH_MAX];
                jpath_key(cp, mp, "content_type");
                jpath_idx(kp, cp, k);
                return jfail(e, kp, "expected \"hls\", \"dash\", \"segment\" or \"other\"");
            }
            rl->content_types |= bit;
        }
        if (fps) {
            char fp[JPATH_MAX];
            jpath_key(fp, mp, "footprints");
            if (!fp_list_parse(fps, fp, &rl->fps, &rl->n_fps, e))
                return false;
        }
        const char **lists[] = {rl->only, rl->exclude, rl->prefer};
        for (int k = 0; k < 3; k++)
            for (size_t j = 0; lists[k] && lists[k][j]; j++) {
                bool known = false;
                for (size_t q = 0; q < u->n_peers; q++)
                    known |= strcmp(u->peers[q].id, lists[k][j]) == 0;
                if (!known)
                    return jfail(e, ip, "names unknown peer \"%s\"", lists[k][j]);
            }
    }
    return true;
}

/* The host names no CSP may publish: our listeners' addresses, our public
 * URL's host, every peer endpoint's host, "reserved_hosts" (the names our
 * peers' surrogates and routers answer on, say). */
static bool reserved_conf(ucdn *u, json_t *root, jerr *e)
{
    const http_server_conf *ls[] = {&u->csp_conf, &u->peer_conf, &u->op_conf, &u->delivery_conf};
    if (!daemon_own_names(root, ls, 4, &u->reserved, e))
        return false;
    if (!url_names_add(&u->reserved, u->public_url, true))
        return jfail(e, "$.metadata.public_url", "not an http(s) URL with a valid host");
    for (size_t i = 0; i < u->n_peers; i++) {
        const route_peer *p = &u->peers[i];
        const char *urls[] = {p->ri_url, p->fci_url, p->li_feed_url, p->ci_url, p->delivery_url};
        for (int k = 0; k < 5; k++)
            if (urls[k])
                url_names_add(&u->reserved, urls[k], true);
    }
    return true;
}

/* csp_limits: {"writes_per_s", "writes_burst", "purges_per_s",
 * "purges_burst"} for every CSP, csp_tokens[].limits for one (the same
 * members; the first token of a CSP that has them decides). */
static bool csp_limits_conf(ucdn *u, json_t *root, jerr *e)
{
    static const char *const keys[] = {"writes_per_s", "writes_burst", "purges_per_s", "purges_burst", NULL};
    struct csp_limits all = {{10, 50}, {10, 100}, {NULL, NULL}};
    json_t *d = NULL;
    if (!jget_obj(root, "csp_limits", "$", false, &d, e) ||
        (d && (!jonly(d, "$.csp_limits", keys, e) || !rl_rule_parse(d, "$.csp_limits", "writes", &all.writes, e) ||
               !rl_rule_parse(d, "$.csp_limits", "purges", &all.purges, e))))
        return false;
    u->csp_limits = calloc(u->n_csp + 1, sizeof *u->csp_limits);
    json_t *toks = json_object_get(root, "csp_tokens");
    for (size_t i = 0; i < u->n_csp; i++) {
        struct csp_limits *l = &u->csp_limits[i];
        *l = all;
        char ip[JPATH_MAX], lp[JPATH_MAX];
        jpath_idx(ip, "$.csp_tokens", i);
        jpath_key(lp, ip, "limits");
        json_t *o = NULL;
        if (!jget_obj(json_array_get(toks, i), "limits", ip, false, &o, e) ||
            (o && (!jonly(o, lp, keys, e) || !rl_rule_parse(o, lp, "writes", &l->writes, e) ||
                   !rl_rule_parse(o, lp, "purges", &l->purges, e))))
            return false;
    }
    return true;
}

bool ucdn_config_load(ucdn *u, const char *file, jerr *e)
{
    static const char *const root_keys[] = {"cdn_id", "redis", "log_level", "threads", "listeners",
                                            "limits", "csp_tokens", "peers", "operator_token",
                                            "metadata", "routing", "uri_signing", "manifests", "collector", "triggers", "ui_dir",
                                            "egress", "reserved_hosts", "csp_limits", "tls_client", NULL};
    static const char *const md_keys[] = {"public_url", "max_age_s", "link_paths", "extra_types", NULL};
    json_t *root = jparse_file(file, 1u << 20, e);
    if (!root)
        return false;
    u->config = root;
    if (!json_is_object(root))
        return jfail(e, "$", "expected an object");
    const char *lvl = "info", *op = NULL;
    json_t *md = NULL, *extra = NULL, *ls = NULL;
    bool present;
    if (!jonly(root, "$", root_keys, e) || !jget_str(root, "cdn_id", "$", true, &u->cdn_id, e) ||
        !daemon_redis_conf(root, &u->redis_url, e) ||
        !jget_str(root, "log_level", "$", false, &lvl, e) ||
        !jget_obj(root, "listeners", "$", true, &ls, e))
        return false;
    static const char *const listener_names[] = {"csp", "peer", "operator", "delivery", NULL};
    if (!jonly(ls, "$.listeners", listener_names, e) ||
        !daemon_listener_conf(root, "csp", true, 0, &u->csp_conf, &present, e) ||
        !daemon_listener_conf(root, "peer", true, 0, &u->peer_conf, &present, e) ||
        !daemon_listener_conf(root, "operator", true, 0, &u->op_conf, &present, e) ||
        !tokens(root, "csp_tokens", "csp", true, &u->csp_tokens, &u->n_csp, e) ||
        !daemon_listener_conf(root, "delivery", false, DELIVERY_HEADER_BYTES, &u->delivery_conf, &u->has_delivery, e) ||
        !daemon_client_tls(json_object_get(root, "tls_client"), "$.tls_client", NULL, &u->tls_client, e) ||
        !peers_conf(u, root, e) || !routing_conf(u, root, e) || !collector_conf(u, root, e) ||
        !triggers_conf(u, root, e) ||
        !jget_str(root, "operator_token", "$", false, &op, e) ||
        !jget_str(root, "ui_dir", "$", false, &u->ui_dir, e) ||
        !jget_obj(root, "metadata", "$", true, &md, e))
        return false;
    if (u->n_csp == 0)
        return jfail(e, "$.csp_tokens", "at least one CSP token is needed");
    if (!hop_keys_parse(root, u->cdn_id, &u->us, e))
        return false;
    /* manifests: {"origin_timeout_ms", "max_bytes", "vod_revalidate_s", "stale_grace_s"} */
    static const char *const mf_keys[] = {"origin_timeout_ms", "max_bytes", "vod_revalidate_s", "stale_grace_s", NULL};
    json_t *mf = NULL;
    long long mto = 2000, mmax = 4 << 20, mvr = 300, msg = 3600;
    if (!jget_obj(root, "manifests", "$", false, &mf, e) ||
        (mf && (!jonly(mf, "$.manifests", mf_keys, e) ||
                !jget_int(mf, "origin_timeout_ms", "$.manifests", false, 50, 60000, &mto, e) ||
                !jget_int(mf, "max_bytes", "$.manifests", false, 1024, 64 << 20, &mmax, e) ||
                !jget_int(mf, "vod_revalidate_s", "$.manifests", false, 1, 86400, &mvr, e) ||
                !jget_int(mf, "stale_grace_s", "$.manifests", false, 0, 7 * 86400, &msg, e))))
        return false;
    u->mf.origin_timeout_ms = (long)mto;
    u->mf.max_bytes = mmax;
    u->mf.vod_revalidate_s = mvr;
    u->mf.stale_grace_s = msg;
    /* each CSP's URI-signing keys, next to its API token */
    u->csp_keys = calloc(u->n_csp + 1, sizeof *u->csp_keys);
    for (size_t i = 0; i < u->n_csp; i++) {
        const char *f = NULL;
        char cp[JPATH_MAX], kp[JPATH_MAX];
        jpath_idx(cp, "$.csp_tokens", i);
        if (!jget_str(json_array_get(json_object_get(root, "csp_tokens"), i), "uri_signing_keys", cp, false, &f, e))
            return false;
        jpath_key(kp, cp, "uri_signing_keys");
        if (f && !hop_trust_load(f, kp, &u->csp_keys[i], e))
            return false;
        if (f && !u->us.present)
            return jfail(e, kp, "needs a uri_signing section (our signing key for the dCDNs)");
    }
    if (u->n_peers == 0)
        return jfail(e, "$.peers", "at least one peer is needed: every peer request is authenticated");
    if (op) {
        u->op_tokens = calloc(1, sizeof *u->op_tokens);
        u->op_tokens[0] = (http_token){op, "operator", NULL};
        u->n_op = 1;
    }
    long long max_age = 5;
    u->link_paths = true;
    if (!jonly(md, "$.metadata", md_keys, e) ||
        !jget_str(md, "public_url", "$.metadata", true, &u->public_url, e) ||
        !jget_int(md, "max_age_s", "$.metadata", false, 0, 86400, &max_age, e) ||
        !jget_bool(md, "link_paths", "$.metadata", false, &u->link_paths, e) ||
        !jget_arr(md, "extra_types", "$.metadata", false, &extra, e))
        return false;
    if (extra && !jstr_array(extra, "$.metadata.extra_types", e))
        return false;
    u->max_age_s = (int)max_age;
    size_t ne = extra ? json_array_size(extra) : 0;
    u->extra_types = calloc(ne + 1, sizeof *u->extra_types);
    for (size_t i = 0; i < ne; i++)
        u->extra_types[i] = json_string_value(json_array_get(extra, i));
    u->policy = (mi_policy){u->extra_types, true};
    /* the egress policy, and the peers' own endpoints: the operator named them */
    u->egress = egress_from_json(json_object_get(root, "egress"), "$.egress", e);
    if (!u->egress)
        return false;
    for (size_t i = 0; i < u->n_peers; i++) {
        const route_peer *p = &u->peers[i];
        const char *urls[] = {p->ri_url, p->fci_url, p->li_feed_url, p->ci_url};
        for (int k = 0; k < 4; k++)
            if (urls[k] && !egress_allow_origin(u->egress, urls[k])) {
                char ip[JPATH_MAX];
                jpath_idx(ip, "$.peers", i);
                return jfail(e, ip, "%s is not an http(s) URL with a valid host", urls[k]);
            }
    }
    if (!reserved_conf(u, root, e) || !csp_limits_conf(u, root, e))
        return false;
    log_setup("ucdn", log_level_from_name(lvl));
    return true;
}

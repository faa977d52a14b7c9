/* dcdn configuration (specs/dcdn-config.schema.json). A bad value names
 * its JSON path and the daemon refuses to start. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/url.h"
#include "dcdn/dcdn.h"
#include "interfaces/logging.h"
#include "interfaces/fci.h"
#include "interfaces/mi_server.h"
#include "interfaces/triggers.h"

static bool num_in(json_t *o, const char *key, const char *path, double lo, double hi, double *out, jerr *e)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return true;
    char p[JPATH_MAX];
    jpath_key(p, path, key);
    if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi) {
        char why[96];
        snprintf(why, sizeof why, "expected a number from %g to %g", lo, hi);
        return jfail(e, p, why);
    }
    *out = json_number_value(v);
    return true;
}

/* The surrogate's cache, freshness heuristic and acquisition settings.
 * Defaults: 10 GiB and 1M objects on disk, 512 MiB in memory for objects
 * up to 1 MiB, mappings of larger ones for 16 GiB / 16384 objects, objects up to 4 GiB, watermarks 0.9/0.8; heuristic 10% of
 * the Last-Modified age between 60 s and 1 day; stale-if-error grace 300 s;
 * 8 acquisition threads, 2 s connect, 10 s stall, 300 s per transfer. */
static bool cache_section(dcdn *d, json_t *sg, jerr *e)
{
    static const char *const ckeys[] = {"dir", "disk_bytes", "disk_objects", "memory_bytes", "memory_object_max_bytes",
                                        "mapped_bytes", "mapped_objects", "max_object_bytes", "high_water",
                                        "low_water", NULL};
    static const char *const fkeys[] = {"age_multiplier", "min_ttl_s", "max_ttl_s", NULL};
    static const char *const akeys[] = {"threads", "connect_timeout_ms", "stall_timeout_s", "timeout_s", "ca", NULL};
    cache_conf *c = &d->cache_conf;
    *c = (cache_conf){.dir = NULL, .disk_bytes = 10ULL << 30, .disk_objects = 1000000, .memory_bytes = 512ULL << 20,
                      .memory_object_max = 1ULL << 20, .mapped_bytes = 16ULL << 30, .mapped_objects = 16384,
                      .max_object_bytes = 4ULL << 30, .bypass_max_bytes = 256ULL << 20,
                      .high_water = 0.9, .low_water = 0.8, .heuristic = {0.1, 60, 86400}, .stale_if_error_s = 300,
                      .threads = 8, .connect_timeout_ms = 2000, .stall_timeout_s = 10, .timeout_s = 300};
    json_t *cs = NULL, *fs = NULL, *as = NULL;
    long long sie = 300, db = (long long)c->disk_bytes, dob = (long long)c->disk_objects, mb = (long long)c->memory_bytes,
              mom = (long long)c->memory_object_max, mpb = (long long)c->mapped_bytes,
              mpo = (long long)c->mapped_objects, mo = (long long)c->max_object_bytes, mn = 60, mx = 86400, th = 8,
              ct = 2000, st = 10, to = 300;
    if (!jget_obj(sg, "cache", "$.surrogate", false, &cs, e) || !jget_obj(sg, "freshness", "$.surrogate", false, &fs, e) ||
        !jget_obj(sg, "acquisition", "$.surrogate", false, &as, e) ||
        !jget_int(sg, "stale_if_error_s", "$.surrogate", false, 0, 86400 * 7, &sie, e) ||
        !jget_bool(sg, "access_log", "$.surrogate", false, &d->access_log, e))
        return false;
    if (d->has_surrogate && !cs)
        return jfail(e, "$.surrogate.cache", "needed by the surrogate listener (at least \"dir\")");
    if (cs && (!jonly(cs, "$.surrogate.cache", ckeys, e) || !jget_str(cs, "dir", "$.surrogate.cache", true, &c->dir, e) ||
               !jget_int(cs, "disk_bytes", "$.surrogate.cache", false, 1 << 20, INT64_MAX, &db, e) ||
               !jget_int(cs, "disk_objects", "$.surrogate.cache", false, 1, INT64_MAX, &dob, e) ||
               !jget_int(cs, "memory_bytes", "$.surrogate.cache", false, 0, INT64_MAX, &mb, e) ||
               !jget_int(cs, "memory_object_max_bytes", "$.surrogate.cache", false, 0, INT64_MAX, &mom, e) ||
               !jget_int(cs, "mapped_bytes", "$.surrogate.cache", false, 0, INT64_MAX, &mpb, e) ||
               !jget_int(cs, "mapped_objects", "$.surrogate.cache", false, 0, 1000000, &mpo, e) ||
               !jget_int(cs, "max_object_bytes", "$.surrogate.cache", false, 1, INT64_MAX, &mo, e) ||
               !num_in(cs, "high_water", "$.surrogate.cache", 0.1, 1.0, &c->high_water, e) ||
               !num_in(cs, "low_water", "$.surrogate.cache", 0.05, 1.0, &c->low_water, e)))
        return false;
    if (c->low_water > c->high_water)
        return jfail(e, "$.surrogate.cache.low_water", "must not be above high_water");
    if (c->dir && strlen(c->dir) > 200)
        return jfail(e, "$.surrogate.cache.dir", "at most 200 characters");
    if (fs && (!jonly(fs, "$.surrogate.freshness", fkeys, e) ||
               !num_in(fs, "age_multiplier", "$.surrogate.freshness", 0, 10, &c->heuristic.age_multiplier, e) ||
               !jget_int(fs, "min_ttl_s", "$.surrogate.freshness", false, 0, INT64_MAX, &mn, e) ||
               !jget_int(fs, "max_ttl_s", "$.surrogate.freshness", false, 0, INT64_MAX, &mx, e)))
        return false;
    if (mx < mn)
        return jfail(e, "$.surrogate.freshness.max_ttl_s", "must not be below min_ttl_s");
    if (as && (!jonly(as, "$.surrogate.acquisition", akeys, e) ||
               !jget_int(as, "threads", "$.surrogate.acquisition", false, 1, 256, &th, e) ||
               !jget_int(as, "connect_timeout_ms", "$.surrogate.acquisition", false, 1, 600000, &ct, e) ||
               !jget_int(as, "stall_timeout_s", "$.surrogate.acquisition", false, 1, 3600, &st, e) ||
               !jget_int(as, "timeout_s", "$.surrogate.acquisition", false, 1, 86400, &to, e) ||
               !jget_str(as, "ca", "$.surrogate.acquisition", false, &c->source_tls.ca, e)))
        return false;
    if (c->source_tls.ca && access(c->source_tls.ca, R_OK) != 0)
        return jfail(e, "$.surrogate.acquisition.ca", "cannot read %s", c->source_tls.ca);
    c->disk_bytes = (uint64_t)db;
    c->disk_objects = (uint64_t)dob;
    c->memory_bytes = (uint64_t)mb;
    c->memory_object_max = (uint64_t)mom;
    c->mapped_bytes = (uint64_t)mpb;
    c->mapped_objects = (uint64_t)mpo;
    c->max_object_bytes = (uint64_t)mo;
    c->heuristic.min_ttl_s = mn;
    c->heuristic.max_ttl_s = mx;
    c->stale_if_error_s = sie;
    c->threads = (unsigned)th;
    c->connect_timeout_ms = ct;
    c->stall_timeout_s = st;
    c->timeout_s = to;
    return true;
}

/* capabilities: the FCI advertisement; router: coverage zones and limits;
 * surrogate: this instance registers itself as a surrogate. */
static bool router_conf(dcdn *d, json_t *root, jerr *e)
{
    static const char *const rkeys[] = {"coverage_zones", "uri_hashing", "surrogate_max_load",
                                        "surrogate_dead_after_s", "ri_max_age_s", "last_resort", NULL};
    static const char *const zkeys[] = {"prefix", "surrogate", "metric", NULL};
    static const char *const skeys[] = {"id", "url", "https_url", "heartbeat_s", "cache", "freshness", "acquisition",
                                        "stale_if_error_s", "access_log", NULL};
    json_t *caps = NULL, *r = NULL, *sg = NULL, *zones = NULL;
    if (!jget_obj(root, "capabilities", "$", false, &caps, e) ||
        !jget_obj(root, "router", "$", false, &r, e) ||
        !jget_obj(root, "surrogate", "$", false, &sg, e))
        return false;
    if (caps) {
        fci_set *s = fci_from_json(caps, "$.capabilities", e);
        if (!s)
            return false;
        fci_free(s);
        d->capabilities = caps;
    }
    d->surrogate_max_load = 0.9;
    d->surrogate_dead_ms = 30000;
    d->ri_max_age_s = 30;
    long long dead = 30, ma = 30, metric = 0;
    if (r) {
        json_t *ml = json_object_get(r, "surrogate_max_load");
        if (!jonly(r, "$.router", rkeys, e) ||
            !jget_arr(r, "coverage_zones", "$.router", false, &zones, e) ||
            !jget_bool(r, "uri_hashing", "$.router", false, &d->uri_hashing, e) ||
            !jget_int(r, "surrogate_dead_after_s", "$.router", false, 1, 86400, &dead, e) ||
            !jget_int(r, "ri_max_age_s", "$.router", false, 0, 86400, &ma, e) ||
            !jget_str(r, "last_resort", "$.router", false, &d->last_resort, e))
            return false;
        if (ml && (!json_is_number(ml) || json_number_value(ml) <= 0))
            return jfail(e, "$.router.surrogate_max_load", "expected a number above 0");
        if (ml)
            d->surrogate_max_load = json_number_value(ml);
        d->surrogate_dead_ms = dead * 1000;
        d->ri_max_age_s = (int)ma;
    }
    size_t nz = json_array_size(zones);
    d->zones = calloc(nz ? nz : 1, sizeof *d->zones);
    iptable_builder *b = iptb_new();
    for (size_t i = 0; i < nz; i++) {
        char zp[JPATH_MAX];
        jpath_idx(zp, "$.router.coverage_zones", i);
        json_t *z = json_array_get(zones, i);
        const char *pfx = NULL;
        metric = 0;
        ipt_addr a;
        unsigned len;
        bool ok = json_is_object(z) ? true : jfail(e, zp, "expected an object");
        ok = ok && jonly(z, zp, zkeys, e) && jget_str(z, "prefix", zp, true, &pfx, e) &&
             jget_str(z, "surrogate", zp, true, &d->zones[i].surrogate, e) &&
             jget_int(z, "metric", zp, false, 0, 1000000, &metric, e);
        if (ok && !ipt_parse_prefix(pfx, strlen(pfx), &a, &len)) {
            char pp[JPATH_MAX];
            jpath_key(pp, zp, "prefix");
            ok = jfail(e, pp, "expected an address prefix like 10.0.0.0/8 or 0.0.0.0/0");
        }
        if (!ok) {
            ipt_free(iptb_build(b, 0));
            return false;
        }
        d->zones[i].metric = metric;
        iptb_add(b, &a, len, (uint32_t)i);
    }
    d->zone_table = iptb_build(b, -1);
    if (sg) {
        long long hb = 5;
        if (!jonly(sg, "$.surrogate", skeys, e) || !jget_str(sg, "id", "$.surrogate", true, &d->self_id, e) ||
            !jget_str(sg, "url", "$.surrogate", true, &d->self_url, e) ||
            !jget_str(sg, "https_url", "$.surrogate", false, &d->self_https_url, e) ||
            !jget_int(sg, "heartbeat_s", "$.surrogate", false, 1, 3600, &hb, e))
            return false;
        if (d->self_https_url && (strncmp(d->self_https_url, "https://", 8) != 0 || strlen(d->self_https_url) > 500))
            return jfail(e, "$.surrogate.https_url", "an https:// URL of at most 500 characters");
        if (!mi_service_id_ok(d->self_id) || strlen(d->self_url) > 500)
            return jfail(e, "$.surrogate", "id 1-64 of [A-Za-z0-9._-], url at most 500 characters");
        d->self_heartbeat_s = (int)hb;
        if (!cache_section(d, sg, e))
            return false;
    }
    if (d->has_surrogate && !sg)
        return jfail(e, "$.surrogate", "the surrogate listener needs a surrogate section");
    return true;
}

/* Our own authorities: listeners bound to an address, our surrogate's URL,
 * the last resort, the redirect targets we advertise, "reserved_hosts". */
static bool own_hosts_conf(dcdn *d, json_t *root, jerr *e)
{
    const http_server_conf *ls[] = {&d->op_conf, &d->peer_conf, &d->delivery_conf, &d->surrogate_conf};
    if (!daemon_own_names(root, ls, 4, &d->own_hosts, e))
        return false;
    if (d->self_url && !url_names_add(&d->own_hosts, d->self_url, true))
        return jfail(e, "$.surrogate.url", "not an http(s) URL with a valid host");
    if (d->self_https_url && !url_names_add(&d->own_hosts, d->self_https_url, true))
        return jfail(e, "$.surrogate.https_url", "not an https URL with a valid host");
    if (d->last_resort && !url_names_add(&d->own_hosts, d->last_resort, true))
        return jfail(e, "$.router.last_resort", "not an http(s) URL with a valid host");
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(d->capabilities, "capabilities"), i, c)
    {
        const char *t = json_string_value(json_object_get(c, "capability-type"));
        const char *h = json_string_value(
            json_object_get(json_object_get(json_object_get(c, "capability-value"), "http-target"), "host"));
        if (t && strcmp(t, "FCI.RedirectTarget") == 0 && h)
            url_names_add(&d->own_hosts, h, false);
    }
    return true;
}

/* logging: CDNI logging files for the upstreams (dcdn/logger.c). */
static bool logging_conf(dcdn *d, json_t *root, jerr *e)
{
    static const char *const keys[] = {"dir", "rotate_s", "rotate_bytes", "gzip_level", "retention_s",
                                       "claimed_origin", "session_idle_s", NULL};
    json_t *l = NULL;
    long long rs = 60, rb = 64LL << 20, lvl = 6, ret = 7 * 86400, idle = 120;
    if (!jget_obj(root, "logging", "$", false, &l, e))
        return false;
    if (!l)
        return true;
    if (!jonly(l, "$.logging", keys, e) || !jget_str(l, "dir", "$.logging", true, &d->log_dir, e) ||
        !jget_int(l, "rotate_s", "$.logging", false, 1, 86400, &rs, e) ||
        !jget_int(l, "rotate_bytes", "$.logging", false, 1LL << 20, 1LL << 30, &rb, e) ||
        !jget_int(l, "gzip_level", "$.logging", false, 1, 9, &lvl, e) ||
        !jget_int(l, "retention_s", "$.logging", false, 60, 366LL * 86400, &ret, e) ||
        !jget_str(l, "claimed_origin", "$.logging", false, &d->log_origin, e) ||
        !jget_int(l, "session_idle_s", "$.logging", false, 5, 86400, &idle, e))
        return false;
    d->log_session_idle_s = idle;
    if (strlen(d->log_dir) > 300)
        return jfail(e, "$.logging.dir", "at most 300 characters");
    d->log_rotate_s = (int)rs;
    d->log_rotate_bytes = rb;
    d->log_level = (int)lvl;
    d->log_retention_s = ret;
    if (!d->log_origin)
        d->log_origin = d->cdn_id;
    return true;
}

/* triggers: {"cdn_pid": "AS64500:0", "stale_s": 86400, "preposition_max_bytes_per_s": 0} */
static bool triggers_conf(dcdn *d, json_t *root, jerr *e)
{
    static const char *const keys[] = {"cdn_pid", "stale_s", "preposition_max_bytes_per_s", NULL};
    json_t *t = NULL;
    long long stale = 86400, bps = 0;
    if (!jget_obj(root, "triggers", "$", false, &t, e))
        return false;
    if (!t)
        return true;
    if (!jonly(t, "$.triggers", keys, e) || !jget_str(t, "cdn_pid", "$.triggers", true, &d->cit_pid, e) ||
        !jget_int(t, "stale_s", "$.triggers", false, 60, 366LL * 86400, &stale, e) ||
        !jget_int(t, "preposition_max_bytes_per_s", "$.triggers", false, 0, 1LL << 40, &bps, e))
        return false;
    if (!cit_pid_ok(d->cit_pid))
        return jfail(e, "$.triggers.cdn_pid", "expected a CDN PID, \"AS<number>:<qualifier>\"");
    d->cit_stale_s = stale;
    d->cit_max_bps = bps;
    return true;
}

bool dcdn_config_load(dcdn *d, const char *file, jerr *e)
{
    static const char *const root_keys[] = {"cdn_id", "redis", "log_level", "threads", "listeners",
                                            "limits", "operator_token", "upstreams", "metadata", "capabilities",
                                            "router", "surrogate", "uri_signing", "logging", "triggers", "ui_dir",
                                            "egress", "reserved_hosts", "tls_client", NULL};
    static const char *const up_keys[] = {"id", "metadata_url", "token", "refresh_s", "fci_url",
                                          "heartbeat_s", "ri_token", "uri_signing_keys", "log_fields", "egress",
                                          "client_cert", "tls", NULL};
    static const char *const md_keys[] = {"extra_types", NULL};
    static const char *const listener_names[] = {"operator", "peer", "delivery", "surrogate", NULL};
    json_t *root = jparse_file(file, 1u << 20, e);
    if (!root)
        return false;
    d->config = root;
    if (!json_is_object(root))
        return jfail(e, "$", "expected an object");
    const char *lvl = "info", *op = NULL;
    json_t *ls = NULL, *ups = NULL, *md = NULL, *extra = NULL;
    bool present;
    if (!jonly(root, "$", root_keys, e) || !jget_str(root, "cdn_id", "$", true, &d->cdn_id, e) ||
        !daemon_redis_conf(root, &d->redis_url, e) ||
        !jget_str(root, "log_level", "$", false, &lvl, e) ||
        !jget_obj(root, "listeners", "$", true, &ls, e) ||
        !jonly(ls, "$.listeners", listener_names, e) ||
        !daemon_listener_conf(root, "operator", true, 0, &d->op_conf, &present, e) ||
        !daemon_listener_conf(root, "peer", false, 0, &d->peer_conf, &d->has_peer, e) ||
        !daemon_listener_conf(root, "delivery", false, DELIVERY_HEADER_BYTES, &d->delivery_conf, &d->has_delivery, e) ||
        !daemon_listener_conf(root, "surrogate", false, DELIVERY_HEADER_BYTES, &d->surrogate_conf, &d->has_surrogate, e) ||
        !jget_str(root, "operator_token", "$", false, &op, e) ||
        !jget_str(root, "ui_dir", "$", false, &d->ui_dir, e) ||
        !jget_arr(root, "upstreams", "$", true, &ups, e) ||
        !jget_obj(root, "metadata", "$", false, &md, e))
        return false;
    if (op) {
        d->op_tokens = calloc(1, sizeof *d->op_tokens);
        d->op_tokens[0] = (http_token){op, "operator", NULL};
        d->n_op = 1;
    }
    if (md && (!jonly(md, "$.metadata", md_keys, e) || !jget_arr(md, "extra_types", "$.metadata", false, &extra, e) ||
               (extra && !jstr_array(extra, "$.metadata.extra_types", e))))
        return false;
    size_t ne = extra ? json_array_size(extra) : 0;
    d->extra_types = calloc(ne + 1, sizeof *d->extra_types);
    for (size_t i = 0; i < ne; i++)
        d->extra_types[i] = json_string_value(json_array_get(extra, i));
    d->policy = (mi_policy){d->extra_types, false};
    if (json_array_size(ups) == 0)
        return jfail(e, "$.upstreams", "at least one upstream CDN is needed");
    if (!daemon_client_tls(json_object_get(root, "tls_client"), "$.tls_client", NULL, &d->tls_client, e))
        return false;
    d->ups = calloc(json_array_size(ups), sizeof *d->ups);
    d->peer_tokens = calloc(json_array_size(ups) + 1, sizeof *d->peer_tokens);
    size_t i;
    json_t *u;
    json_array_foreach(ups, i, u)
    {
        char p[JPATH_MAX];
        jpath_idx(p, "$.upstreams", i);
        upstream *up = &d->ups[i];
        long long refresh = 30, hb = 60;
        const char *ri_token = NULL;
        if (!json_is_object(u))
            return jfail(e, p, "expected an object");
        if (!jonly(u, p, up_keys, e) || !jget_str(u, "id", p, true, &up->id, e) ||
            !jget_str(u, "metadata_url", p, true, &up->metadata_url, e) ||
            !jget_str(u, "token", p, true, &up->token, e) ||
            !jget_int(u, "refresh_s", p, false, 1, 86400, &refresh, e) ||
            !jget_str(u, "fci_url", p, false, &up->fci_url, e) ||
            !jget_int(u, "heartbeat_s", p, false, 1, 3600, &hb, e) ||
            !jget_str(u, "ri_token", p, false, &ri_token, e))
            return false;
        const char *ukf = NULL;
        if (!jget_str(u, "uri_signing_keys", p, false, &ukf, e))
            return false;
        if (ukf) {
            char kp[JPATH_MAX];
            jpath_key(kp, p, "uri_signing_keys");
            if (!hop_trust_load(ukf, kp, &up->us_keys, e))
                return false;
        }
        up->heartbeat_s = (int)hb;
        json_t *lf = NULL;
        if (!jget_arr(u, "log_fields", p, false, &lf, e))
            return false;
        if (lf) {
            char lp[JPATH_MAX];
            jpath_key(lp, p, "log_fields");
            if (!jstr_array(lf, lp, e))
                return false;
            if (json_array_size(lf) >= sizeof up->log_fields / sizeof up->log_fields[0])
                return jfail(e, lp, "too many fields");
            for (size_t k = 0; k < json_array_size(lf); k++)
                up->log_fields[k] = json_string_value(json_array_get(lf, k));
            li_fields chk;
            const char *why = NULL;
            if (!li_fields_from_names(up->log_fields, &chk, &why))
                return jfail(e, lp, why);
        }
        if (!daemon_peer_tls(u, p, &d->tls_client, &up->cert, &up->has_cert, &up->tls, e))
            return false;
        if (ri_token && strlen(ri_token) < 16) {
            char tp[JPATH_MAX];
            jpath_key(tp, p, "ri_token");
            return jfail(e, tp, "tokens must be at least 16 characters");
        }
        if (ri_token || up->has_cert) /* the certificate alone will do when no ri_token is given */
            d->peer_tokens[d->n_peer++] = (http_token){ri_token, up->id, up->has_cert ? &up->cert : NULL};
        if (up->fci_url && ((strncmp(up->fci_url, "http://", 7) && strncmp(up->fci_url, "https://", 8)) ||
                            strlen(up->fci_url) > 1024)) {
            char fp[JPATH_MAX];
            jpath_key(fp, p, "fci_url");
            return jfail(e, fp, "expected an absolute http(s) URL");
        }
        url_ref parsed;
        if (url_parse(up->metadata_url, strlen(up->metadata_url), &parsed) != URL_OK ||
            !parsed.authority ||
            !(strncmp(up->metadata_url, "http://", 7) == 0 || strncmp(up->metadata_url, "https://", 8) == 0)) {
            char mp[JPATH_MAX];
            jpath_key(mp, p, "metadata_url");
            return jfail(e, mp, "expected an absolute http(s) URL");
        }
        up->refresh_s = (int)refresh;
        json_t *ueg = json_object_get(u, "egress");
        if (ueg) {
            char ep[JPATH_MAX];
            jpath_key(ep, p, "egress");
            if (!(up->egress = egress_from_json(ueg, ep, e)))
                return false;
        }
        d->n_ups++;
    }
    /* the egress policy, and the upstreams' own endpoints: the operator named them */
    if (!(d->egress = egress_from_json(json_object_get(root, "egress"), "$.egress", e)))
        return false;
    for (size_t k = 0; k < d->n_ups; k++) {
        const upstream *up = &d->ups[k];
        if (!egress_allow_origin(d->egress, up->metadata_url) ||
            (up->fci_url && !egress_allow_origin(d->egress, up->fci_url))) {
            char p[JPATH_MAX];
            jpath_idx(p, "$.upstreams", k);
            return jfail(e, p, "metadata_url and fci_url must be http(s) URLs with a valid host");
        }
    }
    if (d->has_peer && d->n_peer == 0)
        return jfail(e, "$.upstreams", "the peer listener needs an ri_token on at least one upstream");
    if (!router_conf(d, root, e) || !own_hosts_conf(d, root, e) || !hop_keys_parse(root, d->cdn_id, &d->us, e) ||
        !logging_conf(d, root, e) || !triggers_conf(d, root, e))
        return false;
    for (size_t k = 0; k < d->n_ups; k++)
        if (d->ups[k].us_keys.n && !d->us.present)
            return jfail(e, "$.uri_signing", "needed with upstreams[].uri_signing_keys: our key for the surrogates");
    log_setup("dcdn", log_level_from_name(lvl));
    return true;
}

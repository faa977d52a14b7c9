/* Delivery services in Redis, the claims every CSP-API object makes, and
 * the MI catalog built from the services.
 *
 * Tenancy: a service id names a service of the calling CSP only; ids are
 * stored as "<csp>~<id>", so two CSPs each have their own "vod1" and no
 * answer tells one CSP whether another's id exists. What must be unique
 * across CSPs is claimed: a host name (any port of it), a CCID, a
 * Purge-ID, an auth group. A claim belongs to the CSP whose object made
 * it first, until no object of that CSP makes it any more; another CSP's
 * object making it is refused (409).
 *
 * Keys (all on one Cluster slot through the {mi} tag):
 *   cdni:<cdn>:{mi}:services   HASH key -> record JSON {"id","csp","host","updated","service"}
 *   cdni:<cdn>:{mi}:versions   HASH key -> version of that record
 *   cdni:<cdn>:{mi}:svchost    HASH key -> canonical host
 *   cdni:<cdn>:{mi}:hosts      HASH canonical host -> key (one service per host[:port])
 *   cdni:<cdn>:{mi}:version    counter, bumped by every change
 *   cdni:<cdn>:{mi}:history:<key> LIST "<version> <record>" of the last 50
 *   cdni:<cdn>:{mi}:claims     HASH "<kind>:<value>" -> owner CSP (kinds: host, ccid, pid, group)
 *   cdni:<cdn>:{mi}:claimrefs  HASH "<kind>:<value>" -> objects making it
 *   cdni:<cdn>:{mi}:objclaims  HASH "svc:<key>" / "col:<key>" -> JSON array of its claims
 *   cdni:<cdn>:{mi}:schema     "2" once the keys above are in this form
 * Every write is one Lua script, so it is atomic, and it PUBLISHes the new
 * version on cdni:<cdn>:mi:changed: each ucdn instance then rebuilds its
 * catalog, and the MI server never reads Redis per request. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/url.h"
#include "ucdn/ucdn.h"

/* claims_conflict(csp, claims): the first claim another CSP holds, or nil.
 * claims_apply(csp, objkey, claims): the object now makes exactly these. */
#define CLAIMS_LUA                                                                                       \
    "local function claims_conflict(kown, csp, list)\n"                                                  \
    "  for _, c in ipairs(list) do\n"                                                                    \
    "    local o = redis.call('HGET', kown, c)\n"                                                        \
    "    if o and o ~= csp then return c end\n"                                                          \
    "  end\n"                                                                                            \
    "  return nil\n"                                                                                     \
    "end\n"                                                                                              \
    "local function claims_apply(kown, kref, kobj, csp, obj, list)\n"                                    \
    "  local old = {}\n"                                                                                 \
    "  local oj = redis.call('HGET', kobj, obj)\n"                                                       \
    "  if oj then old = cjson.decode(oj) end\n"                                                          \
    "  for _, c in ipairs(list) do\n"                                                                    \
    "    redis.call('HSET', kown, c, csp); redis.call('HINCRBY', kref, c, 1)\n"                          \
    "  end\n"                                                                                            \
    "  for _, c in ipairs(old) do\n"                                                                     \
    "    if redis.call('HINCRBY', kref, c, -1) <= 0 then\n"                                              \
    "      redis.call('HDEL', kref, c); redis.call('HDEL', kown, c) end\n"                               \
    "  end\n"                                                                                            \
    "  if #list > 0 then redis.call('HSET', kobj, obj, cjson.encode(list)) else redis.call('HDEL', kobj, obj) end\n" \
    "end\n"

const char ucdn_claims_lua[] = CLAIMS_LUA;

/* KEYS: services versions svchost hosts version history claims claimrefs objclaims
 * ARGV: key host record if-match channel csp claims-json */
static const char put_script[] =
    CLAIMS_LUA
    "local taken = redis.call('HGET', KEYS[4], ARGV[2])\n"
    "if taken and taken ~= ARGV[1] then\n"
    "  local same = string.sub(taken, 1, #ARGV[6] + 1) == ARGV[6] .. '~'\n"
    "  return redis.error_reply((same and 'CONFLICT_OWN ' .. string.sub(taken, #ARGV[6] + 2)) or 'CONFLICT_OTHER') end\n"
    "local claims = cjson.decode(ARGV[7])\n"
    "local c = claims_conflict(KEYS[7], ARGV[6], claims)\n"
    "if c then return redis.error_reply('CLAIMED ' .. c) end\n"
    "local cur = redis.call('HGET', KEYS[2], ARGV[1])\n"
    "if ARGV[4] ~= '' and ARGV[4] ~= (cur or '0') then\n"
    "  return redis.error_reply('PRECONDITION ' .. (cur or '0')) end\n"
    "local old = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "local oldhost = redis.call('HGET', KEYS[3], ARGV[1])\n"
    "if oldhost and oldhost ~= ARGV[2] then redis.call('HDEL', KEYS[4], oldhost) end\n"
    "claims_apply(KEYS[7], KEYS[8], KEYS[9], ARGV[6], 'svc:' .. ARGV[1], claims)\n"
    "local v = redis.call('INCR', KEYS[5])\n"
    "if old then redis.call('LPUSH', KEYS[6], cur .. ' ' .. old); redis.call('LTRIM', KEYS[6], 0, 49) end\n"
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])\n"
    "redis.call('HSET', KEYS[2], ARGV[1], v)\n"
    "redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])\n"
    "redis.call('HSET', KEYS[4], ARGV[2], ARGV[1])\n"
    "redis.call('PUBLISH', ARGV[5], v)\n"
    "if old then return {v, 0} else return {v, 1} end\n";

/* KEYS as put; ARGV: key channel */
static const char delete_script[] =
    CLAIMS_LUA
    "local old = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if not old then return 0 end\n"
    "local cur = redis.call('HGET', KEYS[2], ARGV[1])\n"
    "local host = redis.call('HGET', KEYS[3], ARGV[1])\n"
    "if host then redis.call('HDEL', KEYS[4], host) end\n"
    "local rec = cjson.decode(old)\n"
    "claims_apply(KEYS[7], KEYS[8], KEYS[9], rec.csp or '', 'svc:' .. ARGV[1], {})\n"
    "local v = redis.call('INCR', KEYS[5])\n"
    "redis.call('LPUSH', KEYS[6], (cur or '0') .. ' ' .. old); redis.call('LTRIM', KEYS[6], 0, 49)\n"
    "redis.call('HDEL', KEYS[1], ARGV[1]); redis.call('HDEL', KEYS[2], ARGV[1]); redis.call('HDEL', KEYS[3], ARGV[1])\n"
    "redis.call('PUBLISH', ARGV[2], v)\n"
    "return v\n";

/* One consistent view: {version, services..., versions...}. */
static const char load_script[] =
    "return {redis.call('GET', KEYS[3]) or '0', redis.call('HGETALL', KEYS[1]), "
    "redis.call('HGETALL', KEYS[2])}\n";

/* Services and collections of the first schema (one id space for every
 * CSP, hosts compared as strings, no claims) moved into this one, once:
 * KEYS services versions svchost hosts claims claimrefs objclaims schema collections
 * ARGV: history key prefix, channel, JSON [{"t": "svc"|"col", "old", "new", "csp", "host", "claims"}].
 * Returns the claims that could not be made (another CSP made them first). */
static const char migrate_script[] =
    CLAIMS_LUA
    "if redis.call('GET', KEYS[8]) == '2' then return {} end\n"
    "local conflicts = {}\n"
    "for _, o in ipairs(cjson.decode(ARGV[3])) do\n"
    "  if o.t == 'svc' then\n"
    "    if o.old ~= o.new then\n"
    "      local rec = redis.call('HGET', KEYS[1], o.old)\n"
    "      local v = redis.call('HGET', KEYS[2], o.old)\n"
    "      redis.call('HSET', KEYS[1], o.new, rec); redis.call('HDEL', KEYS[1], o.old)\n"
    "      if v then redis.call('HSET', KEYS[2], o.new, v); redis.call('HDEL', KEYS[2], o.old) end\n"
    "      redis.call('HDEL', KEYS[3], o.old)\n"
    "      if redis.call('EXISTS', ARGV[1] .. o.old) == 1 then redis.call('RENAME', ARGV[1] .. o.old, ARGV[1] .. o.new) end\n"
    "    end\n"
    "    redis.call('HSET', KEYS[3], o.new, o.host)\n"
    "  elseif o.old ~= o.new then\n"
    "    local rec = redis.call('HGET', KEYS[9], o.old)\n"
    "    redis.call('HSET', KEYS[9], o.new, rec); redis.call('HDEL', KEYS[9], o.old)\n"
    "  end\n"
    "end\n"
    "redis.call('DEL', KEYS[4], KEYS[5], KEYS[6], KEYS[7])\n"
    "for _, o in ipairs(cjson.decode(ARGV[3])) do\n"
    "  if o.t == 'svc' and not redis.call('HGET', KEYS[4], o.host) then redis.call('HSET', KEYS[4], o.host, o.new) end\n"
    "  local mine = {}\n"
    "  for _, c in ipairs(o.claims) do\n"
    "    if claims_conflict(KEYS[5], o.csp, {c}) then table.insert(conflicts, o.new .. ' ' .. c)\n"
    "    else table.insert(mine, c) end\n"
    "  end\n"
    "  claims_apply(KEYS[5], KEYS[6], KEYS[7], o.csp, o.t .. ':' .. o.new, mine)\n"
    "end\n"
    "redis.call('SET', KEYS[8], '2')\n"
    "redis.call('PUBLISH', ARGV[2], 'migrated')\n"
    "return conflicts\n";

/* --- claims -------------------------------------------------------------------- */

static void claim_add(json_t *claims, const char *kind, const char *value)
{
    if (!value || !*value)
        return;
    char c[600];
    snprintf(c, sizeof c, "%s:%s", kind, value);
    size_t i;
    json_t *x;
    json_array_foreach(claims, i, x) if (strcmp(json_string_value(x), c) == 0) return;
    json_array_append_new(claims, json_string(c));
}

/* Every CCID, Purge-ID and auth group a metadata tree names. */
static void tree_claims(json_t *v, json_t *claims)
{
    if (json_is_object(v)) {
        const char *t = json_string_value(json_object_get(v, "generic-metadata-type"));
        json_t *val = json_object_get(v, "generic-metadata-value");
        if (t && !strcmp(t, "MI.Grouping"))
            claim_add(claims, "ccid", json_string_value(json_object_get(val, "ccid")));
        else if (t && !strcmp(t, "CDNIGW.PurgeIdentifier"))
            claim_add(claims, "pid", json_string_value(json_object_get(val, "purge-id")));
        else if (t && !strcmp(t, "CDNIGW.AuthorizationGroup"))
            claim_add(claims, "group", json_string_value(json_object_get(val, "auth-group")));
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x)
            tree_claims(x, claims);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
            tree_claims(x, claims);
    }
}

json_t *ucdn_service_claims(json_t *service, const char *host)
{
    json_t *claims = json_array();
    char name[262];
    snprintf(name, sizeof name, "%.*s", (int)url_host_name_len(host), host);
    claim_add(claims, "host", name);
    tree_claims(service, claims);
    return claims;
}

json_t *ucdn_collection_claims(json_t *rec)
{
    json_t *claims = json_array();
    claim_add(claims, "ccid", json_string_value(json_object_get(rec, "ccid")));
    claim_add(claims, "pid", json_string_value(json_object_get(rec, "purge_id")));
    claim_add(claims, "group", json_string_value(json_object_get(rec, "auth_group")));
    return claims;
}

const char *ucdn_claim_text(const char *claim, char *out, size_t cap)
{
    static const struct {
        const char *kind, *name;
    } k[] = {{"host:", "host"}, {"ccid:", "CCID"}, {"pid:", "Purge-ID"}, {"group:", "auth group"}};
    for (size_t i = 0; i < sizeof k / sizeof *k; i++)
        if (!strncmp(claim, k[i].kind, strlen(k[i].kind))) {
            snprintf(out, cap, "%s \"%s\"", k[i].name, claim + strlen(k[i].kind));
            return out;
        }
    snprintf(out, cap, "%s", claim);
    return out;
}

bool ucdn_claims_owned(ucdn *u, const char *const *claims, size_t n, const char *csp, bool *down)
{
    *down = false;
    if (!n)
        return true;
    const char **argv = calloc(n + 2, sizeof *argv);
    size_t *lens = calloc(n + 2, sizeof *lens);
    argv[0] = "HMGET";
    argv[1] = u->key_claims;
    for (size_t i = 0; i < n; i++)
        argv[i + 2] = claims[i];
    for (size_t i = 0; i < n + 2; i++)
        lens[i] = strlen(argv[i]);
    store_reply *r = store_cmdargv(u->store, (int)n + 2, argv, lens);
    free(argv);
    free(lens);
    if (!r || !store_reply_is(r, STORE_ARRAY) || store_reply_count(r) != n) {
        *down = true;
        store_reply_free(r);
        return false;
    }
    bool all = true;
    for (size_t i = 0; i < n && all; i++)
        all = store_reply_is(store_reply_at(r, i), STORE_STR) && strcmp(store_reply_at_str(r, i, NULL), csp) == 0;
    store_reply_free(r);
    return all;
}

/* --- names nobody may publish -------------------------------------------------- */

bool ucdn_host_reserved(ucdn *u, const char *host)
{
    size_t n = url_host_name_len(host);
    if (url_names_has(&u->reserved, host))
        return true;
    /* the redirect targets the dCDNs advertise (their routers' authorities) */
    snap_ref *ref;
    const route_snap *s = snapshot_acquire(&u->routing, &ref);
    bool hit = false;
    for (size_t p = 0; s && p < s->n_peers && !hit; p++)
        for (size_t c = 0; s->fci[p] && c < s->fci[p]->n && !hit; c++) {
            const fci_capability *cap = &s->fci[p]->caps[c];
            char t[262];
            size_t tl;
            hit = cap->type == FCI_REDIRECT_TARGET && cap->http_target &&
                  url_canon_host(cap->http_target, strlen(cap->http_target), false, t, sizeof t, &tl) ==
                      URL_CANON_OK &&
                  tl == n && !memcmp(t, host, n);
        }
    snapshot_release(&u->routing, ref);
    return hit;
}

/* --- keys ------------------------------------------------------------------------ */

bool ucdn_object_key(const char *csp, const char *id, char *out, size_t cap)
{
    return (size_t)snprintf(out, cap, "%s~%s", csp, id) < cap;
}

static void history_key(const ucdn *u, const char *key, char *out, size_t cap)
{
    snprintf(out, cap, "%s:%s", u->key_history, key);
}

static long long version_of(const store_reply *versions, const char *id)
{
    const char *v = store_hash_get(versions, id, NULL);
    return v ? atoll(v) : 0;
}

/* --- the first schema's data, moved once ------------------------------------------ */

/* One object of the migration plan: its key now and in the current
 * schema, owner, canonical host (services) and claims (taken). */
static void plan_add(json_t *plan, const char *type, const char *key, json_t *rec, const char *host, json_t *claims)
{
    const char *csp = json_string_value(json_object_get(rec, "csp"));
    bool svc = !strcmp(type, "svc");
    if (!csp || !claims || (svc && (!host || !host[0]))) {
        log_kv(LOG_ERROR, "record left as it is: no owner or no valid host", "type", type, "key", key, NULL);
        json_decref(claims);
        return;
    }
    char nk[300];
    if (strchr(key, '~'))
        snprintf(nk, sizeof nk, "%s", key);
    else
        ucdn_object_key(csp, key, nk, sizeof nk);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:o}", "t", type, "old", key, "new", nk, "csp", csp, "claims", claims);
    if (svc)
        json_object_set_new(o, "host", json_string(host));
    json_array_append_new(plan, o);
}

static bool migrate(ucdn *u)
{
    store_reply *sch = store_cmd(u->store, "GET %s", u->key_schema);
    if (!sch)
        return false;
    bool done = store_reply_is(sch, STORE_STR) && strcmp(store_reply_str(sch, NULL), "2") == 0;
    store_reply_free(sch);
    if (done)
        return true;
    store_reply *svcs = store_cmd(u->store, "HGETALL %s", u->key_services);
    store_reply *cols = svcs ? store_cmd(u->store, "HGETALL %s", u->key_collections) : NULL;
    bool ok = svcs && cols && store_reply_is(svcs, STORE_ARRAY) && store_reply_is(cols, STORE_ARRAY);
    json_t *plan = json_array();
    for (size_t i = 0; ok && i + 1 < store_reply_count(svcs); i += 2) {
        json_t *rec = store_reply_json(store_reply_at(svcs, i + 1));
        const char *host = json_string_value(json_object_get(rec, "host"));
        char ch[262];
        if (!host || url_canon_host(host, strlen(host), true, ch, sizeof ch, NULL) != URL_CANON_OK)
            ch[0] = 0;
        plan_add(plan, "svc", store_reply_at_str(svcs, i, NULL), rec, ch,
                 ch[0] ? ucdn_service_claims(json_object_get(rec, "service"), ch) : NULL);
        json_decref(rec);
    }
    for (size_t i = 0; ok && i + 1 < store_reply_count(cols); i += 2) {
        json_t *rec = store_reply_json(store_reply_at(cols, i + 1));
        plan_add(plan, "col", store_reply_at_str(cols, i, NULL), rec, NULL, ucdn_collection_claims(rec));
        json_decref(rec);
    }
    store_reply_free(svcs);
    if (cols)
        store_reply_free(cols);
    char *txt = ok ? json_dumps(plan, JSON_COMPACT) : NULL;
    json_decref(plan);
    if (!txt)
        return false;
    char hprefix[200];
    snprintf(hprefix, sizeof hprefix, "%s:", u->key_history);
    const char *argv[] = {"EVAL", migrate_script, "9", u->key_services, u->key_versions, u->key_svchost,
                          u->key_hosts, u->key_claims, u->key_claimrefs, u->key_objclaims, u->key_schema,
                          u->key_collections, hprefix, u->channel, txt};
    size_t lens[15];
    for (size_t k = 0; k < 15; k++)
        lens[k] = strlen(argv[k]);
    store_reply *r = store_cmdargv(u->store, 15, argv, lens);
    free(txt);
    ok = r && store_reply_is(r, STORE_ARRAY);
    for (size_t i = 0; ok && i < store_reply_count(r); i++)
        log_kv(LOG_ERROR, "a CSP-API object makes a claim another CSP's object made first; left unclaimed: its "
                          "owner should give it up or the operator should settle it",
               "object and claim", store_reply_at_str(r, i, NULL), NULL);
    if (r && store_reply_is(r, STORE_ERR))
        log_kv(LOG_ERROR, "the service store could not be brought to the current schema", "detail", store_reply_str(r, NULL), NULL);
    store_reply_free(r);
    return ok;
}

/* --- the catalog ------------------------------------------------------------------------ */

bool ucdn_catalog_report(ucdn *u, json_t *into)
{
    size_t n = atomic_load(&u->catalog_services);
    long long lost = atomic_load(&u->catalog_lost_ms);
    json_t *o = json_pack("{s:I, s:I, s:s}", "services", (json_int_t)n, "version",
                          (json_int_t)atomic_load(&u->catalog_max_version), "state", n ? "ok" : "empty");
    if (!n)
        json_object_set_new(o, "note", json_string("no delivery service is published: every content request is "
                                                   "answered 404"));
    if (lost) {
        char when[CLOCK_ISO8601_LEN];
        clock_iso8601(lost / 1000, when);
        json_object_set_new(o, "lost_at", json_string(when));
        json_object_set_new(o, "note", json_string(n ? "Redis lost catalog data (or was restored from an older "
                                                       "copy); CSPs must publish again what is missing"
                                                     : "Redis lost the catalog (or was restored from an older "
                                                       "copy): every content request is answered 404 until "
                                                       "CSPs publish again"));
    }
    json_object_set_new(into, "catalog", o);
    return n || !lost; /* an empty catalog is news only when it was not empty */
}

bool ucdn_reload(ucdn *u)
{
    pthread_mutex_lock(&u->reload_mu);
    if (!u->schema_ok)
        u->schema_ok = migrate(u);
    store_reply *r = u->schema_ok ? store_cmd(u->store, "EVAL %s 3 %s %s %s", load_script, u->key_services,
                                             u->key_versions, u->key_version)
                                 : NULL;
    bool ok = false;
    if (!r || !store_reply_is(r, STORE_ARRAY) || store_reply_count(r) != 3) {
        metric_add(u->m_reload_errors, 1);
        goto out;
    }
    const store_reply *svcs = store_reply_at(r, 1);
    size_t n = store_reply_count(svcs) / 2, k = 0;
    mi_service *list = calloc(n + 1, sizeof *list);
    json_t **records = calloc(n + 1, sizeof *records);
    for (size_t i = 0; i < n; i++) {
        json_t *rec = store_reply_json(store_reply_at(svcs, 2 * i + 1));
        json_t *svc = json_object_get(rec, "service");
        const char *host = json_string_value(json_object_get(rec, "host"));
        if (!rec || !svc || !host) {
            log_kv(LOG_ERROR, "unreadable service record skipped", "id", store_reply_at_str(svcs, 2 * i, NULL), NULL);
            json_decref(rec);
            continue;
        }
        records[k] = rec;
        list[k++] = (mi_service){store_reply_at_str(svcs, 2 * i, NULL), host, svc};
    }
    unsigned long long version = strtoull(store_reply_at_str(r, 0, NULL) ? store_reply_at_str(r, 0, NULL) : "0", NULL, 10);
    unsigned long long seen = atomic_load(&u->catalog_max_version);
    if (version < seen) {
        /* Redis came back empty or from an older copy: say so, and take the
         * version on from where it was, so that no version (nor ETag made
         * of it) names two different catalogs */
        char v1[24], v2[24], nsvc[24];
        snprintf(v1, sizeof v1, "%llu", version);
        snprintf(v2, sizeof v2, "%llu", seen);
        snprintf(nsvc, sizeof nsvc, "%zu", k);
        log_kv(LOG_ERROR, "the catalog in Redis is older than this instance had seen: Redis lost data or was "
                          "restored from an older copy; CSPs must publish again what is missing",
               "version", v1, "seen", v2, "services", nsvc, NULL);
        atomic_store(&u->catalog_lost_ms, wall_ms());
        snprintf(v2, sizeof v2, "%llu", seen + 1);
        store_reply *b = store_cmd(u->store, "EVAL %s 1 %s %s",
                                  "if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then "
                                  "redis.call('SET', KEYS[1], ARGV[1]) end return 1",
                                  u->key_version, v2);
        if (b && store_reply_is(b, STORE_INT))
            version = seen + 1;
        store_reply_free(b);
    }
    if (version > seen)
        atomic_store(&u->catalog_max_version, version);
    size_t before = atomic_exchange(&u->catalog_services, k);
    if (k == 0 && (before > 0 || !atomic_load(&u->redis_seen)))
        log_kv(LOG_WARN, "the catalog is empty: no delivery service is published, so every content request is "
                         "answered 404",
               NULL);
    /* when we re-sign, peers see tokens from us: the metadata they get says so */
    mi_service *peer_list = list;
    json_t **peer_md = NULL;
    if (u->us.present) {
        peer_list = calloc(k + 1, sizeof *peer_list);
        peer_md = calloc(k + 1, sizeof *peer_md);
        for (size_t i = 0; i < k; i++) {
            peer_md[i] = json_deep_copy(list[i].metadata);
            hop_policy_for_peers(peer_md[i], u->us.conf.issuer);
            peer_list[i] = (mi_service){list[i].id, list[i].host, peer_md[i]};
        }
    }
    mi_catalog *c = mi_catalog_build(peer_list, k, u->public_url, u->link_paths, version);
    if (peer_md) {
        for (size_t i = 0; i < k; i++)
            json_decref(peer_md[i]);
        free(peer_md);
        free(peer_list);
    }
    /* the same services as one resolvable HostIndex, for request routing */
    json_t *hosts = json_array();
    for (size_t i = 0; i < k; i++) {
        json_t *hm = json_deep_copy(list[i].metadata);
        json_object_del(hm, "host");
        json_array_append_new(hosts, json_pack("{s:s, s:o}", "host", list[i].host, "host-metadata", hm));
    }
    json_t *hi = json_pack("{s:o}", "hosts", hosts);
    mi_policy pol = {u->extra_types, false};
    jerr e;
    mi_host_index *x = mi_host_index_from_json(hi, "$", &pol, &e);
    json_decref(hi);
    if (x && !mi_index_build(x)) {
        mi_host_index_free(x);
        x = NULL;
    }
    ucdn_index *ix = x ? calloc(1, sizeof *ix) : NULL;
    if (ix && (ix->csp = calloc(k + 1, sizeof *ix->csp)) != NULL) {
        ix->x = x;
        for (size_t i = 0; i < k && i < x->n_hosts; i++) /* hosts keep the list's order */
            ix->csp[i] = strdup(json_string_value(json_object_get(records[i], "csp")) ?: "");
    } else if (ix) {
        free(ix);
        ix = NULL;
    }
    if (!ix) {
        mi_host_index_free(x);
        log_kv(LOG_ERROR, "routing index of the services failed; keeping the previous one", "path",
               e.path, "reason", e.reason, NULL);
    } else {
        snapshot_publish(&u->index, ix);
    }
    for (size_t i = 0; i < k; i++)
        json_decref(records[i]);
    free(records);
    free(list);
    if (c) {
        snapshot_publish(&u->catalog, c);
        metric_set(u->m_services, k);
        metric_set(u->m_version, version);
        metric_add(u->m_reloads, 1);
        atomic_store(&u->redis_seen, true);
        ok = true;
    }
out:
    store_reply_free(r);
    pthread_mutex_unlock(&u->reload_mu);
    return ok;
}

/* --- the CSP's operations ------------------------------------------------------------------ */

svc_status ucdn_service_put(ucdn *u, const char *csp, const char *id, const char *host, json_t *service,
                            const char *if_match, long long *version, char *detail, size_t detail_cap)
{
    char key[300], hkey[460];
    if (!ucdn_object_key(csp, id, key, sizeof key))
        return SVC_DOWN;
    history_key(u, key, hkey, sizeof hkey);
    json_t *claims = ucdn_service_claims(service, host);
    char *ctext = json_dumps(claims, JSON_COMPACT);
    json_decref(claims);
    json_t *rec = json_pack("{s:s, s:s, s:s, s:I, s:O}", "id", id, "csp", csp, "host", host, "updated",
                            (json_int_t)time(NULL), "service", service);
    char *text = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    const char *argv[] = {"EVAL", put_script, "9", u->key_services, u->key_versions, u->key_svchost,
                          u->key_hosts, u->key_version, hkey, u->key_claims, u->key_claimrefs, u->key_objclaims,
                          key, host, text, if_match ? if_match : "", u->channel, csp, ctext};
    enum { N = sizeof argv / sizeof *argv };
    size_t lens[N];
    for (size_t k = 0; k < N; k++)
        lens[k] = strlen(argv[k]);
    bool durable;
    store_reply *r = store_cmdargv_durable(u->store, N, argv, lens, &durable);
    free(text);
    free(ctext);
    if (!r)
        return SVC_DOWN;
    svc_status st = SVC_DOWN;
    if (store_reply_is(r, STORE_ERR)) {
        char what[600];
        const char *e = store_reply_str(r, NULL);
        if (strncmp(e, "ERR ", 4) == 0) /* Redis 7 prefixes a script's one-word error */
            e += 4;
        if (strncmp(e, "CONFLICT_OWN ", 13) == 0) {
            snprintf(detail, detail_cap, "host %s is already published by your delivery service %s", host, e + 13);
            st = SVC_CONFLICT;
        } else if (strcmp(e, "CONFLICT_OTHER") == 0) {
            snprintf(detail, detail_cap, "host %s is published by another CSP", host);
            st = SVC_CONFLICT;
        } else if (strncmp(e, "CLAIMED ", 8) == 0) {
            snprintf(detail, detail_cap, "%s belongs to another CSP", ucdn_claim_text(e + 8, what, sizeof what));
            st = SVC_CONFLICT;
        } else if (strncmp(e, "PRECONDITION ", 13) == 0) {
            snprintf(detail, detail_cap, "current version is %s", e + 13);
            st = SVC_PRECONDITION;
        } else {
            log_kv(LOG_ERROR, "redis refused a service write", "detail", e, NULL);
        }
    } else if (store_reply_is(r, STORE_ARRAY) && store_reply_count(r) == 2) {
        *version = store_reply_int(store_reply_at(r, 0));
        st = store_reply_int(store_reply_at(r, 1)) ? SVC_CREATED : SVC_OK;
        metric_add(u->m_writes, 1);
    }
    store_reply_free(r);
    if (st == SVC_OK || st == SVC_CREATED)
        ucdn_reload(u); /* read-your-writes on this instance without waiting for pub/sub */
    if ((st == SVC_OK || st == SVC_CREATED) && !durable)
        st = SVC_NOT_DURABLE;
    return st;
}

svc_status ucdn_service_delete(ucdn *u, const char *csp, const char *id, long long *version)
{
    char key[300], hkey[460];
    if (!ucdn_object_key(csp, id, key, sizeof key))
        return SVC_NOT_FOUND;
    history_key(u, key, hkey, sizeof hkey);
    const char *argv[] = {"EVAL", delete_script, "9", u->key_services, u->key_versions, u->key_svchost,
                          u->key_hosts, u->key_version, hkey, u->key_claims, u->key_claimrefs, u->key_objclaims,
                          key, u->channel};
    enum { N = sizeof argv / sizeof *argv };
    size_t lens[N];
    for (size_t k = 0; k < N; k++)
        lens[k] = strlen(argv[k]);
    bool durable;
    store_reply *r = store_cmdargv_durable(u->store, N, argv, lens, &durable);
    if (!r)
        return SVC_DOWN;
    svc_status st = SVC_DOWN;
    if (store_reply_is(r, STORE_INT)) {
        st = store_reply_int(r) ? SVC_OK : SVC_NOT_FOUND;
        *version = store_reply_int(r);
        if (store_reply_int(r))
            metric_add(u->m_writes, 1);
    } else if (store_reply_is(r, STORE_ERR)) {
        log_kv(LOG_ERROR, "redis refused a service delete", "detail", store_reply_str(r, NULL), NULL);
    }
    store_reply_free(r);
    if (st == SVC_OK)
        ucdn_reload(u);
    return st == SVC_OK && !durable ? SVC_NOT_DURABLE : st;
}

json_t *ucdn_service_get(ucdn *u, const char *csp, const char *id, svc_status *st)
{
    char key[300];
    *st = SVC_NOT_FOUND;
    if (!ucdn_object_key(csp, id, key, sizeof key))
        return NULL;
    const char *argv[] = {"HGET", u->key_services, key};
    const char *argv2[] = {"HGET", u->key_versions, key};
    size_t l1[] = {4, strlen(argv[1]), strlen(key)}, l2[] = {4, strlen(argv2[1]), strlen(key)};
    int argc[] = {3, 3};
    const char **av[] = {argv, argv2};
    const size_t *al[] = {l1, l2};
    store_reply *rep[2];
    *st = SVC_DOWN;
    if (store_pipeline(u->store, 2, argc, av, al, rep) != 2) {
        for (int i = 0; i < 2; i++)
            store_reply_free(rep[i]);
        return NULL;
    }
    json_t *rec = NULL;
    *st = SVC_NOT_FOUND;
    if (store_reply_is(rep[0], STORE_STR)) {
        rec = store_reply_json(rep[0]);
        const char *owner = json_string_value(json_object_get(rec, "csp"));
        if (rec && owner && strcmp(owner, csp) == 0) {
            json_object_set_new(rec, "version",
                                json_integer(store_reply_is(rep[1], STORE_STR) ? atoll(store_reply_str(rep[1], NULL)) : 0));
            *st = SVC_OK;
        } else {
            json_decref(rec);
            rec = NULL;
        }
    }
    store_reply_free(rep[0]);
    store_reply_free(rep[1]);
    return rec;
}

json_t *ucdn_service_list(ucdn *u, const char *csp, svc_status *st)
{
    store_reply *r = store_cmd(u->store, "EVAL %s 3 %s %s %s", load_script, u->key_services,
                              u->key_versions, u->key_version);
    *st = SVC_DOWN;
    if (!r || !store_reply_is(r, STORE_ARRAY) || store_reply_count(r) != 3) {
        store_reply_free(r);
        return NULL;
    }
    json_t *items = json_array();
    const store_reply *svcs = store_reply_at(r, 1);
    size_t cl = strlen(csp);
    for (size_t i = 0; i + 1 < store_reply_count(svcs); i += 2) {
        const char *key = store_reply_at_str(svcs, i, NULL);
        if (strncmp(key, csp, cl) != 0 || key[cl] != '~')
            continue; /* another CSP's */
        json_t *rec = store_reply_json(store_reply_at(svcs, i + 1));
        const char *owner = json_string_value(json_object_get(rec, "csp"));
        if (rec && owner && strcmp(owner, csp) == 0)
            json_array_append_new(items, json_pack("{s:O, s:O, s:I, s:O}", "id", json_object_get(rec, "id"),
                                                   "host", json_object_get(rec, "host"), "version",
                                                   (json_int_t)version_of(store_reply_at(r, 2), key), "updated",
                                                   json_object_get(rec, "updated")));
        json_decref(rec);
    }
    json_t *out = json_pack("{s:o, s:I}", "services", items, "catalog_version",
                            (json_int_t)atoll(store_reply_at_str(r, 0, NULL) ? store_reply_at_str(r, 0, NULL) : "0"));
    store_reply_free(r);
    *st = SVC_OK;
    return out;
}

json_t *ucdn_service_history(ucdn *u, const char *csp, const char *id, svc_status *st)
{
    char key[300], hkey[460];
    *st = SVC_NOT_FOUND;
    if (!ucdn_object_key(csp, id, key, sizeof key))
        return NULL;
    history_key(u, key, hkey, sizeof hkey);
    store_reply *r = store_cmd(u->store, "LRANGE %s 0 -1", hkey);
    *st = SVC_DOWN;
    if (!r || !store_reply_is(r, STORE_ARRAY)) {
        store_reply_free(r);
        return NULL;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < store_reply_count(r); i++) {
        const char *s = store_reply_at_str(r, i, NULL), *sp = strchr(s, ' ');
        if (!sp)
            continue;
        json_t *rec = json_loads(sp + 1, 0, NULL);
        if (rec) {
            json_object_set_new(rec, "version", json_integer(atoll(s)));
            json_array_append_new(items, rec);
        }
    }
    store_reply_free(r);
    *st = SVC_OK;
    return json_pack("{s:s, s:o}", "id", id, "previous_versions", items);
}

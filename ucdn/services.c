/* Delivery services in Redis, and the MI catalog built from them.
 *
 * Keys (all on one Cluster slot through the {mi} tag):
 *   cdni:<cdn>:{mi}:services   HASH id -> record JSON (as the CSP sent it)
 *   cdni:<cdn>:{mi}:versions   HASH id -> version of that record
 *   cdni:<cdn>:{mi}:svchost    HASH id -> lower-cased host
 *   cdni:<cdn>:{mi}:hosts      HASH host -> id (one service per host)
 *   cdni:<cdn>:{mi}:version    counter, bumped by every change
 *   cdni:<cdn>:{mi}:history:<id> LIST "<version> <record>" of the last 50
 * Every write is one Lua script, so it is atomic, and it PUBLISHes the new
 * version on cdni:<cdn>:mi:changed: each ucdn instance then rebuilds its
 * catalog, and the MI server never reads Redis per request. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "ucdn/ucdn.h"

static const char put_script[] =
    "local owner = redis.call('HGET', KEYS[4], ARGV[2])\n"
    "if owner and owner ~= ARGV[1] then return redis.error_reply('CONFLICT ' .. owner) end\n"
    "local cur = redis.call('HGET', KEYS[2], ARGV[1])\n"
    "if ARGV[4] ~= '' and ARGV[4] ~= (cur or '0') then\n"
    "  return redis.error_reply('PRECONDITION ' .. (cur or '0')) end\n"
    "local old = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "local oldhost = redis.call('HGET', KEYS[3], ARGV[1])\n"
    "if oldhost and oldhost ~= ARGV[2] then redis.call('HDEL', KEYS[4], oldhost) end\n"
    "local v = redis.call('INCR', KEYS[5])\n"
    "if old then redis.call('LPUSH', KEYS[6], cur .. ' ' .. old); redis.call('LTRIM', KEYS[6], 0, 49) end\n"
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])\n"
    "redis.call('HSET', KEYS[2], ARGV[1], v)\n"
    "redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])\n"
    "redis.call('HSET', KEYS[4], ARGV[2], ARGV[1])\n"
    "redis.call('PUBLISH', ARGV[5], v)\n"
    "if old then return {v, 0} else return {v, 1} end\n";

static const char delete_script[] =
    "local old = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if not old then return 0 end\n"
    "local cur = redis.call('HGET', KEYS[2], ARGV[1])\n"
    "local host = redis.call('HGET', KEYS[3], ARGV[1])\n"
    "if host then redis.call('HDEL', KEYS[4], host) end\n"
    "local v = redis.call('INCR', KEYS[5])\n"
    "redis.call('LPUSH', KEYS[6], (cur or '0') .. ' ' .. old); redis.call('LTRIM', KEYS[6], 0, 49)\n"
    "redis.call('HDEL', KEYS[1], ARGV[1]); redis.call('HDEL', KEYS[2], ARGV[1]); redis.call('HDEL', KEYS[3], ARGV[1])\n"
    "redis.call('PUBLISH', ARGV[2], v)\n"
    "return v\n";

/* One consistent view: {version, services..., versions...}. */
static const char load_script[] =
    "return {redis.call('GET', KEYS[3]) or '0', redis.call('HGETALL', KEYS[1]), "
    "redis.call('HGETALL', KEYS[2])}\n";

static void history_key(const ucdn *u, const char *id, char *out, size_t cap)
{
    snprintf(out, cap, "%s:%s", u->key_history, id);
}

static long long version_of(redisReply *versions, const char *id)
{
    for (size_t i = 0; i + 1 < versions->elements; i += 2)
        if (strcmp(versions->element[i]->str, id) == 0)
            return atoll(versions->element[i + 1]->str);
    return 0;
}

bool ucdn_reload(ucdn *u)
{
    pthread_mutex_lock(&u->reload_mu);
    redisReply *r = store_cmd(u->store, "EVAL %s 3 %s %s %s", load_script, u->key_services,
                              u->key_versions, u->key_version);
    bool ok = false;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
        metric_add(u->m_reload_errors, 1);
        goto out;
    }
    redisReply *svcs = r->element[1];
    size_t n = svcs->elements / 2, k = 0;
    mi_service *list = calloc(n + 1, sizeof *list);
    json_t **records = calloc(n + 1, sizeof *records);
    for (size_t i = 0; i < n; i++) {
        json_t *rec = json_loads(svcs->element[2 * i + 1]->str, 0, NULL);
        json_t *svc = json_object_get(rec, "service");
        const char *host = json_string_value(json_object_get(rec, "host"));
        if (!rec || !svc || !host) {
            log_kv(LOG_ERROR, "unreadable service record skipped", "id", svcs->element[2 * i]->str, NULL);
            json_decref(rec);
            continue;
        }
        records[k] = rec;
        list[k++] = (mi_service){svcs->element[2 * i]->str, host, svc};
    }
    unsigned long long version = strtoull(r->element[0]->str ? r->element[0]->str : "0", NULL, 10);
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
    if (r)
        freeReplyObject(r);
    pthread_mutex_unlock(&u->reload_mu);
    return ok;
}

svc_status ucdn_service_put(ucdn *u, const char *id, const char *csp, const char *host,
                            json_t *service, const char *if_match, long long *version,
                            char *detail, size_t detail_cap)
{
    char host_lc[300];
    size_t i = 0;
    for (; host[i] && i + 1 < sizeof host_lc; i++)
        host_lc[i] = (char)tolower((unsigned char)host[i]);
    host_lc[i] = 0;
    json_t *rec = json_pack("{s:s, s:s, s:s, s:I, s:O}", "id", id, "csp", csp, "host", host,
                            "updated", (json_int_t)time(NULL), "service", service);
    char *text = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    char hkey[256];
    history_key(u, id, hkey, sizeof hkey);
    const char *argv[] = {"EVAL", put_script, "6", u->key_services, u->key_versions,
                          u->key_svchost, u->key_hosts, u->key_version, hkey,
                          id, host_lc, text, if_match ? if_match : "", u->channel};
    size_t lens[14];
    for (size_t k = 0; k < 14; k++)
        lens[k] = strlen(argv[k]);
    redisReply *r = store_cmdargv(u->store, 14, argv, lens);
    free(text);
    if (!r)
        return SVC_DOWN;
    svc_status st = SVC_DOWN;
    if (r->type == REDIS_REPLY_ERROR) {
        if (strncmp(r->str, "CONFLICT ", 9) == 0) {
            snprintf(detail, detail_cap, "host %s is already published by delivery service %s", host,
                     r->str + 9);
            st = SVC_CONFLICT;
        } else if (strncmp(r->str, "PRECONDITION ", 13) == 0) {
            snprintf(detail, detail_cap, "current version is %s", r->str + 13);
            st = SVC_PRECONDITION;
        } else {
            log_kv(LOG_ERROR, "redis refused a service write", "detail", r->str, NULL);
        }
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        *version = r->element[0]->integer;
        st = r->element[1]->integer ? SVC_CREATED : SVC_OK;
        metric_add(u->m_writes, 1);
    }
    freeReplyObject(r);
    if (st == SVC_OK || st == SVC_CREATED)
        ucdn_reload(u); /* read-your-writes on this instance without waiting for pub/sub */
    return st;
}

svc_status ucdn_service_delete(ucdn *u, const char *id, long long *version)
{
    char hkey[256];
    history_key(u, id, hkey, sizeof hkey);
    redisReply *r = store_cmd(u->store, "EVAL %s 6 %s %s %s %s %s %s %s %s", delete_script,
                              u->key_services, u->key_versions, u->key_svchost, u->key_hosts,
                              u->key_version, hkey, id, u->channel);
    if (!r)
        return SVC_DOWN;
    svc_status st = SVC_DOWN;
    if (r->type == REDIS_REPLY_INTEGER) {
        st = r->integer ? SVC_OK : SVC_NOT_FOUND;
        *version = r->integer;
        if (r->integer)
            metric_add(u->m_writes, 1);
    }
    freeReplyObject(r);
    if (st == SVC_OK)
        ucdn_reload(u);
    return st;
}

json_t *ucdn_service_get(ucdn *u, const char *id, svc_status *st)
{
    const char *argv[] = {"HGET", u->key_services, id};
    const char *argv2[] = {"HGET", u->key_versions, id};
    size_t l1[] = {4, strlen(argv[1]), strlen(id)}, l2[] = {4, strlen(argv2[1]), strlen(id)};
    int argc[] = {3, 3};
    const char **av[] = {argv, argv2};
    const size_t *al[] = {l1, l2};
    redisReply *rep[2];
    *st = SVC_DOWN;
    if (store_pipeline(u->store, 2, argc, av, al, rep) != 2) {
        for (int i = 0; i < 2; i++)
            if (rep[i])
                freeReplyObject(rep[i]);
        return NULL;
    }
    json_t *rec = NULL;
    *st = SVC_NOT_FOUND;
    if (rep[0]->type == REDIS_REPLY_STRING) {
        rec = json_loads(rep[0]->str, 0, NULL);
        if (rec) {
            json_object_set_new(rec, "version",
                                json_integer(rep[1]->type == REDIS_REPLY_STRING ? atoll(rep[1]->str) : 0));
            *st = SVC_OK;
        }
    }
    freeReplyObject(rep[0]);
    freeReplyObject(rep[1]);
    return rec;
}

json_t *ucdn_service_list(ucdn *u, const char *csp, svc_status *st)
{
    redisReply *r = store_cmd(u->store, "EVAL %s 3 %s %s %s", load_script, u->key_services,
                              u->key_versions, u->key_version);
    *st = SVC_DOWN;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
        if (r)
            freeReplyObject(r);
        return NULL;
    }
    json_t *items = json_array();
    redisReply *svcs = r->element[1];
    for (size_t i = 0; i + 1 < svcs->elements; i += 2) {
        json_t *rec = json_loads(svcs->element[i + 1]->str, 0, NULL);
        const char *owner = json_string_value(json_object_get(rec, "csp"));
        if (rec && owner && strcmp(owner, csp) == 0)
            json_array_append_new(items, json_pack("{s:O, s:O, s:I, s:O}", "id", json_object_get(rec, "id"),
                                                   "host", json_object_get(rec, "host"), "version",
                                                   (json_int_t)version_of(r->element[2], svcs->element[i]->str),
                                                   "updated", json_object_get(rec, "updated")));
        json_decref(rec);
    }
    json_t *out = json_pack("{s:o, s:I}", "services", items, "catalog_version",
                            (json_int_t)atoll(r->element[0]->str ? r->element[0]->str : "0"));
    freeReplyObject(r);
    *st = SVC_OK;
    return out;
}

json_t *ucdn_service_history(ucdn *u, const char *id, svc_status *st)
{
    char hkey[256];
    history_key(u, id, hkey, sizeof hkey);
    redisReply *r = store_cmd(u->store, "LRANGE %s 0 -1", hkey);
    *st = SVC_DOWN;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject(r);
        return NULL;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < r->elements; i++) {
        const char *s = r->element[i]->str, *sp = strchr(s, ' ');
        if (!sp)
            continue;
        json_t *rec = json_loads(sp + 1, 0, NULL);
        if (rec) {
            json_object_set_new(rec, "version", json_integer(atoll(s)));
            json_array_append_new(items, rec);
        }
    }
    freeReplyObject(r);
    *st = SVC_OK;
    return json_pack("{s:s, s:o}", "id", id, "previous_versions", items);
}

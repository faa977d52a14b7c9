/* CI/T completion (the router role): a trigger's status from what its
 * target surrogates acknowledged, the executors alive, and
 * staleresourcetime. The design is in triggers.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/thread.h"
#include "dcdn/triggers_int.h"

static bool in_list(json_t *a, const char *s)
{
    size_t i;
    json_t *x;
    json_array_foreach(a, i, x) if (strcmp(json_string_value(x) ?: "", s) == 0) return true;
    return false;
}

static void check_one(struct triggers *tg, const char *id, store_reply *h, store_reply *acks, json_t *alive,
                      store_batch *w)
{
    dcdn *d = tg->d;
    if (!store_reply_is(h, STORE_ARRAY) || store_reply_count(h) != 4 || !store_reply_is(store_reply_at(h, 0), STORE_STR)) {
        if (store_reply_is(h, STORE_ARRAY)) { /* gone */
            char ko[200];
            tg_tkey(d, ko, sizeof ko, "open", NULL);
            const char *a[] = {"SREM", ko, id};
            store_batch_add(w, 3, a);
        }
        return;
    }
    json_t *t = json_pack("{s:s, s:s, s:s, s:s}", "status", store_reply_at_str(h, 0, NULL), "targets",
                          store_reply_is(store_reply_at(h, 1), STORE_STR) ? store_reply_at_str(h, 1, NULL) : "[]", "spec",
                          store_reply_is(store_reply_at(h, 2), STORE_STR) ? store_reply_at_str(h, 2, NULL) : "{}", "version",
                          store_reply_is(store_reply_at(h, 3), STORE_STR) ? store_reply_at_str(h, 3, NULL) : "1");
    cit_status st;
    cit_status_parse(tg_field(t, "status"), &st);
    if (cit_status_final(st)) {
        json_decref(t);
        return;
    }
    json_t *targets = json_loads(tg_field(t, "targets") ?: "[]", 0, NULL), *errors = json_array();
    size_t waiting = 0, dead = 0, acked = 0, k;
    json_t *x;
    json_array_foreach(targets, k, x)
    {
        const char *sid = json_string_value(x);
        json_t *ack = NULL;
        for (size_t j = 0; store_reply_is(acks, STORE_ARRAY) && j + 1 < store_reply_count(acks); j += 2)
            if (strcmp(store_reply_at_str(acks, j, NULL), sid) == 0)
                ack = store_reply_json(store_reply_at(acks, j + 1));
        if (!ack) {
            waiting++;
            dead += !in_list(alive, sid);
        } else {
            acked++;
            json_array_extend(errors, json_object_get(ack, "errors"));
            json_decref(ack);
        }
    }
    json_decref(targets);
    cit_spec s = {0};
    bool parsed = false;
    if (waiting && waiting == dead) { /* its type decides what an offline executor means */
        json_t *spec = json_loads(tg_field(t, "spec") ?: "{}", 0, NULL);
        jerr e = {0};
        parsed = cit_spec_from_json(spec, atoi(tg_field(t, "version") ?: "1"), &s, &e);
        json_decref(spec);
    }
    cit_status to = st;
    if (st == CIT_CANCELLING)
        to = CIT_CANCELLED; /* surrogates skip it from now on; what ran, ran */
    else if (!waiting)
        to = json_array_size(errors) ? CIT_FAILED : CIT_COMPLETE;
    else if (waiting == dead && parsed) /* §4.7: the rest is offline */
        to = s.type == CIT_INVALIDATE && !json_array_size(errors) ? CIT_COMPLETE : CIT_PROCESSED;
    else if (st == CIT_PENDING && acked)
        to = CIT_ACTIVE; /* some executors have acted, others not yet */
    if (parsed)
        cit_spec_free(&s);
    if (to != st && tg_queue_status(d, w, id, st, to, json_array_size(errors) ? json_incref(errors) : NULL)) {
        metric_add(tg->m_completed, 1);
        log_kv(LOG_DEBUG, "trigger finished", "id", id, "status", cit_status_name(to), NULL);
    }
    json_decref(errors);
    json_decref(t);
}

/* Checks the n triggers from element from of ids: their hashes and
 * acknowledgements read in one round trip, the status changes written in
 * one more. */
static void check_many(struct triggers *tg, const store_reply *ids, size_t from, size_t n, json_t *alive)
{
    dcdn *d = tg->d;
    store_batch q = {0};
    for (size_t i = 0; i < n; i++) {
        char kt[200], ka[200];
        tg_tkey(d, kt, sizeof kt, "t:%s", store_reply_at_str(ids, from + i, NULL));
        tg_tkey(d, ka, sizeof ka, "acks:%s", store_reply_at_str(ids, from + i, NULL));
        store_batch_add(&q, 6, (const char *[]){"HMGET", kt, "status", "targets", "spec", "version"});
        store_batch_add(&q, 2, (const char *[]){"HGETALL", ka});
    }
    store_reply **rep = calloc(n ? n * 2 : 1, sizeof *rep);
    size_t got = store_batch_read(tg->mon_store, &q, rep);
    if (got == 2 * n) {
        store_batch w = {0};
        for (size_t i = 0; i < n; i++)
            check_one(tg, store_reply_at_str(ids, from + i, NULL), rep[2 * i], rep[2 * i + 1], alive, &w);
        store_batch_send(tg->mon_store, &w);
        store_batch_free(&w);
    }
    for (size_t i = 0; i < got; i++)
        store_reply_free(rep[i]);
    free(rep);
    store_batch_free(&q);
}

/* The triggers with news, or (all) every open one. */
static void check_open(struct triggers *tg, bool all)
{
    dcdn *d = tg->d;
    json_t *alive = tg_live_executors(d, tg->mon_store);
    if (!alive)
        return;
    pthread_mutex_lock(&tg->ex_mu);
    char *txt = json_dumps(alive, JSON_COMPACT);
    /* an executor gone (or come): the open triggers waiting for it are looked at */
    if (!tg->executors_txt || !txt || strcmp(txt, tg->executors_txt) != 0) {
        log_kv(LOG_INFO, "trigger executors alive", "executors", txt ? txt : "?", NULL);
        all = true;
    }
    free(tg->executors_txt);
    tg->n_executors = json_array_size(alive);
    tg->executors_txt = txt;
    pthread_mutex_unlock(&tg->ex_mu);
    char k[200];
    tg_tkey(d, k, sizeof k, all ? "open" : "acked", NULL);
    for (int round = 0; round < 100 && !tg->stop; round++) {
        store_reply *ids = all ? store_cmd(tg->mon_store, "SMEMBERS %s", k) : store_cmd(tg->mon_store, "SPOP %s 1000", k);
        size_t n = ids && store_reply_is(ids, STORE_ARRAY) ? store_reply_count(ids) : 0;
        for (size_t i = 0; i < n && !tg->stop; i += 256)
            check_many(tg, ids, i, n - i < 256 ? n - i : 256, alive);
        store_reply_free(ids);
        if (all || n < 1000)
            break;
    }
    json_decref(alive);
}

static void expire_old(struct triggers *tg)
{
    dcdn *d = tg->d;
    long long cut = wall_ms() / 1000 - d->cit_stale_s;
    for (size_t u = 0; u < d->n_ups; u++) {
        char ku[300];
        tg_tkey(d, ku, sizeof ku, "up:%s", d->ups[u].id);
        store_reply *ids = store_cmd(tg->mon_store, "ZRANGEBYSCORE %s -inf %lld LIMIT 0 1000", ku, cut);
        for (size_t i = 0; ids && store_reply_is(ids, STORE_ARRAY) && i < store_reply_count(ids); i++) {
            const char *id = store_reply_at_str(ids, i, NULL);
            bool down = false;
            json_t *t = tg_load(d, tg->mon_store, id, &down);
            cit_status st = CIT_PENDING;
            if (t)
                cit_status_parse(tg_field(t, "status"), &st);
            if (!t || (cit_status_final(st) && atoll(tg_field(t, "mtime") ?: "0") < cut))
                tg_forget(d, tg->mon_store, id, d->ups[u].id);
            json_decref(t);
        }
        store_reply_free(ids);
    }
}

/* Every 100 ms: the triggers with news; all open ones when the executors
 * alive have changed, and every 30 s (news lost with a monitor that died);
 * every minute, final ones past staleresourcetime forgotten. */
void tg_mon_tick(ticker *t, void *arg)
{
    (void)t;
    struct triggers *tg = arg;
    if (!tg->mon_named) {
        thread_set("cit-monitor", 10); /* answering requests comes first */
        tg->mon_named = true;
    }
    bool all = wall_ms() - tg->last_all >= 30000;
    check_open(tg, all);
    if (all)
        tg->last_all = wall_ms();
    if (wall_ms() - tg->last_expire > 60000) {
        expire_old(tg);
        tg->last_expire = wall_ms();
    }
}

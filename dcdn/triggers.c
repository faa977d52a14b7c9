/* CDNI Control Interface / Triggers (RFC 8007), dCDN side: this file
 * holds the trigger store in Redis and starts and stops the roles, each in
 * a file of its own (triggers_server.c, triggers_exec.c,
 * triggers_monitor.c; their shared parts in triggers_int.h).
 *
 * Server (peer listener; the uCDN's own bearer token says which upstream):
 *   POST   /triggers            a CI/T command: a trigger (201, Location) or a cancel
 *   GET    /triggers            that upstream's collection; /triggers/pending,
 *                               /active, /complete, /failed the filtered ones
 *   GET    /triggers/{id}       a trigger status resource (ETag)
 *   DELETE /triggers/{id}       forget it (stops it if it has not run)
 * A trigger is in Redis before 201 is answered:
 *   cdni:<cdn>:{cit}:t:<id>     hash: up, spec, status, ctime, mtime, etime,
 *                               errors, targets (the surrogates that must act)
 *   cdni:<cdn>:{cit}:up:<up>    zset of its ids by ctime (the collection)
 *   cdni:<cdn>:{cit}:open       set of ids not final yet
 *   cdni:<cdn>:{cit}:stream     a Redis Stream entry per trigger and cancel
 *   cdni:<cdn>:{cit}:acks:<id>  hash: surrogate -> what it did
 *   cdni:<cdn>:{cit}:executors  hash: surrogate -> last heartbeat (ms); the
 *                               surrogates with a cache that run triggers
 *   cdni:<cdn>:{cit}:acked      set of ids with news for the monitor
 *
 * Execution: every surrogate reads the stream in a consumer group of its
 * own (so each sees every trigger) and acts on its own cache: purge
 * removes, invalidate forces revalidation (kept across restarts),
 * preposition acquires within the trigger's time window and our bandwidth
 * cap. It records what it did, then acknowledges the entry; entries it had
 * read but not acknowledged when it died are read again when it comes
 * back (at-least-once; the effects are idempotent). Only objects of the
 * upstream that sent the trigger are touched (§2.2).
 *
 * Completion: the router role checks the triggers with news (an executor
 * acted, a cancel) every 100 ms, and every open one when the executors
 * alive change (and every 30 s): when every
 * target surrogate has acted the trigger is complete (or failed, with the
 * errors listed). A target that stopped heartbeating no longer holds it up:
 * invalidate is then complete (a surrogate revalidates what it missed when
 * it is back: the stream waits for it), purge and preposition processed
 * (§4.7). Final triggers are forgotten after staleresourcetime.
 *
 * Acceptance is the part a peer waits for; execution and completion run
 * at a lower CPU priority (nice 10), so that under a burst of requests the
 * answers go out first and the work follows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/thread.h"
#include "dcdn/triggers_int.h"

void tg_tkey(const dcdn *d, char *out, size_t cap, const char *fmt, const char *arg)
{
    int n = snprintf(out, cap, "cdni:%s:{cit}:", d->cdn_id);
    snprintf(out + n, cap - (size_t)n, fmt, arg ? arg : "");
}

bool tg_id_ok(const char *id)
{
    return id && *id && strlen(id) <= 20 && strspn(id, "0123456789") == strlen(id);
}

/* A trigger's hash (an HGETALL reply) as a map; NULL when it is absent. */
static json_t *hash_map(const store_reply *r)
{
    if (!store_reply_is(r, STORE_ARRAY) || !store_reply_count(r))
        return NULL;
    json_t *o = json_object();
    for (size_t i = 0; i + 1 < store_reply_count(r); i += 2)
        json_object_set_new(o, store_reply_at_str(r, i, NULL), json_string(store_reply_at_str(r, i + 1, NULL)));
    return o;
}

/* A trigger's hash as a map; NULL when absent (*down when Redis is away). */
json_t *tg_load(dcdn *d, store *st, const char *id, bool *down)
{
    char k[200];
    tg_tkey(d, k, sizeof k, "t:%s", id);
    store_reply *r = store_cmd(st, "HGETALL %s", k);
    if (!r) {
        *down = true;
        return NULL;
    }
    json_t *o = hash_map(r);
    store_reply_free(r);
    return o;
}

/* n triggers' hashes in one round trip (out[i] NULL: absent, or ids[i]
 * NULL); false when Redis is away. */
bool tg_load_many(dcdn *d, store *st, const char *const *ids, size_t n, json_t **out)
{
    store_batch q = {0};
    for (size_t i = 0; i < n; i++) {
        out[i] = NULL;
        if (!ids[i])
            continue;
        char k[200];
        tg_tkey(d, k, sizeof k, "t:%s", ids[i]);
        store_batch_add(&q, 2, (const char *[]){"HGETALL", k});
    }
    size_t m = q.n;
    store_reply **rep = calloc(m ? m : 1, sizeof *rep);
    size_t got = store_batch_read(st, &q, rep);
    for (size_t i = 0, j = 0; i < n && got == m; i++)
        if (ids[i])
            out[i] = hash_map(rep[j++]);
    for (size_t j = 0; j < got; j++)
        store_reply_free(rep[j]);
    free(rep);
    store_batch_free(&q);
    return got == m;
}

const char *tg_field(json_t *t, const char *name) { return json_string_value(json_object_get(t, name)); }

/* Queues a status change from a status the caller has just read; false
 * when the state machine does not allow it. */
bool tg_queue_status(dcdn *d, store_batch *w, const char *id, cit_status from, cit_status to, json_t *errors)
{
    if (!cit_transition_ok(from, to) || from == to) {
        json_decref(errors);
        return false;
    }
    char k[200], ko[200], now[24];
    tg_tkey(d, k, sizeof k, "t:%s", id);
    tg_tkey(d, ko, sizeof ko, "open", NULL);
    snprintf(now, sizeof now, "%lld", wall_ms() / 1000);
    char *errs = errors ? json_dumps(errors, JSON_COMPACT) : NULL;
    json_decref(errors);
    bool final = cit_status_final(to);
    const char *a1[] = {"HSET", k, "status", cit_status_name(to), "mtime", now, final ? "etime" : "mtime", now,
                        errs ? "errors" : "mtime", errs ? errs : now};
    const char *a2[] = {"SREM", ko, id};
    store_batch_add(w, 10, a1);
    if (final)
        store_batch_add(w, 3, a2);
    free(errs);
    return true;
}

/* A trigger gone: its resource, acknowledgements, collection entry. */
void tg_forget(dcdn *d, store *st, const char *id, const char *up)
{
    char kt[200], ku[300], ko[200], ka[200];
    tg_tkey(d, kt, sizeof kt, "t:%s", id);
    tg_tkey(d, ku, sizeof ku, "up:%s", up);
    tg_tkey(d, ko, sizeof ko, "open", NULL);
    tg_tkey(d, ka, sizeof ka, "acks:%s", id);
    const char *a1[] = {"DEL", kt, ka}, *a2[] = {"ZREM", ku, id}, *a3[] = {"SREM", ko, id};
    const char **av[] = {a1, a2, a3};
    int ac[] = {3, 3, 3};
    store_reply *rep[3] = {0};
    size_t got = store_pipeline(st, 3, ac, av, NULL, rep);
    for (size_t i = 0; i < got; i++)
        store_reply_free(rep[i]);
}

/* The executors (surrogates with a cache) alive now: the ones a new
 * trigger waits for; NULL when Redis is away. */
json_t *tg_live_executors(dcdn *d, store *st)
{
    char k[200];
    tg_tkey(d, k, sizeof k, "executors", NULL);
    store_reply *r = store_cmd(st, "HGETALL %s", k);
    if (!r)
        return NULL;
    json_t *a = json_array();
    long long now = wall_ms();
    for (size_t i = 0; store_reply_is(r, STORE_ARRAY) && i + 1 < store_reply_count(r); i += 2)
        if (now - atoll(store_reply_at_str(r, i + 1, NULL)) <= d->surrogate_dead_ms)
            json_array_append_new(a, json_string(store_reply_at_str(r, i, NULL)));
    store_reply_free(r);
    return a;
}

/* --- start, stop ------------------------------------------------------------------------------ */

bool triggers_start(dcdn *d)
{
    if (!d->cit_pid)
        return true;
    struct triggers *tg = calloc(1, sizeof *tg);
    tg->d = d;
    pthread_mutex_init(&tg->ex_mu, NULL);
    tg->m_accepted = metrics_series(d->metrics, "cdni_triggers_total", "result=\"accepted\"", "counter",
                                    "CI/T commands from upstream CDNs");
    tg->m_refused = metrics_series(d->metrics, "cdni_triggers_total", "result=\"refused\"", "counter",
                                   "CI/T commands from upstream CDNs");
    tg->m_executed = metrics_series(d->metrics, "cdni_triggers_executed_total", "", "counter",
                                    "triggers this surrogate ran on its cache");
    tg->m_completed = metrics_series(d->metrics, "cdni_triggers_finished_total", "", "counter",
                                     "triggers brought to a final status");
    d->triggers = tg;
    if (d->has_peer) {
        store_status st;
        tg->mon_store = store_open(d->redis_url, &st);
        tg->mon = tg->mon_store ? ticker_start(tg_mon_tick, tg, 100) : NULL;
        pthread_mutex_init(&tg->gc_mu, NULL);
        pthread_cond_init(&tg->gc_cv, NULL);
        tg->gc_store = store_open(d->redis_url, &st);
        tg->gc_started = tg->gc_store && pthread_create(&tg->gc_th, NULL, tg_commit_thread, tg) == 0;
    }
    if (d->has_surrogate && d->cache) {
        store_status st;
        tg->exec_store = store_open(d->redis_url, &st);
        tg->exec_started = tg->exec_store && pthread_create(&tg->exec_th, NULL, tg_exec_thread, tg) == 0;
    }
    return (!d->has_peer || (tg->mon && tg->gc_started)) && (!(d->has_surrogate && d->cache) || tg->exec_started);
}

void triggers_stop(dcdn *d)
{
    struct triggers *tg = d->triggers;
    if (!tg)
        return;
    tg->stop = true;
    ticker_stop(tg->mon);
    if (tg->gc_started) {
        pthread_mutex_lock(&tg->gc_mu);
        tg->gc_stop = true;
        pthread_cond_broadcast(&tg->gc_cv);
        pthread_mutex_unlock(&tg->gc_mu);
        pthread_join(tg->gc_th, NULL);
    }
    store_close(tg->gc_store);
    store_batch_free(&tg->gc_batch);
    if (tg->exec_started)
        pthread_join(tg->exec_th, NULL);
    store_close(tg->exec_store);
    store_close(tg->mon_store);
    free(tg->executors_txt);
    free(tg);
    d->triggers = NULL;
}

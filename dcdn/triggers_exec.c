/* The CI/T executor (the surrogate role): reads the trigger stream in a
 * consumer group of its own, selects the keys a trigger names among the
 * objects of the upstream that sent it (by the upstream each object's
 * head names, without resolving metadata), purges, invalidates or
 * prepositions them, and records what it did. The design is in
 * triggers.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/thread.h"
#include "dcdn/triggers_int.h"

/* --- execution (surrogate role) ----------------------------------------------------------- */

static void free_keys(char **k, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(k[i]);
    free(k);
}

/* Objects of upstream up only: by the upstream their heads name, or (an
 * object stored before heads named one) by its metadata now. */
typedef struct {
    dcdn *d;
    int up;
} of_up;

static bool of_upstream(void *ud, const char *key, const char *up)
{
    const of_up *w = ud;
    return up ? strcmp(up, w->d->ups[w->up].id) == 0 : surrogate_upstream_of_key(w->d, key) == w->up;
}

/* The keys this trigger selects in our cache, of upstream up only. */
static size_t select_keys(dcdn *d, const cit_spec *s, int up, char ***out, json_t *errors)
{
    of_up want = {d, up};
    size_t n = 0, cap = 16;
    char **k = calloc(cap, sizeof *k);
#define PUSH(x)                                                                                                    \
    do {                                                                                                           \
        if (n == cap) {                                                                                            \
            cap *= 2;                                                                                              \
            k = realloc(k, cap * sizeof *k);                                                                       \
        }                                                                                                          \
        k[n++] = (x);                                                                                              \
    } while (0)
    for (size_t i = 0; i < s->n_content_urls; i++) {
        char key[2048];
        int ui = -1;
        if (surrogate_key_for_url(d, s->content_urls[i], &ui, key, sizeof key) && ui == up)
            PUSH(strdup(key));
    }
    for (size_t i = 0; i < s->n_ccids; i++) {
        char **ck = NULL;
        long long m = cache_indexed_keys(d->cache, "ccid", s->ccids[i], of_upstream, &want, &ck);
        if (m < 0) {
            json_array_append_new(errors, cit_error("econtent", "content.ccids", json_pack("[s]", s->ccids[i]),
                                                    "the cache index (Redis) was unreachable"));
            continue;
        }
        for (long long j = 0; j < m; j++)
            PUSH(ck[j]);
        free(ck);
    }
    if (s->n_content_patterns) {
        char **all = NULL;
        size_t m = cache_keys(d->cache, of_upstream, &want, &all);
        for (size_t j = 0; j < m; j++) {
            char url[2100];
            snprintf(url, sizeof url, "http://%s", all[j]);
            bool hit = false;
            for (size_t p = 0; p < s->n_content_patterns && !hit; p++)
                hit = cit_pattern_match(&s->content_patterns[p], url);
            if (hit)
                PUSH(all[j]);
            else
                free(all[j]);
        }
        free(all);
    }
#undef PUSH
    *out = k;
    return n;
}

/* Runs one trigger (its hash t) on our cache and queues in w what it did:
 * the result in acks:<id>, a word to the monitor, the stream entry
 * (ks) acknowledged. A preposition before its window queues nothing: its
 * entry stays pending, to be read again. */
static void execute(struct triggers *tg, json_t *t, const char *id, const char *ks, const char *entry,
                    store_batch *w)
{
    dcdn *d = tg->d;
    cit_status status;
    cit_status_parse(tg_field(t, "status"), &status);
    json_t *targets = json_loads(tg_field(t, "targets") ?: "[]", 0, NULL);
    bool mine = false;
    size_t i;
    json_t *x;
    json_array_foreach(targets, i, x) mine = mine || strcmp(json_string_value(x) ?: "", d->self_id) == 0;
    json_decref(targets);
    int up = -1;
    for (size_t u = 0; u < d->n_ups; u++)
        if (strcmp(d->ups[u].id, tg_field(t, "up") ?: "") == 0)
            up = (int)u;
    json_t *result = json_object(), *errors = json_array();
    if (!mine || up < 0 || cit_status_final(status) || status == CIT_CANCELLING) {
        json_object_set_new(result, "skipped", json_true());
    } else {
        cit_spec s; /* (the monitor marks it active once a first executor has acted) */
        jerr e = {0};
        json_t *spec = json_loads(tg_field(t, "spec"), 0, NULL);
        bool ok = cit_spec_from_json(spec, atoi(tg_field(t, "version") ?: "1"), &s, &e);
        json_decref(spec);
        if (ok && s.type == CIT_PREPOSITION && s.window_start && wall_ms() / 1000 < s.window_start) {
            cit_spec_free(&s);
            json_decref(result);
            json_decref(errors);
            return;
        }
        if (ok && s.type != CIT_PREPOSITION) {
            char **keys = NULL;
            size_t n = select_keys(d, &s, up, &keys, errors);
            long long done = s.type == CIT_PURGE ? cache_purge(d->cache, (const char *const *)keys, n, wall_ms() / 1000)
                                                 : cache_invalidate(d->cache, (const char *const *)keys, n, wall_ms() / 1000);
            if (done < 0)
                json_array_append_new(errors, cit_error("econtent", "content.urls", json_array(),
                                                        "the cache could not record the trigger on disk"));
            json_object_set_new(result, s.type == CIT_PURGE ? "removed" : "invalidated", json_integer(done));
            free_keys(keys, n);
            if (s.n_metadata_urls || s.n_metadata_patterns) /* metadata: fetched again from the uCDN now */
                dcdn_sync_kick(d, false);
        } else if (ok) { /* preposition: within the window, under our bandwidth cap */
            store_batch_send(tg->exec_store, w); /* what is done already is not held up behind it */
            long long got = 0, bytes = 0, t0 = wall_ms();
            json_t *failed = json_array();
            for (size_t k = 0; k < s.n_content_urls && !tg->stop; k++) {
                if (s.window_end && wall_ms() / 1000 > s.window_end) {
                    json_array_append_new(failed, json_string(s.content_urls[k]));
                    continue;
                }
                long long b = 0;
                if (surrogate_prefetch(d, s.content_urls[k], &b)) {
                    got++;
                    bytes += b;
                } else
                    json_array_append_new(failed, json_string(s.content_urls[k]));
                while (d->cit_max_bps > 0 && !tg->stop && bytes * 1000 / d->cit_max_bps > wall_ms() - t0)
                    sleep_ms(20);
            }
            if (json_array_size(failed))
                json_array_append_new(errors, cit_error("econtent", "content.urls", failed,
                                                        "not acquired (source failed, not ours, or past the window)"));
            else
                json_decref(failed);
            json_object_set_new(result, "acquired", json_integer(got));
            json_object_set_new(result, "bytes", json_integer(bytes));
        }
        if (ok)
            cit_spec_free(&s);
    }
    json_object_set_new(result, "errors", errors);
    char *txt = json_dumps(result, JSON_COMPACT);
    json_decref(result);
    char ka[200], kn[200];
    tg_tkey(d, ka, sizeof ka, "acks:%s", id);
    tg_tkey(d, kn, sizeof kn, "acked", NULL);
    const char *a1[] = {"HSET", ka, d->self_id, txt}, *a2[] = {"SADD", kn, id},
               *a3[] = {"XACK", ks, d->self_id, entry};
    store_batch_add(w, 4, a1);
    store_batch_add(w, 3, a2);
    store_batch_add(w, 4, a3);
    free(txt);
    metric_add(tg->m_executed, 1);
}

/* One read of the stream: its triggers loaded in one round trip, run, and
 * what they did written in one more. Entries of triggers that are gone
 * are acknowledged; when Redis is away all stay pending, to be read again
 * (at-least-once; the effects are idempotent). */
static void execute_entries(struct triggers *tg, const store_reply *entries)
{
    dcdn *d = tg->d;
    size_t n = store_reply_count(entries);
    const char **ids = calloc(n ? n : 1, sizeof *ids);
    json_t **ts = calloc(n ? n : 1, sizeof *ts);
    for (size_t i = 0; i < n; i++) {
        const char *id = store_entry_field(entries, i, "trigger");
        ids[i] = id && tg_id_ok(id) ? id : NULL;
    }
    if (tg_load_many(d, tg->exec_store, ids, n, ts)) {
        char ks[200];
        tg_tkey(d, ks, sizeof ks, "stream", NULL);
        store_batch w = {0};
        for (size_t i = 0; i < n && !tg->stop; i++) {
            const char *eid = store_entry_id(entries, i);
            if (ts[i])
                execute(tg, ts[i], ids[i], ks, eid, &w);
            else { /* deleted (§4.4), or not a trigger entry: nothing to do */
                const char *a[] = {"XACK", ks, d->self_id, eid};
                store_batch_add(&w, 4, a);
            }
        }
        store_batch_send(tg->exec_store, &w);
        store_batch_free(&w);
    }
    for (size_t i = 0; i < n; i++)
        json_decref(ts[i]);
    free(ts);
    free(ids);
}

void *tg_exec_thread(void *arg)
{
    struct triggers *tg = arg;
    dcdn *d = tg->d;
    thread_set("cit-exec", 10); /* answering requests comes first */
    char ks[200];
    tg_tkey(d, ks, sizeof ks, "stream", NULL);
    bool group = false;
    long long last_pending = 0, last_beat = 0;
    char ke[200];
    tg_tkey(d, ke, sizeof ke, "executors", NULL);
    while (!tg->stop) {
        if (wall_ms() - last_beat >= 1000) { /* we run triggers: wait for us */
            store_reply *b = store_cmd(tg->exec_store, "HSET %s %s %lld", ke, d->self_id, wall_ms());
            store_reply_free(b);
            last_beat = wall_ms();
        }
        if (!group) {
            store_reply *r = store_cmd(tg->exec_store, "XGROUP CREATE %s %s $ MKSTREAM", ks, d->self_id);
            group = r && (store_reply_is(r, STORE_STATUS) || (store_reply_is(r, STORE_ERR) && strstr(store_reply_str(r, NULL), "BUSYGROUP")));
            store_reply_free(r);
            if (!group) {
                sleep_ms(500);
                continue;
            }
        }
        /* our own pending entries first (read before a crash, or waiting for their window), then new ones */
        bool pending = wall_ms() - last_pending > 1000;
        store_reply *r = pending ? store_cmd(tg->exec_store, "XREADGROUP GROUP %s %s COUNT 64 STREAMS %s 0", d->self_id,
                                            d->self_id, ks)
                                : store_cmd(tg->exec_store, "XREADGROUP GROUP %s %s COUNT 64 BLOCK 250 STREAMS %s >",
                                            d->self_id, d->self_id, ks);
        if (pending)
            last_pending = wall_ms();
        if (!r) {
            sleep_ms(500);
            group = false;
            continue;
        }
        if (store_reply_is(r, STORE_ERR) && strstr(store_reply_str(r, NULL), "NOGROUP"))
            group = false;
        const store_reply *entries = store_stream_entries(r);
        if (entries)
            execute_entries(tg, entries);
        store_reply_free(r);
    }
    return NULL;
}

/* --- completion (router role) ------------------------------------------------------------- */

/* Decides one trigger from its hash (h: status, targets, spec, version)
 * and its executors' acknowledgements; a status change goes into w. */

/* Keeping each uCDN's metadata current (RFC 8006 MI client).
 *
 * One thread walks every upstream's tree when its refresh interval is due
 * or when told (operator refresh, or another dcdn instance announcing a
 * change). A tree that fetched and validated whole replaces the snapshot
 * the request threads read; a failed walk leaves the old one in place.
 *
 * Redis keeps each upstream's documents (cdni:<cdn>:mi:<upstream>:docs,
 * one JSON value, written whole), so a restarted instance can serve
 * before the uCDN answers, and every change is PUBLISHed on
 * cdni:<cdn>:mi:changed so sibling instances rebuild from Redis. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "dcdn/dcdn.h"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void collect_doc(const char *url, const char *etag, const char *body, void *ud)
{
    json_array_append_new(ud, json_pack("{s:s, s:s, s:s}", "url", url, "etag", etag, "body", body));
}

static void persist(dcdn *d, upstream *up)
{
    json_t *docs = json_array();
    mi_fetcher_each(up->fetcher, collect_doc, docs);
    json_t *v = json_pack("{s:o, s:I}", "docs", docs, "saved", (json_int_t)time(NULL));
    char *text = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    if (!text)
        return;
    store_reply *r = store_cmd(d->store, "SET %s %s", up->key_docs, text);
    free(text);
    if (!r) {
        log_kv(LOG_WARN, "metadata not saved to redis (down); serving from memory", "upstream", up->id, NULL);
        return;
    }
    store_reply_free(r);
    r = store_cmd(d->store, "PUBLISH %s %s:%s", d->channel, d->instance, up->id);
    store_reply_free(r);
}

/* Seed the fetcher from Redis; false if nothing stored or Redis down. */
static bool load_saved(dcdn *d, upstream *up)
{
    store_reply *r = store_cmd(d->store, "GET %s", up->key_docs);
    if (!r || !store_reply_is(r, STORE_STR)) {
        store_reply_free(r);
        return false;
    }
    json_t *v = store_reply_json(r);
    store_reply_free(r);
    json_t *docs = json_object_get(v, "docs");
    size_t i;
    json_t *doc;
    json_array_foreach(docs, i, doc)
    {
        const char *url = json_string_value(json_object_get(doc, "url"));
        const char *etag = json_string_value(json_object_get(doc, "etag"));
        const char *body = json_string_value(json_object_get(doc, "body"));
        if (url && body)
            mi_fetcher_seed(up->fetcher, url, etag, body);
    }
    bool any = json_array_size(docs) > 0;
    json_decref(v);
    return any;
}

static void apply(dcdn *d, upstream *up, mi_host_index *x, const char *how)
{
    snapshot_publish(&up->snap, x);
    pthread_mutex_lock(&up->status_mu);
    up->generation++;
    pthread_mutex_unlock(&up->status_mu);
    metric_add(d->m_changes, 1);
    char n[32];
    snprintf(n, sizeof n, "%zu", x->n_hosts);
    log_kv(LOG_INFO, "metadata applied", "upstream", up->id, "hosts", n, "source", how, NULL);
}

static void sync_one(dcdn *d, upstream *up, bool offline)
{
    char err[512] = "";
    bool changed = false;
    mi_host_index *x = mi_fetch_tree(up->fetcher, up->metadata_url, &d->policy, offline, &changed,
                                     err, sizeof err);
    pthread_mutex_lock(&up->status_mu);
    if (!offline) {
        up->last_attempt = time(NULL);
        if (x) {
            up->last_ok = up->last_attempt;
            up->last_error[0] = 0;
        } else {
            snprintf(up->last_error, sizeof up->last_error, "%s", err);
        }
    }
    pthread_mutex_unlock(&up->status_mu);
    if (!offline)
        metric_add(x ? d->m_fetch_ok : d->m_fetch_fail, 1);
    if (!x) {
        log_kv(LOG_WARN, offline ? "stored metadata unusable" : "metadata refresh failed; keeping the current tree",
               "upstream", up->id, "reason", err, NULL);
        return;
    }
    snap_ref *ref;
    void *cur = snapshot_acquire(&up->snap, &ref);
    snapshot_release(&up->snap, ref);
    /* documents read back from Redis are what a sibling instance fetched:
     * they replace what the fetcher had (so its next conditional GET is a
     * 304), hence they are applied even if the fetcher saw no change */
    if (!changed && cur && !offline) {
        mi_host_index_free(x);
        return;
    }
    apply(d, up, x, offline ? "redis" : "ucdn");
    if (!offline)
        persist(d, up);
}

static void *sync_main(void *arg)
{
    dcdn *d = arg;
    for (size_t i = 0; i < d->n_ups; i++) /* serve what we had, before asking the uCDN */
        if (load_saved(d, &d->ups[i]))
            sync_one(d, &d->ups[i], true);
    pthread_mutex_lock(&d->mu);
    while (!d->stop) {
        bool force = d->refresh_now, from_redis = d->reload_from_redis;
        d->refresh_now = d->reload_from_redis = false;
        pthread_mutex_unlock(&d->mu);
        long long t = now_ms(), next = t + 60000;
        for (size_t i = 0; i < d->n_ups; i++) {
            upstream *up = &d->ups[i];
            if (from_redis && load_saved(d, up))
                sync_one(d, up, true);
            if (force || t >= up->next_due) {
                sync_one(d, up, false);
                up->next_due = now_ms() + up->refresh_s * 1000LL;
            }
            if (up->next_due < next)
                next = up->next_due;
        }
        pthread_mutex_lock(&d->mu);
        long long wait = next - now_ms();
        if (wait > 0 && !d->stop && !d->refresh_now && !d->reload_from_redis) {
            cond_wait_ms(&d->cv, &d->mu, wait);
        }
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

void dcdn_sync_kick(dcdn *d, bool from_redis)
{
    pthread_mutex_lock(&d->mu);
    if (from_redis)
        d->reload_from_redis = true;
    else
        d->refresh_now = true;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

static void on_announce(const char *msg, void *ud)
{
    dcdn *d = ud;
    size_t n = strlen(d->instance);
    if (msg && strncmp(msg, d->instance, n) == 0 && msg[n] == ':')
        return; /* our own announcement */
    dcdn_sync_kick(d, true); /* another instance changed it, or we reconnected */
}

bool dcdn_sync_start(dcdn *d)
{
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    http_client_conf hc = {.connect_timeout_ms = 2000, .timeout_ms = 10000, .retries = 1,
                           .backoff_ms = 200, .max_body = MI_MAX_DOC, .egress = d->egress};
    for (size_t i = 0; i < d->n_ups; i++) {
        upstream *up = &d->ups[i];
        snapshot_init(&up->snap, (void (*)(void *))mi_host_index_free);
        pthread_mutex_init(&up->status_mu, NULL);
        snprintf(up->key_docs, sizeof up->key_docs, "cdni:%s:mi:%s:docs", d->cdn_id, up->id);
        hc.tls = &up->tls;
        up->fetcher = mi_fetcher_new(up->token, &hc);
        if (!up->fetcher)
            return false;
    }
    d->sub = store_subscribe(d->redis_url, d->channel, on_announce, d);
    return pthread_create(&d->sync_th, NULL, sync_main, d) == 0;
}

void dcdn_sync_stop(dcdn *d)
{
    pthread_mutex_lock(&d->mu);
    d->stop = true;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->sync_th, NULL);
    store_unsubscribe(d->sub);
    for (size_t i = 0; i < d->n_ups; i++) {
        mi_fetcher_free(d->ups[i].fetcher);
        snapshot_destroy(&d->ups[i].snap);
    }
}

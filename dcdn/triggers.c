/* CDNI Control Interface / Triggers (RFC 8007), dCDN side.
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
#include <time.h>

#include <openssl/rand.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/thread.h"
#include "common/ticker.h"
#include "dcdn/dcdn.h"
#include "interfaces/triggers.h"

struct triggers {
    dcdn *d;
    ticker *mon;           /* the monitor (router role) */
    long long last_all, last_expire;
    bool mon_named;
    pthread_t exec_th;     /* the executor (surrogate role) */
    bool exec_started;
    _Atomic bool stop;
    store *exec_store; /* the executor's own connection (blocking reads) */
    store *mon_store;  /* the monitor's own: request threads never queue behind it */
    /* group commit of acceptances */
    pthread_t gc_th;
    bool gc_started, gc_stop;
    pthread_mutex_t gc_mu;
    pthread_cond_t gc_cv;
    struct pending_accept *gc_q;
    store_batch gc_batch; /* the committer's, reused */
    store *gc_store;
    pthread_mutex_t ex_mu;
    char *executors_txt; /* the executors alive as JSON text (a new trigger's targets), */
    size_t n_executors;  /* and how many: refreshed by the monitor every 100 ms */
    metric_cell *m_accepted, *m_refused, *m_executed, *m_completed;
};

/* An acceptance waiting for the group committer: its Redis commands
 * (formatted by the request's thread), and the answer to give once they
 * are written. */
typedef struct pending_accept {
    struct pending_accept *next;
    http_req *r;
    store_batch cmds;
    char id[24], location[400];
    char *reply;
    size_t reply_len;
    bool ok, durable; /* written; and on redis.min_replicas_acked replicas */
} pending_accept;

static void pa_free(pending_accept *pa)
{
    store_batch_free(&pa->cmds);
    free(pa->reply);
    free(pa);
}

static void tkey(const dcdn *d, char *out, size_t cap, const char *fmt, const char *arg)
{
    int n = snprintf(out, cap, "cdni:%s:{cit}:", d->cdn_id);
    snprintf(out + n, cap - (size_t)n, fmt, arg ? arg : "");
}

static bool id_ok(const char *id)
{
    return id && *id && strlen(id) <= 20 && strspn(id, "0123456789") == strlen(id);
}

/* Tells the monitor a trigger has news (an executor acted, a cancel). */
static void nudge(dcdn *d, store *st, const char *id)
{
    char k[200];
    tkey(d, k, sizeof k, "acked", NULL);
    store_reply *r = store_cmd(st, "SADD %s %s", k, id);
    store_reply_free(r);
}

static const char *up_of(dcdn *d, http_req *r)
{
    const char *who = http_identity(r);
    for (size_t i = 0; who && i < d->n_ups; i++)
        if (strcmp(d->ups[i].id, who) == 0)
            return who;
    return NULL;
}

static void base_url(http_req *r, char *out, size_t cap)
{
    const char *host = http_header(r, "Host");
    snprintf(out, cap, "%s://%s", http_is_tls(r) ? "https" : "http", host && !strpbrk(host, " /\r\n\"") ? host : "localhost");
}

static void redis_down(http_req *r)
{
    http_add_header(r, "Retry-After", "1");
    http_reply_problem(r, 503, "Service Unavailable", "the trigger store (Redis) is unreachable; nothing was accepted",
                       NULL);
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
static json_t *load(dcdn *d, store *st, const char *id, bool *down)
{
    char k[200];
    tkey(d, k, sizeof k, "t:%s", id);
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
static bool load_many(dcdn *d, store *st, const char *const *ids, size_t n, json_t **out)
{
    store_batch q = {0};
    for (size_t i = 0; i < n; i++) {
        out[i] = NULL;
        if (!ids[i])
            continue;
        char k[200];
        tkey(d, k, sizeof k, "t:%s", ids[i]);
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

static const char *field(json_t *t, const char *name) { return json_string_value(json_object_get(t, name)); }

static json_t *status_json(json_t *t)
{
    json_t *spec = json_loads(field(t, "spec") ? field(t, "spec") : "{}", 0, NULL);
    json_t *errs = field(t, "errors") ? json_loads(field(t, "errors"), 0, NULL) : NULL;
    cit_status_doc doc = {.spec = spec,
                          .version = field(t, "version") && !strcmp(field(t, "version"), "2") ? 2 : 1,
                          .ctime = atoll(field(t, "ctime") ?: "0"),
                          .mtime = atoll(field(t, "mtime") ?: "0"),
                          .etime = atoll(field(t, "etime") ?: "0"),
                          .status = CIT_PENDING,
                          .errors = errs};
    cit_status_parse(field(t, "status") ?: "pending", &doc.status);
    json_t *o = cit_status_doc_json(&doc);
    json_decref(spec);
    json_decref(errs);
    return o;
}

/* Queues a status change from a status the caller has just read; false
 * when the state machine does not allow it. */
static bool queue_status(dcdn *d, store_batch *w, const char *id, cit_status from, cit_status to, json_t *errors)
{
    if (!cit_transition_ok(from, to) || from == to) {
        json_decref(errors);
        return false;
    }
    char k[200], ko[200], now[24];
    tkey(d, k, sizeof k, "t:%s", id);
    tkey(d, ko, sizeof ko, "open", NULL);
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

static bool set_status(dcdn *d, store *st, const char *id, cit_status to, json_t *errors)
{
    bool down = false;
    json_t *t = load(d, st, id, &down);
    cit_status from;
    bool ok = t && cit_status_parse(field(t, "status"), &from);
    json_decref(t);
    if (!ok) {
        json_decref(errors);
        return false;
    }
    store_batch w = {0};
    ok = queue_status(d, &w, id, from, to, errors) && store_batch_send(st, &w);
    store_batch_free(&w);
    return ok;
}

/* A trigger gone: its resource, acknowledgements, collection entry. */
static void forget(dcdn *d, store *st, const char *id, const char *up)
{
    char kt[200], ku[300], ko[200], ka[200];
    tkey(d, kt, sizeof kt, "t:%s", id);
    tkey(d, ku, sizeof ku, "up:%s", up);
    tkey(d, ko, sizeof ko, "open", NULL);
    tkey(d, ka, sizeof ka, "acks:%s", id);
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
static json_t *live_executors(dcdn *d, store *st)
{
    char k[200];
    tkey(d, k, sizeof k, "executors", NULL);
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

static bool in_list(json_t *a, const char *s)
{
    size_t i;
    json_t *x;
    json_array_foreach(a, i, x) if (strcmp(json_string_value(x) ?: "", s) == 0) return true;
    return false;
}

/* --- POST /triggers --------------------------------------------------------------------- */

/* Every content URL must be of this upstream's content (§2.2, §8). */
static const char *foreign_url(dcdn *d, const cit_spec *s, const char *up)
{
    for (size_t i = 0; i < s->n_content_urls; i++) {
        int ui = surrogate_upstream_of_url(d, s->content_urls[i]);
        if (ui < 0 || strcmp(d->ups[ui].id, up) != 0)
            return s->content_urls[i]; /* not content we deliver for this upstream: not ours to act on */
    }
    return NULL;
}

static void accept_trigger(http_req *r, dcdn *d, const char *up, cit_command *c)
{
    const char *foreign = foreign_url(d, &c->spec, up);
    if (foreign) {
        char why[600];
        snprintf(why, sizeof why, "%.400s is not content this CDN delivers for you", foreign);
        metric_add(d->triggers->m_refused, 1);
        http_reply_problem(r, 403, "Forbidden", why, NULL);
        return;
    }
    /* an id made here (time, then randomness), so acceptance is one round trip */
    char id[24], now[24];
    unsigned char rnd[4];
    RAND_bytes(rnd, sizeof rnd);
    long long ms = wall_ms();
    snprintf(id, sizeof id, "%lld%06u", ms, (unsigned)((rnd[0] << 16 | rnd[1] << 8 | rnd[2]) % 1000000));
    snprintf(now, sizeof now, "%lld", ms / 1000);
    struct triggers *tgs = d->triggers;
    pthread_mutex_lock(&tgs->ex_mu);
    char *tg = tgs->executors_txt ? strdup(tgs->executors_txt) : NULL;
    size_t n_targets = tgs->n_executors;
    pthread_mutex_unlock(&tgs->ex_mu);
    if (!tg) { /* the monitor has not read them yet */
        json_t *targets = live_executors(d, d->store);
        if (!targets) {
            redis_down(r);
            return;
        }
        tg = json_dumps(targets, JSON_COMPACT);
        n_targets = json_array_size(targets);
        json_decref(targets);
    }
    cit_status st = CIT_PENDING;
    json_t *errors = NULL;
    if (c->spec.unsupported) {
        char why[300];
        snprintf(why, sizeof why, "the mandatory extension %.200s is not supported", c->spec.unsupported);
        errors = json_pack("[o]", cit_error("eunsupported", "content.urls", json_array(), why));
        st = CIT_FAILED;
    } else if (!n_targets) {
        /* nothing is cached anywhere: there is nothing to remove; nowhere to preposition */
        st = c->spec.type == CIT_PREPOSITION ? CIT_PROCESSED : CIT_COMPLETE;
    }
    /* what goes to Redis: the group committer writes it with the other
     * acceptances waiting, in one MULTI/EXEC; this request waits parked */
    bool final = cit_status_final(st);
    pending_accept *pa = calloc(1, sizeof *pa);
    char *spec = json_dumps(c->spec.json, JSON_COMPACT), *er = errors ? json_dumps(errors, JSON_COMPACT) : NULL,
         *path = json_dumps(json_object_get(c->json, "cdn-path"), JSON_COMPACT);
    char kt[200], ku[300], ko[200], ks[200];
    tkey(d, kt, sizeof kt, "t:%s", id);
    tkey(d, ku, sizeof ku, "up:%s", up);
    tkey(d, ko, sizeof ko, "open", NULL);
    tkey(d, ks, sizeof ks, "stream", NULL);
    const char *a1[] = {"HSET", kt, "up", up, "spec", spec, "version", c->spec.version == 2 ? "2" : "1",
                        "status", cit_status_name(st), "ctime", now, "mtime", now, "etime", final ? now : "",
                        "errors", er ? er : "[]", "targets", tg, "cdn-path", path};
    const char *a2[] = {"ZADD", ku, now, id};
    const char *a3[] = {"SADD", ko, id};
    const char *a4[] = {"XADD", ks, "MAXLEN", "~", "100000", "*", "trigger", id};
    store_batch_add(&pa->cmds, (int)(sizeof a1 / sizeof *a1), a1);
    store_batch_add(&pa->cmds, 4, a2);
    if (!final) { /* the final case has nothing to execute: no stream entry, not open */
        store_batch_add(&pa->cmds, 3, a3);
        store_batch_add(&pa->cmds, 8, a4);
    }
    char base[300];
    base_url(r, base, sizeof base);
    snprintf(pa->location, sizeof pa->location, "%s/triggers/%s", base, id);
    snprintf(pa->id, sizeof pa->id, "%s", id);
    /* the status resource as it now stands */
    long long t_now = atoll(now);
    cit_status_doc doc = {.spec = c->spec.json, .version = c->spec.version == 2 ? 2 : 1, .ctime = t_now,
                          .mtime = t_now, .etime = final ? t_now : 0, .status = st, .errors = errors};
    json_t *reply = cit_status_doc_json(&doc);
    pa->reply = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
    pa->reply_len = pa->reply ? strlen(pa->reply) : 0;
    json_decref(reply);
    json_decref(errors);
    free(spec);
    free(tg);
    free(er);
    free(path);
    pa->r = r;
    pthread_mutex_lock(&tgs->gc_mu);
    pa->next = tgs->gc_q;
    tgs->gc_q = pa;
    http_park(r, pa); /* under the committer's lock: it cannot resume us first */
    pthread_cond_signal(&tgs->gc_cv);
    pthread_mutex_unlock(&tgs->gc_mu);
}

/* The handler's second run, once the committer has written the trigger. */
static void accept_done(http_req *r, dcdn *d, pending_accept *pa)
{
    if (!pa->ok)
        redis_down(r);
    else if (!pa->durable) { /* a failover could lose it: the uCDN sends it again */
        http_add_header(r, "Retry-After", "1");
        http_reply_problem(r, 503, "Service Unavailable",
                           "the trigger reached the store but not enough of its replicas in time; send it again",
                           NULL);
    } else {
        metric_add(d->triggers->m_accepted, 1);
        log_kv(LOG_DEBUG, "trigger accepted", "id", pa->id, NULL);
        http_add_header(r, "Location", pa->location);
        http_reply_take(r, 201, CIT_MEDIA_STATUS, pa->reply, pa->reply_len);
        pa->reply = NULL;
    }
    pa_free(pa);
}

/* Group commit: every acceptance waiting is written in one MULTI/EXEC
 * (one round trip for all), then each request is resumed. */
static void *commit_thread(void *arg)
{
    struct triggers *t = arg;
    thread_set("cit-commit", 0);
    pthread_mutex_lock(&t->gc_mu);
    for (;;) {
        while (!t->gc_q && !t->gc_stop)
            pthread_cond_wait(&t->gc_cv, &t->gc_mu);
        if (!t->gc_q && t->gc_stop)
            break;
        pending_accept *q = t->gc_q;
        t->gc_q = NULL;
        pthread_mutex_unlock(&t->gc_mu);
        static const char *multi[] = {"MULTI"}, *exec_[] = {"EXEC"};
        store_batch_add(&t->gc_batch, 1, multi);
        for (pending_accept *p = q; p; p = p->next)
            store_batch_append(&t->gc_batch, &p->cmds);
        store_batch_add(&t->gc_batch, 1, exec_);
        bool durable = false, ok = store_batch_send_durable(t->gc_store, &t->gc_batch, &durable);
        for (pending_accept *p = q, *nx; p; p = nx) {
            nx = p->next;
            p->ok = ok;
            p->durable = durable;
            http_resume(p->r); /* the handler runs again: accept_done */
        }
        pthread_mutex_lock(&t->gc_mu);
    }
    pthread_mutex_unlock(&t->gc_mu);
    return NULL;
}

/* The trigger id names, if it is up's; else NULL, the answer given
 * (503 when Redis is away, 404 otherwise). */
static json_t *owned(http_req *r, dcdn *d, const char *up, const char *id, const char *what)
{
    bool down = false;
    json_t *t = up && id_ok(id) ? load(d, d->store, id, &down) : NULL;
    if (down) {
        redis_down(r);
        return NULL;
    }
    if (!t || strcmp(field(t, "up") ?: "", up) != 0) {
        json_decref(t);
        char why[600];
        snprintf(why, sizeof why, "no such trigger%s%.400s (or another CDN's, or past staleresourcetime)",
                 what ? ": " : "", what ? what : "");
        http_reply_problem(r, 404, "Not Found", why, NULL);
        return NULL;
    }
    return t;
}

static const char *id_from_url(const char *u)
{
    const char *p = strstr(u, "/triggers/");
    return p ? p + 10 : NULL;
}

static void cancel(http_req *r, dcdn *d, const char *up, cit_command *c)
{
    bool all_done = true;
    for (size_t i = 0; i < c->n_cancel; i++) {
        const char *id = id_from_url(c->cancel_urls[i]);
        json_t *t = owned(r, d, up, id, c->cancel_urls[i]);
        if (!t)
            return;
        cit_status s;
        cit_status_parse(field(t, "status"), &s);
        json_decref(t);
        if (s == CIT_PENDING || s == CIT_ACTIVE || s == CIT_PROCESSED) {
            set_status(d, d->store, id, CIT_CANCELLING, NULL);
            char ko[200], ks[200];
            tkey(d, ko, sizeof ko, "open", NULL);
            tkey(d, ks, sizeof ks, "stream", NULL);
            store_reply *x = store_cmd(d->store, "SADD %s %s", ko, id);
            store_reply_free(x);
            /* surrogates that have not run it skip it; the monitor ends it */
            nudge(d, d->store, id);
            all_done = false;
        } else if (s == CIT_CANCELLING) {
            all_done = false;
        }
        /* complete and failed stay as they are (§4.3) */
    }
    http_reply_json(r, all_done ? 200 : 202, NULL,
                    json_pack("{s:s}", "status", all_done ? "cancelled or already final" : "cancelling"));
}

static void post_triggers(http_req *r, void *ctx)
{
    dcdn *d = ctx;
    pending_accept *pa = http_parked_state(r);
    if (pa) {
        accept_done(r, d, pa);
        return;
    }
    const char *up = up_of(d, r);
    if (!up) {
        http_reply_problem(r, 403, "Forbidden", "triggers are taken from upstream CDNs only", NULL);
        return;
    }
    size_t len;
    const char *body = http_body(r, &len);
    cit_command c;
    jerr e = {0};
    if (!cit_command_parse(body, len, &c, &e)) {
        metric_add(d->triggers->m_refused, 1);
        http_reply_invalid(r, 400, "Invalid CI/T command", &e);
        cit_command_free(&c);
        return;
    }
    if (cit_path_has(&c, d->cit_pid)) {
        metric_add(d->triggers->m_refused, 1);
        http_reply_problem(r, 403, "Forbidden", "loop: this CDN is already in the command's cdn-path", NULL);
    } else if (c.cancel)
        cancel(r, d, up, &c);
    else
        accept_trigger(r, d, up, &c);
    cit_command_free(&c);
}

/* --- reading ----------------------------------------------------------------------------- */

static void get_collection(http_req *r, dcdn *d, const char *up, int filter)
{
    char k[300];
    tkey(d, k, sizeof k, "up:%s", up);
    store_reply *ids = store_cmd(d->store, "ZRANGE %s 0 -1", k);
    if (!ids) {
        redis_down(r);
        return;
    }
    char base[300], u[400];
    base_url(r, base, sizeof base);
    json_t *a = json_array();
    for (size_t i = 0; store_reply_is(ids, STORE_ARRAY) && i < store_reply_count(ids); i++) {
        const char *id = store_reply_at_str(ids, i, NULL);
        if (filter >= 0) {
            char kt[200];
            tkey(d, kt, sizeof kt, "t:%s", id);
            store_reply *s = store_cmd(d->store, "HGET %s status", kt);
            cit_status st = CIT_PENDING;
            bool keep = s && store_reply_is(s, STORE_STR) && cit_status_parse(store_reply_str(s, NULL), &st) &&
                        (filter == CIT_COMPLETE ? st == CIT_COMPLETE || st == CIT_PROCESSED || st == CIT_CANCELLED
                                                : (int)st == filter);
            store_reply_free(s);
            if (!keep)
                continue;
        }
        snprintf(u, sizeof u, "%s/triggers/%s", base, id);
        json_array_append_new(a, json_string(u));
    }
    store_reply_free(ids);
    json_t *o = json_pack("{s:o, s:I}", "triggers", a, "staleresourcetime", (json_int_t)d->cit_stale_s);
    static const char *const colls[] = {"all", "pending", "active", "complete", "failed"};
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "coll-%s", colls[i]);
        snprintf(u, sizeof u, "%s/triggers%s%s", base, i ? "/" : "", i ? colls[i] : "");
        json_object_set_new(o, name, json_string(u));
    }
    json_object_set_new(o, "cdn-id", json_string(d->cit_pid));
    http_add_header(r, "Cache-Control", "max-age=1");
    http_reply_json(r, 200, CIT_MEDIA_COLLECTION, o);
}

static void get_triggers(http_req *r, void *ctx)
{
    dcdn *d = ctx;
    const char *up = up_of(d, r);
    if (!up) {
        http_reply_problem(r, 403, "Forbidden", "triggers are for upstream CDNs only", NULL);
        return;
    }
    get_collection(r, d, up, -1);
}

static void get_trigger(http_req *r, void *ctx)
{
    dcdn *d = ctx;
    const char *up = up_of(d, r), *id = http_param(r, 0);
    if (!up) {
        http_reply_problem(r, 403, "Forbidden", "triggers are for upstream CDNs only", NULL);
        return;
    }
    static const char *const names[] = {"pending", "active", "complete", "failed"};
    static const int filters[] = {CIT_PENDING, CIT_ACTIVE, CIT_COMPLETE, CIT_FAILED};
    for (int i = 0; i < 4; i++)
        if (strcmp(id, names[i]) == 0) {
            get_collection(r, d, up, filters[i]);
            return;
        }
    json_t *t = owned(r, d, up, id, NULL);
    if (!t)
        return;
    char etag[64];
    snprintf(etag, sizeof etag, "\"%s-%s-%s\"", id, field(t, "mtime") ?: "0", field(t, "status") ?: "");
    http_add_header(r, "ETag", etag);
    http_add_header(r, "Cache-Control", "max-age=1");
    const char *inm = http_header(r, "If-None-Match");
    if (inm && strcmp(inm, etag) == 0)
        http_reply(r, 304, NULL, NULL, 0);
    else
        http_reply_json(r, 200, CIT_MEDIA_STATUS, status_json(t));
    json_decref(t);
}

static void delete_trigger(http_req *r, void *ctx)
{
    dcdn *d = ctx;
    const char *up = up_of(d, r), *id = http_param(r, 0);
    json_t *t = owned(r, d, up, id, NULL);
    if (!t)
        return;
    json_decref(t);
    /* a surrogate that reads it later finds nothing and skips it (§4.4) */
    forget(d, d->store, id, up);
    http_reply(r, 204, NULL, NULL, 0);
}

static void not_allowed(http_req *r, void *ctx)
{
    (void)ctx;
    http_add_header(r, "Allow", "GET, HEAD, DELETE");
    http_reply_problem(r, 405, "Method Not Allowed", "a trigger status resource cannot be modified (RFC 8007 §4.1)",
                       NULL);
}

static int by_ctime_desc(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "ctime")),
               y = json_integer_value(json_object_get(*(json_t *const *)b, "ctime"));
    return (y > x) - (y < x);
}

json_t *triggers_in_flight(dcdn *d, size_t max)
{
    char ko[200];
    tkey(d, ko, sizeof ko, "open", NULL);
    store_reply *ids = store_cmd(d->store, "SMEMBERS %s", ko);
    if (!ids)
        return NULL;
    size_t n = store_reply_is(ids, STORE_ARRAY) ? store_reply_count(ids) : 0;
    /* at most 200 looked at, in one round trip: the page shows the newest of those */
    enum { LOOK = 200 };
    size_t look = n < LOOK ? n : LOOK, nv = 0;
    store_reply *rep[LOOK];
    json_t *views[LOOK];
    store_batch q = {0};
    for (size_t i = 0; i < look; i++) {
        char k[200];
        tkey(d, k, sizeof k, "t:%s", store_reply_at_str(ids, i, NULL));
        store_batch_add(&q, 6, (const char *[]){"HMGET", k, "up", "status", "spec", "ctime"});
    }
    size_t got = store_batch_read(d->store, &q, rep);
    store_batch_free(&q);
    for (size_t i = 0; i < got; i++) {
        store_reply *h = rep[i];
        const char *f[4] = {0};
        for (size_t k = 0; h && store_reply_is(h, STORE_ARRAY) && k < 4 && k < store_reply_count(h); k++)
            f[k] = store_reply_is(store_reply_at(h, k), STORE_STR) ? store_reply_at_str(h, k, NULL) : NULL;
        if (f[1]) { /* gone meanwhile: no status */
            json_t *spec = json_loads(f[2] ? f[2] : "{}", 0, NULL);
            views[nv++] = json_pack("{s:s, s:s, s:s, s:s?, s:I}", "id", store_reply_at_str(ids, i, NULL), "upstream",
                                    f[0] ? f[0] : "", "status", f[1], "type",
                                    json_string_value(json_object_get(spec, "type")), "ctime",
                                    (json_int_t)atoll(f[3] ? f[3] : "0"));
            json_decref(spec);
        }
        store_reply_free(h);
    }
    store_reply_free(ids);
    if (nv)
        qsort(views, nv, sizeof *views, by_ctime_desc);
    json_t *a = json_array();
    for (size_t i = 0; i < nv; i++) {
        if (i < max)
            json_array_append(a, views[i]);
        json_decref(views[i]);
    }
    return json_pack("{s:I, s:o}", "open", (json_int_t)n, "triggers", a);
}

void triggers_peer_routes(dcdn *d, http_route *out)
{
    out[0] = (http_route){"POST", "/triggers", post_triggers, d, false};
    out[1] = (http_route){"GET", "/triggers", get_triggers, d, false};
    out[2] = (http_route){"GET", "/triggers/{id}", get_trigger, d, false};
    out[3] = (http_route){"DELETE", "/triggers/{id}", delete_trigger, d, false};
    out[4] = (http_route){"PUT", "/triggers/{id}", not_allowed, d, false};
    out[5] = (http_route){"POST", "/triggers/{id}", not_allowed, d, false};
}

/* --- execution (surrogate role) ----------------------------------------------------------- */

static void free_keys(char **k, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(k[i]);
    free(k);
}

/* The keys this trigger selects in our cache, of upstream up only. */
static size_t select_keys(dcdn *d, const cit_spec *s, int up, char ***out, json_t *errors)
{
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
        long long m = cache_indexed_keys(d->cache, "ccid", s->ccids[i], &ck);
        if (m < 0) {
            json_array_append_new(errors, cit_error("econtent", "content.ccids", json_pack("[s]", s->ccids[i]),
                                                    "the cache index (Redis) was unreachable"));
            continue;
        }
        for (long long j = 0; j < m; j++) {
            if (surrogate_upstream_of_key(d, ck[j]) == up)
                PUSH(ck[j]);
            else
                free(ck[j]);
        }
        free(ck);
    }
    if (s->n_content_patterns) {
        char **all = NULL;
        size_t m = cache_keys(d->cache, &all);
        for (size_t j = 0; j < m; j++) {
            char url[2100];
            snprintf(url, sizeof url, "http://%s", all[j]);
            bool hit = false;
            for (size_t p = 0; p < s->n_content_patterns && !hit; p++)
                hit = cit_pattern_match(&s->content_patterns[p], url);
            if (hit && surrogate_upstream_of_key(d, all[j]) == up)
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
    cit_status_parse(field(t, "status"), &status);
    json_t *targets = json_loads(field(t, "targets") ?: "[]", 0, NULL);
    bool mine = false;
    size_t i;
    json_t *x;
    json_array_foreach(targets, i, x) mine = mine || strcmp(json_string_value(x) ?: "", d->self_id) == 0;
    json_decref(targets);
    int up = -1;
    for (size_t u = 0; u < d->n_ups; u++)
        if (strcmp(d->ups[u].id, field(t, "up") ?: "") == 0)
            up = (int)u;
    json_t *result = json_object(), *errors = json_array();
    if (!mine || up < 0 || cit_status_final(status) || status == CIT_CANCELLING) {
        json_object_set_new(result, "skipped", json_true());
    } else {
        cit_spec s; /* (the monitor marks it active once a first executor has acted) */
        jerr e = {0};
        json_t *spec = json_loads(field(t, "spec"), 0, NULL);
        bool ok = cit_spec_from_json(spec, atoi(field(t, "version") ?: "1"), &s, &e);
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
            if (s.n_metadata_urls || s.n_metadata_patterns) { /* metadata: fetched again from the uCDN now */
                pthread_mutex_lock(&d->mu);
                d->refresh_now = true;
                pthread_cond_broadcast(&d->cv);
                pthread_mutex_unlock(&d->mu);
            }
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
    tkey(d, ka, sizeof ka, "acks:%s", id);
    tkey(d, kn, sizeof kn, "acked", NULL);
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
        ids[i] = id && id_ok(id) ? id : NULL;
    }
    if (load_many(d, tg->exec_store, ids, n, ts)) {
        char ks[200];
        tkey(d, ks, sizeof ks, "stream", NULL);
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

static void *exec_thread(void *arg)
{
    struct triggers *tg = arg;
    dcdn *d = tg->d;
    thread_set("cit-exec", 10); /* answering requests comes first */
    char ks[200];
    tkey(d, ks, sizeof ks, "stream", NULL);
    bool group = false;
    long long last_pending = 0, last_beat = 0;
    char ke[200];
    tkey(d, ke, sizeof ke, "executors", NULL);
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
static void check_one(struct triggers *tg, const char *id, store_reply *h, store_reply *acks, json_t *alive,
                      store_batch *w)
{
    dcdn *d = tg->d;
    if (!store_reply_is(h, STORE_ARRAY) || store_reply_count(h) != 4 || !store_reply_is(store_reply_at(h, 0), STORE_STR)) {
        if (store_reply_is(h, STORE_ARRAY)) { /* gone */
            char ko[200];
            tkey(d, ko, sizeof ko, "open", NULL);
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
    cit_status_parse(field(t, "status"), &st);
    if (cit_status_final(st)) {
        json_decref(t);
        return;
    }
    json_t *targets = json_loads(field(t, "targets") ?: "[]", 0, NULL), *errors = json_array();
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
        json_t *spec = json_loads(field(t, "spec") ?: "{}", 0, NULL);
        jerr e = {0};
        parsed = cit_spec_from_json(spec, atoi(field(t, "version") ?: "1"), &s, &e);
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
    if (to != st && queue_status(d, w, id, st, to, json_array_size(errors) ? json_incref(errors) : NULL)) {
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
        tkey(d, kt, sizeof kt, "t:%s", store_reply_at_str(ids, from + i, NULL));
        tkey(d, ka, sizeof ka, "acks:%s", store_reply_at_str(ids, from + i, NULL));
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
    json_t *alive = live_executors(d, tg->mon_store);
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
    tkey(d, k, sizeof k, all ? "open" : "acked", NULL);
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
        tkey(d, ku, sizeof ku, "up:%s", d->ups[u].id);
        store_reply *ids = store_cmd(tg->mon_store, "ZRANGEBYSCORE %s -inf %lld LIMIT 0 1000", ku, cut);
        for (size_t i = 0; ids && store_reply_is(ids, STORE_ARRAY) && i < store_reply_count(ids); i++) {
            const char *id = store_reply_at_str(ids, i, NULL);
            bool down = false;
            json_t *t = load(d, tg->mon_store, id, &down);
            cit_status st = CIT_PENDING;
            if (t)
                cit_status_parse(field(t, "status"), &st);
            if (!t || (cit_status_final(st) && atoll(field(t, "mtime") ?: "0") < cut))
                forget(d, tg->mon_store, id, d->ups[u].id);
            json_decref(t);
        }
        store_reply_free(ids);
    }
}

/* Every 100 ms: the triggers with news; all open ones when the executors
 * alive have changed, and every 30 s (news lost with a monitor that died);
 * every minute, final ones past staleresourcetime forgotten. */
static void mon_tick(ticker *t, void *arg)
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
        tg->mon = tg->mon_store ? ticker_start(mon_tick, tg, 100) : NULL;
        pthread_mutex_init(&tg->gc_mu, NULL);
        pthread_cond_init(&tg->gc_cv, NULL);
        tg->gc_store = store_open(d->redis_url, &st);
        tg->gc_started = tg->gc_store && pthread_create(&tg->gc_th, NULL, commit_thread, tg) == 0;
    }
    if (d->has_surrogate && d->cache) {
        store_status st;
        tg->exec_store = store_open(d->redis_url, &st);
        tg->exec_started = tg->exec_store && pthread_create(&tg->exec_th, NULL, exec_thread, tg) == 0;
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

/* The CI/T server (RFC 8007 §4, the router role, on the peer listener):
 * POST /triggers takes a trigger or a cancel and answers once a group
 * committer has written it to Redis; GET reads the collections and the
 * status resources (their JSON by interfaces/triggers' codec); DELETE
 * forgets one. The design is in triggers.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/thread.h"
#include "dcdn/triggers_int.h"

static void pa_free(pending_accept *pa)
{
    store_batch_free(&pa->cmds);
    free(pa->reply);
    free(pa);
}

/* Tells the monitor a trigger has news (an executor acted, a cancel). */
static void nudge(dcdn *d, store *st, const char *id)
{
    char k[200];
    tg_tkey(d, k, sizeof k, "acked", NULL);
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

static json_t *status_json(json_t *t)
{
    json_t *spec = json_loads(tg_field(t, "spec") ? tg_field(t, "spec") : "{}", 0, NULL);
    json_t *errs = tg_field(t, "errors") ? json_loads(tg_field(t, "errors"), 0, NULL) : NULL;
    cit_status_doc doc = {.spec = spec,
                          .version = tg_field(t, "version") && !strcmp(tg_field(t, "version"), "2") ? 2 : 1,
                          .ctime = atoll(tg_field(t, "ctime") ?: "0"),
                          .mtime = atoll(tg_field(t, "mtime") ?: "0"),
                          .etime = atoll(tg_field(t, "etime") ?: "0"),
                          .status = CIT_PENDING,
                          .errors = errs};
    cit_status_parse(tg_field(t, "status") ?: "pending", &doc.status);
    json_t *o = cit_status_doc_json(&doc);
    json_decref(spec);
    json_decref(errs);
    return o;
}

static bool set_status(dcdn *d, store *st, const char *id, cit_status to, json_t *errors)
{
    bool down = false;
    json_t *t = tg_load(d, st, id, &down);
    cit_status from;
    bool ok = t && cit_status_parse(tg_field(t, "status"), &from);
    json_decref(t);
    if (!ok) {
        json_decref(errors);
        return false;
    }
    store_batch w = {0};
    ok = tg_queue_status(d, &w, id, from, to, errors) && store_batch_send(st, &w);
    store_batch_free(&w);
    return ok;
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
        json_t *targets = tg_live_executors(d, d->store);
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
    tg_tkey(d, kt, sizeof kt, "t:%s", id);
    tg_tkey(d, ku, sizeof ku, "up:%s", up);
    tg_tkey(d, ko, sizeof ko, "open", NULL);
    tg_tkey(d, ks, sizeof ks, "stream", NULL);
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
void *tg_commit_thread(void *arg)
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
    json_t *t = up && tg_id_ok(id) ? tg_load(d, d->store, id, &down) : NULL;
    if (down) {
        redis_down(r);
        return NULL;
    }
    if (!t || strcmp(tg_field(t, "up") ?: "", up) != 0) {
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
        cit_status_parse(tg_field(t, "status"), &s);
        json_decref(t);
        if (s == CIT_PENDING || s == CIT_ACTIVE || s == CIT_PROCESSED) {
            set_status(d, d->store, id, CIT_CANCELLING, NULL);
            char ko[200], ks[200];
            tg_tkey(d, ko, sizeof ko, "open", NULL);
            tg_tkey(d, ks, sizeof ks, "stream", NULL);
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
    tg_tkey(d, k, sizeof k, "up:%s", up);
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
            tg_tkey(d, kt, sizeof kt, "t:%s", id);
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
    snprintf(etag, sizeof etag, "\"%s-%s-%s\"", id, tg_field(t, "mtime") ?: "0", tg_field(t, "status") ?: "");
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
    tg_forget(d, d->store, id, up);
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
    tg_tkey(d, ko, sizeof ko, "open", NULL);
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
        tg_tkey(d, k, sizeof k, "t:%s", store_reply_at_str(ids, i, NULL));
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

void triggers_peer_routes(dcdn *d, http_routes *out)
{
    http_routes_add(out, (http_route){"POST", "/triggers", post_triggers, d, false});
    http_routes_add(out, (http_route){"GET", "/triggers", get_triggers, d, false});
    http_routes_add(out, (http_route){"GET", "/triggers/{id}", get_trigger, d, false});
    http_routes_add(out, (http_route){"DELETE", "/triggers/{id}", delete_trigger, d, false});
    http_routes_add(out, (http_route){"PUT", "/triggers/{id}", not_allowed, d, false});
    http_routes_add(out, (http_route){"POST", "/triggers/{id}", not_allowed, d, false});
}

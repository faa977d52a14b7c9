/* CSP purge, invalidation and preposition API, fanned out to the dCDNs as
 * CDNI triggers (RFC 8007).
 *
 * CSP listener:
 *   POST   /csp/v1/{purges|invalidations|prepositions}   a request (below): 201 + Location
 *   GET    /csp/v1/{kind}/{id}                           its state, per dCDN
 *   DELETE /csp/v1/{kind}/{id}                           cancel it at every dCDN
 * A request body is a trigger specification without its type:
 *   {"content.urls": [...], "content.patterns": [PatternMatch],
 *    "content.ccids": [...], "metadata.urls": [...], "metadata.patterns": [...],
 *    "window": {"start": s, "end": s}}   (prepositions: CIT.TimePolicy)
 * A CSP may name only its own content: URLs and patterns on the hosts of its
 * delivery services (a pattern must start with one), CCIDs of its content
 * collections or of MI.Grouping in its services' metadata.
 *
 * The request is in Redis (cdni:<cdn>:{purge}:r:<id>) before 201 is
 * answered, and open until every dCDN (peers[] with ci_url) has finished
 * it: a worker in every ucdn instance takes each open request under a
 * short lock, POSTs the trigger (cdn-path: our cdn_pid) to each dCDN that
 * has not accepted it yet, retrying with a backoff doubling to
 * triggers.retry_max_s while the dCDN is unreachable or answers 5xx, then
 * polls the trigger status resource it was given until it is final. An
 * accepted request is never dropped: a restart, or another instance,
 * carries on from Redis. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/http_client.h"
#include "common/log.h"
#include "common/ticker.h"
#include "common/url.h"
#include "interfaces/triggers.h"
#include "ucdn/ucdn.h"

struct purges {
    ucdn *u;
    ticker *tick;
    store *st;
    http_client *http;
    char instance[64];
    metric_cell *m_accepted, *m_sent, *m_retries, *m_done;
};

static const char *const KINDS[] = {"purges", "invalidations", "prepositions"};
static const cit_type KIND_TYPE[] = {CIT_PURGE, CIT_INVALIDATE, CIT_PREPOSITION};

static void pkey(const ucdn *u, char *out, size_t cap, const char *fmt, const char *arg)
{
    int n = snprintf(out, cap, "cdni:%s:{purge}:", u->cdn_id);
    snprintf(out + n, cap - (size_t)n, fmt, arg ? arg : "");
}

static int kind_of(const char *path)
{
    for (int i = 0; i < 3; i++) {
        char p[64];
        snprintf(p, sizeof p, "/csp/v1/%s", KINDS[i]);
        if (strncmp(path, p, strlen(p)) == 0)
            return i;
    }
    return -1;
}

/* --- what a CSP may name ------------------------------------------------------------------- */

/* The claim ("host:<name>") of the host a URL or pattern starts with,
 * after its scheme; false when it names none a CSP could own. A pattern's
 * host must be literal: a wildcard there could reach other CSPs' hosts. */
static bool host_claim(const char *s, bool pattern, char *out, size_t cap)
{
    const char *h = !strncasecmp(s, "http://", 7) ? s + 7 : !strncasecmp(s, "https://", 8) ? s + 8 : s;
    size_t hl = strcspn(h, pattern ? "/?#*$\\" : "/?#");
    if (pattern && h[hl] != '/')
        return false;
    char c[262];
    size_t nl;
    if (hl == 0 || url_canon_host(h, hl, true, c, sizeof c, &nl) != URL_CANON_OK)
        return false;
    return (size_t)snprintf(out, cap, "host:%.*s", (int)nl, c) < cap;
}

/* NULL when the CSP owns everything the spec names (the hosts of its URLs
 * and patterns, its CCIDs); else the first thing it does not. */
static const char *not_owned(ucdn *u, const char *csp, const cit_spec *s, bool *down)
{
    *down = false;
    size_t n = s->n_content_urls + s->n_metadata_urls + s->n_content_patterns + s->n_metadata_patterns + s->n_ccids;
    char (*claims)[600] = calloc(n + 1, sizeof *claims);
    const char **cv = calloc(n + 1, sizeof *cv), **named = calloc(n + 1, sizeof *named);
    const char *bad = NULL;
    size_t k = 0;
    const char *const *urls[2] = {s->content_urls, s->metadata_urls};
    size_t nu[2] = {s->n_content_urls, s->n_metadata_urls};
    for (int g = 0; g < 2 && !bad; g++)
        for (size_t i = 0; i < nu[g] && !bad; i++, k++) {
            named[k] = urls[g][i];
            if (!host_claim(urls[g][i], false, claims[k], sizeof claims[k]))
                bad = urls[g][i];
        }
    cit_pattern *pats[2] = {s->content_patterns, s->metadata_patterns};
    size_t np[2] = {s->n_content_patterns, s->n_metadata_patterns};
    for (int g = 0; g < 2 && !bad; g++)
        for (size_t i = 0; i < np[g] && !bad; i++, k++) {
            named[k] = pats[g][i].pattern;
            if (!host_claim(pats[g][i].pattern, true, claims[k], sizeof claims[k]))
                bad = pats[g][i].pattern;
        }
    for (size_t i = 0; i < s->n_ccids && !bad; i++, k++) {
        named[k] = s->ccids[i];
        snprintf(claims[k], sizeof claims[k], "ccid:%s", s->ccids[i]);
    }
    for (size_t i = 0; i < k; i++)
        cv[i] = claims[i];
    /* one by one only when the whole set is not the caller's: to say which */
    if (!bad && !ucdn_claims_owned(u, cv, k, csp, down) && !*down)
        for (size_t i = 0; i < k && !bad && !*down; i++)
            if (!ucdn_claims_owned(u, &cv[i], 1, csp, down))
                bad = named[i];
    free(claims);
    free(cv);
    free(named);
    return *down ? NULL : bad;
}

/* --- the API -------------------------------------------------------------------------------- */

static json_t *load(ucdn *u, store *st, const char *id, bool *down)
{
    char k[200];
    pkey(u, k, sizeof k, "r:%s", id);
    store_reply *r = store_cmd(st, "GET %s", k);
    if (!r) {
        *down = true;
        return NULL;
    }
    json_t *v = store_reply_json(r);
    store_reply_free(r);
    return v;
}

static bool save(ucdn *u, store *st, const char *id, json_t *v)
{
    char k[200], *txt = json_dumps(v, JSON_COMPACT);
    pkey(u, k, sizeof k, "r:%s", id);
    store_reply *r = txt ? store_cmd(st, "SET %s %s", k, txt) : NULL;
    free(txt);
    store_reply_free(r);
    return r != NULL;
}

/* Writes request v as id and marks it open, as one durable write; false
 * after answering 503 (the store away, or the write not on its replicas:
 * then it is open all the same and the fan-out runs). */
static bool save_open(ucdn *u, http_req *r, const char *id, json_t *v)
{
    char k[200], ko[200], *txt = json_dumps(v, JSON_COMPACT);
    pkey(u, k, sizeof k, "r:%s", id);
    pkey(u, ko, sizeof ko, "open", NULL);
    store_batch b = {0};
    store_batch_add(&b, 3, (const char *[]){"SET", k, txt ? txt : ""});
    store_batch_add(&b, 3, (const char *[]){"SADD", ko, id});
    bool durable = false, ok = txt && store_batch_send_durable(u->store, &b, &durable);
    store_batch_free(&b);
    free(txt);
    if (ok && u->purges)
        ticker_wake(u->purges->tick); /* fan out now */
    if (ok && durable)
        return true;
    if (ok)
        csp_reply_not_durable(r);
    else
        csp_reply_down(r);
    return false;
}

static const char *overall(json_t *dcdns)
{
    size_t n = 0, complete = 0, failed = 0, processed = 0, cancelled = 0, sent = 0;
    const char *k;
    json_t *x;
    json_object_foreach(dcdns, k, x)
    {
        const char *s = json_string_value(json_object_get(x, "status")) ?: "pending";
        n++;
        complete += !strcmp(s, "complete");
        failed += !strcmp(s, "failed") || !strcmp(s, "refused");
        processed += !strcmp(s, "processed");
        cancelled += !strcmp(s, "cancelled");
        sent += json_object_get(x, "trigger") != NULL;
    }
    if (!n)
        return "complete";
    if (complete + failed + processed + cancelled == n)
        return failed ? "failed" : cancelled ? "cancelled" : processed ? "processed" : "complete";
    return sent ? "active" : "pending";
}

/* A request as the API shows it. */
static json_t *request_view(const char *id, json_t *v)
{
    json_t *out = json_pack("{s:s, s:O, s:O, s:O, s:s, s:O, s:[]}", "id", id, "type", json_object_get(v, "type"),
                            "spec", json_object_get(v, "spec"), "created", json_object_get(v, "created"), "status",
                            overall(json_object_get(v, "dcdns")), "cancel", json_object_get(v, "cancel") ?: json_false(),
                            "dcdns");
    json_t *a = json_object_get(out, "dcdns");
    const char *k;
    json_t *x;
    json_object_foreach(json_object_get(v, "dcdns"), k, x)
    {
        json_t *o = json_deep_copy(x);
        json_object_set_new(o, "dcdn", json_string(k));
        json_object_del(o, "next_ms");
        json_object_del(o, "polls");
        json_array_append_new(a, o);
    }
    return out;
}

static void reply_request(http_req *r, int status, const char *id, json_t *v)
{
    http_reply_json(r, status, NULL, request_view(id, v));
}

static int newest_first(const void *a, const void *b)
{
    /* ids start with their creation time in ms, all of the same width for centuries */
    return strcmp(*(const char *const *)b, *(const char *const *)a);
}

json_t *purges_open(ucdn *u, size_t max)
{
    char ko[200];
    pkey(u, ko, sizeof ko, "open", NULL);
    store_reply *ids = store_cmd(u->store, "SMEMBERS %s", ko);
    if (!ids)
        return NULL;
    json_t *out = json_array();
    size_t n = store_reply_count(ids), m = 0;
    const char **sorted = calloc(n ? n : 1, sizeof *sorted);
    for (size_t i = 0; sorted && i < n; i++)
        if ((sorted[m] = store_reply_at_str(ids, i, NULL)))
            m++;
    if (sorted && m) {
        qsort(sorted, m, sizeof *sorted, newest_first);
        for (size_t i = 0; i < m && json_array_size(out) < max; i++) {
            bool down = false;
            json_t *v = load(u, u->store, sorted[i], &down);
            if (v) {
                json_t *view = request_view(sorted[i], v);
                json_object_set(view, "csp", json_object_get(v, "csp"));
                json_array_append_new(out, view);
            }
            json_decref(v);
        }
    }
    free(sorted);
    store_reply_free(ids);
    return json_pack("{s:I, s:o}", "open", (json_int_t)n, "requests", out);
}

static void post_request(http_req *r, void *ctx)
{
    ucdn *u = ctx;
    int kind = kind_of(http_path(r));
    const char *csp = http_identity(r);
    if (!u->pg.cdn_pid) {
        http_reply_problem(r, 501, "Not Implemented", "this uCDN has no triggers section: no dCDN takes triggers from it",
                           NULL);
        return;
    }
    if (csp_over_limit(u, r, CSP_PURGE))
        return;
    size_t len;
    const char *body = http_body(r, &len);
    jerr e = {0};
    json_t *v = jparse(body, len, CIT_MAX_BODY, &e);
    if (!v || !json_is_object(v)) {
        if (v)
            jfail(&e, "$", "expected an object");
        http_reply_invalid(r, 400, "Invalid request", &e);
        json_decref(v);
        return;
    }
    /* the trigger specification the dCDNs get */
    json_t *spec = json_deep_copy(v);
    json_object_del(spec, "window");
    json_object_set_new(spec, "type", json_string(cit_type_name(KIND_TYPE[kind])));
    json_t *win = json_object_get(v, "window");
    if (win && kind == 2)
        json_object_set_new(spec, "extensions",
                            json_pack("[{s:s, s:{s:O}, s:b}]", "generic-trigger-extension-type", "CIT.TimePolicy",
                                      "generic-trigger-extension-value", "windows", win, "mandatory-to-enforce", 1));
    else if (win) {
        jfail(&e, "$.window", "only prepositions have a time window");
        http_reply_invalid(r, 400, "Invalid request", &e);
        json_decref(v);
        json_decref(spec);
        return;
    }
    json_decref(v);
    cit_spec s;
    if (!cit_spec_from_json(spec, win ? 2 : 1, &s, &e)) {
        /* paths as the CSP wrote them */
        if (!strncmp(e.path, "$.trigger.v2", 12))
            memmove(e.path + 1, e.path + 12, strlen(e.path + 12) + 1);
        else if (!strncmp(e.path, "$.trigger", 9))
            memmove(e.path + 1, e.path + 9, strlen(e.path + 9) + 1);
        http_reply_invalid(r, 400, "Invalid request", &e);
        cit_spec_free(&s);
        json_decref(spec);
        return;
    }
    bool down = false;
    const char *foreign = not_owned(u, csp, &s, &down);
    if (down || foreign) {
        char why[600];
        snprintf(why, sizeof why, "%.400s is not content of yours (or names other CSPs' content)", foreign ? foreign : "");
        if (down)
            csp_reply_down(r);
        else
            http_reply_problem(r, 403, "Forbidden", why, NULL);
        cit_spec_free(&s);
        json_decref(spec);
        return;
    }
    cit_spec_free(&s);
    /* the request, with a slot per dCDN */
    json_t *dcdns = json_object();
    for (size_t i = 0; i < u->n_peers; i++)
        if (u->peers[i].ci_url && u->peers[i].enabled)
            json_object_set_new(dcdns, u->peers[i].id, json_pack("{s:s, s:i}", "status", "pending", "attempts", 0));
    char id[40];
    unsigned char rnd[8];
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(rnd, 1, sizeof rnd, f) != sizeof rnd)
        memset(rnd, 0, sizeof rnd);
    if (f)
        fclose(f);
    snprintf(id, sizeof id, "%lld-%02x%02x%02x%02x%02x%02x", wall_ms(), rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
    json_t *req = json_pack("{s:s, s:s, s:o, s:I, s:o, s:b}", "csp", csp, "type", cit_type_name(KIND_TYPE[kind]),
                            "spec", spec, "created", (json_int_t)(wall_ms() / 1000), "dcdns", dcdns, "cancel", 0);
    if (!save_open(u, r, id, req)) {
        json_decref(req);
        return;
    }
    if (u->purges)
        metric_add(u->purges->m_accepted, 1);
    char loc[200];
    snprintf(loc, sizeof loc, "/csp/v1/%s/%s", KINDS[kind], id);
    http_add_header(r, "Location", loc);
    log_kv(LOG_INFO, "CSP trigger request accepted", "csp", csp, "id", id, "type", KIND_TYPE[kind] == CIT_PURGE ? "purge" : cit_type_name(KIND_TYPE[kind]), NULL);
    reply_request(r, 201, id, req);
    json_decref(req);
}

static json_t *owned_request(http_req *r, ucdn *u, const char *id)
{
    bool down = false;
    json_t *v = id && strlen(id) < 40 && strspn(id, "0123456789abcdef-") == strlen(id) ? load(u, u->store, id, &down)
                                                                                        : NULL;
    if (down) {
        csp_reply_down(r);
        return NULL;
    }
    int kind = kind_of(http_path(r));
    if (!v || strcmp(json_string_value(json_object_get(v, "csp")) ?: "", http_identity(r)) != 0 || kind < 0 ||
        strcmp(json_string_value(json_object_get(v, "type")) ?: "", cit_type_name(KIND_TYPE[kind])) != 0) {
        json_decref(v);
        http_reply_problem(r, 404, "Not Found", "no such request of yours", NULL);
        return NULL;
    }
    return v;
}

static void get_request(http_req *r, void *ctx)
{
    ucdn *u = ctx;
    const char *id = http_param(r, 0);
    json_t *v = owned_request(r, u, id);
    if (!v)
        return;
    reply_request(r, 200, id, v);
    json_decref(v);
}

static void delete_request(http_req *r, void *ctx)
{
    ucdn *u = ctx;
    const char *id = http_param(r, 0);
    if (csp_over_limit(u, r, CSP_PURGE))
        return;
    json_t *v = owned_request(r, u, id);
    if (!v)
        return;
    json_object_set_new(v, "cancel", json_true());
    if (!save_open(u, r, id, v)) {
        json_decref(v);
        return;
    }
    reply_request(r, 202, id, v);
    json_decref(v);
}

void purges_routes(ucdn *u, http_routes *out)
{
    for (int i = 0; i < 3; i++) {
        static char paths[3][2][48];
        snprintf(paths[i][0], sizeof paths[i][0], "/csp/v1/%s", KINDS[i]);
        snprintf(paths[i][1], sizeof paths[i][1], "/csp/v1/%s/{id}", KINDS[i]);
        http_routes_add(out, (http_route){"POST", paths[i][0], post_request, u, false});
        http_routes_add(out, (http_route){"GET", paths[i][1], get_request, u, false});
        http_routes_add(out, (http_route){"DELETE", paths[i][1], delete_request, u, false});
    }
}

/* --- fan-out --------------------------------------------------------------------------------- */

static void backoff(ucdn *u, json_t *slot, const char *why)
{
    long long attempts = json_integer_value(json_object_get(slot, "attempts"));
    long long delay = 1000LL << (attempts < 16 ? attempts : 16);
    if (delay > u->pg.retry_max_s * 1000LL)
        delay = u->pg.retry_max_s * 1000LL;
    json_object_set_new(slot, "attempts", json_integer(attempts + 1));
    json_object_set_new(slot, "next_ms", json_integer(wall_ms() + delay));
    json_object_set_new(slot, "last_error", json_string(why));
}

/* Status polls of a trigger: POLL_FIRST_MS after it was accepted or
 * changed, then twice as long each time up to POLL_MAX_MS. */
#define POLL_FIRST_MS 100LL
#define POLL_MAX_MS 10000LL

/* A dCDN's part is over: its trigger is final, or it refused the trigger
 * ("refused" is ours: the dCDN said 4xx, there is no trigger). */
static bool slot_final(json_t *slot)
{
    const char *status = json_string_value(json_object_get(slot, "status")) ?: "pending";
    cit_status st;
    return strcmp(status, "refused") == 0 || (cit_status_parse(status, &st) && cit_status_final(st));
}

/* One dCDN's part of one request; true when the slot changed. */
static bool advance(struct purges *pg, const route_peer *p, json_t *req, json_t *slot)
{
    ucdn *u = pg->u;
    const char *status = json_string_value(json_object_get(slot, "status")) ?: "pending";
    const char *loc = json_string_value(json_object_get(slot, "trigger"));
    bool cancel = json_is_true(json_object_get(req, "cancel"));
    if (slot_final(slot) || wall_ms() < json_integer_value(json_object_get(slot, "next_ms")))
        return false;
    char auth[300];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", p->ri_token);
    const char *hdrs[] = {auth, "Content-Type: " CIT_MEDIA_COMMAND, "Accept: application/cdni", NULL};
    http_result res = {0};
    if (!loc && cancel) { /* never sent: nothing to cancel there */
        json_object_set_new(slot, "status", json_string("cancelled"));
        return true;
    }
    if (!loc) {
        json_t *spec = json_object_get(req, "spec");
        bool v2 = json_object_get(spec, "extensions") != NULL;
        json_t *cmd = cit_trigger_json(spec, v2 ? 2 : 1, u->pg.cdn_pid);
        char *body = json_dumps(cmd, JSON_COMPACT);
        json_decref(cmd);
        if (v2)
            hdrs[1] = "Content-Type: " CIT_MEDIA_COMMAND_V2;
        http_client_use_tls(pg->http, &p->tls);
        int rc = http_client_do(pg->http, "POST", p->ci_url, hdrs, body, strlen(body), &res);
        free(body);
        metric_add(pg->m_sent, 1);
        char *abs = NULL;
        if (rc == 0 && res.status == 201 && res.location[0] &&
            (url_resolve(p->ci_url, strlen(p->ci_url), res.location, strlen(res.location), &abs) != URL_OK ||
             !url_same_origin(abs, p->ci_url))) {
            /* its status is read with the dCDN's token: only on the dCDN's own origin */
            json_object_set_new(slot, "status", json_string("failed"));
            json_object_set_new(slot, "last_error",
                                json_string("the dCDN's trigger Location is not on its CI/T origin; not followed"));
            log_kv(LOG_WARN, "a dCDN's trigger Location names another origin", "dcdn", p->id, "location",
                   res.location, NULL);
        } else if (rc == 0 && res.status == 201 && res.location[0]) {
            json_object_set_new(slot, "trigger", json_string(abs));
            json_object_set_new(slot, "status", json_string("pending"));
            json_object_del(slot, "last_error");
            json_object_set_new(slot, "polls", json_integer(0));
            json_object_set_new(slot, "next_ms", json_integer(wall_ms() + POLL_FIRST_MS));
        } else if (rc == 0 && res.status >= 400 && res.status < 500 && res.status != 408 && res.status != 429) {
            char why[400];
            snprintf(why, sizeof why, "the dCDN refused the trigger (%ld): %.300s", res.status,
                     res.body ? res.body : "");
            json_object_set_new(slot, "status", json_string("refused"));
            json_object_set_new(slot, "last_error", json_string(why));
            mstats_add2(u->stats, "ci_error", p->id, 1);
            log_kv(LOG_WARN, "a dCDN refused a trigger", "dcdn", p->id, "reason", why, NULL);
        } else {
            char why[300];
            if (rc)
                snprintf(why, sizeof why, "%s", res.error);
            else
                snprintf(why, sizeof why, "the dCDN answered %ld; retrying", res.status);
            metric_add(pg->m_retries, 1);
            mstats_add2(u->stats, "ci_error", p->id, 1);
            backoff(u, slot, why);
        }
        free(abs);
        http_result_free(&res);
        return true;
    }
    if (cancel && !json_is_true(json_object_get(slot, "cancel_sent"))) {
        json_t *cmd = cit_cancel_json(loc, u->pg.cdn_pid);
        char *body = json_dumps(cmd, JSON_COMPACT);
        json_decref(cmd);
        http_client_use_tls(pg->http, &p->tls);
        int rc = http_client_do(pg->http, "POST", p->ci_url, hdrs, body, strlen(body), &res);
        free(body);
        if (rc == 0 && res.status < 500)
            json_object_set_new(slot, "cancel_sent", json_true());
        else
            backoff(u, slot, rc ? res.error : "the dCDN did not take the cancel; retrying");
        http_result_free(&res);
        return true;
    }
    const char *ghdrs[] = {auth, NULL};
    http_client_use_tls(pg->http, &p->tls);
    int rc = http_client_do(pg->http, "GET", loc, ghdrs, NULL, 0, &res);
    bool changed = false;
    if (rc == 0 && res.status == 200) {
        cit_status_doc doc;
        json_t *t = NULL;
        jerr e = {0};
        const char *s = cit_status_doc_parse(res.body, res.body_len, &doc, &t, &e) ? cit_status_name(doc.status) : NULL;
        if (!s)
            log_kv(LOG_WARN, "a dCDN's trigger status is unreadable", "dcdn", p->id, "reason", e.reason, NULL);
        if (s && strcmp(s, status) != 0) {
            json_object_set_new(slot, "status", json_string(s));
            changed = true;
        }
        if (s && doc.errors && !json_equal(doc.errors, json_object_get(slot, "errors"))) {
            json_object_set(slot, "errors", doc.errors);
            changed = true;
        }
        json_decref(t);
        /* the first looks soon (most triggers end within a second), then
         * ever less often while the dCDN works on it */
        long long polls = json_integer_value(json_object_get(slot, "polls"));
        long long delay = changed ? POLL_FIRST_MS : POLL_FIRST_MS << (polls < 10 ? polls : 10);
        if (delay > POLL_MAX_MS)
            delay = POLL_MAX_MS;
        json_object_set_new(slot, "polls", json_integer(changed ? 0 : polls + 1));
        json_object_set_new(slot, "next_ms", json_integer(wall_ms() + delay));
        changed = true; /* the next poll's time is kept with it */
    } else if (rc == 0 && res.status == 404) {
        json_object_set_new(slot, "status", json_string("failed"));
        json_object_set_new(slot, "last_error", json_string("the dCDN no longer knows this trigger"));
        changed = true;
    } else {
        backoff(u, slot, rc ? res.error : "the trigger status could not be read; retrying");
        changed = true;
    }
    http_result_free(&res);
    return changed;
}

/* Every 100 ms, or at once for a new request: the open requests move on. */
static void purges_tick(ticker *t, void *arg)
{
    struct purges *pg = arg;
    ucdn *u = pg->u;
    char ko[200];
    pkey(u, ko, sizeof ko, "open", NULL);
    store_reply *ids = store_cmd(pg->st, "SMEMBERS %s", ko);
    for (size_t i = 0; ids && store_reply_is(ids, STORE_ARRAY) && i < store_reply_count(ids) && !ticker_stopping(t); i++) {
        const char *id = store_reply_at_str(ids, i, NULL);
        char lk[200];
        pkey(u, lk, sizeof lk, "lock:%s", id);
        store_reply *l = store_cmd(pg->st, "SET %s %s NX PX 10000", lk, pg->instance);
        bool mine = l && store_reply_is(l, STORE_STATUS);
        store_reply_free(l);
        if (!mine)
            continue; /* another instance is at it */
        bool down = false;
        json_t *req = load(u, pg->st, id, &down);
        bool changed = false;
        if (req) {
            const char *name;
            json_t *slot;
            json_object_foreach(json_object_get(req, "dcdns"), name, slot)
            {
                route_peer *p = peer_by_id(u, name, NULL);
                if (p && p->ci_url)
                    changed |= advance(pg, p, req, slot);
                else if (!slot_final(slot)) { /* the dCDN was removed from the configuration */
                    json_object_set_new(slot, "status", json_string("failed"));
                    json_object_set_new(slot, "last_error",
                                        json_string("this dCDN is no longer configured for triggers"));
                    changed = true;
                }
            }
            if (changed)
                save(u, pg->st, id, req);
            const char *st = overall(json_object_get(req, "dcdns"));
            cit_status cs;
            if (cit_status_parse(st, &cs) && cit_status_final(cs)) {
                store_reply *x = store_cmd(pg->st, "SREM %s %s", ko, id);
                store_reply_free(x);
                metric_add(pg->m_done, 1);
                log_kv(LOG_INFO, "CSP trigger request finished", "id", id, "status", st, NULL);
            }
        } else if (!down) {
            store_reply *x = store_cmd(pg->st, "SREM %s %s", ko, id);
            store_reply_free(x);
        }
        json_decref(req);
        l = store_cmd(pg->st, "DEL %s", lk);
        store_reply_free(l);
    }
    store_reply_free(ids);
}

bool purges_start(ucdn *u)
{
    if (!u->pg.cdn_pid)
        return true;
    struct purges *pg = calloc(1, sizeof *pg);
    pg->u = u;
    store_status st;
    pg->st = store_open(u->redis_url, &st);
    http_client_conf hc = {.connect_timeout_ms = 1000, .timeout_ms = 5000, .retries = 0, .egress = u->egress};
    pg->http = http_client_new(&hc);
    char host[40] = "";
    gethostname(host, sizeof host - 1);
    snprintf(pg->instance, sizeof pg->instance, "%.39s/%d", host, (int)getpid());
    pg->m_accepted = metrics_series(u->metrics, "cdni_csp_trigger_requests_total", "", "counter",
                                    "CSP purge, invalidation and preposition requests accepted");
    pg->m_sent = metrics_series(u->metrics, "cdni_triggers_sent_total", "", "counter", "CI/T triggers sent to dCDNs");
    pg->m_retries = metrics_series(u->metrics, "cdni_trigger_retries_total", "", "counter",
                                   "trigger sends retried (dCDN unreachable or 5xx)");
    pg->m_done = metrics_series(u->metrics, "cdni_csp_trigger_requests_finished_total", "", "counter",
                                "CSP requests every dCDN has finished");
    if (!pg->st || !pg->http) {
        store_close(pg->st);
        http_client_free(pg->http);
        free(pg);
        return false;
    }
    pg->tick = ticker_start(purges_tick, pg, 100);
    if (!pg->tick) {
        store_close(pg->st);
        http_client_free(pg->http);
        free(pg);
        return false;
    }
    u->purges = pg; /* only now may requests wake it */
    return true;
}

void purges_stop(ucdn *u)
{
    struct purges *pg = u->purges;
    if (!pg)
        return;
    ticker_stop(pg->tick);
    store_close(pg->st);
    http_client_free(pg->http);
    free(pg);
    u->purges = NULL;
}

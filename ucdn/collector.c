/* CDNI logging collector (RFC 7937 §4) and billing export.
 *
 * Every ucdn instance polls each dCDN's logging feed (peers[].li_feed_url,
 * the peer's ri_token as bearer) every collector.poll_s, walking back
 * through RFC 5005 prev-archive pages while a page still lists a file not
 * yet counted. A file is taken by one instance only: its UUID is claimed in
 * Redis (SET NX with a lease) before it is fetched, and marked done in the
 * same MULTI/EXEC that adds its records to the aggregates, so it is counted
 * exactly once whatever the number of instances, and an instance dying
 * half-way leaves a lease that runs out, not a half-counted file.
 *
 * Checks before anything is counted: gzip whole, the file well formed
 * (li_parse), its #SHA256-hash present (collector.require_hash) and
 * matching, its #UUID the feed entry's, and its #SHA256-hash the one the
 * entry lists (interfaces/li_feed.h's extension) when it lists one. A file
 * failing them is quarantined: kept under archive_dir/quarantine/, listed
 * with its reason in Redis and at GET /v1/logs, logged, never counted. A
 * file that could not be fetched is retried at the next poll (retry:<dcdn>,
 * hash uuid -> "<listed hash> <url>", or the URL alone).
 *
 * Aggregates, per UTC day of each record (cdni:<cdn>:{li}:...):
 *   agg:<day>    hash "<csp>\t<host>\t<ccid>\t<dcdn>\t<metric>" -> count;
 *                metrics bytes, requests, hits (deliveries) and redirects
 *   sess:<day>   hash "<dcdn>\t<sid>\t<chunks|bytes>" -> count, and
 *                "<dcdn>\t<sid>\t<csp|ccid>" -> value
 *   sstart:<day>, send:<day>  zsets "<dcdn>\t<sid>" -> first / last ms
 *   srep:<day>   hash "<dcdn>\t<sid>\t<representation>" -> chunks
 * Verified files are kept under archive_dir/<day>/<dcdn>/<uuid>.log.gz.
 *
 * Billing: GET /csp/v1/billing (the calling CSP's own usage) and
 * GET /v1/billing (operator, every CSP), ?from=&to= (YYYY-MM-DD, UTC,
 * inclusive; at most 366 days) &group-by= (day, csp, host, ccid, dcdn; or
 * session) &format=json|csv (or Accept: text/csv). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fdio.h"
#include "common/gz.h"
#include "common/http_client.h"
#include "common/log.h"
#include "common/url.h"
#include "common/ticker.h"
#include "interfaces/li_feed.h"
#include "interfaces/logging.h"
#include "ucdn/ucdn.h"

#define LEASE_MS 120000
#define MAX_PAGES 1000

struct collector {
    ucdn *u;
    ticker *tick;
    store *st; /* the thread's own connection */
    http_client *http;
    char instance[64];
    metric_cell *m_files, *m_records, *m_quarantined, *m_fetch_fail;
};

/* --- keys ------------------------------------------------------------------------------- */

static void key(const ucdn *u, char *out, size_t cap, const char *fmt, const char *arg)
{
    int n = snprintf(out, cap, "cdni:%s:{li}:", u->cdn_id);
    snprintf(out + n, cap - (size_t)n, fmt, arg);
}

/* --- one file's records, summed before they reach Redis -------------------------------------- */

typedef struct {
    ucdn *u;
    const ucdn_index *ix;
    const char *dcdn;
    json_t *agg;    /* "<day>\t<csp>\t<host>\t<ccid>\t<metric>" -> integer */
    json_t *sess;   /* "<day>\t<sid>" -> {start, end, chunks, bytes, csp, ccid, reps:{}} */
    json_t *days;   /* day -> true */
    char first_day[16];
    size_t records;
} file_sum;

static const char *csp_of(const file_sum *fs, const char *host)
{
    for (size_t i = 0; fs->ix && i < fs->ix->x->n_hosts; i++)
        if (strcasecmp(fs->ix->x->hosts[i].host, host) == 0)
            return fs->ix->csp[i];
    return "-";
}

static void add(json_t *o, const char *k, long long v)
{
    json_t *c = json_object_get(o, k);
    if (c)
        json_integer_set(c, json_integer_value(c) + v);
    else
        json_object_set_new(o, k, json_integer(v));
}

static void value(const li_fields *f, const char *const *v, const size_t *len, li_field_id id, char *out,
                  size_t cap)
{
    out[0] = 0;
    for (size_t i = 0; i < f->n; i++)
        if (f->f[i].id == id) {
            bool absent = false;
            if (li_field_is_qstring(id)) {
                if (!li_unquote(v[i], len[i], out, cap, &absent) || absent)
                    out[0] = 0;
            } else if (!(len[i] == 1 && v[i][0] == '-'))
                snprintf(out, cap, "%.*s", (int)(len[i] < cap ? len[i] : cap - 1), v[i]);
            return;
        }
}

static long long record_ms(const char *date, const char *time_)
{
    struct tm tm = {0};
    char both[40];
    snprintf(both, sizeof both, "%s %s", date, time_);
    const char *end = strptime(both, "%Y-%m-%d %H:%M:%S", &tm);
    if (!end)
        return -1;
    long long ms = (long long)timegm(&tm) * 1000;
    if (*end == '.')
        ms += atoi(end + 1) * (long long)(strlen(end + 1) == 3 ? 1 : strlen(end + 1) == 2 ? 10 : 100);
    return ms;
}

static void on_record(void *ud, const li_fields *f, const char *const *v, const size_t *len)
{
    file_sum *fs = ud;
    char date[16], tm_[24], uri[2048], ccid[256], sid[256], cached[4], bytes[24];
    value(f, v, len, LF_DATE, date, sizeof date);
    value(f, v, len, LF_TIME, tm_, sizeof tm_);
    value(f, v, len, LF_U_URI, uri, sizeof uri);
    if (!uri[0])
        value(f, v, len, LF_CS_URI, uri, sizeof uri);
    value(f, v, len, LF_S_CCID, ccid, sizeof ccid);
    value(f, v, len, LF_S_SID, sid, sizeof sid);
    value(f, v, len, LF_S_CACHED, cached, sizeof cached);
    value(f, v, len, LF_SC_ENTITY_BYTES, bytes, sizeof bytes);
    if (!bytes[0])
        value(f, v, len, LF_SC_TOTAL_BYTES, bytes, sizeof bytes);
    long long ms = record_ms(date, tm_);
    if (ms < 0 || strlen(date) != 10)
        return; /* date and time are mandatory: a record without them is not counted */
    fs->records++;
    if (!fs->first_day[0])
        snprintf(fs->first_day, sizeof fs->first_day, "%s", date);
    json_object_set_new(fs->days, date, json_true());
    /* the content's host, from u-uri (http://host/path) */
    const char *hs = strstr(uri, "://"), *path = "";
    char host[256] = "-";
    if (hs) {
        size_t hl = strcspn(hs + 3, "/?#");
        snprintf(host, sizeof host, "%.*s", (int)(hl < 255 ? hl : 255), hs + 3);
        path = hs + 3 + hl;
    }
    const char *csp = csp_of(fs, host);
    long long b = atoll(bytes);
    bool redirect = !cached[0]; /* s-cached "-": a router's answer */
    char k[1024];
#define AGG(metric, n)                                                                                       \
    do {                                                                                                     \
        snprintf(k, sizeof k, "%s\t%s\t%s\t%s\t%s", date, csp, host, ccid[0] ? ccid : "-", metric);          \
        add(fs->agg, k, n);                                                                                  \
    } while (0)
    if (redirect) {
        AGG("redirects", 1);
        return;
    }
    AGG("requests", 1);
    AGG("bytes", b);
    if (cached[0] == '1')
        AGG("hits", 1);
#undef AGG
    if (!sid[0])
        return;
    snprintf(k, sizeof k, "%s\t%s", date, sid);
    json_t *s = json_object_get(fs->sess, k);
    if (!s) {
        s = json_pack("{s:I, s:I, s:I, s:I, s:s, s:s, s:{}}", "start", (json_int_t)ms, "end", (json_int_t)ms,
                      "chunks", (json_int_t)0, "bytes", (json_int_t)0, "csp", csp, "ccid", ccid[0] ? ccid : "-",
                      "reps");
        json_object_set_new(fs->sess, k, s);
    }
    if (ms < json_integer_value(json_object_get(s, "start")))
        json_object_set_new(s, "start", json_integer(ms));
    if (ms > json_integer_value(json_object_get(s, "end")))
        json_object_set_new(s, "end", json_integer(ms));
    add(s, "chunks", 1);
    add(s, "bytes", b);
    /* the representation: the directory the chunk is in (".../720p/") */
    size_t pl = strcspn(path, "?#");
    while (pl && path[pl - 1] != '/')
        pl--;
    char rep[512];
    snprintf(rep, sizeof rep, "%.*s", (int)(pl < 511 ? pl : 511), pl ? path : "/");
    add(json_object_get(s, "reps"), rep, 1);
}

/* --- Redis ---------------------------------------------------------------------------------- */

typedef struct {
    int n, cap;
    int *argc;
    const char ***argv;
    size_t **argvlen;
    char **owned; /* strings to free */
    int n_owned, cap_owned;
} cmds;

static char *own(cmds *c, char *s)
{
    if (c->n_owned == c->cap_owned) {
        c->cap_owned = c->cap_owned ? c->cap_owned * 2 : 64;
        c->owned = realloc(c->owned, (size_t)c->cap_owned * sizeof *c->owned);
    }
    c->owned[c->n_owned++] = s;
    return s;
}

/* A command of up to 5 arguments; every argument is copied. */
static void cmd(cmds *c, int argc, const char *a0, const char *a1, const char *a2, const char *a3, const char *a4)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->argc = realloc(c->argc, (size_t)c->cap * sizeof *c->argc);
        c->argv = realloc(c->argv, (size_t)c->cap * sizeof *c->argv);
        c->argvlen = realloc(c->argvlen, (size_t)c->cap * sizeof *c->argvlen);
    }
    const char *in[5] = {a0, a1, a2, a3, a4};
    const char **argv = (const char **)own(c, malloc(5 * sizeof *argv));
    size_t *lens = (size_t *)own(c, malloc(5 * sizeof *lens));
    for (int i = 0; i < argc; i++) {
        argv[i] = own(c, strdup(in[i]));
        lens[i] = strlen(in[i]);
    }
    c->argc[c->n] = argc;
    c->argv[c->n] = argv;
    c->argvlen[c->n] = lens;
    c->n++;
}

static void cmds_free(cmds *c)
{
    for (int i = 0; i < c->n_owned; i++)
        free(c->owned[i]);
    free(c->owned);
    free(c->argc);
    free(c->argv);
    free(c->argvlen);
}

/* Adds the file's sums and marks it done, all or nothing. */
static bool commit(struct collector *co, const file_sum *fs, const char *uuid)
{
    ucdn *u = co->u;
    cmds c = {0};
    char k[300], num[32], k2[300];
    cmd(&c, 1, "MULTI", 0, 0, 0, 0);
    const char *name;
    json_t *v;
    json_object_foreach(fs->agg, name, v)
    {
        /* "<day>\t<rest>": the day picks the hash */
        const char *tab = strchr(name, '\t');
        char day[16];
        snprintf(day, sizeof day, "%.*s", (int)(tab - name), name);
        key(u, k, sizeof k, "agg:%s", day);
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        char *field = own(&c, malloc(strlen(tab + 1) + strlen(fs->dcdn) + 2));
        /* "<csp>\t<host>\t<ccid>\t<metric>" -> "<csp>\t<host>\t<ccid>\t<dcdn>\t<metric>" */
        const char *m = strrchr(tab + 1, '\t');
        sprintf(field, "%.*s\t%s%s", (int)(m - tab - 1), tab + 1, fs->dcdn, m);
        cmd(&c, 4, "HINCRBY", k, field, num, 0);
    }
    json_object_foreach(fs->sess, name, v)
    {
        const char *tab = strchr(name, '\t');
        char day[16], member[600], f[900];
        snprintf(day, sizeof day, "%.*s", (int)(tab - name), name);
        snprintf(member, sizeof member, "%s\t%s", fs->dcdn, tab + 1);
        key(u, k, sizeof k, "sess:%s", day);
        snprintf(f, sizeof f, "%s\tchunks", member);
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(json_object_get(v, "chunks")));
        cmd(&c, 4, "HINCRBY", k, f, num, 0);
        snprintf(f, sizeof f, "%s\tbytes", member);
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(json_object_get(v, "bytes")));
        cmd(&c, 4, "HINCRBY", k, f, num, 0);
        snprintf(f, sizeof f, "%s\tcsp", member);
        cmd(&c, 4, "HSET", k, f, json_string_value(json_object_get(v, "csp")), 0);
        snprintf(f, sizeof f, "%s\tccid", member);
        cmd(&c, 4, "HSET", k, f, json_string_value(json_object_get(v, "ccid")), 0);
        key(u, k2, sizeof k2, "sstart:%s", day);
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(json_object_get(v, "start")));
        cmd(&c, 5, "ZADD", k2, "LT", num, member);
        key(u, k2, sizeof k2, "send:%s", day);
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(json_object_get(v, "end")));
        cmd(&c, 5, "ZADD", k2, "GT", num, member);
        key(u, k2, sizeof k2, "srep:%s", day);
        const char *rep;
        json_t *n;
        json_object_foreach(json_object_get(v, "reps"), rep, n)
        {
            snprintf(f, sizeof f, "%s\t%s", member, rep);
            snprintf(num, sizeof num, "%lld", (long long)json_integer_value(n));
            cmd(&c, 4, "HINCRBY", k2, f, num, 0);
        }
    }
    key(u, k, sizeof k, "days", "");
    json_object_foreach(fs->days, name, v) cmd(&c, 3, "SADD", k, name, 0, 0);
    key(u, k, sizeof k, "file:%s", uuid);
    snprintf(num, sizeof num, "done %zu", fs->records);
    cmd(&c, 3, "SET", k, num, 0, 0);
    key(u, k, sizeof k, "retry:%s", fs->dcdn);
    cmd(&c, 3, "HDEL", k, uuid, 0, 0);
    key(u, k, sizeof k, "peer:%s", fs->dcdn);
    cmd(&c, 4, "HINCRBY", k, "files", "1", 0);
    snprintf(num, sizeof num, "%zu", fs->records);
    cmd(&c, 4, "HINCRBY", k, "records", num, 0);
    cmd(&c, 1, "EXEC", 0, 0, 0, 0);
    store_reply **rep = calloc((size_t)c.n, sizeof *rep);
    bool durable = false; /* not on the replicas: done again later (the file's mark says if it was) */
    size_t got = store_pipeline_durable(co->st, (size_t)c.n, c.argc, c.argv, (const size_t **)c.argvlen, rep,
                                        &durable);
    bool ok = durable && got == (size_t)c.n && rep[c.n - 1] && store_reply_is(rep[c.n - 1], STORE_ARRAY);
    for (size_t i = 0; ok && i < store_reply_count(rep[c.n - 1]); i++)
        ok = !store_reply_is(store_reply_at(rep[c.n - 1], i), STORE_ERR);
    for (size_t i = 0; i < got; i++)
        store_reply_free(rep[i]);
    free(rep);
    cmds_free(&c);
    return ok;
}

/* --- one file ------------------------------------------------------------------------------- */

typedef enum { F_DONE, F_COUNTED, F_BUSY, F_FAILED } file_outcome;

/* base/a/b/<uuid>.log.gz, durably */
static bool write_file(const char *base, const char *a, const char *b, const char *uuid, const char *data,
                       size_t n)
{
    char p[1200], tmp[1210];
    mkdir(base, 0700);
    snprintf(p, sizeof p, "%s/%s", base, a);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/%s/%s", base, a, b);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/%s/%s/%s.log.gz", base, a, b, uuid);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && fd_write_all(fd, data, n) && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    ok = ok && rename(tmp, p) == 0;
    if (!ok)
        unlink(tmp);
    return ok;
}

static void quarantine(struct collector *co, const route_peer *p, const char *uuid, const char *why,
                       const http_result *res)
{
    ucdn *u = co->u;
    char k[300];
    if (u->li.archive_dir && res->body_len)
        write_file(u->li.archive_dir, "quarantine", p->id, uuid, res->body, res->body_len);
    json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:I}", "file", uuid, "dcdn", p->id, "reason", why, "bytes",
                          (json_int_t)res->body_len, "at_ms", (json_int_t)wall_ms());
    char *txt = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    key(u, k, sizeof k, "quarantine", "");
    store_reply *r = store_cmd(co->st, "HSET %s %s %s", k, uuid, txt);
    store_reply_free(r);
    key(u, k, sizeof k, "file:%s", uuid);
    r = store_cmd(co->st, "SET %s quarantined", k);
    store_reply_free(r);
    key(u, k, sizeof k, "peer:%s", p->id);
    r = store_cmd(co->st, "HINCRBY %s quarantined 1", k);
    store_reply_free(r);
    free(txt);
    metric_add(co->m_quarantined, 1);
    mstats_add2(co->u->stats, "li_error", p->id, 1);
    log_kv(LOG_ERROR, "CDNI logging file quarantined: not counted", "dcdn", p->id, "file", uuid, "reason", why,
           NULL);
}

static void forget_retry(struct collector *co, const route_peer *p, const char *uuid)
{
    char k[300];
    key(co->u, k, sizeof k, "retry:%s", p->id);
    store_reply *r = store_cmd(co->st, "HDEL %s %s", k, uuid);
    store_reply_free(r);
}

/* A retry entry's value: "<feed hash> <url>", or the URL alone when the
 * feed gave no hash. */
static void retry_later(struct collector *co, const route_peer *p, const char *uuid, const char *url,
                        const char *feed_hash, const char *why)
{
    char k[300];
    key(co->u, k, sizeof k, "file:%s", uuid);
    store_reply *r = store_cmd(co->st, "DEL %s", k); /* our claim: free for the next try */
    store_reply_free(r);
    key(co->u, k, sizeof k, "retry:%s", p->id);
    char v[LI_FEED_URL_MAX + 160];
    snprintf(v, sizeof v, "%s%s%s", feed_hash, *feed_hash ? " " : "", url);
    r = store_cmd(co->st, "HSET %s %s %s", k, uuid, v);
    store_reply_free(r);
    metric_add(co->m_fetch_fail, 1);
    mstats_add2(co->u->stats, "li_error", p->id, 1);
    log_kv(LOG_WARN, "CDNI logging file not collected; retried at the next poll", "dcdn", p->id, "file", uuid,
           "reason", why, NULL);
}

/* One file the feed listed: url, and feed_hash its entry's SHA256-hash ("" when none). */
static file_outcome collect_file(struct collector *co, const route_peer *p, const char *uuid, const char *url,
                                 const char *feed_hash)
{
    ucdn *u = co->u;
    char k[300];
    key(u, k, sizeof k, "file:%s", uuid);
    char lease[32];
    snprintf(lease, sizeof lease, "%d", LEASE_MS);
    store_reply *r = store_cmd(co->st, "SET %s %s NX PX %s", k, co->instance, lease);
    if (!r)
        return F_FAILED;
    bool mine = store_reply_is(r, STORE_STATUS);
    store_reply_free(r);
    if (!mine) {
        r = store_cmd(co->st, "GET %s", k);
        bool done = r && store_reply_is(r, STORE_STR) &&
                    (strncmp(store_reply_str(r, NULL), "done", 4) == 0 || strcmp(store_reply_str(r, NULL), "quarantined") == 0);
        store_reply_free(r);
        return done ? F_DONE : F_BUSY;
    }
    http_result res = {0};
    if (!url_same_origin(url, p->li_feed_url)) {
        /* the peer's bearer token goes to the peer's own origin, nowhere else */
        quarantine(co, p, uuid, "the feed names a file on another origin than the feed's; not fetched", &res);
        forget_retry(co, p, uuid);
        return F_COUNTED;
    }
    char auth[300];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", p->ri_token);
    const char *hdrs[] = {auth, "Accept-Encoding: gzip", NULL};
    if ((http_client_use_tls(co->http, &p->tls), http_client_do(co->http, "GET", url, hdrs, NULL, 0, &res)) != 0 ||
            res.status != 200) {
        char why[300];
        if (res.status)
            snprintf(why, sizeof why, "the dCDN answered %ld", res.status);
        else
            snprintf(why, sizeof why, "%s", res.error);
        retry_later(co, p, uuid, url, feed_hash, why);
        http_result_free(&res);
        return F_FAILED;
    }
    /* checks: nothing is counted from a file that fails one */
    const char *why = NULL;
    buf text;
    buf_init(&text, 0, 0);
    bool gz = gz_is_gzip(res.body, res.body_len);
    bool ok = gz ? gz_inflate(res.body, res.body_len, u->li.max_file_bytes, &text, &why)
                 : (buf_add(&text, res.body, res.body_len), buf_ok(&text));
    if (!gz && ok && u->li.require_gzip) {
        ok = false;
        why = "the file is not gzip-compressed";
    }
    snap_ref *iref;
    file_sum fs = {.u = u, .dcdn = p->id, .agg = json_object(), .sess = json_object(), .days = json_object()};
    fs.ix = snapshot_acquire(&u->index, &iref);
    li_summary sum;
    if (ok)
        ok = li_parse(text.data, text.len, on_record, &fs, &sum, &why);
    char want[64];
    snprintf(want, sizeof want, "urn:uuid:%s", uuid);
    if (ok && u->li.require_hash && !sum.has_hash) {
        ok = false;
        why = "the file has no #SHA256-hash directive";
    }
    if (ok && strcasecmp(sum.uuid, want) != 0) {
        ok = false;
        why = "the file's #UUID is not the feed entry's";
    }
    if (ok && *feed_hash && strcmp(sum.hash, feed_hash) != 0) { /* self-consistent, but not the file listed */
        ok = false;
        why = sum.has_hash ? "the file's #SHA256-hash is not the one its feed entry lists"
                           : "the feed entry lists a SHA256-hash but the file has none";
    }
    snapshot_release(&u->index, iref);
    file_outcome out = F_COUNTED;
    if (!ok)
        quarantine(co, p, uuid, why ? why : "malformed", &res);
    else if (u->li.archive_dir &&
             !write_file(u->li.archive_dir, fs.first_day[0] ? fs.first_day : "undated", p->id, uuid, res.body,
                         res.body_len)) {
        retry_later(co, p, uuid, url, feed_hash, "cannot write the archive copy");
        out = F_FAILED;
    } else if (!commit(co, &fs, uuid)) {
        retry_later(co, p, uuid, url, feed_hash, "the store did not take the file's sums");
        out = F_FAILED;
    } else {
        metric_add(co->m_files, 1);
        metric_add(co->m_records, (long long)fs.records);
        char n[24];
        snprintf(n, sizeof n, "%zu", fs.records);
        log_kv(LOG_INFO, "CDNI logging file collected", "dcdn", p->id, "file", uuid, "records", n, NULL);
    }
    json_decref(fs.agg);
    json_decref(fs.sess);
    json_decref(fs.days);
    buf_free(&text);
    http_result_free(&res);
    return out; /* a quarantined file was new too */
}

/* --- one peer's feed ------------------------------------------------------------------------- */

static void collect_peer(struct collector *co, ticker *t, route_peer *p)
{
    ucdn *u = co->u;
    char k[300];
    /* first the files an earlier poll could not fetch */
    key(u, k, sizeof k, "retry:%s", p->id);
    store_reply *r = store_cmd(co->st, "HGETALL %s", k);
    for (size_t i = 0; r && store_reply_is(r, STORE_ARRAY) && i + 1 < store_reply_count(r); i += 2) {
        const char *v = store_reply_at_str(r, i + 1, NULL), *sp = strchr(v, ' ');
        char h[65] = "";
        if (sp && sp - v == 64 && strspn(v, "0123456789abcdef") == 64) { /* "<hash> <url>" */
            memcpy(h, v, 64);
            v = sp + 1;
        }
        collect_file(co, p, store_reply_at_str(r, i, NULL), v, h);
    }
    store_reply_free(r);
    char url[LI_FEED_URL_MAX + 64];
    snprintf(url, sizeof url, "%s", p->li_feed_url);
    char auth[300];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", p->ri_token);
    const char *hdrs[] = {auth, "Accept: application/atom+xml", NULL};
    const char *err = NULL;
    for (int page = 0; page < MAX_PAGES && !ticker_stopping(t); page++) {
        http_result res = {0};
        if ((http_client_use_tls(co->http, &p->tls), http_client_do(co->http, "GET", url, hdrs, NULL, 0, &res)) != 0 ||
            res.status != 200) {
            err = res.status == 404 && page ? NULL : "the feed could not be fetched";
            http_result_free(&res);
            break;
        }
        li_feed f;
        const char *why;
        if (!li_feed_parse(res.body, res.body_len, &f, &why)) {
            err = why;
            http_result_free(&res);
            break;
        }
        http_result_free(&res);
        size_t fresh = 0;
        for (size_t i = 0; i < f.n && !ticker_stopping(t); i++) {
            char furl[LI_FEED_URL_MAX + 64];
            if (!li_feed_resolve(url, f.e[i].href, furl, sizeof furl))
                continue;
            fresh += collect_file(co, p, f.e[i].uuid, furl, f.e[i].sha256) != F_DONE;
        }
        char prev[LI_FEED_URL_MAX + 64] = "";
        bool more = f.prev_archive[0] && li_feed_resolve(url, f.prev_archive, prev, sizeof prev);
        if (more && !url_same_origin(prev, p->li_feed_url)) {
            more = false;
            err = "the feed's prev-archive link names another origin; not followed";
        }
        bool go = more && (fresh || f.n == 0); /* a page all counted: what is older was counted too */
        li_feed_free(&f);
        if (!go)
            break;
        snprintf(url, sizeof url, "%s", prev);
    }
    key(u, k, sizeof k, "peer:%s", p->id);
    char ms[24];
    snprintf(ms, sizeof ms, "%lld", wall_ms());
    r = store_cmd(co->st, "HSET %s last_poll_ms %s last_error %s", k, ms, err ? err : "");
    store_reply_free(r);
    if (err)
        log_kv(LOG_WARN, "CDNI logging feed not read", "dcdn", p->id, "reason", err, NULL);
}

/* Every poll_s: each peer's feed. */
static void collector_tick(ticker *t, void *arg)
{
    struct collector *co = arg;
    for (size_t i = 0; i < co->u->n_peers && !ticker_stopping(t); i++)
        if (co->u->peers[i].li_feed_url)
            collect_peer(co, t, &co->u->peers[i]);
}

bool collector_start(ucdn *u)
{
    bool any = false;
    for (size_t i = 0; i < u->n_peers; i++)
        any = any || u->peers[i].li_feed_url;
    if (!any)
        return true;
    struct collector *co = calloc(1, sizeof *co);
    co->u = u;
    store_status st;
    co->st = store_open(u->redis_url, &st);
    http_client_conf hc = {.timeout_ms = 60000, .retries = 1, .max_body = (size_t)u->li.max_file_bytes, .egress = u->egress,
                           .keep_encoding = true};
    co->http = http_client_new(&hc);
    char host[40] = "";
    gethostname(host, sizeof host - 1);
    snprintf(co->instance, sizeof co->instance, "claimed %.39s/%d", host, (int)getpid());
    co->m_files = metrics_series(u->metrics, "cdni_li_files_collected_total", "", "counter",
                                 "CDNI logging files verified and counted");
    co->m_records = metrics_series(u->metrics, "cdni_li_records_collected_total", "", "counter",
                                   "CDNI log records counted");
    co->m_quarantined = metrics_series(u->metrics, "cdni_li_files_quarantined_total", "", "counter",
                                       "CDNI logging files refused (bad gzip, format, hash or UUID)");
    co->m_fetch_fail = metrics_series(u->metrics, "cdni_li_fetch_failures_total", "", "counter",
                                      "CDNI logging files that could not be fetched (retried)");
    if (!co->st || !co->http) {
        store_close(co->st);
        http_client_free(co->http);
        free(co);
        return false;
    }
    u->collector = co;
    co->tick = ticker_start(collector_tick, co, u->li.poll_s * 1000LL);
    return co->tick != NULL;
}

void collector_stop(ucdn *u)
{
    struct collector *co = u->collector;
    if (!co)
        return;
    ticker_stop(co->tick);
    store_close(co->st);
    http_client_free(co->http);
    free(co);
    u->collector = NULL;
}

/* --- billing export --------------------------------------------------------------------------- */

static const char *const DIMS[] = {"day", "csp", "host", "ccid", "dcdn", NULL};
static const char *const METRICS[] = {"requests", "bytes", "hits", "redirects", NULL};
#define MAX_DAYS 366

/* YYYY-MM-DD, a day that exists (strptime takes "2026-02-30" and timegm
 * makes it March 2nd: the date must come back as it was written). */
static bool parse_day(const char *s, long long *day)
{
    struct tm tm = {0};
    const char *end = s && strlen(s) == 10 ? strptime(s, "%Y-%m-%d", &tm) : NULL;
    if (!end || *end)
        return false;
    int y = tm.tm_year, m = tm.tm_mon, d = tm.tm_mday;
    time_t t = timegm(&tm);
    struct tm back;
    if (!gmtime_r(&t, &back) || back.tm_year != y || back.tm_mon != m || back.tm_mday != d)
        return false;
    *day = (long long)t / 86400;
    return true;
}

static void day_text(long long day, char out[16])
{
    time_t t = (time_t)(day * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 16, "%Y-%m-%d", &tm);
}

static void ms_text(long long ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%03lldZ", ms % 1000);
}

static int split_tabs(char *s, char **parts, int max)
{
    int n = 0;
    while (n < max) {
        parts[n++] = s;
        char *t = strchr(s, '\t');
        if (!t)
            break;
        *t = 0;
        s = t + 1;
    }
    return n;
}

/* Usage rows between two days (inclusive), of one CSP (NULL: all),
 * grouped by the dims whose bit is set in mask. NULL: the store is away. */
static json_t *usage_rows(ucdn *u, long long from, long long to, const char *csp, unsigned mask)
{
    json_t *groups = json_object(), *rows = json_array();
    for (long long d = from; d <= to; d++) {
        char day[16], k[300];
        day_text(d, day);
        key(u, k, sizeof k, "agg:%s", day);
        store_reply *r = store_cmd(u->store, "HGETALL %s", k);
        if (!r) {
            json_decref(groups);
            json_decref(rows);
            return NULL;
        }
        for (size_t i = 0; store_reply_is(r, STORE_ARRAY) && i + 1 < store_reply_count(r); i += 2) {
            char f[1200], *p[5];
            snprintf(f, sizeof f, "%s", store_reply_at_str(r, i, NULL));
            if (split_tabs(f, p, 5) != 5 || (csp && strcmp(p[0], csp) != 0))
                continue;
            const char *vals[5] = {day, p[0], p[1], p[2], p[3]};
            char g[1400] = "";
            size_t gl = 0;
            for (int dmi = 0; DIMS[dmi]; dmi++)
                if (mask & (1u << dmi))
                    gl += (size_t)snprintf(g + gl, sizeof g - gl < 2 ? 0 : sizeof g - gl, "%s\t", vals[dmi]);
            json_t *row = json_object_get(groups, g);
            if (!row) {
                row = json_object();
                for (int dmi = 0; DIMS[dmi]; dmi++)
                    if (mask & (1u << dmi))
                        json_object_set_new(row, DIMS[dmi], json_string(vals[dmi]));
                for (int m = 0; METRICS[m]; m++)
                    json_object_set_new(row, METRICS[m], json_integer(0));
                json_object_set_new(groups, g, row);
                json_array_append(rows, row);
            }
            add(row, p[4], atoll(store_reply_at_str(r, i + 1, NULL)));
        }
        store_reply_free(r);
    }
    json_decref(groups);
    return rows;
}

static json_t *hash_of(ucdn *u, const char *fmt, const char *day, bool zset, bool *down)
{
    char k[300];
    key(u, k, sizeof k, fmt, day);
    store_reply *r = zset ? store_cmd(u->store, "ZRANGE %s 0 -1 WITHSCORES", k) : store_cmd(u->store, "HGETALL %s", k);
    json_t *o = json_object();
    if (!r)
        *down = true;
    for (size_t i = 0; r && store_reply_is(r, STORE_ARRAY) && i + 1 < store_reply_count(r); i += 2)
        json_object_set_new(o, store_reply_at_str(r, i, NULL), json_string(store_reply_at_str(r, i + 1, NULL)));
    store_reply_free(r);
    return o;
}

/* Per-session summaries: start, end, chunks, bytes, representations. */
static json_t *session_rows(ucdn *u, long long from, long long to, const char *csp)
{
    json_t *rows = json_array();
    bool down = false;
    for (long long d = from; d <= to && !down; d++) {
        char day[16];
        day_text(d, day);
        json_t *sess = hash_of(u, "sess:%s", day, false, &down), *start = hash_of(u, "sstart:%s", day, true, &down),
               *end = hash_of(u, "send:%s", day, true, &down), *rep = hash_of(u, "srep:%s", day, false, &down);
        const char *member;
        json_t *sv;
        json_object_foreach(start, member, sv)
        {
            char f[700];
            snprintf(f, sizeof f, "%s\tcsp", member);
            const char *owner = json_string_value(json_object_get(sess, f));
            if (csp && (!owner || strcmp(owner, csp) != 0))
                continue;
            char m[700], *p[2];
            snprintf(m, sizeof m, "%s", member);
            if (split_tabs(m, p, 2) != 2)
                continue;
            char ts[40], te[40];
            ms_text(atoll(json_string_value(sv)), ts, sizeof ts);
            ms_text(atoll(json_string_value(json_object_get(end, member)) ?: "0"), te, sizeof te);
            snprintf(f, sizeof f, "%s\tccid", member);
            const char *ccid = json_string_value(json_object_get(sess, f));
            snprintf(f, sizeof f, "%s\tchunks", member);
            long long chunks = atoll(json_string_value(json_object_get(sess, f)) ?: "0");
            snprintf(f, sizeof f, "%s\tbytes", member);
            long long bytes = atoll(json_string_value(json_object_get(sess, f)) ?: "0");
            json_t *reps = json_array();
            const char *rk;
            json_t *rv;
            size_t ml = strlen(member);
            json_object_foreach(rep, rk, rv)
            if (strncmp(rk, member, ml) == 0 && rk[ml] == '\t')
                json_array_append_new(reps, json_string(rk + ml + 1));
            json_array_append_new(rows, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:o}", "day", day,
                                                  "dcdn", p[0], "session", p[1], "csp", owner ? owner : "-",
                                                  "ccid", ccid ? ccid : "-", "start", ts, "end", te, "chunks",
                                                  (json_int_t)chunks, "bytes", (json_int_t)bytes,
                                                  "representations", reps));
        }
        json_decref(sess);
        json_decref(start);
        json_decref(end);
        json_decref(rep);
    }
    if (down) {
        json_decref(rows);
        return NULL;
    }
    return rows;
}

static void csv_cell(buf *b, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        buf_adds(b, s);
        return;
    }
    buf_add(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            buf_add(b, "\"", 1);
        buf_add(b, p, 1);
    }
    buf_add(b, "\"", 1);
}

static void billing(http_req *r, ucdn *u, const char *csp)
{
    long long from, to;
    const char *fs = http_query_arg(r, "from"), *ts = http_query_arg(r, "to");
    if (!parse_day(fs, &from) || !parse_day(ts, &to) || to < from || to - from >= MAX_DAYS) {
        http_reply_problem(r, 400, "Bad Request",
                           "from and to are days (YYYY-MM-DD, UTC, inclusive), to not before from, at most 366 days",
                           NULL);
        return;
    }
    const char *gb = http_query_arg(r, "group-by");
    unsigned mask = 0;
    bool sessions = false;
    char g[200];
    snprintf(g, sizeof g, "%s", gb && *gb ? gb : "day");
    for (char *save = NULL, *t = strtok_r(g, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int i = 0;
        while (DIMS[i] && strcmp(DIMS[i], t) != 0)
            i++;
        if (DIMS[i])
            mask |= 1u << i;
        else if (strcmp(t, "session") == 0)
            sessions = true;
        else {
            http_reply_problem(r, 400, "Bad Request",
                               "group-by is a comma-separated list of day, csp, host, ccid, dcdn; or session", NULL);
            return;
        }
    }
    if (sessions && mask) {
        http_reply_problem(r, 400, "Bad Request", "group-by=session stands alone (each row is one session)", NULL);
        return;
    }
    const char *fmt = http_query_arg(r, "format"), *accept = http_header(r, "Accept");
    bool csv = fmt ? strcmp(fmt, "csv") == 0 : accept && strstr(accept, "text/csv") != NULL;
    if (fmt && !csv && strcmp(fmt, "json") != 0) {
        http_reply_problem(r, 400, "Bad Request", "format is json or csv", NULL);
        return;
    }
    json_t *rows = sessions ? session_rows(u, from, to, csp) : usage_rows(u, from, to, csp, mask);
    if (!rows) {
        csp_reply_down(r);
        return;
    }
    if (!csv) {
        json_t *gba = json_array();
        for (int i = 0; DIMS[i]; i++)
            if (mask & (1u << i))
                json_array_append_new(gba, json_string(DIMS[i]));
        if (sessions)
            json_array_append_new(gba, json_string("session"));
        http_reply_json(r, 200, NULL,
                        json_pack("{s:s, s:s, s:o, s:o}", "from", fs, "to", ts, "group_by", gba, "rows", rows));
        return;
    }
    static const char *const SESS_COLS[] = {"day",   "dcdn", "session", "csp",   "ccid",
                                            "start", "end",  "chunks",  "bytes", "representations", NULL};
    const char *cols[16];
    size_t nc = 0;
    if (sessions)
        for (; SESS_COLS[nc]; nc++)
            cols[nc] = SESS_COLS[nc];
    else {
        for (int i = 0; DIMS[i]; i++)
            if (mask & (1u << i))
                cols[nc++] = DIMS[i];
        for (int m = 0; METRICS[m]; m++)
            cols[nc++] = METRICS[m];
    }
    buf b;
    buf_init(&b, 4096, 0);
    for (size_t c = 0; c < nc; c++) {
        if (c)
            buf_add(&b, ",", 1);
        buf_adds(&b, cols[c]);
    }
    buf_add(&b, "\r\n", 2);
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        for (size_t c = 0; c < nc; c++) {
            if (c)
                buf_add(&b, ",", 1);
            json_t *v = json_object_get(row, cols[c]);
            char num[32];
            if (json_is_integer(v)) {
                snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
                buf_adds(&b, num);
            } else if (json_is_array(v)) {
                buf j;
                buf_init(&j, 64, 0);
                for (size_t k = 0; k < json_array_size(v); k++) {
                    if (k)
                        buf_add(&j, " ", 1);
                    buf_adds(&j, json_string_value(json_array_get(v, k)));
                }
                csv_cell(&b, j.data ? j.data : "");
                buf_free(&j);
            } else
                csv_cell(&b, json_string_value(v) ? json_string_value(v) : "");
        }
        buf_add(&b, "\r\n", 2);
    }
    json_decref(rows);
    http_reply(r, 200, "text/csv; charset=utf-8; header=present", b.data, b.len);
    buf_free(&b);
}

static void csp_billing(http_req *r, void *ctx) { billing(r, ctx, http_identity(r)); }

static void op_billing(http_req *r, void *ctx)
{
    const char *csp = http_query_arg(r, "csp");
    billing(r, ctx, csp && *csp ? csp : NULL);
}

json_t *collector_usage_day(ucdn *u, long long day)
{
    return usage_rows(u, day, day, NULL, 1u << 3 | 1u << 4); /* ccid, dcdn */
}

json_t *collector_state(ucdn *u)
{
    json_t *peers = json_array();
    char k[300];
    for (size_t i = 0; i < u->n_peers; i++) {
        route_peer *p = &u->peers[i];
        if (!p->li_feed_url)
            continue;
        bool down = false;
        json_t *h = hash_of(u, "peer:%s", p->id, false, &down);
        if (down) {
            json_decref(h);
            json_decref(peers);
            return NULL;
        }
        json_t *o = json_pack("{s:s, s:s}", "dcdn", p->id, "feed", p->li_feed_url);
        static const char *const nums[] = {"files", "records", "quarantined", "last_poll_ms", NULL};
        for (int n = 0; nums[n]; n++)
            json_object_set_new(o, nums[n], json_integer(atoll(json_string_value(json_object_get(h, nums[n])) ?: "0")));
        const char *le = json_string_value(json_object_get(h, "last_error"));
        json_object_set_new(o, "last_error", le && *le ? json_string(le) : json_null());
        key(u, k, sizeof k, "retry:%s", p->id);
        store_reply *rr = store_cmd(u->store, "HLEN %s", k);
        json_object_set_new(o, "retrying", json_integer(rr && store_reply_is(rr, STORE_INT) ? store_reply_int(rr) : 0));
        store_reply_free(rr);
        json_decref(h);
        json_array_append_new(peers, o);
    }
    bool down = false;
    json_t *q = hash_of(u, "quarantine", "", false, &down), *qa = json_array();
    const char *name;
    json_t *v;
    json_object_foreach(q, name, v)
    {
        jerr e = {0};
        json_t *j = jparse(json_string_value(v), strlen(json_string_value(v)), 4096, &e);
        if (j)
            json_array_append_new(qa, j);
    }
    json_decref(q);
    if (down) {
        json_decref(peers);
        json_decref(qa);
        return NULL;
    }
    return json_pack("{s:o, s:o}", "peers", peers, "quarantine", qa);
}

/* GET /v1/logs: each peer's collection state, and the quarantine. */
static void op_logs(http_req *r, void *ctx)
{
    json_t *st = collector_state(ctx);
    if (!st) {
        csp_reply_down(r);
        return;
    }
    http_reply_json(r, 200, NULL, st);
}

void collector_csp_routes(ucdn *u, http_routes *out)
{
    http_routes_add(out, (http_route){"GET", "/csp/v1/billing", csp_billing, u, false});
}

void collector_op_routes(ucdn *u, http_routes *out)
{
    http_routes_add(out, (http_route){"GET", "/v1/billing", op_billing, u, false});
    http_routes_add(out, (http_route){"GET", "/v1/logs", op_logs, u, false});
}

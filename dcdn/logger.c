/* CDNI logging producer (RFC 7937) and its feed.
 *
 * One stream per upstream CDN: every delivery of that upstream's content,
 * and every redirect the router answers for it, becomes one
 * cdni_http_request_v1 record (the fields the upstream asked
 * for: upstreams[].log_fields), copied at once into a journal file mapped in
 * memory (common/journal), <dir>/<upstream>/journal/<uuid>.log, that starts
 * with the file's directives. A record that was copied survives a crash of
 * the process (kill -9): it is in the page cache; no system call per record.
 *
 * Sealing (interfaces/logging_file), by the logger thread when a journal
 * is rotate_s old, or by the writer when the next record would not fit in
 * rotate_bytes, and at shutdown: the #SHA256-hash line is appended,
 * the whole is gzip'd to files/<uuid>.log.gz.tmp, fsync'd, renamed, the
 * directory fsync'd, and only then is the journal removed. At start, any
 * journal left behind is sealed the same way (a partial last line is cut;
 * a journal whose file already exists is only removed), so every written
 * record ends up in exactly one published file. Empty journals are never
 * published. Published files older than retention_s are deleted.
 *
 * Feed (peer listener, the upstream's own bearer token): GET /li/v1/feed
 * is an Atom document listing that upstream's files (RFC 7937 §4.1), and
 * GET /li/v1/files/{uuid}.log.gz serves one, gzip'd. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/idle_ids.h"
#include "common/ticker.h"
#include "common/log.h"
#include "dcdn/dcdn.h"
#include "interfaces/logging.h"
#include "interfaces/li_feed.h"
#include "interfaces/logging_file.h"
#include "signing/uri_signing.h"

typedef struct {
    pthread_mutex_t mu;
    upstream *up;
    li_fields fields;
    li_writer w; /* formatting (its hash is computed at sealing) */
    buf line;
    journal j; /* j.fd < 0: none open */
    char uuid[40], dir[400], journal[480];
    long long opened_ms;
    size_t records;
    char (*full)[40]; /* journals the writer closed full, for the thread to seal */
    size_t n_full, cap_full;
} stream;

struct logger {
    dcdn *d;
    stream *s;
    size_t n;
    ticker *tick;
    long long last_retire;
    metric_cell *m_records, *m_files, *m_write_fail;
};

static void new_uuid(char out[40])
{
    unsigned char b[16];
    RAND_bytes(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
             b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* A new journal with the file's directives; st->mu held (or not yet shared). */
static bool open_journal(logger *lg, stream *st)
{
    new_uuid(st->uuid);
    snprintf(st->journal, sizeof st->journal, "%s/journal/%s.log", st->dir, st->uuid);
    if (!journal_create(&st->j, st->journal, (size_t)lg->d->log_rotate_bytes)) {
        log_kv(LOG_ERROR, "cannot open a log journal", "path", st->journal, "reason", strerror(errno), NULL);
        st->j.fd = -1;
        return false;
    }
    char urn[64];
    snprintf(urn, sizeof urn, "urn:uuid:%s", st->uuid);
    buf_truncate(&st->line, 0);
    li_write_head(&st->w, &st->line, urn, lg->d->log_origin, &st->fields);
    bool ok = buf_ok(&st->line) && journal_append(&st->j, st->line.data, st->line.len);
    st->opened_ms = wall_ms();
    st->records = 0;
    return ok;
}

/* Seals one journal into files/<uuid>.log.gz and removes it; j: the
 * journal still open with its records counted, or NULL to open the file.
 * false leaves it. */
static bool seal(logger *lg, const char *dir, const char *path, const char *uuid, journal *j, size_t records)
{
    char final[512];
    snprintf(final, sizeof final, "%s/files/%s.log.gz", dir, uuid);
    journal tmp;
    struct stat sb;
    if (stat(final, &sb) == 0) { /* sealed before a crash, journal not yet removed */
        if (j)
            journal_close(j);
        unlink(path);
        return true;
    }
    if (j && !journal_data(j) && j->len) { /* write(2) mode: map it now */
        journal_close(j);
        j = NULL;
    }
    if (!j) {
        records = 0; /* counted by li_seal */
        if (!journal_reopen(&tmp, path)) {
            log_kv(LOG_ERROR, "cannot read a log journal; kept for the next try", "journal", path, NULL);
            return false;
        }
        j = &tmp;
    }
    const char *why = NULL;
    bool ok = li_seal(j, final, lg->d->log_level, &records, &why);
    journal_close(j);
    if (!ok) {
        log_kv(LOG_ERROR, "cannot seal a log journal; kept for the next try", "journal", path, "reason", why, NULL);
        return false;
    }
    unlink(path);
    if (records) {
        metric_add(lg->m_files, 1);
        mstats_add(lg->d->stats, "log_files", 1);
        mstats_add(lg->d->stats, "log_records", records);
        char n[24];
        snprintf(n, sizeof n, "%zu", records);
        log_kv(LOG_INFO, "CDNI logging file published", "file", final, "records", n, NULL);
    }
    return true;
}

/* Journals a previous run left behind. */
static void recover(logger *lg, stream *st)
{
    char jd[480];
    snprintf(jd, sizeof jd, "%s/journal", st->dir);
    DIR *dh = opendir(jd);
    if (!dh)
        return;
    struct dirent *de;
    while ((de = readdir(dh))) {
        size_t nl = strlen(de->d_name);
        if (nl != 36 + 4 || strcmp(de->d_name + 36, ".log") != 0)
            continue;
        char uuid[40], path[540];
        memcpy(uuid, de->d_name, 36);
        uuid[36] = 0;
        snprintf(path, sizeof path, "%s/%.40s", jd, de->d_name); /* 40 bytes, checked above */
        seal(lg, st->dir, path, uuid, NULL, 0);
    }
    closedir(dh);
}

static void retire_old(logger *lg, stream *st)
{
    char fd_[480];
    snprintf(fd_, sizeof fd_, "%s/files", st->dir);
    DIR *dh = opendir(fd_);
    if (!dh)
        return;
    struct dirent *de;
    long long now = wall_ms() / 1000;
    while ((de = readdir(dh))) {
        char p[800];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%.255s", fd_, de->d_name);
        if (de->d_name[0] != '.' && stat(p, &sb) == 0 && now - (long long)sb.st_mtime > lg->d->log_retention_s)
            unlink(p);
    }
    closedir(dh);
}

/* Rotates a stream's journal if due; the old one is sealed outside the lock. */
static void rotate(logger *lg, stream *st, bool force)
{
    pthread_mutex_lock(&st->mu);
    bool due = st->records && (force || wall_ms() - st->opened_ms >= (long long)lg->d->log_rotate_s * 1000);
    char path[480], uuid[40];
    journal old;
    size_t records = st->records;
    if (due) {
        old = st->j;
        snprintf(path, sizeof path, "%s", st->journal);
        snprintf(uuid, sizeof uuid, "%s", st->uuid);
        st->j.fd = -1;
        if (!force)
            open_journal(lg, st); /* on failure j.fd stays -1: retried by the thread */
    }
    pthread_mutex_unlock(&st->mu);
    if (due)
        seal(lg, st->dir, path, uuid, &old, records);
}

/* Seals the journals the writer closed full. */
static void seal_full(logger *lg, stream *st)
{
    pthread_mutex_lock(&st->mu);
    char(*full)[40] = st->full;
    size_t n_full = st->n_full;
    st->full = NULL;
    st->n_full = st->cap_full = 0;
    pthread_mutex_unlock(&st->mu);
    for (size_t k = 0; k < n_full; k++) {
        char path[540];
        snprintf(path, sizeof path, "%s/journal/%s.log", st->dir, full[k]);
        seal(lg, st->dir, path, full[k], NULL, 0);
    }
    free(full);
}

/* Every 250 ms: journals reopened, sealed when full or due; once a
 * minute, files past retention deleted. */
static void logger_tick(ticker *t, void *arg)
{
    (void)t;
    logger *lg = arg;
    bool retire = wall_ms() - lg->last_retire > 60000;
    for (size_t i = 0; i < lg->n; i++) {
        stream *st = &lg->s[i];
        pthread_mutex_lock(&st->mu);
        if (st->j.fd < 0) /* a journal that could not be opened: try again */
            open_journal(lg, st);
        pthread_mutex_unlock(&st->mu);
        seal_full(lg, st);
        rotate(lg, st, false);
        if (retire)
            retire_old(lg, st);
    }
    if (retire)
        lg->last_retire = wall_ms();
}

static const char *const DEFAULT_FIELDS[] = {"date", "time", "time-taken", "c-groupid", "s-hostname", "s-port",
                                             "cs-method", "cs-uri", "u-uri", "protocol", "sc-status",
                                             "sc-total-bytes", "sc-entity-bytes", "cs(User-Agent)", "s-ccid",
                                             "s-sid", "s-cached", "s-uri-signing", NULL};

bool logger_start(dcdn *d)
{
    if (!d->log_dir)
        return true;
    logger *lg = calloc(1, sizeof *lg);
    lg->d = d;
    lg->n = d->n_ups;
    lg->s = calloc(lg->n, sizeof *lg->s);
    lg->m_records = metrics_series(d->metrics, "cdni_log_records_total", "", "counter", "CDNI log records written");
    lg->m_files = metrics_series(d->metrics, "cdni_log_files_published_total", "", "counter", "CDNI logging files published");
    lg->m_write_fail = metrics_series(d->metrics, "cdni_log_write_failures_total", "", "counter",
                                      "CDNI log records that could not be written");
    d->sessions = idle_ids_new(1 << 18, d->log_session_idle_s * 1000);
    mkdir(d->log_dir, 0700);
    for (size_t i = 0; i < lg->n; i++) {
        stream *st = &lg->s[i];
        st->up = &d->ups[i];
        pthread_mutex_init(&st->mu, NULL);
        const char *why = NULL;
        const char *const *names = st->up->log_fields[0] ? st->up->log_fields : DEFAULT_FIELDS;
        if (!li_fields_from_names(names, &st->fields, &why) || !li_writer_init(&st->w)) {
            log_kv(LOG_ERROR, "bad log fields", "upstream", st->up->id, "reason", why ? why : "", NULL);
            return false;
        }
        buf_init(&st->line, 4096, 0);
        snprintf(st->dir, sizeof st->dir, "%s/%s", d->log_dir, st->up->id);
        char p[480];
        mkdir(st->dir, 0700);
        snprintf(p, sizeof p, "%s/journal", st->dir);
        mkdir(p, 0700);
        snprintf(p, sizeof p, "%s/files", st->dir);
        mkdir(p, 0700);
        recover(lg, st);
        open_journal(lg, st);
    }
    d->logger = lg;
    lg->tick = ticker_start(logger_tick, lg, 250);
    return lg->tick != NULL;
}

void logger_stop(dcdn *d)
{
    logger *lg = d->logger;
    if (!lg)
        return;
    ticker_stop(lg->tick);
    for (size_t i = 0; i < lg->n; i++) {
        stream *st = &lg->s[i];
        if (st->j.fd >= 0) {
            if (st->records)
                rotate(lg, st, true); /* seals it */
            else {
                journal_close(&st->j);
                unlink(st->journal);
            }
        }
        seal_full(lg, st);
        li_writer_free(&st->w);
        buf_free(&st->line);
    }
    free(lg->s);
    free(lg);
    idle_ids_free(d->sessions);
    d->sessions = NULL;
    d->logger = NULL;
}

static const char *rec_header(void *ud, bool response, const char *name)
{
    const delivery_record *r = ud;
    return !response && strcasecmp(name, "User-Agent") == 0 && r->ua[0] ? r->ua : NULL;
}

void logger_record(dcdn *d, const delivery_record *r)
{
    logger *lg = d->logger;
    if (!lg || r->upstream < 0 || (size_t)r->upstream >= lg->n)
        return;
    stream *st = &lg->s[r->upstream];
    char group[64] = "-"; /* c-groupid: the client's /24 (IPv4) or /48 (IPv6), not its address */
    if (r->client[0]) {
        ipt_addr g = r->client_addr;
        ipt_mask(&g, g.v6 ? 48 : 24);
        ipt_format_prefix(&g, g.v6 ? 48 : 24, group, sizeof group);
    }
    char cs_uri[2400];
    snprintf(cs_uri, sizeof cs_uri, "http://%s%s", r->host, r->uri);
    li_record lr = {.end_ms = r->end_ms, .taken_us = (r->end_ms - r->start_ms) * 1000, .c_groupid = group,
                    .s_hostname = d->self_id, .s_port = r->s_port, .cs_method = r->method, .cs_uri = cs_uri,
                    .u_uri = r->u_uri[0] ? r->u_uri : cs_uri, .protocol = "HTTP/1.1", .sc_status = r->status,
                    .sc_total_bytes = -1, /* the head's bytes are not known here: "-" as §3.4.1 allows */
                    .sc_entity_bytes = (long long)r->bytes, .s_ccid = r->ccid, .s_sid = r->sid,
                    .s_cached = r->redirect ? -1 : delivery_from_cache(r->cache) ? 1 : 0, .s_uri_signing = r->us_code,
                    .s_uri_signing_deny_reason = r->us_reason[0] ? r->us_reason : NULL, .header = rec_header,
                    .header_ud = (void *)r};
    pthread_mutex_lock(&st->mu);
    buf_truncate(&st->line, 0);
    bool ok = st->j.fd >= 0 && li_write_record(&st->w, &st->line, &st->fields, &lr);
    if (ok && !(ok = journal_append(&st->j, st->line.data, st->line.len)) && st->records) {
        /* full: the thread seals it (a crash before: the next start does);
         * the record starts the next journal */
        journal_close(&st->j);
        if (st->n_full == st->cap_full) {
            size_t cap = st->cap_full ? st->cap_full * 2 : 4;
            void *nf = realloc(st->full, cap * sizeof *st->full);
            if (nf) {
                st->full = nf;
                st->cap_full = cap;
            }
        }
        if (st->n_full < st->cap_full)
            memcpy(st->full[st->n_full++], st->uuid, sizeof st->uuid);
        ok = open_journal(lg, st) && journal_append(&st->j, st->line.data, st->line.len);
    }
    if (ok)
        st->records++;
    pthread_mutex_unlock(&st->mu);
    metric_add(ok ? lg->m_records : lg->m_write_fail, 1);
}

/* --- delivery records ---------------------------------------------------------------- */

void delivery_session(dcdn *d, delivery_record *rec, const hop_result *hr)
{
    rec->sid[0] = 0;
    if (hr && hr->method != HOP_OPEN && hr->claims) {
        hop_session_id(hr->claims, rec->sid, sizeof rec->sid);
        if (rec->sid[0])
            return;
    }
    if (!d->sessions || !rec->client[0])
        return;
    /* key: the client's address, then the collection */
    char key[16 + 1 + sizeof rec->ccid];
    memcpy(key, rec->client_addr.bytes, 16);
    key[16] = rec->client_addr.v6 ? '6' : '4';
    const char *coll = rec->ccid, *hs = strstr(rec->u_uri, "://");
    size_t cl = strlen(coll);
    if (!cl && hs) { /* no collection: the content's host */
        coll = hs + 3;
        cl = strcspn(coll, "/");
        cl = cl < sizeof rec->ccid ? cl : sizeof rec->ccid;
    } else if (!cl) {
        coll = rec->host;
        cl = strlen(coll);
    }
    memcpy(key + 17, coll, cl);
    uint64_t id = idle_id(d->sessions, key, 17 + cl, rec->start_ms);
    snprintf(rec->sid, sizeof rec->sid, "%016llx", (unsigned long long)id);
}

#define REC_POOL 256

bool delivery_from_cache(const char *outcome)
{
    return !strcmp(outcome, "HIT") || !strcmp(outcome, "REVALIDATED") || !strcmp(outcome, "STALE");
}

static void delivery_done(void *ud, const http_done_info *info)
{
    delivery_record *rec = ud;
    dcdn *d = rec->d;
    rec->end_ms = wall_ms();
    rec->status = info->status;
    rec->bytes = info->body_bytes;
    rec->completed = info->completed;
    if (d->logger)
        logger_record(d, rec);
    if (d->on_delivery)
        d->on_delivery(d->on_delivery_ud, rec);
    if (rec->redirect) {
        mstats_add(d->stats, "redirect", 1);
    } else if (rec->cache[0]) {
        mstats_add2(d->stats, "cache", rec->cache, 1);
        mstats_add2(d->stats, "bytes", rec->ccid[0] ? rec->ccid : "-", rec->bytes);
    }
    pthread_mutex_lock(&d->rec_mu);
    if (d->n_rec_free < REC_POOL) {
        d->rec_free[d->n_rec_free++] = rec;
        rec = NULL;
    }
    pthread_mutex_unlock(&d->rec_mu);
    free(rec);
}

delivery_record *delivery_record_begin(dcdn *d, http_req *r, int port)
{
    delivery_record *rec = NULL;
    pthread_mutex_lock(&d->rec_mu);
    if (!d->rec_free)
        d->rec_free = calloc(REC_POOL, sizeof *d->rec_free);
    if (d->n_rec_free)
        rec = d->rec_free[--d->n_rec_free];
    pthread_mutex_unlock(&d->rec_mu);
    if (!rec && !(rec = malloc(sizeof *rec)))
        return NULL;
    /* no memset of the whole record (5 KB): every field is set here or
     * written before it is read */
    rec->d = d;
    rec->start_ms = wall_ms();
    rec->end_ms = 0;
    rec->status = 0;
    rec->bytes = 0;
    rec->completed = rec->redirect = false;
    rec->upstream = -1;
    rec->us_code = 0;
    rec->s_port = port;
    rec->client[0] = rec->uri[0] = rec->cache[0] = rec->ccid[0] = rec->sid[0] = rec->auth[0] = 0;
    rec->us_reason[0] = rec->u_uri[0] = rec->ua[0] = 0;
    memset(&rec->client_addr, 0, sizeof rec->client_addr);
    unsigned char ip[16];
    bool v6 = false;
    if (http_peer_addr(r, ip, &v6)) {
        memcpy(rec->client_addr.bytes, ip, 16);
        rec->client_addr.v6 = v6;
        inet_ntop(v6 ? AF_INET6 : AF_INET, ip, rec->client, sizeof rec->client);
    }
    const char *host = http_header(r, "Host"), *ua = http_header(r, "User-Agent");
    snprintf(rec->method, sizeof rec->method, "%s", http_method(r));
    snprintf(rec->host, sizeof rec->host, "%s", host ? host : "");
    snprintf(rec->ua, sizeof rec->ua, "%s", ua ? ua : "");
    http_on_done(r, delivery_done, rec);
    return rec;
}

void delivery_record_uris(delivery_record *rec, const char *uri, const char *content_host, const char *content_target,
                          const char *package)
{
    snprintf(rec->uri, sizeof rec->uri, "%.*s", (int)(sizeof rec->uri - 1), uri);
    us_drop_package(rec->uri, package);
    if (content_host) {
        snprintf(rec->u_uri, sizeof rec->u_uri, "http://%.*s%.*s", 255, content_host, (int)(sizeof rec->u_uri - 270),
                 content_target);
        us_drop_package(rec->u_uri, package);
    }
}

void delivery_records_free(dcdn *d)
{
    for (size_t i = 0; i < d->n_rec_free; i++)
        free(d->rec_free[i]);
    free(d->rec_free);
    d->rec_free = NULL;
    d->n_rec_free = 0;
}

/* --- the feed ---------------------------------------------------------------------- */

static stream *stream_of(dcdn *d, http_req *r)
{
    const char *who = http_identity(r);
    for (size_t i = 0; d->logger && who && i < d->logger->n; i++)
        if (strcmp(d->logger->s[i].up->id, who) == 0)
            return &d->logger->s[i];
    return NULL;
}

typedef struct {
    char name[48];
    long long mtime, size;
} pub_file;

static int by_mtime(const void *a, const void *b)
{
    const pub_file *x = a, *y = b;
    return x->mtime < y->mtime ? -1 : x->mtime > y->mtime ? 1 : strcmp(x->name, y->name);
}


static void hour_name(long long hour, char out[16])
{
    time_t tt = (time_t)(hour * 3600);
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 16, "%Y%m%d%H", &tm);
}

static bool hour_parse(const char *s, long long *hour)
{
    struct tm tm = {0};
    if (!s || strlen(s) != 10 || strspn(s, "0123456789") != 10)
        return false;
    const char *end = strptime(s, "%Y%m%d%H", &tm);
    if (!end || *end)
        return false;
    *hour = (long long)timegm(&tm) / 3600;
    return true;
}

/* One feed document: the subscription document (page < 0: the files sealed
 * this hour) or the archive page of one past hour (RFC 5005 §4: complete,
 * never changing once the hour is over). Files of older hours are reached
 * through prev-archive links, hour by hour with files. */
static void feed_page(http_req *r, dcdn *d, long long page)
{
    stream *st = stream_of(d, r);
    if (!st) {
        http_reply_problem(r, 404, "Not Found", "no CDNI logging for this peer", NULL);
        return;
    }
    long long now_hour = wall_ms() / 1000 / 3600, hour = page < 0 ? now_hour : page;
    if (page >= now_hour) {
        http_reply_problem(r, 404, "Not Found", "no such archive page (the current hour is in /li/v1/feed)", NULL);
        return;
    }
    char fdir[480];
    snprintf(fdir, sizeof fdir, "%s/files", st->dir);
    pub_file *files = NULL;
    size_t n = 0, cap = 0;
    long long prev = -1, next = -1; /* the nearest hours with files either side */
    DIR *dh = opendir(fdir);
    struct dirent *de;
    while (dh && (de = readdir(dh))) {
        size_t nl = strlen(de->d_name);
        if (nl != 36 + 7 || strcmp(de->d_name + 36, ".log.gz") != 0)
            continue;
        char p[740];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s", fdir, de->d_name);
        if (stat(p, &sb) != 0)
            continue;
        long long h = (long long)sb.st_mtime / 3600;
        if (page < 0 && h > hour)
            h = hour; /* a clock step back: still listed */
        if (h < hour) {
            prev = h > prev ? h : prev;
            continue;
        }
        if (h > hour) {
            next = next < 0 || h < next ? h : next;
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            pub_file *nf = realloc(files, cap * sizeof *files);
            if (!nf)
                break;
            files = nf;
        }
        memcpy(files[n].name, de->d_name, nl + 1); /* 43 bytes, checked above */
        files[n].mtime = (long long)sb.st_mtime;
        files[n].size = (long long)sb.st_size;
        n++;
    }
    if (dh)
        closedir(dh);
    if (page >= 0 && !n) {
        free(files);
        http_reply_problem(r, 404, "Not Found", "no files in this hour (or past retention)", NULL);
        return;
    }
    if (n)
        qsort(files, n, sizeof *files, by_mtime);
    char updated[32], id[80], self[128], prev_href[128], next_href[128], hn[16];
    clock_iso8601(n ? files[n - 1].mtime : wall_ms() / 1000, updated);
    snprintf(id, sizeof id, "tag:%s,2026:cdni-logging:%s", d->cdn_id, st->up->id);
    hour_name(hour, hn);
    snprintf(self, sizeof self, "/li/v1/feed/archive/%s", hn);
    li_feed_meta m = {.id = id, .title = "CDNI Logging Feed", .updated = updated,
                      .author = d->log_origin ? d->log_origin : d->cdn_id, .self = page < 0 ? "/li/v1/feed" : self,
                      .current = "/li/v1/feed", .archive = page >= 0};
    if (prev >= 0) {
        hour_name(prev, hn);
        snprintf(prev_href, sizeof prev_href, "/li/v1/feed/archive/%s", hn);
        m.prev_archive = prev_href;
    }
    if (page >= 0) {
        if (next >= 0 && next < now_hour) {
            hour_name(next, hn);
            snprintf(next_href, sizeof next_href, "/li/v1/feed/archive/%s", hn);
        } else
            snprintf(next_href, sizeof next_href, "/li/v1/feed");
        m.next_archive = next_href;
    }
    /* the entries' strings, one block per file */
    typedef struct {
        char uuid[40], href[128], updated[32], title[200], summary[240], sha256[65];
    } texts;
    texts *tx = calloc(n ? n : 1, sizeof *tx);
    li_feed_item *items = calloc(n ? n : 1, sizeof *items);
    for (size_t i = 0; tx && items && i < n; i++) {
        texts *x = &tx[i];
        memcpy(x->uuid, files[i].name, 36);
        x->uuid[36] = 0;
        clock_iso8601(files[i].mtime, x->updated);
        snprintf(x->href, sizeof x->href, "/li/v1/files/%s", files[i].name);
        snprintf(x->title, sizeof x->title, "CDNI Logging File for %s at %s", st->up->id, x->updated);
        snprintf(x->summary, sizeof x->summary, "CDNI logging file %s, %lld bytes (gzip), for %s", x->uuid,
                 files[i].size, st->up->id);
        char fp[740];
        snprintf(fp, sizeof fp, "%s/%s", fdir, files[i].name);
        bool hashed = li_file_hash(fp, x->sha256); /* the file's own #SHA256-hash value */
        items[i] = (li_feed_item){.uuid = x->uuid, .href = x->href, .updated = x->updated, .title = x->title,
                                  .summary = x->summary, .length = files[i].size, .sha256 = hashed ? x->sha256 : NULL};
    }
    size_t len = 0;
    char *doc = tx && items ? li_feed_write(&m, items, n, &len) : NULL;
    free(items);
    free(tx);
    free(files);
    if (!doc) {
        http_reply_problem(r, 503, "Service Unavailable", "the feed cannot be written now (out of memory)", NULL);
        return;
    }
    char cc[40];
    /* an archive page of a past hour only loses files to retention */
    snprintf(cc, sizeof cc, "max-age=%d", page < 0 ? d->log_rotate_s : 3600);
    http_add_header(r, "Cache-Control", cc);
    http_reply_take(r, 200, "application/atom+xml", doc, len);
}

static void feed_get(http_req *r, void *ctx) { feed_page(r, ctx, -1); }

json_t *logger_status(dcdn *d)
{
    json_t *a = json_array();
    logger *lg = d->logger;
    for (size_t i = 0; lg && i < lg->n; i++) {
        stream *st = &lg->s[i];
        char fdir[480], last[40] = "";
        snprintf(fdir, sizeof fdir, "%s/files", st->dir);
        long long files = 0, bytes = 0, last_mtime = 0;
        DIR *dh = opendir(fdir);
        struct dirent *de;
        while (dh && (de = readdir(dh))) {
            size_t nl = strlen(de->d_name);
            char p[740];
            struct stat sb;
            if (nl != 36 + 7 || strcmp(de->d_name + 36, ".log.gz") != 0)
                continue;
            snprintf(p, sizeof p, "%s/%s", fdir, de->d_name);
            if (stat(p, &sb) != 0)
                continue;
            files++;
            bytes += (long long)sb.st_size;
            if ((long long)sb.st_mtime >= last_mtime) {
                last_mtime = (long long)sb.st_mtime;
                snprintf(last, sizeof last, "%.36s", de->d_name);
            }
        }
        if (dh)
            closedir(dh);
        pthread_mutex_lock(&st->mu);
        size_t pending = st->j.fd >= 0 ? st->records : 0;
        pthread_mutex_unlock(&st->mu);
        json_t *o = json_pack("{s:s, s:I, s:I, s:I}", "upstream", st->up->id, "files", (json_int_t)files, "bytes",
                              (json_int_t)bytes, "records_in_journal", (json_int_t)pending);
        if (last[0])
            json_object_set_new(o, "last_file", json_pack("{s:s, s:I}", "uuid", last, "mtime", (json_int_t)last_mtime));
        json_array_append_new(a, o);
    }
    return a;
}

static void archive_get(http_req *r, void *ctx)
{
    long long hour;
    if (!hour_parse(http_param(r, 0), &hour)) {
        http_reply_problem(r, 404, "Not Found", "archive pages are named by hour, UTC: YYYYMMDDHH", NULL);
        return;
    }
    feed_page(r, ctx, hour);
}

static void file_get(http_req *r, void *ctx)
{
    dcdn *d = ctx;
    stream *st = stream_of(d, r);
    const char *name = http_param(r, 0);
    bool ok = st && name && strlen(name) == 36 + 7 && strcmp(name + 36, ".log.gz") == 0;
    for (size_t i = 0; ok && i < 36; i++)
        ok = (name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f') || name[i] == '-';
    char p[740];
    int fd = -1;
    struct stat sb;
    if (ok) {
        snprintf(p, sizeof p, "%s/files/%s", st->dir, name);
        fd = open(p, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0 || fstat(fd, &sb) != 0) {
        if (fd >= 0)
            close(fd);
        http_reply_problem(r, 404, "Not Found", "no such CDNI logging file (or past retention)", NULL);
        return;
    }
    http_add_header(r, "Content-Encoding", "gzip");
    http_add_header(r, "Cache-Control", "max-age=31536000, immutable");
    http_reply_fd(r, 200, "application/cdni; ptype=logging-file", fd, 0, (uint64_t)sb.st_size);
}

void logger_peer_routes(dcdn *d, http_routes *out)
{
    http_routes_add(out, (http_route){"GET", "/li/v1/feed", feed_get, d, false});
    http_routes_add(out, (http_route){"GET", "/li/v1/feed/archive/{hour}", archive_get, d, false});
    http_routes_add(out, (http_route){"GET", "/li/v1/files/{name}", file_get, d, false});
}

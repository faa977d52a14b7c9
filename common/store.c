/* Redis connection with reconnect, and a pub/sub thread. See store.h. */
#include "common/store.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <hiredis/hiredis.h>

#include "common/clock.h"
#include "common/log.h"

/* --- URLs ----------------------------------------------------------------- */
static bool copy_span(char *dst, size_t cap, const char *p, size_t n)
{
    if (n >= cap)
        return false;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return true;
}

/* A decimal in [lo, hi] spanning exactly p[0..n). */
static bool span_int(const char *p, size_t n, long lo, long hi, int *out)
{
    if (n == 0 || n > 9)
        return false;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (p[i] - '0');
    }
    if (v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

/* host:port (host may be [v6]) spanning p[0..n). */
static bool span_hostport(const char *p, size_t n, char *host, size_t hcap, int *port)
{
    const char *colon = NULL;
    for (size_t i = n; i-- > 0;)
        if (p[i] == ':') {
            colon = p + i;
            break;
        }
    if (!colon || colon == p)
        return false;
    const char *h = p;
    size_t hn = (size_t)(colon - p);
    if (h[0] == '[') {
        if (hn < 3 || h[hn - 1] != ']')
            return false;
        h++;
        hn -= 2;
    }
    for (size_t i = 0; i < hn; i++)
        if (h[i] == '/' || h[i] == '@' || h[i] == ',' || h[i] == '?')
            return false;
    return copy_span(host, hcap, h, hn) && span_int(colon + 1, (size_t)(p + n - colon - 1), 1, 65535, port);
}

/* ?key=value&... : db, min_replicas_acked, ack_timeout_ms, sentinel_password. */
static bool parse_query(const char *q, store_url *u)
{
    while (*q) {
        const char *amp = strchr(q, '&'), *end = amp ? amp : q + strlen(q);
        const char *eq = memchr(q, '=', (size_t)(end - q));
        if (!eq)
            return false;
        size_t kn = (size_t)(eq - q), vn = (size_t)(end - eq - 1);
        const char *v = eq + 1;
        if (kn == 2 && !memcmp(q, "db", 2)) {
            if (!span_int(v, vn, 0, 1000000, &u->db))
                return false;
        } else if (kn == 18 && !memcmp(q, "min_replicas_acked", 18)) {
            if (!span_int(v, vn, 0, 64, &u->min_replicas_acked))
                return false;
        } else if (kn == 14 && !memcmp(q, "ack_timeout_ms", 14)) {
            if (!span_int(v, vn, 1, 600000, &u->ack_timeout_ms))
                return false;
        } else if (kn == 17 && !memcmp(q, "sentinel_password", 17)) {
            if (vn == 0 || !copy_span(u->sentinel_password, sizeof u->sentinel_password, v, vn))
                return false;
        } else {
            return false;
        }
        q = amp ? amp + 1 : end;
    }
    return true;
}

bool store_parse_url(const char *url, size_t len, store_url *u)
{
    memset(u, 0, sizeof *u);
    u->min_replicas_acked = -1;
    u->ack_timeout_ms = 1000;
    if (len > 4096 || memchr(url, '\0', len))
        return false;
    char tmp[4097];
    memcpy(tmp, url, len);
    tmp[len] = '\0';
    char *q = strchr(tmp, '?');
    if (q) {
        *q++ = '\0';
        if (!parse_query(q, u))
            return false;
    }
    const char *p;
    if (!strncmp(tmp, "unix://", 7)) {
        p = tmp + 7;
        u->kind = STORE_URL_UNIX;
        return p[0] == '/' && copy_span(u->path, sizeof u->path, p, strlen(p));
    }
    if (!strncmp(tmp, "redis://", 8)) {
        u->kind = STORE_URL_TCP;
        p = tmp + 8;
    } else if (!strncmp(tmp, "redis+sentinel://", 17)) {
        u->kind = STORE_URL_SENTINEL;
        p = tmp + 17;
    } else {
        return false;
    }
    /* [user][:password]@ */
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            if (!copy_span(u->user, sizeof u->user, p, (size_t)(colon - p)) ||
                !copy_span(u->password, sizeof u->password, colon + 1, (size_t)(at - colon - 1)))
                return false;
        } else if (!copy_span(u->password, sizeof u->password, p, (size_t)(at - p))) {
            return false; /* redis://secret@host: the one word is the password */
        }
        if (!u->password[0])
            return false;
        p = at + 1;
    }
    const char *slash = strchr(p, '/');
    size_t hn = slash ? (size_t)(slash - p) : strlen(p);
    if (u->kind == STORE_URL_TCP) {
        if (!span_hostport(p, hn, u->host, sizeof u->host, &u->port))
            return false;
        return !slash || slash[1] == '\0' || span_int(slash + 1, strlen(slash + 1), 0, 1000000, &u->db);
    }
    /* sentinels h:p,h:p/master-name[/db] */
    for (const char *s = p; s < p + hn;) {
        const char *comma = memchr(s, ',', (size_t)(p + hn - s)), *e = comma ? comma : p + hn;
        if (u->nsentinels == STORE_MAX_SENTINELS)
            return false;
        store_hostport *h = &u->sentinels[u->nsentinels++];
        if (!span_hostport(s, (size_t)(e - s), h->host, sizeof h->host, &h->port))
            return false;
        s = comma ? comma + 1 : e;
        if (comma && s == p + hn)
            return false;
    }
    if (!u->nsentinels || !slash)
        return false;
    const char *name = slash + 1, *slash2 = strchr(name, '/');
    size_t nn = slash2 ? (size_t)(slash2 - name) : strlen(name);
    if (nn == 0 || !copy_span(u->master_name, sizeof u->master_name, name, nn))
        return false;
    for (size_t i = 0; i < nn; i++)
        if (name[i] == ' ' || (unsigned char)name[i] < 0x21)
            return false;
    return !slash2 || span_int(slash2 + 1, strlen(slash2 + 1), 0, 1000000, &u->db);
}

/* --- connecting ------------------------------------------------------------ */
static redisContext *dial(const char *host, int port, const char *path, int timeout_ms)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = path ? redisConnectUnixWithTimeout(path, tv) : redisConnectWithTimeout(host, port, tv);
    if (c && c->err) {
        redisFree(c);
        c = NULL;
    }
    return c;
}

/* AUTH [user] password, then SELECT db; false (and c freed) on any refusal. */
static bool login(redisContext **cp, const char *user, const char *password, int db)
{
    redisContext *c = *cp;
    redisReply *r = NULL;
    bool ok = true;
    if (password && password[0]) {
        r = user && user[0] ? redisCommand(c, "AUTH %s %s", user, password) : redisCommand(c, "AUTH %s", password);
        ok = r && r->type != REDIS_REPLY_ERROR;
        if (r)
            freeReplyObject(r);
    }
    if (ok && db) {
        r = redisCommand(c, "SELECT %d", db);
        ok = r && r->type != REDIS_REPLY_ERROR;
        if (r)
            freeReplyObject(r);
    }
    if (!ok) {
        redisFree(c);
        *cp = NULL;
    }
    return ok;
}

/* The master a set of sentinels names, as every store and subscriber of
 * this process with that sentinel URL sees it; one per distinct URL, for
 * the life of the process. A watcher thread keeps it current from the
 * sentinels' +switch-master events; a connection that finds the master
 * unreachable or no longer a master asks the sentinels again. The epoch
 * moves on each change, and every connection made under an older epoch is
 * dropped at its next use. */
typedef struct sentinel_set {
    store_url u; /* the sentinels, the master's name and credentials */
    pthread_mutex_t mu;
    char host[256]; /* the master now; "" until a sentinel has named one */
    int port;
    long long changed_ms; /* wall clock of the last change */
    unsigned long switches;
    size_t next; /* the sentinel to ask first */
    atomic_uint epoch;
    pthread_t th;
} sentinel_set;

static pthread_mutex_t sets_mu = PTHREAD_MUTEX_INITIALIZER;
static sentinel_set *sets[4];
static size_t nsets;

static void set_master(sentinel_set *ss, const char *host, int port, const char *why)
{
    pthread_mutex_lock(&ss->mu);
    bool moved = strcmp(ss->host, host) != 0 || ss->port != port;
    char was[300];
    snprintf(was, sizeof was, "%s:%d", ss->host[0] ? ss->host : "-", ss->port);
    if (moved) {
        snprintf(ss->host, sizeof ss->host, "%s", host);
        ss->port = port;
        ss->changed_ms = wall_ms();
        if (was[0] != '-')
            ss->switches++;
        atomic_fetch_add(&ss->epoch, 1);
    }
    pthread_mutex_unlock(&ss->mu);
    if (moved) {
        char now[300];
        snprintf(now, sizeof now, "%s:%d", host, port);
        log_kv(was[0] == '-' ? LOG_INFO : LOG_WARN, "redis master", "name", ss->u.master_name, "master", now,
               "was", was, "by", why, NULL);
    }
}

static redisContext *dial_sentinel(const sentinel_set *ss, size_t i)
{
    const store_hostport *h = &ss->u.sentinels[i];
    redisContext *c = dial(h->host, h->port, NULL, 500);
    if (c)
        login(&c, NULL, ss->u.sentinel_password, 0);
    if (c) {
        struct timeval rw = {1, 0};
        redisSetTimeout(c, rw);
    }
    return c;
}

/* Asks the sentinels, each in turn, for the master; true when one named it. */
static bool ask_sentinels(sentinel_set *ss)
{
    for (size_t k = 0; k < ss->u.nsentinels; k++) {
        pthread_mutex_lock(&ss->mu);
        size_t i = (ss->next + k) % ss->u.nsentinels;
        pthread_mutex_unlock(&ss->mu);
        redisContext *c = dial_sentinel(ss, i);
        if (!c)
            continue;
        redisReply *r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", ss->u.master_name);
        bool ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                  r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING;
        int port = 0;
        if (ok)
            ok = span_int(r->element[1]->str, r->element[1]->len, 1, 65535, &port) &&
                 r->element[0]->len < sizeof ss->host;
        if (ok) {
            set_master(ss, r->element[0]->str, port, "sentinel");
            pthread_mutex_lock(&ss->mu);
            ss->next = i;
            pthread_mutex_unlock(&ss->mu);
        }
        if (r)
            freeReplyObject(r);
        redisFree(c);
        if (ok)
            return true;
    }
    return false;
}

/* "+switch-master <name> <old-ip> <old-port> <new-ip> <new-port>" */
static void on_switch(sentinel_set *ss, const char *msg)
{
    char name[256], oh[256], nh[256];
    int op, np;
    if (sscanf(msg, "%255s %255s %d %255s %d", name, oh, &op, nh, &np) == 5 &&
        strcmp(name, ss->u.master_name) == 0 && np > 0 && np <= 65535)
        set_master(ss, nh, np, "+switch-master");
}

/* Reads a subscribed connection until it breaks or keep(ud) says stop
 * (asked at least every poll_ms; keep NULL: until it breaks), giving each
 * message's payload to on_msg. */
static void read_messages(redisContext *c, int poll_ms, bool (*keep)(void *), void (*on_msg)(const char *, void *),
                          void *ud)
{
    while (!keep || keep(ud)) {
        void *rep = NULL;
        if (redisGetReplyFromReader(c, &rep) != REDIS_OK)
            return;
        if (rep) {
            redisReply *m = rep;
            if (m->type == REDIS_REPLY_ARRAY && m->elements == 3 && m->element[2]->type == REDIS_REPLY_STRING)
                on_msg(m->element[2]->str, ud);
            freeReplyObject(m);
            continue;
        }
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        int pr = poll(&pfd, 1, poll_ms);
        if (pr < 0 && errno != EINTR)
            return;
        if (pr > 0 && redisBufferRead(c) != REDIS_OK)
            return;
    }
}

static void switch_message(const char *msg, void *ud) { on_switch(ud, msg); }

static void *watch_main(void *arg)
{
    sentinel_set *ss = arg;
    long backoff_ms = 100;
    for (size_t i = 0;; i = (i + 1) % ss->u.nsentinels) {
        redisContext *c = dial_sentinel(ss, i);
        redisReply *r = c ? redisCommand(c, "SUBSCRIBE +switch-master") : NULL;
        if (!r) {
            if (c)
                redisFree(c);
            struct timespec ts = {backoff_ms / 1000, (backoff_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
            if (backoff_ms < 1000)
                backoff_ms *= 2;
            continue;
        }
        freeReplyObject(r);
        backoff_ms = 100;
        ask_sentinels(ss); /* a switch while we were not listening */
        read_messages(c, 1000, NULL, switch_message, ss);
        redisFree(c);
    }
    return NULL;
}

static sentinel_set *sentinel_set_for(const store_url *u)
{
    pthread_mutex_lock(&sets_mu);
    sentinel_set *ss = NULL;
    for (size_t i = 0; i < nsets && !ss; i++) {
        const store_url *o = &sets[i]->u;
        if (!strcmp(o->master_name, u->master_name) && o->nsentinels == u->nsentinels &&
            !memcmp(o->sentinels, u->sentinels, sizeof o->sentinels) &&
            !strcmp(o->sentinel_password, u->sentinel_password))
            ss = sets[i];
    }
    if (!ss && nsets < sizeof sets / sizeof *sets && (ss = calloc(1, sizeof *ss))) {
        ss->u = *u;
        pthread_mutex_init(&ss->mu, NULL);
        atomic_init(&ss->epoch, 0);
        ask_sentinels(ss);
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&ss->th, &at, watch_main, ss) != 0) {
            free(ss);
            ss = NULL;
        } else {
            sets[nsets++] = ss;
        }
        pthread_attr_destroy(&at);
    }
    pthread_mutex_unlock(&sets_mu);
    return ss;
}

/* ROLE: "master" and how many replicas it has; false for anything else. */
static bool is_master(redisContext *c, size_t *replicas)
{
    redisReply *r = redisCommand(c, "ROLE");
    bool ok = r && r->type == REDIS_REPLY_ARRAY && r->elements >= 3 && r->element[0]->type == REDIS_REPLY_STRING &&
              strcmp(r->element[0]->str, "master") == 0;
    if (ok)
        *replicas = r->element[2]->type == REDIS_REPLY_ARRAY ? r->element[2]->elements : 0;
    if (r)
        freeReplyObject(r);
    return ok;
}

/* A connection to the node u names (for a sentinel URL: the master now,
 * checked with ROLE), logged in, with its epoch and replica count. */
static redisContext *connect_url(const store_url *u, sentinel_set *ss, unsigned *epoch, size_t *replicas, char *name,
                                 size_t name_cap)
{
    *replicas = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        redisContext *c;
        if (ss) {
            pthread_mutex_lock(&ss->mu);
            char host[256];
            int port = ss->port;
            snprintf(host, sizeof host, "%s", ss->host);
            *epoch = atomic_load(&ss->epoch);
            pthread_mutex_unlock(&ss->mu);
            snprintf(name, name_cap, "%s:%d", host[0] ? host : "?", port);
            c = host[0] ? dial(host, port, NULL, 1000) : NULL;
        } else {
            snprintf(name, name_cap, "%s", u->kind == STORE_URL_UNIX ? u->path : u->host);
            c = dial(u->host, u->port, u->kind == STORE_URL_UNIX ? u->path : NULL, 1000);
        }
        if (c) {
            long ms = 2000L + u->ack_timeout_ms; /* a WAIT answers within ack_timeout_ms */
            struct timeval rw = {ms / 1000, (ms % 1000) * 1000};
            redisSetTimeout(c, rw);
            if (login(&c, u->user, u->password, u->db) && ss && !is_master(c, replicas)) {
                redisFree(c);
                c = NULL;
            } else if (c && !ss) {
                is_master(c, replicas);
            }
        }
        if (c || !ss)
            return c;
        ask_sentinels(ss); /* unreachable or demoted: who is master now? */
    }
    return NULL;
}

/* --- a store ---------------------------------------------------------------- */
struct store {
    pthread_mutex_t mu;
    store_url u;
    sentinel_set *ss; /* sentinel URL: the master's tracker */
    redisContext *c;
    unsigned epoch; /* ss's epoch when c was made */
    int need; /* replicas a durable write waits for; -1: not known yet */
    char node[300]; /* the node c is (or was last tried) */
    long long used_ms; /* when c was last handed out (monotonic) */
    bool warned_down;
};

/* The server closed the connection while it was idle (a restart, a
 * timeout): what it sent was its end, so nothing of ours is lost by
 * reconnecting before the next command rather than failing it. Asked only
 * of a connection idle for a second: one in steady use would have seen it. */
static bool closed_while_idle(store *s, long long now)
{
    if (now - s->used_ms < 1000)
        return false;
    struct pollfd pfd = {.fd = s->c->fd, .events = POLLIN};
    char b;
    return poll(&pfd, 1, 0) == 1 &&
           ((pfd.revents & (POLLHUP | POLLERR)) || recv(s->c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0);
}

/* Called with the lock held. */
static bool ensure_conn(store *s)
{
    long long now = mono_ms();
    bool live = s->c && !s->c->err && (!s->ss || s->epoch == atomic_load(&s->ss->epoch)) &&
                !closed_while_idle(s, now);
    s->used_ms = now;
    if (live)
        return true;
    if (s->c) {
        redisFree(s->c);
        s->c = NULL;
    }
    size_t replicas = 0;
    s->c = connect_url(&s->u, s->ss, &s->epoch, &replicas, s->node, sizeof s->node);
    if (!s->c) {
        if (!s->warned_down)
            log_kv(LOG_ERROR, "redis unreachable, will retry", "redis", s->node, NULL);
        s->warned_down = true;
        return false;
    }
    if (s->warned_down)
        log_kv(LOG_INFO, "redis reachable again", "redis", s->node, NULL);
    s->warned_down = false;
    /* "default 1 when replicas exist, 0 otherwise": a Sentinel deployment has
     * them by definition; a plain one, once seen with one, keeps waiting. */
    if (s->u.min_replicas_acked >= 0)
        s->need = s->u.min_replicas_acked;
    else if (s->ss || replicas > 0)
        s->need = 1;
    else if (s->need < 0)
        s->need = 0;
    return true;
}

store *store_open(const char *url, store_status *st)
{
    store *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (!store_parse_url(url, strlen(url), &s->u)) {
        free(s);
        *st = STORE_BAD_URL;
        return NULL;
    }
    s->need = -1;
    if (s->u.kind == STORE_URL_SENTINEL && !(s->ss = sentinel_set_for(&s->u))) {
        free(s);
        *st = STORE_BAD_URL;
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_lock(&s->mu);
    *st = ensure_conn(s) ? STORE_OK : STORE_DOWN;
    pthread_mutex_unlock(&s->mu);
    return s;
}

void store_close(store *s)
{
    if (!s)
        return;
    if (s->c)
        redisFree(s->c);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* --- replies ------------------------------------------------------------------------------- */

/* A store_reply is a hiredis reply under another name: the accessors read
 * it in place, so typing a reply costs nothing. */
static const redisReply *R(const store_reply *r)
{
    return (const redisReply *)r;
}

store_type store_reply_type(const store_reply *r)
{
    if (!r)
        return STORE_NONE;
    switch (R(r)->type) {
    case REDIS_REPLY_STRING:
        return STORE_STR;
    case REDIS_REPLY_STATUS:
        return STORE_STATUS;
    case REDIS_REPLY_ERROR:
        return STORE_ERR;
    case REDIS_REPLY_INTEGER:
        return STORE_INT;
    case REDIS_REPLY_ARRAY:
        return STORE_ARRAY;
    default:
        return STORE_NIL;
    }
}

const char *store_reply_str(const store_reply *r, size_t *len)
{
    store_type t = store_reply_type(r);
    bool text = t == STORE_STR || t == STORE_STATUS || t == STORE_ERR;
    if (len)
        *len = text ? R(r)->len : 0;
    return text ? R(r)->str : NULL;
}

json_t *store_reply_json(const store_reply *r)
{
    return store_reply_type(r) == STORE_STR ? json_loadb(R(r)->str, R(r)->len, 0, NULL) : NULL;
}

long long store_reply_int(const store_reply *r)
{
    return store_reply_type(r) == STORE_INT ? R(r)->integer : 0;
}

size_t store_reply_count(const store_reply *r)
{
    return store_reply_type(r) == STORE_ARRAY ? R(r)->elements : 0;
}

const store_reply *store_reply_at(const store_reply *r, size_t i)
{
    return i < store_reply_count(r) ? (const store_reply *)R(r)->element[i] : NULL;
}

const char *store_reply_at_str(const store_reply *r, size_t i, size_t *len)
{
    return store_reply_str(store_reply_at(r, i), len);
}

bool store_hash_pair(const store_reply *r, size_t i, const char **field, const char **value, size_t *value_len)
{
    const char *f = store_reply_at_str(r, 2 * i, NULL), *v = store_reply_at_str(r, 2 * i + 1, value_len);
    if (!f || !v)
        return false;
    *field = f;
    *value = v;
    return true;
}

const char *store_hash_get(const store_reply *r, const char *field, size_t *len)
{
    for (size_t i = 0; i + 1 < store_reply_count(r); i += 2) {
        const char *f = store_reply_at_str(r, i, NULL);
        if (f && strcmp(f, field) == 0)
            return store_reply_at_str(r, i + 1, len);
    }
    if (len)
        *len = 0;
    return NULL;
}

const store_reply *store_stream_entries(const store_reply *xread)
{
    const store_reply *e = store_reply_at(store_reply_at(xread, 0), 1);
    return store_reply_is(e, STORE_ARRAY) ? e : NULL;
}

const char *store_entry_id(const store_reply *entries, size_t i)
{
    return store_reply_at_str(store_reply_at(entries, i), 0, NULL);
}

const char *store_entry_field(const store_reply *entries, size_t i, const char *field)
{
    return store_hash_get(store_reply_at(store_reply_at(entries, i), 1), field, NULL);
}

void store_reply_free(store_reply *r)
{
    if (r)
        freeReplyObject((redisReply *)r);
}

/* Run fn on a live connection, reconnecting once if the first try broke. */
#define WITH_RETRY(s, call)                                                     \
    redisReply *r = NULL;                                                       \
    pthread_mutex_lock(&(s)->mu);                                               \
    for (int attempt = 0; attempt < 2 && !r; attempt++) {                       \
        if (!ensure_conn(s))                                                    \
            break;                                                              \
        r = (call);                                                             \
        if (!r && (s)->c) {                                                     \
            redisFree((s)->c);                                                  \
            (s)->c = NULL;                                                      \
        }                                                                       \
    }                                                                           \
    pthread_mutex_unlock(&(s)->mu);                                             \
    return r;

static redisReply *vcmd(redisContext *c, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    redisReply *r = redisvCommand(c, fmt, cp);
    va_end(cp);
    return r;
}

static redisReply *store_vcmd(store *s, const char *fmt, va_list ap)
{
    WITH_RETRY(s, vcmd(s->c, fmt, ap));
}

store_reply *store_cmd(store *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = store_vcmd(s, fmt, ap);
    va_end(ap);
    return (store_reply *)r;
}

static redisReply *cmdargv(store *s, int argc, const char **argv, const size_t *argvlen)
{
    WITH_RETRY(s, redisCommandArgv(s->c, argc, argv, argvlen));
}

store_reply *store_cmdargv(store *s, int argc, const char **argv, const size_t *argvlen)
{
    return (store_reply *)cmdargv(s, argc, argv, argvlen);
}

bool store_up(store *s)
{
    store_reply *r = store_cmd(s, "PING");
    bool ok = r && !store_reply_is(r, STORE_ERR);
    store_reply_free(r);
    return ok;
}

/* With s->mu held, after n replies were read in full: WAIT's verdict. */
static bool read_wait(store *s)
{
    void *w = NULL;
    if (redisGetReply(s->c, &w) != REDIS_OK) {
        redisFree(s->c);
        s->c = NULL;
        return false;
    }
    redisReply *wr = w;
    bool ok = wr->type == REDIS_REPLY_INTEGER && wr->integer >= s->need;
    if (!ok)
        log_kv(LOG_WARN, "redis write not on enough replicas in time", "redis", s->node, NULL);
    freeReplyObject(wr);
    return ok;
}

/* With s->mu held, c live and the write(s) queued: queues WAIT when the
 * store wants replicas; true when it did (its reply follows theirs). */
static bool append_wait(store *s)
{
    if (s->need <= 0)
        return false;
    redisAppendCommand(s->c, "WAIT %d %d", s->need, s->u.ack_timeout_ms);
    return true;
}

int store_replicas_needed(store *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->need < 0 ? 0 : s->need;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* With s->mu held and c live, the command (and WAIT) sent: its reply, and
 * in *durable whether s->need replicas have everything sent. */
static redisReply *read_durable(store *s, bool *durable)
{
    void *rep = NULL;
    if (redisGetReply(s->c, &rep) != REDIS_OK) {
        redisFree(s->c);
        s->c = NULL;
        return NULL;
    }
    *durable = s->need > 0 ? read_wait(s) : true;
    return rep;
}

store_reply *store_cmdargv_durable(store *s, int argc, const char **argv, const size_t *argvlen, bool *durable)
{
    redisReply *r = NULL;
    *durable = false;
    pthread_mutex_lock(&s->mu);
    for (int attempt = 0; attempt < 2 && !r; attempt++) {
        if (!ensure_conn(s))
            break;
        redisAppendCommandArgv(s->c, argc, argv, argvlen);
        append_wait(s);
        r = read_durable(s, durable);
    }
    pthread_mutex_unlock(&s->mu);
    return (store_reply *)r;
}

store_reply *store_cmd_durable(store *s, bool *durable, const char *fmt, ...)
{
    redisReply *r = NULL;
    *durable = false;
    pthread_mutex_lock(&s->mu);
    for (int attempt = 0; attempt < 2 && !r; attempt++) {
        if (!ensure_conn(s))
            break;
        va_list ap;
        va_start(ap, fmt);
        int rc = redisvAppendCommand(s->c, fmt, ap);
        va_end(ap);
        if (rc != REDIS_OK)
            break;
        append_wait(s);
        r = read_durable(s, durable);
    }
    pthread_mutex_unlock(&s->mu);
    return (store_reply *)r;
}

bool store_master(store *s, char *node, size_t cap, long long *changed_ms, unsigned long *switches)
{
    *changed_ms = 0;
    *switches = 0;
    if (!s)
        return false;
    if (s->ss) {
        pthread_mutex_lock(&s->ss->mu);
        snprintf(node, cap, "%s:%d", s->ss->host[0] ? s->ss->host : "?", s->ss->port);
        *changed_ms = s->ss->changed_ms;
        *switches = s->ss->switches;
        pthread_mutex_unlock(&s->ss->mu);
        return true;
    }
    if (s->u.kind == STORE_URL_UNIX)
        snprintf(node, cap, "%s", s->u.path);
    else
        snprintf(node, cap, "%s:%d", s->u.host, s->u.port);
    return false;
}

static bool reply_ok(const redisReply *r)
{
    if (!r || r->type == REDIS_REPLY_ERROR)
        return false;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        if (r->element[i] && r->element[i]->type == REDIS_REPLY_ERROR)
            return false;
    return true;
}

/* With s->mu held: the replies to n commands sent, kept in out[] or (out
 * NULL) freed with *ok cleared by any error; a broken connection is
 * dropped. Returns how many were read. */
static size_t read_replies(store *s, size_t n, store_reply **out, bool *ok)
{
    size_t got = 0;
    for (; got < n; got++) {
        void *rep = NULL;
        if (redisGetReply(s->c, &rep) != REDIS_OK) {
            redisFree(s->c);
            s->c = NULL;
            break;
        }
        if (out)
            out[got] = (store_reply *)rep;
        else {
            *ok = *ok && reply_ok(rep);
            freeReplyObject(rep);
        }
    }
    return got;
}

static size_t pipeline(store *s, size_t n, int *argc, const char ***argv, const size_t **argvlen,
                       store_reply **replies, bool *durable)
{
    size_t got = 0;
    for (size_t i = 0; i < n; i++)
        replies[i] = NULL;
    if (durable)
        *durable = false;
    pthread_mutex_lock(&s->mu);
    if (ensure_conn(s)) {
        for (size_t i = 0; i < n; i++)
            redisAppendCommandArgv(s->c, argc[i], argv[i], argvlen ? argvlen[i] : NULL);
        bool wait = durable && append_wait(s);
        got = read_replies(s, n, replies, NULL);
        if (durable && got == n && s->c)
            *durable = wait ? read_wait(s) : true;
    }
    pthread_mutex_unlock(&s->mu);
    return got;
}

size_t store_pipeline(store *s, size_t n, int *argc, const char ***argv, const size_t **argvlen,
                      store_reply **replies)
{
    return pipeline(s, n, argc, argv, argvlen, replies, NULL);
}

size_t store_pipeline_durable(store *s, size_t n, int *argc, const char ***argv, const size_t **argvlen,
                              store_reply **replies, bool *durable)
{
    return pipeline(s, n, argc, argv, argvlen, replies, durable);
}

void store_batch_add(store_batch *b, int argc, const char *const *argv)
{
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, (const char **)argv, NULL);
    if (len < 0 || !cmd)
        b->cmds.failed = true;
    else
        buf_add(&b->cmds, cmd, (size_t)len);
    redisFreeCommand(cmd);
    b->n++;
}

void store_batch_append(store_batch *b, const store_batch *more)
{
    buf_add(&b->cmds, more->cmds.data, more->cmds.len);
    b->cmds.failed |= more->cmds.failed;
    b->n += more->n;
}

/* Sends b's commands and empties it; the replies go to out (or, out NULL,
 * are checked into *ok and freed). durable: WAIT follows in the same
 * round trip and *durable gets its verdict. Returns how many were read. */
static size_t batch_run(store *s, store_batch *b, store_reply **out, bool *ok, bool *durable)
{
    size_t n = b->n, len = b->cmds.len, got = 0;
    bool built = buf_ok(&b->cmds);
    b->n = b->cmds.len = 0; /* emptied; the bytes stay readable until the next add */
    b->cmds.failed = false;
    *ok = *ok && built;
    if (durable)
        *durable = false;
    if (!n || !built)
        return 0;
    pthread_mutex_lock(&s->mu);
    if (ensure_conn(s) && redisAppendFormattedCommand(s->c, b->cmds.data, len) == REDIS_OK) {
        bool wait = durable && append_wait(s);
        got = read_replies(s, n, out, ok);
        if (durable && got == n && s->c)
            *durable = wait ? read_wait(s) : true;
    }
    pthread_mutex_unlock(&s->mu);
    return got;
}

bool store_batch_send(store *s, store_batch *b)
{
    size_t n = b->n;
    bool ok = true;
    return batch_run(s, b, NULL, &ok, NULL) == n && ok;
}

bool store_batch_send_durable(store *s, store_batch *b, bool *durable)
{
    size_t n = b->n;
    bool ok = true;
    return batch_run(s, b, NULL, &ok, durable) == n && ok;
}

size_t store_batch_read(store *s, store_batch *b, store_reply **replies)
{
    size_t n = b->n;
    for (size_t i = 0; i < n; i++)
        replies[i] = NULL;
    bool ok = true;
    return batch_run(s, b, replies, &ok, NULL);
}

void store_batch_free(store_batch *b)
{
    buf_free(&b->cmds);
    b->n = 0;
}

/* --- subscriber --------------------------------------------------------- */
struct store_sub {
    pthread_t th;
    store_url u;
    sentinel_set *ss;
    unsigned epoch; /* of the connection now */
    char *channel;
    store_sub_cb cb;
    void *ud;
    atomic_bool stop;
};

static bool sub_keep(void *ud)
{
    store_sub *sub = ud;
    return !atomic_load(&sub->stop) && (!sub->ss || sub->epoch == atomic_load(&sub->ss->epoch));
}

static void sub_message(const char *msg, void *ud)
{
    store_sub *sub = ud;
    sub->cb(msg, sub->ud);
}

static void *sub_main(void *arg)
{
    store_sub *sub = arg;
    long backoff_ms = 100;
    while (!atomic_load(&sub->stop)) {
        unsigned epoch = 0;
        size_t replicas;
        char node[300];
        redisContext *c = connect_url(&sub->u, sub->ss, &epoch, &replicas, node, sizeof node);
        if (!c) {
            struct timespec ts = {backoff_ms / 1000, (backoff_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
            if (backoff_ms < 2000)
                backoff_ms *= 2;
            continue;
        }
        backoff_ms = 100;
        redisReply *r = redisCommand(c, "SUBSCRIBE %s", sub->channel);
        if (!r) {
            redisFree(c);
            continue;
        }
        freeReplyObject(r);
        sub->cb(NULL, sub->ud);
        /* a stop request, or a new master, is noticed within 200 ms */
        sub->epoch = epoch;
        read_messages(c, 200, sub_keep, sub_message, sub);
        redisFree(c);
    }
    return NULL;
}

store_sub *store_subscribe(const char *url, const char *channel, store_sub_cb cb, void *ud)
{
    store_sub *sub = calloc(1, sizeof *sub);
    if (!sub || !store_parse_url(url, strlen(url), &sub->u) ||
        (sub->u.kind == STORE_URL_SENTINEL && !(sub->ss = sentinel_set_for(&sub->u)))) {
        free(sub);
        return NULL;
    }
    sub->channel = strdup(channel);
    sub->cb = cb;
    sub->ud = ud;
    atomic_init(&sub->stop, false);
    if (pthread_create(&sub->th, NULL, sub_main, sub) != 0) {
        free(sub->channel);
        free(sub);
        return NULL;
    }
    return sub;
}

void store_unsubscribe(store_sub *sub)
{
    if (!sub)
        return;
    atomic_store(&sub->stop, true);
    pthread_join(sub->th, NULL);
    free(sub->channel);
    free(sub);
}

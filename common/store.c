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
#include <unistd.h>

#include "common/log.h"

typedef struct {
    char host[256];
    char path[256];
    int port, db;
    bool unix_socket;
} redis_addr;

struct store {
    pthread_mutex_t mu;
    redis_addr a;
    redisContext *c;
    bool warned_down;
};

static bool parse_url(const char *url, redis_addr *a)
{
    memset(a, 0, sizeof *a);
    if (strncmp(url, "unix://", 7) == 0) {
        const char *p = url + 7, *q = strchr(p, '?');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if (n == 0 || n >= sizeof a->path)
            return false;
        memcpy(a->path, p, n);
        a->unix_socket = true;
        if (q && strncmp(q, "?db=", 4) == 0)
            a->db = atoi(q + 4);
        return true;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return false;
    const char *p = url + 8;
    const char *colon = strrchr(p, ':'), *slash = strchr(p, '/');
    if (!colon || (slash && colon > slash))
        return false;
    size_t hn = (size_t)(colon - p);
    if (hn == 0 || hn >= sizeof a->host)
        return false;
    memcpy(a->host, p, hn);
    a->port = atoi(colon + 1);
    if (a->port <= 0 || a->port > 65535)
        return false;
    if (slash)
        a->db = atoi(slash + 1);
    return true;
}

static redisContext *connect_addr(const redis_addr *a)
{
    struct timeval tv = {1, 0};
    redisContext *c = a->unix_socket ? redisConnectUnixWithTimeout(a->path, tv)
                                     : redisConnectWithTimeout(a->host, a->port, tv);
    if (!c)
        return NULL;
    if (c->err) {
        redisFree(c);
        return NULL;
    }
    struct timeval rw = {2, 0};
    redisSetTimeout(c, rw);
    if (a->db) {
        redisReply *r = redisCommand(c, "SELECT %d", a->db);
        bool ok = r && r->type != REDIS_REPLY_ERROR;
        if (r)
            freeReplyObject(r);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

static const char *addr_name(const redis_addr *a) { return a->unix_socket ? a->path : a->host; }

/* Called with the lock held. */
static bool ensure_conn(store *s)
{
    if (s->c && !s->c->err)
        return true;
    if (s->c) {
        redisFree(s->c);
        s->c = NULL;
    }
    s->c = connect_addr(&s->a);
    if (!s->c) {
        if (!s->warned_down)
            log_kv(LOG_ERROR, "redis unreachable, will retry", "redis", addr_name(&s->a), NULL);
        s->warned_down = true;
        return false;
    }
    if (s->warned_down)
        log_kv(LOG_INFO, "redis reachable again", "redis", addr_name(&s->a), NULL);
    s->warned_down = false;
    return true;
}

store *store_open(const char *url, store_status *st)
{
    store *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (!parse_url(url, &s->a)) {
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

redisReply *store_cmd(store *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = store_vcmd(s, fmt, ap);
    va_end(ap);
    return r;
}

redisReply *store_cmdargv(store *s, int argc, const char **argv, const size_t *argvlen)
{
    WITH_RETRY(s, redisCommandArgv(s->c, argc, argv, argvlen));
}

bool store_up(store *s)
{
    redisReply *r = store_cmd(s, "PING");
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (r)
        freeReplyObject(r);
    return ok;
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
static size_t read_replies(store *s, size_t n, redisReply **out, bool *ok)
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
            out[got] = rep;
        else {
            *ok = *ok && reply_ok(rep);
            freeReplyObject(rep);
        }
    }
    return got;
}

size_t store_pipeline(store *s, size_t n, int *argc, const char ***argv, const size_t **argvlen,
                      redisReply **replies)
{
    size_t got = 0;
    for (size_t i = 0; i < n; i++)
        replies[i] = NULL;
    pthread_mutex_lock(&s->mu);
    if (ensure_conn(s)) {
        for (size_t i = 0; i < n; i++)
            redisAppendCommandArgv(s->c, argc[i], argv[i], argvlen ? argvlen[i] : NULL);
        got = read_replies(s, n, replies, NULL);
    }
    pthread_mutex_unlock(&s->mu);
    return got;
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
 * are checked into *ok and freed). Returns how many were read. */
static size_t batch_run(store *s, store_batch *b, redisReply **out, bool *ok)
{
    size_t n = b->n, len = b->cmds.len, got = 0;
    bool built = buf_ok(&b->cmds);
    b->n = b->cmds.len = 0; /* emptied; the bytes stay readable until the next add */
    b->cmds.failed = false;
    *ok = *ok && built;
    if (!n || !built)
        return 0;
    pthread_mutex_lock(&s->mu);
    if (ensure_conn(s) && redisAppendFormattedCommand(s->c, b->cmds.data, len) == REDIS_OK)
        got = read_replies(s, n, out, ok);
    pthread_mutex_unlock(&s->mu);
    return got;
}

bool store_batch_send(store *s, store_batch *b)
{
    size_t n = b->n;
    bool ok = true;
    return batch_run(s, b, NULL, &ok) == n && ok;
}

size_t store_batch_read(store *s, store_batch *b, redisReply **replies)
{
    size_t n = b->n;
    for (size_t i = 0; i < n; i++)
        replies[i] = NULL;
    bool ok = true;
    return batch_run(s, b, replies, &ok);
}

void store_batch_free(store_batch *b)
{
    buf_free(&b->cmds);
    b->n = 0;
}

/* --- subscriber --------------------------------------------------------- */
struct store_sub {
    pthread_t th;
    redis_addr a;
    char *channel;
    store_sub_cb cb;
    void *ud;
    atomic_bool stop;
};

static void *sub_main(void *arg)
{
    store_sub *sub = arg;
    long backoff_ms = 100;
    while (!atomic_load(&sub->stop)) {
        redisContext *c = connect_addr(&sub->a);
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
        /* Drain replies already buffered, then wait up to 200 ms for more so
         * that a stop request is noticed promptly. */
        while (!atomic_load(&sub->stop)) {
            void *rep = NULL;
            if (redisGetReplyFromReader(c, &rep) != REDIS_OK)
                break;
            if (rep) {
                redisReply *m = rep;
                if (m->type == REDIS_REPLY_ARRAY && m->elements == 3 &&
                    m->element[2]->type == REDIS_REPLY_STRING)
                    sub->cb(m->element[2]->str, sub->ud);
                freeReplyObject(m);
                continue;
            }
            struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
            int pr = poll(&pfd, 1, 200);
            if (pr < 0 && errno != EINTR)
                break;
            if (pr > 0 && redisBufferRead(c) != REDIS_OK)
                break;
        }
        redisFree(c);
    }
    return NULL;
}

store_sub *store_subscribe(const char *url, const char *channel, store_sub_cb cb, void *ud)
{
    store_sub *sub = calloc(1, sizeof *sub);
    if (!sub || !parse_url(url, &sub->a)) {
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

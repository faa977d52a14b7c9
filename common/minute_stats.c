/* Counters per minute, summed in Redis. See minute_stats.h. */
#include "common/minute_stats.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/hash.h"
#include "common/store.h"
#include "common/ticker.h"

typedef struct {
    long long minute; /* 0: free */
    uint64_t n;
    char field[MSTATS_FIELD_MAX];
} slot;

/* Commands of one flush, sent a batch at a time (no allocation). */
enum { BATCH = 128 };
typedef struct {
    size_t n;
    int argc[BATCH];
    const char **argv[BATCH];
    const char *args[BATCH][4];
    char key[BATCH][160], num[BATCH][24];
    const slot *of[BATCH]; /* the slot a HINCRBY adds, NULL for an EXPIRE */
    store_reply *rep[BATCH];
} batch;

struct minute_stats {
    pthread_mutex_t mu;
    slot *cur, *spare; /* cur takes adds; a flush swaps them */
    size_t used;
    uint64_t dropped;
    store *st;
    ticker *tk;
    char prefix[128];
    int keep_min;
    batch b; /* the flush's commands (one flush at a time: the ticker's, then the last one) */
};

static slot *find(slot *t, long long minute, const char *field, size_t flen, bool *fresh)
{
    uint64_t h = hash_fnv1a64(field, flen) ^ (uint64_t)minute * 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < MSTATS_SLOTS; i++) {
        slot *s = &t[(h + i) & (MSTATS_SLOTS - 1)];
        if (!s->minute) {
            *fresh = true;
            return s;
        }
        if (s->minute == minute && strncmp(s->field, field, flen) == 0 && s->field[flen] == 0)
            return s;
    }
    return NULL;
}

static void add_locked(minute_stats *m, long long minute, const char *field, size_t flen, uint64_t n)
{
    if (flen >= MSTATS_FIELD_MAX)
        flen = MSTATS_FIELD_MAX - 1;
    bool fresh = false;
    slot *s = find(m->cur, minute, field, flen, &fresh);
    /* a new pair only while the table is at most 3/4 full: probes stay short */
    if (!s || (fresh && m->used * 4 >= MSTATS_SLOTS * 3)) {
        m->dropped += n;
        return;
    }
    if (fresh) {
        s->minute = minute;
        memcpy(s->field, field, flen);
        s->field[flen] = 0;
        s->n = 0;
        m->used++;
    }
    s->n += n;
}

void mstats_add(minute_stats *m, const char *field, uint64_t n)
{
    if (!m || !n)
        return;
    long long minute = wall_ms() / 60000;
    pthread_mutex_lock(&m->mu);
    add_locked(m, minute, field, strlen(field), n);
    pthread_mutex_unlock(&m->mu);
}

void mstats_add2(minute_stats *m, const char *a, const char *b, uint64_t n)
{
    if (!m)
        return;
    /* "<a>:<b>", cut to the field size (no formatting on request paths) */
    char f[MSTATS_FIELD_MAX];
    size_t al = strnlen(a, MSTATS_FIELD_MAX - 2), bl = strnlen(b, MSTATS_FIELD_MAX - 2 - al);
    memcpy(f, a, al);
    f[al] = ':';
    memcpy(f + al + 1, b, bl);
    f[al + 1 + bl] = 0;
    mstats_add(m, f, n);
}

/* Sends the batch; what Redis did not take is counted again. */
static bool send_batch(minute_stats *m, batch *b)
{
    size_t got = b->n ? store_pipeline(m->st, b->n, b->argc, b->argv, NULL, b->rep) : 0;
    bool all = got == b->n;
    pthread_mutex_lock(&m->mu);
    for (size_t c = 0; c < b->n; c++) {
        bool taken = c < got && b->rep[c] && store_reply_is(b->rep[c], STORE_INT);
        if (b->of[c] && !taken) {
            add_locked(m, b->of[c]->minute, b->of[c]->field, strlen(b->of[c]->field), b->of[c]->n);
            all = false;
        }
    }
    pthread_mutex_unlock(&m->mu);
    for (size_t c = 0; c < got; c++)
        store_reply_free(b->rep[c]);
    b->n = 0;
    return all;
}

static void queue(batch *b, const slot *of, int argc, const char *a0, const char *a1, const char *a2, const char *a3)
{
    const char **a = b->args[b->n];
    a[0] = a0, a[1] = a1, a[2] = a2, a[3] = a3;
    b->argv[b->n] = a;
    b->argc[b->n] = argc;
    b->of[b->n++] = of;
}

static bool flush(minute_stats *m)
{
    pthread_mutex_lock(&m->mu);
    slot *t = m->cur;
    size_t used = m->used;
    m->cur = m->spare;
    m->spare = t;
    m->used = 0;
    pthread_mutex_unlock(&m->mu);
    if (!used)
        return true;
    batch *b = &m->b;
    char ttl[16];
    snprintf(ttl, sizeof ttl, "%d", m->keep_min * 60 + 120);
    bool all = true;
    long long expired = 0; /* the minute whose key the batch has set to expire */
    b->n = 0;
    for (size_t i = 0; i < MSTATS_SLOTS; i++) {
        const slot *s = &t[i];
        if (!s->minute)
            continue;
        if (b->n + 2 > BATCH) {
            all &= send_batch(m, b);
            expired = 0;
        }
        char *key = b->key[b->n];
        snprintf(key, sizeof b->key[0], "%s:%lld", m->prefix, s->minute);
        snprintf(b->num[b->n], sizeof b->num[0], "%llu", (unsigned long long)s->n);
        queue(b, s, 4, "HINCRBY", key, s->field, b->num[b->n]);
        if (s->minute != expired) { /* EXPIRE is idempotent: once per minute and batch is plenty */
            queue(b, NULL, 3, "EXPIRE", key, ttl, NULL);
            expired = s->minute;
        }
    }
    all &= send_batch(m, b);
    memset(t, 0, sizeof(slot) * MSTATS_SLOTS);
    return all;
}

static void tick(ticker *t, void *ud)
{
    (void)t;
    flush(ud);
}

minute_stats *mstats_new(const char *redis_url, const char *prefix, int keep_min, long long flush_ms)
{
    minute_stats *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    pthread_mutex_init(&m->mu, NULL);
    m->cur = calloc(MSTATS_SLOTS, sizeof(slot));
    m->spare = calloc(MSTATS_SLOTS, sizeof(slot));
    snprintf(m->prefix, sizeof m->prefix, "%s", prefix);
    m->keep_min = keep_min > 0 ? keep_min : 60;
    store_status st;
    m->st = m->cur && m->spare ? store_open(redis_url, &st) : NULL;
    if (!m->st || !(m->tk = ticker_start(tick, m, flush_ms > 0 ? flush_ms : 2000))) {
        if (m->st)
            store_close(m->st);
        free(m->cur), free(m->spare), free(m);
        return NULL;
    }
    return m;
}

void mstats_free(minute_stats *m)
{
    if (!m)
        return;
    ticker_stop(m->tk);
    flush(m);
    store_close(m->st);
    pthread_mutex_destroy(&m->mu);
    free(m->cur), free(m->spare), free(m);
}

json_t *mstats_read(minute_stats *m, int minutes)
{
    if (minutes < 1)
        minutes = 1;
    if (minutes > m->keep_min)
        minutes = m->keep_min;
    if (minutes > MSTATS_READ_MAX)
        minutes = MSTATS_READ_MAX;
    long long first = wall_ms() / 60000 - minutes + 1;
    int argc[MSTATS_READ_MAX];
    const char *args[MSTATS_READ_MAX][2], **argv[MSTATS_READ_MAX];
    char keys[MSTATS_READ_MAX][160];
    store_reply *rep[MSTATS_READ_MAX];
    for (int i = 0; i < minutes; i++) {
        snprintf(keys[i], sizeof keys[i], "%s:%lld", m->prefix, first + i);
        args[i][0] = "HGETALL", args[i][1] = keys[i];
        argv[i] = args[i], argc[i] = 2;
    }
    size_t got = store_pipeline(m->st, (size_t)minutes, argc, argv, NULL, rep);
    bool ok = got == (size_t)minutes;
    json_t *series = json_object();
    for (int i = 0; ok && i < minutes; i++) {
        store_reply *r = rep[i];
        if (!r || !store_reply_is(r, STORE_ARRAY)) {
            ok = false;
            break;
        }
        for (size_t e = 0; e + 1 < store_reply_count(r); e += 2) {
            const char *f = store_reply_at_str(r, e, NULL);
            json_t *a = json_object_get(series, f);
            if (!a) {
                a = json_array();
                for (int z = 0; z < minutes; z++)
                    json_array_append_new(a, json_integer(0));
                json_object_set_new(series, f, a);
            }
            json_array_set_new(a, (size_t)i, json_integer(strtoll(store_reply_at_str(r, e + 1, NULL), NULL, 10)));
        }
    }
    for (size_t c = 0; c < got; c++)
        store_reply_free(rep[c]);
    if (!ok) {
        json_decref(series);
        return NULL;
    }
    pthread_mutex_lock(&m->mu);
    uint64_t dropped = m->dropped;
    pthread_mutex_unlock(&m->mu);
    return json_pack("{s:i, s:I, s:i, s:o, s:I}", "step_s", 60, "start", (json_int_t)(first * 60), "minutes", minutes,
                     "series", series, "dropped", (json_int_t)dropped);
}

static long long sum(const json_t *a)
{
    long long n = 0;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) n += json_integer_value(v);
    return n;
}

long long mstats_total(const json_t *read, const char *field)
{
    return sum(json_object_get(json_object_get(read, "series"), field));
}

long long mstats_prefix_total(const json_t *read, const char *prefix)
{
    long long n = 0;
    size_t pl = strlen(prefix);
    const char *f;
    json_t *a;
    json_object_foreach(json_object_get(read, "series"), f, a) if (strncmp(f, prefix, pl) == 0) n += sum(a);
    return n;
}

bool mstats_window_arg(const char *arg, int *minutes)
{
    if (!arg || !*arg) {
        *minutes = 15;
        return true;
    }
    if (*arg < '0' || *arg > '9')
        return false;
    char *end;
    long v = strtol(arg, &end, 10);
    if (*end || v < 1 || v > 60)
        return false;
    *minutes = (int)v;
    return true;
}

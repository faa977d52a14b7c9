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

struct minute_stats {
    pthread_mutex_t mu;
    slot *cur, *spare; /* cur takes adds; a flush swaps them */
    size_t used;
    uint64_t dropped;
    store *st;
    ticker *tk;
    char prefix[128];
    int keep_min;
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
    char f[MSTATS_FIELD_MAX];
    snprintf(f, sizeof f, "%s:%s", a, b);
    mstats_add(m, f, n);
}

bool mstats_flush(minute_stats *m)
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

    /* one HINCRBY per pair, one EXPIRE per minute touched */
    size_t cap = used * 2, n = 0;
    int *argc = calloc(cap, sizeof *argc);
    const char ***argv = calloc(cap, sizeof *argv);
    const char **args = calloc(cap * 4, sizeof *args);
    char (*keys)[160] = calloc(used, sizeof *keys);
    char (*nums)[24] = calloc(used, sizeof *nums);
    size_t *of = calloc(cap, sizeof *of); /* command -> slot index, or SIZE_MAX for EXPIRE */
    redisReply **rep = calloc(cap, sizeof *rep);
    char ttl[16];
    snprintf(ttl, sizeof ttl, "%d", m->keep_min * 60 + 120);
    bool ok = argc && argv && args && keys && nums && of && rep;
    size_t k = 0;
    long long last_minute = 0;
    for (size_t i = 0; ok && i < MSTATS_SLOTS; i++) {
        slot *s = &t[i];
        if (!s->minute)
            continue;
        snprintf(keys[k], sizeof keys[k], "%s:%lld", m->prefix, s->minute);
        snprintf(nums[k], sizeof nums[k], "%llu", (unsigned long long)s->n);
        const char **a = &args[n * 4];
        a[0] = "HINCRBY", a[1] = keys[k], a[2] = s->field, a[3] = nums[k];
        argv[n] = a, argc[n] = 4, of[n] = i, n++;
        if (s->minute != last_minute) { /* slots of one minute need not be adjacent: EXPIRE is idempotent */
            a = &args[n * 4];
            a[0] = "EXPIRE", a[1] = keys[k], a[2] = ttl;
            argv[n] = a, argc[n] = 3, of[n] = SIZE_MAX, n++;
            last_minute = s->minute;
        }
        k++;
    }
    size_t got = ok ? store_pipeline(m->st, n, argc, argv, NULL, rep) : 0;
    bool all = ok && got == n;
    /* what Redis did not take is counted again */
    pthread_mutex_lock(&m->mu);
    for (size_t c = 0; c < n; c++) {
        bool taken = c < got && rep[c] && rep[c]->type == REDIS_REPLY_INTEGER;
        if (of[c] != SIZE_MAX && !taken) {
            slot *s = &t[of[c]];
            add_locked(m, s->minute, s->field, strlen(s->field), s->n);
            all = false;
        }
    }
    if (!ok) { /* no memory to send: keep everything */
        for (size_t i = 0; i < MSTATS_SLOTS; i++)
            if (t[i].minute)
                add_locked(m, t[i].minute, t[i].field, strlen(t[i].field), t[i].n);
    }
    pthread_mutex_unlock(&m->mu);
    for (size_t c = 0; c < got; c++)
        if (rep && rep[c])
            freeReplyObject(rep[c]);
    memset(t, 0, sizeof(slot) * MSTATS_SLOTS);
    free(argc), free(argv), free(args), free(keys), free(nums), free(of), free(rep);
    return all;
}

static void tick(ticker *t, void *ud)
{
    (void)t;
    mstats_flush(ud);
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
    mstats_flush(m);
    store_close(m->st);
    pthread_mutex_destroy(&m->mu);
    free(m->cur), free(m->spare), free(m);
}

uint64_t mstats_dropped(minute_stats *m)
{
    pthread_mutex_lock(&m->mu);
    uint64_t d = m->dropped;
    pthread_mutex_unlock(&m->mu);
    return d;
}

json_t *mstats_read(minute_stats *m, int minutes)
{
    if (minutes < 1)
        minutes = 1;
    if (minutes > m->keep_min)
        minutes = m->keep_min;
    long long now_min = wall_ms() / 60000, first = now_min - minutes + 1;
    int *argc = calloc((size_t)minutes, sizeof *argc);
    const char ***argv = calloc((size_t)minutes, sizeof *argv);
    const char **args = calloc((size_t)minutes * 2, sizeof *args);
    char (*keys)[160] = calloc((size_t)minutes, sizeof *keys);
    redisReply **rep = calloc((size_t)minutes, sizeof *rep);
    json_t *out = NULL;
    if (!argc || !argv || !args || !keys || !rep)
        goto done;
    for (int i = 0; i < minutes; i++) {
        snprintf(keys[i], sizeof keys[i], "%s:%lld", m->prefix, first + i);
        args[i * 2] = "HGETALL", args[i * 2 + 1] = keys[i];
        argv[i] = &args[i * 2], argc[i] = 2;
    }
    size_t got = store_pipeline(m->st, (size_t)minutes, argc, argv, NULL, rep);
    bool ok = got == (size_t)minutes;
    json_t *series = json_object();
    for (int i = 0; ok && i < minutes; i++) {
        redisReply *r = rep[i];
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            ok = false;
            break;
        }
        for (size_t e = 0; e + 1 < r->elements; e += 2) {
            const char *f = r->element[e]->str;
            json_t *a = json_object_get(series, f);
            if (!a) {
                a = json_array();
                for (int z = 0; z < minutes; z++)
                    json_array_append_new(a, json_integer(0));
                json_object_set_new(series, f, a);
            }
            json_array_set_new(a, (size_t)i, json_integer(strtoll(r->element[e + 1]->str, NULL, 10)));
        }
    }
    for (size_t c = 0; c < got; c++)
        if (rep[c])
            freeReplyObject(rep[c]);
    if (ok)
        out = json_pack("{s:i, s:I, s:i, s:o}", "step_s", 60, "start", (json_int_t)(first * 60), "minutes",
                        minutes, "series", series);
    else
        json_decref(series);
done:
    free(argc), free(argv), free(args), free(keys), free(rep);
    return out;
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

/* The CI/T parts' shared state and helpers (dcdn/triggers*.c only):
 *   triggers.c          the trigger store in Redis, start and stop
 *   triggers_server.c   the CI/T server (router role): POST, GET, DELETE /triggers, group commit
 *   triggers_exec.c     the executor (surrogate role): each trigger run on our cache
 *   triggers_monitor.c  completion (router role): status from the executors' acknowledgements
 * triggers.c's top comment tells the design and the Redis keys. */
#ifndef DCDN_TRIGGERS_INT_H
#define DCDN_TRIGGERS_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "common/store.h"
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

/* triggers.c: the store */
void tg_tkey(const dcdn *d, char *out, size_t cap, const char *fmt, const char *arg);
bool tg_id_ok(const char *id);
json_t *tg_load(dcdn *d, store *st, const char *id, bool *down); /* new reference */
bool tg_load_many(dcdn *d, store *st, const char *const *ids, size_t n, json_t **out);
const char *tg_field(json_t *t, const char *name); /* borrowed from t */
bool tg_queue_status(dcdn *d, store_batch *w, const char *id, cit_status from, cit_status to, json_t *errors);
void tg_forget(dcdn *d, store *st, const char *id, const char *up);
json_t *tg_live_executors(dcdn *d, store *st); /* new reference */

/* the roles' threads and tick (arg: the struct triggers) */
void *tg_commit_thread(void *arg); /* returns NULL */
void *tg_exec_thread(void *arg); /* returns NULL */
void tg_mon_tick(ticker *t, void *arg);

#endif

/* dcdn: the downstream gateway. One context struct, passed everywhere. */
#ifndef DCDN_DCDN_H
#define DCDN_DCDN_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "common/daemon.h"
#include "common/snapshot.h"
#include "common/store.h"
#include "interfaces/metadata.h"
#include "interfaces/mi_client.h"

typedef struct {
    const char *id;           /* the uCDN's name */
    const char *metadata_url; /* its HostIndex */
    const char *token;        /* our bearer token at that uCDN */
    int refresh_s;
    snapshot_holder snap; /* mi_host_index, fully linked and indexed */
    mi_fetcher *fetcher;  /* sync thread only */
    long long next_due;   /* sync thread only, monotonic ms */
    char key_docs[192];
    pthread_mutex_t status_mu;
    long long last_ok, last_attempt; /* wall-clock seconds */
    char last_error[512];
    unsigned long long generation; /* changes applied */
} upstream;

typedef struct {
    json_t *config;
    const char *cdn_id, *redis_url;
    const char **extra_types;
    mi_policy policy;
    http_server_conf op_conf;
    http_token *op_tokens;
    size_t n_op;
    upstream *ups;
    size_t n_ups;

    store *store;
    store_sub *sub;
    metrics *metrics;
    metric_cell *m_fetch_ok, *m_fetch_fail, *m_changes, *m_resolve_ok, *m_resolve_nohost,
        *m_resolve_refused;
    daemon_ops ops;
    char instance[20];
    char channel[128];

    pthread_t sync_th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool refresh_now, reload_from_redis, stop;
} dcdn;

/* dcdn/config.c */
bool dcdn_config_load(dcdn *d, const char *file, jerr *e);

/* dcdn/metadata_sync.c */
bool dcdn_sync_start(dcdn *d);
void dcdn_sync_stop(dcdn *d);
void dcdn_sync_kick(dcdn *d, bool from_redis);

/* dcdn/resolve_api.c: /v1/metadata/{resolve,status,refresh} */
#define RESOLVE_API_ROUTES 3
void resolve_api_routes(dcdn *d, http_route *out);

#endif

/* dcdn: the downstream gateway. One context struct, passed everywhere. */
#ifndef DCDN_DCDN_H
#define DCDN_DCDN_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "common/daemon.h"
#include "common/egress.h"
#include "common/http_server.h"
#include "common/iptable.h"
#include "common/metrics.h"
#include "common/minute_stats.h"
#include "common/static_files.h"
#include "common/snapshot.h"
#include "common/store.h"
#include "common/url.h"
#include "dcdn/cache.h"
#include "interfaces/metadata.h"
#include "interfaces/mi_client.h"
#include "signing/hop.h"

/* The largest manifest rewritten (two-step at the router, tokens at the surrogate). */
#define MANIFEST_MAX_BYTES (4u << 20)

typedef struct {
    const char *id;           /* the uCDN's name */
    const char *metadata_url; /* its HostIndex */
    const char *token;        /* our bearer token at that uCDN */
    int refresh_s;
    snapshot_holder snap; /* mi_host_index, fully linked and indexed */
    mi_fetcher *fetcher;  /* sync thread only */
    long long next_due;   /* sync thread only, monotonic ms */
    const char *fci_url;   /* the uCDN's FCI intake ("http://ucdn:8081/fci/v1"), or NULL */
    int heartbeat_s;
    char key_docs[192];
    pthread_mutex_t status_mu;
    long long last_ok, last_attempt; /* wall-clock seconds */
    char last_error[512];
    unsigned long long generation; /* changes applied */
    jwk_set us_keys; /* keys of the upstream's URI-signing tokens; n 0: none */
    /* where the sources its metadata names may be (MI.SourceMetadata,
     * two-step manifests): its own "egress", else the daemon's */
    egress_policy *egress;
    const char *log_fields[48]; /* CDNI log fields this upstream asked for (NULL-terminated) */
    tls_peer_id cert;    /* its client certificate at our peer listener */
    bool has_cert;
    http_tls_client tls; /* our side of TLS to its MI, FCI and RI endpoints */
} upstream;

/* A coverage zone rule (Cisco style): client prefix -> surrogate, metric. */
typedef struct {
    const char *surrogate;
    long long metric;
} cz_rule;

/* A live surrogate as the router sees it (from Redis). */
typedef struct {
    char id[65]; /* ids are 1-64 of [A-Za-z0-9._-] */
    char url[512];
    char https_url[512]; /* its HTTPS base ("": it serves plain HTTP only) */
    char host[256]; /* canonical name of url's host, without the port */
    uint32_t load_milli;
    long long ts_ms;
    long long cache_bytes, cache_disk_bytes, cache_objects; /* as it last heartbeated; -1: not told */
} surrogate_info;

typedef struct {
    surrogate_info *s;
    size_t n;
} surrogate_set;

typedef struct dcdn dcdn;

/* One delivery (or router answer), as the CDNI log record needs it. */
typedef struct {
    dcdn *d;
    long long start_ms, end_ms;
    ipt_addr client_addr; /* the end user, binary; client: the same as text */
    char client[46], method[12], host[256], uri[2048];
    int status;
    uint64_t bytes;     /* body bytes sent */
    bool completed;     /* the whole response went out */
    bool redirect;      /* a router's answer (302 or manifest), not a delivery: s-cached "-" */
    char cache[16];     /* HIT, MISS, REVALIDATED, REFRESH, STALE, BYPASS, REFUSED, ERROR */
    char ccid[256], sid[80];
    char auth[16];      /* open, token, cookie */
    int upstream;       /* index of the upstream CDN whose content it was; -1: none */
    int us_code;        /* RFC 9246 verification code (0: not checked) */
    char us_reason[128];
    char u_uri[2048];   /* the content's URL as the uCDN knows it */
    char ua[256];       /* User-Agent */
    int s_port;
} delivery_record;

typedef struct logger logger;

typedef struct prepo_job prepo_job;

struct dcdn {
    json_t *config;
    const char *cdn_id, *redis_url;
    /* router role */
    http_server_conf peer_conf, delivery_conf;
    bool has_peer, has_delivery;
    http_token *peer_tokens; /* uCDNs calling our RI / FCI endpoints */
    http_tls_client tls_client; /* our side of TLS to every upstream, unless its "tls" says otherwise */
    size_t n_peer;
    json_t *capabilities;    /* the FCI advertisement (validated) */
    cz_rule *zones;
    iptable *zone_table;     /* value: index into zones */
    bool uri_hashing;
    double surrogate_max_load;
    long long surrogate_dead_ms;
    int ri_max_age_s;
    const char *last_resort;
    /* names of our own authorities (listeners, surrogates, redirect
     * targets, "reserved_hosts"): a request whose Host is one of them names
     * its content host in the path, never by its Host */
    url_names own_hosts;
    snapshot_holder surrogates; /* surrogate_set */
    _Atomic unsigned long rr;   /* round-robin counter */
    /* surrogate role: this instance registers itself */
    const char *self_id, *self_url, *self_https_url;
    int self_heartbeat_s;
    char key_surrogates[128];
    pthread_t peer_th;
    bool peer_th_started, peer_stop;
    pthread_mutex_t peer_mu;
    pthread_cond_t peer_cv;
    metric_cell *m_two_step;
    metric_cell *m_ri_ok, *m_ri_err, *m_redirects, *m_last_resort, *m_no_surrogate,
        *m_fci_push_ok, *m_fci_push_fail, *m_hb_ok, *m_hb_fail;
    const char **extra_types;
    mi_policy policy;
    /* where we may fetch on anyone's behalf ("egress", plus the upstreams'
     * configured endpoints); the sources of each upstream use its own */
    egress_policy *egress;
    hop_keys us; /* URI signing: upstream tokens checked, surrogate tokens minted */
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

    /* surrogate role (delivery from the cache) */
    bool has_surrogate;
    http_server_conf surrogate_conf;
    cache_conf cache_conf;
    cache *cache;
    atomic_bool cache_open; /* d->cache may be read from other threads */
    bool access_log;
    void (*on_delivery)(void *ud, const delivery_record *r);
    void *on_delivery_ud;
    metric_cell *m_served[3], *m_refused, *m_signed_manifests;
    /* CDNI logging producer (dcdn/logger.c) */
    logger *logger;
    pthread_mutex_t rec_mu;   /* records given back, for reuse */
    delivery_record **rec_free;
    size_t n_rec_free;
    const char *log_dir, *log_origin;
    int log_rotate_s, log_level;
    long long log_rotate_bytes, log_retention_s, log_session_idle_s;
    struct idle_ids *sessions; /* s-sid of requests without a token */
    /* CI/T triggers (dcdn/triggers.c) */
    const char *cit_pid; /* our CDN PID; NULL: no trigger interface */
    long long cit_stale_s, cit_max_bps;
    struct triggers *triggers;
    pthread_t prepo_th;
    bool prepo_started, prepo_stop;
    pthread_mutex_t prepo_mu;
    pthread_cond_t prepo_cv;
    prepo_job *prepo_jobs;
    unsigned long long prepo_seq;
    /* operator status page (dcdn/status.c) */
    const char *ui_dir; /* the page's files; NULL: none */
    static_files ui;
    minute_stats *stats; /* per-minute counters shared in Redis */
};

/* dcdn/triggers.c: CI/T server (peer listener), execution by surrogates */
void triggers_peer_routes(dcdn *d, http_routes *out);
bool triggers_start(dcdn *d);
void triggers_stop(dcdn *d);

/* dcdn/router.c: surrogate selection, RI server (RFC 7975), end-user redirects */
void router_peer_routes(dcdn *d, http_routes *out);
void router_delivery_routes(dcdn *d, http_routes *out);
void router_op_routes(dcdn *d, http_routes *out);
bool router_start(dcdn *d);
void router_stop(dcdn *d);
double router_load(dcdn *d); /* mean load of live surrogates, 0 if none */

/* dcdn/surrogate.c: delivery, the cache's operator API */
void surrogate_routes(dcdn *d, http_routes *out);
void surrogate_op_routes(dcdn *d, http_routes *out);
bool surrogate_start(dcdn *d);
/* For the trigger executor: the cache key of a content URL (and the index
 * of the upstream delivering it); the upstream whose content a key is, or
 * -1; a URL acquired into the cache (bytes; 0: already fresh). */
bool surrogate_key_for_url(dcdn *d, const char *url, int *up_idx, char *key, size_t cap);
int surrogate_upstream_of_key(dcdn *d, const char *key);
int surrogate_upstream_of_url(dcdn *d, const char *url); /* -1: no metadata delivers it */
bool surrogate_prefetch(dcdn *d, const char *url, long long *bytes);
void surrogate_quiesce(dcdn *d);
void surrogate_stop(dcdn *d);
void surrogate_access_log(void *ud, const delivery_record *r);

/* dcdn/logger.c: CDNI logging files (RFC 7937) per upstream, and their
 * Atom feed on the peer listener */
bool logger_start(dcdn *d);
void logger_stop(dcdn *d);
void logger_record(dcdn *d, const delivery_record *r);
/* A record for request r, answered on a listener of that port: start time,
 * client, method, Host and User-Agent filled in; when the request is over
 * it is completed, logged, handed to d->on_delivery and given back.
 * Records are reused (no allocation per request). NULL: out of memory. */
/* Borrowed: given back when the request is over. */
delivery_record *delivery_record_begin(dcdn *d, http_req *r, int port);
/* The record's URIs without the token named package: uri as received and,
 * if content_host is given, u-uri = http://content_host + content_target. */
void delivery_record_uris(delivery_record *rec, const char *uri, const char *content_host, const char *content_target,
                          const char *package);
/* Did the cache outcome serve stored content (s-cached 1)? */
bool delivery_from_cache(const char *outcome);
/* s-sid of the record, once its upstream, client, host and ccid are set:
 * the jti of the token (or session cookie) hr accepted; else a digest of
 * its claims; else, for a request without either, an id that lasts while
 * the same client keeps asking for the same collection (CCID, or host)
 * within logging.session_idle_s. */
void delivery_session(dcdn *d, delivery_record *rec, const hop_result *hr);
void delivery_records_free(dcdn *d);
void logger_peer_routes(dcdn *d, http_routes *out);

/* For the status page: {"open": triggers not final, "triggers": the newest
 * max of them}, NULL if Redis is away (dcdn/triggers.c); the surrogates as
 * /v1/surrogates lists them (router.c); this instance's cache (surrogate.c);
 * per upstream, the log files published and the records not yet in one
 * (logger.c). */
json_t *triggers_in_flight(dcdn *d, size_t max); /* new reference */
json_t *router_surrogates(dcdn *d); /* new reference */
json_t *surrogate_cache_json(dcdn *d); /* new reference */
json_t *logger_status(dcdn *d); /* new reference */

/* dcdn/status.c: GET /v1/status and the status page (operator listener) */
void status_op_routes(dcdn *d, http_routes *out);

/* dcdn/config.c */
bool dcdn_config_load(dcdn *d, const char *file, jerr *e);

/* dcdn/metadata_sync.c */
bool dcdn_sync_start(dcdn *d);
void dcdn_sync_stop(dcdn *d);
void dcdn_sync_kick(dcdn *d, bool from_redis);

/* dcdn/resolve_api.c: resolution, and /v1/metadata/{resolve,status,refresh} */
/* The content's metadata from the upstream that publishes host; *ref goes
 * back to that upstream's snapshot holder. NULL: no upstream does. */
/* Borrowed: d's configuration. */
upstream *dcdn_resolve(dcdn *d, const char *host, const char *target, mi_resolution *res, snap_ref **ref);
/* A request as received: its Host if we deliver that host, else the
 * content host the first path segment carries (ri_host_path). */
typedef struct {
    char host[262];     /* canonical */
    const char *target; /* within the request's target: path?query for that host */
    bool prefixed;      /* the host came from the path */
    size_t prefix_len;  /* then: the bytes of "/<host>" before target */
} dcdn_content;
/* The content's path?query within t, a request target (or the same with
 * its token removed) that resolved to c. */
static inline const char *dcdn_content_path(const dcdn_content *c, const char *t)
{
    return c->prefixed ? t + c->prefix_len : t;
}
/* Is host (canonical) one of our own authorities, by name? */
bool dcdn_own_host(dcdn *d, const char *host);
/* The egress policy the sources of up's metadata are fetched under. */
static inline const egress_policy *dcdn_source_egress(const dcdn *d, const upstream *up)
{
    return up && up->egress ? up->egress : d->egress;
}
upstream *dcdn_resolve_request(dcdn *d, const char *host, const char *target, dcdn_content *c, mi_resolution *res,
                               snap_ref **ref); /* borrowed: d's configuration */
void resolve_api_routes(dcdn *d, http_routes *out);

#endif

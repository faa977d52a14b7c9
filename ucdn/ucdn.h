/* ucdn: the upstream gateway. One context struct, passed everywhere. */
#ifndef UCDN_UCDN_H
#define UCDN_UCDN_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "common/daemon.h"
#include "common/egress.h"
#include "common/http_server.h"
#include "common/metrics.h"
#include "common/minute_stats.h"
#include "common/ratelimit.h"
#include "common/static_files.h"
#include "common/snapshot.h"
#include "common/store.h"
#include "common/url.h"
#include "interfaces/metadata.h"
#include "interfaces/mi_server.h"
#include "signing/hop.h"
#include "ucdn/routing.h"

/* The routing index of the published services, with each host's owner. */
typedef struct {
    mi_host_index *x;
    char **csp; /* csp[i]: owner of x->hosts[i] */
} ucdn_index;

typedef struct {
    json_t *config; /* owns every string below that came from it */
    const char *cdn_id;
    const char *redis_url;
    const char *public_url; /* how dCDNs reach our peer listener */
    bool link_paths;
    int max_age_s;
    const char **extra_types; /* NULL-terminated */
    mi_policy policy;
    /* where we may fetch on anyone's behalf: "egress" plus the origins of
     * the peers' configured URLs (common/egress.h) */
    egress_policy *egress;
    http_tls_client tls_client; /* our side of TLS to every peer, unless its "tls" says otherwise */

    http_server_conf csp_conf, peer_conf, op_conf;
    http_token *csp_tokens, *peer_tokens, *op_tokens;
    size_t n_csp, n_peer, n_op;
    /* per CSP (index of its first csp_tokens entry): what it may write and
     * purge, shared by every instance (common/ratelimit.h) */
    struct csp_limits {
        rl_rule writes, purges;
        metric_cell *m_limited[2];
    } *csp_limits;

    store *store;
    store_sub *sub;
    metrics *metrics;
    metric_cell *m_reloads, *m_reload_errors, *m_services, *m_version, *m_writes;
    snapshot_holder catalog; /* mi_catalog */
    snapshot_holder index;   /* ucdn_index of the same services, for routing */
    mi_server_ctx mi;
    daemon_ops ops;
    pthread_mutex_t reload_mu;
    atomic_bool redis_seen; /* a reload from Redis has succeeded */
    /* the catalog as the reloads found it: the highest version this
     * instance has seen (a lower one later: Redis lost data or was restored
     * from an older copy, when catalog_lost_ms is set), and its size */
    atomic_ullong catalog_max_version;
    atomic_llong catalog_lost_ms;
    atomic_size_t catalog_services;

    /* request routing (issue: FCI, selection, RI) */
    route_peer *peers;
    size_t n_peers;
    route_rule *rules;
    size_t n_rules;
    struct {
        long long hb_timeout_ms;
        const char *client_ip_header;
        iptable *trusted; /* proxies allowed to name the client */
        int redirect_status;
        bool content_hashing;
        long ri_timeout_ms;
        int ri_cache_max_s, ri_retry_after_s, max_hops;
        const char *fallback_url;
        const char *geo_file;
    } rt;
    iptable *geo;          /* client address -> geo record index */
    struct geo_rec {
        char country[3];
        char subdivision[8];
        uint32_t asn;
    } *geo_recs;
    http_server_conf delivery_conf;
    bool has_delivery;
    snapshot_holder routing; /* route_snap */
    store_sub *peer_sub;
    struct ri_cache *ri_cache;
    metric_cell **m_decision; /* [peer * RW__COUNT + why] */
    metric_cell *m_unroutable, *m_fallback, *m_redirects, *m_ri_hit, *m_ri_ok, *m_ri_fail,
        *m_fci_updates, *m_heartbeats, *m_routing_rebuilds;
    char key_fci[128], key_hb[128], peer_channel[128];

    /* URI signing (RFC 9246): CSP tokens checked, our tokens minted per dCDN */
    hop_keys us;
    jwk_set *csp_keys;  /* [i] for csp_tokens[i]; keys.n 0: none */
    struct peer_signing {
        const char *audience; /* aud of the tokens we mint for this dCDN */
        jwk_set key;          /* a key for this dCDN only (shared HS256), or none */
        jws_alg alg;
        hop_profile profile;  /* what its verifier accepts */
    } *peer_sig;

    /* content collections and their manifests (option 3.2) */
    snapshot_holder collections; /* collection_set */
    atomic_size_t n_collections;  /* in the current set: 0 spares the redirect path any lookup */
    store_sub *coll_sub;
    struct mf_cache *mf_cache;
    struct {
        long origin_timeout_ms;
        long long max_bytes;
        long long vod_revalidate_s, stale_grace_s;
    } mf;
    metric_cell *m_manifests;
    char key_collections[128], channel_collections[128];

    /* CDNI logging collection and billing (ucdn/collector.c) */
    struct {
        int poll_s;
        const char *archive_dir; /* verified and quarantined files, or NULL */
        bool require_hash, require_gzip;
        long long max_file_bytes;
    } li;
    struct collector *collector;
    /* CSP purges fanned out as CI/T triggers (ucdn/purges.c) */
    struct {
        const char *cdn_pid; /* ours, in the cdn-path; NULL: no triggers */
        long long retry_max_s;
    } pg;
    struct purges *purges;
    struct ticker *peer_tick; /* peering_start */
    /* operator status page (ucdn/status.c) */
    const char *ui_dir;      /* the page's files; NULL: none */
    static_files ui;
    minute_stats *stats;     /* per-minute counters shared in Redis */

    char key_services[128], key_versions[128], key_svchost[128], key_hosts[128],
        key_version[128], key_history[128], channel[128];
    char key_claims[128], key_claimrefs[128], key_objclaims[128], key_schema[128];
    bool schema_ok; /* the store is in the current schema (ucdn/services.c); under reload_mu */
    /* host names no CSP may publish: our listeners', our public URL's, the
     * peers' endpoints', "reserved_hosts" (canonical, without ports) */
    url_names reserved;
} ucdn;

/* ucdn/config.c */
bool ucdn_config_load(ucdn *u, const char *file, jerr *e);

/* ucdn/services.c: delivery services in Redis, the claims CSP-API objects
 * make, and the catalog built from the services. Ids are the calling
 * CSP's: (csp, id) names one service. */
bool ucdn_reload(ucdn *u);
/* SVC_NOT_DURABLE: Redis took the write but not enough replicas in time
 * (redis.min_replicas_acked): answered 503, never 2xx. */
typedef enum { SVC_OK, SVC_CREATED, SVC_CONFLICT, SVC_PRECONDITION, SVC_NOT_FOUND, SVC_DOWN, SVC_NOT_DURABLE } svc_status;
/* host: canonical (common/url.h). On SVC_CONFLICT, detail says what is taken. */
svc_status ucdn_service_put(ucdn *u, const char *csp, const char *id, const char *host, json_t *service,
                            const char *if_match, long long *version, char *detail, size_t detail_cap);
svc_status ucdn_service_delete(ucdn *u, const char *csp, const char *id, long long *version);
/* New reference to the caller's stored record {"id","csp","host","updated","service"}
 * plus "version"; NULL when the caller has none by that id (*st says
 * whether Redis answered). */
json_t *ucdn_service_get(ucdn *u, const char *csp, const char *id, svc_status *st);
json_t *ucdn_service_list(ucdn *u, const char *csp, svc_status *st); /* new reference */
json_t *ucdn_service_history(ucdn *u, const char *csp, const char *id, svc_status *st); /* new reference */
/* "<csp>~<id>", the key of a CSP's service or collection; false if too long. */
bool ucdn_object_key(const char *csp, const char *id, char *out, size_t cap);
/* Claims ("host:<name>", "ccid:<ccid>", "pid:<purge-id>", "group:<auth group>")
 * a service (its metadata and canonical host) or a collection record makes;
 * new references (JSON arrays of strings). */
json_t *ucdn_service_claims(json_t *service, const char *host);
json_t *ucdn_collection_claims(json_t *rec); /* new reference */
/* A claim as a person reads it: CCID "m1". */
const char *ucdn_claim_text(const char *claim, char *out, size_t cap); /* out */
/* Does csp hold every one of these claims? One round trip; *down when Redis did not answer. */
bool ucdn_claims_owned(ucdn *u, const char *const *claims, size_t n, const char *csp, bool *down);
/* Is the name of this canonical host one nobody may publish (a gateway's,
 * a peer's or a surrogate's own authority)? */
bool ucdn_host_reserved(ucdn *u, const char *host);
/* The Lua functions claims_conflict() and claims_apply() of the claims
 * registry, for scripts of other files that write CSP-API objects. */
extern const char ucdn_claims_lua[];

/* ucdn/peering.c: FCI intake and heartbeats on the peer listener, the
 * routing snapshot rebuilt from Redis. */
void peering_routes(ucdn *u, http_routes *out);
void peering_op_routes(ucdn *u, http_routes *out);
bool peering_reload(ucdn *u); /* rebuild the routing snapshot from Redis */
/* The thread that pulls the advertisement of a peer the store has none of. */
bool peering_start(ucdn *u);
void peering_stop(ucdn *u);
void peering_on_message(const char *msg, void *ud);
route_peer *peer_by_id(ucdn *u, const char *id, size_t *idx); /* borrowed: u's configuration */

/* ucdn/router.c: end-user redirects on the delivery listener, explain. */
void router_routes(ucdn *u, http_routes *out);
void router_op_routes(ucdn *u, http_routes *out);
bool router_init(ucdn *u);
void router_free(ucdn *u);

/* ucdn/collections.c: content collections, manifests served rewritten */
void collections_routes(ucdn *u, http_routes *out);
bool collections_init(ucdn *u);
void collections_free(ucdn *u);
bool collections_reload(ucdn *u);
void collections_on_message(const char *msg, void *ud);
/* Answers a request for a collection's top-level manifest (true), or
 * leaves it to the redirect (false). location: where the redirect would go;
 * peer and its FCI http_target (or NULL) name the dCDN's own request
 * router, for the two-step rewrite the metadata may ask for. */
bool collections_serve(ucdn *u, http_req *r, const char *host, const char *path, bool https,
                       const char *location, const route_peer *peer, const char *http_target,
                       const mi_resolution *res, const hop_result *hr, const struct peer_signing *ps);

/* ucdn/collector.c: CDNI logging feeds polled, files verified and counted
 * once across instances; billing export. */
bool collector_start(ucdn *u);
void collector_stop(ucdn *u);
void collector_csp_routes(ucdn *u, http_routes *out);
void collector_op_routes(ucdn *u, http_routes *out);

/* ucdn/purges.c: CSP purges, invalidations, prepositions -> dCDN triggers */
void purges_routes(ucdn *u, http_routes *out);
bool purges_start(ucdn *u);
void purges_stop(ucdn *u);
/* ucdn/peering.c: each peer as /v1/peers shows it (availability, last
 * heartbeat, load, capabilities, footprints as "type value" texts). */
json_t *peering_peers(ucdn *u); /* new reference */
/* For the status page: {"open": how many requests are open, "requests":
 * the newest max of them}; NULL if the store is away. */
json_t *purges_open(ucdn *u, size_t max); /* new reference */
/* ucdn/collector.c, for the status page: each peer's log collection state
 * and the quarantine ({"peers": [...], "quarantine": [...]}); usage rows of
 * one UTC day (epoch day) grouped by ccid and dcdn. NULL: the store is away. */
json_t *collector_state(ucdn *u); /* new reference */
json_t *collector_usage_day(ucdn *u, long long day); /* new reference */

/* ucdn/status.c: GET /v1/status and the status page (operator listener) */
void status_op_routes(ucdn *u, http_routes *out);

/* ucdn/services.c: the catalog's state for /readyz and the status page,
 * {"services", "version", "state": "ok" | "empty", "lost_at", "note"};
 * false when it was found lost (Redis emptied or older) and is empty. */
bool ucdn_catalog_report(ucdn *u, json_t *into);

/* ucdn/csp_api.c */
void csp_reply_down(http_req *r); /* 503 problem: the store is unreachable, nothing changed */
/* 503 problem with Retry-After: the write is on the Redis master but not yet
 * on redis.min_replicas_acked replicas, so a failover could lose it. */
void csp_reply_not_durable(http_req *r);
/* The calling CSP's rate limit for this kind of request: true when it is
 * over it and was answered 429 with Retry-After. */
typedef enum { CSP_WRITE = 0, CSP_PURGE = 1 } csp_request_class;
bool csp_over_limit(ucdn *u, http_req *r, csp_request_class c);
void csp_api_init(ucdn *u); /* the limits' metrics, once u->metrics exists */
void csp_api_routes(ucdn *u, http_routes *out);

#endif

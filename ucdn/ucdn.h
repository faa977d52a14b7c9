/* ucdn: the upstream gateway. One context struct, passed everywhere. */
#ifndef UCDN_UCDN_H
#define UCDN_UCDN_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "common/daemon.h"
#include "common/http_server.h"
#include "common/metrics.h"
#include "common/snapshot.h"
#include "common/store.h"
#include "interfaces/metadata.h"
#include "interfaces/mi_server.h"

typedef struct {
    json_t *config; /* owns every string below that came from it */
    const char *cdn_id;
    const char *redis_url;
    const char *public_url; /* how dCDNs reach our peer listener */
    bool link_paths;
    int max_age_s;
    const char **extra_types; /* NULL-terminated */
    mi_policy policy;

    http_server_conf csp_conf, peer_conf, op_conf;
    http_token *csp_tokens, *peer_tokens, *op_tokens;
    size_t n_csp, n_peer, n_op;

    store *store;
    store_sub *sub;
    metrics *metrics;
    metric_cell *m_reloads, *m_reload_errors, *m_services, *m_version, *m_writes;
    snapshot_holder catalog; /* mi_catalog */
    mi_server_ctx mi;
    daemon_ops ops;
    pthread_mutex_t reload_mu;
    atomic_bool redis_seen; /* a reload from Redis has succeeded */

    char key_services[128], key_versions[128], key_svchost[128], key_hosts[128],
        key_version[128], key_history[128], channel[128];
} ucdn;

/* ucdn/config.c */
bool ucdn_config_load(ucdn *u, const char *file, jerr *e);

/* ucdn/services.c: delivery services in Redis, and the catalog built from them. */
bool ucdn_reload(ucdn *u);
typedef enum { SVC_OK, SVC_CREATED, SVC_CONFLICT, SVC_PRECONDITION, SVC_NOT_FOUND, SVC_DOWN } svc_status;
svc_status ucdn_service_put(ucdn *u, const char *id, const char *csp, const char *host,
                            json_t *service, const char *if_match, long long *version,
                            char *detail, size_t detail_cap);
svc_status ucdn_service_delete(ucdn *u, const char *id, long long *version);
/* New reference to the stored record {"id","csp","host","updated","service"}
 * plus "version"; NULL when absent (*st says whether Redis answered). */
json_t *ucdn_service_get(ucdn *u, const char *id, svc_status *st);
json_t *ucdn_service_list(ucdn *u, const char *csp, svc_status *st);
json_t *ucdn_service_history(ucdn *u, const char *id, svc_status *st);

/* ucdn/csp_api.c */
#define CSP_API_ROUTES 5
void csp_api_routes(ucdn *u, http_route *out);

#endif

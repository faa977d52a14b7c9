/* RFC 8006 MI server side: the published documents and their handlers.
 *
 * A catalog is the complete, immutable set of MI documents a uCDN serves
 * (HostIndex, one HostMetadata per delivery service, and one PathMetadata
 * per top-level PathMatch when path links are on), each rendered once with
 * its media type and a strong ETag. Requests are answered from the current
 * catalog without touching Redis. */
#ifndef INTERFACES_MI_SERVER_H
#define INTERFACES_MI_SERVER_H

#include <jansson.h>
#include <stdbool.h>

#include "common/http_server.h"
#include "common/snapshot.h"
#include "interfaces/metadata.h"

#define MI_PATH_PREFIX "/mi/v1"

typedef struct {
    const char *id;   /* delivery service id: [A-Za-z0-9._-]{1,64} */
    const char *host; /* HostMatch host */
    json_t *metadata; /* validated HostMetadata object (borrowed) */
} mi_service;

typedef struct mi_catalog mi_catalog;

/* base_url: how peers reach our peer listener ("http://ucdn.example:8081").
 * NULL on out of memory. */
mi_catalog *mi_catalog_build(const mi_service *svcs, size_t n, const char *base_url,
                             bool link_paths, unsigned long long version); /* new: mi_catalog_free */
void mi_catalog_free(void *catalog);
unsigned long long mi_catalog_version(const mi_catalog *c);
size_t mi_catalog_size(const mi_catalog *c);

/* Body, length, media type and ETag of the document at path; false if none. */
bool mi_catalog_get(const mi_catalog *c, const char *path, const char **body, size_t *len,
                    const char **media_type, const char **etag);

typedef struct {
    snapshot_holder *catalog; /* of mi_catalog */
    int max_age_s;            /* Cache-Control max-age on every document */
} mi_server_ctx;

void mi_server_routes(mi_server_ctx *ctx, http_routes *out);

/* A delivery service document as a CSP publishes it:
 * {"host": ..., "metadata": [...], "paths": [...]}, i.e. a HostMatch host
 * and its HostMetadata given inline (no Links). Returns the parsed
 * HostMetadata and, in *hm, a new reference to its JSON; *host borrows
 * from doc. NULL with *e naming the JSON path. */
mi_node *mi_service_parse(json_t *doc, const mi_policy *pol, const char **host, json_t **hm,
                          jerr *e);

/* True when a service id is acceptable in a URL path segment. */
bool mi_service_id_ok(const char *id);

#endif

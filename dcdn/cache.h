/* The surrogate's cache: objects on disk (one file each, a JSON head line
 * then the body), small ones also in memory, an in-process index sharded by
 * key hash, and acquisition in flight ("fills") that concurrent misses
 * share and stream from while the bytes arrive.
 *
 * A fill is done by a pool of acquisition threads (common/http_client,
 * streamed): sources in the order the metadata lists them, the endpoints
 * of one source rotated by key, failover on transport errors and 5xx before any byte
 * went to a client. Only those endpoints are contacted and redirects are
 * not followed, so no request can make the surrogate fetch elsewhere.
 *
 * The body of a fill goes to a temporary file, renamed into place once
 * complete and accepted; a disk that fails mid-way moves the fill to
 * memory and it is served without being stored (bypass), as is anything
 * too large, not storable, or whose collection index cannot be written to
 * Redis (a purge must be able to find every stored object).
 *
 * Eviction is greedy-dual-size-frequency: priority = L + hits / size_kb,
 * L rising to each evicted object's priority; it runs when bytes or object
 * count pass the high watermark and stops under the low one. Memory copies
 * are dropped the same way within their own budget. */
#ifndef DCDN_CACHE_H
#define DCDN_CACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/http_cache.h"
#include "common/http_server.h"
#include "common/egress.h"
#include "common/http_client.h"
#include "common/metrics.h"
#include "common/store.h"

typedef struct {
    const char *dir;
    uint64_t disk_bytes, disk_objects, memory_bytes, memory_object_max, max_object_bytes, bypass_max_bytes;
    uint64_t mapped_bytes, mapped_objects; /* budget of file mappings (disk objects served like memory) */
    double high_water, low_water;
    hc_heuristic heuristic;
    long long stale_if_error_s; /* grace when the response does not say */
    unsigned threads;
    long connect_timeout_ms, stall_timeout_s, timeout_s;
    http_tls_client source_tls; /* https sources are verified: against ca, else the system's CAs */
    store *store;
    char index_prefix[200]; /* "cdni:<cdn>:cache:<surrogate>" */
    metrics *metrics;
} cache_conf;

#define CACHE_MAX_SOURCES 8
typedef struct {
    bool tls;
    char endpoint[262];
    char auth_header[600]; /* "Name: value" from MI.Auth header auth, or "" */
    const egress_policy *egress; /* what this source may be (borrowed, lives as long as the daemon) */
} cache_source;

typedef struct cache cache;
typedef struct cache_fill cache_fill;

/* A body in memory shared by the cache and the responses sending it: a
 * heap copy (the memory tier) or a mapping of the object's file (the page
 * cache serves it; no second copy). */
typedef struct {
    _Atomic int refs;
    size_t len;
    const char *data;
    void *map; /* mmap'd region, or NULL for a heap copy */
    size_t map_len;
    char bytes[];
} cache_blob;
void cache_blob_unref(void *b);

/* What a stored object is (a reference, valid until cache_obj_unref). */
typedef struct cache_obj cache_obj;
typedef struct {
    int status;
    const char *content_type, *headers; /* headers: "Name: value\n" lines to replay */
    const char *etag, *last_modified;
    uint64_t size;
    long long age;  /* now */
    bool fresh, stale_usable; /* stale_usable: within stale-if-error grace (never with must-revalidate) */
    const char *path; /* disk file */
    uint64_t body_offset;
    cache_blob *mem; /* referenced for the caller, or NULL */
} cache_view;

cache *cache_open(const cache_conf *conf); /* new: cache_free */
/* Ends acquisition: queued fills fail, transfers in flight are aborted,
 * whoever waits is woken. Objects stay readable until cache_free. */
void cache_close(cache *c);
void cache_free(cache *c);

/* A reference: cache_obj_unref (and v->mem: cache_blob_unref). */
cache_obj *cache_lookup(cache *c, const char *key, size_t klen, long long now, cache_view *v);
/* A disk object's body mapped (once; kept with the object within the
 * mapping budget): a referenced blob, or NULL (then send the file). */
cache_blob *cache_map(cache *c, cache_obj *o, const cache_view *v); /* a reference: cache_blob_unref */
void cache_obj_unref(cache_obj *o);
/* Removes one object; true if it was there. */
bool cache_remove(cache *c, const char *key, size_t klen);
/* Removes every object whose collection (index "ccid") or purge id ("pid")
 * is value, as the Redis index lists them. -1 if Redis is unreachable. */
long long cache_remove_indexed(cache *c, const char *index, const char *value);
/* Whether the object of key is wanted: up is the upstream CDN its head
 * names, NULL for an object stored before heads named one. Called without
 * any cache lock held. */
typedef bool (*cache_key_filter)(void *ud, const char *key, const char *up);
/* The keys the Redis index lists for a collection or purge id, of objects
 * held here that keep (NULL: all) wants (malloc'd array of malloc'd
 * strings); -1 if Redis is unreachable. */
long long cache_indexed_keys(cache *c, const char *index, const char *value, cache_key_filter keep, void *ud,
                             char ***out);
/* Writes the Redis index (CCID, purge id) of every object held, and a
 * mark that it is there; !force: only when the mark is gone (Redis came
 * back empty or from an older copy). False if Redis is unreachable. */
bool cache_reindex(cache *c, bool force);
/* Every key in the cache now that keep (NULL: all) wants (malloc'd array
 * of malloc'd strings). */
size_t cache_keys(cache *c, cache_key_filter keep, void *ud, char ***out);
/* Triggers (RFC 8007), recorded in the cache directory (fsync'd) before
 * they take effect and applied again at start to the objects stored
 * before them; -1 if the record failed. Invalidate: the objects are
 * revalidated before they are served again, and never served stale
 * meanwhile (objects found). Purge: the objects leave the table and the
 * index at once, their files are unlinked in the background (objects
 * removed). */
long long cache_invalidate(cache *c, const char *const *keys, size_t n, long long now);
long long cache_purge(cache *c, const char *const *keys, size_t n, long long now);

typedef struct {
    const char *key;
    const char *path_query; /* what to ask the source for */
    const cache_source *sources;
    size_t n_sources;
    const char *ccid, *purge_id; /* index entries, may be NULL */
    const char *upstream;        /* the upstream CDN's id, kept in the object's head; may be NULL */
    const char *range;           /* a Range to pass through: the fill is private and not stored */
    cache_obj *revalidate;       /* a stale object to revalidate (reference borrowed) */
} cache_request;

/* Starts the acquisition, or joins one in flight for the same key. A
 * reference the caller gives back with cache_fill_unref. */
cache_fill *cache_acquire(cache *c, const cache_request *q);
/* A new acquisition of what f asked for (its sources, index entries and
 * range; no revalidation), never collapsing onto f, whose answer is known:
 * for a 304 to an object purged since. The caller still holds f. */
cache_fill *cache_reacquire(cache *c, cache_fill *f);
void cache_fill_unref(void *f);

/* The acquisition in flight for key, referenced, or NULL. */
cache_fill *cache_join(cache *c, const char *key); /* a reference: cache_fill_unref */

typedef enum {
    FILL_PENDING,     /* no answer yet */
    FILL_BODY,        /* status and headers known, the body streams */
    FILL_REVALIDATED, /* 304: the stale object is fresh again */
    FILL_FAILED       /* no source answered usefully */
} fill_state;

typedef struct {
    fill_state state;
    int status;          /* FILL_BODY: the source's; FILL_FAILED: 502 or 504 */
    const char *content_type, *headers, *error;
    uint64_t length;     /* HTTP_LEN_UNKNOWN if the source did not say */
    bool stored;         /* it is being stored */
} fill_head;

/* FILL_PENDING: r is parked until the head is known (then the handler runs
 * again, http_parked_state giving park_state). Otherwise the head is copied to *h (strings valid while the fill
 * is referenced). */
fill_state cache_fill_head(cache_fill *f, http_req *r, void *park_state, fill_head *h);
/* An http_stream_read over the fill's body from byte off on. */
long long cache_fill_read(cache_fill *f, http_stream *s, uint64_t pos, char *out, size_t max);

/* The whole body of a fill that has its head (FILL_BODY), once it is
 * complete: its length, with a malloc'd copy in *out; -2 while it is not
 * complete (r is parked until more arrives, then the handler runs again);
 * -1 if it failed or is longer than max. */
long long cache_fill_body(cache_fill *f, http_req *r, void *park_state, size_t max, char **out);

/* Fetch into the cache without a client (preposition); blocks until done.
 * Bytes acquired (0: already fresh), -1 on failure. */
long long cache_prefetch(cache *c, const cache_request *q);

typedef struct {
    uint64_t objects, bytes, mem_objects, mem_bytes, map_objects, map_bytes, fills;
} cache_stats;
void cache_get_stats(cache *c, cache_stats *s);

#endif

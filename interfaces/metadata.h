/* CDNI Metadata (RFC 8006): object model, codec, validation, resolution.
 *
 * The tree HostIndex -> HostMatch -> HostMetadata -> PathMatch ->
 * PathMetadata -> PathMatch ... is held as parsed structs; the
 * GenericMetadata values keep their jansson form (validated for every
 * standard type) so they serialize back unchanged. HostMetadata and
 * PathMetadata have the same shape (metadata + paths) and share mi_node.
 *
 * Resolution is the hot path: mi_index_build() turns each node's PathMatch
 * list into a trie over the patterns' literal prefixes, so finding the
 * first matching PathMatch (RFC 8006 §4.1.4: in order, first match wins)
 * tests only patterns that could match, and allocates nothing.
 *
 * Everything is pure: no I/O. Ownership: mi_*_free frees a whole subtree;
 * resolution results borrow from the index they were resolved in. */
#ifndef INTERFACES_METADATA_H
#define INTERFACES_METADATA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/glob.h"
#include "common/jcheck.h"

#define MI_MAX_DOC (16u << 20) /* bytes of one MI document */
#define MI_MAX_DEPTH 16        /* nested PathMetadata levels */
#define MI_MAX_OBJECTS 64      /* GenericMetadata per node, and effective */
#define MI_MEDIA_TYPE_PREFIX "application/cdni; ptype="

typedef struct {
    const char *const *extra_types; /* understood beyond the standard set; NULL-terminated or NULL */
    bool refuse_unknown_mandatory;  /* publisher side: refuse, instead of marking unservable */
} mi_policy;

typedef struct {
    char *type;   /* generic-metadata-type */
    json_t *value; /* generic-metadata-value (owned reference) */
    bool mandatory_to_enforce, safe_to_redistribute, incomprehensible;
    uint8_t present; /* which of the three flags the document stated (bits 0..2) */
    bool understood;
    bool blocks; /* mandatory-to-enforce and not enforceable here */
} mi_generic;

typedef struct {
    char *pattern;
    bool case_sensitive, case_sensitive_present;
    bool has_ignore_qs; /* "ignore-query-string" present */
    char **ignore_qs;
    size_t n_ignore_qs;
    uint16_t *prog; /* compiled: 0..255 literal byte, MI_GLOB_ONE, MI_GLOB_ANY */
    size_t prog_len;
} mi_pattern;
#define MI_GLOB_ONE GLOB_ONE
#define MI_GLOB_ANY GLOB_ANY

typedef struct mi_node mi_node;

typedef struct {
    char *href;      /* Link (RFC 8006 §4.3.1) in place of the object, or NULL */
    char *link_type; /* optional "type" of the Link */
} mi_link;

typedef struct {
    mi_pattern pattern; /* path-pattern */
    mi_node *node;      /* path-metadata; NULL while only linked */
    mi_link link;
} mi_path_match;

typedef struct mi_path_index mi_path_index;

struct mi_node { /* HostMetadata or PathMetadata */
    mi_generic *md;
    size_t n_md;
    mi_path_match *paths;
    size_t n_paths;
    mi_path_index *index;
};

typedef struct {
    char *host; /* canonical (common/url.h: lower case, no default port, A-labels) */
    mi_node *node;
    mi_link link;
} mi_host_match;

typedef struct {
    mi_host_match *hosts;
    size_t n_hosts;
    uint32_t *table; /* open-addressing host table, built by mi_index_build */
    size_t table_size;
} mi_host_index;

/* --- codec --------------------------------------------------------------- */
/* Parse (length-bounded) and validate; NULL with *e naming the JSON path. */
/* New: mi_host_index_free. */
mi_host_index *mi_host_index_parse(const char *buf, size_t len, const mi_policy *pol, jerr *e);
mi_node *mi_node_parse(const char *buf, size_t len, const mi_policy *pol, jerr *e); /* new: mi_node_free */
/* New: mi_host_index_free. */
mi_host_index *mi_host_index_from_json(json_t *v, const char *path, const mi_policy *pol, jerr *e);
mi_node *mi_node_from_json(json_t *v, const char *path, const mi_policy *pol, jerr *e); /* new: mi_node_free */
/* Validate one GenericMetadata value of a known type (false if unknown type
 * is not an error: returns true and sets *known = false). */
bool mi_value_check(const char *type, json_t *value, const char *path, bool *known, jerr *e);
bool mi_type_is_standard(const char *type);
/* Can (name, value) be sent to a source as acquisition-auth
 * (CDNIGW.HeaderAuth)? Not a header that frames or routes the request
 * (Host, Content-Length, Transfer-Encoding, Connection, Range, If-*,
 * Proxy-*, ...), nor a value with a control character. */
bool mi_auth_header_ok(const char *name, const char *value);

/* New references. */
json_t *mi_host_index_to_json(const mi_host_index *x);
json_t *mi_node_to_json(const mi_node *n); /* new reference */
json_t *mi_generic_to_json(const mi_generic *g); /* new reference */
json_t *mi_pattern_to_json(const mi_pattern *p); /* new reference */

void mi_host_index_free(mi_host_index *x);
void mi_node_free(mi_node *n);

/* --- PatternMatch ---------------------------------------------------------- */
/* Does target (path with optional "?query") match? Applies case-sensitive
 * and ignore-query-string as RFC 8006 §4.1.5 says. */
bool mi_pattern_match(const mi_pattern *p, const char *target, size_t len);
bool mi_pattern_compile(mi_pattern *p, const char *path, jerr *e);

/* --- resolution ------------------------------------------------------------ */
/* Builds host table and path tries for the whole tree. All Links must have
 * been replaced by their objects first. false on out of memory. */
bool mi_index_build(mi_host_index *x);

typedef struct {
    const mi_host_match *host;
    const mi_generic *effective[MI_MAX_OBJECTS];
    size_t n_effective;
    const mi_pattern *matched[MI_MAX_DEPTH]; /* the PathMatch chain, outermost first */
    size_t depth;
    const mi_generic *blocking; /* set: content must not be served (RFC 8006 §3.4) */
} mi_resolution;

typedef enum { MI_RESOLVED = 0, MI_NO_HOST, MI_UNLINKED } mi_resolve_status;

/* host: Host header value (port optional); target: path and query as
 * received. Allocation-free. */
mi_resolve_status mi_resolve(const mi_host_index *x, const char *host, size_t host_len,
                             const char *target, size_t target_len, mi_resolution *out);

/* The generic-metadata-value of the effective object of that type, or NULL. */
json_t *mi_effective_value(const mi_resolution *r, const char *type); /* borrowed from r */

/* --- enforcement (the delivering CDN's side) -------------------------------- */

/* What is known of a request when the ACLs are checked. */
typedef struct {
    unsigned char ip[16]; /* the end user: IPv4 in the first 4 bytes unless v6 */
    bool v6;
    long long now;        /* seconds since the epoch */
    const char *protocol; /* "http/1.1", "https/1.1" */
} mi_facts;

typedef enum {
    MI_ACL_ALLOW = 0,
    MI_ACL_LOCATION,     /* denied by MI.LocationACL */
    MI_ACL_TIME,         /* denied by MI.TimeWindowACL */
    MI_ACL_PROTOCOL,     /* denied by MI.ProtocolACL */
    MI_ACL_UNENFORCEABLE /* a mandatory-to-enforce ACL needs facts we lack (asn, country) */
} mi_acl_verdict;

/* The logical AND of the effective ACLs (RFC 8006 §4.2.2-4.2.4): in each,
 * the first rule that matches decides; a list present but matched by no
 * rule denies; an absent list allows. Footprints we cannot evaluate
 * (asn, countrycode: no geolocation here) never match; if one stood before
 * the deciding rule of a mandatory-to-enforce ACL, the verdict is
 * MI_ACL_UNENFORCEABLE. Allocation-free. */
mi_acl_verdict mi_acl_check(const mi_resolution *r, const mi_facts *f);
const char *mi_acl_reason(mi_acl_verdict v); /* static text */

/* The cache key of a request under MI.Cache (RFC 8006 §4.2.6): the
 * content's host as its HostMatch holds it (canonical: lower case, a port
 * only when not a default one), the path (only what the wildcards of
 * "exclude-path-pattern" match, when it matches), and the query
 * parameters "include-query-strings" names (case-insensitive, in its order,
 * repeated ones aggregated) or, without it, all of them but those
 * "exclude-query-strings" names. Parameters named in drop (NULL-terminated,
 * e.g. the URI-signing package attribute) never count. false if the key
 * does not fit cap. */
bool mi_cache_key(const mi_resolution *r, const char *target, size_t target_len, const char *const *drop, char *out,
                  size_t cap, size_t *out_len);

#endif

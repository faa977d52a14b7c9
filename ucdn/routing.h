/* ucdn request routing: which dCDN gets an end user's request.
 *
 * The decision (route_select) is pure: it reads a routing snapshot (every
 * dCDN's FCI advertisement, its footprints in one prefix table) plus the
 * live peer state (heartbeats), and never touches Redis or the network.
 * Order of the decision, for each configured dCDN:
 *   1. enabled, has advertised capabilities;
 *   2. footprint covers the client (prefixes by longest-prefix match, then
 *      asn/countrycode/subdivisioncode from the geo table); a dCDN that
 *      advertises no footprint at all covers everyone;
 *   3. capabilities that apply at the client's footprint satisfy the
 *      request: delivery protocol for the scheme, every mandatory-to-enforce
 *      metadata type of the content, a redirection mode we can use (HTTP-R
 *      with an RI endpoint, or HTTP-I with a redirect target);
 *   4. available (heartbeat within the timeout) and under its load limit;
 *   5. the first policy rule matching host/path/content type/footprint may
 *      restrict (only), exclude or prefer dCDNs.
 * Eligible dCDNs are ranked by (rule preference, priority, most specific
 * matching prefix); among the best equals, weight decides: weighted random,
 * or weighted rendezvous hashing of the URI when content hashing is on (the
 * same URI goes to the same dCDN while that dCDN stays eligible). */
#ifndef UCDN_ROUTING_H
#define UCDN_ROUTING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/http_client.h"
#include "common/iptable.h"
#include "common/tls.h"
#include "interfaces/fci.h"
#include "interfaces/footprint.h"
#include "interfaces/metadata.h"

#define ROUTE_MAX_PEERS 64
#define ROUTE_MAX_CAPS_PER_PEER 256

typedef struct {
    const char *id;
    const char *token;        /* what the dCDN presents at our peer listener (NULL: cert only) */
    tls_peer_id cert;         /* its client certificate there; has none named: token only */
    bool has_cert;
    http_tls_client tls;      /* our side of TLS to its endpoints */
    const char *ri_url;       /* its RI endpoint (HTTP-R), or NULL */
    const char *ri_token;     /* what we present there (RI and FCI pull) */
    const char *fci_url;      /* where we can pull its advertisement, or NULL */
    const char *li_feed_url;  /* its CDNI logging feed (RFC 7937), or NULL */
    const char *ci_url;       /* its CI/T trigger collection (RFC 8007), or NULL */
    const char *delivery_url; /* HTTP-I target base, overrides FCI.RedirectTarget */
    long long priority;       /* lower wins */
    long long weight;         /* among equals */
    double max_load;          /* heartbeat load above this: not used */
    bool enabled;
    uint64_t id_hash;
    /* live state, written by the heartbeat subscriber */
    _Atomic long long last_hb_ms; /* wall clock; 0: never */
    _Atomic uint32_t load_milli;
    _Atomic long long ri_down_until_ms; /* RI circuit breaker */
    _Atomic long long auto_pull_ms; /* when the uCDN last pulled its advertisement unasked */
} route_peer;

enum { CT_HLS = 1, CT_DASH = 2, CT_SEGMENT = 4, CT_OTHER = 8 };

typedef struct {
    const char *host;    /* exact, case-insensitive; NULL: any */
    const char *path;    /* fnmatch(3) glob on the path; NULL: any */
    unsigned content_types; /* CT_* bits; 0: any */
    footprint *fps;      /* narrowing list; none: any client */
    size_t n_fps;
    const char **only, **exclude, **prefer; /* NULL-terminated peer ids, or NULL */
} route_rule;

typedef struct {
    route_peer *peers; /* borrowed from the daemon context */
    size_t n_peers;
    fci_set **fci;     /* per peer; NULL when none advertised */
    struct route_cap {
        uint32_t peer;
        const fci_capability *c;
        int anchor; /* index of the footprint in the prefix table, or -1 */
    } *caps;
    size_t n_caps;
    uint32_t *cap_first, *cap_count; /* per peer */
    bool *has_fp;                    /* per peer: advertises any footprint */
    iptable *prefixes;               /* value: cap index */
    uint32_t *scan;                  /* footprinted caps without a prefix anchor */
    size_t n_scan;
    size_t n_prefixes;
} route_snap;

/* Builds the snapshot; takes ownership of fci[] (the array and each set). */
route_snap *route_snap_build(route_peer *peers, size_t n, fci_set **fci); /* new: route_snap_free */
void route_snap_free(void *snap);

typedef enum {
    RW_SELECTED,
    RW_RANKED_LOWER,
    RW_DISABLED,
    RW_NO_FCI,
    RW_NOT_COVERED,
    RW_DELIVERY_PROTOCOL,
    RW_METADATA,
    RW_REDIRECTION_MODE,
    RW_UNAVAILABLE,
    RW_OVERLOADED,
    RW_RULE_EXCLUDED,
    RW_RI_FAILED,
    RW__COUNT
} route_why;

const char *route_why_name(route_why w); /* static text */

typedef struct {
    route_why why;
    const char *missing; /* the capability or metadata type lacking */
    unsigned plen;       /* most specific matching prefix length */
    bool covered;
    unsigned modes;      /* FCI_* redirection modes applying here */
    const char *http_target; /* applicable FCI.RedirectTarget http-target */
    int pref;            /* position in the rule's prefer list, INT32_MAX if none */
    bool use_ri;         /* chosen mode is HTTP-R */
} route_eval;

typedef struct {
    bool https;
    const char *host;
    const char *path;    /* path only, for rules */
    fp_client client;
    unsigned content_type;
    uint64_t uri_hash;   /* for content hashing */
    bool content_hashing;
    const mi_resolution *res;
    uint64_t exclude;    /* peers to skip (bit per peer index), e.g. RI failed */
    long long now_ms, hb_timeout_ms;
    uint64_t random;     /* for weighted random choice */
} route_req;

/* Returns the chosen peer index or -1. ev[] gets one entry per peer; *rule
 * the index of the policy rule that applied, or -1. */
int route_select(const route_snap *s, const route_rule *rules, size_t n_rules,
                 const route_req *q, route_eval *ev, int *rule);

unsigned route_content_type(const char *path, size_t len);
uint64_t route_hash(const void *p, size_t n); /* FNV-1a 64 */

#endif

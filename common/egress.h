/* Egress policy: where a daemon may send a request on someone's behalf.
 *
 * Every outbound request (origins and sources, MI/FCI/RI/CI/LI URLs, the
 * links in documents peers send) passes it twice: the URL before anything
 * is sent (http or https, no userinfo, a host in canonical form), then
 * each address the host resolves to, when libcurl opens the socket, so the
 * address checked is the one connected to and a name that answers with a
 * public address first and an internal one later (DNS rebinding) gains
 * nothing. Special-purpose addresses (egress_special) are refused unless
 * an allow entry names them; an IPv4 address inside an IPv4-mapped,
 * IPv4-compatible, NAT64 or 6to4 IPv6 address counts as itself.
 *
 * Allow entries: an address or prefix ("10.1.0.0/16", "192.0.2.7",
 * "[2001:db8::1]", "[fd00::/8]") or a host name ("origin.example"), each
 * with an optional ":port" that narrows it to one port. A name entry lets
 * a URL with that host reach whatever the name resolves to: the operator
 * vouches for the name. Public addresses are allowed unless the policy
 * says allow_public false (then only the entries are).
 *
 * A policy is built at start-up and read-only afterwards: share it among
 * threads freely. */
#ifndef COMMON_EGRESS_H
#define COMMON_EGRESS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/iptable.h"
#include "common/jcheck.h"

typedef struct egress_policy egress_policy;

egress_policy *egress_new(bool allow_public); /* new: egress_free */
void egress_free(egress_policy *p);
/* One allow entry (above); false with the reason in why on a bad one. */
bool egress_allow(egress_policy *p, const char *entry, char *why, size_t cap);
/* The origin of an absolute http(s) URL the operator configured (a peer's
 * endpoint): its host and effective port are allowed. false: not such a URL. */
bool egress_allow_origin(egress_policy *p, const char *url);

/* "egress": {"allow": [entries], "allow_public": true} at path in a
 * daemon's config (absent: public addresses only). New policy, or NULL
 * with e naming the bad entry. */
egress_policy *egress_from_json(json_t *v, const char *path, jerr *e);

typedef enum {
    EGRESS_OK = 0,
    EGRESS_BAD_URL,     /* not an absolute URL with a canonical host */
    EGRESS_SCHEME,      /* not http or https */
    EGRESS_USERINFO,    /* credentials in the URL */
    EGRESS_ADDRESS,     /* a special-purpose address no entry allows */
    EGRESS_NOT_ALLOWED, /* public addresses are off and no entry names it */
} egress_verdict;
const char *egress_verdict_text(egress_verdict v); /* static text */

/* What a URL asks for, once checked. */
typedef struct {
    char host[256]; /* canonical, without the port ("[::1]" for IPv6) */
    int port;       /* effective: 80 or 443 when the URL gives none */
    bool https;
    bool named;     /* a name entry covers (host, port): any address goes */
} egress_target;

egress_verdict egress_check_url(const egress_policy *p, const char *url, size_t len, egress_target *t);
egress_verdict egress_check_addr(const egress_policy *p, const egress_target *t, const ipt_addr *a);

/* The class of a special-purpose address ("loopback", "private",
 * "link-local", "unique-local", "shared (CGNAT)", "multicast",
 * "unspecified", "documentation", "benchmarking", "reserved", ...), or
 * NULL for a public one. */
const char *egress_special(const ipt_addr *a); /* static text */

/* --- libcurl ------------------------------------------------------------------
 * egress_curl() checks url and makes every socket the handle opens for it
 * pass egress_check_addr (CURLOPT_OPENSOCKETFUNCTION: nothing is even
 * connected to), and the connection a request is sent on too, new or
 * reused (CURLOPT_PREREQFUNCTION: a connection another policy let open is
 * not used); proxies from the environment are not used (a proxy's address
 * is not the target's). g is
 * the caller's and must live as long as the transfer; after a failed
 * transfer, g->verdict says whether the policy refused an address. */
typedef struct {
    const egress_policy *policy;
    egress_target target;
    egress_verdict verdict;
    char why[200];
} egress_guard;

egress_verdict egress_curl(void *curl, const egress_policy *p, const char *url, egress_guard *g); /* a CURL * */

#endif

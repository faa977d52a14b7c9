/* The authorize phase of a delivery request: one function for the uCDN's
 * request router, the dCDN's request router and its surrogates.
 *
 * It runs after the request target was made canonical (common/url.h) and
 * its metadata resolved, and before anything is routed, served, cached or
 * acquired. In order:
 *   1. a mandatory-to-enforce object this CDN cannot enforce makes the
 *      content unservable (RFC 8006 §3.4);
 *   2. URI signing (RFC 9246 §4.4) where MI.UriSigning is in effect: a
 *      signed JWT from a trusted issuer whose cdniuc covers the canonical
 *      URI, or a session cookie of ours for the content's collection
 *      (RFC 6983 §5.4);
 *   3. the metadata's ACLs (RFC 8006 §4.2.2-4.2.4), where the caller
 *      delivers the content itself (facts given).
 * A session cookie names its collection scoped to the tenant the content
 * belongs to (the owner CSP at a uCDN, the upstream CDN at a dCDN), so a
 * cookie one tenant's viewer was given never opens another tenant's
 * content, whatever CCID or host either chose. */
#ifndef SIGNING_AUTHORIZE_H
#define SIGNING_AUTHORIZE_H

#include <stdbool.h>

#include "interfaces/metadata.h"
#include "signing/hop.h"

typedef struct {
    const char *scheme;       /* "http" or "https", as the client used */
    const char *host;         /* the Host, canonical (the URI the token covers is scheme://host+target) */
    const char *target;       /* canonical path?query */
    const char *cookie;       /* Cookie header, or NULL */
    const char *client_ip;    /* text */
    long long now;
    const char *tenant;       /* whose content: scopes session cookies */
    const char *content_host; /* the content's HostMatch host (the collection when there is no CCID) */
    const mi_facts *acl;      /* the request's facts when ACLs are enforced here; NULL: not here */
} authz_request;

typedef enum {
    AUTHZ_ALLOWED = 0,
    AUTHZ_UNSERVABLE, /* a mandatory-to-enforce object we do not understand */
    AUTHZ_UNSIGNED,   /* no valid token or session cookie (the log says why) */
    AUTHZ_ACL,        /* an ACL denies it */
} authz_verdict;

/* hr gets what hop_check gives (method, code, the target without the
 * token, the claims for the next hop's token, Set-Cookie values); free it
 * with hop_result_free whatever the verdict. The decision is counted and a
 * refusal logged, with the token removed from the logged target.
 * detail: a short reason fit for the client (never the token's). */
authz_verdict authz_check(const hop_keys *k, const us_trust *trust, size_t n_trust, const mi_resolution *res,
                          const authz_request *q, hop_result *hr, const char **detail);

/* The content's choice of session authorization (CDNIGW.HASManifest
 * "session-auth"), or HOP_SESSION_DEFAULT. */
hop_session authz_session_auth(const mi_resolution *res);

/* The collection a session cookie names: "<tenant>/c/<ccid>" or, without
 * a CCID, "<tenant>/h/<content host>". */
void authz_collection(const char *tenant, const char *ccid, const char *content_host, char *out, size_t cap);

#endif

/* URI signing at one CDN hop: what a request router does with a request
 * for content whose metadata carries MI.UriSigning (RFC 9246 §4.4).
 *
 *   enforce false, or no MI.UriSigning: nothing to check (HOP_OPEN); any
 *     token in the URI travels on untouched.
 *   otherwise the request must carry a signed JWT from a trusted issuer
 *     (HOP_TOKEN), or a session cookie of ours for the content's collection
 *     (HOP_COOKIE, RFC 6983 §5.4); the token is removed from the target,
 *     and hop_next_location() signs a fresh one, with our key, for the next
 *     hop (the dCDN, or a surrogate), so that no CDN needs the secret of the
 *     one before it.
 *   A token asking for renewal by cookie (cdnistt 1) gets a renewed token
 *     in a Set-Cookie on our answer; by query (cdnistt 2, for redirects
 *     across domains) the token in our Location is the renewed one, expiring
 *     cdniets seconds from now; an authorized top-level manifest gets a
 *     session cookie when session cookies are on.
 *
 * The result carries the RFC 9246 verification code and the method, for
 * the CDNI log; the reason is for the operational log only. */
#ifndef SIGNING_HOP_H
#define SIGNING_HOP_H

#include <jansson.h>
#include <stdbool.h>

#include "common/metrics.h"
#include "common/store.h"
#include "signing/cookie_auth.h"
#include "signing/uri_signing.h"

/* How the later requests of a session are authorized (RFC 6983 options
 * 5.4 and 5.6): by the session cookie alone (cookie), by a token on every
 * URI of the manifests this CDN serves and no cookie (query), or both, the
 * default. CDNIGW.HASManifest "session-auth" chooses per content, else the
 * configuration's "session_auth". */
typedef enum { HOP_SESSION_DEFAULT = 0, HOP_SESSION_BOTH, HOP_SESSION_COOKIE, HOP_SESSION_QUERY } hop_session;
const char *hop_session_name(hop_session s); /* static text */
/* "both", "cookie", "query"; HOP_SESSION_DEFAULT for anything else */
hop_session hop_session_from_name(const char *s);

typedef struct {
    const char *cdn_id;  /* the aud we answer to; our session cookies' iss and aud */
    const char *issuer;  /* iss of the tokens we mint */
    const jwk *key;      /* our signing key (EC private, or oct) */
    jws_alg alg;
    const jwk_set *own_keys;  /* our key as a set, to check our own cookies */
    const jwk_set *enc_keys;  /* JWE keys for an encrypted cdniip, or NULL */
    long skew_s;
    long session_ttl_s;       /* session cookies on top-level manifests; 0: off */
    bool bind_client;         /* session cookies bound to the client address */
    us_jti_fn jti_fresh;      /* one-time tokens; NULL: tokens with jti are refused */
    void *jti_ctx;
    hop_session session_auth; /* DEFAULT: both */
} hop_conf;

typedef enum { HOP_OPEN, HOP_TOKEN, HOP_COOKIE } hop_method;
const char *hop_method_name(hop_method m); /* static text */

typedef struct {
    const char *scheme;    /* "http" or "https" as the client used */
    const char *host;      /* Host header */
    const char *target;    /* path?query as received */
    const char *cookie;    /* Cookie header or NULL */
    const char *client_ip; /* text */
    long long now;
    json_t *policy;        /* the MI.UriSigning value in effect, or NULL */
    const char *collection;/* CCID of MI.Grouping, or NULL (then the host is the collection) */
    bool top_manifest;     /* an HLS or DASH manifest: may start a session */
    hop_session session_auth; /* the content's choice; DEFAULT: the configuration's */
} hop_request;

typedef struct {
    bool allowed;
    hop_method method;
    us_code code;           /* US_NOT_CHECKED when open, US_VERIFIED when allowed */
    char reason[300];       /* operational log */
    char *target;           /* path?query without the token; NULL: unchanged */
    json_t *claims;         /* what the next hop's token is made from */
    char *set_cookie[2];    /* Set-Cookie values for our answer (renewal, session) */
    char package[US_PACKAGE_MAX];
    char *token;            /* the verified token as the URI's query carried it, when it may be
                             * attached again as it is (no jti, no renewal); else NULL */
    hop_session session_auth; /* in effect for this request (never DEFAULT when allowed) */
} hop_result;

/* trust: the upstream's (or the owner CSP's) keys, at most HOP_MAX_TRUST
 * entries; our own keys are added for the tokens we renewed. */
#define HOP_MAX_TRUST 8
bool hop_check(const hop_conf *c, const us_trust *trust, size_t n_trust, const hop_request *rq,
               hop_result *out);
void hop_result_free(hop_result *r);

/* The playback session a request belongs to, from the claims that
 * authorized it: the "sid" of our session cookie (the session its
 * manifest's token started), else the token's jti, else a digest of its
 * claims (every request of one session token shares them). "" when none. */
#define HOP_SID_MAX 80
void hop_session_id(const json_t *claims, char *out, size_t cap);

/* What the next hop's verifier accepts (peers[].uri_signing.profile):
 *   RFC9246  everything RFC 9246 defines (the default);
 *   ATS      Apache Traffic Server's uri_signing plugin (9.2): cdniuc only
 *            as a regex (a URL's own token: the regex of exactly that URL
 *            with any query), and no jti, cdniip, cdnicrit, cdnistd other
 *            than 0 or cdnistt 2 (the renewed expiry is minted instead);
 *            claims it does not know (sid) it ignores, so they stay. */
typedef enum { HOP_PROFILE_RFC9246 = 0, HOP_PROFILE_ATS } hop_profile;
/* "rfc9246", "ats"; -1 for anything else */
int hop_profile_from_name(const char *s);

/* location (absolute, without a token) with a token for next_aud added in
 * the query under the policy's package name; malloc'd, NULL on failure.
 * key NULL: our own key. The new token's cdniuc: the hash of location,
 * or, when the token we accepted had a regex (a session token), a regex
 * for location's directory on the next host - the host changes at every
 * hop, so the upstream regex cannot be kept. */
char *hop_next_location(const hop_conf *c, const jwk *key, jws_alg alg, hop_profile prof, const hop_result *r,
                        const char *next_aud, const char *location, long long now);

/* The token alone; dir_scope: cdniuc is always the regex of location's
 * directory (one token for every URI of a rewritten manifest), and no jti.
 * Every token minted carries the playback session's id as "sid" (unless
 * it keeps a jti, which names the session), so each hop logs one id. */
char *hop_next_token(const hop_conf *c, const jwk *key, jws_alg alg, hop_profile prof, const hop_result *r,
                     const char *next_aud, const char *location, bool dir_scope, long long now); /* new: free */

/* A published metadata tree made ready for the next CDN when we re-sign:
 * every MI.UriSigning object names us as its only issuer and loses its
 * jwt-header (our tokens carry their header). Changes doc in place. */
void hop_policy_for_peers(json_t *doc, const char *our_issuer);

/* --- configuration shared by both gateways ---------------------------------

 * "uri_signing": {
 *   "issuer": "ucdn-a",              iss of what we mint (default: cdn_id)
 *   "signing_key": "keys/me.jwk",    our private EC P-256 key, or an oct secret
 *   "enc_keys": "keys/enc.jwks",     JWE "dir" keys for encrypted cdniip
 *   "clock_skew_s": 0,               leeway on exp and nbf (RFC 9246 wants 0)
 *   "session_cookie_s": 0,           session cookies (RFC 6983 §5.4), 0 = off
 *   "session_auth": "both",          cookie, query (tokens on manifest URIs) or both
 *   "bind_client": false,            session cookies bound to the client address
 *   "jti_max_ttl_s": 86400           how long a one-time token without exp
 * }                                    stays remembered
 * Files are read relative to the working directory. */

typedef struct {
    bool present;
    hop_conf conf;
    jwk key;
    jwk_set own;
    jwk_set enc;
    struct hop_jti {
        store *store;
        char prefix[160];
        long long max_ttl_s;
    } jti;
    metric_cell *m_token, *m_cookie, *m_refused; /* cdni_uri_signing_total */
} hop_keys;

bool hop_keys_parse(json_t *root, const char *cdn_id, hop_keys *out, jerr *e);
/* one-time tokens remembered in Redis (SET NX EX), refused when Redis is away */
bool hop_keys_jti_store(hop_keys *k, const char *redis_url, const char *cdn_id);
void hop_keys_free(hop_keys *k);

/* cdni_uri_signing_total{result,method} in m; then hop_record() counts one
 * decision and logs a refusal (code, method, reason) for the operator. */
void hop_keys_metrics(hop_keys *k, metrics *m);
void hop_record(const hop_keys *k, const hop_result *r, const char *client, const char *host,
                const char *path);

/* A JWK Set file named at path (for trusted keys of peers and CSPs). */
bool hop_trust_load(const char *file, const char *path, jwk_set *out, jerr *e);

#endif

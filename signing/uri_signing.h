/* URI Signing (RFC 9246): finding the signed JWT in a request, checking
 * every claim, and minting the tokens a CDN hands on (next hop, renewal).
 *
 * Pure decisions: the caller gives the request (absolute URI, Cookie
 * header, client address, time), the trusted keys and a one-time-token
 * store callback; the result carries the RFC 9246 verification code
 * (Table 4: 200 verified, 400 signature ... 411 URI container, 500
 * malformed URI), which is what the CDNI log's s-uri-signing field takes,
 * and a reason for the operational log. Clients only ever see 403.
 *
 * Order of checks: the token is located and its signature verified with a
 * key of the claimed issuer before any claim is believed; then cdniv,
 * cdnicrit, iss, aud, exp, nbf, the cdnistt/cdniets pair, cdniip, cdniuc
 * (regular expressions run only on authenticated tokens, as §2.1.15.2
 * recommends); jti last, so that a token refused for another reason does
 * not use up its one-time nonce.
 *
 * A token that verified once is remembered per thread (signature and
 * parsed claims only; every claim is checked again on each request), so
 * the chunks of a session cost no MAC and no JSON parse. */
#ifndef SIGNING_URI_SIGNING_H
#define SIGNING_URI_SIGNING_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/jcheck.h"
#include "signing/jwk.h"
#include "signing/jws.h"

#define US_DEFAULT_PACKAGE "URISigningPackage"
#define US_PACKAGE_MAX 64

typedef enum {
    US_NOT_CHECKED = 0,
    US_VERIFIED = 200,
    US_BAD_SIGNATURE = 400,
    US_BAD_ISSUER = 401,
    US_BAD_SUBJECT = 402,
    US_BAD_AUDIENCE = 403,
    US_EXPIRED = 404,
    US_NOT_YET_VALID = 405,
    US_RENEWAL_PAIR = 406,
    US_REPLAYED = 407,
    US_BAD_VERSION = 408,
    US_BAD_CRITICAL = 409,
    US_BAD_CLIENT_IP = 410,
    US_BAD_URI_CONTAINER = 411,
    US_MALFORMED_URI = 500,
} us_code;

/* MI.UriSigning (RFC 9246 §4.4). */
typedef struct {
    bool enforce;                 /* default true */
    char **issuers;               /* empty: any issuer with a trusted key */
    size_t n_issuers;
    char package[US_PACKAGE_MAX]; /* default URISigningPackage */
    char *jwt_header;             /* base64url header for tokens sent without one, or NULL */
} us_policy;

/* value: the generic-metadata-value object. */
bool us_policy_parse(json_t *value, const char *path, us_policy *out, jerr *e);
void us_policy_default(us_policy *out);
void us_policy_free(us_policy *p);

/* Trusted keys of one issuer. iss NULL: these keys are trusted whatever
 * "iss" the token names, or none (a tool checking a token by hand).
 * self: the CDN's own keys (tokens it renewed and handed out itself); the
 * metadata's issuer list, which names upstream issuers, does not apply. */
typedef struct {
    const char *iss;
    const jwk_set *keys;
    bool self;
} us_trust;

/* One-time tokens: returns true if jti was not seen before for this
 * content and is now recorded until exp_s (0: no exp); false if seen, or
 * if it cannot be recorded (then the token is refused, as §2.1.7 says). */
typedef bool (*us_jti_fn)(void *ctx, const char *jti, long long exp_s);

typedef struct {
    const us_trust *trust;
    size_t n_trust;
    const jwk_set *enc_keys; /* JWE "dir" keys for an encrypted cdniip; may be NULL */
    const char *const *audiences; /* identities we answer to in "aud" */
    size_t n_audiences;
    long skew_s;             /* leeway on exp/nbf; RFC 9246 wants 0 */
    us_jti_fn jti_fresh;     /* NULL: tokens with jti are refused */
    void *jti_ctx;
} us_verifier;

typedef struct {
    const char *uri;       /* absolute: scheme://host/path?query, as requested */
    const char *cookie;    /* Cookie header or NULL */
    const char *client_ip; /* text, or NULL if unknown */
    long long now;         /* seconds since the epoch */
} us_request;

typedef enum { US_SRC_NONE, US_SRC_QUERY, US_SRC_PATH, US_SRC_COOKIE } us_source;

typedef struct {
    us_code code;
    char reason[200];   /* operational log only */
    us_source source;
    char *token;        /* the token as found (malloc'd) */
    char *stripped_uri; /* the URI without the token (malloc'd) */
    json_t *claims;     /* verified claims, on US_VERIFIED: a reference the
                           result owns, READ ONLY (shared with the per-thread
                           cache of verified tokens; copy before changing) */
    const char *issuer; /* trust entry that verified */
    /* signed token renewal requested (cdnistt 1 or 2 with cdniets) */
    int stt;
    long long ets;
    long long std_depth;
} us_result;

us_code us_check(const us_verifier *v, const us_policy *p, const us_request *rq, us_result *out);
void us_result_free(us_result *r);
const char *us_code_text(us_code c); /* static text */
/* Removes the query parameter named package (case-insensitive) from a
 * path?query in place, e.g. before a URI is logged. */
void us_drop_package(char *uri, const char *package);

/* Does the cdniuc container ("hash:..." or "regex:...") cover the
 * absolute URI (as the verifier would see it, without the token)? */
bool us_container_covers(const char *cdniuc, const char *uri);

/* "sha-256;<base64url>" of the normalized URI (RFC 6920 §5 URL segment
 * form); false if the URI does not parse. */
bool us_uri_hash(const char *uri, char *out, size_t cap);

/* Claims for the token a CDN hands on (RFC 9246 §2.1.1-2.1.14): sub, exp,
 * nbf, jti, cdniip, cdnistd, cdniets, cdnistt kept; iss replaced by
 * our_iss when there was one (added if add_iss); iat set to now when there
 * was one; aud set to next_aud (NULL: dropped); cdniuc kept when it is a
 * regex, else rewritten as the hash of new_uri. New reference. */
json_t *us_hop_claims(const json_t *claims, long long now, const char *our_iss, bool add_iss,
                      const char *next_aud, const char *new_uri);

/* Claims of a renewed token: the same, exp = now + cdniets, iat = now if
 * present, iss = our_iss if present. New reference. */
json_t *us_renewal_claims(const json_t *claims, long long now, const char *our_iss);

/* Signs claims (compact, sorted keys). malloc'd token or NULL. */
char *us_mint(const jwk *key, jws_alg alg, const json_t *claims);

/* uri with "<package>=<token>" added to its query. malloc'd. */
char *us_add_to_query(const char *uri, const char *package, const char *token);

/* Set-Cookie value for a renewed token: Path from the first depth segments
 * of the path (depth 0: "/"), HttpOnly, SameSite=Lax, Secure when https,
 * Max-Age until exp. false if the path has fewer segments than depth. */
bool us_cookie(const char *package, const char *token, const char *uri, long long depth,
               long long max_age, char *out, size_t cap);

#endif

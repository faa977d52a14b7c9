/* Session cookies for HTTP adaptive streaming (RFC 6983 §5.4 and §5.5).
 *
 * When a top-level manifest is authorized by a signed URI, the CDN answers
 * with a cookie holding a JWT it signs itself, bound to the content
 * collection (the CCID of MI.Grouping, or the delivery host without one),
 * to an expiry and optionally to the client's address. The lower manifests
 * and chunks of that collection are then authorized by the cookie alone,
 * so a player that cannot carry tokens from URI to URI still plays.
 *
 * Claims: iss and aud (the CDN itself), iat, exp, "ccid" (the collection),
 * "sid" (the playback session the manifest's token started, so the chunks
 * the cookie authorizes are logged under the same session) and, when
 * bound, "cdniip" (the client address as text). */
#ifndef SIGNING_COOKIE_AUTH_H
#define SIGNING_COOKIE_AUTH_H

#include <jansson.h>
#include <stdbool.h>

#include "signing/jwk.h"
#include "signing/jws.h"

#define CA_COOKIE_NAME "CDNISession"

typedef enum { CA_OK, CA_ABSENT, CA_BAD_SIGNATURE, CA_EXPIRED, CA_OTHER_COLLECTION, CA_OTHER_CLIENT } ca_status;
const char *ca_status_text(ca_status s); /* static text */

/* A session token; malloc'd, NULL on failure. client_ip NULL: not bound;
 * sid NULL or "": none. */
char *ca_mint(const jwk *key, jws_alg alg, const char *cdn_id, const char *collection,
              const char *client_ip, const char *sid, long long now, long ttl_s);

/* Finds CA_COOKIE_NAME in a Cookie header and checks it: signed by one of
 * keys with iss and aud cdn_id, not expired (skew_s leeway), for this
 * collection and, if bound, this client. Every value of that name is tried
 * (up to 8; another CDN's or a stale one does not hide ours): CA_OK if one
 * passes, else the refusal of the first of ours, else CA_BAD_SIGNATURE.
 * *claims (may be NULL) gets a new reference on CA_OK. */
ca_status ca_check(const jwk_set *keys, const char *cdn_id, const char *cookie_header,
                   const char *collection, const char *client_ip, long long now, long skew_s,
                   json_t **claims);

/* The Set-Cookie value: Path=/ (the collection, not a path, decides),
 * Max-Age, HttpOnly, SameSite=Lax, Secure on https. */
bool ca_set_cookie(const char *token, bool https, long max_age_s, char *out, size_t cap);

#endif

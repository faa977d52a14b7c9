/* Compact JWS (RFC 7515) sign and verify: HS256, HS384, HS512 and ES256,
 * through OpenSSL EVP only.
 *
 * Verification refuses, before any key is touched: "alg" none or unknown,
 * any "crit" header (we implement no JWS extension), a header that is not a
 * JSON object, and more or fewer than three parts. The key must fit the
 * algorithm: an HMAC token is never checked against an EC key or the other
 * way round (algorithm confusion), a key that declares "alg" is used for
 * that algorithm only, and an HMAC secret shorter than the hash is refused
 * (RFC 7518 §3.2). With a "kid" only keys of that kid are tried; without
 * one, every fitting key is (rotation without kids). */
#ifndef SIGNING_JWS_H
#define SIGNING_JWS_H

#include <stdbool.h>
#include <stddef.h>

#include "signing/jwk.h"

typedef enum { JWS_ALG_NONE, JWS_HS256, JWS_HS384, JWS_HS512, JWS_ES256 } jws_alg;

typedef enum {
    JWS_OK,
    JWS_MALFORMED,   /* not three base64url parts, header not JSON, ... */
    JWS_BAD_ALG,     /* none, unknown, or refused */
    JWS_CRIT,        /* a "crit" header we do not understand */
    JWS_NO_KEY,      /* no key of that kid fits the algorithm */
    JWS_BAD_SIGNATURE
} jws_status;

const char *jws_status_text(jws_status s); /* static text */
jws_alg jws_alg_from_name(const char *name, size_t len);
const char *jws_alg_name(jws_alg a); /* static text */

/* Does key k fit algorithm a (type, declared alg, secret length)? */
bool jws_key_fits(const jwk *k, jws_alg a);

typedef struct {
    jws_alg alg;
    char kid[JWK_KID_MAX];
    const jwk *key;       /* the key that verified */
    unsigned char *payload; /* decoded, NUL-terminated, malloc'd */
    size_t payload_len;
} jws_verified;

/* Verifies tok[0..n). detached_header: RFC 9246 §2.2, the base64url header
 * to put in front of a token that came without one ("payload.signature");
 * NULL if none. On JWS_OK *out holds the payload (free with jws_verified_free). */
jws_status jws_verify(const char *tok, size_t n, const char *detached_header, const jwk_set *keys,
                      jws_verified *out);
void jws_verified_free(jws_verified *v);

/* Signs payload with key k under alg; returns the malloc'd compact token
 * (header carries kid when the key has one) or NULL. */
char *jws_sign(const jwk *k, jws_alg alg, const void *payload, size_t len);

#endif

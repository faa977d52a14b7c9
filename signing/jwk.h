/* JSON Web Keys (RFC 7517) for URI signing: "oct" secrets for HS256/384/512
 * and "EC" P-256 keys for ES256, alone or in a JWK Set.
 *
 * A set may hold several keys with different kids (rotation) and may mix
 * types; a JWS header's kid selects among them (jws.h). Keys of other types
 * or curves are refused with the JSON path of the offending member, so an
 * operator never loads a set that silently verifies nothing. Keys marked
 * "use": "enc" are kept apart (they decrypt JWE claims, jwe.h). */
#ifndef SIGNING_JWK_H
#define SIGNING_JWK_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/jcheck.h"

#define JWK_KID_MAX 128
#define JWK_OCT_MAX 256 /* bytes of secret */

typedef enum { JWK_OCT, JWK_EC_P256 } jwk_kty;

typedef struct {
    jwk_kty kty;
    char kid[JWK_KID_MAX]; /* "" when absent */
    char alg[16];          /* declared "alg", "" when absent: then any alg of the kty */
    bool enc;              /* "use": "enc" */
    unsigned char k[JWK_OCT_MAX]; /* oct */
    size_t klen;
    EVP_PKEY *pkey; /* EC: public, or private too when has_private */
    bool has_private;
    unsigned char fp[32]; /* SHA-256 of the secret or the public point: the
                             key's identity in caches, whatever its kid */
} jwk;

typedef struct {
    jwk *keys;
    size_t n;
} jwk_set;

/* One JWK object; path names it in errors. */
bool jwk_parse(json_t *o, const char *path, jwk *out, jerr *e);
void jwk_clear(jwk *k);

/* {"keys": [...]} or a single JWK object. */
bool jwk_set_parse(json_t *v, const char *path, jwk_set *out, jerr *e);
bool jwk_set_load(const char *filename, jwk_set *out, jerr *e);
void jwk_set_free(jwk_set *s);

/* The public half of an EC key as a JWK object (new reference), or an oct
 * key with its secret (for tests and for handing a peer its shared key). */
json_t *jwk_to_json(const jwk *k, bool with_secret);

/* New random keys (kid given). */
bool jwk_generate_ec(const char *kid, jwk *out);
bool jwk_generate_oct(const char *kid, size_t bytes, jwk *out);
/* An oct key from a secret already in hand (16..JWK_OCT_MAX bytes). */
bool jwk_oct(const char *kid, const void *secret, size_t n, jwk *out);

#endif

/* Tokens on the URIs of a manifest a CDN serves (RFC 6983 §3.5.8, option
 * 5.6), so that a player that keeps no cookies (ExoPlayer without a cookie
 * handler), or one jar for every host (FFmpeg, GStreamer's hlsdemux2),
 * still plays a signed session: every URI a manifest names carries its own
 * credential.
 *
 * An mf_hook (manifest/rewrite.h). Each URI, made absolute against the
 * manifest's URL, gets under the policy's package name
 *   - the request's own token (hop_result.token: never one with jti or one
 *     asking for renewal) when its cdniuc covers that URI;
 *   - else a token for aud, signed with key, whose cdniuc is the regex of
 *     the manifest's directory and everything under it (for a URI outside
 *     it: the URI's own directory), its other claims taken
 *     from the request's as hop_next_token takes them (exp, cdniip, the
 *     renewal pair; a cdnistt 2 token is renewed). One is minted per
 *     directory per manifest and shared by every URI under it, so a
 *     playlist of a thousand segments costs one signature, and a live
 *     playlist gets fresh tokens at each refresh.
 * The manifest must not be stored by shared caches: its tokens are one
 * viewer's. */
#ifndef SIGNING_MANIFEST_TOKENS_H
#define SIGNING_MANIFEST_TOKENS_H

#include "common/buf.h"
#include "manifest/manifest.h"
#include "manifest/rewrite.h"
#include "signing/hop.h"

#define MT_SCOPES 16

typedef struct {
    const hop_conf *conf;
    const jwk *key;        /* NULL: our own */
    jws_alg alg;
    hop_profile profile;   /* what the verifier of the tokens accepts */
    const hop_result *hr;  /* the request's authorization (claims, package, token) */
    const char *aud;       /* who checks the tokens */
    const char *base;      /* absolute URL the manifest answers for, without a token */
    long long now;
    /* what was minted, per directory */
    struct {
        char *dir, *token;
        size_t len;
    } scope[MT_SCOPES];
    size_t n_scopes;
    size_t reused, minted;
} mt_tokens;

bool mt_hook(void *ud, const char *uri, size_t n, buf *out);
void mt_free(mt_tokens *t);

/* A manifest rewritten for the next hop, as both daemons serve one: the
 * URIs of its hosts pointed at target (relative ones too, with absolutize),
 * and when sign, every URI given a token as mt_hook gives them, for aud.
 * The tokens' scope is scope_base's directory (NULL: the manifest's
 * directory at the target). out is initialised here; on false it is freed
 * and rep->error (when set) says why. */
typedef struct {
    const hop_conf *conf;
    const jwk *key;           /* NULL: our own */
    jws_alg alg;
    hop_profile profile;
    const hop_result *hr;     /* the request's authorization */
    const char *aud;
    bool sign;
    const char *base;         /* absolute URL the manifest was fetched as */
    const char *const *hosts; /* the interconnected set (mf_policy.hosts) */
    const char *target;
    bool absolutize;
    const char *scope_base;
    long long now;
    size_t max_bytes;         /* of the manifest read; the rewrite may be twice that */
} mt_rewrite;
bool mt_rewrite_manifest(const mt_rewrite *q, const char *src, size_t len, buf *out, mf_report *rep);

#endif

/* The manifest rewrite policy (RFC 6983 §2.4, options 3.2 and 3.3): which
 * URIs of an HLS playlist or DASH MPD are pointed at another CDN, and how.
 *
 *   - an absolute http(s) URI whose host is in the interconnected set (the
 *     CSP's origin and delivery hosts, the uCDN's) gets the target's scheme
 *     and authority; any other host - a third-party ad server, a key
 *     server - is never touched;
 *   - a relative URI is kept as it is (it then resolves against wherever
 *     the manifest was served from), or, with `absolutize`, resolved
 *     against the manifest's own URL and pointed at the target;
 *   - data:, skd: and other schemes are left alone;
 *   - every URI that is pointed at the target goes through the hook, which
 *     may add to it (a URI-signing token, say).
 * Pure string work, no allocation on the common paths. */
#ifndef MANIFEST_REWRITE_H
#define MANIFEST_REWRITE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

/* Writes the URI to out, possibly with additions; false on failure. */
typedef bool (*mf_hook)(void *ud, const char *uri, size_t n, buf *out);

typedef struct {
    const char *base;          /* absolute URL the manifest was fetched as */
    const char *const *hosts;  /* the interconnected set, NULL-terminated; matched case-insensitively; "host"
                                * owns every port of its name, "host:port" only that port */
    const char *target;        /* "http://dcdn.example:8080": scheme and authority, optionally a path
                                * prefix without a final '/' ("http://dcdn.example/video.example.com") */
    bool absolutize;           /* relative URIs made absolute on the target */
    mf_hook hook;              /* NULL: URIs written as they are */
    void *hook_ud;
    /* derived by mf_policy_prepare */
    char target_dir[2048];     /* target + the base's directory path, for relative URIs */
    size_t target_len, target_dir_len;
#define MF_HOSTS_CACHED 16
    size_t host_len[MF_HOSTS_CACHED];
} mf_policy;

/* A hook that adds "name=value" to each URI's query (before any fragment):
 * hook_ud is an mf_query_param. */
typedef struct {
    const char *name, *value;
} mf_query_param;
bool mf_add_query_param(void *ud, const char *uri, size_t n, buf *out);

/* Checks base and target and derives the rest; false if either is not an
 * absolute http(s) URL. */
bool mf_policy_prepare(mf_policy *p);

typedef enum { MF_KEPT, MF_REWRITTEN, MF_FAILED } mf_result;

/* uri[0..n) as the policy wants it: MF_KEPT (nothing written: copy the
 * original), MF_REWRITTEN (the replacement appended to out), MF_FAILED. */
mf_result mf_rewrite_uri(const mf_policy *p, const char *uri, size_t n, buf *out);

#endif

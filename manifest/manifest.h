/* HLS or DASH, told from the content, rewritten by one call. */
#ifndef MANIFEST_MANIFEST_H
#define MANIFEST_MANIFEST_H

#include "manifest/dash.h"
#include "manifest/hls.h"

typedef enum { MF_UNKNOWN = 0, MF_HLS, MF_DASH } mf_kind;
const char *mf_kind_name(mf_kind k); /* static text */
mf_kind mf_detect(const char *in, size_t n);
/* What a request path names, by its extension (.m3u8/.m3u: HLS, .mpd:
 * DASH); path[0..len) without the query. */
mf_kind mf_kind_of_path(const char *path, size_t len);

typedef struct {
    mf_kind kind;
    size_t uris, rewritten;
    const char *error; /* static text when the result is false */
} mf_report;

/* Would content published as a manifest be served? HLS or DASH, and
 * every check a rewrite makes passed (an MPD that does not parse, or has
 * a DOCTYPE, is refused); false with the reason in *why. */
bool mf_acceptable(const char *in, size_t n, const char **why);

/* Detects and rewrites; false (out untouched) for content that is neither,
 * too large, refused or failed, with the reason in r->error. */
bool mf_rewrite(const char *in, size_t n, size_t max, const mf_policy *p, buf *out, mf_report *r);

#endif

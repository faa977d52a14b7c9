/* HLS playlists (RFC 8216, with low-latency HLS and interstitials):
 * every URI found and handed to a callback, every other byte kept.
 *
 * URIs are the URI lines (a line that is neither blank nor starts with
 * '#') and the quoted URI attributes of EXT-X-KEY, EXT-X-SESSION-KEY,
 * EXT-X-MAP, EXT-X-MEDIA, EXT-X-I-FRAME-STREAM-INF, EXT-X-PART,
 * EXT-X-PRELOAD-HINT, EXT-X-RENDITION-REPORT, EXT-X-SESSION-DATA (URI),
 * EXT-X-CONTENT-STEERING (SERVER-URI) and EXT-X-DATERANGE (X-ASSET-URI,
 * X-ASSET-LIST). Comments, unknown tags, ad markers (CUE-OUT/CUE-IN,
 * SCTE-35 DATERANGE), blank lines, CRLF or LF endings, a BOM: untouched.
 * A tag whose attribute list cannot be read is copied as it is. */
#ifndef MANIFEST_HLS_H
#define MANIFEST_HLS_H

#include <stdbool.h>
#include <stddef.h>

#include "manifest/rewrite.h"

typedef enum { HLS_OK = 0, HLS_NOT_PLAYLIST, HLS_TOO_LARGE, HLS_FAILED } hls_status;
const char *hls_status_text(hls_status s); /* static text */

/* Starts with #EXTM3U (after an optional UTF-8 BOM). */
bool hls_is_playlist(const char *in, size_t n);

typedef struct {
    size_t uris, rewritten, unreadable_tags;
} hls_stats;

/* in[0..n) rewritten by the policy into out (appended). max: refuse larger
 * input (HLS_TOO_LARGE) rather than rewrite part of it. */
hls_status hls_rewrite(const char *in, size_t n, size_t max, const mf_policy *p, buf *out, hls_stats *st);

#endif

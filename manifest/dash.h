/* DASH MPDs (ISO/IEC 23009-1), rewritten through libxml2 by the policy of
 * manifest/rewrite.h.
 *
 * URIs: BaseURL at every level, SegmentTemplate@media/@initialization/
 * @index, SegmentURL@media/@index, Initialization@sourceURL,
 * RepresentationIndex@sourceURL, Location, PatchLocation, ContentSteering.
 * Other elements, attributes and namespaces are kept; the document is
 * serialized again by libxml2 (attribute quoting and the XML declaration
 * may be normalized). Parsing never touches the network and never expands
 * entities; a document with a DOCTYPE is refused (an MPD has none, and a
 * DTD is how entity bombs arrive).
 *
 * With the policy's absolutize, an MPD without an MPD-level BaseURL gets
 * one naming the target directory, so that its relative references
 * resolve there; relative BaseURLs at MPD level are resolved and pointed
 * at the target. */
#ifndef MANIFEST_DASH_H
#define MANIFEST_DASH_H

#include <stdbool.h>
#include <stddef.h>

#include "manifest/rewrite.h"

typedef enum { DASH_OK = 0, DASH_NOT_MPD, DASH_TOO_LARGE, DASH_DTD, DASH_FAILED } dash_status;
const char *dash_status_text(dash_status s); /* static text */

/* An MPD root element, judged from the first bytes (no full parse). */
bool dash_is_mpd(const char *in, size_t n);

typedef struct {
    size_t uris, rewritten;
} dash_stats;

dash_status dash_rewrite(const char *in, size_t n, size_t max, const mf_policy *p, buf *out, dash_stats *st);

#endif

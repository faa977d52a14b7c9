/* gzip in memory (zlib): inflating with a size limit. */
#ifndef COMMON_GZ_H
#define COMMON_GZ_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

/* Does the data start like a gzip member (1f 8b)? */
bool gz_is_gzip(const char *p, size_t n);
/* Inflates a whole gzip stream (all members) into out, at most max bytes;
 * false with *why on corrupt, truncated or oversized input. */
bool gz_inflate(const char *in, size_t n, size_t max, buf *out, const char **why);

#endif

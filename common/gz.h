/* gzip (zlib): inflating in memory with a size limit, deflating to a file. */
#ifndef COMMON_GZ_H
#define COMMON_GZ_H

#include <stdbool.h>
#include <stddef.h>

#include <zlib.h>

#include "common/buf.h"

/* Does the data start like a gzip member (1f 8b)? */
bool gz_is_gzip(const char *p, size_t n);
/* Inflates a whole gzip stream (all members) into out, at most max bytes;
 * false with *why on corrupt, truncated or oversized input. */
bool gz_inflate(const char *in, size_t n, size_t max, buf *out, const char **why);
/* A gzip member written to a file as its data comes (one member, the
 * given level). */
typedef struct {
    z_stream z;
    int fd;
} gz_out;
bool gz_out_open(gz_out *g, int fd, int level);
/* finish: in is the last of the data. false: zlib or write(2) failed. */
bool gz_out_write(gz_out *g, const char *in, size_t n, bool finish);
void gz_out_end(gz_out *g);

#endif

/* gzip (zlib). See gz.h. */
#include "common/gz.h"

#include <string.h>
#include <zlib.h>

#include "common/fdio.h"

bool gz_is_gzip(const char *p, size_t n) { return n >= 2 && (unsigned char)p[0] == 0x1f && (unsigned char)p[1] == 0x8b; }

bool gz_inflate(const char *in, size_t n, size_t max, buf *out, const char **why)
{
    z_stream z = {0};
    if (inflateInit2(&z, 15 + 16) != Z_OK) {
        *why = "out of memory";
        return false;
    }
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)n;
    int rc = Z_OK;
    while (rc != Z_STREAM_END || z.avail_in) {
        if (rc == Z_STREAM_END) { /* another member follows */
            if (inflateReset(&z) != Z_OK)
                break;
        }
        if (!buf_grow(out, 64 * 1024)) {
            *why = "out of memory";
            inflateEnd(&z);
            return false;
        }
        z.next_out = (unsigned char *)out->data + out->len;
        z.avail_out = (uInt)(out->cap - out->len - 1);
        size_t before = z.avail_out;
        rc = inflate(&z, Z_NO_FLUSH);
        out->len += before - z.avail_out;
        out->data[out->len] = 0;
        if (out->len > max) {
            *why = "the inflated data is too large";
            inflateEnd(&z);
            return false;
        }
        if (rc != Z_OK && rc != Z_STREAM_END) {
            *why = "not valid gzip data";
            inflateEnd(&z);
            return false;
        }
        if (rc == Z_OK && z.avail_in == 0 && z.avail_out != 0) {
            *why = "the gzip data is truncated";
            inflateEnd(&z);
            return false;
        }
    }
    inflateEnd(&z);
    return true;
}

bool gz_out_open(gz_out *g, int fd, int level)
{
    memset(&g->z, 0, sizeof g->z);
    g->fd = fd;
    return deflateInit2(&g->z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK;
}

bool gz_out_write(gz_out *g, const char *in, size_t n, bool finish)
{
    unsigned char out[64 * 1024];
    int rc = Z_OK;
    g->z.next_in = (unsigned char *)in;
    g->z.avail_in = 0;
    for (;;) {
        /* zlib counts in uInt: feed at most 1 GiB at a time */
        if (g->z.avail_in == 0 && n) {
            size_t feed = n < (1u << 30) ? n : (1u << 30);
            g->z.avail_in = (uInt)feed;
            n -= feed;
        }
        bool last = finish && !n;
        g->z.next_out = out;
        g->z.avail_out = sizeof out;
        rc = deflate(&g->z, last ? Z_FINISH : Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
            return false;
        if (!fd_write_all(g->fd, out, sizeof out - g->z.avail_out))
            return false;
        if (last ? rc == Z_STREAM_END : g->z.avail_in == 0 && !n && g->z.avail_out != 0)
            return true;
    }
}

void gz_out_end(gz_out *g) { deflateEnd(&g->z); }

/* gzip in memory. See gz.h. */
#include "common/gz.h"

#include <zlib.h>

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

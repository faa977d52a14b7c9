/* base64url on top of OpenSSL's base64. See b64url.h. */
#include "common/b64url.h"

#include <openssl/evp.h>
#include <string.h>

size_t b64url_encode(const unsigned char *in, size_t n, char *out, size_t cap)
{
    size_t full = (n + 2) / 3 * 4;
    if (cap < full + 1 || n > (size_t)1 << 30)
        return 0;
    int w = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    if (w < 0 || (size_t)w != full)
        return 0;
    size_t len = full;
    while (len && out[len - 1] == '=')
        len--;
    for (size_t i = 0; i < len; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    out[len] = 0;
    return len;
}

/* 0-63 for the URL alphabet, 64 otherwise */
static unsigned char value_of(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return (unsigned char)(c - 'A');
    if (c >= 'a' && c <= 'z')
        return (unsigned char)(c - 'a' + 26);
    if (c >= '0' && c <= '9')
        return (unsigned char)(c - '0' + 52);
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return 64;
}

bool b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap, size_t *outlen)
{
    size_t rem = n % 4;
    if (rem == 1 || n > (size_t)1 << 30)
        return false;
    size_t want = n / 4 * 3 + (rem ? rem - 1 : 0);
    if (cap < want)
        return false;
    /* the standard alphabet with padding, in blocks so that no heap is needed */
    unsigned char blk[4 * 64 + 4], tmp[3 * 64 + 3];
    size_t done = 0, o = 0;
    while (done < n) {
        size_t take = n - done > 4 * 64 ? 4 * 64 : n - done;
        for (size_t i = 0; i < take; i++) {
            unsigned char c = (unsigned char)in[done + i];
            if (value_of(c) == 64)
                return false;
            blk[i] = c == '-' ? '+' : c == '_' ? '/' : c;
        }
        size_t bl = take;
        while (bl % 4)
            blk[bl++] = '=';
        int r = EVP_DecodeBlock(tmp, blk, (int)bl);
        if (r < 0)
            return false;
        /* EVP_DecodeBlock counts padding as zero bytes: drop them */
        size_t got = (size_t)r - (bl - take) ;
        if (got > cap - o)
            return false;
        memcpy(out + o, tmp, got);
        o += got;
        done += take;
    }
    /* canonical form only: the bits below the last character's used ones are zero */
    if (rem) {
        unsigned char last = value_of((unsigned char)in[n - 1]);
        if ((rem == 2 && (last & 0x0f)) || (rem == 3 && (last & 0x03)))
            return false;
    }
    *outlen = o;
    return o == want;
}

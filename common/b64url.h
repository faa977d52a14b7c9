/* base64url without padding (RFC 4648 §5, as JOSE uses it). OpenSSL's
 * EVP_EncodeBlock/EVP_DecodeBlock do the coding; this file only swaps the
 * two alphabet letters and handles the missing padding. */
#ifndef COMMON_B64URL_H
#define COMMON_B64URL_H

#include <stdbool.h>
#include <stddef.h>

/* Output sizes, including the terminating NUL for encode. */
#define B64URL_ENC_LEN(n) (((n) + 2) / 3 * 4 + 1)
#define B64URL_DEC_MAX(n) (((n) + 3) / 4 * 3)

/* Writes the unpadded encoding and a NUL; returns its length, or 0 if cap
 * is too small (cap >= B64URL_ENC_LEN(n) always suffices). */
size_t b64url_encode(const unsigned char *in, size_t n, char *out, size_t cap);

/* Decodes exactly n characters (no padding, no whitespace, only the URL
 * alphabet, unused trailing bits zero). false on any other input or if cap
 * is too small; cap >= B64URL_DEC_MAX(n) always suffices. */
bool b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap, size_t *outlen);

#endif

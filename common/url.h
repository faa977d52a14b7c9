/* RFC 3986 URI references: parse, resolve (§5.2) and normalize (§6.2.2-3).
 *
 * The parser never copies: a parsed url names (offset, length) spans of the
 * caller's buffer, and never reads past the length it is given. Resolution
 * and normalization produce new strings the caller frees. */
#ifndef COMMON_URL_H
#define COMMON_URL_H

#include <stdbool.h>
#include <stddef.h>

#define URL_MAX_LEN 8192 /* longer references are refused */

typedef struct {
    size_t off, len;
    bool present; /* "?" with an empty query is present with len 0 */
} url_part;

typedef struct {
    url_part scheme, userinfo, host, port, path, query, fragment;
    bool authority; /* "//" seen */
} url_ref;

typedef enum {
    URL_OK = 0,
    URL_ERR_TOO_LONG,
    URL_ERR_SYNTAX,
    URL_ERR_NOMEM,
} url_status;

const char *url_status_str(url_status s);

url_status url_parse(const char *s, size_t len, url_ref *out);

/* Target URI of reference ref against absolute base (RFC 3986 §5.2.2).
 * *out is a malloc'd NUL-terminated string on URL_OK. */
url_status url_resolve(const char *base, size_t base_len, const char *ref, size_t ref_len,
                       char **out);

/* Syntax- and scheme-based normalization: lower-case scheme and host,
 * upper-case percent-encoding hex, decode percent-encoded unreserved
 * characters, remove dot segments, drop the scheme's default port, and an
 * empty http(s) path becomes "/". *out is malloc'd on URL_OK. */
url_status url_normalize(const char *s, size_t len, char **out);

/* remove_dot_segments of §5.2.4 in place; returns the new length. */
size_t url_remove_dot_segments(char *path, size_t len);

/* Port as a number: the explicit one, else 80/443 for http/https, else -1. */
int url_port(const char *s, const url_ref *u);

/* base without its trailing slashes, then ref ("http://a/" + "/x?y" ->
 * "http://a/x?y") into out; false if it does not fit. */
bool url_join(const char *base, const char *ref, char *out, size_t cap);

#endif

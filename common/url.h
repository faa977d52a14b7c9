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

const char *url_status_str(url_status s); /* static text */

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

/* --- the one form a gateway compares, matches and forwards --------------
 *
 * Every later step of a request (metadata match, token check, ACLs, cache
 * key, what is asked of a source) sees only these forms, so no two
 * spellings of one resource can be told apart by one step and not by
 * another. */
typedef enum {
    URL_CANON_OK = 0,
    URL_CANON_NOT_ORIGIN_FORM, /* a request target must start with "/" */
    URL_CANON_CONTROL,         /* a control byte, space or DEL */
    URL_CANON_BAD_PERCENT,     /* "%" not followed by two hex digits */
    URL_CANON_ENCODED_SLASH,   /* %2F in the path: a second spelling of "/" */
    URL_CANON_BACKSLASH,       /* "\" or %5C in the path */
    URL_CANON_NUL,             /* %00 in the path */
    URL_CANON_FRAGMENT,        /* "#" in a request target */
    URL_CANON_BAD_HOST,        /* not a host name, IPv4 or [IPv6] address */
    URL_CANON_BAD_PORT,
    URL_CANON_TOO_LONG,
} url_canon_status;
const char *url_canon_text(url_canon_status s); /* static text */

/* A request target (origin-form: absolute path, optional query) in its
 * canonical form (RFC 3986 §6.2.2): percent-encodings in upper-case hex,
 * percent-encoded unreserved characters decoded, runs of "/" merged into
 * one, dot segments removed (so "/a/%2e%2e/b" is "/b"), an empty query
 * dropped. Printable bytes RFC 3986 does not allow raw (what browsers send
 * unencoded: "|", "^", "{", ...) and bytes above 0x7F are percent-encoded.
 * Refused: the statuses above. out gets a NUL-terminated string of
 * *out_len bytes, the path being the first *path_len of them; in and out
 * must not overlap. The result is a fixed point: canonicalizing it again
 * gives it back, and it has no "." or ".." segment. */
url_canon_status url_canon_target(const char *in, size_t len, char *out, size_t cap, size_t *out_len,
                                  size_t *path_len);

/* A host[:port] (a Host header, a URL's authority without userinfo, a
 * published HostMatch) in its canonical form: lower case, one trailing
 * dot dropped, the default ports 80 and 443 dropped (a delivery service
 * answers on both schemes), leading zeros of a port dropped, an IPv6
 * literal in RFC 5952 text inside brackets. A name with bytes above 0x7F
 * becomes its IDNA A-label form when idna is true (publication), else is
 * refused (a Host header carries A-labels). Refused too: a name whose last
 * label is numeric but which is not a dotted-quad IPv4 address ("127.1",
 * "2130706433", "0x7f000001": resolvers read them as addresses). *name_len
 * (may be NULL): the length of the name without ":port". */
url_canon_status url_canon_host(const char *in, size_t len, bool idna, char *out, size_t cap, size_t *name_len);

/* A set of host names (canonical, without ports), for "is this one of
 * ours?" questions. Zero-initialize; url_names_free when done. */
typedef struct {
    char (*v)[256];
    size_t n;
} url_names;
/* The name of s, a host[:port] (is_url false) or an absolute URL's host,
 * added; false when s has no valid host. */
bool url_names_add(url_names *set, const char *s, bool is_url);
/* The length of a canonical host's name: without ":port" ("[::1]" kept whole). */
size_t url_host_name_len(const char *host);
/* Is the name of host (canonical, a port allowed) in the set? */
bool url_names_has(const url_names *set, const char *host);
void url_names_free(url_names *set);

/* Do two absolute http(s) URLs have one origin (scheme, canonical host,
 * effective port)? false when either does not parse. */
bool url_same_origin(const char *a, const char *b);

#endif

/* libFuzzer target: the canonical request target and host (common/url.h).
 * Whatever the input, an accepted target is a fixed point (canonicalizing
 * it again gives it back), starts with "/", and its path has no ".", ".."
 * or empty segment and no encoded "/", "\" or NUL; an accepted host is a
 * fixed point too and carries no default port. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/url.h"

static void check_target(const char *s, size_t n)
{
    char out[URL_MAX_LEN * 3 + 8], again[sizeof out];
    size_t ol, pl, ol2, pl2;
    if (url_canon_target(s, n, out, sizeof out, &ol, &pl) != URL_CANON_OK)
        return;
    if (ol != strlen(out) || pl > ol || out[0] != '/' || (pl < ol && out[pl] != '?'))
        abort();
    if (url_canon_target(out, ol, again, sizeof again, &ol2, &pl2) != URL_CANON_OK || ol2 != ol || pl2 != pl ||
        memcmp(out, again, ol) != 0)
        abort(); /* not idempotent */
    /* segment by segment: none empty (but a final one), none a dot segment */
    for (size_t i = 1, st = 1; i <= pl; i++) {
        if (i < pl && out[i] != '/')
            continue;
        size_t len = i - st;
        const char *seg = out + st;
        if ((len == 0 && i < pl) || (len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            abort();
        st = i + 1;
    }
    for (size_t i = 0; i + 2 < pl; i++)
        if (out[i] == '%' && ((out[i + 1] == '2' && out[i + 2] == 'F') || (out[i + 1] == '5' && out[i + 2] == 'C') ||
                              (out[i + 1] == '0' && out[i + 2] == '0')))
            abort();
    if (memchr(out, '\\', pl))
        abort();
}

static void check_host(const char *s, size_t n, bool idna)
{
    char out[300], again[300];
    size_t nl, nl2;
    if (url_canon_host(s, n, idna, out, sizeof out, &nl) != URL_CANON_OK)
        return;
    size_t ol = strlen(out);
    if (nl > ol || (nl < ol && out[nl] != ':'))
        abort();
    if (url_canon_host(out, ol, idna, again, sizeof again, &nl2) != URL_CANON_OK || strcmp(out, again) != 0 ||
        nl2 != nl)
        abort();
    if (nl < ol && (strcmp(out + nl, ":80") == 0 || strcmp(out + nl, ":443") == 0))
        abort();
    for (size_t i = 0; i < nl; i++)
        if (out[i] >= 'A' && out[i] <= 'Z')
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    check_target(s, size);
    if (size <= 1100) {
        check_host(s, size, false);
        check_host(s, size, true);
    }
    return 0;
}

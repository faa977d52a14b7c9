/* libFuzzer target: RFC 3986 parse, normalize, and resolve against a base
 * (the input split in two at its first NUL byte, or against a fixed base);
 * the request paths the status pages' file server accepts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/static_files.h"
#include "common/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    url_ref u;
    url_parse(s, size, &u);
    char *name = strndup(s, size);
    if (name) {
        if (static_name_ok(name) && (strstr(name, "..") == name || strstr(name, "/.") || strstr(name, "//")))
            abort(); /* a name that could leave the directory, or reach a hidden file */
        free(name);
    }
    char *out = NULL;
    if (url_normalize(s, size, &out) == URL_OK)
        free(out);
    const char *nul = memchr(s, 0, size);
    const char *base = "http://a/b/c/d;p?q";
    size_t blen = strlen(base);
    const char *ref = s;
    size_t rlen = size;
    if (nul) {
        base = s;
        blen = (size_t)(nul - s);
        ref = nul + 1;
        rlen = size - blen - 1;
    }
    if (url_resolve(base, blen, ref, rlen, &out) == URL_OK)
        free(out);
    return 0;
}

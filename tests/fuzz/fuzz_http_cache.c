/* libFuzzer target: the cache's header parsers (Cache-Control, dates,
 * Range, If-None-Match) on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/http_cache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    hc_directives d;
    hc_parse_cache_control(s, size, &d);
    hc_parse_date(s, size);
    uint64_t f, l;
    hc_range(s, size, 1000, &f, &l);
    hc_range(s, size, 0, &f, &l);
    hc_range_first(s, size);
    char *z = malloc(size + 1); /* the string forms need a terminator */
    if (!z)
        return 0;
    memcpy(z, data, size);
    z[size] = 0;
    hc_not_modified(z, NULL, "\"abc\"", NULL);
    hc_not_modified(NULL, z, NULL, "Sun, 06 Nov 1994 08:49:37 GMT");
    hc_heuristic h = {0.1, 60, 86400};
    hc_response r = {.status = 200, .cache_control = z, .expires = z, .date = z, .last_modified = z, .age = z,
                     .request_time = 100, .response_time = 100};
    hc_verdict v;
    hc_evaluate(&r, &h, &v);
    free(z);
    return 0;
}

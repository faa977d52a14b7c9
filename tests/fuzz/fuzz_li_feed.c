/* libFuzzer target: CDNI logging feeds (Atom, RFC 7937 §4.1) as the uCDN's
 * collector reads them, and the resolution of their links. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "interfaces/li_feed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    li_feed f;
    const char *why;
    if (li_feed_parse((const char *)data, size, &f, &why)) {
        char url[LI_FEED_URL_MAX + 64];
        for (size_t i = 0; i < f.n; i++)
            li_feed_resolve("http://dcdn.example:8081/li/v1/feed", f.e[i].href, url, sizeof url);
        if (f.prev_archive[0])
            li_feed_resolve("https://dcdn.example/li/v1/feed", f.prev_archive, url, sizeof url);
        li_feed_free(&f);
    }
    return 0;
}

/* libFuzzer target: CDNI logging feeds (Atom, RFC 7937 §4.1) as the uCDN's
 * collector reads them, the resolution of their links, and the writer:
 * the entries of a feed that parses, written again, parse to the same
 * entries. */
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
        li_feed_item *items = calloc(f.n ? f.n : 1, sizeof *items);
        for (size_t i = 0; items && i < f.n; i++)
            items[i] = (li_feed_item){.uuid = f.e[i].uuid, .href = f.e[i].href, .updated = f.e[i].updated,
                                      .title = "t", .summary = "s", .length = f.e[i].length < 0 ? 0 : f.e[i].length,
                                      .sha256 = f.e[i].sha256[0] ? f.e[i].sha256 : NULL};
        li_feed_meta m = {.id = "tag:x,2026:f", .title = "f", .updated = "2026-01-01T00:00:00Z", .author = "a",
                          .self = "/li/v1/feed", .prev_archive = f.prev_archive[0] ? f.prev_archive : NULL,
                          .archive = f.archive};
        size_t len;
        char *doc = items ? li_feed_write(&m, items, f.n, &len) : NULL;
        li_feed g;
        if (doc) {
            if (!li_feed_parse(doc, len, &g, &why) || g.n != f.n || g.archive != f.archive ||
                strcmp(g.prev_archive, f.prev_archive) != 0)
                abort();
            for (size_t i = 0; i < f.n; i++)
                if (strcmp(g.e[i].uuid, f.e[i].uuid) || strcmp(g.e[i].href, f.e[i].href) ||
                    strcmp(g.e[i].sha256, f.e[i].sha256) || g.e[i].length != items[i].length)
                    abort();
            li_feed_free(&g);
        }
        free(doc);
        free(items);
        li_feed_free(&f);
    }
    return 0;
}

/* libFuzzer target: RFC 8006 parser (HostIndex and HostMetadata shapes),
 * serializer, index build and resolution on whatever parses, and the
 * enforcement that reads resolved values: ACLs and the cache key. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "interfaces/metadata.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mi_policy pol = {NULL, false};
    jerr e;
    mi_node *n = mi_node_parse((const char *)data, size, &pol, &e);
    if (n) {
        json_decref(mi_node_to_json(n));
        mi_node_free(n);
    }
    mi_host_index *x = mi_host_index_parse((const char *)data, size, &pol, &e);
    if (x) {
        json_decref(mi_host_index_to_json(x));
        if (mi_index_build(x)) {
            mi_resolution r;
            for (size_t i = 0; i < x->n_hosts; i++) {
                const char *h = x->hosts[i].host;
                static const char *const drop[] = {"URISigningPackage", NULL};
                const char *t = (const char *)data;
                size_t tn = size > 64 ? 64 : size;
                char key[256];
                mi_facts f = {.ip = {192, 0, 2, 1}, .now = 1000, .protocol = "http/1.1"};
                if (mi_resolve(x, h, strlen(h), "/a/b.ts?x=1&y", 13, &r) == MI_RESOLVED) {
                    mi_acl_check(&r, &f);
                    mi_cache_key(&r, "/a/b.ts?x=1&y", 13, drop, key, sizeof key, NULL);
                }
                if (mi_resolve(x, h, strlen(h), t, tn, &r) == MI_RESOLVED)
                    mi_cache_key(&r, t, tn, drop, key, sizeof key, NULL);
            }
        }
        mi_host_index_free(x);
    }
    return 0;
}

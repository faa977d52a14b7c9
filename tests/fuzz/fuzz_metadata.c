/* libFuzzer target: RFC 8006 parser (HostIndex and HostMetadata shapes),
 * serializer, index build and resolution on whatever parses. */
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
                mi_resolve(x, h, strlen(h), "/a/b.ts?x=1", 11, &r);
                mi_resolve(x, h, strlen(h), (const char *)data, size > 64 ? 64 : size, &r);
            }
        }
        mi_host_index_free(x);
    }
    return 0;
}

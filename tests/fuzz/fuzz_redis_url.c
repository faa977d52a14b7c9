/* libFuzzer target: Redis URLs (common/store.h store_parse_url). Whatever
 * parses has NUL-terminated fields within their bounds, a port in range
 * for each host, and between one and STORE_MAX_SENTINELS sentinels with a
 * master name exactly when it is a Sentinel URL. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    store_url u;
    if (!store_parse_url((const char *)data, size, &u))
        return 0;
    if (size > 4096 || memchr(u.host, 0, sizeof u.host) == NULL || memchr(u.path, 0, sizeof u.path) == NULL ||
        memchr(u.password, 0, sizeof u.password) == NULL || memchr(u.master_name, 0, sizeof u.master_name) == NULL)
        abort();
    if (u.kind == STORE_URL_TCP && (u.port < 1 || u.port > 65535 || !u.host[0]))
        abort();
    if (u.kind == STORE_URL_UNIX && u.path[0] != '/')
        abort();
    if (u.kind == STORE_URL_SENTINEL) {
        if (u.nsentinels < 1 || u.nsentinels > STORE_MAX_SENTINELS || !u.master_name[0])
            abort();
        for (size_t i = 0; i < u.nsentinels; i++)
            if (u.sentinels[i].port < 1 || u.sentinels[i].port > 65535 || !u.sentinels[i].host[0])
                abort();
    } else if (u.nsentinels) {
        abort();
    }
    if (u.min_replicas_acked < -1 || u.min_replicas_acked > 64 || u.ack_timeout_ms < 1)
        abort();
    return 0;
}

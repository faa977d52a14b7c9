/* libFuzzer target: the egress policy (common/egress.h). The input is an
 * allow entry, a URL and an address: whatever they are, an accepted URL
 * is http or https without credentials and with a canonical host and a
 * port; an IPv4-mapped IPv6 address is decided as its IPv4 address; no
 * special-purpose address passes a policy whose entries do not name it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/egress.h"
#include "common/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 17)
        return 0;
    ipt_addr a = {.v6 = data[0] & 1};
    memcpy(a.bytes, data + 1, 16);
    if (!a.v6)
        memset(a.bytes + 4, 0, 12);
    const char *rest = (const char *)data + 17;
    size_t n = size - 17;
    const char *nul = memchr(rest, 0, n);
    size_t el = nul ? (size_t)(nul - rest) : 0;
    char *entry = strndup(rest, el);
    const char *url = nul ? nul + 1 : rest;
    size_t ul = nul ? n - el - 1 : n;

    egress_policy *fixed = egress_new(true), *custom = egress_new(data[0] & 2);
    char why[200];
    egress_allow(fixed, "192.0.2.7:8080", why, sizeof why);
    bool custom_ok = entry && egress_allow(custom, entry, why, sizeof why);

    egress_target t;
    if (egress_check_url(fixed, url, ul, &t) == EGRESS_OK) {
        if (!(ul > 7 && (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0)))
            abort();
        if (t.port < 1 || t.port > 65535 || !t.host[0] || strchr(t.host, '@'))
            abort();
        char again[300];
        size_t nl;
        if (url_canon_host(t.host, strlen(t.host), false, again, sizeof again, &nl) != URL_CANON_OK ||
            strcmp(again, t.host) != 0)
            abort();
        /* nothing in "fixed" names a loopback or private address */
        egress_verdict v = egress_check_addr(fixed, &t, &a);
        if (v == EGRESS_OK && egress_special(&a) && !(t.port == 8080 && !a.v6 && !memcmp(a.bytes, "\xc0\x00\x02\x07", 4)))
            abort();
        if (!a.v6) {
            ipt_addr m = {.v6 = 1};
            m.bytes[10] = m.bytes[11] = 0xff;
            memcpy(m.bytes + 12, a.bytes, 4);
            if (egress_check_addr(fixed, &t, &m) != v)
                abort();
            if (custom_ok && egress_check_addr(custom, &t, &m) != egress_check_addr(custom, &t, &a))
                abort();
        }
    }
    egress_free(fixed);
    egress_free(custom);
    free(entry);
    return 0;
}

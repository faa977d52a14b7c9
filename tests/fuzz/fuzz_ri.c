/* libFuzzer target: RI (RFC 7975) request, response and error bodies, and
 * the IP address / prefix text parsers, the content host in a path. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/iptable.h"
#include "interfaces/redirection.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    jerr e;
    ri_request r;
    if (ri_request_parse(s, size, &r, &e)) {
        const char *why;
        ri_loop_ok(&r, "dcdn-b", &why);
        ri_request_free(&r);
    }
    ri_response p;
    if (ri_response_parse(s, size, &p, &e))
        ri_response_free(&p);
    char *z = malloc(size + 1), host[64], out[256];
    if (z) {
        memcpy(z, data, size);
        z[size] = 0;
        const char *rest;
        if (ri_split_host_path(z, host, sizeof host, &rest))
            ri_host_path(host, rest, out, sizeof out);
        free(z);
    }
    int code;
    char reason[128];
    ri_error_parse(s, size, &code, reason, sizeof reason);
    ipt_addr a;
    unsigned len;
    if (ipt_parse_prefix(s, size, &a, &len)) {
        char buf[IPT_TEXT_MAX];
        ipt_format_prefix(&a, len, buf, sizeof buf);
        ipt_addr b;
        unsigned l2;
        if (!ipt_parse_prefix(buf, strlen(buf), &b, &l2) || l2 != len ||
            memcmp(a.bytes, b.bytes, 16) != 0)
            abort(); /* formatting round-trips */
    }
    ipt_parse_addr(s, size, &a);
    return 0;
}

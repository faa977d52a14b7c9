/* libFuzzer target: CI/T commands (RFC 8007) as the dCDN's trigger server
 * reads them, the pattern matcher they carry, and trigger status resources
 * as the uCDN reads them: what parses writes back to JSON that parses to
 * the same resource. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "interfaces/triggers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cit_command c;
    jerr e = {0};
    if (cit_command_parse((const char *)data, size, &c, &e) && !c.cancel) {
        cit_spec_selects(&c.spec, "http://video.example.com/vod/m1/720p/seg_1.ts?a=1", "m1");
        for (size_t i = 0; i < c.spec.n_content_patterns; i++)
            cit_pattern_match(&c.spec.content_patterns[i], "https://a.example/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/b?c");
    }
    cit_command_free(&c);
    cit_status_doc d;
    json_t *root;
    if (cit_status_doc_parse((const char *)data, size, &d, &root, &e)) {
        json_t *back = cit_status_doc_json(&d);
        char *txt = back ? json_dumps(back, JSON_COMPACT) : NULL;
        cit_status_doc d2;
        json_t *root2;
        if (!txt || !cit_status_doc_parse(txt, strlen(txt), &d2, &root2, &e) || d2.status != d.status ||
            d2.version != d.version || d2.ctime != d.ctime || d2.mtime != d.mtime || d2.etime != d.etime ||
            !json_equal(d2.spec, d.spec))
            abort();
        json_decref(root2);
        free(txt);
        json_decref(back);
        json_decref(root);
    }
    /* the input as a pattern against itself and a fixed URL */
    if (size < 512) {
        char *z = malloc(size + 1);
        if (!z)
            return 0;
        memcpy(z, data, size);
        z[size] = 0;
        cit_pattern p = {z, size & 1, size & 2};
        cit_pattern_match(&p, z);
        cit_pattern_match(&p, "http://video.example.com/vod/m1/seg_1.ts?x=$*?");
        free(z);
    }
    return 0;
}

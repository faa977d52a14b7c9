/* libFuzzer target: CI/T commands (RFC 8007) as the dCDN's trigger server
 * reads them, and the pattern matcher they carry. */
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

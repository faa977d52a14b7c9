/* libFuzzer target: FCI capability advertisements (RFC 8008) with their
 * footprints; whatever parses must serialize and parse again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "interfaces/fci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jerr e;
    fci_set *s = fci_parse((const char *)data, size, &e);
    if (!s)
        return 0;
    json_t *j = fci_to_json(s);
    char *txt = json_dumps(j, JSON_COMPACT);
    fci_set *again = fci_parse(txt, strlen(txt), &e);
    if (!again)
        abort(); /* our own serialization must be valid */
    fp_client c = {0};
    ipt_parse_addr("10.1.2.3", 8, &c.ip);
    c.country[0] = 'U', c.country[1] = 'S';
    for (size_t i = 0; i < s->n; i++)
        fp_list_match(s->caps[i].fps, s->caps[i].n_fps, &c);
    fci_free(again);
    free(txt);
    json_decref(j);
    fci_free(s);
    return 0;
}

/* libFuzzer target: CDNI logging files (RFC 7937) through the receiver's
 * parser, field lists, and the QSTRING escaping, which must round-trip. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/gz.h"
#include "interfaces/logging.h"

static void on_rec(void *ud, const li_fields *f, const char *const *v, const size_t *len)
{
    char out[256];
    bool absent;
    for (size_t i = 0; i < f->n; i++)
        li_unquote(v[i], len[i], out, sizeof out, &absent);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    li_summary sum;
    const char *why;
    li_parse(s, size, on_rec, NULL, &sum, &why);
    li_fields f;
    li_fields_parse(s, size, &f, &why);
    if (gz_is_gzip(s, size)) { /* a gzip'd file, as cdnictl and the collector read them */
        buf g;
        buf_init(&g, 0, 0);
        if (gz_inflate(s, size, 1 << 20, &g, &why))
            li_parse(g.data, g.len, on_rec, NULL, &sum, &why);
        buf_free(&g);
    }
    /* escaping round trip on the input as a C string */
    char *z = malloc(size + 1);
    if (!z)
        return 0;
    memcpy(z, data, size);
    z[size] = 0;
    buf b;
    buf_init(&b, 0, 0);
    li_put_qstring(&b, z);
    char *back = malloc(strlen(z) + 1);
    bool absent;
    if (!li_unquote(b.data, b.len, back, strlen(z) + 1, &absent) || strcmp(back, z) != 0)
        abort();
    for (size_t i = 0; i < b.len; i++) /* QSTRING: printable ASCII only, '"' only at the ends */
        if ((unsigned char)b.data[i] < 0x20 || (unsigned char)b.data[i] >= 0x7f ||
            (b.data[i] == '"' && i != 0 && i != b.len - 1))
            abort();
    buf_truncate(&b, 0);
    li_put_nhtab(&b, z);
    for (size_t i = 0; i < b.len; i++) /* NHTABSTRING: SP and VCHAR only */
        if ((unsigned char)b.data[i] < 0x20 || (unsigned char)b.data[i] >= 0x7f)
            abort();
    free(back);
    buf_free(&b);
    free(z);
    return 0;
}

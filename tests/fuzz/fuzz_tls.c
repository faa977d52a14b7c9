/* libFuzzer target: the SPKI pin form and SNI name matching (common/tls.h).
 * The input is split at its first NUL. A pin that parses gives 32 bytes
 * whose base64 and hex forms parse back to the same; a name matches
 * itself, and a wildcard matches only a name one label longer than its
 * suffix. */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = 0;
    size_t a = strlen(s);
    const char *b = a < size ? s + a + 1 : "";
    unsigned char k[32], k2[32];
    if (tls_parse_spki(s, k)) {
        char form[8 + 45 + 1] = "sha256//", hex[65];
        EVP_EncodeBlock((unsigned char *)form + 8, k, 32);
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", k[i]);
        if (!tls_parse_spki(form, k2) || memcmp(k, k2, 32) != 0)
            abort();
        if (!tls_parse_spki(hex, k2) || memcmp(k, k2, 32) != 0)
            abort();
    }
    if (*s && !tls_name_matches(s, s) && !(s[0] == '*' && s[1] == '.'))
        abort();
    if (tls_name_matches(s, b) && strcmp(s, b) != 0) {
        /* only a wildcard, and then b is one label and the suffix */
        const char *dot = strchr(b, '.');
        if (s[0] != '*' || s[1] != '.' || !dot || dot == b || strcmp(dot, s + 1) != 0)
            abort();
    }
    free(s);
    return 0;
}

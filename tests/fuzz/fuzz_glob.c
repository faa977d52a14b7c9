/* libFuzzer target: glob patterns (common/glob.h). Input: a flags byte
 * (bit 0 case-sensitive, bit 1 strict), then pattern NUL subject. Every
 * pattern compiles in n + 1 tokens unless strict refuses an escape; the
 * matcher agrees with a plain dynamic-programming matcher, and the bytes
 * it says a literal matched are that literal. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/glob.h"

#define MAXN 256

static bool eq(uint16_t t, unsigned char c, bool cs) { return t == (cs ? c : (unsigned char)tolower(c)); }

/* dp[i][j]: prog[i..) matches s[j..) */
static bool reference(const uint16_t *p, size_t m, const char *s, size_t n, bool cs)
{
    static bool dp[MAXN + 2][MAXN + 2];
    for (size_t i = m + 1; i-- > 0;)
        for (size_t j = n + 1; j-- > 0;) {
            if (i == m)
                dp[i][j] = j == n;
            else if (p[i] == GLOB_ANY)
                dp[i][j] = dp[i + 1][j] || (j < n && dp[i][j + 1]);
            else
                dp[i][j] = j < n && (p[i] == GLOB_ONE || eq(p[i], (unsigned char)s[j], cs)) && dp[i + 1][j + 1];
        }
    return dp[0][0];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool cs = data[0] & 1, strict = data[0] & 2;
    const char *pat = (const char *)data + 1, *nul = memchr(pat, 0, size - 1);
    size_t pn = nul ? (size_t)(nul - pat) : size - 1;
    const char *s = nul ? nul + 1 : "";
    size_t sn = nul ? size - 1 - pn - 1 : 0;
    if (pn > MAXN || sn > MAXN)
        return 0;
    uint16_t prog[MAXN + 1];
    size_t m = 0, bad = SIZE_MAX;
    if (!glob_compile(pat, pn, cs, strict, prog, pn + 1, &m, &bad)) {
        if (!strict || bad >= pn || pat[bad] != '$')
            abort(); /* only a strict escape may fail with room enough */
        return 0;
    }
    if (m > pn)
        abort();
    for (size_t i = 1; i < m; i++)
        if (prog[i] == GLOB_ANY && prog[i - 1] == GLOB_ANY)
            abort();
    unsigned char wild[MAXN + 1];
    memset(wild, 2, sizeof wild);
    bool hit = glob_match(prog, m, s, sn, cs, wild);
    if (hit != reference(prog, m, s, sn, cs))
        abort();
    if (hit)
        for (size_t j = 0; j < sn; j++)
            if (wild[j] > 1)
                abort(); /* every byte of a match was matched by something */
    return 0;
}

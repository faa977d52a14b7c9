/* Glob patterns. See glob.h. */
#include "common/glob.h"

#include <ctype.h>

bool glob_compile(const char *pat, size_t n, bool case_sensitive, bool strict, uint16_t *prog, size_t cap,
                  size_t *len, size_t *bad_at)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)pat[i];
        uint16_t t;
        if (c == '$' && i + 1 < n && (pat[i + 1] == '$' || pat[i + 1] == '*' || pat[i + 1] == '?')) {
            c = (unsigned char)pat[++i];
            t = case_sensitive ? c : (uint16_t)tolower(c);
        } else if (c == '$' && strict) {
            if (bad_at)
                *bad_at = i;
            return false;
        } else if (c == '*') {
            if (k && prog[k - 1] == GLOB_ANY) /* "**" is "*" */
                continue;
            t = GLOB_ANY;
        } else if (c == '?') {
            t = GLOB_ONE;
        } else {
            t = case_sensitive ? c : (uint16_t)tolower(c);
        }
        if (k == cap)
            return false;
        prog[k++] = t;
    }
    *len = k;
    return true;
}

bool glob_match(const uint16_t *prog, size_t plen, const char *s, size_t n, bool case_sensitive, unsigned char *wild)
{
    size_t pi = 0, si = 0, star = SIZE_MAX, mark = 0;
    while (si < n) {
        if (pi < plen) {
            uint16_t t = prog[pi];
            unsigned char c = (unsigned char)s[si];
            if (!case_sensitive)
                c = (unsigned char)tolower(c);
            if (t == GLOB_ANY) {
                star = pi++;
                mark = si;
                continue;
            }
            if (t == GLOB_ONE || t == c) {
                if (wild)
                    wild[si] = t == GLOB_ONE;
                pi++;
                si++;
                continue;
            }
        }
        if (star == SIZE_MAX)
            return false;
        pi = star + 1;
        if (wild)
            wild[mark] = 1; /* one more byte for the '*' */
        si = ++mark;
    }
    while (pi < plen && prog[pi] == GLOB_ANY)
        pi++;
    return pi == plen;
}

/* Helpers shared by the unit tests: reading data files from tests/data. */
#ifndef TESTS_TESTUTIL_H
#define TESTS_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whole file as a malloc'd buffer (NUL-terminated); NULL if unreadable. */
static inline char *read_data(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "tests/data/%s", name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n] = 0;
        *len = (size_t)n;
    }
    return b;
}

/* The file's first line, without its line end (malloc'd), or NULL. */
static inline char *read_line(const char *name)
{
    size_t n;
    char *b = read_data(name, &n);
    if (b)
        b[strcspn(b, "\r\n")] = 0;
    return b;
}

/* tests/data/rfc9246/<name>.jwt, one of RFC 9246's example tokens
 * (malloc'd); a missing file ends the test program. */
static inline char *rfc9246_token(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "rfc9246/%s.jwt", name);
    char *t = read_line(path);
    if (!t) {
        fprintf(stderr, "cannot read tests/data/%s\n", path);
        abort();
    }
    return t;
}

#endif

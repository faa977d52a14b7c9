/* A growable byte buffer: the output side of rewriters and encoders.
 *
 * Appends never fail silently: once an allocation fails (or the limit set
 * with buf_limit is passed) the buffer is marked failed, further appends
 * are ignored, and buf_ok() says so, so callers check once at the end. */
#ifndef COMMON_BUF_H
#define COMMON_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct {
    char *data; /* NUL-terminated while ok */
    size_t len, cap;
    size_t limit; /* 0: none */
    bool failed;
} buf;

void buf_init(buf *b, size_t reserve, size_t limit);
void buf_free(buf *b);
bool buf_grow(buf *b, size_t more); /* room for `more` bytes after len */
/* The data, handed over (malloc'd, NUL-terminated); the buffer is empty after. */
char *buf_take(buf *b, size_t *len);

static inline bool buf_ok(const buf *b) { return !b->failed; }

static inline void buf_add(buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap && !buf_grow(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

static inline void buf_adds(buf *b, const char *s) { buf_add(b, s, strlen(s)); }

/* Back to n bytes (n <= len), e.g. to drop a tentative append. */
static inline void buf_truncate(buf *b, size_t n)
{
    if (n < b->len) {
        b->len = n;
        b->data[n] = 0;
    }
}

#endif

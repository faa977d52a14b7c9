/* Growable byte buffer. See buf.h. */
#include "common/buf.h"

#include <stdint.h>
#include <stdlib.h>

void buf_init(buf *b, size_t reserve, size_t limit)
{
    *b = (buf){.limit = limit};
    if (reserve)
        buf_grow(b, reserve);
}

void buf_free(buf *b)
{
    free(b->data);
    *b = (buf){0};
}

bool buf_grow(buf *b, size_t more)
{
    if (b->failed)
        return false;
    size_t need = b->len + more + 1;
    if (need < b->len || (b->limit && need > b->limit + 1)) {
        b->failed = true;
        return false;
    }
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (b->limit && cap > b->limit + 1)
        cap = b->limit + 1;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->failed = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    b->data[b->len] = 0;
    return true;
}

char *buf_take(buf *b, size_t *len)
{
    if (b->failed || !buf_grow(b, 0)) {
        buf_free(b);
        return NULL;
    }
    char *d = b->data;
    if (len)
        *len = b->len;
    *b = (buf){.limit = b->limit};
    return d;
}

/* An append-only journal file whose appends cost no system call.
 *
 * The file is created at its full size (fallocate, so a full disk is
 * found here and not later as a SIGBUS) and mapped shared: an append is a
 * memcpy into the page cache. What was appended survives the death of the
 * process (kill -9), as a write(2) would; it is not fsync'd. The unused
 * tail of the file stays zero, so the data's length is where the first NUL
 * byte is: appended data must not contain NUL.
 *
 * Where the file system cannot preallocate, the journal falls back to a
 * write(2) per append (same guarantees, slower). A journal left behind by
 * a previous process is opened with journal_reopen. Not thread-safe: the
 * caller serializes. Knows nothing of what is journaled. */
#ifndef COMMON_JOURNAL_H
#define COMMON_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    int fd;
    char *map;   /* the whole file, or NULL (write(2) mode, empty, or not open) */
    size_t cap;  /* bytes appends may fill */
    size_t size; /* the mapping's size */
    size_t len;  /* bytes appended */
} journal;

/* Creates path (which must not exist) for cap bytes of appends. */
bool journal_create(journal *j, const char *path, size_t cap);
/* false when n bytes do not fit in cap (nothing written), or on error. */
bool journal_append(journal *j, const void *p, size_t n);
/* Maps a journal left behind, read-only; j->len is where its data ends
 * (0 and no mapping for an empty file). */
bool journal_reopen(journal *j, const char *path);
/* The data, mapped; NULL in write(2) mode (journal_reopen maps it). */
static inline const char *journal_data(const journal *j) { return j->map; }
void journal_close(journal *j);

#endif

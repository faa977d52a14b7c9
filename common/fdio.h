/* Writes that finish: all n bytes to fd, going on after short writes and
 * EINTR; false on an error (errno says which) or a write of nothing. */
#ifndef COMMON_FDIO_H
#define COMMON_FDIO_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <unistd.h>

static inline bool fd_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        c += k;
        n -= (size_t)k;
    }
    return true;
}

#endif

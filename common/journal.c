#include "common/journal.h"
#include "common/fdio.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>


bool journal_create(journal *j, const char *path, size_t cap)
{
    memset(j, 0, sizeof *j);
    j->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (j->fd < 0)
        return false;
    j->cap = j->size = cap;
    if (fallocate(j->fd, 0, 0, (off_t)cap) == 0) {
        void *m = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_SHARED, j->fd, 0);
        if (m != MAP_FAILED) {
            /* Large folios for the page cache behind it where the file
             * system has them: fewer, larger page faults as appends first
             * touch it (a third of an append's cost; bench_logging). */
            madvise(m, cap, MADV_HUGEPAGE);
            j->map = m;
            return true;
        }
        if (ftruncate(j->fd, 0) != 0) {
            close(j->fd);
            j->fd = -1;
            return false;
        }
    } else if (errno == ENOSPC) {
        close(j->fd);
        j->fd = -1;
        unlink(path);
        errno = ENOSPC;
        return false;
    }
    j->size = 0;
    return true; /* write(2) mode */
}

bool journal_append(journal *j, const void *p, size_t n)
{
    if (j->fd < 0 || j->len + n > j->cap)
        return false;
    if (j->map)
        memcpy(j->map + j->len, p, n);
    else if (!fd_write_all(j->fd, p, n))
        return false;
    j->len += n;
    return true;
}

bool journal_reopen(journal *j, const char *path)
{
    memset(j, 0, sizeof *j);
    j->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (j->fd < 0 || fstat(j->fd, &sb) != 0) {
        if (j->fd >= 0)
            close(j->fd);
        j->fd = -1;
        return false;
    }
    j->size = (size_t)sb.st_size;
    if (!j->size)
        return true; /* nothing in it */
    void *m = mmap(NULL, j->size, PROT_READ, MAP_SHARED, j->fd, 0);
    if (m == MAP_FAILED) {
        close(j->fd);
        j->fd = -1;
        return false;
    }
    j->map = m;
    j->cap = j->len = strnlen(m, j->size);
    return true;
}

void journal_close(journal *j)
{
    if (j->map)
        munmap(j->map, j->size);
    if (j->fd >= 0)
        close(j->fd);
    j->map = NULL;
    j->fd = -1;
}

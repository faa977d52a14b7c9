/* CDNI logging files on disk. See logging_file.h. */
#include "interfaces/logging_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/gz.h"

#define SEAL_SLICE (128 * 1024)

static void fsync_parent(const char *path)
{
    char d[1024];
    snprintf(d, sizeof d, "%s", path);
    int fd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

bool li_seal(journal *j, const char *final_path, int level, size_t *records, const char **why)
{
    const char *data = journal_data(j);
    size_t len = j->len;
    if (!data && len) {
        *why = "the journal is not mapped";
        return false;
    }
    /* a line cut by a crash is not a record */
    while (len && !(len >= 2 && data[len - 2] == '\r' && data[len - 1] == '\n'))
        len--;
    if (!*records) /* not known: counted */
        for (const char *p = data, *end = data + len; p < end;) {
            if (*p != '#')
                (*records)++;
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            p = nl ? nl + 1 : end;
        }
    if (!*records)
        return true;
    char tmp[1100];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", final_path) >= sizeof tmp) {
        *why = "path too long";
        return false;
    }
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        *why = strerror(errno);
        return false;
    }
    /* hashed and compressed a slice at a time, while the slice is in cache */
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    gz_out g;
    bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) && gz_out_open(&g, out, level);
    *why = "SHA-256 or zlib failed";
    for (size_t off = 0; ok && off < len; off += SEAL_SLICE) {
        size_t n = len - off < SEAL_SLICE ? len - off : SEAL_SLICE;
        ok = EVP_DigestUpdate(md, data + off, n) && gz_out_write(&g, data + off, n, false);
    }
    unsigned char h[32];
    unsigned hl = 0;
    char line[LI_HASH_LINE_MAX];
    size_t ll = ok && EVP_DigestFinal_ex(md, h, &hl) ? li_hash_line_of(h, line) : 0;
    ok = ll && gz_out_write(&g, line, ll, true);
    if (md) {
        gz_out_end(&g);
        EVP_MD_CTX_free(md);
    }
    if (ok) /* best effort: a feed without the value is still a feed */
        (void)fsetxattr(out, LI_HASH_XATTR, line + 14, 64, 0);
    if (ok && fsync(out) != 0) {
        ok = false;
        *why = strerror(errno);
    }
    close(out);
    if (ok && rename(tmp, final_path) != 0) {
        ok = false;
        *why = strerror(errno);
    }
    if (!ok) {
        unlink(tmp);
        return false;
    }
    fsync_parent(final_path);
    return true;
}

bool li_file_hash(const char *path, char out[65])
{
    ssize_t n = getxattr(path, LI_HASH_XATTR, out, 64);
    if (n != 64)
        return false;
    out[64] = 0;
    for (int i = 0; i < 64; i++)
        if (!((out[i] >= '0' && out[i] <= '9') || (out[i] >= 'a' && out[i] <= 'f')))
            return false;
    return true;
}

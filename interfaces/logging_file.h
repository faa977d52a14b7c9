/* CDNI logging files on disk (RFC 7937): a producer's journal sealed into
 * the gzip'd file it publishes.
 *
 * The journal (common/journal) holds the file's directives and records as
 * they were written. Sealing leaves out a last line a crash cut, hashes
 * and gzips the journal a slice at a time (each slice read once while in
 * cache) to <final>.tmp, ends it with the #SHA256-hash line, fsyncs it,
 * renames it to <final> and fsyncs the directory: once <final> exists it
 * is complete and durable. The journal itself is not modified.
 *
 * The sealed file also carries its #SHA256-hash value as an extended
 * attribute (LI_HASH_XATTR), so a feed can list it without reading the
 * file; where the file system has no user attributes the file is sealed
 * all the same, without it. */
#ifndef INTERFACES_LOGGING_FILE_H
#define INTERFACES_LOGGING_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/journal.h"
#include "interfaces/logging.h"

/* Seals a mapped journal (journal_create's mapping, or journal_reopen).
 * *records: in, how many records the caller wrote to it, 0 when not known
 * (a journal left behind: counted here); out, how many it held. A journal
 * without records is not published: true with *records 0. false with
 * *why: nothing published. */
bool li_seal(journal *j, const char *final_path, int level, size_t *records, const char **why);

#define LI_HASH_XATTR "user.cdni.sha256"
/* A sealed file's #SHA256-hash value (64 lower-case hex digits) from its
 * attribute; false when it has none (sealed where attributes are not
 * kept, or by an older version). */
bool li_file_hash(const char *path, char out[65]);

#endif

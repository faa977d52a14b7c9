/* CDNI logging feeds (RFC 7937 §4.1): the Atom document (RFC 4287) a dCDN
 * publishes its logging files in, with RFC 5005 archive paging; written
 * here for the dCDN (li_feed_write) and read here for the uCDN.
 *
 * Each entry names one logging file: its id (urn:uuid:<file UUID>), where
 * to get it (content@src, else the enclosure link's href), its length
 * when given, and its updated time. The feed's links: self, and
 * prev-archive (the page of older entries, RFC 5005 §4). Relative
 * references are returned as written; li_feed_resolve makes them absolute
 * against the feed's own URL. The parser reads at most len bytes, refuses
 * DTDs and entities (no network, no expansion) and more than LI_FEED_MAX
 * entries.
 *
 * RFC 7937 gives an entry no integrity value; this project's feeds add one,
 * an extension element (RFC 4287 §6.4) in namespace LI_FEED_EXT_NS:
 *   <li:SHA256-hash>64 hex digits</li:SHA256-hash>
 * the value of the file's own #SHA256-hash directive, so a collector can
 * tell that the file it fetched is the one the feed listed. */
#ifndef INTERFACES_LI_FEED_H
#define INTERFACES_LI_FEED_H

#include <stdbool.h>
#include <stddef.h>

#define LI_FEED_MAX 10000
#define LI_FEED_URL_MAX 1024
/* A URN of the registered uuid namespace (RFC 4122), minted for this
 * extension: names it without claiming anyone's domain. */
#define LI_FEED_EXT_NS "urn:uuid:887dab30-8116-45ab-8ed8-559c20cab05a"
#define LI_FEED_EXT_HASH "SHA256-hash"

typedef struct {
    char uuid[40];              /* lower-case 8-4-4-4-12 */
    char href[LI_FEED_URL_MAX]; /* as written */
    long long length;           /* -1: not given */
    char updated[40];
    char sha256[65]; /* LI_FEED_EXT_HASH, lower-case; "" when not given or not 64 hex digits */
} li_feed_entry;

typedef struct {
    li_feed_entry *e;
    size_t n;
    char prev_archive[LI_FEED_URL_MAX]; /* "" when none */
    bool archive;                       /* fh:archive: this page is an archive */
} li_feed;

/* false with *why when the text is not an Atom feed we can use (an entry
 * without a urn:uuid id or without a link is skipped, not fatal). */
bool li_feed_parse(const char *text, size_t len, li_feed *out, const char **why);
void li_feed_free(li_feed *f);
/* ref (absolute http(s) URL, or absolute path) against base; false when
 * ref is anything else or the result does not fit. */
bool li_feed_resolve(const char *base, const char *ref, char *out, size_t cap);

/* --- writing ------------------------------------------------------------------------------ */

typedef struct {
    const char *id, *title, *updated, *author; /* updated: RFC 3339 */
    const char *self, *current;                /* links; current NULL: none */
    const char *prev_archive, *next_archive;   /* NULL: none */
    bool archive;                              /* fh:archive: a complete, unchanging page */
} li_feed_meta;
typedef struct {
    const char *uuid, *href, *updated, *title, *summary;
    long long length; /* bytes of the (gzip'd) file */
    const char *sha256; /* NULL: not given */
} li_feed_item;
/* The feed document; NULL when out of memory. New: the caller frees it
 * (*len its length). Every entry gets an id (urn:uuid), a content@src and
 * an enclosure link of the logging-file type with its length, and a
 * summary (RFC 4287 §4.1.2: required beside content@src). */
char *li_feed_write(const li_feed_meta *m, const li_feed_item *items, size_t n, size_t *len);

#endif

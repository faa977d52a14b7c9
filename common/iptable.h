/* IP prefix table: longest-prefix match over IPv4 and IPv6.
 *
 * Built once from a list of prefixes, then read-only (share it through a
 * snapshot). The builder flattens the nested prefixes into disjoint address
 * intervals, each labelled with its innermost prefix, so a lookup is one
 * binary search; for large IPv4 sets it also fills a DIR-24-8 table (one or
 * two memory reads per lookup, 64 MiB of address space, only touched pages
 * resident). Every entry knows its parent (the next enclosing prefix, or an
 * earlier identical prefix), so a caller can walk from the most specific
 * match outwards and see every prefix that covers an address.
 *
 * Prefixes with host bits set are masked ("10.1.2.3/8" is 10.0.0.0/8). */
#ifndef COMMON_IPTABLE_H
#define COMMON_IPTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IPT_NONE UINT32_MAX
#define IPT_TEXT_MAX 64 /* longest prefix text we parse ("ffff:...:ffff/128") */

typedef struct {
    uint8_t v6;         /* 0: IPv4, 1: IPv6 */
    uint8_t bytes[16];  /* network order; IPv4 in the first 4 */
} ipt_addr;

typedef struct {
    ipt_addr addr; /* masked */
    uint8_t len;
    uint32_t value;  /* the caller's label */
    uint32_t parent; /* entry index, or IPT_NONE */
} ipt_entry;

typedef struct iptable iptable;
typedef struct iptable_builder iptable_builder;

iptable_builder *iptb_new(void); /* new: iptb_build consumes it */
/* false on out of memory or a length beyond the family's width. */
bool iptb_add(iptable_builder *b, const ipt_addr *a, unsigned len, uint32_t value);
/* Consumes the builder (also on failure). dir24: -1 automatic (DIR-24-8 from
 * IPT_DIR24_MIN IPv4 prefixes), 0 never, 1 always. Entry indices are the
 * order of iptb_add calls. */
#define IPT_DIR24_MIN 4096
iptable *iptb_build(iptable_builder *b, int dir24); /* new: ipt_free */
void ipt_free(iptable *t);

/* Innermost entry covering a, or IPT_NONE. */
uint32_t ipt_lookup(const iptable *t, const ipt_addr *a);
uint32_t ipt_lookup4(const iptable *t, uint32_t host_order);
const ipt_entry *ipt_entry_at(const iptable *t, uint32_t idx); /* borrowed from t */
size_t ipt_count(const iptable *t);
size_t ipt_intervals(const iptable *t, bool v6);
bool ipt_has_dir24(const iptable *t);

/* Text forms, length-bounded (s need not be NUL-terminated). An IPv4-mapped
 * IPv6 address (::ffff:a.b.c.d) is taken as the IPv4 address. */
bool ipt_parse_addr(const char *s, size_t n, ipt_addr *out);
bool ipt_parse_prefix(const char *s, size_t n, ipt_addr *out, unsigned *len);
/* "a.b.c.d/len" or "x::/len" into buf (at least IPT_TEXT_MAX bytes). */
void ipt_format_prefix(const ipt_addr *a, unsigned len, char *buf, size_t cap);
/* Does prefix (a,len) contain address x? */
bool ipt_contains(const ipt_addr *a, unsigned len, const ipt_addr *x);
/* Keeps the first len bits of a, zeroing the rest. */
void ipt_mask(ipt_addr *a, unsigned len);

#endif

/* CDNI footprints: RFC 8006 §4.2.2.2 types (ipv4cidr, ipv6cidr, asn,
 * countrycode) and RFC 9388's subdivisioncode and footprintunion.
 *
 * Shared by metadata (LocationACL) and FCI (capability footprints). Values
 * are parsed into binary form once, so matching a client never re-parses
 * text. Semantics used here:
 *   - the values of one footprint object are alternatives (any matches);
 *   - a list of footprint objects narrows: all of them must match
 *     (RFC 8008 §5; RFC 9388 calls this the narrowing semantic);
 *   - footprintunion is the union of its members (any matches), for
 *     combining types, e.g. IPv4 and IPv6 prefixes. Unions do not nest.
 * Pure: no I/O. */
#ifndef INTERFACES_FOOTPRINT_H
#define INTERFACES_FOOTPRINT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/iptable.h"
#include "common/jcheck.h"

typedef enum { FP_IPV4CIDR, FP_IPV6CIDR, FP_ASN, FP_COUNTRY, FP_SUBDIVISION, FP_UNION } fp_type;

typedef struct {
    ipt_addr addr;
    uint8_t len;
} fp_prefix;

typedef struct footprint {
    fp_type type;
    size_t n;                  /* number of values (or members, for a union) */
    fp_prefix *prefixes;       /* FP_IPV4CIDR, FP_IPV6CIDR */
    uint32_t *asns;            /* FP_ASN */
    char (*codes)[8];          /* FP_COUNTRY "US", FP_SUBDIVISION "US-CA" (upper case) */
    struct footprint *members; /* FP_UNION */
} footprint;

/* What is known of an end user. asn 0 and "" mean unknown. */
typedef struct {
    ipt_addr ip;
    uint32_t asn;
    char country[3];
    char subdivision[8];
} fp_client;

const char *fp_type_name(fp_type t); /* static text */

/* Parse and validate one Footprint object; *e names the JSON path. */
bool fp_parse(json_t *o, const char *path, footprint *out, jerr *e);
bool fp_check(json_t *o, const char *path, jerr *e);
/* A JSON array of Footprint objects. */
bool fp_list_parse(json_t *arr, const char *path, footprint **out, size_t *n, jerr *e);
void fp_free(footprint *f); /* contents only */
void fp_list_free(footprint *f, size_t n);

/* New reference, canonical form (prefixes masked, codes upper case). */
json_t *fp_to_json(const footprint *f);
json_t *fp_list_to_json(const footprint *f, size_t n); /* new reference */

/* Does f cover the client? *plen (may be NULL) gets the longest matching
 * prefix length for prefix types, 0 otherwise. */
bool fp_match(const footprint *f, const fp_client *c, unsigned *plen);
/* All of the list (narrowing); an empty list covers everyone. */
bool fp_list_match(const footprint *f, size_t n, const fp_client *c);
/* Made only of IP prefixes (a cidr type, or a union of cidr types). */
bool fp_is_ip(const footprint *f);

#endif

/* CDNI Footprint & Capabilities (RFC 8008, extended by RFC 8804 and
 * RFC 9388): the capability objects a dCDN advertises to a uCDN.
 *
 *   {"capabilities": [{"capability-type": "FCI.DeliveryProtocol",
 *                      "capability-value": {"delivery-protocols": ["http/1.1"]},
 *                      "footprints": [ Footprint, ... ]}, ...]}
 *
 * Understood types and their value members:
 *   FCI.DeliveryProtocol    delivery-protocols    (RFC 8008 §5.1)
 *   FCI.AcquisitionProtocol acquisition-protocols (§5.2)
 *   FCI.RedirectionMode     redirection-modes: DNS-I DNS-R HTTP-I HTTP-R (§5.3)
 *   FCI.Logging             record-types, plus fields and compression (§5.4;
 *                           fields is where a dCDN says it can log s-ccid and
 *                           s-sid, RFC 6983 §3.4.3)
 *   FCI.Metadata            metadata: GenericMetadata types supported (§5.5)
 *   FCI.RedirectTarget      redirecting-hosts, http-target, dns-target (RFC 8804)
 * Other types are kept (and serialized back) but not interpreted. A
 * capability without footprints applies wherever the dCDN has footprint.
 * Pure: no I/O. */
#ifndef INTERFACES_FCI_H
#define INTERFACES_FCI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/jcheck.h"
#include "interfaces/footprint.h"

#define FCI_MAX_DOC (64u << 20)  /* bytes of one advertisement */
#define FCI_MEDIA_TYPE "application/cdni; ptype=FCI.Capabilities"

typedef enum {
    FCI_DELIVERY_PROTOCOL,
    FCI_ACQUISITION_PROTOCOL,
    FCI_REDIRECTION_MODE,
    FCI_LOGGING,
    FCI_METADATA,
    FCI_REDIRECT_TARGET,
    FCI_OTHER
} fci_type;

/* Redirection modes as a bit set. */
enum { FCI_DNS_I = 1, FCI_DNS_R = 2, FCI_HTTP_I = 4, FCI_HTTP_R = 8 };

typedef struct {
    fci_type type;
    char *type_name;
    json_t *value;   /* capability-value as received (owned) */
    char **items;    /* the type's main list (protocols, modes, metadata types, record types) */
    size_t n_items;
    unsigned modes;  /* FCI_REDIRECTION_MODE */
    char **fields;   /* FCI_LOGGING: optional */
    size_t n_fields;
    char **compression;
    size_t n_compression;
    const char *http_target; /* FCI_REDIRECT_TARGET: host[:port] (borrowed from value) */
    footprint *fps;
    size_t n_fps;
} fci_capability;

typedef struct {
    fci_capability *caps;
    size_t n;
} fci_set;

fci_set *fci_parse(const char *buf, size_t len, jerr *e); /* new: fci_free */
fci_set *fci_from_json(json_t *v, const char *path, jerr *e); /* new: fci_free */
json_t *fci_to_json(const fci_set *s); /* new reference */
void fci_free(fci_set *s);

const char *fci_type_name(fci_type t); /* static text */
/* Case-sensitive membership in the capability's main list / logging fields. */
bool fci_has_item(const fci_capability *c, const char *item);
bool fci_has_field(const fci_capability *c, const char *field);
/* Number of prefixes (cidr values, including inside unions) in the set. */
size_t fci_prefix_count(const fci_set *s);

#endif

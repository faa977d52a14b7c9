/* CDNI Logging (RFC 7937): the logging file, its directives and the
 * cdni_http_request_v1 record (with RFC 9246's s-uri-signing fields).
 *
 * File (lines end in CRLF; fields and directive values after HTAB):
 *   #version:	cdni/1.0               first line, exactly once
 *   #UUID:	urn:uuid:...              exactly once
 *   #claimed-origin:	dcdn.example   at most once (dCDN)
 *   #established-origin:	...        at most once (added by the uCDN)
 *   #record-type:	cdni_http_request_v1   before any fields/records
 *   #fields:	date	time	...         before the records it describes
 *   records...
 *   #SHA256-hash:	<64 hex>          at most once, the last line: SHA-256
 *                                      of every byte before that line
 * Directive and field names are case-insensitive; unknown directives are
 * ignored. A receiver ignores a file whose directives break those
 * occurrence rules, and ignores a record whose number of values is not
 * that of its fields directive (§3.4.1).
 *
 * Values: NHTABSTRING (SP and visible ASCII; anything else percent-
 * encoded here), QSTRING (in double quotes; '"', '%', control and
 * non-ASCII bytes percent-encoded as %XX), DEC, DATE, TIME; "-" for a
 * value not available. Pure: no I/O. The writer appends to a buf; the
 * parser is length-bounded. */
#ifndef INTERFACES_LOGGING_H
#define INTERFACES_LOGGING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define LI_VERSION "cdni/1.0"
#define LI_RECORD_HTTP "cdni_http_request_v1"
#define LI_MAX_FIELDS 40
#define LI_HEADER_NAME_MAX 64
#define LI_MAX_LINE (64 * 1024)

typedef enum {
    LF_DATE,
    LF_TIME,
    LF_TIME_TAKEN,
    LF_C_GROUPID,
    LF_S_IP,
    LF_S_HOSTNAME,
    LF_S_PORT,
    LF_CS_METHOD,
    LF_CS_URI,
    LF_U_URI,
    LF_PROTOCOL,
    LF_SC_STATUS,
    LF_SC_TOTAL_BYTES,
    LF_SC_ENTITY_BYTES,
    LF_CS_HEADER, /* cs(<name>) */
    LF_SC_HEADER, /* sc(<name>) */
    LF_S_CCID,
    LF_S_SID,
    LF_S_CACHED,
    LF_S_URI_SIGNING,             /* RFC 9246 §4.5 */
    LF_S_URI_SIGNING_DENY_REASON, /* RFC 9246 §4.5 */
    LF_N_KNOWN
} li_field_id;

typedef struct {
    li_field_id id;
    char header[LI_HEADER_NAME_MAX]; /* for cs()/sc(): the header name */
} li_field;

typedef struct {
    li_field f[LI_MAX_FIELDS];
    size_t n;
} li_fields;

/* The name of a field as the fields directive writes it ("cs(User-Agent)"). */
void li_field_name(const li_field *f, char *out, size_t cap);
/* Parses one field name; false if it is not one of cdni_http_request_v1. */
bool li_field_parse(const char *s, size_t n, li_field *out);
/* A fields directive value (names separated by HTAB). false with *why if a
 * name is unknown, repeated where the RFC allows one, or a mandatory field
 * (date, time, time-taken, c-groupid, cs-method, u-uri, protocol,
 * sc-status, sc-total-bytes) is missing. */
bool li_fields_parse(const char *s, size_t n, li_fields *out, const char **why);
/* Field list from names ("date", "cs(User-Agent)", ...), NULL-terminated;
 * the same checks. */
bool li_fields_from_names(const char *const *names, li_fields *out, const char **why);

/* --- writing ----------------------------------------------------------------- */

/* One delivery (or redirect) as the producer knows it. Strings may be NULL
 * (written "-"); numbers below 0 are not known ("-"). */
typedef struct {
    long long end_ms;     /* when processing completed, ms since the epoch (UTC) */
    long long taken_us;   /* time-taken */
    const char *c_groupid, *s_ip, *s_hostname;
    int s_port;
    const char *cs_method, *cs_uri, *u_uri, *protocol;
    int sc_status;
    long long sc_total_bytes, sc_entity_bytes;
    const char *s_ccid, *s_sid;
    int s_cached;                 /* 1 hit, 0 miss */
    int s_uri_signing;            /* RFC 9246 verification code (0, 200, 4xx) */
    const char *s_uri_signing_deny_reason;
    /* cs()/sc() header values: may be NULL */
    const char *(*header)(void *ud, bool response, const char *name);
    void *header_ud;
} li_record;

typedef struct {
    long long date_s; /* the second date_txt/time_txt were made for */
    char date_txt[11], time_txt[9];
} li_writer;

bool li_writer_init(li_writer *w);
void li_writer_free(li_writer *w);
/* version, UUID, claimed-origin (may be NULL), record-type, fields. */
bool li_write_head(li_writer *w, buf *out, const char *uuid_urn, const char *claimed_origin, const li_fields *f);
/* One record line for the fields f. */
bool li_write_record(li_writer *w, buf *out, const li_fields *f, const li_record *r);
/* Appends the final #SHA256-hash line; out holds the whole file so far. */
bool li_write_hash(li_writer *w, buf *out);
/* That line for data[0..n) (the whole file before it), into out; its length,
 * 0 on failure. */
#define LI_HASH_LINE_MAX (14 + 64 + 2)
size_t li_hash_line(const char *data, size_t n, char out[LI_HASH_LINE_MAX]);
/* The same line from a SHA-256 the caller computed. */
size_t li_hash_line_of(const unsigned char sha256[32], char out[LI_HASH_LINE_MAX]);

/* Escaping, exposed for tests: appends s as a QSTRING / NHTABSTRING. */
void li_put_qstring(buf *out, const char *s);
void li_put_nhtab(buf *out, const char *s);

/* --- reading ----------------------------------------------------------------- */

typedef struct {
    char uuid[128], claimed_origin[256], established_origin[256], version[32];
    bool has_hash, hash_ok;
    char hash[65]; /* the #SHA256-hash value, lower-case hex; "" when none */
    size_t records, ignored_records; /* accepted; ignored (wrong count of values) */
    size_t fields_directives;
} li_summary;

/* Called per accepted record: values[i] (raw text, len[i]) for fields->f[i]. */
typedef void (*li_record_fn)(void *ud, const li_fields *fields, const char *const *values, const size_t *len);

/* Checks and walks a whole file (len bytes, not NUL-terminated). false with
 * *why when the file is to be ignored: bad line ends, missing or repeated
 * directives, a record before its fields, a hash line not last, or a hash
 * that does not match (then *why says so and s->hash_ok is false). */
bool li_parse(const char *text, size_t len, li_record_fn fn, void *ud, li_summary *s, const char **why);

/* Is the field's value a QSTRING (cs(), sc(), s-ccid, s-sid, s-uri-signing-deny-reason)? */
bool li_field_is_qstring(li_field_id id);

/* A QSTRING's content, percent-decoding into out (cap bytes, NUL added).
 * false if v is not a QSTRING. "-" is reported as not available. */
bool li_unquote(const char *v, size_t n, char *out, size_t cap, bool *absent);

#endif

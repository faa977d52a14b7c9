/* CDNI Control Interface / Triggers (RFC 8007, with the trigger extensions
 * of its second edition): commands, trigger specifications, status
 * resources, collections and error descriptions.
 *
 * A CI/T command (application/cdni; ptype=ci-trigger-command) holds exactly
 * one of "trigger" (a Trigger Specification) or "cancel" (status resource
 * URLs), and a "cdn-path" of CDN PIDs ("AS<number>:<qualifier>"). A
 * ci-trigger-command.v2 holds "trigger.v2" instead of "trigger". A
 * specification: "type" (preposition, invalidate, purge) and at least one
 * of metadata.urls, content.urls, content.ccids, metadata.patterns,
 * content.patterns (patterns not with preposition); optional "extensions"
 * (GenericTriggerExtension: CIT.TimePolicy and CIT.LocationPolicy are
 * understood; another one marked mandatory-to-enforce makes the trigger
 * fail with eunsupported). Unknown members are kept and passed on, as
 * §5 asks. Pure: no I/O; the parser reads at most len bytes. */
#ifndef INTERFACES_TRIGGERS_H
#define INTERFACES_TRIGGERS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/jcheck.h"
#include "interfaces/footprint.h"

#define CIT_MEDIA_COMMAND "application/cdni; ptype=ci-trigger-command"
#define CIT_MEDIA_COMMAND_V2 "application/cdni; ptype=ci-trigger-command.v2"
#define CIT_MEDIA_STATUS "application/cdni; ptype=ci-trigger-status"
#define CIT_MEDIA_COLLECTION "application/cdni; ptype=ci-trigger-collection"
#define CIT_MAX_BODY (4u << 20)
#define CIT_MAX_ITEMS 100000 /* URLs, CCIDs and patterns in one trigger */
#define CIT_MAX_PATTERN 2048

typedef enum { CIT_PREPOSITION, CIT_INVALIDATE, CIT_PURGE } cit_type;
const char *cit_type_name(cit_type t); /* static text */

typedef enum {
    CIT_PENDING,
    CIT_ACTIVE,
    CIT_COMPLETE,
    CIT_PROCESSED,
    CIT_FAILED,
    CIT_CANCELLING,
    CIT_CANCELLED,
    CIT_N_STATUS
} cit_status;
const char *cit_status_name(cit_status s); /* static text */
bool cit_status_parse(const char *s, cit_status *out);
/* complete, processed, failed, cancelled: nothing more happens. */
bool cit_status_final(cit_status s);
/* The state machine (§2.3, §4.3): pending -> active -> complete |
 * processed | failed; pending, active or processed -> cancelling ->
 * cancelled; pending -> failed. A final state never changes (complete and
 * failed are never cancelled). */
bool cit_transition_ok(cit_status from, cit_status to);

/* §5.2.4: '*' any run of characters, '?' one character, "$$", "$*" and
 * "$?" the literals; case-insensitive unless case_sensitive; matched
 * against the URL without its query unless match_query. */
typedef struct {
    const char *pattern;
    bool case_sensitive, match_query;
} cit_pattern;

typedef struct {
    cit_type type;
    int version;                   /* 1: "trigger", 2: "trigger.v2" */
    const char **metadata_urls, **content_urls, **ccids;
    size_t n_metadata_urls, n_content_urls, n_ccids;
    cit_pattern *metadata_patterns, *content_patterns;
    size_t n_metadata_patterns, n_content_patterns;
    /* extensions understood */
    long long window_start, window_end; /* CIT.TimePolicy; 0: none */
    footprint *allow, *deny;            /* CIT.LocationPolicy */
    size_t n_allow, n_deny;
    const char *unsupported;            /* a mandatory extension we do not know, or NULL */
    json_t *json;                       /* the specification as received (owns the strings) */
} cit_spec;

typedef struct {
    bool cancel;        /* a cancel command: urls below */
    cit_spec spec;      /* a trigger command */
    const char **cancel_urls;
    size_t n_cancel;
    const char **cdn_path;
    size_t n_path;
    json_t *json;       /* the whole command */
} cit_command;

/* false with *e naming the JSON path and why (answer 400). */
bool cit_command_parse(const char *body, size_t len, cit_command *out, jerr *e);
/* A specification already checked (as stored); false on anything wrong. */
bool cit_spec_from_json(json_t *spec, int version, cit_spec *out, jerr *e);
void cit_command_free(cit_command *c);
void cit_spec_free(cit_spec *s);

/* Is pid a CDN PID ("AS" 1*DIGIT ":" 1*qualifier)? */
bool cit_pid_ok(const char *pid);
/* Does the command's cdn-path already name pid (a loop, §4.6)? */
bool cit_path_has(const cit_command *c, const char *pid);

/* URL comparisons ignore the scheme (§4.8): "http://a/b" is "https://a/b". */
bool cit_url_same(const char *a, const char *b);
bool cit_pattern_match(const cit_pattern *p, const char *url);
/* Does the spec select this content URL (content.urls or content.patterns),
 * or this collection (content.ccids)? ccid may be NULL. */
bool cit_spec_selects(const cit_spec *s, const char *url, const char *ccid);

/* An Error Description: {"error": code, <member>: items, "description"}.
 * items: a new array or NULL (then member is left out). */
json_t *cit_error(const char *code, const char *member, json_t *items, const char *description);

/* --- the wire: commands a uCDN sends, the status resource a dCDN answers --- */

/* {"trigger" | "trigger.v2": spec, "cdn-path": [pid]} and
 * {"cancel": [url], "cdn-path": [pid]}: new references. */
json_t *cit_trigger_json(json_t *spec, int version, const char *cdn_pid);
json_t *cit_cancel_json(const char *trigger_url, const char *cdn_pid); /* new reference */

/* A trigger status resource (§5.2): the specification, when it was created,
 * last changed and ended, its status and its Error Descriptions. */
typedef struct {
    json_t *spec;                  /* borrowed */
    int version;                   /* 1: "trigger", 2: "trigger.v2" */
    long long ctime, mtime, etime; /* seconds; etime 0: not ended */
    cit_status status;
    json_t *errors;                /* borrowed; NULL or empty: none */
} cit_status_doc;
/* The resource as JSON (new reference). */
json_t *cit_status_doc_json(const cit_status_doc *d);
/* Reads body[0..len) (at most CIT_MAX_STATUS bytes); on true *root holds
 * the document (the caller decrefs it) and d's spec and errors borrow from
 * it. false with *e saying why. */
#define CIT_MAX_STATUS (1u << 20)
bool cit_status_doc_parse(const char *body, size_t len, cit_status_doc *d, json_t **root, jerr *e);

#endif

/* Redis store: hiredis behind a connection that reconnects by itself.
 *
 * A store is one blocking connection guarded by a mutex: fine off the hot
 * path (publishing, refreshing snapshots), never used per end-user request.
 * A subscriber is a thread with its own connection that calls back on every
 * message of its channel, and also once after each (re)connect, because
 * messages published while it was away are lost: the callback reloads.
 *
 * URLs:
 *   redis://[[user]:password@]host:port[/db][?options]
 *   unix:///path/to/socket[?db=N&options]
 *   redis+sentinel://[[user]:password@]host:port[,host:port...]/master-name[/db][?options]
 * The Sentinel form asks the sentinels for the master (checked with ROLE),
 * follows their +switch-master events, and drops every connection made to
 * an older master at its next use; the password is the data nodes', the
 * sentinels' is the option sentinel_password. Options: min_replicas_acked
 * (replicas a durable write waits for; default 1 with Sentinel or when the
 * master was seen with a replica, 0 otherwise), ack_timeout_ms (default
 * 1000), db, sentinel_password. */
#ifndef COMMON_STORE_H
#define COMMON_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

typedef struct store store;

#define STORE_MAX_SENTINELS 8
typedef struct {
    char host[256];
    int port;
} store_hostport;
typedef enum { STORE_URL_TCP, STORE_URL_UNIX, STORE_URL_SENTINEL } store_url_kind;
typedef struct {
    store_url_kind kind;
    char host[256], path[256];
    int port, db;
    char user[128], password[256];
    store_hostport sentinels[STORE_MAX_SENTINELS];
    size_t nsentinels;
    char master_name[128], sentinel_password[256];
    int min_replicas_acked; /* -1: the default above */
    int ack_timeout_ms;
} store_url;
/* Parses url[0..len) (at most 4096 bytes); false for anything malformed. */
bool store_parse_url(const char *url, size_t len, store_url *out);

typedef enum { STORE_OK = 0, STORE_BAD_URL, STORE_DOWN } store_status;

/* Parses url and tries once to connect; a store whose Redis is down is
 * still returned (status STORE_DOWN) and reconnects on the next command. */
store *store_open(const char *url, store_status *st); /* new: store_close */
void store_close(store *s);
bool store_up(store *s); /* a PING answered */

/* A reply from Redis, read through the accessors below: nothing above
 * common/ sees hiredis. Every accessor takes NULL (a command that never got
 * an answer) and then answers "nothing": no type, no text, 0, no element. */
typedef struct store_reply store_reply;
typedef enum { STORE_NONE, STORE_NIL, STORE_INT, STORE_STR, STORE_STATUS, STORE_ERR, STORE_ARRAY } store_type;
store_type store_reply_type(const store_reply *r);
static inline bool store_reply_is(const store_reply *r, store_type t) { return store_reply_type(r) == t; }
/* The bytes of a string, status or error reply (NUL-terminated; *len, when
 * asked, their length); NULL for any other. Borrowed: valid until the
 * reply is freed. */
const char *store_reply_str(const store_reply *r, size_t *len);
/* A string reply parsed as JSON (new reference); NULL for any other reply
 * or text that is not JSON. */
json_t *store_reply_json(const store_reply *r);
long long store_reply_int(const store_reply *r); /* an integer reply's value; else 0 */
size_t store_reply_count(const store_reply *r);  /* an array's elements; else 0 */
/* Element i of an array (borrowed), NULL past its end; _str: its text. */
const store_reply *store_reply_at(const store_reply *r, size_t i);
const char *store_reply_at_str(const store_reply *r, size_t i, size_t *len); /* borrowed from r */
/* Hashes (the flat field, value, field, value... array of HGETALL): the
 * value of one field (borrowed; NULL when absent), and each field/value
 * pair in turn for i < store_reply_count(r) / 2. */
const char *store_hash_get(const store_reply *r, const char *field, size_t *len);
bool store_hash_pair(const store_reply *r, size_t i, const char **field, const char **value, size_t *value_len);
/* Stream entries (XRANGE, or one stream's part of XREAD/XREADGROUP):
 * store_stream_entries gives the entries array of the first stream of an
 * XREAD-style reply (borrowed; NULL when there is none). For entry i of
 * such an array: its id and the value of one of its fields. */
const store_reply *store_stream_entries(const store_reply *xread);
const char *store_entry_id(const store_reply *entries, size_t i); /* borrowed from entries */
const char *store_entry_field(const store_reply *entries, size_t i, const char *field); /* borrowed from entries */
void store_reply_free(store_reply *r);

/* One command (printf-style as hiredis); NULL when Redis cannot be reached
 * after one reconnect. The reply is new: the caller frees it with
 * store_reply_free. */
store_reply *store_cmd(store *s, const char *fmt, ...);
store_reply *store_cmdargv(store *s, int argc, const char **argv, const size_t *argvlen); /* new: store_reply_free */

/* A write the caller will acknowledge to a CSP or a peer: the command and,
 * when the store wants replicas, WAIT in the same round trip on the same
 * connection. *durable is true only when the write reached as many
 * replicas as the store wants within ack_timeout_ms; a reply that is not
 * an error with *durable false is a write that may be lost on a failover:
 * answer 503 with Retry-After, never 2xx. */
store_reply *store_cmdargv_durable(store *s, int argc, const char **argv, const size_t *argvlen, bool *durable);
store_reply *store_cmd_durable(store *s, bool *durable, const char *fmt, ...); /* new: store_reply_free */
int store_replicas_needed(store *s); /* 0 until first connected */
/* The node in use (for Sentinel: the master the sentinels name now), when
 * it last changed (wall ms, 0: never seen) and how many switches since
 * start. True for a Sentinel URL. */
bool store_master(store *s, char *node, size_t cap, long long *changed_ms, unsigned long *switches);

/* Pipelining: queue n commands, then read n replies (argvlen NULL: the
 * arguments are NUL-terminated strings). replies[i] may be NULL
 * if the connection broke; returns the number of replies read. */
size_t store_pipeline(store *s, size_t n, int *argc, const char ***argv, const size_t **argvlen,
                      store_reply **replies);
/* store_pipeline with WAIT after the commands (see store_cmd_durable). */
size_t store_pipeline_durable(store *s, size_t n, int *argc, const char ***argv, const size_t **argvlen,
                              store_reply **replies, bool *durable);

/* A pipeline built up command by command, each formatted as it is added
 * (so a thread can prepare commands another one sends), for work that
 * gathers many small writes and sends them in one round trip. */
typedef struct store_batch {
    buf cmds; /* the commands, one after the other; failed (out of memory): the send fails */
    size_t n;
} store_batch;
void store_batch_add(store_batch *b, int argc, const char *const *argv);
void store_batch_append(store_batch *b, const store_batch *more); /* more's commands after b's */
/* Sends the commands queued (none: nothing sent, true) and empties the
 * batch; true when every one was answered and none with an error (nor,
 * for an EXEC, any of the transaction's commands). */
bool store_batch_send(store *s, store_batch *b);
/* store_batch_send with WAIT after the commands (see store_cmd_durable). */
bool store_batch_send_durable(store *s, store_batch *b, bool *durable);
/* Sends the commands queued and empties the batch, keeping their replies
 * in replies[] (as many as were queued; the caller frees them); returns
 * how many were read (fewer: Redis was lost). */
size_t store_batch_read(store *s, store_batch *b, store_reply **replies);
void store_batch_free(store_batch *b);

typedef struct store_sub store_sub;
/* cb(message or NULL after a (re)connect, ud) runs on the subscriber thread. */
typedef void (*store_sub_cb)(const char *message, void *ud);
/* New: store_unsubscribe. */
store_sub *store_subscribe(const char *url, const char *channel, store_sub_cb cb, void *ud);
void store_unsubscribe(store_sub *sub);

#endif

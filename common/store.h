/* Redis store: hiredis behind a connection that reconnects by itself.
 *
 * A store is one blocking connection guarded by a mutex: fine off the hot
 * path (publishing, refreshing snapshots), never used per end-user request.
 * A subscriber is a thread with its own connection that calls back on every
 * message of its channel, and also once after each (re)connect, because
 * messages published while it was away are lost: the callback reloads.
 *
 * URLs: redis://host:port[/db] or unix:///path/to/socket[?db=N]. */
#ifndef COMMON_STORE_H
#define COMMON_STORE_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

typedef struct store store;

typedef enum { STORE_OK = 0, STORE_BAD_URL, STORE_DOWN } store_status;

/* Parses url and tries once to connect; a store whose Redis is down is
 * still returned (status STORE_DOWN) and reconnects on the next command. */
store *store_open(const char *url, store_status *st);
void store_close(store *s);
bool store_up(store *s); /* a PING answered */

/* One command (printf-style as hiredis); NULL when Redis cannot be reached
 * after one reconnect. The caller frees the reply with freeReplyObject. */
redisReply *store_cmd(store *s, const char *fmt, ...);
redisReply *store_cmdargv(store *s, int argc, const char **argv, const size_t *argvlen);

/* Pipelining: queue n commands, then read n replies (argvlen NULL: the
 * arguments are NUL-terminated strings). replies[i] may be NULL
 * if the connection broke; returns the number of replies read. */
size_t store_pipeline(store *s, size_t n, int *argc, const char ***argv, const size_t **argvlen,
                      redisReply **replies);

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
/* Sends the commands queued and empties the batch, keeping their replies
 * in replies[] (as many as were queued; the caller frees them); returns
 * how many were read (fewer: Redis was lost). */
size_t store_batch_read(store *s, store_batch *b, redisReply **replies);
void store_batch_free(store_batch *b);

typedef struct store_sub store_sub;
/* cb(message or NULL after a (re)connect, ud) runs on the subscriber thread. */
typedef void (*store_sub_cb)(const char *message, void *ud);
store_sub *store_subscribe(const char *url, const char *channel, store_sub_cb cb, void *ud);
void store_unsubscribe(store_sub *sub);

#endif

/* Checking JSON documents against a shape, naming the JSON path of the first
 * bad value ("$.listeners.peer.port: expected an integer 1..65535").
 *
 * Used by config loading and by every interface codec, so operators and
 * peers see the same kind of message for the same kind of mistake. All
 * functions returning bool return false after filling *e. */
#ifndef COMMON_JCHECK_H
#define COMMON_JCHECK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define JPATH_MAX 512

typedef struct {
    char path[JPATH_MAX];
    char reason[256];
} jerr;

bool jfail(jerr *e, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Child paths: "$.a" + "b" -> "$.a.b"; "$.a" + 3 -> "$.a[3]". */
void jpath_key(char *dst, const char *parent, const char *key);
void jpath_idx(char *dst, const char *parent, size_t i);

/* Parse len bytes (never past them) as one JSON value of at most max bytes.
 * Duplicate keys are refused. Returns a new reference or NULL with *e set
 * (path "$", reason with line and column). */
json_t *jparse(const char *buf, size_t len, size_t max, jerr *e);

/* Is v nested at most max levels deep (a scalar is 0 levels, [] is 1)?
 * false with the path of the first value too deep. Documents we store
 * and hand on are checked well within what any reader of them accepts. */
bool jdepth_ok(json_t *v, int max, const char *path, jerr *e);

/* Read a whole file (at most max bytes) and parse it. */
json_t *jparse_file(const char *filename, size_t max, jerr *e); /* new reference */

/* Members. `required` false: a missing member leaves *out untouched and
 * returns true. Borrowed references. */
bool jget_obj(json_t *o, const char *key, const char *path, bool required, json_t **out, jerr *e);
bool jget_arr(json_t *o, const char *key, const char *path, bool required, json_t **out, jerr *e);
bool jget_str(json_t *o, const char *key, const char *path, bool required, const char **out, jerr *e);
bool jget_bool(json_t *o, const char *key, const char *path, bool required, bool *out, jerr *e);
bool jget_int(json_t *o, const char *key, const char *path, bool required, long long min,
              long long max, long long *out, jerr *e);

/* Refuse members not named in allowed (NULL-terminated). */
bool jonly(json_t *o, const char *path, const char *const *allowed, jerr *e);

/* Every element of array a is a string. */
bool jstr_array(json_t *a, const char *path, jerr *e);

#endif

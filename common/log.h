/* Operational log: one JSON object per line on stderr.
 *
 * Lines are written with a single write(2) so concurrent threads never
 * interleave inside a line. Fields are given as key/value string pairs;
 * values are JSON-escaped here, so callers pass raw text. */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

/* Process-wide settings, set once at start before threads exist. */
void log_setup(const char *service, log_level min_level);
log_level log_level_from_name(const char *name); /* "debug".."error"; info if unknown */

/* log_kv(LOG_INFO, "listening", "port", "8080", "role", "peer", NULL) */
void log_kv(log_level level, const char *msg, ...);

#endif

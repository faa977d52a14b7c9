/* JSON-lines operational log. See log.h. */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *g_service = "cdni";
static log_level g_min = LOG_INFO;
static const char *level_names[] = {"debug", "info", "warn", "error"};

void log_setup(const char *service, log_level min_level)
{
    g_service = service;
    g_min = min_level;
}

log_level log_level_from_name(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (name && strcmp(name, level_names[i]) == 0)
            return (log_level)i;
    return LOG_INFO;
}

/* Append s as a JSON string body (no quotes) into buf, never past cap. */
static size_t put_escaped(char *buf, size_t off, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; s && *s && off + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[off++] = '\\';
            buf[off++] = (char)c;
        } else if (c < 0x20) {
            off += (size_t)snprintf(buf + off, cap - off, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
        } else {
            buf[off++] = (char)c;
        }
    }
    return off;
}

static size_t put_raw(char *buf, size_t off, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (off + n >= cap)
        n = cap - off - 1;
    memcpy(buf + off, s, n);
    return off + n;
}

void log_kv(log_level level, const char *msg, ...)
{
    if (level < g_min)
        return;
    char line[4096];
    size_t cap = sizeof line - 2, off = 0;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[96];
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (long)(tv.tv_usec / 1000));
    off = put_raw(line, off, cap, "{\"ts\":\"");
    off = put_raw(line, off, cap, ts);
    off = put_raw(line, off, cap, "\",\"level\":\"");
    off = put_raw(line, off, cap, level_names[level]);
    off = put_raw(line, off, cap, "\",\"service\":\"");
    off = put_escaped(line, off, cap, g_service);
    off = put_raw(line, off, cap, "\",\"msg\":\"");
    off = put_escaped(line, off, cap, msg);
    off = put_raw(line, off, cap, "\"");
    va_list ap;
    va_start(ap, msg);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        off = put_raw(line, off, cap, ",\"");
        off = put_escaped(line, off, cap, k);
        off = put_raw(line, off, cap, "\":\"");
        off = put_escaped(line, off, cap, v ? v : "");
        off = put_raw(line, off, cap, "\"");
    }
    va_end(ap);
    off = put_raw(line, off, cap, "}");
    line[off++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, off);
    (void)w;
}

/* Wall-clock milliseconds: for timestamps shared between processes
 * (heartbeats in Redis). Intervals inside one process use CLOCK_MONOTONIC. */
#ifndef COMMON_CLOCK_H
#define COMMON_CLOCK_H

#include <pthread.h>
#include <time.h>

static inline long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic milliseconds: for intervals and deadlines inside one process. */
static inline long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* pthread_cond_timedwait for at most ms milliseconds (mu held; the
 * condition variable uses the default, realtime, clock). */
static inline int cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, long long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return pthread_cond_timedwait(cv, mu, &ts);
}

/* Unix seconds as RFC 3339 UTC, "2026-12-04T18:05:14Z" (out: 21 bytes). */
#define CLOCK_ISO8601_LEN 21
static inline void clock_iso8601(long long unix_s, char out[CLOCK_ISO8601_LEN])
{
    time_t t = (time_t)unix_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, CLOCK_ISO8601_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static inline void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

#endif

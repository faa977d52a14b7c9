/* A background thread that runs a function every interval, or at once when
 * woken. Stopping waits for the run in progress; a long run can look at
 * ticker_stopping to end early. */
#ifndef COMMON_TICKER_H
#define COMMON_TICKER_H

#include <stdbool.h>

typedef struct ticker ticker;

/* NULL if the thread cannot start. run gets its ticker (for ticker_stopping). */
ticker *ticker_start(void (*run)(ticker *t, void *ud), void *ud, long long interval_ms); /* new: ticker_stop */
void ticker_wake(ticker *t);
bool ticker_stopping(ticker *t);
/* Joins the thread and frees t (NULL: nothing). */
void ticker_stop(ticker *t);

#endif

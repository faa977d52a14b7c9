/* A background thread on an interval. See ticker.h. */
#include "common/ticker.h"

#include <pthread.h>
#include <stdlib.h>

#include "common/clock.h"

struct ticker {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, woken;
    void (*run)(ticker *t, void *ud);
    void *ud;
    long long interval_ms;
};

static void *loop(void *arg)
{
    ticker *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        t->woken = false;
        pthread_mutex_unlock(&t->mu);
        t->run(t, t->ud);
        pthread_mutex_lock(&t->mu);
        if (!t->stop && !t->woken)
            cond_wait_ms(&t->cv, &t->mu, t->interval_ms);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

ticker *ticker_start(void (*run)(ticker *t, void *ud), void *ud, long long interval_ms)
{
    ticker *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->run = run;
    t->ud = ud;
    t->interval_ms = interval_ms;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    if (pthread_create(&t->th, NULL, loop, t) != 0) {
        free(t);
        return NULL;
    }
    return t;
}

void ticker_wake(ticker *t)
{
    pthread_mutex_lock(&t->mu);
    t->woken = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

bool ticker_stopping(ticker *t)
{
    pthread_mutex_lock(&t->mu);
    bool s = t->stop;
    pthread_mutex_unlock(&t->mu);
    return s;
}

void ticker_stop(ticker *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->th, NULL);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
}

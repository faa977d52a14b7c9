/* Prometheus registry: an append-only array of series behind a mutex that
 * is taken only to register and to render. See metrics.h. */
#include "common/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_MAX 512

typedef struct {
    char *name, *labels, *kind, *help;
    metric_cell cell;
} series;

struct metrics {
    pthread_mutex_t mu;
    size_t n;
    series s[METRICS_MAX];
};

metrics *metrics_new(void)
{
    metrics *m = calloc(1, sizeof *m);
    if (m)
        pthread_mutex_init(&m->mu, NULL);
    return m;
}

void metrics_free(metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        free(m->s[i].name);
        free(m->s[i].labels);
        free(m->s[i].kind);
        free(m->s[i].help);
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

metric_cell *metrics_series(metrics *m, const char *name, const char *labels,
                            const char *kind, const char *help)
{
    static metric_cell overflow; /* past METRICS_MAX series: counted nowhere visible */
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->s[i].name, name) == 0 && strcmp(m->s[i].labels, labels) == 0) {
            pthread_mutex_unlock(&m->mu);
            return &m->s[i].cell;
        }
    if (m->n == METRICS_MAX) {
        pthread_mutex_unlock(&m->mu);
        return &overflow;
    }
    series *s = &m->s[m->n];
    s->name = strdup(name);
    s->labels = strdup(labels);
    s->kind = strdup(kind);
    s->help = strdup(help);
    atomic_init(&s->cell, 0);
    m->n++;
    pthread_mutex_unlock(&m->mu);
    return &s->cell;
}

char *metrics_render(metrics *m, size_t *len)
{
    size_t cap = 4096, off = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n; i++) {
        series *s = &m->s[i];
        int first = 1; /* HELP/TYPE once per metric name */
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->s[j].name, s->name) == 0)
                first = 0;
        for (;;) {
            int w = 0;
            if (first)
                w = snprintf(out + off, cap - off, "# HELP %s %s\n# TYPE %s %s\n", s->name,
                             s->help, s->name, s->kind);
            if (w >= 0 && off + (size_t)w < cap) {
                int w2 = snprintf(out + off + w, cap - off - w, "%s%s%s%s %llu\n", s->name,
                                  s->labels[0] ? "{" : "", s->labels, s->labels[0] ? "}" : "",
                                  (unsigned long long)atomic_load(&s->cell));
                if (w2 >= 0 && off + (size_t)w + (size_t)w2 < cap) {
                    off += (size_t)w + (size_t)w2;
                    break;
                }
            }
            char *grown = realloc(out, cap * 2);
            if (!grown) {
                pthread_mutex_unlock(&m->mu);
                free(out);
                return NULL;
            }
            out = grown;
            cap *= 2;
        }
    }
    pthread_mutex_unlock(&m->mu);
    *len = off;
    return out;
}

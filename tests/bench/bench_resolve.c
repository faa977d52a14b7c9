/* Effective-metadata resolution, in process, one core, 10,000 PathMatch
 * rules under one host (issue goal: over 1 million resolutions/s).
 *
 * Baseline, measured in the same run over the same rules and targets: the
 * straightforward implementation of RFC 8006 §4.1.4, testing every
 * PathMatch in order until the first match. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "interfaces/metadata.h"

#define RULES 10000
#define TARGETS 4096

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void)
{
    /* Realistic shapes: per-title prefixes, a few suffix and one-char rules. */
    json_t *paths = json_array();
    for (int i = 0; i < RULES; i++) {
        char pat[96];
        switch (i % 10) {
        case 0: snprintf(pat, sizeof pat, "/live/ch%d/*.m3u8", i); break;
        case 1: snprintf(pat, sizeof pat, "/vod/t%05d/seg_???.ts", i); break;
        default: snprintf(pat, sizeof pat, "/vod/t%05d/*", i); break;
        }
        char ccid[32];
        snprintf(ccid, sizeof ccid, "c%d", i);
        json_array_append_new(paths, json_pack("{s:{s:s}, s:{s:[{s:s, s:{s:s}}]}}", "path-pattern", "pattern", pat,
                                               "path-metadata", "metadata", "generic-metadata-type", "MI.Grouping",
                                               "generic-metadata-value", "ccid", ccid));
    }
    json_t *doc = json_pack("{s:[{s:s, s:{s:[{s:s, s:{s:[]}}], s:o}}]}", "hosts", "host", "video.example.com",
                            "host-metadata", "metadata", "generic-metadata-type", "MI.Cache",
                            "generic-metadata-value", "exclude-query-strings", "paths", paths);
    mi_policy pol = {NULL, false};
    jerr e;
    mi_host_index *x = mi_host_index_from_json(doc, "$", &pol, &e);
    if (!x || !mi_index_build(x)) {
        fprintf(stderr, "bench: %s %s\n", e.path, e.reason);
        return 1;
    }
    static char targets[TARGETS][80];
    srand(1);
    for (int i = 0; i < TARGETS; i++) {
        int t = rand() % RULES;
        if (t % 10 == 0)
            snprintf(targets[i], 80, "/live/ch%d/index.m3u8", t);
        else
            snprintf(targets[i], 80, "/vod/t%05d/seg_%03d.ts?token=abc", t, rand() % 1000);
    }
    const mi_node *hn = x->hosts[0].node;
    mi_resolution r;
    size_t sink = 0;
    /* indexed resolver */
    long n = 0;
    double t0 = now(), t1;
    do {
        for (int k = 0; k < 100000; k++, n++) {
            const char *tg = targets[n % TARGETS];
            mi_resolve(x, "video.example.com", 17, tg, strlen(tg), &r);
            sink += r.depth;
        }
        t1 = now();
    } while (t1 - t0 < 2.0);
    double idx_rate = n / (t1 - t0);
    /* baseline: in-order scan */
    long m = 0;
    t0 = now();
    do {
        for (int k = 0; k < 200; k++, m++) {
            const char *tg = targets[m % TARGETS];
            size_t len = strlen(tg);
            for (size_t p = 0; p < hn->n_paths; p++)
                if (mi_pattern_match(&hn->paths[p].pattern, tg, len)) {
                    sink += p;
                    break;
                }
        }
        t1 = now();
    } while (t1 - t0 < 2.0);
    double scan_rate = m / (t1 - t0);
    printf("metadata resolution, %d PathMatch rules, 1 core (sink %zu)\n", RULES, sink % 10);
    printf("  indexed resolver (mi_resolve):   %12.0f resolutions/s\n", idx_rate);
    printf("  baseline in-order linear scan:   %12.0f resolutions/s\n", scan_rate);
    printf("  speed-up over baseline:          %12.1fx   goal: > 1,000,000/s -> %s\n", idx_rate / scan_rate,
           idx_rate > 1e6 ? "met" : "NOT met");
    mi_host_index_free(x);
    json_decref(doc);
    return 0;
}

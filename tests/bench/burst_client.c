/* Latency of N requests sent at once (libcurl multi, one connection each):
 * how long a server takes to answer a burst of concurrent requests.
 *   burst_client URL BODY-FILE CONCURRENCY ROUNDS [HEADER...]
 * POSTs BODY-FILE (GET when it is "-") CONCURRENCY times at once, ROUNDS
 * times, and prints "p50_ms p99_ms max_ms non2xx" over every request. A
 * request's latency runs from when it is about to be sent to the first
 * byte of its answer (libcurl's pretransfer to starttransfer): the server's
 * time, queueing behind the burst included, without the time this one
 * client thread takes to get round to each of its 200 transfers.
 * BURST_VERBOSE=1 also prints each round's max to stderr, with the time
 * it started (ms since the first): a stall shows when it happened. */
#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return s * n;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 5)
        return 2;
    const char *url = argv[1];
    int conc = atoi(argv[3]), rounds = atoi(argv[4]);
    char *body = NULL;
    long blen = 0;
    if (strcmp(argv[2], "-") != 0) {
        FILE *f = fopen(argv[2], "rb");
        if (!f)
            return 2;
        fseek(f, 0, SEEK_END);
        blen = ftell(f);
        fseek(f, 0, SEEK_SET);
        body = malloc((size_t)blen + 1);
        if (fread(body, 1, (size_t)blen, f) != (size_t)blen)
            return 2;
        fclose(f);
    }
    curl_global_init(CURL_GLOBAL_ALL);
    struct curl_slist *hl = NULL;
    for (int i = 5; i < argc; i++)
        hl = curl_slist_append(hl, argv[i]);
    double *lat = calloc((size_t)conc * (size_t)rounds, sizeof *lat);
    size_t nl = 0, bad = 0;
    CURL **h = calloc((size_t)conc, sizeof *h);
    for (int i = 0; i < conc; i++) {
        h[i] = curl_easy_init();
        curl_easy_setopt(h[i], CURLOPT_URL, url);
        curl_easy_setopt(h[i], CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(h[i], CURLOPT_WRITEFUNCTION, sink);
        if (body) {
            curl_easy_setopt(h[i], CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(h[i], CURLOPT_POSTFIELDSIZE, blen);
        }
    }
    bool verbose = getenv("BURST_VERBOSE") && *getenv("BURST_VERBOSE") == '1';
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CURLM *m = curl_multi_init(); /* one connection pool for every round: kept alive */
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)conc);
    for (int r = 0; r < rounds + 1; r++) { /* round 0 opens the connections, not counted */
        size_t from = nl;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        for (int i = 0; i < conc; i++)
            curl_multi_add_handle(m, h[i]);
        int running = 1;
        while (running) {
            curl_multi_perform(m, &running);
            if (running)
                curl_multi_poll(m, NULL, 0, 100, NULL);
        }
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            long code = 0;
            curl_off_t pre = 0, first = 0;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRETRANSFER_TIME_T, &pre);
            curl_easy_getinfo(msg->easy_handle, CURLINFO_STARTTRANSFER_TIME_T, &first);
            curl_off_t t = first - pre; /* request about to go out -> first byte of the answer */
            if (r == 0)
                continue;
            if (msg->data.result != CURLE_OK || code < 200 || code > 299)
                bad++;
            lat[nl++] = (double)t / 1000.0; /* ms */
        }
        for (int i = 0; i < conc; i++)
            curl_multi_remove_handle(m, h[i]);
        double mx = 0;
        for (size_t i = from; i < nl; i++)
            mx = lat[i] > mx ? lat[i] : mx;
        if (verbose && r)
            fprintf(stderr, "round %d at %.0f ms: max %.2f ms (monotonic %.6f s)\n", r,
                    (double)(ts.tv_sec - t0.tv_sec) * 1e3 + (double)(ts.tv_nsec - t0.tv_nsec) / 1e6, mx,
                    (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
    }
    curl_multi_cleanup(m);
    qsort(lat, nl, sizeof *lat, cmp);
    printf("%.2f %.2f %.2f %zu\n", nl ? lat[nl / 2] : 0, nl ? lat[(size_t)((double)nl * 0.99)] : 0,
           nl ? lat[nl - 1] : 0, bad);
    for (int i = 0; i < conc; i++)
        curl_easy_cleanup(h[i]);
    curl_slist_free_all(hl);
    free(h);
    free(lat);
    free(body);
    curl_global_cleanup();
    return 0;
}

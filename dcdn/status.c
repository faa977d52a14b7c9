/* The dCDN's operator status: GET /v1/status (one JSON document for the
 * status page) and the page itself under /status/ (files of ui_dir).
 *
 * CDN-wide, from Redis: the surrogates (alive, load, last heartbeat),
 * deliveries per cache outcome, bytes per content collection and router
 * answers per minute over the last `minutes` (default 15; every instance
 * counts into minute_stats), triggers in flight. Of the answering
 * instance: its cache (fill against its disk budget), and per upstream the
 * CDNI log files it has published. */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "dcdn/dcdn.h"

static void on_status(http_req *r, void *ctx)
{
    dcdn *d = ctx;
    int minutes;
    if (!mstats_window_arg(http_query_arg(r, "minutes"), &minutes)) {
        http_reply_problem(r, 400, "Bad Request", "minutes: 1 to 60", NULL);
        return;
    }
    json_t *series = mstats_read(d->stats, minutes);
    json_t *trig = series && d->cit_pid ? triggers_in_flight(d, 20) : NULL;
    if (!series || (d->cit_pid && !trig)) {
        json_decref(series);
        http_add_header(r, "Retry-After", "1");
        http_reply_problem(r, 503, "Service Unavailable", "the shared store (Redis) is unreachable", NULL);
        return;
    }
    /* hit ratio per minute and over the window: deliveries from stored
     * content (delivery_from_cache, as s-cached says) over all */
    json_t *ratio = json_array();
    long long hits = 0, all = 0;
    int n = (int)json_integer_value(json_object_get(series, "minutes"));
    for (int i = 0; i < n; i++) {
        long long h = 0, a = 0;
        const char *f;
        json_t *counts;
        json_object_foreach(json_object_get(series, "series"), f, counts) if (strncmp(f, "cache:", 6) == 0)
        {
            long long c = json_integer_value(json_array_get(counts, (size_t)i));
            a += c;
            h += delivery_from_cache(f + 6) ? c : 0;
        }
        json_array_append_new(ratio, a ? json_real((double)h / (double)a) : json_null());
        hits += h, all += a;
    }
    json_t *out = json_pack("{s:s, s:s, s:I, s:o, s:o, s:{s:I, s:I, s:o, s:o}, s:o}", "role", "dcdn", "cdn_id",
                            d->cdn_id, "now_ms", (json_int_t)wall_ms(), "surrogates", router_surrogates(d), "minutes",
                            series, "window", "deliveries", (json_int_t)all, "from_cache", (json_int_t)hits,
                            "hit_ratio", all ? json_real((double)hits / (double)all) : json_null(),
                            "hit_ratio_per_minute", ratio, "logs", logger_status(d));
    json_object_set_new(out, "cache", d->has_surrogate ? surrogate_cache_json(d) : json_null());
    json_object_set_new(out, "triggers", trig ? trig : json_null());
    bool expiring;
    json_object_set_new(out, "certificates", http_tls_report(&expiring));
    http_add_header(r, "Cache-Control", "no-store");
    http_reply_json(r, 200, NULL, out);
}

void status_op_routes(dcdn *d, http_routes *out)
{
    http_routes_add(out, (http_route){"GET", "/v1/status", on_status, d, false});
    static_files_routes(&d->ui, d->ui_dir, "/status", out);
}

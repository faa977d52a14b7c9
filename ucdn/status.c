/* The uCDN's operator status: GET /v1/status (one JSON document for the
 * status page) and the page itself under /status/ (files of ui_dir).
 *
 * Everything in it is CDN-wide, read from Redis, whichever instance
 * answers: the dCDN peers (availability, last heartbeat, load,
 * footprints), redirects and errors per dCDN per minute over the last
 * `minutes` (default 15; counted by every instance in minute_stats), open
 * purge/invalidation/preposition requests, today's delivered bytes per
 * content collection and dCDN (from the collected CDNI logs) and the log
 * collector's state. */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "ucdn/ucdn.h"

static void on_status(http_req *r, void *ctx)
{
    ucdn *u = ctx;
    int minutes;
    if (!mstats_window_arg(http_query_arg(r, "minutes"), &minutes)) {
        http_reply_problem(r, 400, "Bad Request", "minutes: 1 to 60", NULL);
        return;
    }
    json_t *series = mstats_read(u->stats, minutes);
    json_t *purges = series ? purges_open(u, 20) : NULL;
    json_t *logs = purges ? collector_state(u) : NULL;
    long long today = wall_ms() / 86400000;
    json_t *traffic = logs ? collector_usage_day(u, today) : NULL;
    if (!traffic) {
        json_decref(series), json_decref(purges), json_decref(logs);
        csp_reply_down(r);
        return;
    }
    /* per peer: the window's redirects and errors next to its state */
    json_t *peers = peering_peers(u);
    long long all = mstats_prefix_total(series, "redirect:");
    size_t i;
    json_t *p;
    json_array_foreach(peers, i, p)
    {
        const char *id = json_string_value(json_object_get(p, "id"));
        char k[128];
        snprintf(k, sizeof k, "redirect:%s", id);
        long long n = mstats_total(series, k);
        json_object_set_new(p, "redirects", json_integer(n));
        json_object_set_new(p, "redirect_share", json_real(all ? (double)n / (double)all : 0.0));
        json_t *errs = json_object();
        static const char *const kinds[] = {"ri", "ci", "li", NULL};
        for (int e = 0; kinds[e]; e++) {
            snprintf(k, sizeof k, "%s_error:%s", kinds[e], id);
            json_object_set_new(errs, kinds[e], json_integer(mstats_total(series, k)));
        }
        json_object_set_new(p, "errors", errs);
    }
    char day[16];
    time_t t = (time_t)(today * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(day, sizeof day, "%Y-%m-%d", &tm);
    json_t *out = json_pack("{s:s, s:s, s:I, s:o, s:o, s:o, s:{s:s, s:o}, s:o}", "role", "ucdn", "cdn_id",
                            u->cdn_id, "now_ms", (json_int_t)wall_ms(), "peers", peers, "minutes", series, "purges",
                            purges, "traffic", "day", day, "rows", traffic, "logs", logs);
    ucdn_catalog_report(u, out);
    bool expiring;
    json_object_set_new(out, "certificates", http_tls_report(&expiring));
    http_add_header(r, "Cache-Control", "no-store");
    http_reply_json(r, 200, NULL, out);
}

void status_op_routes(ucdn *u, http_routes *out)
{
    http_routes_add(out, (http_route){"GET", "/v1/status", on_status, u, false});
    static_files_routes(&u->ui, u->ui_dir, "/status", out);
}

/* GCRA in Redis. See ratelimit.h.
 *
 * The key holds the theoretical arrival time (TAT) of the next request, in
 * ms. With T = 1000 / rate: a request at `now` is allowed when
 * max(TAT, now) + T - now <= burst * T, and moves TAT there. */
#include "common/ratelimit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char gcra[] =
    "local now, t, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local tat = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "if tat < now then tat = now end\n"
    "local next = tat + t\n"
    "if next - now > limit then return math.ceil(next - now - limit) end\n"
    "redis.call('SET', KEYS[1], tostring(next), 'PX', math.ceil(next - now) + 1000)\n"
    "return 0\n";

long long rl_take(store *s, const char *key, const rl_rule *r, long long now_ms)
{
    if (!r || r->rate <= 0)
        return 0;
    double t = 1000.0 / r->rate;
    char now[32], ts[32], lim[32];
    snprintf(now, sizeof now, "%lld", now_ms);
    snprintf(ts, sizeof ts, "%.3f", t);
    snprintf(lim, sizeof lim, "%.3f", t * (double)(r->burst > 0 ? r->burst : 1));
    const char *argv[] = {"EVAL", gcra, "1", key, now, ts, lim};
    size_t lens[7];
    for (int i = 0; i < 7; i++)
        lens[i] = strlen(argv[i]);
    store_reply *x = store_cmdargv(s, 7, argv, lens);
    long long out = x && store_reply_is(x, STORE_INT) ? (store_reply_int(x) > 0 ? store_reply_int(x) : 0) : -1;
    store_reply_free(x);
    return out;
}

bool rl_rule_parse(json_t *o, const char *path, const char *name, rl_rule *r, jerr *e)
{
    char k1[64], k2[64];
    snprintf(k1, sizeof k1, "%s_per_s", name);
    snprintf(k2, sizeof k2, "%s_burst", name);
    json_t *rate = json_object_get(o, k1);
    long long burst = r->burst;
    if (rate && (!json_is_number(rate) || json_number_value(rate) < 0 || json_number_value(rate) > 1e6)) {
        char p[JPATH_MAX];
        jpath_key(p, path, k1);
        return jfail(e, p, "expected a number of requests per second, 0 for no limit");
    }
    if (!jget_int(o, k2, path, false, 1, 1000000, &burst, e))
        return false;
    if (rate)
        r->rate = json_number_value(rate);
    r->burst = (long)burst;
    return true;
}

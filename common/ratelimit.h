/* Rate limits shared by every instance of a daemon: GCRA (the generic cell
 * rate algorithm) over one Redis key per limited subject, so N instances
 * behind a load balancer together allow what one would.
 *
 * A rule allows `rate` requests a second on average and `burst` at once;
 * one Lua script per decision (one round trip), the key expiring when its
 * subject goes quiet. */
#ifndef COMMON_RATELIMIT_H
#define COMMON_RATELIMIT_H

#include <jansson.h>
#include <stdbool.h>

#include "common/jcheck.h"
#include "common/store.h"

typedef struct {
    double rate; /* requests per second; 0: unlimited */
    long burst;  /* at least 1 */
} rl_rule;

/* 0: allowed (and counted); > 0: refused, milliseconds until one would be
 * allowed; -1: the store did not answer (the caller decides). */
long long rl_take(store *s, const char *key, const rl_rule *r, long long now_ms);

/* {"<name>_per_s": N, "<name>_burst": N} members of o (either absent
 * keeps *r as it is); false with e naming the bad member. */
bool rl_rule_parse(json_t *o, const char *path, const char *name, rl_rule *r, jerr *e);

#endif

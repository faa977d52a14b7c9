/* ucdn request routing: snapshot of the dCDNs' footprints and capabilities,
 * and the pure selection. See routing.h for the order of the decision. */
#include "ucdn/routing.h"

#include "common/hash.h"
#include "manifest/manifest.h"

#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const why_names[RW__COUNT] = {
    "selected",          "ranked_lower",       "disabled",  "no_capabilities",
    "not_covered",       "delivery_protocol",  "metadata",  "redirection_mode",
    "unavailable",       "overloaded",         "rule_excluded", "ri_failed"};

const char *route_why_name(route_why w) { return w < RW__COUNT ? why_names[w] : "?"; }

uint64_t route_hash(const void *p, size_t n) { return hash_fnv1a64(p, n); }

unsigned route_content_type(const char *path, size_t len)
{
    mf_kind k = mf_kind_of_path(path, len);
    if (k != MF_UNKNOWN)
        return k == MF_HLS ? CT_HLS : CT_DASH;
    const char *dot = NULL;
    for (size_t i = len; i > 0; i--) {
        if (path[i - 1] == '/')
            break;
        if (path[i - 1] == '.') {
            dot = path + i;
            break;
        }
    }
    if (!dot)
        return CT_OTHER;
    size_t n = len - (size_t)(dot - path);
    static const struct {
        const char *ext;
        unsigned ct;
    } m[] = {{"ts", CT_SEGMENT},
             {"m4s", CT_SEGMENT}, {"mp4", CT_SEGMENT}, {"m4a", CT_SEGMENT}, {"m4v", CT_SEGMENT},
             {"aac", CT_SEGMENT}, {"vtt", CT_SEGMENT}, {"cmfv", CT_SEGMENT}, {"cmfa", CT_SEGMENT}};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (strlen(m[i].ext) == n && strncasecmp(dot, m[i].ext, n) == 0)
            return m[i].ct;
    return CT_OTHER;
}

/* --- snapshot -------------------------------------------------------------- */

void route_snap_free(void *p)
{
    route_snap *s = p;
    if (!s)
        return;
    for (size_t i = 0; i < s->n_peers; i++)
        fci_free(s->fci[i]);
    free(s->fci);
    free(s->caps);
    free(s->cap_first);
    free(s->cap_count);
    free(s->has_fp);
    free(s->scan);
    ipt_free(s->prefixes);
    free(s);
}

static bool add_prefixes(iptable_builder *b, const footprint *f, uint32_t cap, size_t *count)
{
    if (f->type == FP_UNION) {
        for (size_t i = 0; i < f->n; i++)
            if (!add_prefixes(b, &f->members[i], cap, count))
                return false;
        return true;
    }
    for (size_t i = 0; i < f->n; i++) {
        if (!iptb_add(b, &f->prefixes[i].addr, f->prefixes[i].len, cap))
            return false;
        (*count)++;
    }
    return true;
}

route_snap *route_snap_build(route_peer *peers, size_t n, fci_set **fci)
{
    route_snap *s = calloc(1, sizeof *s);
    iptable_builder *b = iptb_new();
    if (!s || !b)
        goto fail;
    s->peers = peers;
    s->n_peers = n;
    s->fci = fci;
    fci = NULL;
    s->cap_first = calloc(n ? n : 1, sizeof *s->cap_first);
    s->cap_count = calloc(n ? n : 1, sizeof *s->cap_count);
    s->has_fp = calloc(n ? n : 1, sizeof *s->has_fp);
    size_t total = 0;
    if (n > ROUTE_MAX_PEERS)
        goto fail;
    for (size_t p = 0; p < n; p++) {
        if (s->fci[p] && s->fci[p]->n > ROUTE_MAX_CAPS_PER_PEER)
            goto fail;
        total += s->fci[p] ? s->fci[p]->n : 0;
    }
    s->caps = calloc(total ? total : 1, sizeof *s->caps);
    s->scan = calloc(total ? total : 1, sizeof *s->scan);
    if (!s->cap_first || !s->cap_count || !s->has_fp || !s->caps || !s->scan)
        goto fail;
    for (size_t p = 0; p < n; p++) {
        s->cap_first[p] = (uint32_t)s->n_caps;
        const fci_set *f = s->fci[p];
        for (size_t i = 0; f && i < f->n; i++) {
            const fci_capability *c = &f->caps[i];
            uint32_t ci = (uint32_t)s->n_caps++;
            s->caps[ci] = (struct route_cap){(uint32_t)p, c, -1};
            if (!c->n_fps)
                continue;
            s->has_fp[p] = true;
            for (size_t k = 0; k < c->n_fps; k++)
                if (fp_is_ip(&c->fps[k])) {
                    s->caps[ci].anchor = (int)k;
                    break;
                }
            if (s->caps[ci].anchor < 0)
                s->scan[s->n_scan++] = ci;
            else if (!add_prefixes(b, &c->fps[s->caps[ci].anchor], ci, &s->n_prefixes))
                goto fail;
        }
        s->cap_count[p] = (uint32_t)s->n_caps - s->cap_first[p];
    }
    s->prefixes = iptb_build(b, -1);
    b = NULL;
    if (!s->prefixes)
        goto fail;
    return s;
fail:
    if (b)
        ipt_free(iptb_build(b, 0)); /* frees the builder */
    if (!s && fci) {
        for (size_t p = 0; p < n; p++)
            fci_free(fci[p]);
        free(fci);
    }
    route_snap_free(s);
    return NULL;
}

/* --- selection ------------------------------------------------------------- */

#define BIT_SET(a, i) ((a)[(i) >> 6] |= 1ull << ((i)&63))
#define BIT_GET(a, i) (((a)[(i) >> 6] >> ((i)&63)) & 1)

/* Every footprint of cap except its anchor covers the client. */
static bool rest_match(const struct route_cap *rc, const fp_client *c)
{
    for (size_t k = 0; k < rc->c->n_fps; k++)
        if ((int)k != rc->anchor && !fp_match(&rc->c->fps[k], c, NULL))
            return false;
    return true;
}

static bool in_list(const char *const *l, const char *id, int *pos)
{
    for (int i = 0; l && l[i]; i++)
        if (strcmp(l[i], id) == 0) {
            if (pos)
                *pos = i;
            return true;
        }
    return false;
}

static bool rule_matches(const route_rule *r, const route_req *q)
{
    if (r->host && (!q->host || strcasecmp(r->host, q->host) != 0))
        return false;
    if (r->path && (!q->path || fnmatch(r->path, q->path, 0) != 0))
        return false;
    if (r->content_types && !(r->content_types & q->content_type))
        return false;
    return fp_list_match(r->fps, r->n_fps, &q->client);
}

/* Score for weighted rendezvous hashing: higher wins. */
static double hrw(uint64_t uri, uint64_t peer, long long weight)
{
    uint64_t h = (uri ^ peer) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    double u = ((double)(h >> 11) + 0.5) / 9007199254740992.0; /* (0,1) */
    return (double)weight / -log(u);
}

int route_select(const route_snap *s, const route_rule *rules, size_t n_rules,
                 const route_req *q, route_eval *ev, int *rule)
{
    uint64_t matched[(ROUTE_MAX_PEERS * ROUTE_MAX_CAPS_PER_PEER) / 64];
    size_t words = (s->n_caps + 63) / 64;
    memset(matched, 0, words * sizeof *matched);
    for (size_t p = 0; p < s->n_peers; p++)
        ev[p] = (route_eval){.why = RW_SELECTED, .pref = INT32_MAX};

    /* coverage: prefixes, most specific first, then the scanned ones */
    uint32_t e = ipt_lookup(s->prefixes, &q->client.ip);
    while (e != IPT_NONE) {
        const ipt_entry *ent = ipt_entry_at(s->prefixes, e);
        uint32_t ci = ent->value;
        if (!BIT_GET(matched, ci) && rest_match(&s->caps[ci], &q->client)) {
            BIT_SET(matched, ci);
            route_eval *pe = &ev[s->caps[ci].peer];
            if (!pe->covered || ent->len > pe->plen)
                pe->plen = ent->len;
            pe->covered = true;
        }
        e = ent->parent;
    }
    for (size_t i = 0; i < s->n_scan; i++) {
        const struct route_cap *rc = &s->caps[s->scan[i]];
        if (fp_list_match(rc->c->fps, rc->c->n_fps, &q->client)) {
            BIT_SET(matched, s->scan[i]);
            ev[rc->peer].covered = true;
        }
    }

    *rule = -1;
    for (size_t r = 0; r < n_rules; r++)
        if (rule_matches(&rules[r], q)) {
            *rule = (int)r;
            break;
        }
    const route_rule *rl = *rule >= 0 ? &rules[*rule] : NULL;
    const char *proto = q->https ? "https/1.1" : "http/1.1";

    for (size_t p = 0; p < s->n_peers; p++) {
        route_eval *v = &ev[p];
        const route_peer *pr = &s->peers[p];
        if (q->exclude >> p & 1) {
            v->why = RW_RI_FAILED;
            continue;
        }
        if (!pr->enabled) {
            v->why = RW_DISABLED;
            continue;
        }
        if (!s->fci[p]) {
            v->why = RW_NO_FCI;
            continue;
        }
        if (!s->has_fp[p])
            v->covered = true;
        if (!v->covered) {
            v->why = RW_NOT_COVERED;
            continue;
        }
        bool dp = false;
        uint32_t c0 = s->cap_first[p], cn = s->cap_count[p];
        for (uint32_t i = c0; i < c0 + cn; i++) {
            const fci_capability *c = s->caps[i].c;
            if (c->n_fps && !BIT_GET(matched, i))
                continue; /* does not apply at this client */
            if (c->type == FCI_DELIVERY_PROTOCOL && fci_has_item(c, proto))
                dp = true;
            else if (c->type == FCI_REDIRECTION_MODE)
                v->modes |= c->modes;
            else if (c->type == FCI_REDIRECT_TARGET && c->http_target && !v->http_target)
                v->http_target = c->http_target;
        }
        if (!dp) {
            v->why = RW_DELIVERY_PROTOCOL;
            v->missing = proto;
            continue;
        }
        for (size_t m = 0; q->res && m < q->res->n_effective && v->why == RW_SELECTED; m++) {
            const mi_generic *g = q->res->effective[m];
            if (!g->mandatory_to_enforce)
                continue;
            bool ok = false;
            for (uint32_t i = c0; i < c0 + cn && !ok; i++) {
                const fci_capability *c = s->caps[i].c;
                if (c->type == FCI_METADATA && (!c->n_fps || BIT_GET(matched, i)) &&
                    fci_has_item(c, g->type))
                    ok = true;
            }
            if (!ok) {
                v->why = RW_METADATA;
                v->missing = g->type;
            }
        }
        if (v->why != RW_SELECTED)
            continue;
        bool can_r = pr->ri_url && (v->modes & FCI_HTTP_R) &&
                     atomic_load_explicit(&pr->ri_down_until_ms, memory_order_relaxed) <= q->now_ms;
        bool can_i = (v->modes & FCI_HTTP_I) && (pr->delivery_url || v->http_target);
        if (!can_r && !can_i) {
            v->why = RW_REDIRECTION_MODE;
            v->missing = pr->ri_url ? "HTTP-R or HTTP-I with a redirect target"
                                    : "HTTP-I with a redirect target";
            continue;
        }
        v->use_ri = can_r;
        long long hb = atomic_load_explicit(&pr->last_hb_ms, memory_order_relaxed);
        if (!hb || q->now_ms - hb > q->hb_timeout_ms) {
            v->why = RW_UNAVAILABLE;
            continue;
        }
        uint32_t load = atomic_load_explicit(&pr->load_milli, memory_order_relaxed);
        if ((double)load / 1000.0 > pr->max_load) {
            v->why = RW_OVERLOADED;
            continue;
        }
        if (rl && ((rl->only && !in_list(rl->only, pr->id, NULL)) ||
                   in_list(rl->exclude, pr->id, NULL))) {
            v->why = RW_RULE_EXCLUDED;
            continue;
        }
        if (rl)
            in_list(rl->prefer, pr->id, &v->pref);
    }

    /* rank: preference, priority, specificity; then weight among equals */
    int best = -1;
    for (size_t p = 0; p < s->n_peers; p++) {
        if (ev[p].why != RW_SELECTED)
            continue;
        if (best < 0) {
            best = (int)p;
            continue;
        }
        const route_eval *a = &ev[p], *b = &ev[best];
        const route_peer *pa = &s->peers[p], *pb = &s->peers[best];
        if (a->pref < b->pref || (a->pref == b->pref && pa->priority < pb->priority) ||
            (a->pref == b->pref && pa->priority == pb->priority && a->plen > b->plen))
            best = (int)p;
    }
    if (best < 0)
        return -1;
    const route_eval *bv = &ev[best];
    const route_peer *bp = &s->peers[best];
    long long total = 0;
    for (size_t p = 0; p < s->n_peers; p++) {
        const route_eval *a = &ev[p];
        if (a->why == RW_SELECTED && a->pref == bv->pref && s->peers[p].priority == bp->priority &&
            a->plen == bv->plen)
            total += s->peers[p].weight;
        else if (a->why == RW_SELECTED)
            ev[p].why = RW_RANKED_LOWER;
    }
    int chosen = -1;
    if (q->content_hashing) {
        double top = -1;
        for (size_t p = 0; p < s->n_peers; p++) {
            if (ev[p].why != RW_SELECTED)
                continue;
            double sc = hrw(q->uri_hash, s->peers[p].id_hash, s->peers[p].weight);
            if (sc > top) {
                top = sc;
                chosen = (int)p;
            }
        }
    } else {
        long long pick = total > 0 ? (long long)(q->random % (uint64_t)total) : 0;
        for (size_t p = 0; p < s->n_peers; p++) {
            if (ev[p].why != RW_SELECTED)
                continue;
            if (chosen < 0)
                chosen = (int)p;
            if (pick < s->peers[p].weight) {
                chosen = (int)p;
                break;
            }
            pick -= s->peers[p].weight;
        }
    }
    for (size_t p = 0; p < s->n_peers; p++)
        if (ev[p].why == RW_SELECTED && (int)p != chosen)
            ev[p].why = RW_RANKED_LOWER;
    return chosen;
}

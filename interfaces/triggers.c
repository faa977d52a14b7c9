/* CDNI Control Interface / Triggers. See triggers.h. */
#include "interfaces/triggers.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/glob.h"

static const char *const TYPES[] = {"preposition", "invalidate", "purge"};
static const char *const STATUS[] = {"pending", "active", "complete", "processed", "failed", "cancelling", "cancelled"};

const char *cit_type_name(cit_type t) { return (unsigned)t < 3 ? TYPES[t] : "?"; }
const char *cit_status_name(cit_status s) { return (unsigned)s < CIT_N_STATUS ? STATUS[s] : "?"; }

bool cit_status_parse(const char *s, cit_status *out)
{
    for (int i = 0; s && i < CIT_N_STATUS; i++)
        if (strcmp(s, STATUS[i]) == 0) {
            *out = (cit_status)i;
            return true;
        }
    return false;
}

bool cit_status_final(cit_status s)
{
    return s == CIT_COMPLETE || s == CIT_PROCESSED || s == CIT_FAILED || s == CIT_CANCELLED;
}

bool cit_transition_ok(cit_status from, cit_status to)
{
    if (from == to)
        return true;
    switch (from) {
    case CIT_PENDING:
        return to == CIT_ACTIVE || to == CIT_COMPLETE || to == CIT_PROCESSED || to == CIT_FAILED ||
               to == CIT_CANCELLING;
    case CIT_ACTIVE:
        return to == CIT_COMPLETE || to == CIT_PROCESSED || to == CIT_FAILED || to == CIT_CANCELLING;
    case CIT_PROCESSED: /* done as far as we could tell; may still be cancelled (§4.3) */
        return to == CIT_CANCELLING;
    case CIT_CANCELLING:
        return to == CIT_CANCELLED;
    default:
        return false;
    }
}

bool cit_pid_ok(const char *pid)
{
    if (!pid || strncmp(pid, "AS", 2) != 0)
        return false;
    const char *p = pid + 2;
    size_t digits = strspn(p, "0123456789");
    if (!digits || digits > 10 || p[digits] != ':' || !p[digits + 1])
        return false;
    for (const char *q = p + digits + 1; *q; q++)
        if (!isgraph((unsigned char)*q))
            return false;
    return strlen(pid) <= 256;
}

bool cit_path_has(const cit_command *c, const char *pid)
{
    for (size_t i = 0; pid && i < c->n_path; i++)
        if (strcmp(c->cdn_path[i], pid) == 0)
            return true;
    return false;
}

/* --- matching ------------------------------------------------------------------ */

static const char *no_scheme(const char *u)
{
    if (strncasecmp(u, "http://", 7) == 0)
        return u + 7;
    if (strncasecmp(u, "https://", 8) == 0)
        return u + 8;
    return u;
}

bool cit_url_same(const char *a, const char *b) { return strcmp(no_scheme(a), no_scheme(b)) == 0; }

bool cit_pattern_match(const cit_pattern *pt, const char *url)
{
    const char *u = no_scheme(url), *p = no_scheme(pt->pattern);
    size_t n = pt->match_query ? strlen(u) : strcspn(u, "?");
    size_t pl = strlen(p), m;
    uint16_t stack[512], *prog = pl < 512 ? stack : malloc((pl + 1) * sizeof *prog);
    bool hit = prog && glob_compile(p, pl, pt->case_sensitive, false, prog, pl + 1, &m, NULL) &&
               glob_match(prog, m, u, n, pt->case_sensitive, NULL);
    if (prog != stack)
        free(prog);
    return hit;
}

bool cit_spec_selects(const cit_spec *s, const char *url, const char *ccid)
{
    for (size_t i = 0; ccid && i < s->n_ccids; i++)
        if (strcmp(s->ccids[i], ccid) == 0)
            return true;
    for (size_t i = 0; url && i < s->n_content_urls; i++)
        if (cit_url_same(s->content_urls[i], url))
            return true;
    for (size_t i = 0; url && i < s->n_content_patterns; i++)
        if (cit_pattern_match(&s->content_patterns[i], url))
            return true;
    return false;
}

/* --- parsing ------------------------------------------------------------------- */

static bool url_ok(const char *u)
{
    const char *h = no_scheme(u);
    return h != u && *h && *h != '/' && strlen(u) <= 8192 && !strpbrk(u, " \t\r\n");
}

/* The array spec[key] (path p), at most CIT_MAX_ITEMS long, with room
 * for its items at *out (elem bytes each); *a NULL when absent. */
static bool item_array(json_t *spec, const char *key, const char *path, char p[JPATH_MAX], json_t **a, void **out,
                       size_t elem, jerr *e)
{
    *a = NULL;
    if (!jget_arr(spec, key, path, false, a, e))
        return false;
    if (!*a)
        return true;
    jpath_key(p, path, key);
    if (json_array_size(*a) > CIT_MAX_ITEMS)
        return jfail(e, p, "at most %d items in one trigger", CIT_MAX_ITEMS);
    *out = calloc(json_array_size(*a) + 1, elem);
    return *out != NULL || jfail(e, p, "out of memory");
}

static bool strings(json_t *spec, const char *key, const char *path, bool urls, const char ***out, size_t *n,
                    jerr *e)
{
    json_t *a;
    char p[JPATH_MAX], ip[JPATH_MAX];
    if (!item_array(spec, key, path, p, &a, (void **)out, sizeof **out, e))
        return false;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        jpath_idx(ip, p, i);
        const char *s = json_string_value(v);
        if (!s || !*s)
            return jfail(e, ip, "expected a non-empty string");
        if (urls && !url_ok(s))
            return jfail(e, ip, "expected an absolute http or https URL");
        (*out)[(*n)++] = s;
    }
    return true;
}

static bool patterns(json_t *spec, const char *key, const char *path, cit_pattern **out, size_t *n, jerr *e)
{
    json_t *a;
    char p[JPATH_MAX], ip[JPATH_MAX];
    if (!item_array(spec, key, path, p, &a, (void **)out, sizeof **out, e))
        return false;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        jpath_idx(ip, p, i);
        cit_pattern *pt = &(*out)[*n];
        if (!json_is_object(v))
            return jfail(e, ip, "expected a PatternMatch object");
        if (!jget_str(v, "pattern", ip, true, &pt->pattern, e) ||
            !jget_bool(v, "case-sensitive", ip, false, &pt->case_sensitive, e) ||
            !jget_bool(v, "match-query-string", ip, false, &pt->match_query, e))
            return false;
        if (!*pt->pattern || strlen(pt->pattern) > CIT_MAX_PATTERN) {
            jpath_key(p, ip, "pattern");
            return jfail(e, p, "a pattern of 1 to %d characters", CIT_MAX_PATTERN);
        }
        (*n)++;
    }
    return true;
}

static bool extensions(json_t *spec, const char *path, cit_spec *s, jerr *e)
{
    json_t *a = NULL;
    char p[JPATH_MAX], ip[JPATH_MAX], vp[JPATH_MAX];
    if (!jget_arr(spec, "extensions", path, false, &a, e))
        return false;
    jpath_key(p, path, "extensions");
    size_t i;
    json_t *x;
    json_array_foreach(a, i, x)
    {
        jpath_idx(ip, p, i);
        const char *type = NULL;
        json_t *val = NULL;
        bool mandatory = false;
        if (!json_is_object(x))
            return jfail(e, ip, "expected a GenericTriggerExtension object");
        if (!jget_str(x, "generic-trigger-extension-type", ip, true, &type, e) ||
            !jget_obj(x, "generic-trigger-extension-value", ip, true, &val, e) ||
            !jget_bool(x, "mandatory-to-enforce", ip, false, &mandatory, e))
            return false;
        jpath_key(vp, ip, "generic-trigger-extension-value");
        if (strcmp(type, "CIT.TimePolicy") == 0) {
            /* {"windows": {"start", "end"}} or a list of them: the first */
            json_t *w = json_object_get(val, "windows");
            if (json_is_array(w))
                w = json_array_get(w, 0);
            char wp[JPATH_MAX];
            jpath_key(wp, vp, "windows");
            long long st = 0, en = 0;
            if (!json_is_object(w))
                return jfail(e, wp, "expected {\"start\": seconds, \"end\": seconds}");
            if (!jget_int(w, "start", wp, true, 0, 1LL << 40, &st, e) ||
                !jget_int(w, "end", wp, true, 0, 1LL << 40, &en, e))
                return false;
            if (en <= st)
                return jfail(e, wp, "end must be after start");
            s->window_start = st;
            s->window_end = en;
        } else if (strcmp(type, "CIT.LocationPolicy") == 0) {
            json_t *locs = json_object_get(val, "locations");
            char lp[JPATH_MAX], llp[JPATH_MAX], fpp[JPATH_MAX];
            jpath_key(lp, vp, "locations");
            if (!json_is_array(locs))
                return jfail(e, lp, "expected an array of {action, footprints}");
            size_t k;
            json_t *l;
            json_array_foreach(locs, k, l)
            {
                jpath_idx(llp, lp, k);
                const char *action = NULL;
                json_t *fps = NULL;
                if (!json_is_object(l) || !jget_str(l, "action", llp, true, &action, e) ||
                    !jget_arr(l, "footprints", llp, true, &fps, e))
                    return e->reason[0] ? false : jfail(e, llp, "expected {action, footprints}");
                bool allow = strcmp(action, "allow") == 0;
                if (!allow && strcmp(action, "deny") != 0) {
                    jpath_key(fpp, llp, "action");
                    return jfail(e, fpp, "expected \"allow\" or \"deny\"");
                }
                jpath_key(fpp, llp, "footprints");
                footprint *f = NULL;
                size_t nf = 0;
                if (!fp_list_parse(fps, fpp, &f, &nf, e))
                    return false;
                footprint **dst = allow ? &s->allow : &s->deny;
                size_t *dn = allow ? &s->n_allow : &s->n_deny;
                footprint *m = realloc(*dst, (*dn + nf) * sizeof *m);
                if (!m) {
                    fp_list_free(f, nf);
                    return jfail(e, fpp, "out of memory");
                }
                memcpy(m + *dn, f, nf * sizeof *f);
                free(f);
                *dst = m;
                *dn += nf;
            }
        } else if (mandatory && !s->unsupported) {
            s->unsupported = type;
        }
    }
    return true;
}

bool cit_spec_from_json(json_t *spec, int version, cit_spec *s, jerr *e)
{
    memset(s, 0, sizeof *s);
    s->version = version;
    const char *path = version == 2 ? "$.trigger.v2" : "$.trigger";
    if (!json_is_object(spec))
        return jfail(e, path, "expected a Trigger Specification object");
    s->json = json_incref(spec);
    const char *type = NULL;
    char p[JPATH_MAX];
    if (!jget_str(spec, "type", path, true, &type, e))
        return false;
    int t = 0;
    while (t < 3 && strcmp(TYPES[t], type) != 0)
        t++;
    if (t == 3) {
        jpath_key(p, path, "type");
        return jfail(e, p, "unsupported trigger type (eunsupported): expected preposition, invalidate or purge");
    }
    s->type = (cit_type)t;
    if (!strings(spec, "metadata.urls", path, true, &s->metadata_urls, &s->n_metadata_urls, e) ||
        !strings(spec, "content.urls", path, true, &s->content_urls, &s->n_content_urls, e) ||
        !strings(spec, "content.ccids", path, false, &s->ccids, &s->n_ccids, e) ||
        !patterns(spec, "metadata.patterns", path, &s->metadata_patterns, &s->n_metadata_patterns, e) ||
        !patterns(spec, "content.patterns", path, &s->content_patterns, &s->n_content_patterns, e) ||
        !extensions(spec, path, s, e))
        return false;
    if (s->type == CIT_PREPOSITION && (s->n_metadata_patterns || s->n_content_patterns))
        return jfail(e, path, "patterns are not allowed in a preposition trigger (RFC 8007 §5.2.1)");
    if (!s->n_metadata_urls && !s->n_content_urls && !s->n_ccids && !s->n_metadata_patterns &&
        !s->n_content_patterns)
        return jfail(e, path,
                     "expected at least one of metadata.urls, content.urls, content.ccids, metadata.patterns, "
                     "content.patterns");
    return true;
}

void cit_spec_free(cit_spec *s)
{
    free(s->metadata_urls);
    free(s->content_urls);
    free(s->ccids);
    free(s->metadata_patterns);
    free(s->content_patterns);
    fp_list_free(s->allow, s->n_allow);
    fp_list_free(s->deny, s->n_deny);
    json_decref(s->json);
    memset(s, 0, sizeof *s);
}

bool cit_command_parse(const char *body, size_t len, cit_command *c, jerr *e)
{
    memset(c, 0, sizeof *c);
    json_t *v = jparse(body, len, CIT_MAX_BODY, e);
    if (!v)
        return false;
    c->json = v;
    if (!json_is_object(v))
        return jfail(e, "$", "expected a CI/T command object");
    json_t *t1 = json_object_get(v, "trigger"), *t2 = json_object_get(v, "trigger.v2"),
           *cancel = json_object_get(v, "cancel");
    if ((t1 != NULL) + (t2 != NULL) + (cancel != NULL) != 1)
        return jfail(e, "$", "expected exactly one of trigger, trigger.v2 or cancel");
    json_t *path = NULL;
    if (!jget_arr(v, "cdn-path", "$", true, &path, e))
        return false;
    if (json_array_size(path) > 64)
        return jfail(e, "$.cdn-path", "at most 64 CDNs");
    c->cdn_path = calloc(json_array_size(path) + 1, sizeof *c->cdn_path);
    size_t i;
    json_t *x;
    char ip[JPATH_MAX];
    json_array_foreach(path, i, x)
    {
        jpath_idx(ip, "$.cdn-path", i);
        if (!cit_pid_ok(json_string_value(x)))
            return jfail(e, ip, "expected a CDN PID, \"AS<number>:<qualifier>\"");
        c->cdn_path[c->n_path++] = json_string_value(x);
    }
    if (cancel) {
        c->cancel = true;
        if (!json_is_array(cancel) || !json_array_size(cancel))
            return jfail(e, "$.cancel", "expected a non-empty array of trigger status resource URLs");
        if (json_array_size(cancel) > 1000)
            return jfail(e, "$.cancel", "at most 1000 triggers in one cancel command");
        c->cancel_urls = calloc(json_array_size(cancel) + 1, sizeof *c->cancel_urls);
        json_array_foreach(cancel, i, x)
        {
            jpath_idx(ip, "$.cancel", i);
            const char *s = json_string_value(x);
            if (!s || !*s || strlen(s) > 2048)
                return jfail(e, ip, "expected a trigger status resource URL");
            c->cancel_urls[c->n_cancel++] = s;
        }
        return true;
    }
    return cit_spec_from_json(t1 ? t1 : t2, t1 ? 1 : 2, &c->spec, e);
}

void cit_command_free(cit_command *c)
{
    cit_spec_free(&c->spec);
    free(c->cancel_urls);
    free(c->cdn_path);
    json_decref(c->json);
    memset(c, 0, sizeof *c);
}

json_t *cit_error(const char *code, const char *member, json_t *items, const char *description)
{
    json_t *o = json_pack("{s:s}", "error", code);
    if (member && items)
        json_object_set_new(o, member, items);
    else
        json_decref(items);
    if (description)
        json_object_set_new(o, "description", json_string(description));
    return o;
}

/* --- the wire ------------------------------------------------------------------------------ */

json_t *cit_trigger_json(json_t *spec, int version, const char *cdn_pid)
{
    return json_pack("{s:O, s:[s]}", version == 2 ? "trigger.v2" : "trigger", spec, "cdn-path", cdn_pid);
}

json_t *cit_cancel_json(const char *trigger_url, const char *cdn_pid)
{
    return json_pack("{s:[s], s:[s]}", "cancel", trigger_url, "cdn-path", cdn_pid);
}

json_t *cit_status_doc_json(const cit_status_doc *d)
{
    json_t *o = json_pack("{s:o, s:I, s:I, s:s}", d->version == 2 ? "trigger.v2" : "trigger",
                          d->spec ? json_incref(d->spec) : json_object(), "ctime", (json_int_t)d->ctime, "mtime",
                          (json_int_t)d->mtime, "status", cit_status_name(d->status));
    if (o && d->etime)
        json_object_set_new(o, "etime", json_integer(d->etime));
    if (o && json_array_size(d->errors))
        json_object_set(o, "errors", d->errors);
    return o;
}

bool cit_status_doc_parse(const char *body, size_t len, cit_status_doc *d, json_t **root, jerr *e)
{
    memset(d, 0, sizeof *d);
    *root = NULL;
    if (len > CIT_MAX_STATUS)
        return jfail(e, "$", "a trigger status resource is at most %u bytes", CIT_MAX_STATUS);
    json_error_t je;
    json_t *v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(v)) {
        json_decref(v);
        return jfail(e, "$", "expected a trigger status object");
    }
    const char *st = json_string_value(json_object_get(v, "status"));
    json_t *v1 = json_object_get(v, "trigger"), *v2 = json_object_get(v, "trigger.v2");
    json_t *ct = json_object_get(v, "ctime"), *mt = json_object_get(v, "mtime"), *et = json_object_get(v, "etime");
    json_t *errs = json_object_get(v, "errors");
    const char *why = !st || !cit_status_parse(st, &d->status) ? "status: not a trigger status"
                      : !json_is_object(v1) == !json_is_object(v2) ? "expected exactly one of trigger or trigger.v2"
                      : (ct && !json_is_integer(ct)) || (mt && !json_is_integer(mt)) || (et && !json_is_integer(et))
                          ? "ctime, mtime and etime are integers"
                      : errs && !json_is_array(errs) ? "errors: expected an array"
                                                     : NULL;
    if (why) {
        json_decref(v);
        return jfail(e, "$", "%s", why);
    }
    d->version = json_is_object(v2) ? 2 : 1;
    d->spec = json_is_object(v2) ? v2 : v1;
    d->ctime = json_integer_value(ct);
    d->mtime = json_integer_value(mt);
    d->etime = json_integer_value(et);
    d->errors = errs;
    *root = v;
    return true;
}

/* RFC 8006 metadata: parse/validate, serialize, PatternMatch, resolution.
 * See metadata.h for the model. Section numbers below are RFC 8006's. */
#include "interfaces/metadata.h"
#include "interfaces/footprint.h"

#include "common/glob.h"
#include "common/url.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------------ */
/* Standard GenericMetadata values (§4.2), and RFC 9246 §5's MI.UriSigning.  */
/* ------------------------------------------------------------------------ */

/* "action" of an ACL rule; optional, "deny" when absent (RFC 8006 §4.2.2.1) */
static bool check_action(json_t *o, const char *path, jerr *e)
{
    const char *a = NULL;
    if (!jget_str(o, "action", path, false, &a, e))
        return false;
    if (a && strcmp(a, "allow") != 0 && strcmp(a, "deny") != 0) {
        char p[JPATH_MAX];
        jpath_key(p, path, "action");
        return jfail(e, p, "expected \"allow\" or \"deny\"");
    }
    return true;
}

/* Each element of o[key] (an array, required unless !required) is an object
 * checked by fn. */
static bool each_object(json_t *o, const char *key, const char *path, bool required,
                        bool nonempty, bool (*fn)(json_t *, const char *, jerr *), jerr *e)
{
    json_t *arr = NULL;
    char ap[JPATH_MAX];
    jpath_key(ap, path, key);
    if (!jget_arr(o, key, path, required, &arr, e))
        return false;
    if (!arr)
        return true;
    if (nonempty && json_array_size(arr) == 0)
        return jfail(e, ap, "must not be empty");
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        char ip[JPATH_MAX];
        jpath_idx(ip, ap, i);
        if (!json_is_object(v))
            return jfail(e, ip, "expected an object");
        if (!fn(v, ip, e))
            return false;
    }
    return true;
}

static bool str_list(json_t *o, const char *key, const char *path, bool required, bool nonempty,
                     json_t **out, jerr *e)
{
    json_t *arr = NULL;
    char ap[JPATH_MAX];
    jpath_key(ap, path, key);
    if (!jget_arr(o, key, path, required, &arr, e))
        return false;
    if (arr && nonempty && json_array_size(arr) == 0)
        return jfail(e, ap, "must not be empty");
    if (arr && !jstr_array(arr, ap, e))
        return false;
    if (out)
        *out = arr;
    return true;
}

/* Endpoint (§4.3.3): hostname, IPv4 address or [IPv6 address], optional
 * ":port". */
static bool endpoint_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 300)
        return false;
    const char *port = NULL;
    char host[300];
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || (size_t)(rb - s - 1) >= sizeof host)
            return false;
        memcpy(host, s + 1, (size_t)(rb - s - 1));
        host[rb - s - 1] = 0;
        struct in6_addr a6;
        if (inet_pton(AF_INET6, host, &a6) != 1)
            return false;
        if (rb[1] == ':')
            port = rb + 2;
        else if (rb[1])
            return false;
    } else {
        const char *colon = strchr(s, ':');
        size_t hn = colon ? (size_t)(colon - s) : n;
        if (hn == 0 || hn >= sizeof host)
            return false;
        memcpy(host, s, hn);
        host[hn] = 0;
        if (colon)
            port = colon + 1;
        for (size_t i = 0; i < hn; i++) {
            unsigned char c = (unsigned char)host[i];
            if (!isalnum(c) && c != '-' && c != '.' && c != '_')
                return false;
        }
    }
    if (port) {
        if (!*port || strlen(port) > 5)
            return false;
        long p = 0;
        for (const char *q = port; *q; q++) {
            if (!isdigit((unsigned char)*q))
                return false;
            p = p * 10 + (*q - '0');
        }
        if (p < 1 || p > 65535)
            return false;
    }
    return true;
}

static bool check_footprint(json_t *o, const char *path, jerr *e)
{
    return fp_check(o, path, e);
}

bool mi_auth_header_ok(const char *name, const char *value)
{
    /* headers that frame or route the request, or that the cache sets itself */
    static const char *const framing[] = {"host", "content-length", "transfer-encoding", "connection", "keep-alive",
                                          "te", "trailer", "upgrade", "expect", "range", NULL};
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 64 || !value || strlen(value) > 512)
        return false;
    for (size_t i = 0; i < n; i++) /* an RFC 9110 token */
        if (!isalnum((unsigned char)name[i]) && !strchr("!#$%&'*+-.^_`|~", name[i]))
            return false;
    for (const char *v = value; *v; v++)
        if ((unsigned char)*v < 0x20 && *v != '\t')
            return false;
    if (strncasecmp(name, "if-", 3) == 0 || strncasecmp(name, "proxy-", 6) == 0)
        return false;
    for (size_t i = 0; framing[i]; i++)
        if (strcasecmp(name, framing[i]) == 0)
            return false;
    return true;
}

static bool check_auth(json_t *o, const char *path, jerr *e) /* MI.Auth §4.2.7 */
{
    const char *t = NULL;
    json_t *v = NULL;
    if (!jget_str(o, "auth-type", path, true, &t, e) || !jget_obj(o, "auth-value", path, true, &v, e))
        return false;
    if (strcmp(t, "CDNIGW.HeaderAuth") == 0) { /* ours: one request header sent to the source */
        const char *hn = NULL, *hv = NULL;
        char vp[JPATH_MAX];
        jpath_key(vp, path, "auth-value");
        if (!jget_str(v, "header-name", vp, true, &hn, e) || !jget_str(v, "header-value", vp, true, &hv, e))
            return false;
        if (!mi_auth_header_ok(hn, hv))
            return jfail(e, vp, "header-name must be a header token that does not frame or route the request "
                                "(not Host, Content-Length, Range, If-*, ...), header-value printable");
    }
    return true;
}

static bool check_source(json_t *o, const char *path, jerr *e) /* MI.Source §4.2.1.1 */
{
    json_t *eps = NULL, *auth = NULL;
    const char *proto = NULL;
    if (!str_list(o, "endpoints", path, true, true, &eps, e))
        return false;
    char ep[JPATH_MAX];
    jpath_key(ep, path, "endpoints");
    size_t i;
    json_t *v;
    json_array_foreach(eps, i, v)
    {
        if (!endpoint_ok(json_string_value(v))) {
            char ip[JPATH_MAX];
            jpath_idx(ip, ep, i);
            return jfail(e, ip, "not a host name or address with optional port");
        }
    }
    if (!jget_str(o, "protocol", path, true, &proto, e))
        return false;
    if (!*proto) {
        char pp[JPATH_MAX];
        jpath_key(pp, path, "protocol");
        return jfail(e, pp, "must not be empty");
    }
    if (!jget_obj(o, "acquisition-auth", path, false, &auth, e))
        return false;
    if (auth) {
        char apth[JPATH_MAX];
        jpath_key(apth, path, "acquisition-auth");
        return check_auth(auth, apth, e);
    }
    return true;
}

static bool check_location_rule(json_t *o, const char *path, jerr *e)
{
    return check_action(o, path, e) &&
           each_object(o, "footprints", path, true, false, check_footprint, e);
}

static bool check_time_window(json_t *o, const char *path, jerr *e)
{
    long long s = 0, t = 0;
    if (!jget_int(o, "start", path, true, 0, INT64_MAX, &s, e) ||
        !jget_int(o, "end", path, true, 0, INT64_MAX, &t, e))
        return false;
    if (t < s) {
        char p[JPATH_MAX];
        jpath_key(p, path, "end");
        return jfail(e, p, "end is before start");
    }
    return true;
}

static bool check_time_rule(json_t *o, const char *path, jerr *e)
{
    return check_action(o, path, e) &&
           each_object(o, "windows", path, true, false, check_time_window, e);
}

static bool check_protocol_rule(json_t *o, const char *path, jerr *e)
{
    return check_action(o, path, e) && str_list(o, "protocols", path, true, false, NULL, e);
}

static bool v_source_metadata(json_t *v, const char *p, jerr *e)
{
    return each_object(v, "sources", p, true, false, check_source, e);
}
/* The ACLs' lists are optional: absent allows all, present and empty
 * denies all (RFC 8006 §4.2.2-4.2.4). */
static bool v_location_acl(json_t *v, const char *p, jerr *e)
{
    return each_object(v, "locations", p, false, false, check_location_rule, e);
}
static bool v_time_window_acl(json_t *v, const char *p, jerr *e)
{
    /* RFC 8006 §4.2.3 names the list "times"; "windows" is accepted as
     * an alias for documents written before that was noticed */
    return each_object(v, "times", p, false, false, check_time_rule, e) &&
           each_object(v, "windows", p, false, false, check_time_rule, e);
}
static bool v_protocol_acl(json_t *v, const char *p, jerr *e)
{
    return each_object(v, "protocol-acl", p, false, false, check_protocol_rule, e);
}
static bool v_delivery_auth(json_t *v, const char *p, jerr *e)
{
    return each_object(v, "delivery-auth-methods", p, true, false, check_auth, e);
}
/* MI.Cache (RFC 8006 §4.2.6): "exclude-path-pattern", "include-query-strings";
 * our "exclude-query-strings" (names left out) is accepted beside them. */
static bool v_cache(json_t *v, const char *p, jerr *e)
{
    const char *pat = NULL;
    return jget_str(v, "exclude-path-pattern", p, false, &pat, e) &&
           str_list(v, "include-query-strings", p, false, false, NULL, e) &&
           str_list(v, "exclude-query-strings", p, false, false, NULL, e);
}
static bool v_grouping(json_t *v, const char *p, jerr *e)
{
    const char *ccid = NULL;
    return jget_str(v, "ccid", p, false, &ccid, e);
}
static bool v_uri_signing(json_t *v, const char *p, jerr *e) /* RFC 9246 §5 */
{
    bool enforce;
    const char *attr = NULL;
    if (!jget_bool(v, "enforce", p, false, &enforce, e) ||
        !str_list(v, "issuers", p, false, false, NULL, e) ||
        !jget_str(v, "package-attribute", p, false, &attr, e))
        return false;
    if (attr) {
        char ap[JPATH_MAX];
        jpath_key(ap, p, "package-attribute");
        if (!*attr)
            return jfail(e, ap, "must not be empty");
        for (const char *c = attr; *c; c++)
            if (!isalnum((unsigned char)*c) && !strchr("-._~", *c))
                return jfail(e, ap, "must be a query-parameter/cookie name (unreserved characters)");
    }
    return true;
}

/* Our own types (RFC 6983 concepts no RFC gives a metadata type). The
 * prefix tells a peer they are not standard. */
static bool v_purge_id(json_t *v, const char *p, jerr *e) /* RFC 6983 §3.6.2 */
{
    const char *s = NULL;
    return jget_str(v, "purge-id", p, true, &s, e);
}
static bool v_auth_group(json_t *v, const char *p, jerr *e) /* RFC 6983 §3.5.6 */
{
    const char *s = NULL;
    return jget_str(v, "auth-group", p, true, &s, e);
}
static bool v_has_manifest(json_t *v, const char *p, jerr *e) /* RFC 6983 §3.3.2.3 */
{
    const char *fmt = NULL, *mode = NULL, *sa = NULL;
    bool live;
    if (!jget_str(v, "format", p, true, &fmt, e) || !jget_bool(v, "live", p, false, &live, e) ||
        !jget_str(v, "rewrite", p, false, &mode, e) || !jget_str(v, "session-auth", p, false, &sa, e))
        return false;
    char fp[JPATH_MAX];
    jpath_key(fp, p, "format");
    if (strcmp(fmt, "hls") && strcmp(fmt, "dash"))
        return jfail(e, fp, "expected \"hls\" or \"dash\"");
    if (mode && strcmp(mode, "none") && strcmp(mode, "ucdn") && strcmp(mode, "two-step")) {
        jpath_key(fp, p, "rewrite");
        return jfail(e, fp, "expected \"none\", \"ucdn\" or \"two-step\"");
    }
    if (sa && strcmp(sa, "both") && strcmp(sa, "cookie") && strcmp(sa, "query")) {
        jpath_key(fp, p, "session-auth");
        return jfail(e, fp, "expected \"both\", \"cookie\" or \"query\"");
    }
    return true;
}

static const struct {
    const char *type;
    bool (*check)(json_t *, const char *, jerr *);
    bool standard;
} known_types[] = {
    {"MI.SourceMetadata", v_source_metadata, true},
    {"MI.LocationACL", v_location_acl, true},
    {"MI.TimeWindowACL", v_time_window_acl, true},
    {"MI.ProtocolACL", v_protocol_acl, true},
    {"MI.DeliveryAuthorization", v_delivery_auth, true},
    {"MI.Cache", v_cache, true},
    {"MI.Auth", check_auth, true},
    {"MI.Grouping", v_grouping, true},
    {"MI.UriSigning", v_uri_signing, true},
    {"CDNIGW.PurgeIdentifier", v_purge_id, false},
    {"CDNIGW.AuthorizationGroup", v_auth_group, false},
    {"CDNIGW.HASManifest", v_has_manifest, false},
};
#define N_KNOWN (sizeof known_types / sizeof known_types[0])

bool mi_type_is_standard(const char *type)
{
    for (size_t i = 0; i < N_KNOWN; i++)
        if (strcmp(known_types[i].type, type) == 0)
            return known_types[i].standard;
    return false;
}

bool mi_value_check(const char *type, json_t *value, const char *path, bool *known, jerr *e)
{
    for (size_t i = 0; i < N_KNOWN; i++)
        if (strcmp(known_types[i].type, type) == 0) {
            *known = true;
            return known_types[i].check(value, path, e);
        }
    *known = false;
    return true;
}

/* ------------------------------------------------------------------------ */
/* PatternMatch (§4.1.5)                                                     */
/* ------------------------------------------------------------------------ */

/* Compile pattern to a token program. '*' any sequence, '?' one character;
 * '$' escapes the three literals "$", "*" and "?" (§4.1.5). */
bool mi_pattern_compile(mi_pattern *p, const char *path, jerr *e)
{
    size_t n = strlen(p->pattern), bad = 0;
    p->prog = malloc((n + 1) * sizeof *p->prog);
    if (!p->prog)
        return jfail(e, path, "out of memory");
    if (!glob_compile(p->pattern, n, p->case_sensitive, true, p->prog, n + 1, &p->prog_len, &bad))
        return jfail(e, path, "'$' must escape '$', '*' or '?' (at offset %zu)", bad);
    return true;
}

static bool glob(const uint16_t *prog, size_t plen, const char *s, size_t n, bool cs)
{
    return glob_match(prog, plen, s, n, cs, NULL);
}

/* Query parameter name [s, s+n) is in the ignore list (case-insensitive). */
static bool ignored_param(const mi_pattern *p, const char *s, size_t n)
{
    for (size_t i = 0; i < p->n_ignore_qs; i++)
        if (strlen(p->ignore_qs[i]) == n && strncasecmp(p->ignore_qs[i], s, n) == 0)
            return true;
    return false;
}

bool mi_pattern_match(const mi_pattern *p, const char *target, size_t len)
{
    const char *q = memchr(target, '?', len);
    if (!p->has_ignore_qs || !q)
        return glob(p->prog, p->prog_len, target, len, p->case_sensitive);
    size_t plen = (size_t)(q - target);
    if (p->n_ignore_qs == 0) /* an empty list ignores the whole query */
        return glob(p->prog, p->prog_len, target, plen, p->case_sensitive);
    /* Rebuild the query without the ignored parameters. */
    char buf[4096];
    if (len >= sizeof buf)
        return glob(p->prog, p->prog_len, target, len, p->case_sensitive);
    memcpy(buf, target, plen);
    size_t o = plen;
    const char *s = q + 1, *end = target + len;
    while (s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(s, '=', (size_t)(pe - s));
        size_t name_len = (size_t)((eq ? eq : pe) - s);
        if (pe > s && !ignored_param(p, s, name_len)) {
            char sep = o == plen ? '?' : '&';
            buf[o++] = sep;
            memcpy(buf + o, s, (size_t)(pe - s));
            o += (size_t)(pe - s);
        }
        s = pe + 1;
    }
    return glob(p->prog, p->prog_len, buf, o, p->case_sensitive);
}

/* ------------------------------------------------------------------------ */
/* Parsing                                                                   */
/* ------------------------------------------------------------------------ */

static bool type_understood(const char *type, const mi_policy *pol)
{
    for (size_t i = 0; i < N_KNOWN; i++)
        if (strcmp(known_types[i].type, type) == 0)
            return true;
    for (const char *const *t = pol ? pol->extra_types : NULL; t && *t; t++)
        if (strcmp(*t, type) == 0)
            return true;
    return false;
}

static void generic_clear(mi_generic *g)
{
    free(g->type);
    json_decref(g->value);
}

static bool parse_generic(json_t *o, const char *path, const mi_policy *pol, mi_generic *g,
                          jerr *e)
{
    memset(g, 0, sizeof *g);
    if (!json_is_object(o))
        return jfail(e, path, "expected a GenericMetadata object");
    const char *type = NULL;
    json_t *value = NULL;
    if (!jget_str(o, "generic-metadata-type", path, true, &type, e) ||
        !jget_obj(o, "generic-metadata-value", path, true, &value, e))
        return false;
    char tp[JPATH_MAX], vp[JPATH_MAX];
    jpath_key(tp, path, "generic-metadata-type");
    jpath_key(vp, path, "generic-metadata-value");
    if (!*type)
        return jfail(e, tp, "must not be empty");
    /* §4.1.7 defaults: mandatory-to-enforce true, safe-to-redistribute true,
     * incomprehensible false. */
    g->mandatory_to_enforce = true;
    g->safe_to_redistribute = true;
    static const char *flag[] = {"mandatory-to-enforce", "safe-to-redistribute", "incomprehensible"};
    bool *dst[] = {&g->mandatory_to_enforce, &g->safe_to_redistribute, &g->incomprehensible};
    for (int i = 0; i < 3; i++) {
        if (json_object_get(o, flag[i]))
            g->present |= (uint8_t)(1u << i);
        if (!jget_bool(o, flag[i], path, false, dst[i], e))
            return false;
    }
    bool known;
    if (!mi_value_check(type, value, vp, &known, e))
        return false;
    g->understood = type_understood(type, pol);
    g->blocks = g->mandatory_to_enforce && (!g->understood || g->incomprehensible);
    if (g->blocks && pol && pol->refuse_unknown_mandatory)
        return jfail(e, tp,
                     g->understood ? "mandatory-to-enforce object marked incomprehensible"
                                   : "unknown metadata type \"%s\" is mandatory-to-enforce",
                     type);
    g->type = strdup(type);
    g->value = json_incref(value);
    return g->type != NULL;
}

static bool parse_link(json_t *o, const char *path, mi_link *l, jerr *e)
{
    const char *href = NULL, *type = NULL;
    if (!jget_str(o, "href", path, true, &href, e) || !jget_str(o, "type", path, false, &type, e))
        return false;
    if (!*href) {
        char hp[JPATH_MAX];
        jpath_key(hp, path, "href");
        return jfail(e, hp, "must not be empty");
    }
    l->href = strdup(href);
    l->link_type = type ? strdup(type) : NULL;
    return true;
}

/* An object that has "href" and no "metadata" stands for a Link (§4.3.1). */
static bool is_link(json_t *o)
{
    return json_is_object(o) && json_object_get(o, "href") && !json_object_get(o, "metadata");
}

static void pattern_clear(mi_pattern *p)
{
    free(p->pattern);
    for (size_t i = 0; i < p->n_ignore_qs; i++)
        free(p->ignore_qs[i]);
    free(p->ignore_qs);
    free(p->prog);
}

static bool parse_pattern(json_t *o, const char *path, mi_pattern *p, jerr *e)
{
    memset(p, 0, sizeof *p);
    if (!json_is_object(o))
        return jfail(e, path, "expected a PatternMatch object");
    const char *pat = NULL;
    json_t *iqs = NULL;
    if (!jget_str(o, "pattern", path, true, &pat, e) ||
        !jget_bool(o, "case-sensitive", path, false, &p->case_sensitive, e) ||
        !str_list(o, "ignore-query-string", path, false, false, &iqs, e))
        return false;
    p->case_sensitive_present = json_object_get(o, "case-sensitive") != NULL;
    p->pattern = strdup(pat);
    if (iqs) {
        p->has_ignore_qs = true;
        p->n_ignore_qs = json_array_size(iqs);
        p->ignore_qs = calloc(p->n_ignore_qs ? p->n_ignore_qs : 1, sizeof *p->ignore_qs);
        for (size_t i = 0; i < p->n_ignore_qs; i++)
            p->ignore_qs[i] = strdup(json_string_value(json_array_get(iqs, i)));
    }
    char pp[JPATH_MAX];
    jpath_key(pp, path, "pattern");
    return mi_pattern_compile(p, pp, e);
}

static mi_node *node_from_json(json_t *v, const char *path, const mi_policy *pol, int depth,
                               jerr *e);

static bool parse_paths(json_t *o, const char *path, const mi_policy *pol, int depth,
                        mi_node *n, jerr *e)
{
    json_t *arr = NULL;
    if (!jget_arr(o, "paths", path, false, &arr, e))
        return false;
    if (!arr)
        return true;
    char ap[JPATH_MAX];
    jpath_key(ap, path, "paths");
    if (depth >= MI_MAX_DEPTH)
        return jfail(e, ap, "PathMetadata nested deeper than %d levels", MI_MAX_DEPTH);
    n->paths = calloc(json_array_size(arr) + 1, sizeof *n->paths);
    if (!n->paths)
        return jfail(e, ap, "out of memory");
    size_t i;
    json_t *pm;
    json_array_foreach(arr, i, pm)
    {
        char ip[JPATH_MAX], pp[JPATH_MAX], mp[JPATH_MAX];
        jpath_idx(ip, ap, i);
        if (!json_is_object(pm))
            return jfail(e, ip, "expected a PathMatch object");
        mi_path_match *m = &n->paths[n->n_paths++];
        json_t *pat = json_object_get(pm, "path-pattern");
        json_t *meta = json_object_get(pm, "path-metadata");
        jpath_key(pp, ip, "path-pattern");
        jpath_key(mp, ip, "path-metadata");
        if (!pat)
            return jfail(e, pp, "missing required member");
        if (!parse_pattern(pat, pp, &m->pattern, e))
            return false;
        if (!meta)
            return jfail(e, mp, "missing required member");
        if (is_link(meta)) {
            if (!parse_link(meta, mp, &m->link, e))
                return false;
        } else if (!(m->node = node_from_json(meta, mp, pol, depth + 1, e))) {
            return false;
        }
    }
    return true;
}

static mi_node *node_from_json(json_t *v, const char *path, const mi_policy *pol, int depth,
                               jerr *e)
{
    if (!json_is_object(v)) {
        jfail(e, path, "expected an object");
        return NULL;
    }
    mi_node *n = calloc(1, sizeof *n);
    json_t *md = NULL;
    if (!n)
        return NULL;
    if (!jget_arr(v, "metadata", path, true, &md, e))
        goto fail;
    char mp[JPATH_MAX];
    jpath_key(mp, path, "metadata");
    if (json_array_size(md) > MI_MAX_OBJECTS) {
        jfail(e, mp, "more than %d metadata objects", MI_MAX_OBJECTS);
        goto fail;
    }
    n->md = calloc(json_array_size(md) + 1, sizeof *n->md);
    if (!n->md)
        goto fail;
    size_t i;
    json_t *g;
    json_array_foreach(md, i, g)
    {
        char gp[JPATH_MAX];
        jpath_idx(gp, mp, i);
        if (!parse_generic(g, gp, pol, &n->md[i], e))
            goto fail;
        n->n_md++;
    }
    if (!parse_paths(v, path, pol, depth, n, e))
        goto fail;
    return n;
fail:
    mi_node_free(n);
    return NULL;
}

mi_node *mi_node_from_json(json_t *v, const char *path, const mi_policy *pol, jerr *e)
{
    return node_from_json(v, path, pol, 0, e);
}

mi_host_index *mi_host_index_from_json(json_t *v, const char *path, const mi_policy *pol, jerr *e)
{
    if (!json_is_object(v)) {
        jfail(e, path, "expected a HostIndex object");
        return NULL;
    }
    json_t *hosts = NULL;
    if (!jget_arr(v, "hosts", path, true, &hosts, e))
        return NULL;
    mi_host_index *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->hosts = calloc(json_array_size(hosts) + 1, sizeof *x->hosts);
    if (!x->hosts)
        goto fail;
    char hp[JPATH_MAX];
    jpath_key(hp, path, "hosts");
    size_t i;
    json_t *hm;
    json_array_foreach(hosts, i, hm)
    {
        char ip[JPATH_MAX], mp[JPATH_MAX];
        jpath_idx(ip, hp, i);
        if (!json_is_object(hm)) {
            jfail(e, ip, "expected a HostMatch object");
            goto fail;
        }
        const char *host = NULL;
        if (!jget_str(hm, "host", ip, true, &host, e))
            goto fail;
        /* held, matched and keyed in one canonical form (common/url.h) */
        char canon[262];
        if (url_canon_host(host, strlen(host), true, canon, sizeof canon, NULL) != URL_CANON_OK) {
            char p2[JPATH_MAX];
            jpath_key(p2, ip, "host");
            jfail(e, p2, "not a host name or address with optional port");
            goto fail;
        }
        mi_host_match *m = &x->hosts[x->n_hosts++];
        m->host = strdup(canon);
        json_t *meta = json_object_get(hm, "host-metadata");
        jpath_key(mp, ip, "host-metadata");
        if (!meta) {
            jfail(e, mp, "missing required member");
            goto fail;
        }
        if (is_link(meta)) {
            if (!parse_link(meta, mp, &m->link, e))
                goto fail;
        } else if (!(m->node = mi_node_from_json(meta, mp, pol, e))) {
            goto fail;
        }
    }
    return x;
fail:
    mi_host_index_free(x);
    return NULL;
}

mi_host_index *mi_host_index_parse(const char *buf, size_t len, const mi_policy *pol, jerr *e)
{
    json_t *v = jparse(buf, len, MI_MAX_DOC, e);
    if (!v)
        return NULL;
    mi_host_index *x = mi_host_index_from_json(v, "$", pol, e);
    json_decref(v);
    return x;
}

mi_node *mi_node_parse(const char *buf, size_t len, const mi_policy *pol, jerr *e)
{
    json_t *v = jparse(buf, len, MI_MAX_DOC, e);
    if (!v)
        return NULL;
    mi_node *n = mi_node_from_json(v, "$", pol, e);
    json_decref(v);
    return n;
}

/* ------------------------------------------------------------------------ */
/* Serialization                                                             */
/* ------------------------------------------------------------------------ */

json_t *mi_generic_to_json(const mi_generic *g)
{
    json_t *o = json_pack("{s:s, s:O}", "generic-metadata-type", g->type,
                          "generic-metadata-value", g->value);
    if (g->present & 1)
        json_object_set_new(o, "mandatory-to-enforce", json_boolean(g->mandatory_to_enforce));
    if (g->present & 2)
        json_object_set_new(o, "safe-to-redistribute", json_boolean(g->safe_to_redistribute));
    if (g->present & 4)
        json_object_set_new(o, "incomprehensible", json_boolean(g->incomprehensible));
    return o;
}

json_t *mi_pattern_to_json(const mi_pattern *p)
{
    json_t *o = json_pack("{s:s}", "pattern", p->pattern);
    if (p->case_sensitive_present)
        json_object_set_new(o, "case-sensitive", json_boolean(p->case_sensitive));
    if (p->has_ignore_qs) {
        json_t *a = json_array();
        for (size_t i = 0; i < p->n_ignore_qs; i++)
            json_array_append_new(a, json_string(p->ignore_qs[i]));
        json_object_set_new(o, "ignore-query-string", a);
    }
    return o;
}

static json_t *link_to_json(const mi_link *l)
{
    json_t *o = json_pack("{s:s}", "href", l->href);
    if (l->link_type)
        json_object_set_new(o, "type", json_string(l->link_type));
    return o;
}

json_t *mi_node_to_json(const mi_node *n)
{
    json_t *md = json_array();
    for (size_t i = 0; i < n->n_md; i++)
        json_array_append_new(md, mi_generic_to_json(&n->md[i]));
    json_t *o = json_pack("{s:o}", "metadata", md);
    if (n->paths) {
        json_t *paths = json_array();
        for (size_t i = 0; i < n->n_paths; i++) {
            const mi_path_match *m = &n->paths[i];
            json_array_append_new(
                paths, json_pack("{s:o, s:o}", "path-pattern", mi_pattern_to_json(&m->pattern),
                                 "path-metadata",
                                 m->node ? mi_node_to_json(m->node) : link_to_json(&m->link)));
        }
        json_object_set_new(o, "paths", paths);
    }
    return o;
}

json_t *mi_host_index_to_json(const mi_host_index *x)
{
    json_t *hosts = json_array();
    for (size_t i = 0; i < x->n_hosts; i++) {
        const mi_host_match *m = &x->hosts[i];
        json_array_append_new(hosts, json_pack("{s:s, s:o}", "host", m->host, "host-metadata",
                                               m->node ? mi_node_to_json(m->node)
                                                       : link_to_json(&m->link)));
    }
    return json_pack("{s:o}", "hosts", hosts);
}

/* ------------------------------------------------------------------------ */
/* Index: host table and per-node path tries                                 */
/* ------------------------------------------------------------------------ */

typedef struct {
    uint8_t *ebyte;   /* sorted edge bytes */
    uint32_t *echild; /* child node of each edge */
    uint32_t n_edges, cap_edges;
    uint32_t *cand; /* PathMatch indices whose literal prefix ends here, ascending */
    uint32_t n_cand, cap_cand;
} trie_node;

struct mi_path_index {
    trie_node *nodes;
    uint32_t n_nodes, cap_nodes;
};

#define WALK_LISTS 256

static void index_free(mi_path_index *ix)
{
    if (!ix)
        return;
    for (uint32_t i = 0; i < ix->n_nodes; i++) {
        free(ix->nodes[i].ebyte);
        free(ix->nodes[i].echild);
        free(ix->nodes[i].cand);
    }
    free(ix->nodes);
    free(ix);
}

static int64_t trie_new_node(mi_path_index *ix)
{
    if (ix->n_nodes == ix->cap_nodes) {
        uint32_t cap = ix->cap_nodes ? ix->cap_nodes * 2 : 64;
        trie_node *nn = realloc(ix->nodes, cap * sizeof *nn);
        if (!nn)
            return -1;
        ix->nodes = nn;
        ix->cap_nodes = cap;
    }
    memset(&ix->nodes[ix->n_nodes], 0, sizeof(trie_node));
    return ix->n_nodes++;
}

/* Child of node for byte b, or -1. Edges are kept sorted. */
static int64_t trie_child(const trie_node *t, uint8_t b)
{
    uint32_t lo = 0, hi = t->n_edges;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (t->ebyte[mid] < b)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < t->n_edges && t->ebyte[lo] == b ? (int64_t)t->echild[lo] : -1;
}

static int64_t trie_add_child(mi_path_index *ix, uint32_t at, uint8_t b)
{
    int64_t c = trie_new_node(ix);
    if (c < 0)
        return -1;
    trie_node *t = &ix->nodes[at];
    if (t->n_edges == t->cap_edges) {
        uint32_t cap = t->cap_edges ? t->cap_edges * 2 : 2;
        uint8_t *nb = realloc(t->ebyte, cap);
        if (!nb)
            return -1;
        t->ebyte = nb;
        uint32_t *nc = realloc(t->echild, cap * sizeof *nc);
        if (!nc)
            return -1;
        t->echild = nc;
        t->cap_edges = cap;
    }
    uint32_t pos = 0;
    while (pos < t->n_edges && t->ebyte[pos] < b)
        pos++;
    memmove(t->ebyte + pos + 1, t->ebyte + pos, t->n_edges - pos);
    memmove(t->echild + pos + 1, t->echild + pos, (t->n_edges - pos) * sizeof *t->echild);
    t->ebyte[pos] = b;
    t->echild[pos] = (uint32_t)c;
    t->n_edges++;
    return c;
}

static bool trie_add_cand(trie_node *t, uint32_t idx)
{
    if (t->n_cand == t->cap_cand) {
        uint32_t cap = t->cap_cand ? t->cap_cand * 2 : 2;
        uint32_t *nc = realloc(t->cand, cap * sizeof *nc);
        if (!nc)
            return false;
        t->cand = nc;
        t->cap_cand = cap;
    }
    t->cand[t->n_cand++] = idx;
    return true;
}

/* The trie key of a pattern: its literal prefix, lower-cased (a superset of
 * candidates for case-sensitive patterns), stopping at a literal '?' so that
 * the walk over the path part of a target finds every candidate. */
static bool index_node(mi_node *n)
{
    if (n->n_paths == 0)
        return true;
    mi_path_index *ix = calloc(1, sizeof *ix);
    if (!ix || trie_new_node(ix) < 0) {
        free(ix);
        return false;
    }
    for (uint32_t i = 0; i < n->n_paths; i++) {
        const mi_pattern *p = &n->paths[i].pattern;
        uint32_t at = 0;
        for (size_t k = 0; k < p->prog_len && p->prog[k] < 256 && p->prog[k] != '?'; k++) {
            uint8_t b = (uint8_t)tolower(p->prog[k]);
            int64_t c = trie_child(&ix->nodes[at], b);
            if (c < 0 && (c = trie_add_child(ix, at, b)) < 0)
                goto oom;
            at = (uint32_t)c;
        }
        if (!trie_add_cand(&ix->nodes[at], i))
            goto oom;
    }
    n->index = ix;
    for (size_t i = 0; i < n->n_paths; i++)
        if (n->paths[i].node && !index_node(n->paths[i].node))
            return false;
    return true;
oom:
    index_free(ix);
    return false;
}

static uint64_t host_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)tolower((unsigned char)s[i])) * 1099511628211ull;
    return h;
}

bool mi_index_build(mi_host_index *x)
{
    free(x->table);
    size_t size = 16;
    while (size < x->n_hosts * 2 + 1)
        size *= 2;
    x->table = malloc(size * sizeof *x->table);
    if (!x->table)
        return false;
    x->table_size = size;
    for (size_t i = 0; i < size; i++)
        x->table[i] = UINT32_MAX;
    for (uint32_t i = 0; i < x->n_hosts; i++) {
        const char *h = x->hosts[i].host;
        size_t slot = host_hash(h, strlen(h)) & (size - 1);
        while (x->table[slot] != UINT32_MAX) {
            if (strcasecmp(x->hosts[x->table[slot]].host, h) == 0)
                break; /* first HostMatch for a host wins */
            slot = (slot + 1) & (size - 1);
        }
        if (x->table[slot] == UINT32_MAX)
            x->table[slot] = i;
        mi_node *n = x->hosts[i].node;
        if (n && !n->index && !index_node(n))
            return false;
    }
    return true;
}

static const mi_host_match *find_host(const mi_host_index *x, const char *h, size_t n)
{
    if (!x->table)
        return NULL;
    size_t slot = host_hash(h, n) & (x->table_size - 1);
    while (x->table[slot] != UINT32_MAX) {
        const mi_host_match *m = &x->hosts[x->table[slot]];
        if (strlen(m->host) == n && strncasecmp(m->host, h, n) == 0)
            return m;
        slot = (slot + 1) & (x->table_size - 1);
    }
    return NULL;
}

/* Index of the first PathMatch of n matching target, or -1. */
static int64_t first_match(const mi_node *n, const char *target, size_t len)
{
    const mi_path_index *ix = n->index;
    if (!ix)
        return -1;
    const uint32_t *lists[WALK_LISTS];
    uint32_t lens[WALK_LISTS], pos[WALK_LISTS];
    size_t nl = 0;
    uint32_t at = 0;
    bool overflow = false;
    for (size_t i = 0;; i++) {
        const trie_node *t = &ix->nodes[at];
        if (t->n_cand) {
            if (nl == WALK_LISTS) {
                overflow = true;
                break;
            }
            lists[nl] = t->cand;
            lens[nl] = t->n_cand;
            pos[nl] = 0;
            nl++;
        }
        if (i == len || target[i] == '?')
            break;
        int64_t c = trie_child(t, (uint8_t)tolower((unsigned char)target[i]));
        if (c < 0)
            break;
        at = (uint32_t)c;
    }
    if (overflow) { /* pathological nesting of prefixes: plain scan */
        for (size_t i = 0; i < n->n_paths; i++)
            if (mi_pattern_match(&n->paths[i].pattern, target, len))
                return (int64_t)i;
        return -1;
    }
    /* Test candidates in PathMatch order: a k-way merge of ascending lists. */
    for (;;) {
        size_t best = WALK_LISTS;
        for (size_t k = 0; k < nl; k++)
            if (pos[k] < lens[k] && (best == WALK_LISTS || lists[k][pos[k]] < lists[best][pos[best]]))
                best = k;
        if (best == WALK_LISTS)
            return -1;
        uint32_t idx = lists[best][pos[best]++];
        if (mi_pattern_match(&n->paths[idx].pattern, target, len))
            return idx;
    }
}

static void merge_objects(mi_resolution *r, const mi_node *n)
{
    for (size_t i = 0; i < n->n_md; i++) {
        const mi_generic *g = &n->md[i];
        size_t k = 0;
        while (k < r->n_effective && strcmp(r->effective[k]->type, g->type) != 0)
            k++;
        if (k < r->n_effective)
            r->effective[k] = g; /* the deeper object of the same type wins */
        else if (r->n_effective < MI_MAX_OBJECTS)
            r->effective[r->n_effective++] = g;
    }
}

mi_resolve_status mi_resolve(const mi_host_index *x, const char *host, size_t host_len,
                             const char *target, size_t target_len, mi_resolution *out)
{
    out->host = NULL;
    out->n_effective = 0;
    out->depth = 0;
    out->blocking = NULL;
    const mi_host_match *m = find_host(x, host, host_len);
    if (!m) { /* "host:port" not published: try the host alone */
        const char *colon = memrchr(host, ':', host_len);
        const char *rb = memrchr(host, ']', host_len);
        if (colon && (!rb || colon > rb))
            m = find_host(x, host, (size_t)(colon - host));
    }
    if (!m)
        return MI_NO_HOST;
    out->host = m;
    if (!m->node)
        return MI_UNLINKED;
    const char *hash = memchr(target, '#', target_len);
    if (hash)
        target_len = (size_t)(hash - target);
    const mi_node *n = m->node;
    merge_objects(out, n);
    while (n->n_paths && out->depth < MI_MAX_DEPTH) {
        int64_t i = first_match(n, target, target_len);
        if (i < 0)
            break;
        const mi_path_match *pm = &n->paths[i];
        out->matched[out->depth++] = &pm->pattern;
        if (!pm->node)
            return MI_UNLINKED;
        n = pm->node;
        merge_objects(out, n);
    }
    for (size_t i = 0; i < out->n_effective; i++)
        if (out->effective[i]->blocks) {
            out->blocking = out->effective[i];
            break;
        }
    return MI_RESOLVED;
}

/* ------------------------------------------------------------------------ */

void mi_node_free(mi_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n_md; i++)
        generic_clear(&n->md[i]);
    free(n->md);
    for (size_t i = 0; i < n->n_paths; i++) {
        pattern_clear(&n->paths[i].pattern);
        mi_node_free(n->paths[i].node);
        free(n->paths[i].link.href);
        free(n->paths[i].link.link_type);
    }
    free(n->paths);
    index_free(n->index);
    free(n);
}

void mi_host_index_free(mi_host_index *x)
{
    if (!x)
        return;
    for (size_t i = 0; i < x->n_hosts; i++) {
        free(x->hosts[i].host);
        mi_node_free(x->hosts[i].node);
        free(x->hosts[i].link.href);
        free(x->hosts[i].link.link_type);
    }
    free(x->hosts);
    free(x->table);
    free(x);
}

json_t *mi_effective_value(const mi_resolution *r, const char *type)
{
    for (size_t i = 0; i < r->n_effective; i++)
        if (strcmp(r->effective[i]->type, type) == 0)
            return r->effective[i]->value;
    return NULL;
}

/* --- enforcement -------------------------------------------------------------- */

static bool mi_mandatory(const mi_resolution *r, const char *type)
{
    for (size_t i = 0; i < r->n_effective; i++)
        if (strcmp(r->effective[i]->type, type) == 0)
            return r->effective[i]->mandatory_to_enforce;
    return false;
}

static bool action_allows(json_t *rule)
{
    const char *a = json_string_value(json_object_get(rule, "action"));
    return a && strcmp(a, "allow") == 0; /* default "deny" */
}

/* Does one footprint cover the client? *unknowable: it is of a kind we
 * cannot evaluate. */
static bool footprint_covers(json_t *fp, const mi_facts *f, bool *unknowable)
{
    const char *t = json_string_value(json_object_get(fp, "footprint-type"));
    bool v4 = t && strcmp(t, "ipv4cidr") == 0, v6 = t && strcmp(t, "ipv6cidr") == 0;
    if (!v4 && !v6) {
        *unknowable = true;
        return false;
    }
    if (v6 != f->v6)
        return false;
    ipt_addr client = {.v6 = f->v6};
    memcpy(client.bytes, f->ip, 16);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(fp, "footprint-value"), i, v)
    {
        const char *s = json_string_value(v);
        ipt_addr a;
        unsigned len;
        if (s && ipt_parse_prefix(s, strlen(s), &a, &len) && a.v6 == f->v6 && ipt_contains(&a, len, &client))
            return true;
    }
    return false;
}

static mi_acl_verdict location_acl(const mi_resolution *r, const mi_facts *f)
{
    json_t *rules = json_object_get(mi_effective_value(r, "MI.LocationACL"), "locations");
    if (!rules)
        return MI_ACL_ALLOW;
    bool unknowable = false, allow = false;
    size_t i, j;
    json_t *rule, *fp;
    json_array_foreach(rules, i, rule)
    {
        bool hit = false;
        json_array_foreach(json_object_get(rule, "footprints"), j, fp)
            if (footprint_covers(fp, f, &unknowable)) {
                hit = true;
                break;
            }
        if (hit) {
            allow = action_allows(rule);
            break;
        }
    }
    if (unknowable && mi_mandatory(r, "MI.LocationACL"))
        return MI_ACL_UNENFORCEABLE;
    return allow ? MI_ACL_ALLOW : MI_ACL_LOCATION;
}

static mi_acl_verdict time_acl(const mi_resolution *r, const mi_facts *f)
{
    json_t *v = mi_effective_value(r, "MI.TimeWindowACL");
    json_t *rules = json_object_get(v, "times");
    if (!rules)
        rules = json_object_get(v, "windows");
    if (!rules)
        return MI_ACL_ALLOW;
    size_t i, j;
    json_t *rule, *w;
    json_array_foreach(rules, i, rule)
    {
        json_array_foreach(json_object_get(rule, "windows"), j, w)
        {
            long long s = json_integer_value(json_object_get(w, "start"));
            long long e = json_integer_value(json_object_get(w, "end"));
            if (f->now >= s && f->now <= e)
                return action_allows(rule) ? MI_ACL_ALLOW : MI_ACL_TIME;
        }
    }
    return MI_ACL_TIME;
}

static mi_acl_verdict protocol_acl(const mi_resolution *r, const mi_facts *f)
{
    json_t *rules = json_object_get(mi_effective_value(r, "MI.ProtocolACL"), "protocol-acl");
    if (!rules)
        return MI_ACL_ALLOW;
    size_t i, j;
    json_t *rule, *p;
    json_array_foreach(rules, i, rule)
    {
        json_array_foreach(json_object_get(rule, "protocols"), j, p)
        {
            const char *s = json_string_value(p);
            if (s && f->protocol && strcasecmp(s, f->protocol) == 0)
                return action_allows(rule) ? MI_ACL_ALLOW : MI_ACL_PROTOCOL;
        }
    }
    return MI_ACL_PROTOCOL;
}

mi_acl_verdict mi_acl_check(const mi_resolution *r, const mi_facts *f)
{
    mi_acl_verdict v = location_acl(r, f);
    if (v == MI_ACL_ALLOW)
        v = time_acl(r, f);
    if (v == MI_ACL_ALLOW)
        v = protocol_acl(r, f);
    return v;
}

const char *mi_acl_reason(mi_acl_verdict v)
{
    switch (v) {
    case MI_ACL_ALLOW:
        return "allowed";
    case MI_ACL_LOCATION:
        return "the content is not available at the client's location";
    case MI_ACL_TIME:
        return "the content is not available at this time";
    case MI_ACL_PROTOCOL:
        return "the content is not available over this protocol";
    case MI_ACL_UNENFORCEABLE:
        return "the content's location rules cannot be enforced here";
    }
    return "denied";
}

/* --- cache key ------------------------------------------------------------------ */

#define KEY_PATTERN_MAX 256
#define KEY_PATH_MAX 4096

/* Marks in wild[] the path bytes that exclude-path-pattern's wildcards
 * match. false: no match (or too long to try). */
static bool glob_wild(const char *pat, const char *s, size_t n, unsigned char *wild)
{
    uint16_t tok[KEY_PATTERN_MAX];
    size_t m;
    return glob_compile(pat, strlen(pat), true, false, tok, KEY_PATTERN_MAX, &m, NULL) &&
           glob_match(tok, m, s, n, true, wild);
}

static bool name_in(json_t *list, const char *name, size_t n)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *s = json_string_value(v);
        if (s && strlen(s) == n && strncasecmp(s, name, n) == 0)
            return true;
    }
    return false;
}

static bool name_in_drop(const char *const *drop, const char *name, size_t n)
{
    for (size_t i = 0; drop && drop[i]; i++)
        if (strlen(drop[i]) == n && strncasecmp(drop[i], name, n) == 0)
            return true;
    return false;
}

typedef struct {
    char *out;
    size_t cap, len;
    bool ok;
} key_out;

static void key_put(key_out *k, const char *s, size_t n)
{
    if (!k->ok || k->len + n >= k->cap) {
        k->ok = false;
        return;
    }
    memcpy(k->out + k->len, s, n);
    k->len += n;
    k->out[k->len] = 0;
}

/* Appends the parameters of query (len qn) named name (or, name NULL,
 * every one not excluded); *first tracks the separator. */
static void key_params(key_out *k, const char *q, size_t qn, const char *name, json_t *exclude,
                       const char *const *drop, bool *first)
{
    size_t i = 0;
    while (i < qn) {
        size_t e = i;
        while (e < qn && q[e] != '&')
            e++;
        size_t nl = i;
        while (nl < e && q[nl] != '=')
            nl++;
        nl -= i;
        bool take = nl || e > i;
        if (take && name_in_drop(drop, q + i, nl))
            take = false;
        else if (take && name)
            take = strlen(name) == nl && strncasecmp(name, q + i, nl) == 0;
        else if (take && exclude)
            take = !name_in(exclude, q + i, nl);
        if (take) {
            key_put(k, *first ? "?" : "&", 1);
            key_put(k, q + i, e - i);
            *first = false;
        }
        i = e + 1;
    }
}

bool mi_cache_key(const mi_resolution *r, const char *target, size_t target_len, const char *const *drop, char *out,
                  size_t cap, size_t *out_len)
{
    key_out k = {out, cap, 0, cap > 0};
    if (cap)
        out[0] = 0;
    key_put(&k, r->host->host, strlen(r->host->host));
    size_t pn = 0;
    while (pn < target_len && target[pn] != '?')
        pn++;
    json_t *mc = mi_effective_value(r, "MI.Cache");
    const char *pat = json_string_value(json_object_get(mc, "exclude-path-pattern"));
    unsigned char wild[KEY_PATH_MAX];
    if (pat && pn <= KEY_PATH_MAX && glob_wild(pat, target, pn, wild)) {
        key_put(&k, "/", 1); /* the key's path stays a path */
        for (size_t i = 0; i < pn; i++)
            if (wild[i])
                key_put(&k, target + i, 1);
    } else {
        key_put(&k, target, pn);
    }
    const char *q = pn < target_len ? target + pn + 1 : "";
    size_t qn = pn < target_len ? target_len - pn - 1 : 0;
    bool first = true;
    json_t *inc = json_object_get(mc, "include-query-strings");
    if (json_is_array(inc)) {
        size_t i;
        json_t *v;
        json_array_foreach(inc, i, v)
            if (json_string_value(v))
                key_params(&k, q, qn, json_string_value(v), NULL, drop, &first);
    } else {
        key_params(&k, q, qn, NULL, json_object_get(mc, "exclude-query-strings"), drop, &first);
    }
    if (out_len)
        *out_len = k.len;
    return k.ok;
}

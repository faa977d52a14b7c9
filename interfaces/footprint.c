/* CDNI footprints: parse, validate, serialize, match. */
#include "interfaces/footprint.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const type_names[] = {"ipv4cidr", "ipv6cidr", "asn",
                                         "countrycode", "subdivisioncode", "footprintunion"};

const char *fp_type_name(fp_type t) { return type_names[t]; }

static bool parse_asn(const char *v, size_t n, uint32_t *out) /* "as64496" */
{
    if (n < 3 || n > 12 || strncasecmp(v, "as", 2) != 0)
        return false;
    unsigned long long x = 0;
    for (size_t i = 2; i < n; i++) {
        if (!isdigit((unsigned char)v[i]))
            return false;
        x = x * 10 + (unsigned)(v[i] - '0');
    }
    if (x == 0 || x > UINT32_MAX)
        return false;
    *out = (uint32_t)x;
    return true;
}

static bool parse_code(fp_type t, const char *v, size_t n, char out[8])
{
    if (t == FP_COUNTRY) { /* ISO 3166-1 alpha-2 */
        if (n != 2 || !isalpha((unsigned char)v[0]) || !isalpha((unsigned char)v[1]))
            return false;
    } else { /* ISO 3166-2: "US-CA", up to three alphanumerics after the dash */
        if (n < 4 || n > 6 || v[2] != '-' || !isalpha((unsigned char)v[0]) ||
            !isalpha((unsigned char)v[1]))
            return false;
        for (size_t i = 3; i < n; i++)
            if (!isalnum((unsigned char)v[i]))
                return false;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (char)toupper((unsigned char)v[i]);
    out[n] = 0;
    return true;
}

void fp_free(footprint *f)
{
    if (!f)
        return;
    free(f->prefixes);
    free(f->asns);
    free(f->codes);
    if (f->members)
        fp_list_free(f->members, f->n);
    memset(f, 0, sizeof *f);
}

void fp_list_free(footprint *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fp_free(&f[i]);
    free(f);
}

static bool parse_in(json_t *o, const char *path, footprint *out, bool in_union, jerr *e)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(o))
        return jfail(e, path, "expected a Footprint object");
    const char *type = NULL;
    if (!jget_str(o, "footprint-type", path, true, &type, e))
        return false;
    char tp[JPATH_MAX], vp[JPATH_MAX];
    jpath_key(tp, path, "footprint-type");
    jpath_key(vp, path, "footprint-value");
    int t = -1;
    for (int i = 0; i < 6; i++)
        if (strcmp(type, type_names[i]) == 0)
            t = i;
    if (t < 0)
        return jfail(e, tp, "unknown footprint type \"%s\"", type);
    out->type = (fp_type)t;
    json_t *vals = NULL;
    if (!jget_arr(o, "footprint-value", path, true, &vals, e))
        return false;
    size_t n = json_array_size(vals);
    if (out->type == FP_UNION && in_union)
        return jfail(e, tp, "a footprintunion must not contain another footprintunion");
    if (n == 0)
        return jfail(e, vp, "must not be empty");
    if (out->type == FP_UNION) {
        out->members = calloc(n, sizeof *out->members);
        if (!out->members)
            return jfail(e, vp, "out of memory");
        out->n = n;
        for (size_t i = 0; i < n; i++) {
            char ip[JPATH_MAX];
            jpath_idx(ip, vp, i);
            if (!parse_in(json_array_get(vals, i), ip, &out->members[i], true, e)) {
                fp_free(out);
                return false;
            }
        }
        return true;
    }
    if (out->type == FP_IPV4CIDR || out->type == FP_IPV6CIDR)
        out->prefixes = calloc(n, sizeof *out->prefixes);
    else if (out->type == FP_ASN)
        out->asns = calloc(n, sizeof *out->asns);
    else
        out->codes = calloc(n, sizeof *out->codes);
    if (!out->prefixes && !out->asns && !out->codes)
        return jfail(e, vp, "out of memory");
    out->n = n;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(vals, i);
        char ip[JPATH_MAX];
        jpath_idx(ip, vp, i);
        const char *s = json_string_value(v);
        size_t sl = json_string_length(v);
        bool ok = false;
        if (!s) {
            fp_free(out);
            return jfail(e, ip, "expected a string");
        }
        if (out->type == FP_IPV4CIDR || out->type == FP_IPV6CIDR) {
            unsigned len;
            ok = ipt_parse_prefix(s, sl, &out->prefixes[i].addr, &len) &&
                 out->prefixes[i].addr.v6 == (out->type == FP_IPV6CIDR);
            out->prefixes[i].len = (uint8_t)len;
        } else if (out->type == FP_ASN) {
            ok = parse_asn(s, sl, &out->asns[i]);
        } else {
            ok = parse_code(out->type, s, sl, out->codes[i]);
        }
        if (!ok) {
            fp_free(out);
            return jfail(e, ip, "not a valid %s value", type_names[t]);
        }
    }
    return true;
}

bool fp_parse(json_t *o, const char *path, footprint *out, jerr *e)
{
    return parse_in(o, path, out, false, e);
}

bool fp_check(json_t *o, const char *path, jerr *e)
{
    footprint f;
    if (!fp_parse(o, path, &f, e))
        return false;
    fp_free(&f);
    return true;
}

bool fp_list_parse(json_t *arr, const char *path, footprint **out, size_t *n, jerr *e)
{
    *out = NULL;
    *n = 0;
    if (!json_is_array(arr))
        return jfail(e, path, "expected an array of Footprint objects");
    size_t k = json_array_size(arr);
    if (k == 0)
        return true;
    footprint *f = calloc(k, sizeof *f);
    if (!f)
        return jfail(e, path, "out of memory");
    for (size_t i = 0; i < k; i++) {
        char ip[JPATH_MAX];
        jpath_idx(ip, path, i);
        if (!fp_parse(json_array_get(arr, i), ip, &f[i], e)) {
            fp_list_free(f, i);
            return false;
        }
    }
    *out = f;
    *n = k;
    return true;
}

json_t *fp_to_json(const footprint *f)
{
    json_t *vals = json_array();
    for (size_t i = 0; i < f->n; i++) {
        char buf[IPT_TEXT_MAX];
        switch (f->type) {
        case FP_IPV4CIDR:
        case FP_IPV6CIDR:
            ipt_format_prefix(&f->prefixes[i].addr, f->prefixes[i].len, buf, sizeof buf);
            json_array_append_new(vals, json_string(buf));
            break;
        case FP_ASN:
            snprintf(buf, sizeof buf, "as%u", f->asns[i]);
            json_array_append_new(vals, json_string(buf));
            break;
        case FP_COUNTRY:
        case FP_SUBDIVISION:
            json_array_append_new(vals, json_string(f->codes[i]));
            break;
        case FP_UNION:
            json_array_append_new(vals, fp_to_json(&f->members[i]));
            break;
        }
    }
    return json_pack("{s:s, s:o}", "footprint-type", type_names[f->type], "footprint-value", vals);
}

json_t *fp_list_to_json(const footprint *f, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, fp_to_json(&f[i]));
    return a;
}

bool fp_match(const footprint *f, const fp_client *c, unsigned *plen)
{
    bool hit = false;
    unsigned best = 0;
    for (size_t i = 0; i < f->n; i++) {
        switch (f->type) {
        case FP_IPV4CIDR:
        case FP_IPV6CIDR:
            if (ipt_contains(&f->prefixes[i].addr, f->prefixes[i].len, &c->ip)) {
                if (!hit || f->prefixes[i].len > best)
                    best = f->prefixes[i].len;
                hit = true;
            }
            break;
        case FP_ASN:
            if (c->asn && f->asns[i] == c->asn)
                hit = true;
            break;
        case FP_COUNTRY:
            if (c->country[0] && strcmp(f->codes[i], c->country) == 0)
                hit = true;
            break;
        case FP_SUBDIVISION:
            if (c->subdivision[0] && strcmp(f->codes[i], c->subdivision) == 0)
                hit = true;
            break;
        case FP_UNION: {
            unsigned l = 0;
            if (fp_match(&f->members[i], c, &l)) {
                if (!hit || l > best)
                    best = l;
                hit = true;
            }
            break;
        }
        }
    }
    if (plen)
        *plen = hit ? best : 0;
    return hit;
}

bool fp_list_match(const footprint *f, size_t n, const fp_client *c)
{
    for (size_t i = 0; i < n; i++)
        if (!fp_match(&f[i], c, NULL))
            return false;
    return true;
}

bool fp_is_ip(const footprint *f)
{
    if (f->type == FP_IPV4CIDR || f->type == FP_IPV6CIDR)
        return true;
    if (f->type != FP_UNION)
        return false;
    for (size_t i = 0; i < f->n; i++)
        if (!fp_is_ip(&f->members[i]))
            return false;
    return true;
}

/* CDNI Footprint & Capabilities: codec and validation. */
#include "interfaces/fci.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    const char *list; /* member holding the main list */
} types[] = {
    [FCI_DELIVERY_PROTOCOL] = {"FCI.DeliveryProtocol", "delivery-protocols"},
    [FCI_ACQUISITION_PROTOCOL] = {"FCI.AcquisitionProtocol", "acquisition-protocols"},
    [FCI_REDIRECTION_MODE] = {"FCI.RedirectionMode", "redirection-modes"},
    [FCI_LOGGING] = {"FCI.Logging", "record-types"},
    [FCI_METADATA] = {"FCI.Metadata", "metadata"},
    [FCI_REDIRECT_TARGET] = {"FCI.RedirectTarget", "redirecting-hosts"},
};

const char *fci_type_name(fci_type t) { return t < FCI_OTHER ? types[t].name : "other"; }

static void free_list(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

static void cap_free(fci_capability *c)
{
    free(c->type_name);
    json_decref(c->value);
    free_list(c->items, c->n_items);
    free_list(c->fields, c->n_fields);
    free_list(c->compression, c->n_compression);
    fp_list_free(c->fps, c->n_fps);
}

void fci_free(fci_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        cap_free(&s->caps[i]);
    free(s->caps);
    free(s);
}

/* A list of non-empty strings (token characters only), copied. */
static bool str_list(json_t *o, const char *key, const char *path, bool required, bool nonempty,
                     char ***out, size_t *n, jerr *e)
{
    json_t *a = NULL;
    if (!jget_arr(o, key, path, required, &a, e))
        return false;
    if (!a)
        return true;
    char lp[JPATH_MAX];
    jpath_key(lp, path, key);
    if (!jstr_array(a, lp, e))
        return false;
    size_t k = json_array_size(a);
    if (nonempty && k == 0)
        return jfail(e, lp, "must not be empty");
    char **l = calloc(k ? k : 1, sizeof *l);
    if (!l)
        return jfail(e, lp, "out of memory");
    for (size_t i = 0; i < k; i++) {
        const char *s = json_string_value(json_array_get(a, i));
        size_t sl = json_string_length(json_array_get(a, i));
        bool ok = sl > 0 && sl < 256;
        for (size_t j = 0; ok && j < sl; j++)
            ok = isgraph((unsigned char)s[j]);
        if (!ok) {
            free_list(l, i);
            char ip[JPATH_MAX];
            jpath_idx(ip, lp, i);
            return jfail(e, ip, "expected a non-empty name without spaces");
        }
        l[i] = strdup(s);
    }
    *out = l;
    *n = k;
    return true;
}

static bool host_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("-.:[]_", s[i]))
            return false;
    return true;
}

static bool cap_parse(json_t *o, const char *path, fci_capability *c, jerr *e)
{
    if (!json_is_object(o))
        return jfail(e, path, "expected a capability object");
    const char *tn = NULL;
    json_t *val = NULL, *fps = NULL;
    if (!jget_str(o, "capability-type", path, true, &tn, e) ||
        !jget_obj(o, "capability-value", path, true, &val, e) ||
        !jget_arr(o, "footprints", path, false, &fps, e))
        return false;
    c->type = FCI_OTHER;
    for (int i = 0; i < FCI_OTHER; i++)
        if (strcmp(tn, types[i].name) == 0)
            c->type = (fci_type)i;
    c->type_name = strdup(tn);
    c->value = json_incref(val);
    char vp[JPATH_MAX];
    jpath_key(vp, path, "capability-value");
    if (fps) {
        char fp[JPATH_MAX];
        jpath_key(fp, path, "footprints");
        if (!fp_list_parse(fps, fp, &c->fps, &c->n_fps, e))
            return false;
    }
    switch (c->type) {
    case FCI_DELIVERY_PROTOCOL:
    case FCI_ACQUISITION_PROTOCOL:
    case FCI_METADATA:
        return str_list(val, types[c->type].list, vp, true, true, &c->items, &c->n_items, e);
    case FCI_REDIRECTION_MODE:
        if (!str_list(val, types[c->type].list, vp, true, true, &c->items, &c->n_items, e))
            return false;
        for (size_t i = 0; i < c->n_items; i++) {
            static const char *const m[] = {"DNS-I", "DNS-R", "HTTP-I", "HTTP-R"};
            unsigned bit = 0;
            for (unsigned k = 0; k < 4; k++)
                if (strcmp(c->items[i], m[k]) == 0)
                    bit = 1u << k;
            if (!bit) {
                char lp[JPATH_MAX], ip[JPATH_MAX];
                jpath_key(lp, vp, "redirection-modes");
                jpath_idx(ip, lp, i);
                return jfail(e, ip, "expected one of DNS-I, DNS-R, HTTP-I, HTTP-R");
            }
            c->modes |= bit;
        }
        return true;
    case FCI_LOGGING:
        return str_list(val, "record-types", vp, true, true, &c->items, &c->n_items, e) &&
               str_list(val, "fields", vp, false, false, &c->fields, &c->n_fields, e) &&
               str_list(val, "compression", vp, false, false, &c->compression,
                        &c->n_compression, e);
    case FCI_REDIRECT_TARGET: {
        json_t *ht = NULL, *dt = NULL;
        if (!str_list(val, "redirecting-hosts", vp, false, false, &c->items, &c->n_items, e) ||
            !jget_obj(val, "http-target", vp, false, &ht, e) ||
            !jget_obj(val, "dns-target", vp, false, &dt, e))
            return false;
        if (!ht && !dt)
            return jfail(e, vp, "needs http-target or dns-target");
        const char *h = NULL;
        char tp[JPATH_MAX];
        if (ht) {
            jpath_key(tp, vp, "http-target");
            if (!jget_str(ht, "host", tp, true, &h, e))
                return false;
            if (!host_ok(h)) {
                char hp[JPATH_MAX];
                jpath_key(hp, tp, "host");
                return jfail(e, hp, "not a host name or address with optional port");
            }
            c->http_target = h;
        }
        if (dt) {
            jpath_key(tp, vp, "dns-target");
            if (!jget_str(dt, "host", tp, true, &h, e))
                return false;
        }
        return true;
    }
    case FCI_OTHER:
        return true;
    }
    return true;
}

fci_set *fci_from_json(json_t *v, const char *path, jerr *e)
{
    json_t *caps = NULL;
    if (!json_is_object(v)) {
        jfail(e, path, "expected an object with \"capabilities\"");
        return NULL;
    }
    if (!jget_arr(v, "capabilities", path, true, &caps, e))
        return NULL;
    fci_set *s = calloc(1, sizeof *s);
    size_t n = json_array_size(caps);
    s->caps = calloc(n ? n : 1, sizeof *s->caps);
    char cp[JPATH_MAX];
    jpath_key(cp, path, "capabilities");
    for (size_t i = 0; i < n; i++) {
        char ip[JPATH_MAX];
        jpath_idx(ip, cp, i);
        s->n = i + 1;
        if (!cap_parse(json_array_get(caps, i), ip, &s->caps[i], e)) {
            fci_free(s);
            return NULL;
        }
    }
    s->n = n;
    return s;
}

fci_set *fci_parse(const char *buf, size_t len, jerr *e)
{
    json_t *v = jparse(buf, len, FCI_MAX_DOC, e);
    if (!v)
        return NULL;
    fci_set *s = fci_from_json(v, "$", e);
    json_decref(v);
    return s;
}

json_t *fci_to_json(const fci_set *s)
{
    json_t *a = json_array();
    for (size_t i = 0; i < s->n; i++) {
        const fci_capability *c = &s->caps[i];
        json_t *o = json_pack("{s:s, s:O}", "capability-type", c->type_name, "capability-value",
                              c->value);
        if (c->n_fps)
            json_object_set_new(o, "footprints", fp_list_to_json(c->fps, c->n_fps));
        json_array_append_new(a, o);
    }
    return json_pack("{s:o}", "capabilities", a);
}

bool fci_has_item(const fci_capability *c, const char *item)
{
    for (size_t i = 0; i < c->n_items; i++)
        if (strcmp(c->items[i], item) == 0)
            return true;
    return false;
}

bool fci_has_field(const fci_capability *c, const char *field)
{
    for (size_t i = 0; i < c->n_fields; i++)
        if (strcmp(c->fields[i], field) == 0)
            return true;
    return false;
}

static size_t fp_prefixes(const footprint *f)
{
    if (f->type == FP_IPV4CIDR || f->type == FP_IPV6CIDR)
        return f->n;
    size_t k = 0;
    if (f->type == FP_UNION)
        for (size_t i = 0; i < f->n; i++)
            k += fp_prefixes(&f->members[i]);
    return k;
}

size_t fci_prefix_count(const fci_set *s)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        for (size_t j = 0; j < s->caps[i].n_fps; j++)
            k += fp_prefixes(&s->caps[i].fps[j]);
    return k;
}

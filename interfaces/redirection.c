/* CDNI Request Routing Redirection (RFC 7975): codec and loop check. */
#include "interfaces/redirection.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/http_client.h"

static bool nonempty(json_t *o, const char *key, const char *path, bool required,
                     const char **out, size_t max, jerr *e)
{
    if (!jget_str(o, key, path, required, out, e))
        return false;
    if (*out && (!**out || strlen(*out) > max)) {
        char kp[JPATH_MAX];
        jpath_key(kp, path, key);
        return jfail(e, kp, "must be 1..%zu characters", max);
    }
    return true;
}

static bool token_ok(const char *s) /* an HTTP method / scheme / DNS mnemonic */
{
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("-+.", *s))
            return false;
    return true;
}

/* "headers": an object of strings; *location (if asked) gets Location. */
static bool headers_ok(json_t *h, const char **location, jerr *e)
{
    const char *k;
    json_t *hv;
    json_object_foreach(h, k, hv)
    {
        if (!json_is_string(hv)) {
            char hp[JPATH_MAX];
            jpath_key(hp, "$.headers", k);
            return jfail(e, hp, "expected a string");
        }
        if (location && strcasecmp(k, "location") == 0)
            *location = json_string_value(hv);
    }
    return true;
}

bool ri_request_parse(const char *buf, size_t len, ri_request *out, jerr *e)
{
    memset(out, 0, sizeof *out);
    out->max_hops = RI_MAX_HOPS_DEFAULT;
    json_t *v = jparse(buf, len, RI_MAX_DOC, e);
    if (!v)
        return false;
    out->doc = v;
    const char *iface = NULL;
    if (!json_is_object(v)) {
        ri_request_free(out);
        return jfail(e, "$", "expected a redirection request object");
    }
    bool ok = jget_str(v, "interface", "$", true, &iface, e) &&
              jget_arr(v, "cdn-path", "$", false, &out->cdn_path, e) &&
              jget_int(v, "max-hops", "$", false, 1, 64, &out->max_hops, e);
    if (ok && out->cdn_path)
        ok = jstr_array(out->cdn_path, "$.cdn-path", e);
    if (ok && strcmp(iface, "http") == 0) {
        out->iface = RI_HTTP;
        ok = nonempty(v, "method", "$", true, &out->method, 32, e) &&
             nonempty(v, "scheme", "$", true, &out->scheme, 16, e) &&
             nonempty(v, "host", "$", true, &out->host, 255, e) &&
             nonempty(v, "url", "$", true, &out->url, 8192, e) &&
             nonempty(v, "c-ip", "$", true, &out->c_ip, 64, e) &&
             nonempty(v, "http-version", "$", false, &out->http_version, 16, e) &&
             jget_obj(v, "headers", "$", false, &out->headers, e);
        if (ok && (!token_ok(out->method) || !token_ok(out->scheme)))
            ok = jfail(e, token_ok(out->method) ? "$.scheme" : "$.method", "not a valid token");
        if (ok && out->url[0] != '/')
            ok = jfail(e, "$.url", "must be an origin-form path starting with '/'");
        if (ok && strcasecmp(out->scheme, "http") && strcasecmp(out->scheme, "https"))
            ok = jfail(e, "$.scheme", "expected \"http\" or \"https\"");
        if (ok && out->headers)
            ok = headers_ok(out->headers, NULL, e);
    } else if (ok && strcmp(iface, "dns") == 0) {
        out->iface = RI_DNS;
        ok = nonempty(v, "qname", "$", true, &out->qname, 253, e) &&
             nonempty(v, "qtype", "$", true, &out->qtype, 16, e) &&
             nonempty(v, "qclass", "$", false, &out->qclass, 16, e) &&
             nonempty(v, "resolver-ip", "$", true, &out->resolver_ip, 64, e) &&
             nonempty(v, "c-subnet", "$", false, &out->c_subnet, 64, e);
        if (ok && !token_ok(out->qtype))
            ok = jfail(e, "$.qtype", "not a valid RR type mnemonic");
    } else if (ok) {
        ok = jfail(e, "$.interface", "expected \"http\" or \"dns\"");
    }
    if (!ok)
        ri_request_free(out);
    return ok;
}

void ri_request_free(ri_request *r)
{
    json_decref(r->doc);
    memset(r, 0, sizeof *r);
}

json_t *ri_http_request(const char *method, const char *scheme, const char *host,
                        const char *url, const char *c_ip, json_t *headers,
                        const char *const *cdn_path, size_t n_path, int max_hops)
{
    json_t *p = json_array();
    for (size_t i = 0; i < n_path; i++)
        json_array_append_new(p, json_string(cdn_path[i]));
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:i}", "interface", "http",
                          "method", method, "scheme", scheme, "http-version", "HTTP/1.1",
                          "host", host, "url", url, "c-ip", c_ip, "cdn-path", p, "max-hops",
                          max_hops);
    if (o && headers)
        json_object_set_new(o, "headers", headers);
    else
        json_decref(headers);
    return o;
}

bool ri_response_parse(const char *buf, size_t len, ri_response *out, jerr *e)
{
    memset(out, 0, sizeof *out);
    json_t *v = jparse(buf, len, RI_MAX_DOC, e);
    if (!v)
        return false;
    out->doc = v;
    bool ok = json_is_object(v) || jfail(e, "$", "expected a redirection response object");
    long long code = 0, rcode = 0;
    if (ok && json_object_get(v, "rr")) {
        out->dns = true;
        ok = jget_int(v, "rcode", "$", false, 0, 65535, &rcode, e) &&
             jget_arr(v, "rr", "$", true, &out->rr, e);
        out->rcode = (int)rcode;
    } else if (ok) {
        ok = jget_int(v, "code", "$", true, 100, 599, &code, e) &&
             jget_obj(v, "headers", "$", false, &out->headers, e) &&
             jget_str(v, "body", "$", false, &out->body, e);
        out->code = (int)code;
        if (ok && out->headers)
            ok = headers_ok(out->headers, &out->location, e);
        if (ok && code >= 300 && code < 400 && !out->location)
            ok = jfail(e, "$.headers", "a redirect needs a Location header");
        if (ok && out->location &&
            (strlen(out->location) > 8192 || strncasecmp(out->location, "http", 4) != 0))
            ok = jfail(e, "$.headers.location", "expected an absolute http(s) URI");
        for (const char *c = out->location; ok && c && *c; c++)
            if ((unsigned char)*c <= 0x20 || *c == 0x7f)
                ok = jfail(e, "$.headers.location", "control characters or spaces in URI");
    }
    if (!ok)
        ri_response_free(out);
    return ok;
}

void ri_response_free(ri_response *r)
{
    json_decref(r->doc);
    memset(r, 0, sizeof *r);
}

json_t *ri_http_response(int code, const char *location)
{
    return json_pack("{s:i, s:{s:s}}", "code", code, "headers", "location", location);
}

json_t *ri_dns_response(const char *name, const char *type, const char *rdata, int ttl)
{
    return json_pack("{s:i, s:[{s:s, s:i, s:s, s:s, s:s}]}", "rcode", 0, "rr", "name", name,
                     "ttl", ttl, "type", type, "class", "IN", "rdata", rdata);
}

json_t *ri_error(int code, const char *reason)
{
    return json_pack("{s:i, s:s}", "error-code", code, "reason", reason);
}

bool ri_error_parse(const char *buf, size_t len, int *code, char *reason, size_t cap)
{
    jerr e;
    json_t *v = jparse(buf, len, RI_MAX_DOC, &e);
    long long c = 0;
    const char *r = NULL;
    bool ok = v && json_is_object(v) && jget_int(v, "error-code", "$", true, 0, 999, &c, &e) &&
              jget_str(v, "reason", "$", false, &r, &e);
    if (ok) {
        *code = (int)c;
        snprintf(reason, cap, "%s", r ? r : "");
    }
    json_decref(v);
    return ok;
}

bool ri_loop_ok(const ri_request *r, const char *self, const char **why)
{
    size_t n = json_array_size(r->cdn_path);
    for (size_t i = 0; i < n; i++)
        if (strcmp(json_string_value(json_array_get(r->cdn_path, i)), self) == 0) {
            *why = "loop: this CDN is already on cdn-path";
            return false;
        }
    if ((long long)n >= r->max_hops) {
        *why = "cdn-path has reached max-hops";
        return false;
    }
    return true;
}

/* --- the content's host across a redirect ------------------------------------ */

static bool host_ok(const char *h, size_t n)
{
    if (n == 0 || n > 261)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (!isalnum(c) && !strchr("-._:[]", c))
            return false;
    }
    return true;
}

bool ri_host_path(const char *host, const char *target, char *out, size_t cap)
{
    size_t hn = strlen(host);
    if (!host_ok(host, hn) || target[0] != '/')
        return false;
    int w = snprintf(out, cap, "/%s%s", host, target);
    return w > 0 && (size_t)w < cap;
}

bool ri_split_host_path(const char *target, char *host, size_t cap, const char **rest)
{
    if (target[0] != '/')
        return false;
    const char *s = target + 1;
    size_t n = strcspn(s, "/?");
    if (s[n] != '/' || !host_ok(s, n) || n >= cap)
        return false;
    memcpy(host, s, n);
    host[n] = 0;
    *rest = s + n;
    return true;
}

/* --- the client call ---------------------------------------------------------------------- */

static long max_age(const char *cc)
{
    if (!cc[0] || strcasestr(cc, "no-store") || strcasestr(cc, "no-cache"))
        return -1;
    const char *p = strcasestr(cc, "s-maxage=");
    p = p ? p + 9 : (p = strcasestr(cc, "max-age=")) ? p + 8 : NULL;
    if (!p || !isdigit((unsigned char)*p))
        return -1;
    return strtol(p, NULL, 10);
}

bool ri_call(struct http_client *hc, const char *ri_url, const char *token, const json_t *req, char *location,
             size_t cap, long *max_age_s, long *status, char *why, size_t why_cap)
{
    char *body = json_dumps(req, JSON_COMPACT);
    char auth[512];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    const char *h[] = {auth, "Content-Type: " RI_MEDIA_REQUEST, "Accept: " RI_MEDIA_RESPONSE, NULL};
    http_result res = {0};
    int rc = body ? http_client_do(hc, "POST", ri_url, h, body, strlen(body), &res) : -1;
    free(body);
    bool ok = false;
    *status = rc == 0 ? res.status : 0;
    *max_age_s = -1;
    if (rc != 0) {
        snprintf(why, why_cap, "%s", body ? res.error : "out of memory");
    } else if (res.status == 200) {
        ri_response rr;
        jerr e;
        if (!ri_response_parse(res.body, res.body_len, &rr, &e))
            snprintf(why, why_cap, "bad RI response at %s: %s", e.path, e.reason);
        else if (rr.dns || !rr.location || rr.code < 300 || rr.code > 399)
            snprintf(why, why_cap, "RI response is not an HTTP redirect");
        else if (strlen(rr.location) >= cap)
            snprintf(why, why_cap, "RI location too long");
        else {
            strcpy(location, rr.location);
            *max_age_s = max_age(res.cache_control);
            ok = true;
        }
        ri_response_free(&rr);
    } else {
        int code = 0;
        char reason[200] = "";
        ri_error_parse(res.body ? res.body : "", res.body_len, &code, reason, sizeof reason);
        snprintf(why, why_cap, "RI answered %ld (error-code %d: %s)", res.status, code, reason);
    }
    http_result_free(&res);
    return ok;
}

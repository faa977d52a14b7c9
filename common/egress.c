/* Egress policy. See egress.h.
 *
 * The special-purpose ranges are those of the IANA IPv4 and IPv6
 * Special-Purpose Address Registries (RFC 6890 and its updates) that are
 * not globally reachable, plus multicast; the allow list is two small
 * arrays scanned in order (a daemon has a handful of entries). */
#include "common/egress.h"

#include <curl/curl.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/url.h"

struct egress_policy {
    bool allow_public;
    struct eg_net {
        ipt_addr a;
        unsigned len;
        int port; /* 0: any */
    } *nets;
    size_t n_nets;
    struct eg_name {
        char host[256];
        int port;
    } *names;
    size_t n_names;
};

egress_policy *egress_new(bool allow_public)
{
    egress_policy *p = calloc(1, sizeof *p);
    if (p)
        p->allow_public = allow_public;
    return p;
}

void egress_free(egress_policy *p)
{
    if (!p)
        return;
    free(p->nets);
    free(p->names);
    free(p);
}

const char *egress_verdict_text(egress_verdict v)
{
    switch (v) {
    case EGRESS_OK: return "allowed";
    case EGRESS_BAD_URL: return "not an absolute URL with a valid host";
    case EGRESS_SCHEME: return "only http and https are fetched";
    case EGRESS_USERINFO: return "credentials in a URL are refused";
    case EGRESS_ADDRESS: return "a special-purpose address the egress policy does not allow";
    case EGRESS_NOT_ALLOWED: return "not in the egress allow list";
    }
    return "?";
}

/* --- special-purpose addresses ------------------------------------------------- */

static const struct special {
    bool v6;
    uint8_t bytes[16];
    unsigned len;
    const char *what;
} SPECIAL[] = {
    {0, {0}, 8, "unspecified (this network)"},
    {0, {10}, 8, "private"},
    {0, {100, 64}, 10, "shared (CGNAT)"},
    {0, {127}, 8, "loopback"},
    {0, {169, 254}, 16, "link-local"},
    {0, {172, 16}, 12, "private"},
    {0, {192, 0, 0}, 24, "IETF protocol assignments"},
    {0, {192, 0, 2}, 24, "documentation"},
    {0, {192, 88, 99}, 24, "6to4 relay anycast"},
    {0, {192, 168}, 16, "private"},
    {0, {198, 18}, 15, "benchmarking"},
    {0, {198, 51, 100}, 24, "documentation"},
    {0, {203, 0, 113}, 24, "documentation"},
    {0, {224}, 4, "multicast"},
    {0, {240}, 4, "reserved"}, /* with 255.255.255.255, limited broadcast */
    {1, {0}, 128, "unspecified"},
    {1, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, "loopback"},
    {1, {0, 0x64, 0xff, 0x9b, 0, 1}, 48, "NAT64 (local use)"},
    {1, {0x01, 0x00}, 64, "discard-only"},
    {1, {0x20, 0x01, 0x00, 0x00}, 32, "Teredo"},
    {1, {0x20, 0x01, 0x00, 0x02, 0x00, 0x00}, 48, "benchmarking"},
    {1, {0x20, 0x01, 0x00, 0x10}, 28, "ORCHID"},
    {1, {0x20, 0x01, 0x0d, 0xb8}, 32, "documentation"},
    {1, {0x3f, 0xff}, 20, "documentation"},
    {1, {0x5f}, 8, "segment routing"},
    {1, {0xfc}, 7, "unique-local"},
    {1, {0xfe, 0x80}, 10, "link-local"},
    {1, {0xfe, 0xc0}, 10, "site-local"},
    {1, {0xff}, 8, "multicast"},
};

/* The IPv4 address an IPv6 address stands for, if it is one of the forms
 * that carry one: IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96 (but
 * :: and ::1), NAT64 64:ff9b::/96, 6to4 2002::/16. */
static bool embedded_v4(const ipt_addr *a, ipt_addr *v4)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t zero[12] = {0};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    const uint8_t *b = a->bytes, *src = NULL;
    if (!a->v6)
        return false;
    if (memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0)
        src = b + 12;
    else if (memcmp(b, zero, 12) == 0 && (b[12] | b[13] | b[14] || b[15] > 1))
        src = b + 12;
    else if (b[0] == 0x20 && b[1] == 0x02)
        src = b + 2;
    if (!src)
        return false;
    memset(v4, 0, sizeof *v4);
    memcpy(v4->bytes, src, 4);
    return true;
}

const char *egress_special(const ipt_addr *a)
{
    ipt_addr v4;
    if (embedded_v4(a, &v4))
        a = &v4;
    for (size_t i = 0; i < sizeof SPECIAL / sizeof *SPECIAL; i++) {
        const struct special *s = &SPECIAL[i];
        ipt_addr net = {.v6 = s->v6};
        memcpy(net.bytes, s->bytes, 16);
        if ((bool)s->v6 == (bool)a->v6 && ipt_contains(&net, s->len, a))
            return s->what;
    }
    return NULL;
}

/* --- the allow list ------------------------------------------------------------- */

static bool fail(char *why, size_t cap, const char *msg)
{
    snprintf(why, cap, "%s", msg);
    return false;
}

bool egress_allow(egress_policy *p, const char *entry, char *why, size_t cap)
{
    size_t n = entry ? strlen(entry) : 0;
    if (n == 0 || n > 300)
        return fail(why, cap, "expected an address, prefix or host name, with an optional :port");
    /* split off ":port": after "]" for IPv6, else the only colon */
    const char *port = NULL, *body = entry;
    size_t bn = n;
    char inner[304]; /* n <= 300 */
    if (entry[0] == '[') {
        const char *rb = strchr(entry, ']');
        if (!rb)
            return fail(why, cap, "an IPv6 address or prefix goes in brackets: \"[fd00::/8]\"");
        bn = (size_t)(rb - entry - 1);
        memcpy(inner, entry + 1, bn);
        inner[bn] = 0;
        body = inner;
        if (rb[1] == ':')
            port = rb + 2;
        else if (rb[1])
            return fail(why, cap, "only \":port\" may follow \"]\"");
    } else {
        const char *c = strchr(entry, ':');
        if (c && strchr(c + 1, ':'))
            return fail(why, cap, "an IPv6 address or prefix goes in brackets: \"[fd00::/8]\"");
        if (c) {
            port = c + 1;
            bn = (size_t)(c - entry);
        }
        memcpy(inner, entry, bn);
        inner[bn] = 0;
        body = inner;
    }
    long pv = 0;
    if (port) {
        char *end;
        pv = strtol(port, &end, 10);
        if (!*port || *end || pv < 1 || pv > 65535)
            return fail(why, cap, "the port must be 1-65535");
    }
    ipt_addr a;
    unsigned len;
    bool is_net = strchr(body, '/') ? ipt_parse_prefix(body, bn, &a, &len) : ipt_parse_addr(body, bn, &a);
    if (is_net) {
        if (!strchr(body, '/'))
            len = a.v6 ? 128 : 32;
        struct eg_net *nn = realloc(p->nets, (p->n_nets + 1) * sizeof *nn);
        if (!nn)
            return fail(why, cap, "out of memory");
        p->nets = nn;
        p->nets[p->n_nets++] = (struct eg_net){a, len, (int)pv};
        return true;
    }
    if (strchr(body, '/'))
        return fail(why, cap, "not an address prefix");
    char host[300];
    size_t hl;
    if (url_canon_host(body, bn, true, host, sizeof host, &hl) != URL_CANON_OK || hl >= sizeof p->names->host)
        return fail(why, cap, "not an address, prefix or host name");
    host[hl] = 0;
    struct eg_name *nm = realloc(p->names, (p->n_names + 1) * sizeof *nm);
    if (!nm)
        return fail(why, cap, "out of memory");
    p->names = nm;
    struct eg_name *e = &p->names[p->n_names++];
    memcpy(e->host, host, hl + 1); /* hl < sizeof e->host, checked above */
    e->port = (int)pv;
    return true;
}

bool egress_allow_origin(egress_policy *p, const char *url)
{
    egress_target t;
    egress_policy none = {0};
    egress_verdict v = egress_check_url(&none, url, strlen(url), &t);
    if (v != EGRESS_OK && v != EGRESS_NOT_ALLOWED)
        return false;
    char entry[300], why[80];
    snprintf(entry, sizeof entry, "%s:%d", t.host, t.port);
    return egress_allow(p, entry, why, sizeof why);
}

egress_policy *egress_from_json(json_t *v, const char *path, jerr *e)
{
    static const char *const keys[] = {"allow", "allow_public", NULL};
    bool pub = true;
    json_t *allow = NULL;
    if (v && (!json_is_object(v) ? jfail(e, path, "expected an object")
                                 : !jonly(v, path, keys, e) || !jget_arr(v, "allow", path, false, &allow, e) ||
                                       !jget_bool(v, "allow_public", path, false, &pub, e)))
        return NULL;
    char ap[JPATH_MAX];
    jpath_key(ap, path, "allow");
    if (allow && !jstr_array(allow, ap, e))
        return NULL;
    egress_policy *p = egress_new(pub);
    size_t i;
    json_t *x;
    json_array_foreach(allow, i, x)
    {
        char why[160], ip[JPATH_MAX];
        if (!egress_allow(p, json_string_value(x), why, sizeof why)) {
            jpath_idx(ip, ap, i);
            jfail(e, ip, "%s", why);
            egress_free(p);
            return NULL;
        }
    }
    return p;
}

/* --- decisions -------------------------------------------------------------------- */

egress_verdict egress_check_url(const egress_policy *p, const char *url, size_t len, egress_target *t)
{
    memset(t, 0, sizeof *t);
    url_ref u;
    if (!url || url_parse(url, len, &u) != URL_OK || !u.scheme.present)
        return EGRESS_BAD_URL;
    if (u.scheme.len == 5 && strncasecmp(url + u.scheme.off, "https", 5) == 0)
        t->https = true;
    else if (!(u.scheme.len == 4 && strncasecmp(url + u.scheme.off, "http", 4) == 0))
        return EGRESS_SCHEME;
    if (!u.authority || !u.host.len)
        return EGRESS_BAD_URL;
    if (u.userinfo.present)
        return EGRESS_USERINFO;
    char host[300];
    size_t hl;
    if (url_canon_host(url + u.host.off, u.host.len, false, host, sizeof host, &hl) != URL_CANON_OK ||
        hl >= sizeof t->host)
        return EGRESS_BAD_URL;
    memcpy(t->host, host, hl);
    t->host[hl] = 0;
    t->port = url_port(url, &u);
    if (t->port <= 0)
        return EGRESS_BAD_URL;
    for (size_t i = 0; i < p->n_names; i++)
        if (strcmp(p->names[i].host, t->host) == 0 && (!p->names[i].port || p->names[i].port == t->port))
            t->named = true;
    return EGRESS_OK;
}

egress_verdict egress_check_addr(const egress_policy *p, const egress_target *t, const ipt_addr *a)
{
    ipt_addr v4;
    const ipt_addr *x = a;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (a->v6 && memcmp(a->bytes, mapped, 12) == 0) { /* the same host as its IPv4 form */
        memset(&v4, 0, sizeof v4);
        memcpy(v4.bytes, a->bytes + 12, 4);
        x = &v4;
    }
    if (t->named)
        return EGRESS_OK;
    for (size_t i = 0; i < p->n_nets; i++) {
        const struct eg_net *n = &p->nets[i];
        if (n->a.v6 == x->v6 && ipt_contains(&n->a, n->len, x) && (!n->port || n->port == t->port))
            return EGRESS_OK;
    }
    if (egress_special(x))
        return EGRESS_ADDRESS;
    return p->allow_public ? EGRESS_OK : EGRESS_NOT_ALLOWED;
}

/* --- libcurl ------------------------------------------------------------------------ */

static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *sa)
{
    egress_guard *g = ud;
    ipt_addr a = {0};
    char text[INET6_ADDRSTRLEN] = "?";
    if (sa->family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&sa->addr;
        memcpy(a.bytes, &s4->sin_addr, 4);
        inet_ntop(AF_INET, &s4->sin_addr, text, sizeof text);
    } else if (sa->family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&sa->addr;
        a.v6 = 1;
        memcpy(a.bytes, &s6->sin6_addr, 16);
        inet_ntop(AF_INET6, &s6->sin6_addr, text, sizeof text);
    } else {
        g->verdict = EGRESS_ADDRESS;
        snprintf(g->why, sizeof g->why, "egress refused: not an IP socket");
        return CURL_SOCKET_BAD;
    }
    egress_verdict v = egress_check_addr(g->policy, &g->target, &a);
    if (v != EGRESS_OK) {
        const char *cls = egress_special(&a);
        g->verdict = v;
        snprintf(g->why, sizeof g->why, "egress refused: %s resolves to %s (%s)", g->target.host, text,
                 cls ? cls : egress_verdict_text(v));
        return CURL_SOCKET_BAD;
    }
    return socket(sa->family, sa->socktype | SOCK_CLOEXEC, sa->protocol);
}

/* Before each request is sent, on a new connection or a reused one: a
 * connection another policy let open (one surrogate thread fetches for
 * several upstreams) is used only if this request's policy allows its
 * address too. */
static int before_request(void *ud, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
    egress_guard *g = ud;
    ipt_addr a;
    if (!primary_ip || !ipt_parse_addr(primary_ip, strlen(primary_ip), &a)) {
        g->verdict = EGRESS_ADDRESS;
        snprintf(g->why, sizeof g->why, "egress refused: the connection's address is unknown");
        return CURL_PREREQFUNC_ABORT;
    }
    egress_verdict v = egress_check_addr(g->policy, &g->target, &a);
    if (v == EGRESS_OK)
        return CURL_PREREQFUNC_OK;
    const char *cls = egress_special(&a);
    g->verdict = v;
    snprintf(g->why, sizeof g->why, "egress refused: %s is at %s (%s)", g->target.host, primary_ip,
             cls ? cls : egress_verdict_text(v));
    return CURL_PREREQFUNC_ABORT;
}

egress_verdict egress_curl(void *curl, const egress_policy *p, const char *url, egress_guard *g)
{
    CURL *h = curl;
    memset(g, 0, sizeof *g);
    g->policy = p;
    egress_verdict v = egress_check_url(p, url, url ? strlen(url) : 0, &g->target);
    g->verdict = v;
    if (v != EGRESS_OK) {
        snprintf(g->why, sizeof g->why, "egress refused: %s", egress_verdict_text(v));
        return v;
    }
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, g);
    curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, before_request);
    curl_easy_setopt(h, CURLOPT_PREREQDATA, g);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    return EGRESS_OK;
}

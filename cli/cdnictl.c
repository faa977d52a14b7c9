/* cdnictl: the operator's and CSP's command line.
 *
 *   cdnictl metadata check FILE | metadata resolve --dcdn URL URL
 *   cdnictl service put ID FILE | get ID | list | delete ID | versions ID
 *   cdnictl route explain --ucdn URL --client-ip IP CONTENT-URL
 *   cdnictl peer list | pull ID
 *   cdnictl manifest rewrite --base URL --map FROM-HOST=TO-BASE [FILE]
 *   cdnictl key generate ec|oct KID | key public JWK-FILE
 *   cdnictl token sign --key JWK --claims JSON | token verify --keys JWKS --uri URI TOKEN
 *   cdnictl log verify FILE | log parse FILE
 *   cdnictl purge [--kind K] --url URL | --ccid CCID | --pattern P ... [--wait] | purge status ID
 *   cdnictl billing export --from DAY --to DAY [--group-by LIST] [--format csv|json]
 *
 * The daemons' own code does the work offline (metadata checks, manifest
 * rewriting, tokens, logging files); the rest goes through their HTTP APIs.
 * Defaults come from CDNI_UCDN_URL, CDNI_DCDN_URL and CDNI_TOKEN; https
 * servers are verified against CDNI_CA_BUNDLE or the system's CAs. Exit
 * status: 0 success, 1 refused/invalid (the reason is printed), 2 usage.
 * man/cdnictl.1 says the same at more length. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/http_client.h"
#include "common/jcheck.h"
#include "common/gz.h"
#include "interfaces/logging.h"
#include "interfaces/metadata.h"
#include "interfaces/mi_server.h"
#include "manifest/manifest.h"
#include "signing/uri_signing.h"

static const char *g_ucdn, *g_dcdn, *g_token, *g_client_ip, *g_key, *g_claims, *g_keys, *g_uri,
    *g_alg, *g_now, *g_aud, *g_base;
static const char *g_maps[16];
static int g_nmaps, g_absolute;
static int g_json;
static const char *g_from, *g_to, *g_group_by, *g_format, *g_csp;
static int g_operator;
static const char *g_urls[64], *g_ccids[64], *g_patterns[64], *g_kind = "purge";
static int g_nurls, g_nccids, g_npatterns, g_wait;

static void usage_main(FILE *f)
{
    fprintf(f,
            "usage: cdnictl COMMAND ...\n\n"
            "commands:\n"
            "  metadata check FILE                 validate an RFC 8006 document or a delivery service\n"
            "  metadata resolve --dcdn URL URL     effective metadata a dCDN applies to URL\n"
            "  service put ID FILE                 publish a delivery service at the uCDN\n"
            "  service get ID | delete ID | versions ID | list\n"
            "  route explain --ucdn URL --client-ip IP CONTENT-URL\n"
            "                                      why a request goes to the dCDN it goes to\n"
            "  peer list | pull ID                 dCDN peers as the uCDN sees them; pull FCI\n"
            "  manifest rewrite --base URL --map FROM-HOST=TO-BASE [FILE]\n"
            "                                      point an HLS or DASH manifest at a CDN\n"
            "  key generate ec|oct KID | key public JWK-FILE\n"
            "                                      URI-signing keys (JWK)\n"
            "  token sign --key JWK --claims JSON  print an RFC 9246 signed JWT\n"
            "  token verify --keys JWKS --uri URI TOKEN\n"
            "                                      check a token as a CDN would\n"
            "  log verify FILE | log parse FILE    an RFC 7937 logging file (gzip or plain): check\n"
            "                                      its directives and SHA256-hash; records as JSON lines\n"
            "  purge [--kind purge|invalidate|preposition] --url URL | --ccid CCID | --pattern P ... [--wait]\n"
            "  purge status ID [--kind ...]         remove content from every dCDN (RFC 8007 triggers)\n"
            "  billing export --from DAY --to DAY [--group-by LIST] [--format csv|json]\n"
            "                                      usage the uCDN collected from the dCDNs' logs\n\n"
            "https servers are verified: against $CDNI_CA_BUNDLE (a PEM file) if set, else the system's CAs.\nRun 'cdnictl COMMAND SUBCOMMAND --help' for details.\n");
}

static int usage_for(const char *cmd, int code)
{
    FILE *f = code ? stderr : stdout;
    if (strcmp(cmd, "metadata check") == 0)
        fprintf(f, "usage: cdnictl metadata check FILE\n\n"
                   "Validates FILE as a HostIndex, a HostMetadata/PathMetadata or a delivery\n"
                   "service document ({\"host\", \"metadata\", \"paths\"}), as the uCDN would.\n"
                   "Exit 0 when valid; exit 1 printing the JSON path and the reason otherwise.\n");
    else if (strcmp(cmd, "metadata resolve") == 0)
        fprintf(f, "usage: cdnictl metadata resolve --dcdn URL [--token TOKEN] URL-TO-RESOLVE\n\n"
                   "Asks the dCDN operator API which CDNI metadata applies to URL-TO-RESOLVE.\n"
                   "--dcdn defaults to $CDNI_DCDN_URL, --token to $CDNI_TOKEN.\n");
    else if (strcmp(cmd, "route explain") == 0)
        fprintf(f, "usage: cdnictl route explain --ucdn URL --client-ip IP [--token TOKEN] [--json]\n"
                   "                             CONTENT-URL\n\n"
                   "Asks the uCDN operator API how it would route CONTENT-URL for a client at IP:\n"
                   "every dCDN candidate, whether it won, and why the others lost. No dCDN is\n"
                   "contacted. --ucdn (the operator listener) defaults to $CDNI_UCDN_URL,\n"
                   "--token (the operator token) to $CDNI_TOKEN.\n");
    else if (strcmp(cmd, "token sign") == 0)
        fprintf(f, "usage: cdnictl token sign --key JWK-FILE --claims JSON-OR-FILE [--alg ALG]\n\n"
                   "Prints the compact signed JWT of the claims. ALG defaults to HS256 for an\n"
                   "oct key and ES256 for an EC P-256 key (which must include \"d\").\n");
    else if (strcmp(cmd, "token verify") == 0)
        fprintf(f, "usage: cdnictl token verify --keys JWKS-FILE --uri URI [--client-ip IP]\n"
                   "                            [--aud ID] [--now EPOCH] TOKEN\n\n"
                   "Checks TOKEN for a request of URI (the token is also looked for in URI's\n"
                   "query and path) the way the gateways do (RFC 9246): exit 0 printing the\n"
                   "claims as JSON when authorized, exit 1 printing the verification code and\n"
                   "the reason otherwise. Every key of JWKS-FILE is trusted for any issuer\n"
                   "(its enc keys decrypt a JWE cdniip); an aud must name --aud.\n");
    else if (strcmp(cmd, "manifest rewrite") == 0)
        fprintf(f, "usage: cdnictl manifest rewrite --base URL --map FROM-HOST=TO-BASE [--map ...]\n"
                   "                               [--absolute] [FILE]\n\n"
                   "Rewrites an HLS playlist or a DASH MPD (told from the content) read from FILE\n"
                   "or standard input, offline, the way the gateways do (RFC 6983 options 3.2/3.3):\n"
                   "absolute URIs on FROM-HOST lead to TO-BASE (\"http://dcdn.example:8080\"),\n"
                   "other hosts (ad servers, key servers) are left alone. --base is the URL the\n"
                   "manifest was fetched as; --absolute also makes relative URIs absolute on the\n"
                   "target. The result goes to standard output, a summary to standard error.\n");
    else if (strcmp(cmd, "key generate") == 0 || strcmp(cmd, "key public") == 0)
        fprintf(f, "usage: cdnictl key generate ec|oct KID\n"
                   "       cdnictl key public JWK-FILE\n\n"
                   "generate: a new signing key as a JWK with its private part: EC P-256 (ES256,\n"
                   "the usual choice between CDNs: the peer gets only the public half) or a\n"
                   "32-byte oct secret (HS256, shared with the one peer that checks it).\n"
                   "public: the JWK Set a peer needs to check tokens signed with that key (an\n"
                   "oct key has no public half and is printed whole).\n");
    else if (strcmp(cmd, "log verify") == 0 || strcmp(cmd, "log parse") == 0)
        fprintf(f, "usage: cdnictl log verify FILE | log parse FILE\n\n"
                   "A CDNI logging file (RFC 7937), gzip'd or plain. verify: exit 0 when its\n"
                   "directives follow the RFC and its SHA256-hash matches, else 1 with the reason.\n"
                   "parse: one JSON object per accepted record, field name -> value (QSTRINGs\n"
                   "decoded; null for \"-\"); the summary on stderr.\n");
    else if (strcmp(cmd, "purge") == 0)
        fprintf(f, "usage: cdnictl purge [--kind purge|invalidate|preposition] [--url URL]... [--ccid CCID]...\n"
                   "                     [--pattern PATTERN]... [--wait] [--ucdn URL] [--token TOKEN]\n"
                   "       cdnictl purge status ID [--kind ...] [--ucdn URL] [--token TOKEN]\n\n"
                   "Asks the uCDN (CSP API) to purge, invalidate or preposition content at every dCDN;\n"
                   "prints the request and its state per dCDN. --wait polls until every dCDN has finished\n"
                   "(exit 0 complete, 1 otherwise). Patterns: '*' and '?' wildcards, on one of your hosts\n"
                   "(http://video.example.com/vod/m1/*).\n");
    else if (strcmp(cmd, "billing export") == 0)
        fprintf(f, "usage: cdnictl billing export --from YYYY-MM-DD --to YYYY-MM-DD [--group-by LIST]\n"
                   "                              [--format csv|json] [--operator [--csp CSP]]\n"
                   "                              [--ucdn URL] [--token TOKEN]\n\n"
                   "Usage counted from the dCDNs' CDNI logs, days in UTC, both included.\n"
                   "--group-by: comma-separated day, csp, host, ccid, dcdn (default day), or session\n"
                   "(one row per playback session: start, end, chunks, bytes, representations).\n"
                   "With a CSP token, --ucdn is the CSP API and the rows are that CSP's own;\n"
                   "with --operator, --ucdn is the operator listener and every CSP is included\n"
                   "(--csp narrows it to one).\n");
    else if (strcmp(cmd, "peer") == 0)
        fprintf(f, "usage: cdnictl peer list | pull ID [--ucdn URL] [--token TOKEN]\n\n"
                   "list: each dCDN peer's availability, load and advertised capabilities.\n"
                   "pull: fetch the peer's FCI advertisement from its fci_url now.\n");
    else
        fprintf(f, "usage: cdnictl service put ID FILE | get ID | delete ID | versions ID | list\n"
                   "                       [--ucdn URL] [--token TOKEN]\n\n"
                   "Manages delivery services through the uCDN CSP API (/csp/v1/services).\n"
                   "--ucdn defaults to $CDNI_UCDN_URL, --token to $CDNI_TOKEN (the CSP's).\n"
                   "https servers are verified against $CDNI_CA_BUNDLE if set, else the system's CAs.\n");
    return code;
}

/* Options shared by the commands; returns index of first operand or -1. */
static int parse_opts(int argc, char **argv, const char *cmd)
{
    static const struct option opts[] = {{"ucdn", required_argument, 0, 'u'},
                                         {"dcdn", required_argument, 0, 'd'},
                                         {"token", required_argument, 0, 't'},
                                         {"client-ip", required_argument, 0, 'c'},
                                         {"json", no_argument, 0, 'j'},
                                         {"key", required_argument, 0, 'k'},
                                         {"keys", required_argument, 0, 'K'},
                                         {"claims", required_argument, 0, 'C'},
                                         {"uri", required_argument, 0, 'U'},
                                         {"alg", required_argument, 0, 'a'},
                                         {"now", required_argument, 0, 'n'},
                                         {"aud", required_argument, 0, 'A'},
                                         {"base", required_argument, 0, 'B'},
                                         {"map", required_argument, 0, 'M'},
                                         {"absolute", no_argument, 0, 'S'},
                                         {"from", required_argument, 0, 'F'},
                                         {"to", required_argument, 0, 'T'},
                                         {"group-by", required_argument, 0, 'G'},
                                         {"format", required_argument, 0, 'f'},
                                         {"csp", required_argument, 0, 'P'},
                                         {"operator", no_argument, 0, 'O'},
                                         {"url", required_argument, 0, 1001},
                                         {"ccid", required_argument, 0, 1002},
                                         {"pattern", required_argument, 0, 1003},
                                         {"kind", required_argument, 0, 1004},
                                         {"wait", no_argument, 0, 1005},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "u:d:t:c:jh", opts, NULL)) != -1) {
        if (c == 'k')
            g_key = optarg;
        else if (c == 'K')
            g_keys = optarg;
        else if (c == 'C')
            g_claims = optarg;
        else if (c == 'U')
            g_uri = optarg;
        else if (c == 'a')
            g_alg = optarg;
        else if (c == 'n')
            g_now = optarg;
        else if (c == 'A')
            g_aud = optarg;
        else if (c == 'B')
            g_base = optarg;
        else if (c == 'M' && g_nmaps < 16)
            g_maps[g_nmaps++] = optarg;
        else if (c == 'S')
            g_absolute = 1;
        else if (c == 'F')
            g_from = optarg;
        else if (c == 'T')
            g_to = optarg;
        else if (c == 'G')
            g_group_by = optarg;
        else if (c == 'f')
            g_format = optarg;
        else if (c == 'P')
            g_csp = optarg;
        else if (c == 'O')
            g_operator = 1;
        else if (c == 1001 && g_nurls < 64)
            g_urls[g_nurls++] = optarg;
        else if (c == 1002 && g_nccids < 64)
            g_ccids[g_nccids++] = optarg;
        else if (c == 1003 && g_npatterns < 64)
            g_patterns[g_npatterns++] = optarg;
        else if (c == 1004)
            g_kind = optarg;
        else if (c == 1005)
            g_wait = 1;
        else if (c == 'c')
            g_client_ip = optarg;
        else if (c == 'j')
            g_json = 1;
        else if (c == 'u')
            g_ucdn = optarg;
        else if (c == 'd')
            g_dcdn = optarg;
        else if (c == 't')
            g_token = optarg;
        else if (c == 'h')
            exit(usage_for(cmd, 0));
        else
            exit(usage_for(cmd, 2));
    }
    return optind;
}

static int metadata_check(const char *file)
{
    jerr e = {0};
    json_t *doc = jparse_file(file, MI_MAX_DOC, &e);
    mi_policy pol = {NULL, true};
    const char *kind = "?";
    if (doc && json_is_object(doc) && json_object_get(doc, "hosts")) {
        kind = "HostIndex";
        mi_host_index *x = mi_host_index_from_json(doc, "$", &pol, &e);
        if (x)
            printf("%s: ok (%s, %zu hosts)\n", file, kind, x->n_hosts);
        json_decref(doc);
        mi_host_index_free(x);
        doc = x ? doc : NULL;
    } else if (doc && json_is_object(doc) && json_object_get(doc, "host")) {
        kind = "delivery service";
        const char *host;
        json_t *hm;
        mi_node *n = mi_service_parse(doc, &pol, &host, &hm, &e);
        if (n)
            printf("%s: ok (%s for %s, %zu metadata objects, %zu paths)\n", file, kind, host, n->n_md, n->n_paths);
        json_decref(hm);
        json_decref(doc);
        doc = n ? doc : NULL;
        mi_node_free(n);
    } else if (doc) {
        kind = "HostMetadata/PathMetadata";
        mi_node *n = mi_node_from_json(doc, "$", &pol, &e);
        if (n)
            printf("%s: ok (%s, %zu metadata objects, %zu paths)\n", file, kind, n->n_md, n->n_paths);
        json_decref(doc);
        doc = n ? doc : NULL;
        mi_node_free(n);
    }
    if (!doc) {
        fprintf(stderr, "%s: %s: %s\n", file, e.path, e.reason);
        return 1;
    }
    return 0;
}

/* One HTTP exchange with the token; 0 with *res filled (free it), else the
 * exit status after saying why. */
static int exchange(const char *method, const char *base, const char *path, const char *body,
                    size_t body_len, http_result *res)
{
    if (!base) {
        fprintf(stderr, "cdnictl: no server URL (give --ucdn/--dcdn or set CDNI_UCDN_URL/CDNI_DCDN_URL)\n");
        return 2;
    }
    char url[4096], auth[1024];
    snprintf(url, sizeof url, "%s%s", base, path);
    const char *hdrs[3] = {"Content-Type: application/json", NULL, NULL};
    if (g_token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", g_token);
        hdrs[1] = auth;
    }
    /* the operator names the server: any address it gives is fine */
    egress_policy *any = egress_new(true);
    char why[64];
    egress_allow(any, "0.0.0.0/0", why, sizeof why);
    egress_allow(any, "[::/0]", why, sizeof why);
    /* https servers are verified: against $CDNI_CA_BUNDLE if set (a private CA), else the system's CAs */
    http_tls_client tls = {.ca = getenv("CDNI_CA_BUNDLE")};
    http_client_conf cc = {.egress = any, .tls = &tls};
    http_client *c = http_client_new(&cc);
    int rc = http_client_do(c, method, url, hdrs, body, body_len, res);
    http_client_free(c);
    egress_free(any);
    if (rc != 0) {
        fprintf(stderr, "cdnictl: %s %s: %s\n", method, url, res->error);
        http_result_free(res);
        return 1;
    }
    return 0;
}

/* One HTTP exchange; prints the body; exit status from the HTTP status. */
static int call(const char *method, const char *base, const char *path, const char *body,
                size_t body_len)
{
    http_result res;
    int rc = exchange(method, base, path, body, body_len, &res);
    if (rc)
        return rc;
    FILE *out = res.status < 400 ? stdout : stderr;
    if (res.body_len) {
        json_t *v = json_loadb(res.body, res.body_len, 0, NULL);
        if (v) {
            json_dumpf(v, out, JSON_INDENT(2));
            fputc('\n', out);
            json_decref(v);
        } else {
            fwrite(res.body, 1, res.body_len, out);
        }
    } else if (res.status < 400) {
        printf("%ld\n", res.status);
    }
    rc = res.status < 400 ? 0 : 1;
    http_result_free(&res);
    return rc;
}

static char *slurp(const char *file, size_t *len)
{
    FILE *f = fopen(file, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    size_t k;
    while (b && (k = fread(b + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) {
                free(b);
                b = NULL;
            } else {
                b = nb;
            }
        }
    }
    fclose(f);
    *len = n;
    return b;
}

/* Percent-encode a URL for use as a query value. */
static void encode(const char *in, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *in && o + 4 < cap; in++) {
        unsigned char c = (unsigned char)*in;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-._~", c)) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = 0;
}

/* route explain: a table of the candidates (or the raw JSON with --json). */
static int route_explain(const char *content_url)
{
    if (!g_ucdn || !g_client_ip) {
        fprintf(stderr, "cdnictl: route explain needs --ucdn and --client-ip\n");
        return 2;
    }
    json_t *req = json_pack("{s:s, s:s}", "url", content_url, "client_ip", g_client_ip);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    http_result res;
    int rc = exchange("POST", g_ucdn, "/v1/route/explain", body, strlen(body), &res);
    free(body);
    if (rc)
        return rc;
    json_t *v = res.status == 200 ? json_loadb(res.body, res.body_len, 0, NULL) : NULL;
    if (!v || g_json) {
        fprintf(res.status == 200 ? stdout : stderr, "%s\n", res.body ? res.body : "");
        json_decref(v);
        int st = res.status == 200 ? 0 : 1;
        http_result_free(&res);
        return st;
    }
    http_result_free(&res);
    json_t *cl = json_object_get(v, "client");
    printf("request   %s%s for %s", json_string_value(json_object_get(v, "host")),
           json_string_value(json_object_get(v, "target")), json_string_value(json_object_get(cl, "ip")));
    if (json_object_get(cl, "country"))
        printf(" (%s)", json_string_value(json_object_get(cl, "country")));
    if (json_object_get(cl, "asn"))
        printf(" AS%lld", (long long)json_integer_value(json_object_get(cl, "asn")));
    printf("\nresult    %s", json_string_value(json_object_get(v, "result")));
    if (json_object_get(v, "selected"))
        printf(" -> %s", json_string_value(json_object_get(v, "selected")));
    if (json_object_get(v, "fallback_url"))
        printf(" -> %s", json_string_value(json_object_get(v, "fallback_url")));
    printf("\n");
    json_t *mr = json_object_get(v, "metadata_required");
    if (mr) {
        printf("metadata  ");
        for (size_t i = 0; i < json_array_size(mr); i++)
            printf("%s%s", i ? ", " : "", json_string_value(json_array_get(mr, i)));
        printf("\n");
    }
    json_t *rule = json_object_get(v, "rule");
    if (json_is_integer(rule))
        printf("rule      routing.rules[%lld] applied\n", (long long)json_integer_value(rule));
    json_t *cands = json_object_get(v, "candidates");
    if (cands)
        printf("\n%-20s %-18s %-9s %-8s %-5s %s\n", "dCDN", "outcome", "prefix", "priority", "load",
               "detail");
    for (size_t i = 0; i < json_array_size(cands); i++) {
        json_t *k = json_array_get(cands, i);
        char pfx[16] = "-", detail[300] = "";
        if (json_object_get(k, "prefix_length"))
            snprintf(pfx, sizeof pfx, "/%lld", (long long)json_integer_value(json_object_get(k, "prefix_length")));
        else if (json_is_true(json_object_get(k, "covered")))
            snprintf(pfx, sizeof pfx, "any");
        if (json_object_get(k, "missing"))
            snprintf(detail, sizeof detail, "lacks %s", json_string_value(json_object_get(k, "missing")));
        else if (json_object_get(k, "mode"))
            snprintf(detail, sizeof detail, "via %s", json_string_value(json_object_get(k, "mode")));
        if (json_object_get(k, "heartbeat_age_ms")) {
            size_t l = strlen(detail);
            snprintf(detail + l, sizeof detail - l, "%sheartbeat %llds ago", l ? ", " : "",
                     (long long)json_integer_value(json_object_get(k, "heartbeat_age_ms")) / 1000);
        }
        printf("%-20s %-18s %-9s %-8lld %-5.2f %s\n", json_string_value(json_object_get(k, "id")),
               json_string_value(json_object_get(k, "result")), pfx,
               (long long)json_integer_value(json_object_get(k, "priority")),
               json_number_value(json_object_get(k, "load")), detail);
    }
    json_decref(v);
    return 0;
}

static int token_sign(void)
{
    jerr e = {0};
    jwk_set ks;
    if (!jwk_set_load(g_key, &ks, &e)) {
        printf("%s: %s: %s\n", g_key, e.path, e.reason);
        return 1;
    }
    json_t *claims = strchr("{[", g_claims[0]) && g_claims[0] ? jparse(g_claims, strlen(g_claims), 1 << 16, &e)
                                        : jparse_file(g_claims, 1 << 16, &e);
    int rc = 1;
    const jwk *k = &ks.keys[0];
    jws_alg alg = g_alg ? jws_alg_from_name(g_alg, strlen(g_alg)) : k->kty == JWK_EC_P256 ? JWS_ES256 : JWS_HS256;
    if (!json_is_object(claims)) {
        printf("claims: %s\n", claims ? "expected a JSON object" : e.reason);
    } else if (!jws_key_fits(k, alg) || (alg == JWS_ES256 && !k->has_private)) {
        printf("the key cannot sign %s (an EC key needs \"d\"; HMAC needs a secret of the hash's size)\n",
               jws_alg_name(alg));
    } else {
        char *t = us_mint(k, alg, claims);
        if (t) {
            printf("%s\n", t);
            rc = 0;
        }
        free(t);
    }
    json_decref(claims);
    jwk_set_free(&ks);
    return rc;
}

static int manifest_rewrite(const char *file)
{
    FILE *f = file ? fopen(file, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "cdnictl: cannot open %s\n", file);
        return 1;
    }
    buf in;
    buf_init(&in, 1 << 16, 64u << 20);
    char chunk[65536];
    size_t r;
    while ((r = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_add(&in, chunk, r);
    if (file)
        fclose(f);
    if (!buf_ok(&in)) {
        fprintf(stderr, "cdnictl: the manifest is larger than 64 MiB\n");
        buf_free(&in);
        return 1;
    }
    /* one pass per distinct target, each with the hosts that go there */
    buf out;
    buf_init(&out, in.len + 4096, 0);
    int rc = 0;
    bool done[16] = {0};
    size_t uris = 0, rewritten = 0;
    mf_kind kind = mf_detect(in.data, in.len);
    for (int i = 0; i < g_nmaps && rc == 0; i++) {
        if (done[i])
            continue;
        const char *to = strchr(g_maps[i], '=');
        const char *hosts[17];
        char names[16][256];
        int nh = 0;
        for (int j = i; j < g_nmaps; j++) {
            const char *tj = strchr(g_maps[j], '=');
            if (!tj || strcmp(tj + 1, to + 1) != 0 || (size_t)(tj - g_maps[j]) >= sizeof names[0])
                continue;
            snprintf(names[nh], sizeof names[nh], "%.*s", (int)(tj - g_maps[j]), g_maps[j]);
            hosts[nh] = names[nh];
            nh++;
            done[j] = true;
        }
        hosts[nh] = NULL;
        mf_policy p = {.base = g_base, .hosts = hosts, .target = to + 1, .absolutize = g_absolute && i == 0};
        if (!mf_policy_prepare(&p)) {
            fprintf(stderr, "cdnictl: --base and each --map target must be absolute http(s) URLs "
                            "(the target without a path)\n");
            rc = 2;
            break;
        }
        mf_report rep;
        buf_truncate(&out, 0);
        if (!mf_rewrite(in.data, in.len, 64u << 20, &p, &out, &rep)) {
            fprintf(stderr, "cdnictl: %s\n", rep.error);
            rc = 1;
            break;
        }
        uris = rep.uris;
        rewritten += rep.rewritten;
        buf tmp = in; /* the output is the next pass's input */
        in = out;
        out = tmp;
    }
    if (rc == 0) {
        fwrite(in.data, 1, in.len, stdout);
        fprintf(stderr, "%s: %zu URIs, %zu rewritten\n", mf_kind_name(kind), uris, rewritten);
    }
    buf_free(&in);
    buf_free(&out);
    return rc;
}

static int print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    printf("%s\n", s);
    free(s);
    json_decref(j);
    return 0;
}

static int key_generate(const char *kty, const char *kid)
{
    jwk k;
    bool ec = strcmp(kty, "ec") == 0;
    if ((!ec && strcmp(kty, "oct") != 0) || !kid[0] || strlen(kid) >= JWK_KID_MAX)
        return usage_for("key generate", 2);
    if (!(ec ? jwk_generate_ec(kid, &k) : jwk_generate_oct(kid, 32, &k)))
        return 1;
    if (!ec)
        strcpy(k.alg, "HS256");
    print_json(jwk_to_json(&k, true));
    jwk_clear(&k);
    return 0;
}

static int key_public(const char *file)
{
    jerr e = {0};
    jwk_set ks;
    if (!jwk_set_load(file, &ks, &e)) {
        printf("%s: %s: %s\n", file, e.path, e.reason);
        return 1;
    }
    json_t *keys = json_array();
    for (size_t i = 0; i < ks.n; i++)
        json_array_append_new(keys, jwk_to_json(&ks.keys[i], ks.keys[i].kty == JWK_OCT));
    print_json(json_pack("{s:o}", "keys", keys));
    jwk_set_free(&ks);
    return 0;
}

static bool once_only(void *ctx, const char *jti, long long exp) { return true; }

static int token_verify(const char *tok)
{
    jerr e = {0};
    jwk_set ks;
    if (!jwk_set_load(g_keys, &ks, &e)) {
        printf("%s: %s: %s\n", g_keys, e.path, e.reason);
        return 1;
    }
    us_trust trust = {NULL, &ks, false};
    const char *auds[] = {g_aud};
    us_verifier v = {.trust = &trust, .n_trust = 1, .enc_keys = &ks, .jti_fresh = once_only,
                     .audiences = auds, .n_audiences = g_aud ? 1 : 0};
    us_policy p;
    us_policy_default(&p);
    /* the token given on the command line travels as a cookie, so that it is
     * not also matched into the URI */
    size_t cl = strlen(p.package) + strlen(tok) + 2;
    char *cookie = malloc(cl);
    snprintf(cookie, cl, "%s=%s", p.package, tok);
    us_request rq = {.uri = g_uri, .cookie = cookie, .client_ip = g_client_ip,
                     .now = g_now ? strtoll(g_now, NULL, 10) : (long long)time(NULL)};
    us_result r;
    us_code c = us_check(&v, &p, &rq, &r);
    if (c == US_VERIFIED) {
        char *s = json_dumps(r.claims, JSON_INDENT(2) | JSON_SORT_KEYS);
        printf("%s\n", s);
        free(s);
    } else {
        printf("refused: %03d %s: %s\n", (int)c, us_code_text(c), r.reason);
    }
    us_result_free(&r);
    free(cookie);
    jwk_set_free(&ks);
    return c == US_VERIFIED ? 0 : 1;
}

/* --- log verify / parse ---------------------------------------------------------- */

#define LOG_FILE_MAX (1024u << 20)

static void print_record(void *ud, const li_fields *f, const char *const *v, const size_t *len)
{
    json_t *o = json_object();
    for (size_t i = 0; i < f->n; i++) {
        char name[LI_HEADER_NAME_MAX + 8];
        li_field_name(&f->f[i], name, sizeof name);
        json_t *val;
        if (len[i] == 1 && v[i][0] == '-') {
            val = json_null();
        } else if (li_field_is_qstring(f->f[i].id)) {
            char *dec = malloc(len[i] + 1);
            bool absent;
            val = dec && li_unquote(v[i], len[i], dec, len[i] + 1, &absent) ? json_stringn(dec, strlen(dec))
                                                                             : json_stringn(v[i], len[i]);
            free(dec);
        } else {
            val = json_stringn(v[i], len[i]);
        }
        json_object_set_new(o, name, val ? val : json_null());
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    if (s)
        puts(s);
    free(s);
    json_decref(o);
}

static int log_cmd(const char *file, bool parse)
{
    size_t len;
    char *raw = slurp(file, &len);
    if (!raw) {
        fprintf(stderr, "cdnictl: cannot read %s\n", file);
        return 1;
    }
    buf plain;
    buf_init(&plain, 0, 0);
    const char *text = raw, *why = NULL;
    size_t tl = len;
    if (gz_is_gzip(raw, len)) {
        if (!gz_inflate(raw, len, LOG_FILE_MAX, &plain, &why)) {
            fprintf(stderr, "%s: %s\n", file, why);
            free(raw);
            buf_free(&plain);
            return 1;
        }
        text = plain.data;
        tl = plain.len;
    }
    li_summary s;
    bool ok = li_parse(text, tl, parse ? print_record : NULL, NULL, &s, &why);
    if (ok)
        fprintf(parse ? stderr : stdout, "%s: ok: %zu records (%zu ignored), %s, SHA256-hash %s\n", file, s.records,
                s.ignored_records, s.uuid, s.has_hash ? "verified" : "absent");
    else
        fprintf(stderr, "%s: %s\n", file, why);
    free(raw);
    buf_free(&plain);
    return ok ? 0 : 1;
}

/* --- purge ------------------------------------------------------------------------------------ */

static const char *kind_path(void)
{
    return !strcmp(g_kind, "purge") ? "purges" : !strcmp(g_kind, "invalidate") ? "invalidations"
                                             : !strcmp(g_kind, "preposition") ? "prepositions" : NULL;
}

static int purge_cmd(int nops, char **ops, const char *cmd)
{
    const char *kp = kind_path();
    char path[512];
    if (!kp)
        return usage_for(cmd, 2);
    if (nops == 2 && strcmp(ops[0], "status") == 0 && strspn(ops[1], "0123456789abcdef-") == strlen(ops[1]) &&
        strlen(ops[1]) < 40) {
        snprintf(path, sizeof path, "/csp/v1/%s/%s", kp, ops[1]);
        return call("GET", g_ucdn, path, NULL, 0);
    }
    if (nops || !(g_nurls + g_nccids + g_npatterns))
        return usage_for(cmd, 2);
    json_t *body = json_object();
    if (g_nurls) {
        json_t *a = json_array();
        for (int i = 0; i < g_nurls; i++)
            json_array_append_new(a, json_string(g_urls[i]));
        json_object_set_new(body, "content.urls", a);
    }
    if (g_nccids) {
        json_t *a = json_array();
        for (int i = 0; i < g_nccids; i++)
            json_array_append_new(a, json_string(g_ccids[i]));
        json_object_set_new(body, "content.ccids", a);
    }
    if (g_npatterns) {
        json_t *a = json_array();
        for (int i = 0; i < g_npatterns; i++)
            json_array_append_new(a, json_pack("{s:s}", "pattern", g_patterns[i]));
        json_object_set_new(body, "content.patterns", a);
    }
    char *txt = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    snprintf(path, sizeof path, "/csp/v1/%s", kp);
    if (!g_wait) {
        int rc = call("POST", g_ucdn, path, txt, strlen(txt));
        free(txt);
        return rc;
    }
    http_result res;
    int rc = exchange("POST", g_ucdn, path, txt, strlen(txt), &res);
    free(txt);
    if (rc)
        return rc;
    json_t *v = json_loadb(res.body ? res.body : "", res.body_len, 0, NULL);
    const char *id = json_string_value(json_object_get(v, "id"));
    if (res.status != 201 || !id) {
        fprintf(stderr, "%.*s\n", (int)res.body_len, res.body ? res.body : "");
        json_decref(v);
        http_result_free(&res);
        return 1;
    }
    snprintf(path, sizeof path, "/csp/v1/%s/%s", kp, id);
    json_decref(v);
    http_result_free(&res);
    for (int tries = 0; tries < 600; tries++) { /* at most ~5 minutes */
        if ((rc = exchange("GET", g_ucdn, path, NULL, 0, &res)))
            return rc;
        v = json_loadb(res.body ? res.body : "", res.body_len, 0, NULL);
        const char *st = json_string_value(json_object_get(v, "status"));
        bool final = st && (!strcmp(st, "complete") || !strcmp(st, "failed") || !strcmp(st, "processed") ||
                            !strcmp(st, "cancelled"));
        if (final || res.status != 200) {
            json_dumpf(v, stdout, JSON_INDENT(2));
            putchar('\n');
            rc = st && !strcmp(st, "complete") ? 0 : 1;
            json_decref(v);
            http_result_free(&res);
            return rc;
        }
        json_decref(v);
        http_result_free(&res);
        struct timespec ts = {0, 500 * 1000000L};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "cdnictl: not finished after 5 minutes: %s\n", path);
    return 1;
}

int main(int argc, char **argv)
{
    g_ucdn = getenv("CDNI_UCDN_URL");
    g_dcdn = getenv("CDNI_DCDN_URL");
    g_token = getenv("CDNI_TOKEN");
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage_main(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (argc < 3) {
        usage_main(stderr);
        return 2;
    }
    char cmd[64];
    snprintf(cmd, sizeof cmd, "%s %s", argv[1], argv[2]);
    bool no_sub = strcmp(argv[1], "purge") == 0; /* "cdnictl purge [status ID] --options" */
    if (strcmp(argv[1], "service") == 0 || strcmp(argv[1], "peer") == 0 || no_sub)
        snprintf(cmd, sizeof cmd, "%s", argv[1]);
    /* operands after "cdnictl CMD SUB" (after "cdnictl CMD" for purge) */
    int sub_argc = argc - (no_sub ? 1 : 2);
    char **sub_argv = argv + (no_sub ? 1 : 2);
    int first = parse_opts(sub_argc, sub_argv, cmd);
    int nops = sub_argc - first;
    char **ops = sub_argv + first;

    if (strcmp(argv[1], "metadata") == 0 && strcmp(argv[2], "check") == 0) {
        if (nops != 1)
            return usage_for(cmd, 2);
        return metadata_check(ops[0]);
    }
    if (strcmp(argv[1], "metadata") == 0 && strcmp(argv[2], "resolve") == 0) {
        if (nops != 1)
            return usage_for(cmd, 2);
        char q[8192], enc[6000];
        encode(ops[0], enc, sizeof enc);
        snprintf(q, sizeof q, "/v1/metadata/resolve?url=%s", enc);
        return call("GET", g_dcdn, q, NULL, 0);
    }
    if (strcmp(argv[1], "route") == 0 && strcmp(argv[2], "explain") == 0) {
        if (nops != 1)
            return usage_for(cmd, 2);
        return route_explain(ops[0]);
    }
    if (strcmp(argv[1], "token") == 0 && strcmp(argv[2], "sign") == 0) {
        if (nops != 0 || !g_key || !g_claims)
            return usage_for(cmd, 2);
        return token_sign();
    }
    if (strcmp(argv[1], "token") == 0 && strcmp(argv[2], "verify") == 0) {
        if (nops != 1 || !g_keys || !g_uri)
            return usage_for(cmd, 2);
        return token_verify(ops[0]);
    }
    if (strcmp(argv[1], "manifest") == 0 && strcmp(argv[2], "rewrite") == 0) {
        bool maps_ok = g_nmaps > 0;
        for (int i = 0; i < g_nmaps; i++)
            maps_ok &= strchr(g_maps[i], '=') != NULL;
        if (nops > 1 || !g_base || !maps_ok)
            return usage_for(cmd, 2);
        return manifest_rewrite(nops ? ops[0] : NULL);
    }
    if (strcmp(argv[1], "log") == 0 && (strcmp(argv[2], "verify") == 0 || strcmp(argv[2], "parse") == 0)) {
        if (nops != 1)
            return usage_for(cmd, 2);
        return log_cmd(ops[0], strcmp(argv[2], "parse") == 0);
    }
    if (strcmp(argv[1], "key") == 0 && strcmp(argv[2], "generate") == 0) {
        if (nops != 2)
            return usage_for(cmd, 2);
        return key_generate(ops[0], ops[1]);
    }
    if (strcmp(argv[1], "key") == 0 && strcmp(argv[2], "public") == 0) {
        if (nops != 1)
            return usage_for(cmd, 2);
        return key_public(ops[0]);
    }
    if (strcmp(argv[1], "purge") == 0)
        return purge_cmd(nops, ops, cmd);
    if (strcmp(argv[1], "billing") == 0 && strcmp(argv[2], "export") == 0) {
        if (nops || !g_from || !g_to)
            return usage_for(cmd, 2);
        char path[1024];
        /* the values go into the query as they are: refuse what would need escaping */
        const char *vals[] = {g_from, g_to, g_group_by, g_format, g_csp};
        for (int i = 0; i < 5; i++)
            if (vals[i] && strspn(vals[i], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.,") !=
                               strlen(vals[i]))
                return usage_for(cmd, 2);
        int n = snprintf(path, sizeof path, "%s?from=%s&to=%s&group-by=%s&format=%s",
                         g_operator ? "/v1/billing" : "/csp/v1/billing", g_from, g_to, g_group_by ? g_group_by : "day",
                         g_format ? g_format : "csv");
        if (g_operator && g_csp)
            snprintf(path + n, sizeof path - (size_t)n, "&csp=%s", g_csp);
        return call("GET", g_ucdn, path, NULL, 0);
    }
    if (strcmp(argv[1], "peer") == 0) {
        char path[512];
        if (strcmp(argv[2], "list") == 0 && nops == 0)
            return call("GET", g_ucdn, "/v1/peers", NULL, 0);
        if (strcmp(argv[2], "pull") == 0 && nops == 1 && mi_service_id_ok(ops[0])) {
            snprintf(path, sizeof path, "/v1/peers/%s/pull", ops[0]);
            return call("POST", g_ucdn, path, "", 0);
        }
        return usage_for(cmd, 2);
    }
    if (strcmp(argv[1], "service") == 0) {
        const char *sub = argv[2];
        char path[512];
        if (strcmp(sub, "list") == 0 && nops == 0)
            return call("GET", g_ucdn, "/csp/v1/services", NULL, 0);
        if (nops >= 1 && !mi_service_id_ok(ops[0])) {
            fprintf(stderr, "cdnictl: bad delivery service id %s\n", ops[0]);
            return 2;
        }
        if (nops >= 1)
            snprintf(path, sizeof path, "/csp/v1/services/%s", ops[0]);
        if (strcmp(sub, "get") == 0 && nops == 1)
            return call("GET", g_ucdn, path, NULL, 0);
        if (strcmp(sub, "delete") == 0 && nops == 1)
            return call("DELETE", g_ucdn, path, NULL, 0);
        if (strcmp(sub, "versions") == 0 && nops == 1) {
            strcat(path, "/versions");
            return call("GET", g_ucdn, path, NULL, 0);
        }
        if (strcmp(sub, "put") == 0 && nops == 2) {
            size_t len;
            char *body = slurp(ops[1], &len);
            if (!body) {
                fprintf(stderr, "cdnictl: cannot read %s\n", ops[1]);
                return 1;
            }
            int rc = call("PUT", g_ucdn, path, body, len);
            free(body);
            return rc;
        }
        return usage_for(cmd, 2);
    }
    usage_main(stderr);
    return 2;
}

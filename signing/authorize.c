/* The authorize phase of a delivery request. See authorize.h. */
#include "signing/authorize.h"

#include <stdio.h>
#include <string.h>

#include "manifest/manifest.h"

void authz_collection(const char *tenant, const char *ccid, const char *content_host, char *out, size_t cap)
{
    if (ccid)
        snprintf(out, cap, "%s/c/%s", tenant ? tenant : "", ccid);
    else
        snprintf(out, cap, "%s/h/%s", tenant ? tenant : "", content_host ? content_host : "");
}

hop_session authz_session_auth(const mi_resolution *res)
{
    json_t *has = mi_effective_value(res, "CDNIGW.HASManifest");
    return hop_session_from_name(json_string_value(json_object_get(has, "session-auth")));
}

authz_verdict authz_check(const hop_keys *k, const us_trust *trust, size_t n_trust, const mi_resolution *res,
                          const authz_request *q, hop_result *hr, const char **detail)
{
    memset(hr, 0, sizeof *hr);
    hr->allowed = true;
    *detail = NULL;
    if (res->blocking) {
        *detail = "the content's metadata has a mandatory-to-enforce object this CDN does not understand";
        return AUTHZ_UNSERVABLE;
    }
    if (k->present) {
        const char *ccid = json_string_value(json_object_get(mi_effective_value(res, "MI.Grouping"), "ccid"));
        char collection[600];
        authz_collection(q->tenant, ccid, q->content_host, collection, sizeof collection);
        hop_request hq = {.scheme = q->scheme,
                          .host = q->host,
                          .target = q->target,
                          .cookie = q->cookie,
                          .client_ip = q->client_ip,
                          .now = q->now,
                          .policy = mi_effective_value(res, "MI.UriSigning"),
                          .collection = collection,
                          .top_manifest = mf_kind_of_path(q->target, strcspn(q->target, "?")) != MF_UNKNOWN,
                          .session_auth = authz_session_auth(res)};
        bool ok = hop_check(&k->conf, trust, n_trust, &hq, hr);
        /* the log never carries the credential: the target without the token */
        hop_record(k, hr, q->client_ip, q->host, hr->target ? hr->target : q->target);
        if (!ok) {
            *detail = "the request is not authorized for this content";
            return AUTHZ_UNSIGNED;
        }
    }
    if (q->acl) {
        mi_acl_verdict v = mi_acl_check(res, q->acl);
        if (v != MI_ACL_ALLOW) {
            *detail = mi_acl_reason(v);
            return AUTHZ_ACL;
        }
    }
    return AUTHZ_ALLOWED;
}

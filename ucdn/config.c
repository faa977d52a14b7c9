/* ucdn configuration: JSON, checked member by member; a bad value names
 * its JSON path and the daemon refuses to start. specs/ucdn-config.schema.json
 * describes the same shape. */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "ucdn/ucdn.h"

static bool tokens(json_t *root, const char *key, const char *who_key, bool required,
                   http_token **out, size_t *n, jerr *e)
{
    json_t *arr = NULL;
    *out = NULL;
    *n = 0;
    if (!jget_arr(root, key, "$", required, &arr, e))
        return false;
    if (!arr)
        return true;
    char ap[JPATH_MAX];
    jpath_key(ap, "$", key);
    *out = calloc(json_array_size(arr) + 1, sizeof **out);
    size_t i;
    json_t *t;
    json_array_foreach(arr, i, t)
    {
        char ip[JPATH_MAX];
        jpath_idx(ip, ap, i);
        const char *who = NULL, *tok = NULL;
        const char *const allowed[] = {who_key, "token", NULL};
        if (!json_is_object(t))
            return jfail(e, ip, "expected an object");
        if (!jonly(t, ip, allowed, e) || !jget_str(t, who_key, ip, true, &who, e) ||
            !jget_str(t, "token", ip, true, &tok, e))
            return false;
        if (strlen(tok) < 16) {
            char tp[JPATH_MAX];
            jpath_key(tp, ip, "token");
            return jfail(e, tp, "tokens must be at least 16 characters");
        }
        (*out)[i] = (http_token){tok, who};
        (*n)++;
    }
    return true;
}

bool ucdn_config_load(ucdn *u, const char *file, jerr *e)
{
    static const char *const root_keys[] = {"cdn_id", "redis", "log_level", "threads", "listeners",
                                            "limits", "csp_tokens", "peers", "operator_token",
                                            "metadata", NULL};
    static const char *const md_keys[] = {"public_url", "max_age_s", "link_paths", "extra_types", NULL};
    json_t *root = jparse_file(file, 1u << 20, e);
    if (!root)
        return false;
    u->config = root;
    if (!json_is_object(root))
        return jfail(e, "$", "expected an object");
    const char *lvl = "info", *op = NULL;
    json_t *md = NULL, *extra = NULL, *ls = NULL;
    bool present;
    if (!jonly(root, "$", root_keys, e) || !jget_str(root, "cdn_id", "$", true, &u->cdn_id, e) ||
        !jget_str(root, "redis", "$", true, &u->redis_url, e) ||
        !jget_str(root, "log_level", "$", false, &lvl, e) ||
        !jget_obj(root, "listeners", "$", true, &ls, e))
        return false;
    static const char *const listener_names[] = {"csp", "peer", "operator", NULL};
    if (!jonly(ls, "$.listeners", listener_names, e) ||
        !daemon_listener_conf(root, "csp", true, &u->csp_conf, &present, e) ||
        !daemon_listener_conf(root, "peer", true, &u->peer_conf, &present, e) ||
        !daemon_listener_conf(root, "operator", true, &u->op_conf, &present, e) ||
        !tokens(root, "csp_tokens", "csp", true, &u->csp_tokens, &u->n_csp, e) ||
        !tokens(root, "peers", "id", true, &u->peer_tokens, &u->n_peer, e) ||
        !jget_str(root, "operator_token", "$", false, &op, e) ||
        !jget_obj(root, "metadata", "$", true, &md, e))
        return false;
    if (u->n_csp == 0)
        return jfail(e, "$.csp_tokens", "at least one CSP token is needed");
    if (u->n_peer == 0)
        return jfail(e, "$.peers", "at least one peer is needed: every peer request is authenticated");
    if (op) {
        u->op_tokens = calloc(1, sizeof *u->op_tokens);
        u->op_tokens[0] = (http_token){op, "operator"};
        u->n_op = 1;
    }
    long long max_age = 5;
    u->link_paths = true;
    if (!jonly(md, "$.metadata", md_keys, e) ||
        !jget_str(md, "public_url", "$.metadata", true, &u->public_url, e) ||
        !jget_int(md, "max_age_s", "$.metadata", false, 0, 86400, &max_age, e) ||
        !jget_bool(md, "link_paths", "$.metadata", false, &u->link_paths, e) ||
        !jget_arr(md, "extra_types", "$.metadata", false, &extra, e))
        return false;
    if (extra && !jstr_array(extra, "$.metadata.extra_types", e))
        return false;
    u->max_age_s = (int)max_age;
    size_t ne = extra ? json_array_size(extra) : 0;
    u->extra_types = calloc(ne + 1, sizeof *u->extra_types);
    for (size_t i = 0; i < ne; i++)
        u->extra_types[i] = json_string_value(json_array_get(extra, i));
    u->policy = (mi_policy){u->extra_types, true};
    log_setup("ucdn", log_level_from_name(lvl));
    return true;
}

/* dcdn configuration (specs/dcdn-config.schema.json). A bad value names
 * its JSON path and the daemon refuses to start. */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/url.h"
#include "dcdn/dcdn.h"

bool dcdn_config_load(dcdn *d, const char *file, jerr *e)
{
    static const char *const root_keys[] = {"cdn_id", "redis", "log_level", "threads", "listeners",
                                            "limits", "operator_token", "upstreams", "metadata", NULL};
    static const char *const up_keys[] = {"id", "metadata_url", "token", "refresh_s", NULL};
    static const char *const md_keys[] = {"extra_types", NULL};
    static const char *const listener_names[] = {"operator", NULL};
    json_t *root = jparse_file(file, 1u << 20, e);
    if (!root)
        return false;
    d->config = root;
    if (!json_is_object(root))
        return jfail(e, "$", "expected an object");
    const char *lvl = "info", *op = NULL;
    json_t *ls = NULL, *ups = NULL, *md = NULL, *extra = NULL;
    bool present;
    if (!jonly(root, "$", root_keys, e) || !jget_str(root, "cdn_id", "$", true, &d->cdn_id, e) ||
        !jget_str(root, "redis", "$", true, &d->redis_url, e) ||
        !jget_str(root, "log_level", "$", false, &lvl, e) ||
        !jget_obj(root, "listeners", "$", true, &ls, e) ||
        !jonly(ls, "$.listeners", listener_names, e) ||
        !daemon_listener_conf(root, "operator", true, &d->op_conf, &present, e) ||
        !jget_str(root, "operator_token", "$", false, &op, e) ||
        !jget_arr(root, "upstreams", "$", true, &ups, e) ||
        !jget_obj(root, "metadata", "$", false, &md, e))
        return false;
    if (op) {
        d->op_tokens = calloc(1, sizeof *d->op_tokens);
        d->op_tokens[0] = (http_token){op, "operator"};
        d->n_op = 1;
    }
    if (md && (!jonly(md, "$.metadata", md_keys, e) || !jget_arr(md, "extra_types", "$.metadata", false, &extra, e) ||
               (extra && !jstr_array(extra, "$.metadata.extra_types", e))))
        return false;
    size_t ne = extra ? json_array_size(extra) : 0;
    d->extra_types = calloc(ne + 1, sizeof *d->extra_types);
    for (size_t i = 0; i < ne; i++)
        d->extra_types[i] = json_string_value(json_array_get(extra, i));
    d->policy = (mi_policy){d->extra_types, false};
    if (json_array_size(ups) == 0)
        return jfail(e, "$.upstreams", "at least one upstream CDN is needed");
    d->ups = calloc(json_array_size(ups), sizeof *d->ups);
    size_t i;
    json_t *u;
    json_array_foreach(ups, i, u)
    {
        char p[JPATH_MAX];
        jpath_idx(p, "$.upstreams", i);
        upstream *up = &d->ups[i];
        long long refresh = 30;
        if (!json_is_object(u))
            return jfail(e, p, "expected an object");
        if (!jonly(u, p, up_keys, e) || !jget_str(u, "id", p, true, &up->id, e) ||
            !jget_str(u, "metadata_url", p, true, &up->metadata_url, e) ||
            !jget_str(u, "token", p, true, &up->token, e) ||
            !jget_int(u, "refresh_s", p, false, 1, 86400, &refresh, e))
            return false;
        url_ref parsed;
        if (url_parse(up->metadata_url, strlen(up->metadata_url), &parsed) != URL_OK ||
            !parsed.authority ||
            !(strncmp(up->metadata_url, "http://", 7) == 0 || strncmp(up->metadata_url, "https://", 8) == 0)) {
            char mp[JPATH_MAX];
            jpath_key(mp, p, "metadata_url");
            return jfail(e, mp, "expected an absolute http(s) URL");
        }
        up->refresh_s = (int)refresh;
        d->n_ups++;
    }
    log_setup("dcdn", log_level_from_name(lvl));
    return true;
}

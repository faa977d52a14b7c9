/* JSON shape checks with JSON-path error messages. See jcheck.h. */
#include "common/jcheck.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool jfail(jerr *e, const char *path, const char *fmt, ...)
{
    if (!e)
        return false;
    snprintf(e->path, sizeof e->path, "%s", path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->reason, sizeof e->reason, fmt, ap);
    va_end(ap);
    return false;
}

void jpath_key(char *dst, const char *parent, const char *key)
{
    snprintf(dst, JPATH_MAX, "%s.%s", parent, key);
}

void jpath_idx(char *dst, const char *parent, size_t i)
{
    snprintf(dst, JPATH_MAX, "%s[%zu]", parent, i);
}

json_t *jparse(const char *buf, size_t len, size_t max, jerr *e)
{
    if (len > max) {
        jfail(e, "$", "document of %zu bytes exceeds the limit of %zu bytes", len, max);
        return NULL;
    }
    json_error_t je;
    json_t *v = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!v)
        jfail(e, "$", "invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
    return v;
}

bool jdepth_ok(json_t *v, int max, const char *path, jerr *e)
{
    if (!json_is_object(v) && !json_is_array(v))
        return true;
    if (max <= 0)
        return jfail(e, path, "nested too deeply");
    char p[JPATH_MAX];
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x)
        {
            jpath_key(p, path, k);
            if (!jdepth_ok(x, max - 1, p, e))
                return false;
        }
    } else {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            jpath_idx(p, path, i);
            if (!jdepth_ok(x, max - 1, p, e))
                return false;
        }
    }
    return true;
}

json_t *jparse_file(const char *filename, size_t max, jerr *e)
{
    FILE *f = fopen(filename, "rb");
    if (!f) {
        jfail(e, "$", "cannot open %s", filename);
        return NULL;
    }
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    fclose(f);
    if (!buf) {
        jfail(e, "$", "out of memory");
        return NULL;
    }
    json_t *v = jparse(buf, n, max, e);
    free(buf);
    return v;
}

static const char *type_name(json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

static json_t *member(json_t *o, const char *key, const char *path, bool required, char *cpath,
                      bool *ok, jerr *e)
{
    jpath_key(cpath, path, key);
    *ok = true;
    json_t *v = json_object_get(o, key);
    if (!v && required)
        *ok = jfail(e, cpath, "missing required member");
    return v;
}

#define GET_TYPED(check, what)                                                  \
    char cpath[JPATH_MAX];                                                      \
    bool ok;                                                                    \
    json_t *v = member(o, key, path, required, cpath, &ok, e);                  \
    if (!v)                                                                     \
        return ok;                                                              \
    if (!(check))                                                               \
        return jfail(e, cpath, "expected %s, got %s", what, type_name(v));

bool jget_obj(json_t *o, const char *key, const char *path, bool required, json_t **out, jerr *e)
{
    GET_TYPED(json_is_object(v), "an object");
    *out = v;
    return true;
}

bool jget_arr(json_t *o, const char *key, const char *path, bool required, json_t **out, jerr *e)
{
    GET_TYPED(json_is_array(v), "an array");
    *out = v;
    return true;
}

bool jget_str(json_t *o, const char *key, const char *path, bool required, const char **out,
              jerr *e)
{
    GET_TYPED(json_is_string(v), "a string");
    if (strlen(json_string_value(v)) != json_string_length(v))
        return jfail(e, cpath, "string contains a NUL character");
    *out = json_string_value(v);
    return true;
}

bool jget_bool(json_t *o, const char *key, const char *path, bool required, bool *out, jerr *e)
{
    GET_TYPED(json_is_boolean(v), "a boolean");
    *out = json_is_true(v);
    return true;
}

bool jget_int(json_t *o, const char *key, const char *path, bool required, long long min,
              long long max, long long *out, jerr *e)
{
    GET_TYPED(json_is_integer(v), "an integer");
    long long x = json_integer_value(v);
    if (x < min || x > max)
        return jfail(e, cpath, "expected an integer %lld..%lld, got %lld", min, max, x);
    *out = x;
    return true;
}

bool jonly(json_t *o, const char *path, const char *const *allowed, jerr *e)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        bool known = false;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, k) == 0)
                known = true;
        if (!known) {
            char cpath[JPATH_MAX];
            jpath_key(cpath, path, k);
            return jfail(e, cpath, "unknown member");
        }
    }
    return true;
}

bool jstr_array(json_t *a, const char *path, jerr *e)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
            char cpath[JPATH_MAX];
            jpath_idx(cpath, path, i);
            return jfail(e, cpath, "expected a string");
        }
    }
    return true;
}

/* interfaces/triggers: CI/T commands (RFC 8007), patterns, the status
 * state machine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interfaces/triggers.h"

static bool parse(const char *text, cit_command *c, jerr *e)
{
    memset(e, 0, sizeof *e);
    return cit_command_parse(text, strlen(text), c, e);
}

/* One of the RFC's examples, tests/data/rfc8007/<name> (read from the
 * directory this file sits in, as the build names it); the caller frees it. */
static char *example(const char *name, size_t *len)
{
    char path[512];
    const char *src = __FILE__, *slash = strrchr(src, '/');
    snprintf(path, sizeof path, "%.*s/../data/rfc8007/%s", slash ? (int)(slash - src) : 1, slash ? src : ".", name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *b = calloc(1, 1 << 16);
    *len = fread(b, 1, (1 << 16) - 1, f);
    fclose(f);
    return b;
}

/* The RFC's own examples (§6.1, §6.2.6): the commands parse; each status
 * resource parses, and written back it is the same JSON. */
static void test_rfc8007_example_files(void **st)
{
    (void)st;
    const char *commands[] = {"6.1.1-preposition-command.json", "6.1.2-invalidate-command.json"};
    cit_type types[] = {CIT_PREPOSITION, CIT_INVALIDATE};
    for (size_t i = 0; i < 2; i++) {
        size_t n;
        char *b = example(commands[i], &n);
        cit_command c;
        jerr e = {0};
        assert_true(cit_command_parse(b, n, &c, &e));
        assert_int_equal(c.spec.type, types[i]);
        assert_true(cit_path_has(&c, "AS64496:1"));
        cit_command_free(&c);
        free(b);
    }
    const char *statuses[] = {"6.1.1-preposition-status.json", "6.1.2-invalidate-status.json",
                              "6.2.6-status-with-errors.json"};
    cit_status want[] = {CIT_PENDING, CIT_PENDING, CIT_ACTIVE};
    for (size_t i = 0; i < 3; i++) {
        size_t n;
        char *b = example(statuses[i], &n);
        cit_status_doc d;
        json_t *root;
        jerr e = {0};
        assert_true(cit_status_doc_parse(b, n, &d, &root, &e));
        assert_int_equal(d.status, want[i]);
        assert_int_equal(d.version, 1);
        assert_true(d.ctime > 1462351600 && d.mtime >= d.ctime && d.etime > d.ctime);
        json_t *back = cit_status_doc_json(&d);
        assert_true(json_equal(back, root)); /* the round trip loses nothing */
        if (i == 2)
            assert_string_equal(json_string_value(json_object_get(json_array_get(d.errors, 0), "error")), "emeta");
        json_decref(back);
        json_decref(root);
        free(b);
    }
}

static void test_status_resources_that_are_not_are_refused(void **st)
{
    (void)st;
    const char *bad[] = {"[]", "{\"status\": \"pending\"}", /* no specification */
                         "{\"status\": \"done\", \"trigger\": {}}", /* not a status */
                         "{\"status\": \"pending\", \"trigger\": {}, \"trigger.v2\": {}}",
                         "{\"status\": \"pending\", \"trigger\": {}, \"ctime\": \"1\"}",
                         "{\"status\": \"pending\", \"trigger\": {}, \"errors\": {}}",
                         "{\"status\": \"pending\", \"status\": \"complete\", \"trigger\": {}}", "{"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cit_status_doc d;
        json_t *root = (json_t *)1;
        jerr e = {0};
        assert_false(cit_status_doc_parse(bad[i], strlen(bad[i]), &d, &root, &e));
        assert_null(root);
        assert_true(e.reason[0]);
    }
    /* and what we write, a version 2 resource with an end, reads back */
    json_t *spec = json_pack("{s:s, s:[s]}", "type", "purge", "content.ccids", "m1");
    cit_status_doc w = {.spec = spec, .version = 2, .ctime = 10, .mtime = 12, .etime = 12, .status = CIT_COMPLETE};
    json_t *o = cit_status_doc_json(&w);
    char *txt = json_dumps(o, JSON_COMPACT);
    cit_status_doc r;
    json_t *root;
    jerr e = {0};
    assert_true(cit_status_doc_parse(txt, strlen(txt), &r, &root, &e));
    assert_int_equal(r.version, 2);
    assert_int_equal(r.status, CIT_COMPLETE);
    assert_int_equal(r.etime, 12);
    assert_null(r.errors);
    assert_true(json_equal(r.spec, spec));
    json_decref(root);
    free(txt);
    json_decref(o);
    json_decref(spec);
    /* the commands a uCDN sends parse as a dCDN reads them */
    json_t *tspec = json_pack("{s:s, s:[s]}", "type", "purge", "content.urls", "https://a.example/x");
    json_t *cmds[] = {cit_trigger_json(tspec, 1, "AS64496:1"), cit_cancel_json("https://d.example/triggers/7", "AS64496:1")};
    for (int i = 0; i < 2; i++) {
        char *t = json_dumps(cmds[i], JSON_COMPACT);
        cit_command c;
        assert_true(cit_command_parse(t, strlen(t), &c, &e));
        assert_int_equal(c.cancel, i == 1);
        assert_true(cit_path_has(&c, "AS64496:1"));
        cit_command_free(&c);
        free(t);
        json_decref(cmds[i]);
    }
    json_decref(tspec);
}

/* Variants of the RFC's examples: the members beside them. */
static void test_rfc8007_examples_parse(void **st)
{
    (void)st;
    cit_command c;
    jerr e;
    size_t n;
    char *pre = example("6.1.1-preposition-command.json", &n);
    assert_true(cit_command_parse(pre, n, &c, &e));
    free(pre);
    assert_false(c.cancel);
    assert_int_equal(c.spec.type, CIT_PREPOSITION);
    assert_int_equal(c.spec.n_metadata_urls, 1);
    assert_int_equal(c.spec.n_content_urls, 4);
    assert_string_equal(c.spec.content_urls[3], "https://www.example.com/a/b/c/4");
    assert_int_equal(c.n_path, 1);
    assert_true(cit_path_has(&c, "AS64496:1"));
    assert_false(cit_path_has(&c, "AS64496:2"));
    cit_command_free(&c);

    assert_true(parse("{\"trigger\": {\"type\": \"invalidate\","
                      " \"metadata.patterns\": [{\"pattern\": \"https://metadata.example.com/a/b/*\"}],"
                      " \"content.urls\": [\"https://www.example.com/a/index.html\"],"
                      " \"content.patterns\": [{\"pattern\": \"https://www.example.com/a/b/*\","
                      " \"match-query-string\": true}], \"x-vendor\": {\"kept\": 1}},"
                      " \"cdn-path\": [\"AS64496:1\"]}",
                      &c, &e));
    assert_int_equal(c.spec.type, CIT_INVALIDATE);
    assert_int_equal(c.spec.n_content_patterns, 1);
    assert_true(c.spec.content_patterns[0].match_query);
    assert_false(c.spec.content_patterns[0].case_sensitive);
    /* an unknown member is kept, to be passed on */
    assert_non_null(json_object_get(c.spec.json, "x-vendor"));
    cit_command_free(&c);

    assert_true(parse("{\"trigger\": {\"type\": \"purge\", \"content.ccids\": [\"m1-collection\"]},"
                      " \"cdn-path\": [\"AS64496:1\", \"AS64500:7\"]}",
                      &c, &e));
    assert_int_equal(c.spec.type, CIT_PURGE);
    assert_int_equal(c.spec.n_ccids, 1);
    assert_true(cit_spec_selects(&c.spec, NULL, "m1-collection"));
    assert_false(cit_spec_selects(&c.spec, "http://a.example/x", "m2"));
    cit_command_free(&c);

    assert_true(parse("{\"cancel\": [\"https://dcdn.example.com/triggers/0\"], \"cdn-path\": [\"AS64496:1\"]}", &c,
                      &e));
    assert_true(c.cancel);
    assert_int_equal(c.n_cancel, 1);
    cit_command_free(&c);
}

static void refused(const char *text, const char *path, const char *why)
{
    cit_command c;
    jerr e;
    bool ok = parse(text, &c, &e);
    cit_command_free(&c);
    if (ok || strcmp(e.path, path) != 0 || !strstr(e.reason, why))
        fail_msg("%s: got %s %s: %s", text, ok ? "accepted" : "refused", e.path, e.reason);
}

static void test_bad_commands_are_refused_with_their_path(void **st)
{
    (void)st;
    refused("[]", "$", "command object");
    refused("{\"cdn-path\": [\"AS1:0\"]}", "$", "exactly one");
    refused("{\"trigger\": {\"type\": \"purge\", \"content.ccids\": [\"a\"]}, \"cancel\": [\"x\"],"
            " \"cdn-path\": [\"AS1:0\"]}",
            "$", "exactly one");
    refused("{\"trigger\": {\"type\": \"purge\", \"content.ccids\": [\"a\"]}}", "$.cdn-path", "missing");
    refused("{\"trigger\": {\"type\": \"purge\", \"content.ccids\": [\"a\"]}, \"cdn-path\": [\"64496:1\"]}",
            "$.cdn-path[0]", "CDN PID");
    refused("{\"trigger\": {\"type\": \"flush\", \"content.ccids\": [\"a\"]}, \"cdn-path\": [\"AS1:0\"]}",
            "$.trigger.type", "eunsupported");
    refused("{\"trigger\": {\"type\": \"purge\"}, \"cdn-path\": [\"AS1:0\"]}", "$.trigger", "at least one");
    refused("{\"trigger\": {\"type\": \"preposition\", \"content.patterns\": [{\"pattern\": \"*\"}]},"
            " \"cdn-path\": [\"AS1:0\"]}",
            "$.trigger", "not allowed");
    refused("{\"trigger\": {\"type\": \"purge\", \"content.urls\": [\"/relative\"]}, \"cdn-path\": [\"AS1:0\"]}",
            "$.trigger.content.urls[0]", "absolute");
    refused("{\"trigger\": {\"type\": \"purge\", \"content.patterns\": [{\"pattern\": 3}]}, \"cdn-path\": [\"AS1:0\"]}",
            "$.trigger.content.patterns[0].pattern", "string");
    refused("{\"trigger\": {\"type\": \"purge\", \"content.ccids\": [\"a\"], \"extensions\": [{"
            "\"generic-trigger-extension-type\": \"CIT.TimePolicy\", \"generic-trigger-extension-value\":"
            " {\"windows\": {\"start\": 20, \"end\": 10}}}]}, \"cdn-path\": [\"AS1:0\"]}",
            "$.trigger.extensions[0].generic-trigger-extension-value.windows", "after start");
    refused("{\"cancel\": [], \"cdn-path\": [\"AS1:0\"]}", "$.cancel", "non-empty");
    refused("{\"trigger\": {\"type\": \"purge\", \"content.ccids\": [\"a\"]}, \"cdn-path\": [\"AS1:0\"]",
            "$", "");
}

static void test_second_edition_extensions(void **st)
{
    (void)st;
    cit_command c;
    jerr e;
    assert_true(parse("{\"trigger.v2\": {\"type\": \"preposition\", \"content.urls\": [\"http://v.example/a.ts\"],"
                      " \"extensions\": [{\"generic-trigger-extension-type\": \"CIT.TimePolicy\","
                      " \"generic-trigger-extension-value\": {\"windows\": {\"start\": 946717200, \"end\": 946746000}},"
                      " \"mandatory-to-enforce\": true},"
                      " {\"generic-trigger-extension-type\": \"CIT.LocationPolicy\", \"generic-trigger-extension-value\":"
                      " {\"locations\": [{\"action\": \"allow\", \"footprints\": [{\"footprint-type\": \"countrycode\","
                      " \"footprint-value\": [\"us\"]}]}, {\"action\": \"deny\", \"footprints\": [{\"footprint-type\":"
                      " \"countrycode\", \"footprint-value\": [\"ca\"]}]}]}, \"mandatory-to-enforce\": true},"
                      " {\"generic-trigger-extension-type\": \"X.Optional\", \"generic-trigger-extension-value\": {}}]},"
                      " \"cdn-path\": [\"AS64496:1\"]}",
                      &c, &e));
    assert_int_equal(c.spec.version, 2);
    assert_int_equal(c.spec.window_start, 946717200);
    assert_int_equal(c.spec.window_end, 946746000);
    assert_int_equal(c.spec.n_allow, 1);
    assert_int_equal(c.spec.n_deny, 1);
    assert_null(c.spec.unsupported); /* an optional extension we do not know is ignored */
    cit_command_free(&c);
    assert_true(parse("{\"trigger.v2\": {\"type\": \"purge\", \"content.ccids\": [\"a\"], \"extensions\": ["
                      "{\"generic-trigger-extension-type\": \"X.Mandatory\", \"generic-trigger-extension-value\": {},"
                      " \"mandatory-to-enforce\": true}]}, \"cdn-path\": [\"AS64496:1\"]}",
                      &c, &e));
    assert_string_equal(c.spec.unsupported, "X.Mandatory"); /* accepted, then failed with eunsupported */
    cit_command_free(&c);
}

static bool pm(const char *pattern, bool cs, bool q, const char *url)
{
    cit_pattern p = {pattern, cs, q};
    return cit_pattern_match(&p, url);
}

static void test_patterns_wildcards_escapes_case_query_and_scheme(void **st)
{
    (void)st;
    assert_true(pm("https://www.example.com/a/b/*", false, false, "https://www.example.com/a/b/c/1.ts"));
    assert_true(pm("https://www.example.com/a/b/*", false, false, "http://www.example.com/a/b/"));  /* scheme */
    assert_false(pm("https://www.example.com/a/b/*", false, false, "https://www.example.com/a/c/1"));
    assert_true(pm("*.example.com/vod/*/seg_?.ts", false, false, "http://cdn.example.com/vod/m1/seg_7.ts"));
    assert_false(pm("*.example.com/vod/*/seg_?.ts", false, false, "http://cdn.example.com/vod/m1/seg_17.ts"));
    /* case: insensitive unless asked */
    assert_true(pm("http://A.example/VOD/*", false, false, "http://a.example/vod/x"));
    assert_false(pm("http://A.example/VOD/*", true, false, "http://a.example/vod/x"));
    /* the query: left out unless asked */
    assert_true(pm("http://a.example/x.ts", false, false, "http://a.example/x.ts?token=1"));
    assert_false(pm("http://a.example/x.ts", false, true, "http://a.example/x.ts?token=1"));
    assert_true(pm("http://a.example/x.ts?*", false, true, "http://a.example/x.ts?token=1"));
    /* $-escapes: literal $, * and ? */
    assert_true(pm("http://a.example/what$?.ts", false, true, "http://a.example/what?.ts"));
    assert_false(pm("http://a.example/what$?.ts", false, true, "http://a.example/whatX.ts"));
    assert_true(pm("http://a.example/$*/*", false, false, "http://a.example/*/x"));
    assert_false(pm("http://a.example/$*/*", false, false, "http://a.example/y/x"));
    assert_true(pm("http://a.example/$$1", false, false, "http://a.example/$1"));
    /* many stars do not blow up */
    assert_false(pm("*a*a*a*a*a*a*a*a*a*a*a*a*b", false, false,
                    "http://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
    assert_true(cit_url_same("http://a.example/x", "https://a.example/x"));
    assert_false(cit_url_same("http://a.example/x", "http://a.example/y"));
}

static void test_status_state_machine(void **st)
{
    (void)st;
    assert_true(cit_transition_ok(CIT_PENDING, CIT_ACTIVE));
    assert_true(cit_transition_ok(CIT_ACTIVE, CIT_COMPLETE));
    assert_true(cit_transition_ok(CIT_ACTIVE, CIT_PROCESSED));
    assert_true(cit_transition_ok(CIT_PENDING, CIT_FAILED));
    assert_true(cit_transition_ok(CIT_PENDING, CIT_CANCELLING));
    assert_true(cit_transition_ok(CIT_PROCESSED, CIT_CANCELLING));
    assert_true(cit_transition_ok(CIT_CANCELLING, CIT_CANCELLED));
    /* complete and failed are never cancelled; a final state stays */
    assert_false(cit_transition_ok(CIT_COMPLETE, CIT_CANCELLING));
    assert_false(cit_transition_ok(CIT_FAILED, CIT_CANCELLING));
    assert_false(cit_transition_ok(CIT_CANCELLED, CIT_ACTIVE));
    assert_false(cit_transition_ok(CIT_ACTIVE, CIT_PENDING));
    assert_false(cit_transition_ok(CIT_CANCELLING, CIT_COMPLETE));
    for (int s = 0; s < CIT_N_STATUS; s++) {
        cit_status back;
        assert_true(cit_status_parse(cit_status_name((cit_status)s), &back));
        assert_int_equal(back, s);
    }
    assert_true(cit_status_final(CIT_COMPLETE) && cit_status_final(CIT_CANCELLED));
    assert_false(cit_status_final(CIT_CANCELLING));
    json_t *err = cit_error("econtent", "content.urls", json_pack("[s]", "http://a.example/x"), "origin said 404");
    assert_string_equal(json_string_value(json_object_get(err, "error")), "econtent");
    assert_int_equal(json_array_size(json_object_get(err, "content.urls")), 1);
    json_decref(err);
    assert_true(cit_pid_ok("AS64496:0"));
    assert_false(cit_pid_ok("AS:0"));
    assert_false(cit_pid_ok("AS64496:"));
    assert_false(cit_pid_ok("as64496:1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc8007_example_files),
        cmocka_unit_test(test_status_resources_that_are_not_are_refused),
        cmocka_unit_test(test_rfc8007_examples_parse),
        cmocka_unit_test(test_bad_commands_are_refused_with_their_path),
        cmocka_unit_test(test_second_edition_extensions),
        cmocka_unit_test(test_patterns_wildcards_escapes_case_query_and_scheme),
        cmocka_unit_test(test_status_state_machine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

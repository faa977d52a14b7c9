/* DASH MPD rewriting (manifest/dash) on MPD shapes kept in tests/data/dash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"
#include "manifest/dash.h"

static char *slurp(const char *name, size_t *n)
{
    char path[128];
    snprintf(path, sizeof path, "dash/%s", name);
    char *b = read_data(path, n);
    assert_non_null(b);
    return b;
}

static const char *const HOSTS[] = {"origin.example.com", NULL};

static char *rewrite(const char *in, size_t n, bool absolutize, mf_hook hook, dash_stats *st, dash_status want)
{
    mf_policy p = {.base = "https://origin.example.com/vod/m1/manifest.mpd", .hosts = HOSTS,
                   .target = "http://se1.dcdn:8080", .absolutize = absolutize, .hook = hook};
    assert_true(mf_policy_prepare(&p));
    buf out;
    buf_init(&out, 0, 0);
    assert_int_equal(dash_rewrite(in, n, 1 << 20, &p, &out, st), want);
    return buf_take(&out, NULL);
}

static void test_every_uri_site_at_every_level(void **st)
{
    size_t n;
    char *in = slurp("vod-multilevel.mpd", &n);
    assert_true(dash_is_mpd(in, n));
    dash_stats s;
    char *out = rewrite(in, n, false, NULL, &s, DASH_OK);
    assert_non_null(strstr(out, "<Location>http://se1.dcdn:8080/vod/m1/manifest.mpd</Location>"));
    assert_non_null(strstr(out, "queryBeforeStart=\"true\">http://se1.dcdn:8080/steer/m1</ContentSteering>"));
    assert_non_null(strstr(out, "<BaseURL serviceLocation=\"alpha\">http://se1.dcdn:8080/vod/m1/</BaseURL>"));
    assert_non_null(strstr(out, "<BaseURL>http://se1.dcdn:8080/hq/</BaseURL>"));
    assert_non_null(strstr(out, "sourceURL=\"http://se1.dcdn:8080/vod/m1/audio/index.sidx\""));
    assert_non_null(strstr(out, "media=\"http://se1.dcdn:8080/vod/m1/audio/seg_2.m4s\" index=\"https://ads.thirdparty.example/x.sidx\""));
    assert_non_null(strstr(out, "<PatchLocation ttl=\"60\">http://se1.dcdn:8080/vod/m1/patch.mpp?x=1&amp;y=2</PatchLocation>"));
    /* relative ones stay relative; templates keep their $...$; third parties untouched */
    assert_non_null(strstr(out, "<BaseURL>period0/</BaseURL>"));
    assert_non_null(strstr(out, "media=\"video/$RepresentationID$/seg_$Time$.m4s\""));
    assert_non_null(strstr(out, "<BaseURL>https://ads.thirdparty.example/creative/77/</BaseURL>"));
    /* namespaces, unknown elements, events and timelines survive */
    assert_non_null(strstr(out, "xmlns:scte35=\"urn:scte:scte35:2014:xml+bin\""));
    assert_non_null(strstr(out, "<scte35:Binary>/DAlAAAAAAAAAP/wFAUAAAABf+/+AHAgHH4AKTLgAAEAAAAAqRFpgA==</scte35:Binary>"));
    assert_non_null(strstr(out, "<cenc:pssh>AAAANHBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAABQIARIQ</cenc:pssh>"));
    assert_non_null(strstr(out, "<S t=\"0\" d=\"540000\" r=\"104\"/>"));
    assert_int_equal(s.rewritten, 7);
    assert_int_equal(s.uris, 15);
    free(out);
    free(in);
}

static void test_absolutize_adds_an_mpd_level_base(void **st)
{
    size_t n;
    char *in = slurp("relative.mpd", &n);
    dash_stats s;
    char *out = rewrite(in, n, true, NULL, &s, DASH_OK);
    assert_non_null(strstr(out, "<BaseURL>http://se1.dcdn:8080/vod/m1/</BaseURL>"));
    /* the templates stay relative, and now resolve at the target */
    assert_non_null(strstr(out, "media=\"v/$Number%05d$.m4s\""));
    free(out);
    out = rewrite(in, n, false, NULL, &s, DASH_OK);
    assert_null(strstr(out, "BaseURL"));
    assert_int_equal(s.rewritten, 0);
    free(out);
    free(in);
}

/* An origin on one port of a host, the surrogate on another port of it:
 * the inserted BaseURL is the surrogate's, once, and only the origin's
 * port is rewritten (a collection published with origin_url). */
static void test_an_origin_and_a_surrogate_on_one_host_are_told_apart_by_port(void **st)
{
    const char *mpd = "<?xml version=\"1.0\"?>\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\">\n"
                      " <Period><AdaptationSet><Representation id=\"v\">"
                      "<SegmentTemplate media=\"v/$Number$.m4s\" initialization=\"http://127.0.0.1:8090/vod/d1/v/init.mp4\"/>"
                      "<BaseURL>http://127.0.0.1:7000/elsewhere/</BaseURL>"
                      "</Representation></AdaptationSet></Period>\n</MPD>\n";
    const char *const hosts[] = {"video.example.com", "127.0.0.1:8090", NULL};
    mf_policy p = {.base = "http://127.0.0.1:8090/vod/d1/manifest.mpd", .hosts = hosts,
                   .target = "http://127.0.0.1:9085/video.example.com", .absolutize = true};
    assert_true(mf_policy_prepare(&p));
    buf out;
    buf_init(&out, 0, 0);
    assert_int_equal(dash_rewrite(mpd, strlen(mpd), 1 << 20, &p, &out, NULL), DASH_OK);
    char *o = buf_take(&out, NULL);
    assert_non_null(strstr(o, "<BaseURL>http://127.0.0.1:9085/video.example.com/vod/d1/</BaseURL>"));
    assert_null(strstr(o, "video.example.com/video.example.com"));
    assert_non_null(strstr(o, "initialization=\"http://127.0.0.1:9085/video.example.com/vod/d1/v/init.mp4\""));
    assert_non_null(strstr(o, "<BaseURL>http://127.0.0.1:7000/elsewhere/</BaseURL>")); /* another port: not ours */
    free(o);
}

static bool tok(void *ud, const char *uri, size_t n, buf *out)
{
    buf_add(out, uri, n);
    buf_adds(out, "?t=1&u=<x>");
    return true;
}

static void test_hook_escaping_and_refusals(void **st)
{
    size_t n;
    char *in = slurp("vod-multilevel.mpd", &n);
    dash_stats s;
    char *out = rewrite(in, n, false, tok, &s, DASH_OK);
    /* what the hook adds is escaped as XML needs */
    assert_non_null(strstr(out, "<BaseURL>http://se1.dcdn:8080/hq/?t=1&amp;u=&lt;x&gt;</BaseURL>"));
    assert_non_null(strstr(out, "media=\"video/$RepresentationID$/seg_$Time$.m4s?t=1&amp;u=&lt;x&gt;\""));
    free(out);
    free(in);
    /* not an MPD, a DOCTYPE (entity bombs), broken XML, too large */
    const char *doctype = "<?xml version=\"1.0\"?><!DOCTYPE MPD [<!ENTITY a \"aaaa\">]><MPD>&a;</MPD>";
    const char *broken = "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\"><Period></MPD>";
    buf o;
    buf_init(&o, 0, 0);
    mf_policy p = {.base = "http://origin.example.com/a.mpd", .hosts = HOSTS, .target = "http://x"};
    assert_true(mf_policy_prepare(&p));
    assert_int_equal(dash_rewrite("#EXTM3U\n", 8, 100, &p, &o, NULL), DASH_NOT_MPD);
    assert_int_equal(dash_rewrite(doctype, strlen(doctype), 1000, &p, &o, NULL), DASH_DTD);
    assert_int_equal(dash_rewrite(broken, strlen(broken), 1000, &p, &o, NULL), DASH_NOT_MPD);
    assert_int_equal(dash_rewrite(broken, strlen(broken), 10, &p, &o, NULL), DASH_TOO_LARGE);
    assert_int_equal(o.len, 0);
    buf_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_uri_site_at_every_level),
        cmocka_unit_test(test_absolutize_adds_an_mpd_level_base),
        cmocka_unit_test(test_an_origin_and_a_surrogate_on_one_host_are_told_apart_by_port),
        cmocka_unit_test(test_hook_escaping_and_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

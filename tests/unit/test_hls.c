/* HLS playlist rewriting (manifest/hls) and the rewrite policy (manifest/rewrite),
 * on real-world playlist shapes kept in tests/data/hls. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"
#include "manifest/hls.h"

static char *slurp(const char *name, size_t *n)
{
    char path[128];
    snprintf(path, sizeof path, "hls/%s", name);
    char *b = read_data(path, n);
    assert_non_null(b);
    return b;
}

static const char *const HOSTS[] = {"origin.example.com", "video.example.com", NULL};

static char *rewrite(const char *in, size_t n, const char *target, bool absolutize, mf_hook hook,
                     hls_stats *st, hls_status want)
{
    mf_policy p = {.base = "https://video.example.com/vod/m1/master.m3u8?tok=1", .hosts = HOSTS,
                   .target = target, .absolutize = absolutize, .hook = hook};
    assert_true(mf_policy_prepare(&p));
    buf out;
    buf_init(&out, 0, 0);
    assert_int_equal(hls_rewrite(in, n, 1 << 20, &p, &out, st), want);
    return buf_take(&out, NULL);
}

/* Every line but the URIs is byte-for-byte the same. */
static void same_except(const char *a, const char *b, const char *const *changed)
{
    const char *pa = a, *pb = b;
    while (*pa || *pb) {
        size_t la = strcspn(pa, "\n"), lb = strcspn(pb, "\n");
        bool expected = false;
        for (size_t i = 0; changed[i]; i++)
            expected |= memmem(pa, la, changed[i], strlen(changed[i])) != NULL;
        if (!expected && (la != lb || memcmp(pa, pb, la) != 0))
            fail_msg("line changed: %.*s -> %.*s", (int)la, pa, (int)lb, pb);
        pa += la + (pa[la] != 0);
        pb += lb + (pb[lb] != 0);
    }
}

static void test_target_with_a_path_prefix(void **st)
{
    const char *in = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n720p/index.m3u8\n"
                     "#EXT-X-STREAM-INF:BANDWIDTH=2\nhttp://video.example.com/vod/m1/1080p/index.m3u8\n";
    hls_stats s;
    char *out = rewrite(in, strlen(in), "http://dcdn.example:9084/video.example.com", true, NULL, &s, HLS_OK);
    assert_non_null(strstr(out, "\nhttp://dcdn.example:9084/video.example.com/vod/m1/720p/index.m3u8\n"));
    assert_non_null(strstr(out, "\nhttp://dcdn.example:9084/video.example.com/vod/m1/1080p/index.m3u8\n"));
    free(out);
    mf_policy p = {.base = "https://video.example.com/a.m3u8", .target = "http://dcdn.example/x/"};
    assert_false(mf_policy_prepare(&p)); /* a prefix ends without '/' */
    p.target = "http://dcdn.example?x";
    assert_false(mf_policy_prepare(&p));
}

static void test_master_every_uri_site_and_nothing_else(void **st)
{
    size_t n;
    char *in = slurp("master.m3u8", &n);
    hls_stats s;
    char *out = rewrite(in, n, "http://dcdn.example:9084", false, NULL, &s, HLS_OK);
    /* absolute URIs of the interconnected set now lead to the dCDN */
    assert_non_null(strstr(out, "URI=\"http://dcdn.example:9084/meta/title.json\""));
    assert_non_null(strstr(out, "SERVER-URI=\"http://dcdn.example:9084/steering?video=m1\",PATHWAY-ID=\"CDN-A\""));
    assert_non_null(strstr(out, "URI=\"http://dcdn.example:9084/vod/m1/audio/fr/index.m3u8\"\n"));
    assert_non_null(strstr(out, "\nhttp://dcdn.example:9084/vod/m1/1080p/index.m3u8?v=2\n"));
    /* relative ones stay relative, skd: stays, an unknown tag is not looked into */
    assert_non_null(strstr(out, "URI=\"audio/en/index.m3u8\""));
    assert_non_null(strstr(out, "\n720p/index.m3u8\n"));
    assert_non_null(strstr(out, "URI=\"skd://key-id-1\""));
    assert_non_null(strstr(out, "X=\"https://origin.example.com/not-a-uri-attribute\""));
    assert_int_equal(s.uris, 9); /* 7 attributes + 2 URI lines */
    assert_int_equal(s.rewritten, 4);
    const char *changed[] = {"title.json", "steering", "audio/fr", "1080p", NULL};
    same_except(in, out, changed);
    free(out);
    /* absolutized: relative URIs resolved against the master's own URL */
    out = rewrite(in, n, "http://dcdn.example:9084", true, NULL, &s, HLS_OK);
    assert_non_null(strstr(out, "URI=\"http://dcdn.example:9084/vod/m1/audio/en/index.m3u8\""));
    assert_non_null(strstr(out, "\nhttp://dcdn.example:9084/vod/m1/720p/index.m3u8\n"));
    assert_non_null(strstr(out, "URI=\"http://dcdn.example:9084/vod/m1/720p/iframes.m3u8\""));
    assert_non_null(strstr(out, "URI=\"skd://key-id-1\""));
    assert_int_equal(s.rewritten, 8);
    free(out);
    free(in);
}

static void test_media_crlf_keys_map_and_identity(void **st)
{
    size_t n;
    char *in = slurp("media-fmp4-crlf.m3u8", &n);
    hls_stats s;
    char *out = rewrite(in, n, "https://se1.dcdn.example", false, NULL, &s, HLS_OK);
    /* CRLF kept, third-party key server untouched, origin key moved, host matched case-insensitively */
    assert_non_null(strstr(out, "#EXT-X-MAP:URI=\"init.mp4\"\r\n"));
    assert_non_null(strstr(out, "URI=\"https://keys.thirdparty.example/k/1\",IV=0x0123456789ABCDEF0123456789ABCDEF\r\n"));
    assert_non_null(strstr(out, "URI=\"https://se1.dcdn.example/keys/2\"\r\n"));
    assert_non_null(strstr(out, "\r\nhttps://se1.dcdn.example/vod/m1/720p/seg_01042.m4s\r\n"));
    assert_non_null(strstr(out, "\r\nhttps://se1.dcdn.example/vod/m1/720p/seg_01043.m4s\r\n"));
    assert_non_null(strstr(out, "\r\n  seg_01041.m4s  \r\n")); /* white space around a kept URI stays */
    assert_non_null(strstr(out, "\r\n\r\n#EXT-X-ENDLIST\r\n"));
    assert_int_equal(s.rewritten, 3);
    free(out);
    /* a target equal to the origin gives back the input, byte for byte */
    out = rewrite(in, n, "https://origin.example.com", false, NULL, &s, HLS_OK);
    char *in2 = strdup(in);
    /* ... except the port and case of the one URI that had them */
    char *x = strstr(in2, "http://ORIGIN.example.com:8080");
    assert_non_null(x);
    memmove(x + 26, x + 30, strlen(x + 30) + 1);
    memcpy(x, "https://origin.example.com", 26);
    assert_string_equal(out, in2);
    free(in2);
    free(out);
    free(in);
}

static void test_ll_hls_parts_hints_reports(void **st)
{
    size_t n;
    char *in = slurp("ll-hls.m3u8", &n);
    hls_stats s;
    char *out = rewrite(in, n, "http://se1", true, NULL, &s, HLS_OK);
    assert_non_null(strstr(out, "#EXT-X-PART:DURATION=0.33334,URI=\"http://se1/vod/m1/filePart267.0.mp4\",INDEPENDENT=YES\n"));
    assert_non_null(strstr(out, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"http://se1/vod/m1/filePart267.2.mp4\"\n"));
    assert_non_null(strstr(out, "#EXT-X-RENDITION-REPORT:URI=\"http://se1/vod/1M/waitForMSN.php\",LAST-MSN=273"));
    assert_non_null(strstr(out, "URI=\"http://se1/live/4M/waitForMSN.php\""));
    assert_non_null(strstr(out, "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0,CAN-SKIP-UNTIL=24.0\n"));
    assert_int_equal(s.uris, 7);
    assert_int_equal(s.rewritten, 7);
    free(out);
    free(in);
}

static void test_ad_breaks_third_parties_and_unreadable_tags(void **st)
{
    size_t n;
    char *in = slurp("ad-break.m3u8", &n);
    hls_stats s;
    char *out = rewrite(in, n, "http://se1", false, NULL, &s, HLS_OK);
    /* the ad server's segments and assets are never touched; SCTE-35 markers stay */
    assert_non_null(strstr(out, "\nhttps://ads.thirdparty.example/creative/77/seg_0.ts\n"));
    assert_non_null(strstr(out, "X-ASSET-URI=\"https://ads.thirdparty.example/vast/ad1.m3u8\",X-RESUME-OFFSET=0\n"));
    assert_non_null(strstr(out, "X-ASSET-LIST=\"http://se1/ads/list.json\",X-RESTRICT=\"SKIP,JUMP\"\n"));
    assert_non_null(strstr(out, "\nhttp://se1/live/ch1/seg_5000.ts\n"));
    assert_non_null(strstr(out, "SCTE35-OUT=0xFC002F0000000000FF000014056FFFFFF000E011622DCAFF0000526362"));
    assert_non_null(strstr(out, "#EXT-X-CUE-OUT:60.0\n#EXTINF:6.0,\n"));
    /* a tag that does not parse is copied as it was, and counted */
    assert_non_null(strstr(out, "#EXT-X-KEY:METHOD=AES-128,URI=\"https://origin.example.com/k,with-comma\"broken\n"));
    assert_int_equal(s.unreadable_tags, 1);
    assert_int_equal(s.rewritten, 3);
    free(out);
    free(in);
}

static bool add_token(void *ud, const char *uri, size_t n, buf *out)
{
    int *calls = ud;
    (*calls)++;
    buf_add(out, uri, n);
    buf_adds(out, memchr(uri, '?', n) ? "&tok=T" : "?tok=T");
    return true;
}

static void test_hook_refusals_and_limits(void **st)
{
    size_t n;
    char *in = slurp("media-fmp4-crlf.m3u8", &n);
    int calls = 0;
    mf_policy p = {.base = "https://video.example.com/vod/m1/720p/index.m3u8", .hosts = HOSTS,
                   .target = "http://se1", .hook = add_token, .hook_ud = &calls};
    assert_true(mf_policy_prepare(&p));
    buf out;
    buf_init(&out, 0, 0);
    assert_int_equal(hls_rewrite(in, n, 1 << 20, &p, &out, NULL), HLS_OK);
    /* every URI that leads to us gets the hook, relative ones included; third parties do not */
    assert_int_equal(calls, 6);
    assert_non_null(strstr(out.data, "#EXT-X-MAP:URI=\"init.mp4?tok=T\""));
    assert_non_null(strstr(out.data, "\r\n  seg_01041.m4s?tok=T  \r\n"));
    assert_non_null(strstr(out.data, "URI=\"https://keys.thirdparty.example/k/1\","));
    buf_free(&out);
    /* not a playlist, too large: refused, nothing written */
    buf_init(&out, 0, 0);
    assert_int_equal(hls_rewrite("<html>", 6, 100, &p, &out, NULL), HLS_NOT_PLAYLIST);
    assert_int_equal(hls_rewrite(in, n, n - 1, &p, &out, NULL), HLS_TOO_LARGE);
    assert_int_equal(out.len, 0);
    /* an output limit is a failure, never a cut playlist */
    buf_free(&out);
    buf_init(&out, 0, 64);
    assert_int_equal(hls_rewrite(in, n, 1 << 20, &p, &out, NULL), HLS_FAILED);
    buf_free(&out);
    /* a BOM and no final newline */
    const char bom[] = "\xEF\xBB\xBF#EXTM3U\n#EXTINF:1,\nhttps://origin.example.com/a.ts";
    buf_init(&out, 0, 0);
    p.hook = NULL;
    assert_int_equal(hls_rewrite(bom, sizeof bom - 1, 1 << 20, &p, &out, NULL), HLS_OK);
    assert_string_equal(out.data, "\xEF\xBB\xBF#EXTM3U\n#EXTINF:1,\nhttp://se1/a.ts");
    buf_free(&out);
    /* policy: base and target must be absolute http(s); a one-letter host will do */
    mf_policy shortest = {.base = "http://a/b", .target = "http://x"};
    assert_true(mf_policy_prepare(&shortest));
    mf_policy bad = {.base = "/relative", .target = "http://se1"};
    assert_false(mf_policy_prepare(&bad));
    bad = (mf_policy){.base = "http://a/b", .target = "http://se1/path/"}; /* a prefix ends without a slash */;
    assert_false(mf_policy_prepare(&bad));
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_master_every_uri_site_and_nothing_else),
        cmocka_unit_test(test_target_with_a_path_prefix),
        cmocka_unit_test(test_media_crlf_keys_map_and_identity),
        cmocka_unit_test(test_ll_hls_parts_hints_reports),
        cmocka_unit_test(test_ad_breaks_third_parties_and_unreadable_tags),
        cmocka_unit_test(test_hook_refusals_and_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* CDNI Logging (RFC 7937): the RFC's example file, every field of
 * cdni_http_request_v1 (and RFC 9246's), escaping, the SHA256-hash
 * directive, and the directive rules a receiver enforces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <zlib.h>

#include "common/gz.h"
#include "common/journal.h"
#include "interfaces/logging.h"
#include "interfaces/li_feed.h"
#include "interfaces/logging_file.h"
#include "testutil.h"

typedef struct {
    size_t n;
    char first_ua[256], last_uri[256];
    bool absent;
} seen;

static void on_rec(void *ud, const li_fields *f, const char *const *v, const size_t *len)
{
    seen *s = ud;
    s->n++;
    for (size_t i = 0; i < f->n; i++) {
        if (f->f[i].id == LF_CS_HEADER && strcmp(f->f[i].header, "User-Agent") == 0 && s->n == 1)
            assert_true(li_unquote(v[i], len[i], s->first_ua, sizeof s->first_ua, &s->absent));
        if (f->f[i].id == LF_U_URI)
            snprintf(s->last_uri, sizeof s->last_uri, "%.*s", (int)len[i], v[i]);
    }
}

static void test_rfc7937_figure4_parses_and_its_hash_holds(void **st)
{
    size_t len;
    char *b = read_data("rfc7937/figure4.log", &len);
    li_summary s;
    seen r = {0};
    const char *why = NULL;
    assert_true(li_parse(b, len, on_rec, &r, &s, &why));
    assert_int_equal(s.records, 3);
    assert_int_equal(r.n, 3);
    assert_true(s.has_hash && s.hash_ok);
    assert_string_equal(s.uuid, "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6");
    assert_string_equal(s.claimed_origin, "cdni-logging-entity.dcdn-1.example.com");
    assert_string_equal(r.first_ua, "Mozilla/5.0 (Windows; U; Windows NT 6.0; en-US) AppleWebKit/533.4 (KHTML, "
                                    "like Gecko) Chrome/5.0.375.127 Safari/533.4");
    assert_string_equal(r.last_uri, "http://cdni-ucdn.dcdn-1.example.com/video/picture11.mp4");
    /* one byte changed: corrupted */
    char *t = memmem(b, len, "6729891", 7);
    t[0] = '7';
    assert_false(li_parse(b, len, NULL, NULL, &s, &why));
    assert_false(s.hash_ok);
    assert_non_null(strstr(why, "corrupted"));
    free(b);
}

static const char *hdr(void *ud, bool response, const char *name)
{
    if (!response && strcmp(name, "User-Agent") == 0)
        return "Player \"X\"\t100%";
    if (response && strcmp(name, "Content-Type") == 0)
        return "video/mp2t";
    return NULL;
}

static const char *const ALL[] = {"date", "time", "time-taken", "c-groupid", "s-ip", "s-hostname", "s-port",
                                  "cs-method", "cs-uri", "u-uri", "protocol", "sc-status", "sc-total-bytes",
                                  "sc-entity-bytes", "cs(User-Agent)", "sc(Content-Type)", "cs(Referer)", "s-ccid",
                                  "s-sid", "s-cached", "s-uri-signing", "s-uri-signing-deny-reason", NULL};

static void test_every_field_written_then_read_back(void **st)
{
    li_fields f;
    const char *why = NULL;
    assert_true(li_fields_from_names(ALL, &f, &why));
    li_writer w;
    assert_true(li_writer_init(&w));
    buf out;
    buf_init(&out, 0, 0);
    assert_true(li_write_head(&w, &out, "urn:uuid:00000000-0000-4000-8000-000000000001", "se1.dcdn.example", &f));
    li_record r = {.end_ms = 1368751086825LL, .taken_us = 9058400, .c_groupid = "192.0.2.0/24",
                   .s_ip = "192.0.2.9", .s_hostname = "se1.dcdn.example", .s_port = 8080, .cs_method = "GET",
                   .cs_uri = "http://se1.dcdn.example/video.example.com/a b\tc.ts",
                   .u_uri = "http://video.example.com/a.ts", .protocol = "HTTP/1.1", .sc_status = 206,
                   .sc_total_bytes = 1300, .sc_entity_bytes = 1000, .s_ccid = "col\"1", .s_sid = "s-42",
                   .s_cached = 1, .s_uri_signing = 200, .header = hdr};
    assert_true(li_write_record(&w, &out, &f, &r));
    li_record unknown = {.end_ms = 1368751087000LL, .taken_us = -1, .sc_status = 0, .sc_total_bytes = -1,
                         .sc_entity_bytes = -1, .s_cached = -1, .s_uri_signing = 403,
                         .s_uri_signing_deny_reason = "aud"};
    assert_true(li_write_record(&w, &out, &f, &unknown));
    assert_true(li_write_hash(&w, &out));
    li_writer_free(&w);
    const char *line = strstr(out.data, "\r\n2013-05-17\t") + 2;
    const char *want = "2013-05-17\t00:38:06.825\t9.058\t192.0.2.0/24\t192.0.2.9\tse1.dcdn.example\t8080\tGET\t"
                       "http://se1.dcdn.example/video.example.com/a b%09c.ts\thttp://video.example.com/a.ts\t"
                       "HTTP/1.1\t206\t1300\t1000\t\"Player %22X%22%09100%25\"\t\"video/mp2t\"\t-\t\"col%221\"\t"
                       "\"s-42\"\t1\t200\t-\r\n";
    assert_memory_equal(line, want, strlen(want));
    const char *line2 = line + strlen(want);
    const char *want2 = "2013-05-17\t00:38:07.000\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t403\t\"aud\"\r\n";
    assert_memory_equal(line2, want2, strlen(want2));
    assert_memory_equal(line2 + strlen(want2), "#SHA256-hash:\t", 14);
    li_summary s;
    seen sn = {0};
    assert_true(li_parse(out.data, out.len, on_rec, &sn, &s, &why));
    assert_int_equal(s.records, 2);
    assert_true(s.hash_ok);
    assert_string_equal(sn.first_ua, "Player \"X\"\t100%");
    buf_free(&out);
}

static void test_field_names_and_the_mandatory_set(void **st)
{
    li_fields f;
    const char *why = NULL;
    const char *missing[] = {"date", "time", "time-taken", "c-groupid", "cs-method", "u-uri", "protocol",
                             "sc-status", NULL};
    assert_false(li_fields_from_names(missing, &f, &why));
    assert_non_null(strstr(why, "mandatory"));
    const char *twice[] = {"date", "time", "time-taken", "c-groupid", "cs-method", "u-uri", "protocol",
                           "sc-status", "sc-total-bytes", "DATE", NULL};
    assert_false(li_fields_from_names(twice, &f, &why));
    const char *bad[] = {"date", "cs(bad header)", NULL};
    assert_false(li_fields_from_names(bad, &f, &why));
    li_field x;
    assert_true(li_field_parse("CS(user-agent)", 14, &x));
    assert_int_equal(x.id, LF_CS_HEADER);
    assert_string_equal(x.header, "user-agent");
    char name[80];
    li_field_name(&x, name, sizeof name);
    assert_string_equal(name, "cs(user-agent)");
    assert_false(li_field_parse("cs()", 4, &x));
    assert_false(li_field_parse("s-unknown", 9, &x));
}

static void expect_ignored(const char *text, const char *reason)
{
    li_summary s;
    const char *why = NULL;
    if (li_parse(text, strlen(text), NULL, NULL, &s, &why))
        fail_msg("accepted: %s", text);
    if (!strstr(why, reason))
        fail_msg("refused for \"%s\", want \"%s\"", why, reason);
}

#define HEAD "#version:\tcdni/1.0\r\n#UUID:\turn:uuid:1\r\n#record-type:\tcdni_http_request_v1\r\n"
#define FIELDS "#fields:\tdate\ttime\ttime-taken\tc-groupid\tcs-method\tu-uri\tprotocol\tsc-status\tsc-total-bytes\r\n"
#define REC "2024-01-01\t00:00:00.000\t0.001\t-\tGET\thttp://a/b\tHTTP/1.1\t200\t10\r\n"

static void test_directive_rules_a_receiver_enforces(void **st)
{
    expect_ignored("#UUID:\turn:uuid:1\r\n", "first line");
    expect_ignored(HEAD "#version:\tcdni/1.0\r\n" FIELDS, "twice");
    expect_ignored("#version:\tcdni/2.0\r\n", "cdni/1.0");
    expect_ignored("#version:\tcdni/1.0\r\n#record-type:\tcdni_http_request_v1\r\n" FIELDS, "UUID");
    expect_ignored(HEAD "#UUID:\turn:uuid:2\r\n" FIELDS, "UUID");
    expect_ignored("#version:\tcdni/1.0\r\n#UUID:\tu\r\n" FIELDS, "before any record-type");
    expect_ignored(HEAD REC, "before its record-type and fields");
    expect_ignored(HEAD FIELDS "#SHA256-hash:\t" "0000000000000000000000000000000000000000000000000000000000000000\r\n" REC,
                   "last line");
    expect_ignored(HEAD FIELDS REC "#SHA256-hash:\tabc\r\n", "64 hex");
    expect_ignored("#version:\tcdni/1.0\n", "CRLF");
    expect_ignored(HEAD FIELDS "2024\r01\r\n", "bare CR");
    expect_ignored("", "empty");
    /* a record with the wrong number of values is ignored, the others kept;
     * unknown directives and remarks are ignored; no hash is allowed */
    li_summary s;
    const char *why = NULL;
    const char *ok = HEAD "#remark:\tfree text\r\n#x-unknown:\tv\r\n" FIELDS REC "2024-01-01\t00:00:00.000\r\n" REC;
    assert_true(li_parse(ok, strlen(ok), NULL, NULL, &s, &why));
    assert_int_equal(s.records, 2);
    assert_int_equal(s.ignored_records, 1);
    assert_false(s.has_hash);
}

/* The word-at-a-time copy of plain bytes: every length up to 24, with one
 * byte to escape at every position (or none), in both string forms. */
static void test_escaping_at_every_length_and_position(void **st)
{
    (void)st;
    buf b;
    buf_init(&b, 0, 0);
    for (size_t n = 1; n <= 24; n++) {
        for (size_t bad = 0; bad <= n; bad++) { /* bad == n: nothing to escape */
            char s[32], want[128];
            for (size_t i = 0; i < n; i++)
                s[i] = (char)('a' + i % 26);
            s[n] = 0;
            if (bad < n)
                s[bad] = '"';
            size_t w = 0;
            want[w++] = '"';
            for (size_t i = 0; i < n; i++)
                w += (size_t)(i == bad ? snprintf(want + w, 8, "%%22") : snprintf(want + w, 8, "%c", s[i]));
            want[w++] = '"';
            want[w] = 0;
            buf_truncate(&b, 0);
            li_put_qstring(&b, s);
            assert_string_equal(b.data, want);
            /* NHTABSTRING keeps '"'; a tab there is escaped instead */
            if (bad < n)
                s[bad] = '\t';
            want[w - 1] = 0;
            char *t = strstr(want + 1, "%22");
            if (t)
                memcpy(t, "%09", 3);
            buf_truncate(&b, 0);
            li_put_nhtab(&b, s);
            assert_string_equal(b.data, want + 1);
        }
    }
    buf_free(&b);
}

/* Numbers written two digits at a time: every digit count. */
static void test_numbers_at_every_width(void **st)
{
    (void)st;
    static const char *const names[] = {"date", "time", "time-taken", "c-groupid", "cs-method", "u-uri",
                                        "protocol", "sc-status", "sc-total-bytes", NULL};
    li_fields f;
    const char *why = NULL;
    assert_true(li_fields_from_names(names, &f, &why));
    static const long long vals[] = {0, 7, 9, 10, 42, 99, 100, 101, 999, 1000, 9999, 10000, 65536, 1048575,
                                     1048576, 1234567, 99999999, 100000000, 4294967295LL, 4294967296LL,
                                     999999999999999999LL, 1000000000000000000LL, 9223372036854775807LL};
    li_writer w;
    li_writer_init(&w);
    buf out;
    buf_init(&out, 0, 0);
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        long long ms = vals[i] < 9223372036854775LL ? vals[i] : 9223372036854775LL; /* time-taken: us */
        li_record r = {.end_ms = 1368751086005LL, .taken_us = ms * 1000, .c_groupid = "g",
                       .cs_method = "GET", .u_uri = "u", .protocol = "HTTP/1.1", .sc_status = 200,
                       .sc_total_bytes = vals[i]};
        buf_truncate(&out, 0);
        assert_true(li_write_record(&w, &out, &f, &r));
        char want[200];
        snprintf(want, sizeof want, "2013-05-17\t00:38:06.005\t%lld.%03lld\tg\tGET\tu\tHTTP/1.1\t200\t%lld\r\n",
                 ms / 1000, ms % 1000, vals[i]);
        assert_string_equal(out.data, want);
    }
    buf_free(&out);
    li_writer_free(&w);
}

static void test_qstring_escaping_and_unquoting(void **st)
{
    buf b;
    buf_init(&b, 0, 0);
    li_put_qstring(&b, "a\"b%c\r\n\x01\xc3\xa9");
    assert_string_equal(b.data, "\"a%22b%25c%0D%0A%01%C3%A9\"");
    char out[64];
    bool absent;
    assert_true(li_unquote(b.data, b.len, out, sizeof out, &absent));
    assert_false(absent);
    assert_string_equal(out, "a\"b%c\r\n\x01\xc3\xa9");
    buf_truncate(&b, 0);
    li_put_qstring(&b, NULL);
    assert_string_equal(b.data, "-");
    assert_true(li_unquote("-", 1, out, sizeof out, &absent) && absent);
    assert_false(li_unquote("\"a\"b\"", 5, out, sizeof out, &absent));
    assert_false(li_unquote("\"%4\"", 4, out, sizeof out, &absent));
    assert_false(li_unquote("abc", 3, out, sizeof out, &absent));
    assert_false(li_unquote("\"abcdef\"", 8, out, 4, &absent)); /* does not fit */
    buf_free(&b);
}

static void test_gzip_files_inflate_whole_or_not_at_all(void **st)
{
    const char *text = "#version:\tcdni/1.0\r\n";
    unsigned char z[256];
    z_stream zs = {0};
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = (unsigned char *)text;
    zs.avail_in = (uInt)strlen(text);
    zs.next_out = z;
    zs.avail_out = sizeof z;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t zn = sizeof z - zs.avail_out;
    deflateEnd(&zs);
    assert_true(gz_is_gzip((char *)z, zn));
    buf out;
    buf_init(&out, 0, 0);
    const char *why = NULL;
    assert_true(gz_inflate((char *)z, zn, 1024, &out, &why));
    assert_string_equal(out.data, text);
    buf_truncate(&out, 0);
    assert_false(gz_inflate((char *)z, zn - 4, 1024, &out, &why)); /* the trailer cut */
    buf_truncate(&out, 0);
    assert_false(gz_inflate((char *)z, zn, 4, &out, &why)); /* over the limit */
    assert_non_null(strstr(why, "too large"));
    buf_truncate(&out, 0);
    assert_false(gz_inflate("\x1f\x8bxxxxxxxxxx", 12, 1024, &out, &why));
    buf_free(&out);
}

static void file_text(const char *path, buf *out)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char z[1 << 16];
    size_t zn = fread(z, 1, sizeof z, f);
    fclose(f);
    const char *why = NULL;
    assert_true(gz_inflate(z, zn, 1 << 20, out, &why));
}

/* A journal as a crash leaves it (a record cut mid-line, zero tail) is
 * sealed with exactly its whole records, and the file's hash holds; the
 * same journal, full, refuses the next record without writing any of it. */
static void test_journal_survives_a_cut_and_seals_whole_records(void **st)
{
    (void)st;
    char dir[] = "/tmp/cdni-journal.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char jpath[128], fpath[128];
    snprintf(jpath, sizeof jpath, "%s/j.log", dir);
    snprintf(fpath, sizeof fpath, "%s/f.log.gz", dir);
    static const char *const names[] = {"date",      "time",           "time-taken", "c-groupid", "cs-method",
                                        "u-uri",     "protocol",       "sc-status",  "s-ccid",    "sc-total-bytes",
                                        NULL};
    li_fields f;
    const char *why = NULL;
    assert_true(li_fields_from_names(names, &f, &why));
    li_writer w;
    li_writer_init(&w);
    buf b;
    buf_init(&b, 0, 0);
    journal j;
    assert_true(journal_create(&j, jpath, 4096));
    li_write_head(&w, &b, "urn:uuid:11111111-2222-4333-8444-555555555555", "dcdn.example", &f);
    assert_true(journal_append(&j, b.data, b.len));
    size_t head = b.len;
    li_record r = {.end_ms = 1763856000123LL, .u_uri = "http://v.example/seg_1.ts", .sc_status = 200,
                   .s_ccid = "m-1", .s_cached = -1, .s_uri_signing = -1, .taken_us = 1500, .c_groupid = "192.0.2.0/24",
                   .cs_method = "GET", .protocol = "HTTP/1.1", .sc_total_bytes = 1234};
    for (int i = 0; i < 3; i++) {
        buf_truncate(&b, 0);
        li_write_record(&w, &b, &f, &r);
        assert_true(journal_append(&j, b.data, b.len));
    }
    assert_true(journal_append(&j, "2025-11-23\t00:00", 16)); /* the crash, mid-record */
    size_t used = j.len;
    assert_false(journal_append(&j, b.data, 4096)); /* does not fit: nothing written */
    assert_int_equal(j.len, used);
    journal_close(&j); /* kill -9 here: the mapping's bytes are in the file */

    assert_true(journal_reopen(&j, jpath));
    assert_int_equal(j.len, used); /* its data ends at the first NUL of the zero tail */
    size_t records = 0;
    assert_true(li_seal(&j, fpath, 6, &records, &why));
    assert_int_equal(records, 3);
    journal_close(&j);
    buf text;
    buf_init(&text, 0, 0);
    file_text(fpath, &text);
    assert_int_equal(text.len, head + 3 * b.len + LI_HASH_LINE_MAX);
    li_summary sum;
    seen sn = {0};
    assert_true(li_parse(text.data, text.len, on_rec, &sn, &sum, &why));
    assert_true(sum.has_hash && sum.hash_ok);
    assert_int_equal(sum.records, 3);
    assert_string_equal(sn.last_uri, "http://v.example/seg_1.ts");
    /* the file carries its hash value as an attribute, for the feed, where
     * the file system keeps user attributes (probed on the same directory) */
    char hex[65] = "";
    bool has_attr = li_file_hash(fpath, hex);
    if (has_attr)
        assert_string_equal(hex, sum.hash);
    char probe[140];
    snprintf(probe, sizeof probe, "%s.probe", fpath);
    int pfd = open(probe, O_CREAT | O_WRONLY, 0600);
    assert_true(pfd >= 0);
    if (fsetxattr(pfd, "user.probe", "1", 1, 0) == 0)
        assert_true(has_attr);
    close(pfd);
    unlink(probe);
    struct stat sb;
    char tmp[140];
    snprintf(tmp, sizeof tmp, "%s.tmp", fpath);
    assert_int_not_equal(stat(tmp, &sb), 0); /* renamed, not left */

    /* a journal with directives only is not published */
    unlink(jpath);
    unlink(fpath);
    assert_true(journal_create(&j, jpath, 4096));
    assert_true(journal_append(&j, text.data, head));
    records = 0;
    assert_true(li_seal(&j, fpath, 1, &records, &why));
    assert_int_equal(records, 0);
    assert_int_not_equal(stat(fpath, &sb), 0);
    journal_close(&j);
    unlink(jpath);
    rmdir(dir);
    buf_free(&text);
    buf_free(&b);
    li_writer_free(&w);
}

/* The collector's reading of a feed page: entries with their file UUID and
 * link, the archive paging links, and what it refuses. */
static void test_feed_pages_entries_and_archive_links(void **st)
{
    (void)st;
    const char *xml =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
        "<feed xmlns=\"http://www.w3.org/2005/Atom\" xmlns:fh=\"http://purl.org/syndication/history/1.0\">"
        "<title>CDNI Logging Feed</title><id>tag:x</id><fh:archive/>"
        "<link href=\"/li/v1/feed/archive/2026113001\" rel=\"prev-archive\"/>"
        "<entry><id> urn:uuid:1B4E28BA-2FA1-11D2-883F-0016D3CCA427 </id><updated>2026-11-30T02:00:00Z</updated>"
        "<content src=\"/li/v1/files/1b4e28ba-2fa1-11d2-883f-0016d3cca427.log.gz\"/>"
        "<link rel=\"enclosure\" href=\"/x\" length=\"1234\"/>"
        "<h:SHA256-hash xmlns:h=\"" LI_FEED_EXT_NS "\">\n"
        " 0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789ABCDEF </h:SHA256-hash></entry>"
        "<entry><id>tag:not-a-file</id><content src=\"/y\"/></entry>"
        "<entry><id>urn:uuid:00000000-0000-4000-8000-000000000001</id>"
        "<link rel=\"enclosure\" href=\"https://logs.dcdn.example/f/1.log.gz\"/>"
        "<SHA256-hash>0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef</SHA256-hash></entry>"
        "<entry><id>urn:uuid:00000000-0000-4000-8000-000000000002</id><content src=\"/z\"/>"
        "<h:SHA256-hash xmlns:h=\"" LI_FEED_EXT_NS "\">0123456789abcdef0123456789abcdef0123456789abcdef"
        "0123456789abcdeg</h:SHA256-hash></entry>"
        "</feed>";
    li_feed f;
    const char *why = NULL;
    assert_true(li_feed_parse(xml, strlen(xml), &f, &why));
    assert_true(f.archive);
    assert_string_equal(f.prev_archive, "/li/v1/feed/archive/2026113001");
    assert_int_equal(f.n, 3); /* the entry without a urn:uuid id is skipped */
    assert_string_equal(f.e[0].uuid, "1b4e28ba-2fa1-11d2-883f-0016d3cca427");
    assert_string_equal(f.e[0].href, "/li/v1/files/1b4e28ba-2fa1-11d2-883f-0016d3cca427.log.gz");
    assert_int_equal(f.e[0].length, 1234);
    assert_string_equal(f.e[1].href, "https://logs.dcdn.example/f/1.log.gz");
    assert_int_equal(f.e[1].length, -1);
    /* the extension's hash: trimmed and lower-cased; ignored outside its
     * namespace or when not 64 hex digits */
    assert_string_equal(f.e[0].sha256, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    assert_string_equal(f.e[1].sha256, "");
    assert_string_equal(f.e[2].sha256, "");
    char url[LI_FEED_URL_MAX];
    assert_true(li_feed_resolve("http://127.0.0.1:9081/li/v1/feed", f.e[0].href, url, sizeof url));
    assert_string_equal(url, "http://127.0.0.1:9081/li/v1/files/1b4e28ba-2fa1-11d2-883f-0016d3cca427.log.gz");
    assert_true(li_feed_resolve("http://a.example/li/v1/feed", f.e[1].href, url, sizeof url));
    assert_string_equal(url, "https://logs.dcdn.example/f/1.log.gz");
    assert_false(li_feed_resolve("http://a.example/feed", "//evil.example/x", url, sizeof url));
    assert_false(li_feed_resolve("http://a.example/feed", "files/x", url, sizeof url));
    assert_false(li_feed_resolve("http://a.example/feed", "file:///etc/passwd", url, sizeof url));
    li_feed_free(&f);
    /* not a feed; a DTD (entities); cut short */
    const char *rss = "<rss><channel/></rss>";
    assert_false(li_feed_parse(rss, strlen(rss), &f, &why));
    const char *dtd = "<?xml version=\"1.0\"?><!DOCTYPE feed [<!ENTITY a \"aaaa\">]>"
                      "<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>&a;</title></feed>";
    assert_false(li_feed_parse(dtd, strlen(dtd), &f, &why));
    assert_false(li_feed_parse(xml, 100, &f, &why));
}

/* The feed the dCDN writes is the feed the uCDN reads: entries, their
 * lengths and hashes, the archive paging, and text that needs escaping. */
static void test_feed_written_reads_back(void **st)
{
    (void)st;
    li_feed_item it[2] = {
        {.uuid = "1b4e28ba-2fa1-11d2-883f-0016d3cca427", .href = "/li/v1/files/1b4e28ba-2fa1-11d2-883f-0016d3cca427.log.gz",
         .updated = "2026-12-04T10:00:00Z", .title = "CDNI Logging File for <ucdn> & co", .summary = "a \"file\"",
         .length = 1234, .sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
        {.uuid = "00000000-0000-4000-8000-000000000001", .href = "/li/v1/files/x?a=1&b=2", .updated = "2026-12-04T10:00:01Z",
         .title = "t", .summary = "s", .length = 0, .sha256 = NULL},
    };
    li_feed_meta m = {.id = "tag:dcdn,2026:cdni-logging:ucdn", .title = "CDNI Logging Feed",
                      .updated = "2026-12-04T10:00:01Z", .author = "dcdn", .self = "/li/v1/feed/archive/2026120410",
                      .current = "/li/v1/feed", .prev_archive = "/li/v1/feed/archive/2026120409",
                      .next_archive = "/li/v1/feed", .archive = true};
    size_t len;
    char *doc = li_feed_write(&m, it, 2, &len);
    assert_non_null(doc);
    assert_int_equal(strlen(doc), len);
    assert_non_null(strstr(doc, "<summary>a &quot;file&quot;</summary>") ?: strstr(doc, "<summary>a \"file\"</summary>"));
    li_feed f;
    const char *why = NULL;
    assert_true(li_feed_parse(doc, len, &f, &why));
    assert_true(f.archive);
    assert_string_equal(f.prev_archive, "/li/v1/feed/archive/2026120409");
    assert_int_equal(f.n, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(f.e[i].uuid, it[i].uuid);
        assert_string_equal(f.e[i].href, it[i].href);
        assert_string_equal(f.e[i].updated, it[i].updated);
        assert_int_equal(f.e[i].length, it[i].length);
        assert_string_equal(f.e[i].sha256, it[i].sha256 ? it[i].sha256 : "");
    }
    li_feed_free(&f);
    free(doc);
    /* the subscription document: no fh:archive, no next-archive */
    m.archive = false;
    m.next_archive = m.prev_archive = NULL;
    doc = li_feed_write(&m, it, 0, &len);
    assert_true(li_feed_parse(doc, len, &f, &why));
    assert_false(f.archive);
    assert_int_equal(f.n, 0);
    assert_string_equal(f.prev_archive, "");
    assert_null(strstr(doc, "next-archive"));
    li_feed_free(&f);
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_feed_written_reads_back),
        cmocka_unit_test(test_rfc7937_figure4_parses_and_its_hash_holds),
        cmocka_unit_test(test_every_field_written_then_read_back),
        cmocka_unit_test(test_field_names_and_the_mandatory_set),
        cmocka_unit_test(test_directive_rules_a_receiver_enforces),
        cmocka_unit_test(test_qstring_escaping_and_unquoting),
        cmocka_unit_test(test_escaping_at_every_length_and_position),
        cmocka_unit_test(test_numbers_at_every_width),
        cmocka_unit_test(test_gzip_files_inflate_whole_or_not_at_all),
        cmocka_unit_test(test_journal_survives_a_cut_and_seals_whole_records),
        cmocka_unit_test(test_feed_pages_entries_and_archive_links),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

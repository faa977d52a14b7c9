/* common/store.h without a server: Redis URLs (the plain, Unix-socket and
 * Sentinel forms, credentials and options, and what is refused), and the
 * typed reading of replies, built here by hiredis's own reader from the
 * bytes a Redis would send. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "common/store.h"

/* The reply hiredis makes of RESP bytes, as the store hands it out. */
static store_reply *reply_n(const char *resp, size_t n)
{
    redisReader *rd = redisReaderCreate();
    void *r = NULL;
    assert_int_equal(redisReaderFeed(rd, resp, n), REDIS_OK);
    assert_int_equal(redisReaderGetReply(rd, &r), REDIS_OK);
    assert_non_null(r);
    redisReaderFree(rd);
    return (store_reply *)r;
}

static store_reply *reply(const char *resp) { return reply_n(resp, strlen(resp)); }

static void test_replies_are_read_by_type_and_never_past_their_end(void **st)
{
    (void)st;
    store_reply *s = reply_n("$5\r\nhe\0lo\r\n", 11), *n = reply("$-1\r\n"), *i = reply(":42\r\n"),
                *ok = reply("+OK\r\n"), *e = reply("-ERR CONFLICT\r\n");
    size_t len = 99;
    assert_int_equal(store_reply_type(s), STORE_STR);
    assert_memory_equal(store_reply_str(s, &len), "he\0lo", 5);
    assert_int_equal(len, 5); /* binary-safe */
    assert_true(store_reply_is(n, STORE_NIL));
    assert_null(store_reply_str(n, &len));
    assert_int_equal(len, 0);
    assert_int_equal(store_reply_int(i), 42);
    assert_int_equal(store_reply_int(s), 0); /* not an integer */
    assert_null(store_reply_str(i, NULL));
    assert_true(store_reply_is(ok, STORE_STATUS));
    assert_string_equal(store_reply_str(ok, NULL), "OK");
    assert_true(store_reply_is(e, STORE_ERR));
    assert_string_equal(store_reply_str(e, NULL), "ERR CONFLICT");
    /* NULL, the command that got no answer: nothing, never a crash */
    assert_int_equal(store_reply_type(NULL), STORE_NONE);
    assert_null(store_reply_str(NULL, NULL));
    assert_int_equal(store_reply_count(NULL), 0);
    assert_null(store_reply_at(NULL, 0));
    assert_null(store_reply_json(NULL));
    store_reply_free(NULL);
    store_reply *a = reply("*3\r\n$1\r\nx\r\n:7\r\n$-1\r\n");
    assert_int_equal(store_reply_count(a), 3);
    assert_string_equal(store_reply_at_str(a, 0, NULL), "x");
    assert_int_equal(store_reply_int(store_reply_at(a, 1)), 7);
    assert_null(store_reply_at_str(a, 2, NULL));
    assert_null(store_reply_at(a, 3)); /* past the end */
    assert_int_equal(store_reply_count(s), 0); /* a string is no array */
    store_reply *j = reply("$13\r\n{\"a\":[1,2,3]}\r\n"), *bad = reply("$3\r\n{no\r\n");
    json_t *v = store_reply_json(j);
    assert_int_equal(json_array_size(json_object_get(v, "a")), 3);
    json_decref(v);
    assert_null(store_reply_json(bad));
    assert_null(store_reply_json(i));
    store_reply *all[] = {s, n, i, ok, e, a, j, bad};
    for (size_t k = 0; k < sizeof all / sizeof *all; k++)
        store_reply_free(all[k]);
}

static void test_hashes_and_stream_entries(void **st)
{
    (void)st;
    /* HGETALL: field, value, field, value; a trailing field without a value is ignored */
    store_reply *h = reply("*5\r\n$6\r\nstatus\r\n$7\r\npending\r\n$7\r\nversion\r\n$1\r\n2\r\n$4\r\nlone\r\n");
    size_t len;
    assert_string_equal(store_hash_get(h, "version", &len), "2");
    assert_int_equal(len, 1);
    assert_string_equal(store_hash_get(h, "status", NULL), "pending");
    assert_null(store_hash_get(h, "lone", NULL));
    assert_null(store_hash_get(h, "absent", &len));
    const char *f, *v;
    assert_true(store_hash_pair(h, 1, &f, &v, &len));
    assert_string_equal(f, "version");
    assert_string_equal(v, "2");
    assert_false(store_hash_pair(h, 2, &f, &v, &len));
    store_reply_free(h);
    /* XREADGROUP: [[stream, [[id, [field, value...]], ...]]] */
    store_reply *x = reply("*1\r\n*2\r\n$1\r\ns\r\n*2\r\n"
                           "*2\r\n$3\r\n1-0\r\n*2\r\n$7\r\ntrigger\r\n$2\r\nt1\r\n"
                           "*2\r\n$3\r\n2-0\r\n*-1\r\n");
    const store_reply *es = store_stream_entries(x);
    assert_non_null(es);
    assert_int_equal(store_reply_count(es), 2);
    assert_string_equal(store_entry_id(es, 0), "1-0");
    assert_string_equal(store_entry_field(es, 0, "trigger"), "t1");
    assert_null(store_entry_field(es, 0, "other"));
    assert_string_equal(store_entry_id(es, 1), "2-0");
    assert_null(store_entry_field(es, 1, "trigger")); /* deleted entry: no fields */
    assert_null(store_entry_id(es, 2));
    store_reply_free(x);
    store_reply *none = reply("*-1\r\n"); /* BLOCK timed out */
    assert_null(store_stream_entries(none));
    store_reply_free(none);
}

static bool parse(const char *url, store_url *u) { return store_parse_url(url, strlen(url), u); }

static void test_plain_and_unix_urls_with_credentials_db_and_options(void **st)
{
    store_url u;
    assert_true(parse("redis://127.0.0.1:6379", &u));
    assert_int_equal(u.kind, STORE_URL_TCP);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_int_equal(u.min_replicas_acked, -1); /* the default: decided by what the master has */
    assert_int_equal(u.ack_timeout_ms, 1000);
    assert_true(parse("redis://:s3cret@redis.example:6380/2?min_replicas_acked=2&ack_timeout_ms=250", &u));
    assert_string_equal(u.host, "redis.example");
    assert_string_equal(u.password, "s3cret");
    assert_string_equal(u.user, "");
    assert_int_equal(u.db, 2);
    assert_int_equal(u.min_replicas_acked, 2);
    assert_int_equal(u.ack_timeout_ms, 250);
    assert_true(parse("redis://gw:pw@[::1]:6379", &u));
    assert_string_equal(u.host, "::1");
    assert_string_equal(u.user, "gw");
    assert_string_equal(u.password, "pw");
    assert_true(parse("redis://justapassword@h:1", &u)); /* one word: the password */
    assert_string_equal(u.password, "justapassword");
    assert_string_equal(u.user, "");
    assert_true(parse("unix:///run/redis.sock?db=3", &u));
    assert_int_equal(u.kind, STORE_URL_UNIX);
    assert_string_equal(u.path, "/run/redis.sock");
    assert_int_equal(u.db, 3);
}

static void test_sentinel_urls_name_every_sentinel_and_the_master(void **st)
{
    store_url u;
    assert_true(parse("redis+sentinel://10.0.0.1:26379,10.0.0.2:26380,[fd00::3]:26379/cdn-u", &u));
    assert_int_equal(u.kind, STORE_URL_SENTINEL);
    assert_int_equal(u.nsentinels, 3);
    assert_string_equal(u.sentinels[0].host, "10.0.0.1");
    assert_int_equal(u.sentinels[0].port, 26379);
    assert_string_equal(u.sentinels[1].host, "10.0.0.2");
    assert_int_equal(u.sentinels[1].port, 26380);
    assert_string_equal(u.sentinels[2].host, "fd00::3");
    assert_string_equal(u.master_name, "cdn-u");
    assert_true(parse("redis+sentinel://:datapw@s1:26379/m/4?sentinel_password=sentpw&min_replicas_acked=0", &u));
    assert_string_equal(u.password, "datapw");
    assert_string_equal(u.sentinel_password, "sentpw");
    assert_int_equal(u.db, 4);
    assert_int_equal(u.min_replicas_acked, 0);
}

static void test_malformed_urls_are_refused(void **st)
{
    const char *bad[] = {
        "", "redis://", "redis://host", "redis://host:", "redis://host:0", "redis://host:65536",
        "redis://host:63x9", "redis://:6379", "redis://h:1/x", "http://h:1", "unix://", "unix://relative.sock",
        "redis://h:1?db=1&nope=2", "redis://h:1?min_replicas_acked=65", "redis://h:1?ack_timeout_ms=0",
        "redis://h:1?db", "redis://user:@h:1", "redis+sentinel://s:1", "redis+sentinel://s:1/",
        "redis+sentinel:///m", "redis+sentinel://s:1,/m", "redis+sentinel://s:1,,s:2/m", "redis+sentinel://s/m",
        "redis+sentinel://s:1/m/x", "redis+sentinel://s:1/m m",
        "redis+sentinel://a:1,b:1,c:1,d:1,e:1,f:1,g:1,h:1,i:1/m", /* nine: more than STORE_MAX_SENTINELS */
        "redis://[::1:6379",
    };
    store_url u;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (parse(bad[i], &u))
            fail_msg("accepted %s", bad[i]);
    /* NUL inside, and longer than the bound */
    assert_false(store_parse_url("redis://h:1\0x", 13, &u));
    char big[5000];
    memset(big, 'a', sizeof big);
    memcpy(big, "redis://", 8);
    assert_false(store_parse_url(big, sizeof big, &u));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_and_unix_urls_with_credentials_db_and_options),
        cmocka_unit_test(test_sentinel_urls_name_every_sentinel_and_the_master),
        cmocka_unit_test(test_malformed_urls_are_refused),
        cmocka_unit_test(test_replies_are_read_by_type_and_never_past_their_end),
        cmocka_unit_test(test_hashes_and_stream_entries),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}

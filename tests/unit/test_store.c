/* Redis URLs (common/store.h): the plain, Unix-socket and Sentinel forms,
 * credentials and options, and what is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "common/store.h"

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
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}

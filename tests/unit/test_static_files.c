/* common/static_files: which names the status pages' directory serves, and as what. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "common/static_files.h"

static void test_plain_names_and_subdirectories_are_served(void **st)
{
    (void)st;
    static const char *const ok[] = {"index.html", "status.js", "vendor/hls.min.js", "a-b_c.1.css", "v/x/y.png"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_true(static_name_ok(ok[i]));
}

static void test_names_that_could_leave_the_directory_or_hide_files_are_not(void **st)
{
    (void)st;
    static const char *const bad[] = {"", "..", "../x", "a/../b", ".hidden", "a/.git/config", "/etc/passwd",
                                      "a//b", "a/", "%2e%2e/x", "a b", "a\\b", "x?y", "\xc3\xa9.js"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(static_name_ok(bad[i]));
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    assert_false(static_name_ok(longname)); /* more than 200 bytes */
}

static void test_media_types_follow_the_extension(void **st)
{
    (void)st;
    assert_string_equal(static_media_type("index.html"), "text/html; charset=utf-8");
    assert_string_equal(static_media_type("vendor/hls.min.js"), "text/javascript; charset=utf-8");
    assert_string_equal(static_media_type("status.css"), "text/css; charset=utf-8");
    assert_string_equal(static_media_type("hls.min.js.map"), "application/json");
    assert_string_equal(static_media_type("LICENSE"), "application/octet-stream");
    assert_string_equal(static_media_type("x.html.bak"), "application/octet-stream");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_names_and_subdirectories_are_served),
        cmocka_unit_test(test_names_that_could_leave_the_directory_or_hide_files_are_not),
        cmocka_unit_test(test_media_types_follow_the_extension),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The pure parts of listener TLS (common/tls.h): the SPKI pin form, SNI
 * name matching and who a client certificate says it is. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "common/tls.h"

static void test_spki_pins_in_curl_form_or_hex_are_read_and_anything_else_refused(void **st)
{
    (void)st;
    unsigned char k[32], want[32];
    for (int i = 0; i < 32; i++)
        want[i] = (unsigned char)i;
    /* base64 of bytes 0..31 */
    assert_true(tls_parse_spki("sha256//AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", k));
    assert_memory_equal(k, want, 32);
    assert_true(tls_parse_spki("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", k));
    assert_memory_equal(k, want, 32);
    assert_false(tls_parse_spki("sha256/AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", k));  /* one slash */
    assert_false(tls_parse_spki("sha1//AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", k));   /* another hash */
    assert_false(tls_parse_spki("sha256//AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==", k)); /* 31 bytes */
    assert_false(tls_parse_spki("sha256//AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd*h8=", k)); /* not base64 */
    assert_false(tls_parse_spki("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g", k));
    assert_false(tls_parse_spki("", k));
    assert_false(tls_parse_spki(NULL, k));
}

static void test_sni_names_match_exactly_or_by_one_wildcard_label(void **st)
{
    (void)st;
    assert_true(tls_name_matches("video.example.com", "video.example.com"));
    assert_false(tls_name_matches("video.example.com", "video.example.com.evil"));
    assert_true(tls_name_matches("*.example.com", "video.example.com"));
    assert_false(tls_name_matches("*.example.com", "example.com"));
    assert_false(tls_name_matches("*.example.com", "a.video.example.com")); /* one label only */
    assert_false(tls_name_matches("*.example.com", ".example.com"));
    assert_false(tls_name_matches("v*.example.com", "video.example.com")); /* only a whole leftmost label */
}

static void test_a_client_certificate_matches_only_what_is_configured_all_of_it(void **st)
{
    (void)st;
    tls_peer_cert got = {.present = true, .subject = "CN=dcdn,O=cdni-gateway test", .nsan = 2};
    strcpy(got.san[0], "dcdn.cdni.test");
    strcpy(got.san[1], "urn:cdni:dcdn");
    memset(got.spki, 7, 32);
    tls_peer_id by_san = {.san = "DCDN.cdni.test"}, by_uri = {.san = "urn:cdni:dcdn"},
                by_subject = {.subject = "CN=dcdn,O=cdni-gateway test"}, other = {.san = "other.cdni.test"},
                nothing = {0}, by_key = {.has_spki = true}, both = {.san = "dcdn.cdni.test", .has_spki = true};
    memset(by_key.spki, 7, 32);
    memset(both.spki, 8, 32);
    assert_true(tls_peer_matches(&by_san, &got));
    assert_true(tls_peer_matches(&by_uri, &got));
    assert_true(tls_peer_matches(&by_subject, &got));
    assert_true(tls_peer_matches(&by_key, &got));
    assert_false(tls_peer_matches(&other, &got));
    assert_false(tls_peer_matches(&nothing, &got)); /* naming nothing matches nobody */
    assert_false(tls_peer_matches(&both, &got));    /* the name fits, the key does not */
    assert_false(tls_peer_matches(NULL, &got));
    got.present = false;
    assert_false(tls_peer_matches(&by_san, &got));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spki_pins_in_curl_form_or_hex_are_read_and_anything_else_refused),
        cmocka_unit_test(test_sni_names_match_exactly_or_by_one_wildcard_label),
        cmocka_unit_test(test_a_client_certificate_matches_only_what_is_configured_all_of_it),
    };
    return cmocka_run_group_tests_name("tls", tests, NULL, NULL);
}

/* Session cookies (signing/cookie_auth.h): what a minted cookie opens,
 * what it does not, and how a Cookie header carrying several values of
 * the same name (another CDN's, a stale one) is read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "signing/cookie_auth.h"

#define NOW 1796400000LL

typedef struct {
    jwk ours, theirs;
    jwk_set keys; /* ours only */
} fixture;

static int setup(void **st)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || !jwk_generate_ec("k-ours", &f->ours) || !jwk_generate_oct("k-theirs", 32, &f->theirs))
        return -1;
    f->keys = (jwk_set){&f->ours, 1};
    *st = f;
    return 0;
}

static int teardown(void **st)
{
    fixture *f = *st;
    jwk_clear(&f->ours);
    jwk_clear(&f->theirs);
    free(f);
    return 0;
}

static char *header_with(const char *before, const char *token, const char *after)
{
    char *h = malloc(strlen(before) + strlen(token) + strlen(after) + 32);
    sprintf(h, "%s" CA_COOKIE_NAME "=%s%s", before, token, after);
    return h;
}

static void test_a_minted_cookie_opens_its_collection_with_its_claims(void **st)
{
    fixture *f = *st;
    char *tok = ca_mint(&f->ours, JWS_ES256, "dcdn-b", "acme/c/m1", NULL, "5e55", NOW, 600);
    assert_non_null(tok);
    char *h = header_with("theme=dark; ", tok, "; lang=en");
    json_t *claims = NULL;
    assert_int_equal(ca_check(&f->keys, "dcdn-b", h, "acme/c/m1", "192.0.2.7", NOW + 10, 0, &claims), CA_OK);
    assert_string_equal(json_string_value(json_object_get(claims, "ccid")), "acme/c/m1");
    assert_string_equal(json_string_value(json_object_get(claims, "sid")), "5e55");
    assert_string_equal(json_string_value(json_object_get(claims, "iss")), "dcdn-b");
    assert_string_equal(json_string_value(json_object_get(claims, "aud")), "dcdn-b");
    assert_int_equal(json_integer_value(json_object_get(claims, "exp")), NOW + 600);
    assert_null(json_object_get(claims, "cdniip")); /* not bound */
    json_decref(claims);
    free(h);
    free(tok);
}

static void test_expiry_collection_client_and_issuer_each_refuse(void **st)
{
    fixture *f = *st;
    char *tok = ca_mint(&f->ours, JWS_ES256, "dcdn-b", "acme/c/m1", "192.0.2.7", NULL, NOW, 60);
    char *h = header_with("", tok, "");
    json_t *claims = (json_t *)1;
    /* the skew is a leeway past exp, and no more */
    assert_int_equal(ca_check(&f->keys, "dcdn-b", h, "acme/c/m1", "192.0.2.7", NOW + 60 + 4, 5, NULL), CA_OK);
    assert_int_equal(ca_check(&f->keys, "dcdn-b", h, "acme/c/m1", "192.0.2.7", NOW + 60 + 5, 5, &claims),
                     CA_EXPIRED);
    assert_null(claims); /* nothing handed out on a refusal */
    assert_int_equal(ca_check(&f->keys, "dcdn-b", h, "other/c/m1", "192.0.2.7", NOW, 0, NULL), CA_OTHER_COLLECTION);
    assert_int_equal(ca_check(&f->keys, "dcdn-b", h, NULL, "192.0.2.7", NOW, 0, NULL), CA_OTHER_COLLECTION);
    assert_int_equal(ca_check(&f->keys, "dcdn-b", h, "acme/c/m1", "192.0.2.8", NOW, 0, NULL), CA_OTHER_CLIENT);
    assert_int_equal(ca_check(&f->keys, "dcdn-b", h, "acme/c/m1", NULL, NOW, 0, NULL), CA_OTHER_CLIENT);
    /* signed with our key but for another CDN id: not ours, taken as forged */
    assert_int_equal(ca_check(&f->keys, "ucdn-a", h, "acme/c/m1", "192.0.2.7", NOW, 0, NULL), CA_BAD_SIGNATURE);
    free(h);
    free(tok);
}

static void test_every_value_of_the_name_is_tried_and_the_most_telling_refusal_wins(void **st)
{
    fixture *f = *st;
    char *ours = ca_mint(&f->ours, JWS_ES256, "dcdn-b", "acme/c/m1", NULL, NULL, NOW, 600);
    char *foreign = ca_mint(&f->theirs, JWS_HS256, "ucdn-a", "acme/c/m1", NULL, NULL, NOW, 600);
    char *stale = ca_mint(&f->ours, JWS_ES256, "dcdn-b", "acme/c/m1", NULL, NULL, NOW - 3600, 600);
    char h[8192];
    /* the uCDN's cookie first (a jar that does not keep hosts apart), then ours */
    snprintf(h, sizeof h, CA_COOKIE_NAME "=%s; " CA_COOKIE_NAME "=%s", foreign, ours);
    assert_int_equal(ca_check(&f->keys, "dcdn-b", h, "acme/c/m1", NULL, NOW, 0, NULL), CA_OK);
    /* only the foreign one: it is not ours */
    snprintf(h, sizeof h, CA_COOKIE_NAME "=%s", foreign);
    assert_int_equal(ca_check(&f->keys, "dcdn-b", h, "acme/c/m1", NULL, NOW, 0, NULL), CA_BAD_SIGNATURE);
    /* foreign and a stale one of ours: "expired" says more than "forged" */
    snprintf(h, sizeof h, CA_COOKIE_NAME "=%s; " CA_COOKIE_NAME "=%s", foreign, stale);
    assert_int_equal(ca_check(&f->keys, "dcdn-b", h, "acme/c/m1", NULL, NOW, 0, NULL), CA_EXPIRED);
    /* a stale one of ours, then a good one */
    snprintf(h, sizeof h, CA_COOKIE_NAME "=%s;" CA_COOKIE_NAME "=%s", stale, ours);
    assert_int_equal(ca_check(&f->keys, "dcdn-b", h, "acme/c/m1", NULL, NOW, 0, NULL), CA_OK);
    /* at most 8 values are tried: a ninth is not reached */
    size_t n = 0;
    for (int i = 0; i < 8; i++)
        n += (size_t)snprintf(h + n, sizeof h - n, CA_COOKIE_NAME "=%s; ", foreign);
    snprintf(h + n, sizeof h - n, CA_COOKIE_NAME "=%s", ours);
    assert_int_equal(ca_check(&f->keys, "dcdn-b", h, "acme/c/m1", NULL, NOW, 0, NULL), CA_BAD_SIGNATURE);
    free(ours);
    free(foreign);
    free(stale);
}

static void test_only_the_exact_name_counts(void **st)
{
    fixture *f = *st;
    char *ours = ca_mint(&f->ours, JWS_ES256, "dcdn-b", "acme/c/m1", NULL, NULL, NOW, 600);
    char h[4096];
    assert_int_equal(ca_check(&f->keys, "dcdn-b", NULL, "acme/c/m1", NULL, NOW, 0, NULL), CA_ABSENT);
    assert_int_equal(ca_check(&f->keys, "dcdn-b", "a=b; c=d", "acme/c/m1", NULL, NOW, 0, NULL), CA_ABSENT);
    snprintf(h, sizeof h, "X" CA_COOKIE_NAME "=%s", ours); /* another cookie whose name ends like ours */
    assert_int_equal(ca_check(&f->keys, "dcdn-b", h, "acme/c/m1", NULL, NOW, 0, NULL), CA_ABSENT);
    snprintf(h, sizeof h, CA_COOKIE_NAME "X=%s", ours);
    assert_int_equal(ca_check(&f->keys, "dcdn-b", h, "acme/c/m1", NULL, NOW, 0, NULL), CA_ABSENT);
    assert_int_equal(ca_check(&f->keys, "dcdn-b", CA_COOKIE_NAME "=", "acme/c/m1", NULL, NOW, 0, NULL), CA_ABSENT);
    snprintf(h, sizeof h, "%s", ours); /* a bare value, no name */
    assert_int_equal(ca_check(&f->keys, "dcdn-b", h, "acme/c/m1", NULL, NOW, 0, NULL), CA_ABSENT);
    free(ours);
}

static void test_set_cookie_carries_the_attributes_and_fits_or_fails(void **st)
{
    char out[256];
    assert_true(ca_set_cookie("tok", true, 300, out, sizeof out));
    assert_string_equal(out, CA_COOKIE_NAME "=tok; Path=/; Max-Age=300; HttpOnly; SameSite=Lax; Secure");
    assert_true(ca_set_cookie("tok", false, -5, out, sizeof out));
    assert_string_equal(out, CA_COOKIE_NAME "=tok; Path=/; Max-Age=0; HttpOnly; SameSite=Lax");
    assert_false(ca_set_cookie("tok", true, 300, out, 20)); /* cut short: refused, not truncated */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_minted_cookie_opens_its_collection_with_its_claims, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_collection_client_and_issuer_each_refuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_value_of_the_name_is_tried_and_the_most_telling_refusal_wins,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_only_the_exact_name_counts, setup, teardown),
        cmocka_unit_test(test_set_cookie_carries_the_attributes_and_fits_or_fails),
    };
    return cmocka_run_group_tests_name("cookie_auth", tests, NULL, NULL);
}

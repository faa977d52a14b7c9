/* dcdn/cache without a network or a Redis: objects restored from the files
 * of a previous run, looked up, selected by the upstream their heads name,
 * evicted by greedy-dual-size-frequency, purged and invalidated with
 * tombstones that hold across a restart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/metrics.h"
#include "dcdn/cache.h"

static char dir[64];
static metrics *reg;

/* An object file as the cache writes it: the head line, then the body. */
static void put_file(const char *key, const char *up, const char *ccid, size_t size, long long stored_at)
{
    char sub[128], path[256];
    snprintf(sub, sizeof sub, "%s/ab", dir);
    mkdir(sub, 0700);
    snprintf(path, sizeof path, "%s/%s-%zu", sub, up ? up : "none", size);
    for (char *p = path + strlen(sub) + 1; *p; p++)
        if (*p == '/')
            *p = '_';
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "CDNIGW-OBJ1 {\"key\":\"%s\",\"status\":200,\"content_type\":\"video/mp2t\",\"ttl\":3600,"
               "\"stored_at\":%lld,\"initial_age\":0,\"stale_if_error\":-1,\"ccid\":\"%s\"%s%s%s}\n",
            key, stored_at, ccid, up ? ",\"up\":\"" : "", up ? up : "", up ? "\"" : "");
    for (size_t i = 0; i < size; i++)
        fputc('x', f);
    fclose(f);
}

static cache *open_cache(uint64_t max_objects, double high, double low)
{
    cache_conf conf = {.dir = dir, .disk_bytes = 1u << 30, .disk_objects = max_objects, .max_object_bytes = 1u << 30,
                       .bypass_max_bytes = 1u << 20, .high_water = high, .low_water = low, .threads = 1,
                       .connect_timeout_ms = 100, .stall_timeout_s = 1, .timeout_s = 1, .metrics = reg};
    cache *c = cache_open(&conf);
    assert_non_null(c);
    return c;
}

static bool has(cache *c, const char *key, long long now, bool *fresh)
{
    cache_view v;
    cache_obj *o = cache_lookup(c, key, strlen(key), now, &v);
    if (o) {
        *fresh = v.fresh;
        cache_blob_unref(v.mem);
        cache_obj_unref(o);
    }
    return o != NULL;
}

static int setup(void **st)
{
    (void)st;
    snprintf(dir, sizeof dir, "/tmp/cdni-test-cache-XXXXXX");
    assert_non_null(mkdtemp(dir));
    reg = metrics_new();
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    metrics_free(reg);
    return system(cmd) == 0 ? 0 : -1;
}

static bool of_up(void *ud, const char *key, const char *up) { return up && strcmp(up, ud) == 0; }
static bool no_up(void *ud, const char *key, const char *up) { return up == NULL; }

static void test_restored_objects_are_found_and_selected_by_upstream(void **st)
{
    (void)st;
    long long now = 1764800000;
    put_file("a.example/v/1.ts", "ucdn-a", "m1", 100, now - 10);
    put_file("a.example/v/2.ts", "ucdn-a", "m1", 200, now - 10);
    put_file("b.example/v/1.ts", "ucdn-b", "m1", 300, now - 10);
    put_file("c.example/v/1.ts", NULL, "m1", 400, now - 10); /* stored before heads named their upstream */
    cache *c = open_cache(0, 0.9, 0.8);
    cache_stats s;
    cache_get_stats(c, &s);
    assert_int_equal(s.objects, 4);
    assert_int_equal(s.bytes, 1000);
    bool fresh = false;
    assert_true(has(c, "a.example/v/2.ts", now, &fresh));
    assert_true(fresh);
    assert_true(has(c, "a.example/v/2.ts", now + 7200, &fresh)); /* past its ttl: there, not fresh */
    assert_false(fresh);
    assert_false(has(c, "a.example/v/3.ts", now, &fresh));
    char **k;
    size_t n = cache_keys(c, of_up, "ucdn-a", &k);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        assert_true(strncmp(k[i], "a.example/", 10) == 0);
        free(k[i]);
    }
    free(k);
    n = cache_keys(c, no_up, NULL, &k);
    assert_int_equal(n, 1);
    assert_string_equal(k[0], "c.example/v/1.ts");
    free(k[0]);
    free(k);
    n = cache_keys(c, NULL, NULL, &k);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++)
        free(k[i]);
    free(k);
    /* no Redis: the index cannot be asked (and nothing is fetched) */
    cache_free(c);
}

static void test_purge_and_invalidate_hold_across_a_restart(void **st)
{
    (void)st;
    long long now = 1764800000;
    cache *c = open_cache(0, 0.9, 0.8);
    const char *purge[] = {"a.example/v/1.ts", "a.example/v/9.ts"}, *inval[] = {"b.example/v/1.ts"};
    assert_int_equal(cache_purge(c, purge, 2, now), 1); /* the one held */
    assert_int_equal(cache_invalidate(c, inval, 1, now), 1);
    bool fresh = true;
    assert_false(has(c, "a.example/v/1.ts", now, &fresh));
    assert_true(has(c, "b.example/v/1.ts", now, &fresh));
    assert_false(fresh); /* revalidated before it is served again */
    cache_free(c);
    c = open_cache(0, 0.9, 0.8);
    assert_false(has(c, "a.example/v/1.ts", now, &fresh));
    assert_true(has(c, "b.example/v/1.ts", now, &fresh));
    assert_false(fresh); /* the tombstone was applied again */
    assert_true(has(c, "a.example/v/2.ts", now, &fresh));
    assert_true(fresh);
    cache_stats s;
    cache_get_stats(c, &s);
    assert_int_equal(s.objects, 3);
    cache_free(c);
}

static size_t files_in(const char *sub)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, sub);
    DIR *d = opendir(p);
    size_t n = 0;
    for (struct dirent *de; d && (de = readdir(d));)
        n += de->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static void test_eviction_takes_the_largest_first_down_to_the_low_water_mark(void **st)
{
    (void)st;
    long long now = 1764800000;
    /* three objects left by the tests above (100, 200, 400 bytes); add two large ones */
    put_file("d.example/v/big.ts", "ucdn-d", "m2", 64 * 1024, now);
    put_file("e.example/v/bigger.ts", "ucdn-e", "m2", 256 * 1024, now);
    assert_int_equal(files_in("ab"), 5);
    /* five objects, room for four: over the high water mark (3.6), down to the low (2) */
    cache *c = open_cache(4, 0.9, 0.5);
    cache_stats s;
    cache_get_stats(c, &s);
    assert_int_equal(s.objects, 2);
    bool fresh;
    /* priority = L + (hits + 1) / KiB: the largest go first, then the next */
    assert_false(has(c, "e.example/v/bigger.ts", now, &fresh));
    assert_false(has(c, "d.example/v/big.ts", now, &fresh));
    /* of the three small ones (each under a KiB: equal priority) two stay */
    int small = has(c, "a.example/v/2.ts", now, &fresh) + has(c, "b.example/v/1.ts", now, &fresh) +
                has(c, "c.example/v/1.ts", now, &fresh);
    assert_int_equal(small, 2);
    assert_int_equal(files_in("ab"), 2); /* evicted objects' files are gone */
    cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restored_objects_are_found_and_selected_by_upstream),
        cmocka_unit_test(test_purge_and_invalidate_hold_across_a_restart),
        cmocka_unit_test(test_eviction_takes_the_largest_first_down_to_the_low_water_mark),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

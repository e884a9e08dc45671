/* Unit tests for ac_util: ids, UTF-8, base64url, constant-time compare. */
#include "unit.h"
#include "ac_util.h"

#include <string.h>

static void test_ids(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, NULL);
    const char *a = ac_id_new(p, "thread"), *b = ac_id_new(p, "thread");
    assert_int_equal(strlen(a), strlen("thread_") + 24);
    assert_string_not_equal(a, b);
    assert_true(ac_id_valid(a, "thread"));
    assert_false(ac_id_valid(a, "msg"));
    assert_false(ac_id_valid("thread_", "thread"));
    assert_false(ac_id_valid("thread_../x", "thread"));
    assert_false(ac_id_valid("thread_a'b", "thread"));
    assert_false(ac_id_valid("thread_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                             "thread"));
    apr_pool_destroy(p);
}

static void test_utf8(void **state)
{
    assert_true(ac_utf8_valid("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 16));
    assert_false(ac_utf8_valid("\xc3", 1));            /* truncated */
    assert_false(ac_utf8_valid("\xc0\xaf", 2));        /* overlong */
    assert_false(ac_utf8_valid("\xed\xa0\x80", 3));    /* surrogate */
    assert_false(ac_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(ac_utf8_valid("\xff", 1));
    assert_int_equal(ac_utf8_len("h\xc3\xa9"), 2);
}

static void test_truncate(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, NULL);
    assert_string_equal(ac_utf8_truncate(p, "h\xc3\xa9llo", 2), "h\xc3\xa9");
    assert_string_equal(ac_utf8_truncate(p, "abc", 10), "abc");
    apr_pool_destroy(p);
}

static void test_base64url(void **state)
{
    apr_pool_t *p;
    apr_size_t n;
    apr_pool_create(&p, NULL);
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    for (int i = 0; i < 7; i++) {
        char *e = ac_base64url_encode(p, (const unsigned char *)in[i], strlen(in[i]));
        unsigned char *d = ac_base64url_decode(p, e, &n);
        assert_non_null(d);
        assert_int_equal(n, strlen(in[i]));
        assert_memory_equal(d, in[i], n);
    }
    assert_string_equal(ac_base64url_encode(p, (const unsigned char *)"\xfb\xff", 2), "-_8");
    assert_null(ac_base64url_decode(p, "ab$d", &n));
    assert_null(ac_base64url_decode(p, "a", &n));
    apr_pool_destroy(p);
}

static void test_ct_equal(void **state)
{
    assert_true(ac_ct_equal("secret", 6, "secret", 6));
    assert_false(ac_ct_equal("secret", 6, "secreT", 6));
    assert_false(ac_ct_equal("secret", 6, "secret1", 7));
    assert_false(ac_ct_equal("", 0, "a", 1));
    assert_true(ac_ct_equal("", 0, "", 0));
}

static void test_rfc3339(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, NULL);
    /* 2026-11-21T15:49:33.123Z */
    apr_time_t t = apr_time_from_sec(1795276173) + 123456;
    assert_string_equal(ac_time_rfc3339(p, t), "2026-11-21T15:49:33.123Z");
    assert_int_equal(ac_time_parse_rfc3339("2026-11-21T15:49:33.123Z"), t - 456);
    assert_int_equal(ac_time_parse_rfc3339("2026-11-21T15:49:33Z"), apr_time_from_sec(1795276173));
    assert_int_equal(ac_time_parse_rfc3339("2026-11-21 15:49:33Z"), 0);
    assert_int_equal(ac_time_parse_rfc3339("2026-11-21T15:49:33.1+01:00"), 0);
    apr_pool_destroy(p);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_ids),     cmocka_unit_test(test_utf8),
    cmocka_unit_test(test_truncate), cmocka_unit_test(test_base64url),
    cmocka_unit_test(test_ct_equal), cmocka_unit_test(test_rfc3339),
};
AC_UNIT_MAIN(tests)

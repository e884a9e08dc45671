/* Unit tests for ac_cosmos_auth: the master-key signature must match, byte for byte, the
 * Authorization header the official @azure/cosmos SDK computes (cosmos_vectors.h, generated
 * by gen-cosmos-vectors.js), and a malformed account key must be rejected. */
#include "unit.h"
#include "ac_cosmos_auth.h"
#include "cosmos_vectors.h"

#include <string.h>

static void test_sdk_vectors(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, NULL);
    for (size_t i = 0; i < sizeof(cosmos_vectors) / sizeof(cosmos_vectors[0]); i++) {
        const struct cosmos_vector *v = &cosmos_vectors[i];
        apr_size_t len = 0;
        unsigned char *key = ac_cosmos_key_decode(p, v->key_b64, &len);
        assert_non_null(key);
        const char *got = ac_cosmos_auth_master(p, key, len, v->verb, v->resource_type,
                                                v->resource_link, v->date);
        assert_non_null(got);
        if (strcmp(got, v->expected) != 0) {
            print_error("vector %zu (%s %s '%s'): got %s want %s\n", i, v->verb, v->resource_type,
                        v->resource_link, got, v->expected);
        }
        assert_string_equal(got, v->expected);
    }
    apr_pool_destroy(p);
}

static void test_key_lengths(void **state)
{
    apr_pool_t *p;
    apr_size_t len = 0;
    apr_pool_create(&p, NULL);
    /* The emulator key decodes to 64 bytes. */
    assert_non_null(ac_cosmos_key_decode(p, cosmos_vectors[0].key_b64, &len));
    assert_int_equal(len, 64);
    assert_non_null(ac_cosmos_key_decode(p, "YWJj", &len)); /* "abc" */
    assert_int_equal(len, 3);
    assert_memory_equal(ac_cosmos_key_decode(p, "YWI=", &len), "ab", 2);
    assert_int_equal(len, 2);
    apr_pool_destroy(p);
}

static void test_invalid_keys(void **state)
{
    apr_pool_t *p;
    apr_size_t len = 0;
    apr_pool_create(&p, NULL);
    assert_null(ac_cosmos_key_decode(p, "", &len));
    assert_null(ac_cosmos_key_decode(p, "abc", &len));          /* length not a multiple of 4 */
    assert_null(ac_cosmos_key_decode(p, "not base64!!", &len)); /* bad characters */
    assert_null(ac_cosmos_key_decode(p, "YW J", &len));         /* space */
    assert_null(ac_cosmos_key_decode(p, "YWJj\n", &len));       /* trailing newline (from a file) */
    assert_null(ac_cosmos_key_decode(p, "====", &len));         /* padding only */
    assert_null(ac_cosmos_key_decode(p, "=YWJ", &len));         /* padding first */
    assert_null(ac_cosmos_key_decode(p, "YW-_", &len));         /* base64url, not base64 */
    apr_pool_destroy(p);
}

/* A wrong key or a one-character change in any input changes the signature. */
static void test_inputs_matter(void **state)
{
    apr_pool_t *p;
    apr_size_t len = 0;
    apr_pool_create(&p, NULL);
    const struct cosmos_vector *v = &cosmos_vectors[0];
    unsigned char *key = ac_cosmos_key_decode(p, v->key_b64, &len);
    const char *base =
        ac_cosmos_auth_master(p, key, len, v->verb, v->resource_type, v->resource_link, v->date);
    assert_string_equal(base, v->expected);
    /* verb and resource type are case-insensitive (lower-cased), the link is not */
    assert_string_equal(
        ac_cosmos_auth_master(p, key, len, "get", "DOCS", v->resource_link, v->date), base);
    assert_string_not_equal(ac_cosmos_auth_master(p, key, len, v->verb, v->resource_type,
                                                  "DBS/agentchat/colls/threads/docs/thread_abc123",
                                                  v->date),
                            base);
    assert_string_not_equal(
        ac_cosmos_auth_master(p, key, len, "POST", v->resource_type, v->resource_link, v->date),
        base);
    assert_string_not_equal(ac_cosmos_auth_master(p, key, len, v->verb, v->resource_type,
                                                  v->resource_link,
                                                  "Sat, 21 Nov 2026 15:49:34 GMT"),
                            base);
    key[0] ^= 1;
    assert_string_not_equal(
        ac_cosmos_auth_master(p, key, len, v->verb, v->resource_type, v->resource_link, v->date),
        base);
    apr_pool_destroy(p);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_sdk_vectors),
    cmocka_unit_test(test_key_lengths),
    cmocka_unit_test(test_invalid_keys),
    cmocka_unit_test(test_inputs_matter),
};
AC_UNIT_MAIN(tests)

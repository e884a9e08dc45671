/* Unit tests for the process-wide tool registry: copies, lookups, duplicate
 * and invalid names, the 64-tool cap, and reset when the config pool goes. */
#include "unit.h"
#include "ac_json.h"
#include "ac_tool_registry.h"

#include <apr_strings.h>
#include <string.h>

static int calls;

static apr_status_t echo_call(const ac_tool_t *tool, ac_tool_ctx_t *ctx, json_t *args,
                              json_t **result, const char **error)
{
    calls++;
    *result = ac_json_object(ctx->pool);
    ac_json_set_str(*result, "baton", tool->baton);
    json_object_set(*result, "args", args);
    return APR_SUCCESS;
}

static void test_add_find_call(void **state)
{
    apr_pool_t *pconf, *p;
    char name[16] = "reverse_text", desc[32] = "Reverse a text";
    ac_tool_t t = {name, desc, "{\"type\":\"object\"}", echo_call, "baton-1"};
    ac_tool_ctx_t ctx;
    const ac_tool_t *found;
    json_t *res, *args;
    const char *err = NULL;

    apr_pool_create(&pconf, NULL);
    apr_pool_create(&p, NULL);
    ac_tool_registry_init(pconf);
    assert_int_equal(ac_tool_registry_add(&t), APR_SUCCESS);
    /* the registry holds copies: the caller's buffers may change or go */
    strcpy(name, "changed");
    strcpy(desc, "changed");
    found = ac_tool_registry_find("reverse_text");
    assert_non_null(found);
    assert_ptr_not_equal(found, &t);
    assert_string_equal(found->name, "reverse_text");
    assert_string_equal(found->description, "Reverse a text");
    assert_string_equal(found->parameters_json, "{\"type\":\"object\"}");
    assert_null(ac_tool_registry_find("changed"));
    assert_null(ac_tool_registry_find("REVERSE_TEXT"));
    assert_null(ac_tool_registry_find(NULL));
    ctx.pool = p;
    ctx.timeout = 0;
    ctx.http = NULL;
    args = ac_json_parse(p, "{\"text\":\"abc\"}", 14, NULL);
    assert_int_equal(found->call(found, &ctx, args, &res, &err), APR_SUCCESS);
    assert_int_equal(calls, 1);
    assert_string_equal(ac_json_dump(p, res),
                        "{\"baton\":\"baton-1\",\"args\":{\"text\":\"abc\"}}");
    apr_pool_destroy(p);
    apr_pool_destroy(pconf);
}

static void test_rejects(void **state)
{
    apr_pool_t *pconf;
    ac_tool_t t = {"dup", NULL, NULL, echo_call, NULL};
    ac_tool_t bad = t;

    apr_pool_create(&pconf, NULL);
    ac_tool_registry_init(pconf);
    assert_int_equal(ac_tool_registry_add(&t), APR_SUCCESS);
    assert_int_equal(ac_tool_registry_add(&t), APR_EEXIST);
    /* NULL description and schema get harmless defaults */
    assert_string_equal(ac_tool_registry_find("dup")->description, "");
    assert_string_equal(ac_tool_registry_find("dup")->parameters_json,
                        "{\"type\":\"object\",\"properties\":{}}");
    bad.name = "has space";
    assert_int_equal(ac_tool_registry_add(&bad), APR_EINVAL);
    bad.name = "";
    assert_int_equal(ac_tool_registry_add(&bad), APR_EINVAL);
    bad.name = NULL;
    assert_int_equal(ac_tool_registry_add(&bad), APR_EINVAL);
    bad.name = "nocall";
    bad.call = NULL;
    assert_int_equal(ac_tool_registry_add(&bad), APR_EINVAL);
    bad.call = echo_call;
    bad.parameters_json = "[1]";
    assert_int_equal(ac_tool_registry_add(&bad), APR_EINVAL);
    bad.parameters_json = "{\"type\":";
    assert_int_equal(ac_tool_registry_add(&bad), APR_EINVAL);
    assert_int_equal(ac_tool_registry_add(NULL), APR_EINVAL);
    assert_null(ac_tool_registry_find("nocall"));
    apr_pool_destroy(pconf);
}

static void test_cap_and_order(void **state)
{
    apr_pool_t *pconf, *p;
    ac_tool_t t = {NULL, "d", NULL, echo_call, NULL};
    apr_array_header_t *all;
    int i;

    apr_pool_create(&pconf, NULL);
    apr_pool_create(&p, NULL);
    ac_tool_registry_init(pconf);
    assert_int_equal(ac_tool_registry_all(p)->nelts, 0);
    for (i = 0; i < AC_TOOL_REGISTRY_MAX; i++) {
        t.name = apr_psprintf(p, "tool_%02d", i);
        assert_int_equal(ac_tool_registry_add(&t), APR_SUCCESS);
    }
    t.name = "one_too_many";
    assert_int_equal(ac_tool_registry_add(&t), APR_ENOSPC);
    t.name = "tool_00";
    assert_int_equal(ac_tool_registry_add(&t), APR_EEXIST);
    all = ac_tool_registry_all(p);
    assert_int_equal(all->nelts, AC_TOOL_REGISTRY_MAX);
    for (i = 0; i < all->nelts; i++) {
        assert_string_equal(APR_ARRAY_IDX(all, i, const ac_tool_t *)->name,
                            apr_psprintf(p, "tool_%02d", i));
    }
    assert_non_null(ac_tool_registry_find("tool_63"));
    apr_pool_destroy(p);
    apr_pool_destroy(pconf);
}

static void test_reset_with_pool(void **state)
{
    apr_pool_t *pconf, *p2;
    ac_tool_t t = {"survivor", NULL, NULL, echo_call, NULL};

    apr_pool_create(&pconf, NULL);
    ac_tool_registry_init(pconf);
    assert_int_equal(ac_tool_registry_add(&t), APR_SUCCESS);
    /* a restart clears pconf: the registry forgets and refuses until re-init */
    apr_pool_clear(pconf);
    assert_null(ac_tool_registry_find("survivor"));
    assert_int_equal(ac_tool_registry_add(&t), APR_EINIT);
    ac_tool_registry_init(pconf);
    assert_null(ac_tool_registry_find("survivor"));
    assert_int_equal(ac_tool_registry_add(&t), APR_SUCCESS);
    /* init again with another pool: starts empty, the old pool's cleanup is gone */
    apr_pool_create(&p2, NULL);
    ac_tool_registry_init(p2);
    assert_null(ac_tool_registry_find("survivor"));
    assert_int_equal(ac_tool_registry_add(&t), APR_SUCCESS);
    apr_pool_destroy(pconf);
    assert_non_null(ac_tool_registry_find("survivor"));
    apr_pool_destroy(p2);
    assert_null(ac_tool_registry_find("survivor"));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_add_find_call),
    cmocka_unit_test(test_rejects),
    cmocka_unit_test(test_cap_and_order),
    cmocka_unit_test(test_reset_with_pool),
};
AC_UNIT_MAIN(tests)

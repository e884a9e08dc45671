/* Unit tests for the calculate tool: grammar, functions, errors a model would
 * see, limits against hostile input, a bounded fuzz loop and the JSON call. */
#include "unit.h"
#include "ac_json.h"
#include "ac_util.h"
#include "tools/ac_tool_calculate.h"

#include <apr_strings.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int setup(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, NULL);
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    apr_pool_destroy(*state);
    return 0;
}

static double calc_ok(apr_pool_t *p, const char *expr)
{
    const char *err = "unset";
    double v = -12345;

    if (ac_calc_eval(expr, &v, &err, p) != APR_SUCCESS) {
        fail_msg("'%s' failed: %s", expr, err);
    }
    assert_null(err);
    assert_true(isfinite(v));
    return v;
}

static void calc_err(apr_pool_t *p, const char *expr, const char *want)
{
    const char *err = NULL;
    double v = 1;

    if (ac_calc_eval(expr, &v, &err, p) != APR_EINVAL) {
        fail_msg("'%.60s' evaluated to %g, want error '%s'", expr ? expr : "(null)", v, want);
    }
    assert_non_null(err);
    if (!strstr(err, want)) {
        fail_msg("'%s': got error '%s', want '%s'", expr, err, want);
    }
}

#define assert_calc(p, expr, want) assert_float_equal(calc_ok(p, expr), want, 1e-12)

static void test_precedence(void **state)
{
    apr_pool_t *p = *state;

    assert_calc(p, "1 + 2 * 3", 7);
    assert_calc(p, "(1 + 2) * 3", 9);
    assert_calc(p, "2 * 3 ^ 2", 18);
    assert_calc(p, "2 * 3 % 4", 2);
    assert_calc(p, "1 + 10 % 4", 3);
    assert_calc(p, "85 * 0.15", 12.75);
    assert_calc(p, "2 + 3 * (4 - 1) / 9", 3);
}

static void test_associativity(void **state)
{
    apr_pool_t *p = *state;

    assert_calc(p, "10 - 4 - 3", 3);
    assert_calc(p, "1 - 2 + 3", 2);
    assert_calc(p, "100 / 10 / 5", 2);
    assert_calc(p, "2 ^ 3 ^ 2", 512); /* right-associative */
    assert_calc(p, "(2 ^ 3) ^ 2", 64);
    assert_calc(p, "2 ^ 2 ^ -1", sqrt(2.0)); /* exponent may carry a sign */
    assert_calc(p, "17 % 5 % 3", 2);
}

static void test_unary(void **state)
{
    apr_pool_t *p = *state;

    assert_calc(p, "-2 ^ 2", -4); /* power binds tighter than the sign */
    assert_calc(p, "(-2) ^ 2", 4);
    assert_calc(p, "2 ^ -1", 0.5);
    assert_calc(p, "-3 * -3", 9);
    assert_calc(p, "--3", 3);
    assert_calc(p, "+5", 5);
    assert_calc(p, "-+-4", 4);
    assert_calc(p, "2 - -2", 4);
    assert_calc(p, "-(1 + 2)", -3);
    assert_calc(p, "-7 % 3", -1); /* remainder keeps the dividend's sign */
    /* no negative zero leaks out */
    double v = calc_ok(p, "-0");
    assert_false(signbit(v));
    assert_false(signbit(calc_ok(p, "0 * -1")));
}

static void test_numbers_and_spelling(void **state)
{
    apr_pool_t *p = *state;

    assert_calc(p, ".5 + .25", 0.75);
    assert_calc(p, "1e3", 1000);
    assert_calc(p, "1.5E-2", 0.015);
    assert_calc(p, "2e+2", 200);
    assert_calc(p, "2.", 2);
    assert_calc(p, "007", 7);
    assert_calc(p, " \t1 +\n 2\r\n", 3);
    assert_calc(p, "6 \xc3\x97 7", 42);    /* × */
    assert_calc(p, "1 \xc3\xb7 4", 0.25);  /* ÷ */
    assert_calc(p, "5 \xe2\x88\x92 3", 2); /* − U+2212 */
    assert_calc(p, "2**10", 1024);
    assert_calc(p, "1e-400", 0); /* underflow is not an error */
    assert_float_equal(calc_ok(p, "0.1 + 0.2"), 0.3, 1e-15);
}

static void test_functions(void **state)
{
    apr_pool_t *p = *state;

    assert_calc(p, "sqrt(16)", 4);
    assert_calc(p, "abs(-3.5)", 3.5);
    assert_calc(p, "round(2.5)", 3);
    assert_calc(p, "round(-2.5)", -3);
    assert_calc(p, "round(2.4)", 2);
    assert_calc(p, "floor(-1.5)", -2);
    assert_calc(p, "ceil(1.2)", 2);
    assert_calc(p, "min(3, 1, 2)", 1);
    assert_calc(p, "max(5)", 5);
    assert_calc(p, "max(1, -2, 10, 3)", 10);
    assert_calc(p, "min(-1, -7)", -7);
    assert_calc(p, "ln(e)", 1);
    assert_calc(p, "log(1000)", 3);
    assert_calc(p, "log(8, 2)", 3);
    assert_calc(p, "exp(0)", 1);
    assert_calc(p, "sin(pi / 2)", 1);
    assert_calc(p, "cos(0)", 1);
    assert_calc(p, "tan(0)", 0);
    assert_calc(p, "cos(pi)", -1);
    assert_calc(p, "SQRT(4) + Max(1, 2)", 4);
    assert_calc(p, "sqrt(abs(-16)) + max(1, min(2, 3))", 6);
    assert_calc(p, "max(1 + 2, 2 * 2, (5))", 5);
    assert_calc(p, "-sqrt(4) ^ 2", -4);
}

static void test_constants(void **state)
{
    apr_pool_t *p = *state;

    assert_calc(p, "pi", 3.14159265358979323846);
    assert_calc(p, "PI * 2", 2 * 3.14159265358979323846);
    assert_calc(p, "e", 2.71828182845904523536);
    assert_calc(p, "\xcf\x80", 3.14159265358979323846); /* π */
    assert_calc(p, "e ^ 2", exp(2.0));
    calc_err(p, "2pi", "unexpected 'pi' at position 2"); /* no implicit multiplication */
    calc_err(p, "pi(2)", "unknown function 'pi'");
}

static void test_arithmetic_errors(void **state)
{
    apr_pool_t *p = *state;

    calc_err(p, "1/0", "division by zero at position 2");
    calc_err(p, "1 / (2 - 2)", "division by zero at position 3");
    calc_err(p, "5 % 0", "modulo by zero at position 3");
    calc_err(p, "0 ^ -1", "division by zero");
    calc_err(p, "10 ^ 400", "result is not finite (overflow)");
    calc_err(p, "1e308 * 10", "result is not finite (overflow)");
    calc_err(p, "exp(1000)", "result is not finite (overflow)");
    calc_err(p, "1e999", "number too large at position 1");
    calc_err(p, "sqrt(-1)", "sqrt of a negative number");
    calc_err(p, "log(0)", "log of non-positive number");
    calc_err(p, "log(-5)", "log of non-positive number");
    calc_err(p, "ln(-1)", "ln of non-positive number");
    calc_err(p, "log(8, 1)", "log base must be positive and not 1");
    calc_err(p, "(-8) ^ (1/3)", "fractional power of a negative number");
}

static void test_syntax_errors(void **state)
{
    apr_pool_t *p = *state;

    calc_err(p, "", "empty expression");
    calc_err(p, "  \t\n", "empty expression");
    calc_err(p, "2 #", "unexpected character '#' at position 3");
    calc_err(p, "1\xc3\x97#", "unexpected character '#' at position 3"); /* counts characters */
    calc_err(p, "3 $ 4", "unexpected character '$' at position 3");
    calc_err(p, "caf\xc3\xa9", "unexpected character '\xc3\xa9' at position 4");
    calc_err(p, "1 + \x01", "unexpected byte 0x01 at position 5");
    calc_err(p, "\xff", "unexpected byte 0xFF at position 1");
    calc_err(p, "\xc3", "unexpected byte 0xC3 at position 1"); /* truncated sequence */
    calc_err(p, "foo(1)", "unknown function 'foo' at position 1");
    calc_err(p, "x + 1", "unknown name 'x' at position 1");
    calc_err(p, "sqrt 4", "function 'sqrt' needs parentheses");
    calc_err(p, "(1 + 2", "missing closing parenthesis for '(' at position 1");
    calc_err(p, "2 * sqrt(4", "missing closing parenthesis for 'sqrt(' at position 9");
    calc_err(p, "(1 2)", "unexpected '2' at position 4 (expected ')')");
    calc_err(p, "(1))", "unexpected ')' at position 4 (no matching '(')");
    calc_err(p, "()", "unexpected ')' at position 2");
    calc_err(p, "1 2", "unexpected '2' at position 3"); /* trailing junk */
    calc_err(p, "1 + 2 abc", "unexpected 'abc' at position 7");
    calc_err(p, "1 +", "unexpected end of expression at position 4");
    calc_err(p, "*2", "unexpected '*' at position 1");
    calc_err(p, "1,2", "unexpected ',' at position 2");
    calc_err(p, "1..2", "unexpected '.2' at position 3");
    calc_err(p, "sqrt(1, 2)", "sqrt expects 1 argument, got 2");
    calc_err(p, "sqrt()", "sqrt expects 1 argument, got 0");
    calc_err(p, "max()", "max expects at least 1 argument");
    calc_err(p, "log(1, 2, 3)", "log expects 1 or 2 arguments, got 3");
    calc_err(p, "max(1,)", "unexpected ')'");
    calc_err(p, "1e", "unexpected 'e' at position 2");
}

static char *repeat(apr_pool_t *p, const char *unit, int n, const char *middle)
{
    apr_size_t ul = strlen(unit), ml = strlen(middle);
    char *s = apr_palloc(p, ul * n + ml + 1), *o = s;

    for (int i = 0; i < n; i++, o += ul) {
        memcpy(o, unit, ul);
    }
    memcpy(o, middle, ml + 1);
    return s;
}

static void test_limits(void **state)
{
    apr_pool_t *p = *state;
    char *s;

    /* 10,000 '(' and a 5 MB expression stop at the length check */
    calc_err(p, repeat(p, "(", 10000, ""), "expression too long (max 1000 bytes)");
    s = apr_palloc(p, 5 * 1024 * 1024 + 1);
    memset(s, '1', 5 * 1024 * 1024);
    s[5 * 1024 * 1024] = '\0';
    calc_err(p, s, "expression too long");

    /* exactly the limit is fine, one more byte is not */
    s = repeat(p, " ", AC_CALC_MAX_LEN, "");
    s[0] = '7';
    assert_calc(p, s, 7);
    calc_err(p, apr_pstrcat(p, s, " ", NULL), "expression too long");

    /* nesting: 64 levels of brackets evaluate, 65 do not */
    s = apr_pstrcat(p, repeat(p, "(", 64, "1"), repeat(p, ")", 64, ""), NULL);
    assert_calc(p, s, 1);
    s = apr_pstrcat(p, repeat(p, "(", 65, "1"), repeat(p, ")", 65, ""), NULL);
    calc_err(p, s, "nesting too deep (max 64 levels)");
    calc_err(p, repeat(p, "-", 100, "1"), "nesting too deep");
    calc_err(p, repeat(p, "2^", 100, "1"), "nesting too deep");
    calc_err(p, repeat(p, "sqrt(", 80, "1"), "nesting too deep");
    calc_err(p, repeat(p, "(", 500, ""), "too complex");

    /* token budget */
    assert_calc(p, repeat(p, "1+", 127, "1"), 128); /* 255 tokens */
    calc_err(p, repeat(p, "1+", 128, "1"), "expression too complex (more than 256 tokens)");
    calc_err(p, NULL, "empty expression");
}

static apr_uint32_t lcg(apr_uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static void check_outcome(apr_pool_t *p, const char *expr)
{
    const char *err = (const char *)1;
    double v = 0;
    apr_status_t rv = ac_calc_eval(expr, &v, &err, p);

    if (rv == APR_SUCCESS) {
        assert_null(err);
        assert_true(isfinite(v));
        assert_non_null(ac_calc_format(p, v));
    } else {
        assert_int_equal(rv, APR_EINVAL);
        assert_non_null(err);
        /* errors go back to the model inside JSON: they must be valid UTF-8 */
        assert_true(ac_utf8_valid(err, strlen(err)));
    }
}

/* Appends a random, mostly well-formed expression to buf (bounded by cap). */
static void gen_expr(char *buf, apr_size_t *n, apr_size_t cap, int depth, apr_uint32_t *seed)
{
    static const char *const atoms[] = {"0", "1", "2.5", ".5", "1e3", "7", "pi", "e", "1e308"};
    static const char *const ops[] = {" + ", " - ", " * ", " / ", " % ", " ^ ", "\xc3\x97"};
    static const char *const fns[] = {"sqrt(", "abs(", "round(", "ln(",  "log(",
                                      "exp(",  "sin(", "tan(",   "min(", "max("};
    const char *piece;
    apr_size_t l;

    if (*n + 16 >= cap) {
        return;
    }
    switch (depth > 6 ? 0 : lcg(seed) % 5) {
    case 0:
        piece = atoms[lcg(seed) % (sizeof(atoms) / sizeof(atoms[0]))];
        break;
    case 1:
        gen_expr(buf, n, cap, depth + 1, seed);
        piece = ops[lcg(seed) % (sizeof(ops) / sizeof(ops[0]))];
        l = strlen(piece);
        if (*n + l < cap) {
            memcpy(buf + *n, piece, l);
            *n += l;
        }
        gen_expr(buf, n, cap, depth + 1, seed);
        return;
    case 2:
        piece = "-";
        break;
    case 3:
        piece = "(";
        break;
    default:
        piece = fns[lcg(seed) % (sizeof(fns) / sizeof(fns[0]))];
        break;
    }
    l = strlen(piece);
    memcpy(buf + *n, piece, l);
    *n += l;
    if (piece[0] == '-') {
        gen_expr(buf, n, cap, depth + 1, seed);
    } else if (l > 1 && piece[l - 1] == '(') {
        gen_expr(buf, n, cap, depth + 1, seed);
        if (lcg(seed) % 3 == 0 && *n + 2 < cap) {
            buf[(*n)++] = ',';
            gen_expr(buf, n, cap, depth + 1, seed);
        }
        if (*n + 1 < cap) {
            buf[(*n)++] = ')';
        }
    } else if (piece[0] == '(') {
        gen_expr(buf, n, cap, depth + 1, seed);
        if (*n + 1 < cap) {
            buf[(*n)++] = ')';
        }
    }
}

/* Random NUL-free bytes, and generated expressions with an occasional byte
 * flipped: any outcome but a crash, a non-finite success or an unusable
 * message is fine. */
static void test_fuzz(void **state)
{
    apr_pool_t *p, *it;
    apr_uint32_t seed = 20240521;
    char buf[1200];
    int ok = 0, failed = 0;

    p = *state;
    apr_pool_create(&it, p);
    for (int i = 0; i < 20000; i++) {
        apr_size_t len = 0;
        if (i & 1) {
            gen_expr(buf, &len, (i % 97) ? 200 : sizeof(buf) - 1, 0, &seed);
            if (len && lcg(&seed) % 4 == 0) {
                buf[lcg(&seed) % len] = (char)(1 + lcg(&seed) % 255);
            }
        } else {
            len = lcg(&seed) % ((i % 50) ? 48 : 1100);
            for (apr_size_t j = 0; j < len; j++) {
                buf[j] = (char)(1 + lcg(&seed) % 255);
            }
        }
        buf[len] = '\0';
        check_outcome(it, buf);
        if (ac_calc_eval(buf, &(double){0}, NULL, it) == APR_SUCCESS) {
            ok++;
        } else {
            failed++;
        }
        apr_pool_clear(it);
    }
    /* both paths were exercised */
    assert_true(ok > 1000);
    assert_true(failed > 1000);
}

static void test_format(void **state)
{
    apr_pool_t *p = *state;

    assert_string_equal(ac_calc_format(p, 12.75), "12.75");
    assert_string_equal(ac_calc_format(p, 5), "5");
    assert_string_equal(ac_calc_format(p, -42), "-42");
    assert_string_equal(ac_calc_format(p, -0.0), "0");
    assert_string_equal(ac_calc_format(p, 0.1 + 0.2), "0.3");
    assert_string_equal(ac_calc_format(p, 1.0 / 3), "0.333333333333");
    assert_string_equal(ac_calc_format(p, -2.5), "-2.5");
    assert_string_equal(ac_calc_format(p, 1e15 - 1), "999999999999999");
    assert_string_equal(ac_calc_format(p, 1e20), "1e+20");
    assert_string_equal(ac_calc_format(p, 1.5e-7), "1.5e-07");
    assert_string_equal(ac_calc_format(p, 123456789.125), "123456789.125");
    assert_string_equal(ac_calc_format(p, calc_ok(p, "2^0.5")), "1.41421356237");
}

static json_t *call(apr_pool_t *p, const char *args_json, const char **error, apr_status_t *rv)
{
    const ac_tool_t *t = ac_tool_calculate(p);
    ac_tool_ctx_t ctx = {p, 0, NULL};
    json_t *args = args_json ? ac_json_parse(p, args_json, strlen(args_json), NULL) : NULL;
    json_t *res = (json_t *)1;

    *error = NULL;
    *rv = t->call(t, &ctx, args, &res, error);
    return res;
}

static void test_tool_definition(void **state)
{
    apr_pool_t *p = *state;
    const ac_tool_t *t = ac_tool_calculate(p);
    const char *err = NULL;
    json_t *schema;

    assert_string_equal(t->name, "calculate");
    assert_non_null(strstr(t->description, "sqrt"));
    schema = ac_json_parse(p, t->parameters_json, strlen(t->parameters_json), &err);
    assert_non_null(schema);
    assert_string_equal(ac_json_str(schema, "type"), "object");
    assert_string_equal(
        ac_json_str(json_object_get(json_object_get(schema, "properties"), "expression"), "type"),
        "string");
    assert_string_equal(json_string_value(json_array_get(json_object_get(schema, "required"), 0)),
                        "expression");
}

static void test_tool_call(void **state)
{
    apr_pool_t *p = *state;
    const char *error;
    apr_status_t rv;
    json_t *res;

    res = call(p, "{\"expression\":\"85 * 0.15\"}", &error, &rv);
    assert_int_equal(rv, APR_SUCCESS);
    assert_string_equal(ac_json_dump(p, res),
                        "{\"expression\":\"85 * 0.15\",\"result\":12.75,\"formatted\":\"12.75\"}");

    res = call(p, "{\"expression\":\"2 \\u00d7 21\"}", &error, &rv);
    assert_int_equal(rv, APR_SUCCESS);
    assert_true(json_is_integer(json_object_get(res, "result"))); /* 42, not 42.0 */
    assert_string_equal(ac_json_dump(p, json_object_get(res, "result")), "42");
    assert_string_equal(ac_json_str(res, "formatted"), "42");
    assert_string_equal(ac_json_str(res, "expression"), "2 \xc3\x97 21");

    res = call(p, "{\"expression\":\"0.1 + 0.2\"}", &error, &rv);
    assert_int_equal(rv, APR_SUCCESS);
    assert_true(json_real_value(json_object_get(res, "result")) == 0.3);
    assert_string_equal(ac_json_str(res, "formatted"), "0.3");

    res = call(p, "{\"expression\":\"1/0\"}", &error, &rv);
    assert_int_equal(rv, APR_EINVAL);
    assert_string_equal(error, "division by zero at position 2");

    call(p, "{}", &error, &rv);
    assert_int_equal(rv, APR_EINVAL);
    assert_string_equal(error, "expression must be a string");
    call(p, "{\"expression\":42}", &error, &rv);
    assert_string_equal(error, "expression must be a string");
    call(p, "{\"expression\":null}", &error, &rv);
    assert_string_equal(error, "expression must be a string");
    call(p, NULL, &error, &rv);
    assert_string_equal(error, "expression must be a string");
    {
        /* jansson's parser refuses \u0000, but arguments may be built in code */
        const ac_tool_t *t = ac_tool_calculate(p);
        ac_tool_ctx_t ctx = {p, 0, NULL};
        json_t *args = ac_json_object(p);
        json_object_set_new(args, "expression", json_stringn("1\0002", 3));
        rv = t->call(t, &ctx, args, &res, &error);
    }
    assert_int_equal(rv, APR_EINVAL);
    assert_string_equal(error, "expression must not contain NUL characters");
    call(p, "{\"expression\":\"\"}", &error, &rv);
    assert_string_equal(error, "empty expression");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
static const struct CMUnitTest tests[] = {
    T(test_precedence),
    T(test_associativity),
    T(test_unary),
    T(test_numbers_and_spelling),
    T(test_functions),
    T(test_constants),
    T(test_arithmetic_errors),
    T(test_syntax_errors),
    T(test_limits),
    T(test_fuzz),
    T(test_format),
    T(test_tool_definition),
    T(test_tool_call),
};
AC_UNIT_MAIN(tests)

/* ac_tool_calculate: lexer, recursive-descent evaluator and the tool wrapper.
 *
 *   expr    := term (('+' | '-') term)*
 *   term    := unary (('*' | '/' | '%') unary)*
 *   unary   := ('+' | '-') unary | power
 *   power   := primary ('^' unary)?       right-associative; binds tighter than
 *                                         a leading sign, so -2^2 = -4
 *   primary := number | name | name '(' expr (',' expr)* ')' | '(' expr ')'
 *
 * The lexer runs first so the token count is bounded before any recursion;
 * the parser evaluates as it goes.  Errors are messages for the model and are
 * not logged: a bad expression is the model's mistake, not the server's. */
#include "ac_tool_calculate.h"

#include "ac_json.h"
#include "ac_util.h"

#include <apr_strings.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALC_PI 3.14159265358979323846
#define CALC_E 2.71828182845904523536

typedef enum { TK_NUM, TK_NAME, TK_OP, TK_LPAREN, TK_RPAREN, TK_COMMA, TK_END } calc_kind_e;

typedef struct {
    calc_kind_e kind;
    char op;          /* TK_OP: one of + - * / % ^ */
    double num;       /* TK_NUM */
    const char *text; /* start in the source, for messages and names */
    apr_size_t len;   /* bytes of source text */
    int pos;          /* 1-based character position */
} calc_tok_t;

typedef struct {
    apr_pool_t *p;
    calc_tok_t *toks;
    int ntok, cur, depth;
    const char *err;
} calc_parser_t;

/* Functions of one argument call fn; domain_err is set for those defined only
 * for x >= 0 (or x > 0 when strict).  min, max and log's base are special. */
typedef struct {
    const char *name;
    int min_args, max_args;
    double (*fn)(double);
    const char *domain_err;
    int strict;
} calc_func_t;

static const calc_func_t calc_funcs[] = {
    {"sqrt", 1, 1, sqrt, "sqrt of a negative number", 0},
    {"ln", 1, 1, log, "ln of non-positive number", 1},
    {"log", 1, 2, log10, "log of non-positive number", 1},
    {"abs", 1, 1, fabs, NULL, 0},
    {"round", 1, 1, round, NULL, 0},
    {"floor", 1, 1, floor, NULL, 0},
    {"ceil", 1, 1, ceil, NULL, 0},
    {"exp", 1, 1, exp, NULL, 0},
    {"sin", 1, 1, sin, NULL, 0},
    {"cos", 1, 1, cos, NULL, 0},
    {"tan", 1, 1, tan, NULL, 0},
    {"min", 1, INT_MAX, NULL, NULL, -1},
    {"max", 1, INT_MAX, NULL, NULL, 1},
};
#define CALC_NFUNCS ((int)(sizeof(calc_funcs) / sizeof(calc_funcs[0])))

static int calc_fail(calc_parser_t *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int calc_fail(calc_parser_t *ps, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    ps->err = apr_pvsprintf(ps->p, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- lexer ----------------------------------------------------------------- */

static int calc_isdigit(char c)
{
    return c >= '0' && c <= '9';
}

static int calc_isalpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

/* Digits [. digits] [e [+-] digits], or a leading dot.  strtod would also take
 * "inf", "nan" and hex, and reads the decimal point from the locale, so the
 * text is validated here and handed over with the locale's radix. */
static int calc_lex_number(calc_parser_t *ps, const char *s, apr_size_t n, apr_size_t *i,
                           calc_tok_t *t)
{
    apr_size_t j = *i, k;
    const char *radix = localeconv()->decimal_point;
    char *buf;

    while (j < n && calc_isdigit(s[j])) {
        j++;
    }
    if (j < n && s[j] == '.') {
        for (j++; j < n && calc_isdigit(s[j]); j++) {
        }
    }
    if (j < n && (s[j] == 'e' || s[j] == 'E')) {
        k = j + 1;
        if (k < n && (s[k] == '+' || s[k] == '-')) {
            k++;
        }
        if (k < n && calc_isdigit(s[k])) {
            for (j = k; j < n && calc_isdigit(s[j]); j++) {
            }
        }
    }
    buf = apr_pstrmemdup(ps->p, s + *i, j - *i);
    if (radix && radix[0] && radix[0] != '.' && !radix[1]) {
        char *dot = strchr(buf, '.');
        if (dot) {
            *dot = radix[0];
        }
    }
    t->kind = TK_NUM;
    t->num = strtod(buf, NULL);
    if (!isfinite(t->num)) {
        return calc_fail(ps, "number too large at position %d", t->pos);
    }
    *i = j;
    return 0;
}

/* The multibyte spellings accepted: × ÷ − (U+2212) as operators, π as a name. */
static int calc_lex_utf8(const char *s, apr_size_t n, apr_size_t i, calc_tok_t *t)
{
    static const struct {
        const char *utf8;
        char op;
    } alt[] = {{"\xc3\x97", '*'}, {"\xc3\xb7", '/'}, {"\xe2\x88\x92", '-'}, {"\xcf\x80", 0}};

    for (size_t a = 0; a < sizeof(alt) / sizeof(alt[0]); a++) {
        apr_size_t l = strlen(alt[a].utf8);
        if (n - i >= l && memcmp(s + i, alt[a].utf8, l) == 0) {
            t->kind = alt[a].op ? TK_OP : TK_NAME;
            t->op = alt[a].op;
            t->len = l;
            return 1;
        }
    }
    return 0;
}

static int calc_bad_char(calc_parser_t *ps, const char *s, apr_size_t n, apr_size_t i, int pos)
{
    unsigned char c = (unsigned char)s[i];
    apr_size_t k = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;

    if (c >= 0x21 && c < 0x7f) {
        return calc_fail(ps, "unexpected character '%c' at position %d", c, pos);
    }
    /* echo a character back only when it is valid UTF-8: the message ends up in JSON */
    if (c >= 0x80 && k <= n - i && ac_utf8_valid(s + i, k)) {
        return calc_fail(ps, "unexpected character '%.*s' at position %d", (int)k, s + i, pos);
    }
    return calc_fail(ps, "unexpected byte 0x%02X at position %d", c, pos);
}

static int calc_lex(calc_parser_t *ps, const char *s, apr_size_t n)
{
    apr_size_t i = 0;
    int pos = 1;

    ps->toks = apr_palloc(ps->p, sizeof(calc_tok_t) * (AC_CALC_MAX_TOKENS + 1));
    ps->ntok = 0;
    while (i < n) {
        char c = s[i];
        apr_size_t start = i;
        calc_tok_t *t;

        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
            i++;
            pos++;
            continue;
        }
        if (ps->ntok == AC_CALC_MAX_TOKENS) {
            return calc_fail(ps, "expression too complex (more than %d tokens)",
                             AC_CALC_MAX_TOKENS);
        }
        t = &ps->toks[ps->ntok++];
        memset(t, 0, sizeof(*t));
        t->text = s + i;
        t->pos = pos;
        if (calc_isdigit(c) || (c == '.' && i + 1 < n && calc_isdigit(s[i + 1]))) {
            if (calc_lex_number(ps, s, n, &i, t) < 0) {
                return -1;
            }
        }
        else if (calc_isalpha(c)) {
            for (i++; i < n && (calc_isalpha(s[i]) || calc_isdigit(s[i])); i++) {
            }
            t->kind = TK_NAME;
        }
        else if (c == '*' && i + 1 < n && s[i + 1] == '*') { /* Python's power */
            t->kind = TK_OP;
            t->op = '^';
            i += 2;
        }
        else if (c == '+' || c == '-' || c == '*' || c == '/' || c == '%' || c == '^') {
            t->kind = TK_OP;
            t->op = c;
            i++;
        }
        else if (c == '(' || c == ')' || c == ',') {
            t->kind = c == '(' ? TK_LPAREN : c == ')' ? TK_RPAREN : TK_COMMA;
            i++;
        }
        else if (calc_lex_utf8(s, n, i, t)) {
            i += t->len;
            pos++; /* one character, several bytes */
            continue;
        }
        else {
            return calc_bad_char(ps, s, n, i, pos);
        }
        t->len = i - start;
        pos += (int)t->len;
    }
    ps->toks[ps->ntok].kind = TK_END;
    ps->toks[ps->ntok].text = s + n;
    ps->toks[ps->ntok].len = 0;
    ps->toks[ps->ntok].pos = pos;
    return 0;
}

/* ---- parser / evaluator ---------------------------------------------------- */

static int calc_expr(calc_parser_t *ps, double *out);
static int calc_unary(calc_parser_t *ps, double *out);

static const calc_tok_t *calc_peek(const calc_parser_t *ps)
{
    return &ps->toks[ps->cur];
}

static int calc_is_op(const calc_tok_t *t, char op)
{
    return t->kind == TK_OP && t->op == op;
}

static int calc_enter(calc_parser_t *ps)
{
    if (++ps->depth > AC_CALC_MAX_DEPTH) {
        return calc_fail(ps, "nesting too deep (max %d levels)", AC_CALC_MAX_DEPTH);
    }
    return 0;
}

static int calc_unexpected(calc_parser_t *ps, const calc_tok_t *t)
{
    if (t->kind == TK_END) {
        return calc_fail(ps, "unexpected end of expression at position %d", t->pos);
    }
    if (t->kind == TK_RPAREN) {
        return calc_fail(ps, "unexpected ')' at position %d (no matching '(')", t->pos);
    }
    /* token text is ASCII or one of the accepted UTF-8 operators, so safe to echo */
    return calc_fail(ps, "unexpected '%.*s' at position %d", (int)(t->len > 32 ? 32 : t->len),
                     t->text, t->pos);
}

/* After an opening bracket the next token must close it. */
static int calc_close(calc_parser_t *ps, const calc_tok_t *open, const char *what)
{
    const calc_tok_t *t = calc_peek(ps);

    if (t->kind == TK_RPAREN) {
        ps->cur++;
        ps->depth--;
        return 0;
    }
    if (t->kind == TK_END) {
        return calc_fail(ps, "missing closing parenthesis for '%s' at position %d", what,
                         open->pos);
    }
    calc_unexpected(ps, t);
    ps->err = apr_pstrcat(ps->p, ps->err, " (expected ')')", NULL);
    return -1;
}

static int calc_finite(calc_parser_t *ps, double v)
{
    if (isnan(v)) {
        return calc_fail(ps, "result is not a real number");
    }
    if (isinf(v)) {
        return calc_fail(ps, "result is not finite (overflow)");
    }
    return 0;
}

static int calc_binary(calc_parser_t *ps, const calc_tok_t *op, double a, double b, double *out)
{
    switch (op->op) {
    case '+':
        *out = a + b;
        break;
    case '-':
        *out = a - b;
        break;
    case '*':
        *out = a * b;
        break;
    case '/':
        if (b == 0) {
            return calc_fail(ps, "division by zero at position %d", op->pos);
        }
        *out = a / b;
        break;
    case '%':
        if (b == 0) {
            return calc_fail(ps, "modulo by zero at position %d", op->pos);
        }
        *out = fmod(a, b);
        break;
    default: /* '^' */
        if (a == 0 && b < 0) {
            return calc_fail(ps, "division by zero (0 to a negative power) at position %d",
                             op->pos);
        }
        if (a < 0 && b != floor(b)) {
            return calc_fail(ps, "fractional power of a negative number at position %d", op->pos);
        }
        *out = pow(a, b);
        break;
    }
    return calc_finite(ps, *out);
}

static const calc_func_t *calc_find_func(const calc_tok_t *t)
{
    for (int f = 0; f < CALC_NFUNCS; f++) {
        if (strlen(calc_funcs[f].name) == t->len &&
            strncasecmp(calc_funcs[f].name, t->text, t->len) == 0) {
            return &calc_funcs[f];
        }
    }
    return NULL;
}

static int calc_arity(calc_parser_t *ps, const calc_func_t *f, const calc_tok_t *name, int nargs)
{
    if (nargs >= f->min_args && nargs <= f->max_args) {
        return 0;
    }
    if (f->max_args == INT_MAX) {
        return calc_fail(ps, "%s expects at least %d argument at position %d", f->name, f->min_args,
                         name->pos);
    }
    if (f->min_args != f->max_args) {
        return calc_fail(ps, "%s expects %d or %d arguments, got %d at position %d", f->name,
                         f->min_args, f->max_args, nargs, name->pos);
    }
    return calc_fail(ps, "%s expects %d argument%s, got %d at position %d", f->name, f->min_args,
                     f->min_args == 1 ? "" : "s", nargs, name->pos);
}

/* name '(' args ')': min and max fold as they go (fn is NULL, strict gives the
 * direction), the others take at most two arguments. */
static int calc_call(calc_parser_t *ps, const calc_tok_t *name, const calc_func_t *f, double *out)
{
    const calc_tok_t *open = calc_peek(ps);
    double a[2] = {0, 0}, v, acc = 0;
    int nargs = 0;

    ps->cur++;
    if (calc_enter(ps) < 0) {
        return -1;
    }
    while (calc_peek(ps)->kind != TK_RPAREN) {
        if (nargs > 0) {
            if (calc_peek(ps)->kind != TK_COMMA) {
                break;
            }
            ps->cur++;
        }
        if (calc_expr(ps, &v) < 0) {
            return -1;
        }
        if (nargs < 2) {
            a[nargs] = v;
        }
        if (nargs++ == 0 || (!f->fn && (f->strict < 0 ? v < acc : v > acc))) {
            acc = v;
        }
    }
    if (calc_close(ps, open, apr_pstrcat(ps->p, f->name, "(", NULL)) < 0 ||
        calc_arity(ps, f, name, nargs) < 0) {
        return -1;
    }
    if (f->domain_err && (f->strict ? a[0] <= 0 : a[0] < 0)) {
        return calc_fail(ps, "%s", f->domain_err);
    }
    if (nargs == 2 && f->max_args == 2) { /* log(x, base) */
        if (a[1] <= 0 || a[1] == 1) {
            return calc_fail(ps, "log base must be positive and not 1");
        }
        *out = log(a[0]) / log(a[1]);
    }
    else {
        *out = f->fn ? f->fn(a[0]) : acc;
    }
    return calc_finite(ps, *out);
}

static int calc_name(calc_parser_t *ps, double *out)
{
    const calc_tok_t *t = calc_peek(ps);
    const calc_func_t *f = calc_find_func(t);

    ps->cur++;
    if (calc_peek(ps)->kind == TK_LPAREN) {
        if (!f) {
            return calc_fail(ps, "unknown function '%.*s' at position %d",
                             (int)(t->len > 32 ? 32 : t->len), t->text, t->pos);
        }
        return calc_call(ps, t, f, out);
    }
    if ((t->len == 2 && strncasecmp(t->text, "pi", 2) == 0) ||
        (t->len == 2 && memcmp(t->text, "\xcf\x80", 2) == 0)) {
        *out = CALC_PI;
        return 0;
    }
    if (t->len == 1 && (t->text[0] == 'e' || t->text[0] == 'E')) {
        *out = CALC_E;
        return 0;
    }
    if (f) {
        return calc_fail(ps, "function '%s' needs parentheses, e.g. %s(2), at position %d", f->name,
                         f->name, t->pos);
    }
    return calc_fail(ps, "unknown name '%.*s' at position %d", (int)(t->len > 32 ? 32 : t->len),
                     t->text, t->pos);
}

static int calc_primary(calc_parser_t *ps, double *out)
{
    const calc_tok_t *t = calc_peek(ps);

    switch (t->kind) {
    case TK_NUM:
        ps->cur++;
        *out = t->num;
        return 0;
    case TK_NAME:
        return calc_name(ps, out);
    case TK_LPAREN:
        ps->cur++;
        if (calc_enter(ps) < 0 || calc_expr(ps, out) < 0) {
            return -1;
        }
        return calc_close(ps, t, "(");
    default:
        return calc_unexpected(ps, t);
    }
}

static int calc_power(calc_parser_t *ps, double *out)
{
    const calc_tok_t *t;
    double base, ex;

    if (calc_primary(ps, &base) < 0) {
        return -1;
    }
    t = calc_peek(ps);
    if (!calc_is_op(t, '^')) {
        *out = base;
        return 0;
    }
    ps->cur++;
    if (calc_enter(ps) < 0 || calc_unary(ps, &ex) < 0) {
        return -1;
    }
    ps->depth--;
    return calc_binary(ps, t, base, ex, out);
}

static int calc_unary(calc_parser_t *ps, double *out)
{
    const calc_tok_t *t = calc_peek(ps);

    if (!calc_is_op(t, '-') && !calc_is_op(t, '+')) {
        return calc_power(ps, out);
    }
    ps->cur++;
    if (calc_enter(ps) < 0 || calc_unary(ps, out) < 0) {
        return -1;
    }
    ps->depth--;
    if (t->op == '-') {
        *out = -*out;
    }
    return 0;
}

/* next (op next)* for a level of left-associative operators. */
static int calc_chain(calc_parser_t *ps, const char *ops, int (*next)(calc_parser_t *, double *),
                      double *out)
{
    double rhs;

    if (next(ps, out) < 0) {
        return -1;
    }
    for (;;) {
        const calc_tok_t *t = calc_peek(ps);
        if (t->kind != TK_OP || !strchr(ops, t->op)) {
            return 0;
        }
        ps->cur++;
        if (next(ps, &rhs) < 0 || calc_binary(ps, t, *out, rhs, out) < 0) {
            return -1;
        }
    }
}

static int calc_term(calc_parser_t *ps, double *out)
{
    return calc_chain(ps, "*/%", calc_unary, out);
}

static int calc_expr(calc_parser_t *ps, double *out)
{
    return calc_chain(ps, "+-", calc_term, out);
}

apr_status_t ac_calc_eval(const char *expr, double *out, const char **err, apr_pool_t *p)
{
    calc_parser_t ps;
    apr_size_t n;
    double v;

    memset(&ps, 0, sizeof(ps));
    ps.p = p;
    *out = 0;
    if (!expr) {
        ps.err = "empty expression";
        goto leave;
    }
    n = strnlen(expr, AC_CALC_MAX_LEN + 1);
    if (n > AC_CALC_MAX_LEN) {
        calc_fail(&ps, "expression too long (max %d bytes)", AC_CALC_MAX_LEN);
        goto leave;
    }
    if (calc_lex(&ps, expr, n) < 0) {
        goto leave;
    }
    if (ps.ntok == 0) {
        ps.err = "empty expression";
        goto leave;
    }
    if (calc_expr(&ps, &v) < 0) {
        goto leave;
    }
    if (calc_peek(&ps)->kind != TK_END) {
        calc_unexpected(&ps, calc_peek(&ps));
        goto leave;
    }
    *out = v == 0 ? 0.0 : v; /* fold -0 */
leave:
    if (err) {
        *err = ps.err;
    }
    return ps.err ? APR_EINVAL : APR_SUCCESS;
}

/* printf honours LC_NUMERIC; JSON and the model want a '.'. */
static void calc_dot_radix(char *buf)
{
    const char *radix = localeconv()->decimal_point;
    char *r;

    if (radix && radix[0] && radix[0] != '.' && !radix[1] && (r = strchr(buf, radix[0]))) {
        *r = '.';
    }
}

const char *ac_calc_format(apr_pool_t *p, double v)
{
    char buf[64];

    if (isnan(v)) {
        return "NaN";
    }
    if (isinf(v)) {
        return v > 0 ? "Infinity" : "-Infinity";
    }
    if (v == 0) {
        return "0";
    }
    if (fabs(v) < 1e15 && v == floor(v)) {
        snprintf(buf, sizeof(buf), "%.0f", v);
    }
    else {
        snprintf(buf, sizeof(buf), "%.12g", v);
        calc_dot_radix(buf);
    }
    return apr_pstrdup(p, buf);
}

/* ---- the tool -------------------------------------------------------------- */

static const char calc_schema[] =
    "{\"type\":\"object\",\"properties\":{\"expression\":{\"type\":\"string\","
    "\"description\":\"Arithmetic expression, e.g. \\\"85 * 0.15\\\" or \\\"sqrt(2) ^ 2 + "
    "max(3, 4)\\\". Numbers, + - * / % ^ and parentheses; functions sqrt abs round floor ceil "
    "min max ln log exp sin cos tan (radians); constants pi and e. At most 1000 "
    "characters.\"}},\"required\":[\"expression\"]}";

/* A JSON number for the result: an integer when exact, otherwise rounded to 15
 * significant digits so binary noise (0.1 + 0.2) does not reach the model. */
static json_t *calc_json_number(double v)
{
    char buf[64];

    if (fabs(v) <= 9007199254740992.0 && v == floor(v)) {
        return json_integer((json_int_t)v);
    }
    snprintf(buf, sizeof(buf), "%.15g", v);
    return json_real(strtod(buf, NULL)); /* same locale both ways */
}

static apr_status_t calc_tool_call(const ac_tool_t *tool, ac_tool_ctx_t *ctx, json_t *args,
                                   json_t **result, const char **error)
{
    json_t *jexpr = json_object_get(args, "expression"), *res;
    const char *expr;
    apr_status_t rv;
    double v;

    *result = NULL;
    if (!json_is_string(jexpr)) {
        *error = "expression must be a string";
        return APR_EINVAL;
    }
    expr = json_string_value(jexpr);
    if (strlen(expr) != json_string_length(jexpr)) {
        *error = "expression must not contain NUL characters";
        return APR_EINVAL;
    }
    rv = ac_calc_eval(expr, &v, error, ctx->pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    res = ac_json_object(ctx->pool);
    ac_json_set_str(res, "expression", expr);
    json_object_set_new(res, "result", calc_json_number(v));
    ac_json_set_str(res, "formatted", ac_calc_format(ctx->pool, v));
    *result = res;
    return APR_SUCCESS;
}

const ac_tool_t *ac_tool_calculate(apr_pool_t *p)
{
    ac_tool_t *t = apr_pcalloc(p, sizeof(*t));

    t->name = "calculate";
    t->description =
        "Evaluate an arithmetic expression and return the result. Use it for any "
        "calculation (prices, percentages, unit conversions) instead of doing arithmetic "
        "yourself. Supports + - * / % (remainder) ^ (power), parentheses, unary minus, "
        "decimals and 1e3 notation, functions sqrt, abs, round, floor, ceil, min, max, ln, "
        "log (base 10, or log(x, base)), exp, sin, cos, tan (radians) and constants pi and e.";
    t->parameters_json = calc_schema;
    t->call = calc_tool_call;
    t->baton = NULL;
    return t;
}

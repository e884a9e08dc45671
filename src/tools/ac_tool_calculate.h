/* ac_tool_calculate: the calculate(expression) tool.  Models are poor at
 * arithmetic, so they hand the expression to a small evaluator over doubles:
 * + - * / % ^ (also × ÷ − and **), parentheses, unary signs, decimals and
 * 1e3 notation, functions sqrt abs round floor ceil min max ln log exp sin cos
 * tan (radians) and the constants pi and e.  No eval, no allocation outside
 * the caller's pool, bounded length, token count and nesting depth. */
#ifndef AC_TOOL_CALCULATE_H
#define AC_TOOL_CALCULATE_H

#include "ac_tool.h"

#include <apr_pools.h>

#define AC_CALC_MAX_LEN 1000   /* bytes of expression text */
#define AC_CALC_MAX_TOKENS 256 /* numbers, names, operators and brackets */
#define AC_CALC_MAX_DEPTH 64   /* nested brackets, function calls, signs and powers */

/* Evaluate expr.  On success *out is a finite number (never -0) and *err is
 * NULL.  On failure returns APR_EINVAL and *err is a short pool-allocated
 * message for the model, with a 1-based character position where it helps:
 * "unexpected character '#' at position 3", "division by zero at position 5". */
apr_status_t ac_calc_eval(const char *expr, double *out, const char **err, apr_pool_t *p);

/* A result as a person would write it: integers without ".0", otherwise up to
 * 12 significant digits ("12.75", "0.333333333333", "1e+20"), never "-0". */
const char *ac_calc_format(apr_pool_t *p, double v);

/* The tool: args {"expression": string} ->
 * {"expression": "...", "result": 12.75, "formatted": "12.75"}. */
const ac_tool_t *ac_tool_calculate(apr_pool_t *p);

#endif

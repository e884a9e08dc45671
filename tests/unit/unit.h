/* unit.h: common includes for the cmocka unit tests. */
#ifndef AC_UNIT_H
#define AC_UNIT_H
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>

/* Each test file: a pool per test, apr initialised once in main. */
#define AC_UNIT_MAIN(tests)                                                                        \
    int main(void)                                                                                 \
    {                                                                                              \
        apr_initialize();                                                                          \
        int rc = cmocka_run_group_tests(tests, NULL, NULL);                                        \
        apr_terminate();                                                                           \
        return rc;                                                                                 \
    }
#endif

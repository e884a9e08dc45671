/* Unit tests for the knowledge base: loading limits, tokenising, BM25 scores
 * checked against hand-computed values, ranking on a small product FAQ
 * (tests/fixtures/kb), snippets, UTF-8, determinism, concurrent searches and
 * the search_knowledge_base tool's JSON. */
#include "unit.h"
#include "ac_json.h"
#include "ac_log.h"
#include "ac_util.h"
#include "tools/ac_kb.h"

#include <apr_file_io.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* tests/unit/test_kb.c -> tests/fixtures/kb */
static const char *fixture_dir(apr_pool_t *p)
{
    const char *f = __FILE__, *slash = strstr(f, "unit/test_kb.c");
    return apr_pstrcat(p, apr_pstrmemdup(p, f, (apr_size_t)(slash - f)), "fixtures/kb", NULL);
}

/* ---- scaffolding: a temp directory per test and a log recorder ---------------- */

typedef struct {
    apr_pool_t *p;
    const char *tmp;
} fx_t;

static char logged[16384];

static void log_record(void *baton, ac_log_level_e level, apr_status_t rv, const char *msg)
{
    apr_size_t n = strlen(logged);
    apr_snprintf(logged + n, sizeof(logged) - n, "%s\n", msg);
}

static void rm_tree(apr_pool_t *p, const char *path)
{
    apr_dir_t *d;
    apr_finfo_t fi;

    if (apr_dir_open(&d, path, p) != APR_SUCCESS) {
        return;
    }
    while (apr_dir_read(&fi, APR_FINFO_TYPE | APR_FINFO_NAME, d) == APR_SUCCESS) {
        const char *child = apr_pstrcat(p, path, "/", fi.name, NULL);
        if (!strcmp(fi.name, ".") || !strcmp(fi.name, "..")) {
            continue;
        }
        if (fi.filetype == APR_DIR) {
            rm_tree(p, child);
        } else {
            apr_file_remove(child, p);
        }
    }
    apr_dir_close(d);
    apr_dir_remove(path, p);
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    char tmpl[] = "/tmp/ac_kb_test_XXXXXX";

    apr_pool_create(&fx->p, NULL);
    fx->tmp = apr_pstrdup(fx->p, mkdtemp(tmpl));
    logged[0] = '\0';
    ac_log_set(log_record, NULL, AC_LOG_DEBUG);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;

    ac_log_set(NULL, NULL, AC_LOG_WARN);
    rm_tree(fx->p, fx->tmp);
    apr_pool_destroy(fx->p);
    free(fx);
    return 0;
}

static void put(fx_t *fx, const char *rel, const char *data, apr_size_t len)
{
    const char *path = apr_pstrcat(fx->p, fx->tmp, "/", rel, NULL);
    char *dir = apr_pstrdup(fx->p, path);
    apr_file_t *f;
    apr_size_t n = len;

    *strrchr(dir, '/') = '\0';
    assert_int_equal(apr_dir_make_recursive(dir, APR_OS_DEFAULT, fx->p), APR_SUCCESS);
    assert_int_equal(
        apr_file_open(&f, path,
                      APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_TRUNCATE | APR_FOPEN_BINARY,
                      APR_OS_DEFAULT, fx->p),
        APR_SUCCESS);
    assert_int_equal(apr_file_write_full(f, data, n, &n), APR_SUCCESS);
    apr_file_close(f);
}

static void put_s(fx_t *fx, const char *rel, const char *text)
{
    put(fx, rel, text, strlen(text));
}

static ac_kb_t *load(apr_pool_t *p, const char *dir)
{
    const char *err = NULL;
    ac_kb_t *kb = ac_kb_load(p, dir, &err);
    if (!kb) {
        fail_msg("load %s: %s", dir, err);
    }
    assert_null(err);
    return kb;
}

static apr_array_header_t *search(apr_pool_t *p, const ac_kb_t *kb, const char *q, int max)
{
    apr_array_header_t *hits = NULL;
    assert_int_equal(ac_kb_search(kb, q, max, p, &hits), APR_SUCCESS);
    assert_non_null(hits);
    return hits;
}

#define HIT(a, i) (&APR_ARRAY_IDX((a), (i), ac_kb_hit_t))

static void assert_ranked(const apr_array_header_t *hits)
{
    for (int i = 1; i < hits->nelts; i++) {
        const ac_kb_hit_t *a = HIT(hits, i - 1), *b = HIT(hits, i);
        assert_true(a->score > b->score ||
                    (a->score == b->score && strcmp(a->source, b->source) < 0));
    }
}

/* ---- tokenising ---------------------------------------------------------------- */

static void assert_terms(apr_pool_t *p, const char *text, const char *want)
{
    apr_array_header_t *t = ac_kb_terms(p, text);
    const char *got = apr_array_pstrcat(p, t, ' ');
    assert_string_equal(got, want);
}

static void test_tokenizer(void **state)
{
    apr_pool_t *p = ((fx_t *)*state)->p;

    assert_terms(p, "How do I get a Refund?", "get refund");
    assert_terms(p, "Refunds, policies & ADDRESS status", "refund policy address status");
    assert_terms(p, "e-mail API_key 429", "e mail api key 429");
    assert_terms(p,
                 "Caf\xc3\xa9 M\xc3\x9cLLER \xc3\x9c"
                 "ber",
                 "caf\xc3\xa9 m\xc3\xbcller \xc3\xbc"
                 "ber");
    assert_terms(p,
                 "a\xe2\x80\x94"
                 "b \xc2\xabquoted\xc2\xbb",
                 "b quoted"); /* — and «» split */
    assert_terms(p, "\xe6\x97\xa5\xe6\x9c\xac\xe3\x80\x82", "\xe6\x97\xa5 \xe6\x9c\xac");
    assert_terms(p,
                 "bad\xff"
                 "byte",
                 "bad byte");
    assert_terms(p, "the and of", "");
    /* a 65-byte "word" is noise, not a term */
    assert_terms(p, "ok aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa ok2",
                 "ok ok2");
}

/* ---- BM25 scores ---------------------------------------------------------------- */

/* Three one-passage documents, lengths 2, 4 and 4 (avgdl 10/3).  With
 * idf = ln(1 + (N - df + 0.5) / (df + 0.5)) and k1 = 1.2, b = 0.75:
 *   "apple" (df 2): a.txt tf 1 dl 2 -> ln 1.6 * 2.2 / (1 + 1.2 * (0.25 + 0.45)) = 0.56196086
 *                   b.txt tf 3 dl 4 -> ln 1.6 * 6.6 / (3 + 1.2 * (0.25 + 0.90)) = 0.70822465
 *   "cherry" (df 2): b.txt, c.txt tf 1 dl 4 -> ln 1.6 * 2.2 / 2.38 = 0.43445714 */
static void test_bm25_exact(void **state)
{
    fx_t *fx = *state;
    apr_array_header_t *h;
    ac_kb_t *kb;

    put_s(fx, "a.txt", "apple banana\n");
    put_s(fx, "b.txt", "apple apple apple cherry\n");
    put_s(fx, "c.txt", "cherry date elderberry fig\n");
    kb = load(fx->p, fx->tmp);
    assert_int_equal(ac_kb_documents(kb), 3);
    assert_int_equal(ac_kb_passages(kb), 3);

    h = search(fx->p, kb, "apple", 5);
    assert_int_equal(h->nelts, 2);
    assert_string_equal(HIT(h, 0)->source, "b.txt");
    assert_float_equal(HIT(h, 0)->score, 0.7082246468086428, 1e-12);
    assert_string_equal(HIT(h, 1)->source, "a.txt");
    assert_float_equal(HIT(h, 1)->score, 0.561960861054684, 1e-12);

    h = search(fx->p, kb, "apple cherry", 5);
    assert_int_equal(h->nelts, 3);
    assert_string_equal(HIT(h, 0)->source, "b.txt");
    assert_float_equal(HIT(h, 0)->score, 0.7082246468086428 + 0.4344571362775708, 1e-12);
    assert_string_equal(HIT(h, 1)->source, "a.txt");
    assert_string_equal(HIT(h, 2)->source, "c.txt");
    assert_float_equal(HIT(h, 2)->score, 0.4344571362775708, 1e-12);

    /* repeating a query word changes nothing; case and plural neither */
    h = search(fx->p, kb, "APPLES apple", 5);
    assert_float_equal(HIT(h, 0)->score, 0.7082246468086428, 1e-12);
    assert_string_equal(HIT(h, 0)->title, "apple apple apple cherry");
}

/* Equal lengths (avgdl 8): score = idf * tf * 2.2 / (tf + 1.2), which rises with
 * tf but by less each time and never reaches idf * 2.2. */
static void test_bm25_saturation(void **state)
{
    fx_t *fx = *state;
    const char *doc[] = {"kiwi f1 f2 f3 f4 f5 f6 f7", "kiwi kiwi f1 f2 f3 f4 f5 f6",
                         "kiwi kiwi kiwi kiwi f1 f2 f3 f4",
                         "kiwi kiwi kiwi kiwi kiwi kiwi kiwi kiwi", "f1 f2 f3 f4 f5 f6 f7 f8"};
    const char *name[] = {"t1.txt", "t2.txt", "t4.txt", "t8.txt", "z.txt"};
    const int tf[] = {1, 2, 4, 8};
    double s[4], idf = log(1 + (5 - 4 + 0.5) / (4 + 0.5));
    apr_array_header_t *h;

    for (int i = 0; i < 5; i++) {
        put_s(fx, name[i], doc[i]);
    }
    h = search(fx->p, load(fx->p, fx->tmp), "kiwi", 10);
    assert_int_equal(h->nelts, 4);
    for (int i = 0; i < 4; i++) {
        /* ranked t8, t4, t2, t1 */
        assert_string_equal(HIT(h, 3 - i)->source, name[i]);
        s[i] = HIT(h, 3 - i)->score;
        assert_float_equal(s[i], idf * tf[i] * 2.2 / (tf[i] + 1.2), 1e-12);
        assert_true(s[i] < idf * 2.2);
    }
    assert_true(s[1] - s[0] > (s[2] - s[1]) / 2);
    assert_true((s[2] - s[1]) / 2 > (s[3] - s[2]) / 4);
}

static void test_bm25_length_normalisation(void **state)
{
    fx_t *fx = *state;
    apr_array_header_t *h;
    char *longdoc = apr_pstrdup(fx->p, "melon");

    for (int i = 0; i < 31; i++) {
        longdoc = apr_psprintf(fx->p, "%s w%d", longdoc, i);
    }
    put_s(fx, "short.txt", "melon w1");
    put_s(fx, "medium.txt", "melon w1 w2 w3 w4 w5 w6 w7");
    put_s(fx, "long.txt", longdoc);
    h = search(fx->p, load(fx->p, fx->tmp), "melon", 5);
    assert_int_equal(h->nelts, 3);
    assert_string_equal(HIT(h, 0)->source, "short.txt");
    assert_string_equal(HIT(h, 1)->source, "medium.txt");
    assert_string_equal(HIT(h, 2)->source, "long.txt");
    assert_true(HIT(h, 0)->score > HIT(h, 1)->score && HIT(h, 1)->score > HIT(h, 2)->score);
}

/* ---- the FAQ fixture ------------------------------------------------------------ */

static void assert_first(apr_pool_t *p, const ac_kb_t *kb, const char *q, const char *source)
{
    apr_array_header_t *h = search(p, kb, q, 5);
    assert_true(h->nelts > 0);
    if (strcmp(HIT(h, 0)->source, source) != 0) {
        fail_msg("'%s': %s ranked first, want %s", q, HIT(h, 0)->source, source);
    }
    assert_ranked(h);
}

static int contains_ci(const char *hay, const char *needle)
{
    return strcasestr(hay, needle) != NULL;
}

static void test_fixture_ranking(void **state)
{
    apr_pool_t *p = ((fx_t *)*state)->p;
    ac_kb_t *kb = load(p, fixture_dir(p));
    apr_array_header_t *h;

    assert_int_equal(ac_kb_documents(kb), 8);
    assert_true(ac_kb_passages(kb) >= 15); /* sections become passages */

    h = search(p, kb, "how do I get a refund", 5);
    assert_string_equal(HIT(h, 0)->source, "refund-policy.md");
    assert_string_equal(HIT(h, 0)->title, "Refund Policy");
    assert_true(contains_ci(HIT(h, 0)->snippet, "refund"));
    assert_true(h->nelts >= 2); /* the warranty page mentions refunds too, lower down */
    assert_ranked(h);

    assert_first(p, kb, "I forgot my password, the reset link expired", "password-reset.md");
    assert_first(p, kb, "how long does express shipping take", "shipping.md");
    assert_first(p, kb, "429 too many requests rate limit", "api-rate-limits.md");
    assert_first(p, kb, "warranty claim for a defect", "warranty.md");
    assert_first(p, kb, "support phone number and opening hours", "contact.txt");
    assert_first(p, kb, "setup wizard", "guides/getting-started.md");
    assert_first(p, kb, "damaged item photo", "refund-policy.md");

    /* the best passage is the one with the answer, not the page's first one */
    h = search(p, kb, "damaged item photo", 1);
    assert_true(contains_ci(HIT(h, 0)->snippet, "photo"));
    assert_false(contains_ci(HIT(h, 0)->snippet, "Sign in"));

    /* titles: first heading, else first line */
    h = search(p, kb, "response time", 1);
    assert_string_equal(HIT(h, 0)->title, "Contacting Support");
    h = search(p, kb, "tracking number", 1);
    assert_string_equal(HIT(h, 0)->title, "Shipping Times");
}

static void test_max_results(void **state)
{
    apr_pool_t *p = ((fx_t *)*state)->p;
    ac_kb_t *kb = load(p, fixture_dir(p));
    const char *q = "refund shipping warranty password support api account lieferzeit";

    assert_int_equal(search(p, kb, q, 1)->nelts, 1);
    assert_int_equal(search(p, kb, q, 0)->nelts, 1); /* clamped up */
    assert_int_equal(search(p, kb, q, -5)->nelts, 1);
    assert_int_equal(search(p, kb, q, 3)->nelts, 3);
    assert_int_equal(search(p, kb, q, 1000)->nelts, 8); /* clamped to 20; one hit per file */
    assert_ranked(search(p, kb, q, 20));
}

static void test_query_errors(void **state)
{
    apr_pool_t *p = ((fx_t *)*state)->p;
    ac_kb_t *kb = load(p, fixture_dir(p));
    apr_array_header_t *h = NULL;
    char *big = apr_palloc(p, AC_KB_MAX_QUERY_BYTES + 2);

    assert_int_equal(ac_kb_search(kb, "", 5, p, &h), APR_EINVAL);
    assert_non_null(h);
    assert_int_equal(h->nelts, 0);
    assert_int_equal(ac_kb_search(kb, "   \t\n ?!", 5, p, &h), APR_EINVAL);
    assert_int_equal(ac_kb_search(kb, NULL, 5, p, &h), APR_EINVAL);
    memset(big, 'a', AC_KB_MAX_QUERY_BYTES + 1);
    big[AC_KB_MAX_QUERY_BYTES + 1] = '\0';
    assert_int_equal(ac_kb_search(kb, big, 5, p, &h), APR_EINVAL);

    /* words that match nothing, or only stopwords: a valid question, no hits */
    assert_int_equal(search(p, kb, "xylophone zeppelin", 5)->nelts, 0);
    assert_int_equal(search(p, kb, "what is the", 5)->nelts, 0);
}

static void test_snippets(void **state)
{
    fx_t *fx = *state;
    char *para = apr_pstrdup(fx->p, "");
    apr_array_header_t *h;
    const char *s;

    /* one ~780-byte paragraph: filler with multibyte characters, the term near the end */
    for (int i = 0; i < 70; i++) {
        para = apr_pstrcat(fx->p, para, i % 3 ? "filler " : "\xc3\xa9t\xc3\xa9 ", NULL);
    }
    para = apr_pstrcat(fx->p, para, "the zebra crossing is here. ", NULL);
    for (int i = 0; i < 30; i++) {
        para = apr_pstrcat(fx->p, para, "tail\xe2\x82\xac ", NULL);
    }
    assert_true(strlen(para) <= AC_KB_PASSAGE_BYTES);
    put_s(fx, "z.md", apr_pstrcat(fx->p, "# Zebra\n\n", para, "\n", NULL));
    h = search(fx->p, load(fx->p, fx->tmp), "zebra crossing", 5);
    assert_int_equal(h->nelts, 1);
    s = HIT(h, 0)->snippet;
    assert_true(ac_utf8_valid(s, strlen(s)));
    assert_non_null(strstr(s, "zebra crossing"));
    assert_true(strlen(s) <= AC_KB_SNIPPET_BYTES + 6); /* two ellipses */
    assert_memory_equal(s, "\xe2\x80\xa6", 3);         /* cut at the front */
    assert_int_equal(ac_utf8_len(s) <= AC_KB_SNIPPET_BYTES + 2, 1);
    /* begins on a word, not halfway through one */
    assert_true(!strncmp(s + 3, "filler", 6) || !strncmp(s + 3, "\xc3\xa9t\xc3\xa9", 5) ||
                !strncmp(s + 3, "the", 3));
}

static void test_long_paragraph_split(void **state)
{
    fx_t *fx = *state;
    char *big = apr_pstrdup(fx->p, "# Big\n\n");
    apr_array_header_t *h;
    ac_kb_t *kb;

    /* 3000 bytes in one paragraph, and a 2000-byte "word" with no spaces */
    for (int i = 0; i < 300; i++) {
        big = apr_pstrcat(fx->p, big, i == 150 ? "needle " : "haystack ", NULL);
    }
    big = apr_pstrcat(fx->p, big, "\n\n", NULL);
    for (int i = 0; i < 1000; i++) {
        big = apr_pstrcat(fx->p, big, "\xc3\xa9", NULL);
    }
    put_s(fx, "big.md", big);
    kb = load(fx->p, fx->tmp);
    assert_true(ac_kb_passages(kb) >= 4);
    h = search(fx->p, kb, "needle", 5);
    assert_int_equal(h->nelts, 1);
    assert_non_null(strstr(HIT(h, 0)->snippet, "needle"));
    assert_true(ac_utf8_valid(HIT(h, 0)->snippet, strlen(HIT(h, 0)->snippet)));
}

/* ---- loading --------------------------------------------------------------------- */

static void test_limits_and_skips(void **state)
{
    fx_t *fx = *state;
    apr_size_t n = AC_KB_MAX_FILE_BYTES + 1;
    char *blob = apr_palloc(fx->p, n);
    apr_array_header_t *h;
    ac_kb_t *kb;

    memset(blob, 'x', n);
    memcpy(blob, "giant oversized\n", 16);
    put(fx, "big.md", blob, n);
    memcpy(blob, "exactly at the limit\n", 21);
    put(fx, "edge.md", blob, n - 1);
    put_s(fx, ".hidden.md", "secret draft");
    put_s(fx, "notes.json", "{\"secret\": \"draft\"}");
    put_s(fx, "UPPER.TXT", "shouting draft");
    put_s(fx, "one/two/three/four/deep.md", "draft four levels down");
    put_s(fx, "one/two/three/four/five/deeper.md", "draft five levels down");
    put_s(fx, ".git/HEAD.md", "draft in a hidden directory");
    put_s(fx, "empty.md", "");

    kb = load(fx->p, fx->tmp);
    assert_non_null(strstr(logged, "skipping big.md"));
    assert_null(strstr(logged, "edge.md"));
    assert_non_null(strstr(logged, "not descending into one/two/three/four/five"));
    h = search(fx->p, kb, "giant oversized", 5);
    assert_int_equal(h->nelts, 0);
    assert_int_equal(search(fx->p, kb, "exactly limit", 5)->nelts, 1);

    h = search(fx->p, kb, "draft", 10);
    assert_int_equal(h->nelts, 2);
    assert_string_equal(HIT(h, 0)->source, "UPPER.TXT");
    assert_string_equal(HIT(h, 1)->source, "one/two/three/four/deep.md");
    assert_int_equal(ac_kb_documents(kb), 4); /* edge, UPPER, deep, empty */
}

static void test_file_count_limit(void **state)
{
    fx_t *fx = *state;
    apr_pool_t *tmp;
    ac_kb_t *kb;

    apr_pool_create(&tmp, fx->p);
    for (int i = 0; i <= AC_KB_MAX_FILES; i++) {
        put_s(fx, apr_psprintf(tmp, "d%d/n%05d.txt", i % 10, i), "note");
        apr_pool_clear(tmp);
    }
    kb = load(fx->p, fx->tmp);
    assert_int_equal(ac_kb_documents(kb), AC_KB_MAX_FILES);
    assert_non_null(strstr(logged, "more than 10000 files"));
    assert_int_equal(search(fx->p, kb, "note", 50)->nelts, AC_KB_MAX_RESULTS);
}

static void test_missing_dir(void **state)
{
    fx_t *fx = *state;
    const char *err = NULL;

    assert_null(ac_kb_load(fx->p, apr_pstrcat(fx->p, fx->tmp, "/nope", NULL), &err));
    assert_non_null(err);
    assert_non_null(strstr(err, "cannot read knowledge base directory"));
    assert_non_null(strstr(err, "/nope"));

    put_s(fx, "file.md", "x");
    err = NULL;
    assert_null(ac_kb_load(fx->p, apr_pstrcat(fx->p, fx->tmp, "/file.md", NULL), &err));
    assert_non_null(err);
    err = NULL;
    assert_null(ac_kb_load(fx->p, "", &err));
    assert_non_null(err);

    /* an empty directory is a valid, empty knowledge base */
    rm_tree(fx->p, apr_pstrcat(fx->p, fx->tmp, "/file.md", NULL));
    assert_int_equal(search(fx->p, load(fx->p, fx->tmp), "anything", 5)->nelts, 0);
}

static void test_utf8(void **state)
{
    fx_t *fx = *state;
    apr_pool_t *p = fx->p;
    ac_kb_t *kb = load(p, fixture_dir(p));
    apr_array_header_t *h;

    h = search(p, kb, "\xc3\xb6sterreich", 5); /* österreich matches ÖSTERREICH and Österreich */
    assert_int_equal(h->nelts, 1);
    assert_string_equal(HIT(h, 0)->source, "international.md");
    assert_string_equal(HIT(h, 0)->title,
                        "Caf\xc3\xa9 M\xc3\xbcller \xe2\x80\x94 Internationale Bestellungen");
    assert_true(ac_utf8_valid(HIT(h, 0)->snippet, strlen(HIT(h, 0)->snippet)));

    h = search(p, kb, "\xe9\x85\x8d\xe9\x80\x81", 5); /* 配送 */
    assert_int_equal(h->nelts, 1);
    assert_non_null(strstr(HIT(h, 0)->snippet, "\xe9\x85\x8d\xe9\x80\x81"));

    /* invalid bytes in a file come out as '?', never as broken UTF-8 */
    put_s(fx, "bad.txt", "broken \xff\xfe bytes \xc3 here\r\nline two\r\n");
    h = search(p, load(p, fx->tmp), "broken", 5);
    assert_int_equal(h->nelts, 1);
    assert_string_equal(HIT(h, 0)->snippet, "broken ?? bytes ? here line two");
}

static void test_determinism(void **state)
{
    apr_pool_t *p = ((fx_t *)*state)->p;
    ac_kb_t *a = load(p, fixture_dir(p)), *b = load(p, fixture_dir(p));
    const char *q = "refund shipping password e-mail support";
    apr_array_header_t *ha = search(p, a, q, 20), *hb;

    for (int round = 0; round < 3; round++) {
        hb = search(p, round ? a : b, q, 20);
        assert_int_equal(ha->nelts, hb->nelts);
        for (int i = 0; i < ha->nelts; i++) {
            assert_string_equal(HIT(ha, i)->source, HIT(hb, i)->source);
            assert_string_equal(HIT(ha, i)->snippet, HIT(hb, i)->snippet);
            assert_true(HIT(ha, i)->score == HIT(hb, i)->score);
        }
    }
}

/* Searches from several threads against one index agree with a lone search. */
typedef struct {
    const ac_kb_t *kb;
    const char *want;
    int bad;
} race_t;

static void *APR_THREAD_FUNC race(apr_thread_t *th, void *data)
{
    race_t *r = data;
    apr_pool_t *p;

    apr_pool_create(&p, NULL);
    for (int i = 0; i < 200; i++) {
        apr_array_header_t *h = NULL;
        if (ac_kb_search(r->kb, "refund damaged shipping fee", 5, p, &h) != APR_SUCCESS ||
            h->nelts == 0 || strcmp(HIT(h, 0)->snippet, r->want) != 0) {
            r->bad++;
        }
        apr_pool_clear(p);
    }
    apr_pool_destroy(p);
    return NULL; /* not apr_thread_exit: pthread_exit upsets ASan's thread teardown */
}

static void test_concurrent_search(void **state)
{
    apr_pool_t *p = ((fx_t *)*state)->p;
    ac_kb_t *kb = load(p, fixture_dir(p));
    apr_thread_t *th[4];
    race_t r[4];
    apr_status_t rv;
    const char *want = HIT(search(p, kb, "refund damaged shipping fee", 5), 0)->snippet;

    for (int i = 0; i < 4; i++) {
        r[i].kb = kb;
        r[i].want = want;
        r[i].bad = 0;
        assert_int_equal(apr_thread_create(&th[i], NULL, race, &r[i], p), APR_SUCCESS);
    }
    for (int i = 0; i < 4; i++) {
        apr_thread_join(&rv, th[i]);
        assert_int_equal(r[i].bad, 0);
    }
}

/* ---- the tool --------------------------------------------------------------------- */

static json_t *call(apr_pool_t *p, const ac_tool_t *t, const char *args_json, const char **error,
                    apr_status_t *rv)
{
    ac_tool_ctx_t ctx = {p, 0, NULL};
    json_t *args = ac_json_parse(p, args_json, strlen(args_json), NULL);
    json_t *res = NULL;

    assert_non_null(args);
    *error = NULL;
    *rv = t->call(t, &ctx, args, &res, error);
    return res;
}

static void test_tool(void **state)
{
    apr_pool_t *p = ((fx_t *)*state)->p;
    const ac_tool_t *t = ac_tool_kb(p, load(p, fixture_dir(p)));
    json_t *schema, *res, *list, *first;
    const char *error;
    apr_status_t rv;
    double score;

    assert_string_equal(t->name, "search_knowledge_base");
    assert_non_null(t->description);
    schema = ac_json_parse(p, t->parameters_json, strlen(t->parameters_json), NULL);
    assert_non_null(schema);
    assert_string_equal(
        ac_json_str(json_object_get(json_object_get(schema, "properties"), "query"), "type"),
        "string");
    assert_string_equal(
        ac_json_str(json_object_get(json_object_get(schema, "properties"), "max_results"), "type"),
        "integer");

    res = call(p, t, "{\"query\":\"how do I get a refund\"}", &error, &rv);
    assert_int_equal(rv, APR_SUCCESS);
    assert_string_equal(ac_json_str(res, "query"), "how do I get a refund");
    list = json_object_get(res, "results");
    assert_true(json_is_array(list) && json_array_size(list) >= 1 && json_array_size(list) <= 5);
    first = json_array_get(list, 0);
    assert_string_equal(ac_json_str(first, "title"), "Refund Policy");
    assert_string_equal(ac_json_str(first, "source"), "refund-policy.md");
    assert_true(contains_ci(ac_json_str(first, "snippet"), "refund"));
    score = json_real_value(json_object_get(first, "score"));
    assert_true(score > 0);
    assert_float_equal(score * 10000, round(score * 10000), 1e-6); /* 4 decimals */
    assert_int_equal(json_object_size(first), 4);

    res = call(p, t, "{\"query\":\"refund shipping password\",\"max_results\":2}", &error, &rv);
    assert_int_equal(json_array_size(json_object_get(res, "results")), 2);
    res = call(p, t, "{\"query\":\"refund shipping password\",\"max_results\":2.0}", &error, &rv);
    assert_int_equal(json_array_size(json_object_get(res, "results")), 2);
    res = call(p, t, "{\"query\":\"refund\",\"max_results\":null}", &error, &rv);
    assert_int_equal(rv, APR_SUCCESS);

    res = call(p, t, "{\"query\":\"xylophone\"}", &error, &rv);
    assert_int_equal(rv, APR_SUCCESS);
    assert_string_equal(ac_json_dump(p, res), "{\"query\":\"xylophone\",\"results\":[]}");

    call(p, t, "{}", &error, &rv);
    assert_int_equal(rv, APR_EINVAL);
    assert_string_equal(error, "query must be a string");
    call(p, t, "{\"query\":7}", &error, &rv);
    assert_string_equal(error, "query must be a string");
    call(p, t, "{\"query\":\"refund\",\"max_results\":\"3\"}", &error, &rv);
    assert_string_equal(error, "max_results must be an integer");
    call(p, t, "{\"query\":\"refund\",\"max_results\":2.5}", &error, &rv);
    assert_string_equal(error, "max_results must be an integer");
    call(p, t, "{\"query\":\"  \"}", &error, &rv);
    assert_int_equal(rv, APR_EINVAL);
    assert_string_equal(error, "query must contain at least one word");

    t = ac_tool_kb(p, NULL);
    call(p, t, "{\"query\":\"refund\"}", &error, &rv);
    assert_int_not_equal(rv, APR_SUCCESS);
    assert_string_equal(error, "the knowledge base is not available");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
static const struct CMUnitTest tests[] = {
    T(test_tokenizer),
    T(test_bm25_exact),
    T(test_bm25_saturation),
    T(test_bm25_length_normalisation),
    T(test_fixture_ranking),
    T(test_max_results),
    T(test_query_errors),
    T(test_snippets),
    T(test_long_paragraph_split),
    T(test_limits_and_skips),
    T(test_file_count_limit),
    T(test_missing_dir),
    T(test_utf8),
    T(test_determinism),
    T(test_concurrent_search),
    T(test_tool),
};
AC_UNIT_MAIN(tests)

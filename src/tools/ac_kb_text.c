/* ac_kb_text: the knowledge base's tokeniser.  Words are runs of ASCII
 * letters and digits and of non-ASCII characters other than punctuation, so
 * "café" and "Müller" stay whole; kana, CJK ideographs and hangul, written
 * without spaces, become one term per character.  Terms are lower-cased
 * (ASCII and Latin-1), S-stemmed, and a short English stopword list is
 * dropped.  No state: indexing and every search share it. */
#include "ac_kb_int.h"

#include "ac_util.h"

#include <apr_strings.h>
#include <string.h>

static const char *const kb_stopwords[] = {
    "a",    "about", "all",   "am",   "an",    "and",  "any",  "are",   "as",  "at",    "be",
    "been", "but",   "by",    "can",  "could", "did",  "do",   "does",  "for", "from",  "had",
    "has",  "have",  "how",   "i",    "if",    "in",   "into", "is",    "it",  "its",   "me",
    "my",   "of",    "on",    "or",   "our",   "so",   "than", "that",  "the", "their", "them",
    "then", "there", "these", "they", "this",  "to",   "us",   "was",   "we",  "were",  "what",
    "when", "where", "which", "who",  "why",   "will", "with", "would", "you", "your",
};

static int kb_is_stopword(const char *t)
{
    for (size_t i = 0; i < sizeof(kb_stopwords) / sizeof(kb_stopwords[0]); i++) {
        if (strcmp(t, kb_stopwords[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

apr_size_t ac_kb_utf8_seq(const char *s, apr_size_t n)
{
    unsigned char c = (unsigned char)s[0];
    apr_size_t k = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;

    return k && k <= n && (k == 1 || ac_utf8_valid(s, k)) ? k : 0;
}

enum { KB_SEP, KB_WORD, KB_IDEO };

/* What the character at s is to the tokeniser; *k gets its length. */
static int kb_char_class(const char *s, apr_size_t n, apr_size_t *k)
{
    const unsigned char *u = (const unsigned char *)s;
    apr_uint32_t cp;

    *k = ac_kb_utf8_seq(s, n);
    if (*k == 0) {
        *k = 1;
        return KB_SEP;
    }
    if (*k == 1) {
        return ((u[0] | 0x20) >= 'a' && (u[0] | 0x20) <= 'z') || (u[0] >= '0' && u[0] <= '9')
                   ? KB_WORD
                   : KB_SEP;
    }
    cp = *k == 2   ? (apr_uint32_t)(u[0] & 0x1f) << 6 | (u[1] & 0x3f)
         : *k == 3 ? (apr_uint32_t)(u[0] & 0x0f) << 12 | (u[1] & 0x3f) << 6 | (u[2] & 0x3f)
                   : (apr_uint32_t)(u[0] & 0x07) << 18 | (u[1] & 0x3f) << 12 | (u[2] & 0x3f) << 6 |
                         (u[3] & 0x3f);
    /* Latin-1 punctuation, × ÷, general and CJK punctuation, BOM, fullwidth punctuation */
    if (cp <= 0xbf || cp == 0xd7 || cp == 0xf7 || (cp >= 0x2000 && cp <= 0x206f) ||
        (cp >= 0x3000 && cp <= 0x303f) || cp == 0xfeff || (cp >= 0xff00 && cp <= 0xff0f)) {
        return KB_SEP;
    }
    /* kana, CJK ideographs and hangul are written without spaces: one term each */
    if ((cp >= 0x3040 && cp <= 0x30ff) || (cp >= 0x3400 && cp <= 0x9fff) ||
        (cp >= 0xac00 && cp <= 0xd7af)) {
        return KB_IDEO;
    }
    return KB_WORD;
}

/* Harman's S-stemmer, roughly: policies -> policy, refunds -> refund, but
 * not address, status or analysis. */
static apr_size_t kb_stem(char *t, apr_size_t n)
{
    if (n <= 3 || t[n - 1] != 's') {
        return n;
    }
    if (n > 4 && t[n - 3] == 'i' && t[n - 2] == 'e' && t[n - 4] != 'e' && t[n - 4] != 'a') {
        t[n - 3] = 'y';
        t[n - 2] = '\0';
        return n - 2;
    }
    if (t[n - 2] == 's' || t[n - 2] == 'u' || t[n - 2] == 'i') {
        return n;
    }
    t[n - 1] = '\0';
    return n - 1;
}

void ac_kb_tokenize(const char *s, apr_size_t n, int keep_stop, kb_term_fn *fn, void *baton)
{
    char term[KB_TERM_MAX + 1];
    apr_size_t i = 0, k, start, tl;
    int cls, over;

    while (i < n) {
        cls = kb_char_class(s + i, n - i, &k);
        start = i;
        if (cls != KB_WORD) {
            i += k;
            if (cls == KB_IDEO) {
                memcpy(term, s + start, k);
                term[k] = '\0';
                fn(baton, term, start, k);
            }
            continue;
        }
        for (tl = 0, over = 0; i < n && kb_char_class(s + i, n - i, &k) == KB_WORD; i += k) {
            if (tl + k > KB_TERM_MAX) {
                over = 1;
                continue;
            }
            memcpy(term + tl, s + i, k);
            if (k == 1 && term[tl] >= 'A' && term[tl] <= 'Z') {
                term[tl] += 'a' - 'A';
            }
            else if (k == 2 && (unsigned char)term[tl] == 0xc3 &&
                     (unsigned char)term[tl + 1] <= 0x9e && (unsigned char)term[tl + 1] != 0x97) {
                term[tl + 1] += 0x20; /* Latin-1 capitals: É -> é */
            }
            tl += k;
        }
        term[tl] = '\0';
        if (over || (!keep_stop && kb_is_stopword(term))) {
            continue;
        }
        kb_stem(term, tl);
        fn(baton, term, start, i - start);
    }
}

static void kb_collect_term(void *baton, const char *term, apr_size_t off, apr_size_t len)
{
    apr_array_header_t *a = baton;
    APR_ARRAY_PUSH(a, const char *) = apr_pstrdup(a->pool, term);
}

apr_array_header_t *ac_kb_terms(apr_pool_t *p, const char *text)
{
    apr_array_header_t *a = apr_array_make(p, 8, sizeof(const char *));
    ac_kb_tokenize(text, strlen(text), 0, kb_collect_term, a);
    return a;
}

/* ac_kb_int: what the knowledge-base files share and nothing else should
 * see: the index layout and the tokeniser. */
#ifndef AC_KB_INT_H
#define AC_KB_INT_H

#include "ac_kb.h"

#include <apr_hash.h>

#define KB_TERM_MAX 64 /* longer "words" are ids or base64: not worth indexing */

typedef struct {
    apr_uint32_t passage, tf;
} kb_posting_t;

typedef struct {
    double idf;
    int npost;
    kb_posting_t *post;        /* ascending passage order */
    apr_array_header_t *build; /* postings while loading (scratch pool) */
} kb_term_t;

typedef struct {
    const char *title, *source;
} kb_doc_t;

typedef struct {
    int doc, ntok; /* ntok: indexed terms, BM25's document length */
    const char *text;
    apr_size_t len;
} kb_passage_t;

struct ac_kb {
    kb_doc_t *docs;
    kb_passage_t *pass;
    int ndocs, npass;
    apr_hash_t *terms; /* term -> kb_term_t */
    double avgdl;
};

/* Receives each term with the byte range of the word it came from. */
typedef void kb_term_fn(void *baton, const char *term, apr_size_t off, apr_size_t len);

/* Terms of s[0..n): lower-cased, lightly stemmed, stopwords dropped unless
 * keep_stop.  Reentrant: the index is searched from many threads. */
void ac_kb_tokenize(const char *s, apr_size_t n, int keep_stop, kb_term_fn *fn, void *baton);

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 when there is none. */
apr_size_t ac_kb_utf8_seq(const char *s, apr_size_t n);

#endif

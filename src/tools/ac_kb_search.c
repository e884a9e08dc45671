/* ac_kb_search: BM25 over the passages of a loaded index.  Scores every
 * passage that holds a query term, keeps the best passage per document and
 * cuts a snippet around the run of query terms that weighs most.  Reads the
 * index only and allocates only from the caller's pool, so any number of
 * threads may search at once. */
#include "ac_kb_int.h"

#include <apr_strings.h>
#include <stdlib.h>
#include <string.h>

#define KB_QUERY_TERMS 32  /* also the width of the snippet's term bitmask */
#define KB_SNIPPET_LEAD 40 /* context kept before the first matching term */
#define KB_SNIPPET_MATCHES 128

typedef struct {
    apr_pool_t *p;
    int n;
    const char *term[KB_QUERY_TERMS];
    double idf[KB_QUERY_TERMS];
} kb_query_t;

typedef struct {
    const kb_query_t *q;
    int n;
    struct {
        apr_size_t off, len;
        int term;
    } m[KB_SNIPPET_MATCHES];
} kb_matches_t;

typedef struct {
    int doc, passage;
    double score;
    const char *source;
} kb_cand_t;

static void kb_query_add(void *baton, const char *term, apr_size_t off, apr_size_t len)
{
    kb_query_t *q = baton;

    for (int i = 0; i < q->n; i++) {
        if (strcmp(q->term[i], term) == 0) {
            return;
        }
    }
    if (q->n < KB_QUERY_TERMS) {
        q->term[q->n++] = apr_pstrdup(q->p, term);
    }
}

static void kb_count_words(void *baton, const char *term, apr_size_t off, apr_size_t len)
{
    (*(int *)baton)++;
}

static void kb_match_add(void *baton, const char *term, apr_size_t off, apr_size_t len)
{
    kb_matches_t *mm = baton;

    for (int i = 0; i < mm->q->n && mm->n < KB_SNIPPET_MATCHES; i++) {
        if (strcmp(term, mm->q->term[i]) == 0) {
            mm->m[mm->n].off = off;
            mm->m[mm->n].len = len;
            mm->m[mm->n++].term = i;
            return;
        }
    }
}

/* Up to AC_KB_SNIPPET_BYTES of the passage, placed where the matched query
 * terms weigh most (by idf), cut at spaces and never inside a character. */
static const char *kb_snippet(apr_pool_t *p, const kb_passage_t *ps, const kb_query_t *q)
{
    const apr_size_t span = AC_KB_SNIPPET_BYTES, len = ps->len;
    const char *t = ps->text;
    kb_matches_t *mm;
    apr_size_t start = 0, end, limit;
    double bestw = -1;
    int best = -1;

    if (len <= span) {
        return apr_pstrmemdup(p, t, len);
    }
    mm = apr_pcalloc(p, sizeof(*mm));
    mm->q = q;
    ac_kb_tokenize(t, len, 0, kb_match_add, mm);
    for (int i = 0; i < mm->n; i++) {
        apr_uint32_t seen = 0;
        double w = 0;
        for (int j = i;
             j < mm->n && mm->m[j].off + mm->m[j].len <= mm->m[i].off + span - KB_SNIPPET_LEAD;
             j++) {
            if (!(seen & (1u << mm->m[j].term))) {
                seen |= 1u << mm->m[j].term;
                w += q->idf[mm->m[j].term];
            }
        }
        if (w > bestw) {
            bestw = w;
            best = i;
        }
    }
    limit = best >= 0 ? mm->m[best].off : 0;
    start = limit > KB_SNIPPET_LEAD ? limit - KB_SNIPPET_LEAD : 0;
    if (start + span > len) {
        start = len - span; /* near the end: use the whole budget */
        limit = limit > start ? limit : start + KB_SNIPPET_LEAD;
    }
    /* begin on a word (just after a space) without passing the first match */
    while (start > 0 && start < limit && t[start - 1] != ' ') {
        start++;
    }
    while (start < len && ((unsigned char)t[start] & 0xc0) == 0x80) {
        start++;
    }
    end = start + span;
    if (end >= len) {
        end = len;
    }
    else {
        apr_size_t e = end;
        while (e > start + span / 2 && t[e] != ' ') {
            e--;
        }
        if (t[e] == ' ') {
            end = e;
        }
        else {
            while (end > start && ((unsigned char)t[end] & 0xc0) == 0x80) {
                end--;
            }
        }
    }
    while (end > start && t[end - 1] == ' ') {
        end--;
    }
    return apr_pstrcat(p, start > 0 ? "\xe2\x80\xa6" : "",
                       apr_pstrmemdup(p, t + start, end - start), end < len ? "\xe2\x80\xa6" : "",
                       NULL);
}

static int kb_cand_cmp(const void *a, const void *b)
{
    const kb_cand_t *x = a, *y = b;

    if (x->score != y->score) {
        return x->score > y->score ? -1 : 1;
    }
    return strcmp(x->source, y->source);
}

apr_status_t ac_kb_search(const ac_kb_t *kb, const char *query, int max_results, apr_pool_t *p,
                          apr_array_header_t **hits)
{
    kb_query_t *q;
    kb_cand_t *cands;
    double *scores;
    int *best, ncand = 0, words = 0;
    apr_size_t qlen;

    *hits = apr_array_make(p, 0, sizeof(ac_kb_hit_t));
    if (!query || (qlen = strnlen(query, AC_KB_MAX_QUERY_BYTES + 1)) > AC_KB_MAX_QUERY_BYTES) {
        return APR_EINVAL;
    }
    ac_kb_tokenize(query, qlen, 1, kb_count_words, &words);
    if (words == 0) {
        return APR_EINVAL;
    }
    max_results = max_results < 1                   ? 1
                  : max_results > AC_KB_MAX_RESULTS ? AC_KB_MAX_RESULTS
                                                    : max_results;
    q = apr_pcalloc(p, sizeof(*q));
    q->p = p;
    ac_kb_tokenize(query, qlen, 0, kb_query_add, q); /* none left: only stopwords, no hits */
    if (!kb || kb->npass == 0 || q->n == 0) {
        return APR_SUCCESS;
    }
    scores = apr_pcalloc(p, sizeof(double) * (apr_size_t)kb->npass);
    for (int i = 0; i < q->n; i++) {
        const kb_term_t *t = apr_hash_get(kb->terms, q->term[i], APR_HASH_KEY_STRING);
        for (int j = 0; t && j < t->npost; j++) {
            const kb_posting_t *po = &t->post[j];
            double tf = po->tf, dl = kb->pass[po->passage].ntok;
            scores[po->passage] += t->idf * tf * (AC_KB_K1 + 1) /
                                   (tf + AC_KB_K1 * (1 - AC_KB_B + AC_KB_B * dl / kb->avgdl));
        }
        q->idf[i] = t ? t->idf : 0;
    }
    best = apr_palloc(p, sizeof(int) * (apr_size_t)kb->ndocs + 1);
    for (int d = 0; d < kb->ndocs; d++) {
        best[d] = -1;
    }
    for (int i = 0; i < kb->npass; i++) {
        int d = kb->pass[i].doc;
        if (scores[i] > 0 && (best[d] < 0 || scores[i] > scores[best[d]])) {
            best[d] = i;
        }
    }
    cands = apr_palloc(p, sizeof(kb_cand_t) * (apr_size_t)kb->ndocs + 1);
    for (int d = 0; d < kb->ndocs; d++) {
        if (best[d] >= 0) {
            cands[ncand].doc = d;
            cands[ncand].passage = best[d];
            cands[ncand].score = scores[best[d]];
            cands[ncand++].source = kb->docs[d].source;
        }
    }
    qsort(cands, (size_t)ncand, sizeof(kb_cand_t), kb_cand_cmp);
    for (int i = 0; i < ncand && i < max_results; i++) {
        ac_kb_hit_t *h = apr_array_push(*hits);
        h->title = kb->docs[cands[i].doc].title;
        h->source = cands[i].source;
        h->score = cands[i].score;
        h->snippet = kb_snippet(p, &kb->pass[cands[i].passage], q);
    }
    return APR_SUCCESS;
}

/* ac_kb: the knowledge base behind search_knowledge_base.  A directory of .md
 * and .txt documents is cut into passages (a section or a few paragraphs, at
 * most AC_KB_PASSAGE_BYTES) and indexed for BM25 once, in the parent at
 * startup.  After loading the index is never written again, so any number of
 * request threads may search it at once; a search allocates only from the
 * pool it is given. */
#ifndef AC_KB_H
#define AC_KB_H

#include "ac_tool.h"

#include <apr_pools.h>
#include <apr_tables.h>

#define AC_KB_MAX_FILES 10000
#define AC_KB_MAX_FILE_BYTES (1024 * 1024)
#define AC_KB_MAX_TOTAL_BYTES (64 * 1024 * 1024)
#define AC_KB_MAX_DEPTH 4 /* levels of subdirectories below the root */
#define AC_KB_PASSAGE_BYTES 800
#define AC_KB_SNIPPET_BYTES 300 /* text bytes, plus an ellipsis at a cut end */
#define AC_KB_MAX_QUERY_BYTES 1000
#define AC_KB_MAX_RESULTS 20
#define AC_KB_DEFAULT_RESULTS 5
#define AC_KB_K1 1.2
#define AC_KB_B 0.75

typedef struct ac_kb ac_kb_t;

typedef struct {
    const char *title;   /* first heading, else first line, else the file name */
    const char *snippet; /* valid UTF-8, around the best-matching terms */
    const char *source;  /* path relative to the directory, '/'-separated */
    double score;        /* BM25 of the best passage of this document */
} ac_kb_hit_t;

/* Index the .md/.txt files under dir (hidden entries skipped, subdirectories to
 * AC_KB_MAX_DEPTH).  Oversized or unreadable files are skipped with a log line;
 * past the file or total-size limit the rest are skipped with one.  Returns
 * NULL and a pool-allocated *err only when dir itself cannot be read.  All
 * index memory lives in p. */
ac_kb_t *ac_kb_load(apr_pool_t *p, const char *dir, const char **err);

/* Documents and passages indexed (for logs and tests). */
int ac_kb_documents(const ac_kb_t *kb);
int ac_kb_passages(const ac_kb_t *kb);

/* Best passage per document, ordered by score (desc) then source (asc).
 * max_results is clamped to 1..AC_KB_MAX_RESULTS.  *hits is an array of
 * ac_kb_hit_t (empty when nothing matches).  Returns APR_EINVAL when the query
 * is NULL, longer than AC_KB_MAX_QUERY_BYTES or has no word in it. */
apr_status_t ac_kb_search(const ac_kb_t *kb, const char *query, int max_results, apr_pool_t *p,
                          apr_array_header_t **hits);

/* The terms text is indexed under (lower-cased, lightly stemmed, stopwords
 * dropped), as an array of const char *.  For tests and diagnostics. */
apr_array_header_t *ac_kb_terms(apr_pool_t *p, const char *text);

/* The search_knowledge_base tool over kb (which must outlive it):
 * args {"query": string, "max_results"?: integer} ->
 * {"query": "...", "results": [{"title","snippet","score","source"}]}. */
const ac_tool_t *ac_tool_kb(apr_pool_t *p, const ac_kb_t *kb);

#endif

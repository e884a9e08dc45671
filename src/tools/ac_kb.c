/* ac_kb: loads a directory of documents into the BM25 passage index.
 * Runs once, single-threaded: walk the directory, sort the names so the index
 * never depends on readdir order, clean each file to valid UTF-8, cut it into
 * passages at headings and paragraphs, and count terms.  Postings grow in a
 * scratch pool and are copied to exact-size arrays at the end, so the index's
 * own pool holds little slack.  Searching is in ac_kb_search.c. */
#include "ac_kb_int.h"

#include "ac_log.h"
#include "ac_util.h"

#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KB_TITLE_CHARS 120

typedef struct {
    const char *rel;
    apr_off_t size;
} kb_file_t;

typedef struct {
    apr_pool_t *p;       /* the index's pool */
    apr_pool_t *scratch; /* everything only loading needs */
    apr_pool_t *tfpool;  /* one passage's term counts */
    ac_kb_t *kb;
    const char *root;
    apr_array_header_t *files, *docs, *pass;
    apr_hash_t *tf;
    int ntok, truncated;
    apr_uint64_t total_tok;
} kb_build_t;

typedef struct {
    kb_build_t *b;
    int doc, heading_only;
    apr_size_t len;
    char buf[AC_KB_PASSAGE_BYTES + 1];
} kb_chunk_t;

static int kb_wanted(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (strcasecmp(dot, ".md") == 0 || strcasecmp(dot, ".txt") == 0);
}

static apr_status_t kb_walk(kb_build_t *b, const char *rel, int depth)
{
    const char *path = rel ? apr_pstrcat(b->scratch, b->root, "/", rel, NULL) : b->root;
    apr_int32_t want = APR_FINFO_TYPE | APR_FINFO_SIZE | APR_FINFO_NAME;
    apr_finfo_t fi;
    apr_dir_t *d;
    apr_status_t rv;

    rv = apr_dir_open(&d, path, b->scratch);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    while ((rv = apr_dir_read(&fi, want, d)) == APR_SUCCESS || rv == APR_INCOMPLETE) {
        const char *child;
        if (!(fi.valid & APR_FINFO_NAME) || !(fi.valid & APR_FINFO_TYPE) || fi.name[0] == '.') {
            continue;
        }
        child = rel ? apr_pstrcat(b->scratch, rel, "/", fi.name, NULL)
                    : apr_pstrdup(b->scratch, fi.name);
        if (fi.filetype == APR_DIR) {
            if (depth >= AC_KB_MAX_DEPTH) {
                ac_log(AC_LOG_INFO, 0, "knowledge base: not descending into %s (deeper than %d)",
                       child, AC_KB_MAX_DEPTH);
            }
            else if ((rv = kb_walk(b, child, depth + 1)) != APR_SUCCESS) {
                ac_log(AC_LOG_WARN, rv, "knowledge base: cannot read directory %s", child);
            }
        }
        else if (fi.filetype == APR_REG && (fi.valid & APR_FINFO_SIZE) && kb_wanted(fi.name)) {
            kb_file_t *f;
            if (b->files->nelts >= AC_KB_MAX_FILES) {
                if (!b->truncated) {
                    ac_log(AC_LOG_WARN, 0, "knowledge base: more than %d files, the rest skipped",
                           AC_KB_MAX_FILES);
                }
                b->truncated = 1;
                break;
            }
            f = apr_array_push(b->files);
            f->rel = child;
            f->size = fi.size;
        }
    }
    apr_dir_close(d);
    return APR_SUCCESS;
}

static int kb_file_cmp(const void *a, const void *b)
{
    return strcmp(((const kb_file_t *)a)->rel, ((const kb_file_t *)b)->rel);
}

/* Valid UTF-8 with '\n' line ends and no other control characters: invalid
 * bytes become '?', a byte-order mark is dropped. */
static char *kb_clean(apr_pool_t *p, const char *s, apr_size_t n, apr_size_t *outlen)
{
    char *o = apr_palloc(p, n + 1);
    apr_size_t i = 0, j = 0, k;

    if (n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
        i = 3;
    }
    while (i < n) {
        k = ac_kb_utf8_seq(s + i, n - i);
        if (k == 0) {
            o[j++] = '?';
            i++;
        }
        else if (k == 1 && (unsigned char)s[i] < 0x20 && s[i] != '\n') {
            if (s[i] == '\r') {
                if (i + 1 >= n || s[i + 1] != '\n') {
                    o[j++] = '\n'; /* old Mac line end; CRLF keeps its LF */
                }
            }
            else {
                o[j++] = ' ';
            }
            i++;
        }
        else {
            memcpy(o + j, s + i, k);
            i += k;
            j += k;
        }
    }
    o[j] = '\0';
    *outlen = j;
    return o;
}

/* A markdown heading ("## Text ##"): its text without the markers. */
static int kb_heading(const char *s, apr_size_t n, const char **text, apr_size_t *len)
{
    apr_size_t h = 0;

    while (h < n && s[h] == '#') {
        h++;
    }
    if (h == 0 || h > 6 || (h < n && s[h] != ' ')) {
        return 0;
    }
    while (h < n && s[h] == ' ') {
        h++;
    }
    while (n > h && (s[n - 1] == '#' || s[n - 1] == ' ')) {
        n--;
    }
    *text = s + h;
    *len = n - h;
    return 1;
}

/* The next line of text, trimmed of spaces; returns 0 at the end. */
static int kb_next_line(const char *text, apr_size_t n, apr_size_t *at, const char **line,
                        apr_size_t *len)
{
    apr_size_t s = *at, e;

    if (s >= n) {
        return 0;
    }
    for (e = s; e < n && text[e] != '\n'; e++) {
    }
    *at = e + 1;
    while (s < e && text[s] == ' ') {
        s++;
    }
    while (e > s && text[e - 1] == ' ') {
        e--;
    }
    *line = text + s;
    *len = e - s;
    return 1;
}

static const char *kb_title(apr_pool_t *p, const char *text, apr_size_t n, const char *rel)
{
    const char *line, *first = NULL, *h;
    apr_size_t at = 0, len, firstlen = 0, hl;

    while (kb_next_line(text, n, &at, &line, &len)) {
        if (kb_heading(line, len, &h, &hl) && hl > 0) {
            return ac_utf8_truncate(p, apr_pstrmemdup(p, h, hl), KB_TITLE_CHARS);
        }
        if (!first && len > 0) {
            first = line;
            firstlen = len;
        }
    }
    if (first) {
        return ac_utf8_truncate(p, apr_pstrmemdup(p, first, firstlen), KB_TITLE_CHARS);
    }
    h = strrchr(rel, '/');
    return apr_pstrdup(p, h ? h + 1 : rel);
}

static void kb_count_term(void *baton, const char *term, apr_size_t off, apr_size_t len)
{
    kb_build_t *b = baton;
    apr_size_t tl = strlen(term);
    int *cnt = apr_hash_get(b->tf, term, tl);

    if (!cnt) {
        cnt = apr_pcalloc(b->tfpool, sizeof(*cnt));
        apr_hash_set(b->tf, apr_pstrmemdup(b->tfpool, term, tl), tl, cnt);
    }
    (*cnt)++;
    b->ntok++;
}

static void kb_index_passage(kb_build_t *b, int doc, const char *text, apr_size_t len)
{
    apr_hash_index_t *hi;
    kb_passage_t *ps;
    int pid = b->pass->nelts;

    apr_pool_clear(b->tfpool);
    b->tf = apr_hash_make(b->tfpool);
    b->ntok = 0;
    ac_kb_tokenize(text, len, 0, kb_count_term, b);
    if (b->ntok == 0) {
        return; /* rules, lone stopwords: nothing a query could find */
    }
    ps = apr_array_push(b->pass);
    ps->doc = doc;
    ps->ntok = b->ntok;
    ps->text = apr_pstrmemdup(b->p, text, len);
    ps->len = len;
    b->total_tok += (apr_uint64_t)b->ntok;
    for (hi = apr_hash_first(b->tfpool, b->tf); hi; hi = apr_hash_next(hi)) {
        const void *key;
        apr_ssize_t klen;
        void *val;
        kb_term_t *t;
        kb_posting_t *po;

        apr_hash_this(hi, &key, &klen, &val);
        t = apr_hash_get(b->kb->terms, key, klen);
        if (!t) {
            t = apr_pcalloc(b->p, sizeof(*t));
            t->build = apr_array_make(b->scratch, 4, sizeof(kb_posting_t));
            apr_hash_set(b->kb->terms, apr_pstrmemdup(b->p, key, klen), klen, t);
        }
        po = apr_array_push(t->build);
        po->passage = (apr_uint32_t)pid;
        po->tf = (apr_uint32_t) * (int *)val;
    }
}

static void kb_flush(kb_chunk_t *c)
{
    if (c->len) {
        kb_index_passage(c->b, c->doc, c->buf, c->len);
    }
    c->len = 0;
    c->heading_only = 0;
}

/* Adds text to the passage under way.  What does not fit starts a new one;
 * a paragraph longer than a passage is cut at spaces (or, failing that, at a
 * character boundary).  A lone heading is filled up rather than left alone. */
static void kb_append(kb_chunk_t *c, const char *s, apr_size_t n)
{
    while (n > 0) {
        apr_size_t sep = c->len ? 1 : 0, room, cut;

        if (c->len + sep >= AC_KB_PASSAGE_BYTES) {
            kb_flush(c);
            continue;
        }
        room = AC_KB_PASSAGE_BYTES - c->len - sep;
        if (n > room && c->len && !c->heading_only) {
            kb_flush(c);
            continue;
        }
        cut = n;
        if (n > room) {
            for (cut = room; cut > 0 && s[cut] != ' '; cut--) {
            }
            if (cut == 0) {
                for (cut = room; cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80; cut--) {
                }
            }
            if (cut == 0) {
                kb_flush(c); /* only possible after a heading: room is tiny */
                continue;
            }
        }
        if (sep) {
            c->buf[c->len++] = ' ';
        }
        memcpy(c->buf + c->len, s, cut);
        c->len += cut;
        if (cut == n) {
            return;
        }
        kb_flush(c);
        for (s += cut, n -= cut; n > 0 && *s == ' '; s++, n--) {
        }
    }
}

/* Headings start passages; paragraphs join the passage under way while it
 * stays within AC_KB_PASSAGE_BYTES.  Whitespace inside is collapsed. */
static void kb_chunk(kb_build_t *b, int doc, const char *text, apr_size_t n, apr_pool_t *fp)
{
    kb_chunk_t *c = apr_pcalloc(fp, sizeof(*c));
    char *para = apr_palloc(fp, n + 1);
    apr_size_t at = 0, len, plen = 0, hl;
    const char *line, *h;

    c->b = b;
    c->doc = doc;
    for (;;) {
        int more = kb_next_line(text, n, &at, &line, &len);
        int heading = more && kb_heading(line, len, &h, &hl);
        if (plen && (!more || len == 0 || heading)) {
            kb_append(c, para, plen);
            c->heading_only = 0;
            plen = 0;
        }
        if (!more) {
            break;
        }
        if (heading) {
            kb_flush(c);
            kb_append(c, h, hl);
            c->heading_only = hl > 0;
            continue;
        }
        for (apr_size_t i = 0; i < len; i++) {
            if (line[i] == ' ' && (plen == 0 || para[plen - 1] == ' ')) {
                continue;
            }
            if (i == 0 && plen > 0) {
                para[plen++] = ' '; /* the line break */
            }
            para[plen++] = line[i];
        }
    }
    kb_flush(c);
}

static void kb_add_file(kb_build_t *b, const kb_file_t *f, apr_pool_t *fp)
{
    const char *path = apr_pstrcat(fp, b->root, "/", f->rel, NULL);
    apr_size_t got = 0, len;
    apr_file_t *fh;
    apr_status_t rv;
    kb_doc_t *doc;
    char *buf, *text;

    rv = apr_file_open(&fh, path, APR_FOPEN_READ | APR_FOPEN_BINARY, APR_OS_DEFAULT, fp);
    if (rv != APR_SUCCESS) {
        ac_log(AC_LOG_WARN, rv, "knowledge base: cannot open %s, skipped", f->rel);
        return;
    }
    buf = apr_palloc(fp, (apr_size_t)f->size + 1);
    rv = apr_file_read_full(fh, buf, (apr_size_t)f->size, &got);
    apr_file_close(fh);
    if (rv != APR_SUCCESS && rv != APR_EOF) {
        ac_log(AC_LOG_WARN, rv, "knowledge base: cannot read %s, skipped", f->rel);
        return;
    }
    text = kb_clean(fp, buf, got, &len);
    doc = apr_array_push(b->docs);
    doc->source = apr_pstrdup(b->p, f->rel);
    doc->title = kb_title(b->p, text, len, f->rel);
    kb_chunk(b, b->docs->nelts - 1, text, len, fp);
}

/* Exact-size copies into the index pool, and the idf of every term. */
static void kb_finish(kb_build_t *b)
{
    ac_kb_t *kb = b->kb;
    apr_hash_index_t *hi;

    kb->ndocs = b->docs->nelts;
    kb->docs = apr_pmemdup(b->p, b->docs->elts, sizeof(kb_doc_t) * (apr_size_t)kb->ndocs + 1);
    kb->npass = b->pass->nelts;
    kb->pass = apr_pmemdup(b->p, b->pass->elts, sizeof(kb_passage_t) * (apr_size_t)kb->npass + 1);
    kb->avgdl = kb->npass ? (double)b->total_tok / kb->npass : 1;
    for (hi = apr_hash_first(b->scratch, kb->terms); hi; hi = apr_hash_next(hi)) {
        kb_term_t *t = apr_hash_this_val(hi);
        double df = t->build->nelts;

        t->npost = t->build->nelts;
        t->post = apr_pmemdup(b->p, t->build->elts, sizeof(kb_posting_t) * (apr_size_t)t->npost);
        t->build = NULL;
        /* Lucene's form: never negative, even for terms in most passages */
        t->idf = log(1.0 + (kb->npass - df + 0.5) / (df + 0.5));
    }
}

ac_kb_t *ac_kb_load(apr_pool_t *p, const char *dir, const char **err)
{
    kb_build_t b;
    ac_kb_t *kb = NULL;
    apr_pool_t *fp;
    apr_off_t total = 0;
    apr_status_t rv;
    char ebuf[128];
    int i;

    *err = NULL;
    memset(&b, 0, sizeof(b));
    b.p = p;
    apr_pool_create(&b.scratch, p);
    apr_pool_create(&b.tfpool, b.scratch);
    apr_pool_create(&fp, b.scratch);
    if (!dir || !*dir) {
        *err = "no knowledge base directory given";
        goto leave;
    }
    b.root = apr_pstrdup(b.scratch, dir);
    for (apr_size_t n = strlen(b.root); n > 1 && b.root[n - 1] == '/'; n--) {
        ((char *)b.root)[n - 1] = '\0';
    }
    b.kb = apr_pcalloc(p, sizeof(*b.kb));
    b.kb->terms = apr_hash_make(p);
    b.files = apr_array_make(b.scratch, 64, sizeof(kb_file_t));
    b.docs = apr_array_make(b.scratch, 64, sizeof(kb_doc_t));
    b.pass = apr_array_make(b.scratch, 256, sizeof(kb_passage_t));
    rv = kb_walk(&b, NULL, 0);
    if (rv != APR_SUCCESS) {
        *err = apr_psprintf(p, "cannot read knowledge base directory %s: %s", dir,
                            apr_strerror(rv, ebuf, sizeof(ebuf)));
        goto leave;
    }
    qsort(b.files->elts, (size_t)b.files->nelts, sizeof(kb_file_t), kb_file_cmp);
    for (i = 0; i < b.files->nelts; i++) {
        const kb_file_t *f = &APR_ARRAY_IDX(b.files, i, kb_file_t);
        if (f->size > AC_KB_MAX_FILE_BYTES) {
            ac_log(AC_LOG_WARN, 0,
                   "knowledge base: skipping %s (%" APR_OFF_T_FMT " bytes, limit %d)", f->rel,
                   f->size, AC_KB_MAX_FILE_BYTES);
            continue;
        }
        if (total + f->size > AC_KB_MAX_TOTAL_BYTES) {
            ac_log(AC_LOG_WARN, 0,
                   "knowledge base: total size limit of %d bytes reached, skipping %s and %d "
                   "more",
                   AC_KB_MAX_TOTAL_BYTES, f->rel, b.files->nelts - i - 1);
            break;
        }
        total += f->size;
        kb_add_file(&b, f, fp);
        apr_pool_clear(fp);
    }
    kb_finish(&b);
    kb = b.kb;
    ac_log(AC_LOG_INFO, 0, "knowledge base %s: %d documents, %d passages, %u terms", dir, kb->ndocs,
           kb->npass, apr_hash_count(kb->terms));
leave:
    apr_pool_destroy(b.scratch);
    return kb;
}

int ac_kb_documents(const ac_kb_t *kb)
{
    return kb ? kb->ndocs : 0;
}

int ac_kb_passages(const ac_kb_t *kb)
{
    return kb ? kb->npass : 0;
}

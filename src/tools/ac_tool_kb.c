/* ac_tool_kb: search_knowledge_base, the tool face of ac_kb.  Checks the
 * model's arguments, runs the search in the call's pool and shapes the hits
 * as JSON.  Nothing matching is a success with an empty list, so the model
 * can say it found nothing rather than report a failure. */
#include "ac_kb.h"

#include "ac_json.h"

#include <apr_strings.h>
#include <math.h>
#include <string.h>

static const char kb_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"query\":{\"type\":\"string\",\"description\":\"What to look for, in plain words, e.g. "
    "\\\"refund for a damaged item\\\". Specific keywords work best.\"},"
    "\"max_results\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":20,"
    "\"description\":\"How many documents to return (default 5).\"}},"
    "\"required\":[\"query\"]}";

/* Absent or null -> the default; integral numbers are clamped to 1..20. */
static int kb_max_results(const json_t *jm, int *max)
{
    double d;

    *max = AC_KB_DEFAULT_RESULTS;
    if (!jm || json_is_null(jm)) {
        return 0;
    }
    if (json_is_integer(jm)) {
        d = (double)json_integer_value(jm);
    }
    else if (json_is_real(jm) && json_real_value(jm) == floor(json_real_value(jm))) {
        d = json_real_value(jm);
    }
    else {
        return -1;
    }
    *max = d < 1 ? 1 : d > AC_KB_MAX_RESULTS ? AC_KB_MAX_RESULTS : (int)d;
    return 0;
}

static apr_status_t kb_tool_call(const ac_tool_t *tool, ac_tool_ctx_t *ctx, json_t *args,
                                 json_t **result, const char **error)
{
    const ac_kb_t *kb = tool->baton;
    json_t *jq = json_object_get(args, "query"), *res, *list;
    apr_array_header_t *hits;
    const char *query;
    apr_status_t rv;
    int max;

    *result = NULL;
    if (!json_is_string(jq)) {
        *error = "query must be a string";
        return APR_EINVAL;
    }
    query = json_string_value(jq);
    if (strlen(query) != json_string_length(jq)) {
        *error = "query must not contain NUL characters";
        return APR_EINVAL;
    }
    if (json_string_length(jq) > AC_KB_MAX_QUERY_BYTES) {
        *error = apr_psprintf(ctx->pool, "query is too long (max %d bytes)", AC_KB_MAX_QUERY_BYTES);
        return APR_EINVAL;
    }
    if (kb_max_results(json_object_get(args, "max_results"), &max) < 0) {
        *error = "max_results must be an integer";
        return APR_EINVAL;
    }
    if (!kb) {
        *error = "the knowledge base is not available";
        return APR_EGENERAL;
    }
    rv = ac_kb_search(kb, query, max, ctx->pool, &hits);
    if (rv != APR_SUCCESS) {
        *error = "query must contain at least one word";
        return rv;
    }
    res = ac_json_object(ctx->pool);
    ac_json_set_str(res, "query", query);
    list = json_array();
    for (int i = 0; i < hits->nelts; i++) {
        const ac_kb_hit_t *h = &APR_ARRAY_IDX(hits, i, ac_kb_hit_t);
        json_t *o = json_object();
        ac_json_set_str(o, "title", h->title);
        ac_json_set_str(o, "snippet", h->snippet);
        json_object_set_new(o, "score", json_real(round(h->score * 10000) / 10000));
        ac_json_set_str(o, "source", h->source);
        json_array_append_new(list, o);
    }
    json_object_set_new(res, "results", list);
    *result = res;
    return APR_SUCCESS;
}

const ac_tool_t *ac_tool_kb(apr_pool_t *p, const ac_kb_t *kb)
{
    ac_tool_t *t = apr_pcalloc(p, sizeof(*t));

    t->name = "search_knowledge_base";
    t->description =
        "Search the knowledge base (the organisation's own documents: policies, FAQs, guides) "
        "for passages relevant to a question. Returns the best-matching documents, most "
        "relevant first, each with a title, a snippet of the matching passage, a relevance "
        "score and the source file. Use it before answering questions about the product or "
        "its policies, base the answer on the snippets and mention the source; an empty "
        "result list means nothing relevant was found.";
    t->parameters_json = kb_schema;
    t->call = kb_tool_call;
    t->baton = (void *)kb; /* read-only: searches never write the index */
    return t;
}

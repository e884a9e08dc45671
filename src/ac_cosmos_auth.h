/* ac_cosmos_auth: the Cosmos DB master-key request signature.
 * StringToSign = lower(verb) \n lower(resourceType) \n resourceLink \n lower(x-ms-date) \n \n
 * signed with HMAC-SHA256 under the base64-decoded account key. */
#ifndef AC_COSMOS_AUTH_H
#define AC_COSMOS_AUTH_H

#include <apr_pools.h>

/* Decode the base64 account key.  NULL when it is not valid base64. */
unsigned char *ac_cosmos_key_decode(apr_pool_t *p, const char *b64, apr_size_t *len);

/* The URL-encoded Authorization header value "type=master&ver=1.0&sig=...".
 * resource_link is the link without leading slash ("dbs/x/colls/y"; "" for the
 * account; for a feed (create/query) it is the parent's link). */
const char *ac_cosmos_auth_master(apr_pool_t *p, const unsigned char *key, apr_size_t key_len,
                                  const char *verb, const char *resource_type,
                                  const char *resource_link, const char *date);

#endif

/* RFC 8006 MI client side: walk a uCDN's metadata tree from its HostIndex.
 *
 * A fetcher remembers every document it has seen (URL, ETag, body), asks
 * with If-None-Match, and rebuilds the whole tree, Links replaced by the
 * objects they name, only when something changed. A walk that fails part
 * way returns NULL and leaves the caller's current tree in place: a tree is
 * applied whole or not at all. Links are followed only to the HostIndex's
 * own origin (scheme, host and port), so a peer cannot make us fetch from
 * elsewhere. Not thread-safe: one fetcher per thread. */
#ifndef INTERFACES_MI_CLIENT_H
#define INTERFACES_MI_CLIENT_H

#include <stdbool.h>

#include "common/http_client.h"
#include "interfaces/metadata.h"

typedef struct mi_fetcher mi_fetcher;

mi_fetcher *mi_fetcher_new(const char *bearer_token, const http_client_conf *conf); /* new: mi_fetcher_free */
void mi_fetcher_free(mi_fetcher *f);

/* offline: use only remembered documents (after mi_fetcher_seed), no
 * network. *changed is false when every document was unchanged (the
 * returned tree then equals the previous one). Returns an indexed tree or
 * NULL with err filled in. */
mi_host_index *mi_fetch_tree(mi_fetcher *f, const char *index_url, const mi_policy *pol,
                             bool offline, bool *changed, char *err, size_t errcap); /* new: mi_host_index_free */

/* Remembered documents, for persistence; cb sees each (url, etag, body). */
typedef void (*mi_doc_cb)(const char *url, const char *etag, const char *body, void *ud);
void mi_fetcher_each(const mi_fetcher *f, mi_doc_cb cb, void *ud);
void mi_fetcher_seed(mi_fetcher *f, const char *url, const char *etag, const char *body);

#endif

/* CDNI logging feeds. See li_feed.h. */
#include "interfaces/li_feed.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ATOM_NS "http://www.w3.org/2005/Atom"
#define FH_NS "http://purl.org/syndication/history/1.0"

static bool is(const xmlNode *n, const char *ns, const char *name)
{
    return n->type == XML_ELEMENT_NODE && n->ns && n->ns->href && strcmp((const char *)n->ns->href, ns) == 0 &&
           strcmp((const char *)n->name, name) == 0;
}

static void text_of(const xmlNode *n, char *out, size_t cap)
{
    xmlChar *t = xmlNodeGetContent(n);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
    xmlFree(t);
    /* trim XML white space around the value */
    size_t a = strspn(out, " \t\r\n"), l = strlen(out);
    while (l > a && strchr(" \t\r\n", out[l - 1]))
        l--;
    memmove(out, out + a, l - a);
    out[l - a] = 0;
}

static bool attr(const xmlNode *n, const char *name, char *out, size_t cap)
{
    xmlChar *v = xmlGetProp(n, BAD_CAST name);
    if (!v)
        return false;
    bool fits = (size_t)snprintf(out, cap, "%s", (const char *)v) < cap;
    xmlFree(v);
    return fits;
}

static bool uuid_of(const char *id, char out[40])
{
    if (strncasecmp(id, "urn:uuid:", 9) != 0 || strlen(id) != 9 + 36)
        return false;
    for (int i = 0; i < 36; i++) {
        char c = id[9 + i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
        out[i] = (char)(c >= 'A' && c <= 'F' ? c + 32 : c);
    }
    out[36] = 0;
    return true;
}

/* 64 hex digits, lower-cased; "" otherwise */
static void hash_of(const xmlNode *n, char out[65])
{
    char v[80];
    text_of(n, v, sizeof v);
    out[0] = 0;
    if (strlen(v) != 64)
        return;
    for (int i = 0; i < 64; i++) {
        char c = v[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return;
        v[i] = (char)(c >= 'A' && c <= 'F' ? c + 32 : c);
    }
    memcpy(out, v, 65);
}

static void entry(const xmlNode *en, li_feed *f)
{
    li_feed_entry e = {.length = -1};
    char id[128] = "", enclosure[LI_FEED_URL_MAX] = "", src[LI_FEED_URL_MAX] = "";
    for (const xmlNode *c = en->children; c; c = c->next) {
        if (is(c, ATOM_NS, "id"))
            text_of(c, id, sizeof id);
        else if (is(c, ATOM_NS, "updated"))
            text_of(c, e.updated, sizeof e.updated);
        else if (is(c, ATOM_NS, "content"))
            attr(c, "src", src, sizeof src);
        else if (is(c, LI_FEED_EXT_NS, LI_FEED_EXT_HASH))
            hash_of(c, e.sha256);
        else if (is(c, ATOM_NS, "link")) {
            char rel[32] = "", len[24] = "";
            attr(c, "rel", rel, sizeof rel);
            if (strcmp(rel, "enclosure") == 0 && attr(c, "href", enclosure, sizeof enclosure) &&
                attr(c, "length", len, sizeof len)) {
                char *end;
                long long v = strtoll(len, &end, 10);
                if (*len && !*end && v >= 0)
                    e.length = v;
            }
        }
    }
    if (!uuid_of(id, e.uuid) || !(src[0] || enclosure[0]))
        return;
    memcpy(e.href, src[0] ? src : enclosure, sizeof e.href);
    f->e[f->n++] = e;
}

bool li_feed_parse(const char *text, size_t len, li_feed *out, const char **why)
{
    memset(out, 0, sizeof *out);
    if (len > (size_t)64 << 20 || len > 0x7fffffff) {
        *why = "the feed is too large";
        return false;
    }
    xmlDocPtr doc = xmlReadMemory(text, (int)len, "feed.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!root || !is(root, ATOM_NS, "feed")) {
        *why = doc ? "not an Atom feed" : "not well-formed XML";
        xmlFreeDoc(doc);
        return false;
    }
    if (doc->intSubset || doc->extSubset) {
        *why = "a feed must not have a DTD";
        xmlFreeDoc(doc);
        return false;
    }
    size_t n = 0;
    for (const xmlNode *c = root->children; c; c = c->next)
        n += is(c, ATOM_NS, "entry");
    if (n > LI_FEED_MAX) {
        *why = "too many entries in one feed document";
        xmlFreeDoc(doc);
        return false;
    }
    out->e = calloc(n ? n : 1, sizeof *out->e);
    if (!out->e) {
        *why = "out of memory";
        xmlFreeDoc(doc);
        return false;
    }
    for (const xmlNode *c = root->children; c; c = c->next) {
        if (is(c, ATOM_NS, "entry"))
            entry(c, out);
        else if (is(c, FH_NS, "archive"))
            out->archive = true;
        else if (is(c, ATOM_NS, "link")) {
            char rel[32] = "";
            attr(c, "rel", rel, sizeof rel);
            if (strcmp(rel, "prev-archive") == 0 && !attr(c, "href", out->prev_archive, sizeof out->prev_archive))
                out->prev_archive[0] = 0;
        }
    }
    xmlFreeDoc(doc);
    return true;
}

void li_feed_free(li_feed *f)
{
    free(f->e);
    f->e = NULL;
    f->n = 0;
}

bool li_feed_resolve(const char *base, const char *ref, char *out, size_t cap)
{
    if (strncmp(ref, "http://", 7) == 0 || strncmp(ref, "https://", 8) == 0)
        return (size_t)snprintf(out, cap, "%s", ref) < cap;
    if (ref[0] != '/' || ref[1] == '/')
        return false;
    const char *hs = strstr(base, "://");
    if (!hs)
        return false;
    size_t origin = (size_t)(hs + 3 - base) + strcspn(hs + 3, "/?#");
    return (size_t)snprintf(out, cap, "%.*s%s", (int)origin, base, ref) < cap;
}

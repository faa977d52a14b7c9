/* CDNI logging feeds. See li_feed.h. */
#include "interfaces/li_feed.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>
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

/* --- writing ------------------------------------------------------------------------------ */

#define LI_FILE_TYPE "application/cdni; ptype=logging-file"

static void write_link(xmlTextWriterPtr w, const char *rel, const char *href, const char *type, const char *length)
{
    xmlTextWriterStartElement(w, BAD_CAST "link");
    xmlTextWriterWriteAttribute(w, BAD_CAST "href", BAD_CAST href);
    xmlTextWriterWriteAttribute(w, BAD_CAST "rel", BAD_CAST rel);
    xmlTextWriterWriteAttribute(w, BAD_CAST "type", BAD_CAST type);
    if (length)
        xmlTextWriterWriteAttribute(w, BAD_CAST "length", BAD_CAST length);
    xmlTextWriterEndElement(w);
}

char *li_feed_write(const li_feed_meta *m, const li_feed_item *items, size_t n, size_t *len)
{
    xmlBufferPtr xb = xmlBufferCreate();
    xmlTextWriterPtr w = xb ? xmlNewTextWriterMemory(xb, 0) : NULL;
    if (!w) {
        xmlBufferFree(xb);
        return NULL;
    }
    xmlTextWriterStartDocument(w, NULL, "utf-8", NULL);
    xmlTextWriterStartElementNS(w, NULL, BAD_CAST "feed", BAD_CAST ATOM_NS);
    xmlTextWriterWriteAttribute(w, BAD_CAST "xmlns:fh", BAD_CAST FH_NS);
    xmlTextWriterWriteAttribute(w, BAD_CAST "xmlns:li", BAD_CAST LI_FEED_EXT_NS);
    xmlTextWriterWriteElement(w, BAD_CAST "title", BAD_CAST m->title);
    xmlTextWriterWriteElement(w, BAD_CAST "updated", BAD_CAST m->updated);
    xmlTextWriterWriteElement(w, BAD_CAST "id", BAD_CAST m->id);
    if (m->archive)
        xmlTextWriterWriteElement(w, BAD_CAST "fh:archive", BAD_CAST "");
    write_link(w, "self", m->self, "application/atom+xml", NULL);
    if (m->current)
        write_link(w, "current", m->current, "application/atom+xml", NULL);
    if (m->prev_archive)
        write_link(w, "prev-archive", m->prev_archive, "application/atom+xml", NULL);
    if (m->next_archive)
        write_link(w, "next-archive", m->next_archive, "application/atom+xml", NULL);
    xmlTextWriterStartElement(w, BAD_CAST "author");
    xmlTextWriterWriteElement(w, BAD_CAST "name", BAD_CAST m->author);
    xmlTextWriterEndElement(w);
    for (size_t i = 0; i < n; i++) {
        const li_feed_item *e = &items[i];
        char urn[80], size[24];
        snprintf(urn, sizeof urn, "urn:uuid:%s", e->uuid);
        snprintf(size, sizeof size, "%lld", e->length);
        xmlTextWriterStartElement(w, BAD_CAST "entry");
        xmlTextWriterWriteElement(w, BAD_CAST "title", BAD_CAST e->title);
        xmlTextWriterWriteElement(w, BAD_CAST "id", BAD_CAST urn);
        xmlTextWriterWriteElement(w, BAD_CAST "updated", BAD_CAST e->updated);
        xmlTextWriterStartElement(w, BAD_CAST "content");
        xmlTextWriterWriteAttribute(w, BAD_CAST "src", BAD_CAST e->href);
        xmlTextWriterWriteAttribute(w, BAD_CAST "type", BAD_CAST LI_FILE_TYPE);
        xmlTextWriterEndElement(w);
        xmlTextWriterWriteElement(w, BAD_CAST "summary", BAD_CAST e->summary);
        write_link(w, "enclosure", e->href, LI_FILE_TYPE, size);
        if (e->sha256) /* the file's own #SHA256-hash value */
            xmlTextWriterWriteElement(w, BAD_CAST "li:" LI_FEED_EXT_HASH, BAD_CAST e->sha256);
        xmlTextWriterEndElement(w);
    }
    xmlTextWriterEndElement(w);
    int rc = xmlTextWriterEndDocument(w);
    xmlFreeTextWriter(w);
    char *out = NULL;
    if (rc >= 0 && (out = malloc((size_t)xmlBufferLength(xb) + 1)) != NULL) {
        *len = (size_t)xmlBufferLength(xb);
        memcpy(out, xmlBufferContent(xb), *len + 1);
    }
    xmlBufferFree(xb);
    return out;
}

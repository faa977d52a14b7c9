/* DASH MPD rewriting over libxml2. See dash.h. */
#include "manifest/dash.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <pthread.h>
#include <string.h>

static pthread_once_t g_xml_once = PTHREAD_ONCE_INIT;
static void xml_init(void) { xmlInitParser(); } /* once, before threads parse */

const char *dash_status_text(dash_status s)
{
    static const char *const t[] = {"ok", "not a DASH MPD", "MPD too large", "MPD with a DOCTYPE refused",
                                    "rewrite failed (XML, memory or hook)"};
    return (unsigned)s < sizeof t / sizeof *t ? t[s] : "?";
}

bool dash_is_mpd(const char *in, size_t n)
{
    size_t look = n < 4096 ? n : 4096;
    const char *p = memmem(in, look, "<MPD", 4);
    if (!p)
        p = memmem(in, look, ":MPD", 4); /* a prefixed root, <dash:MPD */
    return p && (size_t)(p - in) + 4 < look && strchr(" \t\r\n>", p[4]);
}

static bool is(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

typedef struct {
    const mf_policy *p;  /* in use: top or nested */
    const mf_policy *top; /* MPD-level BaseURL, Location, PatchLocation: relative to the MPD's URL */
    mf_policy nested;     /* everything else: relative to the BaseURL chain, never absolutized */
    buf scratch;
    dash_stats *st;
    bool failed;
} walk;

/* value rewritten, or NULL when kept (xmlFree the result) */
static xmlChar *rewrite_value(walk *w, const xmlChar *v)
{
    w->st->uris++;
    buf_truncate(&w->scratch, 0);
    size_t n = strlen((const char *)v), a = 0, b = n;
    while (a < b && strchr(" \t\r\n", v[a])) /* element text may be indented */
        a++;
    while (b > a && strchr(" \t\r\n", v[b - 1]))
        b--;
    buf_add(&w->scratch, v, a);
    mf_result r = mf_rewrite_uri(w->p, (const char *)v + a, b - a, &w->scratch);
    if (r == MF_FAILED)
        w->failed = true;
    if (r != MF_REWRITTEN)
        return NULL;
    buf_add(&w->scratch, v + b, n - b);
    if (!buf_ok(&w->scratch)) {
        w->failed = true;
        return NULL;
    }
    w->st->rewritten++;
    return xmlStrndup((const xmlChar *)w->scratch.data, (int)w->scratch.len);
}

static void attr(walk *w, xmlNode *n, const char *name)
{
    xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
    if (!v)
        return;
    xmlChar *nv = rewrite_value(w, v);
    if (nv && !xmlSetProp(n, (const xmlChar *)name, nv))
        w->failed = true;
    xmlFree(nv);
    xmlFree(v);
}

static void text(walk *w, xmlNode *n)
{
    xmlChar *v = xmlNodeGetContent(n);
    if (!v)
        return;
    xmlChar *nv = rewrite_value(w, v);
    if (nv) {
        xmlChar *esc = xmlEncodeSpecialChars(n->doc, nv); /* xmlNodeSetContent takes markup */
        if (esc)
            xmlNodeSetContent(n, esc);
        else
            w->failed = true;
        xmlFree(esc);
    }
    xmlFree(nv);
    xmlFree(v);
}

static void visit(walk *w, xmlNode *n, bool top)
{
    for (; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        w->p = top ? w->top : &w->nested;
        if (is(n, "BaseURL") || is(n, "Location") || is(n, "PatchLocation") || is(n, "ContentSteering")) {
            text(w, n);
            continue;
        }
        w->p = &w->nested;
        if (is(n, "SegmentTemplate")) {
            attr(w, n, "media");
            attr(w, n, "initialization");
            attr(w, n, "index");
        } else if (is(n, "SegmentURL")) {
            attr(w, n, "media");
            attr(w, n, "index");
        } else if (is(n, "Initialization") || is(n, "RepresentationIndex")) {
            attr(w, n, "sourceURL");
        }
        visit(w, n->children, false);
    }
}

dash_status dash_rewrite(const char *in, size_t n, size_t max, const mf_policy *p, buf *out, dash_stats *st)
{
    dash_stats dummy;
    if (!st)
        st = &dummy;
    memset(st, 0, sizeof *st);
    if (n > max || n > (size_t)INT32_MAX)
        return DASH_TOO_LARGE;
    if (!dash_is_mpd(in, n))
        return DASH_NOT_MPD;
    if (memmem(in, n, "<!DOCTYPE", 9) || memmem(in, n, "<!ENTITY", 8))
        return DASH_DTD;
    pthread_once(&g_xml_once, xml_init);
    xmlDoc *doc = xmlReadMemory(in, (int)n, NULL, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc)
        return DASH_NOT_MPD;
    xmlNode *root = xmlDocGetRootElement(doc);
    if (!root || !is(root, "MPD") || doc->intSubset) {
        xmlFreeDoc(doc);
        return root && doc->intSubset ? DASH_DTD : DASH_NOT_MPD;
    }
    walk w = {.p = p, .top = p, .nested = *p, .st = st};
    w.nested.absolutize = false;
    buf_init(&w.scratch, 256, 64 * 1024);
    /* the MPD's own references first: the BaseURL inserted below is ours,
     * already at the target, never rewritten again */
    bool has_base = false;
    for (xmlNode *c = root->children; c; c = c->next)
        has_base |= c->type == XML_ELEMENT_NODE && is(c, "BaseURL");
    visit(&w, root->children, true);
    /* absolutize: the MPD's relative references resolve at the target */
    if (p->absolutize) {
        if (!has_base) {
            xmlNode *b = xmlNewDocNode(doc, root->ns, (const xmlChar *)"BaseURL", NULL);
            xmlChar *esc = b ? xmlEncodeSpecialChars(doc, (const xmlChar *)p->target_dir) : NULL;
            if (!b || !esc)
                w.failed = true;
            else {
                xmlNodeSetContent(b, esc);
                xmlNode *first = root->children;
                if (first && first->type == XML_TEXT_NODE && xmlIsBlankNode(first)) {
                    /* after the indentation, and indented like its siblings */
                    xmlAddNextSibling(first, b);
                    xmlAddNextSibling(b, xmlNewDocText(doc, first->content));
                } else if (first) {
                    xmlAddPrevSibling(first, b);
                } else {
                    xmlAddChild(root, b);
                }
                st->rewritten++;
            }
            xmlFree(esc);
        }
    }
    buf_free(&w.scratch);
    xmlChar *s = NULL;
    int sl = 0;
    if (!w.failed)
        xmlDocDumpMemoryEnc(doc, &s, &sl, "UTF-8");
    xmlFreeDoc(doc);
    if (!s) {
        return DASH_FAILED;
    }
    buf_add(out, s, (size_t)sl);
    xmlFree(s);
    return buf_ok(out) ? DASH_OK : DASH_FAILED;
}

/* IP prefix table: interval flattening, binary search, DIR-24-8. */
#include "common/iptable.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;

struct iptable_builder {
    ipt_entry *e;
    size_t n, cap;
};

struct iptable {
    ipt_entry *entries;
    size_t n;
    /* IPv4: interval starts and labels (entry index or IPT_NONE). */
    uint32_t *s4, *v4;
    size_t n4;
    /* IPv6 */
    u128 *s6;
    uint32_t *v6;
    size_t n6;
    /* DIR-24-8: entry+1, 0 for none; bit 31 marks a tbl8 group index. */
    uint32_t *tbl24, *tbl8;
    size_t n8;
};

#define DIR_EXT 0x80000000u

static u128 key_of(const ipt_addr *a)
{
    u128 k = 0;
    if (!a->v6) {
        for (int i = 0; i < 4; i++)
            k = (k << 8) | a->bytes[i];
        return k;
    }
    for (int i = 0; i < 16; i++)
        k = (k << 8) | a->bytes[i];
    return k;
}

static unsigned width(const ipt_addr *a) { return a->v6 ? 128 : 32; }

static u128 span_mask(unsigned w, unsigned len) /* host bits of a /len */
{
    unsigned host = w - len;
    if (host == 0)
        return 0;
    if (host >= 128)
        return ~(u128)0;
    return ((u128)1 << host) - 1;
}

void ipt_mask(ipt_addr *a, unsigned len)
{
    unsigned nb = a->v6 ? 16 : 4;
    for (unsigned i = 0; i < nb; i++) {
        unsigned bit = i * 8;
        if (bit >= len)
            a->bytes[i] = 0;
        else if (bit + 8 > len)
            a->bytes[i] &= (uint8_t)(0xff << (8 - (len - bit)));
    }
    for (unsigned i = nb; i < 16; i++)
        a->bytes[i] = 0;
}

iptable_builder *iptb_new(void) { return calloc(1, sizeof(iptable_builder)); }

bool iptb_add(iptable_builder *b, const ipt_addr *a, unsigned len, uint32_t value)
{
    if (len > width(a) || b->n >= IPT_NONE - 1)
        return false;
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 64;
        ipt_entry *ne = realloc(b->e, nc * sizeof *ne);
        if (!ne)
            return false;
        b->e = ne;
        b->cap = nc;
    }
    ipt_entry *e = &b->e[b->n++];
    e->addr = *a;
    ipt_mask(&e->addr, len);
    e->len = (uint8_t)len;
    e->value = value;
    e->parent = IPT_NONE;
    return true;
}

/* --- flattening ------------------------------------------------------------ */

typedef struct {
    u128 start;
    uint32_t idx;
    uint8_t len;
} sort_item;

static int cmp_item(const void *pa, const void *pb)
{
    const sort_item *a = pa, *b = pb;
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    return a->idx < b->idx ? -1 : (a->idx > b->idx);
}

typedef struct {
    u128 *start;
    uint32_t *val;
    size_t n, cap;
    bool oom;
} ivl_out;

static void emit(ivl_out *o, u128 from, u128 to, uint32_t val)
{
    if (from > to || o->oom)
        return;
    if (o->n && o->val[o->n - 1] == val)
        return; /* extends the previous interval */
    if (o->n == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 64;
        u128 *ns = realloc(o->start, nc * sizeof *ns);
        uint32_t *nv = ns ? realloc(o->val, nc * sizeof *nv) : NULL;
        if (ns)
            o->start = ns;
        if (!nv) {
            o->oom = true;
            return;
        }
        o->val = nv;
        o->cap = nc;
    }
    o->start[o->n] = from;
    o->val[o->n++] = val;
}

/* Flatten the entries of one family (items sorted) into intervals covering
 * [0, max]; sets each entry's parent. */
static bool flatten(ipt_entry *entries, sort_item *it, size_t n, unsigned w, ivl_out *o)
{
    u128 max = span_mask(w, 0);
    uint32_t *stack = malloc((n ? n : 1) * sizeof *stack);
    u128 *ends = malloc((n ? n : 1) * sizeof *ends);
    if (!stack || !ends) {
        free(stack);
        free(ends);
        return false;
    }
    size_t sp = 0;
    u128 cur = 0;
    bool done = false; /* cur passed max */
    for (size_t i = 0; i < n; i++) {
        u128 st = it[i].start, en = st | span_mask(w, it[i].len);
        while (sp && ends[sp - 1] < st) {
            emit(o, cur, ends[sp - 1], stack[sp - 1]);
            cur = ends[sp - 1] + 1;
            sp--;
        }
        if (st > cur)
            emit(o, cur, st - 1, sp ? stack[sp - 1] : IPT_NONE);
        entries[it[i].idx].parent = sp ? stack[sp - 1] : IPT_NONE;
        stack[sp] = it[i].idx;
        ends[sp++] = en;
        cur = st;
    }
    while (sp) {
        emit(o, cur, ends[sp - 1], stack[sp - 1]);
        if (ends[sp - 1] == max) {
            done = true;
            break;
        }
        cur = ends[sp - 1] + 1;
        sp--;
    }
    if (!done)
        emit(o, cur, max, IPT_NONE);
    free(stack);
    free(ends);
    return !o->oom;
}

static bool dir24_group(iptable *t, uint32_t blk, size_t *cap8)
{
    if (t->tbl24[blk] & DIR_EXT)
        return true;
    if (t->n8 == *cap8) {
        size_t nc = *cap8 ? *cap8 * 2 : 256;
        if (nc >= (DIR_EXT >> 8))
            return false;
        uint32_t *n8 = realloc(t->tbl8, nc * 256 * sizeof *n8);
        if (!n8)
            return false;
        t->tbl8 = n8;
        *cap8 = nc;
    }
    uint32_t g = (uint32_t)t->n8++;
    for (int i = 0; i < 256; i++)
        t->tbl8[(size_t)g * 256 + (size_t)i] = t->tbl24[blk];
    t->tbl24[blk] = DIR_EXT | g;
    return true;
}

static bool dir24_build(iptable *t)
{
    t->tbl24 = calloc((size_t)1 << 24, sizeof *t->tbl24);
    if (!t->tbl24)
        return false;
    size_t cap8 = 0;
    for (size_t i = 0; i < t->n4; i++) {
        if (t->v4[i] == IPT_NONE)
            continue;
        uint32_t a = t->s4[i];
        uint32_t b = i + 1 < t->n4 ? t->s4[i + 1] - 1 : UINT32_MAX;
        uint32_t v = t->v4[i] + 1;
        uint32_t ba = a >> 8, bb = b >> 8;
        if (ba == bb && ((a & 255) || (b & 255) != 255)) {
            if (!dir24_group(t, ba, &cap8))
                return false;
            for (uint32_t k = a & 255; k <= (b & 255); k++)
                t->tbl8[(size_t)(t->tbl24[ba] & ~DIR_EXT) * 256 + k] = v;
            continue;
        }
        if (a & 255) {
            if (!dir24_group(t, ba, &cap8))
                return false;
            for (uint32_t k = a & 255; k < 256; k++)
                t->tbl8[(size_t)(t->tbl24[ba] & ~DIR_EXT) * 256 + k] = v;
            ba++;
        }
        if ((b & 255) != 255) {
            if (!dir24_group(t, bb, &cap8))
                return false;
            for (uint32_t k = 0; k <= (b & 255); k++)
                t->tbl8[(size_t)(t->tbl24[bb] & ~DIR_EXT) * 256 + k] = v;
            if (bb == 0)
                continue;
            bb--;
        }
        for (uint64_t blk = ba; blk <= bb; blk++)
            t->tbl24[blk] = v;
    }
    return true;
}

iptable *iptb_build(iptable_builder *b, int dir24)
{
    iptable *t = calloc(1, sizeof *t);
    sort_item *it4 = NULL, *it6 = NULL;
    ivl_out o4 = {0}, o6 = {0};
    if (!t)
        goto fail;
    t->entries = b->e;
    t->n = b->n;
    b->e = NULL;
    size_t c4 = 0, c6 = 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->entries[i].addr.v6)
            c6++;
        else
            c4++;
    it4 = malloc((c4 ? c4 : 1) * sizeof *it4);
    it6 = malloc((c6 ? c6 : 1) * sizeof *it6);
    if (!it4 || !it6)
        goto fail;
    size_t k4 = 0, k6 = 0;
    for (size_t i = 0; i < t->n; i++) {
        const ipt_entry *e = &t->entries[i];
        sort_item s = {key_of(&e->addr), (uint32_t)i, e->len};
        if (e->addr.v6)
            it6[k6++] = s;
        else
            it4[k4++] = s;
    }
    qsort(it4, c4, sizeof *it4, cmp_item);
    qsort(it6, c6, sizeof *it6, cmp_item);
    if (!flatten(t->entries, it4, c4, 32, &o4) || !flatten(t->entries, it6, c6, 128, &o6))
        goto fail;
    t->n4 = o4.n;
    t->s4 = malloc(o4.n * sizeof *t->s4);
    t->v4 = o4.val;
    o4.val = NULL;
    if (!t->s4)
        goto fail;
    for (size_t i = 0; i < o4.n; i++)
        t->s4[i] = (uint32_t)o4.start[i];
    t->n6 = o6.n;
    t->s6 = o6.start;
    t->v6 = o6.val;
    o6.start = NULL;
    o6.val = NULL;
    if ((dir24 > 0 || (dir24 < 0 && c4 >= IPT_DIR24_MIN)) && !dir24_build(t))
        goto fail;
    free(it4);
    free(it6);
    free(o4.start);
    free(b);
    return t;
fail:
    free(it4);
    free(it6);
    free(o4.start);
    free(o4.val);
    free(o6.start);
    free(o6.val);
    free(b->e);
    free(b);
    ipt_free(t);
    return NULL;
}

void ipt_free(iptable *t)
{
    if (!t)
        return;
    free(t->entries);
    free(t->s4);
    free(t->v4);
    free(t->s6);
    free(t->v6);
    free(t->tbl24);
    free(t->tbl8);
    free(t);
}

/* --- lookup ---------------------------------------------------------------- */

uint32_t ipt_lookup4(const iptable *t, uint32_t a)
{
    if (t->tbl24) {
        uint32_t e = t->tbl24[a >> 8];
        if (e & DIR_EXT)
            e = t->tbl8[(size_t)(e & ~DIR_EXT) * 256 + (a & 255)];
        return e - 1; /* 0 - 1 == IPT_NONE */
    }
    size_t lo = 0, hi = t->n4; /* last start <= a; s4[0] == 0 */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->s4[mid] <= a)
            lo = mid;
        else
            hi = mid;
    }
    return t->n4 ? t->v4[lo] : IPT_NONE;
}

uint32_t ipt_lookup(const iptable *t, const ipt_addr *a)
{
    if (!a->v6)
        return ipt_lookup4(t, (uint32_t)a->bytes[0] << 24 | (uint32_t)a->bytes[1] << 16 |
                                  (uint32_t)a->bytes[2] << 8 | a->bytes[3]);
    u128 k = key_of(a);
    size_t lo = 0, hi = t->n6;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->s6[mid] <= k)
            lo = mid;
        else
            hi = mid;
    }
    return t->n6 ? t->v6[lo] : IPT_NONE;
}

const ipt_entry *ipt_entry_at(const iptable *t, uint32_t idx)
{
    return idx < t->n ? &t->entries[idx] : NULL;
}
size_t ipt_count(const iptable *t) { return t ? t->n : 0; }
size_t ipt_intervals(const iptable *t, bool v6) { return v6 ? t->n6 : t->n4; }
bool ipt_has_dir24(const iptable *t) { return t->tbl24 != NULL; }

/* --- text ------------------------------------------------------------------ */

bool ipt_parse_addr(const char *s, size_t n, ipt_addr *out)
{
    char buf[INET6_ADDRSTRLEN + 1];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = 0;
    if (memchr(buf, 0, n))
        return false;
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, buf, out->bytes) == 1)
        return true;
    if (inet_pton(AF_INET6, buf, out->bytes) != 1)
        return false;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(out->bytes, mapped, 12) == 0) {
        memmove(out->bytes, out->bytes + 12, 4);
        memset(out->bytes + 4, 0, 12);
        return true;
    }
    out->v6 = 1;
    return true;
}

bool ipt_parse_prefix(const char *s, size_t n, ipt_addr *out, unsigned *len)
{
    const char *slash = memchr(s, '/', n);
    if (!slash)
        return false;
    size_t an = (size_t)(slash - s), ln = n - an - 1;
    if (ln == 0 || ln > 3)
        return false;
    unsigned l = 0;
    for (size_t i = 0; i < ln; i++) {
        char c = slash[1 + i];
        if (c < '0' || c > '9')
            return false;
        l = l * 10 + (unsigned)(c - '0');
    }
    char buf[INET6_ADDRSTRLEN + 1];
    if (an == 0 || an >= sizeof buf)
        return false;
    memcpy(buf, s, an);
    buf[an] = 0;
    if (memchr(buf, 0, an))
        return false;
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, buf, out->bytes) != 1) {
        if (inet_pton(AF_INET6, buf, out->bytes) != 1)
            return false;
        out->v6 = 1;
    }
    if (l > width(out))
        return false;
    ipt_mask(out, l);
    *len = l;
    return true;
}

void ipt_format_prefix(const ipt_addr *a, unsigned len, char *buf, size_t cap)
{
    char t[INET6_ADDRSTRLEN];
    inet_ntop(a->v6 ? AF_INET6 : AF_INET, a->bytes, t, sizeof t);
    snprintf(buf, cap, "%s/%u", t, len);
}

bool ipt_contains(const ipt_addr *a, unsigned len, const ipt_addr *x)
{
    if (a->v6 != x->v6 || len > width(a))
        return false;
    ipt_addr m = *x;
    ipt_mask(&m, len);
    return memcmp(m.bytes, a->bytes, a->v6 ? 16 : 4) == 0;
}

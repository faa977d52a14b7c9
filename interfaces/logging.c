/* CDNI Logging files (RFC 7937). See logging.h. */
#include "interfaces/logging.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* --- fields ------------------------------------------------------------------- */

static const struct {
    const char *name;
    bool mandatory; /* "one and only one instance" */
} known[LF_N_KNOWN] = {
    [LF_DATE] = {"date", true},
    [LF_TIME] = {"time", true},
    [LF_TIME_TAKEN] = {"time-taken", true},
    [LF_C_GROUPID] = {"c-groupid", true},
    [LF_S_IP] = {"s-ip", false},
    [LF_S_HOSTNAME] = {"s-hostname", false},
    [LF_S_PORT] = {"s-port", false},
    [LF_CS_METHOD] = {"cs-method", true},
    [LF_CS_URI] = {"cs-uri", false},
    [LF_U_URI] = {"u-uri", true},
    [LF_PROTOCOL] = {"protocol", true},
    [LF_SC_STATUS] = {"sc-status", true},
    [LF_SC_TOTAL_BYTES] = {"sc-total-bytes", true},
    [LF_SC_ENTITY_BYTES] = {"sc-entity-bytes", false},
    [LF_CS_HEADER] = {"cs", false},
    [LF_SC_HEADER] = {"sc", false},
    [LF_S_CCID] = {"s-ccid", false},
    [LF_S_SID] = {"s-sid", false},
    [LF_S_CACHED] = {"s-cached", false},
    [LF_S_URI_SIGNING] = {"s-uri-signing", false},
    [LF_S_URI_SIGNING_DENY_REASON] = {"s-uri-signing-deny-reason", false},
};

void li_field_name(const li_field *f, char *out, size_t cap)
{
    if (f->id == LF_CS_HEADER || f->id == LF_SC_HEADER)
        snprintf(out, cap, "%s(%s)", known[f->id].name, f->header);
    else
        snprintf(out, cap, "%s", known[f->id].name);
}

/* An HTTP field name (RFC 9110 token). */
static bool token_ok(const char *s, size_t n)
{
    if (n == 0 || n >= LI_HEADER_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && !strchr("!#$%&'*+-.^_`|~", c))
            return false;
    }
    return true;
}

bool li_field_parse(const char *s, size_t n, li_field *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < LF_N_KNOWN; i++) {
        size_t kn = strlen(known[i].name);
        if (i == LF_CS_HEADER || i == LF_SC_HEADER) {
            if (n > kn + 2 && strncasecmp(s, known[i].name, kn) == 0 && s[kn] == '(' && s[n - 1] == ')' &&
                token_ok(s + kn + 1, n - kn - 2)) {
                out->id = (li_field_id)i;
                memcpy(out->header, s + kn + 1, n - kn - 2);
                out->header[n - kn - 2] = 0;
                return true;
            }
        } else if (n == kn && strncasecmp(s, known[i].name, n) == 0) {
            out->id = (li_field_id)i;
            return true;
        }
    }
    return false;
}

static bool fields_check(const li_fields *f, const char **why)
{
    bool seen[LF_N_KNOWN] = {false};
    for (size_t i = 0; i < f->n; i++) {
        li_field_id id = f->f[i].id;
        if (id == LF_CS_HEADER || id == LF_SC_HEADER) {
            /* sc(name): zero or one per name; cs() may repeat (§3.4.1) */
            for (size_t j = 0; id == LF_SC_HEADER && j < i; j++)
                if (f->f[j].id == id && strcasecmp(f->f[j].header, f->f[i].header) == 0) {
                    *why = "a field appears twice in the fields directive";
                    return false;
                }
            continue;
        }
        if (seen[id]) {
            *why = "a field appears twice in the fields directive";
            return false;
        }
        seen[id] = true;
    }
    for (int i = 0; i < LF_N_KNOWN; i++)
        if (known[i].mandatory && !seen[i]) {
            *why = "the fields directive lacks a mandatory field (date, time, time-taken, c-groupid, cs-method, "
                   "u-uri, protocol, sc-status, sc-total-bytes)";
            return false;
        }
    return true;
}

bool li_fields_parse(const char *s, size_t n, li_fields *out, const char **why)
{
    out->n = 0;
    size_t i = 0;
    while (i <= n) {
        size_t e = i;
        while (e < n && s[e] != '\t')
            e++;
        if (out->n == LI_MAX_FIELDS) {
            *why = "too many fields";
            return false;
        }
        if (!li_field_parse(s + i, e - i, &out->f[out->n])) {
            *why = "an unknown field name in the fields directive";
            return false;
        }
        out->n++;
        i = e + 1;
    }
    return fields_check(out, why);
}

bool li_fields_from_names(const char *const *names, li_fields *out, const char **why)
{
    out->n = 0;
    for (size_t i = 0; names[i]; i++) {
        if (out->n == LI_MAX_FIELDS) {
            *why = "too many fields";
            return false;
        }
        if (!li_field_parse(names[i], strlen(names[i]), &out->f[out->n])) {
            *why = "an unknown field name";
            return false;
        }
        out->n++;
    }
    return fields_check(out, why);
}

/* --- writing ------------------------------------------------------------------ */

static const char hexu[] = "0123456789ABCDEF";

/* How many leading bytes of s (n bytes) need no escaping: SP and visible
 * ASCII, and for a QSTRING not '"' or '%' either. Eight bytes at a time
 * (bit tricks on a 64-bit word; a false alarm only means the byte loop
 * takes over earlier). */
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
static inline bool plain_word(uint64_t x, bool q)
{
    uint64_t bad = ((x - ONES * 0x20) & ~x) | x | (x + ONES); /* < 0x20, >= 0x80, 0x7f */
    if (q) {
        uint64_t a = x ^ (ONES * '"'), b = x ^ (ONES * '%');
        bad |= ((a - ONES) & ~a) | ((b - ONES) & ~b);
    }
    return !(bad & HIGHS);
}

/* Copies the leading bytes of s (n bytes) that need no escaping to p, a
 * word at a time (the last word may overlap bytes already copied: they are
 * the same); returns how many. */
static size_t copy_plain(char *p, const char *s, size_t n, bool q)
{
    size_t i = 0;
    uint64_t x;
    for (; i + 8 <= n; i += 8) {
        memcpy(&x, s + i, 8);
        if (!plain_word(x, q))
            goto bytes;
        memcpy(p + i, &x, 8);
    }
    if (i == n)
        return n;
    if (n >= 8) { /* the last bytes, as a word overlapping the ones already seen */
        memcpy(&x, s + n - 8, 8);
        if (plain_word(x, q)) {
            memcpy(p + n - 8, &x, 8);
            return n;
        }
    } else if (n >= 4) { /* shorter strings: two 4-byte halves, which may overlap */
        uint32_t lo, hi;
        memcpy(&lo, s, 4);
        memcpy(&hi, s + n - 4, 4);
        if (plain_word((uint64_t)lo | (uint64_t)hi << 32, q)) {
            memcpy(p, &lo, 4);
            memcpy(p + n - 4, &hi, 4);
            return n;
        }
    }
bytes:
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || (q && (c == '"' || c == '%')))
            break;
        p[i] = (char)c;
    }
    return i;
}

/* Escaped forms, written at p (room for 3 * n + 2 bytes); return the end. */
static char *esc_body(char *p, const char *s, size_t n, bool q)
{
    size_t i = copy_plain(p, s, n, q); /* the usual case: nothing to escape */
    p += i;
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || (q && (c == '"' || c == '%'))) {
            *p++ = '%';
            *p++ = hexu[c >> 4];
            *p++ = hexu[c & 15];
        } else {
            *p++ = (char)c;
        }
    }
    return p;
}

static char *esc_qstring(char *p, const char *s, size_t n)
{
    *p++ = '"';
    p = esc_body(p, s, n, true);
    *p++ = '"';
    return p;
}

/* NHTABSTRING: HTAB, CR, LF, NUL and any other non-printing byte
 * percent-encoded (§3.4.1); an empty value is "-". */
static char *esc_nhtab(char *p, const char *s, size_t n)
{
    if (!n) {
        *p++ = '-';
        return p;
    }
    return esc_body(p, s, n, false);
}

static void put_esc(buf *out, const char *s, bool q)
{
    if (!s) {
        buf_add(out, "-", 1);
        return;
    }
    size_t n = strlen(s);
    if (!buf_grow(out, 3 * n + 3))
        return;
    char *p = q ? esc_qstring(out->data + out->len, s, n) : esc_nhtab(out->data + out->len, s, n);
    out->len = (size_t)(p - out->data);
    out->data[out->len] = 0;
}

void li_put_qstring(buf *out, const char *s) { put_esc(out, s, true); }
void li_put_nhtab(buf *out, const char *s) { put_esc(out, s && *s ? s : NULL, false); }

static const char DIGITS2[201] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                  "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                  "8081828384858687888990919293949596979899";

static char *put_u(char *p, unsigned long long v)
{
    static const unsigned long long P10[20] = {
        1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL, 100000000ULL,
        1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL, 10000000000000ULL,
        100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL,
        1000000000000000000ULL, 10000000000000000000ULL};
    /* digits: from the bit length (log10(2) ~ 1233/4096), then one compare */
    unsigned bits = 64 - (unsigned)__builtin_clzll(v | 1);
    unsigned n = (bits * 1233) >> 12;
    n += n < 20 && v >= P10[n];
    n += !n;
    char *e = p + n, *b = e;
    while (v >= 100) { /* two digits a division, from the right */
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        b -= 2;
        memcpy(b, DIGITS2 + 2 * r, 2);
    }
    if (v >= 10)
        memcpy(b - 2, DIGITS2 + 2 * v, 2);
    else
        b[-1] = (char)('0' + v);
    return e;
}

bool li_writer_init(li_writer *w)
{
    memset(w, 0, sizeof *w);
    w->date_s = -1;
    return true;
}

void li_writer_free(li_writer *w) { (void)w; }

bool li_write_head(li_writer *w, buf *out, const char *uuid_urn, const char *claimed_origin, const li_fields *f)
{
    buf_adds(out, "#version:\t" LI_VERSION "\r\n#UUID:\t");
    li_put_nhtab(out, uuid_urn);
    if (claimed_origin) {
        buf_adds(out, "\r\n#claimed-origin:\t");
        li_put_nhtab(out, claimed_origin);
    }
    buf_adds(out, "\r\n#record-type:\t" LI_RECORD_HTTP "\r\n#fields:");
    for (size_t i = 0; i < f->n; i++) {
        char name[LI_HEADER_NAME_MAX + 8];
        li_field_name(&f->f[i], name, sizeof name);
        buf_add(out, "\t", 1);
        buf_adds(out, name);
    }
    buf_add(out, "\r\n", 2);
    return buf_ok(out);
}

static void clock_text(li_writer *w, long long end_ms)
{
    long long s = end_ms / 1000;
    if (s != w->date_s) { /* one gmtime per second of records */
        time_t t = (time_t)s;
        struct tm tm;
        gmtime_r(&t, &tm);
        if (!strftime(w->date_txt, sizeof w->date_txt, "%Y-%m-%d", &tm)) /* years past 9999 */
            memcpy(w->date_txt, "9999-12-31", 11);
        strftime(w->time_txt, sizeof w->time_txt, "%H:%M:%S", &tm);
        w->date_s = s;
    }
}

static char *put_dec3(char *p, unsigned v) /* 3 digits, leading zeros */
{
    v %= 1000;
    p[0] = (char)('0' + v / 100);
    memcpy(p + 1, DIGITS2 + 2 * (v % 100), 2);
    return p + 3;
}

static char *put_numv(char *p, long long v)
{
    if (v < 0) {
        *p++ = '-';
        return p;
    }
    return put_u(p, (unsigned long long)v);
}

/* An escaped string field; "-" when absent. */
static char *put_str(char *p, const char *s, size_t n, bool q)
{
    if (!s) {
        *p++ = '-';
        return p;
    }
    return q ? esc_qstring(p, s, n) : esc_nhtab(p, s, n);
}

/* Room for a string field of n bytes at *p (escaped: up to 3n + 2); the
 * buffer may move. */
static bool room(buf *out, char **p, size_t n, size_t rest)
{
    out->len = (size_t)(*p - out->data);
    if (out->len + 3 * n + rest + 3 > out->cap && !buf_grow(out, 3 * n + rest + 3))
        return false;
    *p = out->data + out->len;
    return true;
}

bool li_write_record(li_writer *w, buf *out, const li_fields *f, const li_record *r)
{
    size_t fixed = 32 * f->n + 2; /* every non-string field fits in 32 bytes */
    if (!buf_grow(out, fixed))
        return false;
    clock_text(w, r->end_ms);
    char *p = out->data + out->len;
    for (size_t i = 0; i < f->n; i++) {
        if (i)
            *p++ = '\t';
        const char *v = NULL;
        bool q = false;
        switch (f->f[i].id) {
        case LF_DATE:
            memcpy(p, w->date_txt, 10);
            p += 10;
            continue;
        case LF_TIME:
            memcpy(p, w->time_txt, 8);
            p[8] = '.';
            p = put_dec3(p + 9, (unsigned)(r->end_ms % 1000));
            continue;
        case LF_TIME_TAKEN: /* seconds, with milliseconds */
            if (r->taken_us < 0) {
                *p++ = '-';
            } else {
                long long ms = (r->taken_us + 500) / 1000;
                p = put_u(p, (unsigned long long)(ms / 1000));
                *p++ = '.';
                p = put_dec3(p, (unsigned)(ms % 1000));
            }
            continue;
        case LF_S_PORT:
            p = put_numv(p, r->s_port > 0 ? r->s_port : -1);
            continue;
        case LF_SC_STATUS:
            p = put_numv(p, r->sc_status >= 100 && r->sc_status <= 999 ? r->sc_status : -1);
            continue;
        case LF_SC_TOTAL_BYTES:
            p = put_numv(p, r->sc_total_bytes);
            continue;
        case LF_SC_ENTITY_BYTES:
            p = put_numv(p, r->sc_entity_bytes);
            continue;
        case LF_S_CACHED:
            *p++ = r->s_cached == 1 ? '1' : r->s_cached == 0 ? '0' : '-';
            continue;
        case LF_S_URI_SIGNING:
            if (r->s_uri_signing < 0 || r->s_uri_signing > 999)
                *p++ = '-';
            else
                p = put_dec3(p, (unsigned)r->s_uri_signing);
            continue;
        case LF_C_GROUPID: v = r->c_groupid; break;
        case LF_S_IP: v = r->s_ip; break;
        case LF_S_HOSTNAME: v = r->s_hostname; break;
        case LF_CS_METHOD: v = r->cs_method; break;
        case LF_CS_URI: v = r->cs_uri; break;
        case LF_U_URI: v = r->u_uri; break;
        case LF_PROTOCOL: v = r->protocol; break;
        case LF_CS_HEADER:
        case LF_SC_HEADER:
            v = r->header ? r->header(r->header_ud, f->f[i].id == LF_SC_HEADER, f->f[i].header) : NULL;
            q = true;
            break;
        case LF_S_CCID: v = r->s_ccid && *r->s_ccid ? r->s_ccid : NULL; q = true; break;
        case LF_S_SID: v = r->s_sid && *r->s_sid ? r->s_sid : NULL; q = true; break;
        case LF_S_URI_SIGNING_DENY_REASON: v = r->s_uri_signing_deny_reason; q = true; break;
        case LF_N_KNOWN: continue;
        }
        size_t n = v ? strlen(v) : 0;
        if (!room(out, &p, n, fixed))
            return false;
        p = put_str(p, v && (q || n) ? v : NULL, n, q);
    }
    *p++ = '\r';
    *p++ = '\n';
    out->len = (size_t)(p - out->data);
    out->data[out->len] = 0;
    return true;
}

size_t li_hash_line_of(const unsigned char sha256[32], char out[LI_HASH_LINE_MAX])
{
    memcpy(out, "#SHA256-hash:\t", 14);
    size_t p = 14;
    for (int i = 0; i < 32; i++) {
        out[p++] = "0123456789abcdef"[sha256[i] >> 4];
        out[p++] = "0123456789abcdef"[sha256[i] & 15];
    }
    out[p++] = '\r';
    out[p++] = '\n';
    return p;
}

size_t li_hash_line(const char *data, size_t n, char out[LI_HASH_LINE_MAX])
{
    unsigned char md[32];
    unsigned int ml = 0;
    return EVP_Digest(data, n, md, &ml, EVP_sha256(), NULL) ? li_hash_line_of(md, out) : 0;
}

bool li_write_hash(li_writer *w, buf *out)
{
    (void)w;
    char line[LI_HASH_LINE_MAX];
    size_t n = buf_ok(out) ? li_hash_line(out->data, out->len, line) : 0;
    if (!n)
        return false;
    buf_add(out, line, n);
    return buf_ok(out);
}

/* --- reading ------------------------------------------------------------------- */

static bool dir_is(const char *s, size_t n, const char *name)
{
    size_t k = strlen(name);
    return n == k && strncasecmp(s, name, k) == 0;
}

static int hexv(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void copy_val(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = 0;
}

bool li_parse(const char *text, size_t len, li_record_fn fn, void *ud, li_summary *s, const char **why)
{
    memset(s, 0, sizeof *s);
    li_fields fields = {.n = 0};
    bool have_type = false, have_fields = false, first = true;
    int n_uuid = 0, n_claimed = 0, n_est = 0;
    size_t hash_at = 0;
    const char *hash_hex = NULL;
    size_t i = 0;
    while (i < len) {
        const char *line = text + i;
        const char *nl = memchr(line, '\n', len - i);
        if (!nl || nl == line || nl[-1] != '\r') {
            *why = "lines must end in CRLF";
            return false;
        }
        size_t n = (size_t)(nl - line) - 1;
        if (n > LI_MAX_LINE) {
            *why = "a line is too long";
            return false;
        }
        if (memchr(line, '\r', n)) {
            *why = "a bare CR inside a line";
            return false;
        }
        size_t next = (size_t)(nl - text) + 1;
        if (hash_hex) {
            *why = "the SHA256-hash directive must be the last line";
            return false;
        }
        if (n && line[0] == '#') {
            const char *colon = memchr(line, ':', n);
            if (!colon || (size_t)(colon - line) + 1 >= n || colon[1] != '\t') {
                *why = "a directive is not #name:<HTAB>value";
                return false;
            }
            const char *name = line + 1, *val = colon + 2;
            size_t nn = (size_t)(colon - name), vn = n - (size_t)(val - line);
            if (first && !dir_is(name, nn, "version")) {
                *why = "the first line must be the version directive";
                return false;
            }
            if (dir_is(name, nn, "version")) {
                if (!first) {
                    *why = "the version directive appears twice";
                    return false;
                }
                copy_val(s->version, sizeof s->version, val, vn);
                if (strcasecmp(s->version, LI_VERSION) != 0) {
                    *why = "not a cdni/1.0 logging file";
                    return false;
                }
            } else if (dir_is(name, nn, "UUID")) {
                n_uuid++;
                copy_val(s->uuid, sizeof s->uuid, val, vn);
            } else if (dir_is(name, nn, "claimed-origin")) {
                n_claimed++;
                copy_val(s->claimed_origin, sizeof s->claimed_origin, val, vn);
            } else if (dir_is(name, nn, "established-origin")) {
                n_est++;
                copy_val(s->established_origin, sizeof s->established_origin, val, vn);
            } else if (dir_is(name, nn, "record-type")) {
                if (!dir_is(val, vn, LI_RECORD_HTTP)) {
                    *why = "a record type other than cdni_http_request_v1";
                    return false;
                }
                have_type = true;
                have_fields = false; /* a new record type needs its fields */
            } else if (dir_is(name, nn, "fields")) {
                if (!have_type) {
                    *why = "a fields directive before any record-type";
                    return false;
                }
                if (!li_fields_parse(val, vn, &fields, why))
                    return false;
                have_fields = true;
                s->fields_directives++;
            } else if (dir_is(name, nn, "SHA256-hash")) {
                if (vn != 64) {
                    *why = "the SHA256-hash value is not 64 hex digits";
                    return false;
                }
                for (size_t k = 0; k < 64; k++)
                    if (hexv(val[k]) < 0) {
                        *why = "the SHA256-hash value is not 64 hex digits";
                        return false;
                    }
                hash_hex = val;
                hash_at = i;
            } /* remark and unknown directives: ignored */
            first = false;
        } else {
            if (first) {
                *why = "the first line must be the version directive";
                return false;
            }
            if (!have_fields) {
                *why = "a record before its record-type and fields directives";
                return false;
            }
            const char *vals[LI_MAX_FIELDS];
            size_t lens[LI_MAX_FIELDS], nv = 0, k = 0;
            bool ok = true;
            while (k <= n && ok) {
                size_t e = k;
                while (e < n && line[e] != '\t')
                    e++;
                if (nv == fields.n)
                    ok = false;
                else {
                    vals[nv] = line + k;
                    lens[nv] = e - k;
                    nv++;
                }
                k = e + 1;
            }
            if (ok && nv == fields.n) {
                s->records++;
                if (fn)
                    fn(ud, &fields, vals, lens);
            } else {
                s->ignored_records++; /* §3.4.1: ignored, the others accepted */
            }
        }
        i = next;
    }
    if (first) {
        *why = "an empty file";
        return false;
    }
    if (n_uuid != 1 || n_claimed > 1 || n_est > 1) {
        *why = n_uuid != 1 ? "the UUID directive must appear exactly once"
                           : "an origin directive appears more than once";
        return false;
    }
    if (!have_type) {
        *why = "no record-type directive";
        return false;
    }
    if (hash_hex) {
        s->has_hash = true;
        for (int k = 0; k < 64; k++)
            s->hash[k] = (char)(hash_hex[k] >= 'A' && hash_hex[k] <= 'F' ? hash_hex[k] + 32 : hash_hex[k]);
        s->hash[64] = 0;
        unsigned char md[32];
        unsigned int ml = 0;
        EVP_Digest(text, hash_at, md, &ml, EVP_sha256(), NULL);
        s->hash_ok = true;
        for (int k = 0; k < 32; k++)
            if (hexv(hash_hex[2 * k]) != md[k] >> 4 || hexv(hash_hex[2 * k + 1]) != (md[k] & 15))
                s->hash_ok = false;
        if (!s->hash_ok) {
            *why = "the SHA256-hash does not match the file: it is corrupted";
            return false;
        }
    }
    return true;
}

bool li_unquote(const char *v, size_t n, char *out, size_t cap, bool *absent)
{
    *absent = n == 1 && v[0] == '-';
    if (*absent) {
        if (cap)
            out[0] = 0;
        return true;
    }
    if (n < 2 || v[0] != '"' || v[n - 1] != '"' || cap == 0)
        return false;
    size_t o = 0;
    for (size_t i = 1; i + 1 < n; i++) {
        char c = v[i];
        if (c == '"')
            return false;
        if (c == '%') {
            if (i + 2 >= n - 1 || hexv(v[i + 1]) < 0 || hexv(v[i + 2]) < 0)
                return false;
            c = (char)(hexv(v[i + 1]) * 16 + hexv(v[i + 2]));
            i += 2;
        }
        if (o + 1 >= cap)
            return false;
        out[o++] = c;
    }
    out[o] = 0;
    return true;
}

bool li_field_is_qstring(li_field_id id)
{
    return id == LF_CS_HEADER || id == LF_SC_HEADER || id == LF_S_CCID || id == LF_S_SID ||
           id == LF_S_URI_SIGNING_DENY_REASON;
}

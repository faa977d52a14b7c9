/* libFuzzer target: CDNI logging files (RFC 7937) through the receiver's
 * parser, field lists, and the QSTRING escaping, which must round-trip;
 * and the writer: a record made from the input (numbers from its first
 * bytes, strings from its text) written, parsed back, and compared. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/gz.h"
#include "interfaces/logging.h"

static void on_rec(void *ud, const li_fields *f, const char *const *v, const size_t *len)
{
    char out[256];
    bool absent;
    for (size_t i = 0; i < f->n; i++)
        li_unquote(v[i], len[i], out, sizeof out, &absent);
}

typedef struct {
    const char *want[16];
    size_t n, seen;
} expect;

static void on_written(void *ud, const li_fields *f, const char *const *v, const size_t *len)
{
    expect *e = ud;
    if (f->n != e->n)
        abort();
    for (size_t i = 0; i < f->n; i++) {
        if (li_field_is_qstring(f->f[i].id)) { /* compared unescaped */
            char out[1200];
            bool absent;
            if (!li_unquote(v[i], len[i], out, sizeof out, &absent) || absent || strcmp(out, e->want[i]) != 0)
                abort();
        } else if (len[i] != strlen(e->want[i]) || memcmp(v[i], e->want[i], len[i]) != 0) {
            abort();
        }
    }
    e->seen++;
}

/* The writer's numbers (any width) and strings (escaped or not), parsed back. */
static void write_round_trip(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"date", "time", "time-taken", "c-groupid", "cs-method", "u-uri",
                                        "protocol", "sc-status", "sc-total-bytes", "sc-entity-bytes", "s-ccid",
                                        "s-port", NULL};
    uint64_t a = 0, b = 0;
    memcpy(&a, data, size < 8 ? size : 8);
    if (size > 8)
        memcpy(&b, data + 8, size - 8 < 8 ? size - 8 : 8);
    char text[1024]; /* the rest, NUL-free, as the strings */
    size_t tn = 0;
    for (size_t i = 16; i < size && tn < sizeof text - 1; i++)
        if (data[i])
            text[tn++] = (char)data[i];
    text[tn] = 0;
    long long total = (long long)(a >> 1), entity = (long long)(b >> 1);
    long long end_ms = (long long)(b % 253402300800000ULL); /* up to year 9999 */
    long long taken_us = (long long)(a % 1000000000000ULL);
    int port = (int)(b % 65535) + 1;
    li_fields f;
    const char *why;
    if (!li_fields_from_names(names, &f, &why))
        abort();
    li_record r = {.end_ms = end_ms, .taken_us = taken_us, .c_groupid = text, .cs_method = "GET",
                   .u_uri = text, .protocol = "HTTP/1.1", .sc_status = 200, .sc_total_bytes = total,
                   .sc_entity_bytes = entity, .s_ccid = tn ? text : "c", .s_port = port};
    li_writer w;
    li_writer_init(&w);
    buf out;
    buf_init(&out, 0, 0);
    li_write_head(&w, &out, "urn:uuid:00000000-0000-4000-8000-000000000000", NULL, &f);
    if (!li_write_record(&w, &out, &f, &r) || !li_write_hash(&w, &out))
        abort();
    /* what each field must read back as */
    char date[16], tim[16], taken[32], tot[24], ent[24], prt[8];
    time_t t = (time_t)(end_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%Y-%m-%d", &tm);
    snprintf(tim, sizeof tim, "%02d:%02d:%02d.%03lld", tm.tm_hour, tm.tm_min, tm.tm_sec, end_ms % 1000);
    long long ms = (taken_us + 500) / 1000;
    snprintf(taken, sizeof taken, "%lld.%03lld", ms / 1000, ms % 1000);
    snprintf(tot, sizeof tot, "%lld", total);
    snprintf(ent, sizeof ent, "%lld", entity);
    snprintf(prt, sizeof prt, "%d", port);
    buf nh; /* NHTABSTRING fields: as escaped, "-" when empty */
    buf_init(&nh, 0, 0);
    li_put_nhtab(&nh, text);
    expect e = {.want = {date, tim, taken, nh.data, "GET", nh.data, "HTTP/1.1", "200", tot, ent,
                         tn ? text : "c", prt},
                .n = 12};
    li_summary sum;
    if (!li_parse(out.data, out.len, on_written, &e, &sum, &why) || e.seen != 1 || !sum.hash_ok)
        abort();
    buf_free(&nh);
    buf_free(&out);
    li_writer_free(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    write_round_trip(data, size);
    const char *s = (const char *)data;
    li_summary sum;
    const char *why;
    li_parse(s, size, on_rec, NULL, &sum, &why);
    li_fields f;
    li_fields_parse(s, size, &f, &why);
    if (gz_is_gzip(s, size)) { /* a gzip'd file, as cdnictl and the collector read them */
        buf g;
        buf_init(&g, 0, 0);
        if (gz_inflate(s, size, 1 << 20, &g, &why))
            li_parse(g.data, g.len, on_rec, NULL, &sum, &why);
        buf_free(&g);
    }
    /* escaping round trip on the input as a C string */
    char *z = malloc(size + 1);
    if (!z)
        return 0;
    memcpy(z, data, size);
    z[size] = 0;
    buf b;
    buf_init(&b, 0, 0);
    li_put_qstring(&b, z);
    char *back = malloc(strlen(z) + 1);
    bool absent;
    if (!li_unquote(b.data, b.len, back, strlen(z) + 1, &absent) || strcmp(back, z) != 0)
        abort();
    for (size_t i = 0; i < b.len; i++) /* QSTRING: printable ASCII only, '"' only at the ends */
        if ((unsigned char)b.data[i] < 0x20 || (unsigned char)b.data[i] >= 0x7f ||
            (b.data[i] == '"' && i != 0 && i != b.len - 1))
            abort();
    buf_truncate(&b, 0);
    li_put_nhtab(&b, z);
    for (size_t i = 0; i < b.len; i++) /* NHTABSTRING: SP and VCHAR only */
        if ((unsigned char)b.data[i] < 0x20 || (unsigned char)b.data[i] >= 0x7f)
            abort();
    free(back);
    buf_free(&b);
    free(z);
    return 0;
}

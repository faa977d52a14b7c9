/* Listener TLS on GnuTLS. See tls.h. */
#include "common/tls.h"

#include <ctype.h>
#include <gnutls/x509.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_NAMES 64
#define MAX_CHAIN 8

typedef struct {
    gnutls_pcert_st chain[MAX_CHAIN];
    unsigned nchain;
    gnutls_privkey_t key;
    char *names[MAX_NAMES]; /* lower case DNS names of its SAN (or CN), "*.x" wildcards kept */
    size_t nnames;
    time_t not_after;
    char file[256];
} cert_entry;

struct tls_store {
    cert_entry certs[TLS_MAX_CERTS];
    size_t ncerts;
    gnutls_x509_trust_list_t trust; /* from the client CA bundle */
    tls_client_mode client;
    char priorities[192];
};

static char *read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *b = malloc(max + 1);
    size_t n = b ? fread(b, 1, max + 1, f) : 0;
    bool bad = ferror(f) || n > max;
    fclose(f);
    if (!b || bad) {
        free(b);
        return NULL;
    }
    b[n] = 0;
    *len = n;
    return b;
}

bool tls_parse_spki(const char *s, unsigned char out[32])
{
    if (!s)
        return false;
    size_t n = strlen(s);
    if (n == 64) {
        for (size_t i = 0; i < 32; i++) {
            unsigned v;
            if (!isxdigit((unsigned char)s[2 * i]) || !isxdigit((unsigned char)s[2 * i + 1]) ||
                sscanf(s + 2 * i, "%2x", &v) != 1)
                return false;
            out[i] = (unsigned char)v;
        }
        return true;
    }
    /* 32 bytes are 44 base64 characters ending in exactly one "=" (two
     * would be 31 bytes; EVP_DecodeBlock counts padding as data) */
    if (strncmp(s, "sha256//", 8) != 0 || n != 8 + 44 || s[n - 1] != '=' || s[n - 2] == '=')
        return false;
    unsigned char buf[36];
    int got = EVP_DecodeBlock(buf, (const unsigned char *)s + 8, 44);
    if (got != 33) /* 44 characters decode to 33 bytes, the last one padding */
        return false;
    memcpy(out, buf, 32);
    return true;
}

static void add_name(cert_entry *e, const char *n, size_t len)
{
    if (e->nnames >= MAX_NAMES || len == 0 || len > 253)
        return;
    char *c = malloc(len + 1);
    if (!c)
        return;
    for (size_t i = 0; i < len; i++)
        c[i] = (char)tolower((unsigned char)n[i]);
    c[len] = 0;
    e->names[e->nnames++] = c;
}

static bool load_cert(cert_entry *e, const tls_cert_files *f, char *err, size_t errlen)
{
    size_t clen = 0, klen = 0;
    char *cpem = read_file(f->cert, 1 << 20, &clen), *kpem = read_file(f->key, 1 << 16, &klen);
    bool ok = false;
    snprintf(e->file, sizeof e->file, "%s", f->cert);
    if (!cpem || !kpem) {
        snprintf(err, errlen, "cannot read %s", !cpem ? f->cert : f->key);
        goto out;
    }
    gnutls_datum_t cd = {(unsigned char *)cpem, (unsigned)clen}, kd = {(unsigned char *)kpem, (unsigned)klen};
    e->nchain = MAX_CHAIN;
    int rc = gnutls_pcert_list_import_x509_raw(e->chain, &e->nchain, &cd, GNUTLS_X509_FMT_PEM, 0);
    if (rc < 0 || e->nchain == 0) {
        e->nchain = 0;
        snprintf(err, errlen, "%s: not a PEM certificate chain (%s)", f->cert, gnutls_strerror(rc));
        goto out;
    }
    if ((rc = gnutls_privkey_init(&e->key)) < 0 ||
        (rc = gnutls_privkey_import_x509_raw(e->key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
        snprintf(err, errlen, "%s: not a PEM private key (%s)", f->key, gnutls_strerror(rc));
        goto out;
    }
    /* the key must be the leaf's: compare the public halves */
    gnutls_pubkey_t from_key = NULL;
    gnutls_datum_t a = {0}, b = {0};
    bool same = gnutls_pubkey_init(&from_key) >= 0 && gnutls_pubkey_import_privkey(from_key, e->key, 0, 0) >= 0 &&
                gnutls_pubkey_export2(from_key, GNUTLS_X509_FMT_DER, &a) >= 0 &&
                gnutls_pubkey_export2(e->chain[0].pubkey, GNUTLS_X509_FMT_DER, &b) >= 0 && a.size == b.size &&
                memcmp(a.data, b.data, a.size) == 0;
    gnutls_free(a.data);
    gnutls_free(b.data);
    if (from_key)
        gnutls_pubkey_deinit(from_key);
    if (!same) {
        snprintf(err, errlen, "%s does not belong to the certificate in %s", f->key, f->cert);
        goto out;
    }
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) < 0)
        goto out;
    if (gnutls_x509_crt_import(crt, &e->chain[0].cert, GNUTLS_X509_FMT_DER) >= 0) {
        e->not_after = gnutls_x509_crt_get_expiration_time(crt);
        for (unsigned i = 0;; i++) {
            char buf[256];
            size_t sz = sizeof buf - 1;
            int t = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &sz, NULL);
            if (t == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
                break;
            if (t == GNUTLS_SAN_DNSNAME)
                add_name(e, buf, sz);
        }
        if (e->nnames == 0) {
            char cn[256];
            size_t sz = sizeof cn - 1;
            if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &sz) >= 0)
                add_name(e, cn, sz);
        }
        ok = true;
    } else {
        snprintf(err, errlen, "%s: unreadable certificate", f->cert);
    }
    gnutls_x509_crt_deinit(crt);
out:
    free(cpem);
    free(kpem);
    return ok;
}

static void free_entry(cert_entry *e)
{
    for (unsigned i = 0; i < e->nchain; i++)
        gnutls_pcert_deinit(&e->chain[i]);
    if (e->key)
        gnutls_privkey_deinit(e->key);
    for (size_t i = 0; i < e->nnames; i++)
        free(e->names[i]);
    memset(e, 0, sizeof *e);
}

tls_store *tls_store_load(const tls_conf *c, char *err, size_t errlen)
{
    if (c->ncerts == 0 || c->ncerts > TLS_MAX_CERTS) {
        snprintf(err, errlen, "between 1 and %d certificates", TLS_MAX_CERTS);
        return NULL;
    }
    tls_store *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < c->ncerts; i++) {
        s->ncerts = i + 1;
        if (!load_cert(&s->certs[i], &c->certs[i], err, errlen)) {
            tls_store_free(s);
            return NULL;
        }
    }
    s->client = c->client_ca ? c->client : TLS_CLIENT_NONE;
    if (c->client_ca && s->client == TLS_CLIENT_NONE)
        s->client = TLS_CLIENT_REQUIRED;
    if (c->client_ca) {
        size_t n;
        char *pem = read_file(c->client_ca, 1 << 22, &n);
        gnutls_x509_crt_t *list = NULL;
        unsigned count = 0;
        gnutls_datum_t d = {(unsigned char *)pem, pem ? (unsigned)n : 0};
        int rc = pem ? gnutls_x509_crt_list_import2(&list, &count, &d, GNUTLS_X509_FMT_PEM, 0) : -1;
        free(pem);
        if (rc < 0 || count == 0) {
            snprintf(err, errlen, "%s: not a PEM CA bundle", c->client_ca);
            tls_store_free(s);
            return NULL;
        }
        int added = gnutls_x509_trust_list_init(&s->trust, 0) < 0 ? -1
                    : gnutls_x509_trust_list_add_cas(s->trust, list, count, 0); /* takes the certificates */
        gnutls_free(list);
        if (added <= 0) {
            snprintf(err, errlen, "%s: no usable CA certificate", c->client_ca);
            tls_store_free(s);
            return NULL;
        }
    }
    /* NORMAL less what is there for old clients only: TLS 1.2 keeps its
     * AEAD suites with forward secrecy */
    snprintf(s->priorities, sizeof s->priorities, "%s",
             c->tls13_only ? "NORMAL:-VERS-ALL:+VERS-TLS1.3"
                           : "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:"
                             "+CHACHA20-POLY1305:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA");
    return s;
}

void tls_store_free(tls_store *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->ncerts; i++)
        free_entry(&s->certs[i]);
    if (s->trust)
        gnutls_x509_trust_list_deinit(s->trust, 1);
    free(s);
}

time_t tls_store_first_expiry(const tls_store *s, const char **file)
{
    time_t first = 0;
    for (size_t i = 0; i < s->ncerts; i++)
        if (!first || s->certs[i].not_after < first) {
            first = s->certs[i].not_after;
            if (file)
                *file = s->certs[i].file;
        }
    return first;
}

const char *tls_store_priorities(const tls_store *s) { return s->priorities; }

static _Thread_local const tls_store *tl_store;
static _Thread_local char tl_error[160];

void tls_use_store(const tls_store *s) { tl_store = s; }

const char *tls_last_error(void) { return tl_error; }
void tls_set_last_error(const char *msg) { snprintf(tl_error, sizeof tl_error, "%s", msg ? msg : ""); }


/* The client's chain, during the handshake: it must lead to one of the
 * CAs, be in its validity period and be meant for TLS clients. A refusal
 * fails the handshake (the client gets an alert, never a response). */
static int verify_client(gnutls_session_t session)
{
    const tls_store *s = tl_store;
    unsigned n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(session, &n);
    if (!s || !s->trust) {
        tls_set_last_error("no CA to check client certificates against");
        return -1;
    }
    if (!certs || n == 0) {
        if (s->client == TLS_CLIENT_REQUIRED) {
            tls_set_last_error("no client certificate");
            return -1;
        }
        return 0;
    }
    gnutls_x509_crt_t chain[MAX_CHAIN];
    unsigned nc = 0;
    for (; nc < n && nc < MAX_CHAIN; nc++)
        if (gnutls_x509_crt_init(&chain[nc]) < 0 || gnutls_x509_crt_import(chain[nc], &certs[nc], GNUTLS_X509_FMT_DER) < 0) {
            gnutls_x509_crt_deinit(chain[nc]);
            break;
        }
    unsigned status = 0;
    gnutls_typed_vdata_st purpose = {GNUTLS_DT_KEY_PURPOSE_OID, (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT, 0};
    int rc = nc == 0 ? GNUTLS_E_CERTIFICATE_ERROR
                     : gnutls_x509_trust_list_verify_crt2(s->trust, chain, nc, &purpose, 1, 0, &status, NULL);
    for (unsigned i = 0; i < nc; i++)
        gnutls_x509_crt_deinit(chain[i]);
    if (rc < 0 || status != 0) {
        gnutls_datum_t why = {0};
        if (rc >= 0 && gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &why, 0) >= 0) {
            char m[160];
            snprintf(m, sizeof m, "client certificate refused: %.*s", (int)why.size, (const char *)why.data);
            tls_set_last_error(m);
            gnutls_free(why.data);
        } else {
            tls_set_last_error(rc < 0 ? gnutls_strerror(rc) : "client certificate refused");
        }
        return -1;
    }
    return 0;
}

bool tls_name_matches(const char *pattern, const char *host)
{
    if (strcmp(pattern, host) == 0)
        return true;
    if (pattern[0] != '*' || pattern[1] != '.')
        return false;
    const char *dot = strchr(host, '.'); /* a wildcard stands for exactly one label */
    return dot && dot != host && strcmp(dot, pattern + 1) == 0;
}

int tls_retrieve_cert(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                      const gnutls_pk_algorithm_t *pk_algos, int pk_algos_len, gnutls_pcert_st **pcert,
                      unsigned int *pcert_len, gnutls_privkey_t *pkey)
{
    (void)req_ca_rdn;
    (void)nreqs;
    (void)pk_algos;
    (void)pk_algos_len;
    const tls_store *s = tl_store;
    if (!s || s->ncerts == 0)
        return -1;
    const cert_entry *pick = &s->certs[0];
    char name[256];
    size_t len = sizeof name - 1;
    unsigned type;
    if (gnutls_server_name_get(session, name, &len, &type, 0) == 0 && type == GNUTLS_NAME_DNS && len < sizeof name) {
        name[len] = 0;
        for (size_t i = 0; i < len; i++)
            name[i] = (char)tolower((unsigned char)name[i]);
        bool found = false;
        for (size_t i = 0; i < s->ncerts && !found; i++)
            for (size_t j = 0; j < s->certs[i].nnames && !found; j++)
                if (tls_name_matches(s->certs[i].names[j], name)) {
                    pick = &s->certs[i];
                    found = true;
                }
    }
    if (s->client != TLS_CLIENT_NONE) {
        /* the CertificateRequest goes out after this: ask, or insist */
        gnutls_certificate_server_set_request(session, s->client == TLS_CLIENT_REQUIRED ? GNUTLS_CERT_REQUIRE
                                                                                        : GNUTLS_CERT_REQUEST);
        gnutls_session_set_verify_function(session, verify_client);
    }
    *pcert = (gnutls_pcert_st *)pick->chain;
    *pcert_len = pick->nchain;
    *pkey = pick->key;
    return 0;
}

bool tls_session_done(gnutls_session_t session)
{
    /* a server's handshake ends with the client's Finished (full or
     * resumed, TLS 1.2 or 1.3); gnutls_session_get_desc is not safe on a
     * session that stopped half way */
    return gnutls_handshake_get_last_in(session) == GNUTLS_HANDSHAKE_FINISHED;
}

bool tls_session_peer(gnutls_session_t session, tls_peer_cert *out)
{
    memset(out, 0, sizeof *out);
    unsigned n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(session, &n);
    if (!certs || n == 0)
        return false;
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) < 0)
        return false;
    bool ok = gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) >= 0;
    gnutls_datum_t dn = {0}, spki = {0};
    gnutls_pubkey_t pub = NULL;
    if (ok && gnutls_x509_crt_get_dn3(crt, &dn, 0) >= 0) {
        snprintf(out->subject, sizeof out->subject, "%.*s", (int)dn.size, (const char *)dn.data);
        gnutls_free(dn.data);
    }
    ok = ok && gnutls_pubkey_init(&pub) >= 0 && gnutls_pubkey_import_x509(pub, crt, 0) >= 0 &&
         gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &spki) >= 0;
    unsigned dl = 0;
    ok = ok && EVP_Digest(spki.data, spki.size, out->spki, &dl, EVP_sha256(), NULL) == 1;
    gnutls_free(spki.data);
    if (pub)
        gnutls_pubkey_deinit(pub);
    for (unsigned i = 0; ok && out->nsan < TLS_MAX_SANS; i++) {
        char buf[256];
        size_t sz = sizeof buf - 1;
        int t = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &sz, NULL);
        if (t == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
            break;
        if ((t == GNUTLS_SAN_DNSNAME || t == GNUTLS_SAN_URI) && sz < sizeof buf && !memchr(buf, 0, sz)) {
            memcpy(out->san[out->nsan], buf, sz);
            out->san[out->nsan++][sz] = 0;
        }
    }
    gnutls_x509_crt_deinit(crt);
    out->present = ok;
    return ok;
}

bool tls_peer_matches(const tls_peer_id *want, const tls_peer_cert *got)
{
    if (!want || !got->present || (!want->san && !want->subject && !want->has_spki))
        return false;
    if (want->has_spki && memcmp(want->spki, got->spki, 32) != 0)
        return false;
    if (want->subject && strcmp(want->subject, got->subject) != 0)
        return false;
    if (want->san) {
        bool any = false;
        for (size_t i = 0; i < got->nsan && !any; i++)
            any = strcasecmp(want->san, got->san[i]) == 0;
        if (!any)
            return false;
    }
    return true;
}

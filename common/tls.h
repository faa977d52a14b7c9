/* TLS on the listeners, with GnuTLS, the TLS library libmicrohttpd is
 * built with: a store of certificates (chain and key, ECDSA or RSA, PEM)
 * of which SNI picks one, the first being the default; client
 * certificates verified against a CA bundle during the handshake and then
 * identified by a subjectAltName, the subject or the SHA-256 digest of the
 * public key (SPKI, the form curl pins: "sha256//<base64>").
 *
 * A store is immutable once loaded and lives as long as its listener:
 * certificates are rotated by a reload, which is a new worker process
 * (common/supervise.h). */
#ifndef COMMON_TLS_H
#define COMMON_TLS_H

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define TLS_MAX_CERTS 32

typedef struct {
    const char *cert; /* PEM: the certificate, then its chain */
    const char *key;  /* PEM private key */
} tls_cert_files;

typedef enum { TLS_CLIENT_NONE, TLS_CLIENT_OPTIONAL, TLS_CLIENT_REQUIRED } tls_client_mode;

typedef struct {
    tls_cert_files certs[TLS_MAX_CERTS];
    size_t ncerts;
    const char *client_ca; /* PEM bundle the client certificates must chain to */
    tls_client_mode client; /* with client_ca: OPTIONAL asks, REQUIRED (also what
                             * NONE means with a client_ca) refuses the handshake
                             * without one; either refuses a bad one */
    bool tls13_only;        /* else TLS 1.2 and 1.3 */
} tls_conf;

/* Who a peer's certificate says it is: every member given must match. */
typedef struct {
    const char *san;     /* a DNS name or URI of its subjectAltName */
    const char *subject; /* its subject DN in RFC 4514 form ("CN=x,O=y") */
    unsigned char spki[32];
    bool has_spki; /* SHA-256 of its SubjectPublicKeyInfo */
} tls_peer_id;

/* Parses "sha256//<base64 of 32 bytes>" (curl's pin form) or 64 hex digits. */
bool tls_parse_spki(const char *s, unsigned char out[32]);

/* A certificate name against a (lower case) SNI host name: equal, or a
 * "*.example.com" wildcard standing for exactly one leftmost label. */
bool tls_name_matches(const char *pattern, const char *host);

typedef struct tls_store tls_store;

/* Reads and checks every file (a key that does not fit its certificate is
 * an error); NULL with the reason in err. */
tls_store *tls_store_load(const tls_conf *c, char *err, size_t errlen); /* new: tls_store_free */
void tls_store_free(tls_store *s);

/* The certificate that expires first: its notAfter and the file's name. */
time_t tls_store_first_expiry(const tls_store *s, const char **file);

/* The GnuTLS priority string to use. */
const char *tls_store_priorities(const tls_store *s); /* borrowed from s */

/* For libmicrohttpd's certificate callback (MHD_OPTION_HTTPS_CERT_CALLBACK):
 * the callback finds its store through tls_use_store, set by the thread
 * that runs the handshakes. */
void tls_use_store(const tls_store *s);
int tls_retrieve_cert(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                      const gnutls_pk_algorithm_t *pk_algos, int pk_algos_len, gnutls_pcert_st **pcert,
                      unsigned int *pcert_len, gnutls_privkey_t *pkey);

/* Why this thread's last handshake was refused by us ("" if it was not),
 * for the log line of the failed connection; and for others to set. */
const char *tls_last_error(void); /* the thread's own buffer */
void tls_set_last_error(const char *msg);

/* What a session's peer presented, verified during the handshake. */
typedef struct {
    bool present;
    char subject[512];
    unsigned char spki[32];
#define TLS_MAX_SANS 8
    char san[TLS_MAX_SANS][256];
    size_t nsan;
} tls_peer_cert;

/* false when there is no peer certificate. */
bool tls_session_peer(gnutls_session_t session, tls_peer_cert *out);
bool tls_peer_matches(const tls_peer_id *want, const tls_peer_cert *got);
/* Whether the session's handshake has completed. */
bool tls_session_done(gnutls_session_t session);

#endif

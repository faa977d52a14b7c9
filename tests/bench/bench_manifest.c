/* HLS media playlist rewrite, one core: 10,000 segments with absolute URIs
 * on the CSP's origin, pointed at a dCDN surrogate (issue goals: at least
 * half the MB/s of a plain find-and-copy loop; with a per-URI HMAC-SHA256
 * token, at most 1.2x the time of that loop plus the HMACs alone).
 *
 * Baselines, same run, same input:
 *   plain loop  memmem for the origin prefix, copy what is between, write
 *               the new prefix: the least any rewriter must do, with no
 *               idea of what a playlist is;
 *   sed         s#old#new#g on the same file (one process, file to file);
 *   HMACs alone the 10,000 HMAC-SHA256 over the rewritten URIs, nothing
 *               else. */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/b64url.h"
#include "manifest/hls.h"

#define SEGMENTS 10000
#define OLD "https://origin.example.com"
#define NEW "http://se1.dcdn.example:8080"
#define ROUNDS 200

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static EVP_MAC_CTX *g_mac;
static size_t sink;

static void mac_init(void)
{
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    g_mac = EVP_MAC_CTX_new(m);
    EVP_MAC_free(m);
    unsigned char key[32];
    memset(key, 0x42, sizeof key);
    OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0), OSSL_PARAM_construct_end()};
    if (!EVP_MAC_init(g_mac, key, sizeof key, p))
        exit(1);
}

/* "?t=" + base64url HMAC-SHA256 of the URI into out (<= 48 bytes) */
static size_t token(const char *uri, size_t n, char *out)
{
    unsigned char mac[32];
    size_t ml = 0;
    if (!EVP_MAC_init(g_mac, NULL, 0, NULL) || !EVP_MAC_update(g_mac, (const unsigned char *)uri, n) ||
        !EVP_MAC_final(g_mac, mac, &ml, sizeof mac))
        exit(1);
    memcpy(out, "?t=", 3);
    return 3 + b64url_encode(mac, ml, out + 3, 48);
}

static bool hook(void *ud, const char *uri, size_t n, buf *out)
{
    char t[64];
    size_t tl = token(uri, n, t);
    buf_add(out, uri, n);
    buf_add(out, t, tl);
    return true;
}

static size_t plain_loop(const char *in, size_t n, char *out)
{
    size_t w = 0, ol = strlen(OLD), nl = strlen(NEW);
    const char *p = in, *end = in + n;
    for (;;) {
        const char *f = memmem(p, (size_t)(end - p), OLD, ol);
        size_t k = f ? (size_t)(f - p) : (size_t)(end - p);
        memcpy(out + w, p, k);
        w += k;
        if (!f)
            break;
        memcpy(out + w, NEW, nl);
        w += nl;
        p = f + ol;
    }
    return w;
}

int main(void)
{
    mac_init();
    buf pl;
    buf_init(&pl, 0, 0);
    buf_adds(&pl, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:0\n"
                  "#EXT-X-PLAYLIST-TYPE:VOD\n");
    for (int i = 0; i < SEGMENTS; i++) {
        char l[160];
        snprintf(l, sizeof l, "#EXTINF:6.006,\n" OLD "/vod/title-%04d/720p/seg_%05d.ts\n", i / 500, i);
        buf_adds(&pl, l);
    }
    buf_adds(&pl, "#EXT-X-ENDLIST\n");
    const char *in = pl.data;
    size_t n = pl.len;
    double mb = n / 1e6;
    static const char *const hosts[] = {"origin.example.com", NULL};
    mf_policy p = {.base = OLD "/vod/title-0000/720p/index.m3u8", .hosts = hosts, .target = NEW};
    if (!mf_policy_prepare(&p))
        return 1;
    char *out = malloc(2 * n + SEGMENTS * 64);
    buf o;
    buf_init(&o, 2 * n + SEGMENTS * 64, 0);
    /* the three rewriters agree on the result before anything is timed */
    size_t pw = plain_loop(in, n, out);
    hls_stats st;
    if (hls_rewrite(in, n, 1 << 26, &p, &o, &st) != HLS_OK || o.len != pw || memcmp(o.data, out, pw) != 0 ||
        st.rewritten != SEGMENTS) {
        fprintf(stderr, "bench_manifest: rewriters disagree\n");
        return 1;
    }
    double t0 = now();
    for (int r = 0; r < ROUNDS; r++)
        sink += plain_loop(in, n, out);
    double t_loop = (now() - t0) / ROUNDS;
    t0 = now();
    for (int r = 0; r < ROUNDS; r++) {
        buf_truncate(&o, 0);
        hls_rewrite(in, n, 1 << 26, &p, &o, NULL);
        sink += o.len;
    }
    double t_ours = (now() - t0) / ROUNDS;
    /* sed, file to file */
    char src[] = "/tmp/bench_manifest_XXXXXX";
    int fd = mkstemp(src);
    if (fd < 0 || write(fd, in, n) != (ssize_t)n)
        return 1;
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "sed 's#" OLD "#" NEW "#g' %s > %s.out", src, src);
    t0 = now();
    for (int r = 0; r < 10; r++)
        if (system(cmd) != 0)
            return 1;
    double t_sed = (now() - t0) / 10;
    snprintf(cmd, sizeof cmd, "%s.out", src);
    unlink(cmd);
    unlink(src);
    /* with a token per URI */
    p.hook = hook;
    t0 = now();
    for (int r = 0; r < ROUNDS / 4; r++) {
        buf_truncate(&o, 0);
        hls_rewrite(in, n, 1 << 26, &p, &o, NULL);
        sink += o.len;
    }
    double t_ours_mac = (now() - t0) / (ROUNDS / 4);
    /* the HMACs alone, over the same rewritten URIs */
    size_t ul = strlen(NEW "/vod/title-0000/720p/seg_00000.ts");
    char (*uris)[80] = malloc(SEGMENTS * sizeof *uris);
    for (int i = 0; i < SEGMENTS; i++)
        snprintf(uris[i], sizeof uris[i], NEW "/vod/title-%04d/720p/seg_%05d.ts", i / 500, i);
    t0 = now();
    for (int r = 0; r < ROUNDS / 4; r++)
        for (int i = 0; i < SEGMENTS; i++) {
            char t[64];
            sink += token(uris[i], ul, t);
        }
    double t_macs = (now() - t0) / (ROUNDS / 4);
    double lim = 1.2 * (t_loop + t_macs);
    printf("HLS media playlist rewrite, %d segments (%.2f MB), 1 core (sink %zu)\n", SEGMENTS, mb, sink % 10);
    printf("  ours (hls_rewrite):          %8.0f MB/s  %7.3f ms\n", mb / t_ours, t_ours * 1e3);
    printf("  plain find-and-copy loop:    %8.0f MB/s  %7.3f ms\n", mb / t_loop, t_loop * 1e3);
    printf("  sed s###g (one process):     %8.0f MB/s  %7.3f ms\n", mb / t_sed, t_sed * 1e3);
    printf("  ours / plain loop: %.2f   goal: >= 0.5 -> %s\n", t_loop / t_ours, t_loop / t_ours >= 0.5 ? "met" : "NOT met");
    printf("  with an HMAC-SHA256 token per URI:\n");
    printf("    ours + hook:               %7.3f ms\n", t_ours_mac * 1e3);
    printf("    plain loop + HMACs alone:  %7.3f ms (HMACs %.3f ms)\n", (t_loop + t_macs) * 1e3, t_macs * 1e3);
    printf("    ratio: %.2fx   goal: <= 1.2x -> %s\n", t_ours_mac / (t_loop + t_macs),
           t_ours_mac <= lim ? "met" : "NOT met");
    free(uris);
    free(out);
    buf_free(&o);
    buf_free(&pl);
    EVP_MAC_CTX_free(g_mac);
    return 0;
}

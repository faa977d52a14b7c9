/* Prefix lookups per second on one core: 100,000 IPv4 prefixes (BGP-like
 * length mix), DIR-24-8 against the same table's interval binary search
 * (the baseline, measured in the same run); then 1,000,000 prefixes to show
 * the table holds them, and IPv6. Goal: over 50 M IPv4 lookups/s. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/iptable.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rs = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (uint32_t)rs;
}

static unsigned bgp_len(void) /* roughly the global table: ~60% /24 */
{
    unsigned r = rnd() % 100;
    return r < 60 ? 24 : r < 75 ? 22 + rnd() % 2 : r < 90 ? 16 + rnd() % 6 : r < 97 ? 8 + rnd() % 8 : 25 + rnd() % 8;
}

static iptable *build4(size_t n, int dir24, double *secs)
{
    rs = 0x9e3779b97f4a7c15ull;
    iptable_builder *b = iptb_new();
    for (size_t i = 0; i < n; i++) {
        ipt_addr a = {0};
        uint32_t x = rnd();
        a.bytes[0] = (uint8_t)(x >> 24), a.bytes[1] = (uint8_t)(x >> 16);
        a.bytes[2] = (uint8_t)(x >> 8), a.bytes[3] = (uint8_t)x;
        iptb_add(b, &a, bgp_len(), (uint32_t)i);
    }
    double t0 = now();
    iptable *t = iptb_build(b, dir24);
    *secs = now() - t0;
    return t;
}

static double lookups4(const iptable *t, const uint32_t *q, size_t nq, size_t rounds, uint64_t *sink)
{
    double t0 = now();
    uint64_t s = 0;
    for (size_t r = 0; r < rounds; r++)
        for (size_t i = 0; i < nq; i++)
            s += ipt_lookup4(t, q[i]);
    double dt = now() - t0;
    *sink += s;
    return (double)(nq * rounds) / dt;
}

int main(void)
{
    enum { NQ = 1 << 20 };
    uint32_t *q = malloc(NQ * sizeof *q);
    for (size_t i = 0; i < NQ; i++)
        q[i] = rnd();
    uint64_t sink = 0;
    double bs, bd;
    iptable *bin = build4(100000, 0, &bs), *dir = build4(100000, 1, &bd);
    double base = lookups4(bin, q, NQ, 4, &sink);
    double fast = lookups4(dir, q, NQ, 40, &sink);
    size_t agree = 0;
    for (size_t i = 0; i < NQ; i++)
        agree += ipt_lookup4(bin, q[i]) == ipt_lookup4(dir, q[i]);
    printf("iptable IPv4, 100,000 prefixes, one core, random addresses:\n");
    printf("  DIR-24-8            %7.1f M lookups/s   (build %.0f ms)\n", fast / 1e6, bd * 1e3);
    printf("  interval bsearch    %7.1f M lookups/s   (baseline, build %.0f ms)\n", base / 1e6, bs * 1e3);
    printf("  speed-up %.1fx; answers agree on %zu/%d addresses; goal > 50 M/s: %s\n", fast / base,
           agree, NQ, fast > 50e6 ? "met" : "NOT met");
    ipt_free(bin);
    ipt_free(dir);

    double b1;
    iptable *big = build4(1000000, -1, &b1);
    double f1 = lookups4(big, q, NQ, 20, &sink);
    printf("iptable IPv4, 1,000,000 prefixes: %zu intervals, build %.0f ms, %.1f M lookups/s\n",
           ipt_intervals(big, false), b1 * 1e3, f1 / 1e6);
    ipt_free(big);

    iptable_builder *b = iptb_new();
    for (size_t i = 0; i < 100000; i++) {
        ipt_addr a = {.v6 = 1};
        a.bytes[0] = 0x20;
        a.bytes[1] = 0x01;
        for (int k = 2; k < 8; k++)
            a.bytes[k] = (uint8_t)rnd();
        iptb_add(b, &a, 32 + rnd() % 33, (uint32_t)i);
    }
    iptable *t6 = iptb_build(b, 0);
    ipt_addr *q6 = malloc(NQ * sizeof *q6);
    for (size_t i = 0; i < NQ; i++) {
        q6[i] = (ipt_addr){.v6 = 1};
        q6[i].bytes[0] = 0x20, q6[i].bytes[1] = 0x01;
        for (int k = 2; k < 16; k++)
            q6[i].bytes[k] = (uint8_t)rnd();
    }
    double t0 = now();
    for (size_t i = 0; i < NQ; i++)
        sink += ipt_lookup(t6, &q6[i]);
    double dt = now() - t0;
    printf("iptable IPv6, 100,000 prefixes: %.1f M lookups/s (interval bsearch)\n", NQ / dt / 1e6);
    ipt_free(t6);
    free(q6);
    free(q);
    return sink == 42 ? 1 : 0;
}

/* Glob patterns: '*' any run of bytes, '?' one byte, '$' escaping the
 * three literals "$", "*" and "?" (the PatternMatch syntax of RFC 8006
 * §4.1.5, which RFC 8007's content patterns and MI.Cache's
 * exclude-path-pattern share).
 *
 * A pattern is compiled once into a program of tokens (a literal byte,
 * GLOB_ONE, GLOB_ANY; "**" is one GLOB_ANY), lowercased when matching is
 * not case-sensitive. Matching is iterative and backtracks only to the
 * last '*': linear in practice, never recursive, never exponential. */
#ifndef COMMON_GLOB_H
#define COMMON_GLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GLOB_ONE 256
#define GLOB_ANY 257

/* pat[0..n) into prog[0..cap) (n + 1 tokens always suffice); *len: tokens
 * written. strict: a '$' before anything but '$', '*' or '?' (or at the
 * end) is an error, at *bad_at; otherwise it stands for itself. false also
 * when cap is too small. */
bool glob_compile(const char *pat, size_t n, bool case_sensitive, bool strict, uint16_t *prog, size_t cap,
                  size_t *len, size_t *bad_at);

/* s[0..n) against prog[0..plen); wild, when not NULL, gets for each byte
 * of s whether a wildcard matched it (1) or a literal (0). */
bool glob_match(const uint16_t *prog, size_t plen, const char *s, size_t n, bool case_sensitive, unsigned char *wild);

#endif

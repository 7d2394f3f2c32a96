// The C kernels' side of Kernels/MatMul/Prefetch.swift: lines of the caller's next job
// handed out a few at a time from the inner loops, so the traffic overlaps the arithmetic.
#ifndef GRAFT_PREFETCH_CURSOR_H
#define GRAFT_PREFETCH_CURSOR_H

#include <immintrin.h>
#include <stdint.h>

typedef struct { const char *next, *end; long lines; } prefetch_t;

// Two lines per step, for loops with many short steps.
static inline prefetch_t prefetch_span(const void *start, long bytes) {
    return (prefetch_t){(const char *)start, (const char *)start + (start ? bytes : 0), 2};
}

// The whole span spread evenly over `steps` steps, for kernels that know their count.
static inline prefetch_t prefetch_spread(const void *start, long bytes, long steps) {
    const long lines = (bytes + 63) / 64;
    prefetch_t pf = prefetch_span(start, bytes);
    pf.lines = steps > 0 ? (lines + steps - 1) / steps : lines;
    return pf;
}

// Every line of `bytes` at p, at once, into L2 (T1): into L1 (T0) the int8 kernels ran
// 5-15% slower with their weights coming from memory (bench/kernels/int8_batch.c,
// built with each hint).
static inline __attribute__((always_inline)) void prefetch_bytes(const uint8_t *p, long bytes) {
    for (long line = 0; line < bytes; line += 64) _mm_prefetch((const char *)p + line, _MM_HINT_T1);
}

static inline __attribute__((always_inline)) void prefetch_advance(prefetch_t *pf) {
    for (long i = 0; i < pf->lines && pf->next < pf->end; i++, pf->next += 64) _mm_prefetch(pf->next, _MM_HINT_T0);
}

#endif

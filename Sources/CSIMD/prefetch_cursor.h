// The C kernels' side of Kernels/MatMul/Prefetch.swift: lines of the caller's next job
// handed out two at a time from the inner loops, so the traffic overlaps the arithmetic.
#ifndef GRAFT_PREFETCH_CURSOR_H
#define GRAFT_PREFETCH_CURSOR_H

#include <immintrin.h>

typedef struct { const char *next, *end; } prefetch_t;

static inline prefetch_t prefetch_span(const void *start, long bytes) {
    return (prefetch_t){(const char *)start, (const char *)start + (start ? bytes : 0)};
}

static inline __attribute__((always_inline)) void prefetch_advance(prefetch_t *pf) {
    if (pf->next < pf->end) {
        _mm_prefetch(pf->next, _MM_HINT_T0);
        _mm_prefetch(pf->next + 64, _MM_HINT_T0);
        pf->next += 128;
    }
}

#endif

// See include/attention.h for the arithmetic. Compiled with -ffp-contract=off like the
// other kernels: every multiply-add is an explicit fma. The loops take the number of
// heads, the element type and their blocking as constants after inlining; the
// blocking only chooses how many outputs share a pass, never an output's order.
#include "attention.h"
#include "prefetch_cursor.h"

#include <immintrin.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define AVX512 __attribute__((target("avx512f,avx512vl")))

ALWAYS_INLINE __m256 load8(int f16, const uint8_t *p) {
    return f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)) : _mm256_loadu_ps((const float *)p);
}

// The first min(8, count) lanes of v at out.
ALWAYS_INLINE void store_lanes(__m256 v, float *out, long count) {
    if (count >= 8) {
        _mm256_storeu_ps(out, v);
        return;
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, v);
    for (long i = 0; i < count; i++) out[i] = lanes[i];
}

// Scores of 8·P consecutive positions (P vectors of eight, 1 or 2) from `column`, for
// every head: acc[head][vector][d mod 4]. Each key vector serves every head.
ALWAYS_INLINE void score_vectors(int heads, int P, int f16, const float *q, long hd, const uint8_t *column,
                                 long dimBytes, long count, float scale, float *out, long stride) {
    const long e = f16 ? 2 : 4;
    __m256 acc[GRAFT_ATTENTION_MAX_HEADS][2][4];
    for (int j = 0; j < heads; j++)
        for (int p = 0; p < P; p++)
            for (int i = 0; i < 4; i++) acc[j][p][i] = _mm256_setzero_ps();
    for (long d = 0; d < hd; d += 4)
        for (int i = 0; i < 4; i++)
            for (int p = 0; p < P; p++) {
                const __m256 key = load8(f16, column + (d + i) * dimBytes + 8 * p * e);
                for (int j = 0; j < heads; j++)
                    acc[j][p][i] = _mm256_fmadd_ps(_mm256_set1_ps(q[j * hd + d + i]), key, acc[j][p][i]);
            }
    for (int j = 0; j < heads; j++)
        for (int p = 0; p < P; p++) {
            const __m256 sum = _mm256_add_ps(_mm256_add_ps(acc[j][p][0], acc[j][p][1]),
                                             _mm256_add_ps(acc[j][p][2], acc[j][p][3]));
            store_lanes(_mm256_mul_ps(sum, _mm256_set1_ps(scale)), out + j * stride + 8 * p, count - 8 * p);
        }
}

// One key tile's first `count` positions. P: position vectors per step where 8·P
// positions remain (the rest go one at a time).
ALWAYS_INLINE void tile_scores(int heads, int P, int f16, const float *q, long hd, const uint8_t *tile, long bs,
                               long count, float scale, float *out, long stride) {
    const long e = f16 ? 2 : 4, dimBytes = bs * e;
    long s = 0;
    if (P > 1)
        for (; s + 8 * P <= count; s += 8 * P)
            score_vectors(heads, P, f16, q, hd, tile + s * e, dimBytes, count - s, scale, out + s, stride);
    for (; s < count; s += 8)
        score_vectors(heads, 1, f16, q, hd, tile + s * e, dimBytes, count - s, scale, out + s, stride);
}

// Each tile asks for the next one (into L2, prefetch_bytes; into L1 it saved less in a
// trial): the tiles of a sequence lie in blocks scattered over the cache, so the
// hardware prefetcher cannot run ahead, and from memory the loops waited on every new
// tile.
ALWAYS_INLINE void scores(int heads, int P, int f16, const float *q, long hd, const uint8_t *keys,
                          const int32_t *table, long nKV, long kvHead, long bs, long length, float scale, float *out,
                          long stride) {
    const long tileBytes = bs * hd * (f16 ? 2 : 4);
    for (long first = 0, b = 0; first < length; first += bs, b++) {
        if (first + bs < length) prefetch_bytes(keys + ((long)table[b + 1] * nKV + kvHead) * tileBytes, tileBytes);
        const long count = length - first < bs ? length - first : bs;
        tile_scores(heads, P, f16, q, hd, keys + ((long)table[b] * nKV + kvHead) * tileBytes, bs, count, scale,
                    out + first, stride);
    }
}

// Outputs c..<c + 8·W (W ≤ 8 vectors) of every head, positions in order.
ALWAYS_INLINE void values_pass(int heads, int W, int f16, const float *w, long wstride, long length,
                               const uint8_t *values, const int32_t *table, long nKV, long kvHead, long bs, long hd,
                               long c, float *out) {
    const long e = f16 ? 2 : 4, rowBytes = hd * e, tileBytes = bs * hd * e;
    __m256 acc[GRAFT_ATTENTION_MAX_HEADS][8];
    for (int j = 0; j < heads; j++)
        for (int v = 0; v < W; v++) acc[j][v] = _mm256_setzero_ps();
    for (long first = 0, b = 0; first < length; first += bs, b++) {
        // The first pass brings the tiles; the later ones find them in cache.
        if (c == 0 && first + bs < length) prefetch_bytes(values + ((long)table[b + 1] * nKV + kvHead) * tileBytes, tileBytes);
        const uint8_t *tile = values + ((long)table[b] * nKV + kvHead) * tileBytes + c * e;
        const long slots = length - first < bs ? length - first : bs;
        for (long slot = 0; slot < slots; slot++) {
            const uint8_t *row = tile + slot * rowBytes;
            __m256 x[GRAFT_ATTENTION_MAX_HEADS];
            for (int j = 0; j < heads; j++) x[j] = _mm256_set1_ps(w[j * wstride + first + slot]);
            for (int v = 0; v < W; v++) {
                const __m256 value = load8(f16, row + 8 * v * e);
                for (int j = 0; j < heads; j++) acc[j][v] = _mm256_fmadd_ps(x[j], value, acc[j][v]);
            }
        }
    }
    for (int j = 0; j < heads; j++)
        for (int v = 0; v < W; v++) _mm256_storeu_ps(out + j * hd + c + 8 * v, acc[j][v]);
}

// Passes of W vectors of outputs, then one for what is left (fewer than W vectors; the
// guards drop the widths a build never reaches).
ALWAYS_INLINE void values(int heads, int W, int f16, const float *w, long wstride, long length, const uint8_t *v,
                          const int32_t *table, long nKV, long kvHead, long bs, long hd, float *out) {
#define PASS(width) values_pass(heads, width, f16, w, wstride, length, v, table, nKV, kvHead, bs, hd, c, out)
    long c = 0;
    for (; c + 8 * W <= hd; c += 8 * W) PASS(W);
    switch ((hd - c) / 8) {
    case 7: if (W > 7) PASS(7); break;
    case 6: if (W > 6) PASS(6); break;
    case 5: if (W > 5) PASS(5); break;
    case 4: if (W > 4) PASS(4); break;
    case 3: if (W > 3) PASS(3); break;
    case 2: if (W > 2) PASS(2); break;
    case 1: if (W > 1) PASS(1); break;
    }
#undef PASS
}

// Blockings: with AVX2's 16 registers three heads take 8 positions and 3 output
// vectors a pass (12 and 9 accumulators); with AVX-512's 32, 16 positions and 8 vectors
// (24 accumulators each). One head keeps 8 output vectors, eight chains.
#define KERNELS(suffix, attrs, P3, W2, W3)                                                                           \
    attrs static void scores_##suffix(int heads, int f16, const float *q, long hd, const uint8_t *k,                \
                                      const int32_t *table, long nKV, long kvHead, long bs, long length,            \
                                      float scale, float *out, long stride) {                                       \
        switch (heads * 2 + f16) {                                                                                  \
        case 2: scores(1, 2, 0, q, hd, k, table, nKV, kvHead, bs, length, scale, out, stride); break;               \
        case 3: scores(1, 2, 1, q, hd, k, table, nKV, kvHead, bs, length, scale, out, stride); break;               \
        case 4: scores(2, P3, 0, q, hd, k, table, nKV, kvHead, bs, length, scale, out, stride); break;              \
        case 5: scores(2, P3, 1, q, hd, k, table, nKV, kvHead, bs, length, scale, out, stride); break;              \
        case 6: scores(3, P3, 0, q, hd, k, table, nKV, kvHead, bs, length, scale, out, stride); break;              \
        default: scores(3, P3, 1, q, hd, k, table, nKV, kvHead, bs, length, scale, out, stride); break;             \
        }                                                                                                           \
    }                                                                                                               \
    attrs static void values_##suffix(int heads, int f16, const float *w, long wstride, long length,                \
                                      const uint8_t *v, const int32_t *table, long nKV, long kvHead, long bs,        \
                                      long hd, float *out) {                                                        \
        switch (heads * 2 + f16) {                                                                                  \
        case 2: values(1, 8, 0, w, wstride, length, v, table, nKV, kvHead, bs, hd, out); break;                     \
        case 3: values(1, 8, 1, w, wstride, length, v, table, nKV, kvHead, bs, hd, out); break;                     \
        case 4: values(2, W2, 0, w, wstride, length, v, table, nKV, kvHead, bs, hd, out); break;                    \
        case 5: values(2, W2, 1, w, wstride, length, v, table, nKV, kvHead, bs, hd, out); break;                    \
        case 6: values(3, W3, 0, w, wstride, length, v, table, nKV, kvHead, bs, hd, out); break;                    \
        default: values(3, W3, 1, w, wstride, length, v, table, nKV, kvHead, bs, hd, out); break;                   \
        }                                                                                                           \
    }

KERNELS(avx2, , 1, 4, 3)
KERNELS(avx512, AVX512, 2, 8, 8)

// Relaxed atomics: kernel threads read it while a test may switch it, and both builds
// give the same results.
static int use_avx512 = -1;

static int cpu_avx512(void) { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl"); }

int graft_attention_has_avx512(void) { return cpu_avx512(); }

int graft_attention_avx512(void) {
    int on = __atomic_load_n(&use_avx512, __ATOMIC_RELAXED);
    if (on < 0) {
        on = cpu_avx512();
        __atomic_store_n(&use_avx512, on, __ATOMIC_RELAXED);
    }
    return on;
}

void graft_attention_set_avx512(int on) { __atomic_store_n(&use_avx512, on && cpu_avx512(), __ATOMIC_RELAXED); }

void graft_attention_scores(int heads, int f16, const float *q, long headDim, const void *keys,
                            const int32_t *blockTable, long nKVHeads, long kvHead, long blockSize, long length,
                            float scale, float *out, long scoreStride) {
    if (graft_attention_avx512())
        scores_avx512(heads, f16, q, headDim, keys, blockTable, nKVHeads, kvHead, blockSize, length, scale, out,
                      scoreStride);
    else
        scores_avx2(heads, f16, q, headDim, keys, blockTable, nKVHeads, kvHead, blockSize, length, scale, out,
                    scoreStride);
}

void graft_attention_values(int heads, int f16, const float *weights, long weightStride, long length,
                            const void *values, const int32_t *blockTable, long nKVHeads, long kvHead, long blockSize,
                            long headDim, float *out) {
    if (graft_attention_avx512())
        values_avx512(heads, f16, weights, weightStride, length, values, blockTable, nKVHeads, kvHead, blockSize,
                      headDim, out);
    else
        values_avx2(heads, f16, weights, weightStride, length, values, blockTable, nKVHeads, kvHead, blockSize,
                    headDim, out);
}

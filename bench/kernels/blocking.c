// Why the batched f32 decode product is register-blocked (README, "How the CPU path
// is fast"): 32 activation rows against 528 Q4_1 weight rows of 576 columns, hot in
// cache, one thread, best of five, in two kernels that sum in the same order:
//   row_by_row: each activation row meets one weight row at a time, one vector load
//               of activations per fused multiply-add (the old kernel's load count);
//   blocked_3x4: 12 dequantized weight rows per tile, then blocks of three weight
//               rows by four activation rows, seven loads per twelve multiply-adds.
// Both dequantize with one rounding and sum per lane in column order, so their
// results must be bit-identical; the program checks that. Run by run.sh.
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timing.h"

enum { COLS = 576, GROUPS = COLS / 32, ROWS = 528, ROW_BYTES = GROUPS * 20, T = 32, TILE = 12, REPEATS = 100 };

static uint8_t weights[ROWS * ROW_BYTES];
static float x[T][COLS], expected[T][ROWS], out[T][ROWS], tile[TILE][COLS] __attribute__((aligned(64)));

static float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

// One Q4_1 group as four vectors of weights, d·q + m with one rounding.
static inline void dequantize(const uint8_t *p, __m256 w[4]) {
    const __m256 d = _mm256_set1_ps(_cvtsh_ss(*(const uint16_t *)p)), m = _mm256_set1_ps(_cvtsh_ss(*(const uint16_t *)(p + 2)));
    const __m256i a = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 4)));
    const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 12)));
    const __m256i low = _mm256_set1_epi32(15);
    w[0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(a, low)), d, m);
    w[1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(b, low)), d, m);
    w[2] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(a, 4)), d, m);
    w[3] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(b, 4)), d, m);
}

// Eight activation rows per pass over the weights, each weight group decoded once per
// pass; every multiply-add loads its activations.
static void row_by_row(void) {
    for (int t0 = 0; t0 < T; t0 += 8) {
        for (int r = 0; r < ROWS; r++) {
            const uint8_t *p = weights + r * ROW_BYTES;
            __m256 acc[8];
            for (int t = 0; t < 8; t++) acc[t] = _mm256_setzero_ps();
            for (int g = 0; g < GROUPS; g++, p += 20) {
                __m256 w[4];
                dequantize(p, w);
                for (int t = 0; t < 8; t++) {
                    const float *a = x[t0 + t] + g * 32;
                    for (int k = 0; k < 4; k++) acc[t] = _mm256_fmadd_ps(w[k], _mm256_loadu_ps(a + 8 * k), acc[t]);
                }
            }
            for (int t = 0; t < 8; t++) out[t0 + t][r] = hsum(acc[t]);
        }
    }
}

static void blocked_3x4(void) {
    for (int r0 = 0; r0 < ROWS; r0 += TILE) {
        for (int i = 0; i < TILE; i++) {
            const uint8_t *p = weights + (r0 + i) * ROW_BYTES;
            for (int g = 0; g < GROUPS; g++, p += 20) {
                __m256 w[4];
                dequantize(p, w);
                for (int k = 0; k < 4; k++) _mm256_store_ps(tile[i] + g * 32 + 8 * k, w[k]);
            }
        }
        for (int t0 = 0; t0 < T; t0 += 4) {
            for (int i = 0; i < TILE; i += 3) {
                // Twelve named accumulators: as an array the compiler spilled them.
                __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00;
                __m256 a12 = a00, a13 = a00, a20 = a00, a21 = a00, a22 = a00, a23 = a00;
                const float *x0 = x[t0], *x1 = x[t0 + 1], *x2 = x[t0 + 2], *x3 = x[t0 + 3];
                for (int c = 0; c < COLS; c += 8) {
                    const __m256 u = _mm256_load_ps(tile[i] + c), v = _mm256_load_ps(tile[i + 1] + c);
                    const __m256 s = _mm256_load_ps(tile[i + 2] + c);
                    __m256 a = _mm256_loadu_ps(x0 + c);
                    a00 = _mm256_fmadd_ps(u, a, a00), a10 = _mm256_fmadd_ps(v, a, a10), a20 = _mm256_fmadd_ps(s, a, a20);
                    a = _mm256_loadu_ps(x1 + c);
                    a01 = _mm256_fmadd_ps(u, a, a01), a11 = _mm256_fmadd_ps(v, a, a11), a21 = _mm256_fmadd_ps(s, a, a21);
                    a = _mm256_loadu_ps(x2 + c);
                    a02 = _mm256_fmadd_ps(u, a, a02), a12 = _mm256_fmadd_ps(v, a, a12), a22 = _mm256_fmadd_ps(s, a, a22);
                    a = _mm256_loadu_ps(x3 + c);
                    a03 = _mm256_fmadd_ps(u, a, a03), a13 = _mm256_fmadd_ps(v, a, a13), a23 = _mm256_fmadd_ps(s, a, a23);
                }
                const int r = r0 + i;
                out[t0][r] = hsum(a00), out[t0 + 1][r] = hsum(a01), out[t0 + 2][r] = hsum(a02), out[t0 + 3][r] = hsum(a03);
                out[t0][r + 1] = hsum(a10), out[t0 + 1][r + 1] = hsum(a11), out[t0 + 2][r + 1] = hsum(a12);
                out[t0 + 3][r + 1] = hsum(a13);
                out[t0][r + 2] = hsum(a20), out[t0 + 1][r + 2] = hsum(a21), out[t0 + 2][r + 2] = hsum(a22);
                out[t0 + 3][r + 2] = hsum(a23);
            }
        }
    }
}

static double best_gmacs(void (*kernel)(void)) {
    double best = 0;
    for (int attempt = 0; attempt < 5; attempt++) {
        const double start = now();
        for (int i = 0; i < REPEATS; i++) kernel();
        const double rate = (double)REPEATS * ROWS * COLS * T / (now() - start) / 1e9;
        if (rate > best) best = rate;
    }
    return best;
}

int main(void) {
    srand(1);
    for (int i = 0; i < ROWS * ROW_BYTES; i++) weights[i] = (uint8_t)rand();
    for (int i = 0; i < ROWS * GROUPS; i++) {  // small finite halves for d and m
        const uint16_t d = 0x2000 + (rand() & 0xff), m = 0xa000 + (rand() & 0xff);
        memcpy(weights + i * 20, &d, 2);
        memcpy(weights + i * 20 + 2, &m, 2);
    }
    for (int t = 0; t < T; t++)
        for (int c = 0; c < COLS; c++) x[t][c] = (float)rand() / RAND_MAX - 0.5f;
    row_by_row();
    memcpy(expected, out, sizeof out);
    blocked_3x4();
    const int identical = memcmp(expected, out, sizeof out) == 0;
    printf("{\"kernel\":\"row_by_row\",\"threads\":1,\"gmacs_per_second\":%.1f}\n", best_gmacs(row_by_row));
    printf("{\"kernel\":\"blocked_3x4\",\"threads\":1,\"gmacs_per_second\":%.1f,\"bit_identical\":%s}\n",
           best_gmacs(blocked_3x4), identical ? "true" : "false");
    return identical ? 0 : 1;
}

// What 8-bit decode activations would buy the batched Q4_1 product: a prototype
// kernel over the project's interleaved layout (Sources/CSIMD/include/interleaved.h)
// with activations rounded to int8, one f32 scale per group of 32 (as llama.cpp's
// Q8 activations), against the project's exact f32 kernel on the same matrix, 32
// activation rows, 1 and 2 threads: the kernel core of --activations int8
// (Sources/CSIMD/interleaved_int8.c) alone, in cache, without its prefetching and
// remainder tiles. Run by run.sh.
//
// Why int8 can beat int16 here when each instruction does as many products: with rows
// in lanes, one 32-bit lane holds four columns of one weight row, so vpmaddubsw
// (nibble q ≤ 15 times int8 x, pairs summed) gives |sum| ≤ 2·15·127 = 3810 per int16
// lane, and a group's eight such products add up in int16 without overflow (≤ 30480).
// One vpmaddwd per group widens them: 9 multiplies per 256 products against 16 for
// int16 activations, 32 for f32 fused multiply-adds.
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "interleaved.h"
#include "timing.h"

enum { ROWS = 1536, COLS = 576, GROUPS = COLS / 32, T = 32, TILE = 8, PASSES = 100, GROUP_BYTES = 160 };

static uint8_t *weights;
static float *x, *scratch, *exact, *quantized;
static int8_t xq[T][COLS];
static float xScale[T][GROUPS], xSum[T][GROUPS];  // per group: scale, and scale · Σ int8 values

// Per group of 32: scale = max|x| / 127, values rounded to nearest.
static void quantize_activations(void) {
    for (int t = 0; t < T; t++)
        for (int g = 0; g < GROUPS; g++) {
            const float *v = x + t * COLS + g * 32;
            float largest = 0;
            for (int j = 0; j < 32; j++) largest = fmaxf(largest, fabsf(v[j]));
            const float scale = largest / 127, inverse = scale > 0 ? 1 / scale : 0;
            int sum = 0;
            for (int j = 0; j < 32; j++) sum += xq[t][g * 32 + j] = (int8_t)lrintf(v[j] * inverse);
            xScale[t][g] = scale;
            xSum[t][g] = scale * (float)sum;
        }
}

static inline __m256i broadcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

// Eight weight rows (one block) by activation rows t0..<t0+TILE: each chunk's nibbles
// are unpacked once for the tile, each activation's four bytes broadcast.
static void tile_dot(const uint8_t *block, int t0, float *out) {
    const __m256i ones = _mm256_set1_epi16(1), low = _mm256_set1_epi8(0x0F);
    __m256 acc[TILE];
    for (int r = 0; r < TILE; r++) acc[r] = _mm256_setzero_ps();
    for (int g = 0; g < GROUPS; g++) {
        const uint8_t *group = block + g * GROUP_BYTES;
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)group));
        const __m256 m = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(group + 16)));
        __m256i sums[TILE];
        for (int r = 0; r < TILE; r++) sums[r] = _mm256_setzero_si256();
        for (int k = 0; k < 4; k++) {  // chunk k: columns 4k..<4k+4 (low nibbles), 16+4k..<20+4k (high)
            const __m256i chunk = _mm256_loadu_si256((const __m256i *)(group + 32 + 32 * k));
            const __m256i lo = _mm256_and_si256(chunk, low), hi = _mm256_and_si256(_mm256_srli_epi16(chunk, 4), low);
            for (int r = 0; r < TILE; r++) {
                const int8_t *a = xq[t0 + r] + g * 32 + 4 * k;
                sums[r] = _mm256_add_epi16(sums[r], _mm256_maddubs_epi16(lo, broadcast4(a)));
                sums[r] = _mm256_add_epi16(sums[r], _mm256_maddubs_epi16(hi, broadcast4(a + 16)));
            }
        }
        for (int r = 0; r < TILE; r++) {
            const __m256 dot = _mm256_cvtepi32_ps(_mm256_madd_epi16(sums[r], ones));
            acc[r] = _mm256_fmadd_ps(dot, _mm256_mul_ps(d, _mm256_set1_ps(xScale[t0 + r][g])), acc[r]);
            acc[r] = _mm256_fmadd_ps(m, _mm256_set1_ps(xSum[t0 + r][g]), acc[r]);
        }
    }
    for (int r = 0; r < TILE; r++) _mm256_storeu_ps(out + (t0 + r) * ROWS, acc[r]);
}

static void *int8_part(void *arg) {
    part_t *part = arg;
    for (long p = 0; p < part->passes; p++)
        for (long b = part->lo; b < part->hi; b++)
            for (int t = 0; t < T; t += TILE) tile_dot(weights + b * GROUPS * GROUP_BYTES, t, quantized + b * 8);
    return NULL;
}

static void *f32_part(void *arg) {
    part_t *part = arg;
    for (long p = 0; p < part->passes; p++)
        graft_interleaved_dot(3, weights, part->lo, part->hi, COLS, scratch, T, exact, ROWS, NULL, 0);
    return NULL;
}

static void random_matrix(void) {
    const long bytes = (long)ROWS * GROUPS * 20;
    uint8_t *rowMajor = malloc(bytes);
    for (long i = 0; i < bytes; i++) rowMajor[i] = (uint8_t)rand();
    for (long g = 0; g < ROWS * GROUPS; g++) {  // finite scales and offsets: random bits may be NaN
        const uint16_t d = _cvtss_sh(0.001f * (1 + rand() % 9), 0), m = _cvtss_sh(-0.01f * (rand() % 5), 0);
        memcpy(rowMajor + g * 20, &d, 2);
        memcpy(rowMajor + g * 20 + 2, &m, 2);
    }
    weights = aligned_alloc(64, (bytes + 63) / 64 * 64);
    graft_interleaved_pack(3, rowMajor, ROWS, COLS, weights);
    free(rowMajor);
}

int main(void) {
    random_matrix();
    x = malloc(sizeof(float) * T * COLS);
    for (long i = 0; i < T * COLS; i++) x[i] = (float)(rand() % 2001 - 1000) / 1000.0f;
    scratch = malloc(sizeof(float) * graft_interleaved_scratch_count(T, COLS));
    exact = malloc(sizeof(float) * T * ROWS);
    quantized = malloc(sizeof(float) * T * ROWS);
    graft_interleaved_prepare(3, x, COLS, T, COLS, scratch);
    quantize_activations();
    part_t whole = {0, ROWS / 8, 1, 0};
    int8_part(&whole);
    f32_part(&whole);

    // The prototype against a double-precision sum over the same int8 activations (its
    // own arithmetic), and against the exact f32 product (what rounding x to int8 costs).
    float *w = malloc(sizeof(float) * ROWS * COLS);
    graft_interleaved_decode_rows(3, weights, COLS, 0, ROWS, w);
    double kernelError = 0, roundingError = 0, largest = 0;
    for (int t = 0; t < T; t++)
        for (int r = 0; r < ROWS; r++) {
            double sum = 0;
            for (int c = 0; c < COLS; c++) sum += (double)w[r * COLS + c] * xq[t][c] * xScale[t][c / 32];
            kernelError = fmax(kernelError, fabs(sum - quantized[t * ROWS + r]));
            roundingError = fmax(roundingError, fabs(exact[t * ROWS + r] - quantized[t * ROWS + r]));
            largest = fmax(largest, fabs(exact[t * ROWS + r]));
        }
    printf("int8 prototype, Q4_1 %d x %d, %d rows: largest |y| %.3f, kernel vs double sum %.2g, "
           "vs exact f32 %.2g\n", ROWS, COLS, T, largest, kernelError, roundingError);
    if (kernelError > 1e-4 * largest) {
        printf("the prototype's arithmetic is wrong\n");
        return 1;
    }
    const double macs = (double)ROWS * COLS * T * PASSES;
    for (int threads = 1; threads <= 2; threads++) {
        const double f32 = macs / best_of_five(f32_part, ROWS / 8, 1, PASSES, threads) / 1e9;
        const double int8 = macs / best_of_five(int8_part, ROWS / 8, 1, PASSES, threads) / 1e9;
        printf("{\"threads\":%d,\"f32_gmacs\":%.1f,\"int8_gmacs\":%.1f,\"int8_over_f32\":%.2f}\n", threads, f32, int8,
               int8 / f32);
    }
    return 0;
}

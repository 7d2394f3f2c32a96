// The decode side path of int8 adapter weights: the project's integer kernel
// (Sources/CSIMD/lora_int8.c, vpmaddwd on x and rank values rounded to int16) against
// the arithmetic it replaced, each int8 weight widened to f32 and multiplied in f32
// (written here in C with the same loop shape as the former Swift kernel: four ranks
// of A or four output blocks of Bᵀ per pass, eight accumulators), and the integer
// kernel taking two rows of two adapters in one call. One thread, rank 16, the seven
// projections of one SmolLM2-135M layer, two rows of two adapters (consecutive copies of
// the layer's weights) per pass:
// - in cache: two adapters' weights, read again and again (what the arithmetic costs);
// - from L3: 64 copies of the layer's weights cycled (10.4 MB, inside a 32 MB L3);
// - from memory: 960 copies (156 MB), what a step of 32 distinct adapters over 30
//   layers reads, past any L3 here.
// Prints microseconds per layer for one row, the fastest of nine rounds taking turns
// (the least disturbed by the rest of a shared machine).
#include "lora_int8.h"
#include "timing.h"

#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { RANK = 16, REPS = 2000 };
static const long cycled[3] = {2, 64, 960};
static const char *const placeNames[3] = {"in cache", "from L3", "from memory"};
static const long dims[7][2] = {{576, 576}, {576, 192}, {576, 192}, {576, 576}, {576, 1536}, {576, 1536}, {1536, 576}};

// The former arithmetic, A as packed for both ([block of 8 columns][rank][8]),
// Bᵀ in the halves' layout [block of 8 outputs][rank][8].
static __m256 widen(const int8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

static float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

static void widened_row(float *out, const float *x, const int8_t *a, const int8_t *bT, long inDim, long outDim,
                        float scale, const float *rankScales) {
    float s[RANK];
    const long blocks = inDim / 8;
    for (int g = 0; g < RANK / 4; g += 2) {
        __m256 c[8];
        for (int i = 0; i < 8; i++) c[i] = _mm256_setzero_ps();
        for (long b = 0; b < blocks; b++) {
            const __m256 xv = _mm256_loadu_ps(x + 8 * b);
            const int8_t *p = a + (b * (RANK / 4) + g) * 32, *q = p + 32;
            for (int k = 0; k < 4; k++) {
                c[k] = _mm256_fmadd_ps(widen(p + 8 * k), xv, c[k]);
                c[4 + k] = _mm256_fmadd_ps(widen(q + 8 * k), xv, c[4 + k]);
            }
        }
        for (int k = 0; k < 8; k++) s[4 * g + k] = hsum(c[k]) * scale * rankScales[4 * g + k];
    }
    for (long o = 0; o < outDim; o += 32) {
        __m256 c[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        const int8_t *p = bT + o / 8 * RANK * 8;
        for (int r = 0; r < RANK; r++) {
            const __m256 sv = _mm256_set1_ps(s[r]);
            for (int k = 0; k < 4; k++) c[k] = _mm256_fmadd_ps(widen(p + (k * RANK + r) * 8), sv, c[k]);
        }
        for (int k = 0; k < 4; k++) _mm256_storeu_ps(out + o + 8 * k, _mm256_add_ps(_mm256_loadu_ps(out + o + 8 * k), c[k]));
    }
}

static long layer_bytes(void) {
    long bytes = 0;
    for (int p = 0; p < 7; p++) bytes += RANK * (dims[p][0] + dims[p][1]);
    return bytes;
}

enum { WIDENED, INTEGER, INTEGER_TWO, KERNELS };
static const char *const kernelNames[KERNELS] = {"f32-widened", "integer", "integer two adapters a call"};

// Microseconds per layer and row, `layers` distinct copies of the weights cycled.
static double run(int kernel, const int8_t *weights, long layers, const float *x, float *out, const float *rankScales) {
    const double start = now();
    for (long rep = 0; rep < REPS; rep++) {
        const int8_t *w0 = weights + 2 * rep % layers * layer_bytes(), *w1 = weights + (2 * rep + 1) % layers * layer_bytes();
        for (int p = 0; p < 7; p++) {
            const graft_lora_int8_t first = {w0, w0 + RANK * dims[p][0], 0.5f, rankScales},
                                    second = {w1, w1 + RANK * dims[p][0], 0.5f, rankScales};
            if (kernel == WIDENED) {
                widened_row(out, x, first.a, first.bT, dims[p][0], dims[p][1], 0.5f, rankScales);
                widened_row(out, x, second.a, second.bT, dims[p][0], dims[p][1], 0.5f, rankScales);
            } else if (kernel == INTEGER) {
                graft_lora_int8_rows(out, NULL, x, NULL, &first, NULL, RANK, dims[p][0], dims[p][1]);
                graft_lora_int8_rows(out, NULL, x, NULL, &second, NULL, RANK, dims[p][0], dims[p][1]);
            } else {
                graft_lora_int8_rows(out, out + 1536, x, x, &first, &second, RANK, dims[p][0], dims[p][1]);
            }
            w0 += RANK * (dims[p][0] + dims[p][1]);
            w1 += RANK * (dims[p][0] + dims[p][1]);
        }
    }
    return (now() - start) / REPS / 2 * 1e6;
}

int main(void) {
    const long bytes = layer_bytes() * cycled[2];
    int8_t *weights = aligned_alloc(64, bytes);
    for (long i = 0; i < bytes; i++) weights[i] = (int8_t)(rand() % 255 - 127);
    float x[1536], out[2 * 1536] = {0}, rankScales[RANK];
    for (int i = 0; i < 1536; i++) x[i] = (float)(rand() % 2001) / 2000 - 0.5f;
    for (int r = 0; r < RANK; r++) rankScales[r] = 1e-3f;
    for (int place = 0; place < 3; place++) {
        double fastest[KERNELS] = {1e9, 1e9, 1e9};
        for (int round = 0; round < 9; round++)
            for (int kernel = 0; kernel < KERNELS; kernel++) {
                const double t = run(kernel, weights, cycled[place], x, out, rankScales);
                fastest[kernel] = t < fastest[kernel] ? t : fastest[kernel];
            }
        printf("lora_int8 %-11s rank %d, us per layer and row:", placeNames[place], RANK);
        for (int kernel = 0; kernel < KERNELS; kernel++) printf(" %s %.2f", kernelNames[kernel], fastest[kernel]);
        printf(" (integer over widened %.2fx, two a call over one %.2fx)\n", fastest[WIDENED] / fastest[INTEGER],
               fastest[INTEGER] / fastest[INTEGER_TWO]);
    }
    printf("(sink %g)\n", out[7]);
    free(weights);
    return 0;
}

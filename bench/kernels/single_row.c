// How fast the exact single-stream product can go on this machine: Graft's single-row
// Q4_1 kernel (RowwiseKernels.swift, dotRows1) written again in C with intrinsics, its
// order checked bit for bit against a scalar loop. Each weight is dequantized with one
// rounding, fma(q, d, m), then one fused multiply-add per column into eight lanes, four
// weight rows at a time. Measured hot (one 576×576 matrix, in each core's L2) and
// streaming (96 MB, the weights of one decode token), with 1 and 2 threads; best of
// five. A decode token of SmolLM2-135M is 134 M multiply-adds, so GMAC/s / 0.134 is the
// tokens/s the products alone would allow. Run by run.sh.
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "timing.h"

enum { COLS = 576, GROUPS = COLS / 32, GROUP_BYTES = 20, ROW_BYTES = GROUPS * GROUP_BYTES, HOT_ROWS = 576 };
static const long STREAM_ROWS = (96L << 20) / ROW_BYTES / 8 * 8;
static const double MACS_PER_TOKEN = 134.2e6;

static uint8_t *weights;
static float x[COLS], *out;

// Elements 8k..<8k+8 of a group: low nibbles of bytes 0-7 and 8-15, then high ones.
static inline __m256 chunk(const uint8_t *group, int k, __m256 d, __m256 m) {
    __m256i w = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(group + 4 + (k & 1) * 8)));
    __asm__("" : "+x"(w));  // as in CSIMD: keeps the widening straight from memory
    w = k < 2 ? _mm256_and_si256(w, _mm256_set1_epi32(15)) : _mm256_srli_epi32(w, 4);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(w), d, m);
}

static inline float sum8(__m256 v) {
    float lanes[8], s = 0;
    _mm256_storeu_ps(lanes, v);
    for (int i = 0; i < 8; i++) s += lanes[i];
    return s;
}

static void dot_rows(long lo, long hi) {
    for (long r = lo; r + 4 <= hi; r += 4) {
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int g = 0; g < GROUPS; g++) {
            if ((g & 3) == 0)
                for (int i = 4; i < 8; i++) _mm_prefetch((const char *)(weights + (r + i) * ROW_BYTES + g * GROUP_BYTES), _MM_HINT_T0);
            for (int i = 0; i < 4; i++) {
                const uint8_t *p = weights + (r + i) * ROW_BYTES + g * GROUP_BYTES;
                __m256 dm = _mm256_cvtph_ps(_mm_castps_si128(_mm_broadcast_ss((const float *)p)));
                __m256 d = _mm256_permute_ps(dm, 0x00), m = _mm256_permute_ps(dm, 0x55);
                for (int k = 0; k < 4; k++)
                    acc[i] = _mm256_fmadd_ps(chunk(p, k, d, m), _mm256_loadu_ps(x + g * 32 + k * 8), acc[i]);
            }
        }
        for (int i = 0; i < 4; i++) out[r + i] = sum8(acc[i]);
    }
}

// The same order one scalar at a time.
static float reference_row(long r) {
    float lanes[8] = {0};
    for (int c = 0; c < COLS; c++) {
        const uint8_t *p = weights + r * ROW_BYTES + (c / 32) * GROUP_BYTES;
        uint16_t dh, mh;
        memcpy(&dh, p, 2);
        memcpy(&mh, p + 2, 2);
        int e = c % 32, q = e < 16 ? p[4 + e] & 15 : p[4 + e - 16] >> 4;
        float w = fmaf((float)q, _cvtsh_ss(dh), _cvtsh_ss(mh));
        lanes[c % 8] = fmaf(w, x[c], lanes[c % 8]);
    }
    float s = 0;
    for (int i = 0; i < 8; i++) s += lanes[i];
    return s;
}

int main(void) {
    weights = aligned_alloc(64, STREAM_ROWS * ROW_BYTES);
    out = malloc(STREAM_ROWS * sizeof(float));
    for (long i = 0; i < STREAM_ROWS * ROW_BYTES; i++) weights[i] = (uint8_t)rand();
    // Finite f16 scales and offsets: d = 0.1, m = -0.15.
    for (long i = 0; i < STREAM_ROWS * ROW_BYTES; i += GROUP_BYTES) {
        weights[i] = 0x66; weights[i + 1] = 0x2e; weights[i + 2] = 0xcd; weights[i + 3] = 0xb0;
    }
    for (int c = 0; c < COLS; c++) x[c] = (float)(rand() % 2001) / 2000 - 0.5f;
    dot_rows(0, HOT_ROWS);
    int identical = 1;
    for (long r = 0; r < HOT_ROWS; r++) identical &= out[r] == reference_row(r);
    for (int threads = 1; threads <= 2; threads++) {
        double hot = gmacs_of(dot_rows, HOT_ROWS, COLS, 4, 2000, threads),
               streaming = gmacs_of(dot_rows, STREAM_ROWS, COLS, 4, 3, threads);
        printf("{\"kernel\":\"single_row_q4_1_f32\",\"threads\":%d,\"hot_gmacs_per_second\":%.1f,"
               "\"streaming_gmacs_per_second\":%.1f,\"streaming_tokens_per_second_bound\":%.0f,\"bit_identical\":%s}\n",
               threads, hot, streaming, streaming * 1e9 / MACS_PER_TOKEN, identical ? "true" : "false");
    }
    return 0;
}

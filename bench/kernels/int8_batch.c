// What 8-bit decode activations buy the batched Q4_1 and Q8_0 products: the
// --activations int8 kernels (Sources/CSIMD/interleaved_int8.c; activations rounded to
// int8, one f32 scale per group of 32, as llama.cpp's Q8 activations) against the
// project's exact f32 kernels on the same interleaved matrix, 32 activation rows in
// cache, 1 and 2 threads; then the int8 kernels again with the weights coming from
// memory (each pass over another of 64 copies, 57 MB in all, more than the L3), as a
// model's are. Run by run.sh.
//
// Why int8 can beat int16 here when each instruction does as many products: with rows
// in lanes, one 32-bit lane holds four columns of one weight row, so vpmaddubsw
// (nibble q ≤ 15 times int8 x, pairs summed) gives |sum| ≤ 2·15·127 = 3810 per int16
// lane, and a group's eight such products add up in int16 without overflow (≤ 30480).
// One vpmaddwd per group widens them: 9 multiplies per 256 products against 16 for
// int16 activations, 32 for f32 fused multiply-adds. Q8_0's signed weights need a
// vpmaddwd per vpmaddubsw (interleaved_int8.h), so it gains less.
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "interleaved.h"
#include "interleaved_int8.h"
#include "timing.h"

enum { ROWS = 1536, COLS = 576, GROUPS = COLS / 32, T = 32, PASSES = 100 };

enum { COPIES = 64 };

static int type;  // GGML type id: 3 Q4_1, 8 Q8_0
static uint8_t *weights, *copies[COPIES];
static float *x, *scratch, *exact, *quantized;
static void *scratch8;

static void *int8_part(void *arg) {
    part_t *part = arg;
    for (long p = 0; p < part->passes; p++)
        graft_int8_dot(type, weights, part->lo, part->hi, COLS, scratch8, T, quantized, ROWS, NULL, 0);
    return NULL;
}

static void *int8_memory_part(void *arg) {
    part_t *part = arg;
    for (long p = 0; p < part->passes; p++)
        graft_int8_dot(type, copies[p % COPIES], part->lo, part->hi, COLS, scratch8, T, quantized, ROWS, NULL, 0);
    return NULL;
}

static void *f32_part(void *arg) {
    part_t *part = arg;
    for (long p = 0; p < part->passes; p++)
        graft_interleaved_dot(type, weights, part->lo, part->hi, COLS, scratch, T, exact, ROWS, NULL, 0);
    return NULL;
}

// Random values (Q8_0's include -128), finite scales and offsets: random bits may be NaN.
static void random_matrix(void) {
    const long rowGroup = type == 3 ? 20 : 34, bytes = (long)ROWS * GROUPS * rowGroup;
    uint8_t *rowMajor = malloc(bytes);
    for (long i = 0; i < bytes; i++) rowMajor[i] = (uint8_t)rand();
    for (long g = 0; g < ROWS * GROUPS; g++) {
        const uint16_t d = _cvtss_sh(0.001f * (1 + rand() % 9), 0), m = _cvtss_sh(-0.01f * (rand() % 5), 0);
        memcpy(rowMajor + g * rowGroup, &d, 2);
        if (type == 3) memcpy(rowMajor + g * rowGroup + 2, &m, 2);
    }
    free(weights);
    weights = aligned_alloc(64, (bytes + 63) / 64 * 64);
    graft_interleaved_pack(type, rowMajor, ROWS, COLS, weights);
    free(rowMajor);
    for (int i = 0; i < COPIES; i++) {
        free(copies[i]);
        copies[i] = aligned_alloc(64, (bytes + 63) / 64 * 64);
        memcpy(copies[i], weights, bytes);
    }
}

static int measure(void) {
    random_matrix();
    x = malloc(sizeof(float) * T * COLS);
    for (long i = 0; i < T * COLS; i++) x[i] = (float)(rand() % 2001 - 1000) / 1000.0f;
    scratch = malloc(sizeof(float) * graft_interleaved_scratch_count(T, COLS));
    exact = malloc(sizeof(float) * T * ROWS);
    quantized = malloc(sizeof(float) * T * ROWS);
    graft_interleaved_prepare(type, x, COLS, T, COLS, scratch);
    scratch8 = malloc(graft_int8_scratch_bytes(T, COLS));
    graft_int8_prepare(x, COLS, T, COLS, scratch8);
    // graft_int8_prepare's layout: scales, sums, then the int8 values, by tile of eight
    // rows, group, row (interleaved_int8.h; T is a multiple of eight here).
    const float *xScale = scratch8;
    const int8_t *xq = (const int8_t *)(xScale + 2 * T * GROUPS);
#define AT(t, g) (((t) / 8 * GROUPS + (g)) * 8 + (t) % 8)
    part_t whole = {0, ROWS / 8, 1, 0};
    int8_part(&whole);
    f32_part(&whole);

    // The int8 kernel against a double-precision sum over the same int8 activations (its
    // own arithmetic), and against the exact f32 product (what rounding x to int8 costs).
    float *w = malloc(sizeof(float) * ROWS * COLS);
    graft_interleaved_decode_rows(type, weights, COLS, 0, ROWS, w);
    double kernelError = 0, roundingError = 0, largest = 0;
    for (int t = 0; t < T; t++)
        for (int r = 0; r < ROWS; r++) {
            double sum = 0;
            for (int c = 0; c < COLS; c++) sum += (double)w[r * COLS + c] * xq[32 * AT(t, c / 32) + c % 32] * xScale[AT(t, c / 32)];
            kernelError = fmax(kernelError, fabs(sum - quantized[t * ROWS + r]));
            roundingError = fmax(roundingError, fabs(exact[t * ROWS + r] - quantized[t * ROWS + r]));
            largest = fmax(largest, fabs(exact[t * ROWS + r]));
        }
    printf("int8 kernel, %s %d x %d, %d rows: largest |y| %.3f, kernel vs double sum %.2g, "
           "vs exact f32 %.2g\n", type == 3 ? "Q4_1" : "Q8_0", ROWS, COLS, T, largest, kernelError, roundingError);
    if (kernelError > 1e-4 * largest) {
        printf("the int8 kernel's arithmetic is wrong\n");
        return 1;
    }
    const double macs = (double)ROWS * COLS * T * PASSES;
    for (int threads = 1; threads <= 2; threads++) {
        const double f32 = macs / best_of_five(f32_part, ROWS / 8, 1, PASSES, threads) / 1e9;
        const double int8 = macs / best_of_five(int8_part, ROWS / 8, 1, PASSES, threads) / 1e9;
        const double memory = macs / best_of_five(int8_memory_part, ROWS / 8, 1, PASSES, threads) / 1e9;
        printf("{\"format\":\"%s\",\"threads\":%d,\"f32_gmacs\":%.1f,\"int8_gmacs\":%.1f,\"int8_over_f32\":%.2f,"
               "\"int8_from_memory_gmacs\":%.1f}\n",
               type == 3 ? "Q4_1" : "Q8_0", threads, f32, int8, int8 / f32, memory);
    }
    free(x); free(scratch); free(exact); free(quantized); free(scratch8); free(w);
    return 0;
}

int main(void) {
    for (int i = 0; i < 2; i++) {
        type = i == 0 ? 3 : 8;
        if (measure() != 0) return 1;
    }
    return 0;
}

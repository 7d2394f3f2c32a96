// The project's interleaved batch kernels (Sources/CSIMD/interleaved.c) on one thread:
// for T activation rows, one call (from 16 rows, slabs of eight rows in lanes) against
// the same rows in calls of at most four (the kernels that broadcast each activation),
// on a 1536 x 576 matrix (the gate and up projections' shape) of each format. Both
// ways give the same floats, checked bit for bit here before timing; the ratio is the
// lanes kernels' gain. Then graft_interleaved_prepare's time for 32 rows. Run by run.sh.
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "interleaved.h"
#include "timing.h"

enum { ROWS = 1536, COLS = 576, MAX_T = 32, PASSES = 20 };

static uint8_t *weights;
static float *scratch, *out;

static void random_matrix(int type) {
    const long rowGroup = type == 3 ? 20 : 34, bytes = (long)ROWS * COLS / 32 * rowGroup;
    uint8_t *rowMajor = malloc(bytes);
    for (long i = 0; i < bytes; i++) rowMajor[i] = (uint8_t)rand();
    for (long r = 0; r < ROWS; r++)
        for (long g = 0; g < COLS / 32; g++) {  // finite scales (and offsets): random bits may be NaN
            uint8_t *group = rowMajor + (r * (COLS / 32) + g) * rowGroup;
            const uint16_t d = _cvtss_sh(0.001f * (1 + rand() % 9), 0), m = _cvtss_sh(-0.01f * (rand() % 5), 0);
            memcpy(group, &d, 2);
            if (type == 3) memcpy(group + 2, &m, 2);
        }
    free(weights);
    weights = aligned_alloc(64, (bytes + 63) / 64 * 64);
    graft_interleaved_pack(type, rowMajor, ROWS, COLS, weights);
    free(rowMajor);
}

// T rows as one call, or as calls of at most four rows.
static void product(int type, const float *x, long T, int inFours, float *result) {
    for (long t = 0; t < T; t += inFours ? 4 : T) {
        const long n = inFours && T - t > 4 ? 4 : T - t;
        graft_interleaved_prepare(type, x + t * COLS, COLS, n, COLS, scratch);
        graft_interleaved_dot(type, weights, 0, ROWS / 8, COLS, scratch, n, result + t * ROWS, ROWS, NULL, 0);
    }
}

static double gmacs(int type, const float *x, long T, int inFours) {
    double fastest = 1e9;
    for (int run = 0; run < 5; run++) {
        const double start = now();
        for (int p = 0; p < PASSES; p++) product(type, x, T, inFours, out);
        if (now() - start < fastest) fastest = now() - start;
    }
    return (double)ROWS * COLS * T * PASSES / fastest / 1e9;
}

int main(void) {
    float *x = malloc(sizeof(float) * MAX_T * 1536);
    for (long i = 0; i < MAX_T * 1536; i++) x[i] = (float)(rand() % 2001 - 1000) / 1000.0f;
    scratch = malloc(sizeof(float) * graft_interleaved_scratch_count(MAX_T, 1536));
    out = malloc(sizeof(float) * MAX_T * ROWS);
    float *check = malloc(sizeof(float) * MAX_T * ROWS);
    const int types[] = {3, 8};
    const long counts[] = {16, 24, 32};
    printf("interleaved batch kernels, 1 thread, %d x %d matrix (GMAC/s)\n", ROWS, COLS);
    for (int i = 0; i < 2; i++) {
        random_matrix(types[i]);
        for (int c = 0; c < 3; c++) {
            const long T = counts[c];
            product(types[i], x, T, 0, out);
            product(types[i], x, T, 1, check);
            if (memcmp(out, check, sizeof(float) * T * ROWS)) {
                printf("%s, %ld rows: the two ways differ\n", types[i] == 3 ? "Q4_1" : "Q8_0", T);
                return 1;
            }
            const double lanes = gmacs(types[i], x, T, 0), fours = gmacs(types[i], x, T, 1);
            printf("  %s %2ld rows: one call %5.1f, calls of four %5.1f, ratio %.2f\n", types[i] == 3 ? "Q4_1" : "Q8_0",
                   T, lanes, fours, lanes / fours);
        }
    }
    const long widths[] = {576, 1536};
    for (int w = 0; w < 2; w++) {
        double fastest = 1e9;
        for (int run = 0; run < 5; run++) {
            const double start = now();
            for (int p = 0; p < 1000; p++) graft_interleaved_prepare(3, x, widths[w], MAX_T, widths[w], scratch);
            if (now() - start < fastest) fastest = now() - start;
        }
        printf("  prepare, Q4_1, %d rows x %ld columns: %.2f us\n", MAX_T, widths[w], fastest / 1000 * 1e6);
    }
    return 0;
}

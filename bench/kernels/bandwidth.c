// What this machine's memory gives, against what the int16 decode kernel takes from
// it: a plain read loop over 96 MB (the weights one decode token reads) and
// graft_dot_rows_i16 over 96 MB of Q4_1 rows (576 columns, one activation row), each
// with 1 and 2 threads; best of five. Run by run.sh.
#include "dot_i16.h"
#include "timing.h"

#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BYTES = 96 << 20, COLS = 576, ROW_BYTES = COLS / 32 * 20 };

static uint8_t *weights;
static int16_t q[COLS];
static float scales[COLS / 32], sums[COLS / 32], *out;

static void *read_loop(void *arg) {
    part_t *p = arg;
    __m256i a = _mm256_setzero_si256(), b = _mm256_setzero_si256();
    for (long i = p->lo; i < p->hi; i += 64) {
        a = _mm256_add_epi64(a, _mm256_load_si256((const __m256i *)(weights + i)));
        b = _mm256_add_epi64(b, _mm256_load_si256((const __m256i *)(weights + i + 32)));
    }
    p->sink = _mm256_extract_epi64(_mm256_add_epi64(a, b), 0);
    return NULL;
}

static void *dot_rows(void *arg) {
    part_t *p = arg;
    graft_dot_rows_i16(GRAFT_I16_Q4_1, weights, ROW_BYTES, p->lo, p->hi, COLS, q, scales, sums, 1, out, 0, NULL, 0);
    return NULL;
}

int main(void) {
    weights = aligned_alloc(64, BYTES);
    for (long i = 0; i < BYTES; i++) weights[i] = (uint8_t)rand();
    // Q4_1 blocks with finite f16 scale and offset (1.0).
    for (long i = 0; i + 20 <= BYTES; i += 20) { weights[i] = weights[i + 2] = 0; weights[i + 1] = weights[i + 3] = 0x3c; }
    const long rows = BYTES / ROW_BYTES;
    out = malloc(rows * sizeof(float));
    for (int i = 0; i < COLS; i++) q[i] = (int16_t)(rand() % 2001 - 1000);
    for (int g = 0; g < COLS / 32; g++) { scales[g] = 1e-3f; sums[g] = 1; }
    for (int threads = 1; threads <= 2; threads++) {
        double read = best_of_five(read_loop, BYTES, 64, 1, threads);
        double dot = best_of_five(dot_rows, rows, 1, 1, threads);
        printf("{\"threads\":%d,\"read_loop_gb_per_s\":%.1f,\"dot_rows_i16_q4_1_gb_per_s\":%.1f}\n",
               threads, BYTES / read / 1e9, rows * (double)ROW_BYTES / dot / 1e9);
    }
    return 0;
}

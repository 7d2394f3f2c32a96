// The arithmetic ceiling the batched decode kernels work under: multiply-adds per
// second from register-only loops of the two instructions they are built on, with
// 1 and 2 threads, best of five.
//   f32:   vfmadd231ps, 8 products per instruction (the exact f32 path);
//   int16: vpmaddwd,    16 products per instruction (the --activations int16 path).
// Twelve independent chains per thread, more than latency × issue width, so only
// throughput limits the loops. Run by run.sh.
#include <immintrin.h>
#include <stdio.h>

#include "timing.h"

enum { ITERATIONS = 50 * 1000 * 1000, CHAINS = 12 };

static void *fma_loop(void *arg) {
    part_t *part = arg;
    __m256 acc[CHAINS];
    const __m256 a = _mm256_set1_ps(1.0000001f), b = _mm256_set1_ps(0.9999999f);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_set1_ps((float)c);
    for (long i = 0; i < ITERATIONS; i++) {
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
    }
    __m256 s = acc[0];
    for (int c = 1; c < CHAINS; c++) s = _mm256_add_ps(s, acc[c]);
    part->sink = (long long)_mm256_cvtss_f32(s);
    return NULL;
}

static void *madd_loop(void *arg) {
    part_t *part = arg;
    __m256i acc[CHAINS];
    const __m256i a = _mm256_set1_epi16(3);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_set1_epi16((short)c);
    for (long i = 0; i < ITERATIONS; i++) {
        // The result feeds the next madd as its int16 input: one dependent chain each.
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_madd_epi16(acc[c], a);
    }
    __m256i s = acc[0];
    for (int c = 1; c < CHAINS; c++) s = _mm256_add_epi32(s, acc[c]);
    part->sink = _mm256_extract_epi32(s, 0);
    return NULL;
}

// GMAC/s with `threads` threads each running one loop, best of five.
static double run(int threads, int int16) {
    const double macs = (double)threads * ITERATIONS * CHAINS * (int16 ? 16 : 8);
    return macs / best_of_five(int16 ? madd_loop : fma_loop, threads, 1, 1, threads) / 1e9;
}

int main(void) {
    for (int int16 = 0; int16 <= 1; int16++) {
        for (int threads = 1; threads <= 2; threads++) {
            printf("{\"instruction\":\"%s\",\"threads\":%d,\"gmacs_per_second\":%.1f}\n",
                   int16 ? "vpmaddwd" : "vfmadd231ps", threads, run(threads, int16));
        }
    }
    return 0;
}

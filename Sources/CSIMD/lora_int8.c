#include "lora_int8.h"

#include <float.h>
#include <immintrin.h>
#include <stdint.h>

// Columns of x are rounded to int16 this many blocks of 8 at a time, into a stack buffer,
// so any width works without scratch from the caller.
enum { CHUNK_BLOCKS = 32 };

static long padded_cols(long cols) { return (cols + 7) & ~7L; }
static long padded_rank(long rank) { return (rank + 3) & ~3L; }

// The largest q for which `terms` products of an int8 weight (|w| <= 127, the packing's
// range) and an int16 in [-q, q] sum inside an int32.
static long range_for(long terms) {
    const long q = 2147483647L / (127 * (terms > 0 ? terms : 1));
    return q < 32767 ? q : 32767;
}

long graft_lora_int8_x_range(long inDim) { return range_for(padded_cols(inDim)); }
long graft_lora_int8_s_range(long rank) { return range_for(padded_rank(rank)); }

static float max_abs(const float *x, long n) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_setzero_ps();
    long i = 0;
    for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
    float lanes[8], largest = 0;
    _mm256_storeu_ps(lanes, m);
    for (int l = 0; l < 8; l++) largest = lanes[l] > largest ? lanes[l] : largest;
    for (; i < n; i++) {
        const float v = x[i] < 0 ? -x[i] : x[i];
        largest = v > largest ? v : largest;
    }
    return largest;
}

// The multiplier taking values of largest magnitude `largest` into [-range, range]
// (rounded to nearest, ties to even), and its inverse, the step. Zero for a row of
// zeros, or one so small its multiplier would overflow: its side path is below any f32
// output's rounding.
static void rounding_scale(float largest, long range, float *multiplier, float *step) {
    const float m = (float)range / largest;
    const int usable = largest > 0 && m < FLT_MAX;
    *multiplier = usable ? m : 0;
    *step = usable ? largest / (float)range : 0;
}

// q[8b..8b+8) = x's columns c0 + 8b... times multiplier, rounded, for `blocks` blocks;
// columns at or past inDim are 0 (the packed A is zero there too).
static void round_columns(int16_t *q, const float *x, long c0, long blocks, long inDim, float multiplier) {
    const __m256 m = _mm256_set1_ps(multiplier);
    for (long b = 0; b < blocks; b++) {
        const long c = c0 + 8 * b;
        __m256 v;
        if (c + 8 <= inDim) {
            v = _mm256_loadu_ps(x + c);
        } else {
            float tail[8] = {0};
            for (long l = 0; c + l < inDim; l++) tail[l] = x[c + l];
            v = _mm256_loadu_ps(tail);
        }
        const __m256i w = _mm256_cvtps_epi32(_mm256_mul_ps(v, m));
        _mm_storeu_si128((__m128i *)(q + 8 * b),
                         _mm_packs_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1)));
    }
}

static int32_t sum128(__m128i v) {
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(v);
}

// How the rows of one call share their weights: one row alone, two rows of one adapter
// (each load of a weight feeds both), or two rows of two adapters of one rank (both
// adapters' streams read in the same pass, so twice the misses are in flight when
// the weights come from memory). The arithmetic of a row is the same in all three.
enum { ONE = 0, SHARED = 1, TWO = 2 };

static __m256i widen_lo(const int8_t *p) { return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p)); }
static __m256i widen_hi(const int8_t *p) { return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + 16))); }
static __m256i madd_add(__m256i acc, __m256i w, __m256i x) { return _mm256_add_epi32(acc, _mm256_madd_epi16(w, x)); }

// Over one chunk of `n` blocks starting at block b0, groups g0 ..< g0 + G of A times
// the chunk's rounded x (q0, and q1 for a second row), added to their accumulators in
// acc0 (acc1): two registers a group, ranks (0, 1) and (2, 3). Each 32-byte piece of A
// is one block's four ranks of a group, eight columns each; widened, two ranks fill the
// two halves of a register and vpmaddwd multiplies both by the same eight columns of
// x, leaving four partial sums per rank.
static inline __attribute__((always_inline)) void shrink_tile(
    const int G, const int mode, __m256i *acc0, __m256i *acc1, const int16_t *q0, const int16_t *q1,
    const int8_t *a0, const int8_t *a1, long g0, long groups, long b0, long n) {
    __m256i c[4][2], d[4][2];
    for (int g = 0; g < G; g++)
        for (int h = 0; h < 2; h++) {
            c[g][h] = _mm256_loadu_si256(acc0 + 2 * (g0 + g) + h);
            if (mode != ONE) d[g][h] = _mm256_loadu_si256(acc1 + 2 * (g0 + g) + h);
        }
    for (long b = 0; b < n; b++) {
        const __m256i u = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(q0 + 8 * b)));
        const __m256i v =
            mode != ONE ? _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(q1 + 8 * b))) : u;
        for (int g = 0; g < G; g++) {
            const long at = ((b0 + b) * groups + g0 + g) * 32;
            const __m256i lo = widen_lo(a0 + at), hi = widen_hi(a0 + at);
            c[g][0] = madd_add(c[g][0], lo, u);
            c[g][1] = madd_add(c[g][1], hi, u);
            if (mode == SHARED) {
                d[g][0] = madd_add(d[g][0], lo, v);
                d[g][1] = madd_add(d[g][1], hi, v);
            } else if (mode == TWO) {
                d[g][0] = madd_add(d[g][0], widen_lo(a1 + at), v);
                d[g][1] = madd_add(d[g][1], widen_hi(a1 + at), v);
            }
        }
    }
    for (int g = 0; g < G; g++)
        for (int h = 0; h < 2; h++) {
            _mm256_storeu_si256(acc0 + 2 * (g0 + g) + h, c[g][h]);
            if (mode != ONE) _mm256_storeu_si256(acc1 + 2 * (g0 + g) + h, d[g][h]);
        }
}

// Rank 4g + 2h + k's sum: the four lanes of half k of accumulator (g, h).
static void sum_ranks(int32_t *s, const __m256i *acc, long groups) {
    for (long i = 0; i < 2 * groups; i++) {
        s[2 * i] = sum128(_mm256_castsi256_si128(acc[i]));
        s[2 * i + 1] = sum128(_mm256_extracti128_si256(acc[i], 1));
    }
}

// s0 (and s1) = A·qx, exact. x is rounded one chunk of columns at a time, and every
// group runs over the chunk: four groups at a time for one row, two for two rows
// (eight accumulators in registers either way).
static inline __attribute__((always_inline)) void shrink(
    const int mode, int32_t *s0, int32_t *s1, const float *x0, const float *x1, float m0, float m1,
    const int8_t *a0, const int8_t *a1, long groups, long inDim) {
    const long blocks = padded_cols(inDim) / 8, widest = mode == ONE ? 4 : 2;
    __m256i acc0[2 * groups], acc1[2 * groups];
    for (long i = 0; i < 2 * groups; i++) acc0[i] = acc1[i] = _mm256_setzero_si256();
    int16_t q0[CHUNK_BLOCKS * 8], q1[CHUNK_BLOCKS * 8];
    for (long b0 = 0; b0 < blocks; b0 += CHUNK_BLOCKS) {
        const long n = blocks - b0 < CHUNK_BLOCKS ? blocks - b0 : CHUNK_BLOCKS;
        round_columns(q0, x0, 8 * b0, n, inDim, m0);
        if (mode != ONE) round_columns(q1, x1, 8 * b0, n, inDim, m1);
        for (long g = 0; g < groups; g += widest) {
            const long tile = groups - g < widest ? groups - g : widest;
            if (tile == 4) shrink_tile(4, mode, acc0, acc1, q0, q1, a0, a1, g, groups, b0, n);
            else if (tile == 3) shrink_tile(3, mode, acc0, acc1, q0, q1, a0, a1, g, groups, b0, n);
            else if (tile == 2) shrink_tile(2, mode, acc0, acc1, q0, q1, a0, a1, g, groups, b0, n);
            else shrink_tile(1, mode, acc0, acc1, q0, q1, a0, a1, g, groups, b0, n);
        }
    }
    sum_ranks(s0, acc0, groups);
    if (mode != ONE) sum_ranks(s1, acc1, groups);
}

// out[o..o+8) += v, or its first `count` lanes.
static void add_block(float *out, __m256 v, long count) {
    if (count >= 8) {
        _mm256_storeu_ps(out, _mm256_add_ps(_mm256_loadu_ps(out), v));
        return;
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, v);
    for (long l = 0; l < count; l++) out[l] += lanes[l];
}

// Output blocks ob ... ob + K: out += step · Σ_pairs vpmaddwd(Bᵀ's pair, the pair of
// rounded rank values), each 16-byte run of Bᵀ being one pair of ranks for 8 outputs.
static inline __attribute__((always_inline)) void expand_blocks(
    const int K, const int mode, float *out0, float *out1, const int32_t *t0, const int32_t *t1, float step0,
    float step1, const int8_t *bT0, const int8_t *bT1, long ob, long pairs, long outDim) {
    __m256i c[4], d[4];
    for (int k = 0; k < K; k++) c[k] = d[k] = _mm256_setzero_si256();
    const int8_t *p = bT0 + ob * pairs * 16, *q = bT1 + ob * pairs * 16;
    for (long r = 0; r < pairs; r++) {
        const __m256i u = _mm256_set1_epi32(t0[r]);
        const __m256i v = mode != ONE ? _mm256_set1_epi32(t1[r]) : u;
        for (int k = 0; k < K; k++) {
            const long at = (k * pairs + r) * 16;
            const __m256i w = widen_lo(p + at);
            c[k] = madd_add(c[k], w, u);
            if (mode == SHARED) d[k] = madd_add(d[k], w, v);
            else if (mode == TWO) d[k] = madd_add(d[k], widen_lo(q + at), v);
        }
    }
    for (int k = 0; k < K; k++) {
        const long o = 8 * (ob + k);
        add_block(out0 + o, _mm256_mul_ps(_mm256_cvtepi32_ps(c[k]), _mm256_set1_ps(step0)), outDim - o);
        if (mode != ONE)
            add_block(out1 + o, _mm256_mul_ps(_mm256_cvtepi32_ps(d[k]), _mm256_set1_ps(step1)), outDim - o);
    }
}

static inline __attribute__((always_inline)) void expand(
    const int mode, float *out0, float *out1, const int32_t *t0, const int32_t *t1, float step0, float step1,
    const int8_t *bT0, const int8_t *bT1, long pairs, long outDim) {
    const long blocks = padded_cols(outDim) / 8;
    long ob = 0;
    if (mode != ONE) {
        for (; ob + 2 <= blocks; ob += 2)
            expand_blocks(2, mode, out0, out1, t0, t1, step0, step1, bT0, bT1, ob, pairs, outDim);
        if (ob < blocks) expand_blocks(1, mode, out0, out1, t0, t1, step0, step1, bT0, bT1, ob, pairs, outDim);
        return;
    }
    for (; ob + 4 <= blocks; ob += 4)
        expand_blocks(4, ONE, out0, out0, t0, t0, step0, step0, bT0, bT0, ob, pairs, outDim);
    for (; ob < blocks; ob++) expand_blocks(1, ONE, out0, out0, t0, t0, step0, step0, bT0, bT0, ob, pairs, outDim);
}

// The rank values s[r]·factor·rankScales[r] rounded to int16 in pairs (rank 2j in the low
// half of t[j], 2j + 1 in the high), the padding ranks zero; returns the step, 0 when
// every value is 0.
static float round_rank_values(int32_t *t, const int32_t *s, float factor, const float *rankScales, long rank,
                               long paddedRank, long range) {
    float values[paddedRank];
    for (long r = 0; r < paddedRank; r++) values[r] = r < rank ? (float)s[r] * factor * rankScales[r] : 0;
    float multiplier, step;
    rounding_scale(max_abs(values, paddedRank), range, &multiplier, &step);
    for (long j = 0; j < paddedRank / 2; j++) {
        const int32_t lo = (int32_t)__builtin_rintf(values[2 * j] * multiplier);
        const int32_t hi = (int32_t)__builtin_rintf(values[2 * j + 1] * multiplier);
        t[j] = (int32_t)((uint32_t)(uint16_t)lo | (uint32_t)hi << 16);
    }
    return step;
}

static inline __attribute__((always_inline)) void side_path(
    const int mode, float *out0, float *out1, const float *x0, const float *x1, const graft_lora_int8_t *w0,
    const graft_lora_int8_t *w1, long rank, long inDim, long outDim) {
    const long paddedRank = padded_rank(rank), xRange = graft_lora_int8_x_range(inDim);
    float m0, m1 = 0, step0, step1 = 0;
    rounding_scale(max_abs(x0, inDim), xRange, &m0, &step0);
    if (mode != ONE) rounding_scale(max_abs(x1, inDim), xRange, &m1, &step1);
    int32_t s0[paddedRank], s1[paddedRank];
    shrink(mode, s0, s1, x0, x1, m0, m1, w0->a, w1->a, paddedRank / 4, inDim);

    const long sRange = graft_lora_int8_s_range(rank), pairs = paddedRank / 2;
    int32_t t0[pairs], t1[pairs];
    const float out0Step = round_rank_values(t0, s0, step0 * w0->scale, w0->rankScales, rank, paddedRank, sRange);
    const float out1Step =
        mode != ONE ? round_rank_values(t1, s1, step1 * w1->scale, w1->rankScales, rank, paddedRank, sRange) : 0;
    // A row whose rank values are all zero adds nothing; the other of two still runs.
    if (mode != ONE && out0Step != 0 && out1Step != 0) {
        expand(mode, out0, out1, t0, t1, out0Step, out1Step, w0->bT, w1->bT, pairs, outDim);
        return;
    }
    if (out0Step != 0) expand(ONE, out0, out0, t0, t0, out0Step, out0Step, w0->bT, w0->bT, pairs, outDim);
    if (mode != ONE && out1Step != 0) expand(ONE, out1, out1, t1, t1, out1Step, out1Step, w1->bT, w1->bT, pairs, outDim);
}

void graft_lora_int8_rows(float *out0, float *out1, const float *x0, const float *x1, const graft_lora_int8_t *w0,
                          const graft_lora_int8_t *w1, long rank, long inDim, long outDim) {
    if (!w1) side_path(ONE, out0, out0, x0, x0, w0, w0, rank, inDim, outDim);
    else if (w1->a == w0->a && w1->bT == w0->bT) side_path(SHARED, out0, out1, x0, x1, w0, w1, rank, inDim, outDim);
    else side_path(TWO, out0, out1, x0, x1, w0, w1, rank, inDim, outDim);
}

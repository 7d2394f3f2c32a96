// See include/dot_i16.h for the arithmetic. Written with AVX2 intrinsics because the
// instruction that matters, vpmaddwd (16 int16 products summed in pairs), has no
// Swift spelling. Compiled with -ffp-contract=off: every f32 multiply-add here is an
// explicit fma, so each kernel variant rounds exactly as the others do.
#include "dot_i16.h"
#include "prefetch_cursor.h"

#include <immintrin.h>
#include <math.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

void graft_quantize_rows_i16(const float *x, long xStride, long T, long cols,
                             int16_t *q, float *scales, float *sums) {
    const long groups = cols / 32;
    const __m256 signMask = _mm256_set1_ps(-0.0f);
    for (long t = 0; t < T; t++) {
        const float *row = x + t * xStride;
        for (long g = 0; g < groups; g++) {
            const float *p = row + g * 32;
            __m256 v0 = _mm256_loadu_ps(p), v1 = _mm256_loadu_ps(p + 8);
            __m256 v2 = _mm256_loadu_ps(p + 16), v3 = _mm256_loadu_ps(p + 24);
            __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(signMask, v0), _mm256_andnot_ps(signMask, v1)),
                                     _mm256_max_ps(_mm256_andnot_ps(signMask, v2), _mm256_andnot_ps(signMask, v3)));
            __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
            m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
            const float amax = _mm_cvtss_f32(m4);
            const float scale = amax / 32767.0f;
            const __m256 inverse = _mm256_set1_ps(amax > 0 ? 32767.0f / amax : 0.0f);
            // Round to nearest even; |x·inverse| <= 32767 up to one rounding, which
            // still rounds into range.
            __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, inverse));
            __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, inverse));
            __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, inverse));
            __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, inverse));
            // packs interleaves 128-bit lanes; the permute puts elements back in order.
            __m256i lo = _mm256_permute4x64_epi64(_mm256_packs_epi32(i0, i1), 0xD8);
            __m256i hi = _mm256_permute4x64_epi64(_mm256_packs_epi32(i2, i3), 0xD8);
            _mm256_storeu_si256((__m256i *)(q + t * cols + g * 32), lo);
            _mm256_storeu_si256((__m256i *)(q + t * cols + g * 32 + 16), hi);
            scales[g * T + t] = scale;
            __m256 s = _mm256_add_ps(_mm256_add_ps(v0, v1), _mm256_add_ps(v2, v3));
            __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
            s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
            s4 = _mm_add_ss(s4, _mm_shuffle_ps(s4, s4, 1));
            sums[g * T + t] = _mm_cvtss_f32(s4);
        }
    }
}

ALWAYS_INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

ALWAYS_INLINE float half(const uint8_t *p) {
    return _cvtsh_ss(*(const uint16_t *)p);
}

// One weight group: its 32 values as int16 in two registers (elements 0..<16 and
// 16..<32), its scale d and offset m (value = d·w + m).
typedef struct { __m256i lo, hi; float d, m; } group_t;

ALWAYS_INLINE long group_bytes(int type) {
    return type == GRAFT_I16_Q4_1 ? 20 : type == GRAFT_I16_Q4_0 ? 18 : 34;
}

ALWAYS_INLINE group_t load_group(int type, const uint8_t *p) {
    group_t g;
    g.d = half(p);
    if (type == GRAFT_I16_Q8_0) {
        g.lo = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + 2)));
        g.hi = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + 18)));
        g.m = 0;
        return g;
    }
    // Q4: low nibbles are elements 0..<16, high nibbles 16..<32.
    const uint8_t *nibbles = p + (type == GRAFT_I16_Q4_1 ? 4 : 2);
    __m256i w = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)nibbles));
    g.lo = _mm256_and_si256(w, _mm256_set1_epi16(15));
    g.hi = _mm256_srli_epi16(w, 4);
    g.m = type == GRAFT_I16_Q4_1 ? half(p + 2) : -8.0f * g.d;
    return g;
}

// Σ w_q·x_q over the group, as eight int32 lanes (exact).
ALWAYS_INLINE __m256i group_dot(group_t g, const int16_t *xq) {
    return _mm256_add_epi32(_mm256_madd_epi16(g.lo, _mm256_loadu_si256((const __m256i *)xq)),
                            _mm256_madd_epi16(g.hi, _mm256_loadu_si256((const __m256i *)(xq + 16))));
}

// n (4 or 8) consecutive floats; the upper lanes are zero when n is 4.
ALWAYS_INLINE __m256 load_rows(const float *p, const int n) {
    return n == 8 ? _mm256_loadu_ps(p) : _mm256_zextps128_ps256(_mm_loadu_ps(p));
}

// TB (4 or 8) activation rows against one weight row at a time: each group is decoded
// once. Scales and offsets are handled as vectors over the activation rows (lane t),
// which keeps every accumulator in a register.
ALWAYS_INLINE void dot_activation_block(int type, const uint8_t *weights, long rowBytes, long rowLo, long rowHi,
                                        long cols, const int16_t *q, const float *scales, const float *sums,
                                        long sStride, float *out, long outStride, prefetch_t *pf, const int TB) {
    const long groups = cols / 32, gb = group_bytes(type);
    const int offset = type != GRAFT_I16_Q8_0;
    for (long r = rowLo; r < rowHi; r++) {
        const uint8_t *p = weights + r * rowBytes;
        __m256 acc[8];
        for (int t = 0; t < TB; t++) acc[t] = _mm256_setzero_ps();
        __m256 off = _mm256_setzero_ps();
        for (long g = 0; g < groups; g++, p += gb) {
            prefetch_advance(pf);
            group_t w = load_group(type, p);
            const __m256 ds = _mm256_mul_ps(_mm256_set1_ps(w.d), load_rows(scales + g * sStride, TB));
            if (offset) off = _mm256_fmadd_ps(_mm256_set1_ps(w.m), load_rows(sums + g * sStride, TB), off);
            for (int t = 0; t < TB; t++) {
                __m256 scale = _mm256_permutevar8x32_ps(ds, _mm256_set1_epi32(t));
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(group_dot(w, q + t * cols + g * 32)), scale, acc[t]);
            }
        }
        float offsets[8];
        _mm256_storeu_ps(offsets, off);
        for (int t = 0; t < TB; t++) out[t * outStride + r] = hsum8(acc[t]) + offsets[t];
    }
}

// One activation row against four weight rows at a time: four independent chains
// keep the pipeline full where one row alone would wait on its accumulator. Offsets
// are a vector over the four weight rows (lane k).
ALWAYS_INLINE void dot_single_row(int type, const uint8_t *weights, long rowBytes, long rowLo, long rowHi,
                                  long cols, const int16_t *q, const float *scales, const float *sums,
                                  long sStride, float *out, prefetch_t *pf) {
    const long groups = cols / 32, gb = group_bytes(type);
    const int offset = type != GRAFT_I16_Q8_0;
    const long groupsPerLine = gb < 64 ? 64 / gb : 1;
    long r = rowLo;
    for (; r + 4 <= rowHi; r += 4) {
        const uint8_t *p = weights + r * rowBytes;
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        __m128 off = _mm_setzero_ps();
        for (long g = 0; g < groups; g++, p += gb) {
            // The next four rows, a line per row as each line's worth of groups goes
            // by (at least one group per 64 bytes, so every line is reached): the
            // hardware prefetcher alone ramps up too slowly on these short jobs (of 4,
            // 8 and 16 rows ahead, 4 streamed fastest in a scratch test).
            if (g % groupsPerLine == 0) {
                for (int k = 4; k < 8; k++) _mm_prefetch((const char *)(p + k * rowBytes), _MM_HINT_T0);
            }
            prefetch_advance(pf);
            const float scale = scales[g * sStride];
            float m[4];
            for (int k = 0; k < 4; k++) {
                group_t w = load_group(type, p + k * rowBytes);
                acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(group_dot(w, q + g * 32)), _mm256_set1_ps(w.d * scale), acc[k]);
                m[k] = w.m;
            }
            if (offset) off = _mm_fmadd_ps(_mm_loadu_ps(m), _mm_set1_ps(sums[g * sStride]), off);
        }
        float offsets[4];
        _mm_storeu_ps(offsets, off);
        for (int k = 0; k < 4; k++) out[r + k] = hsum8(acc[k]) + offsets[k];
    }
    // Leftover rows, one at a time, in the same order.
    for (; r < rowHi; r++) {
        const uint8_t *p = weights + r * rowBytes;
        __m256 acc = _mm256_setzero_ps();
        float off = 0;
        for (long g = 0; g < groups; g++, p += gb) {
            group_t w = load_group(type, p);
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(group_dot(w, q + g * 32)),
                                  _mm256_set1_ps(w.d * scales[g * sStride]), acc);
            if (offset) off = fmaf(w.m, sums[g * sStride], off);
        }
        out[r] = hsum8(acc) + off;
    }
}

ALWAYS_INLINE void dot_rows(int type, const uint8_t *weights, long rowBytes, long rowLo, long rowHi,
                            long cols, const int16_t *q, const float *scales, const float *sums, long T,
                            float *out, long outStride, prefetch_t *pf) {
    long t = 0;
    for (; t + 8 <= T; t += 8)
        dot_activation_block(type, weights, rowBytes, rowLo, rowHi, cols, q + t * cols, scales + t, sums + t, T,
                             out + t * outStride, outStride, pf, 8);
    if (t + 4 <= T) {
        dot_activation_block(type, weights, rowBytes, rowLo, rowHi, cols, q + t * cols, scales + t, sums + t, T,
                             out + t * outStride, outStride, pf, 4);
        t += 4;
    }
    for (; t < T; t++)
        dot_single_row(type, weights, rowBytes, rowLo, rowHi, cols, q + t * cols, scales + t, sums + t, T,
                       out + t * outStride, pf);
}

void graft_dot_rows_i16(int type, const uint8_t *weights, long rowBytes, long rowLo, long rowHi,
                        long cols, const int16_t *q, const float *scales, const float *sums, long T,
                        float *out, long outStride, const void *prefetch, long prefetchBytes) {
    prefetch_t pf = prefetch_span(prefetch, prefetchBytes);
    // One specialisation per format, so the per-group branches on `type` fold away.
    switch (type) {
    case GRAFT_I16_Q4_1:
        dot_rows(GRAFT_I16_Q4_1, weights, rowBytes, rowLo, rowHi, cols, q, scales, sums, T, out, outStride, &pf);
        break;
    case GRAFT_I16_Q4_0:
        dot_rows(GRAFT_I16_Q4_0, weights, rowBytes, rowLo, rowHi, cols, q, scales, sums, T, out, outStride, &pf);
        break;
    case GRAFT_I16_Q8_0:
        dot_rows(GRAFT_I16_Q8_0, weights, rowBytes, rowLo, rowHi, cols, q, scales, sums, T, out, outStride, &pf);
        break;
    }
}

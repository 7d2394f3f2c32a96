// See include/interleaved.h for the layouts and the arithmetic. In C because the
// kernels interleave up to four row blocks or four activation rows with their partial
// sums all in registers: written in Swift, the earlier eight-row interleaved kernel was
// hoisted and spilled by LLVM (README: 95-103 against 142-147 tokens/s), while clang
// keeps these in the sixteen AVX registers. Compiled with -ffp-contract=off: every
// multiply-add here is an explicit fma, so all variants round alike. Every function
// takes the format as a constant after inlining (one specialisation per format, as in
// dot_i16.c).
#include "interleaved.h"
#include "prefetch_cursor.h"

#include <immintrin.h>
#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

enum { Q4_1 = 3, Q8_0 = 8, CHUNK_BYTES = 32 };

ALWAYS_INLINE long row_group_bytes(int type) { return type == Q4_1 ? 20 : 34; }
ALWAYS_INLINE long group_bytes(int type) { return 8 * row_group_bytes(type); }
// Bytes before the chunks: eight scales, and for Q4_1 eight offsets.
ALWAYS_INLINE long header_bytes(int type) { return type == Q4_1 ? 32 : 16; }
ALWAYS_INLINE int chunks(int type) { return type == Q4_1 ? 4 : 8; }
ALWAYS_INLINE int values_per_chunk(int type) { return type == Q4_1 ? 8 : 4; }

// Column (within its group) of value j of chunk k. Q4_1: byte 4k + j/2 of the row, its
// low nibble for even j (columns 0..<16), its high one for odd j (16..<32). Q8_0: byte
// 4k + j.
ALWAYS_INLINE int column(int type, int k, int j) { return type == Q4_1 ? 4 * k + j / 2 + (j & 1) * 16 : 4 * k + j; }

// Q4_1: the bit nibble j starts at once masked. The top nibble is shifted down first:
// in bits 28..<32 the conversion, which is signed, would read it as negative.
ALWAYS_INLINE int shift(int j) { return j == 7 ? 24 : 8 * (j / 2) + (j & 1) * 4; }

int graft_interleaved_supports(int type) { return type == Q4_1 || type == Q8_0; }

void graft_interleaved_pack(int type, const uint8_t *rowMajor, long rows, long cols, uint8_t *interleaved) {
    const long groups = cols / 32, rowGroup = row_group_bytes(type), rowBytes = groups * rowGroup;
    const long header = header_bytes(type), valuesAt = type == Q4_1 ? 4 : 2;
    for (long r = 0; r < rows; r++) {
        for (long g = 0; g < groups; g++) {
            const uint8_t *src = rowMajor + r * rowBytes + g * rowGroup;
            uint8_t *dst = interleaved + (r / 8 * groups + g) * group_bytes(type);
            memcpy(dst + 2 * (r % 8), src, 2);
            if (type == Q4_1) memcpy(dst + 16 + 2 * (r % 8), src + 2, 2);
            for (int k = 0; k < chunks(type); k++)
                memcpy(dst + header + k * CHUNK_BYTES + 4 * (r % 8), src + valuesAt + 4 * k, 4);
        }
    }
}

void graft_interleaved_row_group(int type, const uint8_t *interleaved, long cols, long r, long g, uint8_t *block) {
    const uint8_t *src = interleaved + (r / 8 * (cols / 32) + g) * group_bytes(type);
    const long header = header_bytes(type), valuesAt = type == Q4_1 ? 4 : 2;
    memcpy(block, src + 2 * (r % 8), 2);
    if (type == Q4_1) memcpy(block + 2, src + 16 + 2 * (r % 8), 2);
    for (int k = 0; k < chunks(type); k++) memcpy(block + valuesAt + 4 * k, src + header + k * CHUNK_BYTES + 4 * (r % 8), 4);
}

long graft_interleaved_scratch_count(long T, long cols) { return T * (cols + cols / 32); }

void graft_interleaved_prepare(int type, const float *x, long xStride, long T, long cols, float *scratch) {
    const long groups = cols / 32;
    float *sums = scratch + T * cols;
    for (long t = 0; t < T; t++) {
        const float *row = x + t * xStride;
        float *scaled = scratch + t * cols;
        for (long g = 0; g < groups; g++) {
            if (type == Q4_1) {  // for the offsets; Q8_0 has none
                float s = 0;
                for (int c = 0; c < 32; c++) s += row[g * 32 + c];
                sums[t * groups + g] = s;
            }
            for (int k = 0; k < 4; k++)
                for (int j = 0; j < 8; j++) {
                    const long c = g * 32 + column(Q4_1, k, j);
                    // exact: a power of two
                    scaled[c] = type == Q4_1 ? row[c] * (1.0f / (float)(1 << shift(j))) : row[c];
                }
        }
    }
}

// Value j of every lane of a chunk as a float: Q4_1 q·2^shift(j), Q8_0 q, exactly.
ALWAYS_INLINE __m256 value(int type, __m256i chunk, int j) {
    if (type == Q8_0) {
        if (j < 3) chunk = _mm256_slli_epi32(chunk, 24 - 8 * j);
        return _mm256_cvtepi32_ps(_mm256_srai_epi32(chunk, 24));
    }
    if (j == 7) chunk = _mm256_srli_epi32(chunk, 4);
    return _mm256_cvtepi32_ps(_mm256_and_si256(chunk, _mm256_set1_epi32(15 << shift(j))));
}

// Asks for `bytes` at p, a line at a time.
ALWAYS_INLINE void prefetch_bytes(const uint8_t *p, long bytes) {
    for (long line = 0; line < bytes; line += 64) _mm_prefetch((const char *)p + line, _MM_HINT_T0);
}

// RB row blocks (from `w`, a block's groups apart) by TB activation rows, all groups.
// Per (block, row) two partial sums per group and one accumulator: RB·TB·3 registers
// at most twelve partials, so every variant below stays in registers. Each group step
// also asks for aheadStep bytes of `ahead`, the weights the caller reads next: paced
// this way they arrive as this call ends (the hardware prefetcher alone kept these
// streams at half the memory's bandwidth; bench/kernels/interleaved_row.c).
ALWAYS_INLINE void kernel(int type, const uint8_t *w, long groups, const float *scaled, const float *sums, long cols,
                          float *out, long outStride, const uint8_t *ahead, long aheadStep, prefetch_t *pf,
                          const int RB, const int TB) {
    __m256 acc[4][4];
    for (int b = 0; b < RB; b++)
        for (int t = 0; t < TB; t++) acc[b][t] = _mm256_setzero_ps();
    const long groupBytes = group_bytes(type), blockBytes = groups * groupBytes;
    for (long g = 0; g < groups; g++) {
        const uint8_t *p = w + g * groupBytes;
        if (ahead) prefetch_bytes(ahead + g * aheadStep, aheadStep);
        prefetch_advance(pf);
        __m256 part[4][4][2];
        for (int k = 0; k < chunks(type); k++) {
            __m256i chunk[4];
            for (int b = 0; b < RB; b++)
                chunk[b] = _mm256_loadu_si256((const __m256i *)(p + b * blockBytes + header_bytes(type) + k * CHUNK_BYTES));
            for (int j = 0; j < values_per_chunk(type); j++) {
                __m256 q[4];
                for (int b = 0; b < RB; b++) q[b] = value(type, chunk[b], j);
                const int first = k == 0 && j < 2;
                for (int t = 0; t < TB; t++) {
                    const __m256 x = _mm256_broadcast_ss(scaled + t * cols + g * 32 + column(type, k, j));
                    for (int b = 0; b < RB; b++)
                        part[b][t][j % 2] = first ? _mm256_mul_ps(q[b], x) : _mm256_fmadd_ps(q[b], x, part[b][t][j % 2]);
                }
            }
        }
        for (int b = 0; b < RB; b++) {
            const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + b * blockBytes)));
            for (int t = 0; t < TB; t++)
                acc[b][t] = _mm256_fmadd_ps(d, _mm256_add_ps(part[b][t][0], part[b][t][1]), acc[b][t]);
            if (type == Q4_1) {
                const __m256 m = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + b * blockBytes + 16)));
                for (int t = 0; t < TB; t++)
                    acc[b][t] = _mm256_fmadd_ps(m, _mm256_broadcast_ss(sums + t * groups + g), acc[b][t]);
            }
        }
    }
    for (int b = 0; b < RB; b++)
        for (int t = 0; t < TB; t++) _mm256_storeu_ps(out + t * outStride + 8 * b, acc[b][t]);
}

// The weights of blocks from..<min(from + count, hi), or NULL when there are none.
ALWAYS_INLINE const uint8_t *next_blocks(int type, const uint8_t *interleaved, long from, long hi, long groups) {
    return from < hi ? interleaved + from * groups * group_bytes(type) : NULL;
}

ALWAYS_INLINE void dot(int type, const uint8_t *interleaved, long blockLo, long blockHi, long cols,
                       const float *scratch, long T, float *out, long outStride, prefetch_t *pf) {
    const long groups = cols / 32, groupBytes = group_bytes(type), blockBytes = groups * groupBytes;
    const float *sums = scratch + T * cols;
    if (blockLo >= blockHi) return;
    // One activation row: four blocks at a time (eight independent chains), each call
    // asking for the next four blocks; the first four are asked for at once.
    if (T == 1) {
        prefetch_bytes(interleaved + blockLo * blockBytes, (blockHi - blockLo < 4 ? blockHi - blockLo : 4) * blockBytes);
        long b = blockLo;
        for (; b + 4 <= blockHi; b += 4)
            kernel(type, interleaved + b * blockBytes, groups, scratch, sums, cols, out + 8 * b, outStride,
                   next_blocks(type, interleaved, b + 4, blockHi, groups), 4 * groupBytes, pf, 4, 1);
        for (; b < blockHi; b++)
            kernel(type, interleaved + b * blockBytes, groups, scratch, sums, cols, out + 8 * b, outStride,
                   next_blocks(type, interleaved, b + 1, blockHi, groups), groupBytes, pf, 1, 1);
        return;
    }
    // More rows: each block's weights decoded once for four rows, from L1 for the next
    // four; the first call on a block asks for the next block.
    prefetch_bytes(interleaved + blockLo * blockBytes, blockBytes);
    for (long b = blockLo; b < blockHi; b++) {
        const uint8_t *w = interleaved + b * blockBytes, *next = next_blocks(type, interleaved, b + 1, blockHi, groups);
        long t = 0;
        for (; t + 4 <= T; t += 4, next = NULL)
            kernel(type, w, groups, scratch + t * cols, sums + t * groups, cols, out + t * outStride + 8 * b, outStride,
                   next, groupBytes, pf, 1, 4);
        const float *x = scratch + t * cols, *s = sums + t * groups;
        float *o = out + t * outStride + 8 * b;
        switch (T - t) {
        case 3: kernel(type, w, groups, x, s, cols, o, outStride, next, groupBytes, pf, 1, 3); break;
        case 2: kernel(type, w, groups, x, s, cols, o, outStride, next, groupBytes, pf, 1, 2); break;
        case 1: kernel(type, w, groups, x, s, cols, o, outStride, next, groupBytes, pf, 1, 1); break;
        }
    }
}

void graft_interleaved_dot(int type, const uint8_t *interleaved, long blockLo, long blockHi, long cols,
                           const float *scratch, long T, float *out, long outStride,
                           const void *prefetch, long prefetchBytes) {
    prefetch_t pf = prefetch_span(prefetch, prefetchBytes);
    if (type == Q4_1) dot(Q4_1, interleaved, blockLo, blockHi, cols, scratch, T, out, outStride, &pf);
    else dot(Q8_0, interleaved, blockLo, blockHi, cols, scratch, T, out, outStride, &pf);
}

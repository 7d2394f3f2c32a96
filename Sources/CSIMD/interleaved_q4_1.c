// See include/interleaved_q4_1.h for the layout and the arithmetic. In C because the
// kernels interleave up to four row blocks or four activation rows with their partial
// sums all in registers: written in Swift, the earlier eight-row interleaved kernel was
// hoisted and spilled by LLVM (README: 95-103 against 142-147 tokens/s), while clang
// keeps these in the sixteen AVX registers. Compiled with -ffp-contract=off: every
// multiply-add here is an explicit fma, so all variants round alike.
#include "interleaved_q4_1.h"
#include "prefetch_cursor.h"

#include <immintrin.h>
#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

enum { GROUP_BYTES = GRAFT_IQ4_1_GROUP_BYTES, NIBBLES_AT = 32, CHUNK_BYTES = 32 };

// Column (within its group) of nibble j of chunk k: byte 4k + j/2 of the row, its low
// nibble for even j (columns 0..<16), its high one for odd j (16..<32).
ALWAYS_INLINE int column(int k, int j) { return 4 * k + j / 2 + (j & 1) * 16; }

// The bit nibble j starts at once masked. The top nibble is shifted down first: in bits
// 28..<32 the conversion, which is signed, would read it as negative.
ALWAYS_INLINE int shift(int j) { return j == 7 ? 24 : 8 * (j / 2) + (j & 1) * 4; }

void graft_iq4_1_pack(const uint8_t *rowMajor, long rows, long cols, uint8_t *interleaved) {
    const long groups = cols / 32, rowBytes = groups * 20;
    for (long r = 0; r < rows; r++) {
        for (long g = 0; g < groups; g++) {
            const uint8_t *src = rowMajor + r * rowBytes + g * 20;
            uint8_t *dst = interleaved + (r / 8 * groups + g) * GROUP_BYTES;
            memcpy(dst + 2 * (r % 8), src, 2);
            memcpy(dst + 16 + 2 * (r % 8), src + 2, 2);
            for (int k = 0; k < 4; k++) memcpy(dst + NIBBLES_AT + k * CHUNK_BYTES + 4 * (r % 8), src + 4 + 4 * k, 4);
        }
    }
}

void graft_iq4_1_row_group(const uint8_t *interleaved, long cols, long r, long g, uint8_t *block) {
    const uint8_t *src = interleaved + (r / 8 * (cols / 32) + g) * GROUP_BYTES;
    memcpy(block, src + 2 * (r % 8), 2);
    memcpy(block + 2, src + 16 + 2 * (r % 8), 2);
    for (int k = 0; k < 4; k++) memcpy(block + 4 + 4 * k, src + NIBBLES_AT + k * CHUNK_BYTES + 4 * (r % 8), 4);
}

long graft_iq4_1_scratch_count(long T, long cols) { return T * (cols + cols / 32); }

void graft_iq4_1_prepare(const float *x, long xStride, long T, long cols, float *scratch) {
    const long groups = cols / 32;
    float *sums = scratch + T * cols;
    for (long t = 0; t < T; t++) {
        const float *row = x + t * xStride;
        float *scaled = scratch + t * cols;
        for (long g = 0; g < groups; g++) {
            float s = 0;
            for (int c = 0; c < 32; c++) s += row[g * 32 + c];
            sums[t * groups + g] = s;
            for (int k = 0; k < 4; k++)
                for (int j = 0; j < 8; j++) {
                    const long c = g * 32 + column(k, j);
                    scaled[c] = row[c] * (1.0f / (float)(1 << shift(j)));  // exact: a power of two
                }
        }
    }
}

// Nibble j of every lane of a chunk as q·2^shift(j), exactly.
ALWAYS_INLINE __m256 nibble(__m256i chunk, int j) {
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
ALWAYS_INLINE void kernel(const uint8_t *w, long groups, const float *scaled, const float *sums, long cols,
                          float *out, long outStride, const uint8_t *ahead, long aheadStep, prefetch_t *pf,
                          const int RB, const int TB) {
    __m256 acc[4][4];
    for (int b = 0; b < RB; b++)
        for (int t = 0; t < TB; t++) acc[b][t] = _mm256_setzero_ps();
    const long blockBytes = groups * GROUP_BYTES;
    for (long g = 0; g < groups; g++) {
        const uint8_t *p = w + g * GROUP_BYTES;
        if (ahead) prefetch_bytes(ahead + g * aheadStep, aheadStep);
        prefetch_advance(pf);
        __m256 part[4][4][2];
        for (int k = 0; k < 4; k++) {
            __m256i chunk[4];
            for (int b = 0; b < RB; b++)
                chunk[b] = _mm256_loadu_si256((const __m256i *)(p + b * blockBytes + NIBBLES_AT + k * CHUNK_BYTES));
            for (int j = 0; j < 8; j++) {
                __m256 q[4];
                for (int b = 0; b < RB; b++) q[b] = nibble(chunk[b], j);
                const int first = k == 0 && j < 2;
                for (int t = 0; t < TB; t++) {
                    const __m256 x = _mm256_broadcast_ss(scaled + t * cols + g * 32 + column(k, j));
                    for (int b = 0; b < RB; b++)
                        part[b][t][j % 2] = first ? _mm256_mul_ps(q[b], x) : _mm256_fmadd_ps(q[b], x, part[b][t][j % 2]);
                }
            }
        }
        for (int b = 0; b < RB; b++) {
            const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + b * blockBytes)));
            const __m256 m = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + b * blockBytes + 16)));
            for (int t = 0; t < TB; t++) {
                acc[b][t] = _mm256_fmadd_ps(d, _mm256_add_ps(part[b][t][0], part[b][t][1]), acc[b][t]);
                acc[b][t] = _mm256_fmadd_ps(m, _mm256_broadcast_ss(sums + t * groups + g), acc[b][t]);
            }
        }
    }
    for (int b = 0; b < RB; b++)
        for (int t = 0; t < TB; t++) _mm256_storeu_ps(out + t * outStride + 8 * b, acc[b][t]);
}

// The weights of blocks from..<min(from + count, hi), or NULL when there are none.
ALWAYS_INLINE const uint8_t *next_blocks(const uint8_t *interleaved, long from, long hi, long groups) {
    return from < hi ? interleaved + from * groups * GROUP_BYTES : NULL;
}

void graft_iq4_1_dot(const uint8_t *interleaved, long blockLo, long blockHi, long cols, const float *scratch,
                     long T, float *out, long outStride, const void *prefetch, long prefetchBytes) {
    prefetch_t pf = prefetch_span(prefetch, prefetchBytes);
    const long groups = cols / 32, blockBytes = groups * GROUP_BYTES;
    const float *sums = scratch + T * cols;
    if (blockLo >= blockHi) return;
    // One activation row: four blocks at a time (eight independent chains), each call
    // asking for the next four blocks; the first four are asked for at once.
    if (T == 1) {
        prefetch_bytes(interleaved + blockLo * blockBytes, (blockHi - blockLo < 4 ? blockHi - blockLo : 4) * blockBytes);
        long b = blockLo;
        for (; b + 4 <= blockHi; b += 4)
            kernel(interleaved + b * blockBytes, groups, scratch, sums, cols, out + 8 * b, outStride,
                   next_blocks(interleaved, b + 4, blockHi, groups), 4 * GROUP_BYTES, &pf, 4, 1);
        for (; b < blockHi; b++)
            kernel(interleaved + b * blockBytes, groups, scratch, sums, cols, out + 8 * b, outStride,
                   next_blocks(interleaved, b + 1, blockHi, groups), GROUP_BYTES, &pf, 1, 1);
        return;
    }
    // More rows: each block's weights decoded once for four rows, from L1 for the next
    // four; the first call on a block asks for the next block.
    prefetch_bytes(interleaved + blockLo * blockBytes, blockBytes);
    for (long b = blockLo; b < blockHi; b++) {
        const uint8_t *w = interleaved + b * blockBytes, *next = next_blocks(interleaved, b + 1, blockHi, groups);
        long t = 0;
        for (; t + 4 <= T; t += 4, next = NULL)
            kernel(w, groups, scratch + t * cols, sums + t * groups, cols, out + t * outStride + 8 * b, outStride,
                   next, GROUP_BYTES, &pf, 1, 4);
        switch (T - t) {
        case 3: kernel(w, groups, scratch + t * cols, sums + t * groups, cols, out + t * outStride + 8 * b, outStride,
                       next, GROUP_BYTES, &pf, 1, 3); break;
        case 2: kernel(w, groups, scratch + t * cols, sums + t * groups, cols, out + t * outStride + 8 * b, outStride,
                       next, GROUP_BYTES, &pf, 1, 2); break;
        case 1: kernel(w, groups, scratch + t * cols, sums + t * groups, cols, out + t * outStride + 8 * b, outStride,
                       next, GROUP_BYTES, &pf, 1, 1); break;
        }
    }
}

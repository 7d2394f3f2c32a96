// See include/interleaved.h for the layouts and the arithmetic. In C because the
// kernels interleave up to four row blocks or four activation rows with their partial
// sums all in registers: written in Swift, the earlier eight-row interleaved kernel was
// hoisted and spilled by LLVM (README: 95-103 against 142-147 tokens/s), while clang
// keeps these in the sixteen AVX registers. Compiled with -ffp-contract=off: every
// multiply-add here is an explicit fma, so all variants round alike. Every function
// takes the format as a constant after inlining (one specialisation per format, as in
// dot_i16.c).
#include "interleaved.h"
#include "interleaved_layout.h"
#include "prefetch_cursor.h"

#include <immintrin.h>
#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

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

// Activation rows that run with tokens in lanes: whole slabs of eight.
ALWAYS_INLINE long lane_rows(long T) { return T >= 16 ? T / 8 * 8 : 0; }

// The prepared activations of T rows in scratch: the first laneRows in slabs (each
// column's eight values side by side, then each group's eight sums), the rest one row
// after another (then each row's group sums).
typedef struct { float *lanes, *laneSums, *rows, *sums; long laneRows; } prepared_t;

ALWAYS_INLINE prepared_t prepared(const float *scratch, long T, long cols) {
    const long laneRows = lane_rows(T);
    float *lanes = (float *)scratch, *laneSums = lanes + laneRows * cols, *rows = laneSums + laneRows * (cols / 32);
    return (prepared_t){lanes, laneSums, rows, rows + (T - laneRows) * cols, laneRows};
}

long graft_interleaved_scratch_count(long T, long cols) { return T * (cols + cols / 32); }

// Q4_1: the factor 2^-shift(j) each column of a group is pre-scaled by, in column
// order: columns 4k + j/2 take even j (shifts 0, 8, 16, 24), columns 16 + 4k + j/2 odd
// j (4, 12, 20, and 24 for j = 7). Exact: powers of two.
static const float factors[32] = {
    1, 0x1p-8f, 0x1p-16f, 0x1p-24f, 1, 0x1p-8f, 0x1p-16f, 0x1p-24f,
    1, 0x1p-8f, 0x1p-16f, 0x1p-24f, 1, 0x1p-8f, 0x1p-16f, 0x1p-24f,
    0x1p-4f, 0x1p-12f, 0x1p-20f, 0x1p-24f, 0x1p-4f, 0x1p-12f, 0x1p-20f, 0x1p-24f,
    0x1p-4f, 0x1p-12f, 0x1p-20f, 0x1p-24f, 0x1p-4f, 0x1p-12f, 0x1p-20f, 0x1p-24f,
};

// Eight rows (stride `stride`) by columns c..<c+8 of x, transposed: col[i] is column c+i
// of the eight rows.
ALWAYS_INLINE void load_transposed(const float *x, long stride, long c, __m256 col[8]) {
    __m256 r[8], t[8], u[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(x + i * stride + c);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        col[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        col[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

// Slab of eight rows: column c's eight values side by side at 8c, pre-scaled, and each
// group's eight sums at 8g, which add the unscaled columns in order as prepare_row's do.
ALWAYS_INLINE void prepare_slab(int type, const float *x, long xStride, long cols,
                                float *lane, float *laneSums) {
    for (long g = 0; g < cols / 32; g++) {
        __m256 sum = _mm256_setzero_ps();
        for (int c0 = 0; c0 < 32; c0 += 8) {
            __m256 col[8];
            load_transposed(x, xStride, g * 32 + c0, col);
            for (int i = 0; i < 8; i++) {
                if (type == Q4_1) {
                    sum = _mm256_add_ps(sum, col[i]);
                    col[i] = _mm256_mul_ps(col[i], _mm256_set1_ps(factors[c0 + i]));
                }
                _mm256_storeu_ps(lane + (g * 32 + c0 + i) * 8, col[i]);
            }
        }
        if (type == Q4_1) _mm256_storeu_ps(laneSums + g * 8, sum);
    }
}

// One row: pre-scaled in place of the columns, and each group's sum.
ALWAYS_INLINE void prepare_row(int type, const float *row, long cols, float *scaled, float *sums) {
    for (long g = 0; g < cols / 32; g++) {
        if (type == Q4_1) {  // for the offsets; Q8_0 has none
            float s = 0;
            for (int c = 0; c < 32; c++) s += row[g * 32 + c];
            sums[g] = s;
        }
        for (int c = 0; c < 32; c += 8) {
            const __m256 v = _mm256_loadu_ps(row + g * 32 + c);
            _mm256_storeu_ps(scaled + g * 32 + c, type == Q4_1 ? _mm256_mul_ps(v, _mm256_loadu_ps(factors + c)) : v);
        }
    }
}

void graft_interleaved_prepare(int type, const float *x, long xStride, long T, long cols, float *scratch) {
    const long groups = cols / 32;
    const prepared_t p = prepared(scratch, T, cols);
    for (long t = 0; t < p.laneRows; t += 8)
        prepare_slab(type, x + t * xStride, xStride, cols, p.lanes + t * cols, p.laneSums + t * groups);
    for (long t = p.laneRows; t < T; t++) {
        const long i = t - p.laneRows;
        prepare_row(type, x + t * xStride, cols, p.rows + i * cols, p.sums + i * groups);
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

// Rows rowLo..<rowHi dequantized row-major (`cols` floats each) into out, the floats
// the row-major decoders give (BlockDecoders.swift): Q4_1 q·d + m in two roundings,
// Q8_0 q·d. A group decodes as eight rows in lanes, column by column, then 8x8
// transposes turn it row-major.
ALWAYS_INLINE void decode_rows(int type, const uint8_t *interleaved, long cols, long rowLo, long rowHi, float *out) {
    const long groups = cols / 32;
    for (long b = rowLo / 8; 8 * b < rowHi; b++) {
        const int whole = 8 * b >= rowLo && 8 * b + 8 <= rowHi;
        for (long g = 0; g < groups; g++) {
            const uint8_t *p = interleaved + (b * groups + g) * group_bytes(type);
            const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
            const __m256 m = type == Q4_1 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 16))) : d;
            float tile[32 * 8] __attribute__((aligned(32)));
            for (int k = 0; k < chunks(type); k++) {
                const __m256i chunk = _mm256_loadu_si256((const __m256i *)(p + header_bytes(type) + k * CHUNK_BYTES));
                for (int j = 0; j < values_per_chunk(type); j++) {
                    __m256 q = value(type, chunk, j);
                    if (type == Q4_1) q = _mm256_mul_ps(q, _mm256_set1_ps(factors[column(Q4_1, k, j)]));  // exact
                    const __m256 w = _mm256_mul_ps(q, d);
                    _mm256_store_ps(tile + 8 * column(type, k, j), type == Q4_1 ? _mm256_add_ps(w, m) : w);
                }
            }
            for (int c = 0; c < 32; c += 8) {
                __m256 rows[8];
                load_transposed(tile + 8 * c, 8, 0, rows);
                for (int r = 0; r < 8; r++)
                    if (whole || (8 * b + r >= rowLo && 8 * b + r < rowHi))
                        _mm256_storeu_ps(out + (8 * b + r - rowLo) * cols + g * 32 + c, rows[r]);
            }
        }
    }
}

void graft_interleaved_decode_rows(int type, const uint8_t *interleaved, long cols, long rowLo, long rowHi, float *out) {
    if (type == Q4_1) decode_rows(Q4_1, interleaved, cols, rowLo, rowHi, out);
    else decode_rows(Q8_0, interleaved, cols, rowLo, rowHi, out);
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
        for (int b = 0; b < RB; b++)
            for (int t = 0; t < TB; t++) part[b][t][0] = part[b][t][1] = _mm256_set1_ps(-0.0f);
        for (int k = 0; k < chunks(type); k++) {
            __m256i chunk[4];
            for (int b = 0; b < RB; b++)
                chunk[b] = _mm256_loadu_si256((const __m256i *)(p + b * blockBytes + header_bytes(type) + k * CHUNK_BYTES));
            for (int j = 0; j < values_per_chunk(type); j++) {
                __m256 q[4];
                for (int b = 0; b < RB; b++) q[b] = value(type, chunk[b], j);
                for (int t = 0; t < TB; t++) {
                    const __m256 x = _mm256_broadcast_ss(scaled + t * cols + g * 32 + column(type, k, j));
                    for (int b = 0; b < RB; b++)
                        part[b][t][j % 2] = _mm256_fmadd_ps(q[b], x, part[b][t][j % 2]);
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

// Tokens in lanes, for batches: slab s of the prepared activations holds eight rows'
// column c side by side, so one load is a column of eight activation rows, and each
// weight (decoded once per group into `tile`, column c's eight rows at 8c) is
// broadcast. Same operands, same order as `kernel` per output element: partial sum h
// is the chain over column(h, i) for i in order, then the group's scale and offset.
// Four weight rows by two slabs (sixteen rows) per register block: eight chains, enough
// to hide the fused multiply-add's latency. The block's accumulators live in L1
// (MAX_SLABS slabs at a time), added to once per group.
enum { MAX_SLABS = 8 };

// Column i of partial sum h: the columns `kernel` chains into part[h].
ALWAYS_INLINE int chain_column(int type, int h, int i) { return type == Q4_1 ? 16 * h + i : 2 * i + h; }

// Partial sum h of rows r0..<r0+RB by TV slabs over one group: a chain of fused
// multiply-adds from -0, which rounds the first product alone as `kernel`'s plain
// product does (to the same zero sign too: -0 + -0 is -0, +0 + -0 is +0).
ALWAYS_INLINE void lanes_chain(int type, int h, const float *tile, const float *x, long slabStride, int r0,
                               __m256 part[4][2], const int RB, const int TV) {
    for (int r = 0; r < RB; r++)
        for (int v = 0; v < TV; v++) part[r][v] = _mm256_set1_ps(-0.0f);
    for (int i = 0; i < 16; i++) {
        const int c = chain_column(type, h, i);
        __m256 xs[2];
        for (int v = 0; v < TV; v++) xs[v] = _mm256_loadu_ps(x + v * slabStride + 8 * c);
        for (int r = 0; r < RB; r++) {
            const __m256 q = _mm256_broadcast_ss(tile + 8 * c + r0 + r);
            for (int v = 0; v < TV; v++)
                part[r][v] = _mm256_fmadd_ps(q, xs[v], part[r][v]);
        }
    }
}

// Rows r0..<r0+RB of the block by TV slabs, one group; acc[(r·slabs + s)·8 + lane].
ALWAYS_INLINE void lanes_group(int type, const float *tile, const float *scales, const float *offsets,
                               const float *x, long slabStride, const float *sums, long sumStride,
                               float *acc, long slabs, int r0, const int RB, const int TV) {
    __m256 part[2][4][2];
    lanes_chain(type, 0, tile, x, slabStride, r0, part[0], RB, TV);
    lanes_chain(type, 1, tile, x, slabStride, r0, part[1], RB, TV);
    for (int r = 0; r < RB; r++) {
        const __m256 d = _mm256_broadcast_ss(scales + r0 + r);
        for (int v = 0; v < TV; v++) {
            float *a = acc + ((r0 + r) * slabs + v) * 8;
            __m256 sum = _mm256_fmadd_ps(d, _mm256_add_ps(part[0][r][v], part[1][r][v]), _mm256_loadu_ps(a));
            if (type == Q4_1)
                sum = _mm256_fmadd_ps(_mm256_broadcast_ss(offsets + r0 + r), _mm256_loadu_ps(sums + v * sumStride), sum);
            _mm256_storeu_ps(a, sum);
        }
    }
}

// One block's eight rows by `slabs` (at most MAX_SLABS) slabs, all groups; asks for
// `next` (a block's bytes, may be NULL) a group at a time.
ALWAYS_INLINE void lanes_block(int type, const uint8_t *w, long groups, const float *lanes, const float *laneSums,
                               long cols, long slabs, float *out, long outStride, const uint8_t *next, prefetch_t *pf) {
    float acc[8 * MAX_SLABS * 8] __attribute__((aligned(32))), tile[32 * 8] __attribute__((aligned(32)));
    float scales[8], offsets[8];
    memset(acc, 0, sizeof(float) * 64 * slabs);
    const long groupBytes = group_bytes(type);
    for (long g = 0; g < groups; g++) {
        const uint8_t *p = w + g * groupBytes;
        if (next) prefetch_bytes(next + g * groupBytes, groupBytes);
        prefetch_advance(pf);
        _mm256_storeu_ps(scales, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)));
        if (type == Q4_1) _mm256_storeu_ps(offsets, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 16))));
        for (int k = 0; k < chunks(type); k++) {
            const __m256i chunk = _mm256_loadu_si256((const __m256i *)(p + header_bytes(type) + k * CHUNK_BYTES));
            for (int j = 0; j < values_per_chunk(type); j++)
                _mm256_storeu_ps(tile + 8 * column(type, k, j), value(type, chunk, j));
        }
        const float *x = lanes + g * 32 * 8, *s = laneSums + g * 8;
        for (int r0 = 0; r0 < 8; r0 += 4) {
            long v = 0;
            for (; v + 2 <= slabs; v += 2)
                lanes_group(type, tile, scales, offsets, x + v * 8 * cols, 8 * cols, s + v * 8 * groups, 8 * groups,
                            acc + v * 8, slabs, r0, 4, 2);
            if (v < slabs)
                lanes_group(type, tile, scales, offsets, x + v * 8 * cols, 8 * cols, s + v * 8 * groups, 8 * groups,
                            acc + v * 8, slabs, r0, 4, 1);
        }
    }
    for (long v = 0; v < slabs; v++)
        for (int lane = 0; lane < 8; lane++)
            for (int r = 0; r < 8; r++) out[(8 * v + lane) * outStride + r] = acc[(r * slabs + v) * 8 + lane];
}

// The weights of blocks from..<min(from + count, hi), or NULL when there are none.
ALWAYS_INLINE const uint8_t *next_blocks(int type, const uint8_t *interleaved, long from, long hi, long groups) {
    return from < hi ? interleaved + from * groups * group_bytes(type) : NULL;
}

ALWAYS_INLINE void dot(int type, const uint8_t *interleaved, long blockLo, long blockHi, long cols,
                       const float *scratch, long T, float *out, long outStride, prefetch_t *pf) {
    const long groups = cols / 32, groupBytes = group_bytes(type), blockBytes = groups * groupBytes;
    const prepared_t p = prepared(scratch, T, cols);
    if (blockLo >= blockHi) return;
    // One activation row: four blocks at a time (eight independent chains), each call
    // asking for the next four blocks; the first four are asked for at once.
    if (T == 1) {
        prefetch_bytes(interleaved + blockLo * blockBytes, (blockHi - blockLo < 4 ? blockHi - blockLo : 4) * blockBytes);
        long b = blockLo;
        for (; b + 4 <= blockHi; b += 4)
            kernel(type, interleaved + b * blockBytes, groups, p.rows, p.sums, cols, out + 8 * b, outStride,
                   next_blocks(type, interleaved, b + 4, blockHi, groups), 4 * groupBytes, pf, 4, 1);
        for (; b < blockHi; b++)
            kernel(type, interleaved + b * blockBytes, groups, p.rows, p.sums, cols, out + 8 * b, outStride,
                   next_blocks(type, interleaved, b + 1, blockHi, groups), groupBytes, pf, 1, 1);
        return;
    }
    // More rows: whole slabs of eight with tokens in lanes, then each block's weights
    // decoded once for four rows at a time, from L1 after the first; the first call on
    // a block asks for the next block.
    const long slabCount = p.laneRows / 8;
    prefetch_bytes(interleaved + blockLo * blockBytes, blockBytes);
    for (long b = blockLo; b < blockHi; b++) {
        const uint8_t *w = interleaved + b * blockBytes, *next = next_blocks(type, interleaved, b + 1, blockHi, groups);
        for (long s = 0; s < slabCount; s += MAX_SLABS, next = NULL) {
            const long slabs = slabCount - s < MAX_SLABS ? slabCount - s : MAX_SLABS;
            lanes_block(type, w, groups, p.lanes + s * 8 * cols, p.laneSums + s * 8 * groups, cols, slabs,
                        out + 8 * s * outStride + 8 * b, outStride, next, pf);
        }
        long t = p.laneRows;
        for (; t + 4 <= T; t += 4, next = NULL)
            kernel(type, w, groups, p.rows + (t - p.laneRows) * cols, p.sums + (t - p.laneRows) * groups, cols,
                   out + t * outStride + 8 * b, outStride, next, groupBytes, pf, 1, 4);
        const float *x = p.rows + (t - p.laneRows) * cols, *s = p.sums + (t - p.laneRows) * groups;
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
    // Group steps of the kernels `dot` runs (each advances the cursor once), over which
    // the caller's next job is spread.
    const long blocks = blockHi - blockLo, groups = cols / 32, laneRows = lane_rows(T);
    const long calls = T == 1 ? blocks / 4 + blocks % 4
                              : blocks * ((laneRows / 8 + MAX_SLABS - 1) / MAX_SLABS + (T - laneRows + 3) / 4);
    prefetch_t pf = prefetch_spread(prefetch, prefetchBytes, calls * groups);
    if (type == Q4_1) dot(Q4_1, interleaved, blockLo, blockHi, cols, scratch, T, out, outStride, &pf);
    else dot(Q8_0, interleaved, blockLo, blockHi, cols, scratch, T, out, outStride, &pf);
}

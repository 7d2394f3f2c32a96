// Q4_1 and Q8_0 weights re-laid eight rows at a time, and the exact f32 decode-row
// products over them (interleaved.c). `type` is the GGML type id: 3 (Q4_1) or 8 (Q8_0).
//
// Layout: block b holds rows 8b..<8b+8; its groups of 32 columns follow one another:
// the eight rows' f16 scales d, for Q4_1 their eight f16 offsets m, then chunks of 32
// bytes, chunk k holding bytes 4k..<4k+4 of each row's quantized values (row r's at 4r).
// Q4_1: 160 bytes a group, four chunks of nibble bytes; Q8_0: 272 bytes, eight chunks
// of int8. Blocks follow one another, so a matrix is still one forward stream.
//
// In a chunk loaded as eight int32 lanes, lane r is row r, and value j of every lane is
// one column of all eight rows:
// - Q4_1: a mask leaves nibble j as q·2^e, converted exactly to float, and the
//   activation is stored pre-scaled by 2^-e, which makes each product the same float as
//   q·x (e ≤ 24, so only activations below 2^-102 in magnitude, far under any a model
//   produces, would lose bits);
// - Q8_0: two shifts sign-extend byte j to q, converted exactly.
// One order of f32 arithmetic for every output element (rows in lanes), whichever
// kernel computes it:
//   per group:  p[h] = -0, then p[j % 2] = fma(q_c, x_c, p[j % 2]) over chunks k, then
//               values j (starting from -0 rounds the first product as a plain product)
//               acc = fma(d, p[0] + p[1], acc)
//               acc = fma(m, Σ_group x, acc)       (Q4_1; Σ_group x in column order)
// Kernels differ only in how many row blocks and activation rows they interleave, and
// whether activation rows sit in lanes (batches of 16 or more) or are broadcast, so a
// row's result is bit-identical alone or in any batch. Scale and offset are applied
// once per group instead of per weight: for Q4_1 about three vector instructions per
// eight weights (mask, convert, fused multiply-add) against four and a half for the
// row-major layout (bench/kernels/interleaved_row.c).
#ifndef GRAFT_INTERLEAVED_H
#define GRAFT_INTERLEAVED_H

#include <stdint.h>

/// Whether `type` has an interleaved layout.
int graft_interleaved_supports(int type);

/// Re-lays rows 0..<rows (a multiple of 8) of a row-major matrix of `cols` columns.
void graft_interleaved_pack(int type, const uint8_t *rowMajor, long rows, long cols, uint8_t *interleaved);

/// Rows rowLo..<rowHi dequantized into out, row-major, exactly as from the row-major layout.
void graft_interleaved_decode_rows(int type, const uint8_t *interleaved, long cols, long rowLo, long rowHi, float *out);

/// Floats of scratch graft_interleaved_prepare fills for T rows of `cols` columns.
long graft_interleaved_scratch_count(long T, long cols);

/// The activations as the kernels for `type` read them, into `scratch`: T rows of x
/// (row stride xStride), pre-scaled per column for Q4_1, and (Q4_1) each group's sum;
/// from 16 rows on, whole slabs of eight rows hold each column's eight values side by side.
void graft_interleaved_prepare(int type, const float *x, long xStride, long T, long cols, float *scratch);

/// out[t·outStride + r] = Σ_c W[r, c]·x[t, c] for rows of blocks blockLo..<blockHi and
/// t < T, x prepared by graft_interleaved_prepare. Prefetches the prefetchBytes at
/// `prefetch` (may be NULL), spread evenly over the kernels' group steps: memory for
/// the caller's next job.
void graft_interleaved_dot(int type, const uint8_t *interleaved, long blockLo, long blockHi, long cols,
                           const float *scratch, long T, float *out, long outStride,
                           const void *prefetch, long prefetchBytes);

#endif

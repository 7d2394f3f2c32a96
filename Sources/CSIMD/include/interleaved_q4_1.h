// Q4_1 weights re-laid eight rows at a time, and the exact f32 decode-row products over
// them (interleaved_q4_1.c).
//
// Layout: block b holds rows 8b..<8b+8; its groups of 32 columns follow one another,
// 160 bytes each: the eight rows' f16 scales d, their eight f16 offsets m, then four
// chunks of 32 bytes, chunk k holding bytes 4k..<4k+4 of each row's 16 nibble bytes
// (row r's at 4r). Blocks follow one another, so a matrix is still one forward stream.
//
// In a chunk loaded as eight int32 lanes, lane r is row r, and nibble j (0..<8) of
// every lane is one column: a mask of the register leaves that column's eight weights
// as q·2^e, converted exactly to float. The activation is stored pre-scaled by 2^-e,
// which makes each product the same float as q·x (e ≤ 24, so only activations below
// 2^-102 in magnitude, far under any a model produces, would lose bits). One order of
// f32 arithmetic for every output element (rows in lanes), whichever kernel computes it:
//   per group:  p[j % 2] = fma(q_c, x_c, p[j % 2])  over chunks k, then nibbles j
//                                                 (the first two products are plain)
//               acc = fma(d, p[0] + p[1], acc);  acc = fma(m, Σ_group x, acc)
// with Σ_group x summed in column order. Kernels differ only in how many row blocks
// and activation rows they interleave, so a row's result is bit-identical alone or in
// any batch. Scale and offset are applied once per group instead of per weight: about
// three vector instructions per eight weights (mask, convert, fused multiply-add)
// against four and a half for the row-major layout (bench/kernels/interleaved_row.c).
#ifndef GRAFT_INTERLEAVED_Q4_1_H
#define GRAFT_INTERLEAVED_Q4_1_H

#include <stdint.h>

/// Bytes of one block's group: eight rows by 32 columns.
enum { GRAFT_IQ4_1_GROUP_BYTES = 160 };

/// Re-lays rows 0..<rows (a multiple of 8) of a row-major Q4_1 matrix of `cols` columns.
void graft_iq4_1_pack(const uint8_t *rowMajor, long rows, long cols, uint8_t *interleaved);

/// Row r's group g as a row-major Q4_1 block (20 bytes) at `block`.
void graft_iq4_1_row_group(const uint8_t *interleaved, long cols, long r, long g, uint8_t *block);

/// Floats of scratch graft_iq4_1_prepare fills for T rows of `cols` columns.
long graft_iq4_1_scratch_count(long T, long cols);

/// The activations as the kernels read them: T rows of x (row stride xStride) pre-scaled
/// per column, then each group's sum, into `scratch`.
void graft_iq4_1_prepare(const float *x, long xStride, long T, long cols, float *scratch);

/// out[t·outStride + r] = Σ_c W[r, c]·x[t, c] for rows of blocks blockLo..<blockHi and
/// t < T, x prepared by graft_iq4_1_prepare. Prefetches the prefetchBytes at `prefetch`
/// (may be NULL) two lines per group step: memory for the caller's next job.
void graft_iq4_1_dot(const uint8_t *interleaved, long blockLo, long blockHi, long cols, const float *scratch,
                     long T, float *out, long outStride, const void *prefetch, long prefetchBytes);

#endif

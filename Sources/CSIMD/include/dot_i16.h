// Quantized weights times activations held as 16-bit integers, for decode rows.
//
// Each group of 32 activations is stored as int16 q with one f32 scale s (x ≈ q·s,
// |q| ≤ 32767, so the rounding error is at most 1/65534 of the group's largest
// magnitude; llama.cpp's 8-bit activations are 256 times coarser). Σ w_q·x_q over a
// group is then an exact integer sum that vpmaddwd computes 16 products at a time,
// and the weights never become floats: fewer instructions per weight than the f32
// path (README: the measured difference in decode speed).
//
// One order of f32 arithmetic for every output element, whichever kernel computes it:
//   acc (8 lanes) += float(Σ_group w_q·x_q, per lane) · (d_g·s_g)     group after group
//   off (scalar)   = fma(m_g, Σ_group x, off)                          (Q4_0, Q4_1)
//   out = (fixed-order sum of acc's 8 lanes) + off
// so a row's result is bit-identical alone or in any batch.
#ifndef GRAFT_DOT_I16_H
#define GRAFT_DOT_I16_H

#include <stdint.h>

/// Weight formats the integer kernels read (their GGML type ids).
enum graft_i16_weight { GRAFT_I16_Q4_0 = 2, GRAFT_I16_Q4_1 = 3, GRAFT_I16_Q8_0 = 8 };

/// Quantizes T rows of `cols` floats (cols a multiple of 32; row stride xStride) to
/// int16 with one scale per group of 32: q is T×cols (row-major); scales and sums are
/// (cols/32)×T, group-major so the rows' values of one group are adjacent, sums
/// holding each group's f32 sum for the weight offsets.
void graft_quantize_rows_i16(const float *x, long xStride, long T, long cols,
                             int16_t *q, float *scales, float *sums);

/// out[t·outStride + r] = Σ_c W[r, c]·x[t, c] for weight rows rowLo..<rowHi and
/// activation rows t < T, from graft_quantize_rows_i16's output. Along the way it
/// prefetches the prefetchBytes at `prefetch` (may be NULL), two lines per group step:
/// memory for the caller's next job.
void graft_dot_rows_i16(int type, const uint8_t *weights, long rowBytes, long rowLo, long rowHi,
                        long cols, const int16_t *q, const float *scales, const float *sums, long T,
                        float *out, long outStride, const void *prefetch, long prefetchBytes);

#endif

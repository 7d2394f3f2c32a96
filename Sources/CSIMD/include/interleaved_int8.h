// Interleaved Q4_1 and Q8_0 weights (interleaved.h) times activations rounded to int8,
// one f32 scale per group of 32 (as llama.cpp's Q8 activations): the reduced-precision
// decode path of `--activations int8` (interleaved_int8.c). `type` is the GGML type id:
// 3 (Q4_1) or 8 (Q8_0).
//
// Each group of 32 activations is stored as int8 q with scale s = max|x| / 127 (x ≈ q·s;
// rounding error at most s/2), and the group's S = s·Σq. In a chunk loaded as eight
// int32 lanes, lane r holds four columns of row r, so one vpmaddubsw gives eight rows'
// products for four columns, pairs summed in int16:
// - Q4_1: nibble ≤ 15 times q, |·| ≤ 3810 per lane, so a group's eight of them add up
//   in int16 without overflow (≤ 30480) and one vpmaddwd widens them;
// - Q8_0: |weight| ≤ 128 times q carrying the weight's sign, |·| ≤ 32512, so each is
//   widened by its own vpmaddwd (with VNNI: q + 128 times the weight, less 128·Σw).
// The integer sum is exact. One order of f32 arithmetic for every output element,
// whichever kernel computes it:
//   per group:  acc = fma(float(Σ_group q_w·q), d·s, acc)
//               acc = fma(m, S, acc)                         (Q4_1)
// Each activation row's arithmetic is its own, so a row's result is bit-identical
// alone or in any batch.
#ifndef GRAFT_INTERLEAVED_INT8_H
#define GRAFT_INTERLEAVED_INT8_H

#include <stdint.h>

/// Bytes of scratch graft_int8_prepare fills for T rows of `cols` columns.
long graft_int8_scratch_bytes(long T, long cols);

/// T rows of x (row stride xStride, cols a multiple of 32) rounded into `scratch`: the
/// scales, the sums S, the int8 values, then the values biased to unsigned (q + 128,
/// for the Q8_0 kernel with VNNI), each ordered by tile of eight rows, group,
/// then row (a partial last tile padded to eight rows).
void graft_int8_prepare(const float *x, long xStride, long T, long cols, void *scratch);

/// out[t·outStride + r] = Σ_c W[r, c]·x[t, c] for rows of blocks blockLo..<blockHi of an
/// interleaved matrix of `type` and t < T, x prepared by graft_int8_prepare. Prefetches
/// the prefetchBytes at `prefetch` (may be NULL), spread over the kernel calls.
void graft_int8_dot(int type, const uint8_t *interleaved, long blockLo, long blockHi, long cols, const void *scratch,
                    long T, float *out, long outStride, const void *prefetch, long prefetchBytes);

/// Whether the CPU has vpdpbusd on 256-bit registers (AVX-VNNI, or AVX512-VNNI with
/// AVX512-VL), which graft_int8_dot then uses unless switched off: the same integers in
/// fewer instructions, so the results are bit-identical either way.
int graft_int8_has_vnni(void);
/// Whether graft_int8_dot uses vpdpbusd now.
int graft_int8_vnni(void);
/// Uses vpdpbusd when `on` and the CPU has it, else the plain AVX2 kernels.
void graft_int8_set_vnni(int on);

#endif

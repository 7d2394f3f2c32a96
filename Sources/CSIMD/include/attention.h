// The two inner loops of decode and prefill attention over a paged KV cache
// (attention.c; Kernels/Ops/Attention.swift has the cache layout and the softmax
// between them). In C so that the accumulators are placed in registers by hand: written
// in Swift, the three-head loops spilled accumulators to the stack, putting a store and
// a reload on their dependency chains.
//
// Keys and values are f32 or f16 (`f16`), every load widened to f32. One order of f32
// arithmetic for every output, whatever the number of heads computed together and
// whichever instruction set runs it (AVX2, or AVX-512's 32 registers where the CPU has
// them), so a head's result is bit-identical alone or beside others:
// - a score sums its dimensions in four interleaved partial sums (d mod 4), each in
//   order, combined as (p0 + p1) + (p2 + p3), then times scale;
// - a weighted-sum output adds its positions in order in one chain.
#ifndef GRAFT_ATTENTION_H
#define GRAFT_ATTENTION_H

#include <stdint.h>

/// Query heads of one KV head the kernels take at once, at most.
enum { GRAFT_ATTENTION_MAX_HEADS = 3 };

/// Both kernels read positions 0..<length of one KV head of a sequence. Position p
/// lies in the tile of physical block blockTable[p / blockSize] for KV head kvHead;
/// that tile starts at (block·nKVHeads + kvHead)·blockSize·headDim elements into the
/// cache's keys or values (blockSize and headDim multiples of 8). A key tile holds its
/// keys transposed (dimension d of its positions at d·blockSize), a value tile its
/// values in rows of headDim.

/// out[j·scoreStride + p] = scale · Σ_d q[j·headDim + d]·k_p[d] for p < length and heads
/// j < `heads`.
void graft_attention_scores(int heads, int f16, const float *q, long headDim, const void *keys,
                            const int32_t *blockTable, long nKVHeads, long kvHead, long blockSize, long length,
                            float scale, float *out, long scoreStride);

/// out[j·headDim + c] = Σ_{p < length} weights[j·weightStride + p]·v_p[c] for heads
/// j < `heads` and c < headDim.
void graft_attention_values(int heads, int f16, const float *weights, long weightStride, long length,
                            const void *values, const int32_t *blockTable, long nKVHeads, long kvHead, long blockSize,
                            long headDim, float *out);

/// Whether the CPU has AVX512-F and AVX512-VL, for the kernels' AVX-512 build (on
/// 256-bit registers still, with 32 of them), which they then use unless switched off.
int graft_attention_has_avx512(void);
/// Whether the kernels run their AVX-512 build now.
int graft_attention_avx512(void);
/// Uses the AVX-512 build when `on` and the CPU has it, else the AVX2 one (tests).
void graft_attention_set_avx512(int on);

#endif

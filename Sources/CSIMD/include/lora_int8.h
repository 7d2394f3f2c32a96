// The decode side path of one LoRA projection with int8 weights, in integers
// (lora_int8.c; Kernels/Ops/LoRA.swift has the f16 path and the packed layouts). Widening
// each int8 weight to f32 took three instructions per eight multiply-adds; here
// `vpmaddwd` does sixteen in one (bench/kernels/lora_int8.c compares the two). With
// many distinct adapters the side path waits on memory either way.
//
// For one row, two rows of one adapter (sharing each widened load, never a sum), or two
// rows of two adapters of one rank (both adapters' weights streamed in the same pass:
// with many distinct adapters the weights come from memory, and two streams keep twice
// the misses in flight):
// 1. x is rounded to int16 with one scale for the row, σx = max|x| / xRange;
// 2. s[r] = Σ_i A[r,i]·qx[i] exactly in int32, then s[r]·(σx·scale·rankScales[r]) in f32;
// 3. those rank values are rounded to int16 with one scale, σs = max|s| / sRange;
// 4. out[o] += σs·Σ_r qs[r]·Bᵀ[r,o], the sum exact in int32.
// The ranges keep every int32 sum from overflowing (at most 32767). A row's result
// depends on that row alone, so it is the same whatever rows run beside it. Non-finite
// activations give meaningless values (not always NaN, as f32 would): the row's output
// is lost either way.
//
// Layouts (LoRAPacking): A [block of 8 columns][rank, padded to 4][8], so the groups of
// four ranks, read side by side, are one forward stream; Bᵀ in blocks of 8 outputs,
// [pair of ranks][output][rank in pair].
#ifndef GRAFT_LORA_INT8_H
#define GRAFT_LORA_INT8_H

/// The int16 range x is rounded to: the largest q with 127·q·paddedCols(inDim) below 2³¹.
long graft_lora_int8_x_range(long inDim);

/// The int16 range the rank values are rounded to, likewise for paddedRank(rank).
long graft_lora_int8_s_range(long rank);

/// One adapter's int8 weights for one projection: A and Bᵀ packed, the adapter's alpha
/// scaling, and rankScales[r] the product of rank r's two scales.
typedef struct {
    const void *a, *bT;
    float scale;
    const float *rankScales;
} graft_lora_int8_t;

/// out0 += the side path of x0 through w0; and when w1 is non-null, out1 += that of x1
/// through w1, which has `rank` ranks too (w0's own matrices, or another adapter's).
void graft_lora_int8_rows(float *out0, float *out1, const float *x0, const float *x1, const graft_lora_int8_t *w0,
                          const graft_lora_int8_t *w1, long rank, long inDim, long outDim);

#endif

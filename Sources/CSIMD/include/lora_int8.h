// The decode side path of one LoRA projection with int8 weights, in integers
// (lora_int8.c; Kernels/Ops/LoRA.swift has the f16 path and the packed layouts). Widening
// each int8 weight to f32 took three instructions per eight multiply-adds; here
// `vpmaddwd` does sixteen in one (bench/kernels/lora_int8.c compares the two). With
// many distinct adapters the side path waits on memory either way.
//
// For one row, or two rows of one adapter (sharing each widened load, never a sum):
// 1. x is rounded to int16 with one scale for the row, σx = max|x| / xRange;
// 2. s[r] = Σ_i A[r,i]·qx[i] exactly in int32, then s[r]·(σx·scale·rankScales[r]) in f32;
// 3. those rank values are rounded to int16 with one scale, σs = max|s| / sRange;
// 4. out[o] += σs·Σ_r qs[r]·Bᵀ[r,o], the sum exact in int32.
// The ranges keep every int32 sum from overflowing (at most 32767). A row's result
// depends on that row alone, so it is the same whatever rows run beside it. Non-finite
// activations give meaningless values (not always NaN, as f32 would): the row's output
// is lost either way.
//
// Layouts (LoRAPacking): A in groups of four ranks, [block of 8 columns][rank][8];
// Bᵀ int8 in blocks of 8 outputs, [pair of ranks][output][rank in pair].
#ifndef GRAFT_LORA_INT8_H
#define GRAFT_LORA_INT8_H

/// The int16 range x is rounded to: the largest q with 127·q·paddedCols(inDim) below 2³¹.
long graft_lora_int8_x_range(long inDim);

/// The int16 range the rank values are rounded to, likewise for paddedRank(rank).
long graft_lora_int8_s_range(long rank);

/// out0 += the side path of x0 (and out1 of x1 when both are non-null), A and Bᵀ packed
/// int8 with `rank` ranks, rankScales[r] the product of rank r's two scales.
void graft_lora_int8_rows(float *out0, float *out1, const float *x0, const float *x1, const void *a, const void *bT,
                          long rank, long inDim, long outDim, float scale, const float *rankScales);

#endif

// Lane-wise integer-to-float widening, which Swift cannot be made to inline: its
// generic SIMD conversion initialisers stay out-of-line calls inside large kernel
// loops (measured: a third of decode time). Clang vector types import into Swift as
// SIMDn types, and these static inline bodies are inlined into the Swift callers.
#ifndef GRAFT_CSIMD_H
#define GRAFT_CSIMD_H

typedef float graft_f32x8 __attribute__((ext_vector_type(8)));
typedef unsigned char graft_u8x8 __attribute__((ext_vector_type(8)));
typedef signed char graft_i8x8 __attribute__((ext_vector_type(8)));

static inline __attribute__((always_inline)) graft_f32x8 graft_widen_i8x8(graft_i8x8 v) {
    return __builtin_convertvector(v, graft_f32x8);
}

typedef int graft_i32x8 __attribute__((ext_vector_type(8)));

// The low and high nibbles of eight bytes as floats. Both widen the bytes to 32-bit
// lanes first (one vpmovzxbd, shared once inlined), then mask or shift there: fewer
// instructions than splitting the nibbles in bytes and widening each half.
static inline __attribute__((always_inline)) graft_f32x8 graft_low_nibbles_u8x8(graft_u8x8 v) {
    return __builtin_convertvector(__builtin_convertvector(v, graft_i32x8) & 15, graft_f32x8);
}

static inline __attribute__((always_inline)) graft_f32x8 graft_high_nibbles_u8x8(graft_u8x8 v) {
    return __builtin_convertvector(__builtin_convertvector(v, graft_i32x8) >> 4, graft_f32x8);
}

#endif

// Lane-wise integer- and half-to-float widening, which Swift cannot be made to inline: its
// generic SIMD conversion initialisers stay out-of-line calls inside large kernel
// loops (measured: a third of decode time). Clang vector types import into Swift as
// SIMDn types, and these static inline bodies are inlined into the Swift callers.
#ifndef GRAFT_CSIMD_H
#define GRAFT_CSIMD_H

typedef float graft_f32x8 __attribute__((ext_vector_type(8)));
typedef unsigned char graft_u8x8 __attribute__((ext_vector_type(8)));
typedef signed char graft_i8x8 __attribute__((ext_vector_type(8)));

static inline __attribute__((always_inline)) graft_f32x8 graft_widen_u8x8(graft_u8x8 v) {
    return __builtin_convertvector(v, graft_f32x8);
}

static inline __attribute__((always_inline)) graft_f32x8 graft_widen_i8x8(graft_i8x8 v) {
    return __builtin_convertvector(v, graft_f32x8);
}

// Eight IEEE halves at p (any alignment) widened to floats: one vcvtph2ps with F16C
// (-mf16c), exact. Takes a pointer because Swift has no import for a _Float16 vector.
static inline __attribute__((always_inline)) graft_f32x8 graft_load_f16x8(const void *p) {
    typedef _Float16 graft_f16x8 __attribute__((ext_vector_type(8)));
    graft_f16x8 v;
    __builtin_memcpy(&v, p, sizeof v);
    return __builtin_convertvector(v, graft_f32x8);
}

#endif

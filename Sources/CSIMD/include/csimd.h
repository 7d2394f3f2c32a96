// Lane-wise integer- and half-to-float widening, which Swift cannot be made to inline: its
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

// Eight bytes at p widened to 32-bit lanes, for their nibbles: one vpmovzxbd straight
// from memory, then a mask (low nibble) or a shift (high nibble) per eight weights. The
// empty asm keeps the compiler from narrowing that mask or shift back to bytes, its
// canonical form, which compiled to a separate load, byte-domain masking and a widening
// per eight nibbles: six more instructions per group of 32 weights.
static inline __attribute__((always_inline)) graft_i32x8 graft_widen_u8x8_at(const void *p) {
    graft_u8x8 v;
    __builtin_memcpy(&v, p, sizeof v);
    graft_i32x8 w = __builtin_convertvector(v, graft_i32x8);
#if defined(__AVX__)  // the kernels' flags; modules that only import the header lack them
    __asm__("" : "+x"(w));
#endif
    return w;
}

static inline __attribute__((always_inline)) graft_f32x8 graft_low_nibbles(graft_i32x8 w) {
    return __builtin_convertvector(w & 15, graft_f32x8);
}

static inline __attribute__((always_inline)) graft_f32x8 graft_high_nibbles(graft_i32x8 w) {
    return __builtin_convertvector(w >> 4, graft_f32x8);
}

// e^x for eight lanes, for softmax and SiLU (the scalar libm call was a visible share
// of prefill time). Lanes are clamped to [-87, 88]; then x = n·ln2 + r with |r| <=
// ln2/2 (ln2 in two parts so n·ln2 is exact), a degree-6 Taylor polynomial for e^r
// (relative error below 2e-7 there), and 2^n built in the exponent bits. Written here
// because Swift's float-to-int SIMD conversion stays an out-of-line generic call.
static inline __attribute__((always_inline)) graft_f32x8 graft_exp_f32x8(graft_f32x8 x) {
    x = __builtin_elementwise_min(__builtin_elementwise_max(x, (graft_f32x8)(-87.0f)), (graft_f32x8)(88.0f));
    graft_f32x8 n = __builtin_elementwise_roundeven(x * 1.44269504f);
    graft_f32x8 r = __builtin_elementwise_fma(n, (graft_f32x8)(-0.693145752f), x);
    r = __builtin_elementwise_fma(n, (graft_f32x8)(-1.42860677e-6f), r);
    graft_f32x8 p = (graft_f32x8)(1.0f / 720);
    p = __builtin_elementwise_fma(p, r, (graft_f32x8)(1.0f / 120));
    p = __builtin_elementwise_fma(p, r, (graft_f32x8)(1.0f / 24));
    p = __builtin_elementwise_fma(p, r, (graft_f32x8)(1.0f / 6));
    p = __builtin_elementwise_fma(p, r, (graft_f32x8)(0.5f));
    p = __builtin_elementwise_fma(p, r, (graft_f32x8)(1.0f));
    p = __builtin_elementwise_fma(p, r, (graft_f32x8)(1.0f));
    graft_i32x8 bits = (__builtin_convertvector(n, graft_i32x8) + 127) << 23;
    return p * (graft_f32x8)bits;
}

// Eight IEEE halves at p (any alignment) widened to floats: one vcvtph2ps with F16C
// (-mf16c), exact. Takes a pointer because Swift has no import for a _Float16 vector.
static inline __attribute__((always_inline)) graft_f32x8 graft_load_f16x8(const void *p) {
    typedef _Float16 graft_f16x8 __attribute__((ext_vector_type(8)));
    graft_f16x8 v;
    __builtin_memcpy(&v, p, sizeof v);
    return __builtin_convertvector(v, graft_f32x8);
}

// Eight signed bytes at p (any alignment) widened to floats: vpmovsxbd and
// vcvtdq2ps, exact.
static inline __attribute__((always_inline)) graft_f32x8 graft_load_i8x8(const void *p) {
    typedef signed char graft_i8x8 __attribute__((ext_vector_type(8)));
    graft_i8x8 v;
    __builtin_memcpy(&v, p, sizeof v);
    return __builtin_convertvector(v, graft_f32x8);
}

typedef unsigned short graft_u16x8 __attribute__((ext_vector_type(8)));

// Eight floats rounded to IEEE halves (nearest, ties to even; out of range to
// infinity), as bits: one vcvtps2ph with F16C, for the f16 KV cache's writes. Swift's
// own Float16(x) is a library call per value.
static inline __attribute__((always_inline)) graft_u16x8 graft_f16x8_bits(graft_f32x8 v) {
    typedef _Float16 graft_f16x8 __attribute__((ext_vector_type(8)));
    graft_f16x8 h = __builtin_convertvector(v, graft_f16x8);
    graft_u16x8 bits;
    __builtin_memcpy(&bits, &h, sizeof bits);
    return bits;
}

// Two IEEE halves at p (a Q4_1 group's scale and offset) as [a, b, a, b, ...] floats:
// one 32-bit broadcast load and one vcvtph2ps, where two scalar half loads took an
// insert, a conversion and a broadcast each. graft_even_lanes and graft_odd_lanes then
// splat a and b with one in-lane permute each.
static inline __attribute__((always_inline)) graft_f32x8 graft_load_f16_pair_x4(const void *p) {
    typedef _Float16 graft_f16x8 __attribute__((ext_vector_type(8)));
    typedef int graft_i32x4 __attribute__((ext_vector_type(4)));
    int bits;
    __builtin_memcpy(&bits, p, sizeof bits);
    graft_i32x4 splat = (graft_i32x4)bits;
    return __builtin_convertvector((graft_f16x8)splat, graft_f32x8);
}

static inline __attribute__((always_inline)) graft_f32x8 graft_even_lanes(graft_f32x8 v) {
    return __builtin_shufflevector(v, v, 0, 0, 0, 0, 4, 4, 4, 4);
}

static inline __attribute__((always_inline)) graft_f32x8 graft_odd_lanes(graft_f32x8 v) {
    return __builtin_shufflevector(v, v, 1, 1, 1, 1, 5, 5, 5, 5);
}

// Asks for the cache line at p ahead of use (never faults). Swift has no spelling.
static inline __attribute__((always_inline)) void graft_prefetch(const void *p) {
    __builtin_prefetch(p, 0, 3);
}

#endif

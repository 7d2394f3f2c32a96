// See include/interleaved_int8.h for the arithmetic. In C because Swift has no
// spelling for vpmaddubsw. Compiled with -ffp-contract=off like the other kernels:
// every multiply-add is an explicit fma. Every function takes the format, and whether
// to use AVX-VNNI, as constants after inlining.
#include "interleaved_int8.h"
#include "interleaved_layout.h"
#include "prefetch_cursor.h"

#include <immintrin.h>
#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

enum { MAX_TILE = 8 };

// Rows in tiles of MAX_TILE, the last one padded: a tile's groups follow one another,
// each holding its rows' values (32 bytes a row), scales and sums side by side, so a
// kernel reaches every row of its tile at fixed offsets from one pointer. The values
// are stored twice: as int8 q, and biased to unsigned q + 128 for the Q8_0 kernel with
// VNNI (below).
ALWAYS_INLINE long padded_rows(long T) { return (T + MAX_TILE - 1) / MAX_TILE * MAX_TILE; }

long graft_int8_scratch_bytes(long T, long cols) { return padded_rows(T) * (cols / 32) * (2 * 4 + 2 * 32); }

typedef struct { const float *scales, *sums; const int8_t *values; const uint8_t *biased; } int8_rows_t;

ALWAYS_INLINE int8_rows_t int8_rows(const void *scratch, long T, long cols) {
    const long n = padded_rows(T) * (cols / 32);
    const float *scales = scratch;
    const int8_t *values = (const int8_t *)(scales + 2 * n);
    return (int8_rows_t){scales, scales + n, values, (const uint8_t *)(values + 32 * n)};
}

void graft_int8_prepare(const float *x, long xStride, long T, long cols, void *scratch) {
    const long groups = cols / 32, n = padded_rows(T) * groups;
    float *scales = scratch, *sums = scales + n;
    int8_t *values = (int8_t *)(sums + n);
    uint8_t *biased = (uint8_t *)(values + 32 * n);
    const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    for (long t = 0; t < T; t++)
        for (long g = 0; g < groups; g++) {
            const float *v = x + t * xStride + g * 32;
            __m256 f[4], largest = _mm256_setzero_ps();
            for (int i = 0; i < 4; i++) {
                f[i] = _mm256_loadu_ps(v + 8 * i);
                largest = _mm256_max_ps(largest, _mm256_and_ps(f[i], magnitude));
            }
            __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(largest), _mm256_extractf128_ps(largest, 1));
            m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
            const float scale = _mm_cvtss_f32(m4) / 127, inverse = scale > 0 ? 1 / scale : 0;
            // Rounded to nearest (even on ties), as lrintf; |q| ≤ 127 since |x| ≤ 127·scale.
            __m256i q[4];
            for (int i = 0; i < 4; i++) q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(f[i], _mm256_set1_ps(inverse)));
            const __m256i sum32 = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
            __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum32), _mm256_extracti128_si256(sum32, 1));
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
            // Packing works within 128-bit lanes; the permute puts the 32 values back in order.
            const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
            const long at = (t / MAX_TILE * groups + g) * MAX_TILE + t % MAX_TILE;
            const __m256i ordered = _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(values + 32 * at), ordered);
            _mm256_storeu_si256((__m256i *)(biased + 32 * at), _mm256_xor_si256(ordered, _mm256_set1_epi8((char)0x80)));
            scales[at] = scale;
            sums[at] = scale * (float)_mm_cvtsi128_si32(s4);
        }
}

// The CPU's vpdpbusd (unsigned by signed bytes, four products summed into each int32
// lane) when it has it: AVX512-VNNI's EVEX form on 256-bit registers where there is
// AVX512-VL and -BW (Zen 4, Ice Lake and Sapphire Rapids servers; its Q4_1 kernel then
// has 32 registers and a broadcasting operand, below), else AVX-VNNI's VEX form, the
// same instruction. graft_int8_set_vnni switches it off (tests, bench). Relaxed
// atomics: kernel threads read it while a test may switch it, and every value gives
// the same results.
enum { NO_VNNI = 0, VEX_VNNI = 1, EVEX_VNNI = 2 };

static int cpu_vnni(void) {
    if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw"))
        return EVEX_VNNI;
    if (__builtin_cpu_supports("avxvnni")) return VEX_VNNI;
    return NO_VNNI;
}

static int use_vnni = -1;

int graft_int8_has_vnni(void) { return cpu_vnni() != NO_VNNI; }

void graft_int8_set_vnni(int on) { __atomic_store_n(&use_vnni, on ? cpu_vnni() : NO_VNNI, __ATOMIC_RELAXED); }

static int vnni_encoding(void) {
    int encoding = __atomic_load_n(&use_vnni, __ATOMIC_RELAXED);
    if (encoding < 0) {
        encoding = cpu_vnni();
        __atomic_store_n(&use_vnni, encoding, __ATOMIC_RELAXED);
    }
    return encoding;
}

int graft_int8_vnni(void) { return vnni_encoding() != NO_VNNI; }

// acc += Σ of each lane's four u8·s8 products. In asm: the build targets plain AVX2,
// and an intrinsic needs its feature enabled in every function it is inlined into.
// "v": with EVEX the registers may be any of the 32 that AVX-512 gives.
ALWAYS_INLINE __m256i dpbusd(int vnni, __m256i acc, __m256i u, __m256i s) {
    if (vnni == EVEX_VNNI) __asm__("%{evex%} vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
    else __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(u), "x"(s));
    return acc;
}

ALWAYS_INLINE __m256i broadcast4(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

typedef int32_t __attribute__((may_alias)) aliasing_int32;

// dpbusd with s the four signed bytes at p in every lane. EVEX reads them with the
// instruction itself ({1to8}), one instruction where the others need a broadcast too.
ALWAYS_INLINE __m256i dpbusd_broadcast(int vnni, __m256i acc, __m256i u, const void *p) {
    if (vnni != EVEX_VNNI) return dpbusd(vnni, acc, u, broadcast4(p));
    __asm__("vpdpbusd %2%{1to8%}, %1, %0" : "+v"(acc) : "v"(u), "m"(*(const aliasing_int32 *)p));
    return acc;
}

// A group's exact integer dot products of eight weight rows (lanes) with `rows`
// activation rows, `a[r]` row r's 32 values. With VNNI each vpdpbusd does what a
// vpmaddubsw, its widening and an add do without it; no sum saturates on either path
// (bounds in the header), so both give the same integers.
// Q4_1: each chunk's nibbles unpacked once, each row's four bytes broadcast; the
// group's eight vpmaddubsw results add up in int16, one vpmaddwd widens them.
ALWAYS_INLINE void group_sums_q4_1(int vnni, const uint8_t *group, const int8_t *a, int rows,
                                   __m256i sums[MAX_TILE]) {
    const __m256i low = _mm256_set1_epi8(0x0F);
    for (int r = 0; r < rows; r++) sums[r] = _mm256_setzero_si256();
    for (int k = 0; k < 4; k++) {  // chunk k: columns 4k..<4k+4 (low nibbles) and 16+4k..<20+4k (high)
        const __m256i chunk = _mm256_loadu_si256((const __m256i *)(group + header_bytes(Q4_1) + CHUNK_BYTES * k));
        const __m256i lo = _mm256_and_si256(chunk, low), hi = _mm256_and_si256(_mm256_srli_epi16(chunk, 4), low);
        for (int r = 0; r < rows; r++) {
            if (vnni) {
                sums[r] = dpbusd_broadcast(vnni, sums[r], lo, a + 32 * r + 4 * k);
                sums[r] = dpbusd_broadcast(vnni, sums[r], hi, a + 32 * r + 16 + 4 * k);
            } else {
                const __m256i xlo = broadcast4(a + 32 * r + 4 * k), xhi = broadcast4(a + 32 * r + 16 + 4 * k);
                sums[r] = _mm256_add_epi16(sums[r], _mm256_maddubs_epi16(lo, xlo));
                sums[r] = _mm256_add_epi16(sums[r], _mm256_maddubs_epi16(hi, xhi));
            }
        }
    }
    if (!vnni)
        for (int r = 0; r < rows; r++) sums[r] = _mm256_madd_epi16(sums[r], _mm256_set1_epi16(1));
}

// Q8_0: both operands are signed, and vpmaddubsw and vpdpbusd take one unsigned.
// - Without VNNI each chunk's weights enter as their magnitudes and each activation
//   takes its weight's sign (vpsignb; -128 becomes 128 as unsigned). Pairs reach
//   2·128·127 = 32512, so every vpmaddubsw is widened at once.
// - With VNNI the activations enter biased, q + 128 in 1..255 (stored so by
//   graft_int8_prepare), and the group's sums lose 128·Σw, each weight row's sum taken
//   by one more vpdpbusd per chunk against ones: one instruction less per row and
//   chunk. No sum overflows (|·| ≤ 32·255·128 per group), so the integers are the same.
ALWAYS_INLINE void group_sums_q8_0(int vnni, const uint8_t *group, int8_rows_t x, long at, int rows,
                                   __m256i sums[MAX_TILE]) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i weight_sums = _mm256_setzero_si256();
    for (int r = 0; r < rows; r++) sums[r] = _mm256_setzero_si256();
    for (int k = 0; k < 8; k++) {  // chunk k: columns 4k..<4k+4
        const __m256i chunk = _mm256_loadu_si256((const __m256i *)(group + header_bytes(Q8_0) + CHUNK_BYTES * k));
        if (vnni) {
            weight_sums = dpbusd(vnni, weight_sums, _mm256_set1_epi8(1), chunk);
            for (int r = 0; r < rows; r++)
                sums[r] = dpbusd(vnni, sums[r], broadcast4(x.biased + 32 * (at + r) + 4 * k), chunk);
        } else {
            const __m256i magnitude = _mm256_abs_epi8(chunk);
            for (int r = 0; r < rows; r++) {
                const __m256i signed_x = _mm256_sign_epi8(broadcast4(x.values + 32 * (at + r) + 4 * k), chunk);
                sums[r] = _mm256_add_epi32(sums[r], _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, signed_x), ones));
            }
        }
    }
    if (vnni)
        for (int r = 0; r < rows; r++) sums[r] = _mm256_sub_epi32(sums[r], _mm256_slli_epi32(weight_sums, 7));
}

// Eight weight rows (one block) by activation rows t0..<t0+rows of one tile.
// No prefetch inside the group loop: there it costs the Q4_1 kernel half its speed
// (registers).
ALWAYS_INLINE void tile_dot(int type, int vnni, const uint8_t *block, long groups, int8_rows_t x, long t0, int rows,
                            float *out, long outStride) {
    const long first = t0 / MAX_TILE * groups * MAX_TILE;  // this tile's group 0, row 0
    __m256 acc[MAX_TILE];
    for (int r = 0; r < rows; r++) acc[r] = _mm256_setzero_ps();
    for (long g = 0; g < groups; g++) {
        const uint8_t *group = block + g * group_bytes(type);
        const long at = first + g * MAX_TILE;
        __m256i sums[MAX_TILE];
        if (type == Q4_1) group_sums_q4_1(vnni, group, x.values + 32 * at, rows, sums);
        else group_sums_q8_0(vnni, group, x, at, rows, sums);
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)group));
        for (int r = 0; r < rows; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums[r]), _mm256_mul_ps(d, _mm256_set1_ps(x.scales[at + r])), acc[r]);
        if (type == Q4_1) {
            const __m256 m = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(group + 16)));
            for (int r = 0; r < rows; r++) acc[r] = _mm256_fmadd_ps(m, _mm256_set1_ps(x.sums[at + r]), acc[r]);
        }
    }
    for (int r = 0; r < rows; r++) _mm256_storeu_ps(out + (t0 + r) * outStride, acc[r]);
}

ALWAYS_INLINE void dot(int type, int vnni, const uint8_t *interleaved, long blockLo, long blockHi, long cols,
                       const void *scratch, long T, float *out, long outStride, const void *prefetch,
                       long prefetchBytes) {
    const long groups = cols / 32, blockBytes = groups * group_bytes(type);
    const int8_rows_t x = int8_rows(scratch, T, cols);
    prefetch_t pf = prefetch_spread(prefetch, prefetchBytes, (blockHi - blockLo) * ((T + MAX_TILE - 1) / MAX_TILE));
    // Each block asks for the next one before its rows run (the first is asked for at
    // once), and each call advances the caller's prefetch.
    if (blockLo < blockHi) prefetch_bytes(interleaved + blockLo * blockBytes, blockBytes);
    for (long b = blockLo; b < blockHi; b++) {
        const uint8_t *w = interleaved + b * blockBytes;
        if (b + 1 < blockHi) prefetch_bytes(w + blockBytes, blockBytes);
        float *o = out + 8 * b;
        long t = 0;
        for (; t + MAX_TILE <= T; t += MAX_TILE) {
            tile_dot(type, vnni, w, groups, x, t, MAX_TILE, o, outStride);
            prefetch_advance(&pf);
        }
        // The remainder, each size its own specialisation (the rows stay in registers).
        switch (T - t) {
        case 7: tile_dot(type, vnni, w, groups, x, t, 7, o, outStride); break;
        case 6: tile_dot(type, vnni, w, groups, x, t, 6, o, outStride); break;
        case 5: tile_dot(type, vnni, w, groups, x, t, 5, o, outStride); break;
        case 4: tile_dot(type, vnni, w, groups, x, t, 4, o, outStride); break;
        case 3: tile_dot(type, vnni, w, groups, x, t, 3, o, outStride); break;
        case 2: tile_dot(type, vnni, w, groups, x, t, 2, o, outStride); break;
        case 1: tile_dot(type, vnni, w, groups, x, t, 1, o, outStride); break;
        }
        if (T > t) prefetch_advance(&pf);
    }
}

#define DOT(type, vnni) dot(type, vnni, interleaved, blockLo, blockHi, cols, scratch, T, out, outStride, prefetch, prefetchBytes)

// The EVEX Q4_1 kernel compiled for AVX-512 (on 256-bit registers still), so it has 32
// registers for its tile; only called where cpu_vnni found the features. Q8_0 stays
// with the AVX2 build: compiled so, it ran 20% slower (bench/kernels/int8_batch.c).
__attribute__((target("avx512f,avx512vl,avx512bw,avx512vnni"))) static void
dot_q4_1_evex(const uint8_t *interleaved, long blockLo, long blockHi, long cols, const void *scratch, long T,
              float *out, long outStride, const void *prefetch, long prefetchBytes) {
    DOT(Q4_1, EVEX_VNNI);
}

void graft_int8_dot(int type, const uint8_t *interleaved, long blockLo, long blockHi, long cols, const void *scratch,
                    long T, float *out, long outStride, const void *prefetch, long prefetchBytes) {
    switch (vnni_encoding()) {
    case VEX_VNNI:
        if (type == Q4_1) DOT(Q4_1, VEX_VNNI);
        else DOT(Q8_0, VEX_VNNI);
        break;
    case EVEX_VNNI:
        if (type == Q4_1) dot_q4_1_evex(interleaved, blockLo, blockHi, cols, scratch, T, out, outStride, prefetch, prefetchBytes);
        else DOT(Q8_0, EVEX_VNNI);
        break;
    default:
        if (type == Q4_1) DOT(Q4_1, NO_VNNI);
        else DOT(Q8_0, NO_VNNI);
    }
#undef DOT
}

// The interleaved layout's shape (interleaved.h), shared by the f32 and the int8
// kernels: every size follows from the format, a constant after inlining.
#ifndef GRAFT_INTERLEAVED_LAYOUT_H
#define GRAFT_INTERLEAVED_LAYOUT_H

enum { Q4_1 = 3, Q8_0 = 8, CHUNK_BYTES = 32 };

static inline __attribute__((always_inline)) long row_group_bytes(int type) { return type == Q4_1 ? 20 : 34; }
static inline __attribute__((always_inline)) long group_bytes(int type) { return 8 * row_group_bytes(type); }
// Bytes before the chunks: eight scales, and for Q4_1 eight offsets.
static inline __attribute__((always_inline)) long header_bytes(int type) { return type == Q4_1 ? 32 : 16; }
static inline __attribute__((always_inline)) int chunks(int type) { return type == Q4_1 ? 4 : 8; }

#endif

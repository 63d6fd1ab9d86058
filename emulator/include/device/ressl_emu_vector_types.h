/*
 * CUDA's built-in vector types (vector_types.h) and their make_* constructors, for kernel sources
 * compiled for the host. Sizes and alignments are those of the device ABI.
 */
#ifndef RESSL_EMU_VECTOR_TYPES_H
#define RESSL_EMU_VECTOR_TYPES_H

#define RESSL_EMU_VEC1(T, N, A) \
  struct __attribute__((aligned(A))) N##1 { T x; }; \
  typedef struct N##1 N##1;
#define RESSL_EMU_VEC2(T, N, A) \
  struct __attribute__((aligned(A))) N##2 { T x, y; }; \
  typedef struct N##2 N##2;
#define RESSL_EMU_VEC3(T, N) \
  struct N##3 { T x, y, z; }; \
  typedef struct N##3 N##3;
#define RESSL_EMU_VEC4(T, N, A) \
  struct __attribute__((aligned(A))) N##4 { T x, y, z, w; }; \
  typedef struct N##4 N##4;
#define RESSL_EMU_VECS(T, N, A1, A2, A4) \
  RESSL_EMU_VEC1(T, N, A1) RESSL_EMU_VEC2(T, N, A2) RESSL_EMU_VEC3(T, N) RESSL_EMU_VEC4(T, N, A4) \
  static inline N##1 make_##N##1(T x) { N##1 v = {x}; return v; } \
  static inline N##2 make_##N##2(T x, T y) { N##2 v = {x, y}; return v; } \
  static inline N##3 make_##N##3(T x, T y, T z) { N##3 v = {x, y, z}; return v; } \
  static inline N##4 make_##N##4(T x, T y, T z, T w) { N##4 v = {x, y, z, w}; return v; }

RESSL_EMU_VECS(signed char, char, 1, 2, 4)
RESSL_EMU_VECS(unsigned char, uchar, 1, 2, 4)
RESSL_EMU_VECS(short, short, 2, 4, 8)
RESSL_EMU_VECS(unsigned short, ushort, 2, 4, 8)
RESSL_EMU_VECS(int, int, 4, 8, 16)
RESSL_EMU_VECS(unsigned int, uint, 4, 8, 16)
RESSL_EMU_VECS(long long, longlong, 8, 16, 16)
RESSL_EMU_VECS(unsigned long long, ulonglong, 8, 16, 16)
RESSL_EMU_VECS(float, float, 4, 8, 16)
RESSL_EMU_VECS(double, double, 8, 16, 16)

/* dim3: a uint3 whose unspecified components are 1. */
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1)
      : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};

#undef RESSL_EMU_VEC1
#undef RESSL_EMU_VEC2
#undef RESSL_EMU_VEC3
#undef RESSL_EMU_VEC4
#undef RESSL_EMU_VECS
#endif

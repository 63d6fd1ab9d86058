/*
 * gemm_accumulate (see gemm.h): C(m x n) += A(m x k) * B(k x n), column-major.
 *
 * A register-blocked micro-kernel: a tile of 16 rows x 4 columns of C stays in eight 8-float
 * vector accumulators while p runs over k (two loads of A's column, four broadcasts of B, eight
 * multiply-adds per step); A's 16-row panel is reused from L1 across all column tiles. Rows and
 * columns left over are done by plain loops. Written with GCC vector extensions, so it vectorises
 * at -O2; compiled twice, for AVX2+FMA and for baseline x86-64, and chosen once by CPU features.
 */
#include "gemm.h"


#include <string.h>

namespace emu {
namespace {

typedef float v8 __attribute__((vector_size(32), aligned(4)));

inline __attribute__((always_inline)) v8 load8(const float* p) {
  v8 v;
  memcpy(&v, p, sizeof v);
  return v;
}

inline __attribute__((always_inline)) void add8(float* p, v8 v) {
  v8 c;
  memcpy(&c, p, sizeof c);
  c += v;
  memcpy(p, &c, sizeof c);
}

inline __attribute__((always_inline)) void body(long m, long n, long k, const float* A, long lda,
                                                const float* B, long ldb, float* C, long ldc) {
  const long m16 = m - m % 16, n4 = n - n % 4;
  for (long i = 0; i < m16; i += 16) {
    for (long j = 0; j < n4; j += 4) {
      v8 c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};
      const float* b0 = B + j * ldb;
      const float* b1 = b0 + ldb;
      const float* b2 = b1 + ldb;
      const float* b3 = b2 + ldb;
      for (long p = 0; p < k; ++p) {
        const float* a = A + p * lda + i;
        v8 a0 = load8(a), a1 = load8(a + 8);
        float s0 = b0[p], s1 = b1[p], s2 = b2[p], s3 = b3[p];
        c00 += a0 * s0;
        c01 += a1 * s0;
        c10 += a0 * s1;
        c11 += a1 * s1;
        c20 += a0 * s2;
        c21 += a1 * s2;
        c30 += a0 * s3;
        c31 += a1 * s3;
      }
      float* c = C + j * ldc + i;
      add8(c, c00), add8(c + 8, c01);
      add8(c + ldc, c10), add8(c + ldc + 8, c11);
      add8(c + 2 * ldc, c20), add8(c + 2 * ldc + 8, c21);
      add8(c + 3 * ldc, c30), add8(c + 3 * ldc + 8, c31);
    }
  }
  // Leftover columns (all rows), then leftover rows (of the tiled columns).
  for (long j = n4; j < n; ++j)
    for (long p = 0; p < k; ++p) {
      const float b = B[p + j * ldb];
      const float* a = A + p * lda;
      float* c = C + j * ldc;
      for (long i = 0; i < m; ++i) c[i] += a[i] * b;
    }
  for (long j = 0; j < n4; ++j)
    for (long p = 0; p < k; ++p) {
      const float b = B[p + j * ldb];
      const float* a = A + p * lda;
      float* c = C + j * ldc;
      for (long i = m16; i < m; ++i) c[i] += a[i] * b;
    }
}

__attribute__((target("avx2,fma"))) void gemm_avx2(long m, long n, long k, const float* A, long lda,
                                                   const float* B, long ldb, float* C, long ldc) {
  body(m, n, k, A, lda, B, ldb, C, ldc);
}

void gemm_baseline(long m, long n, long k, const float* A, long lda, const float* B, long ldb,
                   float* C, long ldc) {
  body(m, n, k, A, lda, B, ldb, C, ldc);
}

using GemmFn = void (*)(long, long, long, const float*, long, const float*, long, float*, long);

GemmFn pick() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? gemm_avx2 : gemm_baseline;
}

}  // namespace

void gemm_accumulate(long m, long n, long k, const float* A, long lda, const float* B, long ldb,
                     float* C, long ldc) {
  static const GemmFn fn = pick();
  fn(m, n, k, A, lda, B, ldb, C, ldc);
}

}  // namespace emu

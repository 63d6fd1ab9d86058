/*
 * gemm_accumulate (see gemm.h): four columns of C at a time, so that each column of A loaded
 * feeds four multiply-adds and the inner loop over rows is contiguous and vectorised. Built for
 * AVX2+FMA and for baseline x86-64 (target_clones: the loader picks what this CPU has).
 */
#include "gemm.h"

namespace emu {

__attribute__((target_clones("arch=haswell", "default")))
void gemm_accumulate(long m, long n, long k, const float* __restrict__ A, long lda,
                     const float* __restrict__ B, long ldb, float* __restrict__ C, long ldc) {
  long j = 0;
  for (; j + 4 <= n; j += 4) {
    float* c0 = C + j * ldc;
    float* c1 = c0 + ldc;
    float* c2 = c1 + ldc;
    float* c3 = c2 + ldc;
    for (long p = 0; p < k; ++p) {
      const float* a = A + p * lda;
      float b0 = B[p + j * ldb], b1 = B[p + (j + 1) * ldb];
      float b2 = B[p + (j + 2) * ldb], b3 = B[p + (j + 3) * ldb];
      for (long i = 0; i < m; ++i) {
        float av = a[i];
        c0[i] += av * b0;
        c1[i] += av * b1;
        c2[i] += av * b2;
        c3[i] += av * b3;
      }
    }
  }
  for (; j < n; ++j) {
    float* c = C + j * ldc;
    for (long p = 0; p < k; ++p) {
      const float* a = A + p * lda;
      float b = B[p + j * ldb];
      for (long i = 0; i < m; ++i) c[i] += a[i] * b;
    }
  }
}

}  // namespace emu

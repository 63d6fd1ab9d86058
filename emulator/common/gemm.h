/*
 * The float matrix product behind the cuBLAS and cuDNN stand-ins (host loops, f32 accumulation):
 *   C(m x n) += A(m x k) * B(k x n), all column-major with leading dimensions.
 */
#ifndef RESSL_EMU_COMMON_GEMM_H
#define RESSL_EMU_COMMON_GEMM_H

#include <stddef.h>

namespace emu {

void gemm_accumulate(long m, long n, long k, const float* A, long lda, const float* B, long ldb,
                     float* C, long ldc);

}  // namespace emu

#endif

/* The cuBLAS stand-in's handle (handle.cpp) as the gemm routines (gemm.cpp) see it. */
#ifndef RESSL_EMU_CUBLAS_HANDLE_H
#define RESSL_EMU_CUBLAS_HANDLE_H

#include <cublas_v2.h>
#include <stdint.h>

#define CUBLAS_EXPORT extern "C" __attribute__((visibility("default")))

namespace emu_cublas {

struct Handle {
  uint32_t magic;
  cudaStream_t stream;
  void* workspace;          // user workspace (cublasSetWorkspace_v2), null for the default pool
  size_t workspace_bytes;
  cublasMath_t math;
};

/* The handle behind `h`, or null when it is not a live handle. */
Handle* handle_of(cublasHandle_t h);

}  // namespace emu_cublas

#endif

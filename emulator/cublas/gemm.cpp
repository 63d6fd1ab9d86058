/*
 * The cuBLAS stand-in's matrix products: cublasSgemm_v2, cublasGemmEx and
 * cublasGemmStridedBatchedEx on the emulated stream. Column-major, every transpose combination,
 * f32 or bf16 inputs (CUDA_R_32F / CUDA_R_16BF) with f32 compute and f32 or bf16 output.
 *
 * Checked at the call as the library documents (CUBLAS_STATUS_INVALID_VALUE for negative sizes,
 * unknown operations, leading dimensions below the minimum, null scalars; NOT_SUPPORTED for type
 * combinations the stand-in does not compute). Checked when the work runs, as a device would
 * fault: every matrix (and a user workspace) must lie inside live device memory, aligned to its
 * element size (else the sticky CUDA_ERROR_ILLEGAL_ADDRESS / _MISALIGNED_ADDRESS).
 *
 * Rounding as the GPU's: inputs rounded to TF32 under CUBLAS_COMPUTE_32F_FAST_TF32 or the
 * CUBLAS_TF32_TENSOR_OP_MATH math mode (unless NVIDIA_TF32_OVERRIDE=0), to bf16 under
 * CUBLAS_COMPUTE_32F_FAST_16BF; f32 accumulation (in a different order than the GPU's); bf16
 * output rounded to nearest even. beta == 0 does not read C.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "../common/bf16.h"
#include "../common/gemm.h"
#include "../include/ressl_emu_api.h"
#include "handle.h"

namespace emu_cublas {
namespace {

enum class Round { None, TF32, BF16 };

struct GemmCall {
  const char* what;
  cublasOperation_t ta, tb;
  long m, n, k;
  float alpha, beta;
  const void* A;
  cudaDataType at;
  long lda;
  long long sa;
  const void* B;
  cudaDataType bt;
  long ldb;
  long long sb;
  void* C;
  cudaDataType ct;
  long ldc;
  long long sc;
  long batch;
  Round round;
  const void* workspace;
  size_t workspace_bytes;
};

size_t elem_size(cudaDataType t) { return t == CUDA_R_16BF ? 2 : 4; }

bool tf32_allowed() {
  const char* v = getenv("NVIDIA_TF32_OVERRIDE");
  return !(v && strcmp(v, "0") == 0);
}

/* Bytes a column-major matrix of `rows` x `cols` spans with leading dimension ld, over the batch. */
size_t extent(long rows, long cols, long ld, long long stride, long batch, size_t es) {
  if (rows == 0 || cols == 0 || batch == 0) return 0;
  long long last = (long long)(cols - 1) * ld + rows + (long long)(batch - 1) * stride;
  return (size_t)last * es;
}

bool check_matrix(const GemmCall& g, const char* name, const void* p, long rows, long cols, long ld,
                  long long stride, size_t es) {
  size_t bytes = extent(rows, cols, ld, stride, g.batch, es);
  if (bytes == 0) return true;
  char msg[300];
  if ((uintptr_t)p % es != 0) {
    snprintf(msg, sizeof msg, "%s: %s (%p) is not aligned to its %zu-byte elements", g.what, name, p, es);
    ressl_emu_fault(CUDA_ERROR_MISALIGNED_ADDRESS, msg);
    return false;
  }
  if (stride < 0 || !ressl_emu_device_range_ok(p, bytes, 0)) {
    snprintf(msg, sizeof msg, "%s: %s [%p, +%zu bytes) is not inside device memory", g.what, name, p,
             bytes);
    ressl_emu_fault(CUDA_ERROR_ILLEGAL_ADDRESS, msg);
    return false;
  }
  return true;
}

float load(const void* base, cudaDataType t, long long index) {
  if (t == CUDA_R_16BF) return ressl_emu_bf16_to_f32(((const uint16_t*)base)[index]);
  return ((const float*)base)[index];
}

/* op(X) of shape rows x cols (column-major, contiguous), from X stored with leading dimension ld. */
void pack(const void* X, cudaDataType t, long ld, cublasOperation_t op, long rows, long cols,
          Round round, std::vector<float>* out) {
  out->resize((size_t)rows * cols);
  float* o = out->data();
  for (long c = 0; c < cols; ++c)
    for (long r = 0; r < rows; ++r) {
      long long idx = op == CUBLAS_OP_N ? r + (long long)c * ld : c + (long long)r * ld;
      float v = load(X, t, idx);
      if (round == Round::TF32) v = ressl_emu_round_tf32(v);
      else if (round == Round::BF16) v = ressl_emu_round_bf16(v);
      o[r + c * rows] = v;
    }
}

void run(void* ctx) {
  const GemmCall& g = *(const GemmCall*)ctx;
  size_t ea = elem_size(g.at), eb = elem_size(g.bt), ec = elem_size(g.ct);
  bool product = g.k > 0 && g.alpha != 0.0f;
  long arows = g.ta == CUBLAS_OP_N ? g.m : g.k, acols = g.ta == CUBLAS_OP_N ? g.k : g.m;
  long brows = g.tb == CUBLAS_OP_N ? g.k : g.n, bcols = g.tb == CUBLAS_OP_N ? g.n : g.k;
  if (product && (!check_matrix(g, "A", g.A, arows, acols, g.lda, g.sa, ea) ||
                  !check_matrix(g, "B", g.B, brows, bcols, g.ldb, g.sb, eb)))
    return;
  if (!check_matrix(g, "C", g.C, g.m, g.n, g.ldc, g.sc, ec)) return;
  if (g.workspace && !ressl_emu_device_range_ok(g.workspace, g.workspace_bytes, 0)) {
    ressl_emu_fault(CUDA_ERROR_ILLEGAL_ADDRESS,
                    "cuBLAS: the handle's workspace (cublasSetWorkspace_v2) is no longer device memory");
    return;
  }
  static thread_local std::vector<float> a, b, acc;
  for (long i = 0; i < g.batch; ++i) {
    acc.assign((size_t)g.m * g.n, 0.0f);
    if (product) {
      pack((const char*)g.A + i * g.sa * (long long)ea, g.at, g.lda, g.ta, g.m, g.k, g.round, &a);
      pack((const char*)g.B + i * g.sb * (long long)eb, g.bt, g.ldb, g.tb, g.k, g.n, g.round, &b);
      emu::gemm_accumulate(g.m, g.n, g.k, a.data(), g.m, b.data(), g.k, acc.data(), g.m);
    }
    char* c = (char*)g.C + i * g.sc * (long long)ec;
    for (long col = 0; col < g.n; ++col)
      for (long row = 0; row < g.m; ++row) {
        long long idx = row + (long long)col * g.ldc;
        float v = g.alpha * acc[row + col * g.m];
        if (g.beta != 0.0f) v += g.beta * load(c, g.ct, idx);
        if (g.ct == CUDA_R_16BF) ((uint16_t*)c)[idx] = ressl_emu_f32_to_bf16_rn(v);
        else ((float*)c)[idx] = v;
      }
  }
}

bool valid_op(cublasOperation_t op) {
  return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C;
}

bool valid_algo(cublasGemmAlgo_t algo) {
  int a = (int)algo;
  return a == CUBLAS_GEMM_DEFAULT || (a >= CUBLAS_GEMM_ALGO0 && a <= CUBLAS_GEMM_ALGO23) ||
         (a >= CUBLAS_GEMM_DEFAULT_TENSOR_OP && a <= CUBLAS_GEMM_ALGO15_TENSOR_OP);
}

/* The checks every gemm makes at the call, then the work on the handle's stream. */
cublasStatus_t submit(cublasHandle_t handle, GemmCall g, const void* alpha, const void* beta,
                      cublasComputeType_t compute) {
  Handle* h = handle_of(handle);
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (g.m < 0 || g.n < 0 || g.k < 0 || g.batch < 0 || !valid_op(g.ta) || !valid_op(g.tb))
    return CUBLAS_STATUS_INVALID_VALUE;
  long lda_min = g.ta == CUBLAS_OP_N ? g.m : g.k;
  long ldb_min = g.tb == CUBLAS_OP_N ? g.k : g.n;
  if (g.lda < (lda_min > 1 ? lda_min : 1) || g.ldb < (ldb_min > 1 ? ldb_min : 1) ||
      g.ldc < (g.m > 1 ? g.m : 1))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
  bool inputs_f32 = g.at == CUDA_R_32F && g.bt == CUDA_R_32F;
  bool inputs_bf16 = g.at == CUDA_R_16BF && g.bt == CUDA_R_16BF;
  bool out_ok = g.ct == CUDA_R_32F || (inputs_bf16 && g.ct == CUDA_R_16BF);
  bool compute_ok = compute == CUBLAS_COMPUTE_32F || compute == CUBLAS_COMPUTE_32F_PEDANTIC ||
                    (inputs_f32 && (compute == CUBLAS_COMPUTE_32F_FAST_TF32 ||
                                    compute == CUBLAS_COMPUTE_32F_FAST_16BF));
  if (!(inputs_f32 || inputs_bf16) || !out_ok || !compute_ok) return CUBLAS_STATUS_NOT_SUPPORTED;
  g.alpha = *(const float*)alpha;  // host pointer mode: the scalars are read now
  g.beta = *(const float*)beta;
  unsigned math = (unsigned)h->math & 0xF;
  g.round = Round::None;
  if (inputs_f32 && tf32_allowed() && compute != CUBLAS_COMPUTE_32F_PEDANTIC &&
      (compute == CUBLAS_COMPUTE_32F_FAST_TF32 ||
       (compute == CUBLAS_COMPUTE_32F && math == CUBLAS_TF32_TENSOR_OP_MATH)))
    g.round = Round::TF32;
  if (compute == CUBLAS_COMPUTE_32F_FAST_16BF) g.round = Round::BF16;
  g.workspace = h->workspace;
  g.workspace_bytes = h->workspace_bytes;
  if (g.m == 0 || g.n == 0 || g.batch == 0) return CUBLAS_STATUS_SUCCESS;
  if ((g.k == 0 || g.alpha == 0.0f) && g.beta == 1.0f) return CUBLAS_STATUS_SUCCESS;
  GemmCall* copy = new GemmCall(g);
  int r = ressl_emu_enqueue_host((CUstream)h->stream, run, copy, [](void* p) { delete (GemmCall*)p; },
                                 g.what);
  return r == CUDA_SUCCESS ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

}  // namespace
}  // namespace emu_cublas

using namespace emu_cublas;

CUBLAS_EXPORT cublasStatus_t cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t transa,
                                            cublasOperation_t transb, int m, int n, int k,
                                            const float* alpha, const float* A, int lda,
                                            const float* B, int ldb, const float* beta, float* C,
                                            int ldc) {
  GemmCall g{"cublasSgemm_v2", transa, transb, m, n, k, 0, 0, A, CUDA_R_32F, lda, 0, B,
             CUDA_R_32F, ldb, 0, C, CUDA_R_32F, ldc, 0, 1, Round::None, nullptr, 0};
  return submit(handle, g, alpha, beta, CUBLAS_COMPUTE_32F);
}

CUBLAS_EXPORT cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa,
                                          cublasOperation_t transb, int m, int n, int k,
                                          const void* alpha, const void* A, cudaDataType Atype,
                                          int lda, const void* B, cudaDataType Btype, int ldb,
                                          const void* beta, void* C, cudaDataType Ctype, int ldc,
                                          cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
  if (!valid_algo(algo)) return CUBLAS_STATUS_INVALID_VALUE;
  GemmCall g{"cublasGemmEx", transa, transb, m, n, k, 0, 0, A, Atype, lda, 0, B, Btype, ldb, 0,
             C, Ctype, ldc, 0, 1, Round::None, nullptr, 0};
  return submit(handle, g, alpha, beta, computeType);
}

CUBLAS_EXPORT cublasStatus_t cublasGemmStridedBatchedEx(
    cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
    const void* alpha, const void* A, cudaDataType Atype, int lda, long long int strideA,
    const void* B, cudaDataType Btype, int ldb, long long int strideB, const void* beta, void* C,
    cudaDataType Ctype, int ldc, long long int strideC, int batchCount,
    cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
  if (!valid_algo(algo)) return CUBLAS_STATUS_INVALID_VALUE;
  GemmCall g{"cublasGemmStridedBatchedEx", transa, transb, m, n, k, 0, 0, A, Atype, lda, strideA,
             B, Btype, ldb, strideB, C, Ctype, ldc, strideC, batchCount, Round::None, nullptr, 0};
  return submit(handle, g, alpha, beta, computeType);
}

/*
 * The cuDNN stand-in's algorithm queries: maximum counts, the _v7 ranking (supported algorithms
 * first, with their workspace sizes; the others NOT_SUPPORTED), workspace sizes, and
 * cudnnFind*AlgorithmEx, which runs every algorithm that fits the given workspace on the given
 * buffers, synchronously, and reports them fastest first (ALLOC_FAILED for those that do not fit).
 */
#include <string.h>

#include <algorithm>
#include <vector>

#include "../include/ressl_emu_api.h"
#include "conv.h"

namespace emu_cudnn {
namespace {

/* Algorithms of each direction in the order the stand-in ranks them, and their count. */
const int kFwd[] = {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
                    CUDNN_CONVOLUTION_FWD_ALGO_GEMM, CUDNN_CONVOLUTION_FWD_ALGO_DIRECT,
                    CUDNN_CONVOLUTION_FWD_ALGO_FFT, CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING,
                    CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD, CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED};
const int kBwdData[] = {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, CUDNN_CONVOLUTION_BWD_DATA_ALGO_0,
                        CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT, CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING,
                        CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD,
                        CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED};
const int kBwdFilter[] = {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0,
                          CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT,
                          CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD,
                          CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED,
                          CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING};

struct AlgoList {
  const int* algos;
  int count;
};
AlgoList algos_of(Dir d) {
  if (d == Dir::Forward) return {kFwd, 8};
  if (d == Dir::BackwardData) return {kBwdData, 6};
  return {kBwdFilter, 7};
}

/* The real library's determinism of each algorithm (the stand-in itself is always deterministic). */
cudnnDeterminism_t determinism(Dir d, int algo) {
  if (d == Dir::BackwardData && algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0) return CUDNN_NON_DETERMINISTIC;
  if (d == Dir::BackwardFilter &&
      (algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 || algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3))
    return CUDNN_NON_DETERMINISTIC;
  return CUDNN_DETERMINISTIC;
}

/* All perf structs share this layout (cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t). */
static_assert(sizeof(cudnnConvolutionFwdAlgoPerf_t) == sizeof(cudnnConvolutionBwdDataAlgoPerf_t) &&
                  sizeof(cudnnConvolutionFwdAlgoPerf_t) == sizeof(cudnnConvolutionBwdFilterAlgoPerf_t),
              "perf struct layouts differ");
using Perf = cudnnConvolutionFwdAlgoPerf_t;

cudnnMathType_t reported_math(const ConvProblem& pb, cudnnConvolutionDescriptor_t cd) {
  ConvDesc* c = conv_of(cd);
  if (c->math == CUDNN_FMA_MATH) return CUDNN_FMA_MATH;
  return pb.bf16 || pb.tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_DEFAULT_MATH;
}

cudnnStatus_t rank(Dir d, cudnnHandle_t handle, cudnnTensorDescriptor_t xd, cudnnFilterDescriptor_t wd,
                   cudnnConvolutionDescriptor_t cd, cudnnTensorDescriptor_t yd, int requested, int* returned,
                   Perf* perf) {
  if (!handle_of(handle)) return CUDNN_STATUS_BAD_PARAM;
  if (!returned || !perf || requested <= 0) return CUDNN_STATUS_BAD_PARAM;
  ConvProblem pb;
  if (cudnnStatus_t st = build(xd, wd, cd, yd, &pb)) return st;
  AlgoList list = algos_of(d);
  int n = 0;
  for (int i = 0; i < list.count && n < requested; ++i, ++n) {
    long long ws = workspace_for(d, list.algos[i], pb);
    Perf& o = perf[n];
    memset(&o, 0, sizeof o);
    o.algo = (cudnnConvolutionFwdAlgo_t)list.algos[i];
    o.status = ws < 0 ? CUDNN_STATUS_NOT_SUPPORTED : CUDNN_STATUS_SUCCESS;
    o.time = -1.0f;
    o.memory = ws < 0 ? 0 : (size_t)ws;
    o.determinism = determinism(d, list.algos[i]);
    o.mathType = reported_math(pb, cd);
  }
  *returned = n;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t workspace_size(Dir d, cudnnHandle_t handle, cudnnTensorDescriptor_t xd,
                             cudnnFilterDescriptor_t wd, cudnnConvolutionDescriptor_t cd,
                             cudnnTensorDescriptor_t yd, int algo, size_t* size) {
  if (!handle_of(handle) || !size) return CUDNN_STATUS_BAD_PARAM;
  ConvProblem pb;
  if (cudnnStatus_t st = build(xd, wd, cd, yd, &pb)) return st;
  long long ws = workspace_for(d, algo, pb);
  if (ws < 0) return fail(CUDNN_STATUS_NOT_SUPPORTED, "algorithm %d is not emulated", algo);
  *size = (size_t)ws;
  return CUDNN_STATUS_SUCCESS;
}

/* cudnnFind*AlgorithmEx: runs every algorithm the stand-in has (that fits the workspace) on the
 * given buffers, synchronously, and reports them fastest first. */
cudnnStatus_t find(Dir d, const char* what, cudnnHandle_t handle, cudnnTensorDescriptor_t xd,
                   const void* in1, cudnnFilterDescriptor_t wd, const void* in2,
                   cudnnConvolutionDescriptor_t cd, cudnnTensorDescriptor_t yd, void* out, int requested,
                   int* returned, Perf* perf, void* workspace, size_t workspace_bytes) {
  Handle* h = handle_of(handle);
  if (!h || !returned || !perf || requested <= 0) return CUDNN_STATUS_BAD_PARAM;
  ConvProblem pb;
  if (cudnnStatus_t st = build(xd, wd, cd, yd, &pb)) return st;
  // Find runs synchronously: earlier work first (this also refuses a capturing stream).
  if (ressl_emu_stream_synchronize((CUstream)h->stream) != CUDA_SUCCESS) return CUDNN_STATUS_EXECUTION_FAILED;
  AlgoList list = algos_of(d);
  std::vector<Perf> results;
  const float one = 1.0f, zero = 0.0f;
  for (int i = 0; i < list.count; ++i) {
    int algo = list.algos[i];
    long long ws = workspace_for(d, algo, pb);
    Perf o;
    memset(&o, 0, sizeof o);
    o.algo = (cudnnConvolutionFwdAlgo_t)algo;
    o.determinism = determinism(d, algo);
    o.mathType = reported_math(pb, cd);
    o.time = -1.0f;
    if (ws < 0) {
      o.status = CUDNN_STATUS_NOT_SUPPORTED;
    } else if ((size_t)ws > workspace_bytes) {
      o.status = CUDNN_STATUS_ALLOC_FAILED;
      o.memory = (size_t)ws;
    } else {
      o.memory = (size_t)ws;
      float ms = -1.0f;
      o.status = submit(d, what, handle, &one, &zero, xd, wd, cd, yd, algo, in1, in2, out, workspace,
                        workspace_bytes, &ms);
      if (o.status == CUDNN_STATUS_SUCCESS &&
          ressl_emu_stream_synchronize((CUstream)h->stream) != CUDA_SUCCESS)
        o.status = CUDNN_STATUS_EXECUTION_FAILED;
      o.time = ms;
    }
    results.push_back(o);
  }
  std::stable_sort(results.begin(), results.end(), [](const Perf& a, const Perf& b) {
    if ((a.status == CUDNN_STATUS_SUCCESS) != (b.status == CUDNN_STATUS_SUCCESS))
      return a.status == CUDNN_STATUS_SUCCESS;
    return a.status == CUDNN_STATUS_SUCCESS && a.time < b.time;
  });
  int n = std::min<int>(requested, (int)results.size());
  for (int i = 0; i < n; ++i) perf[i] = results[i];
  *returned = n;
  return CUDNN_STATUS_SUCCESS;
}

}  // namespace
}  // namespace emu_cudnn

using namespace emu_cudnn;

#define MAX_COUNT(NAME, N) \
  CUDNN_EXPORT cudnnStatus_t NAME(cudnnHandle_t handle, int* count) { \
    if (!handle_of(handle) || !count) return CUDNN_STATUS_BAD_PARAM; \
    *count = N; \
    return CUDNN_STATUS_SUCCESS; \
  }
MAX_COUNT(cudnnGetConvolutionForwardAlgorithmMaxCount, 8)
MAX_COUNT(cudnnGetConvolutionBackwardDataAlgorithmMaxCount, 6)
MAX_COUNT(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount, 7)
#undef MAX_COUNT

CUDNN_EXPORT cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc, const cudnnFilterDescriptor_t filterDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t destDesc,
    const int requestedAlgoCount, int* returnedAlgoCount, cudnnConvolutionFwdAlgoPerf_t* perfResults) {
  return rank(Dir::Forward, handle, srcDesc, filterDesc, convDesc, destDesc, requestedAlgoCount,
              returnedAlgoCount, perfResults);
}

CUDNN_EXPORT cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t filterDesc, const cudnnTensorDescriptor_t diffDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t gradDesc,
    const int requestedAlgoCount, int* returnedAlgoCount, cudnnConvolutionBwdDataAlgoPerf_t* perfResults) {
  return rank(Dir::BackwardData, handle, gradDesc, filterDesc, convDesc, diffDesc, requestedAlgoCount,
              returnedAlgoCount, (Perf*)perfResults);
}

CUDNN_EXPORT cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc, const cudnnTensorDescriptor_t diffDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnFilterDescriptor_t gradDesc,
    const int requestedAlgoCount, int* returnedAlgoCount, cudnnConvolutionBwdFilterAlgoPerf_t* perfResults) {
  return rank(Dir::BackwardFilter, handle, srcDesc, gradDesc, convDesc, diffDesc, requestedAlgoCount,
              returnedAlgoCount, (Perf*)perfResults);
}

CUDNN_EXPORT cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const cudnnFilterDescriptor_t wDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t yDesc,
    cudnnConvolutionFwdAlgo_t algo, size_t* sizeInBytes) {
  return workspace_size(Dir::Forward, handle, xDesc, wDesc, convDesc, yDesc, algo, sizeInBytes);
}

CUDNN_EXPORT cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc, const cudnnTensorDescriptor_t dyDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t dxDesc,
    cudnnConvolutionBwdDataAlgo_t algo, size_t* sizeInBytes) {
  return workspace_size(Dir::BackwardData, handle, dxDesc, wDesc, convDesc, dyDesc, algo, sizeInBytes);
}

CUDNN_EXPORT cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const cudnnTensorDescriptor_t dyDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnFilterDescriptor_t gradDesc,
    cudnnConvolutionBwdFilterAlgo_t algo, size_t* sizeInBytes) {
  return workspace_size(Dir::BackwardFilter, handle, xDesc, gradDesc, convDesc, dyDesc, algo, sizeInBytes);
}

CUDNN_EXPORT cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const void* x, const cudnnFilterDescriptor_t wDesc,
    const void* w, const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t yDesc, void* y,
    const int requestedAlgoCount, int* returnedAlgoCount, cudnnConvolutionFwdAlgoPerf_t* perfResults,
    void* workSpace, size_t workSpaceSizeInBytes) {
  return find(Dir::Forward, "cudnnFindConvolutionForwardAlgorithmEx", handle, xDesc, x, wDesc, w, convDesc,
              yDesc, y, requestedAlgoCount, returnedAlgoCount, perfResults, workSpace, workSpaceSizeInBytes);
}

CUDNN_EXPORT cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithmEx(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc, const void* w, const cudnnTensorDescriptor_t dyDesc,
    const void* dy, const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t dxDesc, void* dx,
    const int requestedAlgoCount, int* returnedAlgoCount, cudnnConvolutionBwdDataAlgoPerf_t* perfResults,
    void* workSpace, size_t workSpaceSizeInBytes) {
  return find(Dir::BackwardData, "cudnnFindConvolutionBackwardDataAlgorithmEx", handle, dxDesc, w, wDesc, dy,
              convDesc, dyDesc, dx, requestedAlgoCount, returnedAlgoCount, (Perf*)perfResults, workSpace,
              workSpaceSizeInBytes);
}

CUDNN_EXPORT cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithmEx(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const void* x, const cudnnTensorDescriptor_t dyDesc,
    const void* y, const cudnnConvolutionDescriptor_t convDesc, const cudnnFilterDescriptor_t dwDesc, void* dw,
    const int requestedAlgoCount, int* returnedAlgoCount, cudnnConvolutionBwdFilterAlgoPerf_t* perfResults,
    void* workSpace, size_t workSpaceSizeInBytes) {
  return find(Dir::BackwardFilter, "cudnnFindConvolutionBackwardFilterAlgorithmEx", handle, xDesc, x, dwDesc, y,
              convDesc, dyDesc, dw, requestedAlgoCount, returnedAlgoCount, (Perf*)perfResults, workSpace,
              workSpaceSizeInBytes);
}

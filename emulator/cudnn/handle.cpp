/*
 * The cuDNN stand-in's library functions: version queries, handles (bound to the emulated
 * device: without one cudnnCreate answers CUDNN_STATUS_NOT_INITIALIZED, like the real library),
 * the stream, and cudnnGetErrorString with the real library's strings.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <mutex>
#include <set>
#include <string>

#include "../include/ressl_emu_api.h"
#include "desc.h"

namespace emu_cudnn {
namespace {
constexpr uint32_t kHandleMagic = 0x43444e4e;  // "CDNN"
std::mutex g_mu;
std::set<Handle*> g_handles;

/* CUDA runtime version the real cuDNN 9.24 reports (cudnnGetCudartVersion). */
constexpr size_t kCudartVersion = 13030;
}  // namespace

namespace {
thread_local std::string t_last_error;
}

cudnnStatus_t fail(cudnnStatus_t status, const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  t_last_error = std::string(cudnnGetErrorString(status)) + "; Reason: " + buf;
  return status;
}

Handle* handle_of(cudnnHandle_t h) {
  std::lock_guard<std::mutex> lock(g_mu);
  Handle* p = (Handle*)h;
  return g_handles.count(p) && p->magic == kHandleMagic ? p : nullptr;
}

}  // namespace emu_cudnn

using namespace emu_cudnn;

CUDNN_EXPORT size_t cudnnGetVersion(void) { return CUDNN_VERSION; }
CUDNN_EXPORT size_t cudnnGetMaxDeviceVersion(void) { return 1200; }
CUDNN_EXPORT size_t cudnnGetCudartVersion(void) { return kCudartVersion; }

CUDNN_EXPORT cudnnStatus_t cudnnGetProperty(libraryPropertyType type, int* value) {
  if (!value) return CUDNN_STATUS_BAD_PARAM;
  switch (type) {
    case MAJOR_VERSION: *value = CUDNN_MAJOR; break;
    case MINOR_VERSION: *value = CUDNN_MINOR; break;
    case PATCH_LEVEL: *value = CUDNN_PATCHLEVEL; break;
    default: return CUDNN_STATUS_BAD_PARAM;
  }
  return CUDNN_STATUS_SUCCESS;
}

CUDNN_EXPORT cudnnStatus_t cudnnCreate(cudnnHandle_t* handle) {
  if (!handle) return CUDNN_STATUS_BAD_PARAM;
  // The real library initialises the CUDA runtime on the current device: a driver without a
  // device, or no context it can use, leaves it uninitialised.
  if (cuInit(0) != CUDA_SUCCESS) return CUDNN_STATUS_NOT_INITIALIZED;
  CUcontext ctx = nullptr;
  if (cuCtxGetCurrent(&ctx) != CUDA_SUCCESS) return CUDNN_STATUS_NOT_INITIALIZED;
  if (!ctx) {
    CUdevice dev;
    if (cuDeviceGet(&dev, 0) != CUDA_SUCCESS || cuDevicePrimaryCtxRetain(&ctx, dev) != CUDA_SUCCESS ||
        cuCtxSetCurrent(ctx) != CUDA_SUCCESS)
      return CUDNN_STATUS_NOT_INITIALIZED;
  }
  if (ressl_emu_context_status() != CUDA_SUCCESS) return CUDNN_STATUS_NOT_INITIALIZED;
  Handle* h = new Handle{kHandleMagic, nullptr};
  std::lock_guard<std::mutex> lock(g_mu);
  g_handles.insert(h);
  *handle = (cudnnHandle_t)h;
  return CUDNN_STATUS_SUCCESS;
}

CUDNN_EXPORT cudnnStatus_t cudnnDestroy(cudnnHandle_t handle) {
  Handle* h = handle_of(handle);
  if (!h) return CUDNN_STATUS_BAD_PARAM;
  cuCtxSynchronize();  // documented: calls cudaDeviceSynchronize
  std::lock_guard<std::mutex> lock(g_mu);
  g_handles.erase(h);
  h->magic = 0;
  delete h;
  return CUDNN_STATUS_SUCCESS;
}

CUDNN_EXPORT cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t streamId) {
  Handle* h = handle_of(handle);
  if (!h) return CUDNN_STATUS_BAD_PARAM;
  if (ressl_emu_stream_status((CUstream)streamId) != CUDA_SUCCESS) return CUDNN_STATUS_BAD_PARAM;
  h->stream = streamId;
  return CUDNN_STATUS_SUCCESS;
}

CUDNN_EXPORT cudnnStatus_t cudnnGetStream(cudnnHandle_t handle, cudaStream_t* streamId) {
  Handle* h = handle_of(handle);
  if (!h || !streamId) return CUDNN_STATUS_BAD_PARAM;
  *streamId = h->stream;
  return CUDNN_STATUS_SUCCESS;
}

namespace {
struct StatusName {
  int code;
  const char* name;
};
#define S(x) {x, #x}
const StatusName kNames[] = {
    S(CUDNN_STATUS_SUCCESS), S(CUDNN_STATUS_NOT_INITIALIZED), S(CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH),
    S(CUDNN_STATUS_SERIALIZATION_VERSION_MISMATCH), S(CUDNN_STATUS_DEPRECATED),
    S(CUDNN_STATUS_LICENSE_ERROR), S(CUDNN_STATUS_RUNTIME_IN_PROGRESS),
    S(CUDNN_STATUS_RUNTIME_FP_OVERFLOW), S(CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED),
    S(CUDNN_STATUS_BAD_PARAM), {2001, "CUDNN_STATUS_INVALID_VALUE"},
    S(CUDNN_STATUS_BAD_PARAM_NULL_POINTER), S(CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER),
    S(CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED), S(CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND),
    S(CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT), S(CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH),
    S(CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH), S(CUDNN_STATUS_BAD_PARAM_DUPLICATED_ENTRIES),
    S(CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE), S(CUDNN_STATUS_BAD_PARAM_CUDA_GRAPH_MISMATCH),
    S(CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE), S(CUDNN_STATUS_NOT_SUPPORTED),
    S(CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN), S(CUDNN_STATUS_NOT_SUPPORTED_SHAPE),
    S(CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE), S(CUDNN_STATUS_NOT_SUPPORTED_LAYOUT),
    S(CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER),
    S(CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDART), S(CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH),
    S(CUDNN_STATUS_NOT_SUPPORTED_RUNTIME_PREREQUISITE_MISSING),
    S(CUDNN_STATUS_NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE),
    S(CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT), S(CUDNN_STATUS_NOT_SUPPORTED_PADDING),
    S(CUDNN_STATUS_NOT_SUPPORTED_BAD_LAUNCH_PARAM),
    S(CUDNN_STATUS_NOT_SUPPORTED_CUDA_GRAPH_NATIVE_API),
    S(CUDNN_STATUS_NOT_SUPPORTED_INVALID_DYNAMIC_SHAPE), S(CUDNN_STATUS_INTERNAL_ERROR),
    S(CUDNN_STATUS_INTERNAL_ERROR_COMPILATION_FAILED), S(CUDNN_STATUS_INTERNAL_ERROR_UNEXPECTED_VALUE),
    S(CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED),
    S(CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED),
    S(CUDNN_STATUS_INTERNAL_ERROR_BAD_LAUNCH_PARAM),
    S(CUDNN_STATUS_INTERNAL_ERROR_TEXTURE_CREATION_FAILED), S(CUDNN_STATUS_EXECUTION_FAILED),
    S(CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER), S(CUDNN_STATUS_EXECUTION_FAILED_CUBLAS),
    S(CUDNN_STATUS_EXECUTION_FAILED_CUDART), S(CUDNN_STATUS_EXECUTION_FAILED_CURAND),
};
#undef S
}  // namespace

/* The stand-in's message for the most recent failure on this thread ("" if none); cleared by
 * reading it. */
CUDNN_EXPORT void cudnnGetLastErrorString(char* message, size_t max_size) {
  if (!message || max_size == 0) return;
  snprintf(message, max_size, "%s", t_last_error.c_str());
  t_last_error.clear();
}

CUDNN_EXPORT const char* cudnnGetErrorString(cudnnStatus_t status) {
  for (const StatusName& s : kNames)
    if (s.code == (int)status) return s.name;
  return "CUDNN_UNKNOWN_STATUS";
}

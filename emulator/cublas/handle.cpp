/*
 * The cuBLAS stand-in's library functions: handles (bound to the emulated device: creating one
 * without a device fails with CUBLAS_STATUS_NOT_INITIALIZED, like the real library), stream,
 * workspace, math mode, version and the status strings (the real library's text).
 */
#include <mutex>
#include <set>

#include "../include/ressl_emu_api.h"
#include "handle.h"

namespace emu_cublas {
namespace {
constexpr uint32_t kMagic = 0x43424c53;  // "CBLS"
std::mutex g_mu;
std::set<Handle*> g_handles;
}  // namespace

Handle* handle_of(cublasHandle_t h) {
  std::lock_guard<std::mutex> lock(g_mu);
  Handle* p = (Handle*)h;
  return g_handles.count(p) && p->magic == kMagic ? p : nullptr;
}

}  // namespace emu_cublas

using namespace emu_cublas;

CUBLAS_EXPORT cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
  if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
  // Like the CUDA runtime under the real cuBLAS: initialise the driver, and make the device's
  // primary context current when this thread has none.
  if (cuInit(0) != CUDA_SUCCESS) return CUBLAS_STATUS_NOT_INITIALIZED;
  CUcontext ctx = nullptr;
  if (cuCtxGetCurrent(&ctx) != CUDA_SUCCESS) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!ctx) {
    CUdevice dev;
    if (cuDeviceGet(&dev, 0) != CUDA_SUCCESS || cuDevicePrimaryCtxRetain(&ctx, dev) != CUDA_SUCCESS ||
        cuCtxSetCurrent(ctx) != CUDA_SUCCESS)
      return CUBLAS_STATUS_NOT_INITIALIZED;
  }
  if (ressl_emu_context_status() != CUDA_SUCCESS) return CUBLAS_STATUS_NOT_INITIALIZED;
  Handle* h = new Handle{kMagic, nullptr, nullptr, 0, CUBLAS_DEFAULT_MATH};
  std::lock_guard<std::mutex> lock(g_mu);
  g_handles.insert(h);
  *handle = (cublasHandle_t)h;
  return CUBLAS_STATUS_SUCCESS;
}

CUBLAS_EXPORT cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
  Handle* h = handle_of(handle);
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  // The real cublasDestroy synchronises the device (work still queued may use the handle).
  cuCtxSynchronize();
  std::lock_guard<std::mutex> lock(g_mu);
  g_handles.erase(h);
  h->magic = 0;
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}

CUBLAS_EXPORT cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t streamId) {
  Handle* h = handle_of(handle);
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (ressl_emu_stream_status((CUstream)streamId) != CUDA_SUCCESS) return CUBLAS_STATUS_INVALID_VALUE;
  h->stream = streamId;
  // Documented: setting the stream resets the workspace to the default pool.
  h->workspace = nullptr;
  h->workspace_bytes = 0;
  return CUBLAS_STATUS_SUCCESS;
}

CUBLAS_EXPORT cublasStatus_t cublasGetStream_v2(cublasHandle_t handle, cudaStream_t* streamId) {
  Handle* h = handle_of(handle);
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!streamId) return CUBLAS_STATUS_INVALID_VALUE;
  *streamId = h->stream;
  return CUBLAS_STATUS_SUCCESS;
}

CUBLAS_EXPORT cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void* workspace,
                                                   size_t workspaceSizeInBytes) {
  Handle* h = handle_of(handle);
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  // Documented: the workspace pointer has to be aligned to at least 256 bytes.
  if ((uintptr_t)workspace % 256 != 0) return CUBLAS_STATUS_INVALID_VALUE;
  if (workspaceSizeInBytes > 0 && !workspace) return CUBLAS_STATUS_INVALID_VALUE;
  h->workspace = workspaceSizeInBytes ? workspace : nullptr;
  h->workspace_bytes = workspaceSizeInBytes;
  return CUBLAS_STATUS_SUCCESS;
}

CUBLAS_EXPORT cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  Handle* h = handle_of(handle);
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  unsigned base = (unsigned)mode & ~(unsigned)CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
  if (base != CUBLAS_DEFAULT_MATH && base != CUBLAS_TENSOR_OP_MATH && base != CUBLAS_PEDANTIC_MATH &&
      base != CUBLAS_TF32_TENSOR_OP_MATH)
    return CUBLAS_STATUS_INVALID_VALUE;
  h->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}

CUBLAS_EXPORT cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t* mode) {
  Handle* h = handle_of(handle);
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = h->math;
  return CUBLAS_STATUS_SUCCESS;
}

CUBLAS_EXPORT cublasStatus_t cublasGetVersion_v2(cublasHandle_t handle, int* version) {
  (void)handle;  // the real library answers without looking at the handle
  if (!version) return CUBLAS_STATUS_INVALID_VALUE;
  *version = CUBLAS_VERSION;
  return CUBLAS_STATUS_SUCCESS;
}

CUBLAS_EXPORT cublasStatus_t cublasGetProperty(libraryPropertyType type, int* value) {
  if (!value) return CUBLAS_STATUS_INVALID_VALUE;
  switch (type) {
    case MAJOR_VERSION: *value = CUBLAS_VER_MAJOR; break;
    case MINOR_VERSION: *value = CUBLAS_VER_MINOR; break;
    case PATCH_LEVEL: *value = CUBLAS_VER_PATCH; break;
    default: return CUBLAS_STATUS_INVALID_VALUE;
  }
  return CUBLAS_STATUS_SUCCESS;
}

namespace {
struct StatusText {
  cublasStatus_t status;
  const char* name;
  const char* text;
};
#define S(code, text) {code, #code, text}
const StatusText kStatus[] = {
    S(CUBLAS_STATUS_SUCCESS, "success"),
    S(CUBLAS_STATUS_NOT_INITIALIZED, "the library was not initialized"),
    S(CUBLAS_STATUS_ALLOC_FAILED, "the resource allocation failed"),
    S(CUBLAS_STATUS_INVALID_VALUE, "an unsupported value or parameter was passed to the function"),
    S(CUBLAS_STATUS_ARCH_MISMATCH,
      "the function requires an architectural feature absent from the device"),
    S(CUBLAS_STATUS_MAPPING_ERROR, "an access to GPU memory space failed"),
    S(CUBLAS_STATUS_EXECUTION_FAILED, "the function failed to launch on the GPU"),
    S(CUBLAS_STATUS_INTERNAL_ERROR, "an internal operation failed"),
    S(CUBLAS_STATUS_NOT_SUPPORTED, "the requested functionality is not supported"),
    S(CUBLAS_STATUS_LICENSE_ERROR, "the license check failed"),
};
#undef S
const StatusText* find(cublasStatus_t s) {
  for (const StatusText& t : kStatus)
    if (t.status == s) return &t;
  return nullptr;
}
}  // namespace

CUBLAS_EXPORT const char* cublasGetStatusName(cublasStatus_t status) {
  const StatusText* t = find(status);
  return t ? t->name : "unrecognized status";
}

CUBLAS_EXPORT const char* cublasGetStatusString(cublasStatus_t status) {
  const StatusText* t = find(status);
  return t ? t->text : "unrecognized status";
}

/*
 * cuLaunchKernel: checks the launch configuration as the driver does, copies the arguments (from
 * kernelParams or the packed `extra` buffer) into the queued work, and at execution time checks
 * that pointer arguments point into device memory before running the host build of the kernel.
 */
#include <string.h>

#include "module.h"

namespace emu {
namespace {

struct KernelWork : Work {
  FunctionPtr f;
  ressl_emu_dim3 grid, block;
  unsigned shared;
  std::vector<unsigned char> args;

  void execute() const override {
    const ressl_emu_kernel* k = f->host->kernel;
    std::vector<void*> params(k->num_params);
    for (unsigned i = 0; i < k->num_params; ++i) {
      params[i] = (void*)(args.data() + f->offsets[i]);
      if (!k->param_is_pointer[i]) continue;
      uintptr_t p;
      memcpy(&p, params[i], sizeof p);
      if (p != 0 && !find_range(p, 0, true, true)) {
        char msg[300];
        snprintf(msg, sizeof msg,
                 "kernel %s: pointer argument #%u (0x%llx) is not in device memory (host pointer, "
                 "freed, or never allocated)",
                 f->image.name.c_str(), i, (unsigned long long)p);
        set_sticky(CUDA_ERROR_ILLEGAL_ADDRESS, msg);
        return;
      }
    }
    char error[512] = "";
    ressl_emu_launch l{grid, block, shared, params.data(), error, sizeof error};
    int r = k->run(&l);
    if (r != 0) set_sticky((CUresult)r, error[0] ? error : f->image.name);
  }
  const char* kind() const override { return "kernel"; }
};

CUresult copy_extra(const Function& f, void** extra, std::vector<unsigned char>* args) {
  const void* buffer = nullptr;
  const size_t* size = nullptr;
  for (size_t i = 0; extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
    if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER) buffer = extra[i + 1];
    else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE) size = (const size_t*)extra[i + 1];
    else return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel: unknown key %p in extra", extra[i]);
  }
  if (!buffer || !size)
    return fail(CUDA_ERROR_INVALID_VALUE,
                "cuLaunchKernel: extra needs both CU_LAUNCH_PARAM_BUFFER_POINTER and _SIZE");
  if (*size != f.param_bytes)
    return fail(CUDA_ERROR_INVALID_VALUE,
                "cuLaunchKernel: %s takes %u bytes of parameters, the buffer says %zu",
                f.image.name.c_str(), f.param_bytes, *size);
  memcpy(args->data(), buffer, f.param_bytes);
  return CUDA_SUCCESS;
}

}  // namespace
}  // namespace emu

using namespace emu;

EMU_EXPORT CUresult cuLaunchKernel(CUfunction hf, unsigned int gridDimX, unsigned int gridDimY,
                                   unsigned int gridDimZ, unsigned int blockDimX,
                                   unsigned int blockDimY, unsigned int blockDimZ,
                                   unsigned int sharedMemBytes, CUstream hStream,
                                   void** kernelParams, void** extra) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  FunctionPtr f = function_of(hf);
  if (!f) return fail(CUDA_ERROR_INVALID_HANDLE, "cuLaunchKernel: invalid function");
  const char* name = f->image.name.c_str();
  Stream* s = stream_of(hStream);
  if (!s) return fail(CUDA_ERROR_INVALID_HANDLE, "cuLaunchKernel(%s): invalid stream", name);
  if (gridDimX == 0 || gridDimY == 0 || gridDimZ == 0 || gridDimX > 2147483647u ||
      gridDimY > 65535 || gridDimZ > 65535)
    return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel(%s): grid (%u,%u,%u) out of range", name,
                gridDimX, gridDimY, gridDimZ);
  unsigned long threads = (unsigned long)blockDimX * blockDimY * blockDimZ;
  if (threads == 0 || blockDimX > 1024 || blockDimY > 1024 || blockDimZ > 64 || threads > 1024)
    return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel(%s): block (%u,%u,%u) out of range", name,
                blockDimX, blockDimY, blockDimZ);
  if (threads > f->image.max_threads)
    return fail(CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES,
                "cuLaunchKernel(%s): %lu threads per block exceed its __launch_bounds__ of %u", name,
                threads, f->image.max_threads);
  if ((int)sharedMemBytes > f->max_dynamic_shared)
    return fail(CUDA_ERROR_INVALID_VALUE,
                "cuLaunchKernel(%s): %u bytes of dynamic shared memory exceed the kernel's limit "
                "of %d (raise it with cuFuncSetAttribute MAX_DYNAMIC_SHARED_SIZE_BYTES)",
                name, sharedMemBytes, f->max_dynamic_shared);
  unsigned n = f->host->kernel->num_params;
  if (kernelParams && extra)
    return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel(%s): both kernelParams and extra", name);
  if (!kernelParams && !extra && n > 0)
    return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel(%s): %u parameters but no arguments",
                name, n);
  if (CUresult r = check_legacy_capture(s, "cuLaunchKernel")) return r;
  auto w = std::make_shared<KernelWork>();
  w->f = f;
  w->grid = ressl_emu_dim3{gridDimX, gridDimY, gridDimZ};
  w->block = ressl_emu_dim3{blockDimX, blockDimY, blockDimZ};
  w->shared = sharedMemBytes;
  w->args.assign(f->param_bytes + 16, 0);
  if (extra) {
    if (CUresult r = copy_extra(*f, extra, &w->args)) return r;
  } else {
    for (unsigned i = 0; i < n; ++i)
      memcpy(w->args.data() + f->offsets[i], kernelParams[i], f->host->kernel->param_size[i]);
  }
  enqueue(s, w);
  return CUDA_SUCCESS;
}

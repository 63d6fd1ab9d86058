/* The driver's side of ressl_emu_api.h (used by the cuBLAS and cuDNN stand-ins). */
#include "../include/ressl_emu_api.h"

#include "state.h"

namespace emu {
namespace {
struct HostWork : Work {
  void (*fn)(void*);
  std::shared_ptr<void> ctx;
  std::string what;
  void execute() const override { fn(ctx.get()); }
  const char* kind() const override { return what.c_str(); }
};
}  // namespace
}  // namespace emu

using namespace emu;

EMU_EXPORT int ressl_emu_context_status(void) {
  Lock lock(g_mu);
  return require_context();
}

EMU_EXPORT int ressl_emu_stream_status(CUstream stream) {
  Lock lock(g_mu);
  return stream_of(stream) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

EMU_EXPORT int ressl_emu_enqueue_host(CUstream stream, void (*fn)(void*), void* ctx,
                                      void (*free_ctx)(void*), const char* what) {
  Lock lock(g_mu);
  std::shared_ptr<void> owned(ctx, free_ctx ? free_ctx : +[](void*) {});
  if (CUresult r = require_context()) return r;
  Stream* s = stream_of(stream);
  if (!s) return fail(CUDA_ERROR_INVALID_HANDLE, "%s: invalid stream", what);
  if (CUresult r = check_legacy_capture(s, what)) return r;
  auto w = std::make_shared<HostWork>();
  w->fn = fn;
  w->ctx = std::move(owned);
  w->what = what;
  enqueue(s, w);
  return CUDA_SUCCESS;
}

EMU_EXPORT int ressl_emu_device_range_ok(const void* p, size_t bytes, int allow_pinned) {
  Lock lock(g_mu);
  return find_range((uintptr_t)p, bytes, allow_pinned != 0, true) != nullptr;
}

EMU_EXPORT void ressl_emu_fault(int cuda_error, const char* message) {
  Lock lock(g_mu);
  set_sticky((CUresult)cuda_error, message);
}

EMU_EXPORT int ressl_emu_stream_synchronize(CUstream stream) { return cuStreamSynchronize(stream); }

/*
 * Copies and memsets. Pointers are checked when the call is made (CUDA_ERROR_INVALID_VALUE, as
 * the driver does with unified addressing) and again when the work runs (a range freed in the
 * meantime is an illegal address: the sticky error of a faulting kernel).
 *
 * Host memory, following the driver's documented synchronisation rules:
 * - synchronous cuMemcpyHtoD/DtoH wait for the legacy stream (and so all blocking streams) and
 *   return with the copy done; cuMemcpyDtoD and the memsets only enqueue on the legacy stream;
 * - async host-to-device from pageable memory copies the source at the call (the driver stages
 *   it); from pinned memory the source is read when the copy runs;
 * - async device-to-host (pageable or pinned destination) writes when the copy runs: read the
 *   buffer only after synchronising (the driver "might" finish pageable copies early, but does not
 *   promise to);
 * - pageable host memory cannot take part in a stream capture.
 */
#include <string.h>

#include "state.h"

namespace emu {
namespace {

enum class Dir { HtoD, DtoH, DtoD };

struct CopyWork : Work {
  Dir dir;
  uintptr_t dst;
  uintptr_t src;
  size_t bytes;
  std::vector<unsigned char> staged;  // pageable source copied at the call
  void execute() const override {
    bool ok = true;
    if (dir != Dir::HtoD) ok = ok && find_range(src, bytes, true, true);
    if (dir != Dir::DtoH) ok = ok && find_range(dst, bytes, true, true);
    if (!ok) {
      set_sticky(CUDA_ERROR_ILLEGAL_ADDRESS, "a copy touches device memory that was freed");
      return;
    }
    memmove((void*)dst, staged.empty() ? (const void*)src : staged.data(), bytes);
  }
  const char* kind() const override { return "memcpy"; }
};

struct MemsetWork : Work {
  uintptr_t dst;
  unsigned value;
  unsigned elem;  // 1 or 4 bytes
  size_t count;
  void execute() const override {
    if (!find_range(dst, count * elem, true, true)) {
      set_sticky(CUDA_ERROR_ILLEGAL_ADDRESS, "a memset touches device memory that was freed");
      return;
    }
    if (elem == 1) {
      memset((void*)dst, (int)(value & 0xFF), count);
    } else {
      unsigned* p = (unsigned*)dst;
      for (size_t i = 0; i < count; ++i) p[i] = value;
    }
  }
  const char* kind() const override { return "memset"; }
};

CUresult check_device(const char* what, const char* which, uintptr_t p, size_t bytes) {
  if (!find_range(p, bytes, true, false))
    return fail(CUDA_ERROR_INVALID_VALUE,
                "%s: %s [0x%llx, +%zu bytes) is not inside one device allocation", what, which,
                (unsigned long long)p, bytes);
  return CUDA_SUCCESS;
}

CUresult check_host(const char* what, const char* which, const void* p) {
  if (!p) return fail(CUDA_ERROR_INVALID_VALUE, "%s: %s is null", what, which);
  if (in_device_memory(p))
    return fail(CUDA_ERROR_INVALID_VALUE, "%s: %s %p is device memory, not host memory", what,
                which, p);
  return CUDA_SUCCESS;
}

/* Builds, checks and enqueues one copy; `wait` makes it synchronous. */
CUresult copy(const char* what, Dir dir, uintptr_t dst, uintptr_t src, size_t bytes, CUstream h,
              bool wait) {
  if (CUresult r = require_context()) return r;
  Stream* s = stream_of(h);
  if (!s) return fail(CUDA_ERROR_INVALID_HANDLE, "%s: invalid stream", what);
  if (dir == Dir::DtoH) {
    if (CUresult r = check_host(what, "destination", (const void*)dst)) return r;
  } else if (CUresult r = check_device(what, "destination", dst, bytes)) {
    return r;
  }
  if (dir == Dir::HtoD) {
    if (CUresult r = check_host(what, "source", (const void*)src)) return r;
  } else if (CUresult r = check_device(what, "source", src, bytes)) {
    return r;
  }
  if (bytes == 0) return CUDA_SUCCESS;
  bool pageable = (dir == Dir::HtoD && !is_pinned((const void*)src, bytes)) ||
                  (dir == Dir::DtoH && !is_pinned((const void*)dst, bytes));
  if (s->capture && pageable)
    return fail(invalidate_capture(s->capture, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, what),
                "%s: pageable host memory in a stream capture (use cuMemHostAlloc memory)", what);
  if (wait && any_capture_active())
    return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "%s while a stream is capturing", what);
  if (CUresult r = check_legacy_capture(s, what)) return r;
  auto w = std::make_shared<CopyWork>();
  w->dir = dir;
  w->dst = dst;
  w->src = src;
  w->bytes = bytes;
  if (dir == Dir::HtoD && pageable && !wait)
    w->staged.assign((const unsigned char*)src, (const unsigned char*)src + bytes);
  uint64_t seq = enqueue(s, w);
  if (wait) {
    drain(s, seq);
    return g_sticky;
  }
  return CUDA_SUCCESS;
}

CUresult memset_on(const char* what, uintptr_t dst, unsigned value, unsigned elem, size_t n,
                   CUstream h) {
  if (CUresult r = require_context()) return r;
  Stream* s = stream_of(h);
  if (!s) return fail(CUDA_ERROR_INVALID_HANDLE, "%s: invalid stream", what);
  if (dst % elem != 0)
    return fail(CUDA_ERROR_INVALID_VALUE, "%s: 0x%llx is not %u-byte aligned", what,
                (unsigned long long)dst, elem);
  if (CUresult r = check_device(what, "destination", dst, n * elem)) return r;
  if (n == 0) return CUDA_SUCCESS;
  if (CUresult r = check_legacy_capture(s, what)) return r;
  auto w = std::make_shared<MemsetWork>();
  w->dst = dst;
  w->value = value;
  w->elem = elem;
  w->count = n;
  enqueue(s, w);
  return CUDA_SUCCESS;
}

}  // namespace
}  // namespace emu

using namespace emu;

EMU_EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t n) {
  Lock lock(g_mu);
  return copy("cuMemcpyHtoD_v2", Dir::HtoD, dst, (uintptr_t)src, n, nullptr, true);
}
EMU_EXPORT CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t n) {
  Lock lock(g_mu);
  return copy("cuMemcpyDtoH_v2", Dir::DtoH, (uintptr_t)dst, src, n, nullptr, true);
}
EMU_EXPORT CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n) {
  Lock lock(g_mu);
  return copy("cuMemcpyDtoD_v2", Dir::DtoD, dst, src, n, nullptr, false);
}
EMU_EXPORT CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t n, CUstream s) {
  Lock lock(g_mu);
  return copy("cuMemcpyHtoDAsync_v2", Dir::HtoD, dst, (uintptr_t)src, n, s, false);
}
EMU_EXPORT CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t n, CUstream s) {
  Lock lock(g_mu);
  return copy("cuMemcpyDtoHAsync_v2", Dir::DtoH, (uintptr_t)dst, src, n, s, false);
}
EMU_EXPORT CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) {
  Lock lock(g_mu);
  return copy("cuMemcpyDtoDAsync_v2", Dir::DtoD, dst, src, n, s, false);
}
EMU_EXPORT CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char uc, size_t n, CUstream s) {
  Lock lock(g_mu);
  return memset_on("cuMemsetD8Async", dst, uc, 1, n, s);
}
EMU_EXPORT CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned int ui, size_t n, CUstream s) {
  Lock lock(g_mu);
  return memset_on("cuMemsetD32Async", dst, ui, 4, n, s);
}
EMU_EXPORT CUresult cuMemsetD8_v2(CUdeviceptr dst, unsigned char uc, size_t n) {
  Lock lock(g_mu);
  return memset_on("cuMemsetD8_v2", dst, uc, 1, n, nullptr);
}
EMU_EXPORT CUresult cuMemsetD32_v2(CUdeviceptr dst, unsigned int ui, size_t n) {
  Lock lock(g_mu);
  return memset_on("cuMemsetD32_v2", dst, ui, 4, n, nullptr);
}

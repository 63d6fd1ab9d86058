/*
 * Device memory on host memory: every allocation is tracked (copies, memsets, launches and the
 * cuBLAS/cuDNN stand-ins check that pointers fall inside a live one), counted against the
 * configured device size (cuMemGetInfo_v2), filled with 0xFF bytes when allocated (a NaN pattern:
 * device memory starts with unspecified contents), and can be made to fail on purpose
 * (RESSL_EMU_FAIL_ALLOC). Pinned host memory (cuMemHostAlloc) is tracked separately.
 */
#include <stdlib.h>
#include <string.h>

#include "state.h"

namespace emu {

namespace {
std::map<uintptr_t, Allocation> g_allocs;
size_t g_used = 0;
long g_alloc_count = 0;
constexpr size_t kAlign = 256;  // cuMemAlloc returns 256-byte aligned pointers

/* The allocation whose [base, base + size] holds p (its end included: an empty range there). */
Allocation* containing(uintptr_t p, uintptr_t* base) {
  auto it = g_allocs.upper_bound(p);
  if (it == g_allocs.begin()) return nullptr;
  --it;
  if (p > it->first + it->second.size) return nullptr;
  *base = it->first;
  return &it->second;
}

struct AllocAsyncWork : Work {
  uintptr_t base;
  void execute() const override {
    auto it = g_allocs.find(base);
    if (it != g_allocs.end()) it->second.live = true;
  }
  const char* kind() const override { return "cuMemAllocAsync"; }
};

struct FreeAsyncWork : Work {
  uintptr_t base;
  void execute() const override { device_free_now(base); }
  const char* kind() const override { return "cuMemFreeAsync"; }
};
}  // namespace

Allocation* find_range(uintptr_t p, size_t bytes, bool allow_pinned, bool require_live) {
  uintptr_t base = 0;
  Allocation* a = containing(p, &base);
  if (!a || (require_live && !a->live)) return nullptr;
  if (a->kind == MemKind::Pinned && !allow_pinned) return nullptr;
  if (p + bytes < p || p + bytes > base + a->size) return nullptr;
  return a;
}

bool in_device_memory(const void* p) {
  uintptr_t base = 0;
  Allocation* a = containing((uintptr_t)p, &base);
  return a && a->kind == MemKind::Device && (uintptr_t)p < base + a->size;
}

bool is_pinned(const void* p, size_t bytes) {
  Allocation* a = find_range((uintptr_t)p, bytes, true, true);
  return a && a->kind == MemKind::Pinned;
}

CUresult device_alloc(CUdeviceptr* out, size_t bytes, bool live_now) {
  if (bytes == 0) return fail(CUDA_ERROR_INVALID_VALUE, "device allocation of 0 bytes");
  long n = ++g_alloc_count;
  size_t charged = (bytes + 511) / 512 * 512;
  if (g_config.fail_nth == n || (g_config.fail_from > 0 && n >= g_config.fail_from) ||
      (g_config.fail_above > 0 && bytes > g_config.fail_above)) {
    return fail(CUDA_ERROR_OUT_OF_MEMORY,
                "allocation #%ld of %zu bytes failed on purpose (RESSL_EMU_FAIL_ALLOC)", n, bytes);
  }
  if (g_used + charged > g_config.device_memory) {
    return fail(CUDA_ERROR_OUT_OF_MEMORY,
                "allocation of %zu bytes: %zu of %zu bytes in use (RESSL_EMU_DEVICE_MEMORY)", bytes,
                g_used, g_config.device_memory);
  }
  void* p = aligned_alloc(kAlign, (bytes + kAlign - 1) / kAlign * kAlign);
  if (!p) return fail(CUDA_ERROR_OUT_OF_MEMORY, "host memory exhausted allocating %zu bytes", bytes);
  if (g_config.alloc_fill >= 0) memset(p, g_config.alloc_fill, bytes);
  g_allocs[(uintptr_t)p] = Allocation{bytes, charged, MemKind::Device, live_now};
  g_used += charged;
  *out = (CUdeviceptr)(uintptr_t)p;
  return CUDA_SUCCESS;
}

void device_free_now(uintptr_t base) {
  auto it = g_allocs.find(base);
  if (it == g_allocs.end()) return;
  g_used -= it->second.charged;
  free((void*)base);
  g_allocs.erase(it);
}

void release_all_memory() {
  for (auto& [base, a] : g_allocs) free((void*)base);
  g_allocs.clear();
  g_used = 0;
}

}  // namespace emu

using namespace emu;

EMU_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  if (!dptr) return fail(CUDA_ERROR_INVALID_VALUE, "cuMemAlloc_v2: dptr is null");
  if (any_capture_active())
    return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
                "cuMemAlloc_v2 while a stream is capturing (use cuMemAllocAsync)");
  return device_alloc(dptr, bytesize, true);
}

EMU_EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  if (dptr == 0) return CUDA_SUCCESS;
  auto it = g_allocs.find((uintptr_t)dptr);
  if (it == g_allocs.end() || it->second.kind != MemKind::Device)
    return fail(CUDA_ERROR_INVALID_VALUE,
                "cuMemFree_v2: 0x%llx is not the start of a device allocation (double free?)",
                (unsigned long long)dptr);
  if (any_capture_active())
    return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "cuMemFree_v2 while a stream is capturing");
  // cuMemFree synchronises the device: pending work may still use the memory.
  drain_all();
  device_free_now((uintptr_t)dptr);
  return g_sticky;
}

EMU_EXPORT CUresult cuMemAllocAsync(CUdeviceptr* dptr, size_t bytesize, CUstream hStream) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  if (!dptr) return fail(CUDA_ERROR_INVALID_VALUE, "cuMemAllocAsync: dptr is null");
  Stream* s = stream_of(hStream);
  if (!s) return fail(CUDA_ERROR_INVALID_HANDLE, "cuMemAllocAsync: invalid stream");
  if (s->capture)
    return fail(CUDA_ERROR_NOT_SUPPORTED,
                "cuMemAllocAsync during stream capture (graph memory nodes) is not emulated");
  if (CUresult r = device_alloc(dptr, bytesize, false)) return r;
  auto w = std::make_shared<AllocAsyncWork>();
  w->base = (uintptr_t)*dptr;
  enqueue(s, w);
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  Stream* s = stream_of(hStream);
  if (!s) return fail(CUDA_ERROR_INVALID_HANDLE, "cuMemFreeAsync: invalid stream");
  if (s->capture)
    return fail(CUDA_ERROR_NOT_SUPPORTED,
                "cuMemFreeAsync during stream capture (graph memory nodes) is not emulated");
  auto it = g_allocs.find((uintptr_t)dptr);
  if (it == g_allocs.end() || it->second.kind != MemKind::Device)
    return fail(CUDA_ERROR_INVALID_VALUE,
                "cuMemFreeAsync: 0x%llx is not the start of a device allocation",
                (unsigned long long)dptr);
  auto w = std::make_shared<FreeAsyncWork>();
  w->base = (uintptr_t)dptr;
  enqueue(s, w);
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuMemGetInfo_v2(size_t* free_bytes, size_t* total) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  if (!free_bytes || !total) return fail(CUDA_ERROR_INVALID_VALUE, "cuMemGetInfo_v2: null pointer");
  *total = g_config.device_memory;
  *free_bytes = g_config.device_memory - g_used;
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuMemHostAlloc(void** pp, size_t bytesize, unsigned int Flags) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  if (!pp) return fail(CUDA_ERROR_INVALID_VALUE, "cuMemHostAlloc: pp is null");
  if (bytesize == 0) return fail(CUDA_ERROR_INVALID_VALUE, "cuMemHostAlloc: 0 bytes");
  if (Flags & ~(unsigned)(CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_WRITECOMBINED))
    return fail(CUDA_ERROR_INVALID_VALUE, "cuMemHostAlloc: unknown flags 0x%x", Flags);
  void* p = aligned_alloc(4096, (bytesize + 4095) / 4096 * 4096);
  if (!p) return fail(CUDA_ERROR_OUT_OF_MEMORY, "cuMemHostAlloc: %zu bytes", bytesize);
  g_allocs[(uintptr_t)p] = Allocation{bytesize, 0, MemKind::Pinned, true};
  *pp = p;
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuMemAllocHost_v2(void** pp, size_t bytesize) {
  return cuMemHostAlloc(pp, bytesize, 0);
}

EMU_EXPORT CUresult cuMemFreeHost(void* p) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  auto it = g_allocs.find((uintptr_t)p);
  if (it == g_allocs.end() || it->second.kind != MemKind::Pinned)
    return fail(CUDA_ERROR_INVALID_VALUE, "cuMemFreeHost: %p is not pinned host memory", p);
  // Pending copies may still read or write it.
  drain_all();
  free(p);
  g_allocs.erase(it);
  return g_sticky;
}

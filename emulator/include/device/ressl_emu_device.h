/*
 * The shim that lets a CUDA kernel source (.cu) compile as host C++ for the emulated device.
 * emulator/build.sh force-includes it (g++ -include) ahead of every kernel source.
 *
 * - qualifiers: __global__ kernels become ordinary exported functions, __device__/__host__
 *   vanish, __shared__ variables become statics in the section "ressl_emu_shared" (one instance,
 *   shared by the threads of the block being run; blocks run one after another), and
 *   `extern __shared__ T name[];` is rewritten by gen_kernel_module.sh into a pointer to the
 *   launch's dynamic shared memory;
 * - threadIdx/blockIdx/blockDim/gridDim/warpSize read the scheduler's per-thread values;
 * - barriers, warp shuffles and votes call the runtime (threads then run as fibers);
 * - atomics are plain read-modify-writes (a launch runs on one host thread);
 * - fast-math intrinsics (__expf, rsqrtf, __fdividef, ...) map to exact host math.
 */
#ifndef RESSL_EMU_DEVICE_H
#define RESSL_EMU_DEVICE_H

#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ressl_emu_runtime.h"

#ifndef RESSL_EMU_PREPROCESS
/* In the preprocessing pass of gen_kernel_module.sh these stay as written, so that the script
 * finds kernels and extern __shared__ declarations after every #include is expanded. */
#include "ressl_emu_qualifiers.h"
#endif
#define __launch_bounds__(...)
#define __device__
#define __host__
#define __constant__
#define __managed__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __CUDACC__ 1
#define __CUDA_ARCH__ 900
#define RESSL_EMU_DEVICE 1

#define threadIdx ressl_emu_thread_idx
#define blockIdx ressl_emu_block_idx
#define blockDim ressl_emu_block_dim
#define gridDim ressl_emu_grid_dim
#define warpSize 32

/* Where `extern __shared__` arrays point (see gen_kernel_module.sh). */
static inline void* ressl_emu_dynamic_shared() { return ressl_emu_dynamic_shared_base; }

/* ---- barriers, warp shuffles, votes --------------------------------------------------------- */

static inline void __syncthreads() { (void)ressl_emu_rt_syncthreads_count(0); }
static inline int __syncthreads_count(int p) { return ressl_emu_rt_syncthreads_count(p); }
static inline int __syncthreads_and(int p) { return ressl_emu_rt_syncthreads_count(!p) == 0; }
static inline int __syncthreads_or(int p) { return ressl_emu_rt_syncthreads_count(p) != 0; }
static inline void __syncwarp(unsigned mask = 0xFFFFFFFFu) {
  (void)ressl_emu_rt_warp_sync(mask, 0, 0);
}
static inline unsigned __activemask() { return ressl_emu_rt_active_mask(); }
static inline unsigned __ballot_sync(unsigned mask, int p) {
  const ressl_emu_warp_slots* s = ressl_emu_rt_warp_sync(mask, 0, p);
  return s->predicates & s->participants;
}
static inline int __any_sync(unsigned mask, int p) { return __ballot_sync(mask, p) != 0; }
static inline int __all_sync(unsigned mask, int p) {
  const ressl_emu_warp_slots* s = ressl_emu_rt_warp_sync(mask, 0, p);
  return (s->predicates & s->participants) == s->participants;
}
static inline unsigned ressl_emu_lane() { return ressl_emu_linear_tid % 32; }

template <typename T>
static inline T ressl_emu_shfl_from(unsigned mask, T v, int src_lane) {
  static_assert(sizeof(T) <= 8, "warp shuffles move at most 8 bytes");
  unsigned long long bits = 0;
  memcpy(&bits, &v, sizeof(T));
  const ressl_emu_warp_slots* s = ressl_emu_rt_warp_sync(mask, bits, 0);
  if (src_lane < 0 || src_lane > 31 || !(s->participants & (1u << src_lane))) return v;
  T out;
  memcpy(&out, &s->value[src_lane], sizeof(T));
  return out;
}
/* width: a power of two <= 32 splitting the warp into independent segments. */
template <typename T>
static inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  int lane = (int)ressl_emu_lane();
  int base = lane & ~(width - 1);
  return ressl_emu_shfl_from(mask, v, base + (src & (width - 1)));
}
template <typename T>
static inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  int lane = (int)ressl_emu_lane();
  int base = lane & ~(width - 1);
  int src = lane - (int)delta;
  return ressl_emu_shfl_from(mask, v, src < base ? lane : src);
}
template <typename T>
static inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  int lane = (int)ressl_emu_lane();
  int base = lane & ~(width - 1);
  int src = lane + (int)delta;
  return ressl_emu_shfl_from(mask, v, src >= base + width ? lane : src);
}
template <typename T>
static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  int lane = (int)ressl_emu_lane();
  int base = lane & ~(width - 1);
  int src = lane ^ lane_mask;
  return ressl_emu_shfl_from(mask, v, src >= base + width ? lane : src);
}

/* ---- memory fences, clocks, traps --------------------------------------------------------- */

static inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
static inline void __threadfence_block() { __atomic_signal_fence(__ATOMIC_SEQ_CST); }
static inline void __threadfence_system() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
static inline void __nanosleep(unsigned) {}
static inline long long clock64() { return (long long)__builtin_ia32_rdtsc(); }
[[noreturn]] static inline void __trap() { ressl_emu_rt_trap("__trap()"); }
[[noreturn]] static inline void __brkpt() { ressl_emu_rt_trap("__brkpt()"); }
template <typename T>
static inline T __ldg(const T* p) { return *p; }
template <typename T>
static inline T __ldcs(const T* p) { return *p; }
template <typename T>
static inline void __stcs(T* p, T v) { *p = v; }

#include "ressl_emu_atomics.h"
#include "ressl_emu_math.h"
#include "ressl_emu_bf16.h"
#include "ressl_emu_register.h"

#endif

// Helpers shared by the kernel files (included by each .cu; every function is inline so the files
// also compile one by one, and together in one translation unit, see build.sh).
//
// Written for two compilers: nvcc (the fatbin) and a plain C++ compiler with the emulator's shim
// header (each CUDA thread a fiber). So only: __global__/__device__/__shared__ (static sizes, no
// extern shared), threadIdx/blockIdx/blockDim/gridDim, __syncthreads, __shfl_xor_sync on float,
// and <math.h> functions. bf16 data is handled as raw bits (unsigned short), so no cuda_bf16.h.
// Reductions use fixed trees: for a given launch shape every result is bit-for-bit reproducible.
#ifndef RESSL_KERNELS_COMMON_CUH
#define RESSL_KERNELS_COMMON_CUH

#include <math.h>

/** bfloat16 stored as its raw bits: the upper 16 bits of an f32. */
typedef unsigned short bf16_t;

/** Keeps nvcc from unrolling a loop (code size); nothing for other compilers. */
#ifdef __NVCC__
#define RESSL_NO_UNROLL _Pragma("unroll 1")
#else
#define RESSL_NO_UNROLL
#endif

/** Threads of a warp. Block sizes of every kernel are multiples of this. */
#define RESSL_WARP 32
/** Largest block size any kernel supports. */
#define RESSL_MAX_BLOCK 1024

/** The bits of an f32 (union punning: defined in CUDA and a GCC/Clang extension in C++). */
__device__ inline unsigned f32_bits(float x) {
  union {
    float f;
    unsigned u;
  } v;
  v.f = x;
  return v.u;
}

/** The f32 with bits `u`. */
__device__ inline float f32_from_bits(unsigned u) {
  union {
    float f;
    unsigned u;
  } v;
  v.u = u;
  return v.f;
}

/** f32 -> bf16 bits, round to nearest even; NaN stays a quiet NaN (sign kept), overflow -> inf. */
__device__ inline bf16_t f32_to_bf16(float x) {
  unsigned bits = f32_bits(x);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0u) {
    return (bf16_t)(((bits >> 16) | 0x0040u) & 0xffffu);
  }
  unsigned rounded = bits + 0x7fffu + ((bits >> 16) & 1u);
  return (bf16_t)(rounded >> 16);
}

/** bf16 bits -> f32 (exact). */
__device__ inline float bf16_to_f32(bf16_t b) { return f32_from_bits(((unsigned)b) << 16); }

/** Loads element i as f32 (f32 or bf16 storage). */
__device__ inline float load_f(const float* p, int i) { return p[i]; }
__device__ inline float load_f(const bf16_t* p, int i) { return bf16_to_f32(p[i]); }

/** Stores an f32 value as element i (rounded to nearest even for bf16). */
__device__ inline void store_f(float* p, int i, float v) { p[i] = v; }
__device__ inline void store_f(bf16_t* p, int i, float v) { p[i] = f32_to_bf16(v); }

/** First index and stride of a 1-D grid-stride loop. */
__device__ inline int grid_start() {
  return blockIdx.x * blockDim.x + threadIdx.x;
}
__device__ inline int grid_stride() { return gridDim.x * blockDim.x; }

/** max(v, 0) keeping NaN (PyTorch's relu: NaN < 0 is false, so NaN passes through). */
__device__ inline float relu_keep_nan(float v) { return v < 0.0f ? 0.0f : v; }

/** Sum over the 32 lanes of a warp by an xor butterfly: every lane gets the same bits. */
__device__ inline float warp_sum(float v) {
  for (int o = RESSL_WARP / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

/** Max over a warp (fmaxf ignores NaN, as a `v > max` scan from -inf does). */
__device__ inline float warp_max(float v) {
  for (int o = RESSL_WARP / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

/**
 * Sum over a 1-D block (blockDim.x a multiple of 32, at most 1024); every thread gets the same
 * bits. `scratch` is a __shared__ float[32]; all threads must call (it synchronises).
 */
__device__ inline float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x % RESSL_WARP, warp = threadIdx.x / RESSL_WARP;
  const int warps = blockDim.x / RESSL_WARP;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  return warp_sum(lane < warps ? scratch[lane] : 0.0f);
}

/** warp_sum in f64 (sums whose terms cancel: f32 partial sums would lose the small terms). */
__device__ inline double warp_sum_f64(double v) {
  for (int o = RESSL_WARP / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

/** block_sum in f64; `scratch` is a __shared__ double[32]. */
__device__ inline double block_sum_f64(double v, double* scratch) {
  const int lane = threadIdx.x % RESSL_WARP, warp = threadIdx.x / RESSL_WARP;
  const int warps = blockDim.x / RESSL_WARP;
  v = warp_sum_f64(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  return warp_sum_f64(lane < warps ? scratch[lane] : 0.0);
}

/** Max over a 1-D block, same rules as block_sum. */
__device__ inline float block_max(float v, float* scratch) {
  const int lane = threadIdx.x % RESSL_WARP, warp = threadIdx.x / RESSL_WARP;
  const int warps = blockDim.x / RESSL_WARP;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  return warp_max(lane < warps ? scratch[lane] : -INFINITY);
}

#endif

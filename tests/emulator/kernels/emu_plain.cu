// Test kernels for the emulated device that never reach a barrier or warp step: the host build
// runs their threads as plain calls. Compiled by nvcc (fatbin) and by emulator/build.sh (host).
#include <cuda_bf16.h>

extern "C" __global__ void emu_axpby(float* __restrict__ y, const float* __restrict__ x, float a,
                                     float b, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * __ldg(&x[i]) + b * y[i];
}

// Every thread writes its indices: out[linear global thread id * 12 + k].
extern "C" __global__ void emu_indices(unsigned* out) {
  unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  unsigned thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  unsigned* o = out + (block * blockDim.x * blockDim.y * blockDim.z + thread) * 12;
  o[0] = threadIdx.x; o[1] = threadIdx.y; o[2] = threadIdx.z;
  o[3] = blockIdx.x; o[4] = blockIdx.y; o[5] = blockIdx.z;
  o[6] = blockDim.x; o[7] = blockDim.y; o[8] = blockDim.z;
  o[9] = gridDim.x; o[10] = gridDim.y; o[11] = gridDim.z;
}

// f32 -> bf16 (round to nearest even) -> f32, and bf16 arithmetic.
extern "C" __global__ void emu_bf16(const float* in, __nv_bfloat16* out, float* back,
                                    __nv_bfloat16* sum, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  __nv_bfloat16 h = __float2bfloat16_rn(in[i]);
  out[i] = h;
  back[i] = __bfloat162float(h);
  sum[i] = __hadd(h, __float2bfloat16_rn(1.0f));
}

// Global atomics from every thread: int/float add, max, min, CAS-built increment, exchange.
extern "C" __global__ void emu_atomics(const int* vals, int n, int* isum, float* fsum, int* imax,
                                       unsigned* umin, unsigned long long* cas_count, int* last) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  int v = vals[i];
  atomicAdd(isum, v);
  atomicAdd(fsum, (float)v);
  atomicMax(imax, v);
  atomicMin(umin, (unsigned)(v + 1000));
  unsigned long long old = *cas_count, seen;
  do {
    seen = old;
    old = atomicCAS(cas_count, seen, seen + 1);
  } while (old != seen);
  atomicExch(last, 7);
}

// Fast-math intrinsics mapped to exact host math: out[i] = {__expf, rsqrtf, __fdividef, __logf}.
extern "C" __global__ void emu_fastmath(const float* in, float* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float x = in[i];
  out[4 * i + 0] = __expf(x);
  out[4 * i + 1] = rsqrtf(x);
  out[4 * i + 2] = __fdividef(1.0f, x);
  out[4 * i + 3] = __logf(x);
}

// Traps in the thread whose global index equals `which` (a device-side assertion failure).
extern "C" __global__ void emu_trap(int which, int* touched) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i == which) __trap();
  touched[i] = 1;
}

// Mixed-size arguments (char, double, pointer, short) to check argument packing.
extern "C" __global__ void emu_args(char c, double d, long long* out, short s, float f) {
  if (threadIdx.x == 0 && blockIdx.x == 0) {
    out[0] = c;
    out[1] = (long long)d;
    out[2] = s;
    out[3] = (long long)(f * 2.0f);
  }
}

// Compiled for at most 128 threads per block: a larger launch is refused.
extern "C" __global__ void __launch_bounds__(128) emu_bounded(int* out) {
  out[blockIdx.x * blockDim.x + threadIdx.x] = threadIdx.x;
}

// A kernel with C++ linkage: the image and the host build both know it by its mangled name.
__global__ void emu_cpp_kernel(int* out, int value) { out[threadIdx.x] = value; }

// Elementwise kernels and the full sum: cast, axpby, mul, broadcast_scalar, relu, relu_backward,
// sum_partials / sum_finish. Launch: any 1-D grid and 1-D block (grid-stride loops), except the
// sum pair (block size a multiple of 32, at most 1024). Arguments and semantics: README.md.
#include "common.cuh"

// ---- cast -----------------------------------------------------------------------------------

extern "C" __global__ void cast_f32_to_bf16(const float* x, bf16_t* y, int n) {
  for (int i = grid_start(); i < n; i += grid_stride()) y[i] = f32_to_bf16(x[i]);
}

extern "C" __global__ void cast_bf16_to_f32(const bf16_t* x, float* y, int n) {
  for (int i = grid_start(); i < n; i += grid_stride()) y[i] = bf16_to_f32(x[i]);
}

// ---- axpby: out = alpha x + beta y; a term whose coefficient is 0 is skipped ------------------

template <typename T>
__device__ inline void axpby_body(const T* x, const T* y, T* out, float alpha, float beta, int n) {
  if (beta == 0.0f) {
    for (int i = grid_start(); i < n; i += grid_stride()) {
      store_f(out, i, alpha * load_f(x, i));
    }
  } else if (alpha == 0.0f) {
    for (int i = grid_start(); i < n; i += grid_stride()) {
      store_f(out, i, beta * load_f(y, i));
    }
  } else {
    for (int i = grid_start(); i < n; i += grid_stride()) {
      store_f(out, i, alpha * load_f(x, i) + beta * load_f(y, i));
    }
  }
}

extern "C" __global__ void axpby_f32(const float* x, const float* y, float* out, float alpha,
                                     float beta, int n) {
  axpby_body(x, y, out, alpha, beta, n);
}

extern "C" __global__ void axpby_bf16(const bf16_t* x, const bf16_t* y, bf16_t* out, float alpha,
                                      float beta, int n) {
  axpby_body(x, y, out, alpha, beta, n);
}

// ---- mul, broadcast_scalar ------------------------------------------------------------------

extern "C" __global__ void mul_f32(const float* a, const float* b, float* out, int n) {
  for (int i = grid_start(); i < n; i += grid_stride()) out[i] = a[i] * b[i];
}

extern "C" __global__ void broadcast_scalar_f32(const float* s, float* out, float alpha, int n) {
  const float v = alpha * s[0];
  for (int i = grid_start(); i < n; i += grid_stride()) out[i] = v;
}

// ---- relu -----------------------------------------------------------------------------------

template <typename T>
__device__ inline void relu_body(const T* x, T* y, int n) {
  for (int i = grid_start(); i < n; i += grid_stride()) {
    store_f(y, i, relu_keep_nan(load_f(x, i)));
  }
}

extern "C" __global__ void relu_f32(const float* x, float* y, int n) { relu_body(x, y, n); }
extern "C" __global__ void relu_bf16(const bf16_t* x, bf16_t* y, int n) { relu_body(x, y, n); }

template <typename T>
__device__ inline void relu_backward_body(const T* y, const T* dy, T* dx, int n) {
  for (int i = grid_start(); i < n; i += grid_stride()) {
    store_f(dx, i, load_f(y, i) > 0.0f ? load_f(dy, i) : 0.0f);
  }
}

extern "C" __global__ void relu_backward_f32(const float* y, const float* dy, float* dx, int n) {
  relu_backward_body(y, dy, dx, n);
}

extern "C" __global__ void relu_backward_bf16(const bf16_t* y, const bf16_t* dy, bf16_t* dx,
                                              int n) {
  relu_backward_body(y, dy, dx, n);
}

// ---- sum: partials[b] = sum of block b's grid-stride share, then one block adds them ----------

extern "C" __global__ void sum_partials_f32(const float* x, double* partials, int n) {
  __shared__ double scratch[RESSL_WARP];
  double acc = 0.0;
  for (int i = grid_start(); i < n; i += grid_stride()) acc += (double)x[i];
  acc = block_sum_f64(acc, scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

extern "C" __global__ void sum_finish_f32(const double* partials, int count, float* out,
                                          float alpha) {
  __shared__ double scratch[RESSL_WARP];
  double acc = 0.0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partials[i];
  acc = block_sum_f64(acc, scratch);
  if (threadIdx.x == 0) out[0] = (float)((double)alpha * acc);
}

// Batch norm on NCHW activations (f32 or bf16) with f32 parameters and statistics, in this
// project's semantics: training forward writes the batch mean and the BIASED variance; forward
// optionally adds a residual and applies ReLU (y = max(bn(x) + residual, 0)); backward masks dy by
// y > 0 when the forward had a ReLU, writes that masked gradient to dresidual when asked, and
// returns dx, dgamma, dbeta of the masked gradient.
//
// Launch sequence per call (README.md has the arguments and shapes):
//   training forward: batch_norm_stats_partial -> batch_norm_stats_finish -> batch_norm_apply
//   inference forward: batch_norm_apply (with the running statistics)
//   backward: batch_norm_backward_partial -> batch_norm_backward_finish
//             -> batch_norm_backward_apply
// The partial kernels run on grid (splits, c): block s of channel ci reduces the s-th contiguous
// slice of the channel's M = n * hw elements and writes its result to a workspace of
// c * splits * 2 floats; the finish kernels combine the splits of each channel in order (f64), so
// results are deterministic for a given `splits` and block size.
#include "common.cuh"

/** Element e (0 <= e < n * hw) of channel ci: image e / hw, pixel e % hw. */
__device__ inline int bn_index(int e, int ci, int c, int hw) {
  const int img = e / hw;
  return (img * c + ci) * hw + (e - img * hw);
}

/** The slice [begin, end) of split s among `splits` equal slices of m elements. */
__device__ inline void bn_slice(int m, int s, int splits, int* begin, int* end) {
  const int per = (m + splits - 1) / splits;
  *begin = per * s < m ? per * s : m;
  *end = per * (s + 1) < m ? per * (s + 1) : m;
}

/** Per block: the slice's mean and sum of squared deviations from it, to part[(ci*splits+s)*2]. */
template <typename T>
__device__ inline void stats_partial_body(const T* x, float* part, int n, int c, int hw) {
  __shared__ float scratch[RESSL_WARP];
  const int s = blockIdx.x, splits = gridDim.x, ci = blockIdx.y;
  int begin, end;
  bn_slice(n * hw, s, splits, &begin, &end);
  float acc = 0.0f;
  for (int e = begin + threadIdx.x; e < end; e += blockDim.x) {
    acc += load_f(x, bn_index(e, ci, c, hw));
  }
  const int count = end - begin;
  const float total = block_sum(acc, scratch);
  const float mean = count > 0 ? total / (float)count : 0.0f;
  float sq = 0.0f;
  for (int e = begin + threadIdx.x; e < end; e += blockDim.x) {
    const float d = load_f(x, bn_index(e, ci, c, hw)) - mean;
    sq += d * d;
  }
  sq = block_sum(sq, scratch);
  if (threadIdx.x == 0) {
    part[(ci * splits + s) * 2] = mean;
    part[(ci * splits + s) * 2 + 1] = sq;
  }
}

extern "C" __global__ void batch_norm_stats_partial_f32(const float* x, float* part, int n, int c,
                                                        int hw) {
  stats_partial_body(x, part, n, c, hw);
}

extern "C" __global__ void batch_norm_stats_partial_bf16(const bf16_t* x, float* part, int n, int c,
                                                         int hw) {
  stats_partial_body(x, part, n, c, hw);
}

/**
 * mean[ci], variance[ci] (biased) from the splits of channel ci (Chan's parallel combination in
 * f64). One thread per channel: any 1-D grid and block covering c.
 */
extern "C" __global__ void batch_norm_stats_finish(const float* part, float* mean, float* variance,
                                                   int n, int c, int hw, int splits) {
  const int m = n * hw;
  for (int ci = grid_start(); ci < c; ci += grid_stride()) {
    const float* p = part + ci * splits * 2;
    double total = 0.0;
    for (int s = 0; s < splits; s++) {
      int b, e;
      bn_slice(m, s, splits, &b, &e);
      total += (double)(e - b) * p[2 * s];
    }
    const double mu = total / (double)m;
    double m2 = 0.0;
    for (int s = 0; s < splits; s++) {
      int b, e;
      bn_slice(m, s, splits, &b, &e);
      const double d = (double)p[2 * s] - mu;
      m2 += (double)p[2 * s + 1] + (double)(e - b) * d * d;
    }
    mean[ci] = (float)mu;
    variance[ci] = (float)(m2 / (double)m);
  }
}

/**
 * y = gamma (x - mean) / sqrt(variance + eps) + beta (+ residual), then max(., 0) when relu.
 * Grid (blocks per channel, c): the blocks of channel blockIdx.y stride over its n * hw elements.
 */
template <typename T>
__device__ inline void apply_body(const T* x, const T* residual, T* y, const float* gamma,
                                  const float* beta, const float* mean, const float* variance,
                                  float eps, int relu, int n, int c, int hw) {
  const int ci = blockIdx.y, m = n * hw;
  const float mu = mean[ci], b = beta[ci];
  const float scale = gamma[ci] / sqrtf(variance[ci] + eps);
  for (int e = grid_start(); e < m; e += grid_stride()) {
    const int i = bn_index(e, ci, c, hw);
    float v = (load_f(x, i) - mu) * scale + b;
    if (residual) v += load_f(residual, i);
    if (relu) v = relu_keep_nan(v);
    store_f(y, i, v);
  }
}

extern "C" __global__ void batch_norm_apply_f32(const float* x, const float* residual, float* y,
                                                const float* gamma, const float* beta,
                                                const float* mean, const float* variance,
                                                float eps, int relu, int n, int c, int hw) {
  apply_body(x, residual, y, gamma, beta, mean, variance, eps, relu, n, c, hw);
}

extern "C" __global__ void batch_norm_apply_bf16(const bf16_t* x, const bf16_t* residual, bf16_t* y,
                                                 const float* gamma, const float* beta,
                                                 const float* mean, const float* variance,
                                                 float eps, int relu, int n, int c, int hw) {
  apply_body(x, residual, y, gamma, beta, mean, variance, eps, relu, n, c, hw);
}

/** The incoming gradient masked by the forward's ReLU (y > 0) when `y` is given. */
template <typename T>
__device__ inline float masked_dy(const T* dy, const T* y, int i) {
  const float g = load_f(dy, i);
  return (y && !(load_f(y, i) > 0.0f)) ? 0.0f : g;
}

/** Per block: sum(dym) and sum(dym * xhat) over the slice, to part[(ci*splits+s)*2]. */
template <typename T>
__device__ inline void backward_partial_body(const T* x, const T* dy, const T* y,
                                             const float* mean, const float* variance, float eps,
                                             float* part, int n, int c, int hw) {
  __shared__ float scratch[RESSL_WARP];
  const int s = blockIdx.x, splits = gridDim.x, ci = blockIdx.y;
  int begin, end;
  bn_slice(n * hw, s, splits, &begin, &end);
  const float mu = mean[ci], inv_std = 1.0f / sqrtf(variance[ci] + eps);
  float sum_dy = 0.0f, sum_dy_xhat = 0.0f;
  for (int e = begin + threadIdx.x; e < end; e += blockDim.x) {
    const int i = bn_index(e, ci, c, hw);
    const float g = masked_dy(dy, y, i);
    sum_dy += g;
    sum_dy_xhat += g * ((load_f(x, i) - mu) * inv_std);
  }
  sum_dy = block_sum(sum_dy, scratch);
  sum_dy_xhat = block_sum(sum_dy_xhat, scratch);
  if (threadIdx.x == 0) {
    part[(ci * splits + s) * 2] = sum_dy;
    part[(ci * splits + s) * 2 + 1] = sum_dy_xhat;
  }
}

extern "C" __global__ void batch_norm_backward_partial_f32(const float* x, const float* dy,
                                                           const float* y, const float* mean,
                                                           const float* variance, float eps,
                                                           float* part, int n, int c, int hw) {
  backward_partial_body(x, dy, y, mean, variance, eps, part, n, c, hw);
}

extern "C" __global__ void batch_norm_backward_partial_bf16(const bf16_t* x, const bf16_t* dy,
                                                            const bf16_t* y, const float* mean,
                                                            const float* variance, float eps,
                                                            float* part, int n, int c, int hw) {
  backward_partial_body(x, dy, y, mean, variance, eps, part, n, c, hw);
}

/** dbeta[ci] = sum(dym), dgamma[ci] = sum(dym * xhat) from the splits, in order (f64). */
extern "C" __global__ void batch_norm_backward_finish(const float* part, float* dgamma,
                                                      float* dbeta, int c, int splits) {
  for (int ci = grid_start(); ci < c; ci += grid_stride()) {
    const float* p = part + ci * splits * 2;
    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    for (int s = 0; s < splits; s++) {
      sum_dy += p[2 * s];
      sum_dy_xhat += p[2 * s + 1];
    }
    dbeta[ci] = (float)sum_dy;
    dgamma[ci] = (float)sum_dy_xhat;
  }
}

/**
 * dx = gamma / sqrt(variance + eps) / M * (M * dym - dbeta - xhat * dgamma), M = n * hw;
 * dresidual = dym when given. Grid (blocks per channel, c), as the forward apply.
 */
template <typename T>
__device__ inline void backward_apply_body(const T* x, const T* dy, const T* y, const float* gamma,
                                           const float* mean, const float* variance,
                                           const float* dgamma, const float* dbeta, float eps,
                                           T* dx, T* dresidual, int n, int c, int hw) {
  const int ci = blockIdx.y, count = n * hw;
  const float m = (float)count, mu = mean[ci], db = dbeta[ci], dg = dgamma[ci];
  const float inv_std = 1.0f / sqrtf(variance[ci] + eps);
  const float scale = gamma[ci] * inv_std / m;
  for (int e = grid_start(); e < count; e += grid_stride()) {
    const int i = bn_index(e, ci, c, hw);
    const float g = masked_dy(dy, y, i);
    const float xhat = (load_f(x, i) - mu) * inv_std;
    store_f(dx, i, scale * (m * g - db - xhat * dg));
    if (dresidual) store_f(dresidual, i, g);
  }
}

extern "C" __global__ void batch_norm_backward_apply_f32(
    const float* x, const float* dy, const float* y, const float* gamma, const float* mean,
    const float* variance, const float* dgamma, const float* dbeta, float eps, float* dx,
    float* dresidual, int n, int c, int hw) {
  backward_apply_body(x, dy, y, gamma, mean, variance, dgamma, dbeta, eps, dx, dresidual, n, c, hw);
}

extern "C" __global__ void batch_norm_backward_apply_bf16(
    const bf16_t* x, const bf16_t* dy, const bf16_t* y, const float* gamma, const float* mean,
    const float* variance, const float* dgamma, const float* dbeta, float eps, bf16_t* dx,
    bf16_t* dresidual, int n, int c, int hw) {
  backward_apply_body(x, dy, y, gamma, mean, variance, dgamma, dbeta, eps, dx, dresidual, n, c, hw);
}

// ---- SyncBN: batch norm whose statistics span processes -------------------------------------
// Forward: batch_norm_stats_partial -> batch_norm_stats_finish (this process's statistics into
// one [mean | variance] block), a collective gathers the blocks, batch_norm_merge_stats combines
// them, batch_norm_apply normalises. Backward: batch_norm_backward_partial ->
// batch_norm_backward_finish (this process's [sum(g) | sum(g xhat)] block), a gather, then
// batch_norm_backward_apply_sync with the gathered blocks and the global count.

/**
 * mean[ci], variance[ci] (biased) of the union of `take` equal-sized parts whose statistics are
 * rows first, first + stride, ... of parts [rows][2][c] (mean block, then variance block): the mean
 * of the means, and the mean of (variance + squared deviation of the part's mean), in f64. One
 * thread per channel: any 1-D grid and block covering c.
 */
extern "C" __global__ void batch_norm_merge_stats(const float* parts, float* mean, float* variance,
                                                  int c, int first, int stride, int take) {
  for (int ci = grid_start(); ci < c; ci += grid_stride()) {
    double total = 0.0;
    for (int j = 0; j < take; j++) total += (double)parts[(first + j * stride) * 2 * c + ci];
    const double mu = total / (double)take;
    double m2 = 0.0;
    for (int j = 0; j < take; j++) {
      const int row = (first + j * stride) * 2 * c;
      const double d = (double)parts[row + ci] - mu;
      m2 += (double)parts[row + c + ci] + d * d;
    }
    mean[ci] = (float)mu;
    variance[ci] = (float)(m2 / (double)take);
  }
}

/**
 * dx = gamma / sqrt(variance + eps) / count * (count * dym - S1 - xhat * S2), where S1 and S2 are
 * the f64 sums over rows first, first + stride, ... (`take` of them) of sums [rows][2][c]
 * (sum(dym) block, then sum(dym * xhat) block) and count the elements per channel over all parts;
 * dresidual = dym when given. Grid (blocks per channel, c), as the forward apply.
 */
template <typename T>
__device__ inline void backward_apply_sync_body(const T* x, const T* dy, const T* y,
                                                const float* gamma, const float* mean,
                                                const float* variance, const float* sums,
                                                int first, int stride, int take, float count,
                                                float eps, T* dx, T* dresidual, int n, int c,
                                                int hw) {
  const int ci = blockIdx.y, m = n * hw;
  double s1 = 0.0, s2 = 0.0;
  for (int j = 0; j < take; j++) {
    const int row = (first + j * stride) * 2 * c;
    s1 += (double)sums[row + ci];
    s2 += (double)sums[row + c + ci];
  }
  const float db = (float)s1, dg = (float)s2, mu = mean[ci];
  const float inv_std = 1.0f / sqrtf(variance[ci] + eps);
  const float scale = gamma[ci] * inv_std / count;
  for (int e = grid_start(); e < m; e += grid_stride()) {
    const int i = bn_index(e, ci, c, hw);
    const float g = masked_dy(dy, y, i);
    const float xhat = (load_f(x, i) - mu) * inv_std;
    store_f(dx, i, scale * (count * g - db - xhat * dg));
    if (dresidual) store_f(dresidual, i, g);
  }
}

extern "C" __global__ void batch_norm_backward_apply_sync_f32(
    const float* x, const float* dy, const float* y, const float* gamma, const float* mean,
    const float* variance, const float* sums, int first, int stride, int take, float count,
    float eps, float* dx, float* dresidual, int n, int c, int hw) {
  backward_apply_sync_body(x, dy, y, gamma, mean, variance, sums, first, stride, take, count, eps,
                           dx, dresidual, n, c, hw);
}

extern "C" __global__ void batch_norm_backward_apply_sync_bf16(
    const bf16_t* x, const bf16_t* dy, const bf16_t* y, const float* gamma, const float* mean,
    const float* variance, const float* sums, int first, int stride, int take, float count,
    float eps, bf16_t* dx, bf16_t* dresidual, int n, int c, int hw) {
  backward_apply_sync_body(x, dy, y, gamma, mean, variance, sums, first, stride, take, count, eps,
                           dx, dresidual, n, c, hw);
}

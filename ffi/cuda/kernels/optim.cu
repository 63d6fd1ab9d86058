// Multi-tensor optimiser and teacher kernels: one launch covers every parameter tensor. Tensors
// are passed as device arrays of pointers with a device array of their sizes; block b works on
// chunk b - chunk_start[t] of the tensor t with chunk_start[t] <= b < chunk_start[t + 1]
// (chunk_start: num_tensors + 1 cumulative counts of ceil(size / chunk_size) chunks, computed on
// the host once per parameter set). Launch: grid = chunk_start[num_tensors] blocks, block a
// multiple of 32 (at most 1024). Arguments and semantics: README.md.
#include "common.cuh"

/** The tensor whose chunks include block b (binary search in chunk_start). */
__device__ inline int tensor_of_block(const int* chunk_start, int num_tensors, int b) {
  int lo = 0, hi = num_tensors - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (chunk_start[mid] <= b) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** This block's tensor and element range [begin, end). */
__device__ inline int block_range(const int* sizes, const int* chunk_start, int num_tensors,
                                  int chunk_size, int* begin, int* end) {
  const int t = tensor_of_block(chunk_start, num_tensors, blockIdx.x);
  const int chunk = blockIdx.x - chunk_start[t];
  *begin = chunk * chunk_size;
  const int stop = *begin + chunk_size;
  *end = stop < sizes[t] ? stop : sizes[t];
  return t;
}

/**
 * partials[2 b] = sum of a[t]^2 and partials[2 b + 1] = sum of b[t]^2 over block b's chunk (the
 * LARS norms of params and grads, before the step), in f64: an f32 square of a tiny weight
 * underflows to 0 and would turn an adapted tensor into a non-adapted one.
 */
extern "C" __global__ void multi_sq_norm_partials_f32(const float* const* a, const float* const* b,
                                                      const int* sizes, const int* chunk_start,
                                                      int num_tensors, int chunk_size,
                                                      double* partials) {
  __shared__ double scratch[RESSL_WARP];
  int begin, end;
  const int t = block_range(sizes, chunk_start, num_tensors, chunk_size, &begin, &end);
  const float* at = a[t];
  const float* bt = b[t];
  double sa = 0.0, sb = 0.0;
  for (int i = begin + threadIdx.x; i < end; i += blockDim.x) {
    sa += (double)at[i] * (double)at[i];
    sb += (double)bt[i] * (double)bt[i];
  }
  sa = block_sum_f64(sa, scratch);
  sb = block_sum_f64(sb, scratch);
  if (threadIdx.x == 0) {
    partials[2 * blockIdx.x] = sa;
    partials[2 * blockIdx.x + 1] = sb;
  }
}

/**
 * One SGD step (PyTorch semantics, dampening 0) over every tensor, in place on params and bufs.
 * Without LARS (lars_adapt null): d = g + wd[t] p. With LARS (lars_adapt non-null, solo-learn's /
 * apex's rule): a tensor with lars_adapt[t] != 0 and both norms |p|, |g| non-zero (from the norm
 * partials of its chunks, before the step) gets d = r (g + wd[t] p) with the trust ratio
 * r = eta |p| / (|g| + wd[t] |p| + eps) (with lars_clip, r = min(r / lr, 1)); every other tensor
 * gets d = g (no weight decay). Then buf = momentum buf + d; p -= lr (nesterov ? d + momentum buf
 * : buf).
 */
extern "C" __global__ void sgd_update_multi_f32(
    float* const* params, const float* const* grads, float* const* bufs, const int* sizes,
    const int* chunk_start, int num_tensors, int chunk_size, const float* weight_decay,
    const int* lars_adapt, const double* norm_partials, float lr, float momentum, int nesterov,
    float lars_eta, float lars_eps, int lars_clip) {
  __shared__ float factor[2];  // r and the weight decay used
  int begin, end;
  const int t = block_range(sizes, chunk_start, num_tensors, chunk_size, &begin, &end);
  if (threadIdx.x == 0) {
    float r = 1.0f, wd = weight_decay[t];
    if (lars_adapt) {
      wd = 0.0f;  // unless adapted below
      if (lars_adapt[t]) {
        double sp = 0.0, sg = 0.0;  // the tensor's chunks, in order: every block gets the same r
        for (int k = chunk_start[t]; k < chunk_start[t + 1]; k++) {
          sp += norm_partials[2 * k];
          sg += norm_partials[2 * k + 1];
        }
        const double pn = sqrt(sp), gn = sqrt(sg);
        if (pn > 0.0 && gn > 0.0) {
          wd = weight_decay[t];
          double ratio = (double)lars_eta * pn / (gn + (double)wd * pn + (double)lars_eps);
          if (lars_clip) ratio = fmin(ratio / (double)lr, 1.0);
          r = (float)ratio;
        }
      }
    }
    factor[0] = r;
    factor[1] = wd;
  }
  __syncthreads();
  const float r = factor[0], wd = factor[1];
  float* p = params[t];
  const float* g = grads[t];
  float* buf = bufs[t];
  for (int i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const float d = (g[i] + wd * p[i]) * r;
    const float b = momentum * buf[i] + d;
    buf[i] = b;
    p[i] = p[i] - lr * (nesterov ? d + momentum * b : b);
  }
}

/**
 * out[t] = a teacher[t] + b student[t] for every tensor (the EMA with a = m, b = 1 - m, both
 * computed on the host); out[t] may be teacher[t].
 */
extern "C" __global__ void ema_update_multi_f32(const float* const* teacher,
                                                const float* const* student, float* const* out,
                                                const int* sizes, const int* chunk_start,
                                                int num_tensors, int chunk_size, double a,
                                                double b) {
  int begin, end;
  const int t = block_range(sizes, chunk_start, num_tensors, chunk_size, &begin, &end);
  const float* tt = teacher[t];
  const float* st = student[t];
  float* ot = out[t];
  // In f64, rounded once to f32 (as the reference): f32 coefficients would be 1 ulp off.
  for (int i = begin + threadIdx.x; i < end; i += blockDim.x) {
    ot[i] = (float)(a * (double)tt[i] + b * (double)st[i]);
  }
}

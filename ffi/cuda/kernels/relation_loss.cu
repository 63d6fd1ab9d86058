// The fused ReSSL relation loss (RESSL_SPEC.md section 2) over [rows, cols] similarity matrices
// s = q Q^T (student) and t = k Q^T (teacher): p_t = softmax(t / tau_t), log p_s =
// log_softmax(s / tau_s), loss_rows[r] = -sum_j p_t[j] log p_s[j], and, when ds is non-null,
// ds = (p_s - p_t) * grad_scale (grad_scale = 1 / (tau_s B) for the batch-mean loss). Not a kernel
// of the Backend contract: the same result takes softmax, log_softmax, mul, sum_rows and axpby
// launches through the contract; this one reads each matrix twice. One block per row (block a
// multiple of 32, at most 1024; any grid: blocks stride over the rows).
#include "common.cuh"

extern "C" __global__ void relation_loss_f32(const float* s, const float* t, float* loss_rows,
                                             float* ds, int rows, int cols, float inv_tau_s,
                                             float inv_tau_t, float grad_scale) {
  __shared__ float scratch[RESSL_WARP];
  for (int r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* sr = s + r * cols;
    const float* tr = t + r * cols;
    float ms = -INFINITY, mt = -INFINITY;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) {
      ms = fmaxf(ms, sr[j] * inv_tau_s);
      mt = fmaxf(mt, tr[j] * inv_tau_t);
    }
    ms = block_max(ms, scratch);
    mt = block_max(mt, scratch);
    float zs = 0.0f, zt = 0.0f;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) {
      zs += expf(sr[j] * inv_tau_s - ms);
      zt += expf(tr[j] * inv_tau_t - mt);
    }
    zs = block_sum(zs, scratch);
    zt = block_sum(zt, scratch);
    const float shift = ms + logf(zs);
    float loss = 0.0f;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) {
      const float log_ps = sr[j] * inv_tau_s - shift;
      const float pt = expf(tr[j] * inv_tau_t - mt) / zt;
      loss -= pt * log_ps;
      if (ds) ds[r * cols + j] = (expf(log_ps) - pt) * grad_scale;
    }
    loss = block_sum(loss, scratch);
    if (threadIdx.x == 0) loss_rows[r] = loss;
  }
}

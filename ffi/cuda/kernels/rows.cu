// Row-wise kernels on row-major [rows, cols] f32 matrices: add_row_vector, sum_rows, gather_rows,
// softmax, softmax_backward, log_softmax, log_softmax_backward, l2_normalize,
// l2_normalize_backward. The row reductions run one block per row (grid = rows, block a multiple of
// 32, at most 1024) with fixed-tree block sums. Arguments and semantics: README.md.
#include "common.cuh"

/** y[r, j] = x[r, j] + bias[j]. Any 1-D grid and block. */
extern "C" __global__ void add_row_vector_f32(const float* x, const float* bias, float* y, int rows,
                                              int cols) {
  const int n = rows * cols;
  for (int i = grid_start(); i < n; i += grid_stride()) y[i] = x[i] + bias[i % cols];
}

/**
 * out[j] = sum over r of x[r, j]. Block (32, by) with by <= 32; grid ceil(cols / 32) blocks: thread
 * (tx, ty) sums rows ty, ty + by, ... of column blockIdx.x * 32 + tx; row 0 of the block adds the
 * by partial sums in order.
 */
extern "C" __global__ void sum_rows_f32(const float* x, float* out, int rows, int cols) {
  __shared__ float part[RESSL_WARP][RESSL_WARP + 1];
  const int j = blockIdx.x * RESSL_WARP + threadIdx.x;
  float acc = 0.0f;
  if (j < cols) {
    for (int r = threadIdx.y; r < rows; r += blockDim.y) acc += x[r * cols + j];
  }
  part[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && j < cols) {
    float total = 0.0f;
    for (unsigned t = 0; t < blockDim.y; t++) total += part[t][threadIdx.x];
    out[j] = total;
  }
}

/** y[i, :] = x[index[i], :]; an index outside [0, rows) yields a row of NaN. Any 1-D grid. */
extern "C" __global__ void gather_rows_f32(const float* x, const int* index, float* y, int rows,
                                           int cols) {
  const int n = rows * cols;
  for (int i = grid_start(); i < n; i += grid_stride()) {
    const int r = i / cols, j = i - r * cols;
    const int src = index[r];
    y[i] = (src >= 0 && src < rows) ? x[src * cols + j] : NAN;
  }
}

/** Row-wise softmax, max-shifted: y = exp(x - max) / sum(exp(x - max)). One block per row. */
extern "C" __global__ void softmax_f32(const float* x, float* y, int rows, int cols) {
  __shared__ float scratch[RESSL_WARP];
  for (int r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    float m = -INFINITY;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) m = fmaxf(m, xr[j]);
    m = block_max(m, scratch);
    float total = 0.0f;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) total += expf(xr[j] - m);
    total = block_sum(total, scratch);
    for (int j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = expf(xr[j] - m) / total;
  }
}

/** dx = y * (dy - sum(dy * y)) per row. One block per row. */
extern "C" __global__ void softmax_backward_f32(const float* y, const float* dy, float* dx,
                                                int rows, int cols) {
  __shared__ float scratch[RESSL_WARP];
  for (int r = blockIdx.x; r < rows; r += gridDim.x) {
    const int base = r * cols;
    float dot = 0.0f;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) dot += dy[base + j] * y[base + j];
    dot = block_sum(dot, scratch);
    for (int j = threadIdx.x; j < cols; j += blockDim.x) {
      dx[base + j] = y[base + j] * (dy[base + j] - dot);
    }
  }
}

/** Row-wise log-softmax: y = (x - max) - log(sum(exp(x - max))). One block per row. */
extern "C" __global__ void log_softmax_f32(const float* x, float* y, int rows, int cols) {
  __shared__ float scratch[RESSL_WARP];
  for (int r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    float m = -INFINITY;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) m = fmaxf(m, xr[j]);
    m = block_max(m, scratch);
    float total = 0.0f;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) total += expf(xr[j] - m);
    total = block_sum(total, scratch);
    // (x - max) - log(total), not x - (max + log(total)): near a large max the sum would round
    // log(total) away (the result is then off by up to log(total) ~ 1e-5).
    const float lt = logf(total);
    for (int j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = (xr[j] - m) - lt;
  }
}

/** dx = dy - exp(y) * sum(dy) per row. One block per row. */
extern "C" __global__ void log_softmax_backward_f32(const float* y, const float* dy, float* dx,
                                                    int rows, int cols) {
  __shared__ float scratch[RESSL_WARP];
  for (int r = blockIdx.x; r < rows; r += gridDim.x) {
    const int base = r * cols;
    float total = 0.0f;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) total += dy[base + j];
    total = block_sum(total, scratch);
    for (int j = threadIdx.x; j < cols; j += blockDim.x) {
      dx[base + j] = dy[base + j] - expf(y[base + j]) * total;
    }
  }
}

/** Euclidean norm of a row in f64 (all threads of the block get it): f32 squares underflow. */
__device__ inline double row_norm(const float* xr, int cols, double* scratch) {
  double sq = 0.0;
  for (int j = threadIdx.x; j < cols; j += blockDim.x) sq += (double)xr[j] * (double)xr[j];
  return sqrt(block_sum_f64(sq, scratch));
}

/**
 * y = x / max(||x||_2, eps) per row (torch.nn.functional.normalize), in f64 with eps as given (an
 * f64: rounded to f32, eps would move the edge where the gradient switches). One block per row.
 */
extern "C" __global__ void l2_normalize_f32(const float* x, float* y, int rows, int cols,
                                            double eps) {
  __shared__ double scratch[RESSL_WARP];
  for (int r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    const double denom = fmax(row_norm(xr, cols, scratch), eps);
    for (int j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = (float)((double)xr[j] / denom);
  }
}

/**
 * Gradient of l2_normalize: where eps <= norm and norm > 0,
 * dx = dy / norm - x * sum(dy x) / norm^3; otherwise the denominator was the constant eps and
 * dx = dy / eps. In f64 (the norm is compared with eps as the reference does). One block per row.
 */
extern "C" __global__ void l2_normalize_backward_f32(const float* x, const float* dy, float* dx,
                                                     int rows, int cols, double eps) {
  __shared__ double scratch[RESSL_WARP];
  for (int r = blockIdx.x; r < rows; r += gridDim.x) {
    const int base = r * cols;
    const double norm = row_norm(x + base, cols, scratch);
    if (norm >= eps && norm > 0.0) {
      double dot = 0.0;
      for (int j = threadIdx.x; j < cols; j += blockDim.x) {
        dot += (double)dy[base + j] * (double)x[base + j];
      }
      dot = block_sum_f64(dot, scratch);
      const double coef = dot / norm / norm / norm;
      for (int j = threadIdx.x; j < cols; j += blockDim.x) {
        dx[base + j] = (float)((double)dy[base + j] / norm - (double)x[base + j] * coef);
      }
    } else {
      for (int j = threadIdx.x; j < cols; j += blockDim.x) {
        dx[base + j] = (float)((double)dy[base + j] / eps);
      }
    }
  }
}

// Pooling on NCHW f32: max pooling forward/backward with PyTorch's rules (padded positions never
// win, the first maximum in row-major window order takes the gradient, a NaN replaces the current
// maximum), global average pooling forward/backward. Arguments and launch shapes: README.md.
#include "common.cuh"

/**
 * Index within the input plane of the first maximum of window (oh, ow), or -1 when the window holds
 * no input pixel (as the reference: `arg < 0 || v > best || v != v` takes the new value).
 */
__device__ inline int window_argmax(const float* plane, int oh, int ow, int h, int w, int kh,
                                    int kw, int sh, int sw, int ph, int pw) {
  const int h0 = oh * sh - ph, w0 = ow * sw - pw;
  const int a0 = h0 < 0 ? -h0 : 0, a1 = kh < h - h0 ? kh : h - h0;
  const int b0 = w0 < 0 ? -w0 : 0, b1 = kw < w - w0 ? kw : w - w0;
  float best = -INFINITY;
  int arg = -1;
  for (int a = a0; a < a1; a++) {
    const int row = (h0 + a) * w + w0;
    for (int b = b0; b < b1; b++) {
      const float v = plane[row + b];
      if (arg < 0 || v > best || v != v) {
        best = v;
        arg = row + b;
      }
    }
  }
  return arg;
}

/** y = max over each window; one thread per output element (any 1-D grid and block). */
extern "C" __global__ void max_pool2d_forward_f32(const float* x, float* y, int n, int c, int h,
                                                  int w, int kh, int kw, int sh, int sw, int ph,
                                                  int pw, int out_h, int out_w) {
  const int total = n * c * out_h * out_w;
  for (int i = grid_start(); i < total; i += grid_stride()) {
    const int plane = i / (out_h * out_w);
    const int rest = i - plane * out_h * out_w;
    const int oh = rest / out_w, ow = rest - oh * out_w;
    const float* xp = x + plane * h * w;
    const int arg = window_argmax(xp, oh, ow, h, w, kh, kw, sh, sw, ph, pw);
    y[i] = arg < 0 ? -INFINITY : xp[arg];
  }
}

/**
 * dx[p] = sum of dy over the windows whose first maximum is p, in row-major window order; one
 * thread per input element, recomputing the argmax of every window that covers it (no atomics).
 */
extern "C" __global__ void max_pool2d_backward_f32(const float* x, const float* dy, float* dx,
                                                   int n, int c, int h, int w, int kh, int kw,
                                                   int sh, int sw, int ph, int pw, int out_h,
                                                   int out_w) {
  const int total = n * c * h * w;
  for (int i = grid_start(); i < total; i += grid_stride()) {
    const int plane = i / (h * w);
    const int p = i - plane * h * w;
    const int ih = p / w, iw = p - ih * w;
    const float* xp = x + plane * h * w;
    const float* dyp = dy + plane * out_h * out_w;
    // Windows covering row ih: oh * sh - ph <= ih <= oh * sh - ph + kh - 1.
    const int hp = ih + ph, wp = iw + pw;
    const int oh0 = hp - kh + 1 > 0 ? (hp - kh + 1 + sh - 1) / sh : 0;
    const int oh1 = hp / sh < out_h - 1 ? hp / sh : out_h - 1;
    const int ow0 = wp - kw + 1 > 0 ? (wp - kw + 1 + sw - 1) / sw : 0;
    const int ow1 = wp / sw < out_w - 1 ? wp / sw : out_w - 1;
    float acc = 0.0f;
    for (int oh = oh0; oh <= oh1; oh++) {
      for (int ow = ow0; ow <= ow1; ow++) {
        if (window_argmax(xp, oh, ow, h, w, kh, kw, sh, sw, ph, pw) == p) {
          acc += dyp[oh * out_w + ow];
        }
      }
    }
    dx[i] = acc;
  }
}

/**
 * y[plane] = mean of the hw pixels of x[plane], planes = n * c; one warp per plane (block a
 * multiple of 32, any grid: warps stride over the planes).
 */
extern "C" __global__ void global_avg_pool_f32(const float* x, float* y, int planes, int hw) {
  const int lane = threadIdx.x % RESSL_WARP;
  const int warps = grid_stride() / RESSL_WARP;
  // The loop bound is uniform per warp, so every lane reaches the shuffles.
  for (int plane = grid_start() / RESSL_WARP; plane < planes; plane += warps) {
    const float* xp = x + plane * hw;
    float acc = 0.0f;
    for (int p = lane; p < hw; p += RESSL_WARP) acc += xp[p];
    acc = warp_sum(acc);
    if (lane == 0) y[plane] = acc / (float)hw;
  }
}

/** dx[plane, p] = dy[plane] / hw; any 1-D grid and block. */
extern "C" __global__ void global_avg_pool_backward_f32(const float* dy, float* dx, int planes,
                                                        int hw) {
  const int total = planes * hw;
  for (int i = grid_start(); i < total; i += grid_stride()) dx[i] = dy[i / hw] / (float)hw;
}

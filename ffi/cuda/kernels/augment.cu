// The augmentation kernel: one normalised view per image of a u8 NHWC batch, from per-sample
// parameter rows (src/backend/augment_layout.ts), with the arithmetic of src/image/*.ts
// (applyViewParams): crop + antialiased bilinear resize (torchvision/PIL weights), then the steps
// in their order (flip, ColorJitter sub-ops in the row's order, grayscale, Gaussian blur with
// reflect padding), then Normalize. Launch: one block per sample (grid n, or fewer: blocks stride
// over the samples), block a multiple of 32 (at most 1024); `work` holds n * 2 * c * size * size
// floats of scratch. Arguments: README.md.
//
// How it runs: the flip is folded into the resize (a mirror permutes pixels, and every other step
// commutes with it: per-pixel ops, the contrast mean, the symmetric blur with reflect padding).
// The other ops form a list; per-pixel ops fuse into one sweep over the image, and the two ops
// that need the whole image end a sweep: contrast (a block reduction of the grayscale mean, then
// the next sweep blends) and blur (a horizontal pass into scratch, then the next sweep starts with
// the vertical pass). The last sweep writes the normalised output.
#include "common.cuh"

/** Values per parameter row, and the fields used here (augment_layout.ts). */
#define AUG_ROW 16
#define AUG_TOP 0
#define AUG_FLIP 4
#define AUG_JITTER 5
#define AUG_ORDER 6
#define AUG_FACTORS 10
#define AUG_GRAY 14
#define AUG_SIGMA 15
/** Largest blur kernel supported (the shared weight table). */
#define AUG_MAX_BLUR 511

/** Step codes of the `steps` argument: nibble k holds the k-th step, 0 ends the list. */
#define STEP_FLIP 1
#define STEP_JITTER 2
#define STEP_GRAY 3
#define STEP_BLUR 4

enum { OP_BRIGHTNESS, OP_CONTRAST, OP_SATURATION, OP_HUE, OP_GRAYSCALE, OP_BLUR };

struct AugOp {
  int kind;
  float value;
};

/** torchvision's luma weights. */
#define LUMA_R 0.2989f
#define LUMA_G 0.587f
#define LUMA_B 0.114f

__device__ inline float clamp01(float v) { return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v); }

/** The sample's op list (flip excluded: returned in *flip). Every thread builds the same list. */
__device__ inline int build_ops(const float* prm, int steps, int c, AugOp* ops, int* flip) {
  int count = 0;
  *flip = 0;
  for (int k = 0; k < 8; k++) {
    const int step = (steps >> (4 * k)) & 15;
    if (step == 0) break;
    if (step == STEP_FLIP) {
      *flip = prm[AUG_FLIP] != 0.0f;
    } else if (step == STEP_JITTER && prm[AUG_JITTER] != 0.0f) {
      for (int j = 0; j < 4; j++) {
        const int which = (int)prm[AUG_ORDER + j];
        const float f = prm[AUG_FACTORS + which];
        if (f != f) continue;  // NaN: sub-op skipped
        if (c != 3 && (which == OP_SATURATION || which == OP_HUE)) continue;
        ops[count].kind = which;
        ops[count].value = f;
        count++;
      }
    } else if (step == STEP_GRAY && prm[AUG_GRAY] != 0.0f && c == 3) {
      ops[count].kind = OP_GRAYSCALE;
      ops[count].value = 0.0f;
      count++;
    } else if (step == STEP_BLUR && prm[AUG_SIGMA] > 0.0f) {
      ops[count].kind = OP_BLUR;
      ops[count].value = prm[AUG_SIGMA];
      count++;
    }
  }
  return count;
}

/** Antialiased bilinear taps of output i along one axis (resize.ts bilinearCoeffs, in f64). */
struct AxisTaps {
  int start, count;
  double center, inv_scale, inv_total;
};

__device__ inline double triangle(double t) {
  t = t < 0.0 ? -t : t;
  return t < 1.0 ? 1.0 - t : 0.0;
}

__device__ inline AxisTaps axis_taps(int in_size, int out_size, int i) {
  AxisTaps a;
  const double scale = (double)in_size / (double)out_size;
  const double support = scale >= 1.0 ? scale : 1.0;
  a.inv_scale = scale >= 1.0 ? 1.0 / scale : 1.0;
  a.center = scale * (i + 0.5);
  const int lo = (int)(a.center - support + 0.5);  // truncation toward zero, as Math.trunc
  const int hi = (int)(a.center + support + 0.5);
  a.start = lo > 0 ? lo : 0;
  a.count = (hi < in_size ? hi : in_size) - a.start;
  double total = 0.0;
  RESSL_NO_UNROLL
  for (int j = 0; j < a.count; j++) total += triangle((j + a.start - a.center + 0.5) * a.inv_scale);
  a.inv_total = total != 0.0 ? 1.0 / total : 1.0;
  return a;
}

/** Weight of tap j: the f32-stored triangle value over the f64 total (as resize.ts), to f32. */
__device__ inline float axis_weight(const AxisTaps& a, int j) {
  const float w = (float)triangle((j + a.start - a.center + 0.5) * a.inv_scale);
  return (float)((double)w * a.inv_total);
}

/** Resized pixel (y, x) of the crop, channels in v[0..c), scaled to [0, 1]. */
__device__ inline void resize_pixel(const unsigned char* img, int w, int c, const float* prm,
                                    int size, int y, int x, float* v) {
  const int top = (int)prm[AUG_TOP], left = (int)prm[AUG_TOP + 1];
  const int bh = (int)prm[AUG_TOP + 2], bw = (int)prm[AUG_TOP + 3];
  const AxisTaps ty = axis_taps(bh, size, y), tx = axis_taps(bw, size, x);
  float acc[3] = {0.0f, 0.0f, 0.0f};
  RESSL_NO_UNROLL
  for (int ky = 0; ky < ty.count; ky++) {
    const float wy = axis_weight(ty, ky);
    const unsigned char* row = img + ((top + ty.start + ky) * w + left + tx.start) * c;
    float hs[3] = {0.0f, 0.0f, 0.0f};
    RESSL_NO_UNROLL
    for (int kx = 0; kx < tx.count; kx++) {
      const float wx = axis_weight(tx, kx);
      for (int ch = 0; ch < c; ch++) hs[ch] += wx * (float)row[kx * c + ch];
    }
    for (int ch = 0; ch < c; ch++) acc[ch] += wy * hs[ch];
  }
  for (int ch = 0; ch < c; ch++) v[ch] = acc[ch] * (1.0f / 255.0f);
}

__device__ inline float luma(const float* v) {
  return LUMA_R * v[0] + LUMA_G * v[1] + LUMA_B * v[2];
}

/** torchvision's adjust_hue on one RGB pixel (_rgb2hsv, shift, _hsv2rgb). */
__device__ inline void hue_pixel(float* v, float shift) {
  const float r = v[0], g = v[1], b = v[2];
  const float maxc = r > g ? (r > b ? r : b) : (g > b ? g : b);
  const float minc = r < g ? (r < b ? r : b) : (g < b ? g : b);
  const float cr = maxc - minc;
  const bool eqc = cr == 0.0f;
  const float s = eqc ? 0.0f : cr / maxc;
  const float inv = eqc ? 1.0f : 1.0f / cr;
  float hh;
  if (maxc == r) hh = (g - b) * inv;
  else if (maxc == g) hh = 2.0f + (b - r) * inv;
  else hh = 4.0f + (r - g) * inv;
  hh = hh / 6.0f + 1.0f + shift;
  hh -= floorf(hh);
  const float h6 = hh * 6.0f;
  const float fi = floorf(h6);
  const float fr = h6 - fi;
  const float p = clamp01(maxc * (1.0f - s));
  const float q = clamp01(maxc * (1.0f - s * fr));
  const float t = clamp01(maxc * (1.0f - s * (1.0f - fr)));
  switch (((int)fi) % 6) {
    case 0: v[0] = maxc; v[1] = t; v[2] = p; break;
    case 1: v[0] = q; v[1] = maxc; v[2] = p; break;
    case 2: v[0] = p; v[1] = maxc; v[2] = t; break;
    case 3: v[0] = p; v[1] = q; v[2] = maxc; break;
    case 4: v[0] = t; v[1] = p; v[2] = maxc; break;
    default: v[0] = maxc; v[1] = p; v[2] = q; break;
  }
}

/** A per-pixel op (brightness, saturation, hue, grayscale) on one pixel. */
__device__ inline void pixel_op(const AugOp& op, float* v, int c) {
  if (op.kind == OP_BRIGHTNESS) {
    for (int ch = 0; ch < c; ch++) v[ch] = clamp01(op.value * v[ch]);
  } else if (op.kind == OP_SATURATION) {
    const float gray = (1.0f - op.value) * luma(v);
    for (int ch = 0; ch < 3; ch++) v[ch] = clamp01(op.value * v[ch] + gray);
  } else if (op.kind == OP_HUE) {
    hue_pixel(v, op.value);
  } else if (op.kind == OP_GRAYSCALE) {
    const float l = luma(v);
    v[0] = l;
    v[1] = l;
    v[2] = l;
  }
}

/** torch reflect padding index (the edge pixel is not repeated). */
__device__ inline int reflect_index(int i, int n) {
  if (n == 1) return 0;
  const int period = 2 * (n - 1);
  i = ((i % period) + period) % period;
  return i < n ? i : period - i;
}

/** Where a sweep's pixels come from. */
enum { SRC_RESIZE, SRC_CONTRAST, SRC_BLUR };

template <typename T>
__device__ inline void augment_body(const unsigned char* images, const float* params, T* out,
                                    float* work, int n, int h, int w, int c, int size, int steps,
                                    int blur_kernel, const float* mean, const float* inv_std) {
  __shared__ float scratch[RESSL_WARP];
  __shared__ float gk[AUG_MAX_BLUR];
  const int plane = size * size, half = (blur_kernel - 1) / 2;
  for (int sample = blockIdx.x; sample < n; sample += gridDim.x) {
    const float* prm = params + sample * AUG_ROW;
    const unsigned char* img = images + sample * h * w * c;
    float* cur = work + sample * 2 * c * plane;  // the image between sweeps
    float* tmp = cur + c * plane;                // the blur's horizontal pass
    T* dst = out + sample * c * plane;
    if (blur_kernel < 1 || blur_kernel > AUG_MAX_BLUR || blur_kernel % 2 == 0) {
      for (int q = threadIdx.x; q < c * plane; q += blockDim.x) store_f(dst, q, NAN);
      continue;  // unsupported blur kernel: a loud NaN view (the backend checks it first)
    }
    AugOp ops[8];
    int flip;
    const int nops = build_ops(prm, steps, c, ops, &flip);
    int pos = 0, source = SRC_RESIZE;
    float contrast_mean = 0.0f, contrast_factor = 0.0f;
    for (;;) {
      int end = pos;
      while (end < nops && ops[end].kind != OP_CONTRAST && ops[end].kind != OP_BLUR) end++;
      const bool last = end == nops;
      const bool need_mean = !last && ops[end].kind == OP_CONTRAST;
      float gray_sum = 0.0f;
      for (int p = threadIdx.x; p < plane; p += blockDim.x) {
        const int y = p / size, x = p - y * size;
        float v[3] = {0.0f, 0.0f, 0.0f};
        if (source == SRC_RESIZE) {
          resize_pixel(img, w, c, prm, size, y, flip ? size - 1 - x : x, v);
        } else if (source == SRC_CONTRAST) {
          const float off = (1.0f - contrast_factor) * contrast_mean;
          for (int ch = 0; ch < c; ch++) {
            v[ch] = clamp01(contrast_factor * cur[ch * plane + p] + off);
          }
        } else {  // SRC_BLUR: vertical pass over the horizontal result
          for (int ch = 0; ch < c; ch++) {
            const float* tp = tmp + ch * plane + x;
            float acc = gk[0] * tp[reflect_index(y - half, size) * size];
            RESSL_NO_UNROLL
            for (int t = 1; t < blur_kernel; t++) {
              acc += gk[t] * tp[reflect_index(y + t - half, size) * size];
            }
            v[ch] = acc;
          }
        }
        for (int k = pos; k < end; k++) pixel_op(ops[k], v, c);
        if (need_mean) gray_sum += c == 3 ? luma(v) : v[0];
        for (int ch = 0; ch < c; ch++) {
          if (last) store_f(dst, ch * plane + p, (v[ch] - mean[ch]) * inv_std[ch]);
          else cur[ch * plane + p] = v[ch];
        }
      }
      if (last) break;
      __syncthreads();  // cur is complete
      if (need_mean) {
        contrast_mean = block_sum(gray_sum, scratch) / (float)plane;
        contrast_factor = ops[end].value;
        source = SRC_CONTRAST;
      } else {  // blur: the normalised Gaussian (blur.ts gaussianKernel1d), then the row pass
        if (threadIdx.x == 0) {
          const double sigma = ops[end].value;
          double sum = 0.0;
          for (int i = 0; i < blur_kernel; i++) {
            const double xv = (double)(i - half) / sigma;
            gk[i] = (float)exp(-0.5 * xv * xv);
            sum += gk[i];
          }
          for (int i = 0; i < blur_kernel; i++) gk[i] = (float)(gk[i] / sum);
        }
        __syncthreads();
        for (int q = threadIdx.x; q < c * plane; q += blockDim.x) {
          const int row0 = q - q % size, x = q - row0;
          float acc = 0.0f;
          RESSL_NO_UNROLL
          for (int t = 0; t < blur_kernel; t++) {
            acc += gk[t] * cur[row0 + reflect_index(x + t - half, size)];
          }
          tmp[q] = acc;
        }
        __syncthreads();  // tmp is complete
        source = SRC_BLUR;
      }
      pos = end + 1;
    }
    __syncthreads();  // shared tables are reused by the next sample
  }
}

// At most 1024 threads per block on every target (sm_80 would otherwise use 80 registers).
extern "C" __global__ void __launch_bounds__(RESSL_MAX_BLOCK)
    augment_views_f32(const unsigned char* images, const float* params, float* out, float* work,
                      int n, int h, int w, int c, int size, int steps, int blur_kernel, float mean0,
                      float mean1, float mean2, float std0, float std1, float std2) {
  const float mean[3] = {mean0, mean1, mean2};
  const float inv_std[3] = {1.0f / std0, 1.0f / std1, 1.0f / std2};
  augment_body(images, params, out, work, n, h, w, c, size, steps, blur_kernel, mean, inv_std);
}

extern "C" __global__ void __launch_bounds__(RESSL_MAX_BLOCK)
    augment_views_bf16(const unsigned char* images, const float* params, bf16_t* out, float* work,
                       int n, int h, int w, int c, int size, int steps, int blur_kernel,
                       float mean0, float mean1, float mean2, float std0, float std1, float std2) {
  const float mean[3] = {mean0, mean1, mean2};
  const float inv_std[3] = {1.0f / std0, 1.0f / std1, 1.0f / std2};
  augment_body(images, params, out, work, n, h, w, c, size, steps, blur_kernel, mean, inv_std);
}

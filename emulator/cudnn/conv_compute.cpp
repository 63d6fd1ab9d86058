/*
 * The cuDNN stand-in's convolutions as host loops, one image at a time: the input is unpacked
 * to f32 (from bf16, or rounded to TF32 where tensor-op math is allowed), lowered to columns
 * (im2col), multiplied with the filter by the shared f32 gemm (common/gemm.cpp), and blended into
 * the output as alpha * result + beta * output (beta == 0 does not read the output).
 *
 * Algorithms that need a workspace really use it (so a too-small or overlapping workspace shows):
 * forward IMPLICIT_PRECOMP_GEMM keeps its table of input offsets there, forward GEMM and
 * backward-data/filter ALGO_1 their column matrices; the others use host scratch memory.
 */
#include <chrono>
#include <stdio.h>
#include <string.h>

#include <vector>

#include "../common/bf16.h"
#include "../common/gemm.h"
#include "../include/ressl_emu_api.h"
#include "conv.h"

namespace emu_cudnn {
namespace {

thread_local std::vector<float> t_in, t_filter, t_filter_t, t_col, t_acc, t_dy, t_dw;

float load(const void* base, bool bf16, long i) {
  return bf16 ? ressl_emu_bf16_to_f32(((const uint16_t*)base)[i]) : ((const float*)base)[i];
}

void store(void* base, bool bf16, long i, float v) {
  if (bf16) ((uint16_t*)base)[i] = ressl_emu_f32_to_bf16_rn(v);
  else ((float*)base)[i] = v;
}

float prepare(float v, const ConvProblem& pb) { return pb.tf32 ? ressl_emu_round_tf32(v) : v; }

long extent(const int* dims, const long* strides) {
  long e = 1;
  for (int i = 0; i < 4; ++i) e += (long)(dims[i] - 1) * strides[i];
  return e;
}

bool check(const ConvJob& j, const char* name, const void* p, long elements, size_t es) {
  char msg[300];
  if ((uintptr_t)p % es != 0) {
    snprintf(msg, sizeof msg, "%s: %s (%p) is not aligned to its %zu-byte elements", j.what, name, p, es);
    ressl_emu_fault(CUDA_ERROR_MISALIGNED_ADDRESS, msg);
    return false;
  }
  if (!ressl_emu_device_range_ok(p, (size_t)elements * es, 0)) {
    snprintf(msg, sizeof msg, "%s: %s [%p, +%ld bytes) is not inside device memory", j.what, name, p,
             elements * (long)es);
    ressl_emu_fault(CUDA_ERROR_ILLEGAL_ADDRESS, msg);
    return false;
  }
  return true;
}

/* Image b of a (n, c, h, w)-strided tensor, as contiguous f32 [c][h][w]. */
void unpack_image(const void* t, const long* st, int b, int c, int h, int w, const ConvProblem& pb,
                  std::vector<float>* out) {
  out->resize((size_t)c * h * w);
  float* o = out->data();
  for (int ci = 0; ci < c; ++ci)
    for (int y = 0; y < h; ++y) {
      long base = b * st[0] + ci * st[1] + y * st[2];
      for (int x = 0; x < w; ++x) *o++ = prepare(load(t, pb.bf16, base + x * st[3]), pb);
    }
}

/* The filter as f32 [k][c*r*s], flipped for CUDNN_CONVOLUTION; optionally also transposed. */
void unpack_filter(const void* wt, const ConvProblem& pb, std::vector<float>* f, std::vector<float>* ft) {
  long crs = (long)pb.c * pb.r * pb.s;
  f->resize((size_t)pb.k * crs);
  for (int k = 0; k < pb.k; ++k)
    for (int c = 0; c < pb.c; ++c)
      for (int r = 0; r < pb.r; ++r)
        for (int s = 0; s < pb.s; ++s) {
          int rr = pb.flip ? pb.r - 1 - r : r, ss = pb.flip ? pb.s - 1 - s : s;
          long src = k * pb.ws[0] + c * pb.ws[1] + rr * pb.ws[2] + ss * pb.ws[3];
          (*f)[k * crs + (c * pb.r + r) * pb.s + s] = prepare(load(wt, pb.bf16, src), pb);
        }
  if (!ft) return;
  ft->resize(f->size());
  for (int k = 0; k < pb.k; ++k)
    for (long i = 0; i < crs; ++i) (*ft)[i * pb.k + k] = (*f)[k * crs + i];
}

/* Output columns q whose input column q*stride - pad + s lies inside [0, w). */
void valid_q(const ConvProblem& pb, int s, int* lo, int* hi) {
  int off = s - pb.pad_w;
  int a = off >= 0 ? 0 : (-off + pb.stride_w - 1) / pb.stride_w;
  int b = (pb.w - 1 - off) < 0 ? 0 : (pb.w - 1 - off) / pb.stride_w + 1;
  *lo = a < pb.q ? a : pb.q;
  *hi = b < pb.q ? b : pb.q;
  if (*hi < *lo) *hi = *lo;
}

/* col[(c*r + r)*s + s][p*q + q] = x[c][p*stride - pad + r][q*stride - pad + s] (0 outside).
 * `offsets` (PRECOMP) holds the input offset c*h*w + r*w + s of every row. */
void im2col(const float* x, const ConvProblem& pb, const int* offsets, float* col) {
  long pq = (long)pb.p * pb.q;
  for (int c = 0; c < pb.c; ++c)
    for (int r = 0; r < pb.r; ++r)
      for (int s = 0; s < pb.s; ++s) {
        long row_index = (c * pb.r + r) * pb.s + s;
        float* row = col + row_index * pq;
        long tap = offsets ? offsets[row_index] : (long)c * pb.h * pb.w + r * pb.w + s;
        int lo, hi;
        valid_q(pb, s, &lo, &hi);
        for (int p = 0; p < pb.p; ++p) {
          float* o = row + (long)p * pb.q;
          int ih = p * pb.stride_h - pb.pad_h + r;
          if (ih < 0 || ih >= pb.h) {
            memset(o, 0, sizeof(float) * pb.q);
            continue;
          }
          const float* in = x + tap + (long)(p * pb.stride_h - pb.pad_h) * pb.w - pb.pad_w;
          for (int q = 0; q < lo; ++q) o[q] = 0.0f;
          for (int q = lo; q < hi; ++q) o[q] = in[(long)q * pb.stride_w];
          for (int q = hi; q < pb.q; ++q) o[q] = 0.0f;
        }
      }
}

/* dx[c][ih][iw] += dcol[(c*r + r)*s + s][p*q + q] (the adjoint of im2col). */
void col2im(const float* col, const ConvProblem& pb, float* dx) {
  long pq = (long)pb.p * pb.q;
  for (int c = 0; c < pb.c; ++c)
    for (int r = 0; r < pb.r; ++r)
      for (int s = 0; s < pb.s; ++s) {
        const float* row = col + ((long)(c * pb.r + r) * pb.s + s) * pq;
        int lo, hi;
        valid_q(pb, s, &lo, &hi);
        for (int p = 0; p < pb.p; ++p) {
          int ih = p * pb.stride_h - pb.pad_h + r;
          if (ih < 0 || ih >= pb.h) continue;
          float* out = dx + ((long)c * pb.h + ih) * pb.w - pb.pad_w + s;
          const float* in = row + (long)p * pb.q;
          for (int q = lo; q < hi; ++q) out[(long)q * pb.stride_w] += in[q];
        }
      }
}

/* out[b] = alpha * acc + beta * out[b] for a (n, c, h, w)-strided tensor image. */
void blend_image(void* out, const long* st, int b, int c, int h, int w, const float* acc, float alpha,
                 float beta, bool bf16) {
  for (int ci = 0; ci < c; ++ci)
    for (int y = 0; y < h; ++y) {
      long base = b * st[0] + ci * st[1] + y * st[2];
      const float* a = acc + ((long)ci * h + y) * w;
      for (int x = 0; x < w; ++x) {
        long i = base + x * st[3];
        float v = alpha * a[x];
        if (beta != 0.0f) v += beta * load(out, bf16, i);
        store(out, bf16, i, v);
      }
    }
}

void forward(const ConvJob& j, const ConvProblem& pb) {
  long pq = (long)pb.p * pb.q, crs = (long)pb.c * pb.r * pb.s;
  unpack_filter(j.in2, pb, &t_filter, nullptr);
  int* offsets = nullptr;
  float* col;
  if (j.algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM) {
    offsets = (int*)j.workspace;
    for (int c = 0; c < pb.c; ++c)
      for (int r = 0; r < pb.r; ++r)
        for (int s = 0; s < pb.s; ++s) offsets[(c * pb.r + r) * pb.s + s] = (c * pb.h + r) * pb.w + s;
  }
  if (j.algo == CUDNN_CONVOLUTION_FWD_ALGO_GEMM) {
    col = (float*)j.workspace;
  } else {
    t_col.resize((size_t)crs * pq);
    col = t_col.data();
  }
  for (int b = 0; b < pb.n; ++b) {
    unpack_image(j.in1, pb.xs, b, pb.c, pb.h, pb.w, pb, &t_in);
    im2col(t_in.data(), pb, offsets, col);
    t_acc.assign((size_t)pb.k * pq, 0.0f);
    emu::gemm_accumulate(pq, pb.k, crs, col, pq, t_filter.data(), crs, t_acc.data(), pq);
    blend_image(j.out, pb.ys, b, pb.k, pb.p, pb.q, t_acc.data(), j.alpha, j.beta, pb.bf16);
  }
}

void backward_data(const ConvJob& j, const ConvProblem& pb) {
  long pq = (long)pb.p * pb.q, crs = (long)pb.c * pb.r * pb.s;
  unpack_filter(j.in1, pb, &t_filter, &t_filter_t);
  float* dcol;
  if (j.algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1) {
    dcol = (float*)j.workspace;
  } else {
    t_col.resize((size_t)crs * pq);
    dcol = t_col.data();
  }
  for (int b = 0; b < pb.n; ++b) {
    unpack_image(j.in2, pb.ys, b, pb.k, pb.p, pb.q, pb, &t_dy);
    memset(dcol, 0, sizeof(float) * crs * pq);
    emu::gemm_accumulate(pq, crs, pb.k, t_dy.data(), pq, t_filter_t.data(), pb.k, dcol, pq);
    t_acc.assign((size_t)pb.c * pb.h * pb.w, 0.0f);
    col2im(dcol, pb, t_acc.data());
    blend_image(j.out, pb.xs, b, pb.c, pb.h, pb.w, t_acc.data(), j.alpha, j.beta, pb.bf16);
  }
}

/* dW (k x crs) = sum over images of dy (k x pq) . col^T (pq x crs), computed as its transpose
 * in column-major terms: dWt (k rows, crs columns) += dyT (k x pq) . col (pq x crs). */
void backward_filter(const ConvJob& j, const ConvProblem& pb) {
  long pq = (long)pb.p * pb.q, crs = (long)pb.c * pb.r * pb.s;
  float* col;
  if (j.algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1) {
    col = (float*)j.workspace;
  } else {
    t_col.resize((size_t)crs * pq);
    col = t_col.data();
  }
  t_dw.assign((size_t)pb.k * crs, 0.0f);
  t_filter_t.resize((size_t)pq * pb.k);
  for (int b = 0; b < pb.n; ++b) {
    unpack_image(j.in1, pb.xs, b, pb.c, pb.h, pb.w, pb, &t_in);
    unpack_image(j.in2, pb.ys, b, pb.k, pb.p, pb.q, pb, &t_dy);
    im2col(t_in.data(), pb, nullptr, col);
    float* dyt = t_filter_t.data();  // dy transposed: [pq][k]
    for (int k = 0; k < pb.k; ++k)
      for (long i = 0; i < pq; ++i) dyt[i * pb.k + k] = t_dy[k * pq + i];
    emu::gemm_accumulate(pb.k, crs, pq, dyt, pb.k, col, pq, t_dw.data(), pb.k);
  }
  for (int k = 0; k < pb.k; ++k)
    for (int c = 0; c < pb.c; ++c)
      for (int r = 0; r < pb.r; ++r)
        for (int s = 0; s < pb.s; ++s) {
          int rr = pb.flip ? pb.r - 1 - r : r, ss = pb.flip ? pb.s - 1 - s : s;
          long dst = k * pb.ws[0] + c * pb.ws[1] + rr * pb.ws[2] + ss * pb.ws[3];
          long crs_index = (c * pb.r + r) * pb.s + s;
          float v = j.alpha * t_dw[crs_index * pb.k + k];
          if (j.beta != 0.0f) v += j.beta * load(j.out, pb.bf16, dst);
          store(j.out, pb.bf16, dst, v);
        }
}

}  // namespace

long long workspace_for(Dir dir, int algo, const ConvProblem& pb) {
  long long crs = (long long)pb.c * pb.r * pb.s, pq = (long long)pb.p * pb.q;
  switch (dir) {
    case Dir::Forward:
      if (algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM) return 0;
      if (algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM) return crs * 4;
      if (algo == CUDNN_CONVOLUTION_FWD_ALGO_GEMM) return crs * pq * 4;
      return -1;
    case Dir::BackwardData:
      if (algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0) return 0;
      if (algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1) return crs * pq * 4;
      return -1;
    case Dir::BackwardFilter:
      if (algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 || algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3)
        return 0;
      if (algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1) return crs * pq * 4;
      return -1;
  }
  return -1;
}

void run_conv(void* p) {
  const ConvJob& j = *(const ConvJob*)p;
  const ConvProblem& pb = j.pb;
  auto t0 = std::chrono::steady_clock::now();
  size_t es = pb.bf16 ? 2 : 4;
  int xd[4] = {pb.n, pb.c, pb.h, pb.w}, yd[4] = {pb.n, pb.k, pb.p, pb.q};
  long x_elems = extent(xd, pb.xs), y_elems = extent(yd, pb.ys);
  long w_elems = (long)pb.k * pb.c * pb.r * pb.s;
  const long sizes[3][3] = {{x_elems, w_elems, y_elems}, {w_elems, y_elems, x_elems},
                            {x_elems, y_elems, w_elems}};
  const char* names[3][3] = {{"x", "w", "y"}, {"w", "dy", "dx"}, {"x", "dy", "dw"}};
  int d = (int)j.dir;
  if (!check(j, names[d][0], j.in1, sizes[d][0], es) || !check(j, names[d][1], j.in2, sizes[d][1], es) ||
      !check(j, names[d][2], j.out, sizes[d][2], es))
    return;
  if (j.workspace_bytes > 0 && !check(j, "workSpace", j.workspace, (long)(j.workspace_bytes / 4), 4)) return;
  if (j.dir == Dir::Forward) forward(j, pb);
  else if (j.dir == Dir::BackwardData) backward_data(j, pb);
  else backward_filter(j, pb);
  if (j.elapsed_ms)
    *j.elapsed_ms = std::chrono::duration<float, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace emu_cudnn

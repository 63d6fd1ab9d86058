/*
 * The cuDNN stand-in's convolution entry points: output shape and the forward / backward-data /
 * backward-filter convolutions queued on the handle's stream (algorithm queries and workspace
 * sizes are in conv_algos.cpp).
 *
 * Checked at the call (the cases the documentation lists): BAD_PARAM for null arguments,
 * descriptors of different ranks or data types, channel counts that disagree, an output shape
 * that is not the convolution's, a filter larger than the padded input, or a workspace smaller
 * than the algorithm needs; NOT_SUPPORTED for what the stand-in does not compute (other than 2-D
 * NCHW-indexed f32 or bf16-with-f32-compute convolutions with groups 1 and dilation 1, negative
 * strides, algorithms it does not implement).
 */
#include <stdlib.h>
#include <string.h>

#include "../include/ressl_emu_api.h"
#include "conv.h"

namespace emu_cudnn {
namespace {

bool tf32_allowed(cudnnMathType_t m) {
  const char* v = getenv("NVIDIA_TF32_OVERRIDE");
  return m != CUDNN_FMA_MATH && !(v && strcmp(v, "0") == 0);
}

/* Filter element strides (k, c, r, s) for its memory format. */
void filter_strides(const FilterDesc& f, long* ws) {
  long k = f.dims[0], c = f.dims[1], r = f.dims[2], s = f.dims[3];
  (void)k;
  if (f.format == CUDNN_TENSOR_NHWC) {
    ws[0] = r * s * c, ws[1] = 1, ws[2] = s * c, ws[3] = c;
  } else {
    ws[0] = c * r * s, ws[1] = r * s, ws[2] = s, ws[3] = 1;
  }
}

/* Output spatial size, or -1 when the dilated filter does not fit the padded input. */
int out_size(int in, int pad, int filter, int dilation, int stride) {
  int span = in + 2 * pad - (dilation * (filter - 1) + 1);
  return span < 0 ? -1 : span / stride + 1;
}

}  // namespace

/* Checks the descriptors the way every convolution call does and fills the problem. `x` is the
 * input-image tensor (x or dx), `y` the output-image tensor (y or dy). */
cudnnStatus_t build(cudnnTensorDescriptor_t xd, cudnnFilterDescriptor_t wd, cudnnConvolutionDescriptor_t cd,
                    cudnnTensorDescriptor_t yd, ConvProblem* pb) {
  TensorDesc* x = tensor_of(xd);
  TensorDesc* y = tensor_of(yd);
  FilterDesc* w = filter_of(wd);
  ConvDesc* c = conv_of(cd);
  if (!x || !y || !w || !c) return fail(CUDNN_STATUS_BAD_PARAM, "a descriptor is null or destroyed");
  if (x->nb < 3 || x->nb != y->nb || x->nb != w->nb || x->nb != c->spatial + 2)
    return fail(CUDNN_STATUS_BAD_PARAM,
                "descriptor ranks differ: image tensor %d, other tensor %d, filter %d, convolution "
                "%d spatial dimensions",
                x->nb, y->nb, w->nb, c->spatial);
  if (x->dtype != w->dtype || x->dtype != y->dtype)
    return fail(CUDNN_STATUS_BAD_PARAM, "data types differ: tensors %d and %d, filter %d", x->dtype,
                y->dtype, w->dtype);
  if (x->dims[1] != w->dims[1] * c->groups || w->dims[0] % c->groups != 0)
    return fail(CUDNN_STATUS_BAD_PARAM, "%d input channels, filter of %d channels x %d groups",
                x->dims[1], w->dims[1], c->groups);
  if (x->nb != 4) return fail(CUDNN_STATUS_NOT_SUPPORTED, "the stand-in computes 2-D convolutions only");
  int p = out_size(x->dims[2], c->pad[0], w->dims[2], c->dilation[0], c->stride[0]);
  int q = out_size(x->dims[3], c->pad[1], w->dims[3], c->dilation[1], c->stride[1]);
  if (p < 0 || q < 0)
    return fail(CUDNN_STATUS_BAD_PARAM, "the %dx%d filter is larger than the padded %dx%d input",
                w->dims[2], w->dims[3], x->dims[2], x->dims[3]);
  if (y->dims[0] != x->dims[0] || y->dims[1] != w->dims[0] || y->dims[2] != p || y->dims[3] != q)
    return fail(CUDNN_STATUS_BAD_PARAM, "the output tensor is %dx%dx%dx%d, the convolution gives %dx%dx%dx%d",
                y->dims[0], y->dims[1], y->dims[2], y->dims[3], x->dims[0], w->dims[0], p, q);
  bool f32 = x->dtype == CUDNN_DATA_FLOAT, bf16 = x->dtype == CUDNN_DATA_BFLOAT16;
  if (!(f32 || bf16) || c->compute != CUDNN_DATA_FLOAT)
    return fail(CUDNN_STATUS_NOT_SUPPORTED,
                "the stand-in computes f32 or bf16 data with f32 compute (data %d, compute %d)", x->dtype,
                c->compute);
  if (c->groups != 1 || c->dilation[0] != 1 || c->dilation[1] != 1)
    return fail(CUDNN_STATUS_NOT_SUPPORTED, "the stand-in computes groups 1 and dilation 1 only");
  for (int i = 0; i < 4; ++i)
    if (x->strides[i] < 0 || y->strides[i] < 0)
      return fail(CUDNN_STATUS_NOT_SUPPORTED, "negative tensor strides");
  if (w->format == CUDNN_TENSOR_NCHW_VECT_C)
    return fail(CUDNN_STATUS_NOT_SUPPORTED, "vectorised filter format");
  ConvProblem& b = *pb;
  b.n = x->dims[0], b.c = x->dims[1], b.h = x->dims[2], b.w = x->dims[3];
  b.k = w->dims[0], b.r = w->dims[2], b.s = w->dims[3], b.p = p, b.q = q;
  b.pad_h = c->pad[0], b.pad_w = c->pad[1], b.stride_h = c->stride[0], b.stride_w = c->stride[1];
  b.flip = c->mode == CUDNN_CONVOLUTION;
  b.bf16 = bf16;
  b.tf32 = f32 && tf32_allowed(c->math);
  for (int i = 0; i < 4; ++i) b.xs[i] = x->strides[i], b.ys[i] = y->strides[i];
  filter_strides(*w, b.ws);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t submit(Dir d, const char* what, cudnnHandle_t handle, const void* alpha, const void* beta,
                     cudnnTensorDescriptor_t xd, cudnnFilterDescriptor_t wd, cudnnConvolutionDescriptor_t cd,
                     cudnnTensorDescriptor_t yd, int algo, const void* in1, const void* in2, void* out,
                     void* workspace, size_t workspace_bytes, float* elapsed) {
  Handle* h = handle_of(handle);
  if (!h || !alpha || !beta || !in1 || !in2 || !out) return CUDNN_STATUS_BAD_PARAM;
  ConvProblem pb;
  if (cudnnStatus_t st = build(xd, wd, cd, yd, &pb)) return st;
  long long need = workspace_for(d, algo, pb);
  if (need < 0) return fail(CUDNN_STATUS_NOT_SUPPORTED, "%s: algorithm %d is not emulated", what, algo);
  if ((size_t)need > workspace_bytes || (need > 0 && !workspace))
    return fail(CUDNN_STATUS_BAD_PARAM, "%s: algorithm %d needs a %lld-byte workspace, got %zu bytes at %p",
                what, algo, need, workspace_bytes, workspace);
  ConvJob* job = new ConvJob{d, pb, algo, in1, in2, out, *(const float*)alpha, *(const float*)beta,
                             workspace, (size_t)need, what, elapsed};
  int r = ressl_emu_enqueue_host((CUstream)h->stream, run_conv, job, [](void* p) { delete (ConvJob*)p; },
                                 what);
  return r == CUDA_SUCCESS ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_EXECUTION_FAILED;
}

}  // namespace emu_cudnn


using namespace emu_cudnn;

/* Writes the output dimensions one by one, as the real library does: a spatial dimension that
 * does not fit fails the call after the earlier dimensions were written. */
static cudnnStatus_t output_dims(const cudnnConvolutionDescriptor_t cd, const cudnnTensorDescriptor_t xd,
                                 const cudnnFilterDescriptor_t wd, int nbDims, int* const* out) {
  TensorDesc* x = tensor_of(xd);
  FilterDesc* w = filter_of(wd);
  ConvDesc* c = conv_of(cd);
  if (!x || !w || !c) return fail(CUDNN_STATUS_BAD_PARAM, "a descriptor is null or destroyed");
  if (x->nb < 3 || x->nb != w->nb || x->nb != c->spatial + 2 || nbDims != x->nb)
    return fail(CUDNN_STATUS_BAD_PARAM, "ranks differ: tensor %d, filter %d, convolution %d + 2, asked %d",
                x->nb, w->nb, c->spatial, nbDims);
  if (x->dims[1] != w->dims[1] * c->groups)
    return fail(CUDNN_STATUS_BAD_PARAM, "%d input channels, filter of %d channels x %d groups", x->dims[1],
                w->dims[1], c->groups);
  *out[0] = x->dims[0];
  *out[1] = w->dims[0];
  for (int i = 0; i < c->spatial; ++i) {
    int o = out_size(x->dims[i + 2], c->pad[i], w->dims[i + 2], c->dilation[i], c->stride[i]);
    if (o < 0)
      return fail(CUDNN_STATUS_BAD_PARAM, "spatial dimension %d: the filter is larger than the padded input", i);
    *out[i + 2] = o;
  }
  return CUDNN_STATUS_SUCCESS;
}

CUDNN_EXPORT cudnnStatus_t cudnnGetConvolutionNdForwardOutputDim(const cudnnConvolutionDescriptor_t cd,
                                                                 const cudnnTensorDescriptor_t xd,
                                                                 const cudnnFilterDescriptor_t wd,
                                                                 int nbDims, int tensorOuputDimA[]) {
  if (!tensorOuputDimA || nbDims < 0 || nbDims > CUDNN_DIM_MAX) return CUDNN_STATUS_BAD_PARAM;
  int* out[CUDNN_DIM_MAX];
  for (int i = 0; i < nbDims; ++i) out[i] = &tensorOuputDimA[i];
  return output_dims(cd, xd, wd, nbDims, out);
}

CUDNN_EXPORT cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(const cudnnConvolutionDescriptor_t cd,
                                                                 const cudnnTensorDescriptor_t xd,
                                                                 const cudnnFilterDescriptor_t wd,
                                                                 int* n, int* c, int* h, int* w) {
  if (!n || !c || !h || !w) return CUDNN_STATUS_BAD_PARAM;
  int* out[4] = {n, c, h, w};
  return output_dims(cd, xd, wd, 4, out);
}

CUDNN_EXPORT cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void* alpha,
                                                   const cudnnTensorDescriptor_t xDesc, const void* x,
                                                   const cudnnFilterDescriptor_t wDesc, const void* w,
                                                   const cudnnConvolutionDescriptor_t convDesc,
                                                   cudnnConvolutionFwdAlgo_t algo, void* workSpace,
                                                   size_t workSpaceSizeInBytes, const void* beta,
                                                   const cudnnTensorDescriptor_t yDesc, void* y) {
  return submit(Dir::Forward, "cudnnConvolutionForward", handle, alpha, beta, xDesc, wDesc, convDesc, yDesc,
                algo, x, w, y, workSpace, workSpaceSizeInBytes, nullptr);
}

CUDNN_EXPORT cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t handle, const void* alpha,
                                                        const cudnnFilterDescriptor_t wDesc, const void* w,
                                                        const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                                        const cudnnConvolutionDescriptor_t convDesc,
                                                        cudnnConvolutionBwdDataAlgo_t algo, void* workSpace,
                                                        size_t workSpaceSizeInBytes, const void* beta,
                                                        const cudnnTensorDescriptor_t dxDesc, void* dx) {
  return submit(Dir::BackwardData, "cudnnConvolutionBackwardData", handle, alpha, beta, dxDesc, wDesc,
                convDesc, dyDesc, algo, w, dy, dx, workSpace, workSpaceSizeInBytes, nullptr);
}

CUDNN_EXPORT cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void* alpha,
                                                          const cudnnTensorDescriptor_t xDesc, const void* x,
                                                          const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                                          const cudnnConvolutionDescriptor_t convDesc,
                                                          cudnnConvolutionBwdFilterAlgo_t algo, void* workSpace,
                                                          size_t workSpaceSizeInBytes, const void* beta,
                                                          const cudnnFilterDescriptor_t dwDesc, void* dw) {
  return submit(Dir::BackwardFilter, "cudnnConvolutionBackwardFilter", handle, alpha, beta, xDesc, dwDesc,
                convDesc, dyDesc, algo, x, dy, dw, workSpace, workSpaceSizeInBytes, nullptr);
}


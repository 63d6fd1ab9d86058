/*
 * Tensor, filter and convolution descriptors of the legacy cuDNN API, with the validation the
 * real libcudnn 9 performs (its answers were recorded by calling it without a GPU, see
 * tests/emulator/cudnn_descriptors_test.ts): BAD_PARAM for a null descriptor, non-positive
 * dimensions or strides, unknown enums; NOT_SUPPORTED for more than CUDNN_DIM_MAX dimensions or a
 * tensor spanning more than 2^31-1 elements.
 */
#include <limits.h>

#include <mutex>
#include <set>

#include "desc.h"

namespace emu_cudnn {
namespace {

constexpr uint32_t kTensorMagic = 0x54454e53, kFilterMagic = 0x46494c54, kConvMagic = 0x434f4e56;
std::mutex g_mu;
std::set<void*> g_live;

template <typename T>
T* live(void* p, uint32_t magic) {
  std::lock_guard<std::mutex> lock(g_mu);
  return p && g_live.count(p) && ((T*)p)->magic == magic ? (T*)p : nullptr;
}

template <typename T>
cudnnStatus_t create(T** out, uint32_t magic) {
  if (!out) return CUDNN_STATUS_BAD_PARAM;
  T* d = new T();
  d->magic = magic;
  std::lock_guard<std::mutex> lock(g_mu);
  g_live.insert(d);
  *out = d;
  return CUDNN_STATUS_SUCCESS;
}

template <typename T>
cudnnStatus_t destroy(void* p, uint32_t magic) {
  if (!p) return CUDNN_STATUS_SUCCESS;
  T* d = live<T>(p, magic);
  if (!d) return CUDNN_STATUS_BAD_PARAM;
  std::lock_guard<std::mutex> lock(g_mu);
  g_live.erase(p);
  d->magic = 0;
  delete d;
  return CUDNN_STATUS_SUCCESS;
}

/* Data types a legacy tensor descriptor accepts (the real library refuses 18 and above). */
bool valid_dtype(cudnnDataType_t t) { return (int)t >= 0 && (int)t <= CUDNN_DATA_INT4; }
bool vector_dtype(cudnnDataType_t t) {
  return t == CUDNN_DATA_INT8x4 || t == CUDNN_DATA_UINT8x4 || t == CUDNN_DATA_INT8x32;
}
bool valid_format(cudnnTensorFormat_t f) {
  return f == CUDNN_TENSOR_NCHW || f == CUDNN_TENSOR_NHWC || f == CUDNN_TENSOR_NCHW_VECT_C;
}

/* Packed strides for dims in NCHW (or NHWC: channels innermost) order. */
void packed_strides(const int* dims, int nb, bool channels_last, int* strides) {
  if (!channels_last) {
    long s = 1;
    for (int i = nb - 1; i >= 0; --i) strides[i] = (int)s, s *= dims[i];
    return;
  }
  long s = 1;
  strides[1] = 1;
  s = dims[1];
  for (int i = nb - 1; i >= 2; --i) strides[i] = (int)s, s *= dims[i];
  strides[0] = (int)s;
}

cudnnStatus_t set_tensor(TensorDesc* d, cudnnDataType_t t, int nb, const int* dims, const int* strides) {
  if (!d || !dims || !strides) return CUDNN_STATUS_BAD_PARAM;
  if (nb > CUDNN_DIM_MAX) return CUDNN_STATUS_NOT_SUPPORTED;
  if (nb < 2 || !valid_dtype(t)) return CUDNN_STATUS_BAD_PARAM;
  long long extent = 1;
  for (int i = 0; i < nb; ++i) {
    if (dims[i] <= 0 || strides[i] == 0) return CUDNN_STATUS_BAD_PARAM;
    extent += (long long)(dims[i] - 1) * (strides[i] < 0 ? -(long long)strides[i] : strides[i]);
  }
  if (extent > INT_MAX) return CUDNN_STATUS_NOT_SUPPORTED;
  d->dtype = t;
  d->nb = nb;
  for (int i = 0; i < nb; ++i) d->dims[i] = dims[i], d->strides[i] = strides[i];
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t set_tensor_format(TensorDesc* d, cudnnTensorFormat_t f, cudnnDataType_t t, int nb,
                                const int* dims) {
  if (!d || !dims) return CUDNN_STATUS_BAD_PARAM;
  if (!valid_format(f) || (f == CUDNN_TENSOR_NCHW_VECT_C && !vector_dtype(t)))
    return CUDNN_STATUS_BAD_PARAM;
  if (nb > CUDNN_DIM_MAX) return CUDNN_STATUS_NOT_SUPPORTED;
  if (nb < 2) return CUDNN_STATUS_BAD_PARAM;
  for (int i = 0; i < nb; ++i)
    if (dims[i] <= 0) return CUDNN_STATUS_BAD_PARAM;
  int strides[CUDNN_DIM_MAX];
  packed_strides(dims, nb, f == CUDNN_TENSOR_NHWC && nb >= 3, strides);
  return set_tensor(d, t, nb, dims, strides);
}

cudnnStatus_t set_filter(FilterDesc* d, cudnnDataType_t t, cudnnTensorFormat_t f, int nb, const int* dims) {
  if (!d || !dims) return CUDNN_STATUS_BAD_PARAM;
  if (nb > CUDNN_DIM_MAX) return CUDNN_STATUS_NOT_SUPPORTED;
  if (nb < 3 || !valid_dtype(t) || !valid_format(f) ||
      (f == CUDNN_TENSOR_NCHW_VECT_C && !vector_dtype(t)))
    return CUDNN_STATUS_BAD_PARAM;
  for (int i = 0; i < nb; ++i)
    if (dims[i] <= 0) return CUDNN_STATUS_BAD_PARAM;
  d->dtype = t;
  d->format = f;
  d->nb = nb;
  for (int i = 0; i < nb; ++i) d->dims[i] = dims[i];
  return CUDNN_STATUS_SUCCESS;
}

/* Compute types a convolution descriptor accepts (INT8 and BFLOAT16 are refused). */
bool valid_compute(cudnnDataType_t t) {
  return t == CUDNN_DATA_FLOAT || t == CUDNN_DATA_DOUBLE || t == CUDNN_DATA_HALF ||
         t == CUDNN_DATA_INT32;
}

cudnnStatus_t set_conv(ConvDesc* d, int n, const int* pad, const int* stride, const int* dil,
                       cudnnConvolutionMode_t mode, cudnnDataType_t compute) {
  if (!d || !pad || !stride || !dil) return CUDNN_STATUS_BAD_PARAM;
  if (n > CUDNN_DIM_MAX - 2) return CUDNN_STATUS_NOT_SUPPORTED;
  if (n < 0 || (mode != CUDNN_CONVOLUTION && mode != CUDNN_CROSS_CORRELATION) || !valid_compute(compute))
    return CUDNN_STATUS_BAD_PARAM;
  for (int i = 0; i < n; ++i)
    if (pad[i] < 0 || stride[i] <= 0 || dil[i] <= 0) return CUDNN_STATUS_BAD_PARAM;
  d->spatial = n;
  for (int i = 0; i < n; ++i) d->pad[i] = pad[i], d->stride[i] = stride[i], d->dilation[i] = dil[i];
  d->mode = mode;
  d->compute = compute;
  return CUDNN_STATUS_SUCCESS;
}

}  // namespace

TensorDesc* tensor_of(cudnnTensorDescriptor_t d) { return live<TensorDesc>(d, kTensorMagic); }
FilterDesc* filter_of(cudnnFilterDescriptor_t d) { return live<FilterDesc>(d, kFilterMagic); }
ConvDesc* conv_of(cudnnConvolutionDescriptor_t d) { return live<ConvDesc>(d, kConvMagic); }

int element_size(cudnnDataType_t t) {
  return t == CUDNN_DATA_FLOAT ? 4 : t == CUDNN_DATA_BFLOAT16 || t == CUDNN_DATA_HALF ? 2 : 0;
}

}  // namespace emu_cudnn

using namespace emu_cudnn;

/* ---- tensors ------------------------------------------------------------------------------- */

CUDNN_EXPORT cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* d) {
  return create((TensorDesc**)d, kTensorMagic);
}
CUDNN_EXPORT cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) {
  return destroy<TensorDesc>(d, kTensorMagic);
}

CUDNN_EXPORT cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t f,
                                                      cudnnDataType_t t, int n, int c, int h, int w) {
  int dims[4] = {n, c, h, w};
  return set_tensor_format(tensor_of(d), f, t, 4, dims);
}

CUDNN_EXPORT cudnnStatus_t cudnnSetTensor4dDescriptorEx(cudnnTensorDescriptor_t d, cudnnDataType_t t,
                                                        int n, int c, int h, int w, int nStride,
                                                        int cStride, int hStride, int wStride) {
  int dims[4] = {n, c, h, w}, strides[4] = {nStride, cStride, hStride, wStride};
  return set_tensor(tensor_of(d), t, 4, dims, strides);
}

CUDNN_EXPORT cudnnStatus_t cudnnSetTensorNdDescriptor(cudnnTensorDescriptor_t d, cudnnDataType_t t,
                                                      int nbDims, const int dimA[], const int strideA[]) {
  return set_tensor(tensor_of(d), t, nbDims, dimA, strideA);
}

CUDNN_EXPORT cudnnStatus_t cudnnSetTensorNdDescriptorEx(cudnnTensorDescriptor_t d, cudnnTensorFormat_t f,
                                                        cudnnDataType_t t, int nbDims, const int dimA[]) {
  return set_tensor_format(tensor_of(d), f, t, nbDims, dimA);
}

CUDNN_EXPORT cudnnStatus_t cudnnGetTensor4dDescriptor(const cudnnTensorDescriptor_t d, cudnnDataType_t* t,
                                                      int* n, int* c, int* h, int* w, int* nStride,
                                                      int* cStride, int* hStride, int* wStride) {
  TensorDesc* td = tensor_of(d);
  if (!td || !t || !n || !c || !h || !w || !nStride || !cStride || !hStride || !wStride)
    return CUDNN_STATUS_BAD_PARAM;
  *t = td->dtype;
  *n = td->dims[0], *c = td->dims[1], *h = td->dims[2], *w = td->dims[3];
  *nStride = td->strides[0], *cStride = td->strides[1], *hStride = td->strides[2], *wStride = td->strides[3];
  return CUDNN_STATUS_SUCCESS;
}

CUDNN_EXPORT cudnnStatus_t cudnnGetTensorNdDescriptor(const cudnnTensorDescriptor_t d, int requested,
                                                      cudnnDataType_t* t, int* nbDims, int dimA[],
                                                      int strideA[]) {
  TensorDesc* td = tensor_of(d);
  if (!td || !t || !nbDims) return CUDNN_STATUS_BAD_PARAM;
  *t = td->dtype;
  *nbDims = td->nb;
  for (int i = 0; i < requested && i < td->nb; ++i) {
    if (dimA) dimA[i] = td->dims[i];
    if (strideA) strideA[i] = td->strides[i];
  }
  return CUDNN_STATUS_SUCCESS;
}

CUDNN_EXPORT cudnnStatus_t cudnnGetTensorSizeInBytes(const cudnnTensorDescriptor_t d, size_t* size) {
  TensorDesc* td = tensor_of(d);
  if (!td || !size) return CUDNN_STATUS_BAD_PARAM;
  long long extent = td->nb ? 1 : 0;
  for (int i = 0; i < td->nb; ++i) extent += (long long)(td->dims[i] - 1) * td->strides[i];
  int es = td->dtype == CUDNN_DATA_DOUBLE || td->dtype == CUDNN_DATA_INT64 ? 8
           : td->dtype == CUDNN_DATA_HALF || td->dtype == CUDNN_DATA_BFLOAT16 ? 2
           : td->dtype == CUDNN_DATA_INT8 || td->dtype == CUDNN_DATA_UINT8 ? 1 : 4;
  *size = (size_t)extent * es;
  return CUDNN_STATUS_SUCCESS;
}

/* ---- filters ------------------------------------------------------------------------------- */

CUDNN_EXPORT cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* d) {
  return create((FilterDesc**)d, kFilterMagic);
}
CUDNN_EXPORT cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) {
  return destroy<FilterDesc>(d, kFilterMagic);
}

CUDNN_EXPORT cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t t,
                                                      cudnnTensorFormat_t f, int k, int c, int h, int w) {
  int dims[4] = {k, c, h, w};
  return set_filter(filter_of(d), t, f, 4, dims);
}

CUDNN_EXPORT cudnnStatus_t cudnnSetFilterNdDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t t,
                                                      cudnnTensorFormat_t f, int nbDims, const int dimA[]) {
  return set_filter(filter_of(d), t, f, nbDims, dimA);
}

CUDNN_EXPORT cudnnStatus_t cudnnGetFilter4dDescriptor(const cudnnFilterDescriptor_t d, cudnnDataType_t* t,
                                                      cudnnTensorFormat_t* f, int* k, int* c, int* h, int* w) {
  FilterDesc* fd = filter_of(d);
  if (!fd || !t || !f || !k || !c || !h || !w) return CUDNN_STATUS_BAD_PARAM;
  *t = fd->dtype, *f = fd->format;
  *k = fd->dims[0], *c = fd->dims[1], *h = fd->dims[2], *w = fd->dims[3];
  return CUDNN_STATUS_SUCCESS;
}

CUDNN_EXPORT cudnnStatus_t cudnnGetFilterNdDescriptor(const cudnnFilterDescriptor_t d, int requested,
                                                      cudnnDataType_t* t, cudnnTensorFormat_t* f,
                                                      int* nbDims, int dimA[]) {
  FilterDesc* fd = filter_of(d);
  if (!fd || !t || !f || !nbDims) return CUDNN_STATUS_BAD_PARAM;
  *t = fd->dtype, *f = fd->format, *nbDims = fd->nb;
  for (int i = 0; i < requested && i < fd->nb && dimA; ++i) dimA[i] = fd->dims[i];
  return CUDNN_STATUS_SUCCESS;
}

CUDNN_EXPORT cudnnStatus_t cudnnGetFilterSizeInBytes(const cudnnFilterDescriptor_t d, size_t* size) {
  FilterDesc* fd = filter_of(d);
  if (!fd || !size) return CUDNN_STATUS_BAD_PARAM;
  size_t n = fd->nb ? 1 : 0;
  for (int i = 0; i < fd->nb; ++i) n *= (size_t)fd->dims[i];
  int es = element_size(fd->dtype);
  *size = n * (es ? es : 4);
  return CUDNN_STATUS_SUCCESS;
}

/* ---- convolutions -------------------------------------------------------------------------- */

CUDNN_EXPORT cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* d) {
  return create((ConvDesc**)d, kConvMagic);
}
CUDNN_EXPORT cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) {
  return destroy<ConvDesc>(d, kConvMagic);
}

CUDNN_EXPORT cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h,
                                                           int pad_w, int u, int v, int dilation_h,
                                                           int dilation_w, cudnnConvolutionMode_t mode,
                                                           cudnnDataType_t computeType) {
  int pad[2] = {pad_h, pad_w}, stride[2] = {u, v}, dil[2] = {dilation_h, dilation_w};
  return set_conv(conv_of(d), 2, pad, stride, dil, mode, computeType);
}

CUDNN_EXPORT cudnnStatus_t cudnnSetConvolutionNdDescriptor(cudnnConvolutionDescriptor_t d, int arrayLength,
                                                           const int padA[], const int strideA[],
                                                           const int dilationA[],
                                                           cudnnConvolutionMode_t mode,
                                                           cudnnDataType_t computeType) {
  return set_conv(conv_of(d), arrayLength, padA, strideA, dilationA, mode, computeType);
}

CUDNN_EXPORT cudnnStatus_t cudnnGetConvolution2dDescriptor(const cudnnConvolutionDescriptor_t d,
                                                           int* pad_h, int* pad_w, int* u, int* v,
                                                           int* dilation_h, int* dilation_w,
                                                           cudnnConvolutionMode_t* mode,
                                                           cudnnDataType_t* computeType) {
  ConvDesc* cd = conv_of(d);
  if (!cd || !pad_h || !pad_w || !u || !v || !dilation_h || !dilation_w || !mode || !computeType)
    return CUDNN_STATUS_BAD_PARAM;
  *pad_h = cd->pad[0], *pad_w = cd->pad[1], *u = cd->stride[0], *v = cd->stride[1];
  *dilation_h = cd->dilation[0], *dilation_w = cd->dilation[1];
  *mode = cd->mode, *computeType = cd->compute;
  return CUDNN_STATUS_SUCCESS;
}

CUDNN_EXPORT cudnnStatus_t cudnnGetConvolutionNdDescriptor(const cudnnConvolutionDescriptor_t d,
                                                           int requested, int* arrayLength, int padA[],
                                                           int strideA[], int dilationA[],
                                                           cudnnConvolutionMode_t* mode,
                                                           cudnnDataType_t* computeType) {
  ConvDesc* cd = conv_of(d);
  if (requested > CUDNN_DIM_MAX - 2) return CUDNN_STATUS_NOT_SUPPORTED;
  if (!cd || !arrayLength || !mode || !computeType) return CUDNN_STATUS_BAD_PARAM;
  *arrayLength = cd->spatial;
  for (int i = 0; i < requested && i < cd->spatial; ++i) {
    if (padA) padA[i] = cd->pad[i];
    if (strideA) strideA[i] = cd->stride[i];
    if (dilationA) dilationA[i] = cd->dilation[i];
  }
  *mode = cd->mode, *computeType = cd->compute;
  return CUDNN_STATUS_SUCCESS;
}

CUDNN_EXPORT cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t m) {
  ConvDesc* cd = conv_of(d);
  if (!cd || (m != CUDNN_DEFAULT_MATH && m != CUDNN_TENSOR_OP_MATH &&
              m != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION && m != CUDNN_FMA_MATH))
    return CUDNN_STATUS_BAD_PARAM;
  cd->math = m;
  return CUDNN_STATUS_SUCCESS;
}

CUDNN_EXPORT cudnnStatus_t cudnnGetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t* m) {
  ConvDesc* cd = conv_of(d);
  if (!cd || !m) return CUDNN_STATUS_BAD_PARAM;
  *m = cd->math;
  return CUDNN_STATUS_SUCCESS;
}

CUDNN_EXPORT cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int groups) {
  ConvDesc* cd = conv_of(d);
  if (!cd || groups < 1) return CUDNN_STATUS_BAD_PARAM;
  cd->groups = groups;
  return CUDNN_STATUS_SUCCESS;
}

CUDNN_EXPORT cudnnStatus_t cudnnGetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int* groups) {
  ConvDesc* cd = conv_of(d);
  if (!cd || !groups) return CUDNN_STATUS_BAD_PARAM;
  *groups = cd->groups;
  return CUDNN_STATUS_SUCCESS;
}

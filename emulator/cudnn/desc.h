/*
 * The cuDNN stand-in's descriptors and handle (descriptors.cpp, handle.cpp), as the convolution
 * code (conv_api.cpp, conv_compute.cpp) sees them.
 */
#ifndef RESSL_EMU_CUDNN_DESC_H
#define RESSL_EMU_CUDNN_DESC_H

#include <cudnn.h>
#include <stdint.h>

#define CUDNN_EXPORT extern "C" __attribute__((visibility("default")))

namespace emu_cudnn {

struct Handle {
  uint32_t magic;
  cudaStream_t stream;
};

struct TensorDesc {
  uint32_t magic;
  cudnnDataType_t dtype = CUDNN_DATA_FLOAT;
  int nb = 0;  // 0 until set
  int dims[CUDNN_DIM_MAX] = {0};
  int strides[CUDNN_DIM_MAX] = {0};
};

struct FilterDesc {
  uint32_t magic;
  cudnnDataType_t dtype = CUDNN_DATA_FLOAT;
  cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW;
  int nb = 0;
  int dims[CUDNN_DIM_MAX] = {0};  // always K, C, spatial... whatever the memory format
};

struct ConvDesc {
  uint32_t magic;
  int spatial = 0;  // arrayLength
  int pad[CUDNN_DIM_MAX - 2] = {0};
  int stride[CUDNN_DIM_MAX - 2] = {0};
  int dilation[CUDNN_DIM_MAX - 2] = {0};
  cudnnConvolutionMode_t mode = CUDNN_CONVOLUTION;
  cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  int groups = 1;
};

/* The live object behind a handle, or null. */
Handle* handle_of(cudnnHandle_t h);
TensorDesc* tensor_of(cudnnTensorDescriptor_t d);
FilterDesc* filter_of(cudnnFilterDescriptor_t d);
ConvDesc* conv_of(cudnnConvolutionDescriptor_t d);

/* Records why a call fails (cudnnGetLastErrorString) and returns `status`. */
cudnnStatus_t fail(cudnnStatus_t status, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

/* Bytes per element of the data types the stand-in computes with (0 for others). */
int element_size(cudnnDataType_t t);

}  // namespace emu_cudnn

#endif

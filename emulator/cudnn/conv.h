/*
 * A 2-D convolution problem as the cuDNN stand-in checks and computes it (conv_api.cpp builds
 * and validates it from the descriptors, conv_compute.cpp runs it with host loops).
 */
#ifndef RESSL_EMU_CUDNN_CONV_H
#define RESSL_EMU_CUDNN_CONV_H

#include <stddef.h>

#include "desc.h"

namespace emu_cudnn {

enum class Dir { Forward, BackwardData, BackwardFilter };

struct ConvProblem {
  int n, c, h, w;      // input x (dx)
  int k, r, s;         // filter: k output channels of c x r x s
  int p, q;            // output y (dy) height and width
  int pad_h, pad_w, stride_h, stride_w;
  bool flip;           // CUDNN_CONVOLUTION: the filter is applied flipped
  bool bf16;           // data in bf16 (compute in f32), else f32
  bool tf32;           // f32 inputs rounded to TF32 (tensor-op math allowed)
  long xs[4], ys[4];   // element strides (n, c, h, w) of x and y
  long ws[4];          // element strides (k, c, r, s) of the filter in its memory format
};

/* One call's work, copied into the queued job. */
struct ConvJob {
  Dir dir;
  ConvProblem pb;
  int algo;
  const void* in1;     // forward: x, backward data: w, backward filter: x
  const void* in2;     // forward: w, backward data: dy, backward filter: dy
  void* out;           // forward: y, backward data: dx, backward filter: dw
  float alpha, beta;
  void* workspace;
  size_t workspace_bytes;   // what the algorithm needs (0: none)
  const char* what;
  float* elapsed_ms;   // cudnnFind*: where to store the measured time (else null)
};

/* Checks the descriptors the way every convolution call does (conv_api.cpp) and fills the
 * problem; `xd` describes the input image (x or dx), `yd` the output image (y or dy). */
cudnnStatus_t build(cudnnTensorDescriptor_t xd, cudnnFilterDescriptor_t wd, cudnnConvolutionDescriptor_t cd,
                    cudnnTensorDescriptor_t yd, ConvProblem* pb);
/* Checks a convolution call and queues it on the handle's stream; with `elapsed` (Find) the job
 * stores its running time there. */
cudnnStatus_t submit(Dir d, const char* what, cudnnHandle_t handle, const void* alpha, const void* beta,
                     cudnnTensorDescriptor_t xd, cudnnFilterDescriptor_t wd, cudnnConvolutionDescriptor_t cd,
                     cudnnTensorDescriptor_t yd, int algo, const void* in1, const void* in2, void* out,
                     void* workspace, size_t workspace_bytes, float* elapsed);

/* Workspace bytes `algo` needs for the problem, or -1 when the stand-in does not run it. */
long long workspace_for(Dir dir, int algo, const ConvProblem& pb);
/* Runs a job (host work on the emulated stream). */
void run_conv(void* job);

}  // namespace emu_cudnn

#endif

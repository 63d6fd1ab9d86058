// emu_axpby with other parameter types than the host build of tests/emulator/kernels/emu_plain.cu
// (a stale host build): loading must fail with CUDA_ERROR_NO_BINARY_FOR_GPU, showing both layouts.
extern "C" __global__ void emu_axpby(double* y, const double* x, double a, double b, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + b * y[i];
}

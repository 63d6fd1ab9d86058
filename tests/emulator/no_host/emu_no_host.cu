// A kernel the emulator has no host build of (emulator/build.sh compiles tests/emulator/kernels/
// only): loading its fatbin must fail with CUDA_ERROR_NO_BINARY_FOR_GPU, naming the kernel.
extern "C" __global__ void emu_no_host_kernel(float* y) { y[threadIdx.x] = 1.0f; }

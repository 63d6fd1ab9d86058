// A kernel template with an instance: the host build leaves templates out (gen_kernel_module.sh),
// so loading this image fails with CUDA_ERROR_NO_BINARY_FOR_GPU naming the mangled instance.
template <typename T>
__global__ void emu_template_kernel(T* out) { out[threadIdx.x] = T(1); }
template __global__ void emu_template_kernel<float>(float*);

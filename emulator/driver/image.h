/*
 * Reading a module image the way cuModuleLoadData receives it: a fatbin container (nvcc -fatbin),
 * a bare ELF cubin, or NUL-terminated PTX text. The result lists the kernels an sm_90 device can
 * run from it, with each kernel's parameter layout (from the cubin's .nv.info EIATTR_KPARAM_INFO
 * records, or the PTX .entry signature), static shared memory and launch bound.
 */
#ifndef RESSL_EMU_DRIVER_IMAGE_H
#define RESSL_EMU_DRIVER_IMAGE_H

#include <cuda.h>

#include <string>
#include <vector>

namespace emu {

struct ImageParam {
  unsigned offset;
  unsigned size;
};

struct ImageKernel {
  std::string name;                 // the symbol name (mangled for C++ kernels)
  bool has_layout = false;
  std::vector<ImageParam> params;   // by ordinal
  unsigned param_bytes = 0;
  unsigned static_shared = 0;       // bytes, excluding the 1 KiB the system reserves on sm_80+
  unsigned max_threads = 1024;      // __launch_bounds__ (EIATTR_MAX_THREADS), else 1024
};

struct Image {
  std::string source;               // "sm_90 cubin", "compute_90 PTX", ...
  std::vector<ImageKernel> kernels;
};

/* Parses an image for a device of compute capability `sm` (90). On failure returns
 * CUDA_ERROR_INVALID_IMAGE / _INVALID_PTX / _NO_BINARY_FOR_GPU with a reason in *why. */
CUresult parse_image(const void* data, int sm, Image* out, std::string* why);

}  // namespace emu

#endif

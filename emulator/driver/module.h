/* Modules and functions of the emulated driver (module.cpp, launch.cpp, graph.cpp). */
#ifndef RESSL_EMU_DRIVER_MODULE_H
#define RESSL_EMU_DRIVER_MODULE_H

#include <memory>

#include "image.h"
#include "kernel_libs.h"
#include "state.h"

namespace emu {

struct Module;

struct Function {
  uint32_t magic = kFuncMagic;
  Module* module = nullptr;
  ImageKernel image;
  const HostKernel* host = nullptr;
  std::vector<unsigned> offsets;  // parameter offsets in the argument buffer (natural alignment)
  unsigned param_bytes = 0;       // what CU_LAUNCH_PARAM_BUFFER_SIZE must say
  int max_dynamic_shared = 0;     // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
};
using FunctionPtr = std::shared_ptr<Function>;

struct Module {
  uint32_t magic = kModuleMagic;
  std::vector<FunctionPtr> functions;
  std::string source;
};

/* The function behind a handle (kept alive by queued work and graphs), or null. */
FunctionPtr function_of(CUfunction f);

}  // namespace emu

#endif

/*
 * The host builds of kernel sources (build/emulator/lib/kernels/NAME.so, one per .cu file): found
 * in RESSL_EMU_KERNEL_PATH (a colon-separated list of .so files and directories), by default the
 * kernels/ folder next to this libcuda.so.1; loaded once each, indexed by kernel symbol name.
 */
#ifndef RESSL_EMU_DRIVER_KERNEL_LIBS_H
#define RESSL_EMU_DRIVER_KERNEL_LIBS_H

#include <string>
#include <vector>

#include "../include/ressl_emu_abi.h"

namespace emu {

struct HostKernel {
  const ressl_emu_kernel* kernel;
  std::string symbol;   // as in the cubin (dladdr of the kernel)
  std::string library;  // path of the .so
  std::string source;   // the .cu it was built from
};

/* Loads any kernel libraries not loaded yet; returns the host builds of `symbol` (in library
 * path order). Problems with individual libraries are appended to *warnings. */
std::vector<const HostKernel*> find_host_kernels(const std::string& symbol, std::string* warnings);
/* Where the search looked, for messages. */
std::string kernel_search_path();

}  // namespace emu

#endif

/*
 * The C interface between the emulated driver (libcuda.so.1) and the host builds of kernel
 * sources (one shared library per .cu file, built by emulator/build.sh).
 *
 * A host kernel library exports one function, ressl_emu_module_table(), that lists its kernels.
 * The driver matches a loaded fatbin's kernel names against these tables, copies each launch's
 * arguments into its own buffer (laid out as the kernelParams array of pointers) and calls the
 * kernel's run() at the point where the emulated stream executes the launch.
 */
#ifndef RESSL_EMU_ABI_H
#define RESSL_EMU_ABI_H

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever a struct below changes; the driver refuses a library built for another one. */
#define RESSL_EMU_ABI_VERSION 1

typedef struct ressl_emu_dim3 {
  unsigned x, y, z;
} ressl_emu_dim3;

/* One launch as the kernel library sees it. */
typedef struct ressl_emu_launch {
  ressl_emu_dim3 grid;
  ressl_emu_dim3 block;
  unsigned dynamic_shared_bytes;
  /* One pointer per kernel parameter, to that parameter's bytes (the kernelParams form). */
  void* const* params;
  /* Where run() writes a one-line reason when it returns a non-zero CUresult. */
  char* error;
  unsigned long error_capacity;
} ressl_emu_launch;

/* One kernel of a host kernel library. */
typedef struct ressl_emu_kernel {
  /* The function itself; the driver asks dladdr() for its (possibly mangled) symbol name. */
  const void* address;
  /* The identifier as written in the source (used in messages). */
  const char* source_name;
  unsigned num_params;
  const unsigned short* param_size;
  const unsigned short* param_align;
  /* 1 where the parameter is a pointer (the driver checks it points into device memory). */
  const unsigned char* param_is_pointer;
  /* Runs the whole grid; returns 0 (CUDA_SUCCESS) or a CUresult with a message in l->error. */
  int (*run)(const ressl_emu_launch* l);
} ressl_emu_kernel;

typedef struct ressl_emu_module_info {
  unsigned abi_version;
  /* Whether this library's code reaches a barrier, warp shuffle or vote (threads run as fibers). */
  unsigned uses_fibers;
  unsigned num_kernels;
  const ressl_emu_kernel* kernels;
  /* The .cu file the library was built from. */
  const char* source_path;
} ressl_emu_module_info;

typedef const ressl_emu_module_info* (*ressl_emu_module_table_fn)(void);

#ifdef __cplusplus
}
#endif
#endif

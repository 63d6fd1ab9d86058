/* Emulator stand-in for <cuda_fp16.h>: half precision is not emulated yet. */
#error "cuda_fp16.h (__half) is not emulated: add it to emulator/include/device/ or use bf16"

/**
 * CUDA through Deno FFI: library discovery (real NVIDIA libraries or the emulated device), the
 * driver API (devices, memory, streams, events, graphs, modules, kernel launches), cuBLAS (row-major
 * gemm), cuDNN 9 (convolution plans), NVRTC and the NCCL symbol table. Nothing is loaded at import.
 *
 * @module
 */

export * from "./errors.ts";
export * from "./discovery.ts";
export * from "./driver_symbols.ts";
export * from "./driver.ts";
export * from "./memory.ts";
export * from "./stream.ts";
export * from "./launch.ts";
export * from "./cublas_symbols.ts";
export * from "./cublas.ts";
export * from "./gemm.ts";
export * from "./cudnn_sublibs.ts";
export * from "./cudnn_symbols.ts";
export * from "./cudnn.ts";
export * from "./conv_algo.ts";
export * from "./conv_plan.ts";
export * from "./conv_plan_cache.ts";
export * from "./nvrtc.ts";
export * from "./nccl.ts";

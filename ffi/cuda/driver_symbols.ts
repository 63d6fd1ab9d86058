/**
 * The CUDA driver API (`libcuda.so.1`, CUDA 13 `cuda.h`) as a Deno FFI symbol table, and the enum
 * values used with it (read from `cuda.h` of CUDA 13.0).
 *
 * Names are the exported, versioned ones that `cuda.h` redirects to (`cuMemAlloc_v2`,
 * `cuStreamDestroy_v2`, ...): the unversioned `cuMemAlloc` still exists but is the 32-bit v1 ABI.
 * `tests/ffi/cuda_header_names_test.ts` checks every name against `cuda.h`.
 *
 * Conventions: `CUresult` is an i32; `CUdeviceptr` is a u64 (bigint); handles (`CUcontext`,
 * `CUstream`, `CUevent`, `CUmodule`, `CUfunction`, `CUgraph`, `CUgraphExec`) are pointers;
 * out-parameters are `buffer`s (a `BigUint64Array(1)` / `Int32Array(1)` the caller owns). Host memory
 * of synchronous copies is a `buffer` (a typed array); of asynchronous copies a `pointer` (pinned
 * memory the caller keeps alive until the stream is synchronised).
 *
 * @module
 */

/** Symbols of `libcuda.so.1`. */
export const DRIVER_SYMBOLS = {
  cuGetErrorName: { parameters: ["i32", "buffer"], result: "i32" },
  cuGetErrorString: { parameters: ["i32", "buffer"], result: "i32" },
  cuInit: { parameters: ["u32"], result: "i32" },
  cuDriverGetVersion: { parameters: ["buffer"], result: "i32" },

  cuDeviceGetCount: { parameters: ["buffer"], result: "i32" },
  cuDeviceGet: { parameters: ["buffer", "i32"], result: "i32" },
  cuDeviceGetName: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  cuDeviceGetAttribute: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  cuDeviceTotalMem_v2: { parameters: ["buffer", "i32"], result: "i32" },

  cuDevicePrimaryCtxRetain: { parameters: ["buffer", "i32"], result: "i32" },
  cuDevicePrimaryCtxRelease_v2: { parameters: ["i32"], result: "i32" },
  cuCtxSetCurrent: { parameters: ["pointer"], result: "i32" },
  cuCtxSynchronize: { parameters: [], result: "i32" },

  cuStreamCreate: { parameters: ["buffer", "u32"], result: "i32" },
  cuStreamDestroy_v2: { parameters: ["pointer"], result: "i32" },
  cuStreamSynchronize: { parameters: ["pointer"], result: "i32" },
  cuStreamWaitEvent: { parameters: ["pointer", "pointer", "u32"], result: "i32" },

  cuEventCreate: { parameters: ["buffer", "u32"], result: "i32" },
  cuEventRecord: { parameters: ["pointer", "pointer"], result: "i32" },
  cuEventSynchronize: { parameters: ["pointer"], result: "i32" },
  cuEventElapsedTime_v2: { parameters: ["buffer", "pointer", "pointer"], result: "i32" },
  cuEventDestroy_v2: { parameters: ["pointer"], result: "i32" },

  cuMemAlloc_v2: { parameters: ["buffer", "usize"], result: "i32" },
  cuMemFree_v2: { parameters: ["u64"], result: "i32" },
  cuMemAllocAsync: { parameters: ["buffer", "usize", "pointer"], result: "i32" },
  cuMemFreeAsync: { parameters: ["u64", "pointer"], result: "i32" },
  cuMemGetInfo_v2: { parameters: ["buffer", "buffer"], result: "i32" },
  cuMemHostAlloc: { parameters: ["buffer", "usize", "u32"], result: "i32" },
  cuMemFreeHost: { parameters: ["pointer"], result: "i32" },

  cuMemcpyHtoD_v2: { parameters: ["u64", "buffer", "usize"], result: "i32" },
  cuMemcpyDtoH_v2: { parameters: ["buffer", "u64", "usize"], result: "i32" },
  cuMemcpyDtoD_v2: { parameters: ["u64", "u64", "usize"], result: "i32" },
  cuMemcpyHtoDAsync_v2: { parameters: ["u64", "pointer", "usize", "pointer"], result: "i32" },
  cuMemcpyDtoHAsync_v2: { parameters: ["pointer", "u64", "usize", "pointer"], result: "i32" },
  cuMemcpyDtoDAsync_v2: { parameters: ["u64", "u64", "usize", "pointer"], result: "i32" },
  cuMemsetD8Async: { parameters: ["u64", "u8", "usize", "pointer"], result: "i32" },
  cuMemsetD32Async: { parameters: ["u64", "u32", "usize", "pointer"], result: "i32" },

  cuModuleLoadData: { parameters: ["buffer", "buffer"], result: "i32" },
  cuModuleUnload: { parameters: ["pointer"], result: "i32" },
  cuModuleGetFunction: { parameters: ["buffer", "pointer", "buffer"], result: "i32" },
  cuLaunchKernel: {
    parameters: [
      "pointer", // f
      "u32", // gridDimX
      "u32", // gridDimY
      "u32", // gridDimZ
      "u32", // blockDimX
      "u32", // blockDimY
      "u32", // blockDimZ
      "u32", // sharedMemBytes
      "pointer", // hStream
      "pointer", // kernelParams (void**)
      "pointer", // extra (void**)
    ],
    result: "i32",
  },

  cuStreamBeginCapture_v2: { parameters: ["pointer", "i32"], result: "i32" },
  cuStreamEndCapture: { parameters: ["pointer", "buffer"], result: "i32" },
  cuStreamIsCapturing: { parameters: ["pointer", "buffer"], result: "i32" },
  cuGraphInstantiateWithFlags: { parameters: ["buffer", "pointer", "u64"], result: "i32" },
  cuGraphLaunch: { parameters: ["pointer", "pointer"], result: "i32" },
  cuGraphExecDestroy: { parameters: ["pointer"], result: "i32" },
  cuGraphDestroy: { parameters: ["pointer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The bound driver functions. */
export type DriverSymbols = Deno.DynamicLibrary<typeof DRIVER_SYMBOLS>["symbols"];

/** `CUresult` values the bindings test for. */
export const CU_RESULT = {
  SUCCESS: 0,
  ERROR_INVALID_VALUE: 1,
  ERROR_OUT_OF_MEMORY: 2,
  ERROR_NOT_INITIALIZED: 3,
  ERROR_STUB_LIBRARY: 34,
  ERROR_CALL_REQUIRES_NEWER_DRIVER: 36,
  ERROR_DEVICE_UNAVAILABLE: 46,
  ERROR_NO_DEVICE: 100,
  ERROR_INVALID_DEVICE: 101,
  ERROR_NOT_READY: 600,
  ERROR_SYSTEM_DRIVER_MISMATCH: 803,
  ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE: 804,
} as const;

/** `CUdevice_attribute` values. */
export const CU_DEVICE_ATTRIBUTE = {
  MAX_THREADS_PER_BLOCK: 1,
  MAX_SHARED_MEMORY_PER_BLOCK: 8,
  WARP_SIZE: 10,
  MULTIPROCESSOR_COUNT: 16,
  L2_CACHE_SIZE: 38,
  COMPUTE_CAPABILITY_MAJOR: 75,
  COMPUTE_CAPABILITY_MINOR: 76,
  MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: 97,
  MEMORY_POOLS_SUPPORTED: 115,
} as const;

/** Flags and enums of streams, events, pinned memory, capture and graphs. */
export const CU_FLAGS = {
  STREAM_DEFAULT: 0,
  STREAM_NON_BLOCKING: 1,
  EVENT_DEFAULT: 0,
  EVENT_BLOCKING_SYNC: 1,
  EVENT_DISABLE_TIMING: 2,
  MEMHOSTALLOC_PORTABLE: 1,
  MEMHOSTALLOC_DEVICEMAP: 2,
  MEMHOSTALLOC_WRITECOMBINED: 4,
  STREAM_CAPTURE_MODE_GLOBAL: 0,
  STREAM_CAPTURE_MODE_THREAD_LOCAL: 1,
  STREAM_CAPTURE_MODE_RELAXED: 2,
  STREAM_CAPTURE_STATUS_NONE: 0,
  STREAM_CAPTURE_STATUS_ACTIVE: 1,
  STREAM_CAPTURE_STATUS_INVALIDATED: 2,
  GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH: 1,
} as const;

/** `cuLaunchKernel` `extra` array keys (`CU_LAUNCH_PARAM_*_AS_INT`). */
export const CU_LAUNCH_PARAM = { END: 0, BUFFER_POINTER: 1, BUFFER_SIZE: 2 } as const;

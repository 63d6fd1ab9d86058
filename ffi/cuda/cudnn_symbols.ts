/**
 * cuDNN 9's legacy C API for convolutions (`libcudnn.so.9`; `cudnn_graph.h`, `cudnn_ops.h`,
 * `cudnn_cnn.h` of cuDNN 9.24) as a Deno FFI symbol table, with the enum values and the layout of
 * the algorithm performance structs. The legacy API is marked deprecated since 9.0 but exported and
 * documented as usable.
 *
 * Handles and descriptors are `pointer`s, device data `u64` (bigint), alpha/beta host pointers
 * (`float` for f32 and bf16 data), `size_t` `usize` (bigint), `int[]` and out-parameters `buffer`s.
 *
 * @module
 */

const CONV_FIND = [
  "pointer", // handle
  "pointer", // first input descriptor
  "u64", // its data
  "pointer", // second input descriptor
  "u64", // its data
  "pointer", // convDesc
  "pointer", // output descriptor
  "u64", // output data (overwritten)
  "i32", // requestedAlgoCount
  "buffer", // int* returnedAlgoCount
  "buffer", // perf results
  "u64", // workSpace
  "usize", // workSpaceSizeInBytes
] as const;

const CONV_GET_V7 = [
  "pointer", // handle
  "pointer", // descriptor
  "pointer", // descriptor
  "pointer", // convDesc
  "pointer", // descriptor
  "i32", // requestedAlgoCount
  "buffer", // int* returnedAlgoCount
  "buffer", // perf results
] as const;

const CONV_WORKSPACE = [
  "pointer", // handle
  "pointer", // descriptor
  "pointer", // descriptor
  "pointer", // convDesc
  "pointer", // descriptor
  "i32", // algo
  "buffer", // size_t* sizeInBytes
] as const;

const CONV_RUN = [
  "pointer", // handle
  "pointer", // alpha
  "pointer", // first input descriptor
  "u64", // its data
  "pointer", // second input descriptor
  "u64", // its data
  "pointer", // convDesc
  "i32", // algo
  "u64", // workSpace
  "usize", // workSpaceSizeInBytes
  "pointer", // beta
  "pointer", // output descriptor
  "u64", // output data
] as const;

/** Symbols of `libcudnn.so.9`. */
export const CUDNN_SYMBOLS = {
  cudnnGetVersion: { parameters: [], result: "usize" },
  cudnnGetErrorString: { parameters: ["i32"], result: "pointer" },
  cudnnGetLastErrorString: { parameters: ["buffer", "usize"], result: "void" },
  cudnnCreate: { parameters: ["buffer"], result: "i32" },
  cudnnDestroy: { parameters: ["pointer"], result: "i32" },
  cudnnSetStream: { parameters: ["pointer", "pointer"], result: "i32" },

  cudnnCreateTensorDescriptor: { parameters: ["buffer"], result: "i32" },
  cudnnSetTensor4dDescriptor: {
    parameters: ["pointer", "i32", "i32", "i32", "i32", "i32", "i32"],
    result: "i32",
  },
  cudnnSetTensorNdDescriptor: {
    parameters: ["pointer", "i32", "i32", "buffer", "buffer"],
    result: "i32",
  },
  cudnnDestroyTensorDescriptor: { parameters: ["pointer"], result: "i32" },

  cudnnCreateFilterDescriptor: { parameters: ["buffer"], result: "i32" },
  cudnnSetFilter4dDescriptor: {
    parameters: ["pointer", "i32", "i32", "i32", "i32", "i32", "i32"],
    result: "i32",
  },
  cudnnSetFilterNdDescriptor: {
    parameters: ["pointer", "i32", "i32", "i32", "buffer"],
    result: "i32",
  },
  cudnnDestroyFilterDescriptor: { parameters: ["pointer"], result: "i32" },

  cudnnCreateConvolutionDescriptor: { parameters: ["buffer"], result: "i32" },
  cudnnSetConvolution2dDescriptor: {
    parameters: ["pointer", "i32", "i32", "i32", "i32", "i32", "i32", "i32", "i32"],
    result: "i32",
  },
  cudnnSetConvolutionNdDescriptor: {
    parameters: ["pointer", "i32", "buffer", "buffer", "buffer", "i32", "i32"],
    result: "i32",
  },
  cudnnSetConvolutionMathType: { parameters: ["pointer", "i32"], result: "i32" },
  cudnnSetConvolutionGroupCount: { parameters: ["pointer", "i32"], result: "i32" },
  cudnnDestroyConvolutionDescriptor: { parameters: ["pointer"], result: "i32" },
  cudnnGetConvolution2dForwardOutputDim: {
    parameters: ["pointer", "pointer", "pointer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },

  cudnnGetConvolutionForwardAlgorithm_v7: { parameters: CONV_GET_V7, result: "i32" },
  cudnnGetConvolutionBackwardDataAlgorithm_v7: { parameters: CONV_GET_V7, result: "i32" },
  cudnnGetConvolutionBackwardFilterAlgorithm_v7: { parameters: CONV_GET_V7, result: "i32" },
  cudnnFindConvolutionForwardAlgorithmEx: { parameters: CONV_FIND, result: "i32" },
  cudnnFindConvolutionBackwardDataAlgorithmEx: { parameters: CONV_FIND, result: "i32" },
  cudnnFindConvolutionBackwardFilterAlgorithmEx: { parameters: CONV_FIND, result: "i32" },
  cudnnGetConvolutionForwardWorkspaceSize: { parameters: CONV_WORKSPACE, result: "i32" },
  cudnnGetConvolutionBackwardDataWorkspaceSize: { parameters: CONV_WORKSPACE, result: "i32" },
  cudnnGetConvolutionBackwardFilterWorkspaceSize: { parameters: CONV_WORKSPACE, result: "i32" },
  cudnnConvolutionForward: { parameters: CONV_RUN, result: "i32" },
  cudnnConvolutionBackwardData: { parameters: CONV_RUN, result: "i32" },
  cudnnConvolutionBackwardFilter: { parameters: CONV_RUN, result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The bound cuDNN functions. */
export type CudnnSymbols = Deno.DynamicLibrary<typeof CUDNN_SYMBOLS>["symbols"];

/** `cudnnStatus_t` values the bindings test for. */
export const CUDNN_STATUS = {
  SUCCESS: 0,
  NOT_INITIALIZED: 1001,
  SUBLIBRARY_LOADING_FAILED: 1008,
  BAD_PARAM: 2000,
  NOT_SUPPORTED: 3000,
  NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE: 3009,
  INTERNAL_ERROR: 4000,
  EXECUTION_FAILED: 5000,
} as const;

/** `cudnnDataType_t`. */
export const CUDNN_DATA = { FLOAT: 0, DOUBLE: 1, HALF: 2, BFLOAT16: 9 } as const;

/** `cudnnTensorFormat_t`. */
export const CUDNN_TENSOR = { NCHW: 0, NHWC: 1 } as const;

/** `cudnnConvolutionMode_t` (cross-correlation is what deep-learning frameworks call convolution). */
export const CUDNN_CONV_MODE = { CONVOLUTION: 0, CROSS_CORRELATION: 1 } as const;

/** `cudnnMathType_t`. */
export const CUDNN_MATH = {
  DEFAULT: 0,
  TENSOR_OP: 1,
  TENSOR_OP_ALLOW_CONVERSION: 2,
  FMA: 3,
} as const;

/** `cudnnDeterminism_t`. */
export const CUDNN_DETERMINISM = { NON_DETERMINISTIC: 0, DETERMINISTIC: 1 } as const;

/** Number of algorithms of each direction (`CUDNN_CONVOLUTION_*_ALGO_COUNT`). */
export const CUDNN_ALGO_COUNT = { forward: 8, backwardData: 6, backwardFilter: 7 } as const;

/**
 * Layout of `cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t` (identical for the three, checked
 * against the headers with `offsetof`): algo i32, status i32, time f32 (ms), memory size_t,
 * determinism i32, mathType i32, reserved int[3].
 */
export const CUDNN_PERF = {
  size: 48,
  algo: 0,
  status: 4,
  time: 8,
  memory: 16,
  determinism: 24,
  mathType: 28,
} as const;

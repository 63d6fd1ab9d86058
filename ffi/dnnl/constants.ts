/**
 * Struct sizes, field offsets and enum values of the oneDNN 2.6.3 C API, read from its headers
 * (`dnnl_types.h`) with a C program compiled against `libdnnl-dev` 2.6.3 on x86-64. They are only
 * valid for that version: `loadDnnl` refuses any other one.
 *
 * @module
 */

/** The oneDNN version these values were taken from. */
export const DNNL_PINNED_VERSION = { major: 2, minor: 6, patch: 3 } as const;

/** `sizeof` of the descriptor structs the `*_desc_init` functions fill (bytes). */
export const DNNL_SIZEOF = {
  memoryDesc: 696,
  convolutionDesc: 5976,
  batchNormalizationDesc: 3496,
  eltwiseDesc: 1416,
  poolingDesc: 3192,
  softmaxDesc: 1408,
  logsoftmaxDesc: 1408,
  binaryDesc: 2096,
  matmulDesc: 2800,
  execArg: 16,
  version: 32,
} as const;

/** Field offsets (bytes) inside `dnnl_memory_desc_t`, `dnnl_exec_arg_t` and `dnnl_version_t`. */
export const DNNL_OFFSET = {
  mdNdims: 0,
  mdDims: 8,
  mdDataType: 104,
  mdPaddedDims: 112,
  mdPaddedOffsets: 208,
  mdOffset0: 304,
  mdFormatKind: 312,
  mdStrides: 320,
  mdInnerNblks: 416,
  mdInnerBlks: 424,
  mdInnerIdxs: 520,
  mdExtraFlags: 616,
  execArgMemory: 8,
  versionHash: 16,
} as const;

/** `DNNL_RUNTIME_F32_VAL`'s bits: a scale given at execution time instead of creation time. */
export const DNNL_RUNTIME_F32_BITS = 0x7fc000d0;

/** `DNNL_MAX_NDIMS`: length of `dnnl_dims_t` (int64 each). */
export const DNNL_MAX_NDIMS = 12;

/** `dnnl_status_t` names by value. */
export const DNNL_STATUS_NAMES: Readonly<Record<number, string>> = Object.freeze({
  0: "dnnl_success",
  1: "dnnl_out_of_memory",
  2: "dnnl_invalid_arguments",
  3: "dnnl_unimplemented",
  4: "dnnl_iterator_ends",
  5: "dnnl_runtime_error",
  6: "dnnl_not_required",
});

/** `dnnl_data_type_t`. */
export const DataType = { bf16: 2, f32: 3, s32: 4, u8: 6 } as const;

/** `dnnl_format_kind_t`. */
export const FormatKind = { any: 1, blocked: 2 } as const;

/** `dnnl_format_tag_t` values used here (`a`..`abcd` are the plain row-major tags). */
export const FormatTag = { any: 1, a: 2, ab: 3, abc: 4, abcd: 5, nChw16c: 69 } as const;

/** `dnnl_prop_kind_t`. */
export const PropKind = {
  forwardTraining: 64,
  forwardInference: 96,
  backward: 128,
  backwardData: 160,
  backwardWeights: 192,
} as const;

/** `dnnl_alg_kind_t` values used here. */
export const AlgKind = {
  convolutionDirect: 1,
  convolutionWinograd: 2,
  convolutionAuto: 3,
  eltwiseRelu: 31,
  eltwiseReluUseDstForBwd: 256,
  eltwiseLinear: 127,
  poolingMax: 511,
  poolingAvgIncludePadding: 767,
  poolingAvgExcludePadding: 1023,
  binaryAdd: 131056,
  binaryMul: 131057,
} as const;

/** `dnnl_normalization_flags_t`. */
export const NormFlags = { useGlobalStats: 1, fuseNormRelu: 4, useScale: 8, useShift: 16 } as const;

/** `dnnl_cpu_isa_t` values (what `dnnl_get_effective_cpu_isa` reports). */
export const CpuIsa = {
  avx2: 0x7,
  avx512Core: 0x27,
  avx512CoreVnni: 0x67,
  avx512CoreBf16: 0xe7,
  avx512CoreAmx: 0x3e7,
} as const;

/** `dnnl_engine_kind_t`. */
export const EngineKind = { cpu: 1 } as const;

/** `dnnl_stream_flags_t`. */
export const StreamFlags = { defaultFlags: 1 } as const;

/** `dnnl_query_t` values used with `dnnl_primitive_desc_query(_md)`. */
export const Query = {
  implInfoStr: 8,
  srcMd: 129,
  diffSrcMd: 130,
  weightsMd: 131,
  diffWeightsMd: 132,
  dstMd: 133,
  diffDstMd: 134,
  workspaceMd: 135,
  scratchpadMd: 136,
} as const;

/** `DNNL_ARG_*` execution argument indices. */
export const Arg = {
  src: 1,
  src1: 2,
  dst: 17,
  weights: 33,
  bias: 41,
  mean: 49,
  variance: 50,
  scale: 51,
  shift: 52,
  workspace: 64,
  scratchpad: 80,
  diffSrc: 129,
  diffDst: 145,
  diffWeights: 161,
  diffScale: 255,
  diffShift: 256,
  attrOutputScales: 513,
  /** `DNNL_ARG_ATTR_INPUT_SCALES`: or-ed with an input's index (e.g. `src`) to pass its scale. */
  attrInputScales: 1048576,
  multipleSrc: 1024,
} as const;

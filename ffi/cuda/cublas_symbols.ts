/**
 * cuBLAS 13 (`libcublas.so.13`, `cublas_api.h`) as a Deno FFI symbol table, with the enum values used
 * (read from `cublas_api.h` and `library_types.h` of cuBLAS 13.1 / CUDA 13.0).
 *
 * The `_v2` names are the exported ones `cublas_v2.h` maps the plain names to; the plain
 * `cublasSgemm` is the legacy v1 API and is not bound. Handles and device pointers are `pointer`s,
 * alpha/beta are host pointers (the default pointer mode), `long long` strides are i64.
 *
 * @module
 */

/** Symbols of `libcublas.so.13`. */
export const CUBLAS_SYMBOLS = {
  cublasGetStatusName: { parameters: ["i32"], result: "pointer" },
  cublasGetStatusString: { parameters: ["i32"], result: "pointer" },
  cublasGetProperty: { parameters: ["i32", "buffer"], result: "i32" },
  cublasGetVersion_v2: { parameters: ["pointer", "buffer"], result: "i32" },
  cublasCreate_v2: { parameters: ["buffer"], result: "i32" },
  cublasDestroy_v2: { parameters: ["pointer"], result: "i32" },
  cublasSetStream_v2: { parameters: ["pointer", "pointer"], result: "i32" },
  cublasSetWorkspace_v2: { parameters: ["pointer", "u64", "usize"], result: "i32" },
  cublasSetMathMode: { parameters: ["pointer", "i32"], result: "i32" },
  cublasGetMathMode: { parameters: ["pointer", "buffer"], result: "i32" },
  cublasSgemm_v2: {
    parameters: [
      "pointer", // handle
      "i32", // transa
      "i32", // transb
      "i32", // m
      "i32", // n
      "i32", // k
      "pointer", // const float* alpha (host)
      "u64", // A
      "i32", // lda
      "u64", // B
      "i32", // ldb
      "pointer", // const float* beta (host)
      "u64", // C
      "i32", // ldc
    ],
    result: "i32",
  },
  cublasGemmEx: {
    parameters: [
      "pointer", // handle
      "i32", // transa
      "i32", // transb
      "i32", // m
      "i32", // n
      "i32", // k
      "pointer", // alpha (host, of the compute type's scale type)
      "u64", // A
      "i32", // Atype (cudaDataType)
      "i32", // lda
      "u64", // B
      "i32", // Btype
      "i32", // ldb
      "pointer", // beta
      "u64", // C
      "i32", // Ctype
      "i32", // ldc
      "i32", // computeType (cublasComputeType_t)
      "i32", // algo (cublasGemmAlgo_t)
    ],
    result: "i32",
  },
  cublasGemmStridedBatchedEx: {
    parameters: [
      "pointer", // handle
      "i32", // transa
      "i32", // transb
      "i32", // m
      "i32", // n
      "i32", // k
      "pointer", // alpha
      "u64", // A
      "i32", // Atype
      "i32", // lda
      "i64", // strideA
      "u64", // B
      "i32", // Btype
      "i32", // ldb
      "i64", // strideB
      "pointer", // beta
      "u64", // C
      "i32", // Ctype
      "i32", // ldc
      "i64", // strideC
      "i32", // batchCount
      "i32", // computeType
      "i32", // algo
    ],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** The bound cuBLAS functions. */
export type CublasSymbols = Deno.DynamicLibrary<typeof CUBLAS_SYMBOLS>["symbols"];

/** `cublasStatus_t`. */
export const CUBLAS_STATUS = {
  SUCCESS: 0,
  NOT_INITIALIZED: 1,
  ALLOC_FAILED: 3,
  INVALID_VALUE: 7,
  ARCH_MISMATCH: 8,
  EXECUTION_FAILED: 13,
  INTERNAL_ERROR: 14,
  NOT_SUPPORTED: 15,
} as const;

/** `cublasOperation_t`. */
export const CUBLAS_OP = { N: 0, T: 1 } as const;

/** `cublasMath_t`. */
export const CUBLAS_MATH = {
  DEFAULT: 0,
  PEDANTIC: 2,
  TF32_TENSOR_OP: 3,
  DISALLOW_REDUCED_PRECISION_REDUCTION: 16,
} as const;

/** `cublasComputeType_t`. */
export const CUBLAS_COMPUTE = {
  C32F: 68,
  C32F_PEDANTIC: 69,
  C32F_FAST_16F: 74,
  C32F_FAST_16BF: 75,
  C32F_FAST_TF32: 77,
} as const;

/** `cublasGemmAlgo_t`: let cuBLAS choose. */
export const CUBLAS_GEMM_DEFAULT = -1;

/** `cudaDataType` (`library_types.h`). */
export const CUDA_R = { F32: 0, F64: 1, F16: 2, BF16: 14 } as const;

/** `libraryPropertyType` (`library_types.h`). */
export const LIBRARY_PROPERTY = { MAJOR_VERSION: 0, MINOR_VERSION: 1, PATCH_LEVEL: 2 } as const;

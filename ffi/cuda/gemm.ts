/**
 * Row-major matrix products through cuBLAS (which is column-major). A row-major `X` (r x c, row
 * length `ld`) read column-major is `X^T` (c x r, leading dimension `ld`), so the row-major
 * `C = op(A) op(B)` is the column-major `C^T = op(B)^T op(A)^T`:
 * `gemm(opB, opA, n, m, k, B, ldb, A, lda, C, ldc)` with the operands swapped and the same
 * transpose flags. f32 uses `CUBLAS_COMPUTE_32F` (TF32 only when the handle's math is `tf32`);
 * bf16 inputs use `CUDA_R_16BF` with `CUBLAS_COMPUTE_32F` (f32 accumulation) and a bf16 or f32
 * output.
 *
 * @module
 */

import type { CublasHandle } from "./cublas.ts";
import { CUBLAS_COMPUTE, CUBLAS_GEMM_DEFAULT, CUBLAS_OP, CUDA_R } from "./cublas_symbols.ts";

/** Element types of a product. */
export type GemmDtype = "f32" | "bf16";

/** A row-major `C = alpha * op(A) * op(B) + beta * C` (optionally a strided batch of them). */
export interface RowMajorGemm {
  /** Rows of `op(A)` and `C`. */
  m: number;
  /** Columns of `op(B)` and `C`. */
  n: number;
  /** Columns of `op(A)`, rows of `op(B)`. */
  k: number;
  /** Device pointers. */
  a: bigint;
  b: bigint;
  c: bigint;
  /** Use `A^T` (A stored k x m) / `B^T` (B stored n x k). Default false. */
  transA?: boolean;
  transB?: boolean;
  /** Row lengths (leading dimensions) of the stored matrices; default: packed. */
  lda?: number;
  ldb?: number;
  ldc?: number;
  /** Default 1 and 0. */
  alpha?: number;
  beta?: number;
  /** Type of A and B (default f32). */
  dtype?: GemmDtype;
  /** Type of C (default: `dtype`). */
  outDtype?: GemmDtype;
  /** A strided batch: `count` products, matrix `i` at `ptr + i * stride` elements. */
  batch?: { count: number; strideA: number; strideB: number; strideC: number };
}

/** The column-major cuBLAS arguments of a {@link RowMajorGemm}. */
export interface ColumnMajorGemmArgs {
  transa: number;
  transb: number;
  m: number;
  n: number;
  k: number;
  a: bigint;
  lda: number;
  b: bigint;
  ldb: number;
  c: bigint;
  ldc: number;
  strideA: number;
  strideB: number;
  strideC: number;
}

function positiveInt(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 1 || v >= 2 ** 31) {
    throw new RangeError(`Cannot run a matrix product with ${what} = ${v}: use an integer >= 1`);
  }
}

/**
 * Maps a row-major product to cuBLAS's column-major call (operands swapped, m and n swapped, the
 * same transpose flags), validating dimensions and leading dimensions.
 */
export function rowMajorToCublas(g: RowMajorGemm): ColumnMajorGemmArgs {
  positiveInt(g.m, "m");
  positiveInt(g.n, "n");
  positiveInt(g.k, "k");
  const transA = g.transA ?? false;
  const transB = g.transB ?? false;
  // Row length of each stored matrix: A is m x k (k x m when transposed), B is k x n (n x k).
  const minLda = transA ? g.m : g.k;
  const minLdb = transB ? g.k : g.n;
  const lda = g.lda ?? minLda;
  const ldb = g.ldb ?? minLdb;
  const ldc = g.ldc ?? g.n;
  for (const [v, min, what] of [[lda, minLda, "lda"], [ldb, minLdb, "ldb"], [ldc, g.n, "ldc"]]) {
    if (!Number.isInteger(v) || (v as number) < (min as number)) {
      throw new RangeError(
        `Cannot run a matrix product with ${what} = ${v}: it must be an integer >= ${min} ` +
          `(the row length of the stored matrix)`,
      );
    }
  }
  const batch = g.batch;
  if (batch !== undefined) positiveInt(batch.count, "batch.count");
  return {
    transa: transB ? CUBLAS_OP.T : CUBLAS_OP.N,
    transb: transA ? CUBLAS_OP.T : CUBLAS_OP.N,
    m: g.n,
    n: g.m,
    k: g.k,
    a: g.b,
    lda: ldb,
    b: g.a,
    ldb: lda,
    c: g.c,
    ldc,
    strideA: batch?.strideB ?? 0,
    strideB: batch?.strideA ?? 0,
    strideC: batch?.strideC ?? 0,
  };
}

const DATA_TYPE: Readonly<Record<GemmDtype, number>> = { f32: CUDA_R.F32, bf16: CUDA_R.BF16 };

/** The `cublasComputeType_t` of a product of `dtype` inputs on a handle with `math`. */
export function computeTypeFor(dtype: GemmDtype, math: CublasHandle["math"]): number {
  if (dtype === "bf16") return CUBLAS_COMPUTE.C32F;
  if (math === "tf32") return CUBLAS_COMPUTE.C32F_FAST_TF32;
  if (math === "pedantic") return CUBLAS_COMPUTE.C32F_PEDANTIC;
  return CUBLAS_COMPUTE.C32F;
}

/**
 * Queues the row-major product (a strided batch with `g.batch`) on the handle's stream through
 * `cublasGemmEx` / `cublasGemmStridedBatchedEx`.
 */
export function rowMajorGemm(h: CublasHandle, g: RowMajorGemm): void {
  const dtype = g.dtype ?? "f32";
  const outDtype = g.outDtype ?? dtype;
  if (!(dtype in DATA_TYPE) || !(outDtype in DATA_TYPE)) {
    throw new TypeError(`Cannot run a ${dtype} -> ${outDtype} matrix product: use f32 or bf16`);
  }
  if (dtype === "f32" && outDtype !== "f32") {
    throw new TypeError("Cannot write an f32 matrix product as bf16: use outDtype f32");
  }
  const x = rowMajorToCublas(g);
  h.scalars[0] = g.alpha ?? 1;
  h.scalars[1] = g.beta ?? 0;
  const ab = DATA_TYPE[dtype];
  const ct = DATA_TYPE[outDtype];
  const compute = computeTypeFor(dtype, h.math);
  const s = h.lib.symbols;
  const shape = `${g.m}x${g.k} * ${g.k}x${g.n} ${dtype}`;
  if (g.batch === undefined) {
    h.lib.check(
      s.cublasGemmEx(
        h.handle,
        x.transa,
        x.transb,
        x.m,
        x.n,
        x.k,
        h.alpha,
        x.a,
        ab,
        x.lda,
        x.b,
        ab,
        x.ldb,
        h.beta,
        x.c,
        ct,
        x.ldc,
        compute,
        CUBLAS_GEMM_DEFAULT,
      ),
      `run the matrix product ${shape} (cublasGemmEx)`,
    );
    return;
  }
  h.lib.check(
    s.cublasGemmStridedBatchedEx(
      h.handle,
      x.transa,
      x.transb,
      x.m,
      x.n,
      x.k,
      h.alpha,
      x.a,
      ab,
      x.lda,
      BigInt(x.strideA),
      x.b,
      ab,
      x.ldb,
      BigInt(x.strideB),
      h.beta,
      x.c,
      ct,
      x.ldc,
      BigInt(x.strideC),
      g.batch.count,
      compute,
      CUBLAS_GEMM_DEFAULT,
    ),
    `run ${g.batch.count} matrix products ${shape} (cublasGemmStridedBatchedEx)`,
  );
}

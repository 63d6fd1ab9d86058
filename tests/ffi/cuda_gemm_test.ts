/**
 * The row-major to cuBLAS (column-major) mapping of `gemm.ts`: the mapped arguments, run through a
 * column-major BLAS gemm exactly as the BLAS reference defines it, give the row-major product for
 * random shapes, transposes, padded leading dimensions and strided batches.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { CUBLAS_COMPUTE, CUBLAS_OP } from "../../ffi/cuda/cublas_symbols.ts";
import { computeTypeFor, type RowMajorGemm, rowMajorToCublas } from "../../ffi/cuda/gemm.ts";

/** BLAS `gemm` (column-major) over one flat memory; pointers are element offsets into it. */
function blasGemm(
  mem: Float64Array,
  ta: number,
  tb: number,
  m: number,
  n: number,
  k: number,
  a: number,
  lda: number,
  b: number,
  ldb: number,
  c: number,
  ldc: number,
): void {
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < m; i++) {
      let sum = 0;
      for (let l = 0; l < k; l++) {
        const av = ta === CUBLAS_OP.N ? mem[a + i + l * lda] : mem[a + l + i * lda];
        const bv = tb === CUBLAS_OP.N ? mem[b + l + j * ldb] : mem[b + j + l * ldb];
        sum += av * bv;
      }
      mem[c + i + j * ldc] = sum;
    }
  }
}

/** The row-major product written out directly. */
function rowMajorReference(
  mem: Float64Array,
  g: Required<Omit<RowMajorGemm, "batch">>,
  at: number[],
) {
  const [a, b, c] = at;
  for (let i = 0; i < g.m; i++) {
    for (let j = 0; j < g.n; j++) {
      let sum = 0;
      for (let l = 0; l < g.k; l++) {
        const av = g.transA ? mem[a + l * g.lda + i] : mem[a + i * g.lda + l];
        const bv = g.transB ? mem[b + j * g.ldb + l] : mem[b + l * g.ldb + j];
        sum += av * bv;
      }
      mem[c + i * g.ldc + j] = sum;
    }
  }
}

Deno.test("gemm: the cuBLAS mapping computes the row-major product (random shapes, batches)", () => {
  fc.assert(
    fc.property(
      fc.record({
        m: fc.integer({ min: 1, max: 6 }),
        n: fc.integer({ min: 1, max: 6 }),
        k: fc.integer({ min: 1, max: 6 }),
        transA: fc.boolean(),
        transB: fc.boolean(),
        padA: fc.integer({ min: 0, max: 3 }),
        padB: fc.integer({ min: 0, max: 3 }),
        padC: fc.integer({ min: 0, max: 3 }),
        batch: fc.integer({ min: 1, max: 3 }),
        seed: fc.integer(),
      }),
      (p) => {
        const lda = (p.transA ? p.m : p.k) + p.padA;
        const ldb = (p.transB ? p.k : p.n) + p.padB;
        const ldc = p.n + p.padC;
        const sizeA = (p.transA ? p.k : p.m) * lda;
        const sizeB = (p.transB ? p.n : p.k) * ldb;
        const sizeC = p.m * ldc;
        const [a, b, c] = [0, sizeA * p.batch, (sizeA + sizeB) * p.batch];
        const total = (sizeA + sizeB + sizeC) * p.batch;
        const mem = new Float64Array(total);
        let s = p.seed >>> 0;
        for (let i = 0; i < c; i++) {
          s = (s * 1664525 + 1013904223) >>> 0;
          mem[i] = (s % 19) - 9;
        }
        const expected = mem.slice();
        const g = {
          m: p.m,
          n: p.n,
          k: p.k,
          transA: p.transA,
          transB: p.transB,
          lda,
          ldb,
          ldc,
          a: BigInt(a),
          b: BigInt(b),
          c: BigInt(c),
          alpha: 1,
          beta: 0,
          dtype: "f32" as const,
          outDtype: "f32" as const,
        };
        for (let t = 0; t < p.batch; t++) {
          rowMajorReference(expected, g, [a + t * sizeA, b + t * sizeB, c + t * sizeC]);
        }
        const x = rowMajorToCublas({
          ...g,
          batch: { count: p.batch, strideA: sizeA, strideB: sizeB, strideC: sizeC },
        });
        for (let t = 0; t < p.batch; t++) {
          blasGemm(
            mem,
            x.transa,
            x.transb,
            x.m,
            x.n,
            x.k,
            Number(x.a) + t * x.strideA,
            x.lda,
            Number(x.b) + t * x.strideB,
            x.ldb,
            Number(x.c) + t * x.strideC,
            x.ldc,
          );
        }
        assert.deepEqual(mem, expected);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("gemm: the documented mapping gemm(opB, opA, n, m, k, B, ldb, A, lda, C, n)", () => {
  const x = rowMajorToCublas({ m: 3, n: 5, k: 7, a: 100n, b: 200n, c: 300n, transB: true });
  assert.deepEqual(x, {
    transa: CUBLAS_OP.T,
    transb: CUBLAS_OP.N,
    m: 5,
    n: 3,
    k: 7,
    a: 200n,
    lda: 7,
    b: 100n,
    ldb: 7,
    c: 300n,
    ldc: 5,
    strideA: 0,
    strideB: 0,
    strideC: 0,
  });
});

Deno.test("gemm: bad dimensions and leading dimensions are refused by name", () => {
  const base = { m: 2, n: 3, k: 4, a: 0n, b: 0n, c: 0n };
  assert.throws(() => rowMajorToCublas({ ...base, m: 0 }), /m = 0: use an integer >= 1/);
  assert.throws(() => rowMajorToCublas({ ...base, k: 1.5 }), /k = 1.5/);
  assert.throws(() => rowMajorToCublas({ ...base, lda: 3 }), /lda = 3: it must be an integer >= 4/);
  assert.throws(
    () => rowMajorToCublas({ ...base, transA: true, lda: 1 }),
    /lda = 1: it must be an integer >= 2/,
  );
  assert.throws(() => rowMajorToCublas({ ...base, ldc: 2 }), /ldc = 2/);
  assert.throws(
    () => rowMajorToCublas({ ...base, batch: { count: 0, strideA: 0, strideB: 0, strideC: 0 } }),
    /batch.count = 0/,
  );
});

Deno.test("gemm: compute types keep f32 exact unless TF32 is asked for; bf16 accumulates in f32", () => {
  assert.equal(computeTypeFor("f32", "default"), CUBLAS_COMPUTE.C32F);
  assert.equal(computeTypeFor("f32", "pedantic"), CUBLAS_COMPUTE.C32F_PEDANTIC);
  assert.equal(computeTypeFor("f32", "tf32"), CUBLAS_COMPUTE.C32F_FAST_TF32);
  assert.equal(computeTypeFor("bf16", "default"), CUBLAS_COMPUTE.C32F);
  assert.equal(computeTypeFor("bf16", "tf32"), CUBLAS_COMPUTE.C32F);
});

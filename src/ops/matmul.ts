/**
 * 2-D matrix product with optional transposes: `op(a) @ op(b)`.
 *
 * @module
 */

import type { Backend, Storage } from "../backend/backend.ts";
import { record } from "../tensor/autodiff.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { checkRank, checkSameContext, fmtShape } from "./validate.ts";

/** Options of {@link matmul}. */
export interface MatmulOptions {
  /** Use `a` transposed (a is stored [k, m]). */
  transA?: boolean;
  /** Use `b` transposed (b is stored [n, k]). */
  transB?: boolean;
}

function gemm(
  be: Backend,
  a: Storage,
  b: Storage,
  c: Storage,
  dims: { m: number; n: number; k: number; transA: boolean; transB: boolean },
): void {
  be.gemm({ a, b, c, ...dims, alpha: 1, beta: 0 });
}

/**
 * The product `op(a) @ op(b)` of two matrices, where `op` transposes when asked:
 * op(a) is [m, k], op(b) is [k, n], the result [m, n]. Differentiable in `a` and `b`.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  checkRank("matmul", "a", a, 2);
  checkRank("matmul", "b", b, 2);
  checkSameContext("matmul", [a, b]);
  const [m, k] = transA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const [kb, n] = transB ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
  if (k !== kb) {
    throw new RangeError(
      `Cannot run matmul: op(a) of a ${fmtShape(a.shape)}${transA ? "^T" : ""} has ${k} columns ` +
        `but op(b) of b ${fmtShape(b.shape)}${transB ? "^T" : ""} has ${kb} rows`,
    );
  }
  const ctx = a.ctx;
  const be = a.backend;
  const y = ctx.empty([m, n]);
  gemm(be, a.storage, b.storage, y.storage, { m, n, k, transA, transB });
  return record(y, [a, b], (dy) => {
    // With A = op(a), B = op(b): dA = dy B^T and dB = A^T dy; a transposed input takes the
    // transpose of its gradient, which swaps the factors of the product.
    let da: Tensor | null = null;
    let db: Tensor | null = null;
    if (a.requiresGrad) {
      da = ctx.empty(a.shape);
      if (!transA) {
        gemm(be, dy.storage, b.storage, da.storage, {
          m,
          n: k,
          k: n,
          transA: false,
          transB: !transB,
        });
      } else {
        gemm(be, b.storage, dy.storage, da.storage, {
          m: k,
          n: m,
          k: n,
          transA: transB,
          transB: true,
        });
      }
    }
    if (b.requiresGrad) {
      db = ctx.empty(b.shape);
      if (!transB) {
        gemm(be, a.storage, dy.storage, db.storage, {
          m: k,
          n,
          k: m,
          transA: !transA,
          transB: false,
        });
      } else {
        gemm(be, dy.storage, a.storage, db.storage, {
          m: n,
          n: k,
          k: m,
          transA: true,
          transB: transA,
        });
      }
    }
    return [da, db];
  });
}

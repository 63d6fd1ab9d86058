/**
 * Fully connected layer in PyTorch's layout: `y = x @ w^T + b`.
 *
 * @module
 */

import { record } from "../tensor/autodiff.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { checkRank, checkSameContext, fmtShape } from "./validate.ts";

/**
 * `x` [N, in] times `w` [out, in] transposed, plus the optional bias `b` [out]: [N, out].
 * Differentiable in `x`, `w` and `b`.
 */
export function linear(x: Tensor, w: Tensor, b?: Tensor): Tensor {
  checkRank("linear", "input x", x, 2);
  checkRank("linear", "weight w", w, 2);
  if (b) checkRank("linear", "bias b", b, 1);
  checkSameContext("linear", b ? [x, w, b] : [x, w]);
  const [n, inF] = x.shape;
  const [outF, wIn] = w.shape;
  if (wIn !== inF) {
    throw new RangeError(
      `Cannot run linear: input has ${inF} features but the weight ${fmtShape(w.shape)} ` +
        `expects ${wIn}`,
    );
  }
  if (b && b.shape[0] !== outF) {
    throw new RangeError(
      `Cannot run linear: bias has ${b.shape[0]} entries but the weight has ${outF} outputs`,
    );
  }
  const ctx = x.ctx;
  const be = x.backend;
  const xw = ctx.empty([n, outF]);
  be.gemm({
    a: x.storage,
    b: w.storage,
    c: xw.storage,
    m: n,
    n: outF,
    k: inF,
    transA: false,
    transB: true,
    alpha: 1,
    beta: 0,
  });
  let y = xw;
  if (b) {
    y = ctx.empty([n, outF]);
    be.addRowVector({ x: xw.storage, bias: b.storage, y: y.storage, rows: n, cols: outF });
    xw.dispose();
  }
  const inputs = b ? [x, w, b] : [x, w];
  return record(y, inputs, (dy) => {
    let dx: Tensor | null = null;
    let dw: Tensor | null = null;
    let db: Tensor | null = null;
    if (x.requiresGrad) {
      // dx [N, in] = dy [N, out] @ w [out, in]
      dx = ctx.empty(x.shape);
      be.gemm({
        a: dy.storage,
        b: w.storage,
        c: dx.storage,
        m: n,
        n: inF,
        k: outF,
        transA: false,
        transB: false,
        alpha: 1,
        beta: 0,
      });
    }
    if (w.requiresGrad) {
      // dw [out, in] = dy^T [out, N] @ x [N, in]
      dw = ctx.empty(w.shape);
      be.gemm({
        a: dy.storage,
        b: x.storage,
        c: dw.storage,
        m: outF,
        n: inF,
        k: n,
        transA: true,
        transB: false,
        alpha: 1,
        beta: 0,
      });
    }
    if (b?.requiresGrad) {
      db = ctx.empty(b.shape);
      be.sumRows({ x: dy.storage, out: db.storage, rows: n, cols: outF });
    }
    return b ? [dx, dw, db] : [dx, dw];
  });
}

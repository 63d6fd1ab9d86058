/**
 * Elementwise arithmetic on tensors of equal shape: `add`, `sub`, `mul`, `scale`.
 *
 * @module
 */

import { record } from "../tensor/autodiff.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { checkF32, checkFinite, checkSameContext, checkSameShape } from "./validate.ts";

/** out = alpha * x + beta * y as a new tensor (no autodiff node). */
function axpby(x: Tensor, y: Tensor, alpha: number, beta: number): Tensor {
  const out = x.ctx.empty(x.shape);
  x.backend.axpby({
    x: x.storage,
    y: y.storage,
    out: out.storage,
    alpha,
    beta,
    n: x.size,
  });
  return out;
}

/** a * b elementwise as a new tensor (no autodiff node). */
function product(a: Tensor, b: Tensor): Tensor {
  const out = a.ctx.empty(a.shape);
  a.backend.mul({ a: a.storage, b: b.storage, out: out.storage, n: a.size });
  return out;
}

function checkBinary(op: string, a: Tensor, b: Tensor): void {
  checkF32(op, "a", a);
  checkF32(op, "b", b);
  checkSameContext(op, [a, b]);
  checkSameShape(op, a, b);
}

/** a + b (same shapes, no broadcasting). */
export function add(a: Tensor, b: Tensor): Tensor {
  checkBinary("add", a, b);
  const y = axpby(a, b, 1, 1);
  return record(y, [a, b], (dy) => [dy, dy]);
}

/** a - b (same shapes, no broadcasting). */
export function sub(a: Tensor, b: Tensor): Tensor {
  checkBinary("sub", a, b);
  const y = axpby(a, b, 1, -1);
  return record(y, [a, b], (dy) => [dy, b.requiresGrad ? axpby(dy, dy, -1, 0) : null]);
}

/** a * b elementwise (same shapes, no broadcasting). */
export function mul(a: Tensor, b: Tensor): Tensor {
  checkBinary("mul", a, b);
  const y = product(a, b);
  return record(y, [a, b], (dy) => [
    a.requiresGrad ? product(dy, b) : null,
    b.requiresGrad ? product(dy, a) : null,
  ]);
}

/** alpha * x for a host scalar `alpha`. */
export function scale(x: Tensor, alpha: number): Tensor {
  checkF32("scale", "x", x);
  checkFinite("scale", "alpha", alpha);
  const y = axpby(x, x, alpha, 0);
  return record(y, [x], (dy) => [axpby(dy, dy, alpha, 0)]);
}

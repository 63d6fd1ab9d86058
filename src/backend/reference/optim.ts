/**
 * The multi-tensor optimiser kernels of the reference backend: one SGD (optionally LARS) step and
 * one teacher EMA over every parameter tensor, in f64 arithmetic rounded once to f32 on store.
 *
 * @module
 */

import type { Opts } from "../backend.ts";
import { f32Of } from "./storage.ts";

/** Euclidean norm of the first `n` elements, accumulated in f64. */
function norm(a: Float32Array, n: number): number {
  let sq = 0;
  for (let i = 0; i < n; i++) sq += a[i] * a[i];
  return Math.sqrt(sq);
}

/**
 * LARS' factor of tensor i: the trust ratio eta |p| / (|g| + wd |p| + eps) (with `clip`,
 * min(ratio / lr, 1)), or null where the tensor is not adapted (adapt[i] false, or a zero norm).
 */
function trustRatio(o: Opts<"sgdUpdateMulti">, i: number, n: number): number | null {
  const lars = o.lars;
  if (!lars || !lars.adapt[i]) return null;
  const pNorm = norm(f32Of(o.params[i]), n);
  const gNorm = norm(f32Of(o.grads[i]), n);
  if (pNorm === 0 || gNorm === 0) return null;
  const ratio = lars.eta * pNorm / (gNorm + o.weightDecay[i] * pNorm + lars.eps);
  return lars.clip ? Math.min(ratio / o.lr, 1) : ratio;
}

/**
 * `sgdUpdateMulti`, in place, per tensor i (PyTorch SGD, dampening 0):
 * d = g + wd p (with LARS: d = r (g + wd p) where adapted, d = g where not, as solo-learn);
 * buf = momentum buf + d; p -= lr (nesterov ? d + momentum buf : buf).
 */
export function sgdUpdateMulti(o: Opts<"sgdUpdateMulti">): void {
  const { lr, momentum, nesterov } = o;
  o.params.forEach((ps, i) => {
    const n = ps.length;
    const p = f32Of(ps), g = f32Of(o.grads[i]), buf = f32Of(o.momentumBufs[i]);
    const ratio = trustRatio(o, i, n);
    // Under LARS the weight decay belongs to the adaptation (solo-learn, apex).
    const wd = o.lars && ratio === null ? 0 : o.weightDecay[i];
    const r = ratio ?? 1;
    for (let j = 0; j < n; j++) {
      const d = r * (g[j] + wd * p[j]);
      const b = momentum * buf[j] + d;
      buf[j] = b;
      p[j] = p[j] - lr * (nesterov ? d + momentum * b : b);
    }
  });
}

/** `emaUpdateMulti`: out[i] = m teacher[i] + (1 - m) student[i] (out[i] may be teacher[i]). */
export function emaUpdateMulti(o: Opts<"emaUpdateMulti">): void {
  const m = o.momentum;
  o.teacher.forEach((ts, i) => {
    const t = f32Of(ts), s = f32Of(o.student[i]), out = f32Of(o.out[i]);
    for (let j = 0; j < ts.length; j++) out[j] = m * t[j] + (1 - m) * s[j];
  });
}

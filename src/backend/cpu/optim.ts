/**
 * The multi-tensor optimiser kernels of the cpu backend: `sgdUpdateMulti` (SGD with momentum,
 * Nesterov, weight decay and optional LARS trust ratios) and `emaUpdateMulti` (the teacher's EMA),
 * one call over every parameter tensor.
 *
 * Both are tight TypeScript loops over the storages' physical f32 buffers (no allocation per
 * element or per tensor; measured ≈1.3 ns/element on one core, which beats chaining oneDNN sum
 * primitives whose scales would be fixed at creation while lr changes every step). The operands
 * of one tensor share one layout (a blocked weight layout stays blocked; padding elements are
 * zero in all of them, so they stay zero and add nothing to the LARS norms). LARS norms are
 * computed here, in f64, from the values before the step.
 *
 * @module
 */

import type { Opts } from "../backend.ts";
import { elementwiseLayout } from "./eltwise.ts";
import type { CpuRuntime } from "./runtime.ts";
import type { CpuStorage } from "./storage.ts";
import { cpu } from "./validate.ts";

/** The physical f32 arrays of `storages` in one shared layout, and how many elements to visit. */
function sharedLayout(
  rt: CpuRuntime,
  storages: CpuStorage[],
  n: number,
): { arrays: Float32Array[]; count: number } {
  const md = elementwiseLayout(rt, storages, n);
  const count = md.plain ? n : md.size / 4;
  return { arrays: storages.map((s) => rt.layout(s, md).f32), count };
}

/** `sgdUpdateMulti` (semantics in the contract's JSDoc). */
export function sgdUpdateMulti(rt: CpuRuntime, o: Opts<"sgdUpdateMulti">): void {
  const { lr, momentum, nesterov, lars } = o;
  for (let i = 0; i < o.params.length; i++) {
    const p = cpu(o.params[i]);
    const n = p.length;
    if (n === 0) continue;
    let wd = o.weightDecay[i];
    const { arrays, count } = sharedLayout(rt, [p, cpu(o.grads[i]), cpu(o.momentumBufs[i])], n);
    const [param, grad, buf] = arrays;
    let scale = 1;
    if (lars) {
      // Under LARS the weight decay belongs to the adaptation (solo-learn, apex): a tensor that is
      // not adapted (excluded, or a zero norm) gets d = g.
      const pn = lars.adapt[i] ? Math.sqrt(sumOfSquares(param, count)) : 0;
      const gn = pn > 0 ? Math.sqrt(sumOfSquares(grad, count)) : 0;
      if (pn > 0 && gn > 0) {
        scale = lars.eta * pn / (gn + wd * pn + lars.eps);
        if (lars.clip) scale = Math.min(scale / lr, 1);
      } else {
        wd = 0;
      }
    }
    if (nesterov) sgdNesterov(param, grad, buf, count, lr, momentum, wd, scale);
    else sgdPlain(param, grad, buf, count, lr, momentum, wd, scale);
  }
}

/** sum of x[i]^2 over the first n elements, accumulated in f64. */
function sumOfSquares(x: Float32Array, n: number): number {
  let total = 0;
  for (let i = 0; i < n; i++) total += x[i] * x[i];
  return total;
}

/** d = scale (g + wd p); buf = m buf + d; p -= lr buf. */
function sgdPlain(
  param: Float32Array,
  grad: Float32Array,
  buf: Float32Array,
  n: number,
  lr: number,
  m: number,
  wd: number,
  scale: number,
): void {
  for (let i = 0; i < n; i++) {
    const p = param[i];
    const b = m * buf[i] + scale * (grad[i] + wd * p);
    buf[i] = b;
    param[i] = p - lr * b;
  }
}

/** d = scale (g + wd p); buf = m buf + d; p -= lr (d + m buf). */
function sgdNesterov(
  param: Float32Array,
  grad: Float32Array,
  buf: Float32Array,
  n: number,
  lr: number,
  m: number,
  wd: number,
  scale: number,
): void {
  for (let i = 0; i < n; i++) {
    const p = param[i];
    const d = scale * (grad[i] + wd * p);
    const b = m * buf[i] + d;
    buf[i] = b;
    param[i] = p - lr * (d + m * b);
  }
}

/** `emaUpdateMulti`: out[i] = m teacher[i] + (1 - m) student[i]; out may be teacher. */
export function emaUpdateMulti(rt: CpuRuntime, o: Opts<"emaUpdateMulti">): void {
  const m = o.momentum, s = 1 - m;
  for (let i = 0; i < o.teacher.length; i++) {
    const t = cpu(o.teacher[i]);
    const n = t.length;
    if (n === 0) continue;
    const out = cpu(o.out[i]);
    const md = elementwiseLayout(rt, [t, cpu(o.student[i]), out], n);
    const count = md.plain ? n : md.size / 4;
    const teacher = rt.layout(t, md).f32;
    const student = rt.layout(cpu(o.student[i]), md).f32;
    // An out distinct from teacher is overwritten: it takes the layout without being read.
    ema(teacher, student, out === t ? teacher : rt.output(out, md).f32, count, m, s);
  }
}

function ema(
  teacher: Float32Array,
  student: Float32Array,
  out: Float32Array,
  n: number,
  m: number,
  s: number,
): void {
  for (let i = 0; i < n; i++) out[i] = m * teacher[i] + s * student[i];
}

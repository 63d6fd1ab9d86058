/**
 * The multi-tensor optimiser kernels of the cpu backend: `sgdUpdateMulti` (SGD with momentum,
 * Nesterov, weight decay and optional LARS trust ratios) and `emaUpdateMulti` (the teacher's EMA),
 * one call over every parameter tensor.
 *
 * Both are one pass per tensor over the storages' physical f32 buffers (SGD: reading three arrays
 * and writing two, where oneDNN would need three passes and a temporary), computing in f64 and
 * rounding once on store, as the reference backend: in C on the backend's threads where the own
 * kernels are built (`ffi/cpu/kernels/elementwise.c`, the same operations in the same order), else
 * as the TypeScript loops below (≈1.3 ns/element on one core). The operands of one tensor share one
 * layout (a blocked weight layout stays blocked; padding elements are zero in all of them, so they
 * stay zero and add nothing to the LARS norms). LARS norms are computed here, in f64, from the
 * values before the step.
 *
 * @module
 */

import type { Opts } from "../backend.ts";
import { elementwiseLayout } from "./eltwise.ts";
import type { CpuRuntime } from "./runtime.ts";
import type { CpuStorage } from "./storage.ts";
import type { Buffer } from "./buffers.ts";
import { elementwiseThreads } from "./threads.ts";
import { cpu } from "./validate.ts";

/** The buffers of `storages` in one shared layout, and how many elements to visit. */
function sharedLayout(
  rt: CpuRuntime,
  storages: CpuStorage[],
  n: number,
): { buffers: Buffer[]; arrays: Float32Array[]; count: number } {
  const md = elementwiseLayout(rt, storages, n);
  const count = md.plain ? n : md.size / 4;
  const buffers = storages.map((s) => rt.layout(s, md));
  return { buffers, arrays: buffers.map((b) => b.f32), count };
}

/** `sgdUpdateMulti` (semantics in the contract's JSDoc). */
export function sgdUpdateMulti(rt: CpuRuntime, o: Opts<"sgdUpdateMulti">): void {
  const { lr, momentum, nesterov, lars } = o;
  for (let i = 0; i < o.params.length; i++) {
    const p = cpu(o.params[i]);
    const n = p.length;
    if (n === 0) continue;
    let wd = o.weightDecay[i];
    const { buffers, arrays, count } = sharedLayout(
      rt,
      [p, cpu(o.grads[i]), cpu(o.momentumBufs[i])],
      n,
    );
    const [param, grad, buf] = arrays;
    let scale = 1;
    if (lars) {
      // Under LARS the weight decay belongs to the adaptation (solo-learn, apex): a tensor that is
      // not adapted (excluded, or a zero norm) gets d = g.
      if (lars.adapt[i]) sumsOfSquares(param, grad, count, SQUARES);
      const [pn, gn] = lars.adapt[i] ? [Math.sqrt(SQUARES[0]), Math.sqrt(SQUARES[1])] : [0, 0];
      if (pn > 0 && gn > 0) {
        scale = lars.eta * pn / (gn + wd * pn + lars.eps);
        if (lars.clip) scale = Math.min(scale / lr, 1);
      } else {
        wd = 0;
      }
    }
    const k = rt.kernels;
    if (k !== null) {
      // The same f64 arithmetic in C, on the backend's threads (bit-identical: see elementwise.c).
      const [pb, gb, bb] = buffers;
      const threads = elementwiseThreads(rt, 12 * count);
      k.symbols.ressl_sgd_f32(
        pb.ptr,
        gb.ptr,
        bb.ptr,
        BigInt(count),
        lr,
        momentum,
        wd,
        scale,
        nesterov ? 1 : 0,
        threads,
      );
    } else if (nesterov) sgdNesterov(param, grad, buf, count, lr, momentum, wd, scale);
    else sgdPlain(param, grad, buf, count, lr, momentum, wd, scale);
  }
}

/** Scratch for {@link sumsOfSquares}' two results (overwritten by every call). */
const SQUARES = new Float64Array(2);

/** out = [sum of a[i]^2, sum of b[i]^2] over the first n elements, in one pass, in f64. */
function sumsOfSquares(a: Float32Array, b: Float32Array, n: number, out: Float64Array): void {
  let sa = 0, sb = 0;
  for (let i = 0; i < n; i++) {
    const x = a[i], y = b[i];
    sa += x * x;
    sb += y * y;
  }
  out[0] = sa;
  out[1] = sb;
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

/**
 * `emaUpdateMulti`: out[i] = m teacher[i] + (1 - m) student[i] (out may be teacher), a TypeScript
 * loop in f64 rounded once to f32, bit-identical to the reference backend. (A oneDNN binary add
 * with runtime scales on 2 threads was faster, best of 9 ≈3 ms against ≈11 ms for 11 M parameters
 * on a busy machine, but it rounds the scales and each product to f32, an ulp off.)
 */
export function emaUpdateMulti(rt: CpuRuntime, o: Opts<"emaUpdateMulti">): void {
  const m = o.momentum, s = 1 - m;
  for (let i = 0; i < o.teacher.length; i++) {
    const t = cpu(o.teacher[i]);
    const n = t.length;
    if (n === 0) continue;
    const out = cpu(o.out[i]), student = cpu(o.student[i]);
    const md = elementwiseLayout(rt, [t, student, out], n);
    const count = md.plain ? n : md.size / 4;
    const tb = rt.layout(t, md), sb = rt.layout(student, md);
    // An out distinct from teacher is overwritten: it takes the layout without being read.
    const ob = out === t ? tb : rt.output(out, md);
    const k = rt.kernels;
    if (k !== null) {
      const threads = elementwiseThreads(rt, 12 * count);
      k.symbols.ressl_ema_f32(tb.ptr, sb.ptr, ob.ptr, BigInt(count), m, s, threads);
    } else ema(tb.f32, sb.f32, ob.f32, count, m, s);
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

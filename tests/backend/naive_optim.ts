/**
 * Naive f64 oracles of the optimiser kernels and of bf16 rounding, independent of the reference
 * backend: SGD written as `torch.optim.SGD.step` reads (weight decay, then momentum buffer, then
 * Nesterov), LARS as solo-learn's `LARS.step` (trust ratio, clipping, weight decay only inside the
 * adaptation), the teacher EMA, and round-to-nearest-even to bf16 by comparing the distances to
 * the two neighbouring bf16 values.
 *
 * @module
 */

import type { LarsSettings } from "../../src/backend/backend.ts";

type Vals = ArrayLike<number>;

/** One tensor of a multi-tensor SGD call. */
export interface SgdTensor {
  p: Vals;
  g: Vals;
  buf: Vals;
  wd: number;
}

/** The hyper-parameters of a multi-tensor SGD call. */
export interface SgdHyper {
  lr: number;
  momentum: number;
  nesterov: boolean;
  lars: Omit<LarsSettings, "adapt"> | null;
}

function norm(a: Vals): number {
  let sq = 0;
  for (let i = 0; i < a.length; i++) sq += a[i] * a[i];
  return Math.sqrt(sq);
}

/** The new parameters and momentum buffers after one step (buffers as given, not lazily made). */
export function naiveSgd(
  tensors: readonly SgdTensor[],
  adapt: readonly boolean[],
  h: SgdHyper,
): { p: Float64Array; buf: Float64Array }[] {
  return tensors.map((t, i) => {
    const n = t.p.length;
    let d = Float64Array.from(t.g);
    if (h.lars) {
      const pNorm = norm(t.p), gNorm = norm(t.g);
      if (adapt[i] && pNorm !== 0 && gNorm !== 0) {
        let larsLr = pNorm / (gNorm + pNorm * t.wd + h.lars.eps);
        larsLr *= h.lars.eta;
        if (h.lars.clip) larsLr = Math.min(larsLr / h.lr, 1);
        d = d.map((v, j) => (v + t.wd * t.p[j]) * larsLr);
      }
    } else {
      d = d.map((v, j) => v + t.wd * t.p[j]);
    }
    const buf = Float64Array.from({ length: n }, (_, j) => h.momentum * t.buf[j] + d[j]);
    const step = h.nesterov ? d.map((v, j) => v + h.momentum * buf[j]) : buf;
    return { p: Float64Array.from({ length: n }, (_, j) => t.p[j] - h.lr * step[j]), buf };
  });
}

/** m teacher + (1 - m) student. */
export function naiveEma(teacher: Vals, student: Vals, m: number): Float64Array {
  return Float64Array.from(
    { length: teacher.length },
    (_, i) => m * teacher[i] + (1 - m) * student[i],
  );
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The value of f32 bits (sign, exponent, mantissa) as a number; 0x7f800000 gives 2^128. */
function valueOfBits(bits: number): number {
  const sign = bits >>> 31 ? -1 : 1;
  const e = (bits >>> 23) & 0xff, m = bits & 0x7fffff;
  if (e === 0) return sign * m * 2 ** -149;
  return sign * (1 + m / 2 ** 23) * 2 ** (e - 127);
}

/**
 * The bf16 bits nearest to the f32 value `x`: the bf16 values below and above |x| in magnitude
 * (the f32 bits with the low half cleared, and the next bf16 up, where the one past the largest
 * finite value counts as 2^128 and stands for infinity), the closer one, ties to the even one.
 */
export function naiveBf16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  if (Number.isNaN(f32[0])) return 0x7fc0 | ((bits >>> 16) & 0x8000);
  const lo = (bits >>> 16) & 0xffff;
  if (!Number.isFinite(f32[0])) return lo;
  const hi = lo + 1;
  const [vLo, vHi] = [valueOfBits(lo << 16 >>> 0), valueOfBits(hi << 16 >>> 0)];
  const [dLo, dHi] = [Math.abs(f32[0] - vLo), Math.abs(vHi - f32[0])];
  if (dLo < dHi) return lo;
  if (dHi < dLo) return hi;
  return lo % 2 === 0 ? lo : hi;
}

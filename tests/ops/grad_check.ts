/**
 * Finite-difference gradient checking for differentiable ops.
 *
 * `checkGradients(ctx, spec)` draws random f32 inputs and a random upstream cotangent r, takes the
 * loss L = sum(op(x) * r), and compares the analytic gradient (`valueAndGrad`) with central
 * differences: each checked input element is perturbed to the f32 values x±h (and x±h/2), the op
 * runs forward, its output is downloaded and L is evaluated in f64 on the host; each quotient
 * divides by the exact difference of the two perturbed f32 values, and the two step sizes are
 * combined by Richardson extrapolation (curved ops such as batch norm on few values stay
 * accurate). An element passes when |analytic - numeric| <= atol + noise + truncation +
 * rtol * |numeric|: noise estimates the f32 rounding of the quotients (8 * 2^-24 * sum|out * r| /
 * step), truncation a quarter of the gap between the two step sizes' estimates.
 *
 * @module
 */

import { AssertionError } from "node:assert/strict";
import { mul } from "../../src/ops/elementwise.ts";
import { sum } from "../../src/ops/reduce.ts";
import { valueAndGrad } from "../../src/tensor/autodiff.ts";
import { type Context, shapeSize, type Tensor } from "../../src/tensor/tensor.ts";

/** A seeded uniform generator on [0, 1) (mulberry32): reproducible from one integer. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fills an input with `size` values drawn from `rng`. */
export type ValueGenerator = (rng: () => number, size: number) => Float32Array;

/** Uniform values in [lo, hi). */
export function uniformValues(lo = -1, hi = 1): ValueGenerator {
  return (rng, size) => Float32Array.from({ length: size }, () => lo + (hi - lo) * rng());
}

/** Values with |v| in [min, max) and a random sign: keeps inputs away from a kink at 0 (relu). */
export function awayFromZeroValues(min = 0.1, max = 1): ValueGenerator {
  return (rng, size) =>
    Float32Array.from({ length: size }, () => {
      const mag = min + (max - min) * rng();
      return rng() < 0.5 ? -mag : mag;
    });
}

/**
 * Distinct values spaced `spacing` apart, shuffled, centred on 0: any two differ by at least
 * `spacing`, so maxima stay unique under perturbations smaller than spacing / 2 (max pooling).
 */
export function distinctValues(spacing = 0.05): ValueGenerator {
  return (rng, size) => {
    const out = Float32Array.from({ length: size }, (_, i) => (i - size / 2) * spacing);
    for (let i = size - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  };
}

/** One differentiated input of the op. */
export interface InputSpec {
  /** Shape of the input tensor. */
  shape: number[];
  /** How its values are drawn (default uniform in [-1, 1)). */
  values?: ValueGenerator;
}

/** What to check. */
export interface GradCheckSpec {
  /** The inputs the op is differentiated against, in the op's argument order. */
  inputs: InputSpec[];
  /** The op under test; other arguments (options, buffers) are captured by the closure. */
  op: (...xs: Tensor[]) => Tensor;
  /** Seed of the inputs, the cotangent and the sampled coordinates. */
  seed: number;
  /** Perturbation size (default 1e-2). */
  h?: number;
  /** Absolute tolerance before the rounding-noise and truncation terms (default 1e-4). */
  atol?: number;
  /** Relative tolerance (default 2e-3). */
  rtol?: number;
  /** Check at most this many random coordinates per input (default 48). */
  maxCoords?: number;
}

/** Statistics of a passed check (useful for tightening tolerances). */
export interface GradCheckReport {
  /** Number of coordinates compared. */
  checked: number;
  /** Largest |analytic - numeric| / (atol' + rtol |numeric|) seen (<= 1 when passing). */
  worstRatio: number;
}

/** sum(out * r) in f64, and sum(|out * r|). */
function hostLoss(out: Float32Array, r: Float32Array): { loss: number; magnitude: number } {
  let loss = 0;
  let magnitude = 0;
  for (let j = 0; j < out.length; j++) {
    const p = out[j] * r[j];
    loss += p;
    magnitude += Math.abs(p);
  }
  return { loss, magnitude };
}

/** Runs the op without autodiff on host inputs and downloads its output. */
function forward(
  ctx: Context,
  op: (...xs: Tensor[]) => Tensor,
  data: Float32Array[],
  shapes: number[][],
): { values: Float32Array; shape: number[] } {
  return ctx.noGrad(() =>
    ctx.scope(() => {
      const xs = data.map((d, i) => ctx.fromArray(d, shapes[i]));
      const out = op(...xs);
      return { values: out.toFloat32(), shape: [...out.shape] };
    })
  );
}

/**
 * (L(x + h e_k) - L(x - h e_k)) / (exact f32 step) for input `i`, element `k`, and the f32
 * rounding noise of that quotient: 8 * 2^-24 * sum|out * r| / step.
 */
function centralDifference(
  ctx: Context,
  op: (...xs: Tensor[]) => Tensor,
  data: Float32Array[],
  shapes: number[][],
  r: Float32Array,
  i: number,
  k: number,
  h: number,
): { derivative: number; noise: number } {
  const x0 = data[i][k];
  const xp = Math.fround(x0 + h);
  const xm = Math.fround(x0 - h);
  data[i][k] = xp;
  const plus = hostLoss(forward(ctx, op, data, shapes).values, r);
  data[i][k] = xm;
  const minus = hostLoss(forward(ctx, op, data, shapes).values, r);
  data[i][k] = x0;
  const step = xp - xm;
  return {
    derivative: (plus.loss - minus.loss) / step,
    noise: (8 * 2 ** -24 * Math.max(plus.magnitude, minus.magnitude)) / step,
  };
}

/** Indices 0..size-1, or `max` distinct ones chosen by `rng` when size > max. */
function sampleCoords(size: number, max: number, rng: () => number): number[] {
  const all = Array.from({ length: size }, (_, i) => i);
  if (size <= max) return all;
  for (let i = 0; i < max; i++) {
    const j = i + Math.floor(rng() * (size - i));
    [all[i], all[j]] = [all[j], all[i]];
  }
  return all.slice(0, max);
}

/**
 * Compares analytic and central-difference gradients of `sum(op(x) * r)`; throws an
 * `AssertionError` naming the input, coordinate and both values on the first mismatch.
 * Also throws when the op leaks: live tensors and allocations must return to their count before.
 */
export function checkGradients(ctx: Context, spec: GradCheckSpec): GradCheckReport {
  const h = spec.h ?? 1e-2;
  const atol = spec.atol ?? 1e-4;
  const rtol = spec.rtol ?? 2e-3;
  const maxCoords = spec.maxCoords ?? 48;
  const liveBefore = ctx.liveTensors;
  const allocsBefore = ctx.backend.liveAllocations();
  const rng = seededRandom(spec.seed);
  const shapes = spec.inputs.map((s) => s.shape);
  const data = spec.inputs.map((s) => (s.values ?? uniformValues())(rng, shapeSize(s.shape)));
  const base = forward(ctx, spec.op, data, shapes);
  const r = uniformValues()(rng, base.values.length);
  for (const v of base.values) {
    if (!Number.isFinite(v)) throw new AssertionError({ message: "op output is not finite" });
  }

  const analytic = ctx.scope(() => {
    const params = data.map((d, i) => ctx.fromArray(d, shapes[i]));
    const rT = ctx.fromArray(r, base.shape);
    const { grads } = valueAndGrad((ps: Tensor[]) => sum(mul(spec.op(...ps), rT)))(params);
    return grads.map((g) => g.toFloat32());
  });

  let checked = 0;
  let worstRatio = 0;
  for (let i = 0; i < data.length; i++) {
    if (analytic[i].length !== data[i].length) {
      throw new AssertionError({
        message: `gradient of input ${i} has ${analytic[i].length} values, expected ${
          data[i].length
        }`,
      });
    }
    for (const k of sampleCoords(data[i].length, maxCoords, rng)) {
      const coarse = centralDifference(ctx, spec.op, data, shapes, r, i, k, h);
      const fine = centralDifference(ctx, spec.op, data, shapes, r, i, k, h / 2);
      // Richardson extrapolation cancels the O(h^2) truncation error of both estimates; a
      // quarter of their difference bounds what is left (O(h^4)) with a wide margin.
      const numeric = (4 * fine.derivative - coarse.derivative) / 3;
      const truncation = Math.abs(fine.derivative - coarse.derivative) / 4;
      const noise = (4 * fine.noise + coarse.noise) / 3;
      const tol = atol + noise + truncation + rtol * Math.abs(numeric);
      const got = analytic[i][k];
      const err = Math.abs(got - numeric);
      if (!(err <= tol)) {
        throw new AssertionError({
          message:
            `gradient mismatch at input ${i} [${shapes[i]}] element ${k}: analytic ${got}, ` +
            `numeric ${numeric}, |diff| ${err} > tolerance ${tol} (h ${h}, seed ${spec.seed})`,
        });
      }
      worstRatio = Math.max(worstRatio, err / tol);
      checked++;
    }
  }
  if (ctx.liveTensors !== liveBefore || ctx.backend.liveAllocations() !== allocsBefore) {
    throw new AssertionError({
      message: `the op leaked memory: ${ctx.liveTensors - liveBefore} tensors and ` +
        `${ctx.backend.liveAllocations() - allocsBefore} allocations outlived the check`,
    });
  }
  return { checked, worstRatio };
}

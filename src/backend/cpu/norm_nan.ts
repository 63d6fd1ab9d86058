/**
 * When the cpu backend's fast batch norm with ReLU may run (see `nan.ts`): oneDNN's ReLU turns NaN
 * into 0, so a NaN that reaches it must instead send the call to the reference path. These checks
 * read per-channel vectors (c values) and, where nothing cheaper tells, scan an activation.
 *
 * Why the checks suffice, with the batch statistics finite (so x is finite) and gamma, beta
 * finite: |x - mean| / sqrt(var + eps) <= sqrt(n * hw) per channel, so |bn(x)| <= |gamma|
 * sqrt(n hw) + |beta| is finite when that bound is; bn(x) + residual is then NaN only where the
 * residual is NaN.
 *
 * @module
 */

import type { BatchNormGeometry, Storage } from "../backend.ts";
import { allFinite, holdsNaN } from "./nan.ts";
import type { CpuRuntime } from "./runtime.ts";
import { cpu } from "./validate.ts";

/** Largest |bn(x)| bound accepted: far below f32's 3.4e38 (so bn(x) + residual cannot overflow). */
const BOUND = 1e37;

function vector(rt: CpuRuntime, s: Storage, c: number): Float32Array {
  return rt.plain(cpu(s)).f32.subarray(0, c);
}

function finiteVector(v: Float32Array): boolean {
  for (let i = 0; i < v.length; i++) if (v[i] - v[i] !== 0) return false;
  return true;
}

/**
 * Training with ReLU, before the kernel: gamma and beta finite; with a residual, bn(x) bounded
 * (given finite statistics) and the residual free of NaN.
 */
export function trainingInputsSafe(
  rt: CpuRuntime,
  o: { gamma: Storage; beta: Storage; residual?: Storage | null; geom: BatchNormGeometry },
): boolean {
  const { c, n, hw } = o.geom;
  const gamma = vector(rt, o.gamma, c), beta = vector(rt, o.beta, c);
  if (!finiteVector(gamma) || !finiteVector(beta)) return false;
  if (!o.residual) return true;
  const root = Math.sqrt(n * hw);
  for (let i = 0; i < c; i++) {
    if (Math.abs(gamma[i]) * root + Math.abs(beta[i]) > BOUND) return false;
  }
  return !holdsNaN(rt, cpu(o.residual), n * c * hw);
}

/** Whether every one of the `c`-element vectors is finite. */
function vectorsFinite(rt: CpuRuntime, c: number, ...vs: Storage[]): boolean {
  return vs.every((v) => finiteVector(vector(rt, v, c)));
}

/** gamma and beta finite. */
export function affineFinite(
  rt: CpuRuntime,
  o: { gamma: Storage; beta: Storage; geom: BatchNormGeometry },
): boolean {
  return vectorsFinite(rt, o.geom.c, o.gamma, o.beta);
}

/** Backward, after the kernel: dgamma and dbeta finite (the masked gradient held no NaN/inf). */
export function gradientSumsFinite(
  rt: CpuRuntime,
  o: { dgamma: Storage; dbeta: Storage; geom: BatchNormGeometry },
): boolean {
  return vectorsFinite(rt, o.geom.c, o.dgamma, o.dbeta);
}

/** Training, after the kernel: the batch statistics are finite (x held no NaN or infinity). */
export function statisticsFinite(
  rt: CpuRuntime,
  o: { mean: Storage; variance: Storage; geom: BatchNormGeometry },
): boolean {
  return vectorsFinite(rt, o.geom.c, o.mean, o.variance);
}

/**
 * Inference with ReLU: x finite (a scan), the affine map finite and bounded on x's range, the
 * residual free of NaN.
 */
export function inferenceInputsSafe(
  rt: CpuRuntime,
  o: {
    x: Storage;
    gamma: Storage;
    beta: Storage;
    mean: Storage;
    variance: Storage;
    residual?: Storage | null;
    geom: BatchNormGeometry;
    eps: number;
  },
): boolean {
  const { c, n, hw } = o.geom;
  const x = cpu(o.x);
  const top = maxAbs(rt, x, n * c * hw);
  if (!Number.isFinite(top)) return false;
  const gamma = vector(rt, o.gamma, c), beta = vector(rt, o.beta, c);
  const mean = vector(rt, o.mean, c), variance = vector(rt, o.variance, c);
  for (let i = 0; i < c; i++) {
    const scale = gamma[i] / Math.sqrt(variance[i] + o.eps);
    const bound = Math.abs(scale) * (top + Math.abs(mean[i])) + Math.abs(beta[i]);
    if (!(bound <= BOUND)) return false; // also false for NaN
  }
  return !o.residual || !holdsNaN(rt, cpu(o.residual), n * c * hw);
}

/** max |x| over the first `n` elements, NaN or infinity when one of them is not finite. */
function maxAbs(rt: CpuRuntime, s: ReturnType<typeof cpu>, n: number): number {
  if (!allFinite(rt, s, n)) return Infinity;
  const buf = s.md !== null && n === s.length ? s.buf! : rt.plain(s);
  const count = s.md !== null && n === s.length ? s.md.size / (s.dtype === "f32" ? 4 : 2) : n;
  let top = 0;
  if (s.dtype === "f32") {
    const a = buf.f32;
    for (let i = 0; i < count; i++) top = Math.max(top, Math.abs(a[i]));
  } else {
    const a = buf.u16;
    const f = new Float32Array(1), u = new Uint32Array(f.buffer);
    for (let i = 0; i < count; i++) {
      u[0] = (a[i] & 0x7fff) << 16;
      top = Math.max(top, f[0]);
    }
  }
  return top;
}

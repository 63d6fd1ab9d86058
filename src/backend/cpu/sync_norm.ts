/**
 * The SyncBN kernels of the cpu backend (`batchNormStats`, `batchNormMergeStats`,
 * `batchNormBackwardReduce`, `batchNormBackwardApply`): the reference backend's f64 loops
 * (`reference/sync_norm.ts`) on plain copies of the storages. Blocked activations (nChw16c) are
 * read through a reorder into a temporary, leaving the storage's own layout as it was; `dx` and
 * `dresidual` are written plain (the next primitive reorders them as it needs).
 *
 * These kernels run once per batch norm of a step in a job whose BN groups span processes; one
 * f64 pass costs ~2-3 ns per element on one core, small beside the convolutions.
 *
 * @module
 */

import type { Opts, Storage } from "../backend.ts";
import { bf16ToF32, f64ToBf16 } from "../bf16.ts";
import {
  applyGrad,
  channelStats,
  maskedGrad,
  mergeStats,
  reduceSums,
} from "../reference/sync_norm.ts";
import type { CpuRuntime } from "./runtime.ts";
import { viewOf } from "./storage.ts";
import { cpu } from "./validate.ts";

/** A plain f32 copy of the first `n` elements of a float storage (bf16 widened exactly). */
function readF32(rt: CpuRuntime, s: Storage, n: number): Float32Array {
  const c = cpu(s);
  return rt.readPlain(c, (buf) => {
    const v = viewOf(buf, c.dtype);
    if (v instanceof Float32Array) return v.slice(0, n);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = bf16ToF32(v[i]);
    return out;
  });
}

/** Writes `n` values computed by `fill` into `s` (plain layout), rounding once to its dtype. */
function writeFloat(
  rt: CpuRuntime,
  s: Storage,
  n: number,
  fill: (out: Float32Array | Float64Array) => void,
): void {
  const c = cpu(s);
  const buf = rt.output(c, rt.mds.plain([n], c.dataType));
  if (c.dtype === "f32") {
    fill(buf.f32.subarray(0, n));
    return;
  }
  const tmp = new Float64Array(n);
  fill(tmp);
  const bits = buf.u16;
  for (let i = 0; i < n; i++) bits[i] = f64ToBf16(tmp[i]);
}

/** Writes the f32 `values` into the f32 storage `s` (plain). */
function writeF32(rt: CpuRuntime, s: Storage, values: Float32Array): void {
  writeFloat(rt, s, values.length, (out) => out.set(values));
}

/** `batchNormStats` (see the contract). */
export function batchNormStats(rt: CpuRuntime, o: Opts<"batchNormStats">): void {
  const g = o.geom;
  const stats = new Float32Array(2 * g.c);
  channelStats(readF32(rt, o.x, g.n * g.c * g.hw), g, stats);
  writeF32(rt, o.stats, stats);
}

/** `batchNormMergeStats` (see the contract). */
export function batchNormMergeStats(rt: CpuRuntime, o: Opts<"batchNormMergeStats">): void {
  const parts = readF32(rt, o.parts, o.rows * 2 * o.c);
  const mean = new Float32Array(o.c), variance = new Float32Array(o.c);
  mergeStats(parts, o, mean, variance);
  writeF32(rt, o.mean, mean);
  writeF32(rt, o.variance, variance);
}

/** The relu-masked incoming gradient of a backward call. */
function gradOf(
  rt: CpuRuntime,
  o: { dy: Storage; y?: Storage | null; relu?: boolean },
  n: number,
): Float32Array {
  const dy = readF32(rt, o.dy, n);
  return maskedGrad(dy, o.relu === true ? readF32(rt, o.y!, n) : null);
}

/** `batchNormBackwardReduce` (see the contract). */
export function batchNormBackwardReduce(rt: CpuRuntime, o: Opts<"batchNormBackwardReduce">): void {
  const g = o.geom;
  const n = g.n * g.c * g.hw;
  const sums = new Float32Array(2 * g.c);
  const mean = readF32(rt, o.mean, g.c), variance = readF32(rt, o.variance, g.c);
  reduceSums(readF32(rt, o.x, n), gradOf(rt, o, n), mean, variance, o.eps, g, sums);
  writeF32(rt, o.sums, sums);
}

/** `batchNormBackwardApply` (see the contract). */
export function batchNormBackwardApply(rt: CpuRuntime, o: Opts<"batchNormBackwardApply">): void {
  const g = o.geom;
  const n = g.n * g.c * g.hw;
  const grad = gradOf(rt, o, n);
  const x = readF32(rt, o.x, n);
  const gamma = readF32(rt, o.gamma, g.c);
  const mean = readF32(rt, o.mean, g.c), variance = readF32(rt, o.variance, g.c);
  const sums = readF32(rt, o.sums, o.rows * 2 * g.c);
  writeFloat(rt, o.dx, n, (dx) => applyGrad(x, grad, gamma, mean, variance, sums, o, g, dx));
  if (o.dresidual) writeFloat(rt, o.dresidual, n, (dr) => dr.set(grad));
}

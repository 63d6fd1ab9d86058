/**
 * Helpers shared by the reference backend's tests: seeded random data, uploads, closeness checks
 * with tolerances `atol + rtol * |expected|` against f64 expectations.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Storage } from "../backend.ts";
import type { ReferenceBackend } from "./backend.ts";

/** A seeded generator of uniform floats in [lo, hi) (mulberry32), rounded to f32. */
export function randomArray(seed: number, length: number, lo = -1, hi = 1): Float32Array {
  let state = seed >>> 0;
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out[i] = lo + (hi - lo) * u;
  }
  return out;
}

/** Uploads `data` as a new f32 storage of `backend`. */
export function upload(backend: ReferenceBackend, data: ArrayLike<number>): Storage {
  const s = backend.alloc("f32", data.length);
  backend.upload(s, Float32Array.from(data));
  return s;
}

/** A new f32 storage of `length` NaNs (outputs a kernel must overwrite completely). */
export function poisoned(backend: ReferenceBackend, length: number): Storage {
  const s = backend.alloc("f32", length);
  backend.fill(s, NaN);
  return s;
}

/** Downloads an f32 storage. */
export function read(backend: ReferenceBackend, s: Storage): Float32Array {
  return backend.download(s) as Float32Array;
}

/** Asserts |actual[i] - expected[i]| <= atol + rtol * |expected[i]| for every element. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  atol: number,
  rtol: number,
  label: string,
): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const ok = Math.abs(a - e) <= atol + rtol * Math.abs(e);
    if (!ok) {
      assert.fail(`${label}: element ${i} is ${a}, expected ${e} (atol ${atol}, rtol ${rtol})`);
    }
  }
}

/** f64 inner product of two arrays. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** f64 sum of |a[i] * b[i]| (the scale of a dot product's rounding error). */
export function absDot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] * b[i]);
  return s;
}

/**
 * Central finite differences of L(x) = sum(f(x) * weights) (f64 host loss) at `x`: one entry per
 * element of x, using the f32-rounded perturbations actually applied.
 */
export function finiteDifference(
  f: (x: Float32Array) => ArrayLike<number>,
  x: Float32Array,
  weights: ArrayLike<number>,
  h: number,
): Float64Array {
  const grad = new Float64Array(x.length);
  const probe = Float32Array.from(x);
  for (let i = 0; i < x.length; i++) {
    probe[i] = x[i] + h;
    const up = probe[i];
    const lossUp = dot(f(probe), weights);
    probe[i] = x[i] - h;
    const down = probe[i];
    const lossDown = dot(f(probe), weights);
    probe[i] = x[i];
    grad[i] = (lossUp - lossDown) / (up - down);
  }
  return grad;
}

/**
 * Shared pieces of the kernel tests: seeded data, an independent bf16 rounding oracle (nearest
 * representable value by distance, ties to even), closeness checks, launch shapes.
 *
 * @module
 */

import assert from "node:assert/strict";

/** Seeded uniform f32 values in [lo, hi) (mulberry32). */
export function rand(seed: number, n: number, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  }
  return out;
}

const f = new Float32Array(1);
const u = new Uint32Array(f.buffer);

/** The f32 value of bf16 bits. */
export function bf16Value(bits: number): number {
  u[0] = (bits & 0xffff) << 16;
  return f[0];
}

/** The finite magnitude a bf16 exponent overflow rounds through (2^128, "one past" the max). */
const INF_AS = 2 ** 128;

/**
 * bf16 bits nearest to the f64 value `x` by distance (ties to the even bit pattern); values at or
 * past max + half an ulp become infinity; NaN becomes the quiet NaN 0x7fc0 with x's sign bit given
 * by `nanBits` (the f32 NaN's bits, when known).
 */
export function bf16Nearest(x: number, nanBits?: number): number {
  if (Number.isNaN(x)) return nanBits === undefined ? 0x7fc0 : ((nanBits >>> 16) | 0x40) & 0xffff;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a === Infinity) return sign | 0x7f80;
  // Candidates: the largest magnitude <= a, and the next one up.
  let lo = 0;
  for (let step = 0x4000; step > 0; step >>= 1) {
    if (lo + step <= 0x7f7f && bf16Value(lo + step) <= a) lo += step;
  }
  const hi = lo + 1;
  const vLo = bf16Value(lo), vHi = hi === 0x7f80 ? INF_AS : bf16Value(hi);
  const dLo = a - vLo, dHi = vHi - a;
  const pick = dLo < dHi ? lo : dHi < dLo ? hi : (lo % 2 === 0 ? lo : hi);
  return sign | pick;
}

/** bf16 bits of every value (the f64 values rounded once). */
export function toBf16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = bf16Nearest(values[i]);
  return out;
}

/** f32 values of bf16 bits. */
export function fromBf16(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = bf16Value(bits[i]);
  return out;
}

/** Asserts |a - e| <= atol + rtol |e| elementwise (NaN must match NaN). */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  atol: number,
  rtol: number,
  label: string,
): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e)) && a !== e) {
      assert.fail(`${label}[${i}] is ${a}, expected ${e} (atol ${atol}, rtol ${rtol})`);
    }
  }
}

/** Asserts bf16 results within `ulps` units in the last place of the expected f64 values. */
export function assertBf16Close(
  actual: Uint16Array,
  expected: ArrayLike<number>,
  ulps: number,
  label: string,
): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = bf16Value(actual[i]), e = expected[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    const ulp = Math.max(Math.abs(e), 2 ** -126) * 2 ** -7;
    if (!(Math.abs(a - e) <= ulps * ulp)) {
      assert.fail(`${label}[${i}] is ${a} (bf16), expected ${e} (within ${ulps} ulp)`);
    }
  }
}

/** Block size of the tests' launches (a multiple of 32, as the reductions need). */
export const BLOCK = 128;

/** A 1-D grid covering n elements with `BLOCK` threads, capped to exercise grid-stride loops. */
export function grid1(n: number, cap = 7): number {
  return Math.max(1, Math.min(Math.ceil(n / BLOCK), cap));
}

/**
 * The harness of the backend conformance suite: runs one kernel call on the backend under test and
 * on the reference backend with the same inputs, outputs poisoned with NaN before the call, and
 * compares every output element (NaN never passes).
 *
 * Tolerance: |actual - expected| <= rtol * (|expected| + scale), where `scale` is, for a bilinear
 * kernel (convolutions, gemm), the same kernel run on the absolute values of its inputs (the sum of
 * the absolute terms, so cancellation cannot hide an error nor fail a correct f32 result), and
 * otherwise the largest |expected| of that output (normwise relative error), plus 1e-30 (native
 * kernels may flush subnormal intermediates to zero).
 *
 * @module
 */

import type { Backend, HostArray, Storage } from "../../src/backend/backend.ts";

/** Relative tolerance of f32 kernels against the reference (f64 accumulation). */
export const RTOL = 1e-4;

/**
 * Absolute floor: native kernels flush subnormal intermediates to zero (FTZ/DAZ), which changes
 * results near the bottom of f32's range (seen: 1.2e-38 off a -3.2e-36 softmax gradient). 1e-30 is
 * far below any value a training step depends on.
 */
export const FTZ_ATOL = 1e-30;

/** Host values of one kernel call: inputs are uploaded, outputs are element counts. */
export interface Call {
  inputs: Record<string, HostArray>;
  outputs: Record<string, number>;
  /** Storages updated in place (uploaded, then compared after the call). */
  inOut?: Record<string, Float32Array>;
}

/** Storages of a call on one backend, by name. */
export type Bound = Record<string, Storage>;

/** Runs `kernel` on `backend` with the call's inputs uploaded and outputs NaN-poisoned. */
export function runOn(
  backend: Backend,
  call: Call,
  kernel: (be: Backend, s: Bound) => void,
): Record<string, Float32Array> {
  const s: Bound = {};
  for (
    const [name, data] of [...Object.entries(call.inputs), ...Object.entries(call.inOut ?? {})]
  ) {
    const dtype = data instanceof Int32Array ? "i32" : data instanceof Uint8Array ? "u8" : "f32";
    s[name] = backend.alloc(dtype, data.length);
    backend.upload(s[name], data);
  }
  for (const [name, n] of Object.entries(call.outputs)) {
    s[name] = backend.alloc("f32", n);
    backend.upload(s[name], new Float32Array(n).fill(NaN));
  }
  kernel(backend, s);
  const out: Record<string, Float32Array> = {};
  for (const name of Object.keys(call.outputs)) {
    out[name] = backend.download(s[name]) as Float32Array;
  }
  for (const name of Object.keys(call.inOut ?? {})) {
    out[name] = backend.download(s[name]) as Float32Array;
  }
  for (const st of Object.values(s)) backend.free(st);
  return out;
}

/** Asserts `actual` equals `expected` within tolerance; names the first bad element. */
export function assertClose(
  what: string,
  actual: Float32Array,
  expected: Float32Array,
  scale?: Float32Array,
  rtol = RTOL,
  scaleFloor = 0,
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${what}: ${actual.length} elements, expected ${expected.length}`);
  }
  let norm = 0;
  for (const e of expected) norm = Math.max(norm, Math.abs(e));
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    const s = Math.max(scale === undefined ? norm : Math.abs(scale[i]), scaleFloor);
    const tol = rtol * (Math.abs(e) + s) + FTZ_ATOL;
    if (!(Math.abs(a - e) <= tol)) {
      throw new Error(
        `${what}[${i}] = ${a}, expected ${e} (|diff| ${Math.abs(a - e)} > tol ${tol}; ` +
          `${expected.length} elements)`,
      );
    }
  }
}

/** Absolute values (for the bilinear scale run). */
export function abs(a: Float32Array): Float32Array {
  return a.map(Math.abs);
}

/**
 * Runs the kernel on `subject` and on `oracle` and compares each output. `absCall`, for bilinear
 * kernels, is the call on absolute values whose oracle outputs give the per-element scale; `scale`
 * gives it directly (the magnitude of the terms an output element is computed from).
 */
export function check(
  subject: Backend,
  oracle: Backend,
  kernelName: string,
  call: Call,
  kernel: (be: Backend, s: Bound) => void,
  opts: {
    absCall?: Call;
    scale?: Record<string, Float32Array>;
    rtol?: number;
    scaleFloor?: number;
  } = {},
): void {
  const got = runOn(subject, call, kernel);
  const want = runOn(oracle, call, kernel);
  const scale = opts.absCall ? runOn(oracle, opts.absCall, kernel) : opts.scale;
  for (const name of Object.keys(want)) {
    assertClose(
      `${subject.name} ${kernelName} '${name}'`,
      got[name],
      want[name],
      scale?.[name],
      opts.rtol,
      opts.scaleFloor,
    );
  }
}

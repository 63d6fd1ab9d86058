/**
 * The harness of the backend conformance suite: runs one kernel call on the backend under test and
 * on the reference backend with the same inputs, outputs poisoned with NaN before the call, and
 * compares every output element (NaN never passes).
 *
 * Tolerance: |actual - expected| <= rtol * (|expected| + scale), where `scale` is, for a bilinear
 * kernel (convolutions, gemm), the same kernel run on the absolute values of its inputs (the sum of
 * the absolute terms, so cancellation cannot hide an error nor fail a correct f32 result), and
 * otherwise the largest |expected| of that output (normwise relative error), plus 1e-30 (native
 * kernels may flush subnormal intermediates to zero). A bf16 output may also differ by the two
 * roundings to bf16 (the backend's from its f32 result, the reference's from f64): 2^-8 of
 * |actual| + |expected| (half a unit in the last place each).
 *
 * Host arrays say the dtype of a storage: Float32Array f32, Uint16Array bf16 (raw bits),
 * Uint8Array u8, Int32Array i32. Outputs are downloaded as f32 values (bf16 widened exactly).
 *
 * @module
 */

import type { Backend, DType, HostArray, Storage } from "../../src/backend/backend.ts";
import { bf16ArrayToF32 } from "../../src/backend/bf16.ts";

/** Relative tolerance of f32 kernels against the reference (f64 accumulation). */
export const RTOL = 1e-4;

/**
 * Absolute floor: native kernels flush subnormal intermediates to zero (FTZ/DAZ), which changes
 * results near the bottom of f32's range (seen: 1.2e-38 off a -3.2e-36 softmax gradient). 1e-30 is
 * far below any value a training step depends on.
 */
export const FTZ_ATOL = 1e-30;

/** An output: its element count (f32), or its count and dtype. */
export type OutputSpec = number | { n: number; dtype: "f32" | "bf16" };

/** Host values of one kernel call: inputs are uploaded, outputs are NaN-poisoned storages. */
export interface Call {
  inputs: Record<string, HostArray>;
  outputs: Record<string, OutputSpec>;
  /** Storages updated in place (uploaded, then compared after the call). */
  inOut?: Record<string, Float32Array | Uint16Array>;
}

/** Storages of a call on one backend, by name. */
export type Bound = Record<string, Storage>;

/** The dtype a host array stands for. */
export function dtypeOf(a: HostArray): DType {
  if (a instanceof Uint16Array) return "bf16";
  return a instanceof Int32Array ? "i32" : a instanceof Uint8Array ? "u8" : "f32";
}

/** A host array of `n` NaNs of a float dtype (bf16: the quiet-NaN bits). */
export function nanArray(dtype: "f32" | "bf16", n: number): Float32Array | Uint16Array {
  return dtype === "bf16" ? new Uint16Array(n).fill(0x7fc0) : new Float32Array(n).fill(NaN);
}

/** Uploads `data` as a new storage of its dtype. */
export function uploadNew(backend: Backend, data: HostArray): Storage {
  const s = backend.alloc(dtypeOf(data), data.length);
  backend.upload(s, data);
  return s;
}

/** Downloads a float storage as f32 values (bf16 widened exactly). */
export function readF32(backend: Backend, s: Storage): Float32Array {
  const host = backend.download(s);
  return host instanceof Uint16Array ? bf16ArrayToF32(host) : host as Float32Array;
}

/** Results of one call: the f32 values of every output and in-place storage, by name. */
export type Results = Record<string, Float32Array>;

/** Runs `kernel` on `backend` with the call's inputs uploaded and outputs NaN-poisoned. */
export function runOn(
  backend: Backend,
  call: Call,
  kernel: (be: Backend, s: Bound) => void,
): Results {
  const s: Bound = {};
  for (
    const [name, data] of [...Object.entries(call.inputs), ...Object.entries(call.inOut ?? {})]
  ) {
    s[name] = uploadNew(backend, data);
  }
  for (const [name, spec] of Object.entries(call.outputs)) {
    const { n, dtype } = typeof spec === "number" ? { n: spec, dtype: "f32" as const } : spec;
    s[name] = uploadNew(backend, nanArray(dtype, n));
  }
  kernel(backend, s);
  const out: Results = {};
  for (const name of [...Object.keys(call.outputs), ...Object.keys(call.inOut ?? {})]) {
    out[name] = readF32(backend, s[name]);
  }
  for (const st of Object.values(s)) backend.free(st);
  return out;
}

/** Whether output `name` of a call is bf16. */
function isBf16(call: Call, name: string): boolean {
  const spec = call.outputs[name];
  if (spec !== undefined) return typeof spec !== "number" && spec.dtype === "bf16";
  return call.inOut?.[name] instanceof Uint16Array;
}

/** Half a bf16 unit in the last place, relative: 2^-8. */
export const BF16_HALF_ULP = 2 ** -8;

/** Asserts `actual` equals `expected` within tolerance; names the first bad element. */
export function assertClose(
  what: string,
  actual: Float32Array,
  expected: Float32Array,
  scale?: Float32Array,
  rtol = RTOL,
  scaleFloor = 0,
  rounding = 0,
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${what}: ${actual.length} elements, expected ${expected.length}`);
  }
  let norm = 0;
  for (const e of expected) norm = Math.max(norm, Math.abs(e));
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    const s = Math.max(scale === undefined ? norm : Math.abs(scale[i]), scaleFloor);
    const tol = rtol * (Math.abs(e) + s) + rounding * (Math.abs(a) + Math.abs(e)) + FTZ_ATOL;
    if (!(Math.abs(a - e) <= tol)) {
      throw new Error(
        `${what}[${i}] = ${a}, expected ${e} (|diff| ${Math.abs(a - e)} > tol ${tol}; ` +
          `${expected.length} elements)`,
      );
    }
  }
}

/** Absolute values (for the bilinear scale run); bf16 bits lose their sign bit. */
export function abs<A extends Float32Array | Uint16Array>(a: A): A {
  return (a instanceof Uint16Array ? a.map((b) => b & 0x7fff) : a.map(Math.abs)) as A;
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
      isBf16(call, name) ? BF16_HALF_ULP : 0,
    );
  }
}

/**
 * Elementwise kernels of the cpu backend: ReLU and its backward, axpby and mul as oneDNN eltwise
 * and binary primitives (f32 or bf16 where the kernel table allows it: bf16 computes in f32
 * and rounds the result to nearest even), and the small f32 ones (scalar broadcast, total sum) as
 * TypeScript loops.
 *
 * Layout rule for elementwise kernels: when every operand holds exactly `n` elements and one of
 * them is blocked, all run in that blocked layout (the others are reordered to it), so a ReLU after
 * a blocked batch norm stays blocked; otherwise all run plain on their first `n` elements.
 *
 * @module
 */

import {
  AlgKind,
  Arg,
  checkStatus,
  DataType,
  DNNL_SIZEOF,
  PropKind,
} from "../../../ffi/dnnl/mod.ts";
import { withAttr } from "./attr.ts";
import { elementwiseThreads } from "./threads.ts";
import { allFinite, holdsNaN, viaReference } from "./nan.ts";
import type { MemDesc } from "./memdesc.ts";
import type { CpuRuntime } from "./runtime.ts";
import type { CpuStorage } from "./storage.ts";

/** The layout an elementwise kernel over `n` elements of `operands` runs in. */
export function elementwiseLayout(rt: CpuRuntime, operands: CpuStorage[], n: number): MemDesc {
  if (operands.every((s) => s.length === n)) {
    for (const s of operands) if (s.md !== null) return s.md;
  }
  return rt.mds.plain([n], operands[0].dataType);
}

function eltwiseForward(
  rt: CpuRuntime,
  md: MemDesc,
  alg: number,
  alpha: number,
  beta: number,
  prop: number,
) {
  const key = `eltwise:${prop}:${alg}:${alpha}:${beta}:${md.id}`;
  return rt.primitive(key, "eltwise", () => {
    const op = new Uint8Array(DNNL_SIZEOF.eltwiseDesc);
    checkStatus(
      rt.sym.dnnl_eltwise_forward_desc_init(op, prop, alg, md.bytes, alpha, beta),
      `describe eltwise [${md.dims}]`,
    );
    return { pd: rt.createPd(op, "eltwise"), args: [Arg.src, Arg.dst] };
  }, elementwiseThreads(rt, md.size));
}

function linear(rt: CpuRuntime, x: CpuStorage, out: CpuStorage, alpha: number, n: number): void {
  const md = elementwiseLayout(rt, [x, out], n);
  const p = eltwiseForward(rt, md, AlgKind.eltwiseLinear, alpha, 0, PropKind.forwardInference);
  rt.run(p, [x], [out]);
}

/**
 * y = max(x, 0), NaN kept (oneDNN's ReLU returns 0 for NaN: an x that may hold NaN runs on the
 * reference path, see `nan.ts`). The output of the fast path holds no NaN.
 */
export function relu(rt: CpuRuntime, x: CpuStorage, y: CpuStorage, n: number): void {
  if (n === 0) return;
  if (holdsNaN(rt, x, n)) return viaReference(rt, "relu", { x, y, n });
  reluFast(rt, x, y, n);
  if (n === y.length) y.nanFree = true;
}

/** y = max(x, 0) on oneDNN (NaN becomes 0: only for inputs known to hold none). */
export function reluFast(rt: CpuRuntime, x: CpuStorage, y: CpuStorage, n: number): void {
  if (n === 0) return;
  const md = elementwiseLayout(rt, [x, y], n);
  const p = eltwiseForward(rt, md, AlgKind.eltwiseRelu, 0, 0, PropKind.forwardInference);
  rt.run(p, [x], [y]);
}

/**
 * dx = dy where y > 0 else 0, `y` a ReLU output. oneDNN multiplies dy by the mask, so a NaN or
 * infinite dy where y <= 0 would give NaN instead of 0: such a dy runs on the reference path.
 */
export function reluBackward(
  rt: CpuRuntime,
  y: CpuStorage,
  dy: CpuStorage,
  dx: CpuStorage,
  n: number,
): void {
  if (n === 0) return;
  if (!allFinite(rt, dy, n)) return viaReference(rt, "reluBackward", { y, dy, dx, n });
  reluBackwardFast(rt, y, dy, dx, n);
}

/**
 * dx = dy * (y > 0) on oneDNN's ReLU backward with `use_dst_for_bwd` (the mask is computed from
 * the output, nothing is kept from the forward); exact where dy is finite.
 */
export function reluBackwardFast(
  rt: CpuRuntime,
  y: CpuStorage,
  dy: CpuStorage,
  dx: CpuStorage,
  n: number,
): void {
  if (n === 0) return;
  const md = elementwiseLayout(rt, [y, dy, dx], n);
  const alg = AlgKind.eltwiseReluUseDstForBwd;
  const p = rt.primitive(`relu.bwd:${md.id}`, "relu backward", () => {
    const hint = eltwiseForward(rt, md, alg, 0, 0, PropKind.forwardTraining).pd;
    const op = new Uint8Array(DNNL_SIZEOF.eltwiseDesc);
    checkStatus(
      rt.sym.dnnl_eltwise_backward_desc_init(op, alg, md.bytes, md.bytes, 0, 0),
      `describe relu backward [${md.dims}]`,
    );
    return {
      pd: rt.createPd(op, "relu backward", hint),
      args: [Arg.dst, Arg.diffDst, Arg.diffSrc],
    };
  }, elementwiseThreads(rt, md.size));
  rt.run(p, [y, dy], [dx]);
}

/**
 * Below this many elements a plain f32 axpby is a TypeScript loop: a primitive execution costs
 * ~10-30 µs of fixed overhead, the loop ~1 ns per element (batch norm's running statistics are
 * 64-512 values, 80 calls per ResNet-18 step).
 */
const SMALL_AXPBY = 4096;

/** out = alpha * x + beta * y; a term with coefficient 0 is not read; out may alias x or y. */
export function axpby(
  rt: CpuRuntime,
  o: { x: CpuStorage; y: CpuStorage; out: CpuStorage; alpha: number; beta: number; n: number },
): void {
  const { n } = o;
  if (n === 0) return;
  if (n <= SMALL_AXPBY && o.out.dtype === "f32") {
    if (elementwiseLayout(rt, [o.x, o.y, o.out], n).plain) return smallAxpby(rt, o);
  }
  if (o.beta === 0) return linear(rt, o.x, o.out, o.alpha, n);
  if (o.alpha === 0) return linear(rt, o.y, o.out, o.beta, n);
  scaledAdd(rt, o.x, o.y, o.out, o.alpha, o.beta, n);
}

/** {@link axpby} on plain f32 storages as a loop in f64, rounded once (as the reference). */
function smallAxpby(
  rt: CpuRuntime,
  o: { x: CpuStorage; y: CpuStorage; out: CpuStorage; alpha: number; beta: number; n: number },
): void {
  const { alpha, beta, n } = o;
  const x = alpha === 0 ? null : rt.plain(o.x).f32;
  const y = beta === 0 ? null : rt.plain(o.y).f32;
  const aliased = o.out === o.x || o.out === o.y;
  const out = (aliased || n < o.out.length ? rt.plain(o.out) : rt.output(o.out, null)).f32;
  for (let i = 0; i < n; i++) {
    out[i] = (x === null ? 0 : alpha * x[i]) + (y === null ? 0 : beta * y[i]);
  }
}

/**
 * out = sa * a + sb * b over `n` elements: a binary add whose input scales are given at execution
 * (`DNNL_RUNTIME_F32_VAL`), so one primitive per layout serves every pair of scales (an EMA
 * momentum that changes every step creates nothing). `out` may be `a` or `b` (in place).
 */
export function scaledAdd(
  rt: CpuRuntime,
  a: CpuStorage,
  b: CpuStorage,
  out: CpuStorage,
  sa: number,
  sb: number,
  n: number,
): void {
  if (n === 0) return;
  // The binary primitive computes in place on its first source only: keep an aliased source first.
  const swap = out === b && out !== a;
  const [src0, src1] = swap ? [b, a] : [a, b];
  const [s0, s1] = swap ? [sb, sa] : [sa, sb];
  const md = elementwiseLayout(rt, [src0, src1, out], n);
  const p = rt.primitive(`scaled-add:${md.id}`, "scaled add", () => {
    const op = new Uint8Array(DNNL_SIZEOF.binaryDesc);
    checkStatus(
      rt.sym.dnnl_binary_desc_init(op, AlgKind.binaryAdd, md.bytes, md.bytes, md.bytes),
      `describe scaled add [${md.dims}]`,
    );
    const scales = [Arg.src, Arg.src1];
    const pd = withAttr(
      rt,
      { runtimeInputScales: scales },
      "scaled add",
      (attr) => rt.createPd(op, "scaled add", null, attr),
    );
    const scalar = rt.mds.plain([1], DataType.f32);
    return {
      pd,
      args: [Arg.src, Arg.src1, Arg.dst, ...scales.map((s) => Arg.attrInputScales | s)],
      argMds: new Map(scales.map((s) => [Arg.attrInputScales | s, scalar])),
    };
  }, elementwiseThreads(rt, md.size));
  rt.run(p, [src0, src1], [out], [s0, s1]);
}

/** out = a * b elementwise (f32). */
export function mul(
  rt: CpuRuntime,
  a: CpuStorage,
  b: CpuStorage,
  out: CpuStorage,
  n: number,
): void {
  if (n === 0) return;
  const md = elementwiseLayout(rt, [a, b, out], n);
  const p = rt.primitive(`mul:${md.id}`, "binary mul", () => {
    const op = new Uint8Array(DNNL_SIZEOF.binaryDesc);
    checkStatus(
      rt.sym.dnnl_binary_desc_init(op, AlgKind.binaryMul, md.bytes, md.bytes, md.bytes),
      `describe binary mul [${md.dims}]`,
    );
    return { pd: rt.createPd(op, "binary mul"), args: [Arg.src, Arg.src1, Arg.dst] };
  }, elementwiseThreads(rt, md.size));
  rt.run(p, [a, b], [out]);
}

/** The first `n` elements of an f32 storage = `value`. */
export function fillF32(rt: CpuRuntime, out: CpuStorage, value: number, n: number): void {
  rt.output(out, rt.mds.plain([n], out.dataType)).f32.fill(value, 0, n);
}

/** out[i] = alpha * s[0] (f32). */
export function broadcastScalar(
  rt: CpuRuntime,
  s: CpuStorage,
  out: CpuStorage,
  alpha: number,
  n: number,
): void {
  if (n === 0) return;
  fillF32(rt, out, alpha * rt.plain(s).f32[0], n);
}

/**
 * The C sum's chunk (`SUM_CHUNK` in elementwise.c): its scratch holds one f64 per chunk (a smaller
 * scratch only makes it single-threaded). Shorter sums stay in TypeScript, where they cost less
 * than the call.
 */
const SUM_CHUNK = 4096;

/** out[0] = alpha * sum(x[0..n)), accumulated in f64 (f32 storages). */
export function sum(rt: CpuRuntime, x: CpuStorage, out: CpuStorage, alpha: number, n: number) {
  const buf = rt.plain(x);
  let total = 0;
  const k = rt.kernels;
  if (k !== null && n >= SUM_CHUNK) {
    // f64 chunk sums in C on the backend's threads, added in order (thread-count independent).
    const parts = rt.pool.take(8 * Math.ceil(n / SUM_CHUNK));
    try {
      const threads = elementwiseThreads(rt, 4 * n);
      total = k.symbols.ressl_sum_f32(
        buf.ptr,
        BigInt(n),
        threads,
        parts.ptr,
        BigInt(parts.bytes / 8),
      );
    } finally {
      rt.pool.give(parts);
    }
  } else {
    const xs = buf.f32;
    for (let i = 0; i < n; i++) total += xs[i];
  }
  rt.output(out, rt.mds.plain([1], out.dataType)).f32[0] = alpha * total;
}

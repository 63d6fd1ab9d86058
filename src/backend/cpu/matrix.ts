/**
 * Matrix kernels of the cpu backend: `dnnl_sgemm` for f32 gemm (a oneDNN matmul primitive for
 * bf16, see `matmul.ts`), oneDNN softmax / log-softmax
 * primitives (forward and backward), and the small row-wise kernels (bias add, column sums, row
 * gather, L2 normalisation) as TypeScript loops over plain buffers, shared with the reference
 * backend so both compute them identically.
 *
 * @module
 */

import { Arg, checkStatus, DataType, DNNL_SIZEOF, PropKind } from "../../../ffi/dnnl/mod.ts";
import type { Primitive } from "./primitive.ts";
import type { CpuRuntime } from "./runtime.ts";
import type { CpuStorage } from "./storage.ts";
import { matmulBf16 } from "./matmul.ts";
import { elementwiseThreads } from "./threads.ts";
import {
  addRowVectorKernel,
  gatherRowsKernel,
  l2NormalizeBackwardKernel,
  l2NormalizeKernel,
  logSoftmaxKernel,
  sumRowsKernel,
} from "../reference/matrix.ts";

const CHAR_N = 78;
const CHAR_T = 84;

/** c = alpha * op(a) @ op(b) + beta * c (row-major); beta = 0 ignores c's contents. */
export function gemm(
  rt: CpuRuntime,
  o: {
    a: CpuStorage;
    b: CpuStorage;
    c: CpuStorage;
    m: number;
    n: number;
    k: number;
    transA: boolean;
    transB: boolean;
    alpha: number;
    beta: number;
  },
): void {
  const { m, n, k, alpha, beta } = o;
  if (m === 0 || n === 0) return;
  if (o.c.dtype === "bf16") return matmulBf16(rt, o);
  const ab = rt.plain(o.a);
  const bb = rt.plain(o.b);
  const cb = beta === 0 ? rt.output(o.c, rt.mds.plain([m * n], DataType.f32)) : rt.plain(o.c);
  if (k === 0) {
    const c = cb.f32;
    for (let i = 0; i < m * n; i++) c[i] = beta === 0 ? 0 : beta * c[i];
    return;
  }
  rt.setThreads(rt.threads);
  const status = rt.sym.dnnl_sgemm(
    o.transA ? CHAR_T : CHAR_N,
    o.transB ? CHAR_T : CHAR_N,
    BigInt(m),
    BigInt(n),
    BigInt(k),
    alpha,
    ab.ptr,
    BigInt(o.transA ? m : k),
    bb.ptr,
    BigInt(o.transB ? k : n),
    beta,
    cb.ptr,
    BigInt(n),
  );
  checkStatus(status, `run dnnl_sgemm (m=${m}, n=${n}, k=${k})`);
}

function softmaxPrimitive(rt: CpuRuntime, log: boolean, rows: number, cols: number): Primitive {
  const name = log ? "log-softmax" : "softmax";
  return rt.primitive(`${name}.fwd:${rows},${cols}`, name, () => {
    const md = rt.mds.plain([rows, cols], DataType.f32);
    const op = new Uint8Array(DNNL_SIZEOF.softmaxDesc);
    const init = log
      ? rt.sym.dnnl_logsoftmax_forward_desc_init
      : rt.sym.dnnl_softmax_forward_desc_init;
    checkStatus(
      init(op, PropKind.forwardTraining, md.bytes, 1),
      `describe ${name} [${rows}, ${cols}]`,
    );
    return { pd: rt.createPd(op, name), args: [Arg.src, Arg.dst] };
  }, elementwiseThreads(rt, 4 * rows * cols));
}

function softmaxBackwardPrimitive(
  rt: CpuRuntime,
  log: boolean,
  rows: number,
  cols: number,
): Primitive {
  const name = log ? "log-softmax backward" : "softmax backward";
  return rt.primitive(`${name}:${rows},${cols}`, name, () => {
    const hint = softmaxPrimitive(rt, log, rows, cols).pd;
    const md = rt.mds.plain([rows, cols], DataType.f32);
    const op = new Uint8Array(DNNL_SIZEOF.softmaxDesc);
    const init = log
      ? rt.sym.dnnl_logsoftmax_backward_desc_init
      : rt.sym.dnnl_softmax_backward_desc_init;
    checkStatus(init(op, md.bytes, md.bytes, 1), `describe ${name} [${rows}, ${cols}]`);
    return { pd: rt.createPd(op, name, hint), args: [Arg.dst, Arg.diffDst, Arg.diffSrc] };
  }, elementwiseThreads(rt, 4 * rows * cols));
}

/** Row-wise softmax (`log`: log-softmax) of a [rows, cols] matrix. */
export function softmax(
  rt: CpuRuntime,
  log: boolean,
  o: { x: CpuStorage; y: CpuStorage; rows: number; cols: number },
): void {
  if (o.rows === 0 || o.cols === 0) return;
  if (log) {
    // The reference's f64 arithmetic: oneDNN 2.6.3's log-softmax approximates the logarithm
    // (errors up to ~4e-6 absolute, any relative error near 0). In C on the backend's threads
    // where the own kernels are built, else the reference's TypeScript loop.
    const n = o.rows * o.cols;
    const x = rt.plain(o.x), y = rt.output(o.y, rt.mds.plain([n], DataType.f32));
    const k = rt.kernels;
    if (k === null) return logSoftmaxKernel(x.f32, y.f32, o.rows, o.cols);
    const threads = elementwiseThreads(rt, 4 * n);
    k.symbols.ressl_log_softmax_f32(x.ptr, y.ptr, BigInt(o.rows), BigInt(o.cols), threads);
    return;
  }
  rt.run(softmaxPrimitive(rt, log, o.rows, o.cols), [o.x], [o.y]);
}

/** Backward of row-wise softmax (`log`: log-softmax) given its output `y`. */
export function softmaxBackward(
  rt: CpuRuntime,
  log: boolean,
  o: { y: CpuStorage; dy: CpuStorage; dx: CpuStorage; rows: number; cols: number },
): void {
  if (o.rows === 0 || o.cols === 0) return;
  rt.run(softmaxBackwardPrimitive(rt, log, o.rows, o.cols), [o.y, o.dy], [o.dx]);
}

function out(rt: CpuRuntime, s: CpuStorage, count: number): Float32Array {
  return rt.output(s, rt.mds.plain([Math.max(1, count)], DataType.f32)).f32;
}

/** y[r, j] = x[r, j] + bias[j]. */
export function addRowVector(
  rt: CpuRuntime,
  o: { x: CpuStorage; bias: CpuStorage; y: CpuStorage; rows: number; cols: number },
): void {
  const x = rt.plain(o.x).f32;
  const bias = rt.plain(o.bias).f32;
  addRowVectorKernel(x, bias, out(rt, o.y, o.rows * o.cols), o.rows, o.cols);
}

/** out[j] = sum over r of x[r, j] (f64 accumulation). */
export function sumRows(
  rt: CpuRuntime,
  o: { x: CpuStorage; out: CpuStorage; rows: number; cols: number },
): void {
  const x = rt.plain(o.x).f32;
  sumRowsKernel(x, out(rt, o.out, o.cols).subarray(0, o.cols), o.rows, o.cols);
}

/** y[i, :] = x[index[i], :]. */
export function gatherRows(
  rt: CpuRuntime,
  o: { x: CpuStorage; index: CpuStorage; y: CpuStorage; rows: number; cols: number },
): void {
  const x = rt.plain(o.x).f32;
  const index = rt.plain(o.index).i32;
  gatherRowsKernel(x, index, out(rt, o.y, o.rows * o.cols), o.rows, o.cols);
}

/** y = x / max(||x||, eps) per row. */
export function l2Normalize(
  rt: CpuRuntime,
  o: { x: CpuStorage; y: CpuStorage; rows: number; cols: number; eps: number },
): void {
  const x = rt.plain(o.x).f32;
  l2NormalizeKernel(x, out(rt, o.y, o.rows * o.cols), o.rows, o.cols, o.eps);
}

/** Gradient of {@link l2Normalize} with respect to x. */
export function l2NormalizeBackward(
  rt: CpuRuntime,
  o: { x: CpuStorage; dy: CpuStorage; dx: CpuStorage; rows: number; cols: number; eps: number },
): void {
  const x = rt.plain(o.x).f32;
  const dy = rt.plain(o.dy).f32;
  l2NormalizeBackwardKernel(x, dy, out(rt, o.dx, o.rows * o.cols), o.rows, o.cols, o.eps);
}

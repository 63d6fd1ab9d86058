/**
 * The cpu backend: every kernel of the {@link Backend} contract on oneDNN 2.6.3 through Deno FFI.
 * Convolutions, batch norm, pooling, ReLU, sums and products run as oneDNN primitives cached by
 * shape; gemm is `dnnl_sgemm`; the small row-wise kernels and the SGD update are TypeScript loops
 * over the same aligned buffers.
 *
 * Activations stay in the layouts oneDNN prefers (nChw16c) from layer to layer: a storage carries
 * its current layout, inputs are reordered in place when a primitive wants another one, and only
 * `download` and kernels that need plain rows (gemm, row-wise loops) convert back. See
 * `cpu_runtime.ts` for the layout rule and `cpu_eltwise.ts` for elementwise kernels.
 *
 * @module
 */

import type {
  Backend,
  Conv2dGeometry,
  DType,
  HostArray,
  Pool2dGeometry,
  Storage,
} from "../backend.ts";
import { dnnlBuildHash, type DnnlLibrary, loadDnnl } from "../../../ffi/dnnl/mod.ts";
import { CpuRuntime } from "./runtime.ts";
import { CpuStorage } from "./storage.ts";
import * as elt from "./eltwise.ts";
import * as images from "./images.ts";
import * as mat from "./matrix.ts";
import { checkDims, checkDistinct, checkEps, checkScalars, cpuStorage } from "./validate.ts";
import { allocHostArray, hostArrayDType } from "../reference/storage.ts";

/** The options object of kernel `K` of the Backend contract. */
type Opts<K extends keyof Backend> = Backend[K] extends (opts: infer O) => void ? O : never;
/** The environment variable that sets the cpu backend's thread count. */
export const THREADS_ENV = "RESSL_THREADS";

/** Options of {@link createCpuBackend}. */
export interface CpuBackendOptions {
  /** OpenMP threads for oneDNN (default: `$RESSL_THREADS`, else every core). */
  threads?: number;
  /** A loaded oneDNN (default: `loadDnnl()`). */
  lib?: DnnlLibrary;
}

type RowOpts = { rows: number; cols: number };
type F32 = "f32";
const F32: F32 = "f32";

/** oneDNN implementation of {@link Backend}. Create one with {@link createCpuBackend}. */
export class CpuBackend implements Backend {
  /** Always `cpu`. */
  readonly name = "cpu";
  /** oneDNN version, build and thread count. */
  readonly versions: Readonly<Record<string, string>>;
  /** @internal The oneDNN runtime (engine, caches, buffers). */
  readonly rt: CpuRuntime;
  #live = 0;
  #disposed = false;

  constructor(lib: DnnlLibrary, threads: number) {
    lib.setThreads(threads);
    this.rt = new CpuRuntime(lib);
    this.versions = Object.freeze({
      onednn: lib.version,
      onednnBuild: dnnlBuildHash(lib.symbols),
      threads: String(lib.threads()),
    });
  }

  // ---- memory -------------------------------------------------------------------------------

  alloc(dtype: DType, length: number): Storage {
    this.#open("alloc");
    checkDims("alloc", { length });
    allocHostArray(dtype, 0); // validates the dtype with a clear message
    this.#live++;
    return new CpuStorage(this, dtype, length);
  }

  free(storage: Storage): void {
    const s = this.#s("free", "storage", storage, null, 0);
    s.freed = true;
    this.#live--;
    if (!this.#disposed) this.rt.release(s);
  }

  liveAllocations(): number {
    return this.#live;
  }

  upload(dst: Storage, src: HostArray, dstOffset = 0): void {
    const dtype = hostArrayDType(src);
    checkDims("upload", { dstOffset });
    const s = this.#s("upload", "dst", dst, dtype, dstOffset + src.length);
    const whole = dstOffset === 0 && src.length === s.length;
    const buf = whole ? this.rt.output(s, null) : this.rt.plain(s);
    view(buf, s.dtype).set(src, dstOffset);
  }

  download(src: Storage): HostArray {
    const s = this.#s("download", "src", src, null, 0);
    const out = allocHostArray(s.dtype, s.length);
    if (s.length > 0) out.set(view(this.rt.plain(s), s.dtype).subarray(0, s.length));
    return out;
  }

  copy(o: { src: Storage; dst: Storage; srcOffset: number; dstOffset: number; length: number }) {
    const K = "copy";
    const { srcOffset, dstOffset, length } = o;
    checkDims(K, { srcOffset, dstOffset, length });
    const src = this.#s(K, "src", o.src, null, srcOffset + length);
    const dst = this.#s(K, "dst", o.dst, src.dtype, dstOffset + length);
    if (length === 0) return;
    if (src !== dst && length === src.length && length === dst.length && src.buf !== null) {
      const bytes = src.md === null ? src.plainBytes : src.md.size;
      const d = this.rt.output(dst, src.md);
      d.u8.set(src.buf.u8.subarray(0, bytes));
      return;
    }
    const from = view(this.rt.plain(src), src.dtype);
    const whole = src !== dst && dstOffset === 0 && length === dst.length;
    const to = view(whole ? this.rt.output(dst, null) : this.rt.plain(dst), dst.dtype);
    if (from === to) to.copyWithin(dstOffset, srcOffset, srcOffset + length);
    else to.set(from.subarray(srcOffset, srcOffset + length), dstOffset);
  }

  fill(dst: Storage, value: number): void {
    const s = this.#s("fill", "dst", dst, null, 0);
    if (s.dtype !== "f32") {
      const [lo, hi] = s.dtype === "u8" ? [0, 255] : [-2147483648, 2147483647];
      if (!Number.isInteger(value) || value < lo || value > hi) {
        throw new RangeError(
          `Cannot run fill: value ${value} does not fit storage 'dst' of dtype ${s.dtype} ` +
            `(integers ${lo}..${hi})`,
        );
      }
    }
    view(this.rt.output(s, null), s.dtype).fill(value, 0, s.length);
  }

  synchronize(): void {
    this.#open("synchronize");
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.rt.dispose();
  }

  // ---- elementwise --------------------------------------------------------------------------

  axpby(o: { x: Storage; y: Storage; out: Storage; alpha: number; beta: number; n: number }) {
    const K = "axpby";
    const { n, alpha, beta } = o;
    checkDims(K, { n });
    checkScalars(K, { alpha, beta });
    const x = this.#s(K, "x", o.x, F32, n);
    const y = this.#s(K, "y", o.y, F32, n);
    const out = this.#s(K, "out", o.out, F32, n);
    if (n > 0) elt.axpby(this.rt, { x, y, out, alpha, beta, n });
  }

  mul(o: { a: Storage; b: Storage; out: Storage; n: number }): void {
    const K = "mul";
    checkDims(K, { n: o.n });
    checkDistinct(K, { out: o.out }, { a: o.a, b: o.b });
    const a = this.#s(K, "a", o.a, F32, o.n);
    const b = this.#s(K, "b", o.b, F32, o.n);
    const out = this.#s(K, "out", o.out, F32, o.n);
    if (o.n > 0) elt.mul(this.rt, a, b, out, o.n);
  }

  broadcastScalar(o: { s: Storage; out: Storage; alpha: number; n: number }): void {
    const K = "broadcastScalar";
    checkDims(K, { n: o.n });
    checkScalars(K, { alpha: o.alpha });
    checkDistinct(K, { out: o.out }, { s: o.s });
    const s = this.#s(K, "s", o.s, F32, 1);
    const out = this.#s(K, "out", o.out, F32, o.n);
    if (o.n > 0) elt.broadcastScalar(this.rt, s, out, o.alpha, o.n);
  }

  relu(o: { x: Storage; y: Storage; n: number }): void {
    const K = "relu";
    checkDims(K, { n: o.n });
    checkDistinct(K, { y: o.y }, { x: o.x });
    const x = this.#s(K, "x", o.x, F32, o.n);
    const y = this.#s(K, "y", o.y, F32, o.n);
    if (o.n > 0) elt.relu(this.rt, x, y, o.n);
  }

  reluBackward(o: { y: Storage; dy: Storage; dx: Storage; n: number }): void {
    const K = "reluBackward";
    checkDims(K, { n: o.n });
    checkDistinct(K, { dx: o.dx }, { y: o.y, dy: o.dy });
    const y = this.#s(K, "y", o.y, F32, o.n);
    const dy = this.#s(K, "dy", o.dy, F32, o.n);
    const dx = this.#s(K, "dx", o.dx, F32, o.n);
    if (o.n > 0) elt.reluBackward(this.rt, y, dy, dx, o.n);
  }

  sum(o: { x: Storage; out: Storage; alpha: number; n: number }): void {
    const K = "sum";
    checkDims(K, { n: o.n });
    checkScalars(K, { alpha: o.alpha });
    checkDistinct(K, { out: o.out }, { x: o.x });
    const x = this.#s(K, "x", o.x, F32, o.n);
    elt.sum(this.rt, x, this.#s(K, "out", o.out, F32, 1), o.alpha, o.n);
  }

  // ---- matrices -----------------------------------------------------------------------------

  gemm(o: Opts<"gemm">): void {
    const K = "gemm";
    const { m, n, k } = o;
    checkDims(K, { m, n, k });
    checkScalars(K, { alpha: o.alpha, beta: o.beta });
    checkDistinct(K, { c: o.c }, { a: o.a, b: o.b });
    const a = this.#s(K, "a", o.a, F32, m * k);
    const b = this.#s(K, "b", o.b, F32, k * n);
    const c = this.#s(K, "c", o.c, F32, m * n);
    mat.gemm(this.rt, { ...o, a, b, c });
  }

  addRowVector(o: { x: Storage; bias: Storage; y: Storage; rows: number; cols: number }): void {
    const K = "addRowVector";
    this.#dims(K, o);
    checkDistinct(K, { y: o.y }, { x: o.x, bias: o.bias });
    const x = this.#s(K, "x", o.x, F32, o.rows * o.cols);
    const bias = this.#s(K, "bias", o.bias, F32, o.cols);
    const y = this.#s(K, "y", o.y, F32, o.rows * o.cols);
    mat.addRowVector(this.rt, { ...o, x, bias, y });
  }

  sumRows(o: { x: Storage; out: Storage; rows: number; cols: number }): void {
    const K = "sumRows";
    this.#dims(K, o);
    checkDistinct(K, { out: o.out }, { x: o.x });
    const x = this.#s(K, "x", o.x, F32, o.rows * o.cols);
    mat.sumRows(this.rt, { ...o, x, out: this.#s(K, "out", o.out, F32, o.cols) });
  }

  gatherRows(o: { x: Storage; index: Storage; y: Storage; rows: number; cols: number }): void {
    const K = "gatherRows";
    this.#dims(K, o);
    checkDistinct(K, { y: o.y }, { x: o.x, index: o.index });
    const x = this.#s(K, "x", o.x, F32, o.rows * o.cols);
    const index = this.#s(K, "index", o.index, "i32", o.rows);
    const y = this.#s(K, "y", o.y, F32, o.rows * o.cols);
    mat.gatherRows(this.rt, { ...o, x, index, y });
  }

  softmax(o: { x: Storage; y: Storage; rows: number; cols: number }): void {
    mat.softmax(this.rt, false, this.#rowwise("softmax", { x: o.x }, { y: o.y }, o));
  }

  softmaxBackward(o: { y: Storage; dy: Storage; dx: Storage; rows: number; cols: number }) {
    const K = "softmaxBackward";
    mat.softmaxBackward(this.rt, false, this.#rowwise(K, { y: o.y, dy: o.dy }, { dx: o.dx }, o));
  }

  logSoftmax(o: { x: Storage; y: Storage; rows: number; cols: number }): void {
    mat.softmax(this.rt, true, this.#rowwise("logSoftmax", { x: o.x }, { y: o.y }, o));
  }

  logSoftmaxBackward(o: { y: Storage; dy: Storage; dx: Storage; rows: number; cols: number }) {
    const K = "logSoftmaxBackward";
    mat.softmaxBackward(this.rt, true, this.#rowwise(K, { y: o.y, dy: o.dy }, { dx: o.dx }, o));
  }

  l2Normalize(o: { x: Storage; y: Storage; rows: number; cols: number; eps: number }): void {
    checkEps("l2Normalize", o.eps);
    mat.l2Normalize(this.rt, {
      ...this.#rowwise("l2Normalize", { x: o.x }, { y: o.y }, o),
      eps: o.eps,
    });
  }

  l2NormalizeBackward(
    o: { x: Storage; dy: Storage; dx: Storage; rows: number; cols: number; eps: number },
  ): void {
    const K = "l2NormalizeBackward";
    checkEps(K, o.eps);
    const s = this.#rowwise(K, { x: o.x, dy: o.dy }, { dx: o.dx }, o);
    mat.l2NormalizeBackward(this.rt, { ...s, eps: o.eps });
  }

  // ---- images -------------------------------------------------------------------------------

  conv2dForward(o: { x: Storage; w: Storage; y: Storage; geom: Conv2dGeometry }): void {
    this.#open("conv2dForward");
    images.conv2dForward(this, this.rt, o);
  }

  conv2dBackwardData(o: { dy: Storage; w: Storage; dx: Storage; geom: Conv2dGeometry }): void {
    this.#open("conv2dBackwardData");
    images.conv2dBackwardData(this, this.rt, o);
  }

  conv2dBackwardWeights(o: { x: Storage; dy: Storage; dw: Storage; geom: Conv2dGeometry }): void {
    this.#open("conv2dBackwardWeights");
    images.conv2dBackwardWeights(this, this.rt, o);
  }

  batchNormForwardTraining(o: Opts<"batchNormForwardTraining">): void {
    this.#open("batchNormForwardTraining");
    images.batchNormForwardTraining(this, this.rt, o);
  }

  batchNormForwardInference(o: Opts<"batchNormForwardInference">): void {
    this.#open("batchNormForwardInference");
    images.batchNormForwardInference(this, this.rt, o);
  }

  batchNormBackward(o: Opts<"batchNormBackward">): void {
    this.#open("batchNormBackward");
    images.batchNormBackward(this, this.rt, o);
  }

  maxPool2dForward(o: { x: Storage; y: Storage; geom: Pool2dGeometry }): void {
    this.#open("maxPool2dForward");
    images.maxPool2dForward(this, this.rt, o);
  }

  maxPool2dBackward(o: { x: Storage; dy: Storage; dx: Storage; geom: Pool2dGeometry }): void {
    this.#open("maxPool2dBackward");
    images.maxPool2dBackward(this, this.rt, o);
  }

  globalAvgPool(o: { x: Storage; y: Storage; n: number; c: number; hw: number }): void {
    this.#open("globalAvgPool");
    images.globalAvgPool(this, this.rt, o);
  }

  globalAvgPoolBackward(o: { dy: Storage; dx: Storage; n: number; c: number; hw: number }): void {
    this.#open("globalAvgPoolBackward");
    images.globalAvgPoolBackward(this, this.rt, o);
  }

  // ---- optimiser ----------------------------------------------------------------------------

  sgdUpdate(o: Opts<"sgdUpdate">): void {
    const K = "sgdUpdate";
    checkDims(K, { n: o.n });
    checkScalars(K, { lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay });
    checkDistinct(K, { param: o.param, momentumBuf: o.momentumBuf }, { grad: o.grad });
    const param = this.#s(K, "param", o.param, F32, o.n);
    const grad = this.#s(K, "grad", o.grad, F32, o.n);
    const momentumBuf = this.#s(K, "momentumBuf", o.momentumBuf, F32, o.n);
    if (o.n > 0) elt.sgdUpdate(this.rt, { ...o, param, grad, momentumBuf });
  }

  // ---- helpers ------------------------------------------------------------------------------

  #open(kernel: string): void {
    if (this.#disposed) throw new Error(`Cannot run ${kernel}: this cpu backend was disposed`);
  }

  #s(k: string, name: string, s: Storage, dtype: DType | null, needed: number): CpuStorage {
    this.#open(k);
    return cpuStorage(this, k, name, s, dtype, needed);
  }

  #dims(kernel: string, o: RowOpts): void {
    checkDims(kernel, { rows: o.rows, cols: o.cols });
  }

  #rowwise<I extends string, O extends string>(
    kernel: string,
    inputs: Record<I, Storage>,
    outputs: Record<O, Storage>,
    o: RowOpts,
  ): Record<I | O, CpuStorage> & RowOpts {
    this.#dims(kernel, o);
    checkDistinct(kernel, outputs, inputs);
    const out = { rows: o.rows, cols: o.cols } as Record<I | O, CpuStorage> & RowOpts;
    for (const [name, s] of [...Object.entries(inputs), ...Object.entries(outputs)]) {
      (out as Record<string, unknown>)[name] = this.#s(
        kernel,
        name,
        s as Storage,
        F32,
        o.rows * o.cols,
      );
    }
    return out;
  }
}

function view(
  buf: { f32: Float32Array; i32: Int32Array; u8: Uint8Array },
  dtype: DType,
): HostArray {
  return dtype === "f32" ? buf.f32 : dtype === "i32" ? buf.i32 : buf.u8;
}

function envThreads(): number | undefined {
  let v: string | undefined;
  try {
    v = Deno.env.get(THREADS_ENV);
  } catch {
    return undefined;
  }
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`Cannot use ${THREADS_ENV}='${v}': expected an integer >= 1`);
  }
  return n;
}

/**
 * A new cpu backend on oneDNN. Throws `DnnlUnavailableError` (with the `apt-get install libdnnl2`
 * hint) where oneDNN 2.6.3 cannot be loaded.
 */
export function createCpuBackend(opts: CpuBackendOptions = {}): CpuBackend {
  const threads = opts.threads ?? envThreads() ?? navigator.hardwareConcurrency ?? 1;
  if (!Number.isInteger(threads) || threads < 1) {
    throw new RangeError(
      `Cannot create the cpu backend with ${threads} threads: use an integer >= 1`,
    );
  }
  return new CpuBackend(opts.lib ?? loadDnnl(), threads);
}

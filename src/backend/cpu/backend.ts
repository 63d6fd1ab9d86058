/**
 * The cpu backend: every kernel of the {@link Backend} contract on oneDNN 2.6.3 through Deno FFI,
 * plus its own C kernels where `scripts/setup_cpu.sh` built them (`ffi/cpu`: f32 training batch
 * norm, SGD, EMA, sums, log-softmax; see `tuning.ts`). Convolutions, pooling, ReLU, products and
 * the remaining batch norms run as oneDNN primitives cached by shape; f32 gemm is `dnnl_sgemm`
 * (bf16: a matmul primitive); the small row-wise kernels, casts and augmentation are TypeScript
 * loops over the same aligned buffers.
 *
 * Every kernel first runs the contract's `validateKernel` (one validator, generated from the kernel
 * table), then delegates to the file of its family: `eltwise.ts`, `cast.ts`, `matrix.ts`,
 * `conv.ts`, `norm.ts`, `pool.ts`, `optim.ts`, `augment.ts`. Nothing a kernel computes depends on
 * earlier calls: the only state kept between calls is caches (primitives, descriptors, buffers)
 * and each storage's own layout.
 *
 * Activations stay in the layouts oneDNN prefers (nChw16c) from layer to layer: a storage carries
 * its current layout, inputs are reordered in place when a primitive wants another one, and only
 * `download` and kernels that need plain rows (gemm, row-wise loops) convert back. See
 * `runtime.ts` for the layout rule.
 *
 * @module
 */

import type { Backend, DType, HostArray, KernelName, Opts, Storage } from "../backend.ts";
import { f64ToBf16 } from "../bf16.ts";
import { checkDims } from "../checks.ts";
import { checkStorage, validateKernel } from "../validate.ts";
import { allocHostArray, hostArrayDType } from "../host.ts";
import { CpuIsa, dnnlBuildHash, type DnnlLibrary, loadDnnl } from "../../../ffi/dnnl/mod.ts";
import { CpuRuntime } from "./runtime.ts";
import type { CpuTuning } from "./tuning.ts";
import { CpuStorage, viewOf } from "./storage.ts";
import { cpu } from "./validate.ts";
import * as elt from "./eltwise.ts";
import { cast } from "./cast.ts";
import * as mat from "./matrix.ts";
import * as conv from "./conv.ts";
import * as bn from "./norm.ts";
import * as sbn from "./sync_norm.ts";
import * as pool from "./pool.ts";
import { emaUpdateMulti, sgdUpdateMulti } from "./optim.ts";
import { augmentViews } from "./augment.ts";

/** The environment variable that sets the cpu backend's thread count. */
export const THREADS_ENV = "RESSL_THREADS";

const ANY_DTYPE: readonly DType[] = ["f32", "bf16", "u8", "i32"];

/** Options of {@link createCpuBackend}. */
export interface CpuBackendOptions {
  /** OpenMP threads for oneDNN (default: `$RESSL_THREADS`, else every core). */
  threads?: number;
  /** A loaded oneDNN (default: `loadDnnl()`). */
  lib?: DnnlLibrary;
  /** Speed settings (default: {@link DEFAULT_TUNING}, every speed-up on). */
  tuning?: Partial<CpuTuning>;
}

/** oneDNN implementation of {@link Backend}. Create one with {@link createCpuBackend}. */
export class CpuBackend implements Backend {
  /** Always `cpu`. */
  readonly name = "cpu";
  /** oneDNN version, build, instruction set and thread count. */
  readonly versions: Readonly<Record<string, string>>;
  /** @internal The oneDNN runtime (engine, caches, buffers). */
  readonly rt: CpuRuntime;
  #live = 0;
  #disposed = false;

  constructor(lib: DnnlLibrary, threads: number, tuning: Partial<CpuTuning> = {}) {
    lib.setThreads(threads);
    this.rt = new CpuRuntime(lib, this, threads, tuning);
    this.versions = Object.freeze({
      onednn: lib.version,
      onednnBuild: dnnlBuildHash(lib.symbols),
      onednnIsa: isaName(lib.symbols.dnnl_get_effective_cpu_isa()),
      threads: String(lib.threads()),
      openmpWait: lib.openmpWait,
      ownKernels: this.rt.kernelsNote,
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
    const s = this.#own("free", "storage", storage, ANY_DTYPE, 0);
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
    const s = this.#own("upload", "dst", dst, [dtype], dstOffset + src.length);
    const whole = dstOffset === 0 && src.length === s.length;
    const buf = whole ? this.rt.output(s, null) : this.rt.plain(s);
    viewOf(buf, s.dtype).set(src, dstOffset);
  }

  download(src: Storage): HostArray {
    const s = this.#own("download", "src", src, ANY_DTYPE, 0);
    const out = allocHostArray(s.dtype, s.length);
    if (s.length === 0) return out;
    // The storage keeps its layout (a blocked activation stays blocked for the next kernel).
    this.rt.readPlain(s, (buf) => out.set(viewOf(buf, s.dtype).subarray(0, s.length)));
    return out;
  }

  fill(dst: Storage, value: number): void {
    const s = this.#own("fill", "dst", dst, ANY_DTYPE, 0);
    let v = value;
    if (s.dtype === "u8" || s.dtype === "i32") {
      const [lo, hi] = s.dtype === "u8" ? [0, 255] : [-2147483648, 2147483647];
      if (!Number.isInteger(value) || value < lo || value > hi) {
        throw new RangeError(
          `Cannot run fill: value ${value} does not fit storage 'dst' of dtype ${s.dtype} ` +
            `(integers ${lo}..${hi})`,
        );
      }
    } else if (s.dtype === "bf16") {
      v = f64ToBf16(value);
    }
    viewOf(this.rt.output(s, null), s.dtype).fill(v, 0, s.length);
  }

  synchronize(): void {
    this.#open("synchronize");
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.rt.dispose();
  }

  // ---- memory-like and elementwise kernels --------------------------------------------------

  copy(o: Opts<"copy">): void {
    this.#check("copy", o);
    const src = cpu(o.src), dst = cpu(o.dst);
    const { srcOffset, dstOffset, length } = o;
    if (length === 0) return;
    if (srcOffset === 0 && dstOffset === 0) return this.rt.copyElements(src, dst, length);
    const from = viewOf(this.rt.plain(src), src.dtype);
    const whole = src !== dst && dstOffset === 0 && length === dst.length;
    const to = viewOf(whole ? this.rt.output(dst, null) : this.rt.plain(dst), dst.dtype);
    if (from === to) to.copyWithin(dstOffset, srcOffset, srcOffset + length);
    else to.set(from.subarray(srcOffset, srcOffset + length), dstOffset);
  }

  cast(o: Opts<"cast">): void {
    this.#check("cast", o);
    cast(this.rt, cpu(o.x), cpu(o.y), o.n);
  }

  axpby(o: Opts<"axpby">): void {
    this.#check("axpby", o);
    elt.axpby(this.rt, { ...o, x: cpu(o.x), y: cpu(o.y), out: cpu(o.out) });
  }

  mul(o: Opts<"mul">): void {
    this.#check("mul", o);
    elt.mul(this.rt, cpu(o.a), cpu(o.b), cpu(o.out), o.n);
  }

  broadcastScalar(o: Opts<"broadcastScalar">): void {
    this.#check("broadcastScalar", o);
    elt.broadcastScalar(this.rt, cpu(o.s), cpu(o.out), o.alpha, o.n);
  }

  relu(o: Opts<"relu">): void {
    this.#check("relu", o);
    elt.relu(this.rt, cpu(o.x), cpu(o.y), o.n);
  }

  reluBackward(o: Opts<"reluBackward">): void {
    this.#check("reluBackward", o);
    elt.reluBackward(this.rt, cpu(o.y), cpu(o.dy), cpu(o.dx), o.n);
  }

  sum(o: Opts<"sum">): void {
    this.#check("sum", o);
    elt.sum(this.rt, cpu(o.x), cpu(o.out), o.alpha, o.n);
  }

  // ---- matrices -----------------------------------------------------------------------------

  gemm(o: Opts<"gemm">): void {
    this.#check("gemm", o);
    mat.gemm(this.rt, { ...o, a: cpu(o.a), b: cpu(o.b), c: cpu(o.c) });
  }

  addRowVector(o: Opts<"addRowVector">): void {
    this.#check("addRowVector", o);
    mat.addRowVector(this.rt, { ...o, x: cpu(o.x), bias: cpu(o.bias), y: cpu(o.y) });
  }

  sumRows(o: Opts<"sumRows">): void {
    this.#check("sumRows", o);
    mat.sumRows(this.rt, { ...o, x: cpu(o.x), out: cpu(o.out) });
  }

  gatherRows(o: Opts<"gatherRows">): void {
    this.#check("gatherRows", o);
    mat.gatherRows(this.rt, { ...o, x: cpu(o.x), index: cpu(o.index), y: cpu(o.y) });
  }

  softmax(o: Opts<"softmax">): void {
    this.#check("softmax", o);
    mat.softmax(this.rt, false, { ...o, x: cpu(o.x), y: cpu(o.y) });
  }

  softmaxBackward(o: Opts<"softmaxBackward">): void {
    this.#check("softmaxBackward", o);
    mat.softmaxBackward(this.rt, false, { ...o, y: cpu(o.y), dy: cpu(o.dy), dx: cpu(o.dx) });
  }

  logSoftmax(o: Opts<"logSoftmax">): void {
    this.#check("logSoftmax", o);
    mat.softmax(this.rt, true, { ...o, x: cpu(o.x), y: cpu(o.y) });
  }

  logSoftmaxBackward(o: Opts<"logSoftmaxBackward">): void {
    this.#check("logSoftmaxBackward", o);
    mat.softmaxBackward(this.rt, true, { ...o, y: cpu(o.y), dy: cpu(o.dy), dx: cpu(o.dx) });
  }

  l2Normalize(o: Opts<"l2Normalize">): void {
    this.#check("l2Normalize", o);
    mat.l2Normalize(this.rt, { ...o, x: cpu(o.x), y: cpu(o.y) });
  }

  l2NormalizeBackward(o: Opts<"l2NormalizeBackward">): void {
    this.#check("l2NormalizeBackward", o);
    mat.l2NormalizeBackward(this.rt, { ...o, x: cpu(o.x), dy: cpu(o.dy), dx: cpu(o.dx) });
  }

  // ---- images -------------------------------------------------------------------------------

  conv2dForward(o: Opts<"conv2dForward">): void {
    this.#check("conv2dForward", o);
    conv.conv2dForward(this.rt, cpu(o.x), cpu(o.w), cpu(o.y), o.geom);
  }

  conv2dBackwardData(o: Opts<"conv2dBackwardData">): void {
    this.#check("conv2dBackwardData", o);
    conv.conv2dBackwardData(this.rt, cpu(o.dy), cpu(o.w), cpu(o.dx), o.geom);
  }

  conv2dBackwardWeights(o: Opts<"conv2dBackwardWeights">): void {
    this.#check("conv2dBackwardWeights", o);
    conv.conv2dBackwardWeights(this.rt, cpu(o.x), cpu(o.dy), cpu(o.dw), o.geom);
  }

  batchNormForwardTraining(o: Opts<"batchNormForwardTraining">): void {
    this.#check("batchNormForwardTraining", o);
    bn.batchNormForwardTraining(this.rt, o);
  }

  batchNormForwardInference(o: Opts<"batchNormForwardInference">): void {
    this.#check("batchNormForwardInference", o);
    bn.batchNormForwardInference(this.rt, o);
  }

  batchNormBackward(o: Opts<"batchNormBackward">): void {
    this.#check("batchNormBackward", o);
    bn.batchNormBackward(this.rt, o);
  }

  batchNormStats(o: Opts<"batchNormStats">): void {
    this.#check("batchNormStats", o);
    sbn.batchNormStats(this.rt, o);
  }

  batchNormMergeStats(o: Opts<"batchNormMergeStats">): void {
    this.#check("batchNormMergeStats", o);
    sbn.batchNormMergeStats(this.rt, o);
  }

  batchNormBackwardReduce(o: Opts<"batchNormBackwardReduce">): void {
    this.#check("batchNormBackwardReduce", o);
    sbn.batchNormBackwardReduce(this.rt, o);
  }

  batchNormBackwardApply(o: Opts<"batchNormBackwardApply">): void {
    this.#check("batchNormBackwardApply", o);
    sbn.batchNormBackwardApply(this.rt, o);
  }

  maxPool2dForward(o: Opts<"maxPool2dForward">): void {
    this.#check("maxPool2dForward", o);
    pool.maxPool2dForward(this.rt, cpu(o.x), cpu(o.y), o.geom);
  }

  maxPool2dBackward(o: Opts<"maxPool2dBackward">): void {
    this.#check("maxPool2dBackward", o);
    pool.maxPool2dBackward(this.rt, cpu(o.x), cpu(o.dy), cpu(o.dx), o.geom);
  }

  globalAvgPool(o: Opts<"globalAvgPool">): void {
    this.#check("globalAvgPool", o);
    if (o.n * o.c === 0) return;
    if (o.hw === 0) return elt.fillF32(this.rt, cpu(o.y), NaN, o.n * o.c); // a mean of nothing
    pool.globalAvgPool(this.rt, { ...o, x: cpu(o.x), y: cpu(o.y) });
  }

  globalAvgPoolBackward(o: Opts<"globalAvgPoolBackward">): void {
    this.#check("globalAvgPoolBackward", o);
    if (o.n * o.c * o.hw === 0) return;
    pool.globalAvgPoolBackward(this.rt, { ...o, dy: cpu(o.dy), dx: cpu(o.dx) });
  }

  // ---- optimiser, teacher, augmentation -----------------------------------------------------

  sgdUpdateMulti(o: Opts<"sgdUpdateMulti">): void {
    this.#check("sgdUpdateMulti", o);
    sgdUpdateMulti(this.rt, o);
  }

  emaUpdateMulti(o: Opts<"emaUpdateMulti">): void {
    this.#check("emaUpdateMulti", o);
    emaUpdateMulti(this.rt, o);
  }

  augmentViews(o: Opts<"augmentViews">): void {
    this.#check("augmentViews", o);
    augmentViews(this.rt, o);
  }

  // ---- helpers ------------------------------------------------------------------------------

  #open(kernel: string): void {
    if (this.#disposed) throw new Error(`Cannot run ${kernel}: this cpu backend was disposed`);
  }

  /** The backend is open and the call passes the contract's validator. */
  #check<K extends KernelName>(kernel: K, o: Opts<K>): void {
    this.#open(kernel);
    validateKernel(this, kernel, o);
  }

  /** A live storage of this backend (memory operations, which the kernel table does not list). */
  #own(
    what: string,
    name: string,
    s: Storage,
    dtypes: readonly DType[],
    needed: number,
  ): CpuStorage {
    this.#open(what);
    checkStorage(this, what, name, s, dtypes, needed);
    return cpu(s);
  }
}

function isaName(isa: number): string {
  const names = Object.entries(CpuIsa).filter(([, v]) => v === isa).map(([k]) => k);
  return names[0] ?? `0x${isa.toString(16)}`;
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
  return new CpuBackend(opts.lib ?? loadDnnl(), threads, opts.tuning);
}

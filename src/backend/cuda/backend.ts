/**
 * The cuda backend: every kernel of the {@link Backend} contract on an NVIDIA GPU through Deno FFI,
 * or on the emulated device (`RESSL_CUDA_EMULATION=1`) through the same bindings. Convolutions run
 * as cuDNN plans, gemm through cuBLAS, everything else as the project's own kernels
 * (`ffi/cuda/kernels/`, loaded once from the committed fatbin).
 *
 * All work goes to one stream, in call order: a kernel call returns once its work is queued, and
 * `download` (or `synchronize`) is where the host waits. Device memory comes from a caching
 * allocator (`allocator.ts`), so a step whose shapes repeat makes no driver allocation, and
 * uploads go through pinned staging (`staging.ts`), so none of them waits for the device.
 *
 * Every kernel first runs the contract's `validateKernel`, then drops the host shadow of each
 * storage it writes (`storage.ts`), then delegates to the file of its family: `transfer.ts`,
 * `elementwise.ts`, `matrix.ts`, `rows.ts`, `conv.ts`, `norm.ts`, `pool.ts`, `optim.ts`,
 * `augment.ts`.
 *
 * @module
 */

import type { Backend, DType, HostArray, KernelName, Opts, Storage } from "../backend.ts";
import { checkDims } from "../checks.ts";
import { checkStorage, validateKernel } from "../validate.ts";
import { hostArrayDType } from "../host.ts";
import { formatCudaVersion } from "../../../ffi/cuda/driver.ts";
import type { AllocatorStats } from "./allocator.ts";
import { augmentViews } from "./augment.ts";
import { ConvPlans } from "./conv.ts";
import * as elt from "./elementwise.ts";
import { gemm } from "./matrix.ts";
import * as bn from "./norm.ts";
import * as sbn from "./sync_norm.ts";
import { emaUpdateMulti, sgdUpdateMulti } from "./optim.ts";
import * as pool from "./pool.ts";
import * as rows from "./rows.ts";
import { type CudaBackendOptions, CudaRuntime } from "./runtime.ts";
import type { StagingStats } from "./staging.ts";
import { cu, CudaStorage, dropShadows, ELEMENT_BYTES } from "./storage.ts";
import { type TableStats, TensorTables } from "./tensor_tables.ts";
import * as io from "./transfer.ts";

export type { CudaBackendOptions } from "./runtime.ts";

const ANY_DTYPE: readonly DType[] = ["f32", "bf16", "u8", "i32"];

/** Device-side counters of a cuda backend (leak tests, benchmarks). */
export interface CudaStats {
  /** The caching allocator's counters. */
  allocator: AllocatorStats;
  /** The pinned staging ring's counters. */
  staging: StagingStats;
  /** The multi-tensor table cache's counters. */
  tables: TableStats;
  /** Kernel launches queued (the project's kernels; not cuBLAS/cuDNN calls). */
  launches: number;
  /** Convolution plans made. */
  convPlans: number;
}

/** CUDA implementation of {@link Backend}. Create one with {@link createCudaBackend}. */
export class CudaBackend implements Backend {
  /** Always `cuda`. */
  readonly name = "cuda";
  /** Driver, device, cuBLAS and cuDNN versions, and whether the device is emulated. */
  readonly versions: Readonly<Record<string, string>>;
  /** @internal The device-side state. */
  readonly rt: CudaRuntime;
  readonly #conv: ConvPlans;
  readonly #tables: TensorTables;
  #live = 0;
  #disposed = false;

  /** Loads the libraries, opens the device and its stream (throws `CudaUnavailableError`). */
  constructor(opts: CudaBackendOptions = {}) {
    this.rt = new CudaRuntime(opts);
    this.#conv = new ConvPlans(this.rt);
    this.#tables = new TensorTables(this.rt);
    const [major, minor] = this.rt.dev.computeCapability;
    this.versions = Object.freeze({
      cudaDriver: formatCudaVersion(this.rt.drv.version),
      device: this.rt.dev.name,
      computeCapability: `${major}.${minor}`,
      cublas: this.rt.cublasLib.version,
      cudnn: this.rt.cudnnLib.version,
      emulated: String(this.rt.emulated),
      tf32: String(this.rt.tf32),
      convSearch: this.rt.convSearch,
    });
  }

  // ---- memory -------------------------------------------------------------------------------

  alloc(dtype: DType, length: number): Storage {
    this.#open("alloc");
    checkDims("alloc", { length });
    if (!ANY_DTYPE.includes(dtype)) {
      throw new TypeError(`Cannot allocate dtype '${dtype}': use ${ANY_DTYPE.join(", ")}`);
    }
    const bytes = length * ELEMENT_BYTES[dtype];
    const ptr = bytes > 0 ? this.rt.alloc.alloc(bytes) : 0n;
    this.#live++;
    return new CudaStorage(this, dtype, length, ptr);
  }

  free(storage: Storage): void {
    const s = this.#own("free", "storage", storage, ANY_DTYPE, 0);
    s.freed = true;
    s.shadow = null;
    this.#live--;
    if (s.ptr !== 0n) this.rt.alloc.free(s.ptr);
  }

  liveAllocations(): number {
    return this.#live;
  }

  upload(dst: Storage, src: HostArray, dstOffset = 0): void {
    checkDims("upload", { dstOffset });
    const s = this.#own("upload", "dst", dst, [hostArrayDType(src)], dstOffset + src.length);
    io.upload(this.rt, s, src, dstOffset);
  }

  download(src: Storage): HostArray {
    return io.download(this.rt, this.#own("download", "src", src, ANY_DTYPE, 0));
  }

  fill(dst: Storage, value: number): void {
    const s = this.#own("fill", "dst", dst, ANY_DTYPE, 0);
    if (s.dtype === "u8" || s.dtype === "i32") {
      const [lo, hi] = s.dtype === "u8" ? [0, 255] : [-2147483648, 2147483647];
      if (!Number.isInteger(value) || value < lo || value > hi) {
        throw new RangeError(
          `Cannot run fill: value ${value} does not fit storage 'dst' of dtype ${s.dtype} ` +
            `(integers ${lo}..${hi})`,
        );
      }
    }
    io.fill(this.rt, s, value);
  }

  synchronize(): void {
    this.#open("synchronize");
    this.rt.sync();
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#tables.clear();
    this.#conv.destroy();
    this.rt.dispose();
  }

  /** Allocator, staging and table counters. */
  stats(): CudaStats {
    return {
      allocator: this.rt.alloc.stats(),
      staging: this.rt.staging.stats(),
      tables: this.#tables.stats(),
      launches: this.rt.kernels.launches,
      convPlans: this.#conv.size,
    };
  }

  /** Gives the allocator's cached device blocks back to the driver. */
  trimCache(): void {
    this.#open("trimCache");
    this.rt.alloc.trim();
  }

  // ---- memory-like and elementwise kernels --------------------------------------------------

  copy(o: Opts<"copy">): void {
    this.#check("copy", o);
    io.copy(this.rt, { ...o, src: cu(o.src), dst: cu(o.dst) });
  }

  cast(o: Opts<"cast">): void {
    this.#check("cast", o);
    elt.cast(this.rt, cu(o.x), cu(o.y), o.n);
  }

  axpby(o: Opts<"axpby">): void {
    this.#check("axpby", o);
    elt.axpby(this.rt, { ...o, x: cu(o.x), y: cu(o.y), out: cu(o.out) });
  }

  mul(o: Opts<"mul">): void {
    this.#check("mul", o);
    elt.mul(this.rt, cu(o.a), cu(o.b), cu(o.out), o.n);
  }

  broadcastScalar(o: Opts<"broadcastScalar">): void {
    this.#check("broadcastScalar", o);
    elt.broadcastScalar(this.rt, cu(o.s), cu(o.out), o.alpha, o.n);
  }

  relu(o: Opts<"relu">): void {
    this.#check("relu", o);
    elt.relu(this.rt, cu(o.x), cu(o.y), o.n);
  }

  reluBackward(o: Opts<"reluBackward">): void {
    this.#check("reluBackward", o);
    elt.reluBackward(this.rt, cu(o.y), cu(o.dy), cu(o.dx), o.n);
  }

  sum(o: Opts<"sum">): void {
    this.#check("sum", o);
    elt.sum(this.rt, cu(o.x), cu(o.out), o.alpha, o.n);
  }

  // ---- matrices -----------------------------------------------------------------------------

  gemm(o: Opts<"gemm">): void {
    this.#check("gemm", o);
    gemm(this.rt, { ...o, a: cu(o.a), b: cu(o.b), c: cu(o.c) });
  }

  addRowVector(o: Opts<"addRowVector">): void {
    this.#check("addRowVector", o);
    rows.addRowVector(this.rt, { ...o, x: cu(o.x), bias: cu(o.bias), y: cu(o.y) });
  }

  sumRows(o: Opts<"sumRows">): void {
    this.#check("sumRows", o);
    rows.sumRows(this.rt, { ...o, x: cu(o.x), out: cu(o.out) });
  }

  gatherRows(o: Opts<"gatherRows">): void {
    this.#check("gatherRows", o);
    rows.gatherRows(this.rt, { ...o, x: cu(o.x), index: cu(o.index), y: cu(o.y) });
  }

  softmax(o: Opts<"softmax">): void {
    this.#check("softmax", o);
    rows.softmax(this.rt, false, { ...o, x: cu(o.x), y: cu(o.y) });
  }

  softmaxBackward(o: Opts<"softmaxBackward">): void {
    this.#check("softmaxBackward", o);
    rows.softmaxBackward(this.rt, false, { ...o, y: cu(o.y), dy: cu(o.dy), dx: cu(o.dx) });
  }

  logSoftmax(o: Opts<"logSoftmax">): void {
    this.#check("logSoftmax", o);
    rows.softmax(this.rt, true, { ...o, x: cu(o.x), y: cu(o.y) });
  }

  logSoftmaxBackward(o: Opts<"logSoftmaxBackward">): void {
    this.#check("logSoftmaxBackward", o);
    rows.softmaxBackward(this.rt, true, { ...o, y: cu(o.y), dy: cu(o.dy), dx: cu(o.dx) });
  }

  l2Normalize(o: Opts<"l2Normalize">): void {
    this.#check("l2Normalize", o);
    rows.l2Normalize(this.rt, { ...o, x: cu(o.x), y: cu(o.y) });
  }

  l2NormalizeBackward(o: Opts<"l2NormalizeBackward">): void {
    this.#check("l2NormalizeBackward", o);
    rows.l2NormalizeBackward(this.rt, { ...o, x: cu(o.x), dy: cu(o.dy), dx: cu(o.dx) });
  }

  // ---- images -------------------------------------------------------------------------------

  conv2dForward(o: Opts<"conv2dForward">): void {
    this.#check("conv2dForward", o);
    this.#conv.forward(cu(o.x), cu(o.w), cu(o.y), o.geom);
  }

  conv2dBackwardData(o: Opts<"conv2dBackwardData">): void {
    this.#check("conv2dBackwardData", o);
    this.#conv.backwardData(cu(o.dy), cu(o.w), cu(o.dx), o.geom);
  }

  conv2dBackwardWeights(o: Opts<"conv2dBackwardWeights">): void {
    this.#check("conv2dBackwardWeights", o);
    this.#conv.backwardFilter(cu(o.x), cu(o.dy), cu(o.dw), o.geom);
  }

  batchNormForwardTraining(o: Opts<"batchNormForwardTraining">): void {
    this.#check("batchNormForwardTraining", o);
    bn.batchNormForwardTraining(this.rt, o as unknown as bn.ApplyArgs);
  }

  batchNormForwardInference(o: Opts<"batchNormForwardInference">): void {
    this.#check("batchNormForwardInference", o);
    bn.batchNormForwardInference(this.rt, o as unknown as bn.ApplyArgs);
  }

  batchNormBackward(o: Opts<"batchNormBackward">): void {
    this.#check("batchNormBackward", o);
    bn.batchNormBackward(this.rt, o as unknown as bn.BackwardArgs);
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
    pool.maxPool2dForward(this.rt, cu(o.x), cu(o.y), o.geom);
  }

  maxPool2dBackward(o: Opts<"maxPool2dBackward">): void {
    this.#check("maxPool2dBackward", o);
    pool.maxPool2dBackward(this.rt, cu(o.x), cu(o.dy), cu(o.dx), o.geom);
  }

  globalAvgPool(o: Opts<"globalAvgPool">): void {
    this.#check("globalAvgPool", o);
    pool.globalAvgPool(this.rt, { ...o, x: cu(o.x), y: cu(o.y) });
  }

  globalAvgPoolBackward(o: Opts<"globalAvgPoolBackward">): void {
    this.#check("globalAvgPoolBackward", o);
    pool.globalAvgPoolBackward(this.rt, { ...o, dy: cu(o.dy), dx: cu(o.dx) });
  }

  // ---- optimiser, teacher, augmentation -----------------------------------------------------

  sgdUpdateMulti(o: Opts<"sgdUpdateMulti">): void {
    this.#check("sgdUpdateMulti", o);
    sgdUpdateMulti(this.rt, this.#tables, {
      ...o,
      params: o.params.map(cu),
      grads: o.grads.map(cu),
      momentumBufs: o.momentumBufs.map(cu),
    });
  }

  emaUpdateMulti(o: Opts<"emaUpdateMulti">): void {
    this.#check("emaUpdateMulti", o);
    emaUpdateMulti(this.rt, this.#tables, {
      teacher: o.teacher.map(cu),
      student: o.student.map(cu),
      out: o.out.map(cu),
      momentum: o.momentum,
    });
  }

  augmentViews(o: Opts<"augmentViews">): void {
    this.#check("augmentViews", o);
    augmentViews(this.rt, { ...o, images: cu(o.images), params: cu(o.params), out: cu(o.out) });
  }

  // ---- helpers ------------------------------------------------------------------------------

  #open(what: string): void {
    if (this.#disposed) throw new Error(`Cannot run ${what}: this cuda backend was disposed`);
  }

  /** Open, valid per the contract; the storages it writes lose their host shadows. */
  #check<K extends KernelName>(kernel: K, o: Opts<K>): void {
    this.#open(kernel);
    validateKernel(this, kernel, o);
    dropShadows(kernel, o);
  }

  #own(
    what: string,
    name: string,
    s: Storage,
    dtypes: readonly DType[],
    needed: number,
  ): CudaStorage {
    this.#open(what);
    checkStorage(this, what, name, s, dtypes, needed);
    return cu(s);
  }
}

/**
 * A new cuda backend on device `opts.device` (default 0). Throws `CudaUnavailableError` (with what
 * is missing and how to install it) where there is no driver, no device or a library is missing;
 * `RESSL_CUDA_EMULATION=1` selects the emulated device.
 */
export function createCudaBackend(opts: CudaBackendOptions = {}): CudaBackend {
  return new CudaBackend(opts);
}

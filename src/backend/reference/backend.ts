/**
 * The reference backend: every kernel of the {@link Backend} contract in plain TypeScript, on host
 * typed arrays, with f64 accumulation (bf16 storages are read exactly and every result is rounded
 * once on store). It is written for clarity, as the oracle the oneDNN and CUDA backends are tested
 * against, and is the fallback where no native library is installed.
 *
 * Every kernel first runs `validateKernel` (the contract's one argument validator, generated from
 * the kernel table), then computes; the computations live by family in `elementwise.ts`,
 * `matrix.ts`, `conv.ts`, `norm.ts`, `pool.ts`, `optim.ts` and `augment.ts`.
 *
 * @module
 */

import type { Backend, DType, HostArray, KernelName, Opts, Storage } from "../backend.ts";
import { f64ToBf16 } from "../bf16.ts";
import { checkDims } from "../checks.ts";
import { checkStorage, validateKernel } from "../validate.ts";
import { hostArrayDType } from "../host.ts";
import { dataOf, ReferenceStorage } from "./storage.ts";
import * as elt from "./elementwise.ts";
import { gemm, rowKernels as rows } from "./matrix.ts";
import * as conv from "./conv.ts";
import * as bn from "./norm.ts";
import * as sbn from "./sync_norm.ts";
import { poolKernels as pool } from "./pool.ts";
import { emaUpdateMulti, sgdUpdateMulti } from "./optim.ts";
import { augmentViews } from "./augment.ts";

const ANY_DTYPE: readonly DType[] = ["f32", "bf16", "u8", "i32"];

/** Pure-TypeScript implementation of {@link Backend}. Create one with {@link createReferenceBackend}. */
export class ReferenceBackend implements Backend {
  /** Always `reference`. */
  readonly name = "reference";
  /** No native libraries. */
  readonly versions: Readonly<Record<string, string>> = Object.freeze({});
  #live = 0;
  #disposed = false;

  // ---- memory -------------------------------------------------------------------------------

  /** Allocates `length` zeroed elements of `dtype`. */
  alloc(dtype: DType, length: number): Storage {
    this.#assertOpen("alloc");
    checkDims("alloc", { length });
    const storage = new ReferenceStorage(this, dtype, length);
    this.#live++;
    return storage;
  }

  /** Releases a storage; freeing it twice or using it afterwards is an error. */
  free(storage: Storage): void {
    this.#own("free", "storage", storage).freed = true;
    this.#live--;
  }

  /** Number of storages allocated and not yet freed. */
  liveAllocations(): number {
    return this.#live;
  }

  /** Copies `src` into `dst` from element `dstOffset`; the host array's type must match the dtype. */
  upload(dst: Storage, src: HostArray, dstOffset = 0): void {
    const K = "upload";
    this.#assertOpen(K);
    const dtype = hostArrayDType(src);
    checkDims(K, { dstOffset });
    checkStorage(this, K, "dst", dst, [dtype], dstOffset + src.length);
    dataOf(dst).set(src, dstOffset);
  }

  /** A copy of the whole storage as a new host array. */
  download(src: Storage): HostArray {
    return this.#own("download", "src", src).data.slice();
  }

  /** Sets every element to `value` (an integer in range for u8 and i32 storages). */
  fill(dst: Storage, value: number): void {
    const s = this.#own("fill", "dst", dst);
    if (s.dtype === "u8" || s.dtype === "i32") {
      const [lo, hi] = s.dtype === "u8" ? [0, 255] : [-2147483648, 2147483647];
      if (!Number.isInteger(value) || value < lo || value > hi) {
        throw new RangeError(
          `Cannot run fill: value ${value} does not fit storage 'dst' of dtype ${s.dtype} ` +
            `(integers ${lo}..${hi})`,
        );
      }
      s.data.fill(value);
    } else if (s.dtype === "bf16") {
      s.data.fill(f64ToBf16(value));
    } else {
      s.data.fill(value);
    }
  }

  /** Nothing is queued on the reference backend. */
  synchronize(): void {}

  /** Marks the backend closed: later allocations and kernels throw. Storages stay readable. */
  dispose(): void {
    this.#disposed = true;
  }

  // ---- kernels (validated against the kernel table, then computed) ---------------------------

  copy(o: Opts<"copy">): void {
    this.#validate("copy", o);
    elt.copy(o);
  }
  cast(o: Opts<"cast">): void {
    this.#validate("cast", o);
    elt.cast(o);
  }
  axpby(o: Opts<"axpby">): void {
    this.#validate("axpby", o);
    elt.axpby(o);
  }
  mul(o: Opts<"mul">): void {
    this.#validate("mul", o);
    elt.mul(o);
  }
  broadcastScalar(o: Opts<"broadcastScalar">): void {
    this.#validate("broadcastScalar", o);
    elt.broadcastScalar(o);
  }
  relu(o: Opts<"relu">): void {
    this.#validate("relu", o);
    elt.relu(o);
  }
  reluBackward(o: Opts<"reluBackward">): void {
    this.#validate("reluBackward", o);
    elt.reluBackward(o);
  }
  sum(o: Opts<"sum">): void {
    this.#validate("sum", o);
    elt.sum(o);
  }
  gemm(o: Opts<"gemm">): void {
    this.#validate("gemm", o);
    gemm(o);
  }
  addRowVector(o: Opts<"addRowVector">): void {
    this.#validate("addRowVector", o);
    rows.addRowVector(o);
  }
  sumRows(o: Opts<"sumRows">): void {
    this.#validate("sumRows", o);
    rows.sumRows(o);
  }
  /** Also throws when an index lies outside [0, rows). */
  gatherRows(o: Opts<"gatherRows">): void {
    this.#validate("gatherRows", o);
    rows.gatherRows(o);
  }
  softmax(o: Opts<"softmax">): void {
    this.#validate("softmax", o);
    rows.softmax(o);
  }
  softmaxBackward(o: Opts<"softmaxBackward">): void {
    this.#validate("softmaxBackward", o);
    rows.softmaxBackward(o);
  }
  logSoftmax(o: Opts<"logSoftmax">): void {
    this.#validate("logSoftmax", o);
    rows.logSoftmax(o);
  }
  logSoftmaxBackward(o: Opts<"logSoftmaxBackward">): void {
    this.#validate("logSoftmaxBackward", o);
    rows.logSoftmaxBackward(o);
  }
  l2Normalize(o: Opts<"l2Normalize">): void {
    this.#validate("l2Normalize", o);
    rows.l2Normalize(o);
  }
  /** torch F.normalize's gradient: dy / eps where the norm is below eps. */
  l2NormalizeBackward(o: Opts<"l2NormalizeBackward">): void {
    this.#validate("l2NormalizeBackward", o);
    rows.l2NormalizeBackward(o);
  }
  conv2dForward(o: Opts<"conv2dForward">): void {
    this.#validate("conv2dForward", o);
    conv.conv2dForward(o);
  }
  conv2dBackwardData(o: Opts<"conv2dBackwardData">): void {
    this.#validate("conv2dBackwardData", o);
    conv.conv2dBackwardData(o);
  }
  conv2dBackwardWeights(o: Opts<"conv2dBackwardWeights">): void {
    this.#validate("conv2dBackwardWeights", o);
    conv.conv2dBackwardWeights(o);
  }
  batchNormForwardTraining(o: Opts<"batchNormForwardTraining">): void {
    this.#validate("batchNormForwardTraining", o);
    bn.batchNormForwardTraining(o);
  }
  batchNormForwardInference(o: Opts<"batchNormForwardInference">): void {
    this.#validate("batchNormForwardInference", o);
    bn.batchNormForwardInference(o);
  }
  batchNormBackward(o: Opts<"batchNormBackward">): void {
    this.#validate("batchNormBackward", o);
    bn.batchNormBackward(o);
  }
  batchNormStats(o: Opts<"batchNormStats">): void {
    this.#validate("batchNormStats", o);
    sbn.batchNormStats(o);
  }
  batchNormMergeStats(o: Opts<"batchNormMergeStats">): void {
    this.#validate("batchNormMergeStats", o);
    sbn.batchNormMergeStats(o);
  }
  batchNormBackwardReduce(o: Opts<"batchNormBackwardReduce">): void {
    this.#validate("batchNormBackwardReduce", o);
    sbn.batchNormBackwardReduce(o);
  }
  batchNormBackwardApply(o: Opts<"batchNormBackwardApply">): void {
    this.#validate("batchNormBackwardApply", o);
    sbn.batchNormBackwardApply(o);
  }
  maxPool2dForward(o: Opts<"maxPool2dForward">): void {
    this.#validate("maxPool2dForward", o);
    pool.maxPool2dForward(o);
  }
  maxPool2dBackward(o: Opts<"maxPool2dBackward">): void {
    this.#validate("maxPool2dBackward", o);
    pool.maxPool2dBackward(o);
  }
  globalAvgPool(o: Opts<"globalAvgPool">): void {
    this.#validate("globalAvgPool", o);
    pool.globalAvgPool(o);
  }
  globalAvgPoolBackward(o: Opts<"globalAvgPoolBackward">): void {
    this.#validate("globalAvgPoolBackward", o);
    pool.globalAvgPoolBackward(o);
  }
  sgdUpdateMulti(o: Opts<"sgdUpdateMulti">): void {
    this.#validate("sgdUpdateMulti", o);
    sgdUpdateMulti(o);
  }
  emaUpdateMulti(o: Opts<"emaUpdateMulti">): void {
    this.#validate("emaUpdateMulti", o);
    emaUpdateMulti(o);
  }
  /** Also throws when a parameter row does not fit its image (see `checkAugmentParamRow`). */
  augmentViews(o: Opts<"augmentViews">): void {
    this.#validate("augmentViews", o);
    augmentViews(o);
  }

  // ---- helpers ------------------------------------------------------------------------------

  #assertOpen(kernel: string): void {
    if (this.#disposed) {
      throw new Error(`Cannot run ${kernel}: this reference backend was disposed`);
    }
  }

  #validate<K extends KernelName>(kernel: K, opts: Opts<K>): void {
    this.#assertOpen(kernel);
    validateKernel(this, kernel, opts);
  }

  /** A live storage of this backend (any dtype). */
  #own(kernel: string, name: string, storage: Storage): ReferenceStorage {
    checkStorage(this, kernel, name, storage, ANY_DTYPE, 0);
    return storage as ReferenceStorage;
  }
}

/** A new reference backend (pure TypeScript, no native libraries). */
export function createReferenceBackend(): ReferenceBackend {
  return new ReferenceBackend();
}

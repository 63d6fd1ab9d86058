/**
 * Gradient averaging of data-parallel training in buckets, as PyTorch's DDP: the parameter
 * tensors are grouped, in reverse order (backward produces the last layers' gradients first),
 * into buckets of about `bucketBytes`; when backward has produced every gradient of a bucket, the
 * bucket's allreduce (average) starts and runs while backward goes on (`overlap`), and
 * {@link GradientBuckets.finish} waits for all of them and writes the averages back.
 *
 * Rules that keep every rank in step:
 * - buckets start strictly in bucket order (a bucket that completes early waits for the ones
 *   before it), so every rank issues the same collectives in the same order;
 * - the step's loss (a scalar) and any other values to average once per step (BN running
 *   statistics) travel in the last bucket, which starts in `finish`: they cost no collective of
 *   their own;
 * - a gradient backward never produced (an unused parameter) counts as zeros, on every rank.
 *
 * MPI makes progress only inside its calls: each `ready` tests the buckets in flight.
 *
 * @module
 */

import type { Storage } from "../backend/backend.ts";
import type { CommRequest } from "./comm.ts";
import type { DeviceComm } from "./device_comm.ts";

/** Default bucket size in bytes. */
export const DEFAULT_BUCKET_BYTES = 8 * 1024 * 1024;

/** Options of {@link GradientBuckets}. */
export interface GradientBucketOptions {
  /** Target bytes per bucket (f32 gradients; default 8 MiB). A larger tensor gets its own. */
  bucketBytes?: number;
  /** Start each bucket as soon as it is complete (default true); false: all in `finish`. */
  overlap?: boolean;
}

/** Options of one step's {@link GradientBuckets}. */
export interface StepBucketOptions extends GradientBucketOptions {
  /** Elements of the `extras` that `finish` will average with the last bucket (default 1). */
  extra?: number;
}

interface Bucket {
  /** Parameter indices in the bucket, in bucket order. */
  members: number[];
  /** Elements (the last bucket: plus the extras of `finish`). */
  length: number;
  storage: Storage | null;
  pending: number;
  request: CommRequest | null;
}

/** One step's gradient averaging (make one per step; `finish` frees its storages). */
export class GradientBuckets {
  readonly #dc: DeviceComm;
  readonly #sizes: readonly number[];
  readonly #overlap: boolean;
  readonly #buckets: Bucket[] = [];
  /** Bucket index and element offset of each parameter. */
  readonly #where: { bucket: number; offset: number }[] = [];
  readonly #ready: boolean[];
  readonly #extra: number;
  #started = 0;
  #finished = false;

  /** Buckets for parameters of `sizes` elements (in parameter order). */
  constructor(dc: DeviceComm, sizes: readonly number[], opts: StepBucketOptions = {}) {
    const bytes = opts.bucketBytes ?? DEFAULT_BUCKET_BYTES;
    if (!(bytes >= 4)) {
      throw new RangeError(`Cannot make gradient buckets of ${bytes} bytes: expected >= 4`);
    }
    this.#dc = dc;
    this.#sizes = sizes;
    this.#overlap = opts.overlap ?? true;
    this.#ready = sizes.map(() => false);
    const limit = Math.floor(bytes / 4);
    let current: Bucket | null = null;
    for (let i = sizes.length - 1; i >= 0; i--) {
      if (current === null || (current.length > 0 && current.length + sizes[i] > limit)) {
        current = { members: [], length: 0, storage: null, pending: 0, request: null };
        this.#buckets.push(current);
      }
      this.#where[i] = { bucket: this.#buckets.length - 1, offset: current.length };
      current.members.push(i);
      current.length += sizes[i];
      current.pending++;
    }
    if (current === null) {
      current = { members: [], length: 0, storage: null, pending: 0, request: null };
      this.#buckets.push(current);
    }
    this.#extra = opts.extra ?? 1;
    current.length += this.#extra;
  }

  /** Number of buckets. */
  get count(): number {
    return this.#buckets.length;
  }

  #storage(b: Bucket): Storage {
    return b.storage ??= this.#dc.backend.alloc("f32", b.length);
  }

  /** Gradient `index` is final: copied into its bucket; complete buckets start (in order). */
  ready(index: number, grad: Storage): void {
    if (this.#finished) throw new Error("Cannot add a gradient after finish()");
    if (this.#ready[index]) {
      throw new Error(`Gradient ${index} was handed over twice in one step`);
    }
    if (grad.length !== this.#sizes[index]) {
      throw new RangeError(
        `Gradient ${index} has ${grad.length} elements, its parameter ${this.#sizes[index]}`,
      );
    }
    this.#ready[index] = true;
    const { bucket, offset } = this.#where[index];
    const b = this.#buckets[bucket];
    this.#dc.backend.copy({
      src: grad,
      dst: this.#storage(b),
      srcOffset: 0,
      dstOffset: offset,
      length: grad.length,
    });
    b.pending--;
    if (this.#overlap) this.#startReady(this.#buckets.length - 1);
    for (let k = 0; k < this.#started; k++) this.#buckets[k].request?.test();
  }

  /** Starts buckets in order while they are complete, up to (excluding) bucket `end`. */
  #startReady(end: number): void {
    while (this.#started < end && this.#buckets[this.#started].pending === 0) {
      const b = this.#buckets[this.#started++];
      b.request = this.#dc.allreduceStart(this.#storage(b), "avg");
    }
  }

  /**
   * Hands over every gradient not yet given (`grads[i]`, e.g. zeros of an unused parameter),
   * appends `extras` (f32 storages: the loss, ...) to the last bucket, starts what is left, waits
   * for every bucket, and writes the averages into `grads` and `extras` in place.
   */
  finish(grads: readonly Storage[], extras: readonly Storage[]): void {
    if (grads.length !== this.#sizes.length) {
      throw new RangeError(`finish() got ${grads.length} gradients for ${this.#sizes.length}`);
    }
    for (let i = 0; i < grads.length; i++) if (!this.#ready[i]) this.ready(i, grads[i]);
    this.#finished = true;
    const be = this.#dc.backend;
    const last = this.#buckets[this.#buckets.length - 1];
    const at: number[] = [];
    const total = extras.reduce((n, e) => n + e.length, 0);
    if (total !== this.#extra) {
      throw new RangeError(
        `finish() got ${total} extra elements, the buckets were made for ${this.#extra}`,
      );
    }
    let offset = last.length - total;
    for (const e of extras) {
      at.push(offset);
      be.copy({
        src: e,
        dst: this.#storage(last),
        srcOffset: 0,
        dstOffset: offset,
        length: e.length,
      });
      offset += e.length;
    }
    try {
      this.#startReady(this.#buckets.length);
      for (const b of this.#buckets) b.request!.wait();
      for (let i = 0; i < grads.length; i++) {
        const { bucket, offset } = this.#where[i];
        be.copy({
          src: this.#buckets[bucket].storage!,
          dst: grads[i],
          srcOffset: offset,
          dstOffset: 0,
          length: this.#sizes[i],
        });
      }
      extras.forEach((e, k) => {
        be.copy({ src: last.storage!, dst: e, srcOffset: at[k], dstOffset: 0, length: e.length });
      });
    } finally {
      this.dispose();
    }
  }

  /** Frees the bucket storages (after `finish`, or when a step fails). */
  dispose(): void {
    for (const b of this.#buckets) {
      if (b.storage !== null) this.#dc.backend.free(b.storage);
      b.storage = null;
    }
  }
}

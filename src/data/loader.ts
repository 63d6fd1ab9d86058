/**
 * Batches for training: an epoch order shuffled from the key, fixed-size batches (optionally keeping
 * the last partial one), each batch as u8 NHWC images plus the weak and strong augmented views,
 * prefetched in Web Workers so augmentation overlaps the training step.
 *
 * Every random choice is a pure function of (key, epoch, sample index), so the batches are the same
 * for 0, 1 or N workers and from any resume point (`startBatch`).
 *
 * @module
 */

import {
  augmentBatch,
  augmentBatchParams,
  AugmentWorkspace,
  checkPipeline,
  type ViewPipeline,
} from "./augment.ts";
import { imageBytes, type ImageDataset } from "./datasets/dataset.ts";
import type { WorkerInit, WorkerJob, WorkerReply } from "./loader_worker.ts";
import { foldIn, nameId, permutation, type RngKey } from "../random/philox.ts";

/** Stream name of the epoch shuffles: `permutation(foldIn(key, SHUFFLE_STREAM, epoch), n)`. */
export const SHUFFLE_STREAM: number = nameId("shuffle");

/** One batch on the host, ready to upload. */
export interface HostBatch {
  /** u8 NHWC images, `count * height * width * channels`. */
  images: Uint8Array;
  /** Teacher view, normalised f32 NCHW (empty with `viewsOn: "device"`). */
  weak: Float32Array;
  /** Student view, normalised f32 NCHW (empty with `viewsOn: "device"`). */
  strong: Float32Array;
  /** Extra student views (multi-crop), one array per {@link LoaderOptions.extra} pipeline. */
  extra: Float32Array[];
  /**
   * With `viewsOn: "device"`: the parameter rows of each view (weak, strong, extra...), for the
   * backend's `augmentViews` kernel to make the views from `images`.
   */
  viewParams?: Float32Array[];
  /** Labels of the images, when the dataset has them (`-1` = unlabelled). */
  labels?: Int32Array;
  /** Dataset index of each image. */
  indices: Int32Array;
  /** The epoch the batch belongs to. */
  epoch: number;
  /** Index of the batch within its epoch. */
  step: number;
}

/** Options of {@link Loader}. */
export interface LoaderOptions {
  /** The images to load. */
  dataset: ImageDataset;
  /** The teacher's (weak) view. */
  weak: ViewPipeline;
  /** The student's (strong) view. */
  strong: ViewPipeline;
  /** Extra student views (multi-crop: smaller crops); view index 2, 3, ... of the keys. */
  extra?: ViewPipeline[];
  /** Root key of the run; shuffles and augmentations derive from it. */
  key: RngKey;
  /** Images per batch. */
  batchSize: number;
  /** Drop the last partial batch (default true: static shapes). */
  dropLast?: boolean;
  /** Shuffle each epoch (default true); false keeps dataset order. */
  shuffle?: boolean;
  /** Web Workers augmenting in the background (default 0: augment inline). */
  workers?: number;
  /** Batches prepared ahead (default 2 per worker). */
  prefetch?: number;
  /**
   * Data-parallel training: this process is rank `shard.rank` of `shard.count`, and each batch it
   * yields is the strided slice `rank, rank + count, ...` of the global batch of `batchSize`
   * images (which `count` must divide). Default: one process (the whole batch).
   */
  shard?: { rank: number; count: number };
  /**
   * Where the views are made: `host` (default: augmented here or in the workers) or `device`
   * (only each view's parameter rows are drawn, in `HostBatch.viewParams`; the trainer makes the
   * views with the backend's `augmentViews`, so no worker is started).
   */
  viewsOn?: "host" | "device";
}

/** Options of {@link Loader.epoch}. */
export interface EpochOptions {
  /** First batch to yield (resume mid-epoch). */
  startBatch?: number;
}

interface Pending {
  resolve: (views: Float32Array[]) => void;
  reject: (err: Error) => void;
}

/** A worker and its jobs in flight. */
class WorkerSlot {
  readonly worker: Worker;
  readonly pending = new Map<number, Pending>();

  constructor(init: WorkerInit) {
    this.worker = new Worker(new URL("./loader_worker.ts", import.meta.url), { type: "module" });
    this.worker.onmessage = (e: MessageEvent<WorkerReply>) => {
      const r = e.data, p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (r.type === "done") p.resolve(r.views);
      else p.reject(new Error(`Cannot augment batch: ${r.message}`));
    };
    this.worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.failAll(new Error(`Loader worker crashed: ${e.message}`));
    };
    this.worker.postMessage(init);
  }

  run(job: WorkerJob): Promise<Float32Array[]> {
    return new Promise((resolve, reject) => {
      this.pending.set(job.id, { resolve, reject });
      this.worker.postMessage(job);
    });
  }

  failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  terminate(): void {
    this.worker.terminate();
    this.failAll(new Error("Loader closed"));
  }
}

/** Batches of a dataset with their augmented views; close it (or `await using`) to end workers. */
export class Loader implements AsyncDisposable {
  /** The options, defaults filled in. */
  readonly options: Readonly<Required<LoaderOptions>>;
  #slots: WorkerSlot[] = [];
  #nextId = 0;
  #closed = false;
  #ws = new AugmentWorkspace();

  /** Starts `options.workers` augmentation workers (none: augment on the calling thread). */
  constructor(options: LoaderOptions) {
    const workers = options.workers ?? 0;
    this.options = {
      dropLast: true,
      shuffle: true,
      workers,
      prefetch: Math.max(1, 2 * workers),
      viewsOn: "host",
      ...options,
      shard: options.shard ?? { rank: 0, count: 1 },
      extra: options.extra ?? [],
    };
    const { dataset, batchSize, shard } = this.options;
    if (!(Number.isInteger(batchSize) && batchSize >= 1)) {
      throw new RangeError(
        `Cannot make a loader: batch size ${batchSize} must be a positive integer`,
      );
    }
    if (
      !(Number.isInteger(shard.count) && shard.count >= 1 && Number.isInteger(shard.rank) &&
        shard.rank >= 0 && shard.rank < shard.count)
    ) {
      throw new RangeError(
        `Cannot make a loader: shard ${shard.rank} of ${shard.count} is not a rank below a ` +
          `process count >= 1`,
      );
    }
    if (batchSize % shard.count !== 0) {
      throw new RangeError(
        `Cannot make a loader: the global batch of ${batchSize} images does not divide among ` +
          `${shard.count} processes (choose a batch size that is a multiple of ${shard.count})`,
      );
    }
    if (!(Number.isInteger(workers) && workers >= 0)) {
      throw new RangeError(`Cannot make a loader: worker count ${workers} must be an integer >= 0`);
    }
    checkPipeline(options.weak, dataset.channels);
    checkPipeline(options.strong, dataset.channels);
    for (const v of this.options.extra) checkPipeline(v, dataset.channels);
    if (this.batchesPerEpoch() === 0) {
      throw new RangeError(
        `Cannot make a loader: ${dataset.name} has ${dataset.length} images, fewer than one batch of ${batchSize} (lower the batch size or set dropLast false)`,
      );
    }
  }

  /** Number of batches in each epoch. */
  batchesPerEpoch(): number {
    const { dataset, batchSize, dropLast } = this.options;
    return dropLast
      ? Math.floor(dataset.length / batchSize)
      : Math.ceil(dataset.length / batchSize);
  }

  /** The order of the dataset's samples in `epoch`. */
  epochOrder(epoch: number): Int32Array {
    const n = this.options.dataset.length;
    if (!this.options.shuffle) return Int32Array.from({ length: n }, (_, i) => i);
    return permutation(foldIn(this.options.key, SHUFFLE_STREAM, epoch), n);
  }

  #startWorkers(): void {
    if (this.#slots.length > 0 || this.options.workers === 0) return;
    if (this.options.viewsOn === "device") return;
    const { dataset, weak, strong, extra, key, workers } = this.options;
    const init: WorkerInit = {
      type: "init",
      views: [weak, strong, ...extra],
      key,
      height: dataset.height,
      width: dataset.width,
      channels: dataset.channels,
    };
    for (let w = 0; w < workers; w++) this.#slots.push(new WorkerSlot(init));
  }

  /** Reads one batch's images and starts (or, without workers, defers) its augmentation. */
  #prepare(epoch: number, step: number, indices: Int32Array): {
    images: Uint8Array;
    views: () => Promise<Float32Array[]>;
  } {
    const { dataset, weak, strong, extra, key } = this.options;
    const images = new Uint8Array(indices.length * imageBytes(dataset));
    dataset.readInto(indices, images);
    const shape = { height: dataset.height, width: dataset.width, channels: dataset.channels };
    if (this.options.viewsOn === "device") {
      const views = [weak, strong, ...extra];
      const rows = () =>
        Promise.resolve(augmentBatchParams({ ...shape, indices, epoch, key, views }));
      return { images, views: rows };
    }
    if (this.#slots.length === 0) {
      const run = () =>
        Promise.resolve(
          augmentBatch({
            images,
            ...shape,
            indices,
            epoch,
            key,
            views: [weak, strong, ...extra],
            ws: this.#ws,
          }),
        );
      return { images, views: run };
    }
    const slot = this.#slots[step % this.#slots.length];
    const promise = slot.run({
      type: "job",
      id: this.#nextId++,
      epoch,
      indices,
      images: images.slice(),
    });
    promise.catch(() => {}); // surfaced when the batch is awaited
    return { images, views: () => promise };
  }

  /** Yields the batches of `epoch` in order, from `startBatch`. */
  async *epoch(epoch: number, options: EpochOptions = {}): AsyncGenerator<HostBatch> {
    if (this.#closed) throw new Error("Cannot iterate a closed loader");
    const { dataset, batchSize, prefetch } = this.options;
    const nb = this.batchesPerEpoch();
    const start = options.startBatch ?? 0;
    if (!(Number.isInteger(start) && start >= 0 && start <= nb)) {
      throw new RangeError(`Cannot start epoch ${epoch} at batch ${start}: it has ${nb} batches`);
    }
    this.#startWorkers();
    const order = this.epochOrder(epoch);
    const { rank, count } = this.options.shard;
    const indicesOf = (step: number) => {
      const global = order.slice(
        step * batchSize,
        Math.min((step + 1) * batchSize, dataset.length),
      );
      if (count === 1) return global;
      return Int32Array.from(
        { length: Math.ceil((global.length - rank) / count) },
        (_, i) => global[i * count + rank],
      );
    };
    const queue: {
      step: number;
      indices: Int32Array;
      images: Uint8Array;
      views: () => Promise<Float32Array[]>;
    }[] = [];
    let next = start;
    const fill = () => {
      while (queue.length < prefetch && next < nb) {
        const indices = indicesOf(next);
        queue.push({ step: next, indices, ...this.#prepare(epoch, next, indices) });
        next++;
      }
    };
    fill();
    const device = this.options.viewsOn === "device";
    while (queue.length > 0) {
      const job = queue.shift()!;
      const made = await job.views();
      fill();
      const labels = dataset.labels
        ? Int32Array.from(job.indices, (i) => dataset.labels![i])
        : undefined;
      const [weak, strong, ...extra] = device ? [] : made;
      const none = new Float32Array(0);
      yield {
        images: job.images,
        weak: weak ?? none,
        strong: strong ?? none,
        extra: device ? [] : extra,
        viewParams: device ? made : undefined,
        labels,
        indices: job.indices,
        epoch,
        step: job.step,
      };
    }
  }

  /** Ends the workers. Batches already yielded stay valid. */
  close(): Promise<void> {
    this.#closed = true;
    for (const s of this.#slots) s.terminate();
    this.#slots = [];
    return Promise.resolve();
  }

  /** Same as {@link Loader.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

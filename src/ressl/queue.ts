/**
 * The ReSSL memory queue (RESSL_SPEC §3): a FIFO ring buffer of K unit-norm teacher embeddings
 * ([K, D], one per row) and a write pointer. After the loss, the B current keys overwrite rows
 * `ptr .. ptr + B - 1` and `ptr` advances by B modulo K, which needs `K % B == 0`.
 *
 * Queues are values: {@link enqueue} returns a new queue and leaves its input untouched. The
 * initial rows are Gaussian vectors drawn from a Philox key and L2-normalised per row, as the
 * official `F.normalize(torch.randn(dim, K), dim=0)`.
 *
 * @module
 */

import { normalArray, type RngKey } from "../random/philox.ts";
import type { Context, Tensor } from "../tensor/tensor.ts";

/** A ring buffer of teacher embeddings. */
export interface Queue {
  /** [K, D] rows of unit norm (stop-gradient; never differentiated). */
  readonly data: Tensor;
  /** The row the next batch of keys is written to (a multiple of the batch size). */
  readonly ptr: number;
}

/** Options of {@link initQueue}. */
export interface InitQueueOptions {
  /** Number of rows K (4096 for CIFAR, 16384 STL-10 / Tiny-ImageNet, 65536 ImageNet). */
  size: number;
  /** Embedding dimension D (the projection head's output). */
  dim: number;
  /** Key of the Gaussian initial rows. */
  key: RngKey;
  /** When given, checks up front that K is a multiple of the batch size. */
  batchSize?: number;
}

/** Throws unless the queue size is a multiple of the batch size (the ring buffer's contract). */
export function checkQueueBatch(size: number, batchSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`Cannot build the queue: the batch size is ${batchSize}, expected >= 1`);
  }
  if (size % batchSize !== 0) {
    throw new RangeError(
      `Cannot build the queue: K=${size} is not a multiple of the batch size ${batchSize} ` +
        `(choose K = ${
          Math.max(1, Math.round(size / batchSize)) * batchSize
        } or another batch size)`,
    );
  }
}

/** A queue of `size` random unit rows of dimension `dim`, with `ptr` 0. */
export function initQueue(ctx: Context, opts: InitQueueOptions): Queue {
  const { size, dim } = opts;
  for (const [name, v] of [["size K", size], ["dim D", dim]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`Cannot build the queue: ${name} is ${v} but must be an integer >= 1`);
    }
  }
  if (opts.batchSize !== undefined) checkQueueBatch(size, opts.batchSize);
  const raw = ctx.fromArray(normalArray(opts.key, size * dim), [size, dim]);
  const data = ctx.empty([size, dim]);
  ctx.backend.l2Normalize({ x: raw.storage, y: data.storage, rows: size, cols: dim, eps: 1e-12 });
  raw.dispose();
  return { data, ptr: 0 };
}

/**
 * A new queue whose rows `ptr .. ptr + B - 1` hold `keys` [B, D] (the teacher's L2-normalised
 * embeddings of this step), and whose `ptr` is `(ptr + B) % K`. The input queue is unchanged.
 */
export function enqueue(queue: Queue, keys: Tensor): Queue {
  const [size, dim] = queue.data.shape;
  if (keys.rank !== 2 || keys.shape[1] !== dim || keys.dtype !== "f32") {
    throw new RangeError(
      `Cannot enqueue keys of shape [${keys.shape}] (${keys.dtype}): the queue holds f32 rows of ` +
        `dimension ${dim}`,
    );
  }
  const b = keys.shape[0];
  checkQueueBatch(size, b);
  if (queue.ptr % b !== 0 || queue.ptr < 0 || queue.ptr >= size) {
    throw new RangeError(
      `Cannot enqueue ${b} keys at ptr ${queue.ptr}: ptr must be a multiple of the batch size ` +
        `below K=${size} (was the batch size changed mid-run?)`,
    );
  }
  const ctx = queue.data.ctx;
  const be = ctx.backend;
  const data = ctx.empty([size, dim]);
  const n = size * dim;
  be.copy({ src: queue.data.storage, dst: data.storage, srcOffset: 0, dstOffset: 0, length: n });
  be.copy({
    src: keys.storage,
    dst: data.storage,
    srcOffset: 0,
    dstOffset: queue.ptr * dim,
    length: b * dim,
  });
  return { data, ptr: (queue.ptr + b) % size };
}

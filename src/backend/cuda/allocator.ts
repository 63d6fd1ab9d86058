/**
 * The cuda backend's caching allocator: device blocks are taken from the driver once
 * (`cuMemAlloc_v2`) and then recycled through size buckets, so a training step, whose shapes repeat,
 * makes no driver allocation after its first run.
 *
 * Stream order makes reuse safe without events: every kernel, copy and library call of the backend
 * runs on its one stream, so work queued after a block is handed out again runs after the work
 * that used it before it was freed. (Nothing reads or writes device memory off that stream, except
 * `trim`, which synchronises first.)
 *
 * Sizes are rounded up (512 bytes below 1 MiB, 2 MiB above) and a request is served only from its
 * own bucket: with static shapes every bucket refills exactly. Long-lived blocks of another kind
 * (the multi-tensor pointer tables) use a pool of their own, so that taking or keeping one never
 * changes which blocks the tensors of the next step get (and so which pointer tables they need). When the driver reports
 * out-of-memory, the cached blocks are released and the allocation is tried once more; then a
 * {@link CudaOutOfMemoryError} says how much was asked for, held and cached.
 *
 * @module
 */

import type { CudaDriver } from "../../../ffi/cuda/driver.ts";
import { CudaLibraryError } from "../../../ffi/cuda/errors.ts";
import { memAlloc, memFree } from "../../../ffi/cuda/memory.ts";

const SMALL = 1 << 20;
const SMALL_ROUND = 512;
const LARGE_ROUND = 2 << 20;
/** Separate pools of buckets (0: storages and scratch; 1: long-lived tables). */
export const POOLS = 2;

/** The bucket size of a request of `bytes` (> 0). */
export function roundBlockBytes(bytes: number): number {
  const unit = bytes <= SMALL ? SMALL_ROUND : LARGE_ROUND;
  return Math.ceil(bytes / unit) * unit;
}

/** The device ran out of memory even after the allocator released its cache. */
export class CudaOutOfMemoryError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CudaOutOfMemoryError";
  }
}

/** What the allocator holds. */
export interface AllocatorStats {
  /** Blocks currently taken from the driver (handed out or cached). */
  deviceAllocations: number;
  /** Their bytes. */
  deviceBytes: number;
  /** Blocks handed out and not yet returned. */
  liveBlocks: number;
  /** Blocks cached for reuse. */
  cachedBlocks: number;
  /** Bytes of the cached blocks. */
  cachedBytes: number;
  /** Driver allocations made so far (a warm training step adds none). */
  driverAllocCalls: number;
}

/** Size-bucketed device memory recycling on one stream; see the module documentation. */
export class CachingAllocator {
  readonly #drv: CudaDriver;
  readonly #sync: () => void;
  readonly #device: string;
  /** Free blocks by pool and size: key `size * POOLS + pool`. */
  readonly #buckets = new Map<number, bigint[]>();
  readonly #blockPool = new Map<bigint, number>();
  readonly #blockBytes = new Map<bigint, number>();
  readonly #live = new Set<bigint>();
  #cachedBlocks = 0;
  #cachedBytes = 0;
  #deviceBytes = 0;
  #driverAllocCalls = 0;

  /**
   * @param drv the driver
   * @param sync waits for the stream that uses the blocks (before blocks go back to the driver)
   * @param device the device's name, for messages
   */
  constructor(drv: CudaDriver, sync: () => void, device: string) {
    this.#drv = drv;
    this.#sync = sync;
    this.#device = device;
  }

  /** A block of at least `bytes` (> 0) bytes, 512-byte aligned, from `pool` (default 0). */
  alloc(bytes: number, pool = 0): bigint {
    if (!Number.isSafeInteger(bytes) || bytes <= 0) {
      throw new RangeError(`Cannot allocate ${bytes} bytes of device memory: use a positive size`);
    }
    if (!Number.isInteger(pool) || pool < 0 || pool >= POOLS) {
      throw new RangeError(`Cannot allocate from pool ${pool}: pools are 0..${POOLS - 1}`);
    }
    const size = roundBlockBytes(bytes);
    const cached = this.#buckets.get(size * POOLS + pool);
    if (cached !== undefined && cached.length > 0) {
      const ptr = cached.pop()!;
      this.#cachedBlocks--;
      this.#cachedBytes -= size;
      this.#live.add(ptr);
      return ptr;
    }
    const ptr = this.#fromDriver(size, bytes);
    this.#blockBytes.set(ptr, size);
    this.#blockPool.set(ptr, pool);
    this.#deviceBytes += size;
    this.#live.add(ptr);
    return ptr;
  }

  /** Returns a block to its bucket (work already queued on the stream may still use it). */
  free(ptr: bigint): void {
    if (!this.#live.delete(ptr)) {
      throw new Error(`Cannot free device block 0x${ptr.toString(16)}: it is not handed out`);
    }
    const size = this.#blockBytes.get(ptr)!;
    const key = size * POOLS + this.#blockPool.get(ptr)!;
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) this.#buckets.set(key, bucket = []);
    bucket.push(ptr);
    this.#cachedBlocks++;
    this.#cachedBytes += size;
  }

  /** Gives every cached block back to the driver (after the stream's work is done). */
  trim(): void {
    if (this.#cachedBlocks === 0) return;
    this.#sync();
    for (const bucket of this.#buckets.values()) {
      for (const ptr of bucket) {
        memFree(this.#drv, ptr);
        this.#deviceBytes -= this.#blockBytes.get(ptr)!;
        this.#blockBytes.delete(ptr);
        this.#blockPool.delete(ptr);
      }
    }
    this.#buckets.clear();
    this.#cachedBlocks = 0;
    this.#cachedBytes = 0;
  }

  /** Counts of blocks and bytes (leak tests, benchmarks). */
  stats(): AllocatorStats {
    return {
      deviceAllocations: this.#blockBytes.size,
      deviceBytes: this.#deviceBytes,
      liveBlocks: this.#live.size,
      cachedBlocks: this.#cachedBlocks,
      cachedBytes: this.#cachedBytes,
      driverAllocCalls: this.#driverAllocCalls,
    };
  }

  /** Gives every block, handed out or cached, back to the driver (the backend is closing). */
  dispose(): void {
    this.#sync();
    for (const ptr of this.#blockBytes.keys()) memFree(this.#drv, ptr);
    this.#blockBytes.clear();
    this.#blockPool.clear();
    this.#buckets.clear();
    this.#live.clear();
    this.#cachedBlocks = 0;
    this.#cachedBytes = 0;
    this.#deviceBytes = 0;
  }

  #fromDriver(size: number, asked: number): bigint {
    try {
      this.#driverAllocCalls++;
      return memAlloc(this.#drv, size);
    } catch (e) {
      if (!isOutOfMemory(e)) throw e;
    }
    const cached = this.#cachedBytes;
    this.trim();
    try {
      this.#driverAllocCalls++;
      return memAlloc(this.#drv, size);
    } catch (e) {
      if (!isOutOfMemory(e)) throw e;
      throw new CudaOutOfMemoryError(
        `Cannot allocate ${mib(asked)} of device memory on ${this.#device}: out of memory ` +
          `(${mib(this.#deviceBytes)} held in ${this.#live.size} blocks in use; ${mib(cached)} ` +
          `of cached blocks were released first); use a smaller batch size or model width`,
        { cause: e },
      );
    }
  }
}

function isOutOfMemory(e: unknown): boolean {
  return e instanceof CudaLibraryError && e.statusName === "CUDA_ERROR_OUT_OF_MEMORY";
}

function mib(bytes: number): string {
  return bytes < 1 << 20 ? `${bytes} bytes` : `${(bytes / (1 << 20)).toFixed(1)} MiB`;
}

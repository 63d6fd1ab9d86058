/**
 * Device tables of the multi-tensor kernels (`optim.cu`): the arrays of tensor pointers, the sizes,
 * the chunk table and the per-tensor settings, packed into one device block.
 *
 * Tables are cached by content: the signature of a call is every pointer, size and setting, and a
 * call whose signature matches a cached table queues nothing. A miss packs the table (~2 KB for
 * ResNet-18's 62 tensors x 3 lists) and queues one asynchronous upload through pinned staging, with
 * no synchronisation. Measured on this 2-core development VM with the emulated driver: ~20 µs per
 * hit (the signature pass) and ~100 µs per miss (most of it the emulated driver's calls). Hits
 * happen when the same storages come back (an in-place EMA, an evaluation loop, a repeated call);
 * in a training step the optimiser's clones usually get other blocks of their sizes from the
 * allocator (several tensors share each size), so each step pays two misses: well under a
 * millisecond next to a step. A small LRU bounds the memory; an evicted table goes back to the
 * allocator (work queued before still reads it first: stream order). Tables live in an allocator
 * pool of their own, so making one does not change which blocks the next step's tensors get.
 *
 * @module
 */

import { multiTensorChunks } from "../../../ffi/cuda/kernels/signatures.ts";
import type { CudaRuntime } from "./runtime.ts";
import type { CudaStorage } from "./storage.ts";

/** Elements per block of the multi-tensor kernels. */
export const CHUNK_SIZE = 16384;
/** The allocator pool of the tables (apart from tensors: see `allocator.ts`). */
const TABLE_POOL = 1;
/**
 * Tables kept per backend: few, so that after a couple of training steps the misses reuse evicted
 * blocks and no step allocates through the driver any more.
 */
export const TABLE_CACHE_ENTRIES = 4;

/** Device addresses of one packed table. */
export interface TensorTable {
  /** One pointer array per list, in the order given. */
  lists: bigint[];
  sizes: bigint;
  chunkStart: bigint;
  /** f32 per tensor (0 when no settings were given). */
  weightDecay: bigint;
  /** i32 per tensor (0 when no settings were given). */
  larsAdapt: bigint;
  /** Blocks of a launch: the total chunk count. */
  chunks: number;
  /** Tensors in the table. */
  count: number;
}

interface Entry {
  signature: Float64Array;
  hash: number;
  block: bigint;
  table: TensorTable;
}

/** Table cache counters (tests and benchmarks). */
export interface TableStats {
  /** Tables found in the cache (no upload). */
  hits: number;
  /** Tables uploaded to the device. */
  uploads: number;
}

/** The content-keyed table cache of one backend; see the module documentation. */
export class TensorTables {
  readonly #rt: CudaRuntime;
  /** Most recently used last. */
  #entries: Entry[] = [];
  #sig = new Float64Array(64);
  #hits = 0;
  #uploads = 0;

  constructor(rt: CudaRuntime) {
    this.#rt = rt;
  }

  /**
   * The table of `lists` (entry i of each list is tensor i; sizes from the first list's lengths),
   * with optional per-tensor weight decay and LARS flags.
   */
  get(
    lists: CudaStorage[][],
    weightDecay?: readonly number[],
    adapt?: readonly boolean[],
  ): TensorTable {
    const t = lists[0].length;
    const len = 3 + t * (lists.length + 3);
    if (this.#sig.length < len) this.#sig = new Float64Array(2 * len);
    const sig = this.#sig;
    let k = 0;
    sig[k++] = t;
    sig[k++] = lists.length;
    sig[k++] = (weightDecay ? 1 : 0) + (adapt ? 2 : 0);
    for (const list of lists) for (let i = 0; i < t; i++) sig[k++] = list[i].addr;
    for (let i = 0; i < t; i++) {
      sig[k++] = lists[0][i].length;
      sig[k++] = weightDecay ? weightDecay[i] : 0;
      sig[k++] = adapt?.[i] ? 1 : 0;
    }
    let hash = 0;
    for (let i = 0; i < len; i++) hash = (Math.imul(hash, 31) + (sig[i] | 0)) | 0; // low 32 bits
    const entries = this.#entries;
    for (let e = entries.length - 1; e >= 0; e--) {
      const entry = entries[e];
      if (entry.hash !== hash || entry.signature.length !== len) continue;
      let same = true;
      for (let i = 0; i < len && same; i++) same = entry.signature[i] === sig[i];
      if (!same) continue;
      if (e !== entries.length - 1) entries.push(...entries.splice(e, 1));
      this.#hits++;
      return entry.table;
    }
    const entry = this.#build(lists, weightDecay, adapt, sig.slice(0, len), hash);
    entries.push(entry);
    this.#uploads++;
    if (entries.length > TABLE_CACHE_ENTRIES) this.#rt.release(entries.shift()!.block);
    return entry.table;
  }

  /** Hits and uploads so far. */
  stats(): TableStats {
    return { hits: this.#hits, uploads: this.#uploads };
  }

  /** Returns every table's block to the allocator. */
  clear(): void {
    for (const e of this.#entries) this.#rt.release(e.block);
    this.#entries = [];
  }

  #build(
    lists: CudaStorage[][],
    weightDecay: readonly number[] | undefined,
    adapt: readonly boolean[] | undefined,
    signature: Float64Array,
    hash: number,
  ): Entry {
    const t = lists[0].length;
    const sizes = lists[0].map((s) => s.length);
    const starts = multiTensorChunks(sizes, CHUNK_SIZE);
    const align8 = (n: number) => Math.ceil(n / 8) * 8;
    const ptrBytes = 8 * t * lists.length;
    const sizesAt = ptrBytes;
    const startsAt = align8(sizesAt + 4 * t);
    const wdAt = align8(startsAt + 4 * (t + 1));
    const adaptAt = align8(wdAt + (weightDecay ? 4 * t : 0));
    const bytes = new ArrayBuffer(align8(adaptAt + (adapt ? 4 * t : 0)));
    const ptrs = new BigUint64Array(bytes, 0, t * lists.length);
    lists.forEach((list, l) => list.forEach((s, i) => (ptrs[l * t + i] = s.ptr)));
    new Int32Array(bytes, sizesAt, t).set(sizes);
    new Int32Array(bytes, startsAt, t + 1).set(starts);
    if (weightDecay) new Float32Array(bytes, wdAt, t).set(weightDecay);
    if (adapt) new Int32Array(bytes, adaptAt, t).set(adapt.map(Number));
    const block = this.#rt.alloc.alloc(bytes.byteLength, TABLE_POOL);
    this.#rt.staging.upload(block, new Uint8Array(bytes));
    const addr = (offset: number) => block + BigInt(offset);
    return {
      signature,
      hash,
      block,
      table: {
        lists: lists.map((_, l) => addr(8 * t * l)),
        sizes: addr(sizesAt),
        chunkStart: addr(startsAt),
        weightDecay: weightDecay ? addr(wdAt) : 0n,
        larsAdapt: adapt ? addr(adaptAt) : 0n,
        chunks: starts[t],
        count: t,
      },
    };
  }
}

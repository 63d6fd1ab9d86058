/**
 * Device tables of the multi-tensor kernels (`optim.cu`): the arrays of tensor pointers, the sizes,
 * the chunk table and the per-tensor settings, packed into one device block.
 *
 * The optimiser clones its parameters every step, so the storages of a call change from step to
 * step; but the caching allocator hands the same few blocks out again (static shapes), so the
 * pointer values cycle through a handful of sets. Tables are therefore cached by content: the key
 * is every pointer, size and setting of the call, and a hit queues no upload at all. A small LRU
 * bounds the memory; an evicted table goes back to the allocator (work queued before still reads
 * it first: stream order).
 *
 * @module
 */

import { multiTensorChunks } from "../../../ffi/cuda/kernels/signatures.ts";
import type { CudaRuntime } from "./runtime.ts";
import type { CudaStorage } from "./storage.ts";

/** Elements per block of the multi-tensor kernels. */
export const CHUNK_SIZE = 16384;
/** Tables kept per backend. */
export const TABLE_CACHE_ENTRIES = 16;

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
  block: bigint;
  table: TensorTable;
}

/** Table cache counters (tests and benchmarks). */
export interface TableStats {
  hits: number;
  uploads: number;
}

/** The content-keyed table cache of one backend; see the module documentation. */
export class TensorTables {
  readonly #rt: CudaRuntime;
  readonly #entries = new Map<string, Entry>();
  #hits = 0;
  #uploads = 0;

  constructor(rt: CudaRuntime) {
    this.#rt = rt;
  }

  /**
   * The table of `lists` (entry i of each list is tensor i; sizes from the first list's lengths),
   * with optional per-tensor weight decay and LARS flags.
   */
  get(lists: CudaStorage[][], weightDecay?: readonly number[], adapt?: readonly boolean[]) {
    const count = lists[0].length;
    let key = `${count}|${weightDecay?.join(",") ?? "-"}|${adapt?.map(Number).join("") ?? "-"}`;
    for (const s of lists[0]) key += `|${s.length}`;
    for (const list of lists) for (const s of list) key += `,${s.ptr.toString(36)}`;
    const hit = this.#entries.get(key);
    if (hit !== undefined) {
      // Refresh its place in the LRU order.
      this.#entries.delete(key);
      this.#entries.set(key, hit);
      this.#hits++;
      return hit.table;
    }
    const entry = this.#build(lists, weightDecay, adapt);
    this.#entries.set(key, entry);
    this.#uploads++;
    if (this.#entries.size > TABLE_CACHE_ENTRIES) {
      const [oldKey, old] = this.#entries.entries().next().value!;
      this.#entries.delete(oldKey);
      this.#rt.release(old.block);
    }
    return entry.table;
  }

  /** Hits and uploads so far. */
  stats(): TableStats {
    return { hits: this.#hits, uploads: this.#uploads };
  }

  /** Returns every table's block to the allocator. */
  clear(): void {
    for (const e of this.#entries.values()) this.#rt.release(e.block);
    this.#entries.clear();
  }

  #build(lists: CudaStorage[][], weightDecay?: readonly number[], adapt?: readonly boolean[]) {
    const t = lists[0].length;
    const sizes = lists[0].map((s) => s.length);
    const starts = multiTensorChunks(sizes, CHUNK_SIZE);
    const align8 = (n: number) => Math.ceil(n / 8) * 8;
    let at = 0;
    const listAt = lists.map(() => (at += 8 * t) - 8 * t);
    const sizesAt = at;
    at = align8(at + 4 * t);
    const startsAt = at;
    at = align8(at + 4 * (t + 1));
    const wdAt = at;
    at = align8(at + (weightDecay ? 4 * t : 0));
    const adaptAt = at;
    at = align8(at + (adapt ? 4 * t : 0));
    const bytes = new ArrayBuffer(at);
    const view = new DataView(bytes);
    lists.forEach((list, l) =>
      list.forEach((s, i) => view.setBigUint64(listAt[l] + 8 * i, s.ptr, true))
    );
    new Int32Array(bytes, sizesAt, t).set(sizes);
    new Int32Array(bytes, startsAt, t + 1).set(starts);
    if (weightDecay) new Float32Array(bytes, wdAt, t).set(weightDecay);
    if (adapt) new Int32Array(bytes, adaptAt, t).set(adapt.map(Number));
    const block = this.#rt.scratch(at);
    this.#rt.staging.upload(block, new Uint8Array(bytes));
    const addr = (offset: number) => block + BigInt(offset);
    return {
      block,
      table: {
        lists: listAt.map(addr),
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

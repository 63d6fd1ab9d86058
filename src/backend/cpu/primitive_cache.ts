/**
 * The cpu backend's primitive cache: oneDNN primitives keyed by what they compute (kind, shape,
 * data type, algorithm), created on first use for a fixed OpenMP thread count and kept for the
 * backend's life, so a training step creates nothing after its first run.
 *
 * @module
 */

import { checkStatus, type DnnlSymbols } from "../../../ffi/dnnl/mod.ts";
import type { MemDesc, MemDescTable } from "./memdesc.ts";
import { Primitive } from "./primitive.ts";

/** What a cache miss builds: a primitive descriptor and the arguments its execution binds. */
export interface PrimitiveSpec {
  pd: Deno.PointerObject;
  args: readonly number[];
  /** Descriptors of arguments the descriptor cannot be queried for (runtime scales). */
  argMds?: ReadonlyMap<number, MemDesc>;
}

/** Where the cache's primitives live and run. */
export interface PrimitiveCacheOptions {
  sym: DnnlSymbols;
  engine: Deno.PointerObject;
  stream: Deno.PointerObject;
  mds: MemDescTable;
  /** Sets the calling thread's OpenMP thread count. */
  setThreads: (n: number) => void;
  /** Prints each primitive's implementation when created. */
  verbose: boolean;
}

/** Primitives by key, each created for the thread count it runs on. */
export class PrimitiveCache {
  readonly #o: PrimitiveCacheOptions;
  readonly #cache = new Map<string, Primitive>();
  /** Thread counts of the primitives being created (a backward one may build its forward hint). */
  readonly #creating: number[] = [];

  constructor(options: PrimitiveCacheOptions) {
    this.#o = options;
  }

  /** Number of cached primitives. */
  get size(): number {
    return this.#cache.size;
  }

  /** What each cached primitive computes and the implementation oneDNN chose. */
  implementations(): { what: string; impl: string }[] {
    return [...this.#cache.values()].map((p) => ({ what: p.what, impl: p.impl }));
  }

  /** The thread count of the primitive being created, or `fallback` outside a creation. */
  creationThreads(fallback: number): number {
    return this.#creating.at(-1) ?? fallback;
  }

  /** The primitive for `key`, built by `make` on first use for `threads` OpenMP threads. */
  get(key: string, what: string, make: () => PrimitiveSpec, threads: number): Primitive {
    let p = this.#cache.get(key);
    if (p === undefined) {
      // `make` may build other primitives first (a forward one as a backward one's hint): the
      // stack tells `createPd` which thread count the descriptor being created is for.
      this.#creating.push(threads);
      let spec: PrimitiveSpec;
      try {
        spec = make();
      } finally {
        this.#creating.pop();
      }
      const { sym, engine, stream, mds, setThreads } = this.#o;
      const { pd, args, argMds } = spec;
      p = new Primitive({ argMds, sym, engine, stream, mds, pd, args, what, threads, setThreads });
      this.#cache.set(key, p);
      if (this.#o.verbose) console.error(`oneDNN ${what} [${key.slice(0, 80)}]: ${p.impl}`);
    }
    return p;
  }

  /**
   * Creates a primitive descriptor from an initialised op descriptor (with optional attributes and
   * a forward descriptor as a backward one's hint) for the thread count being created for.
   */
  createPd(
    opDesc: Uint8Array,
    what: string,
    hint: Deno.PointerObject | null,
    attr: Deno.PointerObject | null,
    fallbackThreads: number,
  ): Deno.PointerObject {
    const out = new BigUint64Array(1);
    this.#o.setThreads(this.creationThreads(fallbackThreads));
    checkStatus(
      this.#o.sym.dnnl_primitive_desc_create(out, opDesc, attr, this.#o.engine, hint),
      `create ${what} primitive`,
    );
    return Deno.UnsafePointer.create(out[0])!;
  }

  /** Destroys every primitive. */
  destroy(): void {
    for (const p of this.#cache.values()) p.destroy();
    this.#cache.clear();
  }
}

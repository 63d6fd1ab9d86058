/**
 * A created oneDNN primitive with one memory object per execution argument, so that executing it
 * only swaps data pointers (`dnnl_memory_set_data_handle`) and calls `dnnl_primitive_execute`.
 *
 * @module
 */

import {
  checkStatus,
  DNNL_OFFSET,
  DNNL_SIZEOF,
  type DnnlSymbols,
  Query,
} from "../../../ffi/dnnl/mod.ts";
import type { MemDesc, MemDescTable } from "./memdesc.ts";

/** `dnnl_query_exec_arg_md`: the descriptor of one execution argument. */
const QUERY_EXEC_ARG_MD = 255;

/** A primitive ready to execute with a fixed list of arguments. */
export class Primitive {
  /** The primitive descriptor (kept alive: backward primitives use it as a hint). */
  readonly pd: Deno.PointerObject;
  /** What the primitive computes (for error messages). */
  readonly what: string;
  /** The argument ids, in the order `execute` takes their pointers. */
  readonly args: readonly number[];
  /** The implementation oneDNN chose (e.g. `jit:avx512_core`). */
  readonly impl: string;
  /** OpenMP threads it was created for and runs on. */
  readonly threads: number;
  readonly #setThreads: (n: number) => void;
  readonly #sym: DnnlSymbols;
  readonly #stream: Deno.PointerObject;
  readonly #prim: Deno.PointerObject;
  readonly #mems: Deno.PointerObject[] = [];
  readonly #mds: MemDesc[] = [];
  readonly #packed: Uint8Array;
  readonly #packedPtr: Deno.PointerObject;

  constructor(opts: {
    sym: DnnlSymbols;
    engine: Deno.PointerObject;
    stream: Deno.PointerObject;
    mds: MemDescTable;
    pd: Deno.PointerObject;
    args: readonly number[];
    what: string;
    /** OpenMP threads the descriptor was created under; set again before every execution. */
    threads: number;
    /** Sets the calling thread's OpenMP thread count. */
    setThreads: (n: number) => void;
    /** Descriptors of arguments the primitive descriptor cannot be queried for (runtime scales). */
    argMds?: ReadonlyMap<number, MemDesc>;
  }) {
    const { sym, pd, args, what } = opts;
    this.#sym = sym;
    this.#stream = opts.stream;
    this.pd = pd;
    this.what = what;
    this.args = args;
    this.threads = opts.threads;
    this.#setThreads = opts.setThreads;
    const out = new BigUint64Array(1);
    checkStatus(sym.dnnl_primitive_create(out, pd), `create ${what} primitive`);
    this.#prim = Deno.UnsafePointer.create(out[0])!;
    const info = new BigUint64Array(1);
    checkStatus(sym.dnnl_primitive_desc_query(pd, Query.implInfoStr, 0, info), `query ${what}`);
    this.impl = Deno.UnsafePointerView.getCString(Deno.UnsafePointer.create(info[0])!);
    // An ArrayBuffer of >= 128 bytes lives outside V8's heap, so its address is stable.
    this.#packed = new Uint8Array(
      new ArrayBuffer(Math.max(128, DNNL_SIZEOF.execArg * args.length)),
    );
    const view = new DataView(this.#packed.buffer);
    args.forEach((arg, i) => {
      let md = opts.argMds?.get(arg);
      if (md === undefined) {
        const p = sym.dnnl_primitive_desc_query_md(pd, QUERY_EXEC_ARG_MD, arg);
        if (p === null) throw new Error(`Cannot bind argument ${arg} of ${what}: no descriptor`);
        md = opts.mds.fromPointer(p);
      }
      checkStatus(
        sym.dnnl_memory_create(out, md.bytes, opts.engine, null),
        `create memory for argument ${arg} of ${what}`,
      );
      const mem = Deno.UnsafePointer.create(out[0])!;
      this.#mems.push(mem);
      this.#mds.push(md);
      view.setInt32(DNNL_SIZEOF.execArg * i, arg, true);
      view.setBigUint64(DNNL_SIZEOF.execArg * i + DNNL_OFFSET.execArgMemory, out[0], true);
    });
    this.#packedPtr = Deno.UnsafePointer.of(this.#packed)!;
  }

  /** The layout the primitive expects for argument `arg`. */
  md(arg: number): MemDesc {
    const i = this.args.indexOf(arg);
    if (i < 0) throw new Error(`Cannot find argument ${arg} of ${this.what}`);
    return this.#mds[i];
  }

  /** The layout the primitive expects for its `i`-th argument. */
  mdAt(i: number): MemDesc {
    return this.#mds[i];
  }

  /**
   * Runs the primitive on the given data pointers (same order as `args`) and waits for it, on the
   * thread count it was created for (oneDNN sizes per-thread scratch at creation).
   */
  execute(ptrs: readonly Deno.PointerValue[]): void {
    const sym = this.#sym;
    this.#setThreads(this.threads);
    for (let i = 0; i < ptrs.length; i++) {
      checkStatus(sym.dnnl_memory_set_data_handle(this.#mems[i], ptrs[i]), `bind ${this.what}`);
    }
    checkStatus(
      sym.dnnl_primitive_execute(this.#prim, this.#stream, this.args.length, this.#packedPtr),
      `execute ${this.what}`,
    );
    checkStatus(sym.dnnl_stream_wait(this.#stream), `wait for ${this.what}`);
  }

  /** Releases the primitive, its descriptor and its memory objects. */
  destroy(): void {
    for (const m of this.#mems) this.#sym.dnnl_memory_destroy(m);
    this.#sym.dnnl_primitive_destroy(this.#prim);
    this.#sym.dnnl_primitive_desc_destroy(this.pd);
  }
}
